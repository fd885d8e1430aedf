//! `[repository.NAME]`: an Artifact Registry Docker repository's keys, defaults and checks.

use super::*;

pub(super) const REPOSITORY_KEYS: &[&str] = &[
    "delete_untagged_after",
    "id",
    "keep_recent",
    "labels",
    "location",
];

/// Artifact Registry repository id: `^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`.
fn is_repository_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id.ends_with(is_lower_or_digit)
        && id.chars().all(|c| is_lower_or_digit(c) || c == '-')
}

pub(super) fn read_repository(
    checker: &mut Checker,
    table: &TableRef,
    region: Option<&str>,
) -> Option<Parsed<RepositoryConfig>> {
    checker.check_keys(table, REPOSITORY_KEYS);
    let id = read_id(checker, table);
    if let Some(id) = &id
        && !is_repository_id(&id.value)
    {
        id_error(
            checker,
            table,
            id,
            Kind::Repository,
            "repository ids are 1 to 63 lowercase letters, digits and `-`, start with a letter and end with a letter or digit",
        );
    }
    let location = checker.read_string(table, "location").optional();
    if let Some(Some(Field {
        value,
        span: Some(span),
    })) = &location
        && !(is_region(value) || matches!(value.as_str(), "us" | "europe" | "asia"))
    {
        checker.error(
            span.clone(),
            format!("`{value}` is not an Artifact Registry location"),
            Some("write a region like \"us-central1\" or a multi-region \"us\", \"europe\", \"asia\"".into()),
        );
    }
    let keep_recent = checker
        .read_integer(
            table,
            "keep_recent",
            1..=100_000,
            "keep at least one version",
        )
        .optional();
    let untagged = checker
        .read_duration(
            table,
            "delete_untagged_after",
            Duration::from_secs(3600)..=Duration::MAX,
        )
        .optional();
    let labels = read_labels(checker, table);
    let id = id?;
    let id_span = id.span.unwrap_or_else(|| table.name_span.clone());
    Some(Parsed {
        config: RepositoryConfig {
            id: id.value,
            location: match location? {
                Some(f) => f.value,
                None => region?.to_string(),
            },
            keep_recent: keep_recent?.map(|f| f.value as u32),
            delete_untagged_after: untagged?.map(|f| f.value),
            labels: labels?,
        },
        id_span,
    })
}

//! `[dataset.NAME]`: a BigQuery dataset's keys, defaults and checks.

use super::*;

pub(super) const DATASET_KEYS: &[&str] = &[
    "default_partition_expiration",
    "default_table_expiration",
    "deletion_protection",
    "id",
    "labels",
    "location",
];

pub(super) const DEFAULT_DATASET_LOCATION: &str = "US";

pub(super) const DEFAULT_DELETION_PROTECTION: bool = true;

/// BigQuery dataset and table ids: 1 to 1024 letters, digits and `_`.
pub(super) fn is_bigquery_id(id: &str) -> bool {
    (1..=1024).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(super) fn read_dataset(
    checker: &mut Checker,
    table: &TableRef,
) -> Option<Parsed<DatasetConfig>> {
    checker.check_keys(table, DATASET_KEYS);
    let id = read_id(checker, table);
    if let Some(id) = &id
        && !is_bigquery_id(&id.value)
    {
        id_error(
            checker,
            table,
            id,
            Kind::Dataset,
            "dataset ids are 1 to 1024 letters, digits and `_` (no `-`)",
        );
    }
    let location = checker
        .read_string(table, "location")
        .or_default(DEFAULT_DATASET_LOCATION.to_string());
    if let Some(Field {
        value,
        span: Some(span),
    }) = &location
        && !is_bigquery_location(value)
    {
        checker.error(
            span.clone(),
            format!("`{value}` is not a BigQuery location"),
            Some(
                "write the multi-region \"US\" or \"EU\", or a region like \"us-central1\" (lowercase letters, `-`, digits)"
                    .into(),
            ),
        );
    }
    let labels = read_labels(checker, table);
    let day = Duration::from_secs(86_400);
    let partition = checker
        .read_duration(table, "default_partition_expiration", day..=Duration::MAX)
        .optional();
    let table_expiration = checker
        .read_duration(
            table,
            "default_table_expiration",
            Duration::from_secs(3600)..=Duration::MAX,
        )
        .optional();
    let protection = checker
        .read_bool(table, "deletion_protection")
        .or_default(DEFAULT_DELETION_PROTECTION);
    let id = id?;
    let id_span = id.span.unwrap_or_else(|| table.name_span.clone());
    Some(Parsed {
        config: DatasetConfig {
            id: id.value,
            location: location?.value,
            labels: labels?,
            default_partition_expiration: partition?.map(|f| f.value),
            default_table_expiration: table_expiration?.map(|f| f.value),
            deletion_protection: protection?.value,
        },
        id_span,
    })
}

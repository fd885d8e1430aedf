//! `[firestore.NAME]`: a Firestore database's keys, defaults and checks (id, location, mode, TTL
//! policies, deletion protection).

use super::*;
use crate::config::{FirestoreConfig, FirestoreMode, TtlField};

pub(super) const FIRESTORE_KEYS: &[&str] = &[
    "deletion_protection",
    "id",
    "location",
    "mode",
    "point_in_time_recovery",
    "ttl",
];

/// The project's default database, the one the free tier applies to.
const DEFAULT_DATABASE_ID: &str = "(default)";

/// Firestore database ids: `(default)`, or 4 to 63 lowercase letters, digits and `-`, a letter
/// first and a letter or digit last.
pub(super) fn is_database_id(id: &str) -> bool {
    if id == DEFAULT_DATABASE_ID {
        return true;
    }
    let bytes = id.as_bytes();
    (4..=63).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// A Firestore location: a region (`us-central1`) or a multi-region (`nam5`, `eur3`).
fn is_firestore_location(location: &str) -> bool {
    let multi_region = location.len() == 4
        && location[..3].bytes().all(|b| b.is_ascii_lowercase())
        && location.as_bytes()[3].is_ascii_digit();
    multi_region || is_region(location)
}

fn is_region(location: &str) -> bool {
    let mut parts = location.split('-');
    let (Some(area), Some(zone)) = (parts.next(), parts.next()) else {
        return false;
    };
    parts.next().is_none()
        && !area.is_empty()
        && area.bytes().all(|b| b.is_ascii_lowercase())
        && zone.len() >= 2
        && zone.bytes().last().is_some_and(|b| b.is_ascii_digit())
        && zone
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A collection id or a simple field name: letters, digits and `_`, not starting with a digit
/// and not `__...__` (reserved by Firestore).
fn is_simple_name(name: &str) -> bool {
    let reserved = name.starts_with("__") && name.ends_with("__");
    (1..=1500).contains(&name.len())
        && !name.as_bytes()[0].is_ascii_digit()
        && !reserved
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `"collection_group.field"` as a [`TtlField`].
fn parse_ttl(entry: &str) -> Option<TtlField> {
    let (group, field) = entry.split_once('.')?;
    (is_simple_name(group) && is_simple_name(field)).then(|| TtlField {
        collection_group: group.to_string(),
        field: field.to_string(),
    })
}

pub(super) fn read_firestore(
    checker: &mut Checker,
    table: &TableRef,
    region: Option<&str>,
) -> Option<Parsed<FirestoreConfig>> {
    checker.check_keys(table, FIRESTORE_KEYS);
    let id = read_id(checker, table);
    if let Some(id) = &id
        && !is_database_id(&id.value)
    {
        id_error(
            checker,
            table,
            id,
            Kind::Firestore,
            "database ids are \"(default)\", or 4 to 63 lowercase letters, digits and `-`, starting with a letter and ending with a letter or digit",
        );
    }
    let location = checker.read_string(table, "location").optional();
    if let Some(Some(Field {
        value,
        span: Some(span),
    })) = &location
        && !is_firestore_location(value)
    {
        checker.error(
            span.clone(),
            format!("`{value}` is not a Firestore location"),
            Some(
                "write a region like \"us-central1\" or a multi-region like \"nam5\" (United States) or \"eur3\" (Europe)"
                    .into(),
            ),
        );
    }
    let mode = checker.read_string(table, "mode").optional();
    let mode = match mode {
        None => None,
        Some(None) => Some(FirestoreMode::Native),
        Some(Some(field)) => match field.value.as_str() {
            "native" => Some(FirestoreMode::Native),
            "datastore" => Some(FirestoreMode::Datastore),
            other => {
                checker.error(
                    field.span.unwrap_or_else(|| table.name_span.clone()),
                    format!("`{other}` is not a Firestore database mode"),
                    Some("write mode = \"native\" (Firestore Native, the default) or mode = \"datastore\" (Datastore mode)".into()),
                );
                None
            }
        },
    };
    let ttl = match checker.read_plain_string_list(table, "ttl") {
        Read::Absent => Some(vec![]),
        Read::Invalid => None,
        Read::Found(entries, span) => {
            let mut fields = Vec::new();
            let mut valid = true;
            for entry in entries {
                match parse_ttl(&entry) {
                    Some(field) if fields.contains(&field) => {
                        valid = false;
                        checker.error(
                            span.clone(),
                            format!("the TTL policy `{entry}` is listed twice"),
                            Some("list each collection_group.field once".into()),
                        );
                    }
                    Some(field) => fields.push(field),
                    None => {
                        valid = false;
                        checker.error(
                            span.clone(),
                            format!("`{entry}` is not a TTL policy"),
                            Some("write \"collection_group.field\", e.g. ttl = [\"webhook_deliveries.expire_at\"]: the collection group's documents expire at the timestamp in that field".into()),
                        );
                    }
                }
            }
            fields.sort();
            valid.then_some(fields)
        }
    };
    let protection = checker
        .read_bool(table, "deletion_protection")
        .or_default(true);
    let recovery = checker
        .read_bool(table, "point_in_time_recovery")
        .or_default(false);
    let id = id?;
    let id_span = id.span.unwrap_or_else(|| table.name_span.clone());
    let location = match location? {
        Some(field) => field.value,
        None => region?.to_string(),
    };
    Some(Parsed {
        config: FirestoreConfig {
            id: id.value,
            location,
            mode: mode?,
            ttl: ttl?,
            deletion_protection: protection?.value,
            point_in_time_recovery: recovery?.value,
        },
        id_span,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_locations_and_ttl_entries_follow_firestores_rules() {
        assert!(is_database_id("(default)"));
        assert!(is_database_id("shop-events"));
        assert!(!is_database_id("abc"));
        assert!(!is_database_id("Shop"));
        assert!(is_firestore_location("nam5"));
        assert!(is_firestore_location("us-central1"));
        assert!(!is_firestore_location("US"));
        assert_eq!(
            parse_ttl("webhook_deliveries.expire_at"),
            Some(TtlField {
                collection_group: "webhook_deliveries".into(),
                field: "expire_at".into()
            })
        );
        assert_eq!(parse_ttl("orders"), None);
        assert_eq!(parse_ttl("a/b.c"), None);
        assert_eq!(parse_ttl("__name__.x"), None);
    }
}

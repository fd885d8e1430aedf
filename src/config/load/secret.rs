//! `[secret.NAME]`: a Secret Manager secret's keys and checks (the value never appears here).

use super::*;

pub(super) const SECRET_KEYS: &[&str] = &["id", "labels"];

pub(super) fn read_secret(checker: &mut Checker, table: &TableRef) -> Option<Parsed<SecretConfig>> {
    checker.check_keys(table, SECRET_KEYS);
    let id = read_id(checker, table);
    if let Some(id) = &id
        && !is_secret_id(&id.value)
    {
        id_error(
            checker,
            table,
            id,
            Kind::Secret,
            "secret ids are 1 to 255 letters, digits, `-` and `_`",
        );
    }
    let labels = read_labels(checker, table);
    let id = id?;
    let id_span = id.span.unwrap_or_else(|| table.name_span.clone());
    let config = SecretConfig {
        id: id.value,
        labels: labels?,
    };
    Some(Parsed { config, id_span })
}

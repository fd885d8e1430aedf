//! `[service_account.NAME]`: an IAM service account's keys and checks.

use super::*;

pub(super) const SERVICE_ACCOUNT_KEYS: &[&str] = &["description", "display_name", "id", "roles"];

pub(super) fn read_service_account(
    checker: &mut Checker,
    table: &TableRef,
) -> Option<Parsed<ServiceAccountConfig>> {
    checker.check_keys(table, SERVICE_ACCOUNT_KEYS);
    let id = read_id(checker, table);
    if let Some(id) = &id
        && !is_service_account_id(&id.value)
    {
        id_error(
            checker,
            table,
            id,
            Kind::ServiceAccount,
            "service account ids are 6 to 30 lowercase letters, digits and `-`, start with a letter and end with a letter or digit",
        );
    }
    let display_name = checker.read_string(table, "display_name").optional();
    if let Some(Some(Field {
        value,
        span: Some(span),
    })) = &display_name
        && value.chars().count() > 100
    {
        checker.error(
            span.clone(),
            format!(
                "`display_name` in {} is longer than 100 characters",
                table.title
            ),
            None,
        );
    }
    let description = checker.read_string(table, "description").optional();
    if let Some(Some(Field {
        value,
        span: Some(span),
    })) = &description
        && value.chars().count() > 256
    {
        checker.error(
            span.clone(),
            format!(
                "`description` in {} is longer than 256 characters",
                table.title
            ),
            None,
        );
    }
    let roles = read_roles(checker, table);
    let id = id?;
    let id_span = id.span.unwrap_or_else(|| table.name_span.clone());
    let config = ServiceAccountConfig {
        id: id.value,
        display_name: display_name?.map(|f| f.value),
        description: description?.map(|f| f.value),
        roles: roles?,
    };
    Some(Parsed { config, id_span })
}

/// `roles = ["roles/..."]`: predefined (`roles/X`) or custom (`projects/P/roles/X`,
/// `organizations/O/roles/X`) role names, each once.
fn read_roles(checker: &mut Checker, table: &TableRef) -> Option<Vec<String>> {
    let entries = checker
        .read_string_list(table, "roles")
        .or_default(Vec::new())?;
    let mut roles: Vec<String> = Vec::new();
    let mut valid = true;
    for (role, span) in entries.value {
        if !is_role(&role) {
            valid = false;
            checker.error(
                span,
                format!("`{role}` in {} is not an IAM role", table.title),
                Some("write roles like \"roles/logging.logWriter\" (or a custom \"projects/P/roles/NAME\")".into()),
            );
        } else if roles.contains(&role) {
            valid = false;
            checker.error(
                span,
                format!("`roles` in {} lists {role} twice", table.title),
                Some("remove the duplicate".into()),
            );
        } else {
            roles.push(role);
        }
    }
    valid.then_some(roles)
}

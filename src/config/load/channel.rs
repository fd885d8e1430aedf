//! `[channel.NAME]`: a Monitoring notification channel's keys, defaults and checks.

use super::*;

pub(super) const CHANNEL_KEYS: &[&str] = &["display_name", "email", "type"];

/// Kinds whose ids the server assigns are found again by a `stackctl-name` label: the table
/// name must be a valid label value.
pub(super) fn check_label_name(checker: &mut Checker, table: &TableRef) -> bool {
    if is_label_key(&table.name) {
        return true;
    }
    checker.error(
        table.name_span.clone(),
        format!("`{}` cannot name a {}: stackctl finds it again by the label stackctl-name={}", table.name, table.title, table.name),
        Some("use lowercase letters, digits, `-` and `_`, starting with a letter, at most 63 characters".into()),
    );
    false
}

pub(super) fn read_channel(checker: &mut Checker, table: &TableRef) -> Option<ChannelConfig> {
    checker.check_keys(table, CHANNEL_KEYS);
    let name_ok = check_label_name(checker, table);
    let kind = checker.read_string(table, "type").required(
        checker,
        table,
        "type",
        "add type = \"email\"".into(),
    );
    if let Some(Field {
        value,
        span: Some(span),
    }) = &kind
        && value != "email"
    {
        checker.error(
            span.clone(),
            format!("channel type `{value}` is not supported"),
            Some("stackctl manages email channels: type = \"email\"".into()),
        );
    }
    let email = checker.read_string(table, "email").required(
        checker,
        table,
        "email",
        "add email = \"ops@example.com\"".into(),
    );
    if let Some(Field {
        value,
        span: Some(span),
    }) = &email
        && !is_email(value)
    {
        checker.error(
            span.clone(),
            format!("`{value}` is not an email address"),
            Some("write email = \"name@example.com\"".into()),
        );
    }
    let display_name = checker
        .read_string(table, "display_name")
        .or_default(table.name.clone());
    let kind = kind?;
    (name_ok && kind.value == "email").then_some(())?;
    Some(ChannelConfig {
        kind: kind.value,
        email: email?.value,
        display_name: display_name?.value,
    })
}

fn is_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((user, domain)) => {
            !user.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

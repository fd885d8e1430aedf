//! `[channel.NAME]`: a Monitoring notification channel's keys (per type), defaults and checks.

use super::*;

pub(super) const CHANNEL_KEYS: &[&str] = &[
    "auth_token",
    "channel_name",
    "display_name",
    "email",
    "password",
    "service_key",
    "type",
    "url",
    "username",
];

/// One channel type of `type = "..."`: the keys it takes (beside `type` and `display_name`),
/// which of them is a `secret.NAME` reference, and the Google label each key is sent as.
pub(crate) struct ChannelType {
    pub(crate) name: &'static str,
    /// `(key, Google label, required)`, plain values.
    pub(crate) plain: &'static [(&'static str, &'static str, bool)],
    /// `(key, Google label)` of the sensitive label read from Secret Manager, when the type has one.
    pub(crate) secret: Option<(&'static str, &'static str)>,
    example: &'static str,
}

const CHANNEL_TYPES: &[ChannelType] = &[
    ChannelType {
        name: "email",
        plain: &[("email", "email_address", true)],
        secret: None,
        example: "email = \"ops@example.com\"",
    },
    ChannelType {
        name: "slack",
        plain: &[("channel_name", "channel_name", true)],
        secret: Some(("auth_token", "auth_token")),
        example: "channel_name = \"#alerts\" and auth_token = \"secret.NAME\"",
    },
    ChannelType {
        name: "pagerduty",
        plain: &[],
        secret: Some(("service_key", "service_key")),
        example: "service_key = \"secret.NAME\"",
    },
    ChannelType {
        name: "webhook",
        plain: &[("url", "url", true), ("username", "username", false)],
        secret: Some(("password", "password")),
        example: "url = \"https://hooks.example.com/alerts\"",
    },
];

/// The `type = "..."` that declares a live channel of Google's type `google_type`
/// (`webhook_tokenauth` and `webhook_basicauth` are both `webhook`); `None` for a type stack.toml
/// does not declare.
pub(crate) fn channel_type(google_type: &str) -> Option<&'static ChannelType> {
    let name = if google_type.starts_with("webhook_") {
        "webhook"
    } else {
        google_type
    };
    CHANNEL_TYPES.iter().find(|t| t.name == name)
}

/// The `type = "..."` values stack.toml takes, quoted and comma-separated.
pub(crate) fn channel_type_names() -> String {
    CHANNEL_TYPES
        .iter()
        .map(|t| format!("\"{}\"", t.name))
        .collect::<Vec<_>>()
        .join(", ")
}

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

pub(super) fn read_channel(
    checker: &mut Checker,
    table: &TableRef,
    declared: &Declared,
) -> Option<ChannelConfig> {
    checker.check_keys(table, CHANNEL_KEYS);
    let name_ok = check_label_name(checker, table);
    let names = channel_type_names();
    let kind = checker.read_string(table, "type").required(
        checker,
        table,
        "type",
        format!("add type = one of {names}"),
    )?;
    let Some(channel_type) = CHANNEL_TYPES.iter().find(|t| t.name == kind.value) else {
        if let Some(span) = kind.span {
            checker.error(
                span,
                format!("channel type `{}` is not supported", kind.value),
                Some(format!("write type = one of {names}")),
            );
        }
        return None;
    };
    let mut valid = name_ok;
    // A key of another type is an error naming the keys this type takes.
    let own: Vec<&str> = channel_type
        .plain
        .iter()
        .map(|(key, _, _)| *key)
        .chain(channel_type.secret.map(|(key, _)| key))
        .collect();
    for key in CHANNEL_KEYS {
        if ["type", "display_name"].contains(key) || own.contains(key) {
            continue;
        }
        if let Some(value) = table.get(key) {
            valid = false;
            checker.error(
                value.span(),
                format!(
                    "`{key}` is not a key of a {} channel in {}",
                    channel_type.name, table.title
                ),
                Some(format!(
                    "a {} channel takes {}; remove `{key}`",
                    channel_type.name, channel_type.example
                )),
            );
        }
    }
    let mut labels = BTreeMap::new();
    for (key, label, required) in channel_type.plain {
        let read = checker.read_string(table, key);
        let field = if *required {
            read.required(checker, table, key, format!("add {}", channel_type.example))
                .map(Some)
        } else {
            read.optional()
        };
        let field = match field {
            Some(Some(field)) => field,
            Some(None) => continue,
            None => {
                valid = false;
                continue;
            }
        };
        if let Some(span) = &field.span {
            valid &= check_plain(checker, key, &field.value, span.clone());
        }
        labels.insert(label.to_string(), field.value);
    }
    let mut secret = None;
    if let Some((key, label)) = channel_type.secret {
        match checker.read_reference(table, key, Kind::Secret, declared) {
            Some(Some(source)) => {
                secret = Some(ChannelSecret {
                    label: label.to_string(),
                    source: source.value,
                })
            }
            // Basic auth is optional on a webhook; the others need their secret.
            Some(None) if channel_type.name == "webhook" => {}
            Some(None) => {
                valid = false;
                checker.error(
                    table.span.clone(),
                    format!("{} has no `{key}`", table.title),
                    Some(format!(
                        "add {key} = \"secret.NAME\": the [secret.NAME] holding it (set its value with `stackctl secret set NAME`)"
                    )),
                );
            }
            None => valid = false,
        }
    }
    let google_type = match channel_type.name {
        "webhook" => {
            let basic = secret.is_some() || labels.contains_key("username");
            if basic && (secret.is_none() || !labels.contains_key("username")) {
                valid = false;
                checker.error(
                    table.span.clone(),
                    format!("{} has only half of basic auth", table.title),
                    Some("write both username = \"...\" and password = \"secret.NAME\", or neither (token auth)".into()),
                );
            }
            if basic {
                "webhook_basicauth"
            } else {
                "webhook_tokenauth"
            }
        }
        other => other,
    };
    let display_name = checker
        .read_string(table, "display_name")
        .or_default(table.name.clone());
    valid.then_some(())?;
    Some(ChannelConfig {
        kind: google_type.to_string(),
        labels,
        secret,
        display_name: display_name?.value,
    })
}

/// An `email` is an address, a `url` an http(s) URL; other plain keys take any text.
fn check_plain(checker: &mut Checker, key: &str, value: &str, span: Span) -> bool {
    let problem = match key {
        "email" if !is_email(value) => Some((
            format!("`{value}` is not an email address"),
            "write email = \"name@example.com\"",
        )),
        "url" if !(value.starts_with("https://") || value.starts_with("http://")) => Some((
            format!("`{value}` is not an http(s) URL"),
            "write url = \"https://hooks.example.com/alerts\"",
        )),
        _ => None,
    };
    match problem {
        Some((message, help)) => {
            checker.error(span, message, Some(help.into()));
            false
        }
        None => true,
    }
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

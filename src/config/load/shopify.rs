//! `[shopify]` (the shop, its access token's secret, the Admin API version) and
//! `[shopify_webhook.NAME]` (one webhook subscription): their keys, defaults and checks.

use super::*;

pub(super) const SHOPIFY_KEYS: &[&str] = &["access_token", "api_version", "shop"];

pub(super) const SHOPIFY_WEBHOOK_KEYS: &[&str] =
    &["api_version", "format", "path", "target", "topic"];

/// The Admin API version used when none is declared.
pub(super) const DEFAULT_SHOPIFY_API_VERSION: &str = "2025-10";

/// The formats a webhook subscription delivers in (GraphQL `WebhookSubscriptionFormat`).
const FORMATS: &[&str] = &["JSON", "XML"];

/// `[shopify]`, read from the top-level `shopify` value.
pub(super) fn read_shopify(
    checker: &mut Checker,
    key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue>,
    declared: &Declared,
) -> Option<ShopifyConfig> {
    let DeValue::Table(table) = value.get_ref() else {
        checker.error(
            value.span(),
            format!("`shopify` must be a table, found {}", describe_type(value.get_ref())),
            Some("write a [shopify] table with shop = \"acme.myshopify.com\" and access_token = \"secret.NAME\"".into()),
        );
        return None;
    };
    let table = TableRef {
        title: "[shopify]".into(),
        name: String::new(),
        name_span: key.span(),
        span: value.span(),
        table,
        kind: None,
    };
    checker.check_keys(&table, SHOPIFY_KEYS);
    let shop = checker.read_string(&table, "shop").required(
        checker,
        &table,
        "shop",
        "add shop = \"acme.myshopify.com\" (the shop's myshopify.com domain)".into(),
    );
    if let Some(Field {
        value,
        span: Some(span),
    }) = &shop
        && !is_shop_domain(value)
    {
        let bare = value
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let help = if is_shop_domain(bare) {
            format!("write shop = \"{bare}\": the domain alone, without scheme or path")
        } else {
            "write the shop's myshopify.com domain, e.g. shop = \"acme.myshopify.com\" (not a custom domain)".to_string()
        };
        checker.error(
            span.clone(),
            format!("`{value}` in [shopify] is not a myshopify.com shop domain"),
            Some(help),
        );
    }
    let token = checker.read_reference(&table, "access_token", Kind::Secret, declared);
    let token = match token {
        Some(None) => {
            checker.error(
                table.span.clone(),
                "[shopify] has no `access_token`".to_string(),
                Some("add access_token = \"secret.NAME\": the [secret.NAME] holding the Admin API access token (set its value with `stackctl secret set NAME`)".into()),
            );
            None
        }
        other => other.flatten(),
    };
    let api_version = read_api_version(checker, &table, DEFAULT_SHOPIFY_API_VERSION.to_string());
    let shop = shop?;
    Some(ShopifyConfig {
        shop: shop.value,
        access_token: token?.value,
        api_version: api_version?,
    })
}

/// `api_version = "2025-10"`, or `default`.
fn read_api_version(checker: &mut Checker, table: &TableRef, default: String) -> Option<String> {
    let field = checker
        .read_string(table, "api_version")
        .or_default(default)?;
    if let Some(span) = &field.span
        && !is_api_version(&field.value)
    {
        checker.error(
            span.clone(),
            format!(
                "`{}` in {} is not a Shopify Admin API version",
                field.value, table.title
            ),
            Some(format!(
                "versions are quarterly, YYYY-01, -04, -07 or -10 (or \"unstable\"), e.g. api_version = \"{DEFAULT_SHOPIFY_API_VERSION}\""
            )),
        );
        return None;
    }
    Some(field.value)
}

/// One `[shopify_webhook.NAME]`; `shopify` is the stack's `[shopify]` when it was read.
pub(super) fn read_shopify_webhook(
    checker: &mut Checker,
    table: &TableRef,
    shopify: Option<&ShopifyConfig>,
    has_shopify_table: bool,
    declared: &Declared,
) -> Option<ShopifyWebhookConfig> {
    checker.check_keys(table, SHOPIFY_WEBHOOK_KEYS);
    if !has_shopify_table {
        checker.error(
            table.name_span.clone(),
            format!("{} needs the shop it subscribes to, and there is no [shopify] table", table.title),
            Some("add [shopify] with shop = \"acme.myshopify.com\" and access_token = \"secret.NAME\"".into()),
        );
    }
    let topic = checker.read_string(table, "topic").required(
        checker,
        table,
        "topic",
        "add topic = \"ORDERS_UPDATED\" (a GraphQL WebhookSubscriptionTopic value)".into(),
    );
    if let Some(Field {
        value,
        span: Some(span),
    }) = &topic
        && !is_topic(value)
    {
        checker.error(
            span.clone(),
            format!(
                "topic `{value}` in {} is not in the GraphQL WebhookSubscriptionTopic form",
                table.title
            ),
            Some(format!(
                "write topic = \"{}\": the GraphQL Admin API names topics in upper case with `_` (REST's `orders/updated` is `ORDERS_UPDATED`)",
                graphql_topic(value)
            )),
        );
    }
    let target = checker.read_reference(table, "target", Kind::Service, declared);
    let target = match target {
        Some(None) => {
            checker.error(
                table.span.clone(),
                format!("{} has no `target`", table.title),
                Some(
                    "add target = \"service.NAME\": the service whose URL receives the webhooks"
                        .into(),
                ),
            );
            None
        }
        other => other.flatten(),
    };
    let path = checker.read_string(table, "path").required(
        checker,
        table,
        "path",
        "add path = \"/webhooks/shopify\" (the path on the target service)".into(),
    );
    if let Some(Field {
        value,
        span: Some(span),
    }) = &path
        && !is_callback_path(value)
    {
        checker.error(
            span.clone(),
            format!("path `{value}` in {} is not a URL path", table.title),
            Some("write a path that starts with `/`, without spaces, `?` or `#`, e.g. path = \"/webhooks/shopify\"".into()),
        );
    }
    let format = checker
        .read_string(table, "format")
        .or_default("JSON".to_string());
    if let Some(Field {
        value,
        span: Some(span),
    }) = &format
        && !FORMATS.contains(&value.as_str())
    {
        let help = match FORMATS.iter().find(|f| f.eq_ignore_ascii_case(value)) {
            Some(upper) => {
                format!("write format = \"{upper}\" (GraphQL enum values are upper case)")
            }
            None => "write format = \"JSON\" or \"XML\"".to_string(),
        };
        checker.error(
            span.clone(),
            format!(
                "format `{value}` in {} is not a webhook format",
                table.title
            ),
            Some(help),
        );
    }
    let default_version = shopify
        .map(|s| s.api_version.clone())
        .unwrap_or_else(|| DEFAULT_SHOPIFY_API_VERSION.to_string());
    let api_version = read_api_version(checker, table, default_version);
    let (topic, path, format) = (topic?, path?, format?);
    let valid = is_topic(&topic.value)
        && is_callback_path(&path.value)
        && FORMATS.contains(&format.value.as_str());
    if !valid || !has_shopify_table {
        return None;
    }
    Some(ShopifyWebhookConfig {
        topic: topic.value,
        target: target?.value,
        path: path.value,
        format: format.value,
        api_version: api_version?,
    })
}

/// Two subscriptions of one topic to one service would be matched to the same live
/// subscription: the later one (in the file) is flagged at its topic.
pub(super) fn check_unique_subscriptions(
    checker: &mut Checker,
    tables: &[TableRef],
    webhooks: &BTreeMap<String, Option<ShopifyWebhookConfig>>,
) {
    let mut ordered: Vec<(&TableRef, &ShopifyWebhookConfig)> = tables
        .iter()
        .filter_map(|t| Some((t, webhooks.get(&t.name)?.as_ref()?)))
        .collect();
    ordered.sort_by_key(|(t, _)| t.span.start);
    let mut first: BTreeMap<(&str, &ResourceAddr), &str> = BTreeMap::new();
    for (table, webhook) in ordered {
        let key = (webhook.topic.as_str(), &webhook.target);
        match first.get(&key) {
            Some(earlier) => {
                let span = table.get("topic").map_or(table.span.clone(), |v| v.span());
                checker.error(
                    span,
                    format!(
                        "{} subscribes {} to {} like [shopify_webhook.{earlier}]",
                        table.title, webhook.topic, webhook.target
                    ),
                    Some("Shopify delivers a topic once per subscription: keep one subscription per topic and service, or remove this one".into()),
                );
            }
            None => {
                first.insert(key, &table.name);
            }
        }
    }
}

/// `acme.myshopify.com`: a shop's permanent domain.
pub(super) fn is_shop_domain(shop: &str) -> bool {
    shop.strip_suffix(".myshopify.com").is_some_and(|name| {
        (1..=60).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
    })
}

/// `2025-10` (quarterly releases) or `unstable`.
fn is_api_version(version: &str) -> bool {
    if version == "unstable" {
        return true;
    }
    let Some((year, month)) = version.split_once('-') else {
        return false;
    };
    year.len() == 4
        && year.chars().all(|c| c.is_ascii_digit())
        && ["01", "04", "07", "10"].contains(&month)
}

/// The GraphQL enum form: `ORDERS_UPDATED`.
fn is_topic(topic: &str) -> bool {
    topic.starts_with(|c: char| c.is_ascii_uppercase())
        && topic
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// `orders/updated` (REST form) -> `ORDERS_UPDATED`.
fn graphql_topic(topic: &str) -> String {
    topic
        .trim()
        .chars()
        .map(|c| match c {
            '/' | '-' | '.' | ' ' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

fn is_callback_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= 2000
        && !path
            .chars()
            .any(|c| c.is_whitespace() || c == '?' || c == '#' || c.is_control())
}

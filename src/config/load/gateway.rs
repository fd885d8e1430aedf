//! `[gateway.NAME]` and `[api_key.NAME]`: an API Gateway in front of one declared service (its
//! OpenAPI document rendered and checked here) and the API keys restricted to it.

use super::*;
use crate::config::openapi::{self, Fill, Route};
use crate::config::{ApiKeyConfig, GatewayConfig};

pub(super) const GATEWAY_KEYS: &[&str] = &[
    "backend",
    "display_name",
    "id",
    "openapi",
    "requests_per_minute",
    "routes",
    "service_account",
];

pub(super) const API_KEY_KEYS: &[&str] = &["display_name", "gateway", "id"];

/// API Gateway api and gateway ids: lowercase letters, digits and `-`, starting with a letter;
/// at most 50 so that config ids (`ID-` and 12 hex digits) stay within Google's 63.
pub(super) fn is_gateway_id(id: &str) -> bool {
    (1..=50).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// API Keys v2 key ids: `[a-z]([a-z0-9-]{0,61}[a-z0-9])?`.
pub(crate) fn is_api_key_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A required `key = "kind.NAME"` reference; reports its absence with `help`.
fn required_reference(
    checker: &mut Checker,
    table: &TableRef,
    key: &str,
    kind: Kind,
    declared: &Declared,
    help: &str,
) -> Option<ResourceAddr> {
    match checker.read_reference(table, key, kind, declared) {
        Some(None) => {
            checker.error(
                table.span.clone(),
                format!("{} has no `{key}`", table.title),
                Some(help.to_string()),
            );
            None
        }
        other => other.flatten().map(|f| f.value),
    }
}

pub(super) fn read_gateway(
    checker: &mut Checker,
    table: &TableRef,
    declared: &Declared,
) -> Option<Parsed<GatewayConfig>> {
    checker.check_keys(table, GATEWAY_KEYS);
    let id = read_id(checker, table);
    if let Some(id) = &id
        && !is_gateway_id(&id.value)
    {
        id_error(
            checker,
            table,
            id,
            Kind::Gateway,
            "gateway ids are 1 to 50 lowercase letters, digits and `-`, start with a letter and do not end with `-`",
        );
    }
    let display_name = checker
        .read_string(table, "display_name")
        .or_default(table.name.clone());
    let backend = required_reference(
        checker,
        table,
        "backend",
        Kind::Service,
        declared,
        "add backend = \"service.NAME\" (the Cloud Run service the gateway forwards to)",
    );
    let service_account = required_reference(
        checker,
        table,
        "service_account",
        Kind::ServiceAccount,
        declared,
        "add service_account = \"service_account.NAME\": the identity the gateway calls the backend as (it gets roles/run.invoker there)",
    );
    let requests_per_minute = checker
        .read_integer(
            table,
            "requests_per_minute",
            1..=1_000_000_000,
            "API Gateway quotas are a positive number of requests per minute and consumer project",
        )
        .or_default(60);
    let routes = checker
        .read_string_list(table, "routes")
        .or_default(Vec::new());
    let openapi_file = checker.read_string(table, "openapi").optional();
    let (id, display_name, requests_per_minute, routes, openapi_file) = (
        id?,
        display_name?,
        requests_per_minute?,
        routes?,
        openapi_file?,
    );
    let mut parsed_routes: Vec<Route> = Vec::new();
    let mut routes_ok = true;
    for (text, span) in &routes.value {
        match text.parse::<Route>() {
            Ok(route) if parsed_routes.contains(&route) => {
                routes_ok = false;
                checker.error(
                    span.clone(),
                    format!("`routes` in {} lists `{text}` twice", table.title),
                    Some("remove the duplicate".into()),
                );
            }
            Ok(route) => parsed_routes.push(route),
            Err(why) => {
                routes_ok = false;
                checker.error(
                    span.clone(),
                    format!("route {why} in {}", table.title),
                    Some("write routes = [\"POST /customers\", \"GET /customers/{id}\"]".into()),
                );
            }
        }
    }
    let (template, source, source_span) = match &openapi_file {
        Some(file) => {
            let span = file.span.clone().unwrap_or_else(|| table.span.clone());
            let fix = "write an OpenAPI 2.0 JSON document there (start from templates/gateways/api_key.json)";
            match read_named_file(base_dir(checker.file), &file.value, "openapi", fix) {
                Ok((_, text)) => (text, file.value.clone(), span),
                Err(Refused { message, help }) => {
                    checker.error(span, message, Some(help));
                    return None;
                }
            }
        }
        None => (
            openapi::DEFAULT_TEMPLATE.to_string(),
            openapi::DEFAULT_TEMPLATE_PATH.to_string(),
            routes
                .span
                .clone()
                .unwrap_or_else(|| table.name_span.clone()),
        ),
    };
    if !routes_ok {
        return None;
    }
    let requests_per_minute = requests_per_minute.value as u32;
    let document = match openapi::render(
        &template,
        &Fill {
            title: &display_name.value,
            requests_per_minute,
            routes: &parsed_routes,
        },
    ) {
        Ok(document) => document,
        Err(why) => {
            let help = if openapi_file.is_some() {
                "fix the document, or remove `openapi` to use templates/gateways/api_key.json with `routes`"
            } else {
                "add routes = [\"POST /customers\"]: the METHOD /path operations the gateway serves"
            };
            checker.error(
                source_span,
                format!("the OpenAPI document of {} ({source}): {why}", table.title),
                Some(help.into()),
            );
            return None;
        }
    };
    let config = GatewayConfig {
        id: id.value,
        display_name: display_name.value,
        backend: backend?,
        service_account: service_account?,
        requests_per_minute,
        document,
        document_source: source,
    };
    let id_span = id.span.unwrap_or_else(|| table.name_span.clone());
    Some(Parsed { config, id_span })
}

pub(super) fn read_api_key(
    checker: &mut Checker,
    table: &TableRef,
    declared: &Declared,
) -> Option<Parsed<ApiKeyConfig>> {
    checker.check_keys(table, API_KEY_KEYS);
    let id = read_id(checker, table);
    if let Some(id) = &id
        && !is_api_key_id(&id.value)
    {
        id_error(
            checker,
            table,
            id,
            Kind::ApiKey,
            "API key ids are 1 to 63 lowercase letters, digits and `-`, start with a letter and do not end with `-`",
        );
    }
    let display_name = checker
        .read_string(table, "display_name")
        .or_default(table.name.clone());
    if let Some(Field {
        value,
        span: Some(span),
    }) = &display_name
        && value.chars().count() > 63
    {
        checker.error(
            span.clone(),
            format!(
                "`display_name` in {} is longer than 63 characters",
                table.title
            ),
            Some("API Keys allows at most 63 characters".into()),
        );
    }
    let gateway = required_reference(
        checker,
        table,
        "gateway",
        Kind::Gateway,
        declared,
        "add gateway = \"gateway.NAME\": the key is restricted to that gateway's API",
    );
    let id = id?;
    let id_span = id.span.unwrap_or_else(|| table.name_span.clone());
    let config = ApiKeyConfig {
        id: id.value,
        display_name: display_name?.value,
        gateway: gateway?,
    };
    Some(Parsed { config, id_span })
}

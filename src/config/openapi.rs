//! The OpenAPI 2.0 document of a `[gateway.NAME]`: a template (`templates/gateways/api_key.json`
//! or the stack's own file) with `${...}` placeholders filled from the stanza, and its routes
//! added when the template has no `paths`. `${BACKEND_URL}` stays until apply knows the URL.

use serde_json::{Map, Value, json};

/// The template a gateway uses unless it names its own `openapi` file.
pub const DEFAULT_TEMPLATE: &str = include_str!("../../templates/gateways/api_key.json");
pub const DEFAULT_TEMPLATE_PATH: &str = "templates/gateways/api_key.json";

/// Filled in at apply, when the backend service's URL is known.
pub const BACKEND_URL: &str = "${BACKEND_URL}";

/// The quota metric the default template declares, charged once per request by every route.
pub const REQUESTS_METRIC: &str = "requests";

/// One `"METHOD /path"` of `routes`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    /// Lowercase, as OpenAPI keys operations: `post`.
    pub method: String,
    pub path: String,
}

const METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];

impl std::str::FromStr for Route {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (method, path) = s
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("`{s}` is not `METHOD /path`"))?;
        let method = method.to_ascii_lowercase();
        if !METHODS.contains(&method.as_str()) {
            return Err(format!(
                "`{method}` is not an HTTP method OpenAPI 2.0 knows ({})",
                METHODS.join(", ")
            ));
        }
        let path = path.trim();
        let segments_ok = path.split('/').skip(1).all(|segment| {
            !segment.is_empty()
                && (segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.~".contains(c))
                    || (segment.starts_with('{')
                        && segment.ends_with('}')
                        && segment.len() > 2
                        && segment[1..segment.len() - 1]
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_')))
        });
        if !path.starts_with('/') || path.len() < 2 || !segments_ok {
            return Err(format!(
                "`{path}` is not a path like `/customers` or `/customers/{{id}}`"
            ));
        }
        Ok(Route {
            method,
            path: path.to_string(),
        })
    }
}

/// What the stanza fills in.
pub struct Fill<'a> {
    pub title: &'a str,
    pub requests_per_minute: u32,
    pub routes: &'a [Route],
}

/// The template with every placeholder but `${BACKEND_URL}` filled, and `paths` made from
/// `routes` when the template leaves it empty; `Err` says what is wrong with the template.
pub fn render(template: &str, fill: &Fill<'_>) -> Result<Value, String> {
    let mut document: Value = serde_json::from_str(template).map_err(|e| {
        format!(
            "it is not JSON: {e} (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    if document.get("swagger").and_then(Value::as_str) != Some("2.0") {
        return Err("it is not an OpenAPI 2.0 document (`\"swagger\": \"2.0\"`): API Gateway serves OpenAPI 2.0 only".into());
    }
    substitute(&mut document, fill);
    let paths_empty = document
        .get("paths")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    match (paths_empty, fill.routes.is_empty()) {
        (true, true) => {
            return Err(
                "it declares no `paths` and the gateway lists no `routes`: nothing would be served"
                    .into(),
            );
        }
        (true, false) => {
            document["paths"] = paths_of(fill.routes, has_requests_metric(&document));
        }
        (false, false) => {
            return Err(
                "it declares its own `paths` and the gateway lists `routes` too: keep one".into(),
            );
        }
        (false, true) => {}
    }
    if document.get("x-google-backend").is_none() && !every_operation_has_backend(&document) {
        return Err("it has no `x-google-backend` (at the top level or on every operation): API Gateway would not know where to send requests".into());
    }
    Ok(document)
}

fn has_requests_metric(document: &Value) -> bool {
    document
        .pointer("/x-google-management/metrics")
        .and_then(Value::as_array)
        .is_some_and(|metrics| {
            metrics
                .iter()
                .any(|m| m.get("name").and_then(Value::as_str) == Some(REQUESTS_METRIC))
        })
}

fn every_operation_has_backend(document: &Value) -> bool {
    let Some(paths) = document.get("paths").and_then(Value::as_object) else {
        return false;
    };
    paths.values().all(|item| {
        item.as_object().is_some_and(|ops| {
            ops.iter()
                .filter(|(method, _)| METHODS.contains(&method.as_str()))
                .all(|(_, op)| op.get("x-google-backend").is_some())
        })
    })
}

/// `paths` for `routes`: one operation each, charged one `requests` when the document meters it.
fn paths_of(routes: &[Route], metered: bool) -> Value {
    let mut paths = Map::new();
    for route in routes {
        let operation_id = format!(
            "{}{}",
            route.method,
            route
                .path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    let s = s.trim_matches(['{', '}']);
                    let mut chars = s.chars();
                    chars
                        .next()
                        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                        .unwrap_or_default()
                })
                .collect::<String>()
                .replace(['-', '.', '~'], "_")
        );
        let mut operation = json!({
            "operationId": operation_id,
            "responses": { "default": { "description": "The backend's answer, passed through." } },
        });
        let parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "type": "string"}))
            .collect();
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if metered {
            operation["x-google-quota"] = json!({ "metricCosts": { REQUESTS_METRIC: 1 } });
        }
        let item = paths
            .entry(route.path.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        item[route.method.as_str()] = operation;
    }
    Value::Object(paths)
}

fn substitute(value: &mut Value, fill: &Fill<'_>) {
    match value {
        Value::String(text) if text == "${REQUESTS_PER_MINUTE}" => {
            *value = json!(fill.requests_per_minute);
        }
        Value::String(text) => {
            *text = text.replace("${TITLE}", fill.title).replace(
                "${REQUESTS_PER_MINUTE}",
                &fill.requests_per_minute.to_string(),
            );
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, fill)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, fill)),
        _ => {}
    }
}

/// `document` with the backend's URL in place of `${BACKEND_URL}`.
pub fn with_backend(document: &Value, backend_url: &str) -> Value {
    let mut out = document.clone();
    fn walk(value: &mut Value, url: &str) {
        match value {
            Value::String(text) if text.contains(BACKEND_URL) => {
                *text = text.replace(BACKEND_URL, url);
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, url)),
            Value::Object(map) => map.values_mut().for_each(|v| walk(v, url)),
            _ => {}
        }
    }
    walk(&mut out, backend_url);
    out
}

/// The per-minute request limit the document declares (`values.STANDARD` of the first limit).
pub fn requests_per_minute(document: &Value) -> Option<u64> {
    let limit = document.pointer("/x-google-management/quota/limits/0/values/STANDARD")?;
    limit
        .as_u64()
        .or_else(|| limit.as_str().and_then(|s| s.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(list: &[&str]) -> Vec<Route> {
        list.iter().map(|r| r.parse().unwrap()).collect()
    }

    #[test]
    fn the_default_template_renders_routes_with_key_quota_and_backend() {
        let routes = routes(&["POST /customers", "GET /customers/{id}"]);
        let document = render(
            DEFAULT_TEMPLATE,
            &Fill {
                title: "crm",
                requests_per_minute: 60,
                routes: &routes,
            },
        )
        .unwrap();
        assert_eq!(document["info"]["title"], "crm");
        assert_eq!(requests_per_minute(&document), Some(60));
        let post = &document["paths"]["/customers"]["post"];
        assert_eq!(post["operationId"], "postCustomers");
        assert_eq!(post["x-google-quota"]["metricCosts"]["requests"], 1);
        let get = &document["paths"]["/customers/{id}"]["get"];
        assert_eq!(get["parameters"][0]["name"], "id");
        assert_eq!(document["x-google-backend"]["address"], BACKEND_URL);
        let resolved = with_backend(&document, "https://crm-proxy-abc-uc.a.run.app");
        assert_eq!(
            resolved["x-google-backend"]["jwt_audience"],
            "https://crm-proxy-abc-uc.a.run.app"
        );
    }

    #[test]
    fn templates_without_swagger_2_backend_or_paths_are_refused_with_the_reason() {
        let fill = Fill {
            title: "t",
            requests_per_minute: 1,
            routes: &[],
        };
        assert!(render("{", &fill).unwrap_err().contains("not JSON"));
        assert!(
            render(r#"{"openapi": "3.0.0"}"#, &fill)
                .unwrap_err()
                .contains("OpenAPI 2.0")
        );
        assert!(
            render(r#"{"swagger": "2.0", "paths": {}}"#, &fill)
                .unwrap_err()
                .contains("no `paths`")
        );
        assert!(
            render(r#"{"swagger": "2.0", "paths": {"/a": {"get": {}}}}"#, &fill)
                .unwrap_err()
                .contains("x-google-backend")
        );
    }

    #[test]
    fn routes_must_be_a_method_and_a_path() {
        assert!("POST customers".parse::<Route>().is_err());
        assert!("FETCH /customers".parse::<Route>().is_err());
        assert!("GET /a//b".parse::<Route>().is_err());
        assert_eq!(
            "get /orders/{order_id}".parse::<Route>().unwrap(),
            Route {
                method: "get".into(),
                path: "/orders/{order_id}".into()
            }
        );
    }
}

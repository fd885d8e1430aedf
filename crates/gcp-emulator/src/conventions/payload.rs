//! JSON payloads checked and shaped against discovery schemas: request validation with Google's
//! error wording, enum names <-> numbers, canonical int64/duration/timestamp forms, and the
//! proto3 habit of omitting default-valued fields in responses.

use serde_json::{Map, Value};

use super::error::ApiError;
use super::wire::{
    camel_case, format_duration_nanos, parse_duration_nanos, parse_timestamp, snake_case, timestamp,
};
use crate::discovery::{Api, Discovery, enum_name, enum_number, schema_name_for_type_url};

/// Whether a discovery property is output only (ignored on input).
pub fn is_output_only(property: &Value) -> bool {
    property.get("readOnly").and_then(Value::as_bool) == Some(true)
        || property
            .get("description")
            .and_then(Value::as_str)
            .is_some_and(|d| {
                d.starts_with("Output only.") || d.starts_with("Optional. Output only.")
            })
}

/// Validates and normalizes a request body against `schema_name`.
///
/// `root_field` is the proto field the body binds to (`queue`, `service`, or empty when the body
/// is the whole request message); it prefixes field paths in error messages.
pub fn normalize_request(
    discovery: &Discovery,
    api: Api,
    schema_name: &str,
    body: Value,
    root_field: &str,
) -> Result<Value, ApiError> {
    let walker = Walker { discovery, api };
    let schema_ref = serde_json::json!({ "$ref": schema_name });
    Ok(walker
        .normalize(&schema_ref, body, root_field)?
        .unwrap_or_else(|| Value::Object(Map::new())))
}

/// Shapes a response: omits default values, and encodes enums as numbers when `int_enums`.
pub fn render_response(
    discovery: &Discovery,
    api: Api,
    schema_name: Option<&str>,
    value: Value,
    int_enums: bool,
) -> Value {
    let Some(schema_name) = schema_name else {
        return value;
    };
    let walker = Walker { discovery, api };
    let schema_ref = serde_json::json!({ "$ref": schema_name });
    walker
        .render(&schema_ref, value, int_enums)
        .unwrap_or_else(|| Value::Object(Map::new()))
}

/// Looks up the property descriptor for a JSON path (`rateLimits.maxDispatchesPerSecond`) under
/// `schema_name`; `None` when some component is unknown. Used to validate update masks.
pub fn property_at_path<'a>(
    discovery: &'a Discovery,
    api: Api,
    schema_name: &str,
    path: &[String],
) -> Option<&'a Value> {
    let mut schema = discovery.schema(api, schema_name)?;
    let mut found = None;
    for (index, component) in path.iter().enumerate() {
        let property = schema.get("properties")?.get(component.as_str())?;
        found = Some(property);
        if index + 1 < path.len() {
            let reference = property.get("$ref").and_then(Value::as_str)?;
            schema = discovery.schema(api, reference)?;
        }
    }
    found
}

struct Walker<'a> {
    discovery: &'a Discovery,
    api: Api,
}

fn join_path(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

fn invalid_value(path: &str, type_label: &str, value: &Value) -> ApiError {
    let shown = serde_json::to_string(value).unwrap_or_default();
    ApiError::bad_field(
        path,
        format!("Invalid value at '{path}' ({type_label}), {shown}"),
    )
}

impl Walker<'_> {
    /// The schema an `Any` carries: `google.cloud.run.v2.Job` -> `GoogleCloudRunV2Job`, or the
    /// bare message name (`google.devtools.artifactregistry.v1.Repository` -> `Repository`).
    fn schema_for_type_url(&self, type_url: &str) -> Option<&Value> {
        schema_name_for_type_url(type_url)
            .and_then(|n| self.discovery.schema(self.api, &n))
            .or_else(|| {
                let short = type_url.rsplit('.').next()?;
                self.discovery.schema(self.api, short).or_else(|| {
                    let prefixed = format!("{}{short}", self.api.schema_prefix());
                    self.discovery.schema(self.api, &prefixed)
                })
            })
    }

    fn resolve<'s>(&'s self, property: &'s Value) -> Option<&'s Value> {
        match property.get("$ref").and_then(Value::as_str) {
            Some(reference) => self.discovery.schema(self.api, reference),
            None => None,
        }
    }

    fn normalize(
        &self,
        property: &Value,
        value: Value,
        path: &str,
    ) -> Result<Option<Value>, ApiError> {
        if value.is_null() {
            return Ok(None);
        }
        if let Some(schema) = self.resolve(property) {
            return self
                .normalize_message(schema, property, value, path)
                .map(Some);
        }
        let kind = property
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("any");
        let format = property.get("format").and_then(Value::as_str).unwrap_or("");
        if let Some(values) = property.get("enum").and_then(Value::as_array) {
            return match &value {
                Value::String(name) if values.iter().any(|v| v.as_str() == Some(name)) => {
                    Ok(Some(value))
                }
                Value::String(name) if self.api.enums_case_insensitive() => values
                    .iter()
                    .filter_map(Value::as_str)
                    .find(|v| v.eq_ignore_ascii_case(name))
                    .map(|v| Some(Value::String(v.to_string())))
                    .ok_or_else(|| invalid_value(path, "TYPE_ENUM", &value)),
                Value::Number(n) => match n.as_i64().and_then(|n| enum_name(values, n)) {
                    Some(name) => Ok(Some(Value::String(name))),
                    None => Err(invalid_value(path, "TYPE_ENUM", &value)),
                },
                _ => Err(invalid_value(path, "TYPE_ENUM", &value)),
            };
        }
        match kind {
            "array" => {
                let Value::Array(items) = value else {
                    return Err(invalid_value(path, "TYPE_REPEATED", &value));
                };
                let item_property = property.get("items").cloned().unwrap_or(Value::Null);
                let mut out = Vec::with_capacity(items.len());
                for (index, item) in items.into_iter().enumerate() {
                    if let Some(item) =
                        self.normalize(&item_property, item, &format!("{path}[{index}]"))?
                    {
                        out.push(item);
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            "object" => {
                let additional = property.get("additionalProperties");
                let is_any = additional
                    .and_then(|a| a.get("type"))
                    .and_then(Value::as_str)
                    == Some("any");
                match (value, additional) {
                    (Value::Object(map), Some(entry_property)) if !is_any => {
                        let mut out = Map::new();
                        for (key, entry) in map {
                            if let Some(entry) =
                                self.normalize(entry_property, entry, &format!("{path}[{key}]"))?
                            {
                                out.insert(key, entry);
                            }
                        }
                        Ok(Some(Value::Object(out)))
                    }
                    (value @ Value::Object(_), _) => Ok(Some(value)),
                    (value, _) => Err(invalid_value(path, "TYPE_MESSAGE", &value)),
                }
            }
            "string" => self.normalize_string(format, value, path).map(Some),
            "integer" => match &value {
                Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Some(value)),
                Value::String(s) => s
                    .parse::<i64>()
                    .map(|n| Some(Value::from(n)))
                    .map_err(|_| invalid_value(path, integer_label(format), &value)),
                _ => Err(invalid_value(path, integer_label(format), &value)),
            },
            "number" => match &value {
                Value::Number(_) => Ok(Some(value)),
                Value::String(s) => {
                    match s.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                        Some(n) => Ok(Some(Value::Number(n))),
                        None if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") => {
                            Ok(Some(value))
                        }
                        None => Err(invalid_value(path, "TYPE_DOUBLE", &value)),
                    }
                }
                _ => Err(invalid_value(path, "TYPE_DOUBLE", &value)),
            },
            "boolean" => match value {
                Value::Bool(_) => Ok(Some(value)),
                other => Err(invalid_value(path, "TYPE_BOOL", &other)),
            },
            _ => Ok(Some(value)),
        }
    }

    fn normalize_string(&self, format: &str, value: Value, path: &str) -> Result<Value, ApiError> {
        match format {
            "int64" | "uint64" => match &value {
                Value::Number(n) if n.is_i64() || n.is_u64() => Ok(Value::String(n.to_string())),
                Value::String(s) if s.parse::<i128>().is_ok() => Ok(value),
                _ => Err(invalid_value(
                    path,
                    if format == "int64" {
                        "TYPE_INT64"
                    } else {
                        "TYPE_UINT64"
                    },
                    &value,
                )),
            },
            "google-duration" => match value.as_str().and_then(parse_duration_nanos) {
                Some(nanos) => Ok(Value::String(format_duration_nanos(nanos))),
                None => Err(invalid_value(
                    path,
                    "type.googleapis.com/google.protobuf.Duration",
                    &value,
                )),
            },
            "google-datetime" => match value.as_str().and_then(parse_timestamp) {
                Some(at) => Ok(Value::String(timestamp(at))),
                None => Err(invalid_value(
                    path,
                    "type.googleapis.com/google.protobuf.Timestamp",
                    &value,
                )),
            },
            _ => match value {
                Value::String(_) => Ok(value),
                other => Err(invalid_value(path, "TYPE_STRING", &other)),
            },
        }
    }

    fn normalize_message(
        &self,
        schema: &Value,
        property: &Value,
        value: Value,
        path: &str,
    ) -> Result<Value, ApiError> {
        let Value::Object(fields) = value else {
            let label = property
                .get("$ref")
                .and_then(Value::as_str)
                .unwrap_or("TYPE_MESSAGE");
            return Err(invalid_value(path, label, &value));
        };
        let properties = schema.get("properties").and_then(Value::as_object);
        let mut out = Map::new();
        for (key, field_value) in fields {
            let json_name = if properties.is_some_and(|p| p.contains_key(&key)) {
                key.clone()
            } else {
                camel_case(&key)
            };
            let Some(field_property) = properties.and_then(|p| p.get(&json_name)) else {
                let message = if path.is_empty() {
                    format!(
                        "Invalid JSON payload received. Unknown name \"{key}\": Cannot find field."
                    )
                } else {
                    format!(
                        "Invalid JSON payload received. Unknown name \"{key}\" at '{path}': Cannot find field."
                    )
                };
                return Err(ApiError::bad_field(path, message));
            };
            if is_output_only(field_property) {
                continue;
            }
            let child_path = join_path(path, &snake_case(&json_name));
            if let Some(normalized) = self.normalize(field_property, field_value, &child_path)? {
                out.insert(json_name, normalized);
            }
        }
        Ok(Value::Object(out))
    }

    fn render(&self, property: &Value, value: Value, int_enums: bool) -> Option<Value> {
        if value.is_null() {
            return None;
        }
        if let Some(schema) = self.resolve(property) {
            return Some(self.render_message(schema, value, int_enums));
        }
        if let Some(values) = property.get("enum").and_then(Value::as_array) {
            let name = value.as_str()?;
            if values.first().and_then(Value::as_str) == Some(name) {
                return None;
            }
            return Some(match (int_enums, enum_number(values, name)) {
                (true, Some(number)) => Value::from(number),
                _ => value,
            });
        }
        let kind = property
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("any");
        match (kind, value) {
            ("array", Value::Array(items)) => {
                let item_property = property.get("items").cloned().unwrap_or(Value::Null);
                let out: Vec<Value> = items
                    .into_iter()
                    .filter_map(|item| self.render(&item_property, item, int_enums))
                    .collect();
                (!out.is_empty()).then_some(Value::Array(out))
            }
            ("object", Value::Object(map)) => {
                let additional = property.get("additionalProperties");
                let is_any = additional
                    .and_then(|a| a.get("type"))
                    .and_then(Value::as_str)
                    == Some("any");
                if let Some(type_url) = map.get("@type").and_then(Value::as_str)
                    && let Some(schema) = self.schema_for_type_url(type_url)
                {
                    return Some(self.render_message(schema, Value::Object(map), int_enums));
                }
                match additional {
                    Some(entry_property) if !is_any => {
                        let out: Map<String, Value> = map
                            .into_iter()
                            .filter_map(|(k, v)| {
                                self.render(entry_property, v, int_enums).map(|v| (k, v))
                            })
                            .collect();
                        (!out.is_empty()).then_some(Value::Object(out))
                    }
                    _ => Some(Value::Object(map)),
                }
            }
            (_, Value::Bool(false)) => None,
            (_, Value::String(s)) if s.is_empty() => None,
            ("string", Value::String(s))
                if s == "0" && property.get("format").and_then(Value::as_str) == Some("int64") =>
            {
                None
            }
            (_, Value::Number(n)) if n.as_f64() == Some(0.0) => None,
            (_, value) => Some(value),
        }
    }

    fn render_message(&self, schema: &Value, value: Value, int_enums: bool) -> Value {
        let Value::Object(fields) = value else {
            return value;
        };
        let properties = schema.get("properties").and_then(Value::as_object);
        let schema_id = schema.get("id").and_then(Value::as_str).unwrap_or_default();
        let mut out = Map::new();
        for (key, field_value) in fields {
            if field_value == Value::Bool(false) && has_presence(schema_id, &key) {
                out.insert(key, field_value);
                continue;
            }
            match properties.and_then(|p| p.get(&key)) {
                Some(field_property) => {
                    if let Some(rendered) = self.render(field_property, field_value, int_enums) {
                        out.insert(key, rendered);
                    }
                }
                None => {
                    out.insert(key, field_value);
                }
            }
        }
        Value::Object(out)
    }
}

/// Fields with presence (`google.protobuf.BoolValue`, members of a `oneof`): an explicit `false`
/// or `0` is served, not omitted. Cloud Run's `maxRetries` is `oneof retries`: omitting an explicit
/// 0 made every read-modify-write (a deploy) turn `max_retries = 0` into the default 3.
const PRESENCE_FIELDS: &[(&str, &str)] = &[
    ("AlertPolicy", "enabled"),
    ("NotificationChannel", "enabled"),
    ("GoogleCloudRunV2TaskTemplate", "maxRetries"),
];

fn has_presence(schema_id: &str, field: &str) -> bool {
    PRESENCE_FIELDS
        .iter()
        .any(|(s, f)| *s == schema_id && *f == field)
}

fn integer_label(format: &str) -> &'static str {
    match format {
        "uint32" => "TYPE_UINT32",
        _ => "TYPE_INT32",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn discovery() -> Discovery {
        Discovery::load().expect("discovery loads")
    }

    #[test]
    fn unknown_field_uses_google_wording() {
        let d = discovery();
        let body = json!({"name": "q", "rateLimits": {"foo": 1}});
        let error =
            normalize_request(&d, Api::CloudTasks, "Queue", body, "queue").expect_err("rejected");
        assert_eq!(
            error.message,
            "Invalid JSON payload received. Unknown name \"foo\" at 'queue.rate_limits': Cannot find field."
        );
        assert_eq!(error.code.http_status(), 400);
        let error = normalize_request(
            &d,
            Api::CloudTasks,
            "PauseQueueRequest",
            json!({"bar": 1}),
            "",
        )
        .expect_err("rejected");
        assert_eq!(
            error.message,
            "Invalid JSON payload received. Unknown name \"bar\": Cannot find field."
        );
    }

    #[test]
    fn enums_accept_numbers_and_names_and_output_only_is_dropped() {
        let d = discovery();
        let body = json!({"state": 2, "httpTarget": {"httpMethod": 1, "uriOverride": {"port": 8080}},
                          "retry_config": {"minBackoff": "0.1s"}, "rateLimits": {"maxBurstSize": 7}});
        let queue = normalize_request(&d, Api::CloudTasks, "Queue", body, "queue").expect("valid");
        assert_eq!(queue["httpTarget"]["httpMethod"], "POST");
        assert_eq!(queue["httpTarget"]["uriOverride"]["port"], "8080");
        assert_eq!(queue["retryConfig"]["minBackoff"], "0.100s");
        assert!(queue.get("state").is_none(), "state is output only");
        assert!(queue["rateLimits"].get("maxBurstSize").is_none());
        let error = normalize_request(
            &d,
            Api::CloudTasks,
            "Queue",
            json!({"httpTarget": {"httpMethod": "FETCH"}}),
            "queue",
        )
        .expect_err("bad enum");
        assert!(
            error
                .message
                .starts_with("Invalid value at 'queue.http_target.http_method'"),
            "{}",
            error.message
        );
    }

    #[test]
    fn responses_encode_enums_as_numbers_on_request_and_omit_defaults() {
        let d = discovery();
        let queue = json!({"name": "q", "state": "PAUSED", "rateLimits": {"maxDispatchesPerSecond": 500.0, "maxBurstSize": 0}, "purgeTime": ""});
        let rendered = render_response(&d, Api::CloudTasks, Some("Queue"), queue.clone(), true);
        assert_eq!(
            rendered,
            json!({"name": "q", "state": 2, "rateLimits": {"maxDispatchesPerSecond": 500.0}})
        );
        let named = render_response(&d, Api::CloudTasks, Some("Queue"), queue, false);
        assert_eq!(named["state"], "PAUSED");
        let operation = json!({"name": "op", "done": false, "metadata": {"@type": "type.googleapis.com/google.cloud.run.v2.Service", "launchStage": "GA", "reconciling": true}});
        let rendered = render_response(
            &d,
            Api::CloudRun,
            Some("GoogleLongrunningOperation"),
            operation,
            true,
        );
        assert_eq!(
            rendered,
            json!({"name": "op", "metadata": {"@type": "type.googleapis.com/google.cloud.run.v2.Service", "launchStage": 4, "reconciling": true}})
        );
    }
}

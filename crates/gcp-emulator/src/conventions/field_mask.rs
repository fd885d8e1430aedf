//! `updateMask` (AIP-134): comma-separated field paths in camelCase or snake_case, validated
//! against the resource schema and applied to JSON resources.

use serde_json::{Map, Value};

use super::error::ApiError;
use super::payload::{is_output_only, property_at_path};
use super::wire::camel_case;
use crate::discovery::{Api, Discovery};

/// A parsed, validated update mask; each path is a list of camelCase JSON names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMask {
    pub paths: Vec<Vec<String>>,
}

impl FieldMask {
    /// Parses `raw` and checks each path exists in `schema_name`. Output-only paths are dropped.
    pub fn parse(
        raw: Option<&str>,
        discovery: &Discovery,
        api: Api,
        schema_name: &str,
    ) -> Result<Self, ApiError> {
        let mut paths = Vec::new();
        for path in raw
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let components: Vec<String> = path.split('.').map(camel_case).collect();
            let Some(property) = property_at_path(discovery, api, schema_name, &components) else {
                return Err(ApiError::invalid_argument(format!(
                    "Invalid field mask path: \"{path}\"."
                )));
            };
            if !is_output_only(property) {
                paths.push(components);
            }
        }
        Ok(Self { paths })
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Copies every masked path from `source` into `target`; a path absent in `source` is
    /// cleared in `target` (so the server default applies again).
    pub fn apply(&self, source: &Value, target: &mut Value) {
        for path in &self.paths {
            let value = lookup(source, path).cloned();
            set_path(target, path, value);
        }
    }
}

fn lookup<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter()
        .try_fold(value, |node, key| node.get(key.as_str()))
}

fn set_path(target: &mut Value, path: &[String], value: Option<Value>) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = target;
    for key in parents {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        let Value::Object(map) = node else { return };
        node = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    if let Value::Object(map) = node {
        match value {
            Some(value) => {
                map.insert(last.clone(), value);
            }
            None => {
                map.remove(last);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn masks_accept_both_spellings_and_reset_absent_fields() {
        let discovery = Discovery::load().expect("discovery loads");
        let mask = FieldMask::parse(
            Some("rateLimits.maxDispatchesPerSecond,retry_config.max_attempts"),
            &discovery,
            Api::CloudTasks,
            "Queue",
        )
        .expect("valid mask");
        let mut stored = json!({"rateLimits": {"maxDispatchesPerSecond": 500.0, "maxConcurrentDispatches": 1000},
                                "retryConfig": {"maxAttempts": 100}});
        mask.apply(
            &json!({"rateLimits": {"maxDispatchesPerSecond": 5.0}}),
            &mut stored,
        );
        assert_eq!(
            stored,
            json!({"rateLimits": {"maxDispatchesPerSecond": 5.0, "maxConcurrentDispatches": 1000},
                                  "retryConfig": {}})
        );
        let error = FieldMask::parse(
            Some("rateLimits.nope"),
            &discovery,
            Api::CloudTasks,
            "Queue",
        )
        .expect_err("bad path");
        assert_eq!(error.code.http_status(), 400);
    }
}

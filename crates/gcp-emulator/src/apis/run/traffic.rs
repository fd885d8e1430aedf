//! Traffic targets: their validation against known revisions and the `trafficStatuses` a ready
//! service reports (tag URLs included).

use serde_json::{Map, Value, json};

use super::names::ServiceName;
use crate::conventions::ApiError;

pub(super) const LATEST: &str = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST";
pub(super) const BY_REVISION: &str = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION";

pub(super) fn validate_traffic(
    traffic: &[Value],
    name: &ServiceName,
    known_revisions: &[String],
) -> Result<(), ApiError> {
    let mut total = 0;
    for target in traffic {
        total += target.get("percent").and_then(Value::as_i64).unwrap_or(0);
        let kind = target.get("type").and_then(Value::as_str).unwrap_or("");
        if kind == BY_REVISION {
            let revision = target.get("revision").and_then(Value::as_str).unwrap_or("");
            if !known_revisions
                .iter()
                .any(|known| known == &name.revision(revision))
            {
                return Err(ApiError::invalid_argument(format!(
                    "Revision '{revision}' referenced in traffic does not exist for service '{}'.",
                    name.id
                )));
            }
        } else if kind != LATEST {
            return Err(ApiError::invalid_argument(
                "traffic[].type must be LATEST or REVISION.",
            ));
        }
    }
    if total != 100 {
        return Err(ApiError::invalid_argument(format!(
            "Traffic percents must add up to 100, got {total}."
        )));
    }
    Ok(())
}

pub(super) fn traffic_statuses(service: &Value) -> Value {
    let statuses: Vec<Value> = service
        .get("traffic")
        .and_then(Value::as_array)
        .map(|targets| {
            targets
                .iter()
                .map(|target| {
                    let mut status = Map::new();
                    for field in ["type", "revision", "percent", "tag"] {
                        if let Some(value) = target.get(field) {
                            status.insert(field.into(), value.clone());
                        }
                    }
                    if let (Some(tag), Some(uri)) = (
                        target
                            .get("tag")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty()),
                        service.get("uri").and_then(Value::as_str),
                    ) {
                        status.insert(
                            "uri".into(),
                            json!(uri.replacen("https://", &format!("https://{tag}---"), 1)),
                        );
                    }
                    Value::Object(status)
                })
                .collect()
        })
        .unwrap_or_default();
    Value::Array(statuses)
}

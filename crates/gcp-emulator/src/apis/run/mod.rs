//! Cloud Run Admin v2 services, their revisions, and the long-running operations that roll them
//! out; plus what Cloud Run jobs share with services (conditions, the failing-image marker, the
//! modifier, etag checks). Each submodule owns one part.

mod defaults;
pub(crate) mod names;
mod revisions;
mod rollout;
mod seed;
mod services;
mod traffic;

#[cfg(test)]
mod tests;

use serde_json::{Value, json};

use crate::conventions::ApiError;

pub(crate) use defaults::{
    default_timeout_and_account, require_containers, settable_fields, spec_in,
};
pub use revisions::{get_revision, list_revisions};
pub use rollout::complete_operation;
pub use seed::seed_service_age;
pub use services::{
    create_service, delete_service, get_service, list_services, patch_service, service_iam,
};

pub(super) const SERVICE_SCHEMA: &str = "GoogleCloudRunV2Service";
pub const SERVICE_TYPE_URL: &str = "type.googleapis.com/google.cloud.run.v2.Service";
/// An image containing this marker makes its revision fail to become ready.
pub const FAILING_IMAGE_MARKER: &str = "emulator-fail";
pub(crate) const MODIFIER: &str = "emulator@stackctl.local";

/// Service fields in proto field-number order (the order real responses use).
pub(super) const SERVICE_FIELD_ORDER: &[&str] = &[
    "name",
    "description",
    "uid",
    "generation",
    "labels",
    "annotations",
    "createTime",
    "updateTime",
    "deleteTime",
    "expireTime",
    "creator",
    "lastModifier",
    "client",
    "clientVersion",
    "ingress",
    "launchStage",
    "binaryAuthorization",
    "template",
    "traffic",
    "scaling",
    "invokerIamDisabled",
    "defaultUriDisabled",
    "urls",
    "customAudiences",
    "observedGeneration",
    "terminalCondition",
    "conditions",
    "latestReadyRevision",
    "latestCreatedRevision",
    "trafficStatuses",
    "uri",
    "satisfiesPzs",
    "buildConfig",
    "reconciling",
    "etag",
];

pub(crate) fn condition(kind: &str, state: &str, now: &str, message: Option<&str>) -> Value {
    let mut condition = json!({ "type": kind, "state": state });
    if let Some(message) = message {
        condition["message"] = json!(message);
    }
    condition["lastTransitionTime"] = json!(now);
    condition
}

pub(crate) fn failing_image(template: &Value) -> Option<String> {
    template
        .get("containers")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|c| c.get("image").and_then(Value::as_str))
        .find(|image| image.contains(FAILING_IMAGE_MARKER))
        .map(str::to_string)
}

pub(crate) fn check_etag(current: &Value, sent: Option<&str>) -> Result<(), ApiError> {
    let Some(sent) = sent.filter(|e| !e.is_empty()) else {
        return Ok(());
    };
    let current = current
        .get("etag")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if sent == current || sent.trim_matches('"') == current.trim_matches('"') {
        Ok(())
    } else {
        Err(ApiError::aborted(format!(
            "The etag {sent} does not match the current etag {current}: the service was modified concurrently."
        )))
    }
}

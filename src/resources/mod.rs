//! Resource kinds: each kind's desired spec (from stack.toml), how live state is normalized into
//! its vocabulary, the field diff, and the provider calls that make it so.

pub mod queue;
pub mod service;

use serde::{Deserialize, Serialize};

/// The label that marks a resource as owned by a stack: `stackctl-stack=<name>`.
pub const OWNER_LABEL: &str = "stackctl-stack";

/// What a plan asks apply to write, per kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Desired {
    Queue(queue::QueueSpec),
    Service(service::ServiceSpec),
}

/// A stable fingerprint of observed state for kinds without an etag.
pub fn fingerprint_of<T: Serialize>(observed: &T) -> String {
    use sha2::Digest;
    let json = serde_json::to_vec(observed).unwrap_or_default();
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(json)))
}

/// Pushes a change for `field` when the declared and live values differ.
pub(crate) fn push_if_differs<T: PartialEq>(
    out: &mut Vec<crate::plan::FieldChange>,
    field: &str,
    desired: T,
    live: T,
    show: impl Fn(&T) -> String,
) {
    if desired != live {
        out.push(crate::plan::FieldChange::new(
            field,
            Some(show(&live)),
            Some(crate::plan::FieldValue::Known(show(&desired))),
        ));
    }
}

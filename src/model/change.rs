//! The plain-data vocabulary of a change, shared by plan/, resources/ and apply/: what apply does
//! to one resource ([`Action`]), the fields that differ ([`FieldChange`]) and the step a kind
//! converges ([`Step`]).

use serde::{Deserialize, Serialize};

use super::ResourceAddr;

/// What apply will do to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    /// Pause a queue that left stack.toml instead of deleting it (its name would be blocked for days).
    Retire,
    Delete,
    /// Delete and create again: a field that cannot change in place changed (`-/+`).
    Replace,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update | Action::Retire => "~",
            Action::Delete => "-",
            Action::Replace => "-/+",
        }
    }
}

/// A value as the plan shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldValue {
    Known(String),
    /// Decided by the cloud during apply, e.g. a service URL.
    KnownAfterApply,
}

impl std::fmt::Display for FieldValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldValue::Known(v) => f.write_str(v),
            FieldValue::KnownAfterApply => f.write_str("(known after apply)"),
        }
    }
}

/// One field that differs, in stack.toml's vocabulary (`min_backoff`, `"1s"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    /// `None` when the resource does not exist yet or the field was unset.
    pub before: Option<String>,
    /// `None` when the field is being removed.
    pub after: Option<FieldValue>,
    /// This field cannot change in place: the resource is replaced (`# forces replacement`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forces_replacement: bool,
}

impl FieldChange {
    pub fn new(
        field: impl Into<String>,
        before: Option<String>,
        after: Option<FieldValue>,
    ) -> Self {
        Self {
            field: field.into(),
            before,
            after,
            forces_replacement: false,
        }
    }

    /// Marks the field as one that cannot change in place.
    pub fn forcing_replacement(mut self) -> Self {
        self.forces_replacement = true;
        self
    }
}

/// One step of an apply: which resource, what to do, the fields that differ, and the
/// fingerprint of what was observed. A kind's `converge` reads nothing else of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub address: ResourceAddr,
    /// Full GCP resource name.
    pub name: String,
    pub action: Action,
    pub fields: Vec<FieldChange>,
    /// Fingerprint of the observed resource (etag, or a hash of its observed state);
    /// apply refuses a saved plan if it no longer matches.
    pub fingerprint: Option<String>,
}

//! Plans as values: what would change, resource by resource and field by field. Pure; no I/O.

mod planner;

pub use planner::{
    Observed, PlanError, PlanOptions, current_fingerprint, known_before_apply, plan,
};

use serde::{Deserialize, Serialize};

use crate::cost::{PlanCost, ResourceCost};
use crate::model::{Endpoint, ResourceAddr};
use crate::resources::Desired;

/// Bumped whenever a saved plan's shape changes; older plans are refused.
pub const PLAN_FORMAT_VERSION: u32 = 2;

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

/// One planned change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub address: ResourceAddr,
    /// Full GCP resource name.
    pub name: String,
    pub action: Action,
    pub fields: Vec<FieldChange>,
    /// Fingerprint of the observed resource (etag, or a hash of its observed state);
    /// apply refuses a saved plan if it no longer matches.
    pub fingerprint: Option<String>,
    /// What apply writes (absent for deletes).
    pub desired: Option<Desired>,
    /// Declared resources this one needs first.
    pub depends_on: Vec<ResourceAddr>,
    /// Extra lines for the reader, e.g. why a queue is paused rather than deleted.
    pub notes: Vec<String>,
    /// Monthly cost before (live) and after (stack.toml) this change.
    pub cost: ResourceCost,
}

/// Where a plan was made, so it is never applied elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanTarget {
    pub stack: String,
    pub project: String,
    pub region: String,
    pub endpoint: Endpoint,
}

/// The whole plan: everything apply will do, and nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub target: PlanTarget,
    /// Sorted by address.
    pub changes: Vec<ResourceChange>,
    /// Declared resources that already match.
    pub unchanged: Vec<ResourceAddr>,
    /// The stack's monthly cost before and after the plan (unchanged resources included).
    pub cost: PlanCost,
}

/// Counts per action, for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub retire: usize,
    pub delete: usize,
    pub replace: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Retire => s.retire += 1,
                Action::Delete => s.delete += 1,
                Action::Replace => s.replace += 1,
            }
        }
        s
    }
}

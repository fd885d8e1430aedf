//! Plans as values: what would change, resource by resource and field by field. Pure; no I/O.

mod planner;
mod stale;

#[cfg(test)]
mod snapshots_tests;

pub use planner::{
    Observed, PlanError, PlanOptions, current_fingerprint, known_before_apply, plan,
};
pub use stale::stale_changes;

use serde::{Deserialize, Serialize};

use crate::cost::{PlanCost, ResourceCost};
pub use crate::model::change::{Action, FieldChange, FieldValue, Step};
use crate::model::{Endpoint, ResourceAddr};
use crate::resources::Desired;

/// Bumped whenever a saved plan's shape changes; older plans are refused.
pub const PLAN_FORMAT_VERSION: u32 = 2;

/// One planned change: the step apply takes (what a kind's `converge` reads) and what the plan
/// says about it. Its fields read through to the step (`change.address`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    #[serde(flatten)]
    pub step: Step,
    /// What apply writes (absent for deletes).
    pub desired: Option<Desired>,
    /// Declared resources this one needs first.
    pub depends_on: Vec<ResourceAddr>,
    /// Extra lines for the reader, e.g. why a queue is paused rather than deleted.
    pub notes: Vec<String>,
    /// Monthly cost before (live) and after (stack.toml) this change.
    pub cost: ResourceCost,
}

impl ResourceChange {
    /// Why this change would lose data, and how to migrate instead; `None` when it loses none.
    pub fn data_loss(&self) -> Option<String> {
        crate::resources::registry::data_loss(&self.step, self.desired.as_ref())
    }
}

impl std::ops::Deref for ResourceChange {
    type Target = Step;
    fn deref(&self) -> &Step {
        &self.step
    }
}

impl std::ops::DerefMut for ResourceChange {
    fn deref_mut(&mut self) -> &mut Step {
        &mut self.step
    }
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
    /// Declared resources no apply can make until the user gives a value (a channel whose
    /// token's secret has no version): left out of `changes`, each with what to do.
    #[serde(default)]
    pub waiting: Vec<WaitingResource>,
    /// The stack's monthly cost before and after the plan (unchanged resources included).
    pub cost: PlanCost,
}

/// A declared resource the plan leaves out until the user acts, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingResource {
    pub address: ResourceAddr,
    pub reason: String,
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

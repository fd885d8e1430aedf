//! How apply tells the world what it is doing: the reporter trait, and the report it returns.

use std::time::Duration;

use serde::Serialize;

use crate::model::ResourceAddr;
use crate::plan::{Action, ResourceChange};

/// Receives apply's progress. Implemented by the terminal UI.
pub trait ApplyReporter: Send + Sync {
    fn started(&self, change: &ResourceChange);
    fn phase(&self, address: &ResourceAddr, phase: &str);
    fn retrying(&self, address: &ResourceAddr, attempt: u32, delay: Duration, reason: &str);
    fn finished(
        &self,
        address: &ResourceAddr,
        action: Action,
        outcome: &Outcome,
        elapsed: Duration,
    );
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed {
        error: String,
    },
    /// Not attempted because something it needs failed.
    Skipped {
        because: ResourceAddr,
    },
    /// Not made yet because a value only the user can give is missing (a channel's token in a
    /// secret with no version): not a failure; its dependents go on without it, and the next
    /// apply after the fix makes it.
    Waiting {
        reason: String,
    },
}

impl Outcome {
    /// Whether the changes that depend on this one may go ahead.
    pub fn lets_dependents_run(&self) -> bool {
        matches!(self, Outcome::Succeeded | Outcome::Waiting { .. })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ResourceResult {
    pub address: ResourceAddr,
    pub action: Action,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub elapsed_ms: u128,
}

/// What apply did, resource by resource (sorted by address).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    pub results: Vec<ResourceResult>,
}

impl ApplyReport {
    pub fn succeeded(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.outcome == Outcome::Succeeded)
            .count()
    }

    pub fn failures(&self) -> impl Iterator<Item = &ResourceResult> {
        self.results
            .iter()
            .filter(|r| !r.outcome.lets_dependents_run())
    }

    /// The changes left for a later apply, each with what it waits for.
    pub fn waiting(&self) -> impl Iterator<Item = (&ResourceAddr, &str)> {
        self.results.iter().filter_map(|r| match &r.outcome {
            Outcome::Waiting { reason } => Some((&r.address, reason.as_str())),
            _ => None,
        })
    }

    pub fn is_success(&self) -> bool {
        self.failures().next().is_none()
    }
}

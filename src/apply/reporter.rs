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
            .filter(|r| r.outcome != Outcome::Succeeded)
    }

    pub fn is_success(&self) -> bool {
        self.failures().next().is_none()
    }
}

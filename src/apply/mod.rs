//! Executing a plan: dependency order, bounded parallelism, one operation per resource, dependents of a
//! failure skipped, independent branches carried on, every outcome reported.

mod execute;
pub mod graph;
mod reporter;

pub use crate::resources::ApplyCtx;
pub use execute::{StepGate, apply};
pub use reporter::{ApplyReport, ApplyReporter, Outcome, ResourceResult};

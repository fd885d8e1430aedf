//! Executing a plan: dependency order, bounded parallelism, one operation per resource, dependents of a
//! failure skipped, independent branches carried on, every outcome reported.

mod execute;
pub mod graph;
mod reporter;

pub use execute::{ApplyContext, apply};
pub use reporter::{ApplyReport, ApplyReporter, Outcome, RecordingReporter, ResourceResult};

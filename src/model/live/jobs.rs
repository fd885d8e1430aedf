//! Cloud Run job live records.

use std::collections::BTreeMap;
use std::time::Duration;

use super::run::SecretEnvRef;

/// A job as the API reports it, in plain Rust types.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobRecord {
    /// `projects/P/locations/L/jobs/ID`
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub etag: String,
    pub image: String,
    pub env: BTreeMap<String, String>,
    pub secret_env: BTreeMap<String, SecretEnvRef>,
    pub limits: BTreeMap<String, String>,
    /// 0 = unset (the API's default, 600s).
    pub task_timeout: Option<Duration>,
    /// `None` = unset (the API's default, 3).
    pub max_retries: Option<i32>,
    /// 0 = unset (as many as possible).
    pub parallelism: i32,
    /// 0 = unset (1).
    pub task_count: i32,
    pub service_account: String,
}

/// One execution of a job, as the audit reads it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExecutionRecord {
    /// `projects/P/locations/L/jobs/ID/executions/E`
    pub name: String,
    pub start: Option<chrono::DateTime<chrono::Utc>>,
    /// `None` while it runs.
    pub completion: Option<chrono::DateTime<chrono::Utc>>,
    pub task_count: i32,
    pub succeeded_count: i32,
    pub failed_count: i32,
    /// Tasks that were retried at least once.
    pub retried_count: i32,
}

impl ExecutionRecord {
    /// Finished with at least one task failed for good.
    pub fn failed(&self) -> bool {
        self.completion.is_some() && self.failed_count > 0
    }
}

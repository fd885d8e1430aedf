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

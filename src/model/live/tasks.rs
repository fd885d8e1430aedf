//! Cloud Tasks live records: a queue, its state, and its queue-level HTTP target.

use std::time::Duration;

/// A queue as the API reports it, in plain Rust types.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueueRecord {
    /// `projects/P/locations/L/queues/ID`
    pub name: String,
    pub state: QueueState,
    pub max_dispatches_per_second: f64,
    pub max_concurrent_dispatches: i32,
    pub max_attempts: i32,
    pub min_backoff: Option<Duration>,
    pub max_backoff: Option<Duration>,
    pub max_doublings: i32,
    pub max_retry_duration: Option<Duration>,
    /// Queue-level HTTP target: every task is sent to `https://HOST/PATH` with POST.
    pub http_target: Option<HttpTargetRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HttpTargetRecord {
    pub host: String,
    pub path: Option<String>,
    /// The OIDC token tasks carry, if any.
    pub oidc: Option<OidcRecord>,
}

/// `httpTarget.oidcToken`: whose identity a task is sent with, for which audience.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OidcRecord {
    pub service_account_email: String,
    pub audience: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QueueState {
    Running,
    Paused,
    Disabled,
    Unspecified,
}

impl QueueState {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueState::Running => "RUNNING",
            QueueState::Paused => "PAUSED",
            QueueState::Disabled => "DISABLED",
            QueueState::Unspecified => "STATE_UNSPECIFIED",
        }
    }
}

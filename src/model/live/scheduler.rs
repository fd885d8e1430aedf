//! Cloud Scheduler live records: a Scheduler job and its HTTP target.

/// A Scheduler job as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScheduleRecord {
    /// `projects/P/locations/L/jobs/ID`
    pub name: String,
    pub schedule: String,
    pub time_zone: String,
    /// `ENABLED`, `PAUSED`, `DISABLED`, `UPDATE_FAILED`.
    pub state: String,
    /// The HTTP target's URI and method (`None` for Pub/Sub or App Engine targets).
    pub uri: Option<String>,
    pub http_method: String,
    pub oauth_service_account: String,
    pub oauth_scope: String,
}

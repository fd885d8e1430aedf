//! Cloud Monitoring live records: notification channels and alert policies with their threshold conditions.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A notification channel as the API reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelRecord {
    /// `projects/P/notificationChannels/ID` (server-assigned)
    pub name: String,
    pub kind: String,
    pub display_name: String,
    /// The channel's non-sensitive labels (`email_address`, `channel_name`, `url`, ...); the
    /// sensitive ones, which Google returns masked, are dropped when read.
    pub labels: BTreeMap<String, String>,
    pub user_labels: BTreeMap<String, String>,
}

/// One threshold condition of an alert policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionRecord {
    pub display_name: String,
    pub filter: String,
    pub denominator_filter: Option<String>,
    /// `COMPARISON_GT`, ...
    pub comparison: String,
    pub threshold: f64,
    pub duration: Duration,
    pub aligner: String,
    pub reducer: Option<String>,
    pub group_by: Vec<String>,
    pub period: Duration,
}

/// An alert policy as the API reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRecord {
    /// `projects/P/alertPolicies/ID` (server-assigned)
    pub name: String,
    pub display_name: String,
    pub user_labels: BTreeMap<String, String>,
    pub enabled: bool,
    pub combiner: String,
    /// Threshold conditions; other condition types are reported as `None`.
    pub conditions: Vec<Option<ConditionRecord>>,
    pub channels: Vec<String>,
    /// `documentation.content`; `None` when empty.
    pub documentation: Option<String>,
    /// `CRITICAL`, `ERROR` or `WARNING`; `None` when unspecified.
    pub severity: Option<String>,
}

/// An HTTPS uptime check config as the API reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UptimeRecord {
    /// `projects/P/uptimeCheckConfigs/ID` (server-assigned)
    pub name: String,
    pub display_name: String,
    /// The `host` label of its `uptime_url` monitored resource.
    pub host: String,
    pub path: String,
    pub use_ssl: bool,
    pub port: i32,
    pub period: Duration,
    pub timeout: Duration,
    /// `USA`, `EUROPE`, ... sorted; empty: all regions.
    pub regions: Vec<String>,
    /// Accepted status classes (`STATUS_CLASS_2XX`, ...); empty: Google's default (2xx).
    pub status_classes: Vec<String>,
    pub user_labels: BTreeMap<String, String>,
}

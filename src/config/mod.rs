//! `stack.toml`: loading, defaults, validation with file:line:column diagnostics, and the typed model.
//!
//! Every `Option` field below is "don't care": absent from stack.toml and without a stackctl
//! default, so it is never diffed. Non-`Option` fields are declared or defaulted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::ResourceAddr;

mod diagnostics;
mod load;
pub mod units;

pub use diagnostics::{ConfigError, ConfigErrors};
pub use load::{load, parse};

/// A whole, validated stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// The stack file it was loaded from (for messages and for `.stackctl/` beside it).
    pub file: PathBuf,
    pub settings: StackSettings,
    pub services: BTreeMap<String, ServiceConfig>,
    pub queues: BTreeMap<String, QueueConfig>,
    pub service_accounts: BTreeMap<String, ServiceAccountConfig>,
    pub secrets: BTreeMap<String, SecretConfig>,
    pub jobs: BTreeMap<String, JobConfig>,
    pub schedules: BTreeMap<String, ScheduleConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StackSettings {
    /// Ownership label value: `stackctl-stack=<name>`.
    pub name: String,
    pub project: String,
    pub region: String,
    /// Labels added to every labelable resource of the stack.
    pub labels: BTreeMap<String, String>,
    /// Explicit `state_bucket`; `None` means `<project>-stackctl-state`.
    pub state_bucket: Option<String>,
}

impl Stack {
    /// Applies the global `--project` / `--region` overrides (one stack file, several environments).
    pub fn with_overrides(mut self, project: Option<&str>, region: Option<&str>) -> Self {
        if let Some(p) = project {
            self.settings.project = p.to_string();
        }
        if let Some(r) = region {
            self.settings.region = r.to_string();
        }
        self
    }

    /// The bucket holding the ownership ledger and the apply lock.
    pub fn state_bucket(&self) -> String {
        self.settings
            .state_bucket
            .clone()
            .unwrap_or_else(|| format!("{}-stackctl-state", self.settings.project))
    }
}

/// `[service.NAME]`: a Cloud Run v2 service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// GCP service id (`NAME` unless `id = "..."`).
    pub id: String,
    pub image: String,
    /// Default 0 (scale to zero).
    pub min_instances: u32,
    /// Required: service-wide `scaling.maxInstanceCount` and each revision's cap.
    pub max_instances: u32,
    /// Default 80.
    pub concurrency: u32,
    /// CPU limit in millicores. Default 1000 (`"1"`).
    pub cpu_millis: u32,
    /// Memory limit in bytes. Default 512 MiB.
    pub memory_bytes: u64,
    /// CPU only during requests. Default true.
    pub cpu_idle: bool,
    /// Request timeout. Default 300s.
    pub timeout: Duration,
    pub ingress: Option<Ingress>,
    pub env: BTreeMap<String, String>,
    /// Extra labels for this service (the stack's labels and the ownership label are added).
    pub labels: BTreeMap<String, String>,
    /// `service_account.NAME` the revisions run as; `None` = Cloud Run's default account.
    pub service_account: Option<ResourceAddr>,
    /// `service_account.NAME`s granted `roles/run.invoker` on this service.
    pub invokers: Vec<ResourceAddr>,
    /// Env var name -> `secret.NAME` (latest version).
    pub secrets: BTreeMap<String, ResourceAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ingress {
    /// `"all"`
    All,
    /// `"internal"`
    Internal,
    /// `"internal-and-cloud-load-balancing"`
    InternalAndCloudLoadBalancing,
}

/// `[queue.NAME]`: a Cloud Tasks v2 queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueConfig {
    /// GCP queue id (`NAME` unless `id = "..."`).
    pub id: String,
    /// `service.NAME` the queue dispatches HTTP tasks to (its URL is known after apply).
    pub target: Option<ResourceAddr>,
    /// Path on the target, e.g. `/tasks/webhook`. Only with `target`.
    pub path: Option<String>,
    pub max_dispatches_per_second: Option<f64>,
    /// Defaults to the target's `max_instances * concurrency` when there is a target.
    pub max_concurrent_dispatches: Option<u32>,
    /// Default 5 (the API's default is unlimited).
    pub max_attempts: i32,
    /// Default 1s.
    pub min_backoff: Duration,
    /// Default 300s.
    pub max_backoff: Duration,
    pub max_doublings: Option<u32>,
    pub max_retry_duration: Option<Duration>,
    /// `service_account.NAME` whose OIDC token the queue's tasks carry (audience: the target's URL).
    pub oidc_service_account: Option<ResourceAddr>,
    /// `service_account.NAME`s that may enqueue: `roles/cloudtasks.enqueuer` on the queue and
    /// `roles/iam.serviceAccountUser` on the OIDC account.
    pub enqueuers: Vec<ResourceAddr>,
}

/// `[service_account.NAME]`: an IAM service account.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceAccountConfig {
    /// Account id (`NAME` unless `id = "..."`): the email is `ID@PROJECT.iam.gserviceaccount.com`.
    pub id: String,
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// Project-level roles (`roles/...`), granted non-authoritatively.
    pub roles: Vec<String>,
}

impl ServiceAccountConfig {
    pub fn email(&self, project: &str) -> String {
        format!("{}@{project}.iam.gserviceaccount.com", self.id)
    }
}

/// `[secret.NAME]`: a Secret Manager secret (its value is never in stack.toml).
#[derive(Debug, Clone, PartialEq)]
pub struct SecretConfig {
    /// Secret id (`NAME` unless `id = "..."`).
    pub id: String,
    pub labels: BTreeMap<String, String>,
}

/// `[job.NAME]`: a Cloud Run job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobConfig {
    /// Cloud Run job id (`NAME` unless `id = "..."`).
    pub id: String,
    pub image: String,
    /// CPU limit in millicores. Default 1000.
    pub cpu_millis: u32,
    /// Memory limit in bytes. Default 512 MiB.
    pub memory_bytes: u64,
    /// Per-task timeout. Default 600s.
    pub task_timeout: Duration,
    /// Retries per failed task. Default 3.
    pub max_retries: u32,
    pub parallelism: Option<u32>,
    /// Tasks per execution. Default 1.
    pub task_count: u32,
    pub env: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, ResourceAddr>,
    pub service_account: Option<ResourceAddr>,
    /// BigQuery tables the job writes, by `[table.NAME]` name.
    pub writes: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// `[schedule.NAME]`: a Cloud Scheduler job that runs a Cloud Run job.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleConfig {
    /// Scheduler job id (`NAME` unless `id = "..."`).
    pub id: String,
    pub job: ResourceAddr,
    /// Unix cron, five fields.
    pub cron: String,
    /// Default `Etc/UTC`.
    pub time_zone: String,
    pub service_account: ResourceAddr,
}

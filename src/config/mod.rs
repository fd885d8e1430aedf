//! `stack.toml`: loading, defaults, validation with file:line:column diagnostics, and the typed model.
//!
//! Every `Option` field below is "don't care": absent from stack.toml and without a stackctl
//! default, so it is never diffed. Non-`Option` fields are declared or defaulted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::ResourceAddr;

pub mod cron;
mod diagnostics;
mod load;
pub mod openapi;
pub mod starter;
pub mod templates;
pub mod units;

pub use diagnostics::{ConfigError, ConfigErrors};
pub(crate) use load::{
    base_dir, channel_type, channel_type_names, is_api_key_id, is_billing_account, is_project_id,
    is_region, is_stack_name,
};
pub use load::{load, parse};

/// A whole, validated stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// The stack file it was loaded from (for messages and for `.stackctl/` beside it).
    pub file: PathBuf,
    pub settings: StackSettings,
    pub services: BTreeMap<String, ServiceConfig>,
    pub queues: BTreeMap<String, QueueConfig>,
    /// `[usage]`: monthly usage assumptions for the cost estimate (none = usage cost unknown).
    pub usage: Usage,
    pub datasets: BTreeMap<String, DatasetConfig>,
    pub tables: BTreeMap<String, TableConfig>,
    pub repositories: BTreeMap<String, RepositoryConfig>,
    pub channels: BTreeMap<String, ChannelConfig>,
    pub budgets: BTreeMap<String, BudgetConfig>,
    pub alerts: BTreeMap<String, AlertConfig>,
    pub uptimes: BTreeMap<String, UptimeConfig>,
    pub gateways: BTreeMap<String, GatewayConfig>,
    pub api_keys: BTreeMap<String, ApiKeyConfig>,
    pub dashboards: BTreeMap<String, DashboardConfig>,
    pub service_accounts: BTreeMap<String, ServiceAccountConfig>,
    pub secrets: BTreeMap<String, SecretConfig>,
    pub jobs: BTreeMap<String, JobConfig>,
    pub schedules: BTreeMap<String, ScheduleConfig>,
    pub firestores: BTreeMap<String, FirestoreConfig>,
    /// `[shopify]`: the shop whose webhook subscriptions `[shopify_webhook.*]` declare.
    pub shopify: Option<ShopifyConfig>,
    pub shopify_webhooks: BTreeMap<String, ShopifyWebhookConfig>,
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
    /// Artifact Registry repository id that `stackctl deploy` pushes built images to
    /// (`image_repository = "workers"`, or `"repository.workers"`: both are read as the
    /// repository id `workers`).
    pub image_repository: Option<String>,
    /// `XXXXXX-XXXXXX-XXXXXX`: the billing account budgets live in (required by `[budget.*]`).
    pub billing_account: Option<String>,
}

impl Stack {
    /// Applies the global `--project` / `--region` overrides (one stack file, several
    /// environments), checked by the same rules as the stack file's `project` and `region`;
    /// the error names the flag.
    pub fn with_overrides(
        mut self,
        project: Option<&str>,
        region: Option<&str>,
    ) -> Result<Self, String> {
        if let Some(p) = project {
            if !load::is_project_id(p) {
                return Err(format!(
                    "--project {p:?} is not a valid GCP project id\n  = help: project ids are 6 to 30 lowercase letters, digits and `-`, start with a letter and do not end with `-`"
                ));
            }
            self.settings.project = p.to_string();
        }
        if let Some(r) = region {
            if !load::is_region(r) {
                return Err(format!(
                    "--region {r:?} is not a GCP region\n  = help: write a region like us-central1 or europe-west1 (lowercase letters, `-`, digits)"
                ));
            }
            self.settings.region = r.to_string();
        }
        Ok(self)
    }

    /// The same stack (file, settings) declaring nothing: what `stackctl destroy` plans
    /// against, so every resource the stack owns is planned for removal.
    pub fn without_resources(&self) -> Stack {
        Stack {
            file: self.file.clone(),
            settings: self.settings.clone(),
            services: Default::default(),
            queues: Default::default(),
            usage: Default::default(),
            datasets: Default::default(),
            tables: Default::default(),
            repositories: Default::default(),
            channels: Default::default(),
            budgets: Default::default(),
            alerts: Default::default(),
            uptimes: Default::default(),
            gateways: Default::default(),
            api_keys: Default::default(),
            dashboards: Default::default(),
            service_accounts: Default::default(),
            secrets: Default::default(),
            jobs: Default::default(),
            schedules: Default::default(),
            firestores: Default::default(),
            // The shop stays: destroy lists its subscriptions to delete this stack's.
            shopify: self.shopify.clone(),
            shopify_webhooks: Default::default(),
        }
    }

    /// The directory relative paths in the stack file (like `build`) start from.
    pub fn base_dir(&self) -> PathBuf {
        base_dir(&self.file).to_path_buf()
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
    /// Where the container image comes from: exactly one of `image` or `build`.
    pub image: ImageSource,
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
    /// Default false: callers need `roles/run.invoker`. True: anyone may call it (Cloud Run's
    /// `invokerIamDisabled`), for webhooks from outside Google such as Shopify's.
    pub public: bool,
    /// `startup_probe = { path = "/healthz" }`: an HTTP startup probe (`None` = Cloud Run's
    /// default TCP probe, not managed).
    pub startup_probe: Option<crate::model::live::run::HttpProbe>,
    /// `liveness_probe = { path = "/healthz" }`: an HTTP liveness probe.
    pub liveness_probe: Option<crate::model::live::run::HttpProbe>,
    pub env: BTreeMap<String, String>,
    /// Extra labels for this service (the stack's labels and the ownership label are added).
    pub labels: BTreeMap<String, String>,
    /// `service_account.NAME` the revisions run as; `None` = Cloud Run's default account.
    pub service_account: Option<ResourceAddr>,
    /// `service_account.NAME`s granted `roles/run.invoker` on this service.
    pub invokers: Vec<ResourceAddr>,
    /// Env var name -> `secret.NAME` (latest version).
    pub secrets: BTreeMap<String, ResourceAddr>,
    /// Env var name -> `service.NAME` whose URL (`https://HOST`) it holds, known after that
    /// service is applied.
    pub service_urls: BTreeMap<String, ResourceAddr>,
}

/// A service's or job's image: declared in stack.toml, or built and deployed by `stackctl deploy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// `image = "..."`: apply manages the image.
    Image(String),
    /// `build = "workers/task-worker"`: a cargo package directory, relative to the stack file.
    /// `stackctl deploy` owns the image; apply never changes it.
    Build(String),
}

impl ImageSource {
    /// The declared image, when stack.toml names one.
    pub fn declared(&self) -> Option<&str> {
        match self {
            ImageSource::Image(image) => Some(image),
            ImageSource::Build(_) => None,
        }
    }

    /// The cargo package directory, when the image is built by stackctl.
    pub fn build_dir(&self) -> Option<&str> {
        match self {
            ImageSource::Build(dir) => Some(dir),
            ImageSource::Image(_) => None,
        }
    }
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
    /// Where the container image comes from: exactly one of `image` or `build`.
    pub image: ImageSource,
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

/// `[shopify]`: the shop and how stackctl reaches its Admin API.
#[derive(Debug, Clone, PartialEq)]
pub struct ShopifyConfig {
    /// `acme.myshopify.com`
    pub shop: String,
    /// The `[secret.NAME]` holding the Admin API access token (read when planning, never shown).
    pub access_token: ResourceAddr,
    /// Admin API version, e.g. `2025-10` (the default).
    pub api_version: String,
}

/// `[shopify_webhook.NAME]`: one webhook subscription of the `[shopify]` shop.
#[derive(Debug, Clone, PartialEq)]
pub struct ShopifyWebhookConfig {
    /// GraphQL `WebhookSubscriptionTopic` enum value, e.g. `ORDERS_UPDATE`.
    pub topic: String,
    /// The `[service.NAME]` whose URL receives the deliveries.
    pub target: ResourceAddr,
    /// Path on the service, starting with `/`.
    pub path: String,
    /// `JSON` (the default) or `XML`.
    pub format: String,
    /// The Admin API version the subscription is managed under; default `[shopify].api_version`.
    pub api_version: String,
}

/// `[usage]`: what each resource is expected to do in a month, keyed by the resource's NAME.
/// Only the cost estimate reads it; a resource without an entry has an unknown usage cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    pub services: BTreeMap<String, ServiceUsage>,
    pub queues: BTreeMap<String, QueueUsage>,
    pub tables: BTreeMap<String, TableUsage>,
    pub repositories: BTreeMap<String, RepositoryUsage>,
    pub jobs: BTreeMap<String, JobUsage>,
    pub firestores: BTreeMap<String, FirestoreUsage>,
    pub gateways: BTreeMap<String, GatewayUsage>,
}

/// `"gateway.NAME" = { calls_per_month }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GatewayUsage {
    pub calls_per_month: f64,
}

/// `"firestore.NAME" = { reads_per_month, writes_per_month, deletes_per_month, stored_gib }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FirestoreUsage {
    pub reads_per_month: f64,
    pub writes_per_month: f64,
    /// Deletes, TTL deletes included. Default 0.
    pub deletes_per_month: f64,
    pub stored_gib: f64,
}

/// `"table.NAME" = { stored_gib, long_term_gib, scanned_tib_per_month }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TableUsage {
    /// Logical GiB modified in the last 90 days (active storage).
    pub stored_gib: f64,
    /// Logical GiB untouched for 90 days (long-term storage). Default 0.
    pub long_term_gib: f64,
    /// TiB scanned by on-demand queries per month. Default 0.
    pub scanned_tib_per_month: f64,
}

/// `"repository.NAME" = { stored_gb }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RepositoryUsage {
    pub stored_gb: f64,
}

/// `"job.NAME" = { avg_task_seconds, executions_per_month }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobUsage {
    /// How long one task runs on average, retries included, in seconds.
    pub avg_task_seconds: f64,
    /// Executions per month. `None`: counted from the crons of the schedules that run the job.
    pub executions_per_month: Option<f64>,
}

/// `"service.NAME" = { requests_per_month, avg_request_ms, avg_concurrency }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceUsage {
    pub requests_per_month: u64,
    /// Average time to serve one request, in milliseconds.
    pub avg_request_ms: f64,
    /// Requests an instance serves at once on average. Default 1 (every request bills its own
    /// instance time: the conservative choice).
    pub avg_concurrency: f64,
}

/// `"queue.NAME" = { tasks_per_month, attempts_per_task }`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueUsage {
    pub tasks_per_month: u64,
    /// Push attempts per task on average, retries included. Default 1.
    pub attempts_per_task: f64,
}

/// `[dataset.NAME]`: a BigQuery dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetConfig {
    /// Dataset id (`NAME` unless `id = "..."`).
    pub id: String,
    /// Default `"US"`. Cannot change after creation.
    pub location: String,
    pub labels: BTreeMap<String, String>,
    /// Partition expiration given to new partitioned tables.
    pub default_partition_expiration: Option<Duration>,
    /// Expiration given to new tables.
    pub default_table_expiration: Option<Duration>,
    /// Default true: stackctl refuses to delete the dataset.
    pub deletion_protection: bool,
}

/// `[firestore.NAME]`: a Firestore database and its TTL policies.
#[derive(Debug, Clone, PartialEq)]
pub struct FirestoreConfig {
    /// Database id (`NAME` unless `id = "..."`; `"(default)"` is the project's default database).
    pub id: String,
    /// Default: the stack's region. A region (`us-central1`) or multi-region (`nam5`, `eur3`);
    /// cannot change after creation.
    pub location: String,
    /// `"native"` (Firestore Native, the default) or `"datastore"` (Datastore mode).
    pub mode: FirestoreMode,
    /// TTL policies: `collection_group.field`, the field holding each document's expiry time.
    pub ttl: Vec<TtlField>,
    /// Default true: Firestore refuses deletes, and so does stackctl.
    pub deletion_protection: bool,
    pub point_in_time_recovery: bool,
}

/// The database mode, fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FirestoreMode {
    Native,
    Datastore,
}

impl FirestoreMode {
    /// The Firestore Admin API's `Database.type`.
    pub fn api_name(self) -> &'static str {
        match self {
            FirestoreMode::Native => "FIRESTORE_NATIVE",
            FirestoreMode::Datastore => "DATASTORE_MODE",
        }
    }
}

/// One TTL policy: documents of `collection_group` expire at the time in `field`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct TtlField {
    pub collection_group: String,
    pub field: String,
}

impl std::fmt::Display for TtlField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.collection_group, self.field)
    }
}

/// `[table.NAME]`: a BigQuery table or materialized view.
#[derive(Debug, Clone, PartialEq)]
pub struct TableConfig {
    /// Table id (`NAME` unless `id = "..."`).
    pub id: String,
    /// `dataset.NAME`
    pub dataset: ResourceAddr,
    /// Empty for a materialized view.
    pub columns: Vec<Column>,
    pub partition: Option<Partition>,
    pub cluster_by: Vec<String>,
    /// Default false.
    pub require_partition_filter: bool,
    /// Materialized view query; then there are no columns.
    pub view_query: Option<String>,
    /// Materialized view refresh interval. Default 30m.
    pub refresh_interval: Option<Duration>,
    pub labels: BTreeMap<String, String>,
}

/// One column of a table schema (nested for RECORD columns from a schema file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Column {
    pub name: String,
    /// Standard SQL name: STRING, INT64, FLOAT64, NUMERIC, BOOL, TIMESTAMP, DATE, RECORD, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// NULLABLE (default), REQUIRED or REPEATED.
    pub mode: String,
    pub description: Option<String>,
    #[serde(default)]
    pub fields: Vec<Column>,
}

/// Time partitioning on a column.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Partition {
    pub field: String,
    /// DAY (default), HOUR or MONTH.
    pub granularity: String,
    pub expiration: Option<Duration>,
}

/// `[repository.NAME]`: an Artifact Registry Docker repository.
#[derive(Debug, Clone, PartialEq)]
pub struct RepositoryConfig {
    pub id: String,
    /// Default: the stack's region.
    pub location: String,
    /// Keep the N most recent versions (cleanup policy `keep-recent`).
    pub keep_recent: Option<u32>,
    /// Delete untagged versions older than this (cleanup policy `delete-untagged`).
    pub delete_untagged_after: Option<Duration>,
    pub labels: BTreeMap<String, String>,
}

/// `[channel.NAME]`: a Monitoring notification channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelConfig {
    /// Google's channel type: `email`, `slack`, `pagerduty`, `webhook_tokenauth` or
    /// `webhook_basicauth` (`type = "webhook"` with or without `password`).
    pub kind: String,
    /// The channel's non-sensitive labels as Google names them (`email_address`,
    /// `channel_name`, `url`, `username`).
    pub labels: BTreeMap<String, String>,
    /// The sensitive label and the `secret.NAME` holding its value (read at apply only).
    pub secret: Option<ChannelSecret>,
    /// Default: the table name.
    pub display_name: String,
}

/// A channel's sensitive label, sent with the value of a Secret Manager secret.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSecret {
    /// `auth_token` (slack), `service_key` (pagerduty) or `password` (webhook basic auth).
    pub label: String,
    /// `secret.NAME`.
    pub source: ResourceAddr,
}

/// `[budget.NAME]`: a Billing budget on the stack's project.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetConfig {
    pub amount_usd: f64,
    /// Fractions of the amount; default [0.5, 0.9, 1.0].
    pub thresholds: Vec<f64>,
    /// Fractions of the amount the month's forecasted spend is warned at; default none.
    pub forecast_thresholds: Vec<f64>,
    /// `channel.NAME`s.
    pub notify: Vec<ResourceAddr>,
}

/// `[alert.NAME]`: a Monitoring alert policy, from a template or explicit conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    /// Default: the table name.
    pub display_name: String,
    pub conditions: Vec<AlertCondition>,
    /// `channel.NAME`s.
    pub notify: Vec<ResourceAddr>,
    /// What the conditions watch (`service.x`, `queue.y`), for ordering.
    pub watches: Vec<ResourceAddr>,
    /// Markdown sent with every notification; a template's runbook unless set.
    pub documentation: Option<String>,
    /// `CRITICAL`, `ERROR` or `WARNING`; `None`: unspecified.
    pub severity: Option<String>,
}

/// `[uptime.NAME]`: a Cloud Monitoring uptime check of a public HTTPS URL.
#[derive(Debug, Clone, PartialEq)]
pub struct UptimeConfig {
    /// Default: the table name.
    pub display_name: String,
    /// The checked host, from `url`; empty with `target` (the service's host, known at apply).
    pub host: String,
    /// `service.NAME` whose URL is checked (`target` with `path`), instead of a literal `url`.
    pub target: Option<ResourceAddr>,
    /// Path with query, from `url` or `path`; default `/`.
    pub path: String,
    /// 60s, 300s, 600s or 900s; default 300s.
    pub period: Duration,
    /// 1s to 60s; default 10s.
    pub timeout: Duration,
    /// Checker regions (`USA`, `EUROPE`, ...); empty: Google's default (all).
    pub regions: Vec<String>,
    /// Accepted status class: `2xx` (default), `3xx`, `4xx`, `5xx` or `any`.
    pub expect_status: String,
}

/// `[gateway.NAME]`: an API Gateway (its api, api config and gateway) in front of one declared
/// Cloud Run service, serving an OpenAPI 2.0 document rendered from a template.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    /// The api's and the gateway's id; default: the table name.
    pub id: String,
    /// Default: the table name.
    pub display_name: String,
    /// `service.NAME` the gateway forwards to.
    pub backend: ResourceAddr,
    /// `service_account.NAME` the gateway calls the backend as (gets roles/run.invoker on it).
    pub service_account: ResourceAddr,
    /// Per consumer project and minute, the unit API Gateway supports; default 60.
    pub requests_per_minute: u32,
    /// The rendered document, `${BACKEND_URL}` still in it.
    pub document: serde_json::Value,
    /// `templates/gateways/api_key.json` or the stack's `openapi` file, for messages.
    pub document_source: String,
}

/// `[api_key.NAME]`: an API Keys v2 key restricted to one gateway's managed service.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyConfig {
    /// The key id; default: the table name.
    pub id: String,
    /// Default: the table name.
    pub display_name: String,
    /// `gateway.NAME` whose managed service the key may call.
    pub gateway: ResourceAddr,
}

/// `[dashboard.NAME]`: a Cloud Monitoring dashboard rendered from a template in
/// `templates/dashboards/` with the stack's own resources, or the team's own dashboard JSON
/// (`file`, as the console's JSON editor or `stackctl import` writes it).
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardConfig {
    /// Default: `<stack> NAME`.
    pub display_name: String,
    /// Default `stack_overview`; not used with `file`.
    pub template: String,
    /// `file = "dashboards/NAME.json"`: the path as written and the dashboard it holds.
    pub file: Option<DashboardFile>,
    pub services: Vec<ResourceAddr>,
    pub queues: Vec<ResourceAddr>,
    pub jobs: Vec<ResourceAddr>,
    pub tables: Vec<ResourceAddr>,
    pub gateways: Vec<ResourceAddr>,
}

/// A dashboard's own JSON document, read from the file `[dashboard.NAME] file` names.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardFile {
    /// As written in stack.toml, relative to it.
    pub path: String,
    /// A Monitoring v1 `Dashboard` object (its layout, filters and own labels).
    pub document: serde_json::Value,
}

/// One threshold condition, after the template was expanded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertCondition {
    pub display_name: String,
    pub filter: String,
    pub denominator_filter: Option<String>,
    /// `COMPARISON_GT`, `COMPARISON_LT`, ...
    pub comparison: String,
    pub threshold: f64,
    pub duration: Duration,
    /// Per-series aligner, e.g. `ALIGN_DELTA`.
    pub aligner: String,
    /// Cross-series reducer, e.g. `REDUCE_SUM`; `None` = none.
    pub reducer: Option<String>,
    pub group_by: Vec<String>,
    pub period: Duration,
}

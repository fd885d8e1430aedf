//! `stackctl audit`: read-only rules over the live inventory and its usage signals (Monitoring
//! series, BigQuery job history) that find unused and wasteful resources and price the waste. The rules are pure functions of
//! [`Inventory`] and [`Signals`]; [`collect`] does the reading.

pub mod collect;
mod rules;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cost::{PriceBasis, PriceTable, round_usd};
use crate::provider::artifacts::{DockerImageRecord, RepositoryRecord};
use crate::provider::bigquery::{JobReadRecord, TableRecord};
use crate::provider::budgets::BudgetRecord;
use crate::provider::monitoring::AlertRecord;
use crate::provider::run::{RevisionRecord, ServiceRecord};
use crate::provider::scheduler::ScheduleRecord;
use crate::provider::tasks::QueueRecord;

/// How much a finding matters. Ordered: `Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// The severity of a priced waste: $100+/mo critical, $20+ high, $5+ medium, else low.
    pub fn of_waste(usd: f64) -> Self {
        if usd >= 100.0 {
            Severity::Critical
        } else if usd >= 20.0 {
            Severity::High
        } else if usd >= 5.0 {
            Severity::Medium
        } else {
            Severity::Low
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// Every audit rule. Closed: a finding always names one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Rule {
    /// A service with no requests in the idle window.
    #[serde(rename = "CR1")]
    ServiceWithoutRequests,
    /// Request-based service with min instances, idle most hours.
    #[serde(rename = "CR2")]
    MinInstancesMostlyIdle,
    /// CPU always allocated (cpu_idle false) on bursty traffic.
    #[serde(rename = "CR3")]
    InstanceBillingOnBurstyTraffic,
    /// A tagged revision with 0% traffic that keeps min instances.
    #[serde(rename = "CR5")]
    TaggedRevisionKeepsMinInstances,
    /// No service-level max instances: spend is uncapped.
    #[serde(rename = "CR9")]
    ServiceWithoutMaxInstances,
    /// A queue with no tasks and no attempts in the idle window.
    #[serde(rename = "CT1")]
    IdleQueue,
    /// A queue that retries forever.
    #[serde(rename = "CT2")]
    QueueRetriesForever,
    /// A paused queue holding tasks.
    #[serde(rename = "CT3")]
    PausedQueueWithBacklog,
    /// A resource no stack owns (no ownership label, in no ledger).
    #[serde(rename = "OWN1")]
    Unowned,
    /// A Docker image (digest) no Cloud Run revision runs.
    #[serde(rename = "AR1")]
    UnusedImage,
    /// An Artifact Registry repository without any cleanup policy.
    #[serde(rename = "AR2")]
    RepositoryWithoutCleanup,
    /// An alert policy that notifies no channel.
    #[serde(rename = "OB3")]
    AlertWithoutChannels,
    /// A dashboard whose charts watch services, jobs or queues that no longer exist.
    #[serde(rename = "OB5")]
    DashboardOfDeletedResources,
    /// A BigQuery table without partitioning.
    #[serde(rename = "BQ1")]
    TableWithoutPartitioning,
    /// A partitioned table whose partitions never expire.
    #[serde(rename = "BQ2")]
    PartitionsNeverExpire,
    /// A table that no finished job read in the cold-table window.
    #[serde(rename = "BQ3")]
    ColdTable,
    /// A large partitioned table queryable without a partition filter.
    #[serde(rename = "BQ4")]
    LargeTableWithoutPartitionFilter,
    /// A Scheduler job that is paused, or whose Cloud Run target no longer exists.
    #[serde(rename = "SC1")]
    PausedOrOrphanedSchedule,
    /// No budget of the billing account covers the project.
    #[serde(rename = "BU1")]
    NoBudget,
    /// A Firestore database no one read a document of in the idle window.
    #[serde(rename = "FS1")]
    UnreadFirestoreDatabase,
    /// A Cloud Run job whose latest executions all failed: its retries burn task-seconds.
    #[serde(rename = "CR10")]
    FailingJob,
    /// An API Gateway whose API no one called in the idle window.
    #[serde(rename = "GW1")]
    IdleGateway,
    /// An API key not used in the idle window.
    #[serde(rename = "AK1")]
    UnusedApiKey,
}

impl Rule {
    pub fn id(self) -> &'static str {
        match self {
            Rule::ServiceWithoutRequests => "CR1",
            Rule::MinInstancesMostlyIdle => "CR2",
            Rule::InstanceBillingOnBurstyTraffic => "CR3",
            Rule::TaggedRevisionKeepsMinInstances => "CR5",
            Rule::ServiceWithoutMaxInstances => "CR9",
            Rule::IdleQueue => "CT1",
            Rule::QueueRetriesForever => "CT2",
            Rule::PausedQueueWithBacklog => "CT3",
            Rule::Unowned => "OWN1",
            Rule::UnusedImage => "AR1",
            Rule::RepositoryWithoutCleanup => "AR2",
            Rule::AlertWithoutChannels => "OB3",
            Rule::DashboardOfDeletedResources => "OB5",
            Rule::TableWithoutPartitioning => "BQ1",
            Rule::PartitionsNeverExpire => "BQ2",
            Rule::ColdTable => "BQ3",
            Rule::LargeTableWithoutPartitionFilter => "BQ4",
            Rule::PausedOrOrphanedSchedule => "SC1",
            Rule::NoBudget => "BU1",
            Rule::UnreadFirestoreDatabase => "FS1",
            Rule::FailingJob => "CR10",
            Rule::IdleGateway => "GW1",
            Rule::UnusedApiKey => "AK1",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Rule::ServiceWithoutRequests => "no requests",
            Rule::MinInstancesMostlyIdle => "min instances on a mostly idle service",
            Rule::InstanceBillingOnBurstyTraffic => "CPU always allocated on bursty traffic",
            Rule::TaggedRevisionKeepsMinInstances => {
                "tagged revision without traffic keeps min instances"
            }
            Rule::ServiceWithoutMaxInstances => "no max instances (uncapped spend)",
            Rule::IdleQueue => "idle queue",
            Rule::QueueRetriesForever => "retries forever",
            Rule::PausedQueueWithBacklog => "paused with a backlog",
            Rule::Unowned => "owned by no stack",
            Rule::UnusedImage => "image no revision uses",
            Rule::RepositoryWithoutCleanup => "repository without a cleanup policy",
            Rule::AlertWithoutChannels => "alert policy without notification channels",
            Rule::DashboardOfDeletedResources => "dashboard of deleted resources",
            Rule::TableWithoutPartitioning => "table without partitioning",
            Rule::PartitionsNeverExpire => "partitions never expire",
            Rule::ColdTable => "table not read in the window",
            Rule::LargeTableWithoutPartitionFilter => {
                "large table without require_partition_filter"
            }
            Rule::PausedOrOrphanedSchedule => "paused or orphaned Scheduler job",
            Rule::NoBudget => "no budget for the project",
            Rule::UnreadFirestoreDatabase => "Firestore database nobody reads",
            Rule::FailingJob => "job whose executions keep failing",
            Rule::IdleGateway => "gateway nobody calls",
            Rule::UnusedApiKey => "API key nobody uses",
        }
    }
}

/// One problem found, priced where it can be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub rule: Rule,
    pub title: String,
    /// Full GCP resource name.
    pub resource: String,
    /// What was observed, with the numbers.
    pub evidence: String,
    /// Monthly USD wasted; `None` = a risk that has no price (never shown as $0).
    pub monthly_waste_usd: Option<f64>,
    pub severity: Severity,
    /// The stack.toml change where one exists, else the command.
    pub fix: String,
    /// A Google Recommender that reports the same (or the opposite) case, where one exists.
    pub recommender: Option<String>,
}

/// A rule the audit cannot run yet, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingRule {
    pub id: String,
    pub rule: String,
    pub needs: String,
}

/// The whole audit: findings sorted by money, and what was not checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    pub project: String,
    pub region: String,
    pub findings: Vec<Finding>,
    pub total_monthly_waste_usd: f64,
    /// Findings without a price.
    pub unpriced: usize,
    pub window: Windows,
    pub basis: PriceBasis,
    pub not_yet_checked: Vec<PendingRule>,
}

impl AuditReport {
    /// Whether any finding is at least `threshold` severe (`--fail-on`).
    pub fn fails(&self, threshold: Severity) -> bool {
        self.findings.iter().any(|f| f.severity >= threshold)
    }
}

/// The signal windows, in days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Windows {
    /// A service or queue with no activity in this many days is unused.
    pub idle_days: u32,
    /// Hourly traffic is read over this many days.
    pub traffic_days: u32,
    /// A BigQuery table older than this many days that no job read in them is cold (at most
    /// 180: `jobs.list` keeps six months of history).
    pub cold_table_days: u32,
}

/// What the project holds, read from the APIs (no metrics).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inventory {
    pub project: String,
    pub region: String,
    pub services: Vec<ServiceRecord>,
    /// Revisions by service full name.
    pub revisions: BTreeMap<String, Vec<RevisionRecord>>,
    pub queues: Vec<QueueRecord>,
    /// Full names of the resources in any stack's ledger in the state bucket (queues, Scheduler
    /// jobs, ...), with when each was first recorded there (if the ledger says).
    pub ledgered: BTreeMap<String, Option<DateTime<Utc>>>,
    /// Artifact Registry repositories in the region.
    pub repositories: Vec<RepositoryRecord>,
    /// Docker images by repository full name.
    pub images: BTreeMap<String, Vec<DockerImageRecord>>,
    /// Cloud Monitoring alert policies of the project.
    pub alerts: Vec<AlertRecord>,
    /// The names of the project's notification channels (`projects/P/notificationChannels/ID`).
    pub channels: BTreeSet<String>,
    /// Cloud Monitoring dashboards of the project.
    pub dashboards: Vec<crate::provider::dashboards::DashboardRecord>,
    /// BigQuery tables (tables.get of every table of every dataset).
    pub tables: Vec<TableRecord>,
    /// Cloud Scheduler jobs in the region.
    pub schedules: Vec<ScheduleRecord>,
    /// Firestore databases of the project.
    pub firestores: Vec<crate::provider::firestore::FirestoreRecord>,
    /// API Gateway gateways in the region, with their apis (managed services).
    pub gateways: Vec<crate::provider::gateway::GatewayRecord>,
    /// API keys of the project.
    pub api_keys: Vec<crate::provider::api_keys::ApiKeyRecord>,
    /// Cloud Run job full names in the region (targets of schedules).
    pub jobs: BTreeSet<String>,
    /// Each Cloud Run job with its executions (newest first).
    pub job_executions: Vec<(
        crate::provider::jobs::JobRecord,
        Vec<crate::provider::jobs::ExecutionRecord>,
    )>,
    /// The budgets of `[stack] billing_account` and the project's `projects/NUMBER`; `None`
    /// without a billing account (BU1 is then reported as not checked).
    pub budgets: Option<BudgetScope>,
}

/// What BU1 reads: a billing account's budgets and the project they should cover.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetScope {
    pub billing_account: String,
    /// `projects/NUMBER`
    pub project_number: String,
    pub budgets: Vec<BudgetRecord>,
}

/// Monitoring signals, already aligned and reduced, keyed by service or queue id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Signals {
    /// The idle window's start: a resource younger than this has not been idle for the window.
    pub idle_since: DateTime<Utc>,
    /// `run.googleapis.com/request_count` summed over the idle window, by service id.
    pub requests: BTreeMap<String, f64>,
    /// Hours (1 h buckets, over the traffic window) with at least one request, by service id.
    pub hours_with_traffic: BTreeMap<String, u32>,
    /// `cloudtasks.googleapis.com/queue/depth` max over the idle window, by queue id.
    pub queue_depth_max: BTreeMap<String, f64>,
    /// `cloudtasks.googleapis.com/queue/task_attempt_count` summed over the idle window.
    pub queue_attempts: BTreeMap<String, f64>,
    /// `firestore.googleapis.com/document/read_count` summed over the idle window, by database id.
    pub document_reads: BTreeMap<String, f64>,
    /// `serviceruntime.googleapis.com/api/request_count` of `api` resources summed over the idle
    /// window, by service (a gateway's managed service).
    pub api_calls: BTreeMap<String, f64>,
    /// The same metric of `consumed_api` resources, by `credential_id` (`apikey:UID`).
    pub credential_calls: BTreeMap<String, f64>,
    /// BigQuery reads over the cold-table window (`jobs.list`).
    pub table_reads: TableReads,
}

/// Which BigQuery tables finished jobs read, and when last, over one window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableReads {
    /// The window's start: every finished job created since then was listed.
    pub since: DateTime<Utc>,
    /// How many jobs were listed (a script's statements included).
    pub jobs: usize,
    /// The newest read by table full name (`projects/P/datasets/D/tables/T`).
    pub last_read: BTreeMap<String, DateTime<Utc>>,
    /// Why the reads are not complete enough to call a table cold (jobs.list failed, or came
    /// back with other users' jobs redacted); BQ3 is then reported as not checked.
    pub incomplete: Option<String>,
}

impl TableReads {
    /// The newest creation time among the jobs that read each table.
    pub fn of(since: DateTime<Utc>, jobs: &[JobReadRecord]) -> Self {
        let mut last_read: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
        for job in jobs {
            for table in &job.tables_read {
                let newest = last_read.entry(table.clone()).or_insert(job.created);
                *newest = (*newest).max(job.created);
            }
        }
        let redacted = jobs.iter().filter(|j| j.redacted).count();
        Self {
            since,
            jobs: jobs.len(),
            last_read,
            incomplete: (redacted > 0).then(|| {
                format!(
                    "{redacted} of {} jobs came back redacted: the caller needs bigquery.jobs.listAll (roles/bigquery.resourceViewer) to see what other users' jobs read",
                    jobs.len()
                )
            }),
        }
    }
}

/// Runs every rule and sorts the findings by monthly waste, then severity, then resource.
pub fn audit(
    inventory: &Inventory,
    signals: &Signals,
    prices: &PriceTable,
    window: Windows,
) -> AuditReport {
    let context = rules::RuleContext {
        inventory,
        signals,
        prices,
        window,
    };
    let mut findings: Vec<Finding> = rules::RULES
        .iter()
        .flat_map(|rule| rule(&context))
        .collect();
    findings.sort_by(|a, b| {
        let money = |f: &Finding| f.monthly_waste_usd.unwrap_or(0.0);
        money(b)
            .total_cmp(&money(a))
            .then(b.severity.cmp(&a.severity))
            .then(a.resource.cmp(&b.resource))
            .then(a.rule.cmp(&b.rule))
    });
    // Findings on one resource are views of the same money: each resource counts once, at
    // its largest waste.
    let mut largest: BTreeMap<&str, f64> = BTreeMap::new();
    for finding in &findings {
        if let Some(usd) = finding.monthly_waste_usd {
            let entry = largest.entry(finding.resource.as_str()).or_insert(0.0);
            *entry = entry.max(usd);
        }
    }
    let total = round_usd(largest.values().sum());
    AuditReport {
        project: inventory.project.clone(),
        region: inventory.region.clone(),
        unpriced: findings
            .iter()
            .filter(|f| f.monthly_waste_usd.is_none())
            .count(),
        total_monthly_waste_usd: total,
        findings,
        window,
        basis: PriceBasis::of(prices),
        not_yet_checked: rules::pending(inventory, signals),
    }
}

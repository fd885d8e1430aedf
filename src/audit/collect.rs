//! Reads what audit needs, read-only: services, revisions and queues (one list call each),
//! Artifact Registry repositories in the region with their Docker images, alert policies, every
//! BigQuery table (datasets.list, tables.list, then tables.get for sizes and partitioning),
//! Scheduler jobs and Cloud Run jobs (their targets), the budgets of `[stack] billing_account`
//! (when set), the ledgers under `stackctl/` in the state bucket, four Monitoring
//! `timeSeries.list` queries, and the BigQuery job history (`jobs.list`) of the cold-table window.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt, TryStreamExt};

use super::{BudgetScope, Inventory, Signals, TableReads, Windows};
use crate::provider::metrics::{Aligner, Reducer, SeriesQuery};
use crate::provider::{ApiError, Cloud, Silent};
use crate::resources::inventory::{InventoryError, Scope, observe};
use crate::state::Ledger;
use crate::state::ledger::LedgerError;

/// Why the audit could not read the project.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Lists every kind the rules read through the shared inventory (the whole project, budgets
/// only with a `billing_account`), then what only the audit reads: each service's revisions,
/// each Docker repository's images, and every stack's ledger in the state bucket.
pub async fn inventory(
    cloud: &Cloud,
    state_bucket: &str,
    billing_account: Option<&str>,
) -> Result<Inventory, CollectError> {
    let read = observe(
        cloud,
        Scope::Project { billing_account },
        &Ledger::default(),
    )
    .await?;
    for note in &read.notes {
        tracing::info!("audit: {note}");
    }
    let observed = read.observed;
    let mut revisions = BTreeMap::new();
    for service in &observed.services {
        revisions.insert(
            service.name.clone(),
            cloud.list_revisions(&service.name, &Silent).await?,
        );
    }
    let mut images = BTreeMap::new();
    for repository in observed
        .repositories
        .iter()
        .filter(|r| r.format == "DOCKER")
    {
        images.insert(
            repository.name.clone(),
            cloud.list_docker_images(&repository.name, &Silent).await?,
        );
    }
    let budgets = match (billing_account, observed.project_number) {
        (Some(account), Some(project_number)) => Some(BudgetScope {
            billing_account: account.to_string(),
            project_number,
            budgets: observed.budgets,
        }),
        _ => None,
    };
    let mut job_executions = Vec::new();
    for job in &observed.jobs {
        let executions = cloud.list_executions(&job.name, &Silent).await?;
        job_executions.push((job.clone(), executions));
    }
    let ledgered = crate::state::ledger::read_all(cloud.storage(), state_bucket)
        .await?
        .into_iter()
        .flat_map(|ledger| ledger.resources)
        .map(|(name, entry)| (name, entry.recorded))
        .collect();
    Ok(Inventory {
        project: cloud.project.clone(),
        region: cloud.region.clone(),
        services: observed.services,
        revisions,
        queues: observed.queues,
        ledgered,
        repositories: observed.repositories,
        images,
        alerts: observed.alerts,
        channels: observed.channels.iter().map(|c| c.name.clone()).collect(),
        dashboards: observed.dashboards,
        tables: observed.tables,
        schedules: observed.schedules,
        firestores: observed.firestores,
        gateways: observed.gateways,
        api_keys: observed.api_keys,
        jobs: observed.jobs.into_iter().map(|j| j.name).collect(),
        job_executions,
        budgets,
    })
}

/// One aligned, reduced read: a metric per label over the last `days`.
struct Signal {
    filter: &'static str,
    /// A resource label, or a metric label when it starts with `metric.`.
    label: &'static str,
    days: u32,
    /// `None` = one bucket over the whole window.
    alignment_seconds: Option<u64>,
    aligner: Aligner,
    reducer: Reducer,
}

/// The bucket values of `signal` per label value, newest first.
async fn per_label(
    cloud: &Cloud,
    signal: Signal,
    end: DateTime<Utc>,
) -> Result<BTreeMap<String, Vec<f64>>, ApiError> {
    let window_seconds = u64::from(signal.days) * 86_400;
    let query = SeriesQuery {
        filter: signal.filter.to_string(),
        start: end - Duration::days(i64::from(signal.days)),
        end,
        alignment_seconds: signal.alignment_seconds.unwrap_or(window_seconds),
        aligner: signal.aligner,
        reducer: signal.reducer,
        group_by: vec![match signal.label.strip_prefix("metric.") {
            Some(metric_label) => format!("metric.label.{metric_label}"),
            None => format!("resource.label.{}", signal.label),
        }],
    };
    let series = cloud
        .metrics()
        .time_series(&cloud.project, &query, cloud.backoff, &Silent)
        .await?;
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for s in series {
        let id = match signal.label.strip_prefix("metric.") {
            Some(metric_label) => s.metric_labels.get(metric_label),
            None => s.resource_labels.get(signal.label),
        };
        if let Some(id) = id {
            out.entry(id.clone()).or_default().extend(s.values);
        }
    }
    Ok(out)
}

const REQUESTS: &str =
    "metric.type = \"run.googleapis.com/request_count\" AND resource.type = \"cloud_run_revision\"";
const QUEUE_DEPTH: &str = "metric.type = \"cloudtasks.googleapis.com/queue/depth\" AND resource.type = \"cloud_tasks_queue\"";
const DOCUMENT_READS: &str = "metric.type = \"firestore.googleapis.com/document/read_count\" AND resource.type = \"firestore.googleapis.com/Database\"";
/// Calls an API's producer saw (Service Control): an API Gateway api is its managed service.
const API_REQUESTS: &str =
    "metric.type = \"serviceruntime.googleapis.com/api/request_count\" AND resource.type = \"api\"";
/// Calls consumers made, by credential (`apikey:UID` for API keys).
const CONSUMED_REQUESTS: &str = "metric.type = \"serviceruntime.googleapis.com/api/request_count\" AND resource.type = \"consumed_api\"";
const QUEUE_ATTEMPTS: &str = "metric.type = \"cloudtasks.googleapis.com/queue/task_attempt_count\" AND resource.type = \"cloud_tasks_queue\"";

/// Which tables finished jobs of any user read in the last `days`: the top-level jobs since the
/// window's start, plus the statements (child jobs) of every script among them, whose reads the
/// script's own entry does not list.
async fn table_reads(cloud: &Cloud, days: u32, end: DateTime<Utc>) -> Result<TableReads, ApiError> {
    let since = end - Duration::days(i64::from(days));
    let mut jobs = cloud.list_finished_jobs(since, None, &Silent).await?;
    let scripts: Vec<String> = jobs
        .iter()
        .filter(|j| j.child_jobs > 0)
        .map(|j| j.job_id.clone())
        .collect();
    // A few scripts' statements at a time: an hourly script is ~2,000 lists over 90 days.
    let statements: Vec<Vec<_>> = futures::stream::iter(&scripts)
        .map(|script| cloud.list_finished_jobs(since, Some(script), &Silent))
        .buffered(SCRIPT_LISTS_AT_ONCE)
        .try_collect()
        .await?;
    jobs.extend(statements.into_iter().flatten());
    Ok(TableReads::of(since, &jobs))
}

/// How many scripts' statements are listed at once.
const SCRIPT_LISTS_AT_ONCE: usize = 8;

/// The table reads, or why there are none to judge by: a failed `jobs.list` (no permission,
/// the API disabled) leaves BQ3 unchecked instead of failing every rule.
async fn table_reads_or_why(
    cloud: &Cloud,
    days: u32,
    end: DateTime<Utc>,
) -> Result<TableReads, ApiError> {
    Ok(match table_reads(cloud, days, end).await {
        Ok(reads) => reads,
        Err(error) => TableReads {
            since: end - Duration::days(i64::from(days)),
            incomplete: Some(format!(
                "the BigQuery job history could not be read: {error}"
            )),
            ..TableReads::default()
        },
    })
}

/// The five Monitoring signals the rules read, each one aligned, reduced query, and the BigQuery
/// table reads.
pub async fn signals(
    cloud: &Cloud,
    window: Windows,
    end: DateTime<Utc>,
) -> Result<Signals, ApiError> {
    let signal = |filter, label, days, alignment_seconds, aligner, reducer| Signal {
        filter,
        label,
        days,
        alignment_seconds,
        aligner,
        reducer,
    };
    let (gateway_calls, key_calls) = tokio::try_join!(
        per_label(
            cloud,
            signal(
                API_REQUESTS,
                "service",
                window.idle_days,
                None,
                Aligner::Sum,
                Reducer::Sum
            ),
            end
        ),
        per_label(
            cloud,
            signal(
                CONSUMED_REQUESTS,
                "metric.credential_id",
                window.idle_days,
                None,
                Aligner::Sum,
                Reducer::Sum
            ),
            end
        ),
    )?;
    let (requests, hourly, depth, attempts, reads, table_reads) = tokio::try_join!(
        per_label(
            cloud,
            signal(
                REQUESTS,
                "service_name",
                window.idle_days,
                None,
                Aligner::Sum,
                Reducer::Sum
            ),
            end
        ),
        per_label(
            cloud,
            signal(
                REQUESTS,
                "service_name",
                window.traffic_days,
                Some(3600),
                Aligner::Sum,
                Reducer::Sum
            ),
            end
        ),
        per_label(
            cloud,
            signal(
                QUEUE_DEPTH,
                "queue_id",
                window.idle_days,
                None,
                Aligner::Max,
                Reducer::Max
            ),
            end
        ),
        per_label(
            cloud,
            signal(
                QUEUE_ATTEMPTS,
                "queue_id",
                window.idle_days,
                None,
                Aligner::Sum,
                Reducer::Sum
            ),
            end
        ),
        per_label(
            cloud,
            signal(
                DOCUMENT_READS,
                "database_id",
                window.idle_days,
                None,
                Aligner::Sum,
                Reducer::Sum
            ),
            end
        ),
        table_reads_or_why(cloud, window.cold_table_days, end),
    )?;
    let total = |m: BTreeMap<String, Vec<f64>>| -> BTreeMap<String, f64> {
        m.into_iter().map(|(k, v)| (k, v.iter().sum())).collect()
    };
    let max = |m: BTreeMap<String, Vec<f64>>| -> BTreeMap<String, f64> {
        m.into_iter()
            .map(|(k, v)| (k, v.iter().copied().fold(0.0, f64::max)))
            .collect()
    };
    Ok(Signals {
        idle_since: end - Duration::days(i64::from(window.idle_days)),
        requests: total(requests),
        hours_with_traffic: hourly
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    u32::try_from(v.iter().filter(|x| **x > 0.0).count()).unwrap_or(u32::MAX),
                )
            })
            .collect(),
        queue_depth_max: max(depth),
        queue_attempts: total(attempts),
        document_reads: total(reads),
        api_calls: total(gateway_calls),
        credential_calls: total(key_calls),
        table_reads,
    })
}

//! The executor: runs each change once its prerequisites succeeded, at most `parallelism` at a time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinSet;

use super::graph::{dependents_of, prerequisites};
use super::reporter::{ApplyReport, ApplyReporter, Outcome, ResourceResult};
use crate::model::{Kind, ResourceAddr};
use crate::plan::{Action, Plan, ResourceChange};
use crate::provider::run::OperationObserver;
use crate::provider::{ApiError, Cloud, RetryObserver};
use crate::resources::{Desired, queue, service};
use crate::state::ledger::LedgerError;
use crate::state::{LedgerStatus, LedgerStore};

/// What every change of one apply shares.
pub struct ApplyContext {
    pub cloud: Cloud,
    pub ledger: Mutex<LedgerStore>,
    /// Service hosts by address: observed before apply, updated as services are applied.
    pub hosts: Mutex<BTreeMap<ResourceAddr, String>>,
    pub reporter: Arc<dyn ApplyReporter>,
}

#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    Plan(String),
}

/// Adapts the reporter to one resource's provider calls.
struct ResourceObserver<'a> {
    address: &'a ResourceAddr,
    reporter: &'a dyn ApplyReporter,
}

impl RetryObserver for ResourceObserver<'_> {
    fn retrying(&self, attempt: u32, delay: Duration, reason: &str) {
        self.reporter.retrying(self.address, attempt, delay, reason);
    }
}

impl OperationObserver for ResourceObserver<'_> {
    fn phase(&self, phase: &str) {
        self.reporter.phase(self.address, phase);
    }
}

/// Applies `plan`. Never stops at the first failure: dependents of a failed change are skipped,
/// everything else still runs, and the report lists every outcome.
pub async fn apply(ctx: Arc<ApplyContext>, plan: &Plan, parallelism: usize) -> ApplyReport {
    let prereqs = prerequisites(plan);
    let n = plan.changes.len();
    let mut outcomes: Vec<Option<ResourceResult>> = vec![None; n];
    let mut started = vec![false; n];
    let semaphore = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut running = JoinSet::new();

    loop {
        for i in 0..n {
            let ready = !started[i]
                && prereqs[i]
                    .iter()
                    .all(|&p| matches!(&outcomes[p], Some(r) if r.outcome == Outcome::Succeeded));
            if !ready {
                continue;
            }
            started[i] = true;
            let change = plan.changes[i].clone();
            let ctx = ctx.clone();
            let semaphore = semaphore.clone();
            running.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                ctx.reporter.started(&change);
                let t0 = Instant::now();
                let outcome = match execute(&ctx, &change).await {
                    Ok(()) => Outcome::Succeeded,
                    Err(e) => Outcome::Failed {
                        error: e.to_string(),
                    },
                };
                ctx.reporter
                    .finished(&change.address, change.action, &outcome, t0.elapsed());
                (
                    i,
                    ResourceResult {
                        address: change.address,
                        action: change.action,
                        outcome,
                        elapsed_ms: t0.elapsed().as_millis(),
                    },
                )
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        let (i, result) = match joined {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("an apply task panicked: {e}");
                continue;
            }
        };
        if result.outcome != Outcome::Succeeded {
            for d in dependents_of(&prereqs, i) {
                if !started[d] {
                    started[d] = true;
                    let change = &plan.changes[d];
                    let outcome = Outcome::Skipped {
                        because: result.address.clone(),
                    };
                    ctx.reporter
                        .finished(&change.address, change.action, &outcome, Duration::ZERO);
                    outcomes[d] = Some(ResourceResult {
                        address: change.address.clone(),
                        action: change.action,
                        outcome,
                        elapsed_ms: 0,
                    });
                }
            }
        }
        outcomes[i] = Some(result);
    }
    let mut results: Vec<ResourceResult> = outcomes.into_iter().flatten().collect();
    results.sort_by(|a, b| a.address.cmp(&b.address));
    ApplyReport { results }
}

async fn execute(ctx: &ApplyContext, change: &ResourceChange) -> Result<(), StepError> {
    let observer = ResourceObserver {
        address: &change.address,
        reporter: ctx.reporter.as_ref(),
    };
    let cloud = &ctx.cloud;
    match (change.address.kind, change.action, &change.desired) {
        (Kind::Service, Action::Create, Some(Desired::Service(spec))) => {
            observer.phase("creating service");
            let record = cloud
                .create_service(&service::to_write(spec), &observer)
                .await?;
            remember_host(ctx, &change.address, &record.uri).await;
        }
        (Kind::Service, Action::Update, Some(Desired::Service(spec))) => {
            observer.phase("updating service");
            let record = cloud
                .update_service(
                    &service::to_write(spec),
                    change.fingerprint.as_deref(),
                    &observer,
                )
                .await?;
            remember_host(ctx, &change.address, &record.uri).await;
        }
        (Kind::Service, Action::Delete, _) => {
            observer.phase("deleting service");
            cloud.delete_service(&change.name, &observer).await?;
        }
        (Kind::Queue, Action::Create, Some(Desired::Queue(spec))) => {
            let host = target_host(ctx, spec).await?;
            // Claim the name in the ledger first: a crash after the create still leaves it owned.
            record_in_ledger(ctx, change, LedgerStatus::Active).await?;
            observer.phase("creating queue");
            cloud
                .create_queue(&queue::to_record(spec, host.as_deref()), &observer)
                .await?;
        }
        (Kind::Queue, Action::Update, Some(Desired::Queue(spec))) => {
            let host = target_host(ctx, spec).await?;
            record_in_ledger(ctx, change, LedgerStatus::Active).await?;
            let mask: Vec<&str> = change
                .fields
                .iter()
                .filter_map(|f| queue::mask_path(&f.field))
                .collect();
            if !mask.is_empty() {
                observer.phase("updating queue");
                cloud
                    .update_queue(&queue::to_record(spec, host.as_deref()), &mask, &observer)
                    .await?;
            }
            if change.fields.iter().any(|f| f.field == "state") {
                observer.phase("resuming queue");
                cloud.resume_queue(&change.name, &observer).await?;
            }
        }
        (Kind::Queue, Action::Retire, _) => {
            if !change.fields.is_empty() {
                observer.phase("pausing queue");
                cloud.pause_queue(&change.name, &observer).await?;
            }
            record_in_ledger(ctx, change, LedgerStatus::Retired).await?;
        }
        (Kind::Queue, Action::Delete, _) => {
            observer.phase("deleting queue");
            cloud.delete_queue(&change.name, &observer).await?;
            let name = change.name.clone();
            ctx.ledger.lock().await.update(|l| l.forget(&name)).await?;
        }
        (kind, action, _) => {
            return Err(StepError::Plan(format!(
                "the plan has no desired state for {kind} {action:?}; the plan file is damaged: re-run `stackctl plan`"
            )));
        }
    }
    Ok(())
}

async fn record_in_ledger(
    ctx: &ApplyContext,
    change: &ResourceChange,
    status: LedgerStatus,
) -> Result<(), LedgerError> {
    let (name, address) = (change.name.clone(), change.address.clone());
    ctx.ledger
        .lock()
        .await
        .update(|l| l.record(&name, &address, status))
        .await
}

async fn remember_host(ctx: &ApplyContext, address: &ResourceAddr, uri: &str) {
    if let Some(host) = service::host_of(uri) {
        ctx.hosts.lock().await.insert(address.clone(), host);
    }
}

/// The target service's host, which must be known by now (the service was applied first).
async fn target_host(
    ctx: &ApplyContext,
    spec: &queue::QueueSpec,
) -> Result<Option<String>, StepError> {
    let Some(target) = &spec.target else {
        return Ok(None);
    };
    match ctx.hosts.lock().await.get(&target.service) {
        Some(h) => Ok(Some(h.clone())),
        None => Err(StepError::Plan(format!(
            "the URL of {} is unknown: the service has no URL yet; re-run apply",
            target.service
        ))),
    }
}

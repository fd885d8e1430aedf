//! The executor: runs each change once its prerequisites succeeded, at most `parallelism` at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::graph::{dependents_of, prerequisites};
use super::reporter::{ApplyReport, ApplyReporter, Outcome, ResourceResult};
use crate::model::{Kind, ResourceAddr};
use crate::plan::{Plan, ResourceChange};
use crate::provider::RetryObserver;
use crate::provider::run::OperationObserver;
use crate::resources::alert::AlertKind;
use crate::resources::api::ApiKind;
use crate::resources::budget::BudgetKind;
use crate::resources::channel::ChannelKind;
use crate::resources::dataset::DatasetKind;
use crate::resources::grant::GrantKind;
use crate::resources::job::JobKind;
use crate::resources::queue::QueueKind;
use crate::resources::repository::RepositoryKind;
use crate::resources::schedule::ScheduleKind;
use crate::resources::secret::SecretKind;
use crate::resources::service::ServiceKind;
use crate::resources::service_account::ServiceAccountKind;
use crate::resources::table::TableKind;
use crate::resources::{ApplyCtx, Converge, Desired, StepError};

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
pub async fn apply(
    ctx: Arc<ApplyCtx>,
    reporter: Arc<dyn ApplyReporter>,
    plan: &Plan,
    parallelism: usize,
) -> ApplyReport {
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
            let reporter = reporter.clone();
            let semaphore = semaphore.clone();
            running.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                reporter.started(&change);
                let t0 = Instant::now();
                let outcome = match execute(&ctx, &change, reporter.as_ref()).await {
                    Ok(()) => Outcome::Succeeded,
                    Err(e) => Outcome::Failed {
                        error: e.to_string(),
                    },
                };
                reporter.finished(&change.address, change.action, &outcome, t0.elapsed());
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
                    reporter.finished(&change.address, change.action, &outcome, Duration::ZERO);
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

async fn execute(
    ctx: &ApplyCtx,
    change: &ResourceChange,
    reporter: &dyn ApplyReporter,
) -> Result<(), StepError> {
    let observer = ResourceObserver {
        address: &change.address,
        reporter,
    };
    // The registry of kinds: one arm per kind.
    let o = &observer;
    match (change.address.kind, &change.desired) {
        (Kind::Service, Some(Desired::Service(spec))) => {
            ServiceKind::converge(ctx, change, Some(spec), o).await
        }
        (Kind::Service, None) => ServiceKind::converge(ctx, change, None, o).await,
        (Kind::Queue, Some(Desired::Queue(spec))) => {
            QueueKind::converge(ctx, change, Some(spec), o).await
        }
        (Kind::Queue, None) => QueueKind::converge(ctx, change, None, o).await,
        (Kind::Dataset, Some(Desired::Dataset(spec))) => {
            DatasetKind::converge(ctx, change, Some(spec), o).await
        }
        (Kind::Dataset, None) => DatasetKind::converge(ctx, change, None, o).await,
        (Kind::Table, Some(Desired::Table(spec))) => {
            TableKind::converge(ctx, change, Some(spec), o).await
        }
        (Kind::Table, None) => TableKind::converge(ctx, change, None, o).await,
        (Kind::Repository, Some(Desired::Repository(spec))) => {
            RepositoryKind::converge(ctx, change, Some(spec), o).await
        }
        (Kind::Repository, None) => RepositoryKind::converge(ctx, change, None, o).await,
        (Kind::Channel, Some(Desired::Channel(spec))) => {
            ChannelKind::converge(ctx, change, Some(spec), o).await
        }
        (Kind::Channel, None) => ChannelKind::converge(ctx, change, None, o).await,
        (Kind::Budget, Some(Desired::Budget(spec))) => {
            BudgetKind::converge(ctx, change, Some(spec), o).await
        }
        (Kind::Budget, None) => BudgetKind::converge(ctx, change, None, o).await,
        (Kind::Alert, Some(Desired::Alert(spec))) => {
            AlertKind::converge(ctx, change, Some(spec), o).await
        }
        (Kind::Alert, None) => AlertKind::converge(ctx, change, None, o).await,
        (Kind::ServiceAccount, Some(Desired::ServiceAccount(spec))) => {
            ServiceAccountKind::converge(ctx, change, Some(spec), o).await
        }
        (Kind::ServiceAccount, None) => ServiceAccountKind::converge(ctx, change, None, o).await,
        (Kind::Secret, Some(Desired::Secret(spec))) => {
            SecretKind::converge(ctx, change, Some(spec), o).await
        }
        (Kind::Secret, None) => SecretKind::converge(ctx, change, None, o).await,
        (Kind::Job, Some(Desired::Job(spec))) => {
            JobKind::converge(ctx, change, Some(spec), o).await
        }
        (Kind::Job, None) => JobKind::converge(ctx, change, None, o).await,
        (Kind::Schedule, Some(Desired::Schedule(spec))) => {
            ScheduleKind::converge(ctx, change, Some(spec), o).await
        }
        (Kind::Schedule, None) => ScheduleKind::converge(ctx, change, None, o).await,
        (Kind::Api, Some(Desired::Api(spec))) => {
            ApiKind::converge(ctx, change, Some(spec), o).await
        }
        (Kind::Api, None) => ApiKind::converge(ctx, change, None, o).await,
        (Kind::Grant, Some(Desired::Grant(spec))) => {
            GrantKind::converge(ctx, change, Some(spec), o).await
        }
        (Kind::Grant, None) => GrantKind::converge(ctx, change, None, o).await,
        (kind, Some(other)) => Err(StepError::Plan(format!(
            "the plan pairs {kind} {} with desired state of another kind ({other:?}); the plan file is damaged: re-run `stackctl plan`",
            change.address
        ))),
    }
}

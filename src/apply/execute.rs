//! The executor: runs each change once its prerequisites succeeded, at most `parallelism` at a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::graph::{dependents_of, prerequisites};
use super::reporter::{ApplyReport, ApplyReporter, Outcome, ResourceResult};
use crate::model::ResourceAddr;
use crate::plan::{Plan, ResourceChange};
use crate::provider::RetryObserver;
use crate::provider::run::OperationObserver;
use crate::resources::registry::{KindVisitor, Registered, for_kind};
use crate::resources::{ApplyCtx, StepError};

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

/// Asked before each step starts: `Err(reason)` = this apply may change nothing more (it lost
/// the apply lock); the step fails with the reason instead of running.
pub trait StepGate: Send + Sync {
    fn may_start(&self) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
}

/// Applies `plan`. Never stops at the first failure: dependents of a failed change are skipped,
/// everything else still runs, and the report lists every outcome.
pub async fn apply(
    ctx: Arc<ApplyCtx>,
    reporter: Arc<dyn ApplyReporter>,
    plan: &Plan,
    parallelism: usize,
    gate: Arc<dyn StepGate>,
) -> ApplyReport {
    let prereqs = prerequisites(plan);
    let n = plan.changes.len();
    let mut outcomes: Vec<Option<ResourceResult>> = vec![None; n];
    let mut started = vec![false; n];
    let semaphore = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut running = JoinSet::new();
    let mut task_of: HashMap<tokio::task::Id, usize> = HashMap::new();
    let order = start_order(plan);

    loop {
        for &i in &order {
            let ready = !started[i]
                && prereqs[i]
                    .iter()
                    .all(|&p| matches!(&outcomes[p], Some(r) if r.outcome.lets_dependents_run()));
            if !ready {
                continue;
            }
            started[i] = true;
            let change = plan.changes[i].clone();
            let ctx = ctx.clone();
            let reporter = reporter.clone();
            let semaphore = semaphore.clone();
            let gate = gate.clone();
            let id = running.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let t0 = Instant::now();
                let outcome = match gate.may_start().await {
                    Err(reason) => Outcome::Failed {
                        error: format!("not started: {reason}"),
                    },
                    Ok(()) => {
                        reporter.started(&change);
                        match execute(&ctx, &change, reporter.as_ref()).await {
                            Ok(()) => Outcome::Succeeded,
                            Err(StepError::Waiting(reason)) => Outcome::Waiting { reason },
                            Err(e) => Outcome::Failed {
                                error: e.to_string(),
                            },
                        }
                    }
                };
                reporter.finished(&change.address, change.action, &outcome, t0.elapsed());
                (
                    i,
                    ResourceResult {
                        address: change.step.address,
                        action: change.step.action,
                        outcome,
                        elapsed_ms: t0.elapsed().as_millis(),
                    },
                )
            });
            task_of.insert(id.id(), i);
        }
        let Some(joined) = running.join_next_with_id().await else {
            break;
        };
        let (i, result) = match joined {
            Ok((_, r)) => r,
            // A step that panicked failed: its dependents are skipped and apply exits 1.
            Err(e) => {
                let i = task_of[&e.id()];
                let change = &plan.changes[i];
                let outcome = Outcome::Failed {
                    error: format!(
                        "stackctl crashed while applying it ({}); this is a bug: please report it. Re-run `stackctl plan` to see what changed",
                        panic_message(e)
                    ),
                };
                reporter.finished(&change.address, change.action, &outcome, Duration::ZERO);
                let result = ResourceResult {
                    address: change.address.clone(),
                    action: change.action,
                    outcome,
                    elapsed_ms: 0,
                };
                (i, result)
            }
        };
        if !result.outcome.lets_dependents_run() {
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

/// The order ready changes start in (the semaphore serves waiters first come, first served):
/// long operations first, since Cloud Run services and jobs take tens of seconds on Google, so
/// the wall time approaches the longest chain instead of queueing them behind queues and grants
/// that nothing waits for; otherwise the plan's order.
fn start_order(plan: &Plan) -> Vec<usize> {
    use crate::model::Kind;
    let mut order: Vec<usize> = (0..plan.changes.len()).collect();
    order.sort_by_key(|&i| {
        let long = matches!(plan.changes[i].address.kind, Kind::Service | Kind::Job);
        !long
    });
    order
}

/// What a panicked step said, or why it did not finish.
fn panic_message(error: tokio::task::JoinError) -> String {
    if !error.is_panic() {
        return error.to_string();
    }
    let payload = error.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

/// Converges one change with its kind's implementation.
async fn execute(
    ctx: &ApplyCtx,
    change: &ResourceChange,
    reporter: &dyn ApplyReporter,
) -> Result<(), StepError> {
    let observer = ResourceObserver {
        address: &change.address,
        reporter,
    };
    for_kind(
        change.address.kind,
        ConvergeStep {
            ctx,
            change,
            observer: &observer,
        },
    )
    .await
}

/// One change's converge, as the registry runs it for the change's kind.
struct ConvergeStep<'a> {
    ctx: &'a ApplyCtx,
    change: &'a ResourceChange,
    observer: &'a ResourceObserver<'a>,
}

type StepFuture<'a> = std::pin::Pin<Box<dyn Future<Output = Result<(), StepError>> + Send + 'a>>;

impl<'a> KindVisitor for ConvergeStep<'a> {
    type Output = StepFuture<'a>;
    fn visit<K: Registered>(self) -> StepFuture<'a> {
        let Self {
            ctx,
            change,
            observer,
        } = self;
        Box::pin(async move {
            let spec = match &change.desired {
                None => None,
                Some(desired) => Some(K::unwrap(desired).ok_or_else(|| {
                    StepError::Plan(format!(
                        "the plan pairs {} {} with desired state of another kind ({}); the plan file is damaged: re-run `stackctl plan`",
                        change.address.kind,
                        change.address,
                        desired.kind()
                    ))
                })?),
            };
            K::converge(ctx, change, spec, observer).await
        })
    }
}

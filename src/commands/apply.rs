//! `stackctl apply [FILE]` and `stackctl destroy`: lock, observe, plan (or check a saved plan is
//! still current), confirm, execute with progress, report every outcome, unlock. Destroy is an
//! apply of the stack with no resources (and, when that leaves it empty, removes the ledger).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{ExitStatus, Session, load_stack};
use crate::apply::{ApplyCtx, ApplyReporter, StepGate, apply};
use crate::cli::{ApplyArgs, Cli};
use crate::plan::{Observed, PLAN_FORMAT_VERSION, Plan, ResourceChange, known_before_apply, plan};
use crate::provider::retry::Backoff;
use crate::state::ApplyLock;
use crate::state::ledger::claim_fence;
use crate::state::lock::{LockError, holder_name};
use crate::ui::progress::{LogProgress, NoProgress, TerminalProgress};
use crate::ui::prompt::{PromptError, confirm_apply, confirm_destroy};
use crate::ui::{Printer, plan_view};

/// How long an apply lock lives without renewal; a killed apply blocks the next one at most this long.
const LOCK_LEASE: Duration = Duration::from_secs(15 * 60);

/// What an apply makes of the project: what stack.toml declares, or (`stackctl destroy`) nothing
/// the stack owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intent {
    Apply,
    /// Plans against the stack with every resource left out; `keep_state` keeps the ledger,
    /// which is otherwise removed once it records nothing.
    Destroy {
        keep_state: bool,
    },
}

pub async fn run(cli: &Cli, args: &ApplyArgs, printer: &Printer) -> Result<ExitStatus> {
    execute(cli, args, Intent::Apply, printer).await
}

/// Loads the stack, takes the apply lock, plans for `intent`, confirms, executes, reports.
pub(crate) async fn execute(
    cli: &Cli,
    args: &ApplyArgs,
    intent: Intent,
    printer: &Printer,
) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let saved = match &args.plan_file {
        Some(path) => Some(read_plan(path)?),
        None => None,
    };
    let session = Session::open(cli, stack).await?;
    let result = with_lock(&session, args, intent, saved, printer).await;
    session.close().await;
    result
}

fn read_plan(path: &std::path::Path) -> Result<Plan> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading the plan file {}", path.display()))?;
    let plan: Plan = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a stackctl plan; make one with `stackctl plan --out FILE`",
            path.display()
        )
    })?;
    if plan.format_version != PLAN_FORMAT_VERSION {
        bail!(
            "{} was written by another stackctl version (plan format {}, this one reads {PLAN_FORMAT_VERSION}); run `stackctl plan --out FILE` again",
            path.display(),
            plan.format_version
        );
    }
    Ok(plan)
}

async fn with_lock(
    session: &Session,
    args: &ApplyArgs,
    intent: Intent,
    saved: Option<Plan>,
    printer: &Printer,
) -> Result<ExitStatus> {
    if let Some(saved) = &saved {
        let here = session.target();
        if !saved.target.endpoint.same_kind(&here.endpoint)
            || saved.target.project != here.project
            || saved.target.region != here.region
            || saved.target.stack != here.stack
        {
            bail!(
                "this plan was made for stack `{}` in project {} ({}) on {}; it cannot be applied to stack `{}` in project {} ({}) on {}",
                saved.target.stack,
                saved.target.project,
                saved.target.region,
                saved.target.endpoint.describe(),
                here.stack,
                here.project,
                here.region,
                here.endpoint.describe()
            );
        }
    }
    session.ensure_state_bucket(printer).await?;
    let storage = session.cloud.storage();
    let bucket = session.stack.state_bucket();
    let lock = Arc::new(
        ApplyLock::acquire(
            storage,
            &bucket,
            &session.stack.settings.name,
            &holder_name(),
            LOCK_LEASE,
        )
        .await?,
    );
    // The fence goes into the ledger before anything is read: from here on, ledger writes of an
    // apply that held the lock before us fail, and ours fail once someone takes it from us.
    let fenced = claim_fence(
        storage,
        &bucket,
        &session.stack.settings.name,
        &lock.fence(),
    )
    .await;
    let result = match fenced {
        Err(e) => Err(e.into()),
        Ok(()) => {
            let renewer = tokio::spawn(keep_lease(lock.clone()));
            let result = locked(session, args, intent, saved, printer, &lock).await;
            renewer.abort();
            let _ = renewer.await;
            result
        }
    };
    let result = match (lock.lost(), result) {
        (Some(reason), Ok(_)) => {
            printer.err(&format!(
                "error: this apply lost the apply lock: {reason}; it started no step after that. Run `stackctl plan` once the other apply is done"
            ));
            Ok(ExitStatus::Failure)
        }
        (_, result) => result,
    };
    if let Err(e) = lock.release().await {
        printer.err(&format!("warning: could not release the apply lock: {e}"));
    }
    result
}

/// Renews the lease every third of it. A failed renewal is retried with backoff until the lease
/// would end; then (or when the lock was taken) the lock is marked lost and no new step starts.
async fn keep_lease(lock: Arc<ApplyLock>) {
    let backoff = Backoff {
        max_attempts: u32::MAX,
        initial: Duration::from_secs(1),
        max_delay: lock.lease() / 15,
    };
    loop {
        tokio::time::sleep(lock.lease() / 3).await;
        let mut attempt = 1;
        loop {
            match lock.renew().await {
                Ok(()) => break,
                Err(LockError::Lost(_)) => return,
                Err(e) => {
                    let expires_at = lock.expires_at().await;
                    let delay = backoff.delay(attempt);
                    let deadline = chrono::Utc::now()
                        + chrono::Duration::from_std(delay).unwrap_or_default()
                        + chrono::Duration::seconds(5);
                    if deadline >= expires_at {
                        lock.lost_flag().lose(format!(
                            "could not renew the apply lock's lease before it ended at {expires_at}: {e}"
                        ));
                        return;
                    }
                    tracing::warn!("could not renew the apply lock (retrying in {delay:?}): {e}");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// Steps start only while the lock is confirmed ours.
struct LockGate(Arc<ApplyLock>);

impl StepGate for LockGate {
    fn may_start(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(self.0.confirm())
    }
}

async fn locked(
    session: &Session,
    args: &ApplyArgs,
    intent: Intent,
    saved: Option<Plan>,
    printer: &Printer,
    lock: &Arc<ApplyLock>,
) -> Result<ExitStatus> {
    let (observed, mut ledger) = session.observe(printer).await?;
    ledger.fenced(lock.fence(), lock.lost_flag())?;
    let from_file = saved.is_some();
    // What to converge to: stack.toml, or for destroy the same stack without any resource (it
    // was observed as declared, so whatever it declares elsewhere is seen, and then deleted).
    let desired = match intent {
        Intent::Apply => std::borrow::Cow::Borrowed(&session.stack),
        Intent::Destroy { .. } => std::borrow::Cow::Owned(session.stack.without_resources()),
    };
    let plan = match saved {
        Some(saved) => {
            check_current(&saved, &observed)?;
            saved
        }
        None => plan(
            &desired,
            session.target(),
            &observed,
            args.safety
                .plan_options(matches!(intent, Intent::Destroy { .. })),
            &session.price_table(&args.prices, printer).await?,
        )?,
    };
    if !args.json {
        printer.out(&plan_view::render(&plan, printer.color));
    }
    if intent == Intent::Apply {
        for warning in session.secret_version_warnings().await {
            printer.err(&warning);
        }
    }
    if !super::plan::cost_gate_passes(
        &args.cost_gate.gate(),
        &plan,
        printer,
        "; nothing was changed",
    ) {
        return Ok(ExitStatus::Failure);
    }
    if plan.is_empty() {
        if args.json {
            printer.json(&serde_json::json!({ "plan": plan, "report": { "results": [] } }));
        }
        if let Intent::Destroy { keep_state } = intent {
            let shared = crate::state::ledger::SharedLedger::new(ledger);
            settle_state(&shared, keep_state, session, printer).await?;
        }
        return Ok(ExitStatus::Success);
    }
    let losses: Vec<String> = plan
        .changes
        .iter()
        .filter_map(ResourceChange::data_loss)
        .collect();
    if !losses.is_empty() && !args.safety.allow_data_loss {
        printer.err(&format!(
            "error: refusing to apply a plan that drops data; nothing was changed:\n  {}",
            losses.join("\n  ")
        ));
        return Ok(ExitStatus::Failure);
    }
    if !from_file && !args.auto_approve {
        let confirmed = match intent {
            Intent::Apply => confirm_apply(),
            Intent::Destroy { .. } => confirm_destroy(&session.stack.settings.name),
        };
        match confirmed {
            Ok(()) => {}
            Err(e @ (PromptError::NoTerminal | PromptError::Declined)) => {
                printer.err(&format!("error: {e}"));
                return Ok(ExitStatus::Failure);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let reporter: Arc<dyn ApplyReporter> = if printer.quiet {
        Arc::new(NoProgress)
    } else if printer.stderr_is_terminal {
        Arc::new(TerminalProgress::default())
    } else {
        Arc::new(LogProgress)
    };
    let known = known_before_apply(&desired, &observed);
    let hosts = known
        .hosts
        .into_iter()
        .filter_map(|(a, h)| Some((a, h?)))
        .collect();
    let names = known
        .names
        .into_iter()
        .filter_map(|(a, n)| Some((a, n?)))
        .collect();
    let ctx = Arc::new(ApplyCtx {
        cloud: session.cloud.clone(),
        ledger: crate::state::ledger::SharedLedger::new(ledger),
        hosts: tokio::sync::Mutex::new(hosts),
        names: tokio::sync::Mutex::new(names),
        waiting: std::sync::Mutex::new(
            plan.waiting
                .iter()
                .map(|w| (w.address.clone(), w.reason.clone()))
                .collect(),
        ),
        policy_locks: Default::default(),
        shopify: crate::resources::shopify_webhook::ShopAccess::of(&desired),
    });
    let gate = Arc::new(LockGate(lock.clone()));
    let report = apply(ctx.clone(), reporter, &plan, args.parallelism, gate).await;
    if args.json {
        printer.json(&serde_json::json!({ "plan": plan, "report": report }));
    } else {
        let verb = match intent {
            Intent::Apply => "Apply",
            Intent::Destroy { .. } => "Destroy",
        };
        printer.out(&plan_view::render_report(&report, verb));
    }
    if let Intent::Destroy { keep_state } = intent
        && report.is_success()
    {
        settle_state(&ctx.ledger, keep_state, session, printer).await?;
    }
    Ok(if report.is_success() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// After a destroy: the ledger object goes once it records nothing (unless `--keep-state`);
/// otherwise says what it still records and why.
async fn settle_state(
    ledger: &crate::state::ledger::SharedLedger,
    keep_state: bool,
    session: &Session,
    printer: &Printer,
) -> Result<()> {
    let bucket = session.stack.state_bucket();
    let object = crate::state::ledger_object(&session.stack.settings.name);
    let left = ledger.snapshot().await;
    if !left.resources.is_empty() || !left.bindings.is_empty() {
        let mut kept: Vec<String> = left
            .resources
            .values()
            .map(|entry| {
                let status = format!("{:?}", entry.status).to_lowercase();
                format!("{} ({status})", entry.address)
            })
            .collect();
        kept.extend(left.bindings.values().map(|b| b.address.to_string()));
        printer.note(&format!(
            "note: the ownership ledger gs://{bucket}/{object} is kept: it still records {}{}",
            kept.join(", "),
            if left
                .resources
                .values()
                .any(|e| e.address.kind == crate::model::Kind::Queue)
            {
                "; queues are paused, not deleted, unless --allow-queue-delete"
            } else {
                ""
            }
        ));
    } else if keep_state {
        printer.note(&format!(
            "The ownership ledger gs://{bucket}/{object} is kept (--keep-state)."
        ));
    } else if ledger.remove_if_empty().await? {
        printer.note(&format!(
            "Removed the ownership ledger gs://{bucket}/{object}; the state bucket stays (other stacks may use it)."
        ));
    }
    Ok(())
}

/// A saved plan applies only if nothing it planned against has changed since.
fn check_current(plan: &Plan, observed: &Observed) -> Result<()> {
    let stale = crate::plan::stale_changes(plan, observed);
    if stale.is_empty() {
        return Ok(());
    }
    bail!(
        "the saved plan is stale, nothing was applied:\n  {}\nrun `stackctl plan --out FILE` again and apply the new plan",
        stale.join("\n  ")
    )
}

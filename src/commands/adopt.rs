//! `stackctl adopt ADDR...`: take ownership of existing resources by explicit name, never by guessing —
//! queues, service accounts, schedules and budgets go into the ledger; services, jobs, secrets,
//! datasets, tables and repositories get the ownership label (their other labels are kept);
//! notification channels and alert policies get the ownership and name user labels. Budgets,
//! channels and alert policies have server-assigned ids: exactly one live resource must carry
//! the display name stackctl would give it. APIs and IAM grants need no adoption (a declared grant
//! already present is simply kept; stackctl only ever removes members it added).

use anyhow::{Result, anyhow, bail};

use super::{ExitStatus, Session, load_stack};
use crate::cli::{AdoptArgs, Cli};
use crate::model::ResourceAddr;
use crate::resources::adopt::{self, Found, Ownership};
use crate::resources::inventory::{self, Scope};
use crate::state::{LedgerStatus, LedgerStore};
use crate::ui::Printer;

pub async fn run(cli: &Cli, args: &AdoptArgs, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let mut addresses = Vec::new();
    for a in &args.addresses {
        let addr: ResourceAddr = a.parse().map_err(anyhow::Error::msg)?;
        adopt::check(&stack, &addr).map_err(|e| match e {
            adopt::AdoptError::NotDeclared { address } => anyhow!(
                "{address} is not declared in {}: declare it first, then adopt it",
                cli.file.display()
            ),
            other => other.into(),
        })?;
        addresses.push(Target {
            address: addr,
            live_name: None,
        });
    }
    let session = Session::open(cli, stack).await?;
    let result = adopt_declared(&session, &addresses, printer).await;
    session.close().await;
    result
}

/// A declared resource to adopt, and the live resource it is when the caller knows it (import
/// does: the stanza was written from it); otherwise adopt finds it by name or display name.
pub(super) struct Target {
    pub address: ResourceAddr,
    pub live_name: Option<String>,
}

/// Adopts one declared resource: find it, check whose it is, then label it or record it.
/// `true` when it was taken over now, `false` when this stack already owned it.
async fn adopt_one(
    session: &Session,
    ledger: &mut LedgerStore,
    observed: &crate::plan::Observed,
    target: &Target,
    printer: &Printer,
) -> Result<bool> {
    let stack = &session.stack;
    let addr = &target.address;
    let found = match &target.live_name {
        Some(live_name) => adopt::find_named(stack, observed, addr, live_name),
        None => adopt::find(stack, observed, addr)?,
    };
    match found {
        Found::Nothing { what } => bail!(
            "{addr}: {what} does not exist, so there is nothing to adopt; `stackctl apply` creates it"
        ),
        Found::Ledger { name } => {
            let entry = ledger.ledger.entry(&name);
            if entry.is_some_and(|e| e.address == *addr && e.status == LedgerStatus::Active) {
                printer.out(&format!("{addr} is already owned by this stack."));
                return Ok(false);
            }
            if let Some(other) = entry.filter(|e| e.address != *addr) {
                bail!(
                    "{addr}: {name} is already this stack's {}; stackctl will not record it twice",
                    other.address
                );
            }
            ledger
                .update(|l| l.record(&name, addr, LedgerStatus::Active))
                .await?;
            printer.out(&format!(
                "Adopted {addr} ({name}) into the ownership ledger."
            ));
            Ok(true)
        }
        Found::Labelled { name, owner } => match owner {
            Ownership::Ours => {
                printer.out(&format!("{addr} is already owned by this stack."));
                Ok(false)
            }
            Ownership::OtherStack(other) => bail!(
                "{addr}: {name} belongs to the stack `{other}`; stackctl will not take it over"
            ),
            // Labels are never pending (only ledger entries are).
            Ownership::Unowned | Ownership::Pending => {
                let added = adopt::ownership_labels(stack, addr);
                adopt::write_labels(&session.cloud, stack, observed, addr, &name, &added)
                    .await
                    .map_err(|e| {
                        if e.is_precondition_failed() {
                            anyhow!("{addr}: {name} changed while it was being adopted; nothing was written, run `stackctl adopt {addr}` again")
                        } else {
                            e.into()
                        }
                    })?;
                let shown: Vec<String> = added.iter().map(|(k, v)| format!("{k}={v}")).collect();
                printer.out(&format!(
                    "Adopted {addr} ({name}): labelled {}.",
                    shown.join(", ")
                ));
                Ok(true)
            }
        },
    }
}

/// Adopts declared resources (all of them in one pass over the ledger).
pub(super) async fn adopt_declared(
    session: &Session,
    targets: &[Target],
    printer: &Printer,
) -> Result<ExitStatus> {
    let stack = &session.stack;
    session.ensure_state_bucket(printer).await?;
    session
        .with_ownership_ledger(printer, async |mut ledger| {
            let observed =
                inventory::observe(&session.cloud, Scope::Stack(stack), &ledger.ledger).await?;
            for note in &observed.notes {
                printer.note(&format!("note: {note}"));
            }
            let mut adopted = false;
            for target in targets {
                adopted |=
                    adopt_one(session, &mut ledger, &observed.observed, target, printer).await?;
            }
            if adopted {
                printer.out("Run `stackctl plan` to see how they differ from stack.toml.");
            }
            Ok(ExitStatus::Success)
        })
        .await
}

//! `stackctl forget ADDR...`: the stack stops owning resources and deletes or changes nothing in
//! the project: a queue, service account, schedule or budget leaves the ownership ledger, and a
//! grant's member leaves the ledger's `bindings` (so it is never revoked). Kinds owned by label
//! are refused with the label to remove by hand; APIs are nobody's.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};

use super::{ExitStatus, Session, load_stack};
use crate::cli::{Cli, ForgetArgs};
use crate::model::{Kind, ResourceAddr};
use crate::resources::registry::adoption;
use crate::resources::{Adoption, OWNER_LABEL};
use crate::state::LedgerStore;
use crate::ui::Printer;

pub async fn run(cli: &Cli, args: &ForgetArgs, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let mut addresses = Vec::new();
    for text in &args.addresses {
        let address: ResourceAddr = text.parse().map_err(anyhow::Error::msg)?;
        forgettable(&address, &stack.settings.name)?;
        addresses.push(address);
    }
    let session = Session::open(cli, stack).await?;
    let result = forget(&session, &addresses, printer).await;
    session.close().await;
    result
}

/// Only ledger records can be dropped; a label stays until someone removes it.
fn forgettable(address: &ResourceAddr, stack: &str) -> Result<()> {
    if address.kind == Kind::Grant {
        return Ok(());
    }
    match adoption(address.kind) {
        Adoption::Ledger => Ok(()),
        Adoption::Labels => bail!(
            "{address} is owned by the label {OWNER_LABEL}={stack} on the resource itself, and stackctl forget only drops ledger records (queues, service accounts, schedules, budgets, grants) and never changes a resource: remove the label {OWNER_LABEL} by hand (gcloud's --remove-labels={OWNER_LABEL}, or the console), then take {address} out of stack.toml"
        ),
        Adoption::NotNeeded(why) => {
            bail!("{address} is not owned by any stack ({why}), so there is nothing to forget")
        }
    }
}

async fn forget(
    session: &Session,
    addresses: &[ResourceAddr],
    printer: &Printer,
) -> Result<ExitStatus> {
    let stack = &session.stack;
    let storage = session.cloud.storage();
    let bucket = stack.state_bucket();
    if !storage.bucket_exists(&bucket).await? {
        bail!(
            "the state bucket gs://{bucket} does not exist, so this stack records nothing to forget"
        );
    }
    session
        .with_ownership_ledger(printer, async |mut ledger| {
            // Every address is checked before anything is written: all are forgotten, or none.
            let records: Vec<Records> = addresses
                .iter()
                .map(|address| records_of(&ledger, address))
                .collect::<Result<_>>()?;
            let dropped = records.clone();
            ledger
                .update(move |l| {
                    for records in &dropped {
                        records.names.iter().for_each(|name| l.forget(name));
                        records.bindings.iter().for_each(|key| l.forget_binding(key));
                    }
                })
                .await?;
            for (address, records) in addresses.iter().zip(records) {
                let what: Vec<String> = records
                    .names
                    .into_iter()
                    .chain(records.bindings.iter().map(|key| key.replace('|', " ")))
                    .collect();
                printer.out(&format!(
                    "Forgot {address} ({}): no longer this stack's.",
                    what.join(", ")
                ));
            }
            printer.out(
                "Nothing was deleted or changed in the project. Take what you forgot out of stack.toml: the next plan refuses a declared resource it does not own (`stackctl adopt` takes it back).",
            );
            Ok(ExitStatus::Success)
        })
        .await
}

/// The ledger records of one address: resource entries by full name, grant members by key.
#[derive(Clone)]
struct Records {
    names: Vec<String>,
    bindings: Vec<String>,
}

fn records_of(ledger: &LedgerStore, address: &ResourceAddr) -> Result<Records> {
    fn keys_where<V>(map: &BTreeMap<String, V>, of: impl Fn(&V) -> bool) -> Vec<String> {
        map.iter()
            .filter(|(_, v)| of(v))
            .map(|(k, _)| k.clone())
            .collect()
    }
    let names = keys_where(&ledger.ledger.resources, |e| e.address == *address);
    let bindings = keys_where(&ledger.ledger.bindings, |b| b.address == *address);
    if names.is_empty() && bindings.is_empty() {
        return Err(anyhow!(
            "{address} is not in this stack's ownership ledger, so there is nothing to forget; nothing was changed"
        ));
    }
    Ok(Records { names, bindings })
}

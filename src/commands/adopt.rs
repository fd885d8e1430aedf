//! `stackctl adopt ADDR...`: take ownership of existing resources by explicit name, never by guessing —
//! queues, service accounts and schedules go into the ledger; services, jobs and secrets get the
//! ownership label. APIs and IAM grants need no adoption (a declared grant already present is
//! simply kept; stackctl only ever removes members it added).

use anyhow::{Result, bail};

use super::{ExitStatus, Session, load_stack};
use crate::cli::{AdoptArgs, Cli};
use crate::model::{Kind, ResourceAddr};
use crate::provider::Silent;
use crate::provider::run::OperationObserver;
use crate::resources::{OWNER_LABEL, job, queue, schedule, secret, service, service_account};
use crate::state::lock::holder_name;
use crate::state::{ApplyLock, LedgerStatus, LedgerStore};
use crate::ui::Printer;

struct Quiet;
impl crate::provider::RetryObserver for Quiet {
    fn retrying(&self, _: u32, _: std::time::Duration, _: &str) {}
}
impl OperationObserver for Quiet {
    fn phase(&self, _: &str) {}
}

pub async fn run(cli: &Cli, args: &AdoptArgs, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let mut addresses = Vec::new();
    for a in &args.addresses {
        let addr: ResourceAddr = a.parse().map_err(anyhow::Error::msg)?;
        let declared = match addr.kind {
            Kind::Service => stack.services.contains_key(&addr.name),
            Kind::Queue => stack.queues.contains_key(&addr.name),
            Kind::ServiceAccount => stack.service_accounts.contains_key(&addr.name),
            Kind::Secret => stack.secrets.contains_key(&addr.name),
            Kind::Job => stack.jobs.contains_key(&addr.name),
            Kind::Schedule => stack.schedules.contains_key(&addr.name),
            Kind::Api | Kind::Grant => bail!(
                "{addr} needs no adoption: enabled APIs are shared, and a declared grant that already exists is kept as it is"
            ),
            kind @ (Kind::Dataset
            | Kind::Table
            | Kind::Repository
            | Kind::Channel
            | Kind::Budget
            | Kind::Alert) => bail!(
                "{addr}: adopting a {kind} is not supported yet; label it {OWNER_LABEL}={} by hand (budgets: delete it and let apply recreate it)",
                stack.settings.name
            ),
        };
        if !declared {
            bail!(
                "{addr} is not declared in {}: declare it first, then adopt it",
                cli.file.display()
            );
        }
        addresses.push(addr);
    }
    let session = Session::open(cli, stack).await?;
    let result = adopt(&session, &addresses, printer).await;
    session.close().await;
    result
}

async fn adopt(
    session: &Session,
    addresses: &[ResourceAddr],
    printer: &Printer,
) -> Result<ExitStatus> {
    let stack = &session.stack;
    let storage = session.cloud.storage();
    let bucket = stack.state_bucket();
    if !storage.bucket_exists(&bucket).await? {
        storage
            .create_bucket(&stack.settings.project, &bucket, &stack.settings.region)
            .await?;
    }
    let lock = ApplyLock::acquire(
        storage,
        &bucket,
        &stack.settings.name,
        &holder_name(),
        std::time::Duration::from_secs(300),
    )
    .await?;
    let result = async {
        let mut ledger = LedgerStore::load(storage, &bucket, &stack.settings.name).await?;
        for addr in addresses {
            match addr.kind {
                Kind::Queue => {
                    let name = queue::full_name(stack, &stack.queues[&addr.name].id);
                    if session.cloud.get_queue(&name, &Silent).await?.is_none() {
                        bail!("{addr}: no queue {name} exists, so there is nothing to adopt; `stackctl apply` creates it");
                    }
                    ledger.update(|l| l.record(&name, addr, LedgerStatus::Active)).await?;
                    printer.out(&format!("Adopted {addr} ({name}) into the ownership ledger."));
                }
                Kind::Dataset
                | Kind::Table
                | Kind::Repository
                | Kind::Channel
                | Kind::Budget
                | Kind::Alert => bail!("{addr}: adopting this kind is not supported yet"),
                Kind::ServiceAccount => {
                    let name = service_account::full_name(stack, &stack.service_accounts[&addr.name]);
                    session.cloud.get_service_account(&name, &Silent).await.map_err(|e| {
                        if e.is_not_found() {
                            anyhow::anyhow!("{addr}: no service account {name} exists, so there is nothing to adopt; `stackctl apply` creates it")
                        } else {
                            e.into()
                        }
                    })?;
                    ledger.update(|l| l.record(&name, addr, LedgerStatus::Active)).await?;
                    printer.out(&format!("Adopted {addr} ({name}) into the ownership ledger."));
                }
                Kind::Schedule => {
                    let name = schedule::full_name(stack, &stack.schedules[&addr.name].id);
                    if session.cloud.get_schedule(&name, &Silent).await?.is_none() {
                        bail!("{addr}: no schedule {name} exists, so there is nothing to adopt; `stackctl apply` creates it");
                    }
                    ledger.update(|l| l.record(&name, addr, LedgerStatus::Active)).await?;
                    printer.out(&format!("Adopted {addr} ({name}) into the ownership ledger."));
                }
                Kind::Secret => {
                    let name = secret::full_name(stack, &stack.secrets[&addr.name].id);
                    let Some(live) = session.cloud.get_secret(&name, &Silent).await? else {
                        bail!("{addr}: no secret {name} exists, so there is nothing to adopt; `stackctl apply` creates it");
                    };
                    match live.labels.get(OWNER_LABEL) {
                        Some(owner) if *owner == stack.settings.name => printer.out(&format!("{addr} is already owned by this stack.")),
                        Some(other) => bail!("{addr}: {name} belongs to the stack `{other}`; stackctl will not take it over"),
                        None => {
                            let label = std::collections::BTreeMap::from([(OWNER_LABEL.to_string(), stack.settings.name.clone())]);
                            session.cloud.label_secret(&name, &label, &Silent).await?;
                            printer.out(&format!("Adopted {addr} ({name}): labelled {OWNER_LABEL}={}.", stack.settings.name));
                        }
                    }
                }
                Kind::Job => {
                    let name = job::full_name(stack, &stack.jobs[&addr.name].id);
                    let Some(live) = session.cloud.get_job(&name, &Silent).await? else {
                        bail!("{addr}: no job {name} exists, so there is nothing to adopt; `stackctl apply` creates it");
                    };
                    match live.labels.get(OWNER_LABEL) {
                        Some(owner) if *owner == stack.settings.name => printer.out(&format!("{addr} is already owned by this stack.")),
                        Some(other) => bail!("{addr}: {name} belongs to the stack `{other}`; stackctl will not take it over"),
                        None => {
                            session.cloud.label_job(&name, OWNER_LABEL, &stack.settings.name, &Quiet).await?;
                            printer.out(&format!("Adopted {addr} ({name}): labelled {OWNER_LABEL}={}.", stack.settings.name));
                        }
                    }
                }
                Kind::Api | Kind::Grant => {}
                Kind::Service => {
                    let name = service::full_name(stack, &stack.services[&addr.name].id);
                    let Some(live) = session.cloud.get_service(&name, &Silent).await? else {
                        bail!("{addr}: no service {name} exists, so there is nothing to adopt; `stackctl apply` creates it");
                    };
                    match service::owner(&live) {
                        Some(owner) if owner == stack.settings.name => printer.out(&format!("{addr} is already owned by this stack.")),
                        Some(other) => bail!("{addr}: {name} belongs to the stack `{other}`; stackctl will not take it over"),
                        None => {
                            session.cloud.label_service(&name, OWNER_LABEL, &stack.settings.name, &Quiet).await?;
                            printer.out(&format!("Adopted {addr} ({name}): labelled {OWNER_LABEL}={}.", stack.settings.name));
                        }
                    }
                }
            }
        }
        printer.out("Run `stackctl plan` to see how they differ from stack.toml.");
        Ok(ExitStatus::Success)
    }
    .await;
    if let Err(e) = lock.release().await {
        printer.err(&format!("warning: could not release the apply lock: {e}"));
    }
    result
}

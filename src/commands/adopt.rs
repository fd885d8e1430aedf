//! `stackctl adopt ADDR...`: take ownership of existing resources by explicit name, never by guessing —
//! queues, service accounts, schedules and budgets go into the ledger; services, jobs, secrets,
//! datasets, tables and repositories get the ownership label (their other labels are kept);
//! notification channels and alert policies get the ownership and name user labels. Budgets,
//! channels and alert policies have server-assigned ids: exactly one live resource must carry
//! the display name stackctl would give it. APIs and IAM grants need no adoption (a declared grant
//! already present is simply kept; stackctl only ever removes members it added).

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};

use super::{ExitStatus, Session, load_stack};
use crate::cli::{AdoptArgs, Cli};
use crate::config::Stack;
use crate::model::{Kind, ResourceAddr};
use crate::provider::Silent;
use crate::provider::bigquery::TableWrite;
use crate::provider::run::OperationObserver;
use crate::resources::{
    NAME_LABEL, OWNER_LABEL, Ownership, alert, budget, channel, job, label_ownership, labelled_key,
    queue, repository, schedule, secret, service, service_account, table,
};
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
        if !declares(&stack, &addr)? {
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

/// Whether stack.toml declares `addr`; an error for kinds that need no adoption.
fn declares(stack: &Stack, addr: &ResourceAddr) -> Result<bool> {
    let name = &addr.name;
    Ok(match addr.kind {
        Kind::Service => stack.services.contains_key(name),
        Kind::Queue => stack.queues.contains_key(name),
        Kind::ServiceAccount => stack.service_accounts.contains_key(name),
        Kind::Secret => stack.secrets.contains_key(name),
        Kind::Job => stack.jobs.contains_key(name),
        Kind::Schedule => stack.schedules.contains_key(name),
        Kind::Dataset => stack.datasets.contains_key(name),
        Kind::Table => stack.tables.contains_key(name),
        Kind::Repository => stack.repositories.contains_key(name),
        Kind::Channel => stack.channels.contains_key(name),
        Kind::Budget => stack.budgets.contains_key(name),
        Kind::Alert => stack.alerts.contains_key(name),
        Kind::Api | Kind::Grant => bail!(
            "{addr} needs no adoption: enabled APIs are shared, and a declared grant that already exists is kept as it is"
        ),
    })
}

/// How a live resource says whose it is.
enum Owner {
    /// Nothing on it: the ledger says (queues, service accounts, schedules, budgets).
    Ledger,
    /// Its labels (user labels for Monitoring), and its etag where the label write takes one
    /// (BigQuery; empty otherwise).
    Labels {
        live: BTreeMap<String, String>,
        etag: String,
    },
}

/// What adoption looked for: the resource's full name (or, while it was not found, what
/// identifies it), and how it is owned; `None` when nothing matched.
struct Target {
    name: String,
    owner: Option<Owner>,
}

impl Target {
    fn labelled(name: String, found: Option<(&BTreeMap<String, String>, &str)>) -> Self {
        let owner = found.map(|(live, etag)| Owner::Labels {
            live: live.clone(),
            etag: etag.to_string(),
        });
        Self { name, owner }
    }

    fn ledger(name: String, exists: bool) -> Self {
        Self {
            name,
            owner: exists.then_some(Owner::Ledger),
        }
    }
}

/// One live resource of a kind whose ids the server assigns: its name, its display name, and
/// its (user) labels, `None` for ledger-owned kinds.
type Candidate<'a> = (&'a str, &'a str, Option<&'a BTreeMap<String, String>>);

/// The one live resource that plan already matches to `key` (labelled kinds), or else the one
/// named `display_name` that this stack does not label as another of its resources; an error
/// naming them when several are.
fn one_match<'a>(
    addr: &ResourceAddr,
    stack: &str,
    key: Option<&str>,
    display_name: &str,
    candidates: impl Iterator<Item = Candidate<'a>>,
) -> Result<Target> {
    let target = |(name, _, labels): &Candidate<'_>| match labels {
        Some(live) => Target::labelled(name.to_string(), Some((live, ""))),
        None => Target::ledger(name.to_string(), true),
    };
    let candidates: Vec<Candidate<'a>> = candidates.collect();
    let keyed = |(name, _, labels): &&Candidate<'_>| {
        labels.is_some_and(|l| Some(labelled_key(l, name).as_str()) == key)
    };
    if let Some(matched) = candidates.iter().find(keyed) {
        return Ok(target(matched));
    }
    let ours_already = |labels: &Option<&BTreeMap<String, String>>| {
        labels.and_then(|l| l.get(OWNER_LABEL)).map(String::as_str) == Some(stack)
    };
    let named: Vec<&Candidate<'_>> = candidates
        .iter()
        .filter(|(_, shown, labels)| *shown == display_name && !ours_already(labels))
        .collect();
    match named.as_slice() {
        [] => Ok(Target {
            name: format!("a {} with the display name {display_name:?}", addr.kind),
            owner: None,
        }),
        [one] => Ok(target(one)),
        many => {
            let names: Vec<&str> = many.iter().map(|(name, _, _)| *name).collect();
            bail!(
                "{addr}: {} resources have the display name {display_name:?} ({}); adopt takes exactly one: rename or delete the others, then run it again",
                many.len(),
                names.join(", ")
            )
        }
    }
}

/// Finds the live resource `addr` declares.
async fn find(session: &Session, addr: &ResourceAddr) -> Result<Target> {
    let stack = &session.stack;
    let cloud = &session.cloud;
    let (name, owner) = (&addr.name, &stack.settings.name);
    Ok(match addr.kind {
        Kind::Queue => {
            let full = queue::full_name(stack, &stack.queues[name].id);
            let exists = cloud.get_queue(&full, &Silent).await?.is_some();
            Target::ledger(full, exists)
        }
        Kind::ServiceAccount => {
            let full = service_account::full_name(stack, &stack.service_accounts[name]);
            let exists = match cloud.get_service_account(&full, &Silent).await {
                Ok(_) => true,
                Err(e) if e.is_not_found() => false,
                Err(e) => return Err(e.into()),
            };
            Target::ledger(full, exists)
        }
        Kind::Schedule => {
            let full = schedule::full_name(stack, &stack.schedules[name].id);
            let exists = cloud.get_schedule(&full, &Silent).await?.is_some();
            Target::ledger(full, exists)
        }
        Kind::Secret => {
            let full = secret::full_name(stack, &stack.secrets[name].id);
            let live = cloud.get_secret(&full, &Silent).await?;
            Target::labelled(full, live.as_ref().map(|l| (&l.labels, "")))
        }
        Kind::Job => {
            let full = job::full_name(stack, &stack.jobs[name].id);
            let live = cloud.get_job(&full, &Silent).await?;
            Target::labelled(full, live.as_ref().map(|l| (&l.labels, "")))
        }
        Kind::Service => {
            let full = service::full_name(stack, &stack.services[name].id);
            let live = cloud.get_service(&full, &Silent).await?;
            Target::labelled(full, live.as_ref().map(|l| (&l.labels, "")))
        }
        Kind::Dataset => {
            let cfg = &stack.datasets[name];
            let live = cloud.get_dataset(&cfg.id, &Silent).await?;
            let full = crate::resources::dataset::full_name(&stack.settings.project, &cfg.id);
            Target::labelled(full, live.as_ref().map(|l| (&l.labels, l.etag.as_str())))
        }
        Kind::Table => {
            let spec = table::spec(stack, &stack.tables[name]);
            let live = cloud
                .get_table(&spec.dataset_id, &spec.table_id, &Silent)
                .await?;
            Target::labelled(
                spec.name,
                live.as_ref().map(|l| (&l.labels, l.etag.as_str())),
            )
        }
        Kind::Repository => {
            let spec = repository::spec(stack, &stack.repositories[name]);
            let live = cloud.get_repository(&spec.name, &Silent).await?;
            Target::labelled(spec.name, live.as_ref().map(|l| (&l.labels, "")))
        }
        Kind::Channel => {
            let spec = channel::spec(stack, name, &stack.channels[name]);
            let live = cloud.list_channels(&Silent).await?;
            let live = live
                .iter()
                .map(|c| (&*c.name, &*c.display_name, Some(&c.user_labels)));
            one_match(addr, owner, Some(&spec.key), &spec.display_name, live)?
        }
        Kind::Alert => {
            let spec = alert::spec(stack, name, &stack.alerts[name]);
            let live = cloud.list_alerts(&Silent).await?;
            let live = live
                .iter()
                .map(|a| (&*a.name, &*a.display_name, Some(&a.user_labels)));
            one_match(addr, owner, Some(&spec.key), &spec.display_name, live)?
        }
        Kind::Budget => {
            let spec = budget::spec(stack, name, &stack.budgets[name]);
            // A billing account's budgets span projects: only one filtered to exactly this
            // project is a candidate (another project's stack may use the same display name).
            let project = cloud.project_number(&Silent).await?;
            let live = cloud.list_budgets(&spec.billing_account, &Silent).await?;
            let live = live
                .iter()
                .filter(|b| b.projects == [project.clone()])
                .map(|b| (&*b.name, &*b.display_name, None));
            one_match(addr, owner, None, &spec.display_name, live)?
        }
        Kind::Api | Kind::Grant => unreachable!("refused by `declares`"),
    })
}

/// Writes `labels` (the live ones plus the ownership labels) on the resource `name`.
async fn write_labels(
    session: &Session,
    addr: &ResourceAddr,
    name: &str,
    labels: &BTreeMap<String, String>,
    etag: &str,
) -> Result<()> {
    let stack = &session.stack;
    let cloud = &session.cloud;
    let owner = &stack.settings.name;
    let written = match addr.kind {
        Kind::Service => cloud
            .label_service(name, OWNER_LABEL, owner, &Quiet)
            .await
            .map(drop),
        Kind::Job => cloud
            .label_job(name, OWNER_LABEL, owner, &Quiet)
            .await
            .map(drop),
        Kind::Secret => cloud.label_secret(name, labels, &Silent).await.map(drop),
        Kind::Dataset => {
            let id = &stack.datasets[&addr.name].id;
            cloud
                .label_dataset(id, labels, etag, &Silent)
                .await
                .map(drop)
        }
        Kind::Table => {
            let spec = table::spec(stack, &stack.tables[&addr.name]);
            let write = TableWrite {
                project: spec.project,
                dataset_id: spec.dataset_id,
                table_id: spec.table_id,
                labels: Some(labels.clone()),
                ..TableWrite::default()
            };
            cloud.patch_table(&write, etag, &Silent).await.map(drop)
        }
        Kind::Repository => cloud.label_repository(name, labels, &Quiet).await.map(drop),
        Kind::Channel => cloud.label_channel(name, labels, &Silent).await.map(drop),
        Kind::Alert => cloud.label_alert(name, labels, &Silent).await.map(drop),
        Kind::Queue
        | Kind::ServiceAccount
        | Kind::Schedule
        | Kind::Budget
        | Kind::Api
        | Kind::Grant => {
            unreachable!("{addr} is not owned by label")
        }
    };
    written.map_err(|e| {
        if e.is_precondition_failed() {
            anyhow!("{addr}: {name} changed while it was being adopted; nothing was written, run `stackctl adopt {addr}` again")
        } else {
            e.into()
        }
    })
}

/// The labels that make a live resource this stack's `addr`.
fn ownership_labels(stack: &Stack, addr: &ResourceAddr) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([(OWNER_LABEL.to_string(), stack.settings.name.clone())]);
    if matches!(addr.kind, Kind::Channel | Kind::Alert) {
        labels.insert(NAME_LABEL.to_string(), addr.name.clone());
    }
    labels
}

/// Adopts one declared resource: find it, check whose it is, then label it or record it.
async fn adopt_one(
    session: &Session,
    ledger: &mut LedgerStore,
    addr: &ResourceAddr,
    printer: &Printer,
) -> Result<()> {
    let stack = &session.stack;
    let Target { name, owner } = find(session, addr).await?;
    match owner {
        None => bail!(
            "{addr}: {name} does not exist, so there is nothing to adopt; `stackctl apply` creates it"
        ),
        Some(Owner::Ledger) => {
            let entry = ledger.ledger.entry(&name);
            if entry.is_some_and(|e| e.address == *addr && e.status == LedgerStatus::Active) {
                printer.out(&format!("{addr} is already owned by this stack."));
                return Ok(());
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
        }
        Some(Owner::Labels { live, etag }) => match label_ownership(&live, &stack.settings.name) {
            Ownership::Ours => printer.out(&format!("{addr} is already owned by this stack.")),
            Ownership::OtherStack(other) => bail!(
                "{addr}: {name} belongs to the stack `{other}`; stackctl will not take it over"
            ),
            Ownership::Unowned => {
                let added = ownership_labels(stack, addr);
                let mut labels = live;
                labels.extend(added.clone());
                write_labels(session, addr, &name, &labels, &etag).await?;
                let shown: Vec<String> = added.iter().map(|(k, v)| format!("{k}={v}")).collect();
                printer.out(&format!(
                    "Adopted {addr} ({name}): labelled {}.",
                    shown.join(", ")
                ));
            }
        },
    }
    Ok(())
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
            adopt_one(session, &mut ledger, addr, printer).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pick(candidates: &[Candidate<'_>], key: Option<&str>) -> Result<Target> {
        let addr = ResourceAddr::new(Kind::Channel, "oncall");
        one_match(&addr, "s", key, "oncall", candidates.iter().copied())
    }

    #[test]
    fn the_channel_plan_already_matches_wins_over_display_names() {
        let ours = labels(&[(OWNER_LABEL, "s"), (NAME_LABEL, "oncall")]);
        let none = labels(&[]);
        let found = pick(
            &[
                ("c/1", "oncall", Some(&none)),
                ("c/2", "renamed", Some(&ours)),
            ],
            Some("s/oncall"),
        )
        .unwrap();
        assert_eq!(found.name, "c/2");
    }

    #[test]
    fn exactly_one_display_name_match_is_adopted_and_this_stacks_others_do_not_count() {
        let other_of_ours = labels(&[(OWNER_LABEL, "s"), (NAME_LABEL, "pager")]);
        let theirs = labels(&[(OWNER_LABEL, "t")]);
        let none = labels(&[]);
        let found = pick(
            &[
                ("c/1", "oncall", Some(&other_of_ours)),
                ("c/2", "oncall", Some(&theirs)),
                ("c/3", "other", Some(&none)),
            ],
            Some("s/oncall"),
        )
        .unwrap();
        assert_eq!(found.name, "c/2", "another stack's is found, then refused");
        let missing = pick(&[("c/3", "other", Some(&none))], Some("s/oncall")).unwrap();
        assert!(missing.owner.is_none());
        assert_eq!(missing.name, "a channel with the display name \"oncall\"");
    }

    #[test]
    fn several_display_name_matches_are_an_error_naming_them_all() {
        let none = labels(&[]);
        let err = pick(&[("b/1", "oncall", None), ("b/2", "oncall", None)], None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("2 resources have the display name \"oncall\" (b/1, b/2)"),
            "{err}"
        );
        let one = pick(&[("b/1", "oncall", None), ("c/9", "x", Some(&none))], None).unwrap();
        assert!(matches!(one.owner, Some(Owner::Ledger)));
    }
}

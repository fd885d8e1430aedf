//! `iam`: grants — one IAM member on one role of one resource's policy, each its own planned
//! change (`+ iam: roles/run.invoker on service.worker for service_account.tasks`).
//!
//! Grants are implied by stack.toml's wiring keys (`roles`, `invokers`, `enqueuers`,
//! `oidc_service_account`, `secrets`, `writes`, schedules) and are non-authoritative: a grant adds
//! its member and records `resource|role|member` in the ledger first; only members the ledger
//! holds are ever removed, and members others added are never touched. Applying one is a
//! read-modify-write of the target's policy with its etag (see `provider::iam`), serialized per
//! policy and retried on concurrent changes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{
    Adoption, ApplyCtx, Converge, Known, Ownership, Reconcile, StepError, job, queue, quoted,
    secret, service, service_account, table,
};
use crate::config::Stack;
use crate::model::change::{Action, FieldChange, FieldValue, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::iam::{PolicyRecord, PolicyTarget};
use crate::provider::run::OperationObserver;
use crate::state::Ledger;
use crate::state::ledger::{binding_key, split_binding_key};

pub const RUN_INVOKER: &str = "roles/run.invoker";
pub const TASKS_ENQUEUER: &str = "roles/cloudtasks.enqueuer";
pub const SERVICE_ACCOUNT_USER: &str = "roles/iam.serviceAccountUser";
pub const SECRET_ACCESSOR: &str = "roles/secretmanager.secretAccessor";
pub const BIGQUERY_DATA_EDITOR: &str = "roles/bigquery.dataEditor";
pub const BIGQUERY_JOB_USER: &str = "roles/bigquery.jobUser";

/// One declared grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantSpec {
    /// The ledger key: `resource|role|member`.
    pub name: String,
    pub target: PolicyTarget,
    pub role: String,
    /// `serviceAccount:EMAIL`
    pub member: String,
    /// The declared resource whose policy it edits (`None` = the project).
    pub on: Option<ResourceAddr>,
    /// The declared service account it grants to.
    pub grantee: ResourceAddr,
}

/// A grant observed in a policy (only those declared or in the ledger are ever looked at).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantRecord {
    /// `resource|role|member`
    pub name: String,
}

/// The address of a grant: `iam: ROLE on TARGET for GRANTEE`.
pub fn address(role: &str, on: Option<&ResourceAddr>, grantee: &ResourceAddr) -> ResourceAddr {
    let on = on.map_or_else(|| "project".to_string(), ToString::to_string);
    ResourceAddr::new(Kind::Grant, format!("{role} on {on} for {grantee}"))
}

fn member(email: &str) -> String {
    format!("serviceAccount:{email}")
}

/// Collects grants, each once (two keys implying the same grant make one plan line).
struct Grants<'s> {
    stack: &'s Stack,
    out: BTreeMap<String, (ResourceAddr, GrantSpec)>,
}

impl Grants<'_> {
    fn add(
        &mut self,
        target: PolicyTarget,
        on: Option<&ResourceAddr>,
        role: &str,
        grantee: &ResourceAddr,
    ) {
        let Some(email) = service_account::email_of(self.stack, grantee) else {
            return;
        };
        let member = member(&email);
        let name = binding_key(target.resource(), role, &member);
        let spec = GrantSpec {
            name: name.clone(),
            target,
            role: role.to_string(),
            member,
            on: on.cloned(),
            grantee: grantee.clone(),
        };
        self.out
            .entry(name)
            .or_insert_with(|| (address(role, on, grantee), spec));
    }
}

/// The policy target of a declared resource, by address.
fn target_of(stack: &Stack, addr: &ResourceAddr) -> Option<PolicyTarget> {
    Some(match addr.kind {
        Kind::Service => PolicyTarget::Service(service::full_name(
            stack,
            &stack.services.get(&addr.name)?.id,
        )),
        Kind::Job => PolicyTarget::Job(job::full_name(stack, &stack.jobs.get(&addr.name)?.id)),
        Kind::Queue => {
            PolicyTarget::Queue(queue::full_name(stack, &stack.queues.get(&addr.name)?.id))
        }
        Kind::ServiceAccount => PolicyTarget::ServiceAccount(service_account::full_name(
            stack,
            stack.service_accounts.get(&addr.name)?,
        )),
        Kind::Secret => {
            PolicyTarget::Secret(secret::full_name(stack, &stack.secrets.get(&addr.name)?.id))
        }
        Kind::Table => PolicyTarget::Table(table::spec(stack, stack.tables.get(&addr.name)?).name),
        // No IAM policy stackctl grants on (BigQuery datasets use access[] in v2).
        Kind::Schedule
        | Kind::Firestore
        | Kind::Api
        | Kind::Grant
        | Kind::ShopifyWebhook
        | Kind::Dataset
        | Kind::Repository
        | Kind::Channel
        | Kind::Budget
        | Kind::Alert
        | Kind::Uptime
        | Kind::Gateway
        | Kind::ApiKey
        | Kind::Dashboard => return None,
    })
}

/// The policy a job's `writes = ["table.NAME"]` grants `roles/bigquery.dataEditor` on: the
/// table's own (`tables.setIamPolicy`), so the job can write only the tables it declares. Not the
/// dataset's: BigQuery v2 datasets have no IAM policy, only an `access[]` list that would hand the
/// role over every table in the dataset. `None` when no `[table.NAME]` is declared.
fn written_table(stack: &Stack, name: &str) -> Option<(PolicyTarget, ResourceAddr)> {
    let addr = ResourceAddr::new(Kind::Table, name);
    Some((target_of(stack, &addr)?, addr))
}

/// Every grant stack.toml implies, by address.
pub fn declared_grants(stack: &Stack) -> Vec<(ResourceAddr, GrantSpec)> {
    let project = PolicyTarget::Project(format!("projects/{}", stack.settings.project));
    let mut grants = Grants {
        stack,
        out: BTreeMap::new(),
    };
    for (name, cfg) in &stack.service_accounts {
        let account = ResourceAddr::new(Kind::ServiceAccount, name);
        for role in &cfg.roles {
            grants.add(project.clone(), None, role, &account);
        }
    }
    for (name, cfg) in &stack.services {
        let addr = ResourceAddr::new(Kind::Service, name);
        for invoker in &cfg.invokers {
            if let Some(t) = target_of(stack, &addr) {
                grants.add(t, Some(&addr), RUN_INVOKER, invoker);
            }
        }
        if let Some(account) = &cfg.service_account {
            for secret in cfg.secrets.values() {
                if let Some(t) = target_of(stack, secret) {
                    grants.add(t, Some(secret), SECRET_ACCESSOR, account);
                }
            }
        }
    }
    for (name, cfg) in &stack.queues {
        let addr = ResourceAddr::new(Kind::Queue, name);
        if let (Some(oidc), Some(target)) = (&cfg.oidc_service_account, &cfg.target) {
            // The queue's identity calls the target: it needs run.invoker there.
            if let Some(t) = target_of(stack, target) {
                grants.add(t, Some(target), RUN_INVOKER, oidc);
            }
        }
        for enqueuer in &cfg.enqueuers {
            if let Some(t) = target_of(stack, &addr) {
                grants.add(t, Some(&addr), TASKS_ENQUEUER, enqueuer);
            }
            if let Some(oidc) = &cfg.oidc_service_account
                && let Some(t) = target_of(stack, oidc)
            {
                grants.add(t, Some(oidc), SERVICE_ACCOUNT_USER, enqueuer);
            }
        }
    }
    for cfg in stack.gateways.values() {
        // The gateway calls its backend with an ID token of its identity.
        if let Some(t) = target_of(stack, &cfg.backend) {
            grants.add(t, Some(&cfg.backend), RUN_INVOKER, &cfg.service_account);
        }
    }
    for cfg in stack.jobs.values() {
        let Some(account) = &cfg.service_account else {
            continue;
        };
        for secret in cfg.secrets.values() {
            if let Some(t) = target_of(stack, secret) {
                grants.add(t, Some(secret), SECRET_ACCESSOR, account);
            }
        }
        for table in &cfg.writes {
            if let Some((t, on)) = written_table(stack, table) {
                grants.add(t, Some(&on), BIGQUERY_DATA_EDITOR, account);
            }
        }
        if !cfg.writes.is_empty() {
            grants.add(project.clone(), None, BIGQUERY_JOB_USER, account);
        }
    }
    for cfg in stack.schedules.values() {
        if let Some(t) = target_of(stack, &cfg.job) {
            grants.add(t, Some(&cfg.job), RUN_INVOKER, &cfg.service_account);
        }
    }
    grants.out.into_values().collect()
}

/// The grants a service or job needs before it runs: secret access for its identity.
pub fn secret_access_addresses(
    account: Option<&ResourceAddr>,
    secrets: &BTreeMap<String, ResourceAddr>,
) -> Vec<ResourceAddr> {
    let Some(account) = account else {
        return vec![];
    };
    let distinct: BTreeSet<&ResourceAddr> = secrets.values().collect();
    distinct
        .into_iter()
        .map(|s| address(SECRET_ACCESSOR, Some(s), account))
        .collect()
}

/// The policies planning must read: those of declared grants and of ledger bindings.
pub fn policy_targets(stack: &Stack, ledger: &Ledger) -> BTreeSet<PolicyTarget> {
    let mut targets: BTreeSet<PolicyTarget> = declared_grants(stack)
        .into_iter()
        .map(|(_, spec)| spec.target)
        .collect();
    targets.extend(
        ledger
            .bindings
            .keys()
            .filter_map(|k| split_binding_key(k))
            .filter_map(|(resource, _, _)| PolicyTarget::from_resource(resource)),
    );
    targets
}

/// The grants present in the observed policies, among those declared or in the ledger.
pub fn observed_grants(
    stack: &Stack,
    policies: &BTreeMap<String, PolicyRecord>,
    ledger: &Ledger,
) -> Vec<GrantRecord> {
    let mut keys: BTreeSet<String> = declared_grants(stack)
        .into_iter()
        .map(|(_, spec)| spec.name)
        .collect();
    keys.extend(ledger.bindings.keys().cloned());
    keys.into_iter()
        .filter(|key| {
            split_binding_key(key).is_some_and(|(resource, role, member)| {
                policies.get(resource).is_some_and(|p| p.has(role, member))
            })
        })
        .map(|name| GrantRecord { name })
        .collect()
}

/// The names (`resource|role|member`) of the declared grants on one of `resources`.
pub fn declared_on(stack: &Stack, resources: &BTreeSet<ResourceAddr>) -> BTreeSet<String> {
    if resources.is_empty() {
        return BTreeSet::new();
    }
    declared_grants(stack)
        .into_iter()
        .filter(|(_, spec)| spec.on.as_ref().is_some_and(|on| resources.contains(on)))
        .map(|(_, spec)| spec.name)
        .collect()
}

/// `iam`: grants, owned through the ledger's `bindings`.
pub struct GrantKind;

impl Reconcile for GrantKind {
    const KIND: Kind = Kind::Grant;
    const TIER: u8 = 3;
    // Project-level grants go through Resource Manager's project policy.
    const APIS: &'static [&'static str] = &["cloudresourcemanager"];
    const ADOPTION: Adoption =
        Adoption::NotNeeded("a declared grant that already exists is kept as it is");
    type Spec = GrantSpec;
    type Live = GrantRecord;

    fn declared(stack: &Stack) -> Vec<(ResourceAddr, GrantSpec)> {
        declared_grants(stack)
    }
    fn spec_name(spec: &GrantSpec) -> &str {
        &spec.name
    }
    fn live_name(live: &GrantRecord) -> &str {
        &live.name
    }
    /// Observed grants are only those declared or in the ledger: a declared member someone else
    /// already added is simply there (no conflict); an undeclared one is ours to remove only
    /// because the ledger says we added it.
    fn ownership(_: &GrantRecord, _: &str, _: &Ledger) -> Ownership {
        Ownership::Ours
    }
    fn address_of(live: &GrantRecord, ledger: &Ledger) -> ResourceAddr {
        ledger
            .binding(&live.name)
            .map(|b| b.address.clone())
            .unwrap_or_else(|| ResourceAddr::new(Kind::Grant, live.name.clone()))
    }
    fn depends_on(spec: &GrantSpec) -> Vec<ResourceAddr> {
        spec.on
            .iter()
            .cloned()
            .chain(std::iter::once(spec.grantee.clone()))
            .collect()
    }
    fn create_fields(spec: &GrantSpec, _: &Known) -> Vec<FieldChange> {
        vec![FieldChange::new(
            "member",
            None,
            Some(FieldValue::Known(quoted(&spec.member))),
        )]
    }
    /// A grant is a member in a role: present is all there is to it.
    fn diff(_: &GrantSpec, _: &GrantRecord, _: &Known) -> Vec<FieldChange> {
        vec![]
    }
}

impl Converge for GrantKind {
    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&GrantSpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let Some((resource, role, member)) = split_binding_key(&change.name) else {
            return Err(StepError::Plan(format!(
                "{} has no `resource|role|member` name; re-run `stackctl plan`",
                change.address
            )));
        };
        let target = match spec {
            Some(spec) => spec.target.clone(),
            None => PolicyTarget::from_resource(resource).ok_or_else(|| {
                StepError::Plan(format!(
                    "{}: stackctl does not know the policy of {resource}",
                    change.address
                ))
            })?,
        };
        let lock = ctx.policy_locks.of(target.resource());
        let _held = lock.lock().await;
        match change.action {
            Action::Replace => {
                return Err(StepError::damaged_replace(&change.address));
            }
            Action::Create | Action::Update => {
                // Recorded first: a crash after the write still leaves the member ours.
                ctx.record_binding(change).await?;
                observer.phase("adding member to policy");
                ctx.cloud
                    .modify_iam_policy(&target, |p| p.add(role, member), observer)
                    .await?;
            }
            Action::Delete | Action::Retire => {
                observer.phase("removing member from policy");
                let removed = ctx
                    .cloud
                    .modify_iam_policy(&target, |p| p.remove(role, member), observer)
                    .await;
                match removed {
                    // The resource is gone, and its policy with it: nothing is left to revoke.
                    Err(e) if e.is_not_found() => {
                        observer.phase(&format!("{resource} is gone; the member went with it"));
                    }
                    other => drop(other?),
                }
                ctx.forget_binding(change).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STACK: &str = r#"
[stack]
name = "shop"
project = "acme-shop"
region = "us-central1"

[service_account.tasks]
id = "tasks-invoker"

[service_account.worker]
roles = ["roles/logging.logWriter"]

[service_account.relay]
id = "relay-sa"

[secret.api-key]

[service.worker]
image = "img"
max_instances = 3
service_account = "service_account.worker"
invokers = ["service_account.tasks"]
secrets = { API_KEY = "secret.api-key", API_KEY_COPY = "secret.api-key" }

[queue.webhooks]
target = "service.worker"
oidc_service_account = "service_account.tasks"
enqueuers = ["service_account.relay"]

[job.ingest]
image = "img"
service_account = "service_account.worker"
secrets = { API_KEY = "secret.api-key" }
writes = ["table.orders"]

[dataset.shopify]
id = "shop_data"

[table.orders]
dataset = "dataset.shopify"
[[table.orders.columns]]
name = "id"
type = "INT64"

[table.events]
dataset = "dataset.shopify"
[[table.events.columns]]
name = "at"
type = "TIMESTAMP"

[schedule.hourly]
job = "job.ingest"
cron = "0 * * * *"
service_account = "service_account.tasks"
"#;

    fn stack() -> Stack {
        crate::config::parse(std::path::Path::new("stack.toml"), STACK).unwrap()
    }

    #[test]
    fn the_wiring_implies_one_grant_per_member_role_and_resource() {
        let grants: Vec<String> = declared_grants(&stack())
            .into_iter()
            .map(|(addr, _)| addr.to_string())
            .collect();
        let mut expected = vec![
            "iam: roles/logging.logWriter on project for service_account.worker",
            "iam: roles/run.invoker on service.worker for service_account.tasks",
            "iam: roles/secretmanager.secretAccessor on secret.api-key for service_account.worker",
            "iam: roles/cloudtasks.enqueuer on queue.webhooks for service_account.relay",
            "iam: roles/iam.serviceAccountUser on service_account.tasks for service_account.relay",
            "iam: roles/bigquery.jobUser on project for service_account.worker",
            "iam: roles/bigquery.dataEditor on table.orders for service_account.worker",
            "iam: roles/run.invoker on job.ingest for service_account.tasks",
        ];
        let mut got = grants.clone();
        expected.sort();
        got.sort();
        assert_eq!(
            got, expected,
            "the secret shared by the service and job, and the invoker implied by both `invokers` and the queue's OIDC identity, appear once"
        );
    }

    #[test]
    fn grants_name_the_policy_role_and_member_and_depend_on_both_ends() {
        let (addr, spec) = declared_grants(&stack())
            .into_iter()
            .find(|(_, s)| s.role == SERVICE_ACCOUNT_USER)
            .unwrap();
        assert_eq!(
            spec.name,
            "projects/acme-shop/serviceAccounts/tasks-invoker@acme-shop.iam.gserviceaccount.com|roles/iam.serviceAccountUser|serviceAccount:relay-sa@acme-shop.iam.gserviceaccount.com"
        );
        assert_eq!(
            GrantKind::depends_on(&spec),
            vec![
                "service_account.tasks".parse().unwrap(),
                "service_account.relay".parse().unwrap()
            ]
        );
        assert_eq!(addr.kind, Kind::Grant);
    }

    #[test]
    fn a_written_table_gets_data_editor_on_that_table_only_after_the_table_exists() {
        let stack = stack();
        let editors: Vec<(ResourceAddr, GrantSpec)> = declared_grants(&stack)
            .into_iter()
            .filter(|(_, s)| s.role == BIGQUERY_DATA_EDITOR)
            .collect();
        assert_eq!(editors.len(), 1, "only the written table, not table.events");
        let (addr, spec) = &editors[0];
        assert_eq!(
            addr.to_string(),
            "iam: roles/bigquery.dataEditor on table.orders for service_account.worker"
        );
        assert_eq!(
            spec.target,
            PolicyTarget::Table("projects/acme-shop/datasets/shop_data/tables/orders".into())
        );
        assert_eq!(
            spec.name,
            "projects/acme-shop/datasets/shop_data/tables/orders|roles/bigquery.dataEditor|serviceAccount:worker@acme-shop.iam.gserviceaccount.com"
        );
        assert_eq!(
            GrantKind::depends_on(spec),
            vec![
                "table.orders".parse().unwrap(),
                "service_account.worker".parse().unwrap()
            ]
        );
        let targets = policy_targets(&stack, &Ledger::empty("shop"));
        assert!(
            targets.contains(&spec.target),
            "the table's policy is observed"
        );
        assert_eq!(
            PolicyTarget::from_resource(spec.target.resource()),
            Some(spec.target.clone()),
            "a ledger binding on the table is revocable once undeclared"
        );
    }

    #[test]
    fn only_declared_or_ledger_members_are_observed_and_foreign_ones_never_are() {
        let stack = stack();
        let mut ledger = Ledger::empty("shop");
        let old = binding_key(
            "projects/acme-shop",
            "roles/old",
            "serviceAccount:x@acme-shop.iam.gserviceaccount.com",
        );
        ledger.record_binding(
            &old,
            &address("roles/old", None, &"service_account.x".parse().unwrap()),
        );
        let mut project = PolicyRecord::default();
        project.add(
            "roles/logging.logWriter",
            "serviceAccount:worker@acme-shop.iam.gserviceaccount.com",
        );
        project.add(
            "roles/old",
            "serviceAccount:x@acme-shop.iam.gserviceaccount.com",
        );
        project.add("roles/owner", "user:someone@example.com");
        let policies = BTreeMap::from([("projects/acme-shop".to_string(), project)]);
        let seen: Vec<String> = observed_grants(&stack, &policies, &ledger)
            .into_iter()
            .map(|g| g.name)
            .collect();
        assert_eq!(
            seen,
            vec![
                "projects/acme-shop|roles/logging.logWriter|serviceAccount:worker@acme-shop.iam.gserviceaccount.com".to_string(),
                old.clone(),
            ]
        );
        assert!(
            policy_targets(&stack, &ledger)
                .contains(&PolicyTarget::Project("projects/acme-shop".into()))
        );
    }
}

//! `api`: the Google APIs a stack needs, enabled (Service Usage v1) before anything else, implied
//! by the kinds it declares. stackctl never disables an API: other stacks and tools share them.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{
    ApplyCtx, Converge, Desired, Known, Ownership, PlanOptions, Reconcile, Removal, StepError,
    grant,
};
use crate::config::Stack;
use crate::model::{Kind, ResourceAddr};
use crate::plan::{Action, FieldChange, FieldValue, ResourceChange};
use crate::provider::apis::ApiRecord;
use crate::provider::run::OperationObserver;
use crate::state::Ledger;

/// One API to enable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiSpec {
    /// `projects/P/services/run.googleapis.com`
    pub name: String,
}

/// The APIs resources of `kind` are served by (each `<name>.googleapis.com`).
pub fn apis_for(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Service | Kind::Job => &["run"],
        Kind::Queue => &["cloudtasks"],
        Kind::ServiceAccount => &["iam"],
        Kind::Secret => &["secretmanager"],
        Kind::Schedule => &["cloudscheduler"],
        // Project-level grants go through Resource Manager's project policy.
        Kind::Grant => &["cloudresourcemanager"],
        Kind::Dataset | Kind::Table => &["bigquery"],
        Kind::Repository => &["artifactregistry"],
        Kind::Channel | Kind::Alert => &["monitoring"],
        Kind::Budget => &["billingbudgets"],
        Kind::Api => &[],
    }
}

/// The APIs every stack uses: the state bucket (ledger, lock) and the project itself.
const ALWAYS: [&str; 2] = ["cloudresourcemanager", "storage"];

/// The APIs `stack` needs, sorted.
pub fn needed(stack: &Stack) -> BTreeSet<&'static str> {
    let mut apis: BTreeSet<&'static str> = ALWAYS.into_iter().collect();
    let in_use = [
        (Kind::Service, !stack.services.is_empty()),
        (Kind::Queue, !stack.queues.is_empty()),
        (Kind::ServiceAccount, !stack.service_accounts.is_empty()),
        (Kind::Secret, !stack.secrets.is_empty()),
        (Kind::Job, !stack.jobs.is_empty()),
        (Kind::Schedule, !stack.schedules.is_empty()),
        (Kind::Dataset, !stack.datasets.is_empty()),
        (Kind::Table, !stack.tables.is_empty()),
        (Kind::Repository, !stack.repositories.is_empty()),
        (Kind::Channel, !stack.channels.is_empty()),
        (Kind::Alert, !stack.alerts.is_empty()),
        (Kind::Budget, !stack.budgets.is_empty()),
        (Kind::Grant, !grant::declared_grants(stack).is_empty()),
    ];
    for (kind, used) in in_use {
        if used {
            apis.extend(apis_for(kind));
        }
    }
    if stack.jobs.values().any(|j| !j.writes.is_empty()) {
        apis.insert("bigquery");
    }
    apis
}

pub fn full_name(stack: &Stack, api: &str) -> String {
    format!(
        "projects/{}/services/{api}.googleapis.com",
        stack.settings.project
    )
}

/// `api`: enabled Google APIs.
pub struct ApiKind;

impl Reconcile for ApiKind {
    type Spec = ApiSpec;
    type Live = ApiRecord;

    fn declared(stack: &Stack) -> Vec<(ResourceAddr, ApiSpec)> {
        needed(stack)
            .into_iter()
            .map(|api| {
                (
                    ResourceAddr::new(Kind::Api, api),
                    ApiSpec {
                        name: full_name(stack, api),
                    },
                )
            })
            .collect()
    }
    fn spec_name(spec: &ApiSpec) -> &str {
        &spec.name
    }
    fn live_name(live: &ApiRecord) -> &str {
        &live.name
    }
    fn wrap(spec: ApiSpec) -> Desired {
        Desired::Api(spec)
    }
    /// An enabled API is shared by the whole project: never a conflict.
    fn ownership(_: &ApiRecord, _: &str, _: &Ledger) -> Ownership {
        Ownership::Ours
    }
    fn address_of(live: &ApiRecord, _: &Ledger) -> ResourceAddr {
        let service = live.name.rsplit('/').next().unwrap_or_default();
        ResourceAddr::new(Kind::Api, service.trim_end_matches(".googleapis.com"))
    }
    fn create_fields(_: &ApiSpec, _: &Known) -> Vec<FieldChange> {
        vec![FieldChange::new(
            "state",
            None,
            Some(FieldValue::Known("\"ENABLED\"".into())),
        )]
    }
    fn diff(_: &ApiSpec, _: &ApiRecord, _: &Known) -> Vec<FieldChange> {
        vec![]
    }
    /// Never disabled: other stacks, tools and people use the same APIs.
    fn removal(_: &ApiRecord, _: &Ledger, _: PlanOptions) -> Removal {
        Removal::Keep
    }
}

impl Converge for ApiKind {
    async fn converge(
        ctx: &ApplyCtx,
        change: &ResourceChange,
        _: Option<&ApiSpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        match change.action {
            Action::Create | Action::Update => {
                observer.phase("enabling API");
                ctx.cloud.enable_api(&change.name, observer).await?;
                Ok(())
            }
            action => Err(StepError::Plan(format!(
                "stackctl never disables APIs, yet the plan asks to {action:?} {}; re-run `stackctl plan`",
                change.address
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apis_follow_the_kinds_in_use() {
        let stack = crate::config::parse(
            std::path::Path::new("stack.toml"),
            "[stack]\nname = \"s\"\nproject = \"acme-shop\"\nregion = \"us-central1\"\n\n[service.w]\nimage = \"i\"\nmax_instances = 1\n",
        )
        .unwrap();
        assert_eq!(
            needed(&stack).into_iter().collect::<Vec<_>>(),
            vec!["cloudresourcemanager", "run", "storage"]
        );
        assert_eq!(
            full_name(&stack, "run"),
            "projects/acme-shop/services/run.googleapis.com"
        );
    }
}

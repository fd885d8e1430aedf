//! `api`: the Google APIs a stack needs, enabled (Service Usage v1) before anything else, implied
//! by the kinds it declares. stackctl never disables an API: other stacks and tools share them.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::registry::{apis_for, declared_names};
use super::{
    Adoption, ApplyCtx, Converge, Known, Ownership, PlanOptions, Reconcile, Removal, StepError,
};
use crate::config::Stack;
use crate::model::change::{Action, FieldChange, FieldValue, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::apis::ApiRecord;
use crate::provider::run::OperationObserver;
use crate::state::Ledger;

/// One API to enable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiSpec {
    /// `projects/P/services/run.googleapis.com`
    pub name: String,
}

/// The APIs every stack uses: the state bucket (ledger, lock) and the project itself.
const ALWAYS: [&str; 2] = ["cloudresourcemanager", "storage"];

/// The APIs `stack` needs, sorted.
pub fn needed(stack: &Stack) -> BTreeSet<&'static str> {
    let mut apis: BTreeSet<&'static str> = ALWAYS.into_iter().collect();
    // Every kind but this one (its resources are these APIs) that the stack declares.
    for kind in Kind::ALL.into_iter().filter(|&kind| kind != Kind::Api) {
        if !declared_names(stack, kind).is_empty() {
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
    const KIND: Kind = Kind::Api;
    const TIER: u8 = 0;
    const APIS: &'static [&'static str] = &[];
    const ADOPTION: Adoption = Adoption::NotNeeded("enabled APIs are shared");
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
        change: &Step,
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

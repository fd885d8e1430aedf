//! `service_account`: IAM v1 service accounts, owned through the ledger (they have no labels).
//! Their project-level `roles` are grants (`resources::grant`), planned one line each.

use serde::{Deserialize, Serialize};

use super::{
    Adoption, ApplyCtx, Converge, Known, Reconcile, StepError, ledger_address, push_if_differs,
    quoted,
};
use crate::config::{ServiceAccountConfig, Stack};
use crate::model::change::{Action, FieldChange, FieldValue, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::iam::{ServiceAccountRecord, ServiceAccountWrite};
use crate::provider::run::OperationObserver;
use crate::state::{Ledger, LedgerStatus};

/// The declared state of one service account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountSpec {
    /// `projects/P/serviceAccounts/EMAIL`
    pub name: String,
    pub account_id: String,
    pub email: String,
    /// `None` = don't care.
    pub display_name: Option<String>,
    pub description: Option<String>,
}

/// `projects/P/serviceAccounts/ID@P.iam.gserviceaccount.com`
pub fn full_name(stack: &Stack, cfg: &ServiceAccountConfig) -> String {
    format!(
        "projects/{}/serviceAccounts/{}",
        stack.settings.project,
        cfg.email(&stack.settings.project)
    )
}

/// The email of a declared account, by its address (`service_account.NAME`).
pub fn email_of(stack: &Stack, addr: &ResourceAddr) -> Option<String> {
    stack
        .service_accounts
        .get(&addr.name)
        .map(|cfg| cfg.email(&stack.settings.project))
}

pub fn spec(stack: &Stack, cfg: &ServiceAccountConfig) -> ServiceAccountSpec {
    ServiceAccountSpec {
        name: full_name(stack, cfg),
        account_id: cfg.id.clone(),
        email: cfg.email(&stack.settings.project),
        display_name: cfg.display_name.clone(),
        description: cfg.description.clone(),
    }
}

pub fn create_fields(spec: &ServiceAccountSpec) -> Vec<FieldChange> {
    let known = |f: &str, v: String| FieldChange::new(f, None, Some(FieldValue::Known(v)));
    let mut out = vec![known("email", quoted(&spec.email))];
    if let Some(v) = &spec.display_name {
        out.push(known("display_name", quoted(v)));
    }
    if let Some(v) = &spec.description {
        out.push(known("description", quoted(v)));
    }
    out
}

pub fn diff(spec: &ServiceAccountSpec, live: &ServiceAccountRecord) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if let Some(v) = &spec.display_name {
        push_if_differs(&mut out, "display_name", v, &live.display_name, |s| {
            quoted(s)
        });
    }
    if let Some(v) = &spec.description {
        push_if_differs(&mut out, "description", v, &live.description, |s| quoted(s));
    }
    out
}

fn to_write(spec: &ServiceAccountSpec) -> ServiceAccountWrite {
    ServiceAccountWrite {
        name: spec.name.clone(),
        account_id: spec.account_id.clone(),
        display_name: spec.display_name.clone(),
        description: spec.description.clone(),
    }
}

/// `service_account`: IAM service accounts.
pub struct ServiceAccountKind;

impl Reconcile for ServiceAccountKind {
    const KIND: Kind = Kind::ServiceAccount;
    const TIER: u8 = 1;
    const APIS: &'static [&'static str] = &["iam"];
    const ADOPTION: Adoption = Adoption::Ledger;
    type Spec = ServiceAccountSpec;
    type Live = ServiceAccountRecord;

    fn declared(stack: &Stack) -> Vec<(ResourceAddr, ServiceAccountSpec)> {
        super::each_declared(Self::KIND, &stack.service_accounts, |_, cfg| {
            spec(stack, cfg)
        })
    }
    fn spec_name(spec: &ServiceAccountSpec) -> &str {
        &spec.name
    }
    fn live_name(live: &ServiceAccountRecord) -> &str {
        &live.name
    }
    fn address_of(live: &ServiceAccountRecord, ledger: &Ledger) -> ResourceAddr {
        ledger_address(ledger, &live.name, || {
            let id = live.email.split('@').next().unwrap_or_default();
            ResourceAddr::new(Kind::ServiceAccount, id)
        })
    }
    fn create_fields(spec: &ServiceAccountSpec, _: &Known) -> Vec<FieldChange> {
        create_fields(spec)
    }
    fn diff(spec: &ServiceAccountSpec, live: &ServiceAccountRecord, _: &Known) -> Vec<FieldChange> {
        diff(spec, live)
    }
}

impl Converge for ServiceAccountKind {
    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&ServiceAccountSpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let cloud = &ctx.cloud;
        match (change.action, spec) {
            (Action::Replace, _) => {
                return Err(StepError::damaged_replace(&change.address));
            }
            (Action::Create, Some(spec)) => {
                // Pending first: a crash after the create leaves a claim plan can check.
                ctx.record_in_ledger(change, LedgerStatus::Pending).await?;
                observer.phase("creating service account");
                let created = cloud
                    .create_service_account(&to_write(spec), observer)
                    .await?;
                ctx.settle_ledgered(change, created, async || {
                    let live = cloud.get_service_account(&spec.name, observer).await?;
                    let known = ctx.known().await;
                    Ok(ServiceAccountKind::diff(spec, &live, &known).is_empty())
                })
                .await?;
            }
            (Action::Update, Some(spec)) => {
                observer.phase("updating service account");
                cloud
                    .update_service_account(&to_write(spec), observer)
                    .await?;
                // A claimed interrupted create becomes active (a no-op write otherwise).
                ctx.record_in_ledger(change, LedgerStatus::Active).await?;
            }
            (Action::Delete | Action::Retire, _) => {
                observer.phase("deleting service account");
                cloud.delete_service_account(&change.name, observer).await?;
                ctx.forget_in_ledger(change).await?;
            }
            (action, None) => {
                return Err(StepError::no_desired_state(action, &change.address));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ServiceAccountSpec {
        ServiceAccountSpec {
            name: "projects/p/serviceAccounts/worker@p.iam.gserviceaccount.com".into(),
            account_id: "worker".into(),
            email: "worker@p.iam.gserviceaccount.com".into(),
            display_name: Some("Webhook worker".into()),
            description: None,
        }
    }

    fn live() -> ServiceAccountRecord {
        ServiceAccountRecord {
            name: "projects/p/serviceAccounts/worker@p.iam.gserviceaccount.com".into(),
            email: "worker@p.iam.gserviceaccount.com".into(),
            display_name: "Webhook worker".into(),
            description: "set by hand".into(),
            disabled: false,
        }
    }

    #[test]
    fn an_undeclared_description_is_dont_care() {
        assert_eq!(diff(&spec(), &live()), vec![]);
    }

    #[test]
    fn one_changed_field_shows_exactly_that_field() {
        let mut l = live();
        l.display_name = "old".into();
        assert_eq!(
            diff(&spec(), &l),
            vec![FieldChange::new(
                "display_name",
                Some("\"old\"".into()),
                Some(FieldValue::Known("\"Webhook worker\"".into()))
            )]
        );
    }
}

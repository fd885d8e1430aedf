//! `secret`: Secret Manager v1 secrets — stackctl ensures the secret exists (automatic
//! replication, labels); its values are added by people and never read, printed or stored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    Adoption, ApplyCtx, Converge, Known, OWNER_LABEL, PlanOptions, Reconcile, Removal, StepError,
    address_from_name, carries_our_label, made_by_someone_else, quoted,
};
use crate::config::{SecretConfig, Stack};
use crate::model::change::{Action, FieldChange, FieldValue, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::Created;
use crate::provider::run::OperationObserver;
use crate::provider::secrets::SecretRecord;
use crate::state::Ledger;

/// The declared state of one secret (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretSpec {
    /// `projects/P/secrets/ID`
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

pub fn full_name(stack: &Stack, id: &str) -> String {
    format!("projects/{}/secrets/{id}", stack.settings.project)
}

/// The secret id of a declared secret, by its address (`secret.NAME`).
pub fn id_of(stack: &Stack, addr: &ResourceAddr) -> Option<String> {
    stack.secrets.get(&addr.name).map(|cfg| cfg.id.clone())
}

pub fn spec(stack: &Stack, cfg: &SecretConfig) -> SecretSpec {
    let mut labels = stack.settings.labels.clone();
    labels.extend(cfg.labels.clone());
    labels.insert(OWNER_LABEL.to_string(), stack.settings.name.clone());
    SecretSpec {
        name: full_name(stack, &cfg.id),
        labels,
    }
}

pub fn create_fields(spec: &SecretSpec) -> Vec<FieldChange> {
    let known = |f: &str, v: String| FieldChange::new(f, None, Some(FieldValue::Known(v)));
    let mut out = vec![known("replication", quoted("automatic"))];
    for (k, v) in &spec.labels {
        out.push(known(&format!("labels.{k}"), quoted(v)));
    }
    out
}

/// Declared labels that differ (labels others set are kept and never diffed).
pub fn diff(spec: &SecretSpec, live: &SecretRecord) -> Vec<FieldChange> {
    spec.labels
        .iter()
        .filter(|(k, v)| live.labels.get(*k) != Some(*v))
        .map(|(k, v)| {
            FieldChange::new(
                format!("labels.{k}"),
                live.labels.get(k).map(|l| quoted(l)),
                Some(FieldValue::Known(quoted(v))),
            )
        })
        .collect()
}

/// `secret`: Secret Manager secrets, owned by label.
pub struct SecretKind;

impl Reconcile for SecretKind {
    const KIND: Kind = Kind::Secret;
    const TIER: u8 = 1;
    const APIS: &'static [&'static str] = &["secretmanager"];
    const ADOPTION: Adoption = Adoption::Labels;
    fn owner_labels(live: &Self::Live) -> Option<&BTreeMap<String, String>> {
        Some(&live.labels)
    }
    type Spec = SecretSpec;
    type Live = SecretRecord;

    fn declared(stack: &Stack) -> Vec<(ResourceAddr, SecretSpec)> {
        super::each_declared(Self::KIND, &stack.secrets, |_, cfg| spec(stack, cfg))
    }
    fn spec_name(spec: &SecretSpec) -> &str {
        &spec.name
    }
    fn live_name(live: &SecretRecord) -> &str {
        &live.name
    }
    fn address_of(live: &SecretRecord, _: &Ledger) -> ResourceAddr {
        address_from_name(Kind::Secret, &live.name)
    }
    fn fingerprint(live: &SecretRecord) -> String {
        live.etag.clone()
    }
    fn create_fields(spec: &SecretSpec, _: &Known) -> Vec<FieldChange> {
        create_fields(spec)
    }
    fn diff(spec: &SecretSpec, live: &SecretRecord, _: &Known) -> Vec<FieldChange> {
        diff(spec, live)
    }
    /// A secret's versions hold values stackctl never saw: removing it from stack.toml leaves
    /// it in place (delete it with `gcloud secrets delete` when you mean it); only `stackctl
    /// destroy` deletes it, and that drops data.
    fn removal(_: &SecretRecord, _: &Ledger, options: PlanOptions) -> Removal {
        if options.destroy {
            Removal::Delete {
                notes: vec!["deletes the secret with every version of its value".into()],
            }
        } else {
            Removal::Keep
        }
    }
    fn data_loss(step: &Step, _: Option<&SecretSpec>) -> Option<String> {
        (step.action == Action::Delete).then(|| {
            format!(
                "{} would be deleted with every version of its value; pass --allow-data-loss to delete it",
                step.address
            )
        })
    }
}

impl Converge for SecretKind {
    async fn write_adoption_labels(
        cloud: &crate::provider::Cloud,
        live: &Self::Live,
        labels: &BTreeMap<String, String>,
        _stack: &Stack,
    ) -> Result<(), crate::provider::ApiError> {
        use crate::provider::Silent;
        cloud
            .label_secret(&live.name, labels, &Silent)
            .await
            .map(drop)
    }
    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&SecretSpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let cloud = &ctx.cloud;
        match (change.action, spec) {
            (Action::Create, Some(spec)) => {
                observer.phase("creating secret");
                if let Created::Exists { after_retry, .. } = cloud
                    .create_secret(&spec.name, &spec.labels, observer)
                    .await?
                {
                    let live = cloud.get_secret(&spec.name, observer).await?;
                    let ours = live.is_some_and(|l| carries_our_label(&l.labels, &spec.labels));
                    if !(after_retry && ours) {
                        return Err(made_by_someone_else(change));
                    }
                }
            }
            (Action::Update, Some(spec)) => {
                observer.phase("labelling secret");
                cloud
                    .label_secret(&spec.name, &spec.labels, observer)
                    .await?;
            }
            (Action::Delete, _) => {
                observer.phase("deleting secret");
                cloud.delete_secret(&change.name, observer).await?;
            }
            (action, _) => {
                return Err(StepError::Plan(format!(
                    "stackctl never replaces secrets, yet the plan asks to {action:?} {}; re-run `stackctl plan`",
                    change.address
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_declared_labels_are_diffed() {
        let spec = SecretSpec {
            name: "projects/p/secrets/s".into(),
            labels: BTreeMap::from([(OWNER_LABEL.into(), "shop".into())]),
        };
        let mut live = SecretRecord {
            name: "projects/p/secrets/s".into(),
            labels: BTreeMap::from([
                (OWNER_LABEL.into(), "shop".into()),
                ("other".into(), "x".into()),
            ]),
            etag: "\"e\"".into(),
            automatic_replication: true,
        };
        assert_eq!(diff(&spec, &live), vec![]);
        live.labels.remove(OWNER_LABEL);
        assert_eq!(diff(&spec, &live)[0].field, "labels.stackctl-stack");
    }
}

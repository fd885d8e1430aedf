//! `repository`: Artifact Registry Docker repositories with stackctl's two cleanup policies.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    Adoption, ApplyCtx, Converge, Known, Reconcile, StepError, address_from_name, created,
    diff_labels, owned_labels, push_if_differs, quoted, quoted_duration,
};
use crate::config::{RepositoryConfig, Stack};
use crate::model::change::{Action, FieldChange, FieldValue, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::artifacts::{RepositoryRecord, RepositoryWrite};
use crate::provider::run::OperationObserver;
use crate::state::Ledger;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepositorySpec {
    /// `projects/P/locations/L/repositories/ID`
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub keep_recent: Option<u32>,
    pub delete_untagged_after: Option<Duration>,
}

pub fn spec(stack: &Stack, cfg: &RepositoryConfig) -> RepositorySpec {
    RepositorySpec {
        name: format!(
            "projects/{}/locations/{}/repositories/{}",
            stack.settings.project, cfg.location, cfg.id
        ),
        labels: owned_labels(stack, &cfg.labels),
        keep_recent: cfg.keep_recent,
        delete_untagged_after: cfg.delete_untagged_after,
    }
}

pub fn create_fields(spec: &RepositorySpec) -> Vec<FieldChange> {
    let mut out = vec![created("format", quoted("DOCKER"))];
    if let Some(n) = spec.keep_recent {
        out.push(created("keep_recent", n.to_string()));
    }
    if let Some(d) = &spec.delete_untagged_after {
        out.push(created("delete_untagged_after", quoted_duration(d)));
    }
    for (k, v) in &spec.labels {
        out.push(created(&format!("labels.{k}"), quoted(v)));
    }
    out
}

/// Declared fields that differ; an unset cleanup key is "don't care".
pub fn diff(spec: &RepositorySpec, live: &RepositoryRecord) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if live.format != "DOCKER" {
        out.push(
            FieldChange::new(
                "format",
                Some(quoted(&live.format)),
                Some(FieldValue::Known(quoted("DOCKER"))),
            )
            .forcing_replacement(),
        );
    }
    let show_count = |v: &Option<u32>| v.map(|n| n.to_string()).unwrap_or_else(|| "none".into());
    if spec.keep_recent.is_some() {
        push_if_differs(
            &mut out,
            "keep_recent",
            spec.keep_recent,
            live.keep_recent,
            show_count,
        );
    }
    if spec.delete_untagged_after.is_some() {
        push_if_differs(
            &mut out,
            "delete_untagged_after",
            spec.delete_untagged_after,
            live.delete_untagged_after,
            |v| {
                v.as_ref()
                    .map(quoted_duration)
                    .unwrap_or_else(|| "none".into())
            },
        );
    }
    diff_labels(&mut out, "labels", &spec.labels, &live.labels);
    out
}

pub fn to_write(spec: &RepositorySpec) -> RepositoryWrite {
    RepositoryWrite {
        name: spec.name.clone(),
        labels: spec.labels.clone(),
        keep_recent: spec.keep_recent,
        delete_untagged_after: spec.delete_untagged_after,
    }
}

/// `repository`: Artifact Registry repositories, owned by label.
pub struct RepositoryKind;

impl Reconcile for RepositoryKind {
    const KIND: Kind = Kind::Repository;
    const TIER: u8 = 1;
    const APIS: &'static [&'static str] = &["artifactregistry"];
    const ADOPTION: Adoption = Adoption::Labels;
    fn owner_labels(live: &Self::Live) -> Option<&BTreeMap<String, String>> {
        Some(&live.labels)
    }
    fn data_loss(step: &Step, _: Option<&RepositorySpec>) -> Option<String> {
        match step.action {
            Action::Replace => Some(super::replace_loses_data(&step.address)),
            Action::Delete => Some(format!(
                "{} was removed from stack.toml and would be deleted with every image in it; put it back, or pass --allow-data-loss to delete it",
                step.address
            )),
            _ => None,
        }
    }
    fn estimate(
        stack: &Stack,
        prices: &crate::cost::PriceTable,
        address: &ResourceAddr,
    ) -> Option<crate::cost::Estimate> {
        let label = address.to_string();
        stack.repositories.get(&address.name).map(|_| {
            let stored_gb = stack
                .usage
                .repositories
                .get(&address.name)
                .map(|u| u.stored_gb);
            crate::cost::estimate::repository(prices, stored_gb, &label)
        })
    }
    type Spec = RepositorySpec;
    type Live = RepositoryRecord;

    fn declared(stack: &Stack) -> Vec<(ResourceAddr, RepositorySpec)> {
        super::each_declared(Self::KIND, &stack.repositories, |_, cfg| spec(stack, cfg))
    }
    fn spec_name(spec: &RepositorySpec) -> &str {
        &spec.name
    }
    fn live_name(live: &RepositoryRecord) -> &str {
        &live.name
    }
    fn address_of(live: &RepositoryRecord, _: &Ledger) -> ResourceAddr {
        address_from_name(Kind::Repository, &live.name)
    }
    fn create_fields(spec: &RepositorySpec, _: &Known) -> Vec<FieldChange> {
        create_fields(spec)
    }
    fn diff(spec: &RepositorySpec, live: &RepositoryRecord, _: &Known) -> Vec<FieldChange> {
        diff(spec, live)
    }
}

impl Converge for RepositoryKind {
    async fn write_adoption_labels(
        cloud: &crate::provider::Cloud,
        live: &Self::Live,
        labels: &BTreeMap<String, String>,
        _stack: &Stack,
    ) -> Result<(), crate::provider::ApiError> {
        use crate::provider::Silent;
        cloud
            .label_repository(&live.name, labels, &Silent)
            .await
            .map(drop)
    }
    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&RepositorySpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let cloud = &ctx.cloud;
        match (change.action, spec) {
            (Action::Create, Some(spec)) => {
                observer.phase("creating repository");
                cloud.create_repository(&to_write(spec), observer).await?;
            }
            (Action::Update, Some(spec)) => {
                observer.phase("updating repository");
                cloud.update_repository(&to_write(spec), observer).await?;
            }
            (Action::Replace, Some(spec)) => {
                cloud.delete_repository(&change.name, observer).await?;
                cloud.create_repository(&to_write(spec), observer).await?;
            }
            (Action::Delete | Action::Retire, _) => {
                observer.phase("deleting repository");
                cloud.delete_repository(&change.name, observer).await?;
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
    use crate::resources::OWNER_LABEL;

    fn spec() -> RepositorySpec {
        RepositorySpec {
            name: "projects/p/locations/us-central1/repositories/workers".into(),
            labels: BTreeMap::from([(OWNER_LABEL.into(), "s".into())]),
            keep_recent: Some(10),
            delete_untagged_after: Some(Duration::from_secs(14 * 86_400)),
        }
    }

    fn live() -> RepositoryRecord {
        RepositoryRecord {
            name: "projects/p/locations/us-central1/repositories/workers".into(),
            format: "DOCKER".into(),
            labels: BTreeMap::from([(OWNER_LABEL.into(), "s".into())]),
            keep_recent: Some(10),
            delete_untagged_after: Some(Duration::from_secs(1_209_600)),
            policies: vec![
                "delete-untagged".into(),
                "keep-recent".into(),
                "mine".into(),
            ],
        }
    }

    #[test]
    fn converged_repository_with_foreign_policies_does_not_diff() {
        assert_eq!(diff(&spec(), &live()), vec![]);
    }

    #[test]
    fn one_changed_cleanup_key_shows_exactly_it() {
        let mut l = live();
        l.keep_recent = Some(5);
        assert_eq!(
            diff(&spec(), &l),
            vec![FieldChange::new(
                "keep_recent",
                Some("5".into()),
                Some(FieldValue::Known("10".into()))
            )]
        );
    }
}

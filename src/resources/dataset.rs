//! `dataset`: BigQuery datasets — spec, normalized live state, diff, deletion protection.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    Adoption, ApplyCtx, Converge, Known, PlanOptions, Reconcile, Removal, StepError, created,
    diff_labels, owned_labels, push_if_differs, quoted, quoted_duration,
};
use crate::config::{DatasetConfig, Stack};
use crate::model::change::{Action, FieldChange, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::bigquery::{DatasetRecord, DatasetWrite};
use crate::provider::run::OperationObserver;
use crate::state::Ledger;

/// Records `deletion_protection` on the dataset itself, so it still holds once the dataset
/// has left stack.toml.
pub const PROTECTION_LABEL: &str = "stackctl-deletion-protection";

/// The declared state of one dataset, every stackctl default applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSpec {
    /// `projects/P/datasets/D`
    pub name: String,
    pub project: String,
    pub dataset_id: String,
    pub location: String,
    /// Ownership and stack labels (the protection label is kept apart).
    pub labels: BTreeMap<String, String>,
    pub default_partition_expiration: Option<Duration>,
    pub default_table_expiration: Option<Duration>,
    pub deletion_protection: bool,
}

pub fn full_name(project: &str, id: &str) -> String {
    format!("projects/{project}/datasets/{id}")
}

pub fn spec(stack: &Stack, cfg: &DatasetConfig) -> DatasetSpec {
    DatasetSpec {
        name: full_name(&stack.settings.project, &cfg.id),
        project: stack.settings.project.clone(),
        dataset_id: cfg.id.clone(),
        location: cfg.location.clone(),
        labels: owned_labels(stack, &cfg.labels),
        default_partition_expiration: cfg.default_partition_expiration,
        default_table_expiration: cfg.default_table_expiration,
        deletion_protection: cfg.deletion_protection,
    }
}

fn is_protected(live: &DatasetRecord) -> bool {
    live.labels.get(PROTECTION_LABEL).map(String::as_str) != Some("false")
}

pub fn create_fields(spec: &DatasetSpec) -> Vec<FieldChange> {
    let mut out = vec![created("location", quoted(&spec.location))];
    if let Some(d) = &spec.default_partition_expiration {
        out.push(created("default_partition_expiration", quoted_duration(d)));
    }
    if let Some(d) = &spec.default_table_expiration {
        out.push(created("default_table_expiration", quoted_duration(d)));
    }
    out.push(created(
        "deletion_protection",
        spec.deletion_protection.to_string(),
    ));
    for (k, v) in &spec.labels {
        out.push(created(&format!("labels.{k}"), quoted(v)));
    }
    out
}

/// Declared fields that differ. Locations compare case-insensitively (`US` = `us`).
pub fn diff(spec: &DatasetSpec, live: &DatasetRecord) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if !spec.location.eq_ignore_ascii_case(&live.location) {
        out.push(
            FieldChange::new(
                "location",
                Some(quoted(&live.location)),
                Some(crate::model::change::FieldValue::Known(quoted(
                    &spec.location,
                ))),
            )
            .forcing_replacement(),
        );
    }
    let show = |v: &Option<Duration>| {
        v.as_ref()
            .map(quoted_duration)
            .unwrap_or_else(|| "none".into())
    };
    if spec.default_partition_expiration.is_some() {
        push_if_differs(
            &mut out,
            "default_partition_expiration",
            spec.default_partition_expiration,
            live.default_partition_expiration,
            show,
        );
    }
    if spec.default_table_expiration.is_some() {
        push_if_differs(
            &mut out,
            "default_table_expiration",
            spec.default_table_expiration,
            live.default_table_expiration,
            show,
        );
    }
    push_if_differs(
        &mut out,
        "deletion_protection",
        spec.deletion_protection,
        is_protected(live),
        |v| v.to_string(),
    );
    diff_labels(&mut out, "labels", &spec.labels, &live.labels);
    out
}

pub fn to_write(spec: &DatasetSpec) -> DatasetWrite {
    let mut labels = spec.labels.clone();
    labels.insert(
        PROTECTION_LABEL.to_string(),
        spec.deletion_protection.to_string(),
    );
    DatasetWrite {
        project: spec.project.clone(),
        dataset_id: spec.dataset_id.clone(),
        location: spec.location.clone(),
        labels,
        default_partition_expiration: spec.default_partition_expiration,
        default_table_expiration: spec.default_table_expiration,
    }
}

/// `dataset`: BigQuery datasets, owned by label.
pub struct DatasetKind;

impl Reconcile for DatasetKind {
    const KIND: Kind = Kind::Dataset;
    const TIER: u8 = 1;
    const APIS: &'static [&'static str] = &["bigquery"];
    const ADOPTION: Adoption = Adoption::Labels;
    fn owner_labels(live: &Self::Live) -> Option<&BTreeMap<String, String>> {
        Some(&live.labels)
    }
    fn data_loss(step: &Step, _: Option<&DatasetSpec>) -> Option<String> {
        match step.action {
            Action::Replace => Some(super::replace_loses_data(&step.address)),
            Action::Delete => Some(format!(
                "{} was removed from stack.toml and would be deleted; copy its tables first if you need them, or put it back; --allow-data-loss deletes it",
                step.address
            )),
            _ => None,
        }
    }
    type Spec = DatasetSpec;
    type Live = DatasetRecord;

    fn declared(stack: &Stack) -> Vec<(ResourceAddr, DatasetSpec)> {
        super::each_declared(Self::KIND, &stack.datasets, |_, cfg| spec(stack, cfg))
    }
    fn spec_name(spec: &DatasetSpec) -> &str {
        &spec.name
    }
    fn live_name(live: &DatasetRecord) -> &str {
        &live.name
    }
    fn address_of(live: &DatasetRecord, _: &Ledger) -> ResourceAddr {
        ResourceAddr::new(Kind::Dataset, &live.dataset_id)
    }
    fn fingerprint(live: &DatasetRecord) -> String {
        live.etag.clone()
    }
    fn create_fields(spec: &DatasetSpec, _: &Known) -> Vec<FieldChange> {
        create_fields(spec)
    }
    fn diff(spec: &DatasetSpec, live: &DatasetRecord, _: &Known) -> Vec<FieldChange> {
        diff(spec, live)
    }
    fn change_notes(fields: &[FieldChange]) -> Vec<String> {
        fields
            .iter()
            .filter(|f| f.field.starts_with("default_"))
            .map(|f| {
                format!(
                    "{} applies only to tables created from now on; existing tables keep theirs",
                    f.field
                )
            })
            .collect()
    }
    fn removal(live: &DatasetRecord, _: &Ledger, _: PlanOptions) -> Removal {
        if is_protected(live) {
            return Removal::Refuse(format!(
                "dataset.{id}: {name} was removed from stack.toml but has deletion_protection = true; to delete it, put it back with deletion_protection = false and apply, then remove it and apply with --allow-data-loss",
                id = live.dataset_id,
                name = live.name
            ));
        }
        Removal::Delete {
            notes: vec!["deletes the dataset; it must be empty (its tables are deleted first only if this stack owns them)".into()],
        }
    }
}

impl Converge for DatasetKind {
    async fn write_adoption_labels(
        cloud: &crate::provider::Cloud,
        live: &Self::Live,
        labels: &BTreeMap<String, String>,
        _stack: &Stack,
    ) -> Result<(), crate::provider::ApiError> {
        use crate::provider::Silent;
        cloud
            .label_dataset(&live.dataset_id, labels, &live.etag, &Silent)
            .await
            .map(drop)
    }
    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&DatasetSpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let cloud = &ctx.cloud;
        let id = change.name.rsplit('/').next().unwrap_or_default();
        match (change.action, spec) {
            (Action::Create, Some(spec)) => {
                observer.phase("creating dataset");
                cloud.insert_dataset(&to_write(spec), observer).await?;
            }
            (Action::Update, Some(spec)) => {
                observer.phase("patching dataset");
                let write = to_write(spec);
                let etag = change.fingerprint.clone().unwrap_or_default();
                match cloud.patch_dataset(&write, &etag, observer).await {
                    Err(e) if e.is_precondition_failed() => {
                        // Changed since it was read: re-read, and write the declared state onto it.
                        observer.phase("dataset changed since read (412): re-reading");
                        let fresh = cloud.get_dataset(id, observer).await?.ok_or(e)?;
                        cloud.patch_dataset(&write, &fresh.etag, observer).await?;
                    }
                    other => {
                        other?;
                    }
                }
            }
            (Action::Replace, Some(spec)) => {
                observer.phase("deleting dataset (replace)");
                cloud.delete_dataset(id, observer).await?;
                observer.phase("creating dataset (replace)");
                cloud.insert_dataset(&to_write(spec), observer).await?;
            }
            (Action::Delete | Action::Retire, _) => {
                observer.phase("deleting dataset");
                cloud.delete_dataset(id, observer).await?;
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

    fn spec() -> DatasetSpec {
        DatasetSpec {
            name: "projects/p/datasets/shopify".into(),
            project: "p".into(),
            dataset_id: "shopify".into(),
            location: "US".into(),
            labels: BTreeMap::from([(OWNER_LABEL.into(), "s".into())]),
            default_partition_expiration: Some(Duration::from_secs(730 * 86_400)),
            default_table_expiration: None,
            deletion_protection: true,
        }
    }

    fn live() -> DatasetRecord {
        DatasetRecord {
            name: "projects/p/datasets/shopify".into(),
            project: "p".into(),
            dataset_id: "shopify".into(),
            location: "us".into(),
            labels: BTreeMap::from([
                (OWNER_LABEL.into(), "s".into()),
                (PROTECTION_LABEL.into(), "true".into()),
                ("other".into(), "x".into()),
            ]),
            default_partition_expiration: Some(Duration::from_secs(730 * 86_400)),
            default_table_expiration: Some(Duration::from_secs(3600)),
            etag: "e".into(),
        }
    }

    #[test]
    fn server_forms_foreign_labels_and_undeclared_expirations_do_not_diff() {
        assert_eq!(diff(&spec(), &live()), vec![]);
    }

    #[test]
    fn a_partition_expiration_change_is_in_place_with_a_note() {
        let mut s = spec();
        s.default_partition_expiration = Some(Duration::from_secs(365 * 86_400));
        let fields = diff(&s, &live());
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].field, "default_partition_expiration");
        assert!(!fields[0].forces_replacement);
        assert!(
            DatasetKind::change_notes(&fields)[0].contains("only to tables created from now on")
        );
    }

    #[test]
    fn a_location_change_forces_replacement() {
        let mut s = spec();
        s.location = "EU".into();
        let fields = diff(&s, &live());
        assert!(fields[0].forces_replacement, "{fields:?}");
    }

    #[test]
    fn a_protected_dataset_is_never_deleted() {
        let removal = DatasetKind::removal(&live(), &Ledger::empty("s"), PlanOptions::default());
        assert!(
            matches!(&removal, Removal::Refuse(why) if why.contains("deletion_protection = false")),
            "{removal:?}"
        );
        let mut l = live();
        l.labels.insert(PROTECTION_LABEL.into(), "false".into());
        assert!(matches!(
            DatasetKind::removal(&l, &Ledger::empty("s"), PlanOptions::default()),
            Removal::Delete { .. }
        ));
    }
}

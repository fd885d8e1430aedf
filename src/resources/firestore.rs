//! `firestore`: Firestore databases — location and mode (fixed at creation), delete protection,
//! point-in-time recovery and the TTL policies of collection groups. Owned through the ledger
//! (databases carry no labels); never deleted while protected, nor without `--allow-data-loss`.

use serde::{Deserialize, Serialize};

use super::{
    Adoption, ApplyCtx, Converge, Known, PlanOptions, Reconcile, Removal, StepError,
    address_from_name, created, ledger_address, push_if_differs, quoted,
};
use crate::config::{FirestoreConfig, Stack, TtlField};
use crate::model::change::{Action, FieldChange, FieldValue, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::firestore::{FirestoreRecord, FirestoreWrite};
use crate::provider::run::OperationObserver;
use crate::state::{Ledger, LedgerStatus};

/// The declared state of one database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirestoreSpec {
    /// `projects/P/databases/ID`
    pub name: String,
    pub location: String,
    /// `FIRESTORE_NATIVE` or `DATASTORE_MODE`.
    pub database_type: String,
    pub deletion_protection: bool,
    pub point_in_time_recovery: bool,
    /// Sorted.
    pub ttl: Vec<TtlField>,
}

pub fn full_name(stack: &Stack, id: &str) -> String {
    format!("projects/{}/databases/{id}", stack.settings.project)
}

pub fn spec(stack: &Stack, cfg: &FirestoreConfig) -> FirestoreSpec {
    FirestoreSpec {
        name: full_name(stack, &cfg.id),
        location: cfg.location.clone(),
        database_type: cfg.mode.api_name().to_string(),
        deletion_protection: cfg.deletion_protection,
        point_in_time_recovery: cfg.point_in_time_recovery,
        ttl: cfg.ttl.clone(),
    }
}

/// How plans name a TTL policy: `ttl.GROUP.FIELD`.
fn ttl_field(ttl: &TtlField) -> String {
    format!("ttl.{ttl}")
}

/// A field of a TTL policy change: the policy's name, or `None` for another field.
fn ttl_of(field: &str) -> Option<TtlField> {
    let (group, name) = field.strip_prefix("ttl.")?.split_once('.')?;
    Some(TtlField {
        collection_group: group.to_string(),
        field: name.to_string(),
    })
}

const TTL_SET: &str = "\"expires documents\"";

pub fn create_fields(spec: &FirestoreSpec) -> Vec<FieldChange> {
    let mut out = vec![
        created("location", quoted(&spec.location)),
        created("type", quoted(&spec.database_type)),
        created("deletion_protection", spec.deletion_protection.to_string()),
        created(
            "point_in_time_recovery",
            spec.point_in_time_recovery.to_string(),
        ),
    ];
    out.extend(
        spec.ttl
            .iter()
            .map(|t| created(&ttl_field(t), TTL_SET.into())),
    );
    out
}

/// Declared fields that differ; a location or type change forces replacement. TTL policies are
/// authoritative on an owned database: one that is not declared is removed.
pub fn diff(spec: &FirestoreSpec, live: &FirestoreRecord) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (field, desired, actual) in [
        ("location", &spec.location, &live.location),
        ("type", &spec.database_type, &live.database_type),
    ] {
        if !desired.eq_ignore_ascii_case(actual) {
            out.push(
                FieldChange::new(
                    field,
                    Some(quoted(actual)),
                    Some(FieldValue::Known(quoted(desired))),
                )
                .forcing_replacement(),
            );
        }
    }
    push_if_differs(
        &mut out,
        "deletion_protection",
        spec.deletion_protection,
        live.delete_protection,
        |v| v.to_string(),
    );
    push_if_differs(
        &mut out,
        "point_in_time_recovery",
        spec.point_in_time_recovery,
        live.point_in_time_recovery,
        |v| v.to_string(),
    );
    for ttl in spec.ttl.iter().filter(|t| !live.ttl.contains(t)) {
        out.push(created(&ttl_field(ttl), TTL_SET.into()));
    }
    for ttl in live.ttl.iter().filter(|t| !spec.ttl.contains(t)) {
        out.push(FieldChange::new(ttl_field(ttl), Some(TTL_SET.into()), None));
    }
    out
}

fn to_write(spec: &FirestoreSpec) -> FirestoreWrite {
    FirestoreWrite {
        name: spec.name.clone(),
        location: spec.location.clone(),
        database_type: spec.database_type.clone(),
        delete_protection: spec.deletion_protection,
        point_in_time_recovery: spec.point_in_time_recovery,
    }
}

/// `firestore`: Firestore databases, owned through the ledger.
pub struct FirestoreKind;

impl Reconcile for FirestoreKind {
    const KIND: Kind = Kind::Firestore;
    const TIER: u8 = 1;
    const APIS: &'static [&'static str] = &["firestore"];
    const ADOPTION: Adoption = Adoption::Ledger;
    type Spec = FirestoreSpec;
    type Live = FirestoreRecord;

    fn declared(stack: &Stack) -> Vec<(ResourceAddr, FirestoreSpec)> {
        super::each_declared(Self::KIND, &stack.firestores, |_, cfg| spec(stack, cfg))
    }
    fn spec_name(spec: &FirestoreSpec) -> &str {
        &spec.name
    }
    fn live_name(live: &FirestoreRecord) -> &str {
        &live.name
    }
    fn address_of(live: &FirestoreRecord, ledger: &Ledger) -> ResourceAddr {
        ledger_address(ledger, &live.name, || {
            address_from_name(Kind::Firestore, &live.name)
        })
    }
    fn create_fields(spec: &FirestoreSpec, _: &Known) -> Vec<FieldChange> {
        create_fields(spec)
    }
    fn diff(spec: &FirestoreSpec, live: &FirestoreRecord, _: &Known) -> Vec<FieldChange> {
        diff(spec, live)
    }
    fn estimate(
        stack: &Stack,
        prices: &crate::cost::PriceTable,
        address: &ResourceAddr,
    ) -> Option<crate::cost::Estimate> {
        stack.firestores.get(&address.name)?;
        Some(crate::cost::estimate::firestore(
            prices,
            stack.usage.firestores.get(&address.name),
            &address.to_string(),
        ))
    }
    /// TTL policies are set after the database exists: a create stopped before them is still
    /// this stack's, and the claim sets them.
    fn written_by_create(field: &str) -> bool {
        ttl_of(field).is_none()
    }
    fn change_notes(fields: &[FieldChange]) -> Vec<String> {
        if fields.iter().any(|f| ttl_of(&f.field).is_some()) {
            vec!["Firestore deletes expired documents within about 24 hours of their expiry time; TTL deletes are billed as deletes".into()]
        } else {
            vec![]
        }
    }
    fn data_loss(step: &Step, _: Option<&FirestoreSpec>) -> Option<String> {
        match step.action {
            Action::Replace => Some(super::replace_loses_data(&step.address)),
            Action::Delete => Some(format!(
                "{} was removed from stack.toml and would be deleted with every document in it; export it first (`gcloud firestore export`) if you need them, or put it back; --allow-data-loss deletes it",
                step.address
            )),
            _ => None,
        }
    }
    fn removal(live: &FirestoreRecord, _: &Ledger, _: PlanOptions) -> Removal {
        if live.delete_protection {
            return Removal::Refuse(format!(
                "{}: {} was removed from stack.toml but has delete protection enabled; to delete it, put it back with deletion_protection = false and apply, then remove it and apply with --allow-data-loss",
                address_from_name(Kind::Firestore, &live.name),
                live.name
            ));
        }
        Removal::Delete {
            notes: vec!["deletes the database and every document in it".into()],
        }
    }
}

impl Converge for FirestoreKind {
    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&FirestoreSpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let cloud = &ctx.cloud;
        match (change.action, spec) {
            (Action::Create, Some(spec)) => {
                // Pending first: a crash after the create leaves a claim plan can check.
                ctx.record_in_ledger(change, LedgerStatus::Pending).await?;
                observer.phase("creating database");
                let created = cloud
                    .create_firestore_database(&to_write(spec), observer)
                    .await?;
                ctx.settle_ledgered(change, created, async || {
                    let live = cloud.get_firestore_database(&spec.name, observer).await?;
                    Ok(live.is_some_and(|l| {
                        diff(spec, &l)
                            .iter()
                            .all(|f| ttl_of(&f.field).is_some() && f.after.is_some())
                    }))
                })
                .await?;
                for ttl in &spec.ttl {
                    observer.phase(&format!("setting the TTL policy on {ttl}"));
                    cloud
                        .set_firestore_ttl(&spec.name, ttl, true, observer)
                        .await?;
                }
            }
            (Action::Update, Some(spec)) => {
                if change.fields.iter().any(|f| {
                    f.field == "deletion_protection" || f.field == "point_in_time_recovery"
                }) {
                    observer.phase("updating database");
                    cloud
                        .update_firestore_database(&to_write(spec), observer)
                        .await?;
                }
                for field in &change.fields {
                    if let Some(ttl) = ttl_of(&field.field) {
                        let enabled = field.after.is_some();
                        observer.phase(&format!(
                            "{} the TTL policy on {ttl}",
                            if enabled { "setting" } else { "removing" }
                        ));
                        cloud
                            .set_firestore_ttl(&spec.name, &ttl, enabled, observer)
                            .await?;
                    }
                }
                // A claimed interrupted create becomes active (a no-op write otherwise).
                ctx.record_in_ledger(change, LedgerStatus::Active).await?;
            }
            (Action::Replace, Some(spec)) => {
                observer.phase("deleting database (replace)");
                cloud
                    .delete_firestore_database(&change.name, observer)
                    .await?;
                observer.phase("creating database (replace)");
                cloud
                    .create_firestore_database(&to_write(spec), observer)
                    .await?;
                for ttl in &spec.ttl {
                    cloud
                        .set_firestore_ttl(&spec.name, ttl, true, observer)
                        .await?;
                }
                ctx.record_in_ledger(change, LedgerStatus::Active).await?;
            }
            (Action::Delete | Action::Retire, _) => {
                observer.phase("deleting database");
                cloud
                    .delete_firestore_database(&change.name, observer)
                    .await?;
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

    fn ttl(group: &str) -> TtlField {
        TtlField {
            collection_group: group.into(),
            field: "expire_at".into(),
        }
    }

    fn spec() -> FirestoreSpec {
        FirestoreSpec {
            name: "projects/p/databases/(default)".into(),
            location: "nam5".into(),
            database_type: "FIRESTORE_NATIVE".into(),
            deletion_protection: true,
            point_in_time_recovery: false,
            ttl: vec![ttl("webhook_deliveries")],
        }
    }

    fn live() -> FirestoreRecord {
        FirestoreRecord {
            name: "projects/p/databases/(default)".into(),
            location: "nam5".into(),
            database_type: "FIRESTORE_NATIVE".into(),
            delete_protection: true,
            point_in_time_recovery: false,
            free_tier: true,
            etag: "e".into(),
            ttl: vec![ttl("webhook_deliveries")],
        }
    }

    #[test]
    fn ttl_policies_are_not_part_of_what_an_interrupted_create_must_match() {
        assert!(!FirestoreKind::written_by_create(
            "ttl.deliveries.expire_at"
        ));
        assert!(FirestoreKind::written_by_create("location"));
        assert!(FirestoreKind::written_by_create("deletion_protection"));
    }

    #[test]
    fn a_matching_database_has_no_diff() {
        assert_eq!(diff(&spec(), &live()), vec![]);
    }

    #[test]
    fn ttl_policies_are_added_and_removed_field_by_field() {
        let mut l = live();
        l.ttl = vec![ttl("old_bodies")];
        let fields = diff(&spec(), &l);
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            names,
            [
                "ttl.webhook_deliveries.expire_at",
                "ttl.old_bodies.expire_at"
            ]
        );
        assert!(fields[0].after.is_some() && fields[1].after.is_none());
        assert_eq!(ttl_of(&fields[1].field), Some(ttl("old_bodies")));
        assert!(!fields.iter().any(|f| f.forces_replacement));
    }

    #[test]
    fn a_location_change_forces_replacement_and_loses_data() {
        let mut s = spec();
        s.location = "eur3".into();
        let fields = diff(&s, &live());
        assert!(fields[0].forces_replacement, "{fields:?}");
    }

    #[test]
    fn a_protected_database_is_never_deleted() {
        let removal = FirestoreKind::removal(&live(), &Ledger::empty("s"), PlanOptions::default());
        assert!(
            matches!(&removal, Removal::Refuse(why) if why.contains("deletion_protection = false")),
            "{removal:?}"
        );
        let mut l = live();
        l.delete_protection = false;
        assert!(matches!(
            FirestoreKind::removal(&l, &Ledger::empty("s"), PlanOptions::default()),
            Removal::Delete { .. }
        ));
    }
}

//! `budget`: Billing budgets on the stack's project. Ids are server-assigned and budgets have no
//! labels, so ownership goes through the ledger; the display name `sc:<stack>:<name>` finds them.

use serde::{Deserialize, Serialize};

use super::channel::{applied_channel_names, planned_channel_names};
use super::{
    Adoption, ApplyCtx, Converge, Known, Ownership, Reconcile, StepError, created, ledger_address,
    ledger_ownership, quoted, quoted_list,
};
use crate::config::{BudgetConfig, Stack};
use crate::model::change::{Action, FieldChange, FieldValue, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::Silent;
use crate::provider::budgets::{BudgetRecord, BudgetWrite, MoneyAmount};
use crate::provider::run::OperationObserver;
use crate::state::{Ledger, LedgerStatus};

const NANOS_PER_UNIT: f64 = 1e9;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetSpec {
    pub billing_account: String,
    /// `sc:<stack>:<name>`: what finds the live budget.
    pub display_name: String,
    pub placeholder: String,
    pub amount: MoneyAmount,
    /// Sorted.
    pub thresholds: Vec<f64>,
    /// Sorted; rules on forecasted spend.
    #[serde(default)]
    pub forecast_thresholds: Vec<f64>,
    pub notify: Vec<ResourceAddr>,
}

/// US dollars as `google.type.Money` (whole units and nanos), exact to the nano.
pub fn usd(amount: f64) -> MoneyAmount {
    let units = amount.trunc();
    let nanos = ((amount - units) * NANOS_PER_UNIT).round();
    let (units, nanos) = if nanos >= NANOS_PER_UNIT {
        (units + 1.0, 0.0)
    } else {
        (units, nanos)
    };
    MoneyAmount {
        currency: "USD".into(),
        units: units as i64,
        nanos: nanos as i32,
    }
}

/// `300`, `299.99`: the amount as stack.toml writes it.
pub fn show_amount(m: &MoneyAmount) -> String {
    let value = m.units as f64 + f64::from(m.nanos) / NANOS_PER_UNIT;
    let text = format!("{value}");
    if m.currency == "USD" || m.currency.is_empty() {
        text
    } else {
        format!("{text} {}", m.currency)
    }
}

fn same_amount(a: &MoneyAmount, b: &MoneyAmount) -> bool {
    let currency = |c: &str| {
        if c.is_empty() {
            "USD".to_string()
        } else {
            c.to_string()
        }
    };
    a.units == b.units && a.nanos == b.nanos && currency(&a.currency) == currency(&b.currency)
}

/// Thresholds as a sorted set of millionths: the API stores doubles, so `0.9000000000000001` is
/// `0.9`.
pub fn millionths(thresholds: &[f64]) -> Vec<i64> {
    let mut v: Vec<i64> = thresholds
        .iter()
        .map(|t| (t * 1e6).round() as i64)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Thresholds compare as sets, to a millionth.
pub fn same_thresholds(a: &[f64], b: &[f64]) -> bool {
    millionths(a) == millionths(b)
}

fn show_thresholds(v: &[f64]) -> String {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    format!(
        "[{}]",
        v.iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The ledger key of a budget being created: its id is the server's, so the pending entry is
/// keyed by the display name stackctl gives it.
pub fn pending_key(billing_account: &str, display_name: &str) -> String {
    format!("billingAccounts/{billing_account}/budgets/(pending {display_name})")
}

/// `sc:<stack>:<name>`: the display name that finds the budget `[budget.<name>]` of a stack.
pub fn display_name(stack: &str, name: &str) -> String {
    format!("sc:{stack}:{name}")
}

pub fn spec(stack: &Stack, name: &str, cfg: &BudgetConfig) -> BudgetSpec {
    let mut thresholds = cfg.thresholds.clone();
    thresholds.sort_by(f64::total_cmp);
    let mut forecast_thresholds = cfg.forecast_thresholds.clone();
    forecast_thresholds.sort_by(f64::total_cmp);
    let account = stack.settings.billing_account.clone().unwrap_or_default();
    BudgetSpec {
        placeholder: format!("billingAccounts/{account}/budgets/(assigned on create)"),
        billing_account: account,
        display_name: display_name(&stack.settings.name, name),
        amount: usd(cfg.amount_usd),
        thresholds,
        forecast_thresholds,
        notify: cfg.notify.clone(),
    }
}

pub fn create_fields(spec: &BudgetSpec, known: &Known) -> Vec<FieldChange> {
    let mut out = vec![
        created("display_name", quoted(&spec.display_name)),
        created("amount_usd", show_amount(&spec.amount)),
        created("thresholds", show_thresholds(&spec.thresholds)),
    ];
    if !spec.forecast_thresholds.is_empty() {
        out.push(created(
            "forecast_thresholds",
            show_thresholds(&spec.forecast_thresholds),
        ));
    }
    out.push(FieldChange::new(
        "project",
        None,
        Some(match &known.project_number {
            Some(p) => FieldValue::Known(quoted(p)),
            None => FieldValue::KnownAfterApply,
        }),
    ));
    if !spec.notify.is_empty() {
        out.push(FieldChange::new(
            "notify",
            None,
            Some(match planned_channel_names(&spec.notify, known) {
                Some(names) => FieldValue::Known(quoted_list(&names)),
                None => FieldValue::KnownAfterApply,
            }),
        ));
    }
    out
}

pub fn diff(spec: &BudgetSpec, live: &BudgetRecord, known: &Known) -> Vec<FieldChange> {
    let mut out = Vec::new();
    match &live.amount {
        Some(a) if same_amount(a, &spec.amount) => {}
        other => out.push(FieldChange::new(
            "amount_usd",
            Some(
                other
                    .as_ref()
                    .map(show_amount)
                    .unwrap_or_else(|| "last period's spend".into()),
            ),
            Some(FieldValue::Known(show_amount(&spec.amount))),
        )),
    }
    if !same_thresholds(&spec.thresholds, &live.thresholds) {
        out.push(FieldChange::new(
            "thresholds",
            Some(show_thresholds(&live.thresholds)),
            Some(FieldValue::Known(show_thresholds(&spec.thresholds))),
        ));
    }
    if !same_thresholds(&spec.forecast_thresholds, &live.forecast_thresholds) {
        out.push(FieldChange::new(
            "forecast_thresholds",
            Some(show_thresholds(&live.forecast_thresholds)),
            Some(FieldValue::Known(show_thresholds(
                &spec.forecast_thresholds,
            ))),
        ));
    }
    if let Some(p) = &known.project_number
        && live.projects != [p.clone()]
    {
        out.push(FieldChange::new(
            "project",
            Some(quoted_list(&live.projects)),
            Some(FieldValue::Known(quoted(p))),
        ));
    }
    let mut live_channels = live.channels.clone();
    live_channels.sort();
    match planned_channel_names(&spec.notify, known) {
        Some(mut names) => {
            names.sort();
            if names != live_channels {
                out.push(FieldChange::new(
                    "notify",
                    Some(quoted_list(&live_channels)),
                    Some(FieldValue::Known(quoted_list(&names))),
                ));
            }
        }
        None => out.push(FieldChange::new(
            "notify",
            Some(quoted_list(&live_channels)),
            Some(FieldValue::KnownAfterApply),
        )),
    }
    out
}

/// `budget`: Billing budgets, owned through the ledger.
pub struct BudgetKind;

impl Reconcile for BudgetKind {
    const KIND: Kind = Kind::Budget;
    const TIER: u8 = 3;
    const APIS: &'static [&'static str] = &["billingbudgets"];
    const ADOPTION: Adoption = Adoption::Ledger;
    type Spec = BudgetSpec;
    type Live = BudgetRecord;

    fn declared(stack: &Stack) -> Vec<(ResourceAddr, BudgetSpec)> {
        super::each_declared(Self::KIND, &stack.budgets, |name, cfg| {
            spec(stack, name, cfg)
        })
    }
    fn spec_name(spec: &BudgetSpec) -> &str {
        &spec.placeholder
    }
    fn live_name(live: &BudgetRecord) -> &str {
        &live.name
    }
    fn spec_key(spec: &BudgetSpec) -> String {
        spec.display_name.clone()
    }
    fn live_key(live: &BudgetRecord) -> String {
        live.display_name.clone()
    }
    fn ownership(live: &BudgetRecord, _: &str, ledger: &Ledger) -> Ownership {
        if ledger.entry(&live.name).is_some() {
            return ledger_ownership(ledger, &live.name);
        }
        let account = live
            .name
            .strip_prefix("billingAccounts/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default();
        ledger_ownership(ledger, &pending_key(account, &live.display_name))
    }
    fn spec_display_name(spec: &BudgetSpec) -> Option<&str> {
        Some(&spec.display_name)
    }
    fn live_display_name(live: &BudgetRecord) -> Option<&str> {
        Some(&live.display_name)
    }
    /// A billing account's budgets span projects: only one filtered to exactly this project.
    fn adoptable(live: &BudgetRecord, observed: &super::Observed) -> bool {
        observed
            .project_number
            .as_ref()
            .is_some_and(|project| live.projects == [project.clone()])
    }
    fn address_of(live: &BudgetRecord, ledger: &Ledger) -> ResourceAddr {
        ledger_address(ledger, &live.name, || {
            ResourceAddr::new(
                Kind::Budget,
                live.display_name.rsplit(':').next().unwrap_or_default(),
            )
        })
    }
    fn depends_on(spec: &BudgetSpec) -> Vec<ResourceAddr> {
        spec.notify.clone()
    }
    fn create_fields(spec: &BudgetSpec, known: &Known) -> Vec<FieldChange> {
        create_fields(spec, known)
    }
    fn diff(spec: &BudgetSpec, live: &BudgetRecord, known: &Known) -> Vec<FieldChange> {
        diff(spec, live, known)
    }
    fn unowned_hint(address: &ResourceAddr, name: &str) -> String {
        format!(
            "{address}: the budget {name} is named like this stack's but is not in its ledger; if it is yours, run `stackctl adopt {address}`, or rename {address} in stack.toml"
        )
    }
}

impl Converge for BudgetKind {
    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&BudgetSpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let cloud = &ctx.cloud;
        let write = |spec: &BudgetSpec, project: String, channels: Vec<String>| BudgetWrite {
            display_name: spec.display_name.clone(),
            project,
            amount: spec.amount.clone(),
            thresholds: spec.thresholds.clone(),
            forecast_thresholds: spec.forecast_thresholds.clone(),
            channels,
        };
        match (change.action, spec) {
            (Action::Create, Some(spec)) => {
                let channels = applied_channel_names(ctx, &spec.notify).await?;
                observer.phase("looking up the project number");
                let project = cloud.project_number(&Silent).await?;
                observer.phase("creating budget");
                // Pending first (under a key of its own: the id is the server's), so a crash
                // after the create leaves a claim plan can check.
                let pending = Step {
                    name: pending_key(&spec.billing_account, &spec.display_name),
                    ..change.clone()
                };
                ctx.record_in_ledger(&pending, LedgerStatus::Pending)
                    .await?;
                let made = cloud
                    .create_budget(
                        &spec.billing_account,
                        &write(spec, project, channels),
                        observer,
                    )
                    .await?;
                // The id is the server's: record it the moment it exists.
                let recorded = Step {
                    name: made.name,
                    ..change.clone()
                };
                ctx.record_in_ledger(&recorded, LedgerStatus::Active)
                    .await?;
                ctx.forget_in_ledger(&pending).await?;
            }
            (Action::Update | Action::Replace, Some(spec)) => {
                let channels = applied_channel_names(ctx, &spec.notify).await?;
                let project = cloud.project_number(&Silent).await?;
                observer.phase("updating budget");
                cloud
                    .update_budget(&change.name, &write(spec, project, channels), observer)
                    .await?;
                ctx.record_in_ledger(change, LedgerStatus::Active).await?;
                // A budget claimed after an interrupted create: its pending entry is done.
                let pending = Step {
                    name: pending_key(&spec.billing_account, &spec.display_name),
                    ..change.clone()
                };
                ctx.forget_in_ledger(&pending).await?;
            }
            (Action::Delete | Action::Retire, _) => {
                observer.phase("deleting budget");
                cloud.delete_budget(&change.name, observer).await?;
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
    use std::collections::BTreeMap;

    fn known() -> Known {
        Known {
            names: BTreeMap::from([(
                "channel.oncall".parse().unwrap(),
                Some("projects/p/notificationChannels/7".to_string()),
            )]),
            project_number: Some("projects/123".into()),
            ..Known::default()
        }
    }

    fn spec() -> BudgetSpec {
        BudgetSpec {
            billing_account: "012345-6789AB-CDEF01".into(),
            display_name: "sc:s:monthly".into(),
            placeholder: "x".into(),
            amount: usd(300.0),
            thresholds: vec![0.5, 0.9, 1.0],
            forecast_thresholds: vec![],
            notify: vec!["channel.oncall".parse().unwrap()],
        }
    }

    fn live() -> BudgetRecord {
        BudgetRecord {
            name: "billingAccounts/012345-6789AB-CDEF01/budgets/abc".into(),
            display_name: "sc:s:monthly".into(),
            projects: vec!["projects/123".into()],
            amount: Some(MoneyAmount {
                currency: "USD".into(),
                units: 300,
                nanos: 0,
            }),
            thresholds: vec![1.0, 0.5, 0.9000000000000001],
            forecast_thresholds: vec![],
            channels: vec!["projects/p/notificationChannels/7".into()],
            etag: "e".into(),
        }
    }

    #[test]
    fn amounts_convert_to_units_and_nanos_exactly() {
        assert_eq!(
            usd(300.0),
            MoneyAmount {
                currency: "USD".into(),
                units: 300,
                nanos: 0
            }
        );
        assert_eq!(
            usd(299.99),
            MoneyAmount {
                currency: "USD".into(),
                units: 299,
                nanos: 990_000_000
            }
        );
        assert_eq!(usd(0.5).nanos, 500_000_000);
        assert_eq!(show_amount(&usd(299.99)), "299.99");
    }

    #[test]
    fn thresholds_compare_as_sets_and_server_forms_do_not_diff() {
        assert!(same_thresholds(&[0.5, 0.9, 1.0], &[1.0, 0.9, 0.5]));
        assert!(!same_thresholds(&[0.5, 0.9], &[0.5, 0.9, 1.0]));
        assert_eq!(diff(&spec(), &live(), &known()), vec![]);
    }

    #[test]
    fn a_forecast_threshold_is_its_own_field_and_not_a_current_spend_one() {
        let mut forecast = spec();
        forecast.forecast_thresholds = vec![1.0];
        let fields = diff(&forecast, &live(), &known());
        assert_eq!(fields.len(), 1, "{fields:?}");
        assert_eq!(fields[0].field, "forecast_thresholds");
        assert_eq!(fields[0].before.as_deref(), Some("[]"));
        let mut applied = live();
        applied.forecast_thresholds = vec![1.0];
        assert_eq!(diff(&forecast, &applied, &known()), vec![]);
    }

    #[test]
    fn one_changed_field_shows_exactly_it() {
        let mut l = live();
        l.amount = Some(MoneyAmount {
            currency: "USD".into(),
            units: 250,
            nanos: 500_000_000,
        });
        let f = diff(&spec(), &l, &known());
        assert_eq!(
            f,
            vec![FieldChange::new(
                "amount_usd",
                Some("250.5".into()),
                Some(FieldValue::Known("300".into()))
            )]
        );
    }

    #[test]
    fn the_project_filter_is_the_project_number() {
        let mut l = live();
        l.projects = vec!["projects/acme-shop".into()];
        assert_eq!(diff(&spec(), &l, &known())[0].field, "project");
    }
}

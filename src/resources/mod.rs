//! Resource kinds: each kind's desired spec (from stack.toml), how live state is normalized into
//! its vocabulary, the field diff, ownership, and the provider calls that converge it.
//!
//! A kind plugs in by implementing [`Reconcile`] (pure: planning, cost, data loss, dependency
//! tier, the APIs it needs) and [`Converge`] (async: apply, adoption) in `resources/<kind>.rs`,
//! and by one line in [`registry`], from which `Desired`, `Observed` and every dispatch over kinds
//! are derived.

pub mod adopt;
pub mod alert;
pub mod api;
pub mod api_key;
pub mod budget;
pub mod channel;
pub mod container;
pub mod dashboard;
pub mod dataset;
pub mod firestore;
pub mod gateway;
pub mod grant;
pub mod import;
pub mod inventory;
pub mod job;
pub mod permissions;
pub mod queue;
pub mod registry;
pub mod repository;
pub mod schedule;
pub mod secret;
pub mod service;
pub mod service_account;
pub mod shopify_webhook;
pub mod table;
pub mod uptime;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::config::Stack;
use crate::model::ResourceAddr;
use crate::model::change::{FieldChange, FieldValue, Step};
use crate::provider::run::OperationObserver;
use crate::provider::{ApiError, Cloud};
use crate::state::ledger::LedgerError;
use crate::state::ledger::SharedLedger;
use crate::state::{Ledger, LedgerStatus};

pub use registry::{Desired, Observed};

/// The label that marks a resource as owned by a stack: `stackctl-stack=<name>`.
pub const OWNER_LABEL: &str = "stackctl-stack";

/// How `stackctl adopt` takes over a live resource of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adoption {
    /// Recorded in the ownership ledger (kinds without labels).
    Ledger,
    /// Labelled `stackctl-stack=<name>` (and `stackctl-name` where ids are the server's).
    Labels,
    /// Nothing to adopt, and why.
    NotNeeded(&'static str),
}

/// Who owns a live resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// This stack (label or ledger).
    Ours,
    /// Another stack's label.
    OtherStack(String),
    /// Nobody we know of: created by hand or by another tool.
    Unowned,
    /// A ledger entry written just before this stack created it (`pending`): ours only if it
    /// matches stack.toml, since the create may have been interrupted or refused.
    Pending,
}

/// What happens to an owned resource that left stack.toml.
#[derive(Debug, Clone, PartialEq)]
pub enum Removal {
    Delete {
        notes: Vec<String>,
    },
    /// Deleting it is not allowed (e.g. `deletion_protection`); the plan fails with this message.
    Refuse(String),
    /// Pause, keep the name (queues).
    Retire {
        fields: Vec<FieldChange>,
        notes: Vec<String>,
    },
    /// Nothing to do (already retired).
    Keep,
}

/// Facts one resource needs about another, known before apply or learned during it
/// (a service's host for the queues that target it).
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// Service hosts by address; `None` = the service will be created, host known after apply.
    pub hosts: BTreeMap<ResourceAddr, Option<String>>,
    /// Server-assigned names of declared resources by address (notification channels; a
    /// gateway's api managed service, which its API keys are restricted to);
    /// `None` = created by this apply, known after it.
    pub names: BTreeMap<ResourceAddr, Option<String>>,
    /// `projects/NUMBER` of the stack's project, when it was looked up.
    pub project_number: Option<String>,
    /// Declared resources the plan leaves out until the user gives a value, with what to do
    /// (a channel whose token's secret has no version); what refers to them goes without them.
    pub waiting: BTreeMap<ResourceAddr, String>,
}

/// `text` with each placeholder for a value Google assigns on create (a service's host, a
/// gateway's managed service; see [`crate::config::templates`]) replaced by the value `known`
/// has for it. `Err` names a resource whose value is not known yet.
pub fn fill_assigned(text: &str, known: &Known) -> Result<String, ResourceAddr> {
    use crate::config::templates::{gateway_service_placeholder, service_host_placeholder};
    const OPENINGS: [&str; 2] = ["(host of ", "(managed service of "];
    if !OPENINGS.iter().any(|open| text.contains(open)) {
        return Ok(text.to_string());
    }
    let hosts = known
        .hosts
        .iter()
        .map(|(service, host)| (service, service_host_placeholder(service), host));
    let gateways = known
        .names
        .iter()
        .filter(|(address, _)| address.kind == crate::model::Kind::Gateway)
        .map(|(gateway, name)| (gateway, gateway_service_placeholder(gateway), name));
    let mut out = text.to_string();
    for (address, placeholder, value) in hosts.chain(gateways) {
        if !out.contains(&placeholder) {
            continue;
        }
        match value {
            Some(value) => out = out.replace(&placeholder, value),
            None => return Err(address.clone()),
        }
    }
    // A placeholder left over names a resource `known` has no entry for.
    let unknown = OPENINGS.iter().find_map(|open| {
        let rest = out.split(open).nth(1)?;
        rest.split(')').next()?.parse::<ResourceAddr>().ok()
    });
    match unknown {
        Some(address) => Err(address),
        None => Ok(out),
    }
}

/// Options that change what planning may do.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// Delete queues removed from stack.toml instead of pausing them.
    pub allow_queue_delete: bool,
    /// Allow replacing or deleting data-bearing resources (tables, datasets).
    pub allow_data_loss: bool,
    /// Planning `stackctl destroy`: owned secrets are deleted (with their versions, which needs
    /// `allow_data_loss`) instead of kept.
    pub destroy: bool,
}

/// The pure half of a kind: declared specs, ownership, diff.
pub trait Reconcile {
    /// The kind this implements (its registry line pairs them).
    const KIND: crate::model::Kind;
    /// How deep the kind sits in the dependency chain: creates go shallow to deep after what
    /// they reference, deletes deepest first (0: APIs; 1: identities, secrets, containers of
    /// data and images, channels; 2: what runs and what holds rows; 3: what points at those;
    /// 4: what fires them).
    const TIER: u8;
    /// The Google APIs its resources are served by (each `<name>.googleapis.com`).
    const APIS: &'static [&'static str];
    /// How `stackctl adopt` takes over a live resource of this kind.
    const ADOPTION: Adoption;
    type Spec: Clone + Serialize;
    type Live: Serialize;

    /// The declared resources of this kind: address and spec (with its full GCP name).
    fn declared(stack: &Stack) -> Vec<(ResourceAddr, Self::Spec)>;
    fn spec_name(spec: &Self::Spec) -> &str;
    fn live_name(live: &Self::Live) -> &str;
    /// What matches a declared resource to a live one; the full name unless the server assigns
    /// ids (then e.g. the stack and name labels, or the display-name convention).
    fn spec_key(spec: &Self::Spec) -> String {
        Self::spec_name(spec).to_string()
    }
    fn live_key(live: &Self::Live) -> String {
        Self::live_name(live).to_string()
    }
    /// Kinds whose ids the server assigns and whose match key is a label: the display name a
    /// declared resource is created with, so a planned create can point at unowned live ones
    /// that already carry it (`stackctl adopt` takes one over instead of making a duplicate).
    /// `None` for kinds matched by name or by display name (those already conflict).
    fn spec_display_name(_spec: &Self::Spec) -> Option<&str> {
        None
    }
    /// The display name of a live resource, for the same look-alike check.
    fn live_display_name(_live: &Self::Live) -> Option<&str> {
        None
    }
    /// Who owns a live resource: its labels where the kind is owned by label
    /// ([`Reconcile::owner_labels`]), else the ledger entry under its name.
    fn ownership(live: &Self::Live, stack: &str, ledger: &Ledger) -> Ownership {
        match Self::owner_labels(live) {
            Some(labels) => label_ownership(labels, stack),
            None => ledger_ownership(ledger, Self::live_name(live)),
        }
    }
    /// The labels that say who owns a live resource (user labels for Monitoring), for kinds
    /// owned by label; `None` for the others.
    fn owner_labels(_live: &Self::Live) -> Option<&BTreeMap<String, String>> {
        None
    }
    /// Whether adopt may take over `live` at all (a budget must be filtered to exactly this
    /// project: another project's stack may use the same display name).
    fn adoptable(_live: &Self::Live, _observed: &Observed) -> bool {
        true
    }
    /// The address of an owned live resource no longer declared.
    fn address_of(live: &Self::Live, ledger: &Ledger) -> ResourceAddr;
    /// Fingerprint of observed state, checked by apply for saved plans.
    fn fingerprint(live: &Self::Live) -> String {
        fingerprint_of(live)
    }
    fn depends_on(_spec: &Self::Spec) -> Vec<ResourceAddr> {
        vec![]
    }
    fn create_fields(spec: &Self::Spec, known: &Known) -> Vec<FieldChange>;
    /// Whether the create call itself writes `field`; fields written by later calls of the same
    /// step (a database's TTL policies) may still differ when an interrupted create is claimed.
    fn written_by_create(_field: &str) -> bool {
        true
    }
    fn diff(spec: &Self::Spec, live: &Self::Live, known: &Known) -> Vec<FieldChange>;
    /// Notes for the reader on a create (`live` is `None`) or an update, e.g. a paused queue
    /// being resumed or a service image that deploy owns.
    fn notes(
        _address: &ResourceAddr,
        _spec: &Self::Spec,
        _live: Option<&Self::Live>,
    ) -> Vec<String> {
        vec![]
    }
    /// Monthly cost of the declared resource at `address` from stack.toml and its `[usage]`;
    /// `None` when the kind is free or `address` is not declared.
    fn estimate(
        _stack: &Stack,
        _prices: &crate::cost::PriceTable,
        _address: &ResourceAddr,
    ) -> Option<crate::cost::Estimate> {
        None
    }
    /// Monthly cost of the live resource as it runs now (the plan's "before"). By default the
    /// declared estimate: right for kinds whose price does not follow the fields stackctl diffs.
    fn live_cost(
        _live: &Self::Live,
        address: &ResourceAddr,
        stack: &Stack,
        prices: &crate::cost::PriceTable,
    ) -> crate::cost::Estimate {
        Self::estimate(stack, prices, address).unwrap_or_default()
    }
    /// Notes about what some field changes mean (e.g. "affects only new tables").
    fn change_notes(_fields: &[FieldChange]) -> Vec<String> {
        vec![]
    }
    /// Why a planned step would lose data, and how to migrate instead; `None` when it loses none.
    fn data_loss(_step: &Step, _spec: Option<&Self::Spec>) -> Option<String> {
        None
    }
    fn removal(_live: &Self::Live, _ledger: &Ledger, _options: PlanOptions) -> Removal {
        Removal::Delete { notes: vec![] }
    }
    /// How a conflict is explained: the hint to give for an unowned resource.
    fn unowned_hint(address: &ResourceAddr, name: &str) -> String {
        format!(
            "{address}: {name} already exists and is not owned by this stack; if it is yours, run `stackctl adopt {address}`, or give this one another `id`"
        )
    }
}

/// What every change of one apply shares.
pub struct ApplyCtx {
    pub cloud: Cloud,
    /// Written by group commit: concurrent steps' records share writes.
    pub ledger: SharedLedger,
    /// Service hosts by address: observed before apply, updated as services are applied.
    pub hosts: tokio::sync::Mutex<BTreeMap<ResourceAddr, String>>,
    /// Server-assigned names (notification channels) by address: observed, then learned as created.
    pub names: tokio::sync::Mutex<BTreeMap<ResourceAddr, String>>,
    /// Resources this apply leaves for a later one (a channel whose secret has no value yet):
    /// what depends on them is written without them.
    pub waiting: std::sync::Mutex<BTreeMap<ResourceAddr, String>>,
    /// One lock per IAM policy, so grants on the same resource do not race each other's etag.
    pub policy_locks: PolicyLocks,
    /// The `[shopify]` shop whose webhook subscriptions this apply changes, if any.
    pub shopify: Option<shopify_webhook::ShopAccess>,
}

/// Per-resource mutexes for IAM policy read-modify-writes (GCP-NOTES 5.9).
#[derive(Default)]
pub struct PolicyLocks(std::sync::Mutex<BTreeMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>);

impl PolicyLocks {
    /// The lock of `resource`'s policy.
    pub fn of(&self, resource: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        locks.entry(resource.to_string()).or_default().clone()
    }
}

impl ApplyCtx {
    pub async fn record_in_ledger(
        &self,
        change: &Step,
        status: LedgerStatus,
    ) -> Result<(), LedgerError> {
        let (name, address) = (change.name.clone(), change.address.clone());
        self.ledger
            .update(move |l| l.record(&name, &address, status))
            .await
    }

    /// Records that this stack added the IAM member the grant `change` names.
    pub async fn record_binding(&self, change: &Step) -> Result<(), LedgerError> {
        let (key, address) = (change.name.clone(), change.address.clone());
        self.ledger
            .update(move |l| l.record_binding(&key, &address))
            .await
    }

    pub async fn forget_binding(&self, change: &Step) -> Result<(), LedgerError> {
        let key = change.name.clone();
        self.ledger.update(move |l| l.forget_binding(&key)).await
    }

    /// The cross-resource facts known now: service hosts and channel names applied so far.
    pub async fn known(&self) -> Known {
        Known {
            hosts: self
                .hosts
                .lock()
                .await
                .iter()
                .map(|(a, h)| (a.clone(), Some(h.clone())))
                .collect(),
            names: self
                .names
                .lock()
                .await
                .iter()
                .map(|(a, n)| (a.clone(), Some(n.clone())))
                .collect(),
            waiting: self
                .waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            project_number: None,
        }
    }

    /// Records a ledgered resource that this apply just created (`made`), or that a create found
    /// already there: ours only when this call's own earlier attempt may have made it
    /// (`after_retry`) and `is_what_we_sent` says what exists is what was sent. Otherwise the
    /// pending entry is removed and the step refused. The entry was written `pending` before the
    /// create, so a crash in between leaves a claim plan can check, never a silent take-over.
    pub async fn settle_ledgered<T>(
        &self,
        change: &Step,
        created: crate::provider::Created<T>,
        is_what_we_sent: impl AsyncFnOnce() -> Result<bool, ApiError>,
    ) -> Result<(), StepError> {
        let ours = match created {
            crate::provider::Created::New(_) => true,
            crate::provider::Created::Exists { after_retry, .. } => {
                after_retry && is_what_we_sent().await?
            }
        };
        if ours {
            self.record_in_ledger(change, LedgerStatus::Active).await?;
            Ok(())
        } else {
            self.forget_in_ledger(change).await?;
            Err(made_by_someone_else(change))
        }
    }

    pub async fn forget_in_ledger(&self, change: &Step) -> Result<(), LedgerError> {
        let name = change.name.clone();
        self.ledger.update(move |l| l.forget(&name)).await
    }
}

/// The refusal of a create that found the resource already there and not made by this apply:
/// someone made it between plan and create. Nothing was changed, nothing was recorded.
pub(crate) fn made_by_someone_else(step: &Step) -> StepError {
    StepError::Plan(format!(
        "{}: {} appeared after the plan was made (the create answered: already exists) and is not this stack's; nothing was changed. If it is yours, run `stackctl adopt {}`; otherwise give this one another `id`",
        step.address, step.name, step.address
    ))
}

/// Whether a live resource carries the ownership label stackctl sent with `sent` labels.
pub(crate) fn carries_our_label(
    live: &BTreeMap<String, String>,
    sent: &BTreeMap<String, String>,
) -> bool {
    sent.get(OWNER_LABEL)
        .is_some_and(|ours| live.get(OWNER_LABEL) == Some(ours))
}

/// Why one change failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    Plan(String),
    /// The change needs a value only the user can give (see [`crate::apply::reporter::Outcome::Waiting`]).
    #[error("{0}")]
    Waiting(String),
}

impl StepError {
    /// A change whose action needs the desired state its plan does not carry.
    pub(crate) fn no_desired_state(
        action: crate::model::change::Action,
        address: &ResourceAddr,
    ) -> Self {
        Self::Plan(format!(
            "the plan has no desired state to {action:?} {address}; re-run `stackctl plan`"
        ))
    }

    /// A replace of a kind that is never replaced: only a damaged plan file asks for it.
    pub(crate) fn damaged_replace(address: &ResourceAddr) -> Self {
        Self::Plan(format!(
            "{address} cannot be replaced; the plan file is damaged: re-run `stackctl plan`"
        ))
    }
}

/// The async half of a kind: make one planned change real.
pub trait Converge: Reconcile {
    /// Writes `labels` (the live ones plus the ownership labels) on `live` for `stackctl adopt`;
    /// only kinds adopted by [`Adoption::Labels`] are asked to, the others write nothing.
    fn write_adoption_labels(
        _cloud: &Cloud,
        _live: &Self::Live,
        _labels: &BTreeMap<String, String>,
        _stack: &Stack,
    ) -> impl std::future::Future<Output = Result<(), ApiError>> + Send {
        async { Ok(()) }
    }
    fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&Self::Spec>,
        observer: &dyn OperationObserver,
    ) -> impl std::future::Future<Output = Result<(), StepError>> + Send;
}

/// A stable fingerprint of observed state for kinds without an etag.
pub fn fingerprint_of<T: Serialize>(observed: &T) -> String {
    use sha2::Digest;
    let json = serde_json::to_vec(observed).unwrap_or_default();
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(json)))
}

/// The ledger's view of a label-less resource.
pub fn ledger_ownership(ledger: &Ledger, name: &str) -> Ownership {
    match ledger.entry(name).map(|e| e.status) {
        Some(LedgerStatus::Pending) => Ownership::Pending,
        Some(LedgerStatus::Active | LedgerStatus::Retired) => Ownership::Ours,
        None => Ownership::Unowned,
    }
}

/// The label that names the declared resource a live one is, for kinds with server-assigned ids.
pub const NAME_LABEL: &str = "stackctl-name";

/// Each `[kind.NAME]` of `configs` at its address, with the spec `spec` makes of it: what a
/// kind's [`Reconcile::declared`] is, for every kind declared one table per resource.
pub(crate) fn each_declared<C, S>(
    kind: crate::model::Kind,
    configs: &BTreeMap<String, C>,
    spec: impl Fn(&str, &C) -> S,
) -> Vec<(ResourceAddr, S)> {
    configs
        .iter()
        .map(|(name, cfg)| (ResourceAddr::new(kind, name), spec(name, cfg)))
        .collect()
}

/// The address a full GCP name implies: `kind` and the id that ends the name.
pub(crate) fn address_from_name(kind: crate::model::Kind, name: &str) -> ResourceAddr {
    ResourceAddr::new(kind, name.rsplit('/').next().unwrap_or_default())
}

/// The address the ledger recorded for a live resource it owns, else `fallback`'s.
pub(crate) fn ledger_address(
    ledger: &Ledger,
    name: &str,
    fallback: impl FnOnce() -> ResourceAddr,
) -> ResourceAddr {
    ledger
        .entry(name)
        .map(|e| e.address.clone())
        .unwrap_or_else(fallback)
}

/// The address of a label-owned resource with a server-assigned id: its name label, else the
/// id that ends its full name.
pub(crate) fn labelled_address(
    kind: crate::model::Kind,
    labels: &BTreeMap<String, String>,
    name: &str,
) -> ResourceAddr {
    match labels.get(NAME_LABEL) {
        Some(label) => ResourceAddr::new(kind, label.clone()),
        None => address_from_name(kind, name),
    }
}

/// What the server-named, label-owned kinds (channels, uptime checks, alert policies,
/// dashboards, API keys) say alike in their [`Reconcile`] impl: a declared resource plans under
/// its `placeholder` name until the server assigns one, matches a live one by the key of its
/// owner and name labels (`$labels`: the record's field that holds them: Monitoring's user
/// labels, a dashboard's labels, an API key's annotations), looks alike by display name, and is
/// adopted by writing those labels. `$word` is what the record calls them, for the conflict hint.
macro_rules! server_named_by_label {
    ($kind:expr, $labels:ident, $word:literal) => {
        const ADOPTION: $crate::resources::Adoption = $crate::resources::Adoption::Labels;
        fn owner_labels(
            live: &Self::Live,
        ) -> Option<&::std::collections::BTreeMap<String, String>> {
            Some(&live.$labels)
        }
        fn spec_name(spec: &Self::Spec) -> &str {
            &spec.placeholder
        }
        fn live_name(live: &Self::Live) -> &str {
            &live.name
        }
        fn spec_key(spec: &Self::Spec) -> String {
            spec.key.clone()
        }
        fn live_key(live: &Self::Live) -> String {
            $crate::resources::labelled_key(&live.$labels, &live.name)
        }
        fn spec_display_name(spec: &Self::Spec) -> Option<&str> {
            Some(&spec.display_name)
        }
        fn live_display_name(live: &Self::Live) -> Option<&str> {
            Some(&live.display_name)
        }
        fn address_of(live: &Self::Live, _: &$crate::state::Ledger) -> $crate::model::ResourceAddr {
            $crate::resources::labelled_address($kind, &live.$labels, &live.name)
        }
        fn unowned_hint(address: &$crate::model::ResourceAddr, name: &str) -> String {
            $crate::resources::label_conflict_hint(address, name, $word)
        }
    };
}
pub(crate) use server_named_by_label;

/// The conflict of a live resource that carries a declared one's name label (`word`: label or
/// annotation) but not this stack's owner label.
pub(crate) fn label_conflict_hint(address: &ResourceAddr, name: &str, word: &str) -> String {
    format!(
        "{address}: {name} carries the {word} {NAME_LABEL}={} but not {OWNER_LABEL} of this stack; remove that {word} from it, or rename {address} in stack.toml",
        address.name
    )
}

/// The match key of a label-owned resource with a server-assigned id: `<stack>/<name>`.
pub fn labelled_key(labels: &BTreeMap<String, String>, fallback: &str) -> String {
    match (labels.get(OWNER_LABEL), labels.get(NAME_LABEL)) {
        (Some(stack), Some(name)) => format!("{stack}/{name}"),
        _ => fallback.to_string(),
    }
}

/// What replacing a data-bearing container (a dataset, a repository) would lose.
pub(crate) fn replace_loses_data(address: &ResourceAddr) -> String {
    format!(
        "{address} would be deleted and created again, losing what it holds; create the new one under another id, move the data, then remove the old one; or pass --allow-data-loss"
    )
}

/// The ownership a label says.
pub fn label_ownership(labels: &BTreeMap<String, String>, stack: &str) -> Ownership {
    match labels.get(OWNER_LABEL) {
        Some(owner) if owner == stack => Ownership::Ours,
        Some(other) => Ownership::OtherStack(other.clone()),
        None => Ownership::Unowned,
    }
}

/// Pushes a change for `field` when the declared and live values differ.
pub(crate) fn push_if_differs<T: PartialEq>(
    out: &mut Vec<FieldChange>,
    field: &str,
    desired: T,
    live: T,
    show: impl Fn(&T) -> String,
) {
    if desired != live {
        out.push(FieldChange::new(
            field,
            Some(show(&live)),
            Some(FieldValue::Known(show(&desired))),
        ));
    }
}

/// The labels stackctl writes on a resource it owns: the stack's, the resource's own, and the
/// ownership label.
pub(crate) fn owned_labels(
    stack: &Stack,
    own: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut labels = stack.settings.labels.clone();
    labels.extend(own.clone());
    labels.insert(OWNER_LABEL.to_string(), stack.settings.name.clone());
    labels
}

/// Declared labels that differ from live ones (`labels.KEY`); labels stackctl does not declare
/// are left alone.
pub(crate) fn diff_labels(
    out: &mut Vec<FieldChange>,
    prefix: &str,
    desired: &BTreeMap<String, String>,
    live: &BTreeMap<String, String>,
) {
    for (k, v) in desired {
        if live.get(k) != Some(v) {
            out.push(FieldChange::new(
                format!("{prefix}.{k}"),
                live.get(k).map(|v| quoted(v)),
                Some(FieldValue::Known(quoted(v))),
            ));
        }
    }
}

/// `+ field = value` lines for a create.
pub(crate) fn created(field: &str, value: String) -> FieldChange {
    FieldChange::new(field, None, Some(FieldValue::Known(value)))
}

/// A quoted string as plans show it.
pub(crate) fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// A list of strings as plans show it (`["a", "b"]`).
pub(crate) fn quoted_list(items: &[String]) -> String {
    format!("{items:?}")
}

/// A duration as plans show it (`"1m30s"`).
pub(crate) fn quoted_duration(d: &Duration) -> String {
    quoted(&crate::config::units::format_duration(*d))
}

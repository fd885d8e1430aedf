//! `queue`: Cloud Tasks v2 queues — spec from stack.toml, normalized live state, field diff, update mask.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    Adoption, ApplyCtx, Converge, Known, PlanOptions, Reconcile, Removal, StepError,
    address_from_name, ledger_address, push_if_differs, quoted_duration,
};
use crate::config::{QueueConfig, Stack};
use crate::model::change::{Action, FieldChange, FieldValue, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::run::OperationObserver;
use crate::provider::tasks::{self as api, HttpTargetRecord, OidcRecord, QueueRecord, QueueState};
use crate::state::{Ledger, LedgerStatus};

/// The declared state of one queue, every stackctl default applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueSpec {
    /// `projects/P/locations/L/queues/ID`
    pub name: String,
    pub target: Option<QueueTarget>,
    pub max_dispatches_per_second: Option<f64>,
    pub max_concurrent_dispatches: Option<u32>,
    pub max_attempts: i32,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub max_doublings: Option<u32>,
    pub max_retry_duration: Option<Duration>,
    /// The email whose OIDC token tasks carry (audience: the target's URL); `None` = no token.
    #[serde(default)]
    pub oidc_service_account: Option<String>,
    /// The declared account behind `oidc_service_account`.
    #[serde(default)]
    pub oidc_account: Option<ResourceAddr>,
}

/// The service a queue dispatches to; its host is known once the service exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueTarget {
    pub service: ResourceAddr,
    pub path: Option<String>,
}

pub fn full_name(stack: &Stack, id: &str) -> String {
    format!(
        "projects/{}/locations/{}/queues/{}",
        stack.settings.project, stack.settings.region, id
    )
}

pub fn spec(stack: &Stack, cfg: &QueueConfig) -> QueueSpec {
    QueueSpec {
        name: full_name(stack, &cfg.id),
        target: cfg.target.clone().map(|service| QueueTarget {
            service,
            path: cfg.path.clone(),
        }),
        max_dispatches_per_second: cfg.max_dispatches_per_second,
        max_concurrent_dispatches: cfg.max_concurrent_dispatches,
        max_attempts: cfg.max_attempts,
        min_backoff: cfg.min_backoff,
        max_backoff: cfg.max_backoff,
        max_doublings: cfg.max_doublings,
        max_retry_duration: cfg.max_retry_duration,
        oidc_service_account: cfg
            .oidc_service_account
            .as_ref()
            .and_then(|a| super::service_account::email_of(stack, a)),
        oidc_account: cfg.oidc_service_account.clone(),
    }
}

/// The OIDC audience: the target service's URL.
fn audience(host: &str) -> String {
    format!("https://{host}")
}

fn target_url(host: &str, path: Option<&str>) -> String {
    format!("\"https://{host}{}\"", path.unwrap_or("/"))
}

fn live_target(t: &Option<HttpTargetRecord>) -> Option<String> {
    t.as_ref().map(|t| target_url(&t.host, t.path.as_deref()))
}

/// Every declared field, as a `+ create` shows them. `target_host` is `None` until the service exists.
pub fn create_fields(spec: &QueueSpec, target_host: Option<&str>) -> Vec<FieldChange> {
    let known = |f: &str, v: String| FieldChange::new(f, None, Some(FieldValue::Known(v)));
    let mut out = vec![known("state", "\"RUNNING\"".into())];
    if let Some(t) = &spec.target {
        let after = match target_host {
            Some(h) => FieldValue::Known(target_url(h, t.path.as_deref())),
            None => FieldValue::KnownAfterApply,
        };
        out.push(FieldChange::new("target", None, Some(after)));
    }
    if let Some(email) = &spec.oidc_service_account {
        out.push(known("oidc_service_account", format!("{email:?}")));
    }
    if let Some(v) = spec.max_dispatches_per_second {
        out.push(known("max_dispatches_per_second", v.to_string()));
    }
    if let Some(v) = spec.max_concurrent_dispatches {
        out.push(known("max_concurrent_dispatches", v.to_string()));
    }
    out.push(known("max_attempts", spec.max_attempts.to_string()));
    out.push(known("min_backoff", quoted_duration(&spec.min_backoff)));
    out.push(known("max_backoff", quoted_duration(&spec.max_backoff)));
    if let Some(v) = spec.max_doublings {
        out.push(known("max_doublings", v.to_string()));
    }
    if let Some(v) = spec.max_retry_duration {
        out.push(known("max_retry_duration", quoted_duration(&v)));
    }
    out
}

/// Declared fields that differ from the live queue. A declared queue should be RUNNING.
pub fn diff(spec: &QueueSpec, live: &QueueRecord, target_host: Option<&str>) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if live.state != QueueState::Running {
        out.push(FieldChange::new(
            "state",
            Some(format!("{:?}", live.state.as_str())),
            Some(FieldValue::Known("\"RUNNING\"".into())),
        ));
    }
    if let Some(t) = &spec.target {
        let before = live_target(&live.http_target);
        match target_host {
            Some(h) => {
                let after = target_url(h, t.path.as_deref());
                if before.as_deref() != Some(after.as_str()) {
                    out.push(FieldChange::new(
                        "target",
                        before,
                        Some(FieldValue::Known(after)),
                    ));
                }
            }
            None => out.push(FieldChange::new(
                "target",
                before,
                Some(FieldValue::KnownAfterApply),
            )),
        }
    }
    if spec.target.is_some() {
        let live_oidc = live.http_target.as_ref().and_then(|t| t.oidc.as_ref());
        let audience_ok = match (live_oidc, target_host) {
            (Some(o), Some(h)) => o.audience == audience(h),
            _ => true,
        };
        let live_email = live_oidc.map(|o| o.service_account_email.clone());
        if live_email != spec.oidc_service_account || !audience_ok {
            out.push(FieldChange::new(
                "oidc_service_account",
                live_email.map(|e| format!("{e:?}")),
                spec.oidc_service_account
                    .as_ref()
                    .map(|e| FieldValue::Known(format!("{e:?}"))),
            ));
        }
    }
    if let Some(v) = spec.max_dispatches_per_second {
        push_if_differs(
            &mut out,
            "max_dispatches_per_second",
            v,
            live.max_dispatches_per_second,
            |v| v.to_string(),
        );
    }
    if let Some(v) = spec.max_concurrent_dispatches {
        push_if_differs(
            &mut out,
            "max_concurrent_dispatches",
            v as i64,
            live.max_concurrent_dispatches as i64,
            |v| v.to_string(),
        );
    }
    push_if_differs(
        &mut out,
        "max_attempts",
        spec.max_attempts,
        live.max_attempts,
        |v| v.to_string(),
    );
    push_if_differs(
        &mut out,
        "min_backoff",
        Some(spec.min_backoff),
        live.min_backoff,
        |v| v.as_ref().map(quoted_duration).unwrap_or_default(),
    );
    push_if_differs(
        &mut out,
        "max_backoff",
        Some(spec.max_backoff),
        live.max_backoff,
        |v| v.as_ref().map(quoted_duration).unwrap_or_default(),
    );
    if let Some(v) = spec.max_doublings {
        push_if_differs(
            &mut out,
            "max_doublings",
            v as i64,
            live.max_doublings as i64,
            |v| v.to_string(),
        );
    }
    if let Some(v) = spec.max_retry_duration {
        push_if_differs(
            &mut out,
            "max_retry_duration",
            Some(v),
            live.max_retry_duration,
            |v| {
                v.as_ref()
                    .map(quoted_duration)
                    .unwrap_or_else(|| "unlimited".into())
            },
        );
    }
    out
}

/// The API field-mask path for a planned field (`state` is a verb, not a field: pause/resume).
pub fn mask_path(field: &str) -> Option<&'static str> {
    Some(match field {
        "target" | "oidc_service_account" => api::HTTP_TARGET,
        "max_dispatches_per_second" => api::RATE_MAX_DISPATCHES_PER_SECOND,
        "max_concurrent_dispatches" => api::RATE_MAX_CONCURRENT_DISPATCHES,
        "max_attempts" => api::RETRY_MAX_ATTEMPTS,
        "min_backoff" => api::RETRY_MIN_BACKOFF,
        "max_backoff" => api::RETRY_MAX_BACKOFF,
        "max_doublings" => api::RETRY_MAX_DOUBLINGS,
        "max_retry_duration" => api::RETRY_MAX_RETRY_DURATION,
        _ => return None,
    })
}

/// The queue as the provider writes it; unset optional fields are left to the server's defaults.
pub fn to_record(spec: &QueueSpec, target_host: Option<&str>) -> QueueRecord {
    QueueRecord {
        name: spec.name.clone(),
        state: QueueState::Running,
        max_dispatches_per_second: spec.max_dispatches_per_second.unwrap_or(0.0),
        max_concurrent_dispatches: spec
            .max_concurrent_dispatches
            .map(|v| v as i32)
            .unwrap_or(0),
        max_attempts: spec.max_attempts,
        min_backoff: Some(spec.min_backoff),
        max_backoff: Some(spec.max_backoff),
        max_doublings: spec.max_doublings.map(|v| v as i32).unwrap_or(0),
        max_retry_duration: spec.max_retry_duration,
        http_target: match (&spec.target, target_host) {
            (Some(t), Some(host)) => Some(HttpTargetRecord {
                host: host.to_string(),
                path: t.path.clone(),
                oidc: spec.oidc_service_account.as_ref().map(|email| OidcRecord {
                    service_account_email: email.clone(),
                    audience: audience(host),
                }),
            }),
            _ => None,
        },
    }
}

/// The `- state RUNNING -> PAUSED` change that retires a queue removed from stack.toml.
pub fn retire_fields(live: &QueueRecord) -> Vec<FieldChange> {
    if live.state == QueueState::Paused {
        return vec![];
    }
    vec![FieldChange::new(
        "state",
        Some(format!("{:?}", live.state.as_str())),
        Some(FieldValue::Known("\"PAUSED\"".into())),
    )]
}

/// `queue`: Cloud Tasks v2 queues, owned through the ledger (queues have no labels).
pub struct QueueKind;

impl Reconcile for QueueKind {
    const KIND: Kind = Kind::Queue;
    const TIER: u8 = 3;
    const APIS: &'static [&'static str] = &["cloudtasks"];
    const ADOPTION: Adoption = Adoption::Ledger;
    fn estimate(
        stack: &Stack,
        prices: &crate::cost::PriceTable,
        address: &ResourceAddr,
    ) -> Option<crate::cost::Estimate> {
        let label = address.to_string();
        stack.queues.get(&address.name).map(|_| {
            crate::cost::estimate::queue(prices, stack.usage.queues.get(&address.name), &label)
        })
    }
    type Spec = QueueSpec;
    type Live = QueueRecord;

    fn declared(stack: &Stack) -> Vec<(ResourceAddr, QueueSpec)> {
        super::each_declared(Self::KIND, &stack.queues, |_, cfg| spec(stack, cfg))
    }
    fn spec_name(spec: &QueueSpec) -> &str {
        &spec.name
    }
    fn live_name(live: &QueueRecord) -> &str {
        &live.name
    }
    fn address_of(live: &QueueRecord, ledger: &Ledger) -> ResourceAddr {
        ledger_address(ledger, &live.name, || {
            address_from_name(Kind::Queue, &live.name)
        })
    }
    fn depends_on(spec: &QueueSpec) -> Vec<ResourceAddr> {
        spec.target
            .iter()
            .map(|t| t.service.clone())
            .chain(spec.oidc_account.iter().cloned())
            .collect()
    }
    fn create_fields(spec: &QueueSpec, known: &Known) -> Vec<FieldChange> {
        create_fields(spec, target_host(spec, known).as_deref())
    }
    fn diff(spec: &QueueSpec, live: &QueueRecord, known: &Known) -> Vec<FieldChange> {
        diff(spec, live, target_host(spec, known).as_deref())
    }
    fn live_cost(
        live: &QueueRecord,
        address: &ResourceAddr,
        stack: &Stack,
        prices: &crate::cost::PriceTable,
    ) -> crate::cost::Estimate {
        match live.state {
            QueueState::Running => crate::cost::estimate::queue(
                prices,
                stack.usage.queues.get(&address.name),
                &address.to_string(),
            ),
            // A paused queue dispatches nothing.
            _ => crate::cost::Estimate::zero(),
        }
    }
    fn notes(_: &ResourceAddr, _: &QueueSpec, live: Option<&QueueRecord>) -> Vec<String> {
        match live.map(|l| l.state) {
            Some(QueueState::Paused) => {
                vec!["resumes a queue that was paused (retired or paused by hand)".to_string()]
            }
            _ => vec![],
        }
    }
    fn removal(live: &QueueRecord, ledger: &Ledger, options: PlanOptions) -> Removal {
        if options.allow_queue_delete {
            return Removal::Delete {
                notes: vec![
                    "--allow-queue-delete: the queue name cannot be reused for up to 7 days".into(),
                ],
            };
        }
        match ledger.entry(&live.name).map(|e| e.status) {
            Some(LedgerStatus::Active) => Removal::Retire {
                fields: retire_fields(live),
                notes: vec!["removed from stack.toml: paused, not deleted (a deleted queue's name is blocked for days); --allow-queue-delete deletes it".into()],
            },
            _ => Removal::Keep,
        }
    }
}

fn target_host(spec: &QueueSpec, known: &Known) -> Option<String> {
    spec.target
        .as_ref()
        .and_then(|t| known.hosts.get(&t.service).cloned().flatten())
}

impl Converge for QueueKind {
    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&QueueSpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let cloud = &ctx.cloud;
        match (change.action, spec) {
            (Action::Create, Some(spec)) => {
                let host = applied_target_host(ctx, spec).await?;
                // Pending first: a crash after the create leaves a claim plan can check.
                ctx.record_in_ledger(change, LedgerStatus::Pending).await?;
                observer.phase("creating queue");
                let created = cloud
                    .create_queue(&to_record(spec, host.as_deref()), observer)
                    .await?;
                ctx.settle_ledgered(change, created, async || {
                    let known = ctx.known().await;
                    let live = cloud.get_queue(&spec.name, observer).await?;
                    Ok(live.is_some_and(|l| QueueKind::diff(spec, &l, &known).is_empty()))
                })
                .await?;
            }
            (Action::Update, Some(spec)) => {
                let host = applied_target_host(ctx, spec).await?;
                ctx.record_in_ledger(change, LedgerStatus::Active).await?;
                let mask: Vec<&str> = change
                    .fields
                    .iter()
                    .filter_map(|f| mask_path(&f.field))
                    .collect();
                if !mask.is_empty() {
                    observer.phase("updating queue");
                    cloud
                        .update_queue(&to_record(spec, host.as_deref()), &mask, observer)
                        .await?;
                }
                if change.fields.iter().any(|f| f.field == "state") {
                    observer.phase("resuming queue");
                    cloud.resume_queue(&change.name, observer).await?;
                }
            }
            (Action::Retire, _) => {
                if !change.fields.is_empty() {
                    observer.phase("pausing queue");
                    cloud.pause_queue(&change.name, observer).await?;
                }
                ctx.record_in_ledger(change, LedgerStatus::Retired).await?;
            }
            (Action::Delete, _) => {
                observer.phase("deleting queue");
                cloud.delete_queue(&change.name, observer).await?;
                ctx.forget_in_ledger(change).await?;
            }
            (Action::Replace, _) => {
                return Err(StepError::Plan(format!(
                    "{} cannot be replaced; re-run `stackctl plan`",
                    change.address
                )));
            }
            (action, None) => {
                return Err(StepError::no_desired_state(action, &change.address));
            }
        }
        Ok(())
    }
}

/// The target service's host, which must be known by now (the service was applied first).
async fn applied_target_host(
    ctx: &ApplyCtx,
    spec: &QueueSpec,
) -> Result<Option<String>, StepError> {
    let Some(target) = &spec.target else {
        return Ok(None);
    };
    match ctx.hosts.lock().await.get(&target.service) {
        Some(h) => Ok(Some(h.clone())),
        None => Err(StepError::Plan(format!(
            "the URL of {} is unknown: the service has no URL yet; re-run apply",
            target.service
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> QueueSpec {
        QueueSpec {
            name: "projects/p/locations/r/queues/webhooks".into(),
            target: Some(QueueTarget {
                service: "service.worker".parse().unwrap(),
                path: Some("/tasks".into()),
            }),
            max_dispatches_per_second: None,
            max_concurrent_dispatches: Some(800),
            max_attempts: 5,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            max_doublings: None,
            max_retry_duration: None,
            oidc_service_account: None,
            oidc_account: None,
        }
    }

    /// What Cloud Tasks echoes: every server default filled in.
    fn live() -> QueueRecord {
        QueueRecord {
            name: "projects/p/locations/r/queues/webhooks".into(),
            state: QueueState::Running,
            max_dispatches_per_second: 500.0,
            max_concurrent_dispatches: 800,
            max_attempts: 5,
            min_backoff: Some(Duration::from_secs(1)),
            max_backoff: Some(Duration::from_secs(300)),
            max_doublings: 16,
            max_retry_duration: None,
            http_target: Some(HttpTargetRecord {
                host: "w.run.app".into(),
                path: Some("/tasks".into()),
                oidc: None,
            }),
        }
    }

    #[test]
    fn the_oidc_identity_is_diffed_with_the_target_url_as_audience() {
        let mut s = spec();
        s.oidc_service_account = Some("t@p.iam.gserviceaccount.com".into());
        let changes = diff(&s, &live(), Some("w.run.app"));
        assert_eq!(
            changes,
            vec![FieldChange::new(
                "oidc_service_account",
                None,
                Some(FieldValue::Known("\"t@p.iam.gserviceaccount.com\"".into()))
            )]
        );
        assert_eq!(mask_path("oidc_service_account"), Some(api::HTTP_TARGET));
        let mut l = live();
        l.http_target = Some(to_record(&s, Some("w.run.app")).http_target.unwrap());
        assert_eq!(diff(&s, &l, Some("w.run.app")), vec![]);
        assert_eq!(
            l.http_target.unwrap().oidc.unwrap().audience,
            "https://w.run.app"
        );
    }

    #[test]
    fn server_defaults_of_undeclared_fields_do_not_diff() {
        assert_eq!(diff(&spec(), &live(), Some("w.run.app")), vec![]);
    }

    #[test]
    fn durations_are_compared_as_durations_and_shown_in_stack_toml_form() {
        let mut l = live();
        l.min_backoff = Some(Duration::from_millis(100));
        let changes = diff(&spec(), &l, Some("w.run.app"));
        assert_eq!(
            changes,
            vec![FieldChange::new(
                "min_backoff",
                Some("\"0.1s\"".into()),
                Some(FieldValue::Known("\"1s\"".into()))
            )]
        );
        assert_eq!(mask_path(&changes[0].field), Some(api::RETRY_MIN_BACKOFF));
    }

    #[test]
    fn a_paused_declared_queue_is_resumed() {
        let mut l = live();
        l.state = QueueState::Paused;
        let changes = diff(&spec(), &l, Some("w.run.app"));
        assert_eq!(changes[0].field, "state");
        assert_eq!(
            mask_path("state"),
            None,
            "state changes through pause/resume, not the mask"
        );
    }

    #[test]
    fn the_target_url_is_known_after_apply_until_the_service_exists() {
        let created = create_fields(&spec(), None);
        let target = created.iter().find(|f| f.field == "target").unwrap();
        assert_eq!(target.after, Some(FieldValue::KnownAfterApply));
        let moved = diff(&spec(), &live(), Some("other.run.app"));
        assert_eq!(
            moved[0].after,
            Some(FieldValue::Known("\"https://other.run.app/tasks\"".into()))
        );
    }

    #[test]
    fn retiring_shows_running_to_paused_once() {
        assert_eq!(
            retire_fields(&live())[0].before.as_deref(),
            Some("\"RUNNING\"")
        );
        let mut paused = live();
        paused.state = QueueState::Paused;
        assert!(retire_fields(&paused).is_empty());
    }
}

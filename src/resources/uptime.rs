//! `uptime`: Cloud Monitoring HTTPS uptime checks, found again by their `stackctl-name` label
//! (the server assigns their ids).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    ApplyCtx, Converge, Known, NAME_LABEL, Reconcile, StepError, created, diff_labels,
    owned_labels, push_if_differs, quoted, quoted_duration,
};
use crate::config::{Stack, UptimeConfig};
use crate::model::change::{Action, FieldChange, FieldValue, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::run::OperationObserver;
use crate::provider::uptime::{UptimeRecord, UptimeWrite};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UptimeSpec {
    /// `<stack>/<name>`: what finds the live check.
    pub key: String,
    /// `projects/P/uptimeCheckConfigs/(assigned on create)`
    pub placeholder: String,
    pub display_name: String,
    /// Empty with `target`: the service's host, known once it exists.
    pub host: String,
    /// The declared service whose URL is checked.
    #[serde(default)]
    pub target: Option<ResourceAddr>,
    pub path: String,
    pub period: Duration,
    pub timeout: Duration,
    /// Sorted; empty: every region.
    pub regions: Vec<String>,
    /// `STATUS_CLASS_2XX`, ...
    pub status_class: String,
    pub user_labels: BTreeMap<String, String>,
}

/// `2xx` -> `STATUS_CLASS_2XX`, `any` -> `STATUS_CLASS_ANY`.
fn status_class(expect_status: &str) -> String {
    format!("STATUS_CLASS_{}", expect_status.to_ascii_uppercase())
}

pub fn spec(stack: &Stack, name: &str, cfg: &UptimeConfig) -> UptimeSpec {
    let mut user_labels = owned_labels(stack, &BTreeMap::new());
    user_labels.insert(NAME_LABEL.to_string(), name.to_string());
    UptimeSpec {
        key: format!("{}/{name}", stack.settings.name),
        placeholder: format!(
            "projects/{}/uptimeCheckConfigs/(assigned on create)",
            stack.settings.project
        ),
        display_name: cfg.display_name.clone(),
        host: cfg.host.clone(),
        target: cfg.target.clone(),
        path: cfg.path.clone(),
        period: cfg.period,
        timeout: cfg.timeout,
        regions: cfg.regions.clone(),
        status_class: status_class(&cfg.expect_status),
        user_labels,
    }
}

fn url(host: &str, path: &str) -> String {
    format!("https://{host}{path}")
}

fn regions_shown(regions: &[String]) -> String {
    if regions.is_empty() {
        "(all)".into()
    } else {
        format!("[{}]", regions.join(", "))
    }
}

pub fn create_fields(spec: &UptimeSpec) -> Vec<FieldChange> {
    let mut out = vec![
        created("url", quoted(&url(&spec.host, &spec.path))),
        created("period", quoted_duration(&spec.period)),
        created("timeout", quoted_duration(&spec.timeout)),
        created("regions", regions_shown(&spec.regions)),
        created("expect_status", quoted(&spec.status_class)),
        created("display_name", quoted(&spec.display_name)),
    ];
    for (k, v) in &spec.user_labels {
        out.push(created(&format!("user_labels.{k}"), quoted(v)));
    }
    out
}

/// Declared fields that differ. A live check that is not HTTPS on 443 shows as a changed `url`
/// (updated in place), another host as one that forces replacement; an empty accepted-status
/// list is Google's default, 2xx.
pub fn diff(spec: &UptimeSpec, live: &UptimeRecord) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let live_url = if live.use_ssl && (live.port == 443 || live.port == 0) {
        url(&live.host, &live.path)
    } else {
        format!(
            "http(s={}) {}:{}{}",
            live.use_ssl, live.host, live.port, live.path
        )
    };
    push_if_differs(
        &mut out,
        "url",
        url(&spec.host, &spec.path),
        live_url,
        |v| quoted(v),
    );
    // The host sits in the check's monitored resource, which Google never changes in place.
    if spec.host != live.host
        && let Some(last) = out.last_mut()
    {
        *last = last.clone().forcing_replacement();
    }
    push_if_differs(
        &mut out,
        "period",
        spec.period,
        live.period,
        quoted_duration,
    );
    push_if_differs(
        &mut out,
        "timeout",
        spec.timeout,
        live.timeout,
        quoted_duration,
    );
    push_if_differs(
        &mut out,
        "regions",
        spec.regions.as_slice(),
        live.regions.as_slice(),
        |v| regions_shown(v),
    );
    let live_status = match live.status_classes.as_slice() {
        [] => "STATUS_CLASS_2XX".to_string(),
        [one] => one.clone(),
        many => many.join("+"),
    };
    push_if_differs(
        &mut out,
        "expect_status",
        spec.status_class.as_str(),
        live_status.as_str(),
        |v| quoted(v),
    );
    push_if_differs(
        &mut out,
        "display_name",
        spec.display_name.as_str(),
        live.display_name.as_str(),
        |v| quoted(v),
    );
    diff_labels(
        &mut out,
        "user_labels",
        &spec.user_labels,
        &live.user_labels,
    );
    out
}

/// `spec` with its target service's host filled in; `None` while that host is unknown.
pub fn with_target_host(
    spec: &UptimeSpec,
    hosts: &BTreeMap<ResourceAddr, Option<String>>,
) -> Option<UptimeSpec> {
    match &spec.target {
        None => Some(spec.clone()),
        Some(service) => {
            let host = hosts.get(service).cloned().flatten()?;
            Some(UptimeSpec {
                host,
                ..spec.clone()
            })
        }
    }
}

/// The fields of a check whose target's host is not known yet: the url after apply.
fn url_known_after_apply(
    mut fields: Vec<FieldChange>,
    live: Option<&UptimeRecord>,
) -> Vec<FieldChange> {
    fields.retain(|f| f.field != "url");
    fields.insert(
        0,
        FieldChange::new(
            "url",
            live.map(|l| quoted(&url(&l.host, &l.path))),
            Some(FieldValue::KnownAfterApply),
        ),
    );
    fields
}

fn to_write(spec: &UptimeSpec) -> UptimeWrite {
    UptimeWrite {
        display_name: spec.display_name.clone(),
        host: spec.host.clone(),
        path: spec.path.clone(),
        period: spec.period,
        timeout: spec.timeout,
        regions: spec.regions.clone(),
        status_class: spec.status_class.clone(),
        user_labels: spec.user_labels.clone(),
    }
}

/// `uptime`: uptime check configs, owned by user label.
pub struct UptimeKind;

impl Reconcile for UptimeKind {
    const KIND: Kind = Kind::Uptime;
    const TIER: u8 = 2;
    const APIS: &'static [&'static str] = &["monitoring"];
    super::server_named_by_label!(Kind::Uptime, user_labels, "label");
    type Spec = UptimeSpec;
    type Live = UptimeRecord;
    fn declared(stack: &Stack) -> Vec<(ResourceAddr, UptimeSpec)> {
        super::each_declared(Self::KIND, &stack.uptimes, |name, cfg| {
            spec(stack, name, cfg)
        })
    }
    fn depends_on(spec: &UptimeSpec) -> Vec<ResourceAddr> {
        spec.target.iter().cloned().collect()
    }
    fn create_fields(spec: &UptimeSpec, known: &Known) -> Vec<FieldChange> {
        match with_target_host(spec, &known.hosts) {
            Some(resolved) => create_fields(&resolved),
            None => url_known_after_apply(create_fields(spec), None),
        }
    }
    fn diff(spec: &UptimeSpec, live: &UptimeRecord, known: &Known) -> Vec<FieldChange> {
        match with_target_host(spec, &known.hosts) {
            Some(resolved) => diff(&resolved, live),
            None => url_known_after_apply(diff(spec, live), Some(live)),
        }
    }
}

impl Converge for UptimeKind {
    async fn write_adoption_labels(
        cloud: &crate::provider::Cloud,
        live: &Self::Live,
        labels: &BTreeMap<String, String>,
        _stack: &Stack,
    ) -> Result<(), crate::provider::ApiError> {
        use crate::provider::Silent;
        cloud
            .label_uptime_check(&live.name, labels, &Silent)
            .await
            .map(drop)
    }
    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&UptimeSpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let cloud = &ctx.cloud;
        let resolved = match spec {
            Some(spec) => {
                let hosts = ctx.known().await.hosts;
                Some(with_target_host(spec, &hosts).ok_or_else(|| {
                    StepError::Plan(format!(
                        "the URL of {} is unknown: that service has no URL yet; re-run apply",
                        spec.target
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default()
                    ))
                })?)
            }
            None => None,
        };
        match (change.action, resolved.as_ref()) {
            (Action::Create, Some(spec)) => {
                observer.phase("creating uptime check");
                let made = cloud.create_uptime_check(&to_write(spec), observer).await?;
                ctx.names
                    .lock()
                    .await
                    .insert(change.address.clone(), made.name);
            }
            (Action::Replace, Some(spec)) => {
                observer.phase("replacing uptime check (its host changed)");
                cloud.delete_uptime_check(&change.name, observer).await?;
                let made = cloud.create_uptime_check(&to_write(spec), observer).await?;
                ctx.names
                    .lock()
                    .await
                    .insert(change.address.clone(), made.name);
            }
            (Action::Update, Some(spec)) => {
                observer.phase("updating uptime check");
                cloud
                    .update_uptime_check(&change.name, &to_write(spec), observer)
                    .await?;
            }
            (Action::Delete | Action::Retire, _) => {
                observer.phase("deleting uptime check");
                cloud.delete_uptime_check(&change.name, observer).await?;
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

    fn spec() -> UptimeSpec {
        UptimeSpec {
            key: "s/relay".into(),
            placeholder: "projects/p/uptimeCheckConfigs/(assigned on create)".into(),
            display_name: "relay".into(),
            host: "relay.example.com".into(),
            target: None,
            path: "/healthz".into(),
            period: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
            regions: vec![],
            status_class: "STATUS_CLASS_2XX".into(),
            user_labels: BTreeMap::from([
                (OWNER_LABEL.into(), "s".into()),
                (NAME_LABEL.into(), "relay".into()),
            ]),
        }
    }

    fn live() -> UptimeRecord {
        UptimeRecord {
            name: "projects/p/uptimeCheckConfigs/relay-abc".into(),
            display_name: "relay".into(),
            host: "relay.example.com".into(),
            path: "/healthz".into(),
            use_ssl: true,
            port: 443,
            period: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
            regions: vec![],
            status_classes: vec![],
            user_labels: spec().user_labels,
        }
    }

    #[test]
    fn the_live_check_is_found_by_labels_and_googles_default_status_does_not_diff() {
        assert_eq!(UptimeKind::live_key(&live()), UptimeKind::spec_key(&spec()));
        assert_eq!(diff(&spec(), &live()), vec![]);
    }

    #[test]
    fn a_changed_period_or_plain_http_check_shows_exactly_that_field() {
        let mut slower = live();
        slower.period = Duration::from_secs(900);
        let fields = diff(&spec(), &slower);
        assert_eq!(fields.len(), 1, "{fields:?}");
        assert_eq!(fields[0].field, "period");
        let mut plain = live();
        plain.use_ssl = false;
        plain.port = 80;
        let fields = diff(&spec(), &plain);
        assert_eq!(fields.len(), 1, "{fields:?}");
        assert_eq!(fields[0].field, "url");
        assert!(!fields[0].forces_replacement);
    }

    #[test]
    fn a_check_of_a_service_takes_its_host_once_known() {
        let mut targeted = spec();
        targeted.host = String::new();
        targeted.target = Some(ResourceAddr::new(Kind::Service, "relay"));
        let unknown = Known::default();
        let fields = UptimeKind::create_fields(&targeted, &unknown);
        assert_eq!(fields[0].field, "url");
        assert_eq!(fields[0].after, Some(FieldValue::KnownAfterApply));
        let known = Known {
            hosts: BTreeMap::from([(
                ResourceAddr::new(Kind::Service, "relay"),
                Some("relay.example.com".into()),
            )]),
            ..Known::default()
        };
        assert_eq!(UptimeKind::diff(&targeted, &live(), &known), vec![]);
        assert_eq!(
            UptimeKind::depends_on(&targeted),
            vec![ResourceAddr::new(Kind::Service, "relay")]
        );
    }

    #[test]
    fn another_host_forces_replacement() {
        let mut moved = live();
        moved.host = "old.example.com".into();
        let fields = diff(&spec(), &moved);
        assert_eq!(fields.len(), 1, "{fields:?}");
        assert!(fields[0].forces_replacement, "{fields:?}");
    }
}

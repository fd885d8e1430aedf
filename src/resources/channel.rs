//! `channel`: Monitoring notification channels (email, Slack, PagerDuty, webhook), found again by
//! their `stackctl-name` label (the server assigns their ids).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    ApplyCtx, Converge, Known, NAME_LABEL, Reconcile, StepError, created, diff_labels,
    owned_labels, push_if_differs, quoted,
};
use crate::config::{ChannelConfig, Stack};
use crate::model::change::{Action, FieldChange, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::monitoring::{ChannelRecord, ChannelWrite};
use crate::provider::run::OperationObserver;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelSpec {
    /// `<stack>/<name>`: what finds the live channel.
    pub key: String,
    /// `projects/P/notificationChannels/(assigned on create)`
    pub placeholder: String,
    /// Google's channel type (`email`, `slack`, `pagerduty`, `webhook_tokenauth`, ...).
    pub kind: String,
    pub display_name: String,
    /// Non-sensitive labels as Google names them.
    pub labels: BTreeMap<String, String>,
    /// The sensitive label: only where its value comes from, never the value.
    pub secret: Option<SecretLabel>,
    pub user_labels: BTreeMap<String, String>,
}

/// A sensitive channel label whose value is read from Secret Manager when the channel is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretLabel {
    /// `auth_token`, `service_key` or `password`.
    pub label: String,
    /// `secret.NAME`.
    pub source: ResourceAddr,
    /// Its Secret Manager id.
    pub secret_id: String,
}

pub fn spec(stack: &Stack, name: &str, cfg: &ChannelConfig) -> ChannelSpec {
    let mut user_labels = owned_labels(stack, &BTreeMap::new());
    user_labels.insert(NAME_LABEL.to_string(), name.to_string());
    let secret = cfg.secret.as_ref().map(|s| SecretLabel {
        label: s.label.clone(),
        source: s.source.clone(),
        secret_id: stack
            .secrets
            .get(&s.source.name)
            .map(|c| c.id.clone())
            .unwrap_or_else(|| s.source.name.clone()),
    });
    ChannelSpec {
        key: format!("{}/{name}", stack.settings.name),
        placeholder: format!(
            "projects/{}/notificationChannels/(assigned on create)",
            stack.settings.project
        ),
        kind: cfg.kind.clone(),
        display_name: cfg.display_name.clone(),
        labels: cfg.labels.clone(),
        secret,
        user_labels,
    }
}

/// The secrets that a declared channel not made yet takes its token from and that have no
/// enabled version (one `versions.list` per such secret that exists; none when every channel
/// exists already).
pub async fn secrets_without_value(
    cloud: &crate::provider::Cloud,
    stack: &Stack,
    channels: &[ChannelRecord],
    secrets: &[crate::provider::secrets::SecretRecord],
) -> Result<std::collections::BTreeSet<ResourceAddr>, crate::provider::ApiError> {
    let live_keys: std::collections::BTreeSet<String> =
        channels.iter().map(ChannelKind::live_key).collect();
    let mut without = std::collections::BTreeSet::new();
    for (_, spec) in ChannelKind::declared(stack) {
        let Some(secret) = spec.secret.filter(|_| !live_keys.contains(&spec.key)) else {
            continue;
        };
        let exists = secrets
            .iter()
            .any(|s| s.name.rsplit('/').next() == Some(secret.secret_id.as_str()));
        let has_value = exists
            && cloud
                .secret_has_enabled_version(&secret.secret_id)
                .await?
                .unwrap_or(false);
        if !has_value {
            without.insert(secret.source);
        }
    }
    Ok(without)
}

/// Why a channel is not made yet, and what makes it: said by plan (the secret had no version
/// when it looked) and by apply (none when it read it).
pub fn waiting_for_value(secret: &SecretLabel) -> String {
    format!(
        "its {} comes from {}, which has no value yet: store it with `stackctl secret set {}`, then apply (until then the alerts that notify this channel go without it)",
        secret.label, secret.source, secret.secret_id
    )
}

/// How a plan shows a sensitive label: where its value comes from, never the value.
fn from_secret(secret: &SecretLabel) -> String {
    format!("(from {})", secret.source)
}

pub fn create_fields(spec: &ChannelSpec) -> Vec<FieldChange> {
    let mut out = vec![created("type", quoted(&spec.kind))];
    for (k, v) in &spec.labels {
        out.push(created(label_field(k), quoted(v)));
    }
    if let Some(secret) = &spec.secret {
        out.push(created(label_field(&secret.label), from_secret(secret)));
    }
    out.push(created("display_name", quoted(&spec.display_name)));
    for (k, v) in &spec.user_labels {
        out.push(created(&format!("user_labels.{k}"), quoted(v)));
    }
    out
}

/// Declared fields that differ; email addresses compare case-insensitively.
///
/// The sensitive label is never compared: Google returns it masked, so comparing would flap on
/// every plan, and the alternative (a hash of the sent value in a user label) would make every
/// plan read the secret and put a digest of a credential where anyone with
/// `monitoring.viewer` reads it. A new token in the same secret is sent by the next apply that
/// writes the channel for another reason; a changed `secret.NAME` reference is not detected.
pub fn diff(spec: &ChannelSpec, live: &ChannelRecord) -> Vec<FieldChange> {
    let mut out = Vec::new();
    push_if_differs(
        &mut out,
        "type",
        spec.kind.as_str(),
        live.kind.as_str(),
        |v| quoted(v),
    );
    for (k, want) in &spec.labels {
        let have = live.labels.get(k).map(String::as_str).unwrap_or_default();
        let same = if k == EMAIL_LABEL {
            want.eq_ignore_ascii_case(have)
        } else {
            want == have
        };
        if !same {
            push_if_differs(&mut out, label_field(k), want.as_str(), have, |v| quoted(v));
        }
    }
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

/// The label key of an email channel's address.
const EMAIL_LABEL: &str = "email_address";

/// The stack.toml key (and plan field) of Google label `label`: `email` for `email_address`,
/// the label's own name otherwise.
fn label_field(label: &str) -> &str {
    if label == EMAIL_LABEL { "email" } else { label }
}

/// What is written on the channel, with the sensitive label's value read from Secret Manager now
/// (held in a [`crate::provider::secrets::SecretValue`], shown nowhere).
pub async fn to_write(
    cloud: &crate::provider::Cloud,
    address: &ResourceAddr,
    spec: &ChannelSpec,
) -> Result<ChannelWrite, StepError> {
    let sensitive = match &spec.secret {
        None => None,
        Some(secret) => match cloud.access_secret_value(&secret.secret_id).await? {
            Some(value) => Some((secret.label.clone(), value)),
            None => {
                tracing::debug!(%address, "its secret has no value yet");
                return Err(StepError::Waiting(waiting_for_value(secret)));
            }
        },
    };
    Ok(ChannelWrite {
        kind: spec.kind.clone(),
        display_name: spec.display_name.clone(),
        labels: spec.labels.clone(),
        sensitive,
        user_labels: spec.user_labels.clone(),
    })
}

/// `channel`: notification channels, owned by user label.
pub struct ChannelKind;

impl Reconcile for ChannelKind {
    const KIND: Kind = Kind::Channel;
    const TIER: u8 = 1;
    const APIS: &'static [&'static str] = &["monitoring"];
    super::server_named_by_label!(Kind::Channel, user_labels, "label");
    type Spec = ChannelSpec;
    type Live = ChannelRecord;
    fn declared(stack: &Stack) -> Vec<(ResourceAddr, ChannelSpec)> {
        super::each_declared(Self::KIND, &stack.channels, |name, cfg| {
            spec(stack, name, cfg)
        })
    }
    fn depends_on(spec: &ChannelSpec) -> Vec<ResourceAddr> {
        spec.secret.iter().map(|s| s.source.clone()).collect()
    }
    fn create_fields(spec: &ChannelSpec, _: &Known) -> Vec<FieldChange> {
        create_fields(spec)
    }
    fn diff(spec: &ChannelSpec, live: &ChannelRecord, _: &Known) -> Vec<FieldChange> {
        diff(spec, live)
    }
}

impl Converge for ChannelKind {
    async fn write_adoption_labels(
        cloud: &crate::provider::Cloud,
        live: &Self::Live,
        labels: &BTreeMap<String, String>,
        _stack: &Stack,
    ) -> Result<(), crate::provider::ApiError> {
        use crate::provider::Silent;
        cloud
            .label_channel(&live.name, labels, &Silent)
            .await
            .map(drop)
    }
    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&ChannelSpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let cloud = &ctx.cloud;
        match (change.action, spec) {
            (Action::Create, Some(spec)) => {
                observer.phase("creating notification channel");
                let write = match to_write(cloud, &change.address, spec).await {
                    Err(StepError::Waiting(reason)) => {
                        let mut waiting = ctx.waiting.lock().unwrap_or_else(|e| e.into_inner());
                        waiting.insert(change.address.clone(), reason.clone());
                        return Err(StepError::Waiting(reason));
                    }
                    other => other?,
                };
                let made = cloud.create_channel(&write, observer).await?;
                ctx.names
                    .lock()
                    .await
                    .insert(change.address.clone(), made.name);
            }
            (Action::Update | Action::Replace, Some(spec)) => {
                observer.phase("updating notification channel");
                let write = to_write(cloud, &change.address, spec).await?;
                cloud.update_channel(&change.name, &write, observer).await?;
            }
            (Action::Delete | Action::Retire, _) => {
                observer.phase("deleting notification channel");
                cloud.delete_channel(&change.name, observer).await?;
            }
            (action, None) => {
                return Err(StepError::no_desired_state(action, &change.address));
            }
        }
        Ok(())
    }
}

/// The server names of `channels` known now (observed or created earlier in this apply),
/// leaving out the channels this apply could not create yet (their secret has no value): the
/// alert notifies the others now, and the apply after the fix adds them.
pub async fn applied_channel_names(
    ctx: &ApplyCtx,
    channels: &[ResourceAddr],
) -> Result<Vec<String>, StepError> {
    let names = ctx.names.lock().await;
    let waiting = ctx
        .waiting
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    channels
        .iter()
        .filter(|c| !waiting.contains_key(*c))
        .map(|c| {
            names.get(c).cloned().ok_or_else(|| {
                StepError::Plan(format!(
                    "the notification channel {c} does not exist yet; re-run apply"
                ))
            })
        })
        .collect()
}

/// Channel names for the plan: `None` when some channel is created by this apply; channels
/// left waiting for a secret's value are left out, as apply leaves them out.
pub fn planned_channel_names(channels: &[ResourceAddr], known: &Known) -> Option<Vec<String>> {
    channels
        .iter()
        .filter(|c| !known.waiting.contains_key(*c))
        .map(|c| known.names.get(c).cloned().flatten())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::OWNER_LABEL;

    fn spec() -> ChannelSpec {
        ChannelSpec {
            key: "s/oncall".into(),
            placeholder: "projects/p/notificationChannels/(assigned on create)".into(),
            kind: "email".into(),
            display_name: "oncall".into(),
            labels: BTreeMap::from([(EMAIL_LABEL.into(), "ops@example.com".into())]),
            secret: None,
            user_labels: BTreeMap::from([
                (OWNER_LABEL.into(), "s".into()),
                (NAME_LABEL.into(), "oncall".into()),
            ]),
        }
    }

    fn live() -> ChannelRecord {
        ChannelRecord {
            name: "projects/p/notificationChannels/123".into(),
            kind: "email".into(),
            display_name: "oncall".into(),
            labels: BTreeMap::from([(EMAIL_LABEL.into(), "Ops@Example.com".into())]),
            user_labels: spec().user_labels,
        }
    }

    #[test]
    fn the_live_channel_is_found_by_labels_and_email_case_does_not_diff() {
        assert_eq!(
            ChannelKind::live_key(&live()),
            ChannelKind::spec_key(&spec())
        );
        assert_eq!(diff(&spec(), &live()), vec![]);
    }

    #[test]
    fn one_changed_field_shows_exactly_it() {
        let mut l = live();
        l.display_name = "old".into();
        let f = diff(&spec(), &l);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].field, "display_name");
    }
}

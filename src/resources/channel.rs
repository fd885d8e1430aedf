//! `channel`: Monitoring email notification channels, found again by their `stackctl-name` label
//! (the server assigns their ids).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    Adoption, ApplyCtx, Converge, Known, NAME_LABEL, OWNER_LABEL, Reconcile, StepError, created,
    diff_labels, labelled_address, labelled_key, owned_labels, push_if_differs, quoted,
};
use crate::config::{ChannelConfig, Stack};
use crate::model::change::{Action, FieldChange, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::monitoring::{ChannelRecord, ChannelWrite};
use crate::provider::run::OperationObserver;
use crate::state::Ledger;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelSpec {
    /// `<stack>/<name>`: what finds the live channel.
    pub key: String,
    /// `projects/P/notificationChannels/(assigned on create)`
    pub placeholder: String,
    pub kind: String,
    pub display_name: String,
    pub email: String,
    pub user_labels: BTreeMap<String, String>,
}

pub fn spec(stack: &Stack, name: &str, cfg: &ChannelConfig) -> ChannelSpec {
    let mut user_labels = owned_labels(stack, &BTreeMap::new());
    user_labels.insert(NAME_LABEL.to_string(), name.to_string());
    ChannelSpec {
        key: format!("{}/{name}", stack.settings.name),
        placeholder: format!(
            "projects/{}/notificationChannels/(assigned on create)",
            stack.settings.project
        ),
        kind: cfg.kind.clone(),
        display_name: cfg.display_name.clone(),
        email: cfg.email.clone(),
        user_labels,
    }
}

pub fn create_fields(spec: &ChannelSpec) -> Vec<FieldChange> {
    let mut out = vec![
        created("type", quoted(&spec.kind)),
        created("email", quoted(&spec.email)),
        created("display_name", quoted(&spec.display_name)),
    ];
    for (k, v) in &spec.user_labels {
        out.push(created(&format!("user_labels.{k}"), quoted(v)));
    }
    out
}

/// Declared fields that differ; email addresses compare case-insensitively.
pub fn diff(spec: &ChannelSpec, live: &ChannelRecord) -> Vec<FieldChange> {
    let mut out = Vec::new();
    push_if_differs(
        &mut out,
        "type",
        spec.kind.as_str(),
        live.kind.as_str(),
        |v| quoted(v),
    );
    let live_email = live.email.clone().unwrap_or_default();
    if !spec.email.eq_ignore_ascii_case(&live_email) {
        push_if_differs(
            &mut out,
            "email",
            spec.email.as_str(),
            live_email.as_str(),
            |v| quoted(v),
        );
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

pub fn to_write(spec: &ChannelSpec) -> ChannelWrite {
    ChannelWrite {
        kind: spec.kind.clone(),
        display_name: spec.display_name.clone(),
        email: spec.email.clone(),
        user_labels: spec.user_labels.clone(),
    }
}

/// `channel`: notification channels, owned by user label.
pub struct ChannelKind;

impl Reconcile for ChannelKind {
    const KIND: Kind = Kind::Channel;
    const TIER: u8 = 1;
    const APIS: &'static [&'static str] = &["monitoring"];
    const ADOPTION: Adoption = Adoption::Labels;
    fn owner_labels(live: &Self::Live) -> Option<&BTreeMap<String, String>> {
        Some(&live.user_labels)
    }
    type Spec = ChannelSpec;
    type Live = ChannelRecord;

    fn declared(stack: &Stack) -> Vec<(ResourceAddr, ChannelSpec)> {
        stack
            .channels
            .iter()
            .map(|(name, cfg)| {
                (
                    ResourceAddr::new(Kind::Channel, name),
                    spec(stack, name, cfg),
                )
            })
            .collect()
    }
    fn spec_name(spec: &ChannelSpec) -> &str {
        &spec.placeholder
    }
    fn live_name(live: &ChannelRecord) -> &str {
        &live.name
    }
    fn spec_key(spec: &ChannelSpec) -> String {
        spec.key.clone()
    }
    fn live_key(live: &ChannelRecord) -> String {
        labelled_key(&live.user_labels, &live.name)
    }
    fn spec_display_name(spec: &ChannelSpec) -> Option<&str> {
        Some(&spec.display_name)
    }
    fn live_display_name(live: &ChannelRecord) -> Option<&str> {
        Some(&live.display_name)
    }
    fn address_of(live: &ChannelRecord, _: &Ledger) -> ResourceAddr {
        labelled_address(Kind::Channel, &live.user_labels, &live.name)
    }
    fn create_fields(spec: &ChannelSpec, _: &Known) -> Vec<FieldChange> {
        create_fields(spec)
    }
    fn diff(spec: &ChannelSpec, live: &ChannelRecord, _: &Known) -> Vec<FieldChange> {
        diff(spec, live)
    }
    fn unowned_hint(address: &ResourceAddr, name: &str) -> String {
        format!(
            "{address}: {name} carries the label {NAME_LABEL}={} but not {OWNER_LABEL} of this stack; remove that label from it, or rename the table",
            address.name
        )
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
                let made = cloud.create_channel(&to_write(spec), observer).await?;
                ctx.names
                    .lock()
                    .await
                    .insert(change.address.clone(), made.name);
            }
            (Action::Update | Action::Replace, Some(spec)) => {
                observer.phase("updating notification channel");
                cloud
                    .update_channel(&change.name, &to_write(spec), observer)
                    .await?;
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

/// The server names of `channels` known now (observed or created earlier in this apply).
pub async fn applied_channel_names(
    ctx: &ApplyCtx,
    channels: &[ResourceAddr],
) -> Result<Vec<String>, StepError> {
    let names = ctx.names.lock().await;
    channels
        .iter()
        .map(|c| {
            names.get(c).cloned().ok_or_else(|| {
                StepError::Plan(format!(
                    "the notification channel {c} does not exist yet; re-run apply"
                ))
            })
        })
        .collect()
}

/// Channel names for the plan: `None` when some channel is created by this apply.
pub fn planned_channel_names(channels: &[ResourceAddr], known: &Known) -> Option<Vec<String>> {
    channels
        .iter()
        .map(|c| known.names.get(c).cloned().flatten())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ChannelSpec {
        ChannelSpec {
            key: "s/oncall".into(),
            placeholder: "projects/p/notificationChannels/(assigned on create)".into(),
            kind: "email".into(),
            display_name: "oncall".into(),
            email: "ops@example.com".into(),
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
            email: Some("Ops@Example.com".into()),
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

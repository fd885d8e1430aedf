//! `api_key`: API Keys v2 keys restricted to one gateway's managed service, found again by their
//! `stackctl-stack`/`stackctl-name` annotations (keys have no labels). The key string is never
//! read here: only `stackctl api-key show --reveal` asks for it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    ApplyCtx, Converge, Known, NAME_LABEL, Reconcile, StepError, created, diff_labels,
    owned_labels, push_if_differs, quoted, quoted_list,
};
use crate::config::{ApiKeyConfig, Stack};
use crate::model::change::{Action, FieldChange, FieldValue, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::api_keys::{ApiKeyRecord, ApiKeyWrite};
use crate::provider::retry::Created;
use crate::provider::run::OperationObserver;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeySpec {
    /// `<stack>/<name>`: what finds the live key.
    pub key: String,
    /// `projects/P/locations/global/keys/ID` (Google names it by project number).
    pub placeholder: String,
    pub key_id: String,
    pub display_name: String,
    pub gateway: ResourceAddr,
    /// `projects/P/locations/global/apis/A`: where the managed service is read at apply.
    pub gateway_api: String,
    pub annotations: BTreeMap<String, String>,
}

pub fn spec(stack: &Stack, name: &str, cfg: &ApiKeyConfig) -> ApiKeySpec {
    let mut annotations = owned_labels(stack, &BTreeMap::new());
    annotations.insert(NAME_LABEL.to_string(), name.to_string());
    let gateway_id = stack
        .gateways
        .get(&cfg.gateway.name)
        .map_or(cfg.gateway.name.as_str(), |g| g.id.as_str());
    ApiKeySpec {
        key: format!("{}/{name}", stack.settings.name),
        placeholder: format!(
            "projects/{}/locations/global/keys/{}",
            stack.settings.project, cfg.id
        ),
        key_id: cfg.id.clone(),
        display_name: cfg.display_name.clone(),
        gateway: cfg.gateway.clone(),
        gateway_api: format!(
            "projects/{}/locations/global/apis/{gateway_id}",
            stack.settings.project
        ),
        annotations,
    }
}

/// The managed service the key is restricted to, when known (`Known::names` of the gateway).
fn target(spec: &ApiKeySpec, known: &Known) -> Option<String> {
    known.names.get(&spec.gateway).cloned().flatten()
}

pub fn create_fields(spec: &ApiKeySpec, known: &Known) -> Vec<FieldChange> {
    let targets = match target(spec, known) {
        Some(service) => FieldValue::Known(quoted_list(&[service])),
        None => FieldValue::KnownAfterApply,
    };
    let mut out = vec![
        created("display_name", quoted(&spec.display_name)),
        FieldChange::new("restricted_to", None, Some(targets)),
    ];
    for (k, v) in &spec.annotations {
        out.push(created(&format!("annotations.{k}"), quoted(v)));
    }
    out
}

pub fn diff(spec: &ApiKeySpec, live: &ApiKeyRecord, known: &Known) -> Vec<FieldChange> {
    let mut out = Vec::new();
    push_if_differs(
        &mut out,
        "display_name",
        spec.display_name.as_str(),
        live.display_name.as_str(),
        |v| quoted(v),
    );
    match target(spec, known) {
        Some(service) => push_if_differs(
            &mut out,
            "restricted_to",
            vec![service],
            live.api_targets.clone(),
            |v| quoted_list(v),
        ),
        None => out.push(FieldChange::new(
            "restricted_to",
            Some(quoted_list(&live.api_targets)),
            Some(FieldValue::KnownAfterApply),
        )),
    }
    // Written by hand since: stackctl's restrictions are the whole of them, so an update
    // would drop these; the plan says so before it does.
    if !live.other_restrictions.is_empty() {
        out.push(FieldChange::new(
            "restrictions",
            Some(format!("also {}", live.other_restrictions.join(", "))),
            Some(FieldValue::Known("api targets only".into())),
        ));
    }
    diff_labels(
        &mut out,
        "annotations",
        &spec.annotations,
        &live.annotations,
    );
    out
}

/// `api_key`: API keys, owned by annotation.
pub struct ApiKeyKind;

impl Reconcile for ApiKeyKind {
    const KIND: Kind = Kind::ApiKey;
    const TIER: u8 = 4;
    const APIS: &'static [&'static str] = &["apikeys"];
    super::server_named_by_label!(Kind::ApiKey, annotations, "annotation");
    type Spec = ApiKeySpec;
    type Live = ApiKeyRecord;
    fn declared(stack: &Stack) -> Vec<(ResourceAddr, ApiKeySpec)> {
        super::each_declared(Self::KIND, &stack.api_keys, |name, cfg| {
            spec(stack, name, cfg)
        })
    }
    fn fingerprint(live: &ApiKeyRecord) -> String {
        live.etag.clone()
    }
    fn depends_on(spec: &ApiKeySpec) -> Vec<ResourceAddr> {
        vec![spec.gateway.clone()]
    }
    fn create_fields(spec: &ApiKeySpec, known: &Known) -> Vec<FieldChange> {
        create_fields(spec, known)
    }
    fn diff(spec: &ApiKeySpec, live: &ApiKeyRecord, known: &Known) -> Vec<FieldChange> {
        diff(spec, live, known)
    }
}

/// The key as stackctl writes it, restricted to the gateway's managed service.
async fn write_of(
    ctx: &ApplyCtx,
    spec: &ApiKeySpec,
    annotations: &BTreeMap<String, String>,
    observer: &dyn OperationObserver,
) -> Result<ApiKeyWrite, StepError> {
    let known = ctx.names.lock().await.get(&spec.gateway).cloned();
    let service = match known {
        Some(service) => service,
        None => ctx
            .cloud
            .get_gateway_api(&spec.gateway_api, observer)
            .await?
            .map(|api| api.managed_service)
            .ok_or_else(|| {
                StepError::Plan(format!(
                    "{} has no api yet ({}), so the key cannot be restricted to it; re-run apply",
                    spec.gateway, spec.gateway_api
                ))
            })?,
    };
    Ok(ApiKeyWrite {
        display_name: spec.display_name.clone(),
        api_targets: vec![service],
        annotations: annotations.clone(),
    })
}

impl Converge for ApiKeyKind {
    async fn write_adoption_labels(
        cloud: &crate::provider::Cloud,
        live: &Self::Live,
        labels: &BTreeMap<String, String>,
        _stack: &Stack,
    ) -> Result<(), crate::provider::ApiError> {
        use crate::provider::Silent;
        cloud.annotate_api_key(&live.name, labels, &Silent).await
    }

    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&ApiKeySpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let cloud = &ctx.cloud;
        match (change.action, spec) {
            (Action::Create, Some(spec)) => {
                let write = write_of(ctx, spec, &spec.annotations, observer).await?;
                observer.phase("creating API key");
                match cloud.create_api_key(&spec.key_id, &write, observer).await? {
                    Created::New(made) => {
                        ctx.names
                            .lock()
                            .await
                            .insert(change.address.clone(), made.name);
                    }
                    Created::Exists { error, .. } => return Err(error.into()),
                }
            }
            (Action::Update | Action::Replace, Some(spec)) => {
                let write = write_of(ctx, spec, &spec.annotations, observer).await?;
                observer.phase("updating API key");
                cloud.update_api_key(&change.name, &write, observer).await?;
            }
            (Action::Delete | Action::Retire, _) => {
                observer.phase("deleting API key");
                cloud.delete_api_key(&change.name, observer).await?;
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

    fn spec() -> ApiKeySpec {
        ApiKeySpec {
            key: "s/partner".into(),
            placeholder: "projects/p/locations/global/keys/partner".into(),
            key_id: "partner".into(),
            display_name: "partner".into(),
            gateway: ResourceAddr::new(Kind::Gateway, "crm"),
            gateway_api: "projects/p/locations/global/apis/crm".into(),
            annotations: BTreeMap::from([
                (OWNER_LABEL.into(), "s".into()),
                (NAME_LABEL.into(), "partner".into()),
            ]),
        }
    }

    fn known(service: Option<&str>) -> Known {
        Known {
            hosts: BTreeMap::new(),
            names: BTreeMap::from([(
                ResourceAddr::new(Kind::Gateway, "crm"),
                service.map(String::from),
            )]),
            project_number: None,
            ..Known::default()
        }
    }

    fn live() -> ApiKeyRecord {
        ApiKeyRecord {
            other_restrictions: vec![],
            name: "projects/123/locations/global/keys/partner".into(),
            display_name: "partner".into(),
            uid: "u-1".into(),
            api_targets: vec!["crm-abc.apigateway.p.cloud.goog".into()],
            annotations: spec().annotations,
            etag: "e1".into(),
            created: None,
        }
    }

    #[test]
    fn the_key_is_found_by_annotations_and_an_applied_key_diffs_empty() {
        assert_eq!(ApiKeyKind::live_key(&live()), ApiKeyKind::spec_key(&spec()));
        assert_eq!(
            diff(
                &spec(),
                &live(),
                &known(Some("crm-abc.apigateway.p.cloud.goog"))
            ),
            vec![]
        );
    }

    #[test]
    fn a_key_open_to_every_api_is_restricted_again() {
        let mut open = live();
        open.api_targets.clear();
        let fields = diff(
            &spec(),
            &open,
            &known(Some("crm-abc.apigateway.p.cloud.goog")),
        );
        assert_eq!(fields.len(), 1, "{fields:?}");
        assert_eq!(fields[0].field, "restricted_to");
        assert_eq!(fields[0].before.as_deref(), Some("[]"));
    }

    #[test]
    fn restrictions_stackctl_does_not_declare_show_as_dropped_by_an_update() {
        let mut limited = live();
        limited.other_restrictions = vec!["serverKeyRestrictions".into()];
        let fields = diff(
            &spec(),
            &limited,
            &known(Some("crm-abc.apigateway.p.cloud.goog")),
        );
        assert_eq!(fields.len(), 1, "{fields:?}");
        assert_eq!(fields[0].field, "restrictions");
        assert_eq!(
            fields[0].before.as_deref(),
            Some("also serverKeyRestrictions")
        );
    }

    #[test]
    fn before_the_gateway_exists_the_restriction_is_known_after_apply() {
        let fields = create_fields(&spec(), &known(None));
        assert_eq!(fields[1].after, Some(FieldValue::KnownAfterApply));
    }
}

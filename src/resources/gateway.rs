//! `gateway`: an API Gateway api, its immutable api configs and the regional gateway serving one
//! of them, reconciled as one resource: a changed document or identity is a new config, the
//! gateway moved to it, then the old config deleted (only configs this stack labelled).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    Adoption, ApplyCtx, Converge, Known, OWNER_LABEL, Reconcile, StepError, address_from_name,
    created, diff_labels, owned_labels, push_if_differs, quoted, quoted_list,
};
use crate::config::openapi;
use crate::config::{GatewayConfig, Stack};
use crate::model::change::{Action, FieldChange, FieldValue, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::Cloud;
use crate::provider::gateway::{ApiConfigWrite, GatewayRecord};
use crate::provider::retry::Created;
use crate::provider::run::OperationObserver;
use crate::state::Ledger;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewaySpec {
    /// `projects/P/locations/REGION/gateways/ID`
    pub name: String,
    /// `projects/P/locations/global/apis/ID`
    pub api: String,
    pub id: String,
    pub display_name: String,
    /// The service it forwards to; its URL fills `${BACKEND_URL}`.
    pub backend: ResourceAddr,
    /// The email the gateway calls the backend as.
    pub service_account: String,
    pub service_account_address: ResourceAddr,
    /// The rendered OpenAPI document, `${BACKEND_URL}` still in it.
    pub document: Value,
    pub document_source: String,
    pub labels: BTreeMap<String, String>,
}

pub fn spec(stack: &Stack, cfg: &GatewayConfig) -> GatewaySpec {
    let project = &stack.settings.project;
    GatewaySpec {
        name: format!(
            "projects/{project}/locations/{}/gateways/{}",
            stack.settings.region, cfg.id
        ),
        api: format!("projects/{project}/locations/global/apis/{}", cfg.id),
        id: cfg.id.clone(),
        display_name: cfg.display_name.clone(),
        backend: cfg.backend.clone(),
        service_account: super::service_account::email_of(stack, &cfg.service_account)
            .unwrap_or_default(),
        service_account_address: cfg.service_account.clone(),
        document: cfg.document.clone(),
        document_source: cfg.document_source.clone(),
        labels: owned_labels(stack, &BTreeMap::new()),
    }
}

/// The document with the backend's URL in it, when its host is known.
fn resolved_document(spec: &GatewaySpec, host: Option<&str>) -> Option<Value> {
    host.map(|h| openapi::with_backend(&spec.document, &super::service::url_of_host(h)))
}

/// `ID-` and 12 hex digits of the document and identity: a changed config is a new id, the same
/// one is found again after an interrupted apply.
pub fn config_id(id: &str, document: &Value, service_account: &str) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    hash.update(serde_json::to_vec(document).unwrap_or_default());
    hash.update(service_account.as_bytes());
    format!("{id}-{}", &hex::encode(hash.finalize())[..12])
}

/// `["POST /customers", ...]` as the document serves them.
fn routes_of(document: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(paths) = document.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            if let Some(ops) = item.as_object() {
                for method in ops
                    .keys()
                    .filter(|m| !m.starts_with("x-") && *m != "parameters")
                {
                    out.push(format!("{} {path}", method.to_ascii_uppercase()));
                }
            }
        }
    }
    out.sort();
    out
}

pub fn create_fields(spec: &GatewaySpec, known: &Known) -> Vec<FieldChange> {
    let host = known.hosts.get(&spec.backend).cloned().flatten();
    let backend = match &host {
        Some(h) => FieldValue::Known(quoted(&super::service::url_of_host(h))),
        None => FieldValue::KnownAfterApply,
    };
    let mut out = vec![
        FieldChange::new("backend", None, Some(backend)),
        created("service_account", quoted(&spec.service_account)),
        created("routes", quoted_list(&routes_of(&spec.document))),
    ];
    if let Some(limit) = openapi::requests_per_minute(&spec.document) {
        out.push(created("requests_per_minute", limit.to_string()));
    }
    out.push(created("openapi", quoted(&spec.document_source)));
    out.push(created("display_name", quoted(&spec.display_name)));
    for (k, v) in &spec.labels {
        out.push(created(&format!("labels.{k}"), quoted(v)));
    }
    out
}

/// Every leaf of `desired` that differs from `live`, as `openapi.a.b[0].c` fields (`a.b[0].c`
/// under the empty prefix); arrays of different lengths compare whole.
pub(crate) fn diff_documents(
    prefix: &str,
    desired: &Value,
    live: &Value,
    out: &mut Vec<FieldChange>,
) {
    match (desired, live) {
        (Value::Object(want), Value::Object(have)) => {
            let keys: std::collections::BTreeSet<&String> =
                want.keys().chain(have.keys()).collect();
            for key in keys {
                let field = match prefix {
                    "" => key.clone(),
                    _ => format!("{prefix}.{key}"),
                };
                match (want.get(key), have.get(key)) {
                    (Some(w), Some(h)) => diff_documents(&field, w, h, out),
                    (Some(w), None) => out.push(created(&field, w.to_string())),
                    (None, Some(h)) => out.push(FieldChange::new(field, Some(h.to_string()), None)),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(want), Value::Array(have)) if want.len() == have.len() => {
            for (index, (w, h)) in want.iter().zip(have).enumerate() {
                diff_documents(&format!("{prefix}[{index}]"), w, h, out);
            }
        }
        (want, have) if want != have => out.push(FieldChange::new(
            prefix,
            Some(have.to_string()),
            Some(FieldValue::Known(want.to_string())),
        )),
        _ => {}
    }
}

pub fn diff(spec: &GatewaySpec, live: &GatewayRecord, known: &Known) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let config = live.config.as_ref();
    let live_document = config.and_then(|c| c.document.clone());
    let host = known.hosts.get(&spec.backend).cloned().flatten();
    match (resolved_document(spec, host.as_deref()), &live_document) {
        (Some(want), Some(have)) => diff_documents("openapi", &want, have, &mut out),
        (Some(_), None) => out.push(FieldChange::new(
            "openapi",
            Some("(unreadable)".into()),
            Some(FieldValue::Known(quoted(&spec.document_source))),
        )),
        (None, _) => out.push(FieldChange::new(
            "openapi.x-google-backend.address",
            None,
            Some(FieldValue::KnownAfterApply),
        )),
    }
    push_if_differs(
        &mut out,
        "service_account",
        spec.service_account.as_str(),
        config.map_or("", |c| c.gateway_service_account.as_str()),
        |v| quoted(v),
    );
    if live.api.as_ref().map(|a| a.name.as_str()) != Some(spec.api.as_str()) {
        out.push(
            FieldChange::new(
                "api",
                live.api.as_ref().map(|a| quoted(&a.name)),
                Some(FieldValue::Known(quoted(&spec.api))),
            )
            .forcing_replacement(),
        );
    }
    push_if_differs(
        &mut out,
        "display_name",
        spec.display_name.as_str(),
        live.display_name.as_str(),
        |v| quoted(v),
    );
    diff_labels(&mut out, "labels", &spec.labels, &live.labels);
    out
}

/// `gateway`: API Gateway apis, configs and gateways, owned by label.
pub struct GatewayKind;

impl Reconcile for GatewayKind {
    const KIND: Kind = Kind::Gateway;
    const TIER: u8 = 3;
    const APIS: &'static [&'static str] =
        &["apigateway", "servicemanagement", "servicecontrol", "iam"];
    const ADOPTION: Adoption = Adoption::Labels;
    fn owner_labels(live: &Self::Live) -> Option<&BTreeMap<String, String>> {
        Some(&live.labels)
    }
    type Spec = GatewaySpec;
    type Live = GatewayRecord;

    fn declared(stack: &Stack) -> Vec<(ResourceAddr, GatewaySpec)> {
        super::each_declared(Self::KIND, &stack.gateways, |_, cfg| spec(stack, cfg))
    }
    fn spec_name(spec: &GatewaySpec) -> &str {
        &spec.name
    }
    fn live_name(live: &GatewayRecord) -> &str {
        &live.name
    }
    fn address_of(live: &GatewayRecord, _: &Ledger) -> ResourceAddr {
        address_from_name(Kind::Gateway, &live.name)
    }
    fn depends_on(spec: &GatewaySpec) -> Vec<ResourceAddr> {
        vec![spec.backend.clone(), spec.service_account_address.clone()]
    }
    fn create_fields(spec: &GatewaySpec, known: &Known) -> Vec<FieldChange> {
        create_fields(spec, known)
    }
    fn diff(spec: &GatewaySpec, live: &GatewayRecord, known: &Known) -> Vec<FieldChange> {
        diff(spec, live, known)
    }
    fn estimate(
        stack: &Stack,
        prices: &crate::cost::PriceTable,
        address: &ResourceAddr,
    ) -> Option<crate::cost::Estimate> {
        stack.gateways.get(&address.name)?;
        Some(crate::cost::estimate::gateway(
            prices,
            stack.usage.gateways.get(&address.name),
            &address.to_string(),
        ))
    }
    fn change_notes(fields: &[FieldChange]) -> Vec<String> {
        let config_changes = fields
            .iter()
            .any(|f| f.field.starts_with("openapi") || f.field == "service_account");
        if config_changes {
            vec!["api configs cannot change: a new config is created, the gateway moved to it, then the old config deleted".into()]
        } else {
            vec![]
        }
    }
}

/// The api of `spec`, made when missing; an existing one must carry this stack's label.
async fn ensure_api(
    cloud: &Cloud,
    spec: &GatewaySpec,
    stack_name: &str,
    observer: &dyn OperationObserver,
) -> Result<crate::provider::gateway::GatewayApiRecord, StepError> {
    if let Some(api) = cloud.get_gateway_api(&spec.api, observer).await? {
        return owned_or_refused(api, &spec.api, stack_name, |a| &a.labels);
    }
    observer.phase("creating api");
    match cloud
        .create_gateway_api(&spec.id, &spec.display_name, &spec.labels, observer)
        .await?
    {
        Created::New(api) => Ok(api),
        Created::Exists { error, .. } => match cloud.get_gateway_api(&spec.api, observer).await? {
            Some(api) => owned_or_refused(api, &spec.api, stack_name, |a| &a.labels),
            None => Err(error.into()),
        },
    }
}

fn owned_or_refused<T>(
    found: T,
    name: &str,
    stack_name: &str,
    labels: impl Fn(&T) -> &BTreeMap<String, String>,
) -> Result<T, StepError> {
    match labels(&found).get(OWNER_LABEL) {
        Some(owner) if owner == stack_name => Ok(found),
        _ => Err(StepError::Plan(format!(
            "{name} already exists and is not this stack's (no {OWNER_LABEL}={stack_name} label); give the gateway another `id`, or label it if it is yours"
        ))),
    }
}

/// The config `spec` wants, made when missing; returns its name.
async fn ensure_config(
    ctx: &ApplyCtx,
    spec: &GatewaySpec,
    stack_name: &str,
    observer: &dyn OperationObserver,
) -> Result<String, StepError> {
    let host = ctx.hosts.lock().await.get(&spec.backend).cloned();
    let document = resolved_document(spec, host.as_deref()).ok_or_else(|| {
        StepError::Plan(format!(
            "the URL of {} is unknown: that service has no URL yet; re-run apply",
            spec.backend
        ))
    })?;
    let write = ApiConfigWrite {
        api: spec.api.clone(),
        config_id: config_id(&spec.id, &document, &spec.service_account),
        display_name: spec.display_name.clone(),
        gateway_service_account: spec.service_account.clone(),
        document,
        labels: spec.labels.clone(),
    };
    let name = format!("{}/configs/{}", write.api, write.config_id);
    observer.phase("creating api config");
    match ctx.cloud.create_api_config(&write, observer).await? {
        Created::New(made) => Ok(made.name),
        Created::Exists { error, .. } => match ctx.cloud.get_api_config(&name, observer).await? {
            Some(found) => {
                owned_or_refused(found, &name, stack_name, |c| &c.labels).map(|c| c.name)
            }
            None => Err(error.into()),
        },
    }
}

/// Deletes the configs of `api` this stack labelled, except `keep`.
async fn delete_old_configs(
    cloud: &Cloud,
    api: &str,
    keep: Option<&str>,
    stack_name: &str,
    observer: &dyn OperationObserver,
) -> Result<(), StepError> {
    for config in cloud.list_api_configs(api, observer).await? {
        let ours = config.labels.get(OWNER_LABEL).map(String::as_str) == Some(stack_name);
        if ours && Some(config.name.as_str()) != keep {
            observer.phase("deleting old api config");
            cloud.delete_api_config(&config.name, observer).await?;
        }
    }
    Ok(())
}

impl Converge for GatewayKind {
    /// Labels the gateway, its api and the config it serves: apply later deletes only labelled
    /// configs and apis.
    async fn write_adoption_labels(
        cloud: &Cloud,
        live: &Self::Live,
        labels: &BTreeMap<String, String>,
        _stack: &Stack,
    ) -> Result<(), crate::provider::ApiError> {
        use crate::provider::Silent;
        let owner: BTreeMap<String, String> = labels
            .iter()
            .filter(|(k, _)| k.as_str() == OWNER_LABEL)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(api) = &live.api {
            let mut api_labels = api.labels.clone();
            api_labels.extend(owner.clone());
            cloud
                .label_gateway_api(&api.name, &api_labels, &Silent)
                .await?;
        }
        if let Some(config) = &live.config {
            let mut config_labels = config.labels.clone();
            config_labels.extend(owner);
            cloud
                .label_api_config(&config.name, &config_labels, &Silent)
                .await?;
        }
        cloud
            .update_gateway(
                &live.name,
                &live.api_config,
                &live.display_name,
                labels,
                &Silent,
            )
            .await
            .map(drop)
    }

    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&GatewaySpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let cloud = &ctx.cloud;
        match (change.action, spec) {
            (Action::Create | Action::Update | Action::Replace, Some(spec)) => {
                let stack_name = spec.labels.get(OWNER_LABEL).cloned().unwrap_or_default();
                let api = ensure_api(cloud, spec, &stack_name, observer).await?;
                observer.phase("enabling the api's managed service");
                cloud
                    .enable_api(
                        &format!(
                            "projects/{}/services/{}",
                            cloud.project, api.managed_service
                        ),
                        observer,
                    )
                    .await?;
                ctx.names
                    .lock()
                    .await
                    .insert(change.address.clone(), api.managed_service.clone());
                let config = ensure_config(ctx, spec, &stack_name, observer).await?;
                // A create that finds the gateway made (by an earlier, interrupted apply) moves
                // it to this config like an update does.
                let made = change.action == Action::Create && {
                    observer.phase("creating gateway");
                    let created = cloud
                        .create_gateway(
                            &spec.id,
                            &config,
                            &spec.display_name,
                            &spec.labels,
                            observer,
                        )
                        .await?;
                    matches!(created, Created::New(_))
                };
                if !made {
                    observer.phase("moving gateway to the config");
                    cloud
                        .update_gateway(
                            &spec.name,
                            &config,
                            &spec.display_name,
                            &spec.labels,
                            observer,
                        )
                        .await?;
                }
                delete_old_configs(cloud, &spec.api, Some(&config), &stack_name, observer).await?;
            }
            (Action::Delete | Action::Retire, _) => {
                // The plan deletes only gateways this stack labelled; their configs and api go
                // with them when they carry the same label.
                let found = cloud.list_gateways(observer).await?;
                let Some(gateway) = found.into_iter().find(|g| g.name == change.name) else {
                    return Ok(());
                };
                let stack_name = gateway.labels.get(OWNER_LABEL).cloned().unwrap_or_default();
                let api = gateway
                    .api_config
                    .split("/configs/")
                    .next()
                    .unwrap_or_default()
                    .to_string();
                observer.phase("deleting gateway");
                cloud.delete_gateway(&change.name, observer).await?;
                if !api.is_empty() && !stack_name.is_empty() {
                    delete_old_configs(cloud, &api, None, &stack_name, observer).await?;
                    if let Some(found) = cloud.get_gateway_api(&api, observer).await?
                        && found.labels.get(OWNER_LABEL) == Some(&stack_name)
                    {
                        observer.phase("deleting api");
                        cloud.delete_gateway_api(&api, observer).await?;
                    }
                }
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
    use crate::provider::gateway::{ApiConfigRecord, GatewayApiRecord};

    fn spec() -> GatewaySpec {
        let routes = vec!["POST /customers".parse().unwrap()];
        let document = openapi::render(
            openapi::DEFAULT_TEMPLATE,
            &openapi::Fill {
                title: "crm",
                requests_per_minute: 60,
                routes: &routes,
            },
        )
        .unwrap();
        GatewaySpec {
            name: "projects/p/locations/us-central1/gateways/crm".into(),
            api: "projects/p/locations/global/apis/crm".into(),
            id: "crm".into(),
            display_name: "crm".into(),
            backend: ResourceAddr::new(Kind::Service, "crm-proxy"),
            service_account: "gw@p.iam.gserviceaccount.com".into(),
            service_account_address: ResourceAddr::new(Kind::ServiceAccount, "gw"),
            document,
            document_source: openapi::DEFAULT_TEMPLATE_PATH.into(),
            labels: BTreeMap::from([(OWNER_LABEL.into(), "s".into())]),
        }
    }

    fn known() -> Known {
        Known {
            hosts: BTreeMap::from([(
                ResourceAddr::new(Kind::Service, "crm-proxy"),
                Some("crm-proxy-abc-uc.a.run.app".into()),
            )]),
            names: BTreeMap::new(),
            project_number: None,
            ..Known::default()
        }
    }

    fn live(spec: &GatewaySpec) -> GatewayRecord {
        let document = resolved_document(spec, Some("crm-proxy-abc-uc.a.run.app")).unwrap();
        GatewayRecord {
            name: spec.name.clone(),
            display_name: spec.display_name.clone(),
            labels: spec.labels.clone(),
            api_config: format!("{}/configs/crm-1", spec.api),
            default_hostname: "crm-abc.uc.gateway.dev".into(),
            state: "ACTIVE".into(),
            created: None,
            api: Some(GatewayApiRecord {
                name: spec.api.clone(),
                managed_service: "crm-abc.apigateway.p.cloud.goog".into(),
                display_name: "crm".into(),
                labels: spec.labels.clone(),
            }),
            config: Some(ApiConfigRecord {
                name: format!("{}/configs/crm-1", spec.api),
                gateway_service_account: spec.service_account.clone(),
                labels: spec.labels.clone(),
                document: Some(document),
            }),
        }
    }

    #[test]
    fn the_applied_gateway_diffs_empty_and_one_changed_limit_shows_exactly_it() {
        let spec = spec();
        assert_eq!(diff(&spec, &live(&spec), &known()), vec![]);
        let mut tighter = spec.clone();
        tighter.document["x-google-management"]["quota"]["limits"][0]["values"]["STANDARD"] =
            serde_json::json!(10);
        let fields = diff(&tighter, &live(&spec), &known());
        assert_eq!(fields.len(), 1, "{fields:?}");
        assert_eq!(
            fields[0].field,
            "openapi.x-google-management.quota.limits[0].values.STANDARD"
        );
        assert!(!GatewayKind::change_notes(&fields).is_empty());
    }

    #[test]
    fn a_new_route_or_identity_is_a_new_config_id() {
        let spec = spec();
        let document = resolved_document(&spec, Some("h.a.run.app")).unwrap();
        let id = config_id("crm", &document, &spec.service_account);
        assert!(id.starts_with("crm-") && id.len() == 16, "{id}");
        assert_ne!(
            id,
            config_id("crm", &document, "other@p.iam.gserviceaccount.com")
        );
        let mut more = document.clone();
        more["paths"]["/orders"] = serde_json::json!({"get": {}});
        assert_ne!(id, config_id("crm", &more, &spec.service_account));
        assert_eq!(id, config_id("crm", &document, &spec.service_account));
    }

    #[test]
    fn a_create_shows_the_backend_url_known_after_apply_until_the_service_exists() {
        let spec = spec();
        let unknown = Known {
            hosts: BTreeMap::new(),
            names: BTreeMap::new(),
            project_number: None,
            ..Known::default()
        };
        let fields = create_fields(&spec, &unknown);
        assert_eq!(fields[0].after, Some(FieldValue::KnownAfterApply));
        let fields = create_fields(&spec, &known());
        assert_eq!(
            fields[0].after,
            Some(FieldValue::Known(
                "\"https://crm-proxy-abc-uc.a.run.app\"".into()
            ))
        );
        assert_eq!(
            fields[2].after,
            Some(FieldValue::Known("[\"POST /customers\"]".into()))
        );
    }
}

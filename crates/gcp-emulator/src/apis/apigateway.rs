//! API Gateway v1: APIs, API configs (OpenAPI 2.0 documents, checked at creation as Google
//! checks them) and gateways; creates, patches and deletes are long-running operations, with
//! Google's immutable fields and its refusals to delete what is still in use. The local front
//! that serves a gateway is `runtime::gateways`.

use serde_json::{Map, Value, json};

use super::collection::{Collection, is_label_id, ordered};
use super::lro::{self, NewOperation, as_any};
use super::{Call, Context, Reply, project_number};
use crate::conventions::ApiError;
use crate::conventions::field_mask::FieldMask;
use crate::conventions::paging::PagePolicy;
use crate::conventions::wire::{base64_decode, stable_hash, timestamp};
use crate::discovery::Api;
use crate::state::{OperationKind, State};

const TYPE_PREFIX: &str = "type.googleapis.com/google.cloud.apigateway.v1.";
const EMPTY_TYPE_URL: &str = "type.googleapis.com/google.protobuf.Empty";

const fn policy(token_kind: &'static str) -> PagePolicy {
    PagePolicy {
        default_size: 100,
        max_size: 1000,
        size_param: "pageSize",
        token_kind,
    }
}

const APIS: Collection = Collection {
    field: "apis",
    policy: policy("apis"),
    map: |state| &state.gateway_apis,
    map_mut: |state| &mut state.gateway_apis,
    not_found,
};
const CONFIGS: Collection = Collection {
    field: "apiConfigs",
    policy: policy("apiConfigs"),
    map: |state| &state.gateway_configs,
    map_mut: |state| &mut state.gateway_configs,
    not_found,
};
const GATEWAYS: Collection = Collection {
    field: "gateways",
    policy: policy("gateways"),
    map: |state| &state.gateways,
    map_mut: |state| &mut state.gateways,
    not_found,
};

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Resource '{name}' was not found"))
}

fn invalid(message: String) -> ApiError {
    ApiError::invalid_argument(message)
}

/// The proto field order of each resource (the order real responses use).
const API_ORDER: &[&str] = &[
    "name",
    "createTime",
    "updateTime",
    "labels",
    "displayName",
    "managedService",
    "state",
];
const CONFIG_ORDER: &[&str] = &[
    "name",
    "createTime",
    "updateTime",
    "labels",
    "displayName",
    "gatewayServiceAccount",
    "serviceConfigId",
    "state",
    "openapiDocuments",
    "grpcServices",
    "managedServiceConfigs",
];
const GATEWAY_ORDER: &[&str] = &[
    "name",
    "createTime",
    "updateTime",
    "labels",
    "displayName",
    "apiConfig",
    "state",
    "defaultHostname",
];

fn api_name(call: &Call<'_>) -> Result<String, ApiError> {
    Ok(format!(
        "{}/apis/{}",
        call.location_name()?,
        call.param("apisId")?
    ))
}

fn config_name(call: &Call<'_>) -> Result<String, ApiError> {
    Ok(format!(
        "{}/configs/{}",
        api_name(call)?,
        call.param("configsId")?
    ))
}

fn gateway_name(call: &Call<'_>) -> Result<String, ApiError> {
    Ok(format!(
        "{}/gateways/{}",
        call.location_name()?,
        call.param("gatewaysId")?
    ))
}

/// A resource name with its project written as the project number, so names sent with the id
/// and names Google writes back with the number compare equal.
pub fn canonical(name: &str) -> String {
    let mut parts: Vec<String> = name.split('/').map(str::to_string).collect();
    if parts.len() > 1 && parts[0] == "projects" {
        parts[1] = project_number(&parts[1]);
    }
    parts.join("/")
}

/// The stored name of the resource `reference` names (by project id or number), if any.
pub fn find_named(
    map: &std::collections::BTreeMap<String, Value>,
    reference: &str,
) -> Option<String> {
    if map.contains_key(reference) {
        return Some(reference.to_string());
    }
    let wanted = canonical(reference);
    map.keys().find(|name| canonical(name) == wanted).cloned()
}

/// APIs and API configs live in `global` only; gateways in a region.
fn require_global(call: &Call<'_>) -> Result<(), ApiError> {
    let location = call.param("locationsId")?;
    if location == "global" {
        Ok(())
    } else {
        Err(invalid(format!(
            "Location '{location}' is not supported: APIs and API configs live in location 'global'."
        )))
    }
}

fn required_id<'c>(call: &'c Call<'_>, param: &str, field: &str) -> Result<&'c str, ApiError> {
    call.query
        .non_empty(param)
        .ok_or_else(|| ApiError::bad_field(field, format!("{field}: Required field is not set.")))
}

/// API and gateway ids: lowercase letters, digits and hyphens, starting with a letter, at most
/// 63 characters.
fn validate_resource_id(what: &str, id: &str) -> Result<(), ApiError> {
    if is_label_id(id, 63) {
        Ok(())
    } else {
        Err(invalid(format!(
            "Invalid {what} \"{id}\": it must be at most 63 lowercase letters, digits or hyphens, start with a letter and not end with a hyphen."
        )))
    }
}

/// API config ids: at most 63 lowercase letters, digits and hyphens, no leading hyphen.
pub fn is_config_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn operation_name(call: &Call<'_>) -> Result<String, ApiError> {
    Ok(format!(
        "{}/operations/operation-{}-{}",
        call.location_name()?,
        call.now.timestamp_millis(),
        &uuid::Uuid::new_v4().simple().to_string()[..24]
    ))
}

/// Starts the (immediately finished) operation of `verb` on `target`; `response` is the
/// resource (`type_name` in `google.cloud.apigateway.v1`), or `None` for deletes.
fn operate(
    context: &mut Context<'_>,
    call: &Call<'_>,
    verb: &str,
    target: &str,
    response: Option<(&str, &Value)>,
) -> Result<Reply, ApiError> {
    let now = timestamp(call.now);
    let final_resource = match response {
        Some((type_name, resource)) => as_any(&format!("{TYPE_PREFIX}{type_name}"), resource),
        None => json!({"@type": EMPTY_TYPE_URL}),
    };
    let metadata = as_any(
        &format!("{TYPE_PREFIX}OperationMetadata"),
        &json!({"createTime": now, "endTime": now, "target": target, "verb": verb, "apiVersion": "v1"}),
    );
    let operation = NewOperation {
        name: operation_name(call)?,
        metadata,
        kind: OperationKind::Immediate,
        target: target.to_string(),
        new_revision: None,
        final_resource: Some(final_resource),
    };
    Ok(Reply::Json(lro::start(context, operation, &now)))
}

/// Applies a patch: with a mask only its paths (each must be `mutable`); without one, the body
/// replaces the mutable fields. An immutable field sent with another value is refused.
fn patched(
    context: &Context<'_>,
    call: &Call<'_>,
    schema: &str,
    existing: &Value,
    mutable: &[&str],
) -> Result<Value, ApiError> {
    let body = call.body_or_empty();
    let mask = FieldMask::parse(
        call.query.non_empty("updateMask"),
        context.discovery,
        Api::Apigateway,
        schema,
    )?;
    let mut resource = existing.clone();
    if mask.is_empty() {
        for (field, value) in body.as_object().into_iter().flatten() {
            if field == "name" || mutable.contains(&field.as_str()) {
                continue;
            }
            if existing.get(field) != Some(value) {
                return Err(invalid(format!(
                    "Field {} is immutable: create a new resource instead.",
                    crate::conventions::wire::snake_case(field)
                )));
            }
        }
        for field in mutable {
            match body.get(*field) {
                Some(value) => resource[*field] = value.clone(),
                None => {
                    if let Value::Object(fields) = &mut resource {
                        fields.remove(*field);
                    }
                }
            }
        }
    } else {
        let raw = call.query.non_empty("updateMask").unwrap_or_default();
        for path in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let json_path = crate::conventions::wire::camel_case(path);
            let top = json_path.split('.').next().unwrap_or_default();
            if !mutable.contains(&top) {
                return Err(invalid(format!(
                    "Field {path} cannot be updated: only {} can change.",
                    mutable
                        .iter()
                        .map(|f| crate::conventions::wire::snake_case(f))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        mask.apply(&body, &mut resource);
    }
    resource["updateTime"] = json!(timestamp(call.now));
    Ok(resource)
}

// ---- APIs ----

/// `{apiId}-{13 hex}.apigateway.{project}.cloud.goog`, the managed service Google creates.
fn managed_service_name(project: &str, api_id: &str) -> String {
    let hash = &stable_hash(&["apigateway-managed-service", project, api_id])[..13];
    format!("{api_id}-{hash}.apigateway.{project}.cloud.goog")
}

pub fn create_api(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    require_global(call)?;
    let id = required_id(call, "apiId", "api_id")?;
    validate_resource_id("api id", id)?;
    let name = format!("{}/apis/{id}", call.location_name()?);
    if find_named(&context.state.gateway_apis, &name).is_some() {
        return Err(ApiError::already_exists(format!(
            "Resource '{name}' already exists"
        )));
    }
    let project = call.param("projectsId")?;
    let now = timestamp(call.now);
    let mut api = super::collection::without_name(&call.body_or_empty());
    if api
        .get("managedService")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        api.insert(
            "managedService".into(),
            json!(managed_service_name(project, id)),
        );
    }
    api.insert("name".into(), json!(name));
    api.insert("createTime".into(), json!(now));
    api.insert("updateTime".into(), json!(now));
    api.insert("state".into(), json!("ACTIVE"));
    let api = ordered(api, API_ORDER);
    APIS.store(context.state, name.clone(), api.clone());
    operate(context, call, "create", &name, Some(("Api", &api)))
}

pub fn get_api(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    APIS.get(context.state, &api_name(call)?).map(Reply::Json)
}

pub fn list_apis(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let prefix = format!("{}/apis/", call.location_name()?);
    APIS.list(context.state, &prefix, call.query)
}

pub fn patch_api(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = api_name(call)?;
    let existing = APIS.get(context.state, &name)?;
    let api = patched(
        context,
        call,
        "ApigatewayApi",
        &existing,
        &["displayName", "labels"],
    )?;
    APIS.store(context.state, name.clone(), api.clone());
    operate(context, call, "update", &name, Some(("Api", &api)))
}

pub fn delete_api(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = api_name(call)?;
    APIS.require(context.state, &name)?;
    let prefix = format!("{name}/configs/");
    if super::collection::children(&context.state.gateway_configs, &prefix)
        .next()
        .is_some()
    {
        return Err(ApiError::failed_precondition(format!(
            "Resource '{name}' has nested resources. Delete its API configs first."
        )));
    }
    APIS.remove(context.state, &name)?;
    operate(context, call, "delete", &name, None)
}

// ---- API configs ----

/// The first OpenAPI document of a config, parsed (configs are checked at creation, so a stored
/// one parses).
pub fn openapi_document(config: &Value) -> Option<Value> {
    let contents = config
        .pointer("/openapiDocuments/0/document/contents")?
        .as_str()?;
    serde_json::from_slice(&base64_decode(contents)?).ok()
}

const HTTP_METHODS: [&str; 7] = ["get", "put", "post", "delete", "options", "head", "patch"];

/// Google's checks of an OpenAPI document at config creation, as far as the emulator serves
/// them: JSON (YAML is not read), `swagger: "2.0"`, a backend for every operation, quota costs
/// naming defined metrics, apiKey definitions in a query parameter or header.
fn validate_openapi(path: &str, document: &Value) -> Result<(), ApiError> {
    let bad = |what: String| {
        invalid(format!(
            "Cannot convert to service config. File {path}: {what}"
        ))
    };
    if document.get("swagger").and_then(Value::as_str) != Some("2.0") {
        return Err(bad(
            "only OpenAPI 2.0 documents are supported (\"swagger\": \"2.0\").".into(),
        ));
    }
    let Some(paths) = document.get("paths").and_then(Value::as_object) else {
        return Err(bad("the document has no \"paths\".".into()));
    };
    let has_address = |holder: &Value| {
        holder
            .pointer("/x-google-backend/address")
            .and_then(Value::as_str)
            .is_some_and(|a| !a.is_empty())
    };
    let top_backend = has_address(document);
    let metrics: Vec<&str> = document
        .pointer("/x-google-management/metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("name").and_then(Value::as_str))
        .collect();
    for (template, item) in paths {
        for method in HTTP_METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            if !top_backend && !has_address(operation) {
                return Err(bad(format!(
                    "operation {} {template} has no backend: set x-google-backend.address at the top level or on the operation.",
                    method.to_ascii_uppercase()
                )));
            }
            let costs = operation
                .pointer("/x-google-quota/metricCosts")
                .and_then(Value::as_object);
            for metric in costs.into_iter().flat_map(|c| c.keys()) {
                if !metrics.contains(&metric.as_str()) {
                    return Err(bad(format!(
                        "operation {} {template} charges metric '{metric}', which x-google-management.metrics does not define.",
                        method.to_ascii_uppercase()
                    )));
                }
            }
        }
    }
    for (scheme, definition) in document
        .get("securityDefinitions")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if definition.get("type").and_then(Value::as_str) == Some("apiKey") {
            let place = definition.get("in").and_then(Value::as_str);
            let name = definition.get("name").and_then(Value::as_str);
            if !matches!(place, Some("query" | "header")) || name.is_none_or(str::is_empty) {
                return Err(bad(format!(
                    "security definition '{scheme}' of type apiKey needs \"name\" and \"in\": query or header."
                )));
            }
        }
    }
    Ok(())
}

fn validate_config_body(config: &Map<String, Value>) -> Result<(), ApiError> {
    if config.contains_key("grpcServices") || config.contains_key("managedServiceConfigs") {
        return Err(invalid(
            "gRPC API configs are not emulated: send openapiDocuments.".into(),
        ));
    }
    let documents = config
        .get("openapiDocuments")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    match documents {
        [] => Err(invalid(
            "api_config.openapi_documents: an API config needs an OpenAPI document.".into(),
        )),
        [only] => {
            let path = only
                .pointer("/document/path")
                .and_then(Value::as_str)
                .unwrap_or("openapi.json");
            let bytes = only
                .pointer("/document/contents")
                .and_then(Value::as_str)
                .and_then(base64_decode)
                .ok_or_else(|| {
                    invalid(format!(
                        "api_config.openapi_documents[0].document.contents of {path} is not base64."
                    ))
                })?;
            let document: Value = serde_json::from_slice(&bytes).map_err(|e| {
                invalid(format!(
                    "Cannot convert to service config. File {path} is not valid JSON ({e}); the emulator reads OpenAPI documents as JSON only."
                ))
            })?;
            validate_openapi(path, &document)
        }
        _ => Err(invalid(
            "The emulator serves API configs with exactly one OpenAPI document.".into(),
        )),
    }
}

pub fn create_config(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    require_global(call)?;
    let api = api_name(call)?;
    APIS.require(context.state, &api)?;
    let id = required_id(call, "apiConfigId", "api_config_id")?;
    if !is_config_id(id) {
        return Err(invalid(format!(
            "Invalid api config id \"{id}\": it must be at most 63 lowercase letters, digits or hyphens and must not start with a hyphen."
        )));
    }
    let name = format!("{api}/configs/{id}");
    if CONFIGS.contains(context.state, &name) {
        return Err(ApiError::already_exists(format!(
            "Resource '{name}' already exists"
        )));
    }
    let mut config = super::collection::without_name(&call.body_or_empty());
    validate_config_body(&config)?;
    let now = timestamp(call.now);
    let hash = &stable_hash(&["apigateway-service-config", &name, &now])[..13];
    config.insert("name".into(), json!(name));
    config.insert("createTime".into(), json!(now));
    config.insert("updateTime".into(), json!(now));
    config.insert("serviceConfigId".into(), json!(format!("{id}-{hash}")));
    config.insert("state".into(), json!("ACTIVE"));
    let config = ordered(config, CONFIG_ORDER);
    CONFIGS.store(context.state, name.clone(), config.clone());
    operate(context, call, "create", &name, Some(("ApiConfig", &config)))
}

/// The `BASIC` view: the config without its documents.
fn basic(mut config: Value) -> Value {
    if let Value::Object(fields) = &mut config {
        for field in ["openapiDocuments", "grpcServices", "managedServiceConfigs"] {
            fields.remove(field);
        }
    }
    config
}

pub fn get_config(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let config = CONFIGS.get(context.state, &config_name(call)?)?;
    // Query enums arrive by name or, from the proto-based clients, by number.
    Ok(Reply::Json(match call.query.non_empty("view") {
        Some("FULL" | "2") => config,
        Some("BASIC" | "CONFIG_VIEW_UNSPECIFIED" | "1" | "0") | None => basic(config),
        Some(other) => {
            return Err(ApiError::bad_field(
                "view",
                format!(
                    "Invalid value at 'view' (type.googleapis.com/google.cloud.apigateway.v1.GetApiConfigRequest.ConfigView), \"{other}\""
                ),
            ));
        }
    }))
}

pub fn list_configs(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let api = api_name(call)?;
    let prefix = format!("{api}/configs/");
    let configs: Vec<Value> = super::collection::children(&context.state.gateway_configs, &prefix)
        .cloned()
        .map(basic)
        .collect();
    super::collection::named_page(
        configs.iter().collect(),
        CONFIGS.field,
        call.query,
        CONFIGS.policy,
    )
}

pub fn patch_config(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = config_name(call)?;
    let existing = CONFIGS.get(context.state, &name)?;
    let config = patched(
        context,
        call,
        "ApigatewayApiConfig",
        &existing,
        &["displayName", "labels"],
    )?;
    CONFIGS.store(context.state, name.clone(), config.clone());
    operate(
        context,
        call,
        "update",
        &name,
        Some(("ApiConfig", &basic(config))),
    )
}

/// The gateways serving `config`.
fn gateways_using<'s>(state: &'s State, config: &str) -> impl Iterator<Item = &'s String> + 's {
    let wanted = canonical(config);
    state.gateways.iter().filter_map(move |(name, gateway)| {
        gateway
            .get("apiConfig")
            .and_then(Value::as_str)
            .is_some_and(|c| canonical(c) == wanted)
            .then_some(name)
    })
}

pub fn delete_config(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = config_name(call)?;
    CONFIGS.require(context.state, &name)?;
    if let Some(gateway) = gateways_using(context.state, &name).next() {
        return Err(ApiError::failed_precondition(format!(
            "Resource '{name}' is in use by gateway '{gateway}': point the gateway at another config first."
        )));
    }
    CONFIGS.remove(context.state, &name)?;
    operate(context, call, "delete", &name, None)
}

// ---- gateways ----

/// `{gatewayId}-{8 hex}.{region code}.gateway.dev`; region codes are Cloud Run's (us-central1
/// `uc`, us-east1 `ue`, europe-west1 `ew`, ...; other regions: the first letter of each part).
fn default_hostname(project: &str, location: &str, id: &str) -> String {
    let hash = &stable_hash(&["apigateway-hostname", project, location, id])[..8];
    let region = super::run::names::region_code(location);
    format!("{id}-{hash}.{region}.gateway.dev")
}

/// The config a gateway names must exist.
fn check_api_config(state: &State, gateway: &Value) -> Result<(), ApiError> {
    let Some(reference) = gateway
        .get("apiConfig")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
    else {
        return Err(ApiError::bad_field(
            "gateway.api_config",
            "gateway.api_config: Required field is not set.".into(),
        ));
    };
    if find_named(&state.gateway_configs, reference).is_none() {
        return Err(invalid(format!(
            "gateway.api_config: API config '{reference}' does not exist."
        )));
    }
    Ok(())
}

pub fn create_gateway(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let location = call.param("locationsId")?.to_string();
    if location == "global" {
        return Err(invalid(
            "Gateways are regional: create them in a region such as us-central1, not 'global'."
                .into(),
        ));
    }
    let id = required_id(call, "gatewayId", "gateway_id")?;
    validate_resource_id("gateway id", id)?;
    let name = format!("{}/gateways/{id}", call.location_name()?);
    if GATEWAYS.contains(context.state, &name) {
        return Err(ApiError::already_exists(format!(
            "Resource '{name}' already exists"
        )));
    }
    let body = call.body_or_empty();
    check_api_config(context.state, &body)?;
    let now = timestamp(call.now);
    let mut gateway = super::collection::without_name(&body);
    gateway.insert("name".into(), json!(name));
    gateway.insert("createTime".into(), json!(now));
    gateway.insert("updateTime".into(), json!(now));
    gateway.insert("state".into(), json!("ACTIVE"));
    gateway.insert(
        "defaultHostname".into(),
        json!(default_hostname(call.param("projectsId")?, &location, id)),
    );
    let gateway = ordered(gateway, GATEWAY_ORDER);
    GATEWAYS.store(context.state, name.clone(), gateway.clone());
    operate(context, call, "create", &name, Some(("Gateway", &gateway)))
}

pub fn get_gateway(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    GATEWAYS
        .get(context.state, &gateway_name(call)?)
        .map(Reply::Json)
}

pub fn list_gateways(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let prefix = format!("{}/gateways/", call.location_name()?);
    GATEWAYS.list(context.state, &prefix, call.query)
}

pub fn patch_gateway(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = gateway_name(call)?;
    let existing = GATEWAYS.get(context.state, &name)?;
    let gateway = patched(
        context,
        call,
        "ApigatewayGateway",
        &existing,
        &["apiConfig", "displayName", "labels"],
    )?;
    check_api_config(context.state, &gateway)?;
    GATEWAYS.store(context.state, name.clone(), gateway.clone());
    operate(context, call, "update", &name, Some(("Gateway", &gateway)))
}

pub fn delete_gateway(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = gateway_name(call)?;
    GATEWAYS.remove(context.state, &name)?;
    operate(context, call, "delete", &name, None)
}

/// The API whose managed service is `service`, if any (Service Usage enables it by name).
pub fn api_of_managed_service<'s>(state: &'s State, service: &str) -> Option<&'s Value> {
    state
        .gateway_apis
        .values()
        .find(|api| api.get("managedService").and_then(Value::as_str) == Some(service))
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::{Value, json};

    use crate::conventions::wire::base64;
    use crate::server::testing::TestEmulator;

    /// A minimal valid OpenAPI 2.0 document behind `backend`.
    pub fn document(backend: &str) -> Value {
        json!({
            "swagger": "2.0",
            "info": {"title": "orders", "version": "1"},
            "x-google-backend": {"address": backend},
            "paths": {"/orders": {"get": {"operationId": "listOrders", "responses": {"200": {"description": "ok"}}}}}
        })
    }

    pub fn config_body(document: &Value) -> Value {
        json!({
            "gatewayServiceAccount": "gateway@p1.iam.gserviceaccount.com",
            "openapiDocuments": [{"document": {"path": "openapi.json", "contents": base64(document.to_string().as_bytes())}}]
        })
    }

    const APIS: &str = "/v1/projects/p1/locations/global/apis";

    /// Starts an operation and polls it as the Rust client's poller does; the response.
    async fn operate(
        emulator: &TestEmulator,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let (status, operation) = emulator.send(method, path, body).await;
        assert_eq!(status, 200, "{method} {path}: {operation}");
        let name = operation["name"].as_str().expect("operation name");
        assert!(name.contains("/operations/operation-"), "{name}");
        let mut polled = operation.clone();
        for _ in 0..3 {
            if polled["done"] == true {
                break;
            }
            let (status, answer) = emulator.send("GET", &format!("/v1/{name}"), None).await;
            assert_eq!(status, 200, "{answer}");
            polled = answer;
        }
        assert_eq!(polled["done"], true, "{polled}");
        polled["response"].clone()
    }

    /// Creates api `orders`, config `v1` and gateway `edge` in us-central1.
    pub async fn create_stack(emulator: &TestEmulator, document: &Value) -> (Value, Value, Value) {
        let api = operate(
            emulator,
            "POST",
            &format!("{APIS}?apiId=orders"),
            Some(json!({"displayName": "Orders"})),
        )
        .await;
        let config = operate(
            emulator,
            "POST",
            &format!("{APIS}/orders/configs?apiConfigId=v1"),
            Some(config_body(document)),
        )
        .await;
        let gateway = operate(
            emulator,
            "POST",
            "/v1/projects/p1/locations/us-central1/gateways?gatewayId=edge",
            Some(json!({"apiConfig": "projects/p1/locations/global/apis/orders/configs/v1"})),
        )
        .await;
        (api, config, gateway)
    }

    #[tokio::test]
    async fn apis_configs_and_gateways_are_created_through_operations() {
        let emulator = TestEmulator::with_polls(1);
        let (api, config, gateway) =
            create_stack(&emulator, &document("https://orders-abc-uc.a.run.app")).await;
        assert_eq!(
            api["@type"],
            "type.googleapis.com/google.cloud.apigateway.v1.Api"
        );
        let service = api["managedService"].as_str().unwrap_or_default();
        assert!(
            service.starts_with("orders-") && service.ends_with(".apigateway.p1.cloud.goog"),
            "{service}"
        );
        assert_eq!(
            service.len(),
            "orders-".len() + 13 + ".apigateway.p1.cloud.goog".len()
        );
        assert_eq!(api["state"], "ACTIVE");
        assert!(
            config["serviceConfigId"]
                .as_str()
                .unwrap_or_default()
                .starts_with("v1-")
        );
        let host = gateway["defaultHostname"].as_str().unwrap_or_default();
        assert!(
            host.starts_with("edge-") && host.ends_with(".uc.gateway.dev"),
            "{host}"
        );
        let (_, basic) = emulator
            .send("GET", &format!("{APIS}/orders/configs/v1"), None)
            .await;
        assert!(basic.get("openapiDocuments").is_none(), "{basic}");
        let (_, full) = emulator
            .send("GET", &format!("{APIS}/orders/configs/v1?view=FULL"), None)
            .await;
        assert!(
            full["openapiDocuments"][0]["document"]["contents"].is_string(),
            "{full}"
        );
        let (_, listed) = emulator
            .send(
                "GET",
                "/v1/projects/p1/locations/us-central1/gateways",
                None,
            )
            .await;
        assert_eq!(listed["gateways"].as_array().map(Vec::len), Some(1));
        let (status, again) = emulator
            .send("POST", &format!("{APIS}?apiId=orders"), Some(json!({})))
            .await;
        assert_eq!(status, 409, "{again}");
    }

    #[tokio::test]
    async fn configs_keep_their_document_and_are_not_deleted_while_served() {
        let emulator = TestEmulator::with_polls(0);
        let document = document("https://orders-abc-uc.a.run.app");
        create_stack(&emulator, &document).await;
        let config = format!("{APIS}/orders/configs/v1");
        let mut changed = config_body(&document);
        changed["openapiDocuments"][0]["document"]["contents"] = json!(base64(b"{}"));
        let (status, refused) = emulator
            .send(
                "PATCH",
                &format!("{config}?updateMask=openapiDocuments"),
                Some(changed.clone()),
            )
            .await;
        assert_eq!(status, 400, "{refused}");
        let (status, refused) = emulator.send("PATCH", &config, Some(changed)).await;
        assert_eq!(status, 400, "{refused}");
        let (status, renamed) = emulator
            .send(
                "PATCH",
                &format!("{config}?updateMask=displayName"),
                Some(json!({"displayName": "first"})),
            )
            .await;
        assert_eq!(status, 200, "{renamed}");
        assert_eq!(renamed["response"]["displayName"], "first");
        let (status, in_use) = emulator.send("DELETE", &config, None).await;
        assert_eq!(status, 400, "{in_use}");
        assert_eq!(in_use["error"]["status"], "FAILED_PRECONDITION");
        let (status, nested) = emulator
            .send("DELETE", &format!("{APIS}/orders"), None)
            .await;
        assert_eq!(
            (status, &nested["error"]["status"]),
            (400, &json!("FAILED_PRECONDITION"))
        );
        let (status, _) = emulator
            .send(
                "DELETE",
                "/v1/projects/p1/locations/us-central1/gateways/edge",
                None,
            )
            .await;
        assert_eq!(status, 200);
        let (status, _) = emulator.send("DELETE", &config, None).await;
        assert_eq!(status, 200);
        let (status, _) = emulator
            .send("DELETE", &format!("{APIS}/orders"), None)
            .await;
        assert_eq!(status, 200);
    }

    #[tokio::test]
    async fn configs_are_refused_as_google_refuses_them() {
        let emulator = TestEmulator::with_polls(0);
        emulator
            .send("POST", &format!("{APIS}?apiId=orders"), Some(json!({})))
            .await;
        let mut no_backend = document("https://x.a.run.app");
        no_backend
            .as_object_mut()
            .unwrap()
            .remove("x-google-backend");
        let mut openapi3 = document("https://x.a.run.app");
        openapi3["swagger"] = json!("3.0");
        let yaml = json!({"openapiDocuments": [{"document": {"path": "o.yaml", "contents": base64(b"swagger: '2.0'\n")}}]});
        let mut unknown_field = config_body(&document("https://x.a.run.app"));
        unknown_field["gatewaySA"] = json!("x");
        for (what, id, body) in [
            ("no backend", "v1", config_body(&no_backend)),
            ("OpenAPI 3", "v1", config_body(&openapi3)),
            ("YAML", "v1", yaml),
            ("an unknown field", "v1", unknown_field),
            (
                "an underscore",
                "v_1",
                config_body(&document("https://x.a.run.app")),
            ),
            (
                "a leading hyphen",
                "-v1",
                config_body(&document("https://x.a.run.app")),
            ),
        ] {
            let (status, answer) = emulator
                .send(
                    "POST",
                    &format!("{APIS}/orders/configs?apiConfigId={id}"),
                    Some(body),
                )
                .await;
            assert_eq!(status, 400, "{what}: {answer}");
        }
        let (status, answer) = emulator
            .send(
                "POST",
                "/v1/projects/p1/locations/us-central1/gateways?gatewayId=edge",
                Some(json!({"apiConfig": "projects/p1/locations/global/apis/orders/configs/none"})),
            )
            .await;
        assert_eq!(status, 400, "{answer}");
    }

    #[tokio::test]
    async fn operations_answer_as_api_gateway_even_where_paths_are_shared() {
        // `v1/projects/*/locations/*/operations/*` is Artifact Registry's path too.
        let emulator = TestEmulator::new(crate::Settings {
            operation_polls: 1,
            enforce_services: true,
            ..crate::Settings::default()
        });
        emulator
            .send(
                "POST",
                "/v1/projects/p1/services/apigateway.googleapis.com:enable",
                Some(json!({})),
            )
            .await;
        let (status, operation) = emulator
            .send("POST", &format!("{APIS}?apiId=orders"), Some(json!({})))
            .await;
        assert_eq!(status, 200, "{operation}");
        let name = operation["name"].as_str().unwrap_or_default();
        let poll = format!("/v1/{name}?%24alt=json%3Benum-encoding%3Dint");
        emulator.send("GET", &poll, None).await;
        let (status, done) = emulator.send("GET", &poll, None).await;
        assert_eq!(status, 200, "{done}");
        assert_eq!(done["response"]["state"], 2, "ACTIVE as its number: {done}");
    }

    #[tokio::test]
    async fn a_gateway_managed_service_can_be_enabled_by_name() {
        let emulator = TestEmulator::with_polls(0);
        let (api, _, _) = create_stack(&emulator, &document("https://x.a.run.app")).await;
        let service = api["managedService"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (status, _) = emulator
            .send(
                "POST",
                &format!("/v1/projects/p1/services/{service}:enable"),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 200);
        let (_, got) = emulator
            .send("GET", &format!("/v1/projects/p1/services/{service}"), None)
            .await;
        assert_eq!(
            (&got["state"], &got["config"]["title"]),
            (&json!("ENABLED"), &json!("Orders"))
        );
        let (status, _) = emulator
            .send(
                "POST",
                "/v1/projects/p1/services/nope-1.apigateway.p1.cloud.goog:enable",
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 403);
    }
}

//! Cloud Run Admin v2 services, their revisions, and the long-running operations that roll them
//! out: server defaults, generation/revision bookkeeping, readiness conditions, traffic, and
//! operations that stay `done: false` for a configurable number of polls.

use serde_json::{Map, Value, json};

use super::lro::{self, NewOperation, as_any};
use super::{Call, Context, Reply, project_number};
use crate::conventions::ApiError;
use crate::conventions::field_mask::FieldMask;
use crate::conventions::paging::PagePolicy;
use crate::conventions::payload::is_output_only;
use crate::conventions::wire::{parse_duration_nanos, stable_hash, timestamp};
use crate::discovery::Api;
use crate::state::{OperationKind, ServiceRecord, State};

const SERVICE_SCHEMA: &str = "GoogleCloudRunV2Service";
pub const SERVICE_TYPE_URL: &str = "type.googleapis.com/google.cloud.run.v2.Service";
/// An image containing this marker makes its revision fail to become ready.
pub const FAILING_IMAGE_MARKER: &str = "emulator-fail";
pub(crate) const MODIFIER: &str = "emulator@stackctl.local";

const SERVICES_POLICY: PagePolicy = PagePolicy {
    default_size: 100,
    max_size: 1000,
    size_param: "pageSize",
    token_kind: "services",
};
const REVISIONS_POLICY: PagePolicy = PagePolicy {
    default_size: 100,
    max_size: 1000,
    size_param: "pageSize",
    token_kind: "revisions",
};
/// Service fields in proto field-number order (the order real responses use).
const SERVICE_FIELD_ORDER: &[&str] = &[
    "name",
    "description",
    "uid",
    "generation",
    "labels",
    "annotations",
    "createTime",
    "updateTime",
    "deleteTime",
    "expireTime",
    "creator",
    "lastModifier",
    "client",
    "clientVersion",
    "ingress",
    "launchStage",
    "binaryAuthorization",
    "template",
    "traffic",
    "scaling",
    "invokerIamDisabled",
    "defaultUriDisabled",
    "urls",
    "customAudiences",
    "observedGeneration",
    "terminalCondition",
    "conditions",
    "latestReadyRevision",
    "latestCreatedRevision",
    "trafficStatuses",
    "uri",
    "satisfiesPzs",
    "buildConfig",
    "reconciling",
    "etag",
];

const LATEST: &str = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST";
const BY_REVISION: &str = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION";

/// The parts of a service name.
struct ServiceName {
    project: String,
    location: String,
    id: String,
    full: String,
}

impl ServiceName {
    fn new(project: &str, location: &str, id: &str) -> Result<Self, ApiError> {
        validate_service_id(id)?;
        Ok(Self {
            project: project.to_string(),
            location: location.to_string(),
            id: id.to_string(),
            full: format!("projects/{project}/locations/{location}/services/{id}"),
        })
    }

    fn from_path(call: &Call<'_>) -> Result<Self, ApiError> {
        Self::new(
            call.param("projectsId")?,
            call.param("locationsId")?,
            call.param("servicesId")?,
        )
    }

    fn revision(&self, revision_id: &str) -> String {
        format!("{}/revisions/{revision_id}", self.full)
    }
}

fn validate_service_id(id: &str) -> Result<(), ApiError> {
    let bytes = id.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= 49
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.last() != Some(&b'-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid_argument(format!(
            "Invalid service id \"{id}\": it must be 1-49 lowercase letters, digits or hyphens, start with a letter \
             and not end with a hyphen."
        )))
    }
}

fn service_not_found(name: &ServiceName) -> ApiError {
    ApiError::not_found(format!(
        "Resource '{}' of kind 'SERVICE' in region '{}' in project '{}' does not exist.",
        name.id, name.location, name.project
    ))
}

/// Service properties a client may set (not output only; `name`/`etag` are handled apart).
fn settable_service_fields(context: &Context<'_>) -> Vec<String> {
    context
        .discovery
        .schema(Api::CloudRun, SERVICE_SCHEMA)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|properties| {
            properties
                .iter()
                .filter(|(name, property)| {
                    !is_output_only(property) && name.as_str() != "name" && name.as_str() != "etag"
                })
                .map(|(name, _)| name.clone())
                .collect()
        })
        .unwrap_or_default()
}

fn spec_of(context: &Context<'_>, service: &Value) -> Map<String, Value> {
    settable_service_fields(context)
        .into_iter()
        .filter_map(|field| service.get(&field).map(|v| (field, v.clone())))
        .collect()
}

fn region_code(location: &str) -> String {
    let known = [
        ("us-central1", "uc"),
        ("us-east1", "ue"),
        ("us-east4", "uk"),
        ("us-west1", "uw"),
        ("europe-west1", "ew"),
        ("europe-west2", "nw"),
        ("europe-west3", "ey"),
        ("europe-west4", "ez"),
        ("asia-east1", "de"),
        ("asia-northeast1", "an"),
    ];
    known
        .iter()
        .find(|(region, _)| *region == location)
        .map(|(_, code)| (*code).to_string())
        .unwrap_or_else(|| {
            location
                .split('-')
                .filter_map(|part| part.chars().next())
                .collect()
        })
}

/// `https://ID-<10 hex of the project>-<region code>.a.run.app`, plus the project-number form.
fn service_urls(name: &ServiceName) -> (String, Vec<String>) {
    let number = project_number(&name.project);
    let project_hash = &stable_hash(&["run-url", &number])[..10];
    let uri = format!(
        "https://{}-{project_hash}-{}.a.run.app",
        name.id,
        region_code(&name.location)
    );
    let deterministic = format!("https://{}-{number}.{}.run.app", name.id, name.location);
    (uri.clone(), vec![deterministic, uri])
}

pub(crate) fn condition(kind: &str, state: &str, now: &str, message: Option<&str>) -> Value {
    let mut condition = json!({ "type": kind, "state": state });
    if let Some(message) = message {
        condition["message"] = json!(message);
    }
    condition["lastTransitionTime"] = json!(now);
    condition
}

/// Fills the template defaults the real API echoes.
fn template_with_defaults(template: &Value, project: &str) -> Value {
    let mut template = template.as_object().cloned().unwrap_or_default();
    let any_ports = template
        .get("containers")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("ports")
                    .is_some_and(|p| p.as_array().is_some_and(|p| !p.is_empty()))
            })
        });
    if let Some(Value::Array(containers)) = template.get_mut("containers") {
        for (index, container) in containers.iter_mut().enumerate() {
            let Value::Object(container) = container else {
                continue;
            };
            // Cloud Run: cpuIdle is true by default only when `resources` is absent; a request that
            // sets resources without cpuIdle gets CPU always allocated (cpuIdle false, omitted).
            let resources_given = container.contains_key("resources");
            let resources = container.entry("resources").or_insert_with(|| json!({}));
            if let Value::Object(resources) = resources {
                let limits = resources.entry("limits").or_insert_with(|| json!({}));
                if let Value::Object(limits) = limits {
                    limits.entry("cpu").or_insert_with(|| json!("1000m"));
                    limits.entry("memory").or_insert_with(|| json!("512Mi"));
                }
                if !resources_given {
                    resources.entry("cpuIdle").or_insert(json!(true));
                }
            }
            if index == 0 && !any_ports {
                container.insert(
                    "ports".into(),
                    json!([{ "name": "http1", "containerPort": 8080 }]),
                );
            }
            let port = container
                .get("ports")
                .and_then(|p| p.get(0))
                .and_then(|p| p.get("containerPort"))
                .cloned()
                .unwrap_or(json!(8080));
            if index == 0 && !container.contains_key("startupProbe") {
                container.insert(
                    "startupProbe".into(),
                    json!({ "timeoutSeconds": 240, "periodSeconds": 240, "failureThreshold": 1, "tcpSocket": { "port": port } }),
                );
            }
        }
    }
    let scaling = template.entry("scaling").or_insert_with(|| json!({}));
    if let Value::Object(scaling) = scaling
        && scaling
            .get("maxInstanceCount")
            .and_then(Value::as_i64)
            .is_none_or(|v| v == 0)
    {
        scaling.insert("maxInstanceCount".into(), json!(100));
    }
    if template
        .get("timeout")
        .and_then(Value::as_str)
        .and_then(parse_duration_nanos)
        .is_none_or(|n| n == 0)
    {
        template.insert("timeout".into(), json!("300s"));
    }
    if template
        .get("serviceAccount")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        template.insert(
            "serviceAccount".into(),
            json!(format!(
                "{}-compute@developer.gserviceaccount.com",
                project_number(project)
            )),
        );
    }
    if template
        .get("maxInstanceRequestConcurrency")
        .and_then(Value::as_i64)
        .is_none_or(|v| v == 0)
    {
        template.insert("maxInstanceRequestConcurrency".into(), json!(80));
    }
    Value::Object(template)
}

fn without_revision_name(template: &Value) -> Value {
    let mut template = template.clone();
    if let Value::Object(fields) = &mut template {
        fields.remove("revision");
    }
    template
}

pub(crate) fn failing_image(template: &Value) -> Option<String> {
    template
        .get("containers")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|c| c.get("image").and_then(Value::as_str))
        .find(|image| image.contains(FAILING_IMAGE_MARKER))
        .map(str::to_string)
}

fn validate_template(template: Option<&Value>) -> Result<(), ApiError> {
    let containers = template
        .and_then(|t| t.get("containers"))
        .and_then(Value::as_array);
    let Some(containers) = containers.filter(|c| !c.is_empty()) else {
        return Err(ApiError::bad_field(
            "service.template.containers",
            "service.template.containers: at least one container must be specified.".into(),
        ));
    };
    for (index, container) in containers.iter().enumerate() {
        if container
            .get("image")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            let field = format!("service.template.containers[{index}].image");
            return Err(ApiError::bad_field(
                &field,
                format!("{field}: Required field is not set."),
            ));
        }
    }
    Ok(())
}

fn validate_traffic(
    traffic: &[Value],
    name: &ServiceName,
    known_revisions: &[String],
) -> Result<(), ApiError> {
    let mut total = 0;
    for target in traffic {
        total += target.get("percent").and_then(Value::as_i64).unwrap_or(0);
        let kind = target.get("type").and_then(Value::as_str).unwrap_or("");
        if kind == BY_REVISION {
            let revision = target.get("revision").and_then(Value::as_str).unwrap_or("");
            if !known_revisions
                .iter()
                .any(|known| known == &name.revision(revision))
            {
                return Err(ApiError::invalid_argument(format!(
                    "Revision '{revision}' referenced in traffic does not exist for service '{}'.",
                    name.id
                )));
            }
        } else if kind != LATEST {
            return Err(ApiError::invalid_argument(
                "traffic[].type must be LATEST or REVISION.",
            ));
        }
    }
    if total != 100 {
        return Err(ApiError::invalid_argument(format!(
            "Traffic percents must add up to 100, got {total}."
        )));
    }
    Ok(())
}

pub(crate) fn ordered(mut fields: Map<String, Value>, order: &[&str]) -> Value {
    let mut out = Map::new();
    for field in order {
        if let Some(value) = fields.remove(*field) {
            out.insert((*field).to_string(), value);
        }
    }
    out.extend(fields);
    Value::Object(out)
}

fn service_etag(uid: &str, generation: i64) -> String {
    let digest = stable_hash(&["service-etag", uid, &generation.to_string()]);
    format!("\"{}\"", &digest[..24])
}

fn revision_suffix(service: &str, counter: u32, template: &Value) -> String {
    let digest = stable_hash(&[
        "revision",
        service,
        &counter.to_string(),
        &template.to_string(),
    ]);
    digest
        .bytes()
        .take(3)
        .map(|b| char::from(b'a' + b % 26))
        .collect()
}

/// The outcome of applying a requested spec to (maybe) an existing service.
struct Rollout {
    service: Value,
    new_revision: Option<(String, Value)>,
}

/// Computes the next service state for `spec` (create when `existing` is `None`).
fn plan_rollout(
    context: &Context<'_>,
    call: &Call<'_>,
    name: &ServiceName,
    existing: Option<&ServiceRecord>,
    mut spec: Map<String, Value>,
) -> Result<Rollout, ApiError> {
    let now = timestamp(call.now);
    validate_template(spec.get("template"))?;
    let template =
        template_with_defaults(spec.get("template").unwrap_or(&Value::Null), &name.project);
    spec.insert("template".into(), template.clone());
    if spec
        .get("ingress")
        .and_then(Value::as_str)
        .is_none_or(|v| v == "INGRESS_TRAFFIC_UNSPECIFIED")
    {
        spec.insert("ingress".into(), json!("INGRESS_TRAFFIC_ALL"));
    }
    if spec
        .get("launchStage")
        .and_then(Value::as_str)
        .is_none_or(|v| v == "LAUNCH_STAGE_UNSPECIFIED")
    {
        spec.insert("launchStage".into(), json!("GA"));
    }
    if spec
        .get("traffic")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        spec.insert(
            "traffic".into(),
            json!([{ "type": LATEST, "percent": 100 }]),
        );
    }

    let previous_service = existing.map(|record| &record.service);
    let revision_templates = existing
        .map(|r| r.revision_templates.clone())
        .unwrap_or_default();
    let old_template = previous_service.and_then(|s| s.get("template"));
    let requested_revision = template
        .get("revision")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty());
    let mut new_revision = None;
    let mut latest_created = previous_service
        .and_then(|s| s.get("latestCreatedRevision"))
        .cloned();
    if let Some(requested) = requested_revision {
        if !requested.starts_with(&format!("{}-", name.id)) {
            return Err(ApiError::invalid_argument(format!(
                "Revision name '{requested}' must be prefixed by the service name '{}-'.",
                name.id
            )));
        }
        let full = name.revision(requested);
        match revision_templates.get(&full) {
            Some(known) if without_revision_name(known) != without_revision_name(&template) => {
                return Err(ApiError::already_exists(format!(
                    "Revision named '{requested}' with different configuration already exists."
                )));
            }
            Some(_) => latest_created = Some(json!(full)),
            None => new_revision = Some(full),
        }
    } else if old_template.map(without_revision_name) != Some(without_revision_name(&template)) {
        // Leaving out a name the last revision had is not a new configuration.
        let counter = existing.map_or(0, |r| r.revision_count) + 1;
        let suffix = revision_suffix(&name.full, counter, &template);
        new_revision = Some(name.revision(&format!("{}-{counter:05}-{suffix}", name.id)));
    }

    let mut known_revisions: Vec<String> = revision_templates.keys().cloned().collect();
    known_revisions.extend(new_revision.clone());
    validate_traffic(
        spec.get("traffic")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice),
        name,
        &known_revisions,
    )?;

    let previous_spec = previous_service.map(|s| spec_of(context, s));
    let spec_changed = previous_spec.as_ref() != Some(&spec);
    let previous_generation = previous_service
        .and_then(|s| s.get("generation"))
        .and_then(Value::as_str)
        .and_then(|g| g.parse::<i64>().ok())
        .unwrap_or(0);
    let generation = if spec_changed || existing.is_none() {
        previous_generation + 1
    } else {
        previous_generation
    };

    let mut service = match previous_service {
        Some(previous) => {
            let mut fields = previous.as_object().cloned().unwrap_or_default();
            for field in settable_service_fields(context) {
                fields.remove(&field);
            }
            fields
        }
        None => {
            let uid = uuid::Uuid::new_v4().to_string();
            let (uri, urls) = service_urls(name);
            let mut fields = Map::new();
            fields.insert("name".into(), json!(name.full));
            fields.insert("uid".into(), json!(uid));
            fields.insert("createTime".into(), json!(now));
            fields.insert("creator".into(), json!(MODIFIER));
            fields.insert("uri".into(), json!(uri));
            fields.insert("urls".into(), json!(urls));
            fields
        }
    };
    service.extend(spec);
    if let Some(revision) = &new_revision {
        latest_created = Some(json!(revision));
    }
    if let Some(latest_created) = latest_created {
        service.insert("latestCreatedRevision".into(), latest_created);
    }
    let uid = service
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    service.insert("generation".into(), json!(generation.to_string()));
    service.insert("etag".into(), json!(service_etag(&uid, generation)));
    if spec_changed || existing.is_none() {
        service.insert("updateTime".into(), json!(now));
        service.insert("lastModifier".into(), json!(MODIFIER));
    }
    service.insert("reconciling".into(), json!(true));
    service.insert(
        "terminalCondition".into(),
        condition("Ready", "CONDITION_RECONCILING", &now, None),
    );
    service.insert(
        "conditions".into(),
        json!([
            condition("RoutesReady", "CONDITION_RECONCILING", &now, None),
            condition("ConfigurationsReady", "CONDITION_RECONCILING", &now, None),
        ]),
    );
    let new_revision = new_revision.map(|full| (full, template.clone()));
    Ok(Rollout {
        service: ordered(service, SERVICE_FIELD_ORDER),
        new_revision,
    })
}

fn build_revision(name: &ServiceName, revision_name: &str, template: &Value, now: &str) -> Value {
    let mut revision = Map::new();
    revision.insert("name".into(), json!(revision_name));
    revision.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    revision.insert("generation".into(), json!("1"));
    for field in ["labels", "annotations"] {
        if let Some(value) = template.get(field) {
            revision.insert(field.into(), value.clone());
        }
    }
    revision.insert("createTime".into(), json!(now));
    revision.insert("updateTime".into(), json!(now));
    revision.insert("launchStage".into(), json!("GA"));
    revision.insert("service".into(), json!(name.full));
    if let Value::Object(fields) = template {
        for (key, value) in fields {
            if !matches!(
                key.as_str(),
                "revision" | "labels" | "annotations" | "client" | "clientVersion"
            ) {
                revision.insert(key.clone(), value.clone());
            }
        }
    }
    revision.insert("reconciling".into(), json!(true));
    revision.insert(
        "conditions".into(),
        json!([condition("Ready", "CONDITION_RECONCILING", now, None)]),
    );
    revision.insert("observedGeneration".into(), json!("1"));
    revision.insert(
        "etag".into(),
        json!(format!(
            "\"{}\"",
            &stable_hash(&["revision-etag", revision_name])[..24]
        )),
    );
    Value::Object(revision)
}

/// Stores the rollout, creates its revision, and starts (or finishes) its operation.
fn start_rollout(
    context: &mut Context<'_>,
    call: &Call<'_>,
    name: &ServiceName,
    rollout: Rollout,
) -> Value {
    let now = timestamp(call.now);
    let record = context.state.services.entry(name.full.clone()).or_default();
    record.service = rollout.service.clone();
    let new_revision = rollout.new_revision.map(|(revision_name, template)| {
        record.revision_count += 1;
        record
            .revision_templates
            .insert(revision_name.clone(), template.clone());
        context.state.revisions.insert(
            revision_name.clone(),
            build_revision(name, &revision_name, &template, &now),
        );
        revision_name
    });
    let operation_name = format!(
        "projects/{}/locations/{}/operations/{}",
        name.project,
        name.location,
        uuid::Uuid::new_v4()
    );
    if let Some(record) = context.state.services.get_mut(&name.full) {
        record.pending_operation = Some(operation_name.clone());
    }
    lro::start(
        context,
        NewOperation {
            name: operation_name,
            metadata: as_any(SERVICE_TYPE_URL, &rollout.service),
            kind: OperationKind::CreateOrUpdateService,
            target: name.full.clone(),
            new_revision,
            final_resource: None,
        },
        &now,
    )
}

/// An operation for `validateOnly` requests: done at once, nothing persisted.
fn validate_only_operation(name: &ServiceName, service: &Value) -> Value {
    let mut service = service.clone();
    if let Value::Object(fields) = &mut service {
        fields.remove("reconciling");
    }
    json!({
        "name": format!("projects/{}/locations/{}/operations/{}", name.project, name.location, uuid::Uuid::new_v4()),
        "metadata": as_any(SERVICE_TYPE_URL, &service),
        "done": true,
        "response": as_any(SERVICE_TYPE_URL, &service),
    })
}

fn traffic_statuses(service: &Value) -> Value {
    let statuses: Vec<Value> = service
        .get("traffic")
        .and_then(Value::as_array)
        .map(|targets| {
            targets
                .iter()
                .map(|target| {
                    let mut status = Map::new();
                    for field in ["type", "revision", "percent", "tag"] {
                        if let Some(value) = target.get(field) {
                            status.insert(field.into(), value.clone());
                        }
                    }
                    if let (Some(tag), Some(uri)) = (
                        target
                            .get("tag")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty()),
                        service.get("uri").and_then(Value::as_str),
                    ) {
                        status.insert(
                            "uri".into(),
                            json!(uri.replacen("https://", &format!("https://{tag}---"), 1)),
                        );
                    }
                    Value::Object(status)
                })
                .collect()
        })
        .unwrap_or_default();
    Value::Array(statuses)
}

/// Finishes an operation: the service becomes ready (or its new revision fails).
pub fn complete_operation(state: &mut State, operation_name: &str, now: &str) {
    let Some(record) = state.operations.get(operation_name).cloned() else {
        return;
    };
    if record.operation.get("done").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let mut operation = record.operation.clone();
    match record.kind {
        OperationKind::CreateOrUpdateJob | OperationKind::RunJob | OperationKind::Immediate => {
            return;
        }
        OperationKind::DeleteService => {
            let final_resource = record.final_resource.clone().unwrap_or(Value::Null);
            operation["response"] = as_any(SERVICE_TYPE_URL, &final_resource);
        }
        OperationKind::CreateOrUpdateService => {
            let service_record = state
                .services
                .get_mut(&record.target)
                .filter(|s| s.pending_operation.as_deref() == Some(operation_name));
            let Some(service_record) = service_record else {
                operation["response"] = operation["metadata"].clone();
                operation["done"] = json!(true);
                if let Some(stored) = state.operations.get_mut(operation_name) {
                    stored.operation = operation;
                }
                return;
            };
            let failure = record.new_revision.as_ref().and_then(|revision| {
                let template = service_record.revision_templates.get(revision)?;
                let image = failing_image(template)?;
                let short = revision.rsplit('/').next().unwrap_or(revision);
                Some(format!(
                    "Revision '{short}' is not ready and cannot serve traffic. The user-provided container failed to start: \
                     image '{image}' carries the {FAILING_IMAGE_MARKER} marker."
                ))
            });
            service_record.pending_operation = None;
            let service = &mut service_record.service;
            if let Value::Object(fields) = service {
                fields.remove("reconciling");
            }
            match &failure {
                None => {
                    service["observedGeneration"] = service["generation"].clone();
                    service["latestReadyRevision"] = service["latestCreatedRevision"].clone();
                    service["trafficStatuses"] = traffic_statuses(service);
                    service["terminalCondition"] =
                        condition("Ready", "CONDITION_SUCCEEDED", now, None);
                    service["conditions"] = json!([
                        condition("RoutesReady", "CONDITION_SUCCEEDED", now, None),
                        condition("ConfigurationsReady", "CONDITION_SUCCEEDED", now, None),
                    ]);
                }
                Some(message) => {
                    let routes = if service.get("latestReadyRevision").is_some() {
                        "CONDITION_SUCCEEDED"
                    } else {
                        "CONDITION_FAILED"
                    };
                    service["terminalCondition"] =
                        condition("Ready", "CONDITION_FAILED", now, Some(message));
                    service["conditions"] = json!([
                        condition("RoutesReady", routes, now, None),
                        condition(
                            "ConfigurationsReady",
                            "CONDITION_FAILED",
                            now,
                            Some(message)
                        ),
                    ]);
                }
            }
            let final_service = ordered(
                service.as_object().cloned().unwrap_or_default(),
                SERVICE_FIELD_ORDER,
            );
            *service = final_service.clone();
            if let Some(revision_name) = &record.new_revision
                && let Some(Value::Object(revision)) = state.revisions.get_mut(revision_name)
            {
                revision.remove("reconciling");
                let conditions = match &failure {
                    None => json!([
                        condition("Ready", "CONDITION_SUCCEEDED", now, None),
                        condition("ContainerHealthy", "CONDITION_SUCCEEDED", now, None),
                        condition("ResourcesAvailable", "CONDITION_SUCCEEDED", now, None),
                    ]),
                    Some(message) => json!([
                        condition("Ready", "CONDITION_FAILED", now, Some(message)),
                        condition("ContainerHealthy", "CONDITION_FAILED", now, Some(message)),
                    ]),
                };
                revision.insert("conditions".into(), conditions);
            }
            match failure {
                None => operation["response"] = as_any(SERVICE_TYPE_URL, &final_service),
                Some(message) => {
                    operation["error"] = ApiError::failed_precondition(message).to_rpc_status()
                }
            }
        }
    }
    operation["done"] = json!(true);
    if let Some(stored) = state.operations.get_mut(operation_name) {
        stored.operation = operation;
    }
}

/// Completes the service's in-flight operation before a new change is applied.
fn settle_pending(context: &mut Context<'_>, call: &Call<'_>, service_name: &str) {
    let pending = context
        .state
        .services
        .get(service_name)
        .and_then(|r| r.pending_operation.clone());
    if let Some(operation_name) = pending {
        complete_operation(context.state, &operation_name, &timestamp(call.now));
    }
}

fn request_spec(context: &Context<'_>, body: &Value) -> Map<String, Value> {
    spec_of(context, body)
}

pub fn create_service(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let service_id = call.query.non_empty("serviceId").ok_or_else(|| {
        ApiError::bad_field(
            "service_id",
            "service_id: Required field is not set.".into(),
        )
    })?;
    let name = ServiceName::new(
        call.param("projectsId")?,
        call.param("locationsId")?,
        service_id,
    )?;
    if context.state.services.contains_key(&name.full) {
        return Err(ApiError::already_exists(format!(
            "Resource '{}' already exists.",
            name.id
        )));
    }
    create_new(context, call, &name)
}

fn create_new(
    context: &mut Context<'_>,
    call: &Call<'_>,
    name: &ServiceName,
) -> Result<Reply, ApiError> {
    let body = call.body_or_empty();
    let spec = request_spec(context, &body);
    let rollout = plan_rollout(context, call, name, None, spec)?;
    if call.query_bool("validateOnly")? {
        return Ok(Reply::Json(validate_only_operation(name, &rollout.service)));
    }
    Ok(Reply::Json(start_rollout(context, call, name, rollout)))
}

pub(crate) fn check_etag(current: &Value, sent: Option<&str>) -> Result<(), ApiError> {
    let Some(sent) = sent.filter(|e| !e.is_empty()) else {
        return Ok(());
    };
    let current = current
        .get("etag")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if sent == current || sent.trim_matches('"') == current.trim_matches('"') {
        Ok(())
    } else {
        Err(ApiError::aborted(format!(
            "The etag {sent} does not match the current etag {current}: the service was modified concurrently."
        )))
    }
}

pub fn patch_service(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = ServiceName::from_path(call)?;
    let body = call.body_or_empty();
    if let Some(body_name) = body
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        && body_name != name.full
    {
        return Err(ApiError::invalid_argument(format!(
            "service.name \"{body_name}\" does not match the URL \"{}\".",
            name.full
        )));
    }
    let Some(existing) = context.state.services.get(&name.full).cloned() else {
        if call.query_bool("allowMissing")? {
            return create_new(context, call, &name);
        }
        return Err(service_not_found(&name));
    };
    check_etag(&existing.service, body.get("etag").and_then(Value::as_str))?;
    let mask = FieldMask::parse(
        call.query.non_empty("updateMask"),
        context.discovery,
        Api::CloudRun,
        SERVICE_SCHEMA,
    )?;
    let spec = if mask.is_empty() {
        request_spec(context, &body)
    } else {
        let mut merged = Value::Object(spec_of(context, &existing.service));
        mask.apply(&body, &mut merged);
        merged.as_object().cloned().unwrap_or_default()
    };
    if call.query_bool("validateOnly")? {
        let rollout = plan_rollout(context, call, &name, Some(&existing), spec)?;
        return Ok(Reply::Json(validate_only_operation(
            &name,
            &rollout.service,
        )));
    }
    settle_pending(context, call, &name.full);
    let settled = context
        .state
        .services
        .get(&name.full)
        .cloned()
        .unwrap_or(existing);
    let rollout = plan_rollout(context, call, &name, Some(&settled), spec)?;
    Ok(Reply::Json(start_rollout(context, call, &name, rollout)))
}

pub fn delete_service(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = ServiceName::from_path(call)?;
    let existing = context
        .state
        .services
        .get(&name.full)
        .cloned()
        .ok_or_else(|| service_not_found(&name))?;
    check_etag(&existing.service, call.query.non_empty("etag"))?;
    if call.query_bool("validateOnly")? {
        return Ok(Reply::Json(validate_only_operation(
            &name,
            &existing.service,
        )));
    }
    settle_pending(context, call, &name.full);
    let now = timestamp(call.now);
    let mut final_service = context
        .state
        .services
        .remove(&name.full)
        .map(|r| r.service)
        .unwrap_or(existing.service);
    if let Value::Object(fields) = &mut final_service {
        fields.remove("reconciling");
        fields.insert("deleteTime".into(), json!(now));
    }
    let final_service = ordered(
        final_service.as_object().cloned().unwrap_or_default(),
        SERVICE_FIELD_ORDER,
    );
    super::iam_policy::forget(context.state, &name.full);
    let revision_prefix = format!("{}/revisions/", name.full);
    context
        .state
        .revisions
        .retain(|revision, _| !revision.starts_with(&revision_prefix));
    let operation_name = format!(
        "projects/{}/locations/{}/operations/{}",
        name.project,
        name.location,
        uuid::Uuid::new_v4()
    );
    Ok(Reply::Json(lro::start(
        context,
        NewOperation {
            name: operation_name,
            metadata: as_any(SERVICE_TYPE_URL, &final_service),
            kind: OperationKind::DeleteService,
            target: name.full.clone(),
            new_revision: None,
            final_resource: Some(final_service),
        },
        &now,
    )))
}

pub fn get_service(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = ServiceName::from_path(call)?;
    context
        .state
        .services
        .get(&name.full)
        .map(|r| Reply::Json(r.service.clone()))
        .ok_or_else(|| service_not_found(&name))
}

pub fn list_services(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let prefix = format!("{}/services/", call.location_name()?);
    let services: Vec<&Value> = super::children(&context.state.services, &prefix)
        .map(|record| &record.service)
        .collect();
    super::named_page(services, "services", call.query, SERVICES_POLICY)
}

pub fn get_revision(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = ServiceName::from_path(call)?;
    let revision_id = call.param("revisionsId")?;
    let full = name.revision(revision_id);
    context.state.revisions.get(&full).cloned().map(Reply::Json).ok_or_else(|| {
        ApiError::not_found(format!(
            "Resource '{revision_id}' of kind 'REVISION' in region '{}' in project '{}' does not exist.",
            name.location, name.project
        ))
    })
}

pub fn list_revisions(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = ServiceName::from_path(call)?;
    if !context.state.services.contains_key(&name.full) {
        return Err(service_not_found(&name));
    }
    let prefix = format!("{}/revisions/", name.full);
    let revisions: Vec<&Value> = super::children(&context.state.revisions, &prefix).collect();
    super::named_page(revisions, "revisions", call.query, REVISIONS_POLICY)
}

pub fn service_iam(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = ServiceName::from_path(call)?;
    if !context.state.services.contains_key(&name.full) {
        return Err(service_not_found(&name));
    }
    super::iam_policy::answer(context, call, &name.full)
}

/// Ages existing services, as time passing would: `{"project": P, "services": [{"name":
/// "projects/P/locations/L/services/S", "createTime": RFC 3339}]}` (posted to
/// `/_emulator/run/services`).
pub fn seed_service_age(state: &mut crate::state::State, body: &Value) -> Result<Value, String> {
    let (_, services) = super::seeded_items(body, "services")?;
    for seeded in services {
        let name = seeded
            .get("name")
            .and_then(Value::as_str)
            .ok_or("every service needs \"name\"")?;
        let created = seeded
            .get("createTime")
            .and_then(Value::as_str)
            .filter(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
            .ok_or(format!(
                "createTime of {name} must be an RFC 3339 timestamp"
            ))?;
        let record = state
            .services
            .get_mut(name)
            .ok_or(format!("service {name} does not exist"))?;
        record.service["createTime"] = json!(created);
    }
    Ok(json!({"services": services.len()}))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::server::testing::TestEmulator;

    const PARENT: &str = "/v2/projects/p1/locations/us-central1";
    const INT_ENUMS: &str = "%24alt=json%3Benum-encoding%3Dint";

    fn service_body(image: &str) -> Value {
        json!({"template": {"containers": [{"image": image}]}, "labels": {"team": "a"}})
    }

    async fn poll_until_done(emulator: &TestEmulator, operation: &Value) -> (usize, Value) {
        let name = operation["name"]
            .as_str()
            .expect("operation name")
            .to_string();
        for polls in 1..10 {
            let (status, current) = emulator
                .send("GET", &format!("/v2/{name}?{INT_ENUMS}"), None)
                .await;
            assert_eq!(status, 200);
            if current["done"] == json!(true) {
                return (polls, current);
            }
        }
        panic!("operation never finished");
    }

    #[tokio::test]
    async fn create_returns_an_operation_that_finishes_after_the_configured_polls() {
        let emulator = TestEmulator::with_polls(1);
        let (status, operation) = emulator
            .send(
                "POST",
                &format!("{PARENT}/services?serviceId=web&validateOnly=false&{INT_ENUMS}"),
                Some(service_body("gcr.io/p1/web:1")),
            )
            .await;
        assert_eq!(status, 200, "{operation}");
        assert!(
            operation.get("done").is_none(),
            "done:false is omitted like proto3 JSON"
        );
        assert!(
            operation["name"]
                .as_str()
                .unwrap_or("")
                .starts_with("projects/p1/locations/us-central1/operations/")
        );
        assert_eq!(
            operation["metadata"]["@type"],
            "type.googleapis.com/google.cloud.run.v2.Service"
        );
        assert_eq!(operation["metadata"]["reconciling"], true);
        let (_, during) = emulator
            .send("GET", &format!("{PARENT}/services/web"), None)
            .await;
        assert_eq!(during["reconciling"], true);
        assert_eq!(
            during["terminalCondition"]["state"],
            "CONDITION_RECONCILING"
        );

        let (polls, done) = poll_until_done(&emulator, &operation).await;
        assert_eq!(polls, 2, "one GET stays done:false");
        let service = &done["response"];
        assert_eq!(
            service["@type"],
            "type.googleapis.com/google.cloud.run.v2.Service"
        );
        assert_eq!(
            service["launchStage"], 4,
            "GA is 4 in the proto, not its discovery index"
        );
        assert_eq!(service["ingress"], 1);
        assert_eq!(service["terminalCondition"]["state"], 4);
        assert_eq!(service["generation"], "1");
        assert_eq!(service["observedGeneration"], "1");
        assert!(service.get("reconciling").is_none());
        let container = &service["template"]["containers"][0];
        assert_eq!(
            container["resources"],
            json!({"limits": {"cpu": "1000m", "memory": "512Mi"}, "cpuIdle": true})
        );
        assert_eq!(service["template"]["maxInstanceRequestConcurrency"], 80);
        assert_eq!(service["template"]["timeout"], "300s");
        assert_eq!(service["template"]["scaling"]["maxInstanceCount"], 100);
        assert!(
            service["template"]["serviceAccount"]
                .as_str()
                .unwrap_or("")
                .ends_with("-compute@developer.gserviceaccount.com")
        );
        assert_eq!(service["traffic"], json!([{"type": 1, "percent": 100}]));
        assert_eq!(
            service["trafficStatuses"],
            json!([{"type": 1, "percent": 100}])
        );
        assert_eq!(
            service["latestReadyRevision"],
            service["latestCreatedRevision"]
        );
        let revision = service["latestReadyRevision"].as_str().unwrap_or("");
        assert!(
            revision
                .starts_with("projects/p1/locations/us-central1/services/web/revisions/web-00001-"),
            "{revision}"
        );
        assert!(
            service["uri"]
                .as_str()
                .unwrap_or("")
                .ends_with("-uc.a.run.app")
        );
        assert_eq!(service["labels"], json!({"team": "a"}));
    }

    #[tokio::test]
    async fn generation_and_revisions_change_only_with_the_spec_and_template() {
        let emulator = TestEmulator::with_polls(0);
        let (_, created) = emulator
            .send(
                "POST",
                &format!("{PARENT}/services?serviceId=api"),
                Some(service_body("img:1")),
            )
            .await;
        let first_revision = created["response"]["latestReadyRevision"].clone();

        let (_, same) = emulator
            .send(
                "PATCH",
                &format!("{PARENT}/services/api"),
                Some(service_body("img:1")),
            )
            .await;
        assert_eq!(
            same["response"]["generation"], "1",
            "no change, no new generation"
        );
        assert_eq!(same["response"]["latestReadyRevision"], first_revision);

        let mut relabelled = service_body("img:1");
        relabelled["labels"] = json!({"team": "b"});
        let (_, relabelled) = emulator
            .send("PATCH", &format!("{PARENT}/services/api"), Some(relabelled))
            .await;
        assert_eq!(relabelled["response"]["generation"], "2");
        assert_eq!(
            relabelled["response"]["latestReadyRevision"], first_revision,
            "labels are not the template"
        );

        let (_, rolled) = emulator
            .send(
                "PATCH",
                &format!("{PARENT}/services/api?updateMask=template.containers"),
                Some(service_body("img:2")),
            )
            .await;
        assert_eq!(rolled["response"]["generation"], "3");
        assert_eq!(
            rolled["response"]["labels"],
            json!({"team": "b"}),
            "masked patch keeps other fields"
        );
        let second = rolled["response"]["latestReadyRevision"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert_ne!(json!(second), first_revision);
        assert!(second.contains("/revisions/api-00002-"));
        let (_, revisions) = emulator
            .send("GET", &format!("{PARENT}/services/api/revisions"), None)
            .await;
        assert_eq!(revisions["revisions"].as_array().map(Vec::len), Some(2));
        let (status, revision) = emulator.send("GET", &format!("/v2/{second}"), None).await;
        assert_eq!(status, 200);
        assert_eq!(revision["containers"][0]["image"], "img:2");
        assert_eq!(revision["conditions"][0]["state"], "CONDITION_SUCCEEDED");
    }

    #[tokio::test]
    async fn failing_images_leave_traffic_on_the_last_ready_revision() {
        let emulator = TestEmulator::with_polls(0);
        let (_, created) = emulator
            .send(
                "POST",
                &format!("{PARENT}/services?serviceId=svc"),
                Some(service_body("img:ok")),
            )
            .await;
        let ready = created["response"]["latestReadyRevision"].clone();
        let (_, failed) = emulator
            .send(
                "PATCH",
                &format!("{PARENT}/services/svc"),
                Some(service_body("img:emulator-fail")),
            )
            .await;
        assert_eq!(failed["done"], true);
        assert_eq!(failed["error"]["code"], 9);
        assert!(
            failed["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("img:emulator-fail")
        );
        let (_, service) = emulator
            .send("GET", &format!("{PARENT}/services/svc"), None)
            .await;
        assert_eq!(service["terminalCondition"]["state"], "CONDITION_FAILED");
        assert!(
            service["terminalCondition"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("img:emulator-fail")
        );
        assert_eq!(service["latestReadyRevision"], ready);
        assert_ne!(service["latestCreatedRevision"], ready);
        assert_eq!(service["observedGeneration"], "1");
        assert_eq!(service["generation"], "2");
    }

    #[tokio::test]
    async fn stale_etags_and_conflicting_revision_names_are_refused() {
        let emulator = TestEmulator::with_polls(0);
        emulator
            .send(
                "POST",
                &format!("{PARENT}/services?serviceId=e"),
                Some(service_body("img:1")),
            )
            .await;
        let (_, service) = emulator
            .send("GET", &format!("{PARENT}/services/e"), None)
            .await;
        let mut stale = service_body("img:2");
        stale["etag"] = json!("\"not-the-etag\"");
        let (status, error) = emulator
            .send("PATCH", &format!("{PARENT}/services/e"), Some(stale))
            .await;
        assert_eq!(
            (status, error["error"]["status"].clone()),
            (409, json!("ABORTED"))
        );
        let (status, _) = emulator
            .send(
                "DELETE",
                &format!("{PARENT}/services/e?etag=%22nope%22"),
                None,
            )
            .await;
        assert_eq!(status, 409);

        let mut echoed = service.clone();
        echoed["template"]["revision"] = json!(
            service["latestCreatedRevision"]
                .as_str()
                .unwrap_or("")
                .rsplit('/')
                .next()
        );
        echoed["template"]["containers"][0]["image"] = json!("img:3");
        let (status, error) = emulator
            .send("PATCH", &format!("{PARENT}/services/e"), Some(echoed))
            .await;
        assert_eq!(status, 409, "{error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("with different configuration already exists")
        );

        let mut current = service.clone();
        current["etag"] = service["etag"].clone();
        let (status, _) = emulator
            .send("PATCH", &format!("{PARENT}/services/e"), Some(current))
            .await;
        assert_eq!(status, 200, "a GET result can be sent back as is");
    }

    #[tokio::test]
    async fn validate_only_allow_missing_delete_and_wait() {
        let emulator = TestEmulator::with_polls(3);
        let (status, checked) = emulator
            .send(
                "POST",
                &format!("{PARENT}/services?serviceId=v&validateOnly=true"),
                Some(service_body("img")),
            )
            .await;
        assert_eq!((status, checked["done"].clone()), (200, json!(true)));
        let (status, _) = emulator
            .send("GET", &format!("{PARENT}/services/v"), None)
            .await;
        assert_eq!(status, 404, "validateOnly persists nothing");

        let (status, _) = emulator
            .send(
                "PATCH",
                &format!("{PARENT}/services/v"),
                Some(service_body("img")),
            )
            .await;
        assert_eq!(status, 404);
        let (status, operation) = emulator
            .send(
                "PATCH",
                &format!("{PARENT}/services/v?allowMissing=true"),
                Some(service_body("img")),
            )
            .await;
        assert_eq!(status, 200);
        let name = operation["name"].as_str().unwrap_or("").to_string();
        let (_, listed) = emulator
            .send("GET", &format!("{PARENT}/operations"), None)
            .await;
        assert_eq!(listed["operations"].as_array().map(Vec::len), Some(1));
        let (_, waited) = emulator
            .send(
                "POST",
                &format!("/v2/{name}:wait"),
                Some(json!({"timeout": "10s"})),
            )
            .await;
        assert_eq!(waited["done"], true);
        assert_eq!(
            waited["response"]["name"],
            "projects/p1/locations/us-central1/services/v"
        );

        let (status, deleting) = emulator
            .send(
                "DELETE",
                &format!("{PARENT}/services/v?etag=&validateOnly=false"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        let (status, _) = emulator
            .send("GET", &format!("{PARENT}/services/v"), None)
            .await;
        assert_eq!(status, 404);
        let (_, deleted) = poll_until_done(&emulator, &deleting).await;
        assert!(deleted["response"]["deleteTime"].is_string());
        let (status, _) = emulator.send("DELETE", &format!("/v2/{name}"), None).await;
        assert_eq!(status, 200);
    }

    #[tokio::test]
    async fn a_named_canary_at_zero_percent_then_a_traffic_only_shift_keeps_the_revisions() {
        let emulator = TestEmulator::with_polls(0);
        let (_, created) = emulator
            .send(
                "POST",
                &format!("{PARENT}/services?serviceId=c"),
                Some(service_body("img:1")),
            )
            .await;
        let first = created["response"]["latestReadyRevision"]
            .as_str()
            .unwrap_or("")
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string();
        let mut canary = service_body("img:2");
        canary["template"]["revision"] = json!("c-two");
        canary["traffic"] = json!([
            {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": first, "percent": 100},
            {"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": "c-two", "percent": 0, "tag": "candidate"}
        ]);
        let (status, staged) = emulator
            .send(
                "PATCH",
                &format!("{PARENT}/services/c"),
                Some(canary.clone()),
            )
            .await;
        assert_eq!(status, 200, "{staged}");
        let service = &staged["response"];
        assert!(
            service["latestReadyRevision"]
                .as_str()
                .unwrap_or("")
                .ends_with("/c-two")
        );
        assert_eq!(service["trafficStatuses"][0]["percent"], 100);
        assert_eq!(service["trafficStatuses"][1]["tag"], "candidate");
        assert!(
            service["trafficStatuses"][1]["uri"]
                .as_str()
                .unwrap_or("")
                .starts_with("https://candidate---c-")
        );

        let mut shift = canary.clone();
        shift["traffic"][0]["percent"] = json!(90);
        shift["traffic"][1]["percent"] = json!(10);
        shift["template"] = json!({"containers": [{"image": "ignored-by-the-mask"}]});
        let (status, shifted) = emulator
            .send(
                "PATCH",
                &format!("{PARENT}/services/c?updateMask=traffic"),
                Some(shift),
            )
            .await;
        assert_eq!(status, 200, "{shifted}");
        assert_eq!(shifted["response"]["trafficStatuses"][1]["percent"], 10);
        assert_eq!(
            shifted["response"]["template"]["containers"][0]["image"], "img:2",
            "the mask leaves the template alone"
        );

        // The same template without its revision name is not a new configuration.
        let (_, current) = emulator
            .send("GET", &format!("{PARENT}/services/c"), None)
            .await;
        let mut unnamed = current.clone();
        unnamed["template"]
            .as_object_mut()
            .map(|t| t.remove("revision"));
        let (_, same) = emulator
            .send("PATCH", &format!("{PARENT}/services/c"), Some(unnamed))
            .await;
        assert!(
            same["response"]["latestCreatedRevision"]
                .as_str()
                .unwrap_or("")
                .ends_with("/c-two")
        );
        let (_, revisions) = emulator
            .send("GET", &format!("{PARENT}/services/c/revisions"), None)
            .await;
        assert_eq!(revisions["revisions"].as_array().map(Vec::len), Some(2));
    }

    #[tokio::test]
    async fn unknown_fields_in_nested_service_paths_use_google_wording() {
        let emulator = TestEmulator::with_polls(0);
        let body = json!({"template": {"containers": [{"image": "i", "bogus": 1}]}});
        let (status, error) = emulator
            .send(
                "POST",
                &format!("{PARENT}/services?serviceId=x"),
                Some(body),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(
            error["error"]["message"],
            "Invalid JSON payload received. Unknown name \"bogus\" at 'service.template.containers[0]': Cannot find field."
        );
    }
}

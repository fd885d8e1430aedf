//! Rolling a service out: planning the next generation and revision from a requested spec,
//! storing it with its operation, and the completion hook that makes it ready (or failed).

use serde_json::{Map, Value, json};

use super::defaults::{
    settable_service_fields, spec_of, template_with_defaults, validate_template,
    without_revision_name,
};
use super::names::{ServiceName, service_urls};
use super::revisions::{build_revision, revision_suffix};
use super::traffic::{LATEST, traffic_statuses, validate_traffic};
use super::{
    FAILING_IMAGE_MARKER, MODIFIER, SERVICE_FIELD_ORDER, SERVICE_TYPE_URL, condition, failing_image,
};
use crate::apis::collection::ordered;
use crate::apis::collection::quoted_hash;
use crate::apis::lro::{self, NewOperation, as_any};
use crate::apis::{Call, Context};
use crate::conventions::ApiError;
use crate::conventions::wire::timestamp;
use crate::state::{OperationKind, ServiceRecord, State};

pub(super) fn service_etag(uid: &str, generation: i64) -> String {
    quoted_hash(&["service-etag", uid, &generation.to_string()], 24)
}

/// The outcome of applying a requested spec to (maybe) an existing service.
pub(super) struct Rollout {
    pub(super) service: Value,
    pub(super) new_revision: Option<(String, Value)>,
}

/// Computes the next service state for `spec` (create when `existing` is `None`).
pub(super) fn plan_rollout(
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

/// Stores the rollout, creates its revision, and starts (or finishes) its operation.
pub(super) fn start_rollout(
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
pub(super) fn validate_only_operation(name: &ServiceName, service: &Value) -> Value {
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
pub(super) fn settle_pending(context: &mut Context<'_>, call: &Call<'_>, service_name: &str) {
    let pending = context
        .state
        .services
        .get(service_name)
        .and_then(|r| r.pending_operation.clone());
    if let Some(operation_name) = pending {
        complete_operation(context.state, &operation_name, &timestamp(call.now));
    }
}

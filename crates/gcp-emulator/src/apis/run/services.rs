//! The `services.*` methods: create, get, list, patch (masks, `allowMissing`, etags), delete and
//! IAM.

use serde_json::{Value, json};

use super::defaults::{request_spec, spec_of};
use super::names::{ServiceName, service_not_found};
use super::rollout::{plan_rollout, settle_pending, start_rollout, validate_only_operation};
use super::{SERVICE_FIELD_ORDER, SERVICE_SCHEMA, SERVICE_TYPE_URL, check_etag};
use crate::apis::collection::{check_body_name, ordered, remove_under};
use crate::apis::lro::{self, NewOperation, as_any};
use crate::apis::{Call, Context, Reply};
use crate::conventions::ApiError;
use crate::conventions::field_mask::FieldMask;
use crate::conventions::paging::PagePolicy;
use crate::conventions::wire::timestamp;
use crate::discovery::Api;
use crate::state::OperationKind;

pub(super) const SERVICES_POLICY: PagePolicy = PagePolicy {
    default_size: 100,
    max_size: 1000,
    size_param: "pageSize",
    token_kind: "services",
};

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

pub(super) fn create_new(
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

pub fn patch_service(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = ServiceName::from_path(call)?;
    let body = call.body_or_empty();
    check_body_name(&body, &name.full, "service.name")?;
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
    crate::apis::iam_policy::forget(context.state, &name.full);
    remove_under(
        &mut context.state.revisions,
        &format!("{}/revisions/", name.full),
    );
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
    let services: Vec<&Value> = crate::apis::collection::children(&context.state.services, &prefix)
        .map(|record| &record.service)
        .collect();
    crate::apis::collection::named_page(services, "services", call.query, SERVICES_POLICY)
}

pub fn service_iam(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = ServiceName::from_path(call)?;
    if !context.state.services.contains_key(&name.full) {
        return Err(service_not_found(&name));
    }
    crate::apis::iam_policy::answer(context, call, &name.full)
}

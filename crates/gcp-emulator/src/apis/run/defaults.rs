//! What a service request may set and the template defaults the real API echoes (ports,
//! resources, probes, scaling, timeout, service account, concurrency).

use serde_json::{Map, Value, json};

use super::SERVICE_SCHEMA;
use crate::apis::{Context, project_number};
use crate::conventions::ApiError;
use crate::conventions::payload::is_output_only;
use crate::conventions::wire::parse_duration_nanos;
use crate::discovery::Api;

/// Service properties a client may set (not output only; `name`/`etag` are handled apart).
pub(super) fn settable_service_fields(context: &Context<'_>) -> Vec<String> {
    settable_fields(context, SERVICE_SCHEMA)
}

pub(super) fn spec_of(context: &Context<'_>, service: &Value) -> Map<String, Value> {
    spec_in(context, SERVICE_SCHEMA, service)
}

/// The properties of a Cloud Run resource schema a client may set (not output only;
/// `name`/`etag` are handled apart).
pub(crate) fn settable_fields(context: &Context<'_>, schema: &str) -> Vec<String> {
    context
        .discovery
        .schema(Api::CloudRun, schema)
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

/// The settable fields `resource` has (its spec).
pub(crate) fn spec_in(context: &Context<'_>, schema: &str, resource: &Value) -> Map<String, Value> {
    settable_fields(context, schema)
        .into_iter()
        .filter_map(|field| resource.get(&field).map(|v| (field, v.clone())))
        .collect()
}

/// Sets `timeout` to `default` when unset or zero, and `serviceAccount` to the project's default
/// compute account when unset.
pub(crate) fn default_timeout_and_account(
    template: &mut Map<String, Value>,
    default: &str,
    project: &str,
) {
    if template
        .get("timeout")
        .and_then(Value::as_str)
        .and_then(parse_duration_nanos)
        .is_none_or(|n| n == 0)
    {
        template.insert("timeout".into(), json!(default));
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
}

/// Fills the template defaults the real API echoes.
pub(super) fn template_with_defaults(template: &Value, project: &str) -> Value {
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
    default_timeout_and_account(&mut template, "300s", project);
    if template
        .get("maxInstanceRequestConcurrency")
        .and_then(Value::as_i64)
        .is_none_or(|v| v == 0)
    {
        template.insert("maxInstanceRequestConcurrency".into(), json!(80));
    }
    Value::Object(template)
}

pub(super) fn without_revision_name(template: &Value) -> Value {
    let mut template = template.clone();
    if let Value::Object(fields) = &mut template {
        fields.remove("revision");
    }
    template
}

pub(super) fn validate_template(template: Option<&Value>) -> Result<(), ApiError> {
    require_containers(
        template.and_then(|t| t.get("containers")),
        "service.template.containers",
    )
}

/// Cloud Run's check of a template's `containers` (services' and jobs' alike): at least one,
/// each with an image; `field` is the path errors name (`service.template.containers`).
pub(crate) fn require_containers(containers: Option<&Value>, field: &str) -> Result<(), ApiError> {
    let Some(containers) = containers
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
    else {
        return Err(ApiError::bad_field(
            field,
            format!("{field}: at least one container must be specified."),
        ));
    };
    for (index, container) in containers.iter().enumerate() {
        if container
            .get("image")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            let field = format!("{field}[{index}].image");
            return Err(ApiError::bad_field(
                &field,
                format!("{field}: Required field is not set."),
            ));
        }
    }
    Ok(())
}

pub(super) fn request_spec(context: &Context<'_>, body: &Value) -> Map<String, Value> {
    spec_of(context, body)
}

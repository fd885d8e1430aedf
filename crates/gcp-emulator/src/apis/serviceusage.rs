//! Service Usage v1: per-project service state (every service starts DISABLED so enabling is
//! observable), enable/disable/batchEnable as operations, get/batchGet/list, and the opt-in
//! `SERVICE_DISABLED` gate other APIs answer when `STACKCTL_EMULATOR_ENFORCE_SERVICES=1`.

use serde_json::{Value, json};

use super::collection::list_response;
use super::lro::{self, NewOperation, as_any};
use super::{Call, Context, Reply, project_number};
use crate::conventions::ApiError;
use crate::conventions::paging::{PagePolicy, paginate};
use crate::conventions::wire::timestamp;
use crate::discovery::Api;
use crate::state::{OperationKind, State};

const LIST_POLICY: PagePolicy = PagePolicy {
    default_size: 50,
    max_size: 200,
    size_param: "pageSize",
    token_kind: "services",
};
const METADATA_TYPE_URL: &str = "type.googleapis.com/google.api.serviceusage.v1.OperationMetadata";

/// Services the emulator lists (others can still be enabled and read by name).
const CATALOG: &[(&str, &str)] = &[
    ("apigateway.googleapis.com", "API Gateway API"),
    ("apikeys.googleapis.com", "API Keys API"),
    ("artifactregistry.googleapis.com", "Artifact Registry API"),
    ("bigquery.googleapis.com", "BigQuery API"),
    ("billingbudgets.googleapis.com", "Cloud Billing Budget API"),
    ("cloudbilling.googleapis.com", "Cloud Billing API"),
    (
        "cloudresourcemanager.googleapis.com",
        "Cloud Resource Manager API",
    ),
    ("cloudscheduler.googleapis.com", "Cloud Scheduler API"),
    ("cloudtasks.googleapis.com", "Cloud Tasks API"),
    ("firestore.googleapis.com", "Cloud Firestore API"),
    (
        "iam.googleapis.com",
        "Identity and Access Management (IAM) API",
    ),
    ("logging.googleapis.com", "Cloud Logging API"),
    ("monitoring.googleapis.com", "Cloud Monitoring API"),
    ("run.googleapis.com", "Cloud Run Admin API"),
    ("secretmanager.googleapis.com", "Secret Manager API"),
    ("serviceusage.googleapis.com", "Service Usage API"),
    ("storage.googleapis.com", "Cloud Storage API"),
];

fn title(service: &str) -> String {
    CATALOG
        .iter()
        .find(|(name, _)| *name == service)
        .map(|(_, title)| (*title).to_string())
        .unwrap_or_else(|| service.to_string())
}

/// The service an emulated API belongs to, for the `SERVICE_DISABLED` gate.
pub fn service_of(api: Api) -> Option<&'static str> {
    match api {
        Api::CloudTasks => Some("cloudtasks.googleapis.com"),
        Api::CloudRun => Some("run.googleapis.com"),
        Api::Storage => Some("storage.googleapis.com"),
        Api::Iam => Some("iam.googleapis.com"),
        Api::Scheduler => Some("cloudscheduler.googleapis.com"),
        Api::BigQuery => Some("bigquery.googleapis.com"),
        Api::Monitoring | Api::MonitoringDashboards => Some("monitoring.googleapis.com"),
        Api::ArtifactRegistry => Some("artifactregistry.googleapis.com"),
        Api::SecretManager => Some("secretmanager.googleapis.com"),
        Api::Firestore => Some("firestore.googleapis.com"),
        Api::Apigateway => Some("apigateway.googleapis.com"),
        Api::Apikeys => Some("apikeys.googleapis.com"),
        // Budgets live under billing accounts and the catalog is public: no project to gate.
        // Cloud Logging is enabled in every project by default.
        Api::ResourceManager
        | Api::ServiceUsage
        | Api::BillingBudgets
        | Api::CloudBilling
        | Api::Logging => None,
    }
}

pub fn is_enabled(state: &State, project: &str, service: &str) -> bool {
    state
        .enabled_services
        .get(&project_number(project))
        .is_some_and(|s| s.contains(service))
}

/// The 403 Google answers when an API is not enabled in the project.
pub fn service_disabled(project: &str, service: &str) -> ApiError {
    let number = project_number(project);
    let mut error = ApiError::new(
        crate::conventions::Code::PermissionDenied,
        format!(
            "{} has not been used in project {number} before or it is disabled. Enable it by visiting \
             https://console.developers.google.com/apis/api/{service}/overview?project={number} then retry. \
             If you enabled this API recently, wait a few minutes for the action to propagate to our systems and retry.",
            title(service)
        ),
    );
    error.details.push(json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "SERVICE_DISABLED",
        "domain": "googleapis.com",
        "metadata": {"service": service, "consumer": format!("projects/{number}")},
    }));
    error
}

fn parent(call: &Call<'_>) -> Result<String, ApiError> {
    let kind = call.param("v1Id")?;
    if kind != "projects" {
        return Err(ApiError::invalid_argument(format!(
            "Unsupported parent type \"{kind}\": the emulator serves projects only."
        )));
    }
    Ok(project_number(call.param("v1Id1")?))
}

/// A service name Service Usage knows: a dotted name, and for an API Gateway managed service
/// (`….cloud.goog`) one an API in the state created (Google knows no others).
fn validate_service(state: &State, service: &str) -> Result<(), ApiError> {
    let well_formed = service.contains('.')
        && service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let known = !service.ends_with(".cloud.goog")
        || super::apigateway::api_of_managed_service(state, service).is_some();
    if well_formed && known {
        Ok(())
    } else {
        Err(ApiError::new(
            crate::conventions::Code::PermissionDenied,
            format!("Not found or permission denied for service(s): {service}."),
        ))
    }
}

/// An API Gateway managed service is titled by its API's display name (or id).
fn managed_title(state: &State, service: &str) -> Option<String> {
    let api = super::apigateway::api_of_managed_service(state, service)?;
    let shown = api
        .get("displayName")
        .and_then(Value::as_str)
        .or_else(|| api.get("name")?.as_str()?.rsplit('/').next())?;
    Some(shown.to_string())
}

fn service_resource(state: &State, number: &str, service: &str) -> Value {
    let enabled = state
        .enabled_services
        .get(number)
        .is_some_and(|s| s.contains(service));
    json!({
        "name": format!("projects/{number}/services/{service}"),
        "parent": format!("projects/{number}"),
        "config": {"name": service, "title": managed_title(state, service).unwrap_or_else(|| title(service))},
        "state": if enabled { "ENABLED" } else { "DISABLED" },
    })
}

pub fn get_service(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let number = parent(call)?;
    let service = call.param("servicesId")?;
    validate_service(context.state, service)?;
    Ok(Reply::Json(service_resource(
        context.state,
        &number,
        service,
    )))
}

pub fn batch_get(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let number = parent(call)?;
    let names: Vec<String> = call
        .query
        .all("names")
        .into_iter()
        .map(str::to_string)
        .collect();
    let mut services = Vec::new();
    for name in names {
        let service = name.rsplit('/').next().unwrap_or_default().to_string();
        validate_service(context.state, &service)?;
        services.push(service_resource(context.state, &number, &service));
    }
    Ok(Reply::Json(json!({ "services": services })))
}

pub fn list_services(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let number = parent(call)?;
    let wanted = match call.query.non_empty("filter").map(|f| f.replace(' ', "")) {
        None => None,
        Some(f) if f == "state:ENABLED" || f == "state=ENABLED" => Some("ENABLED"),
        Some(f) if f == "state:DISABLED" || f == "state=DISABLED" => Some("DISABLED"),
        Some(f) => {
            return Err(ApiError::invalid_argument(format!(
                "Invalid filter \"{f}\": only state:ENABLED or state:DISABLED is supported."
            )));
        }
    };
    let mut names: Vec<String> = CATALOG.iter().map(|(n, _)| (*n).to_string()).collect();
    names.extend(
        context
            .state
            .enabled_services
            .get(&number)
            .cloned()
            .unwrap_or_default(),
    );
    names.sort();
    names.dedup();
    let services: Vec<Value> = names
        .iter()
        .map(|n| service_resource(context.state, &number, n))
        .filter(|s| wanted.is_none_or(|w| s["state"] == w))
        .collect();
    let page = paginate(
        services,
        |s| s.get("name").and_then(Value::as_str).unwrap_or_default(),
        call.query,
        LIST_POLICY,
    )?;
    Ok(Reply::Json(list_response("services", page)))
}

fn change(context: &mut Context<'_>, call: &Call<'_>, services: &[String], enable: bool) -> Value {
    let number = project_number(
        call.params
            .get("v1Id1")
            .map(String::as_str)
            .unwrap_or_default(),
    );
    let set = context
        .state
        .enabled_services
        .entry(number.clone())
        .or_default();
    for service in services {
        if enable {
            set.insert(service.clone());
        } else {
            set.remove(service);
        }
    }
    let resources: Vec<Value> = services
        .iter()
        .map(|s| service_resource(context.state, &number, s))
        .collect();
    let (type_url, response) = match (enable, services.len()) {
        (true, 1) => ("EnableServiceResponse", json!({"service": resources[0]})),
        (false, _) => (
            "DisableServiceResponse",
            json!({"service": resources.first().cloned().unwrap_or_default()}),
        ),
        (true, _) => (
            "BatchEnableServicesResponse",
            json!({"services": resources}),
        ),
    };
    let kind = if enable { "acat" } else { "acf" };
    let operation = format!("operations/{kind}.p2-{number}-{}", uuid::Uuid::new_v4());
    lro::start(
        context,
        NewOperation {
            name: operation,
            metadata: as_any(
                METADATA_TYPE_URL,
                &json!({"resourceNames": services.iter().map(|s| format!("services/{s}/projectSettings/{number}")).collect::<Vec<_>>()}),
            ),
            kind: OperationKind::Immediate,
            target: format!("projects/{number}"),
            new_revision: None,
            final_resource: Some(as_any(
                &format!("type.googleapis.com/google.api.serviceusage.v1.{type_url}"),
                &response,
            )),
        },
        &timestamp(call.now),
    )
}

pub fn enable_service(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    parent(call)?;
    let service = call.param("servicesId")?.to_string();
    validate_service(context.state, &service)?;
    Ok(Reply::Json(change(context, call, &[service], true)))
}

pub fn disable_service(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    parent(call)?;
    let service = call.param("servicesId")?.to_string();
    validate_service(context.state, &service)?;
    Ok(Reply::Json(change(context, call, &[service], false)))
}

pub fn batch_enable(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    parent(call)?;
    let ids: Vec<String> = call
        .body
        .as_ref()
        .and_then(|b| b.get("serviceIds"))
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() || ids.len() > 20 {
        return Err(ApiError::invalid_argument(
            "service_ids must name between 1 and 20 services.",
        ));
    }
    for id in &ids {
        validate_service(context.state, id)?;
    }
    Ok(Reply::Json(change(context, call, &ids, true)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::Settings;
    use crate::apis::project_number;
    use crate::server::testing::TestEmulator;

    #[tokio::test]
    async fn services_start_disabled_and_enable_through_operations() {
        let emulator = TestEmulator::with_polls(1);
        let number = project_number("p1");
        let (status, service) = emulator
            .send("GET", "/v1/projects/p1/services/run.googleapis.com", None)
            .await;
        assert_eq!(status, 200, "{service}");
        assert_eq!(
            service["name"],
            format!("projects/{number}/services/run.googleapis.com")
        );
        assert_eq!(service["state"], "DISABLED");
        let (_, operation) = emulator
            .send(
                "POST",
                "/v1/projects/p1/services/run.googleapis.com:enable",
                Some(json!({})),
            )
            .await;
        let name = operation["name"].as_str().unwrap_or_default().to_string();
        assert!(name.starts_with("operations/acat.p2-"), "{operation}");
        let (_, first) = emulator.send("GET", &format!("/v1/{name}"), None).await;
        assert!(first.get("done").is_none());
        let (_, done) = emulator.send("GET", &format!("/v1/{name}"), None).await;
        assert_eq!(done["response"]["service"]["state"], "ENABLED");
        let (_, batch) = emulator
            .send(
                "POST",
                "/v1/projects/p1/services:batchEnable",
                Some(
                    json!({"serviceIds": ["bigquery.googleapis.com", "cloudtasks.googleapis.com"]}),
                ),
            )
            .await;
        assert!(batch["name"].is_string());
        let (_, enabled) = emulator
            .send(
                "GET",
                "/v1/projects/p1/services?filter=state%3AENABLED",
                None,
            )
            .await;
        assert_eq!(enabled["services"].as_array().map(Vec::len), Some(3));
        emulator
            .send(
                "POST",
                "/v1/projects/p1/services/run.googleapis.com:disable",
                Some(json!({})),
            )
            .await;
        let (_, service) = emulator
            .send(
                "GET",
                "/v1/projects/p1/services/run.googleapis.com?%24alt=json%3Benum-encoding%3Dint",
                None,
            )
            .await;
        assert_eq!(service["state"], 1);
    }

    #[tokio::test]
    async fn enforcement_answers_service_disabled_until_enabled() {
        let emulator = TestEmulator::new(Settings {
            operation_polls: 0,
            enforce_services: true,
            ..Settings::default()
        });
        let (status, error) = emulator
            .send("GET", "/v2/projects/p1/locations/l/queues", None)
            .await;
        assert_eq!(status, 403, "{error}");
        assert_eq!(error["error"]["details"][0]["reason"], "SERVICE_DISABLED");
        emulator
            .send(
                "POST",
                "/v1/projects/p1/services/cloudtasks.googleapis.com:enable",
                Some(json!({})),
            )
            .await;
        let (status, _) = emulator
            .send("GET", "/v2/projects/p1/locations/l/queues", None)
            .await;
        assert_eq!(status, 200);
    }
}

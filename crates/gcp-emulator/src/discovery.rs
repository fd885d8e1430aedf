//! The vendored Google discovery documents (`discovery/`): route table, schemas and enum numbering.
//!
//! Every route the emulator answers comes from a discovery method, so paths cannot drift from
//! Google's. Request validation and response rendering walk the same schemas.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// The Google APIs the emulator serves, each backed by one vendored discovery document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Api {
    CloudTasks,
    CloudRun,
    Storage,
    ResourceManager,
    Iam,
    Scheduler,
    BigQuery,
    BillingBudgets,
    Monitoring,
    ArtifactRegistry,
    SecretManager,
    ServiceUsage,
    CloudBilling,
    Logging,
    Firestore,
    Apigateway,
    Apikeys,
    /// Monitoring v1: dashboards.
    MonitoringDashboards,
}

impl Api {
    pub const ALL: [Api; 18] = [
        Api::CloudTasks,
        Api::CloudRun,
        Api::Storage,
        Api::ResourceManager,
        Api::Iam,
        Api::Scheduler,
        Api::BigQuery,
        Api::BillingBudgets,
        Api::Monitoring,
        Api::ArtifactRegistry,
        Api::SecretManager,
        Api::ServiceUsage,
        Api::CloudBilling,
        Api::Logging,
        Api::Firestore,
        Api::Apigateway,
        Api::Apikeys,
        Api::MonitoringDashboards,
    ];

    fn document_text(self) -> &'static str {
        match self {
            Api::CloudTasks => include_str!("../discovery/cloudtasks.v2.json"),
            Api::CloudRun => include_str!("../discovery/run.v2.json"),
            Api::Storage => include_str!("../discovery/storage.v1.json"),
            Api::ResourceManager => include_str!("../discovery/cloudresourcemanager.v3.json"),
            Api::Iam => include_str!("../discovery/iam.v1.json"),
            Api::Scheduler => include_str!("../discovery/cloudscheduler.v1.json"),
            Api::BigQuery => include_str!("../discovery/bigquery.v2.json"),
            Api::BillingBudgets => include_str!("../discovery/billingbudgets.v1.json"),
            Api::Monitoring => include_str!("../discovery/monitoring.v3.json"),
            Api::ArtifactRegistry => include_str!("../discovery/artifactregistry.v1.json"),
            Api::SecretManager => include_str!("../discovery/secretmanager.v1.json"),
            Api::ServiceUsage => include_str!("../discovery/serviceusage.v1.json"),
            Api::CloudBilling => include_str!("../discovery/cloudbilling.v1.json"),
            Api::Logging => include_str!("../discovery/logging.v2.json"),
            Api::Firestore => include_str!("../discovery/firestore.v1.json"),
            Api::Apigateway => include_str!("../discovery/apigateway.v1.json"),
            Api::Apikeys => include_str!("../discovery/apikeys.v2.json"),
            Api::MonitoringDashboards => include_str!("../discovery/monitoring.v1.json"),
        }
    }

    /// The prefix this API's discovery document puts on message names (`ApigatewayApi` for
    /// `google.cloud.apigateway.v1.Api`, `V2Key` for `google.api.apikeys.v2.Key`).
    pub fn schema_prefix(self) -> &'static str {
        match self {
            Api::Apigateway => "Apigateway",
            Api::Apikeys => "V2",
            _ => "",
        }
    }

    /// Storage and BigQuery are apiary (non-proto) APIs: lenient about unknown fields and query
    /// params, and their errors use the `errors: [{domain, reason}]` shape.
    pub fn is_proto_based(self) -> bool {
        !matches!(self, Api::Storage | Api::BigQuery)
    }

    /// Artifact Registry accepts enum names in any case (gcloud's documented cleanup-policy files
    /// send `"Delete"` and `"untagged"`); other APIs want the exact name.
    pub fn enums_case_insensitive(self) -> bool {
        matches!(self, Api::ArtifactRegistry)
    }

    /// The error body family of this API.
    pub fn error_style(self) -> crate::conventions::error::ErrorStyle {
        use crate::conventions::error::ErrorStyle;
        match self {
            Api::Storage => ErrorStyle::Storage,
            Api::BigQuery => ErrorStyle::BigQuery,
            _ => ErrorStyle::Proto,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("vendored discovery document for {api:?} is not valid JSON: {source}")]
    Parse { api: Api, source: serde_json::Error },
    #[error("vendored discovery document for {api:?} has an unexpected shape: {what}")]
    Shape { api: Api, what: String },
}

/// One path segment of a route template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Variable(String),
}

/// One discovery method, bound to an HTTP method and a path template.
#[derive(Debug, Clone)]
pub struct Route {
    pub api: Api,
    /// Discovery method id, e.g. `cloudtasks.projects.locations.queues.create`.
    pub id: String,
    pub http_method: String,
    pub segments: Vec<Segment>,
    /// Custom verb after the last segment (`:pause`), if any.
    pub verb: Option<String>,
    pub request_schema: Option<String>,
    pub response_schema: Option<String>,
    /// The media-upload form of the method (`/upload/...`): the body is raw media.
    pub is_media_upload: bool,
    /// Query parameters the method declares (besides the API's global parameters).
    pub query_params: BTreeSet<String>,
}

impl Route {
    fn literal_count(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
    }
}

/// The outcome of matching a request against the route table.
#[derive(Debug)]
pub enum RouteMatch<'a> {
    Found {
        route: &'a Route,
        params: BTreeMap<String, String>,
    },
    /// A discovery method exists for this request but the emulator does not implement it.
    Unimplemented(&'a Route),
    NotFound,
}

/// Parsed discovery documents plus the flattened route table.
#[derive(Debug)]
pub struct Discovery {
    documents: BTreeMap<Api, Value>,
    global_params: BTreeMap<Api, BTreeSet<String>>,
    routes: Vec<Route>,
}

impl Discovery {
    pub fn load() -> Result<Self, DiscoveryError> {
        let mut documents = BTreeMap::new();
        let mut global_params = BTreeMap::new();
        let mut routes = Vec::new();
        for api in Api::ALL {
            let document: Value = serde_json::from_str(api.document_text())
                .map_err(|source| DiscoveryError::Parse { api, source })?;
            let service_path = document
                .get("servicePath")
                .and_then(Value::as_str)
                .ok_or_else(|| DiscoveryError::Shape {
                    api,
                    what: "no servicePath".into(),
                })?
                .to_string();
            let params = document
                .get("parameters")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            global_params.insert(api, params);
            collect_routes(api, &service_path, &document, &mut routes)?;
            documents.insert(api, document);
        }
        Ok(Self {
            documents,
            global_params,
            routes,
        })
    }

    #[cfg(test)]
    pub fn route_by_id(&self, id: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.id == id && !r.is_media_upload)
    }

    pub fn schema(&self, api: Api, name: &str) -> Option<&Value> {
        self.documents.get(&api)?.get("schemas")?.get(name)
    }

    /// Whether `name` is a query parameter every method of `api` accepts (`alt`, `fields`, ...).
    pub fn is_global_param(&self, api: Api, name: &str) -> bool {
        self.global_params
            .get(&api)
            .is_some_and(|p| p.contains(name))
    }

    /// The API whose proto package a `type.googleapis.com/...` URL names
    /// (`google.cloud.apigateway.v1.OperationMetadata` -> API Gateway), by discovery `name`.
    pub fn api_of_type_url(&self, type_url: &str) -> Option<Api> {
        let full_name = type_url.rsplit_once('/').map_or(type_url, |(_, name)| name);
        let packages: Vec<&str> = full_name.split('.').collect();
        self.documents.iter().find_map(|(api, document)| {
            let name = document.get("name")?.as_str()?;
            packages.contains(&name).then_some(*api)
        })
    }

    /// The route of `api` with the same method and path template as `route` (APIs that share
    /// `v1/projects/*/locations/*/operations/*`).
    pub fn same_route_of(
        &self,
        api: Api,
        route: &Route,
        is_implemented: impl Fn(&str) -> bool,
    ) -> Option<&Route> {
        self.routes.iter().find(|other| {
            other.api == api
                && other.http_method == route.http_method
                && other.segments.len() == route.segments.len()
                && other.verb == route.verb
                && other
                    .segments
                    .iter()
                    .zip(&route.segments)
                    .all(|(a, b)| match (a, b) {
                        (Segment::Literal(a), Segment::Literal(b)) => a == b,
                        (Segment::Variable(_), Segment::Variable(_)) => true,
                        _ => false,
                    })
                && is_implemented(&other.id)
        })
    }

    /// Matches a raw (still percent-encoded) path. Literal-rich templates win over variable ones,
    /// implemented methods over unimplemented ones (Tasks and Run share `v2/projects/*/locations/*`).
    pub fn match_route(
        &self,
        http_method: &str,
        raw_path: &str,
        is_implemented: impl Fn(&str) -> bool,
    ) -> RouteMatch<'_> {
        let trimmed = raw_path.strip_prefix('/').unwrap_or(raw_path);
        let raw_segments: Vec<&str> = trimmed.split('/').collect();
        // (route, path variables, rank = (implemented, literal segments))
        type Candidate<'r> = (&'r Route, BTreeMap<String, String>, (bool, usize));
        let mut best: Option<Candidate<'_>> = None;
        for route in &self.routes {
            if route.http_method != http_method {
                continue;
            }
            let Some(params) = match_template(route, &raw_segments) else {
                continue;
            };
            let rank = (is_implemented(&route.id), route.literal_count());
            if best
                .as_ref()
                .is_none_or(|(_, _, best_rank)| rank > *best_rank)
            {
                best = Some((route, params, rank));
            }
        }
        match best {
            Some((route, params, (true, _))) => RouteMatch::Found { route, params },
            Some((route, _, (false, _))) => RouteMatch::Unimplemented(route),
            None => RouteMatch::NotFound,
        }
    }
}

fn match_template(route: &Route, raw_segments: &[&str]) -> Option<BTreeMap<String, String>> {
    if raw_segments.len() != route.segments.len() {
        return None;
    }
    let mut params = BTreeMap::new();
    let last = raw_segments.len() - 1;
    for (index, (template, raw)) in route.segments.iter().zip(raw_segments).enumerate() {
        let mut raw = *raw;
        if index == last {
            match &route.verb {
                Some(verb) => raw = raw.strip_suffix(verb.as_str())?.strip_suffix(':')?,
                None if route.api.is_proto_based() && raw.contains(':') => return None,
                None => {}
            }
        }
        match template {
            Segment::Literal(literal) => {
                if raw != literal {
                    return None;
                }
            }
            Segment::Variable(name) => {
                let value = crate::conventions::wire::percent_decode(raw);
                if value.is_empty() || (route.api.is_proto_based() && value.contains(':')) {
                    return None;
                }
                params.insert(name.clone(), value);
            }
        }
    }
    Some(params)
}

fn collect_routes(
    api: Api,
    service_path: &str,
    node: &Value,
    routes: &mut Vec<Route>,
) -> Result<(), DiscoveryError> {
    if let Some(methods) = node.get("methods").and_then(Value::as_object) {
        for method in methods.values() {
            push_method_routes(api, service_path, method, routes)?;
        }
    }
    if let Some(resources) = node.get("resources").and_then(Value::as_object) {
        for resource in resources.values() {
            collect_routes(api, service_path, resource, routes)?;
        }
    }
    Ok(())
}

fn push_method_routes(
    api: Api,
    service_path: &str,
    method: &Value,
    routes: &mut Vec<Route>,
) -> Result<(), DiscoveryError> {
    let text = |key: &str| method.get(key).and_then(Value::as_str).map(str::to_string);
    let shape = |what: &str| DiscoveryError::Shape {
        api,
        what: what.to_string(),
    };
    let id = text("id").ok_or_else(|| shape("method without id"))?;
    let http_method = text("httpMethod").ok_or_else(|| shape("method without httpMethod"))?;
    let path = text("flatPath")
        .or_else(|| text("path"))
        .ok_or_else(|| shape("method without path"))?;
    let schema_ref = |key: &str| {
        method
            .get(key)
            .and_then(|r| r.get("$ref"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let query_params = method
        .get("parameters")
        .and_then(Value::as_object)
        .map(|params| {
            params
                .iter()
                .filter(|(_, p)| p.get("location").and_then(Value::as_str) == Some("query"))
                .map(|(name, _)| name.clone())
                .collect()
        })
        .unwrap_or_default();
    let base = Route {
        api,
        id,
        http_method,
        segments: Vec::new(),
        verb: None,
        request_schema: schema_ref("request"),
        response_schema: schema_ref("response"),
        is_media_upload: false,
        query_params,
    };
    routes.push(with_template(
        base.clone(),
        &format!("{service_path}{path}"),
    ));
    if method.get("supportsMediaDownload").and_then(Value::as_bool) == Some(true) {
        routes.push(with_template(
            base.clone(),
            &format!("download/{service_path}{path}"),
        ));
    }
    let upload_path = method
        .get("mediaUpload")
        .and_then(|m| m.get("protocols"))
        .and_then(|p| p.get("simple"))
        .and_then(|s| s.get("path"))
        .and_then(Value::as_str);
    if let Some(upload_path) = upload_path {
        let upload = Route {
            is_media_upload: true,
            ..base
        };
        routes.push(with_template(upload, upload_path.trim_start_matches('/')));
    }
    Ok(())
}

fn with_template(mut route: Route, template: &str) -> Route {
    let mut parts: Vec<&str> = template.split('/').collect();
    if let Some(last) = parts.last_mut()
        && let Some((segment, verb)) = last.rsplit_once(':')
    {
        route.verb = Some(verb.to_string());
        *last = segment;
    }
    route.segments = parts
        .into_iter()
        .map(
            |part| match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => Segment::Variable(name.trim_start_matches('+').to_string()),
                None => Segment::Literal(part.to_string()),
            },
        )
        .collect();
    route
}

/// Enums whose proto numbers differ from their position in the discovery `enum` list, keyed by
/// the name of the zero value. Checked against `model.rs` of google-cloud-run-v2 1.15,
/// google-cloud-api 1.8, -monitoring-v3 1.14 and -artifactregistry-v1 1.14 with
/// `tests/conformance/check_enum_numbers.py`; every other enum the emulator emits (Tasks,
/// Scheduler, Secret Manager, Service Usage, Budgets, Run Condition.State, ...) is contiguous.
/// BigQuery is an apiary API with string enums only.
const NON_CONTIGUOUS_ENUMS: &[(&str, &[(&str, i64)])] = &[
    (
        "ALIGN_NONE",
        &[
            ("ALIGN_NONE", 0),
            ("ALIGN_DELTA", 1),
            ("ALIGN_RATE", 2),
            ("ALIGN_INTERPOLATE", 3),
            ("ALIGN_NEXT_OLDER", 4),
            ("ALIGN_MIN", 10),
            ("ALIGN_MAX", 11),
            ("ALIGN_MEAN", 12),
            ("ALIGN_COUNT", 13),
            ("ALIGN_SUM", 14),
            ("ALIGN_STDDEV", 15),
            ("ALIGN_COUNT_TRUE", 16),
            ("ALIGN_COUNT_FALSE", 24),
            ("ALIGN_FRACTION_TRUE", 17),
            ("ALIGN_PERCENTILE_99", 18),
            ("ALIGN_PERCENTILE_95", 19),
            ("ALIGN_PERCENTILE_50", 20),
            ("ALIGN_PERCENTILE_05", 21),
            ("ALIGN_PERCENT_CHANGE", 23),
        ],
    ),
    (
        "REDUCE_NONE",
        &[
            ("REDUCE_NONE", 0),
            ("REDUCE_MEAN", 1),
            ("REDUCE_MIN", 2),
            ("REDUCE_MAX", 3),
            ("REDUCE_SUM", 4),
            ("REDUCE_STDDEV", 5),
            ("REDUCE_COUNT", 6),
            ("REDUCE_COUNT_TRUE", 7),
            ("REDUCE_COUNT_FALSE", 15),
            ("REDUCE_FRACTION_TRUE", 8),
            ("REDUCE_PERCENTILE_99", 9),
            ("REDUCE_PERCENTILE_95", 10),
            ("REDUCE_PERCENTILE_50", 11),
            ("REDUCE_PERCENTILE_05", 12),
        ],
    ),
    (
        // Monitoring UptimeCheckConfig.HttpCheck.ResponseStatusCode.StatusClass
        // (google-cloud-monitoring-v3 1.14): the class's first status code.
        "STATUS_CLASS_UNSPECIFIED",
        &[
            ("STATUS_CLASS_UNSPECIFIED", 0),
            ("STATUS_CLASS_1XX", 100),
            ("STATUS_CLASS_2XX", 200),
            ("STATUS_CLASS_3XX", 300),
            ("STATUS_CLASS_4XX", 400),
            ("STATUS_CLASS_5XX", 500),
            ("STATUS_CLASS_ANY", 1000),
        ],
    ),
    (
        "NOTIFICATION_PROMPT_UNSPECIFIED",
        &[
            ("NOTIFICATION_PROMPT_UNSPECIFIED", 0),
            ("OPENED", 1),
            ("CLOSED", 3),
        ],
    ),
    (
        // Artifact Registry Repository.Format (google-cloud-artifactregistry-v1 1.14).
        "FORMAT_UNSPECIFIED",
        &[
            ("FORMAT_UNSPECIFIED", 0),
            ("DOCKER", 1),
            ("MAVEN", 2),
            ("NPM", 3),
            ("APT", 5),
            ("YUM", 6),
            ("GOOGET", 7),
            ("PYTHON", 8),
            ("KFP", 9),
            ("GO", 10),
            ("GENERIC", 11),
            ("RUBY", 12),
            ("CONDA", 13),
        ],
    ),
    (
        "LAUNCH_STAGE_UNSPECIFIED",
        &[
            ("LAUNCH_STAGE_UNSPECIFIED", 0),
            ("UNIMPLEMENTED", 6),
            ("PRELAUNCH", 7),
            ("EARLY_ACCESS", 1),
            ("ALPHA", 2),
            ("BETA", 3),
            ("GA", 4),
            ("DEPRECATED", 5),
        ],
    ),
    (
        "COMMON_REASON_UNDEFINED",
        &[
            ("COMMON_REASON_UNDEFINED", 0),
            ("UNKNOWN", 1),
            ("REVISION_FAILED", 3),
            ("PROGRESS_DEADLINE_EXCEEDED", 4),
            ("CONTAINER_MISSING", 6),
            ("CONTAINER_PERMISSION_DENIED", 7),
            ("CONTAINER_IMAGE_UNAUTHORIZED", 8),
            ("CONTAINER_IMAGE_AUTHORIZATION_CHECK_FAILED", 9),
            ("ENCRYPTION_KEY_PERMISSION_DENIED", 10),
            ("ENCRYPTION_KEY_CHECK_FAILED", 11),
            ("SECRETS_ACCESS_CHECK_FAILED", 12),
            ("WAITING_FOR_OPERATION", 13),
            ("IMMEDIATE_RETRY", 14),
            ("POSTPONED_RETRY", 15),
            ("INTERNAL", 16),
            ("VPC_NETWORK_NOT_FOUND", 17),
        ],
    ),
];

fn exception_table(values: &[Value]) -> Option<&'static [(&'static str, i64)]> {
    let zero = values.first()?.as_str()?;
    NON_CONTIGUOUS_ENUMS
        .iter()
        .find(|(key, _)| *key == zero)
        .map(|(_, table)| *table)
}

/// The proto number of enum value `name`, given the discovery `enum` list it belongs to.
pub fn enum_number(values: &[Value], name: &str) -> Option<i64> {
    if let Some(table) = exception_table(values) {
        return table
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, number)| *number);
    }
    values
        .iter()
        .position(|v| v.as_str() == Some(name))
        .and_then(|i| i64::try_from(i).ok())
}

/// The enum value name for proto number `number`, given the discovery `enum` list.
pub fn enum_name(values: &[Value], number: i64) -> Option<String> {
    if let Some(table) = exception_table(values) {
        return table
            .iter()
            .find(|(_, n)| *n == number)
            .map(|(name, _)| (*name).to_string());
    }
    let index = usize::try_from(number).ok()?;
    values.get(index)?.as_str().map(str::to_string)
}

/// Maps an `Any` type URL to its discovery schema name:
/// `type.googleapis.com/google.cloud.run.v2.Service` -> `GoogleCloudRunV2Service`.
pub fn schema_name_for_type_url(type_url: &str) -> Option<String> {
    let full_name = type_url.rsplit_once('/').map_or(type_url, |(_, name)| name);
    let mut out = String::new();
    for part in full_name.split('.') {
        let mut chars = part.chars();
        let first = chars.next()?;
        out.extend(first.to_uppercase());
        out.push_str(chars.as_str());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_all_documents_and_matches_custom_verbs() {
        let discovery = Discovery::load().expect("discovery loads");
        let implemented = |id: &str| id.starts_with("cloudtasks.projects.locations.queues");
        match discovery.match_route(
            "POST",
            "/v2/projects/p1/locations/us-central1/queues/q1:pause",
            implemented,
        ) {
            RouteMatch::Found { route, params } => {
                assert_eq!(route.id, "cloudtasks.projects.locations.queues.pause");
                assert_eq!(params["queuesId"], "q1");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            discovery.match_route(
                "GET",
                "/v2/projects/p/locations/l/queues/q/tasks",
                implemented
            ),
            RouteMatch::Found { .. }
        ));
        assert!(matches!(
            discovery.match_route("GET", "/v2/projects/p/locations/l/services", |_| false),
            RouteMatch::Unimplemented(_)
        ));
        assert!(matches!(
            discovery.match_route("GET", "/nope", |_| true),
            RouteMatch::NotFound
        ));
    }

    #[test]
    fn storage_object_names_keep_encoded_slashes() {
        let discovery = Discovery::load().expect("discovery loads");
        match discovery.match_route("GET", "/storage/v1/b/bkt/o/a%2Fb%3Ac.json", |_| true) {
            RouteMatch::Found { route, params } => {
                assert_eq!(route.id, "storage.objects.get");
                assert_eq!(params["object"], "a/b:c.json");
            }
            other => panic!("unexpected {other:?}"),
        }
        match discovery.match_route("POST", "/upload/storage/v1/b/bkt/o", |_| true) {
            RouteMatch::Found { route, .. } => assert!(route.is_media_upload),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn enum_numbers_follow_proto_not_list_order_for_launch_stage() {
        let discovery = Discovery::load().expect("discovery loads");
        let launch_stage = discovery
            .schema(Api::CloudRun, "GoogleCloudRunV2Service")
            .and_then(|s| s.pointer("/properties/launchStage/enum"))
            .and_then(Value::as_array)
            .expect("launchStage enum");
        assert_eq!(enum_number(launch_stage, "GA"), Some(4));
        assert_eq!(enum_number(launch_stage, "UNIMPLEMENTED"), Some(6));
        assert_eq!(enum_name(launch_stage, 7).as_deref(), Some("PRELAUNCH"));
        let state = discovery
            .schema(Api::CloudTasks, "Queue")
            .and_then(|s| s.pointer("/properties/state/enum"))
            .and_then(Value::as_array)
            .expect("state enum");
        assert_eq!(enum_number(state, "PAUSED"), Some(2));
        assert_eq!(
            schema_name_for_type_url("type.googleapis.com/google.cloud.run.v2.Service").as_deref(),
            Some("GoogleCloudRunV2Service")
        );
    }
}

//! API Gateway gateways served locally: every ACTIVE gateway in the state gets one front port
//! (its `https://{defaultHostname}` routes there) that serves its current config's OpenAPI
//! document as ESPv2 does: path and method matching, API key checks, per-minute quotas, and
//! forwarding to `x-google-backend` with an ID token of the config's service account. A config
//! change swaps the document under the same port without failing a request.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::services::stopped;
use crate::apis::{apigateway, apikeys, project_number, serviceusage};
use crate::emulator::Emulator;
use crate::lock;

/// The largest request body a gateway forwards (API Gateway's limit is 32 MiB).
const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;
/// ESPv2's backend deadline when `x-google-backend.deadline` is unset.
const DEFAULT_DEADLINE_SECS: f64 = 15.0;
const NOT_DEFINED: &str = "The current request is not defined by this API.";
const UNREGISTERED: &str = "UNAUTHENTICATED: Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.";
const KEY_NOT_VALID: &str = "PERMISSION_DENIED: API key not valid. Please pass a valid API key.";

/// What one gateway serves: read from the state, swapped whole on a change.
#[derive(Debug, Clone, PartialEq)]
struct Served {
    /// `projects/P/locations/REGION/gateways/G`.
    gateway: String,
    hostname: String,
    /// The stored name of the config served.
    config: String,
    managed_service: String,
    /// Whose ID tokens the gateway sends its backends.
    service_account: String,
    document: Value,
}

/// The email of a config's `gatewayServiceAccount` (an email or a resource name ending in one);
/// unset, the project's default compute account.
fn service_account_of(config: &Value, project: &str) -> String {
    config
        .get("gatewayServiceAccount")
        .and_then(Value::as_str)
        .and_then(|account| account.rsplit('/').next())
        .filter(|email| email.contains('@'))
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "{}-compute@developer.gserviceaccount.com",
                project_number(project)
            )
        })
}

fn wanted_gateways(emulator: &Emulator) -> Vec<Served> {
    let state = lock(&emulator.state);
    state
        .gateways
        .iter()
        .filter(|(_, gateway)| gateway.get("state").and_then(Value::as_str) == Some("ACTIVE"))
        .filter_map(|(name, gateway)| {
            let reference = gateway.get("apiConfig")?.as_str()?;
            let config_name = apigateway::find_named(&state.gateway_configs, reference)?;
            let config = state.gateway_configs.get(&config_name)?;
            let api_name = config_name.split("/configs/").next()?;
            let api = state.gateway_apis.get(api_name)?;
            let project = name.split('/').nth(1).unwrap_or_default();
            Some(Served {
                gateway: name.clone(),
                hostname: gateway.get("defaultHostname")?.as_str()?.to_string(),
                managed_service: api.get("managedService")?.as_str()?.to_string(),
                service_account: service_account_of(config, project),
                document: apigateway::openapi_document(config)?,
                config: config_name,
            })
        })
        .collect()
}

/// Quota used per (service, consumer project number, metric) in the current clock minute.
#[derive(Debug, Default)]
pub struct QuotaLedger {
    minute: i64,
    used: HashMap<(String, String, String), i64>,
}

/// One metric an operation charges: its name, the cost, and its per-minute limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    pub metric: String,
    pub cost: i64,
    pub limit: Option<(String, i64)>,
}

impl QuotaLedger {
    /// Charges every metric for `consumer` in `minute` (since the epoch), all or nothing;
    /// `Err` is the first charge that would go over its limit. A new minute starts afresh.
    pub fn charge<'c>(
        &mut self,
        minute: i64,
        service: &str,
        consumer: &str,
        charges: &'c [Charge],
    ) -> Result<(), &'c Charge> {
        if minute != self.minute {
            self.minute = minute;
            self.used.clear();
        }
        let key = |metric: &str| {
            (
                service.to_string(),
                consumer.to_string(),
                metric.to_string(),
            )
        };
        for charge in charges {
            if let Some((_, limit)) = charge.limit {
                let used = self.used.get(&key(&charge.metric)).copied().unwrap_or(0);
                if used + charge.cost > limit {
                    return Err(charge);
                }
            }
        }
        for charge in charges {
            *self.used.entry(key(&charge.metric)).or_default() += charge.cost;
        }
        Ok(())
    }
}

/// One gateway's listening front.
struct GatewayFront {
    address: SocketAddr,
    /// Read once per request: a swap never changes a request already admitted.
    served: RwLock<Arc<Served>>,
    stop: watch::Sender<bool>,
    emulator: Arc<Emulator>,
    client: reqwest::Client,
    quotas: Arc<Mutex<QuotaLedger>>,
}

/// The gateways supervisor: one front per ACTIVE gateway, kept in step with the state.
pub struct GatewayFronts {
    emulator: Arc<Emulator>,
    fronts: Mutex<BTreeMap<String, Arc<GatewayFront>>>,
    /// API-wide quotas, shared by every gateway of an API.
    quotas: Arc<Mutex<QuotaLedger>>,
    stop: watch::Receiver<bool>,
}

impl std::fmt::Debug for GatewayFronts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayFronts").finish_non_exhaustive()
    }
}

impl GatewayFronts {
    pub fn new(emulator: Arc<Emulator>, stop: watch::Receiver<bool>) -> Arc<Self> {
        Arc::new(Self {
            emulator,
            fronts: Mutex::new(BTreeMap::new()),
            quotas: Arc::default(),
            stop,
        })
    }

    /// `(gateway name, http://127.0.0.1:PORT)` of every gateway served, by name.
    pub fn fronts(&self) -> Vec<(String, String)> {
        lock(&self.fronts)
            .iter()
            .map(|(name, front)| (name.clone(), format!("http://{}", front.address)))
            .collect()
    }

    /// Every ACTIVE gateway listens and serves its current config.
    pub fn settled(&self) -> bool {
        let fronts = lock(&self.fronts);
        wanted_gateways(&self.emulator).iter().all(|wanted| {
            fronts.get(&wanted.gateway).is_some_and(|front| {
                **front.served.read().unwrap_or_else(|p| p.into_inner()) == *wanted
            })
        })
    }

    /// Reconciles until stopped: every `period`.
    pub async fn run(self: Arc<Self>, period: Duration) {
        let mut stop = self.stop.clone();
        loop {
            self.reconcile().await;
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = stopped(&mut stop) => break,
            }
        }
        for front in std::mem::take(&mut *lock(&self.fronts)).into_values() {
            let _ = front.stop.send_replace(true);
        }
    }

    /// Opens fronts for new gateways, swaps changed documents in place, closes gone gateways.
    pub async fn reconcile(&self) {
        let wanted = wanted_gateways(&self.emulator);
        let gone: Vec<String> = lock(&self.fronts)
            .keys()
            .filter(|name| !wanted.iter().any(|w| &w.gateway == *name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(front) = lock(&self.fronts).remove(&name) {
                let _ = front.stop.send_replace(true);
                let hostname = &front
                    .served
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .hostname;
                self.emulator
                    .runtime
                    .routes
                    .remove(&format!("https://{hostname}"));
            }
        }
        for served in wanted {
            let existing = lock(&self.fronts).get(&served.gateway).cloned();
            match existing {
                Some(front) => {
                    let mut current = front.served.write().unwrap_or_else(|p| p.into_inner());
                    if **current != served {
                        *current = Arc::new(served);
                    }
                }
                None => {
                    if let Err(error) = self.open(served.clone()).await {
                        tracing::error!(gateway = %served.gateway, %error, "gateway front cannot listen");
                    }
                }
            }
        }
    }

    async fn open(&self, served: Served) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let (stop, mut own_stop) = watch::channel(false);
        let hostname = served.hostname.clone();
        let name = served.gateway.clone();
        let front = Arc::new(GatewayFront {
            address,
            served: RwLock::new(Arc::new(served)),
            stop,
            emulator: Arc::clone(&self.emulator),
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(std::io::Error::other)?,
            quotas: Arc::clone(&self.quotas),
        });
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(Arc::clone(&front));
        let mut global_stop = self.stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    tokio::select! {
                        () = stopped(&mut own_stop) => {}
                        () = stopped(&mut global_stop) => {}
                    }
                })
                .await;
        });
        self.emulator
            .runtime
            .routes
            .set(&format!("https://{hostname}"), &address.to_string());
        lock(&self.fronts).insert(name, front);
        Ok(())
    }
}

/// ESPv2's error body: `{"code": N, "message": "..."}`.
fn esp_error(status: StatusCode, message: &str) -> Response<Body> {
    let body = json!({"code": status.as_u16(), "message": message});
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

/// A request's path variables, by template name (raw, still percent-encoded).
type PathVariables = Vec<(String, String)>;

/// The operation a request runs: the best-matching path template (literal segments win over
/// `{variables}`), its operation for the method, and the path variables.
fn match_operation<'d>(
    document: &'d Value,
    method: &str,
    path: &str,
) -> Option<(&'d Value, PathVariables)> {
    let wanted: Vec<&str> = path.split('/').collect();
    let mut best: Option<(usize, &Value, PathVariables)> = None;
    for (template, item) in document.get("paths")?.as_object()? {
        let Some(operation) = item.get(method.to_ascii_lowercase()) else {
            continue;
        };
        let segments: Vec<&str> = template.split('/').collect();
        if segments.len() != wanted.len() {
            continue;
        }
        let mut literals = 0;
        let mut variables = Vec::new();
        let matched = segments.iter().zip(&wanted).all(|(segment, actual)| {
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(variable) if !actual.is_empty() => {
                    variables.push((variable.to_string(), (*actual).to_string()));
                    true
                }
                Some(_) => false,
                None => {
                    literals += 1;
                    segment == actual
                }
            }
        });
        if matched && best.as_ref().is_none_or(|(score, _, _)| literals > *score) {
            best = Some((literals, operation, variables));
        }
    }
    best.map(|(_, operation, variables)| (operation, variables))
}

/// Where the API key of an operation is read (`in`, `name`), from the apiKey definitions its
/// `security` (or the document's) names; empty when the operation needs no key.
fn key_locations(document: &Value, operation: &Value) -> Vec<(String, String)> {
    let security = operation
        .get("security")
        .or_else(|| document.get("security"))
        .and_then(Value::as_array);
    let mut locations = Vec::new();
    for requirement in security.into_iter().flatten() {
        for scheme in requirement.as_object().into_iter().flat_map(|r| r.keys()) {
            let Some(definition) = document.pointer(&format!("/securityDefinitions/{scheme}"))
            else {
                continue;
            };
            if definition.get("type").and_then(Value::as_str) != Some("apiKey") {
                continue;
            }
            if let (Some(place), Some(name)) = (
                definition.get("in").and_then(Value::as_str),
                definition.get("name").and_then(Value::as_str),
            ) {
                locations.push((place.to_string(), name.to_string()));
            }
        }
    }
    locations
}

fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| crate::conventions::wire::percent_decode(&s.replace('+', " "));
            (decode(name), decode(value))
        })
        .collect()
}

fn key_from_request(
    locations: &[(String, String)],
    query: &str,
    headers: &HeaderMap,
) -> Option<String> {
    let pairs = query_pairs(query);
    locations
        .iter()
        .find_map(|(place, name)| match place.as_str() {
            "query" => pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone()),
            _ => headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        })
}

/// ESPv2's method selector: `1.<service with . and - as _>.<operationId>`.
fn selector(service: &str, operation: &Value) -> String {
    let id = operation
        .get("operationId")
        .and_then(Value::as_str)
        .unwrap_or("unnamed");
    format!("1.{}.{id}", service.replace(['.', '-'], "_"))
}

/// Whether a key's `apiTargets` (none: every API) admit `service` and the method `selector`
/// (methods may end in `*`).
fn target_allows(key: &Value, service: &str, selector: &str) -> bool {
    let Some(targets) = key
        .pointer("/restrictions/apiTargets")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
    else {
        return true;
    };
    targets.iter().any(|target| {
        target.get("service").and_then(Value::as_str) == Some(service)
            && target
                .get("methods")
                .and_then(Value::as_array)
                .filter(|m| !m.is_empty())
                .is_none_or(|methods| {
                    methods.iter().filter_map(Value::as_str).any(|method| {
                        match method.strip_suffix('*') {
                            Some(prefix) => selector.starts_with(prefix),
                            None => method == selector,
                        }
                    })
                })
    })
}

/// The consumer project number of a valid key, or ESPv2's refusal.
fn check_key(
    emulator: &Emulator,
    served: &Served,
    key: &str,
    selector: &str,
) -> Result<String, (StatusCode, String)> {
    let state = lock(&emulator.state);
    let Some((name, key)) = apikeys::key_by_string(&state, key) else {
        return Err((StatusCode::FORBIDDEN, KEY_NOT_VALID.to_string()));
    };
    let service = &served.managed_service;
    if !target_allows(key, service, selector) {
        return Err((
            StatusCode::FORBIDDEN,
            format!(
                "PERMISSION_DENIED: Requests to this API {service} method {selector} are blocked."
            ),
        ));
    }
    let number = name.split('/').nth(1).unwrap_or_default().to_string();
    if !serviceusage::is_enabled(&state, &number, service) {
        return Err((
            StatusCode::FORBIDDEN,
            format!("PERMISSION_DENIED: API {service} is not enabled for the project."),
        ));
    }
    Ok(number)
}

/// What an operation costs (`x-google-quota.metricCosts`) against the document's per-minute,
/// per-project limits.
fn charges(document: &Value, operation: &Value) -> Vec<Charge> {
    let limits = document
        .pointer("/x-google-management/quota/limits")
        .and_then(Value::as_array);
    let number = |v: &Value| v.as_i64().or_else(|| v.as_str()?.parse().ok());
    operation
        .pointer("/x-google-quota/metricCosts")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(metric, cost)| {
            let limit = limits.into_iter().flatten().find_map(|limit| {
                (limit.get("metric").and_then(Value::as_str) == Some(metric.as_str())
                    && limit
                        .get("unit")
                        .and_then(Value::as_str)
                        .is_some_and(|u| u.contains("/min/")))
                .then(|| {
                    let name = limit.get("name").and_then(Value::as_str).unwrap_or(metric);
                    Some((
                        name.to_string(),
                        number(limit.pointer("/values/STANDARD")?)?,
                    ))
                })
                .flatten()
            });
            Charge {
                metric: metric.clone(),
                cost: number(cost).unwrap_or(1),
                limit,
            }
        })
        .collect()
}

/// How a request reaches its backend (`x-google-backend` of the operation, else the document's).
#[derive(Debug, PartialEq)]
struct Backend {
    url: String,
    /// The audience of the ID token sent; `None` with `disable_auth`.
    audience: Option<String>,
    deadline: Duration,
}

/// `scheme://host` of an address.
fn origin(address: &str) -> String {
    match address.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            format!("{scheme}://{}", &rest[..end])
        }
        None => address.to_string(),
    }
}

fn backend_for(
    document: &Value,
    operation: &Value,
    path: &str,
    query: &str,
    variables: &[(String, String)],
) -> Option<Backend> {
    let (rule, default_translation) = match operation.get("x-google-backend") {
        Some(rule) => (rule, "CONSTANT_ADDRESS"),
        None => (document.get("x-google-backend")?, "APPEND_PATH_TO_ADDRESS"),
    };
    let address = rule.get("address")?.as_str()?;
    let translation = rule
        .get("path_translation")
        .and_then(Value::as_str)
        .unwrap_or(default_translation);
    let url = if translation == "APPEND_PATH_TO_ADDRESS" {
        let mut url = format!("{}{path}", address.trim_end_matches('/'));
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    } else {
        let mut params: Vec<String> = Vec::new();
        if !query.is_empty() {
            params.push(query.to_string());
        }
        params.extend(
            variables
                .iter()
                .map(|(name, value)| format!("{name}={value}")),
        );
        match params.is_empty() {
            true => address.to_string(),
            false => {
                let joiner = if address.contains('?') { '&' } else { '?' };
                format!("{address}{joiner}{}", params.join("&"))
            }
        }
    };
    let audience = (rule.get("disable_auth").and_then(Value::as_bool) != Some(true)).then(|| {
        rule.get("jwt_audience")
            .and_then(Value::as_str)
            .map_or_else(|| origin(address), str::to_string)
    });
    let deadline = rule
        .get("deadline")
        .and_then(Value::as_f64)
        .filter(|d| *d > 0.0)
        .unwrap_or(DEFAULT_DEADLINE_SECS);
    Some(Backend {
        url,
        audience,
        deadline: Duration::from_secs_f64(deadline),
    })
}

async fn serve(
    AxumState(front): AxumState<Arc<GatewayFront>>,
    request: Request<Body>,
) -> Response<Body> {
    let served = Arc::clone(&front.served.read().unwrap_or_else(|p| p.into_inner()));
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let method = request.method().as_str().to_string();
    let Some((operation, variables)) = match_operation(&served.document, &method, &path) else {
        return esp_error(StatusCode::NOT_FOUND, NOT_DEFINED);
    };
    let emulator = &front.emulator;
    let locations = key_locations(&served.document, operation);
    let consumer = if locations.is_empty() {
        None
    } else {
        let Some(key) = key_from_request(&locations, &query, request.headers()) else {
            return esp_error(StatusCode::UNAUTHORIZED, UNREGISTERED);
        };
        let selector = selector(&served.managed_service, operation);
        match check_key(emulator, &served, &key, &selector) {
            Ok(number) => Some(number),
            Err((status, message)) => return esp_error(status, &message),
        }
    };
    if let Some(consumer) = &consumer {
        let charges = charges(&served.document, operation);
        let minute = emulator.runtime.clock.now().timestamp().div_euclid(60);
        let mut ledger = lock(&front.quotas);
        if let Err(over) = ledger.charge(minute, &served.managed_service, consumer, &charges) {
            let metric_name = served
                .document
                .pointer("/x-google-management/metrics")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|m| m.get("name").and_then(Value::as_str) == Some(over.metric.as_str()))
                .and_then(|m| m.get("displayName").and_then(Value::as_str))
                .unwrap_or(&over.metric)
                .to_string();
            let limit = over
                .limit
                .as_ref()
                .map(|(n, _)| n.as_str())
                .unwrap_or_default();
            return esp_error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!(
                    "RESOURCE_EXHAUSTED: Quota exceeded for quota metric '{metric_name}' and limit '{limit}' of service '{}' for consumer 'project_number:{consumer}'.",
                    served.managed_service
                ),
            );
        }
    }
    let Some(backend) = backend_for(&served.document, operation, &path, &query, &variables) else {
        return esp_error(StatusCode::NOT_FOUND, NOT_DEFINED);
    };
    forward(&front, &served, backend, request).await
}

async fn forward(
    front: &GatewayFront,
    served: &Served,
    backend: Backend,
    request: Request<Body>,
) -> Response<Body> {
    let (head, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REQUEST_BYTES).await else {
        return esp_error(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    let runtime = &front.emulator.runtime;
    let mut outgoing = front
        .client
        .request(head.method.clone(), runtime.routes.resolve(&backend.url))
        .timeout(backend.deadline)
        .body(bytes);
    for (name, value) in &head.headers {
        let replaced = backend.audience.is_some() && name == "authorization";
        if name != "host" && name != "content-length" && !replaced {
            outgoing = outgoing.header(name, value);
        }
    }
    if let Some(audience) = &backend.audience {
        if let Some(original) = head.headers.get("authorization") {
            outgoing = outgoing.header("x-forwarded-authorization", original);
        }
        let token =
            runtime
                .identity
                .id_token(&served.service_account, audience, runtime.clock.now());
        outgoing = outgoing.header("authorization", format!("Bearer {token}"));
    }
    match outgoing.send().await {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if name != "content-length" && name != "transfer-encoding" {
                    response = response.header(name, value);
                }
            }
            match answer.bytes().await {
                Ok(body) => response.body(Body::from(body)).unwrap_or_default(),
                Err(error) if error.is_timeout() => {
                    esp_error(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout")
                }
                Err(_) => esp_error(
                    StatusCode::BAD_GATEWAY,
                    "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
                ),
            }
        }
        Err(error) if error.is_timeout() => {
            esp_error(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout")
        }
        Err(_) => esp_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Settings;
    use crate::conventions::wire::base64;
    use crate::http::HttpRequest;

    const BACKEND: &str = "https://orders-abc123-uc.a.run.app";
    const AUDIENCE: &str = "https://orders.example.com";
    const ACCOUNT: &str = "gateway@p1.iam.gserviceaccount.com";

    async fn send(emulator: &Emulator, method: &str, path: &str, body: Value) -> Value {
        let (raw_path, raw_query) = match path.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (path.to_string(), None),
        };
        let response = emulator
            .handle(HttpRequest {
                method: method.into(),
                raw_path,
                raw_query,
                headers: HeaderMap::new(),
                body: serde_json::to_vec(&body).unwrap_or_default().into(),
            })
            .await;
        let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        assert_eq!(response.status, 200, "{method} {path}: {answer}");
        answer
    }

    /// A backend answering what it received: method, path, query and the auth headers; `/slow`
    /// answers after two seconds.
    async fn echo_backend() -> SocketAddr {
        async fn echo(request: Request<Body>) -> Response<Body> {
            if request.uri().path().ends_with("/slow") {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            let header = |name: &str| {
                request
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let answer = json!({
                "method": request.method().as_str(),
                "path": request.uri().path(),
                "query": request.uri().query(),
                "authorization": header("authorization"),
                "forwarded": header("x-forwarded-authorization"),
            });
            Response::new(Body::from(answer.to_string()))
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let app = axum::Router::new().fallback(echo);
        tokio::spawn(async move { axum::serve(listener, app).await });
        address
    }

    fn document(prefix: &str) -> Value {
        json!({
            "swagger": "2.0",
            "info": {"title": "orders", "version": "1"},
            "x-google-backend": {"address": format!("{BACKEND}{prefix}"), "jwt_audience": AUDIENCE},
            "securityDefinitions": {"api_key": {"type": "apiKey", "name": "key", "in": "query"}},
            "x-google-management": {
                "metrics": [{"name": "read-requests", "displayName": "Read requests", "valueType": "INT64", "metricKind": "DELTA"}],
                "quota": {"limits": [{"name": "read-limit", "metric": "read-requests", "unit": "1/min/{project}", "values": {"STANDARD": 3}}]}
            },
            "paths": {
                "/orders/{id}": {"get": {"operationId": "getOrder", "security": [{"api_key": []}],
                    "x-google-quota": {"metricCosts": {"read-requests": 1}}}},
                "/orders/summary": {"get": {"operationId": "summary"}},
                "/open": {"get": {"operationId": "open"}},
                "/slow": {"get": {"operationId": "slow",
                    "x-google-backend": {"address": format!("{BACKEND}/slow"), "deadline": 0.3}}}
            }
        })
    }

    fn config(prefix: &str) -> Value {
        json!({
            "gatewayServiceAccount": ACCOUNT,
            "openapiDocuments": [{"document": {"path": "openapi.json",
                "contents": base64(document(prefix).to_string().as_bytes())}}]
        })
    }

    const API: &str = "/v1/projects/p1/locations/global/apis/orders";
    const GATEWAY: &str = "/v1/projects/p1/locations/us-central1/gateways";

    /// An emulator with api `orders` (config `v1`), gateway `edge`, its managed service enabled
    /// in p1, a key for it and a key for another API; its fronts reconciled once.
    async fn gateway() -> (
        Arc<Emulator>,
        Arc<GatewayFronts>,
        String,
        String,
        watch::Sender<bool>,
    ) {
        let emulator = Arc::new(
            Emulator::new(Settings {
                operation_polls: 0,
                ..Settings::default()
            })
            .expect("emulator"),
        );
        let backend = echo_backend().await;
        emulator.runtime.routes.set(BACKEND, &backend.to_string());
        let api = send(
            &emulator,
            "POST",
            "/v1/projects/p1/locations/global/apis?apiId=orders",
            json!({}),
        )
        .await;
        let service = api["response"]["managedService"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        send(
            &emulator,
            "POST",
            &format!("{API}/configs?apiConfigId=v1"),
            config(""),
        )
        .await;
        send(
            &emulator,
            "POST",
            &format!("{GATEWAY}?gatewayId=edge"),
            json!({"apiConfig": "projects/p1/locations/global/apis/orders/configs/v1"}),
        )
        .await;
        send(
            &emulator,
            "POST",
            &format!("/v1/projects/p1/services/{service}:enable"),
            json!({}),
        )
        .await;
        let mut keys = Vec::new();
        for (id, target) in [
            ("good", service.as_str()),
            ("elsewhere", "other.googleapis.com"),
        ] {
            let created = send(
                &emulator,
                "POST",
                &format!("/v2/projects/p1/locations/global/keys?keyId={id}"),
                json!({"restrictions": {"apiTargets": [{"service": target}]}}),
            )
            .await;
            keys.push(
                created["response"]["keyString"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        let (stop, stopped) = watch::channel(false);
        let fronts = GatewayFronts::new(Arc::clone(&emulator), stopped);
        fronts.reconcile().await;
        assert!(fronts.settled());
        let elsewhere = keys.pop().unwrap_or_default();
        (
            emulator,
            fronts,
            keys.pop().unwrap_or_default(),
            elsewhere,
            stop,
        )
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
    }

    async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = client().get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("front answers");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn the_front_checks_keys_and_quotas_and_forwards_with_an_id_token() {
        let (emulator, fronts, good, elsewhere, _stop) = gateway().await;
        let fronts = fronts.fronts();
        assert_eq!(
            fronts[0].0,
            "projects/p1/locations/us-central1/gateways/edge"
        );
        let url = fronts[0].1.clone();
        assert_eq!(
            get(&format!("{url}/nothing"), &[]).await,
            (404, json!({"code": 404, "message": NOT_DEFINED}))
        );
        assert_eq!(
            get(&format!("{url}/orders/7"), &[]).await,
            (401, json!({"code": 401, "message": UNREGISTERED}))
        );
        assert_eq!(
            get(&format!("{url}/orders/7?key=AIzaNotAKey"), &[]).await,
            (403, json!({"code": 403, "message": KEY_NOT_VALID}))
        );
        let (status, blocked) = get(&format!("{url}/orders/7?key={elsewhere}"), &[]).await;
        assert_eq!(status, 403, "{blocked}");
        assert!(
            blocked["message"]
                .as_str()
                .unwrap_or_default()
                .ends_with("getOrder are blocked."),
            "{blocked}"
        );
        // A fresh clock minute, so the quota below is not split by a real minute boundary.
        let into_minute = emulator
            .runtime
            .clock
            .now()
            .timestamp_millis()
            .rem_euclid(60_000);
        emulator.runtime.clock.advance(Duration::from_millis(
            u64::try_from(60_000 - into_minute).unwrap_or(0),
        ));
        let (status, echoed) = get(
            &format!("{url}/orders/7?key={good}"),
            &[("authorization", "Bearer caller")],
        )
        .await;
        assert_eq!(status, 200, "{echoed}");
        assert_eq!(echoed["path"], "/orders/7");
        assert_eq!(echoed["query"], format!("key={good}"));
        assert_eq!(echoed["forwarded"], "Bearer caller");
        let token = echoed["authorization"].as_str().unwrap_or_default();
        let claims = emulator
            .runtime
            .identity
            .verify_id_token(
                token.strip_prefix("Bearer ").unwrap_or_default(),
                &[AUDIENCE.to_string()],
                emulator.runtime.clock.now(),
            )
            .expect("an ID token for the jwt_audience");
        assert_eq!(claims["email"], ACCOUNT);
        for _ in 0..2 {
            assert_eq!(get(&format!("{url}/orders/8?key={good}"), &[]).await.0, 200);
        }
        let (status, exhausted) = get(&format!("{url}/orders/9?key={good}"), &[]).await;
        assert_eq!(status, 429, "{exhausted}");
        let number = project_number("p1");
        assert!(
            exhausted["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("RESOURCE_EXHAUSTED: Quota exceeded for quota metric 'Read requests' and limit 'read-limit' of service 'orders-")
                && exhausted["message"].as_str().unwrap_or_default().ends_with(&format!("for consumer 'project_number:{number}'.")),
            "{exhausted}"
        );
        assert_eq!(
            get(&format!("{url}/open"), &[]).await.0,
            200,
            "no key needed, no quota"
        );
        emulator.runtime.clock.advance(Duration::from_secs(60));
        assert_eq!(get(&format!("{url}/orders/9?key={good}"), &[]).await.0, 200);
        assert_eq!(
            get(&format!("{url}/orders/summary"), &[]).await.0,
            200,
            "literal paths win"
        );
        let (status, late) = get(&format!("{url}/slow"), &[]).await;
        assert_eq!(
            (status, &late["message"]),
            (504, &json!("upstream request timeout"))
        );
        let service = lock(&emulator.state)
            .gateway_apis
            .values()
            .next()
            .expect("api")["managedService"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        send(
            &emulator,
            "POST",
            &format!("/v1/projects/p1/services/{service}:disable"),
            json!({}),
        )
        .await;
        let (status, disabled) = get(&format!("{url}/orders/9?key={good}"), &[]).await;
        assert_eq!(status, 403, "{disabled}");
        assert!(
            disabled["message"]
                .as_str()
                .unwrap_or_default()
                .ends_with("is not enabled for the project.")
        );
    }

    #[tokio::test]
    async fn a_config_swap_keeps_the_port_and_loses_no_request() {
        let (emulator, fronts, _, _, _stop) = gateway().await;
        let url = fronts.fronts()[0].1.clone();
        send(
            &emulator,
            "POST",
            &format!("{API}/configs?apiConfigId=v2"),
            config("/v2"),
        )
        .await;
        let traffic: Vec<_> = (0..6)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move {
                    let mut statuses = Vec::new();
                    for _ in 0..25 {
                        statuses.push(get(&format!("{url}/open"), &[]).await.0);
                    }
                    statuses
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        send(
            &emulator,
            "PATCH",
            &format!("{GATEWAY}/edge?updateMask=apiConfig"),
            json!({"apiConfig": "projects/p1/locations/global/apis/orders/configs/v2"}),
        )
        .await;
        fronts.reconcile().await;
        for statuses in traffic {
            let statuses = statuses.await.expect("traffic");
            assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        }
        assert_eq!(fronts.fronts()[0].1, url, "the port stays");
        assert!(fronts.settled());
        let (_, echoed) = get(&format!("{url}/open"), &[]).await;
        assert_eq!(echoed["path"], "/v2/open");
    }

    #[test]
    fn keys_are_read_where_their_definition_says() {
        let document = json!({
            "security": [{"header_key": []}],
            "securityDefinitions": {
                "header_key": {"type": "apiKey", "name": "x-api-key", "in": "header"},
                "query_key": {"type": "apiKey", "name": "key", "in": "query"},
                "google_id_token": {"type": "oauth2", "flow": "implicit"}
            }
        });
        let inherited = key_locations(&document, &json!({}));
        assert_eq!(
            inherited,
            vec![("header".to_string(), "x-api-key".to_string())]
        );
        let mut headers = HeaderMap::new();
        headers.insert("X-API-KEY", "AIzaHeader".parse().expect("header"));
        assert_eq!(
            key_from_request(&inherited, "key=AIzaQuery", &headers).as_deref(),
            Some("AIzaHeader")
        );
        let own = key_locations(
            &document,
            &json!({"security": [{"query_key": []}, {"google_id_token": []}]}),
        );
        assert_eq!(
            key_from_request(&own, "a=1&key=AIza%2Bq", &headers).as_deref(),
            Some("AIza+q")
        );
        assert!(
            key_locations(&document, &json!({"security": []})).is_empty(),
            "an operation may opt out"
        );
    }

    #[test]
    fn quotas_charge_all_or_nothing_per_consumer_and_minute() {
        let mut ledger = QuotaLedger::default();
        let charges = [
            Charge {
                metric: "reads".into(),
                cost: 2,
                limit: Some(("read-limit".into(), 3)),
            },
            Charge {
                metric: "calls".into(),
                cost: 1,
                limit: None,
            },
        ];
        assert!(ledger.charge(1, "s", "c1", &charges).is_ok());
        assert_eq!(
            ledger
                .charge(1, "s", "c1", &charges)
                .map_err(|c| c.metric.clone()),
            Err("reads".into())
        );
        assert!(
            ledger.charge(1, "s", "c2", &charges).is_ok(),
            "another consumer"
        );
        assert!(
            ledger.charge(2, "s", "c1", &charges).is_ok(),
            "the next minute"
        );
    }

    #[test]
    fn backends_translate_paths_and_pick_audiences_as_espv2_does() {
        let document = json!({"x-google-backend": {"address": "https://a.run.app/base/"}});
        let append =
            backend_for(&document, &json!({}), "/orders/7", "key=k", &[]).expect("backend");
        assert_eq!(append.url, "https://a.run.app/base/orders/7?key=k");
        assert_eq!(append.audience.as_deref(), Some("https://a.run.app"));
        assert_eq!(append.deadline, Duration::from_secs(15));
        let operation = json!({"x-google-backend": {"address": "https://b.run.app/getOrder", "disable_auth": true}});
        let variables = [("id".to_string(), "7".to_string())];
        let constant =
            backend_for(&document, &operation, "/orders/7", "", &variables).expect("backend");
        assert_eq!(constant.url, "https://b.run.app/getOrder?id=7");
        assert_eq!(constant.audience, None);
    }
}

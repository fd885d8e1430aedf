//! The HTTP front: one axum fallback that records, faults, routes (via the discovery table),
//! validates, dispatches to an API handler, persists and renders every request.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State as AxumState;
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::apis::{self, Call, Context, Reply};
use crate::conventions::payload::{normalize_request, render_response};
use crate::conventions::wire::snake_case;
use crate::conventions::{ApiError, Code, ErrorStyle, Query};
use crate::discovery::{Discovery, Route, RouteMatch};
use crate::emulator::{Emulator, RequestRecord};
use crate::http::{HttpRequest, HttpResponse};
use crate::{EmulatorError, Settings, lock};

/// Largest request body accepted (Storage uploads included).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

impl Emulator {
    pub async fn handle(&self, request: HttpRequest) -> HttpResponse {
        if request.raw_path == "/_emulator" || request.raw_path.starts_with("/_emulator/") {
            return crate::admin::handle(self, &request);
        }
        if request.method == "GET" && request.raw_path == crate::runtime::identity::JWKS_PATH {
            return HttpResponse::json(200, &self.runtime.identity.jwks());
        }
        let decision = lock(&self.faults).decide_request(
            &request.method,
            &request.raw_path,
            request.raw_query.as_deref().unwrap_or_default(),
        );
        if !decision.latency.is_zero() {
            tokio::time::sleep(decision.latency).await;
        }
        let response = match decision.error_status {
            Some(status) => {
                let code = Code::from_http_status(status);
                let error = ApiError::new(
                    code,
                    format!("Injected fault: HTTP {status} {}.", code.status_name()),
                )
                .with_http_status(status);
                HttpResponse::error(&error, error_style_for_path(&request.raw_path))
            }
            None if apis::registry::is_registry_path(&request.raw_path) => {
                apis::registry::handle(self, &request)
            }
            None if apis::shopify::is_shopify_path(&request.raw_path) => {
                apis::shopify::handle(self, &request)
            }
            None if apis::crm::is_crm_path(&request.raw_path) => {
                apis::crm::handle(self, &request).await
            }
            None => self.dispatch(&request),
        };
        lock(&self.requests).push(RequestRecord {
            method: request.method.clone(),
            path: crate::conventions::wire::percent_decode(&request.raw_path),
            query: request.raw_query.clone().unwrap_or_default(),
            status: response.status,
            caller: crate::runtime::Identity::caller_of(&request.headers),
        });
        response
    }

    fn dispatch(&self, request: &HttpRequest) -> HttpResponse {
        match self.discovery.match_route(
            routed_method(request),
            &request.raw_path,
            apis::is_implemented,
        ) {
            RouteMatch::NotFound => HttpResponse::html_not_found(&request.raw_path),
            RouteMatch::Unimplemented(route) => HttpResponse::error(
                &ApiError::unimplemented(format!(
                    "Operation is not implemented, or supported, or enabled. ({} is not emulated)",
                    route.id
                )),
                route.api.error_style(),
            ),
            RouteMatch::Found { route, params } => {
                let route = self.operation_route(route, &params).unwrap_or(route);
                let query = Query::parse(request.raw_query.as_deref());
                let style = route.api.error_style();
                match self.call(route, params, &query, request) {
                    Ok(reply) => self.render(route, &query, reply),
                    Err(error) => HttpResponse::error(&error, style),
                }
            }
        }
    }

    /// APIs share operation paths (`v1/projects/*/locations/*/operations/*`: Artifact Registry,
    /// API Gateway); an operation is served by the route of the API that started it (its
    /// metadata's type URL), so the service gate and the rendering are that API's.
    fn operation_route<'d>(
        &'d self,
        route: &'d Route,
        params: &std::collections::BTreeMap<String, String>,
    ) -> Option<&'d Route> {
        if !route.id.contains(".operations.") {
            return None;
        }
        let name = format!(
            "projects/{}/locations/{}/operations/{}",
            params.get("projectsId")?,
            params.get("locationsId")?,
            params.get("operationsId")?
        );
        let type_url = {
            let state = lock(&self.state);
            let operation = &state.operations.get(&name)?.operation;
            operation
                .pointer("/metadata/@type")
                .and_then(Value::as_str)?
                .to_string()
        };
        let api = self.discovery.api_of_type_url(&type_url)?;
        if api == route.api {
            return None;
        }
        self.discovery
            .same_route_of(api, route, apis::is_implemented)
    }

    fn call(
        &self,
        route: &Route,
        params: std::collections::BTreeMap<String, String>,
        query: &Query,
        request: &HttpRequest,
    ) -> Result<Reply, ApiError> {
        if route.api.is_proto_based() {
            check_query_params(&self.discovery, route, query)?;
        }
        let body = self.parse_body(route, &request.body)?;
        let call = Call {
            route,
            params,
            query,
            body,
            raw_body: &request.body,
            headers: &request.headers,
            now: self.runtime.clock.now(),
        };
        let handler = apis::handler_for(&route.id)
            .ok_or_else(|| ApiError::unimplemented(route.id.clone()))?;
        let mut state = lock(&self.state);
        if self.settings.enforce_services
            && let Some(service) = apis::serviceusage::service_of(route.api)
            && let Some(project) = call
                .params
                .get("projectsId")
                .or_else(|| call.params.get("project"))
                .or_else(|| call.params.get("projectId"))
            && !apis::serviceusage::is_enabled(&state, project, service)
        {
            return Err(apis::serviceusage::service_disabled(project, service));
        }
        let mut context = Context {
            state: &mut state,
            discovery: &self.discovery,
            settings: &self.settings,
            completions: &self.completions,
            runtime: &self.runtime,
            table_rows: &self.table_rows,
        };
        let reply = handler(&mut context, &call)?;
        if route.http_method != "GET" || apis::reads_mutate(&route.id) {
            self.persist(&state);
        }
        Ok(reply)
    }

    fn parse_body(&self, route: &Route, raw: &Bytes) -> Result<Option<Value>, ApiError> {
        let Some(schema_name) = route.request_schema.as_deref() else {
            return Ok(None);
        };
        if route.is_media_upload {
            return Ok(None);
        }
        let parsed: Value = if raw.iter().all(u8::is_ascii_whitespace) {
            Value::Object(serde_json::Map::new())
        } else {
            serde_json::from_slice(raw).map_err(|error| {
                ApiError::bad_field(
                    "",
                    format!("Invalid JSON payload received. Unexpected token.\n{error}"),
                )
            })?
        };
        if !route.api.is_proto_based() {
            return Ok(Some(parsed));
        }
        let root_field = request_root_field(schema_name);
        normalize_request(&self.discovery, route.api, schema_name, parsed, &root_field).map(Some)
    }

    fn render(&self, route: &Route, query: &Query, reply: Reply) -> HttpResponse {
        match reply {
            Reply::Json(value) => {
                let value = if route.api.is_proto_based() {
                    render_response(
                        &self.discovery,
                        route.api,
                        route.response_schema.as_deref(),
                        value,
                        query.wants_int_enums(),
                    )
                } else {
                    value
                };
                HttpResponse::json(200, &value)
            }
            Reply::Media { bytes, headers } => HttpResponse {
                status: 200,
                headers,
                body: bytes,
            },
            Reply::NoContent => HttpResponse {
                status: 204,
                headers: Vec::new(),
                body: Vec::new(),
            },
            Reply::ResumeIncomplete { received } => HttpResponse {
                status: 308,
                headers: (received > 0)
                    .then(|| ("Range".to_string(), format!("bytes=0-{}", received - 1)))
                    .into_iter()
                    .collect(),
                body: Vec::new(),
            },
        }
    }
}

/// The method a request is routed as: a resumable upload's chunks (`PUT /upload/...?upload_id=`)
/// continue the upload method that started the session (a POST).
fn routed_method(request: &HttpRequest) -> &str {
    let chunk = request.method == "PUT"
        && request.raw_path.starts_with("/upload/")
        && Query::parse(request.raw_query.as_deref())
            .non_empty("upload_id")
            .is_some();
    if chunk { "POST" } else { &request.method }
}

/// The error family of a path, for answers given before routing (injected faults).
fn error_style_for_path(raw_path: &str) -> ErrorStyle {
    if raw_path.contains("/storage/v1/") {
        ErrorStyle::Storage
    } else if raw_path.starts_with("/bigquery/v2/") || raw_path.starts_with("/upload/bigquery/v2/")
    {
        ErrorStyle::BigQuery
    } else {
        ErrorStyle::Proto
    }
}

/// The proto field a request body binds to: `Queue` -> `queue`, `GoogleCloudRunV2Service` ->
/// `service`; whole-request bodies (`PauseQueueRequest`) bind to the root.
fn request_root_field(schema_name: &str) -> String {
    if schema_name.ends_with("Request") {
        return String::new();
    }
    let short = [
        "GoogleCloudRunV2",
        "GoogleLongrunning",
        "GoogleIamV1",
        "GoogleCloudBillingBudgetsV1",
        "GoogleApiServiceusageV1",
        "Apigateway",
        "V2",
    ]
    .iter()
    .find_map(|prefix| schema_name.strip_prefix(prefix))
    .unwrap_or(schema_name);
    let mut chars = short.chars();
    let lowered: String = chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .into_iter()
        .chain(chars)
        .collect();
    snake_case(&lowered)
}

/// Proto-based APIs reject query parameters the method does not declare.
fn check_query_params(discovery: &Discovery, route: &Route, query: &Query) -> Result<(), ApiError> {
    for name in query.names() {
        let bare = name.strip_prefix('$').unwrap_or(name);
        let known = route.query_params.contains(name)
            || discovery.is_global_param(route.api, name)
            || discovery.is_global_param(route.api, bare)
            || name == "$.xgafv";
        if !known {
            return Err(ApiError::bad_field(
                "",
                format!(
                    "Invalid JSON payload received. Unknown name \"{name}\": Cannot bind query parameter. Field '{name}' could not be found in request message."
                ),
            ));
        }
    }
    Ok(())
}

async fn axum_entry(
    AxumState(emulator): AxumState<Arc<Emulator>>,
    request: Request<Body>,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            let error = ApiError::invalid_argument("Request body too large or unreadable.")
                .with_http_status(413);
            return into_axum(HttpResponse::error(&error, ErrorStyle::Proto));
        }
    };
    let request = HttpRequest {
        method: parts.method.as_str().to_string(),
        raw_path: parts.uri.path().to_string(),
        raw_query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
    };
    into_axum(emulator.handle(request).await)
}

fn into_axum(response: HttpResponse) -> Response<Body> {
    let mut out = Response::new(Body::from(response.body));
    *out.status_mut() =
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            out.headers_mut().append(name, value);
        }
    }
    out
}

/// A started emulator serving on a loopback port.
#[derive(Debug)]
pub struct RunningEmulator {
    address: SocketAddr,
    emulator: Arc<Emulator>,
    shutdown: Option<oneshot::Sender<()>>,
    /// Tells the execution plane's runners to stop.
    runners_stop: tokio::sync::watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
}

/// Binds `127.0.0.1:port` (0 = a free port), loads state, and serves on the current tokio
/// runtime. Returns once the listener is bound and the server task is running.
pub async fn start(settings: Settings, port: u16) -> Result<RunningEmulator, EmulatorError> {
    let emulator = Arc::new(Emulator::new(settings)?);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|source| EmulatorError::Bind { port, source })?;
    let address = listener
        .local_addr()
        .map_err(|source| EmulatorError::Bind { port, source })?;
    let app = axum::Router::new()
        .fallback(axum_entry)
        .with_state(Arc::clone(&emulator));
    let _ = emulator.runtime.url.set(format!("http://{address}"));
    let (runners_stop, runners_stopped) = tokio::sync::watch::channel(false);
    crate::runtime::start_runners(&emulator, &runners_stopped);
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = shutdown_rx.await;
            })
            .await
    });
    Ok(RunningEmulator {
        address,
        emulator,
        shutdown: Some(shutdown_tx),
        runners_stop,
        server,
    })
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The served emulator, for an in-process host of the execution plane (`stackctl up`).
    pub fn emulator(&self) -> Arc<Emulator> {
        Arc::clone(&self.emulator)
    }

    /// Stops accepting requests, waits for in-flight ones, and flushes the state.
    pub async fn shutdown(mut self) {
        let _ = self.runners_stop.send(true);
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = (&mut self.server).await;
        let state = lock(&self.emulator.state).clone();
        self.emulator.persist(&state);
    }

    /// Serves until the server stops (it only stops on an I/O error).
    pub async fn serve_forever(mut self) -> Result<(), EmulatorError> {
        let _keep_open = self.shutdown.take();
        match (&mut self.server).await {
            Ok(result) => result.map_err(EmulatorError::Serve),
            Err(join_error) => Err(EmulatorError::Serve(std::io::Error::other(join_error))),
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Drives an in-memory [`Emulator`] without a socket.
    use axum::http::HeaderMap;

    use super::*;

    pub struct TestEmulator {
        pub emulator: Emulator,
    }

    impl TestEmulator {
        pub fn new(settings: Settings) -> Self {
            Self {
                emulator: Emulator::new(settings).expect("emulator starts"),
            }
        }

        pub fn with_polls(polls: u32) -> Self {
            Self::new(Settings {
                operation_polls: polls,
                ..Settings::default()
            })
        }

        pub async fn send(
            &self,
            method: &str,
            path_and_query: &str,
            body: Option<Value>,
        ) -> (u16, Value) {
            let bytes = body
                .map(|b| serde_json::to_vec(&b).expect("json"))
                .unwrap_or_default();
            let response = self.raw(method, path_and_query, bytes, &[]).await;
            let value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
            (response.status, value)
        }

        pub async fn raw(
            &self,
            method: &str,
            path_and_query: &str,
            body: Vec<u8>,
            headers: &[(&str, &str)],
        ) -> HttpResponse {
            let (path, query) = match path_and_query.split_once('?') {
                Some((p, q)) => (p.to_string(), Some(q.to_string())),
                None => (path_and_query.to_string(), None),
            };
            let mut header_map = HeaderMap::new();
            for (name, value) in headers {
                header_map.insert(
                    HeaderName::try_from(*name).expect("header name"),
                    HeaderValue::try_from(*value).expect("header value"),
                );
            }
            self.emulator
                .handle(HttpRequest {
                    method: method.into(),
                    raw_path: path,
                    raw_query: query,
                    headers: header_map,
                    body: body.into(),
                })
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::testing::TestEmulator;
    use super::*;

    #[tokio::test]
    async fn unknown_paths_get_html_404_and_known_unimplemented_methods_501() {
        let emulator = TestEmulator::with_polls(0);
        let response = emulator.raw("GET", "/nothing/here", Vec::new(), &[]).await;
        assert_eq!(response.status, 404);
        assert!(String::from_utf8_lossy(&response.body).contains("Error 404 (Not Found)"));
        let (status, body) = emulator
            .send("GET", "/v2/projects/p/locations/l", None)
            .await;
        assert_eq!(status, 501);
        assert_eq!(body["error"]["status"], "UNIMPLEMENTED");
    }

    #[tokio::test]
    async fn unknown_query_params_are_rejected_like_google() {
        let emulator = TestEmulator::with_polls(0);
        let (status, body) = emulator
            .send("GET", "/v2/projects/p/locations/l/queues?bogus=1", None)
            .await;
        assert_eq!(status, 400);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("Unknown name \"bogus\"")
        );
        let (status, _) = emulator
            .send("GET", "/v2/projects/p/locations/l/queues?%24alt=json%3Benum-encoding%3Dint&filter=&pageSize=0&pageToken=", None)
            .await;
        assert_eq!(status, 200);
    }

    #[tokio::test]
    async fn request_log_and_faults_via_admin() {
        let emulator = TestEmulator::with_polls(0);
        let rules = json!({"rules": [{"method": "GET", "path_contains": "/queues", "status": 503, "count": 1}]});
        let (status, _) = emulator
            .send("POST", "/_emulator/faults", Some(rules))
            .await;
        assert_eq!(status, 200);
        let (status, body) = emulator
            .send("GET", "/v2/projects/p/locations/l/queues", None)
            .await;
        assert_eq!(
            (status, body["error"]["status"].clone()),
            (503, json!("UNAVAILABLE"))
        );
        let (status, _) = emulator
            .send("GET", "/v2/projects/p/locations/l/queues", None)
            .await;
        assert_eq!(status, 200);
        let (_, log) = emulator.send("GET", "/_emulator/requests", None).await;
        assert_eq!(log.as_array().map(Vec::len), Some(2));
        assert_eq!(log[0]["status"], 503);
        assert_eq!(log[1]["path"], "/v2/projects/p/locations/l/queues");
        emulator.send("DELETE", "/_emulator/requests", None).await;
        let (_, log) = emulator.send("GET", "/_emulator/requests", None).await;
        assert_eq!(log, json!([]));
    }

    #[test]
    fn request_bodies_bind_to_the_right_root_field() {
        assert_eq!(request_root_field("Queue"), "queue");
        assert_eq!(request_root_field("GoogleCloudRunV2Service"), "service");
        assert_eq!(request_root_field("PauseQueueRequest"), "");
    }
}

#[cfg(test)]
mod socket_tests {
    use std::io::{Read, Write};

    use super::*;

    /// A minimal HTTP/1.1 client (one request per connection) so tests need no extra crates.
    fn http(url: &str, method: &str, path: &str, body: &str) -> (u16, String) {
        let address = url.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(address).expect("connect");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn state_survives_restart_and_the_dir_lock_is_exclusive() {
        let dir = std::env::temp_dir().join(format!("gcp-emulator-test-{}", uuid::Uuid::new_v4()));
        let settings = Settings {
            state_dir: Some(dir.clone()),
            operation_polls: 0,
            ..Settings::default()
        };
        let running = start(settings.clone(), 0).await.expect("starts");
        assert!(running.url().starts_with("http://127.0.0.1:"));
        let locked = start(settings.clone(), 0).await;
        match locked {
            Err(EmulatorError::StateDirLocked {
                dir: locked_dir, ..
            }) => assert_eq!(locked_dir, dir),
            other => panic!("expected a lock error, got {other:?}"),
        }
        let url = running.url();
        let queue = r#"{"name":"projects/p1/locations/l/queues/kept"}"#;
        let (status, body) = tokio::task::spawn_blocking(move || {
            http(&url, "POST", "/v2/projects/p1/locations/l/queues", queue)
        })
        .await
        .expect("join");
        assert_eq!(status, 200, "{body}");
        let (health, _) = {
            let url = running.url();
            tokio::task::spawn_blocking(move || http(&url, "GET", "/_emulator/health", ""))
                .await
                .expect("join")
        };
        assert_eq!(health, 200);
        // Written on change: readable before shutdown, as after a kill.
        let saved = std::fs::read_to_string(dir.join("changes.jsonl")).expect("change logged");
        assert!(saved.contains("queues/kept"));
        running.shutdown().await;

        let restarted = start(settings, 0)
            .await
            .expect("restarts after the lock is released");
        let url = restarted.url();
        let (status, body) = tokio::task::spawn_blocking(move || {
            http(&url, "GET", "/v2/projects/p1/locations/l/queues/kept", "")
        })
        .await
        .expect("join");
        assert_eq!(status, 200, "{body}");
        restarted.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Cloud Run services as local processes: for each service whose latest ready revision runs an
//! image the emulator can run, one process under the container contract (restarted with
//! backoff when it exits) behind one front port. The front checks the caller's ID token and
//! `run.invoker` (Cloud Run's 403 otherwise), admits `concurrency x max_instances` requests in
//! flight (others wait for a slot, then get 429 as Cloud Run answers), and forwards. A new
//! ready revision replaces the process; the front port stays.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State as AxumState;
use axum::http::{Request, Response, StatusCode};
use serde_json::Value;
use tokio::sync::{Semaphore, watch};

use super::metadata::{self, Instance};
use super::process::{self, LogSink};
use crate::emulator::Emulator;
use crate::lock;

/// Cloud Run's default `maxInstanceRequestConcurrency` (with at least one vCPU).
const DEFAULT_CONCURRENCY: u64 = 80;
/// Cloud Run's server default `maxInstanceCount`.
const DEFAULT_MAX_INSTANCES: u64 = 100;
/// The largest request body a front forwards (Cloud Run's HTTP/1 limit is 32 MiB).
const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;
const FORBIDDEN_BODY: &str = "<html><head>\n<meta http-equiv=\"content-type\" content=\"text/html;charset=utf-8\">\n<title>403 Forbidden</title>\n</head>\n<body text=#000000 bgcolor=#ffffff>\n<h1>Error: Forbidden</h1>\n<h2>Your client does not have permission to get URL <code>PATH</code> from this server.</h2>\n<h2></h2>\n</body></html>\n";
/// What Cloud Run answers a request its ingress setting does not admit (Google's 404 page; the
/// status for Cloud Run is unverified, see RUNTIME-NOTES 1.8).
const NOT_FOUND_BODY: &str = "<html><head>\n<meta http-equiv=\"content-type\" content=\"text/html;charset=utf-8\">\n<title>404 Page not found</title>\n</head>\n<body text=#000000 bgcolor=#ffffff>\n<h1>Error: Page not found</h1>\n<h2>The requested URL <code>PATH</code> was not found on this server.</h2>\n<h2></h2>\n</body></html>\n";

/// What `up` lists for a service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceStatus {
    /// `projects/P/locations/L/services/S`.
    pub name: String,
    /// `http://127.0.0.1:PORT`, once the front listens.
    pub front: Option<String>,
    /// The revision running, or why none runs.
    pub running: Result<String, String>,
    /// Whether the process listens on its `PORT` now (the front forwards).
    pub listening: bool,
    /// The revision this status is about (the one wanted when it was set).
    pub revision: String,
}

/// What the supervisor wants running for one service, read from the state.
#[derive(Debug, Clone, PartialEq)]
struct Wanted {
    name: String,
    uri: String,
    revision: String,
    image: String,
    container: Value,
    email: String,
    slots: usize,
    invoker_check: bool,
    /// Who may reach it at all: `INGRESS_TRAFFIC_ALL` (default), `..._INTERNAL_ONLY`,
    /// `..._INTERNAL_LOAD_BALANCER`, `..._NONE`.
    ingress: String,
}

fn wanted_services(emulator: &Emulator) -> Vec<Wanted> {
    let state = lock(&emulator.state);
    state
        .services
        .iter()
        .filter_map(|(name, record)| {
            let service = &record.service;
            let revision = service.get("latestReadyRevision")?.as_str()?.to_string();
            let template = record
                .revision_templates
                .get(&revision)
                .or_else(|| service.get("template"))?;
            let container = template.pointer("/containers/0")?.clone();
            let image = container.get("image")?.as_str()?.to_string();
            let number = |v: Option<&Value>, default: u64| {
                v.and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                    .filter(|n| *n > 0)
                    .unwrap_or(default)
            };
            let concurrency = number(
                template.get("maxInstanceRequestConcurrency"),
                DEFAULT_CONCURRENCY,
            );
            let max_instances = number(
                template.pointer("/scaling/maxInstanceCount"),
                DEFAULT_MAX_INSTANCES,
            );
            Some(Wanted {
                name: name.clone(),
                uri: service
                    .get("uri")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                revision,
                image,
                container,
                email: template
                    .get("serviceAccount")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                slots: usize::try_from(concurrency.saturating_mul(max_instances))
                    .unwrap_or(usize::MAX),
                invoker_check: service.get("invokerIamDisabled").and_then(Value::as_bool)
                    != Some(true),
                ingress: service
                    .get("ingress")
                    .and_then(Value::as_str)
                    .unwrap_or("INGRESS_TRAFFIC_ALL")
                    .to_string(),
            })
        })
        .collect()
}

/// `NAME` of `projects/P/locations/L/services/NAME`, and P and L.
fn parts(name: &str) -> (&str, &str, &str) {
    let mut it = name.split('/');
    let project = it.nth(1).unwrap_or_default();
    let location = it.nth(1).unwrap_or_default();
    let id = it.nth(1).unwrap_or_default();
    (project, location, id)
}

/// One service's front and its current backend.
struct Front {
    address: SocketAddr,
    backend: watch::Sender<Option<u16>>,
    slots: Arc<Semaphore>,
    wanted: Mutex<Wanted>,
    emulator: Arc<Emulator>,
    client: reqwest::Client,
    queue_timeout: Duration,
}

/// The running process of a service's revision.
struct Running {
    revision: String,
    stop: watch::Sender<bool>,
    /// When it last failed to start (a missing secret version, an image that cannot run):
    /// retried every few seconds, as Cloud Run retries starting instances.
    failed_at: Option<std::time::Instant>,
}

/// How long after a failed start the supervisor tries again.
const RETRY_START_AFTER: Duration = Duration::from_secs(2);

/// The services supervisor: reconciles processes and fronts with the stored services.
pub struct Supervisor {
    emulator: Arc<Emulator>,
    sink: LogSink,
    fronts: Mutex<BTreeMap<String, Arc<Front>>>,
    running: Mutex<BTreeMap<String, Running>>,
    statuses: Mutex<BTreeMap<String, ServiceStatus>>,
    stop: watch::Receiver<bool>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor").finish_non_exhaustive()
    }
}

impl Supervisor {
    pub fn new(emulator: Arc<Emulator>, sink: LogSink, stop: watch::Receiver<bool>) -> Arc<Self> {
        Arc::new(Self {
            emulator,
            sink,
            fronts: Mutex::new(BTreeMap::new()),
            running: Mutex::new(BTreeMap::new()),
            statuses: Mutex::new(BTreeMap::new()),
            stop,
        })
    }

    /// Every stored service, with its front and whether it runs.
    pub fn statuses(&self) -> Vec<ServiceStatus> {
        let fronts = lock(&self.fronts);
        lock(&self.statuses)
            .values()
            .cloned()
            .map(|mut status| {
                status.listening = fronts
                    .get(&status.name)
                    .is_some_and(|f| f.backend.borrow().is_some());
                status
            })
            .collect()
    }

    /// Every service with a ready revision has a status about that revision (not an earlier
    /// one, such as the placeholder a deploy replaced), and each runs and listens or cannot run.
    pub fn settled(&self) -> bool {
        let wanted = wanted_services(&self.emulator);
        let statuses = self.statuses();
        wanted.iter().all(|w| {
            statuses.iter().any(|s| {
                s.name == w.name
                    && s.revision == w.revision
                    && (s.running.is_err()
                        || (s.listening && s.running.as_deref() == Ok(w.revision.as_str())))
            })
        })
    }

    /// Reconciles until stopped: every `period`, and whenever the state changes.
    pub async fn run(self: Arc<Self>, period: Duration) {
        let mut stop = self.stop.clone();
        loop {
            self.reconcile().await;
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = stopped(&mut stop) => break,
            }
        }
        let running: Vec<Running> = std::mem::take(&mut *lock(&self.running))
            .into_values()
            .collect();
        for r in running {
            let _ = r.stop.send_replace(true);
        }
    }

    async fn reconcile(self: &Arc<Self>) {
        let wanted = wanted_services(&self.emulator);
        let names: std::collections::BTreeSet<String> =
            wanted.iter().map(|w| w.name.clone()).collect();
        // Services gone: stop their processes, drop their routes.
        let gone: Vec<String> = lock(&self.running)
            .keys()
            .filter(|n| !names.contains(*n))
            .cloned()
            .collect();
        for name in gone {
            if let Some(r) = lock(&self.running).remove(&name) {
                let _ = r.stop.send_replace(true);
            }
            if let Some(front) = lock(&self.fronts).get(&name) {
                let _ = front.backend.send_replace(None);
                self.emulator
                    .runtime
                    .routes
                    .remove(&lock(&front.wanted).uri);
            }
            lock(&self.statuses).remove(&name);
        }
        for w in wanted {
            let settled = lock(&self.running).get(&w.name).is_some_and(|r| {
                r.revision == w.revision
                    && r.failed_at
                        .is_none_or(|at| at.elapsed() < RETRY_START_AFTER)
            });
            if settled {
                // Service-level settings (ingress, the invoker check) change without a revision.
                if let Some(front) = lock(&self.fronts).get(&w.name) {
                    *lock(&front.wanted) = w.clone();
                }
                continue;
            }
            if let Some(old) = lock(&self.running).remove(&w.name) {
                let _ = old.stop.send_replace(true);
            }
            let front = match self.front_for(&w).await {
                Ok(front) => front,
                Err(e) => {
                    self.set_status(
                        &w.name,
                        &w.revision,
                        None,
                        Err(format!("its front could not listen: {e}")),
                    );
                    continue;
                }
            };
            let front_url = format!("http://{}", front.address);
            match self.start(&w, &front).await {
                Ok(stop) => {
                    lock(&self.running).insert(
                        w.name.clone(),
                        Running {
                            revision: w.revision.clone(),
                            stop,
                            failed_at: None,
                        },
                    );
                    self.set_status(
                        &w.name,
                        &w.revision,
                        Some(front_url),
                        Ok(w.revision.clone()),
                    );
                }
                Err(reason) => {
                    lock(&self.running).insert(
                        w.name.clone(),
                        Running {
                            revision: w.revision.clone(),
                            stop: watch::channel(false).0,
                            failed_at: Some(std::time::Instant::now()),
                        },
                    );
                    self.set_status(&w.name, &w.revision, Some(front_url), Err(reason));
                }
            }
        }
    }

    fn set_status(
        &self,
        name: &str,
        revision: &str,
        front: Option<String>,
        running: Result<String, String>,
    ) {
        lock(&self.statuses).insert(
            name.to_string(),
            ServiceStatus {
                name: name.to_string(),
                front,
                running,
                listening: false,
                revision: revision.to_string(),
            },
        );
    }

    async fn front_for(&self, w: &Wanted) -> std::io::Result<Arc<Front>> {
        if let Some(front) = lock(&self.fronts).get(&w.name).cloned() {
            *lock(&front.wanted) = w.clone();
            self.emulator
                .runtime
                .routes
                .set(&w.uri, &front.address.to_string());
            return Ok(front);
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let front = Arc::new(Front {
            address,
            backend: watch::channel(None).0,
            slots: Arc::new(Semaphore::new(w.slots.min(Semaphore::MAX_PERMITS))),
            wanted: Mutex::new(w.clone()),
            emulator: Arc::clone(&self.emulator),
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(std::io::Error::other)?,
            queue_timeout: self.emulator.settings.front_queue_timeout,
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(Arc::clone(&front));
        let mut stop = self.stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    stopped(&mut stop).await;
                })
                .await;
        });
        self.emulator
            .runtime
            .routes
            .set(&w.uri, &address.to_string());
        lock(&self.fronts).insert(w.name.clone(), Arc::clone(&front));
        Ok(front)
    }

    /// Starts the revision's process (and keeps it running); `Err` is why it cannot run.
    async fn start(&self, w: &Wanted, front: &Arc<Front>) -> Result<watch::Sender<bool>, String> {
        let image = super::images::unpack(&self.emulator, &w.image)?;
        let (project, location, id) = parts(&w.name);
        let env = {
            let state = lock(&self.emulator.state);
            super::env::container_env(
                &state,
                project,
                &w.container,
                "spec.template.spec.containers[0]",
            )?
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let metadata = metadata::serve(
            Arc::clone(&self.emulator),
            Instance {
                email: w.email.clone(),
                project: project.to_string(),
                region: location.to_string(),
            },
            stop_rx.clone(),
        )
        .await
        .map_err(|e| format!("its metadata server could not listen: {e}"))?;
        let emulator_url = self.emulator.runtime.url.get().cloned().unwrap_or_default();
        let mut contract = env;
        contract.extend(super::env::local_cloud(
            &emulator_url,
            &metadata.to_string(),
        ));
        contract.extend(self.emulator.runtime.extra_env());
        let revision_id = w
            .revision
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let revision_id_for_logs = revision_id.clone();
        contract.extend([
            ("K_SERVICE".to_string(), id.to_string()),
            ("K_REVISION".to_string(), revision_id),
            ("K_CONFIGURATION".to_string(), id.to_string()),
        ]);
        let source = process::LogSource::revision(project, location, id, &revision_id_for_logs);
        let sink = self.sink.clone();
        let backend = front.backend.clone();
        let mut stop = stop_rx;
        let mut global_stop = self.stop.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(250);
            while let Ok(port) = process::free_port() {
                let mut env = contract.clone();
                env.push(("PORT".to_string(), port.to_string()));
                let started = tokio::time::Instant::now();
                let mut child = match process::spawn(&image, &env, &source, &sink) {
                    Ok(child) => child,
                    Err(e) => {
                        sink.record(
                            &source,
                            "stderr",
                            format!(
                                "[stackctl] could not start {}: {e}",
                                image.program.display()
                            ),
                        );
                        break;
                    }
                };
                let ready = {
                    let listening = process::wait_listening(port, Duration::from_secs(240));
                    tokio::pin!(listening);
                    tokio::select! {
                        ok = &mut listening => ok,
                        _ = child.wait() => false,
                    }
                };
                if ready {
                    let _ = backend.send_replace(Some(port));
                }
                tokio::select! {
                    status = child.wait() => {
                        let _ = backend.send_replace(None);
                        sink.record(
                            &source,
                            "stderr",
                            format!("[stackctl] process exited ({}); restarting in {backoff:?}",
                                status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())),
                        );
                    }
                    () = stopped(&mut stop) => {
                        let _ = backend.send_replace(None);
                        process::stop(&mut child, process::GRACE).await;
                        return;
                    }
                    () = stopped(&mut global_stop) => {
                        let _ = backend.send_replace(None);
                        process::stop(&mut child, process::GRACE).await;
                        return;
                    }
                }
                if started.elapsed() > Duration::from_secs(60) {
                    backoff = Duration::from_millis(250);
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stopped(&mut stop) => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        });
        Ok(stop_tx)
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn plain(status: StatusCode, content_type: &str, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap_or_default()
}

/// Whether `email` may invoke the service: `run.invoker` (or a role that includes it) for the
/// service account or `allUsers`/`allAuthenticatedUsers` in the service's policy.
fn may_invoke(emulator: &Emulator, service: &str, email: Option<&str>) -> bool {
    crate::apis::iam_policy::holds_role(
        &lock(&emulator.state),
        &[service],
        &[
            "roles/run.invoker",
            "roles/run.admin",
            "roles/run.developer",
        ],
        email,
    )
}

async fn forward(
    AxumState(front): AxumState<Arc<Front>>,
    request: Request<Body>,
) -> Response<Body> {
    let wanted = lock(&front.wanted).clone();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or("/".to_string(), ToString::to_string);
    // Ingress, approximated: on loopback every caller looks alike, so "internal" means Google's
    // own products (the dispatcher, the scheduler), which carry the emulator's secret header.
    let (internal_header, internal_key) = front.emulator.runtime.routes.internal_caller();
    let internal = request
        .headers()
        .get(internal_header)
        .is_some_and(|v| v.as_bytes() == internal_key.as_bytes());
    let admitted = match wanted.ingress.as_str() {
        "INGRESS_TRAFFIC_INTERNAL_ONLY" | "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER" => internal,
        "INGRESS_TRAFFIC_NONE" => false,
        _ => true,
    };
    if !admitted {
        return plain(
            StatusCode::NOT_FOUND,
            "text/html; charset=UTF-8",
            NOT_FOUND_BODY.replace("PATH", request.uri().path()),
        );
    }
    if wanted.invoker_check {
        let token = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        let runtime = &front.emulator.runtime;
        let audiences = vec![wanted.uri.clone(), format!("http://{}", front.address)];
        let email = token.and_then(|t| {
            runtime
                .identity
                .verify_id_token(t, &audiences, runtime.clock.now())
                .ok()
                .and_then(|claims| {
                    claims
                        .get("email")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
        });
        if !may_invoke(&front.emulator, &wanted.name, email.as_deref()) {
            let path = request.uri().path().to_string();
            return plain(
                StatusCode::FORBIDDEN,
                "text/html; charset=UTF-8",
                FORBIDDEN_BODY.replace("PATH", &path),
            );
        }
    }
    // A slot among concurrency x max instances, waiting as Cloud Run queues requests.
    let Ok(Ok(_permit)) = tokio::time::timeout(
        front.queue_timeout,
        Arc::clone(&front.slots).acquire_owned(),
    )
    .await
    else {
        return plain(
            StatusCode::TOO_MANY_REQUESTS,
            "text/html; charset=UTF-8",
            "Rate exceeded.".into(),
        );
    };
    let mut backend = front.backend.subscribe();
    let port =
        match tokio::time::timeout(front.queue_timeout, backend.wait_for(Option::is_some)).await {
            Ok(Ok(port)) => port.unwrap_or_default(),
            _ => {
                return plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/html; charset=UTF-8",
                    "Service Unavailable".into(),
                );
            }
        };
    let (head, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REQUEST_BYTES).await else {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "text/html; charset=UTF-8",
            "Request Entity Too Large".into(),
        );
    };
    let mut outgoing = front
        .client
        .request(
            head.method.clone(),
            format!("http://127.0.0.1:{port}{path_and_query}"),
        )
        .body(bytes);
    for (name, value) in &head.headers {
        if name != "host" && name != "content-length" && name != internal_header {
            outgoing = outgoing.header(name, value);
        }
    }
    match outgoing.send().await {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if name != "content-length" && name != "transfer-encoding" {
                    response = response.header(name, value);
                }
            }
            let body: Bytes = answer.bytes().await.unwrap_or_default();
            response.body(Body::from(body)).unwrap_or_default()
        }
        Err(_) => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/html; charset=UTF-8",
            "Service Unavailable: the instance closed the connection".into(),
        ),
    }
}

//! task-worker: the private Cloud Run service Cloud Tasks calls with each Shopify webhook. It
//! checks the OIDC token, then applies the webhook once, inside the request, through a Firestore
//! dedupe record with a lease, and answers 2xx only once the effect is durable.

pub mod oidc;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use worker_kit::cloud::{self, Cloud, env, env_list};
use worker_kit::firestore::{self, Fields, Precondition, Write, value};
use worker_kit::log::Logger;
use worker_kit::shopify;

pub const SERVICE: &str = "task-worker";
/// The route the queue's HTTP target calls.
pub const TASK_PATH: &str = "/tasks/webhook";
/// Where each delivery's record lives, by delivery id.
pub const DELIVERIES: &str = "webhook_deliveries";
/// Where orders land.
pub const ORDERS: &str = "orders";
/// How long one delivery holds its lease; a second delivery meanwhile gets 429.
pub const LEASE: chrono::Duration = chrono::Duration::seconds(60);
/// A record's `expire_at` (for a Firestore TTL policy): well past Shopify's 4 h of retries.
pub const RECORD_RETENTION: chrono::Duration = chrono::Duration::days(7);

/// What the worker needs to run.
pub struct Worker {
    pub verifier: oidc::Verifier,
    pub firestore: firestore::Client,
    pub http: reqwest::Client,
    /// `CRM_PROXY_URL`: the crm-proxy service (its URL; `/customers` is added when it names no
    /// path) where `customers/*` go; unset, they are recorded as skipped.
    pub crm_proxy: Option<String>,
    /// The ID token and local route of calls to the CRM proxy.
    pub calls: worker_kit::calls::ServiceCalls,
    pub logger: Logger,
}

pub fn router(worker: Arc<Worker>) -> Router {
    Router::new()
        .route(TASK_PATH, post(deliver))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(2 * 1024 * 1024))
        .with_state(worker)
}

/// The worker as configured by the environment (see README.md).
pub async fn from_env() -> Result<Arc<Worker>, String> {
    let http = cloud::http_client();
    let cloud = Cloud::from_env(&http).await.map_err(|e| e.to_string())?;
    let mut audiences = env_list("OIDC_AUDIENCE");
    if audiences.is_empty() {
        // The queue's token is for this service's URL: `https://SERVICE-<hash>-<region code>.a.run.app`
        // or `https://SERVICE-<project number>.REGION.run.app`. Cloud Run names itself in K_SERVICE.
        match env("K_SERVICE") {
            Some(service) => audiences.push(format!("https://{service}-*.run.app")),
            None => return Err("OIDC_AUDIENCE is unset and so is K_SERVICE: set OIDC_AUDIENCE to the audience the queue's OIDC token carries (the worker's https://...run.app URL)".into()),
        }
    }
    let mut allowed = env_list("OIDC_ALLOWED_EMAILS");
    if allowed.is_empty() {
        allowed.push(format!("*@{}.iam.gserviceaccount.com", cloud.project));
    }
    let verifier = oidc::Verifier::new(
        http.clone(),
        env("STACKCTL_OIDC_JWKS_URL").unwrap_or_else(|| oidc::GOOGLE_JWKS_URL.into()),
        env("STACKCTL_OIDC_ISSUER").unwrap_or_else(|| oidc::GOOGLE_ISSUER.into()),
        audiences,
        allowed,
    );
    Ok(Arc::new(Worker {
        verifier,
        firestore: cloud.firestore(http.clone()).map_err(|e| e.to_string())?,
        calls: worker_kit::calls::ServiceCalls::new(&cloud, http.clone()),
        http,
        crm_proxy: env("CRM_PROXY_URL").map(|url| crm_customers_url(&url)),
        logger: Logger::new(cloud.project.clone(), SERVICE),
    }))
}

/// Where customer updates go: `CRM_PROXY_URL` as given when it names a path, else its
/// `/customers` (the crm-proxy's route), so `service_urls` can hand over the bare service URL.
pub fn crm_customers_url(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    let has_path =
        worker_kit::calls::origin(trimmed).is_some_and(|origin| origin.len() < trimmed.len());
    if has_path {
        url.to_string()
    } else {
        format!("{trimmed}/customers")
    }
}

use worker_kit::serve::header;

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// How a delivery ended, as answered to Cloud Tasks.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Recorded (`done`, or `dead_lettered` with a reason): 200.
    Recorded {
        status: &'static str,
        detail: String,
    },
    /// Already recorded by an earlier delivery: 200.
    Duplicate,
    /// Another delivery holds the lease: 429, retried later.
    Busy,
    /// Worth retrying: 503.
    Transient(String),
}

async fn deliver(State(worker): State<Arc<Worker>>, headers: HeaderMap, body: Bytes) -> Response {
    let trace = worker
        .logger
        .trace_of(header(&headers, "x-cloud-trace-context"));
    let token = header(&headers, "authorization").and_then(|v| v.strip_prefix("Bearer "));
    let verified = match token {
        Some(token) => worker.verifier.verify(token).await,
        None => Err("no bearer token".into()),
    };
    if let Err(reason) = verified {
        worker
            .logger
            .warning(format!("refused a call: {reason}"))
            .trace(trace.as_deref())
            .emit();
        return answer(
            StatusCode::UNAUTHORIZED,
            json!({"error": "unauthenticated"}),
        );
    }
    let webhook_id = header(&headers, shopify::WEBHOOK_ID).unwrap_or_default();
    let outcome = if webhook_id.is_empty() {
        Outcome::Recorded {
            status: "dead_lettered",
            detail: "no X-Shopify-Webhook-Id: nothing to apply it once by".into(),
        }
    } else {
        worker.apply_once(&headers, &body, webhook_id).await
    };
    let log = |severity, message: String| {
        worker
            .logger
            .entry(severity, message)
            .trace(trace.as_deref())
            .field("webhookId", webhook_id)
            .field(
                "topic",
                header(&headers, shopify::TOPIC).unwrap_or_default(),
            )
            .emit();
    };
    use worker_kit::log::Severity;
    match outcome {
        Outcome::Recorded { status, detail } => {
            let severity = if status == "done" {
                Severity::Info
            } else {
                Severity::Error
            };
            log(severity, format!("webhook {status}: {detail}"));
            answer(StatusCode::OK, json!({"status": status, "detail": detail}))
        }
        Outcome::Duplicate => {
            log(
                Severity::Info,
                "webhook already applied: nothing done".into(),
            );
            answer(StatusCode::OK, json!({"status": "duplicate"}))
        }
        Outcome::Busy => {
            log(
                Severity::Warning,
                "another delivery of this webhook is in progress: retry later".into(),
            );
            let mut response = answer(StatusCode::TOO_MANY_REQUESTS, json!({"status": "busy"}));
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("30"));
            response
        }
        Outcome::Transient(reason) => {
            log(Severity::Warning, format!("will be retried: {reason}"));
            answer(StatusCode::SERVICE_UNAVAILABLE, json!({"status": "retry"}))
        }
    }
}

fn transient(error: firestore::Error) -> Outcome {
    if error.is_contention() {
        Outcome::Busy
    } else {
        Outcome::Transient(error.to_string())
    }
}

/// The payload's `updated_at`.
fn updated_at(payload: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(payload.get("updated_at")?.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Worker {
    /// Claims the delivery's record, applies the effect, records the end.
    pub async fn apply_once(&self, headers: &HeaderMap, body: &[u8], webhook_id: &str) -> Outcome {
        let record_path = format!("{DELIVERIES}/{}", shopify::delivery_id(webhook_id));
        let record_name = self.firestore.name(&record_path);
        let now = Utc::now();
        // 1. The claim: create the record, or take over an expired lease, with a precondition
        //    so two concurrent deliveries cannot both win.
        let existing = match self.firestore.get(&record_path, None).await {
            Ok(existing) => existing,
            Err(error) => return transient(error),
        };
        let precondition = match &existing {
            None => Precondition::Absent,
            Some(record) => match record.string("status") {
                Some("done" | "dead_lettered") => return Outcome::Duplicate,
                _ if record
                    .timestamp("lease_until")
                    .is_some_and(|until| until > now) =>
                {
                    return Outcome::Busy;
                }
                _ => Precondition::UpdatedAt(record.update_time.clone()),
            },
        };
        let attempts = existing
            .as_ref()
            .and_then(|r| r.integer("attempts"))
            .unwrap_or(0)
            + 1;
        let mut claim = Fields::new();
        claim.insert("webhook_id".into(), value::string(webhook_id));
        claim.insert(
            "event_id".into(),
            value::string(header(headers, shopify::EVENT_ID).unwrap_or_default()),
        );
        let topic = header(headers, shopify::TOPIC)
            .unwrap_or_default()
            .to_string();
        claim.insert("topic".into(), value::string(topic.as_str()));
        claim.insert(
            "shop".into(),
            value::string(header(headers, shopify::SHOP_DOMAIN).unwrap_or_default()),
        );
        claim.insert("status".into(), value::string("processing"));
        claim.insert("lease_until".into(), value::timestamp(now + LEASE));
        claim.insert("attempts".into(), value::integer(attempts));
        claim.insert("expire_at".into(), value::timestamp(now + RECORD_RETENTION));
        let claimed = match self
            .firestore
            .commit(
                vec![Write::set(&record_name, claim).when(precondition)],
                None,
            )
            .await
        {
            Ok(committed) => committed
                .update_times
                .into_iter()
                .next()
                .unwrap_or_default(),
            Err(error) => return transient(error),
        };
        let held = Precondition::UpdatedAt(claimed);
        // 2. The effect, then the record's end.
        let outcome = self
            .effect(headers, body, &topic, &record_name, held.clone())
            .await;
        if let Outcome::Transient(_) | Outcome::Busy = outcome {
            // Release the lease so the queue's retry need not wait for it.
            let mut release = Fields::new();
            release.insert("status".into(), value::string("failed"));
            release.insert("lease_until".into(), value::timestamp(Utc::now()));
            let _ = self
                .firestore
                .commit(vec![Write::merge(&record_name, release).when(held)], None)
                .await;
        }
        outcome
    }

    /// The record's end, written in `writes`' commit.
    fn finish(record_name: &str, status: &'static str, detail: &str, held: Precondition) -> Write {
        let mut end = Fields::new();
        end.insert("status".into(), value::string(status));
        end.insert("detail".into(), value::string(detail));
        end.insert("lease_until".into(), value::null());
        end.insert("finished_at".into(), value::timestamp(Utc::now()));
        Write::merge(record_name, end).when(held)
    }

    async fn record(
        &self,
        record_name: &str,
        status: &'static str,
        detail: String,
        held: Precondition,
    ) -> Outcome {
        match self
            .firestore
            .commit(vec![Self::finish(record_name, status, &detail, held)], None)
            .await
        {
            Ok(_) => Outcome::Recorded { status, detail },
            Err(error) => transient(error),
        }
    }

    async fn effect(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        topic: &str,
        record_name: &str,
        held: Precondition,
    ) -> Outcome {
        let stored;
        let body = match header(headers, shopify::BODY_REFERENCE) {
            None => body,
            Some(reference) => match self.firestore.get(reference, None).await {
                Err(error) => return transient(error),
                Ok(document) => match document.and_then(|d| d.bytes("body")) {
                    Some(bytes) => {
                        stored = bytes;
                        &stored
                    }
                    None => {
                        return self
                            .record(
                                record_name,
                                "dead_lettered",
                                format!("the stored body {reference} is gone"),
                                held,
                            )
                            .await;
                    }
                },
            },
        };
        let payload: Value = match serde_json::from_slice(body) {
            Ok(payload @ Value::Object(_)) => payload,
            _ => {
                return self
                    .record(
                        record_name,
                        "dead_lettered",
                        "the body is not a JSON object".into(),
                        held,
                    )
                    .await;
            }
        };
        let id = match &payload["id"] {
            Value::Number(n) => n.to_string(),
            Value::String(s) if !s.is_empty() && !s.contains('/') => s.clone(),
            _ => {
                return self
                    .record(
                        record_name,
                        "dead_lettered",
                        "the payload has no usable id".into(),
                        held,
                    )
                    .await;
            }
        };
        if topic.starts_with("orders/") {
            self.upsert_order(&id, &payload, body, topic, record_name, held)
                .await
        } else if topic.starts_with("customers/") {
            self.send_to_crm(headers, body, record_name, held).await
        } else {
            self.record(
                record_name,
                "done",
                format!("topic {topic:?} ignored"),
                held,
            )
            .await
        }
    }

    /// `orders/{id}` takes the payload only when its `updated_at` is newer than the stored one,
    /// in the same atomic commit as the record's end.
    async fn upsert_order(
        &self,
        id: &str,
        payload: &Value,
        body: &[u8],
        topic: &str,
        record_name: &str,
        held: Precondition,
    ) -> Outcome {
        // Optimistic: the order is read, then written only if unchanged since (or still absent),
        // in one atomic commit with the record's end; a concurrent writer makes it retry.
        let path = format!("{ORDERS}/{id}");
        let stored = match self.firestore.get(&path, None).await {
            Ok(stored) => stored,
            Err(error) => return transient(error),
        };
        let incoming = updated_at(payload);
        let newer = match (&stored, incoming) {
            (None, _) => true,
            (Some(doc), Some(incoming)) => doc.timestamp("updated_at").is_none_or(|s| incoming > s),
            (Some(_), None) => false,
        };
        let mut writes = Vec::new();
        let detail = if newer {
            let mut order = Fields::new();
            order.insert("id".into(), value::string(id));
            if let Some(at) = incoming {
                order.insert("updated_at".into(), value::timestamp(at));
            }
            order.insert("topic".into(), value::string(topic));
            order.insert(
                "payload".into(),
                value::string(String::from_utf8_lossy(body)),
            );
            let unchanged = stored.as_ref().map_or(Precondition::Absent, |doc| {
                Precondition::UpdatedAt(doc.update_time.clone())
            });
            writes.push(Write::set(&self.firestore.name(&path), order).when(unchanged));
            format!("order {id} written")
        } else {
            format!("order {id} unchanged: the stored one is as new or newer")
        };
        writes.push(Self::finish(record_name, "done", &detail, held));
        match self.firestore.commit(writes, None).await {
            Ok(_) => Outcome::Recorded {
                status: "done",
                detail,
            },
            Err(error) => transient(error),
        }
    }

    /// `customers/*` to the CRM proxy with the webhook id as `Idempotency-Key`.
    async fn send_to_crm(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        record_name: &str,
        held: Precondition,
    ) -> Outcome {
        let Some(url) = &self.crm_proxy else {
            return self
                .record(
                    record_name,
                    "done",
                    "skipped: CRM_PROXY_URL is unset".into(),
                    held,
                )
                .await;
        };
        let prepared = match self.calls.prepare(url).await {
            Ok(prepared) => prepared,
            Err(reason) => {
                return Outcome::Transient(format!("cannot call the CRM proxy: {reason}"));
            }
        };
        let mut request = self.http.post(&prepared.url);
        if let Some(authorization) = &prepared.authorization {
            request = request.header("authorization", authorization);
        }
        let sent = request
            .header("content-type", "application/json")
            .header(
                "idempotency-key",
                header(headers, shopify::WEBHOOK_ID).unwrap_or_default(),
            )
            .header(
                "x-shopify-topic",
                header(headers, shopify::TOPIC).unwrap_or_default(),
            )
            .timeout(Duration::from_secs(20))
            .body(body.to_vec())
            .send()
            .await;
        match sent {
            Err(error) => Outcome::Transient(format!("CRM proxy unreachable: {error}")),
            Ok(response) if response.status().is_success() => {
                self.record(record_name, "done", "sent to the CRM".into(), held)
                    .await
            }
            Ok(response)
                if response.status().is_server_error() || response.status().as_u16() == 429 =>
            {
                Outcome::Transient(format!("CRM proxy answered {}", response.status()))
            }
            Ok(response) => {
                self.record(
                    record_name,
                    "dead_lettered",
                    format!("CRM proxy refused it: {}", response.status()),
                    held,
                )
                .await
            }
        }
    }
}

//! The relay's HTTP surface: `POST /webhooks/shopify` checks a delivery (signature, headers,
//! shop) and hands it to Cloud Tasks once, naming the task after the delivery; large bodies go
//! to Firestore first and the task carries a reference. `GET /healthz` answers probes.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use google_cloud_gax::error::rpc::Code;
use google_cloud_tasks_v2::client::CloudTasks;
use google_cloud_tasks_v2::model::{HttpRequest, Task};
use serde_json::{Value, json};
use worker_kit::firestore::{self, Fields, value};
use worker_kit::log::Logger;
use worker_kit::shopify;

use crate::signature::ClientSecrets;

/// The largest webhook accepted (413 above it). Bodies that do not fit a task are stored as one
/// Firestore document, and a document is at most 1 MiB (1,048,576 bytes) including its name and
/// other fields: 1,000,000 bytes leaves room for those.
pub const MAX_WEBHOOK_BYTES: usize = 1_000_000;
/// Bodies up to this size travel inside the task. Cloud Tasks takes tasks of at most 100 KB
/// (RUNTIME-NOTES 2.5, the stricter of Google's two figures); a body is base64 in the task
/// (4/3 of its size: 64 KiB -> 87,382 bytes), which leaves 12 KB for the name and headers.
pub const INLINE_BODY_BYTES: usize = 64 * 1024;
/// How long the relay waits for Cloud Tasks (and for Firestore, for a large body) before it
/// answers 503 so Shopify retries; Shopify waits about 5 s for an answer.
pub const HANDOFF_BUDGET: Duration = Duration::from_secs(2);
/// How long a stored body is kept (its `expire_at`, for a Firestore TTL policy): longer than a
/// task can keep being retried by the queue.
pub const BODY_RETENTION: chrono::Duration = chrono::Duration::days(7);
/// The route Shopify's subscriptions point at.
pub const WEBHOOK_PATH: &str = "/webhooks/shopify";

/// What the relay needs to run.
pub struct Relay {
    pub secrets: ClientSecrets,
    /// Lower-case `*.myshopify.com` domains; empty accepts any shop that signs with the secret.
    pub allowed_shops: Vec<String>,
    /// `projects/P/locations/L/queues/Q`.
    pub queue: String,
    pub tasks: CloudTasks,
    pub firestore: firestore::Client,
    pub logger: Logger,
}

/// The relay's routes.
pub fn router(relay: Arc<Relay>) -> Router {
    Router::new()
        .route(WEBHOOK_PATH, post(receive))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BYTES))
        .with_state(relay)
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

use worker_kit::serve::header;

async fn receive(State(relay): State<Arc<Relay>>, headers: HeaderMap, body: Bytes) -> Response {
    let trace = relay
        .logger
        .trace_of(header(&headers, "x-cloud-trace-context"));
    let trace = trace.as_deref();
    let webhook_id = header(&headers, shopify::WEBHOOK_ID).unwrap_or_default();
    if !relay.secrets.verify(&body, header(&headers, shopify::HMAC)) {
        relay
            .logger
            .warning("rejected a webhook: missing or invalid X-Shopify-Hmac-Sha256")
            .trace(trace)
            .field("webhookId", truncate(webhook_id))
            .emit();
        return answer(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid webhook signature"}),
        );
    }
    let required = [
        shopify::TOPIC,
        shopify::SHOP_DOMAIN,
        shopify::API_VERSION,
        shopify::WEBHOOK_ID,
    ];
    let missing: Vec<&str> = required
        .into_iter()
        .filter(|name| header(&headers, name).is_none())
        .collect();
    if !missing.is_empty() {
        relay
            .logger
            .warning(format!(
                "rejected a signed webhook without {}",
                missing.join(", ")
            ))
            .trace(trace)
            .emit();
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "missing Shopify headers", "missing": missing}),
        );
    }
    let shop = header(&headers, shopify::SHOP_DOMAIN)
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !relay.allowed_shops.is_empty() && !relay.allowed_shops.contains(&shop) {
        relay
            .logger
            .warning("rejected a webhook from a shop outside SHOPIFY_SHOP_DOMAINS")
            .trace(trace)
            .field("webhookId", webhook_id)
            .field("shop", shop.as_str())
            .emit();
        return answer(
            StatusCode::FORBIDDEN,
            json!({"error": "shop not served here"}),
        );
    }
    match relay.hand_off(&headers, body, webhook_id).await {
        Ok(outcome) => {
            relay
                .logger
                .info(format!("webhook {}", outcome.describe()))
                .trace(trace)
                .field("webhookId", webhook_id)
                .field("task", outcome.task.as_str())
                .field(
                    "topic",
                    header(&headers, shopify::TOPIC).unwrap_or_default(),
                )
                .field("bodyByReference", outcome.by_reference)
                .emit();
            answer(
                StatusCode::OK,
                json!({"task": outcome.task, "duplicate": outcome.duplicate}),
            )
        }
        Err(reason) => {
            relay
                .logger
                .error(format!(
                    "could not enqueue the webhook, answering 503 so Shopify retries: {reason}"
                ))
                .trace(trace)
                .field("webhookId", webhook_id)
                .emit();
            let mut response = answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "could not enqueue, retry later"}),
            );
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("5"));
            response
        }
    }
}

/// Unauthenticated header values are logged short.
fn truncate(value: &str) -> String {
    value.chars().take(100).collect()
}

/// What happened to one delivery.
struct HandedOff {
    task: String,
    duplicate: bool,
    by_reference: bool,
}

impl HandedOff {
    fn describe(&self) -> &'static str {
        match (self.duplicate, self.by_reference) {
            (true, _) => "already enqueued (a retry or replay): nothing more enqueued",
            (false, true) => "enqueued, its body stored in Firestore",
            (false, false) => "enqueued",
        }
    }
}

impl Relay {
    /// Stores a large body, then creates the task; each step bounded by [`HANDOFF_BUDGET`].
    async fn hand_off(
        &self,
        headers: &HeaderMap,
        body: Bytes,
        webhook_id: &str,
    ) -> Result<HandedOff, String> {
        let id = shopify::delivery_id(webhook_id);
        let task_name = format!("{}/tasks/{id}", self.queue);
        let mut task_headers: Vec<(String, String)> = shopify::FORWARDED
            .iter()
            .filter_map(|name| header(headers, name).map(|v| (canonical(name), v.to_string())))
            .collect();
        task_headers.push(("Content-Type".into(), "application/json".into()));
        let by_reference = body.len() > INLINE_BODY_BYTES;
        let task_body = if by_reference {
            let path = format!("{}/{id}", shopify::BODIES_COLLECTION);
            self.store_body(&path, &body, webhook_id, headers).await?;
            task_headers.push((canonical(shopify::BODY_REFERENCE), path));
            Bytes::new()
        } else {
            body
        };
        let task = Task::new().set_name(&task_name).set_http_request(
            HttpRequest::new()
                .set_headers(task_headers)
                .set_body(task_body),
        );
        let create = self
            .tasks
            .create_task()
            .set_parent(&self.queue)
            .set_task(task)
            .send();
        match tokio::time::timeout(HANDOFF_BUDGET, create).await {
            Err(_) => Err(format!(
                "Cloud Tasks did not answer within {HANDOFF_BUDGET:?}"
            )),
            Ok(Ok(_)) => Ok(HandedOff {
                task: task_name,
                duplicate: false,
                by_reference,
            }),
            Ok(Err(error))
                if error
                    .status()
                    .is_some_and(|s| s.code == Code::AlreadyExists) =>
            {
                Ok(HandedOff {
                    task: task_name,
                    duplicate: true,
                    by_reference,
                })
            }
            Ok(Err(error)) => Err(format!("Cloud Tasks refused the task: {error}")),
        }
    }

    /// `webhook_bodies/ID`: the raw body and an `expire_at` for the TTL policy. A retry writes
    /// the same body again, so no precondition is needed.
    async fn store_body(
        &self,
        path: &str,
        body: &[u8],
        webhook_id: &str,
        headers: &HeaderMap,
    ) -> Result<(), String> {
        let mut fields = Fields::new();
        fields.insert("body".into(), value::bytes(body));
        fields.insert("webhook_id".into(), value::string(webhook_id));
        fields.insert(
            "topic".into(),
            value::string(header(headers, shopify::TOPIC).unwrap_or_default()),
        );
        fields.insert(
            "expire_at".into(),
            value::timestamp(chrono::Utc::now() + BODY_RETENTION),
        );
        let write = firestore::Write::set(&self.firestore.name(path), fields);
        match tokio::time::timeout(HANDOFF_BUDGET, self.firestore.commit(vec![write], None)).await {
            Err(_) => Err(format!(
                "Firestore did not store the body within {HANDOFF_BUDGET:?}"
            )),
            Ok(Err(error)) => Err(format!("Firestore did not store the body: {error}")),
            Ok(Ok(_)) => Ok(()),
        }
    }
}

/// `x-shopify-webhook-id` -> `X-Shopify-Webhook-Id` (Shopify's spelling, for people reading a
/// task; HTTP does not care).
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|part| match part {
            "api" => "API".to_string(),
            "hmac" => "Hmac".to_string(),
            _ => {
                let mut chars = part.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_keep_shopifys_spelling() {
        assert_eq!(canonical("x-shopify-api-version"), "X-Shopify-API-Version");
        assert_eq!(canonical("x-shopify-webhook-id"), "X-Shopify-Webhook-Id");
    }

    #[test]
    fn an_inline_body_at_the_threshold_keeps_the_task_under_100_kb() {
        let base64_len = INLINE_BODY_BYTES.div_ceil(3) * 4;
        assert!(base64_len + 12 * 1024 <= 100 * 1024, "{base64_len}");
    }
}

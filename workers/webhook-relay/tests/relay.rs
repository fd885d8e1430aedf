//! The relay's request handling against real parts: our Cloud Tasks emulator (in-process, the
//! `gcp-emulator` crate) and Google's Firestore emulator. Only Shopify is faked: these tests sign
//! deliveries as Shopify does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use webhook_relay::relay::{INLINE_BODY_BYTES, MAX_WEBHOOK_BYTES, WEBHOOK_PATH};
use webhook_relay::{ClientSecrets, Relay, signature};
use worker_kit::cloud::{self, Cloud};
use worker_kit::log::Logger;
use worker_kit::testing::FirestoreEmulator;

const SECRET: &[u8] = b"shpss_relay_test_secret";
const LOCATION: &str = "us-central1";

/// A relay wired to a fresh emulator and its own Firestore project.
struct Harness {
    relay: Arc<Relay>,
    emulator_url: String,
    queue: String,
    _emulator: gcp_emulator::RunningEmulator,
}

async fn harness(project: &str, tasks_endpoint: Option<&str>) -> Harness {
    cloud::install_tls();
    let emulator = gcp_emulator::start(gcp_emulator::Settings::default(), 0)
        .await
        .expect("start the emulator");
    let emulator_url = emulator.url();
    let queue = format!("projects/{project}/locations/{LOCATION}/queues/webhooks");
    let http = reqwest::Client::new();
    let created = http
        .post(format!(
            "{emulator_url}/v2/projects/{project}/locations/{LOCATION}/queues"
        ))
        .json(&json!({
            "name": queue,
            "httpTarget": {"uriOverride": {"scheme": "HTTP", "host": "127.0.0.1", "port": "9",
                "pathOverride": {"path": "/tasks/webhook"}}},
        }))
        .send()
        .await
        .expect("create the queue");
    assert!(created.status().is_success(), "{:?}", created.text().await);
    let firestore = FirestoreEmulator::shared();
    let cloud = Cloud {
        project: project.to_string(),
        api_endpoint: Some(tasks_endpoint.unwrap_or(&emulator_url).to_string()),
        firestore_emulator: Some(firestore.host.clone()),
    };
    let relay = Arc::new(Relay {
        secrets: ClientSecrets::new(SECRET, None),
        allowed_shops: vec!["acme.myshopify.com".into()],
        queue: queue.clone(),
        tasks: webhook_relay::tasks_client(&cloud)
            .await
            .expect("tasks client"),
        firestore: cloud.firestore(reqwest::Client::new()).expect("firestore"),
        logger: Logger::new(project, webhook_relay::SERVICE),
    });
    Harness {
        relay,
        emulator_url,
        queue,
        _emulator: emulator,
    }
}

/// A delivery as Shopify sends it, signed with `secret`.
fn delivery(webhook_id: &str, body: &[u8], secret: &[u8]) -> Request<Body> {
    Request::post(WEBHOOK_PATH)
        .header("X-Shopify-Hmac-Sha256", signature::sign(secret, body))
        .header("X-Shopify-Topic", "orders/updated")
        .header("x-shopify-shop-domain", "acme.myshopify.com")
        .header("X-Shopify-API-Version", "2025-07")
        .header("X-Shopify-Webhook-Id", webhook_id)
        .header("X-Shopify-Event-Id", "98880550-7158-44d4-b7cd-2c97c8a091b5")
        .header("X-Shopify-Triggered-At", "2026-12-05T09:00:00.000000Z")
        .header("Content-Type", "application/json")
        .body(Body::from(body.to_vec()))
        .expect("request")
}

async fn send(harness: &Harness, request: Request<Body>) -> (StatusCode, Value) {
    let response = webhook_relay::router(Arc::clone(&harness.relay))
        .oneshot(request)
        .await
        .expect("the router answers");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The queue's tasks, with bodies.
async fn tasks(harness: &Harness) -> Vec<Value> {
    let listed: Value = reqwest::get(format!(
        "{}/v2/{}/tasks?responseView=FULL",
        harness.emulator_url, harness.queue
    ))
    .await
    .expect("list tasks")
    .json()
    .await
    .expect("tasks JSON");
    listed["tasks"].as_array().cloned().unwrap_or_default()
}

fn header<'t>(task: &'t Value, name: &str) -> Option<&'t str> {
    task["httpRequest"]["headers"]
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

fn order(id: u64, padding: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id,
        "updated_at": "2026-12-05T09:00:00Z",
        "note": "x".repeat(padding),
    }))
    .unwrap()
}

#[tokio::test]
async fn one_task_per_webhook_and_a_replay_enqueues_no_second() {
    let harness = harness("relay-once", None).await;
    let body = order(1001, 10);
    let (status, answer) = send(&harness, delivery("wh-1", &body, SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["duplicate"], false);
    let enqueued = tasks(&harness).await;
    assert_eq!(enqueued.len(), 1, "{enqueued:?}");
    let task = &enqueued[0];
    assert!(
        task["name"]
            .as_str()
            .unwrap()
            .ends_with(&worker_kit::shopify::delivery_id("wh-1"))
    );
    let carried = base64::engine::general_purpose::STANDARD
        .decode(task["httpRequest"]["body"].as_str().unwrap())
        .unwrap();
    assert_eq!(carried, body);
    assert_eq!(header(task, "x-shopify-webhook-id"), Some("wh-1"));
    assert_eq!(header(task, "x-shopify-topic"), Some("orders/updated"));
    assert_eq!(
        header(task, "x-shopify-event-id"),
        Some("98880550-7158-44d4-b7cd-2c97c8a091b5")
    );
    assert_eq!(
        header(task, "x-shopify-triggered-at"),
        Some("2026-12-05T09:00:00.000000Z")
    );
    assert_eq!(header(task, "x-shopify-hmac-sha256"), None);
    assert_eq!(header(task, "x-stackctl-body-ref"), None);

    // Shopify's retry of the same delivery: ALREADY_EXISTS is success, nothing new enqueued.
    let (status, answer) = send(&harness, delivery("wh-1", &body, SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["duplicate"], true);
    assert_eq!(tasks(&harness).await.len(), 1);
    // Another delivery is another task.
    let (status, _) = send(&harness, delivery("wh-2", &body, SECRET)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tasks(&harness).await.len(), 2);
}

#[tokio::test]
async fn forged_unsigned_incomplete_and_foreign_deliveries_enqueue_nothing() {
    let harness = harness("relay-refuse", None).await;
    let body = order(1002, 10);
    let (status, _) = send(&harness, delivery("wh-forged", &body, b"shpss_not_ours")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let mut unsigned = delivery("wh-unsigned", &body, SECRET);
    unsigned.headers_mut().remove("x-shopify-hmac-sha256");
    assert_eq!(send(&harness, unsigned).await.0, StatusCode::UNAUTHORIZED);
    let mut tampered = delivery("wh-tampered", &body, SECRET);
    *tampered.body_mut() = Body::from(order(1003, 10));
    assert_eq!(send(&harness, tampered).await.0, StatusCode::UNAUTHORIZED);
    let mut no_topic = delivery("wh-no-topic", &body, SECRET);
    no_topic.headers_mut().remove("x-shopify-topic");
    let (status, answer) = send(&harness, no_topic).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["missing"], json!(["x-shopify-topic"]));
    let mut foreign = delivery("wh-foreign", &body, SECRET);
    foreign.headers_mut().insert(
        "x-shopify-shop-domain",
        "elsewhere.myshopify.com".parse().unwrap(),
    );
    assert_eq!(send(&harness, foreign).await.0, StatusCode::FORBIDDEN);
    assert!(tasks(&harness).await.is_empty());
}

#[tokio::test]
async fn a_large_body_travels_by_firestore_reference_and_an_oversized_one_is_413() {
    let harness = harness("relay-large", None).await;
    let body = order(1004, 200 * 1024);
    assert!(body.len() > INLINE_BODY_BYTES);
    let (status, answer) = send(&harness, delivery("wh-large", &body, SECRET)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let enqueued = tasks(&harness).await;
    assert_eq!(enqueued.len(), 1);
    let reference = header(&enqueued[0], "x-stackctl-body-ref").expect("a body reference");
    assert_eq!(
        reference,
        format!(
            "webhook_bodies/{}",
            worker_kit::shopify::delivery_id("wh-large")
        )
    );
    assert!(
        enqueued[0]["httpRequest"]["body"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );
    let stored = harness
        .relay
        .firestore
        .get(reference, None)
        .await
        .expect("read the body")
        .expect("the body is stored");
    assert_eq!(stored.bytes("body").as_deref(), Some(&body[..]));
    let expire_at = stored.timestamp("expire_at").expect("expire_at");
    assert!(expire_at > chrono::Utc::now() + chrono::Duration::hours(24));

    let huge = vec![b' '; MAX_WEBHOOK_BYTES + 1];
    let (status, _) = send(&harness, delivery("wh-huge", &huge, SECRET)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(tasks(&harness).await.len(), 1);
}

#[tokio::test]
async fn an_enqueue_that_outlasts_its_budget_is_503_for_shopify_to_retry() {
    // A Cloud Tasks endpoint that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let harness = harness("relay-slow", Some(&silent_url)).await;
    let started = Instant::now();
    let (status, _) = send(&harness, delivery("wh-slow", &order(1005, 10), SECRET)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

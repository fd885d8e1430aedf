//! The task-worker against real parts: Google's Firestore emulator for its records and orders, our
//! emulator's local issuer (in-process) for Cloud Tasks' OIDC tokens. Only the CRM is faked.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use task_worker::{Worker, oidc};
use tower::ServiceExt as _;
use worker_kit::cloud::{self, Cloud};
use worker_kit::log::Logger;
use worker_kit::testing::FirestoreEmulator;

const AUDIENCE: &str = "https://worker-abc123-uc.a.run.app";
const INVOKER: &str = "tasks-invoker@acme.iam.gserviceaccount.com";

struct Harness {
    worker: Arc<Worker>,
    emulator: gcp_emulator::RunningEmulator,
}

async fn harness(project: &str, crm: Option<String>, issuer: &str) -> Harness {
    cloud::install_tls();
    let emulator = gcp_emulator::start(gcp_emulator::Settings::default(), 0)
        .await
        .expect("start the emulator");
    let http = reqwest::Client::new();
    let cloud = Cloud {
        project: project.into(),
        api_endpoint: Some(emulator.url()),
        firestore_emulator: Some(FirestoreEmulator::shared().host.clone()),
    };
    let worker = Arc::new(Worker {
        verifier: oidc::Verifier::new(
            http.clone(),
            format!("{}/oauth2/v3/certs", emulator.url()),
            issuer.into(),
            vec![AUDIENCE.into()],
            vec![INVOKER.into()],
        ),
        firestore: cloud.firestore(http.clone()).expect("firestore"),
        calls: worker_kit::calls::ServiceCalls::new(&cloud, http.clone()),
        http,
        crm_proxy: crm,
        logger: Logger::new(project, task_worker::SERVICE),
    });
    Harness { worker, emulator }
}

async fn token(harness: &Harness, email: &str, audience: &str) -> String {
    reqwest::get(format!(
        "{}/_emulator/id-token?email={email}&audience={audience}",
        harness.emulator.url()
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap()
}

fn task(token: &str, webhook_id: &str, topic: &str, body: &[u8]) -> Request<Body> {
    Request::post(task_worker::TASK_PATH)
        .header("Authorization", format!("Bearer {token}"))
        .header("X-Shopify-Webhook-Id", webhook_id)
        .header("X-Shopify-Topic", topic)
        .header("X-Shopify-Shop-Domain", "acme.myshopify.com")
        .header("X-Shopify-Event-Id", "ev-1")
        .header(
            "X-Cloud-Trace-Context",
            "105445aa7843bc8bf206b12000100000/1;o=1",
        )
        .body(Body::from(body.to_vec()))
        .unwrap()
}

async fn send(harness: &Harness, request: Request<Body>) -> (StatusCode, Value) {
    let response = task_worker::router(Arc::clone(&harness.worker))
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn order(id: u64, updated_at: &str, note: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"id": id, "updated_at": updated_at, "note": note})).unwrap()
}

/// A fake CRM proxy counting calls per Idempotency-Key; answers `statuses` in turn, then 200,
/// each after `delay`.
async fn fake_crm(
    statuses: Vec<u16>,
    delay: std::time::Duration,
) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let keys = Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/customers", listener.local_addr().unwrap());
    let (calls2, keys2) = (Arc::clone(&calls), Arc::clone(&keys));
    let app = axum::Router::new().route(
        "/customers",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let (calls, keys, statuses) =
                (Arc::clone(&calls2), Arc::clone(&keys2), statuses.clone());
            async move {
                tokio::time::sleep(delay).await;
                let n = calls.fetch_add(1, Ordering::SeqCst);
                let status = statuses.get(n).copied().unwrap_or(200);
                if status == 200 {
                    keys.lock()
                        .unwrap()
                        .push(headers["idempotency-key"].to_str().unwrap().to_string());
                }
                StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls, keys)
}

#[tokio::test]
async fn only_a_valid_token_from_an_allowed_caller_gets_in() {
    let harness = harness("worker-oidc", None, oidc::GOOGLE_ISSUER).await;
    let body = order(1, "2026-12-05T09:00:00Z", "a");
    let good = token(&harness, INVOKER, AUDIENCE).await;
    assert_eq!(
        send(&harness, task(&good, "w-ok", "orders/create", &body))
            .await
            .0,
        StatusCode::OK
    );
    let other_audience = token(&harness, INVOKER, "https://elsewhere.run.app").await;
    assert_eq!(
        send(
            &harness,
            task(&other_audience, "w-1", "orders/create", &body)
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    let stranger = token(&harness, "someone@acme.iam.gserviceaccount.com", AUDIENCE).await;
    assert_eq!(
        send(&harness, task(&stranger, "w-2", "orders/create", &body))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let mut forged = good.clone();
    forged.replace_range(forged.len() - 6.., "AAAAAA");
    assert_eq!(
        send(&harness, task(&forged, "w-3", "orders/create", &body))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let mut anonymous = task(&good, "w-4", "orders/create", &body);
    anonymous.headers_mut().remove("authorization");
    assert_eq!(send(&harness, anonymous).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_from_another_issuer_than_the_configured_one_is_refused() {
    // The emulator signs Google-shaped tokens (iss https://accounts.google.com): a worker told
    // to trust another issuer refuses them although the signature and audience are right.
    let harness = harness("worker-issuer", None, "https://issuer.example").await;
    let token = token(&harness, INVOKER, AUDIENCE).await;
    let body = order(5, "2026-12-05T09:00:00Z", "x");
    let (status, _) = send(&harness, task(&token, "w-5", "orders/create", &body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_duplicate_delivery_and_a_failure_then_retry_make_one_effect() {
    let (crm, calls, keys) = fake_crm(vec![503], std::time::Duration::ZERO).await;
    let harness = harness("worker-dupes", Some(crm), oidc::GOOGLE_ISSUER).await;
    let good = token(&harness, INVOKER, AUDIENCE).await;
    let customer = br#"{"id": 77, "email": "jon@example.com"}"#;
    let (status, _) = send(&harness, task(&good, "c-1", "customers/update", customer)).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the CRM's 503 is retried"
    );
    let (status, answer) = send(&harness, task(&good, "c-1", "customers/update", customer)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "done");
    let (status, answer) = send(&harness, task(&good, "c-1", "customers/update", customer)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["status"], "duplicate");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one failed call, one success, none after"
    );
    assert_eq!(*keys.lock().unwrap(), vec!["c-1".to_string()]);
}

#[tokio::test]
async fn two_concurrent_deliveries_make_one_effect() {
    let (crm, _calls, keys) = fake_crm(vec![], std::time::Duration::from_millis(700)).await;
    let harness = harness("worker-race", Some(crm), oidc::GOOGLE_ISSUER).await;
    let good = token(&harness, INVOKER, AUDIENCE).await;
    let customer = br#"{"id": 78}"#;
    let (a, b) = tokio::join!(
        send(&harness, task(&good, "c-2", "customers/create", customer)),
        send(&harness, task(&good, "c-2", "customers/create", customer)),
    );
    let mut statuses = [a.0.as_u16(), b.0.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 429], "{a:?} {b:?}");
    assert_eq!(*keys.lock().unwrap(), vec!["c-2".to_string()]);
    let (status, answer) = send(&harness, task(&good, "c-2", "customers/create", customer)).await;
    assert_eq!(
        (status, answer["status"].clone()),
        (StatusCode::OK, json!("duplicate"))
    );
}

#[tokio::test]
async fn out_of_order_order_updates_keep_the_newest() {
    let harness = harness("worker-order", None, oidc::GOOGLE_ISSUER).await;
    let good = token(&harness, INVOKER, AUDIENCE).await;
    let newer = order(900, "2026-12-05T10:00:00Z", "newer");
    let older = order(900, "2026-12-05T09:00:00Z", "older");
    assert_eq!(
        send(&harness, task(&good, "o-2", "orders/updated", &newer))
            .await
            .0,
        StatusCode::OK
    );
    let (status, answer) = send(&harness, task(&good, "o-1", "orders/updated", &older)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let stored = harness
        .worker
        .firestore
        .get("orders/900", None)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.string("payload").unwrap().contains("newer"));
    // A replay of the newer one changes nothing either.
    let (_, answer) = send(&harness, task(&good, "o-2", "orders/updated", &newer)).await;
    assert_eq!(answer["status"], "duplicate");
}

#[tokio::test]
async fn a_poison_payload_is_dead_lettered_and_answered_2xx_once() {
    let harness = harness("worker-poison", None, oidc::GOOGLE_ISSUER).await;
    let good = token(&harness, INVOKER, AUDIENCE).await;
    let (status, answer) = send(&harness, task(&good, "p-1", "orders/create", b"not json")).await;
    assert_eq!(
        (status, answer["status"].clone()),
        (StatusCode::OK, json!("dead_lettered"))
    );
    let (status, answer) = send(
        &harness,
        task(&good, "p-2", "orders/create", br#"{"note": "no id"}"#),
    )
    .await;
    assert_eq!(
        (status, answer["status"].clone()),
        (StatusCode::OK, json!("dead_lettered"))
    );
    let (status, answer) = send(&harness, task(&good, "p-1", "orders/create", b"not json")).await;
    assert_eq!(
        (status, answer["status"].clone()),
        (StatusCode::OK, json!("duplicate"))
    );
    let record = harness
        .worker
        .firestore
        .get(
            &format!(
                "webhook_deliveries/{}",
                worker_kit::shopify::delivery_id("p-1")
            ),
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.string("status"), Some("dead_lettered"));
    assert_eq!(record.string("event_id"), Some("ev-1"));
    assert!(
        record.timestamp("expire_at").unwrap() > chrono::Utc::now() + chrono::Duration::hours(24)
    );
}

#[tokio::test]
async fn a_body_by_reference_is_read_from_firestore() {
    use worker_kit::firestore::{Fields, Write, value};
    let harness = harness("worker-reference", None, oidc::GOOGLE_ISSUER).await;
    let good = token(&harness, INVOKER, AUDIENCE).await;
    let body = order(4242, "2026-12-05T09:00:00Z", &"y".repeat(200 * 1024));
    let reference = "webhook_bodies/shopify-large";
    let mut stored = Fields::new();
    stored.insert("body".into(), value::bytes(&body));
    let firestore = &harness.worker.firestore;
    firestore
        .commit(vec![Write::set(&firestore.name(reference), stored)], None)
        .await
        .unwrap();
    let mut request = task(&good, "r-1", "orders/create", b"");
    request
        .headers_mut()
        .insert("x-stackctl-body-ref", reference.parse().unwrap());
    let (status, answer) = send(&harness, request).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let order = firestore.get("orders/4242", None).await.unwrap().unwrap();
    assert_eq!(order.string("payload").map(str::len), Some(body.len()));
}

#[test]
fn a_bare_crm_proxy_url_gets_its_customers_route_and_a_full_one_is_kept() {
    assert_eq!(
        task_worker::crm_customers_url("https://crm-proxy-abc-uc.a.run.app"),
        "https://crm-proxy-abc-uc.a.run.app/customers"
    );
    assert_eq!(
        task_worker::crm_customers_url("https://crm-proxy-abc-uc.a.run.app/"),
        "https://crm-proxy-abc-uc.a.run.app/customers"
    );
    assert_eq!(
        task_worker::crm_customers_url("http://127.0.0.1:9/v2/customers"),
        "http://127.0.0.1:9/v2/customers"
    );
}

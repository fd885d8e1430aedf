//! crm-proxy against the in-process emulator's fake CRM (`/crm/customers/{id}`), with scripted
//! CRM answers and short timings; and the process refusing to start without its CRM URL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use crm_proxy::{Config, Proxy};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use worker_kit::log::{CapturedLines, Logger};

const KEY: &str = "crm-key-sentinel-3f9a";
/// Customer data that must never reach a log line.
const EMAIL: &str = "pii-sentinel@example.com";

struct Harness {
    proxy: Arc<Proxy>,
    logs: CapturedLines,
    emulator: gcp_emulator::RunningEmulator,
    http: reqwest::Client,
}

/// Test timings: 300 ms per attempt, 3 s in all, backoff 50 ms doubling up to 200 ms.
fn test_config(crm_url: &str, key: &str) -> Config {
    Config {
        attempt_timeout: Duration::from_millis(300),
        deadline: Duration::from_secs(3),
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        ..Config::new(crm_url, key)
    }
}

async fn harness_with(configure: impl FnOnce(&mut Config)) -> Harness {
    worker_kit::cloud::install_tls();
    let emulator = gcp_emulator::start(gcp_emulator::Settings::default(), 0)
        .await
        .expect("start the emulator");
    let http = reqwest::Client::new();
    let harness_url = emulator.url();
    let configured = http
        .post(format!("{harness_url}/_emulator/crm/config"))
        .body(json!({"api_key": KEY}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(configured.status(), 200);
    let mut config = test_config(&format!("{harness_url}/crm"), KEY);
    configure(&mut config);
    let (logger, logs) = Logger::capturing("acme", crm_proxy::SERVICE);
    Harness {
        proxy: Arc::new(Proxy::new(config, logger)),
        logs,
        emulator,
        http,
    }
}

async fn harness() -> Harness {
    harness_with(|_| {}).await
}

impl Harness {
    async fn script(&self, customer_id: &str, answers: Value) {
        let response = self
            .http
            .post(format!("{}/_emulator/crm/script", self.emulator.url()))
            .body(json!({"customer_id": customer_id, "answers": answers}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    /// The fake CRM's stored customers by id.
    async fn crm_customers(&self) -> Value {
        let listed: Value = serde_json::from_str(
            &reqwest::get(format!("{}/_emulator/crm/customers", self.emulator.url()))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        )
        .unwrap();
        let mut by_id = serde_json::Map::new();
        for customer in listed["customers"].as_array().unwrap() {
            by_id.insert(
                customer["id"].as_str().unwrap().to_string(),
                customer.clone(),
            );
        }
        Value::Object(by_id)
    }

    /// PUTs that reached the fake CRM, whatever it answered.
    async fn crm_puts(&self) -> usize {
        let log: Value = serde_json::from_str(
            &reqwest::get(format!("{}/_emulator/requests", self.emulator.url()))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        )
        .unwrap();
        log.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == "PUT" && r["path"].as_str().unwrap().starts_with("/crm/"))
            .count()
    }

    /// POSTs `body` to the proxy: its status, `Retry-After` and JSON body.
    async fn update(
        &self,
        body: &[u8],
        idempotency_key: Option<&str>,
    ) -> (StatusCode, Option<String>, Value) {
        let mut request = Request::post(crm_proxy::CUSTOMERS_PATH)
            .header("Content-Type", "application/json")
            .header("X-Shopify-Topic", "customers/update")
            .header(
                "X-Cloud-Trace-Context",
                "105445aa7843bc8bf206b12000100000/1;o=1",
            );
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = crm_proxy::router(Arc::clone(&self.proxy))
            .oneshot(request.body(Body::from(body.to_vec())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            retry_after,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn update_customer(
        &self,
        id: Value,
        idempotency_key: Option<&str>,
    ) -> (StatusCode, Option<String>, Value) {
        let customer = json!({"id": id, "email": EMAIL, "first_name": "Ada"});
        self.update(customer.to_string().as_bytes(), idempotency_key)
            .await
    }

    /// The log lines written so far, parsed.
    fn lines(&self) -> Vec<Value> {
        self.logs
            .lines()
            .iter()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// The one log line of the last request.
    fn last_line(&self) -> Value {
        self.lines().pop().expect("a log line")
    }
}

#[tokio::test]
async fn an_update_reaches_the_crm_once_with_who_and_when_and_a_replay_writes_nothing() {
    let harness = harness().await;
    let before = chrono::Utc::now();
    let (status, _, body) = harness.update_customer(json!(42), Some("wh-1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], 42, "the CRM's answer: {body}");
    let customers = harness.crm_customers().await;
    let stored = &customers["42"];
    assert_eq!(stored["writes"], 1);
    assert_eq!(stored["idempotency_keys"], json!(["wh-1"]));
    assert_eq!(stored["customer"]["email"], EMAIL);
    assert_eq!(
        stored["customer"]["updated_by_system"],
        "stackctl-crm-proxy"
    );
    let updated_at =
        chrono::DateTime::parse_from_rfc3339(stored["customer"]["updated_at"].as_str().unwrap())
            .unwrap();
    assert!(updated_at >= before - chrono::Duration::seconds(1));
    assert!(updated_at <= chrono::Utc::now());
    let line = harness.last_line();
    assert_eq!(line["severity"], "INFO");
    assert_eq!(line["customerId"], "42");
    assert_eq!(line["crmStatus"], 200);
    assert_eq!(line["attempts"], 1);
    assert_eq!(line["idempotencyKey"], "wh-1");
    assert!(line["durationMs"].is_u64());
    assert_eq!(
        line["logging.googleapis.com/trace"],
        "projects/acme/traces/105445aa7843bc8bf206b12000100000"
    );

    let (status, _, replayed) = harness.update_customer(json!(42), Some("wh-1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(replayed["updated_at"], stored["customer"]["updated_at"]);
    assert_eq!(harness.crm_customers().await["42"]["writes"], 1);

    // A string id travels percent-encoded as one path segment.
    let (status, _, _) = harness
        .update_customer(json!("gid://shopify/Customer 7"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        harness.crm_customers().await["gid://shopify/Customer 7"]["writes"],
        1
    );
}

#[tokio::test]
async fn a_crm_that_does_not_answer_in_time_is_a_504() {
    let harness = harness().await;
    let slow =
        json!([{"delay_ms": 2000}, {"delay_ms": 2000}, {"delay_ms": 2000}, {"delay_ms": 2000}]);
    harness.script("5", slow.clone()).await;
    let started = Instant::now();
    let (status, _, body) = harness.update_customer(json!(5), None).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(body["error"].is_string());
    let line = harness.last_line();
    assert_eq!(line["attempts"], 4, "each timed-out attempt is retried");
    assert_eq!(line["crmStatus"], Value::Null);
    // 4 x 300 ms and 50 + 100 + 200 ms of backoff.
    assert!(started.elapsed() < Duration::from_millis(2500));

    // The overall deadline cuts an attempt short: 300 ms, 50 ms, then 150 ms left.
    let harness = harness_with(|c| c.deadline = Duration::from_millis(500)).await;
    harness.script("6", slow).await;
    let started = Instant::now();
    let (status, _, _) = harness.update_customer(json!(6), None).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(harness.last_line()["attempts"], 2);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(450) && elapsed < Duration::from_millis(1000),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn a_customer_the_crm_does_not_know_is_a_404_without_retries() {
    let harness = harness().await;
    harness.script("9", json!([{"status": 404}])).await;
    let (status, _, body) = harness.update_customer(json!(9), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(harness.last_line()["attempts"], 1);
    assert_eq!(harness.crm_puts().await, 1);
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_then_the_update_goes_through() {
    let harness = harness().await;
    harness
        .script("11", json!([{"status": 429, "retry_after": 1}]))
        .await;
    let started = Instant::now();
    let (status, _, body) = harness.update_customer(json!(11), Some("wh-11")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 honoured"
    );
    let line = harness.last_line();
    assert_eq!(line["attempts"], 2);
    assert_eq!(line["crmStatus"], 200);
    assert_eq!(harness.crm_customers().await["11"]["writes"], 1);
}

#[tokio::test]
async fn a_crm_failing_every_time_is_a_502_so_the_caller_retries_later() {
    let harness = harness().await;
    harness
        .script(
            "12",
            json!([{"status": 503}, {"status": 503}, {"status": 503}, {"status": 503}]),
        )
        .await;
    let (status, _, body) = harness.update_customer(json!(12), None).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let line = harness.last_line();
    assert_eq!(line["attempts"], 4);
    assert_eq!(line["crmStatus"], 503);
    assert_eq!(harness.crm_puts().await, 4);
    assert!(harness.crm_customers().await.get("12").is_none());

    // A Retry-After past the deadline is not waited for: the caller gets it with the 502.
    harness
        .script("13", json!([{"status": 429, "retry_after": 30}]))
        .await;
    let started = Instant::now();
    let (status, retry_after, _) = harness.update_customer(json!(13), None).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(retry_after.as_deref(), Some("30"));
    assert_eq!(harness.last_line()["attempts"], 1);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn an_unreachable_crm_is_retried_then_a_502() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/crm", closed.local_addr().unwrap());
    drop(closed);
    let harness = harness().await;
    let (logger, logs) = Logger::capturing("acme", crm_proxy::SERVICE);
    let unreachable = Harness {
        proxy: Arc::new(Proxy::new(test_config(&url, KEY), logger)),
        logs,
        ..harness
    };
    let (status, _, body) = unreachable.update_customer(json!(40), None).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("unreachable"),
        "{body}"
    );
    let line = unreachable.last_line();
    assert_eq!(
        (line["crmStatus"].clone(), line["attempts"].clone()),
        (Value::Null, json!(4))
    );
}

#[tokio::test]
async fn a_refused_key_is_a_502_and_refused_data_a_422() {
    let harness = harness().await;
    harness.script("21", json!([{"status": 409}])).await;
    let (status, _, body) = harness.update_customer(json!(21), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["crm"]["error"]["status"], 409,
        "the CRM's reason: {body}"
    );
    assert_eq!(harness.last_line()["attempts"], 1);

    let url = format!("{}/crm", harness.emulator.url());
    let (logger, logs) = Logger::capturing("acme", crm_proxy::SERVICE);
    let wrong_key = Harness {
        proxy: Arc::new(Proxy::new(test_config(&url, "not-the-key"), logger)),
        logs,
        ..harness
    };
    let (status, _, body) = wrong_key.update_customer(json!(22), None).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let line = wrong_key.last_line();
    assert_eq!(
        (line["crmStatus"].clone(), line["attempts"].clone()),
        (json!(401), json!(1))
    );
    assert_eq!(line["severity"], "ERROR");
    assert!(!line.to_string().contains("not-the-key"));
}

#[tokio::test]
async fn a_body_that_is_not_a_customer_is_a_400_and_nothing_is_sent() {
    let harness = harness().await;
    for body in [
        &b"not json"[..],
        b"[1, 2]",
        b"{\"email\": \"x@example.com\"}",
        b"{\"id\": \"\"}",
        b"{\"id\": null}",
        b"{\"id\": \"..\"}",
    ] {
        let (status, _, answer) = harness.update(body, Some("wh-bad")).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(body)
        );
        assert!(answer["error"].is_string(), "{answer}");
        assert_eq!(harness.last_line()["status"], 400);
    }
    assert_eq!(harness.crm_puts().await, 0);
}

#[tokio::test]
async fn neither_the_key_nor_the_customer_ever_reach_a_log_line() {
    let harness = harness().await;
    harness
        .script(
            "31",
            json!([{"status": 503}, {"status": 503}, {"status": 503}, {"status": 503}]),
        )
        .await;
    harness.script("32", json!([{"status": 422}])).await;
    harness.update_customer(json!(30), Some("wh-30")).await;
    harness.update_customer(json!(31), None).await;
    harness.update_customer(json!(32), None).await;
    let bad = json!({"email": EMAIL, "note": KEY}).to_string();
    harness.update(bad.as_bytes(), None).await;
    let lines = harness.logs.lines();
    assert_eq!(lines.len(), 4, "one line per request: {lines:#?}");
    for line in &lines {
        assert!(!line.contains(KEY), "the API key in {line}");
        assert!(
            !line.contains("Bearer"),
            "an Authorization header in {line}"
        );
        assert!(!line.contains(EMAIL), "customer data in {line}");
        assert!(!line.contains("Ada"), "customer data in {line}");
    }
    let statuses: Vec<Value> = harness
        .lines()
        .iter()
        .map(|l| l["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        vec![json!(200), json!(502), json!(422), json!(400)]
    );
}

#[test]
fn retry_after_takes_seconds_or_an_http_date_and_backoff_doubles_up_to_its_cap() {
    let now = chrono::DateTime::parse_from_rfc3339("2026-12-05T10:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert_eq!(
        crm_proxy::retry_after("2", now),
        Some(Duration::from_secs(2))
    );
    assert_eq!(
        crm_proxy::retry_after("Sat, 05 Dec 2026 10:00:03 GMT", now),
        Some(Duration::from_secs(3))
    );
    assert_eq!(
        crm_proxy::retry_after("Sat, 05 Dec 2026 09:59:00 GMT", now),
        Some(Duration::ZERO)
    );
    assert_eq!(crm_proxy::retry_after("soon", now), None);
    let config = Config::new("https://crm.example.com/api/", "k");
    assert_eq!(config.crm_url, "https://crm.example.com/api");
    let waits: Vec<u64> = (1..=5)
        .map(|a| config.backoff(a).as_millis() as u64)
        .collect();
    assert_eq!(waits, vec![500, 1000, 2000, 4000, 4000]);
}

#[test]
fn the_configuration_names_what_is_missing_and_never_shows_the_key() {
    let lookup = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    };
    let no_url = Config::from_lookup(lookup(&[("CRM_API_KEY", KEY)])).unwrap_err();
    assert!(no_url.contains("EXTERNAL_CRM_API_URL"), "{no_url}");
    let misspelt = Config::from_lookup(lookup(&[
        ("EXTERMAL_CRM_API_URL", "https://crm.example.com"),
        ("CRM_API_KEY", KEY),
    ]))
    .unwrap_err();
    assert!(misspelt.contains("EXTERMAL_CRM_API_URL"), "{misspelt}");
    let no_key = Config::from_lookup(lookup(&[(
        "EXTERNAL_CRM_API_URL",
        "https://crm.example.com",
    )]))
    .unwrap_err();
    assert!(no_key.contains("CRM_API_KEY"), "{no_key}");
    let bad_key = Config::from_lookup(lookup(&[
        ("EXTERNAL_CRM_API_URL", "https://crm.example.com"),
        ("CRM_API_KEY", "line\nbreak"),
    ]))
    .unwrap_err();
    assert!(
        bad_key.contains("CRM_API_KEY") && !bad_key.contains("break"),
        "{bad_key}"
    );
    let config = Config::from_lookup(lookup(&[
        ("EXTERNAL_CRM_API_URL", "https://crm.example.com/v1/"),
        ("CRM_API_KEY", KEY),
        ("CRM_UPDATED_BY", "acme-sync"),
    ]))
    .unwrap();
    assert_eq!(config.crm_url, "https://crm.example.com/v1");
    assert_eq!(config.updated_by, "acme-sync");
    assert_eq!(config.crm_origin(), "https://crm.example.com");
    assert!(!format!("{config:?}").contains(KEY));
    let local = Config::from_lookup(lookup(&[
        ("EXTERNAL_CRM_API_URL", "https://crm.example.com/v1/"),
        ("CRM_API_KEY", KEY),
        ("STACKCTL_API_ENDPOINT", "http://127.0.0.1:4000/"),
    ]))
    .unwrap();
    assert_eq!(
        local.crm_url, "http://127.0.0.1:4000/crm",
        "under up --local the CRM is the emulator's fake"
    );
}

#[test]
fn the_process_does_not_start_without_the_crm_url_and_says_which() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_crm-proxy"))
        .env_clear()
        .env("CRM_API_KEY", KEY)
        .env("GOOGLE_CLOUD_PROJECT", "acme")
        .env("PORT", "0")
        .output()
        .expect("run crm-proxy");
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(line["severity"], "ERROR");
    assert!(
        line["message"]
            .as_str()
            .unwrap()
            .contains("EXTERNAL_CRM_API_URL"),
        "{line}"
    );
    assert!(!stdout.contains(KEY));
}

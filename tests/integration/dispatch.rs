//! Cloud Tasks dispatch on the execution plane (`stackctl emulator --execute`): a recording HTTP
//! target checks what each attempt carries (Google's headers, an OIDC token the official verifier
//! accepts against the local JWKS), retries follow the queue's backoff on the test clock, and the
//! task is deleted once its attempts run out; Google's Python client creates and lists tasks.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

const QUEUES: &str = "/v2/projects/test-project/locations/us-central1/queues";
const INVOKER: &str = "invoker@test-project.iam.gserviceaccount.com";

/// One request the recorder received.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
    /// When it arrived.
    pub(crate) at: Instant,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A loopback HTTP target that records every request and answers with `status`.
pub(crate) struct Recorder {
    pub(crate) url: String,
    received: Arc<Mutex<Vec<Received>>>,
    pub(crate) status: Arc<Mutex<u16>>,
}

impl Recorder {
    pub(crate) fn start(status: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let status = Arc::new(Mutex::new(status));
        let (log, answer) = (Arc::clone(&received), Arc::clone(&status));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                let mut headers = Vec::new();
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = header.trim_end().split_once(':') {
                        headers.push((k.trim().to_string(), v.trim().to_string()));
                    }
                }
                let length: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                log.lock().unwrap().push(Received {
                    path,
                    headers,
                    body: String::from_utf8_lossy(&body).into(),
                    at: Instant::now(),
                });
                let code = *answer.lock().unwrap();
                let _ = reader.get_mut().write_all(
                    format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                );
            }
        });
        Self {
            url,
            received,
            status,
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    pub(crate) fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.count() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} requests arrived",
                self.count()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.received.lock().unwrap().clone()
    }
}

pub(crate) fn executing_emulator() -> Emulator {
    Emulator::start_with(&[("STACKCTL_EMULATOR_EXECUTE", "1")])
}

fn make_queue(emulator: &Emulator, id: &str, retry: &str) {
    let (status, body) = emulator.http(
        "POST",
        "/v1/projects/test-project/serviceAccounts",
        Some(r#"{"accountId": "invoker"}"#),
    );
    assert!(status == 200 || status == 409, "{body}");
    let (status, body) = emulator.http(
        "POST",
        QUEUES,
        Some(&format!(
            r#"{{"name": "projects/test-project/locations/us-central1/queues/{id}", "retryConfig": {retry}}}"#
        )),
    );
    assert_eq!(status, 200, "{body}");
}

pub(crate) fn advance(emulator: &Emulator, seconds: u64) {
    let (status, body) = emulator.http(
        "POST",
        "/_emulator/clock",
        Some(&format!(r#"{{"advance_seconds": {seconds}}}"#)),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn tasks_carry_googles_headers_and_a_verifiable_token_and_retry_on_the_queues_backoff_until_deleted()
 {
    let emulator = executing_emulator();
    let target = Recorder::start(500);
    make_queue(
        &emulator,
        "orders",
        r#"{"maxAttempts": 3, "minBackoff": "10s", "maxBackoff": "300s", "maxDoublings": 3}"#,
    );
    let url = format!("{}/hooks/orders?shop=acme", target.url);
    let (status, created) = emulator.http(
        "POST",
        &format!("{QUEUES}/orders/tasks"),
        Some(&format!(
            r#"{{"task": {{"name": "projects/test-project/locations/us-central1/queues/orders/tasks/order-1001",
                "httpRequest": {{"url": "{url}", "body": "eyJpZCI6IDEwMDF9",
                "headers": {{"Content-Type": "application/json"}},
                "oidcToken": {{"serviceAccountEmail": "{INVOKER}"}}}}}}}}"#
        )),
    );
    assert_eq!(status, 200, "{created}");

    let first = target.wait_for(1)[0].clone();
    assert_eq!(first.path, "/hooks/orders?shop=acme");
    assert_eq!(first.body, r#"{"id": 1001}"#);
    assert_eq!(first.header("User-Agent"), Some("Google-Cloud-Tasks"));
    assert_eq!(first.header("X-CloudTasks-QueueName"), Some("orders"));
    assert_eq!(first.header("X-CloudTasks-TaskName"), Some("order-1001"));
    assert_eq!(first.header("X-CloudTasks-TaskRetryCount"), Some("0"));
    assert_eq!(first.header("X-CloudTasks-TaskExecutionCount"), Some("0"));
    assert!(first.header("X-CloudTasks-TaskETA").is_some());
    assert_eq!(first.header("X-CloudTasks-TaskPreviousResponse"), None);
    assert_eq!(first.header("Content-Type"), Some("application/json"));
    let token = first
        .header("Authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .expect("an OIDC token")
        .to_string();
    let claims = verify_local_id_token(&emulator.url, &url, Some(INVOKER), &token)
        .expect("the official verifier accepts the local token");
    assert_eq!(
        claims["aud"],
        url.as_str(),
        "the audience defaults to the task's URL"
    );
    let forged = format!("{}x", &token[..token.len() - 1]);
    assert!(
        verify_local_id_token(&emulator.url, &url, None, &forged).is_err(),
        "a tampered token is refused"
    );

    // The first retry waits minBackoff (10 s) on the emulator's clock.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(target.count(), 1, "no retry before the backoff");
    let (_, task) = emulator.http("GET", &format!("{QUEUES}/orders/tasks/order-1001"), None);
    let task: serde_json::Value = serde_json::from_str(&task).unwrap();
    assert_eq!(task["dispatchCount"], 1, "{task}");
    // A 5xx does not count as an execution (X-CloudTasks-TaskExecutionCount excludes them).
    assert_eq!(task.get("responseCount"), None, "{task}");
    assert_eq!(
        task["lastAttempt"]["responseStatus"]["code"], 13,
        "INTERNAL for HTTP 500: {task}"
    );
    advance(&emulator, 9);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(target.count(), 1, "9 s is not yet the 10 s backoff");
    advance(&emulator, 2);
    let second = target.wait_for(2)[1].clone();
    assert_eq!(second.header("X-CloudTasks-TaskRetryCount"), Some("1"));
    assert_eq!(second.header("X-CloudTasks-TaskExecutionCount"), Some("0"));
    assert_eq!(
        second.header("X-CloudTasks-TaskPreviousResponse"),
        Some("500")
    );
    assert!(second.header("X-CloudTasks-TaskRetryReason").is_some());

    // The second retry doubles (20 s); the third attempt is the last of maxAttempts = 3.
    advance(&emulator, 15);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        target.count(),
        2,
        "15 s is not yet the doubled 20 s backoff"
    );
    advance(&emulator, 6);
    target.wait_for(3);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, _) = emulator.http("GET", &format!("{QUEUES}/orders/tasks/order-1001"), None);
        if status == 404 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the task was not deleted after its last attempt"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    advance(&emulator, 3600);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(target.count(), 3, "no attempt after the last");
}

#[test]
fn paused_queues_hold_tasks_and_a_2xx_deletes_them_while_the_name_stays_reserved() {
    let emulator = executing_emulator();
    let target = Recorder::start(200);
    make_queue(&emulator, "held", r#"{"maxAttempts": 5}"#);
    let (status, body) = emulator.http("POST", &format!("{QUEUES}/held:pause"), Some("{}"));
    assert_eq!(status, 200, "{body}");
    let task = format!(
        r#"{{"task": {{"name": "projects/test-project/locations/us-central1/queues/held/tasks/t1", "httpRequest": {{"url": "{}/x"}}}}}}"#,
        target.url
    );
    let (status, body) = emulator.http("POST", &format!("{QUEUES}/held/tasks"), Some(&task));
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(target.count(), 0, "a paused queue does not dispatch");
    let (status, body) = emulator.http("POST", &format!("{QUEUES}/held:resume"), Some("{}"));
    assert_eq!(status, 200, "{body}");
    target.wait_for(1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while emulator
        .http("GET", &format!("{QUEUES}/held/tasks/t1"), None)
        .0
        != 404
    {
        assert!(Instant::now() < deadline, "a 2xx deletes the task");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = emulator.http("POST", &format!("{QUEUES}/held/tasks"), Some(&task));
    assert_eq!(
        status, 409,
        "the name is reserved after the task ran: {body}"
    );
    assert!(body.contains("ALREADY_EXISTS"), "{body}");
    *target.status.lock().unwrap() = 200;
}

#[test]
fn googles_python_client_creates_and_lists_a_task_that_reaches_its_target() {
    let emulator = executing_emulator();
    let target = Recorder::start(200);
    make_queue(&emulator, "webhooks", r#"{"maxAttempts": 5}"#);
    // Paused while the client lists it, then resumed so it is dispatched.
    emulator.http("POST", &format!("{QUEUES}/webhooks:pause"), Some("{}"));
    let out = std::process::Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/conformance/python_tasks.py"
        ))
        .args(["--endpoint", &emulator.url])
        .args([
            "--queue",
            "projects/test-project/locations/us-central1/queues/webhooks",
        ])
        .args(["--url", &format!("{}/hook", target.url)])
        .args(["--service-account", INVOKER])
        .output()
        .expect("run python_tasks.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    let name =
        "projects/test-project/locations/us-central1/queues/webhooks/tasks/orders-create-1001";
    assert_eq!(report["created"], name);
    assert_eq!(report["listed"], serde_json::json!([name]));
    let duplicate = report["duplicate"].as_str().unwrap_or_default();
    assert!(
        duplicate.starts_with("409 ") && duplicate.ends_with("Requested entity already exists"),
        "a reused name is refused: {duplicate}"
    );
    emulator.http("POST", &format!("{QUEUES}/webhooks:resume"), Some("{}"));
    let received = target.wait_for(1);
    assert_eq!(received[0].body, r#"{"id": 1001}"#);
    assert_eq!(
        received[0].header("X-CloudTasks-TaskName"),
        Some("orders-create-1001")
    );
    assert!(
        received[0]
            .header("Authorization")
            .is_some_and(|a| a.starts_with("Bearer ey"))
    );
}

#[test]
fn a_caller_needs_the_enqueuer_role_and_act_as_on_the_tasks_token_account() {
    let emulator = executing_emulator();
    make_queue(&emulator, "webhooks", r#"{"maxAttempts": 1}"#);
    let (status, body) = emulator.http(
        "POST",
        "/v1/projects/test-project/serviceAccounts",
        Some(r#"{"accountId": "webhook-relay"}"#),
    );
    assert_eq!(status, 200, "{body}");
    let relay = "webhook-relay@test-project.iam.gserviceaccount.com";
    let (_, token) = emulator.http(
        "GET",
        &format!("/_emulator/access-token?email={relay}"),
        None,
    );
    let bearer = format!("Bearer {token}");
    let create = |id: &str| {
        http_with(
            &emulator.addr(),
            "POST",
            &format!("{QUEUES}/webhooks/tasks"),
            &[("Authorization", &bearer)],
            Some(&format!(
                r#"{{"task": {{"name": "projects/test-project/locations/us-central1/queues/webhooks/tasks/{id}",
                    "httpRequest": {{"url": "http://127.0.0.1:9/hook", "oidcToken": {{"serviceAccountEmail": "{INVOKER}"}}}}}}}}"#
            )),
        )
    };
    let grant = |resource: &str, role: &str| {
        let (status, body) = emulator.http(
            "POST",
            &format!("{resource}:setIamPolicy"),
            Some(&format!(
                r#"{{"policy": {{"bindings": [{{"role": "{role}", "members": ["serviceAccount:{relay}"]}}]}}}}"#
            )),
        );
        assert_eq!(status, 200, "{body}");
    };

    let (status, body) = create("w1");
    assert_eq!(status, 403, "no role on the queue: {body}");
    assert!(body.contains("cloudtasks.tasks.create"), "{body}");
    grant(&format!("{QUEUES}/webhooks"), "roles/cloudtasks.enqueuer");
    let (status, body) = create("w1");
    assert_eq!(
        status, 403,
        "an enqueuer may not act as another account: {body}"
    );
    assert!(body.contains("iam.serviceAccounts.actAs"), "{body}");
    grant(
        &format!("/v1/projects/test-project/serviceAccounts/{INVOKER}"),
        "roles/iam.serviceAccountUser",
    );
    let (status, body) = create("w1");
    assert_eq!(status, 200, "enqueuer and Service Account User: {body}");
    // Anonymous callers (stackctl and tests) act as the project's owner.
    let (status, body) = emulator.http(
        "POST",
        &format!("{QUEUES}/webhooks/tasks"),
        Some(r#"{"task": {"httpRequest": {"url": "http://127.0.0.1:9/hook"}}}"#),
    );
    assert_eq!(status, 200, "{body}");
}

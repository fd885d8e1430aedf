//! `stackctl up --local`: the example stack applied, built for this machine and run (its worker a
//! process behind a front that checks ID tokens and `run.invoker`), other `--local` commands
//! attached to it, jobs executed for real (retries, counts, their identity's metadata server),
//! and a clean stop.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::*;

/// A running `stackctl up --local`, stopped with SIGTERM when dropped.
struct Up {
    child: Child,
    emulator: String,
    services: Vec<(String, String)>,
    /// `http://HOST:PORT` of Google's Firestore emulator, when up started it.
    firestore: Option<String>,
    stderr: tempfile::NamedTempFile,
}

impl Up {
    fn start(ws: &Workspace) -> Self {
        Self::start_in(ws.path(), &[])
    }

    /// `stackctl up --local` for the stack.toml in `dir`, with `env` added.
    fn start_in(dir: &Path, env: &[(&str, &str)]) -> Self {
        let stderr = tempfile::NamedTempFile::new().expect("stderr file");
        let mut child = Command::new(BIN)
            .current_dir(dir)
            .args(["up", "--local", "--auto-approve"])
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .env_remove("STACKCTL_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().expect("stderr handle"))
            .spawn()
            .expect("spawn stackctl up");
        let stdout = child.stdout.take().expect("stdout");
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Up builds every worker in release first: minutes on a busy 2-core machine.
        let deadline = Instant::now() + Duration::from_secs(900);
        let (mut emulator, mut services, mut firestore) = (String::new(), Vec::new(), None);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "no `ready` line from stackctl up:\n{}",
                    std::fs::read_to_string(stderr.path()).unwrap_or_default()
                )
            });
            if line == "ready" {
                break;
            }
            if let Some(url) = line.strip_prefix("emulator ") {
                emulator = url.to_string();
            } else if let Some(url) = line.strip_prefix("firestore ") {
                firestore = Some(url.to_string());
            } else if let Some((address, url)) = line.split_once(' ')
                && (address.starts_with("service.") || address.starts_with("gateway."))
                && url.starts_with("http://127.0.0.1:")
            {
                services.push((address.to_string(), url.to_string()));
            }
        }
        Self {
            child,
            emulator,
            services,
            firestore,
            stderr,
        }
    }

    fn front(&self, address: &str) -> String {
        self.services
            .iter()
            .find(|(a, _)| a == address)
            .map(|(_, url)| url.clone())
            .unwrap_or_else(|| {
                panic!(
                    "{address} is not running: {:?}\n{}",
                    self.services,
                    self.log()
                )
            })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    fn api(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        http(
            self.emulator.trim_start_matches("http://"),
            method,
            path,
            body,
        )
    }

    /// SIGTERM, then the exit status and everything it printed on stderr.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "stackctl up did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = self.log();
        assert_no_canary("stderr of stackctl up", &log);
        (status, log)
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw HTTP/1.0 request with headers; returns (status, body).
fn request(url: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    send(url, method, path, headers, "")
}

/// [`request`] with a body. HTTP/1.0, so the server closes the connection after answering.
fn send(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(70)))
        .expect("timeout");
    let mut head = format!(
        "{method} {path} HTTP/1.0\r\nHost: {address}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(body);
    stream.write_all(head.as_bytes()).expect("send");
    // Read the head, then Content-Length bytes (some servers, Google's Firestore emulator among
    // them, keep the connection open even for HTTP/1.0), else to the end.
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("read");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut length = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).expect("read") == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body).expect("read body");
        }
        None => {
            reader.read_to_end(&mut body).expect("read body");
        }
    }
    (status, String::from_utf8_lossy(&body).to_string())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if entry.file_name() == "target" {
            continue;
        }
        if source.is_dir() {
            copy_dir(&source, &target);
        } else {
            std::fs::copy(&source, &target).expect("copy");
        }
    }
}

fn id_token(up: &Up, email: &str, audience: &str) -> String {
    let (status, token) = up.api(
        "GET",
        &format!("/_emulator/id-token?email={email}&audience={audience}"),
        None,
    );
    assert_eq!(status, 200, "{token}");
    token
}

#[test]
fn up_runs_the_example_worker_behind_a_front_that_only_lets_invokers_in() {
    let ws = Workspace::example();
    // The fixture stands in for every worker (the real ones run in the webhook test below).
    for build in EXAMPLE_BUILDS {
        copy_dir(&hello_worker_source(), &ws.path().join(build));
    }
    let up = Up::start(&ws);
    // The secret has no version yet: Cloud Run would not start the revision, and neither does up
    // (the gateway in front of crm-proxy serves; its backend does not answer).
    assert!(
        up.services
            .iter()
            .all(|(address, _)| address.starts_with("gateway.")),
        "{:?}",
        up.services
    );
    assert!(
        up.log().contains("service.worker not running: spec.template.spec.containers[0].env[2].value_from.secret_key_ref.name: Secret projects/acme-shop-dev/secrets/shopify-api-secret/versions/latest was not found"),
        "{}",
        up.log()
    );
    // plan says so before anyone finds out at the first real apply.
    let warned = ws.run(&["plan", "--local"]).expect(0);
    assert!(
        warned.stderr.contains("warning: secret.shopify-api-secret has no enabled version, and service.worker reads it: Cloud Run will not start it until it has one; add it with `stackctl secret set shopify-api-secret --local`"),
        "{}",
        warned.stderr
    );
    // Other --local commands talk to the running emulator instead of failing on its lock.
    let said = set_secret_local(
        &ws,
        "secret.shopify-api-secret",
        "shpss_not_a_real_secret_1234",
    );
    assert!(
        said.contains("Added version 1 to secret.shopify-api-secret"),
        "{said}"
    );
    let quiet = ws
        .run(&["plan", "--local", "--detailed-exitcode"])
        .expect(0);
    assert!(
        !quiet
            .stderr
            .contains("secret.shopify-api-secret has no enabled version"),
        "{}",
        quiet.stderr
    );
    drop(up);

    let up = Up::start(&ws);
    let front = up.front("service.worker");
    // The example worker takes internal traffic only: Cloud Tasks reaches it (the Python client
    // test below), a caller from outside gets Cloud Run's 404 whatever its token.
    let (status, body) = request(&front, "POST", "/tasks/webhook", &[]);
    assert_eq!(status, 404, "internal ingress: {body}");
    let queue = "/v2/projects/acme-shop-dev/locations/us-central1/queues/webhooks";
    let (status, body) = up.api(
        "POST",
        &format!("{queue}/tasks"),
        Some(&format!(
            r#"{{"task": {{"name": "projects/acme-shop-dev/locations/us-central1/queues/webhooks/tasks/order-7", "httpRequest": {{"body": "{}"}}}}}}"#,
            base64(b"{\"id\": 7}")
        )),
    );
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while up.api("GET", &format!("{queue}/tasks/order-7"), None).0 != 404 {
        assert!(
            Instant::now() < deadline,
            "Cloud Tasks reaches the internal worker: {}",
            up.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        up.log().contains("hello-worker: task order-7 (9 bytes)"),
        "{}",
        up.log()
    );
    ws.edit(
        r#"ingress = "internal-and-cloud-load-balancing""#,
        r#"ingress = "all""#,
    );
    ws.run(&["apply", "--local", "--auto-approve"]).expect(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, body) = loop {
        let (status, body) = request(&front, "POST", "/tasks/webhook", &[]);
        if status != 404 || Instant::now() > deadline {
            break (status, body);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status, 403, "ingress all, no token: {body}");
    assert!(body.contains("Error: Forbidden"), "{body}");
    let (_, service) = up.api(
        "GET",
        "/v2/projects/acme-shop-dev/locations/us-central1/services/worker",
        None,
    );
    let uri = serde_json::from_str::<serde_json::Value>(&service).unwrap()["uri"]
        .as_str()
        .unwrap()
        .to_string();
    let relay = id_token(
        &up,
        "webhook-relay@acme-shop-dev.iam.gserviceaccount.com",
        &uri,
    );
    let (status, _) = request(
        &front,
        "POST",
        "/tasks/webhook",
        &[("Authorization", &format!("Bearer {relay}"))],
    );
    assert_eq!(status, 403, "the relay is not an invoker of the worker");
    let invoker = id_token(
        &up,
        "tasks-invoker@acme-shop-dev.iam.gserviceaccount.com",
        &uri,
    );
    let (status, body) = request(
        &front,
        "POST",
        "/tasks/webhook",
        &[("Authorization", &format!("Bearer {invoker}"))],
    );
    assert_eq!(status, 200, "the queue's identity may invoke: {body}");
    let elsewhere = id_token(
        &up,
        "tasks-invoker@acme-shop-dev.iam.gserviceaccount.com",
        "https://other.example.com",
    );
    let (status, _) = request(
        &front,
        "POST",
        "/tasks/webhook",
        &[("Authorization", &format!("Bearer {elsewhere}"))],
    );
    assert_eq!(status, 403, "a token for another audience is refused");

    let (status, log) = up.stop();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("service.worker | "),
        "the worker's output is streamed: {log}"
    );
    assert!(
        !ws.path().join(".stackctl/local/up.json").exists(),
        "up.json is removed on stop"
    );
}

const PROBE_MAIN: &str = r#"
use std::io::{Read, Write};
fn main() {
    let host = std::env::var("GCE_METADATA_HOST").expect("GCE_METADATA_HOST");
    let mut s = std::net::TcpStream::connect(&host).expect("metadata server");
    write!(s, "GET /computeMetadata/v1/instance/service-accounts/default/email HTTP/1.0\r\nHost: metadata\r\nMetadata-Flavor: Google\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let email = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let var = |n: &str| std::env::var(n).unwrap_or_default();
    println!("probe email={email} job={} execution={} task={}/{} attempt={}",
        var("CLOUD_RUN_JOB"), var("CLOUD_RUN_EXECUTION"), var("CLOUD_RUN_TASK_INDEX"),
        var("CLOUD_RUN_TASK_COUNT"), var("CLOUD_RUN_TASK_ATTEMPT"));
    if !var("FAIL").is_empty() { std::process::exit(3) }
}
"#;

const JOBS_STACK: &str = r#"[stack]
name = "jobs"
project = "test-project"
region = "us-central1"
image_repository = "repository.images"

[repository.images]

[service_account.runner]
display_name = "Job runner"

[job.probe]
build = "probe"
task_count = 2
max_retries = 0
service_account = "service_account.runner"

[job.flaky]
build = "probe"
max_retries = 2
env = { FAIL = "1" }
"#;

/// The id of the execution `run_job` returned.
fn execution_id(execution: &serde_json::Value) -> String {
    let name = execution["name"].as_str().expect("an execution name");
    name.rsplit('/').next().unwrap_or_default().to_string()
}

/// Runs a job through the Run API and waits for its execution to complete.
fn run_job(up: &Up, job: &str) -> serde_json::Value {
    run_job_in(up, "test-project", job)
}

fn run_job_in(up: &Up, project: &str, job: &str) -> serde_json::Value {
    let (status, operation) = up.api(
        "POST",
        &format!("/v2/projects/{project}/locations/us-central1/jobs/{job}:run"),
        Some("{}"),
    );
    assert_eq!(status, 200, "{operation}");
    let operation: serde_json::Value = serde_json::from_str(&operation).unwrap();
    let name = operation["metadata"]["name"]
        .as_str()
        .expect("execution name")
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, execution) = up.api("GET", &format!("/v2/{name}"), None);
        let execution: serde_json::Value = serde_json::from_str(&execution).unwrap();
        if execution.get("completionTime").is_some() {
            return execution;
        }
        assert!(
            Instant::now() < deadline,
            "execution never completed: {execution}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn jobs_run_their_binary_per_task_with_retries_and_their_own_identity() {
    let ws = Workspace::new(JOBS_STACK);
    std::fs::create_dir_all(ws.path().join("probe/src")).unwrap();
    std::fs::write(
        ws.path().join("probe/Cargo.toml"),
        "[package]\nname = \"probe\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(ws.path().join("probe/src/main.rs"), PROBE_MAIN).unwrap();
    let up = Up::start(&ws);

    let done = run_job(&up, "probe");
    assert_eq!(done["succeededCount"], 2, "{done}");
    assert!(done.get("failedCount").is_none(), "{done}");
    let completed = done["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Completed")
        .cloned();
    assert_eq!(completed.unwrap()["state"], "CONDITION_SUCCEEDED", "{done}");
    let execution = execution_id(&done);
    let log = up.log();
    for task in ["task=0/2 attempt=0", "task=1/2 attempt=0"] {
        assert!(
            log.contains(&format!("job.probe | probe email=runner@test-project.iam.gserviceaccount.com job=probe execution={execution} {task}")),
            "{task}: {log}"
        );
    }

    // `stackctl logs` reads the same lines back through Cloud Logging's entries.list.
    let logs = ws.run(&["logs", "job.probe", "--local"]).expect(0).stdout;
    for task in 0..2 {
        assert!(
            logs.lines().any(|l| l.contains(&format!(
                "[task {task}] probe email=runner@test-project.iam.gserviceaccount.com job=probe execution={execution} task={task}/2"
            ))),
            "task {task} in `stackctl logs`: {logs}"
        );
    }
    let unknown = ws.run(&["logs", "job.nope", "--local"]).expect(1);
    assert!(
        unknown.stderr.contains("declared: job.flaky, job.probe"),
        "{}",
        unknown.stderr
    );
    // --follow prints what a later execution prints, once.
    let mut follow = Command::new(BIN)
        .current_dir(ws.path())
        .args(["logs", "job.probe", "--local", "--follow", "--limit", "1"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(ws.path().join("follow.err")).expect("stderr file"))
        .spawn()
        .expect("spawn logs --follow");
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let first = lines_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the latest entry first");
    assert!(first.contains(&execution), "{first}");
    let again = run_job(&up, "probe");
    let second_execution = execution_id(&again);
    let mut followed = Vec::new();
    while followed.len() < 2 {
        followed.push(
            lines_rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| {
                    let stderr = std::fs::read_to_string(ws.path().join("follow.err"));
                    panic!(
                        "--follow printed the new execution's lines: {followed:?}\n--- its stderr:\n{stderr:?}\n--- up:\n{}",
                        up.log()
                    )
                }),
        );
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(
        followed.iter().all(|l| l.contains(&second_execution)),
        "only the new lines, each once: {followed:?}"
    );

    let failed = run_job(&up, "flaky");
    assert_eq!(failed["failedCount"], 1, "{failed}");
    assert_eq!(failed["retriedCount"], 1, "{failed}");
    let completed = failed["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Completed")
        .cloned()
        .unwrap();
    assert_eq!(completed["state"], "CONDITION_FAILED", "{failed}");
    assert!(
        completed["message"]
            .as_str()
            .unwrap()
            .contains("exit code: 3"),
        "{failed}"
    );
    let log = up.log();
    for attempt in 0..3 {
        assert!(
            log.contains(&format!("attempt={attempt}")),
            "attempt {attempt} ran: {log}"
        );
    }
    assert!(
        !log.contains("job.flaky | probe email=") || !log.contains("attempt=3"),
        "no fourth attempt"
    );
    // The last two entries, oldest first: the second and third attempts.
    let last_two = ws
        .run(&["logs", "job.flaky", "--local", "--limit", "2"])
        .expect(0)
        .stdout;
    let attempts: Vec<&str> = last_two
        .lines()
        .map(|l| l.rsplit("attempt=").next().unwrap_or_default())
        .collect();
    assert_eq!(attempts, ["1", "2"], "{last_two}");
    let (status, _) = up.stop();
    assert!(status.success());
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`, as Shopify signs a webhook body.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// POSTs a Shopify `orders/updated` delivery to the relay's local front.
fn deliver(relay: &str, body: &str, signature: &str, webhook_id: &str) -> (u16, String) {
    deliver_topic(relay, "orders/updated", body, signature, webhook_id)
}

fn deliver_topic(
    relay: &str,
    topic: &str,
    body: &str,
    signature: &str,
    webhook_id: &str,
) -> (u16, String) {
    send(
        relay,
        "POST",
        "/webhooks/shopify",
        &[
            ("Content-Type", "application/json"),
            ("X-Shopify-Hmac-Sha256", signature),
            ("X-Shopify-Topic", topic),
            ("X-Shopify-Shop-Domain", "acme-shop.myshopify.com"),
            ("X-Shopify-API-Version", "2025-10"),
            ("X-Shopify-Webhook-Id", webhook_id),
            ("X-Shopify-Event-Id", &format!("event-{webhook_id}")),
        ],
        body,
    )
}

/// A Firestore document from Google's emulator (`Bearer owner`): status and JSON.
fn document(firestore: &str, path: &str) -> (u16, serde_json::Value) {
    let (status, body) = request(
        firestore,
        "GET",
        &format!("/v1/projects/acme-shop-dev/databases/(default)/documents/{path}"),
        &[("Authorization", "Bearer owner")],
    );
    (status, serde_json::from_str(&body).unwrap_or_default())
}

/// Waits for the document at `path` to exist (the queue dispatches within a second or two).
fn wait_document(firestore: &str, path: &str, up: &Up) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, doc) = document(firestore, path);
        if status == 200 {
            return doc;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never appeared in Firestore:\n{}",
            up.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The README's tour, end to end on the repository's own stack.toml: the relay, the worker and
/// crm-proxy built from `workers/`, Google's Firestore emulator, the queue dispatching with OIDC
/// tokens, the emulator's fake CRM; then the ingest job, run on demand, filling the orders table
/// from the fake shop.
#[test]
fn the_example_stack_runs_webhooks_to_firestore_the_crm_directly_and_through_the_gateway_and_the_ingest_job_to_bigquery()
 {
    let firestore_installed = Command::new("gcloud")
        .args(["emulators", "firestore", "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !require(
        "Google's Firestore emulator (gcloud emulators firestore)",
        firestore_installed,
        "the Google Cloud CLI with its cloud-firestore-emulator component, and java",
    ) {
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let local = tempfile::tempdir().expect("local state dir");
    let local_dir = local.path().to_str().expect("utf-8 path").to_string();
    let env = [("STACKCTL_LOCAL_DIR", local_dir.as_str())];
    let applied = Command::new(BIN)
        .current_dir(repo)
        .args(["apply", "--local", "--auto-approve"])
        .env("NO_COLOR", "1")
        .envs(env)
        .env_remove("STACKCTL_ENDPOINT")
        .output()
        .expect("apply");
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let client_secret = "e2e-client-secret-8c1f";
    for (name, value) in [
        ("shopify-client-secret", client_secret),
        ("shopify-admin-token", "shpat_e2e_token"),
        ("shopify-api-secret", "e2e-api-secret"),
        ("crm-api-key", "e2e-crm-key-5d2a"),
    ] {
        set_secret_in(repo, &env, name, value);
    }
    let up = Up::start_in(repo, &env);
    let relay = up.front("service.relay");
    up.front("service.worker");
    up.front("service.crm-proxy");
    let firestore = up
        .firestore
        .clone()
        .unwrap_or_else(|| panic!("no `firestore` line from up:\n{}", up.log()));

    let order = r#"{"id":7001,"updated_at":"2026-12-05T10:00:00Z","total_price":"42.00","email":"buyer@example.com"}"#;
    let signature = base64(&hmac_sha256(client_secret.as_bytes(), order.as_bytes()));
    let (status, body) = deliver(&relay, order, &signature, "wh-e2e-1");
    assert_eq!(status, 200, "{body}\n{}", up.log());
    let stored = wait_document(&firestore, "orders/7001", &up);
    let first_update = stored["updateTime"].clone();
    assert!(
        stored.to_string().contains("buyer@example.com"),
        "{stored:#}"
    );

    // The same delivery again (Shopify retries): 200, and nothing changes.
    let (status, body) = deliver(&relay, order, &signature, "wh-e2e-1");
    assert_eq!(status, 200, "{body}");
    std::thread::sleep(Duration::from_secs(3));
    let (_, again) = document(&firestore, "orders/7001");
    assert_eq!(again["updateTime"], first_update, "a replay wrote again");

    // A forged delivery: 401, and nothing is enqueued, so no delivery record ever appears.
    let forged = order.replace("42.00", "0.01");
    let (status, _) = deliver(&relay, &forged, &signature, "wh-e2e-forged");
    assert_eq!(status, 401);
    std::thread::sleep(Duration::from_secs(3));
    let forged_record = {
        use sha2::{Digest, Sha256};
        format!(
            "webhook_deliveries/shopify-{}",
            hex::encode(Sha256::digest(b"wh-e2e-forged"))
        )
    };
    let honest_record = {
        use sha2::{Digest, Sha256};
        format!(
            "webhook_deliveries/shopify-{}",
            hex::encode(Sha256::digest(b"wh-e2e-1"))
        )
    };
    assert_eq!(
        document(&firestore, &honest_record).0,
        200,
        "the honest delivery's record"
    );
    assert_eq!(document(&firestore, &forged_record).0, 404, "{}", up.log());
    let (_, order_now) = document(&firestore, "orders/7001");
    assert!(order_now.to_string().contains("42.00"), "{order_now:#}");

    // A customer update: relay -> queue -> worker -> crm-proxy (an ID token for its URL, which
    // only the worker's identity may invoke) -> the fake CRM, once, even when Shopify retries.
    let customer = r#"{"id":9001,"email":"buyer@example.com","first_name":"Ada"}"#;
    let customer_signature = base64(&hmac_sha256(client_secret.as_bytes(), customer.as_bytes()));
    for _ in 0..2 {
        let (status, body) = deliver_topic(
            &relay,
            "customers/update",
            customer,
            &customer_signature,
            "wh-e2e-customer",
        );
        assert_eq!(status, 200, "{body}");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let crm_customer = loop {
        let (_, listed) = up.api("GET", "/_emulator/crm/customers", None);
        let listed: serde_json::Value = serde_json::from_str(&listed).unwrap_or_default();
        let found = listed["customers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["id"] == "9001")
            .cloned();
        if let Some(found) = found {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "customer 9001 never reached the CRM: {listed}\n{}",
            up.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    std::thread::sleep(Duration::from_secs(2));
    let (_, listed) = up.api("GET", "/_emulator/crm/customers", None);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(
        listed["customers"][0]["writes"], 1,
        "one write for one customer update delivered twice: {listed}"
    );
    assert_eq!(
        crm_customer["idempotency_keys"].as_array().map(Vec::len),
        Some(1),
        "{crm_customer}"
    );

    // A partner through API Gateway: its key (printed only with --reveal) reaches crm-proxy and
    // the CRM; no key is Google's 401; past 60 requests a minute, 429.
    let gateway = up.front("gateway.crm");
    let shown = Command::new(BIN)
        .current_dir(repo)
        .args(["api-key", "show", "partner", "--reveal", "--local"])
        .env("NO_COLOR", "1")
        .envs(env)
        .output()
        .expect("api-key show");
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    let key = shown.lines().last().unwrap_or_default().to_string();
    assert!(key.starts_with("AIza"), "{shown}");
    let gateway_host = gateway.trim_start_matches("http://");
    let partner = r#"{"id":9002,"email":"partner@example.com","first_name":"Grace"}"#;
    let (status, body) = http(
        gateway_host,
        "POST",
        &format!("/customers?key={key}"),
        Some(partner),
    );
    assert_eq!(status, 200, "{body}\n{}", up.log());
    let (_, listed) = up.api("GET", "/_emulator/crm/customers", None);
    assert!(
        listed.contains("\"9002\""),
        "the partner's customer never reached the CRM: {listed}"
    );
    let (status, body) = http(gateway_host, "POST", "/customers", Some(partner));
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("UNAUTHENTICATED"), "{body}");
    let (status, body) = http(
        gateway_host,
        "POST",
        "/customers?key=AIzaNotAKeyOfThisProject00000000000000",
        Some(partner),
    );
    assert_eq!(status, 403, "{body}");
    // The quota counts per minute: within two minutes' worth of requests one is refused.
    let refused = (0..121).find_map(|_| {
        let (status, body) = http(
            gateway_host,
            "POST",
            &format!("/customers?key={key}"),
            Some(partner),
        );
        (status == 429).then_some(body)
    });
    let refused =
        refused.unwrap_or_else(|| panic!("no 429 past the 60-a-minute quota\n{}", up.log()));
    assert!(refused.contains("RESOURCE_EXHAUSTED"), "{refused}");

    // The ingest job, run on demand: the shop's orders land in their day partitions, one row each.
    let (status, seeded) = up.api(
        "POST",
        "/_emulator/shopify/shops",
        Some(r#"{"shop":"acme-shop.myshopify.com","access_token":"shpat_e2e_token"}"#),
    );
    assert_eq!(status, 200, "{seeded}");
    let today = chrono::Utc::now().date_naive();
    let orders: Vec<serde_json::Value> = (0..5)
        .map(|n| {
            let created = (today - chrono::Duration::days(n % 2 + 1))
                .and_hms_opt(9, n as u32, 0)
                .unwrap()
                .and_utc();
            serde_json::json!({"id": 8000 + n, "created_at": created.to_rfc3339(),
                               "total_price": "19.90", "customer_id": 9001,
                               "line_items": [{"sku": "MUG", "quantity": 2}]})
        })
        .collect();
    let (status, seeded) = up.api(
        "POST",
        "/_emulator/shopify/orders",
        Some(&serde_json::json!({"shop": "acme-shop.myshopify.com", "orders": orders}).to_string()),
    );
    assert_eq!(status, 200, "{seeded}");
    for _ in 0..2 {
        let done = run_job_in(&up, "acme-shop-dev", "ingest-orders");
        assert_eq!(done["succeededCount"], 1, "{done}\n{}", up.log());
    }
    let (status, data) = up.api(
        "GET",
        "/bigquery/v2/projects/acme-shop-dev/datasets/shopify/tables/orders/data",
        None,
    );
    assert_eq!(status, 200, "{data}");
    let data: serde_json::Value = serde_json::from_str(&data).unwrap();
    let mut ids: Vec<String> = data["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row["f"][0]["v"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["8000", "8001", "8002", "8003", "8004"],
        "two runs, one row per order"
    );

    let (status, log) = up.stop();
    assert!(status.success(), "{log}");
    assert!(!log.contains(&key), "the API key reached the log");
    for secret in [client_secret, "shpat_e2e_token", "e2e-crm-key-5d2a"] {
        assert!(!log.contains(secret), "a secret value reached the log");
    }
}

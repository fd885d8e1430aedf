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
    stderr: tempfile::NamedTempFile,
}

impl Up {
    fn start(ws: &Workspace) -> Self {
        let stderr = tempfile::NamedTempFile::new().expect("stderr file");
        let mut child = Command::new(BIN)
            .current_dir(ws.path())
            .args(["up", "--local", "--auto-approve"])
            .env("NO_COLOR", "1")
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
        let deadline = Instant::now() + Duration::from_secs(300);
        let (mut emulator, mut services) = (String::new(), Vec::new());
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
            } else if let Some((address, url)) = line.split_once(' ')
                && address.starts_with("service.")
                && url.starts_with("http://127.0.0.1:")
            {
                services.push((address.to_string(), url.to_string()));
            }
        }
        Self {
            child,
            emulator,
            services,
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
    let address = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(70)))
        .expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.0\r\nHost: {address}\r\nContent-Length: 0\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
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

/// `printf VALUE | stackctl secret set NAME --local`
fn set_secret(ws: &Workspace, name: &str, value: &str) -> String {
    let mut child = Command::new(BIN)
        .current_dir(ws.path())
        .args(["secret", "set", name, "--local"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn secret set");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(value.as_bytes())
        .expect("write value");
    let out = child.wait_with_output().expect("secret set");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains(value) && !stderr.contains(value),
        "the value is never printed"
    );
    stdout
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
    copy_dir(
        &hello_worker_source(),
        &ws.path().join("workers/task-worker"),
    );
    let up = Up::start(&ws);
    // The secret has no version yet: Cloud Run would not start the revision, and neither does up.
    assert!(up.services.is_empty(), "{:?}", up.services);
    assert!(
        up.log().contains("service.worker not running: spec.template.spec.containers[0].env[1].value_from.secret_key_ref.name: Secret projects/acme-shop-dev/secrets/shopify-api-secret/versions/latest was not found"),
        "{}",
        up.log()
    );
    // plan says so before anyone finds out at the first real apply.
    let warned = ws.run(&["plan", "--local"]).expect(0);
    assert!(
        warned.stderr.contains("warning: secret.shopify-api-secret has no enabled version, and service.worker and job.ingest-orders read it: Cloud Run will not start them until it has one; add it with `stackctl secret set shopify-api-secret --local`"),
        "{}",
        warned.stderr
    );
    // Other --local commands talk to the running emulator instead of failing on its lock.
    let said = set_secret(
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
        !quiet.stderr.contains("has no enabled version"),
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
    let (status, operation) = up.api(
        "POST",
        &format!("/v2/projects/test-project/locations/us-central1/jobs/{job}:run"),
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

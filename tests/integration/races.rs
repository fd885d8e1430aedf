//! Races between plan and create: a look-alike someone makes while apply's create is in flight is
//! refused and left exactly as it was (not relabelled, not reconfigured, not recorded as ours).

use crate::support::*;

const STACK: &str = r#"[stack]
name = "race"
project = "test-project"
region = "us-central1"

[service.worker]
image = "us-docker.pkg.dev/cloudrun/container/hello"
max_instances = 2

[queue.jobs]
max_attempts = 5
"#;

const SERVICES: &str = "/v2/projects/test-project/locations/us-central1/services";
const QUEUES: &str = "/v2/projects/test-project/locations/us-central1/queues";

/// Waits until apply's plan has listed services and queues (the emulator logs a request once it
/// is answered), so look-alikes made now appear after the plan and before the creates.
fn wait_for_the_plan_reads(emulator: &Emulator) {
    for _ in 0..400 {
        let requests = emulator.requests();
        let listed = |path: &str| requests.iter().any(|(m, p)| m == "GET" && p == path);
        if listed(SERVICES) && listed(QUEUES) {
            std::thread::sleep(std::time::Duration::from_millis(200));
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("apply never listed services and queues");
}

#[test]
fn look_alikes_made_while_apply_creates_are_refused_and_left_untouched() {
    let emulator = Emulator::start();
    let ws = Workspace::new(STACK);
    // Every create waits for its API to be enabled: slowing the enables opens a window between
    // the plan's reads and the creates, in which someone makes look-alikes by hand.
    emulator.set_faults(
        r#"{"rules": [{"method": "POST", "path_contains": ":enable", "latency_ms": 4000}]}"#,
    );
    emulator.clear_requests();
    let url = emulator.url.clone();
    let dir = ws.path().to_path_buf();
    let apply = std::thread::spawn(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_stackctl"))
            .current_dir(dir)
            .args(["apply", "--auto-approve", "--endpoint", &url])
            .env("NO_COLOR", "1")
            .output()
            .expect("run stackctl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    });
    wait_for_the_plan_reads(&emulator);
    let (status, body) = emulator.http(
        "POST",
        &format!("{SERVICES}?serviceId=worker"),
        Some(r#"{"labels": {"team": "ops"}, "template": {"containers": [{"image": "us-docker.pkg.dev/cloudrun/container/hello", "env": [{"name": "HAND_SET", "value": "1"}]}]}}"#),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = emulator.http(
        "POST",
        QUEUES,
        Some(r#"{"name": "projects/test-project/locations/us-central1/queues/jobs", "retryConfig": {"maxAttempts": 2}}"#),
    );
    assert_eq!(status, 200, "{body}");

    let (code, stdout) = apply.join().expect("apply thread");
    assert_eq!(code, 1, "apply must fail the two creates: {stdout}");
    for address in ["service.worker", "queue.jobs"] {
        assert!(
            stdout.contains(&format!("{address}: "))
                && stdout.contains("appeared after the plan was made")
                && stdout.contains(&format!("stackctl adopt {address}")),
            "{address} is refused with the adopt hint: {stdout}"
        );
    }
    // The service is exactly as its maker left it: its env var, no ownership label.
    let (_, service) = emulator.http("GET", &format!("{SERVICES}/worker"), None);
    assert!(service.contains("HAND_SET"), "{service}");
    assert!(!service.contains("stackctl-stack"), "{service}");
    // The queue keeps its own retry config and is not in the ledger (not even pending).
    let (_, queue) = emulator.http("GET", &format!("{QUEUES}/jobs"), None);
    assert!(
        queue.contains("\"maxAttempts\":2") || queue.contains("\"maxAttempts\": 2"),
        "{queue}"
    );
    let (_, ledger) = emulator.http(
        "GET",
        "/storage/v1/b/test-project-stackctl-state/o/stackctl%2Frace%2Fledger.json?alt=media",
        None,
    );
    assert!(!ledger.contains("queues/jobs"), "{ledger}");
    // And the next plan says so instead of proposing to modify them.
    emulator.clear_faults();
    let plan = ws.on(&emulator, &["plan"]).expect(1);
    assert!(
        plan.stderr.contains("stackctl adopt service.worker")
            && plan.stderr.contains("stackctl adopt queue.jobs"),
        "{}",
        plan.stderr
    );
}

/// Sets the status of every ledger entry whose name ends with `suffix` (what a crash between a
/// create and its ledger record leaves: the entry written before the create, still `pending`).
fn mark_pending(emulator: &Emulator, stack: &str, suffix: &str) {
    let path = format!(
        "/storage/v1/b/test-project-stackctl-state/o/stackctl%2F{stack}%2Fledger.json?alt=media"
    );
    let (_, body) = emulator.http("GET", &path, None);
    let mut ledger: serde_json::Value = serde_json::from_str(&body).expect("ledger JSON");
    for (name, entry) in ledger["resources"].as_object_mut().expect("resources") {
        if name.ends_with(suffix) {
            entry["status"] = "pending".into();
        }
    }
    ledger["version"] = 2.into();
    let (status, body) = emulator.http(
        "POST",
        &format!(
            "/upload/storage/v1/b/test-project-stackctl-state/o?uploadType=media&name=stackctl%2F{stack}%2Fledger.json"
        ),
        Some(&ledger.to_string()),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn an_interrupted_create_is_claimed_only_when_what_exists_matches_stack_toml() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&basic_stack("pending"));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);

    // A crash after the queue's create, before its ledger entry became active.
    mark_pending(&emulator, "pending", "/queues/webhooks");
    let plan = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);
    assert!(
        plan.stdout.contains("queue.webhooks") && plan.stdout.contains("recorded as this stack's"),
        "{}",
        plan.stdout
    );
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);

    // The same crash, but what exists no longer matches what stackctl sent: not claimed.
    mark_pending(&emulator, "pending", "/queues/webhooks");
    let (status, body) = emulator.http(
        "PATCH",
        "/v2/projects/test-project/locations/us-central1/queues/webhooks?updateMask=retryConfig.maxAttempts",
        Some(r#"{"retryConfig": {"maxAttempts": 3}}"#),
    );
    assert_eq!(status, 200, "{body}");
    let refused = ws.on(&emulator, &["plan"]).expect(1);
    assert!(
        refused.stderr.contains("will not claim it")
            && refused.stderr.contains("stackctl adopt queue.webhooks"),
        "{}",
        refused.stderr
    );
}

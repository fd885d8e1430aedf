//! The state bucket under faults (every Storage call is retried like the other APIs) and the
//! apply lock's fencing: an apply that lost its lock starts no new step and exits 1.

use crate::support::*;

const BUCKET: &str = "test-project-stackctl-state";

fn lock_path(stack: &str) -> String {
    format!("/storage/v1/b/{BUCKET}/o/stackctl%2F{stack}%2Fapply%2Elock")
}

/// `(method, path, query, status)` of every request since the last clear.
fn served(emulator: &Emulator) -> Vec<(String, String, String, u64)> {
    let (_, body) = emulator.http("GET", "/_emulator/requests", None);
    let v: serde_json::Value = serde_json::from_str(&body).expect("requests JSON");
    let list = v
        .as_array()
        .cloned()
        .or_else(|| v["requests"].as_array().cloned())
        .unwrap_or_default();
    list.iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap_or_default().to_string(),
                r["path"].as_str().unwrap_or_default().to_string(),
                r["query"].as_str().unwrap_or_default().to_string(),
                r["status"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

/// One injected 503, then: apply exits 0, the fault was really hit, the lock is released and the
/// next apply is not blocked.
fn one_503_is_retried(
    stack: &str,
    rule: &str,
    hit: impl Fn(&(String, String, String, u64)) -> bool,
) {
    let emulator = Emulator::start();
    let ws = Workspace::new(&basic_stack(stack));
    emulator.set_faults(&format!(r#"{{"rules": [{rule}]}}"#));
    let run = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(!run.stderr.contains("could not release"), "{}", run.stderr);
    let requests = served(&emulator);
    assert!(
        requests.iter().any(|r| hit(r) && r.3 == 503),
        "the fault was injected: {requests:?}"
    );
    let (status, _) = emulator.http("GET", &lock_path(stack), None);
    assert_eq!(status, 404, "the lock was released");
    ws.edit("max_instances = 5", "max_instances = 6");
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
}

#[test]
fn a_503_on_the_lock_write_is_retried() {
    // The first upload of an apply is its lock (the object name is in the query).
    one_503_is_retried(
        "lockwrite",
        r#"{"method": "POST", "query_contains": "apply.lock", "status": 503, "count": 1}"#,
        |r| r.0 == "POST" && r.2.contains("apply.lock"),
    );
}

#[test]
fn a_503_on_the_lock_release_is_retried() {
    one_503_is_retried(
        "lockrelease",
        r#"{"method": "DELETE", "path_contains": "apply%2Elock", "status": 503, "count": 1}"#,
        |r| r.0 == "DELETE" && r.1.contains("apply.lock"),
    );
}

#[test]
fn a_503_on_a_ledger_write_is_retried() {
    one_503_is_retried(
        "ledgerwrite",
        r#"{"method": "POST", "query_contains": "ledger.json", "status": 503, "count": 1}"#,
        |r| r.0 == "POST" && r.2.contains("ledger.json"),
    );
}

#[test]
fn a_503_on_the_state_bucket_read_is_retried() {
    one_503_is_retried(
        "ledgerread",
        r#"{"method": "GET", "path_contains": "ledger%2Ejson", "status": 503, "count": 1}"#,
        |r| r.0 == "GET" && r.1.contains("ledger.json"),
    );
}

/// The basic stack plus a channel, a budget and an alert policy: kinds with server-assigned ids,
/// where a second create is a duplicate.
fn monitored_stack(name: &str) -> String {
    basic_stack(name).replacen(
        "region = \"us-central1\"\n",
        "region = \"us-central1\"\nbilling_account = \"012345-6789AB-CDEF01\"\n",
        1,
    ) + r#"
[channel.oncall]
type = "email"
email = "ops@example.com"

[budget.monthly]
amount_usd = 300
thresholds = [0.5, 1.0]
notify = ["channel.oncall"]

[alert.worker-errors]
template = "cloud_run_5xx_ratio"
service = "service.worker"
threshold = 0.05
duration = "300s"
notify = ["channel.oncall"]
"#
}

fn count(emulator: &Emulator, path: &str, key: &str) -> usize {
    let (status, body) = emulator.http("GET", path, None);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v[key].as_array().map_or(0, Vec::len)
}

#[test]
fn an_apply_that_lost_its_lock_changes_nothing_more_and_names_the_holder() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&monitored_stack("fenced"));
    // The first apply is slow while it observes (before any step), long enough for someone to
    // break its lock and run a whole second apply.
    emulator.set_faults(
        r#"{"rules": [{"method": "GET", "path_contains": "/alertPolicies", "latency_ms": 4000, "count": 1}]}"#,
    );
    std::thread::scope(|scope| {
        let first = scope.spawn(|| ws.on(&emulator, &["apply", "--auto-approve"]));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while emulator.http("GET", &lock_path("fenced"), None).0 != 200 {
            assert!(
                std::time::Instant::now() < deadline,
                "the first apply never locked"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));

        // A live lease is shown and not removed without --force.
        let refused = ws.on(&emulator, &["unlock"]).expect(1);
        assert!(refused.stdout.contains(" pid "), "{}", refused.stdout);
        assert!(refused.stdout.contains("on host "), "{}", refused.stdout);
        assert!(refused.stdout.contains("lease until"), "{}", refused.stdout);
        assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
        ws.on(&emulator, &["unlock", "--force"]).expect(0);

        let second = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
        assert!(
            second.stdout.contains("budget.monthly"),
            "{}",
            second.stdout
        );

        let first = first.join().unwrap().expect(1);
        let all = format!("{}\n{}", first.stdout, first.stderr);
        assert!(all.contains("lost the apply lock"), "{all}");
        assert!(
            all.contains(" pid ") && (all.contains("holds it now") || all.contains("now held by")),
            "names the holder: {all}"
        );
    });
    assert_eq!(
        count(
            &emulator,
            "/v1/billingAccounts/012345-6789AB-CDEF01/budgets",
            "budgets"
        ),
        1,
        "one budget"
    );
    assert_eq!(
        count(
            &emulator,
            "/v3/projects/test-project/alertPolicies",
            "alertPolicies"
        ),
        1,
        "one alert policy"
    );
    assert_eq!(
        count(
            &emulator,
            "/v3/projects/test-project/notificationChannels",
            "notificationChannels"
        ),
        1,
        "one channel"
    );
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
    // Nothing was left locked.
    ws.on(&emulator, &["unlock"])
        .expect(0)
        .stdout
        .contains("not locked")
        .then_some(())
        .expect("not locked");
}

#[test]
fn a_killed_apply_on_this_host_does_not_block_the_next_one() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&monitored_stack("killed"));
    emulator.set_faults(
        r#"{"rules": [{"method": "GET", "path_contains": "/alertPolicies", "latency_ms": 4000, "count": 1}]}"#,
    );
    let mut first = std::process::Command::new(BIN)
        .current_dir(ws.path())
        .args(["apply", "--auto-approve", "--endpoint", &emulator.url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn apply");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while emulator.http("GET", &lock_path("killed"), None).0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first apply never locked"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    first.kill().expect("kill -9");
    first.wait().expect("reap");
    emulator.clear_faults();
    // Its lease is live for minutes, but its process is gone: the next apply takes over.
    let next = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        next.stderr.contains("took over the apply lock of")
            && next.stderr.contains("no longer running"),
        "{}",
        next.stderr
    );
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
    assert_eq!(emulator.http("GET", &lock_path("killed"), None).0, 404);
}

#[test]
fn plan_names_copies_of_one_of_our_alert_policies_instead_of_picking_one() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&monitored_stack("dupes"));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    // What an apply that lost its lock used to leave: a second policy with our labels.
    let (_, body) = emulator.http("GET", "/v3/projects/test-project/alertPolicies", None);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut copy = v["alertPolicies"][0].clone();
    copy.as_object_mut().unwrap().remove("name");
    let (status, made) = emulator.http(
        "POST",
        "/v3/projects/test-project/alertPolicies",
        Some(&copy.to_string()),
    );
    assert_eq!(status, 200, "{made}");
    let plan = ws.on(&emulator, &["plan"]).expect(1);
    assert!(
        plan.stderr
            .contains("alert.worker-errors: this stack owns 2 copies of it"),
        "{}",
        plan.stderr
    );
}

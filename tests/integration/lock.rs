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

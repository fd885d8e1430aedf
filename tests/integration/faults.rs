//! Applies under injected faults: transient errors are retried with backoff and the stack converges;
//! a failed resource skips only its dependents, and the next apply converges.

use crate::support::*;

#[test]
fn apply_converges_under_injected_503_429_and_latency() {
    let emulator = Emulator::start();
    emulator.set_faults(
        r#"{"seed": 11, "rules": [
        {"path_contains": "/v2/", "status": 503, "rate": 0.3},
        {"path_contains": "/v2/", "status": 429, "rate": 0.2},
        {"latency_ms": 20}
    ]}"#,
    );
    let ws = Workspace::new(&basic_stack("faults"));
    let run = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        run.stderr.contains("retrying"),
        "faults were injected, so retries show: {}",
        run.stderr
    );
    emulator.clear_faults();
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
}

#[test]
fn n_shot_failures_on_create_are_retried_and_reported() {
    let emulator = Emulator::start();
    emulator.set_faults(r#"{"rules": [{"method": "POST", "path_contains": "/locations/us-central1/services", "status": 503, "count": 2}]}"#);
    let ws = Workspace::new(&basic_stack("nshot"));
    let run = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        run.stderr.contains("service.worker: retrying") && run.stderr.contains("503"),
        "{}",
        run.stderr
    );
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
}

#[test]
fn a_failed_revision_skips_its_queue_reports_both_and_a_fix_converges() {
    let emulator = Emulator::start();
    let ws = Workspace::new(
        &basic_stack("broken").replace("container/hello", "container/emulator-fail"),
    );
    let run = ws.on(&emulator, &["apply", "--auto-approve"]).expect(1);
    assert!(run.stdout.contains("✗ service.worker"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("queue.webhooks: skipped because service.worker failed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Re-run `stackctl apply`"),
        "{}",
        run.stdout
    );

    ws.edit("container/emulator-fail", "container/hello");
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
}

#[test]
fn permanent_errors_fail_fast_with_the_call_and_resource() {
    let emulator = Emulator::start();
    emulator.set_faults(
        r#"{"rules": [{"method": "POST", "path_contains": "/queues", "status": 403}]}"#,
    );
    let ws = Workspace::new(&basic_stack("denied"));
    let run = ws.on(&emulator, &["apply", "--auto-approve"]).expect(1);
    assert!(run.stdout.contains("cloudtasks.queues.create on projects/test-project/locations/us-central1/queues/webhooks failed: HTTP 403"), "{}", run.stdout);
    assert!(run.stdout.contains("hint:"), "{}", run.stdout);
    assert!(
        !run.stderr.contains("queue.webhooks: retrying"),
        "403 is not retried: {}",
        run.stderr
    );
    emulator.clear_faults();
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
}

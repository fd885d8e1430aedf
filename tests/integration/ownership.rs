//! Ownership and the shared state: other stacks' and unowned resources, adoption, the apply lock.

use crate::support::*;

#[test]
fn another_stacks_or_unowned_resources_are_errors_until_adopted() {
    let emulator = Emulator::start();
    let first = Workspace::new(&basic_stack("first"));
    first.on(&emulator, &["apply", "--auto-approve"]).expect(0);

    // A second stack declaring the same ids must not take them over.
    let second = Workspace::new(&basic_stack("second"));
    let run = second.on(&emulator, &["plan"]).expect(1);
    assert!(
        run.stderr.contains("belongs to the stack `first`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("queue.webhooks")
            && run.stderr.contains("stackctl adopt queue.webhooks"),
        "{}",
        run.stderr
    );
    // Adoption takes explicit names; a service another stack owns is refused.
    let refused = second.on(&emulator, &["adopt", "service.worker"]).expect(1);
    assert!(
        refused.stderr.contains("belongs to the stack `first`"),
        "{}",
        refused.stderr
    );

    // The first stack forgets the worker (it is deleted) but its queue stays in its ledger.
    let stack_without_service =
        "[stack]\nname = \"first\"\nproject = \"test-project\"\nregion = \"us-central1\"\n";
    first.write(stack_without_service);
    let plan = first.on(&emulator, &["plan"]).expect(0);
    assert!(
        plan.stdout.contains("- service.worker") && plan.stdout.contains("~ queue.webhooks"),
        "{}",
        plan.stdout
    );
    first.on(&emulator, &["apply", "--auto-approve"]).expect(0);

    // The queue is still owned (retired) by `first`; `second` may adopt it explicitly.
    second.on(&emulator, &["adopt", "queue.webhooks"]).expect(0);
    let plan = second
        .on(&emulator, &["plan", "--detailed-exitcode"])
        .expect(2);
    assert!(
        plan.stdout.contains("+ service.worker")
            && plan.stdout.contains(r#"~ state  = "PAUSED" -> "RUNNING""#),
        "{}",
        plan.stdout
    );
    second.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    second
        .on(&emulator, &["plan", "--detailed-exitcode"])
        .expect(0);
}

#[test]
fn a_held_lock_blocks_apply_names_its_holder_and_unlock_frees_it() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&basic_stack("locked"));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let bucket = "test-project-stackctl-state";
    let object = "stackctl%2Flocked%2Fapply.lock";
    let lock = r#"{"holder":"ci@runner pid 42","acquired_at":"2026-01-01T00:00:00Z","expires_at":"2999-01-01T00:00:00Z"}"#;
    let (status, body) = emulator.http(
        "POST",
        &format!(
            "/upload/storage/v1/b/{bucket}/o?uploadType=media&name={object}&ifGenerationMatch=0"
        ),
        Some(lock),
    );
    assert_eq!(status, 200, "{body}");

    ws.edit("max_instances = 5", "max_instances = 6");
    let blocked = ws.on(&emulator, &["apply", "--auto-approve"]).expect(1);
    assert!(
        blocked.stderr.contains("locked by ci@runner pid 42"),
        "{}",
        blocked.stderr
    );
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);

    let unlocked = ws.on(&emulator, &["unlock"]).expect(0);
    assert!(
        unlocked.stdout.contains("ci@runner pid 42"),
        "{}",
        unlocked.stdout
    );
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);

    // An expired lease (a killed apply) is taken over without help.
    let expired = r#"{"holder":"dead","acquired_at":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T00:10:00Z"}"#;
    emulator.http(
        "POST",
        &format!(
            "/upload/storage/v1/b/{bucket}/o?uploadType=media&name={object}&ifGenerationMatch=0"
        ),
        Some(expired),
    );
    ws.edit("max_instances = 6", "max_instances = 7");
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let (status, _) = emulator.http("GET", &format!("/storage/v1/b/{bucket}/o/{object}"), None);
    assert_eq!(status, 404, "apply released the lock");
}

#[test]
fn the_ledger_lives_in_the_state_bucket_and_survives_a_fresh_checkout() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&basic_stack("ledger"));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let (status, body) = emulator.http(
        "GET",
        "/storage/v1/b/test-project-stackctl-state/o/stackctl%2Fledger%2Fledger.json?alt=media",
        None,
    );
    assert_eq!(status, 200, "{body}");
    let ledger: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        ledger["resources"]["projects/test-project/locations/us-central1/queues/webhooks"]["status"],
        "active"
    );
    // A fresh clone (new folder, no local files) sees the same ownership.
    let fresh = Workspace::new(&basic_stack("ledger"));
    fresh
        .on(&emulator, &["plan", "--detailed-exitcode"])
        .expect(0);
}

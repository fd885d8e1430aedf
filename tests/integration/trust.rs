//! What a plan can be trusted with: a failed rollout is never hidden, a teardown revokes grants
//! before deleting what they are on, and secret-looking env values never reach any output.

use serde_json::Value;

use crate::support::*;

const SERVICE: &str = "/v2/projects/test-project/locations/us-central1/services/worker";

fn service(emulator: &Emulator) -> Value {
    let (status, body) = emulator.http("GET", SERVICE, None);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("service JSON")
}

fn latest_created(emulator: &Emulator) -> String {
    service(emulator)["latestCreatedRevision"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Finding 5: after an apply whose new revision failed, the next plan shows a change that retries
/// the revision (exit 2 with `--detailed-exitcode`), and apply re-creates it instead of exiting 0.
#[test]
fn a_failed_rollout_is_planned_as_a_retry_until_a_revision_is_ready() {
    let emulator = Emulator::start();
    let ws = Workspace::new(&basic_stack("rollout"));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.edit("container/hello", "container/emulator-fail");
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(1);
    let failed = latest_created(&emulator);
    let live = service(&emulator);
    assert_eq!(live["terminalCondition"]["state"], "CONDITION_FAILED");
    assert_ne!(live["latestReadyRevision"], live["latestCreatedRevision"]);

    let plan = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);
    let short = failed.rsplit('/').next().unwrap();
    assert_eq!(
        field_lines(&plan.stdout),
        vec![format!(r#"~ revision = "{short}" (failed) -> (retried)"#)],
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("emulator-fail marker"),
        "the note gives the revision's failure reason: {}",
        plan.stdout
    );

    // Apply tries again: a new revision is created (and fails again: the image is still broken).
    let run = ws.on(&emulator, &["apply", "--auto-approve"]).expect(1);
    assert!(run.stdout.contains("✗ service.worker"), "{}", run.stdout);
    let retried = latest_created(&emulator);
    assert_ne!(retried, failed, "the retry re-created the revision");
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);

    ws.edit("container/emulator-fail", "container/hello");
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
}

/// Finding 6: removing a queue with `--allow-queue-delete` revokes the grants on it before the
/// queue is deleted, and the teardown exits 0.
#[test]
fn a_queue_teardown_revokes_its_grants_first() {
    let emulator = Emulator::start();
    let with_grants = format!(
        "{}enqueuers = [\"service_account.relay\"]\n\n[service_account.relay]\nid = \"relay-sa\"\n",
        basic_stack("teardown")
    );
    let ws = Workspace::new(&with_grants);
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);

    let queue_at = with_grants.find("[queue.webhooks]").unwrap();
    let account_at = with_grants.find("[service_account.relay]").unwrap();
    let without_queue = format!("{}{}", &with_grants[..queue_at], &with_grants[account_at..]);
    ws.write(&without_queue);
    // A slow policy read: a queue deleted alongside the revoke would be gone before it writes.
    emulator.set_faults(
        r#"{"rules": [{"path_contains": "queues/webhooks:getIamPolicy", "latency_ms": 1500}]}"#,
    );
    emulator.clear_requests();
    let run = ws.on(
        &emulator,
        &["apply", "--auto-approve", "--allow-queue-delete"],
    );
    let run = run.expect(0);
    assert!(run.stdout.contains("- queue.webhooks"), "{}", run.stdout);
    let requests = emulator.requests();
    let position = |pred: &dyn Fn(&(String, String)) -> bool| requests.iter().position(pred);
    let revoke = position(&|(m, p)| m == "POST" && p.contains("queues/webhooks:setIamPolicy"))
        .unwrap_or_else(|| panic!("the grant is revoked: {requests:?}"));
    let delete = position(&|(m, p)| m == "DELETE" && p.ends_with("queues/webhooks"))
        .unwrap_or_else(|| panic!("the queue is deleted: {requests:?}"));
    assert!(revoke < delete, "revoke before delete: {requests:?}");
    ws.on(
        &emulator,
        &["plan", "--detailed-exitcode", "--allow-queue-delete"],
    )
    .expect(0);
}

/// Finding 6: a 404 on revoking a grant (its resource went meanwhile) is done, not a failure.
#[test]
fn revoking_a_grant_whose_resource_is_gone_is_done() {
    let emulator = Emulator::start();
    let with_grants = format!(
        "{}enqueuers = [\"service_account.relay\"]\n\n[service_account.relay]\nid = \"relay-sa\"\n",
        basic_stack("gone")
    );
    let ws = Workspace::new(&with_grants);
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.edit("enqueuers = [\"service_account.relay\"]\n", "");
    // The queue's policy answers 404 when the revoke writes it (deleted in between).
    emulator.set_faults(
        r#"{"rules": [{"method": "POST", "path_contains": "queues/webhooks:setIamPolicy", "status": 404}]}"#,
    );
    let run = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        run.stdout
            .contains("iam: roles/cloudtasks.enqueuer on queue.webhooks"),
        "{}",
        run.stdout
    );
    emulator.clear_faults();
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
}

/// Finding 8: a hand-set env value under a secret-looking key is masked in plan text, `--json`,
/// saved plans and apply output; other values are still shown.
#[test]
fn secret_looking_env_values_never_reach_any_output() {
    const CANARY: &str = "hunter2-canary";
    let emulator = Emulator::start();
    let ws = Workspace::new(&basic_stack("canary"));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);

    // Someone sets a token and a harmless var by hand on the managed service.
    let mut live = service(&emulator);
    let env = live["template"]["containers"][0]["env"]
        .as_array_mut()
        .expect("env");
    env.push(serde_json::json!({"name": "API_TOKEN", "value": CANARY}));
    env.push(serde_json::json!({"name": "COLOR", "value": "blue"}));
    let (status, body) = emulator.http("PATCH", SERVICE, Some(&live.to_string()));
    assert_eq!(status, 200, "{body}");

    let plan = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);
    let json = ws.on(&emulator, &["plan", "--json"]).expect(0);
    ws.on(&emulator, &["plan", "--out", "saved.json"]).expect(0);
    let saved = std::fs::read_to_string(ws.path().join("saved.json")).expect("saved plan");
    let apply = ws.on(&emulator, &["apply", "saved.json"]).expect(0);
    for (what, out) in [
        ("plan", &plan.stdout),
        ("plan stderr", &plan.stderr),
        ("plan --json", &json.stdout),
        ("saved plan", &saved),
        ("apply", &apply.stdout),
        ("apply stderr", &apply.stderr),
    ] {
        assert!(!out.contains(CANARY), "{what} shows the value: {out}");
    }
    assert!(
        field_lines(&plan.stdout)
            .contains(&r#"- env.API_TOKEN = (sensitive: 14 chars) -> null"#.to_string()),
        "{}",
        plan.stdout
    );
    assert!(
        field_lines(&plan.stdout).contains(&r#"- env.COLOR     = "blue" -> null"#.to_string()),
        "other values are still shown: {}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("secrets = {"),
        "the plan hints at secret env: {}",
        plan.stdout
    );
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
}

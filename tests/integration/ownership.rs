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

    let refused = ws.on(&emulator, &["unlock"]).expect(1);
    assert!(
        refused.stdout.contains("ci@runner pid 42") && refused.stderr.contains("--force"),
        "a live lease is shown, not removed: {}{}",
        refused.stdout,
        refused.stderr
    );
    let unlocked = ws.on(&emulator, &["unlock", "--force"]).expect(0);
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

/// What a user made by hand (`bq mk`, `gcloud artifacts repositories create`, the console),
/// declared afterwards.
const HAND_MADE_BLOCKS: &str = r#"
[dataset.shopify]

[table.events]
dataset = "dataset.shopify"
[[table.events.columns]]
name = "at"
type = "TIMESTAMP"

[repository.workers]
keep_recent = 10

[channel.oncall]
type = "email"
email = "ops@example.com"

[budget.monthly]
amount_usd = 300
thresholds = [0.5, 1.0]

[alert.bytes]
conditions = [{ filter = 'metric.type = "bigquery.googleapis.com/query/scanned_bytes_billed" AND resource.type = "global"', comparison = ">", threshold = 1e12, duration = "0s", aligner = "ALIGN_SUM", period = "3600s" }]
"#;

fn hand_made_stack(name: &str) -> String {
    basic_stack(name).replacen(
        "region = \"us-central1\"\n",
        "region = \"us-central1\"\nbilling_account = \"012345-6789AB-CDEF01\"\n",
        1,
    ) + HAND_MADE_BLOCKS
}

/// POSTs `body` to the emulator and returns the JSON it answers.
fn post(emulator: &Emulator, path: &str, body: serde_json::Value) -> serde_json::Value {
    let (status, text) = emulator.http("POST", path, Some(&body.to_string()));
    assert_eq!(status, 200, "POST {path}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn get(emulator: &Emulator, path: &str) -> serde_json::Value {
    let (status, text) = emulator.http("GET", path, None);
    assert_eq!(status, 200, "GET {path}: {text}");
    serde_json::from_str(&text).unwrap()
}

const DATASET: &str = "/bigquery/v2/projects/test-project/datasets/shopify";
const TABLE: &str = "/bigquery/v2/projects/test-project/datasets/shopify/tables/events";
const REPOSITORY: &str = "/v1/projects/test-project/locations/us-central1/repositories/workers";

fn make_dataset(emulator: &Emulator, labels: serde_json::Value) {
    post(
        emulator,
        "/bigquery/v2/projects/test-project/datasets",
        serde_json::json!({
            "datasetReference": {"projectId": "test-project", "datasetId": "shopify"},
            "location": "US",
            "labels": labels,
        }),
    );
}

fn make_channel(emulator: &Emulator, display_name: &str) -> String {
    let channel = post(
        emulator,
        "/v3/projects/test-project/notificationChannels",
        serde_json::json!({
            "type": "email",
            "displayName": display_name,
            "labels": {"email_address": "ops@example.com"},
            "userLabels": {"team": "ops"},
        }),
    );
    channel["name"].as_str().unwrap().to_string()
}

#[test]
fn data_registry_monitoring_and_budget_resources_made_by_hand_are_adopted_by_name() {
    let emulator = Emulator::start();
    make_dataset(&emulator, serde_json::json!({"team": "data"}));
    post(
        &emulator,
        &format!("{DATASET}/tables"),
        serde_json::json!({
            "tableReference": {"projectId": "test-project", "datasetId": "shopify", "tableId": "events"},
            "schema": {"fields": [{"name": "at", "type": "TIMESTAMP"}]},
            "labels": {"team": "data"},
        }),
    );
    post(
        &emulator,
        "/v1/projects/test-project/locations/us-central1/repositories?repositoryId=workers",
        serde_json::json!({"format": "DOCKER", "labels": {"team": "build"}, "cleanupPolicies": {
            "mine": {"id": "mine", "action": "KEEP", "mostRecentVersions": {"keepCount": 3}}}}),
    );
    let channel = make_channel(&emulator, "oncall");
    let alert = post(
        &emulator,
        "/v3/projects/test-project/alertPolicies",
        serde_json::json!({
            "displayName": "bytes",
            "combiner": "OR",
            "userLabels": {"team": "ops"},
            "conditions": [{"displayName": "bytes", "conditionThreshold": {
                "filter": "metric.type = \"bigquery.googleapis.com/query/scanned_bytes_billed\" AND resource.type = \"global\"",
                "comparison": "COMPARISON_GT", "thresholdValue": 1e12, "duration": "0s",
                "aggregations": [{"alignmentPeriod": "3600s", "perSeriesAligner": "ALIGN_SUM"}]}}],
        }),
    );
    let alert = alert["name"].as_str().unwrap().to_string();
    // A budget filtered to this project (by number); one of another project under the same
    // display name would not be a candidate.
    let (status, project) = emulator.http("GET", "/v3/projects/test-project", None);
    assert_eq!(status, 200, "{project}");
    let project: serde_json::Value = serde_json::from_str(&project).unwrap();
    let budget = post(
        &emulator,
        "/v1/billingAccounts/012345-6789AB-CDEF01/budgets",
        serde_json::json!({
            "displayName": "sc:adopter:monthly",
            "budgetFilter": {"projects": [project["name"]]},
            "amount": {"specifiedAmount": {"currencyCode": "USD", "units": "300"}},
            "thresholdRules": [{"thresholdPercent": 0.5}, {"thresholdPercent": 1.0}],
        }),
    );
    let budget = budget["name"].as_str().unwrap().to_string();

    let ws = Workspace::new(&hand_made_stack("adopter"));
    // Unowned resources under declared names are conflicts that name the way out.
    let run = ws.on(&emulator, &["plan"]).expect(1);
    for addr in [
        "dataset.shopify",
        "table.events",
        "repository.workers",
        "budget.monthly",
    ] {
        assert!(
            run.stderr.contains(&format!("stackctl adopt {addr}")),
            "{addr}: {}",
            run.stderr
        );
    }

    // A dataset changed between the read and the write (412 on If-Match) is left as it is.
    emulator.set_faults(
        r#"{"rules": [{"method": "PATCH", "path_contains": "/datasets/shopify", "status": 412, "count": 1}]}"#,
    );
    let raced = ws.on(&emulator, &["adopt", "dataset.shopify"]).expect(1);
    assert!(
        raced
            .stderr
            .contains("changed while it was being adopted; nothing was written"),
        "{}",
        raced.stderr
    );
    emulator.clear_faults();
    assert_eq!(
        get(&emulator, DATASET)["labels"],
        serde_json::json!({"team": "data"})
    );

    let adopted = ws
        .on(
            &emulator,
            &[
                "adopt",
                "dataset.shopify",
                "table.events",
                "repository.workers",
                "channel.oncall",
                "alert.bytes",
                "budget.monthly",
            ],
        )
        .expect(0);
    assert!(
        adopted
            .stdout
            .contains(&format!("Adopted channel.oncall ({channel})"))
            && adopted
                .stdout
                .contains(&format!("Adopted alert.bytes ({alert})"))
            && adopted.stdout.contains(&format!(
                "Adopted budget.monthly ({budget}) into the ownership ledger."
            )),
        "{}",
        adopted.stdout
    );

    // The ownership label was added; the labels the user had are still there.
    let owned = serde_json::json!("adopter");
    for (path, key, theirs) in [
        (DATASET, "labels", "data"),
        (TABLE, "labels", "data"),
        (REPOSITORY, "labels", "build"),
    ] {
        let live = get(&emulator, path);
        assert_eq!(live[key]["stackctl-stack"], owned, "{live}");
        assert_eq!(live[key]["team"], theirs, "{live}");
    }
    for name in [&channel, &alert] {
        let live = get(&emulator, &format!("/v3/{name}"));
        assert_eq!(live["userLabels"]["stackctl-stack"], owned, "{live}");
        assert_eq!(live["userLabels"]["team"], "ops", "{live}");
        assert!(live["userLabels"]["stackctl-name"].is_string(), "{live}");
    }
    // Adopting wrote the labels only: the repository's own cleanup policy is untouched.
    let repository = get(&emulator, REPOSITORY);
    assert_eq!(
        repository["cleanupPolicies"].as_object().map(|p| p.len()),
        Some(1),
        "{repository}"
    );
    assert_eq!(
        repository["cleanupPolicies"]["mine"]["mostRecentVersions"]["keepCount"], 3,
        "{repository}"
    );

    // Now they are ours: updates, not creates or conflicts; one apply converges them.
    let plan = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(2);
    for addr in [
        "dataset.shopify",
        "table.events",
        "repository.workers",
        "channel.oncall",
        "alert.bytes",
        "budget.monthly",
    ] {
        assert!(
            !plan.stdout.contains(&format!("+ {addr}")),
            "{addr}: {}",
            plan.stdout
        );
    }
    // The repository's cleanup policies differ from stack.toml; the adopted budget already
    // matches it (amount, thresholds, this project's filter).
    assert!(
        plan.stdout.contains("~ repository.workers") && !plan.stdout.contains("budget.monthly"),
        "{}",
        plan.stdout
    );
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
    assert_eq!(get(&emulator, DATASET)["labels"]["team"], "data");

    // Adopting again changes nothing.
    let again = ws
        .on(
            &emulator,
            &[
                "adopt",
                "dataset.shopify",
                "channel.oncall",
                "budget.monthly",
            ],
        )
        .expect(0);
    assert_eq!(
        again
            .stdout
            .matches("is already owned by this stack.")
            .count(),
        3,
        "{}",
        again.stdout
    );
}

#[test]
fn adoption_refuses_another_stacks_resources_and_ambiguous_display_names() {
    let emulator = Emulator::start();
    make_dataset(&emulator, serde_json::json!({"stackctl-stack": "other"}));
    let first = make_channel(&emulator, "oncall");
    let second = make_channel(&emulator, "oncall");
    let ws = Workspace::new(&hand_made_stack("adopter"));

    let refused = ws.on(&emulator, &["adopt", "dataset.shopify"]).expect(1);
    assert!(
        refused
            .stderr
            .contains("projects/test-project/datasets/shopify belongs to the stack `other`"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        get(&emulator, DATASET)["labels"],
        serde_json::json!({"stackctl-stack": "other"})
    );

    let ambiguous = ws.on(&emulator, &["adopt", "channel.oncall"]).expect(1);
    assert!(
        ambiguous
            .stderr
            .contains("2 resources have the display name \"oncall\"")
            && ambiguous.stderr.contains(&first)
            && ambiguous.stderr.contains(&second),
        "{}",
        ambiguous.stderr
    );
    for name in [&first, &second] {
        let live = get(&emulator, &format!("/v3/{name}"));
        assert_eq!(live["userLabels"], serde_json::json!({"team": "ops"}));
    }

    let missing = ws.on(&emulator, &["adopt", "repository.workers"]).expect(1);
    assert!(
        missing
            .stderr
            .contains("does not exist, so there is nothing to adopt"),
        "{}",
        missing.stderr
    );
}

#[test]
fn a_channel_planned_beside_an_unowned_one_of_its_display_name_says_to_adopt_it() {
    let emulator = Emulator::start();
    let hand_made = make_channel(&emulator, "oncall");
    let ws = Workspace::new(&format!(
        "{}\n[channel.oncall]\ntype = \"email\"\nemail = \"ops@example.com\"\n",
        basic_stack("twin")
    ));
    let note = format!(
        "an unowned channel with this display name exists ({hand_made}): `stackctl adopt channel.oncall` takes it over instead of creating a duplicate"
    );

    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(
        plan.stdout.contains("+ channel.oncall") && plan.stdout.contains(&format!("# {note}")),
        "{}",
        plan.stdout
    );
    let json = ws.on(&emulator, &["plan", "--json"]).expect(0);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("plan JSON");
    let create = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "channel.oncall")
        .unwrap();
    assert_eq!(create["notes"], serde_json::json!([note]), "{create}");
    // The note does not block: apply shows it in the plan it asks to confirm.
    let unconfirmed = ws.on(&emulator, &["apply"]).expect(1);
    assert!(
        unconfirmed.stdout.contains(&format!("# {note}")),
        "{}",
        unconfirmed.stdout
    );

    ws.on(&emulator, &["adopt", "channel.oncall"]).expect(0);
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(
        !plan.stdout.contains("+ channel.oncall") && !plan.stdout.contains("unowned channel"),
        "{}",
        plan.stdout
    );
}

//! `stackctl import`: a project built by hand through the APIs (as the seed builds it with
//! gcloud) becomes stack.toml stanzas that validate, plan empty and are adopted; what another
//! stack owns is never imported.

use crate::support::*;

const EMPTY_STACK: &str = r#"[stack]
name = "imported"
project = "test-project"
region = "us-central1"
"#;

fn ok(emulator: &Emulator, method: &str, path: &str, body: &str) -> serde_json::Value {
    let (status, text) = emulator.http(method, path, Some(body));
    assert!(status == 200, "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// The seed's resources, made through the APIs without stackctl: an identity, a secret, a
/// capped Cloud Run service reading the secret, a queue pushing to it with OIDC, a dataset with
/// a partitioned table, a job and the schedule that runs it, a Firestore database.
fn build_by_hand(emulator: &Emulator) {
    let p = "projects/test-project";
    let l = "projects/test-project/locations/us-central1";
    for api in [
        "run",
        "cloudtasks",
        "iam",
        "secretmanager",
        "bigquery",
        "cloudscheduler",
        "firestore",
        "artifactregistry",
    ] {
        ok(
            emulator,
            "POST",
            &format!("/v1/{p}/services/{api}.googleapis.com:enable"),
            "{}",
        );
    }
    ok(
        emulator,
        "POST",
        &format!("/v1/{p}/serviceAccounts"),
        r#"{"accountId": "worker-sa", "serviceAccount": {"displayName": "Webhook worker"}}"#,
    );
    let sa = "worker-sa@test-project.iam.gserviceaccount.com";
    ok(
        emulator,
        "POST",
        &format!("/v1/{p}/secrets?secretId=shopify-secret"),
        r#"{"replication": {"automatic": {}}}"#,
    );
    ok(
        emulator,
        "POST",
        &format!("/v1/{p}/secrets/shopify-secret:addVersion"),
        r#"{"payload": {"data": "c2VjcmV0"}}"#,
    );
    ok(
        emulator,
        "POST",
        &format!("/v2/{l}/services?serviceId=worker"),
        &format!(
            r#"{{"scaling": {{"maxInstanceCount": 10}}, "template": {{"serviceAccount": "{sa}", "maxInstanceRequestConcurrency": 80, "timeout": "60s", "scaling": {{"maxInstanceCount": 10}}, "containers": [{{"image": "us-docker.pkg.dev/cloudrun/container/hello", "resources": {{"limits": {{"cpu": "1", "memory": "512Mi"}}, "cpuIdle": true}}, "env": [{{"name": "RUST_LOG", "value": "info"}}, {{"name": "SHOPIFY_SECRET", "valueSource": {{"secretKeyRef": {{"secret": "shopify-secret", "version": "latest"}}}}}}]}}]}}}}"#
        ),
    );
    let service = ok(emulator, "GET", &format!("/v2/{l}/services/worker"), "");
    let uri = service["uri"].as_str().expect("service uri");
    ok(
        emulator,
        "POST",
        &format!("/v2/{l}/queues"),
        &format!(
            r#"{{"name": "{l}/queues/webhooks", "rateLimits": {{"maxDispatchesPerSecond": 50, "maxConcurrentDispatches": 100}}, "retryConfig": {{"maxAttempts": 10, "minBackoff": "1s", "maxBackoff": "300s", "maxDoublings": 16}}, "httpTarget": {{"uriOverride": {{"scheme": "HTTPS", "host": "{}", "pathOverride": {{"path": "/tasks/webhook"}}}}, "oidcToken": {{"serviceAccountEmail": "{sa}", "audience": "{uri}"}}}}}}"#,
            uri.trim_start_matches("https://")
        ),
    );
    ok(
        emulator,
        "POST",
        "/bigquery/v2/projects/test-project/datasets",
        r#"{"datasetReference": {"projectId": "test-project", "datasetId": "shopify"}, "location": "US"}"#,
    );
    ok(
        emulator,
        "POST",
        "/bigquery/v2/projects/test-project/datasets/shopify/tables",
        r#"{"tableReference": {"projectId": "test-project", "datasetId": "shopify", "tableId": "orders"}, "schema": {"fields": [{"name": "id", "type": "STRING", "mode": "REQUIRED"}, {"name": "created_at", "type": "TIMESTAMP"}, {"name": "total", "type": "NUMERIC"}]}, "timePartitioning": {"type": "DAY", "field": "created_at"}, "clustering": {"fields": ["id"]}}"#,
    );
    ok(
        emulator,
        "POST",
        &format!("/v2/{l}/jobs?jobId=ingest"),
        &format!(
            r#"{{"template": {{"template": {{"serviceAccount": "{sa}", "maxRetries": 3, "timeout": "900s", "containers": [{{"image": "us-docker.pkg.dev/cloudrun/container/job", "resources": {{"limits": {{"cpu": "1", "memory": "512Mi"}}}}}}]}}}}}}"#
        ),
    );
    ok(
        emulator,
        "POST",
        &format!("/v1/{l}/jobs"),
        &format!(
            r#"{{"name": "{l}/jobs/ingest-hourly", "schedule": "0 * * * *", "timeZone": "Etc/UTC", "httpTarget": {{"uri": "https://run.googleapis.com/v2/{l}/jobs/ingest:run", "httpMethod": "POST", "oauthToken": {{"serviceAccountEmail": "{sa}", "scope": "https://www.googleapis.com/auth/cloud-platform"}}}}}}"#
        ),
    );
    ok(
        emulator,
        "POST",
        &format!("/v1/{p}/databases?databaseId=(default)"),
        r#"{"locationId": "nam5", "type": "FIRESTORE_NATIVE"}"#,
    );
    ok(
        emulator,
        "POST",
        &format!("/v1/{l}/repositories?repositoryId=images"),
        r#"{"format": "DOCKER", "cleanupPolicies": {"keep-recent": {"id": "keep-recent", "action": "KEEP", "mostRecentVersions": {"keepCount": 5}}}}"#,
    );
}

#[test]
fn a_hand_made_project_imports_to_stanzas_that_plan_empty_and_are_adopted() {
    let emulator = Emulator::start();
    build_by_hand(&emulator);
    let ws = Workspace::new(EMPTY_STACK);

    let dry = ws
        .on(&emulator, &["import", "--all", "--dry-run"])
        .expect(0);
    assert!(dry.stdout.contains("[queue.webhooks]"), "{}", dry.stdout);
    assert_eq!(
        std::fs::read_to_string(ws.file()).expect("stack.toml"),
        EMPTY_STACK,
        "a dry run writes nothing"
    );

    let imported = ws.on(&emulator, &["import", "--all"]).expect(0);
    let written = std::fs::read_to_string(ws.file()).expect("stack.toml");
    for stanza in [
        "[service_account.worker-sa]",
        "[secret.shopify-secret]",
        "[service.worker]",
        "[queue.webhooks]",
        "[dataset.shopify]",
        "[table.orders]",
        "[job.ingest]",
        "[schedule.ingest-hourly]",
        "[firestore.default]",
        "[repository.images]",
    ] {
        assert!(written.contains(stanza), "{stanza}:\n{written}");
    }
    for reference in [
        "target = \"service.worker\"",
        "oidc_service_account = \"service_account.worker-sa\"",
        "secrets = { SHOPIFY_SECRET = \"secret.shopify-secret\" }",
        "job = \"job.ingest\"",
        "dataset = \"dataset.shopify\"",
        "schema = \"schemas/orders.json\"",
        "keep_recent = 5",
    ] {
        assert!(written.contains(reference), "{reference}:\n{written}");
    }
    let schema =
        std::fs::read_to_string(ws.path().join("schemas/orders.json")).expect("schema file");
    assert!(schema.contains("\"created_at\""), "{schema}");
    ws.run(&["validate"]).expect(0);
    assert!(imported.stdout.contains("Adopted"), "{}", imported.stdout);

    // Owned now, and the plan touches none of them (only the state bucket's API may remain).
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    for address in [
        "service.worker",
        "queue.webhooks",
        "table.orders",
        "schedule.ingest-hourly",
        "firestore.default",
        "repository.images",
    ] {
        assert!(
            !plan.stdout.contains(&format!("# {address} ")),
            "{address} must plan empty:\n{}",
            plan.stdout
        );
    }
    // A second import finds nothing left: everything is declared and owned.
    let again = ws.on(&emulator, &["import", "--all"]).expect(0);
    assert!(
        again.stdout.contains("Nothing to import"),
        "{}",
        again.stdout
    );
}

#[test]
fn a_named_import_needs_what_it_refers_to_and_never_takes_another_stacks_resources() {
    let emulator = Emulator::start();
    build_by_hand(&emulator);
    let ws = Workspace::new(EMPTY_STACK);
    let refused = ws.on(&emulator, &["import", "queue.webhooks"]).expect(1);
    assert!(
        refused.stderr.contains("import it too") && refused.stderr.contains("service.NAME"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read_to_string(ws.file()).expect("stack.toml"),
        EMPTY_STACK
    );
    ws.on(
        &emulator,
        &[
            "import",
            "queue.webhooks",
            "service.worker",
            "service_account.worker-sa",
            "secret.shopify-secret",
        ],
    )
    .expect(0);

    // Another stack's resources are not candidates.
    let other = Workspace::new(
        &basic_stack("other")
            .replace("[service.worker]", "[service.other-worker]")
            .replace("[queue.webhooks]", "[queue.other-queue]")
            .replace("service.worker", "service.other-worker"),
    );
    other.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let missing = ws.on(&emulator, &["import", "queue.other-queue"]).expect(1);
    assert!(
        missing
            .stderr
            .contains("no queue with the id `other-queue`"),
        "{}",
        missing.stderr
    );
    let all = ws
        .on(&emulator, &["import", "--all", "--dry-run"])
        .expect(0);
    assert!(!all.stdout.contains("other-"), "{}", all.stdout);
}

//! `stackctl import`: a project built by hand through the APIs (as the seed builds it with
//! gcloud) becomes stack.toml stanzas that validate, plan empty and are adopted; what another
//! stack owns is never imported, and what stack.toml cannot declare (a Slack channel's token, a
//! policy that is not thresholds, a budget not named as stackctl names it) is named with the
//! reason and left unowned.

use crate::support::*;

const EMPTY_STACK: &str = r#"[stack]
name = "imported"
project = "test-project"
region = "us-central1"
billing_account = "012345-6789AB-CDEF01"
"#;

const CHANNELS: &str = "/v3/projects/test-project/notificationChannels";
const POLICIES: &str = "/v3/projects/test-project/alertPolicies";
const UPTIME_CHECKS: &str = "/v3/projects/test-project/uptimeCheckConfigs";
const BUDGETS: &str = "/v1/billingAccounts/012345-6789AB-CDEF01/budgets";
const DASHBOARDS: &str = "/v1/projects/test-project/dashboards";

fn ok(emulator: &Emulator, method: &str, path: &str, body: &str) -> serde_json::Value {
    let (status, text) = emulator.http(method, path, Some(body));
    assert!(status == 200, "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

/// A Slack notification channel, whose token Google never returns; its full name.
fn slack_channel(emulator: &Emulator) -> String {
    let slack = ok(
        emulator,
        "POST",
        CHANNELS,
        r##"{"type": "slack", "displayName": "Team Slack", "labels": {"channel_name": "#alerts", "auth_token": "xoxb-not-a-real-token"}}"##,
    );
    slack["name"].as_str().expect("channel name").to_string()
}

/// `projects/NUMBER` of the test project, as budgets filter by it.
fn project_number(emulator: &Emulator) -> String {
    let project = ok(emulator, "GET", "/v3/projects/test-project", "");
    project["name"].as_str().expect("project name").to_string()
}

/// The seed's resources, made through the APIs without stackctl: an identity, a secret, a
/// capped Cloud Run service reading the secret, a queue pushing to it with OIDC, a dataset with
/// a partitioned table, a job and the schedule that runs it, a Firestore database; and what
/// watches it: an email channel, an uptime check of the service, an alert policy on its 5xx
/// responses notifying the channel, a monthly budget, a Slack channel, and a dashboard made in
/// the console (a grid of a chart and a runbook note).
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
        "monitoring",
        "billingbudgets",
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
    let email = ok(
        emulator,
        "POST",
        CHANNELS,
        r#"{"type": "email", "displayName": "Ops email", "labels": {"email_address": "ops@example.com"}, "userLabels": {"team": "ops"}}"#,
    );
    let email = email["name"].as_str().expect("channel name");
    slack_channel(emulator);
    ok(
        emulator,
        "POST",
        UPTIME_CHECKS,
        &format!(
            r#"{{"displayName": "Worker health", "monitoredResource": {{"type": "uptime_url", "labels": {{"host": "{}", "project_id": "test-project"}}}}, "httpCheck": {{"useSsl": true, "port": 443, "path": "/healthz", "acceptedResponseStatusCodes": [{{"statusClass": "STATUS_CLASS_2XX"}}]}}, "period": "60s", "timeout": "5s", "selectedRegions": ["USA", "EUROPE", "ASIA_PACIFIC"]}}"#,
            uri.trim_start_matches("https://")
        ),
    );
    ok(
        emulator,
        "POST",
        POLICIES,
        &format!(
            r#"{{"displayName": "Worker 5xx", "severity": "ERROR", "documentation": {{"content": "Roll back the worker.", "mimeType": "text/markdown", "subject": "Worker on fire"}}, "combiner": "OR", "notificationChannels": ["{email}"], "conditions": [{{"displayName": "5xx responses", "conditionThreshold": {{"filter": "metric.type = \"run.googleapis.com/request_count\" AND resource.type = \"cloud_run_revision\" AND metric.labels.response_code_class = \"5xx\"", "comparison": "COMPARISON_GT", "thresholdValue": 1, "duration": "300s", "aggregations": [{{"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_RATE", "crossSeriesReducer": "REDUCE_SUM", "groupByFields": ["resource.labels.service_name"]}}]}}}}]}}"#
        ),
    );
    ok(
        emulator,
        "POST",
        BUDGETS,
        &format!(
            r#"{{"displayName": "sc:imported:monthly", "budgetFilter": {{"projects": ["{}"]}}, "amount": {{"specifiedAmount": {{"currencyCode": "USD", "units": "300"}}}}, "thresholdRules": [{{"thresholdPercent": 0.5}}, {{"thresholdPercent": 0.9}}, {{"thresholdPercent": 1.0}}], "notificationsRule": {{"monitoringNotificationChannels": ["{email}"]}}}}"#,
            project_number(emulator)
        ),
    );
    ok(
        emulator,
        "POST",
        DASHBOARDS,
        r#"{"displayName": "Orders on call", "labels": {"team": "ops"}, "gridLayout": {"columns": "2", "widgets": [{"title": "worker requests", "xyChart": {"dataSets": [{"timeSeriesQuery": {"timeSeriesFilter": {"filter": "metric.type = \"run.googleapis.com/request_count\" AND resource.labels.service_name = \"worker\"", "aggregation": {"alignmentPeriod": "60s", "perSeriesAligner": "ALIGN_RATE"}}}}]}}, {"title": "runbook", "text": {"content": "Page the ingest owner.", "format": "MARKDOWN"}}]}}"#,
    );
}

/// The user labels of the one live resource `list_path` lists under `field` with
/// `display_name`.
fn user_labels(
    emulator: &Emulator,
    list_path: &str,
    field: &str,
    display_name: &str,
) -> serde_json::Value {
    let list = ok(emulator, "GET", list_path, "");
    let items = list[field].as_array().cloned().unwrap_or_default();
    let found: Vec<&serde_json::Value> = items
        .iter()
        .filter(|item| item["displayName"] == display_name)
        .collect();
    assert_eq!(found.len(), 1, "{display_name} in {list}");
    found[0]["userLabels"].clone()
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
        "[channel.ops-email]",
        "[uptime.worker-health]",
        "[alert.worker-5xx]",
        "[budget.monthly]",
        "[dashboard.orders-on-call]",
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
        "email = \"ops@example.com\"",
        "target = \"service.worker\"\npath = \"/healthz\"",
        "notify = [\"channel.ops-email\"]",
        "comparison = \"COMPARISON_GT\"",
        "severity = \"error\"\ndocumentation = \"Roll back the worker.\"",
        "amount_usd = 300",
        "file = \"dashboards/orders-on-call.json\"",
    ] {
        assert!(written.contains(reference), "{reference}:\n{written}");
    }
    // The Slack channel's token cannot be read back: named, with what to write by hand.
    assert!(!written.contains("team-slack"), "{written}");
    assert!(
        imported
            .stderr
            .contains("not importable: channel.team-slack: its auth_token is sensitive")
            && imported.stderr.contains("auth_token = \"secret.NAME\""),
        "{}",
        imported.stderr
    );
    let schema =
        std::fs::read_to_string(ws.path().join("schemas/orders.json")).expect("schema file");
    assert!(schema.contains("\"created_at\""), "{schema}");
    let dashboard = std::fs::read_to_string(ws.path().join("dashboards/orders-on-call.json"))
        .expect("dashboard file");
    assert!(
        dashboard.contains("Page the ingest owner.") && !dashboard.contains("\"etag\""),
        "{dashboard}"
    );
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
        "channel.ops-email",
        "uptime.worker-health",
        "alert.worker-5xx",
        "budget.monthly",
        "dashboard.orders-on-call",
    ] {
        assert!(
            !plan.stdout.contains(&format!("# {address} ")),
            "{address} must plan empty:\n{}",
            plan.stdout
        );
    }
    // Found again by their labels, the ones they had kept.
    let labels = user_labels(&emulator, CHANNELS, "notificationChannels", "Ops email");
    assert_eq!(
        labels,
        serde_json::json!({"team": "ops", "stackctl-stack": "imported", "stackctl-name": "ops-email"})
    );
    let labels = user_labels(&emulator, POLICIES, "alertPolicies", "Worker 5xx");
    assert_eq!(labels["stackctl-name"], "worker-5xx", "{labels}");
    let labels = user_labels(
        &emulator,
        UPTIME_CHECKS,
        "uptimeCheckConfigs",
        "Worker health",
    );
    assert_eq!(labels["stackctl-name"], "worker-health", "{labels}");
    let dashboards = ok(&emulator, "GET", DASHBOARDS, "");
    assert_eq!(
        dashboards["dashboards"][0]["labels"],
        serde_json::json!({"team": "ops", "stackctl-stack": "imported", "stackctl-name": "orders-on-call"}),
        "{dashboards}"
    );
    // A second import finds nothing left but the Slack channel: the rest is declared and owned.
    let again = ws.on(&emulator, &["import", "--all"]).expect(0);
    assert!(
        again.stdout.contains("Nothing else to import")
            && again.stderr.contains("not importable: channel.team-slack"),
        "{}\n{}",
        again.stdout,
        again.stderr
    );

    // A changed threshold rewrites the policy's conditions, and the console's subject line,
    // which stack.toml does not declare, stays.
    let text = std::fs::read_to_string(ws.file()).expect("stack.toml");
    assert!(text.contains("threshold = 1,"), "{text}");
    ws.write(&text.replace("threshold = 1,", "threshold = 3,"));
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(
        plan.stdout.contains("~ alert.worker-5xx"),
        "{}",
        plan.stdout
    );
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let policies = ok(&emulator, "GET", POLICIES, "");
    let policy = policies["alertPolicies"]
        .as_array()
        .expect("policies")
        .iter()
        .find(|p| p["displayName"] == "Worker 5xx")
        .cloned()
        .expect("Worker 5xx");
    assert_eq!(
        policy["conditions"][0]["conditionThreshold"]["thresholdValue"], 3.0,
        "{policy}"
    );
    assert_eq!(
        policy["documentation"]["subject"], "Worker on fire",
        "{policy}"
    );
    assert_eq!(
        policy["documentation"]["content"], "Roll back the worker.",
        "{policy}"
    );
    assert_eq!(policy["severity"], "ERROR", "{policy}");

    // The imported dashboard is managed from its file now: an edit there is planned and applied.
    let file = ws.path().join("dashboards/orders-on-call.json");
    let text = std::fs::read_to_string(&file).expect("dashboard file");
    std::fs::write(
        &file,
        text.replace("Page the ingest owner.", "Page the data on-call."),
    )
    .expect("edit");
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(
        plan.stdout.contains("gridLayout.widgets[1].text.content"),
        "{}",
        plan.stdout
    );
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let dashboards = ok(&emulator, "GET", DASHBOARDS, "");
    assert_eq!(
        dashboards["dashboards"][0]["gridLayout"]["widgets"][1]["text"]["content"],
        "Page the data on-call.",
        "{dashboards}"
    );
}

#[test]
fn what_stack_toml_cannot_declare_is_named_with_the_reason_and_left_unowned() {
    let emulator = Emulator::start();
    let slack = slack_channel(&emulator);
    ok(
        &emulator,
        "POST",
        POLICIES,
        &format!(
            r#"{{"displayName": "Queue backlog", "combiner": "OR", "notificationChannels": ["{slack}"], "conditions": [{{"displayName": "depth", "conditionThreshold": {{"filter": "metric.type = \"cloudtasks.googleapis.com/queue/depth\" AND resource.type = \"cloud_tasks_queue\"", "comparison": "COMPARISON_GT", "thresholdValue": 1000, "duration": "600s", "aggregations": [{{"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_MAX"}}]}}}}]}}"#
        ),
    );
    ok(
        &emulator,
        "POST",
        POLICIES,
        r#"{"displayName": "Heartbeat missing", "combiner": "OR", "conditions": [{"displayName": "no heartbeat", "conditionAbsent": {"filter": "metric.type = \"custom.googleapis.com/heartbeat\" AND resource.type = \"global\"", "duration": "600s", "aggregations": [{"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_COUNT"}]}}]}"#,
    );
    ok(
        &emulator,
        "POST",
        BUDGETS,
        &format!(
            r#"{{"displayName": "Monthly", "budgetFilter": {{"projects": ["{}"]}}, "amount": {{"specifiedAmount": {{"currencyCode": "USD", "units": "100"}}}}, "thresholdRules": [{{"thresholdPercent": 1.0}}]}}"#,
            project_number(&emulator)
        ),
    );
    let ws = Workspace::new(EMPTY_STACK);

    // Named, a resource that cannot be imported is an error and nothing is written.
    let named = ws
        .on(&emulator, &["import", "channel.team-slack"])
        .expect(1);
    assert!(
        named.stderr.contains("its auth_token is sensitive"),
        "{}",
        named.stderr
    );
    assert_eq!(
        std::fs::read_to_string(ws.file()).expect("stack.toml"),
        EMPTY_STACK
    );

    let run = ws.on(&emulator, &["import", "--all"]).expect(1);
    for reason in [
        "not importable: channel.team-slack: its auth_token is sensitive",
        "not importable: alert.heartbeat-missing: its condition 1 is not a metric threshold",
        "not importable: budget.monthly: stackctl finds a budget by the display name \"sc:imported:monthly\", and this one is named \"Monthly\": rename it",
    ] {
        assert!(run.stderr.contains(reason), "{reason}:\n{}", run.stderr);
    }
    // The policy is written without the channel it cannot name, says so, and is not adopted.
    let written = std::fs::read_to_string(ws.file()).expect("stack.toml");
    assert!(
        written.contains(
            "[alert.queue-backlog]                # imported from projects/test-project/alertPolicies/"
        ) && written.contains(&format!(
            "# notify leaves out {slack}: no [channel] stanza declares or imports it"
        )),
        "{written}"
    );
    assert!(
        !written.contains("[channel.")
            && !written.contains("[budget.")
            && !written.contains("heartbeat"),
        "{written}"
    );
    ws.run(&["validate"]).expect(0);
    assert!(
        run.stderr.contains(
            "alert.queue-backlog: the written stanza differs from the live resource (notify: "
        ),
        "{}",
        run.stderr
    );
    let labels = user_labels(&emulator, POLICIES, "alertPolicies", "Queue backlog");
    assert!(
        labels.get("stackctl-stack").is_none(),
        "left unowned: {labels}"
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

#[test]
fn a_hand_made_gateway_and_its_api_key_import_with_the_openapi_file_and_plan_empty() {
    let emulator = Emulator::start();
    let p = "projects/test-project";
    let l = "projects/test-project/locations/us-central1";
    let global = "projects/test-project/locations/global";
    for api in ["run", "iam", "apigateway", "apikeys"] {
        ok(
            &emulator,
            "POST",
            &format!("/v1/{p}/services/{api}.googleapis.com:enable"),
            "{}",
        );
    }
    ok(
        &emulator,
        "POST",
        &format!("/v1/{p}/serviceAccounts"),
        r#"{"accountId": "crm-gateway", "serviceAccount": {"displayName": "CRM gateway"}}"#,
    );
    let sa = "crm-gateway@test-project.iam.gserviceaccount.com";
    ok(
        &emulator,
        "POST",
        &format!("/v2/{l}/services?serviceId=crm-proxy"),
        &format!(
            r#"{{"scaling": {{"maxInstanceCount": 2}}, "template": {{"serviceAccount": "{sa}", "maxInstanceRequestConcurrency": 80, "timeout": "60s", "scaling": {{"maxInstanceCount": 2}}, "containers": [{{"image": "us-docker.pkg.dev/cloudrun/container/hello", "resources": {{"limits": {{"cpu": "1", "memory": "512Mi"}}, "cpuIdle": true}}}}]}}}}"#
        ),
    );
    let service = ok(&emulator, "GET", &format!("/v2/{l}/services/crm-proxy"), "");
    let uri = service["uri"].as_str().expect("service uri");
    // The document as a team writes it for gcloud: the backend's URL spelled out.
    let document = serde_json::json!({
        "swagger": "2.0",
        "info": {"title": "CRM for partners", "version": "1.0.0"},
        "x-google-backend": {"address": uri, "jwt_audience": uri},
        "securityDefinitions": {"api_key": {"type": "apiKey", "name": "key", "in": "query"}},
        "paths": {"/customers": {"post": {"operationId": "upsertCustomer", "security": [{"api_key": []}], "responses": {"200": {"description": "upserted"}}}}}
    });
    ok(
        &emulator,
        "POST",
        &format!("/v1/{global}/apis?apiId=crm"),
        r#"{"displayName": "crm"}"#,
    );
    ok(
        &emulator,
        "POST",
        &format!("/v1/{global}/apis/crm/configs?apiConfigId=crm-v1"),
        &serde_json::json!({
            "gatewayServiceAccount": sa,
            "openapiDocuments": [{"document": {"path": "openapi.json", "contents": base64(document.to_string().as_bytes())}}]
        })
        .to_string(),
    );
    ok(
        &emulator,
        "POST",
        &format!("/v1/{l}/gateways?gatewayId=crm"),
        &format!(
            r#"{{"apiConfig": "{global}/apis/crm/configs/crm-v1", "displayName": "CRM for partners"}}"#
        ),
    );
    let api = ok(&emulator, "GET", &format!("/v1/{global}/apis/crm"), "");
    let managed_service = api["managedService"].as_str().expect("managed service");
    ok(
        &emulator,
        "POST",
        &format!("/v2/{global}/keys"),
        &format!(
            r#"{{"displayName": "Partner integration", "restrictions": {{"apiTargets": [{{"service": "{managed_service}"}}]}}}}"#
        ),
    );
    // Restricted to the gateway and to one office's address: declaring it would drop the latter.
    ok(
        &emulator,
        "POST",
        &format!("/v2/{global}/keys"),
        &format!(
            r#"{{"displayName": "Office tool", "restrictions": {{"apiTargets": [{{"service": "{managed_service}"}}], "serverKeyRestrictions": {{"allowedIps": ["203.0.113.7"]}}}}}}"#
        ),
    );
    // A key that may call any API: stack.toml declares keys restricted to one gateway.
    ok(
        &emulator,
        "POST",
        &format!("/v2/{global}/keys"),
        r#"{"displayName": "Old browser key"}"#,
    );

    let ws = Workspace::new(EMPTY_STACK);
    let imported = ws.on(&emulator, &["import", "--all"]).expect(0);
    let written = std::fs::read_to_string(ws.file()).expect("stack.toml");
    for line in [
        "[gateway.crm]",
        "backend = \"service.crm-proxy\"",
        "service_account = \"service_account.crm-gateway\"",
        "openapi = \"gateways/crm.json\"",
        "[api_key.partner-integration]",
        "gateway = \"gateway.crm\"",
    ] {
        assert!(written.contains(line), "{line}:\n{written}");
    }
    assert!(
        imported
            .stderr
            .contains("not importable: api_key.old-browser-key: it may call any API")
            && imported.stderr.contains(
                "not importable: api_key.office-tool: it is also restricted by serverKeyRestrictions"
            ),
        "{}",
        imported.stderr
    );
    let file = std::fs::read_to_string(ws.path().join("gateways/crm.json")).expect("openapi file");
    assert!(
        file.contains("${BACKEND_URL}") && !file.contains(uri),
        "the backend's URL is the stanza's: {file}"
    );
    assert!(imported.stdout.contains("Adopted"), "{}", imported.stdout);

    let plan = ws.on(&emulator, &["plan"]).expect(0);
    for address in ["gateway.crm", "api_key.partner-integration"] {
        assert!(
            !plan.stdout.contains(&format!("# {address} ")),
            "{address} must plan empty:\n{}",
            plan.stdout
        );
    }
    let gateway = ok(&emulator, "GET", &format!("/v1/{l}/gateways/crm"), "");
    assert_eq!(gateway["labels"]["stackctl-stack"], "imported", "{gateway}");
    let keys = ok(&emulator, "GET", &format!("/v2/{global}/keys"), "");
    let partner: Vec<&serde_json::Value> = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["displayName"] == "Partner integration")
        .collect();
    assert_eq!(
        partner[0]["annotations"]["stackctl-name"], "partner-integration",
        "{keys}"
    );
}

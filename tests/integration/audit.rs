//! `stackctl audit` against an emulator project seeded with known waste, and a clean one.

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::support::*;

const IMAGE: &str = "us-docker.pkg.dev/cloudrun/container/hello";

/// A DELTA int64 point `hours_ago` hours before now.
fn point(hours_ago: i64, value: i64) -> Value {
    let end = Utc::now() - Duration::hours(hours_ago) - Duration::minutes(5);
    json!({
        "interval": {"startTime": (end - Duration::minutes(1)).to_rfc3339(), "endTime": end.to_rfc3339()},
        "value": {"int64Value": value.to_string()},
    })
}

fn requests(project: &str, service: &str, hours_ago: &[i64]) -> Value {
    json!({
        "metric": {"type": "run.googleapis.com/request_count", "labels": {"response_code_class": "2xx"}},
        "resource": {"type": "cloud_run_revision", "labels": {
            "project_id": project, "location": "us-central1", "service_name": service,
            "revision_name": format!("{service}-00001")}},
        "metricKind": "DELTA",
        "valueType": "INT64",
        "points": hours_ago.iter().map(|h| point(*h, 25)).collect::<Vec<_>>(),
    })
}

fn queue_metric(project: &str, metric: &str, kind: &str, queue: &str, value: i64) -> Value {
    json!({
        "metric": {"type": format!("cloudtasks.googleapis.com/queue/{metric}")},
        "resource": {"type": "cloud_tasks_queue", "labels": {
            "project_id": project, "target_type": "http", "queue_id": queue}},
        "metricKind": kind,
        "valueType": "INT64",
        "points": [point(2, value)],
    })
}

fn admin_seed(emulator: &Emulator, path: &str, body: Value) {
    let (status, reply) = emulator.http("POST", path, Some(&body.to_string()));
    assert_eq!(status, 200, "seeding {path}: {reply}");
}

/// Makes every service of `project` `days` old, as if the stack had run that long: a service
/// younger than the idle window is not called idle.
fn age_services(emulator: &Emulator, project: &str, days: i64) {
    let (status, listed) = emulator.http(
        "GET",
        &format!("/v2/projects/{project}/locations/us-central1/services"),
        None,
    );
    assert_eq!(status, 200, "{listed}");
    let listed: Value = serde_json::from_str(&listed).expect("services JSON");
    let created = (Utc::now() - Duration::days(days)).to_rfc3339();
    let services: Vec<Value> = listed["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| json!({"name": s["name"], "createTime": created}))
        .collect();
    let body = json!({"project": project, "services": services}).to_string();
    let (status, reply) = emulator.http("POST", "/_emulator/run/services", Some(&body));
    assert_eq!(status, 200, "aging: {reply}");
}

fn seed(emulator: &Emulator, project: &str, series: Vec<Value>) {
    admin_seed(
        emulator,
        "/_emulator/monitoring/timeseries",
        json!({"project": project, "timeSeries": series}),
    );
}

fn findings(json_text: &str) -> Vec<(String, String, Option<f64>, String)> {
    let report: Value = serde_json::from_str(json_text).expect("audit JSON");
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["resource"]
                    .as_str()
                    .unwrap_or("")
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .to_string(),
                f["rule"].as_str().unwrap_or("").to_string(),
                f["monthly_waste_usd"].as_f64(),
                f["severity"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Epoch milliseconds `days` ago, as BigQuery writes times.
fn ms_ago(days: i64) -> String {
    (Utc::now() - Duration::days(days))
        .timestamp_millis()
        .to_string()
}

/// `archive` and `daily` are 200 days old and hold data; in the last 90 days a load wrote
/// `archive` (a write, not a read) and another user's script read `daily` in one of its
/// statements (a child job, listed only under its parent); `archive`'s last read was 120 days ago.
fn seed_cold_and_warm_tables(emulator: &Emulator, project: &str) {
    let created = ms_ago(200);
    admin_seed(
        emulator,
        "/_emulator/bigquery/tables",
        json!({"project": project, "tables": [
            // 500 GiB, 400 GiB of it long-term.
            {"datasetId": "raw", "tableId": "archive", "numBytes": (500_i64 << 30).to_string(),
             "numLongTermBytes": (400_i64 << 30).to_string(), "creationTime": created},
            {"datasetId": "raw", "tableId": "daily", "numBytes": (50_i64 << 30).to_string(),
             "creationTime": created},
        ]}),
    );
    let table = |id: &str| json!({"projectId": project, "datasetId": "raw", "tableId": id});
    let analyst = "analyst@example.com";
    admin_seed(
        emulator,
        "/_emulator/bigquery/jobs",
        json!({"project": project, "jobs": [
            {"jobReference": {"jobId": "old_read"}, "user_email": analyst,
             "statistics": {"creationTime": ms_ago(120), "query": {"referencedTables": [table("archive")]}}},
            {"jobReference": {"jobId": "load_archive"}, "user_email": "loader@example.com",
             "configuration": {"load": {"destinationTable": table("archive")}},
             "statistics": {"creationTime": ms_ago(5)}},
            {"jobReference": {"jobId": "nightly"}, "user_email": analyst,
             "statistics": {"creationTime": ms_ago(3), "numChildJobs": "1", "query": {"statementType": "SCRIPT"}}},
            {"jobReference": {"jobId": "nightly_0"}, "user_email": analyst,
             "statistics": {"creationTime": ms_ago(3), "parentJobId": "nightly",
                            "query": {"referencedTables": [table("daily$20260101")]}}},
            {"jobReference": {"jobId": "running"}, "state": "RUNNING", "user_email": analyst,
             "statistics": {"creationTime": ms_ago(1), "query": {"referencedTables": [table("archive")]}}},
        ]}),
    );
}

#[test]
fn audit_finds_exactly_the_planted_waste_priced_and_sorted_by_money() {
    let emulator = Emulator::start();
    let project = "waste-project";
    let stack = format!(
        r#"[stack]
name = "waste"
project = "{project}"
region = "us-central1"
billing_account = "012345-6789AB-CDEF01"

[service.ghost]
image = "{IMAGE}"
min_instances = 1
max_instances = 3

[service.steady]
image = "{IMAGE}"
min_instances = 1
max_instances = 3
cpu_idle = false

[queue.forever]
max_attempts = -1

[queue.stuck]

[repository.images]

[dataset.raw]
deletion_protection = false

[table.clicks]
dataset = "dataset.raw"
columns = [{{ name = "at", type = "TIMESTAMP" }}]

[table.visits]
dataset = "dataset.raw"
columns = [{{ name = "at", type = "TIMESTAMP" }}]
partition = {{ field = "at" }}

[table.archive]
dataset = "dataset.raw"
columns = [{{ name = "at", type = "TIMESTAMP" }}]
partition = {{ field = "at", expiration = "730d" }}
require_partition_filter = true

[table.daily]
dataset = "dataset.raw"
columns = [{{ name = "at", type = "TIMESTAMP" }}]
partition = {{ field = "at", expiration = "730d" }}
require_partition_filter = true

[alert.ghost-errors]
template = "cloud_run_5xx_ratio"
service = "service.ghost"
threshold = 0.05
duration = "300s"
"#
    );
    let ws = Workspace::new(&stack);
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    // Retire `stuck`: stackctl pauses it and keeps it in the ledger.
    ws.write(&stack.replace("\n[queue.stuck]\n", "\n"));
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    age_services(&emulator, project, 60);
    // Out of band: an unlabelled service without a service-level max_instances, running the
    // `app:v1` image of the `images` repository.
    let registry = format!("us-central1-docker.pkg.dev/{project}/images");
    let (status, body) = emulator.http(
        "POST",
        &format!("/v2/projects/{project}/locations/us-central1/services?serviceId=stray"),
        Some(
            &json!({"template": {"containers": [{"image": format!("{registry}/app:v1")}]}})
                .to_string(),
        ),
    );
    assert_eq!(status, 200, "{body}");
    // Two images: `app:v1` runs in `stray`; the old 3 GiB `app:v0` runs nowhere.
    // Out of band: a Scheduler job whose target Cloud Run job does not exist.
    let (status, body) = emulator.http(
        "POST",
        &format!("/v1/projects/{project}/locations/us-central1/jobs"),
        Some(
            &json!({
                "name": format!("projects/{project}/locations/us-central1/jobs/orphan"),
                "schedule": "0 * * * *",
                "timeZone": "UTC",
                "httpTarget": {
                    "uri": format!("https://run.googleapis.com/v2/projects/{project}/locations/us-central1/jobs/deleted:run"),
                    "httpMethod": "POST",
                },
            })
            .to_string(),
        ),
    );
    assert_eq!(status, 200, "{body}");
    let images = json!({
        "repository": format!("projects/{project}/locations/us-central1/repositories/images"),
        "images": [
            {"image": "app", "digest": format!("sha256:{}", "1".repeat(64)), "tags": ["v1"], "imageSizeBytes": 1_073_741_824_i64},
            {"image": "app", "digest": format!("sha256:{}", "0".repeat(64)), "tags": ["v0"], "imageSizeBytes": 3_221_225_472_i64},
        ],
    });
    admin_seed(
        &emulator,
        "/_emulator/artifactregistry/dockerImages",
        images,
    );
    seed_cold_and_warm_tables(&emulator, project);
    seed(
        &emulator,
        project,
        vec![
            // Bursty: traffic in 2 of the 336 hours of 14 days.
            requests(project, "steady", &[3, 50]),
            requests(project, "stray", &[1]),
            queue_metric(project, "task_attempt_count", "DELTA", "forever", 12),
            queue_metric(project, "depth", "GAUGE", "stuck", 40),
        ],
    );

    let run = ws.on(&emulator, &["audit", "--json"]).expect(0);
    let found = findings(&run.stdout);
    // The alert policy's resource is its server-assigned id.
    let alert_id = found
        .iter()
        .find(|f| f.1 == "OB3")
        .map(|f| f.0.clone())
        .unwrap_or_default();
    assert_eq!(
        found,
        vec![
            // 1 vCPU / 512 MiB min instance: $49.248 instance-based − $9.72 request-based idle.
            ("steady".into(), "CR3".into(), Some(39.528), "high".into()),
            // One idle warm instance, request-based: $6.48 vCPU + $3.24 memory.
            ("ghost".into(), "CR1".into(), Some(9.72), "medium".into()),
            // Unread for 90 days: (500 − 400) GiB active × $0.02 + 400 GiB long-term × $0.01
            // = $2.00 + $4.00 (`daily`, read by a script's statement 3 days ago, is not here).
            ("archive".into(), "BQ3".into(), Some(6.0), "medium".into()),
            // One condition × $1.50, at least medium: nobody is told when it fires.
            (alert_id, "OB3".into(), Some(1.5), "medium".into()),
            // app:v0, 3 GiB × $0.10 (app:v1 runs in `stray`).
            (
                format!("app@sha256:{}", "0".repeat(64)),
                "AR1".into(),
                Some(0.3),
                "low".into()
            ),
            // The $0.10 Scheduler job fee: made out of band, it is in no ledger as well.
            ("orphan".into(), "OWN1".into(), Some(0.1), "low".into()),
            ("orphan".into(), "SC1".into(), Some(0.1), "low".into()),
            ("stray".into(), "CR9".into(), None, "high".into()),
            // A billing account with no budget covering the project.
            ("waste-project".into(), "BU1".into(), None, "medium".into()),
            ("forever".into(), "CT2".into(), None, "medium".into()),
            ("stuck".into(), "CT3".into(), None, "medium".into()),
            ("images".into(), "AR2".into(), None, "medium".into()),
            // Empty tables: numLongTermBytes = 0 prices BQ2 at $0; BQ4 needs 100 GiB.
            ("clicks".into(), "BQ1".into(), None, "low".into()),
            ("visits".into(), "BQ2".into(), Some(0.0), "low".into()),
            ("stray".into(), "OWN1".into(), Some(0.0), "low".into()),
        ],
        "{}",
        run.stdout
    );

    let table = ws.on(&emulator, &["audit", "--fail-on", "high"]).expect(1);
    assert!(table.stdout.contains("$39.53/mo"), "{}", table.stdout);
    assert!(
        table
            .stdout
            .contains("fix: stack.toml of stack `waste`: set cpu_idle = true in [service.steady]"),
        "{}",
        table.stdout
    );
    assert!(
        table
            .stdout
            // $39.528 + $9.72 + $6.00 + $1.50 + $0.30 + $0.10 + $0 + $0 = $57.148: `orphan`'s
            // two findings are one $0.10, each resource counting once at its largest waste.
            .contains("15 finding(s) in project waste-project (us-central1): $57.15/mo of priced waste, 6 unpriced risk(s)."),
        "{}",
        table.stdout
    );
    for fix in [
        "fix: stack.toml of stack `waste`: set notify = [\"channel.NAME\"] in [alert.ghost-errors], then `stackctl apply`",
        "fix: stack.toml of stack `waste`: add expiration = \"730d\" to partition in [table.visits], then `stackctl apply`",
        "fix: stack.toml of stack `waste`: set keep_recent = 10 and delete_untagged_after = \"30d\" in [repository.images], then `stackctl apply`",
        "fix: stack.toml of stack `waste`: remove [table.archive], then `stackctl apply --allow-data-loss`",
        // Top-level finished jobs since the window's start (the load, the script) and the
        // script's statement; not the 120-day-old read, not the running job.
        "evidence: no query, copy or extract job read it in 90 days (3 finished jobs of all users since ",
    ] {
        assert!(table.stdout.contains(fix), "{fix}\n{}", table.stdout);
    }
    ws.on(&emulator, &["audit", "--fail-on", "critical"])
        .expect(0);
    let markdown = ws
        .on(&emulator, &["audit", "--format", "markdown"])
        .expect(0);
    assert!(
        markdown
            .stdout
            .contains("| high | $39.53/mo | CR3 | `services/steady` |"),
        "{}",
        markdown.stdout
    );
}

#[test]
fn a_clean_project_with_healthy_traffic_has_no_findings() {
    let emulator = Emulator::start();
    let ws = Workspace::example();
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let project = "acme-shop-dev";
    seed(
        &emulator,
        project,
        vec![
            requests(project, "worker", &[1, 2, 30]),
            queue_metric(project, "task_attempt_count", "DELTA", "webhooks", 7),
        ],
    );
    let run = ws.on(&emulator, &["audit", "--fail-on", "low"]).expect(0);
    assert!(
        run.stdout
            .starts_with("No findings in project acme-shop-dev (us-central1)."),
        "{}",
        run.stdout
    );
}

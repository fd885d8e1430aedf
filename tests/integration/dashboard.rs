//! `[dashboard.NAME]` against the emulator: apply makes one labelled dashboard and re-plans
//! empty; a service taken off its list is a plan of changed tiles, applied by etag, then empty
//! again; a dashboard removed from stack.toml is deleted, and a look-alike with the same display
//! name but not this stack's labels is never touched.

use serde_json::Value;

use crate::support::*;

const STACK: &str = r#"[stack]
name = "dash-test"
project = "test-project"
region = "us-central1"

[service.web]
image = "us-docker.pkg.dev/cloudrun/container/hello"
max_instances = 2

[service.worker]
image = "us-docker.pkg.dev/cloudrun/container/hello"
max_instances = 2

[dashboard.overview]
services = ["service.web", "service.worker"]
"#;

const DASHBOARDS: &str = "/v1/projects/test-project/dashboards";

fn dashboards(emulator: &Emulator) -> Vec<Value> {
    let (status, body) = emulator.http("GET", DASHBOARDS, None);
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).expect("JSON");
    list["dashboards"].as_array().cloned().unwrap_or_default()
}

fn assert_no_changes(ws: &Workspace, emulator: &Emulator, after: &str) {
    let plan = ws.on(emulator, &["plan"]).expect(0);
    assert!(
        plan.stdout.starts_with("No changes."),
        "the re-plan after {after} is not empty:\n{}",
        plan.stdout
    );
}

#[test]
fn dashboards_apply_replan_empty_update_by_etag_and_delete_only_their_own() {
    let emulator = Emulator::start();
    // Someone else's dashboard with the same display name, without this stack's labels.
    let (status, body) = emulator.http(
        "POST",
        DASHBOARDS,
        Some(
            r#"{"displayName": "dash-test overview", "labels": {"team": "ops"}, "mosaicLayout": {"columns": 48, "tiles": []}}"#,
        ),
    );
    assert_eq!(status, 200, "{body}");
    let stranger: Value = serde_json::from_str(&body).expect("JSON");

    let ws = Workspace::new(STACK);
    let applied = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        applied.stdout.contains("+ dashboard.overview"),
        "{}",
        applied.stdout
    );
    let live = dashboards(&emulator);
    assert_eq!(live.len(), 2, "{live:?}");
    let ours = live
        .iter()
        .find(|d| d["name"] != stranger["name"])
        .expect("the stack's dashboard");
    assert_eq!(ours["labels"]["stackctl-stack"], "dash-test");
    assert_eq!(ours["labels"]["stackctl-name"], "overview");
    assert_eq!(ours["displayName"], "dash-test overview");
    assert_no_changes(&ws, &emulator, "apply");

    // Google's own client reads it back: by its label, with a chart per declared service.
    let read = python_readback(
        "readback_monitoring.py",
        &emulator,
        &["--project", "test-project"],
    );
    let overview = &read["dashboards"]["overview"];
    assert_eq!(overview["displayName"], "dash-test overview", "{read}");
    let filters: Vec<&str> = overview["chart_filters"]
        .as_array()
        .expect("filters")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for service in ["web", "worker"] {
        let latency = format!(
            "resource.labels.service_name = \"{service}\" AND metric.type = \"run.googleapis.com/request_latencies\""
        );
        assert!(
            filters.iter().any(|f| f.contains(&latency)),
            "no latency chart for {service}: {filters:?}"
        );
    }

    // worker off the list: its tiles go, the project tiles move up.
    ws.edit(
        r#"services = ["service.web", "service.worker"]"#,
        r#"services = ["service.web"]"#,
    );
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(
        plan.stdout.contains("~ dashboard.overview"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("mosaicLayout.tiles[5].widget.title")
            && plan.stdout.contains("mosaicLayout.tiles[10]"),
        "{}",
        plan.stdout
    );
    assert!(
        !plan.stdout.contains("~ service.worker") && !plan.stdout.contains("- service.worker"),
        "the service itself is unchanged:\n{}",
        plan.stdout
    );
    let etag_before = dashboards(&emulator)
        .into_iter()
        .find(|d| d["name"] == ours["name"])
        .expect("ours")["etag"]
        .clone();
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let updated = dashboards(&emulator)
        .into_iter()
        .find(|d| d["name"] == ours["name"])
        .expect("updated in place, same name");
    assert_ne!(updated["etag"], etag_before);
    assert_eq!(
        updated["mosaicLayout"]["tiles"]
            .as_array()
            .expect("tiles")
            .len(),
        7
    );
    assert_no_changes(&ws, &emulator, "the update");

    let without = STACK.split("[dashboard.overview]").next().expect("stack");
    ws.write(without);
    let removed = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        removed.stdout.contains("- dashboard.overview"),
        "{}",
        removed.stdout
    );
    assert_eq!(dashboards(&emulator), vec![stranger]);
    assert_no_changes(&ws, &emulator, "the delete");
}

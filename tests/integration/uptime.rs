//! `[uptime.NAME]` against the emulator: apply then an empty re-plan, a changed period is one
//! in-place update, another host replaces the check, a check removed from stack.toml is
//! deleted, and an unowned look-alike with the same display name and host is never touched; an
//! `uptime_check_failed` alert on the check re-plans empty too.

use serde_json::Value;

use crate::support::*;

const STACK: &str = r#"[stack]
name = "uptime-test"
project = "test-project"
region = "us-central1"

[uptime.relay]
url = "https://relay.example.com/healthz"
timeout = "5s"

[alert.relay-down]
template = "uptime_check_failed"
uptime = "uptime.relay"

[uptime.gateway]
url = "https://gateway.example.com/"
period = "60s"
regions = ["USA", "EUROPE", "ASIA_PACIFIC"]
"#;

const CHECKS: &str = "/v3/projects/test-project/uptimeCheckConfigs";

fn checks(emulator: &Emulator) -> Vec<Value> {
    let (status, body) = emulator.http("GET", CHECKS, None);
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).expect("JSON");
    list["uptimeCheckConfigs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn uptime_checks_apply_plan_empty_update_in_place_and_delete_only_their_own() {
    let emulator = Emulator::start();
    // Someone else's check with the same display name and host, not labelled by this stack.
    let (status, body) = emulator.http(
        "POST",
        CHECKS,
        Some(
            r#"{"displayName": "relay", "monitoredResource": {"type": "uptime_url", "labels": {"host": "relay.example.com", "project_id": "test-project"}}, "httpCheck": {"useSsl": true, "port": 443, "path": "/healthz"}, "timeout": "10s"}"#,
        ),
    );
    assert_eq!(status, 200, "{body}");
    let stranger: Value = serde_json::from_str(&body).expect("JSON");

    let ws = Workspace::new(STACK);
    let applied = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        applied.stdout.contains("+ uptime.relay")
            && applied.stdout.contains("+ uptime.gateway")
            && applied.stdout.contains("+ alert.relay-down"),
        "{}",
        applied.stdout
    );
    assert_eq!(checks(&emulator).len(), 3);
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(
        !plan.stdout.contains("uptime.") && !plan.stdout.contains("alert.relay-down"),
        "the re-plan is not empty:\n{}",
        plan.stdout
    );

    ws.edit("timeout = \"5s\"", "timeout = \"5s\"\nperiod = \"900s\"");
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(plan.stdout.contains("~ uptime.relay"), "{}", plan.stdout);
    assert_eq!(
        field_lines(&plan.stdout),
        vec![r#"~ period = "5m" -> "15m""#.to_string()],
        "{}",
        plan.stdout
    );
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        !ws.on(&emulator, &["plan"])
            .expect(0)
            .stdout
            .contains("uptime."),
        "the update did not converge"
    );

    // Another host cannot be patched into a check: it is replaced.
    ws.edit("https://gateway.example.com/", "https://gw.example.com/");
    let moved = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        moved.stdout.contains("forces replacement"),
        "{}",
        moved.stdout
    );
    assert!(
        !ws.on(&emulator, &["plan"])
            .expect(0)
            .stdout
            .contains("uptime."),
        "the replacement did not converge"
    );
    assert_eq!(checks(&emulator).len(), 3);

    let without_gateway = STACK.split("[uptime.gateway]").next().expect("stack");
    ws.write(&without_gateway.replace("timeout = \"5s\"", "timeout = \"5s\"\nperiod = \"900s\""));
    let removed = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        removed.stdout.contains("- uptime.gateway"),
        "{}",
        removed.stdout
    );
    let left = checks(&emulator);
    let mut hosts: Vec<&str> = left
        .iter()
        .filter_map(|c| c["monitoredResource"]["labels"]["host"].as_str())
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["relay.example.com", "relay.example.com"]);
    let untouched = left
        .iter()
        .find(|c| c["name"] == stranger["name"])
        .expect("the unowned check is still there");
    assert_eq!(untouched, &stranger);
}

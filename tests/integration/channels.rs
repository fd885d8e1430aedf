//! `[channel.NAME]` of type slack and pagerduty against the emulator: the first apply waits for
//! the secrets' values, the next creates the channels with the sensitive labels read from Secret
//! Manager, a re-plan is empty, and the token (the secret canary) reaches no output or file.

use serde_json::Value;

use crate::support::*;

const STACK: &str = r##"[stack]
name = "channels-test"
project = "test-project"
region = "us-central1"

[secret.slack-token]
[secret.pagerduty-key]

[channel.slack]
type = "slack"
channel_name = "#alerts"
auth_token = "secret.slack-token"

[channel.pager]
type = "pagerduty"
service_key = "secret.pagerduty-key"
"##;

fn set_secret(emulator: &Emulator, id: &str, value: &str) {
    let data = base64(value.as_bytes());
    let (status, body) = emulator.http(
        "POST",
        &format!("/v1/projects/test-project/secrets/{id}:addVersion"),
        Some(&format!(r#"{{"payload": {{"data": "{data}"}}}}"#)),
    );
    assert_eq!(status, 200, "adding {id}: {body}");
}

#[test]
fn slack_and_pagerduty_channels_apply_then_plan_empty_and_their_secrets_never_show() {
    let emulator = Emulator::start();
    let ws = Workspace::new(STACK);
    // The first apply creates the secrets; the channels wait for their values, which is not
    // a failure, and the plan after it has nothing an apply could do.
    let first = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        first
            .stdout
            .contains(&format!("… channel.slack: its auth_token comes from secret.slack-token, which has no value yet: store it with `stackctl secret set slack-token --endpoint {}`", emulator.url)),
        "the command reaches the same cloud as the plan: {}",
        first.stdout
    );
    let waiting = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
    assert!(
        waiting.stdout.starts_with("No changes.")
            && waiting
                .stdout
                .contains("Waiting for you (2 not made until you act")
            && waiting
                .stdout
                .contains("… channel.pager: its service_key comes from secret.pagerduty-key"),
        "{}",
        waiting.stdout
    );
    set_secret(&emulator, "slack-token", SECRET_CANARY);
    set_secret(&emulator, "pagerduty-key", SECRET_CANARY);
    let applied = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    for (what, text) in [
        ("first apply", &first.stdout),
        ("first apply stderr", &first.stderr),
        ("apply", &applied.stdout),
        ("apply stderr", &applied.stderr),
        ("plan", &plan.stdout),
        ("plan stderr", &plan.stderr),
    ] {
        assert_no_canary(what, text);
    }
    assert!(
        !plan.stdout.contains("channel."),
        "the re-plan is not empty:\n{}",
        plan.stdout
    );
    let (status, body) = emulator.http(
        "GET",
        "/v3/projects/test-project/notificationChannels",
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_no_canary("the channels Google returns", &body);
    let list: Value = serde_json::from_str(&body).expect("JSON");
    let mut types: Vec<&str> = list["notificationChannels"]
        .as_array()
        .expect("channels")
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    types.sort();
    assert_eq!(types, ["pagerduty", "slack"]);

    // Google's own client reads them back by label: the declared channel name, the sensitive
    // labels masked (never the canary).
    let read = python_readback(
        "readback_monitoring.py",
        &emulator,
        &["--project", "test-project"],
    );
    assert_no_canary("what Google's client reads", &read.to_string());
    assert_eq!(read["channels"]["slack"]["type"], "slack", "{read}");
    assert_eq!(
        read["channels"]["slack"]["labels"]["channel_name"],
        "#alerts"
    );
    assert_eq!(read["channels"]["pager"]["type"], "pagerduty");
}

#[test]
fn a_misspelled_channel_key_is_refused_with_its_fix() {
    let ws =
        Workspace::new(&STACK.replace("channel_name = \"#alerts\"", "chanel_name = \"#alerts\""));
    let run = ws.run(&["plan"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("chanel_name"), "{}", run.stderr);
}

//! `[gateway.NAME]` and `[api_key.NAME]` against the emulator: apply then an empty re-plan; Google's
//! discovery-based Python client reads the gateway, its config's document and the key's
//! restriction back; a changed quota is a new config with the gateway moved and the old config
//! deleted; `api-key show` prints the key string only with --reveal; removing the gateway deletes
//! its configs and api, and a look-alike api this stack does not own is never touched.

use serde_json::Value;

use crate::support::*;

const STACK: &str = r#"[stack]
name = "gateway-test"
project = "test-project"
region = "us-central1"

[service_account.crm-gateway]
display_name = "The CRM gateway"

[service.crm-proxy]
image = "us-docker.pkg.dev/cloudrun/container/hello"
max_instances = 2
ingress = "all"

[gateway.crm]
backend = "service.crm-proxy"
service_account = "service_account.crm-gateway"
routes = ["POST /customers"]
requests_per_minute = 60

[api_key.partner]
gateway = "gateway.crm"
display_name = "Partner integration"

[alert.partner-errors]
template = "api_gateway_error_ratio"
gateway = "gateway.crm"

[dashboard.partners]
gateways = ["gateway.crm"]
"#;

fn readback(emulator: &Emulator) -> Value {
    python_readback(
        "readback_gateway.py",
        emulator,
        &["--project", "test-project", "--region", "us-central1"],
    )
}

#[test]
fn gateways_apply_read_back_move_to_a_new_config_and_delete_only_their_own() {
    let emulator = Emulator::start();
    // An api someone else made, with the id a careless stack could pick.
    let (status, body) = emulator.http(
        "POST",
        "/v1/projects/test-project/locations/global/apis?apiId=legacy",
        Some(r#"{"displayName": "legacy"}"#),
    );
    assert_eq!(status, 200, "{body}");

    let ws = Workspace::new(STACK);
    let applied = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        applied.stdout.contains("+ gateway.crm")
            && applied.stdout.contains("+ api_key.partner")
            && applied.stdout.contains(
                "+ iam: roles/run.invoker on service.crm-proxy for service_account.crm-gateway"
            ),
        "{}",
        applied.stdout
    );
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(
        plan.stdout.starts_with("No changes."),
        "the re-plan is not empty:\n{}",
        plan.stdout
    );

    let seen = readback(&emulator);
    let gateway = &seen["gateways"]["crm"];
    assert_eq!(gateway["state"], "ACTIVE", "{gateway}");
    // The alert and the dashboard watch the managed service Google assigned to the api: the
    // plan's placeholder was filled in at apply (and the re-plan above compared the filled one).
    let managed = gateway["api"]["managedService"]
        .as_str()
        .expect("managed service");
    let watched = format!("resource.labels.service = \"{managed}\"");
    let monitoring = python_readback(
        "readback_monitoring.py",
        &emulator,
        &["--project", "test-project"],
    );
    let alert = &monitoring["alerts"]["partner-errors"]["conditions"][0]["conditionThreshold"];
    for filter in [&alert["filter"], &alert["denominatorFilter"]] {
        assert!(
            filter
                .as_str()
                .is_some_and(|f| f.replace(' ', "").contains(&watched.replace(' ', ""))),
            "{alert}"
        );
    }
    // The template's runbook goes with every notification, naming the managed service.
    let documentation = &monitoring["alerts"]["partner-errors"]["documentation"];
    assert_eq!(
        documentation["mimeType"], "text/markdown",
        "{documentation}"
    );
    let runbook = documentation["content"].as_str().unwrap_or_default();
    assert!(
        runbook.contains(&format!("API Gateway `{managed}`"))
            && !runbook.contains("(managed service of"),
        "{runbook}"
    );
    let charts: Vec<&str> = monitoring["dashboards"]["partners"]["chart_filters"]
        .as_array()
        .expect("filters")
        .iter()
        .filter_map(Value::as_str)
        .filter(|f| f.starts_with("resource.type = \"api\""))
        .collect();
    assert!(
        charts.len() == 2 && charts.iter().all(|f| f.contains(&watched)),
        "{charts:?}"
    );
    assert!(
        gateway["defaultHostname"]
            .as_str()
            .is_some_and(|h| h.starts_with("crm-") && h.ends_with(".gateway.dev")),
        "{gateway}"
    );
    assert_eq!(gateway["labels"]["stackctl-stack"], "gateway-test");
    let config = &gateway["config"];
    assert_eq!(
        config["gatewayServiceAccount"],
        "crm-gateway@test-project.iam.gserviceaccount.com"
    );
    let document = &config["openapiDocuments"][0]["document"]["parsed"];
    let backend = document["x-google-backend"]["address"].as_str().unwrap();
    assert!(
        backend.starts_with("https://crm-proxy-") && backend.ends_with(".run.app"),
        "{document}"
    );
    assert_eq!(document["x-google-backend"]["jwt_audience"], backend);
    assert!(
        document["paths"]["/customers"]["post"].is_object(),
        "{document}"
    );
    assert_eq!(
        document["x-google-management"]["quota"]["limits"][0]["values"]["STANDARD"],
        60
    );
    let managed_service = gateway["api"]["managedService"].as_str().unwrap();
    assert!(managed_service.ends_with(".apigateway.test-project.cloud.goog"));
    let key = &seen["keys"]["partner"];
    assert_eq!(
        key["restrictions"]["apiTargets"][0]["service"], managed_service,
        "{key}"
    );
    assert!(key.get("keyString").is_none(), "{key}");
    assert_eq!(key["annotations"]["stackctl-name"], "partner");

    // The key string only on request.
    let shown = ws.on(&emulator, &["api-key", "show", "partner"]).expect(0);
    assert!(
        shown.stdout.contains(managed_service) && !shown.stdout.contains("AIza"),
        "{}",
        shown.stdout
    );
    let revealed = ws
        .on(
            &emulator,
            &["api-key", "show", "api_key.partner", "--reveal"],
        )
        .expect(0);
    let key_string = revealed.stdout.lines().last().unwrap_or_default();
    assert!(
        key_string.starts_with("AIza") && key_string.len() == 39,
        "{}",
        revealed.stdout
    );
    assert!(
        !revealed.stderr.contains(key_string),
        "the key reached stderr"
    );

    // A tighter quota: one document field, a new config, the gateway moved, the old one gone.
    let first_config = config["name"].as_str().unwrap().to_string();
    ws.edit("requests_per_minute = 60", "requests_per_minute = 5");
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert_eq!(
        field_lines(&plan.stdout),
        vec!["~ openapi.x-google-management.quota.limits[0].values.STANDARD = 60 -> 5".to_string()],
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("a new config is created"),
        "{}",
        plan.stdout
    );
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let seen = readback(&emulator);
    let gateway = &seen["gateways"]["crm"];
    assert_ne!(gateway["apiConfig"], first_config.as_str());
    assert_eq!(
        gateway["configs"],
        serde_json::json!([gateway["apiConfig"]]),
        "the old config was deleted"
    );
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(
        plan.stdout.starts_with("No changes."),
        "the new config did not converge:\n{}",
        plan.stdout
    );

    // Removed from stack.toml: the key, the gateway, its configs and its api go; `legacy` stays.
    let without = STACK.split("[gateway.crm]").next().expect("stack");
    ws.write(without);
    let removed = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        removed.stdout.contains("- gateway.crm") && removed.stdout.contains("- api_key.partner"),
        "{}",
        removed.stdout
    );
    let (status, body) = emulator.http(
        "GET",
        "/v1/projects/test-project/locations/global/apis",
        None,
    );
    assert_eq!(status, 200, "{body}");
    let apis: Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = apis["apis"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        ["projects/test-project/locations/global/apis/legacy"],
        "{body}"
    );
}

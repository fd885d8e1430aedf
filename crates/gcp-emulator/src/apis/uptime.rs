//! Cloud Monitoring v3 uptime check configs: server-assigned ids, Google's checks on period,
//! timeout, regions and the monitored resource (which an update cannot change), mask and
//! no-mask patch semantics. Bodies are checked against the discovery document by the router.

use serde_json::{Value, json};

use super::{Call, Context, Reply};
use crate::conventions::ApiError;
use crate::conventions::field_mask::FieldMask;
use crate::conventions::paging::PagePolicy;
use crate::conventions::wire::{parse_duration_nanos, stable_hash};
use crate::discovery::Api;

const UPTIME_POLICY: PagePolicy = PagePolicy {
    default_size: 100,
    max_size: 1000,
    size_param: "pageSize",
    token_kind: "uptimeCheckConfigs",
};

/// The periods the API accepts ("Currently, the only supported values are 60s, 300s, 600s
/// and 900s").
const PERIODS: [i128; 4] = [60, 300, 600, 900];
const NANOS: i128 = 1_000_000_000;

fn check_name(call: &Call<'_>) -> Result<String, ApiError> {
    Ok(format!(
        "projects/{}/uptimeCheckConfigs/{}",
        call.param("projectsId")?,
        call.param("uptimeCheckConfigsId")?
    ))
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Requested entity was not found: {name}."))
}

fn invalid(message: String) -> ApiError {
    ApiError::invalid_argument(message)
}

/// Google's checks on a whole config; fills `period` (default 60s) and `checkerType`.
fn shape(mut config: Value) -> Result<Value, ApiError> {
    if config
        .get("displayName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(invalid(
            "Field uptime_check_config.display_name must not be empty.".into(),
        ));
    }
    let targets = ["monitoredResource", "resourceGroup", "syntheticMonitor"]
        .iter()
        .filter(|k| config.get(**k).is_some())
        .count();
    if targets != 1 {
        return Err(invalid(
            "Exactly one of monitored_resource, resource_group or synthetic_monitor must be set."
                .into(),
        ));
    }
    if let Some(resource) = config.get("monitoredResource")
        && resource["type"] == "uptime_url"
        && resource["labels"]["host"]
            .as_str()
            .is_none_or(str::is_empty)
    {
        return Err(invalid(
            "The monitored resource of type uptime_url needs the label host.".into(),
        ));
    }
    if config.get("period").is_none() {
        config["period"] = json!("60s");
    }
    let seconds = |key: &str| -> Result<Option<i128>, ApiError> {
        match config.get(key).and_then(Value::as_str) {
            None => Ok(None),
            Some(text) => parse_duration_nanos(text)
                .filter(|n| n % NANOS == 0)
                .map(|n| Some(n / NANOS))
                .ok_or_else(|| {
                    invalid(format!(
                        "Field uptime_check_config.{key} had an invalid value of \"{text}\"."
                    ))
                }),
        }
    };
    let period = seconds("period")?.unwrap_or(60);
    if !PERIODS.contains(&period) {
        return Err(invalid(format!(
            "Field uptime_check_config.period had an invalid value of \"{period}s\": must be one of 60s, 300s, 600s or 900s."
        )));
    }
    match seconds("timeout")? {
        Some(timeout) if (1..=60).contains(&timeout) => {}
        _ => {
            return Err(invalid(
                "Field uptime_check_config.timeout must be between 1s and 60s.".into(),
            ));
        }
    }
    let regions = config
        .get("selectedRegions")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    if regions > 0 && regions < 3 {
        return Err(invalid(
            "Field uptime_check_config.selected_regions must include at least 3 locations.".into(),
        ));
    }
    if config.get("checkerType").is_none() {
        config["checkerType"] = json!("STATIC_IP_CHECKERS");
    }
    Ok(config)
}

/// `<display-name-slug>-<hash>`, like the ids Google assigns.
fn check_id(state: &mut crate::state::State, display_name: &str) -> String {
    let slug: String = display_name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let counter = state.next_id();
    let digest = stable_hash(&["uptime-check", &counter.to_string()]);
    format!("{}-{}", slug.trim_matches('-'), &digest[..8])
}

pub fn create_check(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let project = call.param("projectsId")?.to_string();
    let mut config = shape(call.body_or_empty())?;
    let display_name = config["displayName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = format!(
        "projects/{project}/uptimeCheckConfigs/{}",
        check_id(context.state, &display_name)
    );
    config["name"] = json!(name);
    context
        .state
        .uptime_check_configs
        .insert(name, config.clone());
    Ok(Reply::Json(config))
}

pub fn get_check(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = check_name(call)?;
    context
        .state
        .uptime_check_configs
        .get(&name)
        .cloned()
        .map(Reply::Json)
        .ok_or_else(|| not_found(&name))
}

pub fn list_checks(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let prefix = format!("projects/{}/uptimeCheckConfigs/", call.param("projectsId")?);
    let checks: Vec<&Value> =
        super::collection::children(&context.state.uptime_check_configs, &prefix).collect();
    let total = checks.len();
    let mut response =
        super::collection::named_list(checks, "uptimeCheckConfigs", call.query, UPTIME_POLICY)?;
    response["totalSize"] = json!(total);
    Ok(Reply::Json(response))
}

/// With a mask only the listed fields change; without one the body replaces the config. The
/// monitored resource is fixed at create.
pub fn patch_check(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = check_name(call)?;
    let existing = context
        .state
        .uptime_check_configs
        .get(&name)
        .cloned()
        .ok_or_else(|| not_found(&name))?;
    let body = call.body_or_empty();
    let mask = FieldMask::parse(
        call.query.non_empty("updateMask"),
        context.discovery,
        Api::Monitoring,
        "UptimeCheckConfig",
    )?;
    let mut config = if mask.is_empty() {
        body.clone()
    } else {
        let mut config = existing.clone();
        mask.apply(&body, &mut config);
        config
    };
    for fixed in ["monitoredResource", "resourceGroup", "syntheticMonitor"] {
        let sent = config.get(fixed);
        if sent.is_some() && sent != existing.get(fixed) {
            return Err(invalid(format!(
                "The {} of an uptime check cannot be changed; create a new check.",
                crate::conventions::wire::snake_case(fixed)
            )));
        }
        if let Some(kept) = existing.get(fixed) {
            config[fixed] = kept.clone();
        }
    }
    config["name"] = json!(name);
    let config = shape(config)?;
    context
        .state
        .uptime_check_configs
        .insert(name, config.clone());
    Ok(Reply::Json(config))
}

pub fn delete_check(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = check_name(call)?;
    context
        .state
        .uptime_check_configs
        .remove(&name)
        .ok_or_else(|| not_found(&name))?;
    Ok(Reply::Json(json!({})))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::server::testing::TestEmulator;

    fn relay() -> serde_json::Value {
        json!({
            "displayName": "relay",
            "monitoredResource": {"type": "uptime_url", "labels": {"host": "relay.example.com", "project_id": "p1"}},
            "httpCheck": {"useSsl": true, "port": 443, "path": "/healthz", "acceptedResponseStatusCodes": [{"statusClass": 200}]},
            "period": "300s",
            "timeout": "10s",
            "userLabels": {"stackctl-stack": "s"}
        })
    }

    #[tokio::test]
    async fn uptime_checks_get_server_ids_and_patch_by_mask_but_never_their_resource() {
        let emulator = TestEmulator::with_polls(0);
        let (status, check) = emulator
            .send("POST", "/v3/projects/p1/uptimeCheckConfigs", Some(relay()))
            .await;
        assert_eq!(status, 200, "{check}");
        let name = check["name"].as_str().expect("name").to_string();
        assert!(
            name.starts_with("projects/p1/uptimeCheckConfigs/relay-"),
            "{name}"
        );
        // The Rust client sends StatusClass as its proto number (200), not its list position.
        assert_eq!(
            check["httpCheck"]["acceptedResponseStatusCodes"][0]["statusClass"],
            "STATUS_CLASS_2XX"
        );
        let (status, patched) = emulator
            .send(
                "PATCH",
                &format!("/v3/{name}?updateMask=period"),
                Some(json!({"period": "900s", "displayName": "ignored"})),
            )
            .await;
        assert_eq!(status, 200, "{patched}");
        assert_eq!(
            (patched["period"].as_str(), patched["displayName"].as_str()),
            (Some("900s"), Some("relay"))
        );
        let mut moved = relay();
        moved["monitoredResource"]["labels"]["host"] = json!("other.example.com");
        let (status, refused) = emulator
            .send("PATCH", &format!("/v3/{name}"), Some(moved))
            .await;
        assert_eq!(status, 400, "{refused}");
        let (status, list) = emulator
            .send("GET", "/v3/projects/p1/uptimeCheckConfigs", None)
            .await;
        assert_eq!(status, 200, "{list}");
        assert_eq!(list["uptimeCheckConfigs"].as_array().map(Vec::len), Some(1));
        let (status, _) = emulator.send("DELETE", &format!("/v3/{name}"), None).await;
        assert_eq!(status, 200);
        let (status, _) = emulator.send("GET", &format!("/v3/{name}"), None).await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn uptime_checks_refuse_what_google_refuses() {
        let emulator = TestEmulator::with_polls(0);
        let mut odd_period = relay();
        odd_period["period"] = json!("120s");
        let mut two_regions = relay();
        two_regions["selectedRegions"] = json!(["USA", "EUROPE"]);
        let mut unknown_field = relay();
        unknown_field["httpCheck"]["pth"] = json!("/x");
        let mut no_timeout = relay();
        no_timeout.as_object_mut().unwrap().remove("timeout");
        for (what, body) in [
            ("a 120s period", odd_period),
            ("two regions", two_regions),
            ("an unknown field", unknown_field),
            ("no timeout", no_timeout),
        ] {
            let (status, answer) = emulator
                .send("POST", "/v3/projects/p1/uptimeCheckConfigs", Some(body))
                .await;
            assert_eq!(status, 400, "{what}: {answer}");
        }
    }
}

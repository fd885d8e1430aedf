//! The API Gateway rules: GW1, a gateway whose API no one called in the idle window, and AK1, an
//! API key no one used in it. Neither costs money idle (API Gateway bills calls only); both are
//! open doors: a reachable endpoint and a live credential nobody needs.

use super::{RuleContext, finding, owned_fix, short, younger_than_window};
use crate::audit::{Finding, Rule, Severity};

pub(super) fn idle_gateway(context: &RuleContext) -> Vec<Finding> {
    let days = context.window.idle_days;
    context
        .inventory
        .gateways
        .iter()
        .filter(|gateway| !younger_than_window(context, gateway.created))
        .filter_map(|gateway| {
            let api = gateway.api.as_ref()?;
            let calls = context
                .signals
                .api_calls
                .get(&api.managed_service)
                .copied()
                .unwrap_or(0.0);
            (calls <= 0.0).then_some((gateway, api))
        })
        .map(|(gateway, api)| {
            let id = short(&gateway.name);
            finding(
                Rule::IdleGateway,
                &gateway.name,
                format!(
                    "no calls to {} in {days} days (serviceruntime.googleapis.com/api/request_count); it costs nothing idle but stays reachable at https://{} for whoever holds a key",
                    api.managed_service, gateway.default_hostname
                ),
                None,
                Severity::Low,
                owned_fix(
                    &gateway.labels,
                    "gateway",
                    id,
                    "remove the stanza (its keys first)",
                    format!(
                        "if nothing needs it: gcloud api-gateway gateways delete {id} --location={}",
                        context.inventory.region
                    ),
                ),
            )
        })
        .collect()
}

pub(super) fn unused_api_key(context: &RuleContext) -> Vec<Finding> {
    let days = context.window.idle_days;
    context
        .inventory
        .api_keys
        .iter()
        .filter(|key| {
            let calls = context
                .signals
                .credential_calls
                .get(&format!("apikey:{}", key.uid))
                .copied()
                .unwrap_or(0.0);
            calls <= 0.0
        })
        .filter(|key| !younger_than_window(context, key.created))
        .map(|key| {
            let id = short(&key.name);
            let reach = match key.api_targets.as_slice() {
                [] => "any API enabled in the project".to_string(),
                targets => targets.join(", "),
            };
            finding(
                Rule::UnusedApiKey,
                &key.name,
                format!(
                    "no calls with this key in {days} days (serviceruntime.googleapis.com/api/request_count, credential_id apikey:{}); it still opens {reach}",
                    key.uid
                ),
                None,
                if key.api_targets.is_empty() {
                    Severity::High
                } else {
                    Severity::Medium
                },
                owned_fix(
                    &key.annotations,
                    "api_key",
                    id,
                    "remove the stanza",
                    format!("if no one holds it: gcloud services api-keys delete {id}"),
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::tests::{inventory, run_audit};
    use crate::audit::Signals;
    use crate::provider::api_keys::ApiKeyRecord;
    use crate::provider::gateway::{GatewayApiRecord, GatewayRecord};

    fn gateway(id: &str) -> GatewayRecord {
        GatewayRecord {
            name: format!("projects/p/locations/us-central1/gateways/{id}"),
            display_name: id.into(),
            labels: BTreeMap::new(),
            api_config: format!("projects/p/locations/global/apis/{id}/configs/{id}-1"),
            default_hostname: format!("{id}-abc.uc.gateway.dev"),
            state: "ACTIVE".into(),
            api: Some(GatewayApiRecord {
                name: format!("projects/p/locations/global/apis/{id}"),
                managed_service: format!("{id}-0a1b.apigateway.p.cloud.goog"),
                display_name: id.into(),
                labels: BTreeMap::new(),
            }),
            config: None,
            created: None,
        }
    }

    fn key(id: &str, uid: &str, targets: &[&str]) -> ApiKeyRecord {
        ApiKeyRecord {
            other_restrictions: vec![],
            name: format!("projects/123/locations/global/keys/{id}"),
            display_name: id.into(),
            uid: uid.into(),
            api_targets: targets.iter().map(|t| t.to_string()).collect(),
            annotations: BTreeMap::new(),
            etag: "e".into(),
            created: None,
        }
    }

    #[test]
    fn a_gateway_without_calls_is_reported_and_a_called_one_is_not() {
        let mut inv = inventory(vec![], vec![]);
        inv.gateways = vec![gateway("crm"), gateway("legacy")];
        let signals = Signals {
            api_calls: BTreeMap::from([("crm-0a1b.apigateway.p.cloud.goog".into(), 4_200.0)]),
            ..Signals::default()
        };
        let findings = run_audit(&inv, &signals);
        let gw1: Vec<_> = findings.iter().filter(|f| f.1 == "GW1").collect();
        assert_eq!(gw1.len(), 1, "{findings:?}");
        assert_eq!(gw1[0].0, "legacy");
        // Made within the window: not idle for the window yet.
        inv.gateways[1].created = Some(chrono::Utc::now());
        assert!(!run_audit(&inv, &signals).iter().any(|f| f.1 == "GW1"));
    }

    #[test]
    fn an_unused_key_is_reported_and_an_unrestricted_one_is_worse() {
        let mut inv = inventory(vec![], vec![]);
        inv.api_keys = vec![
            key("partner", "u-1", &["crm-0a1b.apigateway.p.cloud.goog"]),
            key("old", "u-2", &["crm-0a1b.apigateway.p.cloud.goog"]),
            key("anything", "u-3", &[]),
        ];
        let signals = Signals {
            credential_calls: BTreeMap::from([("apikey:u-1".into(), 90.0)]),
            ..Signals::default()
        };
        let findings = run_audit(&inv, &signals);
        let ak1: Vec<_> = findings
            .iter()
            .filter(|f| f.1 == "AK1")
            .map(|f| (f.0.as_str(), f.3))
            .collect();
        assert_eq!(
            ak1,
            vec![
                ("anything", crate::audit::Severity::High),
                ("old", crate::audit::Severity::Medium)
            ],
            "{findings:?}"
        );
    }
}

//! The Cloud Monitoring rules: alert policies that notify nobody, because they name no channel
//! or every channel they name was deleted (OB3); dashboards whose charts watch services, jobs or
//! queues that no longer exist (OB5).

use std::collections::BTreeSet;

use serde_json::Value;

use super::{RuleContext, alert_cost, finding, owned_fix, short};
use crate::audit::{Finding, Rule, Severity};

pub(super) fn alert_without_channels(context: &RuleContext) -> Vec<Finding> {
    context
        .inventory
        .alerts
        .iter()
        .filter(|a| {
            a.channels
                .iter()
                .all(|c| !context.inventory.channels.contains(c))
        })
        .map(|alert| {
            let conditions = alert.conditions.len();
            let waste = alert_cost(context, alert);
            let id = short(&alert.name);
            let why = if alert.channels.is_empty() {
                "no notificationChannels".to_string()
            } else {
                format!(
                    "only deleted notificationChannels ({})",
                    alert.channels.join(", ")
                )
            };
            finding(
                Rule::AlertWithoutChannels,
                &alert.name,
                format!(
                    "`{}` ({}) has {conditions} condition(s) and {why}: an incident notifies nobody",
                    alert.display_name,
                    if alert.enabled { "enabled" } else { "disabled" }
                ),
                Some(waste),
                Severity::of_waste(waste).max(Severity::Medium),
                owned_fix(
                    &alert.user_labels,
                    "alert",
                    id,
                    "set notify = [\"channel.NAME\"]",
                    format!(
                        "gcloud alpha monitoring policies update {id} --add-notification-channels CHANNEL, or delete it"
                    ),
                ),
            )
        })
        .collect()
}

/// What a chart's filter watches, by the monitored resource type and the label naming it:
/// `(resource type, label, what it is called in a finding)`.
const WATCHED: [(&str, &str, &str); 3] = [
    ("cloud_run_revision", "service_name", "service"),
    ("cloud_run_job", "job_name", "job"),
    ("cloud_tasks_queue", "queue_id", "queue"),
];

/// The `(what, id)` pairs that the time-series filters anywhere in `dashboard` watch in
/// `region` (a filter naming another `location` is not this audit's to judge).
fn watched_by(dashboard: &Value, region: &str) -> BTreeSet<(&'static str, String)> {
    fn filters<'a>(node: &'a Value, out: &mut Vec<&'a str>) {
        match node {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("filter", Value::String(filter)) => out.push(filter),
                        _ => filters(value, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| filters(v, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    filters(dashboard, &mut found);
    let value_of = |filter: &str, key: &str| -> Option<String> {
        // `resource.labels.KEY = "V"` or `resource.label.KEY="V"`, spacing as written.
        let compact: String = filter.chars().filter(|c| !c.is_whitespace()).collect();
        [
            format!("resource.labels.{key}=\""),
            format!("resource.label.{key}=\""),
        ]
        .iter()
        .find_map(|prefix| {
            let rest = &compact[compact.find(prefix.as_str())? + prefix.len()..];
            Some(rest[..rest.find('"')?].to_string())
        })
    };
    found
        .into_iter()
        .filter(|filter| value_of(filter, "location").is_none_or(|location| location == region))
        .flat_map(|filter| {
            WATCHED
                .iter()
                .filter_map(move |(resource_type, key, what)| {
                    let compact: String = filter.chars().filter(|c| !c.is_whitespace()).collect();
                    compact
                        .contains(&format!("resource.type=\"{resource_type}\""))
                        .then(|| value_of(filter, key))
                        .flatten()
                        .map(|id| (*what, id))
                })
        })
        .collect()
}

pub(super) fn dashboard_of_deleted_resources(context: &RuleContext) -> Vec<Finding> {
    let inventory = context.inventory;
    let exists = |what: &str, id: &str| -> bool {
        let ends = format!("/{id}");
        match what {
            "service" => inventory.services.iter().any(|s| s.name.ends_with(&ends)),
            "job" => inventory.jobs.iter().any(|j| j.ends_with(&ends)),
            _ => inventory.queues.iter().any(|q| q.name.ends_with(&ends)),
        }
    };
    inventory
        .dashboards
        .iter()
        .filter_map(|dashboard| {
            let watched = watched_by(&dashboard.body, &inventory.region);
            let gone: Vec<String> = watched
                .iter()
                .filter(|(what, id)| !exists(what, id))
                .map(|(what, id)| format!("{what} {id}"))
                .collect();
            if gone.is_empty() {
                return None;
            }
            let id = short(&dashboard.name);
            Some(finding(
                Rule::DashboardOfDeletedResources,
                &dashboard.name,
                format!(
                    "`{}` charts {} of {} watched resource(s) that no longer exist in {}: {}; those charts stay empty and hide what should be watched instead",
                    dashboard.display_name,
                    gone.len(),
                    watched.len(),
                    inventory.region,
                    gone.join(", ")
                ),
                None,
                Severity::Low,
                owned_fix(
                    &dashboard.labels,
                    "dashboard",
                    id,
                    "list only what exists in services / jobs / queues (`stackctl apply` recreates a declared one deleted by hand)",
                    format!(
                        "edit its charts in the console, or delete it: gcloud monitoring dashboards delete {id}"
                    ),
                ),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::tests::{inventory, queue, report_of, service};
    use crate::audit::{Rule, Signals};
    use crate::provider::dashboards::record;
    use crate::provider::tasks::QueueState;

    fn chart(filter: &str) -> serde_json::Value {
        json!({"widget": {"xyChart": {"dataSets": [{"timeSeriesQuery": {"timeSeriesFilter": {"filter": filter}}}]}}})
    }

    #[test]
    fn a_dashboard_is_reported_for_the_watched_resources_that_are_gone_and_only_those() {
        let mut inv = inventory(
            vec![service("api", 0, true, true)],
            vec![queue("webhooks", QueueState::Running, 5)],
        );
        let stale = record(json!({
            "name": "projects/p/dashboards/stale",
            "displayName": "shop overview",
            "labels": {"stackctl-stack": "shop", "stackctl-name": "overview"},
            "mosaicLayout": {"tiles": [
                chart("resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"api\" AND metric.type = \"run.googleapis.com/request_count\""),
                chart("resource.type=\"cloud_run_revision\" AND resource.label.service_name=\"old-relay\""),
                chart("resource.type = \"cloud_tasks_queue\" AND resource.labels.queue_id = \"webhooks\""),
                chart("resource.type = \"cloud_run_job\" AND resource.labels.job_name = \"ingest\""),
                // Another region's service is not this audit's to judge.
                chart("resource.type = \"cloud_run_revision\" AND resource.labels.location = \"europe-west1\" AND resource.labels.service_name = \"eu-api\""),
            ]},
        }));
        let current = record(json!({
            "name": "projects/p/dashboards/current",
            "displayName": "hand-made",
            "gridLayout": {"widgets": [chart("resource.type = \"cloud_tasks_queue\" AND resource.labels.queue_id = \"webhooks\"")["widget"].clone()]},
        }));
        inv.dashboards = vec![stale, current];
        let findings: Vec<_> = report_of(&inv, &Signals::default())
            .findings
            .into_iter()
            .filter(|f| f.rule == Rule::DashboardOfDeletedResources)
            .collect();
        assert_eq!(findings.len(), 1, "{findings:?}");
        let finding = &findings[0];
        assert_eq!(finding.resource, "projects/p/dashboards/stale");
        assert!(
            finding
                .evidence
                .contains("charts 2 of 4 watched resource(s) that no longer exist in us-central1: job ingest, service old-relay"),
            "{}",
            finding.evidence
        );
        assert_eq!(finding.monthly_waste_usd, None);
        assert!(
            finding
                .fix
                .starts_with("stack.toml of stack `shop`: list only what exists"),
            "{}",
            finding.fix
        );
    }
}

//! Alert policy templates shipped in `templates/alerts/`, compiled into the binary.

use std::time::Duration;

use serde::Deserialize;

use super::AlertCondition;
use crate::model::ResourceAddr;

/// What a template watches: the reference key it takes in `[alert.NAME]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Needs {
    Service,
    Queue,
    Job,
    Uptime,
    Gateway,
    None,
}

/// Where a template's default threshold comes from when `[alert.NAME]` sets none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdFrom {
    /// The watched service's declared `max_instances`.
    MaxInstances,
}

/// One template file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertTemplate {
    pub needs: Needs,
    /// Replaces `threshold` as the default when the watched resource declares the value.
    #[serde(default)]
    pub threshold_from: Option<ThresholdFrom>,
    pub threshold: f64,
    pub duration: String,
    /// The policy's documentation (Markdown, sent with every notification): what fired and
    /// what to do, with the watched resource's `{service}`-style id and `{address}` filled in.
    #[serde(default)]
    pub documentation: Option<String>,
    pub condition: TemplateCondition,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateCondition {
    pub display_name: String,
    pub filter: String,
    #[serde(default)]
    pub denominator_filter: Option<String>,
    pub comparison: String,
    pub aligner: String,
    #[serde(default)]
    pub reducer: Option<String>,
    #[serde(default)]
    pub group_by: Vec<String>,
    pub period: String,
}

/// Template names and their TOML text.
pub const TEMPLATES: [(&str, &str); 8] = [
    (
        "api_gateway_error_ratio",
        include_str!("../../templates/alerts/api_gateway_error_ratio.toml"),
    ),
    (
        "bigquery_bytes_billed",
        include_str!("../../templates/alerts/bigquery_bytes_billed.toml"),
    ),
    (
        "cloud_run_5xx_ratio",
        include_str!("../../templates/alerts/cloud_run_5xx_ratio.toml"),
    ),
    (
        "cloud_run_instances_at_max",
        include_str!("../../templates/alerts/cloud_run_instances_at_max.toml"),
    ),
    (
        "cloud_run_job_failed_executions",
        include_str!("../../templates/alerts/cloud_run_job_failed_executions.toml"),
    ),
    (
        "cloud_run_p95_latency",
        include_str!("../../templates/alerts/cloud_run_p95_latency.toml"),
    ),
    (
        "cloud_tasks_queue_depth",
        include_str!("../../templates/alerts/cloud_tasks_queue_depth.toml"),
    ),
    (
        "uptime_check_failed",
        include_str!("../../templates/alerts/uptime_check_failed.toml"),
    ),
];

/// A template by name; `None` for unknown names. The shipped files are checked by a unit test.
pub fn template(name: &str) -> Option<AlertTemplate> {
    TEMPLATES
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, text)| toml::from_str(text).ok())
}

pub fn names() -> impl Iterator<Item = &'static str> {
    TEMPLATES.iter().map(|(n, _)| *n)
}

/// What an alert template's `{uptime}` becomes when the check's host is a declared service's,
/// known only once that service exists: the plan and apply put the host in its place.
pub fn service_host_placeholder(service: &ResourceAddr) -> String {
    format!("(host of {service})")
}

/// What an alert template's `{gateway}` becomes: the gateway api's managed service, assigned by
/// Google when the api is created; the plan and apply put it in its place once it exists.
pub fn gateway_service_placeholder(gateway: &ResourceAddr) -> String {
    format!("(managed service of {gateway})")
}

/// `text` with the watched resource's placeholder (`{service}`, `{queue}`, `{job}`, `{uptime}`,
/// `{gateway}`) replaced by its GCP id.
fn fill_target(text: &str, target_id: &str) -> String {
    ["{service}", "{queue}", "{job}", "{uptime}", "{gateway}"]
        .iter()
        .fold(text.to_string(), |text, placeholder| {
            text.replace(placeholder, target_id)
        })
}

impl AlertTemplate {
    /// The condition with `{service}` / `{queue}` / `{job}` replaced by the watched resource's GCP
    /// id, `{uptime}` by the checked host.
    pub fn expand(&self, target_id: &str, threshold: f64, duration: Duration) -> AlertCondition {
        let fill = |s: &str| fill_target(s, target_id);
        let c = &self.condition;
        AlertCondition {
            display_name: fill(&c.display_name),
            filter: fill(&c.filter),
            denominator_filter: c.denominator_filter.as_deref().map(fill),
            comparison: c.comparison.clone(),
            threshold,
            duration,
            aligner: c.aligner.clone(),
            reducer: c.reducer.clone(),
            group_by: c.group_by.clone(),
            period: super::units::parse_duration(&c.period).unwrap_or(Duration::from_secs(300)),
        }
    }

    /// The documentation for the resource at `address` (GCP id `target_id`); `None` when the
    /// template has none.
    pub fn documentation_for(
        &self,
        target_id: &str,
        address: Option<&ResourceAddr>,
    ) -> Option<String> {
        let text = self.documentation.as_deref()?;
        let address = address.map(ToString::to_string).unwrap_or_default();
        Some(fill_target(text, target_id).replace("{address}", &address))
    }

    pub fn default_duration(&self) -> Duration {
        super::units::parse_duration(&self.duration).unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_template_parses_and_expands() {
        for name in names() {
            let t = template(name).unwrap_or_else(|| panic!("template {name} does not parse"));
            let c = t.expand("x", t.threshold, t.default_duration());
            assert!(!c.filter.contains('{'), "{name}: {}", c.filter);
            assert!(c.comparison.starts_with("COMPARISON_"));
            // Every template carries a runbook, with every placeholder filled in.
            let address = ResourceAddr::new(crate::model::Kind::Service, "x");
            let runbook = t
                .documentation_for("x", Some(&address))
                .unwrap_or_else(|| panic!("{name} has no documentation"));
            for placeholder in [
                "{service}",
                "{queue}",
                "{job}",
                "{uptime}",
                "{gateway}",
                "{address}",
            ] {
                assert!(!runbook.contains(placeholder), "{name}: {runbook}");
            }
            assert!(runbook.chars().count() <= 8_192, "{name}");
        }
    }

    #[test]
    fn a_runbook_names_the_watched_resource_by_its_id_and_its_address() {
        let t = template("cloud_run_5xx_ratio").expect("shipped");
        let address = ResourceAddr::new(crate::model::Kind::Service, "worker");
        let runbook = t
            .documentation_for("worker-prod", Some(&address))
            .expect("documentation");
        assert!(
            runbook.contains("`worker-prod`")
                && runbook.contains("stackctl rollback service.worker"),
            "{runbook}"
        );
    }

    #[test]
    fn p95_latency_watches_the_request_latencies_distribution_of_its_service() {
        let t = template("cloud_run_p95_latency").expect("shipped");
        let c = t.expand("relay", t.threshold, t.default_duration());
        assert!(
            c.filter
                .contains("resource.labels.service_name = \"relay\"")
        );
        assert!(
            c.filter
                .contains("metric.type = \"run.googleapis.com/request_latencies\"")
        );
        assert_eq!(c.aligner, "ALIGN_PERCENTILE_95");
    }

    #[test]
    fn job_failed_executions_counts_only_failed_completions_of_its_job() {
        let t = template("cloud_run_job_failed_executions").expect("shipped");
        assert_eq!(t.needs, Needs::Job);
        let c = t.expand("shopify-ingest", t.threshold, t.default_duration());
        assert!(c.filter.contains("resource.type = \"cloud_run_job\""));
        assert!(
            c.filter
                .contains("resource.labels.job_name = \"shopify-ingest\"")
        );
        assert!(
            c.filter
                .contains("metric.type = \"run.googleapis.com/job/completed_execution_count\"")
        );
        assert!(c.filter.contains("metric.labels.result = \"failed\""));
        assert_eq!((c.comparison.as_str(), c.threshold), ("COMPARISON_GT", 0.0));
    }

    #[test]
    fn instances_at_max_compares_the_summed_instance_count_with_the_declared_cap() {
        let t = template("cloud_run_instances_at_max").expect("shipped");
        assert_eq!(t.needs, Needs::Service);
        assert_eq!(t.threshold_from, Some(ThresholdFrom::MaxInstances));
        let c = t.expand("relay", 4.0, t.default_duration());
        assert!(
            c.filter
                .contains("metric.type = \"run.googleapis.com/container/instance_count\"")
        );
        assert!(
            c.filter
                .contains("resource.labels.service_name = \"relay\"")
        );
        assert_eq!(c.comparison, "COMPARISON_GE");
        assert_eq!(c.reducer.as_deref(), Some("REDUCE_SUM"));
        assert_eq!(c.threshold, 4.0);
    }

    #[test]
    fn uptime_check_failed_counts_failing_regions_of_the_checked_host() {
        let t = template("uptime_check_failed").expect("shipped");
        assert_eq!(t.needs, Needs::Uptime);
        let c = t.expand("relay.example.com", t.threshold, t.default_duration());
        assert!(
            c.filter
                .contains("metric.type = \"monitoring.googleapis.com/uptime_check/check_passed\"")
        );
        assert!(
            c.filter
                .contains("resource.labels.host = \"relay.example.com\"")
        );
        assert_eq!(
            (c.aligner.as_str(), c.reducer.as_deref()),
            ("ALIGN_NEXT_OLDER", Some("REDUCE_COUNT_FALSE"))
        );
    }

    #[test]
    fn api_gateway_error_ratio_divides_the_non_2xx_calls_of_the_gateways_service_by_all() {
        let t = template("api_gateway_error_ratio").expect("shipped");
        assert_eq!(t.needs, Needs::Gateway);
        let gateway = ResourceAddr::new(crate::model::Kind::Gateway, "crm");
        let c = t.expand(
            &gateway_service_placeholder(&gateway),
            t.threshold,
            t.default_duration(),
        );
        let service = "resource.labels.service = \"(managed service of gateway.crm)\"";
        assert!(c.filter.contains(service), "{}", c.filter);
        assert!(
            c.filter
                .contains("metric.labels.response_code_class != \"2xx\""),
            "{}",
            c.filter
        );
        let denominator = c.denominator_filter.expect("a ratio");
        assert!(denominator.contains(service) && !denominator.contains("response_code_class"));
        assert_eq!((c.threshold, c.comparison.as_str()), (0.1, "COMPARISON_GT"));
    }
}

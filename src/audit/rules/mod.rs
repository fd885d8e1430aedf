//! The audit rules' shared plumbing: the [`RuleContext`] every rule reads, the list of rules
//! that run ([`RULES`]), the rules not checked and why ([`pending`]), and the helpers the domains
//! share (naming a finding, its owner and its fix). The rules themselves live one file a domain;
//! adding a rule is one function in its domain's file and one line in [`RULES`].

mod bigquery;
mod budgets;
mod firestore;
mod gateway;
mod monitoring;
mod ownership;
mod registry;
mod run;
mod scheduler;
mod tasks;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{Finding, Inventory, PendingRule, Rule, Severity, Signals, Windows};
use crate::cost::{PriceTable, estimate, round_usd};
use crate::provider::monitoring::AlertRecord;
use crate::resources::{NAME_LABEL, OWNER_LABEL};

pub(super) struct RuleContext<'a> {
    pub inventory: &'a Inventory,
    pub signals: &'a Signals,
    pub prices: &'a PriceTable,
    pub window: Windows,
}

type RuleFn = fn(&RuleContext) -> Vec<Finding>;

/// Every rule that runs today.
pub(super) const RULES: &[RuleFn] = &[
    run::service_without_requests,
    run::min_instances_mostly_idle,
    run::instance_billing_on_bursty_traffic,
    run::tagged_revision_keeps_min_instances,
    run::service_without_max_instances,
    run::failing_job,
    tasks::idle_queue,
    tasks::queue_retries_forever,
    tasks::paused_queue_with_backlog,
    ownership::unowned_services,
    ownership::unowned_queues,
    ownership::unowned_data_and_observability,
    registry::unused_images,
    registry::repository_without_cleanup,
    monitoring::alert_without_channels,
    monitoring::dashboard_of_deleted_resources,
    bigquery::table_without_partitioning,
    bigquery::partitions_never_expire,
    bigquery::cold_tables,
    bigquery::large_table_without_partition_filter,
    scheduler::paused_or_orphaned_schedule,
    budgets::no_budget,
    firestore::unread_database,
    gateway::idle_gateway,
    gateway::unused_api_key,
];

/// Rules the audit could not run, and why: BU1 without a billing account to read, BQ3 without
/// a complete BigQuery job history.
pub(super) fn pending(inventory: &Inventory, signals: &Signals) -> Vec<PendingRule> {
    let mut pending = Vec::new();
    if inventory.budgets.is_none() {
        pending.push(PendingRule {
            id: "BU1".into(),
            rule: "no budget for the project".into(),
            needs:
                "[stack] billing_account in stack.toml (the billing account whose budgets to read)"
                    .into(),
        });
    }
    if let Some(why) = &signals.table_reads.incomplete {
        pending.push(PendingRule {
            id: Rule::ColdTable.id().into(),
            rule: Rule::ColdTable.title().into(),
            needs: why.clone(),
        });
    }
    pending
}

/// The last segment of a resource name: its id.
fn short(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn finding(
    rule: Rule,
    resource: &str,
    evidence: String,
    monthly_waste_usd: Option<f64>,
    severity: Severity,
    fix: String,
) -> Finding {
    Finding {
        rule,
        title: rule.title().to_string(),
        resource: resource.to_string(),
        evidence,
        monthly_waste_usd,
        severity,
        fix,
        recommender: None,
    }
}

/// Whether a resource created (or first recorded) at `since` is younger than the idle window:
/// no traffic since then says nothing about a month. Unknown age counts as old.
fn younger_than_window(context: &RuleContext, since: Option<DateTime<Utc>>) -> bool {
    since.is_some_and(|since| since > context.signals.idle_since)
}

/// The stack that owns a resource (its ownership label) and the resource's `[kind.NAME]` there.
fn owner<'a>(
    labels: &'a BTreeMap<String, String>,
    kind: &str,
    id: &'a str,
) -> Option<(&'a str, String)> {
    let stack = labels.get(OWNER_LABEL)?;
    let name = labels.get(NAME_LABEL).map_or(id, String::as_str);
    Some((stack, format!("[{kind}.{name}]")))
}

/// The stack.toml change for a resource carrying `labels`, or `fallback` for one no stack owns.
fn owned_fix(
    labels: &BTreeMap<String, String>,
    kind: &str,
    id: &str,
    change: &str,
    fallback: String,
) -> String {
    match owner(labels, kind, id) {
        Some((stack, address)) => {
            format!("stack.toml of stack `{stack}`: {change} in {address}, then `stackctl apply`")
        }
        None => fallback,
    }
}

/// Bytes in the GB of Artifact Registry's and BigQuery's storage prices (Google bills binary
/// gigabytes).
const GIB: f64 = (1u64 << 30) as f64;

fn gib(bytes: u64) -> f64 {
    bytes as f64 / GIB
}

/// What an alert policy costs a month: its conditions' fee.
fn alert_cost(context: &RuleContext, alert: &AlertRecord) -> f64 {
    let conditions = u32::try_from(alert.conditions.len()).unwrap_or(u32::MAX);
    round_usd(estimate::alert(context.prices, conditions).monthly_usd)
}

/// What a Scheduler job costs a month, paused or not.
fn schedule_fee(context: &RuleContext) -> f64 {
    round_usd(estimate::schedule(context.prices).monthly_usd)
}

/// The fixtures the domains' tests share, and the tests that cross domains.
#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use chrono::{DateTime, Utc};

    use super::super::{AuditReport, Inventory, Severity, Signals, Windows, audit};
    use super::short;
    use crate::cost::PriceTable;
    use crate::provider::artifacts::DockerImageRecord;
    use crate::provider::run::{IngressKind, RevisionRecord, ServiceRecord, TrafficRecord};
    use crate::provider::tasks::{QueueRecord, QueueState};
    use crate::resources::{NAME_LABEL, OWNER_LABEL};

    pub(super) const P: &str = "projects/p/locations/us-central1";

    pub(super) fn service(id: &str, min: i32, cpu_idle: bool, owned: bool) -> ServiceRecord {
        let mut labels = BTreeMap::new();
        if owned {
            labels.insert(OWNER_LABEL.to_string(), "shop".to_string());
        }
        ServiceRecord {
            urls: vec![],
            secret_env: Default::default(),
            service_account: String::new(),
            name: format!("{P}/services/{id}"),
            labels,
            etag: String::new(),
            generation: 1,
            uri: String::new(),
            reconciling: false,
            latest_ready_revision: format!("{P}/services/{id}/revisions/{id}-2"),
            latest_created_revision: String::new(),
            failure: None,
            ingress: IngressKind::All,
            service_max_instances: 3,
            image: "img".into(),
            env: BTreeMap::new(),
            limits: BTreeMap::from([
                ("cpu".into(), "1".into()),
                ("memory".into(), "512Mi".into()),
            ]),
            cpu_idle,
            public: false,
            startup_probe: None,
            liveness_probe: None,
            min_instances: min,
            max_instances: 3,
            concurrency: 80,
            timeout: None,
            traffic: vec![],
            created: None,
        }
    }

    pub(super) fn queue(id: &str, state: QueueState, max_attempts: i32) -> QueueRecord {
        QueueRecord {
            name: format!("{P}/queues/{id}"),
            state,
            max_dispatches_per_second: 500.0,
            max_concurrent_dispatches: 100,
            max_attempts,
            min_backoff: Some(Duration::from_secs(1)),
            max_backoff: Some(Duration::from_secs(300)),
            max_doublings: 16,
            max_retry_duration: None,
            http_target: None,
        }
    }

    pub(super) fn windows() -> Windows {
        Windows {
            idle_days: 30,
            traffic_days: 14,
            cold_table_days: 90,
        }
    }

    pub(super) fn report_of(inventory: &Inventory, signals: &Signals) -> AuditReport {
        audit(
            inventory,
            signals,
            &PriceTable::builtin("us-central1"),
            windows(),
        )
    }

    pub(super) fn run_audit(
        inventory: &Inventory,
        signals: &Signals,
    ) -> Vec<(String, &'static str, Option<f64>, Severity)> {
        report_of(inventory, signals)
            .findings
            .into_iter()
            .map(|f| {
                (
                    short(&f.resource).to_string(),
                    f.rule.id(),
                    f.monthly_waste_usd,
                    f.severity,
                )
            })
            .collect()
    }

    pub(super) fn inventory(services: Vec<ServiceRecord>, queues: Vec<QueueRecord>) -> Inventory {
        let ledgered = queues.iter().map(|q| (q.name.clone(), None)).collect();
        Inventory {
            project: "p".into(),
            region: "us-central1".into(),
            services,
            revisions: BTreeMap::new(),
            queues,
            ledgered,
            ..Inventory::default()
        }
    }

    #[test]
    fn a_healthy_project_has_no_findings() {
        let inv = inventory(
            vec![service("api", 0, true, true)],
            vec![queue("q", QueueState::Running, 5)],
        );
        let signals = Signals {
            requests: BTreeMap::from([("api".into(), 1000.0)]),
            hours_with_traffic: BTreeMap::from([("api".into(), 300)]),
            queue_depth_max: BTreeMap::new(),
            queue_attempts: BTreeMap::from([("q".into(), 50.0)]),
            ..Signals::default()
        };
        assert_eq!(run_audit(&inv, &signals), vec![]);
    }

    #[test]
    fn each_rule_fires_on_its_case_priced_and_sorted_by_money() {
        let mut tagged = service("tagged", 0, true, true);
        tagged.traffic = vec![
            TrafficRecord {
                revision: "tagged-2".into(),
                percent: 100,
                tag: None,
            },
            TrafficRecord {
                revision: "tagged-1".into(),
                percent: 0,
                tag: Some("canary".into()),
            },
        ];
        let mut uncapped = service("stray", 0, true, false);
        uncapped.service_max_instances = 0;
        let mut inv = inventory(
            vec![
                service("ghost", 1, true, true),
                service("warm", 2, true, true),
                service("steady", 1, false, true),
                tagged,
                uncapped,
            ],
            vec![
                queue("stuck", QueueState::Paused, 5),
                queue("forever", QueueState::Running, -1),
                queue("quiet", QueueState::Running, 5),
            ],
        );
        inv.revisions.insert(
            format!("{P}/services/tagged"),
            vec![RevisionRecord {
                name: format!("{P}/services/tagged/revisions/tagged-1"),
                min_instances: 1,
                limits: BTreeMap::from([
                    ("cpu".into(), "2".into()),
                    ("memory".into(), "1Gi".into()),
                ]),
                cpu_idle: true,
                id: "tagged-1".into(),
                create_time: "2026-11-01T00:00:00Z".into(),
                image: "img".into(),
                readiness: crate::provider::run::Readiness::Ready,
            }],
        );
        inv.queues.push(queue("foreign", QueueState::Running, 5));
        let signals = Signals {
            requests: BTreeMap::from([
                ("warm".into(), 10.0),
                ("steady".into(), 10.0),
                ("tagged".into(), 10.0),
                ("stray".into(), 10.0),
            ]),
            hours_with_traffic: BTreeMap::from([
                ("warm".into(), 84),
                ("steady".into(), 2),
                ("tagged".into(), 336),
                ("stray".into(), 336),
            ]),
            queue_depth_max: BTreeMap::from([("stuck".into(), 40.0)]),
            queue_attempts: BTreeMap::from([("forever".into(), 9.0), ("foreign".into(), 1.0)]),
            ..Signals::default()
        };
        assert_eq!(
            run_audit(&inv, &signals),
            vec![
                // 49.248 − 9.72 (instance-based vs request-based idle, 1 vCPU / 512 MiB).
                ("steady".into(), "CR3", Some(39.528), Severity::High),
                // 2 vCPU / 1 GiB idle: 2 × 6.48 + 6.48.
                ("tagged-1".into(), "CR5", Some(19.44), Severity::Medium),
                // 2 × 9.72 × (1 − 84/336).
                ("warm".into(), "CR2", Some(14.58), Severity::Medium),
                ("ghost".into(), "CR1", Some(9.72), Severity::Medium),
                ("stray".into(), "CR9", None, Severity::High),
                ("forever".into(), "CT2", None, Severity::Medium),
                ("stuck".into(), "CT3", None, Severity::Medium),
                ("foreign".into(), "OWN1", Some(0.0), Severity::Low),
                ("quiet".into(), "CT1", Some(0.0), Severity::Low),
                ("stray".into(), "OWN1", Some(0.0), Severity::Low),
            ]
        );
    }

    #[test]
    fn resources_younger_than_the_idle_window_are_not_called_idle() {
        let at = |day: &str| {
            DateTime::parse_from_rfc3339(&format!("{day}T00:00:00Z"))
                .unwrap()
                .with_timezone(&Utc)
        };
        let mut young = service("young", 1, true, true);
        young.created = Some(at("2026-11-20"));
        let mut old = service("old", 1, true, true);
        old.created = Some(at("2026-09-01"));
        let mut inv = inventory(
            vec![young, old],
            vec![
                queue("fresh", QueueState::Running, 0),
                queue("stale", QueueState::Running, 0),
            ],
        );
        inv.ledgered
            .insert(format!("{P}/queues/fresh"), Some(at("2026-11-20")));
        let signals = Signals {
            idle_since: at("2026-10-26"),
            ..Signals::default()
        };
        let found: Vec<(String, &str)> = run_audit(&inv, &signals)
            .into_iter()
            .map(|(resource, rule, _, _)| (resource, rule))
            .collect();
        assert_eq!(
            found,
            vec![("old".to_string(), "CR1"), ("stale".to_string(), "CT1")]
        );
    }

    pub(super) fn image(
        repository: &str,
        package: &str,
        digest: &str,
        tags: &[&str],
        bytes: u64,
    ) -> DockerImageRecord {
        DockerImageRecord {
            name: format!("{repository}/dockerImages/{package}@sha256:{digest}"),
            uri: format!("us-central1-docker.pkg.dev/p/apps/{package}@sha256:{digest}"),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            size_bytes: bytes,
        }
    }

    #[test]
    fn images_repositories_and_alerts_rules_price_what_they_can() {
        use crate::provider::artifacts::RepositoryRecord;
        use crate::provider::monitoring::AlertRecord;
        let repository = format!("{P}/repositories/apps");
        let tidy = format!("{P}/repositories/tidy");
        let mut api = service("api", 0, true, true);
        api.image = "us-central1-docker.pkg.dev/p/apps/api:v2".into();
        let mut inv = inventory(vec![api], vec![]);
        inv.revisions.insert(
            format!("{P}/services/api"),
            vec![RevisionRecord {
                name: format!("{P}/services/api/revisions/api-1"),
                min_instances: 0,
                limits: BTreeMap::new(),
                cpu_idle: true,
                id: "api-1".into(),
                create_time: "2026-11-01T00:00:00Z".into(),
                image: "us-central1-docker.pkg.dev/p/apps/api@sha256:bbb".into(),
                readiness: crate::provider::run::Readiness::Ready,
            }],
        );
        inv.repositories = vec![
            RepositoryRecord {
                name: repository.clone(),
                format: "DOCKER".into(),
                labels: BTreeMap::new(),
                keep_recent: None,
                delete_untagged_after: None,
                policies: vec![],
            },
            RepositoryRecord {
                name: tidy.clone(),
                format: "DOCKER".into(),
                labels: BTreeMap::from([(OWNER_LABEL.to_string(), "shop".to_string())]),
                keep_recent: Some(10),
                delete_untagged_after: None,
                policies: vec!["keep-recent".into()],
            },
        ];
        inv.images = BTreeMap::from([
            (
                repository.clone(),
                vec![
                    // Run by tag (the service) and by digest (the revision): no finding.
                    image(&repository, "api", "aaa", &["v2"], 1 << 30),
                    image(&repository, "api", "bbb", &[], 1 << 30),
                    // 3 GiB × $0.10.
                    image(&repository, "api", "ccc", &["v1"], 3 << 30),
                ],
            ),
            // 512 MiB × $0.10 = $0.05, untagged.
            (
                tidy.clone(),
                vec![image(&tidy, "job", "ddd", &[], 512 << 20)],
            ),
        ]);
        let alert = |id: &str, channels: Vec<String>, conditions: usize| AlertRecord {
            documentation: None,
            severity: None,
            name: format!("projects/p/alertPolicies/{id}"),
            display_name: id.into(),
            user_labels: BTreeMap::from([
                (OWNER_LABEL.to_string(), "shop".to_string()),
                (NAME_LABEL.to_string(), id.to_string()),
            ]),
            enabled: true,
            combiner: "OR".into(),
            conditions: vec![None; conditions],
            channels,
        };
        inv.alerts = vec![
            alert("silent", vec![], 2),
            alert("loud", vec!["projects/p/notificationChannels/1".into()], 1),
        ];
        inv.channels =
            std::collections::BTreeSet::from(["projects/p/notificationChannels/1".to_string()]);
        let signals = Signals {
            requests: BTreeMap::from([("api".into(), 1000.0)]),
            hours_with_traffic: BTreeMap::from([("api".into(), 300)]),
            ..Signals::default()
        };
        // Its only channel deleted, "loud" notifies nobody either.
        let mut orphaned = inv.clone();
        orphaned.channels.clear();
        let findings = report_of(&orphaned, &signals).findings;
        let loud = findings
            .iter()
            .find(|f| f.resource.ends_with("/loud"))
            .expect("loud is reported once its channel is gone");
        assert!(
            loud.evidence
                .contains("only deleted notificationChannels (projects/p/notificationChannels/1)"),
            "{}",
            loud.evidence
        );
        assert_eq!(
            findings
                .iter()
                .filter(|f| f.rule == crate::audit::Rule::AlertWithoutChannels)
                .count(),
            2
        );
        assert_eq!(
            run_audit(&inv, &signals),
            vec![
                // 2 conditions × $1.50, medium at least: nobody hears it fire.
                ("silent".into(), "OB3", Some(3.0), Severity::Medium),
                ("api@sha256:ccc".into(), "AR1", Some(0.3), Severity::Low),
                ("job@sha256:ddd".into(), "AR1", Some(0.05), Severity::Low),
                ("apps".into(), "AR2", None, Severity::Medium),
                ("apps".into(), "OWN1", Some(0.0), Severity::Low),
            ]
        );
        let report = report_of(&inv, &signals);
        let fixes: Vec<&str> = report.findings.iter().map(|f| f.fix.as_str()).collect();
        assert_eq!(
            fixes,
            vec![
                "stack.toml of stack `shop`: set notify = [\"channel.NAME\"] in [alert.silent], then `stackctl apply`",
                "delete it: gcloud artifacts docker images delete us-central1-docker.pkg.dev/p/apps/api@sha256:ccc",
                "stack.toml of stack `shop`: set keep_recent = N and delete_untagged_after = \"30d\" (cleanup deletes old versions) in [repository.tidy], then `stackctl apply`",
                "declare [repository.apps] with keep_recent and delete_untagged_after and run `stackctl adopt repository.apps`, or: gcloud artifacts repositories set-cleanup-policies apps --policy FILE",
                "declare [repository.apps] and run `stackctl adopt repository.apps`, or delete it",
            ]
        );
    }
}

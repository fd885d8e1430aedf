//! The audit rules, one function each over the inventory and signals. Adding a rule (a new kind's
//! Scheduler, BigQuery, Artifact Registry, budget or alert-policy check) is one function in
//! [`RULES`] plus the inventory field it reads; [`pending`] lists the ones not written yet.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::{Finding, Inventory, PendingRule, Rule, Severity, Signals, Windows};
use crate::config::units::{parse_cpu, parse_memory};
use crate::cost::estimate::TableUsage;
use crate::cost::{PriceItem, PriceTable, ServiceSizing, estimate, round_usd};
use crate::provider::artifacts::DockerImageRecord;
use crate::provider::bigquery::TableRecord;
use crate::provider::run::ServiceRecord;
use crate::provider::tasks::QueueState;
use crate::resources::{NAME_LABEL, OWNER_LABEL};

/// Traffic in fewer than this share of hours makes a service "mostly idle" / "bursty".
const BUSY_HOURS_SHARE: f64 = 0.5;

pub(super) struct RuleContext<'a> {
    pub inventory: &'a Inventory,
    pub signals: &'a Signals,
    pub prices: &'a PriceTable,
    pub window: Windows,
}

type RuleFn = fn(&RuleContext) -> Vec<Finding>;

/// Every rule that runs today.
pub(super) const RULES: &[RuleFn] = &[
    service_without_requests,
    min_instances_mostly_idle,
    instance_billing_on_bursty_traffic,
    tagged_revision_keeps_min_instances,
    service_without_max_instances,
    idle_queue,
    queue_retries_forever,
    paused_queue_with_backlog,
    unowned_services,
    unowned_queues,
    unowned_data_and_observability,
    unused_images,
    repository_without_cleanup,
    alert_without_channels,
    table_without_partitioning,
    partitions_never_expire,
    cold_tables,
    large_table_without_partition_filter,
    paused_or_orphaned_schedule,
    no_budget,
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

fn short(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// The sizing of a container from its `resources.limits`, Cloud Run's defaults when unset.
fn sizing(limits: &BTreeMap<String, String>, min_instances: i32, cpu_idle: bool) -> ServiceSizing {
    ServiceSizing {
        cpu_millis: limits
            .get("cpu")
            .and_then(|c| parse_cpu(c).ok())
            .unwrap_or(1000),
        memory_bytes: limits
            .get("memory")
            .and_then(|m| parse_memory(m).ok())
            .unwrap_or(512 << 20),
        min_instances: u32::try_from(min_instances).unwrap_or(0),
        cpu_idle,
    }
}

/// What a service's min instances cost per month (their fixed cost, no usage).
fn min_instance_cost(context: &RuleContext, service: &ServiceRecord) -> f64 {
    let s = sizing(&service.limits, service.min_instances, service.cpu_idle);
    estimate::service(context.prices, s, None, &service.name).monthly_usd
}

/// The stack.toml change for an owned service, or `fallback` for one no stack owns.
fn service_fix(service: &ServiceRecord, change: &str, fallback: String) -> String {
    match service.labels.get(OWNER_LABEL) {
        Some(stack) => format!(
            "stack.toml of stack `{stack}`: {change} in [service.{}], then `stackctl apply`",
            short(&service.name)
        ),
        None => fallback,
    }
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

fn hours_in(days: u32) -> u32 {
    days * 24
}

/// Whether a resource created (or first recorded) at `since` is younger than the idle window:
/// no traffic since then says nothing about a month. Unknown age counts as old.
fn younger_than_window(context: &RuleContext, since: Option<DateTime<Utc>>) -> bool {
    since.is_some_and(|since| since > context.signals.idle_since)
}

fn service_without_requests(context: &RuleContext) -> Vec<Finding> {
    let days = context.window.idle_days;
    context
        .inventory
        .services
        .iter()
        .filter(|s| !younger_than_window(context, s.created))
        .filter(|s| {
            context
                .signals
                .requests
                .get(short(&s.name))
                .copied()
                .unwrap_or(0.0)
                <= 0.0
        })
        .map(|service| {
            let waste = min_instance_cost(context, service);
            let evidence = format!(
                "0 requests in {days} days (run.googleapis.com/request_count); min_instances = {}",
                service.min_instances
            );
            let fallback = format!(
                "delete it: gcloud run services delete {} --region {}",
                short(&service.name),
                context.inventory.region
            );
            finding(
                Rule::ServiceWithoutRequests,
                &service.name,
                evidence,
                Some(waste),
                Severity::of_waste(waste),
                match owner(&service.labels, "service", short(&service.name)) {
                    Some((stack, address)) if service.min_instances > 0 => format!(
                        "stack.toml of stack `{stack}`: remove {address} (or set min_instances = 0 in it), then `stackctl apply`"
                    ),
                    Some((stack, address)) => format!(
                        "stack.toml of stack `{stack}`: remove {address} if nothing calls it, then `stackctl apply`"
                    ),
                    None => fallback,
                },
            )
        })
        .collect()
}

/// Hours with traffic over the traffic window, for a service that had some requests.
fn busy_share(context: &RuleContext, service: &ServiceRecord) -> Option<(u32, f64)> {
    let id = short(&service.name);
    if context.signals.requests.get(id).copied().unwrap_or(0.0) <= 0.0 {
        return None; // CR1's case.
    }
    let busy = context
        .signals
        .hours_with_traffic
        .get(id)
        .copied()
        .unwrap_or(0);
    let total = hours_in(context.window.traffic_days).max(1);
    Some((busy, f64::from(busy) / f64::from(total)))
}

fn min_instances_mostly_idle(context: &RuleContext) -> Vec<Finding> {
    let days = context.window.traffic_days;
    context
        .inventory
        .services
        .iter()
        .filter(|s| s.cpu_idle && s.min_instances > 0)
        .filter_map(|service| {
            let (busy, share) = busy_share(context, service)?;
            if share >= BUSY_HOURS_SHARE {
                return None;
            }
            let waste = min_instance_cost(context, service) * (1.0 - share);
            Some(finding(
                Rule::MinInstancesMostlyIdle,
                &service.name,
                format!(
                    "min_instances = {} but traffic in {busy} of {} hours over {days} days",
                    service.min_instances,
                    hours_in(days)
                ),
                Some(crate::cost::round_usd(waste)),
                Severity::of_waste(waste),
                service_fix(
                    service,
                    "set min_instances = 0",
                    format!(
                        "gcloud run services update {} --min-instances 0",
                        short(&service.name)
                    ),
                ),
            ))
        })
        .collect()
}

fn instance_billing_on_bursty_traffic(context: &RuleContext) -> Vec<Finding> {
    let days = context.window.traffic_days;
    context
        .inventory
        .services
        .iter()
        .filter(|s| !s.cpu_idle)
        .filter_map(|service| {
            let (busy, share) = busy_share(context, service)?;
            if share >= BUSY_HOURS_SHARE {
                return None;
            }
            // What the same min instances cost idle under request-based billing, instead.
            let waste = (service.min_instances > 0).then(|| {
                let instance = min_instance_cost(context, service);
                let request = estimate::service(
                    context.prices,
                    sizing(&service.limits, service.min_instances, true),
                    None,
                    &service.name,
                )
                .monthly_usd;
                crate::cost::round_usd((instance - request).max(0.0))
            });
            let severity = waste.map_or(Severity::Medium, Severity::of_waste);
            let mut found = finding(
                Rule::InstanceBillingOnBurstyTraffic,
                &service.name,
                format!(
                    "cpu_idle = false (instance-based billing) with traffic in {busy} of {} hours over {days} days; min_instances = {}",
                    hours_in(days),
                    service.min_instances
                ),
                waste,
                severity,
                service_fix(
                    service,
                    "set cpu_idle = true",
                    format!("gcloud run services update {} --cpu-throttling", short(&service.name)),
                ),
            );
            found.recommender = Some(
                "google.run.service.CostRecommender (reports the opposite case: when instance-based billing is cheaper)".into(),
            );
            Some(found)
        })
        .collect()
}

fn tagged_revision_keeps_min_instances(context: &RuleContext) -> Vec<Finding> {
    let mut out = Vec::new();
    for service in &context.inventory.services {
        let revisions = context
            .inventory
            .revisions
            .get(&service.name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for traffic in &service.traffic {
            let Some(tag) = &traffic.tag else { continue };
            if traffic.percent > 0 {
                continue;
            }
            let Some(revision) = revisions
                .iter()
                .find(|r| short(&r.name) == traffic.revision && r.min_instances > 0)
            else {
                continue;
            };
            let s = sizing(&revision.limits, revision.min_instances, revision.cpu_idle);
            let waste = estimate::service(context.prices, s, None, &revision.name).monthly_usd;
            out.push(finding(
                Rule::TaggedRevisionKeepsMinInstances,
                &revision.name,
                format!(
                    "tag `{tag}` routes 0% of traffic to it, and it keeps min_instances = {}",
                    revision.min_instances
                ),
                Some(waste),
                Severity::of_waste(waste),
                format!(
                    "remove the tag: gcloud run services update-traffic {} --remove-tags {tag} (stackctl sends all traffic to the latest revision)",
                    short(&service.name)
                ),
            ));
        }
    }
    out
}

fn service_without_max_instances(context: &RuleContext) -> Vec<Finding> {
    context
        .inventory
        .services
        .iter()
        .filter(|s| s.service_max_instances <= 0)
        .map(|service| {
            finding(
                Rule::ServiceWithoutMaxInstances,
                &service.name,
                format!(
                    "scaling.maxInstanceCount is unset: it may scale to Cloud Run's default limit (revision cap: {})",
                    if service.max_instances > 0 {
                        service.max_instances.to_string()
                    } else {
                        "none".into()
                    }
                ),
                None,
                Severity::High,
                service_fix(
                    service,
                    "set max_instances = N",
                    format!(
                        "declare it in a stack with max_instances (stackctl adopt), or: gcloud run services update {} --max-instances N",
                        short(&service.name)
                    ),
                ),
            )
        })
        .collect()
}

fn idle_queue(context: &RuleContext) -> Vec<Finding> {
    let days = context.window.idle_days;
    context
        .inventory
        .queues
        .iter()
        .filter(|q| q.state == QueueState::Running)
        .filter(|q| {
            let recorded = context.inventory.ledgered.get(&q.name).copied().flatten();
            !younger_than_window(context, recorded)
        })
        .filter(|q| {
            let id = short(&q.name);
            context.signals.queue_attempts.get(id).copied().unwrap_or(0.0) <= 0.0
                && context.signals.queue_depth_max.get(id).copied().unwrap_or(0.0) <= 0.0
        })
        .map(|queue| {
            finding(
                Rule::IdleQueue,
                &queue.name,
                format!("no tasks queued and no attempts in {days} days (queue/depth, queue/task_attempt_count)"),
                Some(0.0),
                Severity::Low,
                format!(
                    "remove [queue.{}] from stack.toml (stackctl pauses it), or delete it if no stack owns it",
                    short(&queue.name)
                ),
            )
        })
        .collect()
}

fn queue_retries_forever(context: &RuleContext) -> Vec<Finding> {
    context
        .inventory
        .queues
        .iter()
        .filter(|q| q.max_attempts == -1 && q.max_retry_duration.is_none_or(|d| d.is_zero()))
        .map(|queue| {
            finding(
                Rule::QueueRetriesForever,
                &queue.name,
                "max_attempts = -1 (unlimited) and no max_retry_duration: a failing task is retried until the queue's 31-day retention".into(),
                None,
                Severity::Medium,
                format!(
                    "set max_attempts = 5 (or a max_retry_duration) in [queue.{}]",
                    short(&queue.name)
                ),
            )
        })
        .collect()
}

fn paused_queue_with_backlog(context: &RuleContext) -> Vec<Finding> {
    let days = context.window.idle_days;
    context
        .inventory
        .queues
        .iter()
        .filter(|q| q.state == QueueState::Paused)
        .filter_map(|queue| {
            let depth = context
                .signals
                .queue_depth_max
                .get(short(&queue.name))
                .copied()
                .unwrap_or(0.0);
            (depth > 0.0).then(|| {
                finding(
                    Rule::PausedQueueWithBacklog,
                    &queue.name,
                    format!("PAUSED with up to {depth} tasks waiting in {days} days (queue/depth max)"),
                    None,
                    Severity::Medium,
                    format!(
                        "declare [queue.{}] in stack.toml to resume it, or purge it: gcloud tasks queues purge {}",
                        short(&queue.name),
                        short(&queue.name)
                    ),
                )
            })
        })
        .collect()
}

fn unowned_services(context: &RuleContext) -> Vec<Finding> {
    context
        .inventory
        .services
        .iter()
        .filter(|s| !s.labels.contains_key(OWNER_LABEL))
        .map(|s| {
            unowned(
                &s.name,
                "service",
                no_label("label"),
                min_instance_cost(context, s),
            )
        })
        .collect()
}

fn unowned_queues(context: &RuleContext) -> Vec<Finding> {
    let evidence = "in no stack's ownership ledger (stackctl/*/ledger.json in the state bucket)";
    context
        .inventory
        .queues
        .iter()
        .filter(|q| !context.inventory.ledgered.contains_key(&q.name))
        .map(|q| unowned(&q.name, "queue", evidence.into(), 0.0))
        .collect()
}

/// One OWN1 finding: `resource` is managed by no stack; `waste` is what it costs a month.
fn unowned(resource: &str, kind: &str, evidence: String, waste: f64) -> Finding {
    let id = short(resource);
    finding(
        Rule::Unowned,
        resource,
        evidence,
        Some(waste),
        Severity::of_waste(waste),
        format!("declare [{kind}.{id}] and run `stackctl adopt {kind}.{id}`, or delete it"),
    )
}

fn no_label(label: &str) -> String {
    format!("no `{OWNER_LABEL}` {label}: no stack manages it")
}

/// Repositories, tables and alert policies without the ownership label, and Scheduler jobs in
/// no ledger, priced at what they cost a month (a table: its storage).
fn unowned_data_and_observability(context: &RuleContext) -> Vec<Finding> {
    let inventory = context.inventory;
    let repositories = inventory
        .repositories
        .iter()
        .filter(|r| !r.labels.contains_key(OWNER_LABEL))
        .map(|r| unowned(&r.name, "repository", no_label("label"), 0.0));
    let tables = plain_tables(context)
        .filter(|t| !t.labels.contains_key(OWNER_LABEL))
        .map(|t| {
            let waste = table_storage_cost(context, t, t.num_bytes.unwrap_or(0));
            unowned(&t.name, "table", no_label("label"), waste)
        });
    let alerts = inventory
        .alerts
        .iter()
        .filter(|a| !a.user_labels.contains_key(OWNER_LABEL))
        .map(|a| {
            let conditions = u32::try_from(a.conditions.len()).unwrap_or(u32::MAX);
            let waste = round_usd(estimate::alert(context.prices, conditions).monthly_usd);
            let evidence = format!("`{}`: {}", a.display_name, no_label("user label"));
            unowned(&a.name, "alert", evidence, waste)
        });
    let schedules = inventory
        .schedules
        .iter()
        .filter(|s| !inventory.ledgered.contains_key(&s.name))
        .map(|s| {
            let waste = round_usd(estimate::schedule(context.prices).monthly_usd);
            let evidence =
                "in no stack's ownership ledger (stackctl/*/ledger.json in the state bucket)";
            unowned(&s.name, "schedule", evidence.into(), waste)
        });
    repositories
        .chain(tables)
        .chain(alerts)
        .chain(schedules)
        .collect()
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

/// Bytes in the GB of Artifact Registry's storage price (Google bills binary gigabytes).
const GIB: f64 = (1u64 << 30) as f64;

/// Whether a container image reference (`REGISTRY/PACKAGE[:TAG][@sha256:...]`) names `image`.
fn runs(reference: &str, image: &DockerImageRecord) -> bool {
    let Some((base, digest)) = image.uri.split_once('@') else {
        return reference == image.uri;
    };
    if let Some((_, used)) = reference.split_once('@') {
        return used == digest && reference.starts_with(base);
    }
    let tag = match reference.strip_prefix(base) {
        Some("") => "latest",
        Some(rest) => match rest.strip_prefix(':') {
            Some(tag) => tag,
            None => return false,
        },
        None => return false,
    };
    image.tags.iter().any(|t| t == tag)
}

fn unused_images(context: &RuleContext) -> Vec<Finding> {
    let inventory = context.inventory;
    let running: BTreeSet<&str> = inventory
        .revisions
        .values()
        .flatten()
        .map(|r| r.image.as_str())
        .chain(inventory.services.iter().map(|s| s.image.as_str()))
        .collect();
    let price = context.prices.usd(PriceItem::ArtifactRegistryGbMonth);
    let mut out = Vec::new();
    for (repository, images) in &inventory.images {
        let labels = inventory
            .repositories
            .iter()
            .find(|r| &r.name == repository)
            .map(|r| r.labels.clone())
            .unwrap_or_default();
        for image in images {
            if running.iter().any(|r| runs(r, image)) {
                continue;
            }
            let gib = image.size_bytes as f64 / GIB;
            let waste = round_usd(gib * price);
            let tags = if image.tags.is_empty() {
                "untagged".to_string()
            } else {
                format!("tags {}", image.tags.join(", "))
            };
            out.push(finding(
                Rule::UnusedImage,
                &image.name,
                format!(
                    "{} bytes ({gib:.2} GiB at ${price:.2}/GiB-month), {tags}; no Cloud Run revision in {} runs it",
                    image.size_bytes, inventory.region
                ),
                Some(waste),
                Severity::of_waste(waste),
                owned_fix(
                    &labels,
                    "repository",
                    short(repository),
                    "set keep_recent = N and delete_untagged_after = \"30d\" (cleanup deletes old versions)",
                    format!("delete it: gcloud artifacts docker images delete {}", image.uri),
                ),
            ));
        }
    }
    out
}

fn repository_without_cleanup(context: &RuleContext) -> Vec<Finding> {
    context
        .inventory
        .repositories
        .iter()
        .filter(|r| r.policies.is_empty())
        .map(|repository| {
            let id = short(&repository.name);
            let count = context
                .inventory
                .images
                .get(&repository.name)
                .map_or(0, Vec::len);
            finding(
                Rule::RepositoryWithoutCleanup,
                &repository.name,
                format!(
                    "no cleanup policies (cleanupPolicies is empty): its {count} image(s) and every pushed version are kept forever"
                ),
                None,
                Severity::Medium,
                owned_fix(
                    &repository.labels,
                    "repository",
                    id,
                    "set keep_recent = 10 and delete_untagged_after = \"30d\"",
                    format!(
                        "declare [repository.{id}] with keep_recent and delete_untagged_after and run `stackctl adopt repository.{id}`, or: gcloud artifacts repositories set-cleanup-policies {id} --policy FILE"
                    ),
                ),
            )
        })
        .collect()
}

fn alert_without_channels(context: &RuleContext) -> Vec<Finding> {
    context
        .inventory
        .alerts
        .iter()
        .filter(|a| a.channels.is_empty())
        .map(|alert| {
            let conditions = u32::try_from(alert.conditions.len()).unwrap_or(u32::MAX);
            let waste = round_usd(estimate::alert(context.prices, conditions).monthly_usd);
            let id = short(&alert.name);
            finding(
                Rule::AlertWithoutChannels,
                &alert.name,
                format!(
                    "`{}` ({}) has {conditions} condition(s) and no notificationChannels: an incident notifies nobody",
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

/// A table at least this large (logical bytes) makes an unfiltered query expensive (BQ4).
const LARGE_TABLE_BYTES: u64 = 100 << 30;

fn gib(bytes: u64) -> f64 {
    bytes as f64 / GIB
}

/// The size a finding's evidence quotes: `numBytes` or "size not reported".
fn size_text(bytes: Option<u64>) -> String {
    bytes.map_or("size not reported".into(), |b| {
        format!("{b} logical bytes ({:.2} GiB)", gib(b))
    })
}

/// Tables that store rows: not views (materialized ones manage their own storage), external
/// tables or snapshots. A table whose type is not reported counts.
fn plain_tables<'a>(context: &'a RuleContext) -> impl Iterator<Item = &'a TableRecord> {
    context
        .inventory
        .tables
        .iter()
        .filter(|t| t.view.is_none() && (t.kind.is_empty() || t.kind == "TABLE"))
}

fn table_fix(table: &TableRecord, change: &str, fallback: String) -> String {
    owned_fix(&table.labels, "table", &table.table_id, change, fallback)
}

/// Google's Recommender for tables whose queries a partitioning or clustering would cut.
const PARTITION_CLUSTER_RECOMMENDER: &str = "google.bigquery.table.PartitionClusterRecommender (suggests a partitioning or clustering column from the queries it sees, with the bytes it would save)";

fn table_without_partitioning(context: &RuleContext) -> Vec<Finding> {
    plain_tables(context)
        .filter(|t| t.partition.is_none())
        .map(|table| {
            let large = table.num_bytes.is_some_and(|b| b >= LARGE_TABLE_BYTES);
            let mut found = finding(
                Rule::TableWithoutPartitioning,
                &table.name,
                format!(
                    "no timePartitioning: every query scans the whole table; {}",
                    size_text(table.num_bytes)
                ),
                None,
                if large { Severity::Medium } else { Severity::Low },
                table_fix(
                    table,
                    "set partition = { field = \"COLUMN\" } (forces a replacement: copy the data first)",
                    format!(
                        "recreate it partitioned: bq query --destination_table {}.{}_partitioned --time_partitioning_field COLUMN 'SELECT * FROM {}.{}'",
                        table.dataset_id, table.table_id, table.dataset_id, table.table_id
                    ),
                ),
            );
            found.recommender = Some(PARTITION_CLUSTER_RECOMMENDER.into());
            found
        })
        .collect()
}

fn partitions_never_expire(context: &RuleContext) -> Vec<Finding> {
    let price = context
        .prices
        .usd(PriceItem::BigQueryLongTermStorageGibMonth);
    plain_tables(context)
        .filter(|t| t.partition.as_ref().is_some_and(|p| p.expiration.is_none()))
        .map(|table| {
            // What expiring partitions unmodified for 90 days would stop storing.
            let waste = table.long_term_bytes.map(|b| round_usd(gib(b) * price));
            let long_term = table.long_term_bytes.map_or("not reported".into(), |b| {
                format!("{b} bytes ({:.2} GiB at ${price:.2}/GiB-month)", gib(b))
            });
            finding(
                Rule::PartitionsNeverExpire,
                &table.name,
                format!(
                    "partitioned without timePartitioning.expirationMs: partitions are kept forever; {}, long-term (unmodified 90 days): {long_term}",
                    size_text(table.num_bytes)
                ),
                waste,
                waste.map_or(Severity::Low, Severity::of_waste),
                table_fix(
                    table,
                    "add expiration = \"730d\" to partition",
                    format!(
                        "bq update --time_partitioning_expiration SECONDS {}.{}",
                        table.dataset_id, table.table_id
                    ),
                ),
            )
        })
        .collect()
}

/// A cold table smaller than this is not reported: its storage costs under $0.02 a month.
const COLD_TABLE_MIN_BYTES: u64 = 1 << 30;

/// Tables (type TABLE: not views, external tables or snapshots, which are kept unread on purpose)
/// created before the cold-table window that no finished job read in it, priced at a month of
/// their logical storage.
/// A month of a table's logical storage, `bytes` of it (the long-term part at its rate).
fn table_storage_cost(context: &RuleContext, table: &TableRecord, bytes: u64) -> f64 {
    let long_term = table.long_term_bytes.unwrap_or(0).min(bytes);
    let usage = TableUsage {
        active_gib: gib(bytes - long_term),
        long_term_gib: gib(long_term),
        scanned_tib_per_month: 0.0,
    };
    round_usd(estimate::table(context.prices, Some(&usage), &table.name).monthly_usd)
}

fn cold_tables(context: &RuleContext) -> Vec<Finding> {
    let reads = &context.signals.table_reads;
    if reads.incomplete.is_some() {
        return vec![];
    }
    let days = context.window.cold_table_days;
    plain_tables(context)
        .filter(|t| {
            reads
                .last_read
                .get(&t.name)
                .is_none_or(|read| *read < reads.since)
        })
        .filter_map(|table| {
            let created = table.created.filter(|c| *c < reads.since)?;
            let bytes = table.num_bytes.filter(|b| *b >= COLD_TABLE_MIN_BYTES)?;
            let waste = table_storage_cost(context, table, bytes);
            let long_term = table.long_term_bytes.unwrap_or(0).min(bytes);
            let (dataset, id) = (&table.dataset_id, &table.table_id);
            let export = format!(
                "bq extract --destination_format AVRO {dataset}.{id} 'gs://BUCKET/{dataset}.{id}-*.avro'"
            );
            let fix = match owner(&table.labels, "table", id) {
                Some((stack, address)) => format!(
                    "stack.toml of stack `{stack}`: remove {address}, then `stackctl apply --allow-data-loss` (first `{export}` if it may be needed again)"
                ),
                None => format!(
                    "if nothing needs it: `{export}` to keep a copy, then `bq rm -t {dataset}.{id}`; or let it expire: `bq update --expiration SECONDS {dataset}.{id}`"
                ),
            };
            Some(finding(
                Rule::ColdTable,
                &table.name,
                format!(
                    "no query, copy or extract job read it in {days} days ({} finished jobs of all users since {}); created {}; {}, {:.2} GiB of it long-term. Reads through the Storage Read API or by jobs of other projects leave no job here",
                    reads.jobs,
                    reads.since.format("%Y-%m-%d"),
                    created.format("%Y-%m-%d"),
                    size_text(Some(bytes)),
                    gib(long_term)
                ),
                Some(waste),
                Severity::of_waste(waste),
                fix,
            ))
        })
        .collect()
}

fn large_table_without_partition_filter(context: &RuleContext) -> Vec<Finding> {
    let price = context.prices.usd(PriceItem::BigQueryScannedTib);
    plain_tables(context)
        .filter(|t| t.partition.is_some() && !t.require_partition_filter)
        .filter_map(|table| {
            let bytes = table.num_bytes.filter(|b| *b >= LARGE_TABLE_BYTES)?;
            let scan = bytes as f64 / (GIB * 1024.0) * price;
            Some(finding(
                Rule::LargeTableWithoutPartitionFilter,
                &table.name,
                format!(
                    "{}; requirePartitionFilter is false: one query without a partition filter scans all of it (${scan:.2} on demand)",
                    size_text(Some(bytes))
                ),
                None,
                Severity::Medium,
                table_fix(
                    table,
                    "set require_partition_filter = true",
                    format!(
                        "bq update --require_partition_filter {}.{}",
                        table.dataset_id, table.table_id
                    ),
                ),
            ))
        })
        .collect()
}

/// Why a Scheduler job's Cloud Run target is gone: a `…/jobs/J:run` URL of a job that does not
/// exist, or a `*.run.app` URL no service answers.
fn missing_target(context: &RuleContext, uri: &str) -> Option<String> {
    if let Some(job) = uri
        .strip_prefix("https://run.googleapis.com/v2/")
        .and_then(|rest| rest.strip_suffix(":run"))
    {
        return (!context.inventory.jobs.contains(job))
            .then(|| format!("its target Cloud Run job {job} does not exist"));
    }
    let host = uri.strip_prefix("https://")?.split('/').next()?;
    if !host.ends_with(".run.app") {
        return None;
    }
    let served = context.inventory.services.iter().any(|s| {
        s.uri
            .strip_prefix("https://")
            .is_some_and(|h| h.trim_end_matches('/') == host)
    });
    (!served).then(|| format!("no Cloud Run service answers its target {host}"))
}

fn paused_or_orphaned_schedule(context: &RuleContext) -> Vec<Finding> {
    let fee = round_usd(estimate::schedule(context.prices).monthly_usd);
    context
        .inventory
        .schedules
        .iter()
        .filter_map(|schedule| {
            let orphaned = schedule
                .uri
                .as_deref()
                .and_then(|uri| missing_target(context, uri));
            let paused = schedule.state == "PAUSED";
            let evidence = match (paused, orphaned) {
                (true, Some(why)) => format!("PAUSED, and {why}"),
                (true, None) => format!("PAUSED: `{}` never fires", schedule.schedule),
                (false, Some(why)) => format!("{}: {why}; every run fails", schedule.state),
                (false, None) => return None,
            };
            let id = short(&schedule.name);
            Some(finding(
                Rule::PausedOrOrphanedSchedule,
                &schedule.name,
                format!("{evidence} (a Scheduler job costs ${fee:.2}/month paused or not)"),
                Some(fee),
                Severity::of_waste(fee),
                format!(
                    "remove [schedule.{id}] from its stack.toml, or delete it: gcloud scheduler jobs delete {id} --location {}",
                    context.inventory.region
                ),
            ))
        })
        .collect()
}

fn no_budget(context: &RuleContext) -> Vec<Finding> {
    let Some(scope) = &context.inventory.budgets else {
        return vec![];
    };
    let project = &context.inventory.project;
    let covers = |b: &crate::provider::budgets::BudgetRecord| {
        b.projects.is_empty()
            || b.projects
                .iter()
                .any(|p| p == &scope.project_number || p == &format!("projects/{project}"))
    };
    if scope.budgets.iter().any(covers) {
        return vec![];
    }
    vec![finding(
        Rule::NoBudget,
        &format!("projects/{project}"),
        format!(
            "none of the {} budget(s) of billing account {} covers {} ({project}): overspend alerts nobody",
            scope.budgets.len(),
            scope.billing_account,
            scope.project_number
        ),
        None,
        Severity::Medium,
        "add a [budget.monthly] table (amount_usd, thresholds, notify) to stack.toml, then `stackctl apply`"
            .into(),
    )]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use super::super::{AuditReport, Inventory, Signals, Windows, audit};
    use super::*;
    use crate::provider::bigquery::{JobReadRecord, PartitionRecord, TableRecord, ViewRecord};
    use crate::provider::run::{IngressKind, RevisionRecord, TrafficRecord};
    use crate::provider::tasks::QueueRecord;

    const P: &str = "projects/p/locations/us-central1";

    fn service(id: &str, min: i32, cpu_idle: bool, owned: bool) -> ServiceRecord {
        let mut labels = BTreeMap::new();
        if owned {
            labels.insert(OWNER_LABEL.to_string(), "shop".to_string());
        }
        ServiceRecord {
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
            min_instances: min,
            max_instances: 3,
            concurrency: 80,
            timeout: None,
            traffic: vec![],
            created: None,
        }
    }

    fn queue(id: &str, state: QueueState, max_attempts: i32) -> QueueRecord {
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

    fn windows() -> Windows {
        Windows {
            idle_days: 30,
            traffic_days: 14,
            cold_table_days: 90,
        }
    }

    fn report_of(inventory: &Inventory, signals: &Signals) -> AuditReport {
        audit(
            inventory,
            signals,
            &PriceTable::builtin("us-central1"),
            windows(),
        )
    }

    fn run_audit(
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

    fn inventory(services: Vec<ServiceRecord>, queues: Vec<QueueRecord>) -> Inventory {
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

    fn image(
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
        let signals = Signals {
            requests: BTreeMap::from([("api".into(), 1000.0)]),
            hours_with_traffic: BTreeMap::from([("api".into(), 300)]),
            ..Signals::default()
        };
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

    #[test]
    fn an_image_reference_runs_an_image_by_digest_tag_or_implicit_latest() {
        let repository = format!("{P}/repositories/apps");
        let i = image(&repository, "api", "aaa", &["v1", "latest"], 1);
        let base = "us-central1-docker.pkg.dev/p/apps/api";
        assert!(runs(&format!("{base}@sha256:aaa"), &i));
        assert!(runs(&format!("{base}:v1@sha256:aaa"), &i));
        assert!(runs(&format!("{base}:v1"), &i));
        assert!(runs(base, &i));
        assert!(!runs(&format!("{base}:v2"), &i));
        assert!(!runs(&format!("{base}@sha256:bbb"), &i));
        assert!(!runs(&format!("{base}-old:v1"), &i));
    }

    /// A table of stack `shop`; `partition`: `Some(expiration days)` when partitioned.
    fn table(
        id: &str,
        partition: Option<Option<u64>>,
        require: bool,
        bytes: Option<u64>,
        long_term: Option<u64>,
    ) -> TableRecord {
        TableRecord {
            name: format!("projects/p/datasets/raw/tables/{id}"),
            dataset_id: "raw".into(),
            table_id: id.into(),
            kind: "TABLE".into(),
            etag: String::new(),
            labels: BTreeMap::from([(OWNER_LABEL.to_string(), "shop".to_string())]),
            columns: vec![],
            partition: partition.map(|days| PartitionRecord {
                granularity: "DAY".into(),
                field: Some("at".into()),
                expiration: days.map(|d| Duration::from_secs(d * 86_400)),
            }),
            cluster_by: vec![],
            require_partition_filter: require,
            view: None,
            num_bytes: bytes,
            long_term_bytes: long_term,
            created: None,
        }
    }

    #[test]
    fn table_rules_price_expiring_long_term_storage_and_flag_large_unfiltered_tables() {
        let mut view = table("mv", None, false, Some(1 << 40), None);
        view.view = Some(ViewRecord {
            query: "SELECT 1".into(),
            refresh_interval: None,
        });
        // Unpartitioned, but neither stores rows of its own: no finding.
        let mut external = table("lake", None, false, Some(1 << 40), None);
        external.kind = "EXTERNAL".into();
        let mut snapshot = table("events_backup", None, false, Some(1 << 40), None);
        snapshot.kind = "SNAPSHOT".into();
        let mut inv = inventory(vec![], vec![]);
        inv.tables = vec![
            external,
            snapshot,
            table("events", None, false, Some(200 << 30), None),
            table("small", None, false, None, None),
            table("logs", Some(None), false, Some(512 << 30), Some(300 << 30)),
            table(
                "orders",
                Some(Some(730)),
                true,
                Some(1 << 40),
                Some(1 << 39),
            ),
            view,
        ];
        assert_eq!(
            run_audit(&inv, &Signals::default()),
            vec![
                // 300 GiB long-term × $0.01.
                ("logs".into(), "BQ2", Some(3.0), Severity::Low),
                ("events".into(), "BQ1", None, Severity::Medium),
                // 512 GiB ≥ 100 GiB: an unfiltered query scans 0.5 TiB × $6.25.
                ("logs".into(), "BQ4", None, Severity::Medium),
                ("small".into(), "BQ1", None, Severity::Low),
            ]
        );
        let report = report_of(&inv, &Signals::default());
        let bq4 = report
            .findings
            .iter()
            .find(|f| f.rule == Rule::LargeTableWithoutPartitionFilter)
            .map(|f| (f.evidence.as_str(), f.fix.as_str()));
        assert_eq!(
            bq4,
            Some((
                "549755813888 logical bytes (512.00 GiB); requirePartitionFilter is false: one query without a partition filter scans all of it ($3.12 on demand)",
                "stack.toml of stack `shop`: set require_partition_filter = true in [table.logs], then `stackctl apply`"
            ))
        );
    }

    #[test]
    fn tables_older_than_the_window_that_no_job_read_in_it_cost_their_storage() {
        use super::super::TableReads;
        let day = |date: &str| {
            chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .expect("date")
                .and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
        };
        let name = |id: &str| format!("projects/p/datasets/raw/tables/{id}");
        let job = |id: &str, created: &str, tables: &[&str]| JobReadRecord {
            job_id: id.into(),
            created: day(created),
            tables_read: tables.iter().map(|t| name(t)).collect(),
            child_jobs: 0,
            redacted: false,
        };
        // Partitioned with expiration and a required filter: only the cold-table rule applies.
        let kept = |id: &str, created: &str, gib: u64, long_term_gib: u64| TableRecord {
            created: Some(day(created)),
            ..table(
                id,
                Some(Some(730)),
                true,
                Some(gib << 30),
                Some(long_term_gib << 30),
            )
        };
        let mut tiny = kept("tiny", "2026-01-01", 0, 0);
        tiny.num_bytes = Some(512 << 20);
        let mut unsized_table = kept("unsized", "2026-01-01", 0, 0);
        unsized_table.num_bytes = None;
        let mut backup = kept("backup", "2026-01-01", 100, 100);
        backup.kind = "SNAPSHOT".into();
        let mut foreign = kept("foreign", "2026-01-01", 2, 2);
        foreign.labels.clear();
        let mut inv = inventory(vec![], vec![]);
        inv.tables = vec![
            kept("archive", "2026-01-01", 500, 400),
            kept("daily", "2026-01-01", 50, 0),
            kept("stale", "2026-01-01", 10, 0),
            kept("fresh", "2026-10-15", 50, 0),
            tiny,
            unsized_table,
            backup,
            foreign,
        ];
        let since = day("2026-09-01");
        let reads = TableReads::of(
            since,
            &[
                job("q1", "2026-09-15", &["daily", "fresh"]),
                job("q2", "2026-10-01", &["daily"]),
                job("old", "2026-08-01", &["stale"]),
            ],
        );
        assert_eq!(
            (reads.jobs, reads.last_read.get(&name("daily"))),
            (3, Some(&day("2026-10-01")))
        );
        let signals = Signals {
            table_reads: reads,
            ..Signals::default()
        };
        assert_eq!(
            run_audit(&inv, &signals),
            vec![
                // 100 GiB active × $0.02 + 400 GiB long-term × $0.01.
                ("archive".into(), "BQ3", Some(6.0), Severity::Medium),
                // Read before the window only: 10 GiB active × $0.02.
                ("stale".into(), "BQ3", Some(0.2), Severity::Low),
                // 2 GiB long-term × $0.01, unread and owned by no stack.
                ("foreign".into(), "OWN1", Some(0.02), Severity::Low),
                ("foreign".into(), "BQ3", Some(0.02), Severity::Low),
            ]
        );
        let report = report_of(&inv, &signals);
        let texts: Vec<(&str, &str)> = report
            .findings
            .iter()
            .map(|f| (f.evidence.as_str(), f.fix.as_str()))
            .collect();
        assert_eq!(
            texts[0],
            (
                "no query, copy or extract job read it in 90 days (3 finished jobs of all users since 2026-09-01); created 2026-01-01; 536870912000 logical bytes (500.00 GiB), 400.00 GiB of it long-term. Reads through the Storage Read API or by jobs of other projects leave no job here",
                "stack.toml of stack `shop`: remove [table.archive], then `stackctl apply --allow-data-loss` (first `bq extract --destination_format AVRO raw.archive 'gs://BUCKET/raw.archive-*.avro'` if it may be needed again)"
            )
        );
        assert_eq!(
            texts[3].1,
            "if nothing needs it: `bq extract --destination_format AVRO raw.foreign 'gs://BUCKET/raw.foreign-*.avro'` to keep a copy, then `bq rm -t raw.foreign`; or let it expire: `bq update --expiration SECONDS raw.foreign`"
        );

        // One of another user's jobs came back redacted: whatever it read is unknown, so no
        // table is called cold and BQ3 is reported as not checked.
        let mut redacted = job("theirs", "2026-10-02", &[]);
        redacted.redacted = true;
        let reads = TableReads::of(since, &[job("q1", "2026-09-15", &["daily"]), redacted]);
        let signals = Signals {
            table_reads: reads,
            ..Signals::default()
        };
        let report = report_of(&inv, &signals);
        assert!(report.findings.iter().all(|f| f.rule != Rule::ColdTable));
        let pending: Vec<(&str, &str)> = report
            .not_yet_checked
            .iter()
            .map(|p| (p.id.as_str(), p.needs.as_str()))
            .collect();
        assert!(
            pending.contains(&(
                "BQ3",
                "1 of 2 jobs came back redacted: the caller needs bigquery.jobs.listAll (roles/bigquery.resourceViewer) to see what other users' jobs read"
            )),
            "{pending:?}"
        );
    }

    #[test]
    fn paused_or_orphaned_schedules_cost_their_monthly_fee() {
        use crate::provider::scheduler::ScheduleRecord;
        let schedule = |id: &str, state: &str, uri: &str| ScheduleRecord {
            name: format!("{P}/jobs/{id}"),
            schedule: "0 * * * *".into(),
            time_zone: "UTC".into(),
            state: state.into(),
            uri: Some(uri.into()),
            http_method: "POST".into(),
            oauth_service_account: String::new(),
            oauth_scope: String::new(),
        };
        let run = |job: &str| format!("https://run.googleapis.com/v2/{P}/jobs/{job}:run");
        let mut api = service("api", 0, true, true);
        api.uri = "https://api-abc-uc.a.run.app".into();
        let mut inv = inventory(vec![api], vec![]);
        inv.jobs = BTreeSet::from([format!("{P}/jobs/nightly")]);
        inv.schedules = vec![
            schedule("ok", "ENABLED", &run("nightly")),
            schedule("ping", "ENABLED", "https://api-abc-uc.a.run.app/ping"),
            schedule("held", "PAUSED", &run("nightly")),
            schedule("gone", "ENABLED", &run("deleted")),
            schedule("dead-url", "ENABLED", "https://old-abc-uc.a.run.app/x"),
            schedule("elsewhere", "ENABLED", "https://example.com/hook"),
        ];
        // Every schedule but `elsewhere` is in a ledger: that one is also owned by no stack.
        let ledgered = inv
            .schedules
            .iter()
            .filter(|s| !s.name.ends_with("/elsewhere"));
        let ledgered: Vec<String> = ledgered.map(|s| s.name.clone()).collect();
        inv.ledgered
            .extend(ledgered.into_iter().map(|name| (name, None)));
        let signals = Signals {
            requests: BTreeMap::from([("api".into(), 1000.0)]),
            hours_with_traffic: BTreeMap::from([("api".into(), 300)]),
            ..Signals::default()
        };
        // $0.10 per job-month each.
        assert_eq!(
            run_audit(&inv, &signals),
            vec![
                ("dead-url".into(), "SC1", Some(0.1), Severity::Low),
                ("elsewhere".into(), "OWN1", Some(0.1), Severity::Low),
                ("gone".into(), "SC1", Some(0.1), Severity::Low),
                ("held".into(), "SC1", Some(0.1), Severity::Low),
            ]
        );
        let report = report_of(&inv, &signals);
        // Paused and unowned-broken jobs are counted once each in the total: 4 x $0.10.
        assert_eq!(report.total_monthly_waste_usd, 0.4);
        assert_eq!(
            report.findings[2].evidence,
            format!(
                "ENABLED: its target Cloud Run job {P}/jobs/deleted does not exist; every run fails (a Scheduler job costs $0.10/month paused or not)"
            )
        );
    }

    #[test]
    fn a_project_without_a_covering_budget_is_found_and_no_account_is_not_checked() {
        use super::super::BudgetScope;
        use crate::provider::budgets::BudgetRecord;
        let budget = |projects: &[&str]| BudgetRecord {
            name: "billingAccounts/A/budgets/b".into(),
            display_name: "b".into(),
            projects: projects.iter().map(|p| p.to_string()).collect(),
            amount: None,
            thresholds: vec![],
            channels: vec![],
            etag: String::new(),
        };
        let mut inv = inventory(vec![], vec![]);
        assert_eq!(pending(&inv, &Signals::default()).len(), 1);
        assert_eq!(run_audit(&inv, &Signals::default()), vec![]);
        let scope = |budgets| {
            Some(BudgetScope {
                billing_account: "A".into(),
                project_number: "projects/123".into(),
                budgets,
            })
        };
        inv.budgets = scope(vec![budget(&["projects/999"])]);
        assert_eq!(pending(&inv, &Signals::default()), vec![]);
        assert_eq!(
            run_audit(&inv, &Signals::default()),
            vec![("p".into(), "BU1", None, Severity::Medium)]
        );
        inv.budgets = scope(vec![budget(&["projects/999"]), budget(&["projects/123"])]);
        assert_eq!(run_audit(&inv, &Signals::default()), vec![]);
        // A budget without a project filter covers the whole account.
        inv.budgets = scope(vec![budget(&[])]);
        assert_eq!(run_audit(&inv, &Signals::default()), vec![]);
    }
}

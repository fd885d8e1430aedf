//! Pure monthly estimators, one per kind, from a resource's sizing and its `[usage]` assumption.
//!
//! Cloud Run, request-based billing (`cpu_idle = true`):
//! - active instance-seconds `A = requests × avg_request_ms / 1000 / avg_concurrency`
//!   (avg_concurrency defaults to 1: each request bills its own instance time);
//! - vCPU and GiB are billed at the request-based rates for `A`, plus $0.40 per million requests;
//! - min instances `M = min_instances × 30 days`: warm instances serve requests first, so the
//!   idle part `max(0, M − A)` is billed at the idle vCPU rate and the full GiB rate.
//!
//! Cloud Run, instance-based billing (`cpu_idle = false`): every instance-second is billed at the
//! instance rates, `max(M, A)` of them (min instances run all month; load above them adds
//! instances), and there is no per-request fee.
//!
//! Fractional CPU is priced as fractional. A resource without usage keeps its fixed costs (min
//! instances, a scheduler job, alert conditions) and names the unknown part instead of $0.

use serde::{Deserialize, Serialize};

use super::prices::{PriceItem, PriceTable, SECONDS_PER_MONTH};
use crate::config::{FirestoreUsage, GatewayUsage, QueueUsage, ServiceUsage};

const GIB: f64 = (1u64 << 30) as f64;

/// What a cost line pays for. Closed: every line of every estimate is one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// Request-based: vCPU while serving requests.
    ActiveCpu,
    /// Request-based: memory while serving requests.
    ActiveMemory,
    /// Request-based: the per-request fee.
    Requests,
    /// Request-based: vCPU of min instances while idle (the idle rate).
    MinInstanceIdleCpu,
    /// Request-based: memory of min instances while idle (the full rate).
    MinInstanceIdleMemory,
    /// Instance-based: vCPU for every instance-second.
    InstanceCpu,
    /// Instance-based: memory for every instance-second.
    InstanceMemory,
    /// Cloud Run jobs: vCPU while tasks run (instance-based rates).
    TaskCpu,
    /// Cloud Run jobs: memory while tasks run (instance-based rates).
    TaskMemory,
    /// Cloud Tasks: task creation calls and push attempts.
    TaskOperations,
    /// BigQuery: logical storage modified in the last 90 days.
    ActiveStorage,
    /// BigQuery: logical storage unmodified for 90 days.
    LongTermStorage,
    /// BigQuery: on-demand bytes scanned.
    QueryScanning,
    /// Artifact Registry: stored images.
    ImageStorage,
    /// Cloud Scheduler: the job itself.
    SchedulerJob,
    /// Cloud Monitoring: alert policy conditions.
    AlertConditions,
    /// Firestore: document reads.
    DocumentReads,
    /// Firestore: document writes.
    DocumentWrites,
    /// Firestore: document deletes.
    DocumentDeletes,
    /// Firestore: stored data.
    DocumentStorage,
    /// API Gateway: calls through the gateway.
    GatewayCalls,
}

impl Component {
    pub fn price_item(self) -> PriceItem {
        match self {
            Component::ActiveCpu => PriceItem::RunRequestVcpuSecond,
            Component::ActiveMemory | Component::MinInstanceIdleMemory => {
                PriceItem::RunRequestGibSecond
            }
            Component::Requests => PriceItem::RunRequest,
            Component::MinInstanceIdleCpu => PriceItem::RunIdleMinInstanceVcpuSecond,
            Component::InstanceCpu | Component::TaskCpu => PriceItem::RunInstanceVcpuSecond,
            Component::InstanceMemory | Component::TaskMemory => PriceItem::RunInstanceGibSecond,
            Component::TaskOperations => PriceItem::TasksOperation,
            Component::ActiveStorage => PriceItem::BigQueryActiveStorageGibMonth,
            Component::LongTermStorage => PriceItem::BigQueryLongTermStorageGibMonth,
            Component::QueryScanning => PriceItem::BigQueryScannedTib,
            Component::ImageStorage => PriceItem::ArtifactRegistryGbMonth,
            Component::SchedulerJob => PriceItem::SchedulerJobMonth,
            Component::AlertConditions => PriceItem::AlertConditionMonth,
            Component::DocumentReads => PriceItem::FirestoreRead,
            Component::DocumentWrites => PriceItem::FirestoreWrite,
            Component::DocumentDeletes => PriceItem::FirestoreDelete,
            Component::DocumentStorage => PriceItem::FirestoreStorageGibMonth,
            Component::GatewayCalls => PriceItem::ApiGatewayCall,
        }
    }

    /// How the breakdown names it.
    pub fn describe(self) -> &'static str {
        match self {
            Component::ActiveCpu => "vCPU while serving",
            Component::ActiveMemory => "memory while serving",
            Component::Requests => "requests",
            Component::MinInstanceIdleCpu => "min instances, idle vCPU",
            Component::MinInstanceIdleMemory => "min instances, idle memory",
            Component::InstanceCpu => "vCPU, always allocated",
            Component::InstanceMemory => "memory, always allocated",
            Component::TaskCpu => "vCPU while tasks run",
            Component::TaskMemory => "memory while tasks run",
            Component::TaskOperations => "task operations",
            Component::ActiveStorage => "active storage",
            Component::LongTermStorage => "long-term storage",
            Component::QueryScanning => "on-demand scanning",
            Component::ImageStorage => "image storage",
            Component::SchedulerJob => "scheduler job",
            Component::AlertConditions => "alert conditions",
            Component::DocumentReads => "document reads",
            Component::DocumentWrites => "document writes",
            Component::DocumentDeletes => "document deletes",
            Component::DocumentStorage => "document storage",
            Component::GatewayCalls => "gateway calls",
        }
    }
}

/// One priced line: `quantity` units of `component` at `unit_usd`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostLine {
    pub component: Component,
    pub quantity: f64,
    /// The price item's unit (`vCPU-second`, `request`, ...).
    pub unit: String,
    pub unit_usd: f64,
    pub monthly_usd: f64,
}

/// A resource's monthly cost: the priced lines, and what could not be priced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Sum of `lines` (the known part).
    pub monthly_usd: f64,
    pub lines: Vec<CostLine>,
    /// Why the usage-dependent part is unknown, e.g. `no [usage] for service.worker`.
    pub unknown: Option<String>,
}

/// Rounds to a hundredth of a cent, so JSON shows `9.72`, not `9.719999999`.
pub fn round_usd(usd: f64) -> f64 {
    let rounded = (usd * 10_000.0).round() / 10_000.0;
    // An empty float sum is -0.0; never print "$-0.00".
    if rounded == 0.0 { 0.0 } else { rounded }
}

impl Estimate {
    /// Nothing: a resource that does not exist (before a create, after a delete).
    pub fn zero() -> Self {
        Self::default()
    }

    /// A cost stackctl cannot estimate, with the reason shown to the user.
    pub fn unknown(reason: String) -> Self {
        Self::from_lines(vec![], Some(reason))
    }

    fn from_lines(lines: Vec<CostLine>, unknown: Option<String>) -> Self {
        let lines: Vec<CostLine> = lines.into_iter().filter(|l| l.quantity > 0.0).collect();
        let monthly_usd = round_usd(lines.iter().map(|l| l.monthly_usd).sum());
        Self {
            monthly_usd,
            lines,
            unknown,
        }
    }
}

fn line(prices: &PriceTable, component: Component, quantity: f64) -> CostLine {
    let item = component.price_item();
    let unit_usd = prices.usd(item);
    CostLine {
        component,
        quantity,
        unit: prices.price(item).unit.to_string(),
        unit_usd,
        monthly_usd: round_usd(quantity * unit_usd),
    }
}

/// The sizing of a Cloud Run service that its cost depends on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceSizing {
    pub cpu_millis: u32,
    pub memory_bytes: u64,
    pub min_instances: u32,
    /// true = request-based billing; false = instance-based.
    pub cpu_idle: bool,
}

/// Why an estimate has an unknown part: the address it has no `[usage]` for.
pub fn missing_usage(address: &str) -> String {
    format!("no [usage] for {address}")
}

/// A Cloud Run service's month. `usage = None` prices min instances only and names the rest.
pub fn service(
    prices: &PriceTable,
    sizing: ServiceSizing,
    usage: Option<&ServiceUsage>,
    address: &str,
) -> Estimate {
    let vcpu = f64::from(sizing.cpu_millis) / 1000.0;
    let gib = sizing.memory_bytes as f64 / GIB;
    let min_seconds = f64::from(sizing.min_instances) * SECONDS_PER_MONTH;
    let active_seconds = usage.map(|u| {
        u.requests_per_month as f64 * u.avg_request_ms / 1000.0 / u.avg_concurrency.max(1.0)
    });
    let unknown = usage.is_none().then(|| missing_usage(address));
    let mut lines = Vec::new();
    if sizing.cpu_idle {
        let active = active_seconds.unwrap_or(0.0);
        let idle = (min_seconds - active).max(0.0);
        lines.push(line(prices, Component::ActiveCpu, active * vcpu));
        lines.push(line(prices, Component::ActiveMemory, active * gib));
        if let Some(u) = usage {
            lines.push(line(
                prices,
                Component::Requests,
                u.requests_per_month as f64,
            ));
        }
        lines.push(line(prices, Component::MinInstanceIdleCpu, idle * vcpu));
        lines.push(line(prices, Component::MinInstanceIdleMemory, idle * gib));
    } else {
        let instance_seconds = min_seconds.max(active_seconds.unwrap_or(0.0));
        lines.push(line(
            prices,
            Component::InstanceCpu,
            instance_seconds * vcpu,
        ));
        lines.push(line(
            prices,
            Component::InstanceMemory,
            instance_seconds * gib,
        ));
    }
    Estimate::from_lines(lines, unknown)
}

/// A Cloud Tasks queue's month: each task is one create call plus its push attempts.
pub fn queue(prices: &PriceTable, usage: Option<&QueueUsage>, address: &str) -> Estimate {
    match usage {
        Some(u) => {
            let operations = u.tasks_per_month as f64 * (1.0 + u.attempts_per_task);
            Estimate::from_lines(
                vec![line(prices, Component::TaskOperations, operations)],
                None,
            )
        }
        None => Estimate::from_lines(vec![], Some(missing_usage(address))),
    }
}

/// `table.X` usage: logical GiB stored (active and long-term) and TiB scanned per month.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TableUsage {
    pub active_gib: f64,
    pub long_term_gib: f64,
    pub scanned_tib_per_month: f64,
}

/// A BigQuery table's month (logical storage billing, on-demand queries).
pub fn table(prices: &PriceTable, usage: Option<&TableUsage>, address: &str) -> Estimate {
    match usage {
        Some(u) => Estimate::from_lines(
            vec![
                line(prices, Component::ActiveStorage, u.active_gib),
                line(prices, Component::LongTermStorage, u.long_term_gib),
                line(prices, Component::QueryScanning, u.scanned_tib_per_month),
            ],
            None,
        ),
        None => Estimate::from_lines(vec![], Some(missing_usage(address))),
    }
}

/// An Artifact Registry repository's month from the GB it stores.
pub fn repository(prices: &PriceTable, stored_gb: Option<f64>, address: &str) -> Estimate {
    match stored_gb {
        Some(gb) => Estimate::from_lines(vec![line(prices, Component::ImageStorage, gb)], None),
        None => Estimate::from_lines(vec![], Some(missing_usage(address))),
    }
}

/// The sizing of a Cloud Run job that its cost depends on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobSizing {
    pub cpu_millis: u32,
    pub memory_bytes: u64,
    /// Tasks per execution.
    pub task_count: u32,
}

/// How often a job runs and for how long: `avg_task_seconds` is `None` without a `[usage]`
/// entry, `executions_per_month` when neither `[usage]` nor a schedule says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobRuns {
    pub executions_per_month: Option<f64>,
    pub avg_task_seconds: Option<f64>,
}

/// A Cloud Run job's month: every task-second at the instance-based rates (jobs have no
/// request-based billing). Unknown, and named, without both an execution count and a duration.
pub fn job(prices: &PriceTable, sizing: JobSizing, runs: JobRuns, address: &str) -> Estimate {
    let (Some(executions), Some(avg_task_seconds)) =
        (runs.executions_per_month, runs.avg_task_seconds)
    else {
        let missing = match runs.avg_task_seconds {
            None => missing_usage(address),
            Some(_) => {
                format!("{address}: no executions_per_month in [usage] and no [schedule] runs it")
            }
        };
        return Estimate::unknown(missing);
    };
    let task_seconds = executions * f64::from(sizing.task_count) * avg_task_seconds;
    Estimate::from_lines(
        vec![
            line(
                prices,
                Component::TaskCpu,
                task_seconds * f64::from(sizing.cpu_millis) / 1000.0,
            ),
            line(
                prices,
                Component::TaskMemory,
                task_seconds * sizing.memory_bytes as f64 / GIB,
            ),
        ],
        None,
    )
}

/// A Firestore database's month: document operations and stored data, from its `[usage]`.
pub fn firestore(prices: &PriceTable, usage: Option<&FirestoreUsage>, address: &str) -> Estimate {
    match usage {
        Some(u) => Estimate::from_lines(
            vec![
                line(prices, Component::DocumentReads, u.reads_per_month),
                line(prices, Component::DocumentWrites, u.writes_per_month),
                line(prices, Component::DocumentDeletes, u.deletes_per_month),
                line(prices, Component::DocumentStorage, u.stored_gib),
            ],
            None,
        ),
        None => Estimate::from_lines(vec![], Some(missing_usage(address))),
    }
}

/// An API Gateway: its calls (the gateway itself has no fixed fee; the backend is priced apart).
pub fn gateway(prices: &PriceTable, usage: Option<&GatewayUsage>, address: &str) -> Estimate {
    match usage {
        Some(u) => Estimate::from_lines(
            vec![line(prices, Component::GatewayCalls, u.calls_per_month)],
            None,
        ),
        None => Estimate::from_lines(vec![], Some(missing_usage(address))),
    }
}

/// A Cloud Scheduler job: a fixed monthly fee, paused or not; no usage needed.
pub fn schedule(prices: &PriceTable) -> Estimate {
    Estimate::from_lines(vec![line(prices, Component::SchedulerJob, 1.0)], None)
}

/// A Monitoring alert policy: a fixed fee per condition (time series returned not estimated).
pub fn alert(prices: &PriceTable, conditions: u32) -> Estimate {
    Estimate::from_lines(
        vec![line(
            prices,
            Component::AlertConditions,
            f64::from(conditions),
        )],
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iowa() -> PriceTable {
        PriceTable::builtin("us-central1")
    }

    fn sizing(cpu_millis: u32, memory_mib: u64, min: u32, cpu_idle: bool) -> ServiceSizing {
        ServiceSizing {
            cpu_millis,
            memory_bytes: memory_mib << 20,
            min_instances: min,
            cpu_idle,
        }
    }

    fn usd(estimate: &Estimate, component: Component) -> f64 {
        estimate
            .lines
            .iter()
            .find(|l| l.component == component)
            .map_or(0.0, |l| l.monthly_usd)
    }

    #[test]
    fn one_warm_instance_costs_what_gcp_notes_computes() {
        // 1 vCPU / 512 MiB, one min instance for 30 days, no traffic.
        let idle = ServiceUsage {
            requests_per_month: 0,
            avg_request_ms: 100.0,
            avg_concurrency: 1.0,
        };
        let request_based = service(&iowa(), sizing(1000, 512, 1, true), Some(&idle), "s");
        assert_eq!(usd(&request_based, Component::MinInstanceIdleCpu), 6.48);
        assert_eq!(usd(&request_based, Component::MinInstanceIdleMemory), 3.24);
        assert_eq!(request_based.monthly_usd, 9.72);
        let instance_based = service(&iowa(), sizing(1000, 512, 1, false), Some(&idle), "s");
        assert_eq!(usd(&instance_based, Component::InstanceCpu), 46.656);
        assert_eq!(usd(&instance_based, Component::InstanceMemory), 2.592);
        assert_eq!(instance_based.monthly_usd, 49.248);
    }

    #[test]
    fn ten_million_requests_at_200ms_match_the_worked_example() {
        // GCP-NOTES quotes about $39 CPU + $2 memory + $3.20 requests with the free tier netted;
        // stackctl never nets it: 2,000,000 vCPU-s × $0.000024, 1,000,000 GiB-s × $0.0000025,
        // 10M × $0.40/M.
        let usage = ServiceUsage {
            requests_per_month: 10_000_000,
            avg_request_ms: 200.0,
            avg_concurrency: 1.0,
        };
        let e = service(&iowa(), sizing(1000, 512, 0, true), Some(&usage), "s");
        assert_eq!(usd(&e, Component::ActiveCpu), 48.0);
        assert_eq!(usd(&e, Component::ActiveMemory), 2.5);
        assert_eq!(usd(&e, Component::Requests), 4.0);
        assert_eq!(e.monthly_usd, 54.5);
        assert_eq!(e.unknown, None);
    }

    #[test]
    fn fractional_cpu_and_concurrency_scale_the_active_time() {
        let usage = ServiceUsage {
            requests_per_month: 1_000_000,
            avg_request_ms: 1000.0,
            avg_concurrency: 4.0,
        };
        // 250,000 instance-seconds × 0.25 vCPU = 62,500 vCPU-s × $0.000024 = $1.50.
        let e = service(&iowa(), sizing(250, 256, 0, true), Some(&usage), "s");
        assert_eq!(usd(&e, Component::ActiveCpu), 1.5);
        // 250,000 × 0.25 GiB = 62,500 GiB-s × $0.0000025 = $0.15625.
        assert_eq!(usd(&e, Component::ActiveMemory), 0.1563);
    }

    #[test]
    fn warm_instances_serve_first_so_only_their_idle_time_is_idle() {
        // 1,296,000 active instance-seconds = half the month of one instance.
        let usage = ServiceUsage {
            requests_per_month: 1_296_000,
            avg_request_ms: 1000.0,
            avg_concurrency: 1.0,
        };
        let e = service(&iowa(), sizing(1000, 1024, 1, true), Some(&usage), "s");
        assert_eq!(usd(&e, Component::MinInstanceIdleCpu), 3.24);
        assert_eq!(usd(&e, Component::MinInstanceIdleMemory), 3.24);
        assert_eq!(usd(&e, Component::ActiveCpu), 31.104);
        // Instance-based: the one instance covers the load; no request fee.
        let e = service(&iowa(), sizing(1000, 1024, 1, false), Some(&usage), "s");
        assert_eq!(usd(&e, Component::InstanceCpu), 46.656);
        assert_eq!(usd(&e, Component::Requests), 0.0);
    }

    #[test]
    fn without_usage_fixed_costs_stay_and_the_rest_is_named_unknown() {
        let e = service(&iowa(), sizing(1000, 512, 1, true), None, "service.worker");
        assert_eq!(e.monthly_usd, 9.72);
        assert_eq!(e.unknown.as_deref(), Some("no [usage] for service.worker"));
        let e = service(&iowa(), sizing(1000, 512, 0, true), None, "service.worker");
        assert_eq!(e.monthly_usd, 0.0);
        assert!(e.lines.is_empty());
        assert!(e.unknown.is_some());
        assert_eq!(
            queue(&iowa(), None, "queue.q").unknown.as_deref(),
            Some("no [usage] for queue.q")
        );
    }

    #[test]
    fn tier2_regions_pay_more_for_run() {
        let e = service(
            &PriceTable::builtin("europe-west2"),
            sizing(1000, 512, 1, true),
            None,
            "s",
        );
        // 2,592,000 × $0.0000035 + 0.5 × 2,592,000 × $0.0000035
        assert_eq!(e.monthly_usd, 13.608);
    }

    #[test]
    fn queues_pay_per_operation_create_plus_attempts() {
        let usage = QueueUsage {
            tasks_per_month: 2_000_000,
            attempts_per_task: 1.0,
        };
        let e = queue(&iowa(), Some(&usage), "queue.webhooks");
        assert_eq!(e.lines[0].quantity, 4_000_000.0);
        assert_eq!(e.monthly_usd, 1.6);
        let retried = QueueUsage {
            attempts_per_task: 1.5,
            ..usage
        };
        assert_eq!(queue(&iowa(), Some(&retried), "q").monthly_usd, 2.0);
    }

    #[test]
    fn later_kinds_price_storage_scans_jobs_and_conditions() {
        let t = table(
            &iowa(),
            Some(&TableUsage {
                active_gib: 100.0,
                long_term_gib: 400.0,
                scanned_tib_per_month: 2.0,
            }),
            "table.orders",
        );
        // $2 + $4 + $12.50
        assert_eq!(t.monthly_usd, 18.5);
        assert_eq!(
            repository(&iowa(), Some(12.0), "repository.images").monthly_usd,
            1.2
        );
        assert_eq!(schedule(&iowa()).monthly_usd, 0.1);
        assert_eq!(alert(&iowa(), 3).monthly_usd, 4.5);
        assert!(table(&iowa(), None, "table.x").unknown.is_some());
        assert!(repository(&iowa(), None, "repository.x").unknown.is_some());
    }
}

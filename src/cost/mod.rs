//! Monthly cost: the dated price table (and the live catalog prices laid over it), the per-kind
//! estimators, and the cost figures a plan and `stackctl cost` carry. Pure: prices and usage
//! come in, numbers go out.

pub mod estimate;
pub mod live;
pub mod prices;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use estimate::{Component, CostLine, Estimate, ServiceSizing, round_usd};
pub use live::LivePrices;
pub use prices::{FreeTier, PriceItem, PriceTable, RegionTier, SECONDS_PER_MONTH};

use crate::config::cron::Cron;
use crate::config::{ServiceConfig, Stack};
use crate::model::ResourceAddr;

/// One resource's monthly cost before and after a change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceCost {
    /// From the live resource's declared fields; zero when it does not exist yet.
    pub before: Estimate,
    /// From stack.toml; zero when it is deleted (or a queue is paused).
    pub after: Estimate,
    pub delta_monthly_usd: f64,
}

impl ResourceCost {
    pub fn new(before: Estimate, after: Estimate) -> Self {
        let delta_monthly_usd = round_usd(after.monthly_usd - before.monthly_usd);
        Self {
            before,
            after,
            delta_monthly_usd,
        }
    }

    /// The same cost before and after (an unchanged resource).
    pub fn unchanged(estimate: Estimate) -> Self {
        Self::new(estimate.clone(), estimate)
    }

    /// Nothing to say about money: free before and after, with no usage cost left unknown
    /// (grants, APIs, datasets, channels). Plans show no cost line for it.
    pub fn is_free(&self) -> bool {
        [&self.before, &self.after]
            .iter()
            .all(|e| e.monthly_usd == 0.0 && e.unknown.is_none())
    }
}

/// CI's spending limits on a plan (`--cost-limit`, `--max-monthly-increase`), in USD a month.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CostGate {
    /// The stack's whole monthly estimate after the plan may not exceed this.
    pub limit_usd: Option<f64>,
    /// The plan may not raise the monthly estimate by more than this.
    pub max_increase_usd: Option<f64>,
}

impl CostGate {
    /// Each limit the plan's cost exceeds, as a sentence naming the flag and both figures;
    /// empty when it passes. Usage costs left unknown are named, since they are not counted.
    pub fn violations(&self, cost: &PlanCost) -> Vec<String> {
        let unknown = if cost.unknown.is_empty() {
            String::new()
        } else {
            " (not counting the usage costs left unknown)".to_string()
        };
        let mut out = Vec::new();
        if let Some(limit) = self.limit_usd
            && cost.total_monthly_usd > limit
        {
            out.push(format!(
                "the stack's monthly estimate after this plan, {}{unknown}, exceeds --cost-limit {}",
                format_usd(cost.total_monthly_usd),
                format_usd(limit)
            ));
        }
        if let Some(limit) = self.max_increase_usd
            && cost.diff_monthly_usd > limit
        {
            out.push(format!(
                "this plan raises the monthly estimate by {} ({} -> {}){unknown}, more than --max-monthly-increase {}",
                format_usd(cost.diff_monthly_usd),
                format_usd(cost.past_total_monthly_usd),
                format_usd(cost.total_monthly_usd),
                format_usd(limit)
            ));
        }
        out
    }
}

/// A free allowance as outputs show it (owned, so saved plans read back).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FreeTierNote {
    pub item: PriceItem,
    pub allowance: f64,
    pub unit: Cow<'static, str>,
    pub scope: Cow<'static, str>,
}

impl From<&FreeTier> for FreeTierNote {
    fn from(tier: &FreeTier) -> Self {
        Self {
            item: tier.item,
            allowance: tier.allowance,
            unit: Cow::Borrowed(tier.unit),
            scope: Cow::Borrowed(tier.scope),
        }
    }
}

/// Where an estimate's prices came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceSource {
    /// The built-in list-price table of `price_table_date`.
    #[default]
    Builtin,
    /// The Cloud Billing Catalog, read live (`--live-prices`); what it lacks stays built-in.
    CloudBillingCatalog,
}

/// What every figure assumes: prices of which source, region and date, and the month's length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceBasis {
    pub currency: String,
    pub region: String,
    pub region_tier: RegionTier,
    pub price_table_date: String,
    pub month_seconds: f64,
    #[serde(default)]
    pub price_source: PriceSource,
    /// With `--live-prices`: when the catalog was read, each live price with its SKU, and the
    /// items it could not price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LivePrices>,
}

impl PriceBasis {
    pub fn of(prices: &PriceTable) -> Self {
        Self {
            currency: "USD".into(),
            region: prices.region.clone(),
            region_tier: prices.tier,
            price_table_date: prices.table_date.to_string(),
            month_seconds: SECONDS_PER_MONTH,
            price_source: match prices.live {
                Some(_) => PriceSource::CloudBillingCatalog,
                None => PriceSource::Builtin,
            },
            live: prices.live.clone(),
        }
    }
}

/// The whole plan's monthly cost: every declared resource, changed or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanCost {
    pub past_total_monthly_usd: f64,
    pub total_monthly_usd: f64,
    pub diff_monthly_usd: f64,
    /// Usage-dependent costs not estimated, each naming its resource.
    pub unknown: Vec<String>,
    /// Free allowances that could lower the bill; never subtracted above.
    pub free_tier_not_included: Vec<FreeTierNote>,
    pub basis: PriceBasis,
}

impl PlanCost {
    /// Totals over every resource's cost (changes and unchanged resources alike).
    pub fn total<'a>(
        prices: &PriceTable,
        costs: impl IntoIterator<Item = &'a ResourceCost>,
    ) -> Self {
        let mut before = 0.0;
        let mut after = 0.0;
        let mut unknown = Vec::new();
        let mut lines = Vec::new();
        for cost in costs {
            before += cost.before.monthly_usd;
            after += cost.after.monthly_usd;
            unknown.extend(cost.after.unknown.clone());
            lines.extend(cost.before.lines.iter().chain(&cost.after.lines).cloned());
        }
        unknown.sort();
        unknown.dedup();
        Self {
            past_total_monthly_usd: round_usd(before),
            total_monthly_usd: round_usd(after),
            diff_monthly_usd: round_usd(after - before),
            unknown,
            free_tier_not_included: free_tiers_for(&lines),
            basis: PriceBasis::of(prices),
        }
    }
}

/// The free tiers that apply to any of `lines`' price items (idle min-instance vCPU draws on
/// the request-based vCPU allowance).
pub fn free_tiers_for(lines: &[CostLine]) -> Vec<FreeTierNote> {
    let allowance_of = |item: PriceItem| match item {
        PriceItem::RunIdleMinInstanceVcpuSecond => PriceItem::RunRequestVcpuSecond,
        other => other,
    };
    PriceTable::free_tiers()
        .iter()
        .filter(|tier| {
            lines
                .iter()
                .any(|l| allowance_of(l.component.price_item()) == tier.item)
        })
        .map(FreeTierNote::from)
        .collect()
}

/// The monthly cost of the stack as declared in stack.toml, by resource and component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackCost {
    pub stack: String,
    pub resources: BTreeMap<ResourceAddr, Estimate>,
    pub total_monthly_usd: f64,
    pub unknown: Vec<String>,
    pub free_tier_not_included: Vec<FreeTierNote>,
    pub basis: PriceBasis,
}

/// The sizing of a declared service.
pub fn declared_sizing(config: &ServiceConfig) -> ServiceSizing {
    ServiceSizing {
        cpu_millis: config.cpu_millis,
        memory_bytes: config.memory_bytes,
        min_instances: config.min_instances,
        cpu_idle: config.cpu_idle,
    }
}

/// How often the schedules that run `job` fire in a month; `None` when none does.
pub fn scheduled_runs_per_month(stack: &Stack, job: &ResourceAddr) -> Option<f64> {
    let runs: Vec<f64> = stack
        .schedules
        .values()
        .filter(|schedule| &schedule.job == job)
        .filter_map(|schedule| schedule.cron.parse::<Cron>().ok())
        .map(|cron| cron.runs_per_month())
        .collect();
    (!runs.is_empty()).then(|| runs.iter().sum())
}

/// Every priced declared resource's estimate (by address) and the total.
pub fn stack_cost(
    stack: &Stack,
    prices: &PriceTable,
    resources: BTreeMap<ResourceAddr, Estimate>,
) -> StackCost {
    let costs: Vec<ResourceCost> = resources
        .values()
        .cloned()
        .map(ResourceCost::unchanged)
        .collect();
    let total = PlanCost::total(prices, &costs);
    StackCost {
        stack: stack.settings.name.clone(),
        resources,
        total_monthly_usd: total.total_monthly_usd,
        unknown: total.unknown,
        free_tier_not_included: total.free_tier_not_included,
        basis: total.basis,
    }
}

/// `$9.72`, `$0.0040` for sub-cent amounts so small costs do not read as free.
pub fn format_usd(usd: f64) -> String {
    let magnitude = usd.abs();
    if magnitude > 0.0 && magnitude < 0.01 {
        format!("${usd:.4}")
    } else {
        format!("${usd:.2}")
    }
}

/// `+$9.72`, `-$3.00`, `+$0.00`.
pub fn format_delta(usd: f64) -> String {
    if usd < 0.0 {
        format!("-{}", format_usd(-usd))
    } else {
        format!("+{}", format_usd(usd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../stack.toml");

    fn example() -> Stack {
        crate::config::parse(std::path::Path::new("stack.toml"), EXAMPLE).expect("example parses")
    }

    /// The example stack by hand (us-central1, tier 1):
    /// worker: 2,000,000 requests × 120 ms = 240,000 instance-s at 1 vCPU / 0.5 GiB, concurrency 1
    ///   vCPU 240,000 × $0.000024 = $5.76; memory 120,000 GiB-s × $0.0000025 = $0.30;
    ///   requests 2M × $0.40/M = $0.80; min instances 0 -> $6.86.
    /// webhooks: 2,000,000 tasks × (1 create + 1 attempt) = 4M ops × $0.40/M = $1.60.
    #[test]
    fn the_example_stack_costs_what_a_hand_computation_gives() {
        let cost = {
            let (stack, prices) = (example(), PriceTable::builtin("us-central1"));
            stack_cost(
                &stack,
                &prices,
                crate::resources::registry::declared_costs(&stack, &prices),
            )
        };
        let worker = &cost.resources[&"service.worker".parse().unwrap()];
        let by_component: Vec<(Component, f64)> = worker
            .lines
            .iter()
            .map(|l| (l.component, l.monthly_usd))
            .collect();
        assert_eq!(
            by_component,
            vec![
                (Component::ActiveCpu, 5.76),
                (Component::ActiveMemory, 0.3),
                (Component::Requests, 0.8),
            ]
        );
        assert_eq!(worker.monthly_usd, 6.86);
        let webhooks = &cost.resources[&"queue.webhooks".parse().unwrap()];
        assert_eq!(webhooks.monthly_usd, 1.6);
        // Three alert policies of one condition each: 3 x $1.50.
        let alerts: f64 = [
            "alert.worker-errors",
            "alert.webhook-backlog",
            "alert.ingest-failures",
        ]
        .iter()
        .map(|a| cost.resources[&a.parse().unwrap()].monthly_usd)
        .sum();
        assert_eq!(alerts, 4.5);
        // table.orders: 20 GiB x $0.02 + 0.5 TiB x $6.25; repository.workers: 2 GB x $0.10.
        assert_eq!(
            cost.resources[&"table.orders".parse().unwrap()].monthly_usd,
            3.525
        );
        assert_eq!(
            cost.resources[&"repository.workers".parse().unwrap()].monthly_usd,
            0.2
        );
        // The hourly schedule is a $0.10 Scheduler job. Its cron fires 720 times a month, each
        // a 90 s task of 1 vCPU and 0.5 GiB at the instance rates:
        // 64,800 vCPU-s x $0.000018 = $1.1664 + 32,400 GiB-s x $0.000002 = $0.0648.
        assert_eq!(
            cost.resources[&"schedule.ingest-orders-hourly".parse().unwrap()].monthly_usd,
            0.1
        );
        let job = &cost.resources[&"job.ingest-orders".parse().unwrap()];
        let by_component: Vec<(Component, f64, f64)> = job
            .lines
            .iter()
            .map(|l| (l.component, l.quantity, l.monthly_usd))
            .collect();
        assert_eq!(
            by_component,
            vec![
                (Component::TaskCpu, 64_800.0, 1.1664),
                (Component::TaskMemory, 32_400.0, 0.0648),
            ]
        );
        // service.relay: 2,000,000 requests x 40 ms = 80,000 instance-seconds of 1 vCPU ($1.92)
        // and 0.5 GiB ($0.10), plus 2,000,000 x $0.0000004 ($0.80).
        assert_eq!(
            cost.resources[&"service.relay".parse().unwrap()].monthly_usd,
            2.82
        );
        // firestore.default: 4M reads x $0.06/100k ($2.40), 6M writes x $0.18/100k ($10.80),
        // 2M deletes x $0.02/100k ($0.40), 2 GiB x $0.18 ($0.36).
        assert_eq!(
            cost.resources[&"firestore.default".parse().unwrap()].monthly_usd,
            13.96
        );
        // service.crm-proxy: 200,000 requests x 300 ms = 60,000 instance-seconds of 1 vCPU
        // ($1.44) and 0.5 GiB ($0.075), plus 200,000 x $0.0000004 ($0.08).
        assert_eq!(
            cost.resources[&"service.crm-proxy".parse().unwrap()].monthly_usd,
            1.595
        );
        // gateway.crm: 200,000 calls x $3.00 per million.
        assert_eq!(
            cost.resources[&"gateway.crm".parse().unwrap()].monthly_usd,
            0.6
        );
        assert_eq!(cost.total_monthly_usd, 41.4912);
        assert_eq!(cost.unknown, Vec::<String>::new());
        let free: Vec<PriceItem> = cost.free_tier_not_included.iter().map(|f| f.item).collect();
        assert_eq!(
            free,
            vec![
                PriceItem::RunRequestVcpuSecond,
                PriceItem::RunRequestGibSecond,
                PriceItem::RunRequest,
                PriceItem::RunInstanceVcpuSecond,
                PriceItem::RunInstanceGibSecond,
                PriceItem::TasksOperation,
                PriceItem::BigQueryActiveStorageGibMonth,
                PriceItem::BigQueryScannedTib,
                PriceItem::ArtifactRegistryGbMonth,
                PriceItem::SchedulerJobMonth,
                PriceItem::FirestoreRead,
                PriceItem::FirestoreWrite,
                PriceItem::FirestoreDelete,
                PriceItem::FirestoreStorageGibMonth,
                PriceItem::ApiGatewayCall,
            ]
        );
    }

    #[test]
    fn a_job_runs_as_often_as_its_schedules_fire_unless_usage_says() {
        let with_two_schedules = format!(
            "{EXAMPLE}\n[schedule.ingest-orders-nightly]\njob = \"job.ingest-orders\"\ncron = \"30 2 * * *\"\nservice_account = \"service_account.scheduler\"\n"
        );
        let stack = crate::config::parse(std::path::Path::new("stack.toml"), &with_two_schedules)
            .expect("parses");
        let prices = PriceTable::builtin("us-central1");
        let job: ResourceAddr = "job.ingest-orders".parse().unwrap();
        // 720 hourly + 30 nightly runs of 90 s: 67,500 vCPU-s x $0.000018 + 33,750 GiB-s x $0.000002.
        assert_eq!(
            crate::resources::registry::declared_cost(&stack, &prices, &job)
                .unwrap()
                .monthly_usd,
            round_usd(1.215 + 0.0675)
        );

        let explicit = EXAMPLE.replace(
            "{ avg_task_seconds = 90 }",
            "{ avg_task_seconds = 90, executions_per_month = 10 }",
        );
        let stack =
            crate::config::parse(std::path::Path::new("stack.toml"), &explicit).expect("parses");
        // 10 runs x 90 s: 900 vCPU-s x $0.000018 + 450 GiB-s x $0.000002.
        assert_eq!(
            crate::resources::registry::declared_cost(&stack, &prices, &job)
                .unwrap()
                .monthly_usd,
            round_usd(0.0162 + 0.0009)
        );

        let schedule = EXAMPLE
            .split_once("[schedule.ingest-orders-hourly]")
            .and_then(|(_, rest)| rest.split_once("\n\n"))
            .map(|(block, _)| format!("[schedule.ingest-orders-hourly]{block}"))
            .expect("the example schedules the job");
        let unscheduled = EXAMPLE.replace(&schedule, "");
        let stack =
            crate::config::parse(std::path::Path::new("stack.toml"), &unscheduled).expect("parses");
        let estimate = crate::resources::registry::declared_cost(&stack, &prices, &job).unwrap();
        assert_eq!(estimate.monthly_usd, 0.0);
        assert_eq!(
            estimate.unknown.as_deref(),
            Some("job.ingest-orders: no executions_per_month in [usage] and no [schedule] runs it")
        );
    }

    #[test]
    fn a_stack_without_usage_names_every_unknown() {
        let without = EXAMPLE
            .split("[usage]")
            .next()
            .expect("example text")
            .to_string();
        let stack =
            crate::config::parse(std::path::Path::new("stack.toml"), &without).expect("parses");
        let cost = {
            let prices = PriceTable::builtin("us-central1");
            stack_cost(
                &stack,
                &prices,
                crate::resources::registry::declared_costs(&stack, &prices),
            )
        };
        // Only the fixed fees remain: six alert conditions and one Scheduler job.
        assert_eq!(cost.total_monthly_usd, 9.1);
        assert_eq!(
            cost.unknown,
            vec![
                "no [usage] for firestore.default".to_string(),
                "no [usage] for gateway.crm".to_string(),
                "no [usage] for job.ingest-orders".to_string(),
                "no [usage] for queue.webhooks".to_string(),
                "no [usage] for repository.workers".to_string(),
                "no [usage] for service.crm-proxy".to_string(),
                "no [usage] for service.relay".to_string(),
                "no [usage] for service.worker".to_string(),
                "no [usage] for table.orders".to_string(),
            ]
        );
    }

    #[test]
    fn money_formats_keep_sub_cent_amounts_visible() {
        assert_eq!(format_usd(9.72), "$9.72");
        assert_eq!(format_usd(0.004), "$0.0040");
        assert_eq!(format_delta(-3.0), "-$3.00");
        assert_eq!(format_delta(0.0), "+$0.00");
    }

    #[test]
    fn the_cost_gate_names_each_limit_exceeded_and_passes_at_the_limit() {
        let prices = PriceTable::builtin("us-central1");
        let mut cost = PlanCost::total(&prices, []);
        cost.past_total_monthly_usd = 10.0;
        cost.total_monthly_usd = 16.52;
        cost.diff_monthly_usd = 6.52;
        let gate = |limit, increase| CostGate {
            limit_usd: limit,
            max_increase_usd: increase,
        };
        assert!(gate(None, None).violations(&cost).is_empty());
        assert!(gate(Some(16.52), Some(6.52)).violations(&cost).is_empty());
        assert_eq!(
            gate(Some(15.0), Some(5.0)).violations(&cost),
            vec![
                "the stack's monthly estimate after this plan, $16.52, exceeds --cost-limit $15.00"
                    .to_string(),
                "this plan raises the monthly estimate by $6.52 ($10.00 -> $16.52), more than --max-monthly-increase $5.00"
                    .to_string(),
            ]
        );
        cost.unknown = vec!["no [usage] for service.worker".into()];
        assert!(
            gate(Some(1.0), None).violations(&cost)[0]
                .contains("not counting the usage costs left unknown")
        );
    }
}

//! The built-in USD list-price table: every figure with its unit, source and date, tier-1 and
//! tier-2 region rates where they differ, and free tiers kept apart (never netted).

use serde::{Deserialize, Serialize};

use super::live::LivePrices;

/// The date this table was compiled from the sources cited per figure.
pub const TABLE_DATE: &str = "2026-11-25";

/// Seconds in the month every estimate uses: 30 days (GCP-NOTES §6 "use one 30-day month").
pub const SECONDS_PER_MONTH: f64 = 30.0 * 24.0 * 3600.0;

/// Every priced item, one closed vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceItem {
    /// Cloud Run request-based billing (cpu_idle = true): vCPU-second while serving.
    RunRequestVcpuSecond,
    /// Cloud Run request-based billing: GiB-second while serving (and for idle min instances).
    RunRequestGibSecond,
    /// Cloud Run request-based billing: per request.
    RunRequest,
    /// Cloud Run request-based billing: vCPU-second of an idle min instance.
    RunIdleMinInstanceVcpuSecond,
    /// Cloud Run instance-based billing (cpu_idle = false) and jobs: vCPU-second.
    RunInstanceVcpuSecond,
    /// Cloud Run instance-based billing and jobs: GiB-second.
    RunInstanceGibSecond,
    /// Cloud Tasks billable operation (API call or push attempt, per 32 KB chunk).
    TasksOperation,
    /// BigQuery logical storage, active (modified in the last 90 days): GiB-month.
    BigQueryActiveStorageGibMonth,
    /// BigQuery logical storage, long-term (90 days unmodified): GiB-month.
    BigQueryLongTermStorageGibMonth,
    /// BigQuery on-demand queries: TiB scanned.
    BigQueryScannedTib,
    /// Artifact Registry storage: GB-month.
    ArtifactRegistryGbMonth,
    /// Cloud Scheduler: job-month (paused jobs count).
    SchedulerJobMonth,
    /// Cloud Monitoring alerting: condition-month.
    AlertConditionMonth,
    /// Firestore (Standard edition): document read.
    FirestoreRead,
    /// Firestore: document write.
    FirestoreWrite,
    /// Firestore: document delete (TTL deletes included).
    FirestoreDelete,
    /// Firestore: stored data, GiB-month.
    FirestoreStorageGibMonth,
    /// API Gateway: a call (Service Control tracked operation).
    ApiGatewayCall,
}

impl PriceItem {
    /// The Google Cloud product that bills it.
    pub fn product(self) -> &'static str {
        match self {
            PriceItem::RunRequestVcpuSecond
            | PriceItem::RunRequestGibSecond
            | PriceItem::RunRequest
            | PriceItem::RunIdleMinInstanceVcpuSecond
            | PriceItem::RunInstanceVcpuSecond
            | PriceItem::RunInstanceGibSecond => "Cloud Run",
            PriceItem::TasksOperation => "Cloud Tasks",
            PriceItem::BigQueryActiveStorageGibMonth
            | PriceItem::BigQueryLongTermStorageGibMonth
            | PriceItem::BigQueryScannedTib => "BigQuery",
            PriceItem::ArtifactRegistryGbMonth => "Artifact Registry",
            PriceItem::SchedulerJobMonth => "Cloud Scheduler",
            PriceItem::AlertConditionMonth => "Cloud Monitoring",
            PriceItem::FirestoreRead
            | PriceItem::FirestoreWrite
            | PriceItem::FirestoreDelete
            | PriceItem::FirestoreStorageGibMonth => "Firestore",
            PriceItem::ApiGatewayCall => "API Gateway",
        }
    }

    /// How messages name it: product, unit and billing model.
    pub fn describe(self) -> &'static str {
        match self {
            PriceItem::RunRequestVcpuSecond => "Cloud Run vCPU-second (request-based)",
            PriceItem::RunRequestGibSecond => "Cloud Run GiB-second (request-based)",
            PriceItem::RunRequest => "Cloud Run request",
            PriceItem::RunIdleMinInstanceVcpuSecond => "Cloud Run idle min-instance vCPU-second",
            PriceItem::RunInstanceVcpuSecond => "Cloud Run vCPU-second (instance-based)",
            PriceItem::RunInstanceGibSecond => "Cloud Run GiB-second (instance-based)",
            PriceItem::TasksOperation => "Cloud Tasks operation",
            PriceItem::BigQueryActiveStorageGibMonth => "BigQuery active storage GiB-month",
            PriceItem::BigQueryLongTermStorageGibMonth => "BigQuery long-term storage GiB-month",
            PriceItem::BigQueryScannedTib => "BigQuery TiB scanned",
            PriceItem::ArtifactRegistryGbMonth => "Artifact Registry GB-month",
            PriceItem::SchedulerJobMonth => "Cloud Scheduler job-month",
            PriceItem::AlertConditionMonth => "Cloud Monitoring alert condition-month",
            PriceItem::FirestoreRead => "Firestore document read",
            PriceItem::FirestoreWrite => "Firestore document write",
            PriceItem::FirestoreDelete => "Firestore document delete",
            PriceItem::FirestoreStorageGibMonth => "Firestore storage GiB-month",
            PriceItem::ApiGatewayCall => "API Gateway call",
        }
    }

    pub const ALL: [PriceItem; 18] = [
        PriceItem::RunRequestVcpuSecond,
        PriceItem::RunRequestGibSecond,
        PriceItem::RunRequest,
        PriceItem::RunIdleMinInstanceVcpuSecond,
        PriceItem::RunInstanceVcpuSecond,
        PriceItem::RunInstanceGibSecond,
        PriceItem::TasksOperation,
        PriceItem::BigQueryActiveStorageGibMonth,
        PriceItem::BigQueryLongTermStorageGibMonth,
        PriceItem::BigQueryScannedTib,
        PriceItem::ArtifactRegistryGbMonth,
        PriceItem::SchedulerJobMonth,
        PriceItem::AlertConditionMonth,
        PriceItem::FirestoreRead,
        PriceItem::FirestoreWrite,
        PriceItem::FirestoreDelete,
        PriceItem::FirestoreStorageGibMonth,
        PriceItem::ApiGatewayCall,
    ];
}

/// One list price.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Price {
    pub item: PriceItem,
    /// USD per `unit` in tier-1 regions (and wherever the price is not tiered).
    pub usd: f64,
    /// USD per `unit` in tier-2 regions; `None` where the source gives one price for all
    /// regions, or gives no tier-2 figure (then the tier-1 rate is used and said so).
    pub tier2_usd: Option<f64>,
    pub unit: &'static str,
    pub source: &'static str,
    /// When the source was read or the figure took effect.
    pub as_of: &'static str,
}

/// A monthly free allowance, shown beside estimates and never subtracted from them: it is per
/// billing account, shared by every project on it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FreeTier {
    pub item: PriceItem,
    pub allowance: f64,
    pub unit: &'static str,
    pub scope: &'static str,
}

const RUN_PRICING: &str = "cloud.google.com/run/pricing (stored copy) and firebase-tools src/deploy/functions/pricing.ts V2_RATES";

const BUILTIN: [Price; 18] = [
    Price {
        item: PriceItem::RunRequestVcpuSecond,
        usd: 0.000024,
        tier2_usd: Some(0.0000336),
        unit: "vCPU-second",
        source: RUN_PRICING,
        as_of: "2026-11-25",
    },
    Price {
        item: PriceItem::RunRequestGibSecond,
        usd: 0.0000025,
        tier2_usd: Some(0.0000035),
        unit: "GiB-second",
        source: RUN_PRICING,
        as_of: "2026-11-25",
    },
    Price {
        item: PriceItem::RunRequest,
        usd: 0.000_000_4,
        tier2_usd: None,
        unit: "request",
        source: RUN_PRICING,
        as_of: "2026-11-25",
    },
    Price {
        item: PriceItem::RunIdleMinInstanceVcpuSecond,
        usd: 0.0000025,
        tier2_usd: Some(0.0000035),
        unit: "vCPU-second",
        source: "firebase-tools src/deploy/functions/pricing.ts idleVCpu; memory of idle instances keeps the GiB-second rate",
        as_of: "2026-11-25",
    },
    Price {
        item: PriceItem::RunInstanceVcpuSecond,
        usd: 0.000018,
        tier2_usd: None,
        unit: "vCPU-second",
        source: "cloud.google.com/run/pricing (stored copy): \"Services with CPU always allocated, Jobs: $0.00001800/vCPU-second\"",
        as_of: "2026-11-25",
    },
    Price {
        item: PriceItem::RunInstanceGibSecond,
        usd: 0.000002,
        tier2_usd: None,
        unit: "GiB-second",
        source: "third-party pricing docs (\"In Iowa ... $0.000002/GiB-second\")",
        as_of: "2026-08-02",
    },
    Price {
        item: PriceItem::TasksOperation,
        usd: 0.000_000_4,
        tier2_usd: None,
        unit: "operation",
        source: "cloud.google.com/tasks/docs/pricing ($0.40 per million up to 5 billion)",
        as_of: "2026-11-25",
    },
    Price {
        item: PriceItem::BigQueryActiveStorageGibMonth,
        usd: 0.02,
        tier2_usd: None,
        unit: "GiB-month",
        source: "cloud.google.com/bigquery/pricing (logical storage, US multi-region)",
        as_of: "2026-11-25",
    },
    Price {
        item: PriceItem::BigQueryLongTermStorageGibMonth,
        usd: 0.01,
        tier2_usd: None,
        unit: "GiB-month",
        source: "cloud.google.com/bigquery/pricing (logical storage, US multi-region)",
        as_of: "2026-11-25",
    },
    Price {
        item: PriceItem::BigQueryScannedTib,
        usd: 6.25,
        tier2_usd: None,
        unit: "TiB scanned",
        source: "cloud.google.com/bigquery/pricing on-demand (US multi-region; raised from $5 in 2023)",
        as_of: "2025-08-01",
    },
    Price {
        item: PriceItem::ArtifactRegistryGbMonth,
        usd: 0.10,
        tier2_usd: None,
        unit: "GB-month",
        source: "cloud.google.com/artifact-registry/pricing",
        as_of: "2026-11-25",
    },
    Price {
        item: PriceItem::SchedulerJobMonth,
        usd: 0.10,
        tier2_usd: None,
        unit: "job-month",
        source: "cloud.google.com/scheduler/pricing ($0.10 per job per 31 days; paused jobs count)",
        as_of: "2026-11-25",
    },
    Price {
        item: PriceItem::AlertConditionMonth,
        usd: 1.50,
        tier2_usd: None,
        unit: "condition-month",
        source: "cloud.google.com/monitoring/alerts/cost-control ($1.50 per condition per month, from April 2025; time series returned not estimated)",
        as_of: "2025-04-01",
    },
    Price {
        item: PriceItem::FirestoreRead,
        usd: 0.06 / 100_000.0,
        tier2_usd: None,
        unit: "document read",
        source: FIRESTORE_PRICING,
        as_of: "2026-12-05",
    },
    Price {
        item: PriceItem::FirestoreWrite,
        usd: 0.18 / 100_000.0,
        tier2_usd: None,
        unit: "document write",
        source: FIRESTORE_PRICING,
        as_of: "2026-12-05",
    },
    Price {
        item: PriceItem::FirestoreDelete,
        usd: 0.02 / 100_000.0,
        tier2_usd: None,
        unit: "document delete",
        source: FIRESTORE_PRICING,
        as_of: "2026-12-05",
    },
    Price {
        item: PriceItem::FirestoreStorageGibMonth,
        usd: 0.18,
        tier2_usd: None,
        unit: "GiB-month",
        source: FIRESTORE_PRICING,
        as_of: "2026-12-05",
    },
    Price {
        item: PriceItem::ApiGatewayCall,
        usd: 3.00 / 1_000_000.0,
        tier2_usd: None,
        unit: "call",
        source: "cloud.google.com/api-gateway/docs/pricing (GCP-NOTES; RUNTIME-NOTES 11): 0-2M calls a month free, 2M-1B $3.00 per million, over 1B $1.50 per million (the 1B tier is not applied)",
        as_of: "2026-12-05",
    },
];

/// Firestore Standard edition, multi-region (nam5, eur3) rates: the higher ones, so regional
/// databases are over- rather than under-estimated.
const FIRESTORE_PRICING: &str = "cloud.google.com/firestore/pricing (stored copies): multi-region $0.06 per 100,000 reads, $0.18 per 100,000 writes, $0.02 per 100,000 deletes; storage $0.18/GiB-month (multi-region, not re-read: unverified)";

const FREE_TIERS: [FreeTier; 15] = [
    FreeTier {
        item: PriceItem::RunRequestVcpuSecond,
        allowance: 180_000.0,
        unit: "vCPU-seconds",
        scope: "request-based, per billing account per month",
    },
    FreeTier {
        item: PriceItem::RunRequestGibSecond,
        allowance: 360_000.0,
        unit: "GiB-seconds",
        scope: "request-based, per billing account per month",
    },
    FreeTier {
        item: PriceItem::RunRequest,
        allowance: 2_000_000.0,
        unit: "requests",
        scope: "per billing account per month",
    },
    FreeTier {
        item: PriceItem::RunInstanceVcpuSecond,
        allowance: 240_000.0,
        unit: "vCPU-seconds",
        scope: "instance-based, per billing account per month",
    },
    FreeTier {
        item: PriceItem::RunInstanceGibSecond,
        allowance: 450_000.0,
        unit: "GiB-seconds",
        scope: "instance-based, per billing account per month",
    },
    FreeTier {
        item: PriceItem::TasksOperation,
        allowance: 1_000_000.0,
        unit: "operations",
        scope: "per billing account per month",
    },
    FreeTier {
        item: PriceItem::BigQueryActiveStorageGibMonth,
        allowance: 10.0,
        unit: "GiB of storage",
        scope: "per billing account per month",
    },
    FreeTier {
        item: PriceItem::BigQueryScannedTib,
        allowance: 1.0,
        unit: "TiB scanned",
        scope: "per billing account per month",
    },
    FreeTier {
        item: PriceItem::ArtifactRegistryGbMonth,
        allowance: 0.5,
        unit: "GB of storage",
        scope: "per billing account",
    },
    FreeTier {
        item: PriceItem::SchedulerJobMonth,
        allowance: 3.0,
        unit: "jobs",
        scope: "per billing account",
    },
    FreeTier {
        item: PriceItem::FirestoreRead,
        allowance: 1_500_000.0,
        unit: "document reads",
        scope: "50,000 a day, the (default) database only",
    },
    FreeTier {
        item: PriceItem::FirestoreWrite,
        allowance: 600_000.0,
        unit: "document writes",
        scope: "20,000 a day, the (default) database only",
    },
    FreeTier {
        item: PriceItem::FirestoreDelete,
        allowance: 600_000.0,
        unit: "document deletes",
        scope: "20,000 a day, the (default) database only; TTL deletes have no free quota",
    },
    FreeTier {
        item: PriceItem::FirestoreStorageGibMonth,
        allowance: 1.0,
        unit: "GiB of storage",
        scope: "the (default) database only",
    },
    FreeTier {
        item: PriceItem::ApiGatewayCall,
        allowance: 2_000_000.0,
        unit: "calls",
        scope: "per billing account",
    },
];

/// Cloud Run tier-1 regions (cloud.google.com/run/pricing, 2026-11-25).
pub const TIER1_REGIONS: &[&str] = &[
    "asia-east1",
    "asia-northeast1",
    "asia-northeast2",
    "europe-north1",
    "europe-southwest1",
    "europe-west1",
    "europe-west4",
    "europe-west8",
    "europe-west9",
    "me-west1",
    "us-central1",
    "us-east1",
    "us-east4",
    "us-east5",
    "us-south1",
    "us-west1",
];

/// Cloud Run tier-2 regions (cloud.google.com/run/pricing, 2026-11-25). A region in neither
/// list is priced as tier 2 (the higher rate) and the estimate says so.
pub const TIER2_REGIONS: &[&str] = &[
    "africa-south1",
    "asia-east2",
    "asia-northeast3",
    "asia-south1",
    "asia-south2",
    "asia-southeast1",
    "asia-southeast2",
    "australia-southeast1",
    "australia-southeast2",
    "europe-central2",
    "europe-west2",
    "europe-west3",
    "europe-west6",
    "europe-west10",
    "europe-west12",
    "me-central1",
    "me-central2",
    "northamerica-northeast1",
    "northamerica-northeast2",
    "southamerica-east1",
    "southamerica-west1",
    "us-west2",
    "us-west3",
    "us-west4",
];

/// A region's Cloud Run price tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionTier {
    Tier1,
    Tier2,
    /// Not in either list: priced at tier 2.
    Unlisted,
}

pub fn region_tier(region: &str) -> RegionTier {
    if TIER1_REGIONS.contains(&region) {
        RegionTier::Tier1
    } else if TIER2_REGIONS.contains(&region) {
        RegionTier::Tier2
    } else {
        RegionTier::Unlisted
    }
}

/// The prices an estimate uses: the built-in table for one region, and with `--live-prices`
/// the Cloud Billing Catalog's prices over it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriceTable {
    pub region: String,
    pub tier: RegionTier,
    /// The built-in table's date.
    pub table_date: &'static str,
    pub prices: Vec<Price>,
    /// Prices read from the Cloud Billing Catalog for this region; they win over `prices`.
    pub live: Option<LivePrices>,
}

impl PriceTable {
    pub fn builtin(region: &str) -> Self {
        Self {
            region: region.to_string(),
            tier: region_tier(region),
            table_date: TABLE_DATE,
            prices: BUILTIN.to_vec(),
            live: None,
        }
    }

    /// This table with the catalog's prices laid over the built-in ones.
    pub fn with_live(self, live: LivePrices) -> Self {
        Self {
            live: Some(live),
            ..self
        }
    }

    fn entry(&self, item: PriceItem) -> Price {
        self.prices
            .iter()
            .find(|p| p.item == item)
            .copied()
            .unwrap_or_else(|| {
                // Every item is in BUILTIN (a test checks it); keep the built-in figure.
                BUILTIN
                    .iter()
                    .find(|p| p.item == item)
                    .copied()
                    .unwrap_or(BUILTIN[0])
            })
    }

    /// USD per unit of `item` in this table's region: the live price where one was read.
    pub fn usd(&self, item: PriceItem) -> f64 {
        match self.live.as_ref().and_then(|live| live.price(item)) {
            Some(live) => live.usd,
            None => self.builtin_usd(item),
        }
    }

    /// The built-in table's USD per unit of `item` in this table's region.
    pub fn builtin_usd(&self, item: PriceItem) -> f64 {
        let price = self.entry(item);
        match self.tier {
            RegionTier::Tier1 => price.usd,
            RegionTier::Tier2 | RegionTier::Unlisted => price.tier2_usd.unwrap_or(price.usd),
        }
    }

    pub fn price(&self, item: PriceItem) -> Price {
        self.entry(item)
    }

    pub fn free_tiers() -> &'static [FreeTier] {
        &FREE_TIERS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_has_exactly_one_price_with_a_source_and_date() {
        for item in PriceItem::ALL {
            let found: Vec<_> = BUILTIN.iter().filter(|p| p.item == item).collect();
            assert_eq!(found.len(), 1, "{item:?}");
            assert!(!found[0].source.is_empty() && found[0].as_of.len() == 10);
            assert!(found[0].usd > 0.0);
        }
    }

    #[test]
    fn tier2_regions_pay_the_tier2_rate_where_one_exists() {
        let iowa = PriceTable::builtin("us-central1");
        let london = PriceTable::builtin("europe-west2");
        assert_eq!(iowa.tier, RegionTier::Tier1);
        assert_eq!(london.tier, RegionTier::Tier2);
        assert_eq!(iowa.usd(PriceItem::RunRequestVcpuSecond), 0.000024);
        assert_eq!(london.usd(PriceItem::RunRequestVcpuSecond), 0.0000336);
        // No tier-2 figure: the one price applies.
        assert_eq!(london.usd(PriceItem::TasksOperation), 0.0000004);
        assert_eq!(region_tier("mars-north1"), RegionTier::Unlisted);
        assert_eq!(
            PriceTable::builtin("mars-north1").usd(PriceItem::RunRequestGibSecond),
            0.0000035
        );
    }

    #[test]
    fn no_region_is_in_both_tiers() {
        for region in TIER1_REGIONS {
            assert!(!TIER2_REGIONS.contains(region), "{region}");
        }
    }
}

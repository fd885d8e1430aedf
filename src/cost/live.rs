//! Live prices (`--live-prices`): which Cloud Billing Catalog SKU prices each built-in item, and
//! how a SKU's tiered rates in the catalog's units become that item's price for the stack's region.
//!
//! A SKU is found by service id and SKU id first; when none of the listed ids is in the catalog
//! (or the SKUs are per region, like Cloud Run's instance-based ones), by its description among
//! the SKUs offered in the region. The rate taken is the first paid tier's (the built-in table
//! quotes the price after the free tier), converted to the item's unit through the catalog's base
//! unit. An item the catalog cannot price keeps its built-in price and is named in a warning.

use serde::{Deserialize, Serialize};

use super::prices::{PriceItem, PriceTable};
use crate::provider::billing_catalog::SkuRecord;

/// Seconds in the catalog's month (its `GiBy.mo` -> `By.s` factor is 2^30 x 2,678,400: 31 days).
const CATALOG_MONTH_SECONDS: f64 = 31.0 * 24.0 * 3600.0;
const GIB: f64 = 1_073_741_824.0;

const CLOUD_RUN: &str = "152E-C115-5142";
const CLOUD_TASKS: &str = "F3A6-D7B7-9BDA";
const BIGQUERY: &str = "24E6-581D-38E5";
const ARTIFACT_REGISTRY: &str = "149C-F9EC-3994";
const CLOUD_SCHEDULER: &str = "1F14-4801-0E16";
const CLOUD_MONITORING: &str = "58CD-E7C3-72CA";
const CLOUD_FIRESTORE: &str = "EE2C-7FAC-5E08";
const API_GATEWAY: &str = "36A9-155B-23F0";

/// An item's unit as the catalog meters it: the usage unit a SKU for it normally quotes, and
/// the item's unit in the catalog's base unit (`GiB-second` = 2^30 `By.s`).
#[derive(Debug, Clone, Copy)]
struct CatalogUnit {
    usage_unit: &'static str,
    base_unit: &'static str,
    base_units_per_item_unit: f64,
}

const SECONDS: CatalogUnit = CatalogUnit {
    usage_unit: "s",
    base_unit: "s",
    base_units_per_item_unit: 1.0,
};
const GIB_SECONDS: CatalogUnit = CatalogUnit {
    usage_unit: "GiBy.s",
    base_unit: "By.s",
    base_units_per_item_unit: GIB,
};
const COUNT: CatalogUnit = CatalogUnit {
    usage_unit: "count",
    base_unit: "count",
    base_units_per_item_unit: 1.0,
};
/// Google's storage "GB" is 2^30 bytes (Artifact Registry bills GiBy.mo).
const GIB_MONTHS: CatalogUnit = CatalogUnit {
    usage_unit: "GiBy.mo",
    base_unit: "By.s",
    base_units_per_item_unit: GIB * CATALOG_MONTH_SECONDS,
};
const TIB: CatalogUnit = CatalogUnit {
    usage_unit: "TiBy",
    base_unit: "By",
    base_units_per_item_unit: GIB * 1024.0,
};
const MONTHS: CatalogUnit = CatalogUnit {
    usage_unit: "mo",
    base_unit: "s",
    base_units_per_item_unit: CATALOG_MONTH_SECONDS,
};

/// Where a SKU must be offered to price an item for the stack.
#[derive(Debug, Clone, Copy)]
enum Offered {
    /// In the stack's region (Cloud Run's tier-1/tier-2 and per-region SKUs).
    InStackRegion,
    /// In this location whatever the stack's region (the built-in BigQuery prices are the US
    /// multi-region's).
    In(&'static str),
    /// Anywhere: one SKU for all regions.
    Globally,
}

/// How the catalog prices one built-in item.
struct SkuMapping {
    item: PriceItem,
    service_id: &'static str,
    /// The SKUs that price it (tier-1 and tier-2 where Cloud Run splits them); empty where
    /// there is one SKU per region.
    sku_ids: &'static [&'static str],
    /// Their descriptions, for the fallback; `{region}` stands for the stack's region.
    descriptions: &'static [&'static str],
    offered: Offered,
    unit: CatalogUnit,
}

const MAPPINGS: [SkuMapping; 18] = [
    SkuMapping {
        item: PriceItem::RunRequestVcpuSecond,
        service_id: CLOUD_RUN,
        sku_ids: &["CF1B-7D5E-4B16", "A6E4-2B8C-9F07"],
        descriptions: &[
            "Services CPU (Request-based billing)",
            "Services CPU Tier 2 (Request-based billing)",
        ],
        offered: Offered::InStackRegion,
        unit: SECONDS,
    },
    SkuMapping {
        item: PriceItem::RunRequestGibSecond,
        service_id: CLOUD_RUN,
        sku_ids: &["3B9D-E04A-71C2", "58A0-C6F3-0D9E"],
        descriptions: &[
            "Services Memory (Request-based billing)",
            "Services Memory Tier 2 (Request-based billing)",
        ],
        offered: Offered::InStackRegion,
        unit: GIB_SECONDS,
    },
    SkuMapping {
        item: PriceItem::RunRequest,
        service_id: CLOUD_RUN,
        sku_ids: &["E2D7-1A64-B85F"],
        descriptions: &["Requests"],
        offered: Offered::Globally,
        unit: COUNT,
    },
    SkuMapping {
        item: PriceItem::RunIdleMinInstanceVcpuSecond,
        service_id: CLOUD_RUN,
        sku_ids: &["7C41-9E2B-D306", "91F8-4D0C-6A3B"],
        descriptions: &[
            "Services Min Instance CPU (Request-based billing)",
            "Services Min Instance CPU Tier 2 (Request-based billing)",
        ],
        offered: Offered::InStackRegion,
        unit: SECONDS,
    },
    SkuMapping {
        item: PriceItem::RunInstanceVcpuSecond,
        service_id: CLOUD_RUN,
        sku_ids: &[],
        descriptions: &["Services CPU (Instance-based billing) in {region}"],
        offered: Offered::InStackRegion,
        unit: SECONDS,
    },
    SkuMapping {
        item: PriceItem::RunInstanceGibSecond,
        service_id: CLOUD_RUN,
        sku_ids: &[],
        descriptions: &["Services Memory (Instance-based billing) in {region}"],
        offered: Offered::InStackRegion,
        unit: GIB_SECONDS,
    },
    SkuMapping {
        item: PriceItem::TasksOperation,
        service_id: CLOUD_TASKS,
        sku_ids: &["D5A2-3C81-F64E"],
        descriptions: &["Cloud Tasks Billable Operations"],
        offered: Offered::Globally,
        unit: COUNT,
    },
    SkuMapping {
        item: PriceItem::BigQueryActiveStorageGibMonth,
        service_id: BIGQUERY,
        sku_ids: &["4F3E-9A1D-0B72"],
        descriptions: &["Active Logical Storage"],
        offered: Offered::In("us"),
        unit: GIB_MONTHS,
    },
    SkuMapping {
        item: PriceItem::BigQueryLongTermStorageGibMonth,
        service_id: BIGQUERY,
        sku_ids: &["8E60-25B4-C9D1"],
        descriptions: &["Long Term Logical Storage"],
        offered: Offered::In("us"),
        unit: GIB_MONTHS,
    },
    SkuMapping {
        item: PriceItem::BigQueryScannedTib,
        service_id: BIGQUERY,
        sku_ids: &["1C7A-F0E3-5D28"],
        descriptions: &["Analysis"],
        offered: Offered::In("us"),
        unit: TIB,
    },
    SkuMapping {
        item: PriceItem::ArtifactRegistryGbMonth,
        service_id: ARTIFACT_REGISTRY,
        sku_ids: &["62B9-D84E-A017"],
        descriptions: &["Artifact Registry Storage"],
        offered: Offered::Globally,
        unit: GIB_MONTHS,
    },
    SkuMapping {
        item: PriceItem::SchedulerJobMonth,
        service_id: CLOUD_SCHEDULER,
        sku_ids: &["0A4D-7B95-E3C6"],
        descriptions: &["Jobs"],
        offered: Offered::Globally,
        unit: MONTHS,
    },
    SkuMapping {
        item: PriceItem::AlertConditionMonth,
        service_id: CLOUD_MONITORING,
        sku_ids: &["F917-0C3A-48BD"],
        descriptions: &["Alerting Policy Conditions"],
        offered: Offered::Globally,
        unit: MONTHS,
    },
    // Firestore bills per location; the built-in figures are the nam5 multi-region's, so nam5's
    // SKUs are the ones compared (matched by description: their ids are not recorded here).
    SkuMapping {
        item: PriceItem::FirestoreRead,
        service_id: CLOUD_FIRESTORE,
        sku_ids: &[],
        descriptions: &["Cloud Firestore Read Ops"],
        offered: Offered::In("nam5"),
        unit: COUNT,
    },
    SkuMapping {
        item: PriceItem::FirestoreWrite,
        service_id: CLOUD_FIRESTORE,
        sku_ids: &[],
        descriptions: &["Cloud Firestore Entity Writes"],
        offered: Offered::In("nam5"),
        unit: COUNT,
    },
    SkuMapping {
        item: PriceItem::FirestoreDelete,
        service_id: CLOUD_FIRESTORE,
        sku_ids: &[],
        descriptions: &["Cloud Firestore Entity Deletes"],
        offered: Offered::In("nam5"),
        unit: COUNT,
    },
    SkuMapping {
        item: PriceItem::FirestoreStorageGibMonth,
        service_id: CLOUD_FIRESTORE,
        sku_ids: &[],
        descriptions: &["Cloud Firestore Storage"],
        offered: Offered::In("nam5"),
        unit: GIB_MONTHS,
    },
    // Matched by description: the SKU id of API Gateway calls is not in our notes.
    SkuMapping {
        item: PriceItem::ApiGatewayCall,
        service_id: API_GATEWAY,
        sku_ids: &[],
        descriptions: &["API Gateway API calls"],
        offered: Offered::Globally,
        unit: COUNT,
    },
];

/// The catalog services whose SKUs `--live-prices` reads.
pub fn service_ids() -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = MAPPINGS.iter().map(|m| m.service_id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// How a SKU was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    SkuId,
    DescriptionAndRegion,
}

/// One price read from the catalog, in the built-in item's unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LivePrice {
    pub item: PriceItem,
    pub usd: f64,
    /// `services/SERVICE/skus/SKU`
    pub sku: String,
    pub matched_by: MatchedBy,
    /// "Cloud Billing Catalog, SKU X "description", read DATE".
    pub source: String,
}

/// An item the catalog could not price: it keeps its built-in price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissingPrice {
    pub item: PriceItem,
    pub reason: String,
}

/// What one read of the catalog gave, for one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LivePrices {
    /// The UTC date of the read.
    pub read_on: String,
    pub prices: Vec<LivePrice>,
    pub missing: Vec<MissingPrice>,
}

impl LivePrices {
    pub fn price(&self, item: PriceItem) -> Option<&LivePrice> {
        self.prices.iter().find(|p| p.item == item)
    }
}

/// Whitespace and case do not distinguish descriptions ("Tier 2  (Request-based billing)").
fn same_description(a: &str, b: &str) -> bool {
    let words = |s: &str| {
        s.split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
    };
    words(a) == words(b)
}

/// The SKU that prices `mapping` in `region`, and how it was found.
fn find_sku<'a>(
    mapping: &SkuMapping,
    skus: &'a [SkuRecord],
    region: &str,
) -> Option<(&'a SkuRecord, MatchedBy)> {
    let offered_here = |sku: &SkuRecord| {
        let offered_in = |location: &str| sku.service_regions.iter().any(|r| r == location);
        match mapping.offered {
            Offered::InStackRegion => offered_in(region),
            Offered::In(location) => offered_in(location),
            Offered::Globally => true,
        }
    };
    let by_id = skus
        .iter()
        .find(|s| mapping.sku_ids.contains(&s.sku_id.as_str()) && offered_here(s));
    if let Some(sku) = by_id {
        return Some((sku, MatchedBy::SkuId));
    }
    skus.iter()
        .find(|s| {
            offered_here(s)
                && mapping
                    .descriptions
                    .iter()
                    .any(|d| same_description(&d.replace("{region}", region), &s.description))
        })
        .map(|s| (s, MatchedBy::DescriptionAndRegion))
}

/// The first paid tier's rate (the built-in table quotes the price after the free tier) in the
/// item's unit: directly when the SKU quotes the usual usage unit, else through the base unit.
fn unit_price(sku: &SkuRecord, unit: CatalogUnit) -> Result<f64, String> {
    let tier = sku
        .tiers
        .iter()
        .find(|t| t.unit_price > 0.0)
        .ok_or_else(|| format!("SKU {} has no paid tier", sku.sku_id))?;
    if !(tier.currency.is_empty() || tier.currency == "USD") {
        return Err(format!(
            "SKU {} is priced in {}, not USD",
            sku.sku_id, tier.currency
        ));
    }
    if sku.usage_unit == unit.usage_unit {
        return Ok(tier.unit_price);
    }
    if sku.base_unit == unit.base_unit && sku.base_unit_conversion_factor > 0.0 {
        return Ok(
            tier.unit_price / sku.base_unit_conversion_factor * unit.base_units_per_item_unit
        );
    }
    Err(format!(
        "SKU {} is metered in {} (base unit {:?}), which does not convert to {}",
        sku.sku_id, sku.usage_unit, sku.base_unit, unit.usage_unit
    ))
}

/// Prices every built-in item from the catalog's SKUs (by service id; a service missing from the
/// map is not in the catalog) for `region`.
pub fn read(
    skus_by_service: &std::collections::BTreeMap<String, Vec<SkuRecord>>,
    region: &str,
    read_on: &str,
) -> LivePrices {
    let mut prices = Vec::new();
    let mut missing = Vec::new();
    for mapping in &MAPPINGS {
        let Some(skus) = skus_by_service.get(mapping.service_id) else {
            missing.push(MissingPrice {
                item: mapping.item,
                reason: format!(
                    "service {} ({}) is not in the catalog",
                    mapping.service_id,
                    mapping.item.product()
                ),
            });
            continue;
        };
        let found = find_sku(mapping, skus, region).ok_or_else(|| {
            let wanted = mapping
                .descriptions
                .iter()
                .map(|d| format!("\"{}\"", d.replace("{region}", region)))
                .collect::<Vec<_>>()
                .join(" or ");
            format!(
                "no {} SKU {wanted} is offered in {}",
                mapping.item.product(),
                match mapping.offered {
                    Offered::InStackRegion => region,
                    Offered::In(location) => location,
                    Offered::Globally => "the catalog",
                }
            )
        });
        match found.and_then(|(sku, matched_by)| {
            unit_price(sku, mapping.unit).map(|usd| (sku, matched_by, usd))
        }) {
            Ok((sku, matched_by, usd)) => prices.push(LivePrice {
                item: mapping.item,
                usd,
                sku: sku.name.clone(),
                matched_by,
                source: format!(
                    "Cloud Billing Catalog, SKU {} \"{}\"{}, read {read_on}",
                    sku.sku_id,
                    sku.description,
                    match matched_by {
                        MatchedBy::SkuId => "",
                        MatchedBy::DescriptionAndRegion => " (matched by description and region)",
                    }
                ),
            }),
            Err(reason) => missing.push(MissingPrice {
                item: mapping.item,
                reason,
            }),
        }
    }
    LivePrices {
        read_on: read_on.to_string(),
        prices,
        missing,
    }
}

/// A live price this far from the built-in one is worth a look (a unit misread is off by
/// orders of magnitude; a real price change rarely by half).
const NOTABLE_CHANGE: f64 = 0.5;

/// The lines `--live-prices` prints on stderr: every item kept at its built-in price, and every
/// live price more than 50% away from the built-in one.
pub fn warnings(table: &PriceTable) -> Vec<String> {
    let Some(live) = &table.live else {
        return Vec::new();
    };
    let kept = live.missing.iter().map(|m| {
        format!(
            "the Cloud Billing Catalog gave no price for {}: {}; using the built-in ${} per {} of {}",
            m.item.describe(),
            m.reason,
            table.builtin_usd(m.item),
            table.price(m.item).unit,
            table.table_date
        )
    });
    let changed = live.prices.iter().filter_map(|p| {
        let builtin = table.builtin_usd(p.item);
        let change = p.usd / builtin - 1.0;
        (change.abs() > NOTABLE_CHANGE).then(|| {
            format!(
                "the live price of {} is ${} per {}, {:+.0}% against the built-in ${builtin} of {} ({})",
                p.item.describe(),
                p.usd,
                table.price(p.item).unit,
                change * 100.0,
                table.table_date,
                p.source
            )
        })
    });
    kept.chain(changed).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::provider::billing_catalog::TierRecord;

    fn tiers(rates: &[(f64, f64)]) -> Vec<TierRecord> {
        rates
            .iter()
            .map(|&(start, price)| TierRecord {
                start_usage_amount: start,
                currency: "USD".into(),
                unit_price: price,
            })
            .collect()
    }

    fn sku(
        id: &str,
        description: &str,
        regions: &[&str],
        (usage_unit, base_unit, factor): (&str, &str, f64),
        rates: &[(f64, f64)],
    ) -> SkuRecord {
        SkuRecord {
            name: format!("services/S/skus/{id}"),
            sku_id: id.into(),
            description: description.into(),
            service_regions: regions.iter().map(|r| r.to_string()).collect(),
            usage_unit: usage_unit.into(),
            base_unit: base_unit.into(),
            base_unit_conversion_factor: factor,
            tiers: tiers(rates),
        }
    }

    const GIBY_MO: (&str, &str, f64) = ("GiBy.mo", "By.s", 2.875_910_101_401_6e15);

    #[test]
    fn the_first_paid_tier_is_the_price() {
        let run = sku(
            "K",
            "d",
            &["us-central1"],
            ("s", "s", 1.0),
            &[(0.0, 0.0), (180_000.0, 0.000024)],
        );
        assert_eq!(unit_price(&run, SECONDS), Ok(0.000024));
        // Monitoring's volume tiers: the first paid one, not the cheaper ones after it.
        let volume = sku(
            "M",
            "d",
            &["global"],
            ("MiBy", "By", 1_048_576.0),
            &[(0.0, 0.0), (150.0, 0.258), (100_000.0, 0.151)],
        );
        assert_eq!(
            unit_price(
                &volume,
                CatalogUnit {
                    usage_unit: "MiBy",
                    base_unit: "By",
                    base_units_per_item_unit: 1_048_576.0
                }
            ),
            Ok(0.258)
        );
        let one_tier = sku(
            "A",
            "d",
            &["global"],
            ("mo", "s", 2_678_400.0),
            &[(0.0, 1.5)],
        );
        assert_eq!(unit_price(&one_tier, MONTHS), Ok(1.5));
        let free = sku(
            "F",
            "d",
            &["global"],
            ("mo", "s", 2_678_400.0),
            &[(0.0, 0.0)],
        );
        assert!(unit_price(&free, MONTHS).is_err());
    }

    #[test]
    fn units_convert_through_the_base_unit() {
        let close = |a: f64, b: f64| (a / b - 1.0).abs() < 1e-12;
        // Same usage unit: taken as is.
        let monthly = sku("B", "d", &["us"], GIBY_MO, &[(0.0, 0.02)]);
        assert_eq!(unit_price(&monthly, GIB_MONTHS), Ok(0.02));
        // Per GiB-day (31 of them in the catalog's month) to per GiB-month.
        let daily = sku(
            "D",
            "d",
            &["us"],
            ("GiBy.d", "By.s", GIB * 86_400.0),
            &[(0.0, 0.02 / 31.0)],
        );
        assert!(close(unit_price(&daily, GIB_MONTHS).unwrap(), 0.02));
        // Per byte-second to per GiB-month.
        let per_byte_second = sku(
            "S",
            "d",
            &["us"],
            ("By.s", "By.s", 1.0),
            &[(0.0, 0.02 / (GIB * CATALOG_MONTH_SECONDS))],
        );
        assert!(close(
            unit_price(&per_byte_second, GIB_MONTHS).unwrap(),
            0.02
        ));
        // Per GiB scanned to per TiB scanned.
        let per_gib = sku(
            "G",
            "d",
            &["us"],
            ("GiBy", "By", GIB),
            &[(0.0, 6.25 / 1024.0)],
        );
        assert!(close(unit_price(&per_gib, TIB).unwrap(), 6.25));
        // A base unit that is not the item's cannot be converted.
        let wrong = sku("W", "d", &["us"], ("GiBy", "By", GIB), &[(0.0, 1.0)]);
        assert!(unit_price(&wrong, GIB_MONTHS).is_err());
        let euros = SkuRecord {
            tiers: vec![TierRecord {
                start_usage_amount: 0.0,
                currency: "EUR".into(),
                unit_price: 1.0,
            }],
            ..monthly
        };
        assert!(unit_price(&euros, GIB_MONTHS).is_err());
    }

    fn run_skus() -> Vec<SkuRecord> {
        vec![
            sku(
                "CF1B-7D5E-4B16",
                "Services CPU (Request-based billing)",
                &["us-central1", "europe-west1"],
                ("s", "s", 1.0),
                &[(0.0, 0.0), (180_000.0, 0.00003)],
            ),
            sku(
                "RENUMBERED",
                "Services CPU Tier 2  (Request-based billing)",
                &["europe-west2"],
                ("s", "s", 1.0),
                &[(0.0, 0.00004)],
            ),
            sku(
                "X1",
                "Services CPU (Instance-based billing) in us-central1",
                &["us-central1"],
                ("s", "s", 1.0),
                &[(0.0, 0.00002)],
            ),
        ]
    }

    #[test]
    fn skus_are_found_by_id_then_by_description_in_the_stack_region() {
        let mapping = &MAPPINGS[0];
        let skus = run_skus();
        let (iowa, how) = find_sku(mapping, &skus, "us-central1").expect("tier 1");
        assert_eq!(
            (iowa.sku_id.as_str(), how),
            ("CF1B-7D5E-4B16", MatchedBy::SkuId)
        );
        // The tier-2 SKU's id changed: its description (spacing aside) and region still match.
        let (london, how) = find_sku(mapping, &skus, "europe-west2").expect("tier 2");
        assert_eq!(
            (london.sku_id.as_str(), how),
            ("RENUMBERED", MatchedBy::DescriptionAndRegion)
        );
        assert!(find_sku(mapping, &skus, "mars-north1").is_none());
        let instance = &MAPPINGS[4];
        let (sku, how) = find_sku(instance, &skus, "us-central1").expect("per region");
        assert_eq!(
            (sku.sku_id.as_str(), how),
            ("X1", MatchedBy::DescriptionAndRegion)
        );
        assert!(find_sku(instance, &skus, "europe-west1").is_none());
    }

    #[test]
    fn live_prices_overlay_and_the_rest_keep_the_builtin_price_with_a_warning() {
        let catalog = BTreeMap::from([(CLOUD_RUN.to_string(), run_skus())]);
        let live = read(&catalog, "us-central1", "2026-12-01");
        let table = PriceTable::builtin("us-central1").with_live(live);
        assert_eq!(table.usd(PriceItem::RunRequestVcpuSecond), 0.00003);
        assert_eq!(table.usd(PriceItem::RunInstanceVcpuSecond), 0.00002);
        let source = &table
            .live
            .as_ref()
            .and_then(|l| l.price(PriceItem::RunRequestVcpuSecond))
            .expect("live")
            .source;
        assert_eq!(
            source,
            "Cloud Billing Catalog, SKU CF1B-7D5E-4B16 \"Services CPU (Request-based billing)\", read 2026-12-01"
        );
        // Not in the catalog: the built-in price, named.
        assert_eq!(table.usd(PriceItem::RunRequest), 0.0000004);
        assert_eq!(table.usd(PriceItem::TasksOperation), 0.0000004);
        let warnings = warnings(&table);
        assert!(warnings.iter().any(|w| w
            == "the Cloud Billing Catalog gave no price for Cloud Run request: no Cloud Run SKU \"Requests\" is offered in the catalog; using the built-in $0.0000004 per request of 2026-11-25"), "{warnings:#?}");
        assert!(warnings.iter().any(|w| w.starts_with(
            "the Cloud Billing Catalog gave no price for Cloud Tasks operation: service F3A6-D7B7-9BDA (Cloud Tasks) is not in the catalog;"
        )));
        assert_eq!(warnings.len(), 16, "{warnings:#?}");
        // Every item is either priced live or named.
        let live = table.live.as_ref().expect("live");
        assert_eq!(live.prices.len() + live.missing.len(), PriceItem::ALL.len());
    }

    #[test]
    fn a_price_far_from_the_builtin_one_is_pointed_out() {
        let doubled = sku(
            "CF1B-7D5E-4B16",
            "Services CPU (Request-based billing)",
            &["us-central1"],
            ("s", "s", 1.0),
            &[(0.0, 0.0), (180_000.0, 0.000048)],
        );
        let catalog = BTreeMap::from([(CLOUD_RUN.to_string(), vec![doubled])]);
        let table =
            PriceTable::builtin("us-central1").with_live(read(&catalog, "us-central1", "d"));
        assert!(warnings(&table).iter().any(|w| w.starts_with(
            "the live price of Cloud Run vCPU-second (request-based) is $0.000048 per vCPU-second, +100% against the built-in $0.000024 of 2026-11-25"
        )));
    }

    #[test]
    fn every_item_has_one_mapping_and_one_service_list_entry() {
        for item in PriceItem::ALL {
            assert_eq!(
                MAPPINGS.iter().filter(|m| m.item == item).count(),
                1,
                "{item:?}"
            );
        }
        assert_eq!(service_ids().len(), 8);
    }
}

//! Cloud Billing Catalog v1 (`cloudbilling.googleapis.com`): the public services and the SKUs,
//! with list prices, of the products stackctl prices; tests change a SKU's price or withdraw it
//! through `POST /_emulator/cloudbilling/skus`. And projects' billing links
//! (`projects.getBillingInfo`/`updateBillingInfo`): a project is linked to
//! [`LOCAL_BILLING_ACCOUNT`] until someone links it elsewhere or unlinks it (an empty
//! `billingAccountName`), so `stackctl doctor` can be tested both ways.
//!
//! The catalog is seeded with the figures of stackctl's built-in price table (2026-11-25), so a
//! live read changes no estimate until a test changes a price. Service ids are Google's; SKU
//! shapes (units, base-unit conversion factors, free tiers as a zero-priced first tier, tier-1
//! and tier-2 Cloud Run SKUs, per-region instance-based SKUs) follow the real catalog, but the
//! SKU ids are the emulator's own, in the catalog's format.

use chrono::Duration;
use serde_json::{Value, json};

use super::{Call, Context, Reply};
use crate::conventions::ApiError;
use crate::conventions::paging::PagePolicy;
use crate::conventions::wire::{parse_timestamp, stable_hash, timestamp};
use crate::state::State;

/// The billing account every emulated project starts linked to.
pub const LOCAL_BILLING_ACCOUNT: &str = "billingAccounts/000000-000000-000000";

/// `ProjectBillingInfo` of `project`.
fn billing_info(state: &State, project: &str) -> Value {
    state
        .project_billing
        .get(project)
        .cloned()
        .unwrap_or_else(|| {
            json!({
                "name": format!("projects/{project}/billingInfo"),
                "projectId": project,
                "billingAccountName": LOCAL_BILLING_ACCOUNT,
                "billingEnabled": true,
            })
        })
}

/// `projects.getBillingInfo`.
pub fn get_billing_info(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let project = call.param("projectsId")?;
    Ok(Reply::Json(billing_info(context.state, project)))
}

/// `projects.updateBillingInfo`: links the project to `billingAccountName`, or unlinks it (empty).
pub fn update_billing_info(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let project = call.param("projectsId")?.to_string();
    let account = call.body_or_empty()["billingAccountName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !account.is_empty() && !account.starts_with("billingAccounts/") {
        return Err(ApiError::invalid_argument(format!(
            "Invalid billing account name: {account} (expected billingAccounts/XXXXXX-XXXXXX-XXXXXX)."
        )));
    }
    let info = json!({
        "name": format!("projects/{project}/billingInfo"),
        "projectId": project,
        "billingAccountName": account,
        "billingEnabled": !account.is_empty(),
    });
    context.state.project_billing.insert(project, info.clone());
    Ok(Reply::Json(info))
}

/// "Defaults to 5000": both list methods answer up to 5000 per page.
const SERVICES_POLICY: PagePolicy = PagePolicy {
    default_size: 5000,
    max_size: 5000,
    size_param: "pageSize",
    token_kind: "services",
};
const SKUS_POLICY: PagePolicy = PagePolicy {
    default_size: 5000,
    max_size: 5000,
    size_param: "pageSize",
    token_kind: "skus",
};

pub const CLOUD_RUN: &str = "152E-C115-5142";
const BIGQUERY: &str = "24E6-581D-38E5";
const ARTIFACT_REGISTRY: &str = "149C-F9EC-3994";
const CLOUD_TASKS: &str = "F3A6-D7B7-9BDA";
const CLOUD_SCHEDULER: &str = "1F14-4801-0E16";
const CLOUD_MONITORING: &str = "58CD-E7C3-72CA";
const CLOUD_FIRESTORE: &str = "EE2C-7FAC-5E08";
const API_GATEWAY: &str = "36A9-155B-23F0";

/// `services.list`: the priced services and a few neighbours (their SKUs are not served).
const SERVICES: &[(&str, &str)] = &[
    (ARTIFACT_REGISTRY, "Artifact Registry"),
    (CLOUD_RUN, "Cloud Run"),
    (CLOUD_SCHEDULER, "Cloud Scheduler"),
    (BIGQUERY, "BigQuery"),
    (CLOUD_MONITORING, "Cloud Monitoring"),
    (CLOUD_TASKS, "Cloud Tasks"),
    (CLOUD_FIRESTORE, "Firestore"),
    (API_GATEWAY, "API Gateway"),
    ("5490-F7B7-8DF6", "Cloud Logging"),
    ("6F81-5844-456A", "Compute Engine"),
    ("95FF-2EF5-5EA1", "Cloud Storage"),
    ("EE82-7A5E-871C", "Secret Manager"),
];

/// Cloud Run's tier-1 regions (cloud.google.com/run/pricing, 2026-11-25). Google's fact, kept
/// apart from stackctl's own copy in its built-in table on purpose: a live read is what
/// compares the two.
const RUN_TIER1: &[&str] = &[
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

/// Cloud Run's tier-2 regions.
const RUN_TIER2: &[&str] = &[
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

/// How a SKU is metered: its usage unit and that unit's size in the base unit of usage exports.
struct Meter {
    usage_unit: &'static str,
    usage_unit_description: &'static str,
    base_unit: &'static str,
    base_unit_description: &'static str,
    base_unit_conversion_factor: f64,
    display_quantity: f64,
}

const SECONDS: Meter = Meter {
    usage_unit: "s",
    usage_unit_description: "second",
    base_unit: "s",
    base_unit_description: "second",
    base_unit_conversion_factor: 1.0,
    display_quantity: 1.0,
};
const GIB_SECONDS: Meter = Meter {
    usage_unit: "GiBy.s",
    usage_unit_description: "gibibyte second",
    base_unit: "By.s",
    base_unit_description: "byte second",
    base_unit_conversion_factor: 1_073_741_824.0,
    display_quantity: 1.0,
};
const COUNT: Meter = Meter {
    usage_unit: "count",
    usage_unit_description: "count",
    base_unit: "count",
    base_unit_description: "count",
    base_unit_conversion_factor: 1.0,
    display_quantity: 1_000_000.0,
};
/// The catalog's month is 31 days: 2^30 bytes x 2,678,400 seconds.
const GIB_MONTHS: Meter = Meter {
    usage_unit: "GiBy.mo",
    usage_unit_description: "gibibyte month",
    base_unit: "By.s",
    base_unit_description: "byte second",
    base_unit_conversion_factor: 2.875_910_101_401_6e15,
    display_quantity: 1.0,
};
const TIB: Meter = Meter {
    usage_unit: "TiBy",
    usage_unit_description: "tebibyte",
    base_unit: "By",
    base_unit_description: "byte",
    base_unit_conversion_factor: 1_099_511_627_776.0,
    display_quantity: 1.0,
};
const MIB: Meter = Meter {
    usage_unit: "MiBy",
    usage_unit_description: "mebibyte",
    base_unit: "By",
    base_unit_description: "byte",
    base_unit_conversion_factor: 1_048_576.0,
    display_quantity: 1.0,
};
const MONTHS: Meter = Meter {
    usage_unit: "mo",
    usage_unit_description: "month",
    base_unit: "s",
    base_unit_description: "second",
    base_unit_conversion_factor: 2_678_400.0,
    display_quantity: 1.0,
};

/// Where a SKU is offered.
enum Offered {
    Global,
    /// One SKU for all these regions (Cloud Run's tier-1 or tier-2 list).
    Regions(&'static [&'static str]),
    /// A multi-region location (`us`).
    MultiRegion(&'static str),
    /// One SKU per region, `"<description> in <region>"`, with an id derived from both.
    EachRegionOf(&'static [&'static [&'static str]]),
}

/// A tier: usage above `start` (in usage units) costs `units` dollars plus `nanos` 10^-9 dollars.
type Tier = (f64, i64, i32);

struct SkuSeed {
    service: &'static str,
    /// Empty for [`Offered::EachRegionOf`] SKUs (derived per region).
    sku_id: &'static str,
    description: &'static str,
    resource_family: &'static str,
    resource_group: &'static str,
    offered: Offered,
    meter: &'static Meter,
    tiers: &'static [Tier],
}

const FREE: Tier = (0.0, 0, 0);

const SKUS: &[SkuSeed] = &[
    SkuSeed {
        service: CLOUD_RUN,
        sku_id: "CF1B-7D5E-4B16",
        description: "Services CPU (Request-based billing)",
        resource_family: "ApplicationServices",
        resource_group: "CPU",
        offered: Offered::Regions(RUN_TIER1),
        meter: &SECONDS,
        tiers: &[FREE, (180_000.0, 0, 24_000)],
    },
    SkuSeed {
        service: CLOUD_RUN,
        sku_id: "A6E4-2B8C-9F07",
        description: "Services CPU Tier 2 (Request-based billing)",
        resource_family: "ApplicationServices",
        resource_group: "CPU",
        offered: Offered::Regions(RUN_TIER2),
        meter: &SECONDS,
        tiers: &[(0.0, 0, 33_600)],
    },
    SkuSeed {
        service: CLOUD_RUN,
        sku_id: "3B9D-E04A-71C2",
        description: "Services Memory (Request-based billing)",
        resource_family: "ApplicationServices",
        resource_group: "RAM",
        offered: Offered::Regions(RUN_TIER1),
        meter: &GIB_SECONDS,
        tiers: &[FREE, (360_000.0, 0, 2_500)],
    },
    SkuSeed {
        service: CLOUD_RUN,
        sku_id: "58A0-C6F3-0D9E",
        description: "Services Memory Tier 2 (Request-based billing)",
        resource_family: "ApplicationServices",
        resource_group: "RAM",
        offered: Offered::Regions(RUN_TIER2),
        meter: &GIB_SECONDS,
        tiers: &[(0.0, 0, 3_500)],
    },
    SkuSeed {
        service: CLOUD_RUN,
        sku_id: "E2D7-1A64-B85F",
        description: "Requests",
        resource_family: "ApplicationServices",
        resource_group: "Requests",
        offered: Offered::Global,
        meter: &COUNT,
        tiers: &[FREE, (2_000_000.0, 0, 400)],
    },
    SkuSeed {
        service: CLOUD_RUN,
        sku_id: "7C41-9E2B-D306",
        description: "Services Min Instance CPU (Request-based billing)",
        resource_family: "ApplicationServices",
        resource_group: "CPU",
        offered: Offered::Regions(RUN_TIER1),
        meter: &SECONDS,
        tiers: &[(0.0, 0, 2_500)],
    },
    SkuSeed {
        service: CLOUD_RUN,
        sku_id: "91F8-4D0C-6A3B",
        description: "Services Min Instance CPU Tier 2 (Request-based billing)",
        resource_family: "ApplicationServices",
        resource_group: "CPU",
        offered: Offered::Regions(RUN_TIER2),
        meter: &SECONDS,
        tiers: &[(0.0, 0, 3_500)],
    },
    SkuSeed {
        service: CLOUD_RUN,
        sku_id: "B3C5-8F17-2E90",
        description: "Services Min Instance Memory (Request-based billing)",
        resource_family: "ApplicationServices",
        resource_group: "RAM",
        offered: Offered::Regions(RUN_TIER1),
        meter: &GIB_SECONDS,
        tiers: &[(0.0, 0, 2_500)],
    },
    SkuSeed {
        service: CLOUD_RUN,
        sku_id: "",
        description: "Services CPU (Instance-based billing)",
        resource_family: "ApplicationServices",
        resource_group: "CPU",
        offered: Offered::EachRegionOf(&[RUN_TIER1, RUN_TIER2]),
        meter: &SECONDS,
        tiers: &[FREE, (240_000.0, 0, 18_000)],
    },
    SkuSeed {
        service: CLOUD_RUN,
        sku_id: "",
        description: "Services Memory (Instance-based billing)",
        resource_family: "ApplicationServices",
        resource_group: "RAM",
        offered: Offered::EachRegionOf(&[RUN_TIER1, RUN_TIER2]),
        meter: &GIB_SECONDS,
        tiers: &[FREE, (450_000.0, 0, 2_000)],
    },
    SkuSeed {
        service: CLOUD_TASKS,
        sku_id: "D5A2-3C81-F64E",
        description: "Cloud Tasks Billable Operations",
        resource_family: "ApplicationServices",
        resource_group: "CloudTasks",
        offered: Offered::Global,
        meter: &COUNT,
        tiers: &[FREE, (1_000_000.0, 0, 400)],
    },
    SkuSeed {
        service: BIGQUERY,
        sku_id: "4F3E-9A1D-0B72",
        description: "Active Logical Storage",
        resource_family: "Storage",
        resource_group: "BigQueryStorage",
        offered: Offered::MultiRegion("us"),
        meter: &GIB_MONTHS,
        tiers: &[FREE, (10.0, 0, 20_000_000)],
    },
    SkuSeed {
        service: BIGQUERY,
        sku_id: "8E60-25B4-C9D1",
        description: "Long Term Logical Storage",
        resource_family: "Storage",
        resource_group: "BigQueryStorage",
        offered: Offered::MultiRegion("us"),
        meter: &GIB_MONTHS,
        tiers: &[(0.0, 0, 10_000_000)],
    },
    SkuSeed {
        service: BIGQUERY,
        sku_id: "1C7A-F0E3-5D28",
        description: "Analysis",
        resource_family: "ApplicationServices",
        resource_group: "BigQuery",
        offered: Offered::MultiRegion("us"),
        meter: &TIB,
        tiers: &[FREE, (1.0, 6, 250_000_000)],
    },
    SkuSeed {
        service: ARTIFACT_REGISTRY,
        sku_id: "62B9-D84E-A017",
        description: "Artifact Registry Storage",
        resource_family: "Storage",
        resource_group: "ArtifactRegistry",
        offered: Offered::Global,
        meter: &GIB_MONTHS,
        tiers: &[FREE, (0.5, 0, 100_000_000)],
    },
    SkuSeed {
        service: CLOUD_SCHEDULER,
        sku_id: "0A4D-7B95-E3C6",
        description: "Jobs",
        resource_family: "ApplicationServices",
        resource_group: "CloudScheduler",
        offered: Offered::Global,
        meter: &MONTHS,
        tiers: &[FREE, (3.0, 0, 100_000_000)],
    },
    SkuSeed {
        service: CLOUD_MONITORING,
        sku_id: "F917-0C3A-48BD",
        description: "Alerting Policy Conditions",
        resource_family: "ApplicationServices",
        resource_group: "Alerting",
        offered: Offered::Global,
        meter: &MONTHS,
        tiers: &[(0.0, 1, 500_000_000)],
    },
    // Firestore Standard edition in nam5 (the multi-region rates); the free quota of the
    // (default) database as a monthly first tier.
    SkuSeed {
        service: CLOUD_FIRESTORE,
        sku_id: "A4F2-9C1E-7B30",
        description: "Cloud Firestore Read Ops",
        resource_family: "ApplicationServices",
        resource_group: "Firestore",
        offered: Offered::MultiRegion("nam5"),
        meter: &COUNT,
        tiers: &[FREE, (1_500_000.0, 0, 600)],
    },
    SkuSeed {
        service: CLOUD_FIRESTORE,
        sku_id: "B7D3-0E5A-2C81",
        description: "Cloud Firestore Entity Writes",
        resource_family: "ApplicationServices",
        resource_group: "Firestore",
        offered: Offered::MultiRegion("nam5"),
        meter: &COUNT,
        tiers: &[FREE, (600_000.0, 0, 1_800)],
    },
    SkuSeed {
        service: CLOUD_FIRESTORE,
        sku_id: "C0E9-4F6B-8D12",
        description: "Cloud Firestore Entity Deletes",
        resource_family: "ApplicationServices",
        resource_group: "Firestore",
        offered: Offered::MultiRegion("nam5"),
        meter: &COUNT,
        tiers: &[FREE, (600_000.0, 0, 200)],
    },
    SkuSeed {
        service: CLOUD_FIRESTORE,
        sku_id: "D5A1-3B7C-9E44",
        description: "Cloud Firestore Storage",
        resource_family: "Storage",
        resource_group: "Firestore",
        offered: Offered::MultiRegion("nam5"),
        meter: &GIB_MONTHS,
        tiers: &[FREE, (1.0, 0, 180_000_000)],
    },
    // API Gateway calls: 2M a month free, $3.00 per million to 1B, $1.50 above.
    SkuSeed {
        service: API_GATEWAY,
        sku_id: "9A1F-62C4-E7B5",
        description: "API Gateway API calls",
        resource_family: "ApplicationServices",
        resource_group: "APIGateway",
        offered: Offered::Global,
        meter: &COUNT,
        tiers: &[FREE, (2_000_000.0, 0, 3_000), (1_000_000_000.0, 0, 1_500)],
    },
    SkuSeed {
        service: CLOUD_MONITORING,
        sku_id: "2E85-B6D0-137F",
        description: "Monitoring Metric Volume",
        resource_family: "ApplicationServices",
        resource_group: "Metrics",
        offered: Offered::Global,
        meter: &MIB,
        tiers: &[
            FREE,
            (150.0, 0, 258_000_000),
            (100_000.0, 0, 151_000_000),
            (250_000.0, 0, 61_000_000),
        ],
    },
];

fn display_name(service: &str) -> &'static str {
    SERVICES
        .iter()
        .find(|(id, _)| *id == service)
        .map_or("", |(_, name)| name)
}

/// `XXXX-XXXX-XXXX` from a digest: the id of a per-region SKU.
fn derived_sku_id(service: &str, description: &str) -> String {
    let digest = stable_hash(&["cloudbilling-sku", service, description]).to_uppercase();
    format!("{}-{}-{}", &digest[..4], &digest[4..8], &digest[8..12])
}

fn money(units: i64, nanos: i32) -> Value {
    json!({"currencyCode": "USD", "units": units.to_string(), "nanos": nanos})
}

fn tiered_rates(tiers: &[Tier]) -> Value {
    tiers
        .iter()
        .map(|&(start, units, nanos)| {
            json!({"startUsageAmount": start, "unitPrice": money(units, nanos)})
        })
        .collect()
}

/// One SKU as the API serves it, before overrides.
fn sku(seed: &SkuSeed, sku_id: &str, description: &str, regions: Vec<&str>, geo: &str) -> Value {
    let meter = seed.meter;
    let geo_regions: Vec<&str> = if geo == "GLOBAL" {
        Vec::new()
    } else {
        regions.clone()
    };
    json!({
        "name": format!("services/{}/skus/{sku_id}", seed.service),
        "skuId": sku_id,
        "description": description,
        "category": {
            "serviceDisplayName": display_name(seed.service),
            "resourceFamily": seed.resource_family,
            "resourceGroup": seed.resource_group,
            "usageType": "OnDemand",
        },
        "serviceRegions": regions,
        "pricingInfo": [{
            "summary": "",
            "pricingExpression": {
                "usageUnit": meter.usage_unit,
                "usageUnitDescription": meter.usage_unit_description,
                "baseUnit": meter.base_unit,
                "baseUnitDescription": meter.base_unit_description,
                "baseUnitConversionFactor": meter.base_unit_conversion_factor,
                "displayQuantity": meter.display_quantity,
                "tieredRates": tiered_rates(seed.tiers),
            },
            "aggregationInfo": {
                "aggregationLevel": "ACCOUNT",
                "aggregationInterval": "MONTHLY",
                "aggregationCount": 1,
            },
            "currencyConversionRate": 1,
        }],
        "serviceProviderName": "Google",
        "geoTaxonomy": {"type": geo, "regions": geo_regions},
    })
}

/// Every SKU of the seeded catalog, sorted by name.
fn seeded_catalog() -> Vec<Value> {
    let mut out = Vec::new();
    for seed in SKUS {
        match &seed.offered {
            Offered::Global => out.push(sku(
                seed,
                seed.sku_id,
                seed.description,
                vec!["global"],
                "GLOBAL",
            )),
            Offered::Regions(regions) => out.push(sku(
                seed,
                seed.sku_id,
                seed.description,
                regions.to_vec(),
                "MULTI_REGIONAL",
            )),
            Offered::MultiRegion(location) => out.push(sku(
                seed,
                seed.sku_id,
                seed.description,
                vec![location],
                "MULTI_REGIONAL",
            )),
            Offered::EachRegionOf(lists) => {
                for region in lists.iter().flat_map(|l| l.iter()) {
                    let description = format!("{} in {region}", seed.description);
                    let id = derived_sku_id(seed.service, &description);
                    out.push(sku(seed, &id, &description, vec![region], "REGIONAL"));
                }
            }
        }
    }
    out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    out
}

/// The catalog as it reads now: the seed with the admin API's price changes and withdrawals.
fn catalog(state: &State) -> Vec<Value> {
    seeded_catalog()
        .into_iter()
        .filter_map(|mut sku| {
            let id = sku["skuId"].as_str().unwrap_or_default().to_string();
            match state.catalog_overrides.get(&id) {
                None => Some(sku),
                Some(None) => None,
                Some(Some(rates)) => {
                    sku["pricingInfo"][0]["pricingExpression"]["tieredRates"] = rates.clone();
                    Some(sku)
                }
            }
        })
        .collect()
}

pub fn list_services(_context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let mut services: Vec<Value> = SERVICES
        .iter()
        .map(|(id, name)| {
            json!({
                "name": format!("services/{id}"),
                "serviceId": id,
                "displayName": name,
                "businessEntityName": "businessEntities/GCP",
            })
        })
        .collect();
    services.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    super::collection::named_page(
        services.iter().collect(),
        "services",
        call.query,
        SERVICES_POLICY,
    )
}

/// Checks `currencyCode` (the catalog is priced in USD only) and the `startTime`/`endTime`
/// window, which is otherwise ignored: every SKU has one price, effective now.
fn check_price_query(call: &Call<'_>) -> Result<(), ApiError> {
    if let Some(code) = call.query.non_empty("currencyCode")
        && code != "USD"
    {
        return Err(ApiError::invalid_argument(format!(
            "Currency code \"{code}\" is not emulated: the emulator's catalog is priced in USD only."
        )));
    }
    let time = |name: &str| -> Result<_, ApiError> {
        call.query
            .non_empty(name)
            .map(|raw| {
                parse_timestamp(raw).ok_or_else(|| {
                    let field = crate::conventions::wire::snake_case(name);
                    ApiError::bad_field(
                        &field,
                        format!(
                            "Invalid value at '{field}' (type.googleapis.com/google.protobuf.Timestamp), \"{raw}\""
                        ),
                    )
                })
            })
            .transpose()
    };
    if let (Some(start), Some(end)) = (time("startTime")?, time("endTime")?)
        && end <= start
    {
        return Err(ApiError::invalid_argument(
            "The end time must be after the start time.",
        ));
    }
    Ok(())
}

pub fn list_skus(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let service = call.param("servicesId")?;
    if display_name(service).is_empty() {
        return Err(ApiError::not_found(format!(
            "Service services/{service} not found."
        )));
    }
    check_price_query(call)?;
    let effective = timestamp(call.now - Duration::hours(1));
    let prefix = format!("services/{service}/skus/");
    let skus: Vec<Value> = catalog(context.state)
        .into_iter()
        .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with(&prefix)))
        .map(|mut s| {
            s["pricingInfo"][0]["effectiveTime"] = json!(effective);
            s
        })
        .collect();
    super::collection::named_page(skus.iter().collect(), "skus", call.query, SKUS_POLICY)
}

/// `POST /_emulator/cloudbilling/skus`: `{"skuId", "unitPrice": Money}` sets the price of the
/// SKU's first paid tier (the one a list price quotes); `{"skuId", "tieredRates": [...]}`
/// replaces every tier; `{"skuId", "withdrawn": true}` removes the SKU from the catalog.
/// Answers the SKU as `skus.list` will serve it (`{}` once withdrawn).
pub fn seed_sku_price(state: &mut State, body: &Value) -> Result<Value, String> {
    let sku_id = body
        .get("skuId")
        .and_then(Value::as_str)
        .ok_or("\"skuId\" is required")?;
    let current = catalog(state)
        .into_iter()
        .chain(seeded_catalog())
        .find(|s| s["skuId"] == sku_id)
        .ok_or_else(|| format!("no SKU {sku_id} in the emulator's catalog"))?;
    if body.get("withdrawn").and_then(Value::as_bool) == Some(true) {
        state.catalog_overrides.insert(sku_id.to_string(), None);
        return Ok(json!({}));
    }
    let mut rates = current["pricingInfo"][0]["pricingExpression"]["tieredRates"].clone();
    match (body.get("unitPrice"), body.get("tieredRates")) {
        (Some(price), None) => {
            let price = usd_money(price)?;
            let tiers = rates.as_array_mut().ok_or("the SKU has no tiers")?;
            let paid = tiers
                .iter()
                .position(|t| money_is_positive(&t["unitPrice"]))
                .unwrap_or(tiers.len() - 1);
            tiers[paid]["unitPrice"] = price;
        }
        (None, Some(Value::Array(tiers))) => {
            let mut replaced = Vec::new();
            for tier in tiers {
                let start = tier
                    .get("startUsageAmount")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
                let price = usd_money(tier.get("unitPrice").ok_or("every tier needs unitPrice")?)?;
                replaced.push(json!({"startUsageAmount": start, "unitPrice": price}));
            }
            rates = Value::Array(replaced);
        }
        _ => return Err(
            "give exactly one of \"unitPrice\", \"tieredRates\" (an array) or \"withdrawn\": true"
                .into(),
        ),
    }
    state
        .catalog_overrides
        .insert(sku_id.to_string(), Some(rates));
    catalog(state)
        .into_iter()
        .find(|s| s["skuId"] == sku_id)
        .ok_or_else(|| format!("SKU {sku_id} vanished"))
}

fn money_is_positive(money: &Value) -> bool {
    let units = money["units"]
        .as_str()
        .and_then(|u| u.parse::<i64>().ok())
        .unwrap_or(0);
    let nanos = money["nanos"].as_i64().unwrap_or(0);
    units > 0 || nanos > 0
}

/// `google.type.Money` in USD, `units` as an int64 string or number.
fn usd_money(sent: &Value) -> Result<Value, String> {
    let currency = sent
        .get("currencyCode")
        .and_then(Value::as_str)
        .unwrap_or("USD");
    if currency != "USD" {
        return Err(format!("the catalog is priced in USD, not {currency}"));
    }
    let units = match sent.get("units") {
        None => 0,
        Some(Value::String(s)) => s.parse::<i64>().map_err(|e| format!("units {s:?}: {e}"))?,
        Some(v) => v.as_i64().ok_or("units must be an integer")?,
    };
    let nanos = sent
        .get("nanos")
        .map_or(Some(0), Value::as_i64)
        .ok_or("nanos must be an integer")?;
    let nanos = i32::try_from(nanos)
        .ok()
        .filter(|n| n.abs() < 1_000_000_000)
        .ok_or("nanos must be within +-999,999,999")?;
    if units < 0 || nanos < 0 {
        return Err("a list price cannot be negative".into());
    }
    Ok(money(units, nanos))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::server::testing::TestEmulator;

    const RUN_SKUS: &str = "/v1/services/152E-C115-5142/skus";

    fn price(sku: &Value, tier: usize) -> f64 {
        let money = &sku["pricingInfo"][0]["pricingExpression"]["tieredRates"][tier]["unitPrice"];
        let units: f64 = money["units"]
            .as_str()
            .and_then(|u| u.parse().ok())
            .unwrap_or(0.0);
        units + money["nanos"].as_f64().unwrap_or(0.0) / 1e9
    }

    fn by_id<'a>(skus: &'a Value, id: &str) -> &'a Value {
        skus["skus"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["skuId"] == id))
            .unwrap_or_else(|| panic!("no SKU {id} in {skus}"))
    }

    #[tokio::test]
    async fn services_and_skus_list_with_pages_and_real_shapes() {
        let emulator = TestEmulator::with_polls(0);
        let (status, services) = emulator.send("GET", "/v1/services?pageSize=4", None).await;
        assert_eq!(status, 200, "{services}");
        assert_eq!(services["services"].as_array().map(Vec::len), Some(4));
        let token = services["nextPageToken"].as_str().expect("more services");
        let (_, rest) = emulator
            .send("GET", &format!("/v1/services?pageToken={token}"), None)
            .await;
        let all: Vec<Value> = [&services, &rest]
            .iter()
            .flat_map(|page| page["services"].as_array().cloned().unwrap_or_default())
            .collect();
        assert_eq!(all.len(), 12);
        assert!(rest.get("nextPageToken").is_none());
        let run = all
            .iter()
            .find(|s| s["serviceId"] == "152E-C115-5142")
            .expect("Cloud Run is listed");
        assert_eq!(run["name"], "services/152E-C115-5142");
        assert_eq!(run["displayName"], "Cloud Run");
        assert_eq!(run["businessEntityName"], "businessEntities/GCP");

        let (status, skus) = emulator
            .send("GET", &format!("{RUN_SKUS}?currencyCode=USD"), None)
            .await;
        assert_eq!(status, 200, "{skus}");
        let cpu = by_id(&skus, "CF1B-7D5E-4B16");
        assert_eq!(cpu["name"], "services/152E-C115-5142/skus/CF1B-7D5E-4B16");
        assert_eq!(cpu["description"], "Services CPU (Request-based billing)");
        assert_eq!(cpu["category"]["resourceGroup"], "CPU");
        assert_eq!(cpu["category"]["usageType"], "OnDemand");
        assert!(
            cpu["serviceRegions"]
                .as_array()
                .is_some_and(|r| r.contains(&json!("us-central1")))
        );
        let expression = &cpu["pricingInfo"][0]["pricingExpression"];
        assert_eq!(expression["usageUnit"], "s");
        assert_eq!(expression["baseUnitConversionFactor"], 1.0);
        // The free tier is a zero-priced first tier (zero fields omitted, as proto3 JSON does).
        assert_eq!(price(cpu, 0), 0.0);
        assert_eq!(expression["tieredRates"][1]["startUsageAmount"], 180_000.0);
        assert_eq!(price(cpu, 1), 0.000024);
        assert!(cpu["pricingInfo"][0]["effectiveTime"].is_string());
        // Instance-based billing: one SKU per region.
        let london = skus["skus"]
            .as_array()
            .and_then(|s| {
                s.iter().find(|s| {
                    s["description"] == "Services CPU (Instance-based billing) in europe-west2"
                })
            })
            .expect("per-region SKU");
        assert_eq!(london["serviceRegions"], json!(["europe-west2"]));
        assert_eq!(price(london, 1), 0.000018);

        let (_, first) = emulator
            .send("GET", &format!("{RUN_SKUS}?pageSize=3"), None)
            .await;
        assert_eq!(first["skus"].as_array().map(Vec::len), Some(3));
        assert!(first["nextPageToken"].is_string());

        let (_, bigquery) = emulator
            .send("GET", "/v1/services/24E6-581D-38E5/skus", None)
            .await;
        let analysis = by_id(&bigquery, "1C7A-F0E3-5D28");
        assert_eq!(
            analysis["pricingInfo"][0]["pricingExpression"]["baseUnitConversionFactor"],
            1_099_511_627_776.0
        );
        assert_eq!(price(analysis, 1), 6.25);
    }

    #[tokio::test]
    async fn bad_queries_are_rejected() {
        let emulator = TestEmulator::with_polls(0);
        let cases = [
            format!("{RUN_SKUS}?currencyCode=EUR"),
            format!("{RUN_SKUS}?startTime=yesterday"),
            format!("{RUN_SKUS}?startTime=2026-11-02T00:00:00Z&endTime=2026-11-01T00:00:00Z"),
            format!("{RUN_SKUS}?bogus=1"),
        ];
        for path in cases {
            assert_eq!(emulator.send("GET", &path, None).await.0, 400, "{path}");
        }
        let (status, _) = emulator
            .send(
                "GET",
                &format!("{RUN_SKUS}?currencyCode=USD&startTime=2026-11-01T00:00:00Z&endTime=2026-11-02T00:00:00Z&key=k"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            emulator
                .send("GET", "/v1/services/0000-0000-0000/skus", None)
                .await
                .0,
            404
        );
    }

    async fn set_price(emulator: &TestEmulator, body: Value) -> (u16, Value) {
        let response = emulator
            .raw(
                "POST",
                "/_emulator/cloudbilling/skus",
                serde_json::to_vec(&body).expect("json"),
                &[],
            )
            .await;
        let value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        (response.status, value)
    }

    #[tokio::test]
    async fn the_admin_endpoint_sets_a_price_or_withdraws_a_sku() {
        let emulator = TestEmulator::with_polls(0);
        let (status, sku) = set_price(
            &emulator,
            json!({"skuId": "CF1B-7D5E-4B16",
            "unitPrice": {"currencyCode": "USD", "units": "0", "nanos": 48_000}}),
        )
        .await;
        assert_eq!(status, 200, "{sku}");
        assert_eq!(price(&sku, 1), 0.000048);
        let (_, skus) = emulator.send("GET", RUN_SKUS, None).await;
        let cpu = by_id(&skus, "CF1B-7D5E-4B16");
        assert_eq!((price(cpu, 0), price(cpu, 1)), (0.0, 0.000048));

        let (status, _) = set_price(
            &emulator,
            json!({"skuId": "E2D7-1A64-B85F",
            "tieredRates": [{"unitPrice": {"nanos": 500}}]}),
        )
        .await;
        assert_eq!(status, 200);
        let (_, skus) = emulator.send("GET", RUN_SKUS, None).await;
        assert_eq!(price(by_id(&skus, "E2D7-1A64-B85F"), 0), 0.0000005);

        assert_eq!(
            set_price(
                &emulator,
                json!({"skuId": "7C41-9E2B-D306", "withdrawn": true})
            )
            .await
            .0,
            200
        );
        let (_, skus) = emulator.send("GET", RUN_SKUS, None).await;
        assert!(
            skus["skus"]
                .as_array()
                .is_some_and(|s| s.iter().all(|s| s["skuId"] != "7C41-9E2B-D306"))
        );
        assert_eq!(set_price(&emulator, json!({"skuId": "NOPE"})).await.0, 400);
        assert_eq!(
            set_price(
                &emulator,
                json!({"skuId": "CF1B-7D5E-4B16", "unitPrice": {"currencyCode": "EUR"}})
            )
            .await
            .0,
            400
        );
    }
}

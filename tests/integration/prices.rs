//! `--live-prices`: cost, plan and audit priced from the Cloud Billing Catalog the emulator serves.

use std::collections::BTreeMap;

use serde_json::Value;
use stackctl::cost::prices::{TIER1_REGIONS, TIER2_REGIONS};
use stackctl::cost::{PriceItem, PriceTable, live};
use stackctl::model::Endpoint;
use stackctl::provider::{Cloud, Silent};

use crate::support::*;

/// Cloud Run request-based vCPU-second, tier 1 (the emulator's SKU id).
const RUN_CPU_SKU: &str = "CF1B-7D5E-4B16";
const RUN_REQUESTS_SKU: &str = "E2D7-1A64-B85F";

fn json(run: Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn set_sku(emulator: &Emulator, body: &str) {
    let (status, answer) = emulator.http("POST", "/_emulator/cloudbilling/skus", Some(body));
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn live_prices_follow_the_catalog_and_name_what_it_lacks() {
    let emulator = Emulator::start();
    let ws = Workspace::example();

    // The emulator's catalog starts at the built-in prices: the same figures, a live source.
    let builtin = json(ws.run(&["cost", "--json"]).expect(0));
    assert_eq!(builtin["total_monthly_usd"], 41.4912);
    assert_eq!(builtin["basis"]["price_source"], "builtin");
    assert!(builtin["basis"].get("live").is_none());
    let run = ws
        .on(&emulator, &["cost", "--live-prices", "--json"])
        .expect(0);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    let live = json(run);
    assert_eq!(live["total_monthly_usd"], 41.4912);
    assert_eq!(live["basis"]["price_source"], "cloud_billing_catalog");
    assert_eq!(
        live["basis"]["live"]["prices"].as_array().map(Vec::len),
        Some(18)
    );
    assert_eq!(live["basis"]["live"]["missing"], serde_json::json!([]));

    // Double the request-based vCPU-second: service.worker's 240,000 vCPU-seconds go from
    // $5.76 to 240,000 x $0.000048 = $11.52, the worker from $6.86 to $12.62, and the stack
    // from $41.4912 to $50.6112 (+$7.68 for the worker and the relay, +$1.44 for crm-proxy's
    // 60,000; the job's instance-based vCPU-seconds keep their price).
    set_sku(
        &emulator,
        &format!(
            r#"{{"skuId": "{RUN_CPU_SKU}", "unitPrice": {{"currencyCode": "USD", "units": "0", "nanos": 48000}}}}"#
        ),
    );
    let doubled = ws.on(&emulator, &["cost", "--live-prices"]).expect(0);
    assert!(
        doubled
            .stdout
            .starts_with("Monthly cost of stack `shopify-ops` as declared in stack.toml, at USD prices read live from the Cloud Billing Catalog on "),
        "{}",
        doubled.stdout
    );
    let cpu_line = doubled
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("vCPU while serving") && l.contains("240,000"))
        .expect("the worker's vCPU line");
    assert!(
        cpu_line.contains("240,000 vCPU-second")
            && cpu_line.contains("0.000048")
            && cpu_line.ends_with("$11.52"),
        "{cpu_line}"
    );
    assert!(doubled.stdout.contains("$12.62/mo"), "{}", doubled.stdout);
    assert!(
        doubled.stderr.contains(&format!(
            "warning: the live price of Cloud Run vCPU-second (request-based) is $0.000048 per vCPU-second, +100% against the built-in $0.000024 of 2026-11-25 (Cloud Billing Catalog, SKU {RUN_CPU_SKU} \"Services CPU (Request-based billing)\", read "
        )),
        "{}",
        doubled.stderr
    );
    let doubled = json(
        ws.on(&emulator, &["cost", "--live-prices", "--json"])
            .expect(0),
    );
    assert_eq!(doubled["total_monthly_usd"], 50.6112);
    // Without the flag: the built-in table, whatever the catalog says.
    let without = json(ws.on(&emulator, &["cost", "--json"]).expect(0));
    assert_eq!(without["total_monthly_usd"], 41.4912);

    // plan prices with the same table, and its JSON names the source of every price.
    let plan = json(
        ws.on(&emulator, &["plan", "--live-prices", "--json"])
            .expect(0),
    );
    assert_eq!(plan["cost"]["total_monthly_usd"], 50.6112);
    assert_eq!(
        plan["cost"]["basis"]["price_source"],
        "cloud_billing_catalog"
    );
    let worker = plan["changes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["address"] == "service.worker"))
        .expect("service.worker is created");
    assert_eq!(worker["cost"]["after"]["monthly_usd"], 12.62);
    let cpu = plan["cost"]["basis"]["live"]["prices"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["item"] == "run_request_vcpu_second"))
        .expect("a live vCPU price");
    assert_eq!(cpu["usd"], 0.000048);
    assert_eq!(
        cpu["sku"],
        format!("services/152E-C115-5142/skus/{RUN_CPU_SKU}")
    );
    assert_eq!(cpu["matched_by"], "sku_id");
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(
        plan.stdout
            .contains("Prices: USD list prices of 2026-11-25, us-central1 tier 1, 30-day month."),
        "{}",
        plan.stdout
    );

    // A SKU the catalog no longer has: the built-in price stays, and a warning says so.
    set_sku(
        &emulator,
        &format!(r#"{{"skuId": "{RUN_REQUESTS_SKU}", "withdrawn": true}}"#),
    );
    let run = ws
        .on(&emulator, &["cost", "--live-prices", "--json"])
        .expect(0);
    assert!(
        run.stderr.contains(
            "warning: the Cloud Billing Catalog gave no price for Cloud Run request: no Cloud Run SKU \"Requests\" is offered in the catalog; using the built-in $0.0000004 per request of 2026-11-25"
        ),
        "{}",
        run.stderr
    );
    let partial = json(run);
    assert_eq!(partial["total_monthly_usd"], 50.6112);
    assert_eq!(
        partial["basis"]["live"]["missing"][0]["item"],
        "run_request"
    );

    // audit prices its waste with the same table.
    let audit = json(
        ws.on(&emulator, &["audit", "--live-prices", "--json"])
            .expect(0),
    );
    assert_eq!(audit["basis"]["price_source"], "cloud_billing_catalog");
}

#[test]
fn live_prices_with_local_read_the_in_process_emulators_catalog() {
    let ws = Workspace::example();
    let run = ws.run(&["cost", "--local", "--live-prices"]).expect(0);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("Prices: USD prices read live from the Cloud Billing Catalog on "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Total: $41.49/mo"), "{}", run.stdout);
}

/// The emulator's catalog is seeded at the built-in prices: read live, in every tier-1 and
/// tier-2 region, each item is found and priced exactly as the built-in table prices it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_prices_of_the_seeded_catalog_equal_the_builtin_table_in_every_listed_region() {
    let emulator = Emulator::start();
    let cloud = Cloud::connect(
        Endpoint::Custom {
            url: emulator.url.clone(),
        },
        "test-project",
        "us-central1",
    )
    .await
    .expect("clients");
    let services = cloud
        .list_catalog_services(&Silent)
        .await
        .expect("services");
    let mut skus = BTreeMap::new();
    for id in live::service_ids() {
        assert!(services.iter().any(|s| s.service_id == id), "{id}");
        skus.insert(
            id.to_string(),
            cloud.list_skus(id, &Silent).await.expect("skus"),
        );
    }
    for region in TIER1_REGIONS.iter().chain(TIER2_REGIONS) {
        let table = PriceTable::builtin(region).with_live(live::read(&skus, region, "today"));
        let read = table.live.as_ref().expect("live prices");
        assert_eq!(read.missing, vec![], "{region}");
        for item in PriceItem::ALL {
            assert_eq!(
                table.usd(item),
                table.builtin_usd(item),
                "{region} {item:?}"
            );
        }
    }
}

/// `apply --live-prices` prices the plan it shows as `plan --live-prices` does; without the
/// flag, as `plan` does: the built-in table.
#[test]
fn apply_with_live_prices_shows_the_plan_priced_as_plan_did() {
    let emulator = Emulator::start();
    let ws = Workspace::example();
    // Double the request-based vCPU-second, as above: the stack goes from $41.4912 to $50.6112.
    set_sku(
        &emulator,
        &format!(
            r#"{{"skuId": "{RUN_CPU_SKU}", "unitPrice": {{"currencyCode": "USD", "units": "0", "nanos": 48000}}}}"#
        ),
    );
    let plan = json(
        ws.on(&emulator, &["plan", "--live-prices", "--json"])
            .expect(0),
    );
    assert_eq!(plan["cost"]["total_monthly_usd"], 50.6112);
    let builtin = json(ws.on(&emulator, &["plan", "--json"]).expect(0));
    assert_eq!(builtin["cost"]["total_monthly_usd"], 41.4912);

    let apply = json(
        ws.on(
            &emulator,
            &["apply", "--live-prices", "--auto-approve", "--json"],
        )
        .expect(0),
    );
    let cost = &apply["plan"]["cost"];
    assert_eq!(cost["total_monthly_usd"], 50.6112);
    assert_eq!(cost["basis"]["price_source"], "cloud_billing_catalog");
    assert_eq!(
        cost["basis"]["live"]["prices"],
        plan["cost"]["basis"]["live"]["prices"]
    );
    let worker = apply["plan"]["changes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["address"] == "service.worker"))
        .expect("service.worker is created");
    assert_eq!(worker["cost"]["after"]["monthly_usd"], 12.62);

    // A saved plan keeps the prices it was planned with: --live-prices does not go with it.
    let run = ws
        .on(&emulator, &["apply", "plan.json", "--live-prices"])
        .expect(1);
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
}

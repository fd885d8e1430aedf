//! The ingest job against real parts: our emulator's BigQuery (load jobs with uploads, day
//! partitions, tabledata.list) and its fake Shopify Admin API (cursor pages, the cost bucket,
//! THROTTLED, 429), Google's Firestore emulator for the watermark; and the built binary's exit
//! codes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use shopify_ingest::bigquery_load::TableRef;
use shopify_ingest::shopify_admin::PageSizes;
use shopify_ingest::{Config, Ingest, IngestError, Mode};
use worker_kit::cloud::{self, Cloud};
use worker_kit::testing::FirestoreEmulator;

const SHOP: &str = "acme.myshopify.com";
const TOKEN: &str = "shpat_test_token";

struct Harness {
    emulator: gcp_emulator::RunningEmulator,
    project: String,
    http: reqwest::Client,
}

impl Harness {
    /// An emulator with the orders table (the stack's schema, partitioned by created_at day) and
    /// a shop whose bucket holds `bucket` points and restores `restore` a second.
    async fn new(project: &str, bucket: f64, restore: f64, too_many_requests: u32) -> Self {
        cloud::install_tls();
        let emulator = gcp_emulator::start(gcp_emulator::Settings::default(), 0)
            .await
            .expect("start the emulator");
        let harness = Self {
            emulator,
            project: project.into(),
            http: reqwest::Client::new(),
        };
        harness
            .post(
                &format!("/bigquery/v2/projects/{project}/datasets"),
                json!({"datasetReference": {"projectId": project, "datasetId": "shopify"}}),
            )
            .await;
        let schema: Value = serde_json::from_str(shopify_ingest::ORDERS_SCHEMA).unwrap();
        harness
            .post(
                &format!("/bigquery/v2/projects/{project}/datasets/shopify/tables"),
                json!({
                    "tableReference": {"projectId": project, "datasetId": "shopify", "tableId": "orders"},
                    "schema": {"fields": schema},
                    "timePartitioning": {"type": "DAY", "field": "created_at"},
                }),
            )
            .await;
        harness
            .post(
                "/_emulator/shopify/shops",
                json!({"shop": SHOP, "access_token": TOKEN, "maximum_available": bucket,
                       "restore_rate": restore, "too_many_requests": too_many_requests}),
            )
            .await;
        harness
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.emulator.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "POST {path}: {status} {answer}");
        answer
    }

    async fn seed_orders(&self, orders: Value) {
        self.post(
            "/_emulator/shopify/orders",
            json!({"shop": SHOP, "orders": orders}),
        )
        .await;
    }

    fn cloud(&self) -> Cloud {
        Cloud {
            project: self.project.clone(),
            api_endpoint: Some(self.emulator.url()),
            firestore_emulator: Some(FirestoreEmulator::shared().host.clone()),
        }
    }

    fn ingest(&self, sizes: PageSizes) -> Ingest {
        let cloud = self.cloud();
        let config = Config {
            shop: SHOP.into(),
            access_token: TOKEN.into(),
            admin_url: format!(
                "{}/shopify/{SHOP}/admin/api/2025-10/graphql.json",
                self.emulator.url()
            ),
            table: TableRef::parse("shopify.orders", &self.project).unwrap(),
            bigquery_location: None,
            initial_days: 60,
            max_run: Duration::from_secs(120),
            page_sizes: sizes,
            run_id: format!("{:08x}", rand_id()),
        };
        Ingest::new(config, &cloud, self.http.clone()).expect("configured")
    }

    /// The table's rows by order id: `(count of rows with that id, total_price, updated_at)`.
    async fn rows(&self) -> BTreeMap<String, (usize, Value, Value)> {
        let answer: Value = self
            .http
            .get(format!(
                "{}/bigquery/v2/projects/{}/datasets/shopify/tables/orders/data?maxResults=10000",
                self.emulator.url(),
                self.project
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let fields: Vec<String> = serde_json::from_str::<Value>(shopify_ingest::ORDERS_SCHEMA)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect();
        let column = |row: &Value, name: &str| {
            let index = fields.iter().position(|f| f == name).unwrap();
            row["f"][index]["v"].clone()
        };
        let mut rows: BTreeMap<String, (usize, Value, Value)> = BTreeMap::new();
        for row in answer["rows"].as_array().cloned().unwrap_or_default() {
            let id = column(&row, "id").as_str().unwrap().to_string();
            let entry = rows.entry(id).or_insert((0, Value::Null, Value::Null));
            entry.0 += 1;
            entry.1 = column(&row, "total_price");
            entry.2 = column(&row, "updated_at");
        }
        rows
    }
}

fn rand_id() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// `count` orders created over the three days before today, `id` from `first_id`.
fn orders(first_id: u64, count: u64) -> Value {
    let today = chrono::Utc::now().date_naive();
    let orders: Vec<Value> = (0..count)
        .map(|n| {
            let day = today - chrono::Duration::days(1 + (n % 3) as i64);
            let created = day
                .and_hms_opt(1 + (n % 20) as u32, 7, 0)
                .unwrap()
                .and_utc();
            json!({
                "id": first_id + n,
                "created_at": created.to_rfc3339(),
                "updated_at": (created + chrono::Duration::minutes(3)).to_rfc3339(),
                "customer_id": 500 + n,
                "total_price": format!("{}.50", 10 + n),
                "currency": "EUR",
                "line_items": [{"sku": format!("SKU-{n}"), "quantity": 1 + n % 4}],
            })
        })
        .collect();
    Value::Array(orders)
}

const SMALL_PAGES: PageSizes = PageSizes {
    orders: 4,
    line_items: 2,
};

#[tokio::test]
async fn pages_are_followed_to_the_end_through_throttling_and_429s_and_every_order_lands_once() {
    // A page asks 2 + 4 × 5 = 22 points; the bucket holds 50 and restores 40 a second, so the
    // job must wait for it between pages, and the first two requests are answered 429.
    let harness = Harness::new("ingest-pages", 50.0, 40.0, 2).await;
    harness.seed_orders(orders(1001, 30)).await;
    let mut ingest = harness.ingest(SMALL_PAGES);
    let summary = ingest
        .run(Mode::Incremental)
        .await
        .expect("the run succeeds");

    assert_eq!(summary.changed, 30);
    assert_eq!(summary.days.len(), 3, "{summary:?}");
    assert_eq!(summary.rows, 30);
    assert_eq!(
        summary.stats.retries, 2,
        "the two 429s were retried: {summary:?}"
    );
    assert!(
        summary.stats.throttle_waits >= 1,
        "the bucket was waited for: {summary:?}"
    );
    // 8 pages listing the changes, 3 × 3 pages refetching the days, 2 answered 429.
    assert_eq!(summary.stats.calls, 8 + 9 + 2, "{summary:?}");
    let rows = harness.rows().await;
    assert_eq!(rows.len(), 30);
    assert!(rows.values().all(|(count, _, _)| *count == 1), "{rows:?}");
    assert_eq!(rows["1004"].1, "13.50");
}

#[tokio::test]
async fn overlapping_runs_leave_exactly_one_current_row_per_order() {
    let harness = Harness::new("ingest-overlap", 2000.0, 100.0, 0).await;
    harness.seed_orders(orders(2001, 12)).await;
    let mut ingest = harness.ingest(SMALL_PAGES);
    let first = ingest.run(Mode::Incremental).await.expect("first run");
    assert_eq!(first.rows, 12);
    let watermark = ingest.watermark().await.unwrap().expect("a watermark");
    assert_eq!(Some(watermark), first.watermark);

    // Order 2001 is edited now (its day gets refetched whole); a new order lands on today.
    let now = chrono::Utc::now();
    let mut edited = orders(2001, 1);
    edited[0]["updated_at"] = json!(now.to_rfc3339());
    edited[0]["total_price"] = json!("99.00");
    harness.seed_orders(edited).await;
    harness
        .seed_orders(json!([{"id": 2100, "created_at": now.to_rfc3339(), "total_price": "5.00"}]))
        .await;

    let second = ingest.run(Mode::Incremental).await.expect("second run");
    // Only the two days holding a changed order were replaced.
    assert_eq!(second.days.len(), 2, "{second:?}");
    let rows = harness.rows().await;
    assert_eq!(rows.len(), 13);
    assert!(rows.values().all(|(count, _, _)| *count == 1), "{rows:?}");
    assert_eq!(rows["2001"].1, "99.00");

    // The same window again (a retried execution, or a backfill over it): still one row each.
    let today = now.date_naive();
    ingest
        .run(Mode::Backfill {
            from: today - chrono::Duration::days(3),
            to: today,
        })
        .await
        .expect("backfill");
    let again = harness.rows().await;
    assert_eq!(again, rows);
    assert_eq!(
        ingest.watermark().await.unwrap(),
        second.watermark,
        "a backfill leaves the watermark alone"
    );
}

#[tokio::test]
async fn a_failed_load_leaves_the_watermark_unmoved_and_the_process_exits_non_zero() {
    let harness = Harness::new("ingest-failure", 2000.0, 100.0, 0).await;
    harness.seed_orders(orders(3001, 6)).await;
    let mut ingest = harness.ingest(SMALL_PAGES);
    ingest.run(Mode::Incremental).await.expect("first run");
    let watermark = ingest.watermark().await.unwrap();

    // The table goes away (CREATE_NEVER: the job never makes it), and an order changes.
    let deleted = harness
        .http
        .delete(format!(
            "{}/bigquery/v2/projects/{}/datasets/shopify/tables/orders",
            harness.emulator.url(),
            harness.project
        ))
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    let mut edited = orders(3001, 1);
    edited[0]["updated_at"] = json!(chrono::Utc::now().to_rfc3339());
    harness.seed_orders(edited).await;

    let failed = ingest.run(Mode::Incremental).await;
    match failed {
        Err(IngestError::Load { error, .. }) => {
            assert!(
                error.to_string().contains("notFound") || error.to_string().contains("Not found"),
                "{error}"
            )
        }
        other => panic!("expected a failed load, got {other:?}"),
    }
    assert_eq!(ingest.watermark().await.unwrap(), watermark);

    // The built job, configured the same way: exit 1, and its last line says why.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_shopify-ingest"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GOOGLE_CLOUD_PROJECT", &harness.project)
        .env("STACKCTL_API_ENDPOINT", harness.emulator.url())
        .env("FIRESTORE_EMULATOR_HOST", &FirestoreEmulator::shared().host)
        .env("SHOPIFY_SHOP", SHOP)
        .env("SHOPIFY_ACCESS_TOKEN", TOKEN)
        .env("BIGQUERY_TABLE", "shopify.orders")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["severity"], "ERROR");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("watermark unchanged"),
        "{last}"
    );
    assert!(!stdout.contains(TOKEN), "the access token is never logged");

    // Misconfigured: exit 2, naming the missing variable.
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_shopify-ingest"))
        .env_clear()
        .env("GOOGLE_CLOUD_PROJECT", &harness.project)
        .env("STACKCTL_API_ENDPOINT", harness.emulator.url())
        .env("SHOPIFY_SHOP", SHOP)
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stdout).contains("SHOPIFY_ACCESS_TOKEN is not set"));
}

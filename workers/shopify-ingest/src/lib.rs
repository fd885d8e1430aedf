//! shopify-ingest: the Cloud Run job that copies a shop's orders into a BigQuery table partitioned
//! by `created_at` day, exactly one current row per order, however often runs overlap.
//!
//! One run: read the watermark (Firestore `ingest_watermarks/…`), list the orders updated since
//! it (less a small overlap), and for each UTC `created_at` day holding one of them, refetch that
//! whole day and replace its partition with one `WRITE_TRUNCATE` load job on `orders$YYYYMMDD`.
//! An order's `created_at` never changes, so it lives in exactly one partition, and replacing a
//! partition with a fresh read of its day can never duplicate a row. The watermark moves to the
//! run's start only after every load committed: a failed run changes nothing a retry would miss.
//! `--backfill FROM..TO` replaces the days in that range and leaves the watermark alone.

pub mod bigquery_load;
pub mod shopify_admin;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, SubsecRound, Utc};
use serde_json::{Value, json};
use tokio::time::Instant;
use worker_kit::cloud::{self, Cloud, env};
use worker_kit::firestore::{self, Write, value as FirestoreValue};
use worker_kit::log::Logger;

use bigquery_load::{BigQuery, LoadError, TableRef};
use shopify_admin::{AdminApi, Order, PageSizes, ShopifyError, SortKey};

/// The service name in log lines.
pub const SERVICE: &str = "shopify-ingest";
/// The Admin API version the job speaks.
pub const DEFAULT_API_VERSION: &str = "2025-10";
/// The orders table's columns: the same file the stack's `[table.orders]` declares, so the load's
/// explicit schema is the table's.
pub const ORDERS_SCHEMA: &str = include_str!("../../../schemas/orders.json");
/// How far back a run reads before the watermark: Shopify's `updated_at` and our clock may differ.
const OVERLAP: chrono::Duration = chrono::Duration::minutes(5);
/// Where the watermarks live in Firestore.
const WATERMARKS: &str = "ingest_watermarks";

/// What the job is configured with, from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `SHOPIFY_SHOP`: `acme.myshopify.com`.
    pub shop: String,
    /// `SHOPIFY_ACCESS_TOKEN` (from Secret Manager); never logged.
    pub access_token: String,
    /// The Admin GraphQL endpoint: `SHOPIFY_ADMIN_URL`, else the local fake under `up --local`,
    /// else `https://SHOP/admin/api/VERSION/graphql.json`.
    pub admin_url: String,
    /// `BIGQUERY_TABLE`: `DATASET.TABLE` or `PROJECT.DATASET.TABLE`.
    pub table: TableRef,
    /// `BIGQUERY_LOCATION` (the dataset's), for `jobs.get` outside US and EU.
    pub bigquery_location: Option<String>,
    /// `INGEST_INITIAL_DAYS` (default 60, what Shopify serves without `read_all_orders`): how far
    /// back the first run reads.
    pub initial_days: i64,
    /// `INGEST_MAX_RUN_SECONDS` (default 780, under the example's 900 s task timeout).
    pub max_run: Duration,
    /// `INGEST_PAGE_SIZE` (25) and `INGEST_LINE_ITEMS` (30): a page then asks 827 cost points.
    pub page_sizes: PageSizes,
    /// Names this run's load jobs: the execution and attempt on Cloud Run, else random.
    pub run_id: String,
}

fn number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match env(name) {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| format!("{name}={text:?} is not a number")),
    }
}

impl Config {
    /// From the environment; `Err` names what is missing or wrong.
    pub fn from_env(cloud: &Cloud) -> Result<Self, String> {
        let required = |name: &str| env(name).ok_or_else(|| format!("{name} is not set"));
        let shop = required("SHOPIFY_SHOP")?;
        let version = env("SHOPIFY_API_VERSION").unwrap_or_else(|| DEFAULT_API_VERSION.into());
        let admin_url = match (env("SHOPIFY_ADMIN_URL"), &cloud.api_endpoint) {
            (Some(url), _) => url,
            (None, Some(local)) => format!(
                "{}/shopify/{shop}/admin/api/{version}/graphql.json",
                local.trim_end_matches('/')
            ),
            (None, None) => format!("https://{shop}/admin/api/{version}/graphql.json"),
        };
        let run_id = match (env("CLOUD_RUN_EXECUTION"), env("CLOUD_RUN_TASK_ATTEMPT")) {
            (Some(execution), attempt) => {
                format!("{execution}_{}", attempt.unwrap_or_else(|| "0".into()))
            }
            (None, _) => format!("{:016x}", rand::random::<u64>()),
        };
        Ok(Self {
            access_token: required("SHOPIFY_ACCESS_TOKEN")?,
            admin_url,
            table: TableRef::parse(&required("BIGQUERY_TABLE")?, &cloud.project)?,
            bigquery_location: env("BIGQUERY_LOCATION"),
            initial_days: number("INGEST_INITIAL_DAYS", 60)?,
            max_run: Duration::from_secs(number("INGEST_MAX_RUN_SECONDS", 780)?),
            page_sizes: PageSizes {
                orders: number("INGEST_PAGE_SIZE", 25)?,
                line_items: number("INGEST_LINE_ITEMS", 30)?,
            },
            run_id: run_id
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect(),
            shop,
        })
    }
}

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// The days holding orders updated since the watermark; then the watermark moves.
    Incremental,
    /// The days `from..=to`; the watermark stays.
    Backfill { from: NaiveDate, to: NaiveDate },
}

impl Mode {
    /// `--backfill FROM..TO` (dates, both included), or no arguments.
    pub fn from_args(args: &[String]) -> Result<Self, String> {
        match args {
            [] => Ok(Self::Incremental),
            [flag, range] if flag == "--backfill" => Self::backfill(range),
            [flag] if flag.starts_with("--backfill=") => {
                Self::backfill(&flag["--backfill=".len()..])
            }
            _ => Err(format!(
                "unexpected arguments {args:?}: the job takes none, or --backfill YYYY-MM-DD..YYYY-MM-DD"
            )),
        }
    }

    fn backfill(range: &str) -> Result<Self, String> {
        let (from, to) = range.split_once("..").ok_or_else(|| {
            format!("--backfill {range:?}: expected FROM..TO, e.g. 2026-11-01..2026-11-30")
        })?;
        let date = |text: &str| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| format!("--backfill: {text:?} is not a date (YYYY-MM-DD)"))
        };
        let (from, to) = (date(from)?, date(to)?);
        if from > to {
            return Err(format!("--backfill {range}: {from} is after {to}"));
        }
        Ok(Self::Backfill { from, to })
    }
}

/// Why a run failed; any of them exits non-zero so Cloud Run retries the task and alerts fire.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Shopify(#[from] ShopifyError),
    #[error("day {day}: {error}")]
    Load { day: NaiveDate, error: LoadError },
    #[error("watermark {document}: {error}")]
    Watermark {
        document: String,
        error: firestore::Error,
    },
    #[error("{0}")]
    Setup(String),
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub days: Vec<NaiveDate>,
    pub rows: u64,
    /// Orders listed as changed since the watermark (incremental runs).
    pub changed: usize,
    pub watermark: Option<DateTime<Utc>>,
    pub stats: shopify_admin::CallStats,
    /// Orders with more line items than a page holds (stored with the first page's).
    pub truncated_line_items: usize,
}

/// One configured job.
pub struct Ingest {
    pub config: Config,
    pub shopify: AdminApi,
    pub bigquery: BigQuery,
    pub firestore: firestore::Client,
    pub logger: Logger,
}

impl Ingest {
    /// Everything the job talks to, from its cloud and config.
    pub fn new(config: Config, cloud: &Cloud, http: reqwest::Client) -> Result<Self, String> {
        let bigquery = BigQuery::new(
            http.clone(),
            cloud.api_root(bigquery_load::GOOGLE_ENDPOINT),
            cloud.bearer().map_err(|e| e.to_string())?,
            config.bigquery_location.clone(),
        );
        let firestore = cloud.firestore(http.clone()).map_err(|e| e.to_string())?;
        Ok(Self {
            shopify: AdminApi::new(http, config.admin_url.clone(), config.access_token.clone()),
            bigquery,
            firestore,
            logger: Logger::new(cloud.project.clone(), SERVICE),
            config,
        })
    }

    /// The watermark document of this shop and table.
    pub fn watermark_path(&self) -> String {
        format!(
            "{WATERMARKS}/orders@{}@{}",
            self.config.shop, self.config.table
        )
    }

    /// Where the last successful incremental run started, if one did.
    pub async fn watermark(&self) -> Result<Option<DateTime<Utc>>, IngestError> {
        let path = self.watermark_path();
        let document =
            self.firestore
                .get(&path, None)
                .await
                .map_err(|error| IngestError::Watermark {
                    document: path.clone(),
                    error,
                })?;
        Ok(document.and_then(|d| d.timestamp("updated_since")))
    }

    async fn advance_watermark(
        &self,
        to: DateTime<Utc>,
        summary: &Summary,
    ) -> Result<(), IngestError> {
        let path = self.watermark_path();
        let mut fields = firestore::Fields::new();
        fields.insert("updated_since".into(), FirestoreValue::timestamp(to));
        fields.insert("last_success".into(), FirestoreValue::timestamp(Utc::now()));
        fields.insert(
            "days_loaded".into(),
            FirestoreValue::integer(summary.days.len() as i64),
        );
        fields.insert(
            "rows_loaded".into(),
            FirestoreValue::integer(summary.rows as i64),
        );
        self.firestore
            .commit(vec![Write::set(&self.firestore.name(&path), fields)], None)
            .await
            .map_err(|error| IngestError::Watermark {
                document: path,
                error,
            })?;
        Ok(())
    }

    /// One run.
    pub async fn run(&mut self, mode: Mode) -> Result<Summary, IngestError> {
        let deadline = Instant::now() + self.config.max_run;
        // Microseconds: what Firestore keeps of the watermark.
        let started = Utc::now().trunc_subsecs(6);
        let mut summary = Summary {
            days: Vec::new(),
            rows: 0,
            changed: 0,
            watermark: None,
            stats: Default::default(),
            truncated_line_items: 0,
        };
        let days: Vec<NaiveDate> = match mode {
            Mode::Backfill { from, to } => from.iter_days().take_while(|d| *d <= to).collect(),
            Mode::Incremental => {
                let since = match self.watermark().await? {
                    Some(watermark) => watermark - OVERLAP,
                    None => started - chrono::Duration::days(self.config.initial_days),
                };
                let search = format!("updated_at:>='{}'", rfc3339(since));
                let changed = self
                    .shopify
                    .orders(
                        &search,
                        SortKey::UpdatedAt,
                        self.config.page_sizes,
                        deadline,
                    )
                    .await?;
                summary.changed = changed.len();
                let days: BTreeSet<NaiveDate> =
                    changed.iter().map(|o| o.created_at.date_naive()).collect();
                days.into_iter().collect()
            }
        };
        let schema: Value = serde_json::from_str(ORDERS_SCHEMA)
            .map_err(|e| IngestError::Setup(format!("the bundled orders schema: {e}")))?;
        for day in &days {
            let (rows, count, truncated) = self.day_rows(*day, deadline).await?;
            summary.truncated_line_items += truncated;
            // Fixed within this run (a retried insert finds its job), new in every run.
            let job_id = format!(
                "ingest_{}_{}_{}_{}",
                self.config.table.table,
                day.format("%Y%m%d"),
                self.config.run_id,
                started.timestamp_micros()
            );
            let loaded = self
                .bigquery
                .replace_partition(&self.config.table, *day, &rows, &schema, &job_id, deadline)
                .await
                .map_err(|error| IngestError::Load { day: *day, error })?;
            self.logger
                .info(format!(
                    "replaced partition {} with {count} orders",
                    self.config.table.partition(*day)
                ))
                .field("job", json!(loaded.job))
                .field("rows", json!(count))
                .emit();
            summary.rows += count as u64;
            summary.days.push(*day);
        }
        if mode == Mode::Incremental {
            self.advance_watermark(started, &summary).await?;
            summary.watermark = Some(started);
        }
        summary.stats = self.shopify.stats.clone();
        Ok(summary)
    }

    /// Every order created on `day` (UTC) as NDJSON rows: `(rows, count, truncated line items)`.
    async fn day_rows(
        &mut self,
        day: NaiveDate,
        deadline: Instant,
    ) -> Result<(Vec<u8>, usize, usize), IngestError> {
        let start = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        let search = format!(
            "created_at:>='{}' AND created_at:<'{}'",
            rfc3339(start),
            rfc3339(start + chrono::Duration::days(1))
        );
        let orders = self
            .shopify
            .orders(
                &search,
                SortKey::CreatedAt,
                self.config.page_sizes,
                deadline,
            )
            .await?;
        // An order edited while the day was paged may appear twice: keep its newest state.
        let mut newest: BTreeMap<u64, Order> = BTreeMap::new();
        for order in orders {
            match newest.get(&order.id) {
                Some(kept) if kept.updated_at >= order.updated_at => {}
                _ => {
                    newest.insert(order.id, order);
                }
            }
        }
        let ingested_at = Utc::now();
        let mut rows = Vec::new();
        let mut truncated = 0;
        for order in newest.values() {
            if order.line_items_truncated {
                truncated += 1;
                self.logger
                    .warning(format!(
                        "order {} has more than {} line items; the row keeps the first {}",
                        order.id,
                        self.config.page_sizes.line_items,
                        self.config.page_sizes.line_items
                    ))
                    .emit();
            }
            rows.extend_from_slice(row(order, ingested_at).to_string().as_bytes());
            rows.push(b'\n');
        }
        Ok((rows, newest.len(), truncated))
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An order as a row of the orders table (schemas/orders.json).
pub fn row(order: &Order, ingested_at: DateTime<Utc>) -> Value {
    json!({
        "id": order.id,
        "name": order.name,
        "customer_id": order.customer_id,
        "created_at": rfc3339(order.created_at),
        "updated_at": rfc3339(order.updated_at),
        "financial_status": order.financial_status,
        "total_price": order.total_price,
        "currency": order.currency,
        "line_items": order.line_items.iter().map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity})).collect::<Vec<_>>(),
        "ingested_at": rfc3339(ingested_at),
    })
}

/// The job's process: configure from the environment, run `args`, log the outcome, and the exit
/// code (0 done, 1 the run failed, 2 it was misconfigured).
pub async fn main_with(args: Vec<String>) -> std::process::ExitCode {
    use std::process::ExitCode;
    let http = cloud::http_client();
    let startup = Logger::new(env("GOOGLE_CLOUD_PROJECT").unwrap_or_default(), SERVICE);
    let misconfigured = |reason: String| {
        startup.error(format!("cannot start: {reason}")).emit();
        ExitCode::from(2)
    };
    let mode = match Mode::from_args(&args) {
        Ok(mode) => mode,
        Err(reason) => return misconfigured(reason),
    };
    let cloud = match Cloud::from_env(&http).await {
        Ok(cloud) => cloud,
        Err(error) => return misconfigured(error.to_string()),
    };
    let mut ingest =
        match Config::from_env(&cloud).and_then(|config| Ingest::new(config, &cloud, http)) {
            Ok(ingest) => ingest,
            Err(reason) => return misconfigured(reason),
        };
    match ingest.run(mode).await {
        Ok(summary) => {
            let stats = &summary.stats;
            ingest
                .logger
                .info(format!(
                    "ingested {} orders into {} day partitions of {}{}",
                    summary.rows,
                    summary.days.len(),
                    ingest.config.table,
                    summary
                        .watermark
                        .map(|w| format!("; watermark now {}", rfc3339(w)))
                        .unwrap_or_default()
                ))
                .field("changed_orders", json!(summary.changed))
                .field("shopify_calls", json!(stats.calls))
                .field("throttle_waits", json!(stats.throttle_waits))
                .field("throttled", json!(stats.throttled))
                .field("retries", json!(stats.retries))
                .field("waited_ms", json!(stats.waited.as_millis() as u64))
                .emit();
            ExitCode::SUCCESS
        }
        Err(error) => {
            ingest
                .logger
                .error(format!("run failed, watermark unchanged: {error}"))
                .emit();
            ExitCode::FAILURE
        }
    }
}

//! The Shopify Admin GraphQL API as the ingest job reads it: one query at a time with Shopify's
//! cost-based throttling (the leaky bucket in `extensions.cost.throttleStatus`: wait for it to
//! refill before a page it cannot pay for, and after a `THROTTLED` answer, which comes as HTTP
//! 200), HTTP 429 (`Retry-After`) and 5xx with backoff, all within the run's deadline; and the
//! `orders` connection paged to its end by cursor.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::time::Instant;

/// How long one GraphQL call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts of one call that fails with 429, 5xx or no answer.
const MAX_ATTEMPTS: u32 = 6;
/// The first backoff; it doubles each attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The orders page query: what a row needs, each order's first `$lineItemsFirst` line items.
pub const ORDERS_QUERY: &str = "query IngestOrders($first: Int!, $after: String, $query: String, $sortKey: OrderSortKeys, $lineItemsFirst: Int!) {
  orders(first: $first, after: $after, query: $query, sortKey: $sortKey) {
    nodes {
      legacyResourceId name createdAt updatedAt displayFinancialStatus
      totalPriceSet { shopMoney { amount currencyCode } }
      customer { id }
      lineItems(first: $lineItemsFirst) { nodes { sku quantity } pageInfo { hasNextPage } }
    }
    pageInfo { hasNextPage endCursor }
  }
}";

/// Why a Shopify call failed for good.
#[derive(Debug, thiserror::Error)]
pub enum ShopifyError {
    #[error(
        "Shopify refused the call with HTTP {status}: {body} (check SHOPIFY_ACCESS_TOKEN and the app's read_orders scope)"
    )]
    Refused { status: u16, body: String },
    #[error("Shopify kept failing after {attempts} attempts: {last}")]
    Exhausted { attempts: u32, last: String },
    #[error("the run's time budget ran out while {doing}")]
    Deadline { doing: String },
    #[error("Shopify answered GraphQL errors: {0}")]
    Graphql(String),
    #[error("unexpected Shopify answer: {0}")]
    Decode(String),
}

/// What throttling and retries cost a run, for its summary line.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CallStats {
    pub calls: u32,
    /// Waits for the cost bucket: before a page it could not pay for, or after `THROTTLED`.
    pub throttle_waits: u32,
    /// `THROTTLED` answers received.
    pub throttled: u32,
    /// Retries after 429, 5xx or no answer.
    pub retries: u32,
    pub waited: Duration,
}

/// The cost bucket as last reported.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    available: f64,
    restore_rate: f64,
    at: Instant,
}

impl Bucket {
    fn from_cost(cost: &Value) -> Option<Self> {
        let status = &cost["throttleStatus"];
        Some(Self {
            available: status["currentlyAvailable"].as_f64()?,
            restore_rate: status["restoreRate"].as_f64().filter(|r| *r > 0.0)?,
            at: Instant::now(),
        })
    }

    /// How long until it holds `cost` points.
    fn wait_for(&self, cost: f64) -> Duration {
        let available = self.available + self.restore_rate * self.at.elapsed().as_secs_f64();
        if available >= cost {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((cost - available) / self.restore_rate)
                + Duration::from_millis(50)
        }
    }
}

/// One shop's Admin API.
#[derive(Debug)]
pub struct AdminApi {
    http: reqwest::Client,
    /// `https://SHOP/admin/api/VERSION/graphql.json` (or the local fake's).
    url: String,
    access_token: String,
    bucket: Option<Bucket>,
    pub stats: CallStats,
}

/// One order as the job stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: u64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub financial_status: Option<String>,
    pub total_price: Option<String>,
    pub currency: Option<String>,
    pub customer_id: Option<String>,
    /// `(sku, quantity)` of its line items.
    pub line_items: Vec<(Option<String>, Option<i64>)>,
    /// It has more line items than the page asked for.
    pub line_items_truncated: bool,
}

impl Order {
    fn from_node(node: &Value) -> Result<Self, ShopifyError> {
        let bad = |what: &str| ShopifyError::Decode(format!("an order without {what}: {node}"));
        let time = |field: &str| -> Result<DateTime<Utc>, ShopifyError> {
            node[field]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| bad(field))
        };
        let money = &node["totalPriceSet"]["shopMoney"];
        Ok(Self {
            id: node["legacyResourceId"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| node["legacyResourceId"].as_u64())
                .ok_or_else(|| bad("legacyResourceId"))?,
            name: node["name"].as_str().unwrap_or_default().to_string(),
            created_at: time("createdAt")?,
            updated_at: time("updatedAt")?,
            financial_status: node["displayFinancialStatus"].as_str().map(str::to_string),
            total_price: money["amount"].as_str().map(str::to_string),
            currency: money["currencyCode"].as_str().map(str::to_string),
            customer_id: node["customer"]["id"]
                .as_str()
                .map(|gid| gid.rsplit('/').next().unwrap_or(gid).to_string()),
            line_items: node["lineItems"]["nodes"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|item| {
                            (
                                item["sku"].as_str().map(str::to_string),
                                item["quantity"].as_i64(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            line_items_truncated: node["lineItems"]["pageInfo"]["hasNextPage"]
                .as_bool()
                .unwrap_or(false),
        })
    }
}

/// The order sort the job pages by.
#[derive(Debug, Clone, Copy)]
pub enum SortKey {
    CreatedAt,
    UpdatedAt,
}

/// How big the pages are.
#[derive(Debug, Clone, Copy)]
pub struct PageSizes {
    pub orders: u32,
    pub line_items: u32,
}

impl PageSizes {
    /// What a page is requested to cost (Shopify's rule: 2 + first × the node's cost).
    pub fn requested_cost(&self) -> f64 {
        2.0 + f64::from(self.orders) * (3.0 + f64::from(self.line_items))
    }
}

fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(MAX_BACKOFF)
}

/// `Retry-After` in seconds (Shopify sends `1.0`).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get("retry-after")?.to_str().ok()?;
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

impl AdminApi {
    /// The Admin API of the shop whose GraphQL endpoint is `url`.
    pub fn new(http: reqwest::Client, url: String, access_token: String) -> Self {
        Self {
            http,
            url,
            access_token,
            bucket: None,
            stats: CallStats::default(),
        }
    }

    async fn sleep(
        &mut self,
        wait: Duration,
        deadline: Instant,
        doing: &str,
    ) -> Result<(), ShopifyError> {
        if Instant::now() + wait > deadline {
            return Err(ShopifyError::Deadline {
                doing: doing.to_string(),
            });
        }
        self.stats.waited += wait;
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// Runs `query`, whose requested cost is `cost`, and answers its `data`.
    pub async fn query(
        &mut self,
        query: &str,
        variables: &Value,
        cost: f64,
        deadline: Instant,
    ) -> Result<Value, ShopifyError> {
        let mut failures = 0u32;
        loop {
            if let Some(bucket) = self.bucket {
                let wait = bucket.wait_for(cost);
                if !wait.is_zero() {
                    self.stats.throttle_waits += 1;
                    self.sleep(
                        wait,
                        deadline,
                        "waiting for Shopify's cost bucket to refill",
                    )
                    .await?;
                }
            }
            if Instant::now() >= deadline {
                return Err(ShopifyError::Deadline {
                    doing: "reading orders from Shopify".into(),
                });
            }
            self.stats.calls += 1;
            let sent = self
                .http
                .post(&self.url)
                .header("X-Shopify-Access-Token", &self.access_token)
                .header("Content-Type", "application/json")
                .timeout(CALL_TIMEOUT.min(deadline.saturating_duration_since(Instant::now())))
                .json(&json!({"query": query, "variables": variables}))
                .send()
                .await;
            let failure = match sent {
                Err(error) => (format!("no answer: {error}"), None),
                Ok(response) => {
                    let status = response.status().as_u16();
                    if status == 429 || status >= 500 {
                        let wait = retry_after(&response);
                        (format!("HTTP {status}"), wait)
                    } else if !(200..300).contains(&status) {
                        let body = response.text().await.unwrap_or_default();
                        return Err(ShopifyError::Refused {
                            status,
                            body: body.chars().take(300).collect(),
                        });
                    } else {
                        let answer: Value = response
                            .json()
                            .await
                            .map_err(|e| ShopifyError::Decode(e.to_string()))?;
                        self.bucket =
                            Bucket::from_cost(&answer["extensions"]["cost"]).or(self.bucket);
                        match answer["errors"].as_array() {
                            Some(errors) if !errors.is_empty() => {
                                if errors
                                    .iter()
                                    .any(|e| e["extensions"]["code"] == "THROTTLED")
                                {
                                    // The bucket just reported says how long to wait.
                                    self.stats.throttled += 1;
                                    if self.bucket.is_none() {
                                        let wait = backoff(self.stats.throttled);
                                        self.stats.throttle_waits += 1;
                                        self.sleep(wait, deadline, "waiting out THROTTLED").await?;
                                    }
                                    continue;
                                }
                                let messages: Vec<&str> = errors
                                    .iter()
                                    .filter_map(|e| e["message"].as_str())
                                    .collect();
                                return Err(ShopifyError::Graphql(messages.join("; ")));
                            }
                            _ => {}
                        }
                        return Ok(answer["data"].clone());
                    }
                }
            };
            failures += 1;
            if failures >= MAX_ATTEMPTS {
                return Err(ShopifyError::Exhausted {
                    attempts: failures,
                    last: failure.0,
                });
            }
            self.stats.retries += 1;
            let wait = failure.1.unwrap_or_else(|| backoff(failures));
            self.sleep(wait, deadline, "backing off after Shopify failed")
                .await?;
        }
    }

    /// Every order `search` selects, paged by cursor to the end.
    pub async fn orders(
        &mut self,
        search: &str,
        sort: SortKey,
        sizes: PageSizes,
        deadline: Instant,
    ) -> Result<Vec<Order>, ShopifyError> {
        let mut orders = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let variables = json!({
                "first": sizes.orders,
                "after": after,
                "query": search,
                "sortKey": match sort { SortKey::CreatedAt => "CREATED_AT", SortKey::UpdatedAt => "UPDATED_AT" },
                "lineItemsFirst": sizes.line_items,
            });
            let data = self
                .query(ORDERS_QUERY, &variables, sizes.requested_cost(), deadline)
                .await?;
            let connection = &data["orders"];
            let nodes = connection["nodes"]
                .as_array()
                .ok_or_else(|| ShopifyError::Decode(format!("no orders.nodes in {data}")))?;
            for node in nodes {
                orders.push(Order::from_node(node)?);
            }
            let page_info = &connection["pageInfo"];
            if page_info["hasNextPage"].as_bool() != Some(true) {
                return Ok(orders);
            }
            let cursor = page_info["endCursor"]
                .as_str()
                .ok_or_else(|| ShopifyError::Decode("hasNextPage without an endCursor".into()))?;
            after = Some(cursor.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_bucket_waits_for_the_cost_to_be_restored() {
        let bucket = Bucket {
            available: 20.0,
            restore_rate: 100.0,
            at: Instant::now(),
        };
        let wait = bucket.wait_for(120.0);
        assert!(
            wait >= Duration::from_millis(990) && wait <= Duration::from_millis(1060),
            "{wait:?}"
        );
        assert_eq!(bucket.wait_for(10.0), Duration::ZERO);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(3), Duration::from_secs(2));
        assert_eq!(backoff(20), MAX_BACKOFF);
    }
}

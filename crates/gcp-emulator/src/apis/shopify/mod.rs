//! A fake Shopify Admin GraphQL API (not Google's, and not Shopify's: written from Shopify's
//! documented requests and answers) at `/shopify/{shop}/admin/api/{version}/graphql.json`, so
//! `stackctl --local` can reconcile webhook subscriptions with nothing else running.
//!
//! What it does like Shopify: the `X-Shopify-Access-Token` check (401 with Shopify's body), a
//! per-shop leaky cost bucket reported in `extensions.cost` (`throttleStatus` with
//! `maximumAvailable`, `currentlyAvailable`, `restoreRate`) and a `THROTTLED` error when a query
//! costs more than the bucket holds, `userErrors` for refused mutations, GraphQL `errors` for what
//! it does not know. What it does not: parse GraphQL. It recognises an operation by its root
//! field (the first field after `query`/`mutation` and the operation's name), reads arguments
//! from `variables` only, and answers every field of the objects it returns, whatever the
//! selection asks for.
//!
//! A shop exists once seeded (`POST /_emulator/shopify/shops`) or, for local development, when a
//! first call reaches it: the token that call carries becomes the shop's. Each root field is one
//! [`Operation`] in [`OPERATIONS`]: webhook subscriptions, and the ingest job's `orders`. A shop
//! seeded with `too_many_requests = N` answers its next N requests HTTP 429 with `Retry-After`,
//! the REST-style limit some clients meet in front of GraphQL's own cost throttling.

mod orders;
mod webhooks;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::emulator::Emulator;
use crate::http::{HttpRequest, HttpResponse};
use crate::lock;
use crate::state::State;

/// Where the fake is served: `/shopify/{shop}/admin/api/{version}/graphql.json`.
const PREFIX: &str = "/shopify/";

/// Shopify's 401 body for a missing or wrong access token.
const INVALID_TOKEN: &str =
    "[API] Invalid API key or access token (unrecognized login or wrong password)";

/// Shopify's 429 body when a client calls too fast.
const TOO_MANY_REQUESTS: &str = "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.";

/// The default bucket: Shopify's Standard plan (100 points/s restored; RUNTIME-NOTES 9).
const DEFAULT_MAXIMUM_AVAILABLE: f64 = 2000.0;
const DEFAULT_RESTORE_RATE: f64 = 100.0;

/// One fake shop: its token, its cost bucket and what it holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShopRecord {
    pub access_token: String,
    pub bucket: CostBucket,
    /// Webhook subscriptions by zero-padded numeric id (so the map is in id order), as served.
    pub webhook_subscriptions: std::collections::BTreeMap<String, Value>,
    /// The last numeric id handed out in this shop.
    pub last_id: u64,
    /// Orders by zero-padded numeric id, in the shape the `orders` connection answers.
    pub orders: std::collections::BTreeMap<String, Value>,
    /// How many of the next requests are answered HTTP 429 before any GraphQL runs (seeded).
    pub too_many_requests: u32,
}

impl ShopRecord {
    fn new(access_token: &str) -> Self {
        Self {
            access_token: access_token.to_string(),
            bucket: CostBucket::default(),
            webhook_subscriptions: Default::default(),
            last_id: 1000,
            orders: Default::default(),
            too_many_requests: 0,
        }
    }

    fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }
}

/// The leaky bucket of query cost points (GraphQL Admin API rate limits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CostBucket {
    pub maximum_available: f64,
    pub restore_rate: f64,
    pub currently_available: f64,
    /// When `currently_available` was computed (RFC 3339).
    pub at: String,
}

impl Default for CostBucket {
    fn default() -> Self {
        Self {
            maximum_available: DEFAULT_MAXIMUM_AVAILABLE,
            restore_rate: DEFAULT_RESTORE_RATE,
            currently_available: DEFAULT_MAXIMUM_AVAILABLE,
            at: String::new(),
        }
    }
}

impl CostBucket {
    /// Refills for the time since it was last read.
    fn refill(&mut self, now: chrono::DateTime<chrono::Utc>) {
        if let Ok(then) = chrono::DateTime::parse_from_rfc3339(&self.at) {
            let elapsed = (now - then.with_timezone(&chrono::Utc))
                .num_milliseconds()
                .max(0);
            self.currently_available = (self.currently_available
                + self.restore_rate * elapsed as f64 / 1000.0)
                .min(self.maximum_available);
        }
        self.at = now.to_rfc3339();
    }

    fn throttle_status(&self) -> Value {
        json!({
            "maximumAvailable": self.maximum_available,
            "currentlyAvailable": self.currently_available.floor(),
            "restoreRate": self.restore_rate,
        })
    }
}

/// A GraphQL error as the answer's `errors` lists it.
#[derive(Debug)]
pub(crate) struct GraphqlError {
    message: String,
    extensions: Value,
}

impl GraphqlError {
    pub(crate) fn new(message: impl Into<String>, code: &str) -> Self {
        Self {
            message: message.into(),
            extensions: json!({"code": code}),
        }
    }

    /// A variable whose value does not fit its declared type.
    pub(crate) fn invalid_variable(name: &str, type_name: &str, value: &Value, why: &str) -> Self {
        Self {
            message: format!("Variable ${name} of type {type_name} was provided invalid value"),
            extensions: json!({
                "value": value,
                "problems": [{"path": [], "explanation": why}],
            }),
        }
    }

    fn to_json(&self) -> Value {
        json!({"message": self.message, "extensions": self.extensions})
    }
}

/// The `after` cursor of a connection's variables, decoded by `decode`: `None` when absent, or
/// the errors Shopify answers for a cursor it cannot read or a value that is not a string.
pub(crate) fn after_cursor<T>(
    variables: &Value,
    decode: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, GraphqlError> {
    match &variables["after"] {
        Value::Null => Ok(None),
        Value::String(cursor) => decode(cursor).map(Some).ok_or_else(|| {
            GraphqlError::new("Invalid cursor for current pagination sort.", "BAD_REQUEST")
        }),
        other => Err(GraphqlError::invalid_variable(
            "after",
            "String",
            other,
            "Could not coerce value to String",
        )),
    }
}

/// What one operation receives.
pub(crate) struct Request<'a> {
    pub variables: &'a Value,
    /// The Admin API version of the URL (`2025-10`).
    pub api_version: &'a str,
    pub now: chrono::DateTime<chrono::Utc>,
}

/// A root field's data and the cost it actually had, or the GraphQL error it answers.
pub(crate) type Answer = Result<(Value, f64), GraphqlError>;

/// One root field the fake answers: what it costs before running (`requested`), and what it
/// answers (`data` for the root field) with the cost it actually had.
pub(crate) struct Operation {
    pub root_field: &'static str,
    pub mutation: bool,
    pub requested: fn(&Request) -> Result<f64, GraphqlError>,
    pub run: fn(&mut ShopRecord, &Request) -> Answer,
}

/// Every operation the fake knows, by root field.
const OPERATIONS: &[Operation] = &[
    webhooks::LIST,
    webhooks::CREATE,
    webhooks::UPDATE,
    webhooks::DELETE,
    orders::LIST,
];

/// Whether `path` is the fake Shopify's.
pub fn is_shopify_path(path: &str) -> bool {
    path.starts_with(PREFIX)
}

/// `(shop, version)` of `/shopify/{shop}/admin/api/{version}/graphql.json`.
fn parse_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix(PREFIX)?;
    let (shop, rest) = rest.split_once('/')?;
    let version = rest
        .strip_prefix("admin/api/")?
        .strip_suffix("/graphql.json")?;
    (!shop.is_empty() && !version.is_empty() && !version.contains('/')).then_some((shop, version))
}

fn error_body(status: u16, errors: Value) -> HttpResponse {
    HttpResponse::json(status, &json!({"errors": errors}))
}

pub fn handle(emulator: &Emulator, request: &HttpRequest) -> HttpResponse {
    let Some((shop, version)) = parse_path(&request.raw_path) else {
        return error_body(404, json!("Not Found"));
    };
    if request.method != "POST" {
        return error_body(
            405,
            json!("The GraphQL Admin API takes POST requests with a JSON body"),
        );
    }
    let token = request
        .headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if token.is_empty() {
        return error_body(401, json!(INVALID_TOKEN));
    }
    let body: Value = match serde_json::from_slice(&request.body) {
        Ok(body) => body,
        Err(_) => {
            return error_body(
                400,
                json!({"query": "Required parameter missing or invalid"}),
            );
        }
    };
    let Some(query) = body["query"].as_str() else {
        return error_body(
            400,
            json!({"query": "Required parameter missing or invalid"}),
        );
    };
    let empty = json!({});
    let variables = match &body["variables"] {
        Value::Null => &empty,
        other => other,
    };
    let now = emulator.runtime.clock.now();
    let mut state = lock(&emulator.state);
    let record = match state.shopify_shops.get(shop) {
        Some(existing) if existing.access_token != token => {
            return error_body(401, json!(INVALID_TOKEN));
        }
        Some(existing) => existing.clone(),
        None => ShopRecord::new(token),
    };
    let mut record = record;
    if record.too_many_requests > 0 {
        record.too_many_requests -= 1;
        state.shopify_shops.insert(shop.to_string(), record);
        emulator.persist(&state);
        let mut response = error_body(429, json!(TOO_MANY_REQUESTS));
        response.headers.push(("retry-after".into(), "1.0".into()));
        return response;
    }
    let answer = execute(&mut record, query, variables, version, now);
    state.shopify_shops.insert(shop.to_string(), record);
    emulator.persist(&state);
    HttpResponse::json(200, &answer)
}

/// Runs one GraphQL request against `shop`: the answer's JSON, `extensions.cost` included.
fn execute(
    shop: &mut ShopRecord,
    query: &str,
    variables: &Value,
    api_version: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Value {
    let Some((is_mutation, root_field)) = root_field(query) else {
        let error = GraphqlError::new(
            "syntax error: the fake Shopify reads `query` or `mutation`, an optional name and variables, then one root field",
            "PARSE_ERROR",
        );
        return json!({"errors": [error.to_json()]});
    };
    let Some(operation) = OPERATIONS
        .iter()
        .find(|o| o.root_field == root_field && o.mutation == is_mutation)
    else {
        let kind = if is_mutation { "Mutation" } else { "QueryRoot" };
        let error = GraphqlError::new(
            format!(
                "Field '{root_field}' doesn't exist on type '{kind}' (the fake Shopify Admin API answers only the operations stackctl sends)"
            ),
            "undefinedField",
        );
        return json!({"errors": [error.to_json()]});
    };
    let request = Request {
        variables,
        api_version,
        now,
    };
    let requested = match (operation.requested)(&request) {
        Ok(cost) => cost,
        Err(error) => return json!({"errors": [error.to_json()]}),
    };
    shop.bucket.refill(now);
    if requested > shop.bucket.maximum_available {
        let error = GraphqlError::new(
            format!(
                "Query cost is {requested}, which exceeds the single query max cost limit ({}).",
                shop.bucket.maximum_available
            ),
            "MAX_COST_EXCEEDED",
        );
        return json!({"errors": [error.to_json()]});
    }
    if requested > shop.bucket.currently_available {
        let error = GraphqlError {
            message: "Throttled".into(),
            extensions: json!({
                "code": "THROTTLED",
                "documentation": "https://shopify.dev/api/usage/rate-limits",
            }),
        };
        return json!({
            "errors": [error.to_json()],
            "extensions": {"cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": null,
                "throttleStatus": shop.bucket.throttle_status(),
            }},
        });
    }
    match (operation.run)(shop, &request) {
        Ok((data, actual)) => {
            shop.bucket.currently_available -= actual;
            json!({
                "data": {root_field: data},
                "extensions": {"cost": {
                    "requestedQueryCost": requested,
                    "actualQueryCost": actual,
                    "throttleStatus": shop.bucket.throttle_status(),
                }},
            })
        }
        Err(error) => json!({"errors": [error.to_json()]}),
    }
}

/// `(is a mutation, root field)` of a query document: the first field inside the first
/// selection set, after any alias.
fn root_field(query: &str) -> Option<(bool, &str)> {
    let text = query.trim_start();
    let is_mutation = text.starts_with("mutation");
    if !(is_mutation || text.starts_with("query") || text.starts_with('{')) {
        return None;
    }
    let after_brace = &text[text.find('{')? + 1..];
    let identifier = |s: &str| -> usize {
        s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len())
    };
    let rest = after_brace.trim_start();
    let first = &rest[..identifier(rest)];
    let after_first = rest[first.len()..].trim_start();
    let field = match after_first.strip_prefix(':') {
        Some(aliased) => {
            let aliased = aliased.trim_start();
            &aliased[..identifier(aliased)]
        }
        None => first,
    };
    (!field.is_empty()).then_some((is_mutation, field))
}

/// `POST /_emulator/shopify/shops` `{"shop": "acme.myshopify.com", "access_token": "...",
/// "maximum_available": 2000, "restore_rate": 100, "too_many_requests": 0}`: creates or resets a
/// shop's token, bucket and 429s (its subscriptions and orders are kept).
pub fn seed_shop(state: &mut State, body: &Value) -> Result<Value, String> {
    let shop = body["shop"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or("expected {\"shop\": \"NAME.myshopify.com\", \"access_token\": \"...\"}")?;
    let token = body["access_token"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or("expected an access_token")?;
    let mut record = state
        .shopify_shops
        .get(shop)
        .cloned()
        .unwrap_or_else(|| ShopRecord::new(token));
    record.access_token = token.to_string();
    let maximum = body["maximum_available"]
        .as_f64()
        .unwrap_or(DEFAULT_MAXIMUM_AVAILABLE);
    let restore = body["restore_rate"]
        .as_f64()
        .unwrap_or(DEFAULT_RESTORE_RATE);
    record.bucket = CostBucket {
        maximum_available: maximum,
        restore_rate: restore,
        currently_available: maximum,
        at: String::new(),
    };
    record.too_many_requests = body["too_many_requests"].as_u64().unwrap_or(0) as u32;
    state.shopify_shops.insert(shop.to_string(), record);
    Ok(json!({"shop": shop}))
}

/// `POST /_emulator/shopify/webhookSubscriptions` `{"shop": ..., "topic": ..., "callbackUrl":
/// ..., "format": "JSON", "apiVersion": "2025-10"}`: a subscription made by someone else (another
/// app, a person), checked like a create.
pub fn seed_webhook_subscription(state: &mut State, body: &Value) -> Result<Value, String> {
    let shop = body["shop"].as_str().ok_or("expected a shop")?;
    let record = state.shopify_shops.get(shop).cloned().ok_or_else(|| {
        format!("no shop {shop}: seed it first with POST /_emulator/shopify/shops")
    })?;
    let mut record = record;
    let made = webhooks::seed(&mut record, body)?;
    state.shopify_shops.insert(shop.to_string(), record);
    Ok(made)
}

/// `POST /_emulator/shopify/orders`: see [`orders::seed`].
pub fn seed_orders(state: &mut State, body: &Value) -> Result<Value, String> {
    let shop = body["shop"].as_str().ok_or("expected a shop")?;
    let mut record = state.shopify_shops.get(shop).cloned().ok_or_else(|| {
        format!("no shop {shop}: seed it first with POST /_emulator/shopify/shops")
    })?;
    let made = orders::seed(&mut record, body)?;
    state.shopify_shops.insert(shop.to_string(), record);
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_field_follows_the_operation_keyword_and_name() {
        assert_eq!(
            root_field(
                "query Subs($first: Int!) { webhookSubscriptions(first: $first) { nodes { id } } }"
            ),
            Some((false, "webhookSubscriptions"))
        );
        assert_eq!(
            root_field(
                "mutation { made: webhookSubscriptionCreate(topic: $t) { userErrors { message } } }"
            ),
            Some((true, "webhookSubscriptionCreate"))
        );
        assert_eq!(root_field("{ shop { name } }"), Some((false, "shop")));
        assert_eq!(root_field("subscription { x }"), None);
    }

    #[test]
    fn paths_name_the_shop_and_the_version() {
        assert_eq!(
            parse_path("/shopify/acme.myshopify.com/admin/api/2025-10/graphql.json"),
            Some(("acme.myshopify.com", "2025-10"))
        );
        assert_eq!(
            parse_path("/shopify/acme.myshopify.com/admin/api/graphql.json"),
            None
        );
    }

    #[test]
    fn a_query_costing_more_than_the_bucket_holds_is_throttled_until_it_refills() {
        let mut shop = ShopRecord::new("t");
        let now = chrono::Utc::now();
        shop.bucket = CostBucket {
            maximum_available: 150.0,
            restore_rate: 50.0,
            currently_available: 50.0,
            at: now.to_rfc3339(),
        };
        let list = "query { webhookSubscriptions(first: $first) { nodes { id } } }";
        let variables = json!({"first": 100});
        let throttled = execute(&mut shop, list, &variables, "2025-10", now);
        assert_eq!(throttled["errors"][0]["extensions"]["code"], "THROTTLED");
        assert_eq!(throttled["extensions"]["cost"]["requestedQueryCost"], 102.0);
        assert!(throttled["data"].is_null());
        let later = now + chrono::Duration::seconds(2);
        let answered = execute(&mut shop, list, &variables, "2025-10", later);
        assert!(answered["errors"].is_null(), "{answered}");
        assert_eq!(
            answered["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"],
            148.0
        );
    }

    #[test]
    fn unknown_root_fields_are_graphql_errors() {
        let mut shop = ShopRecord::new("t");
        let answer = execute(
            &mut shop,
            "query { products(first: 1) { nodes { id } } }",
            &json!({}),
            "2025-10",
            chrono::Utc::now(),
        );
        assert!(
            answer["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("products"),
            "{answer}"
        );
    }
}

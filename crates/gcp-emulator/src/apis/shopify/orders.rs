//! The fake Shopify's orders: the `orders` connection the ingest job pages through (`first` /
//! `after` cursors, `sortKey` `ID`/`CREATED_AT`/`UPDATED_AT`, `reverse`, and the search syntax's
//! `created_at:`/`updated_at:` comparisons joined by `AND`), with a cost that grows with the page
//! and its nested `lineItems` page, and the seeding of orders (`POST /_emulator/shopify/orders`).
//!
//! Costs follow Shopify's documented rule (an object 1 point, a connection 2 plus its `first`
//! times the cost of a node): an order page is `2 + first × (3 + lineItemsFirst)` requested, and
//! what the returned nodes actually hold once answered.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use super::{Answer, GraphqlError, Operation, Request, ShopRecord};

/// The largest page a connection serves.
const MAX_PAGE: u64 = 250;
/// `lineItems` of each order when the query does not say (`$lineItemsFirst`).
const DEFAULT_LINE_ITEMS: u64 = 10;

pub(super) const LIST: Operation = Operation {
    root_field: "orders",
    mutation: false,
    requested: list_cost,
    run: list,
};

/// `(first, lineItemsFirst)` of the query's variables.
fn page_sizes(variables: &Value) -> Result<(u64, u64), GraphqlError> {
    let first = match variables["first"].as_u64() {
        Some(n) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            return Err(GraphqlError::new(
                format!("The page size must be between 1 and {MAX_PAGE}"),
                "BAD_REQUEST",
            ));
        }
        None => {
            return Err(GraphqlError::new(
                "you must provide one of first or last",
                "BAD_REQUEST",
            ));
        }
    };
    let line_items = match &variables["lineItemsFirst"] {
        Value::Null => DEFAULT_LINE_ITEMS,
        value => match value.as_u64() {
            Some(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(GraphqlError::invalid_variable(
                    "lineItemsFirst",
                    "Int",
                    value,
                    "between 1 and 250",
                ));
            }
        },
    };
    Ok((first, line_items))
}

fn list_cost(request: &Request) -> Result<f64, GraphqlError> {
    let (first, line_items) = page_sizes(request.variables)?;
    Ok(2.0 + first as f64 * (3.0 + line_items as f64))
}

/// The sort keys the fake orders by.
#[derive(Debug, Clone, Copy, PartialEq)]
enum SortKey {
    Id,
    CreatedAt,
    UpdatedAt,
}

impl SortKey {
    fn parse(value: &Value) -> Result<Self, GraphqlError> {
        match value.as_str() {
            None if value.is_null() => Ok(Self::Id),
            Some("ID") => Ok(Self::Id),
            Some("CREATED_AT") => Ok(Self::CreatedAt),
            Some("UPDATED_AT") => Ok(Self::UpdatedAt),
            _ => Err(GraphqlError::invalid_variable(
                "sortKey",
                "OrderSortKeys",
                value,
                "Expected one of ID, CREATED_AT, UPDATED_AT (the sort keys the fake Shopify knows)",
            )),
        }
    }

    /// The value an order sorts by, then its numeric id.
    fn key(self, order: &Value) -> (String, u64) {
        let id = legacy_id(order);
        let value = match self {
            Self::Id => String::new(),
            Self::CreatedAt => order["createdAt"].as_str().unwrap_or_default().to_string(),
            Self::UpdatedAt => order["updatedAt"].as_str().unwrap_or_default().to_string(),
        };
        (value, id)
    }
}

fn legacy_id(order: &Value) -> u64 {
    order["legacyResourceId"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_default()
}

fn cursor_of(key: &(String, u64)) -> String {
    BASE64.encode(json!({"last_value": key.0, "last_id": key.1}).to_string())
}

fn key_of_cursor(cursor: &str) -> Option<(String, u64)> {
    let bytes = BASE64.decode(cursor).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    Some((
        value["last_value"].as_str()?.to_string(),
        value["last_id"].as_u64()?,
    ))
}

/// One `field:OPvalue` term of Shopify's search syntax.
#[derive(Debug, Clone, PartialEq)]
struct Term {
    field: &'static str,
    op: &'static str,
    at: DateTime<Utc>,
}

impl Term {
    fn matches(&self, order: &Value) -> bool {
        let Some(value) = order[self.field]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
        else {
            return false;
        };
        match self.op {
            ">=" => value >= self.at,
            ">" => value > self.at,
            "<=" => value <= self.at,
            "<" => value < self.at,
            _ => value == self.at,
        }
    }
}

/// The terms of a `query` argument: `created_at:>='2026-12-01T00:00:00Z' AND updated_at:<…`.
fn parse_search(query: &str) -> Result<Vec<Term>, GraphqlError> {
    let mut terms = Vec::new();
    for word in query.split_whitespace() {
        if word == "AND" {
            continue;
        }
        let not_understood = || {
            GraphqlError::new(
                format!(
                    "the fake Shopify understands `created_at:` and `updated_at:` comparisons joined by AND, not `{word}`"
                ),
                "BAD_REQUEST",
            )
        };
        let (name, rest) = word.split_once(':').ok_or_else(not_understood)?;
        let field = match name {
            "created_at" => "createdAt",
            "updated_at" => "updatedAt",
            _ => return Err(not_understood()),
        };
        let op = [">=", "<=", ">", "<"]
            .into_iter()
            .find(|op| rest.starts_with(op))
            .unwrap_or("");
        let value = rest[op.len()..].trim_matches(|c| c == '\'' || c == '"');
        let at = DateTime::parse_from_rfc3339(value)
            .map(|t| t.with_timezone(&Utc))
            .or_else(|_| {
                NaiveDate::parse_from_str(value, "%Y-%m-%d")
                    .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
            })
            .map_err(|_| not_understood())?;
        terms.push(Term { field, op, at });
    }
    Ok(terms)
}

fn list(shop: &mut ShopRecord, request: &Request) -> Answer {
    let (first, line_items) = page_sizes(request.variables)?;
    let sort = SortKey::parse(&request.variables["sortKey"])?;
    let reverse = request.variables["reverse"].as_bool().unwrap_or(false);
    let terms = match request.variables["query"].as_str() {
        Some(query) => parse_search(query)?,
        None => Vec::new(),
    };
    let after = super::after_cursor(request.variables, key_of_cursor)?;
    let mut matching: Vec<(&Value, (String, u64))> = shop
        .orders
        .values()
        .filter(|order| terms.iter().all(|t| t.matches(order)))
        .map(|order| (order, sort.key(order)))
        .collect();
    matching.sort_by(|a, b| a.1.cmp(&b.1));
    if reverse {
        matching.reverse();
    }
    let remaining: Vec<&(&Value, (String, u64))> = matching
        .iter()
        .filter(|(_, key)| match &after {
            None => true,
            Some(after) if reverse => key < after,
            Some(after) => key > after,
        })
        .collect();
    let page: Vec<(Value, String)> = remaining
        .iter()
        .take(first as usize)
        .map(|(order, key)| (with_line_items(order, line_items), cursor_of(key)))
        .collect();
    let actual = 2.0
        + page
            .iter()
            .map(|(order, _)| {
                3.0 + order["lineItems"]["nodes"].as_array().map_or(0, Vec::len) as f64
            })
            .sum::<f64>();
    let edges: Vec<Value> = page
        .iter()
        .map(|(node, cursor)| json!({"cursor": cursor, "node": node}))
        .collect();
    Ok((
        json!({
            "nodes": page.iter().map(|(node, _)| node.clone()).collect::<Vec<_>>(),
            "edges": edges,
            "pageInfo": {
                "hasNextPage": remaining.len() > first as usize,
                "hasPreviousPage": after.is_some(),
                "startCursor": page.first().map(|(_, c)| c.clone()),
                "endCursor": page.last().map(|(_, c)| c.clone()),
            },
        }),
        actual,
    ))
}

/// The order as answered: its first `line_items` line items and whether there are more.
fn with_line_items(order: &Value, line_items: u64) -> Value {
    let mut order = order.clone();
    let all = order["lineItems"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let shown: Vec<Value> = all.iter().take(line_items as usize).cloned().collect();
    order["lineItems"] = json!({
        "nodes": shown,
        "pageInfo": {"hasNextPage": all.len() > line_items as usize},
    });
    order
}

/// `POST /_emulator/shopify/orders` `{"shop": ..., "orders": [{"id": 1001, "created_at": ...,
/// "updated_at": ..., "customer_id": 7, "total_price": "12.50", "currency": "USD", "name":
/// "#1001", "financial_status": "PAID", "line_items": [{"sku": "A", "quantity": 1}]}]}`: creates
/// or replaces orders (an update is the same order with a later `updated_at`).
pub fn seed(shop: &mut ShopRecord, body: &Value) -> Result<Value, String> {
    let orders = body["orders"].as_array().ok_or(
        "expected {\"shop\": ..., \"orders\": [{\"id\": 1001, \"created_at\": \"...\", ...}]}",
    )?;
    for seeded in orders {
        let id = seeded["id"]
            .as_u64()
            .ok_or("every order needs a numeric id")?;
        let timestamp = |field: &str| -> Result<String, String> {
            let text = seeded[field]
                .as_str()
                .ok_or_else(|| format!("order {id} needs {field} (RFC 3339)"))?;
            DateTime::parse_from_rfc3339(text)
                .map(|t| {
                    t.with_timezone(&Utc)
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                })
                .map_err(|e| format!("order {id}: {field} {text:?} is not RFC 3339: {e}"))
        };
        let created_at = timestamp("created_at")?;
        let updated_at = match seeded.get("updated_at") {
            Some(_) => timestamp("updated_at")?,
            None => created_at.clone(),
        };
        let currency = seeded["currency"].as_str().unwrap_or("USD");
        let customer = match &seeded["customer_id"] {
            Value::Null => Value::Null,
            value => {
                let numeric = value
                    .as_u64()
                    .map(|n| n.to_string())
                    .or_else(|| value.as_str().map(str::to_string))
                    .ok_or_else(|| format!("order {id}: customer_id must be a number"))?;
                json!({"id": format!("gid://shopify/Customer/{numeric}")})
            }
        };
        let line_items: Vec<Value> = seeded["line_items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| json!({"sku": item["sku"], "quantity": item["quantity"]}))
                    .collect()
            })
            .unwrap_or_default();
        let order = json!({
            "id": format!("gid://shopify/Order/{id}"),
            "legacyResourceId": id.to_string(),
            "name": seeded["name"].as_str().map_or_else(|| format!("#{id}"), str::to_string),
            "createdAt": created_at,
            "updatedAt": updated_at,
            "displayFinancialStatus": seeded["financial_status"].as_str().unwrap_or("PAID"),
            "currencyCode": currency,
            "totalPriceSet": {"shopMoney": {
                "amount": seeded["total_price"].as_str().unwrap_or("0.0"),
                "currencyCode": currency,
            }},
            "customer": customer,
            "lineItems": {"nodes": line_items},
        });
        shop.orders.insert(format!("{id:020}"), order);
    }
    Ok(json!({"orders": shop.orders.len()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop_with(orders: Value) -> ShopRecord {
        let mut shop = ShopRecord::new("t");
        seed(&mut shop, &json!({"orders": orders})).expect("seeded");
        shop
    }

    fn page(shop: &mut ShopRecord, variables: Value) -> Value {
        let request = Request {
            variables: &variables,
            api_version: "2025-10",
            now: Utc::now(),
        };
        list(shop, &request).expect("answered").0
    }

    fn ids(page: &Value) -> Vec<&str> {
        page["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["legacyResourceId"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn cursors_page_through_the_orders_a_search_selects_in_sort_order() {
        let mut shop = shop_with(json!([
            {"id": 1, "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-03T09:00:00Z"},
            {"id": 2, "created_at": "2026-12-01T23:59:59Z", "updated_at": "2026-12-02T00:00:00Z"},
            {"id": 3, "created_at": "2026-12-02T00:00:00Z", "updated_at": "2026-12-04T00:00:00Z"},
            {"id": 4, "created_at": "2026-11-30T08:00:00Z", "updated_at": "2026-12-05T00:00:00Z"},
        ]));
        let query = "updated_at:>='2026-12-02T00:00:00Z'";
        let first = page(
            &mut shop,
            json!({"first": 2, "query": query, "sortKey": "UPDATED_AT"}),
        );
        assert_eq!(ids(&first), ["2", "1"]);
        assert_eq!(first["pageInfo"]["hasNextPage"], true);
        let second = page(
            &mut shop,
            json!({"first": 2, "query": query, "sortKey": "UPDATED_AT",
                   "after": first["pageInfo"]["endCursor"]}),
        );
        assert_eq!(ids(&second), ["3", "4"]);
        assert_eq!(second["pageInfo"]["hasNextPage"], false);

        let day = page(
            &mut shop,
            json!({"first": 10,
                   "query": "created_at:>='2026-12-01T00:00:00Z' AND created_at:<'2026-12-02T00:00:00Z'"}),
        );
        assert_eq!(ids(&day), ["1", "2"]);
    }

    #[test]
    fn an_order_page_costs_its_nested_line_items_and_unknown_searches_are_refused() {
        let request = Request {
            variables: &json!({"first": 25, "lineItemsFirst": 20}),
            api_version: "2025-10",
            now: Utc::now(),
        };
        assert_eq!(list_cost(&request).unwrap(), 2.0 + 25.0 * 23.0);
        assert!(parse_search("financial_status:paid").is_err());
        assert_eq!(
            parse_search("created_at:<2026-12-02").unwrap()[0].at,
            "2026-12-02T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }
}

//! The fake Shopify's webhook subscriptions: `webhookSubscriptions` (cursor pages),
//! `webhookSubscriptionCreate`, `webhookSubscriptionUpdate` and `webhookSubscriptionDelete`, with
//! the `userErrors` Shopify documents (a duplicate topic and address, a non-HTTPS address, an
//! unknown id).

use serde_json::{Value, json};

use super::{Answer, GraphqlError, Operation, Request, ShopRecord};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// What a mutation costs (Shopify: 10 points).
const MUTATION_COST: f64 = 10.0;
/// The largest page a connection serves.
const MAX_PAGE: u64 = 250;
const FORMATS: &[&str] = &["JSON", "XML"];

pub(super) const LIST: Operation = Operation {
    root_field: "webhookSubscriptions",
    mutation: false,
    requested: list_cost,
    run: list,
};

pub(super) const CREATE: Operation = Operation {
    root_field: "webhookSubscriptionCreate",
    mutation: true,
    requested: mutation_cost,
    run: create,
};

pub(super) const UPDATE: Operation = Operation {
    root_field: "webhookSubscriptionUpdate",
    mutation: true,
    requested: mutation_cost,
    run: update,
};

pub(super) const DELETE: Operation = Operation {
    root_field: "webhookSubscriptionDelete",
    mutation: true,
    requested: mutation_cost,
    run: delete,
};

fn mutation_cost(_: &Request) -> Result<f64, GraphqlError> {
    Ok(MUTATION_COST)
}

/// `first` of a connection: required, 1 to 250.
fn page_size(variables: &Value) -> Result<u64, GraphqlError> {
    match variables["first"].as_u64() {
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(GraphqlError::new(
            format!("The page size must be between 1 and {MAX_PAGE}"),
            "BAD_REQUEST",
        )),
        None => Err(GraphqlError::new(
            "you must provide one of first or last",
            "BAD_REQUEST",
        )),
    }
}

/// A connection costs 2 plus one point per node it may return.
fn list_cost(request: &Request) -> Result<f64, GraphqlError> {
    Ok(2.0 + page_size(request.variables)? as f64)
}

/// The opaque cursor of the subscription with numeric id `id`.
fn cursor_of(id: u64) -> String {
    BASE64.encode(json!({"last_id": id}).to_string())
}

fn id_of_cursor(cursor: &str) -> Option<u64> {
    let bytes = BASE64.decode(cursor).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?["last_id"].as_u64()
}

/// The numeric id in `gid://shopify/WebhookSubscription/N`.
fn numeric_id(gid: &str) -> Option<u64> {
    gid.strip_prefix("gid://shopify/WebhookSubscription/")?
        .parse()
        .ok()
}

/// The key of subscription `id` in the shop's map (zero-padded: the map is in id order).
fn key_of(id: u64) -> String {
    format!("{id:020}")
}

fn list(shop: &mut ShopRecord, request: &Request) -> Answer {
    let first = page_size(request.variables)? as usize;
    let after = super::after_cursor(request.variables, id_of_cursor)?;
    let remaining: Vec<&Value> = shop
        .webhook_subscriptions
        .iter()
        .filter(|(key, _)| after.is_none_or(|a| key.as_str() > key_of(a).as_str()))
        .map(|(_, v)| v)
        .collect();
    let page: Vec<Value> = remaining.iter().take(first).map(|v| (*v).clone()).collect();
    let end_cursor = page
        .last()
        .and_then(|v| numeric_id(v["id"].as_str().unwrap_or_default()))
        .map(cursor_of);
    let start_cursor = page
        .first()
        .and_then(|v| numeric_id(v["id"].as_str().unwrap_or_default()))
        .map(cursor_of);
    let edges: Vec<Value> = page
        .iter()
        .map(|node| {
            let cursor = numeric_id(node["id"].as_str().unwrap_or_default()).map(cursor_of);
            json!({"cursor": cursor, "node": node})
        })
        .collect();
    let actual = 2.0 + page.len() as f64;
    Ok((
        json!({
            "nodes": page,
            "edges": edges,
            "pageInfo": {
                "hasNextPage": remaining.len() > first,
                "hasPreviousPage": after.is_some(),
                "startCursor": start_cursor,
                "endCursor": end_cursor,
            },
        }),
        actual,
    ))
}

/// A `userErrors` entry.
fn user_error(field: &[&str], message: &str) -> Value {
    json!({"field": field, "message": message})
}

/// The `WebhookSubscriptionInput` fields the fake reads, checked: `(callbackUrl, format)`, or
/// the user errors Shopify answers.
fn read_input(input: &Value, current_format: Option<&str>) -> Result<(String, String), Vec<Value>> {
    let mut errors = Vec::new();
    let url = input["callbackUrl"]
        .as_str()
        .or_else(|| input["uri"].as_str())
        .unwrap_or_default()
        .to_string();
    if url.is_empty() {
        errors.push(user_error(
            &["webhookSubscription", "callbackUrl"],
            "Address can't be blank",
        ));
    } else if !url.starts_with("https://") {
        let protocol = url.split("://").next().unwrap_or_default();
        errors.push(user_error(
            &["webhookSubscription", "callbackUrl"],
            &format!("Address protocol {protocol}:// is not supported"),
        ));
    }
    let format = input["format"]
        .as_str()
        .or(current_format)
        .unwrap_or("JSON")
        .to_string();
    if !FORMATS.contains(&format.as_str()) {
        errors.push(user_error(
            &["webhookSubscription", "format"],
            "Format is not included in the list",
        ));
    }
    if errors.is_empty() {
        Ok((url, format))
    } else {
        Err(errors)
    }
}

/// Another subscription (not `except`) already sends `topic` to `url`.
fn address_taken(shop: &ShopRecord, topic: &str, url: &str, except: Option<&str>) -> bool {
    shop.webhook_subscriptions.values().any(|s| {
        s["topic"] == topic
            && s["endpoint"]["callbackUrl"] == url
            && except.is_none_or(|id| s["id"] != id)
    })
}

/// A subscription as the API answers it (every field, whatever the selection).
fn subscription(
    id: u64,
    topic: &str,
    url: &str,
    format: &str,
    api_version: &str,
    created_at: &str,
    now: &str,
) -> Value {
    json!({
        "id": format!("gid://shopify/WebhookSubscription/{id}"),
        "legacyResourceId": id.to_string(),
        "topic": topic,
        "format": format,
        "apiVersion": {"handle": api_version, "displayName": api_version, "supported": true},
        "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": url},
        "callbackUrl": url,
        "uri": url,
        "filter": null,
        "includeFields": [],
        "metafieldNamespaces": [],
        "createdAt": created_at,
        "updatedAt": now,
    })
}

/// `topic`: the `WebhookSubscriptionTopic!` variable, in the enum form.
fn read_topic(variables: &Value) -> Result<String, GraphqlError> {
    let topic = &variables["topic"];
    match topic.as_str() {
        Some(t)
            if !t.is_empty()
                && t.starts_with(|c: char| c.is_ascii_uppercase())
                && t.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
        {
            Ok(t.to_string())
        }
        _ => Err(GraphqlError::invalid_variable(
            "topic",
            "WebhookSubscriptionTopic!",
            topic,
            "Expected a WebhookSubscriptionTopic value such as ORDERS_UPDATED",
        )),
    }
}

fn payload(subscription: Option<Value>, user_errors: Vec<Value>) -> (Value, f64) {
    (
        json!({"webhookSubscription": subscription, "userErrors": user_errors}),
        MUTATION_COST,
    )
}

fn create(shop: &mut ShopRecord, request: &Request) -> Answer {
    let topic = read_topic(request.variables)?;
    let (url, format) = match read_input(&request.variables["webhookSubscription"], None) {
        Ok(input) => input,
        Err(errors) => return Ok(payload(None, errors)),
    };
    if address_taken(shop, &topic, &url, None) {
        return Ok(payload(
            None,
            vec![user_error(
                &["webhookSubscription", "callbackUrl"],
                "Address for this topic has already been taken",
            )],
        ));
    }
    let id = shop.next_id();
    let now = request.now.to_rfc3339();
    let made = subscription(id, &topic, &url, &format, request.api_version, &now, &now);
    shop.webhook_subscriptions.insert(key_of(id), made.clone());
    Ok(payload(Some(made), vec![]))
}

/// The stored subscription `id` names, or the user error Shopify answers.
fn existing(shop: &ShopRecord, variables: &Value) -> Result<(String, Value), Value> {
    let missing = || user_error(&["id"], "Webhook subscription does not exist");
    let id = variables["id"]
        .as_str()
        .and_then(numeric_id)
        .ok_or_else(missing)?;
    let key = key_of(id);
    let current = shop
        .webhook_subscriptions
        .get(&key)
        .cloned()
        .ok_or_else(missing)?;
    Ok((key, current))
}

fn update(shop: &mut ShopRecord, request: &Request) -> Answer {
    let (key, current) = match existing(shop, request.variables) {
        Ok(found) => found,
        Err(error) => return Ok(payload(None, vec![error])),
    };
    let input = &request.variables["webhookSubscription"];
    let merged = match input["callbackUrl"]
        .as_str()
        .or_else(|| input["uri"].as_str())
    {
        Some(_) => input.clone(),
        None => {
            let mut with_url = input.clone();
            with_url["callbackUrl"] = current["endpoint"]["callbackUrl"].clone();
            with_url
        }
    };
    let (url, format) = match read_input(&merged, current["format"].as_str()) {
        Ok(input) => input,
        Err(errors) => return Ok(payload(None, errors)),
    };
    let topic = current["topic"].as_str().unwrap_or_default().to_string();
    let id_text = current["id"].as_str().unwrap_or_default().to_string();
    if address_taken(shop, &topic, &url, Some(&id_text)) {
        return Ok(payload(
            None,
            vec![user_error(
                &["webhookSubscription", "callbackUrl"],
                "Address for this topic has already been taken",
            )],
        ));
    }
    let id = numeric_id(&id_text).unwrap_or_default();
    let updated = subscription(
        id,
        &topic,
        &url,
        &format,
        request.api_version,
        current["createdAt"].as_str().unwrap_or_default(),
        &request.now.to_rfc3339(),
    );
    shop.webhook_subscriptions.insert(key, updated.clone());
    Ok(payload(Some(updated), vec![]))
}

fn delete(shop: &mut ShopRecord, request: &Request) -> Answer {
    let answer = match existing(shop, request.variables) {
        Ok((key, current)) => {
            shop.webhook_subscriptions.remove(&key);
            json!({"deletedWebhookSubscriptionId": current["id"], "userErrors": []})
        }
        Err(error) => json!({"deletedWebhookSubscriptionId": null, "userErrors": [error]}),
    };
    Ok((answer, MUTATION_COST))
}

/// A subscription seeded through the admin API, checked like a create.
pub(super) fn seed(shop: &mut ShopRecord, body: &Value) -> Result<Value, String> {
    let variables = json!({
        "topic": body["topic"],
        "webhookSubscription": {"callbackUrl": body["callbackUrl"], "format": body["format"]},
    });
    let request = Request {
        variables: &variables,
        api_version: body["apiVersion"].as_str().unwrap_or("2025-10"),
        now: chrono::Utc::now(),
    };
    let (answer, _) = create(shop, &request).map_err(|e| e.message)?;
    match answer["userErrors"].as_array() {
        Some(errors) if !errors.is_empty() => Err(Value::Array(errors.clone()).to_string()),
        _ => Ok(answer["webhookSubscription"].clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(variables: &Value) -> Request<'_> {
        Request {
            variables,
            api_version: "2025-10",
            now: chrono::Utc::now(),
        }
    }

    fn created(shop: &mut ShopRecord, topic: &str, url: &str) -> Value {
        let variables =
            json!({"topic": topic, "webhookSubscription": {"callbackUrl": url, "format": "JSON"}});
        create(shop, &request(&variables)).unwrap().0
    }

    #[test]
    fn a_topic_and_address_are_taken_once() {
        let mut shop = ShopRecord::new("t");
        let first = created(&mut shop, "ORDERS_UPDATED", "https://a.example/hook");
        assert_eq!(first["userErrors"], json!([]));
        let again = created(&mut shop, "ORDERS_UPDATED", "https://a.example/hook");
        assert_eq!(
            again["userErrors"][0]["message"],
            "Address for this topic has already been taken"
        );
        let http = created(&mut shop, "ORDERS_CREATE", "http://a.example/hook");
        assert_eq!(
            http["userErrors"][0]["message"],
            "Address protocol http:// is not supported"
        );
    }

    #[test]
    fn pages_follow_the_end_cursor() {
        let mut shop = ShopRecord::new("t");
        for n in 0..3 {
            created(
                &mut shop,
                "ORDERS_CREATE",
                &format!("https://a.example/{n}"),
            );
        }
        let first = list(&mut shop, &request(&json!({"first": 2}))).unwrap().0;
        assert_eq!(first["nodes"].as_array().unwrap().len(), 2);
        assert_eq!(first["pageInfo"]["hasNextPage"], true);
        let after = first["pageInfo"]["endCursor"].clone();
        let second = list(&mut shop, &request(&json!({"first": 2, "after": after})))
            .unwrap()
            .0;
        assert_eq!(second["nodes"].as_array().unwrap().len(), 1);
        assert_eq!(
            second["nodes"][0]["endpoint"]["callbackUrl"],
            "https://a.example/2"
        );
        assert_eq!(second["pageInfo"]["hasNextPage"], false);
    }

    #[test]
    fn updates_keep_the_topic_and_deletes_of_unknown_ids_are_user_errors() {
        let mut shop = ShopRecord::new("t");
        let made = created(&mut shop, "ORDERS_CREATE", "https://a.example/1");
        let id = made["webhookSubscription"]["id"].clone();
        let variables =
            json!({"id": id, "webhookSubscription": {"callbackUrl": "https://a.example/2"}});
        let updated = update(&mut shop, &request(&variables)).unwrap().0;
        assert_eq!(updated["webhookSubscription"]["topic"], "ORDERS_CREATE");
        assert_eq!(
            updated["webhookSubscription"]["endpoint"]["callbackUrl"],
            "https://a.example/2"
        );
        let deleted = delete(&mut shop, &request(&json!({"id": id}))).unwrap().0;
        assert_eq!(deleted["deletedWebhookSubscriptionId"], id);
        let again = delete(&mut shop, &request(&json!({"id": id}))).unwrap().0;
        assert_eq!(
            again["userErrors"][0]["message"],
            "Webhook subscription does not exist"
        );
    }
}

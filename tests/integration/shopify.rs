//! `[shopify_webhook.NAME]` against the emulator's fake Shopify Admin API: subscriptions created,
//! re-planned empty, updated (path), replaced by delete and create (topic), deleted when their
//! stanza goes; someone else's subscription is never touched; a wrong token is an error naming
//! its secret; config errors are located.

use serde_json::{Value, json};

use crate::support::*;

const SHOP: &str = "acme.myshopify.com";
const TOKEN: &str = "shpat_fake_right_token";

fn stack() -> String {
    r#"[stack]
name = "shopify-test"
project = "test-project"
region = "us-central1"

[service.relay]
image = "us-docker.pkg.dev/cloudrun/container/hello"
max_instances = 2

[secret.shopify-admin-token]

[shopify]
shop = "acme.myshopify.com"
access_token = "secret.shopify-admin-token"

[shopify_webhook.orders]
topic = "ORDERS_UPDATED"
target = "service.relay"
path = "/webhooks/shopify"

[shopify_webhook.customers]
topic = "CUSTOMERS_CREATE"
target = "service.relay"
path = "/webhooks/shopify"
"#
    .to_string()
}

/// Every subscription of the fake shop, asked with GraphQL as any app would.
fn subscriptions(emulator: &Emulator) -> Vec<Value> {
    let body = json!({
        "query": "query($first: Int!) { webhookSubscriptions(first: $first) { nodes { id topic endpoint { ... on WebhookHttpEndpoint { callbackUrl } } } pageInfo { hasNextPage } } }",
        "variables": {"first": 250},
    });
    let (status, answer) = http_with(
        &emulator.addr(),
        "POST",
        &format!("/shopify/{SHOP}/admin/api/2025-10/graphql.json"),
        &[("X-Shopify-Access-Token", TOKEN)],
        Some(&body.to_string()),
    );
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).expect("GraphQL JSON");
    answer["data"]["webhookSubscriptions"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer:#}"))
        .clone()
}

fn topics_and_urls(emulator: &Emulator) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = subscriptions(emulator)
        .iter()
        .map(|s| {
            (
                s["topic"].as_str().unwrap_or_default().to_string(),
                s["endpoint"]["callbackUrl"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn seed_shop(emulator: &Emulator, token: &str) {
    let body = json!({"shop": SHOP, "access_token": token}).to_string();
    let (status, answer) = emulator.http("POST", "/_emulator/shopify/shops", Some(&body));
    assert_eq!(status, 200, "{answer}");
}

fn set_token(emulator: &Emulator, value: &str) {
    let data = base64(value.as_bytes());
    let (status, body) = emulator.http(
        "POST",
        "/v1/projects/test-project/secrets/shopify-admin-token:addVersion",
        Some(&format!(r#"{{"payload": {{"data": "{data}"}}}}"#)),
    );
    assert_eq!(status, 200, "adding the token: {body}");
}

const CRM_HOOK: &str = "https://crm.example.com/hooks/orders";

#[test]
fn subscriptions_are_created_updated_replaced_and_deleted_and_unowned_ones_untouched() {
    let emulator = Emulator::start();
    seed_shop(&emulator, TOKEN);
    // Another app's subscription to a topic the stack declares too.
    let unowned =
        json!({"shop": SHOP, "topic": "ORDERS_UPDATED", "callbackUrl": CRM_HOOK, "format": "JSON"});
    let (status, body) = emulator.http(
        "POST",
        "/_emulator/shopify/webhookSubscriptions",
        Some(&unowned.to_string()),
    );
    assert_eq!(status, 200, "{body}");
    let ws = Workspace::new(&stack());

    // The first apply creates the token's secret; the subscriptions wait for its value.
    let first = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(
        first
            .stderr
            .contains("stackctl secret set shopify-admin-token"),
        "{}",
        first.stderr
    );
    assert!(
        !first.stdout.contains("shopify_webhook."),
        "{}",
        first.stdout
    );

    set_token(&emulator, TOKEN);
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(
        plan.stdout.contains("+ shopify_webhook.orders")
            && plan.stdout.contains("+ shopify_webhook.customers"),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains(TOKEN) && !plan.stderr.contains(TOKEN));
    let applied = ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(!applied.stdout.contains(TOKEN) && !applied.stderr.contains(TOKEN));
    let live = topics_and_urls(&emulator);
    assert_eq!(live.len(), 3, "{live:?}");
    let relay_url = live
        .iter()
        .find(|(topic, url)| topic == "CUSTOMERS_CREATE" && url.ends_with("/webhooks/shopify"))
        .map(|(_, url)| url.trim_end_matches("/webhooks/shopify").to_string())
        .unwrap_or_else(|| panic!("{live:?}"));
    assert!(relay_url.starts_with("https://"), "{relay_url}");
    assert!(live.contains(&("ORDERS_UPDATED".into(), CRM_HOOK.into())));
    assert!(live.contains(&(
        "ORDERS_UPDATED".into(),
        format!("{relay_url}/webhooks/shopify")
    )));

    let again = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
    assert!(again.stdout.starts_with("No changes."), "{}", again.stdout);

    // A new path is an update of the callback URL.
    ws.edit(
        "path = \"/webhooks/shopify\"\n\n[shopify_webhook.customers]",
        "path = \"/webhooks/orders\"\n\n[shopify_webhook.customers]",
    );
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(
        plan.stdout.contains("~ shopify_webhook.orders"),
        "{}",
        plan.stdout
    );
    assert!(plan.stdout.contains("callback_url"), "{}", plan.stdout);
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert!(topics_and_urls(&emulator).contains(&(
        "ORDERS_UPDATED".into(),
        format!("{relay_url}/webhooks/orders")
    )));
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);

    // A new topic cannot be updated in place: the old subscription goes, a new one comes.
    ws.edit(
        "topic = \"CUSTOMERS_CREATE\"",
        "topic = \"CUSTOMERS_UPDATE\"",
    );
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(
        plan.stdout.contains("+ shopify_webhook.customers")
            && plan.stdout.contains("- shopify_webhook.customers_create_"),
        "{}",
        plan.stdout
    );
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    let topics: Vec<String> = topics_and_urls(&emulator)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        topics,
        ["CUSTOMERS_UPDATE", "ORDERS_UPDATED", "ORDERS_UPDATED"],
        "{topics:?}"
    );

    // Removing the stanzas deletes this stack's subscriptions only.
    let text = std::fs::read_to_string(ws.file()).expect("stack.toml");
    let kept = text
        .split("\n\n")
        .filter(|s| !s.starts_with("[shopify_webhook."))
        .collect::<Vec<_>>()
        .join("\n\n");
    ws.write(&kept);
    let plan = ws.on(&emulator, &["plan"]).expect(0);
    assert!(!plan.stdout.contains("crm.example.com"), "{}", plan.stdout);
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    assert_eq!(
        topics_and_urls(&emulator),
        vec![("ORDERS_UPDATED".to_string(), CRM_HOOK.to_string())]
    );
    ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
}

#[test]
fn a_wrong_access_token_is_an_error_naming_its_secret() {
    let emulator = Emulator::start();
    seed_shop(&emulator, TOKEN);
    let ws = Workspace::new(&stack());
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    set_token(&emulator, "shpat_wrong");
    let plan = ws.on(&emulator, &["plan"]);
    assert_ne!(plan.code, 0, "{}", plan.stdout);
    assert!(
        plan.stderr.contains("secret.shopify-admin-token")
            && plan
                .stderr
                .contains("stackctl secret set shopify-admin-token")
            && plan.stderr.contains("Invalid API key or access token"),
        "{}",
        plan.stderr
    );
    assert!(!plan.stderr.contains("shpat_wrong"), "{}", plan.stderr);
}

#[test]
fn config_errors_name_the_line_and_the_fix() {
    let ws = Workspace::new(&stack().replace("\"ORDERS_UPDATED\"", "\"orders/updated\""));
    let run = ws.run(&["validate"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("stack.toml:17:9")
            && run.stderr.contains("ORDERS_UPDATED")
            && run.stderr.contains("WebhookSubscriptionTopic"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_throttled_list_waits_for_the_cost_bucket_then_succeeds() {
    let emulator = Emulator::start();
    // 110 points, 5 restored a second: a 100-subscription page (102 points) fits only after
    // the creates have drained the bucket for a few seconds.
    let body =
        json!({"shop": SHOP, "access_token": TOKEN, "maximum_available": 110, "restore_rate": 5});
    let (status, answer) =
        emulator.http("POST", "/_emulator/shopify/shops", Some(&body.to_string()));
    assert_eq!(status, 200, "{answer}");
    let ws = Workspace::new(&stack());
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    set_token(&emulator, TOKEN);
    ws.on(&emulator, &["apply", "--auto-approve"]).expect(0);
    emulator.clear_requests();
    let plan = ws.on(&emulator, &["plan", "--detailed-exitcode"]).expect(0);
    assert!(plan.stdout.starts_with("No changes."), "{}", plan.stdout);
    let calls = emulator
        .requests()
        .iter()
        .filter(|(_, path)| path.ends_with("/graphql.json"))
        .count();
    assert!(
        calls >= 2,
        "the throttled list was not asked again: {calls} call(s)"
    );
}

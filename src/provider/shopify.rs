//! The Shopify Admin GraphQL API (`POST https://{shop}/admin/api/{version}/graphql.json`, token in
//! `X-Shopify-Access-Token`): a small typed module for webhook subscriptions (list, create, update,
//! delete), with GraphQL `errors`, `userErrors`, THROTTLED (waits for the cost bucket to refill)
//! and 429/5xx retries. Arguments always travel as GraphQL variables.
//!
//! Where calls go: `STACKCTL_SHOPIFY_ENDPOINT` when set (it replaces `https://{shop}`); else,
//! under `--local` or `--endpoint URL`, the emulator's fake Shopify at `URL/shopify/{shop}`;
//! else the shop itself.

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::error::{ApiError, RetryObserver};
use super::retry::{Backoff, all_pages, retrying};
use super::secrets::SecretValue;
use super::{Cloud, Endpoint};
pub use crate::model::live::shopify::{PointsAt, WebhookSubscriptionRecord};

/// Replaces `https://{shop}` as the base of Admin API calls (a fake, a proxy).
pub const SHOPIFY_ENDPOINT_ENV: &str = "STACKCTL_SHOPIFY_ENDPOINT";

/// Subscriptions asked for per page (the API allows up to 250).
const PAGE_SIZE: u32 = 100;

/// The fields stackctl reads of a subscription, in every query that returns one.
const SUBSCRIPTION_FIELDS: &str = "id topic format apiVersion { handle } endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } }";

/// Where a shop's Admin API is served for `endpoint`: see the module notes.
pub fn admin_base(endpoint: &Endpoint, shop: &str) -> String {
    if let Ok(url) = std::env::var(SHOPIFY_ENDPOINT_ENV)
        && !url.trim().is_empty()
    {
        return url.trim().trim_end_matches('/').to_string();
    }
    match endpoint.url() {
        Some(url) => format!("{}/shopify/{shop}", url.trim_end_matches('/')),
        None => format!("https://{shop}"),
    }
}

/// One shop's Admin API with its access token.
#[derive(Clone)]
pub struct ShopifyAdmin {
    http: reqwest::Client,
    base: String,
    shop: String,
    token: SecretValue,
    /// `secret.NAME`: where the token comes from, for messages.
    token_source: String,
    backoff: Backoff,
}

/// A webhook subscription as stackctl writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInput<'a> {
    pub callback_url: &'a str,
    pub format: &'a str,
}

#[derive(Deserialize)]
struct GraphqlAnswer {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    errors: Option<Vec<GraphqlError>>,
    #[serde(default)]
    extensions: Option<Extensions>,
}

#[derive(Deserialize)]
struct GraphqlError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    extensions: Option<ErrorExtensions>,
}

#[derive(Deserialize)]
struct ErrorExtensions {
    #[serde(default)]
    code: Option<String>,
}

#[derive(Deserialize)]
struct Extensions {
    #[serde(default)]
    cost: Option<QueryCost>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryCost {
    #[serde(default)]
    requested_query_cost: Option<f64>,
    #[serde(default)]
    throttle_status: Option<ThrottleStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThrottleStatus {
    #[serde(default)]
    currently_available: f64,
    #[serde(default)]
    restore_rate: f64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionWire {
    id: String,
    topic: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    api_version: Option<ApiVersionWire>,
    #[serde(default)]
    endpoint: Option<EndpointWire>,
}

#[derive(Deserialize)]
struct ApiVersionWire {
    #[serde(default)]
    handle: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndpointWire {
    #[serde(default)]
    callback_url: Option<String>,
}

impl From<SubscriptionWire> for WebhookSubscriptionRecord {
    fn from(wire: SubscriptionWire) -> Self {
        Self {
            id: wire.id,
            topic: wire.topic,
            callback_url: wire.endpoint.and_then(|e| e.callback_url),
            format: wire.format,
            api_version: wire.api_version.map(|v| v.handle).unwrap_or_default(),
            points_at: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connection {
    nodes: Vec<SubscriptionWire>,
    page_info: PageInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    has_next_page: bool,
    #[serde(default)]
    end_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserError {
    #[serde(default)]
    field: Option<Vec<String>>,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionPayload {
    #[serde(default)]
    webhook_subscription: Option<SubscriptionWire>,
    #[serde(default)]
    user_errors: Vec<UserError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeletePayload {
    #[serde(default)]
    user_errors: Vec<UserError>,
}

impl Cloud {
    /// The Admin API of `shop`, called with `token` (read from `token_source`, `secret.NAME`).
    pub fn shopify_admin(
        &self,
        shop: &str,
        token: SecretValue,
        token_source: &str,
    ) -> ShopifyAdmin {
        ShopifyAdmin {
            http: self.shopify_http.clone(),
            base: admin_base(&self.endpoint, shop),
            shop: shop.to_string(),
            token,
            token_source: token_source.to_string(),
            backoff: self.backoff,
        }
    }
}

impl ShopifyAdmin {
    /// Every webhook subscription of the shop (`webhookSubscriptions`, 100 a page).
    pub async fn list_webhook_subscriptions(
        &self,
        version: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<WebhookSubscriptionRecord>, ApiError> {
        let query = format!(
            "query StackctlWebhookSubscriptions($first: Int!, $after: String) {{ webhookSubscriptions(first: $first, after: $after) {{ nodes {{ {SUBSCRIPTION_FIELDS} }} pageInfo {{ hasNextPage endCursor }} }} }}"
        );
        let query = &query;
        all_pages(|cursor| async move {
            let after = (!cursor.is_empty()).then_some(cursor);
            let variables = json!({"first": PAGE_SIZE, "after": after});
            let data: Value = self
                .graphql(
                    "shopify.webhookSubscriptions",
                    &self.shop,
                    version,
                    query,
                    variables,
                    observer,
                )
                .await?;
            let connection: Connection = decode(
                "shopify.webhookSubscriptions",
                &self.shop,
                &data["webhookSubscriptions"],
            )?;
            let next = match connection.page_info {
                PageInfo {
                    has_next_page: true,
                    end_cursor: Some(cursor),
                } => cursor,
                _ => String::new(),
            };
            let records = connection.nodes.into_iter().map(Into::into).collect();
            Ok((records, next))
        })
        .await
    }

    /// `webhookSubscriptionCreate`; `resource` names the declared subscription in errors.
    pub async fn create_webhook_subscription(
        &self,
        version: &str,
        resource: &str,
        topic: &str,
        input: &SubscriptionInput<'_>,
        observer: &dyn RetryObserver,
    ) -> Result<WebhookSubscriptionRecord, ApiError> {
        const CALL: &str = "shopify.webhookSubscriptionCreate";
        let query = format!(
            "mutation StackctlWebhookSubscriptionCreate($topic: WebhookSubscriptionTopic!, $webhookSubscription: WebhookSubscriptionInput!) {{ webhookSubscriptionCreate(topic: $topic, webhookSubscription: $webhookSubscription) {{ webhookSubscription {{ {SUBSCRIPTION_FIELDS} }} userErrors {{ field message }} }} }}"
        );
        let variables = json!({"topic": topic, "webhookSubscription": input_json(input)});
        let data = self
            .graphql(CALL, resource, version, &query, variables, observer)
            .await?;
        let payload: SubscriptionPayload =
            decode(CALL, resource, &data["webhookSubscriptionCreate"])?;
        refused(CALL, resource, &payload.user_errors)?;
        made(CALL, resource, payload.webhook_subscription)
    }

    /// `webhookSubscriptionUpdate` of subscription `id` (its topic cannot change).
    pub async fn update_webhook_subscription(
        &self,
        version: &str,
        resource: &str,
        id: &str,
        input: &SubscriptionInput<'_>,
        observer: &dyn RetryObserver,
    ) -> Result<WebhookSubscriptionRecord, ApiError> {
        const CALL: &str = "shopify.webhookSubscriptionUpdate";
        let query = format!(
            "mutation StackctlWebhookSubscriptionUpdate($id: ID!, $webhookSubscription: WebhookSubscriptionInput!) {{ webhookSubscriptionUpdate(id: $id, webhookSubscription: $webhookSubscription) {{ webhookSubscription {{ {SUBSCRIPTION_FIELDS} }} userErrors {{ field message }} }} }}"
        );
        let variables = json!({"id": id, "webhookSubscription": input_json(input)});
        let data = self
            .graphql(CALL, resource, version, &query, variables, observer)
            .await?;
        let payload: SubscriptionPayload =
            decode(CALL, resource, &data["webhookSubscriptionUpdate"])?;
        refused(CALL, resource, &payload.user_errors)?;
        made(CALL, resource, payload.webhook_subscription)
    }

    /// `webhookSubscriptionDelete`; a subscription already gone counts as deleted.
    pub async fn delete_webhook_subscription(
        &self,
        version: &str,
        id: &str,
        observer: &dyn RetryObserver,
    ) -> Result<(), ApiError> {
        const CALL: &str = "shopify.webhookSubscriptionDelete";
        let query = "mutation StackctlWebhookSubscriptionDelete($id: ID!) { webhookSubscriptionDelete(id: $id) { deletedWebhookSubscriptionId userErrors { field message } } }";
        let data = self
            .graphql(CALL, id, version, query, json!({"id": id}), observer)
            .await?;
        let payload: DeletePayload = decode(CALL, id, &data["webhookSubscriptionDelete"])?;
        let gone = payload
            .user_errors
            .iter()
            .all(|e| e.message.contains("does not exist"));
        if gone {
            return Ok(());
        }
        refused(CALL, id, &payload.user_errors)
    }

    /// One GraphQL call: transport failures, 429 and 5xx retried with `backoff`; a THROTTLED
    /// answer waits for the bucket to hold the query's cost (from `extensions.cost`) and asks
    /// again; any other GraphQL error is an [`ApiError`] naming the call. Answers `data`.
    async fn graphql(
        &self,
        call: &'static str,
        resource: &str,
        version: &str,
        query: &str,
        variables: Value,
        observer: &dyn RetryObserver,
    ) -> Result<Value, ApiError> {
        let url = format!("{}/admin/api/{version}/graphql.json", self.base);
        let body = json!({"query": query, "variables": variables});
        let mut throttled = 0;
        loop {
            let answer: GraphqlAnswer = retrying(self.backoff, observer, || {
                self.post(call, resource, &url, &body)
            })
            .await?;
            let errors = answer.errors.unwrap_or_default();
            if errors.is_empty() {
                return answer.data.filter(|d| !d.is_null()).ok_or_else(|| {
                    ApiError::new(call, resource, Some(200), None, "the answer has no data")
                });
            }
            let is_throttled = errors.iter().any(|e| {
                e.extensions.as_ref().and_then(|x| x.code.as_deref()) == Some("THROTTLED")
            });
            if is_throttled && throttled + 1 < self.backoff.max_attempts {
                throttled += 1;
                let wait = refill_wait(answer.extensions.as_ref());
                observer.retrying(
                    throttled + 1,
                    wait,
                    "THROTTLED: waiting for the cost bucket",
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
            let code = if is_throttled {
                "THROTTLED"
            } else {
                "GRAPHQL_ERROR"
            };
            let mut error = ApiError::new(
                call,
                resource,
                Some(200),
                Some(code.into()),
                messages.join("; "),
            );
            error.attempts = throttled + 1;
            return Err(error);
        }
    }

    /// One POST; a non-2xx answer is an [`ApiError`] (401: the token was refused, naming its
    /// secret and the fix).
    async fn post(
        &self,
        call: &'static str,
        resource: &str,
        url: &str,
        body: &Value,
    ) -> Result<GraphqlAnswer, ApiError> {
        let response = self
            .http
            .post(url)
            .header("X-Shopify-Access-Token", self.token.expose())
            .json(body)
            .send()
            .await
            .map_err(|e| ApiError::new(call, resource, None, None, e.to_string()))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        match status {
            200..=299 => serde_json::from_str(&text).map_err(|e| {
                ApiError::new(
                    call,
                    resource,
                    Some(status),
                    None,
                    format!("unexpected response: {e}"),
                )
            }),
            401 | 403 => {
                let name = self.token_source.trim_start_matches("secret.");
                Err(ApiError::new(
                    call,
                    resource,
                    Some(status),
                    Some("SHOPIFY_ACCESS_DENIED".into()),
                    format!(
                        "{} refused the access token in {} ({}): store the shop's Admin API access token (with the read_webhooks/write_webhooks scopes your topics need) with `stackctl secret set {name}`, then plan again",
                        self.shop,
                        self.token_source,
                        shopify_error_text(&text)
                    ),
                ))
            }
            _ => Err(ApiError::new(
                call,
                resource,
                Some(status),
                None,
                shopify_error_text(&text),
            )),
        }
    }
}

/// The subscription input variables (`WebhookSubscriptionInput`).
fn input_json(input: &SubscriptionInput) -> Value {
    json!({"callbackUrl": input.callback_url, "format": input.format})
}

/// How long until the bucket holds the throttled query's cost; a second when the answer does
/// not say.
fn refill_wait(extensions: Option<&Extensions>) -> Duration {
    let cost = extensions.and_then(|x| x.cost.as_ref());
    let seconds = cost
        .and_then(|c| {
            let status = c.throttle_status.as_ref()?;
            let needed = c.requested_query_cost? - status.currently_available;
            (status.restore_rate > 0.0).then(|| needed / status.restore_rate)
        })
        .unwrap_or(1.0);
    Duration::from_secs_f64(seconds.clamp(0.05, 60.0))
}

/// Shopify's error bodies: `{"errors": "text"}` or `{"errors": [{"message": ...}]}`.
fn shopify_error_text(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(map)) => match map.get("errors") {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i["message"].as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
                .join("; "),
            Some(other) => other.to_string(),
            None => body.to_string(),
        },
        _ => body.chars().take(300).collect(),
    }
}

fn decode<T: DeserializeOwned>(
    call: &'static str,
    resource: &str,
    value: &Value,
) -> Result<T, ApiError> {
    T::deserialize(value).map_err(|e| {
        ApiError::new(
            call,
            resource,
            Some(200),
            None,
            format!("unexpected response: {e}"),
        )
    })
}

/// `userErrors`: Shopify refused the mutation; the error says why and what to do.
fn refused(call: &'static str, resource: &str, errors: &[UserError]) -> Result<(), ApiError> {
    if errors.is_empty() {
        return Ok(());
    }
    let reasons: Vec<String> = errors
        .iter()
        .map(|e| match &e.field {
            Some(field) if !field.is_empty() => format!("{}: {}", field.join("."), e.message),
            _ => e.message.clone(),
        })
        .collect();
    Err(ApiError::new(
        call,
        resource,
        Some(200),
        Some("USER_ERRORS".into()),
        format!(
            "Shopify refused it: {}; fix the [shopify_webhook] stanza (topic, target, path, format), or remove the conflicting subscription in the shop's admin, then plan again",
            reasons.join("; ")
        ),
    ))
}

fn made(
    call: &'static str,
    resource: &str,
    subscription: Option<SubscriptionWire>,
) -> Result<WebhookSubscriptionRecord, ApiError> {
    subscription.map(Into::into).ok_or_else(|| {
        ApiError::new(
            call,
            resource,
            Some(200),
            None,
            "the answer has no webhookSubscription",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttled_wait_is_the_missing_cost_over_the_restore_rate() {
        let extensions: Extensions = serde_json::from_value(json!({"cost": {
            "requestedQueryCost": 102, "actualQueryCost": null,
            "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 2, "restoreRate": 50.0}
        }}))
        .unwrap();
        assert_eq!(refill_wait(Some(&extensions)), Duration::from_secs(2));
        assert_eq!(refill_wait(None), Duration::from_secs(1));
    }

    #[test]
    fn shopify_error_bodies_read_as_text() {
        assert_eq!(
            shopify_error_text(
                r#"{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}"#
            ),
            "[API] Invalid API key or access token (unrecognized login or wrong password)"
        );
        assert_eq!(
            shopify_error_text(r#"{"errors":[{"message":"a"},{"message":"b"}]}"#),
            "a; b"
        );
    }

    #[test]
    fn calls_go_to_the_shop_or_the_emulator_fake() {
        let local = Endpoint::Local {
            url: "http://127.0.0.1:9/".into(),
        };
        assert_eq!(
            admin_base(&local, "acme.myshopify.com"),
            "http://127.0.0.1:9/shopify/acme.myshopify.com"
        );
        assert_eq!(
            admin_base(&Endpoint::Google, "acme.myshopify.com"),
            "https://acme.myshopify.com"
        );
    }
}

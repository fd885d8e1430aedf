//! A Shopify webhook subscription as the Admin GraphQL API lists it.

use serde::{Deserialize, Serialize};

/// One webhook subscription of a shop, with what stackctl learned of its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSubscriptionRecord {
    /// `gid://shopify/WebhookSubscription/123`
    pub id: String,
    /// GraphQL `WebhookSubscriptionTopic`, e.g. `ORDERS_UPDATED`.
    pub topic: String,
    /// Where an HTTPS subscription delivers; `None` for Pub/Sub or EventBridge endpoints.
    pub callback_url: Option<String>,
    /// `JSON` or `XML`.
    pub format: String,
    /// `apiVersion { handle }`: the Admin API version its webhooks are serialized with.
    pub api_version: String,
    /// The Cloud Run service its callback URL points at, when it points at one of the project's
    /// services: `(service id, that service's stackctl-stack label)`. Filled in by the inventory.
    #[serde(default)]
    pub points_at: Option<PointsAt>,
}

/// The service a subscription delivers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsAt {
    /// The Cloud Run service id (`relay`).
    pub service: String,
    /// The stack that owns the service (its `stackctl-stack` label), if any.
    pub stack: Option<String>,
}

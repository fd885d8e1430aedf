//! Shopify's webhook header names and the deterministic id a delivery gets in Cloud Tasks and
//! Firestore.

use sha2::{Digest, Sha256};

pub const HMAC: &str = "x-shopify-hmac-sha256";
pub const TOPIC: &str = "x-shopify-topic";
pub const SUB_TOPIC: &str = "x-shopify-sub-topic";
pub const SHOP_DOMAIN: &str = "x-shopify-shop-domain";
pub const API_VERSION: &str = "x-shopify-api-version";
pub const WEBHOOK_ID: &str = "x-shopify-webhook-id";
pub const EVENT_ID: &str = "x-shopify-event-id";
pub const TRIGGERED_AT: &str = "x-shopify-triggered-at";
pub const NAME: &str = "x-shopify-name";

/// The headers the relay copies onto the task, when the delivery has them.
pub const FORWARDED: [&str; 8] = [
    TOPIC,
    SUB_TOPIC,
    SHOP_DOMAIN,
    API_VERSION,
    WEBHOOK_ID,
    EVENT_ID,
    TRIGGERED_AT,
    NAME,
];

/// The task's reference to a body stored in Firestore (`webhook_bodies/ID`) instead of inline.
pub const BODY_REFERENCE: &str = "x-stackctl-body-ref";
/// Where bodies too large for a task are stored, by delivery id.
pub const BODIES_COLLECTION: &str = "webhook_bodies";

/// The id of one webhook delivery, stable across Shopify's retries: `shopify-` and the SHA-256
/// of `X-Shopify-Webhook-Id` in hex. It fits Cloud Tasks' task id charset (`[A-Za-z0-9_-]`, at
/// most 500) and Firestore's document ids, whatever the header holds.
pub fn delivery_id(webhook_id: &str) -> String {
    format!(
        "shopify-{}",
        hex::encode(Sha256::digest(webhook_id.as_bytes()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_id_is_stable_and_fits_task_and_document_ids() {
        let id = delivery_id("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043/../x y");
        assert_eq!(
            id,
            delivery_id("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043/../x y")
        );
        assert_ne!(id, delivery_id("another"));
        assert_eq!(id.len(), "shopify-".len() + 64);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
}

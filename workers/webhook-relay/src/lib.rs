//! webhook-relay: the public Cloud Run service Shopify delivers webhooks to. It checks each
//! delivery's HMAC and headers and enqueues it once on a Cloud Tasks queue for the task-worker.

pub mod relay;
pub mod signature;

use std::sync::Arc;

use google_cloud_tasks_v2::client::CloudTasks;
use worker_kit::cloud::{self, Cloud, env, env_list};
use worker_kit::log::Logger;

pub use relay::{Relay, router};
pub use signature::ClientSecrets;

/// The service's name in log lines.
pub const SERVICE: &str = "webhook-relay";

/// The queue's full name from `TASKS_QUEUE` (a full name, or an id with `TASKS_LOCATION`).
pub fn queue_name(queue: &str, location: Option<&str>, project: &str) -> Result<String, String> {
    if queue.starts_with("projects/") {
        return Ok(queue.to_string());
    }
    let location = location.ok_or_else(|| {
        format!("TASKS_QUEUE={queue:?} is a queue id: set TASKS_LOCATION (e.g. us-central1) too, or give the full projects/P/locations/L/queues/Q")
    })?;
    Ok(format!(
        "projects/{project}/locations/{location}/queues/{queue}"
    ))
}

/// A Cloud Tasks client: Google's endpoint with ADC, or `STACKCTL_API_ENDPOINT`.
pub async fn tasks_client(cloud: &Cloud) -> Result<CloudTasks, String> {
    let mut builder =
        CloudTasks::builder().with_credentials(cloud.credentials().map_err(|e| e.to_string())?);
    if let Some(endpoint) = &cloud.api_endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    builder
        .build()
        .await
        .map_err(|e| format!("cannot build the Cloud Tasks client: {e}"))
}

/// The relay as configured by the environment (see README.md).
pub async fn from_env() -> Result<Arc<Relay>, String> {
    let http = cloud::http_client();
    let cloud = Cloud::from_env(&http).await.map_err(|e| e.to_string())?;
    let current = env("SHOPIFY_CLIENT_SECRET")
        .ok_or("SHOPIFY_CLIENT_SECRET is unset: the relay cannot check signatures")?;
    let previous = env("SHOPIFY_CLIENT_SECRET_PREVIOUS").map(String::into_bytes);
    let queue = env("TASKS_QUEUE").ok_or("TASKS_QUEUE is unset")?;
    let queue = queue_name(&queue, env("TASKS_LOCATION").as_deref(), &cloud.project)?;
    Ok(Arc::new(Relay {
        secrets: ClientSecrets::new(current, previous),
        allowed_shops: env_list("SHOPIFY_SHOP_DOMAINS")
            .into_iter()
            .map(|d| d.to_ascii_lowercase())
            .collect(),
        queue,
        tasks: tasks_client(&cloud).await?,
        firestore: cloud.firestore(http).map_err(|e| e.to_string())?,
        logger: Logger::new(cloud.project.clone(), SERVICE),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_id_needs_a_location_and_a_full_name_does_not() {
        assert_eq!(
            queue_name("webhooks", Some("us-central1"), "acme").unwrap(),
            "projects/acme/locations/us-central1/queues/webhooks"
        );
        assert!(queue_name("webhooks", None, "acme").is_err());
        assert_eq!(
            queue_name("projects/a/locations/l/queues/q", None, "acme").unwrap(),
            "projects/a/locations/l/queues/q"
        );
    }
}

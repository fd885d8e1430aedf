//! Cloud Monitoring v1 dashboards through a small REST module (`google-cloud-monitoring-v3` has
//! no v1 dashboards): list, create, replace by etag, delete. Dashboards carry their JSON as is.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use super::Cloud;
use super::error::{ApiError, RetryObserver};
use super::rest::ListCall;
use super::retry::retrying;

pub const GOOGLE_MONITORING: &str = "https://monitoring.googleapis.com";

/// A dashboard as the API reports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DashboardRecord {
    /// `projects/P/dashboards/ID` (server-assigned)
    pub name: String,
    pub display_name: String,
    pub etag: String,
    pub labels: BTreeMap<String, String>,
    /// The whole dashboard JSON as returned (with name and etag).
    pub body: Value,
}

pub(crate) fn record(body: Value) -> DashboardRecord {
    let text = |key: &str| body[key].as_str().unwrap_or_default().to_string();
    DashboardRecord {
        name: text("name"),
        display_name: text("displayName"),
        etag: text("etag"),
        labels: body["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
        body,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default)]
    dashboards: Vec<Value>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl Cloud {
    pub async fn list_dashboards(
        &self,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<DashboardRecord>, ApiError> {
        let parent = format!("projects/{}", self.project);
        let path = format!("/v1/{parent}/dashboards");
        let list = ListCall {
            call: "monitoring.dashboards.list",
            resource: &parent,
            path: &path,
            query: &[],
        };
        self.dashboards
            .list_all(list, self.backoff, observer, |page: Page| {
                (
                    page.dashboards.into_iter().map(record).collect(),
                    page.next_page_token.filter(|t| !t.is_empty()),
                )
            })
            .await
    }

    /// Creates `body`; a retry first looks for what a failed attempt may have made (the same
    /// labels), so retries never make a duplicate.
    pub async fn create_dashboard(
        &self,
        body: &Value,
        observer: &dyn RetryObserver,
    ) -> Result<DashboardRecord, ApiError> {
        let parent = format!("projects/{}", self.project);
        let path = format!("/v1/{parent}/dashboards");
        let labels = record(body.clone()).labels;
        let attempts = std::sync::atomic::AtomicU32::new(0);
        retrying(self.backoff, observer, || async {
            if attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) > 0
                && let Some(made) = self
                    .list_dashboards(&super::Silent)
                    .await?
                    .into_iter()
                    .find(|d| d.labels == labels)
            {
                return Ok(made);
            }
            self.dashboards
                .json::<Value>(
                    "monitoring.dashboards.create",
                    &parent,
                    self.dashboards.request(Method::POST, &path).json(body),
                )
                .await
                .map(record)
        })
        .await
    }

    /// Replaces the dashboard `name` with `body`, guarded by the `etag` it was read with.
    pub async fn replace_dashboard(
        &self,
        name: &str,
        etag: &str,
        body: &Value,
        observer: &dyn RetryObserver,
    ) -> Result<DashboardRecord, ApiError> {
        let path = format!("/v1/{name}");
        let mut body = body.clone();
        body["name"] = Value::String(name.to_string());
        if !etag.is_empty() {
            body["etag"] = Value::String(etag.to_string());
        }
        retrying(self.backoff, observer, || async {
            self.dashboards
                .json::<Value>(
                    "monitoring.dashboards.patch",
                    name,
                    self.dashboards.request(Method::PATCH, &path).json(&body),
                )
                .await
                .map(record)
        })
        .await
    }

    pub async fn delete_dashboard(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<(), ApiError> {
        let path = format!("/v1/{name}");
        self.dashboards
            .delete(
                "monitoring.dashboards.delete",
                name,
                &path,
                self.backoff,
                observer,
            )
            .await
    }
}

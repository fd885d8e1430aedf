//! Cloud Monitoring v3 uptime check configs through `google-cloud-monitoring-v3`'s
//! `UptimeCheckService`: HTTPS checks of an `uptime_url` resource, owned by user label.

use std::collections::BTreeMap;
use std::time::Duration;

use google_cloud_api::model::MonitoredResource;
use google_cloud_monitoring_v3::model::{
    UptimeCheckConfig, UptimeCheckRegion,
    uptime_check_config::{
        HttpCheck,
        http_check::{ResponseStatusCode, response_status_code::StatusClass},
    },
};
use google_cloud_wkt as wkt;

use super::Cloud;
use super::error::{ApiError, NotFoundAsAnswer, RetryObserver};
use super::retry::{all_pages, retrying};

pub use crate::model::live::monitoring::UptimeRecord;

/// What stackctl writes on an uptime check.
#[derive(Debug, Clone, PartialEq)]
pub struct UptimeWrite {
    pub display_name: String,
    pub host: String,
    pub path: String,
    pub period: Duration,
    pub timeout: Duration,
    pub regions: Vec<String>,
    /// `STATUS_CLASS_2XX`, ...
    pub status_class: String,
    pub user_labels: BTreeMap<String, String>,
}

/// The fields an update sends (`updateMask`); the monitored resource cannot change.
const UPTIME_FIELDS: [&str; 6] = [
    "display_name",
    "http_check",
    "period",
    "timeout",
    "selected_regions",
    "user_labels",
];

fn seconds(d: Option<&wkt::Duration>) -> Duration {
    d.and_then(|d| Duration::try_from(*d).ok())
        .unwrap_or(Duration::ZERO)
}

fn uptime_from_api(u: UptimeCheckConfig) -> UptimeRecord {
    let host = u
        .monitored_resource()
        .and_then(|r| r.labels.get("host").cloned())
        .unwrap_or_default();
    let http = u.http_check().cloned().unwrap_or_default();
    let mut regions: Vec<String> = u
        .selected_regions
        .iter()
        .filter_map(|r| r.name().map(String::from))
        .collect();
    regions.sort();
    let status_classes = http
        .accepted_response_status_codes
        .iter()
        .filter_map(|c| c.status_class().and_then(|c| c.name()).map(String::from))
        .collect();
    UptimeRecord {
        name: u.name.clone(),
        display_name: u.display_name.clone(),
        host,
        path: http.path.clone(),
        use_ssl: http.use_ssl,
        port: http.port,
        period: seconds(u.period.as_ref()),
        timeout: seconds(u.timeout.as_ref()),
        regions,
        status_classes,
        user_labels: u.user_labels.into_iter().collect(),
    }
}

impl UptimeWrite {
    fn to_api(&self, project: &str, name: &str) -> UptimeCheckConfig {
        let http = HttpCheck::new()
            .set_use_ssl(true)
            .set_validate_ssl(true)
            .set_port(443)
            .set_path(self.path.clone())
            .set_accepted_response_status_codes([ResponseStatusCode::new()
                .set_status_class(StatusClass::from(self.status_class.as_str()))]);
        let resource = MonitoredResource::new().set_type("uptime_url").set_labels([
            ("host".to_string(), self.host.clone()),
            ("project_id".to_string(), project.to_string()),
        ]);
        UptimeCheckConfig::new()
            .set_name(name)
            .set_display_name(self.display_name.clone())
            .set_monitored_resource(resource)
            .set_http_check(http)
            .set_or_clear_period(wkt::Duration::try_from(self.period).ok())
            .set_or_clear_timeout(wkt::Duration::try_from(self.timeout).ok())
            .set_selected_regions(
                self.regions
                    .iter()
                    .map(|r| UptimeCheckRegion::from(r.as_str())),
            )
            .set_user_labels(self.user_labels.clone())
    }
}

impl Cloud {
    pub async fn list_uptime_checks(
        &self,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<UptimeRecord>, ApiError> {
        let parent = format!("projects/{}", self.project);
        all_pages(|token| {
            let parent = parent.clone();
            async move {
                let page = retrying(self.backoff, observer, || async {
                    self.uptime
                        .list_uptime_check_configs()
                        .set_parent(&parent)
                        .set_page_token(&token)
                        .send()
                        .await
                        .map_err(|e| {
                            ApiError::from_gax("monitoring.uptimeCheckConfigs.list", &parent, &e)
                        })
                })
                .await?;
                let items = page.uptime_check_configs.into_iter().map(uptime_from_api);
                Ok((items.collect(), page.next_page_token))
            }
        })
        .await
    }

    pub async fn create_uptime_check(
        &self,
        write: &UptimeWrite,
        observer: &dyn RetryObserver,
    ) -> Result<UptimeRecord, ApiError> {
        let parent = format!("projects/{}", self.project);
        retrying(self.backoff, observer, || async {
            self.uptime
                .create_uptime_check_config()
                .set_parent(&parent)
                .set_uptime_check_config(write.to_api(&self.project, ""))
                .send()
                .await
                .map(uptime_from_api)
                .map_err(|e| {
                    ApiError::from_gax("monitoring.uptimeCheckConfigs.create", &parent, &e)
                })
        })
        .await
    }

    pub async fn update_uptime_check(
        &self,
        name: &str,
        write: &UptimeWrite,
        observer: &dyn RetryObserver,
    ) -> Result<UptimeRecord, ApiError> {
        self.patch_uptime_check(write.to_api(&self.project, name), &UPTIME_FIELDS, observer)
            .await
    }

    /// Sets the check's user labels to `user_labels` (every label to keep); nothing else changes.
    pub async fn label_uptime_check(
        &self,
        name: &str,
        user_labels: &BTreeMap<String, String>,
        observer: &dyn RetryObserver,
    ) -> Result<UptimeRecord, ApiError> {
        let config = UptimeCheckConfig::new()
            .set_name(name)
            .set_user_labels(user_labels.clone());
        self.patch_uptime_check(config, &["user_labels"], observer)
            .await
    }

    async fn patch_uptime_check(
        &self,
        config: UptimeCheckConfig,
        fields: &[&str],
        observer: &dyn RetryObserver,
    ) -> Result<UptimeRecord, ApiError> {
        let name = config.name.clone();
        let name = name.as_str();
        let mask = wkt::FieldMask::default().set_paths(fields.iter().map(|f| f.to_string()));
        retrying(self.backoff, observer, || async {
            self.uptime
                .update_uptime_check_config()
                .set_uptime_check_config(config.clone())
                .set_update_mask(mask.clone())
                .send()
                .await
                .map(uptime_from_api)
                .map_err(|e| ApiError::from_gax("monitoring.uptimeCheckConfigs.patch", name, &e))
        })
        .await
    }

    pub async fn delete_uptime_check(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<(), ApiError> {
        let done = retrying(self.backoff, observer, || async {
            self.uptime
                .delete_uptime_check_config()
                .set_name(name)
                .send()
                .await
                .map_err(|e| ApiError::from_gax("monitoring.uptimeCheckConfigs.delete", name, &e))
        })
        .await;
        done.not_found_as_done()
    }
}

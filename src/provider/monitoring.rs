//! Cloud Monitoring v3 notification channels and alert policies through `google-cloud-monitoring-v3`.
//! Alert policy writes are serialized per project, as the API asks.

use std::collections::BTreeMap;
use std::time::Duration;

use google_cloud_monitoring_v3::model::{
    self as gm, Aggregation, AlertPolicy, ComparisonType, NotificationChannel,
    aggregation::{Aligner, Reducer},
    alert_policy::{Condition, ConditionCombinerType, condition::MetricThreshold},
};
use google_cloud_wkt as wkt;
use serde::{Deserialize, Serialize};

use super::Cloud;
use super::error::{ApiError, NotFoundAsAnswer, RetryObserver};
use super::retry::{all_pages, retrying};
use super::secrets::SecretValue;

pub use crate::model::live::monitoring::{AlertRecord, ChannelRecord, ConditionRecord};

/// The labels Google treats as sensitive (write-only, returned masked): never read back, never
/// compared, never stored.
pub const SENSITIVE_LABELS: &[&str] = &["auth_token", "service_key", "password"];

/// What stackctl writes on a channel.
#[derive(Debug, Clone)]
pub struct ChannelWrite {
    pub kind: String,
    pub display_name: String,
    /// Non-sensitive labels.
    pub labels: BTreeMap<String, String>,
    /// The sensitive label and its value, read from Secret Manager just before the call.
    pub sensitive: Option<(String, SecretValue)>,
    pub user_labels: BTreeMap<String, String>,
}

fn channel_from_api(c: NotificationChannel) -> ChannelRecord {
    ChannelRecord {
        labels: c
            .labels
            .into_iter()
            .filter(|(k, _)| !SENSITIVE_LABELS.contains(&k.as_str()))
            .collect(),
        name: c.name,
        kind: c.r#type,
        display_name: c.display_name,
        user_labels: c.user_labels.into_iter().collect(),
    }
}

impl ChannelWrite {
    fn to_api(&self, name: &str) -> NotificationChannel {
        let sensitive = self
            .sensitive
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().to_string()));
        NotificationChannel::new()
            .set_name(name)
            .set_type(self.kind.clone())
            .set_display_name(self.display_name.clone())
            .set_labels(self.labels.clone().into_iter().chain(sensitive))
            .set_user_labels(self.user_labels.clone())
    }
}

/// What stackctl writes on an alert policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertWrite {
    pub display_name: String,
    pub user_labels: BTreeMap<String, String>,
    pub conditions: Vec<ConditionRecord>,
    pub channels: Vec<String>,
    /// Markdown sent with notifications.
    pub documentation: Option<String>,
    /// `CRITICAL`, `ERROR` or `WARNING`.
    pub severity: Option<String>,
}

fn duration_of(d: Option<&wkt::Duration>) -> Duration {
    d.and_then(|d| Duration::try_from(*d).ok())
        .unwrap_or(Duration::ZERO)
}

fn to_wkt(d: Duration) -> Option<wkt::Duration> {
    wkt::Duration::try_from(d).ok()
}

fn aggregation(
    aligner: &str,
    reducer: Option<&str>,
    group_by: &[String],
    period: Duration,
) -> Aggregation {
    Aggregation::new()
        .set_or_clear_alignment_period(to_wkt(period))
        .set_per_series_aligner(Aligner::from(aligner))
        .set_cross_series_reducer(Reducer::from(reducer.unwrap_or("REDUCE_NONE")))
        .set_group_by_fields(group_by.to_vec())
}

fn condition_from_api(c: Condition) -> Option<ConditionRecord> {
    let display_name = c.display_name.clone();
    let t = c.condition_threshold()?.clone();
    let agg = t.aggregations.first().cloned().unwrap_or_default();
    let reducer = agg
        .cross_series_reducer
        .name()
        .filter(|r| *r != "REDUCE_NONE")
        .map(String::from);
    Some(ConditionRecord {
        display_name,
        filter: t.filter.clone(),
        denominator_filter: (!t.denominator_filter.is_empty())
            .then(|| t.denominator_filter.clone()),
        comparison: t
            .comparison
            .name()
            .unwrap_or("COMPARISON_UNSPECIFIED")
            .to_string(),
        threshold: t.threshold_value,
        duration: duration_of(t.duration.as_ref()),
        aligner: agg
            .per_series_aligner
            .name()
            .unwrap_or("ALIGN_NONE")
            .to_string(),
        reducer,
        group_by: agg.group_by_fields.clone(),
        period: duration_of(agg.alignment_period.as_ref()),
    })
}

fn condition_to_api(c: &ConditionRecord) -> Condition {
    let agg = aggregation(&c.aligner, c.reducer.as_deref(), &c.group_by, c.period);
    let mut threshold = MetricThreshold::new()
        .set_filter(c.filter.clone())
        .set_aggregations([agg.clone()])
        .set_comparison(ComparisonType::from(c.comparison.as_str()))
        .set_threshold_value(c.threshold)
        .set_or_clear_duration(to_wkt(c.duration))
        .set_trigger(gm::alert_policy::condition::Trigger::new().set_count(1));
    if let Some(d) = &c.denominator_filter {
        threshold = threshold
            .set_denominator_filter(d.clone())
            .set_denominator_aggregations([agg]);
    }
    Condition::new()
        .set_display_name(c.display_name.clone())
        .set_condition_threshold(threshold)
}

fn alert_from_api(p: AlertPolicy) -> AlertRecord {
    AlertRecord {
        name: p.name,
        display_name: p.display_name,
        user_labels: p.user_labels.into_iter().collect(),
        enabled: p.enabled.unwrap_or(true),
        combiner: p
            .combiner
            .name()
            .unwrap_or("COMBINE_UNSPECIFIED")
            .to_string(),
        conditions: p.conditions.into_iter().map(condition_from_api).collect(),
        channels: p.notification_channels,
        documentation: p
            .documentation
            .map(|d| d.content)
            .filter(|content| !content.is_empty()),
        severity: p
            .severity
            .name()
            .filter(|s| *s != "SEVERITY_UNSPECIFIED")
            .map(String::from),
    }
}

impl AlertWrite {
    fn to_api(&self, name: &str) -> AlertPolicy {
        AlertPolicy::new()
            .set_name(name)
            .set_display_name(self.display_name.clone())
            .set_user_labels(self.user_labels.clone())
            .set_combiner(ConditionCombinerType::Or)
            .set_enabled(true)
            .set_conditions(self.conditions.iter().map(condition_to_api))
            .set_notification_channels(self.channels.clone())
            .set_or_clear_documentation(self.documentation.as_ref().map(|content| {
                gm::alert_policy::Documentation::new()
                    .set_content(content.clone())
                    .set_mime_type("text/markdown")
            }))
            .set_severity(gm::alert_policy::Severity::from(
                self.severity.as_deref().unwrap_or("SEVERITY_UNSPECIFIED"),
            ))
    }
}

/// The policy fields stackctl manages, as `updateMask` paths.
/// (Of the documentation, the content and its type: a subject line or links set in the console
/// stay as they are.)
const ALERT_FIELDS: [&str; 9] = [
    "display_name",
    "user_labels",
    "combiner",
    "enabled",
    "conditions",
    "notification_channels",
    "documentation.content",
    "documentation.mime_type",
    "severity",
];

const CHANNEL_FIELDS: [&str; 4] = ["type", "display_name", "labels", "user_labels"];

impl Cloud {
    fn monitoring_parent(&self) -> String {
        format!("projects/{}", self.project)
    }

    pub async fn list_channels(
        &self,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<ChannelRecord>, ApiError> {
        let parent = self.monitoring_parent();
        all_pages(|token| {
            let parent = parent.clone();
            async move {
                let page = retrying(self.backoff, observer, || async {
                    self.channels
                        .list_notification_channels()
                        .set_name(&parent)
                        .set_page_token(&token)
                        .send()
                        .await
                        .map_err(|e| {
                            ApiError::from_gax("monitoring.notificationChannels.list", &parent, &e)
                        })
                })
                .await?;
                let items = page.notification_channels.into_iter().map(channel_from_api);
                Ok((items.collect(), page.next_page_token))
            }
        })
        .await
    }

    pub async fn create_channel(
        &self,
        write: &ChannelWrite,
        observer: &dyn RetryObserver,
    ) -> Result<ChannelRecord, ApiError> {
        let parent = self.monitoring_parent();
        retrying(self.backoff, observer, || async {
            self.channels
                .create_notification_channel()
                .set_name(&parent)
                .set_notification_channel(write.to_api(""))
                .send()
                .await
                .map(channel_from_api)
                .map_err(|e| {
                    ApiError::from_gax("monitoring.notificationChannels.create", &parent, &e)
                })
        })
        .await
    }

    pub async fn update_channel(
        &self,
        name: &str,
        write: &ChannelWrite,
        observer: &dyn RetryObserver,
    ) -> Result<ChannelRecord, ApiError> {
        self.patch_channel(write.to_api(name), &CHANNEL_FIELDS, observer)
            .await
    }

    /// Sets the channel's user labels to `user_labels` (update mask `user_labels`: send every
    /// label to keep); nothing else about it changes.
    pub async fn label_channel(
        &self,
        name: &str,
        user_labels: &BTreeMap<String, String>,
        observer: &dyn RetryObserver,
    ) -> Result<ChannelRecord, ApiError> {
        let channel = NotificationChannel::new()
            .set_name(name)
            .set_user_labels(user_labels.clone());
        self.patch_channel(channel, &["user_labels"], observer)
            .await
    }

    /// One `notificationChannels.patch` of the masked `fields` of `channel`.
    async fn patch_channel(
        &self,
        channel: NotificationChannel,
        fields: &[&str],
        observer: &dyn RetryObserver,
    ) -> Result<ChannelRecord, ApiError> {
        let name = channel.name.clone();
        let name = name.as_str();
        let mask = wkt::FieldMask::default().set_paths(fields.iter().map(|f| f.to_string()));
        retrying(self.backoff, observer, || async {
            self.channels
                .update_notification_channel()
                .set_notification_channel(channel.clone())
                .set_update_mask(mask.clone())
                .send()
                .await
                .map(channel_from_api)
                .map_err(|e| ApiError::from_gax("monitoring.notificationChannels.patch", name, &e))
        })
        .await
    }

    /// Deletes a channel; a channel alert policies still use is refused by the API (no `force`).
    pub async fn delete_channel(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<(), ApiError> {
        let done = retrying(self.backoff, observer, || async {
            self.channels
                .delete_notification_channel()
                .set_name(name)
                .set_force(false)
                .send()
                .await
                .map_err(|e| ApiError::from_gax("monitoring.notificationChannels.delete", name, &e))
        })
        .await;
        done.not_found_as_done()
    }

    pub async fn list_alerts(
        &self,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<AlertRecord>, ApiError> {
        let parent = self.monitoring_parent();
        all_pages(|token| {
            let parent = parent.clone();
            async move {
                let page = retrying(self.backoff, observer, || async {
                    self.alerts
                        .list_alert_policies()
                        .set_name(&parent)
                        .set_page_token(&token)
                        .send()
                        .await
                        .map_err(|e| {
                            ApiError::from_gax("monitoring.alertPolicies.list", &parent, &e)
                        })
                })
                .await?;
                let items = page.alert_policies.into_iter().map(alert_from_api);
                Ok((items.collect(), page.next_page_token))
            }
        })
        .await
    }

    pub async fn create_alert(
        &self,
        write: &AlertWrite,
        observer: &dyn RetryObserver,
    ) -> Result<AlertRecord, ApiError> {
        let parent = self.monitoring_parent();
        let _serialized = self.alert_writes.lock().await;
        retrying(self.backoff, observer, || async {
            self.alerts
                .create_alert_policy()
                .set_name(&parent)
                .set_alert_policy(write.to_api(""))
                .send()
                .await
                .map(alert_from_api)
                .map_err(|e| ApiError::from_gax("monitoring.alertPolicies.create", &parent, &e))
        })
        .await
    }

    pub async fn update_alert(
        &self,
        name: &str,
        write: &AlertWrite,
        observer: &dyn RetryObserver,
    ) -> Result<AlertRecord, ApiError> {
        self.patch_alert(write.to_api(name), &ALERT_FIELDS, observer)
            .await
    }

    /// Sets the policy's user labels to `user_labels` (update mask `user_labels`: send every
    /// label to keep); nothing else about it changes.
    pub async fn label_alert(
        &self,
        name: &str,
        user_labels: &BTreeMap<String, String>,
        observer: &dyn RetryObserver,
    ) -> Result<AlertRecord, ApiError> {
        let policy = AlertPolicy::new()
            .set_name(name)
            .set_user_labels(user_labels.clone());
        self.patch_alert(policy, &["user_labels"], observer).await
    }

    /// One `alertPolicies.patch` of the masked `fields` of `policy`, serialized per project.
    async fn patch_alert(
        &self,
        policy: AlertPolicy,
        fields: &[&str],
        observer: &dyn RetryObserver,
    ) -> Result<AlertRecord, ApiError> {
        let name = policy.name.clone();
        let name = name.as_str();
        let mask = wkt::FieldMask::default().set_paths(fields.iter().map(|f| f.to_string()));
        let _serialized = self.alert_writes.lock().await;
        retrying(self.backoff, observer, || async {
            self.alerts
                .update_alert_policy()
                .set_alert_policy(policy.clone())
                .set_update_mask(mask.clone())
                .send()
                .await
                .map(alert_from_api)
                .map_err(|e| ApiError::from_gax("monitoring.alertPolicies.patch", name, &e))
        })
        .await
    }

    pub async fn delete_alert(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<(), ApiError> {
        let _serialized = self.alert_writes.lock().await;
        let done = retrying(self.backoff, observer, || async {
            self.alerts
                .delete_alert_policy()
                .set_name(name)
                .send()
                .await
                .map_err(|e| ApiError::from_gax("monitoring.alertPolicies.delete", name, &e))
        })
        .await;
        done.not_found_as_done()
    }
}

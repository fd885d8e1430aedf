//! Cloud Monitoring v3 `timeSeries.list` (the signals audit reads): a small typed REST client over
//! the same credentials and HTTP client as the Google client crates.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use google_cloud_auth::credentials::Credentials;
use serde::Deserialize;

use super::error::{ApiError, RetryObserver};
use super::retry::{Backoff, all_pages, retrying};

pub use crate::model::live::metrics::SeriesRecord;

const GOOGLE_MONITORING: &str = "https://monitoring.googleapis.com";
const CALL: &str = "monitoring.projects.timeSeries.list";

#[derive(Clone)]
pub struct MonitoringClient {
    rest: super::rest::RestClient,
}

/// How each series is aligned in `alignment_seconds` buckets ending at the window's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aligner {
    Sum,
    Mean,
    Max,
}

impl Aligner {
    fn as_str(self) -> &'static str {
        match self {
            Aligner::Sum => "ALIGN_SUM",
            Aligner::Mean => "ALIGN_MEAN",
            Aligner::Max => "ALIGN_MAX",
        }
    }
}

/// How aligned series are combined across the group-by labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reducer {
    Sum,
    Max,
}

impl Reducer {
    fn as_str(self) -> &'static str {
        match self {
            Reducer::Sum => "REDUCE_SUM",
            Reducer::Max => "REDUCE_MAX",
        }
    }
}

/// One aligned, reduced query.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesQuery {
    /// `metric.type = "..." AND resource.type = "..."`
    pub filter: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub alignment_seconds: u64,
    pub aligner: Aligner,
    pub reducer: Reducer,
    /// e.g. `resource.label.service_name`
    pub group_by: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ListResponse {
    time_series: Vec<WireSeries>,
    next_page_token: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireSeries {
    metric: WireLabels,
    resource: WireLabels,
    points: Vec<WirePoint>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireLabels {
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WirePoint {
    value: WireValue,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct WireValue {
    int64_value: Option<String>,
    double_value: Option<f64>,
}

impl WireValue {
    fn number(&self) -> f64 {
        self.int64_value
            .as_deref()
            .and_then(|v| v.parse::<f64>().ok())
            .or(self.double_value)
            .unwrap_or(0.0)
    }
}

impl MonitoringClient {
    pub fn new(endpoint: Option<&str>, credentials: Credentials) -> Result<Self, reqwest::Error> {
        Ok(Self {
            rest: super::rest::RestClient::new(endpoint, GOOGLE_MONITORING, credentials)?,
        })
    }

    async fn page(
        &self,
        project: &str,
        query: &SeriesQuery,
        token: &str,
    ) -> Result<ListResponse, ApiError> {
        let resource = format!("projects/{project}");
        let mut params: Vec<(&str, String)> = vec![
            ("filter", query.filter.clone()),
            (
                "interval.startTime",
                query
                    .start
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            (
                "interval.endTime",
                query.end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            (
                "aggregation.alignmentPeriod",
                format!("{}s", query.alignment_seconds),
            ),
            (
                "aggregation.perSeriesAligner",
                query.aligner.as_str().into(),
            ),
            (
                "aggregation.crossSeriesReducer",
                query.reducer.as_str().into(),
            ),
        ];
        for field in &query.group_by {
            params.push(("aggregation.groupByFields", field.clone()));
        }
        if !token.is_empty() {
            params.push(("pageToken", token.to_string()));
        }
        let request = self
            .rest
            .request(reqwest::Method::GET, &format!("/v3/{resource}/timeSeries"))
            .query(&params);
        self.rest.json(CALL, &resource, request).await
    }

    /// Every series the query returns, all pages, with retries on transient errors.
    pub async fn time_series(
        &self,
        project: &str,
        query: &SeriesQuery,
        backoff: Backoff,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<SeriesRecord>, ApiError> {
        all_pages(|token: String| async move {
            let page = retrying(backoff, observer, || self.page(project, query, &token)).await?;
            let series = page.time_series.into_iter().map(|s| SeriesRecord {
                metric_labels: s.metric.labels,
                resource_labels: s.resource.labels,
                values: s.points.iter().map(|p| p.value.number()).collect(),
            });
            Ok((series.collect(), page.next_page_token))
        })
        .await
    }
}

//! BigQuery v2 datasets and tables through a small typed REST module (like `storage.rs`): the
//! official crate cannot send `If-Match`, which stackctl's read-modify-write patches need. Table
//! IAM policies (`tables.getIamPolicy` / `tables.setIamPolicy`) go through here too, as the same
//! JSON `google.iam.v1.Policy` the other policy endpoints speak (`provider::iam` drives them).
//! `jobs.list` answers which tables finished jobs read (the audit's cold-table rule).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use google_cloud_iam_v1::model as iam;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::Cloud;
use super::error::{ApiError, NotFoundAsAnswer, RetryObserver};
use super::rest::ListCall;
use super::rest::int64_opt;
use super::retry::retrying;

pub use crate::model::live::bigquery::{
    DatasetRecord, FieldRecord, JobReadRecord, PartitionRecord, TableRecord, ViewRecord,
};

pub const GOOGLE_BIGQUERY: &str = "https://bigquery.googleapis.com";

fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

fn ms(d: Option<i64>) -> Option<Duration> {
    d.and_then(|v| u64::try_from(v).ok())
        .map(Duration::from_millis)
}

/// `int64` milliseconds as the API writes them (a JSON string).
fn ms_string(d: Option<Duration>) -> Option<String> {
    d.map(|d| d.as_millis().to_string())
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DatasetReference {
    project_id: String,
    dataset_id: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DatasetWire {
    dataset_reference: DatasetReference,
    #[serde(default)]
    location: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "int64_opt")]
    default_partition_expiration_ms: Option<i64>,
    #[serde(default, deserialize_with = "int64_opt")]
    default_table_expiration_ms: Option<i64>,
    #[serde(default)]
    etag: String,
}

impl From<DatasetWire> for DatasetRecord {
    fn from(w: DatasetWire) -> Self {
        Self {
            name: format!(
                "projects/{}/datasets/{}",
                w.dataset_reference.project_id, w.dataset_reference.dataset_id
            ),
            project: w.dataset_reference.project_id,
            dataset_id: w.dataset_reference.dataset_id,
            location: w.location,
            labels: w.labels,
            default_partition_expiration: ms(w.default_partition_expiration_ms),
            default_table_expiration: ms(w.default_table_expiration_ms),
            etag: w.etag,
        }
    }
}

/// What stackctl writes on a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetWrite {
    pub project: String,
    pub dataset_id: String,
    pub location: String,
    pub labels: BTreeMap<String, String>,
    pub default_partition_expiration: Option<Duration>,
    pub default_table_expiration: Option<Duration>,
}

impl DatasetWrite {
    fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "datasetReference": {"projectId": self.project, "datasetId": self.dataset_id},
            "location": self.location,
            "labels": self.labels,
        });
        if let Some(v) = ms_string(self.default_partition_expiration) {
            body["defaultPartitionExpirationMs"] = v.into();
        }
        if let Some(v) = ms_string(self.default_table_expiration) {
            body["defaultTableExpirationMs"] = v.into();
        }
        body
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct SchemaWire {
    #[serde(default)]
    fields: Vec<FieldRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartitionWire {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(default, deserialize_with = "int64_opt", skip_serializing)]
    expiration_ms: Option<i64>,
    #[serde(default, skip_serializing)]
    require_partition_filter: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct ClusteringWire {
    #[serde(default)]
    fields: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ViewWire {
    #[serde(default)]
    query: String,
    #[serde(default)]
    enable_refresh: Option<bool>,
    #[serde(default, deserialize_with = "int64_opt")]
    refresh_interval_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TableReference {
    project_id: String,
    dataset_id: String,
    table_id: String,
}

impl TableReference {
    /// `projects/P/datasets/D/tables/T` of the table itself: a partition (`T$20260101`) or
    /// snapshot (`T@1700000000000`) decorator is dropped.
    fn full_name(&self) -> String {
        let table = self
            .table_id
            .split(['$', '@'])
            .next()
            .unwrap_or(&self.table_id);
        format!(
            "projects/{}/datasets/{}/tables/{table}",
            self.project_id, self.dataset_id
        )
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TableWire {
    table_reference: TableReference,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    etag: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    schema: Option<SchemaWire>,
    #[serde(default)]
    time_partitioning: Option<PartitionWire>,
    #[serde(default)]
    clustering: Option<ClusteringWire>,
    #[serde(default)]
    require_partition_filter: Option<bool>,
    #[serde(default)]
    materialized_view: Option<ViewWire>,
    #[serde(default, deserialize_with = "int64_opt")]
    num_bytes: Option<i64>,
    #[serde(default, deserialize_with = "int64_opt")]
    num_long_term_bytes: Option<i64>,
    #[serde(default, deserialize_with = "int64_opt")]
    creation_time: Option<i64>,
}

impl From<TableWire> for TableRecord {
    fn from(w: TableWire) -> Self {
        let r = &w.table_reference;
        let name = r.full_name();
        let require = w
            .require_partition_filter
            .or(w
                .time_partitioning
                .as_ref()
                .and_then(|p| p.require_partition_filter))
            .unwrap_or(false);
        Self {
            name,
            dataset_id: r.dataset_id.clone(),
            table_id: r.table_id.clone(),
            kind: w.kind,
            etag: w.etag,
            labels: w.labels,
            columns: w.schema.map(|s| s.fields).unwrap_or_default(),
            partition: w.time_partitioning.map(|p| PartitionRecord {
                granularity: p.kind,
                field: p.field,
                expiration: ms(p.expiration_ms),
            }),
            cluster_by: w.clustering.map(|c| c.fields).unwrap_or_default(),
            require_partition_filter: require,
            view: w.materialized_view.map(|v| ViewRecord {
                query: v.query,
                refresh_interval: ms(v.refresh_interval_ms),
            }),
            num_bytes: w.num_bytes.and_then(|n| u64::try_from(n).ok()),
            long_term_bytes: w.num_long_term_bytes.and_then(|n| u64::try_from(n).ok()),
            created: w.creation_time.and_then(DateTime::from_timestamp_millis),
        }
    }
}

/// What stackctl writes on a table: every declared part on insert, the changed parts on patch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableWrite {
    pub project: String,
    pub dataset_id: String,
    pub table_id: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub columns: Option<Vec<FieldRecord>>,
    pub partition: Option<PartitionRecord>,
    /// `Some(vec![])` removes clustering.
    pub cluster_by: Option<Vec<String>>,
    pub require_partition_filter: Option<bool>,
    pub view: Option<ViewRecord>,
}

impl TableWrite {
    fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "tableReference": {"projectId": self.project, "datasetId": self.dataset_id, "tableId": self.table_id},
        });
        if let Some(labels) = &self.labels {
            body["labels"] = serde_json::json!(labels);
        }
        if let Some(columns) = &self.columns {
            body["schema"] = serde_json::json!({ "fields": columns });
        }
        if let Some(p) = &self.partition {
            let mut tp = serde_json::json!({ "type": p.granularity });
            if let Some(f) = &p.field {
                tp["field"] = f.clone().into();
            }
            if let Some(v) = ms_string(p.expiration) {
                tp["expirationMs"] = v.into();
            }
            body["timePartitioning"] = tp;
        }
        if let Some(fields) = &self.cluster_by {
            body["clustering"] = if fields.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::json!({ "fields": fields })
            };
        }
        if let Some(r) = self.require_partition_filter {
            body["requirePartitionFilter"] = r.into();
        }
        if let Some(v) = &self.view {
            let mut mv = serde_json::json!({ "query": v.query, "enableRefresh": true });
            if let Some(r) = ms_string(v.refresh_interval) {
                mv["refreshIntervalMs"] = r.into();
            }
            body["materializedView"] = mv;
        }
        body
    }

    fn resource(&self) -> String {
        format!(
            "projects/{}/datasets/{}/tables/{}",
            self.project, self.dataset_id, self.table_id
        )
    }

    fn path(&self) -> String {
        format!(
            "/bigquery/v2/projects/{}/datasets/{}/tables/{}",
            enc(&self.project),
            enc(&self.dataset_id),
            enc(&self.table_id)
        )
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DatasetList {
    #[serde(default)]
    datasets: Vec<DatasetListEntry>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DatasetListEntry {
    dataset_reference: DatasetReference,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TableList {
    #[serde(default)]
    tables: Vec<TableListEntry>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TableListEntry {
    table_reference: TableReference,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobList {
    #[serde(default)]
    jobs: Vec<JobListEntry>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobListEntry {
    job_reference: JobReference,
    #[serde(default)]
    configuration: JobConfigurationWire,
    #[serde(default)]
    statistics: JobStatisticsWire,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobReference {
    job_id: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobConfigurationWire {
    #[serde(default)]
    copy: Option<TableSourcesWire>,
    #[serde(default)]
    extract: Option<TableSourcesWire>,
    #[serde(default)]
    query: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    load: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    job_type: Option<String>,
}

/// A copy's `sourceTable` / `sourceTables`, an extract's `sourceTable`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TableSourcesWire {
    #[serde(default)]
    source_table: Option<TableReference>,
    #[serde(default)]
    source_tables: Vec<TableReference>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobStatisticsWire {
    #[serde(default, deserialize_with = "int64_opt")]
    creation_time: Option<i64>,
    #[serde(default, deserialize_with = "int64_opt")]
    num_child_jobs: Option<i64>,
    #[serde(default)]
    query: Option<QueryStatisticsWire>,
    #[serde(default)]
    load: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    extract: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    copy: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryStatisticsWire {
    #[serde(default)]
    referenced_tables: Vec<TableReference>,
}

/// `None` for an entry without `creationTime` (the API reports it on every job).
fn job_read_from_wire(w: JobListEntry) -> Option<JobReadRecord> {
    let created = w
        .statistics
        .creation_time
        .and_then(DateTime::from_timestamp_millis)?;
    let (config, stats) = (&w.configuration, &w.statistics);
    let redacted = [
        config.copy.is_some(),
        config.extract.is_some(),
        config.query.is_some(),
        config.load.is_some(),
        config.job_type.is_some(),
        stats.query.is_some(),
        stats.load.is_some(),
        stats.extract.is_some(),
        stats.copy.is_some(),
    ]
    .iter()
    .all(|known| !known);
    let queried = w
        .statistics
        .query
        .into_iter()
        .flat_map(|q| q.referenced_tables);
    let sources = [w.configuration.copy, w.configuration.extract]
        .into_iter()
        .flatten()
        .flat_map(|s| s.source_table.into_iter().chain(s.source_tables));
    let mut tables_read: Vec<String> = queried.chain(sources).map(|t| t.full_name()).collect();
    tables_read.sort();
    tables_read.dedup();
    Some(JobReadRecord {
        job_id: w.job_reference.job_id,
        created,
        tables_read,
        child_jobs: w
            .statistics
            .num_child_jobs
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0),
        redacted,
    })
}

/// `/bigquery/v2/projects/P/datasets/D/tables/T:VERB` of a table's full resource name, each
/// segment percent-encoded.
fn table_iam_path(resource: &str, verb: &str) -> String {
    let encoded: Vec<String> = resource.split('/').map(enc).collect();
    format!("/bigquery/v2/{}:{verb}", encoded.join("/"))
}

impl Cloud {
    /// One `tables.getIamPolicy` call (version 3, so conditional bindings come back whole); the
    /// caller retries. A table that does not exist answers 404.
    pub(super) async fn get_table_iam_policy(
        &self,
        resource: &str,
    ) -> Result<iam::Policy, ApiError> {
        let body = serde_json::json!({ "options": { "requestedPolicyVersion": 3 } });
        let req = self
            .bigquery
            .request(Method::POST, &table_iam_path(resource, "getIamPolicy"))
            .json(&body);
        self.bigquery
            .json("bigquery.tables.getIamPolicy", resource, req)
            .await
    }

    /// One `tables.setIamPolicy` call with the policy's etag (409 ABORTED if it changed since it
    /// was read); the caller retries the whole read-modify-write.
    pub(super) async fn set_table_iam_policy(
        &self,
        resource: &str,
        policy: &iam::Policy,
    ) -> Result<iam::Policy, ApiError> {
        let body = serde_json::json!({ "policy": policy });
        let req = self
            .bigquery
            .request(Method::POST, &table_iam_path(resource, "setIamPolicy"))
            .json(&body);
        self.bigquery
            .json("bigquery.tables.setIamPolicy", resource, req)
            .await
    }

    fn dataset_path(&self, dataset: &str) -> String {
        format!(
            "/bigquery/v2/projects/{}/datasets/{}",
            enc(&self.project),
            enc(dataset)
        )
    }

    /// The ids and labels of every dataset in the project.
    pub async fn list_datasets(
        &self,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<(String, BTreeMap<String, String>)>, ApiError> {
        let resource = format!("projects/{}", self.project);
        let path = format!("/bigquery/v2/projects/{}/datasets", enc(&self.project));
        let list = ListCall {
            call: "bigquery.datasets.list",
            resource: &resource,
            path: &path,
            query: &[],
        };
        self.bigquery
            .list_all(list, self.backoff, observer, |page: DatasetList| {
                let datasets = page.datasets.into_iter();
                let ids = datasets.map(|d| (d.dataset_reference.dataset_id, d.labels));
                (ids.collect(), page.next_page_token)
            })
            .await
    }

    pub async fn get_dataset(
        &self,
        dataset: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Option<DatasetRecord>, ApiError> {
        let resource = format!("projects/{}/datasets/{dataset}", self.project);
        let got = retrying(self.backoff, observer, || async {
            self.bigquery
                .json::<DatasetWire>(
                    "bigquery.datasets.get",
                    &resource,
                    self.bigquery
                        .request(Method::GET, &self.dataset_path(dataset)),
                )
                .await
        })
        .await;
        got.map(|d| d.into()).not_found_as_none()
    }

    /// Creates the dataset; one that a retried insert already made is read back.
    pub async fn insert_dataset(
        &self,
        write: &DatasetWrite,
        observer: &dyn RetryObserver,
    ) -> Result<DatasetRecord, ApiError> {
        let resource = format!("projects/{}/datasets/{}", write.project, write.dataset_id);
        let path = format!("/bigquery/v2/projects/{}/datasets", enc(&write.project));
        let made = retrying(self.backoff, observer, || async {
            self.bigquery
                .json::<DatasetWire>(
                    "bigquery.datasets.insert",
                    &resource,
                    self.bigquery
                        .request(Method::POST, &path)
                        .json(&write.body()),
                )
                .await
        })
        .await;
        match made {
            Ok(d) => Ok(d.into()),
            Err(e) if e.http_status == Some(409) => self
                .get_dataset(&write.dataset_id, observer)
                .await?
                .ok_or(e),
            Err(e) => Err(e),
        }
    }

    /// Patches the dataset only if its etag is still `etag` (412 otherwise).
    pub async fn patch_dataset(
        &self,
        write: &DatasetWrite,
        etag: &str,
        observer: &dyn RetryObserver,
    ) -> Result<DatasetRecord, ApiError> {
        let mut body = write.body();
        // Unset expirations are cleared explicitly (patch keeps fields it is not given).
        if write.default_partition_expiration.is_none() {
            body["defaultPartitionExpirationMs"] = serde_json::Value::Null;
        }
        if write.default_table_expiration.is_none() {
            body["defaultTableExpirationMs"] = serde_json::Value::Null;
        }
        self.send_dataset_patch(&write.dataset_id, &body, etag, observer)
            .await
    }

    /// Sets the dataset's labels to `labels` (send every label to keep) only if its etag is
    /// still `etag` (412 otherwise); nothing else about it changes.
    pub async fn label_dataset(
        &self,
        dataset: &str,
        labels: &BTreeMap<String, String>,
        etag: &str,
        observer: &dyn RetryObserver,
    ) -> Result<DatasetRecord, ApiError> {
        let body = serde_json::json!({ "labels": labels });
        self.send_dataset_patch(dataset, &body, etag, observer)
            .await
    }

    /// One `datasets.patch` of `body` with `If-Match: etag`.
    async fn send_dataset_patch(
        &self,
        dataset: &str,
        body: &serde_json::Value,
        etag: &str,
        observer: &dyn RetryObserver,
    ) -> Result<DatasetRecord, ApiError> {
        let resource = format!("projects/{}/datasets/{dataset}", self.project);
        retrying(self.backoff, observer, || async {
            let req = self
                .bigquery
                .request(Method::PATCH, &self.dataset_path(dataset))
                .header(reqwest::header::IF_MATCH, etag)
                .json(body);
            self.bigquery
                .json::<DatasetWire>("bigquery.datasets.patch", &resource, req)
                .await
                .map(DatasetRecord::from)
        })
        .await
    }

    /// Deletes an empty dataset (never its contents: tables stackctl owns are deleted first).
    pub async fn delete_dataset(
        &self,
        dataset: &str,
        observer: &dyn RetryObserver,
    ) -> Result<(), ApiError> {
        let resource = format!("projects/{}/datasets/{dataset}", self.project);
        // deleteContents=false: Google refuses to delete a dataset that still holds tables.
        let path = format!("{}?deleteContents=false", self.dataset_path(dataset));
        self.bigquery
            .delete(
                "bigquery.datasets.delete",
                &resource,
                &path,
                self.backoff,
                observer,
            )
            .await
    }

    /// The table ids of one dataset.
    pub async fn list_table_ids(
        &self,
        dataset: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<String>, ApiError> {
        let resource = format!("projects/{}/datasets/{dataset}", self.project);
        let path = format!("{}/tables", self.dataset_path(dataset));
        let list = ListCall {
            call: "bigquery.tables.list",
            resource: &resource,
            path: &path,
            query: &[],
        };
        self.bigquery
            .list_all(list, self.backoff, observer, |page: TableList| {
                let ids = page.tables.into_iter().map(|t| t.table_reference.table_id);
                (ids.collect(), page.next_page_token)
            })
            .await
    }

    /// Every finished job of every user (`allUsers=true`: needs `bigquery.jobs.listAll`, else
    /// other users' jobs come back redacted) created since `since`: the top-level jobs, or the
    /// children of the script `parent`.
    pub async fn list_finished_jobs(
        &self,
        since: DateTime<Utc>,
        parent: Option<&str>,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<JobReadRecord>, ApiError> {
        let resource = format!("projects/{}", self.project);
        let path = format!("/bigquery/v2/projects/{}/jobs", enc(&self.project));
        let mut query = vec![
            ("allUsers", "true".to_string()),
            ("projection", "full".into()),
            ("stateFilter", "done".into()),
            (
                "minCreationTime",
                since.timestamp_millis().max(0).to_string(),
            ),
        ];
        if let Some(parent) = parent {
            query.push(("parentJobId", parent.to_string()));
        }
        let list = ListCall {
            call: "bigquery.jobs.list",
            resource: &resource,
            path: &path,
            query: &query,
        };
        self.bigquery
            .list_all(list, self.backoff, observer, |page: JobList| {
                let jobs = page.jobs.into_iter().filter_map(job_read_from_wire);
                (jobs.collect(), page.next_page_token)
            })
            .await
    }

    pub async fn get_table(
        &self,
        dataset: &str,
        table: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Option<TableRecord>, ApiError> {
        let resource = format!(
            "projects/{}/datasets/{dataset}/tables/{table}",
            self.project
        );
        let path = format!("{}/tables/{}", self.dataset_path(dataset), enc(table));
        let got = retrying(self.backoff, observer, || async {
            self.bigquery
                .json::<TableWire>(
                    "bigquery.tables.get",
                    &resource,
                    self.bigquery.request(Method::GET, &path),
                )
                .await
        })
        .await;
        got.map(|t| t.into()).not_found_as_none()
    }

    /// Creates the table; one that a retried insert already made is read back.
    pub async fn insert_table(
        &self,
        write: &TableWrite,
        observer: &dyn RetryObserver,
    ) -> Result<TableRecord, ApiError> {
        let resource = write.resource();
        let path = format!("{}/tables", self.dataset_path(&write.dataset_id));
        let made = retrying(self.backoff, observer, || async {
            self.bigquery
                .json::<TableWire>(
                    "bigquery.tables.insert",
                    &resource,
                    self.bigquery
                        .request(Method::POST, &path)
                        .json(&write.body()),
                )
                .await
        })
        .await;
        match made {
            Ok(t) => Ok(t.into()),
            Err(e) if e.http_status == Some(409) => self
                .get_table(&write.dataset_id, &write.table_id, observer)
                .await?
                .ok_or(e),
            Err(e) => Err(e),
        }
    }

    /// Patches the given parts of the table only if its etag is still `etag`; a 412
    /// [`ApiError::is_precondition_failed`] means it changed since it was read.
    pub async fn patch_table(
        &self,
        write: &TableWrite,
        etag: &str,
        observer: &dyn RetryObserver,
    ) -> Result<TableRecord, ApiError> {
        let resource = write.resource();
        let body = write.body();
        retrying(self.backoff, observer, || async {
            let req = self
                .bigquery
                .request(Method::PATCH, &write.path())
                .header(reqwest::header::IF_MATCH, etag)
                .json(&body);
            self.bigquery
                .json::<TableWire>("bigquery.tables.patch", &resource, req)
                .await
                .map(TableRecord::from)
        })
        .await
    }

    pub async fn delete_table(
        &self,
        dataset: &str,
        table: &str,
        observer: &dyn RetryObserver,
    ) -> Result<(), ApiError> {
        let resource = format!(
            "projects/{}/datasets/{dataset}/tables/{table}",
            self.project
        );
        let path = format!("{}/tables/{}", self.dataset_path(dataset), enc(table));
        self.bigquery
            .delete(
                "bigquery.tables.delete",
                &resource,
                &path,
                self.backoff,
                observer,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_policy_paths_encode_each_segment() {
        assert_eq!(
            table_iam_path(
                "projects/p/datasets/shop_data/tables/orders",
                "getIamPolicy"
            ),
            "/bigquery/v2/projects/p/datasets/shop%5Fdata/tables/orders:getIamPolicy"
        );
    }

    #[test]
    fn a_job_reads_its_referenced_tables_and_copy_and_extract_sources_not_its_load_destination() {
        let entries = r#"{"jobs": [
            {"jobReference": {"jobId": "q"}, "statistics": {"creationTime": "1700000000000", "numChildJobs": "2",
             "query": {"referencedTables": [
                {"projectId": "p", "datasetId": "raw", "tableId": "events$20260101"},
                {"projectId": "p", "datasetId": "raw", "tableId": "events"},
                {"projectId": "p", "datasetId": "raw", "tableId": "orders@1699990000000"}]}}},
            {"jobReference": {"jobId": "c"}, "statistics": {"creationTime": "1700000000001"},
             "configuration": {"copy": {"sourceTables": [{"projectId": "p", "datasetId": "raw", "tableId": "a"}],
                                        "destinationTable": {"projectId": "p", "datasetId": "raw", "tableId": "b"}}}},
            {"jobReference": {"jobId": "x"}, "statistics": {"creationTime": "1700000000002"},
             "configuration": {"extract": {"sourceTable": {"projectId": "p", "datasetId": "raw", "tableId": "c"}}}},
            {"jobReference": {"jobId": "l"}, "statistics": {"creationTime": "1700000000003"},
             "configuration": {"load": {"destinationTable": {"projectId": "p", "datasetId": "raw", "tableId": "d"}}}},
            {"jobReference": {"jobId": "undated"}}]}"#;
        let list: JobList = serde_json::from_str(entries).unwrap();
        let jobs: Vec<(String, Vec<String>, u64)> = list
            .jobs
            .into_iter()
            .filter_map(job_read_from_wire)
            .map(|j| (j.job_id, j.tables_read, j.child_jobs))
            .collect();
        let t = |id: &str| format!("projects/p/datasets/raw/tables/{id}");
        assert_eq!(
            jobs,
            vec![
                ("q".into(), vec![t("events"), t("orders")], 2),
                ("c".into(), vec![t("a")], 0),
                ("x".into(), vec![t("c")], 0),
                ("l".into(), vec![], 0),
            ]
        );
    }

    #[test]
    fn policies_round_trip_through_the_rest_json() {
        let json = r#"{"version": 1, "etag": "ACAB", "bindings": [{"role": "roles/bigquery.dataEditor", "members": ["serviceAccount:a@p.iam.gserviceaccount.com"]}]}"#;
        let policy: iam::Policy = serde_json::from_str(json).unwrap();
        assert_eq!(policy.etag, bytes::Bytes::from_static(b"\x00\x20\x01"));
        assert_eq!(policy.bindings[0].role, "roles/bigquery.dataEditor");
        let sent = serde_json::json!({ "policy": policy });
        assert_eq!(sent["policy"]["etag"], "ACAB");
        assert_eq!(
            sent["policy"]["bindings"][0]["members"][0],
            "serviceAccount:a@p.iam.gserviceaccount.com"
        );
    }
}

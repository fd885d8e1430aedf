//! BigQuery live records: datasets, tables (schema fields, partitioning, materialized views)
//! and what finished jobs read.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A dataset as BigQuery reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetRecord {
    /// `projects/P/datasets/D`
    pub name: String,
    pub project: String,
    pub dataset_id: String,
    pub location: String,
    pub labels: BTreeMap<String, String>,
    pub default_partition_expiration: Option<Duration>,
    pub default_table_expiration: Option<Duration>,
    pub etag: String,
}

/// One schema field (a column), nested for RECORDs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldRecord>,
}

/// Time partitioning as BigQuery reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// DAY, HOUR, MONTH or YEAR.
    pub granularity: String,
    /// `None` = ingestion-time partitioning.
    pub field: Option<String>,
    pub expiration: Option<Duration>,
}

/// A materialized view's definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewRecord {
    pub query: String,
    pub refresh_interval: Option<Duration>,
}

/// A table as BigQuery reports it (from tables.get: list entries carry no schema).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableRecord {
    /// `projects/P/datasets/D/tables/T`
    pub name: String,
    pub dataset_id: String,
    pub table_id: String,
    /// `type`: TABLE, VIEW, MATERIALIZED_VIEW, EXTERNAL, SNAPSHOT...; empty when not reported.
    pub kind: String,
    pub etag: String,
    pub labels: BTreeMap<String, String>,
    pub columns: Vec<FieldRecord>,
    pub partition: Option<PartitionRecord>,
    pub cluster_by: Vec<String>,
    pub require_partition_filter: bool,
    pub view: Option<ViewRecord>,
    /// Logical bytes stored (`numBytes`, output only); `None` when not reported.
    pub num_bytes: Option<u64>,
    /// Logical bytes unmodified for 90 days (`numLongTermBytes`, output only).
    pub long_term_bytes: Option<u64>,
    /// `creationTime` (output only); `None` when not reported.
    pub created: Option<DateTime<Utc>>,
}

/// What one finished BigQuery job read, from its `jobs.list` entry (`projection=full`).
#[derive(Debug, Clone, PartialEq)]
pub struct JobReadRecord {
    pub job_id: String,
    /// `statistics.creationTime`.
    pub created: DateTime<Utc>,
    /// Full names of the tables it read, decorators dropped: a query's `referencedTables`, a
    /// copy's sources and an extract's source. A load's destination is a write, not a read.
    pub tables_read: Vec<String>,
    /// `statistics.numChildJobs`: a script runs its statements as child jobs, listed under it.
    pub child_jobs: u64,
    /// The entry says nothing of what the job did (no configuration, no per-type statistics):
    /// another user's job listed without `bigquery.jobs.listAll` comes back redacted so.
    pub redacted: bool,
}

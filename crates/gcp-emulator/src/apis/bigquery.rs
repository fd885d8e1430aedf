//! BigQuery v2 datasets and tables (insert/get/list/patch/update/delete), table IAM policies,
//! `jobs.list` over load jobs and jobs seeded through the admin API, and seeded table storage
//! (bytes and creation time; once rows are written, the counters follow them: see
//! `bigquery_data`, `bigquery_jobs`). BigQuery is an apiary API:
//! bodies are served as built here (legacy type names, int64 as strings, epoch-ms times).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{Call, Context, Reply, iam_policy};
use crate::conventions::ApiError;
use crate::conventions::paging::{PagePolicy, paginate};
use crate::conventions::wire::{base64, stable_hash};

/// The principal the emulator records as dataset creator (added as `OWNER`).
pub const CREATOR_EMAIL: &str = "emulator@stackctl.local";
pub(super) const SELF_LINK_BASE: &str = "https://bigquery.googleapis.com/bigquery/v2";

const DATASETS_POLICY: PagePolicy = PagePolicy {
    default_size: 50,
    max_size: 1000,
    size_param: "maxResults",
    token_kind: "datasets",
};
const TABLES_POLICY: PagePolicy = PagePolicy {
    default_size: 50,
    max_size: 1000,
    size_param: "maxResults",
    token_kind: "tables",
};
const JOBS_POLICY: PagePolicy = PagePolicy {
    default_size: 50,
    max_size: 1000,
    size_param: "maxResults",
    token_kind: "bqjobs",
};

pub(super) fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::invalid_argument(message)
}

pub(super) fn dataset_key(project: &str, dataset: &str) -> String {
    format!("{project}:{dataset}")
}

pub(super) fn table_key(project: &str, dataset: &str, table: &str) -> String {
    format!("{project}:{dataset}.{table}")
}

pub(super) fn dataset_not_found(key: &str) -> ApiError {
    ApiError::not_found(format!("Not found: Dataset {key}"))
}

pub(super) fn table_not_found(key: &str) -> ApiError {
    ApiError::not_found(format!("Not found: Table {key}"))
}

pub(super) fn epoch_ms(at: DateTime<Utc>) -> String {
    at.timestamp_millis().to_string()
}

pub(super) fn new_etag(key: &str, modified: &str, salt: u64) -> String {
    let digest = stable_hash(&["bigquery-etag", key, modified, &salt.to_string()]);
    base64(&hex::decode(&digest[..32]).unwrap_or_default())
}

/// An int64 that arrives as a JSON number or string, served as a string.
fn int64_string(value: &Value) -> Option<Value> {
    match value {
        Value::Number(n) => Some(json!(n.to_string())),
        Value::String(s) if s.parse::<i64>().is_ok() => Some(value.clone()),
        _ => None,
    }
}

/// An int64 served as a string (or seeded as a number).
pub(super) fn int64_value(value: &Value) -> Option<i64> {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| value.as_i64())
}

fn normalize_int64_fields(
    resource: &mut Map<String, Value>,
    fields: &[&str],
) -> Result<(), ApiError> {
    for field in fields {
        if let Some(value) = resource.get(*field).cloned() {
            if value.is_null() {
                resource.remove(*field);
                continue;
            }
            let normalized = int64_string(&value).ok_or_else(|| {
                bad_request(format!(
                    "Invalid value for {field}: {value} is not a valid value"
                ))
            })?;
            resource.insert((*field).to_string(), normalized);
        }
    }
    Ok(())
}

/// Labels in a patch merge into the existing ones; a `null` value removes a label.
fn merge_labels(existing: Option<&Value>, patch: &Value) -> Value {
    let mut labels = existing
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(patch) = patch.as_object() {
        for (key, value) in patch {
            if value.is_null() {
                labels.remove(key);
            } else {
                labels.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(labels)
}

fn check_if_match(call: &Call<'_>, current: &Value) -> Result<(), ApiError> {
    let Some(sent) = call.headers.get("if-match").and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let current = current
        .get("etag")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if sent == "*" || sent.trim_matches('"') == current {
        Ok(())
    } else {
        Err(ApiError::failed_precondition("Precondition check failed.").with_http_status(412))
    }
}

fn valid_dataset_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 1024 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn valid_table_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' ' | '$'))
}

/// `us`/`eu` multi-regions are upper-cased, regions lower-cased, as BigQuery reports them.
fn canonical_location(location: &str) -> String {
    if location.eq_ignore_ascii_case("us") || location.eq_ignore_ascii_case("eu") {
        location.to_ascii_uppercase()
    } else {
        location.to_ascii_lowercase()
    }
}

fn default_access() -> Value {
    json!([
        {"role": "WRITER", "specialGroup": "projectWriters"},
        {"role": "OWNER", "specialGroup": "projectOwners"},
        {"role": "OWNER", "userByEmail": CREATOR_EMAIL},
        {"role": "READER", "specialGroup": "projectReaders"},
    ])
}

/// Legacy roles the API reports for the IAM names clients may send.
fn canonical_access(access: &Value) -> Value {
    let entries = access.as_array().cloned().unwrap_or_default();
    Value::Array(
        entries
            .into_iter()
            .map(|mut entry| {
                let role = entry.get("role").and_then(Value::as_str).map(|r| match r {
                    "roles/bigquery.dataOwner" => "OWNER".to_string(),
                    "roles/bigquery.dataEditor" => "WRITER".to_string(),
                    "roles/bigquery.dataViewer" => "READER".to_string(),
                    other => other.to_string(),
                });
                if let Some(role) = role {
                    entry["role"] = json!(role);
                }
                entry
            })
            .collect(),
    )
}

const DATASET_INT64_FIELDS: &[&str] = &[
    "defaultTableExpirationMs",
    "defaultPartitionExpirationMs",
    "maxTimeTravelHours",
];

fn finish_dataset(
    mut dataset: Map<String, Value>,
    key: &str,
    now: &str,
    salt: u64,
) -> Result<Value, ApiError> {
    normalize_int64_fields(&mut dataset, DATASET_INT64_FIELDS)?;
    if let Some(access) = dataset.get("access").cloned() {
        dataset.insert("access".into(), canonical_access(&access));
    }
    if dataset
        .get("labels")
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
    {
        dataset.remove("labels");
    }
    dataset.insert("lastModifiedTime".into(), json!(now));
    dataset.insert("etag".into(), json!(new_etag(key, now, salt)));
    let order = [
        "kind",
        "etag",
        "id",
        "selfLink",
        "datasetReference",
        "friendlyName",
        "description",
        "defaultTableExpirationMs",
        "defaultPartitionExpirationMs",
        "labels",
        "access",
        "creationTime",
        "lastModifiedTime",
        "location",
        "type",
        "maxTimeTravelHours",
    ];
    Ok(super::collection::ordered(dataset, &order))
}

pub fn insert_dataset(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let project = call.param("projectsId")?.to_string();
    let body = call.body_or_empty();
    let reference = body
        .get("datasetReference")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let dataset_id = reference
        .get("datasetId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !valid_dataset_id(&dataset_id) {
        return Err(bad_request(format!(
            "Invalid dataset ID \"{dataset_id}\". Dataset IDs must be alphanumeric (plus underscores) and must be at most 1024 characters long."
        )));
    }
    let key = dataset_key(&project, &dataset_id);
    if context.state.bq_datasets.contains_key(&key) {
        return Err(ApiError::already_exists(format!(
            "Already Exists: Dataset {key}"
        )));
    }
    let now = epoch_ms(call.now);
    let mut dataset = body.as_object().cloned().unwrap_or_default();
    for output_only in [
        "etag",
        "id",
        "selfLink",
        "creationTime",
        "lastModifiedTime",
        "type",
    ] {
        dataset.remove(output_only);
    }
    dataset.insert("kind".into(), json!("bigquery#dataset"));
    dataset.insert("id".into(), json!(key));
    dataset.insert(
        "selfLink".into(),
        json!(format!(
            "{SELF_LINK_BASE}/projects/{project}/datasets/{dataset_id}"
        )),
    );
    dataset.insert(
        "datasetReference".into(),
        json!({"datasetId": dataset_id, "projectId": project}),
    );
    if dataset
        .get("access")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        dataset.insert("access".into(), default_access());
    }
    let location = dataset
        .get("location")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
        .unwrap_or("US")
        .to_string();
    dataset.insert("location".into(), json!(canonical_location(&location)));
    dataset.insert("creationTime".into(), json!(now));
    dataset.insert("type".into(), json!("DEFAULT"));
    dataset
        .entry("maxTimeTravelHours")
        .or_insert_with(|| json!("168"));
    let salt = context.state.next_id();
    let dataset = finish_dataset(dataset, &key, &now, salt)?;
    context.state.bq_datasets.insert(key, dataset.clone());
    Ok(Reply::Json(dataset))
}

pub(super) fn existing_dataset(
    context: &Context<'_>,
    call: &Call<'_>,
) -> Result<(String, Value), ApiError> {
    let key = dataset_key(call.param("projectsId")?, call.param("datasetsId")?);
    let dataset = context
        .state
        .bq_datasets
        .get(&key)
        .cloned()
        .ok_or_else(|| dataset_not_found(&key))?;
    Ok((key, dataset))
}

pub fn get_dataset(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    existing_dataset(context, call).map(|(_, d)| Reply::Json(d))
}

pub fn list_datasets(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let prefix = format!("{}:", call.param("projectsId")?);
    let label_filter = call
        .query
        .non_empty("filter")
        .map(parse_label_filter)
        .transpose()?;
    let datasets: Vec<(String, Value)> =
        super::collection::entries_under(&context.state.bq_datasets, &prefix)
            .filter(|(_, d)| {
                label_filter.as_ref().is_none_or(|(key, value)| {
                    d.get("labels")
                        .and_then(|l| l.get(key))
                        .and_then(Value::as_str)
                        .is_some_and(|v| value.as_deref().is_none_or(|w| w == v))
                })
            })
            .map(|(k, d)| {
                let mut summary = json!({
                    "kind": "bigquery#dataset",
                    "id": d["id"],
                    "datasetReference": d["datasetReference"],
                    "location": d["location"],
                });
                if let Some(labels) = d.get("labels") {
                    summary["labels"] = labels.clone();
                }
                if let Some(name) = d.get("friendlyName") {
                    summary["friendlyName"] = name.clone();
                }
                (k.clone(), summary)
            })
            .collect();
    let page = paginate(datasets, |(k, _)| k.as_str(), call.query, DATASETS_POLICY)?;
    let mut response =
        json!({"kind": "bigquery#datasetList", "etag": new_etag(&prefix, "list", 0)});
    if !page.items.is_empty() {
        response["datasets"] = Value::Array(page.items.into_iter().map(|(_, d)| d).collect());
    }
    if let Some(token) = page.next_page_token {
        response["nextPageToken"] = json!(token);
    }
    Ok(Reply::Json(response))
}

/// `labels.KEY` or `labels.KEY:VALUE` (space-separated terms are ANDed; only the first is used).
fn parse_label_filter(filter: &str) -> Result<(String, Option<String>), ApiError> {
    let term = filter.split_whitespace().next().unwrap_or_default();
    let rest = term.strip_prefix("labels.").ok_or_else(|| {
        bad_request(format!(
            "Invalid filter \"{filter}\": only labels.KEY[:VALUE] is supported."
        ))
    })?;
    Ok(match rest.split_once(':') {
        Some((key, value)) => (key.to_string(), Some(value.to_string())),
        None => (rest.to_string(), None),
    })
}

fn write_dataset(
    context: &mut Context<'_>,
    call: &Call<'_>,
    replace: bool,
) -> Result<Reply, ApiError> {
    let (key, existing) = existing_dataset(context, call)?;
    check_if_match(call, &existing)?;
    let body = call.body_or_empty();
    if let Some(location) = body.get("location").and_then(Value::as_str)
        && canonical_location(location) != existing["location"]
    {
        return Err(bad_request(format!(
            "Cannot change the location of dataset {key}."
        )));
    }
    let kept = [
        "kind",
        "id",
        "selfLink",
        "datasetReference",
        "creationTime",
        "location",
        "type",
        "etag",
    ];
    let mut dataset = if replace {
        let mut fields: Map<String, Value> = body.as_object().cloned().unwrap_or_default();
        for field in kept {
            fields.insert(field.into(), existing[field].clone());
        }
        fields
            .entry("access")
            .or_insert_with(|| existing["access"].clone());
        fields
    } else {
        let mut fields = existing.as_object().cloned().unwrap_or_default();
        for (field, value) in body.as_object().cloned().unwrap_or_default() {
            if kept.contains(&field.as_str()) || field == "lastModifiedTime" {
                continue;
            }
            if field == "labels" {
                fields.insert(field, merge_labels(existing.get("labels"), &value));
            } else if value.is_null() {
                fields.remove(&field);
            } else {
                fields.insert(field, value);
            }
        }
        fields
    };
    dataset.retain(|_, v| !v.is_null());
    let salt = context.state.next_id();
    let dataset = finish_dataset(dataset, &key, &epoch_ms(call.now), salt)?;
    context.state.bq_datasets.insert(key, dataset.clone());
    Ok(Reply::Json(dataset))
}

pub fn patch_dataset(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    write_dataset(context, call, false)
}

pub fn update_dataset(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    write_dataset(context, call, true)
}

pub fn delete_dataset(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let (key, _) = existing_dataset(context, call)?;
    let prefix = format!("{key}.");
    let has_tables = super::collection::entries_under(&context.state.bq_tables, &prefix)
        .next()
        .is_some();
    if has_tables && !call.query_bool("deleteContents")? {
        return Err(bad_request(format!("Dataset {key} is still in use"))
            .with_storage_reason("resourceInUse"));
    }
    let table_names: Vec<String> =
        super::collection::entries_under(&context.state.bq_tables, &prefix)
            .map(|(k, _)| k.clone())
            .collect();
    for table in table_names {
        drop_rows(context, &table)?;
        context.state.bq_tables.remove(&table);
    }
    context.state.bq_datasets.remove(&key);
    Ok(Reply::NoContent)
}

// ---- tables ----

/// GoogleSQL type names are reported with their legacy names.
fn legacy_type(kind: &str) -> String {
    match kind.to_ascii_uppercase().as_str() {
        "INT64" => "INTEGER".into(),
        "FLOAT64" => "FLOAT".into(),
        "BOOL" => "BOOLEAN".into(),
        "STRUCT" => "RECORD".into(),
        other => other.to_string(),
    }
}

/// Upper-cases types and modes, fills `mode: NULLABLE`, recurses into RECORD fields.
pub(super) fn normalize_fields(fields: &Value, path: &str) -> Result<Value, ApiError> {
    let mut out = Vec::new();
    for field in fields.as_array().map_or(&[][..], Vec::as_slice) {
        let mut field = field.as_object().cloned().unwrap_or_default();
        let name = field
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty()
            || !name
                .chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
        {
            return Err(bad_request(format!(
                "Invalid field name \"{name}\". Fields must contain only letters, numbers, and underscores, start with a letter or underscore, and be at most 300 characters long."
            )));
        }
        let kind = field
            .get("type")
            .and_then(Value::as_str)
            .map(legacy_type)
            .unwrap_or_default();
        if kind.is_empty() {
            return Err(bad_request(format!("Field {path}{name} has no type.")));
        }
        field.insert("type".into(), json!(kind));
        let mode = field
            .get("mode")
            .and_then(Value::as_str)
            .map(str::to_ascii_uppercase)
            .unwrap_or_else(|| "NULLABLE".into());
        if !matches!(mode.as_str(), "NULLABLE" | "REQUIRED" | "REPEATED") {
            return Err(bad_request(format!(
                "Invalid mode {mode} for field {path}{name}."
            )));
        }
        field.insert("mode".into(), json!(mode));
        if kind == "RECORD" {
            let nested = field.get("fields").cloned().unwrap_or_else(|| json!([]));
            if nested.as_array().is_none_or(Vec::is_empty) {
                return Err(bad_request(format!(
                    "Field {path}{name} is type RECORD but has no schema"
                )));
            }
            field.insert(
                "fields".into(),
                normalize_fields(&nested, &format!("{path}{name}."))?,
            );
        }
        out.push(Value::Object(field));
    }
    Ok(Value::Array(out))
}

/// Only additive changes (new NULLABLE/REPEATED columns) and REQUIRED -> NULLABLE relaxations,
/// each if `allowed`.
/// Which schema changes a write may make (`schemaUpdateOptions` of a load; a table patch may
/// make both).
#[derive(Debug, Clone, Copy)]
pub(super) struct SchemaChanges {
    pub add_fields: bool,
    pub relax_modes: bool,
}

const PATCH_CHANGES: SchemaChanges = SchemaChanges {
    add_fields: true,
    relax_modes: true,
};

pub(super) fn check_schema_change(
    table: &str,
    old: &Value,
    new: &Value,
    path: &str,
    allowed: SchemaChanges,
) -> Result<(), ApiError> {
    let mismatch = |detail: String| {
        bad_request(format!(
            "Provided Schema does not match Table {table}. {detail}"
        ))
    };
    let old_fields = old.as_array().map_or(&[][..], Vec::as_slice);
    let new_fields = new.as_array().map_or(&[][..], Vec::as_slice);
    let name_of = |f: &Value| {
        f.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    let shown_of = |f: &Value| {
        format!(
            "{path}{}",
            f.get("name").and_then(Value::as_str).unwrap_or_default()
        )
    };
    for old_field in old_fields {
        let name = name_of(old_field);
        let shown = shown_of(old_field);
        let Some(new_field) = new_fields.iter().find(|f| name_of(f) == name) else {
            return Err(mismatch(format!("Field {shown} is missing in new schema")));
        };
        let (old_type, new_type) = (&old_field["type"], &new_field["type"]);
        if old_type != new_type {
            return Err(mismatch(format!(
                "Field {shown} has changed type from {} to {}",
                old_type.as_str().unwrap_or_default(),
                new_type.as_str().unwrap_or_default()
            )));
        }
        let (old_mode, new_mode) = (
            old_field["mode"].as_str().unwrap_or_default(),
            new_field["mode"].as_str().unwrap_or_default(),
        );
        let relaxed = allowed.relax_modes && old_mode == "REQUIRED" && new_mode == "NULLABLE";
        if old_mode != new_mode && !relaxed {
            return Err(mismatch(format!(
                "Field {shown} has changed mode from {old_mode} to {new_mode}"
            )));
        }
        if old_type == "RECORD" {
            check_schema_change(
                table,
                &old_field["fields"],
                &new_field["fields"],
                &format!("{shown}."),
                allowed,
            )?;
        }
    }
    for new_field in new_fields {
        let name = name_of(new_field);
        let shown = shown_of(new_field);
        let added = !old_fields.iter().any(|f| name_of(f) == name);
        if added && !allowed.add_fields {
            return Err(mismatch(format!("Cannot add fields (field: {shown})")));
        }
        if added && new_field["mode"] == "REQUIRED" {
            return Err(mismatch(format!(
                "Cannot add required fields to an existing schema. (field: {shown})"
            )));
        }
    }
    Ok(())
}

/// Partitioning cannot change in place (expiration can); none -> some is refused too.
fn check_partitioning_change(old: Option<&Value>, new: Option<&Value>) -> Result<(), ApiError> {
    let spec = |p: Option<&Value>| p.map(|p| (p.get("type").cloned(), p.get("field").cloned()));
    match (spec(old), spec(new)) {
        (None, Some(_)) => Err(bad_request(
            "Cannot convert non-partitioned table to partitioned table.",
        )),
        (Some(a), Some(b)) if a != b => Err(bad_request(
            "Cannot change partitioning spec for a partitioned table.",
        )),
        (Some(_), None) => Err(bad_request(
            "Cannot change partitioning spec for a partitioned table.",
        )),
        _ => Ok(()),
    }
}

const TABLE_ORDER: &[&str] = &[
    "kind",
    "etag",
    "id",
    "selfLink",
    "tableReference",
    "friendlyName",
    "description",
    "labels",
    "schema",
    "timePartitioning",
    "rangePartitioning",
    "clustering",
    "requirePartitionFilter",
    "materializedView",
    "numBytes",
    "numLongTermBytes",
    "numRows",
    "creationTime",
    "expirationTime",
    "lastModifiedTime",
    "type",
    "location",
    "numTotalLogicalBytes",
    "numActiveLogicalBytes",
    "numLongTermLogicalBytes",
];

/// Normalizes a table body and sets what the server owns.
pub(super) fn finish_table(
    mut table: Map<String, Value>,
    dataset: &Value,
    key: &str,
    now: &str,
    salt: u64,
) -> Result<Value, ApiError> {
    normalize_int64_fields(&mut table, &["expirationTime"])?;
    if let Some(schema) = table.get("schema").cloned() {
        let fields = normalize_fields(schema.get("fields").unwrap_or(&json!([])), "")?;
        table.insert("schema".into(), json!({"fields": fields}));
    }
    if let Some(Value::Object(partitioning)) = table.get_mut("timePartitioning") {
        let kind = partitioning
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("DAY")
            .to_ascii_uppercase();
        if !matches!(kind.as_str(), "DAY" | "HOUR" | "MONTH" | "YEAR") {
            return Err(bad_request(format!(
                "Invalid time partitioning type: {kind}"
            )));
        }
        partitioning.insert("type".into(), json!(kind));
        if let Some(expiration) = partitioning.get("expirationMs").cloned() {
            match int64_string(&expiration) {
                Some(ms) => partitioning.insert("expirationMs".into(), ms),
                None => partitioning.remove("expirationMs"),
            };
        }
        if let Some(Value::Bool(required)) = partitioning.remove("requirePartitionFilter") {
            table.insert("requirePartitionFilter".into(), json!(required));
        }
    }
    if let Some(field) = table
        .get("timePartitioning")
        .and_then(|p| p.get("field"))
        .and_then(Value::as_str)
    {
        let known = table
            .get("schema")
            .and_then(|s| s.get("fields"))
            .and_then(Value::as_array)
            .is_some_and(|fields| {
                fields
                    .iter()
                    .any(|f| f.get("name").and_then(Value::as_str) == Some(field))
            });
        if !known {
            return Err(bad_request(format!(
                "The field specified for time partitioning can only be of type TIMESTAMP, DATE or DATETIME. The type found is: <missing field {field}>."
            )));
        }
    }
    if let Some(clustering) = table.get("clustering") {
        let fields = clustering
            .get("fields")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if fields > 4 {
            return Err(bad_request(
                "Too many clustering fields: at most 4 are allowed.",
            ));
        }
        if fields == 0 {
            table.remove("clustering");
        }
    }
    if table.get("requirePartitionFilter") == Some(&json!(false)) {
        table.remove("requirePartitionFilter");
    }
    let kind = if let Some(Value::Object(view)) = table.get_mut("materializedView") {
        if view
            .get("query")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(bad_request("Materialized view query is empty."));
        }
        view.entry("enableRefresh").or_insert(json!(true));
        if view.get("enableRefresh") == Some(&json!(true)) {
            let interval = view
                .get("refreshIntervalMs")
                .and_then(int64_string)
                .unwrap_or_else(|| json!("1800000"));
            view.insert("refreshIntervalMs".into(), interval);
        }
        "MATERIALIZED_VIEW"
    } else if table.contains_key("view") {
        "VIEW"
    } else {
        "TABLE"
    };
    table.insert("type".into(), json!(kind));
    if table
        .get("labels")
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
    {
        table.remove("labels");
    }
    table.insert("location".into(), dataset["location"].clone());
    table.insert("lastModifiedTime".into(), json!(now));
    table.insert("etag".into(), json!(new_etag(key, now, salt)));
    Ok(super::collection::ordered(table, TABLE_ORDER))
}

fn existing_table(
    context: &Context<'_>,
    call: &Call<'_>,
) -> Result<(String, Value, Value), ApiError> {
    let (dataset_key, dataset) = existing_dataset(context, call)?;
    let key = format!("{dataset_key}.{}", call.param("tablesId")?);
    let table = context
        .state
        .bq_tables
        .get(&key)
        .cloned()
        .ok_or_else(|| table_not_found(&key))?;
    Ok((key, table, dataset))
}

pub fn insert_table(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let (_, dataset) = existing_dataset(context, call)?;
    let project = call.param("projectsId")?.to_string();
    let dataset_id = call.param("datasetsId")?.to_string();
    let table = create_table(
        context,
        &dataset,
        &project,
        &dataset_id,
        &call.body_or_empty(),
        call.now,
    )?;
    Ok(Reply::Json(table))
}

/// Creates table `body` in a dataset (`tables.insert`, or a load job that may create it).
pub(super) fn create_table(
    context: &mut Context<'_>,
    dataset: &Value,
    project: &str,
    dataset_id: &str,
    body: &Value,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let table_id = body
        .pointer("/tableReference/tableId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !valid_table_id(&table_id) {
        return Err(bad_request(format!("Invalid table ID \"{table_id}\".")));
    }
    let key = table_key(project, dataset_id, &table_id);
    if context.state.bq_tables.contains_key(&key) {
        return Err(ApiError::already_exists(format!(
            "Already Exists: Table {key}"
        )));
    }
    let created = now;
    let now = epoch_ms(created);
    let mut table = body.as_object().cloned().unwrap_or_default();
    for output_only in [
        "etag",
        "id",
        "selfLink",
        "creationTime",
        "lastModifiedTime",
        "type",
        "location",
        "numBytes",
        "numRows",
    ] {
        table.remove(output_only);
    }
    table.insert("kind".into(), json!("bigquery#table"));
    table.insert("id".into(), json!(key));
    table.insert(
        "selfLink".into(),
        json!(format!(
            "{SELF_LINK_BASE}/projects/{project}/datasets/{dataset_id}/tables/{table_id}"
        )),
    );
    table.insert(
        "tableReference".into(),
        json!({"projectId": project, "datasetId": dataset_id, "tableId": table_id}),
    );
    for counter in [
        "numBytes",
        "numLongTermBytes",
        "numRows",
        "numTotalLogicalBytes",
        "numActiveLogicalBytes",
        "numLongTermLogicalBytes",
    ] {
        table.insert(counter.into(), json!("0"));
    }
    table.insert("creationTime".into(), json!(now));
    if !table.contains_key("expirationTime")
        && let Some(default) = dataset
            .get("defaultTableExpirationMs")
            .and_then(Value::as_str)
            .and_then(|d| d.parse::<i64>().ok())
    {
        table.insert(
            "expirationTime".into(),
            json!((created.timestamp_millis() + default).to_string()),
        );
    }
    if let Some(Value::Object(partitioning)) = table.get_mut("timePartitioning")
        && !partitioning.contains_key("expirationMs")
        && let Some(default) = dataset.get("defaultPartitionExpirationMs")
    {
        partitioning.insert("expirationMs".into(), default.clone());
    }
    let salt = context.state.next_id();
    let table = finish_table(table, dataset, &key, &now, salt)?;
    // Rows a killed emulator left behind for an earlier table of this name are not this one's.
    drop_rows(context, &key)?;
    context.state.bq_tables.insert(key, table.clone());
    Ok(table)
}

/// `tables.get`; on a partition decorator (`table$20240101`), the counters are the partition's.
pub fn get_table(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let (key, table, decorator) = super::bigquery_data::addressed_table(context, call)?;
    let table = table.clone();
    super::bigquery_data::with_row_counters(context, &key, table, decorator.as_deref(), call.now)
        .map(Reply::Json)
}

fn drop_rows(context: &Context<'_>, key: &str) -> Result<(), ApiError> {
    context
        .table_rows
        .drop_table(key)
        .map_err(|e| super::bigquery_data::storage_error(key, &e))
}

pub fn list_tables(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let (dataset_key, _) = existing_dataset(context, call)?;
    let prefix = format!("{dataset_key}.");
    let tables: Vec<(String, Value)> =
        super::collection::entries_under(&context.state.bq_tables, &prefix)
            .map(|(k, t)| {
                let mut summary = Map::new();
                for field in [
                    "kind",
                    "id",
                    "tableReference",
                    "type",
                    "timePartitioning",
                    "clustering",
                    "labels",
                    "creationTime",
                    "expirationTime",
                    "friendlyName",
                ] {
                    if let Some(value) = t.get(field) {
                        summary.insert(field.into(), value.clone());
                    }
                }
                (k.clone(), Value::Object(summary))
            })
            .collect();
    let total = tables.len();
    let page = paginate(tables, |(k, _)| k.as_str(), call.query, TABLES_POLICY)?;
    let mut response = json!({"kind": "bigquery#tableList", "etag": new_etag(&prefix, "list", 0), "totalItems": total});
    if !page.items.is_empty() {
        response["tables"] = Value::Array(page.items.into_iter().map(|(_, t)| t).collect());
    }
    if let Some(token) = page.next_page_token {
        response["nextPageToken"] = json!(token);
    }
    Ok(Reply::Json(response))
}

fn write_table(
    context: &mut Context<'_>,
    call: &Call<'_>,
    replace: bool,
) -> Result<Reply, ApiError> {
    let (key, existing, dataset) = existing_table(context, call)?;
    check_if_match(call, &existing)?;
    let body = call.body_or_empty();
    let server_owned = [
        "kind",
        "id",
        "selfLink",
        "tableReference",
        "creationTime",
        "type",
        "location",
        "etag",
        "lastModifiedTime",
        "numBytes",
        "numLongTermBytes",
        "numRows",
        "numTotalLogicalBytes",
        "numActiveLogicalBytes",
        "numLongTermLogicalBytes",
    ];
    let mut table = if replace {
        let mut fields: Map<String, Value> = body.as_object().cloned().unwrap_or_default();
        for field in server_owned {
            if let Some(value) = existing.get(field) {
                fields.insert(field.into(), value.clone());
            }
        }
        fields
    } else {
        let mut fields = existing.as_object().cloned().unwrap_or_default();
        for (field, value) in body.as_object().cloned().unwrap_or_default() {
            if server_owned.contains(&field.as_str()) {
                continue;
            }
            if field == "labels" {
                fields.insert(field, merge_labels(existing.get("labels"), &value));
            } else if value.is_null() {
                fields.remove(&field);
            } else {
                fields.insert(field, value);
            }
        }
        fields
    };
    table.retain(|_, v| !v.is_null());
    let salt = context.state.next_id();
    let updated = finish_table(table, &dataset, &key, &epoch_ms(call.now), salt)?;
    check_partitioning_change(
        existing.get("timePartitioning"),
        updated.get("timePartitioning"),
    )?;
    if existing.get("schema").is_some() {
        let new_fields = updated
            .pointer("/schema/fields")
            .cloned()
            .unwrap_or_else(|| json!([]));
        check_schema_change(
            &key,
            &existing["schema"]["fields"],
            &new_fields,
            "",
            PATCH_CHANGES,
        )?;
    }
    context.state.bq_tables.insert(key, updated.clone());
    Ok(Reply::Json(updated))
}

pub fn patch_table(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    write_table(context, call, false)
}

pub fn update_table(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    write_table(context, call, true)
}

/// `tables.delete`; on a partition decorator (`table$20240101`), deletes that partition's rows.
pub fn delete_table(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let (key, _, decorator) = super::bigquery_data::addressed_table(context, call)?;
    if let Some(partition) = decorator {
        context
            .table_rows
            .with_table(&key, |rows| rows.replace_partition(&partition, Vec::new()))
            .map_err(|e| super::bigquery_data::storage_error(&key, &e))?;
        return Ok(Reply::NoContent);
    }
    drop_rows(context, &key)?;
    context.state.bq_tables.remove(&key);
    let resource = format!(
        "projects/{}/datasets/{}/tables/{}",
        call.param("projectsId")?,
        call.param("datasetsId")?,
        call.param("tablesId")?
    );
    iam_policy::forget(context.state, &resource);
    Ok(Reply::NoContent)
}

pub fn table_iam(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    existing_table(context, call)?;
    let resource = format!(
        "projects/{}/datasets/{}/tables/{}",
        call.param("projectsId")?,
        call.param("datasetsId")?,
        call.param("tablesId")?
    );
    iam_policy::answer(context, call, &resource)
}

// ---- seeded storage ----

/// Sets what BigQuery reports of existing tables after data arrives and time passes, posted to
/// `/_emulator/bigquery/tables`: `{"project": P, "tables": [{"datasetId": D, "tableId": T,
/// "numBytes": "..", "numLongTermBytes": "..", "numRows": "..", "creationTime": "<epoch ms>"}]}`.
/// The logical-bytes counters follow `numBytes` and `numLongTermBytes`.
pub fn seed_table_storage(state: &mut crate::state::State, body: &Value) -> Result<usize, String> {
    let (project, tables) = super::seeded_items(body, "tables")?;
    for seeded in tables {
        let id = |field: &str| {
            seeded
                .get(field)
                .and_then(Value::as_str)
                .ok_or(format!("every table needs \"{field}\""))
        };
        let key = table_key(project, id("datasetId")?, id("tableId")?);
        let table = state
            .bq_tables
            .get_mut(&key)
            .and_then(Value::as_object_mut)
            .ok_or(format!("table {key} does not exist"))?;
        let count = |field: &str| {
            seeded
                .get(field)
                .map(|v| int64_value(v).ok_or(format!("{field} of {key} is not an int64")))
                .transpose()
        };
        let bytes = count("numBytes")?;
        let long_term = count("numLongTermBytes")?;
        for (field, value) in [
            ("numBytes", bytes),
            ("numTotalLogicalBytes", bytes),
            ("numLongTermBytes", long_term),
            ("numLongTermLogicalBytes", long_term),
            ("numRows", count("numRows")?),
            ("creationTime", count("creationTime")?),
        ] {
            if let Some(value) = value {
                table.insert(field.into(), json!(value.to_string()));
            }
        }
        let total = table.get("numBytes").and_then(int64_value).unwrap_or(0);
        let long = table
            .get("numLongTermBytes")
            .and_then(int64_value)
            .unwrap_or(0);
        table.insert(
            "numActiveLogicalBytes".into(),
            json!((total - long).max(0).to_string()),
        );
    }
    Ok(tables.len())
}

// ---- jobs ----

/// Stores jobs posted to `/_emulator/bigquery/jobs` (`{"project": P, "jobs": [Job, ...]}`), in
/// the `jobs.list` entry shape. A job without `user_email` is the caller's own
/// ([`CREATOR_EMAIL`]); others are listed only with `allUsers=true`.
pub fn seed_jobs(state: &mut crate::state::State, body: &Value) -> Result<usize, String> {
    let (project, jobs) = super::seeded_items(body, "jobs")?;
    for job in jobs {
        let mut job = job.clone();
        let job_id = job
            .pointer("/jobReference/jobId")
            .and_then(Value::as_str)
            .ok_or("every job needs jobReference.jobId")?
            .to_string();
        let location = job
            .pointer("/jobReference/location")
            .and_then(Value::as_str)
            .unwrap_or("US")
            .to_string();
        job["jobReference"] = json!({"projectId": project, "jobId": job_id, "location": location});
        job["kind"] = json!("bigquery#job");
        job["id"] = json!(format!("{project}:{location}.{job_id}"));
        if job.get("state").is_none() {
            job["state"] = job
                .pointer("/status/state")
                .cloned()
                .unwrap_or(json!("DONE"));
        }
        if job.get("status").is_none() {
            job["status"] = json!({"state": job["state"]});
        }
        if job.get("user_email").is_none() {
            job["user_email"] = json!(CREATOR_EMAIL);
        }
        state
            .bq_jobs
            .insert(format!("{project}:{location}.{job_id}"), job);
    }
    Ok(jobs.len())
}

/// `minCreationTime` / `maxCreationTime`: uint64 epoch milliseconds.
fn creation_bound(call: &Call<'_>, name: &str) -> Result<Option<i64>, ApiError> {
    call.query.non_empty(name).map_or(Ok(None), |raw| {
        raw.parse::<u64>()
            .ok()
            .and_then(|ms| i64::try_from(ms).ok())
            .map(Some)
            .ok_or_else(|| bad_request(format!("Invalid value for {name}: {raw}")))
    })
}

/// The fields a `projection=minimal` list entry leaves out (the discovery doc marks them
/// full-projection-only; minimal "does not include the job configuration").
const FULL_PROJECTION_ONLY: &[&str] =
    &["configuration", "status", "user_email", "principal_subject"];

/// `jobs.list`: top-level jobs (or the children of `parentJobId`) of the caller, or of every user
/// with `allUsers=true`, filtered by the repeated `stateFilter` (done, pending, running) and the
/// creation-time bounds, newest first.
pub fn list_jobs(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let prefix = format!("{}:", call.param("projectsId")?);
    let states = call
        .query
        .all("stateFilter")
        .into_iter()
        .map(|raw| match raw.to_ascii_lowercase().as_str() {
            state @ ("done" | "pending" | "running") => Ok(state.to_ascii_uppercase()),
            _ => Err(bad_request(format!("Invalid value for stateFilter: {raw}"))),
        })
        .collect::<Result<Vec<String>, ApiError>>()?;
    let (min, max) = (
        creation_bound(call, "minCreationTime")?,
        creation_bound(call, "maxCreationTime")?,
    );
    let all_users = call.query_bool("allUsers")?;
    let parent = call.query.non_empty("parentJobId");
    let full = match call.query.non_empty("projection") {
        None | Some("minimal") => false,
        Some("full") => true,
        Some(other) => {
            return Err(bad_request(format!(
                "Invalid value for projection: {other}"
            )));
        }
    };
    let mut jobs: Vec<(String, Value)> =
        super::collection::entries_under(&context.state.bq_jobs, &prefix)
            .filter_map(|(k, job)| {
                let text = |pointer: &str| job.pointer(pointer).and_then(Value::as_str);
                let state = text("/state").unwrap_or_default().to_ascii_uppercase();
                let created = job
                    .pointer("/statistics/creationTime")
                    .and_then(int64_value);
                let listed = (states.is_empty() || states.contains(&state))
                    && min.is_none_or(|m| created.is_some_and(|c| c >= m))
                    && max.is_none_or(|m| created.is_some_and(|c| c <= m))
                    && (all_users || text("/user_email") == Some(CREATOR_EMAIL))
                    && text("/statistics/parentJobId") == parent;
                if !listed {
                    return None;
                }
                let mut job = job.clone();
                if !full && let Some(entry) = job.as_object_mut() {
                    for field in FULL_PROJECTION_ONLY {
                        entry.remove(*field);
                    }
                }
                // Newest first: the page key orders by descending creation time, then by id.
                let newest_first = i64::MAX - created.unwrap_or(0).max(0);
                Some((format!("{newest_first:020}/{k}"), job))
            })
            .collect();
    jobs.sort_by(|a, b| a.0.cmp(&b.0));
    let page = paginate(jobs, |(k, _)| k.as_str(), call.query, JOBS_POLICY)?;
    let mut response = json!({"kind": "bigquery#jobList", "etag": new_etag(&prefix, "jobs", 0)});
    response["jobs"] = Value::Array(page.items.into_iter().map(|(_, j)| j).collect());
    if let Some(token) = page.next_page_token {
        response["nextPageToken"] = json!(token);
    }
    Ok(Reply::Json(response))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::server::testing::TestEmulator;

    const BASE: &str = "/bigquery/v2/projects/p1";

    async fn send_with(
        emulator: &TestEmulator,
        method: &str,
        path: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let response = emulator
            .raw(
                method,
                path,
                serde_json::to_vec(&body).expect("json"),
                headers,
            )
            .await;
        (
            response.status,
            serde_json::from_slice(&response.body).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn datasets_echo_defaults_refuse_stale_etags_and_guard_deletes() {
        let emulator = TestEmulator::with_polls(0);
        let (status, dataset) = emulator
            .send(
                "POST",
                &format!("{BASE}/datasets"),
                Some(
                    json!({"datasetReference": {"datasetId": "raw", "projectId": "p1"},
                "labels": {"stack": "prod"}, "defaultPartitionExpirationMs": 86400000}),
                ),
            )
            .await;
        assert_eq!(status, 200, "{dataset}");
        assert_eq!(dataset["id"], "p1:raw");
        assert_eq!(dataset["location"], "US");
        assert_eq!(dataset["kind"], "bigquery#dataset");
        assert_eq!(dataset["defaultPartitionExpirationMs"], "86400000");
        assert_eq!(dataset["access"].as_array().map(Vec::len), Some(4));
        assert!(
            dataset["creationTime"]
                .as_str()
                .is_some_and(|t| t.len() == 13)
        );
        let etag = dataset["etag"].as_str().unwrap_or_default().to_string();
        let (status, error) = emulator
            .send(
                "POST",
                &format!("{BASE}/datasets"),
                Some(json!({"datasetReference": {"datasetId": "raw"}})),
            )
            .await;
        assert_eq!(
            (
                status,
                error["error"]["errors"][0]["reason"].clone(),
                error["error"]["status"].clone()
            ),
            (409, json!("duplicate"), json!("ALREADY_EXISTS"))
        );
        let (status, _) = emulator
            .send(
                "POST",
                &format!("{BASE}/datasets"),
                Some(json!({"datasetReference": {"datasetId": "bad-id"}})),
            )
            .await;
        assert_eq!(status, 400);

        let (status, patched) = send_with(
            &emulator,
            "PATCH",
            &format!("{BASE}/datasets/raw"),
            json!({"labels": {"team": "data", "stack": null}}),
            &[("if-match", &etag)],
        )
        .await;
        assert_eq!(status, 200, "{patched}");
        assert_eq!(patched["labels"], json!({"team": "data"}));
        let (status, stale) = send_with(
            &emulator,
            "PATCH",
            &format!("{BASE}/datasets/raw"),
            json!({"description": "x"}),
            &[("if-match", &etag)],
        )
        .await;
        assert_eq!(
            (status, stale["error"]["message"].clone()),
            (412, json!("Precondition check failed."))
        );

        let (status, table) = emulator.send("POST", &format!("{BASE}/datasets/raw/tables"), Some(json!({
            "tableReference": {"projectId": "p1", "datasetId": "raw", "tableId": "events"},
            "schema": {"fields": [{"name": "ts", "type": "TIMESTAMP", "mode": "REQUIRED"}, {"name": "n", "type": "INT64"},
                                  {"name": "attrs", "type": "STRUCT", "fields": [{"name": "k", "type": "STRING"}]}]},
            "timePartitioning": {"type": "DAY", "field": "ts"}, "clustering": {"fields": ["n"]}, "requirePartitionFilter": true}))).await;
        assert_eq!(status, 200, "{table}");
        assert_eq!(table["id"], "p1:raw.events");
        assert_eq!(table["type"], "TABLE");
        assert_eq!(
            (table["numRows"].clone(), table["numBytes"].clone()),
            (json!("0"), json!("0"))
        );
        assert_eq!(
            table["schema"]["fields"][1],
            json!({"name": "n", "type": "INTEGER", "mode": "NULLABLE"})
        );
        assert_eq!(table["schema"]["fields"][2]["type"], "RECORD");
        assert_eq!(
            table["timePartitioning"],
            json!({"type": "DAY", "field": "ts", "expirationMs": "86400000"}),
            "dataset default applies"
        );

        let (status, error) = emulator
            .send(
                "PATCH",
                &format!("{BASE}/datasets/raw/tables/events"),
                Some(json!({"timePartitioning": {"type": "HOUR", "field": "ts"}})),
            )
            .await;
        assert_eq!(
            (status, error["error"]["message"].clone()),
            (
                400,
                json!("Cannot change partitioning spec for a partitioned table.")
            )
        );
        let (status, error) = emulator
            .send(
                "PATCH",
                &format!("{BASE}/datasets/raw/tables/events"),
                Some(json!({"schema": {"fields": [{"name": "ts", "type": "TIMESTAMP"}]}})),
            )
            .await;
        assert_eq!(status, 400);
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(
                    "Provided Schema does not match Table p1:raw.events. Field n is missing"
                )),
            "{error}"
        );
        let (status, relaxed) = emulator.send("PATCH", &format!("{BASE}/datasets/raw/tables/events"), Some(json!({
            "schema": {"fields": [{"name": "ts", "type": "TIMESTAMP", "mode": "NULLABLE"}, {"name": "n", "type": "INTEGER"},
                                  {"name": "attrs", "type": "RECORD", "fields": [{"name": "k", "type": "STRING"}]}, {"name": "extra", "type": "STRING", "mode": "REPEATED"}]},
            "clustering": {"fields": ["extra", "n"]}}))).await;
        assert_eq!(status, 200, "{relaxed}");
        assert_eq!(relaxed["clustering"]["fields"], json!(["extra", "n"]));
        let (status, _) = emulator.send("PATCH", &format!("{BASE}/datasets/raw/tables/events"), Some(json!({
            "schema": {"fields": [{"name": "ts", "type": "TIMESTAMP"}, {"name": "n", "type": "INTEGER"},
                                  {"name": "attrs", "type": "RECORD", "fields": [{"name": "k", "type": "STRING"}]}, {"name": "extra", "type": "STRING", "mode": "REPEATED"},
                                  {"name": "req", "type": "STRING", "mode": "REQUIRED"}]}}))).await;
        assert_eq!(status, 400, "required columns cannot be added");

        let (status, view) = emulator
            .send(
                "POST",
                &format!("{BASE}/datasets/raw/tables"),
                Some(json!({
            "tableReference": {"tableId": "daily"}, "materializedView": {"query": "SELECT 1"}})),
            )
            .await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["type"], "MATERIALIZED_VIEW");
        assert_eq!(view["materializedView"]["refreshIntervalMs"], "1800000");
        let (_, list) = emulator
            .send(
                "GET",
                &format!("{BASE}/datasets/raw/tables?maxResults=1"),
                None,
            )
            .await;
        assert_eq!(
            (
                list["totalItems"].clone(),
                list["tables"].as_array().map(Vec::len)
            ),
            (json!(2), Some(1))
        );
        assert!(list["nextPageToken"].is_string());

        let (status, in_use) = emulator
            .send("DELETE", &format!("{BASE}/datasets/raw"), None)
            .await;
        assert_eq!(
            (status, in_use["error"]["message"].clone()),
            (400, json!("Dataset p1:raw is still in use"))
        );
        let response = emulator
            .raw(
                "DELETE",
                &format!("{BASE}/datasets/raw?deleteContents=true"),
                Vec::new(),
                &[],
            )
            .await;
        assert_eq!(response.status, 204);
        let (status, missing) = emulator
            .send("GET", &format!("{BASE}/datasets/raw/tables/events"), None)
            .await;
        assert_eq!(
            (status, missing["error"]["errors"][0]["reason"].clone()),
            (404, json!("notFound"))
        );
    }

    #[tokio::test]
    async fn seeded_jobs_list_like_the_discovery_doc_says() {
        let emulator = TestEmulator::with_polls(0);
        let seed = json!({"project": "p1", "jobs": [
            {"jobReference": {"jobId": "j1"}, "statistics": {"creationTime": "1000", "query": {"totalBytesBilled": "10485760",
             "referencedTables": [{"projectId": "p1", "datasetId": "raw", "tableId": "events"}]}}, "configuration": {"query": {"query": "SELECT 1"}}},
            {"jobReference": {"jobId": "j2"}, "state": "RUNNING", "statistics": {"creationTime": "2000"}},
            {"jobReference": {"jobId": "script"}, "user_email": "analyst@example.com",
             "statistics": {"creationTime": "3000", "numChildJobs": "1"}},
            {"jobReference": {"jobId": "script_0"}, "user_email": "analyst@example.com",
             "statistics": {"creationTime": "3001", "parentJobId": "script"}}]});
        let (status, _) = emulator
            .send("POST", "/_emulator/bigquery/jobs", Some(seed))
            .await;
        assert_eq!(status, 200);
        let ids = |list: &Value| -> Vec<String> {
            list["jobs"]
                .as_array()
                .map(|jobs| {
                    jobs.iter()
                        .map(|j| {
                            j["jobReference"]["jobId"]
                                .as_str()
                                .unwrap_or("")
                                .to_string()
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let emulator = &emulator;
        let list = |query: &str| {
            let path = format!("{BASE}/jobs?{query}");
            async move { emulator.send("GET", &path, None).await }
        };

        // Every user's top-level jobs, newest first; children only under their parent.
        let (_, all) = list("allUsers=true&projection=full").await;
        assert_eq!(ids(&all), ["script", "j2", "j1"]);
        assert_eq!(
            all["jobs"][2]["statistics"]["query"]["referencedTables"][0]["tableId"],
            "events"
        );
        assert_eq!(all["jobs"][0]["user_email"], "analyst@example.com");
        let (_, children) = list("allUsers=true&parentJobId=script").await;
        assert_eq!(ids(&children), ["script_0"]);
        // Without allUsers: the caller's own jobs only.
        let (_, own) = list("projection=full").await;
        assert_eq!(ids(&own), ["j2", "j1"]);

        let (_, done) = list("stateFilter=done&minCreationTime=500&maxCreationTime=1500").await;
        assert_eq!(ids(&done), ["j1"]);
        assert!(
            done["jobs"][0].get("configuration").is_none()
                && done["jobs"][0].get("user_email").is_none(),
            "minimal projection leaves out the configuration and the full-projection-only fields"
        );
        assert_eq!(done["jobs"][0]["state"], "DONE");
        let (_, either) =
            list("allUsers=true&stateFilter=done&stateFilter=running&minCreationTime=1500").await;
        assert_eq!(ids(&either), ["script", "j2"]);
        let (_, page) = list("allUsers=true&maxResults=2").await;
        let token = page["nextPageToken"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (_, rest) = list(&format!("allUsers=true&maxResults=2&pageToken={token}")).await;
        assert_eq!(
            (ids(&page), ids(&rest)),
            (vec!["script".into(), "j2".into()], vec!["j1".into()])
        );
        for bad in [
            "stateFilter=finished",
            "minCreationTime=-1",
            "projection=all",
            "allUsers=yes",
        ] {
            let (status, _) = list(bad).await;
            assert_eq!(status, 400, "{bad}");
        }
    }

    #[tokio::test]
    async fn seeded_table_storage_is_what_tables_get_reports() {
        let emulator = TestEmulator::with_polls(0);
        emulator
            .send(
                "POST",
                &format!("{BASE}/datasets"),
                Some(json!({"datasetReference": {"datasetId": "raw"}})),
            )
            .await;
        let (status, _) = emulator.send("POST", &format!("{BASE}/datasets/raw/tables"), Some(json!({
            "tableReference": {"tableId": "archive"}, "schema": {"fields": [{"name": "n", "type": "INT64"}]}}))).await;
        assert_eq!(status, 200);
        let seed = json!({"project": "p1", "tables": [{"datasetId": "raw", "tableId": "archive",
            "numBytes": "3000", "numLongTermBytes": 1000, "creationTime": "1700000000000"}]});
        let (status, answer) = emulator
            .send("POST", "/_emulator/bigquery/tables", Some(seed))
            .await;
        assert_eq!((status, answer), (200, json!({"tables": 1})));
        let (_, table) = emulator
            .send("GET", &format!("{BASE}/datasets/raw/tables/archive"), None)
            .await;
        let counters = [
            "numBytes",
            "numTotalLogicalBytes",
            "numLongTermBytes",
            "numLongTermLogicalBytes",
            "numActiveLogicalBytes",
            "creationTime",
        ]
        .map(|field| table[field].clone());
        assert_eq!(
            counters,
            ["3000", "3000", "1000", "1000", "2000", "1700000000000"].map(|v| json!(v))
        );
        let missing = json!({"project": "p1", "tables": [{"datasetId": "raw", "tableId": "nope", "numBytes": "1"}]});
        let (status, _) = emulator
            .send("POST", "/_emulator/bigquery/tables", Some(missing))
            .await;
        assert_eq!(status, 400);
    }
}

//! BigQuery table data: partitions (decorators `table$YYYYMMDD`, the partition each row falls
//! in, partition expiration), `tabledata.insertAll` (streaming inserts with best-effort
//! `insertId` dedupe), `tabledata.list`, and the table counters (`numRows`, `numBytes`) that
//! follow the stored rows. Rows live in [`crate::table_rows`], apart from the state file.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::bigquery::{bad_request, new_etag, table_key, table_not_found};
use super::bigquery_values::{self as values, Row};
use super::{Call, Context, Reply};
use crate::conventions::ApiError;
use crate::conventions::paging::{PagePolicy, paginate};
use crate::table_rows::{Partitions, TableRows};

/// The partition of rows of a table that is not partitioned (and of range-partitioned rows
/// outside every range).
pub const UNPARTITIONED: &str = "__UNPARTITIONED__";
/// The partition of rows whose partitioning column is NULL.
const NULL_PARTITION: &str = "__NULL__";
/// How long an `insertId` is remembered for dedupe ("about a minute", best effort).
const INSERT_ID_WINDOW_SECS: i64 = 60;

const TABLEDATA_POLICY: PagePolicy = PagePolicy {
    default_size: 100_000,
    max_size: 100_000,
    size_param: "maxResults",
    token_kind: "tabledata",
};

pub(super) fn storage_error(key: &str, error: &std::io::Error) -> ApiError {
    ApiError::internal(format!("Cannot store the rows of table {key}: {error}"))
}

/// `table$PARTITION` -> (`table`, `Some(PARTITION)`).
pub(super) fn split_decorator(table_id: &str) -> (&str, Option<&str>) {
    match table_id.split_once('$') {
        Some((table, partition)) => (table, Some(partition)),
        None => (table_id, None),
    }
}

/// How a table assigns rows to partitions.
#[derive(Debug, Clone)]
pub(super) enum Partitioning {
    None,
    /// By the time rows arrive (or the decorator they are written to).
    Ingestion {
        granularity: String,
        expiration_ms: Option<i64>,
    },
    /// By a TIMESTAMP, DATE or DATETIME column.
    Column {
        field: String,
        kind: String,
        granularity: String,
        expiration_ms: Option<i64>,
    },
    /// By an INTEGER column in `[start, end)` buckets of `interval`.
    Range {
        field: String,
        start: i64,
        end: i64,
        interval: i64,
    },
}

impl Partitioning {
    pub(super) fn of(table: &Value) -> Self {
        let int = |v: Option<&Value>| v.and_then(super::bigquery::int64_value);
        if let Some(time) = table.get("timePartitioning") {
            let granularity = time
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("DAY")
                .to_string();
            let expiration_ms = int(time.get("expirationMs"));
            return match time.get("field").and_then(Value::as_str) {
                Some(field) => {
                    let kind = table
                        .pointer("/schema/fields")
                        .and_then(Value::as_array)
                        .and_then(|fields| fields.iter().find(|f| f["name"] == field))
                        .and_then(|f| f["type"].as_str())
                        .unwrap_or("TIMESTAMP")
                        .to_string();
                    Self::Column {
                        field: field.to_string(),
                        kind,
                        granularity,
                        expiration_ms,
                    }
                }
                None => Self::Ingestion {
                    granularity,
                    expiration_ms,
                },
            };
        }
        if let Some(range) = table.get("rangePartitioning") {
            return Self::Range {
                field: range["field"].as_str().unwrap_or_default().to_string(),
                start: int(range.pointer("/range/start")).unwrap_or(0),
                end: int(range.pointer("/range/end")).unwrap_or(0),
                interval: int(range.pointer("/range/interval")).unwrap_or(1).max(1),
            };
        }
        Self::None
    }

    /// The partition a row falls in when written without a decorator at `now`.
    pub(super) fn partition_of(&self, row: &Row, now: DateTime<Utc>) -> String {
        match self {
            Self::None => UNPARTITIONED.into(),
            Self::Ingestion { granularity, .. } => {
                values::time_partition_id(now.naive_utc(), granularity)
            }
            Self::Column {
                field,
                kind,
                granularity,
                ..
            } => row
                .get(field)
                .and_then(|v| values::stored_instant(kind, v))
                .map_or_else(
                    || NULL_PARTITION.into(),
                    |at| values::time_partition_id(at, granularity),
                ),
            Self::Range {
                field,
                start,
                end,
                interval,
            } => match row
                .get(field)
                .and_then(Value::as_str)
                .and_then(|v| v.parse::<i64>().ok())
            {
                None => NULL_PARTITION.into(),
                Some(v) if v < *start || v >= *end => UNPARTITIONED.into(),
                Some(v) => (start + (v - start) / interval * interval).to_string(),
            },
        }
    }

    /// Whether `decorator` names a partition of this table; the error is BigQuery's.
    pub(super) fn check_decorator(&self, key: &str, decorator: &str) -> Result<(), String> {
        let digits = match self {
            Self::None => {
                return Err(format!(
                    "Cannot read partition information from a table that is not partitioned: {key}${decorator}"
                ));
            }
            Self::Range { .. } => {
                return if decorator.parse::<i64>().is_ok() || decorator == NULL_PARTITION {
                    Ok(())
                } else {
                    Err(format!(
                        "Invalid range partition decorator: {key}${decorator}"
                    ))
                };
            }
            Self::Ingestion { granularity, .. } | Self::Column { granularity, .. } => {
                match granularity.as_str() {
                    "HOUR" => 10,
                    "MONTH" => 6,
                    "YEAR" => 4,
                    _ => 8,
                }
            }
        };
        let valid = decorator == NULL_PARTITION
            || (decorator.len() == digits && values::partition_start(decorator).is_some());
        if valid {
            Ok(())
        } else {
            Err(format!(
                "Invalid partition decorator {decorator} for table {key}: expected a partition of its {} partitioning.",
                match self {
                    Self::Ingestion { granularity, .. } | Self::Column { granularity, .. } =>
                        granularity.as_str(),
                    _ => "",
                }
            ))
        }
    }

    /// Whether a rows written to `decorator` must fall in it (column and range partitioning)
    /// rather than being put there (ingestion time).
    pub(super) fn rows_choose_partition(&self) -> bool {
        matches!(self, Self::Column { .. } | Self::Range { .. })
    }

    /// A time partition is gone once its start plus the table's `expirationMs` has passed.
    fn expired(&self, partition: &str, now: DateTime<Utc>) -> bool {
        let expiration_ms = match self {
            Self::Ingestion { expiration_ms, .. } | Self::Column { expiration_ms, .. } => {
                *expiration_ms
            }
            _ => None,
        };
        let (Some(ms), Some(start)) = (expiration_ms, values::partition_start(partition)) else {
            return false;
        };
        start + chrono::Duration::milliseconds(ms) <= now.naive_utc()
    }
}

/// The live partitions of a table (expired ones left out), or only `decorator`'s.
fn visible<'a>(
    rows: &'a TableRows,
    partitioning: &Partitioning,
    decorator: Option<&str>,
    now: DateTime<Utc>,
) -> impl Iterator<Item = (&'a String, &'a Vec<Value>)> {
    rows.partitions.iter().filter(move |(partition, _)| {
        decorator.is_none_or(|d| d == partition.as_str()) && !partitioning.expired(partition, now)
    })
}

/// Row and logical-byte counts of a table's live rows (of `decorator`'s partition only).
pub(super) fn counts(
    rows: &TableRows,
    table: &Value,
    decorator: Option<&str>,
    now: DateTime<Utc>,
) -> (u64, u64) {
    let partitioning = Partitioning::of(table);
    let fields = table.pointer("/schema/fields").unwrap_or(&Value::Null);
    visible(rows, &partitioning, decorator, now).fold((0, 0), |(n, bytes), (_, partition)| {
        let partition_bytes: u64 = partition
            .iter()
            .filter_map(Value::as_object)
            .map(|row| values::row_bytes(fields, row))
            .sum();
        (n + partition.len() as u64, bytes + partition_bytes)
    })
}

/// A table as `tables.get` answers it: once rows were written, `numRows`, `numBytes` and the
/// logical-bytes counters are those of its live rows.
pub(super) fn with_row_counters(
    context: &Context<'_>,
    key: &str,
    mut table: Value,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let counted = context
        .table_rows
        .with_table(key, |rows| {
            Ok(rows.written().then(|| counts(rows, &table, None, now)))
        })
        .map_err(|e| storage_error(key, &e))?;
    if let Some((rows, bytes)) = counted {
        let long_term = table
            .get("numLongTermBytes")
            .and_then(super::bigquery::int64_value)
            .unwrap_or(0)
            .min(bytes as i64);
        for (field, value) in [
            ("numRows", rows as i64),
            ("numBytes", bytes as i64),
            ("numTotalLogicalBytes", bytes as i64),
            ("numActiveLogicalBytes", bytes as i64 - long_term),
        ] {
            table[field] = json!(value.to_string());
        }
    }
    Ok(table)
}

/// The table a data method addresses (its path may carry a partition decorator).
fn addressed_table<'c>(
    context: &'c Context<'_>,
    call: &Call<'_>,
) -> Result<(String, &'c Value, Option<String>), ApiError> {
    let (project, dataset) = (call.param("projectsId")?, call.param("datasetsId")?);
    let (table_id, decorator) = split_decorator(call.param("tablesId")?);
    let key = table_key(project, dataset, table_id);
    let table = context
        .state
        .bq_tables
        .get(&key)
        .ok_or_else(|| table_not_found(&key))?;
    if let Some(decorator) = decorator {
        Partitioning::of(table)
            .check_decorator(&key, decorator)
            .map_err(bad_request)?;
    }
    Ok((key, table, decorator.map(str::to_string)))
}

fn insert_error(index: usize, reason: &str, location: &str, message: &str) -> Value {
    json!({"index": index, "errors": [
        {"reason": reason, "location": location, "debugInfo": "", "message": message}]})
}

/// `tabledata.insertAll`: every valid row lands (with `skipInvalidRows`) or none does; each bad
/// row is named in `insertErrors`, and without `skipInvalidRows` the good ones are reported
/// `stopped`. A row whose `insertId` was seen in the last minute is dropped (best effort).
pub fn insert_all(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let (key, table, decorator) = addressed_table(context, call)?;
    let body = call.body_or_empty();
    if body
        .get("templateSuffix")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return Err(ApiError::unimplemented(
            "templateSuffix is not supported by this emulator.",
        ));
    }
    let fields = table
        .pointer("/schema/fields")
        .cloned()
        .ok_or_else(|| bad_request(format!("The destination table {key} has no schema.")))?;
    let partitioning = Partitioning::of(table);
    let skip_invalid = body["skipInvalidRows"].as_bool().unwrap_or(false);
    let ignore_unknown = body["ignoreUnknownValues"].as_bool().unwrap_or(false);
    let requests = body["rows"].as_array().cloned().unwrap_or_default();
    let mut accepted: Vec<(usize, Option<String>, String, Row)> = Vec::new();
    let mut errors = Vec::new();
    for (index, request) in requests.iter().enumerate() {
        let checked = values::row_from_json(
            &fields,
            request.get("json").unwrap_or(&Value::Null),
            ignore_unknown,
        );
        let row = match checked {
            Ok(row) => row,
            Err(error) => {
                errors.push(insert_error(
                    index,
                    "invalid",
                    &error.location,
                    &error.insert_message(),
                ));
                continue;
            }
        };
        let partition = match &decorator {
            Some(d) if !partitioning.rows_choose_partition() => d.clone(),
            _ => partitioning.partition_of(&row, call.now),
        };
        if let Some(d) = decorator.as_deref()
            && d != partition
        {
            errors.push(insert_error(
                index,
                "invalid",
                "",
                &format!("The row belongs to partition {partition}, not to the destination partition {d}."),
            ));
            continue;
        }
        let insert_id = request
            .get("insertId")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_string);
        accepted.push((index, insert_id, partition, row));
    }
    if !errors.is_empty() && !skip_invalid {
        for (index, ..) in &accepted {
            errors.push(insert_error(*index, "stopped", "", ""));
        }
        errors.sort_by_key(|e| e["index"].as_u64());
        return Ok(Reply::Json(
            json!({"kind": "bigquery#tableDataInsertAllResponse", "insertErrors": errors}),
        ));
    }
    let mut batch = Partitions::new();
    let mut recent = crate::lock(context.table_rows.insert_ids());
    recent.retain(|_, seen| (call.now - *seen).num_seconds() < INSERT_ID_WINDOW_SECS);
    let mut remembered = Vec::new();
    for (_, insert_id, partition, row) in accepted {
        if let Some(id) = insert_id {
            let id_key = (key.clone(), id);
            if recent.contains_key(&id_key) || remembered.contains(&id_key) {
                continue;
            }
            remembered.push(id_key);
        }
        batch.entry(partition).or_default().push(Value::Object(row));
    }
    context
        .table_rows
        .with_table(&key, |rows| rows.append(batch))
        .map_err(|e| storage_error(&key, &e))?;
    for id_key in remembered {
        recent.insert(id_key, call.now);
    }
    let mut response = json!({"kind": "bigquery#tableDataInsertAllResponse"});
    if !errors.is_empty() {
        response["insertErrors"] = Value::Array(errors);
    }
    Ok(Reply::Json(response))
}

/// The schema fields `selectedFields` names (top-level, comma-separated), in its order.
fn selected_fields(fields: &[Value], selection: Option<&str>) -> Result<Vec<Value>, ApiError> {
    let Some(selection) = selection else {
        return Ok(fields.to_vec());
    };
    selection
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            fields
                .iter()
                .find(|f| {
                    f["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
                .cloned()
                .ok_or_else(|| {
                    bad_request(format!(
                        "Invalid field selection {name}: the table has no such top-level field."
                    ))
                })
        })
        .collect()
}

/// `tabledata.list`: the live rows (of the decorator's partition), partition by partition in
/// the order they were written, paged by `maxResults` and `pageToken` (or `startIndex`).
pub fn list_rows(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let (key, table, decorator) = addressed_table(context, call)?;
    if table["type"] != "TABLE" {
        return Err(bad_request(format!(
            "Cannot list rows of {key}: it is a {}.",
            table["type"].as_str().unwrap_or("view")
        )));
    }
    let schema_fields = table
        .pointer("/schema/fields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let fields = selected_fields(&schema_fields, call.query.non_empty("selectedFields"))?;
    let int64_timestamps = call
        .query
        .non_empty("formatOptions.useInt64Timestamp")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let start_index = match call.query.non_empty("startIndex") {
        Some(raw) if call.query.non_empty("pageToken").is_none() => raw
            .parse::<usize>()
            .map_err(|_| bad_request(format!("Invalid value for startIndex: {raw}")))?,
        _ => 0,
    };
    let partitioning = Partitioning::of(table);
    let (total, page) = context
        .table_rows
        .with_table(&key, |rows| {
            let keyed: Vec<(String, &Value)> =
                visible(rows, &partitioning, decorator.as_deref(), call.now)
                    .flat_map(|(partition, rows)| {
                        rows.iter()
                            .enumerate()
                            .map(move |(i, row)| (format!("{partition}/{i:012}"), row))
                    })
                    .collect();
            let total = keyed.len();
            let keyed: Vec<_> = keyed.into_iter().skip(start_index).collect();
            let page =
                paginate(keyed, |(k, _)| k.as_str(), call.query, TABLEDATA_POLICY).map(|page| {
                    let rows: Vec<Value> = page
                        .items
                        .iter()
                        .map(|(_, row)| {
                            let empty = Map::new();
                            let row = row.as_object().unwrap_or(&empty);
                            values::wire_row(&fields, row, int64_timestamps)
                        })
                        .collect();
                    (rows, page.next_page_token)
                });
            Ok((total, page))
        })
        .map_err(|e| storage_error(&key, &e))?;
    let (rows, next_page_token) = page?;
    let mut response = json!({
        "kind": "bigquery#tableDataList",
        "etag": new_etag(&key, &total.to_string(), 0),
        "totalRows": total.to_string(),
    });
    if !rows.is_empty() {
        response["rows"] = Value::Array(rows);
    }
    if let Some(token) = next_page_token {
        response["pageToken"] = json!(token);
    }
    Ok(Reply::Json(response))
}

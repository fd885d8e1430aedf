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
const UNPARTITIONED: &str = "__UNPARTITIONED__";
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
        let granularity = match self {
            Self::None => {
                return Err(format!(
                    "Cannot read partition information from a table that is not partitioned: {key}${decorator}"
                ));
            }
            Self::Range { .. } if decorator.parse::<i64>().is_ok() => return Ok(()),
            Self::Range { .. } => "RANGE",
            Self::Ingestion { granularity, .. } | Self::Column { granularity, .. } => granularity,
        };
        let digits = match granularity {
            "HOUR" => 10,
            "MONTH" => 6,
            "YEAR" => 4,
            _ => 8,
        };
        let valid = decorator == NULL_PARTITION
            || (granularity != "RANGE"
                && decorator.len() == digits
                && values::partition_start(decorator).is_some());
        if valid {
            Ok(())
        } else {
            Err(format!(
                "Invalid partition decorator {decorator} for table {key} partitioned by {granularity}."
            ))
        }
    }

    /// Whether rows written to `decorator` must fall in it (column and range partitioning)
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

/// Row and logical-byte counts of a table's live rows (of `decorator`'s partition only); the
/// bytes of a partition are counted again only after it changed.
pub(super) fn counts(
    rows: &mut TableRows,
    table: &Value,
    decorator: Option<&str>,
    now: DateTime<Utc>,
) -> (u64, u64) {
    let partitioning = Partitioning::of(table);
    let fields = table.pointer("/schema/fields").unwrap_or(&Value::Null);
    if rows.byte_counts_schema != *fields {
        rows.byte_counts.clear();
        rows.byte_counts_schema = fields.clone();
    }
    let live: Vec<String> = visible(rows, &partitioning, decorator, now)
        .map(|(partition, _)| partition.clone())
        .collect();
    let (mut total_rows, mut total_bytes) = (0, 0);
    for partition in live {
        let stored = rows
            .partitions
            .get(&partition)
            .map_or(&[][..], Vec::as_slice);
        total_rows += stored.len() as u64;
        total_bytes += match rows.byte_counts.get(&partition) {
            Some(bytes) => *bytes,
            None => {
                let bytes = stored
                    .iter()
                    .filter_map(Value::as_object)
                    .map(|row| values::row_bytes(fields, row))
                    .sum();
                rows.byte_counts.insert(partition, bytes);
                bytes
            }
        };
    }
    (total_rows, total_bytes)
}

/// A table as `tables.get` answers it: once rows were written, `numRows`, `numBytes` and the
/// logical-bytes counters are those of its live rows (of `decorator`'s partition only).
pub(super) fn with_row_counters(
    context: &Context<'_>,
    key: &str,
    mut table: Value,
    decorator: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let counted = context
        .table_rows
        .with_table(key, |rows| {
            let counted = rows.written() || decorator.is_some();
            Ok(counted.then(|| counts(rows, &table, decorator, now)))
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

/// The table a path addresses, and the partition its decorator names, if any.
pub(super) fn addressed_table<'c>(
    context: &'c Context<'_>,
    call: &Call<'_>,
) -> Result<(String, &'c Value, Option<String>), ApiError> {
    super::bigquery::existing_dataset(context, call)?;
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::server::testing::TestEmulator;

    const TABLES: &str = "/bigquery/v2/projects/p1/datasets/raw/tables";

    async fn with_table(table: Value) -> TestEmulator {
        let emulator = TestEmulator::with_polls(0);
        emulator
            .send(
                "POST",
                "/bigquery/v2/projects/p1/datasets",
                Some(json!({"datasetReference": {"datasetId": "raw"}})),
            )
            .await;
        let (status, created) = emulator.send("POST", TABLES, Some(table)).await;
        assert_eq!(status, 200, "{created}");
        emulator
    }

    fn events() -> Value {
        json!({"tableReference": {"tableId": "events"},
               "schema": {"fields": [{"name": "n", "type": "INTEGER", "mode": "REQUIRED"},
                                     {"name": "note", "type": "STRING"}]},
               "timePartitioning": {"type": "DAY", "expirationMs": "172800000"}})
    }

    async fn insert(emulator: &TestEmulator, table: &str, body: Value) -> Value {
        let (status, answer) = emulator
            .send("POST", &format!("{TABLES}/{table}/insertAll"), Some(body))
            .await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    async fn listed(emulator: &TestEmulator, query: &str) -> Value {
        let (status, list) = emulator
            .send("GET", &format!("{TABLES}/events/data?{query}"), None)
            .await;
        assert_eq!(status, 200, "{list}");
        list
    }

    fn numbers(list: &Value) -> Vec<String> {
        list["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| r["f"][0]["v"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn streaming_inserts_dedupe_skip_or_stop_and_expire_with_their_partition() {
        let emulator = with_table(events()).await;
        let rows = |ids: &[(&str, Value)]| {
            Value::Array(
                ids.iter()
                    .map(|(id, json)| json!({"insertId": id, "json": json}))
                    .collect(),
            )
        };
        insert(
            &emulator,
            "events",
            json!({"rows": rows(&[("a", json!({"n": 1})), ("a", json!({"n": 1}))])}),
        )
        .await;
        insert(
            &emulator,
            "events",
            json!({"rows": rows(&[("a", json!({"n": 1})), ("b", json!({"n": 2}))])}),
        )
        .await;
        assert_eq!(
            numbers(&listed(&emulator, "").await),
            ["1", "2"],
            "insertId a kept once"
        );

        let mixed = rows(&[("c", json!({"n": 3})), ("d", json!({"note": "no n"}))]);
        let stopped = insert(&emulator, "events", json!({"rows": mixed})).await;
        assert_eq!(
            stopped["insertErrors"],
            json!([{"index": 0, "errors": [{"reason": "stopped", "location": "", "debugInfo": "", "message": ""}]},
                   {"index": 1, "errors": [{"reason": "invalid", "location": "n", "debugInfo": "", "message": "Missing required field: n."}]}])
        );
        let skipped = insert(
            &emulator,
            "events",
            json!({"rows": mixed, "skipInvalidRows": true}),
        )
        .await;
        assert_eq!(skipped["insertErrors"][0]["index"], 1);
        let unknown = rows(&[("e", json!({"n": 5, "extra": true}))]);
        insert(
            &emulator,
            "events",
            json!({"rows": unknown, "ignoreUnknownValues": true}),
        )
        .await;
        assert_eq!(numbers(&listed(&emulator, "").await), ["1", "2", "3", "5"]);

        // After a minute an insertId is forgotten; after two days the partition expires.
        emulator
            .emulator
            .runtime
            .clock
            .advance(std::time::Duration::from_secs(61));
        insert(
            &emulator,
            "events",
            json!({"rows": rows(&[("a", json!({"n": 1}))])}),
        )
        .await;
        assert_eq!(listed(&emulator, "").await["totalRows"], "5");
        emulator
            .emulator
            .runtime
            .clock
            .advance(std::time::Duration::from_secs(2 * 86_400));
        let (_, table) = emulator
            .send("GET", &format!("{TABLES}/events"), None)
            .await;
        assert_eq!(
            (&table["numRows"], &table["numBytes"]),
            (&json!("0"), &json!("0"))
        );
        assert_eq!(listed(&emulator, "").await["totalRows"], "0");
    }

    #[tokio::test]
    async fn rows_are_paged_selected_and_read_per_partition() {
        let mut kept = events();
        kept["timePartitioning"] = json!({"type": "DAY"});
        let emulator = with_table(kept.clone()).await;
        let today = chrono::Utc::now().format("%Y%m%d").to_string();
        let batch: Vec<Value> = (1..=5)
            .map(|n| json!({"json": {"n": n, "note": format!("#{n}")}}))
            .collect();
        insert(&emulator, "events", json!({"rows": batch})).await;
        insert(
            &emulator,
            "events$20240101",
            json!({"rows": [{"json": {"n": 6}}]}),
        )
        .await;

        let first = listed(&emulator, "maxResults=4").await;
        assert_eq!(first["totalRows"], "6");
        assert_eq!(numbers(&first), ["6", "1", "2", "3"], "partitions in order");
        let token = first["pageToken"]
            .as_str()
            .expect("a next page")
            .to_string();
        let rest = listed(&emulator, &format!("maxResults=4&pageToken={token}")).await;
        assert_eq!(
            (numbers(&rest), rest.get("pageToken")),
            (vec!["4".into(), "5".into()], None)
        );
        assert_eq!(
            numbers(&listed(&emulator, "startIndex=4").await),
            ["4", "5"]
        );

        let selected = listed(&emulator, "selectedFields=note,n&maxResults=1&startIndex=1").await;
        assert_eq!(selected["rows"], json!([{"f": [{"v": "#1"}, {"v": "1"}]}]));
        let (status, _) = emulator
            .send(
                "GET",
                &format!("{TABLES}/events/data?selectedFields=nope"),
                None,
            )
            .await;
        assert_eq!(status, 400);

        let (_, partition) = emulator
            .send("GET", &format!("{TABLES}/events$20240101/data"), None)
            .await;
        assert_eq!(
            partition["totalRows"], "1",
            "the decorator reads one partition"
        );
        let (_, today_rows) = emulator
            .send("GET", &format!("{TABLES}/events${today}/data"), None)
            .await;
        assert_eq!(today_rows["totalRows"], "5");
        let (_, partition_table) = emulator
            .send("GET", &format!("{TABLES}/events$20240101"), None)
            .await;
        assert_eq!(
            partition_table["numRows"], "1",
            "tables.get counts the partition"
        );
        let (status, _) = emulator
            .send("DELETE", &format!("{TABLES}/events${today}"), None)
            .await;
        assert_eq!(status, 204);
        assert_eq!(
            numbers(&listed(&emulator, "").await),
            ["6"],
            "deleting a decorator deleted that partition only"
        );
        let (status, error) = emulator
            .send("GET", &format!("{TABLES}/events$2024/data"), None)
            .await;
        assert_eq!(
            (status, &error["error"]["errors"][0]["reason"]),
            (400, &json!("invalid"))
        );

        let (status, _) = emulator
            .send("DELETE", &format!("{TABLES}/events"), None)
            .await;
        assert_eq!(status, 204);
        let (status, _) = emulator.send("POST", TABLES, Some(kept)).await;
        assert_eq!(status, 200);
        assert_eq!(
            listed(&emulator, "").await["totalRows"],
            "0",
            "a new table of the same name is empty"
        );
    }

    #[tokio::test]
    async fn integer_ranges_partition_rows() {
        let ranged = json!({"tableReference": {"tableId": "events"},
            "schema": {"fields": [{"name": "n", "type": "INTEGER"}]},
            "rangePartitioning": {"field": "n", "range": {"start": "0", "end": "30", "interval": "10"}}});
        let emulator = with_table(ranged).await;
        let rows: Vec<Value> = [25, 3, 12, 99, 17]
            .iter()
            .map(|n| json!({"json": {"n": n}}))
            .collect();
        insert(&emulator, "events", json!({"rows": rows})).await;
        assert_eq!(
            numbers(&listed(&emulator, "").await),
            ["3", "12", "17", "25", "99"],
            "buckets 0, 10, 20, then __UNPARTITIONED__ for out-of-range values"
        );
        let (_, bucket) = emulator
            .send("GET", &format!("{TABLES}/events$10/data"), None)
            .await;
        assert_eq!(numbers(&bucket), ["12", "17"]);
        let refused = insert(
            &emulator,
            "events$10",
            json!({"rows": [{"json": {"n": 5}}]}),
        )
        .await;
        assert_eq!(refused["insertErrors"][0]["errors"][0]["reason"], "invalid");
    }
}

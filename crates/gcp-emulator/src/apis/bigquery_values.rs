//! BigQuery cell values against a table schema: what loads (NDJSON, CSV) and streaming inserts
//! send, checked and turned into the stored form (one JSON object per row, absent = NULL); the
//! logical bytes BigQuery counts for them; and the `{"f": [{"v": ...}]}` rows `tabledata.list`
//! answers. Time partitioning reads its column here too.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde_json::{Map, Value, json};

/// A stored row: field name -> stored value (NULLs left out).
pub type Row = Map<String, Value>;

/// Why one row was refused, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct CellError {
    /// The field path (`a.b`), empty for the row as a whole.
    pub location: String,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    NoSuchField,
    MissingRequired,
    /// A value that is not of the column's type (`kind` as BigQuery names it in messages).
    BadValue {
        kind: String,
        value: String,
    },
    NotRepeated,
    NotArray,
    NotRecord,
}

impl CellError {
    fn new(location: &str, problem: Problem) -> Self {
        Self {
            location: location.to_string(),
            problem,
        }
    }

    /// The text of a load job's `errors[]` entry (after "Error while reading data, ...").
    pub fn load_message(&self) -> String {
        let field = &self.location;
        match &self.problem {
            Problem::NoSuchField => format!("No such field: {field}."),
            Problem::MissingRequired => format!("Missing required field: {field}."),
            Problem::BadValue { kind, value } => {
                format!("Could not convert value to {kind}. Field: {field}; Value: {value}")
            }
            Problem::NotRepeated => format!("Array specified for non-repeated field: {field}."),
            Problem::NotArray => format!("Repeated field {field} must be an array."),
            Problem::NotRecord => {
                format!("JSON object expected for record field {field}.")
            }
        }
    }

    /// The text of a streaming insert's `insertErrors[].errors[]` entry.
    pub fn insert_message(&self) -> String {
        match &self.problem {
            Problem::NoSuchField => format!("no such field: {}.", self.location),
            Problem::BadValue { kind, value } => {
                format!("Cannot convert value to {kind} (bad value): {value}")
            }
            _ => self.load_message(),
        }
    }
}

fn fields_of(schema_fields: &Value) -> &[Value] {
    schema_fields.as_array().map_or(&[][..], Vec::as_slice)
}

fn text<'a>(field: &'a Value, key: &str) -> &'a str {
    field.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn find_field<'a>(fields: &'a [Value], name: &str) -> Option<&'a Value> {
    fields
        .iter()
        .find(|f| text(f, "name").eq_ignore_ascii_case(name))
}

/// Checks one JSON row (an NDJSON line, an `insertAll` row's `json`) against the schema.
pub fn row_from_json(
    schema_fields: &Value,
    row: &Value,
    ignore_unknown: bool,
) -> Result<Row, CellError> {
    record_from_json(fields_of(schema_fields), row, ignore_unknown, "")
}

fn record_from_json(
    fields: &[Value],
    row: &Value,
    ignore_unknown: bool,
    path: &str,
) -> Result<Row, CellError> {
    let object = row
        .as_object()
        .ok_or_else(|| CellError::new(path, Problem::NotRecord))?;
    for name in object.keys() {
        if find_field(fields, name).is_none() && !ignore_unknown {
            return Err(CellError::new(
                &format!("{path}{name}"),
                Problem::NoSuchField,
            ));
        }
    }
    let mut stored = Row::new();
    for field in fields {
        let name = text(field, "name");
        let location = format!("{path}{name}");
        let value = object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or(&Value::Null, |(_, v)| v);
        if let Some(value) = field_from_json(field, value, ignore_unknown, &location)? {
            stored.insert(name.to_string(), value);
        }
    }
    Ok(stored)
}

fn field_from_json(
    field: &Value,
    value: &Value,
    ignore_unknown: bool,
    location: &str,
) -> Result<Option<Value>, CellError> {
    let mode = text(field, "mode");
    if mode == "REPEATED" {
        let items = match value {
            Value::Null => return Ok(None),
            Value::Array(items) => items,
            _ => return Err(CellError::new(location, Problem::NotArray)),
        };
        let mut stored = Vec::new();
        for item in items {
            if let Some(item) = single_from_json(field, item, ignore_unknown, location)? {
                stored.push(item);
            }
        }
        return Ok((!stored.is_empty()).then_some(Value::Array(stored)));
    }
    if value.is_array() {
        return Err(CellError::new(location, Problem::NotRepeated));
    }
    let stored = single_from_json(field, value, ignore_unknown, location)?;
    if stored.is_none() && mode == "REQUIRED" {
        return Err(CellError::new(location, Problem::MissingRequired));
    }
    Ok(stored)
}

fn single_from_json(
    field: &Value,
    value: &Value,
    ignore_unknown: bool,
    location: &str,
) -> Result<Option<Value>, CellError> {
    if value.is_null() {
        return Ok(None);
    }
    let kind = text(field, "type");
    if kind == "RECORD" {
        let nested = fields_of(field.get("fields").unwrap_or(&Value::Null));
        let record = record_from_json(nested, value, ignore_unknown, &format!("{location}."))?;
        return Ok(Some(Value::Object(record)));
    }
    scalar(kind, value).map(Some).ok_or_else(|| {
        let shown = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string);
        CellError::new(
            location,
            Problem::BadValue {
                kind: message_type_name(kind),
                value: shown,
            },
        )
    })
}

/// How BigQuery names a type in conversion errors.
fn message_type_name(kind: &str) -> String {
    match kind {
        "INTEGER" => "integer".into(),
        "FLOAT" => "double".into(),
        "BOOLEAN" => "boolean".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// A scalar in its stored form: the string `tabledata.list` answers, except TIMESTAMP, stored as
/// integer microseconds since the epoch (a string).
fn scalar(kind: &str, value: &Value) -> Option<Value> {
    let raw = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    let raw = raw.trim();
    let stored = match kind {
        "INTEGER" => match value {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))?
                .to_string(),
            _ => raw.parse::<i64>().ok()?.to_string(),
        },
        "FLOAT" => {
            let float = match raw.to_ascii_lowercase().as_str() {
                "nan" => f64::NAN,
                "infinity" | "inf" | "+infinity" => f64::INFINITY,
                "-infinity" | "-inf" => f64::NEG_INFINITY,
                _ => raw.parse::<f64>().ok()?,
            };
            float_text(float)
        }
        "NUMERIC" | "BIGNUMERIC" | "BIGDECIMAL" | "DECIMAL" => {
            raw.parse::<f64>().ok().filter(|f| f.is_finite())?;
            raw.to_string()
        }
        "BOOLEAN" => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" => "true".into(),
            "false" | "0" => "false".into(),
            _ => return None,
        },
        "STRING" | "GEOGRAPHY" | "INTERVAL" | "RANGE" => match value {
            Value::String(s) => s.clone(),
            _ => raw.to_string(),
        },
        "BYTES" => {
            crate::conventions::wire::base64_decode(raw)?;
            raw.to_string()
        }
        "DATE" => NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()?
            .format("%Y-%m-%d")
            .to_string(),
        "DATETIME" => datetime_text(parse_datetime(raw)?),
        "TIME" => {
            let time = NaiveTime::parse_from_str(raw, "%H:%M:%S%.f").ok()?;
            time.format("%H:%M:%S%.6f")
                .to_string()
                .trim_end_matches(".000000")
                .to_string()
        }
        "TIMESTAMP" => timestamp_micros(value, raw)?.to_string(),
        "JSON" => match value {
            Value::String(s) => {
                serde_json::from_str::<Value>(s).ok()?;
                s.clone()
            }
            other => other.to_string(),
        },
        _ => return None,
    };
    Some(Value::String(stored))
}

fn float_text(float: f64) -> String {
    if float.is_nan() {
        "NaN".into()
    } else if float.is_infinite() {
        if float > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        float.to_string()
    }
}

fn parse_datetime(raw: &str) -> Option<NaiveDateTime> {
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(raw, format).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

fn datetime_text(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
        .trim_end_matches(".000000")
        .to_string()
}

/// A TIMESTAMP: a number of seconds since the epoch, or a date and time with an optional zone
/// (`Z`, `+hh:mm`, ` UTC`; none means UTC).
fn timestamp_micros(value: &Value, raw: &str) -> Option<i64> {
    if let Value::Number(n) = value {
        return Some((n.as_f64()? * 1e6).round() as i64);
    }
    if let Ok(seconds) = raw.parse::<f64>() {
        return Some((seconds * 1e6).round() as i64);
    }
    let trimmed = raw
        .strip_suffix(" UTC")
        .or_else(|| raw.strip_suffix("UTC"))
        .unwrap_or(raw)
        .trim();
    let spaced = trimmed.replacen(' ', "T", 1);
    if let Ok(at) = DateTime::parse_from_rfc3339(&spaced) {
        return Some(at.with_timezone(&Utc).timestamp_micros());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f %#z"] {
        if let Ok(at) = DateTime::parse_from_str(&spaced, format) {
            return Some(at.with_timezone(&Utc).timestamp_micros());
        }
    }
    parse_datetime(trimmed).map(|at| at.and_utc().timestamp_micros())
}

// ---- CSV ----

/// CSV reading options of a load job.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    pub delimiter: char,
    pub quote: Option<char>,
    pub skip_leading_rows: usize,
    pub allow_jagged_rows: bool,
}

/// Splits CSV text into records (with the byte position each starts at); quoted cells may hold
/// delimiters, doubled quotes and newlines. `None` cells were empty and unquoted (NULL).
pub fn csv_records(data: &str, options: &CsvOptions) -> Vec<(usize, Vec<Option<String>>)> {
    let mut records = Vec::new();
    let mut cells: Vec<Option<String>> = Vec::new();
    let mut cell = String::new();
    let (mut quoted, mut in_quotes) = (false, false);
    let mut start = 0;
    let mut chars = data.char_indices().peekable();
    let finish_cell = |cells: &mut Vec<Option<String>>, cell: &mut String, quoted: &mut bool| {
        let value = std::mem::take(cell);
        cells.push((!value.is_empty() || *quoted).then_some(value));
        *quoted = false;
    };
    while let Some((index, c)) = chars.next() {
        if in_quotes {
            if Some(c) == options.quote {
                if chars.peek().map(|(_, n)| *n) == options.quote {
                    cell.push(c);
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                cell.push(c);
            }
        } else if Some(c) == options.quote && cell.is_empty() {
            in_quotes = true;
            quoted = true;
        } else if c == options.delimiter {
            finish_cell(&mut cells, &mut cell, &mut quoted);
        } else if c == '\n' || c == '\r' {
            if c == '\r' && chars.peek().map(|(_, n)| *n) == Some('\n') {
                chars.next();
            }
            if !cells.is_empty() || !cell.is_empty() || quoted {
                finish_cell(&mut cells, &mut cell, &mut quoted);
                records.push((start, std::mem::take(&mut cells)));
            }
            start = index + 1;
        } else {
            cell.push(c);
        }
    }
    if !cells.is_empty() || !cell.is_empty() || quoted {
        finish_cell(&mut cells, &mut cell, &mut quoted);
        records.push((start, cells));
    }
    records
        .into_iter()
        .skip(options.skip_leading_rows)
        .collect()
}

/// Checks one CSV record against the schema (columns in schema order; no nested or repeated
/// columns). The error is the text of a load job's `errors[]` entry.
pub fn row_from_csv(
    schema_fields: &Value,
    position: usize,
    cells: &[Option<String>],
    options: &CsvOptions,
) -> Result<Row, String> {
    let fields = fields_of(schema_fields);
    if cells.len() > fields.len() {
        return Err(format!(
            "Too many values in row starting at position: {position}. Found {} column(s) while expected {}.",
            cells.len(),
            fields.len()
        ));
    }
    if cells.len() < fields.len() && !options.allow_jagged_rows {
        return Err(format!(
            "CSV table references column position {}, but line starting at position:{position} contains only {} columns.",
            fields.len() - 1,
            cells.len()
        ));
    }
    let mut row = Row::new();
    for (index, field) in fields.iter().enumerate() {
        let name = text(field, "name");
        if text(field, "type") == "RECORD" || text(field, "mode") == "REPEATED" {
            return Err(format!(
                "CSV cannot load nested or repeated field {name}; use NEWLINE_DELIMITED_JSON."
            ));
        }
        let cell = cells.get(index).cloned().flatten();
        let Some(cell) = cell else {
            if text(field, "mode") == "REQUIRED" {
                return Err(format!(
                    "Required column value for column index: {index} is missing in row starting at position: {position}"
                ));
            }
            continue;
        };
        let value = scalar(text(field, "type"), &Value::String(cell.clone())).ok_or_else(|| {
            format!(
                "Could not parse '{cell}' as {} for field {name} (position {index}) starting at location {position}  with message 'Unable to parse'",
                sql_type_name(text(field, "type"))
            )
        })?;
        row.insert(name.to_string(), value);
    }
    Ok(row)
}

fn sql_type_name(kind: &str) -> &str {
    match kind {
        "INTEGER" => "INT64",
        "FLOAT" => "DOUBLE",
        "BOOLEAN" => "BOOL",
        other => other,
    }
}

// ---- sizes ----

/// The logical bytes BigQuery counts for a row: 8 per INT64/FLOAT64/DATE/DATETIME/TIME/
/// TIMESTAMP, 1 per BOOL, 2 + length per STRING/BYTES, 16 per NUMERIC, 32 per BIGNUMERIC,
/// the length of JSON, 0 per NULL; records and arrays the sum of their parts.
pub fn row_bytes(schema_fields: &Value, row: &Row) -> u64 {
    fields_of(schema_fields)
        .iter()
        .map(|field| match row.get(text(field, "name")) {
            Some(Value::Array(items)) => items.iter().map(|i| value_bytes(field, i)).sum(),
            Some(value) => value_bytes(field, value),
            None => 0,
        })
        .sum()
}

fn value_bytes(field: &Value, value: &Value) -> u64 {
    let length = |v: &Value| v.as_str().map_or(0, str::len) as u64;
    match text(field, "type") {
        "RECORD" => value.as_object().map_or(0, |record| {
            row_bytes(field.get("fields").unwrap_or(&Value::Null), record)
        }),
        "BOOLEAN" => 1,
        "STRING" => 2 + length(value),
        "BYTES" => {
            2 + value
                .as_str()
                .and_then(crate::conventions::wire::base64_decode)
                .map_or(0, |b| b.len() as u64)
        }
        "NUMERIC" | "DECIMAL" | "INTERVAL" => 16,
        "BIGNUMERIC" | "BIGDECIMAL" => 32,
        "JSON" => length(value),
        "GEOGRAPHY" => 16 + 24 * (1 + value.as_str().map_or(0, |s| s.matches(',').count()) as u64),
        _ => 8,
    }
}

// ---- reading ----

/// A stored row as `tabledata.list` answers it: `{"f": [{"v": ...}]}` over `fields`, in their
/// order. TIMESTAMPs are float seconds, or integer microseconds with `useInt64Timestamp`.
pub fn wire_row(fields: &[Value], row: &Row, int64_timestamps: bool) -> Value {
    let cells: Vec<Value> = fields
        .iter()
        .map(|field| {
            let value = row.get(text(field, "name"));
            let v = match value {
                None if text(field, "mode") == "REPEATED" => json!([]),
                None => Value::Null,
                Some(Value::Array(items)) => Value::Array(
                    items
                        .iter()
                        .map(|item| json!({"v": wire_value(field, item, int64_timestamps)}))
                        .collect(),
                ),
                Some(value) => wire_value(field, value, int64_timestamps),
            };
            json!({ "v": v })
        })
        .collect();
    json!({ "f": cells })
}

fn wire_value(field: &Value, value: &Value, int64_timestamps: bool) -> Value {
    match (text(field, "type"), value) {
        ("RECORD", Value::Object(record)) => wire_row(
            fields_of(field.get("fields").unwrap_or(&Value::Null)),
            record,
            int64_timestamps,
        ),
        ("TIMESTAMP", Value::String(micros)) if !int64_timestamps => {
            let seconds = micros.parse::<i64>().unwrap_or(0) as f64 / 1e6;
            json!(format!("{seconds:E}"))
        }
        _ => value.clone(),
    }
}

// ---- partitions ----

/// The partition id (`YYYYMMDD`, `YYYYMMDDHH`, `YYYYMM`, `YYYY`) of an instant.
pub fn time_partition_id(at: NaiveDateTime, granularity: &str) -> String {
    let format = match granularity {
        "HOUR" => "%Y%m%d%H",
        "MONTH" => "%Y%m",
        "YEAR" => "%Y",
        _ => "%Y%m%d",
    };
    at.format(format).to_string()
}

/// The instant a stored TIMESTAMP, DATE or DATETIME value stands for.
pub fn stored_instant(kind: &str, value: &Value) -> Option<NaiveDateTime> {
    let raw = value.as_str()?;
    match kind {
        "TIMESTAMP" => DateTime::from_timestamp_micros(raw.parse().ok()?).map(|t| t.naive_utc()),
        "DATE" => NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()?
            .and_hms_opt(0, 0, 0),
        "DATETIME" => parse_datetime(raw),
        _ => None,
    }
}

/// The instant a partition id starts at.
pub fn partition_start(id: &str) -> Option<NaiveDateTime> {
    let digits = id.bytes().all(|b| b.is_ascii_digit());
    if !digits {
        return None;
    }
    let (date, hour) = match id.len() {
        4 => (format!("{id}0101"), 0),
        6 => (format!("{id}01"), 0),
        8 => (id.to_string(), 0),
        10 => (id[..8].to_string(), id[8..].parse().ok()?),
        _ => return None,
    };
    NaiveDate::parse_from_str(&date, "%Y%m%d")
        .ok()?
        .and_hms_opt(hour, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!([
            {"name": "ts", "type": "TIMESTAMP", "mode": "REQUIRED"},
            {"name": "n", "type": "INTEGER", "mode": "NULLABLE"},
            {"name": "tags", "type": "STRING", "mode": "REPEATED"},
            {"name": "attrs", "type": "RECORD", "mode": "NULLABLE",
             "fields": [{"name": "k", "type": "STRING", "mode": "NULLABLE"}]},
        ])
    }

    #[test]
    fn json_rows_are_checked_stored_sized_and_rendered() {
        let row = row_from_json(
            &schema(),
            &json!({"ts": "2024-01-02 03:04:05 UTC", "n": "7", "tags": ["a", "bc"], "attrs": {"k": "v"}}),
            false,
        )
        .unwrap();
        assert_eq!(row["ts"], "1704164645000000");
        assert_eq!(row["n"], "7");
        // ts 8 + n 8 + tags (2+1)+(2+2) + attrs.k 2+1
        assert_eq!(row_bytes(&schema(), &row), 8 + 8 + 3 + 4 + 3);
        let fields = schema().as_array().cloned().unwrap();
        assert_eq!(
            wire_row(&fields, &row, true),
            json!({"f": [{"v": "1704164645000000"}, {"v": "7"}, {"v": [{"v": "a"}, {"v": "bc"}]},
                         {"v": {"f": [{"v": "v"}]}}]})
        );
        assert_eq!(
            wire_row(&fields[..1], &row, false),
            json!({"f": [{"v": "1.704164645E9"}]})
        );
        let same = row_from_json(&schema(), &json!({"ts": 1704164645, "n": 7}), false).unwrap();
        assert_eq!(same["ts"], row["ts"]);
    }

    #[test]
    fn bad_rows_name_the_field_and_the_problem() {
        let refused = |row: Value| row_from_json(&schema(), &row, false).unwrap_err();
        assert_eq!(
            refused(json!({"ts": "2024-01-01", "extra": 1})).load_message(),
            "No such field: extra."
        );
        assert_eq!(
            refused(json!({"n": 1})).load_message(),
            "Missing required field: ts."
        );
        let bad = refused(json!({"ts": "2024-01-01", "n": "seven"}));
        assert_eq!(
            (bad.location.as_str(), bad.insert_message()),
            (
                "n",
                "Cannot convert value to integer (bad value): seven".into()
            )
        );
        assert_eq!(
            refused(json!({"ts": "2024-01-01", "attrs": {"x": 1}})).location,
            "attrs.x"
        );
        assert!(
            row_from_json(&schema(), &json!({"ts": "2024-01-01", "extra": 1}), true).is_ok(),
            "ignoreUnknownValues drops unknown fields"
        );
    }

    #[test]
    fn csv_records_honour_quotes_and_nulls() {
        let options = CsvOptions {
            delimiter: ',',
            quote: Some('"'),
            skip_leading_rows: 1,
            allow_jagged_rows: false,
        };
        let records = csv_records(
            "ts,n\n2024-01-01,\"1\"\n\"2024-01-02\",\n\"a,\"\"b\"\"\nc\",3\n",
            &options,
        );
        assert_eq!(records.len(), 3);
        assert_eq!(
            records[1].1,
            vec![Some("2024-01-02".to_string()), None],
            "an empty unquoted cell is NULL"
        );
        assert_eq!(records[2].1[0].as_deref(), Some("a,\"b\"\nc"));
        let two = json!([{"name": "ts", "type": "DATE", "mode": "NULLABLE"},
                         {"name": "n", "type": "INTEGER", "mode": "NULLABLE"}]);
        let row = row_from_csv(&two, records[0].0, &records[0].1, &options).unwrap();
        assert_eq!(
            row,
            json!({"ts": "2024-01-01", "n": "1"})
                .as_object()
                .cloned()
                .unwrap()
        );
        let error =
            row_from_csv(&two, 30, &[Some("x".into()), Some("y".into())], &options).unwrap_err();
        assert!(
            error.starts_with("Could not parse 'x' as DATE for field ts"),
            "{error}"
        );
    }

    #[test]
    fn partitions_follow_the_granularity() {
        let at = stored_instant("TIMESTAMP", &json!("1704164645000000")).unwrap();
        assert_eq!(time_partition_id(at, "DAY"), "20240102");
        assert_eq!(time_partition_id(at, "HOUR"), "2024010203");
        assert_eq!(time_partition_id(at, "MONTH"), "202401");
        assert_eq!(
            partition_start("2024010203"),
            NaiveDate::from_ymd_opt(2024, 1, 2).and_then(|d| d.and_hms_opt(3, 0, 0))
        );
        assert_eq!(partition_start("__NULL__"), None);
    }
}

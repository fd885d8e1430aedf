//! BigQuery jobs that move data: `jobs.insert` of load jobs whose data is uploaded with the job
//! (`/upload/bigquery/v2/projects/P/jobs`, `uploadType=multipart` or `resumable` with its PUT
//! chunks), run at once to `DONE` (NDJSON and CSV, write and create dispositions, partition
//! decorators, schema checks, bad-record limits, BigQuery's error shapes in `status`), and
//! `jobs.get`. Loads from URIs, copies, extracts and queries are refused: not supported here.

use serde_json::{Value, json};

use super::bigquery::{
    CREATOR_EMAIL, SELF_LINK_BASE, SchemaChanges, bad_request, check_schema_change, create_table,
    dataset_key, epoch_ms, finish_table, new_etag, normalize_fields, table_key,
};
use super::bigquery_data::{Partitioning, counts, split_decorator, storage_error};
use super::bigquery_values::{self as values, CsvOptions, Row};
use super::{Call, Context, Reply};
use crate::conventions::ApiError;
use crate::conventions::upload::{content_range, split_multipart};
use crate::table_rows::{Partitions, Upload};

/// At most this many bad records are listed in a failed load's `errors[]`.
const LISTED_BAD_RECORDS: usize = 5;

fn not_supported(what: &str) -> ApiError {
    ApiError::unimplemented(format!(
        "{what} not supported by this emulator: it runs load jobs whose data is uploaded with the job, streaming inserts and tabledata.list."
    ))
}

/// `jobs.query` and `jobs.getQueryResults`: this emulator runs no SQL.
pub fn refuse_query(_context: &mut Context<'_>, _call: &Call<'_>) -> Result<Reply, ApiError> {
    Err(not_supported("Queries are"))
}

/// The project of a jobs path (`projectsId`; the upload paths name it `projectId`).
fn project_of<'a>(call: &'a Call<'_>) -> Result<&'a str, ApiError> {
    call.params
        .get("projectId")
        .map(String::as_str)
        .map_or_else(|| call.param("projectsId"), Ok)
}

/// `jobs.insert`: a job without data (its JSON body), or a load job with its data uploaded
/// (multipart in one request, or a resumable session and its chunks).
pub fn insert_job(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let project = project_of(call)?.to_string();
    if !call.route.is_media_upload {
        return run_job(context, call, &project, call.body_or_empty(), None);
    }
    let content_type = call
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match call.query.non_empty("uploadType") {
        Some("multipart") => {
            let (job, _, data) = split_multipart(content_type, call.raw_body)?;
            run_job(context, call, &project, job, Some(data))
        }
        Some("resumable") => match call.query.non_empty("upload_id") {
            None => start_upload(context, call, &project),
            Some(upload_id) => continue_upload(context, call, &project, upload_id),
        },
        other => Err(bad_request(format!(
            "uploadType={} is not supported for jobs.insert: use multipart or resumable.",
            other.unwrap_or("media")
        ))),
    }
}

/// Starts a resumable session: the body is the job; the answer's `Location` takes the chunks.
fn start_upload(
    context: &mut Context<'_>,
    call: &Call<'_>,
    project: &str,
) -> Result<Reply, ApiError> {
    let job: Value = if call.raw_body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(call.raw_body)
            .map_err(|e| bad_request(format!("Invalid JSON payload received. {e}")))?
    };
    let upload_id = uuid::Uuid::new_v4().simple().to_string();
    crate::lock(context.table_rows.uploads()).insert(
        upload_id.clone(),
        Upload {
            job,
            bytes: Vec::new(),
        },
    );
    let host = call
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let location = format!(
        "http://{host}/upload/bigquery/v2/projects/{project}/jobs?uploadType=resumable&upload_id={upload_id}"
    );
    Ok(Reply::Media {
        bytes: Vec::new(),
        headers: vec![("Location".into(), location)],
    })
}

/// One chunk of a resumable session; the last one runs the job.
fn continue_upload(
    context: &mut Context<'_>,
    call: &Call<'_>,
    project: &str,
    upload_id: &str,
) -> Result<Reply, ApiError> {
    let range = call
        .headers
        .get("content-range")
        .and_then(|v| v.to_str().ok());
    let (first, total) = content_range(range, call.raw_body.len())?;
    let upload = {
        let mut uploads = crate::lock(context.table_rows.uploads());
        let upload = uploads.get_mut(upload_id).ok_or_else(|| {
            ApiError::not_found(format!("No upload session {upload_id}.")).with_http_status(404)
        })?;
        let first = usize::try_from(first).unwrap_or(usize::MAX);
        if first > upload.bytes.len() {
            return Err(bad_request(format!(
                "The chunk starts at byte {first} but {} bytes were received.",
                upload.bytes.len()
            )));
        }
        upload.bytes.truncate(first);
        upload.bytes.extend_from_slice(call.raw_body);
        let received = upload.bytes.len() as u64;
        if total != Some(received) {
            return Ok(Reply::ResumeIncomplete { received });
        }
        uploads.remove(upload_id)
    };
    let upload = upload.ok_or_else(|| ApiError::internal("the upload session vanished"))?;
    run_job(context, call, project, upload.job, Some(upload.bytes))
}

/// Stores the job and answers it (`DONE`; a failed load carries its errors in `status`).
fn run_job(
    context: &mut Context<'_>,
    call: &Call<'_>,
    project: &str,
    job: Value,
    data: Option<Vec<u8>>,
) -> Result<Reply, ApiError> {
    let configuration = job.get("configuration").cloned().unwrap_or(json!({}));
    let job_id = job
        .pointer("/jobReference/jobId")
        .and_then(Value::as_str)
        .map_or_else(
            || format!("job_{}", uuid::Uuid::new_v4().simple()),
            str::to_string,
        );
    let location = job
        .pointer("/jobReference/location")
        .and_then(Value::as_str)
        .unwrap_or("US")
        .to_string();
    let key = format!("{project}:{location}.{job_id}");
    if context.state.bq_jobs.contains_key(&key) {
        return Err(ApiError::already_exists(format!(
            "Already Exists: Job {key}"
        )));
    }
    let Some(load) = configuration.get("load") else {
        let kind = ["query", "copy", "extract"]
            .into_iter()
            .find(|k| configuration.get(*k).is_some());
        return Err(match kind {
            Some("query") => not_supported("Queries are"),
            Some(kind) => not_supported(&format!("{kind} jobs are")),
            None => bad_request(
                "Job configuration must contain exactly one job-specific configuration object (e.g., query, load, extract, spreadsheetExtract), but there were 0.",
            ),
        });
    };
    let Some(data) = data else {
        return Err(not_supported("Loads from URIs (sourceUris) are"));
    };
    let started = epoch_ms(call.now);
    let (status, load_statistics) = match run_load(context, call, project, load, &data)? {
        Ok(loaded) => {
            let mut status = json!({"state": "DONE"});
            if !loaded.bad_records.is_empty() {
                status["errors"] = Value::Array(loaded.bad_records);
            }
            (status, loaded.statistics)
        }
        Err(failure) => (
            json!({"state": "DONE", "errorResult": failure.errors[0], "errors": failure.errors}),
            json!({"inputFiles": "1", "inputFileBytes": data.len().to_string(),
                   "outputRows": "0", "outputBytes": "0", "badRecords": failure.bad_records.to_string()}),
        ),
    };
    let mut configuration = configuration.clone();
    configuration["jobType"] = json!("LOAD");
    let salt = context.state.next_id();
    let stored = json!({
        "kind": "bigquery#job",
        "etag": new_etag(&key, &started, salt),
        "id": key,
        "selfLink": format!("{SELF_LINK_BASE}/projects/{project}/jobs/{job_id}?location={location}"),
        "user_email": CREATOR_EMAIL,
        "configuration": configuration,
        "jobReference": {"projectId": project, "jobId": job_id, "location": location},
        "statistics": {"creationTime": started, "startTime": started, "endTime": started,
                       "load": load_statistics},
        "status": status,
        "state": "DONE",
    });
    context.state.bq_jobs.insert(key, stored.clone());
    Ok(Reply::Json(as_job_resource(stored)))
}

/// A stored job as `jobs.get` answers it (the list entry's top-level `state` left out).
fn as_job_resource(mut job: Value) -> Value {
    if let Some(fields) = job.as_object_mut() {
        fields.remove("state");
    }
    job
}

/// `jobs.get` (any location unless `location` is given).
pub fn get_job(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let project = call.param("projectsId")?;
    let job_id = call.param("jobsId")?;
    let location = call.query.non_empty("location");
    context
        .state
        .bq_jobs
        .iter()
        .find(|(key, job)| {
            key.starts_with(&format!("{project}:"))
                && job.pointer("/jobReference/jobId").and_then(Value::as_str) == Some(job_id)
                && location.is_none_or(|l| {
                    job.pointer("/jobReference/location")
                        .and_then(Value::as_str)
                        .is_some_and(|j| j.eq_ignore_ascii_case(l))
                })
        })
        .map(|(_, job)| Reply::Json(as_job_resource(job.clone())))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Not found: Job {project}:{}{job_id}",
                location.map(|l| format!("{l}.")).unwrap_or_default()
            ))
        })
}

/// A load that ran: its statistics and the bad records it skipped (within `maxBadRecords`).
struct Loaded {
    statistics: Value,
    bad_records: Vec<Value>,
}

/// A load that failed: `errors[]` (the first is the `errorResult`).
struct LoadFailure {
    errors: Vec<Value>,
    bad_records: usize,
}

fn failure(reason: &str, message: impl Into<String>) -> LoadFailure {
    LoadFailure {
        errors: vec![json!({"reason": reason, "message": message.into()})],
        bad_records: 0,
    }
}

fn text<'a>(config: &'a Value, key: &str) -> Option<&'a str> {
    config
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Runs a load job to completion: nothing is written unless all of it succeeds.
fn run_load(
    context: &mut Context<'_>,
    call: &Call<'_>,
    project: &str,
    load: &Value,
    data: &[u8],
) -> Result<Result<Loaded, LoadFailure>, ApiError> {
    let destination = load
        .get("destinationTable")
        .ok_or_else(|| bad_request("Required parameter is missing: destinationTable"))?;
    let target_project = text(destination, "projectId").unwrap_or(project);
    let (Some(dataset_id), Some(decorated_id)) =
        (text(destination, "datasetId"), text(destination, "tableId"))
    else {
        return Err(bad_request(
            "destinationTable needs a datasetId and a tableId.",
        ));
    };
    let (table_id, decorator) = split_decorator(decorated_id);
    let dataset_key = dataset_key(target_project, dataset_id);
    let Some(dataset) = context.state.bq_datasets.get(&dataset_key).cloned() else {
        return Ok(Err(failure(
            "notFound",
            format!("Not found: Dataset {dataset_key}"),
        )));
    };
    let key = table_key(target_project, dataset_id, table_id);
    let existing = context.state.bq_tables.get(&key).cloned();
    let write = text(load, "writeDisposition").unwrap_or("WRITE_APPEND");
    let create = text(load, "createDisposition").unwrap_or("CREATE_IF_NEEDED");
    if !matches!(
        write,
        "WRITE_APPEND" | "WRITE_TRUNCATE" | "WRITE_TRUNCATE_DATA" | "WRITE_EMPTY"
    ) || !matches!(create, "CREATE_IF_NEEDED" | "CREATE_NEVER")
    {
        return Err(bad_request(format!(
            "Invalid disposition: writeDisposition {write}, createDisposition {create}."
        )));
    }
    if existing.is_none() && create == "CREATE_NEVER" {
        return Ok(Err(failure("notFound", format!("Not found: Table {key}"))));
    }
    if load.get("autodetect") == Some(&json!(true))
        && load.get("schema").is_none()
        && existing.is_none()
    {
        return Ok(Err(failure(
            "invalid",
            "Schema autodetection is not supported by this emulator: give the load an explicit schema.",
        )));
    }
    let load_fields = match load.pointer("/schema/fields") {
        Some(fields) => Some(normalize_fields(fields, "")?),
        None => None,
    };
    // The table as it will be once the job succeeds.
    let table = match (&existing, &load_fields) {
        (None, None) => {
            return Ok(Err(failure(
                "invalid",
                "No schema specified on job or table.",
            )));
        }
        (None, Some(fields)) => {
            let mut body = json!({"tableReference": {"projectId": target_project, "datasetId": dataset_id, "tableId": table_id},
                                  "schema": {"fields": fields}});
            for setting in ["timePartitioning", "rangePartitioning", "clustering"] {
                if let Some(value) = load.get(setting) {
                    body[setting] = value.clone();
                }
            }
            body
        }
        (Some(table), None) => table.clone(),
        (Some(table), Some(fields)) => {
            // A whole-table WRITE_TRUNCATE takes the load's schema; other writes must match
            // the table's, and change it only as `schemaUpdateOptions` allow.
            let replaces_schema = write == "WRITE_TRUNCATE" && decorator.is_none();
            let options: Vec<&str> = load["schemaUpdateOptions"]
                .as_array()
                .map(|o| o.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if !replaces_schema {
                let allowed = SchemaChanges {
                    add_fields: options.contains(&"ALLOW_FIELD_ADDITION"),
                    relax_modes: options.contains(&"ALLOW_FIELD_RELAXATION"),
                };
                let old = table
                    .pointer("/schema/fields")
                    .cloned()
                    .unwrap_or(json!([]));
                if let Err(mismatch) = check_schema_change(&key, &old, fields, "", allowed) {
                    return Ok(Err(failure("invalid", mismatch.message)));
                }
            }
            let mut table = table.clone();
            if replaces_schema || !options.is_empty() {
                table["schema"] = json!({"fields": fields});
            }
            table
        }
    };
    let fields = table
        .pointer("/schema/fields")
        .cloned()
        .unwrap_or(json!([]));
    let partitioning = Partitioning::of(&table);
    if let Some(decorator) = decorator
        && let Err(message) = partitioning.check_decorator(&key, decorator)
    {
        return Ok(Err(failure("invalid", message)));
    }

    let parsed = match parse_rows(load, &fields, data)? {
        Ok(parsed) => parsed,
        Err(failure) => return Ok(Err(failure)),
    };
    let mut batch = Partitions::new();
    let mut output_bytes = 0;
    for row in &parsed.rows {
        let partition = match decorator {
            Some(d) if !partitioning.rows_choose_partition() => d.to_string(),
            _ => partitioning.partition_of(row, call.now),
        };
        if let Some(d) = decorator
            && d != partition
        {
            return Ok(Err(failure(
                "invalid",
                format!(
                    "Some rows belong to different partitions rather than destination partition {d}"
                ),
            )));
        }
        output_bytes += values::row_bytes(&fields, row);
        batch
            .entry(partition)
            .or_default()
            .push(Value::Object(row.clone()));
    }
    if write == "WRITE_EMPTY"
        && let Some(existing) = &existing
    {
        let (rows, _) = context
            .table_rows
            .with_table(&key, |rows| Ok(counts(rows, existing, decorator, call.now)))
            .map_err(|e| storage_error(&key, &e))?;
        if rows > 0 {
            return Ok(Err(failure(
                "duplicate",
                format!("Already Exists: Table {key}"),
            )));
        }
    }

    // The job succeeds: the table (created or with its new schema), then its rows.
    match &existing {
        None => {
            create_table(
                context,
                &dataset,
                target_project,
                dataset_id,
                &table,
                call.now,
            )?;
        }
        Some(existing) if existing.get("schema") != table.get("schema") => {
            let salt = context.state.next_id();
            let updated = finish_table(
                table.as_object().cloned().unwrap_or_default(),
                &dataset,
                &key,
                &epoch_ms(call.now),
                salt,
            )?;
            context.state.bq_tables.insert(key.clone(), updated);
        }
        Some(_) => {}
    }
    let output_rows = parsed.rows.len();
    let truncates = matches!(write, "WRITE_TRUNCATE" | "WRITE_TRUNCATE_DATA");
    context
        .table_rows
        .with_table(&key, |rows| match (truncates, decorator) {
            (true, Some(partition)) => {
                rows.replace_partition(partition, batch.remove(partition).unwrap_or_default())
            }
            (true, None) => rows.replace_all(batch),
            (false, _) => rows.append(batch),
        })
        .map_err(|e| storage_error(&key, &e))?;
    Ok(Ok(Loaded {
        statistics: json!({
            "inputFiles": "1",
            "inputFileBytes": data.len().to_string(),
            "outputRows": output_rows.to_string(),
            "outputBytes": output_bytes.to_string(),
            "badRecords": parsed.bad_count.to_string(),
        }),
        bad_records: parsed.bad_records,
    }))
}

/// The rows of a load's data, and the bad records skipped within `maxBadRecords`.
struct Parsed {
    rows: Vec<Row>,
    /// The first few bad records' errors, and how many there were.
    bad_records: Vec<Value>,
    bad_count: usize,
}

fn parse_rows(
    load: &Value,
    fields: &Value,
    data: &[u8],
) -> Result<Result<Parsed, LoadFailure>, ApiError> {
    let format = text(load, "sourceFormat").unwrap_or("CSV");
    let text_data = String::from_utf8_lossy(data);
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    let format_name = match format {
        "NEWLINE_DELIMITED_JSON" => {
            let ignore_unknown = load["ignoreUnknownValues"].as_bool().unwrap_or(false);
            let mut position = 0;
            for line in text_data.split_inclusive('\n') {
                let start = position;
                position += line.len();
                if line.trim().is_empty() {
                    continue;
                }
                let checked = serde_json::from_str::<Value>(line)
                    .map_err(|e| format!("Parser terminated before end of string ({e})"))
                    .and_then(|value| {
                        values::row_from_json(fields, &value, ignore_unknown)
                            .map_err(|e| e.load_message())
                    });
                match checked {
                    Ok(row) => rows.push(row),
                    Err(detail) => bad.push(format!(
                        "JSON parsing error in row starting at position {start}: {detail}"
                    )),
                }
            }
            "JSON"
        }
        "CSV" => {
            let delimiter = match text(load, "fieldDelimiter").unwrap_or(",") {
                "\\t" | "tab" | "\t" => '\t',
                other => other.chars().next().unwrap_or(','),
            };
            let options = CsvOptions {
                delimiter,
                quote: load
                    .get("quote")
                    .and_then(Value::as_str)
                    .map_or(Some('"'), |q| q.chars().next()),
                skip_leading_rows: load
                    .get("skipLeadingRows")
                    .and_then(super::bigquery::int64_value)
                    .unwrap_or(0)
                    .max(0) as usize,
                allow_jagged_rows: load["allowJaggedRows"].as_bool().unwrap_or(false),
            };
            for (position, cells) in values::csv_records(&text_data, &options) {
                match values::row_from_csv(fields, position, &cells, &options) {
                    Ok(row) => rows.push(row),
                    Err(detail) => bad.push(detail),
                }
            }
            "CSV"
        }
        other => {
            return Ok(Err(failure(
                "invalid",
                format!(
                    "sourceFormat {other} is not supported by this emulator: use NEWLINE_DELIMITED_JSON or CSV."
                ),
            )));
        }
    };
    let max_bad = load
        .get("maxBadRecords")
        .and_then(super::bigquery::int64_value)
        .unwrap_or(0)
        .max(0) as usize;
    let bad_errors: Vec<Value> = bad
        .iter()
        .take(LISTED_BAD_RECORDS)
        .map(|detail| {
            json!({"reason": "invalid",
                   "message": format!("Error while reading data, error message: {detail}")})
        })
        .collect();
    if bad.len() > max_bad {
        let summary = json!({"reason": "invalid", "message": format!(
            "Error while reading data, error message: {format_name} table encountered too many errors, giving up. Rows: {}; errors: {}. Please look into the errors[] collection for more details.",
            rows.len() + bad.len(), bad.len())});
        let mut errors = vec![summary];
        errors.extend(bad_errors);
        return Ok(Err(LoadFailure {
            errors,
            bad_records: bad.len(),
        }));
    }
    Ok(Ok(Parsed {
        rows,
        bad_records: bad_errors,
        bad_count: bad.len(),
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::server::testing::TestEmulator;

    const BASE: &str = "/bigquery/v2/projects/p1";
    const UPLOAD: &str = "/upload/bigquery/v2/projects/p1/jobs";

    async fn with_dataset() -> TestEmulator {
        let emulator = TestEmulator::with_polls(0);
        let (status, _) = emulator
            .send(
                "POST",
                &format!("{BASE}/datasets"),
                Some(json!({"datasetReference": {"datasetId": "raw"}})),
            )
            .await;
        assert_eq!(status, 200);
        emulator
    }

    /// A multipart load (`uploadType=multipart`); answers (status, job).
    async fn load(emulator: &TestEmulator, load: Value, data: &str) -> (u16, Value) {
        let job = json!({"configuration": {"load": load}});
        let body = format!(
            "--XX\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n{job}\r\n--XX\r\ncontent-type: */*\r\n\r\n{data}\r\n--XX--"
        );
        let response = emulator
            .raw(
                "POST",
                &format!("{UPLOAD}?uploadType=multipart"),
                body.into_bytes(),
                &[("content-type", "multipart/related; boundary=XX")],
            )
            .await;
        (
            response.status,
            serde_json::from_slice(&response.body).unwrap_or(Value::Null),
        )
    }

    fn csv_load(table: &str, write: &str) -> Value {
        json!({"destinationTable": {"projectId": "p1", "datasetId": "raw", "tableId": table},
               "sourceFormat": "CSV", "skipLeadingRows": 1, "writeDisposition": write,
               "schema": {"fields": [{"name": "day", "type": "DATE"}, {"name": "n", "type": "INT64"}]}})
    }

    async fn values(emulator: &TestEmulator, table: &str) -> Vec<Value> {
        let (status, list) = emulator
            .send(
                "GET",
                &format!("{BASE}/datasets/raw/tables/{table}/data"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{list}");
        list["rows"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|row| row["f"][1]["v"].clone())
            .collect()
    }

    #[tokio::test]
    async fn csv_loads_create_the_table_and_honour_every_write_disposition() {
        let emulator = with_dataset().await;
        let (status, job) = load(
            &emulator,
            csv_load("daily", "WRITE_EMPTY"),
            "day,n\n2024-01-01,1\n2024-01-02,2\n",
        )
        .await;
        assert_eq!(status, 200, "{job}");
        assert_eq!(job["status"], json!({"state": "DONE"}));
        assert_eq!(job["statistics"]["load"]["outputRows"], "2");
        assert_eq!(job["statistics"]["load"]["outputBytes"], "32");
        assert_eq!(job["configuration"]["jobType"], "LOAD");
        let (_, table) = emulator
            .send("GET", &format!("{BASE}/datasets/raw/tables/daily"), None)
            .await;
        assert_eq!(
            (
                &table["numRows"],
                &table["numBytes"],
                &table["schema"]["fields"][1]["type"]
            ),
            (&json!("2"), &json!("32"), &json!("INTEGER")),
            "CREATE_IF_NEEDED made the table from the load's schema: {table}"
        );

        let (_, refused) = load(
            &emulator,
            csv_load("daily", "WRITE_EMPTY"),
            "day,n\n2024-01-03,3\n",
        )
        .await;
        assert_eq!(
            refused["status"]["errorResult"],
            json!({"reason": "duplicate", "message": "Already Exists: Table p1:raw.daily"})
        );
        load(
            &emulator,
            csv_load("daily", "WRITE_APPEND"),
            "day,n\n2024-01-03,3\n",
        )
        .await;
        assert_eq!(
            values(&emulator, "daily").await,
            [json!("1"), json!("2"), json!("3")]
        );
        load(
            &emulator,
            csv_load("daily", "WRITE_TRUNCATE"),
            "day,n\n2024-01-04,4\n",
        )
        .await;
        assert_eq!(values(&emulator, "daily").await, [json!("4")]);

        let mut never = csv_load("missing", "WRITE_APPEND");
        never["createDisposition"] = json!("CREATE_NEVER");
        let (_, missing) = load(&emulator, never, "day,n\n").await;
        assert_eq!(
            missing["status"]["errorResult"],
            json!({"reason": "notFound", "message": "Not found: Table p1:raw.missing"})
        );

        // Within maxBadRecords the good rows land and the bad ones are listed.
        let mut tolerant = csv_load("daily", "WRITE_APPEND");
        tolerant["maxBadRecords"] = json!(1);
        let (_, job) = load(&emulator, tolerant, "day,n\n2024-01-05,x\n2024-01-06,6\n").await;
        assert_eq!(job["statistics"]["load"]["badRecords"], "1");
        assert!(job["status"].get("errorResult").is_none(), "{job}");
        assert!(
            job["status"]["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("Could not parse 'x' as INT64 for field n")),
            "{job}"
        );
        assert_eq!(values(&emulator, "daily").await, [json!("4"), json!("6")]);

        let (status, got) = emulator
            .send(
                "GET",
                &format!(
                    "{BASE}/jobs/{}",
                    job["jobReference"]["jobId"].as_str().unwrap()
                ),
                None,
            )
            .await;
        assert_eq!(
            (status, &got["statistics"], got.get("state")),
            (200, &job["statistics"], None)
        );
        let (_, listed) = emulator.send("GET", &format!("{BASE}/jobs"), None).await;
        assert_eq!(listed["jobs"].as_array().map(Vec::len), Some(6), "{listed}");
    }

    #[tokio::test]
    async fn a_load_adds_columns_only_with_allow_field_addition() {
        let emulator = with_dataset().await;
        load(
            &emulator,
            csv_load("t", "WRITE_APPEND"),
            "day,n\n2024-01-01,1\n",
        )
        .await;
        let mut wider = csv_load("t", "WRITE_APPEND");
        wider["schema"]["fields"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "extra", "type": "STRING"}));
        let (_, refused) = load(&emulator, wider.clone(), "day,n,extra\n2024-01-02,2,x\n").await;
        assert_eq!(
            refused["status"]["errorResult"]["message"],
            "Provided Schema does not match Table p1:raw.t. Cannot add fields (field: extra)"
        );
        wider["schemaUpdateOptions"] = json!(["ALLOW_FIELD_ADDITION"]);
        let (_, job) = load(&emulator, wider, "day,n,extra\n2024-01-02,2,x\n").await;
        assert_eq!(job["status"], json!({"state": "DONE"}), "{job}");
        let (_, table) = emulator
            .send("GET", &format!("{BASE}/datasets/raw/tables/t"), None)
            .await;
        assert_eq!(table["schema"]["fields"][2]["name"], "extra");
        assert_eq!(table["numRows"], "2");
    }

    #[tokio::test]
    async fn resumable_uploads_take_chunks_and_run_the_job_on_the_last() {
        let emulator = with_dataset().await;
        let job = json!({"jobReference": {"jobId": "chunked"}, "configuration": {"load": csv_load("t", "WRITE_APPEND")}});
        let started = emulator
            .raw(
                "POST",
                &format!("{UPLOAD}?uploadType=resumable"),
                serde_json::to_vec(&job).unwrap(),
                &[
                    ("host", "127.0.0.1:9"),
                    ("content-type", "application/json"),
                ],
            )
            .await;
        assert_eq!(started.status, 200);
        let location = started
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("location"))
            .map(|(_, value)| value.clone())
            .expect("a Location header");
        let session = location
            .strip_prefix("http://127.0.0.1:9")
            .expect("same host");
        let data = "day,n\n2024-01-01,1\n2024-01-02,2\n";
        let (head, tail) = data.split_at(10);
        let first = emulator
            .raw(
                "PUT",
                session,
                head.into(),
                &[("content-range", &format!("bytes 0-9/{}", data.len()))],
            )
            .await;
        assert_eq!(first.status, 308);
        assert!(
            first
                .headers
                .contains(&("Range".into(), "bytes=0-9".into()))
        );
        let last = emulator
            .raw(
                "PUT",
                session,
                tail.into(),
                &[(
                    "content-range",
                    &format!("bytes 10-{}/{}", data.len() - 1, data.len()),
                )],
            )
            .await;
        assert_eq!(last.status, 200, "{}", String::from_utf8_lossy(&last.body));
        let job: Value = serde_json::from_slice(&last.body).unwrap();
        assert_eq!(job["jobReference"]["jobId"], "chunked");
        assert_eq!(values(&emulator, "t").await, [json!("1"), json!("2")]);
        let again = emulator.raw("PUT", session, tail.into(), &[]).await;
        assert_eq!(again.status, 404, "the session ended with the job");
    }

    #[tokio::test]
    async fn an_upload_needs_the_bigquery_api_enabled_when_services_are_enforced() {
        let emulator = TestEmulator::new(crate::Settings {
            operation_polls: 0,
            enforce_services: true,
            ..crate::Settings::default()
        });
        let (status, error) = load(&emulator, csv_load("t", "WRITE_APPEND"), "day,n\n").await;
        assert_eq!(status, 403, "{error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("bigquery.googleapis.com")),
            "{error}"
        );
    }

    #[tokio::test]
    async fn queries_and_loads_without_data_are_refused_as_not_supported() {
        let emulator = with_dataset().await;
        let (status, error) = emulator
            .send(
                "POST",
                &format!("{BASE}/queries"),
                Some(json!({"query": "SELECT 1"})),
            )
            .await;
        assert_eq!(
            (status, &error["error"]["errors"][0]["reason"]),
            (501, &json!("notImplemented"))
        );
        let (status, error) = emulator
            .send(
                "POST",
                &format!("{BASE}/jobs"),
                Some(
                    json!({"configuration": {"load": {"sourceUris": ["gs://b/o"],
                    "destinationTable": {"datasetId": "raw", "tableId": "t"}}}}),
                ),
            )
            .await;
        assert_eq!(status, 501);
        assert!(
            error["error"]["message"].as_str().is_some_and(|m| m
                .starts_with("Loads from URIs (sourceUris) are not supported by this emulator")),
            "{error}"
        );
    }
}

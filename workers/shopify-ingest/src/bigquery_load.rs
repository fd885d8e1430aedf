//! BigQuery load jobs as the ingest job runs them: NDJSON rows uploaded with the job
//! (`jobs.insert` on the upload URI, `uploadType=multipart`), an explicit schema, `WRITE_TRUNCATE`
//! on one day partition (`table$YYYYMMDD`, which replaces that partition only and atomically),
//! `CREATE_NEVER` (the table is the stack's), a job id fixed per run and day so a retried insert
//! finds its job (409) instead of loading twice, then `jobs.get` until `DONE`.

use std::time::Duration;

use chrono::NaiveDate;
use serde_json::{Value, json};
use tokio::time::Instant;
use worker_kit::cloud::Bearer;

/// Google's BigQuery endpoint.
pub const GOOGLE_ENDPOINT: &str = "https://bigquery.googleapis.com";
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_ATTEMPTS: u32 = 5;
const POLL_EVERY: Duration = Duration::from_millis(500);
const BOUNDARY: &str = "stackctl_ingest_boundary_7f3a9c";

/// The table the job loads: `project.dataset.table`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRef {
    pub project: String,
    pub dataset: String,
    pub table: String,
}

impl TableRef {
    /// `dataset.table` (in `project`) or `project.dataset.table` (`:` also separates the project).
    pub fn parse(text: &str, project: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(['.', ':']).collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "BIGQUERY_TABLE={text:?} is not DATASET.TABLE or PROJECT.DATASET.TABLE"
            ));
        }
        match parts.as_slice() {
            [dataset, table] => Ok(Self {
                project: project.to_string(),
                dataset: dataset.to_string(),
                table: table.to_string(),
            }),
            [p, dataset, table] => Ok(Self {
                project: p.to_string(),
                dataset: dataset.to_string(),
                table: table.to_string(),
            }),
            _ => Err(format!(
                "BIGQUERY_TABLE={text:?} is not DATASET.TABLE or PROJECT.DATASET.TABLE"
            )),
        }
    }

    /// `table$YYYYMMDD`: the day partition.
    pub fn partition(&self, day: NaiveDate) -> String {
        format!("{}${}", self.table, day.format("%Y%m%d"))
    }
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.project, self.dataset, self.table)
    }
}

/// Why a load did not commit.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("BigQuery load job {job} failed: {reason}: {message}{details}")]
    Failed {
        job: String,
        reason: String,
        message: String,
        details: String,
    },
    #[error("BigQuery {call} answered HTTP {status}: {message}")]
    Api {
        call: &'static str,
        status: u16,
        message: String,
    },
    #[error("BigQuery {call} unreachable after {attempts} attempts: {last}")]
    Unreachable {
        call: &'static str,
        attempts: u32,
        last: String,
    },
    #[error("the run's time budget ran out waiting for load job {job}")]
    Deadline { job: String },
    #[error("cannot authenticate to BigQuery: {0}")]
    Auth(String),
}

/// A committed load.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub job: String,
    pub output_rows: u64,
}

/// BigQuery's jobs API for one project.
#[derive(Debug, Clone)]
pub struct BigQuery {
    http: reqwest::Client,
    root: String,
    bearer: Bearer,
    /// `BIGQUERY_LOCATION`, passed to `jobs.get` when set.
    location: Option<String>,
}

fn error_message(body: &Value, raw: &str) -> String {
    body.pointer("/error/message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| raw.chars().take(300).collect())
}

impl BigQuery {
    pub fn new(
        http: reqwest::Client,
        root: String,
        bearer: Bearer,
        location: Option<String>,
    ) -> Self {
        Self {
            http,
            root,
            bearer,
            location,
        }
    }

    async fn authorized(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, LoadError> {
        Ok(
            match self
                .bearer
                .header()
                .await
                .map_err(|e| LoadError::Auth(e.to_string()))?
            {
                Some(header) => request.header("authorization", header),
                None => request,
            },
        )
    }

    /// Sends what `build` makes, retrying 5xx, 429 and no answer; `(status, body)` otherwise.
    async fn call(
        &self,
        call: &'static str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(u16, Value), LoadError> {
        let mut last = String::new();
        for attempt in 1..=MAX_ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis(250 * 2u64.pow(attempt - 1))).await;
            }
            let request = self.authorized(build().timeout(CALL_TIMEOUT)).await?;
            match request.send().await {
                Err(error) => last = error.to_string(),
                Ok(response) => {
                    let status = response.status().as_u16();
                    let raw = response.text().await.unwrap_or_default();
                    let body: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
                    if status == 429 || status >= 500 {
                        last = format!("HTTP {status}: {}", error_message(&body, &raw));
                        continue;
                    }
                    if !(200..300).contains(&status) && status != 409 {
                        return Err(LoadError::Api {
                            call,
                            status,
                            message: error_message(&body, &raw),
                        });
                    }
                    return Ok((status, body));
                }
            }
        }
        Err(LoadError::Unreachable {
            call,
            attempts: MAX_ATTEMPTS,
            last,
        })
    }

    /// Replaces the day partition `day` of `table` with `rows` (NDJSON) atomically; the job is
    /// named `job_id`, so inserting it again finds it.
    pub async fn replace_partition(
        &self,
        table: &TableRef,
        day: NaiveDate,
        rows: &[u8],
        schema: &Value,
        job_id: &str,
        deadline: Instant,
    ) -> Result<Loaded, LoadError> {
        let mut reference = json!({"projectId": table.project, "jobId": job_id});
        if let Some(location) = &self.location {
            reference["location"] = json!(location);
        }
        let job = json!({
            "jobReference": reference,
            "configuration": {"load": {
                "destinationTable": {
                    "projectId": table.project,
                    "datasetId": table.dataset,
                    "tableId": table.partition(day),
                },
                "sourceFormat": "NEWLINE_DELIMITED_JSON",
                "schema": {"fields": schema},
                "writeDisposition": "WRITE_TRUNCATE",
                "createDisposition": "CREATE_NEVER",
                "maxBadRecords": 0,
            }},
        });
        let mut body = Vec::with_capacity(rows.len() + 1024);
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{job}\r\n--{BOUNDARY}\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(rows);
        body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let url = format!(
            "{}/upload/bigquery/v2/projects/{}/jobs",
            self.root, table.project
        );
        let (status, mut answer) = self
            .call("jobs.insert", || {
                self.http
                    .post(&url)
                    .query(&[("uploadType", "multipart")])
                    .header(
                        "content-type",
                        format!("multipart/related; boundary={BOUNDARY}"),
                    )
                    .body(body.clone())
            })
            .await?;
        if status == 409 {
            // Inserted by an earlier attempt of this call: follow that job.
            answer = self.get(&table.project, job_id).await?;
        }
        loop {
            if answer["status"]["state"] == "DONE" {
                return finished(job_id, &answer);
            }
            if Instant::now() + POLL_EVERY > deadline {
                return Err(LoadError::Deadline {
                    job: job_id.to_string(),
                });
            }
            tokio::time::sleep(POLL_EVERY).await;
            answer = self.get(&table.project, job_id).await?;
        }
    }

    async fn get(&self, project: &str, job_id: &str) -> Result<Value, LoadError> {
        let url = format!("{}/bigquery/v2/projects/{project}/jobs/{job_id}", self.root);
        let (_, answer) = self
            .call("jobs.get", || {
                let request = self.http.get(&url);
                match &self.location {
                    Some(location) => request.query(&[("location", location)]),
                    None => request,
                }
            })
            .await?;
        Ok(answer)
    }
}

/// A `DONE` job: committed, or its `errorResult` and first errors.
fn finished(job_id: &str, job: &Value) -> Result<Loaded, LoadError> {
    let error = &job["status"]["errorResult"];
    if !error.is_null() {
        let details: Vec<String> = job["status"]["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .take(3)
                    .filter_map(|e| e["message"].as_str())
                    .filter(|m| Some(*m) != error["message"].as_str())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        return Err(LoadError::Failed {
            job: job_id.to_string(),
            reason: error["reason"].as_str().unwrap_or("error").to_string(),
            message: error["message"].as_str().unwrap_or_default().to_string(),
            details: if details.is_empty() {
                String::new()
            } else {
                format!(" ({})", details.join("; "))
            },
        });
    }
    Ok(Loaded {
        job: job_id.to_string(),
        output_rows: job["statistics"]["load"]["outputRows"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_named_with_or_without_their_project_and_partitions_by_day() {
        let table = TableRef::parse("shopify.orders", "acme").unwrap();
        assert_eq!(table.to_string(), "acme.shopify.orders");
        assert_eq!(
            table.partition(NaiveDate::from_ymd_opt(2026, 12, 4).unwrap()),
            "orders$20261204"
        );
        assert_eq!(
            TableRef::parse("other:shopify.orders", "acme")
                .unwrap()
                .project,
            "other"
        );
        assert!(TableRef::parse("orders", "acme").is_err());
    }

    #[test]
    fn a_done_job_with_an_error_result_is_a_failed_load() {
        let job = json!({"status": {"state": "DONE",
            "errorResult": {"reason": "invalid", "message": "Error while reading data"},
            "errors": [{"message": "Error while reading data"}, {"message": "No such field: x."}]}});
        let error = finished("j", &job).unwrap_err().to_string();
        assert!(
            error.contains("invalid: Error while reading data (No such field: x.)"),
            "{error}"
        );
    }
}

//! Cloud Logging v2 `entries.list` over what the local processes printed: the runtime files
//! each line as a Cloud Run log entry (`runtime::process::LogSource`), and this reads them
//! back with the filter subset `stackctl logs` and people use (`resource.type`,
//! `resource.labels.K`, `labels.K`, `logName`, `severity` and `timestamp` compared with
//! `= != > >= < <=`, joined by AND), Google's ordering, page size and page tokens.

use std::cmp::Ordering;

use serde_json::{Value, json};

use super::monitoring::{Term, parse_terms};
use super::{Call, Context, Reply};
use crate::conventions::ApiError;

/// entries.list's default page size, and the most one page may ask for.
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;

const OPERATORS: &[&str] = &["=", "!=", ":", ">", ">=", "<", "<="];

/// Cloud Logging's severities in order (`severity>=WARNING` compares by this rank).
const SEVERITIES: &[&str] = &[
    "DEFAULT",
    "DEBUG",
    "INFO",
    "NOTICE",
    "WARNING",
    "ERROR",
    "CRITICAL",
    "ALERT",
    "EMERGENCY",
];

pub fn list_entries(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let body = call.body_or_empty();
    let projects = requested_projects(&body)?;
    let filter = body.get("filter").and_then(Value::as_str).unwrap_or("");
    let terms = if filter.trim().is_empty() {
        Vec::new()
    } else {
        parse_terms(filter, OPERATORS)?
    };
    for term in &terms {
        if field(&json!({}), &term.key).is_err() {
            return Err(ApiError::invalid_argument(format!(
                "Unsupported filter field \"{}\": the emulator filters on resource.type, resource.labels.K, labels.K, logName, severity, timestamp and insertId.",
                term.key
            )));
        }
    }
    let descending = match body.get("orderBy").and_then(Value::as_str).map(str::trim) {
        None | Some("") | Some("timestamp asc") => false,
        Some("timestamp desc") => true,
        Some(other) => {
            return Err(ApiError::bad_field(
                "order_by",
                format!(
                    "Invalid order_by \"{other}\": only \"timestamp asc\" and \"timestamp desc\" are permitted."
                ),
            ));
        }
    };
    let page_size = match body.get("pageSize").and_then(Value::as_i64) {
        None | Some(0) => DEFAULT_PAGE_SIZE,
        Some(n) if n < 0 => {
            return Err(ApiError::bad_field(
                "page_size",
                format!("Invalid page_size {n}: it must not be negative."),
            ));
        }
        Some(n) => usize::try_from(n)
            .unwrap_or(MAX_PAGE_SIZE)
            .min(MAX_PAGE_SIZE),
    };
    let offset = match body.get("pageToken").and_then(Value::as_str) {
        None | Some("") => 0,
        Some(token) => token.parse::<usize>().map_err(|_| {
            ApiError::bad_field("page_token", format!("Invalid page_token \"{token}\"."))
        })?,
    };

    let mut entries: Vec<Value> = stored_entries(context)
        .into_iter()
        .filter(|entry| {
            entry
                .pointer("/resource/labels/project_id")
                .and_then(Value::as_str)
                .is_some_and(|p| projects.iter().any(|wanted| wanted == p))
        })
        .filter(|entry| terms.iter().all(|term| matches(entry, term)))
        .collect();
    entries.sort_by(|a, b| {
        let key = |e: &Value| {
            (
                e["timestamp"].as_str().unwrap_or_default().to_string(),
                e["insertId"].as_str().unwrap_or_default().to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    if descending {
        entries.reverse();
    }
    let total = entries.len();
    let page: Vec<Value> = entries.into_iter().skip(offset).take(page_size).collect();
    let mut reply = json!({ "entries": page });
    if offset + page_size < total {
        reply["nextPageToken"] = json!((offset + page_size).to_string());
    }
    Ok(Reply::Json(reply))
}

/// The project ids of `resourceNames` (`projects/P`), or of the deprecated `projectIds`.
fn requested_projects(body: &Value) -> Result<Vec<String>, ApiError> {
    let mut projects = Vec::new();
    for name in body["resourceNames"].as_array().into_iter().flatten() {
        let name = name.as_str().unwrap_or_default();
        match name.strip_prefix("projects/") {
            Some(project) if !project.is_empty() && !project.contains('/') => {
                projects.push(project.to_string());
            }
            _ => {
                return Err(ApiError::bad_field(
                    "resource_names",
                    format!(
                        "Invalid resource name \"{name}\": the emulator serves projects/PROJECT_ID."
                    ),
                ));
            }
        }
    }
    for project in body["projectIds"].as_array().into_iter().flatten() {
        projects.extend(project.as_str().map(str::to_string));
    }
    if projects.is_empty() {
        return Err(ApiError::bad_field(
            "resource_names",
            "resource_names: Required field is not set.".into(),
        ));
    }
    Ok(projects)
}

/// Every entry the runtime filed (one JSON entry a line in `runtime/logs/*.jsonl`).
fn stored_entries(context: &Context<'_>) -> Vec<Value> {
    let Some(dir) = &context.runtime.logs.dir else {
        return Vec::new();
    };
    let Ok(files) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut entries = Vec::new();
    for file in files.flatten() {
        if file.path().extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(file.path()) else {
            continue;
        };
        // A line being written as we read is torn: skipped, it is whole next time.
        entries.extend(
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok()),
        );
    }
    entries
}

/// The entry's value of a filter field; `Err` for a field the emulator does not filter on.
fn field<'e>(entry: &'e Value, key: &str) -> Result<Option<&'e str>, ()> {
    let pointer = match key {
        "resource.type" => "/resource/type".to_string(),
        "logName" | "log_name" => "/logName".to_string(),
        "severity" => "/severity".to_string(),
        "timestamp" => "/timestamp".to_string(),
        "insertId" | "insert_id" => "/insertId".to_string(),
        other => {
            if let Some(label) = other.strip_prefix("resource.labels.") {
                format!("/resource/labels/{label}")
            } else if let Some(label) = other.strip_prefix("labels.") {
                format!("/labels/{}", label.replace('~', "~0").replace('/', "~1"))
            } else {
                return Err(());
            }
        }
    };
    Ok(entry.pointer(&pointer).and_then(Value::as_str))
}

fn matches(entry: &Value, term: &Term) -> bool {
    let Ok(value) = field(entry, &term.key) else {
        return false;
    };
    let Some(value) = value else {
        return term.op == "!=";
    };
    let ordering = match term.key.as_str() {
        "severity" => severity_rank(value).cmp(&severity_rank(&term.value)),
        "timestamp" => match (
            chrono::DateTime::parse_from_rfc3339(value),
            chrono::DateTime::parse_from_rfc3339(&term.value),
        ) {
            (Ok(a), Ok(b)) => a.cmp(&b),
            _ => value.cmp(term.value.as_str()),
        },
        _ => value.cmp(term.value.as_str()),
    };
    match term.op.as_str() {
        "=" => ordering == Ordering::Equal,
        "!=" => ordering != Ordering::Equal,
        ":" => value.contains(term.value.as_str()),
        ">" => ordering == Ordering::Greater,
        ">=" => ordering != Ordering::Less,
        "<" => ordering == Ordering::Less,
        "<=" => ordering != Ordering::Greater,
        _ => false,
    }
}

fn severity_rank(severity: &str) -> usize {
    SEVERITIES
        .iter()
        .position(|s| s.eq_ignore_ascii_case(severity))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(filter: &str) -> Term {
        parse_terms(filter, OPERATORS).unwrap().remove(0)
    }

    #[test]
    fn filters_compare_severity_by_rank_timestamps_as_times_and_labels_by_value() {
        let entry = json!({
            "severity": "WARNING",
            "timestamp": "2026-12-05T07:00:00.500000Z",
            "resource": {"type": "cloud_run_revision", "labels": {"service_name": "worker"}},
            "labels": {"run.googleapis.com/execution_name": "ingest-abc"},
        });
        assert!(matches(&entry, &term("severity>=WARNING")));
        assert!(!matches(&entry, &term("severity>=ERROR")));
        assert!(matches(&entry, &term("timestamp>\"2026-12-05T07:00:00Z\"")));
        assert!(!matches(
            &entry,
            &term("timestamp>\"2026-12-05T07:00:00.5Z\"")
        ));
        assert!(matches(
            &entry,
            &term("resource.labels.service_name=\"worker\"")
        ));
        assert!(!matches(
            &entry,
            &term("resource.labels.service_name=\"relay\"")
        ));
        assert!(field(&entry, "httpRequest.status").is_err());
    }
}

//! Cloud Logging v2 `entries.list` through a small typed REST module (the official crate is
//! gRPC-only): the entries Cloud Run filed for a service's revisions or a job's tasks, which
//! `stackctl logs` prints. The emulator serves the same call over its local processes' output.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Cloud;
use super::error::{ApiError, Silent};
use super::retry::retrying;

pub const GOOGLE_LOGGING: &str = "https://logging.googleapis.com";

/// One log entry as `stackctl logs` shows it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    #[serde(default)]
    pub insert_id: String,
    /// RFC 3339 with the fraction Google sends.
    #[serde(default)]
    pub timestamp: String,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub text_payload: Option<String>,
    #[serde(default)]
    pub json_payload: Option<Value>,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

impl LogEntry {
    /// The line a person reads: the text, or a JSON payload's `message` (its other fields
    /// compact after it), or the payload itself.
    pub fn message(&self) -> String {
        if let Some(text) = &self.text_payload {
            return text.clone();
        }
        let Some(payload) = &self.json_payload else {
            return String::new();
        };
        let mut rest = payload.as_object().cloned().unwrap_or_default();
        match rest.remove("message").or_else(|| rest.remove("msg")) {
            Some(Value::String(message)) if rest.is_empty() => message,
            Some(Value::String(message)) => format!("{message} {}", Value::Object(rest)),
            _ => payload.to_string(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntriesPage {
    #[serde(default)]
    entries: Vec<LogEntry>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// Which entries to read.
#[derive(Debug, Clone)]
pub struct LogQuery {
    /// The Logging filter (`resource.type="cloud_run_revision" AND ...`).
    pub filter: String,
    /// Newest first (to take the last N), else oldest first.
    pub newest_first: bool,
    /// At most this many entries.
    pub limit: usize,
}

impl Cloud {
    /// Up to `query.limit` entries of this project matching the filter, in the asked order.
    pub async fn list_log_entries(&self, query: &LogQuery) -> Result<Vec<LogEntry>, ApiError> {
        let resource = format!("projects/{}", self.project);
        let mut entries = Vec::new();
        let mut token = String::new();
        loop {
            let page_size = (query.limit - entries.len()).min(1000);
            let mut body = json!({
                "resourceNames": [resource],
                "filter": query.filter,
                "orderBy": if query.newest_first { "timestamp desc" } else { "timestamp asc" },
                "pageSize": page_size,
            });
            if !token.is_empty() {
                body["pageToken"] = json!(token);
            }
            let page: EntriesPage = retrying(self.backoff, &Silent, || async {
                let request = self
                    .logging
                    .request(Method::POST, "/v2/entries:list")
                    .json(&body);
                self.logging
                    .json("logging.entries.list", &resource, request)
                    .await
            })
            .await?;
            entries.extend(page.entries);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) if entries.len() < query.limit => token = next,
                _ => break,
            }
        }
        entries.truncate(query.limit);
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_payload_reads_as_its_message_then_its_other_fields() {
        let entry: LogEntry = serde_json::from_value(json!({
            "insertId": "1", "timestamp": "2026-12-05T07:00:00Z", "severity": "INFO",
            "jsonPayload": {"message": "task done", "task": "t1"}
        }))
        .unwrap();
        assert_eq!(entry.message(), r#"task done {"task":"t1"}"#);
        let text: LogEntry =
            serde_json::from_value(json!({"textPayload": "listening on 8080"})).unwrap();
        assert_eq!(text.message(), "listening on 8080");
    }
}

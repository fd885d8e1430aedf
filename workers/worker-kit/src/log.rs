//! Structured log lines: one JSON object per line on stdout, the shape Cloud Logging parses from
//! a Cloud Run container (`severity`, `message`, `logging.googleapis.com/trace`, and fields).
//! Callers never pass secret values here.

use std::io::Write;

use serde_json::{Map, Value};

/// Cloud Logging severities the workers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Debug,
    Info,
    Warning,
    Error,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Warning => "WARNING",
            Self::Error => "ERROR",
        }
    }
}

/// Writes log lines for one service in one project (the project names the trace).
#[derive(Debug, Clone)]
pub struct Logger {
    project: String,
    service: &'static str,
}

impl Logger {
    pub fn new(project: impl Into<String>, service: &'static str) -> Self {
        Self {
            project: project.into(),
            service,
        }
    }

    /// The trace of a request from its `X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1` header, as
    /// `projects/PROJECT/traces/TRACE_ID`.
    pub fn trace_of(&self, trace_context: Option<&str>) -> Option<String> {
        let trace_id = trace_context?.split('/').next()?.trim();
        (!trace_id.is_empty() && trace_id.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| format!("projects/{}/traces/{trace_id}", self.project))
    }

    /// A line at `severity`; add fields, then [`Entry::emit`].
    pub fn entry(&self, severity: Severity, message: impl Into<String>) -> Entry {
        let mut fields = Map::new();
        fields.insert("severity".into(), severity.as_str().into());
        fields.insert("message".into(), Value::String(message.into()));
        fields.insert("service".into(), self.service.into());
        Entry { fields }
    }

    pub fn info(&self, message: impl Into<String>) -> Entry {
        self.entry(Severity::Info, message)
    }

    pub fn warning(&self, message: impl Into<String>) -> Entry {
        self.entry(Severity::Warning, message)
    }

    pub fn error(&self, message: impl Into<String>) -> Entry {
        self.entry(Severity::Error, message)
    }
}

/// One log line being built.
#[derive(Debug, Clone)]
pub struct Entry {
    fields: Map<String, Value>,
}

impl Entry {
    /// Sets `logging.googleapis.com/trace` (see [`Logger::trace_of`]).
    pub fn trace(mut self, trace: Option<&str>) -> Self {
        if let Some(trace) = trace {
            self.fields
                .insert("logging.googleapis.com/trace".into(), trace.into());
        }
        self
    }

    pub fn field(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }

    /// The line as written.
    pub fn to_line(&self) -> String {
        Value::Object(self.fields.clone()).to_string()
    }

    pub fn emit(self) {
        let line = self.to_line();
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_carries_severity_message_trace_and_fields() {
        let logger = Logger::new("acme", "task-worker");
        let trace = logger.trace_of(Some("105445aa7843bc8bf206b12000100000/1;o=1"));
        assert_eq!(
            trace.as_deref(),
            Some("projects/acme/traces/105445aa7843bc8bf206b12000100000")
        );
        assert_eq!(logger.trace_of(Some("not a trace")), None);
        assert_eq!(logger.trace_of(None), None);
        let line: Value = serde_json::from_str(
            &logger
                .error("boom")
                .trace(trace.as_deref())
                .field("webhookId", "w1")
                .to_line(),
        )
        .unwrap();
        assert_eq!(line["severity"], "ERROR");
        assert_eq!(line["message"], "boom");
        assert_eq!(line["webhookId"], "w1");
        assert_eq!(
            line["logging.googleapis.com/trace"],
            "projects/acme/traces/105445aa7843bc8bf206b12000100000"
        );
    }
}

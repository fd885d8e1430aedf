//! Structured log lines: one JSON object per line on stdout, the shape Cloud Logging parses from
//! a Cloud Run container (`severity`, `message`, `logging.googleapis.com/trace`, and fields).
//! Callers never pass secret values here. A test can capture a logger's lines instead
//! ([`Logger::capturing`]) to check what a worker writes.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

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

/// The lines a capturing logger wrote, in order (tests only; see [`Logger::capturing`]).
#[derive(Debug, Clone, Default)]
pub struct CapturedLines(Arc<Mutex<Vec<String>>>);

impl CapturedLines {
    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, line: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }
}

/// Writes log lines for one service in one project (the project names the trace).
#[derive(Debug, Clone)]
pub struct Logger {
    project: String,
    service: &'static str,
    /// Set by [`Logger::capturing`]: lines go there instead of stdout.
    captured: Option<CapturedLines>,
}

impl Logger {
    pub fn new(project: impl Into<String>, service: &'static str) -> Self {
        Self {
            project: project.into(),
            service,
            captured: None,
        }
    }

    /// A logger whose lines are kept in the returned [`CapturedLines`] instead of written to
    /// stdout: for tests that check what a worker logs (and what it never logs).
    pub fn capturing(project: impl Into<String>, service: &'static str) -> (Self, CapturedLines) {
        let captured = CapturedLines::default();
        let logger = Self {
            captured: Some(captured.clone()),
            ..Self::new(project, service)
        };
        (logger, captured)
    }

    /// The trace of a request from its `X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1` header, as
    /// `projects/PROJECT/traces/TRACE_ID`; none when the project is unknown (empty).
    pub fn trace_of(&self, trace_context: Option<&str>) -> Option<String> {
        if self.project.is_empty() {
            return None;
        }
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
        Entry {
            fields,
            captured: self.captured.clone(),
        }
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
    captured: Option<CapturedLines>,
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
        if let Some(captured) = &self.captured {
            captured.push(line);
            return;
        }
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
        assert_eq!(
            Logger::new("", "task-worker").trace_of(Some("105445aa7843bc8bf206b12000100000/1")),
            None,
            "no project, no trace"
        );
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

    #[test]
    fn a_capturing_logger_keeps_its_lines_in_order() {
        let (logger, captured) = Logger::capturing("acme", "crm-proxy");
        logger.info("first").emit();
        logger.warning("second").field("attempts", 2).emit();
        let lines: Vec<Value> = captured
            .lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["message"], "first");
        assert_eq!(lines[1]["severity"], "WARNING");
        assert_eq!(lines[1]["attempts"], 2);
    }
}

//! Local processes under Cloud Run's contract: started from an unpacked image with the env the
//! runtime gives them, their output captured line by line (as Cloud Logging entries in
//! `<state>/runtime/logs/NAME.jsonl`, and to whoever follows the runtime's log stream), stopped with SIGTERM then SIGKILL after the
//! grace period Cloud Run gives (10 s).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use std::io::Write;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::images::Unpacked;

/// Cloud Run's shutdown grace: SIGTERM, then SIGKILL after this long.
pub const GRACE: Duration = Duration::from_secs(10);

/// One line a local process printed.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// `service.NAME` or `job.NAME`.
    pub source: String,
    pub line: String,
}

/// Whose output a line is: the name `up` shows and the Cloud Logging resource it is filed under
/// (`cloud_run_revision` with `service_name`/`revision_name`, or `cloud_run_job` with
/// `job_name`), as Cloud Run files its containers' output.
#[derive(Debug, Clone)]
pub struct LogSource {
    /// `service.ID` or `job.ID`; also the log file's stem.
    pub name: String,
    /// The monitored resource: `{"type": ..., "labels": {...}}`.
    pub resource: Value,
    /// The entry's own labels (`run.googleapis.com/execution_name`, ...).
    pub labels: Value,
}

impl LogSource {
    /// A Cloud Run service revision's output.
    pub fn revision(project: &str, location: &str, service: &str, revision: &str) -> Self {
        Self {
            name: format!("service.{service}"),
            resource: json!({"type": "cloud_run_revision", "labels": {
                "project_id": project, "location": location, "service_name": service,
                "revision_name": revision, "configuration_name": service}}),
            labels: json!({}),
        }
    }

    /// A Cloud Run job task's output.
    pub fn job_task(project: &str, location: &str, job: &str, execution: &str, task: u64) -> Self {
        Self {
            name: format!("job.{job}"),
            resource: json!({"type": "cloud_run_job", "labels": {
                "project_id": project, "location": location, "job_name": job}}),
            labels: json!({"run.googleapis.com/execution_name": execution,
                "run.googleapis.com/task_index": task.to_string()}),
        }
    }

    /// The Cloud Logging entry for one line on `stream` (`stdout`/`stderr`): a JSON object line
    /// becomes `jsonPayload` with its `severity` lifted onto the entry, anything else
    /// `textPayload`, as Cloud Run's logging agent does.
    pub fn entry(&self, stream: &str, line: &str, now: chrono::DateTime<chrono::Utc>) -> Value {
        static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let sequence = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let project = self.resource["labels"]["project_id"]
            .as_str()
            .unwrap_or_default();
        let mut entry = json!({
            "insertId": format!("{:x}{sequence:06x}", now.timestamp_micros()),
            "logName": format!("projects/{project}/logs/run.googleapis.com%2F{stream}"),
            "resource": self.resource,
            "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "receiveTimestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "severity": "DEFAULT",
        });
        if self.labels.as_object().is_some_and(|l| !l.is_empty()) {
            entry["labels"] = self.labels.clone();
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(mut payload)) => {
                if let Some(Value::String(severity)) = payload.remove("severity") {
                    entry["severity"] = Value::String(severity.to_ascii_uppercase());
                }
                entry["jsonPayload"] = Value::Object(payload);
            }
            _ => entry["textPayload"] = Value::String(line.to_string()),
        }
        entry
    }
}

/// Where output goes: a file of Cloud Logging entries per source (what `entries.list` and
/// `stackctl logs` read), and a broadcast for live followers (`up`).
#[derive(Debug, Clone)]
pub struct LogSink {
    pub dir: Option<PathBuf>,
    pub live: tokio::sync::broadcast::Sender<LogLine>,
    /// How many started processes still have their output open (still running).
    pub processes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl LogSink {
    /// The file a source's entries are appended to (one JSON entry a line).
    pub fn file_of(&self, source: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{source}.jsonl")))
    }

    /// Files and broadcasts one line of `source` (the runtime's own notes), opening its file
    /// for this line only.
    pub fn record(&self, source: &LogSource, stream: &str, line: String) {
        let mut file = self.open(source);
        self.write(&mut file, source, stream, line);
    }

    /// The source's log file opened for appending (`None` in memory, or when it cannot be
    /// opened, which is said once).
    fn open(&self, source: &LogSource) -> Option<std::fs::File> {
        let path = self.file_of(&source.name)?;
        let opened = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
            });
        opened
            .map_err(|e| {
                tracing::warn!(file = %path.display(), error = %e, "cannot open a process log");
            })
            .ok()
    }

    /// Appends one line's entry to `file` (if any) and broadcasts the line.
    fn write(
        &self,
        file: &mut Option<std::fs::File>,
        source: &LogSource,
        stream: &str,
        line: String,
    ) {
        if let Some(open) = file {
            let entry = source.entry(stream, &line, chrono::Utc::now());
            if let Err(e) = writeln!(open, "{entry}") {
                tracing::warn!(source = %source.name, error = %e, "cannot write a process log");
            }
        }
        let _ = self.live.send(LogLine {
            source: source.name.clone(),
            line,
        });
    }
}

/// Starts `image` with `env` (the image's own env first, then the runtime's); output to `sink`.
pub fn spawn(
    image: &Unpacked,
    env: &[(String, String)],
    source: &LogSource,
    sink: &LogSink,
) -> std::io::Result<Child> {
    let mut command = Command::new(&image.program);
    command
        .args(&image.args)
        .current_dir(&image.working_dir)
        .env_clear()
        .envs(image.env.iter().cloned())
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    let mut child = command.spawn()?;
    if let Some(out) = child.stdout.take() {
        let processes = std::sync::Arc::clone(&sink.processes);
        processes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (source, sink) = (source.clone(), sink.clone());
        tokio::spawn(async move {
            capture(out, "stdout", source, sink).await;
            processes.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        });
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(capture(err, "stderr", source.clone(), sink.clone()));
    }
    Ok(child)
}

async fn capture(
    stream: impl tokio::io::AsyncRead + Unpin,
    name: &'static str,
    source: LogSource,
    sink: LogSink,
) {
    let mut lines = BufReader::new(stream).lines();
    let mut file = sink.open(&source);
    while let Ok(Some(line)) = lines.next_line().await {
        sink.write(&mut file, &source, name, line);
    }
}

/// SIGTERM, then SIGKILL once `grace` has passed; returns when the process is gone.
pub async fn stop(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

/// A free loopback port for a process to listen on.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// Waits until something listens on `port` (a service's startup), up to `within`.
pub async fn wait_listening(port: u16, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

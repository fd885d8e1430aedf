//! Local processes under Cloud Run's contract: started from an unpacked image with the env the
//! runtime gives them, their output captured line by line (to `<state>/runtime/logs/NAME.log`
//! and to whoever follows the runtime's log stream), stopped with SIGTERM then SIGKILL after the
//! grace period Cloud Run gives (10 s).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
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

/// Where output goes: a file per source, and a broadcast for live followers (`up`, `logs -f`).
#[derive(Debug, Clone)]
pub struct LogSink {
    pub dir: Option<PathBuf>,
    pub live: tokio::sync::broadcast::Sender<LogLine>,
    /// How many started processes still have their output open (still running).
    pub processes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl LogSink {
    /// The file a source's output is appended to.
    pub fn file_of(&self, source: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{source}.log")))
    }
}

/// Starts `image` with `env` (the image's own env first, then the runtime's); output to `sink`.
pub fn spawn(
    image: &Unpacked,
    env: &[(String, String)],
    source: &str,
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
        let (source, sink) = (source.to_string(), sink.clone());
        tokio::spawn(async move {
            capture(out, source, sink).await;
            processes.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        });
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(capture(err, source.to_string(), sink.clone()));
    }
    Ok(child)
}

async fn capture(stream: impl tokio::io::AsyncRead + Unpin, source: String, sink: LogSink) {
    let mut lines = BufReader::new(stream).lines();
    let mut file = match sink.file_of(&source) {
        Some(path) => {
            if let Some(parent) = path.parent() {
                let _ = tokio::fs::create_dir_all(parent).await;
            }
            tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await
                .ok()
        }
        None => None,
    };
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(file) = file.as_mut() {
            let _ = file.write_all(format!("{line}\n").as_bytes()).await;
        }
        let _ = sink.live.send(LogLine {
            source: source.clone(),
            line,
        });
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

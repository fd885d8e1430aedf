//! `--local`: the emulator in-process, its state in `.stackctl/local/` beside the stack file; or,
//! while `stackctl up --local` serves that directory, the running one (found through
//! `.stackctl/local/up.json`), so commands talk to it instead of failing on the directory's lock.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// What `up` writes while it serves a state directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpFile {
    pub url: String,
    pub pid: u32,
}

const UP_FILE: &str = "up.json";

pub enum LocalEmulator {
    InProcess(gcp_emulator::RunningEmulator),
    /// The emulator `stackctl up` serves.
    Attached {
        url: String,
    },
}

/// `.stackctl/local/` beside the stack file, or `STACKCTL_LOCAL_DIR`.
pub fn state_dir(stack_file: &Path) -> PathBuf {
    // Elsewhere on request: a test (or a read-only checkout) keeps the local cloud out of the
    // stack's directory.
    if let Some(dir) = std::env::var_os("STACKCTL_LOCAL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let dir = stack_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(".stackctl").join("local")
}

pub fn up_file(stack_file: &Path) -> PathBuf {
    state_dir(stack_file).join(UP_FILE)
}

/// The emulator a live `up` serves for this stack, if one does (its process runs and answers).
pub async fn running_up(stack_file: &Path) -> Option<String> {
    let raw = std::fs::read(up_file(stack_file)).ok()?;
    let up: UpFile = serde_json::from_slice(&raw).ok()?;
    if !Path::new("/proc").join(up.pid.to_string()).exists() {
        return None;
    }
    let health = format!("{}/_emulator/health", up.url);
    let answered = reqwest::Client::new()
        .get(health)
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    answered.then_some(up.url)
}

impl LocalEmulator {
    pub async fn start(stack_file: &Path) -> Result<Self> {
        if let Some(url) = running_up(stack_file).await {
            return Ok(Self::Attached { url });
        }
        Ok(Self::InProcess(
            start_in_process(stack_file, false, 0).await?,
        ))
    }

    pub fn url(&self) -> String {
        match self {
            Self::InProcess(running) => running.url(),
            Self::Attached { url } => url.clone(),
        }
    }

    pub async fn shutdown(self) {
        if let Self::InProcess(running) = self {
            running.shutdown().await;
        }
    }
}

/// Starts the emulator on the stack's local state directory (`execute`: run the stack too).
pub async fn start_in_process(
    stack_file: &Path,
    execute: bool,
    port: u16,
) -> Result<gcp_emulator::RunningEmulator> {
    let dir = state_dir(stack_file);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the local state directory {}", dir.display()))?;
    let mut settings = gcp_emulator::Settings::from_env()?;
    settings.state_dir = Some(dir.clone());
    settings.execute |= execute;
    gcp_emulator::start(settings, port).await.with_context(|| {
        format!("starting the local emulator on {} (if `stackctl emulator --state-dir {}` is serving it, use --endpoint with its URL instead of --local)", dir.display(), dir.display())
    })
}

//! `--local`: the emulator in-process, its state in `.stackctl/local/` beside the stack file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub struct LocalEmulator {
    running: gcp_emulator::RunningEmulator,
}

/// `.stackctl/local/` beside the stack file.
pub fn state_dir(stack_file: &Path) -> PathBuf {
    let dir = stack_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(".stackctl").join("local")
}

impl LocalEmulator {
    pub async fn start(stack_file: &Path) -> Result<Self> {
        let dir = state_dir(stack_file);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the local state directory {}", dir.display()))?;
        let mut settings = gcp_emulator::Settings::from_env()?;
        settings.state_dir = Some(dir.clone());
        let running = gcp_emulator::start(settings, 0).await.with_context(|| {
            format!("starting the local emulator on {} (if `stackctl emulator --state-dir {}` is serving it, use --endpoint with its URL instead of --local)", dir.display(), dir.display())
        })?;
        Ok(Self { running })
    }

    pub fn url(&self) -> String {
        self.running.url()
    }

    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}

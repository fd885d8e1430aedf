//! A local stand-in for the Google Cloud REST/JSON APIs stackctl uses (Cloud Tasks v2, Cloud Run
//! Admin v2 services and jobs, a Cloud Storage JSON subset, Resource Manager v3, IAM, Cloud
//! Scheduler, BigQuery, Billing Budgets, the Cloud Billing Catalog, Monitoring, Artifact Registry,
//! Secret Manager, Service Usage), faithful enough that Google's official clients cannot tell it
//! from Google.

mod admin;
mod apis;
mod blobs;
mod conventions;
mod discovery;
mod emulator;
mod faults;
mod http;
pub mod runtime;
mod server;
mod state;
mod store;
mod table_rows;
mod tracked;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub use emulator::Emulator;
pub use faults::{FaultPlan, FaultRule};
pub use server::{RunningEmulator, start};

/// Locks a mutex, recovering the data if a handler panicked while holding it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How an emulator instance behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Where state is persisted; `None` keeps it in memory only.
    pub state_dir: Option<PathBuf>,
    /// How many GETs a long-running operation stays `done: false` (0 = done immediately).
    pub operation_polls: u32,
    /// How long a deleted queue's name cannot be reused.
    pub queue_tombstone: Duration,
    /// Initial fault rules.
    pub faults: FaultPlan,
    /// Answer 403 `SERVICE_DISABLED` for APIs not enabled through Service Usage.
    pub enforce_services: bool,
    /// Run the stack (`stackctl up --local`): dispatch tasks, fire schedules, execute jobs, run
    /// services. Off, the emulator only stores configuration.
    pub execute: bool,
    /// How long a service's front holds a request waiting for a free slot before 429 (Cloud
    /// Run: 60 s).
    pub front_queue_timeout: Duration,
}

pub const ENV_OPERATION_POLLS: &str = "STACKCTL_EMULATOR_OPERATION_POLLS";
pub const ENV_QUEUE_TOMBSTONE_SECS: &str = "STACKCTL_EMULATOR_QUEUE_TOMBSTONE_SECS";
pub const ENV_FAULTS: &str = "STACKCTL_EMULATOR_FAULTS";
pub const ENV_ENFORCE_SERVICES: &str = "STACKCTL_EMULATOR_ENFORCE_SERVICES";
pub const ENV_EXECUTE: &str = "STACKCTL_EMULATOR_EXECUTE";
pub const ENV_FRONT_QUEUE_SECS: &str = "STACKCTL_EMULATOR_FRONT_QUEUE_SECS";
/// Permissions every `testIamPermissions` (the project's and each resource's) answers as not
/// held, comma-separated: a caller without them; `PERMISSION@NAME` only on the resource of that
/// full name, e.g. a deny on one queue (read at each call; `stackctl doctor`'s tests).
pub const ENV_DENIED_PERMISSIONS: &str = "STACKCTL_EMULATOR_DENIED_PERMISSIONS";

impl Default for Settings {
    fn default() -> Self {
        Self {
            state_dir: None,
            operation_polls: 1,
            queue_tombstone: Duration::from_secs(3 * 24 * 60 * 60),
            faults: FaultPlan::default(),
            enforce_services: false,
            execute: false,
            front_queue_timeout: Duration::from_secs(60),
        }
    }
}

impl Settings {
    /// Defaults overridden by `STACKCTL_EMULATOR_OPERATION_POLLS`,
    /// `STACKCTL_EMULATOR_QUEUE_TOMBSTONE_SECS`, `STACKCTL_EMULATOR_FAULTS` (JSON, the shape
    /// of `POST /_emulator/faults`) and `STACKCTL_EMULATOR_ENFORCE_SERVICES` (`1`/`true`).
    pub fn from_env() -> Result<Self, EmulatorError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EmulatorError> {
        let mut settings = Self::default();
        let invalid = |name: &str, reason: String| EmulatorError::InvalidSetting {
            name: name.to_string(),
            reason,
        };
        if let Some(raw) = lookup(ENV_OPERATION_POLLS).filter(|v| !v.trim().is_empty()) {
            settings.operation_polls = raw
                .trim()
                .parse()
                .map_err(|e| invalid(ENV_OPERATION_POLLS, format!("{raw:?}: {e}")))?;
        }
        if let Some(raw) = lookup(ENV_QUEUE_TOMBSTONE_SECS).filter(|v| !v.trim().is_empty()) {
            let seconds: u64 = raw
                .trim()
                .parse()
                .map_err(|e| invalid(ENV_QUEUE_TOMBSTONE_SECS, format!("{raw:?}: {e}")))?;
            settings.queue_tombstone = Duration::from_secs(seconds);
        }
        if let Some(raw) = lookup(ENV_FAULTS).filter(|v| !v.trim().is_empty()) {
            settings.faults =
                serde_json::from_str(&raw).map_err(|e| invalid(ENV_FAULTS, e.to_string()))?;
        }
        if let Some(raw) = lookup(ENV_FRONT_QUEUE_SECS).filter(|v| !v.trim().is_empty()) {
            let seconds: f64 = raw
                .trim()
                .parse()
                .map_err(|e| invalid(ENV_FRONT_QUEUE_SECS, format!("{raw:?}: {e}")))?;
            settings.front_queue_timeout = Duration::from_secs_f64(seconds.max(0.0));
        }
        for (name, flag) in [
            (ENV_ENFORCE_SERVICES, &mut settings.enforce_services),
            (ENV_EXECUTE, &mut settings.execute),
        ] {
            if let Some(raw) = lookup(name).filter(|v| !v.trim().is_empty()) {
                *flag = match raw.trim() {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    other => return Err(invalid(name, format!("{other:?}: expected 1 or 0"))),
                };
            }
        }
        Ok(settings)
    }
}

/// Why the emulator could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("invalid setting {name}: {reason}")]
    InvalidSetting { name: String, reason: String },
    #[error("state directory {} is in use by another emulator process (lock {} is held)", dir.display(), lock.display())]
    StateDirLocked { dir: PathBuf, lock: PathBuf },
    #[error("cannot use state directory {}: {source}", dir.display())]
    StateDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("state file {} is unreadable: {source}", path.display())]
    StateCorrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error(transparent)]
    Discovery(#[from] discovery::DiscoveryError),
    #[error("emulator server failed: {0}")]
    Serve(std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_read_overrides_from_env() {
        let env = |name: &str| match name {
            ENV_OPERATION_POLLS => Some("0".to_string()),
            ENV_QUEUE_TOMBSTONE_SECS => Some("5".to_string()),
            ENV_FAULTS => Some(r#"{"seed":1,"rules":[{"status":503,"count":1}]}"#.to_string()),
            ENV_ENFORCE_SERVICES => Some("1".to_string()),
            _ => None,
        };
        let settings = Settings::from_lookup(env).expect("valid env");
        assert_eq!(settings.operation_polls, 0);
        assert_eq!(settings.queue_tombstone, Duration::from_secs(5));
        assert_eq!(settings.faults.rules[0].status, Some(503));
        assert!(settings.enforce_services);
        let bad = Settings::from_lookup(|n| (n == ENV_FAULTS).then(|| "{".to_string()));
        assert!(matches!(bad, Err(EmulatorError::InvalidSetting { .. })));
    }
}

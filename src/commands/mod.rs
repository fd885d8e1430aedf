//! One module per verb; this one holds what they share: loading the stack, reaching the cloud,
//! observing it, and exit statuses.

mod adopt;
mod api_key;
mod apply;
mod audit;
mod build;
mod cost;
mod deploy;
mod destroy;
mod doctor;
mod emulator;
mod forget;
mod import;
mod init;
mod live_prices;
mod local;
mod logs;
mod man;
mod plan;
mod rollback;
mod secret;
mod traffic;
mod unlock;
mod up;
mod validate;

use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::cli::{Cli, Command};
use crate::config::Stack;
use crate::model::Endpoint;
use crate::plan::{Observed, PlanTarget};
use crate::provider::Cloud;
use crate::state::LedgerStore;
use crate::ui::Printer;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: success, or no changes.
    Success,
    /// 1: an error, a declined prompt, a stale plan, a partial failure.
    Failure,
    /// 2: `plan --detailed-exitcode` found changes.
    Changes,
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> Self {
        match s {
            ExitStatus::Success => ExitCode::SUCCESS,
            ExitStatus::Failure => ExitCode::from(1),
            ExitStatus::Changes => ExitCode::from(2),
        }
    }
}

pub async fn run(cli: Cli) -> Result<ExitStatus> {
    let printer = Printer::new(cli.no_color, cli.quiet);
    match &cli.command {
        Command::Init(args) => init::run(&cli, args, &printer),
        Command::Validate => validate::run(&cli, &printer),
        Command::Doctor => doctor::run(&cli, &printer).await,
        Command::Plan(args) => plan::run(&cli, args, &printer).await,
        Command::Apply(args) => apply::run(&cli, args, &printer).await,
        Command::Adopt(args) => adopt::run(&cli, args, &printer).await,
        Command::Import(args) => import::run(&cli, args, &printer).await,
        Command::Destroy(args) => destroy::run(&cli, args, &printer).await,
        Command::Forget(args) => forget::run(&cli, args, &printer).await,
        Command::Unlock(args) => unlock::run(&cli, args, &printer).await,
        Command::Cost(args) => cost::run(&cli, args, &printer).await,
        Command::Audit(args) => audit::run(&cli, args, &printer).await,
        Command::Build(args) => build::run(&cli, args, &printer).await,
        Command::Deploy(args) => deploy::run(&cli, args, &printer).await,
        Command::Traffic(args) => traffic::run(&cli, args, &printer).await,
        Command::Rollback(args) => rollback::run(&cli, args, &printer).await,
        Command::Emulator(args) => emulator::run(args).await,
        Command::Up(args) => up::run(&cli, args, &printer).await,
        Command::Secret(command) => secret::run(&cli, command, &printer).await,
        Command::ApiKey(command) => api_key::run(&cli, command, &printer).await,
        Command::Logs(args) => logs::run(&cli, args, &printer).await,
        Command::Man(args) => man::run(args, &printer),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "stackctl", &mut std::io::stdout());
            Ok(ExitStatus::Success)
        }
    }
}

/// Loads and validates the stack file, printing every config error. `None` = invalid.
pub(crate) fn load_stack(cli: &Cli, printer: &Printer) -> Option<Stack> {
    match crate::config::load(&cli.file) {
        Ok(stack) => match stack.with_overrides(cli.project.as_deref(), cli.region.as_deref()) {
            Ok(stack) => Some(stack),
            Err(error) => {
                printer.err(&format!("error: {error}"));
                None
            }
        },
        Err(errors) => {
            printer.err(&errors.to_string());
            None
        }
    }
}

/// A connection to the cloud the flags name, plus the in-process emulator for `--local`.
pub(crate) struct Session {
    pub cloud: Cloud,
    pub stack: Stack,
    local: Option<local::LocalEmulator>,
}

impl Session {
    pub async fn open(cli: &Cli, stack: Stack) -> Result<Self> {
        let env_endpoint = std::env::var("STACKCTL_ENDPOINT")
            .ok()
            .filter(|s| !s.is_empty());
        let (endpoint, local) = match (cli.local, &cli.endpoint) {
            (true, Some(_)) => bail!(
                "--local and --endpoint are mutually exclusive: --local starts its own emulator; use one or the other"
            ),
            (true, None) => {
                let emulator = local::LocalEmulator::start(&stack.file).await?;
                (
                    Endpoint::Local {
                        url: emulator.url(),
                    },
                    Some(emulator),
                )
            }
            (false, Some(url)) => (Endpoint::Custom { url: url.clone() }, None),
            (false, None) => match env_endpoint {
                Some(url) => (Endpoint::Custom { url }, None),
                None => (Endpoint::Google, None),
            },
        };
        let cloud =
            Cloud::connect(endpoint, &stack.settings.project, &stack.settings.region).await?;
        Ok(Self {
            cloud,
            stack,
            local,
        })
    }

    pub fn target(&self) -> PlanTarget {
        PlanTarget {
            stack: self.stack.settings.name.clone(),
            project: self.stack.settings.project.clone(),
            region: self.stack.settings.region.clone(),
            endpoint: self.cloud.endpoint.clone(),
        }
    }

    /// Reads the ledger and lists every kind once (in parallel), then the IAM policies that
    /// declared grants and ledger bindings point at. What could not be listed (an API not
    /// enabled yet) is noted on stderr.
    pub async fn observe(&self, printer: &Printer) -> Result<(Observed, LedgerStore)> {
        let (inventory, ledger) =
            crate::resources::inventory::observe_stack(&self.cloud, &self.stack).await?;
        for note in &inventory.notes {
            printer.note(&format!("note: {note}"));
        }
        Ok((inventory.observed, ledger))
    }

    /// Stops the in-process emulator (flushing its state).
    /// Warnings for declared secrets that a service or job reads but that have no enabled
    /// version yet: Cloud Run refuses to start such a revision, so the apply would fail there.
    pub async fn secret_version_warnings(&self) -> Vec<String> {
        let stack = &self.stack;
        let mut readers: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        let services = stack
            .services
            .iter()
            .map(|(n, s)| (format!("service.{n}"), &s.secrets));
        let jobs = stack
            .jobs
            .iter()
            .map(|(n, j)| (format!("job.{n}"), &j.secrets));
        for (reader, secrets) in services.chain(jobs) {
            for secret in secrets.values() {
                readers
                    .entry(secret.name.as_str())
                    .or_default()
                    .push(reader.clone());
            }
        }
        let mut warnings = Vec::new();
        for (name, readers) in readers {
            let Some(config) = stack.secrets.get(name) else {
                continue;
            };
            let has_version = match self.cloud.secret_has_enabled_version(&config.id).await {
                Ok(has) => has.unwrap_or(false),
                Err(e) => {
                    tracing::debug!(secret = name, error = %e, "cannot check the secret's versions");
                    continue;
                }
            };
            if !has_version {
                let (last, others) = readers.split_last().expect("a secret listed has readers");
                let who = if others.is_empty() {
                    format!("{last} reads it")
                } else {
                    format!("{} and {last} read it", others.join(", "))
                };
                warnings.push(format!(
                    "warning: secret.{name} has no enabled version, and {who}: Cloud Run will not start {} until it has one; add it with `stackctl secret set {name}{}`",
                    if others.is_empty() { "it" } else { "them" },
                    self.cloud.endpoint.command_flags(),
                ));
            }
        }
        warnings
    }

    /// Creates the state bucket (ownership ledger and apply lock) on first use.
    pub async fn ensure_state_bucket(&self, printer: &Printer) -> Result<()> {
        let storage = self.cloud.storage();
        let bucket = self.stack.state_bucket();
        if !storage.bucket_exists(&bucket).await? {
            printer.note(&format!(
                "Creating the state bucket gs://{bucket} (ownership ledger and apply lock)."
            ));
            let settings = &self.stack.settings;
            storage
                .create_bucket(&settings.project, &bucket, &settings.region)
                .await?;
        }
        Ok(())
    }

    /// Runs `body` on the ledger read under the apply lock (a short lease), then releases the
    /// lock: for commands that only change ownership records (adopt, forget), so no apply runs
    /// while the ledger changes under it.
    pub async fn with_ownership_ledger<T>(
        &self,
        printer: &Printer,
        body: impl AsyncFnOnce(LedgerStore) -> Result<T>,
    ) -> Result<T> {
        let storage = self.cloud.storage();
        let (bucket, stack) = (self.stack.state_bucket(), &self.stack.settings.name);
        let lock = crate::state::ApplyLock::acquire(
            storage,
            &bucket,
            stack,
            &crate::state::lock::holder_name(),
            std::time::Duration::from_secs(300),
        )
        .await?;
        let result = async { body(LedgerStore::load(storage, &bucket, stack).await?).await }.await;
        if let Err(e) = lock.release().await {
            printer.err(&format!("warning: could not release the apply lock: {e}"));
        }
        result
    }

    pub async fn close(self) {
        if let Some(local) = self.local {
            local.shutdown().await;
        }
    }
}

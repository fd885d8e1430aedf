//! One module per verb; this one holds what they share: loading the stack, reaching the cloud,
//! observing it, and exit statuses.

mod adopt;
mod apply;
mod audit;
mod build;
mod cost;
mod deploy;
mod emulator;
mod live_prices;
mod local;
mod plan;
mod rollback;
mod traffic;
mod unlock;
mod validate;

use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use crate::cli::{Cli, Command};
use crate::config::Stack;
use crate::model::Endpoint;
use crate::plan::{Observed, PlanTarget};
use crate::provider::error::is_service_disabled;
use crate::provider::{Cloud, Silent};
use crate::state::LedgerStore;
use crate::ui::Printer;

/// A list of an API that is not enabled yet is empty: nothing of it can exist in the project.
async fn unless_disabled<T>(
    list: impl std::future::Future<Output = Result<Vec<T>, crate::provider::ApiError>>,
) -> Result<Vec<T>> {
    match list.await {
        Err(e) if is_service_disabled(&e) => Ok(Vec::new()),
        other => other.map_err(anyhow::Error::from),
    }
}

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
    let printer = Printer::new(cli.no_color);
    match &cli.command {
        Command::Validate => validate::run(&cli, &printer),
        Command::Plan(args) => plan::run(&cli, args, &printer).await,
        Command::Apply(args) => apply::run(&cli, args, &printer).await,
        Command::Adopt(args) => adopt::run(&cli, args, &printer).await,
        Command::Unlock => unlock::run(&cli, &printer).await,
        Command::Cost(args) => cost::run(&cli, args, &printer).await,
        Command::Audit(args) => audit::run(&cli, args, &printer).await,
        Command::Build(args) => build::run(&cli, args, &printer).await,
        Command::Deploy(args) => deploy::run(&cli, args, &printer).await,
        Command::Traffic(args) => traffic::run(&cli, args, &printer).await,
        Command::Rollback(args) => rollback::run(&cli, args, &printer).await,
        Command::Emulator(args) => emulator::run(args).await,
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
        Ok(stack) => Some(stack.with_overrides(cli.project.as_deref(), cli.region.as_deref())),
        Err(errors) => {
            printer.err(&errors.to_string());
            None
        }
    }
}

/// Lists an API's resources. A kind the stack does not declare is still listed (to find owned
/// leftovers), but an API that is not there (disabled: 403; absent from an emulator: 404/501)
/// then counts as holding nothing of ours.
async fn list_kind<T>(
    declared: bool,
    list: impl std::future::Future<Output = Result<Vec<T>, crate::provider::ApiError>>,
) -> Result<Vec<T>> {
    match list.await {
        Ok(v) => Ok(v),
        Err(e) if !declared && matches!(e.http_status, Some(403 | 404 | 501)) => {
            tracing::debug!("not listing: {e}");
            Ok(Vec::new())
        }
        Err(e) => Err(e.into()),
    }
}

/// BigQuery, Artifact Registry, Monitoring and Billing: what the data, money and observability
/// kinds observe (datasets this stack declares or owns, with their tables).
async fn observe_data_kinds(
    cloud: &Cloud,
    stack: &Stack,
    ledger: &crate::state::Ledger,
) -> Result<Observed> {
    use crate::model::Kind;
    let owner = stack.settings.name.as_str();
    let ledger_has = |kind: Kind| ledger.resources.values().any(|e| e.address.kind == kind);
    let bigquery = async {
        let declared = !stack.datasets.is_empty() || !stack.tables.is_empty();
        let ids = list_kind(declared, cloud.list_datasets(&Silent)).await?;
        let wanted: std::collections::BTreeSet<String> =
            stack.datasets.values().map(|d| d.id.clone()).collect();
        let mut datasets = Vec::new();
        let mut tables = Vec::new();
        for (id, labels) in ids {
            let ours = labels
                .get(crate::resources::OWNER_LABEL)
                .map(String::as_str)
                == Some(owner);
            if !(ours || wanted.contains(&id)) {
                continue;
            }
            if let Some(d) = cloud.get_dataset(&id, &Silent).await? {
                datasets.push(d);
            }
            for table in cloud.list_table_ids(&id, &Silent).await? {
                if let Some(t) = cloud.get_table(&id, &table, &Silent).await? {
                    tables.push(t);
                }
            }
        }
        anyhow::Ok((datasets, tables))
    };
    let repositories = async {
        let mut locations: std::collections::BTreeSet<String> = stack
            .repositories
            .values()
            .map(|r| r.location.clone())
            .collect();
        locations.insert(stack.settings.region.clone());
        let mut out = Vec::new();
        for location in locations {
            out.extend(
                list_kind(
                    !stack.repositories.is_empty(),
                    cloud.list_repositories(&location, &Silent),
                )
                .await?,
            );
        }
        anyhow::Ok(out)
    };
    let channels = list_kind(!stack.channels.is_empty(), cloud.list_channels(&Silent));
    let alerts = list_kind(!stack.alerts.is_empty(), cloud.list_alerts(&Silent));
    let budgets = async {
        let declared = !stack.budgets.is_empty();
        match &stack.settings.billing_account {
            Some(account) if declared || ledger_has(Kind::Budget) => {
                list_kind(declared, cloud.list_budgets(account, &Silent)).await
            }
            _ => Ok(Vec::new()),
        }
    };
    let project_number = async {
        if stack.budgets.is_empty() {
            return anyhow::Ok(None);
        }
        Ok(Some(cloud.project_number(&Silent).await.context(
            "looking up the project number for budget filters",
        )?))
    };
    let ((datasets, tables), repositories, channels, alerts, budgets, project_number) = tokio::try_join!(
        bigquery,
        repositories,
        channels,
        alerts,
        budgets,
        project_number
    )?;
    Ok(Observed {
        datasets,
        tables,
        repositories,
        channels,
        alerts,
        budgets,
        project_number,
        ..Observed::default()
    })
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

    /// Reads the ledger and lists every kind once (in parallel), then reads the IAM policies
    /// that declared grants and ledger bindings point at.
    pub async fn observe(&self) -> Result<(Observed, LedgerStore)> {
        let bucket = self.stack.state_bucket();
        let cloud = &self.cloud;
        let (queues, services, service_accounts, secrets, jobs, schedules, apis, ledger) = tokio::try_join!(
            async {
                cloud
                    .list_queues(&Silent)
                    .await
                    .map_err(anyhow::Error::from)
            },
            async {
                cloud
                    .list_services(&Silent)
                    .await
                    .map_err(anyhow::Error::from)
            },
            unless_disabled(cloud.list_service_accounts(&Silent)),
            unless_disabled(cloud.list_secrets(&Silent)),
            async { cloud.list_jobs(&Silent).await.map_err(anyhow::Error::from) },
            unless_disabled(cloud.list_schedules(&Silent)),
            async {
                cloud
                    .list_enabled_apis(&Silent)
                    .await
                    .map_err(anyhow::Error::from)
            },
            async {
                LedgerStore::load(cloud.storage(), &bucket, &self.stack.settings.name)
                    .await
                    .context("reading the ownership ledger")
            },
        )?;
        let extra = observe_data_kinds(&self.cloud, &self.stack, &ledger.ledger).await?;
        let targets = crate::resources::grant::policy_targets(&self.stack, &ledger.ledger);
        let policies =
            futures::future::try_join_all(targets.into_iter().map(|target| async move {
                let policy = match cloud.get_iam_policy(&target, &Silent).await {
                    Err(e) if is_service_disabled(&e) => Ok(Default::default()),
                    other => other,
                }?;
                Ok::<_, anyhow::Error>((target.resource().to_string(), policy))
            }))
            .await?
            .into_iter()
            .collect();
        Ok((
            Observed {
                queues,
                services,
                service_accounts,
                secrets,
                jobs,
                schedules,
                apis,
                policies,
                ledger: ledger.ledger.clone(),
                ..extra
            },
            ledger,
        ))
    }

    /// Stops the in-process emulator (flushing its state).
    pub async fn close(self) {
        if let Some(local) = self.local {
            local.shutdown().await;
        }
    }
}

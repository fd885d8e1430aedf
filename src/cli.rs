//! The command line, as clap derive types only; `commands/` does the work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "stackctl",
    version,
    about = "Declarative, cost-capped Google Cloud stacks for the services around a Shopify store"
)]
pub struct Cli {
    /// The stack file.
    #[arg(
        short = 'f',
        long = "file",
        global = true,
        default_value = "stack.toml"
    )]
    pub file: PathBuf,
    /// Override `[stack] project` (one stack file, several environments).
    #[arg(long, global = true)]
    pub project: Option<String>,
    /// Override `[stack] region`.
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Run against the local emulator, with its state in `.stackctl/local/` beside the stack file.
    #[arg(long, global = true)]
    pub local: bool,
    /// Send every Google API call to this URL with anonymous credentials (env STACKCTL_ENDPOINT).
    #[arg(long, global = true)]
    pub endpoint: Option<String>,
    /// No colours in output (also NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// More logs on stderr (-v, -vv); `stackctl cost -v` also lists the free allowances.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress and no notes on stderr, only warnings and errors (stdout is unchanged).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a starter stack.toml (and its schema files): a wizard on a terminal, or
    /// `--yes --project ID` for scripts. Refuses to overwrite without --force.
    #[command(
        after_help = "Examples:\n  stackctl init\n  stackctl init --yes --project acme-shop-dev --region europe-west1 --template webhooks"
    )]
    Init(InitArgs),
    /// Check stack.toml: every error with file, line, column and the fix.
    #[command(after_help = "Examples:\n  stackctl validate\n  stackctl -f staging.toml validate")]
    Validate,
    /// What would stop an apply, each with its fix: credentials (source and account), project
    /// access, APIs enabled, and the permissions the stack's kinds need, on the project and on
    /// each of the stack's queues, services, jobs, secrets and repositories that exists. Read-only.
    #[command(
        after_help = "Examples:\n  stackctl doctor\n  stackctl doctor --project acme-shop-prod"
    )]
    Doctor,
    /// Show what apply would change, field by field.
    #[command(
        after_help = "Examples:\n  stackctl plan --local\n  stackctl plan --format markdown --detailed-exitcode --max-monthly-increase 25 > plan.md\n  stackctl plan --out plan.json --cost-limit 200"
    )]
    Plan(PlanArgs),
    /// Make the cloud match stack.toml (or a saved plan).
    #[command(
        after_help = "Examples:\n  stackctl apply --local --auto-approve\n  stackctl apply plan.json"
    )]
    Apply(ApplyArgs),
    /// Take ownership of existing resources declared in stack.toml (by label, or into the ledger).
    #[command(after_help = "Examples:\n  stackctl adopt queue.webhooks service_account.tasks")]
    Adopt(AdoptArgs),
    /// Write stack.toml stanzas for resources in the project that no stack owns (from their live
    /// values, with schema files for tables, JSON files for dashboards and gateways' OpenAPI
    /// documents), then adopt the ones that plan empty.
    #[command(
        after_help = "Examples:\n  stackctl import --all --dry-run\n  stackctl import queue.webhooks service.worker service_account.tasks-invoker\n  stackctl import gateway.crm api_key.partner-integration   # keys and dashboards are named from their display names"
    )]
    Import(ImportArgs),
    /// Delete everything the stack owns (grants first, then in reverse dependency order); APIs
    /// stay enabled and nothing the stack does not own is touched.
    #[command(
        after_help = "Examples:\n  stackctl destroy --local\n  stackctl destroy --auto-approve --allow-data-loss --allow-queue-delete"
    )]
    Destroy(DestroyArgs),
    /// Drop resources from the stack's ownership without deleting or changing them: a queue,
    /// service account, schedule or budget leaves the ledger, a grant's member its record.
    #[command(
        after_help = "Examples:\n  stackctl forget queue.webhooks\n  stackctl forget 'iam: roles/run.invoker on service.worker for service_account.tasks'"
    )]
    Forget(ForgetArgs),
    /// Show the apply lock (holder, host, lease) and remove it if its lease has ended (or with --force).
    #[command(after_help = "Examples:\n  stackctl unlock\n  stackctl unlock --force")]
    Unlock(UnlockArgs),
    /// The stack's monthly cost as declared, by resource and component (no cloud access unless --live-prices).
    #[command(after_help = "Examples:\n  stackctl cost\n  stackctl cost -v --live-prices")]
    Cost(CostArgs),
    /// Find unused and wasteful resources in the live project and price the waste (read-only).
    #[command(
        after_help = "Examples:\n  stackctl audit --local\n  stackctl audit --format markdown --fail-on high"
    )]
    Audit(AuditArgs),
    /// Compile built services (`build = "..."`) into reproducible OCI images, without pushing.
    #[command(after_help = "Examples:\n  stackctl build service.worker")]
    Build(BuildArgs),
    /// Build, push and roll out built services: a new Cloud Run revision pinned by digest.
    #[command(
        after_help = "Examples:\n  stackctl deploy --local\n  stackctl deploy service.worker --no-traffic --tag candidate"
    )]
    Deploy(DeployArgs),
    /// Shift a service's traffic between tags and revisions, e.g. `candidate=10`.
    #[command(after_help = "Examples:\n  stackctl traffic service.worker candidate=10")]
    Traffic(TrafficArgs),
    /// Send all of a service's traffic back to its previous (or a named) ready revision.
    #[command(
        after_help = "Examples:\n  stackctl rollback service.worker\n  stackctl rollback service.worker --to worker-00002-abc"
    )]
    Rollback(RollbackArgs),
    /// Serve the local Google Cloud emulator on loopback until killed.
    #[command(after_help = "Examples:\n  stackctl emulator --port 8085 --state-dir .emulator")]
    Emulator(EmulatorArgs),
    /// Run the stack locally (`--local`): apply it to the emulator, build and start every built
    /// service as a process behind its own port, dispatch tasks, fire schedules, run jobs.
    #[command(after_help = "Examples:\n  stackctl up --local --auto-approve")]
    Up(UpArgs),
    /// Secret values: `stackctl secret set NAME` adds a version (value from stdin or --from-file).
    #[command(
        after_help = "Examples:\n  stackctl secret set shopify-api-secret --from-file secret.txt"
    )]
    #[command(subcommand)]
    Secret(SecretCommand),
    /// API keys: `stackctl api-key show NAME` prints a declared key's name and restrictions; its
    /// key string only with --reveal.
    #[command(
        subcommand,
        name = "api-key",
        after_help = "Examples:\n  stackctl api-key show partner\n  stackctl api-key show api_key.partner --reveal --local"
    )]
    ApiKey(ApiKeyCommand),
    /// What a service's revisions or a job's tasks printed (Cloud Logging; with --local, the
    /// local processes), the last --limit entries; --follow keeps printing new ones.
    #[command(
        after_help = "Examples:\n  stackctl logs service.worker --follow\n  stackctl logs job.ingest-orders --limit 20 --local"
    )]
    Logs(LogsArgs),
    /// Print the man page stackctl(1) (roff), generated from this command line; with --out DIR,
    /// write it and one page per command (stackctl-plan.1, ...) there.
    #[command(
        after_help = "Examples:\n  stackctl man > stackctl.1 && man ./stackctl.1\n  stackctl man --out ~/.local/share/man/man1 && man stackctl-plan"
    )]
    Man(ManArgs),
    /// Print shell completions.
    #[command(
        after_help = "Examples:\n  stackctl completions bash > /etc/bash_completion.d/stackctl"
    )]
    Completions { shell: clap_complete::Shell },
}

/// Which parts `stackctl init` writes without asking (the wizard starts from them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InitTemplate {
    /// Webhooks, ingestion, the CRM gateway, budget and alerts.
    Full,
    /// A Cloud Tasks queue feeding a capped Cloud Run worker, with alerts.
    Webhooks,
    /// An hourly Cloud Run job loading a BigQuery table, with alerts.
    Ingestion,
    /// A private CRM proxy behind API Gateway with an API key, with alerts.
    CrmGateway,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Ask nothing: take the flags and the defaults (for scripts); needs --project.
    #[arg(long)]
    pub yes: bool,
    /// The parts to write (the wizard's starting choice).
    #[arg(long, value_enum, default_value_t = InitTemplate::Full)]
    pub template: InitTemplate,
    /// The stack's name, the ownership label's value (default: the directory's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Where alerts go (default: a placeholder the file tells you to change).
    #[arg(long, value_name = "EMAIL")]
    pub alert_email: Option<String>,
    /// The billing account for a monthly budget; without it no budget is written.
    #[arg(long, value_name = "ID")]
    pub billing_account: Option<String>,
    /// The monthly budget in USD.
    #[arg(long, value_name = "USD", default_value_t = 100)]
    pub budget_usd: u32,
    /// Overwrite the stack file and schema files that exist.
    #[arg(long)]
    pub force: bool,
}

/// Where cost estimates take their prices from (plan, apply, cost, audit).
#[derive(Debug, Args)]
pub struct PriceArgs {
    /// Read current list prices from the Cloud Billing Catalog API (the emulator's catalog with
    /// --local); items it cannot price keep the built-in price, with a warning.
    #[arg(long)]
    pub live_prices: bool,
}

/// What plan, apply and destroy may do to data; without these flags they refuse.
#[derive(Debug, Default, Clone, Copy, Args)]
pub struct DataSafetyArgs {
    /// Delete queues that leave the stack instead of pausing them (their names are blocked for days).
    #[arg(long)]
    pub allow_queue_delete: bool,
    /// Allow changes that drop data: replacing tables; deleting datasets, tables and
    /// repositories; with destroy, secrets and their versions. A dataset with
    /// deletion_protection = true is still refused.
    #[arg(long)]
    pub allow_data_loss: bool,
}

impl DataSafetyArgs {
    /// The planner's options; `destroy` plans `stackctl destroy`.
    pub fn plan_options(&self, destroy: bool) -> crate::plan::PlanOptions {
        crate::plan::PlanOptions {
            allow_queue_delete: self.allow_queue_delete,
            allow_data_loss: self.allow_data_loss,
            destroy,
        }
    }
}

/// Spending limits that fail plan and apply (exit 1, nothing changed) when the estimate exceeds them.
#[derive(Debug, Default, Args)]
pub struct CostGateArgs {
    /// Fail when the stack's monthly estimate after the plan exceeds USD.
    #[arg(long, value_name = "USD", value_parser = non_negative_usd)]
    pub cost_limit: Option<f64>,
    /// Fail when the plan raises the stack's monthly estimate by more than USD.
    #[arg(long, value_name = "USD", value_parser = non_negative_usd)]
    pub max_monthly_increase: Option<f64>,
}

impl CostGateArgs {
    pub fn gate(&self) -> crate::cost::CostGate {
        crate::cost::CostGate {
            limit_usd: self.cost_limit,
            max_increase_usd: self.max_monthly_increase,
        }
    }
}

/// A dollar amount: a finite number, zero or more (`25`, `12.50`).
fn non_negative_usd(text: &str) -> Result<f64, String> {
    match text.trim_start_matches('$').parse::<f64>() {
        Ok(usd) if usd.is_finite() && usd >= 0.0 => Ok(usd),
        _ => Err(format!(
            "`{text}` is not an amount in USD; give a number such as 25 or 12.50"
        )),
    }
}

/// How `stackctl plan` prints the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// Terraform-like text for people.
    Text,
    /// JSON (the same as --json).
    Json,
    /// Markdown for a pull-request comment: summary, changes by action, cost, details folded.
    Markdown,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Save the plan; `stackctl apply FILE` executes exactly it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the plan as JSON (same as --format json).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    #[command(flatten)]
    pub safety: DataSafetyArgs,
    #[command(flatten)]
    pub prices: PriceArgs,
    #[command(flatten)]
    pub cost_gate: CostGateArgs,
}

impl PlanArgs {
    /// The format asked for, `--json` included.
    pub fn output(&self) -> PlanFormat {
        if self.json {
            PlanFormat::Json
        } else {
            self.format
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum SecretCommand {
    /// Add a version to a declared secret; the value is read from stdin (a hidden prompt on a
    /// terminal) or --from-file, never from an argument, and never printed or logged.
    Set {
        /// The secret, `secret.NAME` or `NAME`.
        name: String,
        /// Read the value from this file instead of stdin.
        #[arg(long, value_name = "FILE")]
        from_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// A declared key's resource name and the API it is restricted to; the key string itself
    /// only with --reveal (it is never logged or written anywhere).
    Show {
        /// The key, `api_key.NAME` or `NAME`.
        name: String,
        /// Print the key string (on stdout, alone on its line after the details).
        #[arg(long)]
        reveal: bool,
    },
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write stackctl.1 and a page per command into this folder (created if missing) instead of
    /// printing stackctl.1.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// `service.NAME` or `job.NAME` from stack.toml.
    pub address: String,
    /// Keep printing new entries until Ctrl-C.
    #[arg(long)]
    pub follow: bool,
    /// How many of the latest entries to print first.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Serve the emulator on this loopback port; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Apply without asking when the plan is not empty.
    #[arg(long)]
    pub auto_approve: bool,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Remove the lock although its lease is live (being renewed): only when that apply is
    /// known dead. A live apply that loses its lock starts no new step and exits 1.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `stackctl plan --out FILE` (it keeps the prices it was planned with).
    #[arg(conflicts_with = "live_prices")]
    pub plan_file: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Print the plan and the apply report as JSON.
    #[arg(long)]
    pub json: bool,
    /// How many resources to change at once.
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
    #[command(flatten)]
    pub safety: DataSafetyArgs,
    // --live-prices: the plan apply shows is priced as `plan` prices it with the same flags.
    #[command(flatten)]
    pub prices: PriceArgs,
    /// Checked before anything changes, on a saved plan too.
    #[command(flatten)]
    pub cost_gate: CostGateArgs,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// Do not ask for the stack name (needed without a terminal, e.g. in CI).
    #[arg(long)]
    pub auto_approve: bool,
    /// How many resources to delete at once.
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
    #[command(flatten)]
    pub safety: DataSafetyArgs,
    /// Keep the ownership ledger (otherwise removed once it records nothing).
    #[arg(long)]
    pub keep_state: bool,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Addresses the stack owns, e.g. `queue.webhooks`.
    #[arg(required = true)]
    pub addresses: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// Addresses declared in stack.toml, e.g. `queue.webhooks`.
    #[arg(required = true)]
    pub addresses: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// What to import, `KIND.ID` by the live id (e.g. `queue.webhooks`; `firestore.default` is
    /// the `(default)` database); channels, uptime checks, alert policies, budgets, dashboards
    /// and API keys by the NAME `--dry-run` gives them from their display names.
    pub addresses: Vec<String>,
    /// Import everything in the project that no stack owns or declares.
    #[arg(long, conflicts_with = "addresses")]
    pub all: bool,
    /// Print the stanzas; write nothing and adopt nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Loopback port; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Persist state here (written on every change); in memory without it.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Run what is stored: dispatch Cloud Tasks, fire Cloud Scheduler jobs, execute Cloud Run
    /// jobs (as `stackctl up --local` does); also `STACKCTL_EMULATOR_EXECUTE=1`.
    #[arg(long)]
    pub execute: bool,
}

#[derive(Debug, Args)]
pub struct CostArgs {
    /// Print the breakdown as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub prices: PriceArgs,
}

/// How `stackctl audit` prints its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    /// An aligned table for people.
    Table,
    /// JSON (the same as --json).
    Json,
    /// A Markdown table for a pull request or a ticket.
    Markdown,
}

/// The lowest severity that fails `stackctl audit --fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Print the findings as JSON (same as --format json).
    #[arg(long)]
    pub json: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditFormat::Table)]
    pub format: AuditFormat,
    /// Exit 1 when any finding is at least this severe (for CI).
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
    /// Days of traffic a service needs to not count as unused (request_count window).
    #[arg(long, default_value_t = 30)]
    pub idle_days: u32,
    /// Days of hourly traffic read for the min-instances and bursty-traffic rules.
    #[arg(long, default_value_t = 14)]
    pub traffic_days: u32,
    /// Days without a read (a query, copy or extract job) that make an older BigQuery table
    /// cold; at most 180, the job history BigQuery keeps.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=180))]
    pub cold_table_days: u32,
    #[command(flatten)]
    pub prices: PriceArgs,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Services to build (`service.worker` or `worker`); all with `build = "..."` when none.
    pub services: Vec<String>,
    /// Print the images as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Services to deploy (`service.worker` or `worker`); all with `build = "..."` when none.
    pub services: Vec<String>,
    /// Create the new revision with 0% of the traffic (a canary); shift it with `stackctl traffic`.
    #[arg(long)]
    pub no_traffic: bool,
    /// Tag the new revision (its own URL, `https://TAG---...`); needs --no-traffic.
    #[arg(long, requires = "no_traffic")]
    pub tag: Option<String>,
    /// Push images to this registry (`http://127.0.0.1:5000`) instead of Artifact Registry or
    /// the emulator; image names stay Artifact Registry names (env STACKCTL_REGISTRY).
    #[arg(long, env = "STACKCTL_REGISTRY")]
    pub registry: Option<String>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
    /// Build for this machine instead of Cloud Run (`stackctl up --local` runs the binaries here).
    #[arg(skip)]
    pub for_host: bool,
}

#[derive(Debug, Args)]
pub struct TrafficArgs {
    /// The service, e.g. `service.worker`.
    pub service: String,
    /// `TARGET=PERCENT`: a tag, a revision id or `latest`; the rest stays with what serves now, in proportion.
    #[arg(required = true)]
    pub assignments: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The service, e.g. `service.worker`.
    pub service: String,
    /// The ready revision to send all traffic to (default: the one before the revision serving now).
    #[arg(long, value_name = "REVISION")]
    pub to: Option<String>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    #[test]
    fn every_command_shows_examples_in_its_help() {
        use clap::CommandFactory;
        for command in super::Cli::command().get_subcommands() {
            let help = command.get_after_help().map(|h| h.to_string());
            assert!(
                help.is_some_and(|h| h.starts_with("Examples:\n  stackctl ")),
                "`stackctl {} --help` has no examples",
                command.get_name()
            );
        }
    }
}

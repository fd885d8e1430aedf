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
    /// More logs on stderr (-v, -vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check stack.toml: every error with file, line, column and the fix.
    Validate,
    /// Show what apply would change, field by field.
    Plan(PlanArgs),
    /// Make the cloud match stack.toml (or a saved plan).
    Apply(ApplyArgs),
    /// Take ownership of existing resources declared in stack.toml (queues into the ledger, services by label).
    Adopt(AdoptArgs),
    /// Remove the apply lock left by a dead apply.
    Unlock,
    /// Serve the local Google Cloud emulator on loopback until killed.
    Emulator(EmulatorArgs),
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Save the plan; `stackctl apply FILE` executes exactly it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Delete queues removed from stack.toml instead of pausing them (their names are blocked for days).
    #[arg(long)]
    pub allow_queue_delete: bool,
    /// Allow changes that drop data: replacing tables, deleting datasets, tables and repositories.
    #[arg(long)]
    pub allow_data_loss: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `stackctl plan --out FILE`.
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
    /// Delete queues removed from stack.toml instead of pausing them.
    #[arg(long)]
    pub allow_queue_delete: bool,
    /// Allow changes that drop data: replacing tables, deleting datasets, tables and repositories.
    #[arg(long)]
    pub allow_data_loss: bool,
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// Addresses declared in stack.toml, e.g. `queue.webhooks`.
    #[arg(required = true)]
    pub addresses: Vec<String>,
}

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Loopback port; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Persist state here (written on every change); in memory without it.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

//! `stackctl destroy`: an apply of the stack with every resource left out, so the planner plans
//! the removal of everything the stack owns (grants first, deepest first, with apply's data
//! safety), after the stack's name is typed on a terminal or with `--auto-approve`.

use anyhow::Result;

use super::ExitStatus;
use super::apply::{Intent, execute};
use crate::cli::{ApplyArgs, Cli, CostGateArgs, DestroyArgs, PriceArgs};
use crate::ui::Printer;

pub async fn run(cli: &Cli, args: &DestroyArgs, printer: &Printer) -> Result<ExitStatus> {
    let apply = ApplyArgs {
        plan_file: None,
        auto_approve: args.auto_approve,
        json: false,
        parallelism: args.parallelism,
        safety: args.safety,
        prices: PriceArgs { live_prices: false },
        cost_gate: CostGateArgs::default(),
    };
    let intent = Intent::Destroy {
        keep_state: args.keep_state,
    };
    execute(cli, &apply, intent, printer).await
}

//! `stackctl cost`: the monthly cost of stack.toml as declared, by resource and component.

use anyhow::Result;

use super::{ExitStatus, load_stack};
use crate::cli::{Cli, CostArgs};
use crate::cost::{PriceTable, stack_cost};
use crate::ui::{Printer, cost_view};

pub fn run(cli: &Cli, args: &CostArgs, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let prices = PriceTable::builtin(&stack.settings.region);
    let cost = stack_cost(&stack, &prices);
    if args.json {
        printer.json(&cost);
    } else {
        printer.out(&cost_view::render_stack_cost(&cost));
    }
    Ok(ExitStatus::Success)
}

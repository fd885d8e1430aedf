//! `stackctl cost`: the monthly cost of stack.toml as declared, by resource and component; with
//! `--live-prices` at the Cloud Billing Catalog's current prices.

use anyhow::Result;

use super::{ExitStatus, Session, load_stack};
use crate::cli::{Cli, CostArgs};
use crate::cost::{PriceTable, stack_cost};
use crate::ui::{Printer, cost_view};

pub async fn run(cli: &Cli, args: &CostArgs, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let prices = if args.prices.live_prices {
        let session = Session::open(cli, stack.clone()).await?;
        let prices = session.price_table(&args.prices, printer).await;
        session.close().await;
        prices?
    } else {
        PriceTable::builtin(&stack.settings.region)
    };
    let cost = stack_cost(
        &stack,
        &prices,
        crate::resources::registry::declared_costs(&stack, &prices),
    );
    if args.json {
        printer.json(&cost);
    } else {
        printer.out(&cost_view::render_stack_cost(&cost, cli.verbose > 0));
    }
    Ok(ExitStatus::Success)
}

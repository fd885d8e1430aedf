//! `stackctl plan`: observe, diff, render; optionally save the plan for `apply FILE`.

use anyhow::{Context, Result};

use super::{ExitStatus, Session, load_stack};
use crate::cli::{Cli, PlanArgs};
use crate::cost::PriceTable;
use crate::plan::{Plan, PlanOptions, plan};
use crate::ui::{Printer, plan_view};

pub async fn run(cli: &Cli, args: &PlanArgs, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let session = Session::open(cli, stack).await?;
    let result = async {
        let prices = session.price_table(&args.prices, printer).await?;
        make_plan(
            &session,
            PlanOptions {
                allow_queue_delete: args.allow_queue_delete,
                allow_data_loss: args.allow_data_loss,
            },
            &prices,
            printer,
        )
        .await
    }
    .await;
    let secret_warnings = session.secret_version_warnings().await;
    session.close().await;
    let plan = result?;
    if args.json {
        printer.json(&plan);
    } else {
        printer.out(&plan_view::render(&plan, printer.color));
    }
    for warning in &secret_warnings {
        printer.err(warning);
    }
    if !args.allow_data_loss && plan.changes.iter().any(|c| c.data_loss().is_some()) {
        printer.err(
            "warning: this plan drops data (see the notes above); `stackctl apply` refuses it without --allow-data-loss",
        );
    }
    if let Some(path) = &args.out {
        save(&plan, path)?;
        printer.err(&format!(
            "Saved the plan to {}; run `stackctl apply {}` to execute exactly it.",
            path.display(),
            path.display()
        ));
    }
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

pub(crate) async fn make_plan(
    session: &Session,
    options: PlanOptions,
    prices: &PriceTable,
    printer: &Printer,
) -> Result<Plan> {
    let (observed, _) = session.observe(printer).await?;
    Ok(plan(
        &session.stack,
        session.target(),
        &observed,
        options,
        prices,
    )?)
}

fn save(plan: &Plan, path: &std::path::Path) -> Result<()> {
    let json = serde_json::to_vec_pretty(plan)?;
    std::fs::write(path, json).with_context(|| format!("writing the plan to {}", path.display()))
}

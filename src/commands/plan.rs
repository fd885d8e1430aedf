//! `stackctl plan`: observe, diff, render (text, JSON or markdown), check the spending limits;
//! optionally save the plan for `apply FILE`.

use anyhow::{Context, Result};

use super::{ExitStatus, Session, load_stack};
use crate::cli::{Cli, PlanArgs, PlanFormat};
use crate::cost::{CostGate, PriceTable};
use crate::plan::{Plan, PlanOptions, plan};
use crate::ui::{Printer, plan_view};

pub async fn run(cli: &Cli, args: &PlanArgs, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let session = Session::open(cli, stack).await?;
    let result = async {
        let prices = session.price_table(&args.prices, printer).await?;
        make_plan(&session, args.safety.plan_options(false), &prices, printer).await
    }
    .await;
    let secret_warnings = match &result {
        Ok(_) => session.secret_version_warnings().await,
        Err(_) => Vec::new(),
    };
    session.close().await;
    let plan = result?;
    match args.output() {
        PlanFormat::Json => printer.json(&plan),
        PlanFormat::Markdown => printer.out(&plan_view::render_markdown(&plan)),
        PlanFormat::Text => printer.out(&plan_view::render(&plan, printer.color)),
    }
    for warning in &secret_warnings {
        printer.err(warning);
    }
    if !args.safety.allow_data_loss && plan.changes.iter().any(|c| c.data_loss().is_some()) {
        printer.err(
            "warning: this plan drops data (see the notes above); `stackctl apply` refuses it without --allow-data-loss",
        );
    }
    if !cost_gate_passes(&args.cost_gate.gate(), &plan, printer, "") {
        return Ok(ExitStatus::Failure);
    }
    if let Some(path) = &args.out {
        save(&plan, path)?;
        printer.note(&format!(
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

/// Prints each spending limit the plan exceeds as an error (`consequence` says what did not
/// happen); false when any is exceeded.
pub(crate) fn cost_gate_passes(
    gate: &CostGate,
    plan: &Plan,
    printer: &Printer,
    consequence: &str,
) -> bool {
    let violations = gate.violations(&plan.cost);
    for violation in &violations {
        printer.err(&format!("error: {violation}{consequence}"));
    }
    violations.is_empty()
}

fn save(plan: &Plan, path: &std::path::Path) -> Result<()> {
    let json = serde_json::to_vec_pretty(plan)?;
    std::fs::write(path, json).with_context(|| format!("writing the plan to {}", path.display()))
}

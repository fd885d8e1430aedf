//! `stackctl audit`: read the live project (read-only), run the audit rules, print the findings
//! sorted by money (`--live-prices`: at the Cloud Billing Catalog's prices); `--fail-on SEVERITY`
//! makes CI fail on them.

use anyhow::{Context, Result};

use super::{ExitStatus, Session, load_stack};
use crate::audit::{self, Severity, Windows};
use crate::cli::{AuditArgs, AuditFormat, Cli, FailOn};
use crate::ui::{Printer, audit_view};

pub async fn run(cli: &Cli, args: &AuditArgs, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let window = Windows {
        idle_days: args.idle_days.max(1),
        traffic_days: args.traffic_days.max(1),
        cold_table_days: args.cold_table_days,
    };
    let session = Session::open(cli, stack).await?;
    let collected = async {
        let inventory = audit::collect::inventory(
            &session.cloud,
            &session.stack.state_bucket(),
            session.stack.settings.billing_account.as_deref(),
        )
        .await
        .context("reading the project's services, revisions, queues and ledgers")?;
        let signals = audit::collect::signals(&session.cloud, window, chrono::Utc::now())
            .await
            .context("reading Cloud Monitoring time series and BigQuery jobs")?;
        let prices = session.price_table(&args.prices, printer).await?;
        anyhow::Ok((inventory, signals, prices))
    }
    .await;
    session.close().await;
    let (inventory, signals, prices) = collected?;
    let report = audit::audit(&inventory, &signals, &prices, window);
    let format = if args.json {
        AuditFormat::Json
    } else {
        args.format
    };
    match format {
        AuditFormat::Json => printer.json(&report),
        AuditFormat::Markdown => printer.out(&audit_view::render_markdown(&report)),
        AuditFormat::Table => printer.out(&audit_view::render_table(&report)),
    }
    let fails = args.fail_on.is_some_and(|threshold| {
        report.fails(match threshold {
            FailOn::Low => Severity::Low,
            FailOn::Medium => Severity::Medium,
            FailOn::High => Severity::High,
            FailOn::Critical => Severity::Critical,
        })
    });
    Ok(if fails {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

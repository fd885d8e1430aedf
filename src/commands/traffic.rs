//! `stackctl traffic service.NAME TARGET=PERCENT ...`: shifts traffic between tags and revisions.

use anyhow::Result;

use super::deploy::service_named;
use super::{ExitStatus, Session, load_stack};
use crate::cli::{Cli, TrafficArgs};
use crate::deploy;
use crate::ui::Printer;
use crate::ui::deploy_view::{DeployProgress, render_outcome};

pub async fn run(cli: &Cli, args: &TrafficArgs, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let (address, cfg) = service_named(&stack, &args.service)?;
    let session = Session::open(cli, stack.clone()).await?;
    let result = deploy::shift_traffic(
        &session.cloud,
        &stack,
        &address,
        cfg,
        &args.assignments,
        &DeployProgress,
    )
    .await;
    session.close().await;
    printer.out(&render_outcome(&result?));
    Ok(ExitStatus::Success)
}

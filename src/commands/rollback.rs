//! `stackctl rollback service.NAME [--to REVISION]`: all traffic back to the previous (or the
//! named) ready revision; no rebuild, the revision keeps its pinned digest.

use anyhow::Result;

use super::deploy::service_named;
use super::{ExitStatus, Session, load_stack};
use crate::cli::{Cli, RollbackArgs};
use crate::deploy;
use crate::ui::Printer;
use crate::ui::deploy_view::{DeployProgress, render_outcome};

pub async fn run(cli: &Cli, args: &RollbackArgs, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let (address, cfg) = service_named(&stack, &args.service)?;
    let session = Session::open(cli, stack.clone()).await?;
    let result = deploy::rollback(
        &session.cloud,
        &stack,
        &address,
        cfg,
        args.to.as_deref(),
        &DeployProgress,
    )
    .await;
    session.close().await;
    printer.out(&render_outcome(&result?));
    Ok(ExitStatus::Success)
}

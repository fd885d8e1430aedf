//! `stackctl unlock`: remove the apply lock a dead apply left behind.

use anyhow::Result;

use super::{ExitStatus, Session, load_stack};
use crate::cli::Cli;
use crate::state::lock::force_unlock;
use crate::ui::Printer;

pub async fn run(cli: &Cli, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let session = Session::open(cli, stack).await?;
    let removed = force_unlock(
        session.cloud.storage(),
        &session.stack.state_bucket(),
        &session.stack.settings.name,
    )
    .await;
    session.close().await;
    match removed? {
        Some(held) => printer.out(&format!(
            "Removed the apply lock held by {} since {} (lease until {}).",
            held.holder, held.acquired_at, held.expires_at
        )),
        None => printer.out("The stack is not locked."),
    }
    Ok(ExitStatus::Success)
}

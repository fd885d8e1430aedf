//! `stackctl audit`: read the live project, find unused and wasteful resources, price the waste.

use anyhow::Result;

use super::{ExitStatus, load_stack};
use crate::cli::{AuditArgs, Cli};
use crate::ui::Printer;

pub async fn run(cli: &Cli, _args: &AuditArgs, printer: &Printer) -> Result<ExitStatus> {
    let Some(_stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    anyhow::bail!("stackctl audit is not implemented yet")
}

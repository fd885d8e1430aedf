//! `stackctl validate`: load stack.toml and report every error, or a one-line summary.

use anyhow::Result;

use super::{ExitStatus, load_stack};
use crate::cli::Cli;
use crate::ui::Printer;

pub fn run(cli: &Cli, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    printer.out(&format!(
        "{} is valid: stack `{}` in {} ({}), {} service(s), {} queue(s).",
        cli.file.display(),
        stack.settings.name,
        stack.settings.project,
        stack.settings.region,
        stack.services.len(),
        stack.queues.len()
    ));
    Ok(ExitStatus::Success)
}

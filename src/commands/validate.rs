//! `stackctl validate`: load stack.toml and report every error, or a one-line summary.

use anyhow::Result;

use super::{ExitStatus, load_stack};
use crate::cli::Cli;
use crate::resources::grant;
use crate::ui::Printer;

pub fn run(cli: &Cli, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let counts: Vec<String> = [
        ("service", stack.services.len()),
        ("queue", stack.queues.len()),
        ("service_account", stack.service_accounts.len()),
        ("secret", stack.secrets.len()),
        ("job", stack.jobs.len()),
        ("schedule", stack.schedules.len()),
        ("implied IAM grant", grant::declared_grants(&stack).len()),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(kind, n)| format!("{n} {kind}(s)"))
    .collect();
    printer.out(&format!(
        "{} is valid: stack `{}` in {} ({}), {}.",
        cli.file.display(),
        stack.settings.name,
        stack.settings.project,
        stack.settings.region,
        if counts.is_empty() {
            "no resources".to_string()
        } else {
            counts.join(", ")
        }
    ));
    Ok(ExitStatus::Success)
}

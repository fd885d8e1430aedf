//! `stackctl validate`: load stack.toml and report every error, or a one-line summary.

use anyhow::Result;

use super::{ExitStatus, load_stack};
use crate::cli::Cli;
use crate::model::Kind;
use crate::resources::registry::declared_names;
use crate::ui::Printer;

pub fn run(cli: &Cli, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    // Every kind in the registry's order; grants and APIs are implied by the others.
    let counts: Vec<String> = Kind::ALL
        .into_iter()
        .map(|kind| (kind, declared_names(&stack, kind).len()))
        .filter(|(_, n)| *n > 0)
        .map(|(kind, n)| match kind {
            Kind::Grant => format!("{n} implied IAM grant(s)"),
            Kind::Api => format!("{n} implied API(s)"),
            kind => format!("{n} {kind}(s)"),
        })
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

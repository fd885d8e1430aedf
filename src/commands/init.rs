//! `stackctl init`: a starter stack.toml (and its schema files) from the wizard's answers or from
//! flags (`--yes`), never over existing files without `--force`, checked by loading it back.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::ExitStatus;
use crate::cli::{Cli, InitArgs, InitTemplate};
use crate::config::base_dir;
use crate::config::starter::{Answers, PLACEHOLDER_EMAIL, Part, StarterFile, stack_name_from};
use crate::ui::Printer;
use crate::ui::prompt::{self, PromptError};

pub fn run(cli: &Cli, args: &InitArgs, printer: &Printer) -> Result<ExitStatus> {
    // Checked before any question (a wizard whose answers cannot be written wastes the user's
    // time), and again for the files the answers chose.
    if refuse_overwrite(std::slice::from_ref(&cli.file), args.force, printer) {
        return Ok(ExitStatus::Failure);
    }
    let start = starting_answers(cli, args);
    let answers = if args.yes {
        if start.project.is_empty() {
            printer.err("error: `stackctl init --yes` needs the project: pass --project ID");
            return Ok(ExitStatus::Failure);
        }
        start
    } else if !prompt::has_terminal() {
        printer.err(
            "error: stackctl init asks its questions on a terminal and there is none; for scripts pass --yes --project ID [--region R] [--template NAME]",
        );
        return Ok(ExitStatus::Failure);
    } else {
        match prompt::init_wizard(start) {
            Ok(answers) => answers,
            Err(e @ (PromptError::NoTerminal | PromptError::Declined)) => {
                printer.err(&format!("error: {e}"));
                return Ok(ExitStatus::Failure);
            }
            Err(e) => return Err(e.into()),
        }
    };
    let errors = answers.check();
    if !errors.is_empty() {
        printer.err(&format!(
            "error: nothing was written:\n  {}",
            errors.join("\n  ")
        ));
        return Ok(ExitStatus::Failure);
    }
    let files = answers.files();
    let destinations: Vec<PathBuf> = files.iter().map(|f| destination(&cli.file, f)).collect();
    if refuse_overwrite(&destinations, args.force, printer) {
        return Ok(ExitStatus::Failure);
    }
    let mut written = Vec::new();
    for (file, path) in files.iter().zip(destinations) {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the directory {}", dir.display()))?;
        }
        std::fs::write(&path, &file.text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path.display().to_string());
    }
    // The file is written from checked answers, so this only fails if a template is broken.
    let stack = match crate::config::load(&cli.file) {
        Ok(stack) => stack,
        Err(errors) => {
            printer.err(&format!(
                "error: the starter stack stackctl wrote does not validate (a stackctl bug; please report it):\n{errors}"
            ));
            return Ok(ExitStatus::Failure);
        }
    };
    let file_flag = if cli.file == Path::new("stack.toml") {
        String::new()
    } else {
        format!(" -f {}", cli.file.display())
    };
    let mut next = format!(
        "Wrote {} for stack `{}` in project {} ({}).\n\nNext:\n  stackctl{file_flag} apply --local --auto-approve   # try it on the local emulator, no Google account needed\n  stackctl{file_flag} cost                           # what it costs a month\n  gcloud auth application-default login\n  stackctl{file_flag} plan                           # what it would create in {}\n",
        written.join(" and "),
        stack.settings.name,
        stack.settings.project,
        stack.settings.region,
        stack.settings.project,
    );
    for secret in stack.secrets.keys() {
        next.push_str(&format!(
            "  stackctl{file_flag} secret set {secret}    # its value, once apply created the secret\n"
        ));
    }
    if stack
        .channels
        .values()
        .any(|c| c.labels.get("email_address").map(String::as_str) == Some(PLACEHOLDER_EMAIL))
    {
        next.push_str(&format!(
            "\nchannel.oncall sends alerts to the placeholder {PLACEHOLDER_EMAIL}: put your on-call address in {} (or pass --alert-email).\n",
            cli.file.display()
        ));
    }
    printer.out(&next);
    Ok(ExitStatus::Success)
}

/// The answers the flags give, with defaults for the rest; the wizard starts from them.
fn starting_answers(cli: &Cli, args: &InitArgs) -> Answers {
    let dir_name = std::fs::canonicalize(base_dir(&cli.file))
        .ok()
        .and_then(|dir| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let parts = match args.template {
        InitTemplate::Full => Part::ALL.to_vec(),
        InitTemplate::Webhooks => vec![Part::Webhooks, Part::BudgetAndAlerts],
        InitTemplate::Ingestion => vec![Part::Ingestion, Part::BudgetAndAlerts],
        InitTemplate::CrmGateway => vec![Part::CrmGateway, Part::BudgetAndAlerts],
    };
    Answers {
        name: args
            .name
            .clone()
            .unwrap_or_else(|| stack_name_from(&dir_name)),
        project: cli.project.clone().unwrap_or_default(),
        region: cli
            .region
            .clone()
            .unwrap_or_else(|| "us-central1".to_string()),
        parts,
        alert_email: args
            .alert_email
            .clone()
            .unwrap_or_else(|| PLACEHOLDER_EMAIL.to_string()),
        billing_account: args.billing_account.clone(),
        budget_usd: args.budget_usd,
    }
}

/// True (after saying so) when any of `paths` exists and `--force` was not given.
fn refuse_overwrite(paths: &[PathBuf], force: bool, printer: &Printer) -> bool {
    let existing: Vec<String> = paths
        .iter()
        .filter(|path| path.exists())
        .map(|path| path.display().to_string())
        .collect();
    if existing.is_empty() || force {
        return false;
    }
    let one = existing.len() == 1;
    printer.err(&format!(
        "error: {} already exist{}; stackctl init does not overwrite files: pass --force to replace {}, or -f OTHER.toml to write another stack file",
        existing.join(" and "),
        if one { "s" } else { "" },
        if one { "it" } else { "them" },
    ));
    true
}

/// Where a starter file goes: the stack file itself at `-f`, the others beside it.
fn destination(stack_file: &Path, file: &StarterFile) -> PathBuf {
    match base_dir(stack_file) {
        _ if file.path == "stack.toml" => stack_file.to_path_buf(),
        dir if dir == Path::new(".") => PathBuf::from(file.path),
        dir => dir.join(file.path),
    }
}

//! Questions on a terminal (dialoguer): the confirmation before apply and `stackctl init`'s
//! wizard; a clear refusal without a terminal.

use std::io::IsTerminal;

use crate::config::starter::{Answers, Part, is_email};

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error(
        "this needs confirmation but there is no terminal to ask on; pass --auto-approve (e.g. in CI), or for apply a saved plan file"
    )]
    NoTerminal,
    #[error("cancelled: nothing was changed")]
    Declined,
    #[error("could not read the answer: {0}")]
    Io(String),
}

/// Asks "Apply these changes?"; only `yes`/`y` proceeds.
pub fn confirm_apply() -> Result<(), PromptError> {
    if !has_terminal() {
        return Err(PromptError::NoTerminal);
    }
    let answer = dialoguer::Confirm::new()
        .with_prompt("Apply these changes?")
        .default(false)
        .interact()
        .map_err(|e| PromptError::Io(e.to_string()))?;
    if answer {
        Ok(())
    } else {
        Err(PromptError::Declined)
    }
}

/// Asks for the stack's name before `stackctl destroy` deletes anything; only the exact name
/// proceeds.
pub fn confirm_destroy(stack: &str) -> Result<(), PromptError> {
    if !has_terminal() {
        return Err(PromptError::NoTerminal);
    }
    let answer = dialoguer::Input::<String>::new()
        .with_prompt(format!(
            "This deletes everything stack `{stack}` owns. Type the stack name to confirm"
        ))
        .allow_empty(true)
        .interact_text()
        .map_err(io)?;
    if answer.trim() == stack {
        Ok(())
    } else {
        Err(PromptError::Declined)
    }
}

/// Whether there is a terminal to ask on (stdin and stderr, where dialoguer draws).
pub fn has_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

fn io(e: dialoguer::Error) -> PromptError {
    PromptError::Io(e.to_string())
}

/// A text answer, re-asked until `check` (a rule from the stack file's checks) accepts it.
fn ask(
    prompt: &str,
    default: Option<&str>,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<String, PromptError> {
    let mut input = dialoguer::Input::<String>::new()
        .with_prompt(prompt)
        .validate_with(move |answer: &String| check(answer.trim()));
    if let Some(default) = default {
        input = input.default(default.to_string());
    }
    Ok(input.interact_text().map_err(io)?.trim().to_string())
}

/// `stackctl init`'s questions, starting from `start` (flags and defaults): project, region,
/// stack name, parts; for budget and alerts the email and an optional billing account.
pub fn init_wizard(start: Answers) -> Result<Answers, PromptError> {
    let rule = |ok: fn(&str) -> bool, what: &'static str| {
        move |answer: &str| {
            if ok(answer) {
                Ok(())
            } else {
                Err(what.to_string())
            }
        }
    };
    let project = ask(
        "Google Cloud project id",
        Some(start.project.as_str()).filter(|p| !p.is_empty()),
        rule(
            crate::config::is_project_id,
            "6 to 30 lowercase letters, digits and `-`, starting with a letter",
        ),
    )?;
    let region = ask(
        "Region",
        Some(&start.region),
        rule(crate::config::is_region, "a region like us-central1"),
    )?;
    let name = ask(
        "Stack name (the ownership label's value)",
        Some(&start.name),
        rule(
            crate::config::is_stack_name,
            "lowercase letters, digits, `-` and `_`, starting with a letter",
        ),
    )?;
    let chosen = dialoguer::MultiSelect::new()
        .with_prompt("Which parts? (space toggles, enter accepts)")
        .items(Part::ALL)
        .defaults(&Part::ALL.map(|p| start.parts.contains(&p)))
        .interact()
        .map_err(io)?;
    let parts: Vec<Part> = chosen.into_iter().map(|i| Part::ALL[i]).collect();
    let mut answers = Answers {
        name,
        project,
        region,
        parts,
        ..start
    };
    if answers.parts.contains(&Part::BudgetAndAlerts) {
        answers.alert_email = ask(
            "Alert email",
            Some(&answers.alert_email),
            rule(is_email, "an email address"),
        )?;
        let billing = dialoguer::Input::<String>::new()
            .with_prompt("Billing account for a monthly budget (empty: no budget)")
            .allow_empty(true)
            .validate_with(|answer: &String| {
                let answer = answer.trim();
                if answer.is_empty() || crate::config::is_billing_account(answer) {
                    Ok(())
                } else {
                    Err("an id like 012345-6789AB-CDEF01 (`gcloud billing accounts list`)")
                }
            })
            .interact_text()
            .map_err(io)?;
        answers.billing_account = Some(billing.trim().to_string()).filter(|b| !b.is_empty());
        if answers.billing_account.is_some() {
            answers.budget_usd = dialoguer::Input::<u32>::new()
                .with_prompt("Monthly budget in USD")
                .default(answers.budget_usd)
                .validate_with(|usd: &u32| if *usd > 0 { Ok(()) } else { Err("at least 1") })
                .interact_text()
                .map_err(io)?;
        }
    }
    Ok(answers)
}

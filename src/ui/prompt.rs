//! The confirmation before apply: a dialoguer prompt on a terminal, a clear refusal without one.

use std::io::IsTerminal;

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error(
        "apply needs confirmation but there is no terminal to ask on; pass --auto-approve (e.g. in CI) or apply a saved plan file"
    )]
    NoTerminal,
    #[error("apply cancelled: nothing was changed")]
    Declined,
    #[error("could not read the answer: {0}")]
    Io(String),
}

/// Asks "Apply these changes?"; only `yes`/`y` proceeds.
pub fn confirm_apply() -> Result<(), PromptError> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
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

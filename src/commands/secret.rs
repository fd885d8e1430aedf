//! `stackctl secret set NAME`: adds a version to a declared secret, its value read from stdin,
//! a hidden prompt on a terminal, or `--from-file`; never from an argument (shell history,
//! `ps`), never printed, logged or written anywhere else.

use std::io::{IsTerminal, Read};

use anyhow::{Context, Result, bail};

use super::{ExitStatus, Session, load_stack};
use crate::cli::{Cli, SecretCommand};
use crate::ui::Printer;

/// Secret Manager's payload limit.
const MAX_VALUE_BYTES: usize = 64 * 1024;

pub async fn run(cli: &Cli, command: &SecretCommand, printer: &Printer) -> Result<ExitStatus> {
    let SecretCommand::Set { name, from_file } = command;
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let short = name.strip_prefix("secret.").unwrap_or(name);
    let Some(config) = stack.secrets.get(short) else {
        let declared: Vec<String> = stack
            .secrets
            .keys()
            .map(|k| format!("secret.{k}"))
            .collect();
        bail!(
            "secret.{short} is not declared in {} (declared: {}); add a [secret.{short}] stanza and apply it first",
            stack.file.display(),
            if declared.is_empty() {
                "none".to_string()
            } else {
                declared.join(", ")
            }
        );
    };
    let value = match from_file {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None if std::io::stdin().is_terminal() => dialoguer::Password::new()
            .with_prompt(format!("Value for secret.{short}"))
            .interact()?
            .into_bytes(),
        None => {
            let mut buffer = Vec::new();
            std::io::stdin()
                .take(MAX_VALUE_BYTES as u64 + 1)
                .read_to_end(&mut buffer)?;
            buffer
        }
    };
    if value.is_empty() {
        bail!(
            "the value is empty; pipe it in (`printf %s \"$VALUE\" | stackctl secret set {short}`) or use --from-file"
        );
    }
    if value.len() > MAX_VALUE_BYTES {
        bail!("the value is over Secret Manager's 64 KiB limit");
    }
    let bytes = value.len();
    let session = Session::open(cli, stack.clone()).await?;
    let added = session.cloud.add_secret_version(&config.id, value).await;
    session.close().await;
    let version = added.map_err(|e| {
        anyhow::anyhow!(
            "{e}\n  hint: apply the stack first so the secret exists (`stackctl apply`)"
        )
    })?;
    let number = version
        .rsplit_once("/versions/")
        .map_or(version.as_str(), |(_, v)| v);
    printer.out(&format!(
        "Added version {number} to secret.{short} ({bytes} bytes; the value is not shown)."
    ));
    Ok(ExitStatus::Success)
}

//! `stackctl api-key show NAME [--reveal]`: a declared key's resource name and restriction, read
//! from API Keys; its key string only on explicit request, printed and never logged or stored.

use anyhow::{Result, bail};

use super::{ExitStatus, Session, load_stack};
use crate::cli::{ApiKeyCommand, Cli};
use crate::provider::Silent;
use crate::resources::Reconcile;
use crate::resources::api_key::ApiKeyKind;
use crate::ui::Printer;

pub async fn run(cli: &Cli, command: &ApiKeyCommand, printer: &Printer) -> Result<ExitStatus> {
    let ApiKeyCommand::Show { name, reveal } = command;
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let short = name.strip_prefix("api_key.").unwrap_or(name);
    let Some((_, spec)) = ApiKeyKind::declared(&stack)
        .into_iter()
        .find(|(address, _)| address.name == short)
    else {
        let declared: Vec<String> = stack
            .api_keys
            .keys()
            .map(|k| format!("api_key.{k}"))
            .collect();
        bail!(
            "api_key.{short} is not declared in {} (declared: {}); add an [api_key.{short}] stanza and apply it first",
            stack.file.display(),
            if declared.is_empty() {
                "none".to_string()
            } else {
                declared.join(", ")
            }
        );
    };
    let session = Session::open(cli, stack.clone()).await?;
    let result = async {
        let keys = session.cloud.list_api_keys(&Silent).await?;
        let Some(key) = keys
            .into_iter()
            .find(|k| ApiKeyKind::live_key(k) == ApiKeyKind::spec_key(&spec))
        else {
            return Ok(None);
        };
        let key_string = match reveal {
            true => Some(session.cloud.api_key_string(&key.name, &Silent).await?),
            false => None,
        };
        Ok::<_, crate::provider::ApiError>(Some((key, key_string)))
    }
    .await;
    session.close().await;
    let Some((key, key_string)) = result? else {
        bail!("api_key.{short} does not exist yet; run `stackctl apply` first");
    };
    printer.out(&format!("api_key.{short}"));
    printer.out(&format!("  name: {}", key.name));
    printer.out(&format!("  display_name: {}", key.display_name));
    let restricted = match key.api_targets.as_slice() {
        [] => "nothing: the key may call any enabled API".to_string(),
        targets => targets.join(", "),
    };
    printer.out(&format!("  restricted_to: {restricted}"));
    match key_string {
        Some(value) => printer.out(&value),
        None => printer.out("  (the key string is not shown; pass --reveal to print it)"),
    }
    Ok(ExitStatus::Success)
}

//! `stackctl unlock [--force]`: show the apply lock and remove it when its holder is dead.

use anyhow::Result;
use chrono::Utc;

use super::{ExitStatus, Session, load_stack};
use crate::cli::{Cli, UnlockArgs};
use crate::state::lock::{LockBody, read_lock, remove_lock};
use crate::ui::Printer;

fn describe(held: &LockBody) -> String {
    let renewed = held
        .renewed_at
        .map_or_else(|| "never renewed".to_string(), |t| format!("renewed {t}"));
    let gone = if held.holder_is_dead() {
        ", whose process is no longer running,"
    } else {
        ""
    };
    format!(
        "held by {} on host {}{gone} since {} ({renewed}; lease until {})",
        held.holder,
        held.host.as_deref().unwrap_or("unknown"),
        held.acquired_at,
        held.expires_at
    )
}

pub async fn run(cli: &Cli, args: &UnlockArgs, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let session = Session::open(cli, stack).await?;
    let result = unlock(&session, args, printer).await;
    session.close().await;
    result
}

async fn unlock(session: &Session, args: &UnlockArgs, printer: &Printer) -> Result<ExitStatus> {
    let storage = session.cloud.storage();
    let bucket = session.stack.state_bucket();
    let stack = &session.stack.settings.name;
    let Some((held, generation)) = read_lock(storage, &bucket, stack).await? else {
        printer.out("The stack is not locked.");
        return Ok(ExitStatus::Success);
    };
    let shown = held
        .as_ref()
        .map_or_else(|| "unreadable".to_string(), describe);
    let live = held
        .as_ref()
        .is_some_and(|h| h.expires_at > Utc::now() && !h.holder_is_dead());
    if live && !args.force {
        printer.out(&format!("The apply lock is {shown}."));
        printer.err(
            "error: its lease is live, so that apply may still be running and renewing it; nothing was removed\n  hint: if it is dead (killed, its machine gone), run `stackctl unlock --force`: a running apply that loses the lock starts no new step and exits 1",
        );
        return Ok(ExitStatus::Failure);
    }
    remove_lock(storage, &bucket, stack, generation).await?;
    printer.out(&format!("Removed the apply lock {shown}."));
    Ok(ExitStatus::Success)
}

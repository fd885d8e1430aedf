//! `stackctl up --local`: the stack running on this machine. Applies it to the emulator when the
//! plan is not empty (the same plan and prompt as apply), builds and rolls out every service and
//! job with `build` (as `deploy --local`), starts Google's Firestore emulator beside ours, then
//! serves until Ctrl-C: services as processes behind their fronts, tasks dispatched, schedules
//! fired, jobs executed. Prints `emulator URL`, one `service.NAME URL` line per running service,
//! then `ready`; every process's output streams to stderr with its name.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::Value;

use super::local::{self, UpFile};
use super::{ExitStatus, apply, deploy, load_stack};
use crate::cli::{ApplyArgs, Cli, DeployArgs, PriceArgs, UpArgs};
use crate::ui::Printer;

/// How long `up` waits for services to listen (and Firestore to start) before `ready`.
const STARTUP_WAIT: Duration = Duration::from_secs(60);

pub async fn run(cli: &Cli, args: &UpArgs, printer: &Printer) -> Result<ExitStatus> {
    if !cli.local {
        bail!(
            "`stackctl up` runs the stack on this machine and needs --local: `stackctl up --local` (on Google, `stackctl apply` and `stackctl deploy` do the same)"
        );
    }
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    if let Some(url) = local::running_up(&stack.file).await {
        bail!(
            "`stackctl up --local` already serves this stack at {url}; stop it first (Ctrl-C in its terminal)"
        );
    }
    let running = local::start_in_process(&stack.file, true, args.port).await?;
    let emulator = running.emulator();
    let up_file = local::up_file(&stack.file);
    std::fs::write(
        &up_file,
        serde_json::to_vec(&UpFile {
            url: running.url(),
            pid: std::process::id(),
        })?,
    )?;
    let mut logs = emulator.runtime.logs.live.subscribe();
    tokio::spawn(async move {
        while let Ok(line) = logs.recv().await {
            eprintln!("{} | {}", line.source, readable(&line.line));
        }
    });
    let firestore = start_firestore(printer).await;
    if let Some((_, host)) = &firestore {
        emulator.runtime.add_env("FIRESTORE_EMULATOR_HOST", host);
    }

    let firestore_host = firestore.as_ref().map(|(_, host)| host.clone());
    let outcome = bring_up(
        cli,
        args,
        &stack,
        printer,
        &emulator,
        &running.url(),
        firestore_host.as_deref(),
    )
    .await;
    if let Ok(ExitStatus::Success) = outcome {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminated() => {}
        }
        printer.note("stopping: SIGTERM to every process, SIGKILL after 10 s");
    }
    let _ = std::fs::remove_file(&up_file);
    running.shutdown().await;
    emulator
        .runtime
        .wait_processes_gone(Duration::from_secs(11))
        .await;
    if let Some((mut child, _)) = firestore {
        // gcloud runs the emulator (Java) as its child: stop the whole process group.
        if let Some(group) = child.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) on the process group we created for gcloud.
            unsafe {
                libc::kill(-group, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_err()
        {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
    outcome
}

async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

/// Apply, deploy, wait for the services; prints the address lines and `ready`.
async fn bring_up(
    cli: &Cli,
    args: &UpArgs,
    stack: &crate::config::Stack,
    printer: &Printer,
    emulator: &gcp_emulator::Emulator,
    url: &str,
    firestore: Option<&str>,
) -> Result<ExitStatus> {
    let applied = apply::run(
        cli,
        &ApplyArgs {
            plan_file: None,
            auto_approve: args.auto_approve,
            json: false,
            parallelism: 10,
            safety: Default::default(),
            prices: PriceArgs { live_prices: false },
            cost_gate: Default::default(),
        },
        printer,
    )
    .await?;
    if applied != ExitStatus::Success {
        printer.err("error: the stack was not applied to the local emulator; nothing was started");
        return Ok(ExitStatus::Failure);
    }
    let built = deploy::built_targets(stack, &[]).is_ok_and(|t| !t.is_empty());
    if built {
        let deployed = deploy::run(
            cli,
            &DeployArgs {
                services: vec![],
                no_traffic: false,
                tag: None,
                registry: None,
                json: false,
                for_host: true,
            },
            printer,
        )
        .await?;
        if deployed != ExitStatus::Success {
            printer.err("error: a build or rollout failed; nothing was started");
            return Ok(ExitStatus::Failure);
        }
    }
    let statuses = emulator.runtime.wait_services_settled(STARTUP_WAIT).await;
    let mut out = std::io::stdout();
    writeln!(out, "emulator {url}")?;
    if let Some(host) = firestore {
        match firestore_answers(host, FIRESTORE_WAIT).await {
            true => writeln!(out, "firestore http://{host}")?,
            false => printer.err(&format!(
                "firestore not answering on {host} after {}s: workers that use Firestore will fail",
                FIRESTORE_WAIT.as_secs()
            )),
        }
    }
    for status in &statuses {
        let id = status.name.rsplit('/').next().unwrap_or_default();
        match (&status.running, &status.front) {
            (Ok(_), Some(front)) if status.listening => writeln!(out, "service.{id} {front}")?,
            (Ok(_), _) => printer.err(&format!(
                "service.{id} not running: it did not listen on $PORT within {}s",
                STARTUP_WAIT.as_secs()
            )),
            (Err(reason), _) => printer.err(&format!("service.{id} not running: {reason}")),
        }
    }
    for (name, front) in emulator.runtime.wait_gateways_settled(STARTUP_WAIT).await {
        let id = name.rsplit('/').next().unwrap_or_default();
        // The stack's name for it: the [gateway.NAME] whose id it is.
        let declared = stack
            .gateways
            .iter()
            .find(|(_, g)| g.id == id)
            .map_or(id, |(name, _)| name.as_str());
        writeln!(out, "gateway.{declared} {front}")?;
    }
    writeln!(out, "ready")?;
    out.flush()?;
    Ok(ExitStatus::Success)
}

/// How long Google's Firestore emulator (a JVM) may take to answer.
const FIRESTORE_WAIT: Duration = Duration::from_secs(60);

/// Whether the Firestore emulator at `host` answers HTTP within `wait` (it starts in seconds,
/// and started beside the build, it is usually up before the services are).
async fn firestore_answers(host: &str, wait: Duration) -> bool {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < deadline {
        let answered = client
            .get(format!("http://{host}/"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if answered {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// Google's Firestore emulator (`gcloud emulators firestore start`) on a free port, if gcloud
/// is installed; its `host:port` goes into every process's `FIRESTORE_EMULATOR_HOST`.
async fn start_firestore(printer: &Printer) -> Option<(tokio::process::Child, String)> {
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .ok()?
        .port();
    let host = format!("127.0.0.1:{port}");
    let child = tokio::process::Command::new("gcloud")
        .args([
            "emulators",
            "firestore",
            "start",
            "--quiet",
            &format!("--host-port={host}"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .process_group(0)
        .spawn();
    match child {
        Ok(child) => Some((child, host)),
        Err(e) => {
            printer.err(&format!(
                "note: Google's Firestore emulator is not running ({e}); install the Google Cloud CLI with its cloud-firestore-emulator component to have FIRESTORE_EMULATOR_HOST"
            ));
            None
        }
    }
}

/// A JSON log line (Cloud Logging's structured form) as `SEVERITY message`; others as they are.
fn readable(line: &str) -> String {
    let Ok(Value::Object(entry)) = serde_json::from_str::<Value>(line) else {
        return line.to_string();
    };
    let message = entry
        .get("message")
        .or_else(|| entry.get("msg"))
        .and_then(Value::as_str);
    match message {
        Some(message) => {
            let severity = entry
                .get("severity")
                .or_else(|| entry.get("level"))
                .and_then(Value::as_str)
                .unwrap_or("DEFAULT");
            format!("{severity} {message}")
        }
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::readable;

    #[test]
    fn structured_log_lines_read_as_severity_and_message() {
        assert_eq!(
            readable(r#"{"severity":"ERROR","message":"enqueue failed","task":"t1"}"#),
            "ERROR enqueue failed"
        );
        assert_eq!(readable("plain text"), "plain text");
        assert_eq!(readable(r#"{"no":"message"}"#), r#"{"no":"message"}"#);
    }
}

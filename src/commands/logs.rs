//! `stackctl logs service.NAME|job.NAME [--follow]`: what a service's revisions or a job's
//! tasks printed, read with Cloud Logging `entries.list` (from Google, or with `--local` from
//! the emulator, which files the local processes' output as Cloud Run does). The last `--limit`
//! entries oldest first; `--follow` then polls for newer ones until Ctrl-C.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Result, bail};

use super::{ExitStatus, Session, load_stack};
use crate::cli::{Cli, LogsArgs};
use crate::config::Stack;
use crate::model::Endpoint;
use crate::provider::logging::{LogEntry, LogQuery};
use crate::ui::Printer;

pub async fn run(cli: &Cli, args: &LogsArgs, printer: &Printer) -> Result<ExitStatus> {
    let Some(stack) = load_stack(cli, printer) else {
        return Ok(ExitStatus::Failure);
    };
    let filter = resource_filter(&stack, &args.address)?;
    let session = Session::open(cli, stack).await?;
    let outcome = print_entries(&session, &filter, args, printer).await;
    session.close().await;
    outcome.map(|()| ExitStatus::Success)
}

/// The Logging filter for the entries of `service.NAME` or `job.NAME`, by its Cloud Run id.
fn resource_filter(stack: &Stack, address: &str) -> Result<String> {
    let region = &stack.settings.region;
    let (kind, name) = address.split_once('.').unwrap_or(("", address));
    let declared = || {
        let mut all: Vec<String> = stack
            .services
            .keys()
            .map(|n| format!("service.{n}"))
            .chain(stack.jobs.keys().map(|n| format!("job.{n}")))
            .collect();
        all.sort();
        if all.is_empty() {
            "none".to_string()
        } else {
            all.join(", ")
        }
    };
    match kind {
        "service" if let Some(service) = stack.services.get(name) => Ok(format!(
            "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"{}\" AND resource.labels.location = \"{region}\"",
            service.id
        )),
        "job" if let Some(job) = stack.jobs.get(name) => Ok(format!(
            "resource.type = \"cloud_run_job\" AND resource.labels.job_name = \"{}\" AND resource.labels.location = \"{region}\"",
            job.id
        )),
        _ => bail!(
            "`{address}` is not a service or job declared in {} (declared: {}); name one as service.NAME or job.NAME",
            stack.file.display(),
            declared()
        ),
    }
}

async fn print_entries(
    session: &Session,
    filter: &str,
    args: &LogsArgs,
    printer: &Printer,
) -> Result<()> {
    let call = |query: LogQuery| async move {
        session.cloud.list_log_entries(&query).await.map_err(|e| {
            anyhow::anyhow!(
                "{e}\n  hint: reading logs needs roles/logging.viewer on project {}",
                session.cloud.project
            )
        })
    };
    let mut entries = call(LogQuery {
        filter: filter.to_string(),
        newest_first: true,
        limit: args.limit as usize,
    })
    .await?;
    entries.reverse();
    let mut cursor = Cursor::default();
    for entry in &entries {
        printer.out(&line(entry));
        cursor.saw(entry);
    }
    if !args.follow {
        if entries.is_empty() {
            printer.note(&format!(
                "no log entries yet for {} (they appear once it runs{})",
                args.address,
                if session.cloud.endpoint == Endpoint::Google {
                    ""
                } else {
                    ": `stackctl up --local`"
                }
            ));
        }
        return Ok(());
    }
    // Cloud Logging allows 60 entries.list calls a minute per project; poll well under that.
    let every = if session.cloud.endpoint == Endpoint::Google {
        Duration::from_secs(5)
    } else {
        Duration::from_millis(500)
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            () = tokio::time::sleep(every) => {}
        }
        let newer = call(LogQuery {
            filter: cursor.filter_after(filter),
            newest_first: false,
            limit: 1000,
        })
        .await?;
        for entry in &newer {
            if cursor.is_new(entry) {
                printer.out(&line(entry));
                cursor.saw(entry);
            }
        }
    }
}

/// Where `--follow` resumes: the newest timestamp printed, and the entries printed at it (a
/// later one may share the timestamp, so the next read starts at it, not after it).
#[derive(Debug, Default)]
struct Cursor {
    timestamp: Option<String>,
    at_timestamp: HashSet<String>,
}

impl Cursor {
    fn saw(&mut self, entry: &LogEntry) {
        if self.timestamp.as_deref() != Some(entry.timestamp.as_str()) {
            self.timestamp = Some(entry.timestamp.clone());
            self.at_timestamp.clear();
        }
        self.at_timestamp.insert(entry.insert_id.clone());
    }

    fn is_new(&self, entry: &LogEntry) -> bool {
        self.timestamp.as_deref() != Some(entry.timestamp.as_str())
            || !self.at_timestamp.contains(&entry.insert_id)
    }

    fn filter_after(&self, filter: &str) -> String {
        match &self.timestamp {
            Some(t) => format!("{filter} AND timestamp >= \"{t}\""),
            None => filter.to_string(),
        }
    }
}

/// `2026-12-05T07:00:00.123Z INFO    [task 0] message`.
fn line(entry: &LogEntry) -> String {
    let time = chrono::DateTime::parse_from_rfc3339(&entry.timestamp)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string()
        })
        .unwrap_or_else(|_| entry.timestamp.clone());
    let severity = entry.severity.as_deref().unwrap_or("DEFAULT");
    let task = entry
        .labels
        .get("run.googleapis.com/task_index")
        .map(|t| format!("[task {t}] "))
        .unwrap_or_default();
    format!("{time} {severity:<7} {task}{}", entry.message())
}

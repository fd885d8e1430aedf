//! Cloud Run job executions, run for real: each execution started by `jobs.run` (by a user, a
//! Scheduler job or `stackctl`) runs its tasks as local processes with `CLOUD_RUN_JOB`,
//! `CLOUD_RUN_EXECUTION`, `CLOUD_RUN_TASK_INDEX/COUNT/ATTEMPT`; each attempt is killed at the
//! task timeout; a failed task is retried up to `maxRetries`; the execution then records
//! `succeededCount`/`failedCount`/`retriedCount`, its conditions and `completionTime`, and its
//! operation finishes.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use super::metadata::{self, Instance};
use super::process;
use super::services::stopped;
use crate::apis::run_jobs::{ExecutionOutcome, record_execution_end};
use crate::conventions::wire::timestamp;
use crate::emulator::Emulator;
use crate::lock;

/// Cloud Run's default task timeout (`template.template.timeout`).
const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(600);
/// Cloud Run's default `maxRetries` per task.
const DEFAULT_MAX_RETRIES: u64 = 3;

/// An execution to run, read from the state.
struct Started {
    name: String,
    job: String,
    task_count: u64,
    parallelism: u64,
    template: Value,
}

fn parse_seconds(duration: Option<&Value>) -> Option<Duration> {
    let text = duration?.as_str()?.strip_suffix('s')?;
    text.parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64)
}

fn unclaimed(emulator: &Emulator, claimed: &Mutex<BTreeSet<String>>) -> Vec<Started> {
    let state = lock(&emulator.state);
    let mut claimed = lock(claimed);
    state
        .executions
        .iter()
        .filter(|(name, e)| {
            e.get("reconciling") == Some(&Value::Bool(true)) && claimed.insert((*name).clone())
        })
        .map(|(name, e)| {
            let number =
                |key: &str, default: u64| e.get(key).and_then(Value::as_u64).unwrap_or(default);
            Started {
                name: name.clone(),
                job: name
                    .split("/executions/")
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                task_count: number("taskCount", 1).max(1),
                parallelism: number("parallelism", 0),
                template: e.get("template").cloned().unwrap_or_default(),
            }
        })
        .collect()
}

/// Runs executions until `stop` turns true.
pub async fn run(emulator: Arc<Emulator>, mut stop: watch::Receiver<bool>) {
    let claimed = Arc::new(Mutex::new(BTreeSet::new()));
    loop {
        for started in unclaimed(&emulator, &claimed) {
            tokio::spawn(execute(Arc::clone(&emulator), started, stop.clone()));
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
            () = stopped(&mut stop) => return,
        }
    }
}

/// One task's end: succeeded or not, how many attempts, and the last failure.
struct TaskEnd {
    succeeded: bool,
    attempts: u64,
    failure: Option<String>,
}

async fn execute(emulator: Arc<Emulator>, started: Started, stop: watch::Receiver<bool>) {
    let outcome = match run_tasks(&emulator, &started, stop).await {
        Ok(ends) => {
            let failed: Vec<&TaskEnd> = ends.iter().filter(|e| !e.succeeded).collect();
            ExecutionOutcome {
                succeeded: ends.iter().filter(|e| e.succeeded).count() as u64,
                failed: failed.len() as u64,
                retried: ends.iter().filter(|e| e.attempts > 1).count() as u64,
                failure: failed.first().map(|f| {
                    format!(
                        "Task {} failed: {}. The execution failed because {} of {} tasks failed.",
                        ends.iter().position(|e| std::ptr::eq(e, *f)).unwrap_or(0),
                        f.failure.clone().unwrap_or_default(),
                        failed.len(),
                        ends.len()
                    )
                }),
            }
        }
        Err(reason) => ExecutionOutcome {
            succeeded: 0,
            failed: started.task_count,
            retried: 0,
            failure: Some(reason),
        },
    };
    let mut state = lock(&emulator.state);
    let now = timestamp(emulator.runtime.clock.now());
    let result = record_execution_end(&mut state, &started.name, &now, &outcome);
    let operation = state
        .operations
        .iter()
        .find(|(_, op)| op.kind == crate::state::OperationKind::RunJob && op.target == started.name)
        .map(|(name, _)| name.clone());
    if let Some(operation) = operation {
        crate::apis::lro::finish(&mut state, &operation, result.map(Some));
    }
    emulator.persist(&state);
}

async fn run_tasks(
    emulator: &Arc<Emulator>,
    started: &Started,
    stop: watch::Receiver<bool>,
) -> Result<Vec<TaskEnd>, String> {
    let container = started
        .template
        .pointer("/containers/0")
        .cloned()
        .ok_or("the execution's template has no container")?;
    let image_ref = container
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let image = super::images::unpack(emulator, image_ref)?;
    let (project, location, job_id) = {
        let mut it = started.job.split('/');
        (
            it.nth(1).unwrap_or_default().to_string(),
            it.nth(1).unwrap_or_default().to_string(),
            it.nth(1).unwrap_or_default().to_string(),
        )
    };
    let env = {
        let state = lock(&emulator.state);
        super::env::container_env(
            &state,
            &project,
            &container,
            "spec.template.spec.template.spec.containers[0]",
        )?
    };
    let email = started
        .template
        .get("serviceAccount")
        .and_then(Value::as_str)
        .map_or_else(
            || {
                format!(
                    "{}-compute@developer.gserviceaccount.com",
                    crate::apis::project_number(&project)
                )
            },
            str::to_string,
        );
    let (metadata_stop, metadata_stopped) = watch::channel(false);
    let metadata = metadata::serve(
        Arc::clone(emulator),
        Instance {
            email,
            project: project.clone(),
            region: location.clone(),
        },
        metadata_stopped,
    )
    .await
    .map_err(|e| format!("its metadata server could not listen: {e}"))?;
    let emulator_url = emulator.runtime.url.get().cloned().unwrap_or_default();
    let execution_id = started
        .name
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut base = env;
    base.extend(super::env::local_cloud(
        &emulator_url,
        &metadata.to_string(),
    ));
    base.extend(emulator.runtime.extra_env());
    base.extend([
        ("CLOUD_RUN_JOB".to_string(), job_id.clone()),
        ("CLOUD_RUN_EXECUTION".to_string(), execution_id.clone()),
        (
            "CLOUD_RUN_TASK_COUNT".to_string(),
            started.task_count.to_string(),
        ),
    ]);
    let timeout = parse_seconds(started.template.get("timeout")).unwrap_or(DEFAULT_TASK_TIMEOUT);
    let max_retries = started
        .template
        .get("maxRetries")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_RETRIES);
    let parallelism = if started.parallelism == 0 {
        started.task_count
    } else {
        started.parallelism
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(
        usize::try_from(parallelism).unwrap_or(1).max(1),
    ));
    let mut handles = Vec::new();
    for index in 0..started.task_count {
        let slots = Arc::clone(&slots);
        let base = base.clone();
        let image = image.clone();
        let sink = emulator.runtime.logs.clone();
        let source =
            process::LogSource::job_task(&project, &location, &job_id, &execution_id, index);
        let mut stop = stop.clone();
        handles.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await;
            let mut failure = None;
            for attempt in 0..=max_retries {
                let mut env = base.clone();
                env.push(("CLOUD_RUN_TASK_INDEX".into(), index.to_string()));
                env.push(("CLOUD_RUN_TASK_ATTEMPT".into(), attempt.to_string()));
                let mut child = match process::spawn(&image, &env, &source, &sink) {
                    Ok(child) => child,
                    Err(e) => {
                        failure = Some(format!("the container could not start: {e}"));
                        continue;
                    }
                };
                let ended = tokio::select! {
                    status = tokio::time::timeout(timeout, child.wait()) => status,
                    () = stopped(&mut stop) => {
                        process::stop(&mut child, process::GRACE).await;
                        return TaskEnd { succeeded: false, attempts: attempt + 1, failure: Some("the emulator stopped".into()) };
                    }
                };
                match ended {
                    Ok(Ok(status)) if status.success() => {
                        return TaskEnd { succeeded: true, attempts: attempt + 1, failure: None };
                    }
                    Ok(Ok(status)) => {
                        failure = Some(format!(
                            "the user-provided container failed with exit code: {}",
                            status.code().map_or_else(|| "signal".to_string(), |c| c.to_string())
                        ));
                    }
                    Ok(Err(e)) => failure = Some(format!("the container could not be waited for: {e}")),
                    Err(_) => {
                        process::stop(&mut child, Duration::ZERO).await;
                        failure = Some(format!(
                            "the task timed out after {}s (the task timeout)",
                            timeout.as_secs()
                        ));
                    }
                }
            }
            TaskEnd { succeeded: false, attempts: max_retries + 1, failure }
        }));
    }
    let mut ends = Vec::new();
    for handle in handles {
        ends.push(handle.await.unwrap_or(TaskEnd {
            succeeded: false,
            attempts: 1,
            failure: Some("the task runner panicked".into()),
        }));
    }
    let _ = metadata_stop.send(true);
    Ok(ends)
}

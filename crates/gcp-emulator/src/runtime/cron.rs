//! Cloud Scheduler, firing: every enabled job whose `scheduleTime` has come (on the one clock)
//! or that `jobs.run` forced calls its HTTP target as Cloud Scheduler does (`User-Agent:
//! Google-Cloud-Scheduler`, `X-CloudScheduler: true`, `-JobName`, `-ScheduleTime`; an OIDC token
//! or an OAuth access token for the job's service account; the attempt deadline), retries by its
//! `retryConfig` (`retryCount`, default 0: wait for the next schedule), then records
//! `lastAttemptTime`, `status` and the next `scheduleTime`. A target on `run.googleapis.com` (a
//! Cloud Run job's `:run`) is sent to this emulator, so the schedule starts a real execution;
//! service URLs go to their fronts.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::dispatcher::RetryPolicy;
use super::services::stopped;
use crate::apis::scheduler::next_fire;
use crate::conventions::Code;
use crate::conventions::wire::{parse_duration_nanos, parse_timestamp, timestamp};
use crate::emulator::Emulator;
use crate::lock;

fn duration_of(value: Option<&Value>, default: Duration) -> Duration {
    value
        .and_then(Value::as_str)
        .and_then(parse_duration_nanos)
        .and_then(|n| u64::try_from(n).ok())
        .map_or(default, Duration::from_nanos)
}

/// Where a target URL is actually sent: Google's Run API to this emulator, services to fronts.
fn local_target(emulator: &Emulator, uri: &str) -> String {
    let (_, rest) = uri.split_once("://").unwrap_or(("https", uri));
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if host == "run.googleapis.com" || host.ends_with("-run.googleapis.com") {
        let base = emulator.runtime.url.get().cloned().unwrap_or_default();
        return format!("{base}{path}");
    }
    emulator.runtime.routes.resolve(uri)
}

/// One firing: the target's answer (None = no answer) and why it failed.
async fn attempt(
    emulator: &Emulator,
    client: &reqwest::Client,
    name: &str,
    job: &Value,
    scheduled: DateTime<Utc>,
) -> Result<(), (Option<u16>, String)> {
    let target = &job["httpTarget"];
    let uri = target["uri"].as_str().unwrap_or_default();
    let method = target["httpMethod"].as_str().unwrap_or("POST");
    let mut request = client
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::POST),
            local_target(emulator, uri),
        )
        .timeout(duration_of(
            job.get("attemptDeadline"),
            Duration::from_secs(180),
        ))
        .header("User-Agent", "Google-Cloud-Scheduler")
        .header("X-CloudScheduler", "true")
        .header(
            "X-CloudScheduler-JobName",
            name.rsplit('/').next().unwrap_or(name),
        )
        .header("X-CloudScheduler-ScheduleTime", timestamp(scheduled));
    let (internal, key) = emulator.runtime.routes.internal_caller();
    request = request.header(internal, key);
    let mut has_content_type = false;
    for (k, v) in target["headers"].as_object().into_iter().flatten() {
        if let Some(v) = v.as_str() {
            has_content_type |= k.eq_ignore_ascii_case("content-type");
            request = request.header(k.as_str(), v);
        }
    }
    let now = emulator.runtime.clock.now();
    if let Some(email) = target
        .pointer("/oidcToken/serviceAccountEmail")
        .and_then(Value::as_str)
    {
        let audience = target
            .pointer("/oidcToken/audience")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
            .unwrap_or(uri);
        let token = emulator.runtime.identity.id_token(email, audience, now);
        request = request.header("Authorization", format!("Bearer {token}"));
    } else if let Some(email) = target
        .pointer("/oauthToken/serviceAccountEmail")
        .and_then(Value::as_str)
    {
        let token = emulator.runtime.identity.access_token(email);
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    if matches!(method, "POST" | "PUT" | "PATCH") {
        let body = target["body"]
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .unwrap_or_default();
        if !has_content_type {
            request = request.header("Content-Type", "application/octet-stream");
        }
        request = request.body(body);
    }
    match request.send().await {
        Ok(answer) if answer.status().is_success() => Ok(()),
        Ok(answer) => {
            let status = answer.status().as_u16();
            Err((Some(status), format!("HTTP {status}")))
        }
        Err(e) if e.is_timeout() => Err((None, "the attempt deadline passed".into())),
        Err(e) => Err((None, format!("no answer: {e}"))),
    }
}

/// The wait before each retry of a job (its `retryConfig`: `min/maxBackoffDuration` and
/// `maxDoublings`, the same schedule shape as Cloud Tasks).
fn scheduler_backoff(retry: &Value) -> RetryPolicy {
    RetryPolicy {
        max_attempts: retry["retryCount"].as_i64().unwrap_or(0).clamp(0, 5) + 1,
        max_retry_duration: Some(duration_of(retry.get("maxRetryDuration"), Duration::ZERO))
            .filter(|d| !d.is_zero()),
        min_backoff: duration_of(retry.get("minBackoffDuration"), Duration::from_secs(5)),
        max_backoff: duration_of(retry.get("maxBackoffDuration"), Duration::from_secs(3600)),
        max_doublings: retry["maxDoublings"]
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .unwrap_or(5),
    }
}

/// Fires one job and retries a failure by its `retryConfig`: up to `retryCount` retries (and,
/// when set, until `maxRetryDuration` has passed too), never past the job's next schedule time;
/// then records the outcome.
async fn fire(
    emulator: Arc<Emulator>,
    client: reqwest::Client,
    name: String,
    job: Value,
    scheduled: DateTime<Utc>,
) {
    let policy = scheduler_backoff(&job["retryConfig"]);
    let started = emulator.runtime.clock.now();
    let next_schedule = next_fire(&job, started.max(scheduled));
    let mut outcome;
    let mut attempts: i64 = 0;
    loop {
        outcome = attempt(&emulator, &client, &name, &job, scheduled).await;
        attempts += 1;
        let now = emulator.runtime.clock.now();
        let count_left = attempts < policy.max_attempts;
        // `retryCount` 0 = never retried: the job waits for its next schedule.
        let duration_left = policy.max_attempts > 1
            && policy
                .max_retry_duration
                .is_some_and(|d| now - started < chrono::Duration::from_std(d).unwrap_or_default());
        if outcome.is_ok() || !(count_left || duration_left) {
            break;
        }
        let wait = policy.backoff(u32::try_from(attempts - 1).unwrap_or(u32::MAX));
        let until = now + chrono::Duration::from_std(wait).unwrap_or_default();
        if next_schedule.is_some_and(|next| until >= next) {
            break;
        }
        emulator.runtime.clock.sleep_until(until).await;
    }
    let mut state = lock(&emulator.state);
    let now = emulator.runtime.clock.now();
    let Some(stored) = state.scheduler_jobs.get_mut(&name) else {
        return;
    };
    stored["lastAttemptTime"] = json!(timestamp(now.with_nanosecond_zero()));
    stored["status"] = match &outcome {
        Ok(()) => json!({}),
        Err((status, message)) => {
            let code = status.map_or(Code::Unavailable, Code::from_http_status);
            json!({"code": code.rpc_number(), "message": message})
        }
    };
    if let Some(next) = next_fire(stored, now.max(scheduled)) {
        stored["scheduleTime"] = json!(timestamp(next));
    }
    emulator.persist(&state);
}

trait WholeSeconds {
    fn with_nanosecond_zero(self) -> Self;
}

impl WholeSeconds for DateTime<Utc> {
    fn with_nanosecond_zero(self) -> Self {
        chrono::Timelike::with_nanosecond(&self, 0).unwrap_or(self)
    }
}

/// Fires scheduler jobs until `stop` turns true.
pub async fn run(emulator: Arc<Emulator>, mut stop: watch::Receiver<bool>) {
    let Ok(client) = reqwest::Client::builder().no_proxy().build() else {
        return;
    };
    let firing: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    loop {
        let now = emulator.runtime.clock.now();
        let mut next: Option<DateTime<Utc>> = None;
        let due: Vec<(String, Value, DateTime<Utc>)> = {
            let mut state = lock(&emulator.state);
            let forced = std::mem::take(&mut state.scheduler_runs);
            let busy = lock(&firing);
            state
                .scheduler_jobs
                .iter()
                .filter(|(name, _)| !busy.contains(*name))
                .filter_map(|(name, job)| {
                    if forced.contains(name) {
                        return Some((name.clone(), job.clone(), now));
                    }
                    if job["state"].as_str() != Some("ENABLED") {
                        return None;
                    }
                    let at = job["scheduleTime"].as_str().and_then(parse_timestamp)?;
                    if at > now {
                        next = Some(next.map_or(at, |n| n.min(at)));
                        return None;
                    }
                    Some((name.clone(), job.clone(), at))
                })
                .collect()
        };
        for (name, job, scheduled) in due {
            lock(&firing).insert(name.clone());
            let (emulator, client, firing) =
                (Arc::clone(&emulator), client.clone(), Arc::clone(&firing));
            tokio::spawn(async move {
                fire(Arc::clone(&emulator), client, name.clone(), job, scheduled).await;
                lock(&firing).remove(&name);
            });
        }
        let wait = next
            .map(|at| {
                (at - emulator.runtime.clock.now())
                    .to_std()
                    .unwrap_or_default()
            })
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = emulator.runtime.scheduler_wake.notified() => {}
            () = emulator.runtime.clock.jumped() => {}
            () = stopped(&mut stop) => return,
        }
    }
}

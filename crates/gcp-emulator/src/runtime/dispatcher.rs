//! The Cloud Tasks dispatcher: sends due tasks to their HTTP targets as Cloud Tasks does. Per
//! queue: a token bucket (`maxDispatchesPerSecond`, `maxBurstSize`), `maxConcurrentDispatches`,
//! paused queues hold their tasks (`tasks.run` forces one anyway); the queue's `httpTarget`
//! (`uriOverride`, method, OIDC token) applies; service URLs go to their local fronts. Each
//! attempt carries `User-Agent: Google-Cloud-Tasks`, the `X-CloudTasks-*` headers and an ID token
//! from the local issuer (audience: the configured one, else the task's URL); 2xx deletes the
//! task, anything else schedules a retry by the queue's `retryConfig` (on the one clock; a
//! `Retry-After` on 429/503 is honoured) until `maxAttempts` and `maxRetryDuration` are both
//! used up, when the task is deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::services::stopped;
use crate::conventions::Code;
use crate::conventions::wire::{parse_duration_nanos, parse_timestamp, timestamp};
use crate::emulator::Emulator;
use crate::lock;

/// A queue's token bucket: `burst` tokens at most, refilled at `rate` per second; each dispatch
/// takes one.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            refilled: now,
        }
    }

    /// Takes a token at `now`, or says how long until one is there.
    fn take(&mut self, rate: f64, burst: f64, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.refilled = now;
        if self.tokens < 1.0 {
            return Err(Duration::from_secs_f64((1.0 - self.tokens) / rate));
        }
        self.tokens -= 1.0;
        Ok(())
    }
}

/// The retry settings of a queue, read from its `retryConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// -1 = unlimited.
    pub max_attempts: i64,
    pub max_retry_duration: Option<Duration>,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub max_doublings: u32,
}

fn duration_of(value: Option<&Value>) -> Option<Duration> {
    let nanos = parse_duration_nanos(value?.as_str()?)?;
    u64::try_from(nanos).ok().map(Duration::from_nanos)
}

impl RetryPolicy {
    pub fn of(queue: &Value) -> Self {
        let retry = &queue["retryConfig"];
        Self {
            max_attempts: retry["maxAttempts"].as_i64().unwrap_or(100),
            max_retry_duration: duration_of(retry.get("maxRetryDuration")).filter(|d| !d.is_zero()),
            min_backoff: duration_of(retry.get("minBackoff")).unwrap_or(Duration::from_millis(100)),
            max_backoff: duration_of(retry.get("maxBackoff")).unwrap_or(Duration::from_secs(3600)),
            max_doublings: retry["maxDoublings"]
                .as_u64()
                .and_then(|d| u32::try_from(d).ok())
                .unwrap_or(16),
        }
    }

    /// The wait before retry `k` (0 = the first retry): doubling `maxDoublings` times from
    /// `minBackoff`, then growing linearly by `2^maxDoublings x minBackoff`, capped at
    /// `maxBackoff` (10 s, 300 s, 3 doublings: 10, 20, 40, 80, 160, 240, 300, 300, ...).
    pub fn backoff(&self, k: u32) -> Duration {
        let d = self.max_doublings.min(40);
        let factor = if k <= d {
            2f64.powi(k as i32)
        } else {
            2f64.powi(d as i32) * f64::from(k - d + 1)
        };
        let wait = self.min_backoff.as_secs_f64() * factor;
        Duration::from_secs_f64(wait.min(self.max_backoff.as_secs_f64()))
    }
}

/// One attempt to send, prepared under the state lock.
struct Attempt {
    name: String,
    queue: String,
    method: String,
    /// Where the attempt is sent: the task's URL, a service URL resolved to its local front.
    send_to: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    oidc: Option<(String, String)>,
    deadline: Duration,
}

fn short(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// The task's URL after the queue's `httpTarget.uriOverride`.
fn override_uri(url: &str, uri_override: &Value) -> String {
    let enforce = uri_override["uriOverrideEnforceMode"]
        .as_str()
        .unwrap_or("ALWAYS");
    if enforce == "IF_NOT_EXISTS" && !url.is_empty() {
        return url.to_string();
    }
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let (authority, path_query) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
    let scheme = match uri_override["scheme"].as_str() {
        Some("HTTP") => "http",
        Some("HTTPS") => "https",
        _ => scheme,
    };
    let host = uri_override["host"].as_str().unwrap_or(host);
    let port = match uri_override
        .get("port")
        .and_then(|p| p.as_i64().or_else(|| p.as_str()?.parse().ok()))
    {
        Some(0) => String::new(),
        Some(p) => p.to_string(),
        None => port.to_string(),
    };
    let path = uri_override
        .pointer("/pathOverride/path")
        .and_then(Value::as_str)
        .unwrap_or(path);
    let query = uri_override
        .pointer("/queryOverride/queryParams")
        .and_then(Value::as_str)
        .unwrap_or(query);
    let mut out = format!("{scheme}://{host}");
    if !port.is_empty() {
        out.push_str(&format!(":{port}"));
    }
    if !path.starts_with('/') {
        out.push('/');
    }
    out.push_str(path);
    if !query.is_empty() {
        out.push('?');
        out.push_str(query);
    }
    out
}

fn seconds_since_epoch(at: DateTime<Utc>) -> String {
    format!("{}.{:06}", at.timestamp(), at.timestamp_subsec_micros())
}

fn prepare(
    emulator: &Emulator,
    name: &str,
    queue: &Value,
    record: &crate::state::TaskRecord,
) -> Attempt {
    let task = &record.task;
    let request = task
        .get("httpRequest")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let target = queue.get("httpTarget").cloned().unwrap_or(Value::Null);
    let mut url = request["url"].as_str().unwrap_or_default().to_string();
    if let Some(uri_override) = target.get("uriOverride") {
        url = override_uri(&url, uri_override);
    }
    let method = target["httpMethod"]
        .as_str()
        .or_else(|| request["httpMethod"].as_str())
        .unwrap_or("POST")
        .to_string();
    let oidc = target
        .get("oidcToken")
        .or_else(|| request.get("oidcToken"))
        .and_then(|t| {
            let email = t["serviceAccountEmail"].as_str()?.to_string();
            let audience = t["audience"]
                .as_str()
                .filter(|a| !a.is_empty())
                .unwrap_or(&url)
                .to_string();
            Some((email, audience))
        });
    let body = request["body"]
        .as_str()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    let dispatch_count = task["dispatchCount"].as_u64().unwrap_or(0);
    let response_count = task["responseCount"].as_u64().unwrap_or(0);
    let schedule = task["scheduleTime"]
        .as_str()
        .and_then(parse_timestamp)
        .unwrap_or_else(Utc::now);
    let mut headers: Vec<(String, String)> = request["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            !(k.starts_with("x-google-")
                || k.starts_with("x-appengine-")
                || k == "host"
                || k == "content-length"
                || k == "user-agent")
        })
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    for override_header in target["headerOverrides"].as_array().into_iter().flatten() {
        if let (Some(k), Some(v)) = (
            override_header
                .pointer("/header/key")
                .and_then(Value::as_str),
            override_header
                .pointer("/header/value")
                .and_then(Value::as_str),
        ) {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
            headers.push((k.to_string(), v.to_string()));
        }
    }
    headers.extend([
        ("User-Agent".to_string(), "Google-Cloud-Tasks".to_string()),
        (
            "X-CloudTasks-QueueName".to_string(),
            short(name.split("/tasks/").next().unwrap_or_default()).to_string(),
        ),
        ("X-CloudTasks-TaskName".to_string(), short(name).to_string()),
        (
            "X-CloudTasks-TaskRetryCount".to_string(),
            dispatch_count.to_string(),
        ),
        (
            "X-CloudTasks-TaskExecutionCount".to_string(),
            response_count.to_string(),
        ),
        (
            "X-CloudTasks-TaskETA".to_string(),
            seconds_since_epoch(schedule),
        ),
    ]);
    if dispatch_count > 0 {
        headers.push((
            "X-CloudTasks-TaskPreviousResponse".to_string(),
            record.previous_response.unwrap_or(0).to_string(),
        ));
        if let Some(reason) = &record.retry_reason {
            headers.push(("X-CloudTasks-TaskRetryReason".to_string(), reason.clone()));
        }
    }
    Attempt {
        name: name.to_string(),
        queue: name.split("/tasks/").next().unwrap_or_default().to_string(),
        send_to: emulator.runtime.routes.resolve(&url),
        method,
        headers,
        body,
        oidc,
        deadline: duration_of(task.get("dispatchDeadline")).unwrap_or(Duration::from_secs(600)),
    }
}

/// How an attempt ended: the HTTP status (None = no response), a `Retry-After`, why it failed.
struct Answer {
    status: Option<u16>,
    retry_after: Option<Duration>,
    reason: Option<String>,
}

async fn send(emulator: &Emulator, client: &reqwest::Client, attempt: &Attempt) -> Answer {
    let method =
        reqwest::Method::from_bytes(attempt.method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let with_body = matches!(attempt.method.as_str(), "POST" | "PUT" | "PATCH");
    let mut request = client
        .request(method, &attempt.send_to)
        .timeout(attempt.deadline);
    for (k, v) in &attempt.headers {
        request = request.header(k, v);
    }
    let (internal, key) = emulator.runtime.routes.internal_caller();
    request = request.header(internal, key);
    if let Some((email, audience)) = &attempt.oidc {
        let token =
            emulator
                .runtime
                .identity
                .id_token(email, audience, emulator.runtime.clock.now());
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    if with_body {
        request = request.body(attempt.body.clone());
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs)
                .filter(|_| status == 429 || status == 503);
            Answer {
                status: Some(status),
                retry_after,
                reason: (!(200..300).contains(&status)).then(|| format!("HTTP {status}")),
            }
        }
        Err(e) if e.is_timeout() => Answer {
            status: None,
            retry_after: None,
            reason: Some("DEADLINE_EXCEEDED".into()),
        },
        Err(_) => Answer {
            status: None,
            retry_after: None,
            reason: Some("UNAVAILABLE".into()),
        },
    }
}

/// Records an attempt's outcome: done (deleted), retried later (`true`), or deleted when out of
/// attempts.
/// The state file is written by the run loop a little later ([`PERSIST_EVERY`]), not here:
/// writing the whole state after every attempt held the state lock long enough to cap a queue
/// far below its rate (a task dispatched again after a crash is at-least-once, as Google's).
fn settle(
    emulator: &Emulator,
    attempt: &Attempt,
    dispatched_at: DateTime<Utc>,
    answer: &Answer,
) -> bool {
    let mut state = lock(&emulator.state);
    let now = emulator.runtime.clock.now();
    let policy = match state.queues.get(&attempt.queue) {
        Some(queue) => RetryPolicy::of(queue),
        None => {
            state.tasks.remove(&attempt.name);
            return false;
        }
    };
    let Some(record) = state.tasks.get_mut(&attempt.name) else {
        return false;
    };
    let task = &mut record.task;
    let dispatch_count = task["dispatchCount"].as_u64().unwrap_or(0) + 1;
    task["dispatchCount"] = json!(dispatch_count);
    let got_response = answer.status.is_some_and(|s| s < 500);
    if got_response {
        task["responseCount"] = json!(task["responseCount"].as_u64().unwrap_or(0) + 1);
    }
    let code = answer
        .status
        .map_or(Code::Unavailable, Code::from_http_status);
    let mut attempt_record = json!({
        "scheduleTime": task["scheduleTime"],
        "dispatchTime": timestamp(dispatched_at),
        "responseTime": timestamp(now),
    });
    if answer.status.is_none_or(|s| !(200..300).contains(&s)) {
        attempt_record["responseStatus"] = json!({"code": code.rpc_number(), "message": answer.reason.clone().unwrap_or_default()});
    }
    if task.get("firstAttempt").is_none() {
        task["firstAttempt"] = attempt_record.clone();
    }
    task["lastAttempt"] = attempt_record;
    if answer.status.is_some_and(|s| (200..300).contains(&s)) {
        state.tasks.remove(&attempt.name);
        return false;
    }
    let first = task["firstAttempt"]["dispatchTime"]
        .as_str()
        .and_then(parse_timestamp)
        .unwrap_or(now);
    let attempts_used = policy.max_attempts >= 0 && dispatch_count >= policy.max_attempts as u64;
    let duration_used = policy
        .max_retry_duration
        .is_none_or(|limit| (now - first).to_std().unwrap_or_default() >= limit);
    let unlimited_attempts = policy.max_attempts < 0;
    if (attempts_used && duration_used)
        || (unlimited_attempts && policy.max_retry_duration.is_some() && duration_used)
    {
        state.tasks.remove(&attempt.name);
        return false;
    }
    let k = u32::try_from(dispatch_count - 1).unwrap_or(u32::MAX);
    let wait = policy
        .backoff(k)
        .max(answer.retry_after.unwrap_or_default());
    let due = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1));
    task["scheduleTime"] = json!(timestamp(due));
    record.due = timestamp(due);
    record.previous_response = Some(answer.status.unwrap_or(0));
    record.retry_reason = answer.reason.clone();
    record.forced = false;
    true
}

/// The shortest wait for a queue's bucket to refill (unless half its burst comes back sooner).
const BUCKET_NAP: Duration = Duration::from_millis(10);

/// How often settled attempts are written to the state file (at most).
const PERSIST_EVERY: Duration = Duration::from_millis(250);

/// A due task the dispatcher may start now.
struct Due {
    name: String,
    queue: String,
    forced: bool,
    rate: f64,
    burst: f64,
    max_concurrent: usize,
}

/// Dispatches until `stop` turns true.
pub async fn run(emulator: Arc<Emulator>, mut stop: watch::Receiver<bool>) {
    let client = match reqwest::Client::builder().no_proxy().build() {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(%e, "the Cloud Tasks dispatcher cannot build its HTTP client");
            return;
        }
    };
    let in_flight: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let per_queue: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let mut buckets: BTreeMap<String, Bucket> = BTreeMap::new();
    let settled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Set when a queue waited for a free dispatch slot: only then does a finished attempt wake
    // the loop (a full scan per finished attempt would cap a busy queue below its rate).
    let concurrency_bound = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut persisted = Instant::now();
    loop {
        if persisted.elapsed() >= PERSIST_EVERY
            && settled.swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            emulator.persist(&lock(&emulator.state));
            persisted = Instant::now();
        }
        let now = emulator.runtime.clock.now();
        let mut next_due: Option<DateTime<Utc>> = None;
        let due: Vec<Due> = {
            let state = lock(&emulator.state);
            let flying = lock(&in_flight);
            let mut due: Vec<(DateTime<Utc>, Due)> = Vec::new();
            for (name, record) in &state.tasks {
                if flying.contains(name) {
                    continue;
                }
                let queue_name = name.split("/tasks/").next().unwrap_or_default();
                let Some(queue) = state.queues.get(queue_name) else {
                    continue;
                };
                let running = queue["state"].as_str().unwrap_or("RUNNING") == "RUNNING";
                if !running && !record.forced {
                    continue;
                }
                let at = parse_timestamp(&record.due).unwrap_or(now);
                if at > now && !record.forced {
                    next_due = Some(next_due.map_or(at, |n| n.min(at)));
                    continue;
                }
                let limits = &queue["rateLimits"];
                due.push((
                    at,
                    Due {
                        name: name.clone(),
                        queue: queue_name.to_string(),
                        forced: record.forced,
                        rate: limits["maxDispatchesPerSecond"]
                            .as_f64()
                            .unwrap_or(500.0)
                            .max(0.001),
                        burst: limits["maxBurstSize"].as_f64().unwrap_or(100.0).max(1.0),
                        max_concurrent: limits["maxConcurrentDispatches"]
                            .as_u64()
                            .and_then(|n| usize::try_from(n).ok())
                            .unwrap_or(1000),
                    },
                ));
            }
            due.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.name.cmp(&b.1.name)));
            due.into_iter().map(|(_, d)| d).collect()
        };
        let mut refill_wait: Option<Duration> = None;
        for task in due {
            if !task.forced {
                if lock(&per_queue).get(&task.queue).copied().unwrap_or(0) >= task.max_concurrent {
                    concurrency_bound.store(true, std::sync::atomic::Ordering::SeqCst);
                    continue;
                }
                let now = Instant::now();
                let bucket = buckets
                    .entry(task.queue.clone())
                    .or_insert_with(|| Bucket::full(task.burst, now));
                if let Err(wait) = bucket.take(task.rate, task.burst, now) {
                    // Tokens keep coming while the loop sleeps: waking for a batch of them
                    // (not each one) keeps the rate and spares a scan per token.
                    let wait = wait
                        .max(BUCKET_NAP.min(Duration::from_secs_f64(task.burst / task.rate / 2.0)));
                    refill_wait = Some(refill_wait.map_or(wait, |w| w.min(wait)));
                    continue;
                }
            }
            let attempt = {
                let mut state = lock(&emulator.state);
                let Some(queue) = state.queues.get(&task.queue).cloned() else {
                    continue;
                };
                let Some(record) = state.tasks.get_mut(&task.name) else {
                    continue;
                };
                record.forced = false;
                let record = record.clone();
                prepare(&emulator, &task.name, &queue, &record)
            };
            lock(&in_flight).insert(task.name.clone());
            *lock(&per_queue).entry(task.queue.clone()).or_default() += 1;
            let (emulator, client) = (Arc::clone(&emulator), client.clone());
            let (in_flight, per_queue) = (Arc::clone(&in_flight), Arc::clone(&per_queue));
            let (settled, concurrency_bound) =
                (Arc::clone(&settled), Arc::clone(&concurrency_bound));
            tokio::spawn(async move {
                let dispatched_at = emulator.runtime.clock.now();
                let answer = send(&emulator, &client, &attempt).await;
                let retried = settle(&emulator, &attempt, dispatched_at, &answer);
                settled.store(true, std::sync::atomic::Ordering::SeqCst);
                lock(&in_flight).remove(&attempt.name);
                if let Some(n) = lock(&per_queue).get_mut(&attempt.queue) {
                    *n = n.saturating_sub(1);
                }
                if retried || concurrency_bound.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    emulator.runtime.dispatch_wake.notify_one();
                }
            });
        }
        let clock_wait = next_due
            .map(|at| {
                (at - emulator.runtime.clock.now())
                    .to_std()
                    .unwrap_or_default()
            })
            .unwrap_or(Duration::from_secs(1));
        let wait = refill_wait
            .map_or(clock_wait, |w| w.min(clock_wait))
            .min(Duration::from_secs(1))
            .min(PERSIST_EVERY);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = emulator.runtime.dispatch_wake.notified() => {}
            () = emulator.runtime.clock.jumped() => {}
            () = stopped(&mut stop) => {
                if settled.load(std::sync::atomic::Ordering::SeqCst) {
                    emulator.persist(&lock(&emulator.state));
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_grows_linearly_then_caps() {
        let policy = RetryPolicy {
            max_attempts: -1,
            max_retry_duration: None,
            min_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(300),
            max_doublings: 3,
        };
        let waits: Vec<u64> = (0..9).map(|k| policy.backoff(k).as_secs()).collect();
        assert_eq!(waits, vec![10, 20, 40, 80, 160, 240, 300, 300, 300]);
    }

    #[test]
    fn the_token_bucket_spends_its_burst_then_refills_at_the_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::full(3.0, start);
        for _ in 0..3 {
            assert_eq!(bucket.take(10.0, 3.0, start), Ok(()));
        }
        let wait = bucket.take(10.0, 3.0, start).unwrap_err();
        assert!(
            (wait.as_secs_f64() - 0.1).abs() < 1e-9,
            "one token per 100 ms: {wait:?}"
        );
        let later = start + Duration::from_millis(250);
        assert_eq!(
            bucket.take(10.0, 3.0, later),
            Ok(()),
            "2.5 tokens came back"
        );
        assert_eq!(bucket.take(10.0, 3.0, later), Ok(()));
        assert!(
            bucket.take(10.0, 3.0, later).is_err(),
            "half a token is not one"
        );
        let idle = later + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(bucket.take(10.0, 3.0, idle), Ok(()));
        }
        assert!(
            bucket.take(10.0, 3.0, idle).is_err(),
            "idle time refills only up to the burst"
        );
    }

    #[test]
    fn the_queue_uri_override_replaces_what_it_names() {
        let always = json!({"scheme": "HTTPS", "host": "worker-abc-uc.a.run.app", "pathOverride": {"path": "/tasks/webhook"}});
        assert_eq!(
            override_uri("", &always),
            "https://worker-abc-uc.a.run.app/tasks/webhook"
        );
        assert_eq!(
            override_uri(
                "http://example.com:8080/x?y=1",
                &json!({"host": "h", "port": 0})
            ),
            "http://h/x?y=1"
        );
        let only_missing = json!({"host": "h", "uriOverrideEnforceMode": "IF_NOT_EXISTS"});
        assert_eq!(
            override_uri("https://kept/a", &only_missing),
            "https://kept/a"
        );
    }
}

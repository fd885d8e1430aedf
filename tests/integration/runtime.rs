//! Cloud Scheduler on the execution plane (`stackctl emulator --execute`): jobs fire on their
//! cron when the test clock reaches their `scheduleTime` and at once on `jobs.run`, carrying
//! Cloud Scheduler's headers and a token the official verifier accepts; failures are retried by
//! the job's `retryConfig` on the test clock; a target on `run.googleapis.com` starts a Cloud Run
//! job execution on the emulator itself. Also the dispatch benchmark (ignored; run by hand).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::dispatch::{Recorder, advance, executing_emulator};
use crate::support::*;

const JOBS: &str = "/v1/projects/test-project/locations/us-central1/jobs";
const SCHEDULER_SA: &str = "scheduler@test-project.iam.gserviceaccount.com";

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"))
}

fn make_service_account(emulator: &Emulator, id: &str) {
    let (status, body) = emulator.http(
        "POST",
        "/v1/projects/test-project/serviceAccounts",
        Some(&format!(r#"{{"accountId": "{id}"}}"#)),
    );
    assert!(status == 200 || status == 409, "{body}");
}

fn make_job(
    emulator: &Emulator,
    id: &str,
    schedule: &str,
    zone: &str,
    target: Value,
    retry: Value,
) -> Value {
    let job = json!({
        "name": format!("projects/test-project/locations/us-central1/jobs/{id}"),
        "schedule": schedule,
        "timeZone": zone,
        "httpTarget": target,
        "retryConfig": retry,
    });
    let (status, body) = emulator.http("POST", JOBS, Some(&job.to_string()));
    assert_eq!(status, 200, "{body}");
    json_of(&body)
}

fn get_job(emulator: &Emulator, id: &str) -> Value {
    let (status, body) = emulator.http("GET", &format!("{JOBS}/{id}"), None);
    assert_eq!(status, 200, "{body}");
    json_of(&body)
}

fn clock_now(emulator: &Emulator) -> DateTime<Utc> {
    let (_, body) = emulator.http("GET", "/_emulator/clock", None);
    json_of(&body)["now"].as_str().unwrap().parse().unwrap()
}

/// Waits until the job's recorded state satisfies `done` (the runner records after the attempt).
fn wait_job(emulator: &Emulator, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let job = get_job(emulator, id);
        if done(&job) {
            return job;
        }
        assert!(Instant::now() < deadline, "the job never got there: {job}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn scheduler_jobs_fire_on_run_and_on_their_cron_with_googles_headers_a_verifiable_token_and_retries()
 {
    let emulator = executing_emulator();
    make_service_account(&emulator, "scheduler");
    let target = Recorder::start(503);
    let uri = format!("{}/cron/nightly", target.url);
    let created = make_job(
        &emulator,
        "nightly",
        "0 3 * * *",
        "Europe/Paris",
        json!({"uri": uri, "httpMethod": "POST", "body": "eyJydW4iOiAxfQ==",
               "oidcToken": {"serviceAccountEmail": SCHEDULER_SA}}),
        json!({"retryCount": 2, "minBackoffDuration": "10s", "maxBackoffDuration": "60s"}),
    );
    let first_schedule: DateTime<Utc> = created["scheduleTime"].as_str().unwrap().parse().unwrap();
    let paris = first_schedule.with_timezone(&chrono_tz::Europe::Paris);
    assert_eq!(
        (
            chrono::Timelike::hour(&paris),
            chrono::Timelike::minute(&paris)
        ),
        (3, 0),
        "03:00 in the job's time zone: {first_schedule}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(target.count(), 0, "nothing fires before its time");

    // jobs.run fires now; a 503 is retried after minBackoff, then after twice that.
    let (status, body) = emulator.http("POST", &format!("{JOBS}/nightly:run"), Some("{}"));
    assert_eq!(status, 200, "{body}");
    let first = target.wait_for(1)[0].clone();
    assert_eq!(first.path, "/cron/nightly");
    assert_eq!(first.body, r#"{"run": 1}"#);
    assert_eq!(first.header("User-Agent"), Some("Google-Cloud-Scheduler"));
    assert_eq!(first.header("X-CloudScheduler"), Some("true"));
    assert_eq!(first.header("X-CloudScheduler-JobName"), Some("nightly"));
    assert!(first.header("X-CloudScheduler-ScheduleTime").is_some());
    assert_eq!(
        first.header("Content-Type"),
        Some("application/octet-stream")
    );
    let token = first
        .header("Authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .expect("an OIDC token")
        .to_string();
    let claims = verify_local_id_token(&emulator.url, &uri, Some(SCHEDULER_SA), &token)
        .expect("the official verifier accepts the local token");
    assert_eq!(
        claims["aud"],
        uri.as_str(),
        "the audience defaults to the target URI"
    );

    advance(&emulator, 9);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(target.count(), 1, "9 s is not yet the 10 s backoff");
    advance(&emulator, 2);
    target.wait_for(2);
    advance(&emulator, 15);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        target.count(),
        2,
        "15 s is not yet the doubled 20 s backoff"
    );
    advance(&emulator, 6);
    target.wait_for(3);
    let failed = wait_job(&emulator, "nightly", |job| {
        job["status"]["code"].is_number()
    });
    assert_eq!(
        failed["status"]["code"], 14,
        "UNAVAILABLE for HTTP 503: {failed}"
    );
    assert!(failed["lastAttemptTime"].is_string(), "{failed}");
    assert_eq!(
        failed["scheduleTime"], created["scheduleTime"],
        "a forced run keeps the schedule"
    );
    advance(&emulator, 600);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(target.count(), 3, "retryCount 2 = three attempts in all");

    // The cron fires when the clock reaches scheduleTime, and the next one is a day later.
    *target.status.lock().unwrap() = 200;
    let until = (first_schedule - clock_now(&emulator)).num_seconds() + 1;
    advance(&emulator, u64::try_from(until).unwrap());
    let fired = target.wait_for(4)[3].clone();
    let stamped: DateTime<Utc> = fired
        .header("X-CloudScheduler-ScheduleTime")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        stamped, first_schedule,
        "the header names the scheduled time"
    );
    let done = wait_job(&emulator, "nightly", |job| {
        job["scheduleTime"] != created["scheduleTime"]
    });
    assert_eq!(done["status"], json!({}), "a 2xx clears the status: {done}");
    let next: DateTime<Utc> = done["scheduleTime"].as_str().unwrap().parse().unwrap();
    assert!(
        next - first_schedule >= chrono::Duration::hours(23)
            && next - first_schedule <= chrono::Duration::hours(25),
        "the next run is the next day at 03:00 Paris time: {next}"
    );

    // A paused job does not fire on its cron.
    let (status, body) = emulator.http("POST", &format!("{JOBS}/nightly:pause"), Some("{}"));
    assert_eq!(status, 200, "{body}");
    advance(&emulator, 3 * 86_400);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(target.count(), 4, "a paused job stays quiet");
}

#[test]
fn a_scheduler_job_targeting_the_run_api_starts_an_execution_on_the_emulator() {
    let emulator = executing_emulator();
    make_service_account(&emulator, "scheduler");
    let (status, body) = emulator.http(
        "POST",
        "/v2/projects/test-project/locations/us-central1/jobs?jobId=ingest",
        Some(r#"{"template": {"template": {"maxRetries": 0, "containers": [{"image": "us-docker.pkg.dev/cloudrun/container/job"}]}}}"#),
    );
    assert_eq!(status, 200, "{body}");
    make_job(
        &emulator,
        "ingest-hourly",
        "0 * * * *",
        "Etc/UTC",
        json!({"uri": "https://run.googleapis.com/v2/projects/test-project/locations/us-central1/jobs/ingest:run",
               "httpMethod": "POST",
               "oauthToken": {"serviceAccountEmail": SCHEDULER_SA}}),
        json!({}),
    );
    emulator.clear_requests();
    let (status, body) = emulator.http("POST", &format!("{JOBS}/ingest-hourly:run"), Some("{}"));
    assert_eq!(status, 200, "{body}");
    let done = wait_job(&emulator, "ingest-hourly", |job| {
        job["lastAttemptTime"].is_string()
    });
    assert_eq!(
        done["status"],
        json!({}),
        "the Run API answered 2xx: {done}"
    );
    assert!(
        emulator
            .requests()
            .iter()
            .any(|(method, path)| method == "POST"
                && path == "/v2/projects/test-project/locations/us-central1/jobs/ingest:run"),
        "the scheduler called the emulator's Run API: {:?}",
        emulator.requests()
    );
    let (status, body) = emulator.http(
        "GET",
        "/v2/projects/test-project/locations/us-central1/jobs/ingest/executions",
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json_of(&body)["executions"].as_array().map(Vec::len),
        Some(1),
        "one execution started: {body}"
    );
}

/// The dispatch benchmark behind the README's Performance figures (ignored: it measures, it
/// does not judge). `cargo test --release --test integration runtime::benchmark -- --ignored
/// --nocapture` prints the median and p95 of a local task round trip (create -> dispatch ->
/// 2xx at the target) and how long 1,000 tasks take through a queue limited to 500/s.
#[test]
#[ignore = "benchmark; run by hand with --ignored --nocapture"]
fn benchmark_task_round_trip_and_a_500_per_second_queue() {
    let emulator = executing_emulator();
    let target = Recorder::start(200);
    let queues = "/v2/projects/test-project/locations/us-central1/queues";
    for id in ["bench", "rate"] {
        let (status, body) = emulator.http(
            "POST",
            queues,
            Some(&format!(
                r#"{{"name": "projects/test-project/locations/us-central1/queues/{id}",
                    "rateLimits": {{"maxDispatchesPerSecond": 500}}}}"#
            )),
        );
        assert_eq!(status, 200, "{body}");
    }
    let task = format!(
        r#"{{"task": {{"httpRequest": {{"url": "{}/t"}}}}}}"#,
        target.url
    );

    let rounds = 200;
    let mut round_trips = Vec::with_capacity(rounds);
    for n in 0..rounds {
        let sent = Instant::now();
        let (status, body) = emulator.http("POST", &format!("{queues}/bench/tasks"), Some(&task));
        assert_eq!(status, 200, "{body}");
        let arrived = target.wait_for(n + 1)[n].at;
        round_trips.push(arrived - sent);
    }
    round_trips.sort();
    let median = round_trips[rounds / 2];
    let p95 = round_trips[rounds * 95 / 100];

    let (status, body) = emulator.http("POST", &format!("{queues}/rate:pause"), Some("{}"));
    assert_eq!(status, 200, "{body}");
    let (_, queue) = emulator.http("GET", &format!("{queues}/rate"), None);
    let burst = json_of(&queue)["rateLimits"]["maxBurstSize"]
        .as_f64()
        .unwrap();
    let count: u32 = 1000;
    for _ in 0..count {
        let (status, body) = emulator.http("POST", &format!("{queues}/rate/tasks"), Some(&task));
        assert_eq!(status, 200, "{body}");
    }
    let resumed = Instant::now();
    let (status, body) = emulator.http("POST", &format!("{queues}/rate:resume"), Some("{}"));
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while target.count() < rounds + count as usize {
        assert!(
            Instant::now() < deadline,
            "only {} arrived",
            target.count() - rounds
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let last = target
        .wait_for(rounds + count as usize)
        .iter()
        .map(|r| r.at)
        .max()
        .unwrap();
    let took = (last - resumed).as_secs_f64();
    let expected = (f64::from(count) - burst) / 500.0;
    println!(
        "round trip (create -> 2xx at the target), {rounds} tasks one at a time: median {:.2} ms, p95 {:.2} ms",
        median.as_secs_f64() * 1000.0,
        p95.as_secs_f64() * 1000.0
    );
    println!(
        "{count} tasks through a 500/s queue (maxBurstSize {burst}): {took:.3} s from resume to the last 2xx; (1000 - burst)/500 = {expected:.3} s; off by {:+.1}%",
        (took - expected) / expected * 100.0
    );
}

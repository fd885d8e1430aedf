//! Cloud Scheduler v1 jobs: create/get/list/patch/delete, pause/resume/run, the defaults the
//! real API echoes for HTTP targets, unix-cron and time-zone validation, and `scheduleTime` (on
//! the job's wall clock, daylight saving included).

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use serde_json::{Map, Value, json};

use super::collection::{Collection, is_word_id, ordered, without_name};
use super::{Call, Context, Reply};
use crate::conventions::ApiError;
use crate::conventions::field_mask::FieldMask;
use crate::conventions::paging::PagePolicy;
use crate::conventions::wire::timestamp;
use crate::discovery::Api;

const JOB_SCHEMA: &str = "Job";
pub const DEFAULT_TIME_ZONE: &str = "Etc/UTC";
pub const INVALID_SCHEDULE: &str = "Schedule or time zone is invalid.";
const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// "The maximum page size is 500. If unspecified, the page size will be the maximum."
const LIST_POLICY: PagePolicy = PagePolicy {
    default_size: 500,
    max_size: 500,
    size_param: "pageSize",
    token_kind: "schedulerJobs",
};

const JOBS: Collection = Collection {
    field: "jobs",
    policy: LIST_POLICY,
    map: |state| &state.scheduler_jobs,
    map_mut: |state| &mut state.scheduler_jobs,
    not_found: |_| not_found(),
};

/// Job fields in proto field-number order.
const FIELD_ORDER: &[&str] = &[
    "name",
    "description",
    "pubsubTarget",
    "appEngineHttpTarget",
    "httpTarget",
    "schedule",
    "timeZone",
    "userUpdateTime",
    "state",
    "status",
    "scheduleTime",
    "lastAttemptTime",
    "retryConfig",
    "attemptDeadline",
];

/// A job's time zone: any tz database name, as Cloud Scheduler takes (`Etc/GMT+5` included).
fn time_zone(zone: &str) -> Option<chrono_tz::Tz> {
    zone.parse().ok()
}

/// One field of a unix-cron expression, as the set of values it allows.
fn parse_cron_field(text: &str, min: u32, max: u32, names: &[&str]) -> Option<Vec<bool>> {
    let mut allowed = vec![false; max as usize + 1];
    let value = |token: &str| -> Option<u32> {
        if let Some(index) = names.iter().position(|n| n.eq_ignore_ascii_case(token)) {
            return u32::try_from(index).ok().map(|i| i + min);
        }
        token.parse().ok().filter(|v| (min..=max).contains(v))
    };
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, step.parse::<u32>().ok().filter(|s| *s > 0)?),
            None => (part, 1),
        };
        let (start, end) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if part.contains('/') { max } else { v })
        };
        if start > end {
            return None;
        }
        let mut v = start;
        while v <= end {
            allowed[v as usize] = true;
            v += step;
        }
    }
    Some(allowed)
}

/// A parsed 5-field unix-cron schedule.
struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    days_restricted: bool,
    weekdays_restricted: bool,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn parse_cron(schedule: &str) -> Option<Cron> {
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    let [minute, hour, day, month, weekday] = fields.as_slice() else {
        return None;
    };
    let mut weekdays = parse_cron_field(weekday, 0, 7, &WEEKDAYS)?;
    if weekdays[7] {
        weekdays[0] = true;
    }
    Some(Cron {
        minutes: parse_cron_field(minute, 0, 59, &[])?,
        hours: parse_cron_field(hour, 0, 23, &[])?,
        days: parse_cron_field(day, 1, 31, &[])?,
        months: parse_cron_field(month, 1, 12, &MONTHS)?,
        weekdays,
        days_restricted: *day != "*",
        weekdays_restricted: *weekday != "*",
    })
}

impl Cron {
    fn matches(&self, at: NaiveDateTime) -> bool {
        let day = self.days[at.day() as usize];
        let weekday = self.weekdays[at.weekday().num_days_from_sunday() as usize];
        let day_ok = match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => day || weekday,
            (true, false) => day,
            (false, true) => weekday,
            (false, false) => true,
        };
        self.minutes[at.minute() as usize]
            && self.hours[at.hour() as usize]
            && self.months[at.month() as usize]
            && day_ok
    }

    /// The next matching minute strictly after `after`, on the wall clock of `zone` (daylight
    /// saving included). A wall time the clocks skip does not fire; one they repeat fires once,
    /// at its first occurrence (Google does not document either case; this is what cron daemons
    /// that skip do).
    fn next_after(&self, after: DateTime<Utc>, zone: chrono_tz::Tz) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&zone).naive_local();
        let mut candidate = local.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        for _ in 0..(366 * 24 * 60) {
            if self.matches(candidate) {
                let at = match zone.from_local_datetime(&candidate) {
                    LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Some(at),
                    LocalResult::None => None,
                };
                if let Some(at) = at.map(|at| at.with_timezone(&Utc))
                    && at > after
                {
                    return Some(at);
                }
            }
            candidate += Duration::minutes(1);
        }
        None
    }
}

fn validate_schedule(job: &Value) -> Result<(Cron, chrono_tz::Tz), ApiError> {
    let schedule = job
        .get("schedule")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let zone = job
        .get("timeZone")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_TIME_ZONE);
    match (parse_cron(schedule), time_zone(zone)) {
        (Some(cron), Some(zone)) => Ok((cron, zone)),
        _ => Err(ApiError::invalid_argument(INVALID_SCHEDULE)),
    }
}

fn job_name(call: &Call<'_>) -> Result<String, ApiError> {
    let id = call.param("jobsId")?;
    validate_job_id(id)?;
    Ok(format!("{}/jobs/{id}", call.location_name()?))
}

fn validate_job_id(id: &str) -> Result<(), ApiError> {
    if is_word_id(id, 500, b"_") {
        Ok(())
    } else {
        Err(ApiError::invalid_argument(format!(
            "Job name is invalid: the job id \"{id}\" must contain only letters ([A-Za-z]), numbers ([0-9]), hyphens (-), or underscores (_)."
        )))
    }
}

/// Scheduler reports its times at whole seconds.
fn whole_seconds(at: DateTime<Utc>) -> String {
    timestamp(at.with_nanosecond(0).unwrap_or(at))
}

fn not_found() -> ApiError {
    ApiError::not_found("Job not found.")
}

/// Fills what the real API echoes: `timeZone`, `retryConfig`, `attemptDeadline`, the HTTP
/// target's method, `User-Agent` header and OAuth scope; then state and `scheduleTime`.
fn with_server_fields(
    mut job: Map<String, Value>,
    now: DateTime<Utc>,
    state: &str,
) -> Result<Value, ApiError> {
    if job
        .get("timeZone")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        job.insert("timeZone".into(), json!(DEFAULT_TIME_ZONE));
    }
    let targets = ["httpTarget", "pubsubTarget", "appEngineHttpTarget"];
    if !targets.iter().any(|t| job.contains_key(*t)) {
        return Err(ApiError::invalid_argument(
            "Job must have a target: http_target, pubsub_target or app_engine_http_target.",
        ));
    }
    if let Some(Value::Object(target)) = job.get_mut("httpTarget") {
        if target
            .get("uri")
            .and_then(Value::as_str)
            .is_none_or(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            return Err(ApiError::invalid_argument(
                "HttpTarget.uri must be a valid http or https URL.",
            ));
        }
        if target
            .get("httpMethod")
            .and_then(Value::as_str)
            .is_none_or(|m| m == "HTTP_METHOD_UNSPECIFIED")
        {
            target.insert("httpMethod".into(), json!("POST"));
        }
        let has_body = target
            .get("body")
            .and_then(Value::as_str)
            .is_some_and(|b| !b.is_empty());
        let headers = target.entry("headers").or_insert_with(|| json!({}));
        if let Value::Object(headers) = headers {
            headers
                .entry("User-Agent")
                .or_insert_with(|| json!("Google-Cloud-Scheduler"));
            if has_body
                && !headers
                    .keys()
                    .any(|k| k.eq_ignore_ascii_case("Content-Type"))
            {
                headers.insert("Content-Type".into(), json!("application/octet-stream"));
            }
        }
        if target.contains_key("oauthToken") && target.contains_key("oidcToken") {
            return Err(ApiError::invalid_argument(
                "Only one of oauth_token and oidc_token may be set.",
            ));
        }
        if let Some(Value::Object(token)) = target.get_mut("oauthToken")
            && token
                .get("scope")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            token.insert("scope".into(), json!(CLOUD_PLATFORM_SCOPE));
        }
        job.entry("attemptDeadline")
            .or_insert_with(|| json!("180s"));
    }
    let retry = job.entry("retryConfig").or_insert_with(|| json!({}));
    if let Value::Object(retry) = retry {
        retry
            .entry("maxRetryDuration")
            .or_insert_with(|| json!("0s"));
        retry
            .entry("minBackoffDuration")
            .or_insert_with(|| json!("5s"));
        retry
            .entry("maxBackoffDuration")
            .or_insert_with(|| json!("3600s"));
        if retry
            .get("maxDoublings")
            .and_then(Value::as_i64)
            .is_none_or(|v| v == 0)
        {
            retry.insert("maxDoublings".into(), json!(5));
        }
    }
    let value = Value::Object(job.clone());
    let (cron, zone) = validate_schedule(&value)?;
    job.insert("state".into(), json!(state));
    job.remove("scheduleTime");
    if state == "ENABLED"
        && let Some(next) = cron.next_after(now, zone)
    {
        job.insert("scheduleTime".into(), json!(timestamp(next)));
    }
    Ok(ordered(job, FIELD_ORDER))
}

pub fn create_job(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let parent = call.location_name()?;
    let body = call.body_or_empty();
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let id = name
        .strip_prefix(&format!("{parent}/jobs/"))
        .ok_or_else(|| {
            ApiError::invalid_argument(format!(
                "Job name \"{name}\" must be of the form \"{parent}/jobs/JOB_ID\"."
            ))
        })?;
    validate_job_id(id)?;
    if JOBS.contains(context.state, &name) {
        return Err(ApiError::already_exists(format!(
            "Job {name} already exists."
        )));
    }
    let mut fields = without_name(&body);
    fields.insert("name".into(), json!(name));
    fields.insert("userUpdateTime".into(), json!(whole_seconds(call.now)));
    let job = with_server_fields(fields, call.now, "ENABLED")?;
    Ok(JOBS.store(context.state, name, job))
}

pub fn get_job(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    JOBS.get(context.state, &job_name(call)?).map(Reply::Json)
}

pub fn list_jobs(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let prefix = format!("{}/jobs/", call.location_name()?);
    JOBS.list(context.state, &prefix, call.query)
}

pub fn patch_job(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = job_name(call)?;
    let existing = JOBS.get(context.state, &name)?;
    let body = call.body_or_empty();
    let mask = FieldMask::parse(
        call.query.non_empty("updateMask"),
        context.discovery,
        Api::Scheduler,
        JOB_SCHEMA,
    )?;
    let mut updated = if mask.is_empty() {
        Value::Object(without_name(&body))
    } else {
        let mut job = existing.clone();
        mask.apply(&body, &mut job);
        job
    };
    let state = existing
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or("ENABLED")
        .to_string();
    if let Value::Object(fields) = &mut updated {
        fields.insert("name".into(), json!(name));
        fields.insert("userUpdateTime".into(), json!(whole_seconds(call.now)));
        for kept in ["status", "lastAttemptTime"] {
            if let Some(value) = existing.get(kept) {
                fields.insert(kept.into(), value.clone());
            }
        }
    }
    let job = with_server_fields(
        updated.as_object().cloned().unwrap_or_default(),
        call.now,
        &state,
    )?;
    Ok(JOBS.store(context.state, name, job))
}

pub fn delete_job(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = job_name(call)?;
    JOBS.remove(context.state, &name)?;
    Ok(Reply::Json(json!({})))
}

fn set_state(context: &mut Context<'_>, call: &Call<'_>, state: &str) -> Result<Reply, ApiError> {
    let name = job_name(call)?;
    let existing = JOBS.get(context.state, &name)?;
    let job = with_server_fields(
        existing.as_object().cloned().unwrap_or_default(),
        call.now,
        state,
    )?;
    Ok(JOBS.store(context.state, name, job))
}

pub fn pause_job(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    set_state(context, call, "PAUSED")
}

pub fn resume_job(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    set_state(context, call, "ENABLED")
}

/// When a job fires next, strictly after `after` (its cron in its time zone).
pub fn next_fire(job: &Value, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let (cron, zone) = validate_schedule(job).ok()?;
    cron.next_after(after, zone)
}

/// `:run` records an attempt; with the execution plane on, the job's target is called now.
pub fn run_job(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let attempted = whole_seconds(call.now);
    let name = job_name(call)?;
    if context.settings.execute && context.state.scheduler_jobs.contains_key(&name) {
        context.state.scheduler_runs.insert(name.clone());
        context.runtime.scheduler_wake.notify_one();
        let job = context
            .state
            .scheduler_jobs
            .get(&name)
            .cloned()
            .unwrap_or_default();
        return Ok(Reply::Json(job));
    }
    JOBS.update(context.state, &name, |job| {
        job.insert("lastAttemptTime".into(), json!(attempted));
        job.insert("status".into(), json!({}));
    })
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde_json::json;

    use super::*;
    use crate::server::testing::TestEmulator;

    const PARENT: &str = "/v1/projects/p1/locations/us-central1";

    #[test]
    fn cron_schedules_compute_the_next_run_in_the_job_time_zone() {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .expect("time")
        };
        let daily = parse_cron("0 3 * * *").expect("valid");
        assert_eq!(
            daily.next_after(at("2026-01-10T05:00:00Z"), chrono_tz::UTC),
            Some(at("2026-01-11T03:00:00Z"))
        );
        assert_eq!(
            daily.next_after(at("2026-01-10T05:00:00Z"), chrono_tz::America::New_York),
            Some(at("2026-01-10T08:00:00Z"))
        );
        let weekdays = parse_cron("*/15 9-17 * * MON-FRI").expect("valid");
        assert_eq!(
            weekdays.next_after(at("2026-01-10T12:00:00Z"), chrono_tz::UTC),
            Some(at("2026-01-12T09:00:00Z"))
        );
        for bad in [
            "0 3 * *",
            "61 * * * *",
            "* * * * * *",
            "a b c d e",
            "*/0 * * * *",
        ] {
            assert!(parse_cron(bad).is_none(), "{bad}");
        }
        assert_eq!(time_zone("Etc/GMT+5"), Some(chrono_tz::Etc::GMTPlus5));
        assert_eq!(time_zone("Mars/Olympus"), None);
    }

    #[test]
    fn schedules_follow_daylight_saving_in_the_job_time_zone() {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .expect("time")
        };
        let paris = chrono_tz::Europe::Paris;
        let daily = parse_cron("0 3 * * *").expect("valid");
        // 03:00 in Paris is 02:00 UTC in winter (CET) and 01:00 UTC in summer (CEST).
        assert_eq!(
            daily.next_after(at("2026-01-10T05:00:00Z"), paris),
            Some(at("2026-01-11T02:00:00Z"))
        );
        assert_eq!(
            daily.next_after(at("2026-07-10T05:00:00Z"), paris),
            Some(at("2026-07-11T01:00:00Z"))
        );
        // 29 March 2026: Paris skips 02:00-03:00; a 02:30 job does not run that day.
        let skipped = parse_cron("30 2 * * *").expect("valid");
        assert_eq!(
            skipped.next_after(at("2026-03-28T12:00:00Z"), paris),
            Some(at("2026-03-30T00:30:00Z"))
        );
        // 25 October 2026: Paris repeats 02:00-03:00; a 02:30 job runs once, at the first.
        let first = skipped.next_after(at("2026-10-24T12:00:00Z"), paris);
        assert_eq!(first, Some(at("2026-10-25T00:30:00Z")));
        assert_eq!(
            skipped.next_after(first.unwrap(), paris),
            Some(at("2026-10-26T01:30:00Z"))
        );
    }

    #[tokio::test]
    async fn jobs_echo_defaults_and_pause_resume_patch() {
        let emulator = TestEmulator::with_polls(0);
        let name = "projects/p1/locations/us-central1/jobs/nightly";
        let body = json!({"name": name, "schedule": "0 3 * * *",
            "httpTarget": {"uri": "https://run.googleapis.com/v2/projects/p1/locations/us-central1/jobs/ingest:run",
                           "oauthToken": {"serviceAccountEmail": "sched@p1.iam.gserviceaccount.com"}}});
        let (status, job) = emulator
            .send("POST", &format!("{PARENT}/jobs"), Some(body.clone()))
            .await;
        assert_eq!(status, 200, "{job}");
        assert_eq!(job["state"], "ENABLED");
        assert_eq!(job["timeZone"], "Etc/UTC");
        assert_eq!(job["attemptDeadline"], "180s");
        assert_eq!(job["httpTarget"]["httpMethod"], "POST");
        assert_eq!(
            job["httpTarget"]["headers"]["User-Agent"],
            "Google-Cloud-Scheduler"
        );
        assert_eq!(
            job["httpTarget"]["oauthToken"]["scope"],
            "https://www.googleapis.com/auth/cloud-platform"
        );
        assert_eq!(
            job["retryConfig"],
            json!({"maxRetryDuration": "0s", "minBackoffDuration": "5s", "maxBackoffDuration": "3600s", "maxDoublings": 5})
        );
        assert!(
            job["scheduleTime"]
                .as_str()
                .is_some_and(|t| t.ends_with(":00Z"))
        );
        assert!(job["userUpdateTime"].is_string());
        let (status, _) = emulator
            .send("POST", &format!("{PARENT}/jobs"), Some(body.clone()))
            .await;
        assert_eq!(status, 409);
        let mut bad = body.clone();
        bad["name"] = json!("projects/p1/locations/us-central1/jobs/other");
        bad["timeZone"] = json!("Mars/Olympus");
        let (status, error) = emulator
            .send("POST", &format!("{PARENT}/jobs"), Some(bad))
            .await;
        assert_eq!(
            (status, error["error"]["message"].clone()),
            (400, json!(INVALID_SCHEDULE))
        );

        let (_, paused) = emulator
            .send(
                "POST",
                &format!("{PARENT}/jobs/nightly:pause"),
                Some(json!({})),
            )
            .await;
        assert_eq!(paused["state"], "PAUSED");
        assert!(paused.get("scheduleTime").is_none());
        let (_, patched) = emulator
            .send(
                "PATCH",
                &format!("{PARENT}/jobs/nightly?updateMask=schedule,timeZone"),
                Some(json!({"schedule": "30 4 * * *", "timeZone": "Europe/Paris"})),
            )
            .await;
        assert_eq!(
            (patched["schedule"].clone(), patched["state"].clone()),
            (json!("30 4 * * *"), json!("PAUSED"))
        );
        let (_, resumed) = emulator
            .send(
                "POST",
                &format!("{PARENT}/jobs/nightly:resume?%24alt=json%3Benum-encoding%3Dint"),
                None,
            )
            .await;
        assert_eq!(resumed["state"], 1);
        let (_, ran) = emulator
            .send("POST", &format!("{PARENT}/jobs/nightly:run"), None)
            .await;
        assert!(ran["lastAttemptTime"].is_string());
        let (_, list) = emulator
            .send("GET", &format!("{PARENT}/jobs?pageSize=0"), None)
            .await;
        assert_eq!(list["jobs"].as_array().map(Vec::len), Some(1));
        let (status, _) = emulator
            .send("DELETE", &format!("{PARENT}/jobs/nightly"), None)
            .await;
        assert_eq!(status, 200);
        let (status, error) = emulator
            .send("GET", &format!("{PARENT}/jobs/nightly"), None)
            .await;
        assert_eq!(
            (status, error["error"]["message"].clone()),
            (404, json!("Job not found."))
        );
    }
}

//! Cloud Tasks v2 queues: create/get/list/patch/delete, pause/resume/purge, the server defaults
//! the real API echoes, and the name tombstone after delete.

use chrono::Duration as ChronoDuration;
use serde_json::{Map, Value, json};

use super::collection::{Collection, check_body_name, is_word_id, ordered, without_name};
use super::{Call, Context, Reply};
use crate::conventions::ApiError;
use crate::conventions::field_mask::FieldMask;
use crate::conventions::paging::PagePolicy;
use crate::conventions::wire::{parse_timestamp, timestamp};
use crate::discovery::Api;

const QUEUE_SCHEMA: &str = "Queue";

/// "The maximum page size is 9800. If unspecified, the page size will be the maximum."
const LIST_POLICY: PagePolicy = PagePolicy {
    default_size: 9800,
    max_size: 9800,
    size_param: "pageSize",
    token_kind: "queues",
};

const NOT_FOUND: &str = "Requested entity was not found.";

const QUEUES: Collection = Collection {
    field: "queues",
    policy: LIST_POLICY,
    map: |state| &state.queues,
    map_mut: |state| &mut state.queues,
    not_found: |_| not_found(),
};
const TOMBSTONED: &str =
    "The queue cannot be created because a queue with this name existed too recently.";

/// Queue fields in proto field-number order, which is the order responses list them in.
const FIELD_ORDER: &[&str] = &[
    "name",
    "appEngineRoutingOverride",
    "rateLimits",
    "retryConfig",
    "state",
    "purgeTime",
    "stackdriverLoggingConfig",
    "httpTarget",
];

fn queue_name(call: &Call<'_>) -> Result<String, ApiError> {
    let id = call.param("queuesId")?;
    let name = format!("{}/queues/{id}", call.location_name()?);
    validate_queue_id(&name, id)?;
    Ok(name)
}

fn validate_queue_id(name: &str, id: &str) -> Result<(), ApiError> {
    if is_word_id(id, 100, b"") {
        Ok(())
    } else {
        Err(ApiError::invalid_argument(format!(
            "Invalid queue name \"{name}\": the queue ID must be 1-100 characters of letters, digits or hyphens \
             (projects/PROJECT_ID/locations/LOCATION_ID/queues/QUEUE_ID)."
        )))
    }
}

fn not_found() -> ApiError {
    ApiError::not_found(NOT_FOUND)
}

/// Fails if `name` was deleted less than the tombstone period ago; forgets expired tombstones.
fn check_tombstone(context: &mut Context<'_>, call: &Call<'_>, name: &str) -> Result<(), ApiError> {
    let Some(deleted_at) = context
        .state
        .queue_tombstones
        .get(name)
        .and_then(|t| parse_timestamp(t))
    else {
        return Ok(());
    };
    let blocked_for =
        ChronoDuration::from_std(context.settings.queue_tombstone).unwrap_or(ChronoDuration::MAX);
    if call.now < deleted_at + blocked_for {
        return Err(ApiError::failed_precondition(TOMBSTONED));
    }
    context.state.queue_tombstones.remove(name);
    Ok(())
}

/// Fills the defaults the real API echoes and orders fields like the real responses.
fn with_server_defaults(mut queue: Map<String, Value>) -> Value {
    let rate_limits = queue.entry("rateLimits").or_insert_with(|| json!({}));
    if let Value::Object(limits) = rate_limits {
        if limits
            .get("maxDispatchesPerSecond")
            .and_then(Value::as_f64)
            .is_none_or(|v| v == 0.0)
        {
            limits.insert("maxDispatchesPerSecond".into(), json!(500.0));
        }
        limits.insert("maxBurstSize".into(), json!(100));
        if limits
            .get("maxConcurrentDispatches")
            .and_then(Value::as_i64)
            .is_none_or(|v| v == 0)
        {
            limits.insert("maxConcurrentDispatches".into(), json!(1000));
        }
    }
    let retry_config = queue.entry("retryConfig").or_insert_with(|| json!({}));
    if let Value::Object(retry) = retry_config {
        if retry
            .get("maxAttempts")
            .and_then(Value::as_i64)
            .is_none_or(|v| v == 0)
        {
            retry.insert("maxAttempts".into(), json!(100));
        }
        if retry
            .get("minBackoff")
            .and_then(Value::as_str)
            .is_none_or(|v| v == "0s")
        {
            retry.insert("minBackoff".into(), json!("0.100s"));
        }
        if retry
            .get("maxBackoff")
            .and_then(Value::as_str)
            .is_none_or(|v| v == "0s")
        {
            retry.insert("maxBackoff".into(), json!("3600s"));
        }
        if retry
            .get("maxDoublings")
            .and_then(Value::as_i64)
            .is_none_or(|v| v == 0)
        {
            retry.insert("maxDoublings".into(), json!(16));
        }
    }
    queue.entry("state").or_insert_with(|| json!("RUNNING"));
    ordered(queue, FIELD_ORDER)
}

pub fn create_queue(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let parent = call.location_name()?;
    let body = call.body_or_empty();
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let id = name.strip_prefix(&format!("{parent}/queues/")).ok_or_else(|| {
        ApiError::invalid_argument(format!(
            "Queue.name \"{name}\" must be of the form \"{parent}/queues/QUEUE_ID\" (it must be a child of the parent)."
        ))
    })?;
    validate_queue_id(&name, id)?;
    if QUEUES.contains(context.state, &name) {
        return Err(ApiError::already_exists("Requested entity already exists"));
    }
    check_tombstone(context, call, &name)?;
    let mut fields = without_name(&body);
    fields.insert("name".into(), json!(name));
    Ok(QUEUES.store(context.state, name, with_server_defaults(fields)))
}

pub fn get_queue(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    QUEUES
        .get(context.state, &queue_name(call)?)
        .map(Reply::Json)
}

pub fn list_queues(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let prefix = format!("{}/queues/", call.location_name()?);
    let state_filter = parse_state_filter(call.query.non_empty("filter"))?;
    QUEUES
        .list_where(context.state, &prefix, call.query, |queue| {
            state_filter
                .as_deref()
                .is_none_or(|s| queue.get("state").and_then(Value::as_str) == Some(s))
        })
        .map(Reply::Json)
}

/// Supports the filter stackctl and gcloud use: `state: PAUSED` / `state = PAUSED`.
fn parse_state_filter(filter: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(filter) = filter.map(str::trim).filter(|f| !f.is_empty()) else {
        return Ok(None);
    };
    let split = filter.split_once(':').or_else(|| filter.split_once('='));
    match split {
        Some((field, value)) if field.trim() == "state" => {
            Ok(Some(value.trim().trim_matches('"').to_string()))
        }
        _ => Err(ApiError::invalid_argument(format!(
            "Unsupported filter \"{filter}\": the emulator supports only `state: STATE`."
        ))),
    }
}

pub fn patch_queue(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = queue_name(call)?;
    let body = call.body_or_empty();
    check_body_name(&body, &name, "Queue.name")?;
    let mask = FieldMask::parse(
        call.query.non_empty("updateMask"),
        context.discovery,
        Api::CloudTasks,
        QUEUE_SCHEMA,
    )?;
    let existing = context.state.queues.get(&name).cloned();
    if existing.is_none() {
        check_tombstone(context, call, &name)?;
    }
    let mut updated = match (&existing, mask.is_empty()) {
        (Some(queue), true) => {
            let mut fields = without_name(&body);
            for kept in ["state", "purgeTime"] {
                if let Some(value) = queue.get(kept) {
                    fields.insert(kept.into(), value.clone());
                }
            }
            Value::Object(fields)
        }
        (Some(queue), false) => {
            let mut queue = queue.clone();
            mask.apply(&body, &mut queue);
            queue
        }
        (None, true) => Value::Object(without_name(&body)),
        (None, false) => {
            let mut queue = json!({});
            mask.apply(&body, &mut queue);
            queue
        }
    };
    let mut fields = updated
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    fields.insert("name".into(), json!(name));
    Ok(QUEUES.store(context.state, name, with_server_defaults(fields)))
}

pub fn delete_queue(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = queue_name(call)?;
    QUEUES.remove(context.state, &name)?;
    super::tasks_data::drop_tasks_of(context.state, &name);
    super::iam_policy::forget(context.state, &name);
    context
        .state
        .queue_tombstones
        .insert(name, timestamp(call.now));
    Ok(Reply::Json(json!({})))
}

fn update_existing(
    context: &mut Context<'_>,
    call: &Call<'_>,
    change: impl FnOnce(&mut Map<String, Value>),
) -> Result<Reply, ApiError> {
    QUEUES.update(context.state, &queue_name(call)?, change)
}

pub fn pause_queue(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    update_existing(context, call, |queue| {
        queue.insert("state".into(), json!("PAUSED"));
    })
}

/// `:resume`; the dispatcher looks at the queue's held tasks at once.
pub fn resume_queue(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let reply = update_existing(context, call, |queue| {
        queue.insert("state".into(), json!("RUNNING"));
    })?;
    context.runtime.dispatch_wake.notify_one();
    Ok(reply)
}

pub fn purge_queue(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let purged_at = timestamp(call.now);
    super::tasks_data::drop_tasks_of(context.state, &queue_name(call)?);
    update_existing(context, call, move |queue| {
        queue.insert("purgeTime".into(), json!(purged_at));
    })
}

pub fn queue_iam(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = queue_name(call)?;
    QUEUES.require(context.state, &name)?;
    super::iam_policy::answer(context, call, &name)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use crate::Settings;
    use crate::server::testing::TestEmulator;

    const PARENT: &str = "/v2/projects/p1/locations/us-central1";

    #[tokio::test]
    async fn create_echoes_server_defaults_and_refuses_duplicates() {
        let emulator = TestEmulator::with_polls(0);
        let name = "projects/p1/locations/us-central1/queues/q1";
        let (status, queue) = emulator
            .send(
                "POST",
                &format!("{PARENT}/queues"),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, 200, "{queue}");
        assert_eq!(
            queue,
            json!({"name": name,
                   "rateLimits": {"maxDispatchesPerSecond": 500.0, "maxBurstSize": 100, "maxConcurrentDispatches": 1000},
                   "retryConfig": {"maxAttempts": 100, "minBackoff": "0.100s", "maxBackoff": "3600s", "maxDoublings": 16},
                   "state": "RUNNING"})
        );
        let (status, error) = emulator
            .send(
                "POST",
                &format!("{PARENT}/queues"),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(
            (status, error["error"]["status"].clone()),
            (409, json!("ALREADY_EXISTS"))
        );
        let (status, queue) = emulator
            .send(
                "GET",
                &format!("{PARENT}/queues/q1?%24alt=json%3Benum-encoding%3Dint"),
                None,
            )
            .await;
        assert_eq!((status, queue["state"].clone()), (200, json!(1)));
    }

    #[tokio::test]
    async fn patch_with_mask_changes_only_masked_fields_and_creates_missing_queues() {
        let emulator = TestEmulator::with_polls(0);
        let url = format!(
            "{PARENT}/queues/q2?updateMask=rateLimits.maxDispatchesPerSecond,retryConfig.maxAttempts"
        );
        let body = json!({"rateLimits": {"maxDispatchesPerSecond": 5, "maxConcurrentDispatches": 7}, "retryConfig": {"maxAttempts": 3},
                          "httpTarget": {"httpMethod": 1, "uriOverride": {"scheme": "HTTPS", "host": "example.com", "port": "443",
                                         "pathOverride": {"path": "/x"}, "uriOverrideEnforceMode": "ALWAYS"},
                                         "oidcToken": {"serviceAccountEmail": "sa@p1.iam.gserviceaccount.com"}}});
        let (status, queue) = emulator.send("PATCH", &url, Some(body.clone())).await;
        assert_eq!(status, 200, "{queue}");
        assert_eq!(queue["rateLimits"]["maxDispatchesPerSecond"], 5.0);
        assert_eq!(
            queue["rateLimits"]["maxConcurrentDispatches"], 1000,
            "not in the mask"
        );
        assert_eq!(queue["retryConfig"]["maxAttempts"], 3);
        assert!(queue.get("httpTarget").is_none(), "not in the mask");
        let (_, queue) = emulator
            .send(
                "PATCH",
                &format!("{PARENT}/queues/q2?updateMask="),
                Some(body),
            )
            .await;
        assert_eq!(queue["rateLimits"]["maxConcurrentDispatches"], 7);
        assert_eq!(queue["httpTarget"]["httpMethod"], "POST");
        assert_eq!(queue["httpTarget"]["uriOverride"]["port"], "443");
        assert_eq!(
            queue["httpTarget"]["uriOverride"]["pathOverride"]["path"],
            "/x"
        );
        let (_, queue) = emulator
            .send(
                "PATCH",
                &format!("{PARENT}/queues/q2?updateMask=retryConfig.maxAttempts"),
                Some(json!({})),
            )
            .await;
        assert_eq!(
            queue["retryConfig"]["maxAttempts"], 100,
            "absent masked field resets to the default"
        );
        assert_eq!(queue["httpTarget"]["uriOverride"]["host"], "example.com");
    }

    #[tokio::test]
    async fn pause_resume_purge_and_tombstone() {
        let emulator = TestEmulator::with_polls(0);
        let name = "projects/p1/locations/us-central1/queues/q3";
        emulator
            .send(
                "POST",
                &format!("{PARENT}/queues"),
                Some(json!({"name": name})),
            )
            .await;
        let (_, queue) = emulator
            .send(
                "POST",
                &format!("{PARENT}/queues/q3:pause"),
                Some(json!({})),
            )
            .await;
        assert_eq!(queue["state"], "PAUSED");
        let (_, list) = emulator
            .send(
                "GET",
                &format!("{PARENT}/queues?filter=state%3A%20PAUSED"),
                None,
            )
            .await;
        assert_eq!(list["queues"].as_array().map(Vec::len), Some(1));
        let (_, queue) = emulator
            .send("POST", &format!("{PARENT}/queues/q3:resume"), None)
            .await;
        assert_eq!(queue["state"], "RUNNING");
        let (_, queue) = emulator
            .send(
                "POST",
                &format!("{PARENT}/queues/q3:purge"),
                Some(json!({})),
            )
            .await;
        assert!(
            queue["purgeTime"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
        let (status, empty) = emulator
            .send("DELETE", &format!("{PARENT}/queues/q3"), None)
            .await;
        assert_eq!((status, empty), (200, json!({})));
        let (status, _) = emulator
            .send("GET", &format!("{PARENT}/queues/q3"), None)
            .await;
        assert_eq!(status, 404);
        let (status, error) = emulator
            .send(
                "POST",
                &format!("{PARENT}/queues"),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, 400);
        assert_eq!(error["error"]["status"], "FAILED_PRECONDITION");
        assert_eq!(error["error"]["message"], super::TOMBSTONED);
        let (status, _) = emulator
            .send("PATCH", &format!("{PARENT}/queues/q3"), Some(json!({})))
            .await;
        assert_eq!(status, 400, "patch-create is refused too");
    }

    #[tokio::test]
    async fn expired_tombstones_allow_recreation_and_names_are_validated() {
        let emulator = TestEmulator::new(Settings {
            queue_tombstone: Duration::ZERO,
            ..Settings::default()
        });
        let name = "projects/p1/locations/us-central1/queues/q4";
        emulator
            .send(
                "POST",
                &format!("{PARENT}/queues"),
                Some(json!({"name": name})),
            )
            .await;
        emulator
            .send("DELETE", &format!("{PARENT}/queues/q4"), None)
            .await;
        let (status, _) = emulator
            .send(
                "POST",
                &format!("{PARENT}/queues"),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, 200);
        let (status, _) = emulator
            .send(
                "POST",
                &format!("{PARENT}/queues"),
                Some(json!({"name": "projects/p1/locations/us-central1/queues/bad_id"})),
            )
            .await;
        assert_eq!(status, 400);
        let (status, _) = emulator
            .send(
                "POST",
                &format!("{PARENT}/queues"),
                Some(json!({"name": "projects/x/locations/y/queues/q"})),
            )
            .await;
        assert_eq!(status, 400);
    }

    #[tokio::test]
    async fn list_pages_with_opaque_tokens() {
        let emulator = TestEmulator::with_polls(0);
        for i in 0..5 {
            let name = format!("projects/p1/locations/us-central1/queues/q-{i}");
            emulator
                .send(
                    "POST",
                    &format!("{PARENT}/queues"),
                    Some(json!({"name": name})),
                )
                .await;
        }
        let (_, first) = emulator
            .send(
                "GET",
                &format!("{PARENT}/queues?pageSize=2&pageToken="),
                None,
            )
            .await;
        assert_eq!(first["queues"].as_array().map(Vec::len), Some(2));
        let token = first["nextPageToken"].as_str().expect("token").to_string();
        let (_, rest) = emulator
            .send(
                "GET",
                &format!("{PARENT}/queues?pageSize=0&pageToken={token}"),
                None,
            )
            .await;
        assert_eq!(rest["queues"].as_array().map(Vec::len), Some(3));
        assert!(rest.get("nextPageToken").is_none());
        let (status, _) = emulator
            .send("GET", &format!("{PARENT}/queues?pageToken=bogus"), None)
            .await;
        assert_eq!(status, 400);
    }
}

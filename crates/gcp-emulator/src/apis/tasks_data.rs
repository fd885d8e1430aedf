//! Cloud Tasks v2 tasks (the data plane): create with Google's checks (the queue exists, the
//! name's form, a name used within about an hour answers ALREADY_EXISTS even after the task ran
//! or was deleted, 100 KB at most, the OIDC service account exists), get/list with `responseView`,
//! delete, and run (an attempt now, whatever the queue's state). The dispatcher
//! (`runtime::dispatcher`) sends them.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Call, Context, Reply, iam_policy};
use crate::conventions::ApiError;
use crate::conventions::paging::PagePolicy;
use crate::conventions::wire::{parse_timestamp, timestamp};
use crate::state::{State, TaskRecord};

/// How long a task name stays reserved after it was used (Google: "about an hour").
pub const NAME_RESERVED: chrono::Duration = chrono::Duration::hours(1);
/// The largest task `tasks.create` takes ("The maximum task size is 100KB").
pub const MAX_TASK_BYTES: usize = 100 * 1024;
/// `dispatchDeadline` when unset: 10 minutes.
pub const DEFAULT_DISPATCH_DEADLINE: &str = "600s";

const LIST_POLICY: PagePolicy = PagePolicy {
    default_size: 1000,
    max_size: 1000,
    size_param: "pageSize",
    token_kind: "tasks",
};

fn queue_of(call: &Call<'_>) -> Result<String, ApiError> {
    Ok(format!(
        "projects/{}/locations/{}/queues/{}",
        call.param("projectsId")?,
        call.param("locationsId")?,
        call.param("queuesId")?
    ))
}

fn task_of(call: &Call<'_>) -> Result<String, ApiError> {
    Ok(format!(
        "{}/tasks/{}",
        queue_of(call)?,
        call.param("tasksId")?
    ))
}

fn not_found() -> ApiError {
    ApiError::not_found("Requested entity was not found.")
}

fn valid_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 500
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The task as answered: `BASIC` (the default) leaves the body out.
pub fn view(task: &Value, full: bool) -> Value {
    let mut task = task.clone();
    if !full && let Some(request) = task.get_mut("httpRequest").and_then(Value::as_object_mut) {
        request.remove("body");
    }
    if let Some(fields) = task.as_object_mut() {
        fields.insert("view".into(), json!(if full { "FULL" } else { "BASIC" }));
    }
    task
}

fn full_view(call: &Call<'_>, from_body: Option<&Value>) -> bool {
    from_body
        .and_then(|b| b.get("responseView"))
        .and_then(Value::as_str)
        .or_else(|| call.query.non_empty("responseView"))
        == Some("FULL")
}

/// Forgets reserved names older than the reservation.
fn expire_names(state: &mut State, now: DateTime<Utc>) {
    state
        .task_names
        .retain(|_, at| parse_timestamp(at).is_some_and(|at| now - at < NAME_RESERVED));
}

/// What Cloud Tasks checks of a caller that names itself (a token minted by the local metadata
/// server): `cloudtasks.tasks.create` on the queue (an enqueuer, admin or owner role on the
/// queue or its project), and `iam.serviceAccounts.actAs` on a token's service account other
/// than its own (Service Account User on that account or the project). Anonymous callers (the
/// CLI and tests talking to the emulator) act as the project's owner.
fn check_caller_may_create(
    state: &State,
    call: &Call<'_>,
    queue: &str,
    task: &Value,
) -> Result<(), ApiError> {
    let Some(caller) = crate::runtime::Identity::caller_of(call.headers) else {
        return Ok(());
    };
    let project = queue.split('/').take(2).collect::<Vec<_>>().join("/");
    let owners = ["roles/owner", "roles/editor"];
    let enqueuers = [
        "roles/cloudtasks.enqueuer",
        "roles/cloudtasks.admin",
        owners[0],
        owners[1],
    ];
    if !iam_policy::holds_role(state, &[queue, &project], &enqueuers, Some(&caller)) {
        return Err(iam_policy::permission_denied(
            "cloudtasks.tasks.create",
            queue,
        ));
    }
    let acted_as = task
        .pointer("/httpRequest/oidcToken/serviceAccountEmail")
        .or_else(|| task.pointer("/httpRequest/oauthToken/serviceAccountEmail"))
        .and_then(Value::as_str);
    if let Some(account) = acted_as.filter(|account| *account != caller) {
        let resource = format!("{project}/serviceAccounts/{account}");
        let users = ["roles/iam.serviceAccountUser", owners[0], owners[1]];
        if !iam_policy::holds_role(state, &[&resource, &project], &users, Some(&caller)) {
            return Err(iam_policy::permission_denied(
                "iam.serviceAccounts.actAs",
                &resource,
            ));
        }
    }
    Ok(())
}

pub fn create_task(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let queue = queue_of(call)?;
    let queue_value = context
        .state
        .queues
        .get(&queue)
        .cloned()
        .ok_or_else(not_found)?;
    let body = call.body_or_empty();
    let mut task = body.get("task").cloned().unwrap_or_else(|| json!({}));
    if task.get("appEngineHttpRequest").is_some() {
        return Err(ApiError::invalid_argument(
            "App Engine tasks are not supported by this emulator; use httpRequest.",
        ));
    }
    let has_queue_target = queue_value.get("httpTarget").is_some();
    let url = task
        .pointer("/httpRequest/url")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if task.get("httpRequest").is_none() && !has_queue_target {
        return Err(ApiError::bad_field(
            "task.http_request",
            "Task must have an http_request.".into(),
        ));
    }
    if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ApiError::bad_field(
            "task.http_request.url",
            format!("Invalid URL {url:?}: it must start with http:// or https://."),
        ));
    }
    let size = serde_json::to_vec(&task).map_or(0, |b| b.len());
    if size > MAX_TASK_BYTES {
        return Err(ApiError::invalid_argument(format!(
            "Task size too large: {size} bytes; the maximum task size is 100KB."
        )));
    }
    if let Some(email) = task
        .pointer("/httpRequest/oidcToken/serviceAccountEmail")
        .or_else(|| task.pointer("/httpRequest/oauthToken/serviceAccountEmail"))
        .and_then(Value::as_str)
        && !context.state.service_accounts.contains_key(email)
    {
        return Err(ApiError::invalid_argument(format!(
            "Service account {email} does not exist or is not in the queue's project."
        )));
    }
    check_caller_may_create(context.state, call, &queue, &task)?;
    let now = call.now;
    expire_names(context.state, now);
    let name = match task
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        Some(name) => {
            let id = name
                .strip_prefix(&format!("{queue}/tasks/"))
                .filter(|id| valid_task_id(id))
                .ok_or_else(|| {
                    ApiError::bad_field(
                        "task.name",
                        format!("Invalid task name {name:?}: expected {queue}/tasks/TASK_ID with TASK_ID of letters, numbers, hyphens and underscores, at most 500 characters."),
                    )
                })?;
            let name = format!("{queue}/tasks/{id}");
            if context.state.task_names.contains_key(&name) {
                return Err(ApiError::already_exists("Requested entity already exists"));
            }
            name
        }
        None => {
            let id: u64 = rand::random();
            format!("{queue}/tasks/{:019}", id % 10_000_000_000_000_000_000)
        }
    };
    let schedule = task
        .get("scheduleTime")
        .and_then(Value::as_str)
        .and_then(parse_timestamp)
        .filter(|t| *t > now)
        .unwrap_or(now);
    if schedule - now > chrono::Duration::days(30) {
        return Err(ApiError::bad_field(
            "task.schedule_time",
            "The schedule time is more than 30 days in the future.".into(),
        ));
    }
    if let Some(body_text) = task.pointer("/httpRequest/body").and_then(Value::as_str)
        && base64::engine::general_purpose::STANDARD
            .decode(body_text)
            .is_err()
    {
        return Err(ApiError::bad_field(
            "task.http_request.body",
            "The body must be base64-encoded bytes.".into(),
        ));
    }
    let fields = task
        .as_object_mut()
        .ok_or_else(|| ApiError::invalid_argument("task must be an object"))?;
    fields.insert("name".into(), json!(name));
    fields.insert("scheduleTime".into(), json!(timestamp(schedule)));
    fields.insert("createTime".into(), json!(timestamp(now)));
    fields
        .entry("dispatchDeadline")
        .or_insert_with(|| json!(DEFAULT_DISPATCH_DEADLINE));
    fields.insert("dispatchCount".into(), json!(0));
    fields.insert("responseCount".into(), json!(0));
    if let Some(request) = fields.get_mut("httpRequest").and_then(Value::as_object_mut) {
        request.entry("httpMethod").or_insert_with(|| json!("POST"));
    }
    context
        .state
        .task_names
        .insert(name.clone(), timestamp(now));
    context.state.tasks.insert(
        name.clone(),
        TaskRecord {
            task: task.clone(),
            due: timestamp(schedule),
            ..TaskRecord::default()
        },
    );
    context.runtime.dispatch_wake.notify_one();
    Ok(Reply::Json(view(&task, full_view(call, Some(&body)))))
}

pub fn get_task(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = task_of(call)?;
    let record = context.state.tasks.get(&name).ok_or_else(not_found)?;
    Ok(Reply::Json(view(&record.task, full_view(call, None))))
}

pub fn list_tasks(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let queue = queue_of(call)?;
    if !context.state.queues.contains_key(&queue) {
        return Err(not_found());
    }
    let full = full_view(call, None);
    let prefix = format!("{queue}/tasks/");
    let tasks: Vec<Value> = super::collection::children(&context.state.tasks, &prefix)
        .map(|record| view(&record.task, full))
        .collect();
    super::collection::named_page(tasks.iter().collect(), "tasks", call.query, LIST_POLICY)
}

pub fn delete_task(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = task_of(call)?;
    context.state.tasks.remove(&name).ok_or_else(not_found)?;
    Ok(Reply::Json(json!({})))
}

pub fn run_task(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = task_of(call)?;
    let body = call.body_or_empty();
    let record = context.state.tasks.get_mut(&name).ok_or_else(not_found)?;
    record.forced = true;
    record.due = timestamp(call.now);
    let answer = view(&record.task, full_view(call, Some(&body)));
    context.runtime.dispatch_wake.notify_one();
    Ok(Reply::Json(answer))
}

/// Removes every task of `queue` (purge, delete).
pub fn drop_tasks_of(state: &mut State, queue: &str) {
    let prefix = format!("{queue}/tasks/");
    state.tasks.retain(|name, _| !name.starts_with(&prefix));
}

//! Long-running operations shared by every API: one generic operation table, polls that count
//! down to completion, the completion hooks APIs register per operation kind, and the
//! `operations.get/list/wait/delete` methods. It knows no API: an operation records its kind,
//! and the hook registered for that kind finishes it.

use serde_json::{Map, Value, json};

use super::{Call, Context, Reply};
use crate::conventions::ApiError;
use crate::conventions::paging::PagePolicy;
use crate::conventions::wire::{parse_duration_nanos, timestamp};
use crate::state::{OperationKind, OperationRecord, State};

const OPERATIONS_POLICY: PagePolicy = PagePolicy {
    default_size: 100,
    max_size: 1000,
    size_param: "pageSize",
    token_kind: "operations",
};

/// Finishes one operation (sets its `response` or `error`, and `done`): the state, the
/// operation's name, and the completion time.
pub type CompletionHook = fn(&mut State, &str, &str);

/// The completion hook of every operation kind, registered by the APIs that start them when the
/// emulator is built.
#[derive(Debug)]
pub struct Completions {
    hooks: Vec<(OperationKind, CompletionHook)>,
}

impl Default for Completions {
    fn default() -> Self {
        Self::new()
    }
}

impl Completions {
    /// The table with only the generic hook: `Immediate` operations answer their
    /// `final_resource`.
    pub fn new() -> Self {
        let mut completions = Self { hooks: Vec::new() };
        completions.register(&[OperationKind::Immediate], finish_immediate);
        completions
    }

    /// Makes `hook` finish the operations of `kinds`.
    pub fn register(&mut self, kinds: &[OperationKind], hook: CompletionHook) {
        for kind in kinds {
            self.hooks.retain(|(known, _)| known != kind);
            self.hooks.push((*kind, hook));
        }
    }

    fn hook_for(&self, kind: OperationKind) -> Option<CompletionHook> {
        self.hooks
            .iter()
            .find(|(known, _)| *known == kind)
            .map(|(_, hook)| *hook)
    }
}

/// Wraps `resource` as a `google.protobuf.Any` of type `type_url`.
pub fn as_any(type_url: &str, resource: &Value) -> Value {
    let mut any = Map::new();
    any.insert("@type".into(), json!(type_url));
    if let Value::Object(fields) = resource {
        any.extend(fields.clone());
    }
    Value::Object(any)
}

/// What a new operation is.
pub struct NewOperation {
    pub name: String,
    pub metadata: Value,
    pub kind: OperationKind,
    pub target: String,
    /// The revision a service rollout creates, if any.
    pub new_revision: Option<String>,
    /// For `Immediate` operations: the `response` (an `Any`) once done; for deletes, the
    /// deleted resource.
    pub final_resource: Option<Value>,
}

/// Records a new operation (done at once when polls are 0) and returns it as served.
pub fn start(context: &mut Context<'_>, new: NewOperation, now: &str) -> Value {
    let operation = json!({ "name": new.name, "metadata": new.metadata, "done": false });
    context.state.operations.insert(
        new.name.clone(),
        OperationRecord {
            operation,
            polls_remaining: context.settings.operation_polls,
            kind: new.kind,
            target: new.target,
            new_revision: new.new_revision,
            final_resource: new.final_resource,
        },
    );
    if context.settings.operation_polls == 0 {
        complete(context, &new.name, now);
    }
    current(context.state, &new.name).unwrap_or(Value::Null)
}

pub fn current(state: &State, name: &str) -> Option<Value> {
    state.operations.get(name).map(|r| r.operation.clone())
}

pub fn is_done(operation: &Value) -> bool {
    operation.get("done").and_then(Value::as_bool) == Some(true)
}

/// One `operations.get`: counts a poll down, or completes the operation.
pub fn poll(context: &mut Context<'_>, name: &str, now: &str) -> Option<Value> {
    let record = context.state.operations.get_mut(name)?;
    if !is_done(&record.operation) {
        if record.polls_remaining > 0 {
            record.polls_remaining -= 1;
        } else {
            complete(context, name, now);
        }
    }
    current(context.state, name)
}

/// Finishes an operation through the hook registered for its kind.
pub fn complete(context: &mut Context<'_>, name: &str, now: &str) {
    let Some(record) = context.state.operations.get(name) else {
        return;
    };
    if is_done(&record.operation) {
        return;
    }
    // With the execution plane on, a job execution ends when its tasks do, not on a poll.
    if context.settings.execute && record.kind == crate::state::OperationKind::RunJob {
        return;
    }
    if let Some(hook) = context.completions.hook_for(record.kind) {
        hook(context.state, name, now);
    }
}

/// Stores a finished operation's outcome (`response` or an `error` status) and marks it done.
pub fn finish(state: &mut State, name: &str, outcome: Result<Option<Value>, Value>) {
    if let Some(stored) = state.operations.get_mut(name) {
        match outcome {
            Ok(Some(response)) => stored.operation["response"] = response,
            Ok(None) => {}
            Err(error) => stored.operation["error"] = error,
        }
        stored.operation["done"] = json!(true);
    }
}

/// The hook of `Immediate` operations: the result known up front becomes the response.
fn finish_immediate(state: &mut State, name: &str, _now: &str) {
    let response = state
        .operations
        .get(name)
        .and_then(|record| record.final_resource.clone());
    finish(state, name, Ok(response));
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Operation '{name}' not found."))
}

/// `{location}/operations/{operationsId}` of a location-scoped operations method.
fn located_name(call: &Call<'_>) -> Result<String, ApiError> {
    Ok(format!(
        "{}/operations/{}",
        call.location_name()?,
        call.param("operationsId")?
    ))
}

fn poll_reply(context: &mut Context<'_>, call: &Call<'_>, name: String) -> Result<Reply, ApiError> {
    poll(context, &name, &timestamp(call.now))
        .map(Reply::Json)
        .ok_or_else(|| not_found(&name))
}

/// `operations.get` of a location (Cloud Run, Artifact Registry).
pub fn get_operation(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = located_name(call)?;
    poll_reply(context, call, name)
}

/// `operations.get` of an API whose operations are global (`operations/{id}`: Service Usage).
pub fn get_global_operation(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = format!("operations/{}", call.param("operationsId")?);
    poll_reply(context, call, name)
}

pub fn list_operations(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let prefix = format!("{}/operations/", call.location_name()?);
    let operations: Vec<&Value> = super::collection::children(&context.state.operations, &prefix)
        .map(|record| &record.operation)
        .collect();
    super::collection::named_page(operations, "operations", call.query, OPERATIONS_POLICY)
}

pub fn delete_operation(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = located_name(call)?;
    context
        .state
        .operations
        .remove(&name)
        .ok_or_else(|| not_found(&name))?;
    Ok(Reply::Json(json!({})))
}

/// `:wait` completes the operation unless the client asked not to wait at all (`timeout: 0s`).
pub fn wait_operation(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = located_name(call)?;
    if !context.state.operations.contains_key(&name) {
        return Err(not_found(&name));
    }
    let timeout = call
        .body
        .as_ref()
        .and_then(|b| b.get("timeout"))
        .and_then(Value::as_str)
        .and_then(parse_duration_nanos);
    if timeout != Some(0) {
        complete(context, &name, &timestamp(call.now));
    }
    current(context.state, &name)
        .map(Reply::Json)
        .ok_or_else(|| not_found(&name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Settings;
    use crate::discovery::Discovery;

    fn by_hook(state: &mut State, name: &str, _now: &str) {
        finish(state, name, Ok(Some(json!({"by": "hook"}))));
    }

    fn new(kind: OperationKind, final_resource: Option<Value>) -> NewOperation {
        NewOperation {
            name: format!("operations/{kind:?}"),
            metadata: json!({}),
            kind,
            target: String::new(),
            new_revision: None,
            final_resource,
        }
    }

    #[test]
    fn operations_finish_through_the_hook_registered_for_their_kind() {
        let discovery = Discovery::load().expect("discovery loads");
        let settings = Settings {
            operation_polls: 0,
            ..Settings::default()
        };
        let mut completions = Completions::new();
        completions.register(&[OperationKind::CreateOrUpdateJob], by_hook);
        let mut state = State::empty();
        let runtime = crate::runtime::Runtime::new(None);
        let table_rows = crate::table_rows::RowStore::new(None);
        let mut context = Context {
            state: &mut state,
            discovery: &discovery,
            settings: &settings,
            completions: &completions,
            runtime: &runtime,
            table_rows: &table_rows,
        };
        let unhooked = start(&mut context, new(OperationKind::RunJob, None), "t");
        assert_eq!(unhooked["done"], false, "no hook, no completion");
        let hooked = start(
            &mut context,
            new(OperationKind::CreateOrUpdateJob, None),
            "t",
        );
        assert_eq!(
            (&hooked["done"], &hooked["response"]),
            (&json!(true), &json!({"by": "hook"}))
        );
        let immediate = start(
            &mut context,
            new(OperationKind::Immediate, Some(json!({"known": 1}))),
            "t",
        );
        assert_eq!(immediate["response"], json!({"known": 1}));
    }
}

//! Long-running operations shared by every API: one operation table, polls that count down to
//! completion, and completion dispatched by what the operation does.

use serde_json::{Map, Value, json};

use super::Context;
use crate::state::{OperationKind, OperationRecord, State};

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
    /// For `Immediate` operations: the `response` (an `Any`) once done.
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
            new_revision: None,
            final_resource: new.final_resource,
        },
    );
    if context.settings.operation_polls == 0 {
        complete(context.state, &new.name, now);
    }
    current(context.state, &new.name).unwrap_or(Value::Null)
}

pub fn current(state: &State, name: &str) -> Option<Value> {
    state.operations.get(name).map(|r| r.operation.clone())
}

/// One `operations.get`: counts a poll down, or completes the operation.
pub fn poll(state: &mut State, name: &str, now: &str) -> Option<Value> {
    let record = state.operations.get_mut(name)?;
    if record.operation.get("done").and_then(Value::as_bool) != Some(true) {
        if record.polls_remaining > 0 {
            record.polls_remaining -= 1;
        } else {
            complete(state, name, now);
        }
    }
    current(state, name)
}

/// Finishes an operation according to its kind.
pub fn complete(state: &mut State, name: &str, now: &str) {
    let Some(record) = state.operations.get(name) else {
        return;
    };
    if record.operation.get("done").and_then(Value::as_bool) == Some(true) {
        return;
    }
    match record.kind {
        OperationKind::CreateOrUpdateService | OperationKind::DeleteService => {
            super::run::complete_operation(state, name, now);
        }
        OperationKind::CreateOrUpdateJob | OperationKind::RunJob => {
            super::run_jobs::complete_operation(state, name, now);
        }
        OperationKind::Immediate => {
            let response = record.final_resource.clone();
            if let Some(stored) = state.operations.get_mut(name) {
                if let Some(response) = response {
                    stored.operation["response"] = response;
                }
                stored.operation["done"] = json!(true);
            }
        }
    }
}

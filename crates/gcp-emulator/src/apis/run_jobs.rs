//! Cloud Run Admin v2 jobs and their executions: job create/patch/delete as long-running
//! operations (like services), `:run` starting an execution whose operation completes when the
//! execution does, and the template defaults the real API echoes.

use serde_json::{Map, Value, json};

use super::collection::{check_body_name, is_label_id, ordered, quoted_hash, remove_under};
use super::lro::{self, NewOperation, as_any};
use super::run::{
    MODIFIER, check_etag, condition, default_timeout_and_account, failing_image,
    require_containers, settable_fields, spec_in,
};
use super::{Call, Context, Reply};
use crate::conventions::ApiError;
use crate::conventions::paging::PagePolicy;
use crate::conventions::wire::{stable_hash, timestamp};
use crate::state::{OperationKind, State};

const JOB_SCHEMA: &str = "GoogleCloudRunV2Job";
pub const JOB_TYPE_URL: &str = "type.googleapis.com/google.cloud.run.v2.Job";
pub const EXECUTION_TYPE_URL: &str = "type.googleapis.com/google.cloud.run.v2.Execution";

const JOBS_POLICY: PagePolicy = PagePolicy {
    default_size: 100,
    max_size: 1000,
    size_param: "pageSize",
    token_kind: "jobs",
};
const EXECUTIONS_POLICY: PagePolicy = PagePolicy {
    default_size: 100,
    max_size: 1000,
    size_param: "pageSize",
    token_kind: "executions",
};

/// Job fields in proto field-number order.
const JOB_FIELD_ORDER: &[&str] = &[
    "name",
    "uid",
    "generation",
    "labels",
    "annotations",
    "createTime",
    "updateTime",
    "deleteTime",
    "expireTime",
    "creator",
    "lastModifier",
    "client",
    "clientVersion",
    "launchStage",
    "binaryAuthorization",
    "template",
    "observedGeneration",
    "terminalCondition",
    "conditions",
    "executionCount",
    "latestCreatedExecution",
    "reconciling",
    "satisfiesPzs",
    "startExecutionToken",
    "runExecutionToken",
    "etag",
];

/// The parts of a job name.
struct JobName {
    project: String,
    location: String,
    id: String,
    full: String,
}

impl JobName {
    fn new(project: &str, location: &str, id: &str) -> Result<Self, ApiError> {
        if !is_label_id(id, 63) {
            return Err(ApiError::invalid_argument(format!(
                "Invalid job id \"{id}\": it must be 1-63 lowercase letters, digits or hyphens, start with a letter \
                 and not end with a hyphen."
            )));
        }
        Ok(Self {
            project: project.to_string(),
            location: location.to_string(),
            id: id.to_string(),
            full: format!("projects/{project}/locations/{location}/jobs/{id}"),
        })
    }

    fn from_path(call: &Call<'_>) -> Result<Self, ApiError> {
        Self::new(
            call.param("projectsId")?,
            call.param("locationsId")?,
            call.param("jobsId")?,
        )
    }

    fn operation(&self) -> String {
        format!(
            "projects/{}/locations/{}/operations/{}",
            self.project,
            self.location,
            uuid::Uuid::new_v4()
        )
    }
}

fn job_not_found(name: &JobName) -> ApiError {
    ApiError::not_found(format!(
        "Resource '{}' of kind 'JOB' in region '{}' in project '{}' does not exist.",
        name.id, name.location, name.project
    ))
}

fn spec_of(context: &Context<'_>, job: &Value) -> Map<String, Value> {
    spec_in(context, JOB_SCHEMA, job)
}

fn is_unset_number(value: Option<&Value>) -> bool {
    value.and_then(Value::as_i64).is_none_or(|v| v == 0)
}

/// Fills the execution-template defaults the real API echoes: `taskCount: 1`, `maxRetries: 3`,
/// `timeout: "600s"`, 1 vCPU / 512Mi per container, the default compute service account.
fn template_with_defaults(template: &Value, project: &str) -> Value {
    let mut execution = template.as_object().cloned().unwrap_or_default();
    if is_unset_number(execution.get("taskCount")) {
        execution.insert("taskCount".into(), json!(1));
    }
    let task = execution.entry("template").or_insert_with(|| json!({}));
    if let Value::Object(task) = task {
        if let Some(Value::Array(containers)) = task.get_mut("containers") {
            for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                let resources = container.entry("resources").or_insert_with(|| json!({}));
                if let Value::Object(resources) = resources {
                    let limits = resources.entry("limits").or_insert_with(|| json!({}));
                    if let Value::Object(limits) = limits {
                        limits.entry("cpu").or_insert_with(|| json!("1000m"));
                        limits.entry("memory").or_insert_with(|| json!("512Mi"));
                    }
                }
            }
        }
        if !task.contains_key("maxRetries") {
            task.insert("maxRetries".into(), json!(3));
        }
        default_timeout_and_account(task, "600s", project);
    }
    Value::Object(execution)
}

fn validate_template(template: Option<&Value>) -> Result<(), ApiError> {
    require_containers(
        template.and_then(|t| t.pointer("/template/containers")),
        "job.template.template.containers",
    )
}

fn job_etag(uid: &str, generation: i64) -> String {
    quoted_hash(&["job-etag", uid, &generation.to_string()], 24)
}

/// The job after applying `spec` (create when `existing` is `None`), reconciling.
fn plan_job(
    context: &Context<'_>,
    call: &Call<'_>,
    name: &JobName,
    existing: Option<&Value>,
    mut spec: Map<String, Value>,
) -> Result<Value, ApiError> {
    let now = timestamp(call.now);
    validate_template(spec.get("template"))?;
    let template =
        template_with_defaults(spec.get("template").unwrap_or(&Value::Null), &name.project);
    spec.insert("template".into(), template);
    if spec
        .get("launchStage")
        .and_then(Value::as_str)
        .is_none_or(|v| v == "LAUNCH_STAGE_UNSPECIFIED")
    {
        spec.insert("launchStage".into(), json!("GA"));
    }
    let previous_spec = existing.map(|j| spec_of(context, j));
    let changed = previous_spec.as_ref() != Some(&spec);
    let previous_generation = existing
        .and_then(|j| j.get("generation"))
        .and_then(Value::as_str)
        .and_then(|g| g.parse::<i64>().ok())
        .unwrap_or(0);
    let generation = if changed {
        previous_generation + 1
    } else {
        previous_generation
    };
    let mut job = match existing {
        Some(previous) => {
            let mut fields = previous.as_object().cloned().unwrap_or_default();
            for field in settable_fields(context, JOB_SCHEMA) {
                fields.remove(&field);
            }
            fields
        }
        None => {
            let mut fields = Map::new();
            fields.insert("name".into(), json!(name.full));
            fields.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            fields.insert("createTime".into(), json!(now));
            fields.insert("creator".into(), json!(MODIFIER));
            fields
        }
    };
    job.extend(spec);
    let uid = job
        .get("uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    job.insert("generation".into(), json!(generation.to_string()));
    job.insert("etag".into(), json!(job_etag(&uid, generation)));
    if changed {
        job.insert("updateTime".into(), json!(now));
        job.insert("lastModifier".into(), json!(MODIFIER));
    }
    job.insert("reconciling".into(), json!(true));
    job.insert(
        "terminalCondition".into(),
        condition("Ready", "CONDITION_RECONCILING", &now, None),
    );
    Ok(ordered(job, JOB_FIELD_ORDER))
}

fn done_operation(name: &JobName, type_url: &str, resource: &Value) -> Value {
    let mut resource = resource.clone();
    if let Value::Object(fields) = &mut resource {
        fields.remove("reconciling");
    }
    json!({
        "name": name.operation(),
        "metadata": as_any(type_url, &resource),
        "done": true,
        "response": as_any(type_url, &resource),
    })
}

fn store_and_start(
    context: &mut Context<'_>,
    call: &Call<'_>,
    name: &JobName,
    job: Value,
) -> Value {
    let operation_name = name.operation();
    let record = context.state.run_jobs.entry(name.full.clone()).or_default();
    record.job = job.clone();
    record.pending_operation = Some(operation_name.clone());
    lro::start(
        context,
        NewOperation {
            name: operation_name,
            metadata: as_any(JOB_TYPE_URL, &job),
            kind: OperationKind::CreateOrUpdateJob,
            target: name.full.clone(),
            new_revision: None,
            final_resource: None,
        },
        &timestamp(call.now),
    )
}

/// Completes a job or execution operation.
pub fn complete_operation(state: &mut State, operation_name: &str, now: &str) {
    let Some(record) = state.operations.get(operation_name).cloned() else {
        return;
    };
    let response = match record.kind {
        OperationKind::CreateOrUpdateJob => {
            let job = state
                .run_jobs
                .get_mut(&record.target)
                .filter(|r| r.pending_operation.as_deref() == Some(operation_name));
            match job {
                Some(job_record) => {
                    job_record.pending_operation = None;
                    let job = &mut job_record.job;
                    if let Value::Object(fields) = job {
                        fields.remove("reconciling");
                    }
                    job["observedGeneration"] = job["generation"].clone();
                    job["terminalCondition"] = condition("Ready", "CONDITION_SUCCEEDED", now, None);
                    Ok(as_any(JOB_TYPE_URL, job))
                }
                None => Ok(record.operation["metadata"].clone()),
            }
        }
        OperationKind::RunJob => finish_execution(state, &record.target, now),
        _ => return,
    };
    lro::finish(state, operation_name, response.map(Some));
}

/// How an execution's tasks ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionOutcome {
    pub succeeded: u64,
    pub failed: u64,
    /// Tasks that were retried at least once.
    pub retried: u64,
    /// Why it failed (the `Completed` condition's message).
    pub failure: Option<String>,
}

/// The simulated end of an execution when nothing runs it: every task succeeds unless an image
/// carries the failure marker.
fn finish_execution(state: &mut State, execution_name: &str, now: &str) -> Result<Value, Value> {
    let Some(execution) = state.executions.get(execution_name) else {
        return Err(ApiError::not_found("The execution no longer exists.").to_rpc_status());
    };
    let task_count = execution
        .get("taskCount")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let failure = execution.get("template").and_then(failing_image).map(|image| {
        format!("Task failed: the user-provided container failed: image '{image}' carries the emulator-fail marker.")
    });
    let outcome = ExecutionOutcome {
        succeeded: if failure.is_none() { task_count } else { 0 },
        failed: if failure.is_some() { task_count } else { 0 },
        retried: 0,
        failure,
    };
    record_execution_end(state, execution_name, now, &outcome)
}

/// Records how an execution ended (counts, conditions, the job's `latestCreatedExecution`) and
/// returns its operation's outcome.
pub fn record_execution_end(
    state: &mut State,
    execution_name: &str,
    now: &str,
    outcome: &ExecutionOutcome,
) -> Result<Value, Value> {
    let Some(execution) = state.executions.get_mut(execution_name) else {
        return Err(ApiError::not_found("The execution no longer exists.").to_rpc_status());
    };
    let failure = outcome.failure.clone();
    if let Value::Object(fields) = execution {
        fields.remove("reconciling");
        fields.remove("runningCount");
    }
    execution["completionTime"] = json!(now);
    execution["observedGeneration"] = json!("1");
    if outcome.succeeded > 0 {
        execution["succeededCount"] = json!(outcome.succeeded);
    }
    if outcome.failed > 0 {
        execution["failedCount"] = json!(outcome.failed);
    }
    if outcome.retried > 0 {
        execution["retriedCount"] = json!(outcome.retried);
    }
    let status = match &failure {
        None => {
            execution["conditions"] = json!([
                condition("ResourcesAvailable", "CONDITION_SUCCEEDED", now, None),
                condition("Started", "CONDITION_SUCCEEDED", now, None),
                condition("Completed", "CONDITION_SUCCEEDED", now, None),
            ]);
            "EXECUTION_SUCCEEDED"
        }
        Some(message) => {
            execution["conditions"] = json!([
                condition("ResourcesAvailable", "CONDITION_SUCCEEDED", now, None),
                condition("Started", "CONDITION_SUCCEEDED", now, None),
                condition("Completed", "CONDITION_FAILED", now, Some(message)),
            ]);
            "EXECUTION_FAILED"
        }
    };
    let final_execution = execution.clone();
    let job_name = execution_name
        .split("/executions/")
        .next()
        .unwrap_or_default();
    if let Some(record) = state.run_jobs.get_mut(job_name)
        && record
            .job
            .pointer("/latestCreatedExecution/name")
            .and_then(Value::as_str)
            == Some(execution_name)
    {
        record.job["latestCreatedExecution"]["completionTime"] = json!(now);
        record.job["latestCreatedExecution"]["completionStatus"] = json!(status);
    }
    match failure {
        None => Ok(as_any(EXECUTION_TYPE_URL, &final_execution)),
        Some(message) => Err(ApiError::failed_precondition(message).to_rpc_status()),
    }
}

fn settle_pending(context: &mut Context<'_>, call: &Call<'_>, job: &str) {
    let pending = context
        .state
        .run_jobs
        .get(job)
        .and_then(|r| r.pending_operation.clone());
    if let Some(operation) = pending {
        lro::complete(context, &operation, &timestamp(call.now));
    }
}

pub fn create_job(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let job_id = call.query.non_empty("jobId").ok_or_else(|| {
        ApiError::bad_field("job_id", "job_id: Required field is not set.".into())
    })?;
    let name = JobName::new(
        call.param("projectsId")?,
        call.param("locationsId")?,
        job_id,
    )?;
    if context.state.run_jobs.contains_key(&name.full) {
        return Err(ApiError::already_exists(format!(
            "Resource '{}' already exists.",
            name.id
        )));
    }
    create_new(context, call, &name)
}

fn create_new(
    context: &mut Context<'_>,
    call: &Call<'_>,
    name: &JobName,
) -> Result<Reply, ApiError> {
    let spec = spec_of(context, &call.body_or_empty());
    let job = plan_job(context, call, name, None, spec)?;
    if call.query_bool("validateOnly")? {
        return Ok(Reply::Json(done_operation(name, JOB_TYPE_URL, &job)));
    }
    Ok(Reply::Json(store_and_start(context, call, name, job)))
}

pub fn get_job(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = JobName::from_path(call)?;
    context
        .state
        .run_jobs
        .get(&name.full)
        .map(|r| Reply::Json(r.job.clone()))
        .ok_or_else(|| job_not_found(&name))
}

pub fn list_jobs(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let prefix = format!("{}/jobs/", call.location_name()?);
    let jobs: Vec<&Value> = super::collection::children(&context.state.run_jobs, &prefix)
        .map(|record| &record.job)
        .collect();
    super::collection::named_page(jobs, "jobs", call.query, JOBS_POLICY)
}

pub fn patch_job(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = JobName::from_path(call)?;
    let body = call.body_or_empty();
    check_body_name(&body, &name.full, "job.name")?;
    let Some(existing) = context
        .state
        .run_jobs
        .get(&name.full)
        .map(|r| r.job.clone())
    else {
        if call.query_bool("allowMissing")? {
            return create_new(context, call, &name);
        }
        return Err(job_not_found(&name));
    };
    check_etag(&existing, body.get("etag").and_then(Value::as_str))?;
    // jobs.patch has no update mask: the request replaces the whole spec.
    let spec = spec_of(context, &body);
    if call.query_bool("validateOnly")? {
        let job = plan_job(context, call, &name, Some(&existing), spec)?;
        return Ok(Reply::Json(done_operation(&name, JOB_TYPE_URL, &job)));
    }
    settle_pending(context, call, &name.full);
    let settled = context
        .state
        .run_jobs
        .get(&name.full)
        .map(|r| r.job.clone())
        .unwrap_or(existing);
    let job = plan_job(context, call, &name, Some(&settled), spec)?;
    Ok(Reply::Json(store_and_start(context, call, &name, job)))
}

pub fn delete_job(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = JobName::from_path(call)?;
    let existing = context
        .state
        .run_jobs
        .get(&name.full)
        .map(|r| r.job.clone())
        .ok_or_else(|| job_not_found(&name))?;
    check_etag(&existing, call.query.non_empty("etag"))?;
    if call.query_bool("validateOnly")? {
        return Ok(Reply::Json(done_operation(&name, JOB_TYPE_URL, &existing)));
    }
    settle_pending(context, call, &name.full);
    let now = timestamp(call.now);
    let mut job = context
        .state
        .run_jobs
        .remove(&name.full)
        .map(|r| r.job)
        .unwrap_or(existing);
    if let Value::Object(fields) = &mut job {
        fields.remove("reconciling");
        fields.insert("deleteTime".into(), json!(now));
    }
    let job = ordered(
        job.as_object().cloned().unwrap_or_default(),
        JOB_FIELD_ORDER,
    );
    remove_under(
        &mut context.state.executions,
        &format!("{}/executions/", name.full),
    );
    super::iam_policy::forget(context.state, &name.full);
    Ok(Reply::Json(lro::start(
        context,
        NewOperation {
            name: name.operation(),
            metadata: as_any(JOB_TYPE_URL, &job),
            kind: OperationKind::Immediate,
            target: name.full.clone(),
            new_revision: None,
            final_resource: Some(as_any(JOB_TYPE_URL, &job)),
        },
        &now,
    )))
}

/// Applies `RunJobRequest.overrides` to the job's execution template.
fn apply_overrides(execution_template: &mut Value, overrides: Option<&Value>) {
    let Some(overrides) = overrides else { return };
    if let Some(count) = overrides
        .get("taskCount")
        .and_then(Value::as_i64)
        .filter(|c| *c > 0)
    {
        execution_template["taskCount"] = json!(count);
    }
    if let Some(timeout) = overrides.get("timeout").and_then(Value::as_str) {
        execution_template["template"]["timeout"] = json!(timeout);
    }
    let Some(container_overrides) = overrides
        .get("containerOverrides")
        .and_then(Value::as_array)
    else {
        return;
    };
    let Some(Value::Array(containers)) = execution_template.pointer_mut("/template/containers")
    else {
        return;
    };
    for (index, wanted) in container_overrides.iter().enumerate() {
        let wanted_name = wanted
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty());
        let target = match wanted_name {
            Some(n) => containers
                .iter_mut()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(n)),
            None => containers.get_mut(index),
        };
        let Some(container) = target else { continue };
        if wanted.get("clearArgs").and_then(Value::as_bool) == Some(true) {
            container["args"] = json!([]);
        }
        if let Some(args) = wanted
            .get("args")
            .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
        {
            container["args"] = args.clone();
        }
        if let Some(env) = wanted.get("env").and_then(Value::as_array) {
            let mut merged = container
                .get("env")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for var in env {
                merged.retain(|existing| existing.get("name") != var.get("name"));
                merged.push(var.clone());
            }
            container["env"] = Value::Array(merged);
        }
    }
}

pub fn run_job(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = JobName::from_path(call)?;
    let body = call.body_or_empty();
    let existing = context
        .state
        .run_jobs
        .get(&name.full)
        .map(|r| r.job.clone())
        .ok_or_else(|| job_not_found(&name))?;
    check_etag(&existing, body.get("etag").and_then(Value::as_str))?;
    settle_pending(context, call, &name.full);
    let job = context
        .state
        .run_jobs
        .get(&name.full)
        .map(|r| r.job.clone())
        .unwrap_or(existing);
    let now = timestamp(call.now);
    let mut template = job.get("template").cloned().unwrap_or_else(|| json!({}));
    apply_overrides(&mut template, body.get("overrides"));
    let counter = context.state.next_id();
    let suffix: String = stable_hash(&["execution", &name.full, &counter.to_string()])
        .bytes()
        .take(5)
        .map(|b| char::from(b'a' + b % 26))
        .collect();
    let execution_id = format!("{}-{suffix}", name.id);
    let execution_name = format!("{}/executions/{execution_id}", name.full);
    let mut execution = json!({
        "name": execution_name,
        "uid": uuid::Uuid::new_v4().to_string(),
        "creator": MODIFIER,
        "generation": "1",
        "createTime": now,
        "startTime": now,
        "launchStage": "GA",
        "job": name.id,
        "parallelism": template.get("parallelism").cloned().unwrap_or(json!(0)),
        "taskCount": template.get("taskCount").cloned().unwrap_or(json!(1)),
        "template": template.get("template").cloned().unwrap_or_else(|| json!({})),
        "reconciling": true,
        "conditions": [
            condition("ResourcesAvailable", "CONDITION_SUCCEEDED", &now, None),
            condition("Started", "CONDITION_SUCCEEDED", &now, None),
            condition("Completed", "CONDITION_RECONCILING", &now, None),
        ],
        "observedGeneration": "1",
        "runningCount": template.get("taskCount").cloned().unwrap_or(json!(1)),
        "logUri": format!("https://console.cloud.google.com/logs/viewer?project={}&resource=cloud_run_job/job_name/{}", name.project, name.id),
        "etag": quoted_hash(&["execution-etag", &execution_name], 24),
    });
    for field in ["labels", "annotations"] {
        if let Some(value) = template.get(field) {
            execution[field] = value.clone();
        }
    }
    if call.query_bool("validateOnly")?
        || body.get("validateOnly").and_then(Value::as_bool) == Some(true)
    {
        return Ok(Reply::Json(done_operation(
            &name,
            EXECUTION_TYPE_URL,
            &execution,
        )));
    }
    context
        .state
        .executions
        .insert(execution_name.clone(), execution.clone());
    if let Some(record) = context.state.run_jobs.get_mut(&name.full) {
        let count = record
            .job
            .get("executionCount")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            + 1;
        record.job["executionCount"] = json!(count);
        record.job["latestCreatedExecution"] = json!({
            "name": execution_name, "createTime": now, "completionStatus": "EXECUTION_RUNNING",
        });
        record.job = ordered(
            record.job.as_object().cloned().unwrap_or_default(),
            JOB_FIELD_ORDER,
        );
    }
    Ok(Reply::Json(lro::start(
        context,
        NewOperation {
            name: name.operation(),
            metadata: as_any(EXECUTION_TYPE_URL, &execution),
            kind: OperationKind::RunJob,
            target: execution_name,
            new_revision: None,
            final_resource: None,
        },
        &now,
    )))
}

pub fn job_iam(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = JobName::from_path(call)?;
    if !context.state.run_jobs.contains_key(&name.full) {
        return Err(job_not_found(&name));
    }
    super::iam_policy::answer(context, call, &name.full)
}

pub fn get_execution(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = JobName::from_path(call)?;
    let id = call.param("executionsId")?;
    let full = format!("{}/executions/{id}", name.full);
    context.state.executions.get(&full).cloned().map(Reply::Json).ok_or_else(|| {
        ApiError::not_found(format!(
            "Resource '{id}' of kind 'EXECUTION' in region '{}' in project '{}' does not exist.",
            name.location, name.project
        ))
    })
}

pub fn list_executions(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = JobName::from_path(call)?;
    if !context.state.run_jobs.contains_key(&name.full) {
        return Err(job_not_found(&name));
    }
    let prefix = format!("{}/executions/", name.full);
    let executions: Vec<&Value> =
        super::collection::children(&context.state.executions, &prefix).collect();
    super::collection::named_page(executions, "executions", call.query, EXECUTIONS_POLICY)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::server::testing::TestEmulator;

    const PARENT: &str = "/v2/projects/p1/locations/us-central1";
    const INT_ENUMS: &str = "%24alt=json%3Benum-encoding%3Dint";

    async fn finish(emulator: &TestEmulator, operation: &Value) -> Value {
        let name = operation["name"]
            .as_str()
            .unwrap_or_else(|| panic!("not an operation: {operation}"))
            .to_string();
        for _ in 0..5 {
            let (_, current) = emulator.send("GET", &format!("/v2/{name}"), None).await;
            if current["done"] == json!(true) {
                return current;
            }
        }
        panic!("operation never finished");
    }

    #[tokio::test]
    async fn jobs_echo_template_defaults_and_run_executions() {
        let emulator = TestEmulator::with_polls(1);
        let body = json!({"template": {"template": {"containers": [{"image": "us-docker.pkg.dev/p1/r/ingest@sha256:abc"}]}}});
        let (status, operation) = emulator
            .send(
                "POST",
                &format!("{PARENT}/jobs?jobId=ingest&validateOnly=false&{INT_ENUMS}"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 200, "{operation}");
        assert_eq!(operation["metadata"]["@type"], super::JOB_TYPE_URL);
        assert_eq!(operation["metadata"]["reconciling"], true);
        let (_, job) = emulator
            .send("GET", &format!("{PARENT}/jobs/ingest"), None)
            .await;
        assert_eq!(job["reconciling"], true);
        let done = finish(&emulator, &operation).await;
        let job = &done["response"];
        assert_eq!(job["template"]["taskCount"], 1);
        assert_eq!(job["template"]["template"]["maxRetries"], 3);
        assert_eq!(job["template"]["template"]["timeout"], "600s");
        assert_eq!(
            job["template"]["template"]["containers"][0]["resources"]["limits"],
            json!({"cpu": "1000m", "memory": "512Mi"})
        );
        assert!(
            job["template"]["template"]["serviceAccount"]
                .as_str()
                .is_some_and(|s| s.ends_with("-compute@developer.gserviceaccount.com"))
        );
        assert_eq!(
            (job["generation"].clone(), job["observedGeneration"].clone()),
            (json!("1"), json!("1"))
        );
        assert_eq!(job["terminalCondition"]["state"], "CONDITION_SUCCEEDED");
        let (status, _) = emulator
            .send("POST", &format!("{PARENT}/jobs?jobId=ingest"), Some(body))
            .await;
        assert_eq!(status, 409);

        let (status, run) = emulator
            .send(
                "POST",
                &format!("{PARENT}/jobs/ingest:run"),
                Some(json!({"overrides": {"taskCount": 2}})),
            )
            .await;
        assert_eq!(status, 200, "{run}");
        assert_eq!(run["metadata"]["@type"], super::EXECUTION_TYPE_URL);
        let execution_name = run["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            execution_name
                .starts_with("projects/p1/locations/us-central1/jobs/ingest/executions/ingest-")
        );
        let (_, job) = emulator
            .send("GET", &format!("{PARENT}/jobs/ingest"), None)
            .await;
        assert_eq!(
            (
                job["executionCount"].clone(),
                job["latestCreatedExecution"]["completionStatus"].clone()
            ),
            (json!(1), json!("EXECUTION_RUNNING"))
        );
        let done = finish(&emulator, &run).await;
        assert_eq!(done["response"]["succeededCount"], 2);
        let (_, job) = emulator
            .send("GET", &format!("{PARENT}/jobs/ingest"), None)
            .await;
        assert_eq!(
            job["latestCreatedExecution"]["completionStatus"],
            "EXECUTION_SUCCEEDED"
        );
        let (_, executions) = emulator
            .send(
                "GET",
                &format!("{PARENT}/jobs/ingest/executions?pageSize=0"),
                None,
            )
            .await;
        assert_eq!(executions["executions"].as_array().map(Vec::len), Some(1));
        let (status, _) = emulator
            .send("GET", &format!("/v2/{execution_name}"), None)
            .await;
        assert_eq!(status, 200);

        // An unchanged patch keeps the generation; a changed one bumps it.
        let (_, same) = emulator.send("PATCH", &format!("{PARENT}/jobs/ingest"), Some(json!({"template": {"template": {"containers": [{"image": "us-docker.pkg.dev/p1/r/ingest@sha256:abc"}]}}}))).await;
        assert_eq!(
            finish(&emulator, &same).await["response"]["generation"],
            "1"
        );
        let (_, changed) = emulator.send("PATCH", &format!("{PARENT}/jobs/ingest"), Some(json!({"labels": {"a": "b"}, "template": {"template": {"containers": [{"image": "us-docker.pkg.dev/p1/r/ingest@sha256:abc"}]}}}))).await;
        let job = finish(&emulator, &changed).await["response"].clone();
        assert_eq!(
            (job["generation"].clone(), job["labels"]["a"].clone()),
            (json!("2"), json!("b"))
        );

        let (status, _) = emulator.send("POST", &format!("{PARENT}/jobs/ingest:setIamPolicy"),
            Some(json!({"policy": {"bindings": [{"role": "roles/run.invoker", "members": ["user:a@example.com"]}]}}))).await;
        assert_eq!(status, 200);
        let (status, deleted) = emulator
            .send("DELETE", &format!("{PARENT}/jobs/ingest"), None)
            .await;
        assert_eq!(status, 200);
        assert!(finish(&emulator, &deleted).await["response"]["deleteTime"].is_string());
        let (status, _) = emulator
            .send("GET", &format!("{PARENT}/jobs/ingest:getIamPolicy"), None)
            .await;
        assert_eq!(status, 404);
    }
}

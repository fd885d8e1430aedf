//! The emulated API methods, bound to discovery method ids; plus what every handler receives.

pub mod iam;
pub mod iam_policy;
pub mod lro;
pub mod resourcemanager;
pub mod run;
pub mod run_jobs;
pub mod storage;
pub mod tasks;

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::Settings;
use crate::conventions::{ApiError, Query};
use crate::discovery::{Discovery, Route};
use crate::state::State;

/// Mutable access to the emulator for one request.
pub struct Context<'a> {
    pub state: &'a mut State,
    pub discovery: &'a Discovery,
    pub settings: &'a Settings,
}

/// One routed request.
pub struct Call<'a> {
    pub route: &'a Route,
    /// Path variables by discovery name (`projectsId`, `queuesId`, `bucket`, ...), decoded.
    pub params: BTreeMap<String, String>,
    pub query: &'a Query,
    /// The JSON body, validated and normalized against the method's request schema.
    pub body: Option<Value>,
    pub raw_body: &'a Bytes,
    pub headers: &'a HeaderMap,
    pub now: DateTime<Utc>,
}

impl Call<'_> {
    pub fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.params.get(name).map(String::as_str).ok_or_else(|| {
            ApiError::internal(format!(
                "route {} has no path variable {name}",
                self.route.id
            ))
        })
    }

    /// `projects/{projectsId}/locations/{locationsId}` of a Tasks/Run path.
    pub fn location_name(&self) -> Result<String, ApiError> {
        Ok(format!(
            "projects/{}/locations/{}",
            self.param("projectsId")?,
            self.param("locationsId")?
        ))
    }

    pub fn body_or_empty(&self) -> Value {
        self.body
            .clone()
            .unwrap_or_else(|| Value::Object(serde_json::Map::new()))
    }

    /// A boolean query parameter (`validateOnly=false` is sent explicitly by the Rust clients).
    pub fn query_bool(&self, name: &str) -> Result<bool, ApiError> {
        match self.query.non_empty(name) {
            None => Ok(false),
            Some(raw) if raw.eq_ignore_ascii_case("true") => Ok(true),
            Some(raw) if raw.eq_ignore_ascii_case("false") => Ok(false),
            Some(raw) => {
                let field = crate::conventions::wire::snake_case(name);
                Err(ApiError::bad_field(
                    &field,
                    format!("Invalid value at '{field}' (TYPE_BOOL), \"{raw}\""),
                ))
            }
        }
    }
}

/// `{"<field>": [items], "nextPageToken": ...}` for one page of a list method.
pub fn list_response<T: serde::Serialize>(
    field: &str,
    page: crate::conventions::paging::Page<T>,
) -> Value {
    let mut response = serde_json::Map::new();
    response.insert(
        field.to_string(),
        serde_json::to_value(page.items).unwrap_or(Value::Array(Vec::new())),
    );
    if let Some(token) = page.next_page_token {
        response.insert("nextPageToken".into(), Value::String(token));
    }
    Value::Object(response)
}

/// What a handler answers.
#[derive(Debug)]
pub enum Reply {
    /// A JSON resource, rendered against the method's response schema.
    Json(Value),
    /// Raw bytes (Storage `alt=media`).
    Media {
        bytes: Vec<u8>,
        headers: Vec<(String, String)>,
    },
    /// 204 with no body (Storage deletes).
    NoContent,
}

pub type Handler = fn(&mut Context<'_>, &Call<'_>) -> Result<Reply, ApiError>;

/// Every implemented discovery method. A test checks each id exists in the vendored documents.
const HANDLERS: &[(&str, Handler)] = &[
    (
        "cloudtasks.projects.locations.queues.create",
        tasks::create_queue,
    ),
    ("cloudtasks.projects.locations.queues.get", tasks::get_queue),
    (
        "cloudtasks.projects.locations.queues.list",
        tasks::list_queues,
    ),
    (
        "cloudtasks.projects.locations.queues.patch",
        tasks::patch_queue,
    ),
    (
        "cloudtasks.projects.locations.queues.delete",
        tasks::delete_queue,
    ),
    (
        "cloudtasks.projects.locations.queues.pause",
        tasks::pause_queue,
    ),
    (
        "cloudtasks.projects.locations.queues.resume",
        tasks::resume_queue,
    ),
    (
        "cloudtasks.projects.locations.queues.purge",
        tasks::purge_queue,
    ),
    (
        "run.projects.locations.services.create",
        run::create_service,
    ),
    ("run.projects.locations.services.get", run::get_service),
    ("run.projects.locations.services.list", run::list_services),
    ("run.projects.locations.services.patch", run::patch_service),
    (
        "run.projects.locations.services.delete",
        run::delete_service,
    ),
    (
        "run.projects.locations.services.revisions.get",
        run::get_revision,
    ),
    (
        "run.projects.locations.services.revisions.list",
        run::list_revisions,
    ),
    ("run.projects.locations.operations.get", run::get_operation),
    (
        "run.projects.locations.operations.list",
        run::list_operations,
    ),
    (
        "run.projects.locations.operations.delete",
        run::delete_operation,
    ),
    (
        "run.projects.locations.operations.wait",
        run::wait_operation,
    ),
    ("storage.buckets.insert", storage::insert_bucket),
    ("storage.buckets.get", storage::get_bucket),
    ("storage.objects.insert", storage::insert_object),
    ("storage.objects.get", storage::get_object),
    ("storage.objects.list", storage::list_objects),
    ("storage.objects.delete", storage::delete_object),
    (
        "cloudresourcemanager.projects.get",
        resourcemanager::get_project,
    ),
    (
        "cloudresourcemanager.projects.getIamPolicy",
        resourcemanager::project_iam,
    ),
    (
        "cloudresourcemanager.projects.setIamPolicy",
        resourcemanager::project_iam,
    ),
    (
        "cloudresourcemanager.projects.testIamPermissions",
        resourcemanager::project_iam,
    ),
    (
        "cloudtasks.projects.locations.queues.getIamPolicy",
        tasks::queue_iam,
    ),
    (
        "cloudtasks.projects.locations.queues.setIamPolicy",
        tasks::queue_iam,
    ),
    (
        "cloudtasks.projects.locations.queues.testIamPermissions",
        tasks::queue_iam,
    ),
    (
        "run.projects.locations.services.getIamPolicy",
        run::service_iam,
    ),
    (
        "run.projects.locations.services.setIamPolicy",
        run::service_iam,
    ),
    (
        "run.projects.locations.services.testIamPermissions",
        run::service_iam,
    ),
    ("iam.projects.serviceAccounts.create", iam::create_account),
    ("iam.projects.serviceAccounts.get", iam::get_account),
    ("iam.projects.serviceAccounts.list", iam::list_accounts),
    ("iam.projects.serviceAccounts.patch", iam::patch_account),
    ("iam.projects.serviceAccounts.delete", iam::delete_account),
    (
        "iam.projects.serviceAccounts.getIamPolicy",
        iam::account_iam,
    ),
    (
        "iam.projects.serviceAccounts.setIamPolicy",
        iam::account_iam,
    ),
    ("run.projects.locations.jobs.create", run_jobs::create_job),
    ("run.projects.locations.jobs.get", run_jobs::get_job),
    ("run.projects.locations.jobs.list", run_jobs::list_jobs),
    ("run.projects.locations.jobs.patch", run_jobs::patch_job),
    ("run.projects.locations.jobs.delete", run_jobs::delete_job),
    ("run.projects.locations.jobs.run", run_jobs::run_job),
    (
        "run.projects.locations.jobs.getIamPolicy",
        run_jobs::job_iam,
    ),
    (
        "run.projects.locations.jobs.setIamPolicy",
        run_jobs::job_iam,
    ),
    (
        "run.projects.locations.jobs.testIamPermissions",
        run_jobs::job_iam,
    ),
    (
        "run.projects.locations.jobs.executions.get",
        run_jobs::get_execution,
    ),
    (
        "run.projects.locations.jobs.executions.list",
        run_jobs::list_executions,
    ),
];

pub fn handler_for(id: &str) -> Option<Handler> {
    HANDLERS
        .iter()
        .find(|(known, _)| *known == id)
        .map(|(_, handler)| *handler)
}

pub fn is_implemented(id: &str) -> bool {
    handler_for(id).is_some()
}

/// GET methods that change state (operation polls count down) and so must be persisted.
pub fn reads_mutate(id: &str) -> bool {
    id == "run.projects.locations.operations.get"
}

/// The stable, deterministic 12-digit project number of a project id (numbers map to themselves).
pub fn project_number(project: &str) -> String {
    if project.len() >= 6 && project.bytes().all(|b| b.is_ascii_digit()) {
        return project.to_string();
    }
    let digest = crate::conventions::wire::stable_hash(&["project-number", project]);
    let value = u64::from_str_radix(&digest[..15], 16).unwrap_or(0);
    (100_000_000_000 + value % 900_000_000_000).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_handler_is_bound_to_a_discovery_method() {
        let discovery = Discovery::load().expect("discovery loads");
        for (id, _) in HANDLERS {
            assert!(
                discovery.route_by_id(id).is_some(),
                "{id} is not in the vendored discovery documents"
            );
        }
    }

    #[test]
    fn project_numbers_are_stable_twelve_digits() {
        let number = project_number("p1");
        assert_eq!(number.len(), 12);
        assert!(!number.starts_with('0'));
        assert_eq!(number, project_number("p1"));
        assert_ne!(number, project_number("p2"));
        assert_eq!(project_number("123456789012"), "123456789012");
    }
}

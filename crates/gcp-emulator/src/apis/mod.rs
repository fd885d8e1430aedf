//! The emulated API methods, bound to discovery method ids; plus what every handler receives.

pub mod apigateway;
pub mod apikeys;
pub mod artifactregistry;
pub mod bigquery;
pub mod bigquery_data;
pub mod bigquery_jobs;
pub mod bigquery_values;
pub mod budgets;
pub mod cloudbilling;
pub mod collection;
pub mod crm;
pub mod dashboards;
pub mod firestore_admin;
pub mod iam;
pub mod iam_policy;
pub mod logging;
pub mod lro;
pub mod monitoring;
pub mod registry;
pub mod resourcemanager;
pub mod run;
pub mod run_jobs;
pub mod scheduler;
pub mod secretmanager;
pub mod serviceusage;
pub mod shopify;
pub mod storage;
pub mod tasks;
pub mod tasks_data;
pub mod uptime;

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
    /// How each kind of long-running operation completes.
    pub completions: &'a lro::Completions,
    /// The execution plane: the clock, the token issuer, fronts and runners' wake-ups.
    pub runtime: &'a crate::runtime::Runtime,
    /// BigQuery table rows (kept apart from the state file).
    pub table_rows: &'a crate::table_rows::RowStore,
}

/// The completion hooks of the APIs whose operations finish with more than a known result.
pub fn completions() -> lro::Completions {
    use crate::state::OperationKind;
    let mut completions = lro::Completions::new();
    completions.register(
        &[
            OperationKind::CreateOrUpdateService,
            OperationKind::DeleteService,
        ],
        run::complete_operation,
    );
    completions.register(
        &[OperationKind::CreateOrUpdateJob, OperationKind::RunJob],
        run_jobs::complete_operation,
    );
    completions
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

/// The `"project"` and the `items` array of a seeding endpoint's body
/// (`{"project": P, "<items>": [...]}`).
pub fn seeded_items<'a>(body: &'a Value, items: &str) -> Result<(&'a str, &'a [Value]), String> {
    let project = body
        .get("project")
        .and_then(Value::as_str)
        .ok_or("\"project\" is required")?;
    let list = body
        .get(items)
        .and_then(Value::as_array)
        .ok_or(format!("\"{items}\" must be an array"))?;
    Ok((project, list))
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
    /// 308 with `Range: bytes=0-LAST`: a resumable upload has `received` bytes and wants more.
    ResumeIncomplete { received: u64 },
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
        "cloudtasks.projects.locations.queues.tasks.create",
        tasks_data::create_task,
    ),
    (
        "cloudtasks.projects.locations.queues.tasks.get",
        tasks_data::get_task,
    ),
    (
        "cloudtasks.projects.locations.queues.tasks.list",
        tasks_data::list_tasks,
    ),
    (
        "cloudtasks.projects.locations.queues.tasks.delete",
        tasks_data::delete_task,
    ),
    (
        "cloudtasks.projects.locations.queues.tasks.run",
        tasks_data::run_task,
    ),
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
    ("run.projects.locations.operations.get", lro::get_operation),
    (
        "run.projects.locations.operations.list",
        lro::list_operations,
    ),
    (
        "run.projects.locations.operations.delete",
        lro::delete_operation,
    ),
    (
        "run.projects.locations.operations.wait",
        lro::wait_operation,
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
    (
        "cloudscheduler.projects.locations.jobs.create",
        scheduler::create_job,
    ),
    (
        "cloudscheduler.projects.locations.jobs.get",
        scheduler::get_job,
    ),
    (
        "cloudscheduler.projects.locations.jobs.list",
        scheduler::list_jobs,
    ),
    (
        "cloudscheduler.projects.locations.jobs.patch",
        scheduler::patch_job,
    ),
    (
        "cloudscheduler.projects.locations.jobs.delete",
        scheduler::delete_job,
    ),
    (
        "cloudscheduler.projects.locations.jobs.pause",
        scheduler::pause_job,
    ),
    (
        "cloudscheduler.projects.locations.jobs.resume",
        scheduler::resume_job,
    ),
    (
        "cloudscheduler.projects.locations.jobs.run",
        scheduler::run_job,
    ),
    ("bigquery.datasets.insert", bigquery::insert_dataset),
    ("bigquery.datasets.get", bigquery::get_dataset),
    ("bigquery.datasets.list", bigquery::list_datasets),
    ("bigquery.datasets.patch", bigquery::patch_dataset),
    ("bigquery.datasets.update", bigquery::update_dataset),
    ("bigquery.datasets.delete", bigquery::delete_dataset),
    ("bigquery.tables.insert", bigquery::insert_table),
    ("bigquery.tables.get", bigquery::get_table),
    ("bigquery.tables.list", bigquery::list_tables),
    ("bigquery.tables.patch", bigquery::patch_table),
    ("bigquery.tables.update", bigquery::update_table),
    ("bigquery.tables.delete", bigquery::delete_table),
    ("bigquery.tables.getIamPolicy", bigquery::table_iam),
    ("bigquery.tables.setIamPolicy", bigquery::table_iam),
    ("bigquery.jobs.list", bigquery::list_jobs),
    ("bigquery.jobs.insert", bigquery_jobs::insert_job),
    ("bigquery.jobs.get", bigquery_jobs::get_job),
    ("bigquery.jobs.query", bigquery_jobs::refuse_query),
    ("bigquery.jobs.getQueryResults", bigquery_jobs::refuse_query),
    ("bigquery.tabledata.insertAll", bigquery_data::insert_all),
    ("bigquery.tabledata.list", bigquery_data::list_rows),
    (
        "secretmanager.projects.secrets.create",
        secretmanager::create_secret,
    ),
    (
        "secretmanager.projects.secrets.get",
        secretmanager::get_secret,
    ),
    (
        "secretmanager.projects.secrets.list",
        secretmanager::list_secrets,
    ),
    (
        "secretmanager.projects.secrets.patch",
        secretmanager::patch_secret,
    ),
    (
        "secretmanager.projects.secrets.delete",
        secretmanager::delete_secret,
    ),
    (
        "secretmanager.projects.secrets.addVersion",
        secretmanager::add_version,
    ),
    (
        "secretmanager.projects.secrets.getIamPolicy",
        secretmanager::secret_iam,
    ),
    (
        "secretmanager.projects.secrets.setIamPolicy",
        secretmanager::secret_iam,
    ),
    (
        "secretmanager.projects.secrets.testIamPermissions",
        secretmanager::secret_iam,
    ),
    (
        "secretmanager.projects.secrets.versions.get",
        secretmanager::get_version,
    ),
    (
        "secretmanager.projects.secrets.versions.list",
        secretmanager::list_versions,
    ),
    (
        "secretmanager.projects.secrets.versions.access",
        secretmanager::access_version,
    ),
    (
        "secretmanager.projects.secrets.versions.disable",
        secretmanager::disable_version,
    ),
    (
        "secretmanager.projects.secrets.versions.enable",
        secretmanager::enable_version,
    ),
    (
        "secretmanager.projects.secrets.versions.destroy",
        secretmanager::destroy_version,
    ),
    ("serviceusage.services.get", serviceusage::get_service),
    ("serviceusage.services.batchGet", serviceusage::batch_get),
    ("serviceusage.services.list", serviceusage::list_services),
    ("serviceusage.services.enable", serviceusage::enable_service),
    (
        "serviceusage.services.disable",
        serviceusage::disable_service,
    ),
    (
        "serviceusage.services.batchEnable",
        serviceusage::batch_enable,
    ),
    ("serviceusage.operations.get", lro::get_global_operation),
    ("logging.entries.list", logging::list_entries),
    (
        "firestore.projects.databases.create",
        firestore_admin::create_database,
    ),
    (
        "firestore.projects.databases.get",
        firestore_admin::get_database,
    ),
    (
        "firestore.projects.databases.list",
        firestore_admin::list_databases,
    ),
    (
        "firestore.projects.databases.patch",
        firestore_admin::patch_database,
    ),
    (
        "firestore.projects.databases.delete",
        firestore_admin::delete_database,
    ),
    (
        "firestore.projects.databases.collectionGroups.fields.get",
        firestore_admin::get_field,
    ),
    (
        "firestore.projects.databases.collectionGroups.fields.list",
        firestore_admin::list_fields,
    ),
    (
        "firestore.projects.databases.collectionGroups.fields.patch",
        firestore_admin::patch_field,
    ),
    (
        "firestore.projects.databases.operations.get",
        firestore_admin::get_operation,
    ),
    (
        "monitoring.projects.notificationChannelDescriptors.list",
        monitoring::list_descriptors,
    ),
    (
        "monitoring.projects.notificationChannelDescriptors.get",
        monitoring::get_descriptor,
    ),
    (
        "monitoring.projects.notificationChannels.create",
        monitoring::create_channel,
    ),
    (
        "monitoring.projects.notificationChannels.get",
        monitoring::get_channel,
    ),
    (
        "monitoring.projects.notificationChannels.list",
        monitoring::list_channels,
    ),
    (
        "monitoring.projects.notificationChannels.patch",
        monitoring::patch_channel,
    ),
    (
        "monitoring.projects.notificationChannels.delete",
        monitoring::delete_channel,
    ),
    (
        "monitoring.projects.alertPolicies.create",
        monitoring::create_policy,
    ),
    (
        "monitoring.projects.alertPolicies.get",
        monitoring::get_policy,
    ),
    (
        "monitoring.projects.alertPolicies.list",
        monitoring::list_policies,
    ),
    (
        "monitoring.projects.alertPolicies.patch",
        monitoring::patch_policy,
    ),
    (
        "monitoring.projects.alertPolicies.delete",
        monitoring::delete_policy,
    ),
    (
        "monitoring.projects.dashboards.create",
        dashboards::create_dashboard,
    ),
    (
        "monitoring.projects.dashboards.get",
        dashboards::get_dashboard,
    ),
    (
        "monitoring.projects.dashboards.list",
        dashboards::list_dashboards,
    ),
    (
        "monitoring.projects.dashboards.patch",
        dashboards::patch_dashboard,
    ),
    (
        "monitoring.projects.dashboards.delete",
        dashboards::delete_dashboard,
    ),
    (
        "monitoring.projects.uptimeCheckConfigs.create",
        uptime::create_check,
    ),
    (
        "monitoring.projects.uptimeCheckConfigs.get",
        uptime::get_check,
    ),
    (
        "monitoring.projects.uptimeCheckConfigs.list",
        uptime::list_checks,
    ),
    (
        "monitoring.projects.uptimeCheckConfigs.patch",
        uptime::patch_check,
    ),
    (
        "monitoring.projects.uptimeCheckConfigs.delete",
        uptime::delete_check,
    ),
    (
        "monitoring.projects.timeSeries.list",
        monitoring::list_time_series,
    ),
    (
        "billingbudgets.billingAccounts.budgets.create",
        budgets::create_budget,
    ),
    (
        "billingbudgets.billingAccounts.budgets.get",
        budgets::get_budget,
    ),
    (
        "billingbudgets.billingAccounts.budgets.list",
        budgets::list_budgets,
    ),
    (
        "billingbudgets.billingAccounts.budgets.patch",
        budgets::patch_budget,
    ),
    (
        "billingbudgets.billingAccounts.budgets.delete",
        budgets::delete_budget,
    ),
    ("cloudbilling.services.list", cloudbilling::list_services),
    (
        "cloudbilling.projects.getBillingInfo",
        cloudbilling::get_billing_info,
    ),
    (
        "cloudbilling.projects.updateBillingInfo",
        cloudbilling::update_billing_info,
    ),
    ("cloudbilling.services.skus.list", cloudbilling::list_skus),
    (
        "artifactregistry.projects.locations.repositories.create",
        artifactregistry::create_repository,
    ),
    (
        "artifactregistry.projects.locations.repositories.get",
        artifactregistry::get_repository,
    ),
    (
        "artifactregistry.projects.locations.repositories.list",
        artifactregistry::list_repositories,
    ),
    (
        "artifactregistry.projects.locations.repositories.patch",
        artifactregistry::patch_repository,
    ),
    (
        "artifactregistry.projects.locations.repositories.delete",
        artifactregistry::delete_repository,
    ),
    (
        "artifactregistry.projects.locations.repositories.getIamPolicy",
        artifactregistry::repository_iam,
    ),
    (
        "artifactregistry.projects.locations.repositories.setIamPolicy",
        artifactregistry::repository_iam,
    ),
    (
        "artifactregistry.projects.locations.repositories.testIamPermissions",
        artifactregistry::repository_iam,
    ),
    (
        "artifactregistry.projects.locations.operations.get",
        lro::get_operation,
    ),
    (
        "artifactregistry.projects.locations.repositories.dockerImages.list",
        artifactregistry::list_docker_images,
    ),
    (
        "artifactregistry.projects.locations.repositories.dockerImages.get",
        artifactregistry::get_docker_image,
    ),
    (
        "apigateway.projects.locations.apis.create",
        apigateway::create_api,
    ),
    (
        "apigateway.projects.locations.apis.get",
        apigateway::get_api,
    ),
    (
        "apigateway.projects.locations.apis.list",
        apigateway::list_apis,
    ),
    (
        "apigateway.projects.locations.apis.patch",
        apigateway::patch_api,
    ),
    (
        "apigateway.projects.locations.apis.delete",
        apigateway::delete_api,
    ),
    (
        "apigateway.projects.locations.apis.configs.create",
        apigateway::create_config,
    ),
    (
        "apigateway.projects.locations.apis.configs.get",
        apigateway::get_config,
    ),
    (
        "apigateway.projects.locations.apis.configs.list",
        apigateway::list_configs,
    ),
    (
        "apigateway.projects.locations.apis.configs.patch",
        apigateway::patch_config,
    ),
    (
        "apigateway.projects.locations.apis.configs.delete",
        apigateway::delete_config,
    ),
    (
        "apigateway.projects.locations.gateways.create",
        apigateway::create_gateway,
    ),
    (
        "apigateway.projects.locations.gateways.get",
        apigateway::get_gateway,
    ),
    (
        "apigateway.projects.locations.gateways.list",
        apigateway::list_gateways,
    ),
    (
        "apigateway.projects.locations.gateways.patch",
        apigateway::patch_gateway,
    ),
    (
        "apigateway.projects.locations.gateways.delete",
        apigateway::delete_gateway,
    ),
    (
        "apigateway.projects.locations.operations.get",
        lro::get_operation,
    ),
    (
        "apigateway.projects.locations.operations.list",
        lro::list_operations,
    ),
    (
        "apikeys.projects.locations.keys.create",
        apikeys::create_key,
    ),
    ("apikeys.projects.locations.keys.get", apikeys::get_key),
    ("apikeys.projects.locations.keys.list", apikeys::list_keys),
    ("apikeys.projects.locations.keys.patch", apikeys::patch_key),
    (
        "apikeys.projects.locations.keys.delete",
        apikeys::delete_key,
    ),
    (
        "apikeys.projects.locations.keys.undelete",
        apikeys::undelete_key,
    ),
    (
        "apikeys.projects.locations.keys.getKeyString",
        apikeys::get_key_string,
    ),
    ("apikeys.keys.lookupKey", apikeys::lookup_key),
    ("apikeys.operations.get", lro::get_global_operation),
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

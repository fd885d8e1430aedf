//! Emulated resources: everything the emulated APIs know (persisted by [`crate::store`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::tracked::{Touched, Tracked};

const FORMAT_VERSION: u32 = 1;

/// Everything the emulated APIs know. Resources are kept as their wire JSON (enum names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub format_version: u32,
    /// Cloud Tasks queues by full name.
    pub queues: Tracked<Value>,
    /// Deleted queue names -> RFC 3339 deletion time (blocks re-creation for a while).
    pub queue_tombstones: Tracked<String>,
    /// Cloud Tasks tasks waiting or being dispatched, by full name.
    pub tasks: Tracked<TaskRecord>,
    /// Task names used recently (created, executed or deleted) -> when: reused within about an
    /// hour answers ALREADY_EXISTS.
    pub task_names: Tracked<String>,
    /// Cloud Run services by full name.
    pub services: Tracked<ServiceRecord>,
    /// Cloud Run revisions by full name (`.../services/S/revisions/R`).
    pub revisions: Tracked<Value>,
    /// Long-running operations by full name.
    pub operations: Tracked<OperationRecord>,
    /// Storage buckets by name.
    pub buckets: Tracked<Value>,
    /// Storage objects: bucket -> object name -> object.
    pub objects: Tracked<BTreeMap<String, StoredObject>>,
    /// Highest object generation handed out (generations only increase).
    pub last_object_generation: i64,
    /// IAM policies of every resource kind, by resource name (`projects/p/secrets/s`, ...).
    pub iam_policies: Tracked<Value>,
    /// How many times each policy was written (feeds its etag).
    pub iam_policy_writes: Tracked<u64>,
    /// IAM service accounts by email.
    pub service_accounts: Tracked<Value>,
    /// Cloud Run jobs by full name.
    pub run_jobs: Tracked<JobRecord>,
    /// Cloud Run executions by full name (`.../jobs/J/executions/E`).
    pub executions: Tracked<Value>,
    /// Cloud Scheduler jobs by full name.
    pub scheduler_jobs: Tracked<Value>,
    /// Scheduler jobs `jobs.run` asked to fire now (the execution plane fires them).
    pub scheduler_runs: std::collections::BTreeSet<String>,
    /// BigQuery datasets by `project:dataset`.
    pub bq_datasets: Tracked<Value>,
    /// BigQuery tables by `project:dataset.table`.
    pub bq_tables: Tracked<Value>,
    /// BigQuery jobs (seeded through the admin API) by `project:location.jobId`.
    pub bq_jobs: Tracked<Value>,
    /// Billing budgets by full name.
    pub budgets: Tracked<Value>,
    /// Monitoring notification channels by full name.
    pub notification_channels: Tracked<Value>,
    /// Monitoring alert policies by full name.
    pub alert_policies: Tracked<Value>,
    /// Monitoring uptime check configs by full name.
    pub uptime_check_configs: Tracked<Value>,
    /// Monitoring v1 dashboards by full name.
    pub dashboards: Tracked<Value>,
    /// Seeded Monitoring time series per project id.
    pub time_series: Tracked<Vec<Value>>,
    /// Artifact Registry repositories by full name.
    pub repositories: Tracked<Value>,
    /// Artifact Registry docker images by full name.
    pub docker_images: Tracked<Value>,
    /// Secret Manager secrets by full name.
    pub secrets: Tracked<Value>,
    /// Secret versions by full name, with their payloads.
    pub secret_versions: Tracked<SecretVersionRecord>,
    /// Enabled services per project number.
    pub enabled_services: Tracked<std::collections::BTreeSet<String>>,
    /// Cloud Billing Catalog prices set through the admin API, by SKU id: the SKU's replaced
    /// `tieredRates`, or `None` when the SKU was withdrawn from the catalog.
    pub catalog_overrides: Tracked<Option<Value>>,
    /// A counter for server-assigned ids (alert policies, channels, conditions, executions).
    pub last_id: u64,
    /// Artifact Registry Docker repositories by path (`PROJECT/REPO/IMAGE`); blob bytes are
    /// kept apart (see `apis::registry`).
    pub registry: Tracked<RepositoryRecord>,
    /// Firestore databases by full name (`projects/P/databases/D`).
    pub firestore_databases: Tracked<Value>,
    /// Firestore fields with a TTL policy, by full name
    /// (`projects/P/databases/D/collectionGroups/C/fields/F`).
    pub firestore_fields: Tracked<Value>,
    /// The fake Shopify Admin API's shops by domain (`acme.myshopify.com`).
    pub shopify_shops: Tracked<crate::apis::shopify::ShopRecord>,
    /// The fake CRM's customers by id.
    pub crm_customers: Tracked<crate::apis::crm::CustomerRecord>,
    /// Projects' billing links (`ProjectBillingInfo`) by project id, as `updateBillingInfo` set
    /// them; a project never set is linked to the emulator's own account.
    pub project_billing: Tracked<Value>,
    /// API Gateway APIs by full name (`projects/P/locations/global/apis/A`).
    pub gateway_apis: Tracked<Value>,
    /// API Gateway API configs by full name (`.../apis/A/configs/C`), documents included.
    pub gateway_configs: Tracked<Value>,
    /// API Gateway gateways by full name (`projects/P/locations/REGION/gateways/G`).
    pub gateways: Tracked<Value>,
    /// API Keys keys by full name (`projects/NUMBER/locations/global/keys/K`).
    pub api_keys: Tracked<ApiKeyRecord>,
    /// The key the fake CRM accepts (`POST /_emulator/crm/config`, or the first one used).
    pub crm_api_key: Option<String>,
}

impl State {
    /// Each field's changes since the last call (its JSON name and what changed), for the
    /// store's log; map fields report the keys they touched, the others their whole value.
    pub(crate) fn take_touched(&self) -> Result<Vec<(&'static str, Touched)>, serde_json::Error> {
        let mut touched = Vec::new();
        macro_rules! tracked {
            ($($field:ident),* $(,)?) => {
                $(touched.push((stringify!($field), self.$field.take_touched()?));)*
            };
        }
        macro_rules! whole {
            ($($field:ident),* $(,)?) => {
                $(touched.push((stringify!($field), Touched::Whole(serde_json::to_value(&self.$field)?)));)*
            };
        }
        tracked!(
            queues,
            queue_tombstones,
            tasks,
            task_names,
            services,
            revisions,
            operations,
            buckets,
            objects,
            iam_policies,
            iam_policy_writes,
            service_accounts,
            run_jobs,
            executions,
            scheduler_jobs,
            bq_datasets,
            bq_tables,
            bq_jobs,
            budgets,
            notification_channels,
            alert_policies,
            uptime_check_configs,
            dashboards,
            time_series,
            repositories,
            docker_images,
            secrets,
            secret_versions,
            enabled_services,
            catalog_overrides,
            registry,
            firestore_databases,
            firestore_fields,
            shopify_shops,
            crm_customers,
            project_billing,
            gateway_apis,
            gateway_configs,
            gateways,
            api_keys
        );
        whole!(
            format_version,
            last_object_generation,
            scheduler_runs,
            last_id,
            crm_api_key
        );
        Ok(touched)
    }
}
/// A Cloud Tasks task: its wire form and what dispatch needs to know.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskRecord {
    /// The task as `tasks.get` answers it with `responseView: FULL` (body included).
    pub task: Value,
    /// When the next attempt is due (RFC 3339); the task's `scheduleTime`.
    pub due: String,
    /// The HTTP status of the previous attempt (0 = no response), for the retry headers.
    pub previous_response: Option<u16>,
    /// Why the previous attempt failed, for `X-CloudTasks-TaskRetryReason`.
    pub retry_reason: Option<String>,
    /// `tasks.run` asked for an attempt now, whatever the queue's state and rate.
    pub forced: bool,
}

/// An API key: its resource (without the key string, as `keys.get` answers) and its secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiKeyRecord {
    pub key: Value,
    /// `AIza…`, 39 characters, as `keys.getKeyString` answers.
    pub key_string: String,
}

/// A Cloud Run job and its bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobRecord {
    pub job: Value,
    /// The operation still reconciling this job, if any.
    pub pending_operation: Option<String>,
}

/// A secret version: its resource and its payload (base64, as sent).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecretVersionRecord {
    pub version: Value,
    pub payload_base64: String,
}

/// One image repository of the OCI distribution API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RepositoryRecord {
    /// Digests of the blobs linked into this repository (pushed or mounted here).
    pub blobs: std::collections::BTreeSet<String>,
    /// Manifests by digest.
    pub manifests: BTreeMap<String, StoredManifest>,
    /// Tag -> manifest digest.
    pub tags: BTreeMap<String, String>,
}

/// A manifest exactly as pushed (its digest is the digest of these bytes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredManifest {
    pub media_type: String,
    pub body: String,
}

/// A Cloud Run service and the bookkeeping its reconciliation needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceRecord {
    pub service: Value,
    /// The operation still reconciling this service, if any.
    pub pending_operation: Option<String>,
    /// Revisions created so far (the `00001` counter of revision names).
    pub revision_count: u32,
    /// The (defaulted) template each revision of this service was created from.
    pub revision_templates: BTreeMap<String, Value>,
}

/// What a long-running operation does when it completes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationKind {
    #[default]
    CreateOrUpdateService,
    DeleteService,
    /// A Cloud Run job create/update: the job becomes ready.
    CreateOrUpdateJob,
    /// A Cloud Run job execution: it runs to completion.
    RunJob,
    /// Anything whose result is known up front (`final_resource` becomes the response).
    Immediate,
}

/// A long-running operation and what completes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OperationRecord {
    /// The `google.longrunning.Operation` as served (enum names).
    pub operation: Value,
    /// GETs still answered with `done: false`.
    pub polls_remaining: u32,
    pub kind: OperationKind,
    /// Full name of the resource the operation acts on.
    pub target: String,
    /// The revision this operation rolls out, if the template changed.
    pub new_revision: Option<String>,
    /// The final resource for operations whose target no longer exists (deletes).
    pub final_resource: Option<Value>,
}

/// A Storage object: its metadata resource and its bytes (hex in the state file).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoredObject {
    pub metadata: Value,
    pub content_hex: String,
}

impl State {
    /// A fresh server-assigned number (monotonic within a state).
    pub fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    pub fn empty() -> Self {
        Self {
            format_version: FORMAT_VERSION,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_of_the_state_reports_its_changes_to_the_store() {
        let serialized = serde_json::to_value(State::empty()).unwrap();
        let mut fields: Vec<&str> = serialized
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let touched = State::empty().take_touched().unwrap();
        let mut reported: Vec<&str> = touched.iter().map(|(field, _)| *field).collect();
        fields.sort_unstable();
        reported.sort_unstable();
        assert_eq!(reported, fields, "add the field to State::take_touched");
    }
}

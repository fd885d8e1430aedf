//! IAM through Google's clients: service accounts (`google-cloud-iam-admin-v1`), the
//! resource-level policy of anything a grant can target, read-modify-written with its etag, and
//! which permissions the caller holds on the project or on one resource (`testIamPermissions`).
//!
//! Every policy endpoint (Resource Manager v3 projects, Run v2 services and jobs, Tasks v2 queues,
//! IAM v1 service accounts, Secret Manager v1 secrets, BigQuery v2 tables) speaks the same
//! `google.iam.v1.Policy`; [`PolicyTarget`] names which one, so the grant code above stays generic
//! over it. BigQuery has no client crate here: its table policies go through the REST module
//! (`provider::bigquery`) with the same JSON `Policy`.

use std::collections::{BTreeMap, BTreeSet};

use google_cloud_iam_admin_v1::model as am;
use google_cloud_iam_v1::model as iam;
use google_cloud_wkt as wkt;
use serde::{Deserialize, Serialize};

use super::Cloud;
use super::error::{ApiError, NotFoundAsAnswer, RetryObserver};
use super::retry::{Created, all_pages, creating, retrying};
use crate::model::Kind;

pub use crate::model::live::iam::{PolicyRecord, ServiceAccountRecord};

/// The resource whose IAM policy a grant edits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum PolicyTarget {
    /// `projects/P` (Resource Manager v3).
    Project(String),
    /// `projects/P/locations/L/services/ID` (Cloud Run v2).
    Service(String),
    /// `projects/P/locations/L/jobs/ID` (Cloud Run v2).
    Job(String),
    /// `projects/P/locations/L/queues/ID` (Cloud Tasks v2).
    Queue(String),
    /// `projects/P/serviceAccounts/EMAIL` (IAM v1).
    ServiceAccount(String),
    /// `projects/P/secrets/ID` (Secret Manager v1).
    Secret(String),
    /// `projects/P/datasets/D/tables/T` (BigQuery v2 `tables.getIamPolicy`; datasets have no
    /// IAM policy in v2, only `access[]`).
    Table(String),
}

impl PolicyTarget {
    /// The full resource name the policy belongs to.
    pub fn resource(&self) -> &str {
        match self {
            PolicyTarget::Project(n)
            | PolicyTarget::Service(n)
            | PolicyTarget::Job(n)
            | PolicyTarget::Queue(n)
            | PolicyTarget::ServiceAccount(n)
            | PolicyTarget::Secret(n)
            | PolicyTarget::Table(n) => n,
        }
    }

    /// Recognizes a resource name by its collection (`.../services/X`, `projects/P`, ...).
    pub fn from_resource(name: &str) -> Option<Self> {
        let segments: Vec<&str> = name.split('/').collect();
        let target = match segments.as_slice() {
            ["projects", _] => PolicyTarget::Project(name.into()),
            ["projects", _, "locations", _, "services", _] => PolicyTarget::Service(name.into()),
            ["projects", _, "locations", _, "jobs", _] => PolicyTarget::Job(name.into()),
            ["projects", _, "locations", _, "queues", _] => PolicyTarget::Queue(name.into()),
            ["projects", _, "serviceAccounts", _] => PolicyTarget::ServiceAccount(name.into()),
            ["projects", _, "secrets", _] => PolicyTarget::Secret(name.into()),
            ["projects", _, "datasets", _, "tables", _] => PolicyTarget::Table(name.into()),
            _ => return None,
        };
        Some(target)
    }
}

/// The record of `policy`: its unconditional bindings and its etag (base64, as the JSON API writes it).
fn policy_from_api(policy: &iam::Policy) -> PolicyRecord {
    let mut bindings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for b in policy.bindings.iter().filter(|b| b.condition.is_none()) {
        bindings
            .entry(b.role.clone())
            .or_default()
            .extend(b.members.iter().cloned());
    }
    PolicyRecord {
        etag: base64_of(&policy.etag),
        bindings,
    }
}

/// `policy` with its unconditional bindings replaced by `record`'s; the etag is kept, so the
/// write fails with ABORTED if someone changed the policy since it was read.
fn policy_onto(record: &PolicyRecord, mut policy: iam::Policy) -> iam::Policy {
    let mut kept: Vec<iam::Binding> = policy
        .bindings
        .into_iter()
        .filter(|b| b.condition.is_some())
        .collect();
    kept.extend(record.bindings.iter().map(|(role, members)| {
        iam::Binding::new()
            .set_role(role.clone())
            .set_members(members.iter().cloned())
    }));
    policy.bindings = kept;
    policy
}

fn base64_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Asks for version 3 so conditional bindings come back whole (and are written back unchanged).
fn policy_options() -> iam::GetPolicyOptions {
    iam::GetPolicyOptions::new().set_requested_policy_version(3)
}

/// The `google.iam.v1` calls of one client: `get_iam_policy` / `set_iam_policy` look the same on all.
macro_rules! get_policy {
    ($client:expr, $resource:expr) => {
        $client
            .get_iam_policy()
            .set_resource($resource)
            .set_options(policy_options())
            .send()
            .await
    };
}

macro_rules! test_permissions {
    ($client:expr, $resource:expr, $permissions:expr) => {
        $client
            .test_iam_permissions()
            .set_resource($resource)
            .set_permissions($permissions)
            .send()
            .await
    };
}

macro_rules! set_policy {
    ($client:expr, $resource:expr, $policy:expr) => {
        $client
            .set_iam_policy()
            .set_resource($resource)
            .set_policy($policy)
            .send()
            .await
    };
}

fn service_account_from_api(a: am::ServiceAccount) -> ServiceAccountRecord {
    ServiceAccountRecord {
        name: format!("projects/{}/serviceAccounts/{}", a.project_id, a.email),
        email: a.email,
        display_name: a.display_name,
        description: a.description,
        disabled: a.disabled,
    }
}

/// What stackctl writes onto a service account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccountWrite {
    pub name: String,
    pub account_id: String,
    /// `None` = not managed.
    pub display_name: Option<String>,
    pub description: Option<String>,
}

impl Cloud {
    /// Which of `permissions` the caller holds on the project (`projects.testIamPermissions`).
    pub async fn test_project_permissions(
        &self,
        permissions: &[&str],
        observer: &dyn RetryObserver,
    ) -> Result<Vec<String>, ApiError> {
        let name = format!("projects/{}", self.project);
        retrying(self.backoff, observer, || async {
            self.projects
                .test_iam_permissions()
                .set_resource(&name)
                .set_permissions(permissions.iter().map(|p| p.to_string()))
                .send()
                .await
                .map(|answer| answer.permissions)
                .map_err(|e| {
                    ApiError::from_gax(
                        "cloudresourcemanager.projects.testIamPermissions",
                        &name,
                        &e,
                    )
                })
        })
        .await
    }

    /// Which of `permissions` the caller holds on `resource`, a queue, service, job, secret or
    /// repository of that `kind` (its own `testIamPermissions`: the project's grants, the
    /// resource's own, less what a deny takes away). Google answers the empty set, not
    /// NOT_FOUND, for a resource that does not exist: ask only about ones that do.
    pub async fn test_resource_permissions(
        &self,
        kind: Kind,
        resource: &str,
        permissions: &[&str],
        observer: &dyn RetryObserver,
    ) -> Result<Vec<String>, ApiError> {
        let permissions = permissions.iter().map(|p| p.to_string());
        let err =
            |e: google_cloud_gax::error::Error| ApiError::from_gax(test_call(kind), resource, &e);
        retrying(self.backoff, observer, || async {
            let permissions = permissions.clone();
            let held =
                match kind {
                    Kind::Queue => {
                        test_permissions!(self.tasks, resource, permissions).map(|a| a.permissions)
                    }
                    Kind::Service => test_permissions!(self.services, resource, permissions)
                        .map(|a| a.permissions),
                    Kind::Job => {
                        test_permissions!(self.jobs, resource, permissions).map(|a| a.permissions)
                    }
                    Kind::Secret => test_permissions!(self.secrets, resource, permissions)
                        .map(|a| a.permissions),
                    Kind::Repository => test_permissions!(self.artifacts, resource, permissions)
                        .map(|a| a.permissions),
                    other => {
                        return Err(ApiError::new(
                            test_call(kind),
                            resource,
                            None,
                            None,
                            format!("a {other} has no IAM policy of its own to test"),
                        ));
                    }
                };
            held.map_err(err)
        })
        .await
    }

    /// The policy of `target`; a resource that does not exist (yet) has the empty policy.
    pub async fn get_iam_policy(
        &self,
        target: &PolicyTarget,
        observer: &dyn RetryObserver,
    ) -> Result<PolicyRecord, ApiError> {
        let got = retrying(self.backoff, observer, || async {
            self.read_policy(target).await.map(|p| policy_from_api(&p))
        })
        .await;
        match got {
            Err(e) if e.is_not_found() => Ok(PolicyRecord::default()),
            other => other,
        }
    }

    async fn read_policy(&self, target: &PolicyTarget) -> Result<iam::Policy, ApiError> {
        let resource = target.resource();
        let err =
            |e: google_cloud_gax::error::Error| ApiError::from_gax(get_call(target), resource, &e);
        match target {
            PolicyTarget::Project(_) => get_policy!(self.projects, resource).map_err(err),
            PolicyTarget::Service(_) => get_policy!(self.services, resource).map_err(err),
            PolicyTarget::Job(_) => get_policy!(self.jobs, resource).map_err(err),
            PolicyTarget::Queue(_) => get_policy!(self.tasks, resource).map_err(err),
            PolicyTarget::ServiceAccount(_) => get_policy!(self.iam, resource).map_err(err),
            PolicyTarget::Secret(_) => get_policy!(self.secrets, resource).map_err(err),
            PolicyTarget::Table(_) => self.get_table_iam_policy(resource).await,
        }
    }

    async fn write_policy(
        &self,
        target: &PolicyTarget,
        policy: iam::Policy,
    ) -> Result<iam::Policy, ApiError> {
        let resource = target.resource();
        let err =
            |e: google_cloud_gax::error::Error| ApiError::from_gax(set_call(target), resource, &e);
        match target {
            PolicyTarget::Project(_) => set_policy!(self.projects, resource, policy).map_err(err),
            PolicyTarget::Service(_) => set_policy!(self.services, resource, policy).map_err(err),
            PolicyTarget::Job(_) => set_policy!(self.jobs, resource, policy).map_err(err),
            PolicyTarget::Queue(_) => set_policy!(self.tasks, resource, policy).map_err(err),
            PolicyTarget::ServiceAccount(_) => set_policy!(self.iam, resource, policy).map_err(err),
            PolicyTarget::Secret(_) => set_policy!(self.secrets, resource, policy).map_err(err),
            PolicyTarget::Table(_) => self.set_table_iam_policy(resource, &policy).await,
        }
    }

    /// Read-modify-write of `target`'s policy: reads it, lets `edit` change the unconditional
    /// bindings, and writes it back with the etag it was read at. A concurrent change (409
    /// ABORTED) or an IAM propagation delay retries the whole read-modify-write, so `edit` runs
    /// again on the fresh policy. Nothing is written when `edit` changes nothing.
    pub async fn modify_iam_policy(
        &self,
        target: &PolicyTarget,
        edit: impl Fn(&mut PolicyRecord),
        observer: &dyn RetryObserver,
    ) -> Result<PolicyRecord, ApiError> {
        retrying(self.backoff, observer, || async {
            let live = self.read_policy(target).await?;
            let before = policy_from_api(&live);
            let mut after = before.clone();
            edit(&mut after);
            if after.bindings == before.bindings {
                return Ok(before);
            }
            let written = self.write_policy(target, policy_onto(&after, live)).await?;
            Ok(policy_from_api(&written))
        })
        .await
    }

    /// Every service account of the project: one paged list call per page.
    pub async fn list_service_accounts(
        &self,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<ServiceAccountRecord>, ApiError> {
        let parent = format!("projects/{}", self.project);
        all_pages(|token| {
            let parent = parent.clone();
            async move {
                let page = retrying(self.backoff, observer, || async {
                    self.iam
                        .list_service_accounts()
                        .set_name(&parent)
                        .set_page_token(&token)
                        .send()
                        .await
                        .map_err(|e| ApiError::from_gax("iam.serviceAccounts.list", &parent, &e))
                })
                .await?;
                let items = page.accounts.into_iter().map(service_account_from_api);
                Ok((items.collect(), page.next_page_token))
            }
        })
        .await
    }

    /// Creates the account; one already there is answered as [`Created::Exists`] for the caller
    /// to judge.
    pub async fn create_service_account(
        &self,
        write: &ServiceAccountWrite,
        observer: &dyn RetryObserver,
    ) -> Result<Created<ServiceAccountRecord>, ApiError> {
        let parent = format!("projects/{}", self.project);
        let account = am::ServiceAccount::new()
            .set_display_name(write.display_name.clone().unwrap_or_default())
            .set_description(write.description.clone().unwrap_or_default());
        let created = creating(self.backoff, observer, || async {
            self.iam
                .create_service_account()
                .set_name(&parent)
                .set_account_id(&write.account_id)
                .set_service_account(account.clone())
                .send()
                .await
                .map_err(|e| ApiError::from_gax("iam.serviceAccounts.create", &write.name, &e))
        })
        .await;
        Ok(created?.map(service_account_from_api))
    }

    pub async fn get_service_account(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<ServiceAccountRecord, ApiError> {
        retrying(self.backoff, observer, || async {
            self.iam
                .get_service_account()
                .set_name(name)
                .send()
                .await
                .map(service_account_from_api)
                .map_err(|e| ApiError::from_gax("iam.serviceAccounts.get", name, &e))
        })
        .await
    }

    /// Patches the declared fields (`display_name`, `description`) with an update mask.
    pub async fn update_service_account(
        &self,
        write: &ServiceAccountWrite,
        observer: &dyn RetryObserver,
    ) -> Result<ServiceAccountRecord, ApiError> {
        let mut paths = Vec::new();
        let mut account = am::ServiceAccount::new().set_name(write.name.clone());
        if let Some(v) = &write.display_name {
            account = account.set_display_name(v.clone());
            paths.push("display_name");
        }
        if let Some(v) = &write.description {
            account = account.set_description(v.clone());
            paths.push("description");
        }
        if paths.is_empty() {
            return self.get_service_account(&write.name, observer).await;
        }
        let mask = wkt::FieldMask::default().set_paths(paths.iter().map(|p| p.to_string()));
        retrying(self.backoff, observer, || async {
            self.iam
                .patch_service_account()
                .set_service_account(account.clone())
                .set_update_mask(mask.clone())
                .send()
                .await
                .map(service_account_from_api)
                .map_err(|e| ApiError::from_gax("iam.serviceAccounts.patch", &write.name, &e))
        })
        .await
    }

    /// Deletes the account; already gone counts as done.
    pub async fn delete_service_account(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<(), ApiError> {
        let deleted = retrying(self.backoff, observer, || async {
            self.iam
                .delete_service_account()
                .set_name(name)
                .send()
                .await
                .map_err(|e| ApiError::from_gax("iam.serviceAccounts.delete", name, &e))
        })
        .await;
        deleted.not_found_as_done()
    }
}

fn get_call(target: &PolicyTarget) -> &'static str {
    match target {
        PolicyTarget::Project(_) => "cloudresourcemanager.projects.getIamPolicy",
        PolicyTarget::Service(_) => "run.services.getIamPolicy",
        PolicyTarget::Job(_) => "run.jobs.getIamPolicy",
        PolicyTarget::Queue(_) => "cloudtasks.queues.getIamPolicy",
        PolicyTarget::ServiceAccount(_) => "iam.serviceAccounts.getIamPolicy",
        PolicyTarget::Secret(_) => "secretmanager.secrets.getIamPolicy",
        PolicyTarget::Table(_) => "bigquery.tables.getIamPolicy",
    }
}

fn test_call(kind: Kind) -> &'static str {
    match kind {
        Kind::Queue => "cloudtasks.queues.testIamPermissions",
        Kind::Service => "run.services.testIamPermissions",
        Kind::Job => "run.jobs.testIamPermissions",
        Kind::Secret => "secretmanager.secrets.testIamPermissions",
        Kind::Repository => "artifactregistry.repositories.testIamPermissions",
        _ => "testIamPermissions",
    }
}

fn set_call(target: &PolicyTarget) -> &'static str {
    match target {
        PolicyTarget::Project(_) => "cloudresourcemanager.projects.setIamPolicy",
        PolicyTarget::Service(_) => "run.services.setIamPolicy",
        PolicyTarget::Job(_) => "run.jobs.setIamPolicy",
        PolicyTarget::Queue(_) => "cloudtasks.queues.setIamPolicy",
        PolicyTarget::ServiceAccount(_) => "iam.serviceAccounts.setIamPolicy",
        PolicyTarget::Secret(_) => "secretmanager.secrets.setIamPolicy",
        PolicyTarget::Table(_) => "bigquery.tables.setIamPolicy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_recognized_by_their_collection() {
        assert_eq!(
            PolicyTarget::from_resource("projects/p"),
            Some(PolicyTarget::Project("projects/p".into()))
        );
        assert!(matches!(
            PolicyTarget::from_resource("projects/p/locations/r/jobs/j"),
            Some(PolicyTarget::Job(_))
        ));
        assert!(matches!(
            PolicyTarget::from_resource("projects/p/serviceAccounts/a@p.iam.gserviceaccount.com"),
            Some(PolicyTarget::ServiceAccount(_))
        ));
        assert_eq!(
            PolicyTarget::from_resource("projects/p/datasets/d/tables/t"),
            Some(PolicyTarget::Table("projects/p/datasets/d/tables/t".into()))
        );
        assert_eq!(PolicyTarget::from_resource("buckets/x"), None);
    }

    #[test]
    fn only_unconditional_bindings_are_edited_and_conditions_survive() {
        let conditional = iam::Binding::new()
            .set_role("roles/x")
            .set_members(["user:a@example.com"])
            .set_condition(google_cloud_type::model::Expr::new().set_expression("true"));
        let plain = iam::Binding::new()
            .set_role("roles/x")
            .set_members(["user:b@example.com"]);
        let policy = iam::Policy::new()
            .set_bindings([conditional.clone(), plain])
            .set_etag(bytes::Bytes::from_static(b"\x01\x02\x03"));
        let mut record = policy_from_api(&policy);
        assert_eq!(record.etag, "AQID");
        assert!(record.has("roles/x", "user:b@example.com"));
        assert!(!record.has("roles/x", "user:a@example.com"));
        record.remove("roles/x", "user:b@example.com");
        record.add("roles/y", "user:c@example.com");
        let written = policy_onto(&record, policy);
        assert_eq!(written.bindings[0], conditional);
        assert_eq!(written.bindings[1].role, "roles/y");
        assert_eq!(written.bindings.len(), 2);
        assert_eq!(written.etag, bytes::Bytes::from_static(b"\x01\x02\x03"));
    }
}

//! Artifact Registry v1 repositories through `google-cloud-artifactregistry-v1`: list, create and
//! delete (long-running operations), update with a field mask; and a read-only list of the Docker
//! images a repository holds (for `stackctl audit`).

use std::collections::BTreeMap;
use std::time::Duration;

use google_cloud_artifactregistry_v1::model::{
    CleanupPolicy, CleanupPolicyCondition, CleanupPolicyMostRecentVersions, Repository,
    cleanup_policy::Action, cleanup_policy_condition::TagState, repository::Format,
};
use google_cloud_lro::Poller;
use google_cloud_wkt as wkt;
use serde::{Deserialize, Serialize};

use super::Cloud;
use super::error::{ApiError, NotFoundAsAnswer, RetryObserver};
use super::retry::{all_pages, retrying};
use super::run::OperationObserver;

pub use crate::model::live::artifacts::{DockerImageRecord, RepositoryRecord};

/// The id of the cleanup policy that keeps the most recent versions.
pub const KEEP_RECENT_POLICY: &str = "keep-recent";
/// The id of the cleanup policy that deletes old untagged versions.
pub const DELETE_UNTAGGED_POLICY: &str = "delete-untagged";

/// What stackctl writes on a repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepositoryWrite {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub keep_recent: Option<u32>,
    pub delete_untagged_after: Option<Duration>,
}

fn repository_from_api(r: Repository) -> RepositoryRecord {
    let keep_recent = r
        .cleanup_policies
        .get(KEEP_RECENT_POLICY)
        .and_then(|p| p.most_recent_versions())
        .and_then(|m| m.keep_count)
        .and_then(|n| u32::try_from(n).ok());
    let delete_untagged_after = r
        .cleanup_policies
        .get(DELETE_UNTAGGED_POLICY)
        .and_then(|p| p.condition())
        .and_then(|c| c.older_than)
        .and_then(|d| Duration::try_from(d).ok());
    let mut policies: Vec<String> = r.cleanup_policies.keys().cloned().collect();
    policies.sort();
    RepositoryRecord {
        name: r.name,
        format: r.format.name().unwrap_or("FORMAT_UNSPECIFIED").to_string(),
        labels: r.labels.into_iter().collect(),
        keep_recent,
        delete_untagged_after,
        policies,
    }
}

impl RepositoryWrite {
    fn policies(&self) -> Vec<(String, CleanupPolicy)> {
        let mut out = Vec::new();
        if let Some(n) = self.keep_recent {
            out.push((
                KEEP_RECENT_POLICY.to_string(),
                CleanupPolicy::new()
                    .set_id(KEEP_RECENT_POLICY)
                    .set_action(Action::Keep)
                    .set_most_recent_versions(
                        CleanupPolicyMostRecentVersions::new().set_keep_count(n as i32),
                    ),
            ));
        }
        if let Some(d) = self.delete_untagged_after {
            out.push((
                DELETE_UNTAGGED_POLICY.to_string(),
                CleanupPolicy::new()
                    .set_id(DELETE_UNTAGGED_POLICY)
                    .set_action(Action::Delete)
                    .set_condition(
                        CleanupPolicyCondition::new()
                            .set_tag_state(TagState::Untagged)
                            .set_or_clear_older_than(wkt::Duration::try_from(d).ok()),
                    ),
            ));
        }
        out
    }

    /// The repository; `existing` policies (not stackctl's) are kept on update.
    fn to_api(&self, existing: &Repository) -> Repository {
        let mut policies = existing.cleanup_policies.clone();
        policies.extend(self.policies());
        let mut labels = existing.labels.clone();
        labels.extend(self.labels.clone());
        Repository::new()
            .set_name(self.name.clone())
            .set_format(Format::Docker)
            .set_labels(labels)
            .set_cleanup_policies(policies)
    }

    fn parent_and_id(&self) -> (String, String) {
        match self.name.rsplit_once("/repositories/") {
            Some((parent, id)) => (parent.to_string(), id.to_string()),
            None => (String::new(), self.name.clone()),
        }
    }
}

impl Cloud {
    /// Repositories in `location` of the project.
    pub async fn list_repositories(
        &self,
        location: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<RepositoryRecord>, ApiError> {
        let parent = format!("projects/{}/locations/{location}", self.project);
        all_pages(|token| {
            let parent = parent.clone();
            async move {
                let page = retrying(self.backoff, observer, || async {
                    self.artifacts
                        .list_repositories()
                        .set_parent(&parent)
                        .set_page_token(&token)
                        .send()
                        .await
                        .map_err(|e| {
                            ApiError::from_gax("artifactregistry.repositories.list", &parent, &e)
                        })
                })
                .await?;
                let items = page.repositories.into_iter().map(repository_from_api);
                Ok((items.collect(), page.next_page_token))
            }
        })
        .await
    }

    /// Every Docker image (digest) in `repository`, read-only.
    pub async fn list_docker_images(
        &self,
        repository: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<DockerImageRecord>, ApiError> {
        all_pages(|token| async move {
            let page = retrying(self.backoff, observer, || async {
                self.artifacts
                    .list_docker_images()
                    .set_parent(repository)
                    .set_page_token(&token)
                    .send()
                    .await
                    .map_err(|e| {
                        ApiError::from_gax("artifactregistry.dockerImages.list", repository, &e)
                    })
            })
            .await?;
            let items = page.docker_images.into_iter().map(|i| DockerImageRecord {
                name: i.name,
                uri: i.uri,
                tags: i.tags,
                size_bytes: u64::try_from(i.image_size_bytes).unwrap_or(0),
            });
            Ok((items.collect(), page.next_page_token))
        })
        .await
    }

    async fn get_repository_api(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Option<Repository>, ApiError> {
        let got = retrying(self.backoff, observer, || async {
            self.artifacts
                .get_repository()
                .set_name(name)
                .send()
                .await
                .map_err(|e| ApiError::from_gax("artifactregistry.repositories.get", name, &e))
        })
        .await;
        got.not_found_as_none()
    }

    /// Creates a Docker repository (a long-running operation); one that exists is updated instead.
    pub async fn create_repository(
        &self,
        write: &RepositoryWrite,
        observer: &dyn OperationObserver,
    ) -> Result<RepositoryRecord, ApiError> {
        let (parent, id) = write.parent_and_id();
        let repository = write.to_api(&Repository::new());
        let created = retrying(self.backoff, observer, || async {
            observer.phase("waiting for the create operation");
            self.artifacts
                .create_repository()
                .set_parent(&parent)
                .set_repository_id(&id)
                .set_repository(repository.clone())
                .poller()
                .until_done()
                .await
                .map_err(|e| {
                    ApiError::from_gax("artifactregistry.repositories.create", &write.name, &e)
                })
        })
        .await;
        match created {
            Ok(r) => Ok(repository_from_api(r)),
            Err(e) if e.is_already_exists() => self.update_repository(write, observer).await,
            Err(e) => Err(e),
        }
    }

    /// The repository `name`; `None` when it does not exist.
    pub async fn get_repository(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Option<RepositoryRecord>, ApiError> {
        let got = self.get_repository_api(name, observer).await?;
        Ok(got.map(repository_from_api))
    }

    /// Writes labels and stackctl's cleanup policies; other labels and policies are kept.
    pub async fn update_repository(
        &self,
        write: &RepositoryWrite,
        observer: &dyn OperationObserver,
    ) -> Result<RepositoryRecord, ApiError> {
        self.patch_repository(write, &["labels", "cleanup_policies"], observer)
            .await
    }

    /// Adds `labels` to the repository (update mask `labels`); its other labels, its cleanup
    /// policies and everything else are kept.
    pub async fn label_repository(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        observer: &dyn OperationObserver,
    ) -> Result<RepositoryRecord, ApiError> {
        let write = RepositoryWrite {
            name: name.to_string(),
            labels: labels.clone(),
            keep_recent: None,
            delete_untagged_after: None,
        };
        self.patch_repository(&write, &["labels"], observer).await
    }

    /// `write` merged into the live repository, sent with the update mask `fields`.
    async fn patch_repository(
        &self,
        write: &RepositoryWrite,
        fields: &[&str],
        observer: &dyn OperationObserver,
    ) -> Result<RepositoryRecord, ApiError> {
        let existing = self
            .get_repository_api(&write.name, observer)
            .await?
            .unwrap_or_default();
        let mask = wkt::FieldMask::default().set_paths(fields.iter().map(|f| f.to_string()));
        let repository = write.to_api(&existing);
        retrying(self.backoff, observer, || async {
            self.artifacts
                .update_repository()
                .set_repository(repository.clone())
                .set_update_mask(mask.clone())
                .send()
                .await
                .map(repository_from_api)
                .map_err(|e| {
                    ApiError::from_gax("artifactregistry.repositories.patch", &write.name, &e)
                })
        })
        .await
    }

    pub async fn delete_repository(
        &self,
        name: &str,
        observer: &dyn OperationObserver,
    ) -> Result<(), ApiError> {
        let done = retrying(self.backoff, observer, || async {
            observer.phase("waiting for the delete operation");
            self.artifacts
                .delete_repository()
                .set_name(name)
                .poller()
                .until_done()
                .await
                .map_err(|e| ApiError::from_gax("artifactregistry.repositories.delete", name, &e))
        })
        .await;
        done.not_found_as_done()
    }
}

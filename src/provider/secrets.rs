//! Secret Manager v1 secrets through `google-cloud-secretmanager-v1`: list, create (automatic
//! replication), label patch, delete; and adding a version for `stackctl secret set` (the only
//! place stackctl writes a value; it never reads one).

use std::collections::BTreeMap;

use google_cloud_secretmanager_v1::model as gm;
use google_cloud_wkt as wkt;

use super::Cloud;
use super::error::{ApiError, NotFoundAsAnswer, RetryObserver};
use super::retry::{Created, all_pages, creating, retrying};

pub use crate::model::live::secrets::SecretRecord;

/// A secret's value read by stackctl itself: shown nowhere (`Debug` prints `<redacted>`),
/// never serialized.
#[derive(Clone)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one header that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

fn secret_from_api(s: gm::Secret) -> SecretRecord {
    SecretRecord {
        automatic_replication: s.replication.as_ref().and_then(|r| r.automatic()).is_some(),
        name: s.name,
        labels: s.labels.into_iter().collect(),
        etag: s.etag,
    }
}

/// Normalizes `projects/NUMBER/secrets/ID` (what Secret Manager answers) to the project id.
fn with_project_id(mut record: SecretRecord, project: &str) -> SecretRecord {
    if let Some(id) = record.name.rsplit('/').next() {
        record.name = format!("projects/{project}/secrets/{id}");
    }
    record
}

impl Cloud {
    /// Adds a version holding `value` to secret `id`; returns the version's name. Not retried: a
    /// retry after a lost answer could add the value twice.
    pub async fn add_secret_version(&self, id: &str, value: Vec<u8>) -> Result<String, ApiError> {
        let parent = format!("projects/{}/secrets/{id}", self.project);
        let version = self
            .secrets
            .add_secret_version()
            .set_parent(&parent)
            .set_payload(gm::SecretPayload::new().set_data(value))
            .send()
            .await
            .map_err(|e| ApiError::from_gax("secretmanager.secrets.addVersion", &parent, &e))?;
        Ok(version.name)
    }

    /// The latest enabled value of secret `id` (`accessSecretVersion` on `latest`), for the
    /// credentials stackctl itself needs (the Shopify access token); the caller never prints,
    /// logs or stores it. `None` when the secret or an enabled version does not exist.
    pub async fn access_secret_value(&self, id: &str) -> Result<Option<SecretValue>, ApiError> {
        let name = format!("projects/{}/secrets/{id}/versions/latest", self.project);
        let answer = retrying(self.backoff, &super::Silent, || async {
            self.secrets
                .access_secret_version()
                .set_name(&name)
                .send()
                .await
                .map_err(|e| ApiError::from_gax("secretmanager.versions.access", &name, &e))
        })
        .await;
        match answer {
            Ok(response) => {
                let data = response.payload.map(|p| p.data).unwrap_or_default();
                let text = String::from_utf8(data.to_vec()).map_err(|_| {
                    ApiError::new(
                        "secretmanager.versions.access",
                        &name,
                        None,
                        Some("INVALID_ARGUMENT".into()),
                        "the secret's value is not UTF-8 text",
                    )
                })?;
                Ok(Some(SecretValue(text.trim().to_string())))
            }
            // No version yet, or every version disabled or destroyed.
            Err(e) if e.is_not_found() || e.code.as_deref() == Some("FAILED_PRECONDITION") => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether secret `id` has an enabled version (what Cloud Run needs to start a revision that
    /// reads it); `None` when the secret does not exist (yet).
    pub async fn secret_has_enabled_version(&self, id: &str) -> Result<Option<bool>, ApiError> {
        let parent = format!("projects/{}/secrets/{id}", self.project);
        let mut token = String::new();
        loop {
            let page = retrying(self.backoff, &super::Silent, || async {
                self.secrets
                    .list_secret_versions()
                    .set_parent(&parent)
                    .set_page_size(100)
                    .set_page_token(&token)
                    .send()
                    .await
                    .map_err(|e| {
                        ApiError::from_gax("secretmanager.secrets.versions.list", &parent, &e)
                    })
            })
            .await;
            let page = match page {
                Ok(page) => page,
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(e),
            };
            if page
                .versions
                .iter()
                .any(|v| v.state == gm::secret_version::State::Enabled)
            {
                return Ok(Some(true));
            }
            if page.next_page_token.is_empty() {
                return Ok(Some(false));
            }
            token = page.next_page_token;
        }
    }

    /// Every secret of the project: one paged list call per page.
    pub async fn list_secrets(
        &self,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<SecretRecord>, ApiError> {
        let parent = format!("projects/{}", self.project);
        all_pages(|token| {
            let parent = parent.clone();
            async move {
                let page = retrying(self.backoff, observer, || async {
                    self.secrets
                        .list_secrets()
                        .set_parent(&parent)
                        .set_page_token(&token)
                        .send()
                        .await
                        .map_err(|e| ApiError::from_gax("secretmanager.secrets.list", &parent, &e))
                })
                .await?;
                let items = page
                    .secrets
                    .into_iter()
                    .map(|s| with_project_id(secret_from_api(s), &self.project));
                Ok((items.collect(), page.next_page_token))
            }
        })
        .await
    }

    /// Creates the secret (no version: its value is added by people, never by stackctl); one
    /// already there is answered as [`Created::Exists`] for the caller to judge.
    pub async fn create_secret(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        observer: &dyn RetryObserver,
    ) -> Result<Created<SecretRecord>, ApiError> {
        let parent = format!("projects/{}", self.project);
        let id = name.rsplit('/').next().unwrap_or_default().to_string();
        let secret = gm::Secret::new()
            .set_replication(
                gm::Replication::new().set_automatic(gm::replication::Automatic::new()),
            )
            .set_labels(labels.clone());
        let created = creating(self.backoff, observer, || async {
            self.secrets
                .create_secret()
                .set_parent(&parent)
                .set_secret_id(&id)
                .set_secret(secret.clone())
                .send()
                .await
                .map_err(|e| ApiError::from_gax("secretmanager.secrets.create", name, &e))
        })
        .await;
        Ok(created?.map(|s| with_project_id(secret_from_api(s), &self.project)))
    }

    /// Sets `labels` on the secret, keeping labels others put there (read-modify-write).
    pub async fn label_secret(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        observer: &dyn RetryObserver,
    ) -> Result<SecretRecord, ApiError> {
        let mask = wkt::FieldMask::default().set_paths(["labels".to_string()]);
        retrying(self.backoff, observer, || async {
            let mut live = self
                .secrets
                .get_secret()
                .set_name(name)
                .send()
                .await
                .map_err(|e| ApiError::from_gax("secretmanager.secrets.get", name, &e))?;
            live.labels.extend(labels.clone());
            self.secrets
                .update_secret()
                .set_secret(live)
                .set_update_mask(mask.clone())
                .send()
                .await
                .map(|s| with_project_id(secret_from_api(s), &self.project))
                .map_err(|e| ApiError::from_gax("secretmanager.secrets.patch", name, &e))
        })
        .await
    }

    /// Deletes the secret with every version; already gone counts as done.
    pub async fn delete_secret(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<(), ApiError> {
        let deleted = retrying(self.backoff, observer, || async {
            self.secrets
                .delete_secret()
                .set_name(name)
                .send()
                .await
                .map_err(|e| ApiError::from_gax("secretmanager.secrets.delete", name, &e))
        })
        .await;
        deleted.not_found_as_done()
    }

    pub async fn get_secret(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Option<SecretRecord>, ApiError> {
        let got = retrying(self.backoff, observer, || async {
            self.secrets
                .get_secret()
                .set_name(name)
                .send()
                .await
                .map_err(|e| ApiError::from_gax("secretmanager.secrets.get", name, &e))
        })
        .await;
        got.map(|s| with_project_id(secret_from_api(s), &self.project))
            .not_found_as_none()
    }
}

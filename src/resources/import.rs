//! What `stackctl import` writes: the stack.toml stanza (and a table's schema file) that
//! declares a live resource exactly as it is, so the plan for it is empty and adopt can take it.
//!
//! References between resources are written as references (`target = "service.api"`,
//! `service_account = "service_account.runner"`, `secrets = { K = "secret.key" }`) when the
//! resource referred to is declared or imported in the same run; otherwise the stanza cannot be
//! written and the error names what to import with it.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::units::format_duration;
use crate::model::live::artifacts::RepositoryRecord;
use crate::model::live::bigquery::{DatasetRecord, FieldRecord, TableRecord};
use crate::model::live::firestore::FirestoreRecord;
use crate::model::live::iam::ServiceAccountRecord;
use crate::model::live::jobs::JobRecord;
use crate::model::live::run::{SecretEnvRef, ServiceRecord};
use crate::model::live::scheduler::ScheduleRecord;
use crate::model::live::secrets::SecretRecord;
use crate::model::live::tasks::QueueRecord;
use crate::model::{Kind, ResourceAddr};

/// One `[kind.NAME]` table and the files it refers to.
#[derive(Debug, Clone, PartialEq)]
pub struct Stanza {
    pub address: ResourceAddr,
    /// The live resource's full name.
    pub name: String,
    /// `key = value` lines in order, values already TOML.
    pub keys: Vec<(String, String)>,
    /// Files to write beside stack.toml (a table's schema), relative path and contents.
    pub files: Vec<(String, String)>,
}

impl Stanza {
    fn new(address: ResourceAddr, name: &str) -> Self {
        Self {
            address,
            name: name.to_string(),
            keys: Vec::new(),
            files: Vec::new(),
        }
    }

    fn key(&mut self, key: &str, value: String) -> &mut Self {
        self.keys.push((key.to_string(), value));
        self
    }

    /// The TOML text of the table, with a comment naming where it came from.
    pub fn render(&self) -> String {
        let mut out = format!(
            "[{}]                # imported from {}\n",
            self.address, self.name
        );
        for (key, value) in &self.keys {
            out.push_str(&format!("{key} = {value}\n"));
        }
        out
    }
}

/// A TOML string.
fn string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn duration(d: Duration) -> String {
    string(&format_duration(d))
}

/// `{ K = "v", ... }` with keys quoted when they need it.
fn inline_table(entries: impl IntoIterator<Item = (String, String)>) -> String {
    let body: Vec<String> = entries
        .into_iter()
        .map(|(k, v)| {
            let key = if k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                k
            } else {
                string(&k)
            };
            format!("{key} = {v}")
        })
        .collect();
    format!("{{ {} }}", body.join(", "))
}

/// Why a stanza cannot be written.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ImportError {
    #[error(
        "{address}: {what} is not declared in stack.toml nor imported with it; import it too (`stackctl import {suggest} {address}`) or declare it first"
    )]
    MissingReference {
        address: ResourceAddr,
        what: String,
        suggest: String,
    },
    #[error("{address}: {why}")]
    Unsupported { address: ResourceAddr, why: String },
}

/// How the stanzas of one run refer to other resources: by the names stack.toml gives them.
#[derive(Debug, Clone, Default)]
pub struct References {
    /// Service account email -> `service_account.NAME`.
    pub accounts: BTreeMap<String, ResourceAddr>,
    /// Secret id -> `secret.NAME`.
    pub secrets: BTreeMap<String, ResourceAddr>,
    /// Service host (`x-uc.a.run.app`) -> `service.NAME`.
    pub service_hosts: BTreeMap<String, ResourceAddr>,
    /// Cloud Run job full name -> `job.NAME`.
    pub jobs: BTreeMap<String, ResourceAddr>,
    /// BigQuery dataset id -> `dataset.NAME`.
    pub datasets: BTreeMap<String, ResourceAddr>,
}

impl References {
    fn account(&self, address: &ResourceAddr, email: &str) -> Result<String, ImportError> {
        self.accounts
            .get(email)
            .map(|a| string(&a.to_string()))
            .ok_or_else(|| ImportError::MissingReference {
                address: address.clone(),
                what: format!("the service account {email}"),
                suggest: format!(
                    "service_account.{}",
                    email.split('@').next().unwrap_or(email)
                ),
            })
    }

    fn secret_env(
        &self,
        address: &ResourceAddr,
        secrets: &BTreeMap<String, SecretEnvRef>,
    ) -> Result<Option<String>, ImportError> {
        if secrets.is_empty() {
            return Ok(None);
        }
        let mut entries = Vec::new();
        for (env, reference) in secrets {
            let id = reference.secret.rsplit('/').next().unwrap_or_default();
            if reference.version != "latest" {
                return Err(ImportError::Unsupported {
                    address: address.clone(),
                    why: format!(
                        "the env var {env} reads version {} of secret {id}; stack.toml's secrets read `latest`: point it at latest first",
                        reference.version
                    ),
                });
            }
            let secret = self
                .secrets
                .get(id)
                .ok_or_else(|| ImportError::MissingReference {
                    address: address.clone(),
                    what: format!("the secret {id}"),
                    suggest: format!("secret.{id}"),
                })?;
            entries.push((env.clone(), string(&secret.to_string())));
        }
        Ok(Some(inline_table(entries)))
    }
}

/// The id that ends a full resource name.
pub(crate) fn last(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

fn plain_env(env: &BTreeMap<String, String>) -> Option<String> {
    (!env.is_empty()).then(|| inline_table(env.iter().map(|(k, v)| (k.clone(), string(v)))))
}

/// A container's `cpu` and `memory` limits as Cloud Run reports them.
fn limits(s: &mut Stanza, limits: &BTreeMap<String, String>) {
    for key in ["cpu", "memory"] {
        if let Some(value) = limits.get(key) {
            s.key(key, string(value));
        }
    }
}

/// A container's plain `env` and its secret-backed `secrets`, by reference.
fn env_and_secrets(
    s: &mut Stanza,
    address: &ResourceAddr,
    refs: &References,
    env: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, SecretEnvRef>,
) -> Result<(), ImportError> {
    if let Some(env) = plain_env(env) {
        s.key("env", env);
    }
    if let Some(secrets) = refs.secret_env(address, secrets)? {
        s.key("secrets", secrets);
    }
    Ok(())
}

pub fn service_account(live: &ServiceAccountRecord) -> Stanza {
    let id = live.email.split('@').next().unwrap_or_default();
    let mut s = Stanza::new(ResourceAddr::new(Kind::ServiceAccount, id), &live.name);
    if !live.display_name.is_empty() {
        s.key("display_name", string(&live.display_name));
    }
    if !live.description.is_empty() {
        s.key("description", string(&live.description));
    }
    s
}

pub fn secret(live: &SecretRecord) -> Stanza {
    Stanza::new(
        ResourceAddr::new(Kind::Secret, last(&live.name)),
        &live.name,
    )
}

pub fn queue(live: &QueueRecord, refs: &References) -> Result<Stanza, ImportError> {
    let address = ResourceAddr::new(Kind::Queue, last(&live.name));
    let mut s = Stanza::new(address.clone(), &live.name);
    if let Some(target) = &live.http_target {
        let service =
            refs.service_hosts
                .get(&target.host)
                .ok_or_else(|| ImportError::MissingReference {
                    address: address.clone(),
                    what: format!("the Cloud Run service at {}", target.host),
                    suggest: "service.NAME".into(),
                })?;
        s.key("target", string(&service.to_string()));
        if let Some(path) = &target.path {
            s.key("path", string(path));
        }
        if let Some(oidc) = &target.oidc {
            s.key(
                "oidc_service_account",
                refs.account(&address, &oidc.service_account_email)?,
            );
        }
    }
    s.key(
        "max_dispatches_per_second",
        format!("{}", live.max_dispatches_per_second),
    );
    s.key(
        "max_concurrent_dispatches",
        live.max_concurrent_dispatches.to_string(),
    );
    s.key("max_attempts", live.max_attempts.to_string());
    if let Some(d) = live.min_backoff {
        s.key("min_backoff", duration(d));
    }
    if let Some(d) = live.max_backoff {
        s.key("max_backoff", duration(d));
    }
    s.key("max_doublings", live.max_doublings.to_string());
    if let Some(d) = live.max_retry_duration.filter(|d| !d.is_zero()) {
        s.key("max_retry_duration", duration(d));
    }
    Ok(s)
}

pub fn service(live: &ServiceRecord, refs: &References) -> Result<Stanza, ImportError> {
    let address = ResourceAddr::new(Kind::Service, last(&live.name));
    let mut s = Stanza::new(address.clone(), &live.name);
    s.key("image", string(&live.image));
    s.key("min_instances", live.min_instances.to_string());
    let max = live.service_max_instances.max(live.max_instances);
    if max <= 0 {
        return Err(ImportError::Unsupported {
            address,
            why: "it has no max instances (uncapped spend), and stack.toml requires one: set one with `gcloud run services update --max-instances N`, then import it".into(),
        });
    }
    s.key("max_instances", max.to_string());
    if live.concurrency > 0 {
        s.key("concurrency", live.concurrency.to_string());
    }
    limits(&mut s, &live.limits);
    s.key("cpu_idle", live.cpu_idle.to_string());
    if live.public {
        s.key("public", "true".into());
    }
    if let Some(t) = live.timeout {
        s.key("timeout", duration(t));
    }
    // An unspecified or `none` ingress has no stack.toml form: it stays undeclared.
    use crate::model::live::run::IngressKind;
    if !matches!(live.ingress, IngressKind::Unspecified | IngressKind::None) {
        s.key(
            "ingress",
            string(super::service::live_ingress(live.ingress)),
        );
    }
    if !live.service_account.is_empty() {
        s.key(
            "service_account",
            refs.account(&address, &live.service_account)?,
        );
    }
    env_and_secrets(&mut s, &address, refs, &live.env, &live.secret_env)?;
    Ok(s)
}

pub fn job(live: &JobRecord, refs: &References) -> Result<Stanza, ImportError> {
    let address = ResourceAddr::new(Kind::Job, last(&live.name));
    let mut s = Stanza::new(address.clone(), &live.name);
    s.key("image", string(&live.image));
    limits(&mut s, &live.limits);
    if let Some(t) = live.task_timeout.filter(|t| !t.is_zero()) {
        s.key("task_timeout", duration(t));
    }
    if let Some(retries) = live.max_retries {
        s.key("max_retries", retries.to_string());
    }
    if live.parallelism > 0 {
        s.key("parallelism", live.parallelism.to_string());
    }
    if live.task_count > 0 {
        s.key("task_count", live.task_count.to_string());
    }
    if !live.service_account.is_empty() {
        s.key(
            "service_account",
            refs.account(&address, &live.service_account)?,
        );
    }
    env_and_secrets(&mut s, &address, refs, &live.env, &live.secret_env)?;
    Ok(s)
}

pub fn schedule(live: &ScheduleRecord, refs: &References) -> Result<Stanza, ImportError> {
    let address = ResourceAddr::new(Kind::Schedule, last(&live.name));
    let mut s = Stanza::new(address.clone(), &live.name);
    let job = live
        .uri
        .as_deref()
        .and_then(super::schedule::job_of_run_uri)
        .ok_or_else(|| ImportError::Unsupported {
            address: address.clone(),
            why: "stack.toml's schedules run Cloud Run jobs; this one calls another target (declare it by hand if stackctl should own it)".into(),
        })?;
    let job_address = refs
        .jobs
        .get(job)
        .ok_or_else(|| ImportError::MissingReference {
            address: address.clone(),
            what: format!("the Cloud Run job {job}"),
            suggest: format!("job.{}", last(job)),
        })?;
    s.key("job", string(&job_address.to_string()));
    s.key("cron", string(&live.schedule));
    s.key("time_zone", string(&live.time_zone));
    s.key(
        "service_account",
        refs.account(&address, &live.oauth_service_account)?,
    );
    Ok(s)
}

pub fn dataset(live: &DatasetRecord) -> Stanza {
    let mut s = Stanza::new(
        ResourceAddr::new(Kind::Dataset, &live.dataset_id),
        &live.name,
    );
    s.key("location", string(&live.location));
    if let Some(d) = live.default_partition_expiration {
        s.key("default_partition_expiration", duration(d));
    }
    if let Some(d) = live.default_table_expiration {
        s.key("default_table_expiration", duration(d));
    }
    // A dataset made by hand has no protection label: stackctl treats it as protected.
    let protected = live
        .labels
        .get(super::dataset::PROTECTION_LABEL)
        .map(String::as_str)
        != Some("false");
    s.key("deletion_protection", protected.to_string());
    s
}

pub fn table(live: &TableRecord, refs: &References) -> Result<Stanza, ImportError> {
    let address = ResourceAddr::new(Kind::Table, &live.table_id);
    let mut s = Stanza::new(address.clone(), &live.name);
    if live.view.is_some() || !matches!(live.kind.as_str(), "" | "TABLE") {
        return Err(ImportError::Unsupported {
            address,
            why: format!(
                "import writes plain tables; this one is a {} (declare it by hand, then adopt it)",
                live.kind
            ),
        });
    }
    let dataset =
        refs.datasets
            .get(&live.dataset_id)
            .ok_or_else(|| ImportError::MissingReference {
                address: address.clone(),
                what: format!("the dataset {}", live.dataset_id),
                suggest: format!("dataset.{}", live.dataset_id),
            })?;
    s.key("dataset", string(&dataset.to_string()));
    let schema_path = format!("schemas/{}.json", live.table_id);
    s.key("schema", string(&schema_path));
    let schema: Vec<&FieldRecord> = live.columns.iter().collect();
    let json = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.files.push((schema_path, format!("{json}\n")));
    if let Some(partition) = &live.partition {
        let Some(field) = &partition.field else {
            return Err(ImportError::Unsupported {
                address,
                why: "it is partitioned by ingestion time, which stack.toml does not declare (partition by a column instead)".into(),
            });
        };
        let mut entries = vec![
            ("field".to_string(), string(field)),
            ("granularity".to_string(), string(&partition.granularity)),
        ];
        if let Some(e) = partition.expiration {
            entries.push(("expiration".into(), duration(e)));
        }
        s.key("partition", inline_table(entries));
    }
    if !live.cluster_by.is_empty() {
        let columns: Vec<String> = live.cluster_by.iter().map(|c| string(c)).collect();
        s.key("cluster_by", format!("[{}]", columns.join(", ")));
    }
    if live.require_partition_filter {
        s.key("require_partition_filter", "true".into());
    }
    Ok(s)
}

/// A Docker repository: its location and the two cleanup policies stackctl manages (others
/// are left as they are).
pub fn repository(live: &RepositoryRecord) -> Stanza {
    let mut s = Stanza::new(
        ResourceAddr::new(Kind::Repository, last(&live.name)),
        &live.name,
    );
    let location = live
        .name
        .split("/locations/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    s.key("location", string(location));
    if let Some(n) = live.keep_recent {
        s.key("keep_recent", n.to_string());
    }
    if let Some(d) = live.delete_untagged_after {
        s.key("delete_untagged_after", duration(d));
    }
    s
}

pub fn firestore(live: &FirestoreRecord) -> Stanza {
    let id = live.database_id();
    let name = if id == "(default)" { "default" } else { id };
    let mut s = Stanza::new(ResourceAddr::new(Kind::Firestore, name), &live.name);
    if name != id {
        s.key("id", string(id));
    }
    s.key("location", string(&live.location));
    let mode = if live.database_type == "DATASTORE_MODE" {
        "datastore"
    } else {
        "native"
    };
    s.key("mode", string(mode));
    let ttl: Vec<String> = live.ttl.iter().map(|t| string(&t.to_string())).collect();
    if !ttl.is_empty() {
        s.key("ttl", format!("[{}]", ttl.join(", ")));
    }
    s.key("deletion_protection", live.delete_protection.to_string());
    s.key(
        "point_in_time_recovery",
        live.point_in_time_recovery.to_string(),
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::live::tasks::{HttpTargetRecord, OidcRecord, QueueState};

    #[test]
    fn a_queue_refers_to_its_service_and_identity_by_address() {
        let live = QueueRecord {
            name: "projects/p/locations/r/queues/webhooks".into(),
            state: QueueState::Running,
            max_dispatches_per_second: 50.0,
            max_concurrent_dispatches: 100,
            max_attempts: 10,
            min_backoff: Some(Duration::from_secs(1)),
            max_backoff: Some(Duration::from_secs(300)),
            max_doublings: 16,
            max_retry_duration: None,
            http_target: Some(HttpTargetRecord {
                host: "worker-abc-uc.a.run.app".into(),
                path: Some("/tasks".into()),
                oidc: Some(OidcRecord {
                    service_account_email: "tasks@p.iam.gserviceaccount.com".into(),
                    audience: "https://worker-abc-uc.a.run.app".into(),
                }),
            }),
        };
        let mut refs = References::default();
        assert!(matches!(
            queue(&live, &refs),
            Err(ImportError::MissingReference { .. })
        ));
        refs.service_hosts.insert(
            "worker-abc-uc.a.run.app".into(),
            ResourceAddr::new(Kind::Service, "worker"),
        );
        refs.accounts.insert(
            "tasks@p.iam.gserviceaccount.com".into(),
            ResourceAddr::new(Kind::ServiceAccount, "tasks"),
        );
        let text = queue(&live, &refs).expect("stanza").render();
        assert!(text.starts_with("[queue.webhooks]"), "{text}");
        for line in [
            "target = \"service.worker\"",
            "path = \"/tasks\"",
            "oidc_service_account = \"service_account.tasks\"",
            "max_dispatches_per_second = 50",
            "min_backoff = \"1s\"",
            "max_backoff = \"5m\"",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
    }
}

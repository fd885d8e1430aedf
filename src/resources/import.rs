//! What `stackctl import` writes: the stack.toml stanza (and a table's schema file) that
//! declares a live resource exactly as it is, so the plan for it is empty and adopt can take it.
//!
//! References between resources are written as references (`target = "service.api"`,
//! `service_account = "service_account.runner"`, `secrets = { K = "secret.key" }`) when the
//! resource referred to is declared or imported in the same run; otherwise the stanza cannot be
//! written and the error names what to import with it. The notification channels of an alert
//! policy or a budget are the exception: one that cannot be referred to is left out of `notify`
//! with a comment line saying so, and the stanza then differs from the live resource.
//!
//! Channels, uptime checks, alert policies, dashboards, API keys and budgets are named by their
//! display names (their ids are the server's, or free-form): their stanza
//! NAME is made from the display name ([`name_from_display_name`], [`unique_name`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::config::units::format_duration;
use crate::model::live::artifacts::RepositoryRecord;
use crate::model::live::bigquery::{DatasetRecord, FieldRecord, TableRecord};
use crate::model::live::budgets::BudgetRecord;
use crate::model::live::firestore::FirestoreRecord;
use crate::model::live::gateway::{ApiKeyRecord, GatewayRecord};
use crate::model::live::iam::ServiceAccountRecord;
use crate::model::live::jobs::JobRecord;
use crate::model::live::monitoring::{AlertRecord, ChannelRecord, ConditionRecord, UptimeRecord};
use crate::model::live::run::{SecretEnvRef, ServiceRecord};
use crate::model::live::scheduler::ScheduleRecord;
use crate::model::live::secrets::SecretRecord;
use crate::model::live::tasks::QueueRecord;
use crate::model::{Kind, ResourceAddr};
use crate::provider::dashboards::DashboardRecord;

/// One `[kind.NAME]` table and the files it refers to.
#[derive(Debug, Clone, PartialEq)]
pub struct Stanza {
    pub address: ResourceAddr,
    /// The live resource's full name.
    pub name: String,
    /// The table's lines in order.
    pub lines: Vec<Line>,
    /// Files to write beside stack.toml (a table's schema), relative path and contents.
    pub files: Vec<(String, String)>,
}

/// One line of a stanza.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// `key = value`, the value already TOML.
    Key(String, String),
    /// `# text`: what the reader must know, such as a reference the stanza leaves out.
    Comment(String),
}

impl Stanza {
    fn new(address: ResourceAddr, name: &str) -> Self {
        Self {
            address,
            name: name.to_string(),
            lines: Vec::new(),
            files: Vec::new(),
        }
    }

    fn key(&mut self, key: &str, value: String) -> &mut Self {
        self.lines.push(Line::Key(key.to_string(), value));
        self
    }

    fn comment(&mut self, text: String) -> &mut Self {
        self.lines.push(Line::Comment(text));
        self
    }

    /// The TOML text of the table, with a comment naming where it came from.
    pub fn render(&self) -> String {
        let mut out = format!(
            "[{}]                # imported from {}\n",
            self.address, self.name
        );
        for line in &self.lines {
            match line {
                Line::Key(key, value) => out.push_str(&format!("{key} = {value}\n")),
                Line::Comment(text) => out.push_str(&format!("# {text}\n")),
            }
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

/// A TOML number: an integer when it is one (`1000`), else a float (`0.05`).
fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x}")
    } else {
        toml::Value::Float(x).to_string()
    }
}

/// `["a", "b"]`.
fn strings(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| string(i)).collect();
    format!("[{}]", quoted.join(", "))
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
    /// The other hosts a service answers on (`x-NUMBER.REGION.run.app`) -> `service.NAME`.
    pub service_alternate_hosts: BTreeMap<String, ResourceAddr>,
    /// Cloud Run job full name -> `job.NAME`.
    pub jobs: BTreeMap<String, ResourceAddr>,
    /// BigQuery dataset id -> `dataset.NAME`.
    pub datasets: BTreeMap<String, ResourceAddr>,
    /// Notification channel full name -> `channel.NAME`.
    pub channels: BTreeMap<String, ResourceAddr>,
    /// A gateway's api's managed service (`crm-x.apigateway.P.cloud.goog`) -> `gateway.NAME`.
    pub gateway_services: BTreeMap<String, ResourceAddr>,
}

impl References {
    /// Refers to the live service `live` as `address`, by each host it answers on.
    pub fn add_service(&mut self, live: &ServiceRecord, address: &ResourceAddr) {
        use crate::resources::service::host_of;
        let primary = host_of(&live.uri);
        if let Some(host) = &primary {
            self.service_hosts.insert(host.clone(), address.clone());
        }
        for host in live.urls.iter().filter_map(|url| host_of(url)) {
            if Some(&host) != primary.as_ref() {
                self.service_alternate_hosts.insert(host, address.clone());
            }
        }
    }

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

    /// `notify = [...]` with the channels of `channels` this run can refer to, and a comment line
    /// for each other one: the stanza then differs from the live resource in `notify`, so it is
    /// not adopted until the channel is declared and added.
    fn notify(&self, s: &mut Stanza, channels: &[String]) {
        let mut referred = Vec::new();
        for channel in channels {
            match self.channels.get(channel) {
                Some(address) => referred.push(address.to_string()),
                None => {
                    s.comment(format!(
                        "notify leaves out {channel}: no [channel] stanza declares or imports it; declare it, then add it here"
                    ));
                }
            }
        }
        if !referred.is_empty() {
            s.key("notify", strings(&referred));
        }
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
        s.key("cluster_by", strings(&live.cluster_by));
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
    let ttl: Vec<String> = live.ttl.iter().map(ToString::to_string).collect();
    if !ttl.is_empty() {
        s.key("ttl", strings(&ttl));
    }
    s.key("deletion_protection", live.delete_protection.to_string());
    s.key(
        "point_in_time_recovery",
        live.point_in_time_recovery.to_string(),
    );
    s
}

/// The longest label value: stanza names of server-assigned kinds are label values.
const MAX_LABEL_VALUE: usize = 63;

/// The stanza NAME of a resource whose id the server assigns, from its display name: lowercase
/// letters, digits and `-` (every other character becomes `-`), starting with a letter (else
/// prefixed with the kind), at most 63 characters; stackctl finds it again by this name as a
/// label value.
pub fn name_from_display_name(display_name: &str, kind: Kind) -> String {
    let mut name = String::new();
    for c in display_name.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if !(c == '-' && (name.is_empty() || name.ends_with('-'))) {
            name.push(c);
        }
    }
    let name = name.trim_end_matches('-');
    let name = match name.chars().next() {
        None => kind.to_string(),
        Some(c) if c.is_ascii_lowercase() => name.to_string(),
        Some(_) => format!("{kind}-{name}"),
    };
    truncated(&name, MAX_LABEL_VALUE).to_string()
}

/// `base`, else the first of `base-2`, `base-3`, ... that `taken` does not hold, each at most 63
/// characters.
pub fn unique_name(base: &str, taken: &BTreeSet<String>) -> String {
    if !taken.contains(base) {
        return base.to_string();
    }
    (2..)
        .map(|n| {
            let suffix = format!("-{n}");
            let stem = truncated(base, MAX_LABEL_VALUE - suffix.len());
            format!("{stem}{suffix}")
        })
        .find(|name| !taken.contains(name))
        .unwrap_or_default()
}

/// `name` cut to `max` characters (all ASCII here), without a trailing `-`.
fn truncated(name: &str, max: usize) -> &str {
    name[..name.len().min(max)].trim_end_matches('-')
}

/// `display_name = "..."` unless it is the NAME, which is the default.
fn display_name(s: &mut Stanza, name: &str, display_name: &str) {
    if display_name != name {
        s.key("display_name", string(display_name));
    }
}

/// A channel with its plain labels. One that carries a sensitive label (Slack's `auth_token`,
/// PagerDuty's `service_key`, a basic-auth webhook's `password`) is not written: Google returns
/// that label masked, so the error says what to declare by hand instead.
pub fn channel(live: &ChannelRecord, name: &str) -> Result<Stanza, ImportError> {
    let address = ResourceAddr::new(Kind::Channel, name);
    let Some(declared) = crate::config::channel_type(&live.kind) else {
        return Err(ImportError::Unsupported {
            address,
            why: format!(
                "it is a {} channel, and stack.toml's channel types are {}",
                live.kind,
                crate::config::channel_type_names()
            ),
        });
    };
    let mut s = Stanza::new(address.clone(), &live.name);
    s.key("type", string(declared.name));
    for (key, label, _) in declared.plain {
        if let Some(value) = live.labels.get(*label) {
            s.key(key, string(value));
        }
    }
    display_name(&mut s, name, &live.display_name);
    // A token-auth webhook carries its token in the URL; every other type with a secret key
    // has the sensitive label.
    if let Some((key, _)) = declared.secret.filter(|_| live.kind != "webhook_tokenauth") {
        let keys: Vec<String> = s
            .lines
            .iter()
            .filter_map(|line| match line {
                Line::Key(k, v) => Some(format!("{k} = {v}")),
                Line::Comment(_) => None,
            })
            .collect();
        return Err(ImportError::Unsupported {
            address: address.clone(),
            why: format!(
                "its {key} is sensitive: Google never returns it, so import cannot write it. Declare it by hand as [{address}] with {}, {key} = \"secret.NAME\" (a [secret.NAME] that holds it: `stackctl secret set NAME`), then run `stackctl adopt {address}`",
                keys.join(", ")
            ),
        });
    }
    Ok(s)
}

/// A dashboard as its own JSON file (`dashboards/NAME.json`: the layout, filters and labels as
/// Google returns them, less its name, etag and display name, which the stanza holds), whatever
/// it charts: stackctl's templates only make new ones.
pub fn dashboard(live: &DashboardRecord, name: &str) -> Stanza {
    let address = ResourceAddr::new(Kind::Dashboard, name);
    let mut document = live.body.clone();
    if let Some(map) = document.as_object_mut() {
        for server_held in ["name", "etag", "displayName"] {
            map.remove(server_held);
        }
        if let Some(labels) = map
            .get_mut("labels")
            .and_then(serde_json::Value::as_object_mut)
        {
            labels.remove(crate::resources::OWNER_LABEL);
            labels.remove(crate::resources::NAME_LABEL);
        }
        if map
            .get("labels")
            .and_then(serde_json::Value::as_object)
            .is_some_and(serde_json::Map::is_empty)
        {
            map.remove("labels");
        }
    }
    let path = format!("dashboards/{name}.json");
    let mut text = serde_json::to_string_pretty(&document).expect("a JSON value serializes");
    text.push('\n');
    let mut s = Stanza::new(address, &live.name);
    // Always written: a dashboard's default display name is `<stack> NAME`.
    s.key("display_name", string(&live.display_name));
    s.key("file", string(&path));
    s.files.push((path, text));
    s
}

/// An API Gateway whose api has its id and whose config holds one JSON OpenAPI document with a
/// top-level `x-google-backend` at a Cloud Run service declared or imported with it: `backend`,
/// `service_account` and `openapi = "gateways/ID.json"`, the document with the backend's URL
/// written as `${BACKEND_URL}` (apply fills it in again).
pub fn gateway(
    live: &GatewayRecord,
    region: &str,
    refs: &References,
) -> Result<Stanza, ImportError> {
    let id = last(&live.name);
    let address = ResourceAddr::new(Kind::Gateway, id);
    let unsupported = |why: String| ImportError::Unsupported {
        address: address.clone(),
        why,
    };
    let location = live.name.split('/').nth(3).unwrap_or_default();
    if location != region {
        return Err(unsupported(format!(
            "it serves in {location}, and the stack's gateways serve in [stack] region {region}"
        )));
    }
    let api = live
        .api_config
        .split("/configs/")
        .next()
        .unwrap_or_default();
    if last(api) != id {
        return Err(unsupported(format!(
            "its api is {api}, and stackctl names a gateway's api after the gateway (apis/{id}): declare a new [gateway.{id}] and move clients to it"
        )));
    }
    let Some(config) = &live.config else {
        return Err(unsupported(format!(
            "its config {} could not be read",
            live.api_config
        )));
    };
    let Some(document) = &config.document else {
        return Err(unsupported(
            "its OpenAPI document is not JSON (stack.toml's `openapi` files are JSON): convert it, declare the gateway with `openapi` by hand, then run `stackctl adopt`".into(),
        ));
    };
    let backend_url = document
        .pointer("/x-google-backend/address")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| {
            unsupported("its document has no top-level `x-google-backend.address`: stackctl's gateways front one service".into())
        })?;
    let host = crate::resources::service::host_of(backend_url).unwrap_or_default();
    // By the service's main URL, which apply fills in as `${BACKEND_URL}`; by another of its
    // URLs, the document keeps that one as it is.
    let (backend, placeholder) = match (
        refs.service_hosts.get(&host),
        refs.service_alternate_hosts.get(&host),
    ) {
        (Some(service), _) => (service, true),
        (None, Some(service)) => (service, false),
        (None, None) => {
            return Err(ImportError::MissingReference {
                address: address.clone(),
                what: format!("the Cloud Run service at {host}"),
                suggest: "service.NAME".into(),
            });
        }
    };
    let mut s = Stanza::new(address.clone(), &live.name);
    s.key("backend", string(&backend.to_string()));
    s.key(
        "service_account",
        refs.account(&address, &config.gateway_service_account)?,
    );
    display_name(&mut s, id, &live.display_name);
    let path = format!("gateways/{id}.json");
    s.key("openapi", string(&path));
    // The service's URL (the address, and the ID token's audience) is the stanza's backend.
    let text = serde_json::to_string_pretty(document).expect("a JSON value serializes");
    let mut text = if placeholder {
        let service_url = crate::resources::service::url_of_host(&host);
        text.replace(&service_url, crate::config::openapi::BACKEND_URL)
    } else {
        text
    };
    text.push('\n');
    s.files.push((path, text));
    Ok(s)
}

/// An API key restricted to exactly one gateway's api, declared or imported with it.
pub fn api_key(live: &ApiKeyRecord, name: &str, refs: &References) -> Result<Stanza, ImportError> {
    let address = ResourceAddr::new(Kind::ApiKey, name);
    if !live.other_restrictions.is_empty() {
        return Err(ImportError::Unsupported {
            address,
            why: format!(
                "it is also restricted by {}, and stack.toml's API keys are restricted to one gateway's api alone (declaring it would drop the rest)",
                live.other_restrictions.join(", ")
            ),
        });
    }
    let [service] = live.api_targets.as_slice() else {
        return Err(ImportError::Unsupported {
            address,
            why: format!(
                "it may call {}, and stack.toml's API keys are restricted to one gateway's api",
                match live.api_targets.as_slice() {
                    [] => "any API".to_string(),
                    targets => targets.join(", "),
                }
            ),
        });
    };
    let gateway =
        refs.gateway_services
            .get(service)
            .ok_or_else(|| ImportError::MissingReference {
                address: address.clone(),
                what: format!("the gateway whose api is {service}"),
                suggest: "gateway.NAME".into(),
            })?;
    let mut s = Stanza::new(address.clone(), &live.name);
    s.key("gateway", string(&gateway.to_string()));
    // A server-made id (a UUID) is not one stack.toml takes: the key is found by its
    // annotations once adopted, and `id` only names a key apply creates.
    let id = last(&live.name);
    if id != name && crate::config::is_api_key_id(id) && !is_uuid(id) {
        s.key("id", string(id));
    }
    display_name(&mut s, name, &live.display_name);
    Ok(s)
}

/// `8-4-4-4-12` lowercase hex digits: the id the server gives a key created without one.
fn is_uuid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        })
}

/// An HTTPS uptime check of a URL on port 443; a URL on a service's host (declared or imported
/// with it) is written as `target` and `path`.
pub fn uptime(live: &UptimeRecord, name: &str, refs: &References) -> Result<Stanza, ImportError> {
    let address = ResourceAddr::new(Kind::Uptime, name);
    let unsupported = |why: String| ImportError::Unsupported {
        address: address.clone(),
        why,
    };
    if live.host.is_empty() || !live.use_ssl || !matches!(live.port, 0 | 443) {
        return Err(unsupported(
            "stack.toml's uptime checks are HTTPS checks of a URL on port 443, and this one is not (another protocol, port or monitored resource)".into(),
        ));
    }
    let expect_status = match live.status_classes.as_slice() {
        [] => None,
        [class] => Some(
            class
                .strip_prefix("STATUS_CLASS_")
                .unwrap_or(class)
                .to_ascii_lowercase(),
        ),
        classes => {
            return Err(unsupported(format!(
                "it accepts {} status classes ({}), and stack.toml's expect_status is one",
                classes.len(),
                classes.join(", ")
            )));
        }
    };
    let mut s = Stanza::new(address.clone(), &live.name);
    match refs.service_hosts.get(&live.host) {
        Some(service) => {
            s.key("target", string(&service.to_string()));
            if live.path != "/" {
                s.key("path", string(&live.path));
            }
        }
        None => {
            s.key(
                "url",
                string(&format!("https://{}{}", live.host, live.path)),
            );
        }
    }
    s.key("period", duration(live.period));
    s.key("timeout", duration(live.timeout));
    if !live.regions.is_empty() {
        s.key("regions", strings(&live.regions));
    }
    if let Some(status) = expect_status {
        s.key("expect_status", string(&status));
    }
    display_name(&mut s, name, &live.display_name);
    Ok(s)
}

/// An enabled alert policy of threshold conditions, written as explicit `conditions`.
pub fn alert(live: &AlertRecord, name: &str, refs: &References) -> Result<Stanza, ImportError> {
    let address = ResourceAddr::new(Kind::Alert, name);
    let unsupported = |why: String| ImportError::Unsupported {
        address: address.clone(),
        why,
    };
    if !live.enabled {
        return Err(unsupported(
            "it is disabled, and stack.toml's alert policies are enabled: enable it, then import it".into(),
        ));
    }
    let mut conditions = Vec::new();
    for (i, condition) in live.conditions.iter().enumerate() {
        let Some(condition) = condition else {
            return Err(unsupported(format!(
                "its condition {} is not a metric threshold (an absence, log, MQL or PromQL condition), and stack.toml's conditions are thresholds",
                i + 1
            )));
        };
        conditions.push(condition_table(condition));
    }
    if conditions.len() > 1 && live.combiner != "OR" {
        return Err(unsupported(format!(
            "it combines its {} conditions with {}, and stack.toml's policies fire when any condition does (OR)",
            conditions.len(),
            live.combiner
        )));
    }
    let mut s = Stanza::new(address.clone(), &live.name);
    display_name(&mut s, name, &live.display_name);
    if let Some(severity) = &live.severity {
        s.key("severity", string(&severity.to_ascii_lowercase()));
    }
    if let Some(documentation) = &live.documentation {
        s.key("documentation", string(documentation));
    }
    let lines: String = conditions.iter().map(|c| format!("  {c},\n")).collect();
    s.key("conditions", format!("[\n{lines}]"));
    refs.notify(&mut s, &live.channels);
    Ok(s)
}

/// `{ name = ..., filter = ..., comparison = ..., ... }`: one condition as stack.toml writes it.
fn condition_table(c: &ConditionRecord) -> String {
    let mut entries = vec![
        ("name", string(&c.display_name)),
        ("filter", string(&c.filter)),
    ];
    if let Some(d) = &c.denominator_filter {
        entries.push(("denominator_filter", string(d)));
    }
    entries.extend([
        ("comparison", string(&c.comparison)),
        ("threshold", number(c.threshold)),
        ("duration", duration(c.duration)),
        ("aligner", string(&c.aligner)),
        ("period", duration(c.period)),
    ]);
    if let Some(r) = &c.reducer {
        entries.push(("reducer", string(r)));
    }
    if !c.group_by.is_empty() {
        entries.push(("group_by", strings(&c.group_by)));
    }
    inline_table(entries.into_iter().map(|(k, v)| (k.to_string(), v)))
}

/// A budget of the stack's project, in US dollars, named as stackctl names its budgets
/// (`sc:<stack>:<NAME>`, by which plan finds it).
pub fn budget(
    live: &BudgetRecord,
    name: &str,
    stack: &str,
    refs: &References,
) -> Result<Stanza, ImportError> {
    let address = ResourceAddr::new(Kind::Budget, name);
    let unsupported = |why: String| ImportError::Unsupported {
        address: address.clone(),
        why,
    };
    let display_name = super::budget::display_name(stack, name);
    if live.display_name != display_name {
        let account = live
            .name
            .strip_prefix("billingAccounts/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default();
        return Err(unsupported(format!(
            "stackctl finds a budget by the display name {display_name:?}, and this one is named {:?}: rename it (`gcloud billing budgets update {} --billing-account={account} --display-name={display_name}`), then import it",
            live.display_name,
            last(&live.name)
        )));
    }
    let amount = match &live.amount {
        Some(amount) if matches!(amount.currency.as_str(), "" | "USD") => amount,
        Some(amount) => {
            return Err(unsupported(format!(
                "its amount is in {}, and stack.toml's budgets are in US dollars (amount_usd)",
                amount.currency
            )));
        }
        None => {
            return Err(unsupported(
                "its amount follows last period's spend, and stack.toml's budgets have a fixed amount_usd: set an amount, then import it".into(),
            ));
        }
    };
    if live.thresholds.is_empty() {
        return Err(unsupported(
            "it has no threshold rule on actual spend, and stack.toml's budgets have at least one (`thresholds`)".into(),
        ));
    }
    let mut s = Stanza::new(address.clone(), &live.name);
    s.key("amount_usd", super::budget::show_amount(amount));
    s.key("thresholds", fractions(&live.thresholds));
    if !live.forecast_thresholds.is_empty() {
        s.key("forecast_thresholds", fractions(&live.forecast_thresholds));
    }
    refs.notify(&mut s, &live.channels);
    Ok(s)
}

/// Budget thresholds as the set plan compares them to.
fn fractions(thresholds: &[f64]) -> String {
    let written: Vec<String> = super::budget::millionths(thresholds)
        .into_iter()
        .map(|m| number(m as f64 / 1e6))
        .collect();
    format!("[{}]", written.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::change::FieldChange;
    use crate::model::live::budgets::MoneyAmount;
    use crate::model::live::tasks::{HttpTargetRecord, OidcRecord, QueueState};
    use crate::resources::{Known, NAME_LABEL, OWNER_LABEL};

    /// The stanzas as the stack `s` declares them (the validation import runs before writing).
    fn declared(stanzas: &[&Stanza]) -> crate::config::Stack {
        declared_beside("", stanzas)
    }

    /// The stack of `stanzas` after the stanzas in `beside`, loaded as import leaves it: from a
    /// directory holding the files the stanzas wrote (a dashboard's, a gateway's document).
    fn declared_beside(beside: &str, stanzas: &[&Stanza]) -> crate::config::Stack {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut text = format!(
            "[stack]\nname = \"s\"\nproject = \"acme-shop\"\nregion = \"us-central1\"\nbilling_account = \"012345-6789AB-CDEF01\"\n{beside}"
        );
        for stanza in stanzas {
            text.push('\n');
            text.push_str(&stanza.render());
            for (path, contents) in &stanza.files {
                let path = dir.path().join(path);
                std::fs::create_dir_all(path.parent().expect("a file in a directory"))
                    .expect("dir");
                std::fs::write(path, contents).expect("file");
            }
        }
        crate::config::parse(&dir.path().join("stack.toml"), &text)
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    /// What differs besides the ownership labels (or annotations) adopting writes.
    fn besides_ownership(fields: Vec<FieldChange>) -> Vec<FieldChange> {
        fields
            .into_iter()
            .filter(|f| {
                !f.field.ends_with(&format!(".{OWNER_LABEL}"))
                    && !f.field.ends_with(&format!(".{NAME_LABEL}"))
            })
            .collect()
    }

    fn channel_record(kind: &str, display_name: &str, labels: &[(&str, &str)]) -> ChannelRecord {
        ChannelRecord {
            name: "projects/acme-shop/notificationChannels/7".into(),
            kind: kind.into(),
            display_name: display_name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            user_labels: BTreeMap::from([("team".into(), "ops".into())]),
        }
    }

    #[test]
    fn display_names_become_unique_label_values() {
        assert_eq!(
            name_from_display_name("Ops e-mail (EU)", Kind::Channel),
            "ops-e-mail-eu"
        );
        assert_eq!(
            name_from_display_name("5xx rate", Kind::Alert),
            "alert-5xx-rate"
        );
        assert_eq!(name_from_display_name("  ", Kind::Uptime), "uptime");
        assert_eq!(
            name_from_display_name("Überwachung", Kind::Uptime),
            "berwachung"
        );
        let long = name_from_display_name(&"a".repeat(80), Kind::Alert);
        assert_eq!(long.len(), 63);
        let taken = BTreeSet::from(["ops".to_string(), "ops-2".to_string(), long.clone()]);
        assert_eq!(unique_name("ops", &taken), "ops-3");
        assert_eq!(unique_name("api", &taken), "api");
        let second = unique_name(&long, &taken);
        assert_eq!(second.len(), 63);
        assert!(second.ends_with("-2"), "{second}");
    }

    #[test]
    fn an_email_channel_round_trips_and_a_slack_one_says_what_to_write_by_hand() {
        let email = channel_record(
            "email",
            "Ops email",
            &[("email_address", "ops@example.com")],
        );
        let stanza = channel(&email, "ops-email").expect("stanza");
        let text = stanza.render();
        for line in [
            "type = \"email\"",
            "email = \"ops@example.com\"",
            "display_name = \"Ops email\"",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
        let stack = declared(&[&stanza]);
        let spec =
            crate::resources::channel::spec(&stack, "ops-email", &stack.channels["ops-email"]);
        assert_eq!(
            besides_ownership(crate::resources::channel::diff(&spec, &email)),
            vec![]
        );

        let webhook = channel_record(
            "webhook_tokenauth",
            "hook",
            &[("url", "https://hooks.example.com/x?token=1")],
        );
        let text = channel(&webhook, "hook").expect("stanza").render();
        assert!(
            text.contains("type = \"webhook\"\nurl = \"https://hooks.example.com/x?token=1\"\n"),
            "{text}"
        );
        assert!(
            !text.contains("display_name"),
            "the NAME is the default: {text}"
        );

        let slack = channel_record("slack", "Team Slack", &[("channel_name", "#alerts")]);
        let Err(ImportError::Unsupported { why, .. }) = channel(&slack, "team-slack") else {
            panic!("a Slack channel's token cannot be read back");
        };
        for part in [
            "auth_token is sensitive",
            "[channel.team-slack] with type = \"slack\", channel_name = \"#alerts\", display_name = \"Team Slack\", auth_token = \"secret.NAME\"",
            "stackctl adopt channel.team-slack",
        ] {
            assert!(why.contains(part), "{part}: {why}");
        }
        let basic = channel_record(
            "webhook_basicauth",
            "b",
            &[("url", "https://h.example.com"), ("username", "u")],
        );
        assert!(
            matches!(channel(&basic, "b"), Err(ImportError::Unsupported { why, .. }) if why.contains("password = \"secret.NAME\"")),
        );
        let sms = channel_record("sms", "pager", &[("number", "+15550100")]);
        assert!(
            matches!(channel(&sms, "pager"), Err(ImportError::Unsupported { why, .. }) if why.contains("sms channel")),
        );
    }

    #[test]
    fn a_hand_made_dashboard_round_trips_through_its_own_file() {
        let live = crate::provider::dashboards::record(serde_json::json!({
            "name": "projects/acme-shop/dashboards/4f2a",
            "etag": "e1",
            "displayName": "Orders on call",
            "labels": {"team": "ops"},
            "gridLayout": {"columns": "2", "widgets": [
                {"title": "orders", "xyChart": {"dataSets": [{"timeSeriesQuery": {"timeSeriesFilter": {"filter": "metric.type = \"run.googleapis.com/request_count\""}}}]}},
                {"title": "runbook", "text": {"content": "page the ingest owner", "format": "MARKDOWN"}}
            ]}
        }));
        let name = name_from_display_name(&live.display_name, Kind::Dashboard);
        let stanza = dashboard(&live, &name);
        let text = stanza.render();
        assert!(
            text.contains("[dashboard.orders-on-call]")
                && text.contains("display_name = \"Orders on call\"")
                && text.contains("file = \"dashboards/orders-on-call.json\""),
            "{text}"
        );
        let [(_, contents)] = stanza.files.as_slice() else {
            panic!("one file: {:?}", stanza.files)
        };
        let written: serde_json::Value = serde_json::from_str(contents).expect("JSON");
        for server_held in ["name", "etag", "displayName"] {
            assert!(
                written.get(server_held).is_none(),
                "{server_held}: {written}"
            );
        }
        assert_eq!(written["labels"], serde_json::json!({"team": "ops"}));

        // The stanza and its file declare the dashboard as it is: only ownership differs.
        let stack = declared(&[&stanza]);
        let cfg = &stack.dashboards[&name];
        let spec = crate::resources::dashboard::spec(&stack, &name, cfg);
        assert_eq!(spec.labels["team"], "ops");
        assert_eq!(
            besides_ownership(crate::resources::dashboard::diff(
                &spec,
                &live,
                &crate::resources::Known::default()
            )),
            vec![]
        );
        // A widget edited in the console since is a change the plan shows.
        let mut edited = live.body.clone();
        edited["gridLayout"]["widgets"][1]["text"]["content"] = "page anyone".into();
        let edited = crate::provider::dashboards::record(edited);
        let fields: Vec<String> =
            crate::resources::dashboard::diff(&spec, &edited, &crate::resources::Known::default())
                .into_iter()
                .map(|f| f.field)
                .collect();
        assert!(
            fields.contains(&"gridLayout.widgets[1].text.content".to_string()),
            "{fields:?}"
        );
    }

    /// A gateway made by hand: api `crm`, config `crm-v1` with a JSON document whose backend is
    /// the literal URL of `crm-proxy`.
    fn hand_made_gateway() -> GatewayRecord {
        use crate::model::live::gateway::{ApiConfigRecord, GatewayApiRecord};
        let api = "projects/acme-shop/locations/global/apis/crm";
        let url = "https://crm-proxy-abc-uc.a.run.app";
        GatewayRecord {
            name: "projects/acme-shop/locations/us-central1/gateways/crm".into(),
            display_name: "CRM for partners".into(),
            labels: BTreeMap::new(),
            api_config: format!("{api}/configs/crm-v1"),
            default_hostname: "crm-abc.uc.gateway.dev".into(),
            state: "ACTIVE".into(),
            created: None,
            api: Some(GatewayApiRecord {
                name: api.into(),
                managed_service: "crm-abc.apigateway.acme-shop.cloud.goog".into(),
                display_name: "crm".into(),
                labels: BTreeMap::new(),
            }),
            config: Some(ApiConfigRecord {
                name: format!("{api}/configs/crm-v1"),
                gateway_service_account: "crm-gateway@acme-shop.iam.gserviceaccount.com".into(),
                labels: BTreeMap::new(),
                document: Some(serde_json::json!({
                    "swagger": "2.0",
                    "info": {"title": "CRM", "version": "1"},
                    "x-google-backend": {"address": url, "jwt_audience": url},
                    "securityDefinitions": {"api_key": {"type": "apiKey", "name": "key", "in": "query"}},
                    "paths": {"/customers": {"post": {"operationId": "upsert", "security": [{"api_key": []}], "responses": {"200": {"description": "ok"}}}}}
                })),
            }),
        }
    }

    #[test]
    fn a_hand_made_gateway_and_its_key_round_trip_with_the_backend_as_a_placeholder() {
        let live = hand_made_gateway();
        let mut refs = References::default();
        refs.service_hosts.insert(
            "crm-proxy-abc-uc.a.run.app".into(),
            ResourceAddr::new(Kind::Service, "crm-proxy"),
        );
        refs.accounts.insert(
            "crm-gateway@acme-shop.iam.gserviceaccount.com".into(),
            ResourceAddr::new(Kind::ServiceAccount, "crm-gateway"),
        );
        let stanza = gateway(&live, "us-central1", &refs).expect("stanza");
        let text = stanza.render();
        for line in [
            "[gateway.crm]",
            "backend = \"service.crm-proxy\"",
            "service_account = \"service_account.crm-gateway\"",
            "display_name = \"CRM for partners\"",
            "openapi = \"gateways/crm.json\"",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
        let [(_, contents)] = stanza.files.as_slice() else {
            panic!("one file: {:?}", stanza.files)
        };
        assert!(
            contents.contains("\"address\": \"${BACKEND_URL}\"")
                && contents.contains("\"jwt_audience\": \"${BACKEND_URL}\"")
                && !contents.contains("run.app"),
            "{contents}"
        );

        // The written stanza and file declare the gateway as it is: only ownership differs.
        let stack = declared_beside(
            "\n[service_account.crm-gateway]\n\n[service.crm-proxy]\nimage = \"img\"\nmax_instances = 2\n",
            &[&stanza],
        );
        let spec = crate::resources::gateway::spec(&stack, &stack.gateways["crm"]);
        let known = crate::resources::Known {
            hosts: BTreeMap::from([(
                ResourceAddr::new(Kind::Service, "crm-proxy"),
                Some("crm-proxy-abc-uc.a.run.app".into()),
            )]),
            ..Default::default()
        };
        assert_eq!(
            besides_ownership(crate::resources::gateway::diff(&spec, &live, &known)),
            vec![]
        );

        // Its key, restricted to its api, refers to it once the gateway is imported.
        refs.gateway_services.insert(
            "crm-abc.apigateway.acme-shop.cloud.goog".into(),
            ResourceAddr::new(Kind::Gateway, "crm"),
        );
        let key = ApiKeyRecord {
            other_restrictions: vec![],
            name: "projects/123/locations/global/keys/ab9d3c1e-77aa-4c1e-9a8e-2f6d1c3b5a77".into(),
            display_name: "Partner integration".into(),
            api_targets: vec!["crm-abc.apigateway.acme-shop.cloud.goog".into()],
            uid: "0b9d3c1e".into(),
            annotations: BTreeMap::new(),
            etag: "e".into(),
            created: None,
        };
        let name = name_from_display_name(&key.display_name, Kind::ApiKey);
        let text = api_key(&key, &name, &refs).expect("stanza").render();
        assert!(
            text.contains("[api_key.partner-integration]")
                && text.contains("gateway = \"gateway.crm\"")
                && !text.contains("id = "),
            "a server-made id is left to the annotations: {text}"
        );
        let mut unrestricted = key.clone();
        unrestricted.api_targets.clear();
        assert!(matches!(
            api_key(&unrestricted, &name, &refs),
            Err(ImportError::Unsupported { why, .. }) if why.contains("any API")
        ));
        let mut elsewhere = key;
        elsewhere.api_targets = vec!["other.apigateway.acme-shop.cloud.goog".into()];
        assert!(matches!(
            api_key(&elsewhere, &name, &refs),
            Err(ImportError::MissingReference { .. })
        ));
    }

    #[test]
    fn a_gateway_in_front_of_a_services_other_url_keeps_that_url() {
        let mut live = hand_made_gateway();
        let other = "https://crm-proxy-123456789.us-central1.run.app";
        let config = live.config.as_mut().expect("config");
        let document = config.document.as_mut().expect("document");
        document["x-google-backend"] = serde_json::json!({"address": other, "jwt_audience": other});
        let service = ServiceRecord {
            uri: "https://crm-proxy-abc-uc.a.run.app".into(),
            urls: vec!["https://crm-proxy-abc-uc.a.run.app".into(), other.into()],
            ..crate::resources::service::tests::live()
        };
        let mut refs = References::default();
        refs.add_service(&service, &ResourceAddr::new(Kind::Service, "crm-proxy"));
        refs.accounts.insert(
            "crm-gateway@acme-shop.iam.gserviceaccount.com".into(),
            ResourceAddr::new(Kind::ServiceAccount, "crm-gateway"),
        );
        let stanza = gateway(&live, "us-central1", &refs).expect("stanza");
        assert!(stanza.render().contains("backend = \"service.crm-proxy\""));
        let contents = &stanza.files[0].1;
        assert!(
            contents.contains(other) && !contents.contains("${BACKEND_URL}"),
            "{contents}"
        );
    }

    #[test]
    fn a_gateway_stack_toml_cannot_declare_says_why() {
        let refs = References::default();
        let mut other_api = hand_made_gateway();
        other_api.api_config = "projects/acme-shop/locations/global/apis/legacy/configs/v1".into();
        assert!(matches!(
            gateway(&other_api, "us-central1", &refs),
            Err(ImportError::Unsupported { why, .. }) if why.contains("apis/legacy")
        ));
        let mut yaml = hand_made_gateway();
        yaml.config.as_mut().expect("config").document = None;
        assert!(matches!(
            gateway(&yaml, "us-central1", &refs),
            Err(ImportError::Unsupported { why, .. }) if why.contains("not JSON")
        ));
        assert!(matches!(
            gateway(&hand_made_gateway(), "europe-west1", &refs),
            Err(ImportError::Unsupported { why, .. }) if why.contains("serves in us-central1")
        ));
        assert!(matches!(
            gateway(&hand_made_gateway(), "us-central1", &refs),
            Err(ImportError::MissingReference { what, .. }) if what.contains("crm-proxy-abc-uc.a.run.app")
        ));
    }

    fn uptime_record() -> UptimeRecord {
        UptimeRecord {
            name: "projects/acme-shop/uptimeCheckConfigs/relay-x1".into(),
            display_name: "Relay health".into(),
            host: "relay-abc-uc.a.run.app".into(),
            path: "/healthz".into(),
            use_ssl: true,
            port: 443,
            period: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
            regions: vec!["ASIA_PACIFIC".into(), "EUROPE".into(), "USA".into()],
            status_classes: vec!["STATUS_CLASS_2XX".into()],
            user_labels: BTreeMap::new(),
        }
    }

    #[test]
    fn an_uptime_check_round_trips_by_url_or_by_its_services_address() {
        let live = uptime_record();
        let stanza = uptime(&live, "relay-health", &References::default()).expect("stanza");
        let text = stanza.render();
        for line in [
            "url = \"https://relay-abc-uc.a.run.app/healthz\"",
            "period = \"1m\"",
            "timeout = \"5s\"",
            "regions = [\"ASIA_PACIFIC\", \"EUROPE\", \"USA\"]",
            "expect_status = \"2xx\"",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
        let stack = declared(&[&stanza]);
        let spec =
            crate::resources::uptime::spec(&stack, "relay-health", &stack.uptimes["relay-health"]);
        assert_eq!(
            besides_ownership(crate::resources::uptime::diff(&spec, &live)),
            vec![]
        );

        let mut refs = References::default();
        refs.service_hosts.insert(
            "relay-abc-uc.a.run.app".into(),
            ResourceAddr::new(Kind::Service, "relay"),
        );
        let text = uptime(&live, "relay-health", &refs)
            .expect("stanza")
            .render();
        assert!(
            text.contains("target = \"service.relay\"\npath = \"/healthz\"\n"),
            "{text}"
        );

        let mut http = uptime_record();
        http.use_ssl = false;
        http.port = 80;
        let mut two_classes = uptime_record();
        two_classes.status_classes.push("STATUS_CLASS_3XX".into());
        for unsupported in [http, two_classes] {
            assert!(matches!(
                uptime(&unsupported, "x", &References::default()),
                Err(ImportError::Unsupported { .. })
            ));
        }
    }

    fn condition_record() -> ConditionRecord {
        ConditionRecord {
            display_name: "5xx responses".into(),
            filter: "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\" AND metric.labels.response_code_class=\"5xx\"".into(),
            denominator_filter: None,
            comparison: "COMPARISON_GT".into(),
            threshold: 0.5,
            duration: Duration::from_secs(300),
            aligner: "ALIGN_RATE".into(),
            reducer: Some("REDUCE_SUM".into()),
            group_by: vec!["resource.labels.service_name".into()],
            period: Duration::from_secs(60),
        }
    }

    fn alert_record(channels: &[&str]) -> AlertRecord {
        AlertRecord {
            documentation: None,
            severity: None,
            name: "projects/acme-shop/alertPolicies/42".into(),
            display_name: "API 5xx".into(),
            user_labels: BTreeMap::new(),
            enabled: true,
            combiner: "OR".into(),
            conditions: vec![Some(condition_record())],
            channels: channels.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn an_alert_policy_round_trips_with_explicit_conditions_and_its_channels_by_address() {
        let email = channel_record("email", "Ops", &[("email_address", "ops@example.com")]);
        let channel_stanza = channel(&email, "ops").expect("channel");
        let mut refs = References::default();
        refs.channels
            .insert(email.name.clone(), channel_stanza.address.clone());
        let mut live = alert_record(&[email.name.as_str()]);
        live.severity = Some("WARNING".into());
        live.documentation = Some(
            "The API answers 5xx.\n\n1. `gcloud run services logs read api`\n2. Roll back: \"stackctl rollback service.api\"".into(),
        );
        let stanza = alert(&live, "api-5xx", &refs).expect("stanza");
        let text = stanza.render();
        assert!(text.contains("notify = [\"channel.ops\"]"), "{text}");
        assert!(text.contains("severity = \"warning\""), "{text}");
        assert!(
            text.contains("conditions = [\n  { name = \"5xx responses\", filter = "),
            "{text}"
        );
        for part in [
            "comparison = \"COMPARISON_GT\"",
            "threshold = 0.5",
            "duration = \"5m\"",
            "aligner = \"ALIGN_RATE\"",
            "period = \"1m\"",
            "reducer = \"REDUCE_SUM\"",
            "group_by = [\"resource.labels.service_name\"]",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        let stack = declared(&[&channel_stanza, &stanza]);
        let spec = crate::resources::alert::spec(&stack, "api-5xx", &stack.alerts["api-5xx"]);
        let known = Known {
            names: BTreeMap::from([(channel_stanza.address.clone(), Some(email.name.clone()))]),
            ..Known::default()
        };
        assert_eq!(
            besides_ownership(crate::resources::alert::diff(&spec, &live, &known)),
            vec![]
        );
    }

    #[test]
    fn an_alert_leaves_out_a_channel_it_cannot_name_and_refuses_what_it_cannot_declare() {
        let slack = "projects/acme-shop/notificationChannels/9";
        let text = alert(&alert_record(&[slack]), "api-5xx", &References::default())
            .expect("stanza")
            .render();
        assert!(
            text.contains(&format!("# notify leaves out {slack}: no [channel] stanza")),
            "{text}"
        );
        assert!(!text.contains("notify ="), "{text}");

        let mut absent = alert_record(&[]);
        absent.conditions.push(None);
        absent.combiner = "OR".into();
        let mut disabled = alert_record(&[]);
        disabled.enabled = false;
        let mut all_of = alert_record(&[]);
        all_of.conditions.push(Some(condition_record()));
        all_of.combiner = "AND".into();
        for (live, reason) in [
            (absent, "condition 2 is not a metric threshold"),
            (disabled, "it is disabled"),
            (all_of, "with AND"),
        ] {
            match alert(&live, "x", &References::default()) {
                Err(ImportError::Unsupported { why, .. }) => {
                    assert!(why.contains(reason), "{reason}: {why}")
                }
                other => panic!("{reason}: {other:?}"),
            }
        }
    }

    fn budget_record(display_name: &str) -> BudgetRecord {
        BudgetRecord {
            name: "billingAccounts/012345-6789AB-CDEF01/budgets/b1".into(),
            display_name: display_name.into(),
            projects: vec!["projects/123".into()],
            amount: Some(MoneyAmount {
                currency: "USD".into(),
                units: 299,
                nanos: 990_000_000,
            }),
            thresholds: vec![1.0, 0.5, 0.9000000000000001],
            forecast_thresholds: vec![1.2],
            channels: vec![],
            etag: "e".into(),
        }
    }

    #[test]
    fn a_budget_named_as_stackctl_names_it_round_trips_and_another_is_told_to_rename() {
        let live = budget_record("sc:s:monthly");
        let stanza = budget(&live, "monthly", "s", &References::default()).expect("stanza");
        let text = stanza.render();
        for line in [
            "amount_usd = 299.99",
            "thresholds = [0.5, 0.9, 1]",
            "forecast_thresholds = [1.2]",
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
        let stack = declared(&[&stanza]);
        let spec = crate::resources::budget::spec(&stack, "monthly", &stack.budgets["monthly"]);
        let known = Known {
            project_number: Some("projects/123".into()),
            ..Known::default()
        };
        assert_eq!(crate::resources::budget::diff(&spec, &live, &known), vec![]);

        let Err(ImportError::Unsupported { why, .. }) = budget(
            &budget_record("Monthly"),
            "monthly",
            "s",
            &References::default(),
        ) else {
            panic!("plan could not find it again");
        };
        assert!(
            why.contains("--billing-account=012345-6789AB-CDEF01 --display-name=sc:s:monthly"),
            "{why}"
        );
        let mut spend_based = budget_record("sc:s:monthly");
        spend_based.amount = None;
        assert!(matches!(
            budget(&spend_based, "monthly", "s", &References::default()),
            Err(ImportError::Unsupported { .. })
        ));
    }

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

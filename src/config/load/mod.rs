//! The stack document reader: what stack.toml's tables are (`[stack]`, `[service.NAME]`,
//! `[queue.NAME]`, ... `[usage]`), their keys, defaults and cross-table checks (unique ids,
//! references), building the typed [`super::Stack`] when there are no errors. Values are read
//! through the generic span-aware [`reader`]; each kind's table has its own file here.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::units;
use super::{
    AlertConfig, ApiKeyConfig, BudgetConfig, ChannelConfig, ChannelSecret, Column, ConfigError,
    ConfigErrors, DatasetConfig, FirestoreUsage, GatewayConfig, ImageSource, Ingress, JobConfig,
    JobUsage, Partition, QueueConfig, QueueUsage, RepositoryConfig, RepositoryUsage,
    ScheduleConfig, SecretConfig, ServiceAccountConfig, ServiceConfig, ServiceUsage, ShopifyConfig,
    ShopifyWebhookConfig, Stack, StackSettings, TableConfig, TableUsage, Usage,
};
use crate::model::{Kind, ResourceAddr};
// The label stackctl puts on everything it owns; users cannot set it.
use crate::resources::OWNER_LABEL;

mod alert;
mod budget;
mod channel;
mod dashboard;
mod dataset;
mod files;
mod firestore;
mod gateway;
mod job;
mod queue;
mod reader;
mod references;
mod repository;
mod rules;
mod schedule;
mod secret;
mod service;
mod service_account;
mod shopify;
mod table;
mod uptime;
mod usage;
mod values;

#[cfg(test)]
mod fuzz;

use alert::*;
use budget::*;
use channel::*;
pub(crate) use channel::{channel_type, channel_type_names};
use dashboard::*;
use dataset::*;
pub(crate) use files::base_dir;
use files::*;
pub(crate) use gateway::is_api_key_id;
use gateway::*;
use job::*;
use queue::*;
use reader::*;
use references::*;
use repository::*;
use rules::*;
pub(crate) use rules::{is_billing_account, is_project_id, is_region, is_stack_name};
use schedule::*;
use secret::*;
use service::*;
use service_account::*;
use shopify::*;
use table::*;
use uptime::*;
use usage::*;

const STACK_KEYS: &[&str] = &[
    "billing_account",
    "image_repository",
    "labels",
    "name",
    "project",
    "region",
    "state_bucket",
];

/// The tables stackctl understands, for "supported tables" hints.
const SUPPORTED_TABLES: &str = "[stack], [service.NAME], [queue.NAME], [service_account.NAME], [secret.NAME], [job.NAME], [schedule.NAME], [dataset.NAME], [table.NAME], [repository.NAME], [channel.NAME], [budget.NAME], [alert.NAME], [uptime.NAME], [dashboard.NAME], [firestore.NAME], [gateway.NAME], [api_key.NAME], [shopify], [shopify_webhook.NAME], [usage]";

/// Reads and parses the stack file at `path`.
pub fn load(path: &Path) -> Result<Stack, ConfigErrors> {
    let bytes = read_capped(path).map_err(|error| {
        let help = match error.kind() {
            std::io::ErrorKind::NotFound => {
                "create one with the [stack] table (name, project, region) or pass -f PATH"
                    .to_string()
            }
            std::io::ErrorKind::FileTooLarge => {
                "a stack file is at most 1 MiB; pass -f PATH to use another stack file".to_string()
            }
            _ => "check the file's permissions, or pass -f PATH to use another stack file"
                .to_string(),
        };
        ConfigErrors::from(ConfigError::whole_file(
            path,
            format!("cannot read {}: {error}", path.display()),
            Some(help),
        ))
    })?;
    parse_bytes(path, bytes)
}

/// Parses the stack file's bytes: [`parse`] once they are UTF-8, else an error at the first
/// invalid byte.
fn parse_bytes(path: &Path, bytes: Vec<u8>) -> Result<Stack, ConfigErrors> {
    match String::from_utf8(bytes) {
        Ok(source) => parse(path, &source),
        Err(error) => Err(ConfigErrors::from(not_utf8(path, error))),
    }
}

/// The error for a stack file that is not UTF-8, at the first invalid byte.
fn not_utf8(path: &Path, error: std::string::FromUtf8Error) -> ConfigError {
    let at = error.utf8_error().valid_up_to();
    let byte = error.as_bytes()[at];
    // The valid prefix is kept as is, so byte offset `at` is where the replacement starts.
    let lossy = String::from_utf8_lossy(error.as_bytes());
    ConfigError::at(
        path,
        &lossy,
        at..at + '\u{FFFD}'.len_utf8(),
        format!("the stack file is not valid UTF-8: invalid byte 0x{byte:02X}"),
        Some(
            "TOML files are UTF-8: re-save the file as UTF-8 (e.g. `iconv -f LATIN1 -t UTF-8`)"
                .into(),
        ),
    )
}

/// Parses stack file text; `file` is only used in messages and kept as [`Stack::file`].
pub fn parse(file: &Path, source: &str) -> Result<Stack, ConfigErrors> {
    let mut checker = Checker::new(file, source);
    let Some(document) = checker.parse() else {
        return Err(checker.reader.into_errors());
    };
    let stack = read_document(&mut checker, &document);
    match stack {
        Some(stack) if checker.errors.is_empty() => Ok(stack),
        _ => Err(checker.reader.into_errors()),
    }
}

/// The stack document's reader: the generic [`Reader`] plus the references read so far.
struct Checker<'s> {
    reader: Reader<'s>,
    /// Every valid reference read so far, for the cycle check.
    references: Vec<Reference>,
}

impl<'s> Checker<'s> {
    fn new(file: &'s Path, source: &'s str) -> Self {
        Self {
            reader: Reader::new(file, source),
            references: Vec::new(),
        }
    }
}

impl<'s> std::ops::Deref for Checker<'s> {
    type Target = Reader<'s>;

    fn deref(&self) -> &Reader<'s> {
        &self.reader
    }
}

impl<'s> std::ops::DerefMut for Checker<'s> {
    fn deref_mut(&mut self) -> &mut Reader<'s> {
        &mut self.reader
    }
}

/// The top level: `[stack]`, `[service.*]`, `[queue.*]`; anything else is an error.
fn read_document(checker: &mut Checker, document: &DeTable) -> Option<Stack> {
    let mut stack_table = None;
    let mut usage_value = None;
    let mut shopify_value = None;
    let mut services = Vec::new();
    let mut queues = Vec::new();
    let mut others: BTreeMap<Kind, Vec<TableRef>> = BTreeMap::new();
    let mut service_accounts = Vec::new();
    let mut secrets = Vec::new();
    let mut jobs = Vec::new();
    let mut schedules = Vec::new();
    for (key, value) in document.iter() {
        let name = key.get_ref().as_ref();
        if name == "stack" {
            match value.get_ref() {
                DeValue::Table(table) => {
                    stack_table = Some(TableRef {
                        title: "[stack]".into(),
                        name: String::new(),
                        name_span: key.span(),
                        span: value.span(),
                        table,
                        kind: None,
                    })
                }
                other => checker.error(
                    value.span(),
                    format!("`stack` must be a table, found {}", describe_type(other)),
                    Some("write a [stack] table with name, project and region".into()),
                ),
            }
            continue;
        }
        if name == "usage" {
            usage_value = Some(value);
            continue;
        }
        if name == "shopify" {
            shopify_value = Some((key, value));
            continue;
        }
        match name.parse::<Kind>() {
            Ok(kind) if kind.is_declared_as_table() => {
                let tables = resource_tables(checker, kind, value);
                match kind {
                    Kind::Service => services = tables,
                    Kind::Queue => queues = tables,
                    Kind::ServiceAccount => service_accounts = tables,
                    Kind::Secret => secrets = tables,
                    Kind::Job => jobs = tables,
                    Kind::Schedule => schedules = tables,
                    Kind::Api | Kind::Grant => {}
                    other => {
                        others.insert(other, tables);
                    }
                }
            }
            Ok(kind) => implied_kind_table(checker, kind, key),
            Err(_) => unknown_top_level(checker, key, value),
        }
    }

    let settings = match &stack_table {
        Some(table) => read_settings(checker, table),
        None => {
            // At the top of the file, where [stack] belongs: every error has a position.
            let file = checker.file_name();
            checker.error(
                0..0,
                format!("no [stack] table in {file}"),
                Some("add [stack] with name, project and region at the top".into()),
            );
            None
        }
    };

    let image_repository = settings
        .as_ref()
        .map(|settings| settings.image_repository.is_some());
    let declared: Declared = [
        (Kind::Service, &services),
        (Kind::Queue, &queues),
        (Kind::ServiceAccount, &service_accounts),
        (Kind::Secret, &secrets),
        (Kind::Job, &jobs),
        (Kind::Schedule, &schedules),
    ]
    .into_iter()
    .map(|(kind, tables)| (kind, tables.iter().map(|t| t.name.clone()).collect()))
    .chain(
        others
            .iter()
            .map(|(kind, tables)| (*kind, tables.iter().map(|t| t.name.clone()).collect())),
    )
    .collect();

    let account_results = read_all(checker, Kind::ServiceAccount, &service_accounts, |c, t| {
        read_service_account(c, t)
    });
    let secret_results = read_all(checker, Kind::Secret, &secrets, read_secret);

    let mut service_results = BTreeMap::new();
    for table in &services {
        let service = read_service(checker, table, image_repository, &declared);
        service_results.insert(table.name.clone(), service);
    }
    check_unique_ids(
        checker,
        Kind::Service,
        service_results.iter().filter_map(|(name, parsed)| {
            parsed.as_ref().map(|parsed| {
                (
                    name.as_str(),
                    parsed.config.id.as_str(),
                    parsed.id_span.clone(),
                )
            })
        }),
    );

    let mut queue_results = BTreeMap::new();
    for table in &queues {
        let queue = read_queue(checker, table, &service_results, &declared);
        if let Some(Parsed { config, .. }) = &queue
            && let Some(target) = &config.target
        {
            let span = table.get("target").map_or(table.span.clone(), |v| v.span());
            checker.references.push(Reference {
                from: ResourceAddr::new(Kind::Queue, table.name.clone()),
                to: target.clone(),
                span,
            });
        }
        queue_results.insert(table.name.clone(), queue);
    }
    check_unique_ids(
        checker,
        Kind::Queue,
        queue_results.iter().filter_map(|(name, parsed)| {
            parsed.as_ref().map(|parsed| {
                (
                    name.as_str(),
                    parsed.config.id.as_str(),
                    parsed.id_span.clone(),
                )
            })
        }),
    );

    let usage = match usage_value {
        Some(value) => read_usage(checker, value, &service_results, &declared),
        None => Some(Usage::default()),
    };
    let mut ids: BTreeMap<ResourceAddr, String> = BTreeMap::new();
    for (name, parsed) in &service_results {
        if let Some(p) = parsed {
            ids.insert(ResourceAddr::new(Kind::Service, name), p.config.id.clone());
        }
    }
    for (name, parsed) in &queue_results {
        if let Some(p) = parsed {
            ids.insert(ResourceAddr::new(Kind::Queue, name), p.config.id.clone());
        }
    }
    let tables_of = |kind: Kind| others.get(&kind).map(Vec::as_slice).unwrap_or_default();
    let mut datasets = BTreeMap::new();
    for table in tables_of(Kind::Dataset) {
        datasets.insert(table.name.clone(), read_dataset(checker, table));
    }
    let mut bq_tables = BTreeMap::new();
    for table in tables_of(Kind::Table) {
        bq_tables.insert(table.name.clone(), read_table(checker, table, &declared));
    }
    let region = settings.as_ref().map(|s| s.region.clone());
    let mut repositories = BTreeMap::new();
    for table in tables_of(Kind::Repository) {
        repositories.insert(
            table.name.clone(),
            read_repository(checker, table, region.as_deref()),
        );
    }
    check_unique_ids(
        checker,
        Kind::Dataset,
        datasets.iter().filter_map(|(name, parsed)| {
            parsed
                .as_ref()
                .map(|p| (name.as_str(), p.config.id.as_str(), p.id_span.clone()))
        }),
    );
    check_unique_ids(
        checker,
        Kind::Repository,
        repositories.iter().filter_map(|(name, parsed)| {
            parsed
                .as_ref()
                .map(|p| (name.as_str(), p.config.id.as_str(), p.id_span.clone()))
        }),
    );
    let mut firestores = BTreeMap::new();
    for table in tables_of(Kind::Firestore) {
        firestores.insert(
            table.name.clone(),
            firestore::read_firestore(checker, table, region.as_deref()),
        );
    }
    check_unique_ids(
        checker,
        Kind::Firestore,
        firestores.iter().filter_map(|(name, parsed)| {
            parsed
                .as_ref()
                .map(|p| (name.as_str(), p.config.id.as_str(), p.id_span.clone()))
        }),
    );
    let mut channels = BTreeMap::new();
    for table in tables_of(Kind::Channel) {
        channels.insert(table.name.clone(), read_channel(checker, table, &declared));
    }
    let stack_name = settings.as_ref().map(|s| s.name.clone());
    let billing = settings.as_ref().and_then(|s| s.billing_account.clone());
    let mut budgets = BTreeMap::new();
    for table in tables_of(Kind::Budget) {
        budgets.insert(
            table.name.clone(),
            read_budget(
                checker,
                table,
                stack_name.as_deref(),
                billing.as_deref(),
                &declared,
            ),
        );
    }
    let mut uptimes = BTreeMap::new();
    for table in tables_of(Kind::Uptime) {
        let uptime = read_uptime(checker, table, &declared);
        if let Some(u) = &uptime {
            // What alert templates watch of an uptime check: its host, or a placeholder for the
            // target service's host that the plan fills in once the service exists.
            let host = match &u.target {
                None => u.host.clone(),
                Some(service) => crate::config::templates::service_host_placeholder(service),
            };
            ids.insert(ResourceAddr::new(Kind::Uptime, &table.name), host);
        }
        uptimes.insert(table.name.clone(), uptime);
    }
    let gateway_results = read_all(checker, Kind::Gateway, tables_of(Kind::Gateway), |c, t| {
        read_gateway(c, t, &declared)
    });
    for name in gateway_results.keys() {
        // What alert templates watch of a gateway: its managed service, assigned on create.
        let gateway = ResourceAddr::new(Kind::Gateway, name);
        let service = crate::config::templates::gateway_service_placeholder(&gateway);
        ids.insert(gateway, service);
    }
    let api_key_results = read_all(checker, Kind::ApiKey, tables_of(Kind::ApiKey), |c, t| {
        read_api_key(c, t, &declared)
    });
    let job_results = read_all(checker, Kind::Job, &jobs, |c, t| {
        read_job(c, t, image_repository, &declared)
    });
    for (name, parsed) in &job_results {
        if let Some(p) = parsed {
            ids.insert(ResourceAddr::new(Kind::Job, name), p.config.id.clone());
        }
    }
    let max_instances: BTreeMap<ResourceAddr, u32> = service_results
        .iter()
        .filter_map(|(name, parsed)| {
            let p = parsed.as_ref()?;
            Some((
                ResourceAddr::new(Kind::Service, name),
                p.config.max_instances,
            ))
        })
        .collect();
    let mut dashboards = BTreeMap::new();
    for table in tables_of(Kind::Dashboard) {
        let dashboard = read_dashboard(checker, table, stack_name.as_deref(), &declared);
        dashboards.insert(table.name.clone(), dashboard);
    }
    let mut alerts = BTreeMap::new();
    for table in tables_of(Kind::Alert) {
        alerts.insert(
            table.name.clone(),
            read_alert(checker, table, &declared, &ids, &max_instances),
        );
    }
    let schedule_results = read_all(checker, Kind::Schedule, &schedules, |c, t| {
        read_schedule(c, t, &declared)
    });
    let shopify = match shopify_value {
        Some((key, value)) => read_shopify(checker, key, value, &declared).map(Some),
        None => Some(None),
    };
    let webhook_tables = tables_of(Kind::ShopifyWebhook);
    let mut shopify_webhooks = BTreeMap::new();
    for table in webhook_tables {
        let webhook = read_shopify_webhook(
            checker,
            table,
            shopify.as_ref().and_then(Option::as_ref),
            shopify_value.is_some(),
            &declared,
        );
        shopify_webhooks.insert(table.name.clone(), webhook);
    }
    check_unique_subscriptions(checker, webhook_tables, &shopify_webhooks);
    let references = std::mem::take(&mut checker.references);
    check_cycles(checker, &references);

    let settings = settings?;
    let services = collect_all(service_results)?;
    let queues = collect_all(queue_results)?;
    Some(Stack {
        file: checker.file.to_path_buf(),
        settings,
        services,
        queues,
        usage: usage?,
        datasets: collect_all(datasets)?,
        tables: collect_all(bq_tables)?,
        repositories: collect_all(repositories)?,
        channels: collect_plain(channels)?,
        budgets: collect_plain(budgets)?,
        alerts: collect_plain(alerts)?,
        uptimes: collect_plain(uptimes)?,
        gateways: collect_all(gateway_results)?,
        api_keys: collect_all(api_key_results)?,
        dashboards: collect_plain(dashboards)?,
        service_accounts: collect_all(account_results)?,
        secrets: collect_all(secret_results)?,
        jobs: collect_all(job_results)?,
        schedules: collect_all(schedule_results)?,
        firestores: collect_all(firestores)?,
        shopify: shopify?,
        shopify_webhooks: collect_plain(shopify_webhooks)?,
    })
}

/// Reads every table of one kind and checks that their GCP ids are unique.
fn read_all<T: HasId>(
    checker: &mut Checker,
    kind: Kind,
    tables: &[TableRef],
    read: impl Fn(&mut Checker, &TableRef) -> Option<Parsed<T>>,
) -> BTreeMap<String, Option<Parsed<T>>> {
    let mut results = BTreeMap::new();
    for table in tables {
        let parsed = read(checker, table);
        results.insert(table.name.clone(), parsed);
    }
    check_unique_ids(
        checker,
        kind,
        results.iter().filter_map(|(name, parsed)| {
            parsed
                .as_ref()
                .map(|parsed| (name.as_str(), parsed.config.id(), parsed.id_span.clone()))
        }),
    );
    results
}

/// A config with a GCP id, for the uniqueness check.
trait HasId {
    fn id(&self) -> &str;
}

macro_rules! has_id {
    ($($ty:ty),*) => {$(
        impl HasId for $ty {
            fn id(&self) -> &str {
                &self.id
            }
        }
    )*};
}
has_id!(
    ServiceAccountConfig,
    SecretConfig,
    JobConfig,
    ScheduleConfig,
    GatewayConfig,
    ApiKeyConfig
);

/// `[api.x]` or `[iam.x]`: these kinds are implied by the others, never declared.
fn implied_kind_table(checker: &mut Checker, kind: Kind, key: &Spanned<std::borrow::Cow<'_, str>>) {
    let help = match kind {
        Kind::Api => {
            "the APIs a stack needs are enabled from the kinds it declares; there is no [api.NAME] table"
        }
        _ => {
            "IAM grants are declared where they belong: `roles` on a service_account, `invokers` on a service, `enqueuers` on a queue"
        }
    };
    checker.error(
        key.span(),
        format!("[{kind}.NAME] tables are not declared in stack.toml"),
        Some(help.into()),
    );
}

/// Keeps the typed configs if every table was valid.
fn collect_all<T>(results: BTreeMap<String, Option<Parsed<T>>>) -> Option<BTreeMap<String, T>> {
    results
        .into_iter()
        .map(|(name, parsed)| parsed.map(|parsed| (name, parsed.config)))
        .collect()
}

/// Keeps the typed configs (of kinds without a GCP id) if every table was valid.
fn collect_plain<T>(results: BTreeMap<String, Option<T>>) -> Option<BTreeMap<String, T>> {
    results
        .into_iter()
        .map(|(name, parsed)| parsed.map(|parsed| (name, parsed)))
        .collect()
}

/// A valid table's typed config, and where its GCP id is written (`id` or the table name).
struct Parsed<T> {
    config: T,
    id_span: Span,
}

/// The `[kind.NAME]` tables under one top-level kind key.
fn resource_tables<'t, 'i>(
    checker: &mut Checker,
    kind: Kind,
    value: &'t Spanned<DeValue<'i>>,
) -> Vec<TableRef<'t, 'i>> {
    let DeValue::Table(entries) = value.get_ref() else {
        checker.error(
            value.span(),
            format!(
                "`{kind}` must hold tables, found {}",
                describe_type(value.get_ref())
            ),
            Some(format!("declare each {kind} as a table: [{kind}.NAME]")),
        );
        return Vec::new();
    };
    let mut tables = Vec::new();
    for (name, table) in entries.iter() {
        match table.get_ref() {
            DeValue::Table(inner) => tables.push(TableRef {
                title: format!("[{kind}.{}]", name.get_ref()),
                name: name.get_ref().to_string(),
                name_span: name.span(),
                span: table.span(),
                table: inner,
                kind: Some(kind),
            }),
            other => checker.error(
                table.span(),
                format!(
                    "`{kind}.{}` must be a table, found {}",
                    name.get_ref(),
                    describe_type(other)
                ),
                Some(format!(
                    "each {kind} is a table of its own: [{kind}.NAME] with its keys below"
                )),
            ),
        }
    }
    tables
}

/// A top-level key that is not a supported table.
fn unknown_top_level(
    checker: &mut Checker,
    key: &Spanned<std::borrow::Cow<'_, str>>,
    value: &Spanned<DeValue<'_>>,
) {
    let name = key.get_ref().as_ref();
    let kinds = std::iter::once("stack").chain(Kind::ALL.iter().map(|kind| kind.as_str()));
    let help = match closest(name, kinds) {
        Some(suggestion) => format!("did you mean `{suggestion}`?"),
        None if STACK_KEYS.contains(&name) => format!("`{name}` belongs in the [stack] table"),
        None => format!("supported tables: {SUPPORTED_TABLES}"),
    };
    // `[job.a]` and `[job.b]`: one error per table, at its header.
    if let DeValue::Table(entries) = value.get_ref()
        && !entries.is_empty()
        && entries.values().all(|entry| entry.get_ref().is_table())
    {
        for (entry_name, entry) in entries.iter() {
            checker.error(
                entry.span(),
                format!(
                    "unknown table kind `{name}` in [{name}.{}]",
                    entry_name.get_ref()
                ),
                Some(help.clone()),
            );
        }
        return;
    }
    let message = if value.get_ref().is_table() {
        format!("unknown table [{name}]")
    } else {
        format!("unknown top-level key `{name}`")
    };
    checker.error(key.span(), message, Some(help));
}

fn read_settings(checker: &mut Checker, table: &TableRef) -> Option<StackSettings> {
    checker.check_keys(table, STACK_KEYS);
    let name = checker.read_string(table, "name").required(
        checker,
        table,
        "name",
        "add name = \"my-stack\" (the value of the stackctl-stack ownership label)".into(),
    );
    if let Some(Field {
        value,
        span: Some(span),
    }) = &name
        && !is_stack_name(value)
    {
        checker.error(
            span.clone(),
            format!("stack name `{value}` is not a valid label value"),
            Some("use lowercase letters, digits, `-` and `_`, start with a letter, at most 63 characters".into()),
        );
    }
    let project = checker.read_string(table, "project").required(
        checker,
        table,
        "project",
        "add project = \"my-project-id\" (the GCP project id)".into(),
    );
    if let Some(Field {
        value,
        span: Some(span),
    }) = &project
        && !is_project_id(value)
    {
        checker.error(
            span.clone(),
            format!("`{value}` is not a valid GCP project id"),
            Some(
                "project ids are 6 to 30 lowercase letters, digits and `-`, start with a letter and do not end with `-`"
                    .into(),
            ),
        );
    }
    let region = checker.read_string(table, "region").required(
        checker,
        table,
        "region",
        "add region = \"us-central1\"".into(),
    );
    if let Some(Field {
        value,
        span: Some(span),
    }) = &region
        && !is_region(value)
    {
        checker.error(
            span.clone(),
            format!("`{value}` is not a GCP region"),
            Some("write a region like \"us-central1\" or \"europe-west1\"".into()),
        );
    }
    let labels = read_labels(checker, table);
    let state_bucket = checker.read_string(table, "state_bucket").optional();
    if let Some(Some(Field {
        value,
        span: Some(span),
    })) = &state_bucket
        && !is_bucket_name(value)
    {
        checker.error(
            span.clone(),
            format!("`{value}` is not a valid Cloud Storage bucket name"),
            Some("use 3 to 63 lowercase letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit, without `..`, not an IP address, not starting with `goog` nor containing `google`".into()),
        );
    }
    let image_repository = read_image_repository(checker, table);
    let billing_account = checker.read_string(table, "billing_account").optional();
    if let Some(Some(Field {
        value,
        span: Some(span),
    })) = &billing_account
        && !is_billing_account(value)
    {
        checker.error(
            span.clone(),
            format!("`{value}` is not a billing account id"),
            Some("billing account ids look like \"012345-6789AB-CDEF01\" (see `gcloud billing accounts list`)".into()),
        );
    }
    Some(StackSettings {
        billing_account: billing_account?.map(|field| field.value),
        name: name?.value,
        project: project?.value,
        region: region?.value,
        labels: labels?,
        state_bucket: state_bucket?.map(|field| field.value),
        image_repository: image_repository?,
    })
}

/// `image_repository = "workers"` (an Artifact Registry repository id) or
/// `"repository.workers"`; both mean the repository id `workers`.
fn read_image_repository(checker: &mut Checker, table: &TableRef) -> Option<Option<String>> {
    let Some(Field { value, span }) = checker.read_string(table, "image_repository").optional()?
    else {
        return Some(None);
    };
    let id = value.strip_prefix("repository.").unwrap_or(&value);
    if !is_repository_id(id) {
        checker.error(
            span.unwrap_or_else(|| table.span.clone()),
            format!("`{value}` is not an Artifact Registry repository id"),
            Some("write image_repository = \"workers\": 1 to 63 lowercase letters, digits and `-`, starting with a letter and not ending with `-`".into()),
        );
        return None;
    }
    Some(Some(id.to_string()))
}

/// `labels = { key = "value" }`, checked against GCP's label rules.
fn read_labels(checker: &mut Checker, table: &TableRef) -> Option<BTreeMap<String, String>> {
    let map = checker
        .read_string_map(table, "labels")
        .or_default(StringMap::empty())?
        .value;
    let mut labels = BTreeMap::new();
    let mut valid = map.complete;
    for entry in map.entries {
        if entry.key == OWNER_LABEL {
            valid = false;
            checker.error(
                entry.key_span.clone(),
                format!("label `{OWNER_LABEL}` is reserved"),
                Some("stackctl sets it to the stack name to mark what it owns; remove it".into()),
            );
        } else if !is_label_key(&entry.key) {
            valid = false;
            checker.error(
                entry.key_span.clone(),
                format!("`{}` is not a valid label key", entry.key),
                Some("label keys start with a lowercase letter and use lowercase letters, digits, `-` and `_`, at most 63 characters".into()),
            );
        }
        if !is_label_value(&entry.value) {
            valid = false;
            checker.error(
                entry.value_span.clone(),
                format!("`{}` is not a valid label value", entry.value),
                Some("label values use lowercase letters, digits, `-` and `_`, at most 63 characters".into()),
            );
        }
        labels.insert(entry.key, entry.value);
    }
    valid.then_some(labels)
}

/// `id`, defaulting to the table name (its span then points at the name in the header).
fn read_id(checker: &mut Checker, table: &TableRef) -> Option<Field<String>> {
    let field = checker.read_string(table, "id").optional()?;
    Some(field.unwrap_or_else(|| Field {
        value: table.name.clone(),
        span: None,
    }))
}

fn id_error(checker: &mut Checker, table: &TableRef, id: &Field<String>, kind: Kind, rules: &str) {
    let (span, help) = match &id.span {
        Some(span) => (span.clone(), rules.to_string()),
        None => (
            table.name_span.clone(),
            format!(
                "{rules}; the id defaults to the table name, set id = \"...\" to choose another"
            ),
        ),
    };
    checker.error(
        span,
        format!("`{}` is not a valid {} id", id.value, kind_noun(kind)),
        Some(help),
    );
}

fn kind_noun(kind: Kind) -> &'static str {
    match kind {
        Kind::Service => "Cloud Run service",
        Kind::Queue => "Cloud Tasks queue",
        Kind::Dataset => "BigQuery dataset",
        Kind::Table => "BigQuery table",
        Kind::Repository => "Artifact Registry repository",
        Kind::Channel => "notification channel",
        Kind::Budget => "budget",
        Kind::Alert => "alert policy",
        Kind::Uptime => "uptime check",
        Kind::Gateway => "API gateway",
        Kind::ApiKey => "API key",
        Kind::Dashboard => "dashboard",
        Kind::ServiceAccount => "service account",
        Kind::Secret => "Secret Manager secret",
        Kind::Job => "Cloud Run job",
        Kind::Schedule => "Cloud Scheduler job",
        Kind::Firestore => "Firestore database",
        Kind::ShopifyWebhook => "Shopify webhook subscription",
        Kind::Api => "Google API",
        Kind::Grant => "IAM grant",
    }
}

/// Two tables of one kind must not claim the same GCP id; the later one (in the file) is flagged.
fn check_unique_ids<'a>(
    checker: &mut Checker,
    kind: Kind,
    ids: impl Iterator<Item = (&'a str, &'a str, Span)>,
) {
    let mut ids: Vec<_> = ids.collect();
    ids.sort_by_key(|(_, _, span)| span.start);
    let mut first_with_id: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, id, span) in ids {
        match first_with_id.get(id) {
            Some(first) => checker.error(
                span,
                format!(
                    "[{kind}.{name}] has the same {} id `{id}` as [{kind}.{first}]",
                    kind_noun(kind)
                ),
                Some(
                    "ids must be unique within a kind: set a different id = \"...\" on one of them"
                        .into(),
                ),
            ),
            None => {
                first_with_id.insert(id, name);
            }
        }
    }
}

// --- GCP naming rules ------------------------------------------------------------------------

#[cfg(test)]
mod tests;

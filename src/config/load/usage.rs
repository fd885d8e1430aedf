//! `[usage]`: monthly usage assumptions per declared resource, read only by the cost estimate.
//!
//! Entries are keyed by address, `"service.worker" = { requests_per_month = 2_000_000, ... }`;
//! the nested form `[usage.service.worker]` means the same.

use super::*;

pub(super) const SERVICE_USAGE_KEYS: &[&str] =
    &["avg_concurrency", "avg_request_ms", "requests_per_month"];

pub(super) const QUEUE_USAGE_KEYS: &[&str] = &["attempts_per_task", "tasks_per_month"];
pub(super) const TABLE_USAGE_KEYS: &[&str] =
    &["long_term_gib", "scanned_tib_per_month", "stored_gib"];
pub(super) const REPOSITORY_USAGE_KEYS: &[&str] = &["stored_gb"];
pub(super) const JOB_USAGE_KEYS: &[&str] = &["avg_task_seconds", "executions_per_month"];
pub(super) const FIRESTORE_USAGE_KEYS: &[&str] = &[
    "deletes_per_month",
    "reads_per_month",
    "stored_gib",
    "writes_per_month",
];
pub(super) const GATEWAY_USAGE_KEYS: &[&str] = &["calls_per_month"];
const USAGE_KINDS_HELP: &str = "usage entries describe declared services, queues, tables, repositories, jobs, Firestore databases and gateways: \"service.NAME\", \"queue.NAME\", \"table.NAME\", \"repository.NAME\", \"job.NAME\", \"firestore.NAME\", \"gateway.NAME\"";

/// Longest task the estimate accepts: Cloud Run jobs' 168-hour task timeout.
const MAX_AVG_TASK_SECONDS: f64 = 168.0 * 3600.0;

pub(super) const DEFAULT_AVG_CONCURRENCY: f64 = 1.0;

pub(super) const DEFAULT_ATTEMPTS_PER_TASK: f64 = 1.0;

/// Longest average request the estimate accepts: Cloud Run's 1-hour request timeout.
const MAX_AVG_REQUEST_MS: f64 = 3_600_000.0;

/// One `[usage]` entry before it is checked: its address text, where it is written, its table.
struct UsageEntry<'t, 'i> {
    address: String,
    key_span: Span,
    value: &'t Spanned<DeValue<'i>>,
}

pub(super) fn read_usage(
    checker: &mut Checker,
    value: &Spanned<DeValue>,
    services: &BTreeMap<String, Option<Parsed<ServiceConfig>>>,
    declared: &Declared,
) -> Option<Usage> {
    let DeValue::Table(table) = value.get_ref() else {
        checker.error(
            value.span(),
            format!(
                "`usage` must be a table, found {}",
                describe_type(value.get_ref())
            ),
            Some("write [usage] with one entry per resource: \"service.worker\" = { requests_per_month = 1_000_000, avg_request_ms = 100 }".into()),
        );
        return None;
    };
    let mut entries = Vec::new();
    let mut valid = true;
    for (key, entry) in table.iter() {
        let key_text = key.get_ref().as_ref();
        if key_text.contains('.') {
            entries.push(UsageEntry {
                address: key_text.to_string(),
                key_span: key.span(),
                value: entry,
            });
            continue;
        }
        // `[usage.service.worker]`: a kind holding one table per resource.
        match (key_text.parse::<Kind>(), entry.get_ref()) {
            (Ok(kind), DeValue::Table(inner)) => {
                for (name, nested) in inner.iter() {
                    entries.push(UsageEntry {
                        address: format!("{kind}.{}", name.get_ref()),
                        key_span: name.span(),
                        value: nested,
                    });
                }
            }
            _ => {
                valid = false;
                checker.error(
                    key.span(),
                    format!("`{key_text}` in [usage] is not a resource address"),
                    Some(format!(
                        "key each entry by the resource it describes, e.g. \"service.{key_text}\" = {{ requests_per_month = 1_000_000, avg_request_ms = 100 }}"
                    )),
                );
            }
        }
    }
    let mut usage = Usage::default();
    for entry in entries {
        valid &= read_entry(checker, &entry, services, declared, &mut usage);
    }
    valid.then_some(usage)
}

/// Checks one entry and records it; false if it was invalid (errors recorded).
fn read_entry(
    checker: &mut Checker,
    entry: &UsageEntry,
    services: &BTreeMap<String, Option<Parsed<ServiceConfig>>>,
    declared: &Declared,
    usage: &mut Usage,
) -> bool {
    let address: ResourceAddr = match entry.address.parse() {
        Ok(address) => address,
        Err(message) => {
            checker.error(
                entry.key_span.clone(),
                format!("[usage] \"{}\": {message}", entry.address),
                Some(USAGE_KINDS_HELP.into()),
            );
            return false;
        }
    };
    if !matches!(
        address.kind,
        Kind::Service
            | Kind::Queue
            | Kind::Table
            | Kind::Repository
            | Kind::Job
            | Kind::Firestore
            | Kind::Gateway
    ) {
        checker.error(
            entry.key_span.clone(),
            format!("[usage] has no assumptions for {} resources", address.kind),
            Some(USAGE_KINDS_HELP.into()),
        );
        return false;
    }
    let declared: Vec<&String> = declared
        .get(&address.kind)
        .map(|names| names.iter().collect())
        .unwrap_or_default();
    if !declared.contains(&&address.name) {
        let known = declared
            .iter()
            .map(|name| format!("{}.{name}", address.kind))
            .collect::<Vec<_>>();
        let help = if known.is_empty() {
            format!("stack.toml declares no {}; remove this entry", address.kind)
        } else {
            format!("declared: {}", known.join(", "))
        };
        checker.error(
            entry.key_span.clone(),
            format!("[usage] names {address}, which stack.toml does not declare"),
            Some(help),
        );
        return false;
    }
    let DeValue::Table(inner) = entry.value.get_ref() else {
        checker.error(
            entry.value.span(),
            format!(
                "[usage] \"{address}\" must be a table, found {}",
                describe_type(entry.value.get_ref())
            ),
            Some(format!("write \"{address}\" = {{ ... }}")),
        );
        return false;
    };
    let table = TableRef {
        kind: None,
        title: format!("[usage] \"{address}\""),
        name: address.name.clone(),
        name_span: entry.key_span.clone(),
        span: entry.value.span(),
        table: inner,
    };
    match address.kind {
        Kind::Service => {
            let concurrency = services
                .get(&address.name)
                .and_then(Option::as_ref)
                .map(|parsed| parsed.config.concurrency);
            match read_service_usage(checker, &table, concurrency) {
                Some(parsed) => {
                    usage.services.insert(address.name, parsed);
                    true
                }
                None => false,
            }
        }
        Kind::Queue => match read_queue_usage(checker, &table) {
            Some(parsed) => {
                usage.queues.insert(address.name, parsed);
                true
            }
            None => false,
        },
        Kind::Table => match read_table_usage(checker, &table) {
            Some(parsed) => {
                usage.tables.insert(address.name, parsed);
                true
            }
            None => false,
        },
        Kind::Repository => match read_repository_usage(checker, &table) {
            Some(parsed) => {
                usage.repositories.insert(address.name, parsed);
                true
            }
            None => false,
        },
        Kind::Job => match read_job_usage(checker, &table) {
            Some(parsed) => {
                usage.jobs.insert(address.name, parsed);
                true
            }
            None => false,
        },
        Kind::Firestore => match read_firestore_usage(checker, &table) {
            Some(parsed) => {
                usage.firestores.insert(address.name, parsed);
                true
            }
            None => false,
        },
        Kind::Gateway => {
            checker.check_keys(&table, GATEWAY_USAGE_KEYS);
            let calls = required_number(
                checker,
                &table,
                "calls_per_month",
                "add calls_per_month = 500_000 (requests through the gateway a month)",
                (0.0, 1e15),
                "0 or more",
            );
            match calls {
                Some(calls_per_month) => {
                    usage.gateways.insert(
                        address.name,
                        crate::config::GatewayUsage { calls_per_month },
                    );
                    true
                }
                None => false,
            }
        }
        // Refused above: the other kinds take no usage assumptions.
        _ => false,
    }
}

fn read_service_usage(
    checker: &mut Checker,
    table: &TableRef,
    concurrency: Option<u32>,
) -> Option<ServiceUsage> {
    checker.check_keys(table, SERVICE_USAGE_KEYS);
    let requests = checker
        .read_integer(
            table,
            "requests_per_month",
            0..=i64::MAX,
            "requests per month, e.g. 2_000_000",
        )
        .required(
            checker,
            table,
            "requests_per_month",
            "add requests_per_month = 1_000_000 (your estimate)".into(),
        );
    let avg_ms = required_number(
        checker,
        table,
        "avg_request_ms",
        "add avg_request_ms = 100 (average time to serve one request)",
        (f64::MIN_POSITIVE, MAX_AVG_REQUEST_MS),
        "above 0 and at most 3600000 (Cloud Run's 1-hour request limit)",
    );
    let max_concurrency = f64::from(concurrency.unwrap_or(1000));
    let avg_concurrency = checker
        .read_number(table, "avg_concurrency")
        .or_default(DEFAULT_AVG_CONCURRENCY)
        .and_then(|field| {
            check_number_range(
                checker,
                table,
                "avg_concurrency",
                &field,
                1.0,
                max_concurrency,
                &format!("at least 1 and at most the service's concurrency ({max_concurrency})"),
            )
        });
    Some(ServiceUsage {
        requests_per_month: u64::try_from(requests?.value).ok()?,
        avg_request_ms: avg_ms?,
        avg_concurrency: avg_concurrency?,
    })
}

fn read_queue_usage(checker: &mut Checker, table: &TableRef) -> Option<QueueUsage> {
    checker.check_keys(table, QUEUE_USAGE_KEYS);
    let tasks = checker
        .read_integer(
            table,
            "tasks_per_month",
            0..=i64::MAX,
            "tasks per month, e.g. 2_000_000",
        )
        .required(
            checker,
            table,
            "tasks_per_month",
            "add tasks_per_month = 1_000_000 (your estimate)".into(),
        );
    let attempts = checker
        .read_number(table, "attempts_per_task")
        .or_default(DEFAULT_ATTEMPTS_PER_TASK)
        .and_then(|field| {
            check_number_range(
                checker,
                table,
                "attempts_per_task",
                &field,
                1.0,
                f64::from(i32::MAX),
                "at least 1 (the first attempt counts)",
            )
        });
    Some(QueueUsage {
        tasks_per_month: u64::try_from(tasks?.value).ok()?,
        attempts_per_task: attempts?,
    })
}

fn read_table_usage(checker: &mut Checker, table: &TableRef) -> Option<TableUsage> {
    checker.check_keys(table, TABLE_USAGE_KEYS);
    let mut amount = |key: &str, required: bool| -> Option<f64> {
        let read = checker.read_number(table, key);
        let field = if required {
            read.required(
                checker,
                table,
                key,
                format!("add {key} = 20 (your estimate)"),
            )
        } else {
            read.or_default(0.0)
        }?;
        check_number_range(checker, table, key, &field, 0.0, 1e12, "0 or more")
    };
    let stored_gib = amount("stored_gib", true);
    let long_term_gib = amount("long_term_gib", false);
    let scanned_tib_per_month = amount("scanned_tib_per_month", false);
    Some(TableUsage {
        stored_gib: stored_gib?,
        long_term_gib: long_term_gib?,
        scanned_tib_per_month: scanned_tib_per_month?,
    })
}

fn read_firestore_usage(checker: &mut Checker, table: &TableRef) -> Option<FirestoreUsage> {
    checker.check_keys(table, FIRESTORE_USAGE_KEYS);
    let mut amount = |key: &str, example: &str, required: bool| -> Option<f64> {
        let read = checker.read_number(table, key);
        let field = if required {
            read.required(
                checker,
                table,
                key,
                format!("add {key} = {example} (your estimate)"),
            )
        } else {
            read.or_default(0.0)
        }?;
        check_number_range(checker, table, key, &field, 0.0, 1e15, "0 or more")
    };
    let reads = amount("reads_per_month", "3_000_000", true);
    let writes = amount("writes_per_month", "1_000_000", true);
    let deletes = amount("deletes_per_month", "500_000", false);
    let stored_gib = amount("stored_gib", "1", true);
    Some(FirestoreUsage {
        reads_per_month: reads?,
        writes_per_month: writes?,
        deletes_per_month: deletes?,
        stored_gib: stored_gib?,
    })
}

fn read_repository_usage(checker: &mut Checker, table: &TableRef) -> Option<RepositoryUsage> {
    checker.check_keys(table, REPOSITORY_USAGE_KEYS);
    let stored_gb = required_number(
        checker,
        table,
        "stored_gb",
        "add stored_gb = 2 (images kept, in GB)",
        (0.0, 1e12),
        "0 or more",
    )?;
    Some(RepositoryUsage { stored_gb })
}

/// A required number within `low..=high`; otherwise an error (`help` when it is missing).
fn required_number(
    checker: &mut Checker,
    table: &TableRef,
    key: &str,
    help: &str,
    (low, high): (f64, f64),
    rule: &str,
) -> Option<f64> {
    let field = checker
        .read_number(table, key)
        .required(checker, table, key, help.into())?;
    check_number_range(checker, table, key, &field, low, high, rule)
}

/// The value if `low <= value <= high`; otherwise an error at the value.
fn check_number_range(
    checker: &mut Checker,
    table: &TableRef,
    key: &str,
    field: &Field<f64>,
    low: f64,
    high: f64,
    rule: &str,
) -> Option<f64> {
    if (low..=high).contains(&field.value) {
        return Some(field.value);
    }
    let span = field.span.clone().unwrap_or_else(|| table.span.clone());
    checker.error(
        span,
        format!(
            "`{key}` in {} must be {rule}, found {}",
            table.title, field.value
        ),
        None,
    );
    None
}

fn read_job_usage(checker: &mut Checker, table: &TableRef) -> Option<JobUsage> {
    checker.check_keys(table, JOB_USAGE_KEYS);
    let avg_task_seconds = required_number(
        checker,
        table,
        "avg_task_seconds",
        "add avg_task_seconds = 120 (how long one task runs, retries included)",
        (f64::MIN_POSITIVE, MAX_AVG_TASK_SECONDS),
        "above 0 and at most 604800 (a Cloud Run job task's 168-hour limit)",
    );
    let executions_per_month = match checker
        .read_number(table, "executions_per_month")
        .optional()?
    {
        Some(field) => Some(check_number_range(
            checker,
            table,
            "executions_per_month",
            &field,
            0.0,
            1e9,
            "0 or more",
        )?),
        None => None,
    };
    Some(JobUsage {
        avg_task_seconds: avg_task_seconds?,
        executions_per_month,
    })
}

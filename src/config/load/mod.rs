//! Parsing stack.toml with spans into the typed [`super::Stack`], applying defaults and validating.
//!
//! The document is parsed with `toml::de::DeTable::parse_recoverable`, which keeps a byte span
//! for every key and value. Every check records its error and carries on, so one run reports
//! every problem in the file; the typed [`Stack`] is built only when there are none.

use std::collections::BTreeMap;
use std::ops::{Range, RangeInclusive};
use std::path::Path;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::units::{self, UnitError};
use super::{
    AlertConfig, BudgetConfig, ChannelConfig, Column, ConfigError, ConfigErrors, DatasetConfig,
    ImageSource, Ingress, JobConfig, JobUsage, Partition, QueueConfig, QueueUsage,
    RepositoryConfig, RepositoryUsage, ScheduleConfig, SecretConfig, ServiceAccountConfig,
    ServiceConfig, ServiceUsage, Stack, StackSettings, TableConfig, TableUsage, Usage,
};
use crate::model::{Kind, ResourceAddr};

mod alert;
mod budget;
mod channel;
mod dataset;
mod job;
mod queue;
mod references;
mod repository;
mod rules;
mod schedule;
mod secret;
mod service;
mod service_account;
mod table;
mod usage;
mod values;

use alert::*;
use budget::*;
use channel::*;
use dataset::*;
use job::*;
use queue::*;
use references::*;
use repository::*;
use rules::*;
use schedule::*;
use secret::*;
use service::*;
use service_account::*;
use table::*;
use usage::*;

type Span = Range<usize>;

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
const SUPPORTED_TABLES: &str = "[stack], [service.NAME], [queue.NAME], [service_account.NAME], [secret.NAME], [job.NAME], [schedule.NAME], [dataset.NAME], [table.NAME], [repository.NAME], [channel.NAME], [budget.NAME], [alert.NAME], [usage]";

/// The label stackctl puts on everything it owns; users cannot set it.
const OWNERSHIP_LABEL: &str = "stackctl-stack";

/// Reads and parses the stack file at `path`.
pub fn load(path: &Path) -> Result<Stack, ConfigErrors> {
    let source = std::fs::read_to_string(path).map_err(|error| {
        let help = match error.kind() {
            std::io::ErrorKind::NotFound => {
                "create one with the [stack] table (name, project, region) or pass -f PATH"
                    .to_string()
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
    parse(path, &source)
}

/// Parses stack file text; `file` is only used in messages and kept as [`Stack::file`].
pub fn parse(file: &Path, source: &str) -> Result<Stack, ConfigErrors> {
    let mut checker = Checker {
        file,
        source,
        errors: Vec::new(),
        references: Vec::new(),
    };
    let (document, syntax_errors) = DeTable::parse_recoverable(source);
    if !syntax_errors.is_empty() {
        for error in syntax_errors {
            let span = error.span().unwrap_or(0..0);
            checker.error(span, format!("invalid TOML: {}", error.message()), None);
        }
        return Err(checker.into_errors());
    }
    let document = document.into_inner();
    let stack = read_document(&mut checker, &document);
    match stack {
        Some(stack) if checker.errors.is_empty() => Ok(stack),
        _ => Err(checker.into_errors()),
    }
}

/// Collects errors against one source text.
struct Checker<'s> {
    file: &'s Path,
    source: &'s str,
    errors: Vec<ConfigError>,
    /// Every valid reference read so far, for the cycle check.
    references: Vec<Reference>,
}

impl Checker<'_> {
    fn error(&mut self, span: Span, message: impl Into<String>, help: Option<String>) {
        self.errors
            .push(ConfigError::at(self.file, self.source, span, message, help));
    }

    fn into_errors(self) -> ConfigErrors {
        ConfigErrors::new(self.errors)
    }

    fn file_name(&self) -> String {
        self.file.display().to_string()
    }
}

/// One table of the document, with what messages call it.
struct TableRef<'t, 'i> {
    /// `[service.worker]`
    title: String,
    /// The table's own name (`worker`); empty for `[stack]`.
    name: String,
    /// Where the table's name is written (for defaulted ids).
    name_span: Span,
    /// The header, or the inline table (for "missing key" errors).
    span: Span,
    table: &'t DeTable<'i>,
    /// The resource kind (`None` for `[stack]`).
    kind: Option<Kind>,
}

impl<'t, 'i> TableRef<'t, 'i> {
    fn get(&self, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.table.get(key)
    }
}

/// A key as read from a table.
enum Read<T> {
    Absent,
    /// Present but unusable; the error is already recorded.
    Invalid,
    Found(T, Span),
}

/// A usable value: declared at `span`, or defaulted (`span` is `None`).
#[derive(Debug, Clone)]
struct Field<T> {
    value: T,
    span: Option<Span>,
}

impl<T> Read<T> {
    fn or_default(self, default: T) -> Option<Field<T>> {
        match self {
            Read::Absent => Some(Field {
                value: default,
                span: None,
            }),
            Read::Invalid => None,
            Read::Found(value, span) => Some(Field {
                value,
                span: Some(span),
            }),
        }
    }

    fn optional(self) -> Option<Option<Field<T>>> {
        match self {
            Read::Absent => Some(None),
            Read::Invalid => None,
            Read::Found(value, span) => Some(Some(Field {
                value,
                span: Some(span),
            })),
        }
    }

    fn required(
        self,
        checker: &mut Checker,
        table: &TableRef,
        key: &str,
        help: String,
    ) -> Option<Field<T>> {
        match self {
            Read::Absent => {
                checker.error(
                    table.span.clone(),
                    format!("{} has no `{key}`", table.title),
                    Some(help),
                );
                None
            }
            Read::Invalid => None,
            Read::Found(value, span) => Some(Field {
                value,
                span: Some(span),
            }),
        }
    }
}

/// A value that could not be used, and what to tell the user.
struct Problem {
    message: String,
    help: Option<String>,
}

impl Problem {
    fn new(message: impl Into<String>, help: Option<String>) -> Self {
        Self {
            message: message.into(),
            help,
        }
    }
}

fn describe_type(value: &DeValue) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// How a number or boolean is written, for "quote it" hints.
fn scalar_text(value: &DeValue) -> Option<String> {
    match value {
        DeValue::Integer(integer) => Some(integer.to_string()),
        DeValue::Float(float) => Some(float.as_str().to_string()),
        DeValue::Boolean(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn type_problem(
    key: &str,
    title: &str,
    expected: &str,
    value: &DeValue,
    help: Option<String>,
) -> Problem {
    Problem::new(
        format!(
            "`{key}` in {title}: expected {expected}, found {}",
            describe_type(value)
        ),
        help,
    )
}

fn integer_value(value: &DeValue) -> Option<Result<i64, ()>> {
    let integer = value.as_integer()?;
    Some(i64::from_str_radix(integer.as_str(), integer.radix()).map_err(|_| ()))
}

impl Checker<'_> {
    /// Reads `key` and converts it, recording the conversion's problem at the value.
    fn read<T>(
        &mut self,
        table: &TableRef,
        key: &str,
        convert: impl FnOnce(&DeValue) -> Result<T, Problem>,
    ) -> Read<T> {
        let Some(value) = table.get(key) else {
            return Read::Absent;
        };
        match convert(value.get_ref()) {
            Ok(converted) => Read::Found(converted, value.span()),
            Err(problem) => {
                self.error(value.span(), problem.message, problem.help);
                Read::Invalid
            }
        }
    }

    fn read_string(&mut self, table: &TableRef, key: &str) -> Read<String> {
        let title = &table.title;
        self.read(table, key, |value| match value {
            DeValue::String(text) => Ok(text.to_string()),
            other => {
                let help = Some(format!("quote it: {key} = \"...\""));
                Err(type_problem(key, title, "a string", other, help))
            }
        })
    }

    fn read_bool(&mut self, table: &TableRef, key: &str) -> Read<bool> {
        let title = &table.title;
        self.read(table, key, |value| match value {
            DeValue::Boolean(flag) => Ok(*flag),
            DeValue::String(text) if matches!(text.as_ref(), "true" | "false") => {
                Err(type_problem(
                    key,
                    title,
                    "true or false",
                    value,
                    Some(format!("remove the quotes: {key} = {text}")),
                ))
            }
            other => Err(type_problem(key, title, "true or false", other, None)),
        })
    }

    /// An integer within `range`; `range_help` explains the limit.
    fn read_integer(
        &mut self,
        table: &TableRef,
        key: &str,
        range: RangeInclusive<i64>,
        range_help: &str,
    ) -> Read<i64> {
        let title = &table.title;
        self.read(table, key, |value| {
            let number = match integer_value(value) {
                Some(Ok(number)) => number,
                Some(Err(())) => {
                    return Err(Problem::new(
                        format!("`{key}` in {title} is too large"),
                        None,
                    ));
                }
                None => {
                    let help = match value {
                        DeValue::String(text) if text.trim().parse::<i64>().is_ok() => {
                            Some(format!("remove the quotes: {key} = {}", text.trim()))
                        }
                        _ => None,
                    };
                    return Err(type_problem(key, title, "an integer", value, help));
                }
            };
            if range.contains(&number) {
                Ok(number)
            } else {
                Err(out_of_range(key, title, number, &range, range_help))
            }
        })
    }

    /// An integer or float.
    fn read_number(&mut self, table: &TableRef, key: &str) -> Read<f64> {
        let title = &table.title;
        self.read(table, key, |value| match value {
            DeValue::Float(float) => float
                .as_str()
                .parse::<f64>()
                .ok()
                .filter(|number| number.is_finite())
                .ok_or_else(|| {
                    Problem::new(format!("`{key}` in {title} must be a finite number"), None)
                }),
            DeValue::Integer(_) => match integer_value(value) {
                // Every limit we check is far below 2^53, so the conversion is exact where it matters.
                Some(Ok(number)) => Ok(number as f64),
                _ => Err(Problem::new(
                    format!("`{key}` in {title} is too large"),
                    None,
                )),
            },
            other => Err(type_problem(key, title, "a number", other, None)),
        })
    }

    fn read_duration(
        &mut self,
        table: &TableRef,
        key: &str,
        range: RangeInclusive<Duration>,
    ) -> Read<Duration> {
        let title = &table.title;
        self.read(table, key, |value| {
            let duration = match value {
                DeValue::String(text) => {
                    units::parse_duration(text).map_err(|error| unit_problem(key, title, &error))?
                }
                DeValue::Integer(_) | DeValue::Float(_) => {
                    let number = scalar_text(value).unwrap_or_default();
                    let help = Some(format!(
                        "durations are strings with a unit: {key} = \"{number}s\""
                    ));
                    return Err(type_problem(
                        key,
                        title,
                        "a duration string like \"300s\"",
                        value,
                        help,
                    ));
                }
                other => {
                    return Err(type_problem(
                        key,
                        title,
                        "a duration string like \"300s\"",
                        other,
                        None,
                    ));
                }
            };
            if range.contains(&duration) {
                Ok(duration)
            } else {
                let (low, high) = (
                    units::format_duration(*range.start()),
                    units::format_duration(*range.end()),
                );
                Err(Problem::new(
                    format!(
                        "`{key}` in {title} must be between {low} and {high}, found {}",
                        units::format_duration(duration)
                    ),
                    None,
                ))
            }
        })
    }

    fn read_memory(
        &mut self,
        table: &TableRef,
        key: &str,
        range: RangeInclusive<u64>,
    ) -> Read<u64> {
        let title = &table.title;
        self.read(table, key, |value| {
            let bytes = match value {
                DeValue::String(text) => {
                    units::parse_memory(text).map_err(|error| unit_problem(key, title, &error))?
                }
                other => {
                    let help = Some(format!("sizes are strings with a unit: {key} = \"512Mi\""));
                    return Err(type_problem(
                        key,
                        title,
                        "a memory size string like \"512Mi\"",
                        other,
                        help,
                    ));
                }
            };
            if range.contains(&bytes) {
                Ok(bytes)
            } else {
                let (low, high) = (
                    units::format_memory(*range.start()),
                    units::format_memory(*range.end()),
                );
                Err(Problem::new(
                    format!(
                        "`{key}` in {title} must be between {low} and {high}, found {}",
                        units::format_memory(bytes)
                    ),
                    Some("Cloud Run allows 128Mi to 32Gi".into()),
                ))
            }
        })
    }

    /// CPU in millicores from `"1"`, `"0.5"`, `"500m"`, `1` or `0.5`.
    fn read_cpu(&mut self, table: &TableRef, key: &str) -> Read<u32> {
        let title = &table.title;
        self.read(table, key, |value| {
            let parsed = match value {
                DeValue::String(text) => units::parse_cpu(text),
                DeValue::Float(float) => units::parse_cpu(float.as_str()).or_else(|_| {
                    let cores = float.as_str().parse::<f64>().unwrap_or(f64::NAN);
                    units::cpu_millis_from_cores(cores)
                }),
                DeValue::Integer(_) => match integer_value(value) {
                    Some(Ok(cores)) => units::parse_cpu(&cores.to_string()),
                    _ => {
                        return Err(Problem::new(
                            format!("`{key}` in {title} is too large"),
                            None,
                        ));
                    }
                },
                other => {
                    let expected = "a cpu amount like \"1\", \"0.5\" or \"500m\"";
                    return Err(type_problem(key, title, expected, other, None));
                }
            };
            parsed.map_err(|error| unit_problem(key, title, &error))
        })
    }

    /// A table of string values (`env`, `labels`), each entry with its spans. Entries that
    /// are not strings are reported and left out (`complete` is then false), so the rest can
    /// still be checked.
    fn read_string_map(&mut self, table: &TableRef, key: &str) -> Read<StringMap> {
        let Some(value) = table.get(key) else {
            return Read::Absent;
        };
        let DeValue::Table(entries) = value.get_ref() else {
            let help = Some(format!("write {key} = {{ NAME = \"value\" }}"));
            let problem = type_problem(
                key,
                &table.title,
                "a table of strings",
                value.get_ref(),
                help,
            );
            self.error(value.span(), problem.message, problem.help);
            return Read::Invalid;
        };
        let mut map = StringMap {
            entries: Vec::new(),
            complete: true,
        };
        for (entry_key, entry_value) in entries.iter() {
            match entry_value.get_ref() {
                DeValue::String(text) => map.entries.push(MapEntry {
                    key: entry_key.get_ref().to_string(),
                    key_span: entry_key.span(),
                    value: text.to_string(),
                    value_span: entry_value.span(),
                }),
                other => {
                    map.complete = false;
                    let help = scalar_text(other)
                        .map(|text| format!("quote it: {} = \"{text}\"", entry_key.get_ref()));
                    let message = format!(
                        "`{key}.{}` in {}: expected a string, found {}",
                        entry_key.get_ref(),
                        table.title,
                        describe_type(other)
                    );
                    self.error(entry_value.span(), message, help);
                }
            }
        }
        Read::Found(map, value.span())
    }

    /// Records an unknown-key error for every key of `table` not in `known`.
    fn check_keys(&mut self, table: &TableRef, known: &[&str]) {
        for key in table.table.keys() {
            let name = key.get_ref().as_ref();
            if known.contains(&name) {
                continue;
            }
            let help = match closest(name, known.iter().copied()) {
                Some(suggestion) => format!("did you mean `{suggestion}`?"),
                None => format!("known keys in {}: {}", table.title, known.join(", ")),
            };
            self.error(
                key.span(),
                format!("unknown key `{name}` in {}", table.title),
                Some(help),
            );
        }
    }
}

fn unit_problem(key: &str, title: &str, error: &UnitError) -> Problem {
    let example = match error.quantity {
        units::Quantity::Duration => {
            "write durations like \"300s\", \"10m\", \"1h30m\" or \"100ms\""
        }
        units::Quantity::Memory => "write sizes like \"512Mi\" or \"1Gi\"",
        units::Quantity::Cpu => "write cores like \"1\" or \"0.5\", or millicores like \"500m\"",
    };
    Problem::new(
        format!("`{key}` in {title}: {error}"),
        Some(example.to_string()),
    )
}

fn out_of_range(
    key: &str,
    title: &str,
    found: i64,
    range: &RangeInclusive<i64>,
    help: &str,
) -> Problem {
    let help = (!help.is_empty()).then(|| help.to_string());
    let message = if *range.end() >= i64::from(i32::MAX) {
        format!(
            "`{key}` in {title} must be at least {}, found {found}",
            range.start()
        )
    } else {
        format!(
            "`{key}` in {title} must be between {} and {}, found {found}",
            range.start(),
            range.end()
        )
    };
    Problem::new(message, help)
}

/// The string entries of an `env` or `labels` table.
struct StringMap {
    entries: Vec<MapEntry>,
    /// False when some entry was not a string (and was reported).
    complete: bool,
}

impl StringMap {
    fn empty() -> Self {
        Self {
            entries: Vec::new(),
            complete: true,
        }
    }
}

/// One `KEY = "value"` of an `env` or `labels` table.
struct MapEntry {
    key: String,
    key_span: Span,
    value: String,
    value_span: Span,
}

/// The known name closest to `unknown` by edit distance, if it is close enough to be a typo.
fn closest<'a>(unknown: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (unknown.chars().count() / 3).max(1);
    known
        .map(|candidate| (edit_distance(unknown, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// The top level: `[stack]`, `[service.*]`, `[queue.*]`; anything else is an error.
fn read_document(checker: &mut Checker, document: &DeTable) -> Option<Stack> {
    let mut stack_table = None;
    let mut usage_value = None;
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
            let file = checker.file_name();
            checker.errors.push(ConfigError::whole_file(
                checker.file,
                format!("no [stack] table in {file}"),
                Some("add [stack] with name, project and region".into()),
            ));
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
    let mut channels = BTreeMap::new();
    for table in tables_of(Kind::Channel) {
        channels.insert(table.name.clone(), read_channel(checker, table));
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
    let mut alerts = BTreeMap::new();
    for table in tables_of(Kind::Alert) {
        alerts.insert(
            table.name.clone(),
            read_alert(checker, table, &declared, &ids),
        );
    }
    let job_results = read_all(checker, Kind::Job, &jobs, |c, t| {
        read_job(c, t, image_repository, &declared)
    });
    let schedule_results = read_all(checker, Kind::Schedule, &schedules, |c, t| {
        read_schedule(c, t, &declared)
    });
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
        service_accounts: collect_all(account_results)?,
        secrets: collect_all(secret_results)?,
        jobs: collect_all(job_results)?,
        schedules: collect_all(schedule_results)?,
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
    ScheduleConfig
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
            Some("use 3 to 63 lowercase letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit".into()),
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

/// `image_repository = "workers"` (an Artifact Registry repository id) or, looking ahead to
/// `[repository.*]` tables, `"repository.workers"`; both mean the repository id `workers`.
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
        if entry.key == OWNERSHIP_LABEL {
            valid = false;
            checker.error(
                entry.key_span.clone(),
                format!("label `{OWNERSHIP_LABEL}` is reserved"),
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
        Kind::ServiceAccount => "service account",
        Kind::Secret => "Secret Manager secret",
        Kind::Job => "Cloud Run job",
        Kind::Schedule => "Cloud Scheduler job",
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

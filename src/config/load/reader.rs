//! The generic span-aware TOML reader: parses a document keeping a byte span for every key
//! and value (`toml::de::DeTable::parse_recoverable`), reads typed values (strings, booleans,
//! integers, numbers, durations, sizes, CPU, string maps) out of a table, and records each
//! problem as a [`ConfigError`] with file, line and column, then carries on, so one run reports
//! every problem in a file. It knows nothing of stack.toml's tables; `super` does.

use std::ops::{Range, RangeInclusive};
use std::path::Path;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::super::units::{self, UnitError};
use super::super::{ConfigError, ConfigErrors};
use crate::model::Kind;

pub(super) type Span = Range<usize>;

/// Collects errors against one source text.
pub(super) struct Reader<'s> {
    pub(super) file: &'s Path,
    pub(super) source: &'s str,
    pub(super) errors: Vec<ConfigError>,
}

impl<'s> Reader<'s> {
    pub(super) fn new(file: &'s Path, source: &'s str) -> Self {
        Self {
            file,
            source,
            errors: Vec::new(),
        }
    }

    /// The document's top-level table, or `None` with every syntax error recorded.
    pub(super) fn parse(&mut self) -> Option<DeTable<'s>> {
        let (document, syntax_errors) = DeTable::parse_recoverable(self.source);
        if !syntax_errors.is_empty() {
            for error in syntax_errors {
                let span = error.span().unwrap_or(0..0);
                self.error(span, format!("invalid TOML: {}", error.message()), None);
            }
            return None;
        }
        Some(document.into_inner())
    }

    pub(super) fn error(&mut self, span: Span, message: impl Into<String>, help: Option<String>) {
        self.errors
            .push(ConfigError::at(self.file, self.source, span, message, help));
    }

    pub(super) fn into_errors(self) -> ConfigErrors {
        ConfigErrors::new(self.errors)
    }

    pub(super) fn file_name(&self) -> String {
        self.file.display().to_string()
    }
}

/// One table of the document, with what messages call it.
pub(super) struct TableRef<'t, 'i> {
    /// `[service.worker]`
    pub(super) title: String,
    /// The table's own name (`worker`); empty for `[stack]`.
    pub(super) name: String,
    /// Where the table's name is written (for defaulted ids).
    pub(super) name_span: Span,
    /// The header, or the inline table (for "missing key" errors).
    pub(super) span: Span,
    pub(super) table: &'t DeTable<'i>,
    /// The resource kind (`None` for `[stack]`).
    pub(super) kind: Option<Kind>,
}

impl<'t, 'i> TableRef<'t, 'i> {
    pub(super) fn get(&self, key: &str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.table.get(key)
    }
}

/// A key as read from a table.
pub(super) enum Read<T> {
    Absent,
    /// Present but unusable; the error is already recorded.
    Invalid,
    Found(T, Span),
}

/// A usable value: declared at `span`, or defaulted (`span` is `None`).
#[derive(Debug, Clone)]
pub(super) struct Field<T> {
    pub(super) value: T,
    pub(super) span: Option<Span>,
}

impl<T> Read<T> {
    pub(super) fn or_default(self, default: T) -> Option<Field<T>> {
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

    pub(super) fn optional(self) -> Option<Option<Field<T>>> {
        match self {
            Read::Absent => Some(None),
            Read::Invalid => None,
            Read::Found(value, span) => Some(Some(Field {
                value,
                span: Some(span),
            })),
        }
    }

    pub(super) fn required(
        self,
        checker: &mut Reader,
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
pub(super) struct Problem {
    pub(super) message: String,
    pub(super) help: Option<String>,
}

impl Problem {
    pub(super) fn new(message: impl Into<String>, help: Option<String>) -> Self {
        Self {
            message: message.into(),
            help,
        }
    }
}

pub(super) fn describe_type(value: &DeValue) -> &'static str {
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
pub(super) fn scalar_text(value: &DeValue) -> Option<String> {
    match value {
        DeValue::Integer(integer) => Some(integer.to_string()),
        DeValue::Float(float) => Some(float.as_str().to_string()),
        DeValue::Boolean(flag) => Some(flag.to_string()),
        _ => None,
    }
}

pub(super) fn type_problem(
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

pub(super) fn integer_value(value: &DeValue) -> Option<Result<i64, ()>> {
    let integer = value.as_integer()?;
    Some(i64::from_str_radix(integer.as_str(), integer.radix()).map_err(|_| ()))
}

impl Reader<'_> {
    /// Reads `key` and converts it, recording the conversion's problem at the value.
    pub(super) fn read<T>(
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

    pub(super) fn read_string(&mut self, table: &TableRef, key: &str) -> Read<String> {
        let title = &table.title;
        self.read(table, key, |value| match value {
            DeValue::String(text) => Ok(text.to_string()),
            other => {
                let help = Some(format!("quote it: {key} = \"...\""));
                Err(type_problem(key, title, "a string", other, help))
            }
        })
    }

    pub(super) fn read_bool(&mut self, table: &TableRef, key: &str) -> Read<bool> {
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
    pub(super) fn read_integer(
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
    pub(super) fn read_number(&mut self, table: &TableRef, key: &str) -> Read<f64> {
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

    pub(super) fn read_duration(
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

    pub(super) fn read_memory(
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
    pub(super) fn read_cpu(&mut self, table: &TableRef, key: &str) -> Read<u32> {
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
    pub(super) fn read_string_map(&mut self, table: &TableRef, key: &str) -> Read<StringMap> {
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
    pub(super) fn check_keys(&mut self, table: &TableRef, known: &[&str]) {
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

pub(super) fn unit_problem(key: &str, title: &str, error: &UnitError) -> Problem {
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

pub(super) fn out_of_range(
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
pub(super) struct StringMap {
    pub(super) entries: Vec<MapEntry>,
    /// False when some entry was not a string (and was reported).
    pub(super) complete: bool,
}

impl StringMap {
    pub(super) fn empty() -> Self {
        Self {
            entries: Vec::new(),
            complete: true,
        }
    }
}

/// One `KEY = "value"` of an `env` or `labels` table.
pub(super) struct MapEntry {
    pub(super) key: String,
    pub(super) key_span: Span,
    pub(super) value: String,
    pub(super) value_span: Span,
}

/// The known name closest to `unknown` by edit distance, if it is close enough to be a typo.
pub(super) fn closest<'a>(unknown: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (unknown.chars().count() / 3).max(1);
    known
        .map(|candidate| (edit_distance(unknown, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over characters.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
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

//! `[alert.NAME]`: a Monitoring alert policy from a shipped template or explicit conditions.

use super::*;
use crate::config::AlertCondition;
use crate::config::templates::{self, Needs, ThresholdFrom};

pub(super) const ALERT_KEYS: &[&str] = &[
    "conditions",
    "display_name",
    "documentation",
    "duration",
    "gateway",
    "job",
    "notify",
    "queue",
    "service",
    "severity",
    "template",
    "threshold",
    "uptime",
];

/// `AlertPolicy.severity` values, as stack.toml writes them.
const SEVERITIES: [&str; 3] = ["critical", "error", "warning"];

/// Google's limits on `documentation.content`.
const DOCUMENTATION_MAX_CHARS: usize = 8_192;
const DOCUMENTATION_MAX_BYTES: usize = 10_240;

const CONDITION_KEYS: &[&str] = &[
    "aligner",
    "comparison",
    "denominator_filter",
    "duration",
    "filter",
    "group_by",
    "name",
    "period",
    "reducer",
    "threshold",
];

const ALIGNERS: &[&str] = &[
    "ALIGN_COUNT",
    "ALIGN_DELTA",
    "ALIGN_MAX",
    "ALIGN_MEAN",
    "ALIGN_MIN",
    "ALIGN_NONE",
    "ALIGN_PERCENTILE_50",
    "ALIGN_PERCENTILE_95",
    "ALIGN_PERCENTILE_99",
    "ALIGN_RATE",
    "ALIGN_SUM",
];

const REDUCERS: &[&str] = &[
    "REDUCE_COUNT",
    "REDUCE_MAX",
    "REDUCE_MEAN",
    "REDUCE_MIN",
    "REDUCE_NONE",
    "REDUCE_PERCENTILE_99",
    "REDUCE_SUM",
];

/// Default alignment period of explicit conditions.
const DEFAULT_PERIOD: Duration = Duration::from_secs(300);

/// `>` or `COMPARISON_GT` -> `COMPARISON_GT`.
pub(super) fn comparison(text: &str) -> Option<&'static str> {
    Some(match text.trim() {
        ">" | "GT" | "COMPARISON_GT" => "COMPARISON_GT",
        ">=" | "GE" | "COMPARISON_GE" => "COMPARISON_GE",
        "<" | "LT" | "COMPARISON_LT" => "COMPARISON_LT",
        "<=" | "LE" | "COMPARISON_LE" => "COMPARISON_LE",
        "==" | "EQ" | "COMPARISON_EQ" => "COMPARISON_EQ",
        "!=" | "NE" | "COMPARISON_NE" => "COMPARISON_NE",
        _ => return None,
    })
}

pub(super) fn read_alert(
    checker: &mut Checker,
    table: &TableRef,
    declared: &Declared,
    ids: &BTreeMap<ResourceAddr, String>,
    max_instances: &BTreeMap<ResourceAddr, u32>,
) -> Option<AlertConfig> {
    checker.check_keys(table, ALERT_KEYS);
    let name_ok = check_label_name(checker, table);
    let display_name = checker
        .read_string(table, "display_name")
        .or_default(table.name.clone());
    let notify = checker
        .read_reference_list_at(table, "notify", Kind::Channel, declared)
        .or_default(Vec::new());
    let template = checker.read_string(table, "template").optional();
    let service = checker
        .read_reference_at(table, "service", Kind::Service, declared)
        .optional();
    let queue = checker
        .read_reference_at(table, "queue", Kind::Queue, declared)
        .optional();
    let job = checker
        .read_reference_at(table, "job", Kind::Job, declared)
        .optional();
    let uptime = checker
        .read_reference_at(table, "uptime", Kind::Uptime, declared)
        .optional();
    let gateway = checker
        .read_reference_at(table, "gateway", Kind::Gateway, declared)
        .optional();
    let threshold = checker.read_number(table, "threshold").optional();
    let duration = checker
        .read_duration(
            table,
            "duration",
            Duration::ZERO..=Duration::from_secs(86_400),
        )
        .optional();
    let explicit = read_conditions(checker, table);
    let documentation = read_documentation(checker, table);
    let severity = read_severity(checker, table);
    let (template, service, queue, job, uptime, gateway) =
        (template?, service?, queue?, job?, uptime?, gateway?);
    let (threshold, duration, explicit) = (threshold?, duration?, explicit?);

    let (documentation, severity) = (documentation?, severity?);
    let mut watches = Vec::new();
    let mut template_documentation = None;
    let conditions = match (template, explicit) {
        (Some(_), Some((_, span))) => {
            checker.error(
                span,
                format!("{} has both `template` and `conditions`", table.title),
                Some("use a template, or explicit conditions, not both".into()),
            );
            return None;
        }
        (None, None) => {
            checker.error(
                table.span.clone(),
                format!("{} has neither `template` nor `conditions`", table.title),
                Some(format!(
                    "add template = \"...\" ({}) or conditions = [{{ filter = \"...\", comparison = \">\", threshold = 1, duration = \"300s\", aligner = \"ALIGN_MEAN\" }}]",
                    templates::names().collect::<Vec<_>>().join(", ")
                )),
            );
            return None;
        }
        (None, Some((conditions, _))) => {
            for (key, field) in [
                ("service", &service),
                ("queue", &queue),
                ("job", &job),
                ("uptime", &uptime),
                ("gateway", &gateway),
            ] {
                if let Some(f) = field {
                    checker.error(
                        f.span.clone().unwrap_or_else(|| table.span.clone()),
                        format!(
                            "`{key}` in {} is a template parameter, but there is no template",
                            table.title
                        ),
                        Some(
                            "put the resource in the condition's filter, or use a template".into(),
                        ),
                    );
                }
            }
            for (key, present) in [
                ("threshold", threshold.is_some()),
                ("duration", duration.is_some()),
            ] {
                if present {
                    checker.error(
                        table.span.clone(),
                        format!("`{key}` in {} is a template parameter; explicit conditions carry their own", table.title),
                        Some(format!("move {key} into each condition")),
                    );
                }
            }
            conditions
        }
        (Some(name), None) => {
            let span = name.span.clone().unwrap_or_else(|| table.span.clone());
            let Some(t) = templates::template(&name.value) else {
                let help = match closest(&name.value, templates::names()) {
                    Some(s) => format!("did you mean \"{s}\"?"),
                    None => format!(
                        "templates: {}",
                        templates::names().collect::<Vec<_>>().join(", ")
                    ),
                };
                checker.error(
                    span,
                    format!("no alert template `{}`", name.value),
                    Some(help),
                );
                return None;
            };
            let wanted_key = match t.needs {
                Needs::Service => Some("service"),
                Needs::Queue => Some("queue"),
                Needs::Job => Some("job"),
                Needs::Uptime => Some("uptime"),
                Needs::Gateway => Some("gateway"),
                Needs::None => None,
            };
            let parameters = [
                ("service", &service),
                ("queue", &queue),
                ("job", &job),
                ("uptime", &uptime),
                ("gateway", &gateway),
            ];
            let other = parameters
                .iter()
                .find(|(key, field)| Some(*key) != wanted_key && field.is_some())
                .and_then(|(key, field)| (*field).clone().map(|f| (*key, f)));
            let wanted = wanted_key.map(|key| {
                let field = parameters
                    .iter()
                    .find(|(k, _)| *k == key)
                    .and_then(|(_, f)| (*f).clone());
                (key, field)
            });
            if let Some((key, f)) = other {
                checker.error(
                    f.span.unwrap_or_else(|| table.span.clone()),
                    format!("template `{}` takes no `{key}`", name.value),
                    None,
                );
                return None;
            }
            let target_id = match wanted {
                Some((key, None)) => {
                    checker.error(
                        table.span.clone(),
                        format!("template `{}` in {} needs `{key}`", name.value, table.title),
                        Some(format!("add {key} = \"{key}.NAME\"")),
                    );
                    return None;
                }
                Some((_, Some(f))) => {
                    let id = ids.get(&f.value).cloned()?;
                    watches.push(f.value);
                    id
                }
                None => String::new(),
            };
            let declared_default = match (t.threshold_from, watches.first()) {
                (Some(ThresholdFrom::MaxInstances), Some(service)) => {
                    max_instances.get(service).map(|&cap| f64::from(cap))
                }
                _ => None,
            };
            let threshold = threshold
                .map(|f| f.value)
                .or(declared_default)
                .unwrap_or(t.threshold);
            let duration = duration
                .map(|f| f.value)
                .unwrap_or_else(|| t.default_duration());
            template_documentation = t.documentation_for(&target_id, watches.first());
            vec![t.expand(&target_id, threshold, duration)]
        }
    };
    let (display_name, notify) = (display_name?, notify?);
    name_ok.then_some(AlertConfig {
        display_name: display_name.value,
        conditions,
        notify: notify.value,
        watches,
        // `documentation = ""` is none at all, not the template's.
        documentation: match documentation {
            Some(text) if text.is_empty() => None,
            Some(text) => Some(text),
            None => template_documentation,
        },
        severity,
    })
}

/// `documentation = "..."`: Markdown within Google's limits.
fn read_documentation(checker: &mut Checker, table: &TableRef) -> Option<Option<String>> {
    let Some(text) = checker.read_string(table, "documentation").optional()? else {
        return Some(None);
    };
    let (chars, bytes) = (text.value.chars().count(), text.value.len());
    if chars > DOCUMENTATION_MAX_CHARS || bytes > DOCUMENTATION_MAX_BYTES {
        checker.error(
            text.span.unwrap_or_else(|| table.span.clone()),
            format!(
                "`documentation` in {} is {chars} characters ({bytes} bytes); Google takes at most {DOCUMENTATION_MAX_CHARS} characters and {DOCUMENTATION_MAX_BYTES} bytes",
                table.title
            ),
            Some("keep the runbook short and link to the rest".into()),
        );
        return None;
    }
    Some(Some(text.value))
}

/// `severity = "critical" | "error" | "warning"` as the API's enum value.
fn read_severity(checker: &mut Checker, table: &TableRef) -> Option<Option<String>> {
    let Some(text) = checker.read_string(table, "severity").optional()? else {
        return Some(None);
    };
    let lower = text.value.to_ascii_lowercase();
    if !SEVERITIES.contains(&lower.as_str()) {
        checker.error(
            text.span.unwrap_or_else(|| table.span.clone()),
            format!(
                "`severity` in {} is not one of {}",
                table.title,
                SEVERITIES.join(", ")
            ),
            Some(
                match closest(&lower, SEVERITIES.iter().copied())
                    .or_else(|| SEVERITIES.iter().copied().find(|s| s.starts_with(&lower)))
                {
                    Some(s) => format!("did you mean \"{s}\"?"),
                    None => "write severity = \"critical\", \"error\" or \"warning\"".into(),
                },
            ),
        );
        return None;
    }
    Some(Some(lower.to_ascii_uppercase()))
}

/// `conditions = [{ filter, comparison, threshold, duration, aligner, ... }]`.
#[allow(clippy::type_complexity)]
fn read_conditions(
    checker: &mut Checker,
    table: &TableRef,
) -> Option<Option<(Vec<AlertCondition>, Span)>> {
    let Some(value) = table.get("conditions") else {
        return Some(None);
    };
    let DeValue::Array(items) = value.get_ref() else {
        let p = type_problem(
            "conditions",
            &table.title,
            "an array of tables",
            value.get_ref(),
            None,
        );
        checker.error(value.span(), p.message, p.help);
        return None;
    };
    if items.is_empty() {
        checker.error(
            value.span(),
            format!("`conditions` in {} is empty", table.title),
            None,
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let DeValue::Table(inner) = item.get_ref() else {
            ok = false;
            checker.error(item.span(), format!("each condition in {} must be a table", table.title), Some("write { filter = \"...\", comparison = \">\", threshold = 1, duration = \"300s\", aligner = \"ALIGN_MEAN\" }".into()));
            continue;
        };
        let sub = TableRef {
            kind: table.kind,
            title: format!("condition {} of {}", i + 1, table.title),
            name: table.name.clone(),
            name_span: table.name_span.clone(),
            span: item.span(),
            table: inner,
        };
        match read_condition(checker, &sub, i) {
            Some(c) => out.push(c),
            None => ok = false,
        }
    }
    ok.then_some(Some((out, value.span())))
}

fn read_condition(checker: &mut Checker, sub: &TableRef, index: usize) -> Option<AlertCondition> {
    checker.check_keys(sub, CONDITION_KEYS);
    let name = checker
        .read_string(sub, "name")
        .or_default(format!("condition {}", index + 1));
    let filter = checker.read_string(sub, "filter").required(
        checker,
        sub,
        "filter",
        "add filter = 'metric.type = \"...\" AND resource.type = \"...\"'".into(),
    );
    let denominator = checker.read_string(sub, "denominator_filter").optional();
    let comparison_text = checker.read_string(sub, "comparison").required(
        checker,
        sub,
        "comparison",
        "add comparison = \">\" (or \"<\", \">=\", \"<=\")".into(),
    );
    let threshold = checker.read_number(sub, "threshold").required(
        checker,
        sub,
        "threshold",
        "add threshold = NUMBER".into(),
    );
    let duration = checker
        .read_duration(
            sub,
            "duration",
            Duration::ZERO..=Duration::from_secs(86_400),
        )
        .or_default(Duration::ZERO);
    let aligner = checker
        .read_string(sub, "aligner")
        .or_default("ALIGN_MEAN".into());
    let reducer = checker.read_string(sub, "reducer").optional();
    let group_by = checker
        .read_plain_string_list(sub, "group_by")
        .or_default(Vec::new());
    let period = checker
        .read_duration(
            sub,
            "period",
            Duration::from_secs(60)..=Duration::from_secs(86_400 * 7),
        )
        .or_default(DEFAULT_PERIOD);
    let mut ok = true;
    let comparison_value = comparison_text.as_ref().and_then(|f| {
        let found = comparison(&f.value);
        if found.is_none() {
            ok = false;
            checker.error(
                f.span.clone().unwrap_or_else(|| sub.span.clone()),
                format!(
                    "comparison `{}` in {} is not one of >, >=, <, <=, ==, !=",
                    f.value, sub.title
                ),
                None,
            );
        }
        found
    });
    for (field, known, what) in [
        (aligner.clone(), ALIGNERS, "aligner"),
        (reducer.clone().flatten(), REDUCERS, "reducer"),
    ] {
        if let Some(f) = field
            && !known.contains(&f.value.as_str())
        {
            ok = false;
            let help = match closest(&f.value, known.iter().copied()) {
                Some(s) => format!("did you mean \"{s}\"?"),
                None => format!("{what}s: {}", known.join(", ")),
            };
            checker.error(
                f.span.unwrap_or_else(|| sub.span.clone()),
                format!("`{}` is not a Monitoring {what}", f.value),
                Some(help),
            );
        }
    }
    if let Some(Field {
        value,
        span: Some(span),
    }) = &filter
        && value.trim().is_empty()
    {
        ok = false;
        checker.error(
            span.clone(),
            format!("`filter` in {} is empty", sub.title),
            None,
        );
    }
    let comparison_value = comparison_value?;
    let (name, filter, denominator, threshold, duration, aligner, reducer, group_by, period) = (
        name?,
        filter?,
        denominator?,
        threshold?,
        duration?,
        aligner?,
        reducer?,
        group_by?,
        period?,
    );
    ok.then(|| AlertCondition {
        display_name: name.value,
        filter: filter.value,
        denominator_filter: denominator.map(|f| f.value),
        comparison: comparison_value.to_string(),
        threshold: threshold.value,
        duration: duration.value,
        aligner: aligner.value,
        reducer: reducer.map(|f| f.value),
        group_by: group_by.value,
        period: period.value,
    })
}

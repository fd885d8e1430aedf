//! `alert`: Monitoring alert policies, found again by their `stackctl-name` label. Filters are
//! compared after the normalization the server applies, so they never diff perpetually.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::channel::{applied_channel_names, planned_channel_names};
use super::{
    ApplyCtx, Converge, Known, NAME_LABEL, Reconcile, StepError, created, diff_labels,
    fill_assigned, owned_labels, quoted, quoted_duration,
};
use crate::config::{AlertCondition, AlertConfig, Stack};
use crate::model::change::{Action, FieldChange, FieldValue, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::monitoring::{AlertRecord, AlertWrite, ConditionRecord};
use crate::provider::run::OperationObserver;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSpec {
    /// `<stack>/<name>`
    pub key: String,
    pub placeholder: String,
    pub display_name: String,
    pub conditions: Vec<AlertCondition>,
    pub notify: Vec<ResourceAddr>,
    pub watches: Vec<ResourceAddr>,
    pub user_labels: BTreeMap<String, String>,
    /// Markdown sent with notifications (a template's runbook by default).
    pub documentation: Option<String>,
    /// `CRITICAL`, `ERROR` or `WARNING`.
    pub severity: Option<String>,
}

pub fn spec(stack: &Stack, name: &str, cfg: &AlertConfig) -> AlertSpec {
    let mut user_labels = owned_labels(stack, &BTreeMap::new());
    user_labels.insert(NAME_LABEL.to_string(), name.to_string());
    AlertSpec {
        key: format!("{}/{name}", stack.settings.name),
        placeholder: format!(
            "projects/{}/alertPolicies/(assigned on create)",
            stack.settings.project
        ),
        display_name: cfg.display_name.clone(),
        conditions: cfg.conditions.clone(),
        notify: cfg.notify.clone(),
        watches: cfg.watches.clone(),
        user_labels,
        documentation: cfg.documentation.clone(),
        severity: cfg.severity.clone(),
    }
}

/// The documentation with the values Google assigns filled in where they are known (a template's
/// runbook names the checked host or the gateway's managed service).
pub fn documentation_with_known(spec: &AlertSpec, known: &Known) -> Option<String> {
    let text = spec.documentation.as_deref()?;
    Some(fill_assigned(text, known).unwrap_or_else(|_| text.to_string()))
}

/// How a plan shows a Markdown text: the whole of a short one-line text, else its first line
/// and its size (a change anywhere in it is still a change).
fn text_summary(text: &str) -> String {
    const SHOWN: usize = 60;
    let first = text.lines().next().unwrap_or_default();
    if text.lines().count() <= 1 && text.chars().count() <= SHOWN {
        return quoted(text);
    }
    // Cut at a word: a half word (or half a code span) reads as a typo.
    let mut head: String = first.chars().take(SHOWN).collect();
    let cut_in_a_word = first[head.len()..]
        .chars()
        .next()
        .is_some_and(|next| !next.is_whitespace());
    if cut_in_a_word && let Some(space) = head.rfind(' ') {
        head.truncate(space);
    }
    let lines = text.lines().count();
    format!(
        "{}… ({lines} line{}, {} characters)",
        quoted(&head),
        if lines == 1 { "" } else { "s" },
        text.chars().count()
    )
}

/// `severity` as stack.toml writes it.
fn severity_shown(severity: &str) -> String {
    quoted(&severity.to_ascii_lowercase())
}

/// One lexical piece of a Monitoring filter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Token {
    Word(String),
    Operator(String),
    Quoted(String),
    Open,
    Close,
}

fn tokens(filter: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = filter.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Token>| {
        if !word.is_empty() {
            let w = std::mem::take(word);
            let upper = w.to_ascii_uppercase();
            out.push(Token::Word(
                if matches!(upper.as_str(), "AND" | "OR" | "NOT") {
                    upper
                } else {
                    w.replace(".label.", ".labels.")
                },
            ));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                flush(&mut word, &mut out);
                let mut text = String::new();
                while let Some(q) = chars.next() {
                    if q == '\\' {
                        if let Some(escaped) = chars.next() {
                            text.push(escaped);
                        }
                    } else if q == c {
                        break;
                    } else {
                        text.push(q);
                    }
                }
                out.push(Token::Quoted(text));
            }
            '=' | '!' | '<' | '>' | ':' => {
                flush(&mut word, &mut out);
                let mut op = c.to_string();
                if chars.peek() == Some(&'=') {
                    op.push('=');
                    chars.next();
                }
                out.push(Token::Operator(op));
            }
            '(' => {
                flush(&mut word, &mut out);
                out.push(Token::Open);
            }
            ')' => {
                flush(&mut word, &mut out);
                out.push(Token::Close);
            }
            c if c.is_whitespace() => flush(&mut word, &mut out),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut out);
    out
}

fn render(tokens: &[Token]) -> String {
    let mut out = String::new();
    let mut glue = true;
    for t in tokens {
        let (text, glued) = match t {
            Token::Word(w) => (w.clone(), false),
            Token::Quoted(q) => (format!("{q:?}"), false),
            Token::Operator(o) => (o.clone(), true),
            Token::Open => ("(".into(), true),
            Token::Close => (")".into(), true),
        };
        if !out.is_empty() && !glue && !glued {
            out.push(' ');
        }
        out.push_str(&text);
        glue = glued || matches!(t, Token::Open);
        if matches!(t, Token::Close) {
            glue = false;
        }
    }
    out
}

/// A filter in one canonical form: whitespace and quote style as the server writes them,
/// `label.` = `labels.`, keywords uppercase, and the terms of a plain AND-conjunction sorted.
pub fn normalize_filter(filter: &str) -> String {
    let all = tokens(filter);
    let is_keyword = |t: &Token, k: &str| matches!(t, Token::Word(w) if w == k);
    let plain = !all.iter().any(|t| {
        matches!(t, Token::Open | Token::Close) || is_keyword(t, "OR") || is_keyword(t, "NOT")
    });
    if !plain {
        return render(&all);
    }
    let mut terms: Vec<String> = all
        .split(|t| is_keyword(t, "AND"))
        .filter(|term| !term.is_empty())
        .map(render)
        .collect();
    terms.sort();
    terms.join(" AND ")
}

fn condition_record(c: &AlertCondition) -> ConditionRecord {
    ConditionRecord {
        display_name: c.display_name.clone(),
        filter: c.filter.clone(),
        denominator_filter: c.denominator_filter.clone(),
        comparison: c.comparison.clone(),
        threshold: c.threshold,
        duration: c.duration,
        aligner: c.aligner.clone(),
        reducer: c.reducer.clone(),
        group_by: c.group_by.clone(),
        period: c.period,
    }
}

fn condition_fields(prefix: &str, c: &AlertCondition) -> Vec<(String, String)> {
    let mut out = vec![
        (format!("{prefix}.name"), quoted(&c.display_name)),
        (
            format!("{prefix}.filter"),
            quoted(&normalize_filter(&c.filter)),
        ),
    ];
    if let Some(d) = &c.denominator_filter {
        out.push((
            format!("{prefix}.denominator_filter"),
            quoted(&normalize_filter(d)),
        ));
    }
    out.extend([
        (format!("{prefix}.comparison"), quoted(&c.comparison)),
        (format!("{prefix}.threshold"), c.threshold.to_string()),
        (format!("{prefix}.duration"), quoted_duration(&c.duration)),
        (format!("{prefix}.aligner"), quoted(&c.aligner)),
        (format!("{prefix}.period"), quoted_duration(&c.period)),
    ]);
    if let Some(r) = &c.reducer {
        out.push((format!("{prefix}.reducer"), quoted(r)));
    }
    if !c.group_by.is_empty() {
        let mut g = c.group_by.clone();
        g.sort();
        out.push((format!("{prefix}.group_by"), format!("{g:?}")));
    }
    out
}

fn live_condition_fields(prefix: &str, c: &ConditionRecord) -> BTreeMap<String, String> {
    let as_declared = AlertCondition {
        display_name: c.display_name.clone(),
        filter: c.filter.clone(),
        denominator_filter: c.denominator_filter.clone(),
        comparison: c.comparison.clone(),
        threshold: c.threshold,
        duration: c.duration,
        aligner: c.aligner.clone(),
        reducer: c.reducer.clone(),
        group_by: c.group_by.clone(),
        period: c.period,
    };
    condition_fields(prefix, &as_declared).into_iter().collect()
}

/// The conditions with each placeholder for a value Google assigns on create (a `target`
/// service's host, a gateway's managed service) filled in from `known`; `Err` names a resource
/// whose value is not known yet.
pub fn conditions_with_known(
    spec: &AlertSpec,
    known: &Known,
) -> Result<Vec<AlertCondition>, ResourceAddr> {
    spec.conditions
        .iter()
        .map(|c| {
            Ok(AlertCondition {
                display_name: fill_assigned(&c.display_name, known)?,
                filter: fill_assigned(&c.filter, known)?,
                denominator_filter: c
                    .denominator_filter
                    .as_deref()
                    .map(|d| fill_assigned(d, known))
                    .transpose()?,
                ..c.clone()
            })
        })
        .collect()
}

pub fn create_fields(spec: &AlertSpec, known: &Known) -> Vec<FieldChange> {
    let mut out = vec![created("display_name", quoted(&spec.display_name))];
    if let Some(severity) = &spec.severity {
        out.push(created("severity", severity_shown(severity)));
    }
    if let Some(documentation) = documentation_with_known(spec, known) {
        out.push(created("documentation", text_summary(&documentation)));
    }
    // Before the service exists, its host shows as the placeholder `(host of service.NAME)`.
    let conditions = conditions_with_known(spec, known).unwrap_or_else(|_| spec.conditions.clone());
    for (i, c) in conditions.iter().enumerate() {
        for (field, value) in condition_fields(&format!("conditions[{i}]"), c) {
            out.push(created(&field, value));
        }
    }
    if !spec.notify.is_empty() {
        out.push(FieldChange::new(
            "notify",
            None,
            Some(match planned_channel_names(&spec.notify, known) {
                Some(names) => FieldValue::Known(format!("{names:?}")),
                None => FieldValue::KnownAfterApply,
            }),
        ));
    }
    for (k, v) in &spec.user_labels {
        out.push(created(&format!("user_labels.{k}"), quoted(v)));
    }
    out
}

pub fn diff(spec: &AlertSpec, live: &AlertRecord, known: &Known) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if spec.display_name != live.display_name {
        out.push(FieldChange::new(
            "display_name",
            Some(quoted(&live.display_name)),
            Some(FieldValue::Known(quoted(&spec.display_name))),
        ));
    }
    if !live.enabled {
        out.push(FieldChange::new(
            "enabled",
            Some("false".into()),
            Some(FieldValue::Known("true".into())),
        ));
    }
    if spec.severity != live.severity {
        out.push(FieldChange::new(
            "severity",
            live.severity.as_deref().map(severity_shown),
            spec.severity
                .as_deref()
                .map(|s| FieldValue::Known(severity_shown(s))),
        ));
    }
    let documentation = documentation_with_known(spec, known);
    if documentation != live.documentation {
        out.push(FieldChange::new(
            "documentation",
            live.documentation.as_deref().map(text_summary),
            documentation
                .as_deref()
                .map(|d| FieldValue::Known(text_summary(d))),
        ));
    }
    let conditions = conditions_with_known(spec, known).unwrap_or_else(|_| spec.conditions.clone());
    let count = conditions.len().max(live.conditions.len());
    for i in 0..count {
        let prefix = format!("conditions[{i}]");
        match (conditions.get(i), live.conditions.get(i)) {
            (Some(d), Some(Some(l))) => {
                let live_fields = live_condition_fields(&prefix, l);
                for (field, value) in condition_fields(&prefix, d) {
                    if live_fields.get(&field) != Some(&value) {
                        out.push(FieldChange::new(
                            &field,
                            live_fields.get(&field).cloned(),
                            Some(FieldValue::Known(value)),
                        ));
                    }
                }
            }
            (Some(d), other) => out.push(FieldChange::new(
                &prefix,
                other.map(|_| "(not a threshold condition)".to_string()),
                Some(FieldValue::Known(quoted(&normalize_filter(&d.filter)))),
            )),
            (None, Some(l)) => out.push(FieldChange::new(
                &prefix,
                Some(
                    l.as_ref()
                        .map(|l| quoted(&normalize_filter(&l.filter)))
                        .unwrap_or_else(|| "(not a threshold condition)".into()),
                ),
                None,
            )),
            (None, None) => {}
        }
    }
    let mut live_channels = live.channels.clone();
    live_channels.sort();
    match planned_channel_names(&spec.notify, known) {
        Some(mut names) => {
            names.sort();
            if names != live_channels {
                out.push(FieldChange::new(
                    "notify",
                    Some(format!("{live_channels:?}")),
                    Some(FieldValue::Known(format!("{names:?}"))),
                ));
            }
        }
        None => out.push(FieldChange::new(
            "notify",
            Some(format!("{live_channels:?}")),
            Some(FieldValue::KnownAfterApply),
        )),
    }
    diff_labels(
        &mut out,
        "user_labels",
        &spec.user_labels,
        &live.user_labels,
    );
    out
}

/// `alert`: Monitoring alert policies, owned by user label.
pub struct AlertKind;

impl Reconcile for AlertKind {
    const KIND: Kind = Kind::Alert;
    const TIER: u8 = 3;
    const APIS: &'static [&'static str] = &["monitoring"];
    super::server_named_by_label!(Kind::Alert, user_labels, "label");
    fn estimate(
        stack: &Stack,
        prices: &crate::cost::PriceTable,
        address: &ResourceAddr,
    ) -> Option<crate::cost::Estimate> {
        stack.alerts.get(&address.name).map(|a| {
            crate::cost::estimate::alert(
                prices,
                u32::try_from(a.conditions.len()).unwrap_or(u32::MAX),
            )
        })
    }
    type Spec = AlertSpec;
    type Live = AlertRecord;
    fn declared(stack: &Stack) -> Vec<(ResourceAddr, AlertSpec)> {
        super::each_declared(Self::KIND, &stack.alerts, |name, cfg| {
            spec(stack, name, cfg)
        })
    }
    fn depends_on(spec: &AlertSpec) -> Vec<ResourceAddr> {
        let mut deps = spec.notify.clone();
        deps.extend(spec.watches.iter().cloned());
        deps
    }
    fn create_fields(spec: &AlertSpec, known: &Known) -> Vec<FieldChange> {
        create_fields(spec, known)
    }
    fn diff(spec: &AlertSpec, live: &AlertRecord, known: &Known) -> Vec<FieldChange> {
        diff(spec, live, known)
    }
}

impl Converge for AlertKind {
    async fn write_adoption_labels(
        cloud: &crate::provider::Cloud,
        live: &Self::Live,
        labels: &BTreeMap<String, String>,
        _stack: &Stack,
    ) -> Result<(), crate::provider::ApiError> {
        use crate::provider::Silent;
        cloud
            .label_alert(&live.name, labels, &Silent)
            .await
            .map(drop)
    }
    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&AlertSpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let cloud = &ctx.cloud;
        let known = ctx.known().await;
        let conditions = match spec {
            None => vec![],
            Some(spec) => conditions_with_known(spec, &known).map_err(|service| {
                StepError::Plan(format!(
                    "{}: its conditions watch {service}, whose Google-assigned name is not known yet; re-run apply once {service} exists",
                    change.address
                ))
            })?,
        };
        let write = |spec: &AlertSpec, channels: Vec<String>| AlertWrite {
            display_name: spec.display_name.clone(),
            user_labels: spec.user_labels.clone(),
            conditions: conditions.iter().map(condition_record).collect(),
            channels,
            documentation: documentation_with_known(spec, &known),
            severity: spec.severity.clone(),
        };
        match (change.action, spec) {
            (Action::Create, Some(spec)) => {
                let channels = applied_channel_names(ctx, &spec.notify).await?;
                observer.phase("creating alert policy");
                cloud.create_alert(&write(spec, channels), observer).await?;
            }
            (Action::Update | Action::Replace, Some(spec)) => {
                let channels = applied_channel_names(ctx, &spec.notify).await?;
                observer.phase("updating alert policy");
                cloud
                    .update_alert(&change.name, &write(spec, channels), observer)
                    .await?;
            }
            (Action::Delete | Action::Retire, _) => {
                observer.phase("deleting alert policy");
                cloud.delete_alert(&change.name, observer).await?;
            }
            (action, None) => {
                return Err(StepError::no_desired_state(action, &change.address));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::OWNER_LABEL;

    #[test]
    fn plans_show_a_runbook_by_its_first_words_and_size() {
        assert_eq!(text_summary("Call Ana."), "\"Call Ana.\"");
        let runbook = "The uptime check of `relay-abc-uc.a.run.app` is failing from more than one region.\n\n1. Does it answer?";
        assert_eq!(
            text_summary(runbook),
            "\"The uptime check of `relay-abc-uc.a.run.app` is failing from\"… (3 lines, 102 characters)"
        );
        // Never half a word, nor half a code span.
        let runbook = "A growing share of the requests to Cloud Run service `crm-proxy` fails.";
        assert_eq!(
            text_summary(runbook),
            "\"A growing share of the requests to Cloud Run service\"… (1 line, 71 characters)"
        );
    }
    use std::time::Duration;

    #[test]
    fn filters_normalize_whitespace_quotes_label_spelling_and_term_order() {
        let declared = r#"resource.type = "cloud_tasks_queue" AND resource.labels.queue_id = "webhooks" AND metric.type = "cloudtasks.googleapis.com/queue/depth""#;
        let server = "metric.type=\"cloudtasks.googleapis.com/queue/depth\" and resource.type='cloud_tasks_queue'   AND resource.label.queue_id=\"webhooks\"";
        assert_eq!(normalize_filter(declared), normalize_filter(server));
        assert_ne!(
            normalize_filter(declared),
            normalize_filter(&declared.replace("webhooks", "other"))
        );
    }

    #[test]
    fn filters_with_or_keep_their_order() {
        let a = "metric.type = \"a\" OR metric.type = \"b\"";
        assert_eq!(
            normalize_filter(a),
            "metric.type=\"a\" OR metric.type=\"b\""
        );
        assert_ne!(
            normalize_filter(a),
            normalize_filter("metric.type = \"b\" OR metric.type = \"a\"")
        );
    }

    fn condition() -> AlertCondition {
        AlertCondition {
            display_name: "backlog of webhooks".into(),
            filter: "resource.type = \"cloud_tasks_queue\" AND metric.type = \"cloudtasks.googleapis.com/queue/depth\"".into(),
            denominator_filter: None,
            comparison: "COMPARISON_GT".into(),
            threshold: 1000.0,
            duration: Duration::from_secs(900),
            aligner: "ALIGN_MAX".into(),
            reducer: Some("REDUCE_MAX".into()),
            group_by: vec!["resource.labels.queue_id".into()],
            period: Duration::from_secs(300),
        }
    }

    fn spec() -> AlertSpec {
        AlertSpec {
            documentation: None,
            severity: None,
            key: "s/backlog".into(),
            placeholder: "p".into(),
            display_name: "backlog".into(),
            conditions: vec![condition()],
            notify: vec![],
            watches: vec![],
            user_labels: BTreeMap::from([
                (OWNER_LABEL.into(), "s".into()),
                (NAME_LABEL.into(), "backlog".into()),
            ]),
        }
    }

    fn live() -> AlertRecord {
        let mut c = condition_record(&condition());
        c.filter = "metric.type=\"cloudtasks.googleapis.com/queue/depth\" AND resource.type=\"cloud_tasks_queue\"".into();
        AlertRecord {
            documentation: None,
            severity: None,
            name: "projects/p/alertPolicies/9".into(),
            display_name: "backlog".into(),
            user_labels: spec().user_labels,
            enabled: true,
            combiner: "OR".into(),
            conditions: vec![Some(c)],
            channels: vec![],
        }
    }

    #[test]
    fn a_server_normalized_policy_does_not_diff() {
        assert_eq!(diff(&spec(), &live(), &Known::default()), vec![]);
    }

    #[test]
    fn one_changed_threshold_shows_exactly_it() {
        let mut s = spec();
        s.conditions[0].threshold = 500.0;
        let f = diff(&s, &live(), &Known::default());
        assert_eq!(
            f,
            vec![FieldChange::new(
                "conditions[0].threshold",
                Some("1000".into()),
                Some(FieldValue::Known("500".into()))
            )]
        );
    }

    #[test]
    fn a_target_services_host_fills_the_uptime_filter_once_known() {
        let relay = ResourceAddr::new(Kind::Service, "relay");
        let mut s = spec();
        s.conditions[0].filter = format!(
            "resource.type = \"uptime_url\" AND resource.labels.host = \"{}\"",
            crate::config::templates::service_host_placeholder(&relay)
        );
        let mut known = Known::default();
        assert_eq!(conditions_with_known(&s, &known), Err(relay.clone()));
        known.hosts.insert(relay.clone(), None);
        assert_eq!(conditions_with_known(&s, &known), Err(relay.clone()));
        known
            .hosts
            .insert(relay, Some("relay-abc-uc.a.run.app".into()));
        let filled = conditions_with_known(&s, &known).expect("known");
        assert_eq!(
            filled[0].filter,
            "resource.type = \"uptime_url\" AND resource.labels.host = \"relay-abc-uc.a.run.app\""
        );
        // The live policy carries the host: no diff once it is known.
        let mut live = live();
        live.conditions[0] = Some(condition_record(&filled[0]));
        assert_eq!(diff(&s, &live, &known), vec![]);
    }

    #[test]
    fn a_channel_waiting_for_its_secret_is_left_out_of_the_planned_channels() {
        let (oncall, slack) = (
            ResourceAddr::new(Kind::Channel, "oncall"),
            ResourceAddr::new(Kind::Channel, "slack"),
        );
        let mut s = spec();
        s.notify = vec![oncall.clone(), slack.clone()];
        let mut known = Known::default();
        known.names.insert(
            oncall.clone(),
            Some("projects/p/notificationChannels/1".into()),
        );
        known.names.insert(slack.clone(), None);
        let mut live = live();
        live.channels = vec!["projects/p/notificationChannels/1".into()];
        // Slack is still to be made: the alert's channels are known after apply.
        assert_eq!(diff(&s, &live, &known).len(), 1);
        // Slack waits for its token: the alert already notifies everything it can.
        known
            .waiting
            .insert(slack, "its auth_token has no value yet".into());
        assert_eq!(diff(&s, &live, &known), vec![]);
    }

    #[test]
    fn a_gateways_managed_service_fills_both_filters_once_known() {
        let crm = ResourceAddr::new(Kind::Gateway, "crm");
        let placeholder = crate::config::templates::gateway_service_placeholder(&crm);
        let mut s = spec();
        s.conditions[0].filter = format!("resource.labels.service = \"{placeholder}\"");
        s.conditions[0].denominator_filter = Some(s.conditions[0].filter.clone());
        let mut known = Known::default();
        known.names.insert(crm.clone(), None);
        assert_eq!(conditions_with_known(&s, &known), Err(crm.clone()));
        known
            .names
            .insert(crm, Some("crm-0a1b.apigateway.p.cloud.goog".into()));
        let filled = conditions_with_known(&s, &known).expect("known");
        let want = "resource.labels.service = \"crm-0a1b.apigateway.p.cloud.goog\"";
        assert_eq!(filled[0].filter, want);
        assert_eq!(filled[0].denominator_filter.as_deref(), Some(want));
    }
}

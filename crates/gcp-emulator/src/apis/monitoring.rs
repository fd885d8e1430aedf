//! Cloud Monitoring v3: notification channels (checked against their type's descriptor, sensitive
//! labels masked) and the descriptors, alert policies (server-assigned policy and condition ids,
//! normalized filters, mask and no-mask patch semantics) and `timeSeries.list` with alignment and
//! cross-series reduction over series seeded via the admin API.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::{Call, Context, Reply};
use crate::conventions::ApiError;
use crate::conventions::field_mask::FieldMask;
use crate::conventions::paging::{PagePolicy, paginate};
use crate::conventions::wire::{parse_duration_nanos, parse_timestamp, stable_hash, timestamp};
use crate::discovery::Api;
use crate::state::State;

const MUTATOR: &str = "emulator@stackctl.local";
/// One notification channel type as `notificationChannelDescriptors` describes it.
struct Descriptor {
    kind: &'static str,
    display_name: &'static str,
    description: &'static str,
    /// `(key, description, sensitive)`; every label is required.
    labels: &'static [(&'static str, &'static str, bool)],
}

/// The channel types Cloud Monitoring offers and the labels each takes (Google's
/// `notificationChannelDescriptors.list`, and the `labels` / `sensitive_labels` of Terraform's
/// `google_monitoring_notification_channel` documentation).
const DESCRIPTORS: &[Descriptor] = &[
    Descriptor {
        kind: "email",
        display_name: "Email",
        description: "A channel that sends notifications via email.",
        labels: &[("email_address", "An address to send email.", false)],
    },
    Descriptor {
        kind: "sms",
        display_name: "SMS",
        description: "A channel that sends notifications via SMS.",
        labels: &[("number", "The phone number to receive SMS.", false)],
    },
    Descriptor {
        kind: "slack",
        display_name: "Slack",
        description: "A channel that sends notifications to a Slack channel.",
        labels: &[
            (
                "channel_name",
                "The Slack channel to send notifications to.",
                false,
            ),
            ("auth_token", "The OAuth token of the Slack app.", true),
        ],
    },
    Descriptor {
        kind: "pagerduty",
        display_name: "PagerDuty",
        description: "A channel that sends notifications to PagerDuty.",
        labels: &[("service_key", "The PagerDuty integration key.", true)],
    },
    Descriptor {
        kind: "webhook_tokenauth",
        display_name: "Webhook with Token Authentication",
        description: "A channel that POSTs notifications to a URL carrying its token.",
        labels: &[("url", "The public URL to send notifications to.", false)],
    },
    Descriptor {
        kind: "webhook_basicauth",
        display_name: "Webhook with Basic Authentication",
        description: "A channel that POSTs notifications to a URL with basic authentication.",
        labels: &[
            ("url", "The public URL to send notifications to.", false),
            ("username", "The basic authentication user name.", false),
            ("password", "The basic authentication password.", true),
        ],
    },
    Descriptor {
        kind: "pubsub",
        display_name: "Pub/Sub",
        description: "A channel that publishes notifications to a Pub/Sub topic.",
        labels: &[("topic", "The topic to publish to.", false)],
    },
];

/// What Google returns in place of a sensitive label's value: the value itself is never read
/// back (nor kept in the emulator's state file).
const MASKED: &str = "**************";

const POLICIES_POLICY: PagePolicy = PagePolicy {
    default_size: 100,
    max_size: 1000,
    size_param: "pageSize",
    token_kind: "alertPolicies",
};
const CHANNELS_POLICY: PagePolicy = PagePolicy {
    default_size: 100,
    max_size: 1000,
    size_param: "pageSize",
    token_kind: "notificationChannels",
};
const SERIES_POLICY: PagePolicy = PagePolicy {
    default_size: 100_000,
    max_size: 100_000,
    size_param: "pageSize",
    token_kind: "timeSeries",
};

/// A server-assigned numeric id (19 digits, like Monitoring's).
fn numeric_id(state: &mut State, kind: &str) -> String {
    let counter = state.next_id();
    let digest = stable_hash(&[kind, &counter.to_string()]);
    let value = u64::from_str_radix(&digest[..15], 16).unwrap_or(0);
    (1_000_000_000_000_000_000u64 + value % 8_000_000_000_000_000_000u64).to_string()
}

fn record(now: &str) -> Value {
    json!({"mutateTime": now, "mutatedBy": MUTATOR})
}

// ---- filters ----

/// One `key OP "value"` term of a Monitoring (or Logging) filter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Term {
    pub key: String,
    /// `=`, `!=`, `:`, or a comparison where the caller allows it.
    pub op: String,
    pub value: String,
}

impl Term {
    fn negated(&self) -> bool {
        self.op == "!="
    }
}

/// The operators timeSeries.list filters take (`:` is a match, as `=` here).
const MONITORING_OPERATORS: &[&str] = &["=", "!=", ":"];

/// Splits a filter into tokens: identifiers, quoted strings (either quote), operators, parens.
fn tokenize(filter: &str) -> Result<Vec<String>, ApiError> {
    let invalid = || {
        ApiError::invalid_argument(format!(
            "The provided filter doesn't refer to any known metric or is malformed: {filter}"
        ))
    };
    let mut tokens = Vec::new();
    let mut chars = filter.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' || c == '\'' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some('\\') => text.extend(chars.next()),
                    Some(q) if q == c => break,
                    Some(other) => text.push(other),
                    None => return Err(invalid()),
                }
            }
            tokens.push(format!("\"{}\"", text.replace('"', "\\\"")));
        } else if c == '!' {
            chars.next();
            if chars.next() != Some('=') {
                return Err(invalid());
            }
            tokens.push("!=".into());
        } else if matches!(c, '=' | ':' | '(' | ')' | '<' | '>') {
            chars.next();
            let mut op = c.to_string();
            if matches!(c, '<' | '>') && chars.peek() == Some(&'=') {
                chars.next();
                op.push('=');
            }
            tokens.push(op);
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace()
                    || matches!(c, '=' | ':' | '(' | ')' | '!' | '<' | '>' | '"' | '\'')
                {
                    break;
                }
                word.push(c);
                chars.next();
            }
            tokens.push(
                if word.eq_ignore_ascii_case("and")
                    || word.eq_ignore_ascii_case("or")
                    || word.eq_ignore_ascii_case("not")
                {
                    word.to_ascii_uppercase()
                } else {
                    word
                },
            );
        }
    }
    Ok(tokens)
}

/// The canonical form the server stores: single spaces, `key = "value"`, upper-case AND/OR,
/// double quotes. Clients must compare filters after the same normalization.
pub fn normalize_filter(filter: &str) -> Result<String, ApiError> {
    let tokens = tokenize(filter)?;
    let mut out = String::new();
    for (index, token) in tokens.iter().enumerate() {
        let previous = index.checked_sub(1).map(|i| tokens[i].as_str());
        let glue = token == ")" || previous == Some("(") || previous.is_none();
        if !glue {
            out.push(' ');
        }
        out.push_str(token);
    }
    Ok(out)
}

/// Parses the conjunctive subset `a = "x" AND b != "y" AND ...` used by timeSeries.list and
/// entries.list, with the operators in `operators`.
pub(crate) fn parse_terms(filter: &str, operators: &[&str]) -> Result<Vec<Term>, ApiError> {
    let tokens = tokenize(filter)?;
    let unsupported = || {
        ApiError::invalid_argument(format!(
            "Unsupported filter \"{filter}\": the emulator supports KEY OP \"VALUE\" terms joined by AND, with OP one of {}.",
            operators.join(" ")
        ))
    };
    let mut terms = Vec::new();
    let mut index = 0;
    while index < tokens.len() {
        let (Some(key), Some(op), Some(value)) = (
            tokens.get(index),
            tokens.get(index + 1),
            tokens.get(index + 2),
        ) else {
            return Err(unsupported());
        };
        if !operators.contains(&op.as_str()) {
            return Err(unsupported());
        }
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value)
            .replace("\\\"", "\"");
        let key = key.replace(".label.", ".labels.");
        terms.push(Term {
            key,
            op: op.clone(),
            value,
        });
        index += 3;
        match tokens.get(index).map(String::as_str) {
            None => {}
            Some("AND") => index += 1,
            Some(_) => return Err(unsupported()),
        }
    }
    Ok(terms)
}

fn series_field<'v>(series: &'v Value, key: &str) -> Option<&'v str> {
    let path = match key {
        "metric.type" => "/metric/type".to_string(),
        "resource.type" => "/resource/type".to_string(),
        other => {
            let (scope, label) = other.split_once(".labels.")?;
            format!("/{scope}/labels/{label}")
        }
    };
    series.pointer(&path).and_then(Value::as_str)
}

// ---- notification channels ----

fn channel_name(call: &Call<'_>) -> Result<String, ApiError> {
    Ok(format!(
        "projects/{}/notificationChannels/{}",
        call.param("projectsId")?,
        call.param("notificationChannelsId")?
    ))
}

/// The channel's type and labels checked against its descriptor as Google checks them: an unknown
/// type, an unknown (misspelled) label, a missing or empty one are `INVALID_ARGUMENT`.
fn validate_channel(channel: &Value) -> Result<(), ApiError> {
    let kind = channel
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(descriptor) = DESCRIPTORS.iter().find(|d| d.kind == kind) else {
        return Err(ApiError::invalid_argument(format!(
            "Unsupported notification channel type \"{kind}\"."
        )));
    };
    let empty = serde_json::Map::new();
    let labels = channel
        .get("labels")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for key in labels.keys() {
        if !descriptor.labels.iter().any(|(k, _, _)| k == key) {
            return Err(ApiError::invalid_argument(format!(
                "Field notification_channel.labels[{key}] had an invalid value: \"{key}\" is not a label of notification channel type \"{kind}\"."
            )));
        }
    }
    for (key, _, _) in descriptor.labels {
        match labels.get(*key).and_then(Value::as_str) {
            None => {
                return Err(ApiError::invalid_argument(format!(
                    "Request was missing field notification_channel.labels[{key}]."
                )));
            }
            Some("") => {
                return Err(ApiError::invalid_argument(format!(
                    "Field notification_channel.labels[{key}] had an invalid value: Value must NOT be empty if provided."
                )));
            }
            Some(_) => {}
        }
    }
    if kind == "email"
        && labels
            .get("email_address")
            .and_then(Value::as_str)
            .is_none_or(|e| !e.contains('@'))
    {
        return Err(ApiError::invalid_argument(
            "Field notification_channel.labels[email_address] must be a valid email address.",
        ));
    }
    Ok(())
}

/// Replaces the values of the channel's sensitive labels by [`MASKED`], as Google answers.
fn mask_sensitive(channel: &mut Value) {
    let kind = channel["type"].as_str().unwrap_or_default().to_string();
    let Some(descriptor) = DESCRIPTORS.iter().find(|d| d.kind == kind) else {
        return;
    };
    if let Some(labels) = channel.get_mut("labels").and_then(Value::as_object_mut) {
        for (key, _, sensitive) in descriptor.labels {
            if *sensitive && let Some(value) = labels.get_mut(*key) {
                *value = json!(MASKED);
            }
        }
    }
}

fn descriptor_json(project: &str, d: &Descriptor) -> Value {
    json!({
        "name": format!("projects/{project}/notificationChannelDescriptors/{}", d.kind),
        "type": d.kind,
        "displayName": d.display_name,
        "description": d.description,
        "labels": d.labels.iter().map(|(key, description, _)| json!({
            "key": key,
            "valueType": "STRING",
            "description": description,
        })).collect::<Vec<_>>(),
        "supportedTiers": ["SERVICE_TIER_BASIC", "SERVICE_TIER_PREMIUM"],
        "launchStage": "GA",
    })
}

pub fn list_descriptors(_context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let project = call.param("projectsId")?;
    let all: Vec<Value> = DESCRIPTORS
        .iter()
        .map(|d| descriptor_json(project, d))
        .collect();
    Ok(Reply::Json(json!({ "channelDescriptors": all })))
}

pub fn get_descriptor(_context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let project = call.param("projectsId")?;
    let kind = call.param("notificationChannelDescriptorsId")?;
    DESCRIPTORS
        .iter()
        .find(|d| d.kind == kind)
        .map(|d| Reply::Json(descriptor_json(project, d)))
        .ok_or_else(|| {
            not_found(&format!(
                "projects/{project}/notificationChannelDescriptors/{kind}"
            ))
        })
}

pub fn create_channel(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let project = call.param("projectsId")?.to_string();
    let mut channel = call.body_or_empty();
    validate_channel(&channel)?;
    let now = timestamp(call.now);
    let id = numeric_id(context.state, "notification-channel");
    let name = format!("projects/{project}/notificationChannels/{id}");
    channel["name"] = json!(name);
    if channel.get("enabled").is_none() {
        channel["enabled"] = json!(true);
    }
    if channel["type"] == "sms" {
        channel["verificationStatus"] = json!("UNVERIFIED");
    }
    channel["creationRecord"] = record(&now);
    channel["mutationRecords"] = json!([record(&now)]);
    mask_sensitive(&mut channel);
    context
        .state
        .notification_channels
        .insert(name, channel.clone());
    Ok(Reply::Json(channel))
}

pub fn get_channel(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = channel_name(call)?;
    context
        .state
        .notification_channels
        .get(&name)
        .cloned()
        .map(Reply::Json)
        .ok_or_else(|| not_found(&name))
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Requested entity was not found: {name}."))
}

pub fn list_channels(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let prefix = format!(
        "projects/{}/notificationChannels/",
        call.param("projectsId")?
    );
    let channels: Vec<&Value> =
        super::collection::children(&context.state.notification_channels, &prefix).collect();
    let total = channels.len();
    let mut response = super::collection::named_list(
        channels,
        "notificationChannels",
        call.query,
        CHANNELS_POLICY,
    )?;
    response["totalSize"] = json!(total);
    Ok(Reply::Json(response))
}

pub fn patch_channel(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = channel_name(call)?;
    let existing = context
        .state
        .notification_channels
        .get(&name)
        .cloned()
        .ok_or_else(|| not_found(&name))?;
    let body = call.body_or_empty();
    let mask = FieldMask::parse(
        call.query.non_empty("updateMask"),
        context.discovery,
        Api::Monitoring,
        "NotificationChannel",
    )?;
    let mut channel = if mask.is_empty() {
        let mut replaced = body.clone();
        replaced["creationRecord"] = existing["creationRecord"].clone();
        replaced["mutationRecords"] = existing["mutationRecords"].clone();
        replaced
    } else {
        let mut channel = existing.clone();
        mask.apply(&body, &mut channel);
        channel
    };
    channel["name"] = json!(name);
    if channel.get("enabled").is_none() {
        channel["enabled"] = json!(true);
    }
    validate_channel(&channel)?;
    let now = timestamp(call.now);
    if let Some(Value::Array(records)) = channel.get_mut("mutationRecords") {
        records.push(record(&now));
    }
    mask_sensitive(&mut channel);
    context
        .state
        .notification_channels
        .insert(name, channel.clone());
    Ok(Reply::Json(channel))
}

pub fn delete_channel(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = channel_name(call)?;
    let in_use = context.state.alert_policies.values().any(|p| {
        p.get("notificationChannels")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|c| c.as_str() == Some(&name)))
    });
    if in_use && !call.query_bool("force")? {
        return Err(ApiError::failed_precondition(format!(
            "Notification channel {name} is referenced by alerting policies; delete with force=true."
        )));
    }
    context
        .state
        .notification_channels
        .remove(&name)
        .ok_or_else(|| not_found(&name))?;
    Ok(Reply::Json(json!({})))
}

// ---- alert policies ----

fn policy_name(call: &Call<'_>) -> Result<String, ApiError> {
    Ok(format!(
        "projects/{}/alertPolicies/{}",
        call.param("projectsId")?,
        call.param("alertPoliciesId")?
    ))
}

/// Validates conditions, names new ones, normalizes their filters, fills `enabled`.
fn shape_policy(
    state: &mut State,
    policy_name: &str,
    mut policy: Value,
) -> Result<Value, ApiError> {
    let conditions = policy
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if conditions.is_empty() {
        return Err(ApiError::invalid_argument(
            "Field alert_policy.conditions must contain at least one condition.",
        ));
    }
    if conditions.len() > 1
        && policy
            .get("combiner")
            .and_then(Value::as_str)
            .is_none_or(|c| c == "COMBINE_UNSPECIFIED")
    {
        return Err(ApiError::invalid_argument(
            "Field alert_policy.combiner must be specified when there is more than one condition.",
        ));
    }
    if let Some(documentation) = policy.get("documentation") {
        let content = documentation["content"].as_str().unwrap_or_default();
        if content.chars().count() > 8_192 || content.len() > 10_240 {
            return Err(ApiError::invalid_argument(
                "Field alert_policy.documentation.content may not exceed 8,192 Unicode characters or 10,240 bytes.",
            ));
        }
        let mime_type = documentation["mimeType"].as_str().unwrap_or_default();
        if !content.is_empty() && mime_type != "text/markdown" {
            return Err(ApiError::invalid_argument(format!(
                "Field alert_policy.documentation.mime_type had an invalid value of \"{mime_type}\": only \"text/markdown\" is supported."
            )));
        }
    }
    let mut shaped = Vec::new();
    for (index, mut condition) in conditions.into_iter().enumerate() {
        let prefix = format!("{policy_name}/conditions/");
        let name = condition
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| n.starts_with(&prefix))
            .map(str::to_string);
        let name = match name {
            Some(name) => name,
            None => format!("{prefix}{}", numeric_id(state, "alert-condition")),
        };
        condition["name"] = json!(name);
        for kind in ["conditionThreshold", "conditionAbsent"] {
            if let Some(body) = condition.get_mut(kind) {
                for key in ["filter", "denominatorFilter"] {
                    if let Some(filter) = body.get(key).and_then(Value::as_str) {
                        let normalized = normalize_filter(filter)?;
                        if key == "filter" && !normalized.contains("metric.type") {
                            return Err(ApiError::invalid_argument(format!(
                                "Field alert_policy.conditions[{index}].{}.filter had an invalid value of \"{filter}\": must specify a metric type.",
                                crate::conventions::wire::snake_case(kind)
                            )));
                        }
                        body[key] = json!(normalized);
                    }
                }
                if kind == "conditionThreshold" && body.get("duration").is_none() {
                    body["duration"] = json!("0s");
                }
            }
        }
        shaped.push(condition);
    }
    policy["conditions"] = Value::Array(shaped);
    if policy.get("enabled").is_none() {
        policy["enabled"] = json!(true);
    }
    Ok(policy)
}

pub fn create_policy(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let project = call.param("projectsId")?.to_string();
    let id = numeric_id(context.state, "alert-policy");
    let name = format!("projects/{project}/alertPolicies/{id}");
    let mut policy = call.body_or_empty();
    policy["name"] = json!(name);
    if let Some(Value::Array(conditions)) = policy.get_mut("conditions") {
        for condition in conditions.iter_mut() {
            if let Value::Object(fields) = condition {
                fields.remove("name");
            }
        }
    }
    let now = timestamp(call.now);
    let mut policy = shape_policy(context.state, &name, policy)?;
    policy["creationRecord"] = record(&now);
    policy["mutationRecord"] = record(&now);
    context.state.alert_policies.insert(name, policy.clone());
    Ok(Reply::Json(policy))
}

pub fn get_policy(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = policy_name(call)?;
    context
        .state
        .alert_policies
        .get(&name)
        .cloned()
        .map(Reply::Json)
        .ok_or_else(|| not_found(&name))
}

pub fn list_policies(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let prefix = format!("projects/{}/alertPolicies/", call.param("projectsId")?);
    let policies: Vec<&Value> =
        super::collection::children(&context.state.alert_policies, &prefix).collect();
    let total = policies.len();
    let mut response =
        super::collection::named_list(policies, "alertPolicies", call.query, POLICIES_POLICY)?;
    response["totalSize"] = json!(total);
    Ok(Reply::Json(response))
}

/// With a mask, each listed field is set to the given value or its default; without one the
/// body replaces the policy (condition ids survive only when their names are sent).
pub fn patch_policy(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = policy_name(call)?;
    let existing = context
        .state
        .alert_policies
        .get(&name)
        .cloned()
        .ok_or_else(|| not_found(&name))?;
    let body = call.body_or_empty();
    let mask = FieldMask::parse(
        call.query.non_empty("updateMask"),
        context.discovery,
        Api::Monitoring,
        "AlertPolicy",
    )?;
    let mut policy = if mask.is_empty() {
        body.clone()
    } else {
        let mut policy = existing.clone();
        mask.apply(&body, &mut policy);
        policy
    };
    policy["name"] = json!(name);
    policy["creationRecord"] = existing["creationRecord"].clone();
    let mut policy = shape_policy(context.state, &name, policy)?;
    policy["mutationRecord"] = record(&timestamp(call.now));
    context.state.alert_policies.insert(name, policy.clone());
    Ok(Reply::Json(policy))
}

pub fn delete_policy(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = policy_name(call)?;
    context
        .state
        .alert_policies
        .remove(&name)
        .ok_or_else(|| not_found(&name))?;
    Ok(Reply::Json(json!({})))
}

// ---- time series ----

/// Stores series posted to `/_emulator/monitoring/timeseries`.
pub fn seed_time_series(state: &mut State, body: &Value) -> Result<Value, String> {
    let (project, series) = super::seeded_items(body, "timeSeries")?;
    let stored = state.time_series.entry(project.to_string()).or_default();
    for item in series {
        if item
            .pointer("/metric/type")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err("every series needs metric.type".into());
        }
        for point in item
            .get("points")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
        {
            if point
                .pointer("/interval/endTime")
                .and_then(Value::as_str)
                .and_then(parse_timestamp)
                .is_none()
            {
                return Err("every point needs interval.endTime (RFC 3339)".into());
            }
        }
        stored.push(item.clone());
    }
    Ok(json!({"timeSeries": series.len()}))
}

/// A numeric point value.
fn point_value(point: &Value) -> Option<f64> {
    let value = point.get("value")?;
    if let Some(v) = value.get("doubleValue") {
        return v
            .as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
    }
    let v = value.get("int64Value")?;
    v.as_i64()
        .map(|i| i as f64)
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn point_end(point: &Value) -> Option<DateTime<Utc>> {
    point
        .pointer("/interval/endTime")
        .and_then(Value::as_str)
        .and_then(parse_timestamp)
}

fn typed(value: f64, value_type: &str) -> Value {
    if value_type == "INT64" {
        json!({"int64Value": (value.round() as i64).to_string()})
    } else {
        json!({"doubleValue": value})
    }
}

/// One aligned series: its identity and `(end time, value)` points.
struct Aligned {
    metric: Value,
    resource: Value,
    metric_kind: String,
    value_type: String,
    points: Vec<(DateTime<Utc>, f64)>,
}

fn query_enum<'q>(call: &'q Call<'_>, name: &str, none: &'q str) -> &'q str {
    call.query.non_empty(name).unwrap_or(none)
}

pub fn list_time_series(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let project = call.param("projectsId")?;
    let filter = call.query.non_empty("filter").ok_or_else(|| {
        ApiError::bad_field("filter", "filter: Required field is not set.".into())
    })?;
    let terms = parse_terms(filter, MONITORING_OPERATORS)?;
    if !terms.iter().any(|t| t.key == "metric.type" && !t.negated()) {
        return Err(ApiError::invalid_argument(format!(
            "The filter must specify a metric type: {filter}"
        )));
    }
    let end = call
        .query
        .non_empty("interval.endTime")
        .and_then(parse_timestamp)
        .ok_or_else(|| {
            ApiError::bad_field(
                "interval.end_time",
                "interval.end_time: Required field is not set.".into(),
            )
        })?;
    let start = call
        .query
        .non_empty("interval.startTime")
        .map(|s| {
            parse_timestamp(s).ok_or_else(|| {
                ApiError::invalid_argument(format!("Invalid interval.start_time \"{s}\"."))
            })
        })
        .transpose()?
        .unwrap_or(end);
    if start > end {
        return Err(ApiError::invalid_argument(
            "The start time must be before the end time.",
        ));
    }
    let aligner = query_enum(call, "aggregation.perSeriesAligner", "ALIGN_NONE");
    let reducer = query_enum(call, "aggregation.crossSeriesReducer", "REDUCE_NONE");
    let period = call
        .query
        .non_empty("aggregation.alignmentPeriod")
        .map(|p| {
            parse_duration_nanos(p).filter(|n| *n > 0).ok_or_else(|| {
                ApiError::invalid_argument(format!("Invalid alignment period \"{p}\"."))
            })
        })
        .transpose()?;
    let group_by: Vec<String> = call
        .query
        .all("aggregation.groupByFields")
        .into_iter()
        .map(|f| f.replace(".label.", ".labels."))
        .collect();
    if !matches!(
        aligner,
        "ALIGN_NONE"
            | "ALIGN_SUM"
            | "ALIGN_MEAN"
            | "ALIGN_MAX"
            | "ALIGN_MIN"
            | "ALIGN_RATE"
            | "ALIGN_DELTA"
            | "ALIGN_COUNT"
    ) {
        return Err(ApiError::invalid_argument(format!(
            "The emulator does not implement aligner {aligner}."
        )));
    }
    if !matches!(
        reducer,
        "REDUCE_NONE" | "REDUCE_SUM" | "REDUCE_MEAN" | "REDUCE_MAX" | "REDUCE_MIN" | "REDUCE_COUNT"
    ) {
        return Err(ApiError::invalid_argument(format!(
            "The emulator does not implement reducer {reducer}."
        )));
    }
    if aligner != "ALIGN_NONE" && period.is_none() {
        return Err(ApiError::invalid_argument(
            "The alignment period must be specified when a per-series aligner is set.",
        ));
    }
    if reducer != "REDUCE_NONE" && aligner == "ALIGN_NONE" {
        return Err(ApiError::invalid_argument(
            "The aligner cannot be ALIGN_NONE if cross series reduction is requested.",
        ));
    }
    let seeded = context
        .state
        .time_series
        .get(project)
        .cloned()
        .unwrap_or_default();
    let matching = seeded.iter().filter(|series| {
        terms.iter().all(|term| {
            (series_field(series, &term.key) == Some(term.value.as_str())) != term.negated()
        })
    });
    let mut aligned: Vec<Aligned> = Vec::new();
    for series in matching {
        let raw: Vec<(DateTime<Utc>, f64)> = series
            .get("points")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(|p| Some((point_end(p)?, point_value(p)?)))
            .filter(|(t, _)| *t >= start && *t <= end)
            .collect();
        let metric_kind = series
            .get("metricKind")
            .and_then(Value::as_str)
            .unwrap_or("GAUGE")
            .to_string();
        let value_type = series
            .get("valueType")
            .and_then(Value::as_str)
            .unwrap_or("DOUBLE")
            .to_string();
        let (points, metric_kind, value_type) = match period {
            None => (raw, metric_kind, value_type),
            Some(nanos) => align(&raw, aligner, nanos, start, end, &metric_kind, &value_type),
        };
        if points.is_empty() {
            continue;
        }
        aligned.push(Aligned {
            metric: series.get("metric").cloned().unwrap_or_else(|| json!({})),
            resource: series.get("resource").cloned().unwrap_or_else(|| json!({})),
            metric_kind,
            value_type,
            points,
        });
    }
    if reducer != "REDUCE_NONE" {
        aligned = reduce(aligned, reducer, &group_by);
    }
    let headers_only = call.query.get("view") == Some("HEADERS");
    let period_nanos = period.unwrap_or(0);
    let rendered: Vec<(String, Value)> = aligned
        .into_iter()
        .map(|series| {
            let mut points = series.points.clone();
            points.sort_by_key(|p| std::cmp::Reverse(p.0));
            let points: Vec<Value> = points
                .into_iter()
                .map(|(at, value)| {
                    let start = if series.metric_kind == "GAUGE" || period_nanos == 0 { at } else { at - Duration::nanoseconds(i64::try_from(period_nanos).unwrap_or(0)) };
                    json!({"interval": {"startTime": timestamp(start), "endTime": timestamp(at)}, "value": typed(value, &series.value_type)})
                })
                .collect();
            let mut out = json!({"metric": series.metric, "resource": series.resource, "metricKind": series.metric_kind, "valueType": series.value_type});
            if !headers_only {
                out["points"] = Value::Array(points);
            }
            (format!("{}|{}", out["metric"], out["resource"]), out)
        })
        .collect::<BTreeMap<_, _>>()
        .into_iter()
        .collect();
    let page = paginate(rendered, |(k, _)| k.as_str(), call.query, SERIES_POLICY)?;
    let mut response =
        json!({"timeSeries": page.items.into_iter().map(|(_, s)| s).collect::<Vec<_>>()});
    if let Some(token) = page.next_page_token {
        response["nextPageToken"] = json!(token);
    }
    Ok(Reply::Json(response))
}

/// Buckets raw points into windows `(T - period, T]` ending at `end`, `end - period`, ...
fn align(
    raw: &[(DateTime<Utc>, f64)],
    aligner: &str,
    period_nanos: i128,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    metric_kind: &str,
    value_type: &str,
) -> (Vec<(DateTime<Utc>, f64)>, String, String) {
    let period = Duration::nanoseconds(i64::try_from(period_nanos).unwrap_or(i64::MAX));
    let mut windows: BTreeMap<DateTime<Utc>, Vec<(DateTime<Utc>, f64)>> = BTreeMap::new();
    for &(at, value) in raw {
        let behind = (end - at).num_nanoseconds().unwrap_or(0);
        let steps = i128::from(behind) / period_nanos;
        let mut window_end =
            end - Duration::nanoseconds(i64::try_from(steps * period_nanos).unwrap_or(0));
        if window_end - period >= at {
            window_end -= period;
        }
        if window_end - period < start - period {
            continue;
        }
        windows.entry(window_end).or_default().push((at, value));
    }
    let seconds = period_nanos as f64 / 1e9;
    let points = windows
        .into_iter()
        .map(|(at, mut values)| {
            values.sort_by_key(|v| v.0);
            let numbers: Vec<f64> = values.iter().map(|(_, v)| *v).collect();
            let sum: f64 = numbers.iter().sum();
            let delta = if metric_kind == "CUMULATIVE" {
                numbers.last().copied().unwrap_or(0.0) - numbers.first().copied().unwrap_or(0.0)
            } else {
                sum
            };
            let value = match aligner {
                "ALIGN_SUM" => sum,
                "ALIGN_MEAN" => sum / numbers.len() as f64,
                "ALIGN_MAX" => numbers.iter().copied().fold(f64::MIN, f64::max),
                "ALIGN_MIN" => numbers.iter().copied().fold(f64::MAX, f64::min),
                "ALIGN_COUNT" => numbers.len() as f64,
                "ALIGN_RATE" => delta / seconds,
                _ => delta,
            };
            (at, value)
        })
        .collect();
    let (kind, value_type) = match aligner {
        "ALIGN_RATE" => ("GAUGE", "DOUBLE"),
        "ALIGN_MEAN" => ("GAUGE", "DOUBLE"),
        "ALIGN_COUNT" => ("GAUGE", "INT64"),
        "ALIGN_DELTA" => ("DELTA", value_type),
        "ALIGN_SUM" if metric_kind == "CUMULATIVE" => ("DELTA", value_type),
        _ => (metric_kind, value_type),
    };
    (points, kind.to_string(), value_type.to_string())
}

/// Groups aligned series by `group_by` and reduces each timestamp across the group.
fn reduce(series: Vec<Aligned>, reducer: &str, group_by: &[String]) -> Vec<Aligned> {
    let mut groups: BTreeMap<String, Vec<Aligned>> = BTreeMap::new();
    for item in series {
        let probe = json!({"metric": item.metric, "resource": item.resource});
        let key: Vec<&str> = group_by
            .iter()
            .map(|field| series_field(&probe, field).unwrap_or(""))
            .collect();
        groups.entry(key.join("\u{1f}")).or_default().push(item);
    }
    groups
        .into_values()
        .filter_map(|members| {
            let first = members.first()?;
            let probe = json!({"metric": first.metric, "resource": first.resource});
            let mut metric =
                json!({"type": first.metric.get("type").cloned().unwrap_or(Value::Null)});
            let mut resource =
                json!({"type": first.resource.get("type").cloned().unwrap_or(Value::Null)});
            for field in group_by {
                if let (Some((scope, label)), Some(value)) =
                    (field.split_once(".labels."), series_field(&probe, field))
                {
                    let target = if scope == "metric" {
                        &mut metric
                    } else {
                        &mut resource
                    };
                    target["labels"][label] = json!(value);
                }
            }
            let mut at_time: BTreeMap<DateTime<Utc>, Vec<f64>> = BTreeMap::new();
            for member in &members {
                for (at, value) in &member.points {
                    at_time.entry(*at).or_default().push(*value);
                }
            }
            let points = at_time
                .into_iter()
                .map(|(at, values)| {
                    let sum: f64 = values.iter().sum();
                    let value = match reducer {
                        "REDUCE_MEAN" => sum / values.len() as f64,
                        "REDUCE_MAX" => values.iter().copied().fold(f64::MIN, f64::max),
                        "REDUCE_MIN" => values.iter().copied().fold(f64::MAX, f64::min),
                        "REDUCE_COUNT" => values.len() as f64,
                        _ => sum,
                    };
                    (at, value)
                })
                .collect();
            let value_type = match reducer {
                "REDUCE_MEAN" => "DOUBLE".to_string(),
                "REDUCE_COUNT" => "INT64".to_string(),
                _ => first.value_type.clone(),
            };
            Some(Aligned {
                metric,
                resource,
                metric_kind: first.metric_kind.clone(),
                value_type,
                points,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::server::testing::TestEmulator;

    #[test]
    fn filters_normalize_spacing_quotes_and_keywords() {
        let a = normalize_filter("resource.type=\"cloud_run_revision\"  and metric.type = 'run.googleapis.com/request_count'").expect("valid");
        let b = normalize_filter("resource.type = \"cloud_run_revision\" AND metric.type=\"run.googleapis.com/request_count\"").expect("valid");
        assert_eq!(a, b);
        assert_eq!(
            a,
            "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/request_count\""
        );
        assert_eq!(
            normalize_filter("metric.labels.code != \"ok\"").expect("valid"),
            "metric.labels.code != \"ok\""
        );
        assert!(normalize_filter("metric.type = \"unterminated").is_err());
    }

    #[tokio::test]
    async fn channel_labels_follow_the_descriptor_and_sensitive_ones_come_back_masked() {
        let emulator = TestEmulator::with_polls(0);
        let (status, descriptor) = emulator
            .send(
                "GET",
                "/v3/projects/p1/notificationChannelDescriptors/slack",
                None,
            )
            .await;
        assert_eq!(status, 200, "{descriptor}");
        let keys: Vec<&str> = descriptor["labels"]
            .as_array()
            .expect("labels")
            .iter()
            .filter_map(|l| l["key"].as_str())
            .collect();
        assert_eq!(keys, ["channel_name", "auth_token"]);
        let (status, list) = emulator
            .send(
                "GET",
                "/v3/projects/p1/notificationChannelDescriptors",
                None,
            )
            .await;
        assert_eq!(status, 200, "{list}");
        assert!(list["channelDescriptors"].as_array().expect("list").len() >= 5);

        // A misspelled label is refused as Google refuses it.
        let (status, error) = emulator
            .send("POST", "/v3/projects/p1/notificationChannels", Some(json!({"type": "slack", "labels": {"channel_name": "#ops", "auth_tokn": "xoxb-1"}})))
            .await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["error"]["status"], "INVALID_ARGUMENT");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("notification_channel.labels[auth_tokn]")),
            "{error}"
        );
        // A missing one too.
        let (status, error) = emulator
            .send(
                "POST",
                "/v3/projects/p1/notificationChannels",
                Some(json!({"type": "pagerduty", "labels": {}})),
            )
            .await;
        assert_eq!(status, 400, "{error}");
        assert!(
            error
                .to_string()
                .contains("missing field notification_channel.labels[service_key]")
        );

        let (status, made) = emulator
            .send("POST", "/v3/projects/p1/notificationChannels", Some(json!({"type": "slack", "labels": {"channel_name": "#ops", "auth_token": "xoxb-secret"}})))
            .await;
        assert_eq!(status, 200, "{made}");
        assert_eq!(made["labels"]["channel_name"], "#ops");
        assert_eq!(made["labels"]["auth_token"], MASKED);
        let name = made["name"].as_str().expect("name").to_string();
        let (_, read) = emulator.send("GET", &format!("/v3/{name}"), None).await;
        assert_eq!(read["labels"]["auth_token"], MASKED);
        assert!(!read.to_string().contains("xoxb-secret"));
    }

    #[tokio::test]
    async fn channels_and_policies_get_server_ids_and_records() {
        let emulator = TestEmulator::with_polls(0);
        let (status, channel) = emulator
            .send("POST", "/v3/projects/p1/notificationChannels", Some(json!({"type": "email", "displayName": "ops", "labels": {"email_address": "ops@example.com"}})))
            .await;
        assert_eq!(status, 200, "{channel}");
        assert!(
            channel["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("projects/p1/notificationChannels/")
                    && n.len() == "projects/p1/notificationChannels/".len() + 19)
        );
        assert_eq!(channel["enabled"], true);
        let (status, _) = emulator
            .send(
                "POST",
                "/v3/projects/p1/notificationChannels",
                Some(json!({"type": "email", "labels": {}})),
            )
            .await;
        assert_eq!(status, 400);
        let policy = json!({"displayName": "5xx", "combiner": "OR", "userLabels": {"managed-by": "stackctl"},
            "notificationChannels": [channel["name"]],
            "conditions": [{"displayName": "ratio", "conditionThreshold": {
                "filter": "resource.type=\"cloud_run_revision\" AND metric.type=\"run.googleapis.com/request_count\"",
                "comparison": "COMPARISON_GT", "thresholdValue": 0.05, "duration": "300s",
                "aggregations": [{"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_DELTA", "crossSeriesReducer": "REDUCE_SUM"}],
                "trigger": {"count": 1}}}]});
        let (status, created) = emulator
            .send(
                "POST",
                "/v3/projects/p1/alertPolicies",
                Some(policy.clone()),
            )
            .await;
        assert_eq!(status, 200, "{created}");
        let name = created["name"].as_str().unwrap_or_default().to_string();
        let condition = created["conditions"][0]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(condition.starts_with(&format!("{name}/conditions/")));
        assert_eq!(
            created["conditions"][0]["conditionThreshold"]["filter"],
            "resource.type = \"cloud_run_revision\" AND metric.type = \"run.googleapis.com/request_count\""
        );
        assert_eq!(created["enabled"], true);
        assert!(created["creationRecord"]["mutateTime"].is_string());
        let (_, ints) = emulator
            .send(
                "GET",
                &format!("/v3/{name}?%24alt=json%3Benum-encoding%3Dint"),
                None,
            )
            .await;
        assert_eq!(
            ints["conditions"][0]["conditionThreshold"]["aggregations"][0]["perSeriesAligner"],
            1
        );
        assert_eq!(
            ints["conditions"][0]["conditionThreshold"]["aggregations"][0]["crossSeriesReducer"],
            4
        );

        let (_, disabled) = emulator
            .send(
                "PATCH",
                &format!("/v3/{name}?updateMask=enabled"),
                Some(json!({"enabled": false})),
            )
            .await;
        assert_eq!(disabled["enabled"], false, "explicit false is served");
        assert_eq!(disabled["conditions"][0]["name"], condition);
        let (_, replaced) = emulator
            .send("PATCH", &format!("/v3/{name}"), Some(policy.clone()))
            .await;
        assert_ne!(
            replaced["conditions"][0]["name"],
            json!(condition),
            "no name sent: a new condition id"
        );
        assert_eq!(replaced["enabled"], true);
        let mut keep = policy.clone();
        keep["conditions"][0]["name"] = replaced["conditions"][0]["name"].clone();
        let (_, kept) = emulator
            .send("PATCH", &format!("/v3/{name}"), Some(keep))
            .await;
        assert_eq!(
            kept["conditions"][0]["name"],
            replaced["conditions"][0]["name"]
        );
        let (status, _) = emulator
            .send(
                "DELETE",
                &format!("/v3/{}", channel["name"].as_str().unwrap_or_default()),
                None,
            )
            .await;
        assert_eq!(status, 400, "channel in use");
        let (_, list) = emulator
            .send("GET", "/v3/projects/p1/alertPolicies?pageSize=0", None)
            .await;
        assert_eq!(list["totalSize"], 1);
    }

    #[tokio::test]
    async fn time_series_align_and_reduce_seeded_points() {
        let emulator = TestEmulator::with_polls(0);
        let point = |end: &str, n: i64| json!({"interval": {"startTime": end, "endTime": end}, "value": {"int64Value": n.to_string()}});
        let series = |service: &str, revision: &str, points: Vec<serde_json::Value>| {
            json!({
            "metric": {"type": "run.googleapis.com/request_count", "labels": {"response_code_class": "2xx"}},
            "resource": {"type": "cloud_run_revision", "labels": {"service_name": service, "revision_name": revision}},
            "metricKind": "DELTA", "valueType": "INT64", "points": points})
        };
        let seed = json!({"project": "p1", "timeSeries": [
            series("api", "api-1", vec![point("2026-01-01T00:10:00Z", 3), point("2026-01-01T00:50:00Z", 4), point("2026-01-01T01:30:00Z", 5)]),
            series("api", "api-2", vec![point("2026-01-01T01:40:00Z", 10)]),
            series("worker", "worker-1", vec![point("2026-01-01T00:20:00Z", 7)])]});
        let (status, _) = emulator
            .send("POST", "/_emulator/monitoring/timeseries", Some(seed))
            .await;
        assert_eq!(status, 200);
        let base = "/v3/projects/p1/timeSeries?filter=metric.type%3D%22run.googleapis.com%2Frequest_count%22%20AND%20resource.type%3D%22cloud_run_revision%22&interval.startTime=2026-01-01T00:00:00Z&interval.endTime=2026-01-01T02:00:00Z";
        let (status, raw) = emulator.send("GET", base, None).await;
        assert_eq!(status, 200, "{raw}");
        assert_eq!(raw["timeSeries"].as_array().map(Vec::len), Some(3));
        let (_, hourly) = emulator
            .send("GET", &format!("{base}&aggregation.alignmentPeriod=3600s&aggregation.perSeriesAligner=ALIGN_SUM&aggregation.crossSeriesReducer=REDUCE_SUM&aggregation.groupByFields=resource.label.service_name"), None)
            .await;
        let series = hourly["timeSeries"].as_array().cloned().unwrap_or_default();
        assert_eq!(series.len(), 2, "{hourly}");
        let api = series
            .iter()
            .find(|s| s["resource"]["labels"]["service_name"] == "api")
            .expect("api");
        assert_eq!(
            api["resource"]["labels"],
            json!({"service_name": "api"}),
            "only grouped labels remain"
        );
        assert_eq!(
            api["points"][0]["value"]["int64Value"], "15",
            "01:00-02:00: 5 + 10, newest first"
        );
        assert_eq!(
            api["points"][1]["value"]["int64Value"], "7",
            "00:00-01:00: 3 + 4"
        );
        assert_eq!(
            api["points"][0]["interval"],
            json!({"startTime": "2026-01-01T01:00:00Z", "endTime": "2026-01-01T02:00:00Z"})
        );
        let (_, whole) = emulator
            .send("GET", &format!("{base}&filter=metric.type%3D%22run.googleapis.com%2Frequest_count%22%20AND%20resource.labels.service_name%3D%22api%22&aggregation.alignmentPeriod=7200s&aggregation.perSeriesAligner=ALIGN_RATE&aggregation.crossSeriesReducer=REDUCE_MEAN"), None)
            .await;
        let rate = whole["timeSeries"][0]["points"][0]["value"]["doubleValue"]
            .as_f64()
            .unwrap_or_default();
        assert!(
            (rate - (12.0 / 7200.0 + 10.0 / 7200.0) / 2.0).abs() < 1e-12,
            "{whole}"
        );
        let (_, max) = emulator
            .send("GET", &format!("{base}&aggregation.alignmentPeriod=7200s&aggregation.perSeriesAligner=ALIGN_MAX&aggregation.crossSeriesReducer=REDUCE_MAX"), None)
            .await;
        assert_eq!(
            max["timeSeries"][0]["points"][0]["value"]["int64Value"],
            "10"
        );
        let (_, mean) = emulator
            .send("GET", &format!("{base}&aggregation.alignmentPeriod=7200s&aggregation.perSeriesAligner=ALIGN_MEAN"), None)
            .await;
        assert!(
            mean["timeSeries"]
                .as_array()
                .is_some_and(|s| s.iter().all(|s| s["valueType"] == "DOUBLE"))
        );
        let (status, _) = emulator.send("GET", "/v3/projects/p1/timeSeries?filter=resource.type%3D%22x%22&interval.endTime=2026-01-01T02:00:00Z", None).await;
        assert_eq!(status, 400, "a metric type is required");
    }
}

//! Cloud Monitoring v3 `projects.timeSeries.list` over series seeded through the admin endpoint
//! `POST /_emulator/monitoring/timeseries`: the filter subset stackctl's audit uses
//! (`metric.type`, `resource.type`, `metric.labels.K`, `resource.labels.K` equalities joined by
//! AND), the interval, per-series alignment in `alignmentPeriod` buckets ending at
//! `interval.endTime` (ALIGN_NONE/SUM/MEAN/MAX/MIN/COUNT/RATE/DELTA), and cross-series reducers
//! (REDUCE_NONE/SUM/MAX/MIN/MEAN/COUNT) grouped by `groupByFields`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

use super::{Call, Context, Reply};
use crate::conventions::ApiError;
use crate::conventions::paging::{PagePolicy, paginate};
use crate::conventions::payload::normalize_request;
use crate::conventions::wire::{parse_duration_nanos, parse_timestamp, timestamp};
use crate::discovery::{Api, Discovery};
use crate::state::State;

const LIST_POLICY: PagePolicy = PagePolicy {
    default_size: 100_000,
    max_size: 100_000,
    size_param: "pageSize",
    token_kind: "monitoring.timeSeries",
};

/// One `key = "value"` clause of a filter.
#[derive(Debug, Clone, PartialEq)]
struct Clause {
    selector: Selector,
    value: String,
}

/// What a filter clause or a group-by field names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Selector {
    MetricType,
    ResourceType,
    MetricLabel(String),
    ResourceLabel(String),
}

impl Selector {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        match text {
            "metric.type" => return Some(Selector::MetricType),
            "resource.type" => return Some(Selector::ResourceType),
            _ => {}
        }
        let label = |prefix: &str| {
            text.strip_prefix(&format!("{prefix}.labels."))
                .or_else(|| text.strip_prefix(&format!("{prefix}.label.")))
                .filter(|key| !key.is_empty())
                .map(str::to_string)
        };
        label("metric")
            .map(Selector::MetricLabel)
            .or_else(|| label("resource").map(Selector::ResourceLabel))
    }

    fn read<'v>(&self, series: &'v Value) -> Option<&'v str> {
        let pointer = match self {
            Selector::MetricType => "/metric/type".to_string(),
            Selector::ResourceType => "/resource/type".to_string(),
            Selector::MetricLabel(key) => format!("/metric/labels/{key}"),
            Selector::ResourceLabel(key) => format!("/resource/labels/{key}"),
        };
        series.pointer(&pointer).and_then(Value::as_str)
    }
}

fn invalid_filter(filter: &str, why: &str) -> ApiError {
    ApiError::invalid_argument(format!(
        "Field filter had an invalid value of \"{filter}\": {why}"
    ))
}

fn parse_filter(filter: &str) -> Result<Vec<Clause>, ApiError> {
    let mut clauses = Vec::new();
    for part in filter.split(" AND ") {
        let (selector, value) = part.split_once('=').ok_or_else(|| {
            invalid_filter(
                filter,
                "the emulator supports `key = \"value\"` clauses joined by AND",
            )
        })?;
        let selector = Selector::parse(selector).ok_or_else(|| {
            invalid_filter(filter, &format!("unknown selector `{}`", selector.trim()))
        })?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or_else(|| invalid_filter(filter, "values must be double-quoted strings"))?;
        clauses.push(Clause {
            selector,
            value: value.to_string(),
        });
    }
    if !clauses.iter().any(|c| c.selector == Selector::MetricType) {
        return Err(invalid_filter(filter, "a metric.type is required"));
    }
    Ok(clauses)
}

fn matches(clauses: &[Clause], series: &Value) -> bool {
    clauses
        .iter()
        .all(|c| c.selector.read(series) == Some(c.value.as_str()))
}

/// A point's value as a number, and whether it was an int64.
fn point_number(point: &Value) -> Option<(f64, bool)> {
    let value = point.get("value")?;
    if let Some(int) = value.get("int64Value") {
        let number = match int {
            Value::String(s) => s.parse::<i64>().ok()?,
            other => other.as_i64()?,
        };
        return Some((number as f64, true));
    }
    if let Some(double) = value.get("doubleValue").and_then(Value::as_f64) {
        return Some((double, false));
    }
    value
        .get("boolValue")
        .and_then(Value::as_bool)
        .map(|b| (f64::from(u8::from(b)), true))
}

fn point_end(point: &Value) -> Option<DateTime<Utc>> {
    point
        .pointer("/interval/endTime")
        .and_then(Value::as_str)
        .and_then(parse_timestamp)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aligner {
    None,
    Sum,
    Mean,
    Max,
    Min,
    Count,
    Rate,
    Delta,
}

impl Aligner {
    fn parse(name: Option<&str>) -> Result<Self, ApiError> {
        Ok(match name.unwrap_or("ALIGN_NONE") {
            "ALIGN_NONE" | "0" => Aligner::None,
            "ALIGN_DELTA" | "1" => Aligner::Delta,
            "ALIGN_RATE" | "2" => Aligner::Rate,
            "ALIGN_MIN" | "10" => Aligner::Min,
            "ALIGN_MAX" | "11" => Aligner::Max,
            "ALIGN_MEAN" | "12" => Aligner::Mean,
            "ALIGN_COUNT" | "13" => Aligner::Count,
            "ALIGN_SUM" | "14" => Aligner::Sum,
            other => {
                return Err(ApiError::unimplemented(format!(
                    "The emulator does not implement perSeriesAligner {other}."
                )));
            }
        })
    }

    /// Aligns the numbers of one bucket of `period_seconds`.
    fn align(self, values: &[f64], period_seconds: f64) -> f64 {
        let sum: f64 = values.iter().sum();
        match self {
            Aligner::None | Aligner::Sum | Aligner::Delta => sum,
            Aligner::Mean => sum / values.len() as f64,
            Aligner::Max => values.iter().copied().fold(f64::MIN, f64::max),
            Aligner::Min => values.iter().copied().fold(f64::MAX, f64::min),
            Aligner::Count => values.len() as f64,
            Aligner::Rate => sum / period_seconds,
        }
    }

    /// Whether aligned values stay int64 when the input is int64.
    fn keeps_int(self) -> bool {
        matches!(
            self,
            Aligner::Sum | Aligner::Delta | Aligner::Max | Aligner::Min | Aligner::Count
        )
    }

    fn metric_kind(self, input: &str) -> String {
        match self {
            Aligner::None => input.to_string(),
            Aligner::Sum | Aligner::Delta => "DELTA".into(),
            _ => "GAUGE".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reducer {
    None,
    Sum,
    Max,
    Min,
    Mean,
    Count,
}

impl Reducer {
    fn parse(name: Option<&str>) -> Result<Self, ApiError> {
        Ok(match name.unwrap_or("REDUCE_NONE") {
            "REDUCE_NONE" | "0" => Reducer::None,
            "REDUCE_MEAN" | "1" => Reducer::Mean,
            "REDUCE_MIN" | "2" => Reducer::Min,
            "REDUCE_MAX" | "3" => Reducer::Max,
            "REDUCE_SUM" | "4" => Reducer::Sum,
            "REDUCE_COUNT" | "6" => Reducer::Count,
            other => {
                return Err(ApiError::unimplemented(format!(
                    "The emulator does not implement crossSeriesReducer {other}."
                )));
            }
        })
    }

    fn reduce(self, values: &[f64]) -> f64 {
        let sum: f64 = values.iter().sum();
        match self {
            Reducer::None | Reducer::Sum => sum,
            Reducer::Mean => sum / values.len() as f64,
            Reducer::Max => values.iter().copied().fold(f64::MIN, f64::max),
            Reducer::Min => values.iter().copied().fold(f64::MAX, f64::min),
            Reducer::Count => values.len() as f64,
        }
    }
}

/// A series after alignment: its identity and one value per bucket index (0 = newest).
struct Aligned {
    series: Value,
    is_int: bool,
    metric_kind: String,
    buckets: BTreeMap<i64, f64>,
}

fn point_json(start: DateTime<Utc>, end: DateTime<Utc>, value: f64, is_int: bool) -> Value {
    let typed = if is_int {
        json!({ "int64Value": format!("{}", value.round() as i64) })
    } else {
        json!({ "doubleValue": value })
    };
    json!({
        "interval": { "startTime": timestamp(start), "endTime": timestamp(end) },
        "value": typed,
    })
}

pub fn list_time_series(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let project = call.param("projectsId")?.to_string();
    let query = call.query;
    let filter = query.non_empty("filter").ok_or_else(|| {
        ApiError::invalid_argument(
            "Field filter had an invalid value of \"\": a filter is required.",
        )
    })?;
    let clauses = parse_filter(filter)?;
    let end = query
        .non_empty("interval.endTime")
        .ok_or_else(|| ApiError::bad_field("interval.end_time", "Field interval.end_time is required.".into()))
        .and_then(|raw| {
            parse_timestamp(raw).ok_or_else(|| {
                ApiError::bad_field("interval.end_time", format!("Invalid value at 'interval.end_time' (type.googleapis.com/google.protobuf.Timestamp), Field 'endTime', Invalid time format: {raw}"))
            })
        })?;
    let start = match query.non_empty("interval.startTime") {
        Some(raw) => parse_timestamp(raw).ok_or_else(|| {
            ApiError::bad_field("interval.start_time", format!("Invalid value at 'interval.start_time' (type.googleapis.com/google.protobuf.Timestamp), Field 'startTime', Invalid time format: {raw}"))
        })?,
        None => end,
    };
    if start > end {
        return Err(ApiError::invalid_argument(
            "The start time must be before the end time.",
        ));
    }
    let aligner = Aligner::parse(query.non_empty("aggregation.perSeriesAligner"))?;
    let reducer = Reducer::parse(query.non_empty("aggregation.crossSeriesReducer"))?;
    let period = match query.non_empty("aggregation.alignmentPeriod") {
        Some(raw) => {
            let nanos = parse_duration_nanos(raw)
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    ApiError::invalid_argument(format!(
                        "The alignment period must be a positive duration, found \"{raw}\"."
                    ))
                })?;
            Some(Duration::nanoseconds(
                i64::try_from(nanos).unwrap_or(i64::MAX),
            ))
        }
        None => None,
    };
    if aligner != Aligner::None && period.is_none() {
        return Err(ApiError::invalid_argument(
            "The alignment period must be specified when a per-series aligner is set.",
        ));
    }
    if reducer != Reducer::None && aligner == Aligner::None {
        return Err(ApiError::invalid_argument(
            "A per-series aligner must be specified when a cross-series reducer is set.",
        ));
    }
    let group_by: Vec<Selector> = query
        .all("aggregation.groupByFields")
        .into_iter()
        .map(|field| {
            Selector::parse(field).ok_or_else(|| {
                ApiError::invalid_argument(format!("Invalid groupByFields entry \"{field}\"."))
            })
        })
        .collect::<Result<_, _>>()?;

    let selected: Vec<&Value> = context
        .state
        .time_series
        .get(&project)
        .map(|all| all.iter().filter(|s| matches(&clauses, s)).collect())
        .unwrap_or_default();
    let in_window = |point: &&Value| {
        point_end(point).is_some_and(|t| (t > start || (start == end && t == end)) && t <= end)
    };

    let mut output: Vec<Value> = match (aligner, period) {
        (Aligner::None, _) | (_, None) => selected
            .iter()
            .filter_map(|series| {
                let points: Vec<Value> = series
                    .get("points")
                    .and_then(Value::as_array)
                    .map(|p| p.iter().filter(in_window).cloned().collect())
                    .unwrap_or_default();
                if points.is_empty() {
                    return None;
                }
                let mut out = (*series).clone();
                out["points"] = Value::Array(points);
                Some(out)
            })
            .collect(),
        (_, Some(period)) => {
            let period_seconds = period.num_milliseconds() as f64 / 1000.0;
            let aligned: Vec<Aligned> = selected
                .iter()
                .filter_map(|series| {
                    align_series(series, aligner, period, period_seconds, start, end)
                })
                .collect();
            let reduced = if reducer == Reducer::None {
                aligned
            } else {
                reduce(aligned, reducer, &group_by)
            };
            reduced
                .into_iter()
                .map(|a| {
                    let mut out = a.series;
                    out["metricKind"] = json!(a.metric_kind);
                    out["valueType"] = json!(if a.is_int { "INT64" } else { "DOUBLE" });
                    let points: Vec<Value> = a
                        .buckets
                        .iter()
                        .map(|(index, value)| {
                            let bucket_end = end - period * i32::try_from(*index).unwrap_or(0);
                            point_json(bucket_end - period, bucket_end, *value, a.is_int)
                        })
                        .collect();
                    out["points"] = Value::Array(points);
                    out
                })
                .collect()
        }
    };
    if query.non_empty("view") == Some("HEADERS") || query.non_empty("view") == Some("1") {
        for series in &mut output {
            if let Value::Object(fields) = series {
                fields.remove("points");
            }
        }
    }
    let keyed: Vec<(String, Value)> = {
        let mut keyed: Vec<(String, Value)> =
            output.into_iter().map(|s| (series_key(&s), s)).collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        keyed
    };
    let page = paginate(keyed, |(key, _)| key.as_str(), query, LIST_POLICY)?;
    let mut response = json!({
        "timeSeries": page.items.into_iter().map(|(_, s)| s).collect::<Vec<_>>(),
    });
    if let Some(token) = page.next_page_token {
        response["nextPageToken"] = json!(token);
    }
    Ok(Reply::Json(response))
}

/// A series' identity for stable ordering and page tokens.
fn series_key(series: &Value) -> String {
    let labels = |pointer: &str| {
        series
            .pointer(pointer)
            .and_then(Value::as_object)
            .map(|m| {
                let sorted: BTreeMap<&String, &Value> = m.iter().collect();
                serde_json::to_string(&sorted).unwrap_or_default()
            })
            .unwrap_or_default()
    };
    format!(
        "{}|{}|{}|{}",
        series
            .pointer("/metric/type")
            .and_then(Value::as_str)
            .unwrap_or(""),
        labels("/metric/labels"),
        series
            .pointer("/resource/type")
            .and_then(Value::as_str)
            .unwrap_or(""),
        labels("/resource/labels"),
    )
}

/// Buckets `(end - (k+1)·period, end - k·period]`, k = 0 the newest; empty buckets are absent.
fn align_series(
    series: &Value,
    aligner: Aligner,
    period: Duration,
    period_seconds: f64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Option<Aligned> {
    let mut values: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    let mut is_int = true;
    for point in series.get("points").and_then(Value::as_array)? {
        let (Some(at), Some((number, int))) = (point_end(point), point_number(point)) else {
            continue;
        };
        if at <= start || at > end {
            continue;
        }
        is_int &= int;
        let age = (end - at).num_milliseconds();
        let index = age / period.num_milliseconds().max(1);
        values.entry(index).or_default().push(number);
    }
    if values.is_empty() {
        return None;
    }
    let input_kind = series
        .get("metricKind")
        .and_then(Value::as_str)
        .unwrap_or("GAUGE");
    let buckets = values
        .into_iter()
        .map(|(index, numbers)| (index, aligner.align(&numbers, period_seconds)))
        .collect();
    let mut identity = series.clone();
    if let Value::Object(fields) = &mut identity {
        fields.remove("points");
    }
    Some(Aligned {
        series: identity,
        is_int: is_int && aligner.keeps_int(),
        metric_kind: aligner.metric_kind(input_kind),
        buckets,
    })
}

/// Groups aligned series by the `group_by` values and reduces each bucket across a group.
fn reduce(aligned: Vec<Aligned>, reducer: Reducer, group_by: &[Selector]) -> Vec<Aligned> {
    let mut groups: BTreeMap<Vec<Option<String>>, Vec<Aligned>> = BTreeMap::new();
    for series in aligned {
        let key = group_by
            .iter()
            .map(|selector| selector.read(&series.series).map(str::to_string))
            .collect();
        groups.entry(key).or_default().push(series);
    }
    groups
        .into_iter()
        .map(|(key, members)| {
            let first = &members[0].series;
            let mut metric_labels = Map::new();
            let mut resource_labels = Map::new();
            for (selector, value) in group_by.iter().zip(&key) {
                let Some(value) = value else { continue };
                match selector {
                    Selector::MetricLabel(k) => {
                        metric_labels.insert(k.clone(), json!(value));
                    }
                    Selector::ResourceLabel(k) => {
                        resource_labels.insert(k.clone(), json!(value));
                    }
                    Selector::MetricType | Selector::ResourceType => {}
                }
            }
            let mut series = json!({
                "metric": { "type": first.pointer("/metric/type").cloned().unwrap_or(Value::Null) },
                "resource": { "type": first.pointer("/resource/type").cloned().unwrap_or(Value::Null) },
            });
            if !metric_labels.is_empty() {
                series["metric"]["labels"] = Value::Object(metric_labels);
            }
            if !resource_labels.is_empty() {
                series["resource"]["labels"] = Value::Object(resource_labels);
            }
            let mut by_bucket: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
            for member in &members {
                for (index, value) in &member.buckets {
                    by_bucket.entry(*index).or_default().push(*value);
                }
            }
            let is_int = members.iter().all(|m| m.is_int)
                && !matches!(reducer, Reducer::Mean);
            Aligned {
                series,
                is_int,
                metric_kind: members[0].metric_kind.clone(),
                buckets: by_bucket
                    .into_iter()
                    .map(|(index, values)| (index, reducer.reduce(&values)))
                    .collect(),
            }
        })
        .collect()
}

/// `POST /_emulator/monitoring/timeseries` `{"project": "p", "timeSeries": [TimeSeries...]}`:
/// validates each series against the discovery `TimeSeries` schema and appends it.
pub fn seed(discovery: &Discovery, state: &mut State, body: &[u8]) -> Result<Value, ApiError> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid_argument(format!("Invalid seed body: {e}")))?;
    let project = request
        .get("project")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::invalid_argument("The seed body needs \"project\"."))?
        .to_string();
    let series = request
        .get("timeSeries")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid_argument("The seed body needs \"timeSeries\": [...]."))?;
    let mut normalized = Vec::new();
    for (index, one) in series.iter().enumerate() {
        let value = normalize_request(
            discovery,
            Api::Monitoring,
            "TimeSeries",
            one.clone(),
            &format!("time_series[{index}]"),
        )?;
        if value
            .pointer("/metric/type")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err(ApiError::invalid_argument(format!(
                "time_series[{index}] has no metric.type."
            )));
        }
        normalized.push(value);
    }
    let count = normalized.len();
    state
        .time_series
        .entry(project)
        .or_default()
        .extend(normalized);
    Ok(json!({ "seeded": count }))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::server::testing::TestEmulator;

    const END: &str = "2026-11-25T00:00:00Z";

    fn requests(service: &str, revision: &str, hours_ago_counts: &[(i64, i64)]) -> Value {
        let end = crate::conventions::wire::parse_timestamp(END).expect("time");
        let points: Vec<Value> = hours_ago_counts
            .iter()
            .map(|(hours, count)| {
                let at = end - chrono::Duration::minutes(hours * 60 + 30);
                json!({
                    "interval": {
                        "startTime": crate::conventions::wire::timestamp(at - chrono::Duration::minutes(1)),
                        "endTime": crate::conventions::wire::timestamp(at),
                    },
                    "value": {"int64Value": count.to_string()},
                })
            })
            .collect();
        json!({
            "metric": {"type": "run.googleapis.com/request_count", "labels": {"response_code_class": "2xx"}},
            "resource": {"type": "cloud_run_revision", "labels": {"service_name": service, "revision_name": revision, "location": "us-central1", "project_id": "p"}},
            "metricKind": "DELTA",
            "valueType": "INT64",
            "points": points,
        })
    }

    async fn seeded() -> TestEmulator {
        let emulator = TestEmulator::with_polls(0);
        let body = json!({"project": "p", "timeSeries": [
            requests("api", "api-1", &[(0, 5), (1, 7), (30, 100)]),
            requests("api", "api-2", &[(0, 1)]),
            requests("worker", "worker-1", &[(3, 2)]),
        ]});
        let (status, reply) = emulator
            .send("POST", "/_emulator/monitoring/timeseries", Some(body))
            .await;
        assert_eq!(status, 200, "{reply}");
        emulator
    }

    fn list_path(query: &str) -> String {
        let filter = "metric.type%3D%22run.googleapis.com%2Frequest_count%22%20AND%20resource.type%3D%22cloud_run_revision%22";
        format!("/v3/projects/p/timeSeries?filter={filter}&interval.endTime={END}&{query}")
    }

    #[tokio::test]
    async fn one_alignment_over_the_window_sums_per_service() {
        let emulator = seeded().await;
        let (status, body) = emulator
            .send(
                "GET",
                &list_path("interval.startTime=2026-11-23T00:00:00Z&aggregation.alignmentPeriod=172800s&aggregation.perSeriesAligner=ALIGN_SUM&aggregation.crossSeriesReducer=REDUCE_SUM&aggregation.groupByFields=resource.label.service_name"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let series = body["timeSeries"].as_array().expect("series");
        let totals: Vec<(String, String)> = series
            .iter()
            .map(|s| {
                (
                    s["resource"]["labels"]["service_name"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    s["points"][0]["value"]["int64Value"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect();
        assert_eq!(
            totals,
            vec![("api".into(), "113".into()), ("worker".into(), "2".into())]
        );
        assert_eq!(series[0]["points"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            series[0]["points"][0]["interval"]["startTime"],
            "2026-11-23T00:00:00Z"
        );
    }

    #[tokio::test]
    async fn hourly_buckets_filters_and_int_enums() {
        let emulator = seeded().await;
        let filter = "metric.type%3D%22run.googleapis.com%2Frequest_count%22%20AND%20resource.labels.service_name%3D%22api%22";
        let path = format!(
            "/v3/projects/p/timeSeries?filter={filter}&interval.startTime=2026-11-24T00:00:00Z&interval.endTime={END}&aggregation.alignmentPeriod=3600s&aggregation.perSeriesAligner=ALIGN_SUM&aggregation.crossSeriesReducer=REDUCE_SUM&%24alt=json%3Benum-encoding%3Dint"
        );
        let (status, body) = emulator.send("GET", &path, None).await;
        assert_eq!(status, 200, "{body}");
        let series = &body["timeSeries"][0];
        // Two hours with traffic within the last day; the 30-hours-ago point is outside.
        let values: Vec<&str> = series["points"]
            .as_array()
            .expect("points")
            .iter()
            .map(|p| p["value"]["int64Value"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(values, vec!["6", "7"]);
        assert_eq!(series["metricKind"], 2, "DELTA as an int enum");
        // A mean over the window is a double.
        let path = format!(
            "/v3/projects/p/timeSeries?filter={filter}&interval.startTime=2026-11-24T00:00:00Z&interval.endTime={END}&aggregation.alignmentPeriod=86400s&aggregation.perSeriesAligner=ALIGN_MEAN&aggregation.crossSeriesReducer=REDUCE_MAX"
        );
        let (_, body) = emulator.send("GET", &path, None).await;
        assert_eq!(
            body["timeSeries"][0]["points"][0]["value"]["doubleValue"],
            6.0
        );
    }

    #[tokio::test]
    async fn google_errors_for_bad_requests_and_unknown_fields_in_seeds() {
        let emulator = seeded().await;
        let (status, body) = emulator
            .send(
                "GET",
                "/v3/projects/p/timeSeries?interval.endTime=2026-11-25T00:00:00Z",
                None,
            )
            .await;
        assert_eq!(
            (status, body["error"]["status"].as_str()),
            (400, Some("INVALID_ARGUMENT"))
        );
        let (status, _) = emulator
            .send(
                "GET",
                &list_path("aggregation.perSeriesAligner=ALIGN_SUM"),
                None,
            )
            .await;
        assert_eq!(status, 400, "an aligner needs a period");
        let (status, body) = emulator
            .send(
                "POST",
                "/_emulator/monitoring/timeseries",
                Some(
                    json!({"project": "p", "timeSeries": [{"metric": {"type": "x"}, "bogus": 1}]}),
                ),
            )
            .await;
        assert_eq!(status, 400);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("Unknown name \"bogus\""),
            "{body}"
        );
        let (_, body) = emulator
            .send(
                "GET",
                &list_path("interval.startTime=2026-11-20T00:00:00Z"),
                None,
            )
            .await;
        assert_eq!(
            body["timeSeries"].as_array().map(Vec::len),
            Some(3),
            "raw series without aggregation: {body}"
        );
        // Without a start time the interval is the end instant: no point is exactly there.
        let (status, body) = emulator.send("GET", &list_path(""), None).await;
        assert_eq!((status, body.get("timeSeries")), (200, None));
    }
}

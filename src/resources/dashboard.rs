//! `dashboard`: Cloud Monitoring v1 dashboards rendered from a template in
//! `templates/dashboards/` over the stack's own services, queues, jobs and tables, found again by
//! their `stackctl-name` label (the server assigns their ids) and diffed leaf by leaf.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::gateway::diff_documents;
use super::{
    ApplyCtx, Converge, Known, NAME_LABEL, Reconcile, StepError, created, diff_labels,
    owned_labels, quoted,
};
use crate::config::{DashboardConfig, Stack};
use crate::model::change::{Action, FieldChange, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::dashboards::DashboardRecord;
use crate::provider::run::OperationObserver;

/// The `stack_overview` template: layout and, per section, the widgets repeated for each
/// resource listed under that key.
const STACK_OVERVIEW: &str = include_str!("../../templates/dashboards/stack_overview.json");

/// How long each point of every chart aggregates.
const ALIGNMENT_PERIOD: &str = "60s";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardSpec {
    /// `<stack>/<name>`: what finds the live dashboard.
    pub key: String,
    /// `projects/P/dashboards/(assigned on create)`
    pub placeholder: String,
    pub display_name: String,
    pub template: String,
    /// The dashboard file it is written from instead of the template, as stack.toml names it.
    pub file: Option<String>,
    /// The resources it shows, in the order listed.
    pub shows: Vec<ResourceAddr>,
    pub labels: BTreeMap<String, String>,
    /// The Monitoring v1 `Dashboard` to write (displayName, labels, mosaicLayout).
    pub document: Value,
}

/// A widget template of one section, as `templates/dashboards/*.json` writes it.
#[derive(Debug, Deserialize)]
struct WidgetTemplate {
    title: String,
    filter: String,
    aligner: String,
    reducer: String,
    #[serde(default)]
    group_by: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct DashboardTemplate {
    columns: u32,
    tile_width: u32,
    tile_height: u32,
    sections: BTreeMap<String, Vec<WidgetTemplate>>,
}

/// The text of a shipped template; the loader accepts no other name than `stack_overview`.
fn template_text(_template: &str) -> &'static str {
    STACK_OVERVIEW
}

/// The placeholders of one listed resource: `{service}`, `{queue}`, `{job}` or
/// `{dataset}`/`{table}`, each its GCP id; `{gateway_id}` and `{gateway}` (its api's managed
/// service, a placeholder until Google assigns it).
fn placeholders_of(stack: &Stack, address: &ResourceAddr) -> Vec<(&'static str, String)> {
    let name = &address.name;
    match address.kind {
        Kind::Service => stack
            .services
            .get(name)
            .map(|s| vec![("{service}", s.id.clone())]),
        Kind::Queue => stack
            .queues
            .get(name)
            .map(|q| vec![("{queue}", q.id.clone())]),
        Kind::Job => stack.jobs.get(name).map(|j| vec![("{job}", j.id.clone())]),
        // Google assigns the managed service when the api is created: a placeholder until
        // then, filled in by plan and apply from what is live.
        Kind::Gateway => stack.gateways.get(name).map(|g| {
            vec![
                (
                    "{gateway}",
                    crate::config::templates::gateway_service_placeholder(address),
                ),
                ("{gateway_id}", g.id.clone()),
            ]
        }),
        Kind::Table => stack.tables.get(name).map(|t| {
            let dataset = stack
                .datasets
                .get(&t.dataset.name)
                .map_or_else(|| t.dataset.name.clone(), |d| d.id.clone());
            vec![("{dataset}", dataset), ("{table}", t.id.clone())]
        }),
        _ => None,
    }
    .unwrap_or_default()
}

fn filled(text: &str, placeholders: &[(&str, String)]) -> String {
    placeholders
        .iter()
        .fold(text.to_string(), |text, (from, to)| text.replace(from, to))
}

/// One xyChart widget of `widget` with `placeholders` filled in.
fn chart(widget: &WidgetTemplate, placeholders: &[(&str, String)]) -> Value {
    let mut aggregation = json!({
        "alignmentPeriod": ALIGNMENT_PERIOD,
        "perSeriesAligner": widget.aligner,
        "crossSeriesReducer": widget.reducer,
    });
    if !widget.group_by.is_empty() {
        aggregation["groupByFields"] = json!(widget.group_by);
    }
    json!({
        "title": filled(&widget.title, placeholders),
        "xyChart": {
            "dataSets": [{
                "timeSeriesQuery": {
                    "timeSeriesFilter": {
                        "filter": filled(&widget.filter, placeholders),
                        "aggregation": aggregation,
                    }
                },
                "plotType": "LINE",
            }]
        }
    })
}

/// The dashboard `cfg` declares: its file's document as written, or, from a template, every
/// section's widgets for each resource listed under it, then the `project` section once, tiled
/// left to right, top to bottom. Its display name and `labels` are the stanza's either way.
pub fn render(stack: &Stack, cfg: &DashboardConfig, labels: &BTreeMap<String, String>) -> Value {
    if let Some(file) = &cfg.file {
        let mut document = file.document.clone();
        if let Some(map) = document.as_object_mut() {
            map.remove("name");
            map.remove("etag");
        }
        document["displayName"] = json!(cfg.display_name);
        document["labels"] = json!(labels);
        return document;
    }
    let template: DashboardTemplate =
        serde_json::from_str(template_text(&cfg.template)).expect("shipped dashboard template");
    let mut widgets = Vec::new();
    for (section, listed) in [
        ("services", &cfg.services),
        ("queues", &cfg.queues),
        ("jobs", &cfg.jobs),
        ("tables", &cfg.tables),
        ("gateways", &cfg.gateways),
    ] {
        for address in listed {
            let placeholders = placeholders_of(stack, address);
            for widget in template.sections.get(section).into_iter().flatten() {
                widgets.push(chart(widget, &placeholders));
            }
        }
    }
    for widget in template.sections.get("project").into_iter().flatten() {
        widgets.push(chart(widget, &[]));
    }
    let per_row = (template.columns / template.tile_width.max(1)).max(1) as usize;
    let tiles: Vec<Value> = widgets
        .into_iter()
        .enumerate()
        .map(|(index, widget)| {
            json!({
                "xPos": (index % per_row) as u32 * template.tile_width,
                "yPos": (index / per_row) as u32 * template.tile_height,
                "width": template.tile_width,
                "height": template.tile_height,
                "widget": widget,
            })
        })
        .collect();
    json!({
        "displayName": cfg.display_name,
        "labels": labels,
        "mosaicLayout": {"columns": template.columns, "tiles": tiles},
    })
}

/// The labels a dashboard file gives its dashboard (kept beside the stack's own).
fn file_labels(cfg: &DashboardConfig) -> BTreeMap<String, String> {
    cfg.file
        .as_ref()
        .and_then(|file| file.document.get("labels"))
        .and_then(|labels| serde_json::from_value(labels.clone()).ok())
        .unwrap_or_default()
}

pub fn spec(stack: &Stack, name: &str, cfg: &DashboardConfig) -> DashboardSpec {
    let mut labels = owned_labels(stack, &file_labels(cfg));
    labels.insert(NAME_LABEL.to_string(), name.to_string());
    DashboardSpec {
        key: format!("{}/{name}", stack.settings.name),
        placeholder: format!(
            "projects/{}/dashboards/(assigned on create)",
            stack.settings.project
        ),
        display_name: cfg.display_name.clone(),
        template: cfg.template.clone(),
        file: cfg.file.as_ref().map(|file| file.path.clone()),
        shows: [
            &cfg.services,
            &cfg.queues,
            &cfg.jobs,
            &cfg.tables,
            &cfg.gateways,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect(),
        document: render(stack, cfg, &labels),
        labels,
    }
}

/// A dashboard as compared: without what the server adds or leaves out (`name`, `etag`, widget
/// ids, and the zeros, empty lists and empty objects proto3 JSON omits) and without `labels`,
/// which are diffed on their own.
pub fn normalized(document: &Value) -> Value {
    fn strip(value: &Value) -> Option<Value> {
        match value {
            Value::Object(map) => {
                let kept: Map<String, Value> = map
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "id" | "name" | "etag"))
                    .filter_map(|(k, v)| strip(v).map(|v| (k.clone(), v)))
                    .collect();
                (!kept.is_empty()).then_some(Value::Object(kept))
            }
            Value::Array(items) if items.is_empty() => None,
            Value::Array(items) => Some(Value::Array(
                items
                    .iter()
                    .map(|v| strip(v).unwrap_or(Value::Null))
                    .collect(),
            )),
            Value::Null => None,
            Value::Number(n) if n.as_f64() == Some(0.0) => None,
            Value::String(s) if s.is_empty() => None,
            Value::Bool(false) => None,
            other => Some(other.clone()),
        }
    }
    let mut document = document.clone();
    if let Some(map) = document.as_object_mut() {
        map.remove("labels");
    }
    strip(&document).unwrap_or_else(|| json!({}))
}

fn tiles_of(document: &Value) -> &[Value] {
    document["mosaicLayout"]["tiles"]
        .as_array()
        .map_or(&[], Vec::as_slice)
}

/// How many widgets a dashboard of any layout holds.
fn widget_count(document: &Value) -> usize {
    let count = |list: &Value| list.as_array().map_or(0, Vec::len);
    let nested = |outer: &str, inner: &str| {
        document[outer][inner].as_array().map_or(0, |groups| {
            groups.iter().map(|g| count(&g["widgets"])).sum()
        })
    };
    count(&document["mosaicLayout"]["tiles"])
        + count(&document["gridLayout"]["widgets"])
        + nested("rowLayout", "rows")
        + nested("columnLayout", "columns")
}

/// `"title"` of a tile, as plans show an added or removed one.
fn tile_title(tile: &Value) -> String {
    quoted(tile["widget"]["title"].as_str().unwrap_or("(untitled)"))
}

pub fn create_fields(spec: &DashboardSpec) -> Vec<FieldChange> {
    let mut out = vec![
        created("display_name", quoted(&spec.display_name)),
        match &spec.file {
            Some(file) => created("file", quoted(file)),
            None => created("template", quoted(&spec.template)),
        },
        created(
            "shows",
            format!(
                "[{}]",
                spec.shows
                    .iter()
                    .map(|a| quoted(&a.to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        created("widgets", widget_count(&spec.document).to_string()),
    ];
    for (k, v) in &spec.labels {
        out.push(created(&format!("labels.{k}"), quoted(v)));
    }
    out
}

/// The document with the values Google assigns on create (a gateway's managed service) filled
/// in from `known`; `Err` names a resource whose value is not known yet.
pub fn document_with_known(spec: &DashboardSpec, known: &Known) -> Result<Value, ResourceAddr> {
    let text = spec.document.to_string();
    let filled = super::fill_assigned(&text, known)?;
    Ok(serde_json::from_str(&filled).expect("a filled JSON document is JSON"))
}

/// Changed leaves of the normalized documents (`mosaicLayout.tiles[3].widget.title`); tiles
/// compare by position, an added or removed one shows as `mosaicLayout.tiles[N]` with its title.
pub fn diff(spec: &DashboardSpec, live: &DashboardRecord, known: &Known) -> Vec<FieldChange> {
    let mut out = Vec::new();
    // Until the value exists, the placeholder shows (and differs) where it goes.
    let document = document_with_known(spec, known).unwrap_or_else(|_| spec.document.clone());
    let mut want = normalized(&document);
    let mut have = normalized(&live.body);
    let want_tiles = tiles_of(&want).to_vec();
    let have_tiles = tiles_of(&have).to_vec();
    for document in [&mut want, &mut have] {
        if let Some(layout) = document
            .get_mut("mosaicLayout")
            .and_then(Value::as_object_mut)
        {
            layout.remove("tiles");
        }
    }
    diff_documents("", &want, &have, &mut out);
    for index in 0..want_tiles.len().max(have_tiles.len()) {
        let field = format!("mosaicLayout.tiles[{index}]");
        match (want_tiles.get(index), have_tiles.get(index)) {
            (Some(w), Some(h)) => diff_documents(&field, w, h, &mut out),
            (Some(w), None) => out.push(created(&field, tile_title(w))),
            (None, Some(h)) => out.push(FieldChange::new(field, Some(tile_title(h)), None)),
            (None, None) => {}
        }
    }
    diff_labels(&mut out, "labels", &spec.labels, &live.labels);
    out
}

/// `dashboard`: Monitoring dashboards, owned by label.
pub struct DashboardKind;

impl Reconcile for DashboardKind {
    const KIND: Kind = Kind::Dashboard;
    const TIER: u8 = 3;
    const APIS: &'static [&'static str] = &["monitoring"];
    super::server_named_by_label!(Kind::Dashboard, labels, "label");
    type Spec = DashboardSpec;
    type Live = DashboardRecord;
    fn declared(stack: &Stack) -> Vec<(ResourceAddr, DashboardSpec)> {
        super::each_declared(Self::KIND, &stack.dashboards, |name, cfg| {
            spec(stack, name, cfg)
        })
    }
    fn depends_on(spec: &DashboardSpec) -> Vec<ResourceAddr> {
        spec.shows.clone()
    }
    fn create_fields(spec: &DashboardSpec, _: &Known) -> Vec<FieldChange> {
        create_fields(spec)
    }
    fn diff(spec: &DashboardSpec, live: &DashboardRecord, known: &Known) -> Vec<FieldChange> {
        diff(spec, live, known)
    }
}

impl Converge for DashboardKind {
    async fn write_adoption_labels(
        cloud: &crate::provider::Cloud,
        live: &Self::Live,
        labels: &BTreeMap<String, String>,
        _stack: &Stack,
    ) -> Result<(), crate::provider::ApiError> {
        use crate::provider::Silent;
        let mut body = live.body.clone();
        body["labels"] = json!(labels);
        cloud
            .replace_dashboard(&live.name, &live.etag, &body, &Silent)
            .await
            .map(drop)
    }
    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&DashboardSpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let cloud = &ctx.cloud;
        let document = match spec {
            None => Value::Null,
            Some(spec) => document_with_known(spec, &ctx.known().await).map_err(|gateway| {
                StepError::Plan(format!(
                    "{}: it charts {gateway}, whose Google-assigned name is not known yet; re-run apply once {gateway} exists",
                    change.address
                ))
            })?,
        };
        match (change.action, spec) {
            (Action::Create, Some(_)) => {
                observer.phase("creating dashboard");
                let made = cloud.create_dashboard(&document, observer).await?;
                ctx.names
                    .lock()
                    .await
                    .insert(change.address.clone(), made.name);
            }
            (Action::Update | Action::Replace, Some(_)) => {
                observer.phase("updating dashboard");
                // The etag read now, not the plan's: the plan's fingerprint already guards
                // against changes made since it was made.
                let live = cloud
                    .list_dashboards(observer)
                    .await?
                    .into_iter()
                    .find(|d| d.name == change.name);
                let etag = live.map(|d| d.etag).unwrap_or_default();
                cloud
                    .replace_dashboard(&change.name, &etag, &document, observer)
                    .await?;
            }
            (Action::Delete | Action::Retire, _) => {
                observer.phase("deleting dashboard");
                cloud.delete_dashboard(&change.name, observer).await?;
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

    fn example() -> Stack {
        crate::config::parse(
            std::path::Path::new("stack.toml"),
            include_str!("../../stack.toml"),
        )
        .expect("example")
    }

    fn overview(stack: &Stack) -> DashboardSpec {
        let (_, spec) = DashboardKind::declared(stack)
            .into_iter()
            .find(|(a, _)| a.name == "overview")
            .expect("[dashboard.overview] in the example");
        spec
    }

    /// What Google returns for `spec`: name, etag and widget ids added, zeros left out.
    fn as_served(spec: &DashboardSpec) -> DashboardRecord {
        let mut body = spec.document.clone();
        body["name"] = json!("projects/p/dashboards/1234");
        body["etag"] = json!("abc123");
        for (index, tile) in body["mosaicLayout"]["tiles"]
            .as_array_mut()
            .expect("tiles")
            .iter_mut()
            .enumerate()
        {
            tile["widget"]["id"] = json!(format!("w{index}"));
            let tile = tile.as_object_mut().expect("tile");
            if tile["xPos"] == json!(0) {
                tile.remove("xPos");
            }
            if tile["yPos"] == json!(0) {
                tile.remove("yPos");
            }
        }
        DashboardRecord {
            name: "projects/p/dashboards/1234".into(),
            display_name: spec.display_name.clone(),
            etag: "abc123".into(),
            labels: spec.labels.clone(),
            body,
        }
    }

    #[test]
    fn the_example_overview_renders_its_services_queue_job_and_table() {
        let spec = overview(&example());
        insta::assert_snapshot!(
            "example_overview",
            serde_json::to_string_pretty(&spec.document).expect("json")
        );
    }

    #[test]
    fn a_server_normalized_dashboard_diffs_empty_and_is_found_by_labels() {
        let spec = overview(&example());
        let live = as_served(&spec);
        assert_eq!(
            DashboardKind::live_key(&live),
            DashboardKind::spec_key(&spec)
        );
        assert_eq!(diff(&spec, &live, &Known::default()), vec![]);
    }

    #[test]
    fn one_changed_service_diffs_exactly_its_tiles() {
        let mut stack = example();
        let live = as_served(&overview(&stack));
        stack.services.get_mut("relay").expect("relay").id = "relay-v2".into();
        let fields = diff(&overview(&stack), &live, &Known::default());
        let touched: std::collections::BTreeSet<&str> = fields
            .iter()
            .map(|f| f.field.split(".widget").next().expect("a tile field"))
            .collect();
        // relay is the second service listed: tiles 5 to 9 (five widgets a service).
        let relay_tiles: std::collections::BTreeSet<String> = (5..10)
            .map(|i| format!("mosaicLayout.tiles[{i}]"))
            .collect();
        assert_eq!(
            touched,
            relay_tiles.iter().map(String::as_str).collect(),
            "{fields:?}"
        );
        assert!(
            fields
                .iter()
                .any(|f| f.field == "mosaicLayout.tiles[5].widget.title"),
            "{fields:?}"
        );
    }
}

//! `table`: BigQuery tables and materialized views — schema compare after normalizing types and
//! modes, in-place changes (added columns, relaxed modes, clustering) versus replacements.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    Adoption, ApplyCtx, Converge, Known, Reconcile, StepError, created, diff_labels, owned_labels,
    quoted, quoted_duration,
};
use crate::config::{Column, Partition, Stack, TableConfig};
use crate::model::change::{Action, FieldChange, FieldValue, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::bigquery::{
    FieldRecord, PartitionRecord, TableRecord, TableWrite, ViewRecord,
};
use crate::provider::run::OperationObserver;
use crate::state::Ledger;

/// How often a patch is retried after a 412 (the table changed between read and write).
const PRECONDITION_RETRIES: usize = 3;

/// The declared state of one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSpec {
    /// `projects/P/datasets/D/tables/T`
    pub name: String,
    pub project: String,
    pub dataset_id: String,
    pub table_id: String,
    pub dataset: ResourceAddr,
    pub columns: Vec<Column>,
    pub partition: Option<Partition>,
    pub cluster_by: Vec<String>,
    pub require_partition_filter: bool,
    pub view_query: Option<String>,
    pub refresh_interval: Option<Duration>,
    pub labels: BTreeMap<String, String>,
}

pub fn spec(stack: &Stack, cfg: &TableConfig) -> TableSpec {
    let dataset_id = stack
        .datasets
        .get(&cfg.dataset.name)
        .map(|d| d.id.clone())
        .unwrap_or_else(|| cfg.dataset.name.clone());
    TableSpec {
        name: format!(
            "projects/{}/datasets/{dataset_id}/tables/{}",
            stack.settings.project, cfg.id
        ),
        project: stack.settings.project.clone(),
        dataset_id,
        table_id: cfg.id.clone(),
        dataset: cfg.dataset.clone(),
        columns: cfg.columns.clone(),
        partition: cfg.partition.clone(),
        cluster_by: cfg.cluster_by.clone(),
        require_partition_filter: cfg.require_partition_filter,
        view_query: cfg.view_query.clone(),
        refresh_interval: cfg.refresh_interval,
        labels: owned_labels(stack, &cfg.labels),
    }
}

/// One name for each BigQuery type (the API answers with legacy names).
pub fn canonical_type(kind: &str) -> String {
    let upper = kind.to_ascii_uppercase();
    match upper.as_str() {
        "INT64" => "INTEGER".into(),
        "FLOAT64" => "FLOAT".into(),
        "BOOL" => "BOOLEAN".into(),
        "STRUCT" => "RECORD".into(),
        _ => upper,
    }
}

fn canonical_mode(mode: Option<&str>) -> String {
    match mode {
        None | Some("") => "NULLABLE".into(),
        Some(m) => m.to_ascii_uppercase(),
    }
}

fn column_text(kind: &str, mode: &str) -> String {
    quoted(&format!("{} {mode}", canonical_type(kind)))
}

/// Collapses whitespace, so a query reformatted by the server does not diff.
fn normalize_query(q: &str) -> String {
    q.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn field_record(c: &Column) -> FieldRecord {
    FieldRecord {
        name: c.name.clone(),
        kind: c.kind.clone(),
        mode: Some(c.mode.clone()),
        description: c.description.clone(),
        fields: c.fields.iter().map(field_record).collect(),
    }
}

/// Column changes: additions (NULLABLE/REPEATED), relaxing REQUIRED and descriptions are in place;
/// removals, type changes and other mode changes force replacement.
pub fn diff_columns(
    prefix: &str,
    desired: &[Column],
    live: &[FieldRecord],
    out: &mut Vec<FieldChange>,
) {
    for d in desired {
        let path = format!("{prefix}{}", d.name);
        let Some(l) = live.iter().find(|l| l.name.eq_ignore_ascii_case(&d.name)) else {
            let change = FieldChange::new(
                &path,
                None,
                Some(FieldValue::Known(column_text(&d.kind, &d.mode))),
            );
            out.push(if d.mode == "REQUIRED" {
                change.forcing_replacement()
            } else {
                change
            });
            continue;
        };
        let (dk, lk) = (canonical_type(&d.kind), canonical_type(&l.kind));
        if dk != lk {
            out.push(
                FieldChange::new(
                    format!("{path}.type"),
                    Some(quoted(&lk)),
                    Some(FieldValue::Known(quoted(&dk))),
                )
                .forcing_replacement(),
            );
        }
        let (dm, lm) = (
            canonical_mode(Some(&d.mode)),
            canonical_mode(l.mode.as_deref()),
        );
        if dm != lm {
            let change = FieldChange::new(
                format!("{path}.mode"),
                Some(quoted(&lm)),
                Some(FieldValue::Known(quoted(&dm))),
            );
            let relaxing = lm == "REQUIRED" && dm == "NULLABLE";
            out.push(if relaxing {
                change
            } else {
                change.forcing_replacement()
            });
        }
        if let Some(desc) = &d.description
            && l.description.as_deref().unwrap_or("") != desc
        {
            out.push(FieldChange::new(
                format!("{path}.description"),
                l.description.as_deref().map(quoted),
                Some(FieldValue::Known(quoted(desc))),
            ));
        }
        if dk == "RECORD" && lk == "RECORD" {
            diff_columns(&format!("{path}."), &d.fields, &l.fields, out);
        }
    }
    for l in live {
        if !desired.iter().any(|d| d.name.eq_ignore_ascii_case(&l.name)) {
            out.push(
                FieldChange::new(
                    format!("{prefix}{}", l.name),
                    Some(column_text(&l.kind, &canonical_mode(l.mode.as_deref()))),
                    None,
                )
                .forcing_replacement(),
            );
        }
    }
}

fn partition_text(p: &Partition) -> String {
    quoted(&format!("{} by {}", p.field, p.granularity))
}

pub fn create_fields(spec: &TableSpec) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if let Some(q) = &spec.view_query {
        out.push(created("view_query", quoted(&normalize_query(q))));
    }
    if let Some(r) = &spec.refresh_interval {
        out.push(created("refresh_interval", quoted_duration(r)));
    }
    for c in &spec.columns {
        out.push(created(
            &format!("columns.{}", c.name),
            column_text(&c.kind, &c.mode),
        ));
    }
    if let Some(p) = &spec.partition {
        out.push(created("partition.field", quoted(&p.field)));
        out.push(created("partition.granularity", quoted(&p.granularity)));
        if let Some(e) = &p.expiration {
            out.push(created("partition.expiration", quoted_duration(e)));
        }
    }
    if !spec.cluster_by.is_empty() {
        out.push(created("cluster_by", format!("{:?}", spec.cluster_by)));
    }
    if spec.partition.is_some() {
        out.push(created(
            "require_partition_filter",
            spec.require_partition_filter.to_string(),
        ));
    }
    for (k, v) in &spec.labels {
        out.push(created(&format!("labels.{k}"), quoted(v)));
    }
    out
}

fn replace(field: &str, before: Option<String>, after: Option<String>) -> FieldChange {
    FieldChange::new(field, before, after.map(FieldValue::Known)).forcing_replacement()
}

pub fn diff(spec: &TableSpec, live: &TableRecord) -> Vec<FieldChange> {
    let mut out = Vec::new();
    match (&spec.view_query, &live.view) {
        (Some(q), Some(v)) => {
            if normalize_query(q) != normalize_query(&v.query) {
                out.push(replace(
                    "view_query",
                    Some(quoted(&normalize_query(&v.query))),
                    Some(quoted(&normalize_query(q))),
                ));
            }
            if let Some(r) = spec.refresh_interval
                && v.refresh_interval != Some(r)
            {
                out.push(FieldChange::new(
                    "refresh_interval",
                    v.refresh_interval.as_ref().map(quoted_duration),
                    Some(FieldValue::Known(quoted_duration(&r))),
                ));
            }
        }
        (Some(q), None) => out.push(replace(
            "view_query",
            None,
            Some(quoted(&normalize_query(q))),
        )),
        (None, Some(v)) => out.push(replace(
            "view_query",
            Some(quoted(&normalize_query(&v.query))),
            None,
        )),
        (None, None) => diff_columns("columns.", &spec.columns, &live.columns, &mut out),
    }
    diff_partition(spec.partition.as_ref(), live.partition.as_ref(), &mut out);
    let lower = |v: &[String]| v.iter().map(|s| s.to_ascii_lowercase()).collect::<Vec<_>>();
    if lower(&spec.cluster_by) != lower(&live.cluster_by) {
        let show = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                format!("{v:?}")
            }
        };
        out.push(FieldChange::new(
            "cluster_by",
            Some(show(&live.cluster_by)),
            Some(FieldValue::Known(show(&spec.cluster_by))),
        ));
    }
    if spec.partition.is_some() && spec.require_partition_filter != live.require_partition_filter {
        out.push(FieldChange::new(
            "require_partition_filter",
            Some(live.require_partition_filter.to_string()),
            Some(FieldValue::Known(spec.require_partition_filter.to_string())),
        ));
    }
    diff_labels(&mut out, "labels", &spec.labels, &live.labels);
    out
}

fn diff_partition(
    desired: Option<&Partition>,
    live: Option<&PartitionRecord>,
    out: &mut Vec<FieldChange>,
) {
    match (desired, live) {
        (None, None) => {}
        (Some(d), None) => out.push(replace(
            "partition",
            Some("none".into()),
            Some(partition_text(d)),
        )),
        (None, Some(l)) => out.push(replace(
            "partition",
            Some(quoted(&format!(
                "{} by {}",
                l.field.as_deref().unwrap_or("_PARTITIONTIME"),
                l.granularity
            ))),
            Some("none".into()),
        )),
        (Some(d), Some(l)) => {
            let live_field = l.field.clone().unwrap_or_else(|| "_PARTITIONTIME".into());
            if !d.field.eq_ignore_ascii_case(&live_field) {
                out.push(replace(
                    "partition.field",
                    Some(quoted(&live_field)),
                    Some(quoted(&d.field)),
                ));
            }
            if !d.granularity.eq_ignore_ascii_case(&l.granularity) {
                out.push(replace(
                    "partition.granularity",
                    Some(quoted(&l.granularity)),
                    Some(quoted(&d.granularity)),
                ));
            }
            if let Some(e) = d.expiration
                && l.expiration != Some(e)
            {
                out.push(FieldChange::new(
                    "partition.expiration",
                    Some(
                        l.expiration
                            .as_ref()
                            .map(quoted_duration)
                            .unwrap_or_else(|| "none".into()),
                    ),
                    Some(FieldValue::Known(quoted_duration(&e))),
                ));
            }
        }
    }
}

/// The whole table, for inserts.
pub fn to_insert(spec: &TableSpec) -> TableWrite {
    TableWrite {
        project: spec.project.clone(),
        dataset_id: spec.dataset_id.clone(),
        table_id: spec.table_id.clone(),
        labels: Some(spec.labels.clone()),
        columns: (spec.view_query.is_none())
            .then(|| spec.columns.iter().map(field_record).collect()),
        partition: spec.partition.as_ref().map(|p| PartitionRecord {
            granularity: p.granularity.clone(),
            field: Some(p.field.clone()),
            expiration: p.expiration,
        }),
        cluster_by: (!spec.cluster_by.is_empty()).then(|| spec.cluster_by.clone()),
        require_partition_filter: spec
            .partition
            .is_some()
            .then_some(spec.require_partition_filter),
        view: spec.view_query.as_ref().map(|q| ViewRecord {
            query: q.clone(),
            refresh_interval: spec.refresh_interval,
        }),
    }
}

/// The live schema with the declared changes applied: live columns in their order (updated),
/// then new columns — BigQuery only appends.
fn merged_schema(desired: &[Column], live: &[FieldRecord]) -> Vec<FieldRecord> {
    let mut out: Vec<FieldRecord> = live
        .iter()
        .map(|l| {
            match desired
                .iter()
                .find(|d| d.name.eq_ignore_ascii_case(&l.name))
            {
                Some(d) => FieldRecord {
                    name: l.name.clone(),
                    kind: l.kind.clone(),
                    mode: Some(d.mode.clone()),
                    description: d.description.clone().or_else(|| l.description.clone()),
                    fields: merged_schema(&d.fields, &l.fields),
                },
                None => l.clone(),
            }
        })
        .collect();
    for d in desired {
        if !live.iter().any(|l| l.name.eq_ignore_ascii_case(&d.name)) {
            out.push(field_record(d));
        }
    }
    out
}

/// The parts of the table that the in-place changes touch, for `tables.patch`.
pub fn to_patch(spec: &TableSpec, live: &TableRecord, fields: &[FieldChange]) -> TableWrite {
    let touched = |prefix: &str| fields.iter().any(|f| f.field.starts_with(prefix));
    let full = to_insert(spec);
    TableWrite {
        project: spec.project.clone(),
        dataset_id: spec.dataset_id.clone(),
        table_id: spec.table_id.clone(),
        labels: touched("labels.").then(|| spec.labels.clone()),
        columns: touched("columns.").then(|| merged_schema(&spec.columns, &live.columns)),
        partition: if touched("partition.") {
            full.partition
        } else {
            None
        },
        cluster_by: touched("cluster_by").then(|| spec.cluster_by.clone()),
        require_partition_filter: touched("require_partition_filter")
            .then_some(spec.require_partition_filter),
        view: if touched("refresh_interval") {
            full.view
        } else {
            None
        },
    }
}

/// `table`: BigQuery tables, owned by label.
pub struct TableKind;

impl Reconcile for TableKind {
    const KIND: Kind = Kind::Table;
    const TIER: u8 = 2;
    const APIS: &'static [&'static str] = &["bigquery"];
    const ADOPTION: Adoption = Adoption::Labels;
    fn owner_labels(live: &Self::Live) -> Option<&BTreeMap<String, String>> {
        Some(&live.labels)
    }
    /// A table is dropped with its rows; a view holds none.
    fn data_loss(step: &Step, spec: Option<&TableSpec>) -> Option<String> {
        let is_view = spec.is_some_and(|t| t.view_query.is_some());
        match step.action {
            Action::Replace if !is_view => {
                let fields: Vec<&str> = step
                    .fields
                    .iter()
                    .filter(|f| f.forces_replacement)
                    .map(|f| f.field.as_str())
                    .collect();
                Some(format!(
                    "{} would be dropped and recreated empty ({} cannot change in place); to keep its rows migrate instead: copy it (`bq cp` or CREATE TABLE ... AS SELECT) -> recreate it with the new definition -> backfill from the copy; or pass --allow-data-loss to drop it",
                    step.address,
                    fields.join(", ")
                ))
            }
            Action::Delete => Some(format!(
                "{} was removed from stack.toml and would be deleted with its rows; copy it first if you need them, or put it back; --allow-data-loss deletes it",
                step.address
            )),
            _ => None,
        }
    }
    fn estimate(
        stack: &Stack,
        prices: &crate::cost::PriceTable,
        address: &ResourceAddr,
    ) -> Option<crate::cost::Estimate> {
        let label = address.to_string();
        stack.tables.get(&address.name).map(|_| {
            let usage =
                stack
                    .usage
                    .tables
                    .get(&address.name)
                    .map(|u| crate::cost::estimate::TableUsage {
                        active_gib: u.stored_gib,
                        long_term_gib: u.long_term_gib,
                        scanned_tib_per_month: u.scanned_tib_per_month,
                    });
            crate::cost::estimate::table(prices, usage.as_ref(), &label)
        })
    }
    type Spec = TableSpec;
    type Live = TableRecord;

    fn declared(stack: &Stack) -> Vec<(ResourceAddr, TableSpec)> {
        super::each_declared(Self::KIND, &stack.tables, |_, cfg| spec(stack, cfg))
    }
    fn spec_name(spec: &TableSpec) -> &str {
        &spec.name
    }
    fn live_name(live: &TableRecord) -> &str {
        &live.name
    }
    fn address_of(live: &TableRecord, _: &Ledger) -> ResourceAddr {
        ResourceAddr::new(Kind::Table, &live.table_id)
    }
    fn fingerprint(live: &TableRecord) -> String {
        live.etag.clone()
    }
    fn depends_on(spec: &TableSpec) -> Vec<ResourceAddr> {
        vec![spec.dataset.clone()]
    }
    fn create_fields(spec: &TableSpec, _: &Known) -> Vec<FieldChange> {
        create_fields(spec)
    }
    fn diff(spec: &TableSpec, live: &TableRecord, _: &Known) -> Vec<FieldChange> {
        diff(spec, live)
    }
}

impl Converge for TableKind {
    async fn write_adoption_labels(
        cloud: &crate::provider::Cloud,
        live: &Self::Live,
        labels: &BTreeMap<String, String>,
        stack: &Stack,
    ) -> Result<(), crate::provider::ApiError> {
        use crate::provider::Silent;
        let write = crate::provider::bigquery::TableWrite {
            project: stack.settings.project.clone(),
            dataset_id: live.dataset_id.clone(),
            table_id: live.table_id.clone(),
            labels: Some(labels.clone()),
            ..Default::default()
        };
        cloud
            .patch_table(&write, &live.etag, &Silent)
            .await
            .map(drop)
    }
    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&TableSpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let cloud = &ctx.cloud;
        let (dataset, table) = split_name(&change.name);
        match (change.action, spec) {
            (Action::Create, Some(spec)) => {
                observer.phase("creating table");
                cloud.insert_table(&to_insert(spec), observer).await?;
            }
            (Action::Update, Some(spec)) => {
                let mut etag = change.fingerprint.clone().unwrap_or_default();
                let mut live = cloud
                    .get_table(dataset, table, observer)
                    .await?
                    .ok_or_else(|| {
                        StepError::Plan(format!(
                            "{} disappeared since it was planned; re-run `stackctl plan`",
                            change.address
                        ))
                    })?;
                for attempt in 0..=PRECONDITION_RETRIES {
                    let fields = diff(spec, &live);
                    if fields.iter().any(|f| f.forces_replacement) {
                        return Err(StepError::Plan(format!(
                            "{} changed since it was planned and now needs replacing; re-run `stackctl plan`",
                            change.address
                        )));
                    }
                    if fields.is_empty() {
                        return Ok(());
                    }
                    observer.phase("patching table");
                    match cloud
                        .patch_table(&to_patch(spec, &live, &fields), &etag, observer)
                        .await
                    {
                        Ok(_) => return Ok(()),
                        Err(e) if e.is_precondition_failed() && attempt < PRECONDITION_RETRIES => {
                            observer.phase("table changed since read (412): re-reading");
                            live = cloud.get_table(dataset, table, observer).await?.ok_or(e)?;
                            etag = live.etag.clone();
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            (Action::Replace, Some(spec)) => {
                observer.phase("deleting table (replace)");
                cloud.delete_table(dataset, table, observer).await?;
                observer.phase("creating table (replace)");
                cloud.insert_table(&to_insert(spec), observer).await?;
            }
            (Action::Delete | Action::Retire, _) => {
                observer.phase("deleting table");
                cloud.delete_table(dataset, table, observer).await?;
            }
            (action, None) => {
                return Err(StepError::no_desired_state(action, &change.address));
            }
        }
        Ok(())
    }
}

/// `projects/P/datasets/D/tables/T` -> (D, T).
fn split_name(name: &str) -> (&str, &str) {
    let mut parts = name.split('/');
    let dataset = parts.nth(3).unwrap_or_default();
    let table = parts.nth(1).unwrap_or_default();
    (dataset, table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::OWNER_LABEL;

    fn col(name: &str, kind: &str, mode: &str) -> Column {
        Column {
            name: name.into(),
            kind: kind.into(),
            mode: mode.into(),
            description: None,
            fields: vec![],
        }
    }

    fn field(name: &str, kind: &str, mode: Option<&str>) -> FieldRecord {
        FieldRecord {
            name: name.into(),
            kind: kind.into(),
            mode: mode.map(String::from),
            description: None,
            fields: vec![],
        }
    }

    fn spec() -> TableSpec {
        TableSpec {
            name: "projects/p/datasets/shopify/tables/orders".into(),
            project: "p".into(),
            dataset_id: "shopify".into(),
            table_id: "orders".into(),
            dataset: "dataset.shopify".parse().unwrap(),
            columns: vec![
                col("id", "INT64", "REQUIRED"),
                col("customer_id", "STRING", "NULLABLE"),
                col("created_at", "TIMESTAMP", "REQUIRED"),
            ],
            partition: Some(Partition {
                field: "created_at".into(),
                granularity: "DAY".into(),
                expiration: Some(Duration::from_secs(730 * 86_400)),
            }),
            cluster_by: vec!["customer_id".into()],
            require_partition_filter: true,
            view_query: None,
            refresh_interval: None,
            labels: BTreeMap::from([(OWNER_LABEL.into(), "s".into())]),
        }
    }

    /// As BigQuery echoes it: legacy type names, mode omitted for NULLABLE, other order.
    fn live() -> TableRecord {
        TableRecord {
            name: "projects/p/datasets/shopify/tables/orders".into(),
            dataset_id: "shopify".into(),
            table_id: "orders".into(),
            kind: "TABLE".into(),
            etag: "e1".into(),
            labels: BTreeMap::from([(OWNER_LABEL.into(), "s".into())]),
            columns: vec![
                field("created_at", "TIMESTAMP", Some("REQUIRED")),
                field("ID", "INTEGER", Some("REQUIRED")),
                field("customer_id", "STRING", None),
            ],
            partition: Some(PartitionRecord {
                granularity: "DAY".into(),
                field: Some("created_at".into()),
                expiration: Some(Duration::from_secs(730 * 86_400)),
            }),
            cluster_by: vec!["customer_id".into()],
            require_partition_filter: true,
            view: None,
            num_bytes: None,
            long_term_bytes: None,
            created: None,
        }
    }

    #[test]
    fn type_aliases_default_modes_case_and_order_do_not_diff() {
        assert_eq!(diff(&spec(), &live()), vec![]);
    }

    #[test]
    fn an_added_nullable_column_and_clustering_apply_in_place() {
        let mut s = spec();
        s.columns.push(col("total", "NUMERIC", "NULLABLE"));
        s.cluster_by = vec!["customer_id".into(), "id".into()];
        let fields = diff(&s, &live());
        let names: Vec<_> = fields
            .iter()
            .map(|f| (f.field.as_str(), f.forces_replacement))
            .collect();
        assert_eq!(names, vec![("columns.total", false), ("cluster_by", false)]);
        let patch = to_patch(&s, &live(), &fields);
        let cols: Vec<_> = patch
            .columns
            .unwrap()
            .iter()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(
            cols,
            vec!["created_at", "ID", "customer_id", "total"],
            "new columns are appended"
        );
        assert!(patch.partition.is_none() && patch.labels.is_none());
    }

    #[test]
    fn relaxing_required_is_in_place_but_tightening_is_not() {
        let mut s = spec();
        s.columns[0].mode = "NULLABLE".into();
        assert!(!diff(&s, &live())[0].forces_replacement);
        let mut s = spec();
        s.columns[1].mode = "REQUIRED".into();
        assert!(diff(&s, &live())[0].forces_replacement);
    }

    #[test]
    fn partition_changes_type_changes_and_removals_force_replacement() {
        let mut s = spec();
        s.partition.as_mut().unwrap().granularity = "MONTH".into();
        let f = diff(&s, &live());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].field, "partition.granularity");
        assert!(f[0].forces_replacement);

        let mut s = spec();
        s.columns[1].kind = "INT64".into();
        assert_eq!(diff(&s, &live())[0].field, "columns.customer_id.type");
        assert!(diff(&s, &live())[0].forces_replacement);

        let mut s = spec();
        s.columns.remove(1);
        s.cluster_by.clear();
        let f = diff(&s, &live());
        assert!(f.iter().any(|c| c.field == "columns.customer_id"
            && c.forces_replacement
            && c.after.is_none()));
    }

    #[test]
    fn partition_expiration_is_in_place() {
        let mut s = spec();
        s.partition.as_mut().unwrap().expiration = Some(Duration::from_secs(86_400 * 30));
        let f = diff(&s, &live());
        assert_eq!(f[0].field, "partition.expiration");
        assert!(!f[0].forces_replacement);
    }

    #[test]
    fn a_view_query_reformatted_by_the_server_does_not_diff() {
        let mut s = spec();
        s.columns.clear();
        s.partition = None;
        s.cluster_by.clear();
        s.view_query =
            Some("SELECT  customer_id,\n  COUNT(*) AS n FROM shopify.orders GROUP BY 1".into());
        s.refresh_interval = Some(Duration::from_secs(1800));
        let mut l = live();
        l.columns = vec![
            field("customer_id", "STRING", None),
            field("n", "INTEGER", None),
        ];
        l.partition = None;
        l.cluster_by.clear();
        l.require_partition_filter = false;
        l.view = Some(ViewRecord {
            query: "SELECT customer_id, COUNT(*) AS n FROM shopify.orders GROUP BY 1".into(),
            refresh_interval: Some(Duration::from_secs(1800)),
        });
        assert_eq!(diff(&s, &l), vec![]);
    }

    #[test]
    fn names_split_into_dataset_and_table() {
        assert_eq!(split_name("projects/p/datasets/d/tables/t"), ("d", "t"));
    }
}

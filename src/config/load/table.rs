//! `[table.NAME]`: a BigQuery table's keys (schema file or inline columns, partitioning,
//! clustering, materialized views), defaults and checks.

use super::*;

pub(super) const TABLE_KEYS: &[&str] = &[
    "cluster_by",
    "columns",
    "dataset",
    "id",
    "labels",
    "partition",
    "refresh_interval",
    "require_partition_filter",
    "schema",
    "view_query",
];

const COLUMN_KEYS: &[&str] = &["description", "mode", "name", "type"];
const PARTITION_KEYS: &[&str] = &["expiration", "field", "granularity"];

/// BigQuery's column types, standard and legacy names.
pub(super) const COLUMN_TYPES: &[&str] = &[
    "BIGNUMERIC",
    "BOOL",
    "BOOLEAN",
    "BYTES",
    "DATE",
    "DATETIME",
    "FLOAT",
    "FLOAT64",
    "GEOGRAPHY",
    "INT64",
    "INTEGER",
    "INTERVAL",
    "JSON",
    "NUMERIC",
    "RECORD",
    "STRING",
    "STRUCT",
    "TIME",
    "TIMESTAMP",
];

const MODES: &[&str] = &["NULLABLE", "REPEATED", "REQUIRED"];
const GRANULARITIES: &[&str] = &["DAY", "HOUR", "MONTH"];

/// Default refresh of a materialized view (BigQuery's own default, 30 minutes).
pub(super) const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(1800);

/// BigQuery allows at most four clustering columns.
const MAX_CLUSTER_COLUMNS: usize = 4;

pub(super) fn read_table(
    checker: &mut Checker,
    table: &TableRef,
    declared: &Declared,
) -> Option<Parsed<TableConfig>> {
    checker.check_keys(table, TABLE_KEYS);
    let id = read_id(checker, table);
    if let Some(id) = &id
        && !is_bigquery_id(&id.value)
    {
        id_error(
            checker,
            table,
            id,
            Kind::Table,
            "table ids are 1 to 1024 letters, digits and `_` (no `-`)",
        );
    }
    let dataset = checker
        .read_reference_at(table, "dataset", Kind::Dataset, declared)
        .required(
            checker,
            table,
            "dataset",
            "add dataset = \"dataset.NAME\" (the dataset that holds the table)".into(),
        );
    let view_query = checker.read_string(table, "view_query").optional();
    let schema_file = checker.read_string(table, "schema").optional();
    let inline = read_columns(checker, table);
    let columns: Option<Vec<Column>> = match (&schema_file, &inline) {
        (Some(Some(file)), Some(Some((_, span)))) => {
            let _ = file;
            checker.error(
                span.clone(),
                format!("{} has both `schema` and `columns`", table.title),
                Some("use one: a JSON schema file, or inline [[table.NAME.columns]]".into()),
            );
            None
        }
        (Some(Some(file)), Some(None)) => read_schema_file(checker, table, file),
        (Some(None), Some(Some((columns, _)))) => Some(columns.clone()),
        (Some(None), Some(None)) => Some(Vec::new()),
        _ => None,
    };
    let refresh = checker
        .read_duration(
            table,
            "refresh_interval",
            Duration::from_secs(60)..=Duration::from_secs(7 * 86_400),
        )
        .optional();
    let partition = read_partition(checker, table);
    let cluster_by = checker
        .read_plain_string_list(table, "cluster_by")
        .or_default(Vec::new());
    let require_filter = checker
        .read_bool(table, "require_partition_filter")
        .or_default(false);
    let labels = read_labels(checker, table);

    let columns = columns?;
    let view_query = view_query?;
    let refresh = refresh?;
    match &view_query {
        Some(view) => {
            let span = view.span.clone().unwrap_or_else(|| table.span.clone());
            if !columns.is_empty() {
                checker.error(
                    span.clone(),
                    format!(
                        "{} is a materialized view: its columns come from `view_query`",
                        table.title
                    ),
                    Some("remove `schema` / `columns`, or remove view_query".into()),
                );
            }
            if view.value.trim().is_empty() {
                checker.error(
                    span,
                    format!("`view_query` in {} is empty", table.title),
                    None,
                );
            }
        }
        None => {
            if columns.is_empty() {
                checker.error(
                    table.span.clone(),
                    format!("{} has no columns", table.title),
                    Some("add schema = \"schemas/NAME.json\" (a BigQuery JSON schema file) or [[table.NAME.columns]] entries with name and type".into()),
                );
            }
            if let Some(field) = &refresh {
                checker.error(
                    field.span.clone().unwrap_or_else(|| table.span.clone()),
                    format!("`refresh_interval` in {} needs `view_query`", table.title),
                    Some("refresh_interval only applies to materialized views".into()),
                );
            }
        }
    }
    let partition = partition?;
    let cluster_by = cluster_by?;
    let require_filter = require_filter?;

    let has_columns = !columns.is_empty();
    if let Some((p, span)) = &partition
        && has_columns
    {
        match columns.iter().find(|c| c.name.eq_ignore_ascii_case(&p.field)) {
            None => checker.error(
                span.clone(),
                format!("partition field `{}` is not a column of {}", p.field, table.title),
                Some(format!("columns: {}", column_names(&columns))),
            ),
            Some(c) if !matches!(c.kind.as_str(), "TIMESTAMP" | "DATE" | "DATETIME") => {
                checker.error(
                    span.clone(),
                    format!(
                        "partition field `{}` is {}; time partitioning needs a TIMESTAMP, DATE or DATETIME column",
                        p.field, c.kind
                    ),
                    None,
                )
            }
            Some(c) if c.kind == "DATE" && p.granularity == "HOUR" => checker.error(
                span.clone(),
                format!("a DATE column cannot be partitioned by HOUR in {}", table.title),
                Some("use granularity = \"DAY\" or \"MONTH\", or a TIMESTAMP column".into()),
            ),
            Some(_) => {}
        }
    }
    if let Some(span) = &cluster_by.span {
        let field = &cluster_by;
        if field.value.len() > MAX_CLUSTER_COLUMNS {
            checker.error(
                span.clone(),
                format!(
                    "{} clusters by {} columns; BigQuery allows at most 4",
                    table.title,
                    field.value.len()
                ),
                None,
            );
        }
        for name in &field.value {
            if has_columns && !columns.iter().any(|c| c.name.eq_ignore_ascii_case(name)) {
                checker.error(
                    span.clone(),
                    format!(
                        "cluster_by column `{name}` is not a column of {}",
                        table.title
                    ),
                    Some(format!("columns: {}", column_names(&columns))),
                );
            }
        }
    }
    if require_filter.value
        && partition.is_none()
        && let Some(span) = &require_filter.span
    {
        checker.error(
            span.clone(),
            format!(
                "`require_partition_filter` in {} needs `partition`",
                table.title
            ),
            Some(
                "add partition = { field = \"created_at\" } or remove require_partition_filter"
                    .into(),
            ),
        );
    }
    let id = id?;
    let id_span = id.span.unwrap_or_else(|| table.name_span.clone());
    let is_view = view_query.is_some();
    Some(Parsed {
        config: TableConfig {
            id: id.value,
            dataset: dataset?.value,
            columns,
            partition: partition.map(|(p, _)| p),
            cluster_by: cluster_by.value,
            require_partition_filter: require_filter.value,
            view_query: view_query.map(|f| f.value),
            refresh_interval: match refresh {
                Some(f) => Some(f.value),
                None if is_view => Some(DEFAULT_REFRESH_INTERVAL),
                None => None,
            },
            labels: labels?,
        },
        id_span,
    })
}

fn column_names(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `partition = { field = "...", granularity = "DAY", expiration = "730d" }`.
fn read_partition(checker: &mut Checker, table: &TableRef) -> Option<Option<(Partition, Span)>> {
    let Some(value) = table.get("partition") else {
        return Some(None);
    };
    let DeValue::Table(inner) = value.get_ref() else {
        let p = type_problem(
            "partition",
            &table.title,
            "a table",
            value.get_ref(),
            Some("write partition = { field = \"created_at\", granularity = \"DAY\" }".into()),
        );
        checker.error(value.span(), p.message, p.help);
        return None;
    };
    let sub = TableRef {
        kind: table.kind,
        title: format!("`partition` of {}", table.title),
        name: table.name.clone(),
        name_span: table.name_span.clone(),
        span: value.span(),
        table: inner,
    };
    checker.check_keys(&sub, PARTITION_KEYS);
    let field = checker.read_string(&sub, "field").required(
        checker,
        &sub,
        "field",
        "add field = \"COLUMN\" (a TIMESTAMP, DATE or DATETIME column)".into(),
    );
    let granularity = checker
        .read_string(&sub, "granularity")
        .or_default("DAY".into());
    if let Some(Field {
        value,
        span: Some(span),
    }) = &granularity
        && !GRANULARITIES.contains(&value.as_str())
    {
        checker.error(
            span.clone(),
            format!(
                "granularity `{value}` in {} is not DAY, HOUR or MONTH",
                sub.title
            ),
            Some("write granularity = \"DAY\", \"HOUR\" or \"MONTH\"".into()),
        );
    }
    let expiration = checker
        .read_duration(
            &sub,
            "expiration",
            Duration::from_secs(3600)..=Duration::MAX,
        )
        .optional();
    let granularity = granularity?;
    if !GRANULARITIES.contains(&granularity.value.as_str()) {
        return None;
    }
    Some(Some((
        Partition {
            field: field?.value,
            granularity: granularity.value,
            expiration: expiration?.map(|f| f.value),
        },
        value.span(),
    )))
}

/// `[[table.NAME.columns]]` entries. `Some(None)` when absent.
fn read_columns(checker: &mut Checker, table: &TableRef) -> Option<Option<(Vec<Column>, Span)>> {
    let Some(value) = table.get("columns") else {
        return Some(None);
    };
    let DeValue::Array(items) = value.get_ref() else {
        let p = type_problem(
            "columns",
            &table.title,
            "an array of tables",
            value.get_ref(),
            Some(format!(
                "write one [[table.{}.columns]] per column with name and type",
                table.name
            )),
        );
        checker.error(value.span(), p.message, p.help);
        return None;
    };
    let mut columns = Vec::new();
    let mut valid = true;
    for item in items.iter() {
        let DeValue::Table(inner) = item.get_ref() else {
            valid = false;
            checker.error(
                item.span(),
                format!("each entry of `columns` in {} must be a table", table.title),
                Some("write { name = \"id\", type = \"STRING\" }".into()),
            );
            continue;
        };
        let sub = TableRef {
            kind: table.kind,
            title: format!("a column of {}", table.title),
            name: table.name.clone(),
            name_span: table.name_span.clone(),
            span: item.span(),
            table: inner,
        };
        match read_column(checker, &sub, &columns) {
            Some(column) => columns.push(column),
            None => valid = false,
        }
    }
    valid.then_some(Some((columns, value.span())))
}

fn read_column(checker: &mut Checker, sub: &TableRef, earlier: &[Column]) -> Option<Column> {
    checker.check_keys(sub, COLUMN_KEYS);
    let name = checker.read_string(sub, "name").required(
        checker,
        sub,
        "name",
        "add name = \"COLUMN\"".into(),
    );
    let kind = checker.read_string(sub, "type").required(
        checker,
        sub,
        "type",
        "add type = \"STRING\" (or INT64, FLOAT64, NUMERIC, BOOL, TIMESTAMP, DATE, JSON, ...)"
            .into(),
    );
    let mode = checker
        .read_string(sub, "mode")
        .or_default("NULLABLE".into());
    let description = checker.read_string(sub, "description").optional();
    let (name, kind, mode) = (name?, kind?, mode?);
    let mut ok = true;
    if let Some(span) = &name.span {
        if !is_column_name(&name.value) {
            ok = false;
            checker.error(
                span.clone(),
                format!("`{}` is not a valid column name", name.value),
                Some("column names are letters, digits and `_`, start with a letter or `_`, at most 300 characters".into()),
            );
        } else if earlier
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(&name.value))
        {
            ok = false;
            checker.error(
                span.clone(),
                format!("column `{}` is declared twice", name.value),
                Some("column names are case-insensitive and unique".into()),
            );
        }
    }
    let upper_kind = kind.value.to_ascii_uppercase();
    if !COLUMN_TYPES.contains(&upper_kind.as_str()) {
        ok = false;
        let help = match closest(&upper_kind, COLUMN_TYPES.iter().copied()) {
            Some(s) => format!("did you mean \"{s}\"?"),
            None => format!("types: {}", COLUMN_TYPES.join(", ")),
        };
        checker.error(
            kind.span.clone().unwrap_or_else(|| sub.span.clone()),
            format!("`{}` is not a BigQuery column type", kind.value),
            Some(help),
        );
    } else if matches!(upper_kind.as_str(), "RECORD" | "STRUCT") {
        ok = false;
        checker.error(
            kind.span.clone().unwrap_or_else(|| sub.span.clone()),
            "inline columns cannot be RECORDs".to_string(),
            Some(
                "declare nested columns in a JSON schema file: schema = \"schemas/NAME.json\""
                    .into(),
            ),
        );
    }
    let upper_mode = mode.value.to_ascii_uppercase();
    if !MODES.contains(&upper_mode.as_str()) {
        ok = false;
        checker.error(
            mode.span.clone().unwrap_or_else(|| sub.span.clone()),
            format!(
                "mode `{}` is not NULLABLE, REQUIRED or REPEATED",
                mode.value
            ),
            None,
        );
    }
    let description = description?;
    ok.then(|| Column {
        name: name.value,
        kind: upper_kind,
        mode: upper_mode,
        description: description.map(|f| f.value),
        fields: Vec::new(),
    })
}

/// Column names: `[A-Za-z_][A-Za-z0-9_]*`, at most 300.
fn is_column_name(name: &str) -> bool {
    (1..=300).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One field of a BigQuery JSON schema file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaField {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    fields: Vec<SchemaField>,
}

/// Reads `schema = "schemas/x.json"`, relative to the stack file and inside its directory
/// (see [`read_named_file`]).
fn read_schema_file(
    checker: &mut Checker,
    table: &TableRef,
    file: &Field<String>,
) -> Option<Vec<Column>> {
    let span = file.span.clone().unwrap_or_else(|| table.span.clone());
    let base = base_dir(checker.file);
    let fix = "write a BigQuery JSON schema (an array of {\"name\", \"type\", \"mode\"}) there";
    let (path, text) = match read_named_file(base, &file.value, "schema", fix) {
        Ok(read) => read,
        Err(Refused { message, help }) => {
            checker.error(span, message, Some(help));
            return None;
        }
    };
    let fields: Vec<SchemaField> = match serde_json::from_str(&text) {
        Ok(fields) => fields,
        Err(error) => {
            checker.error(
                span,
                format!("{} is not a BigQuery JSON schema: {error} (line {}, column {})", path.display(), error.line(), error.column()),
                Some("write an array of {\"name\": ..., \"type\": ..., \"mode\": ..., \"description\": ...}".into()),
            );
            return None;
        }
    };
    let mut problems = Vec::new();
    let columns = convert_fields(fields, "", &mut problems);
    if columns.is_empty() {
        problems.push("it has no columns".to_string());
    }
    for problem in &problems {
        checker.error(span.clone(), format!("{}: {problem}", path.display()), None);
    }
    problems.is_empty().then_some(columns)
}

fn convert_fields(
    fields: Vec<SchemaField>,
    prefix: &str,
    problems: &mut Vec<String>,
) -> Vec<Column> {
    let mut out: Vec<Column> = Vec::new();
    for f in fields {
        let path = format!("{prefix}{}", f.name);
        let kind = f.kind.to_ascii_uppercase();
        let mode = f
            .mode
            .unwrap_or_else(|| "NULLABLE".into())
            .to_ascii_uppercase();
        if !is_column_name(&f.name) {
            problems.push(format!("`{path}` is not a valid column name"));
        }
        if out.iter().any(|c| c.name.eq_ignore_ascii_case(&f.name)) {
            problems.push(format!("column `{path}` is declared twice"));
        }
        if !COLUMN_TYPES.contains(&kind.as_str()) {
            problems.push(format!(
                "`{}` (column `{path}`) is not a BigQuery column type",
                f.kind
            ));
        }
        if !MODES.contains(&mode.as_str()) {
            problems.push(format!(
                "mode `{mode}` of `{path}` is not NULLABLE, REQUIRED or REPEATED"
            ));
        }
        let nested = matches!(kind.as_str(), "RECORD" | "STRUCT");
        if nested && f.fields.is_empty() {
            problems.push(format!("RECORD column `{path}` has no fields"));
        }
        let fields = convert_fields(f.fields, &format!("{path}."), problems);
        out.push(Column {
            name: f.name,
            kind,
            mode,
            description: f.description,
            fields,
        });
    }
    out
}

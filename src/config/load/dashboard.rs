//! `[dashboard.NAME]`: a Monitoring dashboard's keys (`template` or `file`, `display_name` and
//! the `services`, `queues`, `jobs`, `tables`, `gateways` it shows), defaults and checks.

use super::*;
use crate::config::{DashboardConfig, DashboardFile};

pub(super) const DASHBOARD_KEYS: &[&str] = &[
    "display_name",
    "file",
    "gateways",
    "jobs",
    "queues",
    "services",
    "tables",
    "template",
];

/// The dashboard templates shipped in `templates/dashboards/`.
pub(crate) const DASHBOARD_TEMPLATES: &[&str] = &["stack_overview"];

pub(super) fn read_dashboard(
    checker: &mut Checker,
    table: &TableRef,
    stack_name: Option<&str>,
    declared: &Declared,
) -> Option<DashboardConfig> {
    checker.check_keys(table, DASHBOARD_KEYS);
    let name_ok = check_label_name(checker, table);
    let display_name = checker.read_string(table, "display_name").optional();
    let template = checker.read_string(table, "template").optional();
    let file = checker.read_string(table, "file").optional();
    let mut lists = Vec::new();
    for (key, kind) in [
        ("services", Kind::Service),
        ("queues", Kind::Queue),
        ("jobs", Kind::Job),
        ("tables", Kind::Table),
        ("gateways", Kind::Gateway),
    ] {
        lists.push(
            checker
                .read_reference_list_at(table, key, kind, declared)
                .or_default(Vec::new()),
        );
    }
    let (display_name, template, file) = (display_name?, template?, file?);
    let mut ok = name_ok;
    let file = match (file, &template) {
        (Some(file), Some(template)) => {
            checker.error(
                template.span.clone().unwrap_or_else(|| table.span.clone()),
                format!("{} has both `template` and `file`", table.title),
                Some(format!(
                    "keep one: `file = \"{}\"` is the whole dashboard, a template is filled with what it shows",
                    file.value
                )),
            );
            return None;
        }
        (Some(file), None) => Some(read_dashboard_file(checker, table, file)?),
        (None, _) => None,
    };
    let template = template.unwrap_or_else(|| Field {
        value: "stack_overview".into(),
        span: None,
    });
    if !DASHBOARD_TEMPLATES.contains(&template.value.as_str()) {
        ok = false;
        let help = match closest(&template.value, DASHBOARD_TEMPLATES.iter().copied()) {
            Some(s) => format!("did you mean \"{s}\"?"),
            None => format!("templates: {}", DASHBOARD_TEMPLATES.join(", ")),
        };
        checker.error(
            template.span.clone().unwrap_or_else(|| table.span.clone()),
            format!("no dashboard template `{}`", template.value),
            Some(help),
        );
    }
    let mut lists = lists.into_iter();
    let mut next = || lists.next().flatten().map(|f| f.value);
    let (services, queues, jobs, tables, gateways) = (next(), next(), next(), next(), next());
    let (services, queues, jobs, tables, gateways) =
        (services?, queues?, jobs?, tables?, gateways?);
    if file.is_none()
        && [&services, &queues, &jobs, &tables, &gateways]
            .iter()
            .all(|listed| listed.is_empty())
    {
        ok = false;
        checker.error(
            table.span.clone(),
            format!("{} shows nothing", table.title),
            Some("list what it shows, e.g. services = [\"service.NAME\"], queues = [\"queue.NAME\"], jobs = [\"job.NAME\"], tables = [\"table.NAME\"] or gateways = [\"gateway.NAME\"]".into()),
        );
    }
    ok.then_some(DashboardConfig {
        // Unset: the file's own name (a dashboard pasted from the console keeps its title),
        // else `<stack> NAME`.
        display_name: display_name.map(|f| f.value).unwrap_or_else(|| {
            file.as_ref()
                .and_then(|f| f.document.get("displayName"))
                .and_then(serde_json::Value::as_str)
                .filter(|name| !name.is_empty())
                .map(str::to_string)
                .unwrap_or_else(|| format!("{} {}", stack_name.unwrap_or_default(), table.name))
        }),
        template: template.value,
        file,
        services,
        queues,
        jobs,
        tables,
        gateways,
    })
}

/// The dashboard JSON `file` names: a Monitoring v1 `Dashboard` object with a layout.
fn read_dashboard_file(
    checker: &mut Checker,
    table: &TableRef,
    file: Field<String>,
) -> Option<DashboardFile> {
    let span = file.span.clone().unwrap_or_else(|| table.span.clone());
    let fix = "write a Monitoring dashboard's JSON there (the console's JSON editor shows one; `stackctl import dashboard.NAME` writes one)";
    let text = match read_named_file(base_dir(checker.file), &file.value, "dashboard", fix) {
        Ok((_, text)) => text,
        Err(Refused { message, help }) => {
            checker.error(span, message, Some(help));
            return None;
        }
    };
    let document: serde_json::Value = match serde_json::from_str(&text) {
        Ok(document) => document,
        Err(e) => {
            checker.error(
                span,
                format!(
                    "the dashboard file {} of {} is not JSON: {e}",
                    file.value, table.title
                ),
                Some("fix the JSON at that line and column".into()),
            );
            return None;
        }
    };
    const LAYOUTS: [&str; 4] = ["mosaicLayout", "gridLayout", "rowLayout", "columnLayout"];
    if !LAYOUTS.iter().any(|layout| document.get(layout).is_some()) {
        checker.error(
            span,
            format!(
                "the dashboard file {} of {} has no layout",
                file.value, table.title
            ),
            Some(format!(
                "a dashboard is a JSON object with one of {}",
                LAYOUTS.join(", ")
            )),
        );
        return None;
    }
    Some(DashboardFile {
        path: file.value,
        document,
    })
}

//! `[dashboard.NAME]`: a Monitoring dashboard's keys (`template`, `display_name` and the
//! `services`, `queues`, `jobs`, `tables`, `gateways` it shows), defaults and checks.

use super::*;
use crate::config::DashboardConfig;

pub(super) const DASHBOARD_KEYS: &[&str] = &[
    "display_name",
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
    let display_name = checker
        .read_string(table, "display_name")
        .or_default(format!("{} {}", stack_name.unwrap_or_default(), table.name));
    let template = checker
        .read_string(table, "template")
        .or_default("stack_overview".into());
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
    let (display_name, template) = (display_name?, template?);
    let mut ok = name_ok;
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
    if [&services, &queues, &jobs, &tables, &gateways]
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
        display_name: display_name.value,
        template: template.value,
        services,
        queues,
        jobs,
        tables,
        gateways,
    })
}

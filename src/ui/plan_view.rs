//! Renders a plan the way Terraform does: `+`/`~`/`-`, field-level `before -> after`, a summary line.
//! Pure: the same plan always renders the same text (snapshot-tested).

use std::fmt::Write;

use console::Style;

use crate::apply::ApplyReport;
use crate::apply::Outcome;
use crate::plan::{Action, FieldChange, Plan, ResourceChange};
use crate::ui::cost_view;

fn style(color: bool, action: Action) -> Style {
    let s = Style::new().force_styling(color);
    match action {
        Action::Create => s.green(),
        Action::Update | Action::Retire => s.yellow(),
        Action::Delete => s.red(),
        Action::Replace => s.magenta(),
    }
}

fn headline(change: &ResourceChange) -> String {
    if change.address.kind == crate::model::Kind::Grant {
        return match change.action {
            Action::Create | Action::Update | Action::Replace => {
                format!("{} will be granted", change.address)
            }
            Action::Retire | Action::Delete => format!("{} will be revoked", change.address),
        };
    }
    if change.address.kind == crate::model::Kind::Api && change.action == Action::Create {
        return format!("{} will be enabled", change.address);
    }
    match change.action {
        Action::Create => format!("{} will be created", change.address),
        Action::Update => format!("{} will be updated in-place", change.address),
        Action::Retire => format!("{} will be paused (retired, not deleted)", change.address),
        Action::Delete => format!("{} will be destroyed", change.address),
        Action::Replace => format!(
            "{} must be replaced (destroyed and created again)",
            change.address
        ),
    }
}

fn field_line(field: &FieldChange, width: usize, action: Action) -> (String, String) {
    let (symbol, text) = field_text(field, width, action);
    if field.forces_replacement {
        (symbol, format!("{text} # forces replacement"))
    } else {
        (symbol, text)
    }
}

fn field_text(field: &FieldChange, width: usize, action: Action) -> (String, String) {
    let name = format!("{:width$}", field.field);
    match (&field.before, &field.after) {
        (None, Some(after)) if action == Action::Create => {
            ("+".into(), format!("{name} = {after}"))
        }
        (None, Some(after)) => ("+".into(), format!("{name} = {after}")),
        (Some(before), None) => ("-".into(), format!("{name} = {before} -> null")),
        (Some(before), Some(after)) => ("~".into(), format!("{name} = {before} -> {after}")),
        (None, None) => ("~".into(), name),
    }
}

/// `project acme-shop (us-central1)`, naming the emulator or endpoint when not Google.
fn place(plan: &Plan) -> String {
    let t = &plan.target;
    match &t.endpoint {
        crate::model::Endpoint::Google => format!("project {} ({})", t.project, t.region),
        other => format!(
            "project {} ({}) on {}",
            t.project,
            t.region,
            other.describe()
        ),
    }
}

/// One change: its headline, symbol and name, field lines, notes and (unless free) cost line.
fn render_change(out: &mut String, change: &ResourceChange, color: bool) {
    let st = style(color, change.action);
    let _ = writeln!(out, "  # {}", headline(change));
    // A grant's name is `resource|role|member`; the address already says role and member.
    let name = change.name.split('|').next().unwrap_or_default();
    let _ = writeln!(
        out,
        "  {} {} ({name})",
        st.apply_to(change.action.symbol()),
        change.address,
    );
    let width = change
        .fields
        .iter()
        .map(|f| f.field.len())
        .max()
        .unwrap_or(0);
    for field in &change.fields {
        let (symbol, text) = field_line(field, width, change.action);
        let symbol_style = match symbol.as_str() {
            "+" => style(color, Action::Create),
            "-" => style(color, Action::Delete),
            _ => style(color, Action::Update),
        };
        let _ = writeln!(out, "      {} {}", symbol_style.apply_to(symbol), text);
    }
    for note in &change.notes {
        let _ = writeln!(out, "      # {note}");
    }
    if !change.cost.is_free() {
        let _ = writeln!(out, "      {}", cost_view::resource_cost_line(&change.cost));
    }
}

/// `Plan: 1 to create, 1 to update, 1 to retire, 1 to destroy.`
fn summary_line(plan: &Plan) -> String {
    let s = plan.summary();
    let retire = if s.retire > 0 {
        format!(", {} to retire", s.retire)
    } else {
        String::new()
    };
    let replace = if s.replace > 0 {
        format!(", {} to replace", s.replace)
    } else {
        String::new()
    };
    format!(
        "Plan: {} to create, {} to update{retire}{replace}, {} to destroy.",
        s.create, s.update, s.delete
    )
}

/// The full human plan.
pub fn render(plan: &Plan, color: bool) -> String {
    let mut out = String::new();
    let t = &plan.target;
    let place = place(plan);
    if plan.is_empty() {
        let _ = writeln!(out, "No changes. Stack `{}` matches {place}.", t.stack);
        for line in waiting_lines(plan) {
            let _ = writeln!(out, "{line}");
        }
        for line in cost_view::plan_total_lines(&plan.cost) {
            let _ = writeln!(out, "{line}");
        }
        return out;
    }
    let _ = writeln!(
        out,
        "Stack `{}` in {place}: stackctl will perform these actions:",
        t.stack
    );
    for change in &plan.changes {
        let _ = writeln!(out);
        render_change(&mut out, change, color);
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", summary_line(plan));
    for line in waiting_lines(plan) {
        let _ = writeln!(out, "{line}");
    }
    for line in cost_view::plan_total_lines(&plan.cost) {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// The declared resources the plan leaves out until the user acts, each with what to do.
fn waiting_lines(plan: &Plan) -> Vec<String> {
    if plan.waiting.is_empty() {
        return vec![];
    }
    let mut lines = vec![format!(
        "Waiting for you ({} not made until you act; apply makes nothing of {}):",
        plan.waiting.len(),
        if plan.waiting.len() == 1 {
            "it"
        } else {
            "them"
        }
    )];
    lines.extend(plan.waiting.iter().map(|w| {
        format!(
            "  … {}: {}",
            w.address,
            plan.target.endpoint.in_commands(&w.reason)
        )
    }));
    lines
}

/// Headings of the markdown plan's groups, in the order a reviewer reads them.
const MARKDOWN_GROUPS: [(Action, &str); 5] = [
    (Action::Delete, "Destroy"),
    (Action::Replace, "Replace (destroy, then create)"),
    (Action::Retire, "Pause (retired, not deleted)"),
    (Action::Update, "Update in place"),
    (Action::Create, "Create"),
];

/// The plan as a pull-request comment: a heading, the summary and cost, the changes grouped by
/// action (destructive first), then every field and note inside a collapsed `<details>`.
pub fn render_markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let t = &plan.target;
    let _ = writeln!(out, "### stackctl plan: `{}` in {}", t.stack, place(plan));
    let _ = writeln!(out);
    let summary = if plan.is_empty() {
        "No changes.".to_string()
    } else {
        summary_line(plan)
    };
    let _ = writeln!(
        out,
        "**{summary}** Monthly cost: {}{}.",
        cost_view::plan_cost_change(&plan.cost),
        cost_view::free_tier_pointer(&plan.cost.free_tier_not_included)
    );
    if !plan.waiting.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "#### Waiting for you ({})", plan.waiting.len());
        let _ = writeln!(out);
        for w in &plan.waiting {
            let _ = writeln!(
                out,
                "- `{}`: {}",
                w.address,
                plan.target.endpoint.in_commands(&w.reason)
            );
        }
    }
    for (action, heading) in MARKDOWN_GROUPS {
        let group: Vec<&ResourceChange> =
            plan.changes.iter().filter(|c| c.action == action).collect();
        if group.is_empty() {
            continue;
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "#### {heading} ({})", group.len());
        let _ = writeln!(out);
        for change in group {
            let cost = if change.cost.is_free() {
                String::new()
            } else {
                format!(
                    " ({}/mo)",
                    crate::cost::format_delta(change.cost.delta_monthly_usd)
                )
            };
            let refused = if change.data_loss().is_some() {
                " **drops data**"
            } else {
                ""
            };
            let _ = writeln!(out, "- `{}`{cost}{refused}", change.address);
        }
    }
    if !plan.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "<details><summary>Field details</summary>");
        let _ = writeln!(out);
        let _ = writeln!(out, "```text");
        for (i, change) in plan.changes.iter().enumerate() {
            if i > 0 {
                let _ = writeln!(out);
            }
            render_change(&mut out, change, false);
        }
        let _ = writeln!(out, "```");
        let _ = writeln!(out);
        let _ = writeln!(out, "</details>");
    }
    let _ = writeln!(out);
    for line in cost_view::plan_cost_footnotes(&plan.cost) {
        let _ = writeln!(out, "<sub>{line}</sub>");
    }
    out
}

/// The closing summary of an apply (`verb` "Apply" or "Destroy"), listing every failure.
pub fn render_report(report: &ApplyReport, verb: &str) -> String {
    let mut out = String::new();
    let failures: Vec<_> = report.failures().collect();
    let waiting: Vec<_> = report.waiting().collect();
    let waiting_count = match waiting.len() {
        0 => String::new(),
        1 => ", 1 waiting for a value only you can give".to_string(),
        n => format!(", {n} waiting for values only you can give"),
    };
    if failures.is_empty() {
        let _ = writeln!(
            out,
            "{verb} complete: {} changed{waiting_count}.",
            report.succeeded()
        );
    } else {
        let _ = writeln!(
            out,
            "{verb} finished with errors: {} changed, {} failed or skipped{waiting_count}.",
            report.succeeded(),
            failures.len()
        );
    }
    for (address, reason) in &waiting {
        let _ = writeln!(out, "  … {address}: {reason}");
    }
    if failures.is_empty() {
        return out;
    }
    for f in failures {
        match &f.outcome {
            Outcome::Failed { error } => {
                let _ = writeln!(out, "  ✗ {}: {}", f.address, error.replace('\n', "\n    "));
            }
            Outcome::Skipped { because } => {
                let _ = writeln!(out, "  - {}: skipped because {because} failed", f.address);
            }
            Outcome::Succeeded | Outcome::Waiting { .. } => {}
        }
    }
    let _ = writeln!(
        out,
        "Re-run `stackctl {}`: it converges from where this one stopped.",
        verb.to_lowercase()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QueueUsage;
    use crate::cost::{Estimate, PlanCost, PriceTable, ResourceCost, ServiceSizing, estimate};
    use crate::model::Endpoint;
    use crate::plan::{FieldValue, PlanTarget};

    fn change(
        addr: &str,
        action: Action,
        fields: Vec<FieldChange>,
        notes: Vec<&str>,
    ) -> ResourceChange {
        ResourceChange {
            step: crate::model::change::Step {
                address: addr.parse().unwrap(),
                name: format!(
                    "projects/acme-shop/locations/us-central1/{}",
                    addr.replace('.', "s/")
                ),
                action,
                fields,
                fingerprint: None,
            },
            desired: None,
            depends_on: vec![],
            notes: notes.into_iter().map(String::from).collect(),
            cost: ResourceCost::default(),
        }
    }

    fn prices() -> PriceTable {
        PriceTable::builtin("us-central1")
    }

    fn warm(min_instances: u32, cpu_idle: bool) -> Estimate {
        let sizing = ServiceSizing {
            cpu_millis: 1000,
            memory_bytes: 512 << 20,
            min_instances,
            cpu_idle,
        };
        estimate::service(&prices(), sizing, None, "service.worker")
    }

    fn with_cost(mut change: ResourceChange, before: Estimate, after: Estimate) -> ResourceChange {
        change.cost = ResourceCost::new(before, after);
        change
    }

    fn known(v: &str) -> Option<FieldValue> {
        Some(FieldValue::Known(v.into()))
    }

    /// One change of every action but replace, priced: a retired queue, a created queue, an
    /// updated and a deleted service.
    fn every_action_plan() -> Plan {
        let plan = Plan {
            format_version: 1,
            target: PlanTarget {
                stack: "shop".into(),
                project: "acme-shop".into(),
                region: "us-central1".into(),
                endpoint: Endpoint::Local {
                    url: "http://127.0.0.1:1".into(),
                },
            },
            changes: vec![
                with_cost(
                    change(
                        "queue.old",
                        Action::Retire,
                        vec![FieldChange::new(
                            "state",
                            Some("\"RUNNING\"".into()),
                            known("\"PAUSED\""),
                        )],
                        vec!["removed from stack.toml: paused, not deleted"],
                    ),
                    estimate::queue(&prices(), None, "queue.old"),
                    Estimate::zero(),
                ),
                with_cost(
                    change(
                        "queue.webhooks",
                        Action::Create,
                        vec![
                            FieldChange::new("state", None, known("\"RUNNING\"")),
                            FieldChange::new("target", None, Some(FieldValue::KnownAfterApply)),
                        ],
                        vec![],
                    ),
                    Estimate::zero(),
                    estimate::queue(
                        &prices(),
                        Some(&QueueUsage {
                            tasks_per_month: 2_000_000,
                            attempts_per_task: 1.0,
                        }),
                        "queue.webhooks",
                    ),
                ),
                with_cost(
                    change(
                        "service.worker",
                        Action::Update,
                        vec![
                            FieldChange::new("min_instances", Some("1".into()), known("2")),
                            FieldChange::new("max_instances", Some("10".into()), known("20")),
                            FieldChange::new("env.EXTRA", Some("\"1\"".into()), None),
                        ],
                        vec![],
                    ),
                    warm(1, true),
                    warm(2, true),
                ),
                with_cost(
                    change("service.legacy", Action::Delete, vec![], vec![]),
                    warm(1, false),
                    Estimate::zero(),
                ),
            ],
            unchanged: vec![],
            waiting: vec![],
            cost: PlanCost::total(&prices(), []),
        };
        let mut plan = plan;
        plan.cost = PlanCost::total(&prices(), plan.changes.iter().map(|c| &c.cost));
        plan
    }

    #[test]
    fn every_action_renders_like_terraform() {
        insta::assert_snapshot!(render(&every_action_plan(), false));
    }

    #[test]
    fn the_markdown_plan_groups_changes_by_action_and_folds_the_fields() {
        let mut plan = every_action_plan();
        let mut grant = change(
            "iam: roles/run.invoker on service.worker for service_account.tasks",
            Action::Create,
            vec![FieldChange::new(
                "member",
                None,
                known("\"serviceAccount:tasks@acme-shop.iam.gserviceaccount.com\""),
            )],
            vec![],
        );
        grant.name = "projects/acme-shop/locations/us-central1/services/worker|roles/run.invoker|serviceAccount:tasks@acme-shop.iam.gserviceaccount.com".into();
        plan.changes.push(grant);
        insta::assert_snapshot!(render_markdown(&plan));
        plan.changes.clear();
        assert_eq!(
            render_markdown(&plan),
            "### stackctl plan: `shop` in project acme-shop (us-central1) on the local emulator (--local)\n\n\
             **No changes.** Monthly cost: $58.97 -> $21.04 + unknown (-$37.93/mo); free tier not included, see `stackctl cost -v`.\n\n\
             <sub>Usage cost unknown: no [usage] for service.worker; add the assumptions to [usage] in stack.toml.</sub>\n\
             <sub>Prices: USD list prices of 2026-11-25, us-central1 tier 1, 30-day month.</sub>\n"
        );
    }

    #[test]
    fn grants_read_as_sentences_and_apis_as_enabled() {
        let grant = |action, role: &str, member: &str| ResourceChange {
            step: crate::model::change::Step {
                address: format!("iam: {role} on service.worker for service_account.{member}")
                    .parse()
                    .unwrap(),
                name: format!(
                    "projects/acme-shop/locations/us-central1/services/worker|{role}|serviceAccount:{member}@acme-shop.iam.gserviceaccount.com"
                ),
                action,
                fields: match action {
                    Action::Create => vec![FieldChange::new(
                        "member",
                        None,
                        known(&format!(
                            "\"serviceAccount:{member}@acme-shop.iam.gserviceaccount.com\""
                        )),
                    )],
                    _ => vec![],
                },
                fingerprint: None,
            },
            desired: None,
            depends_on: vec![],
            notes: vec![],
            cost: ResourceCost::default(),
        };
        let mut api = change(
            "api.run",
            Action::Create,
            vec![FieldChange::new("state", None, known("\"ENABLED\""))],
            vec![],
        );
        api.name = "projects/acme-shop/services/run.googleapis.com".into();
        let plan = Plan {
            format_version: 1,
            target: PlanTarget {
                stack: "shop".into(),
                project: "acme-shop".into(),
                region: "us-central1".into(),
                endpoint: Endpoint::Google,
            },
            changes: vec![
                api,
                grant(Action::Create, "roles/run.invoker", "tasks"),
                grant(Action::Delete, "roles/run.invoker", "old"),
            ],
            unchanged: vec![],
            waiting: vec![],
            cost: PlanCost::total(&prices(), []),
        };
        insta::assert_snapshot!(render(&plan, false));
    }

    #[test]
    fn an_empty_plan_says_no_changes() {
        let plan = Plan {
            format_version: 1,
            target: PlanTarget {
                stack: "shop".into(),
                project: "acme-shop".into(),
                region: "us-central1".into(),
                endpoint: Endpoint::Google,
            },
            changes: vec![],
            unchanged: vec!["service.worker".parse().unwrap()],
            waiting: vec![],
            cost: PlanCost::total(&prices(), [&ResourceCost::unchanged(warm(1, true))]),
        };
        assert_eq!(
            render(&plan, false),
            "No changes. Stack `shop` matches project acme-shop (us-central1).\n\
             Monthly cost: $9.72 -> $9.72 + unknown (+$0.00/mo); free tier not included, \
             see `stackctl cost -v`.\n\
             Usage cost unknown: no [usage] for service.worker; add the assumptions to [usage] in stack.toml.\n\
             Prices: USD list prices of 2026-11-25, us-central1 tier 1, 30-day month.\n"
        );
    }
}

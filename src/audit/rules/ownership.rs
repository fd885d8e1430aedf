//! The ownership rule (OWN1): services, queues, repositories, tables, alert policies and
//! Scheduler jobs that no stack manages, priced at what they cost a month.

use super::bigquery::{plain_tables, table_storage_cost};
use super::run::min_instance_cost;
use super::{RuleContext, alert_cost, finding, schedule_fee, short};
use crate::audit::{Finding, Rule, Severity};
use crate::resources::OWNER_LABEL;

/// The evidence on a queue or Scheduler job that no stack's ledger records.
const NO_LEDGER: &str =
    "in no stack's ownership ledger (stackctl/*/ledger.json in the state bucket)";

pub(super) fn unowned_services(context: &RuleContext) -> Vec<Finding> {
    context
        .inventory
        .services
        .iter()
        .filter(|s| !s.labels.contains_key(OWNER_LABEL))
        .map(|s| {
            unowned(
                &s.name,
                "service",
                no_label("label"),
                min_instance_cost(context, s),
            )
        })
        .collect()
}

pub(super) fn unowned_queues(context: &RuleContext) -> Vec<Finding> {
    context
        .inventory
        .queues
        .iter()
        .filter(|q| !context.inventory.ledgered.contains_key(&q.name))
        .map(|q| unowned(&q.name, "queue", NO_LEDGER.into(), 0.0))
        .collect()
}

/// One OWN1 finding: `resource` is managed by no stack; `waste` is what it costs a month.
fn unowned(resource: &str, kind: &str, evidence: String, waste: f64) -> Finding {
    let id = short(resource);
    finding(
        Rule::Unowned,
        resource,
        evidence,
        Some(waste),
        Severity::of_waste(waste),
        format!("declare [{kind}.{id}] and run `stackctl adopt {kind}.{id}`, or delete it"),
    )
}

fn no_label(label: &str) -> String {
    format!("no `{OWNER_LABEL}` {label}: no stack manages it")
}

/// Repositories, tables and alert policies without the ownership label, and Scheduler jobs in
/// no ledger, priced at what they cost a month (a table: its storage).
pub(super) fn unowned_data_and_observability(context: &RuleContext) -> Vec<Finding> {
    let inventory = context.inventory;
    let repositories = inventory
        .repositories
        .iter()
        .filter(|r| !r.labels.contains_key(OWNER_LABEL))
        .map(|r| unowned(&r.name, "repository", no_label("label"), 0.0));
    let tables = plain_tables(context)
        .filter(|t| !t.labels.contains_key(OWNER_LABEL))
        .map(|t| {
            let waste = table_storage_cost(context, t, t.num_bytes.unwrap_or(0));
            unowned(&t.name, "table", no_label("label"), waste)
        });
    let alerts = inventory
        .alerts
        .iter()
        .filter(|a| !a.user_labels.contains_key(OWNER_LABEL))
        .map(|a| {
            let waste = alert_cost(context, a);
            let evidence = format!("`{}`: {}", a.display_name, no_label("user label"));
            unowned(&a.name, "alert", evidence, waste)
        });
    let schedules = inventory
        .schedules
        .iter()
        .filter(|s| !inventory.ledgered.contains_key(&s.name))
        .map(|s| unowned(&s.name, "schedule", NO_LEDGER.into(), schedule_fee(context)));
    repositories
        .chain(tables)
        .chain(alerts)
        .chain(schedules)
        .collect()
}

//! Cloud Run rules (CR1, CR2, CR3, CR5, CR9): services and revisions that pay for idle
//! instances, bill CPU on bursty traffic or may scale without a cap.

use std::collections::BTreeMap;

use super::{RuleContext, finding, owned_fix, owner, short, younger_than_window};
use crate::audit::{Finding, Rule, Severity};
use crate::config::units::{parse_cpu, parse_memory};
use crate::cost::{ServiceSizing, estimate, round_usd};
use crate::provider::run::ServiceRecord;

/// Traffic in fewer than this share of hours makes a service "mostly idle" / "bursty".
const BUSY_HOURS_SHARE: f64 = 0.5;

/// The sizing of a container from its `resources.limits`, Cloud Run's defaults when unset.
fn sizing(limits: &BTreeMap<String, String>, min_instances: i32, cpu_idle: bool) -> ServiceSizing {
    ServiceSizing {
        cpu_millis: limits
            .get("cpu")
            .and_then(|c| parse_cpu(c).ok())
            .unwrap_or(1000),
        memory_bytes: limits
            .get("memory")
            .and_then(|m| parse_memory(m).ok())
            .unwrap_or(512 << 20),
        min_instances: u32::try_from(min_instances).unwrap_or(0),
        cpu_idle,
    }
}

/// What `min_instances` instances of a container with `limits` cost per month idle (their
/// fixed cost, no usage), request-based billing when `cpu_idle`.
fn fixed_cost(
    context: &RuleContext,
    limits: &BTreeMap<String, String>,
    min_instances: i32,
    cpu_idle: bool,
    name: &str,
) -> f64 {
    let s = sizing(limits, min_instances, cpu_idle);
    estimate::service(context.prices, s, None, name).monthly_usd
}

/// What a service's min instances cost per month (their fixed cost, no usage).
pub(super) fn min_instance_cost(context: &RuleContext, service: &ServiceRecord) -> f64 {
    fixed_cost(
        context,
        &service.limits,
        service.min_instances,
        service.cpu_idle,
        &service.name,
    )
}

/// The stack.toml change for an owned service, or `fallback` for one no stack owns.
fn service_fix(service: &ServiceRecord, change: &str, fallback: String) -> String {
    owned_fix(
        &service.labels,
        "service",
        short(&service.name),
        change,
        fallback,
    )
}

fn hours_in(days: u32) -> u32 {
    days * 24
}

pub(super) fn service_without_requests(context: &RuleContext) -> Vec<Finding> {
    let days = context.window.idle_days;
    context
        .inventory
        .services
        .iter()
        .filter(|s| !younger_than_window(context, s.created))
        .filter(|s| {
            context
                .signals
                .requests
                .get(short(&s.name))
                .copied()
                .unwrap_or(0.0)
                <= 0.0
        })
        .map(|service| {
            let waste = min_instance_cost(context, service);
            let evidence = format!(
                "0 requests in {days} days (run.googleapis.com/request_count); min_instances = {}",
                service.min_instances
            );
            let fallback = format!(
                "delete it: gcloud run services delete {} --region {}",
                short(&service.name),
                context.inventory.region
            );
            finding(
                Rule::ServiceWithoutRequests,
                &service.name,
                evidence,
                Some(waste),
                Severity::of_waste(waste),
                match owner(&service.labels, "service", short(&service.name)) {
                    Some((stack, address)) if service.min_instances > 0 => format!(
                        "stack.toml of stack `{stack}`: remove {address} (or set min_instances = 0 in it), then `stackctl apply`"
                    ),
                    Some((stack, address)) => format!(
                        "stack.toml of stack `{stack}`: remove {address} if nothing calls it, then `stackctl apply`"
                    ),
                    None => fallback,
                },
            )
        })
        .collect()
}

/// Hours with traffic over the traffic window, for a service that had some requests.
fn busy_share(context: &RuleContext, service: &ServiceRecord) -> Option<(u32, f64)> {
    let id = short(&service.name);
    if context.signals.requests.get(id).copied().unwrap_or(0.0) <= 0.0 {
        return None; // CR1's case.
    }
    let busy = context
        .signals
        .hours_with_traffic
        .get(id)
        .copied()
        .unwrap_or(0);
    let total = hours_in(context.window.traffic_days).max(1);
    Some((busy, f64::from(busy) / f64::from(total)))
}

pub(super) fn min_instances_mostly_idle(context: &RuleContext) -> Vec<Finding> {
    let days = context.window.traffic_days;
    context
        .inventory
        .services
        .iter()
        .filter(|s| s.cpu_idle && s.min_instances > 0)
        .filter_map(|service| {
            let (busy, share) = busy_share(context, service)?;
            if share >= BUSY_HOURS_SHARE {
                return None;
            }
            let waste = min_instance_cost(context, service) * (1.0 - share);
            Some(finding(
                Rule::MinInstancesMostlyIdle,
                &service.name,
                format!(
                    "min_instances = {} but traffic in {busy} of {} hours over {days} days",
                    service.min_instances,
                    hours_in(days)
                ),
                Some(round_usd(waste)),
                Severity::of_waste(waste),
                service_fix(
                    service,
                    "set min_instances = 0",
                    format!(
                        "gcloud run services update {} --min-instances 0",
                        short(&service.name)
                    ),
                ),
            ))
        })
        .collect()
}

pub(super) fn instance_billing_on_bursty_traffic(context: &RuleContext) -> Vec<Finding> {
    let days = context.window.traffic_days;
    context
        .inventory
        .services
        .iter()
        .filter(|s| !s.cpu_idle)
        .filter_map(|service| {
            let (busy, share) = busy_share(context, service)?;
            if share >= BUSY_HOURS_SHARE {
                return None;
            }
            // What the same min instances cost idle under request-based billing, instead.
            let waste = (service.min_instances > 0).then(|| {
                let instance = min_instance_cost(context, service);
                let request = fixed_cost(
                    context,
                    &service.limits,
                    service.min_instances,
                    true,
                    &service.name,
                );
                round_usd((instance - request).max(0.0))
            });
            let severity = waste.map_or(Severity::Medium, Severity::of_waste);
            let mut found = finding(
                Rule::InstanceBillingOnBurstyTraffic,
                &service.name,
                format!(
                    "cpu_idle = false (instance-based billing) with traffic in {busy} of {} hours over {days} days; min_instances = {}",
                    hours_in(days),
                    service.min_instances
                ),
                waste,
                severity,
                service_fix(
                    service,
                    "set cpu_idle = true",
                    format!("gcloud run services update {} --cpu-throttling", short(&service.name)),
                ),
            );
            found.recommender = Some(
                "google.run.service.CostRecommender (reports the opposite case: when instance-based billing is cheaper)".into(),
            );
            Some(found)
        })
        .collect()
}

pub(super) fn tagged_revision_keeps_min_instances(context: &RuleContext) -> Vec<Finding> {
    let mut out = Vec::new();
    for service in &context.inventory.services {
        let revisions = context
            .inventory
            .revisions
            .get(&service.name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for traffic in &service.traffic {
            let Some(tag) = &traffic.tag else { continue };
            if traffic.percent > 0 {
                continue;
            }
            let Some(revision) = revisions
                .iter()
                .find(|r| short(&r.name) == traffic.revision && r.min_instances > 0)
            else {
                continue;
            };
            let waste = fixed_cost(
                context,
                &revision.limits,
                revision.min_instances,
                revision.cpu_idle,
                &revision.name,
            );
            out.push(finding(
                Rule::TaggedRevisionKeepsMinInstances,
                &revision.name,
                format!(
                    "tag `{tag}` routes 0% of traffic to it, and it keeps min_instances = {}",
                    revision.min_instances
                ),
                Some(waste),
                Severity::of_waste(waste),
                format!(
                    "remove the tag: gcloud run services update-traffic {} --remove-tags {tag} (stackctl sends all traffic to the latest revision)",
                    short(&service.name)
                ),
            ));
        }
    }
    out
}

pub(super) fn service_without_max_instances(context: &RuleContext) -> Vec<Finding> {
    context
        .inventory
        .services
        .iter()
        .filter(|s| s.service_max_instances <= 0)
        .map(|service| {
            finding(
                Rule::ServiceWithoutMaxInstances,
                &service.name,
                format!(
                    "scaling.maxInstanceCount is unset: it may scale to Cloud Run's default limit (revision cap: {})",
                    if service.max_instances > 0 {
                        service.max_instances.to_string()
                    } else {
                        "none".into()
                    }
                ),
                None,
                Severity::High,
                service_fix(
                    service,
                    "set max_instances = N",
                    format!(
                        "declare it in a stack with max_instances (stackctl adopt), or: gcloud run services update {} --max-instances N",
                        short(&service.name)
                    ),
                ),
            )
        })
        .collect()
}

//! Cloud Run rules (CR1, CR2, CR3, CR5, CR9, CR10): services and revisions that pay for idle
//! instances, bill CPU on bursty traffic or may scale without a cap; jobs whose executions keep
//! failing and burn their retries' task-seconds.

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

/// How many of a job's newest finished executions must all have failed (at least two).
const FAILING_EXECUTIONS: usize = 3;

/// CR10: the newest finished executions of a job in the idle window all failed, so each run
/// burns its tasks' attempts (up to the task timeout each, times the retries) for nothing; priced
/// as the task-seconds of the failed executions in the window, per month.
pub(super) fn failing_job(context: &RuleContext) -> Vec<Finding> {
    let since = context.signals.idle_since;
    let days = f64::from(context.window.idle_days.max(1));
    context
        .inventory
        .job_executions
        .iter()
        .filter_map(|(job, executions)| {
            let mut finished: Vec<_> = executions
                .iter()
                .filter(|e| e.completion.is_some_and(|c| c >= since))
                .collect();
            finished.sort_by_key(|e| std::cmp::Reverse(e.completion));
            let newest = &finished[..finished.len().min(FAILING_EXECUTIONS)];
            if newest.len() < 2 || !newest.iter().all(|e| e.failed()) {
                return None;
            }
            let failed: Vec<_> = finished.iter().filter(|e| e.failed()).collect();
            let task_seconds: Vec<f64> = failed
                .iter()
                .filter_map(|e| {
                    let seconds = (e.completion? - e.start?).num_milliseconds() as f64 / 1000.0;
                    Some(seconds.max(0.0) * f64::from(e.task_count.max(1)))
                })
                .collect();
            let burned: f64 = task_seconds.iter().sum();
            let per_month = failed.len() as f64 * 30.0 / days;
            let sizing = crate::cost::estimate::JobSizing {
                cpu_millis: job.limits.get("cpu").and_then(|c| parse_cpu(c).ok()).unwrap_or(1000),
                memory_bytes: job
                    .limits
                    .get("memory")
                    .and_then(|m| parse_memory(m).ok())
                    .unwrap_or(512 << 20),
                task_count: 1,
            };
            let waste = (!task_seconds.is_empty()).then(|| {
                let runs = crate::cost::estimate::JobRuns {
                    executions_per_month: Some(per_month),
                    avg_task_seconds: Some(burned / task_seconds.len() as f64),
                };
                round_usd(estimate::job(context.prices, sizing, runs, &job.name).monthly_usd)
            });
            let id = short(&job.name);
            Some(finding(
                Rule::FailingJob,
                &job.name,
                format!(
                    "the newest {} finished executions failed ({} of {} in {} days, {:.0} task-seconds burned)",
                    newest.len(),
                    failed.len(),
                    finished.len(),
                    context.window.idle_days,
                    burned
                ),
                waste,
                Severity::High,
                owned_fix(
                    &job.labels,
                    "job",
                    id,
                    "fix the job (its logs: stackctl logs job.NAME), or pause its schedule; an alert on failed executions (template cloud_run_job_failed_executions) catches the next one",
                    format!("read why: gcloud run jobs executions list --job {id}; gcloud logging read 'resource.type=\"cloud_run_job\" resource.labels.job_name=\"{id}\" severity>=ERROR'"),
                ),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{Duration, Utc};

    use super::super::tests::{inventory, run_audit};
    use crate::audit::Signals;
    use crate::provider::jobs::{ExecutionRecord, JobRecord};

    fn job(id: &str) -> JobRecord {
        JobRecord {
            name: format!("projects/p/locations/us-central1/jobs/{id}"),
            labels: BTreeMap::new(),
            etag: String::new(),
            image: "img".into(),
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            limits: BTreeMap::from([
                ("cpu".into(), "1".into()),
                ("memory".into(), "512Mi".into()),
            ]),
            task_timeout: None,
            max_retries: None,
            parallelism: 0,
            task_count: 1,
            service_account: String::new(),
        }
    }

    /// `hours` hourly executions ending now, each `seconds` long, failed or not.
    fn hourly(
        job: &JobRecord,
        hours: i64,
        seconds: i64,
        failed: impl Fn(i64) -> bool,
    ) -> Vec<ExecutionRecord> {
        let now = Utc::now();
        (0..hours)
            .map(|h| {
                let completion = now - Duration::hours(h);
                ExecutionRecord {
                    name: format!("{}/executions/e{h}", job.name),
                    start: Some(completion - Duration::seconds(seconds)),
                    completion: Some(completion),
                    task_count: 1,
                    succeeded_count: i32::from(!failed(h)),
                    failed_count: i32::from(failed(h)),
                    retried_count: 1,
                }
            })
            .collect()
    }

    #[test]
    fn an_hourly_job_timing_out_on_every_attempt_is_priced_by_the_task_seconds_it_burns() {
        // The case: a job that never exits, 900 s timeout, 3 retries, hourly: 4 × 900 s
        // of a 1 vCPU / 512 MiB task 720 times a month.
        let broken = job("ingest-orders");
        let healthy = job("nightly");
        let mut inv = inventory(vec![], vec![]);
        inv.job_executions = vec![
            (broken.clone(), hourly(&broken, 720, 3600, |_| true)),
            // Failed twice long ago, fine since: not reported.
            (healthy.clone(), hourly(&healthy, 30, 60, |h| h > 2)),
        ];
        let signals = Signals {
            idle_since: Utc::now() - Duration::days(30),
            ..Signals::default()
        };
        let findings = run_audit(&inv, &signals);
        let cr10: Vec<_> = findings.iter().filter(|f| f.1 == "CR10").collect();
        assert_eq!(cr10.len(), 1, "{findings:?}");
        assert_eq!(cr10[0].0, "ingest-orders");
        let waste = cr10[0].2.expect("priced");
        // 2,592,000 task-seconds: $0.000018/vCPU-s and $0.000002/GiB-s × 0.5 GiB ≈ $49.
        assert!((45.0..55.0).contains(&waste), "{waste}");
    }
}

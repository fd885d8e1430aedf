//! The Cloud Scheduler rule (SC1): paused jobs and jobs whose Cloud Run target is gone.

use super::{RuleContext, finding, schedule_fee, short};
use crate::audit::{Finding, Rule, Severity};

/// Why a Scheduler job's Cloud Run target is gone: a `…/jobs/J:run` URL of a job that does not
/// exist, or a `*.run.app` URL no service answers.
fn missing_target(context: &RuleContext, uri: &str) -> Option<String> {
    if let Some(job) = crate::resources::schedule::job_of_run_uri(uri) {
        return (!context.inventory.jobs.contains(job))
            .then(|| format!("its target Cloud Run job {job} does not exist"));
    }
    let host = uri.strip_prefix("https://")?.split('/').next()?;
    if !host.ends_with(".run.app") {
        return None;
    }
    let served = context.inventory.services.iter().any(|s| {
        s.uri
            .strip_prefix("https://")
            .is_some_and(|h| h.trim_end_matches('/') == host)
    });
    (!served).then(|| format!("no Cloud Run service answers its target {host}"))
}

pub(super) fn paused_or_orphaned_schedule(context: &RuleContext) -> Vec<Finding> {
    let fee = schedule_fee(context);
    context
        .inventory
        .schedules
        .iter()
        .filter_map(|schedule| {
            let orphaned = schedule
                .uri
                .as_deref()
                .and_then(|uri| missing_target(context, uri));
            let paused = schedule.state == "PAUSED";
            let evidence = match (paused, orphaned) {
                (true, Some(why)) => format!("PAUSED, and {why}"),
                (true, None) => format!("PAUSED: `{}` never fires", schedule.schedule),
                (false, Some(why)) => format!("{}: {why}; every run fails", schedule.state),
                (false, None) => return None,
            };
            let id = short(&schedule.name);
            Some(finding(
                Rule::PausedOrOrphanedSchedule,
                &schedule.name,
                format!("{evidence} (a Scheduler job costs ${fee:.2}/month paused or not)"),
                Some(fee),
                Severity::of_waste(fee),
                format!(
                    "remove [schedule.{id}] from its stack.toml, or delete it: gcloud scheduler jobs delete {id} --location {}",
                    context.inventory.region
                ),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::super::tests::{P, inventory, report_of, run_audit, service};
    use crate::audit::{Severity, Signals};

    #[test]
    fn paused_or_orphaned_schedules_cost_their_monthly_fee() {
        use crate::provider::scheduler::ScheduleRecord;
        let schedule = |id: &str, state: &str, uri: &str| ScheduleRecord {
            name: format!("{P}/jobs/{id}"),
            schedule: "0 * * * *".into(),
            time_zone: "UTC".into(),
            state: state.into(),
            uri: Some(uri.into()),
            http_method: "POST".into(),
            oauth_service_account: String::new(),
            oauth_scope: String::new(),
        };
        let run = |job: &str| format!("https://run.googleapis.com/v2/{P}/jobs/{job}:run");
        let mut api = service("api", 0, true, true);
        api.uri = "https://api-abc-uc.a.run.app".into();
        let mut inv = inventory(vec![api], vec![]);
        inv.jobs = BTreeSet::from([format!("{P}/jobs/nightly")]);
        inv.schedules = vec![
            schedule("ok", "ENABLED", &run("nightly")),
            schedule("ping", "ENABLED", "https://api-abc-uc.a.run.app/ping"),
            schedule("held", "PAUSED", &run("nightly")),
            schedule("gone", "ENABLED", &run("deleted")),
            schedule("dead-url", "ENABLED", "https://old-abc-uc.a.run.app/x"),
            schedule("elsewhere", "ENABLED", "https://example.com/hook"),
        ];
        // Every schedule but `elsewhere` is in a ledger: that one is also owned by no stack.
        let ledgered = inv
            .schedules
            .iter()
            .filter(|s| !s.name.ends_with("/elsewhere"));
        let ledgered: Vec<String> = ledgered.map(|s| s.name.clone()).collect();
        inv.ledgered
            .extend(ledgered.into_iter().map(|name| (name, None)));
        let signals = Signals {
            requests: BTreeMap::from([("api".into(), 1000.0)]),
            hours_with_traffic: BTreeMap::from([("api".into(), 300)]),
            ..Signals::default()
        };
        // $0.10 per job-month each.
        assert_eq!(
            run_audit(&inv, &signals),
            vec![
                ("dead-url".into(), "SC1", Some(0.1), Severity::Low),
                ("elsewhere".into(), "OWN1", Some(0.1), Severity::Low),
                ("gone".into(), "SC1", Some(0.1), Severity::Low),
                ("held".into(), "SC1", Some(0.1), Severity::Low),
            ]
        );
        let report = report_of(&inv, &signals);
        // Paused and unowned-broken jobs are counted once each in the total: 4 x $0.10.
        assert_eq!(report.total_monthly_waste_usd, 0.4);
        assert_eq!(
            report.findings[2].evidence,
            format!(
                "ENABLED: its target Cloud Run job {P}/jobs/deleted does not exist; every run fails (a Scheduler job costs $0.10/month paused or not)"
            )
        );
    }
}

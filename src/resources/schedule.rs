//! `schedule`: Cloud Scheduler v1 jobs that run a Cloud Run job — an HTTP target POSTing the
//! job's `:run` URL with an OAuth token of the schedule's service account. Owned through the
//! ledger (Scheduler jobs have no labels).

use serde::{Deserialize, Serialize};

use super::{
    Adoption, ApplyCtx, Converge, Known, Reconcile, StepError, address_from_name, grant, job,
    ledger_address, push_if_differs, quoted, service_account,
};
use crate::config::{ScheduleConfig, Stack};
use crate::model::change::{Action, FieldChange, FieldValue, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::run::OperationObserver;
use crate::provider::scheduler::{
    CLOUD_PLATFORM_SCOPE, HTTP_TARGET, SCHEDULE, ScheduleRecord, ScheduleWrite, TIME_ZONE,
};
use crate::state::{Ledger, LedgerStatus};

/// The declared state of one schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleSpec {
    /// `projects/P/locations/L/jobs/ID` (a Scheduler job)
    pub name: String,
    pub cron: String,
    pub time_zone: String,
    /// `https://run.googleapis.com/v2/projects/P/locations/L/jobs/J:run`
    pub uri: String,
    /// The OAuth identity's email.
    pub service_account: String,
    pub job: ResourceAddr,
    pub account: ResourceAddr,
}

pub fn full_name(stack: &Stack, id: &str) -> String {
    format!(
        "projects/{}/locations/{}/jobs/{}",
        stack.settings.project, stack.settings.region, id
    )
}

/// The Cloud Run Admin API URL that starts an execution of `job_name`.
pub fn run_uri(job_name: &str) -> String {
    format!("{RUN_URI_PREFIX}{job_name}:run")
}

const RUN_URI_PREFIX: &str = "https://run.googleapis.com/v2/";

/// The Cloud Run job (full name) a [`run_uri`] starts; `None` for any other URL.
pub fn job_of_run_uri(uri: &str) -> Option<&str> {
    uri.strip_prefix(RUN_URI_PREFIX)?.strip_suffix(":run")
}

pub fn spec(stack: &Stack, cfg: &ScheduleConfig) -> ScheduleSpec {
    let job_id = stack
        .jobs
        .get(&cfg.job.name)
        .map_or(cfg.job.name.as_str(), |j| j.id.as_str());
    ScheduleSpec {
        name: full_name(stack, &cfg.id),
        cron: cfg.cron.clone(),
        time_zone: cfg.time_zone.clone(),
        uri: run_uri(&job::full_name(stack, job_id)),
        service_account: service_account::email_of(stack, &cfg.service_account).unwrap_or_default(),
        job: cfg.job.clone(),
        account: cfg.service_account.clone(),
    }
}

pub fn create_fields(spec: &ScheduleSpec) -> Vec<FieldChange> {
    let known = |f: &str, v: String| FieldChange::new(f, None, Some(FieldValue::Known(v)));
    vec![
        known("cron", quoted(&spec.cron)),
        known("time_zone", quoted(&spec.time_zone)),
        known("target", quoted(&format!("POST {}", spec.uri))),
        known("service_account", quoted(&spec.service_account)),
    ]
}

pub fn diff(spec: &ScheduleSpec, live: &ScheduleRecord) -> Vec<FieldChange> {
    let mut out = Vec::new();
    push_if_differs(&mut out, "cron", &spec.cron, &live.schedule, |s| quoted(s));
    push_if_differs(
        &mut out,
        "time_zone",
        &spec.time_zone,
        &live.time_zone,
        |s| quoted(s),
    );
    let desired_target = format!("POST {}", spec.uri);
    let live_target = live
        .uri
        .as_ref()
        .map(|u| format!("{} {u}", live.http_method))
        .unwrap_or_else(|| "none".into());
    push_if_differs(&mut out, "target", &desired_target, &live_target, |s| {
        quoted(s)
    });
    let live_identity = if live.oauth_scope == CLOUD_PLATFORM_SCOPE || live.oauth_scope.is_empty() {
        live.oauth_service_account.clone()
    } else {
        format!(
            "{} (scope {})",
            live.oauth_service_account, live.oauth_scope
        )
    };
    push_if_differs(
        &mut out,
        "service_account",
        &spec.service_account,
        &live_identity,
        |s| quoted(s),
    );
    if live.state == "PAUSED" {
        out.push(FieldChange::new(
            "state",
            Some(quoted("PAUSED")),
            Some(FieldValue::Known(quoted("ENABLED"))),
        ));
    }
    out
}

/// The API field-mask path for a planned field (`state` is a verb: resume).
fn mask_path(field: &str) -> Option<&'static str> {
    Some(match field {
        "cron" => SCHEDULE,
        "time_zone" => TIME_ZONE,
        "target" | "service_account" => HTTP_TARGET,
        _ => return None,
    })
}

fn to_write(spec: &ScheduleSpec) -> ScheduleWrite {
    ScheduleWrite {
        name: spec.name.clone(),
        schedule: spec.cron.clone(),
        time_zone: spec.time_zone.clone(),
        uri: spec.uri.clone(),
        oauth_service_account: spec.service_account.clone(),
    }
}

/// `schedule`: Cloud Scheduler jobs, owned through the ledger.
pub struct ScheduleKind;

impl Reconcile for ScheduleKind {
    const KIND: Kind = Kind::Schedule;
    const TIER: u8 = 4;
    const APIS: &'static [&'static str] = &["cloudscheduler"];
    const ADOPTION: Adoption = Adoption::Ledger;
    fn estimate(
        stack: &Stack,
        prices: &crate::cost::PriceTable,
        address: &ResourceAddr,
    ) -> Option<crate::cost::Estimate> {
        stack
            .schedules
            .get(&address.name)
            .map(|_| crate::cost::estimate::schedule(prices))
    }
    type Spec = ScheduleSpec;
    type Live = ScheduleRecord;

    fn declared(stack: &Stack) -> Vec<(ResourceAddr, ScheduleSpec)> {
        super::each_declared(Self::KIND, &stack.schedules, |_, cfg| spec(stack, cfg))
    }
    fn spec_name(spec: &ScheduleSpec) -> &str {
        &spec.name
    }
    fn live_name(live: &ScheduleRecord) -> &str {
        &live.name
    }
    fn address_of(live: &ScheduleRecord, ledger: &Ledger) -> ResourceAddr {
        ledger_address(ledger, &live.name, || {
            address_from_name(Kind::Schedule, &live.name)
        })
    }
    /// The job, the identity, and its right to run the job (so the first tick can succeed).
    fn depends_on(spec: &ScheduleSpec) -> Vec<ResourceAddr> {
        vec![
            spec.job.clone(),
            spec.account.clone(),
            grant::address(grant::RUN_INVOKER, Some(&spec.job), &spec.account),
        ]
    }
    fn create_fields(spec: &ScheduleSpec, _: &Known) -> Vec<FieldChange> {
        create_fields(spec)
    }
    fn diff(spec: &ScheduleSpec, live: &ScheduleRecord, _: &Known) -> Vec<FieldChange> {
        diff(spec, live)
    }
    fn notes(_: &ResourceAddr, _: &ScheduleSpec, live: Option<&ScheduleRecord>) -> Vec<String> {
        if live.is_some_and(|live| live.state == "PAUSED") {
            vec!["resumes a schedule that was paused by hand".into()]
        } else {
            vec![]
        }
    }
}

impl Converge for ScheduleKind {
    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&ScheduleSpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let cloud = &ctx.cloud;
        match (change.action, spec) {
            (Action::Replace, _) => {
                return Err(StepError::damaged_replace(&change.address));
            }
            (Action::Create, Some(spec)) => {
                // Pending first: a crash after the create leaves a claim plan can check.
                ctx.record_in_ledger(change, LedgerStatus::Pending).await?;
                observer.phase("creating schedule");
                let created = cloud.create_schedule(&to_write(spec), observer).await?;
                ctx.settle_ledgered(change, created, async || {
                    let known = ctx.known().await;
                    let live = cloud.get_schedule(&spec.name, observer).await?;
                    Ok(live.is_some_and(|l| ScheduleKind::diff(spec, &l, &known).is_empty()))
                })
                .await?;
            }
            (Action::Update, Some(spec)) => {
                let mut mask: Vec<&str> = change
                    .fields
                    .iter()
                    .filter_map(|f| mask_path(&f.field))
                    .collect();
                mask.sort();
                mask.dedup();
                if !mask.is_empty() {
                    observer.phase("updating schedule");
                    cloud
                        .update_schedule(&to_write(spec), &mask, observer)
                        .await?;
                }
                if change.fields.iter().any(|f| f.field == "state") {
                    observer.phase("resuming schedule");
                    cloud.resume_schedule(&change.name, observer).await?;
                }
                // A claimed interrupted create becomes active (a no-op write otherwise).
                ctx.record_in_ledger(change, LedgerStatus::Active).await?;
            }
            (Action::Delete | Action::Retire, _) => {
                observer.phase("deleting schedule");
                cloud.delete_schedule(&change.name, observer).await?;
                ctx.forget_in_ledger(change).await?;
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

    fn spec() -> ScheduleSpec {
        ScheduleSpec {
            name: "projects/p/locations/r/jobs/hourly".into(),
            cron: "0 * * * *".into(),
            time_zone: "Etc/UTC".into(),
            uri: run_uri("projects/p/locations/r/jobs/ingest"),
            service_account: "s@p.iam.gserviceaccount.com".into(),
            job: "job.ingest".parse().unwrap(),
            account: "service_account.s".parse().unwrap(),
        }
    }

    fn live() -> ScheduleRecord {
        ScheduleRecord {
            name: "projects/p/locations/r/jobs/hourly".into(),
            schedule: "0 * * * *".into(),
            time_zone: "Etc/UTC".into(),
            state: "ENABLED".into(),
            uri: Some(
                "https://run.googleapis.com/v2/projects/p/locations/r/jobs/ingest:run".into(),
            ),
            http_method: "POST".into(),
            oauth_service_account: "s@p.iam.gserviceaccount.com".into(),
            oauth_scope: CLOUD_PLATFORM_SCOPE.into(),
        }
    }

    #[test]
    fn a_matching_schedule_has_no_diff() {
        assert_eq!(diff(&spec(), &live()), vec![]);
    }

    #[test]
    fn one_changed_field_shows_exactly_that_field_and_its_mask() {
        let mut l = live();
        l.schedule = "*/5 * * * *".into();
        let changes = diff(&spec(), &l);
        assert_eq!(
            changes,
            vec![FieldChange::new(
                "cron",
                Some("\"*/5 * * * *\"".into()),
                Some(FieldValue::Known("\"0 * * * *\"".into()))
            )]
        );
        assert_eq!(mask_path("cron"), Some(SCHEDULE));
    }

    #[test]
    fn the_run_url_and_oauth_identity_are_what_scheduler_calls() {
        assert_eq!(
            spec().uri,
            "https://run.googleapis.com/v2/projects/p/locations/r/jobs/ingest:run"
        );
        let mut l = live();
        l.oauth_scope = "https://www.googleapis.com/auth/other".into();
        assert_eq!(diff(&spec(), &l)[0].field, "service_account");
    }
}

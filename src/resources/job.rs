//! `job`: Cloud Run v2 jobs — spec from stack.toml, normalized live state, field diff.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::container::{
    IdentityEnvLabels, ServiceImage, Wiring, create_image, created_limits, diff_image, diff_limits,
    image_notes, image_of, image_write, secret_refs, wiring,
};
use super::{
    Adoption, ApplyCtx, Converge, Known, Reconcile, StepError, address_from_name,
    carries_our_label, created, made_by_someone_else, push_if_differs, quoted,
};
use crate::config::units::{format_cpu, format_duration, format_memory};
use crate::config::{JobConfig, Stack};
use crate::model::change::{Action, FieldChange, Step};
use crate::model::{Kind, ResourceAddr};
use crate::provider::Created;
use crate::provider::jobs::{JobRecord, JobWrite};
use crate::provider::run::OperationObserver;
use crate::state::Ledger;

/// The image a job built by `stackctl deploy` starts with when apply creates it: Google's
/// public sample job, so the job (and its schedules) can exist before the first deploy.
pub const PLACEHOLDER_IMAGE: &str = "us-docker.pkg.dev/cloudrun/container/job";

/// Cloud Run's own job defaults, used to normalize what the API leaves unset.
const SERVER_TASK_TIMEOUT: Duration = Duration::from_secs(600);
const SERVER_MAX_RETRIES: i32 = 3;
const SERVER_TASK_COUNT: i32 = 1;

/// The declared state of one job, every stackctl default applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// `projects/P/locations/L/jobs/ID`
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Declared (`image`), or owned by `stackctl deploy` (`build`): never diffed then.
    pub image: ServiceImage,
    pub cpu_millis: u32,
    pub memory_bytes: u64,
    pub task_timeout: Duration,
    pub max_retries: u32,
    pub parallelism: Option<u32>,
    pub task_count: u32,
    /// `None` = not managed.
    pub env: Option<BTreeMap<String, String>>,
    /// Env var -> secret id (latest version); `None` = not managed.
    pub secrets: Option<BTreeMap<String, String>>,
    /// Email; `None` = Cloud Run's default account.
    pub service_account: Option<String>,
    /// What must exist first: its identity, secrets, and the grants that let it read them.
    pub depends_on: Vec<ResourceAddr>,
}

pub fn full_name(stack: &Stack, id: &str) -> String {
    format!(
        "projects/{}/locations/{}/jobs/{}",
        stack.settings.project, stack.settings.region, id
    )
}

pub fn spec(stack: &Stack, cfg: &JobConfig) -> JobSpec {
    let Wiring {
        labels,
        env,
        secrets,
        service_account,
        depends_on,
    } = wiring(
        stack,
        &cfg.labels,
        cfg.service_account.as_ref(),
        &cfg.env,
        &cfg.secrets,
    );
    JobSpec {
        name: full_name(stack, &cfg.id),
        labels,
        image: image_of(&cfg.image),
        cpu_millis: cfg.cpu_millis,
        memory_bytes: cfg.memory_bytes,
        task_timeout: cfg.task_timeout,
        max_retries: cfg.max_retries,
        parallelism: cfg.parallelism,
        task_count: cfg.task_count,
        env,
        secrets,
        service_account,
        depends_on,
    }
}

pub fn create_fields(spec: &JobSpec) -> Vec<FieldChange> {
    let mut out = vec![created(
        "image",
        create_image(&spec.image, PLACEHOLDER_IMAGE),
    )];
    out.extend(created_limits(spec.cpu_millis, spec.memory_bytes));
    out.extend([
        created("task_timeout", quoted(&format_duration(spec.task_timeout))),
        created("max_retries", spec.max_retries.to_string()),
        created("task_count", spec.task_count.to_string()),
    ]);
    if let Some(p) = spec.parallelism {
        out.push(created("parallelism", p.to_string()));
    }
    identity_env_labels(spec).push_created(&mut out);
    out
}

fn identity_env_labels(spec: &JobSpec) -> IdentityEnvLabels<'_> {
    IdentityEnvLabels {
        service_account: spec.service_account.as_ref(),
        env: spec.env.as_ref(),
        secrets: spec.secrets.as_ref(),
        labels: &spec.labels,
    }
}

pub fn diff(spec: &JobSpec, live: &JobRecord) -> Vec<FieldChange> {
    let mut out = Vec::new();
    diff_image(&mut out, &spec.image, &live.image);
    diff_limits(&mut out, spec.cpu_millis, spec.memory_bytes, &live.limits);
    push_if_differs(
        &mut out,
        "task_timeout",
        spec.task_timeout,
        live.task_timeout.unwrap_or(SERVER_TASK_TIMEOUT),
        |v| quoted(&format_duration(*v)),
    );
    push_if_differs(
        &mut out,
        "max_retries",
        spec.max_retries as i64,
        live.max_retries.unwrap_or(SERVER_MAX_RETRIES) as i64,
        |v| v.to_string(),
    );
    let live_tasks = if live.task_count <= 0 {
        SERVER_TASK_COUNT
    } else {
        live.task_count
    };
    push_if_differs(
        &mut out,
        "task_count",
        spec.task_count as i64,
        live_tasks as i64,
        |v| v.to_string(),
    );
    if let Some(p) = spec.parallelism {
        push_if_differs(
            &mut out,
            "parallelism",
            p as i64,
            live.parallelism as i64,
            |v| v.to_string(),
        );
    }
    identity_env_labels(spec).push_diff(
        &mut out,
        &live.service_account,
        &live.env,
        &live.secret_env,
        &live.labels,
    );
    out
}

pub fn to_write(spec: &JobSpec) -> JobWrite {
    JobWrite {
        name: spec.name.clone(),
        labels: spec.labels.clone(),
        image: image_write(&spec.image, PLACEHOLDER_IMAGE),
        env: spec.env.clone(),
        secrets: spec.secrets.as_ref().map(secret_refs),
        cpu: format_cpu(spec.cpu_millis),
        memory: format_memory(spec.memory_bytes),
        task_timeout: spec.task_timeout,
        max_retries: spec.max_retries as i32,
        parallelism: spec.parallelism.map(|p| p as i32),
        task_count: spec.task_count as i32,
        service_account: spec.service_account.clone(),
    }
}

/// `job`: Cloud Run v2 jobs, owned by label.
pub struct JobKind;

impl Reconcile for JobKind {
    const KIND: Kind = Kind::Job;
    const TIER: u8 = 2;
    const APIS: &'static [&'static str] = &["run"];
    const ADOPTION: Adoption = Adoption::Labels;
    fn owner_labels(live: &Self::Live) -> Option<&BTreeMap<String, String>> {
        Some(&live.labels)
    }
    fn estimate(
        stack: &Stack,
        prices: &crate::cost::PriceTable,
        address: &ResourceAddr,
    ) -> Option<crate::cost::Estimate> {
        let label = address.to_string();
        stack.jobs.get(&address.name).map(|config| {
            let usage = stack.usage.jobs.get(&address.name);
            let runs = crate::cost::estimate::JobRuns {
                executions_per_month: usage
                    .and_then(|u| u.executions_per_month)
                    .or_else(|| crate::cost::scheduled_runs_per_month(stack, address)),
                avg_task_seconds: usage.map(|u| u.avg_task_seconds),
            };
            let sizing = crate::cost::estimate::JobSizing {
                cpu_millis: config.cpu_millis,
                memory_bytes: config.memory_bytes,
                task_count: config.task_count,
            };
            crate::cost::estimate::job(prices, sizing, runs, &label)
        })
    }
    type Spec = JobSpec;
    type Live = JobRecord;

    fn declared(stack: &Stack) -> Vec<(ResourceAddr, JobSpec)> {
        super::each_declared(Self::KIND, &stack.jobs, |_, cfg| spec(stack, cfg))
    }
    fn spec_name(spec: &JobSpec) -> &str {
        &spec.name
    }
    fn live_name(live: &JobRecord) -> &str {
        &live.name
    }
    fn address_of(live: &JobRecord, _: &Ledger) -> ResourceAddr {
        address_from_name(Kind::Job, &live.name)
    }
    fn fingerprint(live: &JobRecord) -> String {
        live.etag.clone()
    }
    fn depends_on(spec: &JobSpec) -> Vec<ResourceAddr> {
        spec.depends_on.clone()
    }
    fn create_fields(spec: &JobSpec, _: &Known) -> Vec<FieldChange> {
        create_fields(spec)
    }
    fn diff(spec: &JobSpec, live: &JobRecord, _: &Known) -> Vec<FieldChange> {
        diff(spec, live)
    }
    fn notes(address: &ResourceAddr, spec: &JobSpec, live: Option<&JobRecord>) -> Vec<String> {
        image_notes(
            &address.to_string(),
            &spec.image,
            PLACEHOLDER_IMAGE,
            live.map(|l| l.image.as_str()),
        )
    }
}

impl Converge for JobKind {
    async fn write_adoption_labels(
        cloud: &crate::provider::Cloud,
        live: &Self::Live,
        _labels: &BTreeMap<String, String>,
        stack: &Stack,
    ) -> Result<(), crate::provider::ApiError> {
        use crate::provider::Silent;
        cloud
            .label_job(
                &live.name,
                super::OWNER_LABEL,
                &stack.settings.name,
                &Silent,
            )
            .await
            .map(drop)
    }
    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&JobSpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let cloud = &ctx.cloud;
        match (change.action, spec) {
            (Action::Replace, _) => {
                return Err(StepError::damaged_replace(&change.address));
            }
            (Action::Create, Some(spec)) => {
                observer.phase("creating job");
                if let Created::Exists { after_retry, .. } =
                    cloud.create_job(&to_write(spec), observer).await?
                {
                    let live = cloud.get_job(&spec.name, observer).await?;
                    let ours = live.is_some_and(|l| carries_our_label(&l.labels, &spec.labels));
                    if !(after_retry && ours) {
                        return Err(made_by_someone_else(change));
                    }
                    cloud.update_job(&to_write(spec), None, observer).await?;
                }
            }
            (Action::Update, Some(spec)) => {
                observer.phase("updating job");
                cloud
                    .update_job(&to_write(spec), change.fingerprint.as_deref(), observer)
                    .await?;
            }
            (Action::Delete | Action::Retire, _) => {
                observer.phase("deleting job");
                cloud.delete_job(&change.name, observer).await?;
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
    use crate::model::change::FieldValue;
    use crate::provider::container::{ImageWrite, SecretEnvRef};
    use crate::resources::OWNER_LABEL;

    fn spec() -> JobSpec {
        JobSpec {
            name: "projects/p/locations/r/jobs/ingest".into(),
            labels: BTreeMap::from([(OWNER_LABEL.into(), "s".into())]),
            image: ServiceImage::Declared("img".into()),
            cpu_millis: 1000,
            memory_bytes: 512 << 20,
            task_timeout: Duration::from_secs(900),
            max_retries: 3,
            parallelism: None,
            task_count: 1,
            env: None,
            secrets: Some(BTreeMap::from([("KEY".into(), "api-key".into())])),
            service_account: Some("w@p.iam.gserviceaccount.com".into()),
            depends_on: vec![],
        }
    }

    /// What Cloud Run echoes: defaults left unset, secret named by its full path.
    fn live() -> JobRecord {
        JobRecord {
            name: "projects/p/locations/r/jobs/ingest".into(),
            labels: BTreeMap::from([(OWNER_LABEL.into(), "s".into())]),
            etag: "e".into(),
            image: "img".into(),
            env: BTreeMap::new(),
            secret_env: BTreeMap::from([(
                "KEY".into(),
                SecretEnvRef {
                    secret: "projects/p/secrets/api-key".into(),
                    version: "latest".into(),
                },
            )]),
            limits: BTreeMap::from([("cpu".into(), "1000m".into())]),
            task_timeout: Some(Duration::from_secs(900)),
            max_retries: None,
            parallelism: 0,
            task_count: 0,
            service_account: "w@p.iam.gserviceaccount.com".into(),
        }
    }

    #[test]
    fn server_defaults_and_forms_do_not_diff() {
        assert_eq!(diff(&spec(), &live()), vec![]);
    }

    #[test]
    fn one_changed_field_shows_exactly_that_field() {
        let mut l = live();
        l.task_timeout = Some(Duration::from_secs(600));
        assert_eq!(
            diff(&spec(), &l),
            vec![FieldChange::new(
                "task_timeout",
                Some("\"10m\"".into()),
                Some(FieldValue::Known("\"15m\"".into()))
            )]
        );
    }

    #[test]
    fn a_built_job_starts_with_the_placeholder_and_keeps_the_deployed_image() {
        let mut s = spec();
        s.image = ServiceImage::Deployed {
            build: "workers/w".into(),
        };
        let mut l = live();
        l.image = "us-docker.pkg.dev/p/r/ingest@sha256:abc".into();
        assert_eq!(diff(&s, &l), vec![], "apply never reverts what deploy set");
        let address = ResourceAddr::new(Kind::Job, "ingest");
        assert_eq!(
            JobKind::notes(&address, &s, Some(&l)),
            vec![
                "image: us-docker.pkg.dev/p/r/ingest@sha256:abc (deployed by `stackctl deploy`; apply keeps it)"
            ]
        );
        assert!(JobKind::notes(&address, &s, None)[0].contains(PLACEHOLDER_IMAGE));
        assert_eq!(
            create_fields(&s)[0].after,
            Some(FieldValue::Known(format!(
                "\"{PLACEHOLDER_IMAGE}\" (placeholder)"
            )))
        );
        assert_eq!(
            to_write(&s).image,
            ImageWrite::KeepDeployed {
                placeholder: PLACEHOLDER_IMAGE.into()
            }
        );
        assert!(JobKind::notes(&address, &spec(), Some(&l)).is_empty());
    }

    #[test]
    fn a_pinned_secret_version_is_moved_back_to_latest() {
        let mut l = live();
        l.secret_env.get_mut("KEY").unwrap().version = "3".into();
        let changes = diff(&spec(), &l);
        assert_eq!(changes[0].field, "secrets.KEY");
        assert_eq!(changes[0].before.as_deref(), Some("\"api-key:3\""));
    }
}

//! Cloud Run Admin v2 services through `google-cloud-run-v2`: list, create, read-modify-write update, delete, as LROs.

use std::collections::BTreeMap;
use std::time::Duration;

use google_cloud_lro::{Poller, PollingResult};
use google_cloud_run_v2::model::{self as gm, condition::State as ConditionState};
use google_cloud_wkt as wkt;

use super::Cloud;
use super::container::{
    FirstContainer, HttpProbe, ImageWrite, SecretEnvRef, first_container_mut,
    overlay_first_container, probe_of,
};
use super::error::{ApiError, NotFoundAsAnswer, RetryObserver};
use super::retry::{Created, all_pages, creating, retrying};

pub use crate::model::live::run::{
    IngressKind, Readiness, RevisionRecord, ServiceRecord, TrafficRecord,
};

/// The declared state stackctl writes onto a service; everything else on the service is kept as it is.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServiceWrite {
    pub name: String,
    /// Labels to set (other labels on the service are kept).
    pub labels: BTreeMap<String, String>,
    pub image: ImageWrite,
    /// `None` = env is not managed; `Some` = exactly these plain env vars.
    pub env: Option<BTreeMap<String, String>>,
    /// `None` = secret env is not managed; `Some` = exactly these secret-backed env vars.
    #[serde(default)]
    pub secrets: Option<BTreeMap<String, SecretEnvRef>>,
    /// `None` = left to Cloud Run (its default compute account).
    #[serde(default)]
    pub service_account: Option<String>,
    pub cpu: String,
    pub memory: String,
    pub cpu_idle: bool,
    pub min_instances: i32,
    pub max_instances: i32,
    pub concurrency: i32,
    pub timeout: Duration,
    pub ingress: Option<IngressKind>,
    /// `invokerIamDisabled`: no IAM check on calls.
    #[serde(default)]
    pub public: bool,
    /// `None` = the probe is not managed; `Some` = exactly this HTTP probe.
    #[serde(default)]
    pub startup_probe: Option<HttpProbe>,
    #[serde(default)]
    pub liveness_probe: Option<HttpProbe>,
    /// The failed revision (short name) to roll out again: the template is annotated with it
    /// ([`RETRY_ANNOTATION`]), so the write creates a new revision even when nothing else changed.
    #[serde(default)]
    pub retry_of: Option<String>,
}

/// The revision-template annotation that makes a retried rollout a new revision.
pub const RETRY_ANNOTATION: &str = "stackctl.dev/retry-of";

/// What the LRO reports while it runs, for progress lines.
pub trait OperationObserver: RetryObserver {
    fn phase(&self, phase: &str);
}

impl OperationObserver for super::Silent {
    fn phase(&self, _: &str) {}
}

fn service_from_api(s: gm::Service) -> ServiceRecord {
    let latest_ready = s.latest_ready_revision.clone();
    let traffic = s
        .traffic_statuses
        .iter()
        .map(|t| TrafficRecord {
            revision: if t.revision.is_empty() {
                short_revision(&latest_ready)
            } else {
                short_revision(&t.revision)
            },
            percent: t.percent,
            tag: (!t.tag.is_empty()).then(|| t.tag.clone()),
        })
        .collect();
    let template = s.template.unwrap_or_default();
    let container = FirstContainer::read(template.containers);
    let scaling = template.scaling.unwrap_or_default();
    let failure = latest_revision_failure(s.terminal_condition.as_ref());
    ServiceRecord {
        name: s.name,
        labels: s.labels.into_iter().collect(),
        etag: s.etag,
        generation: s.generation,
        uri: s.uri,
        urls: s.urls,
        reconciling: s.reconciling,
        latest_ready_revision: s.latest_ready_revision,
        latest_created_revision: s.latest_created_revision,
        failure,
        ingress: match s.ingress {
            gm::IngressTraffic::All => IngressKind::All,
            gm::IngressTraffic::InternalOnly => IngressKind::InternalOnly,
            gm::IngressTraffic::InternalLoadBalancer => IngressKind::InternalLoadBalancer,
            gm::IngressTraffic::None => IngressKind::None,
            _ => IngressKind::Unspecified,
        },
        service_max_instances: s.scaling.map(|sc| sc.max_instance_count).unwrap_or(0),
        public: s.invoker_iam_disabled,
        image: container.image,
        env: container.env,
        secret_env: container.secret_env,
        service_account: template.service_account,
        limits: container.limits,
        cpu_idle: container.cpu_idle,
        startup_probe: container.startup_probe,
        liveness_probe: container.liveness_probe,
        min_instances: scaling.min_instance_count,
        max_instances: scaling.max_instance_count,
        concurrency: template.max_instance_request_concurrency,
        timeout: template.timeout.and_then(|t| Duration::try_from(t).ok()),
        traffic,
        created: s.create_time.and_then(|t| {
            chrono::DateTime::from_timestamp(t.seconds(), u32::try_from(t.nanos()).unwrap_or(0))
        }),
    }
}

impl ServiceWrite {
    /// Writes the declared fields onto `service`, keeping every other field as it is.
    fn overlay(&self, mut service: gm::Service) -> gm::Service {
        service.name = self.name.clone();
        for (k, v) in &self.labels {
            service.labels.insert(k.clone(), v.clone());
        }
        if let Some(ingress) = self.ingress {
            service.ingress = match ingress {
                IngressKind::All | IngressKind::Unspecified => gm::IngressTraffic::All,
                IngressKind::InternalOnly => gm::IngressTraffic::InternalOnly,
                IngressKind::InternalLoadBalancer => gm::IngressTraffic::InternalLoadBalancer,
                IngressKind::None => gm::IngressTraffic::None,
            };
        }
        service.invoker_iam_disabled = self.public;
        let mut scaling = service.scaling.take().unwrap_or_default();
        scaling.max_instance_count = self.max_instances;
        service.scaling = Some(scaling);

        let mut template = service.template.take().unwrap_or_default();
        // Never send back a revision name read from the server (google-cloud-python#14259).
        template.revision.clear();
        let mut rev_scaling = template.scaling.take().unwrap_or_default();
        rev_scaling.min_instance_count = self.min_instances;
        rev_scaling.max_instance_count = self.max_instances;
        template.scaling = Some(rev_scaling);
        template.max_instance_request_concurrency = self.concurrency;
        template.timeout = wkt::Duration::try_from(self.timeout).ok();
        let container = overlay_first_container(
            &mut template.containers,
            &self.image,
            &self.cpu,
            &self.memory,
            self.env.as_ref(),
            self.secrets.as_ref(),
        );
        container.resources.get_or_insert_default().cpu_idle = self.cpu_idle;
        if let Some(probe) = &self.startup_probe {
            container.startup_probe = Some(probe_of(probe));
        }
        if let Some(probe) = &self.liveness_probe {
            container.liveness_probe = Some(probe_of(probe));
        }
        if let Some(account) = &self.service_account {
            template.service_account = account.clone();
        }
        if let Some(failed) = &self.retry_of {
            template
                .annotations
                .insert(RETRY_ANNOTATION.to_string(), failed.clone());
        }
        service.template = Some(template);
        service
    }
}

impl Cloud {
    /// Every service in the project and region: one paged list call per page.
    pub async fn list_services(
        &self,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<ServiceRecord>, ApiError> {
        let parent = self.parent();
        all_pages(|token| {
            let parent = parent.clone();
            async move {
                let page = retrying(self.backoff, observer, || async {
                    self.services
                        .list_services()
                        .set_parent(&parent)
                        .set_page_token(&token)
                        .send()
                        .await
                        .map_err(|e| ApiError::from_gax("run.services.list", &parent, &e))
                })
                .await?;
                let items = page.services.into_iter().map(service_from_api);
                Ok((items.collect(), page.next_page_token))
            }
        })
        .await
    }

    async fn get_service_api(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Option<gm::Service>, ApiError> {
        let got = retrying(self.backoff, observer, || async {
            self.services
                .get_service()
                .set_name(name)
                .send()
                .await
                .map_err(|e| ApiError::from_gax("run.services.get", name, &e))
        })
        .await;
        got.not_found_as_none()
    }

    /// The service, or a 404 `NOT_FOUND` error saying `missing` when it does not exist.
    async fn existing_service(
        &self,
        name: &str,
        missing: &str,
        observer: &dyn RetryObserver,
    ) -> Result<gm::Service, ApiError> {
        self.get_service_api(name, observer).await?.ok_or_else(|| {
            ApiError::new(
                "run.services.get",
                name,
                Some(404),
                Some("NOT_FOUND".into()),
                missing,
            )
        })
    }

    pub async fn get_service(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Option<ServiceRecord>, ApiError> {
        Ok(self
            .get_service_api(name, observer)
            .await?
            .map(service_from_api))
    }

    /// Creates the service and waits for its operation; a service already there is answered
    /// as [`Created::Exists`] for the caller to judge (ours only after our own retried create).
    pub async fn create_service(
        &self,
        write: &ServiceWrite,
        observer: &dyn OperationObserver,
    ) -> Result<Created<ServiceRecord>, ApiError> {
        let parent = self.parent();
        let id = write
            .name
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let service = write.overlay(gm::Service::new());
        let created = creating(self.backoff, observer, || {
            let poller = self
                .services
                .create_service()
                .set_parent(&parent)
                .set_service_id(&id)
                .set_service(service.clone())
                .poller();
            wait_for("run.services.create", &write.name, poller, observer)
        })
        .await;
        Ok(match created? {
            Created::New(s) => Created::New(ready(service_from_api(s), "run.services.create")?),
            Created::Exists { after_retry, error } => Created::Exists { after_retry, error },
        })
    }

    /// Reads the service, writes the declared fields onto it and patches it with its etag.
    /// `expected_etag` (from a saved plan) makes the update fail if the service changed since.
    pub async fn update_service(
        &self,
        write: &ServiceWrite,
        expected_etag: Option<&str>,
        observer: &dyn OperationObserver,
    ) -> Result<ServiceRecord, ApiError> {
        let live = self
            .existing_service(
                &write.name,
                "the service disappeared since it was planned; re-run plan",
                observer,
            )
            .await?;
        unchanged_since_plan(
            expected_etag,
            &live.etag,
            "run.services.patch",
            &write.name,
            "service",
        )?;
        let updated = self
            .patch_service(write.overlay(live), &write.name, None, observer)
            .await?;
        ready(service_from_api(updated), "run.services.patch")
    }

    /// Writes the service back (its etag makes the write fail if it changed since it was read),
    /// only the `mask` fields when there is one, and waits for the operation.
    async fn patch_service(
        &self,
        service: gm::Service,
        name: &str,
        mask: Option<wkt::FieldMask>,
        observer: &dyn OperationObserver,
    ) -> Result<gm::Service, ApiError> {
        retrying(self.backoff, observer, || {
            let poller = self
                .services
                .update_service()
                .set_service(service.clone())
                .set_or_clear_update_mask(mask.clone())
                .poller();
            wait_for("run.services.patch", name, poller, observer)
        })
        .await
    }

    pub async fn delete_service(
        &self,
        name: &str,
        observer: &dyn OperationObserver,
    ) -> Result<(), ApiError> {
        let deleted = retrying(self.backoff, observer, || {
            let poller = self.services.delete_service().set_name(name).poller();
            wait_for("run.services.delete", name, poller, observer)
        })
        .await;
        deleted.not_found_as_done()
    }
}

/// Fails an update with `ABORTED` when a saved plan's etag is not the live one: the
/// `what` (service, job) changed since the plan was made. No expected etag, no check.
pub(super) fn unchanged_since_plan(
    expected_etag: Option<&str>,
    live_etag: &str,
    call: &'static str,
    name: &str,
    what: &str,
) -> Result<(), ApiError> {
    match expected_etag {
        Some(expected) if expected != live_etag => Err(ApiError::new(
            call,
            name,
            None,
            Some("ABORTED".into()),
            format!(
                "the {what} changed since the plan was made (etag differs); re-run `stackctl plan`"
            ),
        )),
        _ => Ok(()),
    }
}

/// Polls an operation to completion, reporting each in-progress poll as a phase.
pub(super) async fn wait_for<R, M, P>(
    call: &'static str,
    resource: &str,
    mut poller: P,
    observer: &dyn OperationObserver,
) -> Result<R, ApiError>
where
    P: Poller<R, M>,
{
    let mut polls = 0u32;
    while let Some(result) = poller.poll().await {
        match result {
            PollingResult::Completed(done) => {
                return done.map_err(|e| ApiError::from_gax(call, resource, &e));
            }
            PollingResult::InProgress(_) => {
                polls += 1;
                observer.phase(&format!("waiting for operation (poll {polls})"));
            }
            PollingResult::PollingError(e) => return Err(ApiError::from_gax(call, resource, &e)),
        }
    }
    Err(ApiError::new(
        call,
        resource,
        None,
        Some("UNKNOWN".into()),
        "the operation ended without a result",
    ))
}

/// A finished operation whose latest revision failed is an error that carries the revision's message.
fn ready(record: ServiceRecord, call: &'static str) -> Result<ServiceRecord, ApiError> {
    match &record.failure {
        Some(message) => Err(ApiError::new(
            call,
            &record.name,
            None,
            Some("FAILED_PRECONDITION".into()),
            format!(
                "revision {} is not ready: {message} (traffic stays on {})",
                record.latest_created_revision,
                if record.latest_ready_revision.is_empty() {
                    "no revision"
                } else {
                    &record.latest_ready_revision
                }
            ),
        )),
        None => Ok(record),
    }
}

impl Cloud {
    /// Sets one label on a service (read-modify-write with its etag), e.g. to adopt it.
    pub async fn label_service(
        &self,
        name: &str,
        key: &str,
        value: &str,
        observer: &dyn OperationObserver,
    ) -> Result<ServiceRecord, ApiError> {
        let mut live = self
            .existing_service(name, "no such service", observer)
            .await?;
        live.labels.insert(key.to_string(), value.to_string());
        if let Some(t) = live.template.as_mut() {
            t.revision.clear();
        }
        let updated = self.patch_service(live, name, None, observer).await?;
        Ok(service_from_api(updated))
    }
}

/// One traffic target: `revision: None` is "the latest ready revision" (type LATEST).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrafficTarget {
    /// Revision id (`worker-00002-abc`), or `None` for LATEST.
    pub revision: Option<String>,
    pub percent: i32,
    /// Gives the target its own URL, `https://TAG---SERVICE-....run.app`.
    pub tag: Option<String>,
}

/// Where traffic actually goes (`trafficStatuses`), with tagged targets' URLs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrafficStatus {
    pub target: TrafficTarget,
    pub uri: Option<String>,
}

/// A service as a rollout sees it: revisions, traffic, readiness.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RolloutState {
    pub name: String,
    pub etag: String,
    pub uri: String,
    /// Revision ids (not full names); empty when none.
    pub latest_ready_revision: String,
    pub latest_created_revision: String,
    pub image: String,
    /// The `Ready` condition's failure message, when the last revision failed.
    pub failure: Option<String>,
    pub traffic: Vec<TrafficTarget>,
    pub traffic_statuses: Vec<TrafficStatus>,
    /// Stable fingerprint of the revision template minus its name (for revision names).
    pub template_fingerprint: String,
}

/// A rollout write: a new image (with its revision id) and/or a new traffic split.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutWrite {
    /// `Some((image, revision id))` changes the template and so creates that revision.
    pub template: Option<(String, String)>,
    pub traffic: Vec<TrafficTarget>,
    /// The etag the rollout was computed from; the write fails if the service changed since.
    pub expected_etag: String,
}

fn short_revision(name: &str) -> String {
    name.rsplit('/').next().unwrap_or(name).to_string()
}

/// The terminal condition's message when the latest revision failed.
fn latest_revision_failure(condition: Option<&gm::Condition>) -> Option<String> {
    condition
        .filter(|c| c.state == ConditionState::ConditionFailed)
        .map(|c| {
            if c.message.is_empty() {
                "the latest revision failed".to_string()
            } else {
                c.message.clone()
            }
        })
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn traffic_from_api(
    kind: &gm::TrafficTargetAllocationType,
    revision: String,
    percent: i32,
    tag: String,
) -> TrafficTarget {
    TrafficTarget {
        revision: match kind {
            gm::TrafficTargetAllocationType::Latest => None,
            _ => non_empty(revision).map(|r| short_revision(&r)),
        },
        percent,
        tag: non_empty(tag),
    }
}

fn traffic_to_api(target: &TrafficTarget) -> gm::TrafficTarget {
    let mut out = gm::TrafficTarget::new().set_percent(target.percent);
    out = match &target.revision {
        Some(revision) => out
            .set_type(gm::TrafficTargetAllocationType::Revision)
            .set_revision(revision.clone()),
        None => out.set_type(gm::TrafficTargetAllocationType::Latest),
    };
    if let Some(tag) = &target.tag {
        out = out.set_tag(tag.clone());
    }
    out
}

fn template_fingerprint(template: Option<&gm::RevisionTemplate>) -> String {
    use sha2::Digest;
    let mut template = template.cloned().unwrap_or_default();
    template.revision.clear();
    let json = serde_json::to_vec(&template).unwrap_or_default();
    hex::encode(sha2::Sha256::digest(json))
}

impl RolloutState {
    fn from_api(s: &gm::Service) -> Self {
        let image = s
            .template
            .as_ref()
            .and_then(|t| t.containers.first())
            .map(|c| c.image.clone())
            .unwrap_or_default();
        let failure = latest_revision_failure(s.terminal_condition.as_ref());
        Self {
            name: s.name.clone(),
            etag: s.etag.clone(),
            uri: s.uri.clone(),
            latest_ready_revision: short_revision(&s.latest_ready_revision),
            latest_created_revision: short_revision(&s.latest_created_revision),
            image,
            failure,
            traffic: s
                .traffic
                .iter()
                .map(|t| traffic_from_api(&t.r#type, t.revision.clone(), t.percent, t.tag.clone()))
                .collect(),
            traffic_statuses: s
                .traffic_statuses
                .iter()
                .map(|t| TrafficStatus {
                    target: traffic_from_api(
                        &t.r#type,
                        t.revision.clone(),
                        t.percent,
                        t.tag.clone(),
                    ),
                    uri: non_empty(t.uri.clone()),
                })
                .collect(),
            template_fingerprint: template_fingerprint(s.template.as_ref()),
        }
    }
}

fn revision_from_api(r: gm::Revision) -> RevisionRecord {
    let ready = r.conditions.iter().find(|c| c.r#type == "Ready");
    let readiness = match ready.map(|c| (&c.state, c.message.clone())) {
        Some((ConditionState::ConditionSucceeded, _)) => Readiness::Ready,
        Some((ConditionState::ConditionFailed, message)) => Readiness::Failed { message },
        _ => Readiness::Pending,
    };
    let container = FirstContainer::read(r.containers);
    RevisionRecord {
        id: short_revision(&r.name),
        name: r.name,
        create_time: r.create_time.map(String::from).unwrap_or_default(),
        image: container.image,
        readiness,
        min_instances: r.scaling.map(|s| s.min_instance_count).unwrap_or(0),
        limits: container.limits,
        cpu_idle: container.cpu_idle,
    }
}

impl Cloud {
    /// The service's revisions, traffic and readiness; `None` if it does not exist.
    pub async fn get_rollout_state(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Option<RolloutState>, ApiError> {
        Ok(self
            .get_service_api(name, observer)
            .await?
            .map(|s| RolloutState::from_api(&s)))
    }

    /// Every revision of the service, newest first.
    pub async fn list_revisions(
        &self,
        service: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<RevisionRecord>, ApiError> {
        let mut out = all_pages(|token| async move {
            let page = retrying(self.backoff, observer, || async {
                self.revisions
                    .list_revisions()
                    .set_parent(service)
                    .set_page_token(&token)
                    .send()
                    .await
                    .map_err(|e| ApiError::from_gax("run.revisions.list", service, &e))
            })
            .await?;
            let revisions = page.revisions.into_iter().map(revision_from_api);
            Ok((revisions.collect(), page.next_page_token))
        })
        .await?;
        out.sort_by(|a, b| (&b.create_time, &b.id).cmp(&(&a.create_time, &a.id)));
        Ok(out)
    }

    /// Read-modify-write of the service's image (new revision) and/or traffic, with its etag;
    /// waits for the operation. A revision that fails to become ready is an error carrying its
    /// condition message; traffic then stays where it was.
    pub async fn roll_out(
        &self,
        name: &str,
        write: &RolloutWrite,
        observer: &dyn OperationObserver,
    ) -> Result<RolloutState, ApiError> {
        let mut live = self
            .existing_service(
                name,
                "no such service; create it with `stackctl apply` first",
                observer,
            )
            .await?;
        if live.etag != write.expected_etag {
            return Err(ApiError::new(
                "run.services.patch",
                name,
                None,
                Some("ABORTED".into()),
                "the service changed while the rollout was being prepared (etag differs); run the command again",
            ));
        }
        let mut template = live.template.take().unwrap_or_default();
        // Never send back a revision name read from the server (google-cloud-python#14259).
        template.revision.clear();
        if let Some((image, revision)) = &write.template {
            first_container_mut(&mut template.containers).image = image.clone();
            template.revision = revision.clone();
        }
        live.template = Some(template);
        live.traffic = write.traffic.iter().map(traffic_to_api).collect();
        // A traffic-only change names its field, so nothing else (the template) is rewritten.
        let mask = write
            .template
            .is_none()
            .then(|| wkt::FieldMask::default().set_paths(["traffic"]));
        let updated = self.patch_service(live, name, mask, observer).await?;
        let state = RolloutState::from_api(&updated);
        match &state.failure {
            Some(message) => Err(ApiError::new(
                "run.services.patch",
                name,
                None,
                Some("FAILED_PRECONDITION".into()),
                message.clone(),
            )),
            None => Ok(state),
        }
    }
}

//! `service`: Cloud Run v2 services — spec from stack.toml, normalized live state, field diff.

use crate::resources::quoted;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::container::{
    IdentityEnvLabels, ServiceImage, Wiring, changed_env_notes, create_image, created_limits,
    declared_env_notes, diff_image, diff_limits, image_notes, image_of, image_write,
    live_cpu_millis, live_memory_bytes, secret_refs, wiring,
};
use super::{
    Adoption, ApplyCtx, Converge, Known, OWNER_LABEL, Reconcile, StepError, address_from_name,
    carries_our_label, created, made_by_someone_else, push_if_differs,
};
use crate::config::units::{format_cpu, format_duration, format_memory};
use crate::config::{Ingress, ServiceConfig, Stack};
use crate::model::change::{Action, FieldChange, FieldValue, Step};
use crate::model::live::run::HttpProbe;
use crate::model::{Kind, ResourceAddr};
use crate::provider::Created;
use crate::provider::run::{IngressKind, OperationObserver, ServiceRecord, ServiceWrite};
use crate::state::Ledger;

/// The image a service built by `stackctl deploy` starts with when apply creates it: Google's
/// public sample, which listens on $PORT, so the service and its queue can exist before the first deploy.
pub const PLACEHOLDER_IMAGE: &str = "us-docker.pkg.dev/cloudrun/container/hello";

/// Cloud Run's own service defaults, used to normalize what the API leaves unset.
const SERVER_CONCURRENCY: u32 = 80;
const SERVER_TIMEOUT: Duration = Duration::from_secs(300);

/// The declared state of one service, every stackctl default applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// `projects/P/locations/L/services/ID`
    pub name: String,
    /// Ownership label, stack labels and the service's own labels.
    pub labels: BTreeMap<String, String>,
    pub image: ServiceImage,
    pub min_instances: u32,
    pub max_instances: u32,
    pub concurrency: u32,
    pub cpu_millis: u32,
    pub memory_bytes: u64,
    pub cpu_idle: bool,
    pub timeout: Duration,
    pub ingress: Option<Ingress>,
    /// Callable without IAM (`invokerIamDisabled`), for webhooks from outside Google.
    #[serde(default)]
    pub public: bool,
    /// `None` = not managed (Cloud Run's default TCP startup probe stays).
    #[serde(default)]
    pub startup_probe: Option<HttpProbe>,
    /// `None` = not managed (no liveness probe unless one was set by hand).
    #[serde(default)]
    pub liveness_probe: Option<HttpProbe>,
    /// `None` = env not managed.
    pub env: Option<BTreeMap<String, String>>,
    /// Env var -> secret id (latest version); `None` = secret env not managed.
    #[serde(default)]
    pub secrets: Option<BTreeMap<String, String>>,
    /// The revisions' identity (email); `None` = don't care (Cloud Run's default account).
    #[serde(default)]
    pub service_account: Option<String>,
    /// Env var -> the declared service whose URL it holds (resolved at plan, or at apply once
    /// that service exists).
    #[serde(default)]
    pub service_urls: BTreeMap<String, ResourceAddr>,
    /// What must exist first: its identity, secrets, the grants that let it read them, and the
    /// services whose URLs it holds.
    #[serde(default)]
    pub depends_on: Vec<ResourceAddr>,
}

pub fn full_name(stack: &Stack, id: &str) -> String {
    format!(
        "projects/{}/locations/{}/services/{}",
        stack.settings.project, stack.settings.region, id
    )
}

pub fn spec(stack: &Stack, cfg: &ServiceConfig) -> ServiceSpec {
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
    ServiceSpec {
        name: full_name(stack, &cfg.id),
        labels,
        image: image_of(&cfg.image),
        min_instances: cfg.min_instances,
        max_instances: cfg.max_instances,
        concurrency: cfg.concurrency,
        cpu_millis: cfg.cpu_millis,
        memory_bytes: cfg.memory_bytes,
        cpu_idle: cfg.cpu_idle,
        timeout: cfg.timeout,
        ingress: cfg.ingress,
        public: cfg.public,
        startup_probe: cfg.startup_probe.clone(),
        liveness_probe: cfg.liveness_probe.clone(),
        env,
        secrets,
        service_account,
        service_urls: cfg.service_urls.clone(),
        depends_on: {
            let mut depends_on = depends_on;
            depends_on.extend(cfg.service_urls.values().cloned());
            depends_on.sort();
            depends_on.dedup();
            depends_on
        },
    }
}

/// `https://HOST`: the URL a `service_urls` env var holds.
pub fn url_of_host(host: &str) -> String {
    format!("https://{host}")
}

/// `spec` with its `service_urls` written into its env where `hosts` knows them, and the env
/// vars whose service's host is not known yet.
pub fn with_service_urls(
    spec: &ServiceSpec,
    hosts: &BTreeMap<ResourceAddr, Option<String>>,
) -> (ServiceSpec, Vec<String>) {
    let mut resolved = spec.clone();
    let mut unknown = Vec::new();
    for (name, target) in &spec.service_urls {
        match hosts.get(target).cloned().flatten() {
            Some(host) => {
                resolved
                    .env
                    .get_or_insert_with(BTreeMap::new)
                    .insert(name.clone(), url_of_host(&host));
            }
            None => unknown.push(name.clone()),
        }
    }
    (resolved, unknown)
}

/// Marks the env vars whose URL is known only after apply: one `(known after apply)` change each,
/// in place of anything the diff said of them.
fn known_after_apply(
    mut fields: Vec<FieldChange>,
    unknown: &[String],
    live: Option<&ServiceRecord>,
) -> Vec<FieldChange> {
    for name in unknown {
        let path = format!("env.{name}");
        fields.retain(|f| f.field != path);
        fields.push(FieldChange::new(
            path,
            live.and_then(|l| l.env.get(name))
                .map(|v| super::container::shown_env(name, v)),
            Some(FieldValue::KnownAfterApply),
        ));
    }
    fields
}

/// The stack that owns a live service, from its ownership label.
pub fn owner(live: &ServiceRecord) -> Option<&str> {
    live.labels.get(OWNER_LABEL).map(String::as_str)
}

fn ingress_name(i: Ingress) -> &'static str {
    match i {
        Ingress::All => "all",
        Ingress::Internal => "internal",
        Ingress::InternalAndCloudLoadBalancing => "internal-and-cloud-load-balancing",
    }
}

fn ingress_kind(i: Ingress) -> IngressKind {
    match i {
        Ingress::All => IngressKind::All,
        Ingress::Internal => IngressKind::InternalOnly,
        Ingress::InternalAndCloudLoadBalancing => IngressKind::InternalLoadBalancer,
    }
}

pub(crate) fn live_ingress(k: IngressKind) -> &'static str {
    match k {
        IngressKind::All | IngressKind::Unspecified => "all",
        IngressKind::InternalOnly => "internal",
        IngressKind::InternalLoadBalancer => "internal-and-cloud-load-balancing",
        IngressKind::None => "none",
    }
}

/// Every declared field, as a `+ create` shows them.
pub fn create_fields(spec: &ServiceSpec) -> Vec<FieldChange> {
    let image = create_image(&spec.image, PLACEHOLDER_IMAGE);
    let mut out = vec![
        created("image", image),
        created("min_instances", spec.min_instances.to_string()),
        created("max_instances", spec.max_instances.to_string()),
        created("concurrency", spec.concurrency.to_string()),
    ];
    out.extend(created_limits(spec.cpu_millis, spec.memory_bytes));
    out.push(created("cpu_idle", spec.cpu_idle.to_string()));
    out.push(created("timeout", quoted(&format_duration(spec.timeout))));
    if let Some(i) = spec.ingress {
        out.push(created("ingress", quoted(ingress_name(i))));
    }
    if spec.public {
        out.push(created("public", "true".into()));
    }
    for (field, probe) in probes(spec) {
        out.push(created(field, quoted(&probe.describe())));
    }
    identity_env_labels(spec).push_created(&mut out);
    out.push(FieldChange::new(
        "url",
        None,
        Some(FieldValue::KnownAfterApply),
    ));
    out
}

/// The declared probes with their plan field names.
fn probes(spec: &ServiceSpec) -> impl Iterator<Item = (&'static str, &HttpProbe)> {
    [
        ("startup_probe", spec.startup_probe.as_ref()),
        ("liveness_probe", spec.liveness_probe.as_ref()),
    ]
    .into_iter()
    .filter_map(|(field, probe)| probe.map(|p| (field, p)))
}

fn identity_env_labels(spec: &ServiceSpec) -> IdentityEnvLabels<'_> {
    IdentityEnvLabels {
        service_account: spec.service_account.as_ref(),
        env: spec.env.as_ref(),
        secrets: spec.secrets.as_ref(),
        labels: &spec.labels,
    }
}

/// Declared fields that differ from the live service, after normalizing server defaults and units.
pub fn diff(spec: &ServiceSpec, live: &ServiceRecord) -> Vec<FieldChange> {
    let mut out = Vec::new();
    diff_image(&mut out, &spec.image, &live.image);
    push_if_differs(
        &mut out,
        "min_instances",
        spec.min_instances as i64,
        live.min_instances as i64,
        |v| v.to_string(),
    );
    // max_instances is both the service-wide cap and each revision's cap: both must match.
    let live_max = if live.max_instances as u32 != spec.max_instances {
        live.max_instances
    } else {
        live.service_max_instances
    };
    push_if_differs(
        &mut out,
        "max_instances",
        spec.max_instances as i64,
        live_max as i64,
        |v| v.to_string(),
    );
    let live_concurrency = if live.concurrency <= 0 {
        SERVER_CONCURRENCY
    } else {
        live.concurrency as u32
    };
    push_if_differs(
        &mut out,
        "concurrency",
        spec.concurrency,
        live_concurrency,
        |v| v.to_string(),
    );
    diff_limits(&mut out, spec.cpu_millis, spec.memory_bytes, &live.limits);
    push_if_differs(&mut out, "cpu_idle", spec.cpu_idle, live.cpu_idle, |v| {
        v.to_string()
    });
    push_if_differs(
        &mut out,
        "timeout",
        spec.timeout,
        live.timeout.unwrap_or(SERVER_TIMEOUT),
        |v| quoted(&format_duration(*v)),
    );
    if let Some(i) = spec.ingress {
        push_if_differs(
            &mut out,
            "ingress",
            ingress_name(i),
            live_ingress(live.ingress),
            |v| quoted(v),
        );
    }
    push_if_differs(&mut out, "public", spec.public, live.public, |v| {
        v.to_string()
    });
    for (field, probe) in probes(spec) {
        let live_probe = match field {
            "startup_probe" => live.startup_probe.as_ref(),
            _ => live.liveness_probe.as_ref(),
        };
        push_if_differs(&mut out, field, Some(probe), live_probe, |p| match p {
            Some(p) => quoted(&p.describe()),
            None => "none".into(),
        });
    }
    identity_env_labels(spec).push_diff(
        &mut out,
        &live.service_account,
        &live.env,
        &live.secret_env,
        &live.labels,
    );
    if let Some((revision, _)) = failed_rollout(live) {
        out.push(FieldChange::new(
            REVISION_FIELD,
            Some(format!("{} (failed)", quoted(revision))),
            Some(FieldValue::Known(RETRIED.into())),
        ));
    }
    out
}

/// The field that retries a failed rollout: `revision = "worker-00002-x" (failed) -> (retried)`.
const REVISION_FIELD: &str = "revision";
const RETRIED: &str = "(retried)";

fn short_revision(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// The latest revision (short name) and why it failed, when the service's last rollout failed:
/// its terminal condition is failed and the latest created revision is not the ready one.
pub fn failed_rollout(live: &ServiceRecord) -> Option<(&str, &str)> {
    let failure = live.failure.as_deref()?;
    let created = short_revision(&live.latest_created_revision);
    (!created.is_empty() && created != short_revision(&live.latest_ready_revision))
        .then_some((created, failure))
}

/// The failed revision a planned update retries (from its `revision` field), if it retries one.
fn retried_revision(change: &Step) -> Option<String> {
    let field = change.fields.iter().find(|f| f.field == REVISION_FIELD)?;
    let before = field.before.as_deref()?;
    before.split('"').nth(1).map(str::to_string)
}

/// Lines the plan shows under a service change: who owns a built service's image, and which
/// image it runs (the deployed digest) or will start with; why its last rollout failed; that
/// declared secret-looking env values are masked.
pub fn notes(address: &str, spec: &ServiceSpec, live: Option<&ServiceRecord>) -> Vec<String> {
    let mut out = image_notes(
        address,
        &spec.image,
        PLACEHOLDER_IMAGE,
        live.map(|l| l.image.as_str()),
    );
    match live {
        None => out.extend(declared_env_notes(spec.env.as_ref())),
        Some(live) => {
            if let Some((revision, reason)) = failed_rollout(live) {
                let ready = short_revision(&live.latest_ready_revision);
                let traffic = if ready.is_empty() {
                    "no revision serves yet".to_string()
                } else {
                    format!("traffic stays on {ready}")
                };
                out.push(format!(
                    "revision {revision} failed: {reason} ({traffic}); apply rolls it out again as a new revision"
                ));
            }
        }
    }
    out
}

/// What the provider writes onto the service.
pub fn to_write(spec: &ServiceSpec) -> ServiceWrite {
    ServiceWrite {
        name: spec.name.clone(),
        labels: spec.labels.clone(),
        image: image_write(&spec.image, PLACEHOLDER_IMAGE),
        env: spec.env.clone(),
        secrets: spec.secrets.as_ref().map(secret_refs),
        service_account: spec.service_account.clone(),
        cpu: format_cpu(spec.cpu_millis),
        memory: format_memory(spec.memory_bytes),
        cpu_idle: spec.cpu_idle,
        min_instances: spec.min_instances as i32,
        max_instances: spec.max_instances as i32,
        concurrency: spec.concurrency as i32,
        timeout: spec.timeout,
        ingress: spec.ingress.map(ingress_kind),
        public: spec.public,
        startup_probe: spec.startup_probe.clone(),
        liveness_probe: spec.liveness_probe.clone(),
        retry_of: None,
    }
}

/// The host of a service URL (`https://x-uc.a.run.app` -> `x-uc.a.run.app`).
pub fn host_of(uri: &str) -> Option<String> {
    let rest = uri.split_once("://").map(|(_, r)| r).unwrap_or(uri);
    let host = rest.split('/').next().unwrap_or_default();
    (!host.is_empty()).then(|| host.to_string())
}

/// `service`: Cloud Run v2 services, owned by label.
pub struct ServiceKind;

impl Reconcile for ServiceKind {
    const KIND: Kind = Kind::Service;
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
        stack.services.get(&address.name).map(|config| {
            crate::cost::estimate::service(
                prices,
                crate::cost::declared_sizing(config),
                stack.usage.services.get(&address.name),
                &label,
            )
        })
    }
    type Spec = ServiceSpec;
    type Live = ServiceRecord;

    fn declared(stack: &Stack) -> Vec<(ResourceAddr, ServiceSpec)> {
        super::each_declared(Self::KIND, &stack.services, |_, cfg| spec(stack, cfg))
    }
    fn spec_name(spec: &ServiceSpec) -> &str {
        &spec.name
    }
    fn live_name(live: &ServiceRecord) -> &str {
        &live.name
    }
    fn address_of(live: &ServiceRecord, _: &Ledger) -> ResourceAddr {
        address_from_name(Kind::Service, &live.name)
    }
    fn fingerprint(live: &ServiceRecord) -> String {
        live.etag.clone()
    }
    fn depends_on(spec: &ServiceSpec) -> Vec<ResourceAddr> {
        spec.depends_on.clone()
    }
    fn create_fields(spec: &ServiceSpec, known: &Known) -> Vec<FieldChange> {
        let (resolved, unknown) = with_service_urls(spec, &known.hosts);
        known_after_apply(create_fields(&resolved), &unknown, None)
    }
    fn diff(spec: &ServiceSpec, live: &ServiceRecord, known: &Known) -> Vec<FieldChange> {
        let (resolved, unknown) = with_service_urls(spec, &known.hosts);
        let fields = diff(&resolved, live);
        if unknown.is_empty() {
            fields
        } else {
            known_after_apply(fields, &unknown, Some(live))
        }
    }
    fn notes(
        address: &ResourceAddr,
        spec: &ServiceSpec,
        live: Option<&ServiceRecord>,
    ) -> Vec<String> {
        notes(&address.to_string(), spec, live)
    }
    fn change_notes(fields: &[FieldChange]) -> Vec<String> {
        changed_env_notes(fields)
    }
    fn live_cost(
        live: &ServiceRecord,
        address: &ResourceAddr,
        stack: &Stack,
        prices: &crate::cost::PriceTable,
    ) -> crate::cost::Estimate {
        let sizing = crate::cost::ServiceSizing {
            cpu_millis: live_cpu_millis(&live.limits),
            memory_bytes: live_memory_bytes(&live.limits),
            min_instances: u32::try_from(live.min_instances).unwrap_or(0),
            cpu_idle: live.cpu_idle,
        };
        crate::cost::estimate::service(
            prices,
            sizing,
            stack.usage.services.get(&address.name),
            &address.to_string(),
        )
    }
}

impl Converge for ServiceKind {
    async fn write_adoption_labels(
        cloud: &crate::provider::Cloud,
        live: &Self::Live,
        _labels: &BTreeMap<String, String>,
        stack: &Stack,
    ) -> Result<(), crate::provider::ApiError> {
        use crate::provider::Silent;
        cloud
            .label_service(&live.name, OWNER_LABEL, &stack.settings.name, &Silent)
            .await
            .map(drop)
    }
    async fn converge(
        ctx: &ApplyCtx,
        change: &Step,
        spec: Option<&ServiceSpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let cloud = &ctx.cloud;
        let resolved = match spec {
            Some(spec) => Some(applied_service_urls(ctx, spec).await?),
            None => None,
        };
        let spec = resolved.as_ref();
        let record = match (change.action, spec) {
            (Action::Create, Some(spec)) => {
                observer.phase("creating service");
                match cloud.create_service(&to_write(spec), observer).await? {
                    Created::New(made) => made,
                    Created::Exists { after_retry, .. } => {
                        let live = cloud.get_service(&spec.name, observer).await?;
                        let ours = live.is_some_and(|l| carries_our_label(&l.labels, &spec.labels));
                        if !(after_retry && ours) {
                            return Err(made_by_someone_else(change));
                        }
                        cloud
                            .update_service(&to_write(spec), None, observer)
                            .await?
                    }
                }
            }
            (Action::Update, Some(spec)) => {
                observer.phase("updating service");
                let write = ServiceWrite {
                    retry_of: retried_revision(change),
                    ..to_write(spec)
                };
                cloud
                    .update_service(&write, change.fingerprint.as_deref(), observer)
                    .await?
            }
            (Action::Delete | Action::Retire, _) => {
                observer.phase("deleting service");
                cloud.delete_service(&change.name, observer).await?;
                return Ok(());
            }
            (Action::Replace, _) => {
                return Err(StepError::Plan(format!(
                    "{} cannot be replaced; re-run `stackctl plan`",
                    change.address
                )));
            }
            (action, None) => {
                return Err(StepError::no_desired_state(action, &change.address));
            }
        };
        if let Some(host) = host_of(&record.uri) {
            ctx.hosts.lock().await.insert(change.address.clone(), host);
        }
        Ok(())
    }
}

/// `spec` with the URLs of the services it calls, which were applied first.
async fn applied_service_urls(
    ctx: &ApplyCtx,
    spec: &ServiceSpec,
) -> Result<ServiceSpec, StepError> {
    if spec.service_urls.is_empty() {
        return Ok(spec.clone());
    }
    let hosts = ctx.known().await.hosts;
    let (resolved, unknown) = with_service_urls(spec, &hosts);
    match unknown.first() {
        None => Ok(resolved),
        Some(name) => Err(StepError::Plan(format!(
            "the URL of {} (for {name}) is unknown: that service has no URL yet; re-run apply",
            spec.service_urls[name]
        ))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::provider::container::ImageWrite;

    fn spec() -> ServiceSpec {
        ServiceSpec {
            name: "projects/p/locations/r/services/worker".into(),
            labels: BTreeMap::from([(OWNER_LABEL.into(), "s".into())]),
            image: ServiceImage::Declared("img".into()),
            min_instances: 0,
            max_instances: 10,
            concurrency: 80,
            cpu_millis: 1000,
            memory_bytes: 512 * 1024 * 1024,
            cpu_idle: true,
            public: false,
            startup_probe: None,
            liveness_probe: None,
            timeout: Duration::from_secs(60),
            ingress: Some(Ingress::Internal),
            env: Some(BTreeMap::from([("RUST_LOG".into(), "info".into())])),
            secrets: None,
            service_account: None,
            service_urls: BTreeMap::new(),
            depends_on: vec![],
        }
    }

    /// A live service as Cloud Run echoes it: server forms and defaults filled in.
    pub(crate) fn live() -> ServiceRecord {
        ServiceRecord {
            urls: vec![],
            name: "projects/p/locations/r/services/worker".into(),
            labels: BTreeMap::from([
                (OWNER_LABEL.into(), "s".into()),
                ("someone-else".into(), "x".into()),
            ]),
            etag: "e1".into(),
            generation: 1,
            uri: "https://worker-abc-uc.a.run.app".into(),
            reconciling: false,
            latest_ready_revision: "r1".into(),
            latest_created_revision: "r1".into(),
            failure: None,
            ingress: IngressKind::InternalOnly,
            service_max_instances: 10,
            image: "img".into(),
            env: BTreeMap::from([("RUST_LOG".into(), "info".into())]),
            secret_env: BTreeMap::new(),
            service_account: "123-compute@developer.gserviceaccount.com".into(),
            limits: BTreeMap::from([
                ("cpu".into(), "1000m".into()),
                ("memory".into(), "512Mi".into()),
            ]),
            cpu_idle: true,
            public: false,
            startup_probe: None,
            liveness_probe: None,
            min_instances: 0,
            max_instances: 10,
            concurrency: 80,
            timeout: Some(Duration::from_secs(60)),
            traffic: vec![],
            created: None,
        }
    }

    #[test]
    fn declared_probes_are_diffed_and_undeclared_ones_are_left_alone() {
        let probe = HttpProbe {
            path: "/healthz".into(),
            initial_delay_seconds: 0,
            period_seconds: 10,
            timeout_seconds: 1,
            failure_threshold: 3,
        };
        let mut s = spec();
        let mut l = live();
        l.liveness_probe = Some(probe.clone());
        assert_eq!(diff(&s, &l), vec![], "an undeclared probe is not managed");
        s.startup_probe = Some(probe.clone());
        let fields = diff(&s, &l);
        assert_eq!(fields.len(), 1, "{fields:?}");
        assert_eq!(fields[0].field, "startup_probe");
        assert_eq!(fields[0].before.as_deref(), Some("none"));
        l.startup_probe = Some(HttpProbe {
            period_seconds: 5,
            ..probe.clone()
        });
        let fields = diff(&s, &l);
        assert_eq!(
            fields[0].before.as_deref(),
            Some("\"GET /healthz every 5s (timeout 1s, 3 failures, after 0s)\"")
        );
        l.startup_probe = Some(probe);
        assert_eq!(diff(&s, &l), vec![]);
    }

    #[test]
    fn server_forms_and_foreign_labels_do_not_diff() {
        assert_eq!(diff(&spec(), &live()), vec![]);
    }

    #[test]
    fn unset_server_fields_normalize_to_cloud_run_defaults() {
        let mut l = live();
        l.limits.clear();
        l.concurrency = 0;
        let mut s = spec();
        s.timeout = SERVER_TIMEOUT;
        l.timeout = None;
        assert_eq!(diff(&s, &l), vec![]);
    }

    #[test]
    fn a_service_url_env_var_is_known_after_apply_until_its_service_has_a_host() {
        let proxy = ResourceAddr::new(Kind::Service, "crm-proxy");
        let mut s = spec();
        s.service_urls = BTreeMap::from([("CRM_PROXY_URL".into(), proxy.clone())]);
        let unknown = Known {
            hosts: BTreeMap::from([(proxy.clone(), None)]),
            ..Known::default()
        };
        let created = ServiceKind::create_fields(&s, &unknown);
        let url = created
            .iter()
            .find(|f| f.field == "env.CRM_PROXY_URL")
            .unwrap();
        assert_eq!(url.after, Some(FieldValue::KnownAfterApply));

        let known = Known {
            hosts: BTreeMap::from([(proxy, Some("crm-proxy-x-uc.a.run.app".into()))]),
            ..Known::default()
        };
        let mut l = live();
        assert_eq!(
            ServiceKind::diff(&s, &l, &known),
            vec![FieldChange::new(
                "env.CRM_PROXY_URL",
                None,
                Some(FieldValue::Known(
                    "\"https://crm-proxy-x-uc.a.run.app\"".into()
                ))
            )]
        );
        l.env.insert(
            "CRM_PROXY_URL".into(),
            "https://crm-proxy-x-uc.a.run.app".into(),
        );
        assert!(ServiceKind::diff(&s, &l, &known).is_empty());
    }

    #[test]
    fn one_changed_field_shows_exactly_that_field() {
        let mut l = live();
        l.max_instances = 20;
        let changes = diff(&spec(), &l);
        assert_eq!(
            changes,
            vec![FieldChange::new(
                "max_instances",
                Some("20".into()),
                Some(FieldValue::Known("10".into()))
            )]
        );
    }

    #[test]
    fn the_service_wide_cap_is_diffed_too() {
        let mut l = live();
        l.service_max_instances = 0;
        assert_eq!(diff(&spec(), &l)[0].field, "max_instances");
    }

    #[test]
    fn declared_env_is_authoritative_and_cpu_is_compared_in_millicores() {
        let mut l = live();
        l.env.insert("EXTRA".into(), "1".into());
        l.limits.insert("cpu".into(), "2".into());
        let changes = diff(&spec(), &l);
        let fields: Vec<_> = changes
            .iter()
            .map(|c| {
                (
                    c.field.as_str(),
                    c.before.as_deref(),
                    c.after.as_ref().map(|a| a.to_string()),
                )
            })
            .collect();
        assert_eq!(
            fields,
            vec![
                ("cpu", Some("\"2\""), Some("\"1\"".to_string())),
                ("env.EXTRA", Some("\"1\""), None)
            ]
        );
    }

    #[test]
    fn a_declared_identity_and_secrets_are_diffed_and_an_undeclared_identity_is_not() {
        let mut s = spec();
        assert_eq!(
            diff(&s, &live()),
            vec![],
            "the default account is don't care"
        );
        s.service_account = Some("worker@p.iam.gserviceaccount.com".into());
        s.secrets = Some(BTreeMap::from([("KEY".into(), "api-key".into())]));
        let fields: Vec<_> = diff(&s, &live()).into_iter().map(|c| c.field).collect();
        assert_eq!(fields, vec!["service_account", "secrets.KEY"]);
    }

    #[test]
    fn ingress_left_unset_is_dont_care() {
        let mut s = spec();
        s.ingress = None;
        let mut l = live();
        l.ingress = IngressKind::All;
        assert_eq!(diff(&s, &l), vec![]);
    }

    #[test]
    fn a_deployed_image_is_never_diffed_and_the_plan_names_the_digest() {
        let mut s = spec();
        s.image = ServiceImage::Deployed {
            build: "workers/w".into(),
        };
        let mut l = live();
        l.image = "us-docker.pkg.dev/p/r/worker@sha256:abc".into();
        assert_eq!(diff(&s, &l), vec![], "apply never reverts what deploy set");
        assert_eq!(
            notes("service.worker", &s, Some(&l)),
            vec![
                "image: us-docker.pkg.dev/p/r/worker@sha256:abc (deployed by `stackctl deploy`; apply keeps it)"
            ]
        );
        assert!(notes("service.worker", &s, None)[0].contains("placeholder"));
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
        assert!(notes("service.worker", &spec(), Some(&l)).is_empty());
    }

    #[test]
    fn a_failed_rollout_is_a_retry_with_its_reason_in_a_note() {
        let mut l = live();
        l.latest_ready_revision =
            "projects/p/locations/r/services/worker/revisions/worker-1".into();
        l.latest_created_revision =
            "projects/p/locations/r/services/worker/revisions/worker-2".into();
        l.failure = Some("the container failed to start".into());
        let changes = diff(&spec(), &l);
        assert_eq!(
            changes,
            vec![FieldChange::new(
                "revision",
                Some("\"worker-2\" (failed)".into()),
                Some(FieldValue::Known("(retried)".into()))
            )]
        );
        assert_eq!(
            notes("service.worker", &spec(), Some(&l)),
            vec![
                "revision worker-2 failed: the container failed to start (traffic stays on worker-1); apply rolls it out again as a new revision"
            ]
        );
        let step = Step {
            address: "service.worker".parse().unwrap(),
            name: l.name.clone(),
            action: Action::Update,
            fields: changes,
            fingerprint: None,
        };
        assert_eq!(retried_revision(&step).as_deref(), Some("worker-2"));
        // A failure with the failed revision no longer the latest (or none) is not a retry.
        l.latest_ready_revision = l.latest_created_revision.clone();
        assert_eq!(diff(&spec(), &l), vec![]);
    }

    #[test]
    fn host_of_strips_scheme_and_path() {
        assert_eq!(
            host_of("https://w-1-uc.a.run.app/x").as_deref(),
            Some("w-1-uc.a.run.app")
        );
        assert_eq!(host_of(""), None);
    }
}

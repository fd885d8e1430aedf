//! `service`: Cloud Run v2 services — spec from stack.toml, normalized live state, field diff.

use crate::resources::quoted;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    ApplyCtx, Converge, Desired, Known, OWNER_LABEL, Ownership, Reconcile, StepError, grant, job,
    label_ownership, push_if_differs, secret, service_account,
};
use crate::config::units::{format_cpu, format_duration, format_memory, parse_cpu, parse_memory};
use crate::config::{ImageSource, Ingress, ServiceConfig, Stack};
use crate::model::{Kind, ResourceAddr};
use crate::plan::{Action, FieldChange, FieldValue, ResourceChange};
use crate::provider::container::ImageWrite;
use crate::provider::run::{IngressKind, OperationObserver, ServiceRecord, ServiceWrite};
use crate::state::Ledger;

/// The image a service built by `stackctl deploy` starts with when apply creates it: Google's
/// public sample, which listens on $PORT, so the service and its queue can exist before the first deploy.
pub const PLACEHOLDER_IMAGE: &str = "us-docker.pkg.dev/cloudrun/container/hello";

/// Cloud Run's own defaults, used to normalize what the API leaves unset.
const SERVER_CPU_MILLIS: u32 = 1000;
const SERVER_MEMORY_BYTES: u64 = 512 * 1024 * 1024;
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
    /// `None` = env not managed.
    pub env: Option<BTreeMap<String, String>>,
    /// Env var -> secret id (latest version); `None` = secret env not managed.
    #[serde(default)]
    pub secrets: Option<BTreeMap<String, String>>,
    /// The revisions' identity (email); `None` = don't care (Cloud Run's default account).
    #[serde(default)]
    pub service_account: Option<String>,
    /// What must exist first: its identity, secrets, and the grants that let it read them.
    #[serde(default)]
    pub depends_on: Vec<ResourceAddr>,
}

/// Who owns a service's or job's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServiceImage {
    /// `image = "..."` in stack.toml: apply sets it and diffs it.
    Declared(String),
    /// `build = "DIR"`: `stackctl deploy` sets it (by digest); apply never changes or diffs it,
    /// and creates the service with [`PLACEHOLDER_IMAGE`].
    Deployed { build: String },
}

pub fn full_name(stack: &Stack, id: &str) -> String {
    format!(
        "projects/{}/locations/{}/services/{}",
        stack.settings.project, stack.settings.region, id
    )
}

/// What a Cloud Run service or job derives from stack.toml the same way: its labels (stack,
/// own, ownership), its secret env by secret id, and what it needs first (identity, secrets,
/// the secret-accessor grants).
pub(crate) struct Wiring {
    pub labels: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    pub depends_on: Vec<ResourceAddr>,
}

pub(crate) fn wiring(
    stack: &Stack,
    own_labels: &BTreeMap<String, String>,
    service_account: Option<&ResourceAddr>,
    secret_env: &BTreeMap<String, ResourceAddr>,
) -> Wiring {
    let mut labels = stack.settings.labels.clone();
    labels.extend(own_labels.clone());
    labels.insert(OWNER_LABEL.to_string(), stack.settings.name.clone());
    let secrets = secret_env
        .iter()
        .filter_map(|(env, addr)| Some((env.clone(), secret::id_of(stack, addr)?)))
        .collect();
    let mut depends_on: Vec<ResourceAddr> = service_account.into_iter().cloned().collect();
    depends_on.extend(secret_env.values().cloned());
    depends_on.extend(grant::secret_access_addresses(service_account, secret_env));
    depends_on.sort();
    depends_on.dedup();
    Wiring {
        labels,
        secrets,
        depends_on,
    }
}

pub fn spec(stack: &Stack, cfg: &ServiceConfig) -> ServiceSpec {
    let Wiring {
        labels,
        secrets,
        depends_on,
    } = wiring(
        stack,
        &cfg.labels,
        cfg.service_account.as_ref(),
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
        env: (!cfg.env.is_empty()).then(|| cfg.env.clone()),
        secrets: (!secrets.is_empty()).then_some(secrets),
        service_account: cfg
            .service_account
            .as_ref()
            .and_then(|a| service_account::email_of(stack, a)),
        depends_on,
    }
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

fn live_ingress(k: IngressKind) -> &'static str {
    match k {
        IngressKind::All | IngressKind::Unspecified => "all",
        IngressKind::InternalOnly => "internal",
        IngressKind::InternalLoadBalancer => "internal-and-cloud-load-balancing",
        IngressKind::None => "none",
    }
}

/// Every declared field, as a `+ create` shows them.
pub fn create_fields(spec: &ServiceSpec) -> Vec<FieldChange> {
    let known = |f: &str, v: String| FieldChange::new(f, None, Some(FieldValue::Known(v)));
    let image = create_image(&spec.image, PLACEHOLDER_IMAGE);
    let mut out = vec![
        known("image", image),
        known("min_instances", spec.min_instances.to_string()),
        known("max_instances", spec.max_instances.to_string()),
        known("concurrency", spec.concurrency.to_string()),
        known("cpu", quoted(&format_cpu(spec.cpu_millis))),
        known("memory", quoted(&format_memory(spec.memory_bytes))),
        known("cpu_idle", spec.cpu_idle.to_string()),
        known("timeout", quoted(&format_duration(spec.timeout))),
    ];
    if let Some(i) = spec.ingress {
        out.push(known("ingress", quoted(ingress_name(i))));
    }
    if let Some(a) = &spec.service_account {
        out.push(known("service_account", quoted(a)));
    }
    for (k, v) in spec.env.iter().flatten() {
        out.push(known(&format!("env.{k}"), quoted(v)));
    }
    for (k, id) in spec.secrets.iter().flatten() {
        out.push(known(
            &format!("secrets.{k}"),
            job::show_secret(id, "latest"),
        ));
    }
    for (k, v) in &spec.labels {
        out.push(known(&format!("labels.{k}"), quoted(v)));
    }
    out.push(FieldChange::new(
        "url",
        None,
        Some(FieldValue::KnownAfterApply),
    ));
    out
}

/// The live CPU limit in millicores, Cloud Run's default when unset.
pub fn live_cpu_millis(live: &ServiceRecord) -> u32 {
    live.limits
        .get("cpu")
        .and_then(|c| parse_cpu(c).ok())
        .unwrap_or(SERVER_CPU_MILLIS)
}

/// The live memory limit in bytes, Cloud Run's default when unset.
pub fn live_memory_bytes(live: &ServiceRecord) -> u64 {
    live.limits
        .get("memory")
        .and_then(|m| parse_memory(m).ok())
        .unwrap_or(SERVER_MEMORY_BYTES)
}

/// Declared fields that differ from the live service, after normalizing server defaults and units.
pub fn diff(spec: &ServiceSpec, live: &ServiceRecord) -> Vec<FieldChange> {
    let mut out = Vec::new();
    if let ServiceImage::Declared(image) = &spec.image {
        push_if_differs(&mut out, "image", image, &live.image, |s| quoted(s));
    }
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
    let live_cpu = live_cpu_millis(live);
    push_if_differs(&mut out, "cpu", spec.cpu_millis, live_cpu, |v| {
        quoted(&format_cpu(*v))
    });
    let live_memory = live_memory_bytes(live);
    push_if_differs(&mut out, "memory", spec.memory_bytes, live_memory, |v| {
        quoted(&format_memory(*v))
    });
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
    if let Some(a) = &spec.service_account {
        push_if_differs(&mut out, "service_account", a, &live.service_account, |s| {
            quoted(s)
        });
    }
    if let Some(env) = &spec.env {
        diff_map(&mut out, "env", env, &live.env, true);
    }
    if let Some(secrets) = &spec.secrets {
        job::diff_secrets(&mut out, secrets, &live.secret_env);
    }
    diff_map(&mut out, "labels", &spec.labels, &live.labels, false);
    out
}

/// Lines the plan shows under a service change: who owns a built service's image, and which
/// image it runs (the deployed digest) or will start with.
pub fn notes(address: &str, spec: &ServiceSpec, live: Option<&ServiceRecord>) -> Vec<String> {
    image_notes(
        address,
        &spec.image,
        PLACEHOLDER_IMAGE,
        live.map(|l| l.image.as_str()),
    )
}

/// The plan notes of a built image (services and jobs): the placeholder it starts with, or the
/// image `stackctl deploy` set, which apply keeps. Nothing for a declared image.
pub fn image_notes(
    address: &str,
    image: &ServiceImage,
    placeholder: &str,
    live_image: Option<&str>,
) -> Vec<String> {
    let ServiceImage::Deployed { build } = image else {
        return Vec::new();
    };
    match live_image {
        None => vec![format!(
            "image: starts with the placeholder {placeholder}; `stackctl deploy {address}` builds {build} and rolls it out"
        )],
        Some(live) if live == placeholder => vec![format!(
            "image: still the placeholder; `stackctl deploy {address}` builds {build} and rolls it out"
        )],
        Some(live) => vec![format!(
            "image: {live} (deployed by `stackctl deploy`; apply keeps it)"
        )],
    }
}

/// The image apply writes: the declared one, or (built) the live one kept, `placeholder` on create.
pub fn image_write(image: &ServiceImage, placeholder: &str) -> ImageWrite {
    match image {
        ServiceImage::Declared(image) => ImageWrite::Set(image.clone()),
        ServiceImage::Deployed { .. } => ImageWrite::KeepDeployed {
            placeholder: placeholder.to_string(),
        },
    }
}

/// The image a `+ create` shows.
pub fn create_image(image: &ServiceImage, placeholder: &str) -> String {
    match image {
        ServiceImage::Declared(image) => quoted(image),
        ServiceImage::Deployed { .. } => format!("{} (placeholder)", quoted(placeholder)),
    }
}

/// The spec's image from the config's source.
pub fn image_of(source: &ImageSource) -> ServiceImage {
    match source {
        ImageSource::Image(image) => ServiceImage::Declared(image.clone()),
        ImageSource::Build(dir) => ServiceImage::Deployed { build: dir.clone() },
    }
}

/// Map entries that differ; `authoritative` also removes live keys that are not declared.
fn diff_map(
    out: &mut Vec<FieldChange>,
    prefix: &str,
    desired: &BTreeMap<String, String>,
    live: &BTreeMap<String, String>,
    authoritative: bool,
) {
    for (k, v) in desired {
        if live.get(k) != Some(v) {
            out.push(FieldChange::new(
                format!("{prefix}.{k}"),
                live.get(k).map(|v| quoted(v)),
                Some(FieldValue::Known(quoted(v))),
            ));
        }
    }
    if authoritative {
        for (k, v) in live {
            if !desired.contains_key(k) {
                out.push(FieldChange::new(
                    format!("{prefix}.{k}"),
                    Some(quoted(v)),
                    None,
                ));
            }
        }
    }
}

/// What the provider writes onto the service.
pub fn to_write(spec: &ServiceSpec) -> ServiceWrite {
    ServiceWrite {
        name: spec.name.clone(),
        labels: spec.labels.clone(),
        image: image_write(&spec.image, PLACEHOLDER_IMAGE),
        env: spec.env.clone(),
        secrets: spec.secrets.as_ref().map(job::secret_refs),
        service_account: spec.service_account.clone(),
        cpu: format_cpu(spec.cpu_millis),
        memory: format_memory(spec.memory_bytes),
        cpu_idle: spec.cpu_idle,
        min_instances: spec.min_instances as i32,
        max_instances: spec.max_instances as i32,
        concurrency: spec.concurrency as i32,
        timeout: spec.timeout,
        ingress: spec.ingress.map(ingress_kind),
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
    type Spec = ServiceSpec;
    type Live = ServiceRecord;

    fn declared(stack: &Stack) -> Vec<(ResourceAddr, ServiceSpec)> {
        stack
            .services
            .iter()
            .map(|(name, cfg)| (ResourceAddr::new(Kind::Service, name), spec(stack, cfg)))
            .collect()
    }
    fn spec_name(spec: &ServiceSpec) -> &str {
        &spec.name
    }
    fn live_name(live: &ServiceRecord) -> &str {
        &live.name
    }
    fn wrap(spec: ServiceSpec) -> Desired {
        Desired::Service(spec)
    }
    fn ownership(live: &ServiceRecord, stack: &str, _: &Ledger) -> Ownership {
        label_ownership(&live.labels, stack)
    }
    fn address_of(live: &ServiceRecord, _: &Ledger) -> ResourceAddr {
        ResourceAddr::new(
            Kind::Service,
            live.name.rsplit('/').next().unwrap_or_default(),
        )
    }
    fn fingerprint(live: &ServiceRecord) -> String {
        live.etag.clone()
    }
    fn depends_on(spec: &ServiceSpec) -> Vec<ResourceAddr> {
        spec.depends_on.clone()
    }
    fn create_fields(spec: &ServiceSpec, _: &Known) -> Vec<FieldChange> {
        create_fields(spec)
    }
    fn diff(spec: &ServiceSpec, live: &ServiceRecord, _: &Known) -> Vec<FieldChange> {
        diff(spec, live)
    }
    fn notes(
        address: &ResourceAddr,
        spec: &ServiceSpec,
        live: Option<&ServiceRecord>,
    ) -> Vec<String> {
        notes(&address.to_string(), spec, live)
    }
    fn live_cost(
        live: &ServiceRecord,
        address: &ResourceAddr,
        stack: &Stack,
        prices: &crate::cost::PriceTable,
    ) -> crate::cost::Estimate {
        let sizing = crate::cost::ServiceSizing {
            cpu_millis: live_cpu_millis(live),
            memory_bytes: live_memory_bytes(live),
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
    async fn converge(
        ctx: &ApplyCtx,
        change: &ResourceChange,
        spec: Option<&ServiceSpec>,
        observer: &dyn OperationObserver,
    ) -> Result<(), StepError> {
        let cloud = &ctx.cloud;
        let record = match (change.action, spec) {
            (Action::Create, Some(spec)) => {
                observer.phase("creating service");
                cloud.create_service(&to_write(spec), observer).await?
            }
            (Action::Update, Some(spec)) => {
                observer.phase("updating service");
                cloud
                    .update_service(&to_write(spec), change.fingerprint.as_deref(), observer)
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
                return Err(StepError::Plan(format!(
                    "the plan has no desired state to {action:?} {}; re-run `stackctl plan`",
                    change.address
                )));
            }
        };
        if let Some(host) = host_of(&record.uri) {
            ctx.hosts.lock().await.insert(change.address.clone(), host);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            timeout: Duration::from_secs(60),
            ingress: Some(Ingress::Internal),
            env: Some(BTreeMap::from([("RUST_LOG".into(), "info".into())])),
            secrets: None,
            service_account: None,
            depends_on: vec![],
        }
    }

    /// A live service as Cloud Run echoes it: server forms and defaults filled in.
    fn live() -> ServiceRecord {
        ServiceRecord {
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
            min_instances: 0,
            max_instances: 10,
            concurrency: 80,
            timeout: Some(Duration::from_secs(60)),
            traffic: vec![],
            created: None,
        }
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
    fn host_of_strips_scheme_and_path() {
        assert_eq!(
            host_of("https://w-1-uc.a.run.app/x").as_deref(),
            Some("w-1-uc.a.run.app")
        );
        assert_eq!(host_of(""), None);
    }
}

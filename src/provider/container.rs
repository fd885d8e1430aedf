//! The first container of a Cloud Run service revision or job task: read into plain records
//! (image, plain and secret env, limits) and written from the declared fields services and jobs share.

use std::collections::BTreeMap;

use google_cloud_run_v2::model as gm;

pub use crate::model::live::run::{HttpProbe, SecretEnvRef};

/// What apply does to the container image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageWrite {
    /// Set exactly this image.
    Set(String),
    /// The image belongs to `stackctl deploy`: keep the live one; a new service gets `placeholder`.
    KeepDeployed { placeholder: String },
}

/// The first container as stackctl reads it (an empty one when there is none).
pub(super) struct FirstContainer {
    pub image: String,
    /// Plain-valued env vars.
    pub env: BTreeMap<String, String>,
    /// Env vars whose value comes from Secret Manager.
    pub secret_env: BTreeMap<String, SecretEnvRef>,
    /// `resources.limits` (`cpu`, `memory`).
    pub limits: BTreeMap<String, String>,
    pub cpu_idle: bool,
    pub startup_probe: Option<HttpProbe>,
    pub liveness_probe: Option<HttpProbe>,
}

/// An HTTP probe as stackctl reads it; TCP and gRPC probes read as `None`.
fn http_probe(probe: Option<gm::Probe>) -> Option<HttpProbe> {
    let probe = probe?;
    match probe.probe_type? {
        gm::probe::ProbeType::HttpGet(get) => Some(HttpProbe {
            path: if get.path.is_empty() {
                "/".into()
            } else {
                get.path
            },
            initial_delay_seconds: probe.initial_delay_seconds,
            period_seconds: probe.period_seconds,
            timeout_seconds: probe.timeout_seconds,
            failure_threshold: probe.failure_threshold,
        }),
        _ => None,
    }
}

/// The Cloud Run probe for a declared HTTP probe (on the container's serving port).
pub(super) fn probe_of(probe: &HttpProbe) -> gm::Probe {
    gm::Probe::new()
        .set_initial_delay_seconds(probe.initial_delay_seconds)
        .set_period_seconds(probe.period_seconds)
        .set_timeout_seconds(probe.timeout_seconds)
        .set_failure_threshold(probe.failure_threshold)
        .set_http_get(gm::HTTPGetAction::new().set_path(probe.path.clone()))
}

impl FirstContainer {
    pub(super) fn read(containers: Vec<gm::Container>) -> Self {
        let container = containers.into_iter().next().unwrap_or_default();
        let resources = container.resources.unwrap_or_default();
        let (env, secret_env) = split_env(container.env);
        Self {
            image: container.image,
            env,
            secret_env,
            limits: resources.limits.into_iter().collect(),
            cpu_idle: resources.cpu_idle,
            startup_probe: http_probe(container.startup_probe),
            liveness_probe: http_probe(container.liveness_probe),
        }
    }
}

/// The first container, added empty when there is none.
pub(super) fn first_container_mut(containers: &mut Vec<gm::Container>) -> &mut gm::Container {
    if containers.is_empty() {
        containers.push(gm::Container::new());
    }
    &mut containers[0]
}

/// Writes the image, CPU and memory limits and managed env (see [`overlay_env`]) onto the first
/// container, keeping everything else on it; answers the container for kind-specific fields.
pub(super) fn overlay_first_container<'c>(
    containers: &'c mut Vec<gm::Container>,
    image: &ImageWrite,
    cpu: &str,
    memory: &str,
    env: Option<&BTreeMap<String, String>>,
    secrets: Option<&BTreeMap<String, SecretEnvRef>>,
) -> &'c mut gm::Container {
    let container = first_container_mut(containers);
    match image {
        ImageWrite::Set(image) => container.image = image.clone(),
        ImageWrite::KeepDeployed { placeholder } if container.image.is_empty() => {
            container.image = placeholder.clone()
        }
        ImageWrite::KeepDeployed { .. } => {}
    }
    let resources = container.resources.get_or_insert_default();
    resources.limits.insert("cpu".into(), cpu.to_string());
    resources.limits.insert("memory".into(), memory.to_string());
    overlay_env(container, env, secrets);
    container
}

/// Plain and secret-backed env vars of a container, split.
fn split_env(env: Vec<gm::EnvVar>) -> (BTreeMap<String, String>, BTreeMap<String, SecretEnvRef>) {
    let mut plain = BTreeMap::new();
    let mut secret = BTreeMap::new();
    for e in env {
        match e.values {
            Some(gm::env_var::Values::Value(v)) => {
                plain.insert(e.name, v);
            }
            Some(gm::env_var::Values::ValueSource(source)) => {
                if let Some(r) = source.secret_key_ref {
                    secret.insert(
                        e.name,
                        SecretEnvRef {
                            secret: r.secret,
                            version: r.version,
                        },
                    );
                }
            }
            _ => {}
        }
    }
    (plain, secret)
}

/// Replaces the managed env vars of a container: `plain` (if managed) replaces every plain var,
/// `secrets` (if managed) every secret-backed var; anything else is kept. Sorted by name.
fn overlay_env(
    container: &mut gm::Container,
    plain: Option<&BTreeMap<String, String>>,
    secrets: Option<&BTreeMap<String, SecretEnvRef>>,
) {
    if plain.is_none() && secrets.is_none() {
        return;
    }
    let declared = |name: &str| {
        plain.is_some_and(|p| p.contains_key(name)) || secrets.is_some_and(|s| s.contains_key(name))
    };
    let mut vars: Vec<gm::EnvVar> = container
        .env
        .drain(..)
        .filter(|e| {
            let managed = match e.values {
                Some(gm::env_var::Values::Value(_)) => plain.is_some(),
                Some(gm::env_var::Values::ValueSource(_)) => secrets.is_some(),
                _ => false,
            };
            !managed && !declared(&e.name)
        })
        .collect();
    vars.extend(
        plain
            .into_iter()
            .flatten()
            .map(|(k, v)| gm::EnvVar::new().set_name(k.clone()).set_value(v.clone())),
    );
    vars.extend(secrets.into_iter().flatten().map(|(k, r)| {
        gm::EnvVar::new().set_name(k.clone()).set_value_source(
            gm::EnvVarSource::new().set_secret_key_ref(
                gm::SecretKeySelector::new()
                    .set_secret(r.secret.clone())
                    .set_version(r.version.clone()),
            ),
        )
    }));
    vars.sort_by(|a, b| a.name.cmp(&b.name));
    container.env = vars;
}

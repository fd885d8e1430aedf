//! What Cloud Run services and jobs declare alike (image ownership, identity, limits, env and
//! secret env, labels): derived from stack.toml, shown on a create, diffed against the live container.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    created, diff_labels, grant, owned_labels, push_if_differs, quoted, secret, service_account,
};
use crate::config::units::{format_cpu, format_memory, parse_cpu, parse_memory};
use crate::config::{ImageSource, Stack};
use crate::model::ResourceAddr;
use crate::model::change::{FieldChange, FieldValue};
use crate::provider::container::{ImageWrite, SecretEnvRef};

/// Cloud Run's default limits (services and jobs alike), used to normalize what the API leaves unset.
const SERVER_CPU_MILLIS: u32 = 1000;
const SERVER_MEMORY_BYTES: u64 = 512 * 1024 * 1024;

/// Who owns a service's or job's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServiceImage {
    /// `image = "..."` in stack.toml: apply sets it and diffs it.
    Declared(String),
    /// `build = "DIR"`: `stackctl deploy` sets it (by digest); apply never changes or diffs it,
    /// and creates the service or job with its kind's placeholder image.
    Deployed { build: String },
}

/// What a Cloud Run service or job derives from stack.toml the same way: its labels (stack,
/// own, ownership), its env and secret env by secret id (`None` = not managed), its identity's
/// email, and what it needs first (identity, secrets, the secret-accessor grants).
pub(crate) struct Wiring {
    pub labels: BTreeMap<String, String>,
    pub env: Option<BTreeMap<String, String>>,
    pub secrets: Option<BTreeMap<String, String>>,
    pub service_account: Option<String>,
    pub depends_on: Vec<ResourceAddr>,
}

pub(crate) fn wiring(
    stack: &Stack,
    own_labels: &BTreeMap<String, String>,
    service_account: Option<&ResourceAddr>,
    env: &BTreeMap<String, String>,
    secret_env: &BTreeMap<String, ResourceAddr>,
) -> Wiring {
    let secrets: BTreeMap<String, String> = secret_env
        .iter()
        .filter_map(|(env, addr)| Some((env.clone(), secret::id_of(stack, addr)?)))
        .collect();
    let mut depends_on: Vec<ResourceAddr> = service_account.into_iter().cloned().collect();
    depends_on.extend(secret_env.values().cloned());
    depends_on.extend(grant::secret_access_addresses(service_account, secret_env));
    depends_on.sort();
    depends_on.dedup();
    Wiring {
        labels: owned_labels(stack, own_labels),
        env: (!env.is_empty()).then(|| env.clone()),
        secrets: (!secrets.is_empty()).then_some(secrets),
        service_account: service_account.and_then(|a| service_account::email_of(stack, a)),
        depends_on,
    }
}

/// An `image` change, for a declared image only: the one `stackctl deploy` sets is never diffed.
pub(crate) fn diff_image(out: &mut Vec<FieldChange>, image: &ServiceImage, live_image: &str) {
    if let ServiceImage::Declared(image) = image {
        push_if_differs(out, "image", image.as_str(), live_image, |s| quoted(s));
    }
}

/// The plan notes of a built image (services and jobs): the placeholder it starts with, or the
/// image `stackctl deploy` set, which apply keeps. Nothing for a declared image.
pub(crate) fn image_notes(
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
pub(crate) fn image_write(image: &ServiceImage, placeholder: &str) -> ImageWrite {
    match image {
        ServiceImage::Declared(image) => ImageWrite::Set(image.clone()),
        ServiceImage::Deployed { .. } => ImageWrite::KeepDeployed {
            placeholder: placeholder.to_string(),
        },
    }
}

/// The image a `+ create` shows.
pub(crate) fn create_image(image: &ServiceImage, placeholder: &str) -> String {
    match image {
        ServiceImage::Declared(image) => quoted(image),
        ServiceImage::Deployed { .. } => format!("{} (placeholder)", quoted(placeholder)),
    }
}

/// The spec's image from the config's source.
pub(crate) fn image_of(source: &ImageSource) -> ServiceImage {
    match source {
        ImageSource::Image(image) => ServiceImage::Declared(image.clone()),
        ImageSource::Build(dir) => ServiceImage::Deployed { build: dir.clone() },
    }
}

/// A secret reference as plans show it: `"ID:VERSION"`.
fn show_secret(id: &str, version: &str) -> String {
    quoted(&format!("{id}:{version}"))
}

/// The secret id of a live reference (`projects/P/secrets/ID` or `ID`).
fn secret_id(reference: &SecretEnvRef) -> &str {
    reference
        .secret
        .rsplit('/')
        .next()
        .unwrap_or(&reference.secret)
}

/// `secrets.ENV` changes: declared secret ids at `latest`, authoritative over secret-backed vars.
fn diff_secrets(
    out: &mut Vec<FieldChange>,
    desired: &BTreeMap<String, String>,
    live: &BTreeMap<String, SecretEnvRef>,
) {
    for (env, id) in desired {
        let now = live.get(env);
        let same = now.is_some_and(|r| secret_id(r) == id && r.version == "latest");
        if !same {
            out.push(FieldChange::new(
                format!("secrets.{env}"),
                now.map(|r| show_secret(secret_id(r), &r.version)),
                Some(FieldValue::Known(show_secret(id, "latest"))),
            ));
        }
    }
    for (env, r) in live {
        if !desired.contains_key(env) {
            out.push(FieldChange::new(
                format!("secrets.{env}"),
                Some(show_secret(secret_id(r), &r.version)),
                None,
            ));
        }
    }
}

/// Secret-backed env vars as the provider writes them.
pub(crate) fn secret_refs(secrets: &BTreeMap<String, String>) -> BTreeMap<String, SecretEnvRef> {
    secrets
        .iter()
        .map(|(env, id)| {
            (
                env.clone(),
                SecretEnvRef {
                    secret: id.clone(),
                    version: "latest".into(),
                },
            )
        })
        .collect()
}

/// The live CPU limit in millicores, Cloud Run's default when unset.
pub fn live_cpu_millis(limits: &BTreeMap<String, String>) -> u32 {
    limits
        .get("cpu")
        .and_then(|c| parse_cpu(c).ok())
        .unwrap_or(SERVER_CPU_MILLIS)
}

/// The live memory limit in bytes, Cloud Run's default when unset.
pub fn live_memory_bytes(limits: &BTreeMap<String, String>) -> u64 {
    limits
        .get("memory")
        .and_then(|m| parse_memory(m).ok())
        .unwrap_or(SERVER_MEMORY_BYTES)
}

/// `cpu` and `memory` as a `+ create` shows them.
pub(crate) fn created_limits(cpu_millis: u32, memory_bytes: u64) -> [FieldChange; 2] {
    [
        created("cpu", quoted(&format_cpu(cpu_millis))),
        created("memory", quoted(&format_memory(memory_bytes))),
    ]
}

/// `cpu` and `memory` changes, compared in millicores and bytes.
pub(crate) fn diff_limits(
    out: &mut Vec<FieldChange>,
    cpu_millis: u32,
    memory_bytes: u64,
    live_limits: &BTreeMap<String, String>,
) {
    push_if_differs(out, "cpu", cpu_millis, live_cpu_millis(live_limits), |v| {
        quoted(&format_cpu(*v))
    });
    push_if_differs(
        out,
        "memory",
        memory_bytes,
        live_memory_bytes(live_limits),
        |v| quoted(&format_memory(*v)),
    );
}

/// The identity, env, secret env and labels a service or job declares; `None` = not managed.
pub(crate) struct IdentityEnvLabels<'a> {
    pub service_account: Option<&'a String>,
    pub env: Option<&'a BTreeMap<String, String>>,
    /// Env var -> secret id (latest version).
    pub secrets: Option<&'a BTreeMap<String, String>>,
    pub labels: &'a BTreeMap<String, String>,
}

impl IdentityEnvLabels<'_> {
    /// `service_account`, `env.*`, `secrets.*` and `labels.*` as a `+ create` shows them.
    pub(crate) fn push_created(&self, out: &mut Vec<FieldChange>) {
        if let Some(a) = self.service_account {
            out.push(created("service_account", quoted(a)));
        }
        for (k, v) in self.env.into_iter().flatten() {
            out.push(created(&format!("env.{k}"), quoted(v)));
        }
        for (k, id) in self.secrets.into_iter().flatten() {
            out.push(created(&format!("secrets.{k}"), show_secret(id, "latest")));
        }
        for (k, v) in self.labels {
            out.push(created(&format!("labels.{k}"), quoted(v)));
        }
    }

    /// Changes against the live container: a declared identity, env and secret env are
    /// authoritative; labels stackctl does not declare are left alone.
    pub(crate) fn push_diff(
        &self,
        out: &mut Vec<FieldChange>,
        live_account: &str,
        live_env: &BTreeMap<String, String>,
        live_secret_env: &BTreeMap<String, SecretEnvRef>,
        live_labels: &BTreeMap<String, String>,
    ) {
        if let Some(a) = self.service_account {
            push_if_differs(out, "service_account", a.as_str(), live_account, |s| {
                quoted(s)
            });
        }
        if let Some(env) = self.env {
            diff_env(out, env, live_env);
        }
        if let Some(secrets) = self.secrets {
            diff_secrets(out, secrets, live_secret_env);
        }
        diff_labels(out, "labels", self.labels, live_labels);
    }
}

/// `env.NAME` changes: the declared plain env vars are all of them.
fn diff_env(
    out: &mut Vec<FieldChange>,
    desired: &BTreeMap<String, String>,
    live: &BTreeMap<String, String>,
) {
    // Declared vars missing or different, as for labels; then the undeclared ones go.
    diff_labels(out, "env", desired, live);
    for (k, v) in live {
        if !desired.contains_key(k) {
            out.push(FieldChange::new(format!("env.{k}"), Some(quoted(v)), None));
        }
    }
}

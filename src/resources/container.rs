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
            out.push(created(&format!("env.{k}"), shown_env(k, v)));
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

/// `env.NAME` changes: the declared plain env vars are all of them. Values of secret-looking
/// names are masked ([`shown_env`]).
fn diff_env(
    out: &mut Vec<FieldChange>,
    desired: &BTreeMap<String, String>,
    live: &BTreeMap<String, String>,
) {
    // Declared vars missing or different, as for labels; then the undeclared ones go.
    for (k, v) in desired {
        if live.get(k) != Some(v) {
            out.push(FieldChange::new(
                format!("env.{k}"),
                live.get(k).map(|now| shown_env(k, now)),
                Some(FieldValue::Known(shown_env(k, v))),
            ));
        }
    }
    for (k, v) in live {
        if !desired.contains_key(k) {
            out.push(FieldChange::new(
                format!("env.{k}"),
                Some(shown_env(k, v)),
                None,
            ));
        }
    }
}

/// Parts of env var names that say the value is a credential (matched case-insensitively).
const SECRET_LOOKING: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "KEY",
    "CREDENTIAL",
    "PRIVATE",
];

/// Whether a plain env var's name says its value is a credential (`API_TOKEN`, `db_password`).
pub(crate) fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_LOOKING.iter().any(|part| upper.contains(part))
}

/// A plain env value as plans show it (text, `--json`, saved plans, apply output): quoted, or
/// `(sensitive: N chars)` when its name looks like a credential's.
pub(crate) fn shown_env(name: &str, value: &str) -> String {
    if looks_secret(name) {
        format!("(sensitive: {} chars)", value.chars().count())
    } else {
        quoted(value)
    }
}

/// The note under a change that shows masked env values: keep credentials in Secret Manager.
fn sensitive_env_note<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let names: Vec<&str> = names.into_iter().filter(|n| looks_secret(n)).collect();
    let first = names.first()?;
    Some(format!(
        "{} {}: masked in plans; keep credentials in Secret Manager instead of env: `secrets = {{ {first} = \"secret.NAME\" }}` with a [secret.NAME]",
        names
            .iter()
            .map(|n| format!("env.{n}"))
            .collect::<Vec<_>>()
            .join(", "),
        if names.len() == 1 {
            "looks secret"
        } else {
            "look secret"
        }
    ))
}

/// The masked-env note of a create: the declared env's secret-looking names.
pub(crate) fn declared_env_notes(env: Option<&BTreeMap<String, String>>) -> Vec<String> {
    sensitive_env_note(env.into_iter().flatten().map(|(k, _)| k.as_str()))
        .into_iter()
        .collect()
}

/// The masked-env note of an update: the `env.NAME` changes whose names look secret.
pub(crate) fn changed_env_notes(fields: &[FieldChange]) -> Vec<String> {
    sensitive_env_note(fields.iter().filter_map(|f| f.field.strip_prefix("env.")))
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_env_values_are_masked_and_others_shown() {
        for name in [
            "API_TOKEN",
            "db_password",
            "Stripe_Secret",
            "SIGNING_KEY",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "PRIVATE_PEM",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        assert!(!looks_secret("RUST_LOG"));
        let mut out = Vec::new();
        let desired = BTreeMap::from([
            ("RUST_LOG".to_string(), "debug".to_string()),
            ("DB_PASSWORD".to_string(), "new-pw".to_string()),
        ]);
        let live = BTreeMap::from([
            ("RUST_LOG".to_string(), "info".to_string()),
            ("DB_PASSWORD".to_string(), "old-password".to_string()),
            ("API_TOKEN".to_string(), "hunter2-canary".to_string()),
        ]);
        diff_env(&mut out, &desired, &live);
        let json = serde_json::to_string(&out).unwrap();
        assert!(!json.contains("hunter2") && !json.contains("pw") && !json.contains("password\""));
        let shown: Vec<(String, Option<String>, Option<String>)> = out
            .iter()
            .map(|c| {
                (
                    c.field.clone(),
                    c.before.clone(),
                    c.after.as_ref().map(ToString::to_string),
                )
            })
            .collect();
        assert_eq!(
            shown,
            vec![
                (
                    "env.DB_PASSWORD".into(),
                    Some("(sensitive: 12 chars)".into()),
                    Some("(sensitive: 6 chars)".into())
                ),
                (
                    "env.RUST_LOG".into(),
                    Some("\"info\"".into()),
                    Some("\"debug\"".into())
                ),
                (
                    "env.API_TOKEN".into(),
                    Some("(sensitive: 14 chars)".into()),
                    None
                ),
            ]
        );
        let notes = changed_env_notes(&out);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].contains("env.DB_PASSWORD, env.API_TOKEN")
                && notes[0].contains("secrets = { DB_PASSWORD = \"secret.NAME\" }"),
            "{notes:?}"
        );
        let mut created = Vec::new();
        IdentityEnvLabels {
            service_account: None,
            env: Some(&desired),
            secrets: None,
            labels: &BTreeMap::new(),
        }
        .push_created(&mut created);
        assert!(!serde_json::to_string(&created).unwrap().contains("new-pw"));
        assert_eq!(declared_env_notes(Some(&desired)).len(), 1);
        assert!(declared_env_notes(Some(&live.into_iter().take(0).collect())).is_empty());
    }
}

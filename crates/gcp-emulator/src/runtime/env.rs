//! The environment a local process gets, as Cloud Run gives it: the container's declared env,
//! its secret env resolved from Secret Manager at start (a missing or disabled version refuses
//! the start with Google's words), and how it reaches the local cloud (`STACKCTL_API_ENDPOINT`,
//! `GCE_METADATA_HOST`, `STACKCTL_OIDC_ISSUER`, `STACKCTL_OIDC_JWKS_URL`, and whatever `up`
//! adds, such as `FIRESTORE_EMULATOR_HOST`).

use base64::Engine as _;
use serde_json::Value;

use crate::state::State;

/// `projects/P/secrets/S/versions/V` of a Cloud Run `secretKeyRef`, in the container's project.
fn version_name(project: &str, secret: &str, version: &str) -> String {
    let secret_name = if secret.starts_with("projects/") {
        secret.to_string()
    } else {
        format!("projects/{project}/secrets/{secret}")
    };
    format!("{secret_name}/versions/{version}")
}

fn version_number(name: &str) -> u64 {
    name.rsplit('/')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn is_enabled(version: &Value) -> bool {
    version
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or("ENABLED")
        == "ENABLED"
}

/// The payload of a secret version (`latest` = the newest enabled one), as Cloud Run reads it
/// when an instance starts; `Err` is the reason the revision cannot start. Secret Manager names
/// versions by project number, references use the project id: both are looked up.
pub fn secret_payload(
    state: &State,
    project: &str,
    secret: &str,
    version: &str,
) -> Result<String, String> {
    let wanted = version_name(project, secret, version);
    let not_found = || format!("Secret {wanted} was not found");
    let by_number = wanted.replacen(
        &format!("projects/{project}/"),
        &format!("projects/{}/", crate::apis::project_number(project)),
        1,
    );
    let record = [wanted.as_str(), by_number.as_str()]
        .into_iter()
        .find_map(|candidate| {
            if version == "latest" {
                let prefix = candidate.trim_end_matches("latest");
                state
                    .secret_versions
                    .iter()
                    .filter(|(name, r)| name.starts_with(prefix) && is_enabled(&r.version))
                    .max_by_key(|(name, _)| version_number(name))
                    .map(|(_, record)| record)
            } else {
                state
                    .secret_versions
                    .get(candidate)
                    .filter(|record| is_enabled(&record.version))
            }
        })
        .ok_or_else(not_found)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&record.payload_base64)
        .map_err(|_| not_found())?;
    String::from_utf8(bytes).map_err(|_| format!("Secret {wanted} is not valid UTF-8"))
}

/// The container's env: plain values, and secrets resolved now. `Err` names the first env entry
/// whose secret cannot be read, as Cloud Run's deploy error does.
pub fn container_env(
    state: &State,
    project: &str,
    container: &Value,
    field_path: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (index, entry) in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(name) = entry.get("name").and_then(Value::as_str) else {
            continue;
        };
        if let Some(value) = entry.get("value").and_then(Value::as_str) {
            out.push((name.to_string(), value.to_string()));
        } else if let Some(reference) = entry.pointer("/valueSource/secretKeyRef") {
            let secret = reference
                .get("secret")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let version = reference
                .get("version")
                .and_then(Value::as_str)
                .unwrap_or("latest");
            let value = secret_payload(state, project, secret, version).map_err(|reason| {
                format!("{field_path}.env[{index}].value_from.secret_key_ref.name: {reason}")
            })?;
            out.push((name.to_string(), value));
        } else {
            out.push((name.to_string(), String::new()));
        }
    }
    Ok(out)
}

/// How a process reaches the local cloud.
pub fn local_cloud(emulator_url: &str, metadata: &str) -> Vec<(String, String)> {
    vec![
        ("STACKCTL_API_ENDPOINT".into(), emulator_url.to_string()),
        ("GCE_METADATA_HOST".into(), metadata.to_string()),
        (
            "STACKCTL_OIDC_ISSUER".into(),
            super::identity::ISSUER.to_string(),
        ),
        (
            "STACKCTL_OIDC_JWKS_URL".into(),
            format!("{emulator_url}{}", super::identity::JWKS_PATH),
        ),
    ]
}

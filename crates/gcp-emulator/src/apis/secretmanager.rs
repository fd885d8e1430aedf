//! Secret Manager v1 secrets and versions: create/get/list/patch/delete, `addVersion`, version
//! get/list/`:access`/`:disable`/`:enable`/`:destroy`, and secret IAM. Names carry the project *number*, as the real API
//! answers. Payloads are stored but never logged (the request log holds no bodies).

use serde_json::{Value, json};

use super::collection::{Collection, children, is_word_id, ordered, quoted_hash, remove_under};
use super::{Call, Context, Reply, iam_policy, project_number};
use crate::conventions::ApiError;
use crate::conventions::field_mask::FieldMask;
use crate::conventions::paging::{PagePolicy, paginate};
use crate::conventions::wire::timestamp;
use crate::discovery::Api;
use crate::state::SecretVersionRecord;

const SECRET_SCHEMA: &str = "Secret";

const SECRETS_POLICY: PagePolicy = PagePolicy {
    default_size: 25000,
    max_size: 25000,
    size_param: "pageSize",
    token_kind: "secrets",
};
const VERSIONS_POLICY: PagePolicy = PagePolicy {
    default_size: 25000,
    max_size: 25000,
    size_param: "pageSize",
    token_kind: "secretVersions",
};

const SECRETS: Collection = Collection {
    field: "secrets",
    policy: SECRETS_POLICY,
    map: |state| &state.secrets,
    map_mut: |state| &mut state.secrets,
    not_found: secret_not_found,
};

/// `projects/NUMBER/secrets/ID` for a path's `{projectsId}` (id or number) and `{secretsId}`.
fn secret_name(call: &Call<'_>) -> Result<String, ApiError> {
    let id = call.param("secretsId")?;
    validate_secret_id(id)?;
    Ok(format!(
        "projects/{}/secrets/{id}",
        project_number(call.param("projectsId")?)
    ))
}

fn validate_secret_id(id: &str) -> Result<(), ApiError> {
    if is_word_id(id, 255, b"_") {
        Ok(())
    } else {
        Err(ApiError::invalid_argument(format!(
            "Secret id [{id}] is invalid: it must be 1-255 characters of letters, numbers, hyphens and underscores."
        )))
    }
}

fn secret_not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Secret [{name}] not found."))
}

fn etag(seed: &str, now: &str) -> String {
    quoted_hash(&["secret-etag", seed, now], 14)
}

fn existing(context: &Context<'_>, name: &str) -> Result<Value, ApiError> {
    SECRETS.get(context.state, name)
}

/// A sent etag (non-empty) must be the secret's current one.
fn check_etag(secret: &Value, sent: Option<&str>) -> Result<(), ApiError> {
    match sent.filter(|e| !e.is_empty()) {
        Some(sent) if Some(sent) != secret.get("etag").and_then(Value::as_str) => {
            Err(ApiError::failed_precondition(
                "The etag provided in the request does not match the current etag of the secret.",
            ))
        }
        _ => Ok(()),
    }
}

pub fn create_secret(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let id = call.query.non_empty("secretId").ok_or_else(|| {
        ApiError::bad_field("secret_id", "secret_id: Required field is not set.".into())
    })?;
    validate_secret_id(id)?;
    let name = format!(
        "projects/{}/secrets/{id}",
        project_number(call.param("projectsId")?)
    );
    if SECRETS.contains(context.state, &name) {
        return Err(ApiError::already_exists(format!(
            "Secret [{name}] already exists."
        )));
    }
    let now = timestamp(call.now);
    let mut secret = call.body_or_empty();
    if secret
        .get("replication")
        .and_then(Value::as_object)
        .is_none_or(|r| r.is_empty())
    {
        secret["replication"] = json!({"automatic": {}});
    }
    secret["name"] = json!(name);
    secret["createTime"] = json!(now);
    secret["etag"] = json!(etag(&name, &now));
    let secret = ordered(
        secret.as_object().cloned().unwrap_or_default(),
        &[
            "name",
            "replication",
            "createTime",
            "labels",
            "topics",
            "expireTime",
            "ttl",
            "etag",
        ],
    );
    Ok(SECRETS.store(context.state, name, secret))
}

pub fn get_secret(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    existing(context, &secret_name(call)?).map(Reply::Json)
}

pub fn list_secrets(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let prefix = format!(
        "projects/{}/secrets/",
        project_number(call.param("projectsId")?)
    );
    let total = children(&context.state.secrets, &prefix).count();
    let mut response = SECRETS.list_where(context.state, &prefix, call.query, |_| true)?;
    response["totalSize"] = json!(total);
    Ok(Reply::Json(response))
}

pub fn patch_secret(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = secret_name(call)?;
    let mut secret = existing(context, &name)?;
    let body = call.body_or_empty();
    let mask = FieldMask::parse(
        call.query.non_empty("updateMask"),
        context.discovery,
        Api::SecretManager,
        SECRET_SCHEMA,
    )?;
    if mask.is_empty() {
        return Err(ApiError::bad_field(
            "update_mask",
            "update_mask: Required field is not set.".into(),
        ));
    }
    if mask
        .paths
        .iter()
        .any(|p| p.first().is_some_and(|f| f == "replication"))
    {
        return Err(ApiError::invalid_argument(
            "Secret.replication cannot be updated.",
        ));
    }
    check_etag(&secret, body.get("etag").and_then(Value::as_str))?;
    mask.apply(&body, &mut secret);
    secret["etag"] = json!(etag(&name, &timestamp(call.now)));
    Ok(SECRETS.store(context.state, name, secret))
}

pub fn delete_secret(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = secret_name(call)?;
    let secret = existing(context, &name)?;
    check_etag(&secret, call.query.non_empty("etag"))?;
    SECRETS.remove(context.state, &name)?;
    remove_under(
        &mut context.state.secret_versions,
        &format!("{name}/versions/"),
    );
    iam_policy::forget(context.state, &name);
    Ok(Reply::Json(json!({})))
}

pub fn secret_iam(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = secret_name(call)?;
    existing(context, &name)?;
    iam_policy::answer(context, call, &name)
}

fn version_number(name: &str) -> u64 {
    name.rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

pub fn add_version(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = secret_name(call)?;
    existing(context, &name)?;
    let data = call
        .body
        .as_ref()
        .and_then(|b| b.pointer("/payload/data"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let prefix = format!("{name}/versions/");
    let next = super::collection::entries_under(&context.state.secret_versions, &prefix)
        .map(|(v, _)| version_number(v))
        .max()
        .unwrap_or(0)
        + 1;
    let now = timestamp(call.now);
    let version_name = format!("{prefix}{next}");
    let version = json!({
        "name": version_name,
        "createTime": now,
        "state": "ENABLED",
        "replicationStatus": {"automatic": {}},
        "etag": etag(&version_name, &now),
    });
    context.state.secret_versions.insert(
        version_name,
        SecretVersionRecord {
            version: version.clone(),
            payload_base64: data,
        },
    );
    Ok(Reply::Json(version))
}

/// Resolves `latest` to the highest enabled version.
fn version_name(context: &Context<'_>, call: &Call<'_>) -> Result<String, ApiError> {
    let secret = secret_name(call)?;
    existing(context, &secret)?;
    let requested = call.param("versionsId")?;
    let prefix = format!("{secret}/versions/");
    if requested == "latest" {
        return super::collection::entries_under(&context.state.secret_versions, &prefix)
            .filter(|(_, r)| r.version.get("state").and_then(Value::as_str) == Some("ENABLED"))
            .map(|(v, _)| v.clone())
            .max_by_key(|v| version_number(v))
            .ok_or_else(|| {
                ApiError::not_found(format!("Secret [{secret}] not found or has no versions."))
            });
    }
    let name = format!("{prefix}{requested}");
    if context.state.secret_versions.contains_key(&name) {
        Ok(name)
    } else {
        Err(ApiError::not_found(format!(
            "Secret Version [{name}] not found."
        )))
    }
}

pub fn get_version(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = version_name(context, call)?;
    Ok(Reply::Json(
        context
            .state
            .secret_versions
            .get(&name)
            .map(|r| r.version.clone())
            .unwrap_or_default(),
    ))
}

pub fn access_version(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = version_name(context, call)?;
    let record = context
        .state
        .secret_versions
        .get(&name)
        .cloned()
        .unwrap_or_default();
    let state = record
        .version
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or("DISABLED");
    if state != "ENABLED" {
        return Err(ApiError::failed_precondition(format!(
            "Secret Version [{name}] is in {state} state."
        )));
    }
    let bytes = crate::conventions::wire::base64_decode(&record.payload_base64).unwrap_or_default();
    let crc = crate::conventions::wire::crc32c(&bytes);
    Ok(Reply::Json(json!({
        "name": name,
        "payload": {"data": record.payload_base64, "dataCrc32c": crc.to_string()},
    })))
}

/// `:disable`, `:enable` and `:destroy`: a version's state moves as Google's does. A sent
/// `etag` must be the version's own; a destroyed version stays destroyed (its payload is dropped,
/// `destroyTime` set), and changing it again is FAILED_PRECONDITION.
fn set_version_state(
    context: &mut Context<'_>,
    call: &Call<'_>,
    wanted: &str,
) -> Result<Reply, ApiError> {
    let name = version_name(context, call)?;
    let sent_etag = call
        .body
        .as_ref()
        .and_then(|b| b.get("etag"))
        .and_then(Value::as_str);
    let record = context
        .state
        .secret_versions
        .get_mut(&name)
        .ok_or_else(|| ApiError::not_found(format!("Secret Version [{name}] not found.")))?;
    if let Some(sent) = sent_etag.filter(|e| !e.is_empty())
        && Some(sent) != record.version.get("etag").and_then(Value::as_str)
    {
        return Err(ApiError::failed_precondition(
            "The etag provided in the request does not match the current etag of the secret version.",
        ));
    }
    if record.version.get("state").and_then(Value::as_str) == Some("DESTROYED") {
        return Err(ApiError::failed_precondition(format!(
            "Secret Version [{name}] is in DESTROYED state."
        )));
    }
    let now = timestamp(call.now);
    record.version["state"] = json!(wanted);
    record.version["etag"] = json!(etag(&format!("{name}/{wanted}"), &now));
    if wanted == "DESTROYED" {
        record.version["destroyTime"] = json!(now);
        record.payload_base64.clear();
    }
    Ok(Reply::Json(record.version.clone()))
}

pub fn disable_version(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    set_version_state(context, call, "DISABLED")
}

pub fn enable_version(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    set_version_state(context, call, "ENABLED")
}

pub fn destroy_version(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    set_version_state(context, call, "DESTROYED")
}

pub fn list_versions(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let secret = secret_name(call)?;
    existing(context, &secret)?;
    let prefix = format!("{secret}/versions/");
    // Newest first, as the real API lists them.
    let mut versions: Vec<(String, Value)> =
        super::collection::entries_under(&context.state.secret_versions, &prefix)
            .map(|(v, r)| {
                (
                    format!("{:020}", u64::MAX - version_number(v)),
                    r.version.clone(),
                )
            })
            .collect();
    versions.sort_by(|a, b| a.0.cmp(&b.0));
    let total = versions.len();
    let page = paginate(versions, |(k, _)| k.as_str(), call.query, VERSIONS_POLICY)?;
    let mut response = json!({"versions": page.items.into_iter().map(|(_, v)| v).collect::<Vec<_>>(), "totalSize": total});
    if let Some(token) = page.next_page_token {
        response["nextPageToken"] = json!(token);
    }
    Ok(Reply::Json(response))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::apis::project_number;
    use crate::server::testing::TestEmulator;

    #[tokio::test]
    async fn secrets_use_project_numbers_and_versions_never_reach_the_log() {
        let emulator = TestEmulator::with_polls(0);
        let (status, secret) = emulator
            .send(
                "POST",
                "/v1/projects/p1/secrets?secretId=db-password",
                Some(json!({"labels": {"stack": "prod"}})),
            )
            .await;
        assert_eq!(status, 200, "{secret}");
        let number = project_number("p1");
        assert_eq!(
            secret["name"],
            format!("projects/{number}/secrets/db-password")
        );
        assert_eq!(secret["replication"], json!({"automatic": {}}));
        assert!(secret["etag"].as_str().is_some_and(|e| e.starts_with('"')));
        let (status, _) = emulator
            .send(
                "POST",
                "/v1/projects/p1/secrets?secretId=db-password",
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 409);
        let (status, patched) = emulator
            .send(
                "PATCH",
                "/v1/projects/p1/secrets/db-password?updateMask=labels",
                Some(json!({"labels": {"stack": "dev"}})),
            )
            .await;
        assert_eq!(
            (status, patched["labels"]["stack"].clone()),
            (200, json!("dev"))
        );
        let (status, _) = emulator
            .send(
                "PATCH",
                "/v1/projects/p1/secrets/db-password",
                Some(json!({"labels": {}})),
            )
            .await;
        assert_eq!(status, 400, "update mask is required");
        for value in ["c2VjcmV0LTE=", "c2VjcmV0LTI="] {
            let (status, version) = emulator
                .send(
                    "POST",
                    "/v1/projects/p1/secrets/db-password:addVersion",
                    Some(json!({"payload": {"data": value}})),
                )
                .await;
            assert_eq!((status, version["state"].clone()), (200, json!("ENABLED")));
        }
        let (_, access) = emulator
            .send(
                "GET",
                &format!("/v1/projects/{number}/secrets/db-password/versions/latest:access"),
                None,
            )
            .await;
        assert_eq!(access["payload"]["data"], "c2VjcmV0LTI=");
        assert!(
            access["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("/versions/2"))
        );
        let (_, versions) = emulator
            .send("GET", "/v1/projects/p1/secrets/db-password/versions", None)
            .await;
        assert!(
            versions["versions"][0]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("/versions/2")),
            "newest first"
        );
        let (_, log) = emulator.send("GET", "/_emulator/requests", None).await;
        assert!(
            !log.to_string().contains("c2VjcmV0"),
            "payloads never appear in the request log"
        );
        let (status, _) = emulator
            .send("DELETE", "/v1/projects/p1/secrets/db-password", None)
            .await;
        assert_eq!(status, 200);
        let (status, error) = emulator
            .send("GET", "/v1/projects/p1/secrets/db-password", None)
            .await;
        assert_eq!(status, 404, "{error}");
    }

    #[tokio::test]
    async fn versions_are_disabled_enabled_and_destroyed_as_google_answers() {
        let emulator = TestEmulator::with_polls(0);
        let base = "/v1/projects/p1/secrets/api-key";
        let (status, _) = emulator
            .send(
                "POST",
                "/v1/projects/p1/secrets?secretId=api-key",
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 200);
        for value in ["b25l", "dHdv"] {
            let (status, _) = emulator
                .send(
                    "POST",
                    &format!("{base}:addVersion"),
                    Some(json!({"payload": {"data": value}})),
                )
                .await;
            assert_eq!(status, 200);
        }
        let (status, disabled) = emulator
            .send(
                "POST",
                &format!("{base}/versions/2:disable"),
                Some(json!({})),
            )
            .await;
        assert_eq!(
            (status, disabled["state"].clone()),
            (200, json!("DISABLED")),
            "{disabled}"
        );
        let (_, latest) = emulator
            .send("GET", &format!("{base}/versions/latest:access"), None)
            .await;
        assert_eq!(
            latest["payload"]["data"], "b25l",
            "latest skips the disabled version"
        );
        let (status, error) = emulator
            .send("GET", &format!("{base}/versions/2:access"), None)
            .await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error["error"]["status"], "FAILED_PRECONDITION");
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .ends_with("/versions/2] is in DISABLED state.")
        );
        let (status, error) = emulator
            .send(
                "POST",
                &format!("{base}/versions/2:enable"),
                Some(json!({"etag": "\"stale\""})),
            )
            .await;
        assert_eq!(
            (status, error["error"]["status"].clone()),
            (400, json!("FAILED_PRECONDITION"))
        );
        let (status, enabled) = emulator
            .send(
                "POST",
                &format!("{base}/versions/2:enable"),
                Some(json!({"etag": disabled["etag"]})),
            )
            .await;
        assert_eq!(
            (status, enabled["state"].clone()),
            (200, json!("ENABLED")),
            "{enabled}"
        );
        let (status, destroyed) = emulator
            .send(
                "POST",
                &format!("{base}/versions/2:destroy"),
                Some(json!({})),
            )
            .await;
        assert_eq!(
            (status, destroyed["state"].clone()),
            (200, json!("DESTROYED"))
        );
        assert!(destroyed["destroyTime"].is_string());
        let (_, latest) = emulator
            .send("GET", &format!("{base}/versions/latest:access"), None)
            .await;
        assert_eq!(latest["payload"]["data"], "b25l");
        let (status, error) = emulator
            .send("GET", &format!("{base}/versions/2:access"), None)
            .await;
        assert_eq!(status, 400);
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .ends_with("is in DESTROYED state.")
        );
        let (status, _) = emulator
            .send(
                "POST",
                &format!("{base}/versions/2:enable"),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 400, "a destroyed version cannot come back");
        let (status, _) = emulator
            .send(
                "POST",
                &format!("{base}/versions/9:disable"),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 404);
    }
}

//! API Keys v2: keys named by project number, created/patched/deleted (softly)/undeleted as
//! global operations, Google's checks on key ids and restrictions, the key string behind
//! `getKeyString`, and `keys.lookupKey`. The gateway front (`runtime::gateways`) checks callers'
//! keys through [`key_by_string`].

use serde_json::{Map, Value, json};

use super::collection::{children, named_page, ordered};
use super::lro::{self, NewOperation, as_any};
use super::{Call, Context, Reply, project_number};
use crate::conventions::ApiError;
use crate::conventions::field_mask::FieldMask;
use crate::conventions::paging::PagePolicy;
use crate::conventions::wire::{stable_hash, timestamp};
use crate::discovery::Api;
use crate::state::{ApiKeyRecord, OperationKind, State};

const KEY_TYPE_URL: &str = "type.googleapis.com/google.api.apikeys.v2.Key";
const KEYS_POLICY: PagePolicy = PagePolicy {
    default_size: 300,
    max_size: 300,
    size_param: "pageSize",
    token_kind: "keys",
};
const KEY_ORDER: &[&str] = &[
    "name",
    "uid",
    "displayName",
    "keyString",
    "createTime",
    "updateTime",
    "deleteTime",
    "annotations",
    "restrictions",
    "etag",
    "serviceAccountEmail",
];
const MUTABLE: [&str; 3] = ["displayName", "restrictions", "annotations"];
const APPLICATION_RESTRICTIONS: [&str; 4] = [
    "browserKeyRestrictions",
    "serverKeyRestrictions",
    "androidKeyRestrictions",
    "iosKeyRestrictions",
];

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Key {name} not found."))
}

fn invalid(message: String) -> ApiError {
    ApiError::invalid_argument(message)
}

/// `projects/NUMBER/locations/global`: keys are named by project number whatever the caller
/// sent.
fn parent(call: &Call<'_>) -> Result<String, ApiError> {
    let location = call.param("locationsId")?;
    if location != "global" {
        return Err(invalid(format!(
            "Location '{location}' is not supported: API keys live in location 'global'."
        )));
    }
    Ok(format!(
        "projects/{}/locations/global",
        project_number(call.param("projectsId")?)
    ))
}

fn key_name(call: &Call<'_>) -> Result<String, ApiError> {
    Ok(format!("{}/keys/{}", parent(call)?, call.param("keysId")?))
}

/// `[a-z]([a-z0-9-]{0,61}[a-z0-9])?`.
pub fn is_key_id(id: &str) -> bool {
    super::collection::is_label_id(id, 63)
}

/// `AIza` and 35 URL-safe base64 characters: 39 in all, like Google's.
fn new_key_string() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let tail: String = (0..35)
        .map(|_| char::from(ALPHABET[usize::from(rand::random::<u8>()) % 64]))
        .collect();
    format!("AIza{tail}")
}

/// At most one application restriction (browser, server, Android or iOS), and every API
/// target names a service.
fn validate_key(key: &Value) -> Result<(), ApiError> {
    if key
        .get("displayName")
        .and_then(Value::as_str)
        .is_some_and(|d| d.chars().count() > 63)
    {
        return Err(invalid(
            "key.display_name must be at most 63 characters.".into(),
        ));
    }
    let Some(restrictions) = key.get("restrictions") else {
        return Ok(());
    };
    let kinds = APPLICATION_RESTRICTIONS
        .iter()
        .filter(|kind| restrictions.get(**kind).is_some())
        .count();
    if kinds > 1 {
        return Err(invalid(
            "key.restrictions: only one of browser_key_restrictions, server_key_restrictions, android_key_restrictions or ios_key_restrictions can be set.".into(),
        ));
    }
    for (index, target) in restrictions
        .get("apiTargets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if target
            .get("service")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(invalid(format!(
                "key.restrictions.api_targets[{index}].service must be set."
            )));
        }
    }
    Ok(())
}

fn etag(name: &str, updated: &str) -> String {
    format!("W/\"{}\"", &stable_hash(&["apikey", name, updated])[..24])
}

/// Starts the (immediately finished) global operation answering `key`.
fn operate(context: &mut Context<'_>, call: &Call<'_>, target: &str, key: &Value) -> Reply {
    let number = target.split('/').nth(1).unwrap_or_default().to_string();
    let name = format!("operations/akmf.p7-{number}-{}", uuid::Uuid::new_v4());
    Reply::Json(lro::start(
        context,
        NewOperation {
            name,
            metadata: Value::Null,
            kind: OperationKind::Immediate,
            target: target.to_string(),
            new_revision: None,
            final_resource: Some(as_any(KEY_TYPE_URL, key)),
        },
        &timestamp(call.now),
    ))
}

fn stored<'s>(state: &'s State, name: &str) -> Result<&'s ApiKeyRecord, ApiError> {
    state.api_keys.get(name).ok_or_else(|| not_found(name))
}

pub fn create_key(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let parent = parent(call)?;
    let id = match call.query.non_empty("keyId") {
        Some(id) if is_key_id(id) => id.to_string(),
        Some(id) => {
            return Err(invalid(format!(
                "Invalid key id \"{id}\": it must match [a-z]([a-z0-9-]{{0,61}}[a-z0-9])?."
            )));
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let name = format!("{parent}/keys/{id}");
    if context.state.api_keys.contains_key(&name) {
        return Err(ApiError::already_exists(format!(
            "Key {name} already exists."
        )));
    }
    let body = call.body_or_empty();
    validate_key(&body)?;
    let now = timestamp(call.now);
    let mut key: Map<String, Value> = super::collection::without_name(&body);
    key.remove("etag");
    key.insert("name".into(), json!(name));
    key.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    key.insert("createTime".into(), json!(now));
    key.insert("updateTime".into(), json!(now));
    key.insert("etag".into(), json!(etag(&name, &now)));
    let key = ordered(key, KEY_ORDER);
    let key_string = new_key_string();
    context.state.api_keys.insert(
        name.clone(),
        ApiKeyRecord {
            key: key.clone(),
            key_string: key_string.clone(),
        },
    );
    // The create operation is the one answer besides getKeyString that carries the key string.
    let mut answered = key;
    answered["keyString"] = json!(key_string);
    let answered = ordered(answered.as_object().cloned().unwrap_or_default(), KEY_ORDER);
    Ok(operate(context, call, &name, &answered))
}

pub fn get_key(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = key_name(call)?;
    Ok(Reply::Json(stored(context.state, &name)?.key.clone()))
}

pub fn list_keys(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let prefix = format!("{}/keys/", parent(call)?);
    let show_deleted = call.query_bool("showDeleted")?;
    let keys: Vec<&Value> = children(&context.state.api_keys, &prefix)
        .map(|record| &record.key)
        .filter(|key| show_deleted || key.get("deleteTime").is_none())
        .collect();
    named_page(keys, "keys", call.query, KEYS_POLICY)
}

/// With a mask, its paths (display name, restrictions, annotations); without one, those of the
/// three the body sets.
pub fn patch_key(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = key_name(call)?;
    let existing = stored(context.state, &name)?.key.clone();
    if existing.get("deleteTime").is_some() {
        return Err(ApiError::failed_precondition(format!(
            "Key {name} is deleted: undelete it first."
        )));
    }
    let body = call.body_or_empty();
    let raw_mask = call.query.non_empty("updateMask");
    let mask = match raw_mask {
        Some(raw) => {
            for path in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let json_path = crate::conventions::wire::camel_case(path);
                let top = json_path.split('.').next().unwrap_or_default();
                if !MUTABLE.contains(&top) {
                    return Err(invalid(format!(
                        "Field {path} cannot be updated: only display_name, restrictions and annotations can change."
                    )));
                }
            }
            raw.to_string()
        }
        None => MUTABLE
            .iter()
            .filter(|field| body.get(**field).is_some())
            .copied()
            .collect::<Vec<_>>()
            .join(","),
    };
    let mask = FieldMask::parse(Some(&mask), context.discovery, Api::Apikeys, "V2Key")?;
    let mut key = existing;
    mask.apply(&body, &mut key);
    validate_key(&key)?;
    let now = timestamp(call.now);
    key["updateTime"] = json!(now);
    key["etag"] = json!(etag(&name, &now));
    if let Some(record) = context.state.api_keys.get_mut(&name) {
        record.key = key.clone();
    }
    Ok(operate(context, call, &name, &key))
}

fn set_deleted(
    context: &mut Context<'_>,
    call: &Call<'_>,
    deleted: bool,
) -> Result<Reply, ApiError> {
    let name = key_name(call)?;
    let now = timestamp(call.now);
    let record = context
        .state
        .api_keys
        .get_mut(&name)
        .ok_or_else(|| not_found(&name))?;
    if deleted {
        record.key["deleteTime"] = json!(now);
    } else if let Value::Object(fields) = &mut record.key {
        fields.remove("deleteTime");
    }
    record.key["updateTime"] = json!(now);
    record.key["etag"] = json!(etag(&name, &now));
    let key = record.key.clone();
    Ok(operate(context, call, &name, &key))
}

/// A soft delete: the key stays (listed with `showDeleted`) with its `deleteTime`, and stops
/// working at once.
pub fn delete_key(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    set_deleted(context, call, true)
}

pub fn undelete_key(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    set_deleted(context, call, false)
}

pub fn get_key_string(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = key_name(call)?;
    let record = stored(context.state, &name)?;
    Ok(Reply::Json(json!({"keyString": record.key_string})))
}

/// The live (not deleted) key whose string is `key_string`, with its name.
pub fn key_by_string<'s>(state: &'s State, key_string: &str) -> Option<(&'s String, &'s Value)> {
    state
        .api_keys
        .iter()
        .find(|(_, record)| {
            record.key_string == key_string && record.key.get("deleteTime").is_none()
        })
        .map(|(name, record)| (name, &record.key))
}

pub fn lookup_key(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let key_string = call.query.non_empty("keyString").ok_or_else(|| {
        ApiError::bad_field(
            "key_string",
            "key_string: Required field is not set.".into(),
        )
    })?;
    let (name, _) = key_by_string(context.state, key_string)
        .ok_or_else(|| ApiError::not_found("The API key was not found."))?;
    let parent = name.split("/keys/").next().unwrap_or_default().to_string();
    Ok(Reply::Json(json!({"parent": parent, "name": name})))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::apis::project_number;
    use crate::server::testing::TestEmulator;

    const KEYS: &str = "/v2/projects/p1/locations/global/keys";

    #[tokio::test]
    async fn keys_are_named_by_project_number_and_keep_their_string_apart() {
        let emulator = TestEmulator::with_polls(1);
        let number = project_number("p1");
        let (status, operation) = emulator
            .send(
                "POST",
                &format!("{KEYS}?keyId=storefront"),
                Some(json!({"displayName": "storefront", "restrictions": {"apiTargets": [{"service": "orders-1.apigateway.p1.cloud.goog"}]}})),
            )
            .await;
        assert_eq!(status, 200, "{operation}");
        let operation_name = operation["name"].as_str().unwrap_or_default().to_string();
        assert!(
            operation_name.starts_with("operations/akmf."),
            "{operation}"
        );
        let (_, _) = emulator
            .send("GET", &format!("/v2/{operation_name}"), None)
            .await;
        let (_, done) = emulator
            .send("GET", &format!("/v2/{operation_name}"), None)
            .await;
        assert_eq!(done["done"], true, "{done}");
        let name = format!("projects/{number}/locations/global/keys/storefront");
        assert_eq!(done["response"]["name"], name);
        let key_string = done["response"]["keyString"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            key_string.starts_with("AIza") && key_string.len() == 39,
            "{key_string}"
        );
        let (status, key) = emulator
            .send("GET", &format!("{KEYS}/storefront"), None)
            .await;
        assert_eq!(status, 200, "{key}");
        assert!(key.get("keyString").is_none(), "{key}");
        let (_, string) = emulator
            .send("GET", &format!("/v2/{name}/keyString"), None)
            .await;
        assert_eq!(string["keyString"], key_string.as_str());
        let (status, found) = emulator
            .send(
                "GET",
                &format!("/v2/keys:lookupKey?keyString={key_string}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{found}");
        assert_eq!(
            found,
            json!({"parent": format!("projects/{number}/locations/global"), "name": name})
        );
        let (status, patched) = emulator
            .send(
                "PATCH",
                &format!("{KEYS}/storefront?updateMask=restrictions"),
                Some(json!({"displayName": "ignored", "restrictions": {"serverKeyRestrictions": {"allowedIps": ["10.0.0.1"]}}})),
            )
            .await;
        assert_eq!(status, 200, "{patched}");
        let (_, key) = emulator
            .send("GET", &format!("{KEYS}/storefront"), None)
            .await;
        assert_eq!(key["displayName"], "storefront");
        assert!(key["restrictions"].get("apiTargets").is_none(), "{key}");
        let (status, _) = emulator
            .send("DELETE", &format!("{KEYS}/storefront"), None)
            .await;
        assert_eq!(status, 200);
        let (_, key) = emulator
            .send("GET", &format!("{KEYS}/storefront"), None)
            .await;
        assert!(key["deleteTime"].is_string(), "{key}");
        let (_, listed) = emulator.send("GET", KEYS, None).await;
        assert!(listed.get("keys").is_none(), "{listed}");
        let (_, listed) = emulator
            .send("GET", &format!("{KEYS}?showDeleted=true"), None)
            .await;
        assert_eq!(listed["keys"].as_array().map(Vec::len), Some(1));
        let (status, _) = emulator
            .send(
                "GET",
                &format!("/v2/keys:lookupKey?keyString={key_string}"),
                None,
            )
            .await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn keys_are_refused_as_google_refuses_them() {
        let emulator = TestEmulator::with_polls(0);
        for (what, id, body) in [
            ("an id with a capital", "Key1", json!({})),
            ("an id ending in a hyphen", "key-", json!({})),
            (
                "two application restrictions",
                "k1",
                json!({"restrictions": {"serverKeyRestrictions": {}, "browserKeyRestrictions": {}}}),
            ),
            (
                "a target without a service",
                "k2",
                json!({"restrictions": {"apiTargets": [{"methods": ["*"]}]}}),
            ),
            ("an unknown field", "k3", json!({"restriction": {}})),
            (
                "a long display name",
                "k4",
                json!({"displayName": "x".repeat(64)}),
            ),
        ] {
            let (status, answer) = emulator
                .send("POST", &format!("{KEYS}?keyId={id}"), Some(body))
                .await;
            assert_eq!(status, 400, "{what}: {answer}");
        }
        let (status, _) = emulator
            .send(
                "POST",
                "/v2/projects/p1/locations/us-central1/keys?keyId=k5",
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 400);
    }
}

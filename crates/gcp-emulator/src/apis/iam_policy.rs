//! Resource-level IAM policies (`getIamPolicy` / `setIamPolicy` / `testIamPermissions`) for every
//! emulated resource kind: one store keyed by resource name, Google's etag read-modify-write
//! rule, member validation, and the normalization IAM applies to stored policies.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Call, Context, Reply};
use crate::conventions::ApiError;
use crate::conventions::wire::{base64, stable_hash};
use crate::state::State;

/// The etag of a policy that was never written.
pub const EMPTY_POLICY_ETAG: &str = "ACAB";
pub const CONCURRENT_CHANGE: &str = "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.";

/// Which of the three IAM methods a route is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyMethod {
    Get,
    Set,
    Test,
}

impl PolicyMethod {
    pub fn of(call: &Call<'_>) -> Self {
        match call.route.verb.as_deref() {
            Some("setIamPolicy") => PolicyMethod::Set,
            Some("testIamPermissions") => PolicyMethod::Test,
            _ => PolicyMethod::Get,
        }
    }
}

/// Answers an IAM method on `resource`, whose existence the caller already checked.
pub fn answer(
    context: &mut Context<'_>,
    call: &Call<'_>,
    resource: &str,
) -> Result<Reply, ApiError> {
    match PolicyMethod::of(call) {
        PolicyMethod::Get => Ok(Reply::Json(policy_of(context.state, resource))),
        PolicyMethod::Set => {
            set_policy(context.state, resource, &call.body_or_empty()).map(Reply::Json)
        }
        PolicyMethod::Test => {
            let denied = std::env::var(crate::ENV_DENIED_PERMISSIONS).unwrap_or_default();
            let permissions: Vec<Value> = call
                .body
                .as_ref()
                .and_then(|b| b.get("permissions"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|p| !p.as_str().is_some_and(|p| is_denied(&denied, p, resource)))
                .cloned()
                .collect();
            Ok(Reply::Json(json!({ "permissions": permissions })))
        }
    }
}

/// Whether `denied` (the comma-separated [`crate::ENV_DENIED_PERMISSIONS`]) takes `permission`
/// away on `resource`: a bare permission everywhere, `PERMISSION@NAME` only on the resource
/// named `NAME` (`projects/P/locations/L/queues/Q`; `projects/P` is the project).
fn is_denied(denied: &str, permission: &str, resource: &str) -> bool {
    denied
        .split(',')
        .map(str::trim)
        .any(|entry| match entry.split_once('@') {
            Some((p, on)) => p == permission && on == resource,
            None => entry == permission,
        })
}

/// The stored policy of `resource`, or the empty policy (`{version: 1, etag: "ACAB"}`).
pub fn policy_of(state: &State, resource: &str) -> Value {
    state
        .iam_policies
        .get(resource)
        .cloned()
        .unwrap_or_else(|| json!({ "version": 1, "etag": EMPTY_POLICY_ETAG }))
}

/// Whether `email` (a service account, or a user) holds one of `roles` on any of `resources`
/// (a resource and the parents that pass their grants down), directly or through
/// `allUsers`/`allAuthenticatedUsers`; `None` is an unauthenticated caller (only `allUsers`).
pub fn holds_role(state: &State, resources: &[&str], roles: &[&str], email: Option<&str>) -> bool {
    let members: Vec<String> = match email {
        Some(email) => vec![
            format!("serviceAccount:{email}"),
            format!("user:{email}"),
            "allUsers".into(),
            "allAuthenticatedUsers".into(),
        ],
        None => vec!["allUsers".into()],
    };
    resources
        .iter()
        .filter_map(|resource| state.iam_policies.get(*resource))
        .flat_map(|policy| {
            policy
                .get("bindings")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter(|binding| {
            binding
                .get("role")
                .and_then(Value::as_str)
                .is_some_and(|role| roles.contains(&role))
        })
        .flat_map(|binding| {
            binding
                .get("members")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(Value::as_str)
        .any(|member| members.iter().any(|wanted| wanted == member))
}

/// IAM's refusal of a caller that lacks `permission` on `resource`.
pub fn permission_denied(permission: &str, resource: &str) -> ApiError {
    ApiError::new(
        crate::conventions::Code::PermissionDenied,
        format!(
            "The principal (user or service account) lacks IAM permission \"{permission}\" for the resource \"{resource}\" (or the resource may not exist)."
        ),
    )
}

/// Forgets the policy of a deleted resource.
pub fn forget(state: &mut State, resource: &str) {
    state.iam_policies.remove(resource);
}

fn policy_etag(resource: &str, writes: u64) -> String {
    let digest = stable_hash(&["iam-policy", resource, &writes.to_string()]);
    let bytes = hex::decode(&digest[..16]).unwrap_or_default();
    base64(&bytes)
}

/// `setIamPolicy`: checks the etag (empty = unconditional), validates and normalizes bindings.
pub fn set_policy(state: &mut State, resource: &str, request: &Value) -> Result<Value, ApiError> {
    let Some(policy) = request.get("policy").filter(|p| p.is_object()) else {
        return Err(ApiError::bad_field(
            "policy",
            "policy: Required field is not set.".into(),
        ));
    };
    let current = policy_of(state, resource);
    if let Some(sent) = policy
        .get("etag")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        && Some(sent) != current.get("etag").and_then(Value::as_str)
    {
        return Err(ApiError::aborted(CONCURRENT_CHANGE));
    }
    let requested_version = policy.get("version").and_then(Value::as_i64).unwrap_or(0);
    let bindings = normalize_bindings(state, policy.get("bindings"), requested_version)?;
    let has_conditions = bindings.iter().any(|b| b.get("condition").is_some());
    let writes = state
        .iam_policy_writes
        .entry(resource.to_string())
        .or_insert(0);
    *writes += 1;
    let mut stored = json!({
        "version": if has_conditions { 3 } else { 1 },
        "etag": policy_etag(resource, *writes),
    });
    if !bindings.is_empty() {
        stored["bindings"] = Value::Array(bindings);
    }
    if let Some(audit) = policy
        .get("auditConfigs")
        .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
    {
        stored["auditConfigs"] = audit.clone();
    }
    state
        .iam_policies
        .insert(resource.to_string(), stored.clone());
    Ok(stored)
}

/// Merges bindings with the same role and condition, sorts and dedupes members, drops empty
/// bindings, and sorts by role, as IAM stores policies.
fn normalize_bindings(
    state: &State,
    bindings: Option<&Value>,
    requested_version: i64,
) -> Result<Vec<Value>, ApiError> {
    let mut merged: BTreeMap<(String, String), (Option<Value>, Vec<String>)> = BTreeMap::new();
    for binding in bindings
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        let role = binding
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or_default();
        validate_role(role)?;
        let condition = binding
            .get("condition")
            .filter(|c| c.as_object().is_some_and(|c| !c.is_empty()))
            .cloned();
        if condition.is_some() && requested_version < 3 {
            return Err(ApiError::invalid_argument(format!(
                "Invalid policy version {requested_version}: policies with conditional role bindings must specify version 3."
            )));
        }
        if let Some(condition) = &condition
            && condition
                .get("expression")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            return Err(ApiError::invalid_argument(format!(
                "Condition of the binding for role {role} has an empty expression: {condition}."
            )));
        }
        let key = (
            role.to_string(),
            condition.as_ref().map(Value::to_string).unwrap_or_default(),
        );
        let entry = merged
            .entry(key)
            .or_insert_with(|| (condition.clone(), Vec::new()));
        for member in binding
            .get("members")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
        {
            let member = member.as_str().unwrap_or_default();
            validate_member(state, member)?;
            entry.1.push(canonical_member(member));
        }
    }
    Ok(merged
        .into_iter()
        .filter_map(|((role, _), (condition, mut members))| {
            members.sort();
            members.dedup();
            if members.is_empty() {
                return None;
            }
            let mut binding = json!({ "role": role, "members": members });
            if let Some(condition) = condition {
                binding["condition"] = condition;
            }
            Some(binding)
        })
        .collect())
}

fn validate_role(role: &str) -> Result<(), ApiError> {
    let custom = |prefix: &str| {
        role.strip_prefix(prefix)
            .and_then(|rest| rest.split_once("/roles/"))
            .is_some_and(|(owner, name)| !owner.is_empty() && !name.is_empty())
    };
    let valid = role
        .strip_prefix("roles/")
        .is_some_and(|r| !r.is_empty() && !r.contains('/'))
        || custom("projects/")
        || custom("organizations/");
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid_argument(format!(
            "Role ({role}) does not exist in the resource's hierarchy."
        )))
    }
}

/// Member types are case-insensitive on input and lower-cased (emails included) when stored.
fn canonical_member(member: &str) -> String {
    match member.split_once(':') {
        Some((kind, value)) if !member.starts_with("principal") && kind != "deleted" => {
            format!("{kind}:{}", value.to_ascii_lowercase())
        }
        _ => member.to_string(),
    }
}

/// The `serviceAccount:` members whose accounts the emulator manages: user-managed accounts
/// `ID@PROJECT.iam.gserviceaccount.com` (not Google-managed agents like `service-N@gcp-sa-*`).
fn is_user_managed_account(email: &str) -> bool {
    email
        .split_once('@')
        .and_then(|(_, domain)| domain.strip_suffix(".iam.gserviceaccount.com"))
        .is_some_and(|project| !project.starts_with("gcp-sa-") && !project.contains('.'))
}

fn validate_member(state: &State, member: &str) -> Result<(), ApiError> {
    const EMAIL_KINDS: [&str; 3] = ["user", "serviceAccount", "group"];
    if matches!(member, "allUsers" | "allAuthenticatedUsers")
        || member.starts_with("principal://")
        || member.starts_with("principalSet://")
        || member.starts_with("deleted:")
    {
        return Ok(());
    }
    let Some((kind, value)) = member.split_once(':') else {
        return Err(invalid_member(member));
    };
    let email_like = value
        .split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
    let valid = match kind {
        k if EMAIL_KINDS.contains(&k) => email_like,
        "domain" => value.contains('.') && !value.contains('@'),
        "projectOwner" | "projectEditor" | "projectViewer" => !value.is_empty(),
        _ => false,
    };
    if !valid {
        return Err(invalid_member(member));
    }
    if kind == "serviceAccount" && is_user_managed_account(value) {
        let email = value.to_ascii_lowercase();
        if !state.service_accounts.contains_key(&email) {
            return Err(ApiError::invalid_argument(format!(
                "Service account {value} does not exist."
            )));
        }
    }
    Ok(())
}

fn invalid_member(member: &str) -> ApiError {
    ApiError::invalid_argument(format!(
        "Invalid member \"{member}\": policy members must be of the form \"<type>:<value>\"."
    ))
}

/// After a service account is deleted, IAM shows its bindings as `deleted:serviceAccount:...`.
pub fn mark_account_deleted(state: &mut State, email: &str, unique_id: &str) {
    let live = format!("serviceAccount:{email}");
    let dead = format!("deleted:serviceAccount:{email}?uid={unique_id}");
    for policy in state.iam_policies.values_mut() {
        if let Some(Value::Array(bindings)) = policy.get_mut("bindings") {
            for binding in bindings {
                if let Some(Value::Array(members)) = binding.get_mut("members") {
                    for member in members.iter_mut() {
                        if member.as_str() == Some(live.as_str()) {
                            *member = json!(dead);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn policies_are_normalized_and_etags_guard_concurrent_writes() {
        let mut state = State::empty();
        let empty = policy_of(&state, "projects/p/secrets/s");
        assert_eq!(empty, json!({"version": 1, "etag": "ACAB"}));
        let request = json!({"policy": {"etag": "ACAB", "bindings": [
            {"role": "roles/viewer", "members": ["user:B@example.com", "user:a@example.com"]},
            {"role": "roles/editor", "members": ["group:g@example.com"]},
            {"role": "roles/viewer", "members": ["user:a@example.com"]},
            {"role": "roles/owner", "members": []}]}});
        let stored = set_policy(&mut state, "projects/p/secrets/s", &request).expect("set");
        assert_eq!(stored["version"], 1);
        assert_eq!(
            stored["bindings"],
            json!([
            {"role": "roles/editor", "members": ["group:g@example.com"]},
            {"role": "roles/viewer", "members": ["user:a@example.com", "user:b@example.com"]}])
        );
        let etag = stored["etag"].as_str().expect("etag").to_string();
        assert_eq!(etag.len(), 12, "8 bytes of base64: {etag}");
        let stale = set_policy(&mut state, "projects/p/secrets/s", &request).expect_err("stale");
        assert_eq!(
            (stale.http_status(), stale.message.as_str()),
            (409, CONCURRENT_CHANGE)
        );
        let unconditional = json!({"policy": {"bindings": []}});
        let cleared = set_policy(&mut state, "projects/p/secrets/s", &unconditional).expect("set");
        assert!(cleared.get("bindings").is_none());
        assert_ne!(cleared["etag"], json!(etag));
    }

    #[test]
    fn a_denied_permission_is_taken_away_everywhere_or_on_the_one_resource_named() {
        let queue = "projects/p/locations/us-central1/queues/webhooks";
        let denied = format!("run.services.create, cloudtasks.queues.update@{queue}");
        assert!(is_denied(&denied, "run.services.create", "projects/p"));
        assert!(is_denied(&denied, "run.services.create", queue));
        assert!(is_denied(&denied, "cloudtasks.queues.update", queue));
        assert!(!is_denied(
            &denied,
            "cloudtasks.queues.update",
            "projects/p"
        ));
        assert!(!is_denied(
            &denied,
            "cloudtasks.queues.update",
            "projects/p/locations/us-central1/queues/orders"
        ));
        assert!(!is_denied(&denied, "cloudtasks.queues.get", queue));
        assert!(!is_denied("", "cloudtasks.queues.get", queue));
    }

    #[test]
    fn members_are_validated_and_missing_service_accounts_refused() {
        let mut state = State::empty();
        let with = |member: &str| json!({"policy": {"bindings": [{"role": "roles/run.invoker", "members": [member]}]}});
        for bad in ["bob@example.com", "user:nobody", "robot:x@y.z"] {
            assert_eq!(
                set_policy(&mut state, "r", &with(bad)).map_err(|e| e.http_status()),
                Err(400),
                "{bad}"
            );
        }
        let missing = set_policy(
            &mut state,
            "r",
            &with("serviceAccount:app@p1.iam.gserviceaccount.com"),
        )
        .expect_err("missing SA");
        assert_eq!(
            missing.message,
            "Service account app@p1.iam.gserviceaccount.com does not exist."
        );
        for ok in [
            "allUsers",
            "domain:example.com",
            "serviceAccount:123-compute@developer.gserviceaccount.com",
            "serviceAccount:service-1@gcp-sa-cloudscheduler.iam.gserviceaccount.com",
        ] {
            assert!(set_policy(&mut state, "r", &with(ok)).is_ok(), "{ok}");
        }
        let conditional = json!({"policy": {"bindings": [{"role": "roles/viewer", "members": ["allUsers"],
            "condition": {"title": "t", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"}}]}});
        assert!(
            set_policy(&mut state, "r", &conditional).is_err(),
            "needs version 3"
        );
        let mut v3 = conditional.clone();
        v3["policy"]["version"] = json!(3);
        assert_eq!(set_policy(&mut state, "r", &v3).expect("v3")["version"], 3);
        assert!(
            set_policy(
                &mut state,
                "r",
                &json!({"policy": {"bindings": [{"role": "viewer", "members": ["allUsers"]}]}})
            )
            .is_err()
        );
    }
}

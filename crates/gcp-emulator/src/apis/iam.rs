//! IAM v1 service accounts (create/get/list/patch/delete) and their own IAM policies.

use serde_json::{Value, json};

use super::collection::list_response;
use super::{Call, Context, Reply, iam_policy};
use crate::conventions::ApiError;
use crate::conventions::paging::{PagePolicy, paginate};
use crate::conventions::wire::stable_hash;

/// "The default is 20, and the maximum is 100."
const LIST_POLICY: PagePolicy = PagePolicy {
    default_size: 20,
    max_size: 100,
    size_param: "pageSize",
    token_kind: "serviceAccounts",
};

/// Real IAM answers the same (deprecated) etag for every service account.
const ACCOUNT_ETAG: &str = "MDEwMjE5MjA=";

fn not_found() -> ApiError {
    ApiError::not_found("Unknown service account")
}

/// `ID@PROJECT.iam.gserviceaccount.com`
pub fn account_email(account_id: &str, project: &str) -> String {
    format!("{account_id}@{project}.iam.gserviceaccount.com")
}

/// The 21-digit unique id (also the OAuth2 client id) of an account.
fn unique_id(email: &str) -> String {
    let digest = stable_hash(&["service-account-unique-id", email]);
    let value = u128::from_str_radix(&digest[..30], 16).unwrap_or(0);
    (100_000_000_000_000_000_000u128 + value % 100_000_000_000_000_000_000u128).to_string()
}

fn validate_account_id(account_id: &str) -> Result<(), ApiError> {
    let bytes = account_id.as_bytes();
    let valid = (6..=30).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.last() != Some(&b'-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_field(
            "account_id",
            format!(
                "Invalid value at 'account_id' (TYPE_STRING), \"{account_id}\": account ids are 6-30 characters \
                 matching [a-z]([-a-z0-9]*[a-z0-9])."
            ),
        ))
    }
}

/// Finds an account by the `{serviceAccountsId}` of a path: an email or a unique id.
fn find_account<'s>(context: &'s Context<'_>, call: &Call<'_>) -> Result<&'s Value, ApiError> {
    let key = call.param("serviceAccountsId")?;
    let project = call.param("projectsId")?;
    let account = if key.contains('@') {
        context
            .state
            .service_accounts
            .get(&key.to_ascii_lowercase())
    } else {
        context
            .state
            .service_accounts
            .values()
            .find(|a| a.get("uniqueId").and_then(Value::as_str) == Some(key))
    };
    account
        .filter(|a| project == "-" || a.get("projectId").and_then(Value::as_str) == Some(project))
        .ok_or_else(not_found)
}

fn email_of(account: &Value) -> String {
    account
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub fn create_account(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let project = call.param("projectsId")?.to_string();
    let body = call.body_or_empty();
    let account_id = body
        .get("accountId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    validate_account_id(account_id)?;
    let email = account_email(account_id, &project);
    if context.state.service_accounts.contains_key(&email) {
        return Err(ApiError::already_exists(format!(
            "Service account {account_id} already exists within project projects/{project}."
        )));
    }
    let requested = body
        .get("serviceAccount")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let id = unique_id(&email);
    let mut account = json!({
        "name": format!("projects/{project}/serviceAccounts/{email}"),
        "projectId": project,
        "uniqueId": id,
        "email": email,
        "etag": ACCOUNT_ETAG,
        "oauth2ClientId": id,
    });
    for field in ["displayName", "description"] {
        if let Some(value) = requested
            .get(field)
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        {
            account[field] = value.clone();
        }
    }
    context
        .state
        .service_accounts
        .insert(email, account.clone());
    Ok(Reply::Json(account))
}

pub fn get_account(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    find_account(context, call).cloned().map(Reply::Json)
}

pub fn list_accounts(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let project = call.param("projectsId")?;
    let accounts: Vec<&Value> = context
        .state
        .service_accounts
        .values()
        .filter(|a| a.get("projectId").and_then(Value::as_str) == Some(project))
        .collect();
    let page = paginate(
        accounts,
        |a| a.get("email").and_then(Value::as_str).unwrap_or_default(),
        call.query,
        LIST_POLICY,
    )?;
    Ok(Reply::Json(list_response("accounts", page)))
}

/// `PATCH` with `{serviceAccount, updateMask}`: only `displayName` and `description` change.
pub fn patch_account(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let email = email_of(find_account(context, call)?);
    let body = call.body_or_empty();
    let changes = body
        .get("serviceAccount")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mask: Vec<String> = body
        .get("updateMask")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split(',')
        .map(|p| crate::conventions::wire::camel_case(p.trim()))
        .filter(|p| !p.is_empty())
        .collect();
    if mask.is_empty() {
        return Err(ApiError::bad_field(
            "update_mask",
            "update_mask: Required field is not set.".into(),
        ));
    }
    let account = context
        .state
        .service_accounts
        .get_mut(&email)
        .ok_or_else(not_found)?;
    for path in &mask {
        if !matches!(path.as_str(), "displayName" | "description") {
            return Err(ApiError::invalid_argument(format!(
                "Invalid update mask path \"{path}\": only display_name and description can be updated."
            )));
        }
        match changes
            .get(path)
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        {
            Some(value) => account[path.as_str()] = value.clone(),
            None => {
                if let Value::Object(fields) = account {
                    fields.remove(path);
                }
            }
        }
    }
    Ok(Reply::Json(account.clone()))
}

pub fn delete_account(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let account = find_account(context, call)?.clone();
    let email = email_of(&account);
    context.state.service_accounts.remove(&email);
    let name = account
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    iam_policy::forget(context.state, &name);
    let id = account
        .get("uniqueId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    iam_policy::mark_account_deleted(context.state, &email, id);
    Ok(Reply::Json(json!({})))
}

pub fn account_iam(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = find_account(context, call)?
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    iam_policy::answer(context, call, &name)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::server::testing::TestEmulator;

    #[tokio::test]
    async fn accounts_round_trip_and_gate_policy_members() {
        let emulator = TestEmulator::with_polls(0);
        let body = json!({"accountId": "app-runner", "serviceAccount": {"displayName": "App"}});
        let (status, account) = emulator
            .send(
                "POST",
                "/v1/projects/p1/serviceAccounts",
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 200, "{account}");
        assert_eq!(account["email"], "app-runner@p1.iam.gserviceaccount.com");
        assert_eq!(
            account["name"],
            "projects/p1/serviceAccounts/app-runner@p1.iam.gserviceaccount.com"
        );
        assert_eq!(account["uniqueId"].as_str().map(str::len), Some(21));
        assert_eq!(account["uniqueId"], account["oauth2ClientId"]);
        let (status, error) = emulator
            .send("POST", "/v1/projects/p1/serviceAccounts", Some(body))
            .await;
        assert_eq!(
            (status, error["error"]["status"].clone()),
            (409, json!("ALREADY_EXISTS"))
        );
        let (status, _) = emulator
            .send(
                "POST",
                "/v1/projects/p1/serviceAccounts",
                Some(json!({"accountId": "Bad"})),
            )
            .await;
        assert_eq!(status, 400);
        let unique = account["uniqueId"].as_str().unwrap_or_default();
        let (status, by_id) = emulator
            .send(
                "GET",
                &format!("/v1/projects/-/serviceAccounts/{unique}"),
                None,
            )
            .await;
        assert_eq!(
            (status, by_id["email"].clone()),
            (200, account["email"].clone())
        );
        let (status, missing) = emulator
            .send(
                "GET",
                "/v1/projects/p1/serviceAccounts/nope@p1.iam.gserviceaccount.com",
                None,
            )
            .await;
        assert_eq!(
            (status, missing["error"]["message"].clone()),
            (404, json!("Unknown service account"))
        );
        let url = "/v1/projects/p1/serviceAccounts/app-runner@p1.iam.gserviceaccount.com";
        let (_, patched) = emulator
            .send(
                "PATCH",
                url,
                Some(
                    json!({"serviceAccount": {"description": "runs"}, "updateMask": "description"}),
                ),
            )
            .await;
        assert_eq!(
            (
                patched["description"].clone(),
                patched["displayName"].clone()
            ),
            (json!("runs"), json!("App"))
        );
        let (_, list) = emulator
            .send("GET", "/v1/projects/p1/serviceAccounts?pageSize=0", None)
            .await;
        assert_eq!(list["accounts"].as_array().map(Vec::len), Some(1));

        // The account may now be bound on another resource; deleting it marks the binding.
        let binding = json!({"policy": {"bindings": [{"role": "roles/viewer",
            "members": ["serviceAccount:app-runner@p1.iam.gserviceaccount.com"]}]}});
        let (status, policy) = emulator
            .send(
                "POST",
                "/v3/projects/p1:setIamPolicy",
                Some(binding.clone()),
            )
            .await;
        assert_eq!(status, 200, "{policy}");
        let (status, own) = emulator
            .send("POST", &format!("{url}:getIamPolicy"), None)
            .await;
        assert_eq!((status, own["etag"].clone()), (200, json!("ACAB")));
        let (status, _) = emulator.send("DELETE", url, None).await;
        assert_eq!(status, 200);
        let (_, policy) = emulator
            .send("POST", "/v3/projects/p1:getIamPolicy", Some(json!({})))
            .await;
        assert!(
            policy["bindings"][0]["members"][0]
                .as_str()
                .is_some_and(|m| m.starts_with("deleted:serviceAccount:app-runner@"))
        );
        let (status, error) = emulator
            .send("POST", "/v3/projects/p1:setIamPolicy", Some(binding))
            .await;
        assert_eq!(status, 400, "{error}");
    }
}

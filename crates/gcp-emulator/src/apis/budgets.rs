//! Cloud Billing Budgets v1: budgets under a billing account (server-assigned UUID ids), the
//! defaults the real API echoes, project-number filters, etags, and both patch modes.

use serde_json::{Map, Value, json};

use super::{Call, Context, Reply};
use crate::conventions::ApiError;
use crate::conventions::field_mask::FieldMask;
use crate::conventions::paging::PagePolicy;
use crate::conventions::wire::stable_hash;
use crate::discovery::Api;

const BUDGET_SCHEMA: &str = "GoogleCloudBillingBudgetsV1Budget";
/// "The default and maximum value are 100."
const LIST_POLICY: PagePolicy = PagePolicy {
    default_size: 100,
    max_size: 100,
    size_param: "pageSize",
    token_kind: "budgets",
};
const INVALID: &str = "Request contains an invalid argument.";

fn budget_name(call: &Call<'_>) -> Result<String, ApiError> {
    Ok(format!(
        "billingAccounts/{}/budgets/{}",
        call.param("billingAccountsId")?,
        call.param("budgetsId")?
    ))
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("Budget {name} not found."))
}

/// The etag follows the content: any change gives a new one.
fn etag(name: &str, budget: &Value) -> String {
    stable_hash(&["budget-etag", name, &budget.to_string()])[..16].to_string()
}

/// Validates a budget and fills the defaults: credit treatment, calendar period, spend basis,
/// Pub/Sub schema version.
fn shaped(mut budget: Value) -> Result<Value, ApiError> {
    let display_name = budget
        .get("displayName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if display_name.chars().count() > 60 {
        return Err(ApiError::bad_field(
            "budget.display_name",
            "budget.display_name: must be at most 60 characters.".into(),
        ));
    }
    let amount = budget
        .get("amount")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match (
        amount.get("specifiedAmount"),
        amount.get("lastPeriodAmount"),
    ) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(ApiError::bad_field(
                "budget.amount",
                "budget.amount: exactly one of specified_amount or last_period_amount must be set."
                    .into(),
            ));
        }
        (Some(money), None)
            if money
                .get("currencyCode")
                .and_then(Value::as_str)
                .is_some_and(|c| c.len() != 3) =>
        {
            return Err(ApiError::invalid_argument(INVALID));
        }
        _ => {}
    }
    let filter = budget
        .get("budgetFilter")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut filter = filter.as_object().cloned().unwrap_or_default();
    for project in filter
        .get("projects")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
    {
        let valid = project
            .as_str()
            .and_then(|p| p.strip_prefix("projects/"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !valid {
            return Err(ApiError::invalid_argument(INVALID));
        }
    }
    if filter
        .get("creditTypesTreatment")
        .and_then(Value::as_str)
        .is_none_or(|t| t == "CREDIT_TYPES_TREATMENT_UNSPECIFIED")
    {
        filter.insert("creditTypesTreatment".into(), json!("INCLUDE_ALL_CREDITS"));
    }
    if !filter.contains_key("customPeriod")
        && filter
            .get("calendarPeriod")
            .and_then(Value::as_str)
            .is_none_or(|p| p == "CALENDAR_PERIOD_UNSPECIFIED")
    {
        filter.insert("calendarPeriod".into(), json!("MONTH"));
    }
    budget["budgetFilter"] = Value::Object(filter);
    if let Some(Value::Array(rules)) = budget.get_mut("thresholdRules") {
        for rule in rules.iter_mut() {
            if rule
                .get("thresholdPercent")
                .and_then(Value::as_f64)
                .is_none_or(|p| p <= 0.0)
            {
                return Err(ApiError::bad_field(
                    "budget.threshold_rules",
                    "budget.threshold_rules: threshold_percent must be positive.".into(),
                ));
            }
            if rule
                .get("spendBasis")
                .and_then(Value::as_str)
                .is_none_or(|b| b == "BASIS_UNSPECIFIED")
            {
                rule["spendBasis"] = json!("CURRENT_SPEND");
            }
        }
    }
    if let Some(Value::Object(rule)) = budget.get_mut("notificationsRule") {
        if rule
            .get("pubsubTopic")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty())
        {
            rule.entry("schemaVersion").or_insert_with(|| json!("1.0"));
        }
        if rule
            .get("monitoringNotificationChannels")
            .and_then(Value::as_array)
            .is_some_and(|c| c.len() > 5)
        {
            return Err(ApiError::invalid_argument(INVALID));
        }
    }
    Ok(super::collection::ordered(
        budget.as_object().cloned().unwrap_or_default(),
        &[
            "name",
            "displayName",
            "budgetFilter",
            "amount",
            "thresholdRules",
            "notificationsRule",
            "etag",
            "ownershipScope",
        ],
    ))
}

fn store(context: &mut Context<'_>, name: &str, mut budget: Value) -> Value {
    budget["name"] = json!(name);
    if let Value::Object(fields) = &mut budget {
        fields.remove("etag");
    }
    budget["etag"] = json!(etag(name, &budget));
    context
        .state
        .budgets
        .insert(name.to_string(), budget.clone());
    budget
}

pub fn create_budget(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = format!(
        "billingAccounts/{}/budgets/{}",
        call.param("billingAccountsId")?,
        uuid::Uuid::new_v4()
    );
    let budget = shaped(call.body_or_empty())?;
    Ok(Reply::Json(store(context, &name, budget)))
}

pub fn get_budget(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = budget_name(call)?;
    context
        .state
        .budgets
        .get(&name)
        .cloned()
        .map(Reply::Json)
        .ok_or_else(|| not_found(&name))
}

pub fn list_budgets(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let prefix = format!(
        "billingAccounts/{}/budgets/",
        call.param("billingAccountsId")?
    );
    let scope = call.query.non_empty("scope");
    let budgets: Vec<&Value> = super::collection::children(&context.state.budgets, &prefix)
        .filter(|b| {
            scope.is_none_or(|s| {
                b.pointer("/budgetFilter/projects")
                    .and_then(Value::as_array)
                    .is_some_and(|p| p.iter().any(|p| p.as_str() == Some(s)))
            })
        })
        .collect();
    super::collection::named_page(budgets, "budgets", call.query, LIST_POLICY)
}

/// Without a mask, only fields with non-default values in the request are updated.
pub fn patch_budget(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = budget_name(call)?;
    let existing = context
        .state
        .budgets
        .get(&name)
        .cloned()
        .ok_or_else(|| not_found(&name))?;
    let body = call.body_or_empty();
    if let Some(sent) = body
        .get("etag")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
        && Some(sent) != existing.get("etag").and_then(Value::as_str)
    {
        return Err(ApiError::aborted(
            "The budget was modified concurrently: the etag does not match.",
        ));
    }
    let mask = FieldMask::parse(
        call.query.non_empty("updateMask"),
        context.discovery,
        Api::BillingBudgets,
        BUDGET_SCHEMA,
    )?;
    let mut budget = existing.clone();
    if mask.is_empty() {
        let fields: Map<String, Value> = body.as_object().cloned().unwrap_or_default();
        for (key, value) in fields {
            let is_default = match &value {
                Value::String(s) => s.is_empty(),
                Value::Bool(b) => !b,
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                Value::Null => true,
                Value::Number(n) => n.as_f64() == Some(0.0),
            };
            if !is_default && !matches!(key.as_str(), "name" | "etag") {
                budget[key.as_str()] = value;
            }
        }
    } else {
        mask.apply(&body, &mut budget);
    }
    let budget = shaped(budget)?;
    Ok(Reply::Json(store(context, &name, budget)))
}

pub fn delete_budget(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = budget_name(call)?;
    context
        .state
        .budgets
        .remove(&name)
        .ok_or_else(|| not_found(&name))?;
    Ok(Reply::Json(json!({})))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::server::testing::TestEmulator;

    const PARENT: &str = "/v1/billingAccounts/0123AB-4567CD-89EF01/budgets";

    #[tokio::test]
    async fn budgets_echo_defaults_and_reject_project_ids() {
        let emulator = TestEmulator::with_polls(0);
        let body = json!({"displayName": "stackctl/prod", "budgetFilter": {"projects": ["projects/123456789012"]},
            "amount": {"specifiedAmount": {"currencyCode": "USD", "units": 50}},
            "thresholdRules": [{"thresholdPercent": 0.5}, {"thresholdPercent": 1.0, "spendBasis": "FORECASTED_SPEND"}]});
        let (status, budget) = emulator.send("POST", PARENT, Some(body.clone())).await;
        assert_eq!(status, 200, "{budget}");
        let name = budget["name"].as_str().unwrap_or_default().to_string();
        assert_eq!(
            name.len(),
            "billingAccounts/0123AB-4567CD-89EF01/budgets/".len() + 36
        );
        assert_eq!(
            budget["budgetFilter"]["creditTypesTreatment"],
            "INCLUDE_ALL_CREDITS"
        );
        assert_eq!(budget["budgetFilter"]["calendarPeriod"], "MONTH");
        assert_eq!(budget["thresholdRules"][0]["spendBasis"], "CURRENT_SPEND");
        assert_eq!(budget["amount"]["specifiedAmount"]["units"], "50");
        let mut by_id = body.clone();
        by_id["budgetFilter"]["projects"] = json!(["projects/my-project"]);
        let (status, error) = emulator.send("POST", PARENT, Some(by_id)).await;
        assert_eq!(
            (status, error["error"]["message"].clone()),
            (400, json!("Request contains an invalid argument."))
        );
        let mut long = body.clone();
        long["displayName"] = json!("x".repeat(61));
        assert_eq!(emulator.send("POST", PARENT, Some(long)).await.0, 400);

        let (_, patched) = emulator
            .send(
                "PATCH",
                &format!("/v1/{name}"),
                Some(json!({"displayName": "renamed", "thresholdRules": []})),
            )
            .await;
        assert_eq!(patched["displayName"], "renamed");
        assert_eq!(
            patched["thresholdRules"].as_array().map(Vec::len),
            Some(2),
            "empty (default) fields are not applied without a mask"
        );
        assert_ne!(patched["etag"], budget["etag"]);
        let (_, masked) = emulator
            .send(
                "PATCH",
                &format!("/v1/{name}?updateMask=thresholdRules"),
                Some(json!({})),
            )
            .await;
        assert!(masked.get("thresholdRules").is_none());
        let (status, _) = emulator
            .send(
                "PATCH",
                &format!("/v1/{name}"),
                Some(json!({"etag": budget["etag"], "displayName": "x"})),
            )
            .await;
        assert_eq!(status, 409, "stale etag");
        let (_, list) = emulator
            .send(
                "GET",
                &format!("{PARENT}?scope=projects%2F123456789012"),
                None,
            )
            .await;
        assert_eq!(list["budgets"].as_array().map(Vec::len), Some(1));
        let (status, _) = emulator.send("DELETE", &format!("/v1/{name}"), None).await;
        assert_eq!(status, 200);
        assert_eq!(
            emulator.send("GET", &format!("/v1/{name}"), None).await.0,
            404
        );
    }
}

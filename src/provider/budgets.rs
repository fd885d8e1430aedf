//! Billing Budgets v1 through a small typed REST module (there is no official Rust crate):
//! budgets of one billing account, with server-assigned ids.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::Cloud;
use super::error::{ApiError, RetryObserver};
use super::rest::{ListCall, MoneyWire};
use super::retry::retrying;

pub use crate::model::live::budgets::{BudgetRecord, MoneyAmount};

pub const GOOGLE_BUDGETS: &str = "https://billingbudgets.googleapis.com";

/// The fields stackctl manages, as `updateMask` paths.
const MANAGED_FIELDS: &str = "displayName,budgetFilter.projects,amount.specifiedAmount,thresholdRules,notificationsRule.monitoringNotificationChannels";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Amount {
    #[serde(default)]
    specified_amount: Option<MoneyWire>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    projects: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThresholdRule {
    #[serde(default)]
    threshold_percent: f64,
    /// `CURRENT_SPEND` (the default when absent) or `FORECASTED_SPEND`.
    #[serde(default)]
    spend_basis: Option<String>,
}

impl ThresholdRule {
    fn forecast(&self) -> bool {
        self.spend_basis.as_deref() == Some("FORECASTED_SPEND")
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notifications {
    #[serde(default)]
    monitoring_notification_channels: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BudgetWire {
    name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    budget_filter: Option<Filter>,
    #[serde(default)]
    amount: Option<Amount>,
    #[serde(default)]
    threshold_rules: Vec<ThresholdRule>,
    #[serde(default)]
    notifications_rule: Option<Notifications>,
    #[serde(default)]
    etag: String,
}

impl From<BudgetWire> for BudgetRecord {
    fn from(w: BudgetWire) -> Self {
        Self {
            name: w.name,
            display_name: w.display_name,
            projects: w.budget_filter.map(|f| f.projects).unwrap_or_default(),
            amount: w
                .amount
                .and_then(|a| a.specified_amount)
                .map(|m| MoneyAmount {
                    currency: m.currency_code,
                    units: m.units.unwrap_or(0),
                    nanos: m.nanos,
                }),
            thresholds: w
                .threshold_rules
                .iter()
                .filter(|t| !t.forecast())
                .map(|t| t.threshold_percent)
                .collect(),
            forecast_thresholds: w
                .threshold_rules
                .iter()
                .filter(|t| t.forecast())
                .map(|t| t.threshold_percent)
                .collect(),
            channels: w
                .notifications_rule
                .map(|n| n.monitoring_notification_channels)
                .unwrap_or_default(),
            etag: w.etag,
        }
    }
}

/// What stackctl writes on a budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetWrite {
    pub display_name: String,
    /// `projects/NUMBER`
    pub project: String,
    pub amount: MoneyAmount,
    pub thresholds: Vec<f64>,
    pub forecast_thresholds: Vec<f64>,
    pub channels: Vec<String>,
}

impl BudgetWrite {
    /// Whether `live` is the budget this write makes: its display name, amount and filter.
    pub fn made(&self, live: &BudgetRecord) -> bool {
        live.display_name == self.display_name
            && live.projects == [self.project.clone()]
            && live.amount.as_ref() == Some(&self.amount)
    }

    fn body(&self) -> serde_json::Value {
        let rules: Vec<_> = self
            .thresholds
            .iter()
            .map(|t| serde_json::json!({"thresholdPercent": t, "spendBasis": "CURRENT_SPEND"}))
            .chain(self.forecast_thresholds.iter().map(
                |t| serde_json::json!({"thresholdPercent": t, "spendBasis": "FORECASTED_SPEND"}),
            ))
            .collect();
        serde_json::json!({
            "displayName": self.display_name,
            "budgetFilter": {"projects": [self.project]},
            "amount": {"specifiedAmount": {
                "currencyCode": self.amount.currency,
                "units": self.amount.units.to_string(),
                "nanos": self.amount.nanos,
            }},
            "thresholdRules": rules,
            "notificationsRule": {"monitoringNotificationChannels": self.channels},
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BudgetList {
    #[serde(default)]
    budgets: Vec<BudgetWire>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl Cloud {
    /// Every budget of the billing account.
    pub async fn list_budgets(
        &self,
        billing_account: &str,
        observer: &dyn RetryObserver,
    ) -> Result<Vec<BudgetRecord>, ApiError> {
        let parent = format!("billingAccounts/{billing_account}");
        let path = format!("/v1/{parent}/budgets");
        let list = ListCall {
            call: "billingbudgets.budgets.list",
            resource: &parent,
            path: &path,
            query: &[],
        };
        self.budgets
            .list_all(list, self.backoff, observer, |page: BudgetList| {
                let budgets = page.budgets.into_iter().map(BudgetRecord::from);
                (budgets.collect(), page.next_page_token)
            })
            .await
    }

    /// Creates a budget; the server assigns its name. Not retried on ambiguous failures
    /// (a retry could create a second budget): the caller records the name in the ledger.
    pub async fn create_budget(
        &self,
        billing_account: &str,
        write: &BudgetWrite,
        observer: &dyn RetryObserver,
    ) -> Result<BudgetRecord, ApiError> {
        let parent = format!("billingAccounts/{billing_account}");
        let path = format!("/v1/{parent}/budgets");
        let attempts = std::sync::atomic::AtomicU32::new(0);
        retrying(self.backoff, observer, || async {
            // A budget create is not idempotent (the id is the server's): before a retry, look
            // for what the failed attempt may have made, so a retry never makes a duplicate.
            if attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) > 0
                && let Some(made) = self
                    .list_budgets(billing_account, &super::Silent)
                    .await?
                    .into_iter()
                    .find(|b| write.made(b))
            {
                return Ok(made);
            }
            self.budgets
                .json::<BudgetWire>(
                    "billingbudgets.budgets.create",
                    &parent,
                    self.budgets
                        .request(Method::POST, &path)
                        .json(&write.body()),
                )
                .await
                .map(BudgetRecord::from)
        })
        .await
    }

    /// Writes every managed field (`updateMask` lists exactly them).
    pub async fn update_budget(
        &self,
        name: &str,
        write: &BudgetWrite,
        observer: &dyn RetryObserver,
    ) -> Result<BudgetRecord, ApiError> {
        let path = format!("/v1/{name}");
        retrying(self.backoff, observer, || async {
            let req = self
                .budgets
                .request(Method::PATCH, &path)
                .query(&[("updateMask", MANAGED_FIELDS)])
                .json(&write.body());
            self.budgets
                .json::<BudgetWire>("billingbudgets.budgets.patch", name, req)
                .await
                .map(BudgetRecord::from)
        })
        .await
    }

    pub async fn delete_budget(
        &self,
        name: &str,
        observer: &dyn RetryObserver,
    ) -> Result<(), ApiError> {
        let path = format!("/v1/{name}");
        self.budgets
            .delete(
                "billingbudgets.budgets.delete",
                name,
                &path,
                self.backoff,
                observer,
            )
            .await
    }
}

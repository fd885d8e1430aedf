//! Billing Budgets live records: a budget and the money amounts it holds.

use serde::{Deserialize, Serialize};

/// A budget as the API reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetRecord {
    /// `billingAccounts/A/budgets/ID` (server-assigned).
    pub name: String,
    pub display_name: String,
    /// `projects/NUMBER` entries of the filter.
    pub projects: Vec<String>,
    /// The specified amount; `None` when the budget uses last period's spend.
    pub amount: Option<MoneyAmount>,
    /// Threshold rules on current spend, as fractions of the amount.
    pub thresholds: Vec<f64>,
    /// Threshold rules on forecasted spend (`spendBasis = FORECASTED_SPEND`).
    pub forecast_thresholds: Vec<f64>,
    pub channels: Vec<String>,
    pub etag: String,
}

/// `google.type.Money`: whole units plus nanos (10^-9 units).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyAmount {
    pub currency: String,
    pub units: i64,
    pub nanos: i32,
}

//! `[budget.NAME]`: a Billing budget's keys, defaults and checks.

use super::*;

/// Budgets above this are refused: no real budget is that large, and the Billing Budget API's
/// money amounts are whole units in an int64 plus nanos, so huge floats cannot be sent exactly.
const MAX_AMOUNT_USD: f64 = 1e12;

pub(super) const BUDGET_KEYS: &[&str] =
    &["amount_usd", "forecast_thresholds", "notify", "thresholds"];

pub(super) const DEFAULT_THRESHOLDS: [f64; 3] = [0.5, 0.9, 1.0];

/// Budget display names (`sc:<stack>:<name>`) are at most 60 characters.
const MAX_DISPLAY_NAME: usize = 60;

/// A budget sends to at most five Monitoring channels.
const MAX_BUDGET_CHANNELS: usize = 5;

pub(super) fn read_budget(
    checker: &mut Checker,
    table: &TableRef,
    stack_name: Option<&str>,
    billing_account: Option<&str>,
    declared: &Declared,
) -> Option<BudgetConfig> {
    checker.check_keys(table, BUDGET_KEYS);
    let mut ok = true;
    if billing_account.is_none() {
        ok = false;
        checker.error(
            table.span.clone(),
            format!("{} needs `billing_account` in [stack]", table.title),
            Some("add billing_account = \"XXXXXX-XXXXXX-XXXXXX\" to [stack] (budgets live in the billing account)".into()),
        );
    }
    if let Some(stack) = stack_name {
        let display = format!("sc:{stack}:{}", table.name);
        if display.len() > MAX_DISPLAY_NAME {
            ok = false;
            checker.error(
                table.name_span.clone(),
                format!("the budget's display name `{display}` is longer than 60 characters"),
                Some("use a shorter budget name (stackctl names budgets sc:<stack>:<name>)".into()),
            );
        }
    }
    let amount = checker.read_number(table, "amount_usd").required(
        checker,
        table,
        "amount_usd",
        "add amount_usd = 300 (the monthly budget in US dollars)".into(),
    );
    if let Some(Field {
        value,
        span: Some(span),
    }) = &amount
        && !(*value > 0.0 && *value < MAX_AMOUNT_USD)
    {
        ok = false;
        let why = if *value > 0.0 {
            "must be below 1000000000000 (one trillion US dollars)"
        } else {
            "must be above 0"
        };
        checker.error(
            span.clone(),
            format!(
                "`amount_usd` in {} {why}, found {}",
                table.title,
                if value.abs() >= 1e15 {
                    format!("{value:e}")
                } else {
                    value.to_string()
                }
            ),
            Some("write the monthly budget in US dollars, e.g. amount_usd = 300".into()),
        );
    }
    let thresholds = read_thresholds(checker, table, "thresholds", &DEFAULT_THRESHOLDS, &mut ok);
    let forecast_thresholds = read_thresholds(checker, table, "forecast_thresholds", &[], &mut ok);
    let notify = checker
        .read_reference_list_at(table, "notify", Kind::Channel, declared)
        .or_default(Vec::new());
    if let Some(Field {
        value,
        span: Some(span),
    }) = &notify
        && value.len() > MAX_BUDGET_CHANNELS
    {
        ok = false;
        checker.error(
            span.clone(),
            format!(
                "{} notifies {} channels; budgets allow at most 5",
                table.title,
                value.len()
            ),
            None,
        );
    }
    let (amount, thresholds, forecast_thresholds, notify) =
        (amount?, thresholds?, forecast_thresholds?, notify?);
    ok.then_some(BudgetConfig {
        amount_usd: amount.value,
        thresholds: thresholds.value,
        forecast_thresholds: forecast_thresholds.value,
        notify: notify.value,
    })
}

/// `key = [fractions]`: each in (0, 10], none twice; `thresholds` may not be empty.
fn read_thresholds(
    checker: &mut Checker,
    table: &TableRef,
    key: &str,
    default: &[f64],
    ok: &mut bool,
) -> Option<Field<Vec<f64>>> {
    let thresholds = checker
        .read_number_list(table, key)
        .or_default(default.to_vec());
    if let Some(Field {
        value,
        span: Some(span),
    }) = &thresholds
    {
        if value.is_empty() && key == "thresholds" {
            *ok = false;
            checker.error(
                span.clone(),
                format!("`{key}` in {} is empty", table.title),
                Some("write thresholds = [0.5, 0.9, 1.0] (fractions of amount_usd)".into()),
            );
        }
        for t in value {
            if !(*t > 0.0 && *t <= 10.0) {
                *ok = false;
                checker.error(
                    span.clone(),
                    format!(
                        "threshold {t} in {} is not a fraction of the amount between 0 and 10",
                        table.title
                    ),
                    Some("thresholds are fractions: 0.5 is 50% of amount_usd, 1.0 is 100%".into()),
                );
            }
        }
        let mut sorted = value.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            *ok = false;
            checker.error(
                span.clone(),
                format!("`{key}` in {} lists a value twice", table.title),
                Some("remove the duplicate".into()),
            );
        }
    }
    thresholds
}

//! The billing rule (BU1): a project that no budget of its billing account covers.

use super::{RuleContext, finding};
use crate::audit::{Finding, Rule, Severity};
use crate::provider::budgets::BudgetRecord;

pub(super) fn no_budget(context: &RuleContext) -> Vec<Finding> {
    let Some(scope) = &context.inventory.budgets else {
        return vec![];
    };
    let project = &context.inventory.project;
    let covers = |b: &BudgetRecord| {
        b.projects.is_empty()
            || b.projects
                .iter()
                .any(|p| p == &scope.project_number || p == &format!("projects/{project}"))
    };
    if scope.budgets.iter().any(covers) {
        return vec![];
    }
    vec![finding(
        Rule::NoBudget,
        &format!("projects/{project}"),
        format!(
            "none of the {} budget(s) of billing account {} covers {} ({project}): overspend alerts nobody",
            scope.budgets.len(),
            scope.billing_account,
            scope.project_number
        ),
        None,
        Severity::Medium,
        "add a [budget.monthly] table (amount_usd, thresholds, notify) to stack.toml, then `stackctl apply`"
            .into(),
    )]
}

#[cfg(test)]
mod tests {
    use super::super::pending;
    use super::super::tests::{inventory, run_audit};
    use crate::audit::{Severity, Signals};

    #[test]
    fn a_project_without_a_covering_budget_is_found_and_no_account_is_not_checked() {
        use crate::audit::BudgetScope;
        use crate::provider::budgets::BudgetRecord;
        let budget = |projects: &[&str]| BudgetRecord {
            name: "billingAccounts/A/budgets/b".into(),
            display_name: "b".into(),
            projects: projects.iter().map(|p| p.to_string()).collect(),
            amount: None,
            thresholds: vec![],
            forecast_thresholds: vec![],
            channels: vec![],
            etag: String::new(),
        };
        let mut inv = inventory(vec![], vec![]);
        assert_eq!(pending(&inv, &Signals::default()).len(), 1);
        assert_eq!(run_audit(&inv, &Signals::default()), vec![]);
        let scope = |budgets| {
            Some(BudgetScope {
                billing_account: "A".into(),
                project_number: "projects/123".into(),
                budgets,
            })
        };
        inv.budgets = scope(vec![budget(&["projects/999"])]);
        assert_eq!(pending(&inv, &Signals::default()), vec![]);
        assert_eq!(
            run_audit(&inv, &Signals::default()),
            vec![("p".into(), "BU1", None, Severity::Medium)]
        );
        inv.budgets = scope(vec![budget(&["projects/999"]), budget(&["projects/123"])]);
        assert_eq!(run_audit(&inv, &Signals::default()), vec![]);
        // A budget without a project filter covers the whole account.
        inv.budgets = scope(vec![budget(&[])]);
        assert_eq!(run_audit(&inv, &Signals::default()), vec![]);
    }
}

//! The starter stacks `stackctl init` writes: the fragments in `templates/init/` (compiled into
//! the binary), put together for the parts chosen and filled in with the answers. Pure text.

use std::fmt;

/// A part of a starter stack, as the wizard offers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// A Cloud Tasks queue feeding a capped Cloud Run worker, with their identities.
    Webhooks,
    /// An hourly Cloud Run job loading orders into a partitioned BigQuery table.
    Ingestion,
    /// A private CRM proxy behind API Gateway, with an API key and a per-project quota.
    CrmGateway,
    /// An email channel, alert policies on what the other parts run, and a budget when a
    /// billing account is given.
    BudgetAndAlerts,
}

impl Part {
    pub const ALL: [Part; 4] = [
        Part::Webhooks,
        Part::Ingestion,
        Part::CrmGateway,
        Part::BudgetAndAlerts,
    ];
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Webhooks => "webhooks: Cloud Tasks queue -> capped Cloud Run worker",
            Part::Ingestion => "ingestion: hourly Cloud Run job -> BigQuery orders table",
            Part::CrmGateway => "CRM gateway: API Gateway with API keys -> private CRM proxy",
            Part::BudgetAndAlerts => "budget and alerts: email channel, alert policies, budget",
        })
    }
}

/// Everything a starter stack is made from; each value already checked (see [`Answers::check`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Answers {
    pub name: String,
    pub project: String,
    pub region: String,
    pub parts: Vec<Part>,
    /// Where alerts go (with [`Part::BudgetAndAlerts`]).
    pub alert_email: String,
    /// Budgets live in a billing account; without one no budget is written.
    pub billing_account: Option<String>,
    pub budget_usd: u32,
}

/// The placeholder alert address when none is given; the file says to change it.
pub const PLACEHOLDER_EMAIL: &str = "ops@example.com";

/// A file `stackctl init` writes, relative to the stack file's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StarterFile {
    pub path: &'static str,
    pub text: String,
}

const HEADER: &str = include_str!("../../templates/init/stack.toml");
const WEBHOOKS: &str = include_str!("../../templates/init/webhooks.toml");
const INGESTION: &str = include_str!("../../templates/init/ingestion.toml");
const ALERTS: &str = include_str!("../../templates/init/alerts.toml");
const ALERTS_WEBHOOKS: &str = include_str!("../../templates/init/alerts-webhooks.toml");
const ALERTS_INGESTION: &str = include_str!("../../templates/init/alerts-ingestion.toml");
const BUDGET: &str = include_str!("../../templates/init/budget.toml");
const CRM_GATEWAY: &str = include_str!("../../templates/init/crm-gateway.toml");
const ORDERS_SCHEMA: &str = include_str!("../../schemas/orders.json");

/// Where the ingestion part's table schema goes, beside the stack file.
pub const ORDERS_SCHEMA_PATH: &str = "schemas/orders.json";

/// Checks for a valid email address to put in a TOML string: `name@domain`, nothing to escape.
pub fn is_email(text: &str) -> bool {
    let ok_chars = !text
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\' | ','));
    matches!(text.split_once('@'), Some((user, domain))
        if !user.is_empty() && domain.contains('.') && !domain.contains('@') && !domain.ends_with('.'))
        && ok_chars
}

impl Answers {
    /// Every value that would make an invalid stack file, as one message per value naming the
    /// rule; empty when all are fine.
    pub fn check(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if !super::is_stack_name(&self.name) {
            errors.push(format!(
                "stack name {:?} is not valid: it becomes a label value, so lowercase letters, digits, `-` and `_`, starting with a letter, at most 63 characters",
                self.name
            ));
        }
        if !super::is_project_id(&self.project) {
            errors.push(format!(
                "project {:?} is not a valid GCP project id: 6 to 30 lowercase letters, digits and `-`, starting with a letter and not ending with `-`",
                self.project
            ));
        }
        if !super::is_region(&self.region) {
            errors.push(format!(
                "region {:?} is not a GCP region: write one like us-central1 or europe-west1",
                self.region
            ));
        }
        if !is_email(&self.alert_email) {
            errors.push(format!(
                "alert email {:?} is not an email address",
                self.alert_email
            ));
        }
        if let Some(account) = &self.billing_account
            && !super::is_billing_account(account)
        {
            errors.push(format!(
                "billing account {account:?} is not a billing account id: they look like 012345-6789AB-CDEF01 (see `gcloud billing accounts list`)"
            ));
        }
        if self.budget_usd == 0 {
            errors.push("the budget must be at least 1 USD".to_string());
        }
        errors
    }

    /// The stack file and the schema files its parts name.
    pub fn files(&self) -> Vec<StarterFile> {
        let has = |part| self.parts.contains(&part);
        let alerts = has(Part::BudgetAndAlerts);
        let budget = alerts && self.billing_account.is_some();
        let billing_line = match &self.billing_account {
            Some(account) if budget => {
                format!("billing_account = \"{account}\"   # budgets live in the billing account\n")
            }
            _ => String::new(),
        };
        let mut text = HEADER.to_string();
        let fragments = [
            (has(Part::Webhooks), WEBHOOKS),
            (has(Part::Ingestion), INGESTION),
            (has(Part::CrmGateway), CRM_GATEWAY),
            (alerts, ALERTS),
            (alerts && has(Part::Webhooks), ALERTS_WEBHOOKS),
            (alerts && has(Part::Ingestion), ALERTS_INGESTION),
            (budget, BUDGET),
        ];
        for (wanted, fragment) in fragments {
            if wanted {
                text.push_str(fragment);
            }
        }
        let email_note = if self.alert_email == PLACEHOLDER_EMAIL {
            "\"   # a placeholder: put your on-call address here"
        } else {
            "\""
        };
        let text = text
            .replace("{{name}}", &self.name)
            .replace("{{project}}", &self.project)
            .replace("{{region}}", &self.region)
            .replace("{{billing_account}}\n", &billing_line)
            .replace("{{email}}\"", &format!("{}{email_note}", self.alert_email))
            .replace("{{budget_usd}}", &self.budget_usd.to_string());
        let mut files = vec![StarterFile {
            path: "stack.toml",
            text,
        }];
        if has(Part::Ingestion) {
            files.push(StarterFile {
                path: ORDERS_SCHEMA_PATH,
                text: ORDERS_SCHEMA.to_string(),
            });
        }
        files
    }
}

/// A stack name from a directory name: lowercase, other characters as `-`, starting with a
/// letter; `shop` when nothing usable is left.
pub fn stack_name_from(dir_name: &str) -> String {
    let mut name: String = dir_name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while !name.starts_with(|c: char| c.is_ascii_lowercase()) && !name.is_empty() {
        name.remove(0);
    }
    name.truncate(63);
    let name = name.trim_end_matches('-').to_string();
    if super::is_stack_name(&name) {
        name
    } else {
        "shop".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(parts: &[Part], billing_account: Option<&str>) -> Answers {
        Answers {
            name: "shop".into(),
            project: "acme-shop-dev".into(),
            region: "europe-west1".into(),
            parts: parts.to_vec(),
            alert_email: PLACEHOLDER_EMAIL.into(),
            billing_account: billing_account.map(String::from),
            budget_usd: 150,
        }
    }

    /// Writes the files into a temporary directory and loads the stack file from there.
    fn load(answers: &Answers) -> crate::config::Stack {
        let dir = tempfile::tempdir().unwrap();
        for file in answers.files() {
            let path = dir.path().join(file.path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, file.text).unwrap();
        }
        crate::config::load(&dir.path().join("stack.toml"))
            .unwrap_or_else(|errors| panic!("{errors}"))
    }

    #[test]
    fn every_combination_of_parts_validates() {
        for mask in 0..16u8 {
            let parts: Vec<Part> = Part::ALL
                .into_iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, p)| p)
                .collect();
            for billing in [None, Some("012345-6789AB-CDEF01")] {
                let stack = load(&answers(&parts, billing));
                assert_eq!(stack.settings.project, "acme-shop-dev");
                assert_eq!(stack.settings.region, "europe-west1");
                assert_eq!(
                    stack.services.contains_key("worker"),
                    parts.contains(&Part::Webhooks)
                );
                assert_eq!(
                    stack.tables.contains_key("orders"),
                    parts.contains(&Part::Ingestion)
                );
                assert_eq!(
                    stack.gateways.contains_key("crm") && stack.api_keys.contains_key("partner"),
                    parts.contains(&Part::CrmGateway)
                );
                assert_eq!(
                    stack.budgets.contains_key("monthly"),
                    parts.contains(&Part::BudgetAndAlerts) && billing.is_some()
                );
            }
        }
    }

    #[test]
    fn the_full_starter_is_priced_from_its_usage_and_names_the_placeholder_email() {
        let all = answers(&Part::ALL, Some("012345-6789AB-CDEF01"));
        let stack = load(&all);
        let prices = crate::cost::PriceTable::builtin("europe-west1");
        let cost = crate::cost::stack_cost(
            &stack,
            &prices,
            crate::resources::registry::declared_costs(&stack, &prices),
        );
        assert!(cost.unknown.is_empty(), "{:?}", cost.unknown);
        let text = &all.files()[0].text;
        assert!(
            text.contains("email = \"ops@example.com\"   # a placeholder"),
            "{text}"
        );
        assert!(text.contains("amount_usd = 150"), "{text}");
        assert!(!text.contains("{{"), "{text}");
    }

    #[test]
    fn bad_answers_are_named_and_directory_names_become_stack_names() {
        let mut bad = answers(&Part::ALL, Some("nope"));
        bad.project = "Acme".into();
        bad.region = "mars".into();
        bad.alert_email = "ops\"@x.com".into();
        let errors = bad.check();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].starts_with("project \"Acme\""), "{errors:?}");
        assert!(answers(&Part::ALL, None).check().is_empty());
        assert_eq!(stack_name_from("My Shop.2026"), "my-shop-2026");
        assert_eq!(stack_name_from("42"), "shop");
        assert_eq!(stack_name_from("_x"), "x");
    }
}

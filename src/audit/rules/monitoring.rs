//! The Cloud Monitoring rule (OB3): alert policies that notify nobody, because they name no
//! channel or every channel they name was deleted.

use super::{RuleContext, alert_cost, finding, owned_fix, short};
use crate::audit::{Finding, Rule, Severity};

pub(super) fn alert_without_channels(context: &RuleContext) -> Vec<Finding> {
    context
        .inventory
        .alerts
        .iter()
        .filter(|a| {
            a.channels
                .iter()
                .all(|c| !context.inventory.channels.contains(c))
        })
        .map(|alert| {
            let conditions = alert.conditions.len();
            let waste = alert_cost(context, alert);
            let id = short(&alert.name);
            let why = if alert.channels.is_empty() {
                "no notificationChannels".to_string()
            } else {
                format!(
                    "only deleted notificationChannels ({})",
                    alert.channels.join(", ")
                )
            };
            finding(
                Rule::AlertWithoutChannels,
                &alert.name,
                format!(
                    "`{}` ({}) has {conditions} condition(s) and {why}: an incident notifies nobody",
                    alert.display_name,
                    if alert.enabled { "enabled" } else { "disabled" }
                ),
                Some(waste),
                Severity::of_waste(waste).max(Severity::Medium),
                owned_fix(
                    &alert.user_labels,
                    "alert",
                    id,
                    "set notify = [\"channel.NAME\"]",
                    format!(
                        "gcloud alpha monitoring policies update {id} --add-notification-channels CHANNEL, or delete it"
                    ),
                ),
            )
        })
        .collect()
}

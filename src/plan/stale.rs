//! The stale-plan check: a saved plan applies only if nothing it planned against has changed.

use super::{Action, Observed, Plan, current_fingerprint};

/// What changed in the cloud since `plan` was made, one line per change; empty = still current.
pub fn stale_changes(plan: &Plan, observed: &Observed) -> Vec<String> {
    let mut stale = Vec::new();
    for change in &plan.changes {
        let now = current_fingerprint(observed, change);
        match (change.action, &change.fingerprint, now) {
            // A create planned over something live (a grant on a resource it replaces)
            // carries that thing's fingerprint; it falls through to the comparison below.
            (Action::Create, None, Some(_)) => stale.push(format!(
                "{} was created since the plan was made",
                change.address
            )),
            (Action::Create, None, None) => {}
            (_, Some(_), None) => stale.push(format!("{} no longer exists", change.address)),
            (_, Some(planned), Some(now)) if *planned != now => stale.push(format!(
                "{} changed since the plan was made",
                change.address
            )),
            _ => {}
        }
    }
    stale
}

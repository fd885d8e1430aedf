//! The order of a plan's changes: API enablement first, then explicit references (identities ->
//! services/jobs -> queues/IAM -> schedules follow from them), and deletes in reverse.

use crate::model::Kind;
use crate::plan::{Action, Plan};
use crate::resources::registry::tier;

fn is_removal(action: Action) -> bool {
    matches!(action, Action::Delete | Action::Retire)
}

/// How early a removal of `kind` goes: deeper tiers first, and a grant (tier 3) before every
/// other kind of its tier and above, since a grant is on a resource (a queue, a service, a
/// secret, an identity) whose deletion would make its revoke fail; schedules (tier 4) still go
/// before the grants that let them call their job.
fn removal_depth(kind: Kind) -> u8 {
    2 * tier(kind) + u8::from(kind == Kind::Grant)
}

/// For each change (by index), the changes that must finish first.
pub fn prerequisites(plan: &Plan) -> Vec<Vec<usize>> {
    let changes = &plan.changes;
    changes
        .iter()
        .map(|change| {
            changes
                .iter()
                .enumerate()
                .filter(|(_, other)| other.address != change.address)
                .filter(|(_, other)| {
                    if is_removal(change.action) {
                        // Remove dependents before what they depend on.
                        is_removal(other.action)
                            && removal_depth(other.address.kind)
                                > removal_depth(change.address.kind)
                    } else {
                        !is_removal(other.action)
                            && (change.depends_on.contains(&other.address)
                                // Nothing can be created through an API before it is enabled.
                                || (other.address.kind == Kind::Api
                                    && change.address.kind != Kind::Api))
                    }
                })
                .map(|(i, _)| i)
                .collect()
        })
        .collect()
}

/// Every index that (transitively) waits for `failed`.
pub fn dependents_of(prereqs: &[Vec<usize>], failed: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut stack = vec![failed];
    while let Some(current) = stack.pop() {
        for (i, p) in prereqs.iter().enumerate() {
            if p.contains(&current) && !out.contains(&i) {
                out.push(i);
                stack.push(i);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, ResourceAddr};
    use crate::plan::{PlanTarget, ResourceChange};

    fn change(addr: &str, action: Action, deps: &[&str]) -> ResourceChange {
        ResourceChange {
            step: crate::model::change::Step {
                address: addr.parse().unwrap(),
                name: addr.into(),
                action,
                fields: vec![],
                fingerprint: None,
            },
            desired: None,
            depends_on: deps
                .iter()
                .map(|d| d.parse::<ResourceAddr>().unwrap())
                .collect(),
            notes: vec![],
            cost: Default::default(),
        }
    }

    fn plan(changes: Vec<ResourceChange>) -> Plan {
        Plan {
            format_version: 1,
            target: PlanTarget {
                stack: "s".into(),
                project: "p".into(),
                region: "r".into(),
                endpoint: Endpoint::Google,
            },
            changes,
            unchanged: vec![],
            waiting: vec![],
            cost: crate::cost::PlanCost::total(&crate::cost::PriceTable::builtin("r"), []),
        }
    }

    #[test]
    fn creates_wait_for_what_they_reference_and_deletes_go_in_reverse() {
        let p = plan(vec![
            change("queue.a", Action::Create, &["service.w"]),
            change("service.w", Action::Create, &[]),
            change("queue.old", Action::Delete, &[]),
            change("service.old", Action::Delete, &[]),
            change("queue.gone", Action::Retire, &[]),
        ]);
        let pre = prerequisites(&p);
        assert_eq!(pre[0], vec![1], "the queue waits for its service");
        assert!(pre[1].is_empty());
        assert_eq!(
            pre[3],
            vec![2, 4],
            "the service is deleted after the queues are removed"
        );
        assert!(pre[2].is_empty() && pre[4].is_empty());
    }

    #[test]
    fn apis_come_first_and_grants_and_schedules_go_before_what_they_name() {
        let p = plan(vec![
            change("api.run", Action::Create, &[]),
            change("service_account.a", Action::Create, &[]),
            change("job.j", Action::Create, &["service_account.a"]),
            change(
                "iam: roles/run.invoker on job.j for service_account.a",
                Action::Create,
                &["job.j", "service_account.a"],
            ),
            change(
                "schedule.s",
                Action::Create,
                &[
                    "job.j",
                    "service_account.a",
                    "iam: roles/run.invoker on job.j for service_account.a",
                ],
            ),
            change("schedule.old", Action::Delete, &[]),
            change("job.old", Action::Delete, &[]),
            change(
                "iam: roles/x on project for service_account.old",
                Action::Delete,
                &[],
            ),
            change("service_account.old", Action::Delete, &[]),
        ]);
        let pre = prerequisites(&p);
        assert!(pre[0].is_empty());
        assert_eq!(pre[1], vec![0]);
        assert_eq!(pre[2], vec![0, 1]);
        assert_eq!(pre[3], vec![0, 1, 2]);
        assert_eq!(pre[4], vec![0, 1, 2, 3]);
        assert!(pre[5].is_empty(), "schedules are removed first");
        assert_eq!(
            pre[6],
            vec![5, 7],
            "a job goes after the schedules and grants on it"
        );
        assert_eq!(pre[7], vec![5]);
        assert_eq!(pre[8], vec![5, 6, 7], "an identity goes last");
    }

    #[test]
    fn grants_are_revoked_before_the_resource_they_are_on_is_deleted() {
        let p = plan(vec![
            change("queue.webhooks", Action::Delete, &[]),
            change(
                "iam: roles/cloudtasks.enqueuer on queue.webhooks for service_account.relay",
                Action::Delete,
                &[],
            ),
            change("schedule.old", Action::Delete, &[]),
            change("alert.old", Action::Delete, &[]),
        ]);
        let pre = prerequisites(&p);
        assert_eq!(pre[0], vec![1, 2], "the queue goes after the grant on it");
        assert_eq!(pre[1], vec![2], "the grant waits only for schedules");
        assert!(pre[2].is_empty());
        assert_eq!(pre[3], vec![1, 2], "every tier-3 kind waits for grants");
    }

    #[test]
    fn a_failure_skips_exactly_its_transitive_dependents() {
        let pre = vec![vec![], vec![0], vec![1], vec![]];
        assert_eq!(dependents_of(&pre, 0), vec![1, 2]);
        assert!(dependents_of(&pre, 3).is_empty());
    }
}

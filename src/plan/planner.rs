//! The planner: `plan(desired, observed) -> Plan`, pure and synchronous, with the ownership rules.
//! One generic pass per kind ([`plan_kind`]); the `match` in [`plan`] is the registry of kinds.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, PLAN_FORMAT_VERSION, Plan, PlanTarget, ResourceChange};
use crate::config::Stack;
use crate::model::{Kind, ResourceAddr};
use crate::resources::api::ApiKind;
use crate::resources::grant::{self, GrantKind};
use crate::resources::job::JobKind;
use crate::resources::queue::QueueKind;
use crate::resources::schedule::ScheduleKind;
use crate::resources::secret::SecretKind;
use crate::resources::service::{self, ServiceKind};
use crate::resources::service_account::ServiceAccountKind;
use crate::resources::{Known, Ownership, Reconcile, Removal};
use crate::state::Ledger;

pub use crate::resources::{Observed, PlanOptions};

/// Conflicts that make a plan impossible, all of them.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct PlanError(pub Vec<String>);

#[derive(Default)]
struct Planned {
    changes: Vec<ResourceChange>,
    unchanged: Vec<ResourceAddr>,
    conflicts: Vec<String>,
}

pub fn plan(
    stack: &Stack,
    target: PlanTarget,
    observed: &Observed,
    options: PlanOptions,
) -> Result<Plan, PlanError> {
    let known = known_before_apply(stack, observed);
    let mut planned = Planned::default();
    let ledger = &observed.ledger;
    for kind in Kind::ALL {
        let out = &mut planned;
        match kind {
            Kind::Service => {
                plan_kind::<ServiceKind>(stack, &observed.services, ledger, &known, options, out)
            }
            Kind::Queue => {
                plan_kind::<QueueKind>(stack, &observed.queues, ledger, &known, options, out)
            }
            Kind::ServiceAccount => plan_kind::<ServiceAccountKind>(
                stack,
                &observed.service_accounts,
                ledger,
                &known,
                options,
                out,
            ),
            Kind::Secret => {
                plan_kind::<SecretKind>(stack, &observed.secrets, ledger, &known, options, out)
            }
            Kind::Job => plan_kind::<JobKind>(stack, &observed.jobs, ledger, &known, options, out),
            Kind::Schedule => {
                plan_kind::<ScheduleKind>(stack, &observed.schedules, ledger, &known, options, out)
            }
            Kind::Api => plan_kind::<ApiKind>(stack, &observed.apis, ledger, &known, options, out),
            Kind::Grant => {
                let grants = grant::observed_grants(stack, &observed.policies, ledger);
                plan_kind::<GrantKind>(stack, &grants, ledger, &known, options, out)
            }
        }
    }
    if !planned.conflicts.is_empty() {
        return Err(PlanError(planned.conflicts));
    }
    planned.changes.sort_by(|a, b| a.address.cmp(&b.address));
    planned.unchanged.sort();
    Ok(Plan {
        format_version: PLAN_FORMAT_VERSION,
        target,
        changes: planned.changes,
        unchanged: planned.unchanged,
    })
}

/// The fingerprint of the live resource a saved plan's change was made against, now
/// (`None` = it does not exist), so apply can refuse a stale plan.
pub fn current_fingerprint(
    stack: &Stack,
    observed: &Observed,
    change: &ResourceChange,
) -> Option<String> {
    fn find<K: Reconcile>(lives: &[K::Live], name: &str) -> Option<String> {
        lives
            .iter()
            .find(|l| K::live_name(l) == name)
            .map(K::fingerprint)
    }
    let name = change.name.as_str();
    match change.address.kind {
        Kind::Service => find::<ServiceKind>(&observed.services, name),
        Kind::Queue => find::<QueueKind>(&observed.queues, name),
        Kind::ServiceAccount => find::<ServiceAccountKind>(&observed.service_accounts, name),
        Kind::Secret => find::<SecretKind>(&observed.secrets, name),
        Kind::Job => find::<JobKind>(&observed.jobs, name),
        Kind::Schedule => find::<ScheduleKind>(&observed.schedules, name),
        Kind::Api => find::<ApiKind>(&observed.apis, name),
        Kind::Grant => find::<GrantKind>(
            &grant::observed_grants(stack, &observed.policies, &observed.ledger),
            name,
        ),
    }
}

/// Cross-resource facts known before apply: hosts of declared services that exist.
pub fn known_before_apply(stack: &Stack, observed: &Observed) -> Known {
    let hosts = ServiceKind::declared(stack)
        .into_iter()
        .map(|(address, spec)| {
            let host = observed
                .services
                .iter()
                .find(|s| s.name == spec.name)
                .and_then(|s| service::host_of(&s.uri));
            (address, host)
        })
        .collect();
    Known { hosts }
}

/// Declared resources of one kind against what is live, then owned leftovers.
fn plan_kind<K: Reconcile>(
    stack: &Stack,
    lives: &[K::Live],
    ledger: &Ledger,
    known: &Known,
    options: PlanOptions,
    out: &mut Planned,
) {
    let stack_name = stack.settings.name.as_str();
    let by_name: BTreeMap<&str, &K::Live> = lives.iter().map(|l| (K::live_name(l), l)).collect();
    let declared = K::declared(stack);
    let declared_names: BTreeSet<String> = declared
        .iter()
        .map(|(_, spec)| K::spec_name(spec).to_string())
        .collect();

    for (address, spec) in declared {
        let name = K::spec_name(&spec).to_string();
        let depends_on = K::depends_on(&spec);
        match by_name.get(name.as_str()) {
            None => out.changes.push(ResourceChange {
                fields: K::create_fields(&spec, known),
                address,
                name,
                action: Action::Create,
                fingerprint: None,
                desired: Some(K::wrap(spec)),
                depends_on,
                notes: vec![],
            }),
            Some(live) => match K::ownership(live, stack_name, ledger) {
                Ownership::Ours => {
                    let fields = K::diff(&spec, live, known);
                    if fields.is_empty() {
                        out.unchanged.push(address);
                    } else {
                        out.changes.push(ResourceChange {
                            address,
                            name,
                            action: Action::Update,
                            fields,
                            fingerprint: Some(K::fingerprint(live)),
                            desired: Some(K::wrap(spec)),
                            depends_on,
                            notes: K::update_notes(live),
                        });
                    }
                }
                Ownership::OtherStack(other) => out.conflicts.push(format!(
                    "{address}: {name} belongs to the stack `{other}` (label {}={other}); stackctl never touches another stack's resources — give this one another `id` or remove it from this stack",
                    crate::resources::OWNER_LABEL
                )),
                Ownership::Unowned => out.conflicts.push(K::unowned_hint(&address, &name)),
            },
        }
    }

    for live in lives {
        let name = K::live_name(live);
        if declared_names.contains(name)
            || K::ownership(live, stack_name, ledger) != Ownership::Ours
        {
            continue;
        }
        let (action, fields, notes) = match K::removal(live, ledger, options) {
            Removal::Delete { notes } => (Action::Delete, vec![], notes),
            Removal::Retire { fields, notes } => (Action::Retire, fields, notes),
            Removal::Keep => continue,
        };
        out.changes.push(ResourceChange {
            address: K::address_of(live, ledger),
            name: name.to_string(),
            action,
            fields,
            fingerprint: Some(K::fingerprint(live)),
            desired: None,
            depends_on: vec![],
            notes,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Endpoint;
    use crate::provider::tasks::{QueueRecord, QueueState};
    use crate::state::LedgerStatus;

    const STACK: &str = r#"
[stack]
name = "shop"
project = "acme-shop"
region = "us-central1"

[service.worker]
image = "img"
max_instances = 3

[queue.webhooks]
target = "service.worker"
path = "/t"
"#;

    fn stack() -> Stack {
        crate::config::parse(std::path::Path::new("stack.toml"), STACK).unwrap()
    }

    fn target() -> PlanTarget {
        PlanTarget {
            stack: "shop".into(),
            project: "acme-shop".into(),
            region: "us-central1".into(),
            endpoint: Endpoint::Google,
        }
    }

    fn empty() -> Observed {
        let mut o = Observed::empty(Ledger::empty("shop"));
        // Every API the stack needs is already on, so these tests see only their own kinds.
        o.apis = crate::resources::api::needed(&stack())
            .into_iter()
            .map(|api| crate::provider::apis::ApiRecord {
                name: crate::resources::api::full_name(&stack(), api),
            })
            .collect();
        o
    }

    fn queue_record(name: &str, state: QueueState) -> QueueRecord {
        QueueRecord {
            name: format!("projects/acme-shop/locations/us-central1/queues/{name}"),
            state,
            max_dispatches_per_second: 500.0,
            max_concurrent_dispatches: 240,
            max_attempts: 5,
            min_backoff: Some(std::time::Duration::from_secs(1)),
            max_backoff: Some(std::time::Duration::from_secs(300)),
            max_doublings: 16,
            max_retry_duration: None,
            http_target: None,
        }
    }

    #[test]
    fn apis_are_enabled_but_never_disabled() {
        let mut o = empty();
        o.apis.push(crate::provider::apis::ApiRecord {
            name: "projects/acme-shop/services/bigquery.googleapis.com".into(),
        });
        let run = o
            .apis
            .iter()
            .position(|a| a.name.ends_with("/run.googleapis.com"))
            .unwrap();
        o.apis.remove(run);
        let p = plan(&stack(), target(), &o, PlanOptions::default()).unwrap();
        let apis: Vec<_> = p
            .changes
            .iter()
            .filter(|c| c.address.kind == Kind::Api)
            .map(|c| (c.address.to_string(), c.action))
            .collect();
        assert_eq!(apis, vec![("api.run".to_string(), Action::Create)]);
    }

    #[test]
    fn an_empty_project_plans_creates_with_the_queue_after_its_service() {
        let p = plan(&stack(), target(), &empty(), PlanOptions::default()).unwrap();
        let actions: Vec<_> = p
            .changes
            .iter()
            .map(|c| (c.address.to_string(), c.action))
            .collect();
        assert_eq!(
            actions,
            vec![
                ("service.worker".into(), Action::Create),
                ("queue.webhooks".into(), Action::Create)
            ]
        );
        assert_eq!(
            p.changes[1].depends_on,
            vec!["service.worker".parse().unwrap()]
        );
    }

    #[test]
    fn an_existing_queue_outside_the_ledger_is_never_touched() {
        let mut o = empty();
        o.queues.push(queue_record("webhooks", QueueState::Running));
        let err = plan(&stack(), target(), &o, PlanOptions::default()).unwrap_err();
        assert!(
            err.to_string().contains("stackctl adopt queue.webhooks"),
            "{err}"
        );
    }

    #[test]
    fn a_removed_queue_is_retired_once_then_left_alone() {
        let mut o = empty();
        let name = "projects/acme-shop/locations/us-central1/queues/old";
        o.queues.push(queue_record("old", QueueState::Running));
        o.ledger
            .record(name, &"queue.old".parse().unwrap(), LedgerStatus::Active);
        let p = plan(&stack(), target(), &o, PlanOptions::default()).unwrap();
        let retire = p
            .changes
            .iter()
            .find(|c| c.address.to_string() == "queue.old")
            .unwrap();
        assert_eq!(retire.action, Action::Retire);
        assert_eq!(retire.fields[0].field, "state");

        o.queues[0].state = QueueState::Paused;
        o.ledger
            .record(name, &"queue.old".parse().unwrap(), LedgerStatus::Retired);
        let p = plan(&stack(), target(), &o, PlanOptions::default()).unwrap();
        assert!(
            p.changes
                .iter()
                .all(|c| c.address.to_string() != "queue.old")
        );

        let p = plan(
            &stack(),
            target(),
            &o,
            PlanOptions {
                allow_queue_delete: true,
            },
        )
        .unwrap();
        let delete = p
            .changes
            .iter()
            .find(|c| c.address.to_string() == "queue.old")
            .unwrap();
        assert_eq!(delete.action, Action::Delete);
    }
}

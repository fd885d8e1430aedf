//! The planner: `plan(desired, observed) -> Plan`, pure and synchronous, with the ownership rules.
//! One generic pass per kind ([`plan_kind`]); the `match` in [`plan`] is the registry of kinds.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, PLAN_FORMAT_VERSION, Plan, PlanTarget, ResourceChange};
use crate::config::Stack;
use crate::model::{Kind, ResourceAddr};
use crate::resources::alert::AlertKind;
use crate::resources::budget::BudgetKind;
use crate::resources::channel::ChannelKind;
use crate::resources::dataset::DatasetKind;
use crate::resources::queue::QueueKind;
use crate::resources::repository::RepositoryKind;
use crate::resources::service::{self, ServiceKind};
use crate::resources::table::TableKind;
use crate::resources::{Known, Ownership, Reconcile, Removal, data_loss};
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
    for kind in Kind::ALL {
        match kind {
            Kind::Service => plan_kind::<ServiceKind>(
                stack,
                &observed.services,
                &observed.ledger,
                &known,
                options,
                &mut planned,
            ),
            Kind::Queue => plan_kind::<QueueKind>(
                stack,
                &observed.queues,
                &observed.ledger,
                &known,
                options,
                &mut planned,
            ),
            Kind::Dataset => plan_kind::<DatasetKind>(
                stack,
                &observed.datasets,
                &observed.ledger,
                &known,
                options,
                &mut planned,
            ),
            Kind::Table => plan_kind::<TableKind>(
                stack,
                &observed.tables,
                &observed.ledger,
                &known,
                options,
                &mut planned,
            ),
            Kind::Repository => plan_kind::<RepositoryKind>(
                stack,
                &observed.repositories,
                &observed.ledger,
                &known,
                options,
                &mut planned,
            ),
            Kind::Channel => plan_kind::<ChannelKind>(
                stack,
                &observed.channels,
                &observed.ledger,
                &known,
                options,
                &mut planned,
            ),
            Kind::Budget => plan_kind::<BudgetKind>(
                stack,
                &observed.budgets,
                &observed.ledger,
                &known,
                options,
                &mut planned,
            ),
            Kind::Alert => plan_kind::<AlertKind>(
                stack,
                &observed.alerts,
                &observed.ledger,
                &known,
                options,
                &mut planned,
            ),
        }
    }
    if !planned.conflicts.is_empty() {
        return Err(PlanError(planned.conflicts));
    }
    for change in &mut planned.changes {
        if let Some(loss) = data_loss(change) {
            change.notes.push(if options.allow_data_loss {
                "--allow-data-loss: its data is lost".to_string()
            } else {
                format!("refused without --allow-data-loss: {loss}")
            });
        }
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
    let names = ChannelKind::declared(stack)
        .into_iter()
        .map(|(address, spec)| {
            let key = ChannelKind::spec_key(&spec);
            let name = observed
                .channels
                .iter()
                .find(|c| ChannelKind::live_key(c) == key)
                .map(|c| c.name.clone());
            (address, name)
        })
        .collect();
    Known {
        hosts,
        names,
        project_number: observed.project_number.clone(),
    }
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
    let by_key: BTreeMap<String, &K::Live> = lives.iter().map(|l| (K::live_key(l), l)).collect();
    let declared = K::declared(stack);
    let declared_keys: BTreeSet<String> =
        declared.iter().map(|(_, spec)| K::spec_key(spec)).collect();

    for (address, spec) in declared {
        let depends_on = K::depends_on(&spec);
        let live = by_key.get(&K::spec_key(&spec));
        let name = match live {
            Some(live) => K::live_name(live).to_string(),
            None => K::spec_name(&spec).to_string(),
        };
        match live {
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
                    let action = if fields.iter().any(|f| f.forces_replacement) {
                        Action::Replace
                    } else {
                        Action::Update
                    };
                    if fields.is_empty() {
                        out.unchanged.push(address);
                    } else {
                        let mut notes = K::update_notes(live);
                        notes.extend(K::change_notes(&fields));
                        out.changes.push(ResourceChange {
                            address,
                            name,
                            action,
                            fields,
                            fingerprint: Some(K::fingerprint(live)),
                            desired: Some(K::wrap(spec)),
                            depends_on,
                            notes,
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
        if declared_keys.contains(&K::live_key(live))
            || K::ownership(live, stack_name, ledger) != Ownership::Ours
        {
            continue;
        }
        let (action, fields, notes) = match K::removal(live, ledger, options) {
            Removal::Delete { notes } => (Action::Delete, vec![], notes),
            Removal::Retire { fields, notes } => (Action::Retire, fields, notes),
            Removal::Refuse(why) => {
                out.conflicts.push(why);
                continue;
            }
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
        Observed {
            ledger: Ledger::empty("shop"),
            ..Observed::default()
        }
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
                ..PlanOptions::default()
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

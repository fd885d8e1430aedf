//! The planner: `plan(desired, observed) -> Plan`, pure and synchronous, with the ownership rules.

use std::collections::BTreeMap;

use super::{Action, PLAN_FORMAT_VERSION, Plan, PlanTarget, ResourceChange};
use crate::config::Stack;
use crate::model::{Kind, ResourceAddr};
use crate::provider::run::ServiceRecord;
use crate::provider::tasks::QueueRecord;
use crate::resources::{Desired, fingerprint_of, queue, service};
use crate::state::{Ledger, LedgerStatus};

/// Everything observed in the cloud, read with one list call per kind.
#[derive(Debug, Clone)]
pub struct Observed {
    pub queues: Vec<QueueRecord>,
    pub services: Vec<ServiceRecord>,
    pub ledger: Ledger,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// Delete queues removed from stack.toml instead of pausing them.
    pub allow_queue_delete: bool,
}

/// Conflicts that make a plan impossible, all of them.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct PlanError(pub Vec<String>);

pub fn plan(
    stack: &Stack,
    target: PlanTarget,
    observed: &Observed,
    options: PlanOptions,
) -> Result<Plan, PlanError> {
    let stack_name = &stack.settings.name;
    let services: BTreeMap<&str, &ServiceRecord> = observed
        .services
        .iter()
        .map(|s| (s.name.as_str(), s))
        .collect();
    let queues: BTreeMap<&str, &QueueRecord> = observed
        .queues
        .iter()
        .map(|q| (q.name.as_str(), q))
        .collect();
    let mut changes = Vec::new();
    let mut unchanged = Vec::new();
    let mut conflicts = Vec::new();

    // Service hosts as they will be when the queues are applied: known for existing services.
    let mut hosts: BTreeMap<ResourceAddr, Option<String>> = BTreeMap::new();

    for (name, cfg) in &stack.services {
        let address = ResourceAddr::new(Kind::Service, name);
        let spec = service::spec(stack, cfg);
        match services.get(spec.name.as_str()) {
            None => {
                hosts.insert(address.clone(), None);
                changes.push(ResourceChange {
                    fields: service::create_fields(&spec),
                    notes: service::notes(&address.to_string(), &spec, None),
                    address,
                    name: spec.name.clone(),
                    action: Action::Create,
                    fingerprint: None,
                    desired: Some(Desired::Service(spec)),
                    depends_on: vec![],
                });
            }
            Some(live) => {
                match service::owner(live) {
                    Some(owner) if owner == stack_name => {}
                    Some(other) => {
                        conflicts.push(format!("{address}: the service {} belongs to the stack `{other}` (label {}={other}); stackctl never touches another stack's resources — rename it with `id = \"...\"` or remove it from this stack", spec.name, crate::resources::OWNER_LABEL));
                        continue;
                    }
                    None => {
                        conflicts.push(format!("{address}: the service {} already exists and is not owned by this stack; if it is yours, run `stackctl adopt {address}`, or give this one another `id`", spec.name));
                        continue;
                    }
                }
                hosts.insert(address.clone(), service::host_of(&live.uri));
                let fields = service::diff(&spec, live);
                if fields.is_empty() {
                    unchanged.push(address);
                } else {
                    changes.push(ResourceChange {
                        notes: service::notes(&address.to_string(), &spec, Some(live)),
                        address,
                        name: spec.name.clone(),
                        action: Action::Update,
                        fields,
                        fingerprint: Some(live.etag.clone()),
                        desired: Some(Desired::Service(spec)),
                        depends_on: vec![],
                    });
                }
            }
        }
    }

    for (name, cfg) in &stack.queues {
        let address = ResourceAddr::new(Kind::Queue, name);
        let spec = queue::spec(stack, cfg);
        let depends_on: Vec<ResourceAddr> = spec.target.iter().map(|t| t.service.clone()).collect();
        let target_host = spec
            .target
            .as_ref()
            .and_then(|t| hosts.get(&t.service).cloned().flatten());
        match queues.get(spec.name.as_str()) {
            None => changes.push(ResourceChange {
                fields: queue::create_fields(&spec, target_host.as_deref()),
                address,
                name: spec.name.clone(),
                action: Action::Create,
                fingerprint: None,
                desired: Some(Desired::Queue(spec)),
                depends_on,
                notes: vec![],
            }),
            Some(live) => {
                if observed.ledger.entry(&spec.name).is_none() {
                    conflicts.push(format!("{address}: the queue {} already exists and is not in this stack's ownership ledger; if it is yours, run `stackctl adopt {address}`, or give this one another `id`", spec.name));
                    continue;
                }
                let fields = queue::diff(&spec, live, target_host.as_deref());
                if fields.is_empty() {
                    unchanged.push(address);
                } else {
                    let notes = match live.state {
                        crate::provider::tasks::QueueState::Paused => vec![
                            "resumes a queue that was paused (retired or paused by hand)"
                                .to_string(),
                        ],
                        _ => vec![],
                    };
                    changes.push(ResourceChange {
                        address,
                        name: spec.name.clone(),
                        action: Action::Update,
                        fields,
                        fingerprint: Some(fingerprint_of(live)),
                        desired: Some(Desired::Queue(spec)),
                        depends_on,
                        notes,
                    });
                }
            }
        }
    }

    // Owned resources that left stack.toml.
    let declared_services: Vec<String> = stack
        .services
        .values()
        .map(|c| service::full_name(stack, &c.id))
        .collect();
    for live in &observed.services {
        if service::owner(live) == Some(stack_name.as_str())
            && !declared_services.contains(&live.name)
        {
            let id = live.name.rsplit('/').next().unwrap_or_default();
            changes.push(ResourceChange {
                address: ResourceAddr::new(Kind::Service, id),
                name: live.name.clone(),
                action: Action::Delete,
                fields: vec![],
                fingerprint: Some(live.etag.clone()),
                desired: None,
                depends_on: vec![],
                notes: vec![],
            });
        }
    }
    let declared_queues: Vec<String> = stack
        .queues
        .values()
        .map(|c| queue::full_name(stack, &c.id))
        .collect();
    for (name, entry) in &observed.ledger.resources {
        if entry.address.kind != Kind::Queue || declared_queues.contains(name) {
            continue;
        }
        let Some(live) = queues.get(name.as_str()) else {
            continue;
        };
        if options.allow_queue_delete {
            changes.push(ResourceChange {
                address: entry.address.clone(),
                name: name.clone(),
                action: Action::Delete,
                fields: vec![],
                fingerprint: Some(fingerprint_of(live)),
                desired: None,
                depends_on: vec![],
                notes: vec![
                    "--allow-queue-delete: the queue name cannot be reused for up to 7 days".into(),
                ],
            });
        } else if entry.status == LedgerStatus::Active {
            changes.push(ResourceChange {
                address: entry.address.clone(),
                name: name.clone(),
                action: Action::Retire,
                fields: queue::retire_fields(live),
                fingerprint: Some(fingerprint_of(live)),
                desired: None,
                depends_on: vec![],
                notes: vec!["removed from stack.toml: paused, not deleted (a deleted queue's name is blocked for days); --allow-queue-delete deletes it".into()],
            });
        }
    }

    if !conflicts.is_empty() {
        return Err(PlanError(conflicts));
    }
    changes.sort_by(|a, b| a.address.cmp(&b.address));
    unchanged.sort();
    Ok(Plan {
        format_version: PLAN_FORMAT_VERSION,
        target,
        changes,
        unchanged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Endpoint;
    use crate::provider::tasks::QueueState;

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
            queues: vec![],
            services: vec![],
            ledger: Ledger::empty("shop"),
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

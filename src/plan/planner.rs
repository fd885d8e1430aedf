//! The planner: `plan(desired, observed) -> Plan`, pure and synchronous, with the ownership rules
//! and each change's monthly cost. One generic pass per kind ([`plan_kind`]), run for every kind
//! through the registry ([`for_kind`]).

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, PLAN_FORMAT_VERSION, Plan, PlanTarget, ResourceChange, Step, WaitingResource};
use crate::config::Stack;
use crate::cost::{Estimate, PlanCost, PriceTable, ResourceCost};
use crate::model::{Kind, ResourceAddr};
use crate::resources::channel::{self, ChannelKind};
use crate::resources::gateway::GatewayKind;
use crate::resources::grant::{self, GrantKind};
use crate::resources::registry::{self, KindVisitor, Registered, for_kind};
use crate::resources::service::{self, ServiceKind};
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
    waiting: Vec<WaitingResource>,
    conflicts: Vec<String>,
}

/// What every kind's pass reads.
struct Inputs<'a> {
    stack: &'a Stack,
    ledger: &'a Ledger,
    known: &'a Known,
    options: PlanOptions,
    prices: &'a PriceTable,
}

/// Plans `stack` against what was observed, pricing each change with `prices` and `[usage]`.
pub fn plan(
    stack: &Stack,
    target: PlanTarget,
    observed: &Observed,
    options: PlanOptions,
    prices: &PriceTable,
) -> Result<Plan, PlanError> {
    let known = known_before_apply(stack, observed);
    let inputs = Inputs {
        stack,
        ledger: &observed.ledger,
        known: &known,
        options,
        prices,
    };
    let mut planned = Planned::default();
    for kind in Kind::ALL {
        if kind == Kind::Grant {
            // Grants are planned last: a replaced resource comes back with an empty IAM policy.
            plan_grants(&inputs, &observed.grants, &mut planned);
        } else if kind == Kind::ShopifyWebhook && observed.shopify_unread.is_some() {
            // The shop could not be read (no token yet): nothing of it is planned; the
            // inventory's note says why and what to do.
        } else {
            for_kind(
                kind,
                PlanPass {
                    inputs: &inputs,
                    observed,
                    out: &mut planned,
                },
            );
        }
    }
    if !planned.conflicts.is_empty() {
        return Err(PlanError(planned.conflicts));
    }
    for change in &mut planned.changes {
        if let Some(loss) = change.data_loss() {
            change.notes.push(if options.allow_data_loss {
                "--allow-data-loss: its data is lost".to_string()
            } else {
                format!("refused without --allow-data-loss: {loss}")
            });
        }
    }
    planned.changes.sort_by(|a, b| a.address.cmp(&b.address));
    planned.unchanged.sort();
    let unchanged_costs: Vec<ResourceCost> = planned
        .unchanged
        .iter()
        .filter_map(|address| registry::declared_cost(stack, prices, address))
        .map(ResourceCost::unchanged)
        .collect();
    let cost = PlanCost::total(
        prices,
        planned
            .changes
            .iter()
            .map(|c| &c.cost)
            .chain(&unchanged_costs),
    );
    Ok(Plan {
        format_version: PLAN_FORMAT_VERSION,
        target,
        changes: planned.changes,
        unchanged: planned.unchanged,
        waiting: planned.waiting,
        cost,
    })
}

/// The fingerprint of the live resource a saved plan's change was made against, now
/// (`None` = it does not exist), so apply can refuse a stale plan. A planned create is looked
/// up by its match key (kinds with server-assigned ids), anything else by its name.
pub fn current_fingerprint(observed: &Observed, change: &ResourceChange) -> Option<String> {
    struct Fingerprint<'a> {
        observed: &'a Observed,
        change: &'a ResourceChange,
    }
    impl KindVisitor for Fingerprint<'_> {
        type Output = Option<String>;
        fn visit<K: Registered>(self) -> Option<String> {
            let (lives, change) = (K::lives(self.observed), self.change);
            let key = change.desired.as_ref().map(registry::desired_key);
            let found = match (change.action, key) {
                (Action::Create, Some(key)) => lives.iter().find(|l| K::live_key(l) == key),
                _ => lives.iter().find(|l| K::live_name(l) == change.name),
            };
            found.map(K::fingerprint)
        }
    }
    for_kind(change.address.kind, Fingerprint { observed, change })
}

/// Cross-resource facts known before apply: hosts of declared services that exist, names of
/// declared channels that exist (server-assigned), the project number.
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
    let channels = ChannelKind::declared(stack)
        .into_iter()
        .map(|(address, spec)| {
            let key = ChannelKind::spec_key(&spec);
            let name = observed
                .channels
                .iter()
                .find(|c| ChannelKind::live_key(c) == key)
                .map(|c| c.name.clone());
            (address, name)
        });
    // A gateway's server-assigned name that others use: its api's managed service; not that of
    // another stack's gateway of the same name (a conflict, never ours to point at).
    let gateways = GatewayKind::declared(stack)
        .into_iter()
        .map(|(address, spec)| {
            let service = observed
                .gateways
                .iter()
                .find(|g| g.name == spec.name)
                .filter(|g| {
                    g.labels
                        .get(crate::resources::OWNER_LABEL)
                        .is_none_or(|owner| *owner == stack.settings.name)
                })
                .and_then(|g| g.api.as_ref())
                .map(|api| api.managed_service.clone());
            (address, service)
        });
    let names: BTreeMap<ResourceAddr, Option<String>> = channels.chain(gateways).collect();
    let waiting = ChannelKind::declared(stack)
        .into_iter()
        .filter(|(address, _)| names.get(address).is_some_and(Option::is_none))
        .filter_map(|(address, spec)| {
            let secret = spec.secret?;
            observed
                .secrets_without_value
                .contains(&secret.source)
                .then(|| (address, channel::waiting_for_value(&secret)))
        })
        .collect();
    Known {
        hosts,
        names,
        project_number: observed.project_number.clone(),
        waiting,
    }
}

/// The planning pass of one kind, as the registry runs it.
struct PlanPass<'a, 'b> {
    inputs: &'a Inputs<'a>,
    observed: &'a Observed,
    out: &'b mut Planned,
}

impl KindVisitor for PlanPass<'_, '_> {
    type Output = ();
    fn visit<K: Registered>(self) {
        plan_kind::<K>(self.inputs, K::lives(self.observed), self.out)
    }
}

/// IAM grants, after every other kind: the grants on a resource the plan replaces are planned
/// afresh (it comes back with an empty policy), with the fingerprint of the grant they drop.
fn plan_grants(inputs: &Inputs, observed: &[grant::GrantRecord], planned: &mut Planned) {
    let replaced: BTreeSet<ResourceAddr> = planned
        .changes
        .iter()
        .filter(|c| c.action == Action::Replace)
        .map(|c| c.address.clone())
        .collect();
    let on_replaced = grant::declared_on(inputs.stack, &replaced);
    let (dropped, grants): (Vec<_>, Vec<_>) = observed
        .iter()
        .cloned()
        .partition(|live| on_replaced.contains(&live.name));
    let first = planned.changes.len();
    plan_kind::<GrantKind>(inputs, &grants, planned);
    for change in &mut planned.changes[first..] {
        if let Some(spec) = change.desired.as_ref().and_then(GrantKind::unwrap)
            && let Some(on) = spec.on.as_ref().filter(|on| replaced.contains(on))
        {
            let fingerprint = dropped
                .iter()
                .find(|live| live.name == spec.name)
                .map(GrantKind::fingerprint);
            change.notes.push(format!(
                "granted again: {on} is replaced with an empty policy"
            ));
            // A saved plan is stale only if the grant changes before apply.
            change.fingerprint = fingerprint;
        }
    }
}

/// Declared resources of one kind against what is live, then owned leftovers.
fn plan_kind<K: Registered>(inputs: &Inputs, lives: &[K::Live], out: &mut Planned) {
    let Inputs {
        stack,
        ledger,
        known,
        options,
        prices,
    } = *inputs;
    let stack_name = stack.settings.name.as_str();
    // Monthly cost: before from the live resource, after from stack.toml; removals go to zero.
    let live_cost =
        |live: &K::Live, address: &ResourceAddr| K::live_cost(live, address, stack, prices);
    let declared_cost = |address: &ResourceAddr| {
        registry::declared_cost(stack, prices, address).unwrap_or_default()
    };
    let by_key: BTreeMap<String, &K::Live> = lives.iter().map(|l| (K::live_key(l), l)).collect();
    out.conflicts
        .extend(duplicates_of_ours::<K>(lives, stack_name, ledger));
    let declared = K::declared(stack);
    let declared_keys: BTreeSet<String> =
        declared.iter().map(|(_, spec)| K::spec_key(spec)).collect();

    for (address, spec) in declared {
        let depends_on = K::depends_on(&spec);
        let live = by_key.get(&K::spec_key(&spec)).copied();
        let name = match live {
            Some(live) => K::live_name(live).to_string(),
            None => K::spec_name(&spec).to_string(),
        };
        match live {
            None if known.waiting.contains_key(&address) => out.waiting.push(WaitingResource {
                reason: known.waiting[&address].clone(),
                address,
            }),
            None => out.changes.push(ResourceChange {
                notes: K::notes(&address, &spec, None)
                    .into_iter()
                    .chain(look_alike_note::<K>(&address, &spec, lives, stack_name, ledger))
                    .collect(),
                cost: ResourceCost::new(Estimate::zero(), declared_cost(&address)),
                step: Step {
                    fields: K::create_fields(&spec, known),
                    address,
                    name,
                    action: Action::Create,
                    fingerprint: None,
                },
                desired: Some(K::wrap(spec)),
                depends_on,
            }),
            Some(live) => match K::ownership(live, stack_name, ledger) {
                ownership @ (Ownership::Ours | Ownership::Pending) => {
                    let fields = K::diff(&spec, live, known);
                    let claimed = ownership == Ownership::Pending;
                    if claimed && fields.iter().any(|f| K::written_by_create(&f.field)) {
                        // What exists is not what this stack sent: it may be someone else's.
                        out.conflicts.push(format!(
                            "{address}: {name} was being created by this stack when an apply stopped, and what exists differs from stack.toml; stackctl will not claim it. If it is yours, run `stackctl adopt {address}`; otherwise delete it or give this one another `id`"
                        ));
                        continue;
                    }
                    if fields.is_empty() && !claimed {
                        out.unchanged.push(address);
                        continue;
                    }
                    let action = if fields.iter().any(|f| f.forces_replacement) { Action::Replace } else { Action::Update };
                    let mut notes = K::notes(&address, &spec, Some(live));
                    notes.extend(K::change_notes(&fields));
                    if claimed {
                        notes.push("recorded as this stack's: an apply that stopped while creating it made it, and it matches stack.toml".to_string());
                    }
                    out.changes.push(ResourceChange {
                        cost: ResourceCost::new(live_cost(live, &address), declared_cost(&address)),
                        step: Step {
                            address,
                            name,
                            action,
                            fields,
                            fingerprint: Some(K::fingerprint(live)),
                        },
                        desired: Some(K::wrap(spec)),
                        depends_on,
                        notes,
                    });
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
        let address = K::address_of(live, ledger);
        out.changes.push(ResourceChange {
            cost: ResourceCost::new(live_cost(live, &address), Estimate::zero()),
            step: Step {
                address,
                name: name.to_string(),
                action,
                fields,
                fingerprint: Some(K::fingerprint(live)),
            },
            desired: None,
            depends_on: vec![],
            notes,
        });
    }
}

/// Two or more live resources this stack owns under one match key (two alert policies or
/// channels with the same stack and name labels, two ledgered budgets with one display name): an
/// earlier apply that lost its lock or crashed made a copy. stackctl cannot know which copy
/// others point at (incident tools, dashboards), so plan refuses and names every copy.
fn duplicates_of_ours<K: Registered>(
    lives: &[K::Live],
    stack: &str,
    ledger: &Ledger,
) -> Vec<String> {
    let mut ours: BTreeMap<String, Vec<&K::Live>> = BTreeMap::new();
    for live in lives {
        if K::ownership(live, stack, ledger) == Ownership::Ours {
            ours.entry(K::live_key(live)).or_default().push(live);
        }
    }
    ours.into_values()
        .filter(|copies| copies.len() > 1)
        .map(|copies| {
            let address = K::address_of(copies[0], ledger);
            let names: Vec<&str> = copies.iter().map(|c| K::live_name(c)).collect();
            format!(
                "{address}: this stack owns {} copies of it ({}); an earlier apply that was interrupted made the extra. Delete all but one (the one your tools point at), then plan again",
                copies.len(),
                names.join(", ")
            )
        })
        .collect()
}

/// How many look-alikes a note names before it only counts the rest.
const LOOK_ALIKES_NAMED: usize = 3;

/// The note on a planned create when unowned live resources of its kind (no stack's label)
/// already carry the display name it would be created with: adopting one beats a duplicate.
fn look_alike_note<K: Registered>(
    address: &ResourceAddr,
    spec: &K::Spec,
    lives: &[K::Live],
    stack_name: &str,
    ledger: &Ledger,
) -> Option<String> {
    let display_name = K::spec_display_name(spec)?;
    let names: Vec<&str> = lives
        .iter()
        .filter(|live| K::live_display_name(live) == Some(display_name))
        .filter(|live| K::ownership(live, stack_name, ledger) == Ownership::Unowned)
        .map(K::live_name)
        .collect();
    let kind = address.kind;
    let adopt = format!("`stackctl adopt {address}`");
    match names.as_slice() {
        [] => None,
        [one] => Some(format!(
            "an unowned {kind} with this display name exists ({one}): {adopt} takes it over instead of creating a duplicate"
        )),
        many => {
            let mut listed = many[..many.len().min(LOOK_ALIKES_NAMED)].join(", ");
            if many.len() > LOOK_ALIKES_NAMED {
                listed.push_str(&format!(", and {} more", many.len() - LOOK_ALIKES_NAMED));
            }
            Some(format!(
                "{} unowned {kind}s with this display name exist ({listed}): rename or delete all but one, then {adopt} takes it over instead of creating a duplicate",
                many.len()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Endpoint;
    use crate::model::live::monitoring::ChannelRecord;
    use crate::model::live::run::ServiceRecord;
    use crate::model::live::tasks::{QueueRecord, QueueState};
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

    fn prices() -> PriceTable {
        PriceTable::builtin("us-central1")
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
        let mut o = Observed {
            ledger: Ledger::empty("shop"),
            ..Observed::default()
        };
        // Every API the stack needs is already on, so these tests see only their own kinds.
        o.apis = crate::resources::api::needed(&stack())
            .into_iter()
            .map(|api| crate::model::live::apis::ApiRecord {
                name: crate::resources::api::full_name(&stack(), api),
            })
            .collect();
        o
    }

    /// The planned change of `address`.
    fn change_at<'p>(p: &'p Plan, address: &str) -> &'p ResourceChange {
        p.changes
            .iter()
            .find(|c| c.address.to_string() == address)
            .unwrap_or_else(|| panic!("no change of {address}"))
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
        o.apis.push(crate::model::live::apis::ApiRecord {
            name: "projects/acme-shop/services/bigquery.googleapis.com".into(),
        });
        let run = o
            .apis
            .iter()
            .position(|a| a.name.ends_with("/run.googleapis.com"))
            .unwrap();
        o.apis.remove(run);
        let p = plan(&stack(), target(), &o, PlanOptions::default(), &prices()).unwrap();
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
        let p = plan(
            &stack(),
            target(),
            &empty(),
            PlanOptions::default(),
            &prices(),
        )
        .unwrap();
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
        let err = plan(&stack(), target(), &o, PlanOptions::default(), &prices()).unwrap_err();
        assert!(
            err.to_string().contains("stackctl adopt queue.webhooks"),
            "{err}"
        );
    }

    #[test]
    fn a_pending_queue_is_claimed_only_when_it_matches_and_never_removed() {
        let mut o = empty();
        let pending = |o: &mut Observed, id: &str| {
            o.ledger.record(
                &format!("projects/acme-shop/locations/us-central1/queues/{id}"),
                &format!("queue.{id}").parse().unwrap(),
                LedgerStatus::Pending,
            )
        };
        // A declared queue whose create was interrupted, and what exists differs from stack.toml
        // (no target): someone else's look-alike may have won the name.
        o.queues.push(queue_record("webhooks", QueueState::Running));
        pending(&mut o, "webhooks");
        let err = plan(&stack(), target(), &o, PlanOptions::default(), &prices()).unwrap_err();
        assert!(
            err.to_string().contains("will not claim it")
                && err.to_string().contains("stackctl adopt queue.webhooks"),
            "{err}"
        );
        // A pending queue no longer declared is not this stack's to delete or pause.
        let mut o = empty();
        o.queues.push(queue_record("old", QueueState::Running));
        pending(&mut o, "old");
        let p = plan(&stack(), target(), &o, PlanOptions::default(), &prices()).unwrap();
        assert!(
            !p.changes
                .iter()
                .any(|c| c.address.to_string() == "queue.old"),
            "{:?}",
            p.changes
        );
    }

    #[test]
    fn a_removed_queue_is_retired_once_then_left_alone() {
        let mut o = empty();
        let name = "projects/acme-shop/locations/us-central1/queues/old";
        o.queues.push(queue_record("old", QueueState::Running));
        o.ledger
            .record(name, &"queue.old".parse().unwrap(), LedgerStatus::Active);
        let p = plan(&stack(), target(), &o, PlanOptions::default(), &prices()).unwrap();
        let retire = change_at(&p, "queue.old");
        assert_eq!(retire.action, Action::Retire);
        assert_eq!(retire.fields[0].field, "state");

        o.queues[0].state = QueueState::Paused;
        o.ledger
            .record(name, &"queue.old".parse().unwrap(), LedgerStatus::Retired);
        let p = plan(&stack(), target(), &o, PlanOptions::default(), &prices()).unwrap();
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
            &prices(),
        )
        .unwrap();
        let delete = change_at(&p, "queue.old");
        assert_eq!(delete.action, Action::Delete);
    }

    fn live_worker(min_instances: i32, cpu_idle: bool) -> ServiceRecord {
        ServiceRecord {
            urls: vec![],
            secret_env: Default::default(),
            service_account: String::new(),
            name: "projects/acme-shop/locations/us-central1/services/worker".into(),
            labels: BTreeMap::from([(crate::resources::OWNER_LABEL.into(), "shop".into())]),
            etag: "e".into(),
            generation: 1,
            uri: "https://worker-x-uc.a.run.app".into(),
            reconciling: false,
            latest_ready_revision: "r".into(),
            latest_created_revision: "r".into(),
            failure: None,
            ingress: crate::model::live::run::IngressKind::All,
            service_max_instances: 3,
            image: "img".into(),
            env: BTreeMap::new(),
            limits: BTreeMap::from([
                ("cpu".into(), "1000m".into()),
                ("memory".into(), "512Mi".into()),
            ]),
            cpu_idle,
            public: false,
            startup_probe: None,
            liveness_probe: None,
            min_instances,
            max_instances: 3,
            concurrency: 80,
            timeout: Some(std::time::Duration::from_secs(300)),
            traffic: vec![],
            created: None,
        }
    }

    #[test]
    fn costs_come_from_the_live_service_before_and_stack_toml_after() {
        let with_usage =
            format!("{STACK}\n[usage]\n\"queue.webhooks\" = {{ tasks_per_month = 2_000_000 }}\n");
        let stack = crate::config::parse(std::path::Path::new("stack.toml"), &with_usage).unwrap();
        let mut o = empty();
        // Live: one warm instance with CPU always allocated; declared: scale to zero.
        o.services.push(live_worker(1, false));
        let p = plan(&stack, target(), &o, PlanOptions::default(), &prices()).unwrap();
        let worker = &p.changes[0];
        assert_eq!(worker.address.to_string(), "service.worker");
        assert_eq!(worker.cost.before.monthly_usd, 49.248);
        assert_eq!(worker.cost.after.monthly_usd, 0.0);
        assert_eq!(worker.cost.delta_monthly_usd, -49.248);
        assert_eq!(
            worker.cost.after.unknown.as_deref(),
            Some("no [usage] for service.worker")
        );
        let queue = &p.changes[1];
        assert_eq!(
            (queue.cost.before.monthly_usd, queue.cost.after.monthly_usd),
            (0.0, 1.6)
        );
        assert_eq!(p.cost.past_total_monthly_usd, 49.248);
        assert_eq!(p.cost.total_monthly_usd, 1.6);
        assert_eq!(
            p.cost.unknown,
            vec!["no [usage] for service.worker".to_string()]
        );
    }

    fn channel_record(id: u32, display_name: &str, owner: Option<&str>) -> ChannelRecord {
        ChannelRecord {
            name: format!("projects/acme-shop/notificationChannels/{id}"),
            kind: "email".into(),
            display_name: display_name.into(),
            labels: BTreeMap::from([("email_address".into(), "ops@example.com".into())]),
            user_labels: owner
                .map(|o| BTreeMap::from([(crate::resources::OWNER_LABEL.into(), o.into())]))
                .unwrap_or_default(),
        }
    }

    /// The notes on the planned create of `channel.oncall`.
    fn oncall_create_notes(channels: Vec<ChannelRecord>) -> Vec<String> {
        let with_channel =
            format!("{STACK}\n[channel.oncall]\ntype = \"email\"\nemail = \"ops@example.com\"\n");
        let stack =
            crate::config::parse(std::path::Path::new("stack.toml"), &with_channel).unwrap();
        let mut o = empty();
        o.channels = channels;
        let p = plan(&stack, target(), &o, PlanOptions::default(), &prices()).unwrap();
        let create = change_at(&p, "channel.oncall");
        assert_eq!(create.action, Action::Create);
        create.notes.clone()
    }

    #[test]
    fn a_create_names_unowned_look_alikes_to_adopt_but_not_another_stacks() {
        let notes = oncall_create_notes(vec![channel_record(1, "oncall", None)]);
        assert_eq!(
            notes,
            vec!["an unowned channel with this display name exists (projects/acme-shop/notificationChannels/1): `stackctl adopt channel.oncall` takes it over instead of creating a duplicate".to_string()]
        );

        let notes = oncall_create_notes(
            (1..=4)
                .map(|id| channel_record(id, "oncall", None))
                .chain([channel_record(5, "pager", None)])
                .collect(),
        );
        assert_eq!(
            notes,
            vec!["4 unowned channels with this display name exist (projects/acme-shop/notificationChannels/1, projects/acme-shop/notificationChannels/2, projects/acme-shop/notificationChannels/3, and 1 more): rename or delete all but one, then `stackctl adopt channel.oncall` takes it over instead of creating a duplicate".to_string()]
        );

        let notes = oncall_create_notes(vec![
            channel_record(6, "oncall", Some("other")),
            channel_record(7, "Oncall", None),
        ]);
        assert_eq!(notes, Vec::<String>::new());
    }

    #[test]
    fn a_gateways_managed_service_is_known_from_ours_or_an_unowned_one_never_another_stacks() {
        use crate::model::live::gateway::{GatewayApiRecord, GatewayRecord};
        let stack = crate::config::parse(
            std::path::Path::new("stack.toml"),
            &format!(
                "{STACK}\n[service_account.crm-gateway]\n\n[gateway.crm]\nbackend = \"service.worker\"\nservice_account = \"service_account.crm-gateway\"\nroutes = [\"POST /customers\"]\n"
            ),
        )
        .unwrap();
        let gateway = |owner: Option<&str>| GatewayRecord {
            name: "projects/acme-shop/locations/us-central1/gateways/crm".into(),
            display_name: "crm".into(),
            labels: owner
                .map(|o| {
                    BTreeMap::from([(crate::resources::OWNER_LABEL.to_string(), o.to_string())])
                })
                .unwrap_or_default(),
            api_config: "projects/acme-shop/locations/global/apis/crm/configs/c1".into(),
            default_hostname: "crm.uc.gateway.dev".into(),
            state: "ACTIVE".into(),
            created: None,
            api: Some(GatewayApiRecord {
                name: "projects/acme-shop/locations/global/apis/crm".into(),
                managed_service: "crm-abc.apigateway.acme-shop.cloud.goog".into(),
                display_name: "crm".into(),
                labels: BTreeMap::new(),
            }),
            config: None,
        };
        let address = ResourceAddr::new(Kind::Gateway, "crm");
        for (owner, known) in [
            (
                Some("shop"),
                Some("crm-abc.apigateway.acme-shop.cloud.goog"),
            ),
            (None, Some("crm-abc.apigateway.acme-shop.cloud.goog")),
            (Some("other-shop"), None),
        ] {
            let mut observed = Observed::default();
            observed.gateways.push(gateway(owner));
            assert_eq!(
                known_before_apply(&stack, &observed).names[&address].as_deref(),
                known,
                "owner {owner:?}"
            );
        }
    }
}

//! The registry of kinds: one line per kind binds its [`Kind`], its implementation and its list in
//! [`Observed`]; [`Desired`], [`Observed`] and every dispatch over kinds ([`for_kind`]) come
//! from it, so a kind missing here does not compile.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Converge, Reconcile};
use crate::config::Stack;
use crate::cost::{Estimate, PriceTable};
use crate::model::change::Step;
use crate::model::{Kind, ResourceAddr};
use crate::state::Ledger;

/// What the registry knows of a kind beyond its own files: how its spec sits in [`Desired`] and
/// where its live resources sit in [`Observed`]. Implemented by the registry only.
pub trait Registered: Converge {
    fn wrap(spec: Self::Spec) -> Desired;
    /// The spec `desired` carries, when it is of this kind.
    fn unwrap(desired: &Desired) -> Option<&Self::Spec>;
    /// The live resources of this kind that were observed.
    fn lives(observed: &Observed) -> &[Self::Live];
    fn lives_mut(observed: &mut Observed) -> &mut Vec<Self::Live>;
}

/// A pass over one kind, generic in its implementation; [`for_kind`] runs it for a [`Kind`].
pub trait KindVisitor {
    type Output;
    fn visit<K: Registered>(self) -> Self::Output;
}

macro_rules! registry {
    ($($variant:ident => $module:ident::$implementation:ident in $list:ident;)*) => {
        /// What a plan asks apply to write, per kind.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub enum Desired {
            $($variant(<super::$module::$implementation as Reconcile>::Spec),)*
        }

        /// Everything observed in the cloud, read with one list call per kind and location
        /// (IAM grants: from the policies declared grants and ledger bindings point at).
        #[derive(Debug, Clone, Default)]
        pub struct Observed {
            $(pub $list: Vec<<super::$module::$implementation as Reconcile>::Live>,)*
            /// `projects/NUMBER`, looked up with Resource Manager when budgets need it.
            pub project_number: Option<String>,
            /// Why the `[shopify]` shop's subscriptions were not read (its access token has no
            /// value yet): the plan leaves `shopify_webhook` out until it has one.
            pub shopify_unread: Option<String>,
            /// Secrets (`secret.NAME`) that a channel still to be created takes its token from
            /// and that have no enabled version: the plan leaves such a channel waiting.
            pub secrets_without_value: std::collections::BTreeSet<crate::model::ResourceAddr>,
            pub ledger: Ledger,
        }

        $(
            impl Registered for super::$module::$implementation {
                fn wrap(spec: Self::Spec) -> Desired {
                    Desired::$variant(spec)
                }
                #[allow(unreachable_patterns)]
                fn unwrap(desired: &Desired) -> Option<&Self::Spec> {
                    match desired {
                        Desired::$variant(spec) => Some(spec),
                        _ => None,
                    }
                }
                fn lives(observed: &Observed) -> &[Self::Live] {
                    &observed.$list
                }
                fn lives_mut(observed: &mut Observed) -> &mut Vec<Self::Live> {
                    &mut observed.$list
                }
            }
        )*

        /// Runs `visitor` with the implementation of `kind`.
        pub fn for_kind<V: KindVisitor>(kind: Kind, visitor: V) -> V::Output {
            match kind {
                $(Kind::$variant => visitor.visit::<super::$module::$implementation>(),)*
            }
        }

        impl Desired {
            /// The kind of resource this desired state is.
            pub fn kind(&self) -> Kind {
                match self {
                    $(Desired::$variant(_) => Kind::$variant,)*
                }
            }
        }
    };
}

registry! {
    Service => service::ServiceKind in services;
    Queue => queue::QueueKind in queues;
    Dataset => dataset::DatasetKind in datasets;
    Table => table::TableKind in tables;
    Repository => repository::RepositoryKind in repositories;
    Channel => channel::ChannelKind in channels;
    Budget => budget::BudgetKind in budgets;
    Alert => alert::AlertKind in alerts;
    ServiceAccount => service_account::ServiceAccountKind in service_accounts;
    Secret => secret::SecretKind in secrets;
    Job => job::JobKind in jobs;
    Schedule => schedule::ScheduleKind in schedules;
    Firestore => firestore::FirestoreKind in firestores;
    ShopifyWebhook => shopify_webhook::ShopifyWebhookKind in shopify_webhooks;
    Api => api::ApiKind in apis;
    Grant => grant::GrantKind in grants;
    Uptime => uptime::UptimeKind in uptimes;
    Gateway => gateway::GatewayKind in gateways;
    ApiKey => api_key::ApiKeyKind in api_keys;
    Dashboard => dashboard::DashboardKind in dashboards;
}

impl Observed {
    /// Nothing observed yet: an empty project with this ledger.
    pub fn empty(ledger: Ledger) -> Self {
        Self {
            ledger,
            ..Self::default()
        }
    }
}

/// How deep `kind` sits in the dependency chain ([`Reconcile::TIER`]).
pub fn tier(kind: Kind) -> u8 {
    struct Tier;
    impl KindVisitor for Tier {
        type Output = u8;
        fn visit<K: Registered>(self) -> u8 {
            K::TIER
        }
    }
    for_kind(kind, Tier)
}

/// How stackctl takes ownership of resources of `kind` ([`Reconcile::ADOPTION`]).
pub fn adoption(kind: Kind) -> super::Adoption {
    struct Adoption;
    impl KindVisitor for Adoption {
        type Output = super::Adoption;
        fn visit<K: Registered>(self) -> Self::Output {
            K::ADOPTION
        }
    }
    for_kind(kind, Adoption)
}

/// The APIs resources of `kind` are served by ([`Reconcile::APIS`]).
pub fn apis_for(kind: Kind) -> &'static [&'static str] {
    struct Apis;
    impl KindVisitor for Apis {
        type Output = &'static [&'static str];
        fn visit<K: Registered>(self) -> Self::Output {
            K::APIS
        }
    }
    for_kind(kind, Apis)
}

/// The declared resources of `kind` in `stack`, by address, with their full GCP names.
pub fn declared_names(stack: &Stack, kind: Kind) -> BTreeMap<ResourceAddr, String> {
    struct Declared<'a>(&'a Stack);
    impl KindVisitor for Declared<'_> {
        type Output = BTreeMap<ResourceAddr, String>;
        fn visit<K: Registered>(self) -> Self::Output {
            K::declared(self.0)
                .into_iter()
                .map(|(address, spec)| {
                    let name = K::spec_name(&spec).to_string();
                    (address, name)
                })
                .collect()
        }
    }
    for_kind(kind, Declared(stack))
}

/// The full GCP names of the live resources of `kind` in `observed`.
pub fn observed_names(observed: &Observed, kind: Kind) -> BTreeSet<String> {
    struct Live<'a>(&'a Observed);
    impl KindVisitor for Live<'_> {
        type Output = BTreeSet<String>;
        fn visit<K: Registered>(self) -> Self::Output {
            K::lives(self.0)
                .iter()
                .map(|live| K::live_name(live).to_string())
                .collect()
        }
    }
    for_kind(kind, Live(observed))
}

/// The monthly cost of the declared resource at `address` ([`Reconcile::estimate`]); `None` when
/// it is free or not declared.
pub fn declared_cost(
    stack: &Stack,
    prices: &PriceTable,
    address: &ResourceAddr,
) -> Option<Estimate> {
    struct Cost<'a>(&'a Stack, &'a PriceTable, &'a ResourceAddr);
    impl KindVisitor for Cost<'_> {
        type Output = Option<Estimate>;
        fn visit<K: Registered>(self) -> Option<Estimate> {
            K::estimate(self.0, self.1, self.2)
        }
    }
    for_kind(address.kind, Cost(stack, prices, address))
}

/// The monthly cost of every priced resource `stack` declares, by address.
pub fn declared_costs(stack: &Stack, prices: &PriceTable) -> BTreeMap<ResourceAddr, Estimate> {
    Kind::ALL
        .into_iter()
        .flat_map(|kind| declared_names(stack, kind).into_keys())
        .filter_map(|address| declared_cost(stack, prices, &address).map(|e| (address, e)))
        .collect()
}

/// The match key of a planned resource ([`Reconcile::spec_key`]).
pub fn desired_key(desired: &Desired) -> String {
    struct Key<'a>(&'a Desired);
    impl KindVisitor for Key<'_> {
        type Output = String;
        fn visit<K: Registered>(self) -> String {
            K::unwrap(self.0).map(K::spec_key).unwrap_or_default()
        }
    }
    for_kind(desired.kind(), Key(desired))
}

/// Why `step` would lose data, and how to migrate instead ([`Reconcile::data_loss`]).
pub fn data_loss(step: &Step, desired: Option<&Desired>) -> Option<String> {
    struct Loss<'a>(&'a Step, Option<&'a Desired>);
    impl KindVisitor for Loss<'_> {
        type Output = Option<String>;
        fn visit<K: Registered>(self) -> Option<String> {
            K::data_loss(self.0, self.1.and_then(K::unwrap))
        }
    }
    for_kind(step.address.kind, Loss(step, desired))
}

/// The fields in which the declared resource at `address` differs from the live resource
/// `live_name`, whoever owns it: `None` when that is not live (or `address` not declared).
/// `stackctl import` takes ownership only of what this finds empty, against the resource its
/// stanza was written from.
pub fn declared_diff(
    stack: &Stack,
    observed: &Observed,
    known: &super::Known,
    address: &ResourceAddr,
    live_name: &str,
) -> Option<Vec<crate::model::change::FieldChange>> {
    struct Diff<'a>(
        &'a Stack,
        &'a Observed,
        &'a super::Known,
        &'a ResourceAddr,
        &'a str,
    );
    impl KindVisitor for Diff<'_> {
        type Output = Option<Vec<crate::model::change::FieldChange>>;
        fn visit<K: Registered>(self) -> Self::Output {
            let Diff(stack, observed, known, address, live_name) = self;
            let (_, spec) = K::declared(stack).into_iter().find(|(a, _)| a == address)?;
            let live = K::lives(observed)
                .iter()
                .find(|l| K::live_name(l) == live_name)?;
            Some(K::diff(&spec, live, known))
        }
    }
    for_kind(
        address.kind,
        Diff(stack, observed, known, address, live_name),
    )
}

/// The display names by which adopt finds the declared resources of `kind` whose ids the server
/// assigns ([`Reconcile::spec_display_name`]); empty for other kinds.
pub fn declared_display_names(stack: &Stack, kind: Kind) -> std::collections::BTreeSet<String> {
    struct DisplayNames<'a>(&'a Stack);
    impl KindVisitor for DisplayNames<'_> {
        type Output = std::collections::BTreeSet<String>;
        fn visit<K: Registered>(self) -> Self::Output {
            K::declared(self.0)
                .iter()
                .filter_map(|(_, spec)| K::spec_display_name(spec).map(str::to_string))
                .collect()
        }
    }
    for_kind(kind, DisplayNames(stack))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind's implementation says it is that kind: a registry line that pairs a kind with
    /// another kind's implementation fails here.
    #[test]
    fn every_kind_is_registered_with_its_own_implementation() {
        struct Own;
        impl KindVisitor for Own {
            type Output = Kind;
            fn visit<K: Registered>(self) -> Kind {
                K::KIND
            }
        }
        for kind in Kind::ALL {
            assert_eq!(for_kind(kind, Own), kind);
        }
    }
}

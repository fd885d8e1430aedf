//! What `stackctl adopt` takes over for a declared resource, for every kind alike: the live
//! resource plan matches by name or key, or else (server-assigned ids) the one live resource that
//! carries the display name stackctl would give it; and the labels that make it this stack's.

use std::collections::BTreeMap;

use super::registry::{KindVisitor, Registered, for_kind};
use super::{Adoption, NAME_LABEL, OWNER_LABEL, Observed, label_ownership};
use crate::config::Stack;
use crate::model::ResourceAddr;
use crate::provider::{ApiError, Cloud};

pub use super::Ownership;

/// The live resource adopt found for a declared one.
#[derive(Debug)]
pub enum Found {
    /// Nothing matched; `what` says what was looked for.
    Nothing { what: String },
    /// A kind the ledger owns: its full name.
    Ledger { name: String },
    /// A kind owned by label: its full name and whose its labels say it is.
    Labelled { name: String, owner: Ownership },
}

/// Why adopt cannot take over `address`.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    #[error("{address} needs no adoption: {why}")]
    NotNeeded {
        address: ResourceAddr,
        why: &'static str,
    },
    #[error("{address} is not declared in stack.toml: declare it first, then adopt it")]
    NotDeclared { address: ResourceAddr },
    #[error(
        "{address}: {count} resources have the display name {display_name:?} ({names}); adopt takes exactly one: rename or delete the others, then run it again"
    )]
    Ambiguous {
        address: ResourceAddr,
        count: usize,
        display_name: String,
        names: String,
    },
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// Whether `address` is a kind adopt takes over, and is declared: checked before the cloud is read.
pub fn check(stack: &Stack, address: &ResourceAddr) -> Result<(), AdoptError> {
    struct Check<'a>(&'a Stack, &'a ResourceAddr);
    impl KindVisitor for Check<'_> {
        type Output = Result<(), AdoptError>;
        fn visit<K: Registered>(self) -> Self::Output {
            let Check(stack, address) = self;
            if let Adoption::NotNeeded(why) = K::ADOPTION {
                return Err(AdoptError::NotNeeded {
                    address: address.clone(),
                    why,
                });
            }
            if K::declared(stack).iter().any(|(a, _)| a == address) {
                Ok(())
            } else {
                Err(AdoptError::NotDeclared {
                    address: address.clone(),
                })
            }
        }
    }
    for_kind(address.kind, Check(stack, address))
}

/// Finds the live resource `address` declares among what was observed.
pub fn find(
    stack: &Stack,
    observed: &Observed,
    address: &ResourceAddr,
) -> Result<Found, AdoptError> {
    struct Find<'a>(&'a Stack, &'a Observed, &'a ResourceAddr);
    impl KindVisitor for Find<'_> {
        type Output = Result<Found, AdoptError>;
        fn visit<K: Registered>(self) -> Self::Output {
            find_of::<K>(self.0, self.1, self.2)
        }
    }
    for_kind(address.kind, Find(stack, observed, address))
}

fn find_of<K: Registered>(
    stack: &Stack,
    observed: &Observed,
    address: &ResourceAddr,
) -> Result<Found, AdoptError> {
    let Some((_, spec)) = K::declared(stack).into_iter().find(|(a, _)| a == address) else {
        return Err(AdoptError::NotDeclared {
            address: address.clone(),
        });
    };
    let stack_name = stack.settings.name.as_str();
    let lives: Vec<&K::Live> = K::lives(observed)
        .iter()
        .filter(|live| K::adoptable(live, observed))
        .collect();
    let key = K::spec_key(&spec);
    let keyed = lives.iter().copied().find(|live| K::live_key(live) == key);
    let found = match K::spec_display_name(&spec) {
        // Names (or name-like keys) are unique: what plan matches is the one.
        None => keyed,
        // Server-assigned ids: the one plan already matches by its labels, else the one named as
        // stackctl would name it that this stack does not label as another of its resources.
        Some(display_name) => match keyed.filter(|live| K::owner_labels(live).is_some()) {
            Some(live) => Some(live),
            None => {
                let ours_already = |live: &K::Live| {
                    K::owner_labels(live)
                        .and_then(|labels| labels.get(OWNER_LABEL))
                        .is_some_and(|owner| owner == stack_name)
                };
                let named: Vec<&K::Live> = lives
                    .iter()
                    .copied()
                    .filter(|live| K::live_display_name(live) == Some(display_name))
                    .filter(|live| !ours_already(live))
                    .collect();
                match named.as_slice() {
                    [] => {
                        return Ok(Found::Nothing {
                            what: format!(
                                "a {} with the display name {display_name:?}",
                                address.kind
                            ),
                        });
                    }
                    [one] => Some(*one),
                    many => {
                        let names: Vec<&str> = many.iter().map(|l| K::live_name(l)).collect();
                        return Err(AdoptError::Ambiguous {
                            address: address.clone(),
                            count: many.len(),
                            display_name: display_name.to_string(),
                            names: names.join(", "),
                        });
                    }
                }
            }
        },
    };
    Ok(match found {
        Some(live) => found_live::<K>(live, stack_name),
        None => Found::Nothing {
            what: K::spec_name(&spec).to_string(),
        },
    })
}

/// What adopt takes over in `live`: its labels, or its ledger entry.
fn found_live<K: Registered>(live: &K::Live, stack_name: &str) -> Found {
    let name = K::live_name(live).to_string();
    match K::owner_labels(live) {
        Some(labels) => Found::Labelled {
            name,
            owner: label_ownership(labels, stack_name),
        },
        None => Found::Ledger { name },
    }
}

/// The live resource `live_name` of `address`'s kind, for a caller that knows which one the
/// declared resource is (import: its stanza was written from it), so look-alikes with the same
/// display name do not matter; `Nothing` when it is gone or is not one adopt may take.
pub fn find_named(
    stack: &Stack,
    observed: &Observed,
    address: &ResourceAddr,
    live_name: &str,
) -> Found {
    struct FindNamed<'a>(&'a Stack, &'a Observed, &'a str);
    impl KindVisitor for FindNamed<'_> {
        type Output = Found;
        fn visit<K: Registered>(self) -> Found {
            let FindNamed(stack, observed, live_name) = self;
            K::lives(observed)
                .iter()
                .filter(|live| K::adoptable(live, observed))
                .find(|live| K::live_name(live) == live_name)
                .map(|live| found_live::<K>(live, &stack.settings.name))
                .unwrap_or_else(|| Found::Nothing {
                    what: live_name.to_string(),
                })
        }
    }
    for_kind(address.kind, FindNamed(stack, observed, live_name))
}

/// The labels that make a live resource this stack's `address`: the ownership label, and the
/// name label where the server assigns ids.
pub fn ownership_labels(stack: &Stack, address: &ResourceAddr) -> BTreeMap<String, String> {
    struct ServerAssigned<'a>(&'a Stack, &'a ResourceAddr);
    impl KindVisitor for ServerAssigned<'_> {
        type Output = bool;
        fn visit<K: Registered>(self) -> bool {
            K::declared(self.0)
                .iter()
                .find(|(a, _)| a == self.1)
                .is_some_and(|(_, spec)| K::spec_display_name(spec).is_some())
        }
    }
    let mut labels = BTreeMap::from([(OWNER_LABEL.to_string(), stack.settings.name.clone())]);
    if for_kind(address.kind, ServerAssigned(stack, address)) {
        labels.insert(NAME_LABEL.to_string(), address.name.clone());
    }
    labels
}

/// Writes the live labels of `name` plus `added` on it.
pub async fn write_labels(
    cloud: &Cloud,
    stack: &Stack,
    observed: &Observed,
    address: &ResourceAddr,
    name: &str,
    added: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    struct Write<'a> {
        cloud: &'a Cloud,
        stack: &'a Stack,
        observed: &'a Observed,
        name: &'a str,
        added: &'a BTreeMap<String, String>,
    }
    type WriteFuture<'a> =
        std::pin::Pin<Box<dyn Future<Output = Result<(), ApiError>> + Send + 'a>>;
    impl<'a> KindVisitor for Write<'a> {
        type Output = WriteFuture<'a>;
        fn visit<K: Registered>(self) -> WriteFuture<'a> {
            Box::pin(async move {
                let Some(live) = K::lives(self.observed)
                    .iter()
                    .find(|live| K::live_name(live) == self.name)
                else {
                    return Ok(());
                };
                let mut labels = K::owner_labels(live).cloned().unwrap_or_default();
                labels.extend(self.added.clone());
                K::write_adoption_labels(self.cloud, live, &labels, self.stack).await
            })
        }
    }
    for_kind(
        address.kind,
        Write {
            cloud,
            stack,
            observed,
            name,
            added,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::budgets::BudgetRecord;
    use crate::provider::monitoring::ChannelRecord;
    use crate::state::Ledger;

    const STACK: &str = r#"
[stack]
name = "s"
project = "acme-shop"
region = "us-central1"
billing_account = "000000-AAAAAA-BBBBBB"

[channel.oncall]
type = "email"
email = "ops@example.com"

[budget.monthly]
amount_usd = 100
notify = ["channel.oncall"]
"#;

    fn stack() -> Stack {
        crate::config::parse(std::path::Path::new("stack.toml"), STACK).unwrap()
    }

    fn channel(name: &str, display_name: &str, labels: &[(&str, &str)]) -> ChannelRecord {
        ChannelRecord {
            name: name.into(),
            kind: "email".into(),
            display_name: display_name.into(),
            labels: BTreeMap::from([("email_address".into(), "ops@example.com".into())]),
            user_labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn budget(name: &str, display_name: &str, project: &str) -> BudgetRecord {
        BudgetRecord {
            name: name.into(),
            display_name: display_name.into(),
            projects: vec![project.into()],
            amount: None,
            thresholds: vec![],
            forecast_thresholds: vec![],
            channels: vec![],
            etag: String::new(),
        }
    }

    fn find_channel(channels: Vec<ChannelRecord>) -> Result<Found, AdoptError> {
        let observed = Observed {
            channels,
            ..Observed::empty(Ledger::empty("s"))
        };
        find(&stack(), &observed, &"channel.oncall".parse().unwrap())
    }

    #[test]
    fn the_channel_plan_already_matches_wins_over_display_names() {
        let found = find_channel(vec![
            channel("c/1", "oncall", &[]),
            channel(
                "c/2",
                "renamed",
                &[(OWNER_LABEL, "s"), (NAME_LABEL, "oncall")],
            ),
        ])
        .unwrap();
        assert!(
            matches!(&found, Found::Labelled { name, owner: Ownership::Ours } if name == "c/2"),
            "{found:?}"
        );
    }

    #[test]
    fn exactly_one_display_name_match_is_adopted_and_this_stacks_others_do_not_count() {
        let found = find_channel(vec![
            channel(
                "c/1",
                "oncall",
                &[(OWNER_LABEL, "s"), (NAME_LABEL, "pager")],
            ),
            channel("c/2", "oncall", &[(OWNER_LABEL, "t")]),
            channel("c/3", "other", &[]),
        ])
        .unwrap();
        assert!(
            matches!(&found, Found::Labelled { name, owner: Ownership::OtherStack(t) } if name == "c/2" && t == "t"),
            "another stack's is found, then refused: {found:?}"
        );
        let missing = find_channel(vec![channel("c/3", "other", &[])]).unwrap();
        assert!(
            matches!(&missing, Found::Nothing { what } if what == "a channel with the display name \"oncall\""),
            "{missing:?}"
        );
    }

    #[test]
    fn several_display_name_matches_are_an_error_naming_them_all_and_budgets_count_only_this_project()
     {
        let display_name =
            crate::resources::budget::spec(&stack(), "monthly", &stack().budgets["monthly"])
                .display_name;
        let observed = |budgets| Observed {
            budgets,
            project_number: Some("projects/123".into()),
            ..Observed::empty(Ledger::empty("s"))
        };
        let address: ResourceAddr = "budget.monthly".parse().unwrap();
        let two = observed(vec![
            budget("b/1", &display_name, "projects/123"),
            budget("b/2", &display_name, "projects/123"),
        ]);
        let err = find(&stack(), &two, &address).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "2 resources have the display name {display_name:?} (b/1, b/2)"
            )),
            "{err}"
        );
        let one = observed(vec![
            budget("b/1", &display_name, "projects/123"),
            budget("b/2", &display_name, "projects/999"),
        ]);
        assert!(
            matches!(find(&stack(), &one, &address).unwrap(), Found::Ledger { name } if name == "b/1"),
            "another project's budget is no candidate"
        );
    }

    #[test]
    fn a_named_live_resource_is_found_among_look_alikes_and_another_projects_budget_is_not() {
        let observed = Observed {
            channels: vec![channel("c/1", "oncall", &[]), channel("c/2", "oncall", &[])],
            budgets: vec![budget("b/9", "sc:s:monthly", "projects/999")],
            project_number: Some("projects/123".into()),
            ..Observed::empty(Ledger::empty("s"))
        };
        let oncall: ResourceAddr = "channel.oncall".parse().unwrap();
        let found = find_named(&stack(), &observed, &oncall, "c/2");
        assert!(
            matches!(&found, Found::Labelled { name, owner: Ownership::Unowned } if name == "c/2"),
            "{found:?}"
        );
        let monthly: ResourceAddr = "budget.monthly".parse().unwrap();
        assert!(matches!(
            find_named(&stack(), &observed, &monthly, "b/9"),
            Found::Nothing { .. }
        ));
    }

    #[test]
    fn apis_and_grants_need_no_adoption_and_undeclared_addresses_are_refused() {
        let stack = stack();
        let api = check(&stack, &"api.run".parse().unwrap()).unwrap_err();
        assert!(api.to_string().contains("needs no adoption"), "{api}");
        let missing = check(&stack, &"channel.nope".parse().unwrap()).unwrap_err();
        assert!(matches!(missing, AdoptError::NotDeclared { .. }));
        check(&stack, &"budget.monthly".parse().unwrap()).unwrap();
    }
}

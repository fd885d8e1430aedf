//! IAM live records: the unconditional bindings of a resource's policy, and service accounts.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// The unconditional role bindings of a policy: role -> members. Conditional bindings, audit
/// configs and the version are never touched by stackctl and are kept as they are on write.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyRecord {
    pub etag: String,
    pub bindings: BTreeMap<String, BTreeSet<String>>,
}

impl PolicyRecord {
    pub fn has(&self, role: &str, member: &str) -> bool {
        self.bindings
            .get(role)
            .is_some_and(|members| members.contains(member))
    }

    pub fn add(&mut self, role: &str, member: &str) {
        self.bindings
            .entry(role.to_string())
            .or_default()
            .insert(member.to_string());
    }

    pub fn remove(&mut self, role: &str, member: &str) {
        if let Some(members) = self.bindings.get_mut(role) {
            members.remove(member);
            if members.is_empty() {
                self.bindings.remove(role);
            }
        }
    }
}

/// A service account as IAM reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceAccountRecord {
    /// `projects/P/serviceAccounts/EMAIL`
    pub name: String,
    pub email: String,
    pub display_name: String,
    pub description: String,
    pub disabled: bool,
}

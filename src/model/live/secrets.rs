//! Secret Manager live records: a secret's metadata (never a value).

use std::collections::BTreeMap;

/// A secret's metadata as the API reports it (never a value).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecretRecord {
    /// `projects/P/secrets/ID`
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub etag: String,
    pub automatic_replication: bool,
}

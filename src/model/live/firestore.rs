//! Firestore live records: a database and the TTL policies of its collection groups.

use crate::config::TtlField;

/// A Firestore database as the Admin API reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FirestoreRecord {
    /// `projects/P/databases/ID`
    pub name: String,
    pub location: String,
    /// `FIRESTORE_NATIVE` or `DATASTORE_MODE`.
    pub database_type: String,
    pub delete_protection: bool,
    pub point_in_time_recovery: bool,
    /// Whether the free quota applies to it (one database per project).
    pub free_tier: bool,
    pub etag: String,
    /// The fields with a TTL policy (active or being created), sorted.
    pub ttl: Vec<TtlField>,
}

impl FirestoreRecord {
    /// The id that ends the name (`(default)`, `shop-events`).
    pub fn database_id(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or_default()
    }
}

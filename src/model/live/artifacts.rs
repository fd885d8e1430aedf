//! Artifact Registry live records: repositories and the Docker images they hold.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// A repository as the API reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepositoryRecord {
    /// `projects/P/locations/L/repositories/ID`
    pub name: String,
    pub format: String,
    pub labels: BTreeMap<String, String>,
    /// keepCount of the `keep-recent` policy.
    pub keep_recent: Option<u32>,
    /// olderThan of the `delete-untagged` policy.
    pub delete_untagged_after: Option<Duration>,
    /// Ids of every cleanup policy.
    pub policies: Vec<String>,
}

/// A Docker image (one digest) as `dockerImages.list` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DockerImageRecord {
    /// `projects/P/locations/L/repositories/R/dockerImages/PACKAGE@sha256:...`
    pub name: String,
    /// `LOCATION-docker.pkg.dev/P/R/PACKAGE@sha256:...`
    pub uri: String,
    pub tags: Vec<String>,
    pub size_bytes: u64,
}

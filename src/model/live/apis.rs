//! Service Usage live records: an enabled Google API.

/// An enabled API, named with the project **id** (`projects/P/services/run.googleapis.com`),
/// whatever form (id or number) the API answered with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiRecord {
    pub name: String,
}

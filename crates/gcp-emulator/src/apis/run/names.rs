//! Cloud Run service names: their parts, id validation, the not-found error, and the URLs a
//! service is served at.

use crate::apis::collection::is_label_id;
use crate::apis::{Call, project_number};
use crate::conventions::ApiError;
use crate::conventions::wire::stable_hash;

/// The parts of a service name.
pub(super) struct ServiceName {
    pub(super) project: String,
    pub(super) location: String,
    pub(super) id: String,
    pub(super) full: String,
}

impl ServiceName {
    pub(super) fn new(project: &str, location: &str, id: &str) -> Result<Self, ApiError> {
        validate_service_id(id)?;
        Ok(Self {
            project: project.to_string(),
            location: location.to_string(),
            id: id.to_string(),
            full: format!("projects/{project}/locations/{location}/services/{id}"),
        })
    }

    pub(super) fn from_path(call: &Call<'_>) -> Result<Self, ApiError> {
        Self::new(
            call.param("projectsId")?,
            call.param("locationsId")?,
            call.param("servicesId")?,
        )
    }

    pub(super) fn revision(&self, revision_id: &str) -> String {
        format!("{}/revisions/{revision_id}", self.full)
    }
}

pub(super) fn validate_service_id(id: &str) -> Result<(), ApiError> {
    if is_label_id(id, 49) {
        Ok(())
    } else {
        Err(ApiError::invalid_argument(format!(
            "Invalid service id \"{id}\": it must be 1-49 lowercase letters, digits or hyphens, start with a letter \
             and not end with a hyphen."
        )))
    }
}

pub(super) fn service_not_found(name: &ServiceName) -> ApiError {
    ApiError::not_found(format!(
        "Resource '{}' of kind 'SERVICE' in region '{}' in project '{}' does not exist.",
        name.id, name.location, name.project
    ))
}

pub(crate) fn region_code(location: &str) -> String {
    let known = [
        ("us-central1", "uc"),
        ("us-east1", "ue"),
        ("us-east4", "uk"),
        ("us-west1", "uw"),
        ("europe-west1", "ew"),
        ("europe-west2", "nw"),
        ("europe-west3", "ey"),
        ("europe-west4", "ez"),
        ("asia-east1", "de"),
        ("asia-northeast1", "an"),
    ];
    known
        .iter()
        .find(|(region, _)| *region == location)
        .map(|(_, code)| (*code).to_string())
        .unwrap_or_else(|| {
            location
                .split('-')
                .filter_map(|part| part.chars().next())
                .collect()
        })
}

/// `https://ID-<10 hex of the project>-<region code>.a.run.app`, plus the project-number form.
pub(super) fn service_urls(name: &ServiceName) -> (String, Vec<String>) {
    let number = project_number(&name.project);
    let project_hash = &stable_hash(&["run-url", &number])[..10];
    let uri = format!(
        "https://{}-{project_hash}-{}.a.run.app",
        name.id,
        region_code(&name.location)
    );
    let deterministic = format!("https://{}-{number}.{}.run.app", name.id, name.location);
    (uri.clone(), vec![deterministic, uri])
}

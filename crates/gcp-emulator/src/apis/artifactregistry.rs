//! Artifact Registry v1 repositories (create/delete as operations, get/list, masked patch),
//! cleanup-policy validation, and docker images seeded through the admin API.

use serde_json::{Map, Value, json};

use super::collection::{Collection, is_label_id, ordered, remove_under};
use super::lro::{self, NewOperation, as_any};
use super::{Call, Context, Reply};
use crate::conventions::ApiError;
use crate::conventions::field_mask::FieldMask;
use crate::conventions::paging::PagePolicy;
use crate::conventions::wire::timestamp;
use crate::discovery::Api;
use crate::state::{OperationKind, State};

const REPOSITORY_TYPE_URL: &str =
    "type.googleapis.com/google.devtools.artifactregistry.v1.Repository";
const METADATA_TYPE_URL: &str =
    "type.googleapis.com/google.devtools.artifactregistry.v1.OperationMetadata";
const EMPTY_TYPE_URL: &str = "type.googleapis.com/google.protobuf.Empty";
const MAX_CLEANUP_POLICIES: usize = 10;

const REPOSITORIES_POLICY: PagePolicy = PagePolicy {
    default_size: 1000,
    max_size: 1000,
    size_param: "pageSize",
    token_kind: "repositories",
};
const IMAGES_POLICY: PagePolicy = PagePolicy {
    default_size: 1000,
    max_size: 1000,
    size_param: "pageSize",
    token_kind: "dockerImages",
};

const REPOSITORIES: Collection = Collection {
    field: "repositories",
    policy: REPOSITORIES_POLICY,
    map: |state| &state.repositories,
    map_mut: |state| &mut state.repositories,
    not_found: |_| not_found(),
};
const IMAGES: Collection = Collection {
    field: "dockerImages",
    policy: IMAGES_POLICY,
    map: |state| &state.docker_images,
    map_mut: |state| &mut state.docker_images,
    not_found: |_| not_found(),
};

fn repository_name(call: &Call<'_>) -> Result<String, ApiError> {
    let id = call.param("repositoriesId")?;
    Ok(format!("{}/repositories/{id}", call.location_name()?))
}

fn not_found() -> ApiError {
    ApiError::not_found("Requested entity was not found.")
}

fn validate_repository_id(id: &str) -> Result<(), ApiError> {
    if is_label_id(id, 63) {
        Ok(())
    } else {
        Err(ApiError::invalid_argument(format!(
            "Invalid repository id \"{id}\": must start with a letter, end with a letter or number, and contain only lowercase letters, numbers and hyphens."
        )))
    }
}

fn validate_cleanup_policies(repository: &Value) -> Result<(), ApiError> {
    let Some(policies) = repository.get("cleanupPolicies").and_then(Value::as_object) else {
        return Ok(());
    };
    if policies.len() > MAX_CLEANUP_POLICIES {
        return Err(ApiError::invalid_argument(format!(
            "A repository can have at most {MAX_CLEANUP_POLICIES} cleanup policies."
        )));
    }
    for (key, policy) in policies {
        let id = policy.get("id").and_then(Value::as_str).unwrap_or_default();
        if id != key {
            return Err(ApiError::invalid_argument(format!(
                "Cleanup policy key \"{key}\" must equal its id \"{id}\"."
            )));
        }
        if policy
            .get("action")
            .and_then(Value::as_str)
            .is_none_or(|a| a == "ACTION_UNSPECIFIED")
        {
            return Err(ApiError::invalid_argument(format!(
                "Cleanup policy \"{key}\" must specify an action."
            )));
        }
        match (policy.get("condition"), policy.get("mostRecentVersions")) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(ApiError::invalid_argument(format!(
                    "Cleanup policy \"{key}\" must specify exactly one of condition or most_recent_versions."
                )));
            }
            (None, Some(_)) if policy["action"] != "KEEP" => {
                return Err(ApiError::invalid_argument(format!(
                    "Cleanup policy \"{key}\": most_recent_versions is only valid with action KEEP."
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// `LOCATION-docker.pkg.dev/PROJECT/REPOSITORY` (other formats use their own host).
fn registry_uri(project: &str, location: &str, id: &str, format: &str) -> String {
    let host = match format {
        "MAVEN" => "maven",
        "NPM" => "npm",
        "PYTHON" => "python",
        "APT" => "apt",
        "YUM" => "yum",
        "GO" => "go",
        _ => "docker",
    };
    format!("{location}-{host}.pkg.dev/{project}/{id}")
}

fn operation_name(call: &Call<'_>) -> Result<String, ApiError> {
    Ok(format!(
        "{}/operations/{}",
        call.location_name()?,
        uuid::Uuid::new_v4()
    ))
}

fn finish(mut repository: Map<String, Value>) -> Value {
    if repository
        .get("mode")
        .and_then(Value::as_str)
        .is_none_or(|m| m == "MODE_UNSPECIFIED")
    {
        repository.insert("mode".into(), json!("STANDARD_REPOSITORY"));
    }
    ordered(
        repository,
        &[
            "name",
            "format",
            "description",
            "labels",
            "createTime",
            "updateTime",
            "kmsKeyName",
            "mode",
            "cleanupPolicies",
            "sizeBytes",
            "satisfiesPzs",
            "cleanupPolicyDryRun",
            "registryUri",
        ],
    )
}

pub fn create_repository(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let id = call.query.non_empty("repositoryId").ok_or_else(|| {
        ApiError::bad_field(
            "repository_id",
            "repository_id: Required field is not set.".into(),
        )
    })?;
    validate_repository_id(id)?;
    let name = format!("{}/repositories/{id}", call.location_name()?);
    if REPOSITORIES.contains(context.state, &name) {
        return Err(ApiError::already_exists("the repository already exists"));
    }
    let body = call.body_or_empty();
    let format = body
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or("FORMAT_UNSPECIFIED")
        .to_string();
    if format == "FORMAT_UNSPECIFIED" {
        return Err(ApiError::invalid_argument(
            "Repository format must be specified.",
        ));
    }
    validate_cleanup_policies(&body)?;
    let now = timestamp(call.now);
    let mut repository = body.as_object().cloned().unwrap_or_default();
    repository.insert("name".into(), json!(name));
    repository.insert("createTime".into(), json!(now));
    repository.insert("updateTime".into(), json!(now));
    repository.insert("sizeBytes".into(), json!("0"));
    repository.insert(
        "registryUri".into(),
        json!(registry_uri(
            call.param("projectsId")?,
            call.param("locationsId")?,
            id,
            &format
        )),
    );
    let repository = finish(repository);
    context
        .state
        .repositories
        .insert(name.clone(), repository.clone());
    let operation = operation_name(call)?;
    Ok(Reply::Json(lro::start(
        context,
        NewOperation {
            name: operation,
            metadata: as_any(METADATA_TYPE_URL, &json!({})),
            kind: OperationKind::Immediate,
            target: name,
            new_revision: None,
            final_resource: Some(as_any(REPOSITORY_TYPE_URL, &repository)),
        },
        &now,
    )))
}

pub fn get_repository(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    REPOSITORIES
        .get(context.state, &repository_name(call)?)
        .map(Reply::Json)
}

pub fn list_repositories(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let prefix = format!("{}/repositories/", call.location_name()?);
    REPOSITORIES.list(context.state, &prefix, call.query)
}

pub fn patch_repository(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = repository_name(call)?;
    let existing = REPOSITORIES.get(context.state, &name)?;
    let body = call.body_or_empty();
    let mask = FieldMask::parse(
        call.query.non_empty("updateMask"),
        context.discovery,
        Api::ArtifactRegistry,
        "Repository",
    )?;
    let mut repository = existing.clone();
    if mask.is_empty() {
        for (key, value) in body.as_object().cloned().unwrap_or_default() {
            if key != "name" {
                repository[key.as_str()] = value;
            }
        }
    } else {
        mask.apply(&body, &mut repository);
    }
    for fixed in ["format", "mode"] {
        if repository.get(fixed) != existing.get(fixed) && repository.get(fixed).is_some() {
            return Err(ApiError::invalid_argument(format!(
                "Repository {fixed} cannot be changed."
            )));
        }
        repository[fixed] = existing[fixed].clone();
    }
    validate_cleanup_policies(&repository)?;
    repository["updateTime"] = json!(timestamp(call.now));
    let repository = finish(repository.as_object().cloned().unwrap_or_default());
    Ok(REPOSITORIES.store(context.state, name, repository))
}

pub fn delete_repository(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = repository_name(call)?;
    REPOSITORIES.remove(context.state, &name)?;
    remove_under(
        &mut context.state.docker_images,
        &format!("{name}/dockerImages/"),
    );
    super::iam_policy::forget(context.state, &name);
    let operation = operation_name(call)?;
    Ok(Reply::Json(lro::start(
        context,
        NewOperation {
            name: operation,
            metadata: as_any(METADATA_TYPE_URL, &json!({})),
            kind: OperationKind::Immediate,
            target: name,
            new_revision: None,
            final_resource: Some(as_any(EMPTY_TYPE_URL, &json!({}))),
        },
        &timestamp(call.now),
    )))
}

pub fn repository_iam(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = repository_name(call)?;
    REPOSITORIES.require(context.state, &name)?;
    super::iam_policy::answer(context, call, &name)
}

pub fn list_docker_images(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let repository = repository_name(call)?;
    REPOSITORIES.require(context.state, &repository)?;
    IMAGES.list(
        context.state,
        &format!("{repository}/dockerImages/"),
        call.query,
    )
}

pub fn get_docker_image(context: &mut Context<'_>, call: &Call<'_>) -> Result<Reply, ApiError> {
    let name = format!(
        "{}/dockerImages/{}",
        repository_name(call)?,
        call.param("dockerImagesId")?
    );
    IMAGES.get(context.state, &name).map(Reply::Json)
}

/// Stores images posted to `/_emulator/artifactregistry/dockerImages`:
/// `{"repository": "projects/P/locations/L/repositories/R", "images": [{"image": "app",
/// "digest": "sha256:...", "tags": [..], "imageSizeBytes": "123", "uploadTime": "..."}]}`.
pub fn seed_docker_images(state: &mut State, body: &Value) -> Result<Value, String> {
    let repository = body
        .get("repository")
        .and_then(Value::as_str)
        .ok_or("\"repository\" is required")?
        .to_string();
    let stored = state
        .repositories
        .get(&repository)
        .cloned()
        .ok_or_else(|| format!("repository {repository} does not exist"))?;
    let registry = stored
        .get("registryUri")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let images = body
        .get("images")
        .and_then(Value::as_array)
        .ok_or("\"images\" must be an array")?;
    for image in images {
        let package = image
            .get("image")
            .and_then(Value::as_str)
            .ok_or("every image needs \"image\"")?;
        let digest = image
            .get("digest")
            .and_then(Value::as_str)
            .filter(|d| d.starts_with("sha256:"))
            .ok_or("every image needs \"digest\": \"sha256:...\"")?;
        let encoded = package.replace('/', "%2F");
        let name = format!("{repository}/dockerImages/{encoded}@{digest}");
        let upload = image
            .get("uploadTime")
            .cloned()
            .unwrap_or_else(|| json!("2026-01-01T00:00:00Z"));
        let mut entry = json!({
            "name": name,
            "uri": format!("{registry}/{package}@{digest}"),
            "tags": image.get("tags").cloned().unwrap_or_else(|| json!([])),
            "imageSizeBytes": image.get("imageSizeBytes").map(|s| json!(s.as_i64().map_or_else(|| s.as_str().unwrap_or("0").to_string(), |n| n.to_string()))).unwrap_or(json!("0")),
            "uploadTime": upload,
            "mediaType": image.get("mediaType").cloned().unwrap_or(json!("application/vnd.oci.image.manifest.v1+json")),
            "updateTime": upload,
        });
        if let Some(build) = image.get("buildTime") {
            entry["buildTime"] = build.clone();
        }
        state.docker_images.insert(name, entry);
    }
    let prefix = format!("{repository}/dockerImages/");
    let total: i64 = super::collection::entries_under(&state.docker_images, &prefix)
        .filter_map(|(_, i)| {
            i["imageSizeBytes"]
                .as_str()
                .and_then(|s| s.parse::<i64>().ok())
        })
        .sum();
    if let Some(repository) = state.repositories.get_mut(&repository) {
        repository["sizeBytes"] = json!(total.to_string());
    }
    Ok(json!({"images": images.len()}))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::server::testing::TestEmulator;

    const PARENT: &str = "/v1/projects/p1/locations/us-central1";

    #[tokio::test]
    async fn repositories_are_created_by_operations_and_list_seeded_images() {
        let emulator = TestEmulator::with_polls(1);
        let body = json!({"format": "DOCKER", "description": "workers", "cleanupPolicies": {
            "keep-last-10": {"id": "keep-last-10", "action": "KEEP", "mostRecentVersions": {"keepCount": 10}},
            "delete-untagged": {"id": "delete-untagged", "action": "DELETE", "condition": {"tagState": "UNTAGGED", "olderThan": "604800s"}}}});
        let (status, operation) = emulator
            .send(
                "POST",
                &format!("{PARENT}/repositories?repositoryId=workers"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 200, "{operation}");
        let name = operation["name"].as_str().unwrap_or_default().to_string();
        assert!(name.starts_with("projects/p1/locations/us-central1/operations/"));
        let (_, _) = emulator.send("GET", &format!("/v1/{name}"), None).await;
        let (_, done) = emulator
            .send(
                "GET",
                &format!("/v1/{name}?%24alt=json%3Benum-encoding%3Dint"),
                None,
            )
            .await;
        assert_eq!(done["done"], true, "{done}");
        let repository = &done["response"];
        assert_eq!(
            repository["@type"],
            "type.googleapis.com/google.devtools.artifactregistry.v1.Repository"
        );
        assert_eq!(
            (repository["format"].clone(), repository["mode"].clone()),
            (json!(1), json!(1))
        );
        assert_eq!(
            repository["registryUri"],
            "us-central1-docker.pkg.dev/p1/workers"
        );
        assert_eq!(
            repository["cleanupPolicies"]["keep-last-10"]["mostRecentVersions"]["keepCount"],
            10
        );
        let (status, _) = emulator
            .send(
                "POST",
                &format!("{PARENT}/repositories?repositoryId=workers"),
                Some(body),
            )
            .await;
        assert_eq!(status, 409);
        let bad = json!({"format": "DOCKER", "cleanupPolicies": {"x": {"id": "y", "action": "DELETE", "condition": {}}}});
        assert_eq!(
            emulator
                .send(
                    "POST",
                    &format!("{PARENT}/repositories?repositoryId=bad"),
                    Some(bad)
                )
                .await
                .0,
            400
        );

        let (status, patched) = emulator
            .send(
                "PATCH",
                &format!(
                    "{PARENT}/repositories/workers?updateMask=cleanupPolicyDryRun,cleanupPolicies"
                ),
                Some(json!({"cleanupPolicyDryRun": true})),
            )
            .await;
        assert_eq!(status, 200, "{patched}");
        assert_eq!(patched["cleanupPolicyDryRun"], true);
        assert!(patched.get("cleanupPolicies").is_none());

        let seed = json!({"repository": "projects/p1/locations/us-central1/repositories/workers", "images": [
            {"image": "ingest/app", "digest": "sha256:abc", "tags": ["v1"], "imageSizeBytes": 1000, "uploadTime": "2026-01-02T00:00:00Z"}]});
        assert_eq!(
            emulator
                .send(
                    "POST",
                    "/_emulator/artifactregistry/dockerImages",
                    Some(seed)
                )
                .await
                .0,
            200
        );
        let (_, images) = emulator
            .send(
                "GET",
                &format!("{PARENT}/repositories/workers/dockerImages?pageSize=0"),
                None,
            )
            .await;
        assert_eq!(
            images["dockerImages"][0]["uri"],
            "us-central1-docker.pkg.dev/p1/workers/ingest/app@sha256:abc"
        );
        assert_eq!(images["dockerImages"][0]["imageSizeBytes"], "1000");
        let (_, repository) = emulator
            .send("GET", &format!("{PARENT}/repositories/workers"), None)
            .await;
        assert_eq!(repository["sizeBytes"], "1000");
        let (status, deleted) = emulator
            .send("DELETE", &format!("{PARENT}/repositories/workers"), None)
            .await;
        assert_eq!(status, 200, "{deleted}");
        assert_eq!(
            emulator
                .send("GET", &format!("{PARENT}/repositories/workers"), None)
                .await
                .0,
            404
        );
    }
}

//! The OCI distribution API (`/v2/<name>/...`) of Artifact Registry's Docker repositories, so
//! `stackctl deploy --local` can push images with nothing else installed.
//!
//! Repository names are Artifact Registry paths (`PROJECT/REPO/IMAGE`); the region host is the
//! image name's business, not the transport's. Blobs are linked per repository (a HEAD in another
//! repository is 404 until the blob is pushed or mounted there, as in CNCF distribution);
//! manifests must reference blobs the repository has. Blob bytes live in files under the state
//! directory (or in memory), manifests and tags in the state file.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::emulator::Emulator;
use crate::http::{HttpRequest, HttpResponse};
use crate::lock;
use crate::state::StoredManifest;

const API_VERSION_HEADER: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");

/// Whether a path belongs to the distribution API rather than a Google REST API. Google's `/v2/`
/// paths (`/v2/projects/...`) never contain these segments.
pub fn is_registry_path(path: &str) -> bool {
    path == "/v2/"
        || path == "/v2"
        || path == "/v2/_catalog"
        || (path.starts_with("/v2/")
            && (path.contains("/blobs/")
                || path.contains("/manifests/")
                || path.ends_with("/tags/list")))
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn error(status: u16, code: &str, message: &str, detail: &str) -> HttpResponse {
    let mut response = HttpResponse::json(
        status,
        &json!({"errors": [{"code": code, "message": message, "detail": detail}]}),
    );
    response.headers.push((
        API_VERSION_HEADER.0.to_string(),
        API_VERSION_HEADER.1.to_string(),
    ));
    response
}

fn empty(status: u16, headers: Vec<(String, String)>) -> HttpResponse {
    let mut all = vec![(
        API_VERSION_HEADER.0.to_string(),
        API_VERSION_HEADER.1.to_string(),
    )];
    all.extend(headers);
    all.push(("content-length".into(), "0".into()));
    HttpResponse {
        status,
        headers: all,
        body: Vec::new(),
    }
}

fn with_body(method: &str, content_type: &str, digest: &str, body: Vec<u8>) -> HttpResponse {
    let headers = vec![
        (
            API_VERSION_HEADER.0.to_string(),
            API_VERSION_HEADER.1.to_string(),
        ),
        ("content-type".to_string(), content_type.to_string()),
        ("docker-content-digest".to_string(), digest.to_string()),
        ("content-length".to_string(), body.len().to_string()),
    ];
    HttpResponse {
        status: 200,
        headers,
        body: if method == "HEAD" { Vec::new() } else { body },
    }
}

/// What a distribution path addresses.
#[derive(Debug, PartialEq, Eq)]
enum Target<'p> {
    Base,
    Catalog,
    Tags(&'p str),
    Manifest(&'p str, &'p str),
    Upload(&'p str, Option<&'p str>),
    Blob(&'p str, &'p str),
}

fn target(path: &str) -> Option<Target<'_>> {
    match path {
        "/v2" | "/v2/" => return Some(Target::Base),
        "/v2/_catalog" => return Some(Target::Catalog),
        _ => {}
    }
    let rest = path.strip_prefix("/v2/")?;
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Target::Tags(name));
    }
    if let Some((name, session)) = rest.split_once("/blobs/uploads") {
        let session = session.trim_start_matches('/');
        return Some(Target::Upload(
            name,
            (!session.is_empty()).then_some(session),
        ));
    }
    if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
        return Some(Target::Manifest(name, reference));
    }
    if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
        return Some(Target::Blob(name, digest));
    }
    None
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|component| {
            !component.is_empty()
                && component.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && component
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        })
}

fn query_value(query: Option<&str>, key: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| crate::conventions::wire::percent_decode(v))
}

fn header<'h>(request: &'h HttpRequest, name: &str) -> Option<&'h str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Serves one distribution API request.
pub fn handle(emulator: &Emulator, request: &HttpRequest) -> HttpResponse {
    let store = &emulator.registry;
    let Some(target) = target(&request.raw_path) else {
        return error(
            404,
            "NAME_UNKNOWN",
            "repository name not known to registry",
            "",
        );
    };
    let method = request.method.as_str();
    let query = request.raw_query.as_deref();
    if let Target::Tags(name)
    | Target::Manifest(name, _)
    | Target::Upload(name, _)
    | Target::Blob(name, _) = &target
        && !valid_name(name)
    {
        return error(400, "NAME_INVALID", "invalid repository name", name);
    }
    match (method, target) {
        ("GET" | "HEAD", Target::Base) => {
            let mut response = HttpResponse::json(200, &json!({}));
            response.headers.push((
                API_VERSION_HEADER.0.to_string(),
                API_VERSION_HEADER.1.to_string(),
            ));
            response
        }
        ("GET", Target::Catalog) => {
            let state = lock(&emulator.state);
            let names: Vec<&String> = state.registry.keys().collect();
            HttpResponse::json(200, &json!({ "repositories": names }))
        }
        ("GET", Target::Tags(name)) => {
            let state = lock(&emulator.state);
            match state.registry.get(name) {
                Some(repository) => HttpResponse::json(
                    200,
                    &json!({ "name": name, "tags": repository.tags.keys().collect::<Vec<_>>() }),
                ),
                None => error(
                    404,
                    "NAME_UNKNOWN",
                    "repository name not known to registry",
                    name,
                ),
            }
        }
        ("GET" | "HEAD", Target::Blob(name, digest)) => {
            let linked = lock(&emulator.state)
                .registry
                .get(name)
                .is_some_and(|r| r.blobs.contains(digest));
            match linked.then(|| store.get(digest)).flatten() {
                Some(bytes) => with_body(method, "application/octet-stream", digest, bytes),
                None => error(404, "BLOB_UNKNOWN", "blob unknown to registry", digest),
            }
        }
        ("POST", Target::Upload(name, None)) => {
            if let (Some(digest), Some(from)) =
                (query_value(query, "mount"), query_value(query, "from"))
            {
                let mut state = lock(&emulator.state);
                let in_source = state
                    .registry
                    .get(&from)
                    .is_some_and(|r| r.blobs.contains(&digest));
                if in_source && store.get(&digest).is_some() {
                    state
                        .registry
                        .entry(name.to_string())
                        .or_default()
                        .blobs
                        .insert(digest.clone());
                    emulator.persist(&state);
                    return empty(
                        201,
                        vec![
                            ("location".into(), format!("/v2/{name}/blobs/{digest}")),
                            ("docker-content-digest".into(), digest),
                        ],
                    );
                }
            }
            if let Some(digest) = query_value(query, "digest") {
                return finish_upload(emulator, name, &digest, request.body.to_vec());
            }
            let session = uuid::Uuid::new_v4().to_string();
            lock(&store.uploads).insert(session.clone(), (name.to_string(), Vec::new()));
            empty(
                202,
                vec![
                    (
                        "location".into(),
                        format!("/v2/{name}/blobs/uploads/{session}"),
                    ),
                    ("range".into(), "0-0".into()),
                    ("docker-upload-uuid".into(), session),
                ],
            )
        }
        ("PATCH", Target::Upload(name, Some(session))) => {
            let mut uploads = lock(&store.uploads);
            let Some((repository, bytes)) = uploads.get_mut(session) else {
                return error(
                    404,
                    "BLOB_UPLOAD_UNKNOWN",
                    "blob upload unknown to registry",
                    session,
                );
            };
            if repository != name {
                return error(
                    404,
                    "BLOB_UPLOAD_UNKNOWN",
                    "blob upload unknown to registry",
                    session,
                );
            }
            if let Some(range) = header(request, "content-range")
                && let Some(start) = range
                    .split('-')
                    .next()
                    .and_then(|s| s.trim().parse::<usize>().ok())
                && start != bytes.len()
            {
                return error(
                    416,
                    "BLOB_UPLOAD_INVALID",
                    "blob upload invalid",
                    "chunk out of order",
                );
            }
            bytes.extend_from_slice(&request.body);
            let end = bytes.len().saturating_sub(1);
            empty(
                202,
                vec![
                    (
                        "location".into(),
                        format!("/v2/{name}/blobs/uploads/{session}"),
                    ),
                    ("range".into(), format!("0-{end}")),
                    ("docker-upload-uuid".into(), session.to_string()),
                ],
            )
        }
        ("PUT", Target::Upload(name, Some(session))) => {
            let Some(digest) = query_value(query, "digest") else {
                return error(
                    400,
                    "DIGEST_INVALID",
                    "provided digest did not match uploaded content",
                    "no digest",
                );
            };
            let Some((repository, mut bytes)) = lock(&store.uploads).remove(session) else {
                return error(
                    404,
                    "BLOB_UPLOAD_UNKNOWN",
                    "blob upload unknown to registry",
                    session,
                );
            };
            if repository != name {
                return error(
                    404,
                    "BLOB_UPLOAD_UNKNOWN",
                    "blob upload unknown to registry",
                    session,
                );
            }
            bytes.extend_from_slice(&request.body);
            finish_upload(emulator, name, &digest, bytes)
        }
        ("DELETE", Target::Upload(_, Some(session))) => {
            lock(&store.uploads).remove(session);
            empty(204, vec![])
        }
        ("GET" | "HEAD", Target::Manifest(name, reference)) => {
            let state = lock(&emulator.state);
            let Some(repository) = state.registry.get(name) else {
                return error(404, "MANIFEST_UNKNOWN", "manifest unknown", reference);
            };
            let digest = repository
                .tags
                .get(reference)
                .cloned()
                .unwrap_or_else(|| reference.to_string());
            match repository.manifests.get(&digest) {
                Some(manifest) => with_body(
                    method,
                    &manifest.media_type,
                    &digest,
                    manifest.body.clone().into_bytes(),
                ),
                None => error(404, "MANIFEST_UNKNOWN", "manifest unknown", reference),
            }
        }
        ("PUT", Target::Manifest(name, reference)) => {
            put_manifest(emulator, request, name, reference)
        }
        ("DELETE", Target::Manifest(name, reference)) => {
            let mut state = lock(&emulator.state);
            let Some(repository) = state.registry.get_mut(name) else {
                return error(404, "MANIFEST_UNKNOWN", "manifest unknown", reference);
            };
            if repository.manifests.remove(reference).is_none() {
                return error(404, "MANIFEST_UNKNOWN", "manifest unknown", reference);
            }
            repository.tags.retain(|_, digest| digest != reference);
            emulator.persist(&state);
            empty(202, vec![])
        }
        _ => error(
            405,
            "UNSUPPORTED",
            "The operation is unsupported.",
            &request.raw_path,
        ),
    }
}

fn finish_upload(emulator: &Emulator, name: &str, digest: &str, bytes: Vec<u8>) -> HttpResponse {
    let actual = sha256(&bytes);
    if actual != digest {
        return error(
            400,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
            &format!("expected {digest}, got {actual}"),
        );
    }
    if let Err(e) = emulator.registry.put(digest, bytes) {
        return error(500, "UNKNOWN", "cannot store blob", &e.to_string());
    }
    let mut state = lock(&emulator.state);
    state
        .registry
        .entry(name.to_string())
        .or_default()
        .blobs
        .insert(digest.to_string());
    emulator.persist(&state);
    empty(
        201,
        vec![
            ("location".into(), format!("/v2/{name}/blobs/{digest}")),
            ("docker-content-digest".into(), digest.to_string()),
        ],
    )
}

fn referenced_digests(manifest: &Value) -> Vec<String> {
    let config = manifest["config"]["digest"].as_str().map(str::to_string);
    let layers = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["digest"].as_str().map(str::to_string));
    config.into_iter().chain(layers).collect()
}

fn put_manifest(
    emulator: &Emulator,
    request: &HttpRequest,
    name: &str,
    reference: &str,
) -> HttpResponse {
    let body = request.body.to_vec();
    let digest = sha256(&body);
    let Ok(parsed) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "MANIFEST_INVALID", "manifest invalid", "not JSON");
    };
    let media_type = header(request, "content-type")
        .map(str::to_string)
        .or_else(|| parsed["mediaType"].as_str().map(str::to_string))
        .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into());
    if reference.starts_with("sha256:") && reference != digest {
        return error(
            400,
            "DIGEST_INVALID",
            "provided digest did not match uploaded content",
            reference,
        );
    }
    let mut state = lock(&emulator.state);
    let repository = state.registry.entry(name.to_string()).or_default();
    if let Some(missing) = referenced_digests(&parsed)
        .into_iter()
        .find(|d| !repository.blobs.contains(d))
    {
        return error(
            400,
            "MANIFEST_BLOB_UNKNOWN",
            "blob unknown to registry",
            &missing,
        );
    }
    let Ok(text) = String::from_utf8(body) else {
        return error(400, "MANIFEST_INVALID", "manifest invalid", "not UTF-8");
    };
    repository.manifests.insert(
        digest.clone(),
        StoredManifest {
            media_type,
            body: text,
        },
    );
    if !reference.starts_with("sha256:") {
        repository
            .tags
            .insert(reference.to_string(), digest.clone());
    }
    emulator.persist(&state);
    empty(
        201,
        vec![
            ("location".into(), format!("/v2/{name}/manifests/{digest}")),
            ("docker-content-digest".into(), digest),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::testing::TestEmulator;

    fn header_of(response: &HttpResponse, name: &str) -> Option<String> {
        response
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    #[test]
    fn registry_paths_never_collide_with_google_paths() {
        assert!(is_registry_path("/v2/"));
        assert!(is_registry_path("/v2/p/workers/w/blobs/uploads/"));
        assert!(is_registry_path("/v2/p/workers/w/manifests/latest"));
        assert!(is_registry_path("/v2/p/workers/w/tags/list"));
        assert!(!is_registry_path("/v2/projects/p/locations/l/services/s"));
        assert!(!is_registry_path("/v2/projects/p/locations/l/queues"));
        assert_eq!(
            target("/v2/a/b/c/blobs/uploads/xyz"),
            Some(Target::Upload("a/b/c", Some("xyz")))
        );
        assert_eq!(
            target("/v2/a/b/blobs/sha256:00"),
            Some(Target::Blob("a/b", "sha256:00"))
        );
    }

    #[tokio::test]
    async fn chunked_upload_manifest_and_read_back_with_the_same_digest() {
        let emulator = TestEmulator::with_polls(0);
        let blob = b"layer bytes".to_vec();
        let digest = sha256(&blob);
        let repo = "/v2/acme/workers/worker";
        let head = emulator
            .raw("HEAD", &format!("{repo}/blobs/{digest}"), vec![], &[])
            .await;
        assert_eq!(head.status, 404);
        let started = emulator
            .raw("POST", &format!("{repo}/blobs/uploads/"), vec![], &[])
            .await;
        assert_eq!(started.status, 202);
        let location = header_of(&started, "location").unwrap();
        let patched = emulator
            .raw(
                "PATCH",
                &location,
                blob.clone(),
                &[("content-range", "0-10")],
            )
            .await;
        assert_eq!(patched.status, 202);
        let done = emulator
            .raw("PUT", &format!("{location}?digest={digest}"), vec![], &[])
            .await;
        assert_eq!(done.status, 201);
        assert_eq!(
            emulator
                .raw("HEAD", &format!("{repo}/blobs/{digest}"), vec![], &[])
                .await
                .status,
            200
        );
        // Another repository sees it only after a mount.
        let other = "/v2/acme/workers/other";
        assert_eq!(
            emulator
                .raw("HEAD", &format!("{other}/blobs/{digest}"), vec![], &[])
                .await
                .status,
            404
        );
        let mounted = emulator
            .raw(
                "POST",
                &format!("{other}/blobs/uploads/?mount={digest}&from=acme/workers/worker"),
                vec![],
                &[],
            )
            .await;
        assert_eq!(mounted.status, 201);

        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "config": {"digest": digest, "size": 11, "mediaType": "application/vnd.oci.image.config.v1+json"},
            "layers": []
        }))
        .unwrap();
        let manifest_digest = sha256(&manifest);
        let put = emulator
            .raw(
                "PUT",
                &format!("{repo}/manifests/git-abc"),
                manifest.clone(),
                &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
            )
            .await;
        assert_eq!(put.status, 201);
        assert_eq!(
            header_of(&put, "docker-content-digest"),
            Some(manifest_digest.clone())
        );
        let got = emulator
            .raw("HEAD", &format!("{repo}/manifests/git-abc"), vec![], &[])
            .await;
        assert_eq!(
            header_of(&got, "docker-content-digest"),
            Some(manifest_digest.clone())
        );
        let by_digest = emulator
            .raw(
                "GET",
                &format!("{repo}/manifests/{manifest_digest}"),
                vec![],
                &[],
            )
            .await;
        assert_eq!(by_digest.body, manifest);

        let dangling =
            serde_json::to_vec(&json!({"config": {"digest": "sha256:00"}, "layers": []})).unwrap();
        let refused = emulator
            .raw("PUT", &format!("{repo}/manifests/bad"), dangling, &[])
            .await;
        assert_eq!(refused.status, 400);
        let (_, tags) = emulator
            .send("GET", &format!("{repo}/tags/list"), None)
            .await;
        assert_eq!(tags["tags"], json!(["git-abc"]));
    }

    #[tokio::test]
    async fn a_wrong_digest_is_refused() {
        let emulator = TestEmulator::with_polls(0);
        let put = emulator
            .raw(
                "POST",
                "/v2/a/b/blobs/uploads/?digest=sha256:00",
                b"x".to_vec(),
                &[],
            )
            .await;
        assert_eq!(put.status, 400);
        let (status, base) = emulator.send("GET", "/v2/", None).await;
        assert_eq!((status, base), (200, json!({})));
    }
}

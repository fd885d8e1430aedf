//! Pushes built images to an OCI registry with `oci-client`: every blob HEAD-checked first,
//! cross-repository mounted when this run already pushed it elsewhere in the same registry,
//! uploaded only when missing; then the manifest, tagged, and its digest read back.
//!
//! Image names are always Artifact Registry names (`REGION-docker.pkg.dev/PROJECT/REPO/IMAGE`),
//! which is what Cloud Run accepts; only the transport changes: Google's host with an
//! `oauth2accesstoken` login, or another registry URL (`--local`'s emulator, a test registry).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use tokio::sync::Mutex;

use super::image::{MANIFEST_MEDIA_TYPE, OciImage};

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("registry URL {url:?} is not usable: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("{step} {what} at {registry} failed: {detail}{hint}", hint = hint(detail))]
    Registry {
        step: &'static str,
        what: String,
        registry: String,
        detail: String,
    },
    #[error(
        "refusing to send the Google access token to {host:?}: it is not a Google registry host (REGION-docker.pkg.dev, gcr.io, *.gcr.io)\n  hint: check the region; `--registry URL` pushes to another registry, without the token"
    )]
    NotGoogleHost { host: String },
    #[error(
        "the registry reports digest {reported} for {image}, but stackctl built {built}; refusing to deploy a different image"
    )]
    DigestMismatch {
        image: String,
        built: String,
        reported: String,
    },
}

fn hint(detail: &str) -> String {
    if detail.contains("uploadArtifacts") || detail.contains("403") || detail.contains("denied") {
        "\n  hint: the Artifact Registry repository must exist in that region, and you need roles/artifactregistry.writer on it".into()
    } else if detail.contains("error sending request") || detail.contains("connect") {
        "\n  hint: is the registry running and reachable? (`--registry URL` picks another one)"
            .into()
    } else {
        String::new()
    }
}

/// `REGION-docker.pkg.dev/PROJECT/REPO/IMAGE`: how Cloud Run and Artifact Registry name an image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageName {
    /// `us-central1-docker.pkg.dev`
    pub host: String,
    /// `PROJECT/REPO/IMAGE`
    pub path: String,
}

impl ImageName {
    pub fn artifact_registry(region: &str, project: &str, repository: &str, image: &str) -> Self {
        Self {
            host: format!("{region}-docker.pkg.dev"),
            path: format!("{project}/{repository}/{image}"),
        }
    }

    /// `NAME@sha256:...`: what Cloud Run runs.
    pub fn at_digest(&self, digest: &str) -> String {
        format!("{self}@{digest}")
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.path)
    }
}

/// Whether `host` is one of Google's registries, the only hosts the access token is sent to:
/// `LOCATION-docker.pkg.dev` (Artifact Registry), `gcr.io` and `SUB.gcr.io` (Container
/// Registry); one DNS label of lowercase letters, digits and `-` before the suffix, no port.
pub fn is_google_registry_host(host: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.starts_with(|c: char| c.is_ascii_lowercase())
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    host == "gcr.io"
        || host.strip_suffix(".gcr.io").is_some_and(label)
        || host.strip_suffix("-docker.pkg.dev").is_some_and(label)
}

/// Where blobs and manifests travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// The image's own host over HTTPS, logging in as `oauth2accesstoken` with this access token.
    ArtifactRegistry { access_token: String },
    /// Another registry (`http://127.0.0.1:5000`, the emulator): same paths, anonymous.
    Url(String),
}

/// What happened to one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlobOutcome {
    /// The registry had it already (HEAD answered 200): nothing sent.
    Exists,
    /// Mounted from another repository of the same registry: nothing sent.
    Mounted,
    Uploaded,
}

/// The outcome of one push.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PushReport {
    /// `REGION-docker.pkg.dev/PROJECT/REPO/IMAGE@sha256:...`
    pub image: String,
    pub digest: String,
    pub tag: Option<String>,
    /// `(digest, outcome)` per blob, layers then config.
    pub blobs: Vec<(String, BlobOutcome)>,
    /// Bytes actually sent for blobs.
    pub uploaded_bytes: u64,
}

impl PushReport {
    pub fn count(&self, outcome: BlobOutcome) -> usize {
        self.blobs.iter().filter(|(_, o)| *o == outcome).count()
    }
}

/// Reports blob decisions and retries as they happen (the engine never prints).
pub trait PushObserver: Send + Sync {
    fn blob(&self, digest: &str, size: u64, outcome: BlobOutcome);
    fn retrying(&self, attempt: u32, delay: Duration, reason: &str);
}

/// Registry calls are tried this many times when they fail transiently.
const PUSH_ATTEMPTS: u32 = 5;

/// Why retrying a failed registry call may succeed: 429, 5xx, a dropped or refused connection.
/// A whole blob upload is retried from its start, as ggcr does.
fn transient(error: &OciDistributionError) -> Option<String> {
    let retryable_status = |code: u16| code == 429 || (500..600).contains(&code);
    match error {
        OciDistributionError::ServerError { code, .. } if retryable_status(*code) => {
            Some(format!("HTTP {code}"))
        }
        OciDistributionError::RequestError(e) => match e.status() {
            Some(status) if retryable_status(status.as_u16()) => {
                Some(format!("HTTP {}", status.as_u16()))
            }
            Some(_) => None,
            None if e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() => {
                Some(format!("network error: {e}"))
            }
            None => None,
        },
        OciDistributionError::RegistryError { envelope, .. }
            if envelope
                .errors
                .iter()
                .any(|e| e.code == OciErrorCode::Toomanyrequests) =>
        {
            Some("TOOMANYREQUESTS".into())
        }
        _ => None,
    }
}

/// Runs `call` until it succeeds, fails for good, or [`PUSH_ATTEMPTS`] are spent, with
/// jittered exponential backoff between attempts.
async fn retried<T, Fut>(
    observer: &dyn PushObserver,
    mut call: impl FnMut() -> Fut,
) -> Result<T, OciDistributionError>
where
    Fut: Future<Output = Result<T, OciDistributionError>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Err(error) if attempt < PUSH_ATTEMPTS => {
                let Some(reason) = transient(&error) else {
                    return Err(error);
                };
                let base = Duration::from_millis(100) * 2u32.pow(attempt - 1);
                let delay = base
                    .min(Duration::from_secs(5))
                    .mul_f64(0.5 + rand::random::<f64>() / 2.0);
                attempt += 1;
                observer.retrying(attempt, delay, &reason);
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}

/// A registry client for one run.
pub struct Pusher {
    client: Client,
    auth: RegistryAuth,
    /// `host[:port]` requests go to; `None` = each image's own host.
    transport_host: Option<String>,
    /// Blobs this run pushed or found, by digest -> repository path (sources for mounts).
    seen: Mutex<BTreeMap<String, String>>,
}

impl Pusher {
    pub fn new(transport: &Transport) -> Result<Self, PushError> {
        let (protocol, auth, transport_host) = match transport {
            Transport::ArtifactRegistry { access_token } => (
                ClientProtocol::Https,
                RegistryAuth::Basic("oauth2accesstoken".into(), access_token.clone()),
                None,
            ),
            Transport::Url(url) => {
                let bad = |reason: &str| PushError::BadUrl {
                    url: url.clone(),
                    reason: reason.into(),
                };
                let (scheme, rest) = url
                    .split_once("://")
                    .ok_or_else(|| bad("expected http://HOST:PORT or https://HOST"))?;
                let host = rest.trim_end_matches('/').to_string();
                if host.is_empty() || host.contains('/') {
                    return Err(bad("a registry URL is a scheme and a host, with no path"));
                }
                let protocol = match scheme {
                    "http" => ClientProtocol::HttpsExcept(vec![host.clone()]),
                    "https" => ClientProtocol::Https,
                    _ => return Err(bad("the scheme must be http or https")),
                };
                (protocol, RegistryAuth::Anonymous, Some(host))
            }
        };
        let client = Client::new(ClientConfig {
            protocol,
            ..ClientConfig::default()
        });
        Ok(Self {
            client,
            auth,
            transport_host,
            seen: Mutex::new(BTreeMap::new()),
        })
    }

    fn registry_of(&self, name: &ImageName) -> String {
        self.transport_host
            .clone()
            .unwrap_or_else(|| name.host.clone())
    }

    fn reference(&self, name: &ImageName, tag: Option<&str>, digest: &str) -> Reference {
        match tag {
            Some(tag) => Reference::with_tag(self.registry_of(name), name.path.clone(), tag.into()),
            None => {
                Reference::with_digest(self.registry_of(name), name.path.clone(), digest.into())
            }
        }
    }

    fn failed(
        &self,
        step: &'static str,
        what: impl Into<String>,
        name: &ImageName,
    ) -> impl Fn(OciDistributionError) -> PushError {
        let what = what.into();
        let registry = self.registry_of(name);
        move |e| PushError::Registry {
            step,
            what: what.clone(),
            registry: registry.clone(),
            detail: e.to_string(),
        }
    }

    /// Pushes `image` as `name` (tagged `tag` when given, else by digest) and checks the
    /// registry reports the digest stackctl computed.
    pub async fn push(
        &self,
        name: &ImageName,
        image: &OciImage,
        tag: Option<&str>,
        observer: &dyn PushObserver,
    ) -> Result<PushReport, PushError> {
        if matches!(self.auth, RegistryAuth::Basic(..)) && !is_google_registry_host(&name.host) {
            return Err(PushError::NotGoogleHost {
                host: name.host.clone(),
            });
        }
        let reference = self.reference(name, tag, image.digest());
        self.client
            .store_auth_if_needed(reference.resolve_registry(), &self.auth)
            .await;
        let mut blobs = Vec::new();
        let mut uploaded_bytes = 0;
        for blob in image.blobs() {
            let outcome = self
                .push_blob(name, &reference, &blob.digest, &blob.bytes, observer)
                .await?;
            if outcome == BlobOutcome::Uploaded {
                uploaded_bytes += blob.size();
            }
            observer.blob(&blob.digest, blob.size(), outcome);
            blobs.push((blob.digest.clone(), outcome));
        }
        retried(observer, || {
            self.client.push_manifest_raw(
                &reference,
                image.manifest.bytes.clone(),
                reqwest::header::HeaderValue::from_static(MANIFEST_MEDIA_TYPE),
            )
        })
        .await
        .map_err(self.failed("pushing", format!("the manifest of {name}"), name))?;
        let reported = retried(observer, || {
            self.client.fetch_manifest_digest(&reference, &self.auth)
        })
        .await
        .map_err(self.failed("reading back", format!("the manifest of {name}"), name))?;
        if reported != image.digest() {
            return Err(PushError::DigestMismatch {
                image: name.to_string(),
                built: image.digest().to_string(),
                reported,
            });
        }
        Ok(PushReport {
            image: name.at_digest(image.digest()),
            digest: image.digest().to_string(),
            tag: tag.map(str::to_string),
            blobs,
            uploaded_bytes,
        })
    }

    async fn push_blob(
        &self,
        name: &ImageName,
        reference: &Reference,
        digest: &str,
        bytes: &[u8],
        observer: &dyn PushObserver,
    ) -> Result<BlobOutcome, PushError> {
        let exists = retried(observer, || self.client.blob_exists(reference, digest))
            .await
            .map_err(self.failed("checking", format!("blob {digest} of {name}"), name))?;
        let outcome = if exists {
            BlobOutcome::Exists
        } else {
            let source = self
                .seen
                .lock()
                .await
                .get(digest)
                .filter(|repository| **repository != name.path)
                .cloned();
            let mounted = match source {
                Some(repository) => {
                    let from = Reference::with_digest(
                        self.registry_of(name),
                        repository,
                        digest.to_string(),
                    );
                    // A refused mount (other registry rules, permissions) is not an error: upload.
                    self.client
                        .mount_blob(reference, &from, digest)
                        .await
                        .is_ok()
                        && self
                            .client
                            .blob_exists(reference, digest)
                            .await
                            .unwrap_or(false)
                }
                None => false,
            };
            if mounted {
                BlobOutcome::Mounted
            } else {
                retried(observer, || {
                    self.client.push_blob(reference, bytes.to_vec(), digest)
                })
                .await
                .map_err(self.failed(
                    "uploading",
                    format!("blob {digest} of {name}"),
                    name,
                ))?;
                BlobOutcome::Uploaded
            }
        };
        self.seen
            .lock()
            .await
            .entry(digest.to_string())
            .or_insert_with(|| name.path.clone());
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_are_artifact_registry_names() {
        let name = ImageName::artifact_registry("us-central1", "acme", "workers", "worker");
        assert_eq!(
            name.to_string(),
            "us-central1-docker.pkg.dev/acme/workers/worker"
        );
        assert_eq!(
            name.at_digest("sha256:ab"),
            "us-central1-docker.pkg.dev/acme/workers/worker@sha256:ab"
        );
    }

    #[test]
    fn the_token_goes_only_to_google_registry_hosts() {
        for host in [
            "us-central1-docker.pkg.dev",
            "europe-docker.pkg.dev",
            "gcr.io",
            "eu.gcr.io",
        ] {
            assert!(is_google_registry_host(host), "{host}");
        }
        for host in [
            "evil.com#-docker.pkg.dev",
            "evil.com/x-docker.pkg.dev",
            "evil.com:443#-docker.pkg.dev",
            "a.b-docker.pkg.dev",
            "-docker.pkg.dev",
            "evil.com?.gcr.io",
            "x.y.gcr.io",
            "gcr.io.evil.com",
            "docker.pkg.dev",
            "US-docker.pkg.dev",
        ] {
            assert!(!is_google_registry_host(host), "{host}");
        }
    }

    #[tokio::test]
    async fn a_token_push_to_a_host_built_from_a_hostile_region_is_refused() {
        let pusher = Pusher::new(&Transport::ArtifactRegistry {
            access_token: "ya29.secret".into(),
        })
        .unwrap();
        let name = ImageName::artifact_registry("evil.com#", "acme", "workers", "worker");
        let image = super::super::image::build_image(&super::super::image::ImageInputs {
            binary_name: "worker".into(),
            binary: b"\x7fELF".to_vec(),
            ca_bundle: Vec::new(),
            env: Vec::new(),
            created: super::super::image::created_time(None),
        })
        .unwrap();
        struct Quiet;
        impl PushObserver for Quiet {
            fn blob(&self, _: &str, _: u64, _: BlobOutcome) {}
            fn retrying(&self, _: u32, _: Duration, _: &str) {}
        }
        let error = pusher.push(&name, &image, None, &Quiet).await.unwrap_err();
        assert!(
            matches!(&error, PushError::NotGoogleHost { host } if host == "evil.com#-docker.pkg.dev"),
            "{error}"
        );
    }

    #[test]
    fn only_rate_limits_server_errors_and_network_failures_are_retried() {
        let server = |code| OciDistributionError::ServerError {
            code,
            url: "u".into(),
            message: "m".into(),
        };
        assert_eq!(transient(&server(503)).as_deref(), Some("HTTP 503"));
        assert_eq!(transient(&server(429)).as_deref(), Some("HTTP 429"));
        assert_eq!(transient(&server(403)), None);
        assert_eq!(transient(&OciDistributionError::PushNoDataError), None);
    }

    #[test]
    fn a_url_transport_keeps_the_name_and_changes_only_the_host() {
        let pusher = Pusher::new(&Transport::Url("http://127.0.0.1:5055/".into())).unwrap();
        let name = ImageName::artifact_registry("us-central1", "acme", "workers", "worker");
        let reference = pusher.reference(&name, Some("git-abc"), "sha256:00");
        assert_eq!(reference.registry(), "127.0.0.1:5055");
        assert_eq!(reference.repository(), "acme/workers/worker");
        assert_eq!(reference.tag(), Some("git-abc"));
        assert!(Pusher::new(&Transport::Url("127.0.0.1:5055".into())).is_err());
        assert!(Pusher::new(&Transport::Url("http://h/path".into())).is_err());
    }
}

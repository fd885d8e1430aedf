//! The cloud a worker runs in: its project, Google's endpoints with Application Default
//! Credentials, or the local cloud of `stackctl up --local` (`STACKCTL_API_ENDPOINT`,
//! `FIRESTORE_EMULATOR_HOST`, a local metadata server at `GCE_METADATA_HOST`), and the process's
//! TLS provider (rustls with ring).

use std::time::Duration;

use google_cloud_auth::credentials::{AccessTokenCredentials, Credentials};

use crate::firestore;

/// Why the process cannot reach its cloud.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error(
        "cannot tell the project: GOOGLE_CLOUD_PROJECT is unset and the metadata server at {host} did not answer: {reason}"
    )]
    Project { host: String, reason: String },
    #[error("cannot load Application Default Credentials: {0}")]
    Credentials(String),
    #[error("{0}")]
    Setting(String),
}

/// Installs rustls' ring provider for the process (google-cloud-auth and reqwest are built
/// without one). Call first in `main` and in tests; later calls do nothing.
pub fn install_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A non-empty environment variable.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A comma-separated environment variable, trimmed, empty items dropped.
pub fn env_list(name: &str) -> Vec<String> {
    env(name)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The metadata server's host: `GCE_METADATA_HOST` (the local one under `up --local`), else
/// Google's.
pub fn metadata_host() -> String {
    env("GCE_METADATA_HOST").unwrap_or_else(|| "metadata.google.internal".to_string())
}

/// Where the process is and how it reaches Google's APIs.
#[derive(Debug, Clone)]
pub struct Cloud {
    pub project: String,
    /// `STACKCTL_API_ENDPOINT`: the local emulator's base URL instead of Google's endpoints.
    pub api_endpoint: Option<String>,
    /// `FIRESTORE_EMULATOR_HOST` (`host:port`): Google's Firestore emulator.
    pub firestore_emulator: Option<String>,
}

impl Cloud {
    /// From the environment; the project from `GOOGLE_CLOUD_PROJECT`, else the metadata server.
    pub async fn from_env(http: &reqwest::Client) -> Result<Self, CloudError> {
        let project = match env("GOOGLE_CLOUD_PROJECT") {
            Some(project) => project,
            None => project_from_metadata(http).await?,
        };
        Ok(Self {
            project,
            api_endpoint: env("STACKCTL_API_ENDPOINT"),
            firestore_emulator: env("FIRESTORE_EMULATOR_HOST"),
        })
    }

    /// Credentials for Google's API clients: Application Default Credentials (on Cloud Run the
    /// metadata server; under `up --local` the local one), or none when the process talks to a
    /// local emulator without a local metadata server (the emulator then acts as the owner).
    pub fn credentials(&self) -> Result<Credentials, CloudError> {
        if self.api_endpoint.is_some() && env("GCE_METADATA_HOST").is_none() {
            return Ok(google_cloud_auth::credentials::anonymous::Builder::new().build());
        }
        google_cloud_auth::credentials::Builder::default()
            .build()
            .map_err(|e| CloudError::Credentials(e.to_string()))
    }

    /// The Firestore `(default)` database of the project: the emulator (`Bearer owner`) when
    /// `FIRESTORE_EMULATOR_HOST` is set, else `https://firestore.googleapis.com` with an ADC
    /// access token.
    pub fn firestore(&self, http: reqwest::Client) -> Result<firestore::Client, CloudError> {
        match &self.firestore_emulator {
            Some(host) => Ok(firestore::Client::emulator(http, host, &self.project)),
            None => {
                let credentials: AccessTokenCredentials =
                    google_cloud_auth::credentials::Builder::default()
                        .build_access_token_credentials()
                        .map_err(|e| CloudError::Credentials(e.to_string()))?;
                Ok(firestore::Client::google(http, credentials, &self.project))
            }
        }
    }
}

/// `project/project-id` from the metadata server.
pub async fn project_from_metadata(http: &reqwest::Client) -> Result<String, CloudError> {
    let host = metadata_host();
    let failed = |reason: String| CloudError::Project {
        host: host.clone(),
        reason,
    };
    let response = http
        .get(format!(
            "http://{host}/computeMetadata/v1/project/project-id"
        ))
        .header("Metadata-Flavor", "Google")
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("HTTP {}", response.status())));
    }
    let project = response.text().await.map_err(|e| failed(e.to_string()))?;
    let project = project.trim().to_string();
    if project.is_empty() {
        return Err(failed("an empty project id".into()));
    }
    Ok(project)
}

/// The HTTP client the workers share: rustls, a connect timeout.
pub fn http_client() -> reqwest::Client {
    install_tls();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

/// How a worker's own REST calls to Google's APIs authenticate: an ADC access token, or none
/// against the local emulator without a metadata server (it then acts as the owner).
#[derive(Clone)]
pub enum Bearer {
    None,
    Google(AccessTokenCredentials),
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "Bearer::None",
            Self::Google(_) => "Bearer::Google",
        })
    }
}

impl Bearer {
    /// The `Authorization` header's value, if any.
    pub async fn header(&self) -> Result<Option<String>, CloudError> {
        match self {
            Self::None => Ok(None),
            Self::Google(credentials) => credentials
                .access_token()
                .await
                .map(|t| Some(format!("Bearer {}", t.token)))
                .map_err(|e| CloudError::Credentials(e.to_string())),
        }
    }
}

impl Cloud {
    /// The credentials of the worker's REST calls (see [`Bearer`]).
    pub fn bearer(&self) -> Result<Bearer, CloudError> {
        if self.api_endpoint.is_some() && env("GCE_METADATA_HOST").is_none() {
            return Ok(Bearer::None);
        }
        google_cloud_auth::credentials::Builder::default()
            .build_access_token_credentials()
            .map(Bearer::Google)
            .map_err(|e| CloudError::Credentials(e.to_string()))
    }

    /// The root of one of Google's REST APIs (`https://bigquery.googleapis.com`), or the local
    /// emulator's, which serves them all.
    pub fn api_root(&self, google: &str) -> String {
        self.api_endpoint
            .as_deref()
            .unwrap_or(google)
            .trim_end_matches('/')
            .to_string()
    }
}

//! The I/O boundary: endpoints, credentials, Google's client crates, and plain records of what they return.
//!
//! Nothing above this module sees a Google client type: callers get plain records
//! ([`tasks::QueueRecord`], [`run::ServiceRecord`], [`iam::PolicyRecord`], ...) and [`storage`] objects, and [`ApiError`]s that name the call.

pub mod apis;
pub mod error;
pub mod iam;
pub mod jobs;
pub mod retry;
pub mod run;
pub mod scheduler;
pub mod secrets;
pub mod storage;
pub mod tasks;

use std::time::Duration;

use google_cloud_auth::credentials::{Credentials, anonymous};

pub use crate::model::Endpoint;
pub use error::{ApiError, RetryObserver, Silent};
pub use retry::Backoff;

/// The clients for one endpoint, project and region, shared by every call of a run.
#[derive(Clone)]
pub struct Cloud {
    pub endpoint: Endpoint,
    pub project: String,
    pub region: String,
    pub backoff: Backoff,
    tasks: google_cloud_tasks_v2::client::CloudTasks,
    services: google_cloud_run_v2::client::Services,
    jobs: google_cloud_run_v2::client::Jobs,
    iam: google_cloud_iam_admin_v1::client::Iam,
    projects: google_cloud_resourcemanager_v3::client::Projects,
    scheduler: google_cloud_scheduler_v1::client::CloudScheduler,
    secrets: google_cloud_secretmanager_v1::client::SecretManagerService,
    service_usage: google_cloud_api_serviceusage_v1::client::ServiceUsage,
    storage: storage::StorageClient,
}

/// Why the clients could not be built (credentials, usually).
#[derive(Debug, thiserror::Error)]
#[error(
    "could not set up Google API clients: {0}\n  hint: run `gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS, or use --local"
)]
pub struct SetupError(String);

impl Cloud {
    pub async fn connect(
        endpoint: Endpoint,
        project: &str,
        region: &str,
    ) -> Result<Self, SetupError> {
        let credentials: Credentials = match &endpoint {
            Endpoint::Google => google_cloud_auth::credentials::Builder::default()
                .build()
                .map_err(|e| SetupError(e.to_string()))?,
            Endpoint::Local { .. } | Endpoint::Custom { .. } => anonymous::Builder::new().build(),
        };
        let (backoff, poll_initial) = match endpoint {
            Endpoint::Google => (Backoff::GOOGLE, Duration::from_secs(1)),
            _ => (Backoff::LOCAL, Duration::from_millis(50)),
        };
        let polling_backoff = || {
            google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder::new()
                .with_initial_delay(poll_initial)
                .with_maximum_delay(poll_initial * 10)
                .with_scaling(1.5)
                .clamp()
        };
        let polling_errors = retry::TransientPollingErrors {
            max_attempts: backoff.max_attempts,
        };

        macro_rules! client {
            ($ty:ty) => {{
                let mut b = <$ty>::builder()
                    .with_credentials(credentials.clone())
                    .with_retry_policy(google_cloud_gax::retry_policy::NeverRetry)
                    .with_polling_backoff_policy(polling_backoff())
                    .with_polling_error_policy(polling_errors.clone());
                if let Some(url) = endpoint.url() {
                    b = b.with_endpoint(url);
                }
                b.build().await.map_err(|e| SetupError(e.to_string()))?
            }};
        }
        let tasks = client!(google_cloud_tasks_v2::client::CloudTasks);
        let services = client!(google_cloud_run_v2::client::Services);
        let jobs = client!(google_cloud_run_v2::client::Jobs);
        let iam = client!(google_cloud_iam_admin_v1::client::Iam);
        let projects = client!(google_cloud_resourcemanager_v3::client::Projects);
        let scheduler = client!(google_cloud_scheduler_v1::client::CloudScheduler);
        let secrets = client!(google_cloud_secretmanager_v1::client::SecretManagerService);
        let service_usage = client!(google_cloud_api_serviceusage_v1::client::ServiceUsage);
        let storage = storage::StorageClient::new(endpoint.url(), credentials.clone())
            .map_err(|e| SetupError(e.to_string()))?;
        Ok(Self {
            endpoint,
            project: project.to_string(),
            region: region.to_string(),
            backoff,
            tasks,
            services,
            jobs,
            iam,
            projects,
            scheduler,
            secrets,
            service_usage,
            storage,
        })
    }

    /// `projects/P/locations/R`
    pub fn parent(&self) -> String {
        format!("projects/{}/locations/{}", self.project, self.region)
    }

    pub fn storage(&self) -> &storage::StorageClient {
        &self.storage
    }
}

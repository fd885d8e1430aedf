//! The I/O boundary: endpoints, credentials, Google's client crates, and plain records of what they return.
//!
//! Nothing above this module sees a Google client type: callers get plain records
//! ([`tasks::QueueRecord`], [`run::ServiceRecord`], [`iam::PolicyRecord`], ...) and [`storage`] objects, and [`ApiError`]s that name the call.
//! The records themselves are defined below this module, in [`crate::model::live`], and re-exported
//! here; the conversions from Google's types stay in each area's file.

pub mod adc;
pub mod api_keys;
pub mod apis;
pub mod artifacts;
pub mod bigquery;
pub mod billing_catalog;
pub mod budgets;
pub mod container;
pub mod dashboards;
pub mod error;
pub mod firestore;
pub mod gateway;
pub mod iam;
pub mod jobs;
pub mod logging;
pub mod metrics;
pub mod monitoring;
pub mod rest;
pub mod retry;
pub mod run;
pub mod scheduler;
pub mod secrets;
pub mod shopify;
pub mod storage;
pub mod tasks;
pub mod uptime;

use std::time::Duration;

use google_cloud_auth::credentials::{CacheableResource, Credentials, anonymous};

pub use crate::model::Endpoint;
pub use error::{ApiError, RetryObserver, Silent};
use retry::retrying;
pub use retry::{Backoff, Created};

/// The clients for one endpoint, project and region, shared by every call of a run.
#[derive(Clone)]
pub struct Cloud {
    pub endpoint: Endpoint,
    pub project: String,
    pub region: String,
    pub backoff: Backoff,
    tasks: google_cloud_tasks_v2::client::CloudTasks,
    services: google_cloud_run_v2::client::Services,
    revisions: google_cloud_run_v2::client::Revisions,
    jobs: google_cloud_run_v2::client::Jobs,
    executions: google_cloud_run_v2::client::Executions,
    iam: google_cloud_iam_admin_v1::client::Iam,
    projects: google_cloud_resourcemanager_v3::client::Projects,
    scheduler: google_cloud_scheduler_v1::client::CloudScheduler,
    secrets: google_cloud_secretmanager_v1::client::SecretManagerService,
    service_usage: google_cloud_api_serviceusage_v1::client::ServiceUsage,
    storage: storage::StorageClient,
    metrics: metrics::MonitoringClient,
    credentials: Credentials,
    bigquery: rest::RestClient,
    budgets: rest::RestClient,
    billing_catalog: rest::RestClient,
    logging: rest::RestClient,
    dashboards: rest::RestClient,
    channels: google_cloud_monitoring_v3::client::NotificationChannelService,
    alerts: google_cloud_monitoring_v3::client::AlertPolicyService,
    uptime: google_cloud_monitoring_v3::client::UptimeCheckService,
    /// Alert policy writes are serialized per project, as the Monitoring API asks.
    alert_writes: std::sync::Arc<tokio::sync::Mutex<()>>,
    artifacts: google_cloud_artifactregistry_v1::client::ArtifactRegistry,
    firestore: google_cloud_firestore_admin_v1::client::FirestoreAdmin,
    gateways: google_cloud_apigateway_v1::client::ApiGatewayService,
    api_keys: rest::RestClient,
    /// Plain HTTPS for the Shopify Admin API (its own token, never Google's credentials).
    shopify_http: reqwest::Client,
}

/// Why the clients could not be built (credentials, usually).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "could not set up Google API clients: {0}\n  hint: run `gcloud auth application-default login`, set GOOGLE_APPLICATION_CREDENTIALS, or use --local"
    )]
    Clients(String),
    /// Application Default Credentials missing or not working: names the source and the fix.
    #[error("{0}")]
    Credentials(String),
}

/// Builds Application Default Credentials and fetches one token, so a missing or broken
/// source is reported once, up front, naming the source and the fix.
async fn google_credentials() -> Result<Credentials, SetupError> {
    let source = adc::AdcSource::detect();
    let credentials = google_cloud_auth::credentials::Builder::default()
        .build()
        .map_err(|e| SetupError::Credentials(adc::explain(&source, &e.to_string())))?;
    if let Err(e) = credentials.headers(Default::default()).await {
        return Err(SetupError::Credentials(adc::explain(
            &source,
            &e.to_string(),
        )));
    }
    Ok(credentials)
}

/// `STACKCTL_ENDPOINT_CREDENTIALS=adc`: send Application Default Credentials to an `--endpoint`
/// too (a Private Service Connect or restricted endpoint, a proxy), instead of none.
fn custom_endpoint_uses_adc() -> bool {
    std::env::var("STACKCTL_ENDPOINT_CREDENTIALS").is_ok_and(|v| v.eq_ignore_ascii_case("adc"))
}

impl Cloud {
    pub async fn connect(
        endpoint: Endpoint,
        project: &str,
        region: &str,
    ) -> Result<Self, SetupError> {
        let credentials: Credentials = match &endpoint {
            Endpoint::Google => google_credentials().await?,
            Endpoint::Custom { .. } if custom_endpoint_uses_adc() => google_credentials().await?,
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
                b.build()
                    .await
                    .map_err(|e| SetupError::Clients(e.to_string()))?
            }};
        }
        let tasks = client!(google_cloud_tasks_v2::client::CloudTasks);
        let services = client!(google_cloud_run_v2::client::Services);
        let revisions = client!(google_cloud_run_v2::client::Revisions);
        let jobs = client!(google_cloud_run_v2::client::Jobs);
        let executions = client!(google_cloud_run_v2::client::Executions);
        let iam = client!(google_cloud_iam_admin_v1::client::Iam);
        let projects = client!(google_cloud_resourcemanager_v3::client::Projects);
        let scheduler = client!(google_cloud_scheduler_v1::client::CloudScheduler);
        let secrets = client!(google_cloud_secretmanager_v1::client::SecretManagerService);
        let service_usage = client!(google_cloud_api_serviceusage_v1::client::ServiceUsage);
        let storage = storage::StorageClient::new(endpoint.url(), credentials.clone())
            .map_err(|e| SetupError::Clients(e.to_string()))?;
        let metrics = metrics::MonitoringClient::new(endpoint.url(), credentials.clone())
            .map_err(|e| SetupError::Clients(e.to_string()))?;
        let rest = |google: &str| {
            rest::RestClient::new(endpoint.url(), google, credentials.clone())
                .map_err(|e| SetupError::Clients(e.to_string()))
        };
        let bigquery = rest(bigquery::GOOGLE_BIGQUERY)?;
        let budgets = rest(budgets::GOOGLE_BUDGETS)?;
        let billing_catalog = rest(billing_catalog::GOOGLE_CLOUDBILLING)?;
        let logging = rest(logging::GOOGLE_LOGGING)?;
        let dashboards = rest(dashboards::GOOGLE_MONITORING)?;
        let channels = client!(google_cloud_monitoring_v3::client::NotificationChannelService);
        let alerts = client!(google_cloud_monitoring_v3::client::AlertPolicyService);
        let uptime = client!(google_cloud_monitoring_v3::client::UptimeCheckService);
        let artifacts = client!(google_cloud_artifactregistry_v1::client::ArtifactRegistry);
        let firestore = client!(google_cloud_firestore_admin_v1::client::FirestoreAdmin);
        let gateways = client!(google_cloud_apigateway_v1::client::ApiGatewayService);
        let api_keys = rest(api_keys::GOOGLE_API_KEYS)?;
        let shopify_http = reqwest::Client::builder()
            .build()
            .map_err(|e| SetupError::Clients(e.to_string()))?;
        Ok(Self {
            endpoint,
            project: project.to_string(),
            region: region.to_string(),
            backoff,
            tasks,
            services,
            revisions,
            jobs,
            executions,
            iam,
            projects,
            scheduler,
            secrets,
            service_usage,
            storage,
            metrics,
            credentials,
            bigquery,
            budgets,
            billing_catalog,
            logging,
            dashboards,
            channels,
            alerts,
            uptime,
            alert_writes: Default::default(),
            artifacts,
            firestore,
            gateways,
            api_keys,
            shopify_http,
        })
    }

    /// `projects/P/locations/R`
    pub fn parent(&self) -> String {
        format!("projects/{}/locations/{}", self.project, self.region)
    }

    pub fn storage(&self) -> &storage::StorageClient {
        &self.storage
    }

    pub fn metrics(&self) -> &metrics::MonitoringClient {
        &self.metrics
    }

    /// An OAuth access token from the same credentials as the API clients (for registry
    /// logins as `oauth2accesstoken`); `None` for anonymous endpoints.
    pub async fn access_token(&self) -> Result<Option<String>, SetupError> {
        if self.endpoint != Endpoint::Google {
            return Ok(None);
        }
        let headers = match self.credentials.headers(Default::default()).await {
            Ok(CacheableResource::New { data, .. }) => data,
            Ok(CacheableResource::NotModified) => Default::default(),
            Err(e) => return Err(SetupError::Clients(e.to_string())),
        };
        headers
            .get(reqwest::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|token| Some(token.to_string()))
            .ok_or_else(|| {
                SetupError::Clients("the credentials gave no bearer access token".into())
            })
    }

    /// `projects/NUMBER` of the project (Resource Manager v3 `projects.get`).
    pub async fn project_number(&self, observer: &dyn RetryObserver) -> Result<String, ApiError> {
        let name = format!("projects/{}", self.project);
        retrying(self.backoff, observer, || async {
            self.projects
                .get_project()
                .set_name(&name)
                .send()
                .await
                .map(|p| p.name)
                .map_err(|e| ApiError::from_gax("cloudresourcemanager.projects.get", &name, &e))
        })
        .await
    }
}

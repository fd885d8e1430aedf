//! Cloud Run live records: services, their traffic and revisions, and the secret-backed env
//! references services and jobs share.

use std::collections::BTreeMap;
use std::time::Duration;

/// An env var's `valueSource.secretKeyRef`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecretEnvRef {
    /// The secret id (`NAME`, same project) or `projects/P/secrets/NAME`.
    pub secret: String,
    pub version: String,
}

/// A service as the API reports it, in plain Rust types.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ServiceRecord {
    /// `projects/P/locations/L/services/ID`
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub etag: String,
    pub generation: i64,
    pub uri: String,
    /// Every URL the service answers on (`uri` and the deterministic
    /// `ID-PROJECT_NUMBER.REGION.run.app`).
    pub urls: Vec<String>,
    pub reconciling: bool,
    pub latest_ready_revision: String,
    pub latest_created_revision: String,
    /// The `Ready` condition's failure message, when the last revision failed.
    pub failure: Option<String>,
    pub ingress: IngressKind,
    /// `invokerIamDisabled`: anyone may call it, no `run.invoker` check.
    pub public: bool,
    /// Service-wide `scaling.maxInstanceCount` (0 = unset).
    pub service_max_instances: i32,
    pub image: String,
    /// Plain-valued env vars of the first container.
    pub env: BTreeMap<String, String>,
    /// Env vars whose value comes from Secret Manager.
    pub secret_env: BTreeMap<String, SecretEnvRef>,
    /// The revision's service account email (empty = Cloud Run's default).
    pub service_account: String,
    /// `resources.limits` of the first container (`cpu`, `memory`).
    pub limits: BTreeMap<String, String>,
    pub cpu_idle: bool,
    /// The first container's HTTP startup probe (`None`: none, or not an HTTP probe).
    pub startup_probe: Option<HttpProbe>,
    /// The first container's HTTP liveness probe.
    pub liveness_probe: Option<HttpProbe>,
    pub min_instances: i32,
    pub max_instances: i32,
    pub concurrency: i32,
    pub timeout: Option<Duration>,
    /// Where traffic actually goes (`trafficStatuses`), LATEST resolved to its revision.
    pub traffic: Vec<TrafficRecord>,
    /// `createTime`: how long the service has existed (an audit window it does not cover
    /// says nothing about its use).
    pub created: Option<chrono::DateTime<chrono::Utc>>,
}

/// An HTTP probe of a Cloud Run container (startup or liveness): `GET path` on the serving
/// port, as declared in stack.toml or as Cloud Run reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HttpProbe {
    pub path: String,
    pub initial_delay_seconds: i32,
    pub period_seconds: i32,
    pub timeout_seconds: i32,
    pub failure_threshold: i32,
}

impl HttpProbe {
    /// How plans show it: `GET /healthz every 10s (timeout 1s, 3 failures, after 0s)`.
    pub fn describe(&self) -> String {
        format!(
            "GET {} every {}s (timeout {}s, {} failures, after {}s)",
            self.path,
            self.period_seconds,
            self.timeout_seconds,
            self.failure_threshold,
            self.initial_delay_seconds
        )
    }
}

/// One traffic status: a revision's share of requests and its tag, if any.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrafficRecord {
    /// Short revision name, e.g. `worker-00001-abc`.
    pub revision: String,
    pub percent: i32,
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IngressKind {
    Unspecified,
    All,
    InternalOnly,
    InternalLoadBalancer,
    None,
}

/// Whether a revision can serve.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Readiness {
    Ready,
    Failed { message: String },
    Pending,
}

/// One revision of a service.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RevisionRecord {
    /// `projects/P/locations/L/services/S/revisions/R`
    pub name: String,
    /// Revision id (`worker-00002-abc`).
    pub id: String,
    /// RFC 3339.
    pub create_time: String,
    pub image: String,
    pub readiness: Readiness,
    pub min_instances: i32,
    /// `resources.limits` of the first container.
    pub limits: BTreeMap<String, String>,
    pub cpu_idle: bool,
}

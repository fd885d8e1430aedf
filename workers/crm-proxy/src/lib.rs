//! crm-proxy: the private Cloud Run service that sends each Shopify customer update to the
//! external CRM (the seed's Cloud Function `process_crm_update`). The task-worker POSTs the
//! customer webhook's JSON body to `POST /customers` with `Idempotency-Key` (the webhook id);
//! the proxy adds `updated_by_system` and `updated_at`, and sends the customer as
//! `PUT {EXTERNAL_CRM_API_URL}/customers/{id}` with `Authorization: Bearer {CRM_API_KEY}` and the
//! caller's `Idempotency-Key` unchanged, retrying what may pass later within a deadline.
//!
//! Each CRM attempt may take [`ATTEMPT_TIMEOUT`]; all of them together [`DEADLINE`] (less than
//! the task-worker's 20 s wait, so the caller gets the proxy's answer). CRM 408, 429, 5xx, a
//! timeout or an unreachable CRM are retried up to [`MAX_ATTEMPTS`] times, after 0.5 s, 1 s, 2 s
//! (capped at 4 s) or the CRM's `Retry-After` (seconds or HTTP date) when it sent one; never
//! past the deadline: a wait that would end past it is not started.
//!
//! | The CRM's last answer | The proxy answers | The task-worker then |
//! |---|---|---|
//! | 2xx | 200 with the CRM's JSON body | records the webhook done |
//! | 404 | 404 | dead-letters it (permanent) |
//! | 401, 403 (our key is wrong: an operator's problem) | 502 | retries later (transient) |
//! | 408, 429, 5xx after the retries, or unreachable | 502, with the CRM's `Retry-After` if any | retries later |
//! | no answer within the attempt timeout or the deadline | 504 | retries later |
//! | any other 4xx (400, 409, 422, ...: the data was refused) | 422 | dead-letters it |
//! | (the request itself) not a JSON object, or no usable `id` | 400, nothing sent | dead-letters it |
//!
//! Every error answer is `{"error": "..."}`. One JSON log line per request (customer id, the
//! CRM's last status, attempts, duration, idempotency key, topic); never the API key, the
//! `Authorization` header or the customer's data.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};
use worker_kit::cloud::{self, env};
use worker_kit::log::{Logger, Severity};

pub const SERVICE: &str = "crm-proxy";
/// The route the task-worker's `CRM_PROXY_URL` names.
pub const CUSTOMERS_PATH: &str = "/customers";
/// `updated_by_system` unless `CRM_UPDATED_BY` says otherwise.
pub const DEFAULT_UPDATED_BY: &str = "stackctl-crm-proxy";
/// How long one CRM attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long all attempts of one update may take together.
pub const DEADLINE: Duration = Duration::from_secs(18);
/// Attempts per update, the first included.
pub const MAX_ATTEMPTS: u32 = 4;
/// The wait before the second attempt; it doubles after each, up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// What a path segment keeps unencoded (`.` is encoded too: no `..` segment reaches the CRM).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'~');

/// How the proxy reaches the CRM and how long it tries.
#[derive(Clone)]
pub struct Config {
    /// `EXTERNAL_CRM_API_URL`, without a trailing `/`.
    pub crm_url: String,
    /// `CRM_API_KEY` (Cloud Run fills it from Secret Manager). Never logged.
    pub api_key: String,
    /// `updated_by_system`: `CRM_UPDATED_BY`, else [`DEFAULT_UPDATED_BY`].
    pub updated_by: String,
    pub attempt_timeout: Duration,
    pub deadline: Duration,
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("crm_url", &self.crm_url)
            .field("api_key", &"<redacted>")
            .field("updated_by", &self.updated_by)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("deadline", &self.deadline)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

impl Config {
    /// The production timings for the CRM at `crm_url` with `api_key`.
    pub fn new(crm_url: &str, api_key: &str) -> Self {
        Self {
            crm_url: crm_url.trim_end_matches('/').to_string(),
            api_key: api_key.to_string(),
            updated_by: DEFAULT_UPDATED_BY.to_string(),
            attempt_timeout: ATTEMPT_TIMEOUT,
            deadline: DEADLINE,
            max_attempts: MAX_ATTEMPTS,
            first_backoff: FIRST_BACKOFF,
            max_backoff: MAX_BACKOFF,
        }
    }

    /// From the variables `lookup` finds (non-empty values only): `EXTERNAL_CRM_API_URL` and
    /// `CRM_API_KEY` required, `CRM_UPDATED_BY` optional. Under `up --local`
    /// (`STACKCTL_API_ENDPOINT` set) the CRM is the emulator's fake at `ENDPOINT/crm`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let Some(url) = lookup("EXTERNAL_CRM_API_URL") else {
            let misspelt = if lookup("EXTERMAL_CRM_API_URL").is_some() {
                " (EXTERMAL_CRM_API_URL is set: the seed's misspelling; rename it)"
            } else {
                ""
            };
            return Err(format!(
                "EXTERNAL_CRM_API_URL is unset{misspelt}: set it to the CRM's API base URL (customers go to PUT $EXTERNAL_CRM_API_URL/customers/ID)"
            ));
        };
        let parsed = reqwest::Url::parse(&url)
            .map_err(|e| format!("EXTERNAL_CRM_API_URL is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.query().is_some() {
            return Err(
                "EXTERNAL_CRM_API_URL must be an http(s) base URL without a query string".into(),
            );
        }
        let api_key = lookup("CRM_API_KEY").ok_or(
            "CRM_API_KEY is unset: on Cloud Run, set it from the CRM key's Secret Manager secret",
        )?;
        if HeaderValue::from_str(&format!("Bearer {api_key}")).is_err() {
            return Err("CRM_API_KEY holds characters an HTTP header cannot carry".into());
        }
        // In the local cloud of `stackctl up --local` the CRM is the emulator's fake: no
        // customer data leaves the machine.
        let url = match lookup("STACKCTL_API_ENDPOINT") {
            Some(emulator) => format!("{}/crm", emulator.trim_end_matches('/')),
            None => url,
        };
        let mut config = Self::new(&url, &api_key);
        if let Some(updated_by) = lookup("CRM_UPDATED_BY") {
            config.updated_by = updated_by;
        }
        Ok(config)
    }

    /// The CRM's scheme, host and port, for the startup line (no path, no credentials).
    pub fn crm_origin(&self) -> String {
        reqwest::Url::parse(&self.crm_url)
            .map(|url| url.origin().ascii_serialization())
            .unwrap_or_default()
    }

    /// The wait after failed attempt number `attempt` (1-based) when the CRM gave no
    /// `Retry-After`: `first_backoff` doubled per attempt, capped at `max_backoff`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(16);
        self.first_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// The proxy: its configuration, HTTP client and logger.
pub struct Proxy {
    pub config: Config,
    pub http: reqwest::Client,
    pub logger: Logger,
}

impl Proxy {
    pub fn new(config: Config, logger: Logger) -> Self {
        Self {
            config,
            http: http_client(),
            logger,
        }
    }
}

/// A client that does not follow redirects (a PUT redirected elsewhere is answered as the
/// CRM's unexpected status) and connects within 5 s.
fn http_client() -> reqwest::Client {
    cloud::install_tls();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// The proxy as configured by the environment (see the crate's documentation).
pub async fn from_env() -> Result<Arc<Proxy>, String> {
    let config = Config::from_lookup(env)?;
    // The project only names log lines' traces: GOOGLE_CLOUD_PROJECT, else (on Cloud Run and
    // under `up --local`) the metadata server; without either, lines carry no trace.
    let project = match env("GOOGLE_CLOUD_PROJECT") {
        Some(project) => project,
        None if env("K_SERVICE").is_some() || env("GCE_METADATA_HOST").is_some() => {
            cloud::project_from_metadata(&cloud::http_client())
                .await
                .unwrap_or_default()
        }
        None => String::new(),
    };
    Ok(Arc::new(Proxy::new(config, Logger::new(project, SERVICE))))
}

pub fn router(proxy: Arc<Proxy>) -> Router {
    Router::new()
        .route(CUSTOMERS_PATH, post(update_customer))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(2 * 1024 * 1024))
        .with_state(proxy)
}

use worker_kit::serve::header;

/// The customer object and its id, or why the body is not one.
fn parse_customer(body: &[u8]) -> Result<(Map<String, Value>, String), &'static str> {
    let Ok(Value::Object(customer)) = serde_json::from_slice::<Value>(body) else {
        return Err("the body is not a JSON object");
    };
    let id = match customer.get("id") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.trim().is_empty() && !s.chars().all(|c| c == '.') => s.clone(),
        _ => return Err("the customer has no usable id (a number or a non-empty string)"),
    };
    Ok((customer, id))
}

/// The wait a `Retry-After` value asks for: delay-seconds or an HTTP date (past dates: none).
pub fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&Utc) - now).to_std().unwrap_or_default())
}

/// How the CRM's last attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Answered {
        status: u16,
        /// Its `Retry-After` header, as sent.
        retry_after: Option<String>,
        body: Bytes,
    },
    /// No answer within the attempt's time (the attempt timeout or what was left of the
    /// deadline).
    TimedOut,
    Unreachable(String),
}

impl Attempt {
    /// Worth another attempt: 408, 429, 5xx, a timeout, a connection that failed.
    fn is_retryable(&self) -> bool {
        match self {
            Self::Answered { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Self::TimedOut | Self::Unreachable(_) => true,
        }
    }
}

/// An error with its causes (`error sending request ...: ... Connection refused`).
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The end of one update: the last attempt and how many there were.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub last: Attempt,
    pub attempts: u32,
}

impl Proxy {
    /// PUTs `customer` to the CRM as `id`, retrying as the crate's documentation says.
    pub async fn send(&self, id: &str, customer: &Value, idempotency_key: Option<&str>) -> Sent {
        let url = format!(
            "{}/customers/{}",
            self.config.crm_url,
            utf8_percent_encode(id, PATH_SEGMENT)
        );
        let body = serde_json::to_vec(customer).unwrap_or_default();
        let deadline = Instant::now() + self.config.deadline;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let mut request = self
                .http
                .put(&url)
                .bearer_auth(&self.config.api_key)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .timeout(self.config.attempt_timeout.min(left))
                .body(body.clone());
            if let Some(key) = idempotency_key {
                request = request.header("idempotency-key", key);
            }
            let last = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    match response.bytes().await {
                        Ok(body) => Attempt::Answered {
                            status,
                            retry_after,
                            body,
                        },
                        Err(error) if error.is_timeout() => Attempt::TimedOut,
                        Err(error) => Attempt::Unreachable(describe(&error)),
                    }
                }
                Err(error) if error.is_timeout() => Attempt::TimedOut,
                Err(error) => Attempt::Unreachable(describe(&error)),
            };
            if !last.is_retryable() || attempts >= self.config.max_attempts {
                return Sent { last, attempts };
            }
            let asked = match &last {
                Attempt::Answered {
                    retry_after: Some(value),
                    ..
                } => retry_after(value, Utc::now()),
                _ => None,
            };
            let wait = asked.unwrap_or_else(|| self.config.backoff(attempts));
            if Instant::now() + wait >= deadline {
                return Sent { last, attempts };
            }
            tokio::time::sleep(wait).await;
        }
    }
}

/// What the proxy answers for an update and how it logs it.
struct Reply {
    status: StatusCode,
    body: Value,
    retry_after: Option<String>,
    severity: Severity,
    message: String,
}

impl Reply {
    fn error(status: StatusCode, severity: Severity, message: String) -> Self {
        Self {
            status,
            body: json!({"error": message}),
            retry_after: None,
            severity,
            message,
        }
    }
}

/// The mapping table of the crate's documentation.
fn reply(id: &str, sent: &Sent) -> Reply {
    let tries = match sent.attempts {
        1 => "1 attempt".to_string(),
        n => format!("{n} attempts"),
    };
    match &sent.last {
        Attempt::Answered { status, body, .. } if (200..300).contains(status) => Reply {
            status: StatusCode::OK,
            body: serde_json::from_slice(body).unwrap_or_else(|_| json!({})),
            retry_after: None,
            severity: Severity::Info,
            message: format!("customer {id} updated in the CRM"),
        },
        Attempt::Answered { status: 404, .. } => Reply::error(
            StatusCode::NOT_FOUND,
            Severity::Warning,
            format!("the CRM has no customer {id}"),
        ),
        Attempt::Answered {
            status: status @ (401 | 403),
            ..
        } => Reply::error(
            StatusCode::BAD_GATEWAY,
            Severity::Error,
            format!("the CRM refused our API key (HTTP {status}): check CRM_API_KEY"),
        ),
        Attempt::Answered {
            status,
            retry_after,
            ..
        } if sent.last.is_retryable() => Reply {
            retry_after: retry_after.clone(),
            ..Reply::error(
                StatusCode::BAD_GATEWAY,
                Severity::Warning,
                format!("the CRM still answered HTTP {status} after {tries}: retry later"),
            )
        },
        Attempt::Answered { status, body, .. } if (400..500).contains(status) => {
            let message = format!("the CRM refused customer {id} (HTTP {status})");
            Reply {
                body: json!({
                    "error": message,
                    "crm": serde_json::from_slice::<Value>(body).unwrap_or(Value::Null),
                }),
                ..Reply::error(StatusCode::UNPROCESSABLE_ENTITY, Severity::Warning, message)
            }
        }
        Attempt::Answered { status, .. } => Reply::error(
            StatusCode::BAD_GATEWAY,
            Severity::Error,
            format!("the CRM answered an unexpected HTTP {status}"),
        ),
        Attempt::TimedOut => Reply::error(
            StatusCode::GATEWAY_TIMEOUT,
            Severity::Warning,
            format!("the CRM did not answer in time ({tries})"),
        ),
        Attempt::Unreachable(reason) => Reply::error(
            StatusCode::BAD_GATEWAY,
            Severity::Warning,
            format!("the CRM is unreachable after {tries}: {reason}"),
        ),
    }
}

async fn update_customer(
    State(proxy): State<Arc<Proxy>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let trace = proxy
        .logger
        .trace_of(header(&headers, "x-cloud-trace-context"));
    let idempotency_key = header(&headers, "idempotency-key");
    let line = |severity, message: String| {
        proxy
            .logger
            .entry(severity, message)
            .trace(trace.as_deref())
            .field("idempotencyKey", idempotency_key.unwrap_or_default())
            .field(
                "topic",
                header(&headers, "x-shopify-topic").unwrap_or_default(),
            )
            .field("durationMs", started.elapsed().as_millis() as u64)
    };
    let (mut customer, id) = match parse_customer(&body) {
        Ok(parsed) => parsed,
        Err(reason) => {
            line(Severity::Warning, format!("refused an update: {reason}"))
                .field("status", 400)
                .emit();
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": reason})),
            )
                .into_response();
        }
    };
    customer.insert(
        "updated_by_system".into(),
        proxy.config.updated_by.clone().into(),
    );
    customer.insert(
        "updated_at".into(),
        Utc::now()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
            .into(),
    );
    let sent = proxy
        .send(&id, &Value::Object(customer), idempotency_key)
        .await;
    let reply = reply(&id, &sent);
    let crm_status = match &sent.last {
        Attempt::Answered { status, .. } => json!(status),
        _ => Value::Null,
    };
    line(reply.severity, reply.message)
        .field("customerId", id)
        .field("crmStatus", crm_status)
        .field("attempts", sent.attempts)
        .field("status", reply.status.as_u16())
        .emit();
    let mut response = (reply.status, axum::Json(reply.body)).into_response();
    if let Some(value) = reply
        .retry_after
        .and_then(|v| HeaderValue::from_str(&v).ok())
    {
        response.headers_mut().insert("retry-after", value);
    }
    response
}

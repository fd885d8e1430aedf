//! Provider errors: which call failed on which resource, classified for retries, with what to do next.

use std::time::Duration;

/// A failed Google API call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{call} on {resource} failed: {detail}{hint}", detail = self.detail(), hint = self.hint().map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
pub struct ApiError {
    /// The API method, e.g. `cloudtasks.queues.patch`.
    pub call: &'static str,
    /// The full resource name or address the call was about.
    pub resource: String,
    /// HTTP status, when the server answered.
    pub http_status: Option<u16>,
    /// The google.rpc code name, e.g. `NOT_FOUND`, when known.
    pub code: Option<String>,
    pub message: String,
    /// How many times the call was sent (more than 1 when transient errors were retried).
    pub attempts: u32,
}

impl ApiError {
    pub fn new(
        call: &'static str,
        resource: impl Into<String>,
        http_status: Option<u16>,
        code: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            call,
            resource: resource.into(),
            http_status,
            code,
            message: message.into(),
            attempts: 1,
        }
    }

    fn detail(&self) -> String {
        match (self.http_status, &self.code) {
            (Some(s), Some(c)) => format!("HTTP {s} {c}: {}", self.message),
            (Some(s), None) => format!("HTTP {s}: {}", self.message),
            (None, Some(c)) => format!("{c}: {}", self.message),
            (None, None) => self.message.clone(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.http_status == Some(404) || self.code.as_deref() == Some("NOT_FOUND")
    }

    pub fn is_already_exists(&self) -> bool {
        self.code.as_deref() == Some("ALREADY_EXISTS")
            || (self.http_status == Some(409) && self.message.contains("already exists"))
    }

    pub fn is_precondition_failed(&self) -> bool {
        self.http_status == Some(412)
    }

    /// Whether retrying the same call may succeed (Terraform's taxonomy, GCP-NOTES 4.7).
    pub fn retry_reason(&self) -> Option<String> {
        let msg = self.message.as_str();
        match self.http_status {
            None if self.code.as_deref() == Some("UNAVAILABLE") || self.code.is_none() => {
                Some(format!("network error: {msg}"))
            }
            Some(429) if is_hard_quota(msg) => None,
            Some(429) => Some("429 rate limited".into()),
            Some(s @ (500 | 502 | 503 | 504)) => Some(format!(
                "{s} {}",
                self.code.as_deref().unwrap_or("server error")
            )),
            Some(409) if is_transient_conflict(msg) => Some("409 concurrent change".into()),
            // A service account created seconds ago is not yet visible to IAM policies or to
            // other APIs (GCP-NOTES 4.6): retried as propagation, only on policy writes.
            Some(400 | 404)
                if self.call.ends_with("setIamPolicy") && is_unpropagated_account(msg) =>
            {
                Some("IAM propagation: service account not visible yet".into())
            }
            Some(403)
                if msg.contains("Quota exceeded for quota metric")
                    && msg.contains("per minute") =>
            {
                Some("403 per-minute quota".into())
            }
            _ => None,
        }
    }

    fn hint(&self) -> Option<String> {
        if let Some(s) = self.http_status
            && s >= 500
        {
            // Only say "after retries" when there were some.
            return Some(if self.attempts > 1 {
                format!(
                    "Google returned a server error {} times in a row (retried with backoff): re-run apply; it converges from where it stopped",
                    self.attempts
                )
            } else {
                "Google returned a server error: re-run apply; it converges from where it stopped"
                    .to_string()
            });
        }
        self.static_hint().map(str::to_string)
    }

    fn static_hint(&self) -> Option<&'static str> {
        if self.call.starts_with("shopify.") && matches!(self.http_status, Some(401 | 403)) {
            // Not Google's credentials: the message names the token's secret and the fix.
            return None;
        }
        match self.http_status {
            Some(401) => Some(
                "credentials were rejected: run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS",
            ),
            Some(403) => Some(
                "the caller lacks a permission or the API is not enabled in the project: check IAM roles and `gcloud services enable`",
            ),
            Some(429) => Some(
                "a quota was exhausted: wait and re-run, lower --parallelism, or raise the quota",
            ),
            Some(409) => {
                Some("someone else changed this resource: re-run `stackctl plan` and apply again")
            }
            Some(412) => Some("the resource changed since it was read: re-run `stackctl plan`"),
            None if self.code.is_none() => Some(
                "could not reach the endpoint: check the network, or use --local to run against the local emulator",
            ),
            _ => None,
        }
    }

    /// Converts a google-cloud-gax error into an [`ApiError`] for `call` on `resource`.
    pub fn from_gax(
        call: &'static str,
        resource: impl Into<String>,
        e: &google_cloud_gax::error::Error,
    ) -> Self {
        let http_status = e.http_status_code();
        let (code, message) = match e.status() {
            Some(status) => (Some(status.code.name().to_string()), status.message.clone()),
            None if e.is_timeout() => (Some("DEADLINE_EXCEEDED".to_string()), e.to_string()),
            None => (None, e.to_string()),
        };
        Self::new(call, resource, http_status, code, message)
    }
}

/// A call's "not found" read as an answer rather than a failure.
pub trait NotFoundAsAnswer<T> {
    /// `Ok(None)` when the resource does not exist.
    fn not_found_as_none(self) -> Result<Option<T>, ApiError>;
    /// `Ok(())` when what was to be deleted is already gone.
    fn not_found_as_done(self) -> Result<(), ApiError>;
}

impl<T> NotFoundAsAnswer<T> for Result<T, ApiError> {
    fn not_found_as_none(self) -> Result<Option<T>, ApiError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn not_found_as_done(self) -> Result<(), ApiError> {
        match self {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }
}

fn is_hard_quota(msg: &str) -> bool {
    msg.contains("per day") || msg.contains("per project") && !msg.contains("per minute")
}

fn is_unpropagated_account(msg: &str) -> bool {
    msg.contains("Service account") && msg.contains("does not exist")
}

/// An API that is not enabled in the project: nothing of it can exist there yet.
pub fn is_service_disabled(e: &ApiError) -> bool {
    e.http_status == Some(403)
        && (e.message.contains("SERVICE_DISABLED")
            || e.message.contains("has not been used in project")
            || e.message.contains("it is disabled"))
}

fn is_transient_conflict(msg: &str) -> bool {
    [
        "concurrent policy changes",
        "too many concurrent edits",
        "operationInProgress",
        "Another operation is already in progress",
        "unable to queue the operation",
    ]
    .iter()
    .any(|needle| msg.contains(needle))
}

/// What the provider reports while it retries, so progress can show the reason.
pub trait RetryObserver: Send + Sync {
    fn retrying(&self, attempt: u32, delay: Duration, reason: &str);
}

/// A [`RetryObserver`] that ignores retries.
pub struct Silent;

impl RetryObserver for Silent {
    fn retrying(&self, _: u32, _: Duration, _: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, code: &str, msg: &str) -> ApiError {
        ApiError::new("x.y", "r", Some(status), Some(code.into()), msg)
    }

    #[test]
    fn transient_errors_are_classified_like_terraform() {
        assert!(err(503, "UNAVAILABLE", "x").retry_reason().is_some());
        assert!(
            err(429, "RESOURCE_EXHAUSTED", "rate")
                .retry_reason()
                .is_some()
        );
        assert!(
            err(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'x' and limit 'per day'"
            )
            .retry_reason()
            .is_none()
        );
        assert!(
            err(409, "ABORTED", "There were concurrent policy changes.")
                .retry_reason()
                .is_some()
        );
        assert!(
            err(409, "ALREADY_EXISTS", "already exists")
                .retry_reason()
                .is_none()
        );
        assert!(
            err(
                403,
                "PERMISSION_DENIED",
                "Quota exceeded for quota metric 'r' and limit 'r per minute'"
            )
            .retry_reason()
            .is_some()
        );
        assert!(
            err(403, "PERMISSION_DENIED", "denied")
                .retry_reason()
                .is_none()
        );
        assert!(err(400, "INVALID_ARGUMENT", "bad").retry_reason().is_none());
        let unpropagated = "Service account a@p.iam.gserviceaccount.com does not exist.";
        assert!(
            ApiError::new(
                "run.services.setIamPolicy",
                "r",
                Some(400),
                Some("INVALID_ARGUMENT".into()),
                unpropagated
            )
            .retry_reason()
            .is_some()
        );
        assert!(
            err(400, "INVALID_ARGUMENT", unpropagated)
                .retry_reason()
                .is_none(),
            "only policy writes wait for propagation"
        );
    }

    #[test]
    fn errors_name_the_call_the_resource_and_what_to_do() {
        let text = err(403, "PERMISSION_DENIED", "Permission denied").to_string();
        assert!(
            text.starts_with("x.y on r failed: HTTP 403 PERMISSION_DENIED: Permission denied"),
            "{text}"
        );
        assert!(
            text.contains("hint: the caller lacks a permission"),
            "{text}"
        );
    }
}

//! Google API errors: the `{"error": {code, message, status, details}}` body and its HTTP codes.

use serde_json::{Value, json};

/// Which error body family an API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorStyle {
    /// `{code, message, status, details}` (every proto-based API).
    Proto,
    /// `{code, message, errors: [{message, domain, reason}]}` (Cloud Storage JSON).
    Storage,
    /// Storage's shape plus `status` (BigQuery v2).
    BigQuery,
}

/// A canonical Google error code with its HTTP mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Cancelled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    Unimplemented,
    Internal,
    Unavailable,
    Unauthenticated,
}

impl Code {
    pub fn http_status(self) -> u16 {
        match self {
            Code::Cancelled => 499,
            Code::Unknown | Code::Internal => 500,
            Code::InvalidArgument | Code::FailedPrecondition => 400,
            Code::DeadlineExceeded => 504,
            Code::NotFound => 404,
            Code::AlreadyExists | Code::Aborted => 409,
            Code::PermissionDenied => 403,
            Code::ResourceExhausted => 429,
            Code::Unimplemented => 501,
            Code::Unavailable => 503,
            Code::Unauthenticated => 401,
        }
    }

    pub fn status_name(self) -> &'static str {
        match self {
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The numeric `google.rpc.Code`, as carried in `Operation.error.code`.
    pub fn rpc_number(self) -> i64 {
        match self {
            Code::Cancelled => 1,
            Code::Unknown => 2,
            Code::InvalidArgument => 3,
            Code::DeadlineExceeded => 4,
            Code::NotFound => 5,
            Code::AlreadyExists => 6,
            Code::PermissionDenied => 7,
            Code::ResourceExhausted => 8,
            Code::FailedPrecondition => 9,
            Code::Aborted => 10,
            Code::Unimplemented => 12,
            Code::Internal => 13,
            Code::Unavailable => 14,
            Code::Unauthenticated => 16,
        }
    }

    /// The canonical code Google uses for an HTTP status (used by fault injection).
    pub fn from_http_status(status: u16) -> Code {
        match status {
            400 => Code::InvalidArgument,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::NotFound,
            409 => Code::Aborted,
            412 => Code::FailedPrecondition,
            429 => Code::ResourceExhausted,
            499 => Code::Cancelled,
            501 => Code::Unimplemented,
            503 => Code::Unavailable,
            504 => Code::DeadlineExceeded,
            500 => Code::Internal,
            _ => Code::Unknown,
        }
    }
}

/// An error answered to the client in Google's wire format.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} {}: {message}", code.http_status(), code.status_name())]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    /// Overrides the HTTP status (Storage's 412, injected faults with odd statuses).
    pub http_status: Option<u16>,
    pub details: Vec<Value>,
    /// Apiary-style `errors[].reason` (`notFound`, `conditionNotMet`, `duplicate`, ...).
    pub storage_reason: Option<&'static str>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            http_status: None,
            details: Vec::new(),
            storage_reason: None,
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(Code::FailedPrecondition, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(Code::AlreadyExists, message)
    }

    pub fn aborted(message: impl Into<String>) -> Self {
        Self::new(Code::Aborted, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }

    pub fn unimplemented(message: impl Into<String>) -> Self {
        Self::new(Code::Unimplemented, message)
    }

    /// A 400 for a malformed JSON payload, with a `google.rpc.BadRequest` field violation.
    pub fn bad_field(field: &str, description: String) -> Self {
        let mut error = Self::invalid_argument(description.clone());
        let violation = if field.is_empty() {
            json!({ "description": description })
        } else {
            json!({ "field": field, "description": description })
        };
        error.details.push(json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [violation],
        }));
        error
    }

    pub fn with_http_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    pub fn with_storage_reason(mut self, reason: &'static str) -> Self {
        self.storage_reason = Some(reason);
        self
    }

    pub fn http_status(&self) -> u16 {
        self.http_status.unwrap_or_else(|| self.code.http_status())
    }

    /// The JSON error body. Proto-based APIs answer `{code, message, status, details}`;
    /// Storage answers `{code, message, errors: [{message, domain, reason}]}`, BigQuery the same
    /// plus `status`.
    pub fn to_body(&self, style: ErrorStyle) -> Value {
        let code = self.http_status();
        if style != ErrorStyle::Proto {
            let reason = self.storage_reason.unwrap_or_else(|| match style {
                ErrorStyle::BigQuery => bigquery_reason_for(code),
                _ => storage_reason_for(code),
            });
            let mut item = json!({ "message": self.message, "domain": "global", "reason": reason });
            if reason == "conditionNotMet" {
                item["locationType"] = json!("header");
                item["location"] = json!("If-Match");
            }
            let mut error = json!({ "code": code, "message": self.message, "errors": [item] });
            if style == ErrorStyle::BigQuery {
                error["status"] = json!(self.code.status_name());
            }
            return json!({ "error": error });
        }
        let mut error =
            json!({ "code": code, "message": self.message, "status": self.code.status_name() });
        if !self.details.is_empty() {
            error["details"] = Value::Array(self.details.clone());
        }
        json!({ "error": error })
    }

    /// The `google.rpc.Status` form used inside `Operation.error`.
    pub fn to_rpc_status(&self) -> Value {
        json!({ "code": self.code.rpc_number(), "message": self.message })
    }
}

fn bigquery_reason_for(http_status: u16) -> &'static str {
    match http_status {
        400 => "invalid",
        403 => "accessDenied",
        404 => "notFound",
        409 => "duplicate",
        412 => "failedPrecondition",
        501 => "notImplemented",
        _ => storage_reason_for(http_status),
    }
}

fn storage_reason_for(http_status: u16) -> &'static str {
    match http_status {
        400 => "invalid",
        401 => "required",
        403 => "forbidden",
        404 => "notFound",
        409 => "conflict",
        412 => "conditionNotMet",
        429 => "rateLimitExceeded",
        503 => "backendError",
        _ => "backendError",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_follow_each_api_family() {
        let not_found = ApiError::not_found("Requested entity was not found.");
        assert_eq!(
            not_found.to_body(ErrorStyle::Proto),
            json!({"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}})
        );
        let precondition = ApiError::failed_precondition(
            "At least one of the pre-conditions you specified did not hold.",
        )
        .with_http_status(412)
        .with_storage_reason("conditionNotMet");
        let body = precondition.to_body(ErrorStyle::Storage);
        assert_eq!(body["error"]["code"], 412);
        assert_eq!(body["error"]["errors"][0]["reason"], "conditionNotMet");
        assert_eq!(Code::from_http_status(503).status_name(), "UNAVAILABLE");
    }
}

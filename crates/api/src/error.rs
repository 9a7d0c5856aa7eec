//! The error envelope and the one place where failures become HTTP responses.
//!
//! Policy: every error leaves as `{"error": {"code", "message", "details", "request_id"}}`
//! with a stable `code`. Client mistakes get a 4xx whose message says what to fix. Anything
//! unexpected is logged in full and answered with a bare 500 that carries no internal detail
//! (no SQL, no paths, no positions). OAuth endpoints use RFC 6749's format instead
//! (`routes::oauth`).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;
use vicinity_domain::{IdParseError, Scope, ValidationErrors};
use vicinity_store::StoreError;

use crate::request::current_request_id;

/// The realm named in `WWW-Authenticate` challenges.
const REALM: &str = "vicinity";

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The input field at fault (JSON path for bodies, parameter name otherwise).
    pub field: String,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable: `validation_failed`, `malformed_request`, `unauthorized`,
    /// `invalid_credentials`, `insufficient_scope`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `not_acceptable`, `conflict`, `possible_duplicate`, `payload_too_large`, `unsupported_media_type`,
    /// `rate_limited`, `unavailable`, `internal`.
    #[schema(example = "validation_failed")]
    pub code: &'static str,
    #[schema(example = "username: must be 3 to 30 characters long (got 2)")]
    pub message: String,
    pub details: Vec<ErrorDetail>,
    #[schema(example = "5f0c2b8e9d3a41c7a1e0b6f4d2c8e913")]
    pub request_id: String,
}

/// The envelope every non-OAuth error response carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Vec<ErrorDetail>,
    challenge: Option<String>,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            challenge: None,
            retry_after_secs: None,
        }
    }

    pub fn validation(errors: ValidationErrors) -> Self {
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            errors.to_string(),
        );
        error.details = errors
            .0
            .into_iter()
            .map(|e| ErrorDetail {
                field: e.field,
                message: e.message,
            })
            .collect();
        error
    }

    /// Input that cannot be read at all: malformed JSON, wrong types, unknown fields.
    pub fn malformed(field: Option<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut error = Self::new(
            StatusCode::BAD_REQUEST,
            "malformed_request",
            message.clone(),
        );
        if let Some(field) = field {
            error.details.push(ErrorDetail { field, message });
        }
        error
    }

    pub fn bad_id(field: &str, error: IdParseError) -> Self {
        Self::malformed(Some(field.to_owned()), error.to_string())
    }

    /// No usable credentials: RFC 6750 §3.1 — no error code when none were sent.
    pub fn missing_token() -> Self {
        let mut error = Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint needs an access token: send `Authorization: Bearer <token>`",
        );
        error.challenge = Some(format!("Bearer realm=\"{REALM}\""));
        error
    }

    pub fn invalid_token(description: &str) -> Self {
        let mut error = Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("the access token is not valid: {description}"),
        );
        error.challenge = Some(format!(
            "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{description}\""
        ));
        error
    }

    pub fn invalid_credentials() -> Self {
        let mut error = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "the username or email and password do not match an account",
        );
        error.challenge = Some(format!("Bearer realm=\"{REALM}\""));
        error
    }

    pub fn insufficient_scope(scope: Scope) -> Self {
        let mut error = Self::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("the access token lacks the `{scope}` scope"),
        );
        error.challenge = Some(format!(
            "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{scope}\""
        ));
        error
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn taken(field: &str) -> Self {
        let mut error = Self::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("{field}: already taken by another account"),
        );
        error.details.push(ErrorDetail {
            field: field.to_owned(),
            message: "already taken by another account".into(),
        });
        error
    }

    /// Well-formed input the rules refuse, with a code of its own (e.g. `impossible_travel`).
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// A request that conflicts with existing data; `code` says how.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body exceeds the limit of {limit} bytes"),
        )
    }

    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("the request body must be sent as `Content-Type: {expected}`"),
        )
    }

    /// An `Accept` header that allows none of the representations offered.
    pub fn not_acceptable(offered: &[&str]) -> Self {
        Self::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            format!(
                "this resource is available as {}; ask with `Accept` or `?format=`",
                offered.join(", ")
            ),
        )
    }

    pub fn rate_limited(retry_after_secs: u64, what: &str) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many {what}; try again in {retry_after_secs} s"),
        );
        error.retry_after_secs = Some(retry_after_secs);
        error
    }

    pub fn unavailable() -> Self {
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the service is temporarily unavailable; retry shortly",
        );
        error.retry_after_secs = Some(1);
        error
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error",
        )
    }

    /// The envelope for a status produced outside our handlers (unknown route, wrong method,
    /// a framework extractor), so that every error response has the same shape.
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::not_found("no such resource"),
            StatusCode::METHOD_NOT_ALLOWED => Self::new(
                status,
                "method_not_allowed",
                "this resource does not support that method",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(status, "payload_too_large", "the request body is too large")
            }
            status if status.is_server_error() => Self::internal(),
            status => Self::new(
                status,
                "malformed_request",
                status.canonical_reason().unwrap_or("bad request"),
            ),
        }
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub(crate) fn envelope(&self, request_id: String) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorBody {
                code: self.code,
                message: self.message.clone(),
                details: self.details.clone(),
                request_id,
            },
        }
    }

    pub(crate) fn to_response(&self, request_id: String) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(challenge) = &self.challenge
            && let Ok(value) = HeaderValue::from_str(challenge)
        {
            response.insert_header((header::WWW_AUTHENTICATE, value));
        }
        if let Some(seconds) = self.retry_after_secs {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        response.json(self.envelope(request_id))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        self.to_response(current_request_id())
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        ApiError::validation(errors)
    }
}

/// Maps a store failure, naming what a `NotFound` was ("no such venue").
pub fn not_found_as(what: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |error| match error {
        StoreError::NotFound => ApiError::not_found(what),
        other => other.into(),
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::not_found("no such resource"),
            StoreError::Taken(field) => ApiError::taken(field),
            StoreError::Conflict(code, message) => ApiError::conflict(code, message),
            StoreError::Refused(code, message) => ApiError::unprocessable(code, message),
            StoreError::Unknown(field) => ApiError::validation(ValidationErrors::single(
                field,
                "refers to nothing that exists",
            )),
            StoreError::Unavailable(detail) => {
                tracing::warn!(error.detail = %detail, "database unavailable");
                ApiError::unavailable()
            }
            other => {
                tracing::error!(error.detail = %other, "store failure");
                ApiError::internal()
            }
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        tracing::error!(error.detail = %error, "blocking task failed");
        ApiError::internal()
    }
}

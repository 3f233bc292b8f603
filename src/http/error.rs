//! Every error the service answers with, as `{"error": {status, reason, message, code}}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use super::auth::AuthError;
use crate::engine::lifecycle::ErrorKind;
use crate::engine::EngineError;

/// An HTTP error with the Sentinel Hub body.
#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl HttpError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        HttpError {
            status: StatusCode::BAD_REQUEST,
            code: "COMMON_BAD_PAYLOAD",
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        HttpError {
            status: StatusCode::NOT_FOUND,
            code: "COMMON_NOT_FOUND",
            message: message.into(),
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            // Milliseconds, as sentinelhub reads it: a busy engine is worth a short wait.
            response.insert_header(("Retry-After", "500"));
        }
        response.json(json!({"error": {
            "status": self.status.as_u16(),
            "reason": self.status.canonical_reason().unwrap_or("Error"),
            "message": self.message,
            "code": self.code,
        }}))
    }
}

impl From<EngineError> for HttpError {
    fn from(e: EngineError) -> Self {
        let (status, code) = match &e {
            EngineError::NotFound(_) => (StatusCode::NOT_FOUND, "COMMON_NOT_FOUND"),
            EngineError::BadRequest(_) => (StatusCode::BAD_REQUEST, "COMMON_BAD_PAYLOAD"),
            EngineError::Lifecycle(l) => match l.kind() {
                ErrorKind::NotAllowed => (StatusCode::BAD_REQUEST, "COMMON_BAD_PAYLOAD"),
                ErrorKind::Conflict => (StatusCode::CONFLICT, "COMMON_BAD_PAYLOAD"),
                ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "COMMON_EXCEPTION"),
            },
            EngineError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "COMMON_DATABASE_ERROR"),
            EngineError::Busy => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED"),
            EngineError::Stopped | EngineError::Start(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "COMMON_EXCEPTION")
            }
        };
        if status.is_server_error() {
            tracing::error!("{e}");
        }
        HttpError {
            status,
            code,
            message: e.to_string(),
        }
    }
}

impl From<AuthError> for HttpError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(_) | AuthError::Random(_) => {
                tracing::error!("{e}");
                HttpError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    code: "COMMON_EXCEPTION",
                    message: e.to_string(),
                }
            }
            _ => HttpError {
                status: StatusCode::UNAUTHORIZED,
                code: "COMMON_UNAUTHORIZED",
                message: e.to_string(),
            },
        }
    }
}

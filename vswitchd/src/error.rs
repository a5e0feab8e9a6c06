//! The control plane's error type: what went wrong with a request, which field is at
//! fault, and the gRPC status code it maps to.
//!
//! Every refusal names the field (`updates[3].flow.match.ip_dst`) so a controller author can
//! find the problem without reading daemon logs. `tonic::Status` appears only at the gRPC
//! boundary ([`ApiError::into_status`]).

use tonic::Code;

/// A refused or failed control-plane request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
pub struct ApiError {
    /// The gRPC status code.
    pub code: Code,
    /// The request field at fault (empty when none is).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl ApiError {
    fn new(code: Code, field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    /// `INVALID_ARGUMENT` on `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(Code::InvalidArgument, field, message)
    }

    /// `NOT_FOUND` on `field`.
    pub fn not_found(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(Code::NotFound, field, message)
    }

    /// `ALREADY_EXISTS` on `field`.
    pub fn exists(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(Code::AlreadyExists, field, message)
    }

    /// `FAILED_PRECONDITION` on `field`.
    pub fn precondition(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(Code::FailedPrecondition, field, message)
    }

    /// `UNAVAILABLE`: the store or a queue could not take the change; nothing was applied.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::Unavailable, "", message)
    }

    /// `INTERNAL`.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::Internal, "", message)
    }

    /// The same error with `prefix.` put in front of its field path.
    pub fn under(mut self, prefix: &str) -> ApiError {
        self.field = if self.field.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }

    /// The gRPC status (message `field: message`).
    pub fn into_status(self) -> tonic::Status {
        tonic::Status::new(self.code, self.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        ApiError::unavailable(format!("configuration store: {e}; nothing was changed"))
    }
}

//! The control plane's error type: what went wrong with a request, which field is at
//! fault, and the gRPC status code it maps to.
//!
//! Every refusal names the field (`updates[3].flow.match.ip_dst`) so a controller author can
//! find the problem without reading daemon logs. `tonic::Status` appears only at the gRPC
//! boundary ([`ApiError::into_status`]).
//!
//! Errors quote the input they refuse only up to a bound ([`quote`]), and no error's field
//! or message is ever longer than [`MAX_MESSAGE_BYTES`] / [`MAX_FIELD_BYTES`]: a 60 MiB
//! bridge name comes back as its first bytes and its size, not as a 60 MiB status that the
//! client's transport refuses (grpcio then reports RESOURCE_EXHAUSTED instead of the error).

use tonic::Code;

/// Longest part of an offending input an error quotes.
pub const QUOTE_BYTES: usize = 64;
/// Longest error message (longer ones are cut, saying so).
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// Longest field path.
pub const MAX_FIELD_BYTES: usize = 256;

/// `s` quoted for an error message (as `{:?}` would), but at most [`QUOTE_BYTES`] of it,
/// followed by its full size when it was cut: `"aaaa…" (62914560 bytes)`.
pub fn quote(s: &str) -> String {
    if s.len() <= QUOTE_BYTES {
        return format!("{s:?}");
    }
    let head = prefix(s, QUOTE_BYTES);
    format!("{:?} ({} bytes)", format!("{head}…"), s.len())
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` cut to at most `max` bytes (plus a note of what was cut).
fn bounded(s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    format!(
        "{}… ({} bytes cut)",
        prefix(&s, max),
        s.len() - prefix(&s, max).len()
    )
}

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
            field: bounded(field.into(), MAX_FIELD_BYTES),
            message: bounded(message.into(), MAX_MESSAGE_BYTES),
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

    /// `RESOURCE_EXHAUSTED` on `field`: a limit of the switch would be passed.
    pub fn exhausted(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(Code::ResourceExhausted, field, message)
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
        let field = if self.field.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{}", self.field)
        };
        self.field = bounded(field, MAX_FIELD_BYTES);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_messages_are_bounded() {
        assert_eq!(quote("br0"), "\"br0\"");
        let huge = "é".repeat(1 << 20);
        let q = quote(&huge);
        assert!(q.len() < QUOTE_BYTES + 40, "{q}");
        assert!(q.ends_with("(2097152 bytes)"), "{q}");
        let e = ApiError::not_found(huge.clone(), format!("no bridge {huge}")).under("x");
        assert!(e.field.len() <= MAX_FIELD_BYTES + 40);
        assert!(e.message.len() <= MAX_MESSAGE_BYTES + 40);
        assert!(e.message.starts_with("no bridge éé"));
        assert!(e.into_status().message().len() < 2 * MAX_MESSAGE_BYTES);
    }
}

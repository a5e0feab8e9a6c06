//! What can go wrong in a flowctl run, and the exit code each outcome maps to.
//!
//! Exit codes (stable, scripts and tests rely on them):
//! - 0: success;
//! - 1: the switch refused or failed a request, or could not be reached;
//! - 2: usage or parse error: the command line or an input file was rejected before
//!   anything was sent to the switch.
//!
//! Every failure is printed on stderr by `main` as `flowctl: <Display>`, except the
//! errors that carry their own location prefix (`FILE:LINE: ...`), see [`Error::prefixed`].

use proto::flow_text::ParseError;
use proto::v1::UpdateStatus;

/// Exit code for a request the switch refused or failed, or a switch that cannot be reached.
pub const EXIT_SERVER: i32 = 1;
/// Exit code for a rejected command line or input file (nothing was sent).
pub const EXIT_USAGE: i32 = 2;

/// A failed flowctl run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line is wrong in a way clap cannot see (e.g. `KEY=VALUE` without `=`).
    #[error("{0}")]
    Usage(String),

    /// A flow, match, meter or group argument did not parse. Displays the message, then
    /// the argument with a caret line under the offending token.
    #[error("{}\n{}", .err.message, .err.caret(.input))]
    Parse {
        /// The argument as given.
        input: String,
        /// The parser's complaint.
        err: ParseError,
    },

    /// A line of an `add-flows` file did not parse: `FILE:LINE: message`, the line, a caret.
    #[error("{file}:{line}: {}\n{}", .err.message, .err.caret(.text))]
    FileParse {
        /// The file name as given (`-` for stdin).
        file: String,
        /// 1-based line number.
        line: usize,
        /// The line (comment stripped).
        text: String,
        /// The parser's complaint.
        err: ParseError,
    },

    /// An input file could not be read.
    #[error("{path}: {source}")]
    Input {
        /// The file name as given.
        path: String,
        /// Why.
        source: std::io::Error,
    },

    /// The server address or TLS files are unusable, or the switch cannot be reached.
    #[error("{0}")]
    Connect(String),

    /// The switch answered an RPC with a non-OK status.
    #[error("{}", status_text(.0))]
    Status(#[from] tonic::Status),

    /// A Write returned OK (or a status with details) but some updates failed. Each
    /// failure is one line: `update I: CODE: message (field F)`, optionally prefixed by
    /// where the update came from (`FILE:LINE: `).
    #[error("{}", .0.join("\n"))]
    Updates(Vec<String>),

    /// A multi-request operation (add-flows) failed after part of it was acknowledged.
    #[error("{}", partial_text(.inner, *.acked, *.total))]
    Partial {
        /// The failure.
        inner: Box<Error>,
        /// Flows the switch acknowledged (durably applied) before the failure.
        acked: usize,
        /// Flows in the file.
        total: usize,
    },

    /// The event stream ended or went wrong.
    #[error("{0}")]
    Stream(String),

    /// Printing the result failed (other than a closed pipe, which ends the run quietly).
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Parse { .. } | Error::FileParse { .. } => EXIT_USAGE,
            Error::Input { .. } => EXIT_USAGE,
            _ => EXIT_SERVER,
        }
    }

    /// Whether the message already starts with its own location (`FILE:LINE:`), so `main`
    /// prints it without the `flowctl: ` prefix.
    pub fn prefixed(&self) -> bool {
        matches!(self, Error::FileParse { .. })
    }
}

/// The result type of every command.
pub type Result<T> = std::result::Result<T, Error>;

/// The gRPC name of a status code, as the proto and the daemon's docs spell it.
pub fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN_CODE",
    }
}

/// The first line of `inner`, the acknowledged count, then the rest of `inner`.
fn partial_text(inner: &Error, acked: usize, total: usize) -> String {
    let text = inner.to_string();
    let (first, rest) = match text.split_once('\n') {
        Some((f, r)) => (f, Some(r)),
        None => (text.as_str(), None),
    };
    let mut out =
        format!("{first} ({acked} of {total} flows were acknowledged before the failure)");
    if let Some(r) = rest {
        out.push('\n');
        out.push_str(r);
    }
    out
}

/// `CODE: message` for a status, with the causes of a transport failure (tonic's own
/// message is just "transport error").
pub fn status_text(status: &tonic::Status) -> String {
    let code = code_name(status.code() as i32);
    let mut out = if status.message().is_empty() {
        code.to_string()
    } else {
        format!("{code}: {}", status.message())
    };
    let mut cause = std::error::Error::source(status);
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// `CODE: message (field F)` for one failed update.
pub fn update_status_text(s: &UpdateStatus) -> String {
    let mut out = code_name(s.code).to_string();
    if !s.message.is_empty() {
        out.push_str(": ");
        out.push_str(&s.message);
    }
    if !s.field.is_empty() && !s.message.contains(&s.field) {
        out.push_str(" (field ");
        out.push_str(&s.field);
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(Error::Usage("x".into()).exit_code(), EXIT_USAGE);
        assert_eq!(
            Error::Status(tonic::Status::not_found("no")).exit_code(),
            EXIT_SERVER
        );
        assert_eq!(Error::Connect("x".into()).exit_code(), EXIT_SERVER);
    }

    #[test]
    fn status_display() {
        let e = Error::Status(tonic::Status::invalid_argument(
            "updates[3].flow.match.fields[1].mask: not maskable",
        ));
        assert_eq!(
            e.to_string(),
            "INVALID_ARGUMENT: updates[3].flow.match.fields[1].mask: not maskable"
        );
    }

    #[test]
    fn update_status_display() {
        let s = UpdateStatus {
            index: 2,
            code: 5,
            message: "no such port".into(),
            field: "flow.match.fields[0].port_name".into(),
        };
        assert_eq!(
            update_status_text(&s),
            "NOT_FOUND: no such port (field flow.match.fields[0].port_name)"
        );
    }

    #[test]
    fn partial_display() {
        let e = Error::Partial {
            inner: Box::new(Error::Status(tonic::Status::unavailable("gone"))),
            acked: 5000,
            total: 12000,
        };
        assert_eq!(
            e.to_string(),
            "UNAVAILABLE: gone (5000 of 12000 flows were acknowledged before the failure)"
        );
    }
}

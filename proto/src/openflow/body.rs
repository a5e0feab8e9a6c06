//! The trait every fixed-type message body implements, apart from [`super::message`] (which
//! gathers the bodies into one enum) so that the body modules and the enum do not import
//! each other.

use super::error::OfpError;
use super::header::MsgType;

/// A message body with a fixed message type: parse from the bytes after the header, emit
/// after a header.
pub trait MessageBody<'a>: Sized {
    /// The message type.
    const TYPE: MsgType;
    /// Parses the body (the bytes after the 8-byte header).
    fn parse(body: &'a [u8]) -> Result<Self, OfpError>;
    /// Appends the body.
    fn emit_body(&self, out: &mut Vec<u8>);
}

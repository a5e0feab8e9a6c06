//! OFPT_ERROR: the message that carries an [`OfpError`] and the start of the request it
//! answers.

use super::body::MessageBody;
use super::error::{EXPERIMENTER_TYPE, OfpError, bad_request};
use super::header::MsgType;
use super::wire::{Put, Reader};

/// How many bytes of the offending request an ERROR carries (as Open vSwitch sends).
pub const ERROR_DATA_MAX: usize = 64;

/// OFPT_ERROR: an error and (usually) the first bytes of the message that caused it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ErrorMsg<'a> {
    /// The error.
    pub error: OfpError,
    /// For most errors the start of the offending message; for HELLO_FAILED an ASCII text.
    pub data: &'a [u8],
}

impl<'a> ErrorMsg<'a> {
    /// The reply to `request` (a whole message): its first 64 bytes as data.
    pub fn reply(error: OfpError, request: &'a [u8]) -> Self {
        let n = request.len().min(ERROR_DATA_MAX);
        ErrorMsg {
            error,
            data: &request[..n],
        }
    }
}

impl<'a> MessageBody<'a> for ErrorMsg<'a> {
    const TYPE: MsgType = MsgType::ERROR;

    fn parse(body: &'a [u8]) -> Result<Self, OfpError> {
        let mut r = Reader::new(body, bad_request::BAD_LEN);
        let kind = r.u16()?;
        let code = r.u16()?;
        let experimenter = if kind == EXPERIMENTER_TYPE {
            r.u32()?
        } else {
            0
        };
        Ok(ErrorMsg {
            error: OfpError {
                kind,
                code,
                experimenter,
            },
            data: r.rest(),
        })
    }

    fn emit_body(&self, out: &mut Vec<u8>) {
        out.put_u16(self.error.kind);
        out.put_u16(self.error.code);
        if self.error.kind == EXPERIMENTER_TYPE {
            out.put_u32(self.error.experimenter);
        }
        out.extend_from_slice(self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_carries_at_most_64_bytes() {
        let req = [7u8; 100];
        let m = ErrorMsg::reply(bad_request::BAD_TYPE, &req);
        assert_eq!(m.data.len(), 64);
    }
}

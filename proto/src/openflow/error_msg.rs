//! OFPT_ERROR: the message that carries an [`OfpError`] and the start of the request it
//! answers.

use super::body::MessageBody;
use super::error::{EXPERIMENTER_TYPE, OfpError, bad_request};
use super::header::MsgType;
use super::wire::{Put, Reader};

/// How many bytes of the offending request an ERROR carries at most: all of it, as Open
/// vSwitch 3.1 sends (the specification asks for at least 64), as long as the error still
/// fits a message (header, type and code, and an experimenter id for ONF errors).
pub const ERROR_DATA_MAX: usize = 65535 - 16;

/// OFPT_ERROR: an error and (usually) the first bytes of the message that caused it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ErrorMsg<'a> {
    /// The error.
    pub error: OfpError,
    /// For most errors the start of the offending message; for HELLO_FAILED an ASCII text.
    pub data: &'a [u8],
}

impl<'a> ErrorMsg<'a> {
    /// The reply to `request` (a whole message): the request as data, up to
    /// [`ERROR_DATA_MAX`] bytes.
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
    fn reply_carries_the_request_as_long_as_it_fits() {
        let req = [7u8; 100];
        let m = ErrorMsg::reply(bad_request::BAD_TYPE, &req);
        assert_eq!(m.data.len(), 100);
        let big = vec![7u8; 65535];
        let m = ErrorMsg::reply(bad_request::BAD_TYPE, &big);
        let mut out = Vec::new();
        assert!(
            crate::openflow::message::emit(crate::openflow::header::Version::V1_3, 1, &m, &mut out)
                .is_ok()
        );
        assert_eq!(
            out.len(),
            65535 - 4,
            "a standard error has no experimenter id"
        );
    }
}

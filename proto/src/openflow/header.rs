//! The 8-byte header every OpenFlow message starts with, message types, versions, framing.
//!
//! [`Header`] is a smoltcp-style view: `new_checked` on untrusted bytes guarantees that the
//! accessors cannot panic. [`frame_len`] cuts a byte stream into messages; [`begin`] and
//! [`finish`] bracket a message being written (the length is patched at the end).

use super::error::{OfpError, bad_request};
pub use super::version::Version;
use super::wire::Put;

/// Length of the OpenFlow header.
pub const HEADER_LEN: usize = 8;
/// Largest OpenFlow message (the length field is 16 bits).
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;

/// An OpenFlow message type (ofp_header.type), OpenFlow 1.3 numbering plus 1.4 additions.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct MsgType(pub u8);

#[allow(missing_docs)]
impl MsgType {
    pub const HELLO: MsgType = MsgType(0);
    pub const ERROR: MsgType = MsgType(1);
    pub const ECHO_REQUEST: MsgType = MsgType(2);
    pub const ECHO_REPLY: MsgType = MsgType(3);
    pub const EXPERIMENTER: MsgType = MsgType(4);
    pub const FEATURES_REQUEST: MsgType = MsgType(5);
    pub const FEATURES_REPLY: MsgType = MsgType(6);
    pub const GET_CONFIG_REQUEST: MsgType = MsgType(7);
    pub const GET_CONFIG_REPLY: MsgType = MsgType(8);
    pub const SET_CONFIG: MsgType = MsgType(9);
    pub const PACKET_IN: MsgType = MsgType(10);
    pub const FLOW_REMOVED: MsgType = MsgType(11);
    pub const PORT_STATUS: MsgType = MsgType(12);
    pub const PACKET_OUT: MsgType = MsgType(13);
    pub const FLOW_MOD: MsgType = MsgType(14);
    pub const GROUP_MOD: MsgType = MsgType(15);
    pub const PORT_MOD: MsgType = MsgType(16);
    pub const TABLE_MOD: MsgType = MsgType(17);
    pub const MULTIPART_REQUEST: MsgType = MsgType(18);
    pub const MULTIPART_REPLY: MsgType = MsgType(19);
    pub const BARRIER_REQUEST: MsgType = MsgType(20);
    pub const BARRIER_REPLY: MsgType = MsgType(21);
    pub const QUEUE_GET_CONFIG_REQUEST: MsgType = MsgType(22);
    pub const QUEUE_GET_CONFIG_REPLY: MsgType = MsgType(23);
    pub const ROLE_REQUEST: MsgType = MsgType(24);
    pub const ROLE_REPLY: MsgType = MsgType(25);
    pub const GET_ASYNC_REQUEST: MsgType = MsgType(26);
    pub const GET_ASYNC_REPLY: MsgType = MsgType(27);
    pub const SET_ASYNC: MsgType = MsgType(28);
    pub const METER_MOD: MsgType = MsgType(29);
    /// OpenFlow 1.4+.
    pub const BUNDLE_CONTROL: MsgType = MsgType(33);
    /// OpenFlow 1.4+.
    pub const BUNDLE_ADD_MESSAGE: MsgType = MsgType(34);
}

/// A read-only or mutable view of an OpenFlow header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// A view without checks; accessors may panic on a short buffer. Prefer `new_checked`.
    pub const fn new_unchecked(buffer: T) -> Self {
        Header { buffer }
    }

    /// A view over untrusted bytes: at least a header, a length field of at least 8 and no
    /// more than the buffer holds. Accessors cannot panic afterwards.
    pub fn new_checked(buffer: T) -> Result<Self, OfpError> {
        let h = Self::new_unchecked(buffer);
        h.check_len()?;
        Ok(h)
    }

    /// Checks the guarantees `new_checked` promises.
    pub fn check_len(&self) -> Result<(), OfpError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(bad_request::BAD_LEN);
        }
        let len = usize::from(self.length());
        if len < HEADER_LEN || len > b.len() {
            return Err(bad_request::BAD_LEN);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// ofp_header.version.
    pub fn version(&self) -> Version {
        Version(self.buffer.as_ref()[0])
    }

    /// ofp_header.type.
    pub fn msg_type(&self) -> MsgType {
        MsgType(self.buffer.as_ref()[1])
    }

    /// ofp_header.length: the whole message, header included.
    pub fn length(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }

    /// ofp_header.xid.
    pub fn xid(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }

    /// The message body: the bytes after the header, up to `length`.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.length())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    /// Sets ofp_header.version.
    pub fn set_version(&mut self, v: Version) {
        self.buffer.as_mut()[0] = v.0;
    }
    /// Sets ofp_header.type.
    pub fn set_msg_type(&mut self, t: MsgType) {
        self.buffer.as_mut()[1] = t.0;
    }
    /// Sets ofp_header.length.
    pub fn set_length(&mut self, len: u16) {
        self.buffer.as_mut()[2..4].copy_from_slice(&len.to_be_bytes());
    }
    /// Sets ofp_header.xid.
    pub fn set_xid(&mut self, xid: u32) {
        self.buffer.as_mut()[4..8].copy_from_slice(&xid.to_be_bytes());
    }
}

/// The header's fields as values.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Repr {
    /// Wire version.
    pub version: Version,
    /// Message type.
    pub msg_type: MsgType,
    /// Whole message length.
    pub length: u16,
    /// Transaction id.
    pub xid: u32,
}

impl Repr {
    /// Reads a checked header.
    pub fn parse<T: AsRef<[u8]>>(h: &Header<T>) -> Repr {
        Repr {
            version: h.version(),
            msg_type: h.msg_type(),
            length: h.length(),
            xid: h.xid(),
        }
    }

    /// Writes the header into the first 8 bytes of `buf` (at least 8 bytes long).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, h: &mut Header<T>) {
        h.set_version(self.version);
        h.set_msg_type(self.msg_type);
        h.set_length(self.length);
        h.set_xid(self.xid);
    }
}

/// Framing a byte stream: the length of the first message if it is all there, `None` if more
/// bytes are needed, an error if the length field is below 8 (the stream cannot be resynced;
/// the channel closes the connection).
pub fn frame_len(stream: &[u8]) -> Result<Option<usize>, OfpError> {
    if stream.len() < 4 {
        return Ok(None);
    }
    let len = usize::from(u16::from_be_bytes([stream[2], stream[3]]));
    if len < HEADER_LEN {
        return Err(bad_request::BAD_LEN);
    }
    Ok((stream.len() >= len).then_some(len))
}

/// Starts a message in `out`: writes a header with a placeholder length, returns its offset.
pub fn begin(out: &mut Vec<u8>, version: Version, msg_type: MsgType, xid: u32) -> usize {
    let start = out.len();
    out.put_u8(version.0);
    out.put_u8(msg_type.0);
    out.put_u16(0);
    out.put_u32(xid);
    start
}

/// Ends the message begun at `start`: patches its length. A message over 65535 bytes cannot
/// be sent; it is removed from `out` and `BAD_LEN` returned.
pub fn finish(out: &mut Vec<u8>, start: usize) -> Result<(), OfpError> {
    let len = out.len() - start;
    match u16::try_from(len) {
        Ok(l) => {
            out.patch_u16(start + 2, l);
            Ok(())
        }
        Err(_) => {
            out.truncate(start);
            Err(bad_request::BAD_LEN)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An OpenFlow 1.3 FEATURES_REQUEST as ovs-ofctl sends it.
    static BYTES: [u8; 8] = [0x04, 0x05, 0x00, 0x08, 0x00, 0x00, 0x00, 0x02];

    #[test]
    fn read_fields() {
        let h = Header::new_checked(&BYTES[..]).expect("header");
        assert_eq!(h.version(), Version::V1_3);
        assert_eq!(h.msg_type(), MsgType::FEATURES_REQUEST);
        assert_eq!(h.length(), 8);
        assert_eq!(h.xid(), 2);
        assert!(h.body().is_empty());
    }

    #[test]
    fn build_and_emit() {
        let mut buf = [0u8; 8];
        let mut h = Header::new_unchecked(&mut buf[..]);
        let repr = Repr::parse(&Header::new_checked(&BYTES[..]).expect("header"));
        repr.emit(&mut h);
        assert_eq!(buf, BYTES);
        let mut out = Vec::new();
        let s = begin(&mut out, Version::V1_3, MsgType::FEATURES_REQUEST, 2);
        finish(&mut out, s).expect("fits");
        assert_eq!(out, BYTES);
    }

    #[test]
    fn rejects_short_and_lying_lengths() {
        assert_eq!(
            Header::new_checked(&BYTES[..7]).err(),
            Some(bad_request::BAD_LEN)
        );
        let mut b = BYTES;
        b[3] = 9;
        assert_eq!(
            Header::new_checked(&b[..]).err(),
            Some(bad_request::BAD_LEN)
        );
        b[3] = 7;
        assert_eq!(
            Header::new_checked(&b[..]).err(),
            Some(bad_request::BAD_LEN)
        );
        assert_eq!(frame_len(&b), Err(bad_request::BAD_LEN));
    }

    #[test]
    fn framing() {
        assert_eq!(frame_len(&BYTES[..3]), Ok(None));
        assert_eq!(frame_len(&BYTES[..7]), Ok(None));
        assert_eq!(frame_len(&BYTES), Ok(Some(8)));
    }

    #[test]
    fn oversized_messages_are_refused() {
        let mut out = vec![1, 2, 3];
        let s = begin(&mut out, Version::V1_3, MsgType::PACKET_OUT, 1);
        out.put_zeros(70_000);
        assert_eq!(finish(&mut out, s), Err(bad_request::BAD_LEN));
        assert_eq!(out, [1, 2, 3]);
    }
}

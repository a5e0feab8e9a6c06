//! HELLO with version bitmaps, version negotiation, and the generic EXPERIMENTER message.
//!
//! Negotiation as OpenFlow 1.3.1+ and Open vSwitch do it: each side sends HELLO with its
//! highest version in the header and a bitmap of all it supports; both settle on the
//! highest version in both bitmaps. A peer without a bitmap supports every version up to
//! its header's. So an ovs-ofctl offering 1.0 to 1.5 and a switch offering 1.3 settle on
//! 1.3; with no common version the switch sends HELLO_FAILED/INCOMPATIBLE and closes.

use super::body::MessageBody;
use super::error::{OfpError, bad_request, hello_failed};
use super::header::{self, MsgType, Version};
use super::list::{Item, List};
use super::wire::{Put, Reader};

/// OFPHET_VERSIONBITMAP.
pub const VERSION_BITMAP: u16 = 1;

/// A set of wire versions (bit n set: version n supported), versions 0 to 31.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct VersionSet(pub u32);

impl VersionSet {
    /// The versions in `vs`.
    pub fn of(vs: &[Version]) -> Self {
        VersionSet(
            vs.iter()
                .filter(|v| v.0 < 32)
                .fold(0, |a, v| a | (1 << v.0)),
        )
    }

    /// Every version from 1 up to `v` (a peer that sent no bitmap).
    pub fn up_to(v: Version) -> Self {
        if v.0 >= 31 {
            VersionSet(!1)
        } else {
            VersionSet(((1u32 << (v.0 + 1)) - 1) & !1)
        }
    }

    /// Whether `v` is in the set.
    pub fn contains(&self, v: Version) -> bool {
        v.0 < 32 && self.0 & (1 << v.0) != 0
    }

    /// The highest version in the set.
    pub fn highest(&self) -> Option<Version> {
        (self.0 != 0).then(|| Version(31 - self.0.leading_zeros() as u8))
    }
}

/// One HELLO element.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum HelloElem<'a> {
    /// OFPHET_VERSIONBITMAP: 32-bit bitmaps, the first covering versions 0 to 31.
    VersionBitmap(&'a [u8]),
    /// An element of another type (ignored by negotiation).
    Unknown {
        /// Element type.
        kind: u16,
        /// Element payload.
        data: &'a [u8],
    },
}

impl<'a> Item<'a> for HelloElem<'a> {
    const BAD_LEN: OfpError = bad_request::BAD_LEN;

    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, bad_request::BAD_LEN);
        let kind = r.u16()?;
        let len = usize::from(r.u16()?);
        let data = r.bytes(len.checked_sub(4).ok_or(bad_request::BAD_LEN)?)?;
        // The last element's padding may be missing in what old peers send.
        let padded = (len.div_ceil(8) * 8).min(buf.len());
        let e = if kind == VERSION_BITMAP {
            if data.len() % 4 != 0 {
                return Err(bad_request::BAD_LEN);
            }
            HelloElem::VersionBitmap(data)
        } else {
            HelloElem::Unknown { kind, data }
        };
        Ok((e, padded))
    }

    fn emit_item(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let (kind, data) = match *self {
            HelloElem::VersionBitmap(d) => (VERSION_BITMAP, d),
            HelloElem::Unknown { kind, data } => (kind, data),
        };
        out.put_u16(kind);
        out.put_u16(0);
        out.extend_from_slice(data);
        out.finish_padded(start, 2);
    }
}

/// OFPT_HELLO.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct Hello<'a> {
    /// Elements (OpenFlow 1.3.1+); empty from older peers.
    pub elements: List<'a, HelloElem<'a>>,
}

impl<'a> Hello<'a> {
    /// The versions the peer's bitmap lists, if it sent one.
    pub fn bitmap(&self) -> Option<VersionSet> {
        self.elements.iter().find_map(|e| match e {
            HelloElem::VersionBitmap(d) if d.len() >= 4 => {
                Some(VersionSet(u32::from_be_bytes([d[0], d[1], d[2], d[3]])))
            }
            _ => None,
        })
    }

    /// The version to speak with a peer whose HELLO had `header_version` and this body, when
    /// we support `ours`; `HELLO_FAILED/INCOMPATIBLE` when there is none.
    pub fn negotiate(
        &self,
        header_version: Version,
        ours: VersionSet,
    ) -> Result<Version, OfpError> {
        let theirs = self.bitmap().unwrap_or(VersionSet::up_to(header_version));
        VersionSet(theirs.0 & ours.0)
            .highest()
            .ok_or(hello_failed::INCOMPATIBLE)
    }

    /// Writes our HELLO: the highest of `ours` in the header and a version bitmap.
    pub fn emit_ours(ours: VersionSet, xid: u32, out: &mut Vec<u8>) -> Result<(), OfpError> {
        let v = ours.highest().unwrap_or(Version::V1_3);
        let start = header::begin(out, v, MsgType::HELLO, xid);
        let bitmap = ours.0.to_be_bytes();
        HelloElem::VersionBitmap(&bitmap).emit_item(out);
        header::finish(out, start)
    }
}

impl<'a> MessageBody<'a> for Hello<'a> {
    const TYPE: MsgType = MsgType::HELLO;
    fn parse(body: &'a [u8]) -> Result<Self, OfpError> {
        Ok(Hello {
            elements: List::new_checked(body)?,
        })
    }
    fn emit_body(&self, out: &mut Vec<u8>) {
        self.elements.emit(out);
    }
}

/// OFPT_EXPERIMENTER: experimenter id, type and opaque data.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Experimenter<'a> {
    /// Experimenter id.
    pub experimenter: u32,
    /// Experimenter-defined type.
    pub exp_type: u32,
    /// Experimenter-defined data.
    pub data: &'a [u8],
}

impl<'a> MessageBody<'a> for Experimenter<'a> {
    const TYPE: MsgType = MsgType::EXPERIMENTER;
    fn parse(body: &'a [u8]) -> Result<Self, OfpError> {
        let mut r = Reader::new(body, bad_request::BAD_LEN);
        Ok(Experimenter {
            experimenter: r.u32()?,
            exp_type: r.u32()?,
            data: r.rest(),
        })
    }
    fn emit_body(&self, out: &mut Vec<u8>) {
        out.put_u32(self.experimenter);
        out.put_u32(self.exp_type);
        out.extend_from_slice(self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::message::{Message, parse};

    // What ovs-ofctl 3.1 sends by default: version 0x06 with a bitmap of 1.0 to 1.5.
    static OVS_OFCTL_HELLO: [u8; 16] = [
        0x06, 0x00, 0x00, 0x10, 0, 0, 0, 1, 0x00, 0x01, 0x00, 0x08, 0x00, 0x00, 0x00, 0x7e,
    ];

    #[test]
    fn negotiates_down_to_1_3() {
        let (h, m) = parse(&OVS_OFCTL_HELLO).expect("hello");
        let Message::Hello(hello) = m else {
            panic!("{m:?}")
        };
        assert_eq!(hello.bitmap(), Some(VersionSet(0x7e)));
        let ours = VersionSet::of(&[Version::V1_3]);
        assert_eq!(hello.negotiate(h.version, ours), Ok(Version::V1_3));
        let ours14 = VersionSet::of(&[Version::V1_3, Version::V1_4]);
        assert_eq!(hello.negotiate(h.version, ours14), Ok(Version::V1_4));
        let old = VersionSet::of(&[Version(7)]);
        assert_eq!(
            hello.negotiate(h.version, old),
            Err(hello_failed::INCOMPATIBLE)
        );
    }

    #[test]
    fn peer_without_bitmap_supports_up_to_its_header() {
        let h = Hello::default();
        let ours = VersionSet::of(&[Version::V1_3]);
        assert_eq!(h.negotiate(Version::V1_5, ours), Ok(Version::V1_3));
        assert_eq!(
            h.negotiate(Version::V1_0, ours),
            Err(hello_failed::INCOMPATIBLE)
        );
    }

    #[test]
    fn emits_ours() {
        let mut out = Vec::new();
        Hello::emit_ours(VersionSet(0x7e), 1, &mut out).expect("fits");
        assert_eq!(out, OVS_OFCTL_HELLO);
        let (_, m) = parse(&out).expect("parses");
        let mut again = Vec::new();
        m.emit(Version::V1_5, 1, &mut again).expect("fits");
        assert_eq!(again, OVS_OFCTL_HELLO);
    }
}

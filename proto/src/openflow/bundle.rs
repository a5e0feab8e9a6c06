//! Bundles: OFPT_BUNDLE_CONTROL and OFPT_BUNDLE_ADD_MESSAGE of OpenFlow 1.4, and the same
//! bodies inside ONF EXT-230 experimenter messages (experimenter 0x4f4e4600, types 2300 and
//! 2301), which is what `ovs-ofctl -O OpenFlow13 --bundle` sends.
//!
//! [`super::message::Message`] parses both framings into the same structs and emits the
//! framing that fits the connection's version.

use super::error::{OfpError, bad_property, bad_request, bundle_failed};
use super::header::Header;
use super::list::{List, Prop};
use super::wire::{Put, Reader};

/// ONF experimenter type of the 1.3 bundle control message.
pub const ONF_ET_BUNDLE_CONTROL: u32 = 2300;
/// ONF experimenter type of the 1.3 bundle add message.
pub const ONF_ET_BUNDLE_ADD: u32 = 2301;

/// Bundle control types (OFPBCT_*).
#[allow(missing_docs)]
pub mod ctrl {
    pub const OPEN_REQUEST: u16 = 0;
    pub const OPEN_REPLY: u16 = 1;
    pub const CLOSE_REQUEST: u16 = 2;
    pub const CLOSE_REPLY: u16 = 3;
    pub const COMMIT_REQUEST: u16 = 4;
    pub const COMMIT_REPLY: u16 = 5;
    pub const DISCARD_REQUEST: u16 = 6;
    pub const DISCARD_REPLY: u16 = 7;
}

/// Bundle flags (OFPBF_*).
#[allow(missing_docs)]
pub mod flags {
    pub const ATOMIC: u16 = 1 << 0;
    pub const ORDERED: u16 = 1 << 1;
}

fn props(b: &[u8]) -> Result<List<'_, Prop<'_>>, OfpError> {
    List::new_checked(b).map_err(|_| bad_property::BAD_LEN)
}

/// A bundle control message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BundleControl<'a> {
    /// Bundle id.
    pub bundle_id: u32,
    /// OFPBCT_*.
    pub ctrl_type: u16,
    /// OFPBF_*.
    pub flags: u16,
    /// Properties.
    pub properties: List<'a, Prop<'a>>,
}

impl<'a> BundleControl<'a> {
    /// The reply to this request (type + 1), no properties.
    pub fn reply(&self) -> BundleControl<'static> {
        BundleControl {
            bundle_id: self.bundle_id,
            ctrl_type: self.ctrl_type | 1,
            flags: self.flags,
            properties: List::default(),
        }
    }

    /// Parses the body (after the header, or after the ONF experimenter framing).
    pub fn parse(body: &'a [u8]) -> Result<Self, OfpError> {
        let mut r = Reader::new(body, bad_request::BAD_LEN);
        let bundle_id = r.u32()?;
        let ctrl_type = r.u16()?;
        let flags = r.u16()?;
        if ctrl_type > ctrl::DISCARD_REPLY {
            return Err(bundle_failed::BAD_TYPE);
        }
        Ok(BundleControl {
            bundle_id,
            ctrl_type,
            flags,
            properties: props(r.rest())?,
        })
    }

    /// Writes the body.
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        out.put_u32(self.bundle_id);
        out.put_u16(self.ctrl_type);
        out.put_u16(self.flags);
        self.properties.emit(out);
    }
}

/// A bundle add message: one message to apply when the bundle commits.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct BundleAdd<'a> {
    /// Bundle id.
    pub bundle_id: u32,
    /// OFPBF_* (must match the open request's).
    pub flags: u16,
    /// The whole inner message, header included (parse it with
    /// [`super::message::parse`]).
    pub message: &'a [u8],
    /// Bytes after the inner message (padding and properties), kept as sent.
    pub trailer: &'a [u8],
}

impl<'a> BundleAdd<'a> {
    /// Parses the body (after the header, or after the ONF experimenter framing).
    pub fn parse(body: &'a [u8]) -> Result<Self, OfpError> {
        let mut r = Reader::new(body, bad_request::BAD_LEN);
        let bundle_id = r.u32()?;
        r.skip(2)?;
        let flags = r.u16()?;
        let rest = r.rest();
        let inner = Header::new_checked(rest).map_err(|_| bundle_failed::MSG_BAD_LEN)?;
        let (message, trailer) = rest.split_at(usize::from(inner.length()));
        Ok(BundleAdd {
            bundle_id,
            flags,
            message,
            trailer,
        })
    }

    /// Writes the body.
    pub fn emit_body(&self, out: &mut Vec<u8>) {
        out.put_u32(self.bundle_id);
        out.put_zeros(2);
        out.put_u16(self.flags);
        out.extend_from_slice(self.message);
        out.extend_from_slice(self.trailer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::header::Version;
    use crate::openflow::message::{Message, parse};

    #[test]
    fn onf_bundle_in_1_3_and_native_in_1_4() {
        let open = BundleControl {
            bundle_id: 1,
            ctrl_type: ctrl::OPEN_REQUEST,
            flags: flags::ATOMIC,
            properties: List::default(),
        };
        let mut v13 = Vec::new();
        Message::BundleControl(open)
            .emit(Version::V1_3, 7, &mut v13)
            .expect("fits");
        assert_eq!(v13[1], 4, "experimenter message in 1.3");
        assert_eq!(&v13[8..16], [0x4f, 0x4e, 0x46, 0, 0, 0, 0x08, 0xfc]);
        assert_eq!(parse(&v13).expect("1.3").1, Message::BundleControl(open));
        let mut v14 = Vec::new();
        Message::BundleControl(open)
            .emit(Version::V1_4, 7, &mut v14)
            .expect("fits");
        assert_eq!(v14[1], 33);
        assert_eq!(parse(&v14).expect("1.4").1, Message::BundleControl(open));
        assert_eq!(open.reply().ctrl_type, ctrl::OPEN_REPLY);
    }

    #[test]
    fn bundle_add_carries_a_whole_message() {
        let inner = [4u8, 20, 0, 8, 0, 0, 0, 9]; // a barrier request
        let add = BundleAdd {
            bundle_id: 1,
            flags: flags::ATOMIC,
            message: &inner,
            trailer: &[],
        };
        let mut out = Vec::new();
        Message::BundleAdd(add)
            .emit(Version::V1_3, 8, &mut out)
            .expect("fits");
        let (_, m) = parse(&out).expect("parses");
        assert_eq!(m, Message::BundleAdd(add));
        let Message::BundleAdd(a) = m else { panic!() };
        assert_eq!(parse(a.message).expect("inner").1, Message::BarrierRequest);
        let mut bad = out.clone();
        bad[27] = 4; // inner length below 8
        assert_eq!(parse(&bad).err(), Some(bundle_failed::MSG_BAD_LEN));
    }
}

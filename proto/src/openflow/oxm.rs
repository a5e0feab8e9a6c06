//! OXM TLVs and the OpenFlow 1.3 match (ofp_match of type OFPMT_OXM).
//!
//! [`Oxm`] is one TLV: header (class, field, has-mask, length), an experimenter id for
//! class 0xffff, the value and the optional mask, all borrowed. [`OxmId`] is a bare header
//! as table features, NXM actions and learn specs carry it. [`Match`] is a checked list of
//! OXMs: framing, per-field size, mask permission, value bits outside the mask and
//! duplicates are checked against the field table ([`super::fields`]) with the error codes
//! Open vSwitch sends. Unknown fields pass the framing checks and keep their bytes
//! (`Oxm::field()` is `None`): the channel answers `BAD_MATCH/BAD_FIELD` for them.

use super::error::{OfpError, bad_match};
use super::fields::{EXP, FIELDS, Field};
use super::list::{Item, List};
use super::wire::{Put, Reader, pad8};

/// ofp_match.type for OXM matches.
pub const OFPMT_OXM: u16 = 1;
/// Largest tun_metadata value.
pub const TUN_METADATA_MAX: usize = 124;

/// One OXM TLV.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Oxm<'a> {
    /// OXM class.
    pub class: u16,
    /// Field number within the class (7 bits).
    pub number: u8,
    /// Experimenter id (class 0xffff only; 0 otherwise).
    pub experimenter: u32,
    /// The value.
    pub value: &'a [u8],
    /// The mask, when the has-mask bit is set (same length as the value).
    pub mask: Option<&'a [u8]>,
}

impl<'a> Oxm<'a> {
    /// An unmasked TLV of a known field.
    pub fn new(field: Field, value: &'a [u8]) -> Self {
        let d = field.def();
        Oxm {
            class: d.class,
            number: d.number,
            experimenter: d.experimenter,
            value,
            mask: None,
        }
    }

    /// A masked TLV of a known field.
    pub fn masked(field: Field, value: &'a [u8], mask: &'a [u8]) -> Self {
        Oxm {
            mask: Some(mask),
            ..Oxm::new(field, value)
        }
    }

    /// The known field, if any.
    pub fn field(&self) -> Option<Field> {
        Field::lookup(self.class, self.number, self.experimenter)
    }

    /// The header without the value.
    pub fn id(&self) -> OxmId {
        let exp = if self.class == EXP { 4 } else { 0 };
        let n = self.value.len() * if self.mask.is_some() { 2 } else { 1 };
        let len = (exp + n).min(255) as u32;
        OxmId {
            header: (u32::from(self.class) << 16)
                | (u32::from(self.number) << 9)
                | (u32::from(self.mask.is_some()) << 8)
                | len,
            experimenter: self.experimenter,
        }
    }

    /// The value as an unsigned integer (values of up to 16 bytes; longer ones are cut to
    /// their last 16 bytes).
    pub fn value_u128(&self) -> u128 {
        be_u128(self.value)
    }

    /// The mask as an unsigned integer; all ones of the value's width when unmasked.
    pub fn mask_u128(&self) -> u128 {
        match self.mask {
            Some(m) => be_u128(m),
            None if self.value.len() >= 16 => u128::MAX,
            None => (1u128 << (8 * self.value.len())) - 1,
        }
    }

    /// Checks a known field's size, mask permission and value/mask consistency with the
    /// codes Open vSwitch sends. Unknown fields pass (their bytes are framed).
    pub fn check(&self) -> Result<(), OfpError> {
        let Some(f) = self.field() else {
            return Ok(());
        };
        let d = f.def();
        let size_ok = match d.size {
            0 => (1..=TUN_METADATA_MAX).contains(&self.value.len()),
            n => self.value.len() == usize::from(n),
        };
        if !size_ok {
            return Err(bad_match::BAD_LEN);
        }
        if let Some(m) = self.mask {
            if !d.maskable {
                return Err(bad_match::BAD_MASK);
            }
            if self.value.iter().zip(m).any(|(v, m)| v & !m != 0) {
                return Err(bad_match::BAD_WILDCARDS);
            }
        }
        Ok(())
    }
}

fn be_u128(b: &[u8]) -> u128 {
    let b = &b[b.len().saturating_sub(16)..];
    b.iter().fold(0u128, |a, &x| (a << 8) | u128::from(x))
}

impl<'a> Item<'a> for Oxm<'a> {
    const BAD_LEN: OfpError = bad_match::BAD_LEN;

    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, bad_match::BAD_LEN);
        let id = OxmId::parse(&mut r)?;
        let hdr_exp = if id.class() == EXP { 4 } else { 0 };
        let payload_len = usize::from(id.length())
            .checked_sub(hdr_exp)
            .ok_or(bad_match::BAD_LEN)?;
        let payload = r.bytes(payload_len)?;
        let (value, mask) = if id.has_mask() {
            if payload_len % 2 != 0 {
                return Err(bad_match::BAD_LEN);
            }
            let (v, m) = payload.split_at(payload_len / 2);
            (v, Some(m))
        } else {
            (payload, None)
        };
        let oxm = Oxm {
            class: id.class(),
            number: id.number(),
            experimenter: id.experimenter,
            value,
            mask,
        };
        Ok((oxm, r.pos()))
    }

    fn emit_item(&self, out: &mut Vec<u8>) {
        self.id().emit(out);
        out.extend_from_slice(self.value);
        if let Some(m) = self.mask {
            out.extend_from_slice(m);
        }
    }
}

/// A bare OXM header (with its experimenter id for class 0xffff): 4 or 8 bytes on the wire.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct OxmId {
    /// class << 16 | field << 9 | has_mask << 8 | length.
    pub header: u32,
    /// Experimenter id (class 0xffff only; 0 otherwise).
    pub experimenter: u32,
}

impl OxmId {
    /// The unmasked header of a known field.
    pub fn of(field: Field) -> Self {
        let d = field.def();
        OxmId {
            header: d.header(),
            experimenter: d.experimenter,
        }
    }

    /// The masked header of a known field.
    pub fn of_masked(field: Field) -> Self {
        let d = field.def();
        let id = Self::of(field);
        let len = (id.header & 0xff) + u32::from(d.size);
        OxmId {
            header: (id.header & !0xff) | 0x100 | (len & 0xff),
            ..id
        }
    }

    /// OXM class.
    pub fn class(&self) -> u16 {
        (self.header >> 16) as u16
    }
    /// Field number.
    pub fn number(&self) -> u8 {
        ((self.header >> 9) & 0x7f) as u8
    }
    /// Has-mask bit.
    pub fn has_mask(&self) -> bool {
        self.header & 0x100 != 0
    }
    /// Payload length (experimenter id, value and mask).
    pub fn length(&self) -> u8 {
        self.header as u8
    }
    /// The known field, if any.
    pub fn field(&self) -> Option<Field> {
        Field::lookup(self.class(), self.number(), self.experimenter)
    }
    /// Bytes on the wire: 8 for experimenter fields, else 4.
    pub fn wire_len(&self) -> usize {
        if self.class() == EXP { 8 } else { 4 }
    }

    /// Reads a header (and the experimenter id of class 0xffff).
    pub fn parse(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let header = r.u32()?;
        let experimenter = if (header >> 16) as u16 == EXP {
            r.u32()?
        } else {
            0
        };
        Ok(OxmId {
            header,
            experimenter,
        })
    }

    /// Writes the header.
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.put_u32(self.header);
        if self.class() == EXP {
            out.put_u32(self.experimenter);
        }
    }
}

impl<'a> Item<'a> for OxmId {
    const BAD_LEN: OfpError = bad_match::BAD_LEN;
    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, bad_match::BAD_LEN);
        let id = OxmId::parse(&mut r)?;
        Ok((id, r.pos()))
    }
    fn emit_item(&self, out: &mut Vec<u8>) {
        self.emit(out);
    }
}

/// Canonical index of each field: rows naming the same datapath field (NXM and OXM forms)
/// share the index of the first, so a match carrying both is a duplicate.
static CANONICAL: [u8; FIELDS.len()] = canonical();

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn canonical() -> [u8; FIELDS.len()] {
    let mut t = [0u8; FIELDS.len()];
    let mut i = 0;
    while i < FIELDS.len() {
        let mut j = 0;
        while j < i && !str_eq(FIELDS[j].name, FIELDS[i].name) {
            j += 1;
        }
        t[i] = j as u8;
        i += 1;
    }
    t
}

/// An OpenFlow 1.3 match: checked OXM fields.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct Match<'a> {
    oxms: List<'a, Oxm<'a>>,
}

impl<'a> Match<'a> {
    /// The match of everything.
    pub fn all() -> Self {
        Match::default()
    }

    /// Checks bare OXM TLVs (no ofp_match header): framing, each known field, duplicates.
    pub fn new_checked(oxm_bytes: &'a [u8]) -> Result<Self, OfpError> {
        let oxms = List::<Oxm<'a>>::new_checked(oxm_bytes)?;
        let mut seen = [0u64; 4];
        for o in oxms.iter() {
            o.check()?;
            if let Some(f) = o.field() {
                let c = usize::from(CANONICAL[f.index()]);
                let (w, b) = (c / 64, 1u64 << (c % 64));
                if seen[w] & b != 0 {
                    return Err(bad_match::DUP_FIELD);
                }
                seen[w] |= b;
            }
        }
        Ok(Match { oxms })
    }

    /// Reads an ofp_match (type, length, OXMs, padding to 8) from `r`.
    pub fn parse(r: &mut Reader<'a>) -> Result<Self, OfpError> {
        let mut h = Reader::new(
            r.bytes(4).map_err(|_| bad_match::BAD_LEN)?,
            bad_match::BAD_LEN,
        );
        let kind = h.u16()?;
        let len = usize::from(h.u16()?);
        if kind != OFPMT_OXM {
            return Err(bad_match::BAD_TYPE);
        }
        let body_len = len.checked_sub(4).ok_or(bad_match::BAD_LEN)?;
        let body = r.bytes(body_len).map_err(|_| bad_match::BAD_LEN)?;
        r.skip(pad8(len)).map_err(|_| bad_match::BAD_LEN)?;
        Match::new_checked(body)
    }

    /// The OXMs, in wire order.
    pub fn iter(&self) -> super::list::Iter<'a, Oxm<'a>> {
        self.oxms.iter()
    }

    /// The OXM of a datapath field (either of its wire forms), if present.
    pub fn get(&self, field: Field) -> Option<Oxm<'a>> {
        let c = CANONICAL[field.index()];
        self.iter()
            .find(|o| o.field().is_some_and(|f| CANONICAL[f.index()] == c))
    }

    /// The OXM bytes.
    pub fn oxm_bytes(&self) -> &'a [u8] {
        self.oxms.bytes()
    }

    /// True for the match of everything.
    pub fn is_empty(&self) -> bool {
        self.oxms.is_empty()
    }

    /// Writes the ofp_match with its padding.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(OFPMT_OXM);
        out.put_u16(0);
        self.oxms.emit(out);
        out.finish_padded(start, 2);
    }
}

/// Writes an ofp_match field by field; `finish` patches its length and pads it.
#[derive(Debug)]
pub struct MatchBuilder<'o> {
    out: &'o mut Vec<u8>,
    start: usize,
}

impl<'o> MatchBuilder<'o> {
    /// Starts a match at the end of `out`.
    pub fn new(out: &'o mut Vec<u8>) -> Self {
        let start = out.len();
        out.put_u16(OFPMT_OXM);
        out.put_u16(0);
        MatchBuilder { out, start }
    }

    /// Appends an OXM.
    pub fn oxm(&mut self, oxm: &Oxm<'_>) -> &mut Self {
        oxm.emit_item(self.out);
        self
    }

    /// Appends a known field with a raw value.
    pub fn field(&mut self, field: Field, value: &[u8]) -> &mut Self {
        self.oxm(&Oxm::new(field, value))
    }

    /// Appends a known field with a value and mask.
    pub fn field_masked(&mut self, field: Field, value: &[u8], mask: &[u8]) -> &mut Self {
        self.oxm(&Oxm::masked(field, value, mask))
    }

    /// Appends a fixed-size field from an integer (big-endian, the field's size).
    pub fn value(&mut self, field: Field, value: u128) -> &mut Self {
        let n = usize::from(field.def().size).clamp(1, 16);
        let b = value.to_be_bytes();
        self.field(field, &b[16 - n..])
    }

    /// Appends a fixed-size field with a mask, both from integers.
    pub fn value_masked(&mut self, field: Field, value: u128, mask: u128) -> &mut Self {
        let n = usize::from(field.def().size).clamp(1, 16);
        let (v, m) = (value.to_be_bytes(), mask.to_be_bytes());
        self.field_masked(field, &v[16 - n..], &m[16 - n..])
    }

    /// Patches the match length and pads to 8.
    pub fn finish(self) {
        self.out.finish_padded(self.start, 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // in_port=1, eth_type=0x0800, ipv4_dst=10.0.0.0/255.255.255.0: an ofp_match as
    // ovs-ofctl -O OpenFlow13 sends it (30 bytes + 2 padding).
    static MATCH: [u8; 32] = [
        0x00, 0x01, 0x00, 0x1e, 0x80, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01, 0x80, 0x00, 0x0a,
        0x02, 0x08, 0x00, 0x80, 0x00, 0x19, 0x08, 0x0a, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x00,
        0x00, 0x00,
    ];

    fn parse(b: &[u8]) -> Result<Match<'_>, OfpError> {
        let mut r = Reader::new(b, bad_match::BAD_LEN);
        let m = Match::parse(&mut r)?;
        assert!(r.is_empty());
        Ok(m)
    }

    #[test]
    fn read_fields() {
        let m = parse(&MATCH).expect("match");
        let v: Vec<_> = m.iter().map(|o| o.field()).collect();
        assert_eq!(
            v,
            [
                Some(Field::InPort),
                Some(Field::EthType),
                Some(Field::Ipv4Dst)
            ]
        );
        let dst = m.get(Field::Ipv4Dst).expect("ipv4_dst");
        assert_eq!(dst.value_u128(), 0x0a00_0000);
        assert_eq!(dst.mask_u128(), 0xffff_ff00);
        assert_eq!(
            m.get(Field::InPort).map(|o| o.mask_u128()),
            Some(0xffff_ffff)
        );
    }

    #[test]
    fn build_and_emit() {
        let mut out = Vec::new();
        let mut b = MatchBuilder::new(&mut out);
        b.value(Field::InPort, 1).value(Field::EthType, 0x0800);
        b.value_masked(Field::Ipv4Dst, 0x0a00_0000, 0xffff_ff00);
        b.finish();
        assert_eq!(out, MATCH);
        let mut again = Vec::new();
        parse(&MATCH).expect("match").emit(&mut again);
        assert_eq!(again, MATCH);
    }

    #[test]
    fn rejects_what_ovs_rejects() {
        let mut b = MATCH;
        b[1] = 0; // OFPMT_STANDARD
        assert_eq!(parse(&b), Err(bad_match::BAD_TYPE));
        let mut b = MATCH;
        b[25] = 1; // value bit outside the /24 mask
        assert_eq!(parse(&b), Err(bad_match::BAD_WILDCARDS));
        let mut b = MATCH;
        b[7] = 0x05; // in_port with length 5
        assert_eq!(parse(&b), Err(bad_match::BAD_LEN));
        let mut out = Vec::new();
        let mut m = MatchBuilder::new(&mut out);
        m.value_masked(Field::EthType, 0x800, 0xfff);
        m.finish();
        assert_eq!(parse(&out), Err(bad_match::BAD_MASK));
        let mut out = Vec::new();
        let mut m = MatchBuilder::new(&mut out);
        m.value(Field::EthType, 0x800)
            .value(Field::NxmEthType, 0x800);
        m.finish();
        assert_eq!(parse(&out), Err(bad_match::DUP_FIELD));
        assert_eq!(parse(&MATCH[..30]), Err(bad_match::BAD_LEN));
    }

    #[test]
    fn unknown_fields_are_framed_and_kept() {
        let mut out = Vec::new();
        let mut m = MatchBuilder::new(&mut out);
        m.oxm(&Oxm {
            class: 0x1234,
            number: 5,
            experimenter: 0,
            value: &[1, 2, 3],
            mask: None,
        });
        m.finish();
        let p = parse(&out).expect("framed");
        assert_eq!(p.iter().next().map(|o| o.field()), Some(None));
    }
}

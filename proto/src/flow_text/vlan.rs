//! The VLAN part of a match as Open vSwitch models it: one 16-bit TCI value and mask that
//! `dl_vlan`, `vlan_vid`, `dl_vlan_pcp`, `vlan_pcp` and `vlan_tci` each change, in the order
//! they are written, and the canonical API fields it is expressed with afterwards (the
//! spelling ovs-ofctl prints follows from those).
//!
//! Canonical form (what both the text parser and the API check produce):
//! - a tagged match on whole VID and/or PCP values: `VLAN_VID` = 0x1000 | VID and/or
//!   `VLAN_PCP` (printed `dl_vlan=`, `dl_vlan_pcp=`);
//! - anything else: `VLAN_TCI` with its mask (`vlan_tci=0x0000/0x1fff` is "untagged", as
//!   `dl_vlan=0xffff` and OpenFlow 1.3's `vlan_vid=0` say it).

use crate::v1::{Field, FieldMatch};

use super::scalar::be_u64;

const CFI: u16 = 0x1000;
const VID_MASK: u16 = 0x0fff;
const PCP_MASK: u16 = 0xe000;
/// OpenFlow 1.0's "no VLAN tag" `dl_vlan` value.
pub(super) const DL_VLAN_NONE: u16 = 0xffff;

/// A TCI value and mask (a set mask bit must match).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Tci {
    pub(super) value: u16,
    pub(super) mask: u16,
}

impl Tci {
    /// `dl_vlan=V`: 0xffff is "untagged" (as OpenFlow 1.3's OFPVID_NONE: no tag, so VID and
    /// CFI zero), anything else a tag with VID V & 0xfff.
    pub(super) fn set_dl_vlan(&mut self, v: u16) {
        if v == DL_VLAN_NONE {
            *self = Tci {
                value: 0,
                mask: VID_MASK | CFI,
            };
        } else {
            self.value = (self.value & !VID_MASK) | CFI | (v & VID_MASK);
            self.mask |= VID_MASK | CFI;
        }
    }

    /// `vlan_vid=V[/M]` (OpenFlow 1.2 encoding: 0x1000 | VID; the PCP part is kept).
    pub(super) fn set_vlan_vid(&mut self, v: u16, m: u16) {
        let m = m & (VID_MASK | CFI);
        self.value = (self.value & !(VID_MASK | CFI)) | (v & m);
        self.mask = m | (self.mask & PCP_MASK);
    }

    /// `dl_vlan_pcp=P` / `vlan_pcp=P`: a tag with that priority.
    pub(super) fn set_pcp(&mut self, p: u8) {
        self.value = (self.value & !PCP_MASK) | (u16::from(p & 7) << 13) | CFI;
        self.mask |= CFI | PCP_MASK;
    }

    /// `vlan_tci=V[/M]`: the whole TCI.
    pub(super) fn set_tci(&mut self, v: u16, m: u16) {
        *self = Tci {
            value: v & m,
            mask: m,
        };
    }

    /// The canonical API fields for this TCI match (none when it matches anything).
    pub(super) fn fields(self) -> Vec<FieldMatch> {
        let fm = |field: Field, value: Vec<u8>, mask: Vec<u8>| FieldMatch {
            field: field as i32,
            value,
            mask,
            port_name: String::new(),
        };
        let Tci { value, mask } = self;
        let vid_mask = mask & VID_MASK;
        let pcp_mask = mask & PCP_MASK;
        let whole = |m: u16, all: u16| m == 0 || m == all;
        if mask & CFI != 0
            && value & CFI != 0
            && whole(vid_mask, VID_MASK)
            && whole(pcp_mask, PCP_MASK)
            && (vid_mask | pcp_mask) != 0
        {
            let mut out = Vec::new();
            if vid_mask != 0 {
                let vid = CFI | (value & VID_MASK);
                out.push(fm(Field::VlanVid, vid.to_be_bytes().to_vec(), Vec::new()));
            }
            if pcp_mask != 0 {
                out.push(fm(Field::VlanPcp, vec![(value >> 13) as u8], Vec::new()));
            }
            return out;
        }
        if mask == 0 {
            return Vec::new();
        }
        let m = if mask == 0xffff {
            Vec::new()
        } else {
            mask.to_be_bytes().to_vec()
        };
        vec![fm(Field::VlanTci, (value & mask).to_be_bytes().to_vec(), m)]
    }

    /// The TCI match that canonical or API `VLAN_VID` / `VLAN_PCP` / `VLAN_TCI` fields
    /// describe (values and masks of the right widths; `VLAN_VID` 0 exact is "untagged").
    pub(super) fn of_fields<'a>(fields: impl IntoIterator<Item = &'a FieldMatch>) -> Tci {
        let mut t = Tci::default();
        let mask_of = |fm: &FieldMatch, all: u16| {
            if fm.mask.is_empty() {
                all
            } else {
                be_u64(&fm.mask) as u16
            }
        };
        for fm in fields {
            let v = be_u64(&fm.value) as u16;
            match Field::try_from(fm.field) {
                Ok(Field::VlanVid) => t.set_vlan_vid(v, mask_of(fm, VID_MASK | CFI)),
                Ok(Field::VlanPcp) => t.set_pcp(v as u8),
                Ok(Field::VlanTci) => t.set_tci(v, mask_of(fm, 0xffff)),
                _ => {}
            }
        }
        t
    }
}

/// Whether a field is one of the three the TCI match is expressed with.
pub(super) fn is_vlan_field(field: i32) -> bool {
    field == Field::VlanVid as i32
        || field == Field::VlanPcp as i32
        || field == Field::VlanTci as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: Tci) -> Vec<(i32, u64, u64)> {
        t.fields()
            .iter()
            .map(|f| (f.field, be_u64(&f.value), be_u64(&f.mask)))
            .collect()
    }

    #[test]
    fn open_vswitch_combinations() {
        let vid = Field::VlanVid as i32;
        let pcp = Field::VlanPcp as i32;
        let tci = Field::VlanTci as i32;
        // dl_vlan=65535,dl_vlan_pcp=0: a tag with VID 0 and PCP 0, as Open vSwitch reads it.
        let mut t = Tci::default();
        t.set_dl_vlan(0xffff);
        t.set_pcp(0);
        assert_eq!(text(t), [(vid, 0x1000, 0), (pcp, 0, 0)]);
        // dl_vlan=8191 keeps the low 12 bits.
        let mut t = Tci::default();
        t.set_dl_vlan(8191);
        assert_eq!(text(t), [(vid, 0x1fff, 0)]);
        // dl_vlan=0xffff alone: untagged, printed as OpenFlow 1.3's vlan_vid=0 prints.
        let mut t = Tci::default();
        t.set_dl_vlan(0xffff);
        assert_eq!(text(t), [(tci, 0, 0x1fff)]);
        // vlan_vid=0x1000/0x1000: any tag.
        let mut t = Tci::default();
        t.set_vlan_vid(0x1000, 0x1000);
        assert_eq!(text(t), [(tci, 0x1000, 0x1000)]);
        // The canonical fields read back to the same TCI.
        for t in [
            Tci {
                value: 0x1005,
                mask: 0x1fff,
            },
            Tci {
                value: 0x000b,
                mask: 0x1fff,
            },
            Tci {
                value: 0x2000 | 0x1000,
                mask: 0xf000,
            },
            Tci {
                value: 0,
                mask: 0xffff,
            },
        ] {
            assert_eq!(Tci::of_fields(&t.fields()), t, "{t:?}");
        }
    }
}

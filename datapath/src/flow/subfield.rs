//! Subfields: a bit range of a key field (Open vSwitch's `NXM_NX_REG0[0..15]`), what the
//! Nicira actions (`move`, `push`, `pop`, `output:REG`, `multipath`) read and write.
//!
//! Thread-safety: plain `Copy` data.

use super::key::{Field, FlowKey};

/// `bits` bits starting at bit `shift` (from the least significant) of `field`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Subfield {
    /// The field.
    pub field: Field,
    /// First bit.
    pub shift: u32,
    /// Width in bits, 1..=128; `shift + bits` is at most the field's width.
    pub bits: u32,
}

const fn ones(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

impl Subfield {
    /// A subfield, or `None` when the range is empty or not inside the field.
    pub fn new(field: Field, shift: u32, bits: u32) -> Option<Subfield> {
        (bits >= 1 && shift.checked_add(bits)? <= field.bits()).then_some(Subfield {
            field,
            shift,
            bits,
        })
    }

    /// The subfield's bits in field units.
    pub const fn mask(self) -> u128 {
        ones(self.bits) << self.shift
    }

    /// The value of the bits (right-aligned).
    #[inline]
    pub fn read(self, key: &FlowKey) -> u128 {
        (key.get(self.field) >> self.shift) & ones(self.bits)
    }

    /// Writes the low `bits` bits of `v` into the range, leaving the field's other bits.
    #[inline]
    pub fn write(self, key: &mut FlowKey, v: u128) {
        key.set_masked(self.field, (v & ones(self.bits)) << self.shift, self.mask());
    }

    /// Sets the range's bits in a mask (the caller consulted them).
    pub fn unwildcard(self, mask: &mut FlowKey) {
        let old = mask.get(self.field);
        mask.set(self.field, old | self.mask());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn read_and_write_touch_only_the_range() {
        let mut k = FlowKey::ZERO;
        k.set(Field::Reg(1), 0xffff_ffff);
        let s = Subfield::new(Field::Reg(1), 4, 8).unwrap();
        assert_eq!(s.read(&k), 0xff);
        s.write(&mut k, 0x1a5);
        assert_eq!(k.get(Field::Reg(1)), 0xffff_fa5f);
        assert_eq!(k.get(Field::Reg(0)), 0);
        assert!(Subfield::new(Field::Reg(1), 30, 3).is_none());
        assert!(Subfield::new(Field::Reg(1), 0, 0).is_none());
        let wide = Subfield::new(Field::Xxreg(1), 0, 128).unwrap();
        wide.write(&mut k, u128::MAX);
        assert_eq!(k.get(Field::Reg(7)), 0xffff_ffff);
        let mut m = FlowKey::ZERO;
        s.unwildcard(&mut m);
        assert_eq!(m.get(Field::Reg(1)), 0xff0);
    }
}

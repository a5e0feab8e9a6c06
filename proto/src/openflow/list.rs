//! Checked lists of variable-length items: actions, instructions, OXM fields, buckets,
//! bands, properties, multipart entries.
//!
//! A [`List`] is built only by [`List::new_checked`], which parses every item once; after
//! that its iterator cannot meet an error and yields items directly. `emit` re-encodes
//! item by item (not a byte copy), so a parse/emit round trip exercises both directions.

use super::error::{OfpError, bad_property};
use super::wire::{Put, Reader};
use std::marker::PhantomData;

/// One element of a [`List`].
pub trait Item<'a>: Sized {
    /// The error for a list whose items do not tile it exactly.
    const BAD_LEN: OfpError;
    /// Parses the item at the start of `buf`; returns it and the bytes it spans (> 0).
    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError>;
    /// Appends the item's encoding (with its padding).
    fn emit_item(&self, out: &mut Vec<u8>);
}

/// A validated sequence of `T` over borrowed bytes.
pub struct List<'a, T> {
    bytes: &'a [u8],
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for List<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for List<'_, T> {}

impl<T> PartialEq for List<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl<T> Eq for List<'_, T> {}

impl<'a, T: Item<'a> + std::fmt::Debug> std::fmt::Debug for List<'a, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T> Default for List<'_, T> {
    fn default() -> Self {
        List {
            bytes: &[],
            _t: PhantomData,
        }
    }
}

impl<'a, T: Item<'a>> List<'a, T> {
    /// Parses every item of `bytes`; fails on the first bad one.
    pub fn new_checked(bytes: &'a [u8]) -> Result<Self, OfpError> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let (_, n) = T::parse_item(rest)?;
            rest = rest.get(n..).filter(|_| n > 0).ok_or(T::BAD_LEN)?;
        }
        Ok(List {
            bytes,
            _t: PhantomData,
        })
    }

    /// The list's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// True when the list has no item.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The items.
    pub fn iter(&self) -> Iter<'a, T> {
        Iter {
            rest: self.bytes,
            _t: PhantomData,
        }
    }

    /// Number of items (walks the list).
    pub fn count(&self) -> usize {
        self.iter().count()
    }

    /// Re-encodes every item into `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        for item in self.iter() {
            item.emit_item(out);
        }
    }
}

/// Iterator over a checked [`List`].
#[derive(Debug, Clone)]
pub struct Iter<'a, T> {
    rest: &'a [u8],
    _t: PhantomData<fn() -> T>,
}

impl<'a, T: Item<'a>> Iterator for Iter<'a, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.rest.is_empty() {
            return None;
        }
        // The list was checked when built: parsing cannot fail here. Should it, the
        // iterator ends rather than panicking.
        let (item, n) = T::parse_item(self.rest).ok()?;
        self.rest = self.rest.get(n..)?;
        Some(item)
    }
}

impl<'a, T: Item<'a>> IntoIterator for List<'a, T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// A generic property TLV (type, length excluding padding, value, padding to 8).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Prop<'a> {
    /// Property type.
    pub kind: u16,
    /// Property value.
    pub value: &'a [u8],
}

impl<'a> Item<'a> for Prop<'a> {
    const BAD_LEN: OfpError = bad_property::BAD_LEN;
    fn parse_item(buf: &'a [u8]) -> Result<(Self, usize), OfpError> {
        let mut r = Reader::new(buf, bad_property::BAD_LEN);
        let kind = r.u16()?;
        let len = usize::from(r.u16()?);
        let value = r.bytes(len.checked_sub(4).ok_or(bad_property::BAD_LEN)?)?;
        let padded = len.div_ceil(8) * 8;
        if padded > buf.len() {
            return Err(bad_property::BAD_LEN);
        }
        Ok((Prop { kind, value }, padded))
    }
    fn emit_item(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(self.kind);
        out.put_u16(0);
        out.extend_from_slice(self.value);
        out.finish_padded(start, 2);
    }
}

/// Emits each of `items` into a fresh buffer (for building a [`List`] from values).
pub fn encode<'a, T: Item<'a>>(items: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in items {
        i.emit_item(&mut out);
    }
    out
}

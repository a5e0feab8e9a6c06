//! Bounds-checked big-endian reading and writing shared by every OpenFlow structure.
//!
//! A [`Reader`] walks a borrowed byte slice and fails with the error its owner chose (the
//! `BAD_LEN` of the structure being read), so a short buffer is a clean error, never a panic.
//! [`Put`] extends `Vec<u8>` with big-endian writers and length back-patching; every builder
//! writes a placeholder length, its body, then patches the length and pads.

use super::error::OfpError;

/// A cursor over untrusted bytes. Every read is bounds-checked and fails with `short`.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    short: OfpError,
}

impl<'a> Reader<'a> {
    /// A reader over `buf` whose reads past the end fail with `short`.
    pub fn new(buf: &'a [u8], short: OfpError) -> Self {
        Reader { buf, pos: 0, short }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes read so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// True when everything has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], OfpError> {
        let end = self.pos.checked_add(n).ok_or(self.short)?;
        let b = self.buf.get(self.pos..end).ok_or(self.short)?;
        self.pos = end;
        Ok(b)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], OfpError> {
        let b = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    /// Skips `n` bytes (padding).
    pub fn skip(&mut self, n: usize) -> Result<(), OfpError> {
        self.bytes(n).map(|_| ())
    }

    /// Everything not read yet; the reader is then empty.
    pub fn rest(&mut self) -> &'a [u8] {
        let b = &self.buf[self.pos..];
        self.pos = self.buf.len();
        b
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, OfpError> {
        Ok(self.array::<1>()?[0])
    }

    /// A big-endian u16.
    pub fn u16(&mut self) -> Result<u16, OfpError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A big-endian u32.
    pub fn u32(&mut self) -> Result<u32, OfpError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian u64.
    pub fn u64(&mut self) -> Result<u64, OfpError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
}

/// Big-endian writers on `Vec<u8>`.
pub trait Put {
    /// Appends one byte.
    fn put_u8(&mut self, v: u8);
    /// Appends a big-endian u16.
    fn put_u16(&mut self, v: u16);
    /// Appends a big-endian u32.
    fn put_u32(&mut self, v: u32);
    /// Appends a big-endian u64.
    fn put_u64(&mut self, v: u64);
    /// Appends `n` zero bytes.
    fn put_zeros(&mut self, n: usize);
    /// Overwrites the big-endian u16 at `at` (a length placeholder written earlier).
    fn patch_u16(&mut self, at: usize, v: u16);
    /// Patches the u16 length at `start + len_at` with the size written since `start`,
    /// then pads with zeros to a multiple of 8 from `start` (the length excludes padding).
    fn finish_padded(&mut self, start: usize, len_at: usize);
    /// Pads with zeros to a multiple of 8 from `start`, then patches the u16 length at
    /// `start + len_at` with the padded size (actions, instructions, buckets: the length
    /// includes the padding).
    fn finish_aligned(&mut self, start: usize, len_at: usize);
    /// Patches the u16 length at `start + len_at` with the size written since `start`.
    fn finish_len(&mut self, start: usize, len_at: usize);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_zeros(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }
    fn patch_u16(&mut self, at: usize, v: u16) {
        if let Some(s) = self.get_mut(at..at + 2) {
            s.copy_from_slice(&v.to_be_bytes());
        }
    }
    fn finish_padded(&mut self, start: usize, len_at: usize) {
        self.finish_len(start, len_at);
        let pad = pad8(self.len() - start);
        self.put_zeros(pad);
    }
    fn finish_aligned(&mut self, start: usize, len_at: usize) {
        let pad = pad8(self.len() - start);
        self.put_zeros(pad);
        self.finish_len(start, len_at);
    }
    fn finish_len(&mut self, start: usize, len_at: usize) {
        let len = u16::try_from(self.len() - start).unwrap_or(u16::MAX);
        self.patch_u16(start + len_at, len);
    }
}

/// Zero bytes that pad `len` up to a multiple of 8.
pub const fn pad8(len: usize) -> usize {
    (8 - len % 8) % 8
}

/// A fixed-size string field (port names, descriptions): the bytes up to the first NUL.
pub fn c_str(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// Writes `s` into a fixed field of `n` bytes, NUL-padded; longer input is cut to `n - 1`
/// bytes so the field stays NUL-terminated, as OpenFlow requires.
pub fn put_c_str(out: &mut Vec<u8>, s: &[u8], n: usize) {
    let take = s.len().min(n.saturating_sub(1));
    out.extend_from_slice(&s[..take]);
    out.put_zeros(n - take);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::error::bad_request;

    #[test]
    fn reader_fails_cleanly_past_the_end() {
        let mut r = Reader::new(&[1, 2, 3], bad_request::BAD_LEN);
        assert_eq!(r.u16(), Ok(0x0102));
        assert_eq!(r.u16(), Err(bad_request::BAD_LEN));
        assert_eq!(r.u8(), Ok(3));
        assert!(r.is_empty());
        assert_eq!(r.bytes(usize::MAX), Err(bad_request::BAD_LEN));
    }

    #[test]
    fn finish_padded_patches_and_pads() {
        let mut v = vec![0xaa];
        v.put_u16(0);
        v.put_u8(7);
        v.finish_padded(1, 0);
        assert_eq!(v, [0xaa, 0, 3, 7, 0, 0, 0, 0, 0]);
        assert_eq!(pad8(8), 0);
        assert_eq!(pad8(9), 7);
    }

    #[test]
    fn c_strings() {
        assert_eq!(c_str(b"eth0\0\0"), b"eth0");
        let mut v = Vec::new();
        put_c_str(&mut v, b"abcdef", 4);
        assert_eq!(v, b"abc\0");
    }
}

//! Numbers, Ethernet and IP addresses: read from tokens, written as text, and the
//! big-endian byte strings the API carries them in.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::lexer::{Result, Tok};

/// A decimal or `0x`-prefixed hexadecimal number.
pub(super) fn parse_u64(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()
    } else {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }
}

/// A number no larger than `max`; `what` names it in the error.
pub(super) fn num(tok: Tok<'_>, max: u64, what: &str) -> Result<u64> {
    match parse_u64(tok.text) {
        Some(v) if v <= max => Ok(v),
        Some(_) => Err(tok.err(format!("{what} must be at most {max} (0x{max:x})"))),
        None => Err(tok.err(format!(
            "{what}: expected a decimal or 0x-prefixed hexadecimal number"
        ))),
    }
}

pub(super) fn num_u32(tok: Tok<'_>, max: u32, what: &str) -> Result<u32> {
    num(tok, u64::from(max), what).map(|v| v as u32)
}

pub(super) fn parse_mac(tok: Tok<'_>) -> Result<[u8; 6]> {
    const EXPECTED: &str = "bad Ethernet address: expected six hex bytes like 02:00:00:00:00:01";
    let mut out = [0u8; 6];
    let mut n = 0usize;
    for part in tok.text.split(':') {
        let slot = out.get_mut(n).ok_or_else(|| tok.err(EXPECTED))?;
        if part.is_empty() || part.len() > 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(tok.err(EXPECTED));
        }
        *slot = u8::from_str_radix(part, 16).map_err(|_| tok.err("bad Ethernet address"))?;
        n += 1;
    }
    if n != 6 {
        return Err(tok.err(EXPECTED));
    }
    Ok(out)
}

pub(super) fn parse_ipv4(tok: Tok<'_>) -> Result<Ipv4Addr> {
    tok.text
        .parse::<Ipv4Addr>()
        .map_err(|_| tok.err("bad IPv4 address: expected dotted quad like 10.0.0.1"))
}

pub(super) fn parse_ipv6(tok: Tok<'_>) -> Result<Ipv6Addr> {
    tok.text
        .parse::<Ipv6Addr>()
        .map_err(|_| tok.err("bad IPv6 address: expected e.g. 2001:db8::1"))
}

/// The mask of a `prefix`-bit CIDR prefix over `bits` bits, as bytes.
pub(super) fn prefix_mask(bits: usize, prefix: usize) -> Vec<u8> {
    (0..bits / 8)
        .map(|i| {
            let lo = i * 8;
            if prefix >= lo + 8 {
                0xff
            } else if prefix <= lo {
                0
            } else {
                0xffu8 << (8 - (prefix - lo))
            }
        })
        .collect()
}

/// The prefix length if `mask` is a CIDR mask.
pub(super) fn mask_prefix(mask: &[u8]) -> Option<usize> {
    let ones: usize = mask.iter().map(|b| b.count_ones() as usize).sum();
    (prefix_mask(mask.len() * 8, ones) == mask).then_some(ones)
}

/// The low `width` bytes of `v`, big-endian.
pub(super) fn be_bytes(v: u64, width: usize) -> Vec<u8> {
    let all = v.to_be_bytes();
    all.get(8usize.saturating_sub(width)..)
        .unwrap_or(&all)
        .to_vec()
}

/// A big-endian byte string as a number (the last 8 bytes count).
pub(super) fn be_u64(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x))
}

pub(super) fn hex_bytes(b: &[u8]) -> String {
    let mut s = String::from("0x");
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

pub(super) fn mac_text(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A number in decimal, or in hexadecimal as C's `%#x` prints it (`0` for zero).
pub(super) fn int_text(v: u64, hex: bool) -> String {
    if hex && v != 0 {
        format!("0x{v:x}")
    } else {
        v.to_string()
    }
}

/// A decimal or `0x`-prefixed hexadecimal number of up to 128 bits (the `xxreg` fields).
pub(super) fn parse_u128(s: &str) -> Option<u128> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(hex, 16).ok()
    } else {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }
}

/// A big-endian byte string of up to 16 bytes as a number.
pub(super) fn be_u128(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |acc, x| (acc << 8) | u128::from(*x))
}

/// A 128-bit number as C's `%#x` prints it (`0` for zero).
pub(super) fn c_hex128(v: u128) -> String {
    if v == 0 {
        "0".to_string()
    } else {
        format!("0x{v:x}")
    }
}

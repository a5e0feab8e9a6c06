//! IP fragment reassembly before tracking, as Open vSwitch's `ipf`.
//!
//! What: a fragment is taken from its batch and held with the others of its datagram
//! (same addresses, identification, protocol for IPv4, zone). When the first and last
//! fragments are in and the pieces cover the datagram without a gap, it is reassembled
//! into a scratch frame, which the tracker tracks as one packet; then every fragment gets
//! that packet's metadata, the translated addresses (NAT) and, for the first, the
//! translated transport header, and all of them are released in offset order. Refused and
//! `+inv` (left in the batch): fragments that overlap one already held (any overlap: a
//! retransmitted copy too, as OVS refuses duplicates), non-last fragments smaller than the
//! minimum size (1200 bytes over IPv4, 1280 over IPv6, OVS's defaults: tiny-fragment
//! attacks), malformed ones (a length not a multiple of 8 before the last, a datagram past
//! 65,535 bytes, more than `max_per_datagram` pieces, two different ends), and any fragment
//! while the reassembler already holds `max_frags` (1000). Held fragments whose datagram is
//! not complete after `timeout_ms` (15 s) are dropped and counted.
//!
//! Memory is bounded: at most `max_frags` held buffers (2 KiB each) and one scratch frame
//! of at most 64 KiB, allocated when the reassembler is made.
//!
//! Thread-safety: one `Reassembler` behind the tracker's mutex (fragments are rare; OVS
//! also takes one lock for them).

use std::collections::HashMap;

use crate::packet::{PacketBuf, be16, be32, be128, checksum};

use super::counters::{CtInvalid, SharedCounters};
use super::tuple::l3_of;

/// Reassembly settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragConfig {
    /// Reassemble IPv4 fragments (else they are `+inv`).
    pub enabled_v4: bool,
    /// Reassemble IPv6 fragments.
    pub enabled_v6: bool,
    /// Fragments held at once, all datagrams together.
    pub max_frags: usize,
    /// Fragments one datagram may have.
    pub max_per_datagram: usize,
    /// Smallest IPv4 fragment (IP header included) accepted before the last.
    pub min_v4_size: u16,
    /// Smallest IPv6 fragment accepted before the last.
    pub min_v6_size: u16,
    /// How long an incomplete datagram's fragments are held.
    pub timeout_ms: u64,
}

impl Default for FragConfig {
    fn default() -> FragConfig {
        FragConfig {
            enabled_v4: true,
            enabled_v6: true,
            max_frags: 1000,
            max_per_datagram: 64,
            min_v4_size: 1200,
            min_v6_size: 1280,
            timeout_ms: 15_000,
        }
    }
}

/// Largest IP datagram.
const MAX_DATAGRAM: usize = 65_535;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    src: u128,
    dst: u128,
    id: u32,
    proto: u8,
    v6: bool,
    zone: u16,
}

/// A held fragment: where its IP header and its data are, and which bytes of the
/// datagram's payload it carries (`start..end`).
#[derive(Debug)]
struct Frag {
    buf: PacketBuf,
    l3: usize,
    data: usize,
    start: usize,
    end: usize,
}

#[derive(Debug)]
struct List {
    frags: Vec<Frag>,
    expires_ms: u64,
    /// The payload length, once the last fragment is in.
    total: Option<usize>,
}

/// What [`Reassembler::add`] did with a fragment.
#[derive(Debug)]
pub(crate) enum Add {
    /// Held until its datagram completes or times out.
    Held,
    /// Not taken: the fragment is `+inv` for this reason.
    Refused(PacketBuf, CtInvalid),
    /// It completed its datagram: reassembled into the scratch frame.
    Complete(Done),
}

/// A completed datagram's fragments, waiting for the tracker's verdict.
#[derive(Debug)]
pub(crate) struct Done {
    frags: Vec<Frag>,
    v6: bool,
    /// Where the payload starts in the reassembled frame.
    whole_data: usize,
}

/// One fragment as parsed: its key, offsets and flags.
struct Parsed {
    key: Key,
    data: usize,
    start: usize,
    end: usize,
    last: bool,
}

/// The reassembler.
#[derive(Debug)]
pub(crate) struct Reassembler {
    cfg: FragConfig,
    lists: HashMap<Key, List>,
    held: usize,
    scratch: Vec<u8>,
}

impl Reassembler {
    pub(crate) fn new(cfg: FragConfig) -> Reassembler {
        Reassembler {
            cfg,
            lists: HashMap::new(),
            held: 0,
            scratch: Vec::with_capacity(MAX_DATAGRAM + 64),
        }
    }

    pub(crate) fn set_config(&mut self, cfg: FragConfig) {
        self.cfg = cfg;
    }

    /// Fragments held now.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// The reassembled frame of the last [`Add::Complete`] (give it back after use).
    pub(crate) fn take_scratch(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.scratch)
    }

    /// Returns the scratch frame for reuse.
    pub(crate) fn give_scratch(&mut self, v: Vec<u8>) {
        self.scratch = v;
    }

    /// Takes fragment `buf` (IP header at `l3`) of zone `zone`.
    pub(crate) fn add(
        &mut self,
        buf: PacketBuf,
        l3: usize,
        v6: bool,
        zone: u16,
        now_ms: u64,
        sc: &SharedCounters,
    ) -> Add {
        if !(if v6 {
            self.cfg.enabled_v6
        } else {
            self.cfg.enabled_v4
        }) {
            return Add::Refused(buf, CtInvalid::Fragment);
        }
        let p = match parse(buf.data(), l3, v6, zone, &self.cfg) {
            Ok(p) => p,
            Err(why) => return Add::Refused(buf, why),
        };
        if self.held >= self.cfg.max_frags {
            SharedCounters::add(&sc.frag_table_full, 1);
            return Add::Refused(buf, CtInvalid::Fragment);
        }
        let max_per = self.cfg.max_per_datagram;
        let timeout = self.cfg.timeout_ms;
        let list = self.lists.entry(p.key).or_insert_with(|| List {
            frags: Vec::with_capacity(4),
            expires_ms: now_ms + timeout,
            total: None,
        });
        if list.frags.len() >= max_per {
            return Add::Refused(buf, CtInvalid::FragMalformed);
        }
        if list
            .frags
            .iter()
            .any(|f| f.start < p.end && p.start < f.end)
        {
            return Add::Refused(buf, CtInvalid::FragOverlap);
        }
        let beyond = |total: usize| list.frags.iter().any(|f| f.end > total);
        if p.last {
            if list.total.is_some() || beyond(p.end) {
                return Add::Refused(buf, CtInvalid::FragMalformed);
            }
            list.total = Some(p.end);
        } else if list.total.is_some_and(|t| p.end > t) {
            return Add::Refused(buf, CtInvalid::FragMalformed);
        }
        let at = list.frags.partition_point(|f| f.start < p.start);
        list.frags.insert(
            at,
            Frag {
                buf,
                l3,
                data: p.data,
                start: p.start,
                end: p.end,
            },
        );
        self.held += 1;
        SharedCounters::add(&sc.frag_accepted, 1);
        let complete = list.total.is_some_and(|total| {
            let mut next = 0;
            list.frags.iter().all(|f| {
                let ok = f.start == next;
                next = f.end;
                ok
            }) && next == total
        });
        if !complete {
            return Add::Held;
        }
        let Some(list) = self.lists.remove(&p.key) else {
            return Add::Held;
        };
        self.held -= list.frags.len();
        SharedCounters::add(&sc.frag_reassembled, 1);
        let whole_data = self.reassemble(&list.frags, v6);
        Add::Complete(Done {
            frags: list.frags,
            v6,
            whole_data,
        })
    }

    /// Builds the datagram of `frags` (sorted, contiguous, first at 0) in the scratch frame;
    /// returns where its payload starts.
    fn reassemble(&mut self, frags: &[Frag], v6: bool) -> usize {
        let s = &mut self.scratch;
        s.clear();
        let f0 = &frags[0];
        let b0 = f0.buf.data();
        let l3 = f0.l3;
        let data_at;
        if !v6 {
            s.extend_from_slice(&b0[..f0.data]);
            data_at = f0.data;
        } else {
            // Drop the fragment header: copy what precedes it, and make the header before
            // it name what follows it.
            let fh = f0.data - 8;
            s.extend_from_slice(&b0[..fh]);
            let (mut nh_at, mut p) = (l3 + 6, l3 + 40);
            while p < fh {
                nh_at = p;
                p += ext_len(b0, p);
            }
            s[nh_at] = b0[fh];
            data_at = fh;
        }
        for f in frags {
            let b = f.buf.data();
            s.extend_from_slice(&b[f.data..f.data + (f.end - f.start)]);
        }
        let len = s.len() - l3;
        if !v6 {
            s[l3 + 2..l3 + 4].copy_from_slice(&(len as u16).to_be_bytes());
            let flags = be16(s, l3 + 6) & 0x4000;
            s[l3 + 6..l3 + 8].copy_from_slice(&flags.to_be_bytes());
            s[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
            let ihl = (s[l3] & 0x0f) as usize * 4;
            let c = checksum::data(&s[l3..l3 + ihl]);
            s[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        } else {
            s[l3 + 4..l3 + 6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
        }
        data_at
    }

    /// Drops the fragments of datagrams not completed by `now_ms`.
    pub(crate) fn expire(&mut self, now_ms: u64, sc: &SharedCounters) {
        let mut dropped = 0;
        self.lists.retain(|_, l| {
            let keep = l.expires_ms > now_ms;
            if !keep {
                dropped += l.frags.len();
            }
            keep
        });
        self.held -= dropped;
        SharedCounters::add(&sc.frag_expired, dropped as u64);
    }
}

impl Done {
    /// Carries what tracking changed in the reassembled frame `whole` (NAT: addresses, and
    /// the transport header in the first fragment) back into the fragments.
    pub(crate) fn propagate(&mut self, whole: &[u8]) {
        let Some(wl3) = l3_of(whole).map(|x| x.0) else {
            return;
        };
        for f in self.frags.iter_mut() {
            let l3 = f.l3;
            let b = f.buf.data_mut();
            if self.v6 {
                b[l3 + 8..l3 + 40].copy_from_slice(&whole[wl3 + 8..wl3 + 40]);
            } else {
                let mut c = be16(b, l3 + 10);
                c = checksum::update(c, &b[l3 + 12..l3 + 20], &whole[wl3 + 12..wl3 + 20]);
                b[l3 + 12..l3 + 20].copy_from_slice(&whole[wl3 + 12..wl3 + 20]);
                b[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
            }
            if f.start == 0 {
                let n = f.end;
                if self.whole_data + n <= whole.len() && f.data + n <= b.len() {
                    b[f.data..f.data + n]
                        .copy_from_slice(&whole[self.whole_data..self.whole_data + n]);
                }
            }
        }
    }

    /// The fragments, in offset order.
    pub(crate) fn into_bufs(self) -> impl Iterator<Item = PacketBuf> {
        self.frags.into_iter().map(|f| f.buf)
    }
}

/// Length of the IPv6 extension header at `p` (hop-by-hop, routing or destination options:
/// the only ones `parse` lets precede a fragment header, so the bytes are there).
fn ext_len(b: &[u8], p: usize) -> usize {
    (b[p + 1] as usize + 1) * 8
}

fn parse(f: &[u8], l3: usize, v6: bool, zone: u16, cfg: &FragConfig) -> Result<Parsed, CtInvalid> {
    use CtInvalid as I;
    if !v6 {
        if f.len() < l3 + 20 {
            return Err(I::FragMalformed);
        }
        let ihl = (f[l3] & 0x0f) as usize * 4;
        let total = be16(f, l3 + 2) as usize;
        if ihl < 20 || total < ihl || l3 + total > f.len() {
            return Err(I::FragMalformed);
        }
        if checksum::data(&f[l3..l3 + ihl]) != 0 {
            return Err(I::BadIpChecksum);
        }
        let fo = be16(f, l3 + 6);
        let last = fo & 0x2000 == 0;
        let start = (fo & 0x1fff) as usize * 8;
        let len = total - ihl;
        let end = start + len;
        if len == 0 || (!last && !len.is_multiple_of(8)) || ihl + end > MAX_DATAGRAM {
            return Err(I::FragMalformed);
        }
        if !last && total < cfg.min_v4_size as usize {
            return Err(I::FragTooSmall);
        }
        return Ok(Parsed {
            key: Key {
                src: be32(f, l3 + 12) as u128,
                dst: be32(f, l3 + 16) as u128,
                id: be16(f, l3 + 4) as u32,
                proto: f[l3 + 9],
                v6,
                zone,
            },
            data: l3 + ihl,
            start,
            end,
            last,
        });
    }
    if f.len() < l3 + 40 {
        return Err(I::FragMalformed);
    }
    let end_ip = l3 + 40 + be16(f, l3 + 4) as usize;
    if end_ip > f.len() {
        return Err(I::FragMalformed);
    }
    // Walk to the fragment header, over hop-by-hop, routing and destination options only
    // (what may precede it).
    let (mut next, mut p) = (f[l3 + 6], l3 + 40);
    for _ in 0..8 {
        match next {
            0 | 43 | 60 if p + 8 <= end_ip => {
                next = f[p];
                p += (f[p + 1] as usize + 1) * 8;
            }
            44 if p + 8 <= end_ip => break,
            _ => return Err(I::FragMalformed),
        }
    }
    if next != 44 || p + 8 > end_ip {
        return Err(I::FragMalformed);
    }
    let fo = be16(f, p + 2);
    let last = fo & 1 == 0;
    let start = (fo & 0xfff8) as usize;
    let data = p + 8;
    let len = end_ip - data;
    let end = start + len;
    let hdr = data - l3;
    if len == 0 || (!last && !len.is_multiple_of(8)) || (hdr - 48) + end > MAX_DATAGRAM {
        return Err(I::FragMalformed);
    }
    if !last && end_ip - l3 < cfg.min_v6_size as usize {
        return Err(I::FragTooSmall);
    }
    Ok(Parsed {
        key: Key {
            src: be128(f, l3 + 8),
            dst: be128(f, l3 + 24),
            id: be32(f, p + 4),
            proto: 0,
            v6,
            zone,
        },
        data,
        start,
        end,
        last,
    })
}

#[cfg(test)]
#[path = "frag_tests.rs"]
mod tests;

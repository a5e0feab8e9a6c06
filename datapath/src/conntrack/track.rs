//! Tracking packets: `Conntrack::execute` and what it does per packet.
//!
//! What: per packet, as Open vSwitch's `process_one`: entering another zone forgets the
//! previous state; the tuple is read ([`super::tuple::parse`]); a packet already translated
//! in this zone is looked up by its reverse (it no longer carries the original tuple);
//! `force` ends a connection found in the reply direction; a connection found is updated by
//! its protocol (TCP window tracking, UDP and ICMP first/reply states) or, for an ICMP error,
//! only marked `+rel`; otherwise a packet that may start one is `+new` and, with `commit`,
//! creates it (zone limit, table maximum with eviction, NAT). NAT rewrites the packet when
//! the action asks for it and the packet is not translated in this zone already. Mark and
//! label writes go to the connection and the packet's metadata.
//!
//! Thread-safety: runs on a poll thread with its `CtThread`; see the module documentation
//! of `conntrack` for the locking.

use std::sync::atomic::Ordering;

use crate::packet::{PacketBuf, ip_proto};

use super::frag::Add;
use super::nat::{self, Nat};
use super::slot::{State, flag};
use super::table::{Found, shard_of};
use super::tcp::{Tcp, TcpTimeout, Update, valid_new};
use super::tuple::{self, Parsed, Tuple, Unparsed};
use super::{Conntrack, CtAction, CtInvalid, CtMeta, CtRefusal, CtState, CtThread, Tm};

/// UDP and other protocols' states, as OVS's `other_state`.
const OTHER_FIRST: u8 = 0;
const OTHER_MULTIPLE: u8 = 1;
const OTHER_BIDIR: u8 = 2;
/// ICMP states.
const ICMP_FIRST: u8 = 0;
const ICMP_REPLY: u8 = 1;

/// How a found connection took the packet.
enum Verdict {
    Est,
    New,
    Invalid(CtInvalid),
    Reopen,
}

/// What creating a connection came to.
enum Created {
    Ok(Found),
    /// Another thread created the same connection first: look it up again.
    Race,
    Refused(CtRefusal),
}

impl Conntrack {
    /// Runs `act` over packets `members` of `pkts` (indices into `pkts` and `meta`), at
    /// time `now_ms` (milliseconds, any monotonic origin). Each packet's `meta` is its
    /// connection-tracking metadata before (`ct_state` and zone from an earlier `ct`, which
    /// NAT needs) and after. NAT rewrites frames in place. A fragment is taken out of
    /// `pkts` (left `None`) while its datagram is incomplete; the fragments of a datagram
    /// completed here come back through [`CtThread::drain_released`]. Never allocates on
    /// the path of an established connection.
    pub fn execute(
        &self,
        t: &mut CtThread,
        act: &CtAction,
        pkts: &mut [Option<PacketBuf>],
        meta: &mut [CtMeta],
        members: &[u8],
        now_ms: u64,
    ) {
        for &m in members {
            let m = m as usize;
            let (Some(slot), Some(md)) = (pkts.get_mut(m), meta.get_mut(m)) else {
                continue;
            };
            let Some(buf) = slot.as_mut() else { continue };
            if let Err((l3, v6)) = self.track_frame(t, act, buf.data_mut(), md, now_ms)
                && let Some(buf) = slot.take()
            {
                *slot = self.fragment(t, act, buf, l3, v6, md, now_ms);
            }
        }
    }

    /// Hands a fragment to the reassembler; returns it when not taken.
    #[cold]
    #[allow(clippy::too_many_arguments)]
    fn fragment(
        &self,
        t: &mut CtThread,
        act: &CtAction,
        buf: PacketBuf,
        l3: usize,
        v6: bool,
        md: &mut CtMeta,
        now_ms: u64,
    ) -> Option<PacketBuf> {
        let mut frags = self.frags.lock();
        let added = frags.add(buf, l3, v6, act.zone, now_ms, &self.shared);
        self.shared
            .frag_held
            .store(frags.held() as u64, Ordering::Relaxed);
        match added {
            Add::Held => None,
            Add::Refused(buf, why) => {
                self.invalid(t, md, act.zone, why);
                Some(buf)
            }
            Add::Complete(mut done) => {
                let mut whole = frags.take_scratch();
                // The datagram is tracked as one packet; its metadata and any translation
                // then go to every fragment.
                let mut dm = *md;
                let r = self.track_frame(t, act, &mut whole, &mut dm, now_ms);
                if r.is_err() {
                    // Reassembled into something still fragmented: cannot happen with a
                    // well-built datagram, but never loop.
                    self.invalid(t, &mut dm, act.zone, CtInvalid::FragMalformed);
                }
                done.propagate(&whole);
                frags.give_scratch(whole);
                drop(frags);
                *md = dm;
                for b in done.into_bufs() {
                    t.released.push((b, dm));
                }
                None
            }
        }
    }

    /// Marks `md` invalid for `why` and counts it.
    pub(crate) fn invalid(&self, t: &CtThread, md: &mut CtMeta, zone: u16, why: CtInvalid) {
        t.counters.invalid[why as usize].add(1);
        *md = CtMeta {
            state: CtState(CtState::INV | CtState::TRK),
            zone,
            ..CtMeta::default()
        };
    }

    /// Is this incarnation's connection still unexpired at `now`?
    #[inline]
    fn alive(now: u64) -> impl Fn(&super::slot::Slot) -> bool {
        move |s| s.expires_ms() > now
    }

    /// Tracks one frame. `Err((l3, v6))` when it is a fragment (nothing done yet).
    pub(crate) fn track_frame(
        &self,
        t: &mut CtThread,
        act: &CtAction,
        f: &mut [u8],
        md: &mut CtMeta,
        now: u64,
    ) -> Result<(), (usize, bool)> {
        t.counters.packets.add(1);
        let zone = act.zone;
        if md.state.0 != 0 && md.zone != zone {
            md.state = CtState(0);
        }
        let p = match tuple::parse(f, zone, self.verify.load(Ordering::Relaxed)) {
            Ok(p) => p,
            Err(Unparsed::Fragment { l3, v6 }) => return Err((l3, v6)),
            Err(Unparsed::Invalid(why)) => {
                self.invalid(t, md, zone, why);
                return Ok(());
            }
        };
        let natted = md.state.0 & (CtState::SNAT | CtState::DNAT) != 0;
        for _ in 0..3 {
            if self.track_parsed(t, act, f, &p, natted, md, now) {
                return Ok(());
            }
        }
        // Lost the creation race three times: leave the packet new and uncommitted.
        md.state = CtState(CtState::NEW | CtState::TRK);
        md.zone = zone;
        md.orig = Some(p.tuple);
        Ok(())
    }

    /// One attempt; false when a creation race was lost and it must look again.
    #[allow(clippy::too_many_arguments)]
    fn track_parsed(
        &self,
        t: &mut CtThread,
        act: &CtAction,
        f: &mut [u8],
        p: &Parsed,
        natted: bool,
        md: &mut CtMeta,
        now: u64,
    ) -> bool {
        let zone = act.zone;
        let seed = self.table.seed;
        let mut found = if natted {
            let r = p.tuple.reverse();
            self.table
                .lookup(&mut t.readers, &r.words(), r.hash(seed), Self::alive(now))
                .map(|f| Found {
                    reply: !f.reply,
                    ..f
                })
        } else {
            let k = &p.tuple;
            self.table
                .lookup(&mut t.readers, &k.words(), k.hash(seed), Self::alive(now))
        };
        if act.force
            && let Some(fd) = found.filter(|f| f.reply)
        {
            if self.delete(fd.slot, fd.inc) {
                self.shared.replaced.fetch_add(1, Ordering::Relaxed);
            }
            found = None;
        }
        if found.is_none() && natted && act.nat.is_none() {
            // Translated earlier in this zone by a `ct` with NAT, now tracked without: the
            // original tuple in the metadata names the connection.
            if let Some(o) = md
                .orig
                .filter(|o| o.proto == p.tuple.proto && md.zone == zone)
            {
                let o = Tuple { zone, ..o };
                found = self
                    .table
                    .lookup(&mut t.readers, &o.words(), o.hash(seed), Self::alive(now))
                    .map(|f| Found { reply: false, ..f });
            }
        }
        if let Some(fd) = found {
            match self.track_found(t, act, f, p, fd, md, now) {
                Some(true) => return true,
                Some(false) => {} // reopened: create below
                None => return false,
            }
        } else if p.related {
            self.invalid(t, md, zone, CtInvalid::IcmpErrorNoConn);
            return true;
        }
        self.track_new(t, act, f, p, md, now)
    }

    /// A packet of a connection found. `Some(true)` done, `Some(false)` the connection
    /// ended (TCP reopened) and a new one starts, `None` it vanished before it could be
    /// locked (look again).
    #[allow(clippy::too_many_arguments)]
    fn track_found(
        &self,
        t: &mut CtThread,
        act: &CtAction,
        f: &mut [u8],
        p: &Parsed,
        fd: Found,
        md: &mut CtMeta,
        now: u64,
    ) -> Option<bool> {
        let s = self.table.slot(fd.slot)?;
        if !s.lock(fd.inc) {
            return None;
        }
        let mut st = s.load();
        let mut state = md.state.0;
        if p.related {
            state |= CtState::REL | if fd.reply { CtState::RPL } else { 0 };
        } else {
            match self.update(f, p, &mut st, fd.reply, now) {
                Verdict::Est => {
                    state = (state | CtState::EST) & !CtState::NEW;
                    if fd.reply {
                        state |= CtState::RPL;
                        st.flags |= flag::REPLIED;
                    }
                }
                Verdict::New => state |= CtState::NEW,
                Verdict::Invalid(why) => {
                    t.counters.invalid[why as usize].add(1);
                    state = CtState::INV;
                }
                Verdict::Reopen => {
                    s.unlock(fd.inc);
                    if self.delete(fd.slot, fd.inc) {
                        self.shared.replaced.fetch_add(1, Ordering::Relaxed);
                    }
                    md.state = CtState(state);
                    return Some(false);
                }
            }
        }
        let key = s.key();
        let nat_kind = st.flags & (flag::SNAT | flag::DNAT);
        // As OVS, a translated connection's packets are translated even when out of
        // window (`+inv`), but never twice in one zone.
        if act.nat.is_some() && nat_kind != 0 && state & (CtState::SNAT | CtState::DNAT) == 0 {
            let rkey = s.rkey();
            state |= self.translate(t, f, p, &key, &rkey, nat_kind, fd.reply);
        }
        let (mark, label) = set_mark_label(act, &mut st);
        s.store(&st);
        s.unlock(fd.inc);
        *md = CtMeta {
            state: CtState(state | CtState::TRK),
            zone: act.zone,
            mark,
            label,
            orig: Some(key),
        };
        Some(true)
    }

    /// Updates a found connection's state for this packet (caller holds its lock).
    fn update(&self, f: &[u8], p: &Parsed, st: &mut State, reply: bool, now: u64) -> Verdict {
        let tm = match p.tuple.proto {
            ip_proto::TCP => {
                let seg = tuple::segment(f, p.l4, p.end);
                let mut tcp = Tcp::unpack(st.tcp);
                let u = tcp.update(&seg, reply, self.liberal.load(Ordering::Relaxed));
                st.tcp = tcp.pack();
                match u {
                    Update::Valid(tm) => {
                        if let Some(tm) = tm {
                            st.expires_ms = now + self.timeout_ms(p.tuple.zone, tcp_tm(tm));
                        }
                        return Verdict::Est;
                    }
                    Update::ValidNew(tm) => {
                        st.expires_ms = now + self.timeout_ms(p.tuple.zone, tcp_tm(tm));
                        return Verdict::New;
                    }
                    Update::Reopen => return Verdict::Reopen,
                    Update::BadFlags => return Verdict::Invalid(CtInvalid::TcpBadFlags),
                    Update::OutOfWindow => return Verdict::Invalid(CtInvalid::TcpOutOfWindow),
                }
            }
            _ if p.tuple.is_icmp() => {
                if reply && st.proto_state == ICMP_FIRST {
                    st.proto_state = ICMP_REPLY;
                }
                if st.proto_state == ICMP_FIRST {
                    Tm::IcmpFirst
                } else {
                    Tm::IcmpReply
                }
            }
            _ => {
                if reply && st.proto_state != OTHER_BIDIR {
                    st.proto_state = OTHER_BIDIR;
                } else if st.proto_state == OTHER_FIRST {
                    st.proto_state = OTHER_MULTIPLE;
                }
                match st.proto_state {
                    OTHER_FIRST => Tm::UdpFirst,
                    OTHER_MULTIPLE => Tm::UdpSingle,
                    _ => Tm::UdpMultiple,
                }
            }
        };
        st.expires_ms = now + self.timeout_ms(p.tuple.zone, tm);
        let est = if p.tuple.is_icmp() {
            st.proto_state == ICMP_REPLY
        } else {
            st.proto_state == OTHER_BIDIR
        };
        if est { Verdict::Est } else { Verdict::New }
    }

    /// A packet with no connection: `+new` if it may start one, created with `commit`.
    /// False when creation lost a race (look again).
    fn track_new(
        &self,
        t: &mut CtThread,
        act: &CtAction,
        f: &mut [u8],
        p: &Parsed,
        md: &mut CtMeta,
        now: u64,
    ) -> bool {
        let zone = act.zone;
        let key = p.tuple;
        let seg = (key.proto == ip_proto::TCP).then(|| tuple::segment(f, p.l4, p.end));
        let why = match key.proto {
            ip_proto::TCP if !seg.is_some_and(|s| valid_new(s.flags)) => Some(CtInvalid::TcpNotNew),
            _ if key.is_icmp() && !matches!(key.icmp_type(), 8 | 13 | 15 | 128) => {
                Some(CtInvalid::IcmpNotNew)
            }
            _ => None,
        };
        if let Some(why) = why {
            t.counters.invalid[why as usize].add(1);
            *md = CtMeta {
                state: CtState(CtState::INV | CtState::TRK),
                zone,
                orig: Some(key),
                ..CtMeta::default()
            };
            return true;
        }
        let mut state = CtState::NEW;
        if !(act.commit || act.force) {
            *md = CtMeta {
                state: CtState(state | CtState::TRK),
                zone,
                orig: Some(key),
                ..CtMeta::default()
            };
            return true;
        }
        let mut st = State::default();
        match key.proto {
            ip_proto::TCP => {
                let seg = seg.unwrap_or_default();
                st.tcp = Tcp::new(&seg).pack();
                st.expires_ms = now + self.timeout_ms(zone, Tm::TcpSynSent);
            }
            _ if key.is_icmp() => st.expires_ms = now + self.timeout_ms(zone, Tm::IcmpFirst),
            _ => st.expires_ms = now + self.timeout_ms(zone, Tm::UdpFirst),
        }
        let (mark, label) = set_mark_label(act, &mut st);
        let nat = match act.nat {
            Some(Nat::Src(r)) => Some((true, r)),
            Some(Nat::Dst(r)) => Some((false, r)),
            _ => None,
        };
        if let Some((snat, _)) = nat {
            st.flags |= if snat { flag::SNAT } else { flag::DNAT };
        }
        match self.create(t, &key, &st, nat, now) {
            Created::Ok(fd) => {
                t.counters.created.add(1);
                if let (Some((snat, _)), Some(s)) = (nat, self.table.slot(fd.slot)) {
                    let rkey = s.rkey();
                    let kind = if snat { flag::SNAT } else { flag::DNAT };
                    state |= self.translate(t, f, p, &key, &rkey, kind, false);
                }
                *md = CtMeta {
                    state: CtState(state | CtState::TRK),
                    zone,
                    mark,
                    label,
                    orig: Some(key),
                };
                true
            }
            Created::Race => false,
            Created::Refused(why) => {
                t.counters.refused[why as usize].add(1);
                *md = CtMeta {
                    state: CtState(state | CtState::TRK),
                    zone,
                    orig: Some(key),
                    ..CtMeta::default()
                };
                true
            }
        }
    }

    /// Rewrites the packet for a connection with NAT `kind`; returns the `ct_state` bit.
    #[allow(clippy::too_many_arguments)]
    fn translate(
        &self,
        t: &CtThread,
        f: &mut [u8],
        p: &Parsed,
        key: &Tuple,
        rkey: &Tuple,
        kind: u8,
        reply: bool,
    ) -> u8 {
        let snat = kind & flag::SNAT != 0;
        // The bit names what this packet had done: a reply to a source translation has its
        // destination translated back.
        let bit = if snat != reply {
            CtState::SNAT
        } else {
            CtState::DNAT
        };
        if p.related {
            // The quoted packet goes back to the form its sender saw; the error's own
            // header gets the translated address, as OVS does.
            let (inner_to, src, dst) = match (snat, reply) {
                (true, false) => (*rkey, Some(rkey.dst), None),
                (false, false) => (*rkey, None, Some(rkey.src)),
                (true, true) => (*key, None, Some(key.src)),
                (false, true) => (*key, Some(key.dst), None),
            };
            nat::rewrite_related(f, p, src, dst, &inner_to);
        } else {
            let to = if reply { key.reverse() } else { rkey.reverse() };
            nat::rewrite(f, p, &to);
        }
        t.counters.nat_rewritten.add(1);
        bit
    }

    /// Creates connection `key` with initial state `st` and NAT (source?, range).
    fn create(
        &self,
        t: &CtThread,
        key: &Tuple,
        st: &State,
        nat: Option<(bool, nat::NatRange)>,
        now: u64,
    ) -> Created {
        if let Some((_, r)) = nat
            && !Self::addr_family_ok(&r, key.v6)
        {
            return Created::Refused(CtRefusal::NatExhausted);
        }
        let seed = self.table.seed;
        let h = key.hash(seed);
        let z = key.zone as usize;
        let (limit, _) = self.zone_limit(key.zone);
        let had = self.zones.count[z].fetch_add(1, Ordering::Relaxed);
        if limit != 0 && had >= limit {
            self.zones.count[z].fetch_sub(1, Ordering::Relaxed);
            return Created::Refused(CtRefusal::ZoneLimit);
        }
        let max = self.max_conns.load(Ordering::Relaxed);
        if self.n_conns.load(Ordering::Relaxed) >= max {
            self.evict_one(t);
        }
        if self.n_conns.fetch_add(1, Ordering::Relaxed) >= max {
            self.n_conns.fetch_sub(1, Ordering::Relaxed);
            self.zones.count[z].fetch_sub(1, Ordering::Relaxed);
            return Created::Refused(CtRefusal::TableFull);
        }
        let r = match nat {
            None => self.create_plain(key, h, st, now),
            Some((snat, range)) => self.create_nat(key, h, st, snat, &range, now),
        };
        if !matches!(r, Created::Ok(_)) {
            self.n_conns.fetch_sub(1, Ordering::Relaxed);
            self.zones.count[z].fetch_sub(1, Ordering::Relaxed);
        }
        r
    }

    /// Without NAT both tuples hash alike: one shard lock covers the whole creation.
    fn create_plain(&self, key: &Tuple, h: u64, st: &State, now: u64) -> Created {
        let rkey = key.reverse();
        let shard = self.table.shard(h);
        let mut w = shard.w.lock();
        let alive = Self::alive(now);
        if self.table.taken(&key.words(), h, &alive) {
            return Created::Race;
        }
        if rkey != *key && self.table.taken(&rkey.words(), h, &alive) {
            return Created::Refused(CtRefusal::TupleClash);
        }
        let Some(slot) = self.table.alloc(&mut w, shard_of(h)) else {
            return Created::Refused(CtRefusal::TableFull);
        };
        let Some(s) = self.table.slot(slot) else {
            return Created::Refused(CtRefusal::TableFull);
        };
        let inc = s.reserve(key, &rkey, st);
        self.table.insert(&mut w, h, slot, false);
        self.table.insert(&mut w, h, slot, true);
        s.publish(inc);
        push_unreplied(&self.table, shard, &mut w, slot, inc, now);
        Created::Ok(Found {
            slot,
            inc,
            reply: false,
        })
    }

    /// With NAT: reserve a slot, claim a reply tuple in its own shard, then add the
    /// original tuple in its shard. One shard lock at a time.
    fn create_nat(
        &self,
        key: &Tuple,
        h: u64,
        st: &State,
        snat: bool,
        range: &nat::NatRange,
        now: u64,
    ) -> Created {
        let seed = self.table.seed;
        let shard = self.table.shard(h);
        let alive = Self::alive(now);
        let (slot, inc) = {
            let mut w = shard.w.lock();
            if self.table.taken(&key.words(), h, &alive) {
                return Created::Race;
            }
            let Some(slot) = self.table.alloc(&mut w, shard_of(h)) else {
                return Created::Refused(CtRefusal::TableFull);
            };
            let Some(s) = self.table.slot(slot) else {
                return Created::Refused(CtRefusal::TableFull);
            };
            (slot, s.reserve(key, &key.reverse(), st))
        };
        let Some(s) = self.table.slot(slot) else {
            return Created::Refused(CtRefusal::TableFull);
        };
        let take = |rev: &Tuple| {
            let rh = rev.hash(seed);
            let mut w = self.table.shard(rh).w.lock();
            if *rev == *key || self.table.taken(&rev.words(), rh, &alive) {
                return false;
            }
            s.set_rkey(rev);
            self.table.insert(&mut w, rh, slot, true);
            true
        };
        let Some(rkey) = nat::choose(key, snat, range, seed, || self.rand(), take) else {
            s.unreserve(inc);
            shard.w.lock().free.push(slot);
            return Created::Refused(CtRefusal::NatExhausted);
        };
        let rh = rkey.hash(seed);
        let mut w = shard.w.lock();
        if self.table.taken(&key.words(), h, &alive) {
            // Someone created it meanwhile: give the claimed tuple back.
            s.unreserve(inc);
            drop(w);
            let mut rw = self.table.shard(rh).w.lock();
            self.table.remove(&mut rw, rh, slot, true);
            rw.free.push(slot);
            return Created::Race;
        }
        self.table.insert(&mut w, h, slot, false);
        s.publish(inc);
        push_unreplied(&self.table, shard, &mut w, slot, inc, now);
        Created::Ok(Found {
            slot,
            inc,
            reply: false,
        })
    }
}

/// Records a new connection in its shard's queue of unanswered ones, compacting the queue
/// when answered or deleted connections crowd it.
fn push_unreplied(
    table: &super::table::Table,
    shard: &super::table::Shard,
    w: &mut super::table::ShardW,
    slot: u32,
    inc: u64,
    now: u64,
) {
    w.conns += 1;
    if w.unreplied.is_empty() {
        shard.oldest_ms.store(now, Ordering::Relaxed);
    }
    w.unreplied.push_back((slot, inc as u32, now));
    if w.unreplied.len() > 2 * w.conns + 64 {
        w.unreplied.retain(|&(i, inc, _)| {
            table
                .slot(i)
                .is_some_and(|s| s.unreplied_hint(inc).is_some())
        });
        let front = w.unreplied.front().map_or(u64::MAX, |e| e.2);
        shard.oldest_ms.store(front, Ordering::Relaxed);
    }
}

/// Applies the action's mark and label writes to `st`; returns the values the packet sees.
fn set_mark_label(act: &CtAction, st: &mut State) -> (u32, u128) {
    if let Some((v, m)) = act.mark {
        st.mark = (v & m) | (st.mark & !m);
    }
    if let Some((v, m)) = act.label {
        st.label = (v & m) | (st.label & !m);
    }
    (st.mark, st.label)
}

fn tcp_tm(t: TcpTimeout) -> Tm {
    match t {
        TcpTimeout::First => Tm::TcpSynSent,
        TcpTimeout::Opening => Tm::TcpSynRecv,
        TcpTimeout::Established => Tm::TcpEstablished,
        TcpTimeout::Closing => Tm::TcpFinWait,
        TcpTimeout::FinWait => Tm::TcpTimeWait,
        TcpTimeout::Closed => Tm::TcpClose,
    }
}

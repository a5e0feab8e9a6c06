//! What the tracker would say of a packet, without tracking it: `trace`'s view of `ct`.
//!
//! What: [`Conntrack::peek`] parses the packet's tuple as [`Conntrack::execute`] does and
//! looks it up through a reader handle of its own; it never creates, updates, locks or
//! counts anything, so a trace leaves every connection, timeout and counter as it was. A
//! connection found in its original direction is `+est` once a reply was seen (else still
//! `+new`); in its reply direction `+est+rpl`; not found, `+new` (`+inv` for an ICMP error
//! of no connection). TCP's window and flag checks are not replayed (a packet they would
//! refuse is shown as its connection's state), nor is NAT's translation.
//!
//! Thread-safety: like any reader of the tracker, from any thread.

use std::sync::atomic::Ordering;

use super::slot::flag;
use super::tuple::{self, Unparsed};
use super::{Conntrack, CtAction, CtMeta, CtState};

impl Conntrack {
    /// The metadata `ct(act)` would give the frame `f` at `now_ms`, committing nothing.
    /// `None` for a fragment (the tracker reassembles the datagram first).
    pub fn peek(&self, act: &CtAction, f: &[u8], now_ms: u64) -> Option<CtMeta> {
        let zone = act.zone;
        let invalid = CtMeta {
            state: CtState(CtState::INV | CtState::TRK),
            zone,
            ..CtMeta::default()
        };
        let p = match tuple::parse(f, zone, self.verify.load(Ordering::Relaxed)) {
            Ok(p) => p,
            Err(Unparsed::Fragment { .. }) => return None,
            Err(Unparsed::Invalid(_)) => return Some(invalid),
        };
        let mut readers = self.table.readers();
        let t = &p.tuple;
        let alive = |s: &super::slot::Slot| s.expires_ms() > now_ms;
        let found = self
            .table
            .lookup(&mut readers, &t.words(), t.hash(self.table.seed), alive);
        let Some(fd) = found.and_then(|fd| Some((fd, self.table.slot(fd.slot)?))) else {
            if p.related {
                return Some(invalid);
            }
            let (mark, label) = mark_label(act, 0, 0);
            return Some(CtMeta {
                state: CtState(CtState::NEW | CtState::TRK),
                zone,
                mark,
                label,
                orig: Some(*t),
            });
        };
        let (fd, slot) = fd;
        let st = slot.load();
        let rpl = if fd.reply { CtState::RPL } else { 0 };
        let state = if p.related {
            CtState::REL | rpl
        } else if fd.reply || st.flags & flag::REPLIED != 0 {
            CtState::EST | rpl
        } else {
            CtState::NEW
        };
        let (mark, label) = mark_label(act, st.mark, st.label);
        Some(CtMeta {
            state: CtState(state | CtState::TRK),
            zone,
            mark,
            label,
            orig: Some(slot.key()),
        })
    }
}

/// The mark and label after `act`'s `exec(...)`.
fn mark_label(act: &CtAction, mut mark: u32, mut label: u128) -> (u32, u128) {
    if let Some((v, m)) = act.mark {
        mark = (v & m) | (mark & !m);
    }
    if let Some((v, m)) = act.label {
        label = (v & m) | (label & !m);
    }
    (mark, label)
}

//! The connection trackers' families: what `flowctl ct-stats` reports, per bridge.
//!
//! Read through [`Switch::conntrack_stats`](crate::switch::Switch::conntrack_stats): the
//! switch lock, then the tracker's `stats()`, which sums per-thread counters (atomics, the
//! list of threads copied on write), loads the shared counters (the fragment count held is
//! published as an atomic) and counts entries by walking the connection slots without
//! locking them. No poll thread waits for a scrape. Entries are reported per zone and
//! protocol for the zones that hold connections only, so the series are bounded by the
//! zones in use. A bridge whose tracker was never made reports zeros.

use datapath::conntrack::{CtInvalid, CtRefusal};
use prometheus_client::encoding::DescriptorEncoder;
use proto::v1;

use super::collector::{C, G, Labels, Rows, family};

/// Families read from one named counter of `ct-stats`: name, help, kind, counter.
#[rustfmt::skip]
const NAMED: &[(&str, &str, prometheus_client::metrics::MetricType, &str)] = &[
    ("vswitch_ct_packets", "Packets the connection tracker processed", C, "packets"),
    ("vswitch_ct_created", "Connections created (committed)", C, "created"),
    ("vswitch_ct_expired", "Connections removed when their timeout passed", C, "expired"),
    ("vswitch_ct_evicted", "Connections evicted to make room (oldest unanswered first)", C, "evicted"),
    ("vswitch_ct_flushed", "Connections removed by flushes", C, "flushed"),
    ("vswitch_ct_replaced", "Connections ended by the tracker (a TCP connection reopened, force)", C, "replaced"),
    ("vswitch_ct_nat_rewritten", "Packets NAT rewrote", C, "nat_rewritten"),
    ("vswitch_ct_memory_bytes", "Bytes the tracker holds for connections", G, "memory_bytes"),
    ("vswitch_ct_frag_accepted", "Fragments taken for reassembly", C, "frag_accepted"),
    ("vswitch_ct_frag_reassembled", "Datagrams reassembled from fragments", C, "frag_reassembled"),
    ("vswitch_ct_frag_expired", "Fragments dropped because their datagram timed out", C, "frag_expired"),
    ("vswitch_ct_frag_table_full", "Fragments not taken because the reassembler was full", C, "frag_table_full"),
    ("vswitch_ct_frag_held", "Fragments held for reassembly now", G, "frag_held"),
];

/// `name` without its `ct_invalid_`/`ct_refused_` prefix, as a label value.
fn reason(name: &str) -> &str {
    name.trim_start_matches("ct_invalid_")
        .trim_start_matches("ct_refused_")
}

/// Writes the trackers' families over each bridge's `ct-stats`.
pub(super) fn encode(
    enc: &mut DescriptorEncoder<'_>,
    stats: &[v1::ConntrackStats],
) -> Result<(), std::fmt::Error> {
    let br = |s: &v1::ConntrackStats| -> Labels { vec![("bridge", s.bridge.clone())] };
    let count = |s: &v1::ConntrackStats, k: &str| s.counters.get(k).copied().unwrap_or(0);
    let rows = |f: &dyn Fn(&v1::ConntrackStats) -> u64| -> Rows {
        stats.iter().map(|s| (br(s), f(s))).collect()
    };
    family(
        enc,
        "vswitch_ct_entries",
        "Connections the tracker holds",
        G,
        rows(&|s| s.entries),
    )?;
    family(
        enc,
        "vswitch_ct_max_conns",
        "Most connections the tracker holds at once (ct-set-maxconns)",
        G,
        rows(&|s| s.max_conns),
    )?;
    let mut zones = Rows::new();
    for s in stats {
        for z in &s.zones {
            let mut l = br(s);
            l.push(("zone", z.zone.to_string()));
            l.push(("protocol", z.protocol.clone()));
            zones.push((l, z.entries));
        }
    }
    family(
        enc,
        "vswitch_ct_zone_entries",
        "Connections by zone and protocol (zones holding connections only)",
        G,
        zones,
    )?;
    for (name, help, kind, key) in NAMED {
        family(enc, name, help, *kind, rows(&|s| count(s, key)))?;
    }
    let by_reason = |names: &mut dyn Iterator<Item = &'static str>| -> Rows {
        let names: Vec<&str> = names.collect();
        let mut r = Rows::new();
        for s in stats {
            for n in &names {
                let mut l = br(s);
                l.push(("reason", reason(n).to_string()));
                r.push((l, count(s, n)));
            }
        }
        r
    };
    family(
        enc,
        "vswitch_ct_invalid",
        "Packets the tracker marked invalid (+inv), by reason",
        C,
        by_reason(&mut CtInvalid::ALL.iter().map(|r| r.name())),
    )?;
    family(
        enc,
        "vswitch_ct_refused",
        "Connections not created, by reason (zone_limit: the zone's limit; table_full: the \
         maximum with nothing to evict; nat_exhausted: no NAT address or port free; \
         tuple_clash: the translated tuple taken)",
        C,
        by_reason(&mut CtRefusal::ALL.iter().map(|r| r.name())),
    )
}

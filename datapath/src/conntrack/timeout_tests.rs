//! Timeout policies: the tracker's own and a zone's, taken at a connection's next packet.

use super::testpkt::*;
use super::tests::{H, commit};
use super::*;

fn a() -> A {
    v4("10.0.0.1")
}
fn b() -> A {
    v4("10.0.0.2")
}

#[test]
fn a_zone_policy_applies_to_its_zone_only() {
    let mut h = H::new();
    let short = Timeouts {
        udp_first: 2,
        udp_single: 2,
        udp_multiple: 2,
        ..Timeouts::default()
    };
    h.ct.set_zone_timeouts(7, Some(short)).unwrap();
    assert_eq!(h.ct.zone_timeouts(7), Some(short));
    assert_eq!(h.ct.zone_timeouts(8), None);
    assert_eq!(h.ct.timeouts(), Timeouts::default());
    h.run(&commit(7), &udp(a(), b(), 1, 7));
    h.run(&commit(8), &udp(a(), b(), 1, 7));
    h.now += 3_000;
    assert_eq!(h.ct.sweep(h.now, 1 << 20), 1, "zone 7's entry lives 2 s");
    assert_eq!(h.ct.len(), 1, "zone 8's lives 60 s");
    h.ct.set_zone_timeouts(7, None).unwrap();
    assert_eq!(h.ct.zone_timeouts(7), None);
    h.run(&commit(7), &udp(a(), b(), 1, 7));
    h.now += 3_000;
    assert_eq!(h.ct.sweep(h.now, 1 << 20), 0, "back to the tracker's 60 s");
}

#[test]
fn a_new_timeout_is_taken_at_the_next_packet() {
    let mut h = H::new();
    h.run(&commit(0), &udp(a(), b(), 1, 7));
    h.ct.set_timeouts(Timeouts {
        udp_single: 2,
        ..Timeouts::default()
    });
    h.now += 3_000;
    assert_eq!(
        h.ct.sweep(h.now, 1 << 20),
        0,
        "expiry set by its last packet"
    );
    // Its next packet (second in one direction: udp_single) takes the new timeout.
    h.run(&commit(0), &udp(a(), b(), 1, 7));
    h.now += 2_500;
    assert_eq!(h.ct.sweep(h.now, 1 << 20), 1);
}

#[test]
fn zone_policies_are_bounded_and_reused() {
    let h = H::new();
    let t = Timeouts::default();
    for z in 0..MAX_ZONE_POLICIES as u16 {
        h.ct.set_zone_timeouts(z, Some(t)).unwrap();
    }
    assert_eq!(
        h.ct.set_zone_timeouts(1000, Some(t)),
        Err(MAX_ZONE_POLICIES)
    );
    // Setting a zone that has one again takes no new policy.
    h.ct.set_zone_timeouts(3, Some(t)).unwrap();
    h.ct.set_zone_timeouts(3, None).unwrap();
    h.ct.set_zone_timeouts(1000, Some(t)).unwrap();
    assert_eq!(h.ct.zone_timeouts(1000), Some(t));
    assert_eq!(h.ct.zone_timeouts(3), None);
}

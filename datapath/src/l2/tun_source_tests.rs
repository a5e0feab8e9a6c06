#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn tunnel_sources_are_interned_once_and_bounded() {
    let t = MacTable::new(1024);
    let s = &t.tun_sources;
    let a = s.intern(Ipv4Addr::new(10, 0, 0, 2), 42);
    assert_ne!(a, 0);
    assert_eq!(s.intern(Ipv4Addr::new(10, 0, 0, 2), 42), a);
    assert_eq!(s.get(a), Some((Ipv4Addr::new(10, 0, 0, 2), 42)));
    assert_eq!(s.intern(Ipv4Addr::UNSPECIFIED, 1), 0);
    assert_eq!(s.get(0), None);
    // Filling it: later pairs get 0 and are counted, earlier ones keep their index.
    let mut zero = 0;
    for i in 0..(TUN_SOURCES as u32 * 2) {
        if s.intern(Ipv4Addr::from(0x0b00_0000 + i), i) == 0 {
            zero += 1;
        }
    }
    assert!(zero >= TUN_SOURCES as u64);
    assert_eq!(s.full.load(Ordering::Relaxed), zero);
    assert_eq!(s.get(a), Some((Ipv4Addr::new(10, 0, 0, 2), 42)));
    // An entry with a source: a change of source is a move; port flushes still work.
    let mac = MacAddr([2, 0, 0, 0, 0, 9]);
    let b = s.intern(Ipv4Addr::new(10, 0, 0, 3), 42);
    assert_eq!(t.learn_tun(VlanId(0), mac, PortNo(4), a, 1), Learned::New);
    assert_eq!(t.lookup_tun(VlanId(0), mac, 1), Some((PortNo(4), a)));
    if b != 0 {
        assert_eq!(
            t.learn_tun(VlanId(0), mac, PortNo(4), b, 2),
            Learned::Moved { from: PortNo(4) }
        );
    }
    assert_eq!(t.lookup(VlanId(0), mac, 2), Some(PortNo(4)));
    assert_eq!(t.entries(2)[0].tun, s.get(if b != 0 { b } else { a }));
    t.flush_port(PortNo(4));
    assert_eq!(t.lookup(VlanId(0), mac, 2), None);
}

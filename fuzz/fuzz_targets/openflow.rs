//! The OpenFlow codec on arbitrary bytes: framing, every message kind, every nested list.
//! Never panics; whatever parses re-emits to bytes that parse again and re-emit to the same
//! bytes (emission is a fixed point after one round, padding normalised to zeros).
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::openflow::hello::VersionSet;
use proto::openflow::message::{Frames, Message, parse};
use proto::openflow::Version;

fuzz_target!(|data: &[u8]| {
    for frame in Frames::new(data) {
        let Ok(msg) = frame else { break };
        let Ok((h, m)) = parse(msg) else { continue };
        if let Message::Hello(hello) = m {
            let _ = hello.negotiate(h.version, VersionSet::of(&[Version::V1_3, Version::V1_4]));
        }
        if let Message::BundleAdd(a) = m {
            let _ = parse(a.message);
        }
        let mut once = Vec::new();
        if m.emit(h.version, h.xid, &mut once).is_err() {
            continue;
        }
        let (h2, m2) = parse(&once).expect("re-emitted message parses");
        let mut twice = Vec::new();
        m2.emit(h2.version, h2.xid, &mut twice).expect("fits again");
        assert_eq!(once, twice, "emission is not a fixed point");
    }
});

//! `Capture` requests as a hostile client could send them: decoded from the bytes and
//! checked by the daemon's `capture::plan`. Nothing may panic; a request is refused with
//! INVALID_ARGUMENT naming a field, or planned within every bound (snap length, duration,
//! at least one direction), with the count it asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use proto::v1;
use vswitchd::capture::{MAX_DURATION_MS, MAX_SNAPLEN, plan};

fuzz_target!(|data: &[u8]| {
    let Ok(req) = v1::CaptureRequest::decode(data) else {
        return;
    };
    match plan(&req) {
        Ok(p) => {
            assert!(p.opts.rx || p.opts.tx);
            assert!(p.snaplen >= 1 && p.snaplen <= MAX_SNAPLEN);
            assert_eq!(p.opts.snaplen, p.snaplen as usize);
            assert!(p.duration.is_none_or(|d| d.as_millis() <= MAX_DURATION_MS as u128));
            assert_eq!(p.count.unwrap_or(0), req.count);
            assert!(!req.bridge.is_empty() && !req.port.is_empty());
        }
        Err(e) => {
            // INVALID_ARGUMENT.
            assert_eq!(e.code as i32, 3);
            assert!(!e.field.is_empty());
        }
    }
});

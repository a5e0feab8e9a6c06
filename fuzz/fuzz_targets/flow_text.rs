//! The ovs-ofctl flow, match, meter and group text parsers on arbitrary input: never panic,
//! and whatever parses prints back to text that parses to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::flow_text::{
    format_filter, format_flow, format_group, format_meter, parse_flow, parse_flow_modify,
    parse_group, parse_match, parse_meter,
};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = parse_flow(s) {
        let again = parse_flow(&format_flow(&f)).expect("formatted flow parses");
        assert_eq!(again, f, "{s:?}");
    }
    if let Ok(m) = parse_match(s) {
        let again = parse_match(&format_filter(&m)).expect("formatted match parses");
        assert_eq!(again, m, "{s:?}");
    }
    let _ = parse_flow_modify(s);
    if let Ok(m) = parse_meter(s) {
        assert_eq!(parse_meter(&format_meter(&m)).expect("meter"), m, "{s:?}");
    }
    if let Ok(g) = parse_group(s) {
        assert_eq!(parse_group(&format_group(&g)).expect("group"), g, "{s:?}");
    }
});

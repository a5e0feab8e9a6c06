//! Codec tests on real bytes: os-ken's OpenFlow 1.3 vectors, what ovs-ofctl sends, and
//! property tests (build then parse is identity).

mod actset_props;
mod ofctl;
mod osken;
mod props;
mod walk;

use crate::openflow::message::parse;

/// Parses `bytes` as one message and re-encodes it item by item; the bytes must come back.
pub fn round_trip(bytes: &[u8]) -> Result<Vec<String>, String> {
    let (h, m) = parse(bytes).map_err(|e| format!("parse: {e}"))?;
    let mut out = Vec::new();
    m.emit(h.version, h.xid, &mut out)
        .map_err(|e| format!("emit: {e}"))?;
    if out != bytes {
        let at = out.iter().zip(bytes).position(|(a, b)| a != b);
        return Err(format!(
            "re-encoded differs at byte {at:?} (length {} against {})",
            out.len(),
            bytes.len()
        ));
    }
    Ok(walk::opaque(&m))
}

//! `capture BR PORT`: a capture started on a bridge's port by name.
//!
//! Thread-safety: takes the switch's lock only to find the bridge and port; the datapath
//! attaches the tap in its own transaction.

use datapath::pipeline::{Capture, CaptureOptions};
use datapath::types::PortNo;

use super::Switch;
use crate::error::{ApiError, quote};

impl Switch {
    /// Starts capturing on port `port` of `bridge`; returns the reader's end and the
    /// port's number.
    pub fn start_capture(
        &self,
        bridge: &str,
        port: &str,
        opts: CaptureOptions,
    ) -> Result<(Capture, u32), ApiError> {
        let (dp, no) = {
            let bridges = self.bridges.lock();
            let b = bridges.get(bridge).ok_or_else(|| {
                ApiError::not_found("bridge", format!("no bridge {}", quote(bridge)))
            })?;
            let p = b.ports.get(port).ok_or_else(|| {
                ApiError::not_found(
                    "port",
                    format!("bridge {} has no port {}", quote(bridge), quote(port)),
                )
            })?;
            (b.dp.clone(), p.desc.port_no)
        };
        let cap = dp.start_capture(PortNo(no), opts).map_err(|e| {
            // Removed between the lookup and the attach.
            ApiError::not_found("port", e.to_string())
        })?;
        Ok((cap, no))
    }
}

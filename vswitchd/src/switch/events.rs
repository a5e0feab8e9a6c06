//! Events for stream subscribers: the [`Event`] type, and the thread that turns a
//! bridge's packet-ins into events.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use datapath::pipeline::{PacketIn, PacketInReason};
use proto::v1::{self, stream_message_response as smr};
use tokio::sync::broadcast;

use crate::convert;
use crate::error::ApiError;

/// One event for stream subscribers.
#[derive(Debug, Clone)]
pub struct Event {
    /// The bridge it happened on.
    pub bridge: String,
    /// The message as sent on the stream.
    pub msg: v1::StreamMessageResponse,
}

/// Starts the thread that forwards `bridge`'s packet-ins to the event subscribers (none
/// subscribed: they are dropped) until `stop` is set.
pub(super) fn spawn_packet_in_forwarder(
    bridge: &str,
    packet_in: Receiver<PacketIn>,
    events: broadcast::Sender<Arc<Event>>,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, ApiError> {
    let name = bridge.to_string();
    std::thread::Builder::new()
        .name(format!("pktin-{bridge}"))
        .spawn(move || {
            while !stop.load(Ordering::Acquire) {
                match packet_in.recv_timeout(Duration::from_millis(50)) {
                    Ok(p) => {
                        if events.receiver_count() > 0 {
                            let msg = packet_in_msg(&name, p);
                            let _ = events.send(Arc::new(Event {
                                bridge: name.clone(),
                                msg,
                            }));
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(_) => return,
                }
            }
        })
        .map_err(|e| ApiError::internal(format!("spawning packet-in thread: {e}")))
}

fn packet_in_msg(bridge: &str, p: PacketIn) -> v1::StreamMessageResponse {
    // The translation that sent it says whether it was a table miss (OpenFlow 1.3's
    // NO_MATCH: the table-miss flow, priority 0 with an empty match, sent it).
    let reason = match p.reason {
        PacketInReason::NoMatch => v1::PacketInReason::NoMatch,
        PacketInReason::Action | PacketInReason::Group => v1::PacketInReason::Action,
        // Named by the flow (`controller(reason=...)`).
        PacketInReason::InvalidTtl => v1::PacketInReason::InvalidTtl,
        PacketInReason::ActionSet => v1::PacketInReason::ActionSet,
        PacketInReason::PacketOut => v1::PacketInReason::PacketOut,
    };
    v1::StreamMessageResponse {
        update: Some(smr::Update::PacketIn(v1::PacketIn {
            bridge: bridge.to_string(),
            reason: reason as i32,
            table_id: p.table.0 as u32,
            cookie: p.cookie,
            r#match: Some(convert::packet_in_match(&p.key)),
            in_port: p.in_port.0,
            data: p.data,
            total_len: p.total_len as u32,
            controller_id: u32::from(p.controller_id),
            userdata: p.userdata.map_or_else(Vec::new, |u| u.to_vec()),
        })),
    }
}

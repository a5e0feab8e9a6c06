//! The Stream call's side of the switch: subscribing to events, sending them, and a
//! controller's packet-outs.

use std::sync::Arc;

use datapath::pipeline::PacketOut;
use datapath::types::PortNo;
use proto::v1::{self, port_ref, stream_message_response as smr};
use tokio::sync::broadcast;

use super::Switch;
use super::events::Event;
use crate::convert::{self, Context};
use crate::error::ApiError;

impl Switch {
    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    pub(super) fn emit(&self, bridge: &str, update: smr::Update) {
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(Arc::new(Event {
                bridge: bridge.to_string(),
                msg: v1::StreamMessageResponse {
                    update: Some(update),
                },
            }));
        }
    }

    /// Sends a controller's packet.
    pub fn packet_out(&self, po: &v1::PacketOut) -> Result<(), ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(&po.bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {}", po.bridge)))?;
        let names = b.names();
        let in_port = match po.in_port.as_ref().and_then(|p| p.port.as_ref()) {
            None => None,
            Some(port_ref::Port::Number(n)) if PortNo(*n) == PortNo::CONTROLLER => None,
            Some(port_ref::Port::Reserved(r)) if *r == v1::ReservedPort::Controller as i32 => None,
            Some(port_ref::Port::Number(n)) => Some(PortNo(*n)),
            Some(port_ref::Port::Name(n)) => {
                Some(PortNo(names(n).ok_or_else(|| {
                    ApiError::not_found("in_port", format!("no port named {n:?}"))
                })?))
            }
            Some(port_ref::Port::Reserved(_)) => {
                return Err(ApiError::invalid("in_port", "must be a port or CONTROLLER"));
            }
        };
        if po.data.len() < 14 {
            return Err(ApiError::invalid(
                "data",
                "a packet-out needs at least an Ethernet header (14 bytes)",
            ));
        }
        let (actions, table) = convert::convert_actions(&po.actions, &names, Context::PacketOut)?;
        b.dp.packet_out(PacketOut {
            in_port,
            table,
            actions,
            frame: po.data.clone(),
        })
        .map_err(|e| match e {
            datapath::pipeline::DatapathError::FrameTooLong(_) => {
                ApiError::invalid("data", e.to_string())
            }
            e => ApiError::unavailable(e.to_string()),
        })
    }
}

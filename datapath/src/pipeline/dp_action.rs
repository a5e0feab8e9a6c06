//! The datapath operations a translation compiles to ([`DpAction`]) and why a packet goes
//! to the controller ([`PacketInReason`]).
//!
//! Thread-safety: plain `Copy` data.

use crate::actions::Action;
use crate::conntrack::CtAction;
use crate::flow::Field;
use crate::types::{GroupId, MeterId, PortNo, TableId};

pub use crate::actions::PacketInReason;

/// [`DpAction::Controller`]'s `userdata` when it has none.
pub const NO_USERDATA: u16 = u16::MAX;

/// One compiled datapath operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DpAction {
    /// Send to a port by number (resolved against the current ports per burst).
    Output(PortNo),
    /// Send back out of the ingress port.
    InPort,
    /// Every port with flooding enabled but the ingress one.
    Flood,
    /// Every port but the ingress one.
    All,
    /// L2 learning switch.
    Normal,
    /// Packet-in to the controller.
    Controller {
        /// Why.
        reason: PacketInReason,
        /// Table of the flow that sent it.
        table: TableId,
        /// Cookie of the flow that sent it.
        cookie: u64,
        /// Bytes of packet data to include.
        max_len: u16,
        /// The controller connection id it is for (0: the default).
        id: u16,
        /// Index of its userdata in the translation's `userdata` ([`NO_USERDATA`]: none).
        userdata: u16,
    },
    /// Rewrite a field.
    SetField(Field, u128),
    /// Rewrite some bits of a field: (field, value, mask).
    SetFieldMasked(Field, u128, u128),
    /// Push a VLAN tag with this TPID.
    PushVlan(u16),
    /// Pop the outer VLAN tag.
    PopVlan,
    /// Decrement TTL / hop limit.
    DecTtl,
    /// Meter the packets.
    Meter(MeterId),
    /// Process through a group.
    Group(GroupId),
    /// Choose the egress queue.
    SetQueue(u32),
    /// Send to a port (or the ingress port, `PortNo::IN_PORT`) on a queue, keeping the
    /// packet's queue.
    Enqueue(PortNo, u32),
    /// Push an MPLS entry with this ethertype.
    PushMpls(u16),
    /// Pop the outer MPLS entry; what follows has this ethertype.
    PopMpls(u16),
    /// Decrement the outer MPLS TTL.
    DecMplsTtl,
    /// OpenFlow 1.0 VLAN rewrite: (TCI bits, their mask, tag untagged packets).
    SetVlan(u16, u16, bool),
    /// Look the packet up again from this table, with its key as the operations before
    /// left it (after a `pop_mpls`); the translation ends here.
    Recirc(TableId),
    /// Connection tracking: run the packets through the tracker; with a table, the
    /// tracked packets (a copy unless this is the last emitting operation) continue there,
    /// through the caches, as recirculated packets (`pipeline::ct`).
    Ct(CtAction, Option<TableId>),
    /// Forget the packets' connection-tracking state.
    CtClear,
}

impl DpAction {
    /// True for operations that send the packet somewhere (and so may consume it).
    pub fn emits(&self) -> bool {
        matches!(
            self,
            DpAction::Output(_)
                | DpAction::InPort
                | DpAction::Flood
                | DpAction::All
                | DpAction::Normal
                | DpAction::Controller { .. }
                | DpAction::Group(_)
                | DpAction::Enqueue(..)
                | DpAction::Recirc(_)
                | DpAction::Ct(_, Some(_))
        )
    }

    /// The datapath form of an OpenFlow action found in `table` of a flow with `cookie`.
    pub fn from_action(
        a: &Action,
        table: TableId,
        cookie: u64,
        reason: PacketInReason,
    ) -> DpAction {
        match *a {
            Action::Output(p) => DpAction::Output(p),
            Action::InPort => DpAction::InPort,
            Action::Flood => DpAction::Flood,
            Action::All => DpAction::All,
            Action::Normal => DpAction::Normal,
            Action::Controller { max_len } => DpAction::Controller {
                reason,
                table,
                cookie,
                max_len,
                id: 0,
                userdata: NO_USERDATA,
            },
            // The walk of the tables resolves the userdata (`Walk::actions`).
            Action::ControllerWith {
                max_len,
                reason: given,
                id,
                ..
            } => DpAction::Controller {
                reason: given.unwrap_or(reason),
                table,
                cookie,
                max_len,
                id,
                userdata: NO_USERDATA,
            },
            Action::SetField { field, value } => DpAction::SetField(field, value),
            Action::SetFieldMasked { field, value, mask } => {
                DpAction::SetFieldMasked(field, value, mask)
            }
            Action::PushVlan { tpid } => DpAction::PushVlan(tpid),
            Action::PopVlan => DpAction::PopVlan,
            Action::DecTtl => DpAction::DecTtl,
            Action::Group(g) => DpAction::Group(g),
            Action::SetQueue(q) => DpAction::SetQueue(q),
            // The queue a packet enters the pipeline with is queue 0.
            Action::PopQueue => DpAction::SetQueue(0),
            Action::Enqueue { port, queue } => DpAction::Enqueue(port, queue),
            Action::PushMpls { ethertype } => DpAction::PushMpls(ethertype),
            Action::PopMpls { ethertype } => DpAction::PopMpls(ethertype),
            Action::DecMplsTtl => DpAction::DecMplsTtl,
            Action::SetVlan { value, mask, push } => DpAction::SetVlan(value, mask, push),
            // A zone read from a field is the walk's to read (`Walk::actions`).
            Action::Ct { ct, table, .. } => DpAction::Ct(ct, table),
            Action::CtClear => DpAction::CtClear,
            // The walk runs these itself (`Walk::actions`); in a group bucket or packet-out,
            // which the daemon does not let them into, they would be a write of no bits.
            Action::Move { .. }
            | Action::Resubmit { .. }
            | Action::Exit
            | Action::OutputField(_)
            | Action::StackPush(_)
            | Action::StackPop(_)
            | Action::Clone { .. }
            | Action::Multipath { .. } => DpAction::SetFieldMasked(Field::Metadata, 0, 0),
            // A lookup never returns a flow of clauses (`classifier::conj`).
            Action::Conjunction { .. } => DpAction::SetFieldMasked(Field::Metadata, 0, 0),
        }
    }
}

//! OpenFlow actions and instructions, as the datapath understands them.
//!
//! What: the types a flow carries ([`Instructions`] holding a list of [`Action`]s) and the
//! executor that runs a compiled action list over a sub-batch of packets (`pipeline::execute`).
//! OpenFlow's reserved ports are explicit actions (`InPort`, `Flood`, `All`, `Normal`,
//! `Controller`) instead of magic port numbers. There is no drop action: an empty action list
//! drops, as in OpenFlow.
//!
//! Thread-safety: the types are immutable once built and shared between threads by `Arc`.

pub mod mpls;
pub mod multipath;
pub mod rewrite;

use std::sync::Arc;

use crate::conntrack::CtAction;
use crate::flow::{Field, Subfield};
use crate::types::{GroupId, MeterId, PortNo, TableId};

/// Why a packet goes to the controller (OpenFlow's packet-in reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketInReason {
    /// A table-miss flow (priority 0, empty match) sent it: OpenFlow's `no_match`.
    NoMatch,
    /// An explicit `controller` action of any other flow.
    Action,
    /// `controller` inside a group bucket.
    Group,
    /// `controller(reason=invalid_ttl)`.
    InvalidTtl,
    /// `controller(reason=action_set)`.
    ActionSet,
    /// `controller(reason=packet_out)`.
    PacketOut,
}

/// [`Action::Controller`]'s `userdata` when it has none.
pub const NO_USERDATA: u16 = u16::MAX;

/// One OpenFlow action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send to a port (never back to the ingress port: use `InPort` for that).
    Output(PortNo),
    /// Send back out of the ingress port (OFPP_IN_PORT).
    InPort,
    /// Send to every port except the ingress port (OFPP_FLOOD).
    Flood,
    /// Send to every port except the ingress port (OFPP_ALL; no flood exclusions here).
    All,
    /// L2 learning switch behaviour (OFPP_NORMAL).
    Normal,
    /// Send to the controller as a packet-in (OFPP_CONTROLLER), at most `max_len` bytes.
    Controller {
        /// Bytes of the packet included in the packet-in (0xffff: all).
        max_len: u16,
    },
    /// [`Action::Controller`] with Open vSwitch's `controller(...)` arguments: the reason
    /// the packet-in gives, the controller connection it is for, and userdata.
    ControllerWith {
        /// Bytes of the packet included in the packet-in (0xffff: all).
        max_len: u16,
        /// The reason the packet-in gives (`None`: the flow's, `no_match` for the
        /// table-miss flow, else `action`).
        reason: Option<PacketInReason>,
        /// The controller connection id it is for (0: the default).
        id: u16,
        /// Index of its userdata in the flow's [`Instructions::userdata`] ([`NO_USERDATA`]:
        /// none; only in a flow's own actions).
        userdata: u16,
    },
    /// Write a field of the packet. `value` is in the field's units (see [`Field`]).
    SetField {
        /// The field written.
        field: Field,
        /// Its new value.
        value: u128,
    },
    /// Write some bits of a field: `field = (field & !mask) | (value & mask)` (OpenFlow's
    /// masked set-field; also how VID, PCP, DSCP and ECN are set inside their bytes).
    SetFieldMasked {
        /// The field written.
        field: Field,
        /// The new bits.
        value: u128,
        /// Which bits are written.
        mask: u128,
    },
    /// Push an 802.1Q (0x8100) or 802.1ad (0x88a8) tag; the new tag copies the outer tag's
    /// VID and PCP when there is one, else VID 0 (set it with `SetField(VlanTci)`).
    PushVlan {
        /// Ethertype of the new tag.
        tpid: u16,
    },
    /// Remove the outer VLAN tag.
    PopVlan,
    /// Decrement the IPv4 TTL / IPv6 hop limit; a packet whose TTL would reach 0 is dropped
    /// and counted (`DropReason::TtlExceeded`).
    DecTtl,
    /// Process through a group.
    Group(GroupId),
    /// Choose the egress queue of the packet's next outputs (OpenFlow set_queue). Ports
    /// without egress queues ignore it; ids they do not configure use queue 0.
    SetQueue(u32),
    /// Back to the queue the packet entered the pipeline with (queue 0; Open vSwitch's
    /// `pop_queue`).
    PopQueue,
    /// Send to `port` on egress queue `queue`, the packet keeping its queue for later
    /// outputs (OpenFlow 1.0's enqueue). `port` may be [`PortNo::IN_PORT`].
    Enqueue {
        /// The port.
        port: PortNo,
        /// The queue on it.
        queue: u32,
    },
    /// Push an MPLS label stack entry (0x8847 or 0x8848); see [`mpls::push_mpls`].
    PushMpls {
        /// Ethertype of the MPLS packet.
        ethertype: u16,
    },
    /// Pop the outer MPLS entry of an MPLS packet; what follows it is `ethertype`. Later
    /// tables see the inner headers (the pipeline reads them again: recirculation).
    PopMpls {
        /// Ethertype of what follows.
        ethertype: u16,
    },
    /// Decrement the outer MPLS TTL; dropped (`TtlExceeded`) when it would reach zero.
    DecMplsTtl,
    /// OpenFlow 1.0's VLAN rewrites: write `value` under `mask` into the outer tag's TCI
    /// (the VID or the PCP bits); an untagged packet gets an 802.1Q tag first with `push`
    /// (`mod_vlan_vid`), is left alone without (`set_vlan_vid`).
    SetVlan {
        /// The new TCI bits.
        value: u16,
        /// Which bits (0x0fff: VID, 0xe000: PCP).
        mask: u16,
        /// Tag untagged packets.
        push: bool,
    },
    /// Connection tracking (`ct(...)`): the packet goes through the datapath's tracker in
    /// `ct.zone`, which sets its ct fields (and may commit, translate, set mark and label).
    /// With `table`, the tracked packet is looked up again from that table (recirculated)
    /// while the action list goes on with the packet as it was; without, the ct fields
    /// are set for later `ct` actions but later tables of this pass match them as cleared
    /// (as Open vSwitch does).
    Ct {
        /// What the tracker does.
        ct: CtAction,
        /// `table=`: where the tracked packet continues.
        table: Option<TableId>,
        /// `zone=FIELD[..]`: the zone is these 16 bits, read when the action runs (in a
        /// flow's walk of the tables), instead of `ct.zone`.
        zone_src: Option<Subfield>,
    },
    /// `ct_clear`: forget the packet's connection-tracking state.
    CtClear,

    // Nicira extensions.
    /// Copy `src`'s bits into `dst` (equal widths).
    Move {
        /// Read from.
        src: Subfield,
        /// Written.
        dst: Subfield,
    },
    /// Look the packet up in `table` (`None`: the flow's own table) as if it came in on
    /// `in_port` (`None`: its own), run the actions of the flow found, and go on; bounded
    /// as Open vSwitch bounds it (see `pipeline::xlate`).
    Resubmit {
        /// The ingress port the lookup sees.
        in_port: Option<PortNo>,
        /// The table.
        table: Option<TableId>,
    },
    /// Stop: no later action of this flow, of the flows that resubmitted to it, or of later
    /// tables runs.
    Exit,
    /// Output to the port whose number the bits hold (Open vSwitch's 16-bit port space:
    /// 0xfff8..=0xfffe are the reserved ports; a value above 0xffff sends nothing).
    OutputField(Subfield),
    /// Push the bits on the packet's stack.
    StackPush(Subfield),
    /// Pop the top of the packet's stack into the bits (nothing when it is empty).
    StackPop(Subfield),
    /// The next `len` actions of the list run on a copy of the packet: what they change
    /// is undone for the actions after them (Open vSwitch's `clone(...)`). Inside: no
    /// action that adds or removes a header, changes the queue or decrements a TTL (the
    /// daemon refuses them).
    Clone {
        /// How many of the following actions are the clone's.
        len: u16,
    },
    /// Write into `dst` the link (0..n_links) `algorithm` picks from a hash of `fields`
    /// (Open vSwitch's `multipath`; see [`multipath`]).
    Multipath {
        /// What is hashed.
        fields: multipath::HashFields,
        /// Hash basis.
        basis: u16,
        /// How the hash becomes a link.
        algorithm: multipath::Algorithm,
        /// Number of links, 1..=65536.
        n_links: u32,
        /// Where the link goes.
        dst: Subfield,
    },
    /// The flow is clause `clause` (0-based) of conjunction `id`, which has `n_clauses`
    /// clauses (Open vSwitch's `conjunction(id, k/n)`). A flow with these actions has no
    /// other: the classifier never returns it; a packet that matches one flow of every
    /// clause of `id` (all of one priority) is looked up again with `conj_id = id` (see
    /// `classifier::conj`).
    Conjunction {
        /// Conjunction id (what `conj_id` matches).
        id: u32,
        /// This flow's clause, `0..n_clauses`.
        clause: u8,
        /// Clauses of the conjunction, 2..=64.
        n_clauses: u8,
    },
}

/// The instructions of one flow, in OpenFlow 1.3 execution order:
/// meter, apply-actions, clear-actions, write-actions, write-metadata, goto-table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Instructions {
    /// Meter the packet first; packets the meter drops go no further.
    pub meter: Option<MeterId>,
    /// Actions applied immediately, in order.
    pub apply: Arc<[Action]>,
    /// Empty the packet's action set.
    pub clear_actions: bool,
    /// Add these to the packet's action set (empty: nothing), which runs when the pipeline
    /// ends (see `pipeline::actset`). Only the actions OpenFlow allows in an action set.
    pub write_actions: Arc<[Action]>,
    /// `metadata = (metadata & !mask) | (value & mask)`.
    pub write_metadata: Option<(u64, u64)>,
    /// Continue in a later table.
    pub goto_table: Option<TableId>,
    /// The userdata of the flow's `controller` actions, which they name by index.
    pub userdata: Arc<[Arc<[u8]>]>,
}

impl Instructions {
    /// Apply-actions only.
    pub fn actions(actions: impl Into<Arc<[Action]>>) -> Instructions {
        Instructions {
            apply: actions.into(),
            ..Instructions::default()
        }
    }

    /// True when any action sends the packet to `port` (for out_port filters), the
    /// action set's included.
    pub fn outputs_to(&self, port: PortNo) -> bool {
        self.apply
            .iter()
            .chain(self.write_actions.iter())
            .any(|a| match *a {
                Action::Output(p) | Action::Enqueue { port: p, .. } => p == port,
                _ => false,
            })
    }

    /// True when this is a flow of conjunctive clauses (its actions are all
    /// [`Action::Conjunction`]): the classifier treats it as a soft match.
    #[inline]
    pub fn is_conjunctive(&self) -> bool {
        !self.apply.is_empty()
            && self
                .apply
                .iter()
                .all(|a| matches!(a, Action::Conjunction { .. }))
    }

    /// True when any action sends the packet to `group` (for out_group filters), the
    /// action set's included.
    pub fn uses_group(&self, group: GroupId) -> bool {
        self.apply
            .iter()
            .chain(self.write_actions.iter())
            .any(|a| matches!(a, Action::Group(g) if *g == group))
    }
}

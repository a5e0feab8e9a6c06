//! Changes a controller makes: FLOW_MODs gathered into batches, GROUP_MOD, METER_MOD,
//! PACKET_OUT, PORT_MOD, TABLE_MOD.
//!
//! FLOW_MODs are queued as API updates ([`Batch`]) and written together by
//! [`Session::flush`]: one `Switch::write_with` of many updates (each applied whole or
//! refused whole, `CONTINUE_ON_ERROR`), one datapath publish, one store transaction with
//! deferred durability (the group commit makes it durable within the switch's window).
//! The connection flushes whenever its input is drained, before any other request is
//! answered, and at [`MAX_BATCH`] updates; so a BARRIER reply follows the application of
//! everything before it, and a refused FLOW_MOD's error precedes it.

use proto::ofapi;
use proto::ofapi::groups::GroupChange;
use proto::ofapi::meters::MeterChange;
use proto::openflow::error::{OfpError, bad_request, port_mod_failed, table_mod_failed};
use proto::openflow::flow::FlowMod;
use proto::openflow::group::GroupMod;
use proto::openflow::ids::{BufferId, TableId};
use proto::openflow::meter::MeterMod;
use proto::openflow::packet::PacketOut;
use proto::openflow::port::{PortMod, config};
use proto::openflow::switch::TableMod;
use proto::v1::{self, entity, update};

use super::errors::{Kind, of_error};
use super::session::Session;
use crate::error::ApiError;
use crate::switch::Durability;

/// Most updates written in one batch.
pub const MAX_BATCH: usize = 16384;

/// Queued flow updates and, for each, the start of the message it came from (for its
/// error).
#[derive(Debug, Default)]
pub struct Batch {
    updates: Vec<v1::Update>,
    reqs: Vec<Vec<u8>>,
    deletes: bool,
}

impl Batch {
    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.updates.is_empty()
    }
}

/// The first bytes of a request, as its error carries them.
fn head(msg: &[u8]) -> Vec<u8> {
    msg[..msg.len().min(proto::openflow::error_msg::ERROR_DATA_MAX)].to_vec()
}

/// The API error a refused update's status describes.
fn status_error(s: &v1::UpdateStatus) -> ApiError {
    ApiError {
        code: tonic::Code::from(s.code),
        field: s.field.clone(),
        message: s.message.clone(),
    }
}

fn delete(e: entity::Entity) -> v1::Update {
    v1::Update {
        r#type: update::Type::Delete as i32,
        entity: Some(v1::Entity { entity: Some(e) }),
    }
}

impl Session {
    /// Queues a FLOW_MOD (or refuses it).
    pub(super) fn flow_mod(&mut self, fm: &FlowMod<'_>, msg: &[u8], out: &mut Vec<u8>) {
        if self.is_slave() {
            self.error(bad_request::IS_SLAVE, msg, out);
            return;
        }
        match ofapi::flows::to_api(fm) {
            Ok(u) => {
                self.batch.deletes |= u.r#type == update::Type::Delete as i32;
                self.batch.updates.push(u);
                self.batch.reqs.push(head(msg));
                if fm.buffer_id != BufferId::NO_BUFFER {
                    // The flow is added; the packet it names does not exist (this switch
                    // buffers none), as Open vSwitch answers.
                    self.error(bad_request::BUFFER_UNKNOWN, msg, out);
                }
                if self.batch.updates.len() >= MAX_BATCH {
                    self.flush(out);
                }
            }
            Err(e) => self.error(e, msg, out),
        }
    }

    /// How many FLOW_MODs are queued.
    pub fn queued(&self) -> usize {
        self.batch.updates.len()
    }

    /// True when queued FLOW_MODs delete flows (the connection may hold them for the
    /// controller's next messages).
    pub fn holds_deletes(&self) -> bool {
        self.batch.deletes
    }

    /// Applies the queued FLOW_MODs; appends an error for each the switch refused.
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        if self.batch.is_empty() {
            return;
        }
        let Batch { updates, reqs, .. } = std::mem::take(&mut self.batch);
        let req = v1::WriteRequest {
            bridge: self.bridge.clone(),
            updates,
            atomicity: v1::Atomicity::ContinueOnError as i32,
        };
        match self.sw.write_with(req, Durability::Deferred) {
            Ok(resp) => {
                for s in resp.statuses.iter().filter(|s| s.code != 0) {
                    if let Some(r) = reqs.get(s.index as usize) {
                        self.error(of_error(Kind::Flow, &status_error(s)), r, out);
                    }
                }
            }
            Err(e) => {
                let err = of_error(Kind::Flow, &e);
                for r in &reqs {
                    self.error(err, r, out);
                }
            }
        }
    }

    /// Writes updates of one message all or none; deleting what is not there is no error.
    pub(super) fn apply(&self, kind: Kind, updates: Vec<v1::Update>) -> Result<(), OfpError> {
        if updates.is_empty() {
            return Ok(());
        }
        let deleting = updates
            .iter()
            .all(|u| u.r#type == update::Type::Delete as i32);
        let req = v1::WriteRequest {
            bridge: self.bridge.clone(),
            updates,
            atomicity: v1::Atomicity::AllOrNone as i32,
        };
        match self.sw.write_with(req, Durability::Deferred) {
            Ok(_) => Ok(()),
            Err(e) if deleting && e.code == tonic::Code::NotFound => Ok(()),
            Err(e) => Err(of_error(kind, &e)),
        }
    }

    /// The updates a GROUP_MOD asks for (every group for a delete of OFPG_ALL).
    pub(super) fn group_updates(&self, gm: &GroupMod<'_>) -> Result<Vec<v1::Update>, OfpError> {
        Ok(match ofapi::groups::to_api(gm)? {
            GroupChange::One(u) => vec![u],
            GroupChange::DeleteAll => self
                .read_entities(v1::read_filter::Filter::Groups(v1::GroupFilter::default()))
                .into_iter()
                .filter_map(|e| match e {
                    entity::Entity::Group(g) => Some(delete(entity::Entity::Group(v1::Group {
                        id: g.id,
                        ..Default::default()
                    }))),
                    _ => None,
                })
                .collect(),
        })
    }

    /// The updates a METER_MOD asks for (every meter for a delete of OFPM_ALL).
    pub(super) fn meter_updates(&self, mm: &MeterMod<'_>) -> Result<Vec<v1::Update>, OfpError> {
        Ok(match ofapi::meters::to_api(mm)? {
            MeterChange::One(u) => vec![u],
            MeterChange::DeleteAll => self
                .read_entities(v1::read_filter::Filter::Meters(v1::MeterFilter::default()))
                .into_iter()
                .filter_map(|e| match e {
                    entity::Entity::Meter(m) => Some(delete(entity::Entity::Meter(v1::Meter {
                        id: m.id,
                        ..Default::default()
                    }))),
                    _ => None,
                })
                .collect(),
        })
    }

    /// Every entity a read filter selects on the session's bridge.
    pub(super) fn read_entities(&self, f: v1::read_filter::Filter) -> Vec<entity::Entity> {
        let req = v1::ReadRequest {
            bridge: self.bridge.clone(),
            filters: vec![v1::ReadFilter { filter: Some(f) }],
        };
        self.sw
            .read(&req)
            .map(|rs| {
                rs.into_iter()
                    .flat_map(|r| r.entities)
                    .filter_map(|e| e.entity)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// GROUP_MOD.
    pub(super) fn group_mod(
        &mut self,
        gm: &GroupMod<'_>,
        _msg: &[u8],
        _out: &mut Vec<u8>,
    ) -> Result<(), OfpError> {
        if self.is_slave() {
            return Err(bad_request::IS_SLAVE);
        }
        let updates = self.group_updates(gm)?;
        self.apply(Kind::Group, updates)
    }

    /// METER_MOD.
    pub(super) fn meter_mod(
        &mut self,
        mm: &MeterMod<'_>,
        _msg: &[u8],
        _out: &mut Vec<u8>,
    ) -> Result<(), OfpError> {
        if self.is_slave() {
            return Err(bad_request::IS_SLAVE);
        }
        let updates = self.meter_updates(mm)?;
        self.apply(Kind::Meter, updates)
    }

    /// PACKET_OUT.
    pub(super) fn packet_out(&mut self, po: &PacketOut<'_>) -> Result<(), OfpError> {
        if self.is_slave() {
            return Err(bad_request::IS_SLAVE);
        }
        let p = ofapi::ports::packet_out(po, &self.bridge, self.local())?;
        self.sw
            .packet_out(&p)
            .map_err(|e| of_error(Kind::PacketOut, &e))
    }

    /// PORT_MOD: the port must exist (`BAD_PORT`) and the address match (`BAD_HW_ADDR`, as
    /// OpenFlow 1.3 requires); the configuration bits under the mask change (a bit OpenFlow
    /// 1.3 does not define is `BAD_CONFIG`), and the controllers hear a PORT_STATUS.
    pub(super) fn port_mod(&mut self, pm: &PortMod) -> Result<(), OfpError> {
        if self.is_slave() {
            return Err(bad_request::IS_SLAVE);
        }
        let local = self.local();
        let no = local.from_wire(pm.port_no);
        let ports = self.sw.list_ports(&self.bridge).unwrap_or_default();
        let p = ports
            .iter()
            .find(|p| p.port_no == no)
            .ok_or(port_mod_failed::BAD_PORT)?;
        if p.hw_addr.len() == 6 && p.hw_addr[..] != pm.hw_addr[..] {
            return Err(port_mod_failed::BAD_HW_ADDR);
        }
        if pm.mask & !config::ALL != 0 {
            return Err(port_mod_failed::BAD_CONFIG);
        }
        self.sw
            .mod_port(&self.bridge, no, pm.config, pm.mask)
            .map_err(|_| port_mod_failed::BAD_PORT)?;
        Ok(())
    }

    /// TABLE_MOD: OpenFlow 1.3 deprecates every configuration bit; a real table (or ALL)
    /// and no other bit is accepted.
    pub(super) fn table_mod(&mut self, tm: &TableMod) -> Result<(), OfpError> {
        if self.is_slave() {
            return Err(bad_request::IS_SLAVE);
        }
        let n = self.sw.get_bridge(&self.bridge).map_or(0, |b| b.n_tables);
        if tm.table_id != TableId::ALL && u32::from(tm.table_id.0) >= n {
            return Err(table_mod_failed::BAD_TABLE);
        }
        if tm.config & !3 != 0 {
            return Err(table_mod_failed::BAD_CONFIG);
        }
        Ok(())
    }
}

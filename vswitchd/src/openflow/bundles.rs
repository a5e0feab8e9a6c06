//! Bundles (ONF EXT-230 in OpenFlow 1.3, what `ovs-ofctl --bundle` sends): messages added
//! to a bundle are checked when they arrive and applied together at commit, as one
//! all-or-nothing write that is on disk before the commit reply.
//!
//! Open vSwitch's rules: OPEN of an existing id is `BAD_ID` (and drops that bundle); ADD to
//! an unknown id opens it; ADD to a closed bundle is `BUNDLE_CLOSED`, with other flags
//! `BAD_FLAGS` (both drop the bundle); an inner message must have the ADD's xid and be a
//! FLOW_MOD or GROUP_MOD (`MSG_UNSUP` otherwise); a commit that fails sends the failing
//! message's own error (answering its ADD) and then `MSG_FAILED`, and the bundle is gone
//! whatever the outcome. Errors of OpenFlow 1.4's bundle type are ONF experimenter errors
//! in 1.3 (`OfpError::for_version`).

use proto::ofapi;
use proto::openflow::bundle::{BundleAdd, BundleControl, ctrl, flags};
use proto::openflow::error::{OfpError, bad_request, bundle_failed};
use proto::openflow::list::List;
use proto::openflow::message::{self, Message};
use proto::v1;

use super::errors::{Kind, of_error};
use super::session::{Session, xid_of};
use crate::switch::Durability;

/// Flags a bundle may have.
const KNOWN_FLAGS: u16 = flags::ATOMIC | flags::ORDERED;
/// Most messages in one bundle.
pub const MAX_BUNDLE_MESSAGES: usize = 1 << 20;

/// One open or closed bundle.
#[derive(Debug)]
pub struct Bundle {
    flags: u16,
    closed: bool,
    entries: Vec<Entry>,
}

/// One message of a bundle: its updates, its kind, and the start of the ADD that carried
/// it (what its error answers).
#[derive(Debug)]
struct Entry {
    kind: Kind,
    updates: Vec<v1::Update>,
    add: Vec<u8>,
}

/// The index `i` of a field path starting `updates[i]`.
fn update_index(field: &str) -> Option<usize> {
    let rest = field.strip_prefix("updates[")?;
    rest[..rest.find(']')?].parse().ok()
}

impl Session {
    fn bundle_reply(&self, b: &BundleControl<'_>, xid: u32, out: &mut Vec<u8>) {
        let r = BundleControl {
            bundle_id: b.bundle_id,
            ctrl_type: b.ctrl_type | 1,
            flags: 0,
            properties: List::default(),
        };
        self.send(&Message::BundleControl(r), xid, out);
    }

    /// BUNDLE_CONTROL.
    pub(super) fn bundle_control(
        &mut self,
        b: &BundleControl<'_>,
        _msg: &[u8],
        xid: u32,
        out: &mut Vec<u8>,
    ) -> Result<(), OfpError> {
        if self.is_slave() {
            return Err(bad_request::IS_SLAVE);
        }
        let id = b.bundle_id;
        match b.ctrl_type {
            ctrl::OPEN_REQUEST => {
                if self.bundles.remove(&id).is_some() {
                    return Err(bundle_failed::BAD_ID);
                }
                if b.flags & !KNOWN_FLAGS != 0 {
                    return Err(bundle_failed::BAD_FLAGS);
                }
                self.bundles.insert(
                    id,
                    Bundle {
                        flags: b.flags,
                        closed: false,
                        entries: Vec::new(),
                    },
                );
            }
            ctrl::CLOSE_REQUEST => {
                let bd = self.bundles.get_mut(&id).ok_or(bundle_failed::BAD_ID)?;
                if bd.closed || bd.flags != b.flags {
                    let e = if bd.closed {
                        bundle_failed::BUNDLE_CLOSED
                    } else {
                        bundle_failed::BAD_FLAGS
                    };
                    self.bundles.remove(&id);
                    return Err(e);
                }
                bd.closed = true;
            }
            ctrl::COMMIT_REQUEST => self.bundle_commit(id, b.flags, out)?,
            ctrl::DISCARD_REQUEST => {
                self.bundles.remove(&id).ok_or(bundle_failed::BAD_ID)?;
            }
            _ => return Err(bundle_failed::BAD_TYPE),
        }
        self.bundle_reply(b, xid, out);
        Ok(())
    }

    /// BUNDLE_ADD_MESSAGE.
    pub(super) fn bundle_add(
        &mut self,
        b: &BundleAdd<'_>,
        msg: &[u8],
        _out: &mut Vec<u8>,
    ) -> Result<(), OfpError> {
        if self.is_slave() {
            return Err(bad_request::IS_SLAVE);
        }
        if xid_of(b.message) != xid_of(msg) {
            return Err(bundle_failed::MSG_BAD_XID);
        }
        if b.message.first() != msg.first() {
            return Err(bad_request::BAD_VERSION);
        }
        let (_, inner) = message::parse(b.message)?;
        let (kind, updates) = match inner {
            Message::FlowMod(fm) => (Kind::Flow, vec![ofapi::flows::to_api(&fm)?]),
            Message::GroupMod(gm) => (Kind::Group, self.group_updates(&gm)?),
            _ => return Err(bundle_failed::MSG_UNSUP),
        };
        let id = b.bundle_id;
        let bd = self.bundles.entry(id).or_insert(Bundle {
            flags: b.flags,
            closed: false,
            entries: Vec::new(),
        });
        if bd.closed || bd.flags != b.flags || bd.entries.len() >= MAX_BUNDLE_MESSAGES {
            let e = if bd.closed {
                bundle_failed::BUNDLE_CLOSED
            } else if bd.flags != b.flags {
                bundle_failed::BAD_FLAGS
            } else {
                bundle_failed::MSG_TOO_MANY
            };
            self.bundles.remove(&id);
            return Err(e);
        }
        bd.entries.push(Entry {
            kind,
            updates,
            add: msg[..msg.len().min(proto::openflow::error_msg::ERROR_DATA_MAX)].to_vec(),
        });
        Ok(())
    }

    /// Applies a bundle as one all-or-nothing write, durable before the reply.
    fn bundle_commit(&mut self, id: u32, fl: u16, out: &mut Vec<u8>) -> Result<(), OfpError> {
        let bd = self.bundles.remove(&id).ok_or(bundle_failed::BAD_ID)?;
        if bd.flags != fl {
            return Err(bundle_failed::BAD_FLAGS);
        }
        self.flush(out);
        let mut owner = Vec::new();
        let mut updates = Vec::new();
        let mut meta = Vec::with_capacity(bd.entries.len());
        for (i, e) in bd.entries.into_iter().enumerate() {
            owner.extend(std::iter::repeat_n(i, e.updates.len()));
            updates.extend(e.updates);
            meta.push((e.kind, e.add));
        }
        if updates.is_empty() {
            return Ok(());
        }
        let req = v1::WriteRequest {
            bridge: self.bridge.clone(),
            updates,
            atomicity: v1::Atomicity::AllOrNone as i32,
        };
        match self.sw.write_with(req, Durability::Immediate) {
            Ok(_) => Ok(()),
            Err(e) => {
                if let Some((kind, add)) = update_index(&e.field)
                    .and_then(|i| owner.get(i))
                    .and_then(|&k| meta.get(k))
                {
                    self.error(of_error(*kind, &e), add, out);
                }
                Err(bundle_failed::MSG_FAILED)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_from_field_paths() {
        assert_eq!(update_index("updates[12].flow.match"), Some(12));
        assert_eq!(update_index("updates[0]"), Some(0));
        assert_eq!(update_index("bridge"), None);
    }
}

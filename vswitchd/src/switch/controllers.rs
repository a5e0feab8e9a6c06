//! A bridge's OpenFlow controllers and fail mode: configured here (stored with the bridge),
//! served by the OpenFlow channel (`crate::openflow`), which watches
//! [`Switch::controller_config`] for changes and reports each target's state back
//! ([`Switch::report_controllers`]) for `GetBridge` and connect/disconnect events.

use std::sync::Arc;

use proto::v1::{self, stream_message_response as smr};
use tokio::sync::watch;

use super::Switch;
use super::model::{bridge_mut, port_descs};
use super::target::ControllerSpec;
use crate::error::ApiError;

/// The live state of one controller target, kept by the OpenFlow channel.
pub trait TargetStatus: Send + Sync + std::fmt::Debug {
    /// The target, as configured.
    fn target(&self) -> &str;
    /// Its state now.
    fn status(&self) -> v1::ControllerStatus;
}

impl Switch {
    /// Replaces a bridge's controllers (an empty list removes them all). Every target is
    /// checked first; a refused list changes nothing.
    pub fn set_controller(&self, req: v1::SetControllerRequest) -> Result<v1::Bridge, ApiError> {
        for (i, c) in req.controllers.iter().enumerate() {
            ControllerSpec::parse(c, i)?;
            if req.controllers[..i].iter().any(|o| o.target == c.target) {
                return Err(ApiError::invalid(
                    format!("controllers[{i}].target"),
                    format!("{} is listed twice", c.target),
                ));
            }
        }
        let rec = self.update_bridge_record(&req.bridge, |r| {
            r.controllers = req.controllers.clone();
            Ok(())
        })?;
        self.controllers_changed.send_modify(|g| *g += 1);
        Ok(rec)
    }

    /// Sets what a bridge does without a controller.
    pub fn set_fail_mode(&self, req: v1::SetFailModeRequest) -> Result<v1::Bridge, ApiError> {
        if v1::FailMode::try_from(req.fail_mode).is_err() {
            return Err(ApiError::invalid("fail_mode", "unknown fail mode"));
        }
        let rec = self.update_bridge_record(&req.bridge, |r| {
            r.fail_mode = req.fail_mode;
            Ok(())
        })?;
        self.controllers_changed.send_modify(|g| *g += 1);
        Ok(rec)
    }

    /// Changes a bridge's stored record; durable before it is applied.
    fn update_bridge_record(
        &self,
        bridge: &str,
        change: impl FnOnce(&mut v1::Bridge) -> Result<(), ApiError>,
    ) -> Result<v1::Bridge, ApiError> {
        let mut bridges = self.bridges.lock();
        let b = bridge_mut(&mut bridges, bridge).map_err(|e| ApiError {
            field: "bridge".into(),
            ..e
        })?;
        let mut rec = b.rec.clone();
        change(&mut rec)?;
        let mut tx = self.store_txn()?;
        tx.put_bridge(&rec)?;
        tx.commit()?;
        b.rec = rec;
        let mut out = b.rec.clone();
        out.ports = port_descs(b);
        out.fail_open = b.dp.snapshot().pipeline.fail_open();
        drop(bridges);
        self.fill_controller_status(&mut out);
        Ok(out)
    }

    /// Makes `bridge` fail open (every packet to NORMAL, its flows kept) or stop; not
    /// stored (the OpenFlow channel decides it from its connections). True if it changed.
    pub fn set_fail_open(&self, bridge: &str, on: bool) -> Result<bool, ApiError> {
        let bridges = self.bridges.lock();
        let b = bridges
            .get(bridge)
            .ok_or_else(|| ApiError::not_found("bridge", format!("no bridge {bridge}")))?;
        if b.dp.snapshot().pipeline.fail_open() == on {
            return Ok(false);
        }
        b.dp.transaction(|t| -> Result<(), ApiError> {
            t.set_fail_open(on);
            Ok(())
        })?;
        Ok(true)
    }

    /// A receiver whose value changes whenever a bridge's controllers or fail mode change,
    /// or a bridge comes or goes (the OpenFlow channel reconciles on each change).
    pub fn controller_config(&self) -> watch::Receiver<u64> {
        self.controllers_changed.subscribe()
    }

    /// Tells the controller watchers that bridges changed.
    pub(super) fn bridges_changed(&self) {
        self.controllers_changed.send_modify(|g| *g += 1);
    }

    /// Records where the state of a bridge's controller targets is kept (what `GetBridge`
    /// shows, read live from each).
    pub fn report_controllers(&self, bridge: &str, status: Vec<Arc<dyn TargetStatus>>) {
        let mut m = self.controller_status.lock();
        if status.is_empty() {
            m.remove(bridge);
        } else {
            m.insert(bridge.to_string(), status);
        }
    }

    /// Sends a controller connect/disconnect event to the stream subscribers.
    pub fn controller_event(&self, ev: v1::ControllerConnection) {
        let bridge = ev.bridge.clone();
        self.emit(&bridge, smr::Update::Controller(ev));
    }

    /// Fills `controller_status` of a bridge record from the targets' live states, one per
    /// configured target in order (a target not served yet: not connected).
    pub(super) fn fill_controller_status(&self, r: &mut v1::Bridge) {
        let m = self.controller_status.lock();
        let known = m.get(&r.name);
        r.controller_status = r
            .controllers
            .iter()
            .map(|c| {
                known
                    .and_then(|v| v.iter().find(|s| s.target() == c.target))
                    .map(|s| s.status())
                    .unwrap_or_else(|| v1::ControllerStatus {
                        target: c.target.clone(),
                        ..Default::default()
                    })
            })
            .collect();
    }
}

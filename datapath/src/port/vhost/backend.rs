//! The vhost-user protocol, backend side: one session per frontend connection.
//!
//! What: `run` is a port's control thread: it accepts (server mode) or makes (client mode,
//! retrying with back-off) one connection at a time and hands each to rust-vmm's
//! `BackendReqHandler`, which reads, validates and answers the messages and calls the
//! [`Session`] here for their meaning. The session keeps the frontend's configuration per
//! queue and, whenever a queue becomes (or stops being) ready — started by its kick, enabled,
//! its addresses known, guest memory mapped — builds (or takes down) its [`Vring`] in the
//! port's shared slot. When the connection ends, for whatever reason, every ring is taken
//! down and the session (guest memory mappings, eventfds) is dropped.
//!
//! Thread-safety: the session lives on the control thread; it touches the poll threads'
//! state only through the slots' mutexes and the epoll sets.

// fcntl and poll on descriptors. Every unsafe block says why.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use vhost::VhostUserMemoryRegionBase;
use vhost::vhost_user::message::{
    VhostTransferStateDirection, VhostTransferStatePhase, VhostUserConfigFlags, VhostUserInflight,
    VhostUserLog, VhostUserMemoryRegion, VhostUserProtocolFeatures, VhostUserShMemConfig,
    VhostUserSharedMsg, VhostUserSingleMemoryRegion, VhostUserVringAddrFlags, VhostUserVringState,
};
use vhost::vhost_user::{
    Backend, BackendReqHandler, Error as VuError, GpuBackend, Result as VuResult,
    VhostUserBackendReqHandlerMut,
};

use super::Shared;
use super::memory::GuestMemory;
use super::ring::{RingAddrs, RingFeatures, Vring};

/// virtio-net: the device merges receive buffers.
pub const VIRTIO_NET_F_MRG_RXBUF: u64 = 1 << 15;
/// virtio-net: a control queue (handled by the frontend).
pub const VIRTIO_NET_F_CTRL_VQ: u64 = 1 << 17;
/// virtio-net: several queue pairs.
pub const VIRTIO_NET_F_MQ: u64 = 1 << 22;
/// Indirect descriptor tables.
pub const VIRTIO_RING_F_INDIRECT_DESC: u64 = 1 << 28;
/// The `used_event` / `avail_event` indices.
pub const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;
/// vhost-user protocol features exist.
pub const VHOST_USER_F_PROTOCOL_FEATURES: u64 = 1 << 30;
/// Virtio 1.0.
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;
/// Buffers are used in the order they were made available.
pub const VIRTIO_F_IN_ORDER: u64 = 1 << 35;

/// Every virtio feature a port offers.
pub const FEATURES: u64 = VIRTIO_NET_F_MRG_RXBUF
    | VIRTIO_NET_F_CTRL_VQ
    | VIRTIO_NET_F_MQ
    | VIRTIO_RING_F_INDIRECT_DESC
    | VIRTIO_RING_F_EVENT_IDX
    | VHOST_USER_F_PROTOCOL_FEATURES
    | VIRTIO_F_VERSION_1
    | VIRTIO_F_IN_ORDER;

/// Longest wait between two connection attempts in client mode.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// What the frontend configured for one virtqueue.
#[derive(Debug, Default)]
struct VqConf {
    addrs: RingAddrs,
    addr_set: bool,
    base: u16,
    kick: Option<Arc<File>>,
    call: Option<Arc<File>>,
    /// Started by a kick descriptor, stopped by GET_VRING_BASE.
    started: bool,
    enabled: bool,
}

/// One frontend connection's state.
#[derive(Debug)]
pub struct Session {
    shared: Arc<Shared>,
    owned: bool,
    features: u64,
    protocol_features: u64,
    mem: Option<Arc<GuestMemory>>,
    /// One per virtqueue, plus the control queue's (configured, never run).
    vqs: Vec<VqConf>,
}

fn invalid(why: &'static str) -> VuError {
    VuError::InvalidOperation(why)
}

impl Session {
    fn new(shared: Arc<Shared>) -> Session {
        let n = 2 * shared.n_qp + 1;
        Session {
            shared,
            owned: false,
            features: 0,
            protocol_features: 0,
            mem: None,
            vqs: (0..n).map(|_| VqConf::default()).collect(),
        }
    }

    fn ring_features(&self) -> RingFeatures {
        let modern = self.features & (VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MRG_RXBUF) != 0;
        RingFeatures {
            event_idx: self.features & VIRTIO_RING_F_EVENT_IDX != 0,
            mergeable: self.features & VIRTIO_NET_F_MRG_RXBUF != 0,
            hdr_len: if modern { 12 } else { 10 },
            in_order: self.features & VIRTIO_F_IN_ORDER != 0,
            prefetch: true,
        }
    }

    fn vq(&mut self, index: u32) -> VuResult<&mut VqConf> {
        self.vqs
            .get_mut(index as usize)
            .ok_or(VuError::InvalidParam)
    }

    /// Brings virtqueue `i`'s ring in line with its configuration: started when it is
    /// started, enabled, addressed and memory is mapped; taken down (its progress kept in
    /// `base`) otherwise. A rebuilt ring (new memory, new call descriptor) continues where
    /// the old one was.
    fn refresh(&mut self, i: usize) -> VuResult<()> {
        if i >= self.shared.vqs.len() {
            return Ok(()); // the control queue: the frontend's business
        }
        let features = self.ring_features();
        let mem = self.mem.clone();
        let c = &mut self.vqs[i];
        let mut slot = self.shared.vqs[i].lock();
        let old = slot.ring.take();
        if let Some(o) = &old {
            c.base = o.last_avail;
        }
        slot.kick = if i % 2 == 1 { c.kick.clone() } else { None };
        let mut res = Ok(());
        if let (true, true, true, Some(mem)) = (c.started, c.enabled, c.addr_set, mem) {
            match Vring::new(mem, &c.addrs, c.base, features, c.call.clone()) {
                Ok(mut r) => {
                    if let Some(o) = &old {
                        r.last_avail = o.last_avail;
                        r.used_idx = o.used_idx;
                    }
                    r.set_kicks(false);
                    slot.ring = Some(r);
                }
                Err(e) => {
                    if let Some(held) = self.shared.log_limit.allow() {
                        tracing::warn!(port = %self.shared.name, queue = i, error = %e, held_back = held, "vhost-user queue cannot start");
                    }
                    res = Err(VuError::ReqHandlerError(std::io::Error::other(e)));
                }
            }
        }
        res
    }

    fn refresh_all(&mut self) -> VuResult<()> {
        let mut res = Ok(());
        for i in 0..self.vqs.len() {
            if let Err(e) = self.refresh(i) {
                res = Err(e);
            }
        }
        res
    }

    /// Takes every ring down and forgets the frontend's configuration (a reset, or the end
    /// of the connection).
    fn reset(&mut self) {
        for (i, c) in self.vqs.iter_mut().enumerate() {
            c.started = false;
            if i % 2 == 1 {
                self.shared.set_wake(i / 2, c.kick.as_deref(), None);
            }
        }
        for slot in self.shared.vqs.iter() {
            let mut s = slot.lock();
            s.ring = None;
            s.kick = None;
        }
        let n = self.vqs.len();
        self.vqs = (0..n).map(|_| VqConf::default()).collect();
        self.mem = None;
        self.features = 0;
    }
}

impl VhostUserBackendReqHandlerMut for Session {
    fn set_owner(&mut self) -> VuResult<()> {
        if self.owned {
            return Err(invalid("already owned"));
        }
        self.owned = true;
        Ok(())
    }

    fn reset_owner(&mut self) -> VuResult<()> {
        self.reset();
        self.owned = false;
        Ok(())
    }

    fn reset_device(&mut self) -> VuResult<()> {
        self.reset();
        Ok(())
    }

    fn get_features(&mut self) -> VuResult<u64> {
        Ok(FEATURES)
    }

    fn set_features(&mut self, features: u64) -> VuResult<()> {
        if features & !FEATURES != 0 {
            return Err(VuError::InvalidParam);
        }
        self.features = features;
        if features & VHOST_USER_F_PROTOCOL_FEATURES == 0 {
            // Without protocol features rings start enabled (vhost-user "Ring states").
            for c in &mut self.vqs {
                c.enabled = true;
            }
        }
        self.refresh_all()
    }

    fn set_mem_table(
        &mut self,
        ctx: &[VhostUserMemoryRegion],
        files: Vec<File>,
        _postcopy_listening: Option<bool>,
    ) -> VuResult<Option<Vec<VhostUserMemoryRegionBase>>> {
        let mem = GuestMemory::map(ctx, files).map_err(|e| {
            if let Some(held) = self.shared.log_limit.allow() {
                tracing::warn!(port = %self.shared.name, error = %e, held_back = held, "vhost-user memory table refused");
            }
            VuError::ReqHandlerError(std::io::Error::other(e))
        })?;
        self.mem = Some(Arc::new(mem));
        // Rings point into memory: rebuild the started ones on the new mappings (the old
        // ones are unmapped when the last ring using them is gone).
        self.refresh_all()?;
        Ok(None)
    }

    fn set_vring_num(&mut self, index: u32, num: u32) -> VuResult<()> {
        let n = u16::try_from(num)
            .ok()
            .filter(|n| n.is_power_of_two() && *n <= super::ring::MAX_QUEUE_SIZE)
            .ok_or(VuError::InvalidParam)?;
        self.vq(index)?.addrs.size = n;
        Ok(())
    }

    fn set_vring_addr(
        &mut self,
        index: u32,
        _flags: VhostUserVringAddrFlags,
        descriptor: u64,
        used: u64,
        available: u64,
        _log: u64,
    ) -> VuResult<()> {
        let c = self.vq(index)?;
        c.addrs.desc_uva = descriptor;
        c.addrs.used_uva = used;
        c.addrs.avail_uva = available;
        c.addr_set = true;
        self.refresh(index as usize)
    }

    fn set_vring_base(&mut self, index: u32, base: u32) -> VuResult<()> {
        let b = u16::try_from(base).map_err(|_| VuError::InvalidParam)?;
        self.vq(index)?.base = b;
        Ok(())
    }

    fn get_vring_base(&mut self, index: u32) -> VuResult<VhostUserVringState> {
        self.vq(index)?.started = false;
        self.refresh(index as usize)?;
        let base = self.vq(index)?.base;
        Ok(VhostUserVringState::new(index, u32::from(base)))
    }

    fn set_vring_kick(&mut self, index: u8, fd: Option<File>) -> VuResult<()> {
        let i = usize::from(index);
        let new = fd.map(Arc::new);
        if let Some(f) = &new {
            set_nonblocking(f);
        }
        let c = self.vqs.get_mut(i).ok_or(VuError::InvalidParam)?;
        if i % 2 == 1 {
            self.shared
                .set_wake(i / 2, c.kick.as_deref(), new.as_deref());
        }
        c.kick = new;
        c.started = true;
        self.refresh(i)
    }

    fn set_vring_call(&mut self, index: u8, fd: Option<File>) -> VuResult<()> {
        let i = usize::from(index);
        self.vqs.get_mut(i).ok_or(VuError::InvalidParam)?.call = fd.map(Arc::new);
        self.refresh(i)
    }

    fn set_vring_err(&mut self, index: u8, _fd: Option<File>) -> VuResult<()> {
        // Errors are counted, not signalled: the descriptor is closed.
        self.vqs
            .get(usize::from(index))
            .map(|_| ())
            .ok_or(VuError::InvalidParam)
    }

    fn get_protocol_features(&mut self) -> VuResult<VhostUserProtocolFeatures> {
        Ok(VhostUserProtocolFeatures::MQ | VhostUserProtocolFeatures::REPLY_ACK)
    }

    fn set_protocol_features(&mut self, features: u64) -> VuResult<()> {
        let ours = (VhostUserProtocolFeatures::MQ | VhostUserProtocolFeatures::REPLY_ACK).bits();
        if features & !ours != 0 {
            return Err(VuError::InvalidParam);
        }
        self.protocol_features = features;
        Ok(())
    }

    fn get_queue_num(&mut self) -> VuResult<u64> {
        Ok(self.shared.n_qp as u64)
    }

    fn set_vring_enable(&mut self, index: u32, enable: bool) -> VuResult<()> {
        self.vq(index)?.enabled = enable;
        self.refresh(index as usize)
    }

    fn get_config(
        &mut self,
        _offset: u32,
        _size: u32,
        _flags: VhostUserConfigFlags,
    ) -> VuResult<Vec<u8>> {
        Err(invalid("no device configuration space"))
    }

    fn set_config(
        &mut self,
        _offset: u32,
        _buf: &[u8],
        _flags: VhostUserConfigFlags,
    ) -> VuResult<()> {
        Err(invalid("no device configuration space"))
    }

    fn set_backend_req_fd(&mut self, _backend: Backend) {}

    fn set_gpu_socket(&mut self, _gpu_backend: GpuBackend) -> VuResult<()> {
        Err(invalid("not a GPU"))
    }

    fn get_shared_object(&mut self, _uuid: VhostUserSharedMsg) -> VuResult<File> {
        Err(invalid("no shared objects"))
    }

    fn get_inflight_fd(
        &mut self,
        _inflight: &VhostUserInflight,
    ) -> VuResult<(VhostUserInflight, File)> {
        Err(invalid("no inflight tracking"))
    }

    fn set_inflight_fd(&mut self, _inflight: &VhostUserInflight, _file: File) -> VuResult<()> {
        Err(invalid("no inflight tracking"))
    }

    fn get_max_mem_slots(&mut self) -> VuResult<u64> {
        Err(invalid("memory slots are not offered"))
    }

    fn add_mem_region(
        &mut self,
        _region: &VhostUserSingleMemoryRegion,
        _fd: File,
        _postcopy_listening: Option<bool>,
    ) -> VuResult<Option<VhostUserMemoryRegionBase>> {
        Err(invalid("memory slots are not offered"))
    }

    fn remove_mem_region(&mut self, _region: &VhostUserSingleMemoryRegion) -> VuResult<()> {
        Err(invalid("memory slots are not offered"))
    }

    fn set_device_state_fd(
        &mut self,
        _direction: VhostTransferStateDirection,
        _phase: VhostTransferStatePhase,
        _fd: File,
    ) -> VuResult<Option<File>> {
        Err(invalid("no device state transfer"))
    }

    fn check_device_state(&mut self) -> VuResult<()> {
        Err(invalid("no device state transfer"))
    }

    fn get_shmem_config(&mut self) -> VuResult<VhostUserShMemConfig> {
        Err(invalid("no shared memory regions"))
    }

    fn set_log_base(&mut self, _log: &VhostUserLog, _file: File) -> VuResult<()> {
        Err(invalid("no dirty logging (live migration) support"))
    }
}

fn set_nonblocking(f: &File) {
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a descriptor `f` keeps open; no pointers.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
}

/// Waits until `fd` is readable, the port is stopping, or `timeout` passes. True when `fd`
/// is readable.
fn wait(shared: &Shared, fd: Option<i32>, timeout: Option<Duration>) -> bool {
    let mut fds = [
        libc::pollfd {
            fd: shared.stop_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: fd.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
    // SAFETY: `fds` is a live array of two pollfd; a negative fd is ignored by poll.
    unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
    !shared.stopping() && fds[1].revents != 0
}

/// Errors after which the byte stream cannot be trusted (or is gone).
fn fatal(e: &VuError) -> bool {
    matches!(
        e,
        VuError::Disconnected
            | VuError::PartialMessage
            | VuError::SocketBroken(_)
            | VuError::SocketError(_)
            | VuError::InvalidMessage
            | VuError::OversizedMsg
            | VuError::IncorrectFds
            | VuError::InvalidSocketFd(_)
    )
}

/// Serves one connection until it ends or the port stops.
fn serve(shared: &Arc<Shared>, stream: UnixStream) {
    let session = Arc::new(std::sync::Mutex::new(Session::new(Arc::clone(shared))));
    let mut handler = BackendReqHandler::from_stream(stream, Arc::clone(&session));
    *shared.conn.lock() = handler.try_clone_connection().ok();
    shared.guest.connects.fetch_add(1, Ordering::Relaxed);
    shared.connected.store(true, Ordering::Release);
    // Dropping the port shuts the connection down after setting `stopping`; checking it
    // after publishing the connection closes the race with a drop in between.
    while !shared.stopping() {
        match handler.handle_request() {
            Ok(()) => {}
            Err(e) if fatal(&e) => {
                if !matches!(e, VuError::Disconnected) && !shared.stopping() {
                    if let Some(held) = shared.log_limit.allow() {
                        tracing::warn!(port = %shared.name, error = %e, held_back = held, "vhost-user connection closed on a protocol error");
                    }
                    shared.guest.protocol_errors.fetch_add(1, Ordering::Relaxed);
                }
                break;
            }
            Err(e) => {
                shared.guest.protocol_errors.fetch_add(1, Ordering::Relaxed);
                if let Some(held) = shared.log_limit.allow() {
                    tracing::warn!(port = %shared.name, error = %e, held_back = held, "vhost-user request refused");
                }
            }
        }
    }
    *shared.conn.lock() = None;
    shared.connected.store(false, Ordering::Release);
    if let Ok(mut s) = session.lock() {
        s.reset();
    }
    shared.guest.disconnects.fetch_add(1, Ordering::Relaxed);
}

/// The control thread of a port: serves frontends one connection at a time until the port
/// is dropped. `listener` is the server socket (server mode); without it, the thread
/// connects to `path` (client mode).
pub(crate) fn run(shared: Arc<Shared>, path: PathBuf, listener: Option<UnixListener>) {
    let mut backoff = Duration::from_millis(50);
    while !shared.stopping() {
        let stream = match &listener {
            Some(l) => {
                if !wait(&shared, Some(l.as_raw_fd()), None) {
                    continue;
                }
                match l.accept() {
                    Ok((s, _)) => s,
                    Err(_) => continue,
                }
            }
            None => match UnixStream::connect(&path) {
                Ok(s) => {
                    backoff = Duration::from_millis(50);
                    s
                }
                Err(_) => {
                    wait(&shared, None, Some(backoff));
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
        };
        if stream.set_nonblocking(false).is_err() {
            continue;
        }
        serve(&shared, stream);
    }
    if listener.is_some() {
        let _ = std::fs::remove_file(&path);
    }
}

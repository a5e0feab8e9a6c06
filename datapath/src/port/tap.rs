//! TAP ports: a kernel TAP device the switch creates, its frames read and written through
//! the device's file descriptor.
//!
//! What: [`TapPort::create`] opens `/dev/net/tun`, attaches a TAP device of the given name
//! (`IFF_TAP | IFF_NO_PI`, created if missing, removed by the kernel when the port is
//! dropped unless it was made persistent elsewhere), sets it non-blocking and brings the link
//! up. `rx_burst` reads frames straight into pool buffers (one `read` per frame, stopping when
//! the device has no more); `tx_burst` writes each frame. A frame that might not have fit a
//! buffer is dropped and counted, never forwarded truncated; frames the kernel dropped
//! because the device's queue filled before we read it are counted too (its `tx_dropped`,
//! as `kernel_rx_dropped` and in `rx_dropped`). The file descriptor is exposed so a poll
//! thread can wait on it when idle.
//!
//! Thread-safety: reads and writes on one fd are atomic per frame in the kernel; the port is
//! `Send + Sync`, and one poll thread polls it.

// The kernel interface: open/ioctl/read/write on a TAP fd. Every unsafe block says why.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::{Batch, Port, PortCounters, PortStats};
use crate::packet::{BufPool, MAX_FRAME};

/// `TUNSETIFF` (`_IOW('T', 202, int)`).
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// `struct ifreq` as the TUN and interface-flag ioctls use it: a name and a short of flags,
/// padded to the kernel's 40 bytes.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl IfReq {
    fn new(name: &str) -> IfReq {
        let mut r = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: 0,
            _pad: [0; 22],
        };
        for (d, s) in r.name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        r
    }
}

/// Why a TAP port could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// Interface names are 1 to 15 bytes without `/`, NUL or whitespace.
    #[error("{0:?} is not a valid interface name (1-15 bytes, no '/', NUL or spaces)")]
    BadName(String),
    /// `/dev/net/tun` could not be opened.
    #[error("cannot open /dev/net/tun: {0} (is the tun module loaded, and are we root?)")]
    Open(std::io::Error),
    /// The kernel refused to create or attach the device.
    #[error("cannot create TAP device {name}: {source}")]
    Attach {
        /// The device.
        name: String,
        /// The kernel's answer.
        source: std::io::Error,
    },
    /// The link could not be brought up.
    #[error("cannot bring {name} up: {source}")]
    Up {
        /// The device.
        name: String,
        /// The kernel's answer.
        source: std::io::Error,
    },
}

/// A TAP device port.
#[derive(Debug)]
pub struct TapPort {
    name: String,
    ifindex: Option<u32>,
    /// Set when the kernel says the device behind the descriptor is gone (EBADFD).
    gone: std::sync::atomic::AtomicBool,
    fd: OwnedFd,
    counters: PortCounters,
}

fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && !name
            .bytes()
            .any(|b| b == b'/' || b == 0 || b.is_ascii_whitespace())
}

/// Sets `IFF_UP` on interface `name` (in the caller's network namespace).
fn link_up(name: &str) -> std::io::Result<()> {
    // SAFETY: socket() takes no pointers; the result is checked before use and owned below.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `s` is a fresh descriptor we own; OwnedFd closes it exactly once.
    let sock = unsafe { OwnedFd::from_raw_fd(s) };
    let mut req = IfReq::new(name);
    // SAFETY: `req` is a valid, NUL-terminated (name < IFNAMSIZ) ifreq that lives across
    // the call; SIOCGIFFLAGS writes only its flags field.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    req.flags |= libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS only reads the ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl TapPort {
    /// Creates (or attaches to) the TAP device `name` and brings it up.
    pub fn create(name: &str) -> Result<TapPort, TapError> {
        if !valid_ifname(name) {
            return Err(TapError::BadName(name.to_string()));
        }
        let path = CString::new("/dev/net/tun").map_err(|e| TapError::Open(e.into()))?;
        // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
        let fd = unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(TapError::Open(std::io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a fresh descriptor we own; OwnedFd closes it exactly once.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut req = IfReq::new(name);
        req.flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: `req` is a valid ifreq (name NUL-terminated, checked length) living across
        // the call; TUNSETIFF reads the name and flags and may write the name back.
        if unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF, &mut req) } < 0 {
            return Err(TapError::Attach {
                name: name.to_string(),
                source: std::io::Error::last_os_error(),
            });
        }
        link_up(name).map_err(|source| TapError::Up {
            name: name.to_string(),
            source,
        })?;
        Ok(TapPort {
            name: name.to_string(),
            ifindex: super::ifindex_of(name),
            gone: std::sync::atomic::AtomicBool::new(false),
            fd,
            counters: PortCounters::default(),
        })
    }
}

impl AsRawFd for TapPort {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Port for TapPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx_fd(&self, _queue: usize) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    fn ifindex(&self) -> Option<u32> {
        self.ifindex
    }

    fn link_lost(&self) -> bool {
        self.gone.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn rx_burst(&self, _queue: usize, batch: &mut Batch, pool: &mut BufPool) -> usize {
        let (mut n, mut bytes, mut dropped) = (0usize, 0u64, 0u64);
        while !batch.is_full() {
            let Some(mut b) = pool.get() else {
                // No buffer: leave the frames in the kernel's queue for the next poll.
                break;
            };
            let got = b.receive_with(|area| {
                // SAFETY: `area` is a writable slice of `area.len()` bytes that outlives the
                // call; read writes at most that many bytes into it.
                let r = unsafe {
                    libc::read(self.fd.as_raw_fd(), area.as_mut_ptr().cast(), area.len())
                };
                if r < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(r as usize)
                }
            });
            match got {
                Ok(0) => {
                    pool.put(b);
                    break;
                }
                // A frame filling the whole area may have been cut: never forward it.
                Ok(len) if len >= MAX_FRAME => {
                    dropped += 1;
                    pool.put(b);
                }
                Ok(len) => {
                    bytes += len as u64;
                    n += 1;
                    batch.push(b);
                }
                Err(e) => {
                    // EAGAIN: nothing more now. EBADFD: the device was deleted under us
                    // (the daemon notices through `link_lost` and re-creates it).
                    if e.raw_os_error() == Some(libc::EBADFD) {
                        self.gone.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    pool.put(b);
                    break;
                }
            }
        }
        if n > 0 {
            self.counters.rx(n as u64, bytes);
        }
        if dropped > 0 {
            self.counters.rx_dropped(dropped);
        }
        n
    }

    fn tx_burst(&self, batch: &mut Batch, pool: &mut BufPool) {
        let (mut sent, mut bytes, mut dropped) = (0u64, 0u64, 0u64);
        for b in batch.drain(..) {
            let data = b.data();
            // SAFETY: `data` is a readable slice of `data.len()` bytes that outlives the call.
            let r = unsafe { libc::write(self.fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
            if r == data.len() as isize {
                sent += 1;
                bytes += data.len() as u64;
            } else {
                // EAGAIN (queue full) or EIO (link down): counted, never retried per packet.
                dropped += 1;
            }
            pool.put(b);
        }
        self.counters.tx(sent, bytes);
        if dropped > 0 {
            self.counters.tx_dropped(dropped);
        }
    }

    /// Ours plus the kernel's: frames the device dropped because we did not read them in
    /// time (its queue was full) are `rx_dropped`.
    fn stats(&self) -> PortStats {
        let mut s = self.counters.read();
        s.rx_dropped += self.kernel_dropped().unwrap_or(0);
        s
    }

    fn extra_stats(&self, out: &mut Vec<(&'static str, u64)>) {
        if let Some(n) = self.kernel_dropped() {
            out.push(("kernel_rx_dropped", n));
        }
    }
}

impl TapPort {
    /// What the kernel dropped on its way to us: the device's `tx_dropped` (it transmits
    /// to the switch), read from sysfs while the device is ours and in this namespace (its
    /// counters start with it: the port creates it).
    fn kernel_dropped(&self) -> Option<u64> {
        let dir = format!("/sys/class/net/{}", self.name);
        let read = |f: &str| -> Option<u64> {
            std::fs::read_to_string(format!("{dir}/{f}"))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        let index = read("ifindex")?;
        (Some(index) == self.ifindex.map(u64::from))
            .then(|| read("statistics/tx_dropped"))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused_before_the_kernel_sees_them() {
        for n in ["", "sixteen-chars-xx", "a/b", "a b"] {
            assert!(
                matches!(TapPort::create(n), Err(TapError::BadName(_))),
                "{n:?}"
            );
        }
    }

    #[test]
    fn ifreq_has_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
    }
}

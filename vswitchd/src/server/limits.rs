//! What the API server allows each client, with defaults that keep one careless or hostile
//! client from taking the daemon's memory or descriptors, and the descriptor budget they
//! come from.
//!
//! Memory: a request is refused as soon as its length prefix says it is over
//! `max_message_bytes`; a connection buffers at most `max_streams_per_connection` requests
//! of that size, and a request whose body stops arriving for `request_timeout` closes its
//! connection. Descriptors: `RLIMIT_NOFILE` is raised to its hard limit at start, and
//! connections may use what is left after [`SWITCH_DESCRIPTORS`] (ports, store, threads); of
//! those, `reserved_unix_connections` are only for the unix socket, so a flood over TCP
//! never locks out the local operator, and a unix client at the limit displaces the
//! connection that has been idle longest.
//!
//! Thread-safety: plain values.

use std::time::Duration;

/// Descriptors kept for everything but API connections (ports and their queues, the store,
/// threads, the runtime).
pub const SWITCH_DESCRIPTORS: u64 = 256;

/// Server limits; see the module comment and `docs/control-plane.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once, over every listener.
    pub max_connections: usize,
    /// Of those, how many only the unix socket may use.
    pub reserved_unix_connections: usize,
    /// Largest request message, in bytes (its length prefix is checked before any of it
    /// is buffered).
    pub max_message_bytes: usize,
    /// Requests one connection may have open at once (HTTP/2 `MAX_CONCURRENT_STREAMS`).
    pub max_streams_per_connection: u32,
    /// Time for a new connection's TLS handshake, and on the unix socket for the HTTP/2
    /// connection preface.
    pub handshake_timeout: Duration,
    /// A connection with no request in flight for this long is closed (zero: never).
    pub idle_timeout: Duration,
    /// A connection whose request body stops arriving for this long is closed.
    pub request_timeout: Duration,
    /// HTTP/2 keepalive: ping a quiet peer this often and close the connection when a ping
    /// is not answered within the same time; also TCP keepalive on TCP connections.
    pub keepalive: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 512,
            reserved_unix_connections: 32,
            max_message_bytes: 16 << 20,
            max_streams_per_connection: 16,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            request_timeout: Duration::from_secs(30),
            keepalive: Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// Checks the limits make sense together.
    pub fn check(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err("--max-connections must be at least 1".into());
        }
        if self.reserved_unix_connections > self.max_connections {
            return Err(format!(
                "--reserved-unix-connections {} is more than --max-connections {}",
                self.reserved_unix_connections, self.max_connections
            ));
        }
        if self.max_message_bytes < 1024 {
            return Err("--max-message-bytes must be at least 1024".into());
        }
        if self.max_streams_per_connection == 0 {
            return Err("--max-streams-per-connection must be at least 1".into());
        }
        for (flag, d) in [
            ("--handshake-timeout-s", self.handshake_timeout),
            ("--request-timeout-s", self.request_timeout),
            ("--keepalive-s", self.keepalive),
        ] {
            if d.is_zero() {
                return Err(format!("{flag} must be at least 1"));
            }
        }
        Ok(())
    }

    /// These limits within a descriptor limit of `nofile`: connections get what the switch
    /// does not need ([`SWITCH_DESCRIPTORS`]), the unix reserve at most half of that.
    pub fn within_descriptors(&self, nofile: u64) -> Limits {
        let room = nofile.saturating_sub(SWITCH_DESCRIPTORS).max(8);
        let max = self
            .max_connections
            .min(usize::try_from(room).unwrap_or(usize::MAX));
        Limits {
            max_connections: max,
            reserved_unix_connections: self.reserved_unix_connections.min(max / 2),
            ..self.clone()
        }
    }

    /// Connections the TCP listeners may have open at once.
    pub fn max_tcp_connections(&self) -> usize {
        self.max_connections - self.reserved_unix_connections
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard one (at most the kernel's `nr_open`); returns
/// the soft limit in force afterwards.
pub fn raise_nofile() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let want = hard.min(nr_open);
    if want > soft && setrlimit(Resource::RLIMIT_NOFILE, want, hard).is_ok() {
        return want;
    }
    soft
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_descriptor_limit_shrinks_connections_and_keeps_a_unix_reserve() {
        let l = Limits::default();
        assert_eq!(l.check(), Ok(()));
        assert_eq!(l.within_descriptors(1 << 20), l);
        let small = l.within_descriptors(1024);
        assert_eq!(small.max_connections, 512);
        let tiny = l.within_descriptors(300);
        assert_eq!(tiny.max_connections, 44);
        assert_eq!(tiny.reserved_unix_connections, 22);
        assert_eq!(tiny.max_tcp_connections(), 22);
        let none = l.within_descriptors(10);
        assert_eq!(none.max_connections, 8);
        assert!(
            Limits {
                reserved_unix_connections: 600,
                ..Limits::default()
            }
            .check()
            .is_err()
        );
    }

    #[test]
    fn raising_nofile_never_lowers_it() {
        let (soft, _) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        assert!(raise_nofile() >= soft);
    }
}

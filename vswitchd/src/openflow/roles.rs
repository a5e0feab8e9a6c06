//! Controller roles of one bridge (OpenFlow 1.3 ROLE_REQUEST): every connection starts
//! EQUAL; a MASTER request demotes the bridge's other master to SLAVE; MASTER and SLAVE
//! requests carry a generation id, and one older than the newest seen (in 64-bit
//! wrap-around order, as the specification says) is refused as `STALE`.
//!
//! Thread-safety: shared by the connections of a bridge behind one mutex, touched only on
//! role requests and for each async message's filter (a read of one word).

use std::collections::HashMap;

use parking_lot::Mutex;
use proto::openflow::error::{OfpError, role_request_failed};
use proto::openflow::switch::role;

/// The roles on one bridge.
#[derive(Debug, Default)]
pub struct Roles {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    generation: Option<u64>,
    next_id: u64,
    of: HashMap<u64, u32>,
}

impl Roles {
    /// Registers a new connection (role EQUAL); returns its id.
    pub fn join(&self) -> u64 {
        let mut i = self.inner.lock();
        i.next_id += 1;
        let id = i.next_id;
        i.of.insert(id, role::EQUAL);
        id
    }

    /// Forgets a connection.
    pub fn leave(&self, id: u64) {
        self.inner.lock().of.remove(&id);
    }

    /// A connection's role (OFPCR_ROLE_*).
    pub fn role(&self, id: u64) -> u32 {
        self.inner
            .lock()
            .of
            .get(&id)
            .copied()
            .unwrap_or(role::EQUAL)
    }

    /// Handles a role request; returns the role now held and the generation id to report.
    pub fn request(&self, id: u64, want: u32, generation: u64) -> Result<(u32, u64), OfpError> {
        let mut i = self.inner.lock();
        match want {
            role::NOCHANGE => {}
            role::EQUAL => {
                i.of.insert(id, role::EQUAL);
            }
            role::MASTER | role::SLAVE => {
                if let Some(g) = i.generation
                    && (generation.wrapping_sub(g) as i64) < 0
                {
                    return Err(role_request_failed::STALE);
                }
                i.generation = Some(generation);
                if want == role::MASTER {
                    for (other, r) in i.of.iter_mut() {
                        if *other != id && *r == role::MASTER {
                            *r = role::SLAVE;
                        }
                    }
                }
                i.of.insert(id, want);
            }
            _ => return Err(role_request_failed::BAD_ROLE),
        }
        let now = i.of.get(&id).copied().unwrap_or(role::EQUAL);
        Ok((now, i.generation.unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_master_demotes_the_old_and_stale_generations_are_refused() {
        let r = Roles::default();
        let (a, b) = (r.join(), r.join());
        assert_eq!(r.request(a, role::MASTER, 5), Ok((role::MASTER, 5)));
        assert_eq!(r.request(b, role::MASTER, 6), Ok((role::MASTER, 6)));
        assert_eq!(r.role(a), role::SLAVE);
        assert_eq!(
            r.request(a, role::MASTER, 4),
            Err(role_request_failed::STALE)
        );
        assert_eq!(r.request(a, role::NOCHANGE, 0), Ok((role::SLAVE, 6)));
        assert_eq!(r.request(a, 7, 0), Err(role_request_failed::BAD_ROLE));
        // Generation ids wrap: u64::MAX is older than 1.
        let w = Roles::default();
        let c = w.join();
        assert!(w.request(c, role::SLAVE, u64::MAX).is_ok());
        assert!(w.request(c, role::MASTER, 1).is_ok());
        r.leave(a);
        assert_eq!(r.role(b), role::MASTER);
    }
}

//! Logging from the datapath: through `tracing`, never on the per-packet path (packets are
//! counted by reason instead), and rate-limited where an event can repeat.
//!
//! What: a [`RateLimit`] lets one kind of event through at most once per period and says
//! how many it held back in between, so a misbehaving peer (a guest sending bad requests in
//! a loop) costs one line a second, not a flood.
//!
//! Thread-safety: `RateLimit` is `Sync`; it takes a mutex, so use it on control paths only.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// At most one event per period.
#[derive(Debug)]
pub struct RateLimit {
    period: Duration,
    /// When the last event went through, and how many were held back since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimit {
    /// One event per `period`.
    pub const fn new(period: Duration) -> RateLimit {
        RateLimit {
            period,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(n)` when this event may be logged (`n`: events held back since the last one
    /// logged), `None` when it is held back.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock();
        match s.0 {
            Some(last) if now.duration_since(last) < self.period => {
                s.1 += 1;
                None
            }
            _ => {
                let held = s.1;
                *s = (Some(now), 0);
                Some(held)
            }
        }
    }
}

impl Default for RateLimit {
    /// One event a second.
    fn default() -> Self {
        RateLimit::new(Duration::from_secs(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_period_and_a_count_of_the_rest() {
        let r = RateLimit::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert_eq!(r.allow_at(t0), Some(0));
        assert_eq!(r.allow_at(t0 + Duration::from_millis(10)), None);
        assert_eq!(r.allow_at(t0 + Duration::from_millis(999)), None);
        assert_eq!(r.allow_at(t0 + Duration::from_millis(1000)), Some(2));
        assert_eq!(r.allow_at(t0 + Duration::from_millis(1500)), None);
        assert_eq!(r.allow_at(t0 + Duration::from_millis(3000)), Some(1));
    }
}

//! The packet-in rate limit of one controller connection (`controller_rate_limit`,
//! `controller_burst_limit`): an integer token bucket.
//!
//! Invariant: `0 <= tokens <= burst * NS` where one packet costs `NS` (10^9) and a second
//! adds `rate * NS`; so over any interval of `t` seconds at most `burst + rate * t` packets
//! pass.

use std::time::Instant;

const NS: u64 = 1_000_000_000;

/// A token bucket of packets.
#[derive(Debug, Clone)]
pub struct Limiter {
    rate: u64,
    cap: u64,
    tokens: u64,
    last: Instant,
}

impl Limiter {
    /// `rate` packets per second, at most `burst` at once (a full bucket to start).
    pub fn new(rate: u32, burst: u32) -> Limiter {
        let cap = u64::from(burst.max(1)) * NS;
        Limiter {
            rate: u64::from(rate),
            cap,
            tokens: cap,
            last: Instant::now(),
        }
    }

    /// Whether one more packet may go at `now` (and takes its token if so).
    pub fn allow(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last);
        self.last = now;
        let dt_ns = u64::try_from(dt.as_nanos()).unwrap_or(u64::MAX);
        self.tokens = self
            .tokens
            .saturating_add(self.rate.saturating_mul(dt_ns))
            .min(self.cap);
        if self.tokens >= NS {
            self.tokens -= NS;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let mut l = Limiter::new(100, 25);
        let t0 = l.last;
        let passed = (0..100).filter(|_| l.allow(t0)).count();
        assert_eq!(passed, 25, "the burst, then nothing at the same instant");
        let later = t0 + Duration::from_millis(100);
        let passed = (0..100).filter(|_| l.allow(later)).count();
        assert_eq!(passed, 10, "100/s for 100 ms");
    }

    proptest! {
        /// Over any run of steps at most burst + rate * elapsed packets pass.
        #[test]
        fn never_exceeds_burst_plus_rate(
            rate in 1u32..100_000,
            burst in 1u32..1000,
            steps in prop::collection::vec((0u64..20_000_000, 0usize..50), 1..50),
        ) {
            let mut l = Limiter::new(rate, burst);
            let t0 = l.last;
            let mut now = t0;
            let mut passed = 0u64;
            for (dt, n) in steps {
                now += Duration::from_nanos(dt);
                passed += (0..n).filter(|_| l.allow(now)).count() as u64;
                let elapsed = now.duration_since(t0).as_nanos() as u64;
                let bound = u64::from(burst) + u64::from(rate) * elapsed / NS + 1;
                prop_assert!(passed <= bound, "{passed} > {bound}");
            }
        }
    }
}

//! A bridge's poll threads: the loop each runs (poll, spin, back off, sleep), its CPU
//! pinning and cycle accounting, and the baseline `pmd-stats-clear` keeps.
//!
//! What: [`PmdThread::spawn`] starts one thread over a [`Datapath`]'s poll-mode state;
//! [`PmdThread::stop`] joins it. This file stands alone (it imports nothing else from the
//! switch) so the loop can move into the datapath as a whole.
//!
//! Thread-safety: a `PmdThread` is owned by its bridge; the thread it runs shares only the
//! stop flag and the counters (single writer, see `datapath::stats`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use datapath::pipeline::Datapath;

use crate::error::ApiError;

/// One poll thread of a bridge.
#[derive(Debug)]
pub(super) struct PmdThread {
    pub(super) cpu: Option<usize>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) counters: Arc<datapath::stats::PmdCounters>,
    pub(super) handle: JoinHandle<()>,
}

impl PmdThread {
    /// Starts poll thread `index` of `dp`, pinned to `cpu`.
    pub(super) fn spawn(
        dp: &Datapath,
        bridge: &str,
        index: usize,
        cpu: Option<usize>,
        max_sleep: Duration,
    ) -> Result<PmdThread, ApiError> {
        let mut pmd = dp.new_pmd_at(index);
        let counters = pmd.counters();
        let stop = Arc::new(AtomicBool::new(false));
        let name = bridge.to_string();
        let stop2 = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name(format!("pmd{index}-{bridge}"))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    let mut set = nix::sched::CpuSet::new();
                    let pinned = set.set(cpu).and_then(|()| {
                        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
                    });
                    if let Err(e) = pinned {
                        tracing::warn!(bridge = %name, cpu, "poll thread cannot be pinned: {e}");
                    }
                }
                let counters = pmd.counters();
                let mut idle: u32 = 0;
                // Cycles, not the clock: reading the TSC costs a few nanoseconds per poll.
                let mut last = datapath::stats::cycles();
                while !stop2.load(Ordering::Relaxed) {
                    let got = pmd.poll_once();
                    let now = datapath::stats::cycles();
                    let spent = now.wrapping_sub(last);
                    last = now;
                    if got > 0 {
                        counters.busy_cycles.add(spent);
                        idle = 0;
                        continue;
                    }
                    counters.idle_cycles.add(spent);
                    idle = idle.saturating_add(1);
                    if idle <= 256 || max_sleep.is_zero() {
                        std::hint::spin_loop();
                        continue;
                    }
                    // A backing-off thread holds no snapshot: ports removed meanwhile are
                    // freed at once.
                    pmd.release_snapshot();
                    if pmd.rxqs_empty() {
                        // Nothing to poll: a thread without rx queues barely wakes.
                        std::thread::park_timeout(Duration::from_millis(20));
                    } else {
                        // Back off: 1 us doubling up to the maximum sleep, waiting on the
                        // ports' descriptors where they have them (traffic wakes the
                        // thread at once), else sleeping. Counted as idle time next round.
                        let exp = (idle - 256).min(20);
                        let d = Duration::from_micros(1u64 << exp).min(max_sleep);
                        if !pmd.wait_rx(d) {
                            std::thread::park_timeout(d);
                        }
                        // The wait is idle time, not part of the next (busy) poll.
                        let now = datapath::stats::cycles();
                        counters.idle_cycles.add(now.wrapping_sub(last));
                        last = now;
                    }
                }
            })
            .map_err(|e| ApiError::internal(format!("spawning poll thread: {e}")))?;
        Ok(PmdThread {
            cpu,
            stop,
            counters,
            handle,
        })
    }

    /// Stops the thread, waits for it, and forgets its counters.
    pub(super) fn stop(self, dp: &Datapath) {
        self.stop.store(true, Ordering::Release);
        self.handle.thread().unpark();
        let _ = self.handle.join();
        dp.remove_pmd(&self.counters);
    }
}

/// Baseline of a poll thread's counters at the last `pmd-stats-clear`.
#[derive(Debug, Clone, Default)]
pub(super) struct PmdBaseline {
    pub(super) rx: u64,
    pub(super) emc: u64,
    pub(super) mf: u64,
    pub(super) slow: u64,
    pub(super) installed: u64,
    pub(super) tx: u64,
    /// Cycles.
    pub(super) busy: u64,
    pub(super) idle: u64,
    pub(super) batches: u64,
    pub(super) mf_full: u64,
    pub(super) mf_removed: u64,
    pub(super) flushes: u64,
    pub(super) drops: Vec<u64>,
}

/// The CPUs this process may run on.
pub(super) fn usable_cpus() -> Result<Vec<usize>, ApiError> {
    let allowed = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map_err(|e| ApiError::internal(format!("reading the CPU affinity: {e}")))?;
    Ok((0..nix::sched::CpuSet::count())
        .filter(|&c| allowed.is_set(c).unwrap_or(false))
        .collect())
}

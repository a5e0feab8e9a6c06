//! A poll thread: the loop that runs one [`Pmd`] until told to stop.
//!
//! What: [`PmdThread::spawn`] starts poll thread `index` of a [`Datapath`], optionally pinned
//! to one CPU. The loop polls its rx queues; after 256 empty polls in a row it backs off,
//! waiting up to 1 µs, doubling up to `max_sleep`, on the ports' descriptors where they have
//! them (traffic wakes it at once) and sleeping otherwise; a thread with no rx queue barely
//! wakes (20 ms). `max_sleep` zero keeps it spinning, as OVS-DPDK's PMDs do. Every poll's
//! cycles ([`crate::stats::cycles`]) are counted as busy (the poll received packets) or
//! idle (it did not, or the thread waited).
//!
//! Thread-safety: a `PmdThread` is the daemon's handle; the loop owns its `Pmd` and is the
//! only writer of its counters. [`PmdThread::stop`] waits for the loop to end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::datapath::Datapath;
use super::pmd::Pmd;
use crate::stats::{PmdCounters, PmdCounts, cycles};

/// Empty polls in a row before the thread starts backing off.
const SPIN_POLLS: u32 = 256;
/// How long a thread with no rx queue sleeps between looks at its assignment.
const NO_RXQ_SLEEP: Duration = Duration::from_millis(20);

/// A running poll thread of a datapath.
#[derive(Debug)]
pub struct PmdThread {
    index: usize,
    cpu: Option<usize>,
    stop: Arc<AtomicBool>,
    counters: Arc<PmdCounters>,
    handle: JoinHandle<()>,
}

impl PmdThread {
    /// Starts poll thread `index` of `dp` (it polls the rx queues the snapshot assigns to
    /// that index: see [`super::Txn::set_pmd_count`]), pinned to `cpu` when given, backing
    /// off up to `max_sleep` when idle. The thread is named `pmd<index>-<name>`. Failing to
    /// pin is logged, and the thread runs unpinned.
    pub fn spawn(
        dp: &Datapath,
        name: &str,
        index: usize,
        cpu: Option<usize>,
        max_sleep: Duration,
    ) -> std::io::Result<PmdThread> {
        let pmd = dp.new_pmd_at(index);
        let counters = pmd.counters();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let bridge = name.to_string();
        let handle = std::thread::Builder::new()
            .name(format!("pmd{index}-{name}"))
            .spawn(move || {
                if let Some(cpu) = cpu
                    && let Err(e) = pin_to(cpu)
                {
                    tracing::warn!(bridge, cpu, error = %e, "poll thread cannot pin to its cpu");
                }
                poll_loop(pmd, &stop2, max_sleep);
            });
        let handle = match handle {
            Ok(h) => h,
            Err(e) => {
                dp.remove_pmd(&counters);
                return Err(e);
            }
        };
        Ok(PmdThread {
            index,
            cpu,
            stop,
            counters,
            handle,
        })
    }

    /// Its index among the datapath's poll threads.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The CPU it is pinned to, if any.
    pub fn cpu(&self) -> Option<usize> {
        self.cpu
    }

    /// Its live counters.
    pub fn counters(&self) -> &Arc<PmdCounters> {
        &self.counters
    }

    /// Its counters as read now (a baseline for `pmd-stats-clear`, or the values to show).
    pub fn counts(&self) -> PmdCounts {
        self.counters.read()
    }

    /// Stops the thread, waits for it, and forgets its counters.
    pub fn stop(self, dp: &Datapath) {
        self.stop.store(true, Ordering::Release);
        self.handle.thread().unpark();
        let _ = self.handle.join();
        dp.remove_pmd(&self.counters);
    }
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) -> nix::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
}

/// The CPUs this process may run on (where poll threads may be pinned).
pub fn usable_cpus() -> std::io::Result<Vec<usize>> {
    let allowed = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map_err(std::io::Error::from)?;
    Ok((0..nix::sched::CpuSet::count())
        .filter(|&c| allowed.is_set(c).unwrap_or(false))
        .collect())
}

/// Polls until `stop`: spin while there is traffic or was recently, then back off.
fn poll_loop(mut pmd: Pmd, stop: &AtomicBool, max_sleep: Duration) {
    let counters = pmd.counters();
    let mut idle: u32 = 0;
    // Cycles, not the clock: reading the TSC costs a few nanoseconds per poll.
    let mut last = cycles();
    while !stop.load(Ordering::Relaxed) {
        let got = pmd.poll_once();
        let now = cycles();
        let spent = now.wrapping_sub(last);
        last = now;
        if got > 0 {
            counters.busy_cycles.add(spent);
            idle = 0;
            continue;
        }
        counters.idle_cycles.add(spent);
        idle = idle.saturating_add(1);
        if idle <= SPIN_POLLS || max_sleep.is_zero() {
            std::hint::spin_loop();
            continue;
        }
        back_off(&mut pmd, idle - SPIN_POLLS, max_sleep);
        // The wait is idle time, not part of the next (busy) poll.
        let now = cycles();
        counters.idle_cycles.add(now.wrapping_sub(last));
        last = now;
    }
}

/// One back-off step, the `n`-th in a row: 1 µs doubling up to `max_sleep`, on the ports'
/// descriptors where they have them, else asleep.
fn back_off(pmd: &mut Pmd, n: u32, max_sleep: Duration) {
    // A backing-off thread holds no snapshot: ports removed meanwhile are freed at once.
    pmd.release_snapshot();
    if pmd.rxqs_empty() {
        // Nothing to poll: a thread without rx queues barely wakes.
        std::thread::park_timeout(NO_RXQ_SLEEP);
        return;
    }
    let d = back_off_wait(n, max_sleep);
    if !pmd.wait_rx(d) {
        std::thread::park_timeout(d);
    }
}

/// How long the `n`-th back-off step in a row waits (`n` from 1).
fn back_off_wait(n: u32, max_sleep: Duration) -> Duration {
    Duration::from_micros(1u64 << n.min(20)).min(max_sleep)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pipeline::DatapathConfig;

    #[test]
    fn back_off_doubles_from_two_microseconds_up_to_the_maximum() {
        let max = Duration::from_micros(1000);
        assert_eq!(back_off_wait(1, max), Duration::from_micros(2));
        assert_eq!(back_off_wait(2, max), Duration::from_micros(4));
        assert_eq!(back_off_wait(9, max), Duration::from_micros(512));
        assert_eq!(back_off_wait(10, max), max);
        assert_eq!(back_off_wait(u32::MAX, max), max);
    }

    #[test]
    fn a_thread_registers_counts_idle_time_and_unregisters_when_stopped() {
        let (dp, _pi) = Datapath::new(DatapathConfig::default());
        let t = PmdThread::spawn(&dp, "br", 0, None, Duration::from_micros(100)).unwrap();
        assert_eq!(t.index(), 0);
        assert_eq!(t.cpu(), None);
        assert_eq!(dp.pmd_counters().len(), 1);
        // No rx queue: the thread polls, then sleeps; its polls count as idle.
        let t0 = std::time::Instant::now();
        while t.counts().idle_cycles == 0 {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "no idle cycles counted"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(t.counts().busy_cycles, 0);
        t.stop(&dp);
        assert!(dp.pmd_counters().is_empty());
    }

    #[test]
    fn pinning_leaves_the_thread_on_that_cpu_alone() {
        let cpu = *usable_cpus().unwrap().last().unwrap();
        let on = std::thread::spawn(move || {
            pin_to(cpu).unwrap();
            let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
            (0..nix::sched::CpuSet::count())
                .filter(|&c| set.is_set(c).unwrap_or(false))
                .collect::<Vec<_>>()
        })
        .join()
        .unwrap();
        assert_eq!(on, vec![cpu]);
    }
}

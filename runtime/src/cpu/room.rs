//! How many of a team's threads the machine has room for: the CPUs this process may run on,
//! less the CPU time other processes take on them, measured over the last [`WINDOW`].
//!
//! Why: beside a busy process, two spinning threads on two cores wait for each other whenever
//! the OS deschedules one, and a step takes longer than on one thread (on a 2-core EPYC beside
//! one busy loop, the 784 MLP step: 2.2 ms on two threads, 1.7 ms on one, both means). So a
//! team uses one thread per CPU that other processes leave free, and all of them again once
//! the others are gone.
//!
//! Linux: the busy time of the CPUs in the affinity mask (`/proc/stat`, clock ticks) less this
//! process's own CPU time (`getrusage`) is what the others took. Elsewhere, or when either
//! cannot be read, every thread is used.

use std::time::{Duration, Instant};

/// How often the room is measured: long enough for `/proc/stat`'s 10 ms ticks to add up to a
/// clear share (40 ticks on 2 CPUs), short enough to follow a job that starts or ends.
pub const WINDOW: Duration = Duration::from_millis(200);

/// The threads a team may use now, remeasured once a window.
#[derive(Debug, Default)]
pub struct Room {
    /// When the room was last measured (or tried: a failed reading waits a window too, so a
    /// machine without `/proc/stat` does not retry it on every fork).
    measured: Option<Instant>,
    /// The last reading, to compare the next one with.
    last: Option<Usage>,
    /// Threads of the last measurement; `None` before the first or after a failed one (all of
    /// them).
    active: Option<usize>,
    /// A fixed answer instead of a measurement (tests).
    pub(crate) fixed: Option<usize>,
}

/// A reading of the CPUs' use at one instant; two of them give the load of other processes.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    at: Instant,
    /// CPUs of the affinity mask.
    pub cpus: usize,
    /// Busy time of those CPUs, in seconds.
    busy: f64,
    /// This process's CPU time, in seconds.
    own: f64,
}

impl Usage {
    /// The CPUs' use now; `None` outside Linux or when `/proc/stat`, the affinity mask or
    /// `getrusage` cannot be read.
    pub fn now() -> Option<Usage> {
        measure(Instant::now())
    }

    /// CPUs other processes kept busy on average since `earlier` (0 to `cpus`).
    pub fn others_since(&self, earlier: &Usage) -> f64 {
        let seconds = self.at.duration_since(earlier.at).as_secs_f64();
        if seconds <= 0.0 {
            return 0.0;
        }
        (((self.busy - earlier.busy) - (self.own - earlier.own)) / seconds).clamp(0.0, self.cpus as f64)
    }
}

impl Room {
    /// How many of `threads` threads to use at `now`: remeasured when a window has passed since
    /// the last measurement.
    pub fn threads(&mut self, threads: usize, now: Instant) -> usize {
        if let Some(n) = self.fixed {
            return n.clamp(1, threads);
        }
        if self.measured.is_none_or(|t| now.duration_since(t) >= WINDOW) {
            self.measured = Some(now);
            let sample = measure(now);
            self.active = match (&sample, &self.last) {
                (Some(s), Some(last)) => Some(active_threads(threads, s.cpus, s.others_since(last))),
                _ => None,
            };
            self.last = sample;
        }
        self.active.unwrap_or(threads)
    }
}

/// Threads to use of `threads` when other processes keep `others` of `cpus` CPUs busy: one
/// per CPU they leave at least half free, at least one. (On an idle 2-core machine `others`
/// measures 0–0.15, beside one busy loop 0.67–1.)
pub fn active_threads(threads: usize, cpus: usize, others: f64) -> usize {
    let free = cpus as f64 - others;
    (free.round().max(1.0) as usize).clamp(1, threads.max(1))
}

/// Busy seconds of the CPUs in `allowed` from the text of `/proc/stat`: user, nice, system,
/// irq, softirq and steal ticks (guest time is inside user), over `ticks` per second.
pub fn busy_seconds(stat: &str, allowed: &[usize], ticks: f64) -> Option<f64> {
    let mut total = 0u64;
    let mut seen = 0;
    for line in stat.lines() {
        let Some(rest) = line.strip_prefix("cpu") else { continue };
        let mut fields = rest.split_ascii_whitespace();
        // "cpu " is the sum of all CPUs, "cpuN" one of them.
        let Some(cpu) = fields.next().filter(|_| !rest.starts_with(' ')).and_then(|f| f.parse::<usize>().ok()) else {
            continue;
        };
        if !allowed.contains(&cpu) {
            continue;
        }
        let v: Vec<u64> = fields.map(|f| f.parse().unwrap_or(0)).collect();
        // user nice system idle iowait irq softirq steal
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        total += at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
        seen += 1;
    }
    (seen > 0).then(|| total as f64 / ticks)
}

#[cfg(target_os = "linux")]
fn measure(now: Instant) -> Option<Usage> {
    let allowed = allowed_cpus()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let busy = busy_seconds(&stat, &allowed, ticks as f64)?;
    // SAFETY: `usage` is a valid, writable rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    let own = seconds(usage.ru_utime) + seconds(usage.ru_stime);
    Some(Usage { at: now, cpus: allowed.len(), busy, own })
}

#[cfg(not(target_os = "linux"))]
fn measure(_now: Instant) -> Option<Usage> {
    None
}

/// The CPUs this process may run on.
#[cfg(target_os = "linux")]
fn allowed_cpus() -> Option<Vec<usize>> {
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return None;
    }
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect();
    (!cpus.is_empty()).then_some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_follow_the_cpus_other_processes_leave() {
        // Idle 2-CPU machine: both threads.
        assert_eq!(active_threads(2, 2, 0.02), 2);
        // One busy loop beside (its two thirds of a CPU under three runnable threads, or all
        // of one once this process runs alone): one thread.
        assert_eq!(active_threads(2, 2, 0.67), 1);
        assert_eq!(active_threads(2, 2, 1.0), 1);
        // A light neighbour leaves room for both.
        assert_eq!(active_threads(2, 2, 0.2), 2);
        assert_eq!(active_threads(2, 2, 0.4), 2);
        // 16 CPUs, one busy: 15 of 16 threads; never more than the team has, never none.
        assert_eq!(active_threads(16, 16, 1.0), 15);
        assert_eq!(active_threads(4, 16, 1.0), 4);
        assert_eq!(active_threads(8, 4, 9.0), 1);
        assert_eq!(active_threads(1, 4, 0.0), 1);
    }

    #[test]
    fn busy_time_counts_only_the_allowed_cpus() {
        let stat = "cpu  300 0 30 700 7 0 3 6 0 0\n\
                    cpu0 100 0 10 300 3 0 1 2 0 0\n\
                    cpu1 200 0 20 400 4 0 2 4 0 0\n\
                    intr 12345\n\
                    cpu_guest_line_that_is_not_a_cpu 1 2 3\n";
        // user + nice + system + irq + softirq + steal, idle and iowait left out.
        assert_eq!(busy_seconds(stat, &[0], 100.0), Some(1.13));
        assert_eq!(busy_seconds(stat, &[1], 100.0), Some(2.26));
        assert_eq!(busy_seconds(stat, &[0, 1], 100.0), Some(3.39));
        assert_eq!(busy_seconds(stat, &[5], 100.0), None);
        assert_eq!(busy_seconds("", &[0], 100.0), None);
    }

    #[test]
    fn the_room_is_measured_once_a_window_and_starts_with_every_thread() {
        let mut room = Room::default();
        let t0 = Instant::now();
        // Before a window has passed there is nothing to compare: every thread.
        assert_eq!(room.threads(4, t0), 4);
        assert_eq!(room.threads(4, t0 + WINDOW / 2), 4);
        room.fixed = Some(1);
        assert_eq!(room.threads(4, t0 + WINDOW * 3), 1);
        room.fixed = Some(9);
        assert_eq!(room.threads(4, t0 + WINDOW * 3), 4);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_machine_can_be_measured() {
        let s = Usage::now().expect("/proc/stat, the affinity mask and getrusage are readable on Linux");
        assert!(s.cpus >= 1 && s.busy > 0.0 && s.own >= 0.0, "{s:?}");
        let later = Usage { at: s.at + Duration::from_secs(1), busy: s.busy + 1.5, own: s.own + 0.5, ..s };
        assert_eq!(later.others_since(&s), 1.0f64.min(s.cpus as f64));
        assert_eq!(s.others_since(&s), 0.0);
    }
}

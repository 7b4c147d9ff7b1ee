//! The threads of a run: a team of helper threads that wait for work by spinning for a while
//! before they sleep. One training step has a dozen short parallel sections (products split in
//! two, elementwise kernels in bands of rows) with serial kernels between them; a sleeping thread
//! takes tens of microseconds to wake (a futex and, under KVM, an interrupt to another CPU), a
//! spinning one well under one. Measured on this machine (`benches/cpu.rs`): the products of the
//! 784-256-256-10 step reach 300–350 GFLOP/s on two spinning threads against 150–180 through a
//! sleeping rayon pool.
//!
//! One team per thread count lives for the process. A run takes the team for itself
//! ([`Team::crew`]); a run that finds it taken (another executor running on another thread)
//! runs its parallel sections serially, with the same results.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long an idle helper spins before it sleeps: longer than the serial gaps inside a step
/// and between the steps of a training loop, short enough that an idle process soon sleeps.
const SPIN: Duration = Duration::from_micros(300);

/// A job: part `i` of `parts` runs `f(i)`.
type Job<'a> = &'a (dyn Fn(usize) + Sync);

struct Shared {
    /// Bumped once per job; a helper runs a job when it sees a new value.
    epoch: AtomicU64,
    /// The current job: a `*const Job`, valid until every helper has finished it.
    job: AtomicPtr<()>,
    /// Helpers that have not finished the current job.
    pending: AtomicUsize,
    /// A part of the current job panicked on a helper.
    panicked: AtomicBool,
    /// Per helper: it is asleep (or about to be) and needs an `unpark`.
    asleep: Vec<AtomicBool>,
}

pub struct Team {
    shared: Arc<Shared>,
    helpers: Vec<std::thread::Thread>,
    /// Held by the run using the team.
    busy: Mutex<()>,
}

/// A team taken by one run: the proof that no one else forks on it meanwhile.
pub struct Crew<'a> {
    team: &'a Team,
    _held: MutexGuard<'a, ()>,
}

impl Team {
    /// The process's team of `threads` threads (the caller and `threads − 1` helpers).
    pub fn of(threads: usize) -> Arc<Team> {
        static TEAMS: Mutex<Vec<(usize, Arc<Team>)>> = Mutex::new(Vec::new());
        let mut teams = TEAMS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, t)) = teams.iter().find(|(n, _)| *n == threads) {
            return t.clone();
        }
        let t = Arc::new(Team::start(threads));
        teams.push((threads, t.clone()));
        t
    }

    fn start(threads: usize) -> Team {
        let n = threads.saturating_sub(1);
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            pending: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            asleep: (0..n).map(|_| AtomicBool::new(false)).collect(),
        });
        let mut helpers = Vec::with_capacity(n);
        for i in 0..n {
            let s = shared.clone();
            let spawned = std::thread::Builder::new().name(format!("circ-cpu-{}", i + 1)).spawn(move || helper(&s, i));
            match spawned {
                Ok(h) => helpers.push(h.thread().clone()),
                // Fewer threads than asked: the team forks over the ones it has.
                Err(_) => break,
            }
        }
        Team { shared, helpers, busy: Mutex::new(()) }
    }

    /// The team for one run, or `None` while another run holds it.
    pub fn crew(&self) -> Option<Crew<'_>> {
        let held = match self.busy.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(Crew { team: self, _held: held })
    }
}

impl Crew<'_> {
    /// Threads a job is split over.
    pub fn threads(&self) -> usize {
        self.team.helpers.len() + 1
    }

    /// Runs `f(0)`, …, `f(threads − 1)`, part 0 on this thread, and returns when all are done.
    /// A panic in any part is raised here once every part has finished.
    pub fn fork(&self, f: &(dyn Fn(usize) + Sync)) {
        let s = &*self.team.shared;
        let helpers = self.team.helpers.len();
        if helpers == 0 {
            return f(0);
        }
        let job: Job<'_> = f;
        s.pending.store(helpers, Ordering::Relaxed);
        s.job.store(&job as *const Job<'_> as *mut (), Ordering::Relaxed);
        // SeqCst with the helper's `asleep` store and `epoch` load: either it sees this epoch
        // before sleeping, or this thread sees it asleep and wakes it.
        s.epoch.fetch_add(1, Ordering::SeqCst);
        for (i, t) in self.team.helpers.iter().enumerate() {
            if s.asleep[i].load(Ordering::SeqCst) {
                t.unpark();
            }
        }
        let mine = catch_unwind(AssertUnwindSafe(|| f(0)));
        let mut spins = 0u32;
        while s.pending.load(Ordering::Acquire) != 0 {
            spins = spins.wrapping_add(1);
            if spins % 1024 == 0 {
                // A helper descheduled on a busy machine: let it have this CPU.
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        // `job` (and `f`) outlive every helper's use of them: all have finished.
        if let Err(p) = mine {
            resume_unwind(p);
        }
        if s.panicked.swap(false, Ordering::Relaxed) {
            panic!("a part of a parallel kernel panicked on a helper thread");
        }
    }
}

/// Helper `i`'s loop: wait for a new epoch (spinning, then asleep), run part `i + 1` of its job.
fn helper(s: &Shared, i: usize) {
    // The epoch the team started with (not a later one: a fork may come before this thread runs).
    let mut seen = 0;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            if s.epoch.load(Ordering::Acquire) != seen {
                break;
            }
            spins = spins.wrapping_add(1);
            if spins % 256 != 0 || start.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            s.asleep[i].store(true, Ordering::SeqCst);
            while s.epoch.load(Ordering::SeqCst) == seen {
                std::thread::park();
            }
            s.asleep[i].store(false, Ordering::SeqCst);
        }
        seen = s.epoch.load(Ordering::Acquire);
        let job = s.job.load(Ordering::Relaxed) as *const Job<'_>;
        // SAFETY: the forking thread published `job` before bumping the epoch (Acquire above
        // pairs with its SeqCst bump) and waits for `pending` to reach 0 before the job dies.
        let f = unsafe { *job };
        if catch_unwind(AssertUnwindSafe(|| f(i + 1))).is_err() {
            s.panicked.store(true, Ordering::Relaxed);
        }
        s.pending.fetch_sub(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once_per_fork_also_after_the_helpers_slept() {
        let team = Team::start(3);
        let crew = team.crew().expect("a fresh team is free");
        assert!(team.crew().is_none(), "one run at a time");
        for round in 0..200 {
            let hits: Vec<AtomicUsize> = (0..crew.threads()).map(|_| AtomicUsize::new(0)).collect();
            crew.fork(&|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1), "round {round}");
            if round % 50 == 0 {
                std::thread::sleep(SPIN * 3);
            }
        }
    }

    #[test]
    fn a_panic_on_a_helper_reaches_the_caller_and_the_team_goes_on() {
        let team = Team::start(2);
        let crew = team.crew().unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| crew.fork(&|i| assert_ne!(i, 1, "part 1 fails"))));
        assert!(r.is_err());
        let count = AtomicUsize::new(0);
        crew.fork(&|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 2);
    }
}

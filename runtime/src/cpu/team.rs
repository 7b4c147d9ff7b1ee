//! The threads of a run: a team of helper threads that a run's parallel sections fork onto.
//!
//! The design, for a machine the process shares with others:
//! - **No part waits on one particular thread.** A parallel section ([`Crew::fork`]) is split
//!   into `parts` pieces, usually more than there are threads, and every thread, the caller
//!   included, claims the next unclaimed piece from one shared counter until none is left. A
//!   helper the OS has descheduled claims nothing: the caller and the other helpers run the
//!   pieces it did not start, and the section ends when the last claimed piece is done (a
//!   helper descheduled in the middle of a piece is waited for; smaller pieces bound that).
//!   A section whose helpers never run at all completes on the caller alone.
//! - **The counter and the section's generation are one atomic word** (generation in the high
//!   bits, the part count and the next part in the low ones), so a helper that wakes late, with
//!   a stale view of an earlier section, cannot claim a piece of the next one by mistake: its
//!   compare-and-swap fails once the generation has moved on. A successful claim also proves
//!   that the section is still running, so its closure is still alive while the piece runs.
//! - **Helpers spin briefly, then sleep.** Between sections a helper spins for [`SPIN`] (a
//!   step's serial gaps are shorter: a fork costs about a microsecond then), then parks
//!   (`std::thread::park`, a futex on Linux); the forking thread unparks the sleepers. A waiting
//!   caller spins, and yields its CPU now and then so that a helper descheduled on the same
//!   CPU can finish its piece.
//! - **Results do not depend on who runs what.** The pieces of a section are fixed by its
//!   caller (from the thread count and the sizes), never by which thread claims them, so a run
//!   repeats bit for bit on the same thread count.
//! - **Only the threads the machine has room for.** Once a [`WINDOW`](super::room::WINDOW) the forking thread
//!   measures how much of the CPUs other processes take ([`Room`]) and enlists one thread per
//!   CPU they leave free: beside a busy process on two cores, one thread, the caller alone; all
//!   of them again once the machine is free. The pieces stay the same (the caller runs them all
//!   in order), so results do not change with it.
//! - **One thread, no helper.** A team of one thread starts no helper: every section runs on the
//!   caller, in order.
//!
//! One team per thread count lives for the process. A run takes the team for itself
//! ([`Team::crew`]); a run that finds it taken (another executor running on another thread)
//! runs its parallel sections serially, with the same results.
//!
//! The thread count itself is the caller's (the compiler's `--threads` / `CIRC_THREADS`, else
//! `std::thread::available_parallelism`, which on Linux reads the CPU affinity mask and the
//! cgroup CPU quota).

use super::room::Room;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long an idle helper spins before it sleeps: longer than the serial gaps inside a step,
/// short enough that a helper gives its CPU back soon on a busy machine.
pub const SPIN: Duration = Duration::from_micros(200);

/// The most pieces one section may have.
pub const MAX_PARTS: usize = (1 << PART_BITS) - 1;

/// Bits of the state word for the part count, and for the next part.
const PART_BITS: u32 = 12;
const PART_MASK: u64 = (1 << PART_BITS) - 1;

/// A job: piece `i` of `parts` runs `f(i)`.
type Job<'a> = &'a (dyn Fn(usize) + Sync);

/// `generation << 24 | parts << 12 | next`.
fn pack(generation: u64, parts: usize, next: usize) -> u64 {
    (generation << (2 * PART_BITS)) | ((parts as u64) << PART_BITS) | next as u64
}

fn unpack(state: u64) -> (u64, usize, usize) {
    (state >> (2 * PART_BITS), ((state >> PART_BITS) & PART_MASK) as usize, (state & PART_MASK) as usize)
}

struct Shared {
    /// The current section: generation, part count, next unclaimed part.
    state: AtomicU64,
    /// The current job: a `*const Job`, valid while a piece of the current generation is
    /// claimed and not done.
    job: AtomicPtr<()>,
    /// Pieces of the current section finished.
    done: AtomicUsize,
    /// A piece of the current job panicked (on any thread).
    panicked: AtomicBool,
    /// Per helper: it is asleep (or about to be) and needs an `unpark`.
    asleep: Vec<AtomicBool>,
    /// Helpers `0..enlisted` take part in the current section; the others let it pass.
    enlisted: AtomicUsize,
    /// Per helper: it is held back (tests only: a helper the OS never runs).
    #[cfg(test)]
    blocked: Vec<AtomicBool>,
}

impl Shared {
    /// Claims the next piece of generation `generation`: `Some(i)`, or `None` when none is left
    /// or the section is over.
    fn claim(&self, generation: u64) -> Option<usize> {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let (g, parts, next) = unpack(s);
            if g != generation || next >= parts {
                return None;
            }
            match self.state.compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(next),
                Err(now) => s = now,
            }
        }
    }

    /// Runs every piece of `generation` this thread can claim; the first panic of one, if any.
    fn work(&self, generation: u64) -> Option<Box<dyn std::any::Any + Send>> {
        let mut failure = None;
        while let Some(i) = self.claim(generation) {
            let job = self.job.load(Ordering::Acquire) as *const Job<'_>;
            // SAFETY: the forking thread stored `job` before publishing this generation, and
            // waits until every claimed piece is done before the job dies or the next one is
            // stored; piece `i` is claimed and not done.
            let f = unsafe { *job };
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(i))) {
                // Before `done` counts the piece: the caller reads the flag once every piece is
                // done, so a panic is never seen one section late.
                self.panicked.store(true, Ordering::Relaxed);
                failure.get_or_insert(p);
            }
            self.done.fetch_add(1, Ordering::AcqRel);
        }
        failure
    }
}

pub struct Team {
    shared: Arc<Shared>,
    helpers: Vec<std::thread::Thread>,
    /// Held by the run using the team.
    busy: Mutex<()>,
    /// How many threads the machine has room for (used by the crew's holder only).
    room: Mutex<Room>,
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
            state: AtomicU64::new(pack(0, 0, 0)),
            job: AtomicPtr::new(std::ptr::null_mut()),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            asleep: (0..n).map(|_| AtomicBool::new(false)).collect(),
            enlisted: AtomicUsize::new(n),
            #[cfg(test)]
            blocked: (0..n).map(|_| AtomicBool::new(false)).collect(),
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
        Team { shared, helpers, busy: Mutex::new(()), room: Mutex::new(Room::default()) }
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
    /// Threads that may run the pieces of a section (the caller and the helpers).
    pub fn threads(&self) -> usize {
        self.team.helpers.len() + 1
    }

    /// Runs `f(0)`, …, `f(parts − 1)`, each once, on whichever threads of the team claim them
    /// (this one included), and returns when all are done. Which thread runs a piece is not
    /// fixed, so a piece must not depend on it. A panic in any piece is raised here once every
    /// claimed piece has finished.
    ///
    /// # Panics
    /// When `parts` exceeds [`MAX_PARTS`].
    pub fn fork(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        assert!(parts <= MAX_PARTS, "a parallel section of {parts} pieces: at most {MAX_PARTS}");
        let s = &*self.team.shared;
        let active = if self.team.helpers.is_empty() || parts <= 1 {
            1
        } else {
            self.team.room.lock().unwrap_or_else(|e| e.into_inner()).threads(self.threads(), Instant::now())
        };
        if active == 1 {
            // No helper, one piece, or other processes keep the other CPUs busy: the same
            // pieces, in order, on this thread.
            return (0..parts).for_each(f);
        }
        let enlisted = active - 1;
        let job: Job<'_> = f;
        let (generation, _, _) = unpack(s.state.load(Ordering::Relaxed));
        let generation = (generation + 1) & (u64::MAX >> (2 * PART_BITS));
        s.done.store(0, Ordering::Relaxed);
        s.job.store(&job as *const Job<'_> as *mut (), Ordering::Relaxed);
        s.enlisted.store(enlisted, Ordering::Relaxed);
        // SeqCst with the helper's `asleep` store and `state` load: either it sees this
        // generation before sleeping, or this thread sees it asleep and wakes it. Release: the
        // job and `done` above are visible to whoever claims a piece.
        s.state.store(pack(generation, parts, 0), Ordering::SeqCst);
        for (i, t) in self.team.helpers.iter().enumerate().take((parts - 1).min(enlisted)) {
            if s.asleep[i].load(Ordering::SeqCst) {
                t.unpark();
            }
        }
        let mine = s.work(generation);
        let mut spins = 0u32;
        while s.done.load(Ordering::Acquire) != parts {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) {
                // A helper descheduled in the middle of a piece: let it have this CPU.
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        // Every piece is done: no helper uses `job` (and `f`) any more, and none can claim a
        // piece of this generation.
        let helper_panicked = s.panicked.swap(false, Ordering::Relaxed);
        if let Some(p) = mine {
            resume_unwind(p);
        }
        if helper_panicked {
            panic!("a piece of a parallel kernel panicked on a helper thread");
        }
    }
}

/// Helper `i`'s loop: wait for a new generation (spinning, then asleep), claim its pieces.
fn helper(s: &Shared, i: usize) {
    // The generation the team started with (not a later one: a fork may come before this
    // thread runs).
    let mut seen = 0;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        let generation = loop {
            let (g, _, _) = unpack(s.state.load(Ordering::Acquire));
            if g != seen {
                break g;
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(256) || start.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            s.asleep[i].store(true, Ordering::SeqCst);
            while unpack(s.state.load(Ordering::SeqCst)).0 == seen {
                std::thread::park();
            }
            s.asleep[i].store(false, Ordering::SeqCst);
        };
        seen = generation;
        if i >= s.enlisted.load(Ordering::Relaxed) {
            // Not enlisted for this section (no room on the machine): wait for the next one,
            // and soon asleep.
            continue;
        }
        #[cfg(test)]
        while s.blocked[i].load(Ordering::Acquire) {
            std::thread::park();
        }
        // A panic is flagged in `work`; the caller raises it.
        drop(s.work(generation));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_piece_runs_once_per_fork_also_after_the_helpers_slept() {
        let team = Team::start(3);
        // Every thread, whatever else runs on the machine meanwhile (so in all these tests).
        team.room.lock().unwrap().fixed = Some(3);
        let crew = team.crew().expect("a fresh team is free");
        assert!(team.crew().is_none(), "one run at a time");
        for round in 0..300 {
            let parts = [1, 2, 3, 7, 12, 64][round % 6];
            let hits: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
            crew.fork(parts, &|i| {
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
        team.room.lock().unwrap().fixed = Some(2);
        let crew = team.crew().unwrap();
        for round in 0..200 {
            // Every piece panics, so whichever thread claims one, the fork panics; the panic
            // is raised by this section, never by the next (the helper flags it before it
            // counts its piece done).
            let r = catch_unwind(AssertUnwindSafe(|| crew.fork(4, &|i| panic!("piece {i} fails"))));
            assert!(r.is_err(), "round {round}");
            let count = AtomicUsize::new(0);
            let next = catch_unwind(AssertUnwindSafe(|| {
                crew.fork(5, &|_| {
                    count.fetch_add(1, Ordering::Relaxed);
                })
            }));
            assert!(next.is_ok(), "round {round}: the panic of the section before was raised late");
            assert_eq!(count.load(Ordering::Relaxed), 5);
        }
    }

    #[test]
    fn a_section_completes_when_a_helper_never_runs() {
        // Helper 0 of 2 is held back, as a helper the OS does not schedule: the caller and
        // the other helper run every piece it does not claim.
        let team = Team::start(3);
        team.room.lock().unwrap().fixed = Some(3);
        team.shared.blocked[0].store(true, Ordering::Release);
        let crew = team.crew().unwrap();
        for round in 0..100 {
            let hits: Vec<AtomicUsize> = (0..16).map(|_| AtomicUsize::new(0)).collect();
            crew.fork(16, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1), "round {round}");
        }
        // Every helper held back: the caller alone.
        team.shared.blocked[1].store(true, Ordering::Release);
        let sum = AtomicUsize::new(0);
        for _ in 0..10 {
            crew.fork(8, &|i| {
                sum.fetch_add(i, Ordering::Relaxed);
            });
        }
        assert_eq!(sum.load(Ordering::Relaxed), 10 * 28);
        // Released, they go on with later sections (and claim nothing of the old ones).
        for (b, t) in team.shared.blocked.iter().zip(&team.helpers) {
            b.store(false, Ordering::Release);
            t.unpark();
        }
        let count = AtomicUsize::new(0);
        for _ in 0..50 {
            crew.fork(6, &|_| {
                count.fetch_add(1, Ordering::Relaxed);
            });
        }
        assert_eq!(count.load(Ordering::Relaxed), 300);
    }

    #[test]
    fn a_team_runs_only_on_the_threads_the_machine_has_room_for() {
        let team = Team::start(3);
        let crew = team.crew().unwrap();
        let ran_on = |rounds: usize| {
            let names = Mutex::new(std::collections::BTreeSet::new());
            for _ in 0..rounds {
                let hits: Vec<AtomicUsize> = (0..12).map(|_| AtomicUsize::new(0)).collect();
                crew.fork(12, &|i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                    let name = std::thread::current().name().unwrap_or("caller").to_string();
                    names.lock().unwrap().insert(name);
                    std::hint::black_box((0..2000).sum::<u64>());
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
            names.into_inner().unwrap()
        };
        // Other processes keep the machine busy: every piece on the caller, in order.
        team.room.lock().unwrap().fixed = Some(1);
        let me = std::thread::current().name().unwrap_or("caller").to_string();
        assert_eq!(ran_on(200).into_iter().collect::<Vec<_>>(), vec![me.clone()]);
        let order = Mutex::new(Vec::new());
        crew.fork(5, &|i| order.lock().unwrap().push(i));
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
        // Room for two threads: the second helper never takes a piece.
        team.room.lock().unwrap().fixed = Some(2);
        let names = ran_on(300);
        assert!(!names.contains("circ-cpu-2"), "{names:?}");
        // Room for all three again: the second helper is woken with the others and works.
        team.room.lock().unwrap().fixed = Some(3);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ran_on(50).contains("circ-cpu-2") {
            assert!(Instant::now() < deadline, "the second helper never took part again");
        }
    }

    #[test]
    fn a_team_of_one_thread_starts_no_helper() {
        let team = Team::start(1);
        assert!(team.helpers.is_empty());
        let crew = team.crew().unwrap();
        let me = std::thread::current().id();
        let order = Mutex::new(Vec::new());
        crew.fork(5, &|i| {
            assert_eq!(std::thread::current().id(), me);
            order.lock().unwrap().push(i);
        });
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn the_state_word_round_trips() {
        assert_eq!(unpack(pack(123_456, MAX_PARTS, 17)), (123_456, MAX_PARTS, 17));
    }
}

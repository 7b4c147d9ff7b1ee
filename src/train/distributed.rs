//! Data-parallel training over several processes (docs/distributed.md). The training loop sees a
//! [`Group`]: this process's rank, the number of processes, one sum over all of them, and an
//! agreement on failures. One process is [`Group::single`], where each of those is trivial, so
//! the loop has one code path; under `mpirun` (cargo feature `mpi`) the group is MPI's world.
//!
//! **Reduction order.** [`Group::allreduce_sum`] is a ring allreduce written on MPI's
//! point-to-point calls: a reduce-scatter, then an all-gather, each of K − 1 exchanges between
//! neighbours, so every process sends 2(K − 1)/K of the buffer (the bandwidth-optimal volume).
//! Chunk c of the buffer is summed in the order c, c + 1, …, c + K − 1 (mod K), fixed by K and
//! the buffer's length whatever the library's algorithms, so a run repeats bit for bit, and every
//! process gets the same sums (copies of the one process's that completed each chunk).
//! `CIRC_MPI_ALLREDUCE=library` uses `MPI_Allreduce` instead: its order is the library's, fixed
//! for one process count and buffer size in Open MPI in practice, but the MPI standard only
//! recommends that.
//!
//! **Failures.** A process that fails must not leave the others waiting in a collective. Every
//! step's fused buffer carries a flag; when any process raised it, all call [`Group::agree`],
//! which tells every process the lowest failing rank, its exit status and its message. A process
//! that ends with a failure the others did not agree on (an output file only rank 0 writes)
//! aborts the whole job instead ([`Group::finish`]), so nothing hangs.

use std::cell::Cell;

/// Values per bucket of [`Group::allreduce_sum`] (32 MiB of `f64`): each bucket is summed on
/// its own. The fused buffer holds the last parameter's gradient first, the order the backward
/// pass finishes them, so a later version can send a bucket while the backward pass goes on.
pub const BUCKET: usize = 1 << 22;

/// What a group of processes must provide; the one implementation per transport.
pub trait Collective {
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// Element-wise sum over all processes, left in `buf` on every process, in a fixed order.
    fn allreduce_sum(&self, buf: &mut [f64]);
    /// `bytes` of process `root` on every process.
    fn broadcast_bytes(&self, root: usize, bytes: &mut Vec<u8>);
    /// Ends every process of the job with status `code`.
    fn abort(&self, code: u8) -> !;
}

/// One process: nothing to exchange.
pub struct Single;

impl Collective for Single {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn allreduce_sum(&self, _: &mut [f64]) {}
    fn broadcast_bytes(&self, _: usize, _: &mut Vec<u8>) {}
    fn abort(&self, code: u8) -> ! {
        std::process::exit(i32::from(code))
    }
}

/// A failure every process knows about: the lowest failing rank, its exit status and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub rank: usize,
    pub code: u8,
    pub message: String,
}

/// The processes of one training run.
pub struct Group {
    comm: Box<dyn Collective>,
    /// Whether a failure was agreed on by every process (then all end normally).
    agreed: Cell<bool>,
}

impl Group {
    /// One process.
    pub fn single() -> Group {
        Group { comm: Box::new(Single), agreed: Cell::new(false) }
    }

    /// The processes `mpirun` (or another MPI launcher) started, or one process when none did.
    /// Without the `mpi` feature, several started processes are an error: each would train the
    /// whole model alone and write the same files.
    pub fn from_env() -> Result<Group, String> {
        let launched = launched_processes();
        if launched <= 1 {
            return Ok(Group::single());
        }
        Group::world(launched)
    }

    #[cfg(feature = "mpi")]
    fn world(_launched: usize) -> Result<Group, String> {
        let comm = mpi_world::Mpi::init()?;
        if comm.size() == 1 {
            return Ok(Group::single());
        }
        Ok(Group { comm: Box::new(comm), agreed: Cell::new(false) })
    }

    #[cfg(not(feature = "mpi"))]
    fn world(launched: usize) -> Result<Group, String> {
        Err(format!(
            "{launched} processes were started (by mpirun or srun), but this circ was built without MPI; \
             build it with `cargo build --release --features mpi` to train on several processes"
        ))
    }

    pub fn rank(&self) -> usize {
        self.comm.rank()
    }

    pub fn size(&self) -> usize {
        self.comm.size()
    }

    /// Whether this process writes files and prints: rank 0.
    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// See [`Collective::allreduce_sum`].
    pub fn allreduce_sum(&self, buf: &mut [f64]) {
        self.comm.allreduce_sum(buf)
    }

    /// Every process passes its own failure (exit status ≥ 1 and message) or none; every process
    /// gets the lowest failing rank's, or none when all succeeded. Two collectives when some
    /// process failed, one otherwise.
    pub fn agree(&self, mine: Option<(u8, &str)>) -> Option<Failure> {
        let k = self.size();
        let mut codes = vec![0.0; k];
        if let Some((code, _)) = mine {
            codes[self.rank()] = f64::from(code.max(1));
        }
        self.comm.allreduce_sum(&mut codes);
        let rank = codes.iter().position(|c| *c > 0.0)?;
        let mut bytes = match mine {
            Some((_, m)) if rank == self.rank() => m.as_bytes().to_vec(),
            _ => Vec::new(),
        };
        self.comm.broadcast_bytes(rank, &mut bytes);
        self.agreed.set(true);
        Some(Failure { rank, code: codes[rank] as u8, message: String::from_utf8_lossy(&bytes).into_owned() })
    }

    /// Whether `hash` is the same on every process.
    pub fn same_everywhere(&self, hash: u64) -> bool {
        let k = self.size();
        if k == 1 {
            return true;
        }
        // Halves of 32 bits are exact in an f64; each process writes its own slots.
        let mut slots = vec![0.0; 2 * k];
        slots[2 * self.rank()] = (hash >> 32) as f64;
        slots[2 * self.rank() + 1] = (hash & 0xFFFF_FFFF) as f64;
        self.comm.allreduce_sum(&mut slots);
        slots.chunks(2).all(|s| s == &slots[..2])
    }

    /// Ends this process's part of the run. After a failure the others did not agree on, aborts
    /// every process (they may be waiting for this one in a collective).
    pub fn finish(&self, code: std::process::ExitCode) -> std::process::ExitCode {
        if self.size() > 1 && code != std::process::ExitCode::SUCCESS && !self.agreed.get() {
            self.comm.abort(1);
        }
        code
    }

    /// The message of an agreed failure as rank 0 prints it: another rank's names that rank.
    pub fn describe(&self, f: &Failure) -> String {
        if self.size() == 1 {
            f.message.clone()
        } else {
            format!("process {} of {}: {}", f.rank, self.size(), f.message)
        }
    }
}

/// The part of `rows` (one global batch) process `rank` of `size` takes: a contiguous share,
/// sizes differing by at most one.
pub fn share(rows: &[usize], rank: usize, size: usize) -> &[usize] {
    let n = rows.len();
    &rows[n * rank / size..n * (rank + 1) / size]
}

/// A hash of parameter values, to check that every process holds the same ones.
pub fn hash(values: &[Vec<f64>]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        for x in v {
            h = (h ^ x.to_bits()).wrapping_mul(0x0100_0000_01b3);
            h ^= h >> 29;
        }
    }
    h
}

/// Processes the launcher says it started (Open MPI, MPICH/Hydra and Slurm's PMI variables).
pub fn launched_processes() -> usize {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse::<usize>().ok())
        .unwrap_or(1)
}

/// Processes on this machine, as the launcher says.
pub fn local_processes() -> usize {
    ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "MV2_COMM_WORLD_LOCAL_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse::<usize>().ok())
        .unwrap_or(1)
}

/// The CPU backend's threads for one of `local` processes on this machine: a process the
/// launcher bound to its own cores (its affinity mask is smaller than the machine) uses them
/// all; unbound processes split the machine's cores evenly, so they do not oversubscribe it.
pub fn threads_per_process(local: usize) -> usize {
    let mine = std::thread::available_parallelism().map_or(1, |n| n.get());
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").ok().and_then(|s| count_cpus(&s));
    match online {
        Some(all) if mine >= all => (mine / local.max(1)).max(1),
        _ => mine,
    }
}

/// CPUs in a list like `0-7,16-23`.
fn count_cpus(list: &str) -> Option<usize> {
    let mut n = 0;
    for part in list.trim().split(',') {
        n += match part.split_once('-') {
            Some((a, b)) => b.trim().parse::<usize>().ok()? + 1 - a.trim().parse::<usize>().ok()?,
            None => {
                part.trim().parse::<usize>().ok()?;
                1
            }
        };
    }
    Some(n)
}

#[cfg(feature = "mpi")]
mod mpi_world {
    use super::{Collective, BUCKET};
    use mpi::traits::*;

    /// MPI's world communicator; dropping it finalizes MPI.
    pub struct Mpi {
        world: mpi::topology::SimpleCommunicator,
        /// `MPI_Allreduce` instead of the ring (`CIRC_MPI_ALLREDUCE=library`).
        library: bool,
        _universe: mpi::environment::Universe,
    }

    impl Mpi {
        pub fn init() -> Result<Mpi, String> {
            // Only the main thread calls MPI; the CPU backend's helper threads never do.
            let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)
                .ok_or("MPI was initialized twice in one process")?;
            let library = std::env::var("CIRC_MPI_ALLREDUCE").is_ok_and(|v| v == "library");
            Ok(Mpi { world: universe.world(), library, _universe: universe })
        }
    }

    impl Collective for Mpi {
        fn rank(&self) -> usize {
            self.world.rank() as usize
        }

        fn size(&self) -> usize {
            self.world.size() as usize
        }

        fn allreduce_sum(&self, buf: &mut [f64]) {
            for bucket in buf.chunks_mut(BUCKET) {
                if self.library {
                    let send = bucket.to_vec();
                    self.world.all_reduce_into(&send[..], bucket, mpi::collective::SystemOperation::sum());
                } else {
                    self.ring_sum(bucket);
                }
            }
        }

        fn broadcast_bytes(&self, root: usize, bytes: &mut Vec<u8>) {
            let p = self.world.process_at_rank(root as mpi::Rank);
            let mut len = [bytes.len() as u64];
            p.broadcast_into(&mut len[..]);
            bytes.resize(len[0] as usize, 0);
            p.broadcast_into(&mut bytes[..]);
        }

        fn abort(&self, code: u8) -> ! {
            self.world.abort(i32::from(code))
        }
    }

    impl Mpi {
        fn ring_sum(&self, buf: &mut [f64]) {
            let (k, r) = (self.size(), self.rank());
            // A ring: reduce-scatter, then all-gather, each in k − 1 exchanges with the
            // neighbours. Chunk c of the buffer is summed in the order c, c + 1, …, c + k − 1
            // (mod k), the same every run, and then copied to every process.
            let n = buf.len();
            let chunk = |c: usize| n * (c % k) / k..n * (c % k + 1) / k;
            let next = self.world.process_at_rank(((r + 1) % k) as mpi::Rank);
            let prev = self.world.process_at_rank(((r + k - 1) % k) as mpi::Rank);
            let mut incoming = vec![0.0; n.div_ceil(k)];
            for s in 0..k - 1 {
                // Send the partial sum of chunk r − s; add this process's values to the partial
                // sum of chunk r − s − 1 that arrives.
                let (out, into) = (chunk(r + k - s), chunk(r + 2 * k - s - 1));
                let msg = buf[out].to_vec();
                let got = &mut incoming[..into.len()];
                mpi::point_to_point::send_receive_into(&msg[..], &next, &mut *got, &prev);
                for (x, y) in buf[into].iter_mut().zip(got.iter()) {
                    *x = *y + *x;
                }
            }
            // Process r now holds the whole sum of chunk r + 1: pass the sums around.
            for s in 0..k - 1 {
                let (out, into) = (chunk(r + 1 + k - s), chunk(r + k - s));
                let msg = buf[out].to_vec();
                mpi::point_to_point::send_receive_into(&msg[..], &next, &mut buf[into], &prev);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_a_batch_once_in_order() {
        let rows: Vec<usize> = (10..17).collect();
        for k in 1..=9 {
            let parts: Vec<&[usize]> = (0..k).map(|r| share(&rows, r, k)).collect();
            assert_eq!(parts.concat(), rows, "k = {k}");
            let (lo, hi) = (parts.iter().map(|p| p.len()).min(), parts.iter().map(|p| p.len()).max());
            assert!(hi.unwrap() - lo.unwrap() <= 1);
        }
    }

    #[test]
    fn one_process_agrees_with_itself() {
        let g = Group::single();
        assert_eq!(g.agree(None), None);
        let f = g.agree(Some((2, "bad"))).unwrap();
        assert_eq!(f, Failure { rank: 0, code: 2, message: "bad".into() });
        assert_eq!(g.describe(&f), "bad");
        assert!(g.same_everywhere(42));
        let mut b = vec![1.0, 2.0];
        g.allreduce_sum(&mut b);
        assert_eq!(b, vec![1.0, 2.0]);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(count_cpus("0-7,16-23\n"), Some(16));
        assert_eq!(count_cpus("0"), Some(1));
        assert_eq!(count_cpus("0-1,3"), Some(3));
        assert_eq!(count_cpus("x"), None);
    }

    #[test]
    fn hashes_see_every_value() {
        assert_ne!(hash(&[vec![1.0, 2.0]]), hash(&[vec![2.0, 1.0]]));
        assert_ne!(hash(&[vec![0.0]]), hash(&[vec![-0.0]]));
    }
}

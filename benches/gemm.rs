//! Single-precision matrix products: the Cranelift-generated kernel of
//! `backend::cpu::gemm_clif` against the `gemm` crate and `matrixmultiply`.
//!
//! Run: `cargo bench --bench gemm` (the table below); `-- tiles` compares micro-kernel tiles on
//! one thread, `-- blocks` the cache blocking (KC, MC); `-- asm` prints the default
//! micro-kernel's CLIF and machine code. GFLOP/s = 2·m·k·n / time, the median of 7 samples
//! after a warm-up, best of 3 rounds in which the implementations take turns; a sample taken
//! while other processes used the CPUs this one needs is retried, and marked `~` if it stays so.
//! m×k×n is A (m×k) times B (k×n), row-major (Aᵀ: A stored k×m); C is overwritten.
//!
//! 2026-11-26, 2 cores of an Intel Xeon (KVM guest; `lscpu`: family 6 model 167, AVX-512 and
//! AMX flags, 48 KiB L1d and 2 MiB L2 per core) — not the AMD Zen 4 that
//! `/work/shared/CPU.md` describes. `gemm` 0.19 with `x86-v4` (AVX-512 kernels),
//! `matrixmultiply` 0.3.11 (AVX-512 by default), generated: 4×12 tile of `f32x4`, KC 256, MC 48.
//!
//! | m×k×n                  | generated 1t | generated 2t | gemm 1t | gemm 2t | mm 1t |
//! |------------------------|-------------:|-------------:|--------:|--------:|------:|
//! | 64×64×64               |         40.1 |        39.7* |   182.1 |   185.3 | 119.0 |
//! | 128×128×128            |         51.1 |        51.2* |   171.2 |   142.8 | 138.5 |
//! | 256×256×256            |         55.9 |         93.7 |   204.8 |   272.0 | 166.4 |
//! | 512×512×512            |         58.1 |        107.9 |   171.5 |   307.1 | 167.5 |
//! | 1024×1024×1024         |         53.0 |        107.4 |   170.8 |   356.8 | 160.4 |
//! | 2048×2048×2048         |         49.1 |         98.1 |   157.2 |   403.8 | 133.3 |
//! | 128×784×256 (x·W1)     |         53.1 |         93.6 |   168.7 |   229.9 | 141.1 |
//! | 128×256×256 (h·W2)     |         53.9 |         85.1 |   182.8 |   208.2 | 150.3 |
//! | 784×128×256 Aᵀ (xᵀ·dh) |         53.0 |         97.5 |   168.2 |   257.2 | 165.8 |
//! | 256×128×10 (head)      |         26.4 |        26.5* |    61.8 |    62.3 |  50.3 |
//!
//! \*: below `PARALLEL_MIN_FMAS` (2²² multiply-adds) the generated product stays on one
//! thread: a rayon fork-join costs ~12 µs here, more than 128³ saves.
//!
//! Who wins: the `gemm` crate, at every size and shape: on one thread 3–3.7× the generated
//! kernel (4.5× at 64³, 2.3× on the 10-column head), on two threads 2.4–4.1× (4.7× at 64³);
//! `matrixmultiply` on one thread is second, 2.7–3.1× the generated kernel (1.9× on the head). The generated kernel is near its ceiling: 55–58 GFLOP/s on one core is about the
//! peak of 128-bit FMAs (2 per cycle), and Cranelift lowers no wider vectors; the libraries use
//! 512-bit ones. So products go to the `gemm` crate; the generated one would only make sense on
//! a target that neither crate serves.
//!
//! Tiles (`-- tiles`, one thread, GFLOP/s at N = 256 / 512 / 1024, A broadcast at every `fma`,
//! k unrolled 4 unless said): 4×12 55.6 / 57.3 / 53.5; 6×8 56.2 / 56.9 / 49.9 (unrolled 2:
//! 56.7 / 55.9 / 54.6); 5×8 54.5 / 54.9 / 50.5; 12×4 53.5 / 54.9 / 52.1; 4×8 48.4 / 47.7 / 44.4;
//! 8×8 (spills 49 stack accesses) 53.0 / 53.1 / 50.3; not unrolled, every tile 41–49.

use circ::backend::cpu::gemm_clif::{GeneratedGemm, Tile};
use gemm::Parallelism;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// One product to time: sizes, and whether A is stored transposed (k×m row-major).
#[derive(Clone, Copy)]
struct Shape {
    m: usize,
    k: usize,
    n: usize,
    a_t: bool,
    what: &'static str,
}

struct Operands {
    s: Shape,
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

impl Operands {
    fn new(s: Shape) -> Operands {
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let a = (0..s.m * s.k).map(|_| rnd()).collect();
        let b = (0..s.k * s.n).map(|_| rnd()).collect();
        Operands { s, a, b, c: vec![0.0; s.m * s.n] }
    }

    /// A's (row, column) strides.
    fn a_strides(&self) -> (isize, isize) {
        if self.s.a_t {
            (1, self.s.m as isize)
        } else {
            (self.s.k as isize, 1)
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Impl {
    Generated(usize),
    Gemm(usize),
    MatrixMultiply,
}

impl Impl {
    fn threads(self) -> usize {
        match self {
            Impl::Generated(t) | Impl::Gemm(t) => t,
            Impl::MatrixMultiply => 1,
        }
    }

    fn name(self) -> String {
        match self {
            Impl::Generated(t) => format!("generated {t}t"),
            Impl::Gemm(t) => format!("gemm {t}t"),
            Impl::MatrixMultiply => "mm 1t".into(),
        }
    }
}

fn run(g: &GeneratedGemm, imp: Impl, o: &mut Operands) {
    let Shape { m, k, n, .. } = o.s;
    let (a_rs, a_cs) = o.a_strides();
    let (a, b, c) = (o.a.as_ptr(), o.b.as_ptr(), o.c.as_mut_ptr());
    // SAFETY: the buffers hold m×k, k×n and m×n values, addressed by these strides.
    unsafe {
        match imp {
            Impl::Generated(t) => g.run(m, k, n, a, a_rs, a_cs, b, n as isize, 1, c, n as isize, false, t),
            Impl::Gemm(t) => {
                let par = if t == 1 { Parallelism::None } else { Parallelism::Rayon(t) };
                gemm::gemm(
                    m, n, k, c, 1, n as isize, false, a, a_cs, a_rs, b, 1, n as isize, 0.0, 1.0, false, false, false,
                    par,
                )
            }
            Impl::MatrixMultiply => {
                matrixmultiply::sgemm(m, k, n, 1.0, a, a_rs, a_cs, b, n as isize, 1, 0.0, c, n as isize, 1)
            }
        }
    }
    black_box(&mut o.c);
}

/// Median GFLOP/s: runs grouped so each sample takes ≥ 20 ms, after ≥ 50 ms of warm-up.
/// Repeated (up to 5 times, after waiting for enough idle CPUs) while other processes took more
/// than the CPUs `threads` leaves free, plus 5% (the machine is shared); a result still disturbed
/// then is returned negative.
fn measure(mut f: impl FnMut(), flops: f64, threads: usize) -> f64 {
    let allowed = 0.05 + cpus().saturating_sub(threads) as f64 / cpus() as f64;
    let mut best = 0f64;
    for _ in 0..5 {
        wait_idle(allowed);
        let before = Ticks::now();
        let t0 = Instant::now();
        let mut reps = 0u32;
        while t0.elapsed() < Duration::from_millis(50) || reps < 2 {
            f();
            reps += 1;
        }
        let per = t0.elapsed().as_secs_f64() / reps as f64;
        let group = ((0.02 / per).ceil() as u32).max(1);
        let mut samples: Vec<f64> = (0..7)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..group {
                    f();
                }
                t.elapsed().as_secs_f64() / group as f64
            })
            .collect();
        samples.sort_by(f64::total_cmp);
        let gflops = flops / samples[samples.len() / 2] / 1e9;
        match (before, Ticks::now()) {
            (Some(b), Some(a)) if a.others_since(&b) > allowed => best = best.max(gflops),
            _ => return gflops,
        }
    }
    -best
}

/// CPU time from /proc (Linux; elsewhere nothing is checked): all CPUs' busy and stolen ticks,
/// this process's ticks, all ticks.
struct Ticks {
    busy: u64,
    own: u64,
    total: u64,
}

impl Ticks {
    fn now() -> Option<Ticks> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        let own: Vec<i64> = own.rsplit(')').next()?.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal; own: fields 4.. of which 14, 15 are
        // utime and stime.
        let busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + cpu[7];
        Some(Ticks { busy, own: (own.get(10)? + own.get(11)?) as u64, total: cpu.iter().take(8).sum() })
    }

    /// The share of all CPUs that other processes (or the hypervisor) took since `b`.
    fn others_since(&self, b: &Ticks) -> f64 {
        let total = (self.total - b.total).max(1) as f64;
        let others = (self.busy - b.busy) as f64 - (self.own - b.own) as f64;
        others / total
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Waits (at most 60 s) until other processes take at most `allowed` of the CPUs over 0.3 s.
fn wait_idle(allowed: f64) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        let Some(b) = Ticks::now() else { return };
        std::thread::sleep(Duration::from_millis(300));
        let Some(a) = Ticks::now() else { return };
        if a.others_since(&b) <= allowed {
            return;
        }
    }
}

/// A GFLOP/s figure; "~" marks one measured while other processes were busy.
fn cell(x: f64) -> String {
    if x < 0.0 {
        format!("~{:.1}", -x)
    } else {
        format!("{x:.1}")
    }
}

fn shapes() -> Vec<Shape> {
    let sq = |n| Shape { m: n, k: n, n, a_t: false, what: "square" };
    let mut v: Vec<Shape> = [64, 128, 256, 512, 1024, 2048].into_iter().map(sq).collect();
    v.push(Shape { m: 128, k: 784, n: 256, a_t: false, what: "mlp: x·W1" });
    v.push(Shape { m: 128, k: 256, n: 256, a_t: false, what: "mlp: h·W2" });
    v.push(Shape { m: 784, k: 128, n: 256, a_t: true, what: "mlp: xᵀ·dh" });
    v.push(Shape { m: 256, k: 128, n: 10, a_t: false, what: "mlp: head" });
    v
}

/// Largest |x − y| / (1 + |y|): the generated product against the `gemm` crate's.
fn max_diff(g: &GeneratedGemm, s: Shape) -> f64 {
    let mut o = Operands::new(s);
    run(g, Impl::Gemm(1), &mut o);
    let want = o.c.clone();
    o.c.fill(f32::NAN);
    run(g, Impl::Generated(2), &mut o);
    o.c.iter().zip(&want).map(|(x, y)| ((x - y).abs() / (1.0 + y.abs())) as f64).fold(0.0, f64::max)
}

fn table(g: &GeneratedGemm) {
    let imps = [Impl::Generated(1), Impl::Generated(2), Impl::Gemm(1), Impl::Gemm(2), Impl::MatrixMultiply];
    print!("| {:<22} |", "m×k×n");
    for i in imps {
        print!(" {:>12} |", i.name());
    }
    println!(" best 1t / 2t");
    print!("|{:-<24}|", "");
    for _ in imps {
        print!("{:-<14}|", "");
    }
    println!();
    for s in shapes() {
        let flops = 2.0 * (s.m * s.k * s.n) as f64;
        let mut o = Operands::new(s);
        // Best median of three rounds, the implementations taking turns: the machine is shared
        // and its speed drifts over minutes, which would otherwise favour whichever ran first.
        let mut r = vec![0f64; imps.len()];
        for _ in 0..3 {
            for (x, &i) in r.iter_mut().zip(&imps) {
                let y = measure(|| run(g, i, &mut o), flops, i.threads());
                if y.abs() > x.abs() {
                    *x = y;
                }
            }
        }
        let label = format!("{}×{}×{}{}", s.m, s.k, s.n, if s.a_t { " (Aᵀ)" } else { "" });
        print!("| {:<22} |", format!("{label} {}", if s.what == "square" { "" } else { s.what }).trim_end());
        for &x in &r {
            print!(" {:>12} |", cell(x));
        }
        let best = |ix: &[usize]| imps[*ix.iter().max_by(|&&a, &&b| r[a].abs().total_cmp(&r[b].abs())).unwrap()].name();
        println!(" {} / {}", best(&[0, 2, 4]), best(&[1, 3]));
        let d = max_diff(g, s);
        assert!(d < 1e-4, "generated product differs from gemm's by {d} at {label}");
    }
}

fn tiles() {
    let mut tiles = Vec::new();
    for (mr, nr) in [(4, 8), (5, 8), (6, 8), (4, 12), (3, 12), (8, 8), (2, 16), (12, 4)] {
        for unroll in [1, 2, 4, 8] {
            for reload_a in [true, false] {
                tiles.push(Tile {
                    mr,
                    nr,
                    unroll,
                    reload_a,
                    mc: mr * (48 / mr),
                    nc: nr * (4096 / nr),
                    ..Tile::default()
                });
            }
        }
    }
    println!("| tile | unroll | A broadcast | stack refs in asm | 1t GFLOP/s at 256 | 512 | 1024 |");
    println!("|---|---|---|---|---|---|---|");
    for t in tiles {
        let g = GeneratedGemm::with_tile(t).expect("compiles");
        let spills = g.asm_text().lines().filter(|l| l.contains("(%rsp)")).count();
        print!(
            "| {}×{} | {} | {} | {spills} |",
            t.mr,
            t.nr,
            t.unroll,
            if t.reload_a { "every fma" } else { "once per row" }
        );
        for n in [256, 512, 1024] {
            let s = Shape { m: n, k: n, n, a_t: false, what: "" };
            let mut o = Operands::new(s);
            print!(" {} |", cell(measure(|| run(&g, Impl::Generated(1), &mut o), 2.0 * (n * n * n) as f64, 1)));
        }
        println!();
    }
}

/// Cache blocking of the default tile: KC × MC at a few sizes, one thread and two.
fn blocks() {
    let sizes = [(1024, 1024, 1024), (2048, 2048, 2048), (128, 784, 256)];
    print!("| KC | MC |");
    for (m, k, n) in sizes {
        print!(" {m}×{k}×{n} 1t | 2t |");
    }
    println!();
    let d = Tile::default();
    for kc in [128, 192, 256, 384, 512] {
        for mc in [d.mr * 12, d.mr * 24, d.mr * 48, d.mr * 96] {
            let g = GeneratedGemm::with_tile(Tile { kc, mc, ..d }).expect("compiles");
            print!("| {kc} | {mc} |");
            for (m, k, n) in sizes {
                let mut o = Operands::new(Shape { m, k, n, a_t: false, what: "" });
                for t in [1, 2] {
                    print!(" {} |", cell(measure(|| run(&g, Impl::Generated(t), &mut o), 2.0 * (m * k * n) as f64, t)));
                }
            }
            println!();
        }
    }
}

fn main() {
    let arg = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    match arg.as_deref() {
        Some("tiles") => tiles(),
        Some("blocks") => blocks(),
        Some("asm") => {
            let g = GeneratedGemm::new().expect("compiles");
            println!("{}\n{}", g.clif_text(), g.asm_text());
        }
        _ => table(&GeneratedGemm::new().expect("compiles")),
    }
}

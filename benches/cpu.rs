//! The CPU backend benchmark of issue 6, circ's side: prints one JSON line per measurement on
//! stdout (read by `bench/compare.py`, which puts numpy and JAX beside it) and a readable summary
//! with the slowest kernels on stderr.
//!
//! - `mlp784_step`, `digits_step`: one SGD training step (forward, loss with priors, gradient,
//!   update) of `benches/models/mlp784.circ` at batch 128 and `benches/models/digits.circ` at
//!   batch 64, on random data, through the executor, with the parameters kept in it between
//!   steps (`Executor::carry`), as JAX keeps its arrays; the batch is written in every step.
//! - `mlp784_compile`, `digits_compile`: from source text to a step ready to run (check, lower,
//!   differentiate, optimize, partition, JIT compile).
//! - `sgemm_N`: `C = A·B`, square, f32, with the executor's matrix product on every core.
//! - `mlp784_peak_memory`: the buffer plan's peak for the step (stated before the run), and the
//!   process's peak resident set.
//!
//! `cargo bench --bench cpu` (all of it takes about a minute).

use circ::backend::cpu::executor::Executor;
use circ::backend::cpu::{matmul, Options};
use circ::interp::HostTensor;
use circ::ir::Graph;
use circ_runtime::cpu::room::Usage;
use std::time::{Duration, Instant};

fn main() {
    let root = env!("CARGO_MANIFEST_DIR");
    let load = OtherLoad::start();
    // (id, model, batch, rows of the data set the batch is drawn from, runs at least)
    for (id, file, batch, rows, min_runs) in [
        ("mlp784", "benches/models/mlp784.circ", 128, 60000.0, 200),
        ("digits", "benches/models/digits.circ", 64, 1797.0, 2000),
    ] {
        let path = format!("{root}/{file}");
        let text = std::fs::read_to_string(&path).expect("the benchmark model");
        let compile = sample(20, Duration::from_millis(500), || {
            std::hint::black_box(build(file, &text));
        });
        emit(&format!("{id}_compile"), &compile, None);
        let (g, mut exec) = build(file, &text);
        let (data, params, inputs) = feed(&g, batch, rows);
        // Parameters stay in the executor between steps (`new.<p>` carried into `<p>`), as
        // device arrays stay with JAX.
        let links: Vec<(String, circ::ir::NodeId)> = g
            .params
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let leaf = circ::autodiff::param_node(&g, i)?;
                Some((format!("new.{}", p.name), leaf))
            })
            .collect();
        let refs: Vec<(&str, circ::ir::NodeId)> = links.iter().map(|(n, l)| (n.as_str(), *l)).collect();
        exec.carry(&refs).expect("parameters carry");
        let mut steps = 0;
        let step = sample(min_runs, Duration::from_secs(3), || {
            // Back to the first parameters every 50 steps: one random batch over and over
            // would drive them far from any realistic value.
            steps += 1;
            if steps % 50 == 0 {
                exec.carry(&refs).expect("parameters carry");
            }
            let out = exec.run(&data, &params, &inputs).expect("the step runs");
            assert!(out.loss().is_finite(), "{id}: the loss diverged");
        });
        emit(&format!("{id}_step"), &step, None);
        profile(id, &mut exec, &data, &params, &inputs);
        if id == "mlp784" {
            let peak = exec.peak_bytes().expect("a plan was made") as f64 / (1 << 20) as f64;
            println!("{{\"bench\": \"mlp784_peak_memory\", \"impl\": \"circ\", \"mib\": {peak:.2}, \"note\": \"buffer plan: leaves + intermediates\"}}");
            if let Some(rss) = peak_rss_mib() {
                eprintln!("process peak resident set so far: {rss:.1} MiB");
            }
        }
    }
    let threads = Options::default().threads;
    for n in [256usize, 512, 1024, 2048] {
        let a: Vec<f32> = (0..n * n).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
        let b: Vec<f32> = (0..n * n).map(|i| ((i * 104729) % 1000) as f32 / 1000.0).collect();
        let mut c = vec![0.0f32; n * n];
        let shape = [n, n];
        let runs = sample(5, Duration::from_secs(2), || {
            let oa = matmul::Operand { data: a.as_ptr(), shape: &shape, transposed: false };
            let ob = matmul::Operand { data: b.as_ptr(), shape: &shape, transposed: false };
            // SAFETY: every buffer holds n·n elements and `c` overlaps neither operand.
            unsafe { matmul::product(oa, ob, c.as_mut_ptr(), &shape, threads) }.expect("square product");
            std::hint::black_box(&c);
        });
        let gflops = 2.0 * (n as f64).powi(3) / median(&runs) / 1e9;
        emit(&format!("sgemm_{n}"), &runs, Some(gflops));
        if n == 1024 {
            // One core, for scale: the micro-kernel's own speed.
            let one = sample(5, Duration::from_secs(2), || {
                let oa = matmul::Operand { data: a.as_ptr(), shape: &shape, transposed: false };
                let ob = matmul::Operand { data: b.as_ptr(), shape: &shape, transposed: false };
                // SAFETY: as above.
                unsafe { matmul::product(oa, ob, c.as_mut_ptr(), &shape, 1) }.expect("square product");
            });
            let g1 = 2.0 * (n as f64).powi(3) / median(&one) / 1e9;
            eprintln!("sgemm_1024 on one thread: {g1:.1} GFLOP/s");
        }
    }
    println!(
        "{{\"bench\": \"_env\", \"impl\": \"circ\", \"gemm_kernels\": \"{}\", \"threads\": {threads}}}",
        gemm_kernels()
    );
    if let Some(share) = load.share() {
        println!("{{\"bench\": \"_env\", \"impl\": \"circ\", \"other_cpu_share\": {share:.3}}}");
        eprintln!("other processes took {:.1}% of the machine's CPU during the run", share * 100.0);
    }
}

/// The micro-kernels the `gemm` crate chooses at run time on this CPU (built with `x86-v4`, it
/// takes AVX-512 where the CPU has it, else AVX2 with FMA).
fn gemm_kernels() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return "avx2+fma";
        }
    }
    "scalar or other"
}

/// How much of the machine's CPU other processes used while the benchmark ran: the busy time of
/// the CPUs the process may use (`/proc/stat`) less its own, over wall time × CPUs, as the thread
/// team measures it (`circ_runtime::cpu::room`). Linux only.
struct OtherLoad(Option<Usage>);

impl OtherLoad {
    fn start() -> OtherLoad {
        OtherLoad(Usage::now())
    }

    fn share(&self) -> Option<f64> {
        let (start, now) = (self.0?, Usage::now()?);
        Some(now.others_since(&start) / now.cpus as f64)
    }
}

/// Source text to a ready executor of the training step.
fn build(file: &str, text: &str) -> (Graph, Executor) {
    let checked = circ::driver::check_source(file, text);
    assert!(!checked.has_errors(), "{}", checked.render(false));
    let rule = circ::driver::parse_update_rule("sgd(lr = 1e-4)").expect("a rule");
    let g = circ::train::step::build(&checked.models[0], 0, &rule).graph;
    let exec = Executor::new(&g).expect("the step compiles");
    (g, exec)
}

/// Random pixels in [0, 1), labels 0..9, the initial parameters, and the step's extra inputs
/// (`batch_scale` = rows / batch).
fn feed(g: &Graph, batch: usize, rows: f64) -> (Vec<HostTensor>, Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let mut state = 0x2545f4914f6cdd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let data = g
        .data
        .iter()
        .map(|d| {
            let mut shape = vec![batch];
            for k in &d.shape[1..] {
                match k {
                    circ::check::types::Dim::Known(n) => shape.push(*n as usize),
                    _ => panic!("the benchmark models have one symbolic size, the batch"),
                }
            }
            let count: usize = shape.iter().product();
            let values = match d.elem {
                circ::check::types::Elem::Float => (0..count).map(|_| (next() % 1000) as f64 / 1000.0).collect(),
                circ::check::types::Elem::Int => (0..count).map(|_| (next() % 10) as f64).collect(),
            };
            HostTensor::new(shape, values)
        })
        .collect();
    let params = circ::ir::init::initial_values(g);
    let inputs = g
        .inputs
        .iter()
        .map(|i| match i.name.as_str() {
            "batch_scale" => vec![rows / batch as f64],
            "step" => vec![1.0],
            _ => vec![0.0; i.shape.iter().product::<u64>() as usize],
        })
        .collect();
    (data, params, inputs)
}

/// Runs `f` at least `min_runs` times and for at least `min_time`, after a warm-up of 5 calls
/// and 0.3 s (as `bench/peers.py`: the steady state, past the thread team's first 200 ms
/// window of measuring the machine's load); the times.
fn sample(min_runs: usize, min_time: Duration, mut f: impl FnMut()) -> Vec<f64> {
    let warm = Instant::now();
    for _ in 0..5 {
        f();
    }
    while warm.elapsed() < WARM_UP {
        f();
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < min_runs || start.elapsed() < min_time {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times
}

/// The least time spent warming up before a measurement.
const WARM_UP: Duration = Duration::from_millis(300);

fn median(times: &[f64]) -> f64 {
    let mut v = times.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One JSON line (median, mean and fastest run; `bench/compare.py` derives GFLOP/s from the
/// statistic it judges) and a readable line on stderr.
fn emit(bench: &str, times: &[f64], gflops: Option<f64>) {
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "{{\"bench\": \"{bench}\", \"impl\": \"circ\", \"median_ms\": {:.4}, \"mean_ms\": {:.4}, \"min_ms\": {:.4}, \"runs\": {}}}",
        median(times) * 1e3,
        mean * 1e3,
        min * 1e3,
        times.len()
    );
    eprintln!(
        "{bench:<16} median {:>9.4} ms  mean {:>9.4} ms  min {:>9.4} ms  ({} runs){}",
        median(times) * 1e3,
        mean * 1e3,
        min * 1e3,
        times.len(),
        gflops.map_or(String::new(), |x| format!("  {x:.1} GFLOP/s"))
    );
}

/// Where the step's time goes: the five slowest kernels over 100 runs.
fn profile(id: &str, exec: &mut Executor, data: &[HostTensor], params: &[Vec<f64>], inputs: &[Vec<f64>]) {
    exec.profile(true);
    let runs = 100;
    let t = Instant::now();
    for _ in 0..runs {
        exec.run(data, params, inputs).expect("the step runs");
    }
    let total = t.elapsed() / runs;
    let times = exec.kernel_times().expect("profiling").to_vec();
    exec.profile(false);
    let kernels: Duration = times.iter().sum::<Duration>() / runs;
    eprintln!(
        "{id}: {:.3} ms per step, {:.3} ms in kernels; slowest kernels:",
        total.as_secs_f64() * 1e3,
        kernels.as_secs_f64() * 1e3
    );
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(times[*i]));
    for &i in order.iter().take(6) {
        let k = &exec.partition().kernels[i];
        eprintln!(
            "  kernel {i:>3} {:<12} {:>8.1} µs  {:?}",
            k.kind.name(),
            (times[i] / runs).as_secs_f64() * 1e6,
            k.space
        );
    }
}

/// The process's peak resident set (Linux), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

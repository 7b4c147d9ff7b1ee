//! The whole-graph CPU executor (`circ::backend::cpu::executor`) against the interpreter in
//! `f32`, on every example as four graphs: lowered, optimized, with parameter gradients, and the
//! whole training step (update rule `adam(lr = 1e-3)` where the model names none), on random data
//! with every symbol bound to N = 37 (labels in each datum's range, `circ::data::label_range`;
//! every float datum positive, in [0.1, 1.5), so that models taking `log` of data are defined).
//!
//! Tolerance: every element of every output within `1e-5` relative of the interpreter's
//! (`interp::run_with::<f32>`). The executor differs from the interpreter in three ways only: a
//! JIT reduction epilogue sums in another order (four lanes, then a scalar tail, per row) than the
//! interpreter's sequential sum, matrix products sum in the blocked order of the `gemm` crate with
//! `fma`, and the JIT contracts `a·b + c` into one `fma` (one rounding fewer). Where that shows,
//! the comparison is looser, in two documented ways:
//! - near zero: an element is compared relative to `max(|want|, scale)`, where `scale` is a
//!   fraction of the largest magnitude in its output (`NEAR_ZERO` = 1e-2): a value that cancels
//!   down to near zero carries the rounding of its large terms, which no reordering keeps small
//!   relative to the tiny result. `ista`'s ten unrolled steps `h + (x − h d) dᵀ η` amplify
//!   one-rounding differences into elements 1e-3 of their output's scale that differ by 3e-5 of
//!   themselves (1e-8 absolute), hence the fraction;
//! - reordered sums: an element may also differ by `1e-5` relative plus three times the f32
//!   interpreter's own error against the f64 interpreter (`REORDERED`): two summation orders in
//!   f32 each carry an error of that size, and the matrix products (the `gemm` crate's blocked
//!   kernels, which sum `k` in another order with `fma`) add a third. In `ista`, a `pixels.mean`
//!   element of −3.3e-4 after ten unrolled steps is 2.6e-5 relative from the f32 interpreter,
//!   which is itself 1.5e-5 from f64 (the executor 4e-5). `ista`'s training-step loss (a sum of 2 368 squared
//!   residuals after ten unrolled steps) is 1.4e-5 relative from the f32 interpreter's, which is
//!   itself 2.4e-5 from the f64 value (the executor's is 1.1e-5 from it: the sequential f32 sum
//!   is the less accurate one).
//!
//! Every graph is compared twice: with `fma` off and with the default options. Matrix products
//! run on the `gemm` crate, whose kernels always use `fma`, so `Options::fma` only switches
//! contraction in the generated elementwise code. The largest error and how many elements needed each allowance are printed
//! (`cargo test --test cpu_executor -- --nocapture`).
//!
//! `cargo test --release --test cpu_executor -- --ignored --nocapture` times one training step of
//! `examples/mlp_digits.circ` at batch 64, executor vs interpreter.

use circ::backend::cpu::executor::Executor;
use circ::backend::cpu::Options;
use circ::check::types::{Dim, Elem};
use circ::interp::{self, HostTensor};
use circ::ir::Graph;
use std::path::Path;
use std::time::Instant;

const N: usize = 37;
const RTOL: f64 = 1e-5;
/// Results near zero are compared relative to this fraction of their output's largest magnitude
/// (see the header).
const NEAR_ZERO: f64 = 1e-2;
/// How many times the f32 interpreter's own error (against f64) a reordered sum may add.
const REORDERED: f64 = 3.0;

fn stages(file: &str, text: &str) -> Vec<(String, Graph)> {
    let checked = circ::driver::check_source(file, text);
    assert!(!checked.has_errors(), "{}", checked.render(false));
    let adam = circ::driver::parse_update_rule("adam(lr = 1e-3)").expect("a valid rule");
    let mut out = Vec::new();
    for (model, lowered) in checked.models.iter().zip(circ::driver::lower(&checked, 0)) {
        let mut optimized = lowered.clone();
        circ::passes::optimize(&mut optimized);
        let mut gradient = optimized.clone();
        circ::autodiff::add_param_gradients(&mut gradient);
        circ::passes::optimize(&mut gradient);
        let step = circ::train::step::build(model, 0, &adam).graph;
        let name = &model.name;
        out.push((format!("{name} lowered"), lowered));
        out.push((format!("{name} optimized"), optimized));
        out.push((format!("{name} gradient"), gradient));
        out.push((format!("{name} step"), step));
    }
    out
}

fn examples() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "circ"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "expected the examples of the brief");
    files
        .into_iter()
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect()
}

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next() >> 11) as f64 / (1u64 << 53) as f64)
    }
}

fn concrete(shape: &[Dim], n: usize) -> Vec<usize> {
    shape
        .iter()
        .map(|d| match d {
            Dim::Known(k) => *k as usize,
            Dim::Sym(_) => n,
            Dim::Any => panic!("a verified graph has no unknown size"),
        })
        .collect()
}

/// Random data (symbols bound to `n`), the initial parameters, and positive extra inputs (the
/// optimizer's step counter is 3).
fn feed(g: &Graph, n: usize, seed: u64) -> (Vec<HostTensor>, Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let mut rng = Rng(seed);
    let data = g
        .data
        .iter()
        .enumerate()
        .map(|(i, info)| {
            let shape = concrete(&info.shape, n);
            let count: usize = shape.iter().product();
            let values = match info.elem {
                Elem::Float => (0..count).map(|_| rng.uniform(0.1, 1.5)).collect(),
                Elem::Int => {
                    let (lo, hi) = circ::data::label_range(g, i).unwrap_or((0, 1));
                    let span = (hi - lo + 1) as u64;
                    (0..count).map(|_| (lo + (rng.next() % span) as i64) as f64).collect()
                }
            };
            HostTensor::new(shape, values)
        })
        .collect();
    let params = circ::ir::init::initial_values(g);
    let inputs = g
        .inputs
        .iter()
        .map(|i| {
            let count: u64 = i.shape.iter().product();
            if i.name == "step" {
                vec![3.0]
            } else {
                (0..count).map(|_| rng.uniform(0.1, 1.0)).collect()
            }
        })
        .collect();
    (data, params, inputs)
}

/// How one graph compared.
#[derive(Default)]
struct Report {
    /// The largest `|executor − interp f32| / max(|interp f32|, scale)` over every element.
    worst: f64,
    /// Elements within `RTOL` only thanks to the output's `scale` (results near zero after
    /// cancellation).
    near_zero: usize,
    /// Elements within tolerance only after adding the f32 interpreter's own error against the
    /// f64 interpreter (reordered sums; see the header).
    by_f64: usize,
    elements: usize,
}

/// Runs `g` on the executor and the interpreter (f32, and f64 as the arbiter) and compares every
/// output, as the header says.
fn compare(label: &str, g: &Graph, opts: &Options, near_zero: f64) -> (Report, circ::backend::cpu::executor::Stats) {
    let (data, params, inputs) = feed(g, N, 0x5eed ^ g.len() as u64);
    let want = interp::run_with::<f32>(g, &data, &params, &inputs).unwrap_or_else(|e| panic!("{label}: {e}"));
    let exact = interp::run_with::<f64>(g, &data, &params, &inputs).unwrap_or_else(|e| panic!("{label}: {e}"));
    let mut exec = Executor::with_options(g, opts).unwrap_or_else(|e| panic!("{label}: {e}"));
    let got = exec.run(&data, &params, &inputs).unwrap_or_else(|e| panic!("{label}: {e}"));
    // Twice, to exercise the cached plan and a reused arena.
    let again = exec.run(&data, &params, &inputs).unwrap_or_else(|e| panic!("{label}: {e}"));
    let mut r = Report::default();
    for o in &g.outputs {
        let w = want.get(&o.name).expect("every output");
        let e = exact.get(&o.name).expect("every output");
        let x = got.get(&o.name).unwrap_or_else(|| panic!("{label}: output {} missing", o.name));
        assert_eq!(x.shape, w.shape, "{label}: shape of {}", o.name);
        assert_eq!(x.data.len(), w.data.len(), "{label}: length of {}", o.name);
        assert_eq!(again.get(&o.name).unwrap().data, x.data, "{label}: {} differs between runs", o.name);
        let scale = near_zero * w.data.iter().fold(0.0f64, |m, v| m.max((*v as f64).abs()));
        for (i, ((a, b), c)) in x.data.iter().zip(&w.data).zip(&e.data).enumerate() {
            r.elements += 1;
            let (a, b) = (*a as f64, *b as f64);
            if a == b || (a.is_nan() && b.is_nan()) {
                continue;
            }
            let err = (a - b).abs() / b.abs().max(scale);
            r.worst = r.worst.max(err);
            if (a - b).abs() <= RTOL * b.abs() {
                continue;
            }
            if err <= RTOL {
                r.near_zero += 1;
                continue;
            }
            let reference_error = REORDERED * (b - c).abs();
            assert!(
                (a - b).abs() <= RTOL * b.abs().max(scale) + reference_error,
                "{label}: output {} [{i}]: executor {a}, interpreter f32 {b}, f64 {c} (relative error {err:e})",
                o.name
            );
            r.by_f64 += 1;
        }
    }
    let s = exec.stats();
    assert_eq!(s.jit + s.matmul + s.interpreted, s.kernels);
    assert_eq!(s.jit_runs, 2 * (s.jit + s.jit_epilogues) as u64, "{label}");
    (r, s)
}

#[test]
fn every_example_runs_as_the_interpreter() {
    let mut total_jit = 0;
    for (name, text) in examples() {
        for (stage, g) in stages(&format!("examples/{name}.circ"), &text) {
            let label = format!("{name}: {stage}");
            let plain = Options { fma: false, ..Options::default() };
            let (r, _) = compare(&format!("{label} (no fma)"), &g, &plain, NEAR_ZERO);
            println!("{name:>15} {stage:<20} without fma: worst rel. error {:.2e}, {} near zero, {} within the f32 reference's own error", r.worst, r.near_zero, r.by_f64);
            let (r, s) = compare(&label, &g, &Options::default(), NEAR_ZERO);
            total_jit += s.jit;
            println!(
                "{name:>15} {stage:<20} {:>3} kernels: {:>3} JIT'd, {:>3} products ({} with a JIT'd epilogue), {:>3} interpreted ({} elementwise refused); \
                 {:>6} elements, worst rel. error {:.2e}, {} near zero, {} within the f32 reference's own error",
                s.kernels, s.jit, s.matmul, s.jit_epilogues, s.interpreted, s.unsupported, r.elements, r.worst, r.near_zero, r.by_f64
            );
        }
    }
    assert!(total_jit > 0, "no kernel was compiled");
}

#[test]
fn the_plan_is_cached_per_size_and_sizes_can_change() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mlp_digits.circ");
    let text = std::fs::read_to_string(&path).unwrap();
    let (_, g) = stages("examples/mlp_digits.circ", &text).pop().unwrap();
    let mut exec = Executor::new(&g).unwrap();
    for n in [5, 37, 5, 64] {
        let (data, params, inputs) = feed(&g, n, 7 + n as u64);
        let want = interp::run_with::<f32>(&g, &data, &params, &inputs).unwrap();
        let got = exec.run(&data, &params, &inputs).unwrap();
        let (a, b) = (got.loss(), want.loss());
        assert!((a - b).abs() <= 1e-5 * b.abs(), "N = {n}: loss {a} vs {b}");
    }
    // Bad inputs are the interpreter's errors.
    let (mut data, params, inputs) = feed(&g, 5, 1);
    data[1].values[0] = 0.5;
    let err = exec.run(&data, &params, &inputs).unwrap_err();
    assert!(
        matches!(err, circ::backend::cpu::executor::ExecError::Interp(interp::InterpError::NotInteger { .. })),
        "{err}"
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[test]
#[ignore = "timing; run with --release --ignored --nocapture"]
fn time_one_mlp_digits_training_step() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mlp_digits.circ");
    let text = std::fs::read_to_string(&path).unwrap();
    let (_, g) = stages("examples/mlp_digits.circ", &text).pop().unwrap();
    let (data, params, inputs) = feed(&g, 64, 42);
    let t = Instant::now();
    let mut exec = Executor::new(&g).unwrap();
    let compile = t.elapsed().as_secs_f64();
    let runs = 20;
    let mut ex = Vec::new();
    let mut it = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        std::hint::black_box(exec.run(&data, &params, &inputs).unwrap());
        ex.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::hint::black_box(interp::run_with::<f32>(&g, &data, &params, &inputs).unwrap());
        it.push(t.elapsed().as_secs_f64());
    }
    let s = exec.stats();
    let (me, mi) = (median(ex), median(it));
    println!(
        "mlp_digits step, batch 64, median of {runs}: executor {:.3} ms, interpreter f32 {:.3} ms ({:.2}x); \
         compile {:.1} ms; {} kernels, {} JIT'd, {} interpreted ({} with a JIT'd epilogue)",
        me * 1e3,
        mi * 1e3,
        mi / me,
        compile * 1e3,
        s.kernels,
        s.jit,
        s.interpreted,
        s.jit_epilogues
    );
}

//! The whole-graph executors, CPU (`circ::backend::cpu::executor`) and OpenCL
//! (`circ::backend::opencl::executor`), against the interpreter in `f32`, on two sets of graphs
//! (on OpenCL: every example, and `OPENCL_SEEDS` random graphs, since PoCL builds each program
//! with LLVM in about a second; an OpenCL device is needed, see `opencl_available`):
//! - every example as six graphs: lowered, optimized, with parameter gradients, with bprop2's
//!   curvature (`bprop2::add_curvature`, Gauss–Newton and full, each optimized again), and the
//!   whole training step (update rule `adam(lr = 1e-3)` where the model names none), on random data
//!   with every symbol bound to N = 37 (labels in each datum's range, `circ::data::label_range`;
//!   every float datum positive, in [0.1, 1.5), so that models taking `log` of data are defined);
//! - random graphs (`random_graphs_run_as_the_interpreter`): `SEEDS` graphs of the generator of
//!   `tests/passes.rs` (`tests/common/random_graph.rs`: every op, on its own data with `N` = 3),
//!   each as generated, optimized and, when it has parameters, with parameter gradients and with
//!   bprop2's curvature (both variants). For bprop2, `add_terms` first gives the graph likelihood
//!   terms (normal and laplace with a constant or a predicted scale, categorical, bernoulli) and
//!   activation priors (normal, laplace, log-normal) on values that depend on a parameter, and
//!   priors on its parameters, so that curvature flows back through the random ops. A graph with a
//!   non-finite value in the f64 interpreter is skipped and counted (none in the first 600 seeds;
//!   7 of the 1 953 gradient graphs of 3 000 seeds and their bprop2 graphs, all from `sqrt`'s
//!   derivative `0.5 / √x` at x = 0, the `sqrt` of a `relu`); a graph the executor refuses
//!   (`Executor::new`) or cannot run is a failure. `CIRC_RANDOM_GRAPHS=3000` runs more seeds.
//!
//! Tolerance: every element of every output within `1e-5` relative of the interpreter's
//! (`interp::run_with::<f32>`). The executor differs from the interpreter in four ways only: a
//! JIT reduction epilogue sums in another order (four lanes, then a scalar tail, per row) than the
//! interpreter's sequential sum, matrix products sum in the blocked order of the `gemm` crate with
//! `fma`, the JIT contracts `a·b + c` into one `fma` (one rounding fewer), and the JIT computes
//! `exp log tanh sigmoid softplus` inline, within 2.4 ulp (`backend/cpu/math.rs`) where the
//! interpreter calls Rust's `f32` functions. Each is a difference of a few roundings; where it
//! shows, the comparison is looser, in three documented ways, each counted and printed:
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
//!   is the less accurate one);
//! - cancellation: an element may also differ by `CANCELLED` = 16 units of roundoff (2⁻²⁴) of its
//!   *rounding magnitude* `A`: a first-order bound, computed in f64 by `magnitudes`, on how far
//!   rounding each operation once moves it, which is the size of the values it is computed from
//!   where it cancels (and `|value|` times its condition number elsewhere), capped by the largest
//!   real value its output is computed from (`rounding_magnitudes`; the bound alone grows
//!   geometrically through `ista`'s unrolled products, to 5e10 for a `pixels.mean` of 0.28). The
//!   two rules above take the output's largest element or the f32 interpreter's own error as the
//!   size of what a value cancelled from; neither holds for a scalar output, an output whose
//!   elements all cancel, or an interpreter that happens to round well. The random graphs need this
//!   rule for one or two rounding differences each, all from the first three differences above
//!   (3 000 seeds, with `fma` off and on):
//!   - `fma` contraction: seed 134 (gradient and bprop2 Gauss–Newton; `fma` on), `grad.w1[0]` =
//!     `2 + e·s − m` with terms near 2, cancelling to −3.4144e-4 (f64): executor −3.4165e-4, f32
//!     interpreter −3.4142e-4, i.e. one rounding at 2 (2.4e-7, 2.5e-5 of the output's scale
//!     0.95 · `NEAR_ZERO`): 1.10 units of its magnitude 3.65. Seed 1568 (the generated graph,
//!     `fma` on): `x·w − x·w` of duplicate nodes is 3.2e-9, the rounding error of the product,
//!     where the interpreter (and f64) give 0: 0.03 units of 1.66;
//!   - a reordered reduction epilogue: seed 1658 (bprop2, both variants, `fma` off and on), the
//!     scalar `sum(x) + w + …` over 24 data in [−2, 2] cancelling to 0.0241580 (f64): executor
//!     0.0241585, f32 interpreter 0.0241580, 2.0e-5 relative: 2.36 units of its magnitude 3.39.
//!
//!   The largest difference of any element of the random graphs, wherever it passed, is 38 units
//!   of its magnitude (a sum of many terms, which `A` counts as one rounding); of the examples, 46
//!   (`mlp_digits`'s loss, a sum over 37 examples, 2.7e-6 relative). No example element needs the
//!   rule.
//!
//! `worst rel. error` in the printed summaries is the largest `|executor − interp f32| /
//! max(|interp f32|, scale)` over every element, allowances included: where the f32 interpreter's
//! result is itself all rounding (seed 569: a gradient of 1.2e-7 where f64 gives 0, and the
//! executor 0) it reaches 1 or more.
//!
//! The OpenCL executor differs from the interpreter in the same kinds of ways: its products sum
//! `k` in order but the device compiler may contract `a·b + c` (OpenCL C allows it), its
//! reductions sum in a work-group tree, and its `exp log tanh` are the device's (OpenCL allows 3
//! ulp, 4 for `pow`); the same tolerance holds. On PoCL (2026-12-04) no element of any example
//! or random graph needs the cancellation rule: the worst are `ista`'s training step (2.4e-5
//! relative; 29 elements near zero, 1 within the f32 reference's own error) and `mlp_digits`'s
//! (1.3e-5; 2 near zero, 2 within the reference's error); 12 random graphs' worst is 2.6e-7.
//!
//! The `ista` figures in this header were measured on the soft-threshold `ista.circ` that E7
//! replaced (2026-12-05) by k-sparse codes of normalised atoms. On the current one the worst
//! element of its six graphs is 1.7e-5 relative on the CPU executor (`optimized`, `fma` off; one
//! element within the f32 reference's own error) and 7.7e-6 on PoCL; none needs the cancellation
//! rule.
//!
//! Every graph is compared twice: with `fma` off and with the default options. Matrix products
//! run on the `gemm` crate, whose kernels always use `fma`, so `Options::fma` only switches
//! contraction in the generated elementwise code. The largest error and how many elements needed each allowance are printed
//! (`cargo test --test executors -- --nocapture`).
//!
//! `cargo test --release --test executors -- --ignored --nocapture` times one training step of
//! `examples/mlp_digits.circ` at batch 64, executor vs interpreter.

#[path = "common/opencl.rs"]
mod opencl;
#[path = "common/random_graph.rs"]
mod random_graph;

use circ::autodiff::bprop2::{self, Variant};
use circ::backend::cpu::executor::{Executor, Stats};
use circ::backend::cpu::Options;
use circ::backend::opencl::executor::{ClExecutor, ClOptions};
use circ::backend::opencl::matmul::{self, Style};
use circ::check::checked::{DataSource, Prior};
use circ::check::types::{Dim, Elem};
use circ::interp::{self, HostTensor};
use circ::ir::graph::{DataInfo, Likelihood, Node, Output, Scale, Term};
use circ::ir::op::{BinaryOp, UnaryOp};
use circ::ir::{Graph, NodeId, Op};
use opencl::opencl_available;
use random_graph::{random_graph, Rng};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

const N: usize = 37;
const RTOL: f64 = 1e-5;
/// Results near zero are compared relative to this fraction of their output's largest magnitude
/// (see the header).
const NEAR_ZERO: f64 = 1e-2;
/// How many times the f32 interpreter's own error (against f64) a reordered sum may add.
const REORDERED: f64 = 3.0;
/// How many units of roundoff of its rounding magnitude (`magnitudes`) an element may differ by.
const CANCELLED: f64 = 16.0;

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
        let [gn, full] = curvature(&optimized);
        out.push((format!("{name} lowered"), lowered));
        out.push((format!("{name} optimized"), optimized));
        out.push((format!("{name} gradient"), gradient));
        out.push((format!("{name} bprop2 gn"), gn));
        out.push((format!("{name} bprop2 full"), full));
        out.push((format!("{name} step"), step));
    }
    out
}

/// `g` (optimized) with bprop2's gradient and curvature outputs, Gauss–Newton and full, each
/// optimized again (as `train::step` builds it for `newton` and `bayes`).
fn curvature(g: &Graph) -> [Graph; 2] {
    [Variant::GaussNewton, Variant::Full].map(|v| {
        let mut c = g.clone();
        bprop2::add_curvature(&mut c, v);
        circ::passes::optimize(&mut c);
        c
    })
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
    /// Elements within tolerance only by `CANCELLED` units of roundoff of their magnitude.
    cancelled: usize,
    /// The largest `|executor − interp f32| / (UNIT · A)` over every element (`A` its rounding
    /// magnitude), and over the elements that needed the `CANCELLED` allowance.
    worst_units: f64,
    worst_cancelled: f64,
    /// Each element that needed the `CANCELLED` allowance, described.
    cancellations: Vec<String>,
    elements: usize,
}

/// The unit roundoff of `f32`, 2⁻²⁴.
const UNIT: f64 = 1.0 / 16_777_216.0;

/// `g` computing, for every output, the *rounding magnitude* `A` of each of its elements (see the
/// header) instead of its value: next to each real node `x`, a node `A(x)` built by one rule per
/// op, so that rounding each operation's result (relative error `UNIT`) moves `x` by about
/// `UNIT · A(x)` (to first order, and counting each operation once):
/// - leaves, and results that are exact or 0/1 (`one_hot`, `cast`, `step`, `sign`, `eq`,
///   `kmax_mask`): `|x|`;
/// - `neg`, `abs`, `relu`, and ops that move or select elements (reshape, transpose, slice,
///   concat, expand, embed; `kmax` times its mask): the same op on the operands' `A`;
/// - other elementwise `f`: `|f'(x)| A(x) + |f(x)|` (the derivative rules of `autodiff`);
/// - `x ± y`: `A(x) + A(y)`; `x y`: `|y| A(x) + |x| A(y) + |xy|`; `x / y`:
///   `(A(x) + |x/y| A(y)) / |y| + |x/y|`; `x^y`: `|y x^(y−1)| A(x) + |x^y ln x| A(y) + |x^y|`
///   (without the last `A(y)` term for a constant `y`);
/// - `x @ y`: `A(x) @ |y| + |x| @ A(y)`; sum, mean and max: the same reduction of `A(x)`;
///   `logsumexp`: the maximum of `A(x)` along its axis plus `|result|`.
///
/// Where a value is far smaller than what it is computed from (cancellation), `A` is the size of
/// what it is computed from; elsewhere `A` is about `|x|` times the condition number of `x`.
/// Returns the graph and the node of each output's `A` (`None` for an integer output).
fn magnitudes(g: &Graph) -> (Graph, Vec<Option<NodeId>>) {
    use circ::autodiff::reverse::unary_derivative;
    let mut m = g.clone();
    let mut a: HashMap<NodeId, NodeId> = HashMap::new();
    fn abs(m: &mut Graph, x: NodeId) -> NodeId {
        m.unary(UnaryOp::Abs, x, None)
    }
    fn add(m: &mut Graph, x: NodeId, y: NodeId) -> NodeId {
        m.binary(BinaryOp::Add, x, y, None)
    }
    fn mul(m: &mut Graph, x: NodeId, y: NodeId) -> NodeId {
        m.binary(BinaryOp::Mul, x, y, None)
    }
    for v in g.topo_order() {
        let node = g.node(v);
        if node.elem != Elem::Float {
            continue;
        }
        let xs = g.operands(v);
        let ax: Vec<NodeId> = xs.iter().filter_map(|x| a.get(x).copied()).collect();
        let exact = matches!(
            node.op,
            Op::Data(_)
                | Op::Param(_)
                | Op::Input(_)
                | Op::Const(_)
                | Op::KMaxMask { .. }
                | Op::OneHot { .. }
                | Op::Cast
                | Op::Unary(UnaryOp::Step | UnaryOp::Sign)
                | Op::Binary(BinaryOp::Eq)
        );
        let av = if exact {
            abs(&mut m, v)
        } else if ax.len() != xs.len() {
            continue; // reads an integer tensor otherwise than by `one_hot` or `cast`
        } else {
            match &node.op {
                Op::Unary(UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Relu) => ax[0],
                Op::Unary(f) => {
                    let d = unary_derivative(&mut m, *f, xs[0], v, None).expect("a differentiable op");
                    let d = abs(&mut m, d);
                    let t = mul(&mut m, d, ax[0]);
                    let r = abs(&mut m, v);
                    add(&mut m, t, r)
                }
                Op::Binary(BinaryOp::Add | BinaryOp::Sub) => add(&mut m, ax[0], ax[1]),
                Op::Binary(BinaryOp::Mul) => {
                    let (x, y) = (abs(&mut m, xs[0]), abs(&mut m, xs[1]));
                    let t = mul(&mut m, y, ax[0]);
                    let u = mul(&mut m, x, ax[1]);
                    let t = add(&mut m, t, u);
                    let r = abs(&mut m, v);
                    add(&mut m, t, r)
                }
                Op::Binary(BinaryOp::Div) => {
                    let r = abs(&mut m, v);
                    let y = abs(&mut m, xs[1]);
                    let u = mul(&mut m, r, ax[1]);
                    let t = add(&mut m, ax[0], u);
                    let t = m.binary(BinaryOp::Div, t, y, None);
                    add(&mut m, t, r)
                }
                Op::Binary(BinaryOp::Pow) => {
                    let (x, y) = (xs[0], xs[1]);
                    let r = abs(&mut m, v);
                    let one = m.constant(1.0, None);
                    let y1 = m.binary(BinaryOp::Sub, y, one, None);
                    let ax_ = abs(&mut m, x);
                    let p = m.binary(BinaryOp::Pow, ax_, y1, None);
                    let d = mul(&mut m, y, p);
                    let d = abs(&mut m, d);
                    let mut t = mul(&mut m, d, ax[0]);
                    if !matches!(g.node(y).op, Op::Const(_)) {
                        let l = m.unary(UnaryOp::Log, ax_, None);
                        let l = mul(&mut m, v, l);
                        let l = abs(&mut m, l);
                        let l = mul(&mut m, l, ax[1]);
                        t = add(&mut m, t, l);
                    }
                    add(&mut m, t, r)
                }
                Op::Binary(BinaryOp::Eq) => unreachable!("exact"),
                Op::MatMul => {
                    let (x, y) = (abs(&mut m, xs[0]), abs(&mut m, xs[1]));
                    let t = m.push(Op::MatMul, &[ax[0], y], None, None);
                    let u = m.push(Op::MatMul, &[x, ax[1]], None, None);
                    add(&mut m, t, u)
                }
                Op::Reduce { .. } | Op::Transpose { .. } | Op::Slice { .. } | Op::Concat { .. } => {
                    m.push(node.op.clone(), &ax, None, None)
                }
                Op::Reshape | Op::Expand | Op::Embed { .. } => {
                    m.push(node.op.clone(), &ax, Some(node.shape.clone()), None)
                }
                Op::LogSumExp { axis, keepdims } => {
                    let t = m.push(
                        Op::Reduce { f: circ::ir::op::ReduceOp::Max, axes: vec![*axis], keepdims: *keepdims },
                        &ax,
                        None,
                        None,
                    );
                    let r = abs(&mut m, v);
                    add(&mut m, t, r)
                }
                Op::KMax { k } => {
                    let mask = m.push(Op::KMaxMask { k: *k }, &[xs[0]], None, None);
                    mul(&mut m, mask, ax[0])
                }
                Op::Data(_)
                | Op::Param(_)
                | Op::Input(_)
                | Op::Const(_)
                | Op::KMaxMask { .. }
                | Op::OneHot { .. }
                | Op::Cast => unreachable!("exact"),
            }
        };
        a.insert(v, av);
    }
    let outputs = g.outputs.iter().map(|o| a.get(&o.node).copied()).collect();
    (m, outputs)
}

/// For every output of `g`, every element's rounding magnitude (`magnitudes`), capped by the
/// largest magnitude of any real value the output is computed from (see the header).
fn rounding_magnitudes(g: &Graph, (data, params, inputs): Feed) -> Result<Vec<Vec<f64>>, interp::InterpError> {
    let (m, outputs) = magnitudes(g);
    let values = interp::run_all_with::<f64>(&m, data, params, inputs)?;
    let largest = |id: NodeId| -> f64 {
        let t = values.get(id).expect("every node");
        t.data.iter().filter(|v| v.is_finite()).fold(0.0, |m, v| m.max(v.abs()))
    };
    Ok(g.outputs
        .iter()
        .zip(outputs)
        .map(|(o, a)| {
            let mut seen = HashSet::new();
            let mut todo = vec![o.node];
            let mut cap: f64 = 0.0;
            while let Some(n) = todo.pop() {
                if seen.insert(n) {
                    if g.node(n).elem == Elem::Float {
                        cap = cap.max(largest(n));
                    }
                    todo.extend(g.operands(n));
                }
            }
            match a {
                Some(a) => values.get(a).expect("every node").data.iter().map(|v| v.min(cap)).collect(),
                // An integer output: exact, no allowance.
                None => vec![0.0; values.get(o.node).expect("every node").data.len()],
            }
        })
        .collect())
}

/// Runs `g` on the executor and the interpreter (f32, and f64 as the arbiter) and compares every
/// output, as the header says.
fn compare(label: &str, g: &Graph, opts: &Options, near_zero: f64) -> (Report, Stats) {
    let (data, params, inputs) = feed(g, N, 0x5eed ^ g.len() as u64);
    compare_on(label, g, (&data, &params, &inputs), opts, near_zero)
}

/// The data, parameters and extra inputs of one run.
type Feed<'a> = (&'a [HostTensor], &'a [Vec<f64>], &'a [Vec<f64>]);

/// The executor under test.
#[derive(Clone, Copy)]
enum Backend<'a> {
    Cpu(&'a Options),
    /// OpenCL device 0 (PoCL in CI), rendered as the options say.
    OpenCl(ClOptions),
}

/// A run's outputs by name.
type Named = HashMap<String, interp::Tensor<f32>>;

/// Runs `g` twice on `backend` (to exercise the cached plan and a reused arena).
fn run_twice(label: &str, g: &Graph, (data, params, inputs): Feed, backend: Backend) -> (Named, Named, Option<Stats>) {
    match backend {
        Backend::Cpu(opts) => {
            let mut exec = Executor::with_options(g, opts).unwrap_or_else(|e| panic!("{label}: {e}"));
            let mut one = || -> Named {
                let out = exec.run(data, params, inputs).unwrap_or_else(|e| panic!("{label}: {e}"));
                out.iter().map(|(n, t)| (n.to_string(), t.clone())).collect()
            };
            let (a, b) = (one(), one());
            (a, b, Some(exec.stats()))
        }
        Backend::OpenCl(options) => {
            let mut exec = ClExecutor::with_options(g, None, options).unwrap_or_else(|e| panic!("{label}: {e}"));
            let mut one = || -> Named {
                let out = exec.run(data, params, inputs).unwrap_or_else(|e| panic!("{label}: {e:?}"));
                out.into_iter().collect()
            };
            let (a, b) = (one(), one());
            (a, b, None)
        }
    }
}

/// [`compare`] on given inputs.
fn compare_on(label: &str, g: &Graph, feed: Feed, opts: &Options, near_zero: f64) -> (Report, Stats) {
    let (r, s) = compare_with(label, g, feed, Backend::Cpu(opts), near_zero);
    let s = s.expect("the CPU executor's stats");
    assert_eq!(s.jit + s.matmul + s.interpreted, s.kernels);
    assert_eq!(s.jit_runs, 2 * (s.jit + s.jit_epilogues) as u64, "{label}");
    (r, s)
}

/// [`compare_on`] on any backend.
fn compare_with(
    label: &str,
    g: &Graph,
    (data, params, inputs): Feed,
    backend: Backend,
    near_zero: f64,
) -> (Report, Option<Stats>) {
    let want = interp::run_with::<f32>(g, data, params, inputs).unwrap_or_else(|e| panic!("{label}: {e}"));
    let exact = interp::run_with::<f64>(g, data, params, inputs).unwrap_or_else(|e| panic!("{label}: {e}"));
    let (got, again, stats) = run_twice(label, g, (data, params, inputs), backend);
    let mags = rounding_magnitudes(g, (data, params, inputs)).unwrap_or_else(|e| panic!("{label}: {e}"));
    let mut r = Report::default();
    for (o, mag) in g.outputs.iter().zip(&mags) {
        let w = want.get(&o.name).expect("every output");
        let e = exact.get(&o.name).expect("every output");
        let x = got.get(&o.name).unwrap_or_else(|| panic!("{label}: output {} missing", o.name));
        assert_eq!(x.shape, w.shape, "{label}: shape of {}", o.name);
        assert_eq!(x.data.len(), w.data.len(), "{label}: length of {}", o.name);
        assert_eq!(
            again.get(&o.name).unwrap().data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            x.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "{label}: {} differs between runs",
            o.name
        );
        let scale = near_zero * w.data.iter().fold(0.0f64, |m, v| m.max((*v as f64).abs()));
        for (i, ((a, b), c)) in x.data.iter().zip(&w.data).zip(&e.data).enumerate() {
            r.elements += 1;
            let (a, b) = (*a as f64, *b as f64);
            if a == b || (a.is_nan() && b.is_nan()) {
                continue;
            }
            let err = (a - b).abs() / b.abs().max(scale);
            r.worst = r.worst.max(err);
            let units = (a - b).abs() / (UNIT * mag[i]);
            if units.is_finite() {
                r.worst_units = r.worst_units.max(units);
            }
            if (a - b).abs() <= RTOL * b.abs() {
                continue;
            }
            if err <= RTOL {
                r.near_zero += 1;
                continue;
            }
            let reference_error = REORDERED * (b - c).abs();
            if (a - b).abs() <= RTOL * b.abs().max(scale) + reference_error {
                r.by_f64 += 1;
                continue;
            }
            assert!(
                units <= CANCELLED,
                "{label}: output {} [{i}]: executor {a}, interpreter f32 {b}, f64 {c} (relative error {err:e}, \
                 {units:.1} units of roundoff of its magnitude {:e})",
                o.name,
                mag[i]
            );
            r.cancelled += 1;
            r.worst_cancelled = r.worst_cancelled.max(units);
            r.cancellations.push(format!(
                "{label}: output {} [{i}]: executor {a:e}, interpreter f32 {b:e}, f64 {c:e}, magnitude {:.3e}: {units:.2} units",
                o.name, mag[i]
            ));
        }
    }
    (r, stats)
}

#[test]
fn every_example_runs_as_the_interpreter() {
    let mut total_jit = 0;
    for (name, text) in examples() {
        for (stage, g) in stages(&format!("examples/{name}.circ"), &text) {
            let label = format!("{name}: {stage}");
            let plain = Options { fma: false, ..Options::default() };
            let (r, _) = compare(&format!("{label} (no fma)"), &g, &plain, NEAR_ZERO);
            println!(
                "{name:>15} {stage:<20} without fma: worst rel. error {:.2e}, {} near zero, {} within the f32 reference's own error, \
                 {} within {:.1} units of their magnitude; worst {:.1} units",
                r.worst, r.near_zero, r.by_f64, r.cancelled, r.worst_cancelled, r.worst_units
            );
            r.cancellations.iter().for_each(|c| println!("  {c}"));
            let (r, s) = compare(&label, &g, &Options::default(), NEAR_ZERO);
            total_jit += s.jit;
            println!(
                "{name:>15} {stage:<20} {:>3} kernels: {:>3} JIT'd, {:>3} products ({} with a JIT'd epilogue), {:>3} interpreted ({} elementwise refused); \
                 {:>6} elements, worst rel. error {:.2e}, {} near zero, {} within the f32 reference's own error, \
                 {} within {:.1} units of their magnitude; worst {:.1} units",
                s.kernels, s.jit, s.matmul, s.jit_epilogues, s.interpreted, s.unsupported, r.elements, r.worst, r.near_zero, r.by_f64,
                r.cancelled, r.worst_cancelled, r.worst_units
            );
            r.cancellations.iter().for_each(|c| println!("  {c}"));
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

// ---------------------------------------------------------------------------------------------
// Random graphs (`tests/common/random_graph.rs`, the generator of `tests/passes.rs`).

/// Random graphs compared; each runs as up to five graphs (see `random_stages`), each twice.
const SEEDS: u64 = 300;

/// Likelihood and activation-prior terms on values of `g` that depend on a parameter, and priors
/// on its parameters, so that bprop2 has curvature to propagate through the random ops: normal
/// and laplace likelihoods with a constant scale or a predicted one (`softplus(v) + 0.5`),
/// categorical and bernoulli likelihoods, normal, laplace and log-normal activation priors (the
/// last on `softplus(v) + 0.1`). Adds a datum per likelihood to `g` and its values to `data`.
/// The loss stays as the generator built it: the terms only seed the curvature.
fn add_terms(g: &mut Graph, data: &mut Vec<HostTensor>, params: &[Vec<f64>], rng: &mut Rng) {
    let order = g.topo_order();
    let mut live: HashSet<NodeId> = HashSet::new();
    for &n in &order {
        if matches!(g.node(n).op, Op::Param(_)) || g.operands(n).iter().any(|x| live.contains(x)) {
            live.insert(n);
        }
    }
    let values: Vec<NodeId> =
        order.into_iter().filter(|n| live.contains(n) && g.node(*n).elem == Elem::Float).collect();
    let concrete = |shape: &[Dim]| -> Vec<usize> {
        shape.iter().map(|d| if let Dim::Known(n) = d { *n as usize } else { random_graph::N_VALUE }).collect()
    };
    let datum = |g: &mut Graph, data: &mut Vec<HostTensor>, elem: Elem, shape: Vec<Dim>, values: Vec<f64>| {
        let i = g.data.len();
        g.data.push(DataInfo {
            name: format!("y{i}"),
            elem,
            shape: shape.clone(),
            source: DataSource::Columns(vec![]),
        });
        data.push(HostTensor::new(concrete(&shape), values));
        g.add(Node { op: Op::Data(i), elem, shape, span: None, label: None }, &[]);
        i
    };
    let positive = |g: &mut Graph, v: NodeId, c: f64| {
        let s = g.unary(UnaryOp::Softplus, v, None);
        let c = g.constant(c, None);
        g.binary(BinaryOp::Add, s, c, None)
    };
    for t in 0..if values.is_empty() { 0 } else { 1 + rng.below(3) } {
        let v = rng.pick(&values);
        let pred = format!("pred{t}");
        g.outputs.push(Output { name: pred.clone(), node: v });
        let shape = g.shape_of(v);
        let count: usize = concrete(&shape).iter().product();
        let reals = |rng: &mut Rng| (0..count).map(|_| rng.uniform(-2.0, 2.0)).collect::<Vec<f64>>();
        let term = match rng.below(8) {
            kind @ 0..=3 => {
                let scale = if kind < 2 {
                    Scale::Const(rng.pick(&[0.5, 1.0, 2.0]))
                } else {
                    let s = positive(g, v, 0.5);
                    let name = format!("sigma{t}");
                    g.outputs.push(Output { name: name.clone(), node: s });
                    Scale::Output(name)
                };
                let y = reals(rng);
                let data = datum(g, data, Elem::Float, shape, y);
                let dist = if kind % 2 == 0 { Likelihood::Normal { scale } } else { Likelihood::Laplace { scale } };
                Term::Likelihood { data, dist, prediction: pred }
            }
            4 if !shape.is_empty() => {
                let classes = concrete(&shape)[shape.len() - 1];
                let labels = (0..count / classes).map(|_| rng.below(classes) as f64).collect();
                let data = datum(g, data, Elem::Int, shape[..shape.len() - 1].to_vec(), labels);
                Term::Likelihood { data, dist: Likelihood::Categorical, prediction: pred }
            }
            4 | 5 => {
                let labels = (0..count).map(|_| rng.below(2) as f64).collect();
                let data = datum(g, data, Elem::Int, shape, labels);
                Term::Likelihood { data, dist: Likelihood::Bernoulli, prediction: pred }
            }
            6 => {
                let prior = if rng.chance(0.5) {
                    Prior::Normal { mu: 0.3, sigma: rng.pick(&[0.5, 1.0, 2.0]) }
                } else {
                    Prior::Laplace { mu: 0.3, b: rng.pick(&[0.5, 1.0, 2.0]) }
                };
                Term::ActivationPrior { value: pred, prior }
            }
            _ => {
                let p = positive(g, v, 0.1);
                let name = format!("positive{t}");
                g.outputs.push(Output { name: name.clone(), node: p });
                Term::ActivationPrior { value: name, prior: Prior::LogNormal { mu: 0.2, sigma: 0.7 } }
            }
        };
        g.terms.push(term);
    }
    for (i, p) in params.iter().enumerate() {
        g.params[i].prior = match rng.below(4) {
            0 => Prior::Flat,
            1 => Prior::Normal { mu: 0.0, sigma: 1.5 },
            2 => Prior::Laplace { mu: 0.0, b: 0.8 },
            _ if p.iter().all(|x| *x > 0.0) => Prior::LogNormal { mu: 0.0, sigma: 0.5 },
            _ => Prior::Normal { mu: 0.5, sigma: 0.7 },
        };
    }
}

/// One graph of a random seed: its stage's name, the graph and its data.
type Stage = (&'static str, Graph, Vec<HostTensor>);

/// The graphs run for random graph `seed`, with their data: the generator's graph, optimized, with
/// parameter gradients, and with bprop2's curvature (Gauss–Newton and full); the last three only
/// when it has parameters.
fn random_stages(seed: u64) -> (Vec<Stage>, Vec<Vec<f64>>) {
    let (g, data, params) = random_graph(seed);
    let mut optimized = g.clone();
    circ::passes::optimize(&mut optimized);
    let mut out = vec![("generated", g, data.clone()), ("optimized", optimized.clone(), data.clone())];
    if !params.is_empty() {
        let mut gradient = optimized.clone();
        circ::autodiff::add_param_gradients(&mut gradient);
        circ::passes::optimize(&mut gradient);
        out.push(("gradient", gradient, data.clone()));
        let mut termed = optimized;
        let mut data = data;
        add_terms(&mut termed, &mut data, &params, &mut Rng(seed ^ 0x7e57));
        let [gn, full] = curvature(&termed);
        out.push(("bprop2 gn", gn, data.clone()));
        out.push(("bprop2 full", full, data));
    }
    (out, params)
}

/// What the random graphs of one stage came to.
#[derive(Default)]
struct Tally {
    graphs: usize,
    /// Seeds whose graph has a non-finite value in the f64 interpreter, not compared.
    skipped: Vec<u64>,
    elements: usize,
    worst: f64,
    worst_at: String,
    near_zero: usize,
    by_f64: usize,
    cancelled: usize,
    worst_units: f64,
    worst_units_at: String,
    worst_cancelled: f64,
    kernels: usize,
    jit: usize,
}

fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

#[test]
fn random_graphs_run_as_the_interpreter() {
    let start = Instant::now();
    let mut tally: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut cancellations = Vec::new();
    let seeds: u64 = std::env::var("CIRC_RANDOM_GRAPHS").ok().and_then(|s| s.parse().ok()).unwrap_or(SEEDS);
    for seed in 0..seeds {
        let (stages, params) = random_stages(seed);
        for (stage, g, data) in stages {
            let t = tally.entry(stage).or_default();
            circ::ir::verify::verify(&g).unwrap_or_else(|e| panic!("seed {seed}, {stage}: {e:?}"));
            let exact = interp::run_with::<f64>(&g, &data, &params, &[])
                .unwrap_or_else(|e| panic!("seed {seed}, {stage}: {e}"));
            if g.outputs.iter().any(|o| exact.get(&o.name).unwrap().data.iter().any(|v| !v.is_finite())) {
                t.skipped.push(seed);
                continue;
            }
            t.graphs += 1;
            for opts in [Options { fma: false, ..Options::default() }, Options::default()] {
                let label = format!("seed {seed}, {stage}{}", if opts.fma { "" } else { " (no fma)" });
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    compare_on(&label, &g, (&data, &params, &[]), &opts, NEAR_ZERO)
                }));
                match run {
                    Ok((r, s)) => {
                        t.elements += r.elements;
                        t.near_zero += r.near_zero;
                        t.by_f64 += r.by_f64;
                        t.cancelled += r.cancelled;
                        t.worst_cancelled = t.worst_cancelled.max(r.worst_cancelled);
                        cancellations.extend(r.cancellations);
                        if r.worst_units > t.worst_units {
                            t.worst_units = r.worst_units;
                            t.worst_units_at = label.clone();
                        }
                        t.kernels += s.kernels;
                        t.jit += s.jit;
                        if r.worst > t.worst {
                            t.worst = r.worst;
                            t.worst_at = label;
                        }
                    }
                    Err(e) => failures.push(format!("{}\n{}", panic_text(&*e), circ::ir::print::text(&g, None))),
                }
            }
        }
    }
    println!("{seeds} random graphs in {:.1} s:", start.elapsed().as_secs_f64());
    for (stage, t) in &tally {
        println!(
            "{stage:>12}: {:>3} graphs ({} skipped, not finite in f64: seeds {:?}), {:>3} kernels ({} JIT'd), {:>6} elements; \
             worst rel. error {:.2e} ({}), {} near zero, {} within the f32 reference's own error, \
             {} within {:.1} units of their magnitude; worst {:.1} units ({})",
            t.graphs, t.skipped.len(), t.skipped, t.kernels, t.jit, t.elements, t.worst, t.worst_at, t.near_zero, t.by_f64,
            t.cancelled, t.worst_cancelled, t.worst_units, t.worst_units_at
        );
    }
    println!("Elements within tolerance only by the cancellation allowance:");
    for c in &cancellations {
        println!("  {c}");
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// Random graphs on OpenCL: fewer than on the CPU, since PoCL compiles each program with LLVM
/// (about a second each); `CIRC_OPENCL_RANDOM_GRAPHS` runs more.
const OPENCL_SEEDS: u64 = 12;

#[test]
fn every_example_runs_on_opencl_as_the_interpreter() {
    if !opencl_available("every_example_runs_on_opencl_as_the_interpreter") {
        return;
    }
    for (name, text) in examples() {
        // The lowered graph differs from the optimized one only in what the passes remove: on
        // OpenCL, where every graph is a program for PoCL to compile, it is left out.
        for (stage, g) in
            stages(&format!("examples/{name}.circ"), &text).into_iter().filter(|(s, _)| !s.ends_with("lowered"))
        {
            let label = format!("{name}: {stage} (opencl)");
            let (data, params, inputs) = feed(&g, N, 0x5eed ^ g.len() as u64);
            let (r, _) =
                compare_with(&label, &g, (&data, &params, &inputs), Backend::OpenCl(ClOptions::default()), NEAR_ZERO);
            println!(
                "{name:>15} {stage:<20} {:>6} elements, worst rel. error {:.2e}, {} near zero, {} within the f32 reference's own error, \
                 {} within {:.1} units of their magnitude; worst {:.1} units",
                r.elements, r.worst, r.near_zero, r.by_f64, r.cancelled, r.worst_cancelled, r.worst_units
            );
            r.cancellations.iter().for_each(|c| println!("  {c}"));
        }
    }
}

#[test]
fn random_graphs_run_on_opencl_as_the_interpreter() {
    if !opencl_available("random_graphs_run_on_opencl_as_the_interpreter") {
        return;
    }
    let start = Instant::now();
    let seeds: u64 =
        std::env::var("CIRC_OPENCL_RANDOM_GRAPHS").ok().and_then(|s| s.parse().ok()).unwrap_or(OPENCL_SEEDS);
    let (mut graphs, mut elements, mut worst, mut skipped) = (0, 0, 0.0f64, 0);
    let mut failures = Vec::new();
    for seed in 0..seeds {
        let (stages, params) = random_stages(seed);
        for (stage, g, data) in stages {
            let exact = interp::run_with::<f64>(&g, &data, &params, &[])
                .unwrap_or_else(|e| panic!("seed {seed}, {stage}: {e}"));
            if g.outputs.iter().any(|o| exact.get(&o.name).unwrap().data.iter().any(|v| !v.is_finite())) {
                skipped += 1;
                continue;
            }
            graphs += 1;
            let label = format!("seed {seed}, {stage} (opencl)");
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                compare_with(&label, &g, (&data, &params, &[]), Backend::OpenCl(ClOptions::default()), NEAR_ZERO)
            }));
            match run {
                Ok((r, _)) => {
                    elements += r.elements;
                    worst = worst.max(r.worst);
                }
                Err(e) => failures.push(format!("{}\n{}", panic_text(&*e), circ::ir::print::text(&g, None))),
            }
        }
    }
    println!(
        "{seeds} random graphs on OpenCL in {:.1} s: {graphs} compared ({skipped} not finite in f64), {elements} elements, worst rel. error {worst:.2e}",
        start.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// The products as a GPU runs them (tiles in local memory, barriers), on PoCL: the training step
/// and full bprop2 graph of the examples with products (products of transposed views, batched
/// and fused epilogues), and random graphs, with the narrow and the wide tiles. PoCL runs
/// barriers slowly (about 10 s for the digits step), so a few examples only.
#[test]
fn tiled_products_run_on_opencl_as_the_interpreter() {
    if !opencl_available("tiled_products_run_on_opencl_as_the_interpreter") {
        return;
    }
    let mut failures = Vec::new();
    let mut worst = 0.0f64;
    for geometry in [matmul::NARROW, matmul::WIDE] {
        let options = ClOptions { style: Some(Style::Tiled), geometry: Some(geometry) };
        let tiles = geometry.tile;
        for (name, text) in
            examples().into_iter().filter(|(n, _)| ["mlp_digits", "ridge", "multiplicative"].contains(&n.as_str()))
        {
            for (stage, g) in stages(&format!("examples/{name}.circ"), &text)
                .into_iter()
                .filter(|(s, _)| s.ends_with("step") || s.ends_with("bprop2 full"))
            {
                let label = format!("{name}: {stage} (opencl, tiled {tiles})");
                let (data, params, inputs) = feed(&g, N, 0x5eed ^ g.len() as u64);
                let (r, _) = compare_with(&label, &g, (&data, &params, &inputs), Backend::OpenCl(options), NEAR_ZERO);
                worst = worst.max(r.worst);
            }
        }
        for seed in 0..3 {
            let (stages, params) = random_stages(seed);
            for (stage, g, data) in stages {
                let exact = interp::run_with::<f64>(&g, &data, &params, &[])
                    .unwrap_or_else(|e| panic!("seed {seed}, {stage}: {e}"));
                if g.outputs.iter().any(|o| exact.get(&o.name).unwrap().data.iter().any(|v| !v.is_finite())) {
                    continue;
                }
                let label = format!("seed {seed}, {stage} (opencl, tiled {tiles})");
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    compare_with(&label, &g, (&data, &params, &[]), Backend::OpenCl(options), NEAR_ZERO)
                }));
                match run {
                    Ok((r, _)) => worst = worst.max(r.worst),
                    Err(e) => failures.push(format!("{}\n{}", panic_text(&*e), circ::ir::print::text(&g, None))),
                }
            }
        }
    }
    println!("tiled products on OpenCL: worst rel. error {worst:.2e}");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// Rows of data kept on the device give what the same rows written from the host give, bit for
/// bit, through batches of other sizes (a smaller layout, then a larger one that moves the kept
/// data).
#[test]
fn kept_rows_run_as_batches_written_from_the_host_on_opencl() {
    if !opencl_available("kept_rows_run_as_batches_written_from_the_host_on_opencl") {
        return;
    }
    let (name, text) = examples().into_iter().find(|(n, _)| n == "mlp_digits").expect("the digits example");
    let (_, g) = stages(&format!("examples/{name}.circ"), &text)
        .into_iter()
        .find(|(s, _)| s.ends_with("step"))
        .expect("a step graph");
    let rows_total = 40;
    let (data, params, inputs) = feed(&g, rows_total, 0x6b65);
    let mut kept = ClExecutor::new(&g, None).unwrap();
    assert!(kept.keep_data(&data, &params).unwrap(), "40 rows fit any device");
    for rows in [vec![3, 1, 4, 1, 5, 9, 2, 6], vec![39, 0, 7], (0..rows_total).rev().collect::<Vec<_>>()] {
        let batch = circ::train::run::select(&data, &rows);
        let mut host = ClExecutor::new(&g, None).unwrap();
        let want: Named = host.run(&batch, &params, &inputs).unwrap().into_iter().collect();
        let got: Named = kept.run_rows(&rows, &params, &inputs).unwrap().into_iter().collect();
        assert_eq!(want.len(), got.len());
        for (k, v) in &want {
            assert_eq!(v.data, got[k].data, "{k} on rows {rows:?}");
        }
    }
    assert!(kept.run_rows(&[rows_total], &params, &inputs).is_err(), "a row past the kept data is refused");
}

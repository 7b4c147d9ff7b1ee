//! The generic finite-difference checker behind every autodiff test: a seeded PRNG, a builder for
//! small graphs (parameters as the differentiated leaves, the op under test, a scalar loss that
//! weighs every output element), and `check`, which compares in f64
//! - gradients (`add_param_gradients`) with central differences of the loss,
//! - Hessian-vector products (`add_hvp`) with central differences of the gradient,
//! - optionally the full Hessian built column by column from HVPs with unit vectors: against
//!   differences of the gradient, for symmetry, for linearity (H·v = hvp(v)), and its diagonal
//!   against second differences of the loss.
//!
//! Every difference quotient is Richardson-extrapolated (steps h and h/2), so its error is
//! O(h⁴) plus rounding, far below the tolerances. Errors are measured as
//! |a − b| / max(1, |a|, |b|).

// Hessians are indexed matrices here; index loops say what they compare.
#![allow(clippy::needless_range_loop)]

use circ::autodiff;
use circ::check::checked::{DataSource, Prior};
use circ::check::types::{Dim, Elem, SymId};
use circ::interp::{self, HostTensor};
use circ::ir::graph::{DataInfo, Init, Output, ParamInfo};
use circ::ir::op::{BinaryOp, Op, ReduceOp, UnaryOp};
use circ::ir::{verify::verify, Graph, NodeId};
use std::panic::{catch_unwind, AssertUnwindSafe};

pub const GRAD_TOL: f64 = 1e-6;
pub const HVP_TOL: f64 = 1e-5;
/// H and Hᵀ come from different HVP runs: only rounding separates them.
pub const SYM_TOL: f64 = 1e-9;

/// splitmix64: small, seedable, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn coin(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit();
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// ±uniform(lo, hi): bounded away from zero.
    pub fn signed(&mut self, lo: f64, hi: f64) -> f64 {
        let x = self.uniform(lo, hi);
        if self.coin(0.5) {
            x
        } else {
            -x
        }
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }

    pub fn values(&mut self, n: usize, dom: Dom) -> Vec<f64> {
        match dom {
            Dom::Distinct => {
                // Shuffled levels 0.25 apart with a jitter of at most 0.1: every gap ≥ 0.15.
                let mut levels: Vec<usize> = (0..n).collect();
                self.shuffle(&mut levels);
                let mid = n as f64 / 2.0;
                levels.iter().map(|l| (*l as f64 - mid) * 0.25 + self.uniform(0.0, 0.1)).collect()
            }
            _ => (0..n).map(|_| self.value(dom)).collect(),
        }
    }

    pub fn value(&mut self, dom: Dom) -> f64 {
        match dom {
            Dom::Any => self.normal(),
            Dom::Wide => self.uniform(-2.0, 2.0),
            Dom::Pos => self.uniform(0.5, 2.0),
            Dom::AwayZero => self.signed(0.2, 2.0),
            Dom::Distinct => unreachable!("Distinct needs the whole tensor"),
        }
    }

    pub fn shape(&mut self, min_rank: usize, max_rank: usize, max_dim: usize) -> Vec<usize> {
        let r = self.range(min_rank, max_rank);
        (0..r).map(|_| self.range(1, max_dim)).collect()
    }

    /// A shape that broadcasts to `out`: a suffix of it with some sizes set to 1.
    pub fn broadcast_operand(&mut self, out: &[usize]) -> Vec<usize> {
        let r = self.range(0, out.len());
        out[out.len() - r..].iter().map(|d| if self.coin(0.4) { 1 } else { *d }).collect()
    }
}

/// Where the random values of a tensor lie: each op's domain kept valid and smooth.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Dom {
    /// Standard normal.
    Any,
    /// Uniform in [−2, 2].
    Wide,
    /// Uniform in [0.5, 2] (log, sqrt, pow bases).
    Pos,
    /// ±[0.2, 2]: away from the kinks of relu, abs, step, sign and the pole of recip.
    AwayZero,
    /// Every two values at least 0.15 apart (max, kmax: no ties within a step).
    Distinct,
}

pub fn count(shape: &[usize]) -> usize {
    shape.iter().product()
}

pub fn known(shape: &[usize]) -> Vec<Dim> {
    shape.iter().map(|n| Dim::Known(*n as u64)).collect()
}

/// A graph being built, with the data and parameter values to run it on.
#[derive(Default)]
pub struct Builder {
    pub g: Graph,
    data: Vec<HostTensor>,
    params: Vec<Vec<f64>>,
    sizes: Vec<usize>,
}

/// A graph whose loss is `outputs[0]`, with the values to run it on and a description.
#[derive(Clone)]
pub struct Case {
    pub g: Graph,
    pub data: Vec<HostTensor>,
    pub params: Vec<Vec<f64>>,
    pub what: String,
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    /// A symbolic size, bound to `size` by the data.
    pub fn sym(&mut self, name: &str, size: usize) -> Dim {
        self.g.syms.push(name.to_string());
        self.sizes.push(size);
        Dim::Sym(SymId((self.g.syms.len() - 1) as u32))
    }

    pub fn concrete(&self, shape: &[Dim]) -> Vec<usize> {
        shape
            .iter()
            .map(|d| match d {
                Dim::Known(n) => *n as usize,
                Dim::Sym(s) => self.sizes[s.0 as usize],
                Dim::Any => panic!("Dim::Any in a test graph"),
            })
            .collect()
    }

    pub fn param(&mut self, shape: &[usize], values: Vec<f64>) -> NodeId {
        assert_eq!(count(shape), values.len());
        let i = self.g.params.len();
        self.g.params.push(ParamInfo {
            name: format!("p{i}"),
            shape: shape.iter().map(|n| *n as u64).collect(),
            prior: Prior::Flat,
            init: Init::Fixed(0.0),
            update: None,
        });
        self.params.push(values);
        self.g.push(Op::Param(i), &[], None, None)
    }

    pub fn rand_param(&mut self, rng: &mut Rng, shape: &[usize], dom: Dom) -> NodeId {
        let v = rng.values(count(shape), dom);
        self.param(shape, v)
    }

    fn datum(&mut self, elem: Elem, shape: &[Dim], values: Vec<f64>) -> NodeId {
        let concrete = self.concrete(shape);
        assert_eq!(count(&concrete), values.len());
        let i = self.g.data.len();
        self.g.data.push(DataInfo {
            name: format!("d{i}"),
            elem,
            shape: shape.to_vec(),
            source: DataSource::Columns(Vec::new()),
        });
        self.data.push(HostTensor { shape: concrete, values });
        self.g.push(Op::Data(i), &[], None, None)
    }

    /// A real data input (not differentiated).
    pub fn data(&mut self, shape: &[Dim], values: Vec<f64>) -> NodeId {
        self.datum(Elem::Float, shape, values)
    }

    pub fn rand_data(&mut self, rng: &mut Rng, shape: &[Dim], dom: Dom) -> NodeId {
        let v = rng.values(count(&self.concrete(shape)), dom);
        self.data(shape, v)
    }

    /// An integer data input (labels).
    pub fn int_data(&mut self, shape: &[Dim], values: Vec<f64>) -> NodeId {
        self.datum(Elem::Int, shape, values)
    }

    pub fn op(&mut self, op: Op, xs: &[NodeId]) -> NodeId {
        self.g.push(op, xs, None, None)
    }

    /// An op whose shape is not implied by its operands (`Reshape`, `Expand`, `Embed`).
    pub fn op_to(&mut self, op: Op, xs: &[NodeId], target: Vec<Dim>) -> NodeId {
        self.g.push(op, xs, Some(target), None)
    }

    pub fn un(&mut self, f: UnaryOp, x: NodeId) -> NodeId {
        self.g.unary(f, x, None)
    }

    pub fn bin(&mut self, f: BinaryOp, x: NodeId, y: NodeId) -> NodeId {
        self.g.binary(f, x, y, None)
    }

    pub fn shape(&self, x: NodeId) -> Vec<Dim> {
        self.g.shape_of(x)
    }

    /// Finishes with the loss `Σ (C∘z + D∘z²)`, `z = s·out`, `C` and `D` random data of `out`'s
    /// shape and `s` a scalar parameter near 1: every element of `out` matters, and the
    /// quadratic term makes the Hessian depend on the op's forward (tangent) rule even where the op
    /// is linear. `s` is a probe: its gradient reads `out` itself, so the row of `s` in the Hessian
    /// sees the tangent of `out` whole, not only through the op's own reverse rule (which may hide
    /// part of it: `kmax`'s mask, a slice that skips a data operand of `concat`).
    pub fn finish(mut self, out: NodeId, rng: &mut Rng, what: String) -> Case {
        let shape = self.shape(out);
        let s = self.param(&[], vec![rng.uniform(0.5, 1.5)]);
        let out = self.bin(BinaryOp::Mul, out, s);
        let c = self.rand_data(rng, &shape, Dom::Any);
        let d = self.rand_data(rng, &shape, Dom::Any);
        let lin = self.bin(BinaryOp::Mul, out, c);
        let sq = self.un(UnaryOp::Square, out);
        let quad = self.bin(BinaryOp::Mul, sq, d);
        let sum = self.bin(BinaryOp::Add, lin, quad);
        let loss = if shape.is_empty() {
            sum
        } else {
            self.op(Op::Reduce { f: ReduceOp::Sum, axes: (0..shape.len()).collect(), keepdims: false }, &[sum])
        };
        self.g.outputs.push(Output { name: "loss".into(), node: loss });
        Case { g: self.g, data: self.data, params: self.params, what }
    }

    /// Finishes with `loss` (a scalar node) as the loss.
    pub fn finish_with_loss(mut self, loss: NodeId, what: String) -> Case {
        self.g.outputs.push(Output { name: "loss".into(), node: loss });
        Case { g: self.g, data: self.data, params: self.params, what }
    }
}

/// The worst errors seen, per kind of check.
#[derive(Clone, Copy, Debug, Default)]
pub struct Worst {
    pub grad: f64,
    pub hvp: f64,
    /// Full Hessian from HVPs against differences of the gradient.
    pub hess: f64,
    /// |H − Hᵀ|.
    pub sym: f64,
    /// Diagonal of H against second differences of the loss.
    pub diag: f64,
    pub trials: usize,
    /// Gradient coordinates checked.
    pub coords: usize,
    /// Coordinates skipped because the loss is not smooth at the step's scale (end-to-end only).
    pub skipped: usize,
}

impl Worst {
    pub fn merge(&mut self, o: &Worst) {
        self.grad = self.grad.max(o.grad);
        self.hvp = self.hvp.max(o.hvp);
        self.hess = self.hess.max(o.hess);
        self.sym = self.sym.max(o.sym);
        self.diag = self.diag.max(o.diag);
        self.trials += o.trials;
        self.coords += o.coords;
        self.skipped += o.skipped;
    }
}

impl std::fmt::Display for Worst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} trials, {} coordinates; worst rel. error: grad {:.1e}, hvp {:.1e}, hessian {:.1e}, diag {:.1e}, asymmetry {:.1e}",
            self.trials, self.coords, self.grad, self.hvp, self.hess, self.diag, self.sym
        )?;
        if self.skipped > 0 {
            write!(f, "; {} coordinates skipped (not smooth at the step)", self.skipped)?;
        }
        Ok(())
    }
}

pub fn rel(a: f64, b: f64) -> f64 {
    if a == b {
        return 0.0;
    }
    let e = (a - b).abs() / 1f64.max(a.abs()).max(b.abs());
    if e.is_nan() {
        f64::INFINITY
    } else {
        e
    }
}

/// What `check` does beyond gradients and one HVP.
#[derive(Clone, Copy, Debug)]
pub struct Opts {
    /// Build the full Hessian when the parameters have at most this many coordinates.
    pub full_hessian_max: usize,
    /// Check at most this many gradient coordinates per parameter (all when `usize::MAX`).
    pub coords_per_param: usize,
    /// The finite-difference step, relative to max(1, |x|).
    pub h: f64,
    /// Skip a coordinate whose differences at h and h/10 disagree (a kink inside the step)
    /// instead of failing: for end-to-end models whose kinks the data cannot avoid.
    pub skip_kinks: bool,
    /// Also run the gradient and HVP graphs through `passes::optimize` and compare their values.
    pub optimized: bool,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts { full_hessian_max: 24, coords_per_param: usize::MAX, h: 1e-3, skip_kinks: false, optimized: true }
    }
}

/// Richardson-extrapolated central difference of `f` at 0 with step `h`.
fn diff<F: FnMut(f64) -> Result<Vec<f64>, String>>(mut f: F, h: f64) -> Result<Vec<f64>, String> {
    let (a, b, c, d) = (f(h)?, f(-h)?, f(h / 2.0)?, f(-h / 2.0)?);
    Ok((0..a.len())
        .map(|i| {
            let d1 = (a[i] - b[i]) / (2.0 * h);
            let d2 = (c[i] - d[i]) / h;
            (4.0 * d2 - d1) / 3.0
        })
        .collect())
}

/// Richardson-extrapolated second difference of `f` at 0.
fn diff2<F: FnMut(f64) -> Result<f64, String>>(mut f: F, h: f64) -> Result<f64, String> {
    let f0 = f(0.0)?;
    let (a, b, c, d) = (f(h)?, f(-h)?, f(h / 2.0)?, f(-h / 2.0)?);
    let d1 = (a - 2.0 * f0 + b) / (h * h);
    let d2 = (c - 2.0 * f0 + d) / (h * h / 4.0);
    Ok((4.0 * d2 - d1) / 3.0)
}

fn err(e: impl std::fmt::Debug) -> String {
    format!("{e:?}")
}

/// `p + t·v`, parameter by parameter.
fn along(p: &[Vec<f64>], v: &[Vec<f64>], t: f64) -> Vec<Vec<f64>> {
    p.iter().zip(v).map(|(p, v)| p.iter().zip(v).map(|(p, v)| p + t * v).collect()).collect()
}

fn flat(x: &[Vec<f64>]) -> Vec<f64> {
    x.iter().flatten().copied().collect()
}

/// The unit vector of flat coordinate `k`, shaped like `p`.
fn unit(p: &[Vec<f64>], k: usize) -> Vec<Vec<f64>> {
    let mut n = 0;
    p.iter()
        .map(|p| {
            (0..p.len())
                .map(|_| {
                    n += 1;
                    if n - 1 == k {
                        1.0
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect()
}

/// The graphs and runners of one case.
pub struct Derived<'a> {
    pub case: &'a Case,
    /// With `grad.<param>` outputs.
    pub grad_graph: Graph,
    /// With `v.<param>` inputs and `grad.<param>`, `hvp.<param>` outputs.
    pub hvp_graph: Graph,
}

impl<'a> Derived<'a> {
    /// Differentiates the case's graph both ways and verifies the results.
    pub fn new(case: &'a Case) -> Result<Derived<'a>, String> {
        verify(&case.g).map_err(|e| format!("the test graph does not verify: {e:?}"))?;
        let mut grad_graph = case.g.clone();
        autodiff::add_param_gradients(&mut grad_graph);
        verify(&grad_graph).map_err(|e| format!("after add_param_gradients: {e:?}"))?;
        let mut hvp_graph = case.g.clone();
        autodiff::add_hvp(&mut hvp_graph);
        verify(&hvp_graph).map_err(|e| format!("after add_hvp: {e:?}"))?;
        Ok(Derived { case, grad_graph, hvp_graph })
    }

    pub fn loss(&self, p: &[Vec<f64>]) -> Result<f64, String> {
        Ok(interp::run::<f64>(&self.case.g, &self.case.data, p).map_err(err)?.loss())
    }

    fn named(&self, out: &interp::Outputs<f64>, prefix: &str) -> Result<Vec<Vec<f64>>, String> {
        self.case
            .g
            .params
            .iter()
            .map(|p| {
                let name = format!("{prefix}.{}", p.name);
                out.get(&name).map(|t| t.to_f64()).ok_or_else(|| format!("no output `{name}`"))
            })
            .collect()
    }

    pub fn grad(&self, p: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, String> {
        let out = interp::run::<f64>(&self.grad_graph, &self.case.data, p).map_err(err)?;
        self.named(&out, "grad")
    }

    /// (gradient, Hessian · v).
    #[allow(clippy::type_complexity)]
    pub fn hvp(&self, p: &[Vec<f64>], v: &[Vec<f64>]) -> Result<(Vec<Vec<f64>>, Vec<Vec<f64>>), String> {
        let g = &self.hvp_graph;
        let inputs: Vec<Vec<f64>> = g
            .inputs
            .iter()
            .map(|info| {
                let i = info.name.strip_prefix("v.").and_then(|n| g.params.iter().position(|p| p.name == n));
                match i {
                    Some(i) => Ok(v[i].clone()),
                    None => Err(format!("unexpected extra input `{}`", info.name)),
                }
            })
            .collect::<Result<_, String>>()?;
        let out = interp::run_with::<f64>(g, &self.case.data, p, &inputs).map_err(err)?;
        Ok((self.named(&out, "grad")?, self.named(&out, "hvp")?))
    }
}

impl Derived<'_> {
    /// The full Hessian of the loss at `p`, over the flattened parameters (in parameter order,
    /// each row-major), column `j` from the HVP with the unit vector `e_j`: the exact reference
    /// for curvature approximations such as bprop2's diagonal.
    pub fn hessian(&self, p: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, String> {
        let n: usize = p.iter().map(Vec::len).sum();
        let mut h = vec![vec![0.0; n]; n];
        for j in 0..n {
            let (_, col) = self.hvp(p, &unit(p, j))?;
            for (i, c) in flat(&col).into_iter().enumerate() {
                h[i][j] = c;
            }
        }
        Ok(h)
    }
}

fn coord_name(case: &Case, k: usize) -> String {
    let mut k = k;
    for (info, p) in case.g.params.iter().zip(&case.params) {
        if k < p.len() {
            return format!("{}[{k}] (shape {:?})", info.name, info.shape);
        }
        k -= p.len();
    }
    format!("coordinate {k}")
}

/// Checks the case's gradient, one random HVP and (when small) its full Hessian against finite
/// differences. `Err` describes the first mismatch.
pub fn check(case: &Case, rng: &mut Rng, opts: Opts) -> Result<Worst, String> {
    let d = Derived::new(case)?;
    let p = &case.params;
    let mut w = Worst { trials: 1, ..Worst::default() };

    // Gradients against central differences of the loss.
    let grad = d.grad(p)?;
    let g = flat(&grad);
    let x = flat(p);
    let mut coords: Vec<usize> = Vec::new();
    let mut start = 0;
    for q in p {
        let mut ks: Vec<usize> = (start..start + q.len()).collect();
        rng.shuffle(&mut ks);
        ks.truncate(opts.coords_per_param);
        coords.extend(ks);
        start += q.len();
    }
    coords.sort_unstable();
    for &k in &coords {
        let e = unit(p, k);
        let h = opts.h * x[k].abs().max(1.0);
        let fd = diff(|t| d.loss(&along(p, &e, t)).map(|l| vec![l]), h)?[0];
        if opts.skip_kinks {
            // Where the loss is smooth the two estimates agree to rounding; a kink inside the
            // step moves them apart. A wrong rule leaves them agreeing with each other.
            let fine = diff(|t| d.loss(&along(p, &e, t)).map(|l| vec![l]), h / 10.0)?[0];
            if rel(fd, fine) > GRAD_TOL {
                w.skipped += 1;
                continue;
            }
        }
        let r = rel(g[k], fd);
        w.grad = w.grad.max(r);
        w.coords += 1;
        if r > GRAD_TOL {
            return Err(format!(
                "gradient of {}: autodiff {:.12e}, finite differences {fd:.12e} (rel. error {r:.1e}) at {}",
                coord_name(case, k),
                g[k],
                describe_point(p)
            ));
        }
    }

    // The HVP graph's gradient is the gradient graph's.
    let v: Vec<Vec<f64>> = p.iter().map(|q| q.iter().map(|_| rng.normal()).collect()).collect();
    let (grad2, hv) = d.hvp(p, &v)?;
    for (k, (a, b)) in flat(&grad2).iter().zip(&g).enumerate() {
        if rel(*a, *b) > 1e-12 {
            return Err(format!("add_hvp's gradient of {} is {a:e}, add_param_gradients' {b:e}", coord_name(case, k)));
        }
    }

    // H·v against differences of the gradient along v.
    let fd = diff(|t| d.grad(&along(p, &v, t)).map(|g| flat(&g)), opts.h)?;
    let mut smooth = true;
    if opts.skip_kinks {
        let fine = diff(|t| d.grad(&along(p, &v, t)).map(|g| flat(&g)), opts.h / 10.0)?;
        smooth = fd.iter().zip(&fine).all(|(a, b)| rel(*a, *b) <= HVP_TOL);
        w.skipped += usize::from(!smooth);
    }
    let hv = flat(&hv);
    if smooth {
        for (k, (a, b)) in hv.iter().zip(&fd).enumerate() {
            let r = rel(*a, *b);
            w.hvp = w.hvp.max(r);
            if r > HVP_TOL {
                return Err(format!(
                    "HVP at {}: autodiff {a:.12e}, finite differences of the gradient {b:.12e} (rel. error {r:.1e}) \
                     at {}, v = {v:?}",
                    coord_name(case, k),
                    describe_point(p)
                ));
            }
        }
    }

    // The optimization passes keep the derivatives' values.
    if opts.optimized {
        let mut og = d.grad_graph.clone();
        circ::passes::optimize(&mut og);
        verify(&og).map_err(|e| format!("the gradient graph after optimize: {e:?}"))?;
        let mut oh = d.hvp_graph.clone();
        circ::passes::optimize(&mut oh);
        verify(&oh).map_err(|e| format!("the HVP graph after optimize: {e:?}"))?;
        let opt = Derived { case, grad_graph: og, hvp_graph: oh };
        let (og, ohv) = opt.hvp(p, &v)?;
        let pairs =
            flat(&opt.grad(p)?).into_iter().zip(g.iter().copied()).chain(flat(&og).into_iter().zip(g.iter().copied()));
        for (k, (a, b)) in pairs.enumerate() {
            if rel(a, b) > 1e-10 {
                return Err(format!(
                    "after optimize, gradient {} is {a:e}, before {b:e}",
                    coord_name(case, k % g.len())
                ));
            }
        }
        for (k, (a, b)) in flat(&ohv).iter().zip(&hv).enumerate() {
            if rel(*a, *b) > 1e-10 {
                return Err(format!("after optimize, HVP {} is {a:e}, before {b:e}", coord_name(case, k)));
            }
        }
    }

    // The full Hessian, column by column.
    let n = x.len();
    if n == 0 || n > opts.full_hessian_max {
        return Ok(w);
    }
    let h = d.hessian(p)?;
    for j in 0..n {
        let e = unit(p, j);
        let step = opts.h * x[j].abs().max(1.0);
        let fd = diff(|t| d.grad(&along(p, &e, t)).map(|g| flat(&g)), step)?;
        for i in 0..n {
            let r = rel(h[i][j], fd[i]);
            w.hess = w.hess.max(r);
            if r > HVP_TOL {
                return Err(format!(
                    "Hessian entry ({}, {}): autodiff {:.12e}, finite differences {:.12e} (rel. error {r:.1e}) at {}",
                    coord_name(case, i),
                    coord_name(case, j),
                    h[i][j],
                    fd[i],
                    describe_point(p)
                ));
            }
        }
    }
    for i in 0..n {
        for j in 0..i {
            let r = rel(h[i][j], h[j][i]);
            w.sym = w.sym.max(r);
            if r > SYM_TOL {
                return Err(format!(
                    "the Hessian is not symmetric: H[{i}][{j}] = {:e}, H[{j}][{i}] = {:e}",
                    h[i][j], h[j][i]
                ));
            }
        }
    }
    // Linearity: the random HVP is H·v.
    let vf = flat(&v);
    for i in 0..n {
        let hv_i: f64 = (0..n).map(|j| h[i][j] * vf[j]).sum();
        let r = rel(hv_i, hv[i]);
        if r > 1e-9 {
            return Err(format!("(H·v)[{i}] = {hv_i:e} from unit-vector HVPs, hvp(v)[{i}] = {:e}", hv[i]));
        }
    }
    // The diagonal against second differences of the loss (an estimate independent of the gradient).
    for j in 0..n {
        let e = unit(p, j);
        // Second differences lose more to rounding (ε·|f|/h²): a larger step, still O(h⁴).
        let step = (2.0 * opts.h).max(1e-3) * x[j].abs().max(1.0);
        let fd = diff2(|t| d.loss(&along(p, &e, t)), step)?;
        let r = rel(h[j][j], fd);
        w.diag = w.diag.max(r);
        if r > HVP_TOL {
            return Err(format!(
                "Hessian diagonal at {}: from unit-vector HVPs {:.12e}, second differences of the loss {fd:.12e} \
                 (rel. error {r:.1e})",
                coord_name(case, j),
                h[j][j]
            ));
        }
    }
    Ok(w)
}

fn describe_point(p: &[Vec<f64>]) -> String {
    let s = format!("params = {p:?}");
    if s.len() > 600 {
        format!("{}…", &s[..600])
    } else {
        s
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

fn trial_count(default: usize) -> usize {
    std::env::var("CIRC_AD_TRIALS").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// Runs `trials` random cases of one family, each from its own seed (`fnv(family) + trial`;
/// `CIRC_AD_SEED=<seed>` runs only that seed, `CIRC_AD_TRIALS=<n>` changes the count). Panics
/// after all trials with every failure, its seed and the case it built.
pub fn run_family(family: &str, trials: usize, opts: Opts, mut make: impl FnMut(&mut Rng) -> Case) -> Worst {
    let only: Option<u64> = std::env::var("CIRC_AD_SEED").ok().and_then(|s| {
        let s = s.trim();
        s.strip_prefix("0x").map_or_else(|| s.parse().ok(), |h| u64::from_str_radix(h, 16).ok())
    });
    let base = fnv(family);
    let mut worst = Worst::default();
    let mut failures = Vec::new();
    for t in 0..trial_count(trials) {
        let seed = base.wrapping_add(t as u64);
        if only.is_some_and(|s| s != seed) {
            continue;
        }
        let mut rng = Rng::new(seed);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let case = make(&mut rng);
            let what = case.what.clone();
            (what, check(&case, &mut rng, opts))
        }));
        match outcome {
            Ok((_, Ok(w))) => worst.merge(&w),
            Ok((what, Err(e))) => failures.push(format!("{family} trial {t} (CIRC_AD_SEED={seed:#x}) {what}: {e}")),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{family} trial {t} (CIRC_AD_SEED={seed:#x}): panicked: {msg}"));
            }
        }
    }
    eprintln!("{family}: {worst}");
    if !failures.is_empty() {
        panic!("{} of {} trials failed:\n{}", failures.len(), trial_count(trials), failures.join("\n"));
    }
    worst
}

//! The Cranelift CPU backend's elementwise kernels against the reference interpreter.
//!
//! Every fusion group is compiled alone and run on seeded random data; the interpreter runs the
//! same group as a graph of its own (each input a data input, each output a named output), in
//! `f32` and in `f64`. An element passes when (see `close`):
//! - (a) both are NaN or they are equal, or
//! - (b) its relative error against the f32 interpreter is below 1e-5 (the bound of the issue);
//!   and only where the two computations legitimately round differently:
//! - (c) a sum or mean epilogue adds in another order (four lanes, then rows) than the
//!   interpreter: the error of either order is at most `(n − 1)·ε·Σ|x|` for `n` terms, so the two
//!   may differ by `2n·ε·Σ|x|` (ε = 2⁻²⁴), which is large against the result only when the terms
//!   cancel;
//! - (d) with `fma` on, `a·b + c` is rounded once instead of twice, which changes the result by up
//!   to one rounding of `a·b`: large against the result where `a·b + c` cancels, and more so after
//!   a `log` or a division. The kernel must then be as close to the f64 result as the f32
//!   interpreter is (twice its error), give or take 1e-5 of the larger of the element and the
//!   output's mean magnitude (the interpreter is sometimes exact by luck where both round);
//! - (e) the same bound in a group computing `exp log tanh sigmoid softplus`: the kernel's are
//!   inline polynomials within 2.4 ulp of the exact result (`backend/cpu/math.rs`,
//!   `tests/backend_cpu_math.rs`), the interpreter's Rust's (`exp` alone rounds as Rust's but for
//!   4·10⁻⁵ of all floats), so the two may differ by a few ulp, which a later cancellation may make
//!   large against the result.
//!
//! With `fma` off and no epilogue every element of a group without those functions must pass (a)
//! or (b) (in practice the results are bit-identical: the same instructions in the same order, the
//! same scalar `libm` function for `pow`).
//!
//! Coverage: random graphs (every unary and binary op, `cast`, every broadcast pattern including
//! a middle axis and known-1 axes, symbolic sizes, each reduction epilogue over random axes), the
//! groups of every example, of its gradient graph and of its bprop2 graph; a CLIF snapshot; and
//! an `#[ignore]`d micro-benchmark (`cargo test --test backend_cpu -- --ignored --nocapture`).

use circ::backend::cpu::plan::{Access, Plan};
use circ::backend::cpu::{self, Options};
use circ::check::checked::{DataSource, Prior};
use circ::check::types::{Dim, Elem, SymId};
use circ::driver::{self, Derivatives};
use circ::interp::{self, HostTensor};
use circ::ir::graph::{DataInfo, Init, Node, Output, ParamInfo};
use circ::ir::op::{BinaryOp, ReduceOp, UnaryOp};
use circ::ir::{Graph, NodeId, Op};
use circ::passes::fusion::{self, FusionGroup};
use std::collections::HashMap;
use std::path::Path;

// ---------------------------------------------------------------------------------------------
// A seeded PRNG (splitmix64).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// Running one group both ways.

/// The run-time sizes of the symbols (`sizes[s]` for `SymId(s)`, cycling when short).
fn concrete(shape: &[Dim], sizes: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .map(|d| match d {
            Dim::Known(n) => *n as usize,
            Dim::Sym(s) => sizes[s.0 as usize % sizes.len()],
            Dim::Any => panic!("a verified graph has no unknown sizes"),
        })
        .collect()
}

/// The group as a graph of its own: each input a data input (constants stay constants), each
/// output a named output `o<k>`; for a sum or mean epilogue also `abs<k>`, the same reduction of
/// `|x|` (for the reordering bound (c)).
fn standalone(g: &Graph, grp: &FusionGroup) -> Graph {
    let mut s = Graph::default();
    s.syms = g.syms.clone();
    let mut map: HashMap<NodeId, NodeId> = HashMap::new();
    for &i in &grp.inputs {
        let n = g.node(i);
        let id = match n.op {
            Op::Const(c) => s.add(Node { op: Op::Const(c), elem: n.elem, shape: vec![], span: None, label: None }, &[]),
            _ => {
                let d = s.data.len();
                s.data.push(DataInfo {
                    name: format!("in{d}"),
                    elem: n.elem,
                    shape: n.shape.clone(),
                    source: DataSource::Columns(vec![]),
                });
                s.add(Node { op: Op::Data(d), elem: n.elem, shape: n.shape.clone(), span: None, label: None }, &[])
            }
        };
        map.insert(i, id);
    }
    // An `expand` may be the only thing of the group's size (`expand(s) : [N]` of a scalar): an
    // unused datum of the space's shape binds its symbols for the interpreter.
    if !grp.inputs.iter().any(|i| g.node(*i).shape == grp.shape) {
        let d = s.data.len();
        let shape = grp.shape.clone();
        s.data.push(DataInfo {
            name: "space".into(),
            elem: Elem::Float,
            shape: shape.clone(),
            source: DataSource::Columns(vec![]),
        });
        s.add(Node { op: Op::Data(d), elem: Elem::Float, shape, span: None, label: None }, &[]);
    }
    for &m in &grp.nodes {
        let ops: Vec<NodeId> = g.operands(m).iter().map(|o| map[o]).collect();
        let id = s.add(g.node(m).clone(), &ops);
        map.insert(m, id);
    }
    for (k, o) in grp.outputs.iter().enumerate() {
        s.outputs.push(Output { name: format!("o{k}"), node: map[o] });
        if Some(*o) == grp.epilogue {
            if let Op::Reduce { f: f @ (ReduceOp::Sum | ReduceOp::Mean), axes, keepdims } = &g.node(*o).op {
                let x = map[&g.operands(*o)[0]];
                let a = s.unary(UnaryOp::Abs, x, None);
                let r = s.push(Op::Reduce { f: *f, axes: axes.clone(), keepdims: *keepdims }, &[a], None, None);
                s.outputs.push(Output { name: format!("abs{k}"), node: r });
            }
        }
    }
    s
}

/// Whether an input's values should be positive: it feeds `log`, `sqrt`, `recip`, the base of a
/// `pow` or a denominator directly (so that most elements are finite).
fn wants_positive(g: &Graph, grp: &FusionGroup, i: NodeId) -> bool {
    grp.nodes.iter().any(|m| {
        let ops = g.operands(*m);
        match g.node(*m).op {
            Op::Unary(UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip) => ops[0] == i,
            Op::Binary(BinaryOp::Pow) => ops[0] == i,
            Op::Binary(BinaryOp::Div) => ops[1] == i,
            _ => false,
        }
    })
}

#[derive(Default, Debug)]
struct Tally {
    groups: usize,
    unsupported: Vec<String>,
    elements: usize,
    exact: usize,
    /// Elements of elementwise outputs (not epilogues) that are not bit-identical, in groups
    /// without a `math.rs` function.
    inexact_elementwise: usize,
    /// The same in groups with one (they differ by design).
    approximated: usize,
    /// Elements that passed only by rule (c), (d) or (e).
    reordered: usize,
    fused: usize,
    by_approximation: usize,
    worst_rel: f64,
}

/// Compiles `grp`, runs it and the interpreter on random data, and checks every element.
fn check_group(
    g: &Graph,
    grp: &FusionGroup,
    sizes: &[usize],
    rng: &mut Rng,
    opts: &Options,
    tally: &mut Tally,
    what: &str,
) {
    tally.groups += 1;
    if let Err(e) = cpu::supports(g, grp) {
        tally.unsupported.push(format!("{what}: {e}"));
        return;
    }
    let dims = concrete(&grp.shape, sizes);
    let s = standalone(g, grp);
    let approx = grp.nodes.iter().any(|n| {
        matches!(
            g.node(*n).op,
            Op::Unary(UnaryOp::Exp | UnaryOp::Log | UnaryOp::Tanh | UnaryOp::Sigmoid | UnaryOp::Softplus)
        )
    });
    let mut host = Vec::new();
    let mut values32: Vec<Vec<f32>> = Vec::new();
    for &i in &grp.inputs {
        let n = g.node(i);
        if let Op::Const(_) = n.op {
            values32.push(Vec::new());
            continue;
        }
        let shape = concrete(&n.shape, sizes);
        let len: usize = shape.iter().product();
        let positive = wants_positive(g, grp, i);
        let v: Vec<f32> = (0..len)
            .map(|_| match n.elem {
                Elem::Int => rng.below(3) as f32,
                Elem::Float if positive => rng.uniform(0.2, 2.0) as f32,
                Elem::Float => {
                    // Some exact zeros and repeats, so `step`, `sign` and `eq` see both sides.
                    if rng.chance(0.05) {
                        0.0
                    } else if rng.chance(0.05) {
                        1.0
                    } else {
                        rng.uniform(-2.0, 2.0) as f32
                    }
                }
            })
            .collect();
        host.push(HostTensor::new(shape, v.iter().map(|x| *x as f64).collect()));
        values32.push(v);
    }
    if s.data.len() > host.len() {
        // The unused datum `standalone` adds to bind the space's sizes.
        host.push(HostTensor::new(dims.clone(), vec![0.0; dims.iter().product()]));
    }
    let want32 = interp::run::<f32>(&s, &host, &[]).unwrap_or_else(|e| panic!("{what}: interpreter: {e:?}"));
    let want64 = interp::run::<f64>(&s, &host, &[]).unwrap_or_else(|e| panic!("{what}: interpreter: {e:?}"));
    let code = cpu::compile_group(g, grp, opts).unwrap_or_else(|e| panic!("{what}: {e}"));
    let kernel = &code.kernels()[0];
    let mut outs: Vec<Vec<f32>> = (0..grp.outputs.len()).map(|o| vec![f32::NAN; kernel.output_len(o, &dims)]).collect();
    {
        let ins: Vec<&[f32]> = values32.iter().map(Vec::as_slice).collect();
        let mut outs: Vec<&mut [f32]> = outs.iter_mut().map(Vec::as_mut_slice).collect();
        kernel.run(&dims, &ins, &mut outs).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
    for (k, node) in grp.outputs.iter().enumerate() {
        let name = format!("o{k}");
        let w32 = &want32.get(&name).expect("an output").data;
        let w64 = &want64.get(&name).expect("an output").data;
        let abs = want64.get(&format!("abs{k}")).map(|t| &t.data);
        let terms = match &g.node(*node).op {
            Op::Reduce { axes, .. } if Some(*node) == grp.epilogue => axes.iter().map(|a| dims[*a]).product::<usize>(),
            _ => 1,
        };
        assert_eq!(outs[k].len(), w32.len(), "{what}: output {node} length");
        // The output's typical magnitude: the mean |x| of its finite elements.
        let finite: Vec<f64> = w64.iter().filter(|x| x.is_finite()).map(|x| x.abs()).collect();
        let scale = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
        for e in 0..w32.len() {
            let (got, a, b) = (outs[k][e], w32[e], w64[e]);
            tally.elements += 1;
            let diff = (got - a).abs() as f64;
            let rel = if a == 0.0 { diff } else { diff / a.abs() as f64 };
            if (got.is_nan() && a.is_nan()) || got == a {
                tally.exact += 1;
                continue;
            }
            if Some(*node) != grp.epilogue {
                if approx {
                    tally.approximated += 1;
                } else {
                    tally.inexact_elementwise += 1;
                }
            }
            if rel < 1e-5 {
                tally.worst_rel = tally.worst_rel.max(rel);
                continue;
            }
            let eps = f32::EPSILON as f64 / 2.0;
            if let Some(abs) = abs {
                // For a mean, `abs` holds Σ|x|/n and the error is the sum's over n: the same bound.
                let bound = 2.0 * terms as f64 * eps * abs[e];
                if diff <= bound + 1e-30 {
                    tally.reordered += 1;
                    continue;
                }
            }
            if opts.fma || approx {
                let (e32, ejit) = ((a as f64 - b).abs(), (got as f64 - b).abs());
                if ejit <= 2.0 * e32 + 1e-5 * b.abs().max(scale) {
                    if opts.fma {
                        tally.fused += 1;
                    } else {
                        tally.by_approximation += 1;
                    }
                    continue;
                }
            }
            panic!(
                "{what}: output {node} ({}) element {e}: kernel {got}, interpreter f32 {a}, f64 {b} \
                 (relative error {rel:e})\n{}",
                g.node(*node).op.name(),
                fusion::describe(g, std::slice::from_ref(grp))
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Random elementwise graphs.

const N: Dim = Dim::Sym(SymId(0));
const M: Dim = Dim::Sym(SymId(1));

fn k(n: u64) -> Dim {
    Dim::Known(n)
}

/// A value and a bound on the magnitude of its elements.
#[derive(Clone, Copy)]
struct Val {
    id: NodeId,
    mag: f64,
}

struct Gen<'r> {
    g: Graph,
    rng: &'r mut Rng,
    space: Vec<Dim>,
    pool: Vec<Val>,
}

impl Gen<'_> {
    fn leaf_shape(&mut self) -> Vec<Dim> {
        let r = self.space.len();
        let drop = if r > 0 && self.rng.chance(0.3) { self.rng.below(r + 1) } else { 0 };
        self.space[drop..].iter().map(|d| if self.rng.chance(0.3) { k(1) } else { *d }).collect()
    }

    fn data(&mut self, shape: Vec<Dim>, elem: Elem) -> NodeId {
        let i = self.g.data.len();
        self.g.data.push(DataInfo { name: format!("x{i}"), elem, shape, source: DataSource::Columns(vec![]) });
        self.g.push(Op::Data(i), &[], None, None)
    }

    fn leaf(&mut self) -> Val {
        match self.rng.below(10) {
            0 => Val { id: self.g.constant(self.rng.pick(&[0.5, -1.5, 2.0, 0.0]), None), mag: 2.0 },
            1 => {
                // A parameter: known shape only.
                let shape: Vec<u64> =
                    self.leaf_shape().iter().map(|d| if let Dim::Known(n) = d { *n } else { 1 }).collect();
                let i = self.g.params.len();
                self.g.params.push(ParamInfo {
                    name: format!("p{i}"),
                    shape,
                    prior: Prior::Normal { mu: 0.0, sigma: 1.0 },
                    init: Init::Fixed(0.0),
                    update: None,
                });
                Val { id: self.g.push(Op::Param(i), &[], None, None), mag: 2.0 }
            }
            2 => {
                let shape = self.leaf_shape();
                let x = self.data(shape, Elem::Int);
                Val { id: self.g.push(Op::Cast, &[x], None, None), mag: 2.0 }
            }
            _ => {
                let shape = self.leaf_shape();
                Val { id: self.data(shape, Elem::Float), mag: 2.0 }
            }
        }
    }

    fn any(&mut self) -> Val {
        if self.pool.is_empty() || self.rng.chance(0.25) {
            let v = self.leaf();
            self.pool.push(v);
            return v;
        }
        let i = self.rng.below(self.pool.len());
        self.pool[i]
    }

    fn un(&mut self, f: UnaryOp, x: Val, mag: f64) -> Val {
        Val { id: self.g.unary(f, x.id, None), mag }
    }

    fn bin(&mut self, f: BinaryOp, x: Val, y: Val, mag: f64) -> Val {
        Val { id: self.g.binary(f, x.id, y.id, None), mag }
    }

    /// `|x| + 0.5`: positive, for `log`, `sqrt`, `recip`, `pow` and denominators.
    fn positive(&mut self, x: Val) -> Val {
        let a = self.un(UnaryOp::Abs, x, x.mag);
        let c = Val { id: self.g.constant(0.5, None), mag: 0.5 };
        self.bin(BinaryOp::Add, a, c, x.mag + 0.5)
    }

    /// Keeps magnitudes small enough that nothing overflows.
    fn tame(&mut self, x: Val) -> Val {
        if x.mag > 50.0 {
            self.un(UnaryOp::Tanh, x, 1.0)
        } else {
            x
        }
    }

    fn step(&mut self) {
        let x = self.any();
        let y = self.any();
        let v = match self.rng.below(20) {
            0 => self.un(UnaryOp::Neg, x, x.mag),
            1 => {
                let t = self.tame(x);
                let t = if t.mag > 5.0 { self.un(UnaryOp::Tanh, t, 1.0) } else { t };
                self.un(UnaryOp::Exp, t, t.mag.exp())
            }
            2 => {
                let p = self.positive(x);
                self.un(UnaryOp::Log, p, p.mag.ln().abs().max(0.7))
            }
            3 => self.un(UnaryOp::Relu, x, x.mag),
            4 => self.un(UnaryOp::Sigmoid, x, 1.0),
            5 => self.un(UnaryOp::Tanh, x, 1.0),
            6 => self.un(UnaryOp::Softplus, x, x.mag + 0.7),
            7 => {
                let p = self.positive(x);
                self.un(UnaryOp::Sqrt, p, p.mag.sqrt())
            }
            8 => self.un(UnaryOp::Abs, x, x.mag),
            9 => {
                let t = self.tame(x);
                self.un(UnaryOp::Square, t, t.mag * t.mag)
            }
            10 => {
                let p = self.positive(x);
                self.un(UnaryOp::Recip, p, 2.0)
            }
            11 => self.un(UnaryOp::Step, x, 1.0),
            12 => self.un(UnaryOp::Sign, x, 1.0),
            13 => self.bin(BinaryOp::Add, x, y, x.mag + y.mag),
            14 => self.bin(BinaryOp::Sub, x, y, x.mag + y.mag),
            15 => {
                let (a, b) = (self.tame(x), self.tame(y));
                self.bin(BinaryOp::Mul, a, b, a.mag * b.mag)
            }
            16 => {
                let p = self.positive(y);
                self.bin(BinaryOp::Div, x, p, x.mag * 2.0)
            }
            17 => {
                let base = self.positive(x);
                let base = self.tame(base);
                let e = self.un(UnaryOp::Tanh, y, 1.0);
                self.bin(BinaryOp::Pow, base, e, base.mag.max(2.0))
            }
            18 => {
                // Equal often: relu(x) = x wherever x ≥ 0.
                let r = self.un(UnaryOp::Relu, x, x.mag);
                self.bin(BinaryOp::Eq, r, x, 1.0)
            }
            _ => {
                // a·b + c, the pattern contracted into an fma.
                let (a, b) = (self.tame(x), self.tame(y));
                let p = self.bin(BinaryOp::Mul, a, b, a.mag * b.mag);
                let c = self.any();
                if self.rng.chance(0.5) {
                    self.bin(BinaryOp::Add, p, c, p.mag + c.mag)
                } else {
                    self.bin(BinaryOp::Sub, c, p, p.mag + c.mag)
                }
            }
        };
        self.pool.push(v);
    }

    /// Every value nothing uses is added into one value of the space's shape, which is reduced:
    /// the loss (over every axis) and, sometimes, another output over some axes.
    fn finish(mut self) -> Graph {
        let dangling: Vec<Val> = self.pool.iter().copied().filter(|v| self.g.users(v.id).is_empty()).collect();
        let mut acc = dangling[0];
        for v in &dangling[1..] {
            acc = self.bin(BinaryOp::Add, acc, *v, acc.mag + v.mag);
        }
        // Make sure the value fills the whole space (a dangling value may be broadcast-smaller).
        let full = self.g.shape_of(acc.id) != self.space;
        if full {
            let x = self.data(self.space.clone(), Elem::Float);
            acc = self.bin(BinaryOp::Mul, acc, Val { id: x, mag: 2.0 }, acc.mag * 2.0);
        }
        let r = self.space.len();
        let f = self.rng.pick(&[ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max]);
        let mut outputs = Vec::new();
        if r > 0 && self.rng.chance(0.6) {
            // A partial reduction ends the group; its result is then summed to the loss.
            let mut axes: Vec<usize> = (0..r).filter(|_| self.rng.chance(0.5)).collect();
            if axes.is_empty() {
                axes.push(self.rng.below(r));
            }
            let keepdims = self.rng.chance(0.5);
            let p = self.g.push(Op::Reduce { f, axes, keepdims }, &[acc.id], None, None);
            let rank = self.g.node(p).shape.len();
            if rank == 0 {
                outputs.push(p);
            } else {
                let all = Op::Reduce { f: ReduceOp::Sum, axes: (0..rank).collect(), keepdims: false };
                outputs.push(self.g.push(all, &[p], None, None));
                outputs.push(p);
            }
        } else {
            let all: Vec<usize> = (0..r).collect();
            let loss = if r == 0 {
                acc.id
            } else {
                self.g.push(Op::Reduce { f, axes: all, keepdims: false }, &[acc.id], None, None)
            };
            outputs.push(loss);
        }
        // Sometimes an intermediate value is an output too (a group with several outputs).
        if self.pool.len() > 2 && self.rng.chance(0.5) {
            let v = self.pool[self.rng.below(self.pool.len())];
            outputs.push(v.id);
        }
        for (i, o) in outputs.iter().enumerate() {
            self.g.outputs.push(Output { name: if i == 0 { "loss".into() } else { format!("o{i}") }, node: *o });
        }
        // Remove what no output reads (a leaf created but then only used by a dropped value).
        circ::passes::dce::run(&mut self.g);
        self.g
    }
}

fn random_graph(rng: &mut Rng) -> Graph {
    let spaces: [Vec<Dim>; 9] = [
        vec![N, k(5)],
        vec![N, k(9)],
        vec![k(17)],
        vec![],
        vec![k(3), N, k(4)],
        vec![N, k(1), k(6)],
        vec![M, N],
        vec![k(2), k(3), k(2), k(5)],
        vec![N, k(37)],
    ];
    let space = spaces[rng.below(spaces.len())].clone();
    let syms = vec!["N".to_string(), "M".to_string()];
    let mut g = Graph::default();
    g.syms = syms;
    let mut gen = Gen { g, rng, space, pool: Vec::new() };
    let steps = 2 + gen.rng.below(10);
    for _ in 0..steps {
        gen.step();
    }
    gen.finish()
}

/// What the random groups exercise, counted over their plans.
#[derive(Default, Debug)]
struct Coverage {
    groups: usize,
    multi_member: usize,
    several_axes: usize,
    constants: usize,
    scalar_inputs: usize,
    /// Inputs broadcast along the inner axis only (a per-row value), the outer only (a bias row),
    /// or along an axis between two they vary along.
    inner_broadcast: usize,
    outer_broadcast: usize,
    middle_broadcast: usize,
    libm: usize,
    /// Sum, mean, max epilogues; those reducing the inner axis, and those keeping it.
    epilogues: [usize; 3],
    inner_reduced: usize,
    outer_reduced: usize,
}

impl Coverage {
    fn add(&mut self, g: &Graph, grp: &FusionGroup) {
        let Ok(plan) = Plan::new(g, grp) else { return };
        self.groups += 1;
        self.multi_member += usize::from(grp.nodes.len() >= 3);
        self.several_axes += usize::from(plan.axes.len() >= 2);
        for a in &plan.inputs {
            match a {
                Access::Const(_) => self.constants += 1,
                Access::Strided { vary } => {
                    let q = vary.len();
                    if vary.iter().all(|v| !v) {
                        self.scalar_inputs += 1;
                    } else if q >= 2 && !vary[q - 1] {
                        self.inner_broadcast += 1;
                    } else if q >= 2 && !vary[0] {
                        self.outer_broadcast += 1;
                    }
                    if (1..q.saturating_sub(1))
                        .any(|j| !vary[j] && vary[..j].contains(&true) && vary[j + 1..].contains(&true))
                    {
                        self.middle_broadcast += 1;
                    }
                }
            }
        }
        use UnaryOp::*;
        self.libm += grp
            .nodes
            .iter()
            .filter(|n| {
                matches!(g.node(**n).op, Op::Unary(Exp | Log | Tanh | Sigmoid | Softplus) | Op::Binary(BinaryOp::Pow))
            })
            .count();
        if let Some(e) = &plan.epilogue {
            self.epilogues[e.f as usize] += 1;
            if e.vary.last() == Some(&false) {
                self.inner_reduced += 1;
            } else {
                self.outer_reduced += 1;
            }
        }
    }
}

#[test]
fn random_groups_match_the_interpreter() {
    let mut rng = Rng(0x0c12c);
    let mut cover = Coverage::default();
    let mut tallies = [Tally::default(), Tally::default(), Tally::default()];
    let settings = [
        Options { fma: false, vectorize: true, ..Options::default() },
        Options { fma: true, vectorize: true, ..Options::default() },
        Options { fma: false, vectorize: false, ..Options::default() },
    ];
    for case in 0..300 {
        let g = random_graph(&mut rng);
        circ::ir::verify::verify(&g).unwrap_or_else(|e| panic!("case {case}: generator made a bad graph: {e:?}"));
        let sizes = [rng.pick(&[0, 1, 2, 7, 13, 64]), rng.pick(&[1, 3, 5, 9])];
        for grp in fusion::groups(&g) {
            cover.add(&g, &grp);
            for (opts, tally) in settings.iter().zip(tallies.iter_mut()) {
                check_group(&g, &grp, &sizes, &mut rng, opts, tally, &format!("random case {case} {sizes:?}"));
            }
        }
    }
    println!("{cover:?}");
    // The generator reaches every case the kernels distinguish.
    assert!(cover.multi_member >= 100 && cover.constants >= 50 && cover.libm >= 50, "{cover:?}");
    assert!(cover.inner_broadcast >= 30 && cover.outer_broadcast >= 30 && cover.middle_broadcast >= 10, "{cover:?}");
    assert!(cover.scalar_inputs >= 30 && cover.several_axes >= 50, "{cover:?}");
    assert!(cover.epilogues.iter().all(|n| *n >= 15) && cover.inner_reduced >= 15 && cover.outer_reduced >= 15);
    for (opts, t) in settings.iter().zip(&tallies) {
        println!("{opts:?}: {t:?}");
        assert!(t.unsupported.is_empty(), "{:?}", t.unsupported);
    }
    // Without FMA the kernels round exactly as the interpreter outside an epilogue's sum.
    for t in [&tallies[0], &tallies[2]] {
        assert_eq!((t.fused, t.inexact_elementwise), (0, 0));
    }
}

/// Every op, alone, on every broadcast pattern of an `[N, 6]` space, so that no op depends on the
/// random generator reaching it.
#[test]
fn every_op_on_every_broadcast_pattern() {
    let mut rng = Rng(7);
    let mut tally = Tally::default();
    let shapes: Vec<Vec<Dim>> = vec![vec![N, k(6)], vec![k(6)], vec![N, k(1)], vec![], vec![k(1), k(6)]];
    let unary = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Relu,
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::Softplus,
        UnaryOp::Sqrt,
        UnaryOp::Abs,
        UnaryOp::Square,
        UnaryOp::Recip,
        UnaryOp::Step,
        UnaryOp::Sign,
    ];
    let binary = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow, BinaryOp::Eq];
    let opts = Options { fma: false, vectorize: true, ..Options::default() };
    for f in unary {
        let mut g = graph_with_n();
        let x = data(&mut g, vec![N, k(6)]);
        let y = g.unary(f, x, None);
        finish_simple(&mut g, y);
        for grp in fusion::groups(&g) {
            check_group(&g, &grp, &[11], &mut rng, &opts, &mut tally, &format!("{f:?}"));
        }
    }
    for f in binary {
        for a in &shapes {
            for b in &shapes {
                let mut g = graph_with_n();
                let x = data(&mut g, a.clone());
                let y =
                    if b.is_empty() && f != BinaryOp::Div { g.constant(1.5, None) } else { data(&mut g, b.clone()) };
                let z = g.binary(f, x, y, None);
                finish_simple(&mut g, z);
                for grp in fusion::groups(&g) {
                    check_group(&g, &grp, &[11], &mut rng, &opts, &mut tally, &format!("{f:?} {a:?} {b:?}"));
                }
            }
        }
    }
    println!("{tally:?}");
    assert!(tally.unsupported.is_empty());
    assert_eq!(tally.inexact_elementwise, 0);
}

fn graph_with_n() -> Graph {
    let mut g = Graph::default();
    g.syms = vec!["N".into()];
    g
}

/// NaN, ±0, ±∞ and huge values through every op (two vectors and a tail), and through each
/// epilogue: the kernel gives what the interpreter gives, NaN for NaN (the sign of a zero is not
/// significant, `ir/op.rs`); a finite result of `exp log tanh sigmoid softplus` within a few ulp.
#[test]
fn special_values_follow_the_op_semantics() {
    let special =
        [f32::NAN, -0.0, 0.0, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30, 3.0, -2.5, 1e-40, 88.0, -88.0, 0.5];
    let n = special.len();
    let mut cases: Vec<(String, Graph)> = Vec::new();
    let unary = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Relu,
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::Softplus,
        UnaryOp::Sqrt,
        UnaryOp::Abs,
        UnaryOp::Square,
        UnaryOp::Recip,
        UnaryOp::Step,
        UnaryOp::Sign,
    ];
    for f in unary {
        let mut g = Graph::default();
        let x = data(&mut g, vec![k(n as u64)]);
        let y = g.unary(f, x, None);
        g.outputs.push(Output { name: "loss".into(), node: y });
        cases.push((format!("{f:?}"), g));
    }
    for f in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow, BinaryOp::Eq] {
        let mut g = Graph::default();
        let x = data(&mut g, vec![k(n as u64)]);
        let y = data(&mut g, vec![k(n as u64), k(1)]);
        let z = g.binary(f, x, y, None);
        g.outputs.push(Output { name: "loss".into(), node: z });
        cases.push((format!("{f:?}"), g));
    }
    for f in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max] {
        let mut g = Graph::default();
        let x = data(&mut g, vec![k(n as u64), k(n as u64)]);
        let y = g.unary(UnaryOp::Neg, x, None);
        let r = g.push(Op::Reduce { f, axes: vec![1], keepdims: false }, &[y], None, None);
        g.outputs.push(Output { name: "loss".into(), node: r });
        cases.push((format!("{f:?}"), g));
    }
    for (what, g) in cases {
        let grp = &fusion::groups(&g)[0];
        // Every input holds the special values, repeated, each in a different order.
        let inputs: Vec<Vec<f32>> = grp
            .inputs
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let len: usize = concrete(&g.node(*x).shape, &[1]).iter().product();
                (0..len).map(|e| special[(e * (i + 1) + e / n) % n]).collect()
            })
            .collect();
        let host: Vec<HostTensor> = grp
            .inputs
            .iter()
            .zip(&inputs)
            .map(|(x, v)| HostTensor::new(concrete(&g.node(*x).shape, &[1]), v.iter().map(|v| *v as f64).collect()))
            .collect();
        let want = interp::run::<f32>(&g, &host, &[]).unwrap();
        let dims = concrete(&grp.shape, &[1]);
        for opts in [
            Options { fma: false, vectorize: true, ..Options::default() },
            Options { fma: false, vectorize: false, ..Options::default() },
        ] {
            let code = cpu::compile_group(&g, grp, &opts).unwrap();
            let kernel = &code.kernels()[0];
            let mut out = vec![0.0f32; kernel.output_len(0, &dims)];
            let ins: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
            kernel.run(&dims, &ins, &mut [&mut out]).unwrap();
            let w = &want.get("loss").unwrap().data;
            for (e, (a, b)) in out.iter().zip(w).enumerate() {
                // Sums in another order may differ where huge values cancel; NaN and ∞ may not.
                let sum = matches!(what.as_str(), "Sum" | "Mean") && b.is_finite();
                let approx = matches!(what.as_str(), "Exp" | "Log" | "Tanh" | "Sigmoid" | "Softplus")
                    && a.is_finite()
                    && b.is_finite()
                    && (a - b).abs() <= 4.0 * f32::EPSILON * b.abs() + 1e-44;
                let same = (a.is_nan() && b.is_nan()) || a == b || (sum && a.is_finite()) || approx;
                assert!(same, "{what} ({opts:?}) element {e}: kernel {a}, interpreter {b}");
            }
        }
    }
}

fn data(g: &mut Graph, shape: Vec<Dim>) -> NodeId {
    let i = g.data.len();
    g.data.push(DataInfo { name: format!("x{i}"), elem: Elem::Float, shape, source: DataSource::Columns(vec![]) });
    g.push(Op::Data(i), &[], None, None)
}

/// Makes `y` an output (so its group writes it) and the loss a sum of it.
fn finish_simple(g: &mut Graph, y: NodeId) {
    let r = g.node(y).shape.len();
    let loss = if r == 0 {
        y
    } else {
        g.push(Op::Reduce { f: ReduceOp::Sum, axes: (0..r).collect(), keepdims: false }, &[y], None, None)
    };
    g.outputs.push(Output { name: "loss".into(), node: loss });
    if loss != y {
        g.outputs.push(Output { name: "y".into(), node: y });
    }
    circ::ir::verify::verify(g).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The examples.

fn example_graphs() -> Vec<(String, circ::driver::Checked)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "circ"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let checked = driver::check_source(&format!("examples/{name}.circ"), &text);
            assert!(!checked.has_errors(), "{}", checked.render(false));
            (name, checked)
        })
        .collect()
}

#[test]
fn example_groups_match_the_interpreter() {
    let mut rng = Rng(2024);
    let opts = Options::default();
    let exact = Options { fma: false, vectorize: true, ..Options::default() };
    let mut total = Tally::default();
    let mut strict = Tally::default();
    let mut rows = Vec::new();
    let kinds = [
        ("forward", Derivatives::None),
        ("gradient", Derivatives::Gradient),
        ("bprop2", Derivatives::Curvature(circ::autodiff::bprop2::Variant::Full)),
    ];
    for (name, checked) in example_graphs() {
        for (model, g) in checked.models.iter().zip(driver::lower(&checked, 0)) {
            for (kind, what) in kinds {
                let d = driver::differentiated(&g, what);
                let groups = fusion::groups(&d);
                let mut t = Tally::default();
                let sizes = [7, 5, 3];
                for (i, grp) in groups.iter().enumerate() {
                    let what = format!("{name}/{} {kind} group {i}", model.name);
                    check_group(&d, grp, &sizes, &mut rng, &opts, &mut t, &what);
                    check_group(&d, grp, &sizes, &mut rng, &exact, &mut strict, &what);
                }
                let epilogues = groups.iter().filter(|g| g.epilogue.is_some()).count();
                rows.push(format!(
                    "{name:>16} {:<10} {kind:<8} groups {:>3} (with epilogue {:>3}) supported {:>3}",
                    model.name,
                    t.groups,
                    epilogues,
                    t.groups - t.unsupported.len()
                ));
                total.groups += t.groups;
                total.elements += t.elements;
                total.exact += t.exact;
                total.reordered += t.reordered;
                total.fused += t.fused;
                total.worst_rel = total.worst_rel.max(t.worst_rel);
                total.unsupported.extend(t.unsupported);
            }
        }
    }
    println!("{}", rows.join("\n"));
    println!(
        "examples: {} groups, {} supported; {} elements: {} exact, {} within 1e-5 (worst {:e}), {} by the \
         summation-order bound, {} by the fma bound",
        total.groups,
        total.groups - total.unsupported.len(),
        total.elements,
        total.exact,
        total.elements - total.exact - total.reordered - total.fused,
        total.worst_rel,
        total.reordered,
        total.fused
    );
    assert!(total.unsupported.is_empty(), "{:#?}", total.unsupported);
    println!("without fma: {strict:?}");
    assert_eq!((strict.fused, strict.inexact_elementwise), (0, 0));
}

// ---------------------------------------------------------------------------------------------
// Boundaries, CLIF, benchmark.

/// `f(x·w + b)` over `[N, o]`, `w` and `b` rows broadcast along `N`.
fn affine(o: u64, f: UnaryOp) -> (Graph, NodeId) {
    let mut g = graph_with_n();
    let x = data(&mut g, vec![N, k(o)]);
    let w = data(&mut g, vec![k(o)]);
    let b = data(&mut g, vec![k(o)]);
    let xw = g.binary(BinaryOp::Mul, x, w, None);
    let z = g.binary(BinaryOp::Add, xw, b, None);
    let y = g.unary(f, z, None);
    g.outputs.push(Output { name: "loss".into(), node: y });
    (g, y)
}

#[test]
fn a_kernel_checks_its_buffers() {
    let (g, _) = affine(4, UnaryOp::Relu);
    let groups = fusion::groups(&g);
    let code = cpu::compile_group(&g, &groups[0], &Options::default()).unwrap();
    let kernel = &code.kernels()[0];
    let (x, w, b) = (vec![1.0f32; 8], vec![2.0f32; 4], vec![-3.0f32; 4]);
    let mut y = vec![0.0f32; 8];
    kernel.run(&[2, 4], &[&x, &w, &b], &mut [&mut y]).unwrap();
    assert_eq!(y, vec![0.0; 8]);
    let b = vec![0.5f32; 4];
    kernel.run(&[2, 4], &[&x, &w, &b], &mut [&mut y]).unwrap();
    assert_eq!(y, vec![2.5; 8]);
    assert!(kernel.run(&[2, 5], &[&x, &w, &b], &mut [&mut y]).is_err(), "a known size is checked");
    assert!(kernel.run(&[3, 4], &[&x, &w, &b], &mut [&mut y]).is_err(), "lengths are checked");
    assert!(kernel.run(&[2, 4], &[&x, &w], &mut [&mut y]).is_err(), "the input count is checked");
}

#[test]
fn clif_of_a_small_group() {
    let mut g = graph_with_n();
    let x = data(&mut g, vec![N, k(3)]);
    let w = data(&mut g, vec![k(3)]);
    let half = g.constant(0.5, None);
    let xw = g.binary(BinaryOp::Mul, x, w, None);
    let z = g.binary(BinaryOp::Add, xw, half, None);
    let y = g.unary(UnaryOp::Relu, z, None);
    let s = g.push(Op::Reduce { f: ReduceOp::Sum, axes: vec![1], keepdims: false }, &[y], None, None);
    let loss = g.push(Op::Reduce { f: ReduceOp::Sum, axes: vec![0], keepdims: false }, &[s], None, None);
    g.outputs.push(Output { name: "loss".into(), node: loss });
    let groups = fusion::groups(&g);
    assert_eq!(groups[0].epilogue, Some(s));
    let opts = Options { fma: true, vectorize: true, ..Options::default() };
    let text = cpu::clif_text(&g, &groups[0], None, &opts).unwrap();
    insta::with_settings!({ snapshot_path => "snapshots/clif", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("affine_relu_row_sum", text);
    });
}

#[test]
fn the_inner_loop_is_vector_code() {
    let (g, _) = affine(8, UnaryOp::Relu);
    let groups = fusion::groups(&g);
    let asm = cpu::asm_text(&g, &groups[0], &Options { fma: true, vectorize: true, ..Options::default() }).unwrap();
    if cfg!(target_arch = "x86_64") && cpu::host_has_fma() {
        for op in ["vfmadd", "movups"] {
            assert!(asm.contains(op), "no {op} in\n{asm}");
        }
    }
    assert!(!asm.is_empty());
    if std::env::var_os("CIRC_SHOW_ASM").is_some() {
        println!("{asm}");
    }
}

#[test]
fn clif_names_the_source_lines() {
    let (name, checked) = example_graphs().into_iter().find(|(n, _)| n == "ridge").expect("examples/ridge.circ");
    let g = driver::differentiated(&driver::lower(&checked, 0)[0], Derivatives::None);
    let groups = fusion::groups(&g);
    let grp = groups.iter().find(|grp| grp.nodes.iter().any(|n| g.node(*n).span.is_some())).expect("a group");
    let text = cpu::clif_text(&g, grp, Some(&checked.program.sources), &Options::default()).unwrap();
    assert!(text.contains(&format!("from {name}.circ:")), "{text}");
    assert!(text.contains("function u0:"), "{text}");
}

/// Times `f(x·w + b)` on 1000 × 1000 elements, `f` = relu (native instructions) and tanh (inline
/// vector code, `math.rs`): the JIT kernel, the interpreter's kernels (one pass per op, as
/// `interp` runs them), the whole interpreter run, and a plain Rust loop. Not a timed test: run
/// with `cargo test --test backend_cpu -- --ignored --nocapture bench` (this project's dev
/// profile is optimized, opt-level 2).
#[test]
#[ignore]
fn bench_affine_activation_1m() {
    for f in [UnaryOp::Relu, UnaryOp::Tanh] {
        bench_affine(f);
    }
}

fn bench_affine(f: UnaryOp) {
    use std::time::Instant;
    let (n, o) = (1000usize, 1000usize);
    let (g, _) = affine(o as u64, f);
    let groups = fusion::groups(&g);
    assert_eq!(groups.len(), 1);
    let mut rng = Rng(1);
    let x: Vec<f32> = (0..n * o).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    let w: Vec<f32> = (0..o).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    let b: Vec<f32> = (0..o).map(|_| rng.uniform(-1.0, 1.0) as f32).collect();
    let best = |runs: usize, f: &mut dyn FnMut()| {
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let dims = [n, o];
    let t0 = Instant::now();
    let code = cpu::compile_group(&g, &groups[0], &Options::default()).unwrap();
    let compile = t0.elapsed().as_secs_f64();
    let kernel = &code.kernels()[0];
    let mut y = vec![0.0f32; n * o];
    let jit = best(20, &mut || kernel.run(&dims, &[&x, &w, &b], &mut [&mut y]).unwrap());
    let scalar =
        cpu::compile_group(&g, &groups[0], &Options { fma: false, vectorize: false, ..Options::default() }).unwrap();
    let mut y2 = vec![0.0f32; n * o];
    let jit_scalar = best(20, &mut || scalar.kernels()[0].run(&dims, &[&x, &w, &b], &mut [&mut y2]).unwrap());
    // The interpreter's kernels, one pass per op.
    let tx = interp::Tensor { shape: vec![n, o], data: x.clone() };
    let tw = interp::Tensor { shape: vec![o], data: w.clone() };
    let tb = interp::Tensor { shape: vec![o], data: b.clone() };
    let mut out = None;
    let ops = best(5, &mut || {
        let xw = interp::ops::binary(BinaryOp::Mul, &tx, &tw).unwrap();
        let z = interp::ops::binary(BinaryOp::Add, &xw, &tb).unwrap();
        out = Some(interp::ops::unary(f, &z));
    });
    let host = vec![
        HostTensor::new(vec![n, o], x.iter().map(|v| *v as f64).collect()),
        HostTensor::new(vec![o], w.iter().map(|v| *v as f64).collect()),
        HostTensor::new(vec![o], b.iter().map(|v| *v as f64).collect()),
    ];
    let whole = best(3, &mut || {
        interp::run::<f32>(&g, &host, &[]).unwrap();
    });
    // A plain Rust loop, as rustc compiles it (baseline x86-64: SSE2, no FMA), for scale.
    let mut y3 = vec![0.0f32; n * o];
    let rust = best(20, &mut || {
        for (row, xr) in y3.chunks_exact_mut(o).zip(x.chunks_exact(o)) {
            for (((y, x), w), b) in row.iter_mut().zip(xr).zip(&w).zip(&b) {
                let v = x * w + b;
                *y = match f {
                    UnaryOp::Relu => {
                        if v < 0.0 {
                            0.0
                        } else {
                            v
                        }
                    }
                    _ => v.tanh(),
                };
            }
        }
    });
    let want = out.unwrap().data;
    assert!(y.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-5 * b.abs().max(1.0)));
    let gbs = |t: f64| (2.0 * (n * o) as f64 * 4.0) / t / 1e9;
    println!("{f:?}(x*w + b), {n} x {o} f32, best of runs; compile {:.2} ms", compile * 1e3);
    println!("  JIT f32x4 + fma       {:8.3} ms  {:6.1} GB/s", jit * 1e3, gbs(jit));
    println!("  JIT scalar, no fma    {:8.3} ms  {:6.1} GB/s", jit_scalar * 1e3, gbs(jit_scalar));
    println!("  Rust loop (rustc)     {:8.3} ms  {:6.1} GB/s", rust * 1e3, gbs(rust));
    println!("  interpreter kernels   {:8.3} ms  ({:.1}x the JIT)", ops * 1e3, ops / jit);
    println!("  interpreter run       {:8.3} ms  ({:.1}x the JIT)", whole * 1e3, whole / jit);
}

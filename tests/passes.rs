//! The graph passes against the reference interpreter.
//!
//! - Random graphs: hundreds of seeded, well-formed graphs mixing every op with the patterns each
//!   rewrite looks for (`x·1`, `−−x`, `log exp x`, nested transposes and reshapes, `pow(x, 2)`,
//!   duplicated subtrees, constant subexpressions, …). Each pass of the pipeline is run in turn to
//!   the fixed point; after every pass the graph must verify and every output must have the value
//!   it had before, in f64, to within 1e-12 relative (see `close`). The generator keeps every
//!   value finite (interval bounds decide where `log`, `sqrt`, `/` and `exp` may go), so the
//!   comparison never has to excuse a NaN.
//! - Fusion groups of the same graphs satisfy the grouping rule of `passes/fusion.rs`, checked
//!   independently (groups contracted to one node each leave an acyclic graph).
//! - Every example lowers, optimizes, verifies and evaluates to the same outputs; node counts are
//!   printed (`cargo test --test passes -- --nocapture`).

use circ::check::checked::{DataSource, Prior, Slice};
use circ::check::types::{Dim, Elem, SymId};
use circ::interp::HostTensor;
use circ::ir::graph::{DataInfo, Init, Node, Output, ParamInfo};
use circ::ir::op::{BinaryOp, ReduceOp, UnaryOp};
use circ::ir::verify::verify;
use circ::ir::{Graph, NodeId, Op};
use circ::passes::{self, fusion};
use std::collections::{HashMap, HashSet};

// ---------------------------------------------------------------------------------------------
// A seeded PRNG (splitmix64): no dependency, the same graphs on every machine.

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
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// The random graph generator.

const N: Dim = Dim::Sym(SymId(0));
/// The size the symbol `N` is bound to when the graphs run.
const N_VALUE: usize = 3;

fn k(n: u64) -> Dim {
    Dim::Known(n)
}

/// A value in the graph and an interval holding every element it can take.
#[derive(Clone, Copy)]
struct Val {
    id: NodeId,
    lo: f64,
    hi: f64,
}

impl Val {
    fn mag(&self) -> f64 {
        self.lo.abs().max(self.hi.abs())
    }
}

/// Bounds past which the generator does not go, so that every value stays finite and rounding
/// errors stay far below the tolerance.
const MAX_MAG: f64 = 1e4;

struct Gen {
    rng: Rng,
    g: Graph,
    pool: Vec<Val>,
    data: Vec<HostTensor>,
    params: Vec<Vec<f64>>,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        let mut g = Graph::default();
        g.syms = vec!["N".into()];
        Gen { rng: Rng(seed), g, pool: Vec::new(), data: Vec::new(), params: Vec::new() }
    }

    fn shape(&self, id: NodeId) -> Vec<Dim> {
        self.g.node(id).shape.clone()
    }

    fn count(shape: &[Dim]) -> usize {
        shape.iter().map(|d| if let Dim::Known(n) = d { *n as usize } else { N_VALUE }).product()
    }

    /// Adds a node typed by the IR's own shape rule; `None` when the operands do not fit.
    fn op(&mut self, op: Op, xs: &[NodeId], target: &[Dim]) -> Option<NodeId> {
        let ts: Vec<(Elem, Vec<Dim>)> = xs.iter().map(|x| (self.g.node(*x).elem, self.shape(*x))).collect();
        let refs: Vec<(Elem, &[Dim])> = ts.iter().map(|(e, s)| (*e, s.as_slice())).collect();
        let (elem, shape) = circ::ir::shape::infer(&op, &refs, target).ok()?;
        if shape.contains(&Dim::Any) {
            return None;
        }
        Some(self.g.add(Node { op, elem, shape, span: None, label: None }, xs))
    }

    fn push(&mut self, id: NodeId, lo: f64, hi: f64) -> Option<Val> {
        assert!(lo <= hi, "bad interval [{lo}, {hi}]");
        let v = Val { id, lo, hi };
        if v.mag() > MAX_MAG || !lo.is_finite() || !hi.is_finite() {
            // Too wide to build on: still a valid node (it stays in the graph), but unused.
            self.g.remove(id);
            return None;
        }
        self.pool.push(v);
        Some(v)
    }

    fn leaf_data(&mut self, shape: Vec<Dim>, positive: bool) {
        let i = self.g.data.len();
        self.g.data.push(DataInfo {
            name: format!("x{i}"),
            elem: Elem::Float,
            shape: shape.clone(),
            source: DataSource::Columns(vec![]),
        });
        let (lo, hi) = if positive { (0.5, 2.0) } else { (-2.0, 2.0) };
        let n = Self::count(&shape);
        let values = (0..n).map(|_| self.rng.uniform(lo, hi)).collect();
        let concrete = shape.iter().map(|d| if let Dim::Known(n) = d { *n as usize } else { N_VALUE }).collect();
        self.data.push(HostTensor { shape: concrete, values });
        let id = self
            .g
            .add(Node { op: Op::Data(i), elem: Elem::Float, shape, span: None, label: Some(format!("x{i}")) }, &[]);
        self.push(id, lo, hi);
    }

    fn leaf_param(&mut self, shape: Vec<u64>, positive: bool) {
        let i = self.g.params.len();
        let (lo, hi) = if positive { (0.5, 1.5) } else { (-1.0, 1.0) };
        let n: u64 = shape.iter().product();
        self.params.push((0..n).map(|_| self.rng.uniform(lo, hi)).collect());
        let dims = shape.iter().map(|n| k(*n)).collect();
        self.g.params.push(ParamInfo {
            name: format!("w{i}"),
            shape,
            prior: Prior::Flat,
            init: Init::Fixed(0.0),
            update: None,
        });
        let id = self.g.add(
            Node { op: Op::Param(i), elem: Elem::Float, shape: dims, span: None, label: Some(format!("w{i}")) },
            &[],
        );
        self.push(id, lo, hi);
    }

    /// Integer labels in `0..=4` (4 is outside `one_hot`'s 4 classes: an all-zero row).
    fn leaf_labels(&mut self) -> NodeId {
        let i = self.g.data.len();
        self.g.data.push(DataInfo {
            name: format!("y{i}"),
            elem: Elem::Int,
            shape: vec![k(3)],
            source: DataSource::Columns(vec![]),
        });
        let values = (0..3).map(|_| self.rng.below(5) as f64).collect();
        self.data.push(HostTensor { shape: vec![3], values });
        self.g.add(Node { op: Op::Data(i), elem: Elem::Int, shape: vec![k(3)], span: None, label: None }, &[])
    }

    fn constant(&mut self, c: f64) -> Val {
        let id = self.g.add(Node { op: Op::Const(c), elem: Elem::Float, shape: vec![], span: None, label: None }, &[]);
        Val { id, lo: c, hi: c }
    }

    /// The pool entry of a node, or a constant's value.
    fn val(&self, id: NodeId) -> Option<Val> {
        match self.g.node(id).op {
            Op::Const(c) => Some(Val { id, lo: c, hi: c }),
            _ => self.pool.iter().copied().find(|v| v.id == id),
        }
    }

    /// A value from the pool, recent ones more often (so graphs get deep).
    fn any(&mut self) -> Val {
        let n = self.pool.len();
        if self.rng.chance(0.6) {
            self.pool[n - 1 - self.rng.below(n.min(4))]
        } else {
            self.pool[self.rng.below(n)]
        }
    }

    fn any_where(&mut self, ok: impl Fn(&Gen, &Val) -> bool) -> Option<Val> {
        let xs: Vec<Val> = self.pool.iter().copied().filter(|v| ok(self, v)).collect();
        (!xs.is_empty()).then(|| {
            let n = xs.len();
            if self.rng.chance(0.5) {
                xs[n - 1 - self.rng.below(n.min(3))]
            } else {
                xs[self.rng.below(n)]
            }
        })
    }

    fn unary(&mut self, f: UnaryOp, x: Val) -> Option<Val> {
        let (lo, hi) = (x.lo, x.hi);
        let (nlo, nhi) = match f {
            UnaryOp::Neg => (-hi, -lo),
            UnaryOp::Exp if hi <= 6.0 => (lo.exp(), hi.exp()),
            UnaryOp::Log if lo >= 1e-2 => (lo.ln(), hi.ln()),
            UnaryOp::Relu => (lo.max(0.0), hi.max(0.0)),
            UnaryOp::Sigmoid => (0.0, 1.0),
            UnaryOp::Tanh => (-1.0, 1.0),
            UnaryOp::Softplus if hi <= 30.0 => (0.0, hi.max(0.0) + 1.0),
            UnaryOp::Sqrt if lo >= 0.0 => (lo.sqrt(), hi.sqrt()),
            UnaryOp::Abs => (
                if lo >= 0.0 {
                    lo
                } else if hi <= 0.0 {
                    -hi
                } else {
                    0.0
                },
                x.mag(),
            ),
            UnaryOp::Square => {
                let m = x.mag();
                (
                    if lo >= 0.0 {
                        lo * lo
                    } else if hi <= 0.0 {
                        hi * hi
                    } else {
                        0.0
                    },
                    m * m,
                )
            }
            UnaryOp::Recip if lo >= 0.1 || hi <= -0.1 => (1.0 / hi, 1.0 / lo),
            _ => return None,
        };
        let id = self.op(Op::Unary(f), &[x.id], &[])?;
        self.push(id, nlo, nhi)
    }

    fn binary(&mut self, f: BinaryOp, x: Val, y: Val) -> Option<Val> {
        let corners = |h: &dyn Fn(f64, f64) -> f64| {
            let cs = [h(x.lo, y.lo), h(x.lo, y.hi), h(x.hi, y.lo), h(x.hi, y.hi)];
            (cs.iter().copied().fold(f64::INFINITY, f64::min), cs.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        };
        let (lo, hi) = match f {
            BinaryOp::Add => (x.lo + y.lo, x.hi + y.hi),
            BinaryOp::Sub => (x.lo - y.hi, x.hi - y.lo),
            BinaryOp::Mul => corners(&|a, b| a * b),
            BinaryOp::Div if y.lo >= 0.1 || y.hi <= -0.1 => corners(&|a, b| a / b),
            // A positive base to a bounded power: exp(y · ln x), monotone in each corner.
            BinaryOp::Pow if x.lo >= 0.1 && y.mag() <= 4.0 => corners(&|a, b| a.powf(b)),
            _ => return None,
        };
        let id = self.op(Op::Binary(f), &[x.id, y.id], &[])?;
        self.push(id, lo, hi)
    }

    /// A random target shape with as many elements as `s`: its symbols first, then the known
    /// element count split into random factors.
    fn reshape_target(&mut self, s: &[Dim]) -> Vec<Dim> {
        let mut out: Vec<Dim> = s.iter().copied().filter(|d| matches!(d, Dim::Sym(_))).collect();
        let mut n: u64 = s.iter().map(|d| if let Dim::Known(n) = d { *n } else { 1 }).product();
        let mut factors = Vec::new();
        for p in [2, 3, 5, 7] {
            while n.is_multiple_of(p) {
                factors.push(p);
                n /= p;
            }
        }
        if n > 1 {
            factors.push(n);
        }
        let parts = 1 + self.rng.below(3);
        let mut dims = vec![1u64; parts];
        for f in factors {
            let i = self.rng.below(parts);
            dims[i] *= f;
        }
        out.extend(dims.into_iter().map(k));
        if out.len() > 1 && self.rng.chance(0.5) {
            let i = self.rng.below(out.len());
            let j = self.rng.below(out.len());
            out.swap(i, j);
        }
        out
    }

    fn perm(&mut self, rank: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..rank).collect();
        for i in (1..rank).rev() {
            let j = self.rng.below(i + 1);
            p.swap(i, j);
        }
        p
    }

    fn random_axes(&mut self, rank: usize) -> Vec<usize> {
        (0..rank).filter(|_| self.rng.chance(0.5)).collect()
    }

    /// One random step: a new op on values of the pool, or a pattern some pass rewrites.
    fn step(&mut self) -> Option<Val> {
        let choice = self.rng.below(24);
        match choice {
            0..=2 => {
                let f = self.rng.pick(&[
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
                ]);
                let x = self.any();
                self.unary(f, x)
            }
            3..=5 => {
                let f = self.rng.pick(&[BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow]);
                let x = self.any();
                let y = if self.rng.chance(0.3) {
                    let c = self.rng.pick(&[0.0, 1.0, 2.0, -1.0, 0.5, 3.0]);
                    let c = if self.rng.chance(0.3) { self.rng.uniform(-3.0, 3.0) } else { c };
                    self.constant(c)
                } else {
                    self.any()
                };
                let (x, y) = if self.rng.chance(0.5) { (x, y) } else { (y, x) };
                self.binary(f, x, y)
            }
            6 => {
                let (x, y) = (self.any(), self.any());
                let kk = Self::count(&self.shape(x.id)[self.shape(x.id).len().saturating_sub(1)..]) as f64;
                let m = kk * x.mag() * y.mag();
                self.op(Op::MatMul, &[x.id, y.id], &[]).and_then(|id| self.push(id, -m, m))
            }
            7 | 8 => {
                let x = self.any();
                let s = self.shape(x.id);
                let axes = self.random_axes(s.len());
                let f = self.rng.pick(&[ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max]);
                let keepdims = self.rng.chance(0.4);
                let n = axes.iter().map(|a| Self::count(&s[*a..=*a])).product::<usize>() as f64;
                let (lo, hi) = match f {
                    ReduceOp::Sum => (x.lo * n, x.hi * n),
                    _ => (x.lo, x.hi),
                };
                self.op(Op::Reduce { f, axes, keepdims }, &[x.id], &[]).and_then(|id| self.push(id, lo, hi))
            }
            9 => {
                let x = self.any_where(|g, v| !g.shape(v.id).is_empty() && v.mag() <= 50.0)?;
                let s = self.shape(x.id);
                let axis = self.rng.below(s.len());
                let n = Self::count(&s[axis..=axis]) as f64;
                let keepdims = self.rng.chance(0.5);
                self.op(Op::LogSumExp { axis, keepdims }, &[x.id], &[])
                    .and_then(|id| self.push(id, x.lo, x.hi + n.ln()))
            }
            10 => {
                let x = self.any();
                let p = self.perm(self.shape(x.id).len());
                self.op(Op::Transpose { perm: p }, &[x.id], &[]).and_then(|id| self.push(id, x.lo, x.hi))
            }
            11 => {
                let x = self.any();
                let t = self.reshape_target(&self.shape(x.id));
                self.op(Op::Reshape, &[x.id], &t).and_then(|id| self.push(id, x.lo, x.hi))
            }
            12 => {
                // Slices of known leading axes: a position, a range or an open range.
                let x = self.any_where(|g, v| matches!(g.shape(v.id).first(), Some(Dim::Known(n)) if *n >= 2))?;
                let Some(Dim::Known(n)) = self.shape(x.id).first().copied() else { return None };
                let item = match self.rng.below(3) {
                    0 => Slice::At(self.rng.below(n as usize) as i64 - if self.rng.chance(0.3) { n as i64 } else { 0 }),
                    1 => Slice::Range { start: 1, end: Some(n as i64) },
                    _ => Slice::Range { start: 0, end: None },
                };
                self.op(Op::Slice { items: vec![item] }, &[x.id], &[]).and_then(|id| self.push(id, x.lo, x.hi))
            }
            13 => {
                let x = self.any_where(|g, v| matches!(g.shape(v.id).first(), Some(Dim::Known(_))))?;
                let y = self.any_where(|g, v| g.shape(v.id) == g.shape(x.id)).unwrap_or(x);
                let (lo, hi) = (x.lo.min(y.lo), x.hi.max(y.hi));
                self.op(Op::Concat { axis: 0 }, &[x.id, y.id], &[]).and_then(|id| self.push(id, lo, hi))
            }
            14 => {
                let x = self.any_where(|g, v| !g.shape(v.id).is_empty())?;
                let kk = 1 + self.rng.below(3) as u64;
                self.op(Op::KMax { k: kk }, &[x.id], &[]).and_then(|id| self.push(id, x.lo.min(0.0), x.hi.max(0.0)))
            }
            15 => {
                let y = self.leaf_labels();
                if self.rng.chance(0.5) {
                    self.op(Op::OneHot { classes: 4 }, &[y], &[]).and_then(|id| self.push(id, 0.0, 1.0))
                } else {
                    self.op(Op::Cast, &[y], &[]).and_then(|id| self.push(id, 0.0, 4.0))
                }
            }
            16 | 17 => self.identity_pattern(),
            18 => {
                // −−x, square(−x), abs(−x), log(exp x)
                let x = self.any();
                let nx = self.unary(UnaryOp::Neg, x)?;
                match self.rng.below(4) {
                    0 => self.unary(UnaryOp::Neg, nx),
                    1 => self.unary(UnaryOp::Square, nx),
                    2 => self.unary(UnaryOp::Abs, nx),
                    _ => {
                        let e = self.unary(UnaryOp::Exp, x)?;
                        self.unary(UnaryOp::Log, e)
                    }
                }
            }
            19 => {
                // transpose(transpose x), reshape(reshape x), reshape to the same shape
                let x = self.any();
                let s = self.shape(x.id);
                match self.rng.below(3) {
                    0 => {
                        let p1 = self.perm(s.len());
                        let a = self.op(Op::Transpose { perm: p1.clone() }, &[x.id], &[])?;
                        let a = self.push(a, x.lo, x.hi)?;
                        let p2 = if self.rng.chance(0.3) {
                            // the inverse: the pair is the identity
                            let mut inv = vec![0; p1.len()];
                            for (i, p) in p1.iter().enumerate() {
                                inv[*p] = i;
                            }
                            inv
                        } else {
                            self.perm(s.len())
                        };
                        self.op(Op::Transpose { perm: p2 }, &[a.id], &[]).and_then(|id| self.push(id, x.lo, x.hi))
                    }
                    1 => {
                        let t1 = self.reshape_target(&s);
                        let a = self.op(Op::Reshape, &[x.id], &t1)?;
                        let a = self.push(a, x.lo, x.hi)?;
                        let t2 = if self.rng.chance(0.3) { s.clone() } else { self.reshape_target(&s) };
                        self.op(Op::Reshape, &[a.id], &t2).and_then(|id| self.push(id, x.lo, x.hi))
                    }
                    _ => self.op(Op::Reshape, &[x.id], &s).and_then(|id| self.push(id, x.lo, x.hi)),
                }
            }
            20 => {
                // A reduction over no axes.
                let x = self.any();
                let f = self.rng.pick(&[ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max]);
                let keepdims = self.rng.chance(0.5);
                self.op(Op::Reduce { f, axes: vec![], keepdims }, &[x.id], &[]).and_then(|id| self.push(id, x.lo, x.hi))
            }
            21 => {
                // A duplicate of an existing node: same op, same operands.
                let x = self.any_where(|g, v| !g.g.node(v.id).op.is_leaf())?;
                let n = self.g.node(x.id).clone();
                let xs = self.g.operands(x.id);
                if let (Op::Binary(f), true) = (&n.op, self.rng.chance(0.5)) {
                    // With the operands swapped: merged for `+` and `×` only.
                    let (a, b) = (self.val(xs[0])?, self.val(xs[1])?);
                    return self.binary(*f, b, a);
                }
                let id = self.g.add(Node { label: None, ..n }, &xs);
                self.push(id, x.lo, x.hi)
            }
            22 => {
                // A constant subexpression: f(c1 ∘ c2) combined with a value.
                let c1 = self.rng.pick(&[1.0, 2.0, 0.5, 3.0]);
                let c2 = self.rng.pick(&[1.0, 2.0, -1.0, 0.25]);
                let (a, b) = (self.constant(c1), self.constant(c2));
                let f = self.rng.pick(&[BinaryOp::Add, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow, BinaryOp::Sub]);
                let c = self.binary(f, a, b)?;
                let u = self.rng.pick(&[UnaryOp::Exp, UnaryOp::Neg, UnaryOp::Sqrt, UnaryOp::Softplus, UnaryOp::Tanh]);
                let c = self.unary(u, c).unwrap_or(c);
                let x = self.any();
                self.binary(BinaryOp::Mul, x, c)
            }
            _ => {
                // pow(x, 1) and pow(x, 2) on any x: an integer exponent is fine for a negative base.
                let x = self.any_where(|_, v| v.mag() <= 100.0)?;
                let e = self.rng.pick(&[1.0, 2.0]);
                let c = self.constant(e);
                let id = self.op(Op::Binary(BinaryOp::Pow), &[x.id, c.id], &[])?;
                let m = x.mag();
                if e == 1.0 {
                    self.push(id, x.lo, x.hi)
                } else {
                    self.push(id, 0.0, m * m)
                }
            }
        }
    }

    /// `x·1`, `1·x`, `x+0`, `0+x`, `x−0`, `x/1`, `x/c` and `x·0` (which must stay).
    fn identity_pattern(&mut self) -> Option<Val> {
        let x = self.any();
        let (f, c, left) = self.rng.pick(&[
            (BinaryOp::Mul, 1.0, false),
            (BinaryOp::Mul, 1.0, true),
            (BinaryOp::Add, 0.0, false),
            (BinaryOp::Add, 0.0, true),
            (BinaryOp::Add, -0.0, false),
            (BinaryOp::Sub, 0.0, false),
            (BinaryOp::Div, 1.0, false),
            (BinaryOp::Div, 3.0, false),
            (BinaryOp::Div, -0.25, false),
            (BinaryOp::Div, 7.0, false),
            (BinaryOp::Mul, 0.0, false),
        ]);
        let c = self.constant(c);
        if left {
            self.binary(f, c, x)
        } else {
            self.binary(f, x, c)
        }
    }

    /// The graph, with the loss (a sum of every value nothing uses) and more outputs: most of
    /// those values, and a few random ones.
    fn finish(mut self) -> (Graph, Vec<HostTensor>, Vec<Vec<f64>>) {
        let sinks: Vec<Val> = self
            .pool
            .iter()
            .copied()
            .filter(|v| !self.g.node(v.id).op.is_leaf() && self.g.users(v.id).is_empty())
            .collect();
        let terms = if sinks.is_empty() { vec![self.pool[self.pool.len() - 1]] } else { sinks };
        let mut loss: Option<NodeId> = None;
        for (i, t) in terms.iter().enumerate() {
            let rank = self.shape(t.id).len();
            let f = if self.rng.chance(0.8) { ReduceOp::Sum } else { ReduceOp::Mean };
            let s = self.op(Op::Reduce { f, axes: (0..rank).collect(), keepdims: false }, &[t.id], &[]).unwrap();
            self.g.node_mut(s).label = Some(format!("term {i}"));
            loss = Some(match loss {
                None => s,
                Some(acc) => self.op(Op::Binary(BinaryOp::Add), &[acc, s], &[]).unwrap(),
            });
        }
        let loss = loss.unwrap();
        self.g.node_mut(loss).label = Some("loss".into());
        self.g.outputs.push(Output { name: "loss".into(), node: loss });
        // The loss sums every element, so it cannot see elements that move; most terms are
        // outputs of their own, compared element by element.
        for (i, t) in terms.iter().enumerate() {
            if self.rng.chance(0.75) {
                self.g.outputs.push(Output { name: format!("sink{i}"), node: t.id });
            }
        }
        for i in 0..self.rng.below(3) {
            let v = self.any();
            self.g.outputs.push(Output { name: format!("out{i}"), node: v.id });
        }
        passes::dce::run(&mut self.g);
        (self.g, self.data, self.params)
    }
}

fn random_graph(seed: u64) -> (Graph, Vec<HostTensor>, Vec<Vec<f64>>) {
    let mut gen = Gen::new(seed);
    let shapes: [&[Dim]; 7] = [&[k(3), k(4)], &[k(4)], &[], &[k(4), k(3)], &[k(2), k(3), k(4)], &[N, k(4)], &[k(3)]];
    for _ in 0..1 + gen.rng.below(3) {
        let s = gen.rng.pick(&shapes).to_vec();
        let positive = gen.rng.chance(0.3);
        gen.leaf_data(s, positive);
    }
    let pshapes: [&[u64]; 5] = [&[4], &[4, 3], &[3, 4], &[], &[3]];
    for _ in 0..gen.rng.below(3) {
        let s = gen.rng.pick(&pshapes).to_vec();
        let positive = gen.rng.chance(0.3);
        gen.leaf_param(s, positive);
    }
    for _ in 0..6 + gen.rng.below(25) {
        gen.step();
    }
    gen.finish()
}

// ---------------------------------------------------------------------------------------------
// Comparing outputs.

type Values = Vec<(String, Vec<usize>, Vec<f64>)>;

fn eval(g: &Graph, data: &[HostTensor], params: &[Vec<f64>]) -> Values {
    let out = circ::interp::run::<f64>(g, data, params).unwrap_or_else(|e| panic!("interpreter: {e:?}"));
    out.iter().map(|(n, t)| (n.to_string(), t.shape.clone(), t.to_f64())).collect()
}

/// Equal to within 1e-12 of the larger magnitude, with a floor of 1e-12 for values near zero
/// (a rewrite may turn a rounding residue such as `x/3 − x·(1/3)` into an exact 0). NaN equals NaN.
fn close(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-12 * (a.abs().max(b.abs()) + 1.0)
}

/// Checks every output; on success returns the largest difference seen, in units of `close`'s
/// tolerance scale (`|a − b| / (max(|a|, |b|) + 1)`).
fn compare(before: &Values, after: &Values) -> Result<f64, String> {
    let mut worst: f64 = 0.0;
    for ((n, s, a), (n2, s2, b)) in before.iter().zip(after) {
        if n != n2 || s != s2 {
            return Err(format!("output {n}{s:?} became {n2}{s2:?}"));
        }
        if let Some(i) = (0..a.len()).find(|i| !close(a[*i], b[*i])) {
            return Err(format!("output {n}[{i}]: {} became {}", a[i], b[i]));
        }
        for (x, y) in a.iter().zip(b) {
            if x != y && !(x.is_nan() && y.is_nan()) {
                worst = worst.max((x - y).abs() / (x.abs().max(y.abs()) + 1.0));
            }
        }
    }
    Ok(worst)
}

// ---------------------------------------------------------------------------------------------
// Checking fusion groups against the rule in `passes/fusion.rs`, independently of its code.

fn check_groups(g: &Graph) -> Result<(), String> {
    let groups = fusion::groups(g);
    let text = || fusion::describe(g, &groups);
    let mut group_of: HashMap<NodeId, usize> = HashMap::new();
    let outputs: HashSet<NodeId> = g.outputs.iter().map(|o| o.node).collect();
    for (i, grp) in groups.iter().enumerate() {
        let set: HashSet<NodeId> = grp.nodes.iter().copied().collect();
        for n in &grp.nodes {
            if group_of.insert(*n, i).is_some() {
                return Err(format!("{n} is in two groups\n{}", text()));
            }
            let node = g.node(*n);
            if Some(*n) == grp.epilogue {
                if !matches!(node.op, Op::Reduce { .. }) || grp.nodes.last() != Some(n) {
                    return Err(format!("epilogue {n} is not a final reduction\n{}", text()));
                }
                let x = g.operands(*n)[0];
                if !set.contains(&x) || g.users(x) != [*n] || outputs.contains(&x) {
                    return Err(format!("epilogue {n} reads a value needed elsewhere\n{}", text()));
                }
            } else if !node.op.is_elementwise() || node.shape != grp.shape {
                return Err(format!("{n} does not belong in group {i}\n{}", text()));
            }
            let escapes = outputs.contains(n) || g.users(*n).iter().any(|u| !set.contains(u));
            if escapes != grp.outputs.contains(n) {
                return Err(format!("{n}: outputs of group {i} are wrong\n{}", text()));
            }
        }
        for inp in &grp.inputs {
            if set.contains(inp) {
                return Err(format!("input {inp} of group {i} is a member\n{}", text()));
            }
        }
        let needed: HashSet<NodeId> =
            grp.nodes.iter().flat_map(|n| g.operands(*n)).filter(|o| !set.contains(o)).collect();
        if needed != grp.inputs.iter().copied().collect() {
            return Err(format!("inputs of group {i} are wrong\n{}", text()));
        }
        // Members in a topological order: each after the members it reads.
        for (j, n) in grp.nodes.iter().enumerate() {
            if g.operands(*n).iter().any(|o| grp.nodes[j..].contains(o)) {
                return Err(format!("group {i} is not in topological order at {n}\n{}", text()));
            }
        }
    }
    for n in g.node_ids() {
        if g.node(n).op.is_elementwise() && !group_of.contains_key(&n) {
            return Err(format!("elementwise {n} is in no group\n{}", text()));
        }
    }
    // Contract every group to one node: the result must still be acyclic (each group is one loop
    // that never waits on itself). Kahn's algorithm on the contracted graph.
    let key = |n: NodeId| group_of.get(&n).map_or(n.index() + groups.len(), |g| *g);
    let mut edges: HashSet<(usize, usize)> = HashSet::new();
    for n in g.node_ids() {
        for o in g.operands(n) {
            if key(o) != key(n) {
                edges.insert((key(o), key(n)));
            }
        }
    }
    let nodes: HashSet<usize> = g.node_ids().into_iter().map(key).collect();
    let mut indeg: HashMap<usize, usize> = nodes.iter().map(|n| (*n, 0)).collect();
    for (_, b) in &edges {
        *indeg.get_mut(b).unwrap() += 1;
    }
    let mut ready: Vec<usize> = indeg.iter().filter(|(_, d)| **d == 0).map(|(n, _)| *n).collect();
    let mut done = 0;
    while let Some(n) = ready.pop() {
        done += 1;
        for (a, b) in &edges {
            if *a == n {
                let d = indeg.get_mut(b).unwrap();
                *d -= 1;
                if *d == 0 {
                    ready.push(*b);
                }
            }
        }
    }
    if done != nodes.len() {
        return Err(format!("contracting the groups leaves a cycle\n{}", text()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The tests.

const GRAPHS: u64 = 600;

#[test]
fn every_pass_keeps_every_output_on_random_graphs() {
    let mut changed: HashMap<&str, usize> = HashMap::new();
    let (mut before_nodes, mut after_nodes) = (0, 0);
    let mut worst: f64 = 0.0;
    for seed in 0..GRAPHS {
        let (g0, data, params) = random_graph(seed);
        let shown = circ::ir::print::text(&g0, None);
        verify(&g0).unwrap_or_else(|e| panic!("seed {seed}: the generator made an invalid graph: {e:?}\n{shown}"));
        let want = eval(&g0, &data, &params);
        for (n, _, v) in &want {
            assert!(v.iter().all(|x| x.is_finite()), "seed {seed}: output {n} is not finite: {v:?}\n{shown}");
        }
        let mut g = g0.clone();
        let mut rounds = 0;
        loop {
            let mut any = false;
            for (name, pass) in passes::PIPELINE {
                let before = circ::ir::print::text(&g, None);
                let c = pass(&mut g);
                let fail = |why: String| {
                    panic!(
                        "seed {seed}, after {name}: {why}\nbefore:\n{before}\nafter:\n{}",
                        circ::ir::print::text(&g, None)
                    )
                };
                if let Err(e) = verify(&g) {
                    fail(format!("{e:?}"));
                }
                match compare(&want, &eval(&g, &data, &params)) {
                    Ok(d) => worst = worst.max(d),
                    Err(e) => fail(e),
                }
                if c {
                    *changed.entry(name).or_default() += 1;
                }
                any |= c;
            }
            rounds += 1;
            if !any {
                break;
            }
            assert!(rounds < passes::MAX_ROUNDS, "seed {seed}: no fixed point after {rounds} rounds");
        }
        // The pipeline entry point reaches the same graph, and a second call changes nothing.
        let mut h = g0.clone();
        passes::optimize(&mut h);
        assert_eq!(circ::ir::print::text(&h, None), circ::ir::print::text(&g, None), "seed {seed}");
        assert!(passes::optimize(&mut h).iter().all(|(_, c)| !c), "seed {seed}: optimize is not idempotent");
        for graph in [&g0, &g] {
            if let Err(e) = check_groups(graph) {
                panic!("seed {seed}: {e}\n{}", circ::ir::print::text(graph, None));
            }
        }
        // Dead code: a node no output uses goes, and nothing else does.
        let mut d = g0.clone();
        d.add(Node { op: Op::Const(1.0), elem: Elem::Float, shape: vec![], span: None, label: None }, &[]);
        assert!(passes::dce::run(&mut d) && d.len() == g0.len() && !passes::dce::run(&mut d), "seed {seed}: dce");
        verify(&d).unwrap();
        before_nodes += g0.len();
        after_nodes += g.len();
    }
    println!(
        "{GRAPHS} random graphs: {before_nodes} nodes before, {after_nodes} after; largest relative difference {worst:e}; \
         passes that changed a graph: {changed:?}"
    );
    // Each rewriting pass has had something to do. (`dce` has nothing left: every pass removes
    // what it leaves unused, so that the graph verifies after it; it is tested below.)
    for name in ["const_fold", "simplify", "cse"] {
        assert!(changed.get(name).copied().unwrap_or(0) > 0, "{name} never changed a random graph");
    }
}

#[test]
fn the_generator_makes_every_pattern() {
    // The patterns the passes look for do occur (so the property test above exercises them).
    let mut seen: HashSet<String> = HashSet::new();
    for seed in 0..GRAPHS {
        let (g, _, _) = random_graph(seed);
        for n in g.node_ids() {
            let op = &g.node(n).op;
            let xs = g.operands(n);
            let inner = |i: usize| g.node(xs[i]).op.clone();
            let tag = match op {
                Op::Unary(UnaryOp::Neg) if inner(0) == Op::Unary(UnaryOp::Neg) => "neg neg",
                Op::Unary(UnaryOp::Log) if inner(0) == Op::Unary(UnaryOp::Exp) => "log exp",
                Op::Unary(UnaryOp::Square | UnaryOp::Abs) if inner(0) == Op::Unary(UnaryOp::Neg) => "square/abs neg",
                Op::Transpose { .. } if matches!(inner(0), Op::Transpose { .. }) => "transpose transpose",
                Op::Reshape if inner(0) == Op::Reshape => "reshape reshape",
                Op::Binary(BinaryOp::Pow) if inner(1) == Op::Const(2.0) => "pow 2",
                Op::Binary(BinaryOp::Mul) if inner(1) == Op::Const(1.0) || inner(0) == Op::Const(1.0) => "mul 1",
                Op::Binary(BinaryOp::Add) if inner(1) == Op::Const(0.0) || inner(0) == Op::Const(0.0) => "add 0",
                Op::Binary(BinaryOp::Div) if matches!(inner(1), Op::Const(_)) => "div const",
                Op::Reduce { axes, .. } if axes.is_empty() => "reduce no axes",
                Op::MatMul => "matmul",
                Op::LogSumExp { .. } => "logsumexp",
                Op::Concat { .. } => "concat",
                Op::Slice { .. } => "slice",
                Op::KMax { .. } => "kmax",
                Op::OneHot { .. } => "one_hot",
                Op::Cast => "cast",
                _ => continue,
            };
            seen.insert(tag.to_string());
        }
    }
    let mut missing: Vec<&str> = [
        "neg neg",
        "log exp",
        "square/abs neg",
        "transpose transpose",
        "reshape reshape",
        "pow 2",
        "mul 1",
        "add 0",
        "div const",
        "reduce no axes",
        "matmul",
        "logsumexp",
        "concat",
        "slice",
        "kmax",
        "one_hot",
        "cast",
    ]
    .into_iter()
    .filter(|t| !seen.contains(*t))
    .collect();
    missing.sort_unstable();
    assert!(missing.is_empty(), "never generated: {missing:?}");
}

/// Random inputs for a lowered model: each symbol bound to 5, integer data 0 or 1 (a valid label
/// for every likelihood), reals in [-1, 1], parameters in [0.1, 1] (positive, for log-normal priors).
fn example_inputs(g: &Graph, rng: &mut Rng) -> (Vec<HostTensor>, Vec<Vec<f64>>) {
    let data = g
        .data
        .iter()
        .map(|d| {
            let shape: Vec<usize> =
                d.shape.iter().map(|x| if let Dim::Known(n) = x { *n as usize } else { 5 }).collect();
            let n = shape.iter().product();
            let values = (0..n)
                .map(|_| if d.elem == Elem::Int { rng.below(2) as f64 } else { rng.uniform(-1.0, 1.0) })
                .collect();
            HostTensor { shape, values }
        })
        .collect();
    let params = g
        .params
        .iter()
        .map(|p| (0..p.shape.iter().product::<u64>()).map(|_| rng.uniform(0.1, 1.0)).collect())
        .collect();
    (data, params)
}

#[test]
fn every_example_optimizes_to_a_verified_graph_with_the_same_outputs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "circ"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty());
    let mut report = String::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        let checked = circ::driver::check_source(path.to_str().unwrap(), &text);
        assert!(!checked.has_errors(), "{}:\n{}", path.display(), checked.render(false));
        for (m, mut g) in circ::driver::lower(&checked, 0).into_iter().enumerate() {
            let name = format!("{}#{m}", path.file_name().unwrap().to_string_lossy());
            verify(&g).unwrap_or_else(|e| panic!("{name}: the lowered graph does not verify: {e:?}"));
            let mut rng = Rng(m as u64 + 17);
            let (data, params) = example_inputs(&g, &mut rng);
            let want = eval(&g, &data, &params);
            let before = g.len();
            let groups_before = fusion::groups(&g).len();
            let log = passes::optimize(&mut g);
            verify(&g).unwrap_or_else(|e| panic!("{name}: the optimized graph does not verify: {e:?}"));
            if let Err(e) = compare(&want, &eval(&g, &data, &params)) {
                panic!("{name}: {e}\n{}", circ::ir::print::text(&g, None));
            }
            check_groups(&g).unwrap_or_else(|e| panic!("{name}: {e}"));
            let changed: Vec<&str> = log.iter().filter(|(_, c)| *c).map(|(n, _)| *n).collect();
            report.push_str(&format!(
                "{name:24} {before:4} nodes -> {:4}; fusion groups {groups_before:3} -> {:3}; changed by {changed:?}\n",
                g.len(),
                fusion::groups(&g).len()
            ));
        }
    }
    println!("{report}");
}

//! A seeded random graph generator, shared by `tests/passes.rs` (every pass keeps every output)
//! and `tests/executors.rs` (the CPU executor against the interpreter).
//!
//! `random_graph(seed)` builds a well-formed graph over data inputs and parameters mixing every
//! op with the patterns each rewrite looks for (`x·1`, `−−x`, `log exp x`, nested transposes and
//! reshapes, `pow(x, 2)`, duplicated subtrees, constant subexpressions, …), with its data (the
//! symbol `N` bound to `N_VALUE`) and parameter values. Interval bounds decide where `log`,
//! `sqrt`, `/` and `exp` may go, so every value of the forward graph is finite. The same seed
//! gives the same graph on every machine.
//!
//! Included with `#[path = "common/random_graph.rs"] mod random_graph;`; each test uses a part.
#![allow(dead_code)]

use circ::check::checked::{DataSource, Prior, Slice};
use circ::check::types::{Dim, Elem, SymId};
use circ::interp::HostTensor;
use circ::ir::graph::{DataInfo, Init, Node, Output, ParamInfo};
use circ::ir::op::{BinaryOp, ReduceOp, UnaryOp};
use circ::ir::{Graph, NodeId, Op};
use circ::passes;

// ---------------------------------------------------------------------------------------------
// A seeded PRNG (splitmix64): no dependency, the same graphs on every machine.

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

// ---------------------------------------------------------------------------------------------
// The random graph generator.

pub const N: Dim = Dim::Sym(SymId(0));
/// The size the symbol `N` is bound to when the graphs run.
pub const N_VALUE: usize = 3;

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

pub fn random_graph(seed: u64) -> (Graph, Vec<HostTensor>, Vec<Vec<f64>>) {
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

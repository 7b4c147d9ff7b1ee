//! The loop body of an elementwise kernel: every member of the group at one element (scalar) or
//! four (`f32x4`), in the group's order. `neg abs sqrt square recip add sub mul div` are single
//! instructions; `relu step sign eq` compare-and-mask sequences (exact: `relu(−0) = −0`, NaN
//! handled as `ir/op.rs` says); a `mul` whose only use is an `add`/`sub` of the group becomes one
//! `fma` with it (when enabled); `exp log tanh sigmoid softplus` are inline vector code
//! (`math.rs`); `pow` calls the scalar function of [`super::libm`], lane by lane.

use super::elementwise::{Emitter, LANES};
use super::libm::Libm;
use super::math::Math;
use super::Options;
use crate::ir::op::{BinaryOp, UnaryOp};
use crate::ir::{Graph, NodeId, Op};
use crate::passes::fusion::FusionGroup;
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Type, Value};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// Scalar `f32` or `f32x4`: the two shapes of every value in the loop body.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Lanes {
    Scalar,
    Vector,
}

impl Lanes {
    pub(super) fn ty(self) -> Type {
        match self {
            Lanes::Scalar => types::F32,
            Lanes::Vector => types::F32X4,
        }
    }
}

impl Emitter<'_, '_> {
    /// The value of every elementwise member, given the inputs' values.
    pub(super) fn members(&mut self, lanes: Lanes, inputs: &[Value]) -> HashMap<NodeId, Value> {
        let (g, grp) = (self.g, self.grp);
        let mut values: HashMap<NodeId, Value> = HashMap::default();
        // A contracted `mul` is not computed: its operands wait for the `add`/`sub` using it.
        let mut products: HashMap<NodeId, (Value, Value)> = HashMap::default();
        for &n in &grp.nodes {
            if Some(n) == grp.epilogue {
                continue;
            }
            let ids = g.operands(n);
            let op = &g.node(n).op;
            // The operand contracted into this node: the first that is a contracted product.
            let fused = match op {
                Op::Binary(BinaryOp::Add | BinaryOp::Sub) => (0..2).find(|k| products.contains_key(&ids[*k])),
                _ => None,
            };
            let mut xs = Vec::with_capacity(ids.len());
            for (k, o) in ids.iter().enumerate() {
                xs.push(if Some(k) == fused {
                    None
                } else if let Some(v) = values.get(o) {
                    Some(*v)
                } else if let Some((a, b)) = products.get(o) {
                    Some(self.b.ins().fmul(*a, *b))
                } else {
                    Some(inputs[self.input_index[o]])
                });
            }
            let v = match (op, fused) {
                (Op::Binary(BinaryOp::Mul), _) if self.contract.contains(&n) => {
                    products.insert(n, (xs[0].expect("computed"), xs[1].expect("computed")));
                    continue;
                }
                (Op::Binary(f), Some(k)) => {
                    let (a, b) = products[&ids[k]];
                    let c = xs[1 - k].expect("computed");
                    match (f, k) {
                        (BinaryOp::Add, _) => self.b.ins().fma(a, b, c),
                        // a·b − c
                        (_, 0) => {
                            let c = self.b.ins().fneg(c);
                            self.b.ins().fma(a, b, c)
                        }
                        // c − a·b
                        _ => {
                            let a = self.b.ins().fneg(a);
                            self.b.ins().fma(a, b, c)
                        }
                    }
                }
                _ => {
                    let xs: Vec<Value> = xs.into_iter().map(|x| x.expect("computed")).collect();
                    match op {
                        Op::Unary(f) => self.unary(lanes, *f, xs[0]),
                        Op::Binary(f) => self.binary(lanes, *f, xs[0], xs[1]),
                        Op::Cast | Op::Expand => xs[0],
                        op => unreachable!("the plan admits only elementwise members, not {}", op.name()),
                    }
                }
            };
            values.insert(n, v);
        }
        values
    }

    fn constant(&mut self, lanes: Lanes, c: f32) -> Value {
        let s = self.b.ins().f32const(c);
        match lanes {
            Lanes::Scalar => s,
            Lanes::Vector => self.b.ins().splat(types::F32X4, s),
        }
    }

    /// 1 where `a cc b` holds, else 0.
    fn indicator(&mut self, lanes: Lanes, cc: FloatCC, a: Value, b: Value, one: f32) -> Value {
        let c = self.b.ins().fcmp(cc, a, b);
        let one = self.constant(lanes, one);
        match lanes {
            Lanes::Scalar => {
                let zero = self.constant(lanes, 0.0);
                self.b.ins().select(c, one, zero)
            }
            Lanes::Vector => {
                let mask = self.b.ins().bitcast(types::F32X4, MemFlagsData::new(), c);
                self.b.ins().band(mask, one)
            }
        }
    }

    fn unary(&mut self, lanes: Lanes, f: UnaryOp, x: Value) -> Value {
        match f {
            UnaryOp::Neg => self.b.ins().fneg(x),
            UnaryOp::Abs => self.b.ins().fabs(x),
            UnaryOp::Sqrt => self.b.ins().sqrt(x),
            UnaryOp::Square => self.b.ins().fmul(x, x),
            UnaryOp::Recip => {
                let one = self.constant(lanes, 1.0);
                self.b.ins().fdiv(one, x)
            }
            // `x < 0 ? 0 : x`: NaN and −0 pass through unchanged, as in `ir/op.rs`.
            UnaryOp::Relu => {
                let zero = self.constant(lanes, 0.0);
                let neg = self.b.ins().fcmp(FloatCC::LessThan, x, zero);
                match lanes {
                    Lanes::Scalar => self.b.ins().select(neg, zero, x),
                    Lanes::Vector => {
                        let mask = self.b.ins().bitcast(types::F32X4, MemFlagsData::new(), neg);
                        self.b.ins().band_not(x, mask)
                    }
                }
            }
            UnaryOp::Step => {
                let zero = self.constant(lanes, 0.0);
                self.indicator(lanes, FloatCC::GreaterThan, x, zero, 1.0)
            }
            UnaryOp::Sign => {
                let zero = self.constant(lanes, 0.0);
                let pos = self.indicator(lanes, FloatCC::GreaterThan, x, zero, 1.0);
                let neg = self.indicator(lanes, FloatCC::LessThan, x, zero, 1.0);
                self.b.ins().fsub(pos, neg)
            }
            UnaryOp::Exp | UnaryOp::Log | UnaryOp::Tanh | UnaryOp::Sigmoid | UnaryOp::Softplus => {
                self.transcendental(lanes, f, x)
            }
        }
    }

    fn binary(&mut self, lanes: Lanes, f: BinaryOp, x: Value, y: Value) -> Value {
        match f {
            BinaryOp::Add => self.b.ins().fadd(x, y),
            BinaryOp::Sub => self.b.ins().fsub(x, y),
            BinaryOp::Mul => self.b.ins().fmul(x, y),
            BinaryOp::Div => self.b.ins().fdiv(x, y),
            BinaryOp::Eq => self.indicator(lanes, FloatCC::Equal, x, y, 1.0),
            BinaryOp::Pow => self.call(lanes, Libm::Pow, &[x, y]),
        }
    }

    /// A function of `math.rs`, always on four lanes: a scalar is splat and lane 0 taken back, so
    /// the scalar tail rounds exactly as the vector loop.
    fn transcendental(&mut self, lanes: Lanes, f: UnaryOp, x: Value) -> Value {
        let v = match lanes {
            Lanes::Scalar => self.b.ins().splat(types::F32X4, x),
            Lanes::Vector => x,
        };
        let mut m = Math { b: &mut self.b, fma: self.opts.fma };
        let y = match f {
            UnaryOp::Exp => m.exp_rounded(v, lanes == Lanes::Scalar),
            UnaryOp::Log => m.log(v),
            UnaryOp::Tanh => m.tanh(v),
            UnaryOp::Sigmoid => m.sigmoid(v),
            UnaryOp::Softplus => m.softplus(v),
            _ => unreachable!("not a math.rs function: {f:?}"),
        };
        match lanes {
            Lanes::Scalar => self.b.ins().extractlane(y, 0),
            Lanes::Vector => y,
        }
    }

    /// A scalar function applied to each lane.
    fn call(&mut self, lanes: Lanes, f: Libm, args: &[Value]) -> Value {
        let fref = match self.imported.get(&f) {
            Some(r) => *r,
            None => {
                let r = (self.import)(f, &mut *self.b.func);
                self.imported.insert(f, r);
                r
            }
        };
        match lanes {
            Lanes::Scalar => {
                let inst = self.b.ins().call(fref, args);
                self.b.inst_results(inst)[0]
            }
            Lanes::Vector => {
                let mut out = args[0];
                for k in 0..LANES as u8 {
                    let lane: Vec<Value> = args.iter().map(|a| self.b.ins().extractlane(*a, k)).collect();
                    let inst = self.b.ins().call(fref, &lane);
                    let r = self.b.inst_results(inst)[0];
                    out = self.b.ins().insertlane(out, r, k);
                }
                out
            }
        }
    }
}

/// The `mul`s to contract into an `fma` (when `opts.fma`): those whose value is needed only by
/// one `add` or `sub` of the group, once (not an output, no other user).
pub(super) fn contractions(g: &Graph, grp: &FusionGroup, opts: &Options) -> HashSet<NodeId> {
    if !opts.fma {
        return HashSet::default();
    }
    let body: HashSet<NodeId> = grp.nodes.iter().copied().filter(|n| Some(*n) != grp.epilogue).collect();
    grp.nodes
        .iter()
        .copied()
        .filter(|m| body.contains(m) && g.node(*m).op == Op::Binary(BinaryOp::Mul) && !grp.outputs.contains(m))
        .filter(|m| match g.users(*m).as_slice() {
            [u] => {
                body.contains(u)
                    && matches!(g.node(*u).op, Op::Binary(BinaryOp::Add | BinaryOp::Sub))
                    && g.operands(*u).iter().filter(|o| *o == m).count() == 1
            }
            _ => false,
        })
        .collect()
}

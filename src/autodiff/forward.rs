//! Forward mode (JVP): the table of per-op tangent rules. Given tangent nodes for some leaves,
//! adds the tangent of every node that depends on them. Applied to a gradient graph it gives
//! Hessian-vector products (forward over reverse).

use super::reverse::{softmax_of, unary_derivative, unreduce};
use crate::ir::op::{BinaryOp, Op, ReduceOp, UnaryOp};
use crate::ir::{Graph, NodeId};
use std::collections::HashMap;

/// Tangents of every node downstream of `seeds` (leaf → its tangent, same shape).
pub fn tangents(g: &mut Graph, seeds: &HashMap<NodeId, NodeId>) -> HashMap<NodeId, NodeId> {
    tangents_within(g, seeds, |_| true)
}

/// As [`tangents`], for the nodes `within` accepts only: e.g. the forward pass of a training
/// step, whose JVP (`J·v` at the predictions) needs no tangent of the backward nodes.
pub fn tangents_within(
    g: &mut Graph,
    seeds: &HashMap<NodeId, NodeId>,
    within: impl Fn(NodeId) -> bool,
) -> HashMap<NodeId, NodeId> {
    let mut tan: HashMap<NodeId, NodeId> = seeds.clone();
    for y in g.topo_order() {
        if tan.contains_key(&y) || !within(y) {
            continue;
        }
        let xs = g.operands(y);
        if !xs.iter().any(|x| tan.contains_key(x)) {
            continue;
        }
        if let Some(t) = rule(g, y, &xs, &tan) {
            tan.insert(y, t);
        }
    }
    tan
}

/// The tangent of `y` from its operands' tangents (absent tangents are zero); `None` for zero.
fn rule(g: &mut Graph, y: NodeId, xs: &[NodeId], tan: &HashMap<NodeId, NodeId>) -> Option<NodeId> {
    let node = g.node(y).clone();
    let s = node.span;
    let yshape = node.shape.clone();
    let t = |k: usize| tan.get(&xs[k]).copied();
    Some(match &node.op {
        Op::Data(_) | Op::Param(_) | Op::Input(_) | Op::Const(_) => return None,
        Op::Unary(f) => {
            let d = unary_derivative(g, *f, xs[0], y, s)?;
            g.binary(BinaryOp::Mul, d, t(0)?, s)
        }
        Op::Binary(f) => {
            let (a, b) = (xs[0], xs[1]);
            // Each operand's term, already multiplied by its tangent.
            let ta = match t(0) {
                None => None,
                Some(ta) => Some(match f {
                    BinaryOp::Add | BinaryOp::Sub => ta,
                    BinaryOp::Mul => g.binary(BinaryOp::Mul, ta, b, s),
                    BinaryOp::Div => g.binary(BinaryOp::Div, ta, b, s),
                    BinaryOp::Pow => {
                        let one = g.constant(1.0, s);
                        let bm1 = g.binary(BinaryOp::Sub, b, one, s);
                        let p = g.binary(BinaryOp::Pow, a, bm1, s);
                        let d = g.binary(BinaryOp::Mul, b, p, s);
                        g.binary(BinaryOp::Mul, d, ta, s)
                    }
                    BinaryOp::Eq => return None,
                }),
            };
            let tb = match t(1) {
                None => None,
                Some(tb) => Some(match f {
                    BinaryOp::Add => tb,
                    BinaryOp::Sub => g.unary(UnaryOp::Neg, tb, s),
                    BinaryOp::Mul => g.binary(BinaryOp::Mul, a, tb, s),
                    BinaryOp::Div => {
                        let q = g.binary(BinaryOp::Div, y, b, s);
                        let m = g.binary(BinaryOp::Mul, q, tb, s);
                        g.unary(UnaryOp::Neg, m, s)
                    }
                    BinaryOp::Pow => {
                        let l = g.unary(UnaryOp::Log, a, s);
                        let d = g.binary(BinaryOp::Mul, y, l, s);
                        g.binary(BinaryOp::Mul, d, tb, s)
                    }
                    BinaryOp::Eq => return None,
                }),
            };
            let sum = match (ta, tb) {
                (Some(p), Some(q)) => g.binary(BinaryOp::Add, p, q, s),
                (Some(p), None) | (None, Some(p)) => p,
                (None, None) => return None,
            };
            g.expand_to(sum, yshape, s)
        }
        Op::MatMul => {
            let l = t(0).map(|ta| g.push(Op::MatMul, &[ta, xs[1]], None, s));
            let r = t(1).map(|tb| g.push(Op::MatMul, &[xs[0], tb], None, s));
            match (l, r) {
                (Some(p), Some(q)) => g.binary(BinaryOp::Add, p, q, s),
                (Some(p), None) | (None, Some(p)) => p,
                (None, None) => return None,
            }
        }
        Op::Reduce { f, axes, keepdims } => {
            let tx = t(0)?;
            match f {
                ReduceOp::Sum | ReduceOp::Mean => g.push(node.op.clone(), &[tx], None, s),
                ReduceOp::Max => {
                    let xshape = g.shape_of(xs[0]);
                    let m = unreduce(g, y, &xshape, axes, *keepdims, s);
                    let mask = g.binary(BinaryOp::Eq, xs[0], m, s);
                    let ties =
                        g.push(Op::Reduce { f: ReduceOp::Sum, axes: axes.clone(), keepdims: true }, &[mask], None, s);
                    let ties = g.expand_to(ties, xshape, s);
                    let share = g.binary(BinaryOp::Div, mask, ties, s);
                    let w = g.binary(BinaryOp::Mul, tx, share, s);
                    g.push(Op::Reduce { f: ReduceOp::Sum, axes: axes.clone(), keepdims: *keepdims }, &[w], None, s)
                }
            }
        }
        Op::LogSumExp { axis, keepdims } => {
            let p = softmax_of(g, xs[0], y, *axis, *keepdims, s);
            let w = g.binary(BinaryOp::Mul, p, t(0)?, s);
            g.push(Op::Reduce { f: ReduceOp::Sum, axes: vec![*axis], keepdims: *keepdims }, &[w], None, s)
        }
        Op::Reshape | Op::Expand | Op::Embed { .. } => g.push(node.op.clone(), &[t(0)?], Some(yshape), s),
        Op::Transpose { .. } | Op::Slice { .. } => g.push(node.op.clone(), &[t(0)?], None, s),
        Op::Concat { .. } => {
            let parts: Vec<NodeId> = xs
                .iter()
                .map(|x| match tan.get(x) {
                    Some(t) => *t,
                    None => {
                        let shape = g.shape_of(*x);
                        g.zeros(shape, s)
                    }
                })
                .collect();
            g.push(node.op.clone(), &parts, None, s)
        }
        Op::KMax { k } => {
            let mask = g.push(Op::KMaxMask { k: *k }, &[xs[0]], None, s);
            g.binary(BinaryOp::Mul, t(0)?, mask, s)
        }
        Op::KMaxMask { .. } | Op::OneHot { .. } | Op::Cast => return None,
    })
}

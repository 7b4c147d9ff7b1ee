//! Reverse mode: the table of per-op derivative rules, written in IR ops, and the sweep that
//! applies it. The result is new nodes in the same graph, so a gradient can be optimized,
//! compiled, and differentiated again like any other graph.

use crate::check::checked::Slice;
use crate::check::types::Dim;
use crate::ir::op::{BinaryOp, Op, ReduceOp, UnaryOp};
use crate::ir::Origin;
use crate::ir::{Graph, NodeId};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// Nodes whose value depends on any of `wrt`: only these carry gradients.
pub fn depends_on(g: &Graph, wrt: &[NodeId]) -> HashSet<NodeId> {
    let mut set: HashSet<NodeId> = wrt.iter().copied().collect();
    for id in g.topo_order() {
        if g.operands(id).iter().any(|o| set.contains(o)) {
            set.insert(id);
        }
    }
    set
}

/// Adds the gradient of the scalar `of` with respect to every node between `wrt` and `of`.
/// Returns each such node's gradient (same shape as the node). A node of `wrt` that `of` does
/// not depend on gets no entry.
pub fn gradients(g: &mut Graph, of: NodeId, wrt: &[NodeId]) -> HashMap<NodeId, NodeId> {
    let live = depends_on(g, wrt);
    let forward: Vec<NodeId> = g.topo_order();
    let mut cot: HashMap<NodeId, NodeId> = HashMap::default();
    if !live.contains(&of) {
        return cot;
    }
    let span = g.node(of).span;
    let one = g.constant(1.0, span);
    cot.insert(of, g.expand_to(one, g.shape_of(of), span));
    for &y in forward.iter().rev() {
        let Some(&gy) = cot.get(&y) else { continue };
        let xs = g.operands(y);
        for (i, &x) in xs.iter().enumerate() {
            if !live.contains(&x) {
                continue;
            }
            let Some(gx) = rule(g, y, &xs, i, gy) else { continue };
            let total = match cot.get(&x) {
                Some(&prev) => g.binary(BinaryOp::Add, prev, gx, g.node(x).span),
                None => gx,
            };
            cot.insert(x, total);
        }
    }
    cot
}

/// The contribution to operand `i`'s gradient of node `y`, whose gradient is `gy`; `None` where
/// the operand has no derivative (integer operands, masks, comparisons).
pub fn rule(g: &mut Graph, y: NodeId, xs: &[NodeId], i: usize, gy: NodeId) -> Option<NodeId> {
    let node = g.node(y).clone();
    let s = node.span;
    let x = xs[i];
    let xshape = g.shape_of(x);
    Some(match &node.op {
        Op::Data(_) | Op::Param(_) | Op::Input(_) | Op::Const(_) => return None,
        Op::Unary(f) => {
            let d = unary_derivative(g, *f, x, y, s)?;
            g.binary(BinaryOp::Mul, gy, d, s)
        }
        Op::Binary(f) => {
            let (a, b) = (xs[0], xs[1]);
            let full = match (f, i) {
                (BinaryOp::Add, _) => gy,
                (BinaryOp::Sub, 0) => gy,
                (BinaryOp::Sub, _) => g.unary(UnaryOp::Neg, gy, s),
                (BinaryOp::Mul, 0) => g.binary(BinaryOp::Mul, gy, b, s),
                (BinaryOp::Mul, _) => g.binary(BinaryOp::Mul, gy, a, s),
                (BinaryOp::Div, 0) => g.binary(BinaryOp::Div, gy, b, s),
                (BinaryOp::Div, _) => {
                    // d(a/b)/db = −(a/b)/b
                    let q = g.binary(BinaryOp::Div, y, b, s);
                    let t = g.binary(BinaryOp::Mul, gy, q, s);
                    g.unary(UnaryOp::Neg, t, s)
                }
                (BinaryOp::Pow, 0) => {
                    // d(a^b)/da = b·a^(b−1)
                    let one = g.constant(1.0, s);
                    let bm1 = g.binary(BinaryOp::Sub, b, one, s);
                    let p = g.binary(BinaryOp::Pow, a, bm1, s);
                    let d = g.binary(BinaryOp::Mul, b, p, s);
                    g.binary(BinaryOp::Mul, gy, d, s)
                }
                (BinaryOp::Pow, _) => {
                    // d(a^b)/db = a^b·log a
                    let l = g.unary(UnaryOp::Log, a, s);
                    let d = g.binary(BinaryOp::Mul, y, l, s);
                    g.binary(BinaryOp::Mul, gy, d, s)
                }
                (BinaryOp::Eq, _) => return None,
            };
            g.sum_to(full, &xshape, s)
        }
        Op::MatMul => rule_matmul(g, xs, i, gy, s),
        Op::Reduce { f, axes, keepdims } => {
            let back = unreduce(g, gy, &xshape, axes, *keepdims, s);
            match f {
                ReduceOp::Sum => back,
                ReduceOp::Mean => {
                    let n = count(g, &xshape, axes, s);
                    g.binary(BinaryOp::Div, back, n, s)
                }
                ReduceOp::Max => {
                    // Ties share the gradient equally.
                    let m = unreduce(g, y, &xshape, axes, *keepdims, s);
                    let mask = g.binary(BinaryOp::Eq, x, m, s);
                    let ties =
                        g.push(Op::Reduce { f: ReduceOp::Sum, axes: axes.clone(), keepdims: true }, &[mask], None, s);
                    let ties = g.expand_to(ties, xshape.clone(), s);
                    let share = g.binary(BinaryOp::Div, mask, ties, s);
                    g.binary(BinaryOp::Mul, back, share, s)
                }
            }
        }
        Op::LogSumExp { axis, keepdims } => {
            // ∂ logsumexp / ∂x = softmax(x)
            let p = softmax_of(g, x, y, *axis, *keepdims, s);
            let back = unreduce(g, gy, &xshape, &[*axis], *keepdims, s);
            g.binary(BinaryOp::Mul, back, p, s)
        }
        Op::Reshape => g.reshape_to(gy, xshape, s),
        Op::Transpose { perm } => {
            let mut inverse = vec![0; perm.len()];
            for (k, p) in perm.iter().enumerate() {
                inverse[*p] = k;
            }
            g.push(Op::Transpose { perm: inverse }, &[gy], None, s)
        }
        Op::Concat { axis } => {
            let start: u64 = xs[..i]
                .iter()
                .map(|o| match g.node(*o).shape[*axis] {
                    Dim::Known(n) => n,
                    _ => unreachable!("concat axes have known sizes"),
                })
                .sum();
            let Dim::Known(len) = xshape[*axis] else { unreachable!("concat axes have known sizes") };
            let mut items = vec![Slice::Range { start: 0, end: None }; *axis];
            items.push(Slice::Range { start: start as i64, end: Some((start + len) as i64) });
            g.push(Op::Slice { items }, &[gy], None, s)
        }
        Op::Slice { items } => g.push(Op::Embed { items: items.clone() }, &[gy], Some(xshape), s),
        Op::Embed { items } => g.push(Op::Slice { items: items.clone() }, &[gy], None, s),
        Op::Expand => g.sum_to(gy, &xshape, s),
        Op::KMax { k } => {
            let mask = g.push(Op::KMaxMask { k: *k }, &[x], None, s);
            g.binary(BinaryOp::Mul, gy, mask, s)
        }
        Op::KMaxMask { .. } | Op::OneHot { .. } | Op::Cast => return None,
    })
}

/// f'(x) for `y = f(x)`, reusing `y` where that is cheaper; `None` where f' is zero.
pub fn unary_derivative(g: &mut Graph, f: UnaryOp, x: NodeId, y: NodeId, s: Option<Origin>) -> Option<NodeId> {
    Some(match f {
        UnaryOp::Neg => g.constant(-1.0, s),
        UnaryOp::Exp => y,
        UnaryOp::Log => g.unary(UnaryOp::Recip, x, s),
        UnaryOp::Relu => g.unary(UnaryOp::Step, x, s),
        UnaryOp::Sigmoid => {
            // σ(1 − σ)
            let one = g.constant(1.0, s);
            let c = g.binary(BinaryOp::Sub, one, y, s);
            g.binary(BinaryOp::Mul, y, c, s)
        }
        UnaryOp::Tanh => {
            let one = g.constant(1.0, s);
            let sq = g.unary(UnaryOp::Square, y, s);
            g.binary(BinaryOp::Sub, one, sq, s)
        }
        UnaryOp::Softplus => g.unary(UnaryOp::Sigmoid, x, s),
        UnaryOp::Sqrt => {
            // 1 / (2√x)
            let half = g.constant(0.5, s);
            g.binary(BinaryOp::Div, half, y, s)
        }
        UnaryOp::Abs => g.unary(UnaryOp::Sign, x, s),
        UnaryOp::Square => {
            let two = g.constant(2.0, s);
            g.binary(BinaryOp::Mul, two, x, s)
        }
        UnaryOp::Recip => {
            // −1/x² = −y²
            let sq = g.unary(UnaryOp::Square, y, s);
            g.unary(UnaryOp::Neg, sq, s)
        }
        UnaryOp::Step | UnaryOp::Sign => return None,
    })
}

/// softmax(x) along `axis`, given `y = logsumexp(x)`.
pub fn softmax_of(g: &mut Graph, x: NodeId, y: NodeId, axis: usize, keepdims: bool, s: Option<Origin>) -> NodeId {
    let xshape = g.shape_of(x);
    let yk = unreduce(g, y, &xshape, &[axis], keepdims, s);
    let d = g.binary(BinaryOp::Sub, x, yk, s);
    g.unary(UnaryOp::Exp, d, s)
}

/// A reduced value broadcast back over the reduced axes of `shape`.
pub fn unreduce(g: &mut Graph, v: NodeId, shape: &[Dim], axes: &[usize], keepdims: bool, s: Option<Origin>) -> NodeId {
    let v = if keepdims {
        v
    } else {
        let kept: Vec<Dim> =
            shape.iter().enumerate().map(|(k, d)| if axes.contains(&k) { Dim::Known(1) } else { *d }).collect();
        g.reshape_to(v, kept, s)
    };
    g.expand_to(v, shape.to_vec(), s)
}

/// The number of elements a reduction over `axes` of `shape` combines, as a scalar node. A
/// symbolic size is counted at run time by summing ones along it.
pub fn count(g: &mut Graph, shape: &[Dim], axes: &[usize], s: Option<Origin>) -> NodeId {
    let dims: Vec<Dim> = axes.iter().map(|a| shape[*a]).collect();
    if let Some(n) = dims.iter().map(|d| if let Dim::Known(n) = d { Some(*n) } else { None }).product::<Option<u64>>() {
        return g.constant(n as f64, s);
    }
    let one = g.constant(1.0, s);
    let ones = g.expand_to(one, dims.clone(), s);
    g.push(Op::Reduce { f: ReduceOp::Sum, axes: (0..dims.len()).collect(), keepdims: false }, &[ones], None, s)
}

/// `C = A @ B` (`xs = [A, B]`) with numpy's 1-D promotion and batch broadcasting, differentiated
/// through the promoted 2-D form: `gA = gC @ Bᵀ`, `gB = Aᵀ @ gC`, each summed over broadcast
/// batch axes. bprop2 calls it with squared operands.
pub fn rule_matmul(g: &mut Graph, xs: &[NodeId], i: usize, gc: NodeId, s: Option<Origin>) -> NodeId {
    let (a, b) = (xs[0], xs[1]);
    let (sa, sb) = (g.shape_of(a), g.shape_of(b));
    let a2 = if sa.len() == 1 { g.reshape_to(a, vec![Dim::Known(1), sa[0]], s) } else { a };
    let b2 = if sb.len() == 1 { g.reshape_to(b, vec![sb[0], Dim::Known(1)], s) } else { b };
    let c2 = crate::check::types::matmul(&g.shape_of(a2), &g.shape_of(b2)).expect("a verified matmul");
    let gc2 = g.reshape_to(gc, c2, s);
    let full = if i == 0 {
        let bt = swap_last(g, b2, s);
        g.push(Op::MatMul, &[gc2, bt], None, s)
    } else {
        let at = swap_last(g, a2, s);
        g.push(Op::MatMul, &[at, gc2], None, s)
    };
    let target = if i == 0 { g.shape_of(a2) } else { g.shape_of(b2) };
    let summed = g.sum_to(full, &target, s);
    g.reshape_to(summed, if i == 0 { sa } else { sb }, s)
}

fn swap_last(g: &mut Graph, x: NodeId, s: Option<Origin>) -> NodeId {
    let r = g.node(x).shape.len();
    let mut perm: Vec<usize> = (0..r).collect();
    perm.swap(r - 2, r - 1);
    g.push(Op::Transpose { perm }, &[x], None, s)
}

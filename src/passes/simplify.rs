//! Algebraic simplification: local rewrites that leave every value the same.
//!
//! A rule either replaces a node by an existing node of the same element type and shape
//! (`Graph::replace_uses`, which moves outputs too), or rewrites the node in place: a new op
//! and new operands, the same id, type, label and span. Nodes are visited in topological order
//! and each is rewritten until no rule applies, so chains (`- - - x`, nested transposes)
//! collapse in one run. Nodes left unused are removed before returning.
//!
//! What is deliberately not done: `x·0 → 0` (wrong for NaN and ±∞, and for the sign of zero),
//! `exp(log x) → x` (log gives NaN for x < 0), reassociation (changes rounding).
//!
//! Some rules are not bit-exact, and say so where they are:
//! - `x + 0 → x` (and `x − (−0)`, and a sum over no axes, which the interpreter computes as
//!   `0 + x`) keep `x = −0` as `−0` where the original gives `+0`. The two compare equal; only a
//!   division by that exact zero (or `recip`, or `pow` with a negative exponent) tells them apart.
//! - `x / c → x · (1/c)` rounds twice: at most one ulp away, exact when `c` is a power of two.
//! - `pow(x, 2) → square(x)`: `x·x` is correctly rounded, `pow` is within an ulp of it.
//! - `log(exp x) → x` is exact in real arithmetic and more accurate in f64 (it drops the rounding
//!   of `exp`), but differs where `exp x` overflows or underflows (x > 709.78 or x < −745.1),
//!   where the original gives ±∞ and the rewrite gives `x`.

use crate::ir::graph::Node;
use crate::ir::op::{BinaryOp, ReduceOp, UnaryOp};
use crate::ir::{Graph, NodeId, Op};

/// What a rule does to a node.
enum Rewrite {
    /// Every use of the node becomes a use of this (same type) node.
    Replace(NodeId),
    /// The node gets this op and these operands; its type stays.
    Become(Op, Vec<NodeId>),
    /// The node `x / old` becomes `x · c`, `old` being a constant and `c` its reciprocal.
    TimesConst(NodeId, NodeId, f64),
}

pub fn run(g: &mut Graph) -> bool {
    let mut changed = false;
    for id in g.topo_order() {
        // Each in-place rewrite makes the node strictly simpler (fewer nodes between it and its
        // leaves, or a cheaper op), so this loop ends; the bound only guards against a bad rule.
        for _ in 0..16 {
            match rule(g, id) {
                None => break,
                Some(Rewrite::Replace(by)) => {
                    debug_assert_eq!((g.node(by).elem, &g.node(by).shape), (g.node(id).elem, &g.node(id).shape));
                    if g.node(by).label.is_none() {
                        g.node_mut(by).label = g.node_mut(id).label.take();
                    }
                    g.replace_uses(id, by);
                    changed = true;
                    break;
                }
                Some(Rewrite::Become(op, operands)) => {
                    g.node_mut(id).op = op;
                    g.set_operands(id, &operands);
                    changed = true;
                }
                Some(Rewrite::TimesConst(x, old, c)) => {
                    // The old constant is reused when nothing else reads it (ids stay put).
                    let k = if x != old && g.users(old) == [id] && !g.outputs.iter().any(|o| o.node == old) {
                        g.node_mut(old).op = Op::Const(c);
                        old
                    } else {
                        let n = g.node(old);
                        g.add(Node { op: Op::Const(c), elem: n.elem, shape: vec![], span: n.span, label: None }, &[])
                    };
                    g.node_mut(id).op = Op::Binary(BinaryOp::Mul);
                    g.set_operands(id, &[x, k]);
                    changed = true;
                }
            }
        }
    }
    if changed {
        super::dce::run(g);
    }
    changed
}

/// The value of a `Const` node.
fn constant(g: &Graph, id: NodeId) -> Option<f64> {
    match g.node(id).op {
        Op::Const(c) => Some(c),
        _ => None,
    }
}

/// The node's operand when the node is the unary op `f`.
fn unary_of(g: &Graph, id: NodeId, f: UnaryOp) -> Option<NodeId> {
    (g.node(id).op == Op::Unary(f)).then(|| g.operands(id)[0])
}

fn same_type(a: &Node, b: &Node) -> bool {
    a.elem == b.elem && a.shape == b.shape
}

/// The first rule that applies to `id`, if any.
fn rule(g: &Graph, id: NodeId) -> Option<Rewrite> {
    let n = g.node(id).clone();
    let xs = g.operands(id);
    // `x` may replace the node only if it has the node's element type and shape (a rule such as
    // `x · 1 → x` would otherwise drop a broadcast).
    let keep = |x: NodeId| same_type(g.node(x), &n).then_some(Rewrite::Replace(x));
    match &n.op {
        Op::Binary(f) => {
            let (x, y) = (xs[0], xs[1]);
            let (cx, cy) = (constant(g, x), constant(g, y));
            match f {
                // x·1 = 1·x = x for every x, NaN and ±∞ included.
                BinaryOp::Mul if cy == Some(1.0) => keep(x),
                BinaryOp::Mul if cx == Some(1.0) => keep(y),
                // x + 0 = 0 + x = x for every x except x = -0, where it gives +0 (equal to -0).
                BinaryOp::Add if cy == Some(0.0) => keep(x),
                BinaryOp::Add if cx == Some(0.0) => keep(y),
                // x − (+0) = x for every x, -0 included; x − (−0) = x + 0, the rule above.
                BinaryOp::Sub if cy == Some(0.0) => keep(x),
                // x / 1 = x for every x.
                BinaryOp::Div if cy == Some(1.0) => keep(x),
                // x / c = x · (1/c) up to one rounding (exact when c is a power of two), when 1/c
                // is a normal number (so it neither overflows nor loses bits to underflow).
                BinaryOp::Div if cy.is_some_and(|c| (1.0 / c).is_normal()) => {
                    Some(Rewrite::TimesConst(x, y, 1.0 / cy?))
                }
                // pow(x, 1) = x for every x (IEEE pow with exponent 1 returns x).
                BinaryOp::Pow if cy == Some(1.0) => keep(x),
                // pow(x, 2) = x·x = square(x), up to pow's rounding; x's shape is the node's, since
                // the exponent is a `[]` constant.
                BinaryOp::Pow if cy == Some(2.0) && same_type(g.node(x), &n) => {
                    Some(Rewrite::Become(Op::Unary(UnaryOp::Square), vec![x]))
                }
                _ => None,
            }
        }
        Op::Unary(f) => {
            let x = xs[0];
            match f {
                // −(−x) = x exactly.
                UnaryOp::Neg => unary_of(g, x, UnaryOp::Neg).and_then(keep),
                // log(exp x) = x (see the module comment for where exp overflows).
                UnaryOp::Log => unary_of(g, x, UnaryOp::Exp).and_then(keep),
                // (−x)² = x² exactly, and |−x| = |x| exactly: the sign is dropped either way.
                UnaryOp::Square | UnaryOp::Abs => {
                    unary_of(g, x, UnaryOp::Neg).map(|y| Rewrite::Become(n.op.clone(), vec![y]))
                }
                _ => None,
            }
        }
        Op::Transpose { perm } => {
            let x = xs[0];
            // Transposing by the identity permutation moves nothing.
            if perm.iter().enumerate().all(|(k, p)| k == *p) {
                return keep(x);
            }
            // Output axis k of t(t(y, p1), p2) is axis p2[k] of t(y, p1), which is axis p1[p2[k]]
            // of y: one transpose by the composed permutation.
            if let Op::Transpose { perm: inner } = &g.node(x).op {
                let composed = perm.iter().map(|p| inner[*p]).collect();
                let y = g.operands(x)[0];
                return Some(Rewrite::Become(Op::Transpose { perm: composed }, vec![y]));
            }
            None
        }
        Op::Reshape => {
            let x = xs[0];
            // A reshape to the operand's own shape keeps every element in place.
            if same_type(g.node(x), &n) {
                return keep(x);
            }
            // Reshapes only relabel the row-major element sequence, so two in a row are one.
            if g.node(x).op == Op::Reshape {
                let y = g.operands(x)[0];
                return Some(Rewrite::Become(Op::Reshape, vec![y]));
            }
            None
        }
        // Σ, mean and max over no axes take each element alone: the element itself (up to the
        // sign of a zero, see the module comment).
        Op::Reduce { f: ReduceOp::Sum | ReduceOp::Mean | ReduceOp::Max, axes, .. } if axes.is_empty() => keep(xs[0]),
        // Expanding to the operand's own shape copies it.
        Op::Expand if same_type(g.node(xs[0]), &n) => keep(xs[0]),
        Op::Data(_)
        | Op::Param(_)
        | Op::Input(_)
        | Op::Expand
        | Op::Embed { .. }
        | Op::KMaxMask { .. }
        | Op::Const(_)
        | Op::MatMul
        | Op::Reduce { .. }
        | Op::LogSumExp { .. }
        | Op::Concat { .. }
        | Op::Slice { .. }
        | Op::KMax { .. }
        | Op::OneHot { .. }
        | Op::Cast => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::checked::DataSource;
    use crate::check::types::{Dim, Elem};
    use crate::ir::graph::{DataInfo, Output};
    use crate::ir::verify::verify;

    fn k(n: u64) -> Dim {
        Dim::Known(n)
    }

    fn node(g: &mut Graph, op: Op, shape: Vec<Dim>, xs: &[NodeId]) -> NodeId {
        g.add(Node { op, elem: Elem::Float, shape, span: None, label: None }, xs)
    }

    fn c(g: &mut Graph, v: f64) -> NodeId {
        node(g, Op::Const(v), vec![], &[])
    }

    /// A graph with one datum of `shape`; `build` makes the value whose sum is the loss.
    fn graph(shape: Vec<Dim>, build: impl FnOnce(&mut Graph, NodeId) -> NodeId) -> (Graph, NodeId, NodeId) {
        let mut g = Graph::default();
        g.data.push(DataInfo {
            name: "x".into(),
            elem: Elem::Float,
            shape: shape.clone(),
            source: DataSource::Columns(vec![]),
        });
        let x = node(&mut g, Op::Data(0), shape, &[]);
        let v = build(&mut g, x);
        let axes = (0..g.node(v).shape.len()).collect();
        let loss = node(&mut g, Op::Reduce { f: ReduceOp::Sum, axes, keepdims: false }, vec![], &[v]);
        g.outputs.push(Output { name: "loss".into(), node: loss });
        g.outputs.push(Output { name: "v".into(), node: v });
        verify(&g).unwrap();
        (g, x, loss)
    }

    fn simplified(mut g: Graph) -> Graph {
        run(&mut g);
        verify(&g).unwrap();
        assert!(!run(&mut g), "a second run still changes the graph");
        g
    }

    fn bin(g: &mut Graph, f: BinaryOp, a: NodeId, b: NodeId) -> NodeId {
        let s = crate::check::types::broadcast(&g.node(a).shape, &g.node(b).shape).unwrap();
        node(g, Op::Binary(f), s, &[a, b])
    }

    fn un(g: &mut Graph, f: UnaryOp, a: NodeId) -> NodeId {
        let s = g.node(a).shape.clone();
        node(g, Op::Unary(f), s, &[a])
    }

    #[test]
    fn identities_of_arithmetic_go() {
        for (f, v, left) in [
            (BinaryOp::Mul, 1.0, false),
            (BinaryOp::Mul, 1.0, true),
            (BinaryOp::Add, 0.0, false),
            (BinaryOp::Add, 0.0, true),
            (BinaryOp::Sub, 0.0, false),
            (BinaryOp::Div, 1.0, false),
            (BinaryOp::Pow, 1.0, false),
        ] {
            let (g, x, _) = graph(vec![k(3)], |g, x| {
                let c = c(g, v);
                if left {
                    bin(g, f, c, x)
                } else {
                    bin(g, f, x, c)
                }
            });
            let g = simplified(g);
            assert_eq!(g.len(), 2, "{f:?} {v} left={left}");
            assert_eq!(g.output("v"), Some(x));
        }
    }

    #[test]
    fn zero_times_x_and_minus_zero_stay() {
        let (g, _, _) = graph(vec![k(2)], |g, x| {
            let z = c(g, 0.0);
            let a = bin(g, BinaryOp::Mul, x, z);
            let b = bin(g, BinaryOp::Sub, z, x);
            bin(g, BinaryOp::Add, a, b)
        });
        let n = g.len();
        assert_eq!(simplified(g).len(), n);
    }

    #[test]
    fn division_by_a_constant_becomes_a_product() {
        let (g, x, _) = graph(vec![k(2)], |g, x| {
            let four = c(g, 4.0);
            bin(g, BinaryOp::Div, x, four)
        });
        let g = simplified(g);
        let v = g.output("v").unwrap();
        assert_eq!(g.node(v).op, Op::Binary(BinaryOp::Mul));
        assert_eq!(g.operands(v)[0], x);
        assert_eq!(g.node(g.operands(v)[1]).op, Op::Const(0.25));
        // A constant read elsewhere too keeps its value; the product gets a new one.
        let (g, x, _) = graph(vec![k(2)], |g, x| {
            let four = c(g, 4.0);
            let q = bin(g, BinaryOp::Div, x, four);
            bin(g, BinaryOp::Add, q, four)
        });
        let g = simplified(g);
        let v = g.output("v").unwrap();
        let (q, four) = (g.operands(v)[0], g.operands(v)[1]);
        assert_eq!(g.node(four).op, Op::Const(4.0));
        assert_eq!(g.operands(q)[0], x);
        assert_eq!(g.node(g.operands(q)[1]).op, Op::Const(0.25));
        // Not by zero or by a subnormal: 1/c would be infinite.
        for d in [0.0, 1e-310] {
            let (g, _, _) = graph(vec![k(2)], |g, x| {
                let z = c(g, d);
                bin(g, BinaryOp::Div, x, z)
            });
            let g = simplified(g);
            assert_eq!(g.node(g.output("v").unwrap()).op, Op::Binary(BinaryOp::Div));
        }
    }

    #[test]
    fn unary_chains_collapse() {
        let (g, x, _) = graph(vec![k(2)], |g, x| {
            let a = un(g, UnaryOp::Neg, x);
            let b = un(g, UnaryOp::Neg, a);
            let c = un(g, UnaryOp::Neg, b);
            un(g, UnaryOp::Neg, c)
        });
        let g = simplified(g);
        assert_eq!(g.len(), 2);
        assert_eq!(g.output("v"), Some(x));

        let (g, x, _) = graph(vec![k(2)], |g, x| {
            let e = un(g, UnaryOp::Exp, x);
            un(g, UnaryOp::Log, e)
        });
        assert_eq!(simplified(g).output("v"), Some(x));

        // exp(log x) is NaN for x < 0: kept.
        let (g, _, _) = graph(vec![k(2)], |g, x| {
            let l = un(g, UnaryOp::Log, x);
            un(g, UnaryOp::Exp, l)
        });
        assert_eq!(simplified(g).len(), 4);

        for f in [UnaryOp::Square, UnaryOp::Abs] {
            let (g, x, _) = graph(vec![k(2)], |g, x| {
                let n = un(g, UnaryOp::Neg, x);
                let n2 = un(g, UnaryOp::Neg, n);
                let n3 = un(g, UnaryOp::Neg, n2);
                un(g, f, n3)
            });
            let g = simplified(g);
            let v = g.output("v").unwrap();
            assert_eq!((g.node(v).op.clone(), g.operands(v)), (Op::Unary(f), vec![x]));
            assert_eq!(g.len(), 3);
        }
    }

    #[test]
    fn pow_two_becomes_square() {
        let (g, x, _) = graph(vec![k(2)], |g, x| {
            let two = c(g, 2.0);
            bin(g, BinaryOp::Pow, x, two)
        });
        let g = simplified(g);
        let v = g.output("v").unwrap();
        assert_eq!((g.node(v).op.clone(), g.operands(v)), (Op::Unary(UnaryOp::Square), vec![x]));
        assert_eq!(g.len(), 3);
    }

    #[test]
    fn transposes_compose() {
        let (g, x, _) = graph(vec![k(2), k(3), k(4)], |g, x| {
            let a = node(g, Op::Transpose { perm: vec![1, 2, 0] }, vec![k(3), k(4), k(2)], &[x]);
            node(g, Op::Transpose { perm: vec![2, 0, 1] }, vec![k(2), k(3), k(4)], &[a])
        });
        let g = simplified(g);
        assert_eq!(g.output("v"), Some(x));

        let (g, x, _) = graph(vec![k(2), k(3), k(4)], |g, x| {
            let a = node(g, Op::Transpose { perm: vec![1, 2, 0] }, vec![k(3), k(4), k(2)], &[x]);
            node(g, Op::Transpose { perm: vec![1, 2, 0] }, vec![k(4), k(2), k(3)], &[a])
        });
        let g = simplified(g);
        let v = g.output("v").unwrap();
        assert_eq!((g.node(v).op.clone(), g.operands(v)), (Op::Transpose { perm: vec![2, 0, 1] }, vec![x]));
    }

    #[test]
    fn reshapes_merge() {
        let (g, x, _) = graph(vec![k(2), k(6)], |g, x| {
            let a = node(g, Op::Reshape, vec![k(12)], &[x]);
            let b = node(g, Op::Reshape, vec![k(3), k(4)], &[a]);
            node(g, Op::Reshape, vec![k(4), k(3)], &[b])
        });
        let g = simplified(g);
        let v = g.output("v").unwrap();
        assert_eq!((g.node(v).op.clone(), g.operands(v)), (Op::Reshape, vec![x]));
        assert_eq!(g.len(), 3);

        let (g, x, _) = graph(vec![k(2), k(6)], |g, x| {
            let a = node(g, Op::Reshape, vec![k(12)], &[x]);
            node(g, Op::Reshape, vec![k(2), k(6)], &[a])
        });
        assert_eq!(simplified(g).output("v"), Some(x));
    }

    #[test]
    fn sum_over_no_axes_goes_and_the_loss_output_follows() {
        let (g, x, _) = graph(vec![k(2)], |g, x| {
            node(g, Op::Reduce { f: ReduceOp::Mean, axes: vec![], keepdims: true }, vec![k(2)], &[x])
        });
        assert_eq!(simplified(g).output("v"), Some(x));

        // The loss itself is `sum(e, [])` of a scalar: the output moves to `e`, label included.
        let mut g = Graph::default();
        g.data.push(DataInfo {
            name: "x".into(),
            elem: Elem::Float,
            shape: vec![],
            source: DataSource::Columns(vec![]),
        });
        let x = node(&mut g, Op::Data(0), vec![], &[]);
        let e = un(&mut g, UnaryOp::Exp, x);
        let loss = node(&mut g, Op::Reduce { f: ReduceOp::Sum, axes: vec![], keepdims: false }, vec![], &[e]);
        g.node_mut(loss).label = Some("loss".into());
        g.outputs.push(Output { name: "loss".into(), node: loss });
        let g = simplified(g);
        assert_eq!((g.loss(), g.len()), (e, 2));
        assert_eq!(g.node(e).label.as_deref(), Some("loss"));
    }
}

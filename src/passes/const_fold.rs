//! Constant folding: a node whose operands are all `Const` scalars becomes one `Const`.
//!
//! Folded: unary and binary ops on scalars, and the ops that are the identity on a scalar
//! (a reduction over no axes, a reshape to `[]`, a transpose by `[]`, a slice with no items).
//! The node keeps its id, label and span: only its op changes and its operands go, so outputs
//! that name it stay right. Constants left unused are removed before returning, so the graph
//! still verifies. The scalar functions below are the op definitions of `ir/op.rs` in f64, with
//! the same formulas, NaN and signed-zero corners included, as the reference interpreter's
//! (`interp::ops::unary_fn`); a test checks them bit for bit. They are written out again here so
//! that the pass tests, which compare against the interpreter, check an independent copy.

use crate::check::types::Elem;
use crate::ir::op::{BinaryOp, ReduceOp, UnaryOp};
use crate::ir::{Graph, NodeId, Op};

pub fn run(g: &mut Graph) -> bool {
    let mut changed = false;
    for id in g.topo_order() {
        if let Some(v) = fold(g, id) {
            g.node_mut(id).op = Op::Const(v);
            g.set_operands(id, &[]);
            changed = true;
        }
    }
    if changed {
        super::dce::run(g);
    }
    changed
}

/// The value of `id` when it is a non-leaf scalar whose operands are all constants.
fn fold(g: &Graph, id: NodeId) -> Option<f64> {
    let n = g.node(id);
    if n.op.is_leaf() || !n.shape.is_empty() || n.elem != Elem::Float {
        return None;
    }
    let xs: Vec<f64> = g
        .operands(id)
        .into_iter()
        .map(|o| match g.node(o).op {
            Op::Const(c) => Some(c),
            _ => None,
        })
        .collect::<Option<_>>()?;
    match (&n.op, xs.as_slice()) {
        (Op::Unary(f), [x]) => Some(unary(*f, *x)),
        (Op::Binary(f), [x, y]) => Some(binary(*f, *x, *y)),
        // A reduction over no axes takes each element alone. Σ starts from 0 as the interpreter's
        // does (so −0 becomes +0), a mean divides that by 1, a max of one element is the element.
        (Op::Reduce { f, axes, .. }, [x]) if axes.is_empty() => Some(match f {
            ReduceOp::Sum => 0.0 + x,
            ReduceOp::Mean => (0.0 + x) / 1.0,
            ReduceOp::Max => *x,
        }),
        // A reshape or transpose of a scalar, or a slice with no items, is the scalar.
        (Op::Reshape, [x]) => Some(*x),
        (Op::Transpose { perm }, [x]) if perm.is_empty() => Some(*x),
        (Op::Slice { items }, [x]) if items.is_empty() => Some(*x),
        // KMax has no last axis on a scalar; the others cannot take a scalar `Const` operand
        // (they need an axis, two tensor operands, or an integer operand).
        _ => None,
    }
}

/// `f(x)` as `ir/op.rs` defines it, in f64: the interpreter's own definition, so folding and
/// running can never disagree.
pub fn unary(f: UnaryOp, x: f64) -> f64 {
    crate::interp::ops::unary_fn(f, x)
}

/// `f(x, y)` as `ir/op.rs` defines it, in f64.
pub fn binary(f: BinaryOp, x: f64, y: f64) -> f64 {
    crate::interp::ops::binary_fn(f, x, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::graph::{Node, Output};
    use crate::ir::verify::verify;

    fn c(g: &mut Graph, v: f64) -> NodeId {
        g.add(Node { op: Op::Const(v), elem: Elem::Float, shape: vec![], span: None, label: None }, &[])
    }

    fn op(g: &mut Graph, op: Op, xs: &[NodeId]) -> NodeId {
        g.add(Node { op, elem: Elem::Float, shape: vec![], span: None, label: None }, xs)
    }

    #[test]
    fn folds_a_chain_of_scalars_into_one_constant() {
        let mut g = Graph::default();
        let (a, b) = (c(&mut g, 2.0), c(&mut g, 3.0));
        let p = op(&mut g, Op::Binary(BinaryOp::Pow), &[a, b]);
        let e = op(&mut g, Op::Unary(UnaryOp::Neg), &[p]);
        let r = op(&mut g, Op::Reduce { f: crate::ir::op::ReduceOp::Sum, axes: vec![], keepdims: false }, &[e]);
        g.node_mut(r).label = Some("loss".into());
        g.outputs.push(Output { name: "loss".into(), node: r });
        assert!(run(&mut g));
        verify(&g).unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g.node(g.loss()).op, Op::Const(-8.0));
        assert_eq!(g.node(g.loss()).label.as_deref(), Some("loss"));
        assert!(!run(&mut g));
    }

    #[test]
    fn keeps_nodes_with_a_non_constant_operand() {
        let mut g = Graph::default();
        g.params.push(crate::ir::graph::ParamInfo {
            name: "w".into(),
            shape: vec![],
            prior: crate::check::checked::Prior::Flat,
            init: crate::ir::graph::Init::Fixed(0.0),
            update: None,
        });
        let w = g.add(Node { op: Op::Param(0), elem: Elem::Float, shape: vec![], span: None, label: None }, &[]);
        let one = c(&mut g, 1.0);
        let two = c(&mut g, 2.0);
        let s = op(&mut g, Op::Binary(BinaryOp::Add), &[one, two]);
        let m = op(&mut g, Op::Binary(BinaryOp::Mul), &[w, s]);
        g.outputs.push(Output { name: "loss".into(), node: m });
        assert!(run(&mut g));
        verify(&g).unwrap();
        assert_eq!(g.len(), 3);
        assert_eq!(
            g.operands(m).iter().map(|o| g.node(*o).op.clone()).collect::<Vec<_>>(),
            [Op::Param(0), Op::Const(3.0)]
        );
    }

    #[test]
    fn scalar_functions_agree_with_the_interpreter_bit_for_bit() {
        use crate::interp::ops::{binary_fn, unary_fn};
        let xs = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            -2.5,
            3.0,
            1e-300,
            -1e-300,
            700.0,
            -750.0,
            1e308,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        let same = |a: f64, b: f64| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        for f in [
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
        ] {
            for x in xs {
                assert!(same(unary(f, x), unary_fn::<f64>(f, x)), "{f:?}({x})");
            }
        }
        for f in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow] {
            for x in xs {
                for y in xs {
                    assert!(same(binary(f, x, y), binary_fn::<f64>(f, x, y)), "{f:?}({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn scalar_functions_follow_the_op_definitions() {
        assert_eq!(unary(UnaryOp::Relu, -1.0), 0.0);
        assert!(unary(UnaryOp::Relu, f64::NAN).is_nan());
        assert_eq!(unary(UnaryOp::Sigmoid, -800.0), 0.0);
        assert_eq!(unary(UnaryOp::Square, -3.0), 9.0);
        assert_eq!(unary(UnaryOp::Recip, 4.0), 0.25);
        assert!((unary(UnaryOp::Softplus, 0.0) - 2f64.ln()).abs() < 1e-15);
        assert!((unary(UnaryOp::Sigmoid, 0.0) - 0.5).abs() < 1e-15);
        assert!(unary(UnaryOp::Log, -1.0).is_nan());
        assert_eq!(binary(BinaryOp::Div, 1.0, 0.0), f64::INFINITY);
        assert_eq!(binary(BinaryOp::Pow, 2.0, 10.0), 1024.0);
    }
}

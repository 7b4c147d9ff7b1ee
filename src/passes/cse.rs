//! Common subexpression elimination: two nodes with the same op, the same operands and the same
//! type compute the same value, so every use of the later one is redirected to the earlier one.
//!
//! Constants compare by bit pattern (so `0` and `-0` stay apart, and NaNs merge only when their
//! bits are equal). The operands of `+` and `×` are compared as a multiset: IEEE addition and
//! multiplication are commutative exactly, broadcasting included. Nodes are visited in
//! topological order, so the operands of a node are already merged when it is looked up and whole
//! duplicated subtrees collapse in one run. Uses, outputs included, are moved with
//! `Graph::replace_uses`; the survivor takes over the label of the node it absorbs when it has
//! none, and two nodes with different labels (two named loss terms that happen to be equal) are
//! kept apart so each term still prints under its own name.

use crate::check::types::{Dim, Elem};
use crate::ir::op::BinaryOp;
use crate::ir::{Graph, NodeId, Op};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// What makes two nodes compute the same value.
#[derive(PartialEq, Eq, Hash)]
struct Key {
    op: String,
    operands: Vec<NodeId>,
    elem: Elem,
    shape: Vec<Dim>,
}

fn key(g: &Graph, id: NodeId) -> Key {
    let n = g.node(id);
    let op = match n.op {
        Op::Const(c) => format!("const {:016x}", c.to_bits()),
        ref other => format!("{other:?}"),
    };
    let mut operands = g.operands(id);
    if matches!(n.op, Op::Binary(BinaryOp::Add | BinaryOp::Mul)) {
        operands.sort_unstable();
    }
    Key { op, operands, elem: n.elem, shape: n.shape.clone() }
}

pub fn run(g: &mut Graph) -> bool {
    let mut seen: HashMap<Key, NodeId> = HashMap::default();
    let mut merged = HashSet::default();
    for id in g.topo_order() {
        let k = key(g, id);
        let Some(&first) = seen.get(&k) else {
            seen.insert(k, id);
            continue;
        };
        match (&g.node(first).label, &g.node(id).label) {
            (Some(a), Some(b)) if a != b => continue,
            (None, Some(_)) => g.node_mut(first).label = g.node_mut(id).label.take(),
            _ => {}
        }
        g.replace_uses(id, first);
        merged.insert(id);
    }
    g.remove_all(&merged);
    !merged.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::checked::{DataSource, Prior};
    use crate::ir::graph::{DataInfo, Init, Node, Output, ParamInfo};
    use crate::ir::op::{ReduceOp, UnaryOp};
    use crate::ir::verify::verify;

    fn k(n: u64) -> Dim {
        Dim::Known(n)
    }

    fn node(g: &mut Graph, op: Op, shape: Vec<Dim>, xs: &[NodeId]) -> NodeId {
        g.add(Node { op, elem: Elem::Float, shape, span: None, label: None }, xs)
    }

    fn with_data(shape: Vec<Dim>) -> (Graph, NodeId) {
        let mut g = Graph::default();
        g.data.push(DataInfo {
            name: "x".into(),
            elem: Elem::Float,
            shape: shape.clone(),
            source: DataSource::Columns(vec![]),
        });
        let x = node(&mut g, Op::Data(0), shape, &[]);
        (g, x)
    }

    fn sum_all(g: &mut Graph, x: NodeId) -> NodeId {
        let axes = (0..g.node(x).shape.len()).collect();
        node(g, Op::Reduce { f: ReduceOp::Sum, axes, keepdims: false }, vec![], &[x])
    }

    #[test]
    fn merges_duplicated_subtrees_and_redirects_outputs() {
        let (mut g, x) = with_data(vec![k(3)]);
        let e1 = node(&mut g, Op::Unary(UnaryOp::Exp), vec![k(3)], &[x]);
        let e2 = node(&mut g, Op::Unary(UnaryOp::Exp), vec![k(3)], &[x]);
        let c1 = node(&mut g, Op::Const(2.0), vec![], &[]);
        let c2 = node(&mut g, Op::Const(2.0), vec![], &[]);
        let m1 = node(&mut g, Op::Binary(BinaryOp::Mul), vec![k(3)], &[e1, c1]);
        let m2 = node(&mut g, Op::Binary(BinaryOp::Mul), vec![k(3)], &[c2, e2]);
        let s = node(&mut g, Op::Binary(BinaryOp::Sub), vec![k(3)], &[m1, m2]);
        let loss = sum_all(&mut g, s);
        g.outputs.push(Output { name: "loss".into(), node: loss });
        g.outputs.push(Output { name: "a".into(), node: m1 });
        g.outputs.push(Output { name: "b".into(), node: m2 });
        assert!(run(&mut g));
        verify(&g).unwrap();
        // x, exp, 2, mul, sub, sum
        assert_eq!(g.len(), 6);
        assert_eq!(g.outputs[1].node, g.outputs[2].node);
        assert_eq!(g.operands(s), vec![m1, m1]);
        assert!(!run(&mut g));
    }

    #[test]
    fn keeps_apart_what_differs() {
        let (mut g, x) = with_data(vec![k(3)]);
        let z = node(&mut g, Op::Const(0.0), vec![], &[]);
        let nz = node(&mut g, Op::Const(-0.0), vec![], &[]);
        let a = node(&mut g, Op::Binary(BinaryOp::Sub), vec![k(3)], &[x, z]);
        let b = node(&mut g, Op::Binary(BinaryOp::Sub), vec![k(3)], &[z, x]);
        let c = node(&mut g, Op::Binary(BinaryOp::Add), vec![k(3)], &[x, nz]);
        let d = node(&mut g, Op::Binary(BinaryOp::Add), vec![k(3)], &[x, z]);
        let r1 = node(&mut g, Op::Reshape, vec![k(3), k(1)], &[x]);
        let r2 = node(&mut g, Op::Reshape, vec![k(1), k(3)], &[x]);
        let s1 = sum_all(&mut g, r1);
        let s2 = sum_all(&mut g, r2);
        g.node_mut(s1).label = Some("first".into());
        g.node_mut(s2).label = Some("second".into());
        let mut acc = sum_all(&mut g, a);
        for t in [b, c, d] {
            let s = sum_all(&mut g, t);
            acc = node(&mut g, Op::Binary(BinaryOp::Add), vec![], &[acc, s]);
        }
        acc = node(&mut g, Op::Binary(BinaryOp::Add), vec![], &[acc, s1]);
        acc = node(&mut g, Op::Binary(BinaryOp::Add), vec![], &[acc, s2]);
        g.outputs.push(Output { name: "loss".into(), node: acc });
        let before = g.len();
        assert!(!run(&mut g));
        verify(&g).unwrap();
        assert_eq!(g.len(), before);
    }

    #[test]
    fn leaves_of_the_same_parameter_merge() {
        let mut g = Graph::default();
        g.params.push(ParamInfo {
            name: "w".into(),
            shape: vec![2],
            prior: Prior::Flat,
            init: Init::Fixed(0.0),
            update: None,
        });
        let w1 = node(&mut g, Op::Param(0), vec![k(2)], &[]);
        let w2 = node(&mut g, Op::Param(0), vec![k(2)], &[]);
        g.node_mut(w1).label = Some("w".into());
        let m = node(&mut g, Op::Binary(BinaryOp::Mul), vec![k(2)], &[w1, w2]);
        let loss = sum_all(&mut g, m);
        g.outputs.push(Output { name: "loss".into(), node: loss });
        assert!(run(&mut g));
        verify(&g).unwrap();
        assert_eq!(g.len(), 3);
        assert_eq!(g.operands(m), vec![w1, w1]);
    }
}

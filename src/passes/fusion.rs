//! Elementwise fusion groups: which nodes a backend can compute in one loop. This is an analysis,
//! not a rewrite: it reads the graph and returns the groups; backends render each as one kernel.
//!
//! The grouping rule:
//! - A group's body is a connected set of elementwise ops (`Op::is_elementwise`) that all have
//!   the same shape, the group's iteration space. Inside the body no value is broadcast: every
//!   member reads the members it uses at the loop's own index. Inputs (values from outside) may
//!   be broadcast into the space; the backend reads them through broadcast strides.
//! - Contracting every group to one node leaves the graph acyclic, so the groups and the other
//!   ops can run one after another, each group as one whole loop. In particular each group is
//!   convex (no path leaves it and comes back), and no two groups wait on each other (`a₁ → … →
//!   b₂` and `b₁ → … → a₂` with `a`s in one group and `b`s in another).
//! - A member whose value is used only inside the group is internal: it lives in a register and
//!   needs no buffer. A member used outside the group, or named by a graph output, is an output of
//!   the group and is written to a buffer (so a group may have several outputs).
//! - Optionally the group ends in one reduction epilogue: an `Op::Reduce` whose operand is a
//!   member that nothing else uses and no output names. The loop then accumulates instead of
//!   writing that member, and the reduction's result is a group output. `LogSumExp` is not an
//!   epilogue: it needs the maximum before it can sum.
//! - Groups grow greedily: nodes are visited in topological order, and an elementwise node joins
//!   the group of each operand that has its shape whenever the contracted graph stays acyclic.
//!   Every elementwise node is in exactly one group (possibly alone); other ops are in none,
//!   except reductions taken as epilogues. A group holds at most `MAX_GROUP_NODES` members.

use crate::check::types::{Dim, ShowDim};
use crate::ir::{Graph, NodeId, Op};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::BTreeSet;
use std::fmt::Write;

#[derive(Clone, Debug, PartialEq)]
pub struct FusionGroup {
    /// Every member, each after the members it reads: the elementwise body in the graph's
    /// topological order, then the epilogue, if any (nothing in the body depends on it).
    pub nodes: Vec<NodeId>,
    /// The iteration space: the shape of every elementwise member.
    pub shape: Vec<Dim>,
    /// The reduction ending the group.
    pub epilogue: Option<NodeId>,
    /// Values from outside the group that members read, in order of first use.
    pub inputs: Vec<NodeId>,
    /// Members used outside the group or named by a graph output, in topological order.
    pub outputs: Vec<NodeId>,
}

/// The most elementwise members a group takes: a longer chain (an unrolled `repeat`) is split
/// into groups of at most this many, so that the code generated for one group stays of bounded
/// size (a register allocator's time grows faster than linearly in one function's size) and
/// the repeated pieces of a chain are alike, compiled once (`backend::cpu::jit`).
pub const MAX_GROUP_NODES: usize = 256;

/// The fusion groups of `g`, ordered by their first member.
///
/// Linear in the graph but for the acyclicity checks, which look only at nodes already visited
/// that read a member from outside (a group keeps those in `outside`, ordered by position):
/// every node after the node being visited is outside every group yet, so no path through it
/// can come back (see [`can_merge`]). Groups merge smaller into larger.
pub fn groups(g: &Graph) -> Vec<FusionGroup> {
    let order = g.topo_order();
    let pos: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let fusible = |n: NodeId| g.node(n).op.is_elementwise();
    // Union of groups by merging member lists; `of` maps a node to its group's slot.
    let mut members: Vec<Vec<NodeId>> = Vec::new();
    // Per group: (position, node) of every node outside it that reads a member.
    let mut outside: Vec<BTreeSet<(usize, NodeId)>> = Vec::new();
    let mut of: HashMap<NodeId, usize> = HashMap::default();
    for &v in &order {
        if !fusible(v) {
            continue;
        }
        of.insert(v, members.len());
        members.push(vec![v]);
        outside.push(g.users(v).into_iter().map(|u| (pos[&u], u)).collect());
        let mut operands = g.operands(v);
        operands.dedup();
        for u in operands {
            if !fusible(u) || g.node(u).shape != g.node(v).shape {
                continue;
            }
            let (gu, gv) = (of[&u], of[&v]);
            if gu == gv {
                continue;
            }
            if members[gu].len() + members[gv].len() > MAX_GROUP_NODES {
                continue;
            }
            if can_merge(g, &outside, &of, gu, gv, pos[&v], &pos) {
                // The larger keeps its slot; the smaller moves into it.
                let (keep, gone) = if members[gu].len() >= members[gv].len() { (gu, gv) } else { (gv, gu) };
                let moved = std::mem::take(&mut members[gone]);
                let moved_outside = std::mem::take(&mut outside[gone]);
                for m in &moved {
                    of.insert(*m, keep);
                    outside[keep].remove(&(pos[m], *m));
                }
                outside[keep].extend(moved_outside.into_iter().filter(|(_, n)| of.get(n) != Some(&keep)));
                members[keep].extend(moved);
            }
        }
    }
    let outputs: HashSet<NodeId> = g.outputs.iter().map(|o| o.node).collect();
    let mut result = Vec::new();
    for mut nodes in members.into_iter().filter(|m| !m.is_empty()) {
        nodes.sort_by_key(|n| pos[n]);
        let mut set: HashSet<NodeId> = nodes.iter().copied().collect();
        let epilogue = epilogue(g, &nodes, &outputs, &pos);
        if let Some(r) = epilogue {
            nodes.push(r);
            set.insert(r);
        }
        let mut inputs = Vec::new();
        let mut seen = HashSet::default();
        for n in &nodes {
            for o in g.operands(*n) {
                if !set.contains(&o) && seen.insert(o) {
                    inputs.push(o);
                }
            }
        }
        let outs = nodes
            .iter()
            .copied()
            .filter(|n| outputs.contains(n) || g.users(*n).iter().any(|u| !set.contains(u)))
            .collect();
        let shape = g.node(nodes[0]).shape.clone();
        result.push(FusionGroup { nodes, shape, epilogue, inputs, outputs: outs });
    }
    result.sort_by_key(|grp| pos[&grp.nodes[0]]);
    result
}

/// The first reduction (in topological order) that can end the group `nodes`. Taking it keeps
/// the contracted graph acyclic without a check: the reduction reads only its operand, a member,
/// so no path enters it from outside; and a path from it back into the group would, before, have
/// been a cycle through the group and the reduction alone.
fn epilogue(g: &Graph, nodes: &[NodeId], outputs: &HashSet<NodeId>, pos: &HashMap<NodeId, usize>) -> Option<NodeId> {
    nodes
        .iter()
        .filter(|m| !outputs.contains(*m))
        .filter_map(|m| match g.users(*m).as_slice() {
            [r] if matches!(g.node(*r).op, Op::Reduce { .. }) => Some(*r),
            _ => None,
        })
        .min_by_key(|r| pos[r])
}

/// A node of the graph with every group contracted: a group, or a node in none.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Unit {
    Group(usize),
    Node(NodeId),
}

/// Whether merging groups `a` and `b` keeps the contracted graph acyclic: no path from the union
/// leaves it, runs through other units, and comes back. (The contracted graph is acyclic before,
/// so such a path is the only way to make a cycle.)
///
/// `last` is the position of the node being visited, the latest of the union and of every
/// group: a node after it is in no group yet, so it is a unit of its own that comes after every
/// member and cannot lead back. The search therefore follows only edges into nodes at or before
/// `last`: a group's `outside` readers up to `last`, and a lone node's users up to `last`.
fn can_merge(
    g: &Graph,
    outside: &[BTreeSet<(usize, NodeId)>],
    of: &HashMap<NodeId, usize>,
    a: usize,
    b: usize,
    last: usize,
    pos: &HashMap<NodeId, usize>,
) -> bool {
    let unit = |n: NodeId| of.get(&n).map_or(Unit::Node(n), |gid| Unit::Group(*gid));
    let inside = |n: NodeId| matches!(unit(n), Unit::Group(x) if x == a || x == b);
    // The readers of unit `w` that may lead back: those at or before `last`.
    let next = |w: Unit| -> Vec<NodeId> {
        match w {
            Unit::Group(x) => outside[x].iter().take_while(|(p, _)| *p <= last).map(|(_, n)| *n).collect(),
            Unit::Node(n) => g.users(n).into_iter().filter(|u| pos[u] <= last).collect(),
        }
    };
    let mut seen: HashSet<Unit> = HashSet::default();
    let mut stack: Vec<Unit> = Vec::new();
    for w in [Unit::Group(a), Unit::Group(b)] {
        for u in next(w) {
            if !inside(u) && seen.insert(unit(u)) {
                stack.push(unit(u));
            }
        }
    }
    while let Some(w) = stack.pop() {
        for u in next(w) {
            if inside(u) {
                return false;
            }
            if unit(u) != w && seen.insert(unit(u)) {
                stack.push(unit(u));
            }
        }
    }
    true
}

/// The groups as text, one block per group: its shape, members, inputs and outputs.
pub fn describe(g: &Graph, groups: &[FusionGroup]) -> String {
    let ids = |ns: &[NodeId]| ns.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let mut out = String::new();
    for (i, grp) in groups.iter().enumerate() {
        let dims: Vec<String> = grp.shape.iter().map(|d| ShowDim(*d, g).to_string()).collect();
        let body: Vec<String> = grp
            .nodes
            .iter()
            .map(|n| {
                let tag = if Some(*n) == grp.epilogue { " (epilogue)" } else { "" };
                format!("{n} {}{tag}", g.node(*n).op.name())
            })
            .collect();
        let _ = writeln!(out, "group {i} [{}]: {}", dims.join(", "), body.join(", "));
        let _ = writeln!(out, "  inputs: {}", ids(&grp.inputs));
        let _ = writeln!(out, "  outputs: {}", ids(&grp.outputs));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::checked::DataSource;
    use crate::check::types::{broadcast, Elem};
    use crate::ir::graph::{DataInfo, Node, Output};
    use crate::ir::op::{BinaryOp, ReduceOp, UnaryOp};
    use crate::ir::verify::verify;

    fn k(n: u64) -> Dim {
        Dim::Known(n)
    }

    struct B {
        g: Graph,
    }

    impl B {
        fn new() -> B {
            B { g: Graph::default() }
        }
        fn data(&mut self, shape: Vec<Dim>) -> NodeId {
            let i = self.g.data.len();
            self.g.data.push(DataInfo {
                name: format!("x{i}"),
                elem: Elem::Float,
                shape: shape.clone(),
                source: DataSource::Columns(vec![]),
            });
            self.node(Op::Data(i), shape, &[])
        }
        fn node(&mut self, op: Op, shape: Vec<Dim>, xs: &[NodeId]) -> NodeId {
            self.g.add(Node { op, elem: Elem::Float, shape, span: None, label: None }, xs)
        }
        fn un(&mut self, f: UnaryOp, x: NodeId) -> NodeId {
            let s = self.g.node(x).shape.clone();
            self.node(Op::Unary(f), s, &[x])
        }
        fn bin(&mut self, f: BinaryOp, x: NodeId, y: NodeId) -> NodeId {
            let s = broadcast(&self.g.node(x).shape, &self.g.node(y).shape).unwrap();
            self.node(Op::Binary(f), s, &[x, y])
        }
        fn sum(&mut self, x: NodeId, axes: Vec<usize>) -> NodeId {
            let s =
                self.g.node(x).shape.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, d)| *d).collect();
            self.node(Op::Reduce { f: ReduceOp::Sum, axes, keepdims: false }, s, &[x])
        }
        fn finish(mut self, loss: NodeId, more: &[NodeId]) -> Graph {
            self.g.outputs.push(Output { name: "loss".into(), node: loss });
            for (i, m) in more.iter().enumerate() {
                self.g.outputs.push(Output { name: format!("o{i}"), node: *m });
            }
            verify(&self.g).unwrap();
            self.g
        }
    }

    #[test]
    fn a_chain_with_a_sum_is_one_group_with_an_epilogue() {
        let mut b = B::new();
        let x = b.data(vec![k(3), k(4)]);
        let m = b.data(vec![k(4)]);
        let d = b.bin(BinaryOp::Sub, x, m);
        let sq = b.un(UnaryOp::Square, d);
        let half = b.node(Op::Const(0.5), vec![], &[]);
        let q = b.bin(BinaryOp::Mul, sq, half);
        let loss = b.sum(q, vec![0, 1]);
        let g = b.finish(loss, &[]);
        let gs = groups(&g);
        assert_eq!(gs.len(), 1, "{}", describe(&g, &gs));
        assert_eq!(gs[0].nodes, vec![d, sq, q, loss]);
        assert_eq!(gs[0].epilogue, Some(loss));
        assert_eq!(gs[0].inputs, vec![x, m, half]);
        assert_eq!(gs[0].outputs, vec![loss]);
        assert_eq!(gs[0].shape, vec![k(3), k(4)]);
        assert!(describe(&g, &gs).contains("(epilogue)"));
    }

    #[test]
    fn a_value_used_outside_is_an_output_and_blocks_no_fusion() {
        let mut b = B::new();
        let x = b.data(vec![k(2), k(3)]);
        let w = b.data(vec![k(3), k(2)]);
        let h = b.un(UnaryOp::Tanh, x);
        let p = b.node(Op::MatMul, vec![k(2), k(2)], &[h, w]);
        let sq = b.un(UnaryOp::Square, h);
        let s1 = b.sum(sq, vec![0, 1]);
        let s2 = b.sum(p, vec![0, 1]);
        let loss = b.bin(BinaryOp::Add, s1, s2);
        let g = b.finish(loss, &[]);
        let gs = groups(&g);
        // {tanh, square, sum} and the final scalar add alone.
        assert_eq!(gs.len(), 2, "{}", describe(&g, &gs));
        assert_eq!(gs[0].nodes, vec![h, sq, s1]);
        assert_eq!(gs[0].outputs, vec![h, s1]);
        assert_eq!(gs[1].nodes, vec![loss]);
        assert_eq!(gs[1].inputs, vec![s1, s2]);
    }

    #[test]
    fn no_group_waits_on_itself_through_an_outside_node() {
        // e = exp(x); s = sum(e, keepdims); y = e / s: softmax. e and y have one shape, but y needs
        // the reduction of e, so {e, y} is not one loop; the reduction is not an epilogue either
        // (e has another user).
        let mut b = B::new();
        let x = b.data(vec![k(2), k(3)]);
        let e = b.un(UnaryOp::Exp, x);
        let s = b.node(Op::Reduce { f: ReduceOp::Sum, axes: vec![1], keepdims: true }, vec![k(2), k(1)], &[e]);
        let y = b.bin(BinaryOp::Div, e, s);
        let l = b.un(UnaryOp::Log, y);
        let loss = b.sum(l, vec![0, 1]);
        let g = b.finish(loss, &[y]);
        let gs = groups(&g);
        assert_eq!(gs.len(), 2, "{}", describe(&g, &gs));
        assert_eq!(gs[0].nodes, vec![e]);
        assert_eq!(gs[0].epilogue, None);
        assert_eq!(gs[1].nodes, vec![y, l, loss]);
        assert_eq!(gs[1].outputs, vec![y, loss]);
    }

    #[test]
    fn no_two_groups_wait_on_each_other() {
        // a₁ = softplus(x), a₂ = b₁·a₁ ([4]); b₁ = s², b₂ = b₁ + Σa₁ ([]). {a₁, a₂} and {b₁, b₂}
        // are each convex, but {b₁, b₂} needs Σa₁ and {a₁, a₂} needs b₁: no order runs both as
        // whole loops. The second merge is refused.
        let mut b = B::new();
        let x = b.data(vec![k(4)]);
        let s = b.data(vec![]);
        let a1 = b.un(UnaryOp::Softplus, x);
        let b1 = b.un(UnaryOp::Square, s);
        let a2 = b.bin(BinaryOp::Mul, b1, a1);
        let r = b.sum(a1, vec![0]);
        let b2 = b.bin(BinaryOp::Add, b1, r);
        let g = b.finish(b2, &[a2]);
        let gs = groups(&g);
        let nodes: Vec<Vec<NodeId>> = gs.iter().map(|g| g.nodes.clone()).collect();
        assert_eq!(nodes, vec![vec![a1, a2], vec![b1], vec![b2]], "{}", describe(&g, &gs));
    }

    #[test]
    fn shapes_split_groups_and_graph_outputs_block_epilogues() {
        let mut b = B::new();
        let x = b.data(vec![k(3)]);
        let y = b.data(vec![k(2), k(3)]);
        let a = b.un(UnaryOp::Exp, x); // [3]
        let c = b.bin(BinaryOp::Mul, a, y); // [2, 3]: another space
        let loss = b.sum(c, vec![0, 1]);
        let g = b.finish(loss, &[c]);
        let gs = groups(&g);
        assert_eq!(gs.len(), 2, "{}", describe(&g, &gs));
        assert_eq!((gs[0].nodes.clone(), gs[0].outputs.clone()), (vec![a], vec![a]));
        assert_eq!((gs[1].nodes.clone(), gs[1].epilogue), (vec![c], None));
        // Every elementwise node is in exactly one group.
        let all: Vec<NodeId> = gs.iter().flat_map(|g| g.nodes.clone()).collect();
        assert_eq!(all, vec![a, c]);
    }
}

//! Splitting a verified graph into kernels, in execution order (the kinds are described in
//! `kernel/mod.rs`).
//!
//! The rule, in the order it is applied:
//! 1. Every node is classified by its op ([`role`], an exhaustive match): a leaf, a view
//!    (`Reshape`), elementwise, a matrix product, a reduction, a copy, a selection or a one-hot.
//! 2. Elementwise nodes start in the fusion groups of `passes::fusion::groups`.
//! 3. Each matrix product `m`, in topological order, takes an epilogue from the fusion group `G`
//!    its users lie in, when every user of `m` is an elementwise member of one group whose shape
//!    is `m`'s (a bias add, an activation, the activation's derivative beside it, …):
//!    - (a) the epilogue starts as every member of `G` that reads `m` or an earlier member of the
//!      epilogue and nothing else of `G` but members that depend on nothing of `G` (those join it
//!      too: they are computed from the kernel's inputs), and that no earlier product took (of
//!      `a @ b + c @ d` the first product takes the sum and reads the second as an input);
//!    - (b) then, to a fixed point, a member leaves it if it reads a member of `G` outside the
//!      epilogue, or if it is no graph output and every user it has is in the rest of `G` (it
//!      would be written only to be read back by the rest: the chain up to a loss term's
//!      reduction stays with its reduction);
//!    - (c) it is kept if it makes no more values written only for the rest of `G` (members the
//!      rest reads, and `m` if the rest reads it) than `m` alone is (one, unless `m` is a graph
//!      output). A chain `m → +b → relu` whose intermediate values have no other users is the
//!      common case; the rule also takes a value with several users inside the epilogue
//!      (`relu(z)` and `step(z)` of a training step read one `z = m + b`).
//!
//!    The members leave `G`. The epilogue reads nothing of the rest of `G`, and `G` was convex, so
//!    no path leads from the rest of `G` into the product's kernel; and since every user of `m` is
//!    in `G`, no path leaves the kernel through `m` and comes back: the kernels stay acyclic. What
//!    remains of `G` is one elementwise kernel (its members share one iteration space; they need
//!    not be connected any more); if `G`'s reduction epilogue read a member that left, the
//!    reduction becomes a kernel of its own ((b) keeps that from happening today).
//! 4. A `Transpose` of the last two axes that only matrix products read (and no output names) is a
//!    transposed [`View`] of its operand's buffer: the products read it with swapped strides.
//!    Every other non-leaf, non-view node is a kernel of its own: `Reduce`, `LogSumExp` (Reduce),
//!    `Transpose`, `Slice`, `Embed`, `Concat` (Copy), `KMax`, `KMaxMask` (Select),
//!    `OneHot`.
//! 5. The kernels are ordered by Kahn's algorithm over "reads an output of" (through views).
//!    Of the ready kernels, the one writing the loss (the first graph output) goes first: a
//!    backend can check it before anything else is written. Then one that another kernel reads,
//!    by the topological position of its first node: the graph's own order, which keeps a
//!    forward pass before its backward pass. A *sink*, a kernel no other kernel reads (it writes
//!    graph outputs only, such as a parameter's update), waits until no other kernel is ready;
//!    sinks run by the position of their last node. So by the time a sink runs, every other
//!    reader of what it reads has run: an update may overwrite its parameter in place
//!    (`buffers.rs`), and graph outputs are written late.

use crate::check::types::Dim;
use crate::ir::Origin;
use crate::ir::{Graph, NodeId, Op};
use crate::passes::fusion;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// What a kernel computes, which decides how a backend renders it. Closed: a renderer matches
/// every kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelKind {
    /// One loop over `space`: elementwise ops, optionally ending in a reduction (`reduction`).
    Elementwise,
    /// `nodes[0]` is a matrix product; the rest, its elementwise epilogue, in topological order.
    MatMul,
    /// One `Reduce` or `LogSumExp`; `space` is its operand's shape.
    Reduce,
    /// One `Transpose`, `Slice`, `Embed` or `Concat`.
    Copy,
    /// One `KMax` or `KMaxMask` (along the last axis).
    Select,
    /// One `OneHot`.
    OneHot,
}

impl KernelKind {
    pub fn name(self) -> &'static str {
        match self {
            KernelKind::Elementwise => "elementwise",
            KernelKind::MatMul => "matmul",
            KernelKind::Reduce => "reduce",
            KernelKind::Copy => "copy",
            KernelKind::Select => "select",
            KernelKind::OneHot => "one_hot",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Kernel {
    pub kind: KernelKind,
    /// The nodes it computes, each after the nodes of this kernel it reads.
    pub nodes: Vec<NodeId>,
    /// Values from outside the kernel that its nodes read (leaves and views included), in order
    /// of first use.
    pub inputs: Vec<NodeId>,
    /// Its nodes that a node outside it reads or a graph output names, in `nodes` order. Each is
    /// written to a buffer; the other nodes are internal.
    pub outputs: Vec<NodeId>,
    /// The iteration space: the elementwise body's shape, the product's shape, the reduced
    /// operand's shape, or the result's shape (copies, selections, one-hot).
    pub space: Vec<Dim>,
    /// For an elementwise kernel, the reduction it ends in: the loop accumulates into it.
    pub reduction: Option<NodeId>,
    /// The distinct source spans of its nodes, in `nodes` order: what `circ emit` heads it with.
    pub spans: Vec<Origin>,
}

/// A value read from another's buffer without a copy: `node` reads the buffer of `base` (a leaf or
/// a kernel output; never another view) with its own shape.
///
/// - A reshape is a plain view: the same dense, row-major elements.
/// - A `transpose` of the last two axes is a *transposed* view when every user of it is a matrix
///   product: the buffer holds the value with its last two axes swapped, and the product reads it
///   with swapped strides (which every matrix-product renderer can do for free) instead of a copy
///   kernel writing it out first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    pub node: NodeId,
    pub base: NodeId,
    pub transposed: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Partition {
    /// In execution order.
    pub kernels: Vec<Kernel>,
    /// Every reshape, in topological order.
    pub views: Vec<View>,
}

impl Partition {
    /// The value whose buffer `id` lives in: `id` itself unless it is a view.
    pub fn base(&self, id: NodeId) -> NodeId {
        self.views.iter().find(|v| v.node == id).map_or(id, |v| v.base)
    }

    /// The kernel computing each non-leaf, non-view node.
    pub fn kernel_of(&self) -> HashMap<NodeId, usize> {
        self.kernels.iter().enumerate().flat_map(|(i, k)| k.nodes.iter().map(move |n| (*n, i))).collect()
    }
}

/// How a node is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Leaf,
    View,
    Elementwise,
    MatMul,
    Own(KernelKind),
}

fn role(op: &Op) -> Role {
    match op {
        Op::Data(_) | Op::Param(_) | Op::Input(_) | Op::Const(_) => Role::Leaf,
        Op::Reshape => Role::View,
        Op::Unary(_) | Op::Binary(_) | Op::Cast | Op::Expand => Role::Elementwise,
        Op::MatMul => Role::MatMul,
        Op::Reduce { .. } | Op::LogSumExp { .. } => Role::Own(KernelKind::Reduce),
        Op::Transpose { .. } | Op::Slice { .. } | Op::Embed { .. } | Op::Concat { .. } => Role::Own(KernelKind::Copy),
        Op::KMax { .. } | Op::KMaxMask { .. } => Role::Own(KernelKind::Select),
        Op::OneHot { .. } => Role::Own(KernelKind::OneHot),
    }
}

/// A kernel before its inputs and outputs are known.
struct Unit {
    kind: KernelKind,
    nodes: Vec<NodeId>,
    space: Vec<Dim>,
    reduction: Option<NodeId>,
}

/// Splits `g` (verified) into kernels in execution order. The rule is in this file's header.
pub fn partition(g: &Graph) -> Partition {
    let order = g.topo_order();
    let pos: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let named: HashSet<NodeId> = g.outputs.iter().map(|o| o.node).collect();
    let groups = fusion::groups(g);
    let group_of: HashMap<NodeId, usize> =
        groups.iter().enumerate().flat_map(|(i, grp)| grp.nodes.iter().map(move |n| (*n, i))).collect();

    let mut units = Vec::new();
    let mut taken: HashSet<NodeId> = HashSet::default();
    for &m in &order {
        if role(&g.node(m).op) == Role::MatMul {
            let epi = epilogue(g, m, &groups, &group_of, &taken);
            taken.extend(epi.iter().copied());
            let mut nodes = vec![m];
            nodes.extend(epi);
            units.push(Unit { kind: KernelKind::MatMul, nodes, space: g.node(m).shape.clone(), reduction: None });
        }
    }
    for grp in &groups {
        let body: Vec<NodeId> =
            grp.nodes.iter().copied().filter(|n| Some(*n) != grp.epilogue && !taken.contains(n)).collect();
        let mut reduction = None;
        if let Some(r) = grp.epilogue {
            // The reduction reads one member; if a product's epilogue took it, the reduction is
            // alone.
            if g.operands(r).iter().all(|o| body.contains(o)) && !body.is_empty() {
                reduction = Some(r);
            } else {
                units.push(own(g, r, KernelKind::Reduce));
            }
        }
        if !body.is_empty() {
            let mut nodes = body;
            nodes.extend(reduction);
            units.push(Unit { kind: KernelKind::Elementwise, nodes, space: grp.shape.clone(), reduction });
        }
    }
    let mut views = Vec::new();
    for &n in &order {
        match role(&g.node(n).op) {
            Role::Leaf | Role::Elementwise | Role::MatMul => {}
            Role::View => {
                let x = g.operands(n)[0];
                let base = views.iter().find(|v: &&View| v.node == x).map_or(x, |v| v.base);
                views.push(View { node: n, base, transposed: false });
            }
            Role::Own(_) if transposed_view(g, n, &named) => {
                let x = g.operands(n)[0];
                let base = views.iter().find(|v: &&View| v.node == x).map_or(x, |v| v.base);
                views.push(View { node: n, base, transposed: true });
            }
            Role::Own(kind) => {
                if !group_of.contains_key(&n) {
                    units.push(own(g, n, kind));
                }
            }
        }
    }
    let kernels = schedule(g, units, &views, &pos).into_iter().map(|u| finish(g, u, &named)).collect();
    Partition { kernels, views }
}

/// Whether `n` is a transpose of its last two axes that only matrix products read (and no graph
/// output names, since outputs are read back dense).
fn transposed_view(g: &Graph, n: NodeId, named: &HashSet<NodeId>) -> bool {
    let Op::Transpose { perm } = &g.node(n).op else { return false };
    let r = perm.len();
    let swaps_last_two = r >= 2 && perm[..r - 2].iter().enumerate().all(|(i, p)| *p == i) && perm[r - 2] == r - 1;
    let users = g.users(n);
    swaps_last_two && !named.contains(&n) && !users.is_empty() && users.iter().all(|u| g.node(*u).op == Op::MatMul)
}

/// A kernel of one node; its space is its operand's shape for a reduction, else its own.
fn own(g: &Graph, n: NodeId, kind: KernelKind) -> Unit {
    let space = match kind {
        KernelKind::Reduce => g.node(g.operands(n)[0]).shape.clone(),
        KernelKind::Elementwise | KernelKind::MatMul | KernelKind::Copy | KernelKind::Select | KernelKind::OneHot => {
            g.node(n).shape.clone()
        }
    };
    Unit { kind, nodes: vec![n], space, reduction: None }
}

/// The elementwise epilogue a product `m` computes before writing (step 3 of the rule), in
/// topological order.
fn epilogue(
    g: &Graph,
    m: NodeId,
    groups: &[fusion::FusionGroup],
    group_of: &HashMap<NodeId, usize>,
    taken: &HashSet<NodeId>,
) -> Vec<NodeId> {
    let users = g.users(m);
    let Some(&gid) = users.first().and_then(|u| group_of.get(u)) else { return Vec::new() };
    let group = &groups[gid];
    let fits = |u: &NodeId| {
        group_of.get(u) == Some(&gid) && Some(*u) != group.epilogue && role(&g.node(*u).op) == Role::Elementwise
    };
    if group.shape != g.node(m).shape || !users.iter().all(fits) {
        return Vec::new();
    }
    let in_group = |n: &NodeId| group_of.get(n) == Some(&gid);
    // (a) Every member computable from the product and values from outside the group, with the
    // members it reads that depend on nothing of the group (`free`: a prior's gradient `w·2·½`
    // beside the data term `xᵀ·dz` it is added to).
    let mut set: HashSet<NodeId> = HashSet::default();
    let mut free: HashSet<NodeId> = HashSet::default();
    for &u in &group.nodes {
        if Some(u) == group.epilogue || taken.contains(&u) {
            continue;
        }
        let xs = g.operands(u);
        let outside_or = |x: &NodeId, inner: &HashSet<NodeId>| !in_group(x) || inner.contains(x);
        if xs.iter().all(|x| *x != m && outside_or(x, &free)) {
            free.insert(u);
        } else if xs.iter().any(|x| *x == m || set.contains(x))
            && xs.iter().all(|x| *x == m || set.contains(x) || outside_or(x, &free))
        {
            set.insert(u);
            let mut stack: Vec<NodeId> = xs.into_iter().filter(|x| free.contains(x)).collect();
            while let Some(f) = stack.pop() {
                if set.insert(f) {
                    stack.extend(g.operands(f).into_iter().filter(|x| free.contains(x)));
                }
            }
        }
    }
    // (b) Drop, to a fixed point, members that would read the rest of the group, and members
    // whose every user is in the rest of the group (they would only be written for it).
    let named = |n: &NodeId| g.outputs.iter().any(|o| o.node == *n);
    loop {
        let drop: Vec<NodeId> = set
            .iter()
            .copied()
            .filter(|e| {
                let reads_rest = g.operands(*e).iter().any(|x| in_group(x) && !set.contains(x));
                let users = g.users(*e);
                let only_for_rest = !named(e) && users.iter().all(|u| in_group(u) && !set.contains(u));
                reads_rest || only_for_rest
            })
            .collect();
        if drop.is_empty() {
            break;
        }
        for e in drop {
            set.remove(&e);
        }
    }
    // (c) Values written only for the rest of the group: with the epilogue, its members the rest
    // reads (and the product, if the rest reads it); without, the product. Take the fewer.
    let written_for_rest = |v: &NodeId| {
        let users = g.users(*v);
        !named(v) && users.iter().any(|u| in_group(u) && !set.contains(u)) && users.iter().all(&in_group)
    };
    let with = set.iter().filter(|e| written_for_rest(e)).count() + usize::from(written_for_rest(&m));
    let without = usize::from(!named(&m));
    if with > without {
        return Vec::new();
    }
    group.nodes.iter().copied().filter(|n| set.contains(n)).collect()
}

/// Orders the units so that each comes after every unit whose output it reads (through views).
fn schedule(g: &Graph, units: Vec<Unit>, views: &[View], pos: &HashMap<NodeId, usize>) -> Vec<Unit> {
    let unit_of: HashMap<NodeId, usize> =
        units.iter().enumerate().flat_map(|(i, u)| u.nodes.iter().map(move |n| (*n, i))).collect();
    let base = |n: NodeId| views.iter().find(|v| v.node == n).map_or(n, |v| v.base);
    let mut after: Vec<HashSet<usize>> = vec![HashSet::default(); units.len()];
    let mut waits = vec![0usize; units.len()];
    for (i, u) in units.iter().enumerate() {
        let deps: HashSet<usize> = u
            .nodes
            .iter()
            .flat_map(|n| g.operands(*n))
            .filter_map(|o| unit_of.get(&base(o)).copied())
            .filter(|d| *d != i)
            .collect();
        waits[i] = deps.len();
        for d in deps {
            after[d].insert(i);
        }
    }
    let loss = g.outputs.first().and_then(|o| unit_of.get(&base(o.node)).copied());
    let key = |i: usize| {
        let at = units[i].nodes.iter().map(|n| pos[n]);
        if Some(i) == loss {
            (0, 0)
        } else if after[i].is_empty() {
            (2, at.max().unwrap_or(0))
        } else {
            (1, at.min().unwrap_or(0))
        }
    };
    let mut ready: BinaryHeap<Reverse<((usize, usize), usize)>> =
        (0..units.len()).filter(|i| waits[*i] == 0).map(|i| Reverse((key(i), i))).collect();
    let mut order = Vec::with_capacity(units.len());
    while let Some(Reverse((_, i))) = ready.pop() {
        order.push(i);
        let mut next: Vec<usize> = after[i].iter().copied().collect();
        next.sort_unstable();
        for j in next {
            waits[j] -= 1;
            if waits[j] == 0 {
                ready.push(Reverse((key(j), j)));
            }
        }
    }
    assert_eq!(order.len(), units.len(), "the kernels of a verified graph wait on each other: a partition bug");
    let mut slots: Vec<Option<Unit>> = units.into_iter().map(Some).collect();
    order.into_iter().map(|i| slots[i].take().expect("each unit is scheduled once")).collect()
}

/// A unit's inputs, outputs and spans.
fn finish(g: &Graph, u: Unit, named: &HashSet<NodeId>) -> Kernel {
    let set: HashSet<NodeId> = u.nodes.iter().copied().collect();
    let mut inputs = Vec::new();
    for n in &u.nodes {
        for o in g.operands(*n) {
            if !set.contains(&o) && !inputs.contains(&o) {
                inputs.push(o);
            }
        }
    }
    let outputs =
        u.nodes.iter().copied().filter(|n| named.contains(n) || g.users(*n).iter().any(|x| !set.contains(x))).collect();
    let mut spans = Vec::new();
    for n in &u.nodes {
        if let Some(s) = g.node(*n).span {
            if !spans.contains(&s) {
                spans.push(s);
            }
        }
    }
    Kernel { kind: u.kind, nodes: u.nodes, inputs, outputs, space: u.space, reduction: u.reduction, spans }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::checked::{DataSource, Slice};
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
            let info = DataInfo {
                name: format!("x{i}"),
                elem: Elem::Float,
                shape: shape.clone(),
                source: DataSource::Columns(vec![]),
            };
            self.g.data.push(info);
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

    fn kinds(p: &Partition) -> Vec<(KernelKind, Vec<NodeId>)> {
        p.kernels.iter().map(|k| (k.kind, k.nodes.clone())).collect()
    }

    #[test]
    fn a_dense_layer_is_one_product_with_its_bias_and_activation() {
        // h = relu(x @ w + b), an output, then a sum of squares: the product takes add and relu;
        // the squares and their sum are one elementwise kernel.
        let mut b = B::new();
        let x = b.data(vec![k(4), k(3)]);
        let w = b.data(vec![k(3), k(5)]);
        let bias = b.data(vec![k(5)]);
        let m = b.node(Op::MatMul, vec![k(4), k(5)], &[x, w]);
        let a = b.bin(BinaryOp::Add, m, bias);
        let h = b.un(UnaryOp::Relu, a);
        let sq = b.un(UnaryOp::Square, h);
        let loss = b.sum(sq, vec![0, 1]);
        let g = b.finish(loss, &[h]);
        let p = partition(&g);
        assert_eq!(kinds(&p), vec![(KernelKind::MatMul, vec![m, a, h]), (KernelKind::Elementwise, vec![sq, loss])]);
        assert_eq!(p.kernels[0].inputs, vec![x, w, bias]);
        assert_eq!(p.kernels[0].outputs, vec![h]);
        assert_eq!(p.kernels[1].reduction, Some(loss));
        assert_eq!(p.kernels[1].outputs, vec![loss]);
    }

    #[test]
    fn a_value_with_two_users_inside_the_epilogue_is_not_written() {
        // z = m + b feeds relu and step, as in a training step: the product writes both.
        let mut b = B::new();
        let x = b.data(vec![k(4), k(3)]);
        let w = b.data(vec![k(3), k(5)]);
        let bias = b.data(vec![k(5)]);
        let m = b.node(Op::MatMul, vec![k(4), k(5)], &[x, w]);
        let z = b.bin(BinaryOp::Add, m, bias);
        let h = b.un(UnaryOp::Relu, z);
        let d = b.un(UnaryOp::Step, z);
        let loss = b.sum(x, vec![0, 1]);
        let g = b.finish(loss, &[h, d]);
        let p = partition(&g);
        // The loss reads only `x`: it runs first (rule 5).
        assert_eq!(kinds(&p), vec![(KernelKind::Reduce, vec![loss]), (KernelKind::MatMul, vec![m, z, h, d])]);
        assert_eq!(p.kernels[1].outputs, vec![h, d]);
    }

    #[test]
    fn what_only_the_rest_of_the_group_reads_stays_with_it() {
        // e = exp(m) feeds log(e) and e + log(e), summed: every member is read only by the
        // group's reduction or by members that are; the product stays alone.
        let mut b = B::new();
        let x = b.data(vec![k(2), k(3)]);
        let w = b.data(vec![k(3), k(2)]);
        let m = b.node(Op::MatMul, vec![k(2), k(2)], &[x, w]);
        let e = b.un(UnaryOp::Exp, m);
        let l = b.un(UnaryOp::Log, e);
        let s = b.bin(BinaryOp::Add, e, l);
        let loss = b.sum(s, vec![0, 1]);
        let g = b.finish(loss, &[]);
        let p = partition(&g);
        assert_eq!(kinds(&p), vec![(KernelKind::MatMul, vec![m]), (KernelKind::Elementwise, vec![e, l, s, loss])]);

        // A product used outside its users' group takes nothing: its value leaves the kernel
        // anyway, and an epilogue could wait on it through the outside.
        let mut b = B::new();
        let x = b.data(vec![k(2), k(3)]);
        let w = b.data(vec![k(3), k(2)]);
        let m = b.node(Op::MatMul, vec![k(2), k(2)], &[x, w]);
        let e = b.un(UnaryOp::Exp, m);
        let t = b.node(Op::Transpose { perm: vec![1, 0] }, vec![k(2), k(2)], &[m]);
        let a = b.bin(BinaryOp::Add, e, t);
        let loss = b.sum(a, vec![0, 1]);
        let g = b.finish(loss, &[]);
        let p = partition(&g);
        let mm = p.kernels.iter().find(|k| k.kind == KernelKind::MatMul).unwrap();
        assert_eq!(mm.nodes, vec![m]);
    }

    #[test]
    fn two_products_summed_give_the_sum_to_the_first() {
        let mut b = B::new();
        let x = b.data(vec![k(2), k(3)]);
        let w = b.data(vec![k(3), k(2)]);
        let m1 = b.node(Op::MatMul, vec![k(2), k(2)], &[x, w]);
        let m2 = b.node(Op::MatMul, vec![k(2), k(2)], &[x, w]);
        let s = b.bin(BinaryOp::Add, m1, m2);
        let t = b.un(UnaryOp::Tanh, s);
        let loss = b.sum(x, vec![0, 1]);
        let g = b.finish(loss, &[t]);
        let p = partition(&g);
        let products: Vec<_> = kinds(&p).into_iter().filter(|k| k.0 == KernelKind::MatMul).collect();
        assert_eq!(products, vec![(KernelKind::MatMul, vec![m2]), (KernelKind::MatMul, vec![m1, s, t])]);
        let first = p.kernels.iter().find(|k| k.nodes[0] == m1).unwrap();
        assert_eq!(first.inputs, vec![x, w, m2]);
    }

    #[test]
    fn a_member_reading_the_rest_of_its_group_stays_there() {
        // t = tanh(z) is in the group of a = m + t (same shape): taking a into the product would
        // make the product wait on the group and the group (through a) on the product.
        let mut b = B::new();
        let x = b.data(vec![k(2), k(3)]);
        let w = b.data(vec![k(3), k(2)]);
        let z = b.data(vec![k(2), k(2)]);
        let t = b.un(UnaryOp::Tanh, z);
        let m = b.node(Op::MatMul, vec![k(2), k(2)], &[x, w]);
        let a = b.bin(BinaryOp::Add, m, t);
        let loss = b.sum(a, vec![0, 1]);
        let g = b.finish(loss, &[]);
        let p = partition(&g);
        assert_eq!(kinds(&p), vec![(KernelKind::MatMul, vec![m]), (KernelKind::Elementwise, vec![t, a, loss])]);
    }

    #[test]
    fn reshapes_are_views_and_movement_is_copied() {
        let mut b = B::new();
        let x = b.data(vec![k(2), k(6)]);
        let r1 = b.node(Op::Reshape, vec![k(2), k(2), k(3)], &[x]);
        let r2 = b.node(Op::Reshape, vec![k(4), k(3)], &[r1]);
        let t = b.node(Op::Transpose { perm: vec![1, 0] }, vec![k(3), k(4)], &[r2]);
        let s = b.node(Op::Slice { items: vec![Slice::At(0)] }, vec![k(4)], &[t]);
        let c = b.node(Op::Concat { axis: 0 }, vec![k(8)], &[s, s]);
        let km = b.node(Op::KMax { k: 2 }, vec![k(8)], &[c]);
        let loss = b.sum(km, vec![0]);
        let g = b.finish(loss, &[]);
        let p = partition(&g);
        assert_eq!(
            p.views,
            vec![View { node: r1, base: x, transposed: false }, View { node: r2, base: x, transposed: false }]
        );
        assert_eq!(
            kinds(&p),
            vec![
                (KernelKind::Copy, vec![t]),
                (KernelKind::Copy, vec![s]),
                (KernelKind::Copy, vec![c]),
                (KernelKind::Select, vec![km]),
                (KernelKind::Reduce, vec![loss]),
            ]
        );
        assert_eq!(p.kernels[0].inputs, vec![r2]);
        assert_eq!(p.base(r2), x);
        assert_eq!(p.kernels[2].inputs, vec![s]);
    }
}

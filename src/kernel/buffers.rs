//! The buffer plan: where every stored value lives in one arena, decided before the run, so the
//! peak memory of a run is known before it starts.
//!
//! The rule:
//! - A value is stored if it is a leaf node (fed by the host) or a kernel output. Internal kernel
//!   values live in registers; a view reads its base's buffer. A parameter, datum or input the
//!   graph holds no node for (nothing reads it) gets no slot.
//! - Every element takes [`ELEMENT_BYTES`] bytes: `f32`, and integer labels as `f32` (exact below
//!   2²⁴) or `i32`. A value's size is its shape's element count (symbols sized by the caller's
//!   `sizes`) times that.
//! - Time is the kernel order. A kernel output lives from the kernel that writes it to the last
//!   kernel that reads it, directly or through a view; a graph output (or a value a graph output
//!   views) lives to the end, so the host can read it back. A leaf lives for the whole run.
//! - Each leaf has a slot of its own. Kernel outputs share slots: before kernel `k` runs, every
//!   slot whose value's last reader ran before `k` is free; then each output of `k`, in node
//!   order, takes the smallest free slot that holds it (best fit; ties to the lower index), else
//!   the largest free slot, grown to fit, else a new slot. A kernel never writes a slot it reads
//!   (its inputs are still alive while it runs), so no backend has to reason about aliasing,
//!   but for the updates below.
//! - An *update* `(leaf, output)` the caller names (a parameter and its new value in a training
//!   step) may write over the leaf: `output` then takes the leaf's slot instead of one of its own
//!   ([`plan_with_updates`]). Only where that is safe for any backend: `output` is an
//!   elementwise member of kernel `k` (a loop's member or a product's epilogue, not the product
//!   or the reduction) computed from `leaf`; `leaf`, `output` and `k`'s space have one shape;
//!   `k` reads `leaf` directly (no view of it) and not as a product's operand, so each element
//!   of the leaf is read at the element it is overwritten at, in the same iteration, before the
//!   store that depends on it; no kernel after `k` reads it and no graph output names it. This
//!   is the one place a kernel writes a slot it reads.
//! - A slot's size is the largest value it ever holds. Slots are laid out one after another in
//!   the arena, each at an offset aligned to [`SLOT_ALIGN`] bytes (a cache line, the widest vector
//!   load); `arena_bytes` is the arena's size.
//! - `peak_bytes` is the most bytes of values alive while one kernel runs (leaves included):
//!   a lower bound on any plan for this order, which `arena_bytes` meets or exceeds by what
//!   sharing cannot pack.

use super::partition::{KernelKind, Partition};
use crate::check::types::Dim;
use crate::ir::{Graph, NodeId};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// Bytes per element of every buffer.
pub const ELEMENT_BYTES: u64 = 4;
/// Alignment of every slot's offset in the arena.
pub const SLOT_ALIGN: u64 = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Byte offset in the arena, a multiple of [`SLOT_ALIGN`].
    pub offset: u64,
    /// The largest value it holds.
    pub bytes: u64,
    /// A leaf's own slot, written by the host.
    pub leaf: bool,
}

/// A value with a buffer: where it lives and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    pub node: NodeId,
    pub slot: usize,
    pub bytes: u64,
    /// The kernel that writes it (0 for a leaf).
    pub first: usize,
    /// The last kernel that reads it; the number of kernels when it lives to the end (leaves,
    /// graph outputs).
    pub last: usize,
    /// It writes over the leaf whose slot it has (an update): no bytes of its own.
    pub in_place: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct BufferPlan {
    pub slots: Vec<Slot>,
    /// Every stored value: the leaves in topological order, then kernel outputs in execution order.
    pub values: Vec<Stored>,
    /// The most bytes alive while one kernel runs, leaves included.
    pub peak_bytes: u64,
    /// The kernel at which `peak_bytes` is reached (the first such); `None` with no kernels.
    pub peak_kernel: Option<usize>,
    /// The bytes of the leaves' slots (data, parameters, inputs, constants).
    pub leaf_bytes: u64,
    /// The size of the arena holding every slot.
    pub arena_bytes: u64,
    /// The slot of every stored value and view.
    slot_of: HashMap<NodeId, usize>,
}

impl BufferPlan {
    /// The slot holding `id`'s value (a view's is its base's); `None` for a value internal to a
    /// kernel.
    pub fn slot(&self, id: NodeId) -> Option<usize> {
        self.slot_of.get(&id).copied()
    }

    /// The bytes alive while kernel `k` runs.
    pub fn live_bytes(&self, k: usize) -> u64 {
        self.values.iter().filter(|v| v.first <= k && k <= v.last && !v.in_place).map(|v| v.bytes).sum()
    }

    /// The updates written in place, as `(leaf, output)`.
    pub fn in_place(&self) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
        let leaf_of = |slot: usize| self.values.iter().find(|l| l.slot == slot && !l.in_place).map(|l| l.node);
        self.values.iter().filter(|v| v.in_place).filter_map(move |v| Some((leaf_of(v.slot)?, v.node)))
    }
}

/// The bytes of a value of shape `shape`.
fn bytes_of(shape: &[Dim], sizes: &impl Fn(Dim) -> u64) -> u64 {
    shape.iter().map(|d| sizes(*d)).product::<u64>() * ELEMENT_BYTES
}

/// Plans the buffers of `p`, a partition of `g`, with every symbolic size given by `sizes`. The
/// rule is in this file's header.
pub fn plan(g: &Graph, p: &Partition, sizes: impl Fn(Dim) -> u64) -> BufferPlan {
    plan_with_updates(g, p, sizes, &[])
}

/// [`plan`], with each update `(leaf, output)` that may be written in place taking its leaf's
/// slot (the rule in this file's header); the others get slots of their own as in [`plan`].
pub fn plan_with_updates(
    g: &Graph,
    p: &Partition,
    sizes: impl Fn(Dim) -> u64,
    updates: &[(NodeId, NodeId)],
) -> BufferPlan {
    let n = p.kernels.len();
    let named: HashSet<NodeId> = g.outputs.iter().map(|o| p.base(o.node)).collect();
    // The last kernel reading each stored value, through views.
    let mut last_read: HashMap<NodeId, usize> = HashMap::default();
    for (k, kernel) in p.kernels.iter().enumerate() {
        for i in &kernel.inputs {
            last_read.insert(p.base(*i), k);
        }
    }
    let named_leaf: HashSet<NodeId> = g.outputs.iter().map(|o| p.base(o.node)).collect();
    let mut over: HashMap<NodeId, NodeId> = HashMap::default();
    let kernel_of = if updates.is_empty() { HashMap::default() } else { p.kernel_of() };
    for &(leaf, out) in updates {
        let fresh = !over.contains_key(&out) && !over.values().any(|l| *l == leaf);
        let ok = |k: usize| in_place_ok(g, p, leaf, out, k, &last_read);
        if fresh
            && g.node(leaf).op.is_leaf()
            && !named_leaf.contains(&leaf)
            && kernel_of.get(&out).is_some_and(|k| ok(*k))
        {
            over.insert(out, leaf);
        }
    }
    let mut slots: Vec<Slot> = Vec::new();
    let mut values: Vec<Stored> = Vec::new();
    let mut leaf_slot: HashMap<NodeId, usize> = HashMap::default();
    for id in g.topo_order() {
        if g.node(id).op.is_leaf() {
            let bytes = bytes_of(&g.node(id).shape, &sizes);
            leaf_slot.insert(id, slots.len());
            values.push(Stored { node: id, slot: slots.len(), bytes, first: 0, last: n, in_place: false });
            slots.push(Slot { offset: 0, bytes, leaf: true });
        }
    }
    let leaf_bytes = values.iter().map(|v| v.bytes).sum();
    let mut free: Vec<usize> = Vec::new();
    // Shared slots to free before each kernel: those whose value was last read by the one before.
    let mut release: Vec<Vec<usize>> = vec![Vec::new(); n + 1];
    for (k, kernel) in p.kernels.iter().enumerate() {
        free.extend(std::mem::take(&mut release[k]));
        for &out in &kernel.outputs {
            let bytes = bytes_of(&g.node(out).shape, &sizes);
            let last = if named.contains(&out) { n } else { last_read.get(&out).copied().unwrap_or(k) };
            if let Some(leaf) = over.get(&out) {
                values.push(Stored { node: out, slot: leaf_slot[leaf], bytes, first: k, last, in_place: true });
                continue;
            }
            let slot = take_slot(&mut slots, &mut free, bytes);
            values.push(Stored { node: out, slot, bytes, first: k, last, in_place: false });
            if last < n {
                release[last + 1].push(slot);
            }
        }
    }
    let mut offset = 0;
    for s in &mut slots {
        s.offset = offset;
        offset = (offset + s.bytes).div_ceil(SLOT_ALIGN) * SLOT_ALIGN;
    }
    let mut slot_of: HashMap<NodeId, usize> = values.iter().map(|v| (v.node, v.slot)).collect();
    for v in &p.views {
        if let Some(s) = slot_of.get(&v.base).copied() {
            slot_of.insert(v.node, s);
        }
    }
    let mut plan = BufferPlan {
        slots,
        values,
        peak_bytes: leaf_bytes,
        peak_kernel: None,
        leaf_bytes,
        arena_bytes: offset,
        slot_of,
    };
    for k in 0..n {
        let live = plan.live_bytes(k);
        if plan.peak_kernel.is_none() || live > plan.peak_bytes {
            plan.peak_bytes = live;
            plan.peak_kernel = Some(k);
        }
    }
    plan
}

/// Whether `out`, computed by kernel `k`, may overwrite `leaf` in place (the rule in this file's
/// header).
fn in_place_ok(
    g: &Graph,
    p: &Partition,
    leaf: NodeId,
    out: NodeId,
    k: usize,
    last_read: &HashMap<NodeId, usize>,
) -> bool {
    let kernel = &p.kernels[k];
    let member = match kernel.kind {
        KernelKind::Elementwise => kernel.reduction != Some(out),
        KernelKind::MatMul => kernel.nodes[0] != out && !g.operands(kernel.nodes[0]).iter().any(|x| p.base(*x) == leaf),
        _ => false,
    };
    // `out` is computed from `leaf`: whatever order a backend gives the kernel's loads and
    // stores, the leaf's element is read before `out`'s is written over it.
    let mut from_leaf = false;
    let mut todo = vec![out];
    let mut seen = HashSet::default();
    while let Some(x) = todo.pop() {
        for o in g.operands(x) {
            if o == leaf {
                from_leaf = true;
            } else if kernel.nodes.contains(&o) && seen.insert(o) {
                todo.push(o);
            }
        }
    }
    let shape = &g.node(out).shape;
    member
        && from_leaf
        && kernel.outputs.contains(&out)
        && *shape == kernel.space
        && g.node(leaf).shape == *shape
        && kernel.inputs.contains(&leaf)
        && !kernel.inputs.iter().any(|x| *x != leaf && p.base(*x) == leaf)
        && last_read.get(&leaf).is_none_or(|last| *last <= k)
}

/// The free slot a value of `bytes` takes (removed from `free`), or a new one.
fn take_slot(slots: &mut Vec<Slot>, free: &mut Vec<usize>, bytes: u64) -> usize {
    let fits =
        free.iter().enumerate().filter(|(_, s)| slots[**s].bytes >= bytes).min_by_key(|(_, s)| (slots[**s].bytes, **s));
    let pick = match fits {
        Some((i, _)) => Some(i),
        None => free.iter().enumerate().max_by_key(|(_, s)| (slots[**s].bytes, std::cmp::Reverse(**s))).map(|(i, _)| i),
    };
    match pick {
        Some(i) => {
            let s = free.swap_remove(i);
            slots[s].bytes = slots[s].bytes.max(bytes);
            s
        }
        None => {
            slots.push(Slot { offset: 0, bytes, leaf: false });
            slots.len() - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::checked::DataSource;
    use crate::check::types::Elem;
    use crate::ir::graph::{DataInfo, Node, Output};
    use crate::ir::op::{Op, ReduceOp, UnaryOp};
    use crate::kernel::partition;

    fn k(n: u64) -> Dim {
        Dim::Known(n)
    }

    fn node(g: &mut Graph, op: Op, shape: Vec<Dim>, xs: &[NodeId]) -> NodeId {
        g.add(Node { op, elem: Elem::Float, shape, span: None, label: None }, xs)
    }

    /// x → t₁ = transpose → t₂ = transpose → t₃ = transpose → sum: three copies in a row, each
    /// dead once the next has run.
    fn chain() -> (Graph, [NodeId; 5]) {
        let mut g = Graph::default();
        g.syms = vec!["N".into()];
        let n = Dim::Sym(crate::check::types::SymId(0));
        g.data.push(DataInfo {
            name: "x".into(),
            elem: Elem::Float,
            shape: vec![n, k(8)],
            source: DataSource::Columns(vec![]),
        });
        let x = node(&mut g, Op::Data(0), vec![n, k(8)], &[]);
        let t1 = node(&mut g, Op::Transpose { perm: vec![1, 0] }, vec![k(8), n], &[x]);
        let e = node(&mut g, Op::Unary(UnaryOp::Exp), vec![k(8), n], &[t1]);
        let t2 = node(&mut g, Op::Transpose { perm: vec![1, 0] }, vec![n, k(8)], &[e]);
        let s = node(&mut g, Op::Reduce { f: ReduceOp::Sum, axes: vec![0, 1], keepdims: false }, vec![], &[t2]);
        g.outputs.push(Output { name: "loss".into(), node: s });
        crate::ir::verify::verify(&g).unwrap();
        (g, [x, t1, e, t2, s])
    }

    #[test]
    fn dead_values_give_their_slot_to_later_ones() {
        let (g, [x, t1, e, t2, s]) = chain();
        let p = partition(&g);
        let plan = plan(&g, &p, |d| if let Dim::Known(n) = d { n } else { 10 });
        // x has its own slot; t1 (kernel 0) dies after e (kernel 1) reads it, so t2 (kernel 2)
        // takes t1's slot; e dies after kernel 2; the scalar s takes e's slot.
        let slot = |id| plan.slot(id).unwrap();
        assert_eq!(plan.slots.len(), 3, "{plan:?}");
        assert!(plan.slots[slot(x)].leaf);
        assert_ne!(slot(t1), slot(e));
        assert_eq!(slot(t2), slot(t1));
        assert_eq!(slot(s), slot(e));
        assert_eq!(plan.leaf_bytes, 320);
        // While kernel 1 or 2 runs: x, and two [8, 10] values.
        assert_eq!(plan.peak_bytes, 320 * 3);
        assert_eq!(plan.peak_kernel, Some(1));
        assert_eq!(plan.arena_bytes, 3 * 320);
        assert!(plan.slots.iter().all(|s| s.offset % SLOT_ALIGN == 0));
    }

    /// `w` (an input) and its update `w − 0.5·exp(w)`, with a transpose of `w` as a second
    /// output made before or after the update: the transpose, a sink too, runs in the order its
    /// node was made (`partition.rs`, rule 5).
    fn update(transpose_first: bool) -> (Graph, NodeId, NodeId) {
        use crate::ir::graph::InputInfo;
        use crate::ir::op::BinaryOp;
        let mut g = Graph::default();
        g.inputs.push(InputInfo { name: "w".into(), shape: vec![4, 8] });
        let w = node(&mut g, Op::Input(0), vec![k(4), k(8)], &[]);
        let mut t = None;
        if transpose_first {
            t = Some(node(&mut g, Op::Transpose { perm: vec![1, 0] }, vec![k(8), k(4)], &[w]));
        }
        let e = node(&mut g, Op::Unary(UnaryOp::Exp), vec![k(4), k(8)], &[w]);
        let half = node(&mut g, Op::Const(0.5), vec![], &[]);
        let step = node(&mut g, Op::Binary(BinaryOp::Mul), vec![k(4), k(8)], &[e, half]);
        let new = node(&mut g, Op::Binary(BinaryOp::Sub), vec![k(4), k(8)], &[w, step]);
        let t = t.unwrap_or_else(|| node(&mut g, Op::Transpose { perm: vec![1, 0] }, vec![k(8), k(4)], &[w]));
        let loss = node(&mut g, Op::Const(0.0), vec![], &[]);
        g.outputs.push(Output { name: "loss".into(), node: loss });
        g.outputs.push(Output { name: "new.w".into(), node: new });
        g.outputs.push(Output { name: "t".into(), node: t });
        crate::ir::verify::verify(&g).unwrap();
        (g, w, new)
    }

    #[test]
    fn an_update_takes_its_leafs_slot_when_nothing_reads_the_leaf_after_it() {
        let (g, w, new) = update(true);
        let p = partition(&g);
        let alone = plan(&g, &p, |d| if let Dim::Known(n) = d { n } else { 10 });
        let over = plan_with_updates(&g, &p, |d| if let Dim::Known(n) = d { n } else { 10 }, &[(w, new)]);
        assert_eq!(over.in_place().collect::<Vec<_>>(), vec![(w, new)]);
        assert_eq!(over.slot(new), over.slot(w));
        assert_eq!(over.slots.len() + 1, alone.slots.len(), "no slot of its own");
        assert_eq!(over.peak_bytes + 128, alone.peak_bytes, "a [4, 8] value less");
        // The transpose made after the update runs after it and reads `w`: no update in place.
        let (g, w, new) = update(false);
        let p = partition(&g);
        let last = p.kernels.iter().position(|k| k.outputs.contains(&new)).unwrap();
        assert!(p.kernels[last + 1..].iter().any(|k| k.inputs.contains(&w)));
        let plan = plan_with_updates(&g, &p, |d| if let Dim::Known(n) = d { n } else { 10 }, &[(w, new)]);
        assert_eq!(plan.in_place().count(), 0);
        assert_ne!(plan.slot(new), plan.slot(w));
    }

    #[test]
    fn graph_outputs_live_to_the_end() {
        let (mut g, [_, t1, ..]) = chain();
        g.outputs.push(Output { name: "t1".into(), node: t1 });
        let p = partition(&g);
        let plan = plan(&g, &p, |d| if let Dim::Known(n) = d { n } else { 10 });
        let v = plan.values.iter().find(|v| v.node == t1).unwrap();
        assert_eq!(v.last, p.kernels.len());
        assert_eq!(plan.slots.len(), 4);
    }
}

//! The arena layout of one binding of the symbolic sizes: every node's concrete shape, the
//! buffer plan (with the carried updates it writes in place), and whether the run needs threads.

use super::bands::PARALLEL_ELEMENTS;
use crate::backend::cpu::matmul;
use crate::check::types::Dim;
use crate::interp::{HostTensor, InterpError};
use crate::ir::{Graph, NodeId};
use crate::kernel::{self, BufferPlan, KernelKind, Partition};

/// The arena layout for one binding of the symbolic sizes.
pub(super) struct Layout {
    pub(super) plan: BufferPlan,
    /// Concrete shape of every node, indexed by `NodeId::index()`.
    pub(super) shapes: Vec<Vec<usize>>,
    /// Whether some kernel is big enough to run on several threads.
    pub(super) threaded: bool,
    /// The first kernel writing a carried output over its leaf (`kernel::plan_with_updates`):
    /// the loss, computed before it, is checked there.
    pub(super) in_place_from: Option<usize>,
}

/// The size `d` stands for in this binding.
pub(super) fn dim(g: &Graph, d: Dim, sizes: &[Option<usize>]) -> Result<usize, InterpError> {
    match d {
        Dim::Known(n) => Ok(n as usize),
        Dim::Sym(s) => sizes.get(s.0 as usize).copied().flatten().ok_or_else(|| {
            InterpError::Graph(format!(
                "no datum fixes the size `{}`",
                g.syms.get(s.0 as usize).map_or("?", String::as_str)
            ))
        }),
        Dim::Any => Err(InterpError::Graph("a node has an unknown size (`Dim::Any`)".into())),
    }
}

/// Concrete shapes of every node and the buffer plan for one binding.
pub(super) fn layout(
    g: &Graph,
    p: &Partition,
    sizes: &[Option<usize>],
    updates: &[(NodeId, NodeId)],
) -> Result<Layout, InterpError> {
    let slots = g.node_ids().iter().map(|n| n.index() + 1).max().unwrap_or(0);
    let mut shapes = vec![Vec::new(); slots];
    for id in g.node_ids() {
        shapes[id.index()] = crate::interp::bind::concrete(g, id, sizes)?;
    }
    let plan = kernel::plan_with_updates(g, p, |d| dim(g, d, sizes).unwrap_or(0) as u64, updates);
    let kernel_of = p.kernel_of();
    let in_place_from = plan.in_place().filter_map(|(_, o)| kernel_of.get(&o).copied()).min();
    let elements = |s: &[usize]| s.iter().product::<usize>();
    let threaded = p.kernels.iter().any(|k| match k.kind {
        KernelKind::MatMul => {
            let m = k.nodes[0];
            let inner = g.operands(m).first().and_then(|a| shapes[a.index()].last().copied()).unwrap_or(0);
            elements(&shapes[m.index()]) * inner >= matmul::PARALLEL_FLOPS
        }
        KernelKind::Elementwise | KernelKind::Reduce => {
            k.nodes.first().and_then(|n| g.operands(*n).first().copied()).map_or(0, |x| elements(&shapes[x.index()]))
                >= PARALLEL_ELEMENTS
        }
        KernelKind::Copy | KernelKind::Select | KernelKind::OneHot => false,
    });
    Ok(Layout { plan, shapes, threaded, in_place_from })
}

/// The interpreter's boundary checks: the same errors for the same mistakes.
pub(super) fn bind(
    g: &Graph,
    data: &[HostTensor],
    params: &[Vec<f64>],
    inputs: &[Vec<f64>],
) -> Result<Vec<Option<usize>>, InterpError> {
    let sizes = crate::interp::bind::bind(g, data, params)?;
    crate::interp::bind::check_inputs(g, inputs)?;
    Ok(sizes)
}

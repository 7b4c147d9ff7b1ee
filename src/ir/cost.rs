//! A cost model for graphs: arithmetic (floating-point operations) and memory (values written),
//! with every symbolic size set to a given number. Used by `circ graph --stats` to compare the
//! gradient and bprop2 graphs (BRIEF §2.4 asks bprop2 to stay near 2× the gradient).

use super::graph::Graph;
use super::op::{Op, ReduceOp};
use crate::check::types::Dim;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    /// Floating-point operations: one per element of an elementwise op, 2·m·n·k for a matrix
    /// product, one per input element of a reduction, a few per element of logsumexp.
    pub flops: f64,
    /// Elements written by every non-leaf node: the memory traffic of the results, and the
    /// storage the graph needs if no buffer is reused.
    pub values: f64,
    pub nodes: usize,
}

fn elements(shape: &[Dim], sym: f64) -> f64 {
    shape.iter().map(|d| if let Dim::Known(n) = d { *n as f64 } else { sym }).product()
}

/// The cost of `g` with every symbolic size equal to `sym`.
pub fn cost(g: &Graph, sym: f64) -> Cost {
    let mut c = Cost { nodes: g.len(), ..Cost::default() };
    for id in g.node_ids() {
        let n = g.node(id);
        if n.op.is_leaf() {
            continue;
        }
        let out = elements(&n.shape, sym);
        let input = |k: usize| g.operands(id).get(k).map_or(0.0, |o| elements(&g.node(*o).shape, sym));
        c.values += out;
        c.flops += match &n.op {
            Op::MatMul => {
                // 2·(output elements)·(contracted size)
                let a = &g.node(g.operands(id)[0]).shape;
                let k = a.last().map_or(1.0, |d| elements(&[*d], sym));
                2.0 * out * k
            }
            Op::Reduce { f: ReduceOp::Sum | ReduceOp::Mean | ReduceOp::Max, .. } => input(0),
            Op::LogSumExp { .. } => 4.0 * input(0),
            Op::Unary(_) | Op::Binary(_) | Op::KMax { .. } | Op::KMaxMask { .. } => out,
            // Moves and copies cost memory, not arithmetic.
            Op::Reshape
            | Op::Transpose { .. }
            | Op::Concat { .. }
            | Op::Slice { .. }
            | Op::Embed { .. }
            | Op::Expand
            | Op::OneHot { .. }
            | Op::Cast => 0.0,
            Op::Data(_) | Op::Param(_) | Op::Input(_) | Op::Const(_) => 0.0,
        };
    }
    c
}

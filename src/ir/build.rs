//! Building nodes whose type follows from their operands (the shape rule in `shape.rs`), as
//! autodiff and passes do. Node ids stay valid; nothing here removes nodes.

use super::graph::{Graph, Node, NodeId, Origin};
use super::op::{BinaryOp, Op, ReduceOp, UnaryOp};
use super::shape::infer;
use crate::check::types::{Dim, Elem};

impl Graph {
    /// Adds `op` on `operands`, typed by the op's shape rule. `target` is the node's shape for ops
    /// whose shape is not determined by their operands (`Reshape`, `Expand`, `Embed`).
    pub fn push(&mut self, op: Op, operands: &[NodeId], target: Option<Vec<Dim>>, span: Option<Origin>) -> NodeId {
        let shapes: Vec<(Elem, Vec<Dim>)> =
            operands.iter().map(|o| (self.node(*o).elem, self.node(*o).shape.clone())).collect();
        let views: Vec<(Elem, &[Dim])> = shapes.iter().map(|(e, s)| (*e, s.as_slice())).collect();
        let current = target.unwrap_or_default();
        let known = |s: &[u64]| s.iter().map(|n| Dim::Known(*n)).collect::<Vec<Dim>>();
        let leaf = match op {
            Op::Input(i) => Some((Elem::Float, known(&self.inputs[i].shape))),
            Op::Param(i) => Some((Elem::Float, known(&self.params[i].shape))),
            Op::Data(i) => Some((self.data[i].elem, self.data[i].shape.clone())),
            _ => None,
        };
        let (elem, shape) = match leaf.map_or_else(|| infer(&op, &views, &current), Ok) {
            Ok(t) => t,
            // Callers build from verified graphs with the rules' own shapes: a failure is a bug.
            Err(e) => panic!("building {} on {shapes:?}: {e}", op.name()),
        };
        self.add(Node { op, elem, shape, span, label: None }, operands)
    }

    pub fn constant(&mut self, c: f64, span: Option<Origin>) -> NodeId {
        self.push(Op::Const(c), &[], None, span)
    }

    pub fn unary(&mut self, f: UnaryOp, x: NodeId, span: Option<Origin>) -> NodeId {
        self.push(Op::Unary(f), &[x], None, span)
    }

    pub fn binary(&mut self, f: BinaryOp, x: NodeId, y: NodeId, span: Option<Origin>) -> NodeId {
        self.push(Op::Binary(f), &[x, y], None, span)
    }

    pub fn shape_of(&self, id: NodeId) -> Vec<Dim> {
        self.node(id).shape.clone()
    }

    /// `x` reshaped (same elements) to `shape`; `x` itself when it already has that shape.
    pub fn reshape_to(&mut self, x: NodeId, shape: Vec<Dim>, span: Option<Origin>) -> NodeId {
        if self.node(x).shape == shape {
            return x;
        }
        self.push(Op::Reshape, &[x], Some(shape), span)
    }

    /// `x` broadcast to `shape`; `x` itself when it already has that shape.
    pub fn expand_to(&mut self, x: NodeId, shape: Vec<Dim>, span: Option<Origin>) -> NodeId {
        if self.node(x).shape == shape {
            return x;
        }
        self.push(Op::Expand, &[x], Some(shape), span)
    }

    /// The adjoint of broadcasting: sums `x` over the axes along which a tensor of `shape` was
    /// broadcast to `x`'s shape.
    pub fn sum_to(&mut self, x: NodeId, shape: &[Dim], span: Option<Origin>) -> NodeId {
        let xs = self.shape_of(x);
        if xs == shape {
            return x;
        }
        let lead = xs.len() - shape.len();
        let axes: Vec<usize> = (0..xs.len())
            .filter(|&k| k < lead || (shape[k - lead] == Dim::Known(1) && xs[k] != Dim::Known(1)))
            .collect();
        let r = if axes.is_empty() {
            x
        } else {
            self.push(Op::Reduce { f: ReduceOp::Sum, axes, keepdims: true }, &[x], None, span)
        };
        self.reshape_to(r, shape.to_vec(), span)
    }

    /// Zeros of `shape`.
    pub fn zeros(&mut self, shape: Vec<Dim>, span: Option<Origin>) -> NodeId {
        let z = self.constant(0.0, span);
        self.expand_to(z, shape, span)
    }
}

//! The reference interpreter: runs a verified [`Graph`] on the CPU, in `f32` or `f64`, one node at
//! a time in topological order, with the op semantics written in `ir/op.rs`. It is the oracle every
//! backend and pass is checked against, so it is written for clarity, not speed (matmul is the
//! plain triple loop), and every value it computes can be kept ([`run_all`]) to find the first node
//! that went NaN ([`first_non_finite`]).
//!
//! The boundary is checked first (`bind.rs`): one data tensor per `Graph::data` entry whose rank
//! and known sizes match the declaration, each symbolic size (`N`) bound consistently across the
//! data, integer data holding integers, one value vector of the right length per parameter. Then
//! every node's shape is made concrete and its value computed (`ops.rs`); a value whose shape is
//! not the node's is an error, never a silent broadcast.
//!
//! Where `ir/op.rs` leaves a corner open, the interpreter decides as numpy does, and says so here:
//! - NaN propagates through `relu`, `max` reductions, `softplus` and `logsumexp`;
//! - a `max` over an axis of size 0 (possible only through a symbol bound to 0) is −∞, and a
//!   `logsumexp` over one is −∞ (log 0); a `mean` over one is NaN (0/0);
//! - slice positions may be negative (counted from the end); positions past the end of an axis
//!   are an error at run time (an axis of symbolic size may be shorter than a slice of it);
//! - integer tensors are held as reals with integer values (exact up to 2²⁴ in `f32`).
//!
//! Architecture Invariant: the interpreter reads shapes from the nodes and never rewrites the
//! graph; it shares no kernel code with any backend, so that it can check them.

pub(crate) mod bind;
mod error;
pub mod ops;
mod real;
mod tensor;

#[cfg(test)]
mod tests;

pub use bind::HostTensor;
pub use error::InterpError;
pub use real::Real;
pub use tensor::Tensor;

use crate::ir::{Graph, NodeId, Op};

/// The value of every node, with the order they were computed in.
#[derive(Clone, Debug)]
pub struct Values<T> {
    order: Vec<NodeId>,
    /// Indexed by `NodeId::index()`; `None` for ids not in the graph.
    tensors: Vec<Option<Tensor<T>>>,
}

impl<T: Real> Values<T> {
    pub fn get(&self, id: NodeId) -> Option<&Tensor<T>> {
        self.tensors.get(id.index()).and_then(Option::as_ref)
    }

    /// The nodes in the (topological) order they were computed.
    pub fn order(&self) -> &[NodeId] {
        &self.order
    }

    /// Every node and its value, in computation order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, &Tensor<T>)> + '_ {
        self.order.iter().filter_map(|id| self.get(*id).map(|t| (*id, t)))
    }

    /// The first node, in computation order, whose value holds a NaN or an infinity.
    pub fn first_non_finite(&self) -> Option<NodeId> {
        self.iter().find(|(_, t)| !t.all_finite()).map(|(id, _)| id)
    }

    /// The first node, in computation order, among `node` and the nodes it depends on, whose
    /// value holds a NaN or an infinity: where a non-finite value of `node` started (its
    /// operands are all finite).
    pub fn first_non_finite_behind(&self, g: &crate::ir::Graph, node: NodeId) -> Option<NodeId> {
        let mut needed = vec![false; self.tensors.len().max(node.index() + 1)];
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            if n.index() < needed.len() && !needed[n.index()] {
                needed[n.index()] = true;
                stack.extend(g.operands(n));
            }
        }
        self.iter()
            .find(|(id, t)| needed.get(id.index()).copied().unwrap_or(false) && !t.all_finite())
            .map(|(id, _)| id)
    }
}

/// The first node, in topological order, whose value holds a NaN or an infinity: where a
/// non-finite loss started. Its operands are all finite.
pub fn first_non_finite<T: Real>(values: &Values<T>) -> Option<NodeId> {
    values.first_non_finite()
}

/// The graph's named outputs, in `Graph::outputs` order (the loss first).
#[derive(Clone, Debug)]
pub struct Outputs<T> {
    entries: Vec<(String, Tensor<T>)>,
}

impl<T: Real> Outputs<T> {
    /// Outputs computed elsewhere (a compiled backend), by name in `Graph::outputs` order.
    pub fn from_entries(entries: Vec<(String, Tensor<T>)>) -> Outputs<T> {
        Outputs { entries }
    }

    pub fn get(&self, name: &str) -> Option<&Tensor<T>> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The total loss, `outputs[0]`, as `f64`. Panics if the graph has no outputs (a verified
    /// graph always has the loss).
    pub fn loss(&self) -> f64 {
        let (_, t) = self.entries.first().expect("a verified graph has a loss output");
        t.data[0].to_f64()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor<T>)> + '_ {
        self.entries.iter().map(|(n, t)| (n.as_str(), t))
    }
}

/// Runs `g` on the given data (one per `g.data`, in order) and parameter values (one per
/// `g.params`, row-major) and returns its named outputs.
pub fn run<T: Real>(g: &Graph, data: &[HostTensor], params: &[Vec<f64>]) -> Result<Outputs<T>, InterpError> {
    run_with(g, data, params, &[])
}

/// [`run`] for a graph with extra inputs (`g.inputs`: tangent directions, optimizer state).
pub fn run_with<T: Real>(
    g: &Graph,
    data: &[HostTensor],
    params: &[Vec<f64>],
    inputs: &[Vec<f64>],
) -> Result<Outputs<T>, InterpError> {
    let values = run_all_with::<T>(g, data, params, inputs)?;
    let mut entries = Vec::with_capacity(g.outputs.len());
    for o in &g.outputs {
        let t = values.get(o.node).ok_or_else(|| InterpError::Graph(format!("output `{}` names no node", o.name)))?;
        entries.push((o.name.clone(), t.clone()));
    }
    Ok(Outputs { entries })
}

/// Runs `g` and keeps the value of every node.
pub fn run_all<T: Real>(g: &Graph, data: &[HostTensor], params: &[Vec<f64>]) -> Result<Values<T>, InterpError> {
    run_all_with(g, data, params, &[])
}

/// [`run_all`] for a graph with extra inputs.
pub fn run_all_with<T: Real>(
    g: &Graph,
    data: &[HostTensor],
    params: &[Vec<f64>],
    inputs: &[Vec<f64>],
) -> Result<Values<T>, InterpError> {
    let sizes = bind::bind(g, data, params)?;
    bind::check_inputs(g, inputs)?;
    let order = g.topo_order();
    if order.len() != g.len() {
        return Err(InterpError::Graph("the graph has a cycle".into()));
    }
    let slots = g.node_ids().iter().map(|n| n.index() + 1).max().unwrap_or(0);
    let mut tensors: Vec<Option<Tensor<T>>> = vec![None; slots];
    for &id in &order {
        let node = g.node(id);
        let fail =
            |message: String| InterpError::Node { node: id, op: node.op.name(), label: node.label.clone(), message };
        let shape = bind::concrete(g, id, &sizes)?;
        let ids = g.operands(id);
        if let Some(a) = node.op.arity() {
            if a != ids.len() {
                return Err(fail(format!("has {} operands, needs {a}", ids.len())));
            }
        }
        // Operands come first in topological order, so each has its value already.
        let operands: Vec<&Tensor<T>> = ids.iter().map(|o| tensors[o.index()].as_ref().expect("computed")).collect();
        let value = eval(g, &node.op, &operands, &shape, data, params, inputs).map_err(fail)?;
        if value.shape != shape {
            let (got, want) = (error::show_shape(&value.shape), error::show_shape(&shape));
            return Err(fail(format!("computed a value of shape {got}, the node's shape is {want}")));
        }
        tensors[id.index()] = Some(value);
    }
    Ok(Values { order, tensors })
}

/// The value of one node from its operands' values.
fn eval<T: Real>(
    g: &Graph,
    op: &Op,
    x: &[&Tensor<T>],
    shape: &[usize],
    data: &[HostTensor],
    params: &[Vec<f64>],
    inputs: &[Vec<f64>],
) -> Result<Tensor<T>, String> {
    let convert = |v: &[f64]| v.iter().map(|v| T::from_f64(*v)).collect::<Vec<T>>();
    match op {
        Op::Data(i) => {
            let d = data.get(*i).ok_or_else(|| format!("data #{i} does not exist"))?;
            Ok(Tensor { shape: d.shape.clone(), data: convert(&d.values) })
        }
        Op::Param(i) => {
            let (info, p) =
                g.params.get(*i).zip(params.get(*i)).ok_or_else(|| format!("parameter #{i} does not exist"))?;
            Ok(Tensor { shape: info.shape.iter().map(|n| *n as usize).collect(), data: convert(p) })
        }
        Op::Input(i) => {
            let (info, v) = g.inputs.get(*i).zip(inputs.get(*i)).ok_or_else(|| format!("input #{i} does not exist"))?;
            Ok(Tensor { shape: info.shape.iter().map(|n| *n as usize).collect(), data: convert(v) })
        }
        Op::Const(c) => Ok(Tensor::scalar(T::from_f64(*c))),
        _ => ops::apply(op, x, shape),
    }
}

//! Automatic differentiation as graph transforms: every derivative is new nodes in the same IR.
//!
//! - `reverse`: gradients (one rule per op, written in IR ops).
//! - `forward`: tangents (JVP), and with them Hessian-vector products, forward over reverse.
//! - `bprop2`: the diagonal second-order backprop of BRIEF §2.4, next to the gradient.
//!
//! The functions here add named outputs: `grad.<param>`, `hvp.<param>`, `curv.<param>`.

pub mod bprop2;
pub mod forward;
pub mod reverse;

use crate::ir::graph::{InputInfo, Output};
use crate::ir::op::Op;
use crate::ir::{Graph, NodeId};
use std::collections::HashMap;

/// The node holding parameter `i`, if the graph still has one (an unused parameter has none).
pub fn param_node(g: &Graph, i: usize) -> Option<NodeId> {
    g.node_ids().into_iter().find(|n| g.node(*n).op == Op::Param(i))
}

/// Adds the gradient of the loss with respect to every parameter as outputs `grad.<name>`, in
/// parameter order, and returns them. A parameter the loss does not depend on gets zeros.
pub fn add_param_gradients(g: &mut Graph) -> Vec<NodeId> {
    let nodes: Vec<Option<NodeId>> = (0..g.params.len()).map(|i| param_node(g, i)).collect();
    let wrt: Vec<NodeId> = nodes.iter().flatten().copied().collect();
    let loss = g.loss();
    let cot = reverse::gradients(g, loss, &wrt);
    let mut out = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let grad = match n.and_then(|n| cot.get(&n).copied()) {
            Some(gr) => gr,
            None => g.zeros(param_shape(g, i), None),
        };
        let name = format!("grad.{}", g.params[i].name);
        g.outputs.push(Output { name, node: grad });
        out.push(grad);
    }
    // The sweep differentiates every node on a path; keep only what the outputs read.
    crate::passes::dce::run(g);
    out
}

/// Adds Hessian-vector products: one extra input `v.<name>` per parameter (the direction) and
/// outputs `hvp.<name>` = (∇²loss · v) restricted to that parameter. Adds the gradients too.
pub fn add_hvp(g: &mut Graph) -> Vec<NodeId> {
    let grads = add_param_gradients(g);
    let mut seeds = HashMap::new();
    for i in 0..g.params.len() {
        let shape: Vec<u64> = g.params[i].shape.clone();
        let index = g.inputs.len();
        g.inputs.push(InputInfo { name: format!("v.{}", g.params[i].name), shape });
        // A parameter the graph no longer holds has a zero gradient and a zero HVP row, and its
        // direction is read by nothing.
        if let Some(p) = param_node(g, i) {
            let v = g.push(Op::Input(index), &[], None, None);
            seeds.insert(p, v);
        }
    }
    let tan = forward::tangents(g, &seeds);
    let mut out = Vec::new();
    for (i, gr) in grads.iter().enumerate() {
        let hvp = match tan.get(gr) {
            Some(t) => *t,
            None => g.zeros(param_shape(g, i), None),
        };
        let name = format!("hvp.{}", g.params[i].name);
        g.outputs.push(Output { name, node: hvp });
        out.push(hvp);
    }
    crate::passes::dce::run(g);
    out
}

fn param_shape(g: &Graph, i: usize) -> Vec<crate::check::types::Dim> {
    g.params[i].shape.iter().map(|n| crate::check::types::Dim::Known(*n)).collect()
}

//! The graph verifier: checks the invariants stated in `ir/mod.rs`. Passes are tested with it
//! after every rewrite, and debug builds run it after every pass.

use super::graph::{Graph, NodeId};
use super::op::Op;
use super::shape::infer;
use crate::check::types::{Dim, Elem};
use std::collections::HashSet;

/// Returns every broken invariant, each naming the node.
pub fn verify(g: &Graph) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    let order = g.topo_order();
    if order.len() != g.len() {
        errs.push("the graph has a cycle".to_string());
        return Err(errs);
    }
    if g.outputs.is_empty() {
        errs.push("the graph has no outputs".to_string());
    }
    for o in &g.outputs {
        if !g.contains(o.node) {
            errs.push(format!("output `{}` names a removed node", o.name));
        }
    }
    if let Some(loss) = g.outputs.first().filter(|o| g.contains(o.node)) {
        if !g.node(loss.node).shape.is_empty() {
            errs.push(format!("the loss {} is not a scalar", loss.node));
        }
    }
    for &id in &order {
        let n = g.node(id);
        let ops = g.operands(id);
        if let Some(a) = n.op.arity() {
            if a != ops.len() {
                errs.push(format!("{id} ({}) has {} operands, needs {a}", n.op.name(), ops.len()));
                continue;
            }
        } else if ops.is_empty() {
            errs.push(format!("{id} ({}) has no operands", n.op.name()));
            continue;
        }
        if n.shape.contains(&Dim::Any) {
            errs.push(format!("{id} ({}) has an unknown size", n.op.name()));
        }
        let expected = match n.op {
            Op::Data(i) => match g.data.get(i) {
                Some(d) => Ok((d.elem, d.shape.clone())),
                None => Err(format!("data #{i} does not exist")),
            },
            Op::Input(i) => match g.inputs.get(i) {
                Some(p) => Ok((Elem::Float, p.shape.iter().map(|n| Dim::Known(*n)).collect())),
                None => Err(format!("input #{i} does not exist")),
            },
            Op::Param(i) => match g.params.get(i) {
                Some(p) => Ok((Elem::Float, p.shape.iter().map(|n| Dim::Known(*n)).collect())),
                None => Err(format!("parameter #{i} does not exist")),
            },
            _ => {
                let shapes: Vec<(Elem, &[Dim])> =
                    ops.iter().map(|o| (g.node(*o).elem, g.node(*o).shape.as_slice())).collect();
                infer(&n.op, &shapes, &n.shape)
            }
        };
        match expected {
            Err(e) => errs.push(format!("{id} ({}): {e}", n.op.name())),
            Ok((elem, shape)) if elem != n.elem || shape != n.shape => errs.push(format!(
                "{id} ({}) has type {:?}{:?}, its operands give {elem:?}{shape:?}",
                n.op.name(),
                n.elem,
                n.shape
            )),
            Ok(_) => {}
        }
    }
    // Reachability: walk back from the outputs.
    let mut seen: HashSet<NodeId> = HashSet::new();
    let mut stack: Vec<NodeId> = g.outputs.iter().map(|o| o.node).filter(|n| g.contains(*n)).collect();
    while let Some(n) = stack.pop() {
        if seen.insert(n) {
            stack.extend(g.operands(n));
        }
    }
    for id in g.node_ids() {
        if !seen.contains(&id) {
            errs.push(format!("{id} ({}) is not used by any output", g.node(id).op.name()));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

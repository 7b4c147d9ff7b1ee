//! The partition and buffer plan as text: one block per kernel (kind, iteration space, nodes,
//! inputs and outputs with their slots), the views, then every slot with the values it holds over
//! time. Snapshotted by `tests/kernel.rs`; read by people, not parsed.

use super::buffers::BufferPlan;
use super::partition::Partition;
use crate::check::types::ShowDim;
use crate::ir::{Graph, NodeId};
use std::fmt::Write;

fn shape(g: &Graph, dims: &[crate::check::types::Dim]) -> String {
    let ds: Vec<String> = dims.iter().map(|d| ShowDim(*d, g).to_string()).collect();
    format!("[{}]", ds.join(", "))
}

fn with_slot(plan: &BufferPlan, ids: &[NodeId]) -> String {
    let show = |n: &NodeId| match plan.slot(*n) {
        Some(s) => format!("{n} (slot {s})"),
        None => n.to_string(),
    };
    ids.iter().map(show).collect::<Vec<_>>().join(", ")
}

/// The partition `p` of `g` and its buffer plan, as text.
pub fn describe(g: &Graph, p: &Partition, plan: &BufferPlan) -> String {
    let mut out = String::new();
    for (i, k) in p.kernels.iter().enumerate() {
        let body: Vec<String> = k
            .nodes
            .iter()
            .map(|n| {
                let tag = if Some(*n) == k.reduction { " (reduction)" } else { "" };
                format!("{n} {}{tag}", g.node(*n).op.name())
            })
            .collect();
        let _ = writeln!(out, "kernel {i} {} {}: {}", k.kind.name(), shape(g, &k.space), body.join(", "));
        let _ = writeln!(out, "  inputs: {}", with_slot(plan, &k.inputs));
        let _ = writeln!(out, "  outputs: {}", with_slot(plan, &k.outputs));
    }
    for v in &p.views {
        let slot = plan.slot(v.node).map_or(String::new(), |s| format!(" (slot {s})"));
        let how = if v.transposed { "transposed " } else { "" };
        let _ = writeln!(out, "view {} = {} {how}as {}{slot}", v.node, v.base, shape(g, &g.node(v.node).shape));
    }
    let peak_at = plan.peak_kernel.map_or(String::new(), |k| format!(" at kernel {k}"));
    let _ = writeln!(
        out,
        "buffers: {} slots, arena {} B, peak {} B{peak_at}, leaves {} B",
        plan.slots.len(),
        plan.arena_bytes,
        plan.peak_bytes,
        plan.leaf_bytes
    );
    for (i, s) in plan.slots.iter().enumerate() {
        let held: Vec<String> = plan
            .values
            .iter()
            .filter(|v| v.slot == i)
            .map(|v| {
                let node = g.node(v.node);
                if s.leaf {
                    let label = node.label.as_ref().map_or(String::new(), |l| format!(" {l}"));
                    format!("{} {}{label} {}", v.node, node.op.name(), shape(g, &node.shape))
                } else {
                    let end = if v.last == p.kernels.len() { "end".to_string() } else { v.last.to_string() };
                    format!("{} {} kernels {}..={end}", v.node, shape(g, &node.shape), v.first)
                }
            })
            .collect();
        let kind = if s.leaf { " leaf" } else { "" };
        let _ = writeln!(out, "  slot {i}{kind} @{} {} B: {}", s.offset, s.bytes, held.join("; "));
    }
    out
}

//! Matrix products as OpenCL C: numpy `matmul` (1-D operands promoted, batch axes broadcast),
//! one work-group of 16×16 work-items per 64×64 tile of the result, each work-item holding a
//! 4×4 block of accumulators in registers; tiles of both operands staged through local memory 16
//! deep along the inner axis. The product's elementwise epilogue (`kernel::partition` rule 3)
//! runs on each finished element before anything is written. A *transposed* operand (a
//! `kernel::View` its buffer holds with the last two axes swapped) is read with swapped strides.
//!
//! Every element sums its inner axis in order, so a run repeats its bits.

use super::elementwise::{body, offset, product};
use super::source::{float_literal, KernelArgs};
use super::{Extent, GlobalSize, Launch, Rendered};
use crate::backend::cpu::plan::{Access, Plan};
use crate::check::types::Dim;
use crate::ir::{Graph, NodeId};
use crate::kernel::Kernel;
use crate::passes::fusion::FusionGroup;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

/// How a product is computed on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Tiles of both operands staged in local memory, barriers between stages: for GPUs.
    Tiled,
    /// Each work-item reads its operands from global memory directly, no local memory and no
    /// barrier: for CPU devices (PoCL runs a work-group's barriers as loops over its items, and
    /// its caches do what local memory does on a GPU).
    Direct,
}

/// Rows and columns of the result one work-group computes.
pub const TILE: usize = 64;
/// Depth of the operand tiles in local memory.
pub const DEPTH: usize = 16;
/// Rows (and columns) of accumulators per work-item.
pub const BLOCK: usize = 4;
const SIDE: usize = TILE / BLOCK;

/// Renders the product kernel `k` (`k.nodes[0]` the product, the rest its epilogue);
/// `transposed` holds the views whose buffers hold their value's transpose.
pub fn render(
    g: &Graph,
    k: &Kernel,
    transposed: &HashSet<NodeId>,
    style: Style,
    name: &str,
    comment: &str,
) -> Result<Rendered, String> {
    let m = k.nodes[0];
    let xs = g.operands(m);
    let (a, b) = (xs[0], xs[1]);
    let (sa, sb) = (&g.node(a).shape, &g.node(b).shape);
    if sa.is_empty() || sb.is_empty() {
        return Err("matmul of a scalar".into());
    }
    let a2: Vec<Dim> = if sa.len() == 1 { vec![Dim::Known(1), sa[0]] } else { sa.clone() };
    let b2: Vec<Dim> = if sb.len() == 1 { vec![sb[0], Dim::Known(1)] } else { sb.clone() };
    let (ra, rb) = (a2.len(), b2.len());
    let (dm, dk, dn) = (a2[ra - 2], a2[ra - 1], b2[rb - 1]);
    let rank = (ra - 2).max(rb - 2);
    let pad = |s: &[Dim]| -> Vec<Dim> {
        std::iter::repeat_n(Dim::Known(1), rank - s.len()).chain(s.iter().copied()).collect()
    };
    let (ab, bb) = (pad(&a2[..ra - 2]), pad(&b2[..rb - 2]));
    let batch: Vec<Dim> = ab.iter().zip(&bb).map(|(x, y)| if *x == Dim::Known(1) { *y } else { *x }).collect();

    let mut args = KernelArgs::default();
    let (em, ek, en) = (args.extent(&[dm]), args.extent(&[dk]), args.extent(&[dn]));
    let batch_ext: Vec<String> = batch.iter().map(|d| args.extent(&[*d])).collect();
    let (ba, bbuf) = (args.buffer(a), args.buffer(b));
    // Element strides (row, column) of one matrix of each operand.
    let strides = |t: bool, rows: &str, cols: &str| -> (String, String) {
        if t {
            ("1".into(), rows.to_string())
        } else {
            (cols.to_string(), "1".into())
        }
    };
    let (a_rs, a_cs) = strides(transposed.contains(&a), &em, &ek);
    let (b_rs, b_cs) = strides(transposed.contains(&b), &ek, &en);

    let mut s = String::new();
    let _ = writeln!(s, "    int tx = get_local_id(0), ty = get_local_id(1);");
    let _ = writeln!(s, "    int col0 = get_group_id(0) * {TILE}, row0 = get_group_id(1) * {TILE};");
    let _ = writeln!(s, "    int t = get_group_id(2);");
    // Batch coordinates, and each operand's matrix offset (broadcast axes stay at 0).
    let batch_axes: Vec<usize> = (0..rank).collect();
    let mut coords = Vec::new();
    if rank > 0 {
        let _ = writeln!(s, "    int rest_t = t;");
        for j in (0..rank).rev() {
            if j == 0 {
                let _ = writeln!(s, "    int c{j} = rest_t;");
            } else {
                let _ = writeln!(s, "    int c{j} = rest_t % {0}; rest_t /= {0};", batch_ext[j]);
            }
        }
        coords = batch_axes.iter().map(|j| format!("c{j}")).collect();
    }
    let vary_a: Vec<bool> = ab.iter().map(|d| *d != Dim::Known(1)).collect();
    let vary_b: Vec<bool> = bb.iter().map(|d| *d != Dim::Known(1)).collect();
    let a_mat = product(&[em.clone(), ek.clone()]);
    let b_mat = product(&[ek.clone(), en.clone()]);
    let a_off = offset(&coords, &batch_ext, &vary_a);
    let b_off = offset(&coords, &batch_ext, &vary_b);
    let _ = writeln!(s, "    __global const float* A = {ba} + ({a_off}) * {a_mat};");
    let _ = writeln!(s, "    __global const float* B = {bbuf} + ({b_off}) * {b_mat};");
    if style == Style::Direct {
        // A work-item's block: rows ty + 16·i, columns tx + 16·j of the tile, as in the tiled
        // kernel, so the epilogue below is shared.
        let _ = writeln!(s, "    float acc[{BLOCK}][{BLOCK}];");
        let _ =
            writeln!(s, "    for (int i = 0; i < {BLOCK}; i++) for (int j = 0; j < {BLOCK}; j++) acc[i][j] = 0.0f;");
        let _ = writeln!(s, "    int rows[{BLOCK}], cols[{BLOCK}];");
        let _ = writeln!(s, "    for (int i = 0; i < {BLOCK}; i++) {{ int r = row0 + ty + {SIDE} * i; rows[i] = r < {em} ? r : {em} - 1; }}");
        let _ = writeln!(s, "    for (int j = 0; j < {BLOCK}; j++) {{ int c = col0 + tx + {SIDE} * j; cols[j] = c < {en} ? c : {en} - 1; }}");
        let _ = writeln!(s, "    for (int kk = 0; kk < {ek}; kk++) {{");
        let _ = writeln!(s, "        float ar[{BLOCK}], br[{BLOCK}];");
        let _ = writeln!(s, "        for (int i = 0; i < {BLOCK}; i++) ar[i] = A[rows[i] * {a_rs} + kk * {a_cs}];");
        let _ = writeln!(s, "        for (int j = 0; j < {BLOCK}; j++) br[j] = B[kk * {b_rs} + cols[j] * {b_cs}];");
        let _ = writeln!(
            s,
            "        for (int i = 0; i < {BLOCK}; i++) for (int j = 0; j < {BLOCK}; j++) acc[i][j] += ar[i] * br[j];"
        );
        let _ = writeln!(s, "    }}");
    } else {
        let _ = writeln!(s, "    __local float As[{DEPTH}][{TILE}];");
        let _ = writeln!(s, "    __local float Bs[{DEPTH}][{TILE}];");
        let _ = writeln!(s, "    float acc[{BLOCK}][{BLOCK}];");
        let _ =
            writeln!(s, "    for (int i = 0; i < {BLOCK}; i++) for (int j = 0; j < {BLOCK}; j++) acc[i][j] = 0.0f;");
        let _ = writeln!(s, "    int me = ty * {SIDE} + tx;");
        let _ = writeln!(s, "    for (int k0 = 0; k0 < {ek}; k0 += {DEPTH}) {{");
        let loads = TILE * DEPTH / (SIDE * SIDE);
        let _ = writeln!(s, "        for (int l = 0; l < {loads}; l++) {{");
        let _ = writeln!(s, "            int e = me + l * {};", SIDE * SIDE);
        let _ = writeln!(s, "            int r = e / {DEPTH}, kk = e % {DEPTH};");
        let _ = writeln!(s, "            int gr = row0 + r, gk = k0 + kk;");
        let _ = writeln!(s, "            As[kk][r] = (gr < {em} && gk < {ek}) ? A[gr * {a_rs} + gk * {a_cs}] : 0.0f;");
        let _ = writeln!(s, "            int kb = e / {TILE}, c = e % {TILE};");
        let _ = writeln!(s, "            int gk2 = k0 + kb, gc = col0 + c;");
        let _ =
            writeln!(s, "            Bs[kb][c] = (gk2 < {ek} && gc < {en}) ? B[gk2 * {b_rs} + gc * {b_cs}] : 0.0f;");
        let _ = writeln!(s, "        }}");
        let _ = writeln!(s, "        barrier(CLK_LOCAL_MEM_FENCE);");
        let _ = writeln!(s, "        for (int kk = 0; kk < {DEPTH}; kk++) {{");
        let _ = writeln!(s, "            float ar[{BLOCK}], br[{BLOCK}];");
        let _ = writeln!(s, "            for (int i = 0; i < {BLOCK}; i++) ar[i] = As[kk][ty + {SIDE} * i];");
        let _ = writeln!(s, "            for (int j = 0; j < {BLOCK}; j++) br[j] = Bs[kk][tx + {SIDE} * j];");
        let _ = writeln!(s, "            for (int i = 0; i < {BLOCK}; i++) for (int j = 0; j < {BLOCK}; j++) acc[i][j] += ar[i] * br[j];");
        let _ = writeln!(s, "        }}");
        let _ = writeln!(s, "        barrier(CLK_LOCAL_MEM_FENCE);");
        let _ = writeln!(s, "    }}");
    }
    let _ = writeln!(s, "    for (int i = 0; i < {BLOCK}; i++) for (int j = 0; j < {BLOCK}; j++) {{");
    let _ = writeln!(s, "        int row = row0 + ty + {SIDE} * i, col = col0 + tx + {SIDE} * j;");
    let _ = writeln!(s, "        if (row >= {em} || col >= {en}) continue;");
    let idx = format!("(t * {} + row * {en} + col)", product(&[em.clone(), en.clone()]));
    let _ = writeln!(s, "        int idx = {idx};");
    let _ = writeln!(s, "        float v{} = acc[i][j];", m.index());
    let mut names: HashMap<NodeId, String> = HashMap::new();
    names.insert(m, format!("v{}", m.index()));
    if k.outputs.contains(&m) {
        let bm = args.buffer(m);
        let _ = writeln!(s, "        {bm}[idx] = v{};", m.index());
    }
    if k.nodes.len() > 1 {
        // The epilogue, over the product's own axes: batch…, then rows unless `a` was 1-D, then
        // columns unless `b` was.
        let nodes: Vec<NodeId> = k.nodes[1..].to_vec();
        let mut inputs = Vec::new();
        for n in &nodes {
            for o in g.operands(*n) {
                if !nodes.contains(&o) && !inputs.contains(&o) {
                    inputs.push(o);
                }
            }
        }
        let grp = FusionGroup {
            nodes: nodes.clone(),
            shape: g.node(m).shape.clone(),
            epilogue: None,
            inputs,
            outputs: vec![],
        };
        let plan = Plan::new(g, &grp)?;
        let mut axes_coords: Vec<String> = coords.clone();
        let mut axes_ext: Vec<String> = batch_ext.clone();
        if sa.len() > 1 {
            axes_coords.push("row".into());
            axes_ext.push(em.clone());
        }
        if sb.len() > 1 {
            axes_coords.push("col".into());
            axes_ext.push(en.clone());
        }
        if axes_coords.len() != plan.shape.len() {
            return Err(format!(
                "the product's epilogue has rank {}, the product {}",
                plan.shape.len(),
                axes_coords.len()
            ));
        }
        for (i, (input, access)) in grp.inputs.iter().zip(&plan.inputs).enumerate() {
            if *input == m {
                continue;
            }
            let name = format!("in{i}");
            match access {
                Access::Const(c) => {
                    let _ = writeln!(s, "        const float {name} = {};", float_literal(*c));
                }
                Access::Strided { .. } => {
                    let buf = args.buffer(*input);
                    let at = offset(&axes_coords, &axes_ext, &plan.input_vary[i]);
                    let _ = writeln!(s, "        float {name} = {buf}[{at}];");
                }
            }
            names.insert(*input, name);
        }
        s.push_str(&body(g, &nodes, &mut names, "        ")?);
        for o in k.outputs.iter().filter(|o| **o != m) {
            let buf = args.buffer(*o);
            let _ = writeln!(s, "        {buf}[idx] = {};", names[o]);
        }
    }
    let _ = writeln!(s, "    }}");
    let side = SIDE as u64;
    let launch = Launch {
        global: vec![
            GlobalSize { extent: Extent(vec![dn]), div: TILE as u64, mul: side },
            GlobalSize { extent: Extent(vec![dm]), div: TILE as u64, mul: side },
            GlobalSize::items(Extent(batch)),
        ],
        local: vec![SIDE, SIDE, 1],
    };
    Ok(args.finish(name, comment, &s, launch))
}

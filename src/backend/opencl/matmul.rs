//! Matrix products as OpenCL C: numpy `matmul` (1-D operands promoted, batch axes broadcast),
//! one work-group of 16×16 work-items per tile of the result ([`Geometry`]: 64×64 with 4×4
//! accumulators per work-item, or 128×128 with 8×8 where a product is large enough to fill the
//! device), tiles of both operands staged through local memory 16 deep along the inner axis. The product's elementwise epilogue (`kernel::partition` rule 3)
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

/// The shape of a product kernel's work: one work-group of `side × side` work-items computes a
/// `tile × tile` block of the result, each work-item a `block × block` block of it in registers,
/// rows `ty + side·i` and columns `tx + side·j` (so neighbouring work-items store neighbouring
/// columns); the operands pass through local memory `depth` deep along the inner axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub tile: usize,
    pub block: usize,
    pub depth: usize,
}

impl Geometry {
    /// Work-items along each side of a work-group.
    pub const fn side(self) -> usize {
        self.tile / self.block
    }
}

/// 64×64 tiles, 4×4 per work-item: every product (and every product on a CPU device).
pub const NARROW: Geometry = Geometry { tile: 64, block: 4, depth: 16 };
/// 128×128 tiles, 8×8 per work-item: four times the arithmetic per operand read, for products
/// with enough tiles to fill a GPU (chosen per launch, [`WIDE_MIN_GROUPS_PER_UNIT`]).
pub const WIDE: Geometry = Geometry { tile: 128, block: 8, depth: 16 };
/// A product runs with [`WIDE`] tiles when it has at least this many of them per compute unit:
/// fewer would leave units idle that the narrow tiles keep busy.
pub const WIDE_MIN_GROUPS_PER_UNIT: u64 = 1;

/// Renders the product kernel `k` (`k.nodes[0]` the product, the rest its epilogue);
/// `transposed` holds the views whose buffers hold their value's transpose.
pub fn render(
    g: &Graph,
    k: &Kernel,
    transposed: &HashSet<NodeId>,
    style: Style,
    geometry: Geometry,
    name: &str,
    comment: &str,
) -> Result<Rendered, String> {
    let Geometry { tile, block, depth } = geometry;
    let side = geometry.side();
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
    let _ = writeln!(s, "    int col0 = get_group_id(0) * {tile}, row0 = get_group_id(1) * {tile};");
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
        let _ = writeln!(s, "    float acc[{block}][{block}];");
        let _ =
            writeln!(s, "    for (int i = 0; i < {block}; i++) for (int j = 0; j < {block}; j++) acc[i][j] = 0.0f;");
        let _ = writeln!(s, "    int rows[{block}], cols[{block}];");
        let _ = writeln!(s, "    for (int i = 0; i < {block}; i++) {{ int r = row0 + ty + {side} * i; rows[i] = r < {em} ? r : {em} - 1; }}");
        let _ = writeln!(s, "    for (int j = 0; j < {block}; j++) {{ int c = col0 + tx + {side} * j; cols[j] = c < {en} ? c : {en} - 1; }}");
        let _ = writeln!(s, "    for (int kk = 0; kk < {ek}; kk++) {{");
        let _ = writeln!(s, "        float ar[{block}], br[{block}];");
        let _ = writeln!(s, "        for (int i = 0; i < {block}; i++) ar[i] = A[rows[i] * {a_rs} + kk * {a_cs}];");
        let _ = writeln!(s, "        for (int j = 0; j < {block}; j++) br[j] = B[kk * {b_rs} + cols[j] * {b_cs}];");
        let _ = writeln!(
            s,
            "        for (int i = 0; i < {block}; i++) for (int j = 0; j < {block}; j++) acc[i][j] += ar[i] * br[j];"
        );
        let _ = writeln!(s, "    }}");
    } else {
        // Rows padded by one element: a work-group's stores down a column of a tile fall in
        // different local-memory banks.
        let _ = writeln!(s, "    __local float As[{depth}][{tile} + 1];");
        let _ = writeln!(s, "    __local float Bs[{depth}][{tile} + 1];");
        let _ = writeln!(s, "    float acc[{block}][{block}];");
        let _ = writeln!(s, "    #pragma unroll");
        let _ =
            writeln!(s, "    for (int i = 0; i < {block}; i++) for (int j = 0; j < {block}; j++) acc[i][j] = 0.0f;");
        let _ = writeln!(s, "    int me = ty * {side} + tx;");
        let _ = writeln!(s, "    for (int k0 = 0; k0 < {ek}; k0 += {depth}) {{");
        let loads = tile * depth / (side * side);
        // Neighbouring work-items load neighbouring elements of memory: along the inner axis of
        // a row-major `A`, along the rows of a transposed one (and likewise for `B`).
        let a_split = if transposed.contains(&a) {
            format!("int kk = e / {tile}, r = e % {tile};")
        } else {
            format!("int r = e / {depth}, kk = e % {depth};")
        };
        let b_split = if transposed.contains(&b) {
            format!("int c = e / {depth}, kb = e % {depth};")
        } else {
            format!("int kb = e / {tile}, c = e % {tile};")
        };
        let _ = writeln!(s, "        #pragma unroll");
        let _ = writeln!(s, "        for (int l = 0; l < {loads}; l++) {{");
        let _ = writeln!(s, "            int e = me + l * {};", side * side);
        let _ = writeln!(s, "            {a_split}");
        let _ = writeln!(s, "            int gr = row0 + r, gk = k0 + kk;");
        let _ = writeln!(s, "            As[kk][r] = (gr < {em} && gk < {ek}) ? A[gr * {a_rs} + gk * {a_cs}] : 0.0f;");
        let _ = writeln!(s, "            {b_split}");
        let _ = writeln!(s, "            int gk2 = k0 + kb, gc = col0 + c;");
        let _ =
            writeln!(s, "            Bs[kb][c] = (gk2 < {ek} && gc < {en}) ? B[gk2 * {b_rs} + gc * {b_cs}] : 0.0f;");
        let _ = writeln!(s, "        }}");
        let _ = writeln!(s, "        barrier(CLK_LOCAL_MEM_FENCE);");
        let _ = writeln!(s, "        #pragma unroll");
        let _ = writeln!(s, "        for (int kk = 0; kk < {depth}; kk++) {{");
        let _ = writeln!(s, "            float ar[{block}], br[{block}];");
        let _ = writeln!(s, "            #pragma unroll");
        let _ = writeln!(s, "            for (int i = 0; i < {block}; i++) ar[i] = As[kk][ty + {side} * i];");
        let _ = writeln!(s, "            #pragma unroll");
        let _ = writeln!(s, "            for (int j = 0; j < {block}; j++) br[j] = Bs[kk][tx + {side} * j];");
        let _ = writeln!(s, "            #pragma unroll");
        let _ = writeln!(s, "            for (int i = 0; i < {block}; i++) for (int j = 0; j < {block}; j++) acc[i][j] += ar[i] * br[j];");
        let _ = writeln!(s, "        }}");
        let _ = writeln!(s, "        barrier(CLK_LOCAL_MEM_FENCE);");
        let _ = writeln!(s, "    }}");
    }
    let _ = writeln!(s, "    for (int i = 0; i < {block}; i++) for (int j = 0; j < {block}; j++) {{");
    let _ = writeln!(s, "        int row = row0 + ty + {side} * i, col = col0 + tx + {side} * j;");
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
    let side_items = side as u64;
    let launch = Launch {
        global: vec![
            GlobalSize { extent: Extent(vec![dn]), div: tile as u64, mul: side_items },
            GlobalSize { extent: Extent(vec![dm]), div: tile as u64, mul: side_items },
            GlobalSize::items(Extent(batch)),
        ],
        local: vec![side, side, 1],
    };
    Ok(args.finish(name, comment, &s, launch))
}

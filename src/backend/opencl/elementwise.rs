//! Elementwise kernels as OpenCL C: a fused group of elementwise ops (its loop plan from
//! `cpu::plan`, which is backend-neutral analysis: collapsed axes and broadcast strides), one
//! work-item per element; a group ending in a reduction (or a sum, mean or max alone) as one
//! work-group per result element, each work-item accumulating a strided share of the reduced
//! elements, then a tree reduction in local memory (a fixed order: a run repeats its bits).
//!
//! [`body`] renders the members' arithmetic; the matrix-product renderer uses it for epilogues.

use super::source::{float_literal, KernelArgs};
use super::{Extent, GlobalSize, Launch, Rendered};
use crate::backend::cpu::plan::{Access, Plan};
use crate::check::types::Dim;
use crate::ir::op::{BinaryOp, ReduceOp, UnaryOp};
use crate::ir::{Graph, NodeId, Op};
use crate::passes::fusion::FusionGroup;
use std::collections::HashMap;
use std::fmt::Write;

/// Work-items of one element-wise work-group.
pub const ELEMENTWISE_LOCAL: usize = 256;
/// The largest work-group of a reduction (a power of two).
pub const REDUCE_LOCAL: usize = 256;

/// One member's value as a C expression of its operands' names.
pub fn op_expr(op: &Op, x: &[String]) -> Result<String, String> {
    let a = || x[0].clone();
    Ok(match op {
        Op::Unary(f) => match f {
            UnaryOp::Neg => format!("(-{})", a()),
            UnaryOp::Exp => format!("exp({})", a()),
            UnaryOp::Log => format!("log({})", a()),
            UnaryOp::Relu => format!("circ_relu({})", a()),
            UnaryOp::Sigmoid => format!("circ_sigmoid({})", a()),
            UnaryOp::Tanh => format!("tanh({})", a()),
            UnaryOp::Softplus => format!("circ_softplus({})", a()),
            UnaryOp::Sqrt => format!("sqrt({})", a()),
            UnaryOp::Abs => format!("fabs({})", a()),
            UnaryOp::Square => format!("({0} * {0})", a()),
            UnaryOp::Recip => format!("(1.0f / {})", a()),
            UnaryOp::Step => format!("({} > 0.0f ? 1.0f : 0.0f)", a()),
            UnaryOp::Sign => format!("circ_sign({})", a()),
        },
        Op::Binary(f) => {
            let (p, q) = (&x[0], &x[1]);
            match f {
                BinaryOp::Add => format!("({p} + {q})"),
                BinaryOp::Sub => format!("({p} - {q})"),
                BinaryOp::Mul => format!("({p} * {q})"),
                BinaryOp::Div => format!("({p} / {q})"),
                BinaryOp::Pow => format!("pow({p}, {q})"),
                BinaryOp::Eq => format!("({p} == {q} ? 1.0f : 0.0f)"),
            }
        }
        // Labels are stored as floats; an expand reads its operand through broadcast strides.
        Op::Cast | Op::Expand => a(),
        other => return Err(format!("{} is not elementwise", other.name())),
    })
}

/// Statements computing `nodes` (elementwise members, in order) into `float v<id>` variables;
/// `names` holds the names of the values already computed or read and gets the new ones.
pub fn body(g: &Graph, nodes: &[NodeId], names: &mut HashMap<NodeId, String>, indent: &str) -> Result<String, String> {
    let mut s = String::new();
    for &n in nodes {
        let operands: Vec<String> = g
            .operands(n)
            .iter()
            .map(|o| names.get(o).cloned().ok_or_else(|| format!("{n} reads {o}, which the kernel has not computed")))
            .collect::<Result<_, _>>()?;
        let expr = op_expr(&g.node(n).op, &operands)?;
        let v = format!("v{}", n.index());
        let _ = writeln!(s, "{indent}float {v} = {expr};");
        names.insert(n, v);
    }
    Ok(s)
}

/// `Π dims` of the collapsed axes `axes` of `plan`, as an expression.
fn collapsed_extent(args: &mut KernelArgs, plan: &Plan, axis: usize) -> String {
    let dims: Vec<Dim> = plan.axes[axis].iter().map(|k| plan.shape[*k]).collect();
    args.extent(&dims)
}

/// `a * b * …` of C expressions, `1` when empty.
pub fn product(terms: &[String]) -> String {
    let terms: Vec<&String> = terms.iter().filter(|t| *t != "1").collect();
    match terms.len() {
        0 => "1".into(),
        1 => terms[0].clone(),
        _ => format!("({})", terms.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" * ")),
    }
}

/// The offset at coordinates `coords` of a value that varies along the axes `vary` of a space
/// whose extents are `extents`: Σ cⱼ · Π (later extents it varies along).
pub fn offset(coords: &[String], extents: &[String], vary: &[bool]) -> String {
    let mut terms = Vec::new();
    for j in 0..coords.len() {
        if !vary[j] {
            continue;
        }
        let later: Vec<String> = (j + 1..coords.len()).filter(|k| vary[*k]).map(|k| extents[k].clone()).collect();
        let stride = product(&later);
        terms.push(if stride == "1" { coords[j].clone() } else { format!("{} * {stride}", coords[j]) });
    }
    if terms.is_empty() {
        "0".into()
    } else {
        terms.join(" + ")
    }
}

/// Statements splitting the linear index `index` over the axes `axes` (row-major, last fastest)
/// into `int` coordinates named `c<axis>`.
fn split(index: &str, axes: &[usize], extents: &[String], indent: &str) -> String {
    let mut s = String::new();
    if axes.is_empty() {
        return s;
    }
    let _ = writeln!(s, "{indent}int rest_{index} = {index};");
    for (i, &j) in axes.iter().enumerate().rev() {
        if i == 0 {
            let _ = writeln!(s, "{indent}int c{j} = rest_{index};");
        } else {
            let _ = writeln!(s, "{indent}int c{j} = rest_{index} % {}; rest_{index} /= {};", extents[j], extents[j]);
        }
    }
    s
}

/// Reads every input of the group at the coordinates `c<j>` into `names`.
fn read_inputs(
    args: &mut KernelArgs,
    plan: &Plan,
    grp: &FusionGroup,
    extents: &[String],
    names: &mut HashMap<NodeId, String>,
    indent: &str,
) -> String {
    let mut s = String::new();
    let coords: Vec<String> = (0..plan.axes.len()).map(|j| format!("c{j}")).collect();
    for (i, (input, access)) in grp.inputs.iter().zip(&plan.inputs).enumerate() {
        let name = format!("in{i}");
        match access {
            Access::Const(c) => {
                let _ = writeln!(s, "{indent}const float {name} = {};", float_literal(*c));
            }
            Access::Strided { vary } => {
                let b = args.buffer(*input);
                let _ = writeln!(s, "{indent}float {name} = {b}[{}];", offset(&coords, extents, vary));
            }
        }
        names.insert(*input, name);
    }
    s
}

/// Renders an elementwise kernel, or a reduction (a group whose `epilogue` is set). With
/// `serial`, a reduction is one work-item per result element, summing in order, with no local
/// memory or barrier (for CPU devices, where PoCL runs barriers as loops over a work-group).
pub fn render(g: &Graph, grp: &FusionGroup, serial: bool, name: &str, comment: &str) -> Result<Rendered, String> {
    let plan = Plan::new(g, grp)?;
    let mut args = KernelArgs::default();
    let rank = plan.axes.len();
    let extents: Vec<String> = (0..rank).map(|j| collapsed_extent(&mut args, &plan, j)).collect();
    let members: Vec<NodeId> = grp.nodes.iter().copied().filter(|n| Some(*n) != grp.epilogue).collect();
    let written: Vec<NodeId> = grp.outputs.iter().copied().filter(|o| Some(*o) != grp.epilogue).collect();
    let mut names = HashMap::new();
    let mut s = String::new();
    let Some(epi) = &plan.epilogue else {
        let total = args.extent(&plan.shape);
        let _ = writeln!(s, "    int i = get_global_id(0);");
        let _ = writeln!(s, "    if (i >= {total}) return;");
        s.push_str(&split("i", &(0..rank).collect::<Vec<_>>(), &extents, "    "));
        s.push_str(&read_inputs(&mut args, &plan, grp, &extents, &mut names, "    "));
        s.push_str(&body(g, &members, &mut names, "    ")?);
        for o in &written {
            let b = args.buffer(*o);
            let _ = writeln!(s, "    {b}[i] = {};", names[o]);
        }
        let launch =
            Launch { global: vec![GlobalSize::items(Extent(plan.shape.clone()))], local: vec![ELEMENTWISE_LOCAL] };
        return Ok(args.finish(name, comment, &s, launch));
    };
    // A reduction: kept axes index the work-groups, reduced axes the work-items' shares.
    let kept: Vec<usize> = (0..rank).filter(|j| epi.vary[*j]).collect();
    let reduced: Vec<usize> = (0..rank).filter(|j| !epi.vary[*j]).collect();
    let kept_dims: Vec<Dim> = kept.iter().flat_map(|j| plan.axes[*j].iter().map(|k| plan.shape[*k])).collect();
    let reduced_dims: Vec<Dim> = reduced.iter().flat_map(|j| plan.axes[*j].iter().map(|k| plan.shape[*k])).collect();
    // Serial only where the results alone keep the device's cores busy: a sum into a few cells
    // stays a tree.
    let many = Extent(kept_dims.clone()).known().is_none_or(|n| n >= 16);
    let local = match Extent(reduced_dims.clone()).known() {
        _ if serial && many => 1,
        Some(n) => (n as usize).next_power_of_two().clamp(1, REDUCE_LOCAL),
        None => REDUCE_LOCAL,
    };
    let count = args.extent(&reduced_dims);
    let (init, combine): (&str, fn(&str, &str) -> String) = match epi.f {
        ReduceOp::Sum | ReduceOp::Mean => ("0.0f", |a, b| format!("{a} + {b}")),
        ReduceOp::Max => ("(-INFINITY)", |a, b| format!("circ_max({a}, {b})")),
    };
    let _ = writeln!(s, "    int group = get_group_id(0);");
    let _ = writeln!(s, "    int lid = get_local_id(0);");
    s.push_str(&split("group", &kept, &extents, "    "));
    let _ = writeln!(s, "    float acc = {init};");
    let _ = writeln!(s, "    for (int r = lid; r < {count}; r += {local}) {{");
    s.push_str(&split("r", &reduced, &extents, "        "));
    s.push_str(&read_inputs(&mut args, &plan, grp, &extents, &mut names, "        "));
    s.push_str(&body(g, &members, &mut names, "        ")?);
    if !written.is_empty() {
        let coords: Vec<String> = (0..rank).map(|j| format!("c{j}")).collect();
        let index = offset(&coords, &extents, &vec![true; rank]);
        for o in &written {
            let b = args.buffer(*o);
            let _ = writeln!(s, "        {b}[{index}] = {};", names[o]);
        }
    }
    let operand =
        names.get(&epi.operand).ok_or_else(|| format!("the reduction reads {}, never computed", epi.operand))?;
    let _ = writeln!(s, "        acc = {};", combine("acc", operand));
    let _ = writeln!(s, "    }}");
    if local == 1 {
        let result = if epi.f == ReduceOp::Mean { format!("acc / (float)({count})") } else { "acc".into() };
        let out = args.buffer(epi.node);
        let _ = writeln!(s, "    {out}[group] = {result};");
        let launch = Launch { global: vec![GlobalSize::items(Extent(kept_dims))], local: vec![1] };
        return Ok(args.finish(name, comment, &s, launch));
    }
    let _ = writeln!(s, "    __local float part[{local}];");
    let _ = writeln!(s, "    part[lid] = acc;");
    let _ = writeln!(s, "    barrier(CLK_LOCAL_MEM_FENCE);");
    let _ = writeln!(s, "    for (int w = {}; w > 0; w >>= 1) {{", local / 2);
    let _ = writeln!(s, "        if (lid < w) {{ part[lid] = {}; }}", combine("part[lid]", "part[lid + w]"));
    let _ = writeln!(s, "        barrier(CLK_LOCAL_MEM_FENCE);");
    let _ = writeln!(s, "    }}");
    let result = if epi.f == ReduceOp::Mean { format!("part[0] / (float)({count})") } else { "part[0]".into() };
    let out = args.buffer(epi.node);
    let _ = writeln!(s, "    if (lid == 0) {{ {out}[group] = {result}; }}");
    let launch = Launch {
        global: vec![GlobalSize { extent: Extent(kept_dims), div: 1, mul: local as u64 }],
        local: vec![local],
    };
    Ok(args.finish(name, comment, &s, launch))
}

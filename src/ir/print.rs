//! Printing graphs: one node per line as text (id, op, operands, type, label, source line), or
//! Graphviz DOT. Nodes print in topological order, so a printout reads top to bottom.

use super::graph::{Graph, NodeId, Origin};
use super::op::Op;
use crate::check::signature;
use crate::check::types::{Elem, ShowTy, Ty};
use crate::source::SourceMap;
use std::collections::BTreeMap;
use std::fmt::Write;

fn ty_of(g: &Graph, id: NodeId) -> String {
    let n = g.node(id);
    ShowTy(&Ty { elem: n.elem, dims: n.shape.clone() }, g).to_string()
}

/// Where a node came from, in the one format `circ graph` and `circ emit` print:
/// `file:line:col` with the file's name alone (a path would differ from machine to machine), and
/// for a node inlined from a circuit the application that brought it in:
/// `nn.circ:7:11 via mlp_digits.circ:21:19`.
pub fn location(sources: &SourceMap, origin: impl Into<Origin>) -> String {
    let origin = origin.into();
    let mut out = short_location(sources, origin.span);
    if let Some(via) = origin.via {
        let _ = write!(out, " via {}", short_location(sources, via));
    }
    out
}

fn short_location(sources: &SourceMap, span: crate::source::Span) -> String {
    let loc = sources.location(span);
    let file = loc.file.rsplit('/').next().unwrap_or(loc.file);
    format!("{file}:{}:{}", loc.line, loc.col)
}

/// [`location`] with the source line itself after its own location:
/// `file:line:col: `text``, then ` via file:line:col` for a node inlined from a circuit.
pub fn location_and_line(sources: &SourceMap, origin: impl Into<Origin>) -> String {
    let origin = origin.into();
    let (line, _) = sources.line_col(origin.span);
    let text = sources.file(origin.span.file).text.lines().nth(line - 1).unwrap_or("").trim();
    let via = origin.via.map(|v| format!(" via {}", short_location(sources, v))).unwrap_or_default();
    format!("{}: `{text}`{via}", short_location(sources, origin.span))
}

/// A node as people read it: a leaf with a name by that name (a parameter's or datum's, an
/// optimizer state tensor's as the checkpoint stores it: `opt.adam.m.l1.w`), else its op.
pub fn node_name(g: &Graph, id: NodeId) -> String {
    let n = g.node(id);
    match (&n.op, &n.label) {
        (Op::Param(_) | Op::Data(_) | Op::Input(_), Some(label)) => label.clone(),
        _ => n.op.name(),
    }
}

/// The graph as text. With `sources`, each node shows the `file:line:col` it came from.
pub fn text(g: &Graph, sources: Option<&SourceMap>) -> String {
    let mut out = String::new();
    for (i, d) in g.data.iter().enumerate() {
        let ty = ShowTy(&Ty { elem: d.elem, dims: d.shape.clone() }, g);
        let _ = writeln!(out, "data#{i} {}: {ty}", d.name);
    }
    for (i, p) in g.params.iter().enumerate() {
        let shape: Vec<String> = p.shape.iter().map(u64::to_string).collect();
        let init = match p.init {
            super::graph::Init::Fixed(v) => format!("= {}", signature::num(v)),
            super::graph::Init::Draw(_) => "drawn".to_string(),
        };
        let _ = writeln!(out, "param#{i} {}: [{}] ~ {} {init}", p.name, shape.join(", "), signature::prior(&p.prior));
    }
    let order = g.topo_order();
    let rows: Vec<(String, String, String)> = order
        .iter()
        .map(|&id| {
            let n = g.node(id);
            let ops: Vec<String> = g.operands(id).iter().map(ToString::to_string).collect();
            let lhs = format!("{id} = {}{}{}", n.op.name(), if ops.is_empty() { "" } else { " " }, ops.join(", "));
            let mut note = String::new();
            if let Some(l) = &n.label {
                note.push_str(l);
            }
            if let (Some(src), Some(span)) = (sources, n.span) {
                let _ = write!(note, "{}{}", if note.is_empty() { "" } else { "  " }, location(src, span));
            }
            (lhs, ty_of(g, id), note)
        })
        .collect();
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    for (a, b, c) in rows {
        let line = if c.is_empty() { format!("{a:w0$} : {b}") } else { format!("{a:w0$} : {b:w1$}  # {c}") };
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for o in &g.outputs {
        let _ = writeln!(out, "output {} = {}", o.name, o.node);
    }
    out
}

/// Graphviz DOT: leaves as boxes, the loss and outputs double-circled, edges labelled by position
/// when an op has more than one operand.
pub fn dot(g: &Graph) -> String {
    let mut out = String::from("digraph circ {\n  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n");
    let outputs: BTreeMap<NodeId, &str> = g.outputs.iter().map(|o| (o.node, o.name.as_str())).collect();
    for id in g.topo_order() {
        let n = g.node(id);
        let mut label = format!("{id} {}", n.op.name());
        if let Some(l) = &n.label {
            let _ = write!(label, "\\n{}", l.replace('"', "\\\""));
        }
        let _ = write!(label, "\\n{}", ty_of(g, id));
        let shape = match (&n.op, outputs.get(&id)) {
            (_, Some(_)) => "doublecircle",
            (Op::Data(_) | Op::Param(_), _) => "box",
            (Op::Const(_), _) => "plaintext",
            _ => "ellipse",
        };
        let fill = match n.op {
            Op::Param(_) => ", style=filled, fillcolor=\"#fde9c9\"",
            Op::Data(_) => ", style=filled, fillcolor=\"#d7e8fb\"",
            _ if n.elem == Elem::Int => ", style=dashed",
            _ => "",
        };
        let _ = writeln!(out, "  n{} [label=\"{label}\", shape={shape}{fill}];", id.index());
        let ops = g.operands(id);
        for (pos, o) in ops.iter().enumerate() {
            if ops.len() > 1 {
                let _ = writeln!(out, "  n{} -> n{} [label=\"{pos}\"];", o.index(), id.index());
            } else {
                let _ = writeln!(out, "  n{} -> n{};", o.index(), id.index());
            }
        }
    }
    out.push_str("}\n");
    out
}

/// Node counts per op kind, for `circ graph --passes` and `--stats`.
pub fn op_counts(g: &Graph) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for id in g.node_ids() {
        let name = match &g.node(id).op {
            Op::Data(_) => "data".to_string(),
            Op::Param(_) => "param".to_string(),
            Op::Const(_) => "const".to_string(),
            op => op.name().split([' ', '[']).next().unwrap_or("").to_string(),
        };
        *m.entry(name).or_insert(0) += 1;
    }
    m
}

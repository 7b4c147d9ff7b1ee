//! The kernels of the partition that are no elementwise loop, reduction or product, as OpenCL C
//! 1.2 (`f32`): `logsumexp` (kind `Reduce`), `one_hot`, the copies `transpose`, `slice`, `embed`,
//! `concat` (kind `Copy`), and the selections `kmax`, `kmax_mask` (kind `Select`). [`render`]
//! gives one `__kernel` per kernel of one node under the calling convention of `opencl/mod.rs`,
//! or `None` where the executor runs the node on the host interpreter instead.
//!
//! # Kernels
//!
//! Every kernel but the long `logsumexp` is one work-item per element of its result (work-groups
//! of [`LOCAL`]), guarded by `if (gid >= total) return;`, and writes every element of its result:
//! no kernel relies on a zero-filled buffer, and no two work-items write one element.
//!
//! - `logsumexp` over axis `a` of `[outer, n, inner]` (the axes before `a`, axis `a`, the axes
//!   after it, each product collapsed): `m` = the maximum (`circ_max`, which propagates NaN), then
//!   `s = Σ exp(x − m)` and `m + log s` where `m` is finite, `m` itself elsewhere (every entry −∞,
//!   some +∞, NaN, an empty axis: −∞), as the interpreter.
//!   - *Short rows* (`inner` > 1, or `n` known and below [`TREE_MIN_ROW`]): one work-item per
//!     output, adding its terms one after another in the interpreter's order (neighbouring
//!     work-items read neighbouring `inner` elements).
//!   - *Long rows* (`inner` = 1 and `n` symbolic or at least [`TREE_MIN_ROW`]): one work-group of
//!     [`TREE`] work-items per output, each taking every `TREE`-th entry of the row, then a tree in
//!     local memory, once for the maximum and once for the sum. The terms are added in another
//!     order than the interpreter's (see the tolerance in `tests/opencl_special.rs`).
//! - `one_hot`: element `c` of row `r` is 1 where the label `l = x[r]` equals `(float)c`, else 0:
//!   so a negative, too large, fractional or NaN label gives a zero row, as the interpreter's
//!   `0 ≤ l < classes`, `l` an integer. Generated for at most [`ONE_HOT_MAX_CLASSES`] classes
//!   (where every `c` is an exact `float`).
//! - `transpose`, `slice`: the result's coordinates from the work-item's index (last axis first;
//!   axes of known size 1 cost nothing), the element read at `Σ coordinate · stride` of the input
//!   (plus each position's and each range start's offset, for a slice). Negative positions count
//!   from the run-time size, as the interpreter's.
//! - `embed`: the result's coordinates; the element is the operand's where every position and
//!   range of `items` holds it, else 0.
//! - `concat` (any number of operands, one operand read twice included): the result as
//!   `[outer, A, inner]`, the operand found by comparing the coordinate along `A` with the
//!   operands' running ends.
//! - `kmax`, `kmax_mask` along the last axis (length `n`): entry `i` is kept (itself, or 1) when
//!   fewer than `K = min(k, n)` entries of its row beat it, counted by scanning the row and
//!   stopping once `K` are found. A number is beaten by the NaNs, the larger numbers, and the
//!   equal ones before it; a NaN by the NaNs before it: the interpreter's stable sort, largest
//!   first, NaN highest (−0 equals +0). A row costs up to `n²` comparisons, spread over `n`
//!   work-items: generated where `n` is known and at most [`SELECT_MAX_ROW`].
//!
//! Results equal the interpreter's bit for bit (copies, `one_hot`, `kmax`: the values are moved,
//! never computed), except `logsumexp`'s, whose `exp`, `log` and, for long rows, order of
//! addition differ.
//!
//! # What the executor must check before a launch
//!
//! [`fits`]: every buffer the kernel reads or writes holds at most [`MAX_ELEMENTS`] elements
//! (indices are `int`), and every slice or embed position and range lies inside its axis at the
//! run-time sizes (the interpreter's error otherwise: the executor runs the node on the
//! interpreter, which reports it). A kernel whose launch has no work-item (an empty result) must
//! not be launched (OpenCL rejects a global size of 0).

use super::source::KernelArgs;
use super::{Extent, GlobalSize, Launch, Rendered};
use crate::check::checked::Slice as SliceItem;
use crate::check::types::{Dim, ShowDim};
use crate::ir::{Graph, NodeId, Op};
use crate::kernel::{Kernel, KernelKind};
use std::fmt::Write;

/// The work-group size of every one-element-per-work-item kernel.
pub const LOCAL: usize = 64;
/// The work-group size of a long `logsumexp` (one group per output; a power of two).
pub const TREE: usize = 128;
/// A `logsumexp` along the last axis takes a work-group per output from this length on.
pub const TREE_MIN_ROW: u64 = 256;
/// `kmax` is generated for rows known to be at most this long.
pub const SELECT_MAX_ROW: u64 = 4096;
/// `one_hot` is generated for at most this many classes (2²⁴: every class index is a `float`).
pub const ONE_HOT_MAX_CLASSES: u64 = 1 << 24;
/// The most elements a buffer of a generated kernel may hold: its indices are `int`s.
pub const MAX_ELEMENTS: u64 = i32::MAX as u64;

/// The kernel `k` (of one node) as OpenCL C named `name`, or `None` where it is left to the host
/// interpreter: a kernel kind this file does not render (elementwise, products, sums, means and
/// maxima), a `kmax` of rows that are long or of symbolic length, `one_hot` of more than
/// [`ONE_HOT_MAX_CLASSES`] classes, a shape with an unknown size, or a buffer known to exceed
/// [`MAX_ELEMENTS`].
pub fn render(g: &Graph, k: &Kernel, name: &str) -> Option<Rendered> {
    let &[node] = k.nodes.as_slice() else { return None };
    let operands = g.operands(node);
    let mut shapes = operands.iter().map(|x| g.node(*x).shape.clone()).collect::<Vec<_>>();
    shapes.push(g.node(node).shape.clone());
    let too_big = |s: &Vec<Dim>| {
        s.contains(&Dim::Any)
            || s.iter()
                .filter_map(|d| if let Dim::Known(n) = d { Some(*n) } else { None })
                .try_fold(1u64, |a, b| a.checked_mul(b).filter(|c| *c <= MAX_ELEMENTS))
                .is_none()
    };
    if operands.is_empty() || shapes.iter().any(too_big) {
        return None;
    }
    let mut r = Render { g, node, operands, args: KernelArgs::default(), body: String::new() };
    if shapes[shapes.len() - 1].contains(&Dim::Known(0)) {
        // An empty result: nothing to compute, and the executor launches nothing.
        let launch = r.per_element(&shapes[shapes.len() - 1]);
        let comment = r.comment();
        return Some(r.args.finish(name, &comment, &r.body, launch));
    }
    let launch = match (k.kind, &g.node(node).op) {
        (KernelKind::Reduce, Op::LogSumExp { axis, .. }) => r.logsumexp(*axis)?,
        (KernelKind::OneHot, Op::OneHot { classes }) => r.one_hot(*classes)?,
        (KernelKind::Copy, Op::Transpose { perm }) => r.transpose(perm)?,
        (KernelKind::Copy, Op::Slice { items }) => r.slice(items)?,
        (KernelKind::Copy, Op::Embed { items }) => r.embed(items)?,
        (KernelKind::Copy, Op::Concat { axis }) => r.concat(*axis)?,
        (KernelKind::Select, Op::KMax { k }) => r.select(*k, false)?,
        (KernelKind::Select, Op::KMaxMask { k }) => r.select(*k, true)?,
        _ => return None,
    };
    let comment = r.comment();
    Some(r.args.finish(name, &comment, &r.body, launch))
}

/// Whether the kernel `render` gave for `k` may run when `size` gives each dimension's run-time
/// size: every buffer it reads or writes holds at most [`MAX_ELEMENTS`] elements, and every
/// position and range of a slice (of its operand) or an embed (of its result) lies inside its
/// axis, negative ones counting from the end: exactly where the interpreter's kernel succeeds.
/// Where it does not, the executor runs the node on the interpreter, which reports the error.
/// `true` for a kernel this file does not render, so the executor may ask of every kernel.
pub fn fits(g: &Graph, k: &Kernel, size: &dyn Fn(Dim) -> u64) -> bool {
    let &[node] = k.nodes.as_slice() else { return true };
    let mine = matches!(
        (k.kind, &g.node(node).op),
        (KernelKind::Reduce, Op::LogSumExp { .. })
            | (KernelKind::OneHot, _)
            | (KernelKind::Copy, _)
            | (KernelKind::Select, _)
    );
    if !mine {
        return true;
    }
    let run = |id: NodeId| g.node(id).shape.iter().map(|d| size(*d)).collect::<Vec<u64>>();
    let mut buffers: Vec<Vec<u64>> = g.operands(node).into_iter().map(run).collect();
    buffers.push(run(node));
    let counts_fit = buffers
        .iter()
        .all(|s| s.iter().try_fold(1u64, |a, b| a.checked_mul(*b).filter(|c| *c <= MAX_ELEMENTS)).is_some());
    let items_fit = |items: &[SliceItem], shape: &[u64]| {
        items.len() <= shape.len()
            && items.iter().zip(shape).all(|(item, &n)| {
                let n = n as i64;
                let pos = |i: i64| if i < 0 { i + n } else { i };
                match *item {
                    SliceItem::At(i) => (0..n).contains(&pos(i)),
                    SliceItem::Range { start, end } => {
                        let (s, e) = (pos(start), end.map_or(n, pos));
                        0 <= s && s <= e && e <= n
                    }
                }
            })
    };
    counts_fit
        && match &g.node(node).op {
            Op::Slice { items } => items_fit(items, &buffers[0]),
            Op::Embed { items } => items_fit(items, &buffers[buffers.len() - 1]),
            _ => true,
        }
}

/// One kernel being rendered: its arguments and its body.
struct Render<'g> {
    g: &'g Graph,
    node: NodeId,
    operands: Vec<NodeId>,
    args: KernelArgs,
    body: String,
}

impl Render<'_> {
    fn shape(&self, id: NodeId) -> Vec<Dim> {
        self.g.node(id).shape.clone()
    }

    /// One size as a C `int` expression.
    fn dim(&mut self, d: Dim) -> String {
        self.args.extent(&[d])
    }

    /// The row-major stride of each axis of `shape`.
    fn strides(&mut self, shape: &[Dim]) -> Vec<String> {
        (0..shape.len()).map(|a| self.args.extent(&shape[a + 1..])).collect()
    }

    /// A position of an axis of size `n` as a C expression: negative ones count from the end.
    fn position(&mut self, i: i64, n: Dim) -> String {
        if i >= 0 {
            i.to_string()
        } else if let Dim::Known(n) = n {
            (i + n as i64).to_string()
        } else {
            let n = self.dim(n);
            format!("({i} + {n})")
        }
    }

    /// The work-item's index, returning when it is past `total` elements; a launch of one
    /// work-item per element.
    fn per_element(&mut self, shape: &[Dim]) -> Launch {
        let total = self.args.extent(shape);
        let _ = writeln!(self.body, "    int gid = get_global_id(0);\n    if (gid >= {total}) return;");
        Launch { global: vec![GlobalSize::items(Extent(shape.to_vec()))], local: vec![LOCAL] }
    }

    /// Statements splitting `gid` into coordinates of `shape` (row-major); the C expression of
    /// each coordinate (`0` for an axis of known size 1).
    fn coordinates(&mut self, shape: &[Dim]) -> Vec<String> {
        let mut out = vec!["0".to_string(); shape.len()];
        let first = shape.iter().position(|d| *d != Dim::Known(1));
        let Some(first) = first else { return out };
        self.body.push_str("    int r = gid;\n");
        for a in (first..shape.len()).rev() {
            if shape[a] == Dim::Known(1) {
                continue;
            }
            if a == first {
                let _ = writeln!(self.body, "    int c{a} = r;");
            } else {
                let d = self.dim(shape[a]);
                let _ = writeln!(self.body, "    int c{a} = r % {d}; r /= {d};");
            }
            out[a] = format!("c{a}");
        }
        out
    }

    fn comment(&self) -> String {
        let show = |s: &[Dim]| {
            let parts: Vec<String> = s.iter().map(|d| ShowDim(*d, self.g).to_string()).collect();
            format!("[{}]", parts.join(", "))
        };
        let ins: Vec<String> = self.operands.iter().map(|x| show(&self.g.node(*x).shape)).collect();
        format!("{} of {} -> {}", self.g.node(self.node).op.name(), ins.join(", "), show(&self.g.node(self.node).shape))
    }

    fn logsumexp(&mut self, axis: usize) -> Option<Launch> {
        let xs = self.shape(self.operands[0]);
        if axis >= xs.len() {
            return None;
        }
        let x = self.args.buffer(self.operands[0]);
        let out = self.args.buffer(self.node);
        let n = self.dim(xs[axis]);
        let inner = self.args.extent(&xs[axis + 1..]);
        let row = self.args.extent(&xs[axis..]);
        let outer_dims = xs[..axis].to_vec();
        let long = inner == "1" && !matches!(xs[axis], Dim::Known(n) if n < TREE_MIN_ROW);
        if long {
            let rows = self.args.extent(&outer_dims);
            let t = TREE;
            let tree = |f: &str| {
                format!(
                    "    red[lid] = acc;\n    barrier(CLK_LOCAL_MEM_FENCE);\n    for (int h = {}; h > 0; h >>= 1) {{\n        if (lid < h) {{ red[lid] = {f}; }}\n        barrier(CLK_LOCAL_MEM_FENCE);\n    }}\n",
                    t / 2
                )
            };
            let _ = write!(
                self.body,
                "    __local float red[{t}];\n    int o = get_group_id(0);\n    int lid = get_local_id(0);\n    int live = o < {rows};\n    __global const float* p = {x} + (live ? o : 0) * {row};\n    float acc = -INFINITY;\n    if (live) {{ for (int j = lid; j < {n}; j += {t}) {{ acc = circ_max(acc, p[j]); }} }}\n{}    float m = red[0];\n    barrier(CLK_LOCAL_MEM_FENCE);\n    acc = 0.0f;\n    if (live && isfinite(m)) {{ for (int j = lid; j < {n}; j += {t}) {{ acc += exp(p[j] - m); }} }}\n{}    if (live && lid == 0) {{ {out}[o] = isfinite(m) ? m + log(red[0]) : m; }}\n",
                tree("circ_max(red[lid], red[lid + h])"),
                tree("red[lid] + red[lid + h]"),
            );
            return Some(Launch {
                global: vec![GlobalSize { extent: Extent(outer_dims), div: 1, mul: t as u64 }],
                local: vec![t],
            });
        }
        let mut outs = outer_dims;
        outs.extend_from_slice(&xs[axis + 1..]);
        let launch = self.per_element(&outs);
        let start =
            if inner == "1" { format!("gid * {row}") } else { format!("(gid / {inner}) * {row} + gid % {inner}") };
        let at = if inner == "1" { "p[j]".to_string() } else { format!("p[j * {inner}]") };
        let _ = write!(
            self.body,
            "    __global const float* p = {x} + {start};\n    float m = -INFINITY;\n    for (int j = 0; j < {n}; j++) {{ m = circ_max(m, {at}); }}\n    float r = m;\n    if (isfinite(m)) {{\n        float s = 0.0f;\n        for (int j = 0; j < {n}; j++) {{ s += exp({at} - m); }}\n        r = m + log(s);\n    }}\n    {out}[gid] = r;\n"
        );
        Some(launch)
    }

    fn one_hot(&mut self, classes: u64) -> Option<Launch> {
        if classes > ONE_HOT_MAX_CLASSES {
            return None;
        }
        let x = self.args.buffer(self.operands[0]);
        let out = self.args.buffer(self.node);
        let launch = self.per_element(&self.shape(self.node));
        let _ = write!(
            self.body,
            "    int c = gid % {classes};\n    float l = {x}[gid / {classes}];\n    {out}[gid] = l == (float)c ? 1.0f : 0.0f;\n"
        );
        Some(launch)
    }

    fn transpose(&mut self, perm: &[usize]) -> Option<Launch> {
        let xs = self.shape(self.operands[0]);
        let os = self.shape(self.node);
        if perm.len() != xs.len() || os.len() != xs.len() || perm.iter().any(|p| *p >= xs.len()) {
            return None;
        }
        let x = self.args.buffer(self.operands[0]);
        let out = self.args.buffer(self.node);
        let launch = self.per_element(&os);
        let strides = self.strides(&xs);
        let c = self.coordinates(&os);
        let terms = (0..os.len()).map(|k| (c[k].clone(), strides[perm[k]].clone())).collect();
        let _ = writeln!(self.body, "    {out}[gid] = {x}[{}];", sum(terms));
        Some(launch)
    }

    fn slice(&mut self, items: &[SliceItem]) -> Option<Launch> {
        let xs = self.shape(self.operands[0]);
        let os = self.shape(self.node);
        let kept = items.iter().filter(|i| matches!(i, SliceItem::Range { .. })).count();
        if items.len() > xs.len() || os.len() != kept + xs.len() - items.len() {
            return None;
        }
        let x = self.args.buffer(self.operands[0]);
        let out = self.args.buffer(self.node);
        let launch = self.per_element(&os);
        let strides = self.strides(&xs);
        let c = self.coordinates(&os);
        let mut terms = Vec::new();
        let mut next = 0;
        for (a, stride) in strides.iter().enumerate() {
            match items.get(a) {
                Some(SliceItem::At(i)) => terms.push((self.position(*i, xs[a]), stride.clone())),
                Some(SliceItem::Range { start, .. }) => {
                    let s = self.position(*start, xs[a]);
                    let at = if s == "0" { c[next].clone() } else { format!("({} + {s})", c[next]) };
                    terms.push((at, stride.clone()));
                    next += 1;
                }
                None => {
                    terms.push((c[next].clone(), stride.clone()));
                    next += 1;
                }
            }
        }
        let _ = writeln!(self.body, "    {out}[gid] = {x}[{}];", sum(terms));
        Some(launch)
    }

    fn embed(&mut self, items: &[SliceItem]) -> Option<Launch> {
        let xs = self.shape(self.operands[0]);
        let os = self.shape(self.node);
        let kept = items.iter().filter(|i| matches!(i, SliceItem::Range { .. })).count();
        if items.len() > os.len() || xs.len() != kept + os.len() - items.len() {
            return None;
        }
        let x = self.args.buffer(self.operands[0]);
        let out = self.args.buffer(self.node);
        let launch = self.per_element(&os);
        let strides = self.strides(&xs);
        let c = self.coordinates(&os);
        // The conditions for reading the operand; a condition of literals is decided here
        // (`never` when one is false), which keeps the C free of constant comparisons.
        let (mut inside, mut never) = (Vec::new(), false);
        let mut holds = |c: &str, op: &str, p: &str| match (c.parse::<i64>(), p.parse::<i64>()) {
            (Ok(c), Ok(p)) => {
                never |= !(if op == "==" {
                    c == p
                } else if op == ">=" {
                    c >= p
                } else {
                    c < p
                })
            }
            _ => inside.push(format!("{c} {op} {p}")),
        };
        let mut terms = Vec::new();
        let mut next = 0;
        for a in 0..os.len() {
            match items.get(a) {
                Some(SliceItem::At(i)) => {
                    let p = self.position(*i, os[a]);
                    holds(&c[a], "==", &p);
                }
                Some(SliceItem::Range { start, end }) => {
                    let s = self.position(*start, os[a]);
                    if s != "0" {
                        holds(&c[a], ">=", &s);
                    }
                    if let Some(e) = end {
                        let e = self.position(*e, os[a]);
                        holds(&c[a], "<", &e);
                    }
                    let at = if s == "0" { c[a].clone() } else { format!("({} - {s})", c[a]) };
                    terms.push((at, strides[next].clone()));
                    next += 1;
                }
                None => {
                    terms.push((c[a].clone(), strides[next].clone()));
                    next += 1;
                }
            }
        }
        let read = format!("{x}[{}]", sum(terms));
        if never {
            let _ = writeln!(self.body, "    {out}[gid] = 0.0f;");
        } else if inside.is_empty() {
            let _ = writeln!(self.body, "    {out}[gid] = {read};");
        } else {
            let _ = writeln!(self.body, "    {out}[gid] = ({}) ? {read} : 0.0f;", inside.join(" && "));
        }
        Some(launch)
    }

    fn concat(&mut self, axis: usize) -> Option<Launch> {
        let os = self.shape(self.node);
        let shapes: Vec<Vec<Dim>> = self.operands.iter().map(|x| self.shape(*x)).collect();
        if axis >= os.len() || shapes.iter().any(|s| s.len() != os.len()) {
            return None;
        }
        let xs: Vec<String> = self.operands.clone().into_iter().map(|x| self.args.buffer(x)).collect();
        let out = self.args.buffer(self.node);
        let launch = self.per_element(&os);
        let inner = self.args.extent(&os[axis + 1..]);
        let a = self.dim(os[axis]);
        let _ = writeln!(
            self.body,
            "    int i = gid % {inner};\n    int t = gid / {inner};\n    int a = t % {a};\n    int o = t / {a};"
        );
        // The running start of each operand along the axis: a literal while every size is known.
        let (mut known, mut syms) = (0u64, Vec::<String>::new());
        let last = xs.len() - 1;
        for (j, (x, s)) in xs.iter().zip(&shapes).enumerate() {
            let start = if syms.is_empty() { known.to_string() } else { format!("({known} + {})", syms.join(" + ")) };
            let width = self.dim(s[axis]);
            let at = if start == "0" { "a".to_string() } else { format!("(a - {start})") };
            let read = format!("{out}[gid] = {x}[(o * {width} + {at}) * {inner} + i];");
            match s[axis] {
                Dim::Known(n) => known += n,
                _ => syms.push(width),
            }
            let end = if syms.is_empty() { known.to_string() } else { format!("({known} + {})", syms.join(" + ")) };
            let _ = match (j, j == last) {
                (0, true) => writeln!(self.body, "    {read}"),
                (0, false) => writeln!(self.body, "    if (a < {end}) {{ {read} }}"),
                (_, false) => writeln!(self.body, "    else if (a < {end}) {{ {read} }}"),
                (_, true) => writeln!(self.body, "    else {{ {read} }}"),
            };
        }
        Some(launch)
    }

    fn select(&mut self, k: u64, mask: bool) -> Option<Launch> {
        let xs = self.shape(self.operands[0]);
        let n = match xs.last() {
            Some(Dim::Known(n)) if *n <= SELECT_MAX_ROW => *n,
            _ => return None,
        };
        let x = self.args.buffer(self.operands[0]);
        let out = self.args.buffer(self.node);
        let launch = self.per_element(&xs);
        let keep = if mask { "1.0f" } else { "v" };
        if k >= n {
            let _ = writeln!(self.body, "    float v = {x}[gid];\n    {out}[gid] = {keep};");
            return Some(launch);
        }
        // n ≥ 1 here: k < n.
        let _ = write!(
            self.body,
            "    int i = gid % {n};\n    __global const float* p = {x} + (gid - i);\n    float v = p[i];\n    int beaten = 0;\n    if (v != v) {{\n        for (int j = 0; j < i && beaten < {k}; j++) {{ float y = p[j]; beaten += y != y; }}\n    }} else {{\n        for (int j = 0; j < {n} && beaten < {k}; j++) {{\n            float y = p[j];\n            beaten += (y != y) || y > v || (y == v && j < i);\n        }}\n    }}\n    {out}[gid] = beaten < {k} ? {keep} : 0.0f;\n"
        );
        Some(launch)
    }
}

/// `Σ coordinate · stride` as a C expression, leaving out zero coordinates and unit strides.
fn sum(terms: Vec<(String, String)>) -> String {
    let parts: Vec<String> = terms
        .into_iter()
        .filter(|(c, s)| c != "0" && s != "0")
        .map(|(c, s)| if s == "1" { c } else { format!("{c} * {s}") })
        .collect();
    if parts.is_empty() {
        "0".into()
    } else {
        parts.join(" + ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::checked::DataSource;
    use crate::check::types::{Elem, SymId};
    use crate::ir::graph::{DataInfo, Output};
    use crate::kernel::partition;

    const N: Dim = Dim::Sym(SymId(0));

    fn k(n: u64) -> Dim {
        Dim::Known(n)
    }

    /// A graph of data inputs of `inputs` (elements, shapes) and `op` of all of them, named as
    /// the graph's output; the partition's kernel computing it.
    fn one(op: Op, inputs: &[(Elem, Vec<Dim>)]) -> (Graph, Kernel) {
        one_to(op, inputs, None)
    }

    /// As [`one`], with the node's target shape (an embed's).
    fn one_to(op: Op, inputs: &[(Elem, Vec<Dim>)], target: Option<Vec<Dim>>) -> (Graph, Kernel) {
        let mut g = Graph::default();
        g.syms = vec!["N".into()];
        let xs: Vec<NodeId> = inputs
            .iter()
            .enumerate()
            .map(|(i, (elem, shape))| {
                g.data.push(DataInfo {
                    name: format!("x{i}"),
                    elem: *elem,
                    shape: shape.clone(),
                    source: DataSource::Columns(vec![]),
                });
                g.push(Op::Data(i), &[], None, None)
            })
            .collect();
        let y = g.push(op, &xs, target, None);
        g.outputs.push(Output { name: "y".into(), node: y });
        let p = partition(&g);
        let kernel = p.kernels.iter().find(|k| k.nodes.contains(&y)).unwrap().clone();
        (g, kernel)
    }

    fn float(shape: Vec<Dim>) -> (Elem, Vec<Dim>) {
        (Elem::Float, shape)
    }

    fn render_one(op: Op, inputs: &[(Elem, Vec<Dim>)]) -> Option<Rendered> {
        let (g, kernel) = one(op, inputs);
        render(&g, &kernel, "t")
    }

    /// Plausible C: the header, balanced braces, the guard, every buffer pointer used.
    fn plausible(r: &Rendered) {
        let s = &r.source;
        assert!(s.contains("__kernel void t(__global float* arena"), "{s}");
        assert_eq!(s.matches('{').count(), s.matches('}').count(), "{s}");
        assert_eq!(s.matches('(').count(), s.matches(')').count(), "{s}");
        assert_eq!(s.matches('[').count(), s.matches(']').count(), "{s}");
        for i in 0..r.buffers.len() {
            assert!(s.matches(&format!("b{i}")).count() >= 2, "b{i} unused: {s}");
        }
        for j in 0..r.extents.len() {
            assert!(s.contains(&format!("int e{j}")), "{s}");
        }
    }

    #[test]
    fn logsumexp_short_and_long_rows() {
        let r = render_one(Op::LogSumExp { axis: 1, keepdims: false }, &[float(vec![N, k(10)])]).unwrap();
        plausible(&r);
        assert!(r.source.contains("if (gid >= e0) return;") && !r.source.contains("barrier"), "{}", r.source);
        assert_eq!(r.extents, vec![Extent(vec![N])]);
        assert_eq!(r.launch.local, vec![LOCAL]);
        let r = render_one(Op::LogSumExp { axis: 0, keepdims: true }, &[float(vec![k(7), k(3), k(5)])]).unwrap();
        plausible(&r);
        assert!(r.source.contains("p[j * 15]"), "{}", r.source);
        let r = render_one(Op::LogSumExp { axis: 1, keepdims: false }, &[float(vec![k(3), N])]).unwrap();
        plausible(&r);
        assert!(r.source.contains("barrier(CLK_LOCAL_MEM_FENCE)"), "{}", r.source);
        assert!(!r.source.contains("return;"), "no early return beside barriers: {}", r.source);
        assert_eq!(r.launch.global, vec![GlobalSize { extent: Extent(vec![k(3)]), div: 1, mul: TREE as u64 }]);
        assert_eq!(r.launch.local, vec![TREE]);
    }

    #[test]
    fn one_hot_compares_labels_with_class_indices() {
        let r = render_one(Op::OneHot { classes: 10 }, &[(Elem::Int, vec![N])]).unwrap();
        plausible(&r);
        assert!(r.source.contains("l == (float)c"), "{}", r.source);
        assert_eq!(r.launch.global, vec![GlobalSize::items(Extent(vec![N, k(10)]))]);
        assert!(render_one(Op::OneHot { classes: ONE_HOT_MAX_CLASSES + 1 }, &[(Elem::Int, vec![k(2)])]).is_none());
    }

    #[test]
    fn copies_render() {
        let r = render_one(Op::Transpose { perm: vec![2, 0, 1] }, &[float(vec![k(2), N, k(5)])]).unwrap();
        plausible(&r);
        assert_eq!(r.buffers.len(), 2);
        let items = vec![SliceItem::At(-1), SliceItem::Range { start: 1, end: Some(3) }];
        let r = render_one(Op::Slice { items: items.clone() }, &[float(vec![N, k(4), k(2)])]).unwrap();
        plausible(&r);
        assert!(r.source.contains("(-1 + e0)"), "{}", r.source);
        let (g, kernel) = one_to(Op::Embed { items }, &[float(vec![k(2), k(2)])], Some(vec![N, k(4), k(2)]));
        let r = render(&g, &kernel, "t").unwrap();
        plausible(&r);
        assert!(r.source.contains("c0 == (-1 + e1) && c1 >= 1 && c1 < 3"), "{}", r.source);
        let r = render_one(Op::Concat { axis: 1 }, &[float(vec![N, k(2)]), float(vec![N, k(3)]), float(vec![N, k(1)])])
            .unwrap();
        plausible(&r);
        assert!(r.source.contains("else if (a < 5)") && r.source.contains("else {"), "{}", r.source);
        assert_eq!(r.buffers.len(), 4);
    }

    #[test]
    fn kmax_of_short_known_rows_only() {
        let r = render_one(Op::KMax { k: 3 }, &[float(vec![N, k(10)])]).unwrap();
        plausible(&r);
        assert!(r.source.contains("beaten < 3 ? v : 0.0f"), "{}", r.source);
        let r = render_one(Op::KMaxMask { k: 3 }, &[float(vec![N, k(10)])]).unwrap();
        assert!(r.source.contains("beaten < 3 ? 1.0f : 0.0f"), "{}", r.source);
        assert!(render_one(Op::KMax { k: 3 }, &[float(vec![k(2), N])]).is_none());
        assert!(render_one(Op::KMax { k: 3 }, &[float(vec![k(2), k(SELECT_MAX_ROW + 1)])]).is_none());
    }

    #[test]
    fn other_kernels_and_empty_results() {
        let sum = Op::Reduce { f: crate::ir::op::ReduceOp::Sum, axes: vec![0], keepdims: false };
        assert!(render_one(sum, &[float(vec![k(3), k(2)])]).is_none());
        let r = render_one(Op::Transpose { perm: vec![1, 0] }, &[float(vec![k(0), k(3)])]).unwrap();
        assert_eq!(r.launch.global[0].extent.known(), Some(0));
    }

    #[test]
    fn fits_checks_positions_at_run_time_sizes() {
        let (g, kernel) = one(Op::Slice { items: vec![SliceItem::At(4)] }, &[float(vec![N, k(3)])]);
        let at = |n: u64| move |d: Dim| if let Dim::Known(v) = d { v } else { n };
        assert!(fits(&g, &kernel, &at(5)));
        assert!(!fits(&g, &kernel, &at(4)));
        assert!(!fits(&g, &kernel, &at(1 << 31)));
        let sum = Op::Reduce { f: crate::ir::op::ReduceOp::Sum, axes: vec![0], keepdims: false };
        let (g, kernel) = one(sum, &[float(vec![N, k(3)])]);
        assert!(fits(&g, &kernel, &at(1 << 40)), "not a kernel of this file");
    }
}

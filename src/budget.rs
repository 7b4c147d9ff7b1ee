//! The memory budget: before a command allocates its parameters and buffers, the bytes it will
//! hold (the buffer plan of every graph it runs, bound to the real sizes, plus the data and the
//! host's copies of parameters and optimizer state) are compared with the memory this process may
//! use: the smallest of the cgroup's limit (`memory.max`), the address-space limit (`RLIMIT_AS`)
//! and the physical memory (`/proc/meminfo`). A run that cannot fit is refused with the planned
//! bytes and the largest buffers and their source lines, instead of aborting on a failed
//! allocation minutes later.
//!
//! What is counted, per backend:
//! - a compiled backend (`cpu`, `opencl`): the arena of [`crate::kernel::plan`] for the graph's
//!   partition (f32; the device arena for OpenCL is counted on the host too, as the device's own
//!   memory is not known here);
//! - the reference interpreter: every node's value in `f64` (it keeps them all, to find where a
//!   NaN started), a bound no sharing reduces.

use crate::backend::BackendKind;
use crate::check::types::Dim;
use crate::ir::{Graph, NodeId};

/// The memory this process may use, and where that limit comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Limit {
    pub bytes: u64,
    pub source: String,
}

/// The smallest of the cgroup limit, `RLIMIT_AS` and the physical memory; `None` when none of
/// them can be read (then nothing is refused).
pub fn available() -> Option<Limit> {
    let mut limits = Vec::new();
    for path in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
        if let Some(b) = std::fs::read_to_string(path).ok().and_then(|t| t.trim().parse::<u64>().ok()) {
            limits.push(Limit { bytes: b, source: format!("the cgroup's limit, {path}") });
            break;
        }
    }
    if let Some(b) = address_space_limit() {
        limits.push(Limit { bytes: b, source: "the address-space limit (RLIMIT_AS, `ulimit -v`)".into() });
    }
    if let Some(b) = physical() {
        limits.push(Limit { bytes: b, source: "the physical memory (MemTotal in /proc/meminfo)".into() });
    }
    limits.into_iter().min_by_key(|l| l.bytes)
}

/// `RLIMIT_AS` from `/proc/self/limits` ("Max address space  unlimited  unlimited  bytes").
fn address_space_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max address space"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn physical() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes as people read them: `412.3 GB`, `1.5 MB`, `96 bytes`.
pub fn show(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_000 => format!("{bytes} bytes"),
        1_000..1_000_000 => format!("{:.1} kB", b / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", b / 1e6),
        1_000_000_000..1_000_000_000_000 => format!("{:.1} GB", b / 1e9),
        _ => format!("{:.1} TB", b / 1e12),
    }
}

/// One part of what a command will hold.
#[derive(Clone, Debug)]
pub struct Part {
    pub what: String,
    pub bytes: u64,
}

/// A buffer of a graph: its node and bytes.
#[derive(Clone, Debug)]
pub struct Buffer {
    pub what: String,
    pub node: NodeId,
    pub bytes: u64,
}

/// What a command plans to hold: its parts and the largest buffers of its graphs.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub parts: Vec<Part>,
    pub buffers: Vec<(Buffer, usize)>,
    /// What the user can change (default: fewer rows or smaller layers).
    pub help: Option<String>,
}

impl Plan {
    pub fn total(&self) -> u64 {
        self.parts.iter().map(|p| p.bytes).fold(0u64, u64::saturating_add)
    }

    pub fn add(&mut self, what: impl Into<String>, bytes: u64) {
        self.parts.push(Part { what: what.into(), bytes });
    }

    /// Adds graph number `graph`'s buffers (its planned memory on `kind`) with every symbolic
    /// size given by `sizes`; `what` names the graph ("the training step at 64 rows").
    pub fn add_graph(&mut self, what: &str, g: &Graph, graph: usize, kind: BackendKind, sizes: &dyn Fn(Dim) -> u64) {
        let (bytes, buffers) = graph_bytes(g, kind, sizes);
        self.add(what, bytes);
        self.buffers.extend(buffers.into_iter().map(|b| (Buffer { what: what.to_string(), ..b }, graph)));
    }

    /// `Err` with the message when the plan does not fit in `limit`.
    pub fn check(&self, limit: Option<&Limit>, describe: &dyn Fn(usize, NodeId) -> String) -> Result<(), String> {
        let Some(limit) = limit else { return Ok(()) };
        let total = self.total();
        if total <= limit.bytes {
            return Ok(());
        }
        let parts: Vec<String> =
            self.parts.iter().filter(|p| p.bytes > 0).map(|p| format!("{} {}", p.what, show(p.bytes))).collect();
        let mut largest = self.buffers.clone();
        largest.sort_by_key(|b| std::cmp::Reverse(b.0.bytes));
        let mut msg = format!(
            "this run needs {} ({}), more than the {} this process may use ({})",
            show(total),
            parts.join(", "),
            show(limit.bytes),
            limit.source
        );
        for (b, graph) in largest.iter().take(3) {
            msg.push_str(&format!("\n  largest buffer: {} in {}, {}", show(b.bytes), b.what, describe(*graph, b.node)));
        }
        let help = self.help.as_deref().unwrap_or("fewer rows or smaller layers need less");
        msg.push_str(&format!("\n  help: {help}"));
        Err(msg)
    }
}

/// Symbolic sizes bound from data shapes (the first datum that fixes a symbol wins), with the
/// example axis (`rows`) replacing each datum's first size when given.
pub fn sizes_from(g: &Graph, shapes: &[Vec<usize>], rows: Option<u64>) -> impl Fn(Dim) -> u64 {
    let mut bound: Vec<Option<u64>> = vec![None; g.syms.len()];
    for (info, shape) in g.data.iter().zip(shapes) {
        for (axis, (want, got)) in info.shape.iter().zip(shape).enumerate() {
            if let Dim::Sym(s) = want {
                let n = if axis == 0 { rows.unwrap_or(*got as u64) } else { *got as u64 };
                let slot = s.0 as usize;
                if slot >= bound.len() {
                    bound.resize(slot + 1, None);
                }
                bound[slot].get_or_insert(n);
            }
        }
    }
    move |d| match d {
        Dim::Known(k) => k,
        Dim::Sym(s) => bound.get(s.0 as usize).copied().flatten().unwrap_or(1),
        _ => 1,
    }
}

/// The bytes `g` holds while it runs on `kind`, and its largest buffers.
fn graph_bytes(g: &Graph, kind: BackendKind, sizes: &dyn Fn(Dim) -> u64) -> (u64, Vec<Buffer>) {
    let count = |shape: &[Dim]| shape.iter().map(|d| sizes(*d)).fold(1u64, u64::saturating_mul);
    let mut buffers: Vec<Buffer> = match kind {
        BackendKind::Interp => g
            .node_ids()
            .into_iter()
            .map(|id| Buffer { what: String::new(), node: id, bytes: count(&g.node(id).shape).saturating_mul(8) })
            .collect(),
        BackendKind::Cpu | BackendKind::OpenCl(_) => {
            let p = crate::kernel::partition(g);
            let plan = crate::kernel::plan(g, &p, sizes);
            let total = plan.arena_bytes;
            let mut b: Vec<Buffer> = plan
                .values
                .iter()
                .filter(|v| !v.in_place)
                .map(|v| Buffer { what: String::new(), node: v.node, bytes: v.bytes })
                .collect();
            b.sort_by_key(|x| std::cmp::Reverse(x.bytes));
            b.truncate(3);
            return (total, b);
        }
    };
    let total = buffers.iter().map(|b| b.bytes).fold(0u64, u64::saturating_add);
    buffers.sort_by_key(|x| std::cmp::Reverse(x.bytes));
    buffers.truncate(3);
    (total, buffers)
}

/// Bytes of the host's `f64` copies of every parameter of `g` (times `copies`).
pub fn param_bytes(g: &Graph, copies: u64) -> u64 {
    g.params
        .iter()
        .map(|p| p.shape.iter().fold(1u64, |a, n| a.saturating_mul(*n)))
        .fold(0u64, u64::saturating_add)
        .saturating_mul(8)
        .saturating_mul(copies)
}

/// Bytes of loaded data (`f64` on the host).
pub fn data_bytes(data: &[crate::interp::HostTensor]) -> u64 {
    data.iter().map(|d| d.values.len() as u64 * 8).sum()
}

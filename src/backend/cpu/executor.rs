//! A first whole-graph CPU executor, in `f32`: the kernel partition (`kernel::partition`) run
//! kernel by kernel on one arena laid out by the buffer plan (`kernel::plan`).
//!
//! - Every elementwise kernel the JIT supports (`supports`) is compiled once, in [`Executor::new`],
//!   into one JIT module, and called on raw pointers into the arena (the plan guarantees that a
//!   kernel never writes a slot it reads, which is what the calling convention asks).
//! - A matrix product runs on the interpreter's `matmul`; its elementwise epilogue, when the JIT
//!   supports it as a group (inputs: the product and values from outside), is compiled too and
//!   reads the product from a vector of its own.
//! - Every other kernel (reductions, copies, selections, one-hot, elementwise kernels and
//!   epilogues the JIT refuses) runs with the interpreter's per-op kernels (`interp::ops`) in
//!   `f32`: operands are copied out of the arena into tensors, results copied back into their
//!   slots.
//! - [`Executor::run`] checks the boundary and binds the symbolic sizes as the interpreter does,
//!   plans the buffers for those sizes (cached per distinct binding), writes the leaves, runs the
//!   kernels in order and returns the graph's outputs.
//!
//! Results equal `interp::run_with::<f32>` except where the JIT contracts `a·b + c` into one
//! `fma` and where a reduction epilogue sums in another order (see `backend/cpu/mod.rs`).

use super::{compile, matmul, supports, BackendError, Compiled, Options};
use crate::check::types::Dim;
use crate::interp::{ops, HostTensor, InterpError, Tensor};
use crate::ir::{Graph, NodeId, Op};
use crate::kernel::{self, BufferPlan, KernelKind, Partition, ELEMENT_BYTES};
use crate::passes::fusion::FusionGroup;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Why a run failed.
#[derive(Clone, Debug, PartialEq)]
pub enum ExecError {
    /// The inputs do not fit the graph, or an interpreted kernel failed.
    Interp(InterpError),
    /// A compiled kernel could not run.
    Backend(BackendError),
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecError::Interp(e) => e.fmt(f),
            ExecError::Backend(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ExecError {}

impl From<InterpError> for ExecError {
    fn from(e: InterpError) -> ExecError {
        ExecError::Interp(e)
    }
}

impl From<BackendError> for ExecError {
    fn from(e: BackendError) -> ExecError {
        ExecError::Backend(e)
    }
}

/// The graph's named outputs, in `Graph::outputs` order (the loss first).
#[derive(Clone, Debug)]
pub struct ExecOutputs {
    entries: Vec<(String, Tensor<f32>)>,
}

impl ExecOutputs {
    pub fn get(&self, name: &str) -> Option<&Tensor<f32>> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The total loss, `outputs[0]`.
    pub fn loss(&self) -> f64 {
        self.entries.first().map_or(f64::NAN, |(_, t)| t.data[0] as f64)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor<f32>)> + '_ {
        self.entries.iter().map(|(n, t)| (n.as_str(), t))
    }
}

/// An output carried into a leaf between runs.
struct Carried {
    name: String,
    output: NodeId,
    leaf: NodeId,
}

/// How one kernel of the partition runs.
#[derive(Clone, Copy, Debug)]
pub enum Rendering<'a> {
    /// One JIT compiled loop: an elementwise kernel, or a reduction alone.
    Compiled(&'a FusionGroup),
    /// A product on `matmul.rs` (the `gemm` crate), then its epilogue: compiled, or (when it
    /// has one the JIT refuses, `None` with more than one node) on the interpreter's kernels.
    MatMul { epilogue: Option<&'a FusionGroup> },
    /// On the interpreter's per-op kernels, in `f32`.
    Interpreted,
}

/// How many kernels the executor has, by how they run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Kernels in the partition.
    pub kernels: usize,
    /// Elementwise and reduction kernels compiled by the JIT.
    pub jit: usize,
    /// Matrix-product kernels: the product on `matmul.rs`.
    pub matmul: usize,
    /// Of those, the ones whose elementwise epilogue is compiled by the JIT.
    pub jit_epilogues: usize,
    /// Of those, the ones whose epilogue runs on the interpreter's per-op kernels.
    pub interpreted_epilogues: usize,
    /// Other kernels run with the interpreter's per-op kernels.
    pub interpreted: usize,
    /// Elementwise kernels the JIT refused (counted in `interpreted`).
    pub unsupported: usize,
    /// Executions so far, over every run: compiled kernels and epilogues, products, and
    /// interpreted kernels and epilogues.
    pub jit_runs: u64,
    /// Of the compiled runs, those split into bands of rows on several threads.
    pub banded_runs: u64,
    pub native_runs: u64,
    pub interpreted_runs: u64,
}

/// The arena layout for one binding of the symbolic sizes.
struct Layout {
    plan: BufferPlan,
    /// Concrete shape of every node, indexed by `NodeId::index()`.
    shapes: Vec<Vec<usize>>,
}

pub struct Executor {
    graph: Graph,
    partition: Partition,
    /// Keeps the JIT code alive; `None` when no kernel was compiled.
    compiled: Option<Compiled>,
    /// For each kernel of the partition, its index in `compiled.kernels()`: the whole kernel
    /// (elementwise) or the epilogue after the product (matmul).
    jit_of: Vec<Option<usize>>,
    /// The groups compiled, in `compiled.kernels()` order.
    groups: Vec<FusionGroup>,
    layouts: HashMap<Vec<Option<usize>>, Layout>,
    arena: Vec<f32>,
    /// Transposed views (`kernel::View::transposed`): products read their base with swapped
    /// strides.
    transposed: HashSet<NodeId>,
    /// A product no one reads but its compiled epilogue lives here, not in the arena.
    scratch: Vec<f32>,
    /// Threads a large product may use.
    threads: usize,
    stats: Stats,
    /// Time per kernel, while profiling.
    times: Option<Vec<Duration>>,
    /// Outputs copied into leaves after every run ([`Executor::carry`]).
    carried: Vec<Carried>,
    /// Whether the carried leaves' slots hold values from a run.
    carried_live: bool,
    /// The sizes of the latest run: its key in `layouts`.
    last_layout: Option<Vec<Option<usize>>>,
}

impl Executor {
    /// Partitions `g` (verified) and compiles every elementwise kernel the JIT supports.
    pub fn new(g: &Graph) -> Result<Executor, BackendError> {
        Executor::with_options(g, &Options::default())
    }

    pub fn with_options(g: &Graph, opts: &Options) -> Result<Executor, BackendError> {
        let partition = kernel::partition(g);
        let mut groups = Vec::new();
        let mut jit_of = vec![None; partition.kernels.len()];
        let mut stats = Stats { kernels: partition.kernels.len(), ..Stats::default() };
        for (i, k) in partition.kernels.iter().enumerate() {
            match k.kind {
                KernelKind::Elementwise => {
                    let grp = FusionGroup {
                        nodes: k.nodes.clone(),
                        shape: k.space.clone(),
                        epilogue: k.reduction,
                        inputs: k.inputs.clone(),
                        outputs: k.outputs.clone(),
                    };
                    if supports(g, &grp).is_ok() {
                        jit_of[i] = Some(groups.len());
                        groups.push(grp);
                        stats.jit += 1;
                        continue;
                    }
                    stats.unsupported += 1;
                }
                KernelKind::MatMul => {
                    stats.matmul += 1;
                    if let Some(grp) = epilogue_group(g, k) {
                        if supports(g, &grp).is_ok() {
                            jit_of[i] = Some(groups.len());
                            groups.push(grp);
                            stats.jit_epilogues += 1;
                            continue;
                        }
                    }
                    if k.nodes.len() > 1 {
                        stats.interpreted_epilogues += 1;
                    }
                    continue;
                }
                KernelKind::Reduce => {
                    // A sum, mean or max alone: the elementwise loop with nothing but its epilogue.
                    let r = k.nodes[0];
                    if matches!(g.node(r).op, Op::Reduce { .. }) {
                        let grp = FusionGroup {
                            nodes: vec![r],
                            shape: k.space.clone(),
                            epilogue: Some(r),
                            inputs: k.inputs.clone(),
                            outputs: k.outputs.clone(),
                        };
                        if supports(g, &grp).is_ok() {
                            jit_of[i] = Some(groups.len());
                            groups.push(grp);
                            stats.jit += 1;
                            continue;
                        }
                    }
                }
                KernelKind::Copy | KernelKind::Select | KernelKind::OneHot => {}
            }
            stats.interpreted += 1;
        }
        let compiled = if groups.is_empty() {
            None
        } else {
            let refs: Vec<&FusionGroup> = groups.iter().collect();
            Some(compile(g, &refs, opts)?)
        };
        let transposed = partition.views.iter().filter(|v| v.transposed).map(|v| v.node).collect();
        Ok(Executor {
            graph: g.clone(),
            partition,
            compiled,
            groups,
            jit_of,
            layouts: HashMap::new(),
            arena: Vec::new(),
            transposed,
            scratch: Vec::new(),
            threads: opts.threads,
            stats,
            times: None,
            carried: Vec::new(),
            carried_live: false,
            last_layout: None,
        })
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Keeps training state in the arena between runs: after every run whose loss (the first
    /// output) is finite, each named output is copied into the buffer of its leaf (a parameter or
    /// extra input of the same shape), and the runs after the first keep that value instead of
    /// writing the host's. Calling it again starts over from the host's values. Carried outputs are not
    /// returned by [`Executor::run`]; [`Executor::carried_values`] reads the leaves.
    pub fn carry(&mut self, links: &[(&str, NodeId)]) -> Result<(), BackendError> {
        let g = &self.graph;
        let mut carried = Vec::new();
        for (name, leaf) in links {
            let output = g
                .outputs
                .iter()
                .find(|o| o.name == *name)
                .ok_or_else(|| BackendError::Run(format!("no output `{name}` to carry")))?
                .node;
            let ok = g.node_ids().contains(leaf)
                && matches!(g.node(*leaf).op, Op::Param(_) | Op::Input(_))
                && g.node(*leaf).shape == g.node(output).shape;
            if !ok {
                return Err(BackendError::Run(format!("`{name}` cannot be carried into {leaf}")));
            }
            carried.push(Carried { name: name.to_string(), output, leaf: *leaf });
        }
        self.carried = carried;
        self.carried_live = false;
        Ok(())
    }

    /// The carried leaves' values after the latest run (their host values before any run).
    pub fn carried_values(&self) -> Vec<(String, Vec<f32>)> {
        let layout = self.last_layout.as_ref().map(|k| &self.layouts[k]);
        self.carried
            .iter()
            .map(|c| {
                let v = match (layout, self.carried_live) {
                    (Some(l), true) => l.plan.slot(c.leaf).map_or_else(Vec::new, |s| {
                        let off = (l.plan.slots[s].offset / ELEMENT_BYTES) as usize;
                        let n: usize = l.shapes[c.leaf.index()].iter().product();
                        self.arena[off..off + n].to_vec()
                    }),
                    _ => Vec::new(),
                };
                (c.name.clone(), v)
            })
            .collect()
    }

    /// How kernel `k` of the partition runs (what `circ emit` prints).
    pub fn rendering(&self, k: usize) -> Rendering<'_> {
        let group = self.jit_of.get(k).copied().flatten().map(|j| &self.groups[j]);
        match self.partition.kernels.get(k).map(|k| k.kind) {
            Some(KernelKind::MatMul) => Rendering::MatMul { epilogue: group },
            _ => group.map_or(Rendering::Interpreted, Rendering::Compiled),
        }
    }

    /// The peak bytes of the buffer plan of the latest run (leaves and intermediates), known before
    /// any kernel ran.
    pub fn peak_bytes(&self) -> Option<u64> {
        self.last_layout.as_ref().map(|k| self.layouts[k].plan.peak_bytes)
    }

    /// Starts (or stops) timing every kernel; the times add up over runs.
    pub fn profile(&mut self, on: bool) {
        self.times = on.then(|| vec![Duration::ZERO; self.partition.kernels.len()]);
    }

    /// The time spent in each kernel of the partition since [`Executor::profile`] was turned on.
    pub fn kernel_times(&self) -> Option<&[Duration]> {
        self.times.as_deref()
    }

    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    /// Runs the graph on `data` (one per `g.data`), `params` (one per `g.params`) and `inputs`
    /// (one per `g.inputs`), and returns its named outputs.
    pub fn run(
        &mut self,
        data: &[HostTensor],
        params: &[Vec<f64>],
        inputs: &[Vec<f64>],
    ) -> Result<ExecOutputs, ExecError> {
        let g = &self.graph;
        let sizes = bind(g, data, params, inputs)?;
        if !self.layouts.contains_key(&sizes) {
            let layout = layout(g, &self.partition, &sizes)?;
            self.layouts.insert(sizes.clone(), layout);
        }
        if self.carried_live && self.last_layout.as_ref() != Some(&sizes) {
            // The carried leaves move to their slots in the new layout.
            let values = self.carried_values();
            self.last_layout = Some(sizes.clone());
            let plan = &self.layouts[&sizes].plan;
            for (c, (_, v)) in self.carried.iter().zip(values) {
                let off = plan.slot(c.leaf).map(|s| (plan.slots[s].offset / ELEMENT_BYTES) as usize);
                if let Some(off) = off {
                    if self.arena.len() < off + v.len() {
                        self.arena.resize(off + v.len(), 0.0);
                    }
                    self.arena[off..off + v.len()].copy_from_slice(&v);
                }
            }
        }
        if self.last_layout.as_ref() != Some(&sizes) {
            self.last_layout = Some(sizes.clone());
        }
        let layout = &self.layouts[&sizes];
        let plan = &layout.plan;
        let shapes = &layout.shapes;
        let words = (plan.arena_bytes / ELEMENT_BYTES) as usize;
        if self.arena.len() < words {
            self.arena.resize(words, 0.0);
        }
        let arena = &mut self.arena;
        let at = |id: NodeId| -> Result<usize, ExecError> {
            let s = plan.slot(id).ok_or_else(|| InterpError::Graph(format!("{id} is read but has no buffer")))?;
            Ok((plan.slots[s].offset / ELEMENT_BYTES) as usize)
        };
        let len = |id: NodeId| shapes[id.index()].iter().product::<usize>();
        // Leaves (but carried ones, which hold the previous run's values).
        for id in g.node_ids() {
            if self.carried_live && self.carried.iter().any(|c| c.leaf == id) {
                continue;
            }
            let off = match g.node(id).op {
                Op::Data(_) | Op::Param(_) | Op::Input(_) | Op::Const(_) => match plan.slot(id) {
                    Some(s) => (plan.slots[s].offset / ELEMENT_BYTES) as usize,
                    None => continue,
                },
                _ => continue,
            };
            let dst = &mut arena[off..off + len(id)];
            let src: &[f64] = match g.node(id).op {
                Op::Data(i) => &data[i].values,
                Op::Param(i) => &params[i],
                Op::Input(i) => &inputs[i],
                Op::Const(c) => {
                    dst[0] = c as f32;
                    continue;
                }
                _ => unreachable!("only leaves reach here"),
            };
            for (d, s) in dst.iter_mut().zip(src) {
                *d = *s as f32;
            }
        }
        // Kernels, in order.
        let mut bufs: Vec<*mut f32> = Vec::new();
        let mut started: Option<(usize, Instant)> = None;
        for (ki, k) in self.partition.kernels.iter().enumerate() {
            if let Some(times) = self.times.as_mut() {
                if let Some((prev, t)) = started {
                    times[prev] += t.elapsed();
                }
                started = Some((ki, Instant::now()));
            }
            let jit = match (self.jit_of[ki], self.compiled.as_ref()) {
                (Some(j), Some(code)) => Some(&code.kernels()[j]),
                _ => None,
            };
            if let (Some(jk), KernelKind::Elementwise | KernelKind::Reduce) = (jit, k.kind) {
                let dims: Vec<usize> = k.space.iter().map(|d| dim(g, *d, &sizes)).collect::<Result<_, _>>()?;
                let base = arena.as_mut_ptr();
                let total = arena.len();
                let banded = call(jk, &dims, &mut bufs, self.threads, |x| {
                    let off = at(x)?;
                    // SAFETY (of `add`): `off + len(x) ≤ total` is checked by `call` before use;
                    // `off` itself is a slot offset inside the arena.
                    Ok((unsafe { base.add(off) }, total - off.min(total), len(x)))
                })?;
                self.stats.jit_runs += 1;
                self.stats.banded_runs += u64::from(banded);
                continue;
            }
            if k.kind == KernelKind::MatMul {
                // The product into the slot of `m` (when stored) or the scratch vector, then the
                // epilogue reading it: compiled, or on the interpreter's kernels.
                let m = k.nodes[0];
                let xs = g.operands(m);
                let operand = |x: NodeId| -> Result<matmul::Operand<'_>, ExecError> {
                    let off = at(x)?;
                    let transposed = self.transposed.contains(&x);
                    let shape = &shapes[x.index()];
                    let stored = if transposed { &shapes[g.operands(x)[0].index()] } else { shape };
                    let n = stored.iter().product::<usize>();
                    if off + n > arena.len() {
                        return Err(BackendError::Run(format!("operand {x} does not fit its buffer")).into());
                    }
                    // SAFETY (of `add`): `off + n ≤ arena.len()`, checked above.
                    Ok(matmul::Operand { data: unsafe { arena.as_ptr().add(off) }, shape, transposed })
                };
                let (a, b) = (operand(xs[0])?, operand(xs[1])?);
                let count = len(m);
                let stored = k.outputs.contains(&m);
                let dst = if stored {
                    let off = at(m)?;
                    if off + count > arena.len() {
                        return Err(BackendError::Run(format!("the product {m} does not fit its buffer")).into());
                    }
                    // SAFETY (of `add`): in bounds, checked above.
                    unsafe { arena.as_mut_ptr().add(off) }
                } else {
                    if self.scratch.len() < count {
                        self.scratch.resize(count, 0.0);
                    }
                    self.scratch.as_mut_ptr()
                };
                // SAFETY: both operands and the destination hold their shapes' element counts
                // (checked above); the destination is the product's own slot, which the plan
                // keeps apart from every slot the kernel reads, or the scratch vector.
                unsafe { matmul::product(a, b, dst, &shapes[m.index()], self.threads) }.map_err(|message| {
                    let n = g.node(m);
                    InterpError::Node { node: m, op: n.op.name(), label: n.label.clone(), message }
                })?;
                if k.nodes.len() > 1 {
                    if let Some(jk) = jit {
                        let dims: Vec<usize> =
                            k.space.iter().map(|d| dim(g, *d, &sizes)).collect::<Result<_, _>>()?;
                        let base = arena.as_mut_ptr();
                        let total = arena.len();
                        let banded = call(jk, &dims, &mut bufs, self.threads, |x| {
                            if x == m && !stored {
                                return Ok((dst, count, count));
                            }
                            let off = at(x)?;
                            // SAFETY (of `add`): as above.
                            Ok((unsafe { base.add(off) }, total - off.min(total), len(x)))
                        })?;
                        self.stats.jit_runs += 1;
                        self.stats.banded_runs += u64::from(banded);
                    } else {
                        // SAFETY: `dst` holds `count` elements written just above.
                        let product = unsafe { std::slice::from_raw_parts(dst, count) }.to_vec();
                        let seed = (m, Tensor { shape: shapes[m.index()].clone(), data: product });
                        interpret(g, k, &k.nodes[1..], Some(seed), arena, shapes, &at)?;
                        self.stats.interpreted_runs += 1;
                    }
                }
                self.stats.native_runs += 1;
                continue;
            }
            interpret(g, k, &k.nodes, None, arena, shapes, &at)?;
            self.stats.interpreted_runs += 1;
        }
        if let (Some(times), Some((prev, t))) = (self.times.as_mut(), started) {
            times[prev] += t.elapsed();
        }
        // A step whose loss (the first output) is not finite commits nothing: the leaves keep
        // the values it started from, so the caller can find where it went wrong.
        let loss_finite = match g.outputs.first() {
            Some(o) => {
                let off = at(o.node)?;
                arena.get(off..off + len(o.node)).is_some_and(|v| v.iter().all(|x| x.is_finite()))
            }
            None => true,
        };
        for c in self.carried.iter().filter(|_| loss_finite) {
            let (from, to) = (at(c.output)?, at(c.leaf)?);
            let n = len(c.leaf);
            if from + n > arena.len() || to + n > arena.len() {
                return Err(BackendError::Run(format!("carried value {} does not fit its buffer", c.name)).into());
            }
            arena.copy_within(from..from + n, to);
        }
        self.carried_live = !self.carried.is_empty();
        let mut entries = Vec::with_capacity(g.outputs.len());
        for o in &g.outputs {
            if self.carried.iter().any(|c| c.name == o.name) {
                continue;
            }
            let off = at(o.node)?;
            let shape = shapes[o.node.index()].clone();
            let n = len(o.node);
            entries.push((o.name.clone(), Tensor { shape, data: arena[off..off + n].to_vec() }));
        }
        Ok(ExecOutputs { entries })
    }
}

/// Runs `nodes` of kernel `k` with the interpreter's per-op kernels in `f32`: operands are copied
/// out of the arena (or taken from `seed`, a value computed before), outputs copied back.
fn interpret(
    g: &Graph,
    k: &kernel::Kernel,
    nodes: &[NodeId],
    seed: Option<(NodeId, Tensor<f32>)>,
    arena: &mut [f32],
    shapes: &[Vec<usize>],
    at: &dyn Fn(NodeId) -> Result<usize, ExecError>,
) -> Result<(), ExecError> {
    let len = |id: NodeId| shapes[id.index()].iter().product::<usize>();
    let mut local: HashMap<NodeId, Tensor<f32>> = seed.into_iter().collect();
    for node in nodes {
        let n = g.node(*node);
        let mut read: Vec<Tensor<f32>> = Vec::new();
        for o in g.operands(*node) {
            let t = match local.get(&o) {
                Some(t) => t.clone(),
                None => {
                    let off = at(o)?;
                    let data = arena.get(off..off + len(o)).ok_or_else(|| {
                        BackendError::Run(format!("operand {o} does not fit its buffer"))
                    })?;
                    Tensor { shape: shapes[o.index()].clone(), data: data.to_vec() }
                }
            };
            read.push(t);
        }
        let refs: Vec<&Tensor<f32>> = read.iter().collect();
        let shape = &shapes[node.index()];
        let fail = |message: String| InterpError::Node { node: *node, op: n.op.name(), label: n.label.clone(), message };
        let value = ops::apply(&n.op, &refs, shape).map_err(fail)?;
        if &value.shape != shape {
            return Err(fail(format!("computed a value of shape {:?}, the node's is {shape:?}", value.shape)).into());
        }
        local.insert(*node, value);
    }
    for o in &k.outputs {
        let Some(v) = local.get(o) else { continue };
        let off = at(*o)?;
        let dst = arena
            .get_mut(off..off + v.data.len())
            .ok_or_else(|| BackendError::Run(format!("output {o} does not fit its buffer")))?;
        dst.copy_from_slice(&v.data);
    }
    Ok(())
}

/// The elementwise epilogue of a matrix-product kernel as a fusion group whose inputs include the
/// product; `None` when the kernel has no epilogue or the epilogue writes nothing.
fn epilogue_group(g: &Graph, k: &kernel::Kernel) -> Option<FusionGroup> {
    let m = *k.nodes.first()?;
    let nodes: Vec<NodeId> = k.nodes[1..].to_vec();
    let outputs: Vec<NodeId> = k.outputs.iter().copied().filter(|o| *o != m).collect();
    if nodes.is_empty() || outputs.is_empty() {
        return None;
    }
    let mut inputs = Vec::new();
    for n in &nodes {
        for o in g.operands(*n) {
            if !nodes.contains(&o) && !inputs.contains(&o) {
                inputs.push(o);
            }
        }
    }
    Some(FusionGroup { nodes, shape: k.space.clone(), epilogue: None, inputs, outputs })
}

/// Calls a compiled kernel; `buffer(x)` gives the value `x`'s pointer, the number of `f32`s
/// available from it, and the node's element count. Every length is checked before the call.
/// A large kernel whose rows can run apart is split into `threads` bands of rows of axis 0.
fn call(
    jk: &super::ElementwiseKernel,
    dims: &[usize],
    bufs: &mut Vec<*mut f32>,
    threads: usize,
    mut buffer: impl FnMut(NodeId) -> Result<(*mut f32, usize, usize), ExecError>,
) -> Result<bool, ExecError> {
    bufs.clear();
    for (i, x) in jk.inputs().iter().enumerate() {
        let (ptr, room, len) = buffer(*x)?;
        let n = jk.input_len(i, dims);
        if n > room || n > len.max(1) {
            return Err(BackendError::Run(format!("input {x} does not fit its buffer")).into());
        }
        bufs.push(ptr);
    }
    for (o, y) in jk.outputs().iter().enumerate() {
        let (ptr, room, len) = buffer(*y)?;
        let n = jk.output_len(o, dims);
        if n > room || n != len {
            return Err(BackendError::Run(format!("output {y} does not fit its buffer")).into());
        }
        bufs.push(ptr);
    }
    let rows = dims.first().copied().unwrap_or(1);
    let bands = threads.min(rows);
    if bands < 2 || !jk.splits_rows() || dims.iter().product::<usize>() < PARALLEL_ELEMENTS {
        // SAFETY: every pointer has room for what the kernel reads or writes for `dims` (checked
        // above: each buffer holds its node's element count, which is what the kernel indexes);
        // the buffer plan gives a kernel's outputs slots distinct from each other and from every
        // slot it reads, and the product of a matmul kernel lives in its own vector.
        unsafe { jk.call(bufs.as_ptr(), dims.as_ptr()) };
        return Ok(false);
    }
    let strides: Vec<usize> = (0..bufs.len()).map(|b| jk.row_stride(b, dims)).collect();
    let work: Vec<(SendPtrs, Vec<usize>)> = (0..bands)
        .map(|band| {
            let (start, end) = (rows * band / bands, rows * (band + 1) / bands);
            let mut band_dims = dims.to_vec();
            band_dims[0] = end - start;
            // SAFETY (of `add`): row `start < rows` of each buffer lies inside it.
            let ptrs = bufs.iter().zip(&strides).map(|(p, s)| unsafe { p.add(start * s) }).collect();
            (SendPtrs(ptrs), band_dims)
        })
        .collect();
    rayon::scope(|scope| {
        for (ptrs, band_dims) in work {
            scope.spawn(move |_| {
                // SAFETY: as in the single call, for this band's rows: each band reads its rows of
                // the inputs (or whole inputs that do not vary along axis 0) and writes only its
                // own rows of every output (`splits_rows`: no reduction over axis 0), so bands
                // never write the same element.
                unsafe { jk.call(ptrs.as_ptr(), band_dims.as_ptr()) };
            });
        }
    });
    Ok(true)
}

/// Elementwise kernels with at least this many elements are split between threads.
const PARALLEL_ELEMENTS: usize = 1 << 16;

/// Buffer pointers handed to another thread (the bands of one kernel write disjoint rows).
struct SendPtrs(Vec<*mut f32>);
// SAFETY: the pointers are only dereferenced by generated code under the conditions stated at
// its call in `call`.
unsafe impl Send for SendPtrs {}

impl SendPtrs {
    /// Through a method, so that a closure captures the whole (`Send`) value.
    fn as_ptr(&self) -> *const *mut f32 {
        self.0.as_ptr()
    }
}

fn dim(g: &Graph, d: Dim, sizes: &[Option<usize>]) -> Result<usize, InterpError> {
    match d {
        Dim::Known(n) => Ok(n as usize),
        Dim::Sym(s) => sizes.get(s.0 as usize).copied().flatten().ok_or_else(|| {
            InterpError::Graph(format!(
                "no datum fixes the size `{}`",
                g.syms.get(s.0 as usize).map_or("?", String::as_str)
            ))
        }),
        Dim::Any => Err(InterpError::Graph("a node has an unknown size (`Dim::Any`)".into())),
    }
}

/// Concrete shapes of every node and the buffer plan for one binding.
fn layout(g: &Graph, p: &Partition, sizes: &[Option<usize>]) -> Result<Layout, InterpError> {
    let slots = g.node_ids().iter().map(|n| n.index() + 1).max().unwrap_or(0);
    let mut shapes = vec![Vec::new(); slots];
    for id in g.node_ids() {
        shapes[id.index()] = crate::interp::bind::concrete(g, id, sizes)?;
    }
    let plan = kernel::plan(g, p, |d| dim(g, d, sizes).unwrap_or(0) as u64);
    Ok(Layout { plan, shapes })
}

/// The interpreter's boundary checks: the same errors for the same mistakes.
fn bind(
    g: &Graph,
    data: &[HostTensor],
    params: &[Vec<f64>],
    inputs: &[Vec<f64>],
) -> Result<Vec<Option<usize>>, InterpError> {
    let sizes = crate::interp::bind::bind(g, data, params)?;
    crate::interp::bind::check_inputs(g, inputs)?;
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The training step of `examples/mlp_digits.circ` with sgd, and a batch of `n` rows.
    fn step_and_batch(n: usize) -> (Graph, Vec<HostTensor>, Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let text = include_str!("../../../examples/mlp_digits.circ");
        let checked = crate::driver::check_source("mlp_digits.circ", text);
        let rule = crate::driver::parse_update_rule("sgd(lr = 0.1)").expect("a rule");
        let g = crate::train::step::build(&checked.models[0], 0, &rule).graph;
        let data = |rows: usize| {
            let pixels = HostTensor::new(vec![rows, 64], (0..rows * 64).map(|i| (i * 37 % 17) as f64).collect());
            let labels = HostTensor::new(vec![rows], (0..rows).map(|i| (i % 10) as f64).collect());
            vec![pixels, labels]
        };
        let params = crate::ir::init::initial_values(&g);
        // sgd has no state: the inputs are `batch_scale` and `step`.
        let inputs = g.inputs.iter().map(|_| vec![1.0]).collect();
        (g, data(n), params, inputs)
    }

    #[test]
    fn carried_parameters_equal_a_host_round_trip_across_batch_sizes() {
        let (g, big, params0, inputs) = step_and_batch(16);
        let small: Vec<HostTensor> = crate::train::run::select(&big, &[3, 1, 4, 1, 5]);
        let links: Vec<(String, NodeId)> = g
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let leaf = g.node_ids().into_iter().find(|n| g.node(*n).op == Op::Param(i)).expect("every param is read");
                (format!("new.{}", p.name), leaf)
            })
            .collect();
        let refs: Vec<(&str, NodeId)> = links.iter().map(|(n, l)| (n.as_str(), *l)).collect();
        let mut carried = Executor::new(&g).unwrap();
        carried.carry(&refs).unwrap();
        let mut host = Executor::new(&g).unwrap();
        let mut params = params0.clone();
        for batch in [&big, &small, &small, &big] {
            carried.run(batch, &params0, &inputs).unwrap();
            let out = host.run(batch, &params, &inputs).unwrap();
            for (i, p) in g.params.iter().enumerate() {
                params[i] = out.get(&format!("new.{}", p.name)).unwrap().data.iter().map(|x| *x as f64).collect();
            }
            let values = carried.carried_values();
            for (i, (name, v)) in values.iter().enumerate() {
                let want: Vec<f32> = params[i].iter().map(|x| *x as f32).collect();
                assert_eq!(v, &want, "{name}");
            }
        }
        assert!(carried.run(&big, &params0, &inputs).unwrap().get("new.l1.w").is_none(), "carried outputs are not returned");
    }
}

#[cfg(test)]
mod threads {
    use super::*;

    /// Big elementwise kernels run in bands of rows on two threads: the same bits as one thread,
    /// for plain elementwise kernels, row reductions, and (never split) column reductions, in the
    /// forward pass and its gradient.
    #[test]
    fn bands_of_rows_give_the_bits_of_one_thread() {
        let text = "model wide {\n  data x: [N, 300] = csv(\"a0\" .. \"a299\")\n  data y: [N]\n  \
                    param w: [300] ~ normal(0, 1)\n  param c: [300] ~ normal(0, 1)\n  \
                    let z = tanh(x * w)\n  let s = sum(exp(x - c), axis = 0)\n  \
                    y ~ normal(sum(z, axis = 1) + sum(s) / 1000, 1)\n}\n";
        let checked = crate::driver::check_source("wide.circ", text);
        assert!(!checked.has_errors(), "{}", checked.render(false));
        let mut g = crate::ir::lower::lower(&checked.models[0], 0);
        crate::autodiff::add_param_gradients(&mut g);
        crate::passes::optimize(&mut g);
        let n = 500;
        let x = HostTensor::new(vec![n, 300], (0..n * 300).map(|i| ((i * 7919) % 1000) as f64 / 500.0 - 1.0).collect());
        let y = HostTensor::new(vec![n], (0..n).map(|i| (i % 7) as f64).collect());
        let params = crate::ir::init::initial_values(&g);
        let one = Options { threads: 1, ..Options::default() };
        let two = Options { threads: 2, ..Options::default() };
        let a = Executor::with_options(&g, &one).unwrap().run(&[x.clone(), y.clone()], &params, &[]).unwrap();
        let mut banded = Executor::with_options(&g, &two).unwrap();
        let b = banded.run(&[x, y], &params, &[]).unwrap();
        assert!(banded.stats().banded_runs > 0, "no kernel ran in bands");
        for ((name, ta), (_, tb)) in a.iter().zip(b.iter()) {
            assert_eq!(ta.data, tb.data, "{name}");
        }
    }
}

//! Runs a whole graph on an OpenCL device: the partition rendered once into one program (built
//! once per graph, cached on disk by the driver), the buffer plan laid out in one device arena
//! per binding of the symbolic sizes, the kernels launched in order on one in-order queue.
//!
//! - Leaves are written from the host before a run, but *carried* ones ([`ClExecutor::carry`]:
//!   a training step's parameters and optimizer state), which stay on the device between runs:
//!   written over in place where the plan allows it, else copied on the device after the run.
//!   Per step only the loss and the other (small) outputs come back; carried values come back
//!   when asked ([`ClExecutor::carried_values`], at checkpoints).
//! - Before the first kernel that writes an update in place, the loss is read back and checked:
//!   a non-finite loss stops the run and commits nothing (as on the CPU backend).
//! - A kernel no renderer handles runs on the host with the interpreter's `f32` kernels: its
//!   operands are read back, its outputs written again (counted in [`ClStats::host`]).

use super::source::{BUILD_OPTIONS, GATHER, GATHER_LOCAL, PRELUDE};
use super::{elementwise, matmul, special, Extent, Rendered};
use crate::backend::carry::Carried;
use crate::backend::cpu::BackendError;
use crate::check::types::Dim;
use crate::interp::{ops, HostTensor, InterpError, Tensor};
use crate::ir::{Graph, NodeId, Op};
use crate::kernel::{self, BufferPlan, Kernel, KernelKind, Partition, ELEMENT_BYTES};
use crate::passes::fusion::FusionGroup;
use circ_runtime::opencl::{Arena, Arg, Driver, DriverError, Executable};
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

/// Why a run failed.
#[derive(Clone, Debug, PartialEq)]
pub enum ClError {
    Interp(InterpError),
    Backend(BackendError),
}

impl From<InterpError> for ClError {
    fn from(e: InterpError) -> ClError {
        ClError::Interp(e)
    }
}

impl From<BackendError> for ClError {
    fn from(e: BackendError) -> ClError {
        ClError::Backend(e)
    }
}

impl From<DriverError> for ClError {
    fn from(e: DriverError) -> ClError {
        ClError::Backend(BackendError::Device(e.to_string()))
    }
}

/// How the kernels of a graph run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClStats {
    pub kernels: usize,
    /// Rendered as OpenCL C.
    pub rendered: usize,
    /// Run on the host with the interpreter's kernels.
    pub host: usize,
    /// Whether the program binary came from the on-disk cache.
    pub from_cache: bool,
    /// Milliseconds to build or load the program.
    pub build_ms: u64,
}

struct Layout {
    plan: BufferPlan,
    shapes: Vec<Vec<usize>>,
    in_place_from: Option<usize>,
}

/// Every kernel of `g`'s partition rendered, in partition order (`None`: runs on the host), and
/// the whole program's source; products with [`matmul::NARROW`] tiles.
pub fn render_program(g: &Graph, p: &Partition, style: matmul::Style) -> (Vec<Option<Rendered>>, String) {
    let program = render_with(g, p, style, matmul::NARROW, None);
    (program.kernels, program.source)
}

/// A rendered program: each kernel of the partition (`None`: on the host) and, for products,
/// the variant with other tiles chosen per launch.
pub struct Program {
    pub kernels: Vec<Option<Rendered>>,
    pub wide: Vec<Option<Rendered>>,
    pub source: String,
}

/// Renders every kernel, products with `geometry` (and with `wide` too where given: a second
/// function per product, `…_wide`).
pub fn render_with(
    g: &Graph,
    p: &Partition,
    style: matmul::Style,
    geometry: matmul::Geometry,
    wide: Option<matmul::Geometry>,
) -> Program {
    let transposed: HashSet<NodeId> = p.views.iter().filter(|v| v.transposed).map(|v| v.node).collect();
    let mut kernels = Vec::with_capacity(p.kernels.len());
    let mut wides = Vec::with_capacity(p.kernels.len());
    let mut source = String::from(PRELUDE);
    for (i, k) in p.kernels.iter().enumerate() {
        let name = format!("k{i}_{}", k.kind.name());
        let comment = heading(g, k);
        let r = render_kernel(g, k, &transposed, style, geometry, &name, &comment);
        let w = match (wide, k.kind, &r) {
            (Some(wg), KernelKind::MatMul, Some(_)) => {
                matmul::render(g, k, &transposed, style, wg, &format!("{name}_wide"), &comment).ok()
            }
            _ => None,
        };
        for r in [&r, &w].into_iter().flatten() {
            source.push('\n');
            source.push_str(&r.source);
        }
        kernels.push(r);
        wides.push(w);
    }
    Program { kernels, wide: wides, source }
}

/// The nodes a kernel computes, and their source labels: the comment heading it.
fn heading(g: &Graph, k: &Kernel) -> String {
    let mut s = String::new();
    for n in &k.nodes {
        let node = g.node(*n);
        let _ = write!(s, "{n} {}", node.op.name());
        if let Some(l) = &node.label {
            let _ = write!(s, ": {l}");
        }
        s.push('\n');
    }
    s
}

fn render_kernel(
    g: &Graph,
    k: &Kernel,
    transposed: &HashSet<NodeId>,
    style: matmul::Style,
    geometry: matmul::Geometry,
    name: &str,
    comment: &str,
) -> Option<Rendered> {
    match k.kind {
        KernelKind::Elementwise => {
            let grp = FusionGroup {
                nodes: k.nodes.clone(),
                shape: k.space.clone(),
                epilogue: k.reduction,
                inputs: k.inputs.clone(),
                outputs: k.outputs.clone(),
            };
            elementwise::render(g, &grp, style == matmul::Style::Direct, name, comment).ok()
        }
        KernelKind::Reduce if matches!(g.node(k.nodes[0]).op, Op::Reduce { .. }) => {
            let grp = FusionGroup {
                nodes: k.nodes.clone(),
                shape: k.space.clone(),
                epilogue: Some(k.nodes[0]),
                inputs: k.inputs.clone(),
                outputs: k.outputs.clone(),
            };
            elementwise::render(g, &grp, style == matmul::Style::Direct, name, comment).ok()
        }
        KernelKind::MatMul => matmul::render(g, k, transposed, style, geometry, name, comment).ok(),
        KernelKind::Reduce | KernelKind::Copy | KernelKind::Select | KernelKind::OneHot => special::render(g, k, name),
    }
}

/// How a graph is rendered for its device; the default suits the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClOptions {
    /// `None`: [`matmul::Style::Direct`] on CPU devices, [`matmul::Style::Tiled`] on others.
    pub style: Option<matmul::Style>,
    /// Every product with these tiles; `None`: [`matmul::NARROW`], and on GPUs
    /// [`matmul::WIDE`] for launches with enough tiles to fill the device.
    pub geometry: Option<matmul::Geometry>,
}

/// The program's kernels, by their index in the partition.
struct Launches {
    rendered: Vec<Option<Rendered>>,
    /// For each kernel of the partition, its index in the program (`None`: on the host).
    launch_of: Vec<Option<usize>>,
    /// Each product's wide-tile variant and its index in the program.
    wide: Vec<Option<(Rendered, usize)>>,
    /// Work-groups a launch needs before the wide variant runs.
    wide_from_groups: u64,
}

impl Launches {
    /// Kernel `ki` as it runs with `sizes` (and its index in the program): a product's wide
    /// variant when it has enough work-groups to fill the device; `None` on the host.
    fn pick(&self, ki: usize, sizes: &[Option<usize>]) -> Option<(&Rendered, usize)> {
        if let Some((w, li)) = &self.wide[ki] {
            if groups(w, sizes) >= self.wide_from_groups {
                return Some((w, *li));
            }
        }
        Some((self.rendered[ki].as_ref()?, self.launch_of[ki]?))
    }
}

pub struct ClExecutor {
    graph: Graph,
    partition: Partition,
    launches: Launches,
    source: String,
    driver: Driver,
    exe: Executable,
    arena: Option<Arena>,
    layouts: HashMap<Vec<Option<usize>>, Layout>,
    last_layout: Option<Vec<Option<usize>>>,
    carried: Vec<Carried>,
    carried_live: bool,
    /// Data kept on the device ([`ClExecutor::keep_data`]).
    kept: Option<Kept>,
    /// The gather kernel's index in the program.
    gather: usize,
    stats: ClStats,
}

/// Every row of every data tensor, kept in the arena after the plan's buffers; a run names the
/// rows of its batch, and the gather kernel copies them into the data's buffers.
struct Kept {
    /// Each data tensor's values and its row's width (elements).
    tensors: Vec<(Vec<f32>, usize)>,
    /// Each data tensor's leaf in the graph (`None`: the graph does not read it).
    leaves: Vec<Option<NodeId>>,
    /// Each data tensor's shape after its first (row) axis.
    tails: Vec<Vec<usize>>,
    rows: usize,
    /// Where the kept data starts in the arena, once written: after every buffer of the layouts
    /// since.
    at: Option<usize>,
}

impl Kept {
    /// Arena elements: the data, then one slot per row for a batch's row numbers.
    fn words(&self) -> usize {
        self.tensors.iter().map(|(v, _)| v.len()).sum::<usize>() + self.rows
    }
}

/// What a run reads its data from.
#[derive(Clone, Copy)]
enum Feed<'a> {
    Host(&'a [HostTensor]),
    /// These rows of the data kept on the device.
    Rows(&'a [usize]),
}

impl ClExecutor {
    /// Opens device `device`, renders `g` (verified) and builds its program.
    pub fn new(g: &Graph, device: Option<usize>) -> Result<ClExecutor, BackendError> {
        ClExecutor::with_options(g, device, ClOptions::default())
    }

    /// As [`ClExecutor::new`], rendered as `options` say (tests and benchmarks compare them).
    pub fn with_options(g: &Graph, device: Option<usize>, options: ClOptions) -> Result<ClExecutor, BackendError> {
        let driver = Driver::open(device).map_err(|e| BackendError::Device(e.to_string()))?;
        let partition = kernel::partition(g);
        let cpu = driver.info().kind == "CPU";
        let style = options.style.unwrap_or(if cpu { matmul::Style::Direct } else { matmul::Style::Tiled });
        let wide = (options.geometry.is_none() && style == matmul::Style::Tiled).then_some(matmul::WIDE);
        let program = render_with(g, &partition, style, options.geometry.unwrap_or(matmul::NARROW), wide);
        let (rendered, source) = (program.kernels, program.source);
        let mut launch_of = Vec::with_capacity(rendered.len());
        let mut wide = Vec::with_capacity(rendered.len());
        let mut names = Vec::new();
        for (r, w) in rendered.iter().zip(program.wide) {
            launch_of.push(r.as_ref().map(|r| {
                names.push(r.name.clone());
                names.len() - 1
            }));
            wide.push(w.map(|w| {
                names.push(w.name.clone());
                (w, names.len() - 1)
            }));
        }
        let gather = names.len();
        names.push("circ_gather".into());
        let source = format!("{source}\n{GATHER}");
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let exe = driver.build(&source, BUILD_OPTIONS, &refs).map_err(|e| BackendError::Device(e.to_string()))?;
        let count = rendered.iter().flatten().count();
        let stats = ClStats {
            kernels: partition.kernels.len(),
            rendered: count,
            host: partition.kernels.len() - count,
            from_cache: exe.from_cache,
            build_ms: exe.build_time.as_millis() as u64,
        };
        Ok(ClExecutor {
            graph: g.clone(),
            partition,
            launches: Launches {
                rendered,
                launch_of,
                wide,
                wide_from_groups: driver.info().compute_units as u64 * matmul::WIDE_MIN_GROUPS_PER_UNIT,
            },
            source,
            driver,
            exe,
            arena: None,
            layouts: HashMap::new(),
            last_layout: None,
            carried: Vec::new(),
            carried_live: false,
            kept: None,
            gather,
            stats,
        })
    }

    pub fn stats(&self) -> ClStats {
        self.stats
    }

    /// The program's OpenCL C source.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn device_name(&self) -> &str {
        &self.driver.info().name
    }

    /// As [`crate::backend::cpu::executor::Executor::carry`]: each named output becomes its
    /// leaf's value after every run whose loss is finite, kept on the device.
    pub fn carry(&mut self, links: &[(&str, NodeId)]) -> Result<(), BackendError> {
        self.carried = crate::backend::carry::check(&self.graph, links)?;
        self.carried_live = false;
        self.layouts.clear();
        self.last_layout = None;
        Ok(())
    }

    fn updates(&self) -> Vec<(NodeId, NodeId)> {
        crate::backend::carry::updates(&self.graph, &self.partition, &self.carried)
    }

    /// The carried leaves' values after the latest run, read back from the device (empty
    /// before any run).
    pub fn carried_values(&self) -> Result<Vec<(String, Vec<f32>)>, BackendError> {
        let mut out = Vec::with_capacity(self.carried.len());
        let layout = self.last_layout.as_ref().map(|k| &self.layouts[k]);
        for c in &self.carried {
            let v = match (layout, self.arena.as_ref(), self.carried_live) {
                (Some(l), Some(arena), true) => match l.plan.slot(c.leaf) {
                    Some(s) => {
                        let off = (l.plan.slots[s].offset / ELEMENT_BYTES) as usize;
                        let n: usize = l.shapes[c.leaf.index()].iter().product();
                        let mut v = vec![0f32; n];
                        self.driver.read(arena, off, &mut v).map_err(|e| BackendError::Device(e.to_string()))?;
                        v
                    }
                    None => Vec::new(),
                },
                _ => Vec::new(),
            };
            out.push((c.name.clone(), v));
        }
        Ok(out)
    }

    fn layout(&self, sizes: &[Option<usize>]) -> Result<Layout, InterpError> {
        let g = &self.graph;
        let slots = g.node_ids().iter().map(|n| n.index() + 1).max().unwrap_or(0);
        let mut shapes = vec![Vec::new(); slots];
        for id in g.node_ids() {
            shapes[id.index()] = crate::interp::bind::concrete(g, id, sizes)?;
            if shapes[id.index()].iter().product::<usize>() > i32::MAX as usize {
                return Err(InterpError::Graph(format!(
                    "{id} has {:?} elements, more than the OpenCL kernels index (2³¹)",
                    shapes[id.index()]
                )));
            }
        }
        let plan = kernel::plan_with_updates(g, &self.partition, |d| size_of(d, sizes) as u64, &self.updates());
        let kernel_of = self.partition.kernel_of();
        let in_place_from = plan.in_place().filter_map(|(_, o)| kernel_of.get(&o).copied()).min();
        Ok(Layout { plan, shapes, in_place_from })
    }

    /// Runs the graph; as `Executor::run` on the CPU backend.
    pub fn run(
        &mut self,
        data: &[HostTensor],
        params: &[Vec<f64>],
        inputs: &[Vec<f64>],
    ) -> Result<Vec<(String, Tensor<f32>)>, ClError> {
        self.run_feed(Feed::Host(data), params, inputs)
    }

    /// Keeps every row of `data` on the device (checked as a run checks its data), for
    /// [`ClExecutor::run_rows`]: a training step then writes only its batch's row numbers.
    /// `false` (nothing kept) when the data would take more than half of the device's largest
    /// buffer.
    pub fn keep_data(&mut self, data: &[HostTensor], params: &[Vec<f64>]) -> Result<bool, ClError> {
        crate::interp::bind::bind(&self.graph, data, params)?;
        let rows = data.first().map_or(0, |d| d.shape.first().copied().unwrap_or(0));
        let mut tensors = Vec::with_capacity(data.len());
        let mut tails = Vec::with_capacity(data.len());
        for d in data {
            if d.shape.first() != Some(&rows) {
                return Err(BackendError::Run("kept data must have one row axis in common".into()).into());
            }
            let width: usize = d.shape[1..].iter().product();
            tensors.push((d.values.iter().map(|x| *x as f32).collect::<Vec<f32>>(), width));
            tails.push(d.shape[1..].to_vec());
        }
        let g = &self.graph;
        let leaves = (0..data.len()).map(|i| g.node_ids().into_iter().find(|n| g.node(*n).op == Op::Data(i))).collect();
        let kept = Kept { tensors, tails, leaves, rows, at: None };
        let bytes = kept.words() as u64 * ELEMENT_BYTES;
        if bytes > self.driver.info().max_alloc / 2 {
            self.kept = None;
            return Ok(false);
        }
        self.kept = Some(kept);
        Ok(true)
    }

    /// Whether [`ClExecutor::keep_data`] kept data.
    pub fn keeps_data(&self) -> bool {
        self.kept.is_some()
    }

    /// Runs the graph on rows `rows` (in that order) of the data kept by
    /// [`ClExecutor::keep_data`].
    pub fn run_rows(
        &mut self,
        rows: &[usize],
        params: &[Vec<f64>],
        inputs: &[Vec<f64>],
    ) -> Result<Vec<(String, Tensor<f32>)>, ClError> {
        self.run_feed(Feed::Rows(rows), params, inputs)
    }

    fn run_feed(
        &mut self,
        feed: Feed,
        params: &[Vec<f64>],
        inputs: &[Vec<f64>],
    ) -> Result<Vec<(String, Tensor<f32>)>, ClError> {
        let sizes = match feed {
            Feed::Host(data) => crate::interp::bind::bind(&self.graph, data, params)?,
            Feed::Rows(rows) => {
                let kept =
                    self.kept.as_ref().ok_or_else(|| BackendError::Run("no data is kept on the device".into()))?;
                if let Some(r) = rows.iter().find(|r| **r >= kept.rows) {
                    return Err(BackendError::Run(format!("row {r} of {} kept rows", kept.rows)).into());
                }
                let shapes: Vec<Vec<usize>> =
                    kept.tails.iter().map(|t| std::iter::once(rows.len()).chain(t.iter().copied()).collect()).collect();
                crate::interp::bind::bind_shapes(&self.graph, &shapes, params)?
            }
        };
        crate::interp::bind::check_inputs(&self.graph, inputs)?;
        if !self.layouts.contains_key(&sizes) {
            let l = self.layout(&sizes)?;
            self.layouts.insert(sizes.clone(), l);
        }
        let words = (self.layouts[&sizes].plan.arena_bytes / ELEMENT_BYTES) as usize;
        let kept_words = self.kept.as_ref().map_or(0, Kept::words);
        // The kept data sits after every layout's buffers: a larger layout moves it.
        let kept_fits = self.kept.as_ref().is_none_or(|k| k.at.is_some_and(|at| at >= words));
        let grow = !kept_fits || self.arena.as_ref().is_none_or(|a| a.len() < words + kept_words);
        // Carried values survive a change of layout (another batch size) or of arena through
        // the host.
        let moved = if self.carried_live && (grow || self.last_layout.as_ref() != Some(&sizes)) {
            Some(self.carried_values()?)
        } else {
            None
        };
        if grow {
            self.arena = None;
            let mut arena = self.driver.arena(words + kept_words)?;
            if let Some(kept) = self.kept.as_mut() {
                let mut at = words;
                for (values, _) in &kept.tensors {
                    self.driver.write(&mut arena, at, values)?;
                    at += values.len();
                }
                kept.at = Some(words);
            }
            self.arena = Some(arena);
        }
        if let Some(values) = moved {
            self.write_carried(&sizes, &values)?;
        }
        self.last_layout = Some(sizes.clone());
        let g = &self.graph;
        let layout = &self.layouts[&sizes];
        let (plan, shapes) = (&layout.plan, &layout.shapes);
        let arena = self.arena.as_mut().expect("allocated above");
        let driver = &self.driver;
        let at = |id: NodeId| -> Result<usize, ClError> {
            let s = plan.slot(id).ok_or_else(|| InterpError::Graph(format!("{id} is read but has no buffer")))?;
            Ok((plan.slots[s].offset / ELEMENT_BYTES) as usize)
        };
        let len = |id: NodeId| shapes[id.index()].iter().product::<usize>();
        // Leaves.
        let mut staging: Vec<f32> = Vec::new();
        for id in g.node_ids() {
            if self.carried_live && self.carried.iter().any(|c| c.leaf == id) {
                continue;
            }
            let src: Vec<f64>;
            let values: &[f64] = match (&g.node(id).op, feed) {
                (Op::Data(i), Feed::Host(data)) => &data[*i].values,
                (Op::Data(_), Feed::Rows(_)) => continue,
                (Op::Param(i), _) => &params[*i],
                (Op::Input(i), _) => &inputs[*i],
                (Op::Const(c), _) => {
                    src = vec![*c];
                    &src
                }
                _ => continue,
            };
            let Some(_) = plan.slot(id) else { continue };
            staging.clear();
            staging.extend(values.iter().map(|x| *x as f32));
            driver.write(arena, at(id)?, &staging)?;
        }
        if let (Feed::Rows(rows), Some(kept)) = (feed, self.kept.as_ref()) {
            let base = kept.at.expect("written with the arena");
            let rows_at = base + kept.tensors.iter().map(|(v, _)| v.len()).sum::<usize>();
            staging.clear();
            staging.extend(rows.iter().map(|r| f32::from_bits(*r as u32)));
            driver.write(arena, rows_at, &staging)?;
            let mut src = base;
            for ((values, width), leaf) in kept.tensors.iter().zip(&kept.leaves) {
                if let Some(dst) = leaf.filter(|n| plan.slot(*n).is_some()) {
                    let count = i32::try_from(rows.len() * width)
                        .map_err(|_| BackendError::Run(format!("a batch of {} elements", rows.len() * width)))?;
                    let args = [
                        Arg::U64(at(dst)? as u64),
                        Arg::U64(src as u64),
                        Arg::U64(rows_at as u64),
                        Arg::I32(*width as i32),
                        Arg::I32(count),
                    ];
                    let global = (count as usize).div_ceil(GATHER_LOCAL) * GATHER_LOCAL;
                    driver.launch(&self.exe, self.gather, arena, &args, &[global], &[GATHER_LOCAL])?;
                }
                src += values.len();
            }
        }
        let loss_finite = |arena: &Arena| -> Result<bool, ClError> {
            let Some(o) = g.outputs.first() else { return Ok(true) };
            let mut v = vec![0f32; len(o.node)];
            driver.read(arena, at(o.node)?, &mut v)?;
            Ok(v.iter().all(|x| x.is_finite()))
        };
        let mut stopped = false;
        for (ki, k) in self.partition.kernels.iter().enumerate() {
            if Some(ki) == layout.in_place_from && !loss_finite(arena)? {
                stopped = true;
                break;
            }
            match self.launches.pick(ki, &sizes) {
                // A slice position past a symbolic size: the host's kernel reports the error.
                Some((r, li)) if special::fits(g, k, &|d| size_of(d, &sizes) as u64) => {
                    let (args, global) = launch_args(r, &sizes, &|b| at(self.partition.base(b)))?;
                    driver.launch(&self.exe, li, arena, &args, &global, &r.launch.local)?;
                }
                _ => host_kernel(g, &self.partition, k, driver, arena, shapes, &at)?,
            }
        }
        let commit = !stopped && loss_finite(arena)?;
        for c in self.carried.iter().filter(|_| commit) {
            let (from, to) = (at(c.output)?, at(c.leaf)?);
            if from != to {
                driver.copy(arena, from, to, len(c.leaf))?;
            }
        }
        self.carried_live = !self.carried.is_empty();
        let mut entries = Vec::with_capacity(g.outputs.len());
        for o in &g.outputs {
            if self.carried.iter().any(|c| c.name == o.name) {
                continue;
            }
            let n = len(o.node);
            let mut v = vec![f32::NAN; n];
            if !stopped || o.node == g.outputs[0].node {
                driver.read(arena, at(self.partition.base(o.node))?, &mut v)?;
            }
            entries.push((o.name.clone(), Tensor { shape: shapes[o.node.index()].clone(), data: v }));
        }
        Ok(entries)
    }

    /// Seconds per pass of every kernel of the latest run's layout, launched `repeats` times
    /// back to back on the device (no host writes or reads between them): what a benchmark of
    /// the kernels alone measures. Needs a run first.
    pub fn time_kernels(&mut self, repeats: usize) -> Result<f64, ClError> {
        let sizes = self.last_layout.clone().ok_or_else(|| BackendError::Run("no run to repeat".into()))?;
        let layout = &self.layouts[&sizes];
        let arena = self.arena.as_mut().expect("a run allocated it");
        let plan = &layout.plan;
        let at = |id: NodeId| -> Result<usize, ClError> {
            let s = plan.slot(id).ok_or_else(|| InterpError::Graph(format!("{id} has no buffer")))?;
            Ok((plan.slots[s].offset / ELEMENT_BYTES) as usize)
        };
        let mut launches = Vec::new();
        for ki in 0..self.launches.rendered.len() {
            let Some((r, li)) = self.launches.pick(ki, &sizes) else { continue };
            let (args, global) = launch_args(r, &sizes, &|b| at(self.partition.base(b)))?;
            launches.push((li, args, global, r.launch.local.clone()));
        }
        self.driver.finish()?;
        let start = std::time::Instant::now();
        for _ in 0..repeats {
            for (li, args, global, local) in &launches {
                self.driver.launch(&self.exe, *li, arena, args, global, local)?;
            }
        }
        self.driver.finish()?;
        Ok(start.elapsed().as_secs_f64() / repeats.max(1) as f64)
    }

    fn write_carried(&mut self, sizes: &[Option<usize>], values: &[(String, Vec<f32>)]) -> Result<(), ClError> {
        let l = &self.layouts[sizes];
        let arena = self.arena.as_mut().expect("allocated before");
        for (c, (_, v)) in self.carried.iter().zip(values) {
            if let Some(s) = l.plan.slot(c.leaf) {
                self.driver.write(arena, (l.plan.slots[s].offset / ELEMENT_BYTES) as usize, v)?;
            }
        }
        Ok(())
    }
}

/// The size `d` stands for in the binding `sizes` (binding has refused unbound symbols).
fn size_of(d: Dim, sizes: &[Option<usize>]) -> usize {
    match d {
        Dim::Known(n) => n as usize,
        Dim::Sym(s) => sizes.get(s.0 as usize).copied().flatten().unwrap_or(0),
        Dim::Any => 0,
    }
}

/// Work-groups of a launch of `r` with `sizes`.
fn groups(r: &Rendered, sizes: &[Option<usize>]) -> u64 {
    r.launch
        .global
        .iter()
        .zip(&r.launch.local)
        .map(|(gs, l)| {
            let e: u64 = gs.extent.0.iter().map(|d| size_of(*d, sizes) as u64).product();
            (e.div_ceil(gs.div) * gs.mul).div_ceil(*l as u64)
        })
        .product()
}

/// The arguments and global sizes of a launch of `r` (calling convention in `opencl/mod.rs`):
/// each buffer's offset (`offset`), each symbolic extent's value, each global size rounded up
/// to its local size.
fn launch_args(
    r: &Rendered,
    sizes: &[Option<usize>],
    offset: &dyn Fn(NodeId) -> Result<usize, ClError>,
) -> Result<(Vec<Arg>, Vec<usize>), ClError> {
    let extent = |e: &Extent| -> usize { e.0.iter().map(|d| size_of(*d, sizes)).product() };
    let mut args = Vec::with_capacity(r.buffers.len() + r.extents.len());
    for b in &r.buffers {
        args.push(Arg::U64(offset(*b)? as u64));
    }
    for e in &r.extents {
        let v = extent(e);
        let v =
            i32::try_from(v).map_err(|_| BackendError::Run(format!("a size of {v} does not fit the kernel's int")))?;
        args.push(Arg::I32(v));
    }
    let global = r
        .launch
        .global
        .iter()
        .zip(&r.launch.local)
        .map(|(gs, l)| (((extent(&gs.extent) as u64).div_ceil(gs.div) * gs.mul) as usize).div_ceil(*l) * l)
        .collect();
    Ok((args, global))
}

/// Runs kernel `k` on the host with the interpreter's `f32` kernels: operands read back from the
/// device, outputs written to it.
fn host_kernel(
    g: &Graph,
    p: &Partition,
    k: &Kernel,
    driver: &Driver,
    arena: &mut Arena,
    shapes: &[Vec<usize>],
    at: &dyn Fn(NodeId) -> Result<usize, ClError>,
) -> Result<(), ClError> {
    let mut local: HashMap<NodeId, Tensor<f32>> = HashMap::new();
    for node in &k.nodes {
        let n = g.node(*node);
        let mut read = Vec::new();
        for o in g.operands(*node) {
            let t = match local.get(&o) {
                Some(t) => t.clone(),
                None => {
                    let shape = shapes[o.index()].clone();
                    let mut data = vec![0f32; shape.iter().product()];
                    let transposed = p.views.iter().any(|v| v.node == o && v.transposed);
                    driver.read(arena, at(p.base(o))?, &mut data)?;
                    if transposed {
                        // The buffer holds the value with its last two axes swapped.
                        let r = shape.len();
                        let (rows, cols) = (shape[r - 2], shape[r - 1]);
                        let mut t = vec![0f32; data.len()];
                        for (b, chunk) in data.chunks(rows * cols).enumerate() {
                            for i in 0..rows {
                                for j in 0..cols {
                                    t[b * rows * cols + i * cols + j] = chunk[j * rows + i];
                                }
                            }
                        }
                        data = t;
                    }
                    Tensor { shape, data }
                }
            };
            read.push(t);
        }
        let refs: Vec<&Tensor<f32>> = read.iter().collect();
        let shape = &shapes[node.index()];
        let value = ops::apply(&n.op, &refs, shape).map_err(|message| InterpError::Node {
            node: *node,
            op: n.op.name(),
            label: n.label.clone(),
            message,
        })?;
        local.insert(*node, value);
    }
    for o in &k.outputs {
        if let Some(v) = local.get(o) {
            driver.write(arena, at(*o)?, &v.data)?;
        }
    }
    Ok(())
}

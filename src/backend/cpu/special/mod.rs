//! Generated code for the kernels of the partition that are no elementwise loop: `logsumexp`
//! along one axis (kind `Reduce`), `one_hot`, the copies `transpose`, `slice`, `embed`,
//! `concat` (kind `Copy`), and the selections `kmax`, `kmax_mask` (kind `Select`) that keep few
//! entries per row. Each is one function of one node, compiled once into a JIT module of
//! its own ([`compile`]); [`clif_text`] prints its IR for `circ emit`.
//!
//! # Calling convention
//!
//! `extern "C" fn(bufs: *const *mut f32, dims: *const usize)`, the platform's C convention, as
//! the elementwise kernels (`elementwise.rs`):
//! - `bufs[i]` for `i < operands` is the buffer of the node's operand `i`, in operand order (a
//!   `concat` may read one value twice), dense and row-major in the operand's own shape;
//!   `bufs[operands]` is the result's buffer, dense and row-major, fully written.
//! - `dims` holds the run-time shape of every operand, in operand order, then the result's shape:
//!   `Σ rank` sizes ([`Special::dims_len`]). The kernel reads the symbolic sizes there and takes the
//!   known ones as immediates; the caller checks the sizes fit the op first ([`Special::fits`]:
//!   exactly the conditions under which the interpreter's kernel succeeds), so every index the
//!   kernel forms is inside its buffer.
//! - Buffers are `f32` (labels too), need no alignment beyond `f32`'s, and the result must not
//!   overlap an operand (operands are loaded `readonly`).
//!
//! # Kernels
//!
//! - `logsumexp` over axis `a` of `[outer, n, inner]` (the axes before `a`, axis `a`, the axes
//!   after it, each product collapsed): per output element a max pass (`fmax`, which propagates
//!   NaN as the interpreter's `max` does), then `s = Σ exp(x − m)`, then `m + log s` where `m` is
//!   finite and `m` itself elsewhere (every entry −∞, some +∞, NaN, an empty axis). `exp` and `log`
//!   are the inline vector code of `math.rs` (`exp` rounds as the interpreter's `f32::exp`).
//!   Four outputs are computed at once, one per lane, so that `log` runs once per four and each
//!   lane adds its terms one after another in the interpreter's order:
//!   - the reduced axis innermost (`inner` statically 1): four rows at a time (a last block of
//!     fewer repeats its last row in the lanes it lacks, and stores only its own). The max runs
//!     four lanes along each row, then transposes the four row maxima into lanes; the sum reads
//!     4×4 tiles of the rows, transposed in registers into a stack slot of four columns (the
//!     last `n mod 4` columns gathered element by element), and adds one column after another
//!     out of it, so that the code holds one inline `exp` and one `log` (it compiles in a
//!     fraction of the time of one `exp` per column of the tile);
//!   - otherwise four neighbouring outputs along `inner`, reading the strided axis as rows of
//!     `f32x4` (one lane at a time for the last `inner mod 4`).
//!
//!   With vector code off, one output at a time, one element at a time.
//! - `one_hot`: the result is filled with zeros, four lanes at a time, then each label `l` (an
//!   `f32`), compared in `f64`, writes 1 at `l` when `0 ≤ l < classes` and `l` is an integer (its
//!   truncation, converted back, equals it), as the interpreter; any other label (negative, too
//!   large, fractional, NaN) leaves its row zero.
//! - copies: a loop nest over the copied elements, one loop per *run* of axes (neighbouring axes
//!   read contiguously from each other are merged; a transpose's input axes of known size 1 are
//!   dropped first), each side advancing by its stride per loop. When both sides are contiguous
//!   along the innermost run (a slice keeping the last axis, every concat, a transpose keeping the
//!   last axis last), it copies four lanes at a time, then a scalar tail, or calls the C library's
//!   `memcpy` for runs of at least `MEMCPY_MIN` = 64 elements; otherwise (a transpose moving the
//!   last axis) by 4×4 tiles of the two innermost loops, loaded as four vectors and transposed in
//!   registers where the source is contiguous along the outer loop and the destination along the
//!   inner one (else element by element), and one element at a time for the rows and columns
//!   left over.
//!   `transpose`: the result dense, the input at the permuted strides. `slice`: the input at
//!   `Σ position·stride` plus its strides, the result dense; negative positions count from the
//!   run-time size. `embed`: the result filled with zeros, then the operand copied densely into
//!   the places the slice reads. `concat`: each operand's rows (its extent along the axis times the
//!   later axes) copied into the result's rows, at the operand's offset along the axis.
//! - `kmax`, `kmax_mask` along the last axis: entry `i` of a row is kept (itself, or 1) when fewer
//!   than `min(k, n)` entries beat it, counted by scanning the row (four lanes at a time, the
//!   lanes' comparison bits counted with `popcnt`) and stopping as soon as that many are found.
//!   A number is beaten by the NaNs, the larger numbers, and the equal ones before it (`fcmp uge`
//!   before it, `ugt` after it: an unordered comparison is a NaN); a NaN by the NaNs before it:
//!   the interpreter's stable sort, largest first, NaN highest. Each kept entry scans its whole
//!   row, so a row costs about `n·min(k, n)` comparisons: generated only where `k ≤ 4`, or
//!   `k ≤ 16` of rows known to be at least 256 long; the interpreter's `n log n` sort otherwise.
//!
//! Results equal the interpreter's bit for bit, except `logsumexp`'s: its terms are added in the
//! interpreter's order, but `exp` and `log` are within an ulp of Rust's.

mod copies;
mod logsumexp;
mod select;

use super::elementwise::{signature, LANES};
use super::math::Math;
use super::{BackendError, Options};
use crate::check::checked::Slice as SliceItem;
use crate::check::types::{Dim, ShowDim};
use crate::ir::{Graph, NodeId, Op};
use crate::source::SourceMap;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    types, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Type, UserFuncName, Value,
};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};
use std::fmt::Write;

/// Contiguous runs of at least this many elements are copied by `memcpy`.
const MEMCPY_MIN: i64 = 64;

/// `kmax` is generated when it keeps at most `SELECT_FEW` entries per row, or at most
/// `SELECT_FEW_OF_LONG` of rows known to be at least `SELECT_LONG_ROW` long: it ranks each entry
/// by scanning its row until `k` entries beat it, about `n·k` comparisons per row, where the
/// interpreter's sort costs `n log n`. Measured (rows × length, generated vs interpreted kernel):
/// `kmax 3` of 64 × 10 3.1 vs 2.8 µs, `kmax 1` 2.5 vs 2.6; of 16 × 64 `kmax 4` 7.3 vs 7.8,
/// `kmax 8` 10.8 vs 8.2, `kmax 16` 15 vs 8; of 16 × 1000 `kmax 3` 249 vs 736 µs.
const SELECT_FEW: u64 = 4;
const SELECT_FEW_OF_LONG: u64 = 16;
const SELECT_LONG_ROW: u64 = 256;

/// The compiled entry point (see the calling convention above).
type Entry = unsafe extern "C" fn(*const *mut f32, *const usize);

/// Positions and class counts past this are left to the interpreter (they fit every index
/// computation with room to spare).
const LIMIT: u64 = 1 << 40;

/// One generated kernel: the op, and the shapes (as the graph states them) it is compiled for.
#[derive(Clone, Debug, PartialEq)]
pub struct Special {
    pub op: Op,
    /// The operands' shapes, in operand order, then the result's.
    pub shapes: Vec<Vec<Dim>>,
}

impl Special {
    /// The kernel of `op` on operands of shapes `operands` giving `result`, or why it is not
    /// generated (the op, an unknown size, a shape that does not fit the op).
    pub fn new(op: &Op, operands: &[Vec<Dim>], result: &[Dim]) -> Result<Special, String> {
        let mut shapes = operands.to_vec();
        shapes.push(result.to_vec());
        if shapes.iter().flatten().any(|d| matches!(d, Dim::Any)) {
            return Err("a shape has an unknown size".into());
        }
        let one = |what: &str| -> Result<usize, String> {
            if operands.len() == 1 {
                Ok(operands[0].len())
            } else {
                Err(format!("{what} takes one operand"))
            }
        };
        let r = result.len();
        let ok = match op {
            Op::LogSumExp { axis, keepdims } => {
                let x = one("logsumexp")?;
                *axis < x && r == if *keepdims { x } else { x - 1 }
            }
            Op::OneHot { classes } => one("one_hot")? + 1 == r && *classes <= LIMIT,
            Op::Transpose { perm } => {
                let x = one("transpose")?;
                let mut sorted = perm.clone();
                sorted.sort_unstable();
                x == r && sorted == (0..x).collect::<Vec<_>>()
            }
            Op::Slice { items } => {
                let x = one("slice")?;
                items.len() <= x && kept(items) + x - items.len() == r && positions_fit(items)
            }
            Op::Embed { items } => {
                let x = one("embed")?;
                items.len() <= r && kept(items) + r - items.len() == x && positions_fit(items)
            }
            Op::Concat { axis } => !operands.is_empty() && *axis < r && operands.iter().all(|s| s.len() == r),
            Op::KMax { k } | Op::KMaxMask { k } => {
                let x = one("kmax")?;
                let long = matches!(operands[0].last(), Some(Dim::Known(n)) if *n >= SELECT_LONG_ROW);
                if *k > SELECT_FEW && !(long && *k <= SELECT_FEW_OF_LONG) {
                    return Err(format!("kmax of {k} of these rows is left to the interpreter's sort"));
                }
                x >= 1 && operands[0] == result
            }
            other => return Err(format!("{} is not generated here", other.name())),
        };
        if !ok {
            return Err(format!("{} does not fit its shapes {shapes:?}", op.name()));
        }
        Ok(Special { op: op.clone(), shapes })
    }

    /// The kernel of graph node `node`.
    pub fn of_node(g: &Graph, node: NodeId) -> Result<Special, String> {
        let operands: Vec<Vec<Dim>> = g.operands(node).iter().map(|x| g.node(*x).shape.clone()).collect();
        let n = g.node(node);
        Special::new(&n.op, &operands, &n.shape)
    }

    /// How many sizes `dims` holds: the operands' ranks and the result's.
    pub fn dims_len(&self) -> usize {
        self.shapes.iter().map(Vec::len).sum()
    }

    /// The number of operands.
    pub fn operands(&self) -> usize {
        self.shapes.len() - 1
    }

    /// Whether the kernel may run on the run-time sizes `dims` (laid out as the calling convention
    /// says): every known size is as compiled, the element counts do not overflow, and the sizes
    /// fit the op exactly as the interpreter's kernel requires (slice positions in range, the
    /// concatenated extents adding up, …). Where they do not, the interpreter's kernel reports
    /// the error.
    pub fn fits(&self, dims: &[usize]) -> bool {
        if dims.len() != self.dims_len() {
            return false;
        }
        let mut split = Vec::with_capacity(self.shapes.len());
        let mut at = 0;
        for s in &self.shapes {
            let d = &dims[at..at + s.len()];
            at += s.len();
            let known = s.iter().zip(d).all(|(s, d)| match s {
                Dim::Known(n) => *n == *d as u64,
                _ => true,
            });
            let count = d.iter().try_fold(1usize, |a, b| a.checked_mul(*b)).and_then(|c| c.checked_mul(8));
            if !known || count.is_none() {
                return false;
            }
            split.push(d);
        }
        let out = split[split.len() - 1];
        match &self.op {
            Op::LogSumExp { axis, keepdims } => {
                let x = split[0];
                let want: Vec<usize> = x
                    .iter()
                    .enumerate()
                    .filter_map(|(k, d)| if k != *axis { Some(*d) } else { keepdims.then_some(1) })
                    .collect();
                out == want.as_slice()
            }
            Op::OneHot { classes } => {
                let x = split[0];
                out.len() == x.len() + 1 && out[..x.len()] == *x && out[x.len()] as u64 == *classes
            }
            Op::Transpose { perm } => perm.iter().zip(out).all(|(p, d)| split[0][*p] == *d),
            Op::Slice { items } => sliced(split[0], items).is_some_and(|s| s == out),
            Op::Embed { items } => sliced(out, items).is_some_and(|s| s == split[0]),
            Op::KMax { .. } | Op::KMaxMask { .. } => split[0] == out,
            Op::Concat { axis } => {
                let xs = &split[..split.len() - 1];
                let fits = xs.iter().all(|x| (0..out.len()).all(|k| k == *axis || x[k] == out[k]));
                fits && xs.iter().map(|x| x[*axis]).sum::<usize>() == out[*axis]
            }
            _ => false,
        }
    }
}

/// The number of axes `items` keeps (the ranges).
fn kept(items: &[SliceItem]) -> usize {
    items.iter().filter(|i| matches!(i, SliceItem::Range { .. })).count()
}

fn positions_fit(items: &[SliceItem]) -> bool {
    items.iter().all(|i| match *i {
        SliceItem::At(p) => p.unsigned_abs() <= LIMIT,
        SliceItem::Range { start, end } => {
            start.unsigned_abs() <= LIMIT && end.is_none_or(|e| e.unsigned_abs() <= LIMIT)
        }
    })
}

/// A position made non-negative (negative ones count from the end), as the interpreter does.
fn position(i: i64, n: usize) -> i64 {
    if i < 0 {
        i + n as i64
    } else {
        i
    }
}

/// The shape `slice(items)` gives of `shape`, or `None` where the interpreter reports an error.
fn sliced(shape: &[usize], items: &[SliceItem]) -> Option<Vec<usize>> {
    if items.len() > shape.len() {
        return None;
    }
    let mut out = Vec::new();
    for (item, &n) in items.iter().zip(shape) {
        match *item {
            SliceItem::At(i) => {
                let j = position(i, n);
                if j < 0 || j >= n as i64 {
                    return None;
                }
            }
            SliceItem::Range { start, end } => {
                let s = position(start, n);
                let e = end.map_or(n as i64, |e| position(e, n));
                if s < 0 || e < s || e > n as i64 {
                    return None;
                }
                out.push((e - s) as usize);
            }
        }
    }
    out.extend_from_slice(&shape[items.len()..]);
    Some(out)
}

/// Kernels compiled into one JIT module; the code lives as long as this value.
pub struct CompiledSpecial {
    module: Option<JITModule>,
    kernels: Vec<SpecialKernel>,
}

impl CompiledSpecial {
    /// One kernel per [`Special`] given to [`compile`], in that order.
    pub fn kernels(&self) -> &[SpecialKernel] {
        &self.kernels
    }
}

impl Drop for CompiledSpecial {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the only pointers into the module's memory are the kernels' entries, which
            // are dropped with `self` and were never lent beyond `&self`.
            unsafe { m.free_memory() }
        }
    }
}

/// One compiled kernel.
pub struct SpecialKernel {
    entry: Entry,
    special: Special,
}

impl SpecialKernel {
    pub fn special(&self) -> &Special {
        &self.special
    }

    /// Runs the kernel on one slice per operand and the result's, with the run-time sizes `dims`
    /// (the calling convention's layout). Sizes and lengths are checked first.
    pub fn run(&self, dims: &[usize], operands: &[&[f32]], result: &mut [f32]) -> Result<(), BackendError> {
        if !self.special.fits(dims) {
            return Err(BackendError::Run(format!("sizes {dims:?} do not fit {}", self.special.op.name())));
        }
        if operands.len() != self.special.operands() {
            return Err(BackendError::Run(format!(
                "{} operands given, the kernel has {}",
                operands.len(),
                self.special.operands()
            )));
        }
        let mut at = 0;
        let mut lens = Vec::new();
        for s in &self.special.shapes {
            lens.push(dims[at..at + s.len()].iter().product::<usize>());
            at += s.len();
        }
        for (i, x) in operands.iter().enumerate() {
            if x.len() != lens[i] {
                return Err(BackendError::Run(format!("operand {i} has {} values, needs {}", x.len(), lens[i])));
            }
        }
        if result.len() != lens[operands.len()] {
            return Err(BackendError::Run(format!(
                "the result has {} values, needs {}",
                result.len(),
                lens[operands.len()]
            )));
        }
        let mut bufs: Vec<*mut f32> = operands.iter().map(|x| x.as_ptr() as *mut f32).collect();
        bufs.push(result.as_mut_ptr());
        // SAFETY: the sizes fit the op and every buffer holds its shape's element count (checked
        // above); operands are only read; the result is a `&mut` slice, so it overlaps nothing.
        unsafe { (self.entry)(bufs.as_ptr(), dims.as_ptr()) };
        Ok(())
    }

    /// Calls the kernel on raw buffers, as the calling convention says.
    ///
    /// # Safety
    /// `self.special().fits(dims)` holds for the `dims_len()` sizes at `dims`; `bufs` holds one
    /// valid pointer per operand and one for the result, each to as many `f32`s as its shape in
    /// `dims` has; the result overlaps no operand.
    pub unsafe fn call(&self, bufs: *const *mut f32, dims: *const usize) {
        (self.entry)(bufs, dims)
    }
}

fn codegen(e: impl std::fmt::Debug) -> BackendError {
    BackendError::Codegen(format!("{e:?}"))
}

/// A JIT module for the host's native ISA.
fn module() -> Result<JITModule, BackendError> {
    let builder = JITBuilder::with_flags(&[("opt_level", "speed")], default_libcall_names())
        .map_err(|e| BackendError::Codegen(e.to_string()))?;
    Ok(JITModule::new(builder))
}

/// Declares `circ_special_<index>` in `module` and builds its body into `ctx`.
fn build(
    module: &mut JITModule,
    ctx: &mut Context,
    fctx: &mut FunctionBuilderContext,
    special: &Special,
    opts: &Options,
    index: usize,
) -> Result<FuncId, BackendError> {
    let config = module.target_config();
    let sig = signature(config.pointer_type(), config.default_call_conv);
    let id = module.declare_function(&format!("circ_special_{index}"), Linkage::Local, &sig).map_err(codegen)?;
    module.clear_context(ctx);
    ctx.func.signature = sig;
    ctx.func.name = UserFuncName::user(0, id.as_u32());
    let b = FunctionBuilder::new(&mut ctx.func, fctx);
    emit(b, special, opts, config);
    Ok(id)
}

/// Compiles every kernel into one JIT module.
pub fn compile(specials: &[&Special], opts: &Options) -> Result<CompiledSpecial, BackendError> {
    let mut module = module()?;
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    let mut ids = Vec::new();
    for (index, s) in specials.iter().enumerate() {
        let id = build(&mut module, &mut ctx, &mut fctx, s, opts, index)?;
        module.define_function(id, &mut ctx).map_err(|e| match e {
            cranelift_module::ModuleError::Compilation(c) => {
                BackendError::Codegen(cranelift_codegen::print_errors::pretty_error(&ctx.func, c))
            }
            e => codegen(e),
        })?;
        ids.push(id);
    }
    module.finalize_definitions().map_err(codegen)?;
    let kernels = ids
        .into_iter()
        .zip(specials)
        .map(|(id, s)| {
            let code = module.get_finalized_function(id);
            // SAFETY: the function was defined with `elementwise::signature`, the C convention
            // of the host, which is `Entry`.
            let entry = unsafe { std::mem::transmute::<*const u8, Entry>(code) };
            SpecialKernel { entry, special: (*s).clone() }
        })
        .collect();
    Ok(CompiledSpecial { module: Some(module), kernels })
}

/// The CLIF of graph node `node`'s kernel, as generated (before Cranelift's optimizations),
/// headed with comments: what it computes, every buffer, and the node with its source line.
pub fn clif_text(g: &Graph, node: NodeId, sources: Option<&SourceMap>, opts: &Options) -> Result<String, BackendError> {
    let special = Special::of_node(g, node).map_err(BackendError::Unsupported)?;
    let mut module = module()?;
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    build(&mut module, &mut ctx, &mut fctx, &special, opts, 0)?;
    let shape = |s: &[Dim]| {
        let dims: Vec<String> = s.iter().map(|d| ShowDim(*d, g).to_string()).collect();
        format!("[{}]", dims.join(", "))
    };
    let n = g.node(node);
    let mut out = String::new();
    let _ = writeln!(out, "; {}: {}", n.op.name(), summary(&special.op));
    let operands = g.operands(node);
    for (i, x) in operands.iter().enumerate() {
        let _ =
            writeln!(out, ";   bufs[{i}] = {x} {} {}", crate::ir::print::node_name(g, *x), shape(&g.node(*x).shape));
    }
    let _ = writeln!(out, ";   bufs[{}] <- {node} {}", operands.len(), shape(&n.shape));
    let all: Vec<String> = special.shapes.iter().map(|s| shape(s)).collect();
    let _ = writeln!(out, ";   dims = the sizes of {}", all.join(", "));
    let args: Vec<String> = operands.iter().map(ToString::to_string).collect();
    let from = match (n.span, sources) {
        (Some(span), Some(src)) => format!("  from {}", crate::ir::print::location_and_line(src, span)),
        _ => String::new(),
    };
    let _ = writeln!(out, "; {node} = {}({}){from}", n.op.name(), args.join(", "));
    let _ = write!(out, "{}", ctx.func.display());
    // SAFETY: nothing was defined, so no pointer into the module's memory exists.
    unsafe { module.free_memory() };
    Ok(out)
}

/// The machine code of graph node `node`'s kernel after register allocation, on this host's ISA.
pub fn asm_text(g: &Graph, node: NodeId, opts: &Options) -> Result<String, BackendError> {
    let special = Special::of_node(g, node).map_err(BackendError::Unsupported)?;
    let mut module = module()?;
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    build(&mut module, &mut ctx, &mut fctx, &special, opts, 0)?;
    ctx.set_disasm(true);
    let mut control = cranelift_codegen::control::ControlPlane::default();
    let text = match ctx.compile(module.isa(), &mut control) {
        Ok(code) => Ok(code.vcode.clone().unwrap_or_default()),
        Err(e) => Err(BackendError::Codegen(format!("{:?}", e.inner))),
    };
    // SAFETY: nothing was defined, so no pointer into the module's memory exists.
    unsafe { module.free_memory() };
    text
}

/// One line on how the kernel computes its op.
fn summary(op: &Op) -> &'static str {
    match op {
        Op::LogSumExp { .. } => "per output a max pass, Σ exp(x − max), then max + log Σ (max itself where not finite)",
        Op::OneHot { .. } => "zeros, then 1 at each label in 0..classes that is an integer",
        Op::Transpose { .. } => "the result dense, the operand read at permuted strides",
        Op::Slice { .. } => "the result dense, the operand read from the slice's offset at its strides",
        Op::Embed { .. } => "zeros, then the operand written where the slice reads",
        Op::Concat { .. } => "each operand's rows copied into the result's at its offset",
        Op::KMax { .. } | Op::KMaxMask { .. } => {
            "each entry kept where fewer than k entries of its row rank above it (NaN highest, ties to the earliest)"
        }
        _ => "",
    }
}

// ---------------------------------------------------------------------------------------------
// Code generation.

fn input_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap().with_readonly()
}

fn output_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Scalar `f32` or `f32x4`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lanes {
    Scalar,
    Vector,
}

impl Lanes {
    fn ty(self) -> Type {
        match self {
            Lanes::Scalar => types::F32,
            Lanes::Vector => types::F32X4,
        }
    }
}

/// What beats an entry in a `kmax` scan.
#[derive(Clone, Copy)]
enum Beats {
    /// A number (no NaN) that may be tied: the entries before it.
    AtLeast(Value),
    /// A number: the entries after it.
    Above(Value),
    /// A NaN: the NaNs before it.
    Nan,
}

/// One loop of a copy: its trip count and how far each side advances per trip (in elements).
#[derive(Clone, Copy)]
struct Axis {
    extent: Value,
    src: Value,
    dst: Value,
}

struct Gen<'a, 'f> {
    b: FunctionBuilder<'f>,
    special: &'a Special,
    ptr: Type,
    config: cranelift_codegen::isa::TargetFrontendConfig,
    fma: bool,
    vectorize: bool,
    /// The buffer pointers: operands, then the result.
    bufs: Vec<Value>,
    /// Every buffer's sizes: an immediate where known, else loaded from `dims` in the entry block.
    dims: Vec<Vec<Value>>,
}

/// Builds, with `b`, the body of the kernel of `special` (whose signature is `signature`).
fn emit(
    b: FunctionBuilder<'_>,
    special: &Special,
    opts: &Options,
    config: cranelift_codegen::isa::TargetFrontendConfig,
) {
    let ptr = config.pointer_type();
    let mut gen =
        Gen { b, special, ptr, config, fma: opts.fma, vectorize: opts.vectorize, bufs: Vec::new(), dims: Vec::new() };
    gen.body();
    let Gen { mut b, .. } = gen;
    b.seal_all_blocks();
    b.finalize(config);
}

impl Gen<'_, '_> {
    fn body(&mut self) {
        let entry = self.b.create_block();
        self.b.append_block_params_for_function_params(entry);
        self.b.switch_to_block(entry);
        let (bufs, dims) = (self.b.block_params(entry)[0], self.b.block_params(entry)[1]);
        let table = MemFlagsData::trusted().with_readonly();
        let word = self.ptr.bytes() as i32;
        let special = self.special;
        let mut at = 0;
        for (i, s) in special.shapes.iter().enumerate() {
            let p = self.b.ins().load(self.ptr, table, bufs, word * i as i32);
            self.bufs.push(p);
            let mut sizes = Vec::with_capacity(s.len());
            for d in s {
                sizes.push(match d {
                    Dim::Known(n) => self.b.ins().iconst(self.ptr, *n as i64),
                    _ => self.b.ins().load(self.ptr, table, dims, word * at),
                });
                at += 1;
            }
            self.dims.push(sizes);
        }
        match &special.op {
            Op::LogSumExp { axis, .. } => self.logsumexp(*axis),
            Op::OneHot { classes } => self.one_hot(*classes),
            Op::Transpose { perm } => self.transpose(perm),
            Op::Slice { items } => self.slice(items, false),
            Op::Embed { items } => self.slice(items, true),
            Op::Concat { axis } => self.concat(*axis),
            Op::KMax { k } => self.select(*k, false),
            Op::KMaxMask { k } => self.select(*k, true),
            _ => unreachable!("`Special::new` accepts only the ops above"),
        }
        self.b.ins().return_(&[]);
    }

    fn known(&self, buf: usize, axis: usize) -> Option<u64> {
        match self.special.shapes[buf][axis] {
            Dim::Known(n) => Some(n),
            _ => None,
        }
    }

    fn iconst(&mut self, n: i64) -> Value {
        self.b.ins().iconst(self.ptr, n)
    }

    /// The product of buffer `buf`'s sizes along `axes`: the known ones multiplied here, the
    /// symbolic ones in the code.
    fn prod(&mut self, buf: usize, axes: std::ops::Range<usize>) -> Value {
        let mut known = 1i64;
        let mut acc: Option<Value> = None;
        for k in axes {
            match self.known(buf, k) {
                Some(n) => known *= n as i64,
                None => {
                    let v = self.dims[buf][k];
                    acc = Some(match acc {
                        Some(a) => self.b.ins().imul(a, v),
                        None => v,
                    });
                }
            }
        }
        match acc {
            Some(a) if known == 1 => a,
            Some(a) => self.b.ins().imul_imm_s(a, known),
            None => self.iconst(known),
        }
    }

    /// Whether buffer `buf`'s sizes along `axes` are all known to be 1.
    fn ones(&self, buf: usize, axes: std::ops::Range<usize>) -> bool {
        axes.into_iter().all(|k| self.known(buf, k) == Some(1))
    }

    /// `base + 4·i`.
    fn addr(&mut self, base: Value, i: Value) -> Value {
        let bytes = self.b.ins().ishl_imm_s(i, 2);
        self.b.ins().iadd(base, bytes)
    }

    /// `for (i = start; i < end; i += step) body(i)`; `start` is 0 when `None`.
    fn counted(&mut self, start: Option<Value>, end: Value, step: i64, body: &mut dyn FnMut(&mut Self, Value)) {
        let var = self.b.declare_var(self.ptr);
        let start = start.unwrap_or_else(|| self.iconst(0));
        self.b.def_var(var, start);
        let (header, inner, exit) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let i = self.b.use_var(var);
        let more = self.b.ins().icmp(IntCC::UnsignedLessThan, i, end);
        self.b.ins().brif(more, inner, &[], exit, &[]);
        self.b.switch_to_block(inner);
        body(self, i);
        let next = self.b.ins().iadd_imm_s(i, step);
        self.b.def_var(var, next);
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(exit);
    }

    /// The end of the four-lane part of a loop to `n` (`n` rounded down to a multiple of four), or
    /// `None` when vectorizing is off.
    fn vector_end(&mut self, n: Value) -> Option<Value> {
        self.vectorize.then(|| self.b.ins().band_imm_s(n, !(LANES - 1)))
    }

    fn splat(&mut self, c: f32) -> Value {
        let s = self.b.ins().f32const(c);
        self.b.ins().splat(types::F32X4, s)
    }

    fn constant(&mut self, lanes: Lanes, c: f32) -> Value {
        match lanes {
            Lanes::Scalar => self.b.ins().f32const(c),
            Lanes::Vector => self.splat(c),
        }
    }

    /// `len` elements from `p` set to `value`.
    fn fill(&mut self, p: Value, len: Value, value: f32) {
        let v = self.splat(value);
        let s = self.b.ins().f32const(value);
        let nv = self.vector_end(len);
        if let Some(nv) = nv {
            self.counted(None, nv, LANES, &mut |g, i| {
                let a = g.addr(p, i);
                g.b.ins().store(output_flags(), v, a, 0);
            });
        }
        self.counted(nv, len, 1, &mut |g, i| {
            let a = g.addr(p, i);
            g.b.ins().store(output_flags(), s, a, 0);
        });
    }

    /// e^x (`Math::exp_rounded`) on four lanes or one.
    fn exp(&mut self, lanes: Lanes, x: Value) -> Value {
        let fma = self.fma;
        match lanes {
            Lanes::Vector => Math { b: &mut self.b, fma }.exp_rounded(x, false),
            Lanes::Scalar => {
                let v = self.b.ins().splat(types::F32X4, x);
                let e = Math { b: &mut self.b, fma }.exp_rounded(v, true);
                self.b.ins().extractlane(e, 0)
            }
        }
    }

    /// ln x (`Math::log`) on four lanes or one.
    fn log(&mut self, lanes: Lanes, x: Value) -> Value {
        let fma = self.fma;
        match lanes {
            Lanes::Vector => Math { b: &mut self.b, fma }.log(x),
            Lanes::Scalar => {
                let v = self.b.ins().splat(types::F32X4, x);
                let l = Math { b: &mut self.b, fma }.log(v);
                self.b.ins().extractlane(l, 0)
            }
        }
    }

    /// `m + log s` where `m` is finite, else `m`.
    fn finish(&mut self, lanes: Lanes, m: Value, s: Value) -> Value {
        let l = self.log(lanes, s);
        let r = self.b.ins().fadd(m, l);
        let a = self.b.ins().fabs(m);
        let inf = self.constant(lanes, f32::INFINITY);
        let finite = self.b.ins().fcmp(FloatCC::LessThan, a, inf);
        match lanes {
            Lanes::Scalar => self.b.ins().select(finite, r, m),
            Lanes::Vector => {
                let mask = self.b.ins().bitcast(types::F32X4, MemFlagsData::new(), finite);
                self.b.ins().bitselect(mask, r, m)
            }
        }
    }
}

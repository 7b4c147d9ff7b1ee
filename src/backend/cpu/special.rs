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
        let _ = writeln!(out, ";   bufs[{i}] = {x} {} {}", g.node(*x).op.name(), shape(&g.node(*x).shape));
    }
    let _ = writeln!(out, ";   bufs[{}] <- {node} {}", operands.len(), shape(&n.shape));
    let all: Vec<String> = special.shapes.iter().map(|s| shape(s)).collect();
    let _ = writeln!(out, ";   dims = the sizes of {}", all.join(", "));
    let args: Vec<String> = operands.iter().map(ToString::to_string).collect();
    let from = match (n.span, sources) {
        (Some(span), Some(src)) => {
            let loc = src.location(span);
            let line = src.file(span.file).text.lines().nth(loc.line - 1).unwrap_or("").trim();
            format!("  from {loc}: `{line}`")
        }
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

    // -----------------------------------------------------------------------------------------
    // logsumexp

    fn logsumexp(&mut self, axis: usize) {
        let rank = self.special.shapes[0].len();
        let (x, y) = (self.bufs[0], self.bufs[1]);
        let outer = self.prod(0, 0..axis);
        let n = self.dims[0][axis];
        if self.ones(0, axis + 1..rank) {
            if !self.vectorize {
                self.counted(None, outer, 1, &mut |g, o| {
                    let start = g.b.ins().imul(o, n);
                    let row = g.addr(x, start);
                    let v = g.logsumexp_row(row, n);
                    let a = g.addr(y, o);
                    g.b.ins().store(output_flags(), v, a, 0);
                });
                return;
            }
            // Four rows at a time, one per lane; a last block of fewer repeats its last row in
            // the lanes it lacks and stores only its own.
            let row_bytes = self.b.ins().ishl_imm_s(n, 2);
            let last = self.b.ins().iadd_imm_s(outer, -1);
            self.counted(None, outer, LANES, &mut |g, o| {
                let rows: Vec<Value> = (0..LANES)
                    .map(|k| {
                        let r = g.b.ins().iadd_imm_s(o, k);
                        let r = g.b.ins().umin(r, last);
                        let off = g.b.ins().imul(r, row_bytes);
                        g.b.ins().iadd(x, off)
                    })
                    .collect();
                let v = g.logsumexp_rows(&rows, n);
                let a = g.addr(y, o);
                let end = g.b.ins().iadd_imm_s(o, LANES);
                let whole = g.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, end, outer);
                let (all, some, done) = (g.b.create_block(), g.b.create_block(), g.b.create_block());
                g.b.ins().brif(whole, all, &[], some, &[]);
                g.b.switch_to_block(all);
                g.b.ins().store(output_flags(), v, a, 0);
                g.b.ins().jump(done, &[]);
                g.b.switch_to_block(some);
                let have = g.b.ins().isub(outer, o);
                let first = g.b.ins().extractlane(v, 0);
                g.b.ins().store(output_flags(), first, a, 0);
                for k in 1..LANES {
                    let (store, next) = (g.b.create_block(), g.b.create_block());
                    let inside = g.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThan, have, k);
                    g.b.ins().brif(inside, store, &[], next, &[]);
                    g.b.switch_to_block(store);
                    let lane = g.b.ins().extractlane(v, k as u8);
                    g.b.ins().store(output_flags(), lane, a, (4 * k) as i32);
                    g.b.ins().jump(next, &[]);
                    g.b.switch_to_block(next);
                }
                g.b.ins().jump(done, &[]);
                g.b.switch_to_block(done);
            });
            return;
        }
        let inner = self.prod(0, axis + 1..rank);
        let stride = self.b.ins().ishl_imm_s(inner, 2);
        let plane = self.b.ins().imul(n, inner);
        self.counted(None, outer, 1, &mut |g, o| {
            let xo = g.b.ins().imul(o, plane);
            let xrow = g.addr(x, xo);
            let yo = g.b.ins().imul(o, inner);
            let yrow = g.addr(y, yo);
            let nv = g.vector_end(inner);
            if let Some(nv) = nv {
                g.counted(None, nv, LANES, &mut |g, j| {
                    let (src, dst) = (g.addr(xrow, j), g.addr(yrow, j));
                    g.logsumexp_columns(Lanes::Vector, src, stride, n, dst);
                });
            }
            g.counted(nv, inner, 1, &mut |g, j| {
                let (src, dst) = (g.addr(xrow, j), g.addr(yrow, j));
                g.logsumexp_columns(Lanes::Scalar, src, stride, n, dst);
            });
        });
    }

    /// logsumexp of four rows of `n` contiguous elements, as the lanes of an `f32x4`. The maximum:
    /// four lanes along each row, then the four row maxima transposed into lanes and combined,
    /// then the last `n mod 4` columns gathered. The sum: columns of the four rows, so that each
    /// lane adds its row's terms one after another in the interpreter's order; one vector `log`
    /// for the four rows.
    fn logsumexp_rows(&mut self, rows: &[Value], n: Value) -> Value {
        let nv = self.b.ins().band_imm_s(n, !(LANES - 1));
        let minus_inf = self.splat(f32::NEG_INFINITY);
        let accs: Vec<_> = rows
            .iter()
            .map(|_| {
                let v = self.b.declare_var(types::F32X4);
                self.b.def_var(v, minus_inf);
                v
            })
            .collect();
        self.counted(None, nv, LANES, &mut |g, c| {
            for (row, acc) in rows.iter().zip(&accs) {
                let a = g.addr(*row, c);
                let v = g.b.ins().load(types::F32X4, input_flags(), a, 0);
                let m = g.b.use_var(*acc);
                let m = g.b.ins().fmax(m, v);
                g.b.def_var(*acc, m);
            }
        });
        let per_row: Vec<Value> = accs.iter().map(|a| self.b.use_var(*a)).collect();
        let t = self.transpose4(&per_row);
        let lo = self.b.ins().fmax(t[0], t[1]);
        let hi = self.b.ins().fmax(t[2], t[3]);
        let m0 = self.b.ins().fmax(lo, hi);
        let max = self.b.declare_var(types::F32X4);
        self.b.def_var(max, m0);
        self.counted(Some(nv), n, 1, &mut |g, c| {
            let v = g.gather(rows, c);
            let m = g.b.use_var(max);
            let m = g.b.ins().fmax(m, v);
            g.b.def_var(max, m);
        });
        let m = self.b.use_var(max);
        // Σ exp(x − m), by chunks of four columns: a tile transposed in registers (or, for the
        // last `n mod 4` columns, gathered element by element) into a stack slot of four columns,
        // then one column after another out of it. One `exp` in the code, for code size.
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 64, 4));
        let base = self.b.ins().stack_addr(self.ptr, slot, 0);
        let sum = self.b.declare_var(types::F32X4);
        let zero = self.splat(0.0);
        self.b.def_var(sum, zero);
        self.counted(None, n, LANES, &mut |g, c| {
            let (tile, gather, consume) = (g.b.create_block(), g.b.create_block(), g.b.create_block());
            g.b.append_block_param(consume, g.ptr);
            let end = g.b.ins().iadd_imm_s(c, LANES);
            let whole = g.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, end, n);
            g.b.ins().brif(whole, tile, &[], gather, &[]);
            g.b.switch_to_block(tile);
            let vs: Vec<Value> = rows
                .iter()
                .map(|row| {
                    let a = g.addr(*row, c);
                    g.b.ins().load(types::F32X4, input_flags(), a, 0)
                })
                .collect();
            for (k, column) in g.transpose4(&vs).into_iter().enumerate() {
                g.b.ins().store(output_flags(), column, base, (16 * k) as i32);
            }
            let four = g.iconst(LANES);
            g.b.ins().jump(consume, &[four.into()]);
            g.b.switch_to_block(gather);
            let left = g.b.ins().isub(n, c);
            g.counted(None, left, 1, &mut |g, k| {
                let col = g.b.ins().iadd(c, k);
                let to = g.b.ins().ishl_imm_s(k, 4);
                let to = g.b.ins().iadd(base, to);
                for (r, row) in rows.iter().enumerate() {
                    let a = g.addr(*row, col);
                    let v = g.b.ins().load(types::F32, input_flags(), a, 0);
                    g.b.ins().store(output_flags(), v, to, (4 * r) as i32);
                }
            });
            g.b.ins().jump(consume, &[left.into()]);
            g.b.switch_to_block(consume);
            let count = g.b.block_params(consume)[0];
            g.counted(None, count, 1, &mut |g, k| {
                let at = g.b.ins().ishl_imm_s(k, 4);
                let at = g.b.ins().iadd(base, at);
                let column = g.b.ins().load(types::F32X4, output_flags(), at, 0);
                let d = g.b.ins().fsub(column, m);
                let e = g.exp(Lanes::Vector, d);
                let s = g.b.use_var(sum);
                let s = g.b.ins().fadd(s, e);
                g.b.def_var(sum, s);
            });
        });
        let s = self.b.use_var(sum);
        self.finish(Lanes::Vector, m, s)
    }

    /// Element `c` of each of four rows, as the lanes of an `f32x4`.
    fn gather(&mut self, rows: &[Value], c: Value) -> Value {
        let mut v = None;
        for (k, row) in rows.iter().enumerate() {
            let a = self.addr(*row, c);
            let s = self.b.ins().load(types::F32, input_flags(), a, 0);
            v = Some(match v {
                None => self.b.ins().splat(types::F32X4, s),
                Some(v) => self.b.ins().insertlane(v, s, k as u8),
            });
        }
        v.expect("four rows")
    }

    /// logsumexp of the `n` contiguous elements at `row`, one at a time (vector code off).
    fn logsumexp_row(&mut self, row: Value, n: Value) -> Value {
        let bytes = self.iconst(4);
        self.logsumexp_columns_value(Lanes::Scalar, row, bytes, n)
    }

    /// logsumexp of one or four neighbouring columns starting at `src`, `n` rows `stride` bytes
    /// apart, stored at `dst`: each lane in the interpreter's order.
    fn logsumexp_columns(&mut self, lanes: Lanes, src: Value, stride: Value, n: Value, dst: Value) {
        let r = self.logsumexp_columns_value(lanes, src, stride, n);
        self.b.ins().store(output_flags(), r, dst, 0);
    }

    /// logsumexp of one or four neighbouring columns at `src`, `n` rows `stride` bytes apart.
    fn logsumexp_columns_value(&mut self, lanes: Lanes, src: Value, stride: Value, n: Value) -> Value {
        let ty = lanes.ty();
        let max = self.b.declare_var(ty);
        let init = self.constant(lanes, f32::NEG_INFINITY);
        self.b.def_var(max, init);
        self.counted(None, n, 1, &mut |g, i| {
            let off = g.b.ins().imul(i, stride);
            let a = g.b.ins().iadd(src, off);
            let v = g.b.ins().load(ty, input_flags(), a, 0);
            let m = g.b.use_var(max);
            let m = g.b.ins().fmax(m, v);
            g.b.def_var(max, m);
        });
        let m = self.b.use_var(max);
        let sum = self.b.declare_var(ty);
        let zero = self.constant(lanes, 0.0);
        self.b.def_var(sum, zero);
        self.counted(None, n, 1, &mut |g, i| {
            let off = g.b.ins().imul(i, stride);
            let a = g.b.ins().iadd(src, off);
            let v = g.b.ins().load(ty, input_flags(), a, 0);
            let d = g.b.ins().fsub(v, m);
            let e = g.exp(lanes, d);
            let s = g.b.use_var(sum);
            let s = g.b.ins().fadd(s, e);
            g.b.def_var(sum, s);
        });
        let s = self.b.use_var(sum);
        self.finish(lanes, m, s)
    }

    // -----------------------------------------------------------------------------------------
    // one_hot

    fn one_hot(&mut self, classes: u64) {
        let rank = self.special.shapes[0].len();
        let (x, y) = (self.bufs[0], self.bufs[1]);
        let n = self.prod(0, 0..rank);
        let c = self.iconst(classes as i64);
        let total = self.b.ins().imul(n, c);
        self.fill(y, total, 0.0);
        let one = self.b.ins().f32const(1.0);
        let zero = self.b.ins().f64const(0.0);
        let limit = self.b.ins().f64const(classes as f64);
        self.counted(None, n, 1, &mut |g, i| {
            let a = g.addr(x, i);
            let l = g.b.ins().load(types::F32, input_flags(), a, 0);
            let l = g.b.ins().fpromote(types::F64, l);
            let low = g.b.ins().fcmp(FloatCC::GreaterThanOrEqual, l, zero);
            let high = g.b.ins().fcmp(FloatCC::LessThan, l, limit);
            let k = g.b.ins().fcvt_to_sint_sat(g.ptr, l);
            let back = g.b.ins().fcvt_from_sint(types::F64, k);
            let whole = g.b.ins().fcmp(FloatCC::Equal, back, l);
            let ok = g.b.ins().band(low, high);
            let ok = g.b.ins().band(ok, whole);
            let (set, done) = (g.b.create_block(), g.b.create_block());
            g.b.ins().brif(ok, set, &[], done, &[]);
            g.b.switch_to_block(set);
            let row = g.b.ins().imul(i, c);
            let at = g.b.ins().iadd(row, k);
            let a = g.addr(y, at);
            g.b.ins().store(output_flags(), one, a, 0);
            g.b.ins().jump(done, &[]);
            g.b.switch_to_block(done);
        });
    }

    // -----------------------------------------------------------------------------------------
    // Copies

    /// Copies through the loop nest `axes` (outermost first) from `src + 4·src_base` to
    /// `dst + 4·dst_base`. `contiguous`: the innermost axis advances both sides by 1 (four lanes
    /// at a time then).
    fn copy(&mut self, src: Value, src_base: Value, dst: Value, dst_base: Value, axes: &[Axis], contiguous: bool) {
        let s = self.addr(src, src_base);
        let d = self.addr(dst, dst_base);
        self.copy_nest(s, d, axes, contiguous);
    }

    fn copy_nest(&mut self, src: Value, dst: Value, axes: &[Axis], contiguous: bool) {
        let Some((axis, rest)) = axes.split_first() else {
            let v = self.b.ins().load(types::F32, input_flags(), src, 0);
            self.b.ins().store(output_flags(), v, dst, 0);
            return;
        };
        if rest.is_empty() {
            return self.copy_inner(src, dst, *axis, None, contiguous);
        }
        if rest.len() == 1 && !contiguous {
            // A strided inner loop: through 4×4 tiles when both loops are long enough.
            return self.copy_inner(src, dst, rest[0], Some(*axis), false);
        }
        let (sb, db) = (self.b.ins().ishl_imm_s(axis.src, 2), self.b.ins().ishl_imm_s(axis.dst, 2));
        self.counted(None, axis.extent, 1, &mut |g, i| {
            let so = g.b.ins().imul(i, sb);
            let s = g.b.ins().iadd(src, so);
            let dof = g.b.ins().imul(i, db);
            let d = g.b.ins().iadd(dst, dof);
            g.copy_nest(s, d, rest, contiguous);
        });
    }

    /// The innermost loop of a copy (`axis`), inside `outer` when given (a strided copy of two
    /// loops, transposed through 4×4 tiles).
    fn copy_inner(&mut self, src: Value, dst: Value, axis: Axis, outer: Option<Axis>, contiguous: bool) {
        if contiguous {
            // Long runs through the C library's `memcpy` (wider moves than `f32x4`), short ones
            // in the loop.
            let (call, small, done) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
            let long = self.b.ins().icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, axis.extent, MEMCPY_MIN);
            self.b.ins().brif(long, call, &[], small, &[]);
            self.b.switch_to_block(call);
            let bytes = self.b.ins().ishl_imm_s(axis.extent, 2);
            self.b.call_memcpy(self.config, dst, src, bytes);
            self.b.ins().jump(done, &[]);
            self.b.switch_to_block(small);
            let nv = self.vector_end(axis.extent);
            if let Some(nv) = nv {
                self.counted(None, nv, LANES, &mut |g, i| {
                    let (s, d) = (g.addr(src, i), g.addr(dst, i));
                    let v = g.b.ins().load(types::F32X4, input_flags(), s, 0);
                    g.b.ins().store(output_flags(), v, d, 0);
                });
            }
            self.counted(nv, axis.extent, 1, &mut |g, i| {
                let (s, d) = (g.addr(src, i), g.addr(dst, i));
                let v = g.b.ins().load(types::F32, input_flags(), s, 0);
                g.b.ins().store(output_flags(), v, d, 0);
            });
            self.b.ins().jump(done, &[]);
            self.b.switch_to_block(done);
            return;
        }
        let (sb, db) = (self.b.ins().ishl_imm_s(axis.src, 2), self.b.ins().ishl_imm_s(axis.dst, 2));
        let Some(outer) = outer else {
            self.strided_row(src, dst, sb, db, None, axis.extent);
            return;
        };
        let (osb, odb) = (self.b.ins().ishl_imm_s(outer.src, 2), self.b.ins().ishl_imm_s(outer.dst, 2));
        // Rows of the outer loop four at a time (tiles when vectorizing), then one at a time.
        let ov = self.vector_end(outer.extent);
        if let Some(ov) = ov {
            let iv = self.vector_end(axis.extent).expect("vectorizing");
            self.counted(None, ov, LANES, &mut |g, o| {
                let so = g.b.ins().imul(o, osb);
                let s = g.b.ins().iadd(src, so);
                let dof = g.b.ins().imul(o, odb);
                let d = g.b.ins().iadd(dst, dof);
                g.counted(None, iv, LANES, &mut |g, i| {
                    let si = g.b.ins().imul(i, sb);
                    let s = g.b.ins().iadd(s, si);
                    let di = g.b.ins().imul(i, db);
                    let d = g.b.ins().iadd(d, di);
                    g.tile(s, d, sb, db, osb, odb);
                });
                // The rest of the four rows, element by element.
                for r in 0..LANES {
                    let so = g.b.ins().imul_imm_s(osb, r);
                    let s = g.b.ins().iadd(s, so);
                    let dof = g.b.ins().imul_imm_s(odb, r);
                    let d = g.b.ins().iadd(d, dof);
                    g.strided_row(s, d, sb, db, Some(iv), axis.extent);
                }
            });
        }
        self.counted(ov, outer.extent, 1, &mut |g, o| {
            let so = g.b.ins().imul(o, osb);
            let s = g.b.ins().iadd(src, so);
            let dof = g.b.ins().imul(o, odb);
            let d = g.b.ins().iadd(dst, dof);
            g.strided_row(s, d, sb, db, None, axis.extent);
        });
    }

    /// Elements `start..n` of one row, `sb` and `db` bytes apart on each side.
    fn strided_row(&mut self, src: Value, dst: Value, sb: Value, db: Value, start: Option<Value>, n: Value) {
        self.counted(start, n, 1, &mut |g, i| {
            let so = g.b.ins().imul(i, sb);
            let s = g.b.ins().iadd(src, so);
            let v = g.b.ins().load(types::F32, input_flags(), s, 0);
            let dof = g.b.ins().imul(i, db);
            let d = g.b.ins().iadd(dst, dof);
            g.b.ins().store(output_flags(), v, d, 0);
        });
    }

    /// A 4×4 tile of a strided copy: element (r, i) of the tile (r along the outer loop, `osb`,
    /// `odb` bytes apart; i along the inner, `sb`, `db` apart) goes from `src` to `dst`. Where the
    /// source is contiguous along the outer loop and the destination along the inner one (a
    /// transpose's common case), it loads four rows as vectors, transposes them in registers and
    /// stores four vectors; otherwise element by element.
    fn tile(&mut self, src: Value, dst: Value, sb: Value, db: Value, osb: Value, odb: Value) {
        let four = self.iconst(4);
        let src_rows = self.b.ins().icmp(IntCC::Equal, osb, four);
        let dst_rows = self.b.ins().icmp(IntCC::Equal, db, four);
        let fast = self.b.ins().band(src_rows, dst_rows);
        let (vector, scalar, done) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
        self.b.ins().brif(fast, vector, &[], scalar, &[]);
        self.b.switch_to_block(vector);
        // Source: for each inner index i, the four outer elements r = 0..3 are contiguous.
        let cols: Vec<Value> = (0..LANES)
            .map(|i| {
                let off = self.b.ins().imul_imm_s(sb, i);
                let a = self.b.ins().iadd(src, off);
                self.b.ins().load(types::F32X4, input_flags(), a, 0)
            })
            .collect();
        // Destination: for each r, the four inner elements i = 0..3 are contiguous: row r of the
        // transposed tile.
        let rows = self.transpose4(&cols);
        for (r, v) in rows.into_iter().enumerate() {
            let off = self.b.ins().imul_imm_s(odb, r as i64);
            let a = self.b.ins().iadd(dst, off);
            self.b.ins().store(output_flags(), v, a, 0);
        }
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(scalar);
        for r in 0..LANES {
            for i in 0..LANES {
                let so = self.b.ins().imul_imm_s(osb, r);
                let si = self.b.ins().imul_imm_s(sb, i);
                let s = self.b.ins().iadd(src, so);
                let s = self.b.ins().iadd(s, si);
                let v = self.b.ins().load(types::F32, input_flags(), s, 0);
                let dof = self.b.ins().imul_imm_s(odb, r);
                let di = self.b.ins().imul_imm_s(db, i);
                let d = self.b.ins().iadd(dst, dof);
                let d = self.b.ins().iadd(d, di);
                self.b.ins().store(output_flags(), v, d, 0);
            }
        }
        self.b.ins().jump(done, &[]);
        self.b.switch_to_block(done);
    }

    /// The 4×4 transpose of four `f32x4` rows.
    fn transpose4(&mut self, v: &[Value]) -> Vec<Value> {
        // t0 = (a0 b0 a1 b1), t1 = (c0 d0 c1 d1), t2 = (a2 b2 a3 b3), t3 = (c2 d2 c3 d3).
        let t0 = self.shuffle(v[0], v[1], [0, 4, 1, 5]);
        let t1 = self.shuffle(v[2], v[3], [0, 4, 1, 5]);
        let t2 = self.shuffle(v[0], v[1], [2, 6, 3, 7]);
        let t3 = self.shuffle(v[2], v[3], [2, 6, 3, 7]);
        vec![
            self.shuffle(t0, t1, [0, 1, 4, 5]),
            self.shuffle(t0, t1, [2, 3, 6, 7]),
            self.shuffle(t2, t3, [0, 1, 4, 5]),
            self.shuffle(t2, t3, [2, 3, 6, 7]),
        ]
    }

    /// `f32x4` lanes `[a, b][k]` for the four indices `k` (0–3 from `a`, 4–7 from `b`).
    fn shuffle(&mut self, a: Value, b: Value, k: [u8; 4]) -> Value {
        let bytes: Vec<u8> = k.iter().flat_map(|k| (0..4).map(move |i| 4 * k + i)).collect();
        let mask = self.b.func.dfg.immediates.push(cranelift_codegen::ir::ConstantData::from(bytes));
        let little = MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little);
        let a = self.b.ins().bitcast(types::I8X16, little, a);
        let b = self.b.ins().bitcast(types::I8X16, little, b);
        let r = self.b.ins().shuffle(a, b, mask);
        self.b.ins().bitcast(types::F32X4, little, r)
    }

    /// Dense strides of the loops `extents` (innermost 1).
    fn dense(&mut self, extents: &[Value]) -> Vec<Value> {
        let mut out = vec![self.iconst(1); extents.len()];
        for k in (0..extents.len().saturating_sub(1)).rev() {
            out[k] = self.b.ins().imul(out[k + 1], extents[k + 1]);
        }
        out
    }

    fn transpose(&mut self, perm: &[usize]) {
        let rank = perm.len();
        // Input axes of known size 1 change nothing; runs of axes that stay neighbours, in order,
        // are one loop.
        let kept: Vec<usize> = (0..rank).filter(|a| self.known(0, *a) != Some(1)).collect();
        let order: Vec<usize> = perm.iter().copied().filter(|p| kept.contains(p)).collect();
        let place = |a: usize| kept.iter().position(|k| *k == a).expect("a kept axis");
        let mut runs: Vec<Vec<usize>> = Vec::new();
        for a in order {
            match runs.last_mut() {
                Some(run) if place(a) == place(run[run.len() - 1]) + 1 => run.push(a),
                _ => runs.push(vec![a]),
            }
        }
        let mut extents = Vec::new();
        let mut strides = Vec::new();
        for run in &runs {
            let (first, last) = (run[0], run[run.len() - 1]);
            extents.push(self.prod(0, first..last + 1));
            strides.push(self.prod(0, last + 1..rank));
        }
        let dst = self.dense(&extents);
        let axes: Vec<Axis> =
            (0..runs.len()).map(|k| Axis { extent: extents[k], src: strides[k], dst: dst[k] }).collect();
        let contiguous = runs.last().is_some_and(|run| run.last() == kept.last());
        let zero = self.iconst(0);
        let (x, y) = (self.bufs[0], self.bufs[1]);
        self.copy(x, zero, y, zero, &axes, contiguous);
    }

    /// A slice (`embed` false: from the operand, the full shape, into the dense result) or an
    /// embed (`embed` true: zeros, then the dense operand into the full-shaped result).
    fn slice(&mut self, items: &[SliceItem], embed: bool) {
        let (full, part) = if embed { (1, 0) } else { (0, 1) };
        let rank = self.special.shapes[full].len();
        let mut base = self.iconst(0);
        let mut loops: Vec<(Value, Value)> = Vec::new();
        // The axis of the last range, whose loop is contiguous when the axes after it are all 1.
        let mut last_range = None;
        let mut k = 0;
        for (a, item) in items.iter().enumerate() {
            let p = match *item {
                SliceItem::At(p) | SliceItem::Range { start: p, .. } => p,
            };
            let pos = if p >= 0 {
                self.iconst(p)
            } else {
                let n = self.dims[full][a];
                self.b.ins().iadd_imm_s(n, p)
            };
            let stride = self.prod(full, a + 1..rank);
            let off = self.b.ins().imul(pos, stride);
            base = self.b.ins().iadd(base, off);
            if matches!(item, SliceItem::Range { .. }) {
                loops.push((self.dims[part][k], stride));
                last_range = Some(a);
                k += 1;
            }
        }
        let mut contiguous = last_range.is_some_and(|a| self.ones(full, a + 1..rank));
        if items.len() < rank || items.is_empty() {
            // The axes after the items are whole: one contiguous run, which the last range joins.
            let whole = self.prod(full, items.len()..rank);
            match (items.last(), loops.last_mut()) {
                (Some(SliceItem::Range { .. }), Some(last)) => {
                    *last = (self.b.ins().imul(last.0, whole), self.iconst(1));
                }
                _ => {
                    let one = self.iconst(1);
                    loops.push((whole, one));
                }
            }
            contiguous = true;
        }
        let extents: Vec<Value> = loops.iter().map(|l| l.0).collect();
        let dense = self.dense(&extents);
        let zero = self.iconst(0);
        let (src, dst) = (self.bufs[0], self.bufs[1]);
        if embed {
            let len = self.prod(1, 0..rank);
            self.fill(dst, len, 0.0);
            let axes: Vec<Axis> =
                loops.iter().zip(&dense).map(|((e, s), d)| Axis { extent: *e, src: *d, dst: *s }).collect();
            self.copy(src, zero, dst, base, &axes, contiguous);
        } else {
            let axes: Vec<Axis> =
                loops.iter().zip(&dense).map(|((e, s), d)| Axis { extent: *e, src: *s, dst: *d }).collect();
            self.copy(src, base, dst, zero, &axes, contiguous);
        }
    }

    fn concat(&mut self, axis: usize) {
        let m = self.special.shapes.len() - 1;
        let rank = self.special.shapes[m].len();
        let outer_one = self.ones(m, 0..axis);
        let outer = self.prod(m, 0..axis);
        let total = self.prod(m, axis..rank);
        let one = self.iconst(1);
        let mut offset = self.iconst(0);
        for i in 0..m {
            let chunk = self.prod(i, axis..rank);
            let row = Axis { extent: chunk, src: one, dst: one };
            let axes = if outer_one { vec![row] } else { vec![Axis { extent: outer, src: chunk, dst: total }, row] };
            let (x, y) = (self.bufs[i], self.bufs[m]);
            let zero = self.iconst(0);
            self.copy(x, zero, y, offset, &axes, true);
            offset = self.b.ins().iadd(offset, chunk);
        }
    }

    // -----------------------------------------------------------------------------------------
    // kmax, kmax_mask

    /// Along the last axis: entry `i` is kept when fewer than `min(k, n)` entries of its row beat
    /// it (rank higher: NaN above every number; equal ones that come earlier), counted by scans
    /// that stop as soon as that many are found.
    fn select(&mut self, k: u64, mask: bool) {
        let rank = self.special.shapes[0].len();
        let (x, y) = (self.bufs[0], self.bufs[1]);
        let rows = self.prod(0, 0..rank - 1);
        let n = self.dims[0][rank - 1];
        let kc = self.iconst(k.min(i64::MAX as u64) as i64);
        let keep = self.b.ins().umin(kc, n);
        self.counted(None, rows, 1, &mut |g, r| {
            let start = g.b.ins().imul(r, n);
            let (row, out) = (g.addr(x, start), g.addr(y, start));
            g.counted(None, n, 1, &mut |g, i| {
                let a = g.addr(row, i);
                let xi = g.b.ins().load(types::F32, input_flags(), a, 0);
                let count = g.b.declare_var(g.ptr);
                let zero = g.iconst(0);
                g.b.def_var(count, zero);
                let (number, nan, done) = (g.b.create_block(), g.b.create_block(), g.b.create_block());
                let is_nan = g.b.ins().fcmp(FloatCC::Unordered, xi, xi);
                g.b.ins().brif(is_nan, nan, &[], number, &[]);
                // A number is beaten by every NaN and every larger entry, and by equal ones
                // before it.
                g.b.switch_to_block(number);
                let after = g.b.ins().iadd_imm_s(i, 1);
                g.scan(row, zero, i, Beats::AtLeast(xi), count, keep);
                g.scan(row, after, n, Beats::Above(xi), count, keep);
                g.b.ins().jump(done, &[]);
                // A NaN only by the NaNs before it.
                g.b.switch_to_block(nan);
                g.scan(row, zero, i, Beats::Nan, count, keep);
                g.b.ins().jump(done, &[]);
                g.b.switch_to_block(done);
                let c = g.b.use_var(count);
                let kept = g.b.ins().icmp(IntCC::UnsignedLessThan, c, keep);
                let value = if mask { g.b.ins().f32const(1.0) } else { xi };
                let none = g.b.ins().f32const(0.0);
                let v = g.b.ins().select(kept, value, none);
                let a = g.addr(out, i);
                g.b.ins().store(output_flags(), v, a, 0);
            });
        });
    }

    /// Adds to `count` the entries of `row` in `lo..hi` that satisfy `beats`, four at a time then
    /// one at a time, stopping once `count` reaches `limit`.
    fn scan(
        &mut self,
        row: Value,
        lo: Value,
        hi: Value,
        beats: Beats,
        count: cranelift_frontend::Variable,
        limit: Value,
    ) {
        let j = self.b.declare_var(self.ptr);
        self.b.def_var(j, lo);
        let splat = match beats {
            Beats::AtLeast(x) | Beats::Above(x) => Some(self.b.ins().splat(types::F32X4, x)),
            Beats::Nan => None,
        };
        if self.vectorize {
            let (header, body, exit) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
            self.b.ins().jump(header, &[]);
            self.b.switch_to_block(header);
            let at = self.b.use_var(j);
            let next = self.b.ins().iadd_imm_s(at, LANES);
            let room = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, next, hi);
            let c = self.b.use_var(count);
            let open = self.b.ins().icmp(IntCC::UnsignedLessThan, c, limit);
            let more = self.b.ins().band(room, open);
            self.b.ins().brif(more, body, &[], exit, &[]);
            self.b.switch_to_block(body);
            let a = self.addr(row, at);
            let v = self.b.ins().load(types::F32X4, input_flags(), a, 0);
            let m = self.beats(beats, v, splat);
            let bits = self.b.ins().vhigh_bits(types::I32, m);
            let ones = self.b.ins().popcnt(bits);
            let ones = self.b.ins().uextend(self.ptr, ones);
            let c = self.b.ins().iadd(c, ones);
            self.b.def_var(count, c);
            self.b.def_var(j, next);
            self.b.ins().jump(header, &[]);
            self.b.switch_to_block(exit);
        }
        let (header, body, exit) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(header);
        let at = self.b.use_var(j);
        let room = self.b.ins().icmp(IntCC::UnsignedLessThan, at, hi);
        let c = self.b.use_var(count);
        let open = self.b.ins().icmp(IntCC::UnsignedLessThan, c, limit);
        let more = self.b.ins().band(room, open);
        self.b.ins().brif(more, body, &[], exit, &[]);
        self.b.switch_to_block(body);
        let a = self.addr(row, at);
        let v = self.b.ins().load(types::F32, input_flags(), a, 0);
        let m = self.beats(beats, v, None);
        let one = self.b.ins().uextend(self.ptr, m);
        let c = self.b.ins().iadd(c, one);
        self.b.def_var(count, c);
        let next = self.b.ins().iadd_imm_s(at, 1);
        self.b.def_var(j, next);
        self.b.ins().jump(header, &[]);
        self.b.switch_to_block(exit);
    }

    /// Whether `v` (`f32` or `f32x4`, with `splat` the compared value on four lanes) beats: a
    /// mask (`i32x4`) or a flag (`i8`, 0 or 1).
    fn beats(&mut self, beats: Beats, v: Value, splat: Option<Value>) -> Value {
        match beats {
            // x is no NaN: v ≥ x or v NaN, v > x or v NaN.
            Beats::AtLeast(x) => self.b.ins().fcmp(FloatCC::UnorderedOrGreaterThanOrEqual, v, splat.unwrap_or(x)),
            Beats::Above(x) => self.b.ins().fcmp(FloatCC::UnorderedOrGreaterThan, v, splat.unwrap_or(x)),
            Beats::Nan => self.b.ins().fcmp(FloatCC::Unordered, v, v),
        }
    }
}

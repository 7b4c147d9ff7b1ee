//! Cranelift IR for one elementwise fusion group: a loop nest over the group's collapsed
//! iteration space ([`Plan`]) whose innermost loop runs four lanes at a time (`f32x4`) and then a
//! scalar tail, computing every member in registers and storing the group's outputs.
//!
//! # Calling convention
//!
//! `extern "C" fn(bufs: *const *mut f32, dims: *const usize)`, the platform's C convention:
//! - `bufs[i]` for `i < inputs.len()` is the buffer of `FusionGroup::inputs[i]`, dense and
//!   row-major in the input's own shape (broadcast happens in the kernel). The pointer of a
//!   `Const` input is never read (the constant is an immediate); it may be null.
//! - `bufs[inputs.len() + o]` is the buffer of `FusionGroup::outputs[o]`: the group's space for a
//!   member, the reduced shape for the epilogue. Every output is fully written.
//! - `dims[k]` is the run-time size of axis `k` of the group's space (all axes; the kernel reads
//!   the symbolic ones and axis 0, and takes the other known ones as immediates). Unused for a
//!   scalar space. A caller may run a kernel on rows `a..b` of axis 0 alone by passing
//!   `dims[0] = b − a` and every buffer that varies along axis 0 advanced to row `a`
//!   ([`super::ElementwiseKernel::row_stride`]).
//! - Buffers are `f32`, need no alignment beyond `f32`'s, and outputs must not overlap inputs or
//!   each other (inputs are loaded `readonly`), with one exception: an output computed from an
//!   input of the space's own shape may be that input's very buffer (an update written in place,
//!   `kernel::plan_with_updates`): each element is loaded in the iteration that stores over it,
//!   and the store depends on the load.
//!
//! # Loops
//!
//! For collapsed axes `0..q`, the outer `q − 1` are plain counted loops that advance each
//! operand's offset by its stride (0 along an axis it is broadcast on). The innermost axis is
//! contiguous (stride 1) or broadcast (stride 0) for every operand, so it always vectorizes: an
//! operand contiguous there is loaded as `f32x4`, one broadcast there is loaded once per row and
//! `splat`; scalars are loaded (constants materialized) once before the loops. A reduction
//! epilogue accumulates into its output, which is first filled with the identity (0, or −∞ for
//! max): in memory when the output varies along the inner axis, else in registers per row (four
//! `f32x4` accumulators over an unrolled loop of 16 elements, so the adds do not wait on each
//! other, then one `f32x4` and a scalar), combined pairwise and added to memory at the end of the
//! row; `mean` divides at the end.
//!
//! The body itself, every member at one element or four, is written by `body.rs`.

use super::body::{contractions, Lanes};
use super::libm::Libm;
use super::plan::{Access, Plan};
use super::Options;
use crate::check::types::Dim;
use crate::ir::op::ReduceOp;
use crate::ir::{Graph, NodeId};
use crate::passes::fusion::FusionGroup;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, AbiParam, FuncRef, Function, InstBuilder, MemFlagsData, Signature, Type, Value};
use cranelift_frontend::FunctionBuilder;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// Four `f32` lanes, the widest vector Cranelift 0.135 lowers on x86-64 (see shared/CPU.md).
pub(super) const LANES: i64 = 4;

/// Vector accumulators of a reduction into one cell (the latency of `fadd` over its throughput).
const UNROLL: i64 = 4;

/// The kernel's signature: `(bufs: *const *mut f32, dims: *const usize)`, no result.
pub fn signature(ptr: Type, call_conv: cranelift_codegen::isa::CallConv) -> Signature {
    let mut sig = Signature::new(call_conv);
    sig.params.push(AbiParam::new(ptr));
    sig.params.push(AbiParam::new(ptr));
    sig
}

/// Builds, with `b`, the body of its function (whose signature is [`signature`]) for `grp`, whose
/// plan is `plan`. `import` declares a scalar function in the function being built and returns
/// its reference (called at most once per function and scalar function).
pub fn build(
    b: FunctionBuilder<'_>,
    g: &Graph,
    grp: &FusionGroup,
    plan: &Plan,
    opts: &Options,
    config: cranelift_codegen::isa::TargetFrontendConfig,
    import: &mut dyn FnMut(Libm, &mut Function) -> FuncRef,
) {
    let ptr = config.pointer_type();
    let input_index = grp.inputs.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let contract = contractions(g, grp, opts);
    let mut e = Emitter { b, g, grp, plan, opts, ptr, import, imported: HashMap::default(), input_index, contract };
    e.function();
    let Emitter { mut b, .. } = e;
    b.seal_all_blocks();
    b.finalize(config);
}

/// How the loop body gets one input at the current element.
#[derive(Clone, Copy)]
enum Read {
    /// Loaded at `addr + 4·i` (contiguous along the inner axis).
    At(Value),
    /// The same value for the whole inner loop: (scalar, splat).
    Fixed(Value, Value),
}

/// Where the epilogue accumulates during one inner loop.
#[derive(Clone, Copy)]
enum Acc {
    /// Element-wise in memory at `addr + 4·i`.
    At(Value),
    /// Into one cell at `addr`, through a vector and a scalar accumulator.
    Cell { addr: Value, vector: cranelift_frontend::Variable, scalar: cranelift_frontend::Variable },
}

pub(super) struct Emitter<'a, 'f> {
    pub(super) b: FunctionBuilder<'f>,
    pub(super) g: &'a Graph,
    pub(super) grp: &'a FusionGroup,
    pub(super) plan: &'a Plan,
    pub(super) opts: &'a Options,
    pub(super) ptr: Type,
    pub(super) import: &'a mut dyn FnMut(Libm, &mut Function) -> FuncRef,
    pub(super) imported: HashMap<Libm, FuncRef>,
    pub(super) input_index: HashMap<NodeId, usize>,
    /// The `mul`s computed inside an `fma` with their user.
    pub(super) contract: HashSet<NodeId>,
}

/// Per-operand element offsets at the current point of the loop nest.
#[derive(Clone)]
struct Offsets {
    inputs: Vec<Option<Value>>,
    outputs: Value,
    acc: Option<Value>,
}

fn input_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap().with_readonly()
}

fn output_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

impl Emitter<'_, '_> {
    fn function(&mut self) {
        let plan = self.plan;
        let entry = self.b.create_block();
        self.b.append_block_params_for_function_params(entry);
        self.b.switch_to_block(entry);
        let (bufs, dims) = (self.b.block_params(entry)[0], self.b.block_params(entry)[1]);
        let table = MemFlagsData::trusted().with_readonly();
        let word = self.ptr.bytes() as i32;
        let n_in = self.grp.inputs.len();

        // Extents of the collapsed axes, and each one's stride in the dense space.
        let extents: Vec<Value> = plan.axes.iter().map(|axis| self.extent(axis, dims)).collect();
        let q = extents.len();
        let strides = |vary: &[bool], em: &mut Self| -> Vec<Option<Value>> {
            let mut out = vec![None; q];
            let mut s: Option<Value> = None;
            for j in (0..q).rev() {
                if vary[j] {
                    out[j] = Some(s.unwrap_or_else(|| em.b.ins().iconst(em.ptr, 1)));
                    s = Some(match s {
                        Some(s) => em.b.ins().imul(s, extents[j]),
                        None => extents[j],
                    });
                }
            }
            out
        };

        // Inputs: pointers, strides; scalars and constants once, here.
        let mut reads: Vec<Option<Read>> = vec![None; n_in];
        let mut in_ptrs = vec![None; n_in];
        let mut in_strides = vec![vec![None; q]; n_in];
        for (i, access) in plan.inputs.iter().enumerate() {
            match access {
                Access::Const(c) => {
                    let s = self.b.ins().f32const(*c as f32);
                    let v = self.b.ins().splat(types::F32X4, s);
                    reads[i] = Some(Read::Fixed(s, v));
                }
                Access::Strided { vary } => {
                    let p = self.b.ins().load(self.ptr, table, bufs, word * i as i32);
                    if vary.iter().any(|v| *v) {
                        in_ptrs[i] = Some(p);
                        in_strides[i] = strides(vary, self);
                    } else {
                        let s = self.b.ins().load(types::F32, input_flags(), p, 0);
                        let v = self.b.ins().splat(types::F32X4, s);
                        reads[i] = Some(Read::Fixed(s, v));
                    }
                }
            }
        }
        let all = vec![true; q];
        let out_strides = strides(&all, self);
        let out_ptrs: Vec<Value> = (0..self.grp.outputs.len())
            .map(|o| self.b.ins().load(self.ptr, table, bufs, word * (n_in + o) as i32))
            .collect();

        // The epilogue's output, filled with the identity.
        let mut acc = None;
        if let Some(ep) = &plan.epilogue {
            let slot = self.grp.outputs.iter().position(|o| *o == ep.node).expect("the epilogue is an output");
            let len = self.product(&extents, &ep.vary, true);
            let identity = identity(ep.f);
            let p = out_ptrs[slot];
            self.counted_loop(None, len, 1, &mut |em, i| {
                let v = em.b.ins().f32const(identity);
                let a = em.addr(p, i);
                em.b.ins().store(output_flags(), v, a, 0);
            });
            acc = Some((p, strides(&ep.vary, self)));
        }

        let zero = self.b.ins().iconst(self.ptr, 0);
        let offsets = Offsets {
            inputs: in_ptrs.iter().map(|p| p.map(|_| zero)).collect(),
            outputs: zero,
            acc: acc.as_ref().map(|_| zero),
        };
        let ctx = Nest {
            extents: &extents,
            in_ptrs: &in_ptrs,
            in_strides: &in_strides,
            reads: &reads,
            out_ptrs: &out_ptrs,
            out_strides: &out_strides,
            acc: acc.as_ref(),
        };
        self.nest(&ctx, 0, offsets);

        if let Some(ep) = &plan.epilogue {
            if ep.f == ReduceOp::Mean {
                let (p, _) = acc.expect("set above");
                let len = self.product(&extents, &ep.vary, true);
                let n = self.product(&extents, &ep.vary, false);
                let n = self.b.ins().fcvt_from_uint(types::F32, n);
                self.counted_loop(None, len, 1, &mut |em, i| {
                    let a = em.addr(p, i);
                    let s = em.b.ins().load(types::F32, output_flags(), a, 0);
                    let m = em.b.ins().fdiv(s, n);
                    em.b.ins().store(output_flags(), m, a, 0);
                });
            }
        }
        self.b.ins().return_(&[]);
    }

    /// The run-time extent of a collapsed axis: known sizes as immediates, symbolic ones read
    /// from `dims`.
    fn extent(&mut self, axis: &[usize], dims: Value) -> Value {
        let mut known = 1i64;
        let mut acc: Option<Value> = None;
        for &k in axis {
            match self.plan.shape[k] {
                // Axis 0 is read even when known: the executor splits it between threads.
                Dim::Known(n) if k != 0 => known *= n as i64,
                _ => {
                    let flags = MemFlagsData::trusted().with_readonly();
                    let v = self.b.ins().load(self.ptr, flags, dims, (k * self.ptr.bytes() as usize) as i32);
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
            None => self.b.ins().iconst(self.ptr, known),
        }
    }

    /// The product of the extents where `vary[j] == which`.
    fn product(&mut self, extents: &[Value], vary: &[bool], which: bool) -> Value {
        let mut p = self.b.ins().iconst(self.ptr, 1);
        for (e, v) in extents.iter().zip(vary) {
            if *v == which {
                p = self.b.ins().imul(p, *e);
            }
        }
        p
    }

    /// `base + 4·i`.
    fn addr(&mut self, base: Value, i: Value) -> Value {
        let bytes = self.b.ins().ishl_imm_s(i, 2);
        self.b.ins().iadd(base, bytes)
    }

    /// `for (i = start; i < end; i += step) body(i)`; `start` is 0 when `None`.
    fn counted_loop(&mut self, start: Option<Value>, end: Value, step: i64, body: &mut dyn FnMut(&mut Self, Value)) {
        let var = self.b.declare_var(self.ptr);
        let start = start.unwrap_or_else(|| self.b.ins().iconst(self.ptr, 0));
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

    /// Level `j` of the loop nest: an outer axis advances the offsets and recurses; the inner
    /// axis runs the body.
    fn nest(&mut self, ctx: &Nest<'_>, j: usize, offs: Offsets) {
        let q = ctx.extents.len();
        if j + 1 == q {
            return self.inner(ctx, offs);
        }
        self.counted_loop(None, ctx.extents[j], 1, &mut |em, i| {
            let step = |em: &mut Self, base: Value, stride: Option<Value>| match stride {
                Some(s) => {
                    let d = em.b.ins().imul(i, s);
                    em.b.ins().iadd(base, d)
                }
                None => base,
            };
            let inputs =
                offs.inputs.iter().enumerate().map(|(n, o)| o.map(|o| step(em, o, ctx.in_strides[n][j]))).collect();
            let outputs = step(em, offs.outputs, ctx.out_strides[j]);
            let acc = offs.acc.map(|o| step(em, o, ctx.acc.expect("an epilogue").1[j]));
            em.nest(ctx, j + 1, Offsets { inputs, outputs, acc });
        });
    }

    /// The innermost loop: `f32x4` iterations over the first `n & !3` elements, then a scalar
    /// tail.
    fn inner(&mut self, ctx: &Nest<'_>, offs: Offsets) {
        let q = ctx.extents.len();
        let n = ctx.extents[q - 1];
        let mut reads = ctx.reads.to_vec();
        for (i, o) in offs.inputs.iter().enumerate() {
            let (Some(o), Some(p)) = (o, ctx.in_ptrs[i]) else { continue };
            let a = self.addr(p, *o);
            reads[i] = Some(if ctx.in_strides[i][q - 1].is_some() {
                Read::At(a)
            } else {
                let s = self.b.ins().load(types::F32, input_flags(), a, 0);
                let v = self.b.ins().splat(types::F32X4, s);
                Read::Fixed(s, v)
            });
        }
        let reads: Vec<Read> = reads.into_iter().map(|r| r.expect("every input is read")).collect();
        let outs: Vec<Value> = ctx.out_ptrs.iter().map(|p| self.addr(*p, offs.outputs)).collect();
        // A row reduced into one cell also gets `UNROLL - 1` more vector accumulators: the
        // unrolled loop below adds into independent registers instead of one dependency chain.
        let mut more = Vec::new();
        let acc = match (ctx.acc, offs.acc) {
            (Some((p, strides)), Some(o)) => {
                let a = self.addr(*p, o);
                Some(if strides[q - 1].is_some() {
                    Acc::At(a)
                } else {
                    let f = self.plan.epilogue.as_ref().expect("an epilogue").f;
                    let id = self.b.ins().f32const(identity(f));
                    let vid = self.b.ins().splat(types::F32X4, id);
                    let (vector, scalar) = (self.b.declare_var(types::F32X4), self.b.declare_var(types::F32));
                    self.b.def_var(vector, vid);
                    self.b.def_var(scalar, id);
                    for _ in 1..UNROLL {
                        let v = self.b.declare_var(types::F32X4);
                        self.b.def_var(v, vid);
                        more.push(v);
                    }
                    Acc::Cell { addr: a, vector, scalar }
                })
            }
            _ => None,
        };
        let mut start = None;
        if self.opts.vectorize {
            let mut start_vector = None;
            if let Some(Acc::Cell { addr, vector, scalar }) = acc {
                let f = self.plan.epilogue.as_ref().expect("an epilogue").f;
                let nu = self.b.ins().band_imm_s(n, !(UNROLL * LANES - 1));
                self.counted_loop(None, nu, UNROLL * LANES, &mut |em, i| {
                    for (u, var) in std::iter::once(vector).chain(more.iter().copied()).enumerate() {
                        let at = if u == 0 { i } else { em.b.ins().iadd_imm_s(i, u as i64 * LANES) };
                        em.body(Lanes::Vector, at, &reads, &outs, Some(Acc::Cell { addr, vector: var, scalar }));
                    }
                });
                // Pairwise into the first accumulator, which the loop below goes on with.
                let mut vs: Vec<Value> =
                    std::iter::once(vector).chain(more.iter().copied()).map(|v| self.b.use_var(v)).collect();
                while vs.len() > 1 {
                    vs = vs.chunks(2).map(|c| if c.len() == 2 { self.combine(f, c[0], c[1]) } else { c[0] }).collect();
                }
                self.b.def_var(vector, vs[0]);
                start_vector = Some(nu);
            }
            let nv = self.b.ins().band_imm_s(n, !(LANES - 1));
            self.counted_loop(start_vector, nv, LANES, &mut |em, i| em.body(Lanes::Vector, i, &reads, &outs, acc));
            start = Some(nv);
        }
        self.counted_loop(start, n, 1, &mut |em, i| em.body(Lanes::Scalar, i, &reads, &outs, acc));
        if let Some(Acc::Cell { addr, vector, scalar }) = acc {
            let f = self.plan.epilogue.as_ref().expect("an epilogue").f;
            let v = self.b.use_var(vector);
            let l: Vec<Value> = (0..LANES as u8).map(|k| self.b.ins().extractlane(v, k)).collect();
            let lo = self.combine(f, l[0], l[1]);
            let hi = self.combine(f, l[2], l[3]);
            let all = self.combine(f, lo, hi);
            let s = self.b.use_var(scalar);
            let total = self.combine(f, all, s);
            let old = self.b.ins().load(types::F32, output_flags(), addr, 0);
            let new = self.combine(f, old, total);
            self.b.ins().store(output_flags(), new, addr, 0);
        }
    }

    /// One iteration of the inner loop: every member at element(s) `i`, outputs stored.
    fn body(&mut self, lanes: Lanes, i: Value, reads: &[Read], outs: &[Value], acc: Option<Acc>) {
        let bytes = self.b.ins().ishl_imm_s(i, 2);
        let inputs: Vec<Value> = reads
            .iter()
            .map(|r| match (r, lanes) {
                (Read::At(a), _) => {
                    let a = self.b.ins().iadd(*a, bytes);
                    self.b.ins().load(lanes.ty(), input_flags(), a, 0)
                }
                (Read::Fixed(s, _), Lanes::Scalar) => *s,
                (Read::Fixed(_, v), Lanes::Vector) => *v,
            })
            .collect();
        let values = self.members(lanes, &inputs);
        for (o, node) in self.grp.outputs.iter().enumerate() {
            if Some(*node) == self.grp.epilogue {
                continue;
            }
            let a = self.b.ins().iadd(outs[o], bytes);
            self.b.ins().store(output_flags(), values[node], a, 0);
        }
        let plan = self.plan;
        if let (Some(acc), Some(ep)) = (acc, &plan.epilogue) {
            // A standalone reduction accumulates an input.
            let v = values.get(&ep.operand).copied().unwrap_or_else(|| inputs[self.input_index[&ep.operand]]);
            match acc {
                Acc::At(base) => {
                    let a = self.b.ins().iadd(base, bytes);
                    let old = self.b.ins().load(lanes.ty(), output_flags(), a, 0);
                    let new = self.combine(ep.f, old, v);
                    self.b.ins().store(output_flags(), new, a, 0);
                }
                Acc::Cell { vector, scalar, .. } => {
                    let var = if lanes == Lanes::Vector { vector } else { scalar };
                    let old = self.b.use_var(var);
                    let new = self.combine(ep.f, old, v);
                    self.b.def_var(var, new);
                }
            }
        }
    }

    /// The epilogue's accumulation step.
    fn combine(&mut self, f: ReduceOp, a: Value, b: Value) -> Value {
        match f {
            ReduceOp::Sum | ReduceOp::Mean => self.b.ins().fadd(a, b),
            ReduceOp::Max => self.b.ins().fmax(a, b),
        }
    }
}

/// What the loop nest reads at every level.
struct Nest<'a> {
    extents: &'a [Value],
    in_ptrs: &'a [Option<Value>],
    in_strides: &'a [Vec<Option<Value>>],
    reads: &'a [Option<Read>],
    out_ptrs: &'a [Value],
    out_strides: &'a [Option<Value>],
    acc: Option<&'a (Value, Vec<Option<Value>>)>,
}

fn identity(f: ReduceOp) -> f32 {
    match f {
        ReduceOp::Sum | ReduceOp::Mean => 0.0,
        ReduceOp::Max => f32::NEG_INFINITY,
    }
}

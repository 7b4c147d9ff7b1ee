//! The JIT driver: makes a Cranelift JIT module for the host (its native ISA flags, so `fma` and
//! AVX encodings where the CPU has them), registers the scalar functions of [`super::libm`] as
//! symbols, declares and defines one function per group, finalizes, and fetches the pointers.
//! Also prints a group's CLIF, headed with the nodes and source lines it computes.

use super::elementwise;
use super::libm::Libm;
use super::plan::{Access, Plan};
use super::{BackendError, Options};
use crate::check::types::ShowDim;
use crate::ir::op::ReduceOp;
use crate::ir::{Graph, NodeId};
use crate::passes::fusion::FusionGroup;
use crate::source::SourceMap;
use cranelift_codegen::ir::{types, AbiParam, UserFuncName};
use cranelift_codegen::Context;
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};
use rustc_hash::FxHashMap as HashMap;
use std::fmt::Write;

/// The compiled entry point (see `elementwise.rs` for the calling convention).
type Entry = unsafe extern "C" fn(*const *mut f32, *const usize);

/// Groups compiled into one JIT module. The code lives as long as this value; kernels are lent
/// out by reference, so none outlives it.
pub struct Compiled {
    module: Option<JITModule>,
    kernels: Vec<ElementwiseKernel>,
}

impl Compiled {
    /// One kernel per group given to [`compile`], in that order.
    pub fn kernels(&self) -> &[ElementwiseKernel] {
        &self.kernels
    }
}

impl Drop for Compiled {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the only pointers into the module's memory are the kernels' entries, which
            // are dropped with `self` and were never lent beyond `&self`.
            unsafe { m.free_memory() }
        }
    }
}

/// One compiled elementwise group.
pub struct ElementwiseKernel {
    entry: Entry,
    plan: Plan,
    inputs: Vec<NodeId>,
    outputs: Vec<NodeId>,
}

impl ElementwiseKernel {
    /// The group's inputs, in buffer order.
    pub fn inputs(&self) -> &[NodeId] {
        &self.inputs
    }

    /// The group's outputs, in buffer order after the inputs.
    pub fn outputs(&self) -> &[NodeId] {
        &self.outputs
    }

    /// The number of elements output `o` holds when the space has sizes `dims`.
    pub fn output_len(&self, o: usize, dims: &[usize]) -> usize {
        match &self.plan.epilogue {
            Some(e) if e.node == self.outputs[o] => self.plan.epilogue_len(dims),
            _ => Plan::space_len(dims),
        }
    }

    /// Whether rows of axis 0 may run as separate calls (see the calling convention in
    /// `elementwise.rs`): the space has an axis 0 and no reduction sums over it.
    pub fn splits_rows(&self) -> bool {
        !self.plan.shape.is_empty() && self.plan.epilogue.as_ref().is_none_or(|e| !e.axes.contains(&0))
    }

    /// Of a kernel whose reduction runs over axis 0 (a sum or max; not a mean, which divides by
    /// its count): the index in `outputs` of the reduction's output, and the reduction. Bands of
    /// rows may then each reduce into a buffer of their own, combined afterwards in band order.
    pub fn partial_reduction(&self) -> Option<(usize, ReduceOp)> {
        let e = self.plan.epilogue.as_ref()?;
        if !e.axes.contains(&0) || e.f == ReduceOp::Mean {
            return None;
        }
        Some((self.outputs.iter().position(|o| *o == e.node)?, e.f))
    }

    /// How many elements buffer `b` (the inputs, then the outputs, in calling order) advances per
    /// row of axis 0 when the space has sizes `dims`; 0 when it does not vary along axis 0.
    pub fn row_stride(&self, b: usize, dims: &[usize]) -> usize {
        let inner =
            |keep: &dyn Fn(usize) -> bool| -> usize { (1..dims.len()).filter(|k| keep(*k)).map(|k| dims[k]).product() };
        if let Some(access) = self.plan.inputs.get(b) {
            let vary = &self.plan.input_vary[b];
            return match access {
                Access::Strided { .. } if vary.first() == Some(&true) => inner(&|k| vary[k]),
                _ => 0,
            };
        }
        match &self.plan.epilogue {
            Some(e) if e.node == self.outputs[b - self.inputs.len()] => {
                if e.axes.contains(&0) {
                    0
                } else {
                    inner(&|k| !e.axes.contains(&k))
                }
            }
            _ => inner(&|_| true),
        }
    }

    /// The number of elements input `i` holds (0 for an embedded constant).
    pub fn input_len(&self, i: usize, dims: &[usize]) -> usize {
        match self.plan.inputs[i] {
            Access::Const(_) => 0,
            Access::Strided { .. } => self.plan.input_len(i, dims),
        }
    }

    /// Runs the kernel on the space of sizes `dims` (one per axis of the group's shape), with one
    /// slice per input (an embedded constant's may be empty) and one per output, each dense and
    /// row-major in its own shape. Lengths are checked first.
    pub fn run(&self, dims: &[usize], inputs: &[&[f32]], outputs: &mut [&mut [f32]]) -> Result<(), BackendError> {
        self.plan.check_dims(dims).map_err(BackendError::Run)?;
        if inputs.len() != self.inputs.len() || outputs.len() != self.outputs.len() {
            return Err(BackendError::Run(format!(
                "{} inputs and {} outputs given, the kernel has {} and {}",
                inputs.len(),
                outputs.len(),
                self.inputs.len(),
                self.outputs.len()
            )));
        }
        for (i, x) in inputs.iter().enumerate() {
            let want = self.input_len(i, dims);
            if !matches!(self.plan.inputs[i], Access::Const(_)) && x.len() != want {
                return Err(BackendError::Run(format!("input {i} has {} values, needs {want}", x.len())));
            }
        }
        for (o, y) in outputs.iter().enumerate() {
            let want = self.output_len(o, dims);
            if y.len() != want {
                return Err(BackendError::Run(format!("output {o} has {} values, needs {want}", y.len())));
            }
        }
        let mut bufs: Vec<*mut f32> = inputs.iter().map(|x| x.as_ptr() as *mut f32).collect();
        bufs.extend(outputs.iter_mut().map(|y| y.as_mut_ptr()));
        // SAFETY: every buffer has the length the kernel indexes (checked above); inputs are only
        // read; outputs are distinct `&mut` slices, so they overlap nothing.
        unsafe { (self.entry)(bufs.as_ptr(), dims.as_ptr()) };
        Ok(())
    }

    /// Calls the kernel on raw buffers, as the calling convention in `elementwise.rs` says.
    ///
    /// # Safety
    /// `bufs` holds one valid pointer per input and output, each to as many `f32`s as the
    /// kernel reads or writes for `dims`; outputs overlap nothing.
    pub unsafe fn call(&self, bufs: *const *mut f32, dims: *const usize) {
        (self.entry)(bufs, dims)
    }
}

/// A JIT module with the scalar functions registered and declared.
struct Jit {
    module: JITModule,
    ctx: Context,
    fctx: FunctionBuilderContext,
    libm: HashMap<Libm, FuncId>,
}

impl Jit {
    fn new() -> Result<Jit, BackendError> {
        let mut builder = JITBuilder::with_flags(&[("opt_level", "speed")], default_libcall_names())
            .map_err(|e| BackendError::Codegen(e.to_string()))?;
        for f in Libm::ALL {
            builder.symbol(f.name(), f.address());
        }
        let mut module = JITModule::new(builder);
        let mut libm = HashMap::default();
        for f in Libm::ALL {
            let mut sig = module.make_signature();
            for _ in 0..f.arity() {
                sig.params.push(AbiParam::new(types::F32));
            }
            sig.returns.push(AbiParam::new(types::F32));
            let id = module.declare_function(f.name(), Linkage::Import, &sig).map_err(codegen)?;
            libm.insert(f, id);
        }
        let ctx = module.make_context();
        Ok(Jit { module, ctx, fctx: FunctionBuilderContext::new(), libm })
    }

    /// Builds the body of a group's function into `self.ctx` (not yet declared nor defined).
    fn build(&mut self, g: &Graph, grp: &FusionGroup, opts: &Options) -> Result<Plan, BackendError> {
        let plan = Plan::new(g, grp).map_err(BackendError::Unsupported)?;
        let config = self.module.target_config();
        let sig = elementwise::signature(config.pointer_type(), config.default_call_conv);
        self.module.clear_context(&mut self.ctx);
        self.ctx.func.signature = sig;
        self.ctx.func.name = UserFuncName::user(0, 0);
        let (module, libm) = (&mut self.module, &self.libm);
        let mut import =
            |f: Libm, func: &mut cranelift_codegen::ir::Function| module.declare_func_in_func(libm[&f], func);
        let b = cranelift_frontend::FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
        elementwise::build(b, g, grp, &plan, opts, config, &mut import);
        Ok(plan)
    }
}

/// A generated function as a map key: its body and the external functions it imports.
#[derive(PartialEq, Hash)]
struct FunctionKey(cranelift_codegen::ir::function::FunctionStencil, Vec<cranelift_codegen::ir::UserExternalName>);

// The stencil's equality is structural and reflexive (constants compare by their bits).
impl Eq for FunctionKey {}

impl FunctionKey {
    fn of(f: &cranelift_codegen::ir::Function) -> Self {
        FunctionKey(f.stencil.clone(), f.params.user_named_funcs().values().cloned().collect())
    }
}

fn codegen(e: impl std::fmt::Debug) -> BackendError {
    BackendError::Codegen(format!("{e:?}"))
}

/// Compiles every group into one JIT module. Fails on the first group the backend does not
/// support ([`supports`] says which beforehand).
pub fn compile(g: &Graph, groups: &[&FusionGroup], opts: &Options) -> Result<Compiled, BackendError> {
    let mut jit = Jit::new()?;
    let mut defined = Vec::new();
    // Groups whose generated code is the same (the pieces of an unrolled chain) share one
    // function: the key is the function itself, which is all that Cranelift compiles (its body
    // and the functions it calls; compared as values, not as printed text, which cost more
    // than building it).
    let mut by_code: HashMap<FunctionKey, FuncId> = HashMap::default();
    for (index, grp) in groups.iter().enumerate() {
        let plan = jit.build(g, grp, opts)?;
        let code = FunctionKey::of(&jit.ctx.func);
        let id = match by_code.get(&code) {
            Some(id) => *id,
            None => {
                let sig = jit.ctx.func.signature.clone();
                let id = jit
                    .module
                    .declare_function(&format!("circ_group_{index}"), Linkage::Local, &sig)
                    .map_err(codegen)?;
                jit.ctx.func.name = UserFuncName::user(0, id.as_u32());
                jit.module.define_function(id, &mut jit.ctx).map_err(|e| match e {
                    cranelift_module::ModuleError::Compilation(c) => {
                        BackendError::Codegen(cranelift_codegen::print_errors::pretty_error(&jit.ctx.func, c))
                    }
                    e => codegen(e),
                })?;
                by_code.insert(code, id);
                id
            }
        };
        defined.push((id, plan, grp.inputs.clone(), grp.outputs.clone()));
    }
    COMPILED_FUNCTIONS.with(|c| c.set(c.get() + by_code.len()));
    jit.module.finalize_definitions().map_err(codegen)?;
    let kernels = defined
        .into_iter()
        .map(|(id, plan, inputs, outputs)| {
            let code = jit.module.get_finalized_function(id);
            // SAFETY: the function was defined with `elementwise::signature`, the C convention
            // of the host, which is `Entry`.
            let entry = unsafe { std::mem::transmute::<*const u8, Entry>(code) };
            ElementwiseKernel { entry, plan, inputs, outputs }
        })
        .collect();
    Ok(Compiled { module: Some(jit.module), kernels })
}

thread_local! {
    static COMPILED_FUNCTIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many distinct functions [`compile`] has handed to Cranelift on this thread (groups with
/// the same code count once): a measure of code-generation work that tests can compare.
pub fn compiled_functions() -> usize {
    COMPILED_FUNCTIONS.with(|c| c.get())
}

/// Compiles one group.
pub fn compile_group(g: &Graph, grp: &FusionGroup, opts: &Options) -> Result<Compiled, BackendError> {
    compile(g, &[grp], opts)
}

/// Whether the backend compiles `grp`, and if not, why.
pub fn supports(g: &Graph, grp: &FusionGroup) -> Result<(), String> {
    Plan::new(g, grp).map(|_| ())
}

/// The CLIF of the group's function, as generated (before Cranelift's optimizations), headed with
/// comments: the group's space, every buffer, and every member with the source line it came from.
pub fn clif_text(
    g: &Graph,
    grp: &FusionGroup,
    sources: Option<&SourceMap>,
    opts: &Options,
) -> Result<String, BackendError> {
    let mut jit = Jit::new()?;
    jit.build(g, grp, opts)?;
    // Named as `compile` names a module's first function.
    let sig = jit.ctx.func.signature.clone();
    let id = jit.module.declare_function("circ_group_0", Linkage::Local, &sig).map_err(codegen)?;
    jit.ctx.func.name = UserFuncName::user(0, id.as_u32());
    let mut out = String::new();
    let shape = |s: &[crate::check::types::Dim]| {
        let dims: Vec<String> = s.iter().map(|d| ShowDim(*d, g).to_string()).collect();
        format!("[{}]", dims.join(", "))
    };
    let _ = writeln!(out, "; elementwise group over {}", shape(&grp.shape));
    for (i, n) in grp.inputs.iter().enumerate() {
        let node = g.node(*n);
        let how = if matches!(node.op, crate::ir::Op::Const(_)) { " (immediate, not read)" } else { "" };
        let _ = writeln!(out, ";   bufs[{i}] = {n} {} {}{how}", crate::ir::print::node_name(g, *n), shape(&node.shape));
    }
    for (o, n) in grp.outputs.iter().enumerate() {
        let _ = writeln!(out, ";   bufs[{}] <- {n} {}", grp.inputs.len() + o, shape(&g.node(*n).shape));
    }
    for n in &grp.nodes {
        let node = g.node(*n);
        let args: Vec<String> = g.operands(*n).iter().map(ToString::to_string).collect();
        let from = match (node.span, sources) {
            (Some(span), Some(src)) => format!("  from {}", crate::ir::print::location_and_line(src, span)),
            _ => String::new(),
        };
        let _ = writeln!(out, "; {n} = {}({}){from}", node.op.name(), args.join(", "));
    }
    let _ = write!(out, "{}", jit.ctx.func.display());
    // SAFETY: nothing was defined, so no pointer into the module's memory exists.
    unsafe { jit.module.free_memory() };
    Ok(out)
}

/// The machine code of the group's function, as Cranelift's lowered instructions after register
/// allocation (what a future `circ emit --asm` prints), on this host's ISA.
pub fn asm_text(g: &Graph, grp: &FusionGroup, opts: &Options) -> Result<String, BackendError> {
    let mut jit = Jit::new()?;
    jit.build(g, grp, opts)?;
    jit.ctx.set_disasm(true);
    let mut control = cranelift_codegen::control::ControlPlane::default();
    let text = match jit.ctx.compile(jit.module.isa(), &mut control) {
        Ok(code) => Ok(code.vcode.clone().unwrap_or_default()),
        Err(e) => Err(BackendError::Codegen(format!("{:?}", e.inner))),
    };
    // SAFETY: nothing was defined, so no pointer into the module's memory exists.
    unsafe { jit.module.free_memory() };
    text
}

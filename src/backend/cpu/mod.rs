//! The Cranelift CPU backend. Today: elementwise fusion groups (with their reduction epilogue),
//! JIT compiled to native code, and [`special`]: logsumexp, copies, one-hot and `kmax`, one node
//! each; see `backend/mod.rs` for what is still missing.
//!
//! Pipeline of one group: [`plan`] reads the group from the graph (iteration space, collapsed
//! axes, how each input broadcasts, the epilogue) → [`elementwise`] writes its Cranelift IR
//! (calling convention documented there; the per-element body in `body.rs`) → [`jit`] compiles it in memory and hands out a
//! callable [`ElementwiseKernel`]; [`clif_text`] prints the IR instead, [`asm_text`] the machine
//! code.
//!
//! ```text
//! let groups = passes::fusion::groups(&g);
//! let code = backend::cpu::compile(&g, &[&groups[0]], &Options::default())?;
//! code.kernels()[0].run(&dims, &[&x, &w, &[]], &mut [&mut y])?;
//! ```
//!
//! Architecture Invariant: generated code computes in `f32` and follows `ir/op.rs` exactly, except
//! where contracting `a·b + c` into one `fma` rounds once instead of twice (off with
//! `Options::fma`), where a reduction epilogue sums in another order than the interpreter, and in
//! `exp log tanh sigmoid softplus`, inline polynomials within 2.4 ulp of the exact result
//! (`math.rs`; the special values exactly as `ir/op.rs` says).

mod body;
pub mod elementwise;
pub mod executor;
pub mod gemm_clif;
pub mod jit;
pub mod libm;
mod math;
pub mod matmul;
pub mod plan;
pub mod special;

pub use jit::{asm_text, clif_text, compile, compile_group, supports, Compiled, ElementwiseKernel};

/// Code generation switches.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Contract a `mul` whose only use is an `add`/`sub` into one `fma`. Default: where the host
    /// has FMA instructions.
    pub fma: bool,
    /// Run the inner loop four lanes at a time (`f32x4`) before the scalar tail. Default: on.
    pub vectorize: bool,
    /// Threads large kernels are split over. Default: [`default_threads`].
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options { fma: host_has_fma(), vectorize: true, threads: default_threads() }
    }
}

/// The thread count [`set_threads`] chose (0: none).
static THREADS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Sets the threads every later executor of this process runs on (`circ --threads N`).
pub fn set_threads(n: usize) {
    THREADS.store(n.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// The threads a run uses: [`set_threads`]'s count, else `CIRC_THREADS` (a positive integer),
/// else every core the process may use: `available_parallelism`, which on Linux is the CPU
/// affinity mask bounded by the cgroup's CPU quota (`cpu.max`, rounded down, at least 1).
pub fn default_threads() -> usize {
    match THREADS.load(std::sync::atomic::Ordering::Relaxed) {
        0 => std::env::var("CIRC_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n >= 1)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        n => n,
    }
}

/// Whether this CPU has fused multiply-add (Cranelift falls back to a library call without it).
pub fn host_has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(target_arch = "aarch64")]
    {
        true
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// Why a group could not be compiled or run.
#[derive(Clone, Debug, PartialEq)]
pub enum BackendError {
    /// The group has a shape or op the backend does not compile yet.
    Unsupported(String),
    /// Cranelift refused the generated code (a bug in the backend).
    Codegen(String),
    /// The buffers or sizes handed to a kernel do not fit it.
    Run(String),
    /// An OpenCL device could not be opened, built for or run on (the driver's message).
    Device(String),
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::Unsupported(m) => write!(f, "not supported by the CPU backend: {m}"),
            BackendError::Codegen(m) => write!(f, "code generation failed: {m}"),
            BackendError::Run(m) => write!(f, "cannot run the kernel: {m}"),
            BackendError::Device(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for BackendError {}

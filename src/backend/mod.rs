//! Compiled backends: code generated from the verified, optimized graph, checked against the
//! reference interpreter (`interp`), which shares no kernel code with them.
//!
//! - [`cpu`]: the Cranelift CPU backend: the whole graph run over the kernel partition
//!   (`cpu::executor`), fused elementwise loops and reductions JIT compiled with `f32x4` and `fma`,
//!   matrix products on the `gemm` crate, logsumexp, copies (transpose, slice, concat, embed),
//!   `one_hot` and `kmax` (keeping few per row) generated one node each (`cpu::special`).
//!   A `kmax` keeping more still runs on the interpreter's f32 kernel inside the executor.
//! - [`runner`]: the one entry point the commands use, whichever backend `--backend` names.
//!
//! Architecture Invariant: a backend reads shapes from the nodes and never re-derives them, and
//! never rewrites the graph it compiles.

pub mod carry;
pub mod cpu;
pub mod opencl;
pub mod runner;

pub use runner::{BackendKind, RunError, Runner};

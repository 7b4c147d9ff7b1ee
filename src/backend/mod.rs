//! Compiled backends: code generated from the verified, optimized graph, checked against the
//! reference interpreter (`interp`), which shares no kernel code with them.
//!
//! What exists today, and what does not yet:
//!
//! - [`cpu`]: the Cranelift CPU backend. It compiles **elementwise fusion groups** (the groups of
//!   `passes::fusion`, with their reduction epilogue: sum, mean or max) to native loops, JIT
//!   compiled in memory, vectorized with `f32x4` and `fma`, and prints their CLIF for inspection.
//! - Not yet: matrix products, standalone reductions and `logsumexp`, movement ops (transpose,
//!   slice, concat, expand, embed), `kmax`, `one_hot`; the buffer plan and the executor that runs
//!   a whole graph kernel after kernel (the backend-neutral kernel partition lives in `kernel`);
//!   work split over threads; `circ emit --target clif`; `--backend cpu` for `circ train`/`run`.
//!   Until then the interpreter is the only way to run a whole graph.
//!
//! Architecture Invariant: a backend reads shapes from the nodes and never re-derives them, and
//! never rewrites the graph it compiles.

pub mod cpu;
pub mod runner;

pub use runner::{BackendKind, RunError, Runner};

//! The OpenCL backend, compiler side: every kernel of the backend-neutral partition
//! (`kernel::partition`) rendered as one OpenCL C 1.2 function (f32), and the executor that hands
//! them, with the buffer plan's offsets and the run's sizes, to the bundled runtime's OpenCL
//! driver (`circ_runtime::opencl`), which knows nothing of graphs.
//!
//! One renderer per kernel kind:
//! - [`elementwise`]: fused elementwise kernels (inputs read through broadcast strides), their
//!   reduction epilogues and standalone sums, means and maxima as work-group tree reductions;
//! - [`matmul`]: tiled, register-blocked products in local memory with their fused epilogue;
//! - [`special`]: logsumexp, one-hot, copies (transpose, slice, embed, concat) and kmax.
//!
//! # The calling convention of every rendered kernel
//!
//! ```c
//! __kernel void NAME(__global float* arena, ulong o0, ulong o1, …, int e0, int e1, …)
//! ```
//! - `arena` is the one device buffer the buffer plan lays out; `o{i}` is the offset, in
//!   elements, of the buffer of [`Rendered::buffers`]`[i]` (a leaf or a kernel output; a view
//!   passes its base's offset). Kernels start with `__global float* b{i} = arena + o{i};`.
//! - `e{j}` is the run-time value of [`Rendered::extents`]`[j]`, a product of sizes of which at
//!   least one is symbolic (`N`); sizes known when the graph is compiled are literals in the
//!   source, so a program is built once per graph, whatever the batch size.
//! - The launch is [`Rendered::launch`]: global sizes rounded up to the local size (PoCL has
//!   no non-uniform work-groups), so every kernel guards its work-items.
//! - Every value is `f32`; integer labels are stored as `f32` (exact below 2²⁴).

pub mod elementwise;
pub mod executor;
pub mod matmul;
pub mod source;
pub mod special;

use crate::check::types::Dim;
use crate::ir::NodeId;

/// A product of sizes: its value at run time multiplies the sizes a binding gives the symbols.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Extent(pub Vec<Dim>);

impl Extent {
    /// The value when every size is known at compile time.
    pub fn known(&self) -> Option<u64> {
        self.0.iter().map(|d| if let Dim::Known(n) = d { Some(*n) } else { None }).product()
    }
}

/// One global size of a launch: `ceil(extent / div) · mul`, then rounded up to the local size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalSize {
    pub extent: Extent,
    pub div: u64,
    pub mul: u64,
}

impl GlobalSize {
    /// `extent` work-items.
    pub fn items(extent: Extent) -> GlobalSize {
        GlobalSize { extent, div: 1, mul: 1 }
    }
}

/// How a kernel is launched: one to three dimensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    pub global: Vec<GlobalSize>,
    pub local: Vec<usize>,
}

/// One kernel of the partition as OpenCL C.
#[derive(Clone, Debug, PartialEq)]
pub struct Rendered {
    /// The kernel function's name, unique in the program.
    pub name: String,
    /// The `__kernel` function (helpers it calls are in [`source::PRELUDE`]).
    pub source: String,
    /// The buffers whose offsets are passed, in order (`o0`, `o1`, …).
    pub buffers: Vec<NodeId>,
    /// The symbolic extents passed as `int`s, in order (`e0`, `e1`, …).
    pub extents: Vec<Extent>,
    pub launch: Launch,
}

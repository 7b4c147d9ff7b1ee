//! The kernel partition and the buffer plan: the backend-neutral first half of every compiled
//! backend. The Cranelift and OpenCL backends render the same kernels into the same buffers; only
//! the rendering differs (STYLE habit 7). Nothing here knows a CPU, a GPU or a vector width.
//!
//! # Kernels
//!
//! A [`Kernel`] is a set of graph nodes a backend computes as one unit of work, reading its
//! inputs from buffers and writing its outputs to buffers. [`partition`] splits a verified graph
//! into kernels, in an order in which they can run one after another:
//!
//! - **Elementwise**: a fusion group of `passes::fusion` (one loop over one iteration space, its
//!   inputs read through broadcast strides), possibly ending in the group's reduction epilogue.
//! - **MatMul**: a matrix product and its epilogue: elementwise ops that follow the product (bias
//!   add, activation, …), applied to each element of the product before anything is written.
//!   They have the product's shape (their other operands may broadcast into it) and read only the
//!   product, each other, and values computed before the kernel. The rule that picks them, a
//!   generalisation of "the chain whose intermediate values have no other users", is in
//!   `partition.rs`.
//! - **Reduce**: a reduction (sum, mean, max) that no group took as its epilogue, or a logsumexp.
//! - **Copy**: data movement into a new buffer: transpose, slice, embed, concat (`expand` is
//!   elementwise: the identity reading its operand through broadcast strides).
//! - **Select**: `kmax` and `kmax_mask`, a selection along the last axis.
//! - **OneHot**: integer labels to one-hot rows.
//!
//! Leaves (`Data`, `Param`, `Input`, `Const`) are no kernel: the host writes them into their own
//! buffers before the run. A `Reshape` is no kernel either but a [`View`]: every stored value is
//! dense and row-major, so a reshape reads the same buffer with another shape. A `transpose` of
//! the last two axes read only by matrix products is a *transposed* view: the products read the
//! operand's buffer with swapped strides (the backward pass of `x @ w` reads `xᵀ` and `wᵀ`).
//!
//! Invariants of a partition of a verified graph (checked by `tests/kernel.rs` on every example,
//! its gradient and its training step):
//! - every non-leaf node is computed by exactly one kernel, or is a view;
//! - a kernel's nodes are in an order where each comes after the nodes of the kernel it reads;
//! - a kernel's inputs are values from outside it: leaves, views, or outputs of earlier kernels
//!   (the kernels are in execution order);
//! - a kernel's outputs are its nodes that a node outside it reads or a graph output names; its
//!   other nodes are internal and need no buffer;
//! - a kernel reads shapes from the nodes and never re-derives them.
//!
//! # Buffers
//!
//! [`plan`] gives every stored value (a leaf or a kernel output; a view shares its base's buffer)
//! a slot of one arena, reusing a slot once the last kernel reading its value has run (and, for
//! the updates a caller names, writing a parameter's new value over it where that is safe), and
//! states the peak memory before anything runs. The rule is written in `buffers.rs`.
//!
//! `describe` prints both, for tests and for `circ emit`.

mod buffers;
mod describe;
mod partition;

pub use buffers::{plan, plan_with_updates, BufferPlan, Slot, Stored, ELEMENT_BYTES, SLOT_ALIGN};
pub use describe::describe;
pub use partition::{partition, Kernel, KernelKind, Partition, View};

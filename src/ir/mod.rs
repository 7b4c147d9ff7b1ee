//! The tensor graph IR that every stage after the checker reads and writes.
//!
//! A [`Graph`] holds nodes (an [`Op`], an element type, a shape of known or symbolic sizes, the
//! source span, a label) connected by ordered operand edges, plus the model's data inputs,
//! parameters (with prior, initialisation and update rule) and named outputs, `outputs[0]` being
//! the scalar total loss. The op semantics are written in `op.rs`.
//!
//! Invariants (checked by [`verify::verify`] after every pass in tests and debug builds):
//! acyclic; every node's operand count matches its op; every node's shape is the one its op and
//! operands imply; no shape contains `Dim::Any`; every node is reachable backwards from an output.

pub mod build;
pub mod cost;
pub mod graph;
pub mod init;
pub mod lower;
pub mod op;
pub mod print;
pub mod shape;
pub mod verify;

pub use graph::{Graph, Node, NodeId, Origin};
pub use op::Op;

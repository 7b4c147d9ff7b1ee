//! The CPU driver of the bundled runtime: the team of threads a run of JIT compiled kernels
//! forks its parallel sections onto. The compiler side (`circ::backend::cpu`) generates the
//! kernels and decides how to split them; this knows nothing of them.

pub mod room;
pub mod team;

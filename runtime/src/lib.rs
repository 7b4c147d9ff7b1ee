//! circ-runtime: what compiled circuits run on. At this stage it holds the dense tensor type that
//! data, parameters and results are exchanged in; executors join it in later stages.

pub mod csv;
pub mod npy;
pub mod safetensors;
mod tensor;

pub use tensor::{Tensor, TensorError};

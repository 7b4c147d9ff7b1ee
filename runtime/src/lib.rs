//! circ-runtime: the file formats models are trained and run on, independent of the compiler:
//! CSV tables, `.npy` arrays and safetensors checkpoints, and the dense tensor type; and the
//! OpenCL driver (`opencl`) that runs the kernels the compiler renders.

pub mod csv;
mod half;
pub mod npy;
pub mod safetensors;
mod tensor;

pub use tensor::{Tensor, TensorError};
pub mod opencl;

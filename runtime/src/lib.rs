//! circ-runtime: the file formats models are trained and run on, independent of the compiler:
//! CSV tables, `.npy` arrays and safetensors checkpoints, and the dense tensor type; how every
//! output file is written ([`output`]) and every input read ([`input`]); and the OpenCL driver
//! ([`opencl`]) that runs the kernels the compiler renders.

pub mod csv;
mod half;
pub mod input;
pub mod npy;
pub mod output;
pub mod safetensors;
mod tensor;

pub use tensor::{Tensor, TensorError};
pub mod cpu;
pub mod opencl;

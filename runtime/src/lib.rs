//! circ-runtime: the file formats models are trained and run on, independent of the compiler:
//! CSV tables, `.npy` arrays and safetensors checkpoints; the closest-name suggestions
//! ([`suggest`]) of the CSV reader and the checker; how every
//! output file is written ([`output`]) and every input read ([`input`]); and the OpenCL driver
//! ([`opencl`]) that runs the kernels the compiler renders.

pub mod cpu;
pub mod csv;
pub mod input;
pub mod npy;
pub mod opencl;
pub mod output;
pub mod safetensors;
pub mod suggest;

//! circ-runtime: what runs a compiled program, knowing nothing of the language or the IR: the
//! CPU thread team ([`cpu`]) and the OpenCL driver ([`opencl`]) that run the kernels the
//! compiler generates and renders; and, in a folder of their own ([`files`]), the file formats
//! models are trained and run on.

pub mod cpu;
pub mod files;
pub mod opencl;

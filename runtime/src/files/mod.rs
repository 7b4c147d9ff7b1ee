//! The file formats models are trained and run on: CSV tables, `.npy` arrays and safetensors
//! checkpoints; how every input file is read ([`input`]) and every output file written
//! ([`output`], atomically); and the closest-name suggestions ([`suggest`]) of the CSV reader
//! and the checker.

pub mod csv;
pub mod input;
pub mod npy;
pub mod output;
pub mod safetensors;
pub mod suggest;

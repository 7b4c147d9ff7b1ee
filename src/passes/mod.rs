//! Graph passes. Each is its own module with `run(&mut Graph) -> bool` ("changed"); each leaves
//! every output's value unchanged, which tests check on the interpreter.

pub mod dce;

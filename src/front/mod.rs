//! Front end: text → tokens → syntax tree, and loading of imported modules.

pub mod ast;
pub mod lexer;
pub mod loader;
pub mod parser;

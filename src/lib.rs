//! circ: a compiler for `.circ` neural circuits with Bayesian priors.
//!
//! The pipeline follows the folder tree: `front` (lexer, parser, imports) → `check` (names,
//! shapes, priors) → later stages. See ARCHITECTURE.md.

pub mod autodiff;
pub mod backend;
pub mod budget;
pub mod check;
pub mod data;
pub mod diagnostic;
pub mod driver;
pub mod error;
pub mod front;
pub mod interp;
pub mod ir;
pub mod kernel;
pub mod lsp;
pub mod passes;
pub mod source;
pub mod train;

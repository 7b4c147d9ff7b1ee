//! The checker: name resolution, shape and type inference with symbolic dimensions, and the
//! validation of priors, likelihoods and optimizer settings. It elaborates every model into a
//! [`checked::CheckedModel`]: circuits inlined, names made hierarchical, every node typed.
//!
//! Circuits are checked twice: once on their own with symbolic arguments (so an unused circuit
//! is still checked, and errors read in the circuit's own terms), then at every instantiation
//! with the real arguments. A diagnostic is reported once per code and place.

pub mod builtins;
pub mod checked;
mod circuit;
mod decl;
mod elaborate;
mod expr;
pub mod index;
mod ops;
pub mod signature;
pub mod suggest;
pub mod types;

use crate::diagnostic::Diagnostic;
use crate::front::loader::Program;
use checked::CheckedModel;

pub struct CheckOutput {
    /// The models of the root file that checked without errors.
    pub models: Vec<CheckedModel>,
    pub diagnostics: Vec<Diagnostic>,
}

impl CheckOutput {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks a loaded program: every circuit of every module, and every model of the root module.
///
/// Elaboration recurses through circuit instances and expressions (both bounded), so it runs on
/// a thread with a stack large enough for the deepest input the limits allow.
pub fn check(program: &Program) -> CheckOutput {
    on_big_stack(|| elaborate::Checker::new(program).run())
}

/// [`check`], keeping for editors where every name is defined and what it holds.
pub fn check_with_index(program: &Program) -> (CheckOutput, index::Index) {
    let (out, index) = on_big_stack(|| elaborate::Checker::with_index(program).run_indexed());
    (out, index.unwrap_or_default())
}

fn on_big_stack<T: Send>(work: impl Fn() -> T + Send + Sync) -> T {
    std::thread::scope(|s| {
        let worker =
            std::thread::Builder::new().name("circ-check".into()).stack_size(CHECK_STACK).spawn_scoped(s, &work);
        match worker {
            Ok(handle) => match handle.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            },
            // No thread to be had: check on this one.
            Err(_) => work(),
        }
    })
}

/// Stack of the checking thread.
const CHECK_STACK: usize = 256 << 20;

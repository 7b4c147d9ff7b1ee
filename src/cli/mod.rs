//! Commands of the `circ` binary that need more than a few lines of printing.

pub mod emit;
pub mod predict;
pub mod train;

/// Writes to stdout, ignoring a closed pipe.
pub fn out(s: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(s.as_bytes());
}

/// Writes to stderr, ignoring errors.
pub fn err(s: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(s.as_bytes());
}

/// `--backend`: what runs the graphs of `circ train` and `circ run`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Backend {
    /// The Cranelift CPU backend: JIT compiled kernels in f32.
    Cpu,
    /// The reference interpreter, in f64.
    Interp,
}

impl Backend {
    pub fn kind(self) -> circ::backend::BackendKind {
        match self {
            Backend::Cpu => circ::backend::BackendKind::Cpu,
            Backend::Interp => circ::backend::BackendKind::Interp,
        }
    }
}

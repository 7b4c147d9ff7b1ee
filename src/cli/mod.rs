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

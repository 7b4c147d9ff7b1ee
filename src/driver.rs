//! The work behind each command, callable from tests and benchmarks (the CLI only prints).

use crate::check::{self, checked::CheckedModel};
use crate::diagnostic::{render_all, Diagnostic};
use crate::front::loader::{self, Program};
use std::path::Path;

/// The result of checking one file: its program (for rendering), diagnostics and models.
pub struct Checked {
    pub program: Program,
    pub diagnostics: Vec<Diagnostic>,
    pub models: Vec<CheckedModel>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// All diagnostics rendered as rustc-style text.
    pub fn render(&self, color: bool) -> String {
        render_all(&self.diagnostics, &self.program.sources, color)
    }

    /// The `--verbose` signature of every model.
    pub fn signatures(&self) -> String {
        self.models.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    }
}

/// Parses, resolves and checks a file from disk. `Err` means it could not be read.
pub fn check_file(path: &Path) -> std::io::Result<Checked> {
    let (program, diags) = loader::load_file(path)?;
    Ok(finish(program, diags))
}

/// Checks source text as if it were a file called `name` (imports resolve against `name`'s folder).
pub fn check_source(name: &str, text: &str) -> Checked {
    let path = Path::new(name);
    let (program, diags) = loader::load_source(name, Some(path.to_path_buf()), text);
    finish(program, diags)
}

fn finish(program: Program, mut diagnostics: Vec<Diagnostic>) -> Checked {
    // Names and shapes are only checked in files that parsed: errors after a syntax error mislead.
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Checked { program, diagnostics, models: Vec::new() };
    }
    let out = check::check(&program);
    diagnostics.extend(out.diagnostics);
    Checked { program, diagnostics, models: out.models }
}

/// Lowers every model of a checked file to the graph IR.
pub fn lower(checked: &Checked, seed: u64) -> Vec<crate::ir::Graph> {
    checked.models.iter().map(|m| crate::ir::lower::lower(m, seed)).collect()
}

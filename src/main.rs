//! The `circ` command line: argument parsing and printing only; the work is in `circ::driver`.

use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "circ", version, about = "Compiler and runtime for .circ neural circuits with Bayesian priors")]
struct Cli {
    /// When to colour diagnostics.
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
    color: Color,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Command {
    /// Parse, resolve names and check shapes, priors and settings of .circ files.
    ///
    /// Exits with 0 when every file is valid, 1 when any has errors, 2 when a file cannot be read.
    Check {
        /// The .circ files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print each model's signature: sizes, data, parameters with shapes and priors.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Print the tensor graph of each model: one node per line, or Graphviz DOT.
    Graph {
        /// The .circ file.
        file: PathBuf,
        /// Print Graphviz DOT instead of text.
        #[arg(long)]
        dot: bool,
        /// Seed of the parameters' initial draws (recorded in the graph).
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    match cli.command {
        Command::Check { files, verbose } => check(&files, verbose, color),
        Command::Graph { file, dot, seed } => graph(&file, dot, seed, color),
    }
}

fn check(files: &[PathBuf], verbose: bool, color: bool) -> ExitCode {
    let mut errors = false;
    let mut unreadable = false;
    for file in files {
        let checked = match circ::driver::check_file(file) {
            Ok(c) => c,
            Err(e) => {
                err(&(format!("error: cannot read {}: {e}", file.display()) + "\n"));
                unreadable = true;
                continue;
            }
        };
        if !checked.diagnostics.is_empty() {
            err(&checked.render(color));
        }
        errors |= checked.has_errors();
        if verbose && !checked.has_errors() {
            out(&(checked.signatures() + "\n"));
        }
        if checked.has_errors() {
            let n = checked.diagnostics.iter().filter(|d| d.is_error()).count();
            err(&(format!("error: {} has {n} error{}", file.display(), if n == 1 { "" } else { "s" }) + "\n"));
        }
    }
    if unreadable {
        ExitCode::from(2)
    } else if errors {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Checks a file for the commands that need a valid model; prints diagnostics.
fn load(file: &PathBuf, color: bool) -> Result<circ::driver::Checked, ExitCode> {
    let checked = circ::driver::check_file(file).map_err(|e| {
        err(&(format!("error: cannot read {}: {e}", file.display()) + "\n"));
        ExitCode::from(2)
    })?;
    if !checked.diagnostics.is_empty() {
        err(&checked.render(color));
    }
    if checked.has_errors() {
        return Err(ExitCode::from(1));
    }
    Ok(checked)
}

fn graph(file: &PathBuf, dot: bool, seed: u64, color: bool) -> ExitCode {
    let checked = match load(file, color) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for (model, g) in checked.models.iter().zip(circ::driver::lower(&checked, seed)) {
        if dot {
            out(&circ::ir::print::dot(&g));
        } else {
            out(&(format!("graph {} ({} nodes)", model.name, g.len()) + "\n"));
            out(&circ::ir::print::text(&g, Some(&checked.program.sources)));
        }
    }
    ExitCode::SUCCESS
}

/// Writes to stdout, ignoring a closed pipe (`circ graph … | head` must not panic).
fn out(s: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(s.as_bytes());
}

/// Writes to stderr, ignoring errors.
fn err(s: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(s.as_bytes());
}

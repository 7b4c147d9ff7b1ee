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
        /// Optimize the graph: print it before and after the passes, with node counts, and the
        /// elementwise groups a backend fuses.
        #[arg(long)]
        passes: bool,
        /// Add the gradient of the loss with respect to every parameter (optimized graph).
        #[arg(long, conflicts_with_all = ["bprop2", "passes"])]
        grad: bool,
        /// Add the gradient and the bprop2 diagonal curvature (optimized graph).
        #[arg(long, conflicts_with = "passes")]
        bprop2: bool,
        /// With --bprop2: the Gauss-Newton variant (never negative) instead of the full diagonal.
        #[arg(long, requires = "bprop2")]
        gauss_newton: bool,
        /// Print the arithmetic and memory of the forward, gradient and bprop2 graphs.
        #[arg(long)]
        stats: bool,
        /// With --stats: the number every symbolic size (such as N) stands for.
        #[arg(long, default_value_t = 128)]
        n: u64,
        /// Seed of the parameters' initial draws (recorded in the graph).
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Run the forward pass on the reference interpreter and print the loss and its terms.
    Eval {
        /// The .circ file.
        file: PathBuf,
        /// CSV file with one column per data column the model declares.
        #[arg(long)]
        data: PathBuf,
        /// Seed of the parameters' initial draws from their priors.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Evaluate with every parameter at zero instead of its initial draw.
        #[arg(long)]
        zero_params: bool,
        /// Compute in single precision (default: double).
        #[arg(long)]
        f32: bool,
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
        Command::Graph { file, dot, passes, grad, bprop2, gauss_newton, stats, n, seed } => {
            let what = match (grad, bprop2, gauss_newton) {
                (true, _, _) => Some(circ::driver::Derivatives::Gradient),
                (_, true, false) => Some(circ::driver::Derivatives::Curvature(circ::autodiff::bprop2::Variant::Full)),
                (_, true, true) => Some(circ::driver::Derivatives::Curvature(circ::autodiff::bprop2::Variant::GaussNewton)),
                _ => None,
            };
            graph(&file, GraphView { dot, passes, what, stats, n }, seed, color)
        }
        Command::Eval { file, data, seed, zero_params, f32 } => eval(&file, &data, seed, zero_params, f32, color),
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

struct GraphView {
    dot: bool,
    passes: bool,
    what: Option<circ::driver::Derivatives>,
    stats: bool,
    n: u64,
}

fn graph(file: &PathBuf, view: GraphView, seed: u64, color: bool) -> ExitCode {
    let checked = match load(file, color) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for (model, mut g) in checked.models.iter().zip(circ::driver::lower(&checked, seed)) {
        if view.stats {
            out(&format!("graph {} (symbolic sizes = {})\n{}", model.name, view.n, circ::driver::stats(&g, view.n as f64)));
            continue;
        }
        if let Some(what) = view.what {
            g = circ::driver::differentiated(&g, what);
        }
        if view.passes {
            let report = circ::driver::optimize_report(&mut g, &checked.program.sources);
            if !view.dot {
                out(&format!("graph {}\n{report}", model.name));
                continue;
            }
        }
        if view.dot {
            out(&circ::ir::print::dot(&g));
        } else {
            out(&format!("graph {} ({} nodes)\n", model.name, g.len()));
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

fn eval(file: &PathBuf, data: &PathBuf, seed: u64, zero_params: bool, f32: bool, color: bool) -> ExitCode {
    let checked = match load(file, color) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let table = match circ_runtime::csv::read_csv(data) {
        Ok(t) => t,
        Err(e) => {
            err(&format!("error: {e}\n"));
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    for (model, g) in checked.models.iter().zip(circ::driver::lower(&checked, seed)) {
        let inputs = match circ::data::bind_table(&g, &table) {
            Ok(d) => d,
            Err(e) => {
                err(&format!("error: model `{}`: {e}\n", model.name));
                failed = true;
                continue;
            }
        };
        let mut params = circ::ir::init::initial_values(&g);
        if zero_params {
            params.iter_mut().for_each(|p| p.iter_mut().for_each(|x| *x = 0.0));
        }
        match circ::driver::evaluate(&g, &checked.program.sources, &inputs, &params, f32) {
            Ok(e) => {
                let rows = inputs.first().map_or(0, |d| d.shape[0]);
                out(&format!("model {} on {} ({rows} rows)\n", model.name, data.display()));
                out(&format!("  loss  {}\n", e.loss));
                for (label, v) in &e.terms {
                    out(&format!("    {v:>16.6}  {label}\n"));
                }
                if let Some(bad) = e.first_non_finite {
                    err(&format!("warning: the first non-finite value comes from {bad}\n"));
                }
            }
            Err(e) => {
                err(&format!("error: model `{}`: {e}\n", model.name));
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

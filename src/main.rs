//! The `circ` command line: argument parsing and printing only; the work is in `circ::driver`.

mod cli;

use cli::{err, out, Kind};

use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "circ",
    version,
    about = "Compiler and runtime for .circ neural circuits with Bayesian priors",
    after_help = "Exit status, the same for every command:\n  0  done\n  1  the input is wrong: a .circ file with errors, data or parameter values the model refuses,\n     a model too large for this machine's memory, a training run that is not finite\n  2  usage or I/O: bad flags, a file that cannot be read or written, no OpenCL device"
)]
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
    /// Print the tensor graph of each model.
    ///
    /// One node per line, or Graphviz DOT; with --passes, before and after optimization.
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
        /// Print the arithmetic and memory of the forward, gradient and bprop2 graphs (as text).
        #[arg(long, conflicts_with_all = ["dot", "passes", "grad", "bprop2"])]
        stats: bool,
        /// With --stats: the number every symbolic size (such as N) stands for.
        #[arg(long, default_value_t = 128, requires = "stats")]
        n: u64,
        /// Seed of the parameters' initial draws (recorded in the graph).
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Run the forward pass and print the loss and its terms.
    ///
    /// At the parameters' initial draws, at zero (--zero-params), or at a checkpoint's values (--params).
    Eval {
        /// The .circ file.
        file: PathBuf,
        /// Data: a CSV file with the model's data columns, a directory of `<name>.npy` files, or one .npy.
        #[arg(long)]
        data: PathBuf,
        /// Seed of the parameters' initial draws from their priors.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Evaluate with every parameter at zero instead of its initial draw.
        #[arg(long, conflicts_with = "params")]
        zero_params: bool,
        /// Parameter values: a checkpoint of `circ train`, or any safetensors file with them
        /// (default: the initial draws).
        #[arg(long)]
        params: Option<PathBuf>,
        /// Compute in single precision (default: double).
        #[arg(long)]
        f32: bool,
        /// The backend that runs the forward pass (default: the reference interpreter; `cpu` and
        /// `opencl` compute in f32).
        #[arg(long, value_enum, default_value_t = cli::Backend::Interp)]
        backend: cli::Backend,
        /// With --backend opencl: the device, by its number in `circ devices`.
        #[arg(long)]
        device: Option<usize>,
        #[command(flatten)]
        threads: cli::Threads,
    },
    /// Write the gradient, bprop2 curvature or a Hessian-vector product to a safetensors file.
    ///
    /// The gradient of the loss (priors included) for every parameter, or with --bprop2 its
    /// diagonal curvature, or with --hvp a Hessian-vector product.
    /// Tensors are named after the parameters and stored in double precision.
    Grad {
        /// The .circ file.
        file: PathBuf,
        /// Data: a CSV file with the model's data columns, a directory of `<name>.npy` files, or one .npy.
        #[arg(long)]
        data: PathBuf,
        /// Parameter values (safetensors, one tensor per parameter); default: the initial draws.
        #[arg(long)]
        params: Option<PathBuf>,
        /// Seed of the initial draws when --params is not given.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Where to write the result (written atomically); `-`: standard output.
        #[arg(long)]
        out: PathBuf,
        /// Write the bprop2 diagonal curvature (full diagonal variant) instead of the gradient.
        #[arg(long, conflicts_with = "hvp")]
        bprop2: bool,
        /// With --bprop2: the Gauss-Newton variant (drops second-derivative terms; never negative).
        #[arg(long, requires = "bprop2")]
        gauss_newton: bool,
        /// Write the Hessian-vector product H·V, V given per parameter in this safetensors file.
        #[arg(long)]
        hvp: Option<PathBuf>,
        /// The backend that computes the derivatives (default: the reference interpreter, f64;
        /// `cpu` and `opencl` compute in f32).
        #[arg(long, value_enum, default_value_t = cli::Backend::Interp)]
        backend: cli::Backend,
        /// With --backend opencl: the device, by its number in `circ devices`.
        #[arg(long)]
        device: Option<usize>,
        #[command(flatten)]
        threads: cli::Threads,
    },
    /// Print the exact Hessian of the loss for a small model.
    ///
    /// One Hessian-vector product per parameter coordinate; at most 400 coordinates.
    Hessian {
        /// The .circ file.
        file: PathBuf,
        /// Data: a CSV file with the model's data columns, a directory of `<name>.npy` files, or one .npy.
        #[arg(long)]
        data: PathBuf,
        /// Parameter values (safetensors); default: the initial draws.
        #[arg(long)]
        params: Option<PathBuf>,
        /// Seed of the initial draws when --params is not given.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Print every kernel of a model in execution order, with its source lines.
    ///
    /// Cranelift IR (or machine code) for the kernels the CPU backend generates, or OpenCL C,
    /// each headed with its graph nodes and source lines.
    Emit {
        /// The .circ file.
        file: PathBuf,
        /// What to generate code for.
        #[arg(long, value_enum, default_value_t = cli::emit::Target::Clif)]
        target: cli::emit::Target,
        /// Print the machine code after register allocation instead of the IR.
        #[arg(long)]
        asm: bool,
        /// Which graph: the forward pass, with the gradient, or one whole training step.
        #[arg(long, value_enum, default_value_t = cli::emit::Which::Step)]
        graph: cli::emit::Which,
    },
    /// Train a model and write a checkpoint after every epoch.
    ///
    /// Its `train { … }` settings, overridden by these flags. Prints a progress bar (on a
    /// terminal) and one line per epoch, then the last epoch's metrics as one JSON line.
    Train(cli::train::Args),
    /// Predict with trained parameters: one output row per data row.
    ///
    /// For a normal observation both the mean and the variance: the likelihood's own variance
    /// (σ², or 2b² for laplace), unless --uncertainty laplace adds the parameters'.
    Run {
        /// The .circ file.
        file: PathBuf,
        /// Parameters (a checkpoint of `circ train`, or any safetensors file with them).
        #[arg(long)]
        params: PathBuf,
        /// Data: a CSV file with the model's input columns, a directory of `<name>.npy` files, or
        /// one .npy (observed data may be absent).
        #[arg(long)]
        data: PathBuf,
        /// Also write these `let` values of the model, per example: NAME[,NAME…]; each adds the
        /// columns NAME.0 NAME.1 … (its entries of the row, flattened). A value must have one row
        /// per example (its first axis the data's row axis, e.g. N).
        #[arg(long, value_name = "NAME[,NAME…]")]
        values: Vec<String>,
        /// Add the parameters' uncertainty, from the posterior precisions the last epoch of
        /// `circ train` stores in the checkpoint: each variance becomes the likelihood's plus
        /// Σ_k (∂mean/∂θ_k)² / precision_k (delta method; also written alone as
        /// NAME.param_variance), and class probabilities are averaged over the posterior by the
        /// probit approximation. Without it the variance is the likelihood's alone.
        #[arg(long, value_enum, value_name = "laplace")]
        uncertainty: Option<cli::predict::Uncertainty>,
        /// Where to write the predictions (CSV, written atomically); default or `-`: standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The backend that computes the predictions.
        #[arg(long, value_enum, default_value_t = cli::Backend::Cpu)]
        backend: cli::Backend,
        /// With --backend opencl: the device, by its number in `circ devices` (default: the
        /// first GPU, else the first device).
        #[arg(long)]
        device: Option<usize>,
        #[command(flatten)]
        threads: cli::Threads,
    },
    /// List the OpenCL platforms and devices `--backend opencl --device N` can run on.
    Devices,
    /// Run the language server for editors, speaking LSP on standard input and output.
    ///
    /// Diagnostics as you type, hover with each value's shape (and each parameter's prior and
    /// update rule), go to definition (into the bundled stdlib too) and document symbols. The
    /// stdlib is served as read-only files under the cache folder ($CIRC_CACHE_DIR/stdlib, else
    /// ~/.cache/circ/stdlib). Editor setup: docs/editors.md.
    Lsp,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    match &cli.command {
        Command::Eval { threads, .. } | Command::Grad { threads, .. } | Command::Run { threads, .. } => threads.apply(),
        Command::Train(args) => args.threads.apply(),
        _ => {}
    }
    let code = match cli.command {
        Command::Check { files, verbose } => check(&files, verbose, color),
        Command::Graph { file, dot, passes, grad, bprop2, gauss_newton, stats, n, seed } => {
            let what = match (grad, bprop2) {
                (true, _) => Some(circ::driver::Derivatives::Gradient),
                (_, true) => Some(curvature(gauss_newton)),
                _ => None,
            };
            graph(&file, GraphView { dot, passes, what, stats, n }, seed, color)
        }
        Command::Grad { file, data, params, seed, out, bprop2, gauss_newton, hvp, backend, device, .. } => {
            use circ::driver::Derivatives;
            let what = match (bprop2, &hvp) {
                (true, _) => curvature(gauss_newton),
                (false, Some(_)) => Derivatives::Hvp,
                _ => Derivatives::Gradient,
            };
            grad(&file, &data, params.as_ref(), seed, &out, what, hvp.as_ref(), backend.kind(device), color)
        }
        Command::Train(args) => cli::train::train(args, color),
        Command::Emit { file, target: cli::emit::Target::Opencl, graph, .. } => {
            cli::emit::emit_opencl(&file, graph, color)
        }
        Command::Emit { file, target: cli::emit::Target::Clif, asm, graph } => {
            cli::emit::emit(&file, graph, asm, color)
        }
        Command::Devices => cli::devices(),
        Command::Lsp => lsp(),
        Command::Run { file, params, data, out, backend, device, values, uncertainty, .. } => {
            cli::predict::run(&file, &params, &data, out.as_ref(), backend.kind(device), &values, uncertainty, color)
        }
        Command::Hessian { file, data, params, seed } => hessian(&file, &data, params.as_ref(), seed, color),
        Command::Eval { file, data, seed, zero_params, params, f32, backend, device, .. } => {
            let init = match params {
                Some(p) => Init::File(p),
                None if zero_params => Init::Zero,
                None => Init::Draws,
            };
            eval(&file, &data, seed, init, f32, backend.kind(device), color)
        }
    };
    cli::finish(code)
}

/// Exit status 0 after `shutdown` and `exit`, 1 otherwise (as the protocol asks).
fn lsp() -> ExitCode {
    match circ::lsp::run() {
        Ok(circ::lsp::Ending::Clean) => ExitCode::SUCCESS,
        Ok(circ::lsp::Ending::WithoutShutdown) => ExitCode::FAILURE,
        Err(e) => {
            err(&format!("error: circ lsp: {e}\n"));
            ExitCode::FAILURE
        }
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
        cli::exit(Kind::Usage)
    } else if errors {
        cli::exit(Kind::Input)
    } else {
        ExitCode::SUCCESS
    }
}

/// The bprop2 variant the `--gauss-newton` flag asks for.
fn curvature(gauss_newton: bool) -> circ::driver::Derivatives {
    use circ::autodiff::bprop2::Variant;
    circ::driver::Derivatives::Curvature(if gauss_newton { Variant::GaussNewton } else { Variant::Full })
}

/// Checks a file for the commands that need a valid model; prints diagnostics.
pub(crate) fn load(file: &Path, color: bool) -> Result<circ::driver::Checked, ExitCode> {
    let checked = circ::driver::check_file(file).map_err(|e| {
        err(&(format!("error: cannot read {}: {e}", file.display()) + "\n"));
        cli::exit(Kind::Usage)
    })?;
    if !checked.diagnostics.is_empty() {
        err(&checked.render(color));
    }
    if checked.has_errors() {
        return Err(cli::exit(Kind::Input));
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

fn graph(file: &Path, view: GraphView, seed: u64, color: bool) -> ExitCode {
    let checked = match load(file, color) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for (model, mut g) in checked.models.iter().zip(circ::driver::lower(&checked, seed)) {
        if view.stats {
            out(&format!(
                "graph {} (symbolic sizes = {})\n{}",
                model.name,
                view.n,
                circ::driver::stats(&g, view.n as f64)
            ));
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

/// The parameter values `circ eval` evaluates at.
enum Init {
    /// The initial draws from the priors (`--seed`).
    Draws,
    /// Every parameter zero (`--zero-params`).
    Zero,
    /// A checkpoint or any safetensors file with every parameter (`--params`).
    File(PathBuf),
}

fn eval(
    file: &Path,
    data: &Path,
    seed: u64,
    init: Init,
    f32: bool,
    backend: circ::backend::BackendKind,
    color: bool,
) -> ExitCode {
    // Compiled backends compute in f32: their data are checked as f32 data are.
    let f32 = f32 || backend != circ::backend::BackendKind::Interp;
    let checked = match load(file, color) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // The worst failure over the models decides the exit status.
    let mut failed: Option<Kind> = None;
    let mut fail = |kind: Kind| failed = failed.max(Some(kind));
    for (model, g) in checked.models.iter().zip(circ::driver::lower(&checked, seed)) {
        let inputs = match circ::data::load_as(&g, data, f32) {
            Ok(d) => d,
            Err(e) => {
                err(&format!("error: model `{}`: {e}\n", model.name));
                fail(e.kind);
                continue;
            }
        };
        let mut params = circ::ir::init::initial_values(&g);
        match &init {
            Init::Draws => {}
            Init::Zero => params.iter_mut().for_each(|p| p.iter_mut().for_each(|x| *x = 0.0)),
            Init::File(path) => {
                let read = circ::driver::params_from_file(&g, path).and_then(|v| {
                    Ok(circ::driver::check_param_values(&g, &v, &path.display().to_string(), f32).map(|()| v)?)
                });
                match read {
                    Ok(v) => params = v,
                    Err(e) => {
                        err(&format!("error: model `{}`: {e}\n", model.name));
                        fail(e.kind);
                        continue;
                    }
                }
            }
        }
        let evaluated = if backend == circ::backend::BackendKind::Interp {
            circ::driver::evaluate(&g, &checked.program.sources, &inputs, &params, f32).map_err(|e| e.to_string())
        } else {
            match circ::driver::evaluate_on(&g, &checked.program.sources, &inputs, &params, backend) {
                Err(circ::backend::RunError::Backend(circ::backend::cpu::BackendError::Device(m))) => {
                    err(&format!("error: {m}\n"));
                    return cli::exit(Kind::Usage);
                }
                other => other.map_err(|e| e.to_string()),
            }
        };
        match evaluated {
            Ok(e) => {
                let rows = inputs.first().map_or(0, |d| d.shape[0]);
                out(&format!("model {} on {} ({rows} rows)\n", model.name, data.display()));
                // The loss and its terms alike: the shortest digits of the precision computed in.
                let loss = cli::number(e.loss, f32);
                let terms: Vec<String> = e.terms.iter().map(|(_, v)| cli::number(*v, f32)).collect();
                let w = terms.iter().map(String::len).max().unwrap_or(0).max(16);
                out(&format!("  loss  {loss}\n"));
                for ((label, _), v) in e.terms.iter().zip(&terms) {
                    out(&format!("    {v:>w$}  {label}\n"));
                }
                if let Some(bad) = e.first_non_finite {
                    err(&format!("warning: the first non-finite value comes from {bad}\n"));
                }
            }
            Err(e) => {
                err(&format!("error: model `{}`: {e}\n", model.name));
                fail(Kind::Input);
            }
        }
    }
    failed.map_or(ExitCode::SUCCESS, cli::exit)
}

/// A model ready to run: its graph, data and parameter values, or the exit code after an error.
struct Prepared {
    checked: circ::driver::Checked,
    graph: circ::ir::Graph,
    data: Vec<circ::interp::HostTensor>,
    params: Vec<Vec<f64>>,
}

fn prepare(file: &Path, data: &Path, params: Option<&PathBuf>, seed: u64, color: bool) -> Result<Prepared, ExitCode> {
    let checked = load(file, color)?;
    let mut graphs = circ::driver::lower(&checked, seed);
    if graphs.len() != 1 {
        err(&format!("error: {} must define exactly one model, it defines {}\n", file.display(), graphs.len()));
        return Err(cli::exit(Kind::Input));
    }
    let graph = graphs.remove(0);
    let data = circ::data::load(&graph, data).map_err(|e| cli::fail(&e))?;
    // Before the parameters and the interpreter's values are allocated: does the run fit? (The
    // forward graph on the interpreter; derivatives need about twice as much again.)
    let fits = {
        let mut plan = circ::budget::Plan::default();
        plan.add("data", circ::budget::data_bytes(&data));
        plan.add("parameters", circ::budget::param_bytes(&graph, 1));
        let shapes: Vec<Vec<usize>> = data.iter().map(|t| t.shape.clone()).collect();
        let sizes = circ::budget::sizes_from(&graph, &shapes, None);
        plan.add_graph("the forward pass", &graph, 0, circ::backend::BackendKind::Interp, &sizes);
        let sources = &checked.program.sources;
        plan.check(circ::budget::available().as_ref(), &|_, id| circ::driver::describe_node(sources, &graph, id))
    };
    if let Err(e) = fits {
        err(&format!("error: {e}\n"));
        return Err(cli::exit(Kind::Input));
    }
    let params = match params {
        Some(p) => circ::driver::params_from_file(&graph, p).map_err(|e| cli::fail(&e))?,
        None => circ::ir::init::initial_values(&graph),
    };
    Ok(Prepared { checked, graph, data, params })
}

#[allow(clippy::too_many_arguments)]
fn grad(
    file: &Path,
    data: &Path,
    params: Option<&PathBuf>,
    seed: u64,
    out_path: &Path,
    what: circ::driver::Derivatives,
    hvp: Option<&PathBuf>,
    backend: circ::backend::BackendKind,
    color: bool,
) -> ExitCode {
    let npy = cli::npy_files(data);
    let mut inputs = vec![("the model", file), ("--data", data)];
    inputs.extend(npy.iter().map(|p| ("--data", p.as_path())));
    inputs.extend(params.map(|p| ("--params", p.as_path())));
    inputs.extend(hvp.map(|p| ("--hvp", p.as_path())));
    let outputs = [("--out", out_path)];
    if let Err(code) = cli::distinct(&inputs, &outputs).and_then(|()| cli::writable(&outputs)) {
        return code;
    }
    let p = match prepare(file, data, params, seed, color) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let direction = match hvp {
        None => Vec::new(),
        Some(v) => {
            let read = circ_runtime::files::safetensors::read(v).map_err(cli::Error::from).and_then(|(t, _)| {
                Ok(circ::driver::tensors_for(&p.graph, &t, |n| n.to_string(), &v.display().to_string())?)
            });
            match read {
                Ok(d) => d,
                Err(e) => return cli::fail(&e),
            }
        }
    };
    let sources = &p.checked.program.sources;
    let tensors =
        match circ::driver::parameter_derivatives(&p.graph, what, &p.data, &p.params, &direction, sources, backend) {
            Ok(t) => t,
            Err(circ::backend::RunError::Backend(circ::backend::cpu::BackendError::Device(m))) => {
                err(&format!("error: {m}\n"));
                return cli::exit(Kind::Usage);
            }
            Err(e) => {
                err(&format!("error: {e}\n"));
                return cli::exit(Kind::Input);
            }
        };
    let kind = match what {
        circ::driver::Derivatives::Curvature(circ::autodiff::bprop2::Variant::Full) => {
            "bprop2 curvature (full diagonal)".to_string()
        }
        circ::driver::Derivatives::Curvature(_) => "bprop2 curvature (Gauss-Newton)".to_string(),
        circ::driver::Derivatives::Hvp => "Hessian-vector product".to_string(),
        _ => "gradient".to_string(),
    };
    let meta = vec![("circ".to_string(), kind.clone()), ("model".to_string(), p.checked.models[0].name.clone())];
    if let Err(e) =
        circ_runtime::files::safetensors::write(out_path, &tensors, circ_runtime::files::safetensors::DType::F64, &meta)
    {
        match e.kind() {
            circ_runtime::files::safetensors::ErrorKind::Io { source, .. }
                if circ_runtime::files::output::is_stdout(out_path) =>
            {
                // Reported once, by `cli::finish`.
                cli::stdout_failed(std::io::Error::new(source.kind(), source.to_string()));
            }
            _ => err(&format!("error: {e}\n")),
        }
        return cli::exit(Kind::Usage);
    }
    let n: usize = tensors.iter().map(|t| t.values.len()).sum();
    let done = format!("wrote the {kind} of {} parameters ({n} values) to {}\n", tensors.len(), out_path.display());
    if circ_runtime::files::output::is_stdout(out_path) {
        err(&done); // standard output holds the safetensors file
    } else {
        out(&done);
    }
    ExitCode::SUCCESS
}

/// Largest model `circ hessian` prints.
const MAX_HESSIAN: usize = 400;

fn hessian(file: &Path, data: &Path, params: Option<&PathBuf>, seed: u64, color: bool) -> ExitCode {
    let p = match prepare(file, data, params, seed, color) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let n: u64 = p.graph.params.iter().map(|q| q.shape.iter().product::<u64>()).sum();
    if n as usize > MAX_HESSIAN {
        err(&format!(
            "error: the model has {n} parameter values; `circ hessian` prints at most {MAX_HESSIAN}\n  help: use `circ grad --hvp V.safetensors` for products with the Hessian\n"
        ));
        return cli::exit(Kind::Input);
    }
    match circ::driver::hessian(&p.graph, &p.data, &p.params) {
        Ok((names, cols)) => {
            let w = names.iter().map(|s| s.len()).max().unwrap_or(0).max(4);
            let mut s = format!("{:w$}", "");
            for name in &names {
                s.push_str(&format!(" {name:>12}"));
            }
            s.push('\n');
            for (i, name) in names.iter().enumerate() {
                s.push_str(&format!("{name:w$}"));
                for col in &cols {
                    s.push_str(&format!(" {:>12.6}", col[i]));
                }
                s.push('\n');
            }
            out(&s);
            ExitCode::SUCCESS
        }
        Err(e) => {
            err(&format!("error: {e}\n"));
            cli::exit(Kind::Input)
        }
    }
}

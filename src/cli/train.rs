//! `circ train`: settings from the model, overridden by flags; a progress bar; metrics per epoch;
//! checkpoints after every epoch.

use super::{err, out, Backend, Kind};
use circ::train::distributed::{Failure, Group};
use circ::train::run::{Settings, TrainError, Trainer};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The .circ file.
    pub file: PathBuf,
    /// Data: a CSV file with the model's data columns, a directory of `<name>.npy` files, or one .npy.
    #[arg(long)]
    pub data: PathBuf,
    /// Validation data, CSV or .npy as --data; default: hold out the model's `valid` fraction of --data.
    #[arg(long)]
    pub valid: Option<PathBuf>,
    /// Fraction of --data held out for validation (overrides the model's `valid`).
    #[arg(long, conflicts_with = "valid")]
    pub valid_fraction: Option<f64>,
    /// Number of epochs (overrides the model's `epochs`).
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Rows per step (overrides the model's `batch`; default: all rows).
    #[arg(long)]
    pub batch: Option<u64>,
    /// Seed of the initial draws, the validation split and the shuffles.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Update rule for parameters without their own, e.g. "sgd(lr = 0.1, momentum = 0.9)"
    /// (overrides the model's `optimizer`; default: adam(lr = 1e-3)).
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Checkpoint file (safetensors), written atomically after every epoch.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from the checkpoint in --out.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// EWC: add ½·λ·Σ P_k (θ_k − θ*_k)² to the loss, θ* the parameters and P the posterior
    /// precisions (`posterior.precision.<param>`) stored in this checkpoint of `circ train`.
    #[arg(long, value_name = "CHECKPOINT")]
    pub prior_from: Option<PathBuf>,
    /// The weight λ of the --prior-from penalty (1: that posterior as this run's prior).
    #[arg(long, value_name = "λ", requires = "prior_from")]
    pub prior_weight: Option<f64>,
    #[command(flatten)]
    pub threads: super::Threads,
    /// Write one JSON line of metrics per epoch to this file: a new training replaces its
    /// lines; with --resume the lines of epochs up to the checkpoint's are kept and the new ones
    /// appended.
    #[arg(long)]
    pub metrics: Option<PathBuf>,
    /// Draw the training and validation curves to this PNG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// The backend that runs the training step: the Cranelift CPU backend (f32), or the
    /// reference interpreter (f64, slower; exact enough to check closed forms).
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub backend: Backend,
    /// With --backend opencl: the device, by its number in `circ devices` (default: the first
    /// GPU, else the first device).
    #[arg(long)]
    pub device: Option<usize>,
    /// No progress bar or per-epoch lines.
    #[arg(short, long)]
    pub quiet: bool,
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Used when neither the model nor the command line names an optimizer.
pub const DEFAULT_OPTIMIZER: &str = "adam(lr = 1e-3)";

pub fn train(a: Args, color: bool) -> ExitCode {
    // Under mpirun: one process of a data-parallel run (docs/distributed.md).
    let group = match Group::from_env() {
        Ok(g) => g,
        Err(e) => {
            err(&format!("error: {e}\n"));
            return super::exit(Kind::Usage);
        }
    };
    if group.size() > 1 && !a.threads.given() && std::env::var_os("CIRC_THREADS").is_none() {
        // The processes on one machine share its cores.
        let local = circ::train::distributed::local_processes();
        circ::backend::cpu::set_threads(circ::train::distributed::threads_per_process(local));
    }
    let code = train_in(a, color, &group);
    group.finish(code)
}

/// Prints an agreed failure (rank 0 only) and gives its exit status.
fn stop(group: &Group, f: &Failure) -> ExitCode {
    if group.is_root() {
        err(&format!("error: {}\n", group.describe(f)));
    }
    ExitCode::from(f.code)
}

fn train_in(a: Args, color: bool, group: &Group) -> ExitCode {
    let root = group.is_root();
    let checked = match crate::load(&a.file, color) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if checked.models.len() != 1 {
        err(&format!(
            "error: {} must define exactly one model, it defines {}\n",
            a.file.display(),
            checked.models.len()
        ));
        return super::exit(Kind::Input);
    }
    let model = &checked.models[0];
    let t = &model.train;
    let text = a.optimizer.clone().unwrap_or_else(|| DEFAULT_OPTIMIZER.to_string());
    let default = match (&a.optimizer, &t.optimizer) {
        (None, Some(rule)) => rule.clone(),
        _ => match circ::driver::parse_update_rule(&text) {
            Ok(r) => r,
            Err(e) => {
                err(&e);
                return super::exit(Kind::Usage);
            }
        },
    };
    if let Err(e) = circ::driver::check_train_flags(a.epochs, a.batch, a.valid_fraction, a.seed) {
        err(&format!(
            "{e}error: the training flags are not valid (--epochs, --batch, --valid-fraction and --seed are checked as a model's `train` block is)\n"
        ));
        return super::exit(Kind::Usage);
    }
    let settings = Settings {
        epochs: a.epochs.or(t.epochs).unwrap_or(10),
        batch: a.batch.or(t.batch),
        valid: a.valid_fraction.or(t.valid).unwrap_or(0.0),
        seed: a.seed.or(t.seed).unwrap_or(0),
    };
    // EWC's anchor: the parameters and posterior precisions of an earlier checkpoint.
    let anchor = match &a.prior_from {
        None => None,
        Some(path) => {
            let weight = a.prior_weight.unwrap_or(1.0);
            if !(weight.is_finite() && weight >= 0.0) {
                err(&format!("error: --prior-weight must be a finite number ≥ 0, not {weight}\n"));
                return super::exit(Kind::Usage);
            }
            let g = circ::ir::lower::lower(model, 0);
            let read = circ_runtime::files::safetensors::read(path).map_err(super::Error::from).and_then(|(t, _)| {
                Ok(circ::train::posterior::Anchor::from_checkpoint(&g, &t, &path.display().to_string(), weight)?)
            });
            match read {
                Ok(anchor) => Some(anchor),
                Err(e) => return super::fail(&e),
            }
        }
    };
    let step = circ::train::step::build_with(model, settings.seed, &default, anchor.as_ref());
    if group.size() > 1 && anchor.is_some() {
        err("error: --prior-from is not supported with several processes yet: train with one process\n");
        return super::exit(Kind::Usage);
    }
    let split = match (group.size() > 1).then(|| circ::train::step::build_split(model, settings.seed, &default)) {
        None => None,
        Some(Ok(split)) => Some(split),
        Some(Err(e)) => {
            err(&format!("error: {e}\n"));
            return super::exit(Kind::Usage);
        }
    };
    let mut eval = circ::ir::lower::lower_with(model, settings.seed, true);
    circ::passes::optimize(&mut eval);

    if a.out.as_deref().is_some_and(circ_runtime::files::output::is_stdout) {
        err(
            "error: --out names the checkpoint file, which `--resume` reads back; it cannot be `-` (standard output)\n",
        );
        return super::exit(Kind::Usage);
    }
    let npy = super::npy_files(&a.data);
    let mut inputs = vec![("the model", a.file.as_path()), ("--data", a.data.as_path())];
    inputs.extend(npy.iter().map(|p| ("--data", p.as_path())));
    inputs.extend(a.valid.as_deref().map(|p| ("--valid", p)));
    let outputs: Vec<(&str, &std::path::Path)> = [("--out", &a.out), ("--metrics", &a.metrics), ("--plot", &a.plot)]
        .into_iter()
        .filter_map(|(w, p)| p.as_deref().map(|p| (w, p)))
        .collect();
    // Only rank 0 writes files.
    if let (true, Err(code)) = (root, super::distinct(&inputs, &outputs).and_then(|()| super::writable(&outputs))) {
        return code;
    }
    // Two trainings writing one checkpoint would interleave their epochs: the second one stops.
    let _lock = match a.out.as_deref().filter(|_| root).map(circ_runtime::files::output::Lock::acquire) {
        None => None,
        Some(Ok(Some(lock))) => Some(lock),
        Some(Ok(None)) => {
            let out = a.out.as_deref().unwrap_or(std::path::Path::new("")).display();
            err(&format!(
                "error: another `circ train` is writing {out}; wait for it to finish or choose another --out\n"
            ));
            return super::exit(Kind::Usage);
        }
        Some(Err(e)) => {
            err(&format!("error: {e}\n"));
            return super::exit(Kind::Usage);
        }
    };

    // Every backend but the reference interpreter computes in f32.
    let f32 = !matches!(a.backend.kind(a.device), circ::backend::BackendKind::Interp);
    let read = |p: &PathBuf| circ::data::load_as(&step.graph, p, f32);
    // Every process reads the data; one that cannot stops them all with its message.
    let loaded = read(&a.data).and_then(|all| Ok((all, a.valid.as_ref().map(read).transpose()?)));
    let failure = loaded.as_ref().err().map(|e| (e.kind.code(), e.to_string()));
    if let Some(f) = group.agree(failure.as_ref().map(|(code, m)| (*code, m.as_str()))) {
        return stop(group, &f);
    }
    let Ok((all, valid_file)) = loaded else { return super::exit(Kind::Input) };
    // What a checkpoint records of the data and settings, so that `--resume` can say what changed.
    let data_hash = fingerprint(&all);
    if group.size() > 1 {
        let same = group.same_everywhere(u64::from_str_radix(&data_hash, 16).unwrap_or(0));
        let differs = format!(
            "the processes read different values from {}: each must read the same file (a shared file system, or identical copies)",
            a.data.display()
        );
        if let Some(f) = group.agree((!same).then_some((Kind::Input.code(), differs.as_str()))) {
            return stop(group, &f);
        }
    }
    // With a split, the whole table stays beside its two parts.
    let all_bytes = if a.valid.is_some() { 0 } else { circ::budget::data_bytes(&all) };
    let (train, valid) = match valid_file {
        Some(d) => (all, d),
        None => {
            let (tr, va) = circ::train::run::split(circ::train::run::rows(&all), settings.valid, settings.seed);
            (circ::train::run::select(&all, &tr), circ::train::run::select(&all, &va))
        }
    };
    if circ::train::run::rows(&train) == 0 {
        err("error: no rows left to train on\n");
        return super::exit(Kind::Input);
    }
    // Before the parameters and the backend's buffers are allocated: does the run fit?
    if let Err(e) = budget(&step, &eval, all_bytes, &train, &valid, &settings, a.backend.kind(a.device), &checked) {
        err(&format!("error: {e}\n"));
        return super::exit(Kind::Input);
    }
    // A data-parallel run trains the split step (the same parameters, drawn alike).
    let trained = split.as_ref().map_or(&step, |s| &s.apply);
    let params = circ::ir::init::initial_values(&trained.graph);
    let sources = &checked.program.sources;
    let describe = Box::new(move |id, g: &circ::ir::Graph| circ::driver::describe_node(sources, g, id));
    let mut trainer = Trainer::new(trained, eval, train, valid, settings.clone(), params, describe);
    if let Some(s) = &split {
        trainer.distribute(group, s);
    }
    if let Err(e) = trainer.use_backend(a.backend.kind(a.device)) {
        if let circ::backend::cpu::BackendError::Device(m) = &e {
            // No device, or a program the device's compiler refused: nothing about the model.
            err(&format!("error: {m}\n"));
            return super::exit(Kind::Usage);
        }
        err(&format!(
            "error: the {} backend cannot run this model: {e}\n  note: `--backend interp` runs every model\n",
            a.backend.kind(a.device).name()
        ));
        return super::exit(Kind::Input);
    }
    if a.resume {
        let Some(path) = &a.out else {
            err("error: --resume continues from the checkpoint named by --out\n");
            return super::exit(Kind::Usage);
        };
        let restored = circ_runtime::files::safetensors::read(path)
            .map_err(super::Error::from)
            .and_then(|(t, m)| Ok(trainer.restore(&path.display().to_string(), &t, &m).map(|()| m)?));
        // Every process reads the checkpoint.
        let failure = restored.as_ref().err().map(|e| (e.kind.code(), e.to_string()));
        if let Some(f) = group.agree(failure.as_ref().map(|(code, m)| (*code, m.as_str()))) {
            return stop(group, &f);
        }
        let Ok(meta) = restored else { return super::exit(Kind::Input) };
        if trainer.epoch >= settings.epochs {
            let done = format!(
                "{} is already at epoch {} and this run trains {}: nothing is left to do\n  help: ask for more with `--epochs {}`",
                path.display(),
                trainer.epoch,
                plural(settings.epochs, "epoch"),
                trainer.epoch + 1
            );
            // Every process found the same: they stop together, and rank 0 says why.
            let f = group.agree(Some((Kind::Usage.code(), &done)));
            return f.map_or(super::exit(Kind::Usage), |f| stop(group, &f));
        }
        let now = run_meta(&a, &settings, &data_hash);
        let changes = changed(&meta, &now);
        if !changes.is_empty() && root {
            err(&format!("resuming from epoch {} with changes: {}\n", trainer.epoch, changes.join("; ")));
        }
    }
    let mut metrics_file = match a.metrics.as_ref().filter(|_| root) {
        None => None,
        Some(p) => match open_metrics(p, a.resume.then_some(trainer.epoch)) {
            Ok(f) => Some(f),
            Err(e) => {
                err(&format!("error: cannot write {}: {e}\n", p.display()));
                return super::exit(Kind::Usage);
            }
        },
    };
    let rows = circ::train::run::rows(&trainer.train);
    let batch = settings.batch.map_or(rows, |b| (b as usize).min(rows));
    let steps_per_epoch = rows.div_ceil(batch.max(1)) as u64;
    let remaining = settings.epochs.saturating_sub(trainer.epoch);
    // A progress bar only on a terminal: elsewhere (a log, CI) indicatif would draw nothing, and
    // its `println` on a hidden bar prints nothing either, so the epoch lines are written plainly.
    let quiet = a.quiet || !root;
    let live = !quiet && std::io::stderr().is_terminal();
    let bar = if live { ProgressBar::new(remaining * steps_per_epoch) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if !quiet {
        let processes = match group.size() {
            1 => String::new(),
            k => format!(", {k} processes over MPI"),
        };
        err(&format!(
            "training `{}` on {rows} rows ({} held out), {} of {}, batch {batch}, seed {}, backend {}{processes}\n",
            model.name,
            circ::train::run::rows(&trainer.valid),
            plural(settings.epochs, "epoch"),
            plural(steps_per_epoch, "step"),
            settings.seed,
            a.backend.kind(a.device).name()
        ));
        if group.size() > 1 {
            err(&format!(
                "  each step sums {} bytes over the processes; the ring sends {} bytes from each\n",
                trainer.bytes_per_step(),
                2 * (group.size() - 1) * trainer.bytes_per_step() / group.size()
            ));
        }
    }
    let mut history = Vec::new();
    while trainer.epoch < settings.epochs {
        let epoch = trainer.epoch + 1;
        let result = trainer.run_epoch(&mut |k, n, loss| {
            bar.inc(1);
            if k == n || k % 8 == 0 {
                bar.set_message(format!("epoch {epoch}/{}  nll {loss:.4}", settings.epochs));
            }
        });
        let m = match result {
            Ok(m) => m,
            Err(_) if !root => return super::exit(Kind::Input),
            Err(e) => {
                bar.abandon();
                err(&format!("error: {e}\n"));
                if matches!(e, TrainError::NonFinite { .. } | TrainError::NonFiniteUpdate { .. }) {
                    err("  note: the last checkpoint, if any, holds the parameters before this epoch\n");
                }
                return super::exit(Kind::Input);
            }
        };
        let mut line = format!("epoch {:>4}  train nll {:.6}", m.epoch, m.train_nll);
        if let Some(acc) = m.train_accuracy {
            line.push_str(&format!("  acc {:.4}", acc));
        }
        if let Some(v) = m.valid_nll {
            line.push_str(&format!("  valid nll {v:.6}"));
        }
        if let Some(acc) = m.valid_accuracy {
            line.push_str(&format!("  acc {acc:.4}"));
        }
        if live {
            bar.println(line);
        } else if !quiet {
            err(&format!("{line}\n"));
        }
        // The metrics line before the checkpoint: after a crash between the two, `--resume`
        // drops the lines past the checkpoint's epoch, so every epoch has exactly one line.
        if let Some(f) = metrics_file.as_mut() {
            if let Err(e) = writeln!(f, "{}", m.to_json()).and_then(|()| f.flush()) {
                let p = a.metrics.as_deref().unwrap_or(std::path::Path::new("-"));
                bar.abandon();
                let failed =
                    circ_runtime::files::output::OutputError { action: "write", path: p.to_path_buf(), source: e };
                return super::output_failed(failed);
            }
        }
        if let Some(path) = a.out.as_ref().filter(|_| root) {
            let (mut tensors, mut meta) = trainer.checkpoint(&model.name);
            if trainer.epoch == settings.epochs {
                // The last epoch's checkpoint also holds the Laplace posterior's precisions.
                match posterior(model, &trainer, &settings, anchor.as_ref()) {
                    Ok(p) => tensors.extend(p),
                    Err(e) => {
                        bar.abandon();
                        err(&format!("error: {e}\n"));
                        return super::exit(Kind::Input);
                    }
                }
            }
            meta.extend(run_meta(&a, &settings, &data_hash));
            if let Err(e) = circ_runtime::files::safetensors::write(
                path,
                &tensors,
                circ_runtime::files::safetensors::DType::F64,
                &meta,
            ) {
                bar.abandon();
                err(&format!("error: {e}\n"));
                return super::exit(Kind::Usage);
            }
        }
        history.push(m);
    }
    bar.finish_and_clear();
    if let Some(plot) = a.plot.as_ref().filter(|_| root) {
        if let Err(e) = circ::train::plot::loss_curves(plot, &model.name, &history) {
            err(&format!("error: cannot draw {}: {e}\n", plot.display()));
            return super::exit(Kind::Usage);
        }
    }
    if let Some(last) = history.last().filter(|_| root) {
        out(&format!("{}\n", last.to_json()));
    }
    ExitCode::SUCCESS
}

/// Each parameter's posterior precision at the trained values, `posterior.precision.<param>`:
/// the Gauss–Newton curvature over every training row, run on the training backend a batch at a
/// time, plus the prior's precision, plus an EWC anchor's λ·P (its posterior, this run's prior).
fn posterior(
    model: &circ::check::checked::CheckedModel,
    trainer: &Trainer,
    settings: &Settings,
    anchor: Option<&circ::train::posterior::Anchor>,
) -> Result<Vec<circ_runtime::files::safetensors::NamedTensor>, TrainError> {
    let g = circ::train::posterior::curvature_graph(model, settings.seed);
    let rows = circ::train::run::rows(&trainer.train);
    let block = settings.batch.map_or(rows, |b| b as usize);
    let mut p = circ::train::posterior::precision(&g, trainer.backend(), &trainer.train, &trainer.params, block)?;
    if let Some(a) = anchor {
        for (p, q) in p.iter_mut().zip(&a.precision) {
            p.iter_mut().zip(q).for_each(|(p, q)| *p += a.weight * q);
        }
    }
    Ok(g.params
        .iter()
        .zip(p)
        .map(|(info, values)| circ_runtime::files::safetensors::NamedTensor {
            name: circ::train::posterior::tensor_name(&info.name),
            shape: info.shape.iter().map(|n| *n as usize).collect(),
            values,
        })
        .collect())
}

/// Opens the `--metrics` file: `-` is standard output; a new training truncates the file; a
/// resumed one (`resume` is the checkpoint's epoch) keeps only the complete lines of epochs up to
/// the checkpoint's (a crash after a metrics line and before its checkpoint leaves one more) and
/// appends. A device or FIFO is written as it is.
fn open_metrics(path: &std::path::Path, resume: Option<u64>) -> std::io::Result<Box<dyn Write>> {
    if circ_runtime::files::output::is_stdout(path) {
        return Ok(Box::new(std::io::stdout()));
    }
    let regular = std::fs::metadata(path).map(|m| m.is_file()).unwrap_or(true);
    if let (Some(epoch), true) = (resume, regular) {
        let text = match std::fs::read(path) {
            Ok(t) => String::from_utf8_lossy(&t).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let kept: String = text
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n') && line_epoch(l).is_some_and(|n| n <= epoch))
            .collect();
        if kept.len() != text.len() {
            circ_runtime::files::output::write_with(path, |w| w.write_all(kept.as_bytes())).map_err(|e| e.source)?;
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true);
    if resume.is_some() {
        options.append(true);
    } else {
        options.write(true).truncate(regular);
    }
    Ok(Box::new(options.open(path)?))
}

/// The epoch of a metrics line (`{"epoch":3,...}`).
fn line_epoch(line: &str) -> Option<u64> {
    let rest = line.strip_prefix("{\"epoch\":")?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

/// What a checkpoint records of the run beside the parameters: the batch size, the validation
/// (a fraction of --data or a file), the data file and a fingerprint of its values.
fn run_meta(a: &Args, settings: &Settings, data_hash: &str) -> Vec<(String, String)> {
    let valid = match &a.valid {
        Some(v) => format!("file {}", v.display()),
        None => format!("{}", settings.valid),
    };
    vec![
        ("batch".to_string(), settings.batch.map_or("all rows".to_string(), |b| b.to_string())),
        ("valid".to_string(), valid),
        ("data".to_string(), a.data.display().to_string()),
        ("data_hash".to_string(), data_hash.to_string()),
    ]
}

/// What differs between the checkpoint's run and this one, one phrase each (nothing for what
/// an older checkpoint did not record).
fn changed(before: &[(String, String)], now: &[(String, String)]) -> Vec<String> {
    let get = |k: &str| before.iter().find(|(m, _)| m == k).map(|(_, v)| v.as_str());
    let new = |k: &str| now.iter().find(|(m, _)| m == k).map_or("", |(_, v)| v.as_str());
    let mut out = Vec::new();
    if let Some(b) = get("batch").filter(|b| *b != new("batch")) {
        out.push(format!("batch {b} → {}", new("batch")));
    }
    if let Some(v) = get("valid").filter(|v| *v != new("valid")) {
        out.push(format!("validation {v} → {}", new("valid")));
    }
    match (get("data"), get("data_hash")) {
        (Some(d), _) if d != new("data") => {
            let same = get("data_hash") == Some(new("data_hash"));
            out.push(format!("data {d} → {}{}", new("data"), if same { " (same values)" } else { "" }));
        }
        (_, Some(h)) if h != new("data_hash") => out.push(format!("the values in {} changed", new("data"))),
        _ => {}
    }
    out
}

/// A hash over the shapes and values of the data: whether a resumed run reads the same data.
fn fingerprint(data: &[circ::interp::HostTensor]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    // A word at a time (FNV-1a's step on 64-bit words, with a shift to mix the high bits down).
    let mut eat = |x: u64| {
        h = (h ^ x).wrapping_mul(0x0100_0000_01b3);
        h ^= h >> 29;
    };
    for t in data {
        eat(t.shape.len() as u64);
        t.shape.iter().for_each(|n| eat(*n as u64));
        t.values.iter().for_each(|v| eat(v.to_bits()));
    }
    format!("{h:016x}")
}

/// Compares what training will hold with the memory this process may use.
#[allow(clippy::too_many_arguments)]
fn budget(
    step: &circ::train::step::StepGraph,
    eval: &circ::ir::Graph,
    all_bytes: u64,
    train: &[circ::interp::HostTensor],
    valid: &[circ::interp::HostTensor],
    settings: &Settings,
    kind: circ::backend::BackendKind,
    checked: &circ::driver::Checked,
) -> Result<(), String> {
    use circ::budget::{data_bytes, param_bytes, sizes_from, Plan};
    let g = &step.graph;
    let rows = circ::train::run::rows(train) as u64;
    let batch = settings.batch.map_or(rows, |b| b.min(rows)).max(1);
    let shapes = |d: &[circ::interp::HostTensor]| d.iter().map(|t| t.shape.clone()).collect::<Vec<_>>();
    let mut plan =
        Plan { help: Some("a smaller --batch, fewer rows or smaller layers need less".into()), ..Plan::default() };
    plan.add("data", all_bytes + data_bytes(train) + data_bytes(valid) + data_bytes(train) / rows.max(1) * batch);
    // Parameters and optimizer state on the host: the current values, those carried back at
    // the end of an epoch, and the checkpoint's copy.
    let state: u64 = step.state.iter().map(|s| g.params[s.param].shape.iter().product::<u64>() * 8).sum();
    plan.add("parameters and optimizer state", (param_bytes(g, 1) + state) * 3);
    let sizes = sizes_from(g, &shapes(train), Some(batch));
    plan.add_graph(&format!("the training step at {batch} rows"), g, 0, kind, &sizes);
    let valid_rows = circ::train::run::rows(valid) as u64;
    if valid_rows > 0 {
        let sizes = sizes_from(eval, &shapes(valid), None);
        plan.add_graph(&format!("the validation at {valid_rows} rows"), eval, 1, kind, &sizes);
    }
    let sources = &checked.program.sources;
    let graphs = [g, eval];
    let describe = |k: usize, id| {
        let g = graphs[k];
        match g.node(id).op {
            // Optimizer state and counters have no source line: say what they are.
            circ::ir::Op::Input(i) => format!("{id} (optimizer state `{}`)", g.inputs[i].name),
            _ => circ::driver::describe_node(sources, g, id),
        }
    };
    plan.check(circ::budget::available().as_ref(), &describe)
}

//! The work behind each command, callable from tests and benchmarks (the CLI only prints).

use crate::check::{self, checked::CheckedModel};
use crate::diagnostic::{render_all, Diagnostic};
use crate::front::loader::{self, Program};
use std::path::{Path, PathBuf};

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

/// Checks the bytes of a file called `name`: like [`check_source`], and a file that is not UTF-8
/// gets a diagnostic at its first bad byte, as `circ check` reports it.
pub fn check_bytes(name: &str, bytes: Vec<u8>) -> Checked {
    let (program, diags) = loader::load_bytes(name, Some(Path::new(name).to_path_buf()), bytes);
    finish(program, diags)
}

/// Checks source text for an editor (`circ lsp`): like [`check_source`], with `path` (if any)
/// where imports are looked up, and the checker's index of names (empty when the file did not
/// parse: the checker does not run then).
pub fn check_for_editor(name: &str, path: Option<PathBuf>, text: &str) -> (Checked, check::index::Index) {
    let (program, diags) = loader::load_source(name, path, text);
    let (checked, index) = finish_with(program, diags, true);
    (checked, index.unwrap_or_default())
}

fn finish(program: Program, diagnostics: Vec<Diagnostic>) -> Checked {
    finish_with(program, diagnostics, false).0
}

fn finish_with(
    program: Program,
    mut diagnostics: Vec<Diagnostic>,
    indexed: bool,
) -> (Checked, Option<check::index::Index>) {
    // Names and shapes are only checked in files that parsed: errors after a syntax error mislead.
    if diagnostics.iter().any(Diagnostic::is_error) {
        return (Checked { program, diagnostics, models: Vec::new() }, None);
    }
    let (out, index) = if indexed {
        let (out, index) = check::check_with_index(&program);
        (out, Some(index))
    } else {
        (check::check(&program), None)
    };
    diagnostics.extend(out.diagnostics);
    (Checked { program, diagnostics, models: out.models }, index)
}

/// Lowers every model of a checked file to the graph IR.
pub fn lower(checked: &Checked, seed: u64) -> Vec<crate::ir::Graph> {
    checked.models.iter().map(|m| crate::ir::lower::lower(m, seed)).collect()
}

/// What `circ eval` reports: the loss, each loss term by its label, and each output's shape.
pub struct Evaluation {
    pub loss: f64,
    pub terms: Vec<(String, f64)>,
    pub outputs: Vec<(String, Vec<usize>)>,
    /// The first node (in execution order) whose value is NaN or infinite, with where it came from.
    pub first_non_finite: Option<String>,
}

/// Runs a graph's forward pass on the reference interpreter, in f64 or f32.
pub fn evaluate(
    g: &crate::ir::Graph,
    sources: &crate::source::SourceMap,
    data: &[crate::interp::HostTensor],
    params: &[Vec<f64>],
    f32: bool,
) -> Result<Evaluation, crate::interp::InterpError> {
    if f32 {
        evaluate_as::<f32>(g, sources, data, params)
    } else {
        evaluate_as::<f64>(g, sources, data, params)
    }
}

fn evaluate_as<T: crate::interp::Real>(
    g: &crate::ir::Graph,
    sources: &crate::source::SourceMap,
    data: &[crate::interp::HostTensor],
    params: &[Vec<f64>],
) -> Result<Evaluation, crate::interp::InterpError> {
    let values = crate::interp::run_all::<T>(g, data, params)?;
    let scalar = |id| values.get(id).map_or(f64::NAN, |t| t.data.first().map_or(f64::NAN, |x| x.to_f64()));
    let mut terms: Vec<(String, f64)> = values
        .order()
        .iter()
        .filter_map(|&id| {
            let label = g.node(id).label.as_ref()?;
            (label.starts_with("likelihood ") || label.starts_with("prior ")).then(|| (label.clone(), scalar(id)))
        })
        .collect();
    if let (true, Some(label)) = (terms.is_empty(), &g.loss_term) {
        terms.push((label.clone(), scalar(g.loss())));
    }
    let outputs = g
        .outputs
        .iter()
        .map(|o| (o.name.clone(), values.get(o.node).map(|t| t.shape.clone()).unwrap_or_default()))
        .collect();
    let first_non_finite = values.first_non_finite().map(|id| {
        let n = g.node(id);
        let at = n.span.map(|s| format!(" at {}", at_location(sources, s))).unwrap_or_default();
        format!("{id} ({}){at}", n.op.name())
    });
    Ok(Evaluation { loss: scalar(g.loss()), terms, outputs, first_non_finite })
}

/// [`evaluate`] on a compiled backend (`f32`): every loss term becomes an output of a copy of the
/// graph, so the backend computes and returns it; where a value is not finite, the reference
/// interpreter (in `f32`) finds the first node.
pub fn evaluate_on(
    g: &crate::ir::Graph,
    sources: &crate::source::SourceMap,
    data: &[crate::interp::HostTensor],
    params: &[Vec<f64>],
    backend: crate::backend::BackendKind,
) -> Result<Evaluation, crate::backend::RunError> {
    let mut with_terms = g.clone();
    let mut terms = Vec::new();
    for id in g.topo_order() {
        let Some(label) = g.node(id).label.as_ref() else { continue };
        if (label.starts_with("likelihood ") || label.starts_with("prior ")) && !terms.iter().any(|(l, _)| l == label) {
            let name = format!("term.{}", terms.len());
            with_terms.outputs.push(crate::ir::graph::Output { name: name.clone(), node: id });
            terms.push((label.clone(), name));
        }
    }
    let mut runner = crate::backend::Runner::new(backend, &with_terms).map_err(crate::backend::RunError::Backend)?;
    let out = runner.run(data, params, &[])?;
    let scalar = |name: &str| out.get(name).and_then(|t| t.data.first().copied()).unwrap_or(f64::NAN);
    let outputs = g
        .outputs
        .iter()
        .map(|o| (o.name.clone(), out.get(&o.name).map(|t| t.shape.clone()).unwrap_or_default()))
        .collect();
    let loss = scalar(&g.outputs[0].name);
    let first_non_finite = if loss.is_finite() {
        None
    } else {
        runner.first_non_finite(&with_terms, data, params, &[])?.map(|id| {
            let n = g.node(id);
            let at = n.span.map(|s| format!(" at {}", at_location(sources, s))).unwrap_or_default();
            format!("{id} ({}){at}", n.op.name())
        })
    };
    let mut terms: Vec<(String, f64)> = terms.iter().map(|(l, n)| (l.clone(), scalar(n))).collect();
    if let (true, Some(label)) = (terms.is_empty(), &g.loss_term) {
        terms.push((label.clone(), loss));
    }
    Ok(Evaluation { loss, terms, outputs, first_non_finite })
}

/// Optimizes a graph in place and describes it: the graph before, the passes that changed it,
/// node counts per op before and after, the graph after, and its elementwise fusion groups.
pub fn optimize_report(g: &mut crate::ir::Graph, sources: &crate::source::SourceMap) -> String {
    use crate::ir::print;
    use std::fmt::Write;
    let mut s = String::new();
    let before_counts = print::op_counts(g);
    let before_len = g.len();
    let _ = write!(s, "-- before passes ({before_len} nodes)\n{}", print::text(g, Some(sources)));
    let log = crate::passes::optimize(g);
    let mut changed: Vec<&str> = log.iter().filter(|(_, c)| *c).map(|(n, _)| *n).collect();
    changed.dedup();
    let after_counts = print::op_counts(g);
    let _ = writeln!(
        s,
        "-- passes: {} ({} rounds); {before_len} -> {} nodes",
        if changed.is_empty() { "nothing changed".to_string() } else { changed.join(", ") },
        log.len() / crate::passes::PIPELINE.len(),
        g.len()
    );
    let ops: std::collections::BTreeSet<&String> = before_counts.keys().chain(after_counts.keys()).collect();
    for op in ops {
        let (b, a) = (before_counts.get(op).copied().unwrap_or(0), after_counts.get(op).copied().unwrap_or(0));
        let _ = writeln!(s, "   {op:<12} {b:>4} -> {a:>4}");
    }
    let _ = write!(s, "-- after passes ({} nodes)\n{}", g.len(), print::text(g, Some(sources)));
    let groups = crate::passes::fusion::groups(g);
    let _ = write!(s, "-- fusion groups ({})\n{}", groups.len(), crate::passes::fusion::describe(g, &groups));
    s
}

/// Which derivatives to add to a model's graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Derivatives {
    None,
    /// `grad.<param>` outputs.
    Gradient,
    /// `grad.<param>` and `curv.<param>` (bprop2).
    Curvature(crate::autodiff::bprop2::Variant),
    /// `grad.<param>` and `hvp.<param>`, with inputs `v.<param>`.
    Hvp,
}

/// The optimized graph of a model with the requested derivatives.
pub fn differentiated(g: &crate::ir::Graph, what: Derivatives) -> crate::ir::Graph {
    let mut g = g.clone();
    crate::passes::optimize(&mut g);
    match what {
        Derivatives::None => return g,
        Derivatives::Gradient => {
            crate::autodiff::add_param_gradients(&mut g);
        }
        Derivatives::Curvature(v) => {
            crate::autodiff::bprop2::add_curvature(&mut g, v);
        }
        Derivatives::Hvp => {
            crate::autodiff::add_hvp(&mut g);
        }
    }
    crate::passes::optimize(&mut g);
    g
}

/// `circ graph --stats`: arithmetic and memory of the forward, gradient and bprop2 graphs, with
/// every symbolic size set to `n`, and the CPU backend's kernels and planned peak memory for each.
pub fn stats(g: &crate::ir::Graph, n: f64) -> String {
    use crate::autodiff::bprop2::Variant;
    use crate::ir::cost::cost;
    use std::fmt::Write;
    let rows = [
        ("forward", Derivatives::None),
        ("gradient", Derivatives::Gradient),
        ("bprop2 (Gauss-Newton)", Derivatives::Curvature(Variant::GaussNewton)),
        ("bprop2 (full)", Derivatives::Curvature(Variant::Full)),
        ("bprop2 (GN, softmax)", Derivatives::Curvature(Variant::GaussNewtonSoftmax)),
    ];
    // Kernels and the planned peak memory of the CPU backend for each graph.
    let planned = |g: &crate::ir::Graph| {
        let p = crate::kernel::partition(g);
        let plan = crate::kernel::plan(g, &p, |d| match d {
            crate::check::types::Dim::Known(k) => k,
            _ => n as u64,
        });
        (p.kernels.len(), plan.peak_bytes as f64 / (1u64 << 20) as f64)
    };
    let costs: Vec<(&str, crate::ir::cost::Cost, (usize, f64))> = rows
        .iter()
        .map(|(name, d)| {
            let h = differentiated(g, *d);
            (*name, cost(&h, n), planned(&h))
        })
        .collect();
    let grad = costs[1].1;
    let mut s = format!(
        "{:<22} {:>6} {:>14} {:>14} {:>9} {:>9} {:>8} {:>9}\n",
        "graph", "nodes", "flops", "values", "flops/g", "values/g", "kernels", "peak MiB"
    );
    for (name, c, (kernels, peak)) in &costs {
        let _ = writeln!(
            s,
            "{name:<22} {:>6} {:>14.0} {:>14.0} {:>9.2} {:>9.2} {kernels:>8} {peak:>9.2}",
            c.nodes,
            c.flops,
            c.values,
            c.flops / grad.flops,
            c.values / grad.values
        );
    }
    s
}

/// The exact Hessian of the loss with respect to all parameters (flattened in parameter order),
/// one Hessian-vector product per column. Meant for small models: `n` columns cost `n` runs.
pub fn hessian(
    g: &crate::ir::Graph,
    data: &[crate::interp::HostTensor],
    params: &[Vec<f64>],
) -> Result<(Vec<String>, Vec<Vec<f64>>), crate::interp::InterpError> {
    let h = differentiated(g, Derivatives::Hvp);
    let sizes: Vec<usize> = g.params.iter().map(|p| p.shape.iter().product::<u64>() as usize).collect();
    let mut names = Vec::new();
    for (p, &k) in g.params.iter().zip(&sizes) {
        for j in 0..k {
            names.push(if p.shape.is_empty() { p.name.clone() } else { format!("{}[{j}]", p.name) });
        }
    }
    let mut columns = Vec::new();
    for (pi, &k) in sizes.iter().enumerate() {
        for j in 0..k {
            let mut v: Vec<Vec<f64>> = sizes.iter().map(|k| vec![0.0; *k]).collect();
            v[pi][j] = 1.0;
            let out = crate::interp::run_with::<f64>(&h, data, params, &v)?;
            let col: Vec<f64> = g
                .params
                .iter()
                .flat_map(|p| out.get(&format!("hvp.{}", p.name)).map(|t| t.data.clone()).unwrap_or_default())
                .collect();
            columns.push(col);
        }
    }
    Ok((names, columns))
}

/// Parameter values from a safetensors file, matched to the graph's parameters by name. Every
/// parameter must be present with its shape; extra tensors are an error too (a typo would
/// otherwise silently leave a parameter at its initial value).
pub fn params_from_file(g: &crate::ir::Graph, path: &Path) -> Result<Vec<Vec<f64>>, crate::error::Error> {
    let (tensors, _) = circ_runtime::files::safetensors::read(path)?;
    Ok(tensors_for(g, &tensors, |p| p.to_string(), &path.display().to_string())?)
}

/// Refuses parameter values that are not finite, or with `f32` set, that do not fit in an `f32`:
/// the first such value, by parameter and element.
pub fn check_param_values(g: &crate::ir::Graph, values: &[Vec<f64>], file: &str, f32: bool) -> Result<(), String> {
    for (p, v) in g.params.iter().zip(values) {
        if let Some(i) = v.iter().position(|x| !x.is_finite() || (f32 && x.abs() > f32::MAX as f64)) {
            let why = if v[i].is_finite() {
                format!("does not fit in f32 (at most ±{:e}), which this backend computes in", f32::MAX)
            } else {
                "is not a finite number".to_string()
            };
            return Err(format!("{file}: parameter `{}` element {i} is {}, which {why}", p.name, v[i]));
        }
    }
    Ok(())
}

/// Values for each parameter of `g` from named tensors; `key` maps a parameter name to its
/// tensor name.
pub fn tensors_for(
    g: &crate::ir::Graph,
    tensors: &[circ_runtime::files::safetensors::NamedTensor],
    key: impl Fn(&str) -> String,
    file: &str,
) -> Result<Vec<Vec<f64>>, String> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for p in &g.params {
        let name = key(&p.name);
        let shape: Vec<usize> = p.shape.iter().map(|n| *n as usize).collect();
        match circ_runtime::files::safetensors::find(tensors, &name) {
            None => problems.push(format!("no tensor `{name}` (shape {shape:?})")),
            Some(t) if t.shape != shape => {
                problems.push(format!("tensor `{name}` has shape {:?}, the parameter has {shape:?}", t.shape))
            }
            Some(t) => out.push(t.values.clone()),
        }
    }
    let known: Vec<String> = g.params.iter().map(|p| key(&p.name)).collect();
    for t in tensors {
        // Checkpoints of `circ train` also hold optimizer state, under `opt.`, and the posterior
        // precisions of the last epoch (`train::posterior`).
        if !known.contains(&t.name)
            && !t.name.starts_with("opt.")
            && !t.name.starts_with(crate::train::posterior::PREFIX)
        {
            problems.push(format!("tensor `{}` is not a parameter of the model", t.name));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(format!("{file}: {}", problems.join("; ")))
    }
}

/// What `circ grad` computes at the given parameters, one tensor per parameter under its name.
pub fn parameter_derivatives(
    g: &crate::ir::Graph,
    what: Derivatives,
    data: &[crate::interp::HostTensor],
    params: &[Vec<f64>],
    direction: &[Vec<f64>],
    sources: &crate::source::SourceMap,
    backend: crate::backend::BackendKind,
) -> Result<Vec<circ_runtime::files::safetensors::NamedTensor>, crate::backend::RunError> {
    let d = differentiated(g, what);
    let prefix = match what {
        Derivatives::Curvature(_) => "curv",
        Derivatives::Hvp => "hvp",
        Derivatives::Gradient | Derivatives::None => "grad",
    };
    let inputs = if what == Derivatives::Hvp { direction } else { &[] };
    // The interpreter keeps every value (to say where a non-finite one started); a compiled
    // backend returns the outputs, and the interpreter in f32 is asked only when one is not finite.
    let (values, computed) = if backend == crate::backend::BackendKind::Interp {
        (Some(crate::interp::run_all_with::<f64>(&d, data, params, inputs)?), None)
    } else {
        let mut runner = crate::backend::Runner::new(backend, &d).map_err(crate::backend::RunError::Backend)?;
        (None, Some(runner.run(data, params, inputs)?))
    };
    let mut tensors = Vec::with_capacity(g.params.len());
    for p in &g.params {
        let shape: Vec<usize> = p.shape.iter().map(|n| *n as usize).collect();
        let name = format!("{prefix}.{}", p.name);
        let node = d.output(&name);
        let values_of = match (&values, &computed) {
            (Some(all), _) => node.and_then(|n| all.get(n)).map(|t| t.data.clone()).unwrap_or_default(),
            (_, Some(out)) => out.get(&name).map(|t| t.data.clone()).unwrap_or_default(),
            _ => Vec::new(),
        };
        // Nothing non-finite is written: name the parameter, the element and where it started.
        if let Some((k, v)) = first_non_finite_element(&values_of) {
            let behind = match values {
                Some(all) => node.and_then(|n| all.first_non_finite_behind(&d, n)),
                // The backend's precision: where f32 went non-finite.
                None => {
                    let all = crate::interp::run_all_with::<f32>(&d, data, params, inputs)?;
                    node.and_then(|n| all.first_non_finite_behind(&d, n))
                }
            };
            let origin = behind.map_or_else(|| "unknown".to_string(), |id| describe_node(sources, &d, id));
            return Err(crate::backend::RunError::Interp(crate::interp::InterpError::Graph(format!(
                "the {prefix} of `{}` is {v} at element {}; the first non-finite value is {origin}",
                p.name,
                element_index(&shape, k)
            ))));
        }
        tensors.push(circ_runtime::files::safetensors::NamedTensor { name: p.name.clone(), shape, values: values_of });
    }
    Ok(tensors)
}

/// The first NaN or infinity of `values`: its index and value.
pub fn first_non_finite_element(values: &[f64]) -> Option<(usize, f64)> {
    values.iter().position(|x| !x.is_finite()).map(|k| (k, values[k]))
}

/// A row-major index as the element's position, `[i, j]` (`[]` for a scalar).
pub fn element_index(shape: &[usize], mut flat: usize) -> String {
    let mut at = vec![0; shape.len()];
    for (a, n) in at.iter_mut().zip(shape).rev() {
        let n = (*n).max(1);
        *a = flat % n;
        flat /= n;
    }
    format!("[{}]", at.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "))
}

/// An update rule written as in a `.circ` file (`adam(lr = 1e-3)`), checked by the checker.
/// The text is one update rule and nothing else: `adam, epochs = 1` is refused, not read as a
/// rule and a setting.
pub fn parse_update_rule(text: &str) -> Result<crate::check::checked::UpdateRule, String> {
    const PREFIX: &str = "model optimizer {\n    train { optimizer = ";
    let src = format!("{PREFIX}{text} }}\n}}\n");
    let checked = check_source("--optimizer", &src);
    if checked.has_errors() {
        return Err(flag_diagnostic(&checked.diagnostics, PREFIX.len(), text));
    }
    let only_a_rule = checked.models.len() == 1
        && checked.models.iter().all(|m| {
            let t = &m.train;
            m.params.is_empty()
                && m.data.is_empty()
                && t.epochs.is_none()
                && t.batch.is_none()
                && t.valid.is_none()
                && t.seed.is_none()
        });
    match checked.models.first().and_then(|m| m.train.optimizer.clone()) {
        Some(r) if only_a_rule => Ok(r),
        _ => Err(format!(
            "error: `{text}` is more than one update rule: the optimizer flag takes one rule, such as `adam(lr = 1e-3)`\n  help: other settings have flags of their own: --epochs, --batch, --valid-fraction, --seed\n"
        )),
    }
}

/// The first error about `text`, which sits at byte `offset` of a wrapper model, rendered with
/// the flag's text as its source (`--optimizer:1:9`): the wrapper is never shown, and the errors
/// that follow the first one (the parser recovering inside the wrapper) are dropped.
fn flag_diagnostic(diagnostics: &[Diagnostic], offset: usize, text: &str) -> String {
    use crate::source::{FileId, SourceMap, Span};
    let Some(first) = diagnostics.iter().filter(|d| d.is_error()).min_by_key(|d| d.primary_span()) else {
        return String::new();
    };
    let mut sources = SourceMap::new();
    let file = sources.add("--optimizer", None, text);
    let mut d = first.clone();
    if first.primary_span().is_some_and(|s| s.start as usize >= offset + text.len()) {
        d.message = "unexpected end of --optimizer".to_string();
    }
    // A span past the flag's text (an unclosed bracket found at the wrapper's `}`) points at its end.
    let clamp = |at: u32| (at as usize).saturating_sub(offset).min(text.len());
    d.labels.retain(|l| l.span.file == FileId(0));
    for l in &mut d.labels {
        l.span = Span::new(file, clamp(l.span.start), clamp(l.span.end));
    }
    d.notes.push(format!("`{text}` is not an update rule: --optimizer takes one, such as `adam(lr = 1e-3)`"));
    d.render(&sources, false)
}

/// The `train` settings given as flags, checked by the same code as a model's `train` block
/// (`epochs` and `batch` at least 1, `valid` in [0, 1)): one validation for both sources.
/// `Err` holds the rendered diagnostics.
pub fn check_train_flags(
    epochs: Option<u64>,
    batch: Option<u64>,
    valid: Option<f64>,
    seed: Option<u64>,
) -> Result<(), String> {
    if let Some(v) = valid.filter(|v| !v.is_finite()) {
        return Err(format!(
            "error: --valid-fraction is {v}: the held-out fraction is a number in [0, 1)\n  help: for a fifth of the data, write `--valid-fraction 0.2`\n"
        ));
    }
    let mut settings = Vec::new();
    for (key, value) in [("epochs", epochs), ("batch", batch), ("seed", seed)] {
        if let Some(n) = value {
            settings.push(format!("{key} = {n}"));
        }
    }
    if let Some(v) = valid {
        settings.push(format!("valid = {v:?}"));
    }
    if settings.is_empty() {
        return Ok(());
    }
    let src = format!("model flags {{\n    train {{ {} }}\n}}\n", settings.join(", "));
    let checked = check_source("command-line flags", &src);
    if checked.has_errors() {
        return Err(checked.render(false));
    }
    Ok(())
}

/// Data bound to a graph's inputs for prediction: data the graph no longer reads (the observed
/// values, which only the loss used) may be absent from the file and are fed as zeros.
pub fn bind_for_prediction(
    g: &crate::ir::Graph,
    table: &circ_runtime::files::csv::Table,
    f32: bool,
) -> Result<Vec<crate::interp::HostTensor>, String> {
    let used: Vec<bool> =
        (0..g.data.len()).map(|i| g.node_ids().iter().any(|n| g.node(*n).op == crate::ir::Op::Data(i))).collect();
    let mut out = Vec::new();
    for (i, d) in g.data.iter().enumerate() {
        if used[i] {
            // Bound with the whole graph, so the label checks see the ops that read datum `i`.
            out.push(crate::data::bind_one(g, i, table, f32)?);
        } else {
            let width: usize = d.shape[1..]
                .iter()
                .map(|x| if let crate::check::types::Dim::Known(n) = x { *n as usize } else { 1 })
                .product();
            let mut shape = vec![table.rows];
            shape.extend(d.shape[1..].iter().map(|x| {
                if let crate::check::types::Dim::Known(n) = x {
                    *n as usize
                } else {
                    1
                }
            }));
            out.push(crate::interp::HostTensor { shape, values: vec![0.0; table.rows * width] });
        }
    }
    Ok(out)
}

/// Where a node came from, with paths as given: `m.circ:8:14`, then ` via model.circ:3:9` for a
/// node inlined from a circuit.
fn at_location(sources: &crate::source::SourceMap, origin: crate::ir::Origin) -> String {
    match origin.via {
        Some(via) => format!("{} via {}", sources.location(origin.span), sources.location(via)),
        None => sources.location(origin.span).to_string(),
    }
}

/// A node for people: its id and op, and the source line it came from (`%5 (log) from
/// m.circ:8:14: `let la = log(a)``).
pub fn describe_node(sources: &crate::source::SourceMap, g: &crate::ir::Graph, id: crate::ir::NodeId) -> String {
    let n = g.node(id);
    match n.span {
        Some(origin) => {
            let loc = sources.location(origin.span);
            let line = sources.file(origin.span.file).text.lines().nth(loc.line - 1).unwrap_or("").trim();
            let via = origin.via.map(|v| format!(" via {}", sources.location(v))).unwrap_or_default();
            format!("{id} ({}) from {loc}: `{line}`{via}", n.op.name())
        }
        None => format!("{id} ({})", n.op.name()),
    }
}

/// Whether every named output of `g` is computed row by row: row `r` of each output (its first
/// axis, the data's example axis) depends only on row `r` of the data, or on no data at all. Then
/// the graph may run on a few rows at a time (`circ run` streams its predictions so) and give the
/// same values. Any op that mixes rows (a reduction or product over the example axis, a slice
/// or concatenation along it, the example axis moved elsewhere) makes it `false`.
pub fn rows_independent(g: &crate::ir::Graph) -> bool {
    use crate::check::types::Dim;
    use crate::ir::Op;
    let Some(Dim::Sym(row)) = g.data.first().and_then(|d| d.shape.first().copied()) else { return false };
    if g.data.iter().any(|d| d.shape.first() != Some(&Dim::Sym(row))) {
        return false;
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        /// No data: the same for every row.
        Free,
        /// Row `r` from row `r` of the data: the example axis first and nowhere else.
        Rows,
        Mixed,
    }
    let has_row = |shape: &[Dim]| shape.contains(&Dim::Sym(row));
    let rows_first = |shape: &[Dim]| shape.first() == Some(&Dim::Sym(row)) && !shape[1..].contains(&Dim::Sym(row));
    let mut kind: std::collections::HashMap<crate::ir::NodeId, Kind> = std::collections::HashMap::new();
    for id in g.topo_order() {
        let n = g.node(id);
        let ops: Vec<Kind> = g.operands(id).iter().map(|o| kind.get(o).copied().unwrap_or(Kind::Mixed)).collect();
        let operand_shapes: Vec<&[Dim]> = g.operands(id).iter().map(|o| g.node(*o).shape.as_slice()).collect();
        let k = if ops.contains(&Kind::Mixed) {
            Kind::Mixed
        } else if !ops.contains(&Kind::Rows) {
            match n.op {
                Op::Data(_) if rows_first(&n.shape) => Kind::Rows,
                Op::Data(_) => Kind::Mixed,
                _ if has_row(&n.shape) && !matches!(n.op, Op::Expand) => Kind::Mixed,
                Op::Expand if has_row(&n.shape) => {
                    if rows_first(&n.shape) {
                        Kind::Rows
                    } else {
                        Kind::Mixed
                    }
                }
                _ => Kind::Free,
            }
        } else if !rows_first(&n.shape) {
            Kind::Mixed
        } else {
            // Some operand holds rows; the result has the example axis first.
            let aligned = ops
                .iter()
                .zip(&operand_shapes)
                .all(|(k, s)| *k == Kind::Free || (rows_first(s) && s.len() == n.shape.len()));
            let ok = match &n.op {
                Op::Unary(_) | Op::Binary(_) | Op::Cast | Op::Expand => aligned,
                // Along the last axis, which must not be the example axis.
                Op::KMax { .. } | Op::KMaxMask { .. } => aligned && n.shape.len() >= 2,
                Op::MatMul => {
                    let (a, b) = (ops[0], ops[1]);
                    (a == Kind::Rows && b == Kind::Free && operand_shapes[0].len() >= 2)
                        || (a == Kind::Rows
                            && b == Kind::Rows
                            && operand_shapes[0].len() >= 3
                            && operand_shapes[1].len() == operand_shapes[0].len())
                }
                Op::Reduce { axes, .. } => !axes.contains(&0),
                Op::LogSumExp { axis, .. } => *axis != 0,
                Op::Reshape | Op::Slice { .. } | Op::OneHot { .. } => operand_shapes[0].first() == Some(&Dim::Sym(row)),
                Op::Transpose { perm } => perm.first() == Some(&0),
                Op::Concat { axis } => *axis != 0 && ops.iter().all(|k| *k == Kind::Rows),
                _ => false,
            };
            if ok {
                Kind::Rows
            } else {
                Kind::Mixed
            }
        };
        kind.insert(id, k);
    }
    g.outputs.iter().all(|o| kind.get(&o.node).is_some_and(|k| *k != Kind::Mixed))
}

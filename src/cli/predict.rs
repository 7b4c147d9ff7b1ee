//! `circ run`: predictions for every data row, as CSV. A normal or laplace observation gives
//! the mean and the variance (σ², or 2b²); categorical gives the most likely class and every
//! class probability; bernoulli the probability of 1. `--values h,z` adds the named `let` values
//! of the model, flattened per row, as columns `h.0 h.1 …`. `--uncertainty laplace` adds the
//! parameters' uncertainty from the checkpoint's posterior precisions (`train::posterior`): to each
//! variance (and a column `.param_variance`), and to class probabilities (probit approximation).

use super::{err, Kind};
use circ::ir::graph::{Likelihood, Scale, Term};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Which uncertainty `circ run` reports beside the likelihood's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Uncertainty {
    /// The diagonal Laplace posterior stored by `circ train`, by the delta method.
    Laplace,
}

#[allow(clippy::too_many_arguments)]
pub fn run(
    file: &Path,
    params: &Path,
    data: &Path,
    out_path: Option<&PathBuf>,
    backend: circ::backend::BackendKind,
    values: &[String],
    uncertainty: Option<Uncertainty>,
    color: bool,
) -> ExitCode {
    if let Some(o) = out_path {
        let npy = super::npy_files(data);
        let mut inputs = vec![("the model", file), ("--params", params), ("--data", data)];
        inputs.extend(npy.iter().map(|p| ("--data", p.as_path())));
        if let Err(code) = super::distinct(&inputs, &[("--out", o)]).and_then(|()| super::writable(&[("--out", o)])) {
            return code;
        }
    }
    let checked = match crate::load(file, color) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if checked.models.len() != 1 {
        err(&format!("error: {} must define exactly one model, it defines {}\n", file.display(), checked.models.len()));
        return super::exit(Kind::Input);
    }
    let model = &checked.models[0];
    let wanted = match named_values(model, values) {
        Ok(w) => w,
        Err(m) => {
            err(&format!("error: {m}\n"));
            return super::exit(Kind::Input);
        }
    };
    let mut g = circ::ir::lower::lower_values(model, 0, &wanted);
    // Keep only what the predictions need: the loss (and the observed data it reads) go.
    g.outputs.retain(|o| o.name != "loss");
    if g.outputs.is_empty() {
        err("error: the model predicts nothing: it has no observations\n");
        return super::exit(Kind::Input);
    }
    circ::passes::dce::run(&mut g);
    let values = match circ::driver::params_from_file(&g, params) {
        Ok(v) => v,
        Err(e) => return super::fail(&e),
    };
    // Every backend but the reference interpreter computes in f32.
    let f32 = !matches!(backend, circ::backend::BackendKind::Interp);
    // `.npy` data (a directory of `<name>.npy`, or one file) as train, eval and grad read them.
    let npy = circ::data::is_npy(data);
    let table = if npy {
        None
    } else {
        match circ::data::read_csv_for_prediction(&g, data) {
            Ok(t) => Some(t),
            Err(e) => return super::fail(&e.into()),
        }
    };
    if let Err(e) = circ::driver::check_param_values(&g, &values, &params.display().to_string(), f32) {
        err(&format!("error: {e}\n"));
        return super::exit(Kind::Input);
    }
    let feed = match &table {
        Some(table) => circ::driver::bind_for_prediction(&g, table, f32).map_err(super::Error::from),
        None => circ::data::load_npy_for_prediction(&g, data, f32),
    };
    let feed = match feed {
        Ok(f) => f,
        Err(e) => return super::fail(&e),
    };
    let mut laplace = match uncertainty {
        None => None,
        Some(Uncertainty::Laplace) => match laplace_setup(&g, params, backend) {
            Ok(l) => Some(l),
            Err(e) => return super::fail(&e),
        },
    };
    // Rows are run and written a block at a time when each prediction row depends only on its
    // own data row (no op mixes rows): memory stays bounded by the block, not the file.
    let rows = match &table {
        Some(t) => t.rows,
        None => feed.first().and_then(|t| t.shape.first().copied()).unwrap_or(0),
    };
    let block = if circ::driver::rows_independent(&g) { BLOCK_ROWS } else { rows.max(1) };
    // Before the backend's buffers are allocated: does a block of rows fit?
    let fits = {
        let mut plan = circ::budget::Plan::default();
        plan.add("data", circ::budget::data_bytes(&feed));
        plan.add("parameters", circ::budget::param_bytes(&g, 1));
        let shapes: Vec<Vec<usize>> = feed.iter().map(|t| t.shape.clone()).collect();
        let at_once = block.min(rows) as u64;
        let sizes = circ::budget::sizes_from(&g, &shapes, Some(at_once));
        plan.add_graph(&format!("the predictions of {at_once} rows at once"), &g, 0, backend, &sizes);
        let sources = &checked.program.sources;
        plan.check(circ::budget::available().as_ref(), &|_, id| circ::driver::describe_node(sources, &g, id))
    };
    if let Err(e) = fits {
        err(&format!("error: {e}\n"));
        return super::exit(Kind::Input);
    }
    let mut runner = match circ::backend::Runner::new(backend, &g) {
        Ok(r) => r,
        Err(circ::backend::cpu::BackendError::Device(m)) => {
            // No OpenCL device (or its compiler refused the program): nothing about the model.
            err(&format!("error: {m}\n"));
            return super::exit(Kind::Usage);
        }
        Err(e) => {
            err(&format!("error: the {} backend cannot run this model: {e}\n", backend.name()));
            return super::exit(Kind::Input);
        }
    };
    let to = out_path.map_or(Path::new("-"), |p| p.as_path());
    let mut failed: Option<String> = None;
    let written = circ_runtime::files::output::write_with(to, |w| {
        let mut line = String::new();
        let mut start = 0;
        while start < rows.max(1) {
            let end = (start + block).min(rows);
            let part: Vec<usize> = (start..end).collect();
            let selected;
            let feed_part: &[circ::interp::HostTensor] = if block >= rows {
                &feed
            } else {
                selected = circ::train::run::select(&feed, &part);
                &selected
            };
            let res = match runner.run(feed_part, &values, &[]) {
                Ok(r) => r,
                Err(e) => {
                    failed = Some(e.to_string());
                    return Err(std::io::Error::other("the predictions failed"));
                }
            };
            let mut added = Vec::new();
            if let Some((precision, jacobians)) = laplace.as_mut() {
                for j in jacobians.iter_mut() {
                    match j.variance(feed_part, &values, precision) {
                        Ok(v) => added.push((j.prediction.clone(), v)),
                        Err(e) => {
                            failed = Some(e);
                            return Err(std::io::Error::other("the predictions failed"));
                        }
                    }
                }
            }
            let added = laplace.is_some().then_some(added.as_slice());
            let (mut header, mut columns) = prediction_columns(&g, &res, end - start, added);
            value_columns(&wanted, &res, end - start, &mut header, &mut columns);
            if start == 0 {
                writeln!(w, "{}", header.join(","))?;
            }
            for r in 0..end - start {
                line.clear();
                for (k, c) in columns.iter().enumerate() {
                    let sep = if k == 0 { "" } else { "," };
                    let _ = write!(line, "{sep}{}", super::number(c.get(r).copied().unwrap_or(f64::NAN), f32));
                }
                line.push('\n');
                w.write_all(line.as_bytes())?;
            }
            start = end.max(start + 1);
        }
        Ok(())
    });
    if let Some(e) = failed {
        err(&format!("error: {e}\n"));
        return super::exit(Kind::Input);
    }
    if let Err(e) = written {
        return super::output_failed(e);
    }
    if !circ_runtime::files::output::is_stdout(to) {
        err(&format!("wrote {rows} predictions to {}\n", to.display()));
    }
    ExitCode::SUCCESS
}

/// For `--uncertainty laplace`: the posterior precisions stored in the checkpoint `params`, and
/// the Jacobian of every prediction (compiled for `backend`, run one row at a time).
fn laplace_setup(
    g: &circ::ir::Graph,
    params: &Path,
    backend: circ::backend::BackendKind,
) -> Result<(Vec<Vec<f64>>, Vec<circ::train::posterior::Jacobian>), super::Error> {
    let (tensors, _) = circ_runtime::files::safetensors::read(params)?;
    let precision = circ::train::posterior::precision_from(g, &tensors, &params.display().to_string())?;
    if !circ::driver::rows_independent(g) {
        return Err(super::Error::input(
            "--uncertainty laplace needs predictions computed row by row, and this model mixes rows (a reduction, \
             product or slice over the example axis)",
        ));
    }
    let mut jacobians = Vec::new();
    for term in &g.terms {
        let Term::Likelihood { prediction, .. } = term else { continue };
        if g.output(prediction).is_none() {
            continue;
        }
        let j = circ::train::posterior::Jacobian::new(g, prediction, backend)
            .map_err(|e| super::Error::input(format!("--uncertainty laplace: {e}")))?;
        jacobians.push(j);
    }
    Ok((precision, jacobians))
}

/// The `let` values `names` asks for (a list as `--values` takes it, names separated by commas),
/// each with one row per example: its first axis is the model's row axis, the first axis of its
/// data. An unknown name gets the closest value's name as a suggestion.
fn named_values<'m>(
    model: &'m circ::check::checked::CheckedModel,
    names: &[String],
) -> Result<Vec<&'m circ::check::checked::NamedValue>, String> {
    use circ::check::types::{Dim, ShowTy};
    let row = model.data.first().and_then(|d| d.ty.dims.first().copied()).filter(|d| matches!(d, Dim::Sym(_)));
    let mut out: Vec<&circ::check::checked::NamedValue> = Vec::new();
    for name in names.iter().flat_map(|n| n.split(',')).map(str::trim) {
        if name.is_empty() {
            return Err("--values: an empty name (the list is NAME[,NAME…])".into());
        }
        let Some(v) = model.values.iter().find(|v| v.name == name) else {
            let mut m = format!("--values: the model `{}` has no `let` value `{name}`", model.name);
            let kind = if model.data.iter().any(|d| d.name == name) {
                Some("data")
            } else if model.params.iter().any(|p| p.name == name) {
                Some("a parameter")
            } else {
                None
            };
            if let Some(kind) = kind {
                m.push_str(&format!(" (`{name}` is {kind}; bind it with `let` to write it)"));
            } else if let Some(c) = circ::check::suggest::closest(name, model.values.iter().map(|v| v.name.as_str())) {
                m.push_str(&format!("; did you mean `{c}`?"));
            } else if model.values.is_empty() {
                m.push_str("; it has none");
            } else {
                let all: Vec<String> = model.values.iter().map(|v| format!("`{}`", v.name)).collect();
                m.push_str(&format!("; its values are {}", all.join(", ")));
            }
            return Err(m);
        };
        let ty = &model.node(v.node).ty;
        if row.is_none() || ty.dims.first().copied() != row {
            let axis = match row {
                Some(r) => format!("the row axis {}", circ::check::types::ShowDim(r, model)),
                None => "a row axis (the model's data has no symbolic first axis)".to_string(),
            };
            return Err(format!(
                "--values: `{name}` has shape {}, not one row per example: its first axis is not {axis}",
                ShowTy(ty, model)
            ));
        }
        if !out.iter().any(|o| o.name == v.name) {
            out.push(v);
        }
    }
    Ok(out)
}

/// Appends the columns `NAME.0 NAME.1 …` of each value: its entries of each row, flattened in
/// row-major order.
fn value_columns(
    wanted: &[&circ::check::checked::NamedValue],
    res: &circ::interp::Outputs<f64>,
    rows: usize,
    header: &mut Vec<String>,
    columns: &mut Vec<Vec<f64>>,
) {
    for v in wanted {
        let Some(t) = res.get(&circ::ir::lower::value_output(&v.name)) else { continue };
        let width = t.shape.iter().skip(1).product::<usize>();
        for k in 0..width {
            header.push(format!("{}.{k}", v.name));
            columns.push((0..rows).map(|r| t.data.get(r * width + k).copied().unwrap_or(f64::NAN)).collect());
        }
    }
}

/// Rows run at once when predictions are computed row by row.
const BLOCK_ROWS: usize = 4096;

/// The CSV header and columns of the predictions of `rows` rows. `laplace` holds, by prediction
/// name, the variance the parameters add to each entry (row-major), with `--uncertainty laplace`.
fn prediction_columns(
    g: &circ::ir::Graph,
    res: &circ::interp::Outputs<f64>,
    rows: usize,
    laplace: Option<&[(String, Vec<f64>)]>,
) -> (Vec<String>, Vec<Vec<f64>>) {
    // One column block per observation.
    let mut header: Vec<String> = Vec::new();
    let mut columns: Vec<Vec<f64>> = Vec::new();
    for term in &g.terms {
        let Term::Likelihood { data: d, dist, prediction } = term else { continue };
        let name = &g.data[*d].name;
        let Some(pred) = res.get(prediction) else { continue };
        let added = laplace.and_then(|l| l.iter().find(|(p, _)| p == prediction)).map(|(_, v)| v.as_slice());
        // A prediction may be broadcast (a scalar mean): spread it over the rows.
        let per_row = |v: &[f64]| -> Vec<f64> {
            (0..rows).map(|r| v[if v.len() == 1 { 0 } else { r.min(v.len() - 1) }]).collect()
        };
        match dist {
            Likelihood::Normal { scale } | Likelihood::Laplace { scale } => {
                let normal = matches!(dist, Likelihood::Normal { .. });
                let width = pred.data.len() / rows.max(1);
                if width > 1 {
                    for k in 0..width {
                        header.push(format!("{name}_{k}.mean"));
                        columns.push((0..rows).map(|r| pred.data[r * width + k]).collect());
                    }
                } else {
                    header.push(format!("{name}.mean"));
                    columns.push(per_row(&pred.data));
                }
                let s: Vec<f64> = match scale {
                    Scale::Const(c) => vec![*c; rows],
                    Scale::Output(o) => res.get(o).map(|t| per_row(&t.data)).unwrap_or_default(),
                };
                let own: Vec<f64> = s.iter().map(|s| if normal { s * s } else { 2.0 * s * s }).collect();
                match added {
                    None => {
                        header.push(format!("{name}.variance"));
                        columns.push(own);
                    }
                    // The parameters' variance differs per entry: one total per entry.
                    Some(v) => {
                        let w = v.len() / rows.max(1);
                        let label = |k: usize| if w > 1 { format!("{name}_{k}") } else { name.to_string() };
                        for k in 0..w {
                            header.push(format!("{}.variance", label(k)));
                            columns.push((0..rows).map(|r| own[r] + v[r * w + k]).collect());
                        }
                        for k in 0..w {
                            header.push(format!("{}.param_variance", label(k)));
                            columns.push((0..rows).map(|r| v[r * w + k]).collect());
                        }
                    }
                }
            }
            Likelihood::Categorical => {
                let k = pred.data.len() / rows.max(1);
                let mut class = Vec::new();
                let mut probs = vec![Vec::new(); k];
                for (r, row) in pred.data.chunks(k.max(1)).enumerate() {
                    let p: Vec<f64> = match added {
                        // Averaged over the posterior: the probit approximation.
                        Some(v) => circ::train::posterior::probit_softmax(row, &v[r * k..(r + 1) * k]),
                        None => {
                            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                            let z: f64 = row.iter().map(|v| (v - m).exp()).sum();
                            row.iter().map(|v| (v - m).exp() / z).collect()
                        }
                    };
                    let best = p
                        .iter()
                        .enumerate()
                        .fold((0, f64::NEG_INFINITY), |b, (i, v)| if *v > b.1 { (i, *v) } else { b })
                        .0;
                    class.push(best as f64);
                    for (j, v) in p.iter().enumerate() {
                        probs[j].push(*v);
                    }
                }
                header.push(format!("{name}.class"));
                columns.push(class);
                for (j, p) in probs.into_iter().enumerate() {
                    header.push(format!("{name}.p{j}"));
                    columns.push(p);
                }
            }
            Likelihood::Bernoulli => {
                header.push(format!("{name}.p"));
                let logits = per_row(&pred.data);
                columns.push(match added {
                    Some(v) => logits
                        .iter()
                        .zip(per_row(v))
                        .map(|(l, v)| circ::train::posterior::probit_sigmoid(*l, v))
                        .collect(),
                    None => logits.iter().map(|l| 1.0 / (1.0 + (-l).exp())).collect(),
                });
            }
        }
    }
    (header, columns)
}

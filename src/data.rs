//! Binding data files to a model's data inputs: each `data` declaration takes its CSV columns
//! (named one by one or as a first..last range) from a table, as a row-major tensor. Every error
//! names the file, and for bad values the line and column.

use crate::check::checked::DataSource;
use crate::check::types::{Dim, Elem};
use crate::error::Error;
use crate::interp::HostTensor;
use crate::ir::Graph;
use circ_runtime::files::csv::Table;

/// One tensor per data input of `g`, in declaration order.
pub fn bind_table(g: &Graph, table: &Table) -> Result<Vec<HostTensor>, String> {
    bind_table_as(g, table, false)
}

/// [`bind_table`] for a run in `f32` (when `f32` is set): values beyond its range are refused.
pub fn bind_table_as(g: &Graph, table: &Table, f32: bool) -> Result<Vec<HostTensor>, String> {
    (0..g.data.len()).map(|index| bind_one(g, index, table, f32)).collect()
}

/// The tensor of data input `index` of `g` from a table: its columns, with every value checked
/// (labels in range, a bernoulli observation between 0 and 1, and with `f32` set, a value that
/// fits in an `f32`); errors name file, line and column.
pub fn bind_one(g: &Graph, index: usize, table: &Table, f32: bool) -> Result<HostTensor, String> {
    let d = &g.data[index];
    let cols = match &d.source {
        DataSource::Columns(names) => table.select(names)?,
        DataSource::ColumnRange(a, b) => table.columns_range(a, b)?,
    };
    let width = match d.shape.get(1) {
        None => 1,
        Some(Dim::Known(k)) => *k as usize,
        Some(_) => return Err(format!("data `{}` has a second axis of unknown size", d.name)),
    };
    if cols.len() != width {
        let what = match &d.source {
            DataSource::ColumnRange(a, b) => {
                format!("the columns \"{a}\" .. \"{b}\" are {} in {}", cols.len(), table.name())
            }
            DataSource::Columns(_) => format!("{} columns are named", cols.len()),
        };
        return Err(format!("data `{}` has {width} columns per example, but {what}", d.name));
    }
    let rows = table.rows;
    let range = label_range(g, index);
    let bernoulli = observed_by_bernoulli(g, index);
    let mut values = Vec::with_capacity(rows * width);
    for r in 0..rows {
        for &c in &cols {
            let v = table.get(r, c);
            if let Some(problem) = value_problem(v, &d.name, d.elem, range, bernoulli, f32) {
                // Line r + 2: the header is line 1.
                let (file, column) = (table.name(), &table.columns[c]);
                return Err(format!("{file}:{}:{} (column \"{column}\"): {problem}", r + 2, c + 1));
            }
            values.push(v);
        }
    }
    let shape = if d.shape.len() == 1 { vec![rows] } else { vec![rows, width] };
    Ok(HostTensor { shape, values })
}

/// Whether a `bernoulli` likelihood observes data input `data`.
fn observed_by_bernoulli(g: &Graph, data: usize) -> bool {
    use crate::ir::graph::{Likelihood, Term};
    g.terms.iter().any(|t| matches!(t, Term::Likelihood { data: d, dist: Likelihood::Bernoulli, .. } if *d == data))
}

/// Why `v` cannot be a value of datum `name`: a bad label of int data, or a real value a
/// bernoulli likelihood observes outside 0..1.
fn value_problem(
    v: f64,
    name: &str,
    elem: Elem,
    range: Option<(i64, i64)>,
    bernoulli: bool,
    f32: bool,
) -> Option<String> {
    if f32 && v.is_finite() && v.abs() > f32::MAX as f64 {
        return Some(format!(
            "`{name}`: {v} does not fit in f32 (at most ±{:e}), which this backend computes in",
            f32::MAX
        ));
    }
    if elem == Elem::Int {
        return label_problem(v, name, range);
    }
    if bernoulli && !(0.0..=1.0).contains(&v) {
        return Some(format!("`{name}` is observed by a bernoulli likelihood: values 0 to 1, found {v}"));
    }
    None
}

/// [`load`] for a run in `f32` (when `f32` is set): values beyond its range are refused.
pub fn load_as(g: &Graph, path: &std::path::Path, f32: bool) -> Result<Vec<HostTensor>, Error> {
    let data = if path.is_dir() || path.extension().is_some_and(|e| e == "npy") {
        load(g, path)?
    } else {
        let table = read_csv_for(g, path)?;
        return Ok(bind_table_as(g, &table, f32)?);
    };
    if f32 {
        for (d, t) in g.data.iter().zip(&data) {
            if let Some(problem) = f32_problem(&d.name, t) {
                return Err(format!("{}: {problem}", path.display()).into());
            }
        }
    }
    Ok(data)
}

/// Whether `path` names `.npy` data (a directory of `<name>.npy` files, or one `.npy` file)
/// rather than a CSV file.
pub fn is_npy(path: &std::path::Path) -> bool {
    path.is_dir() || path.extension().is_some_and(|e| e == "npy")
}

/// Data for `circ run` from `.npy` files, as [`load_as`] reads them: the data some node of the
/// prediction graph `g` still reads come from a directory of `<name>.npy` files or, when it reads
/// one datum, from one `.npy` file; the others (observed data the predictions no longer read) may
/// be absent and are fed as zeros, as [`crate::driver::bind_for_prediction`] does for CSV.
pub fn load_npy_for_prediction(g: &Graph, path: &std::path::Path, f32: bool) -> Result<Vec<HostTensor>, Error> {
    let ids = g.node_ids();
    let read: Vec<usize> =
        (0..g.data.len()).filter(|&i| ids.iter().any(|n| g.node(*n).op == crate::ir::Op::Data(i))).collect();
    let mut got: Vec<Option<HostTensor>> = vec![None; g.data.len()];
    if path.is_dir() {
        for &i in &read {
            let d = &g.data[i];
            got[i] = Some(read_npy_datum(g, d, &path.join(format!("{}.npy", d.name)))?);
        }
    } else {
        match read.as_slice() {
            [i] => got[*i] = Some(read_npy_datum(g, &g.data[*i], path)?),
            _ => {
                return Err(format!(
                    "{}: one .npy file holds one array, but the predictions read {} data ({}); give a directory with one `<name>.npy` each",
                    path.display(),
                    read.len(),
                    read.iter().map(|&i| g.data[i].name.as_str()).collect::<Vec<_>>().join(", ")
                )
                .into())
            }
        }
    }
    let present: Vec<(&crate::ir::graph::DataInfo, &HostTensor)> =
        g.data.iter().zip(&got).filter_map(|(d, t)| Some((d, t.as_ref()?))).collect();
    same_sizes_of(g, &present).map_err(|e| format!("{}: {e}", path.display()))?;
    if f32 {
        for (d, t) in &present {
            if let Some(problem) = f32_problem(&d.name, t) {
                return Err(format!("{}: {problem}", path.display()).into());
            }
        }
    }
    let rows = present.first().map_or(0, |(_, t)| t.shape.first().copied().unwrap_or(1));
    Ok(g.data
        .iter()
        .zip(got)
        .map(|(d, t)| {
            t.unwrap_or_else(|| {
                let mut shape = vec![rows];
                shape.extend(d.shape[1..].iter().map(|x| if let Dim::Known(n) = x { *n as usize } else { 1 }));
                HostTensor { values: vec![0.0; shape.iter().product()], shape }
            })
        })
        .collect())
}

/// The first value of datum `name` beyond f32's range, described.
fn f32_problem(name: &str, t: &HostTensor) -> Option<String> {
    let i = t.values.iter().position(|v| v.is_finite() && v.abs() > f32::MAX as f64)?;
    Some(format!(
        "`{name}` element {i} is {}, which does not fit in f32 (at most ±{:e}), which this backend computes in",
        t.values[i],
        f32::MAX
    ))
}

/// One datum from a `.npy` file: its shape must fit the declaration, its values the datum's
/// type (labels in range, bernoulli observations 0 or 1).
fn read_npy_datum(g: &Graph, d: &crate::ir::graph::DataInfo, file: &std::path::Path) -> Result<HostTensor, Error> {
    let a = circ_runtime::files::npy::read_npy(file)?;
    let fits = a.shape.len() == d.shape.len()
        && a.shape.iter().zip(&d.shape).all(|(n, want)| !matches!(want, Dim::Known(k) if *k as usize != *n));
    if !fits {
        let want: Vec<String> = d.shape.iter().map(|x| crate::check::types::ShowDim(*x, g).to_string()).collect();
        return Err(format!(
            "{}: data `{}` needs shape [{}], the file holds {:?}",
            file.display(),
            d.name,
            want.join(", "),
            a.shape
        )
        .into());
    }
    if let Some(i) = g.data.iter().position(|x| x.name == d.name) {
        let (range, bernoulli) = (label_range(g, i), observed_by_bernoulli(g, i));
        if let Some(problem) = a.values.iter().find_map(|v| value_problem(*v, &d.name, d.elem, range, bernoulli, false))
        {
            return Err(format!("{}: {problem}", file.display()).into());
        }
    }
    Ok(HostTensor { shape: a.shape, values: a.values })
}

/// Data for a graph from a path: a CSV file; a directory holding one `<name>.npy` per data
/// declaration; or a single `.npy` file when the model declares one datum.
pub fn load(g: &Graph, path: &std::path::Path) -> Result<Vec<HostTensor>, Error> {
    let npy = |d: &crate::ir::graph::DataInfo, file: &std::path::Path| -> Result<HostTensor, Error> {
        read_npy_datum(g, d, file)
    };
    if path.is_dir() {
        let tensors: Vec<HostTensor> =
            g.data.iter().map(|d| npy(d, &path.join(format!("{}.npy", d.name)))).collect::<Result<_, _>>()?;
        return same_sizes(g, &tensors).map(|()| tensors).map_err(|e| format!("{}: {e}", path.display()).into());
    }
    if path.extension().is_some_and(|e| e == "npy") {
        return match g.data.as_slice() {
            [d] => Ok(vec![npy(d, path)?]),
            _ => Err(format!(
                "{}: one .npy file holds one array, but the model declares {} data ({}); give a directory with one `<name>.npy` each",
                path.display(),
                g.data.len(),
                g.data.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
            )
            .into()),
        };
    }
    let table = read_csv_for(g, path)?;
    Ok(bind_table(g, &table)?)
}

/// Refuses data whose arrays give one symbolic size (such as the rows `N`) two values.
fn same_sizes(g: &Graph, tensors: &[HostTensor]) -> Result<(), String> {
    let pairs: Vec<(&crate::ir::graph::DataInfo, &HostTensor)> = g.data.iter().zip(tensors).collect();
    same_sizes_of(g, &pairs)
}

/// [`same_sizes`] over some of the data.
fn same_sizes_of(g: &Graph, pairs: &[(&crate::ir::graph::DataInfo, &HostTensor)]) -> Result<(), String> {
    let mut seen: Vec<(Dim, usize, &str)> = Vec::new();
    for &(d, t) in pairs {
        for (dim, &n) in d.shape.iter().zip(&t.shape) {
            if !matches!(dim, Dim::Sym(_)) {
                continue;
            }
            match seen.iter().find(|(s, _, _)| s == dim) {
                Some((_, m, first)) if *m != n => {
                    let sym = crate::check::types::ShowDim(*dim, g);
                    return Err(format!("`{sym}` is {m} in `{first}` but {n} in `{}`", d.name));
                }
                Some(_) => {}
                None => seen.push((*dim, n, &d.name)),
            }
        }
    }
    Ok(())
}

/// Reads the CSV file at `path` for the data inputs of `g`: only the columns they name (or whose
/// range covers) are parsed, so a column the model does not use may hold text or `NA`.
pub fn read_csv_for(g: &Graph, path: &std::path::Path) -> Result<Table, circ_runtime::files::csv::CsvError> {
    let all = vec![true; g.data.len()];
    circ_runtime::files::csv::read_csv_columns(path, &|header: &[String]| used_columns(g, &all, header))
}

/// [`read_csv_for`] for predictions: only the columns of data some node of `g` still reads (a
/// prediction graph no longer reads the observed data, which [`crate::driver::bind_for_prediction`]
/// feeds as zeros) are parsed.
pub fn read_csv_for_prediction(g: &Graph, path: &std::path::Path) -> Result<Table, circ_runtime::files::csv::CsvError> {
    let ids = g.node_ids();
    let read: Vec<bool> =
        (0..g.data.len()).map(|i| ids.iter().any(|n| g.node(*n).op == crate::ir::Op::Data(i))).collect();
    circ_runtime::files::csv::read_csv_columns(path, &|header: &[String]| used_columns(g, &read, header))
}

/// Which of the `header`'s columns the data inputs of `g` selected by `data` (one flag per
/// datum) read: named columns, and every column of a `first .. last` range (in file order).
/// Names the header lacks select nothing here; [`bind_table`] reports them.
pub fn used_columns(g: &Graph, data: &[bool], header: &[String]) -> Vec<bool> {
    let mut used = vec![false; header.len()];
    let index = |name: &str| header.iter().position(|h| h == name);
    for (_, d) in g.data.iter().enumerate().filter(|(i, _)| data.get(*i).copied().unwrap_or(true)) {
        match &d.source {
            DataSource::Columns(names) => {
                for i in names.iter().filter_map(|n| index(n)) {
                    used[i] = true;
                }
            }
            DataSource::ColumnRange(a, b) => {
                if let (Some(i), Some(j)) = (index(a), index(b)) {
                    for u in used.iter_mut().take(j + 1).skip(i) {
                        *u = true;
                    }
                }
            }
        }
    }
    used
}

/// The labels an integer datum may hold: `0..classes` where a `categorical` likelihood or a
/// `one_hot` reads it, 0 or 1 where a `bernoulli` likelihood does. `None`: any integer.
pub fn label_range(g: &Graph, data: usize) -> Option<(i64, i64)> {
    use crate::ir::graph::{Likelihood, Term};
    let bernoulli = g
        .terms
        .iter()
        .any(|t| matches!(t, Term::Likelihood { data: d, dist: Likelihood::Bernoulli, .. } if *d == data));
    if bernoulli {
        return Some((0, 1));
    }
    let node = g.node_ids().into_iter().find(|n| g.node(*n).op == crate::ir::Op::Data(data))?;
    g.users(node).into_iter().find_map(|u| match g.node(u).op {
        crate::ir::Op::OneHot { classes } => Some((0, classes as i64 - 1)),
        _ => None,
    })
}

/// Why `v` cannot be a label of datum `name`, if it cannot.
fn label_problem(v: f64, name: &str, range: Option<(i64, i64)>) -> Option<String> {
    if !v.is_finite() || v.fract() != 0.0 {
        return Some(format!("`{name}` holds integer labels, found {v}"));
    }
    match range {
        Some((lo, hi)) if v < lo as f64 || v > hi as f64 => {
            Some(format!("`{name}` holds labels {lo} to {hi} for this model, found {v}"))
        }
        _ => None,
    }
}

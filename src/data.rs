//! Binding data files to a model's data inputs: each `data` declaration takes its CSV columns
//! (named one by one or as a first..last range) from a table, as a row-major tensor. Every error
//! names the file, and for bad values the line and column.

use crate::check::checked::DataSource;
use crate::check::types::{Dim, Elem};
use crate::interp::HostTensor;
use crate::ir::Graph;
use circ_runtime::csv::Table;

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
pub fn load_as(g: &Graph, path: &std::path::Path, f32: bool) -> Result<Vec<HostTensor>, String> {
    let data = if path.is_dir() || path.extension().is_some_and(|e| e == "npy") {
        load(g, path)?
    } else {
        let table = read_csv_for(g, path).map_err(|e| e.to_string())?;
        return bind_table_as(g, &table, f32);
    };
    if f32 {
        for (d, t) in g.data.iter().zip(&data) {
            if let Some(i) = t.values.iter().position(|v| v.is_finite() && v.abs() > f32::MAX as f64) {
                return Err(format!(
                    "{}: `{}` element {i} is {}, which does not fit in f32 (at most ±{:e}), which this backend computes in",
                    path.display(),
                    d.name,
                    t.values[i],
                    f32::MAX
                ));
            }
        }
    }
    Ok(data)
}

/// Data for a graph from a path: a CSV file; a directory holding one `<name>.npy` per data
/// declaration; or a single `.npy` file when the model declares one datum.
pub fn load(g: &Graph, path: &std::path::Path) -> Result<Vec<HostTensor>, String> {
    let npy = |d: &crate::ir::graph::DataInfo, file: &std::path::Path| -> Result<HostTensor, String> {
        let a = circ_runtime::npy::read_npy(file).map_err(|e| e.to_string())?;
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
            ));
        }
        if let Some(i) = g.data.iter().position(|x| x.name == d.name) {
            let (range, bernoulli) = (label_range(g, i), observed_by_bernoulli(g, i));
            if let Some(problem) =
                a.values.iter().find_map(|v| value_problem(*v, &d.name, d.elem, range, bernoulli, false))
            {
                return Err(format!("{}: {problem}", file.display()));
            }
        }
        Ok(HostTensor { shape: a.shape, values: a.values })
    };
    if path.is_dir() {
        let tensors: Vec<HostTensor> =
            g.data.iter().map(|d| npy(d, &path.join(format!("{}.npy", d.name)))).collect::<Result<_, _>>()?;
        return same_sizes(g, &tensors).map(|()| tensors).map_err(|e| format!("{}: {e}", path.display()));
    }
    if path.extension().is_some_and(|e| e == "npy") {
        return match g.data.as_slice() {
            [d] => Ok(vec![npy(d, path)?]),
            _ => Err(format!(
                "{}: one .npy file holds one array, but the model declares {} data ({}); give a directory with one `<name>.npy` each",
                path.display(),
                g.data.len(),
                g.data.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
            )),
        };
    }
    let table = read_csv_for(g, path).map_err(|e| e.to_string())?;
    bind_table(g, &table)
}

/// Refuses data whose arrays give one symbolic size (such as the rows `N`) two values.
fn same_sizes(g: &Graph, tensors: &[HostTensor]) -> Result<(), String> {
    let mut seen: Vec<(Dim, usize, &str)> = Vec::new();
    for (d, t) in g.data.iter().zip(tensors) {
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
pub fn read_csv_for(g: &Graph, path: &std::path::Path) -> Result<Table, circ_runtime::csv::CsvError> {
    let all = vec![true; g.data.len()];
    circ_runtime::csv::read_csv_columns(path, &|header: &[String]| used_columns(g, &all, header))
}

/// [`read_csv_for`] for predictions: only the columns of data some node of `g` still reads (a
/// prediction graph no longer reads the observed data, which [`crate::driver::bind_for_prediction`]
/// feeds as zeros) are parsed.
pub fn read_csv_for_prediction(g: &Graph, path: &std::path::Path) -> Result<Table, circ_runtime::csv::CsvError> {
    let ids = g.node_ids();
    let read: Vec<bool> =
        (0..g.data.len()).map(|i| ids.iter().any(|n| g.node(*n).op == crate::ir::Op::Data(i))).collect();
    circ_runtime::csv::read_csv_columns(path, &|header: &[String]| used_columns(g, &read, header))
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

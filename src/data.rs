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
    g.data
        .iter()
        .map(|d| {
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
            let mut values = Vec::with_capacity(rows * width);
            for r in 0..rows {
                for &c in &cols {
                    let v = table.get(r, c);
                    if d.elem == Elem::Int && v.fract() != 0.0 {
                        // Line r + 2: the header is line 1.
                        return Err(format!(
                            "{}:{}:{} (column \"{}\"): `{}` holds integer labels, found {v}",
                            table.name(),
                            r + 2,
                            c + 1,
                            table.columns[c],
                            d.name
                        ));
                    }
                    values.push(v);
                }
            }
            let shape = if d.shape.len() == 1 { vec![rows] } else { vec![rows, width] };
            Ok(HostTensor { shape, values })
        })
        .collect()
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
        if d.elem == Elem::Int {
            if let Some(v) = a.values.iter().find(|v| v.fract() != 0.0) {
                return Err(format!("{}: `{}` holds integer labels, found {v}", file.display(), d.name));
            }
        }
        Ok(HostTensor { shape: a.shape, values: a.values })
    };
    if path.is_dir() {
        return g.data.iter().map(|d| npy(d, &path.join(format!("{}.npy", d.name)))).collect();
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
    let table = circ_runtime::csv::read_csv(path).map_err(|e| e.to_string())?;
    bind_table(g, &table)
}

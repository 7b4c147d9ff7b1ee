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
    g.data.iter().map(|d| {
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
                DataSource::ColumnRange(a, b) => format!("the columns \"{a}\" .. \"{b}\" are {} in {}", cols.len(), table.name()),
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

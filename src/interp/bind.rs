//! The boundary: checks the data and parameters handed to the interpreter against the graph's
//! declarations, binds every symbolic size (`N`) from the data, and turns node shapes into
//! concrete ones.

use super::error::InterpError;
use super::tensor::count;
use crate::check::types::{Dim, Elem, ShowDim, SymNames};
use crate::ir::{Graph, NodeId};

/// A data input as the host gives it: a shape and its values, row-major. Integer data (labels)
/// come as `f64` values that are integers.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

impl HostTensor {
    pub fn new(shape: Vec<usize>, values: Vec<f64>) -> HostTensor {
        HostTensor { shape, values }
    }
}

/// The given rows of every data tensor, in the given order.
pub fn select(data: &[HostTensor], rows: &[usize]) -> Vec<HostTensor> {
    data.iter()
        .map(|d| {
            let width: usize = d.shape[1..].iter().product();
            let mut values = Vec::with_capacity(rows.len() * width);
            for &r in rows {
                values.extend_from_slice(&d.values[r * width..(r + 1) * width]);
            }
            let mut shape = d.shape.clone();
            shape[0] = rows.len();
            HostTensor { shape, values }
        })
        .collect()
}

/// The size of every symbol (indexed by `SymId`), `None` where no datum mentions it.
pub type Sizes = Vec<Option<usize>>;

/// Checks the inputs against the graph and binds the symbolic sizes.
pub fn bind(g: &Graph, data: &[HostTensor], params: &[Vec<f64>]) -> Result<Sizes, InterpError> {
    let parts: Vec<(&[usize], Option<&[f64]>)> = data.iter().map(|d| (&d.shape[..], Some(&d.values[..]))).collect();
    bind_parts(g, &parts, params)
}

/// As [`bind`] for data of these shapes whose values were checked before (rows of data kept on
/// a device).
pub fn bind_shapes(g: &Graph, shapes: &[Vec<usize>], params: &[Vec<f64>]) -> Result<Sizes, InterpError> {
    let parts: Vec<(&[usize], Option<&[f64]>)> = shapes.iter().map(|s| (&s[..], None)).collect();
    bind_parts(g, &parts, params)
}

fn bind_parts(g: &Graph, data: &[(&[usize], Option<&[f64]>)], params: &[Vec<f64>]) -> Result<Sizes, InterpError> {
    if data.len() != g.data.len() {
        let expected = g.data.iter().map(|d| d.name.clone()).collect();
        return Err(InterpError::DataCount { expected, got: data.len() });
    }
    if params.len() != g.params.len() {
        let expected = g.params.iter().map(|p| p.name.clone()).collect();
        return Err(InterpError::ParamCount { expected, got: params.len() });
    }
    // Each symbol's size and the datum that fixed it.
    let mut bound: Vec<Option<(usize, &str)>> = vec![None; g.syms.len()];
    for (info, &(shape, values)) in g.data.iter().zip(data) {
        let name = info.name.as_str();
        if let Some(values) = values.filter(|v| v.len() != count(shape)) {
            return Err(InterpError::DataValues { name: name.into(), shape: shape.to_vec(), got: values.len() });
        }
        let fits = shape.len() == info.shape.len()
            && info.shape.iter().zip(shape).all(|(want, got)| !matches!(want, Dim::Known(n) if *n != *got as u64));
        if !fits {
            let dims: Vec<String> = info.shape.iter().map(|x| ShowDim(*x, g).to_string()).collect();
            let expected = format!("[{}]", dims.join(", "));
            return Err(InterpError::DataShape { name: name.into(), expected, got: shape.to_vec() });
        }
        for (want, got) in info.shape.iter().zip(shape) {
            let Dim::Sym(s) = want else { continue };
            let slot = s.0 as usize;
            if slot >= bound.len() {
                bound.resize(slot + 1, None);
            }
            match bound[slot] {
                None => bound[slot] = Some((*got, name)),
                Some((n, first)) if n != *got => {
                    return Err(InterpError::SymConflict {
                        sym: g.sym_name(*s).into(),
                        first: (first.into(), n),
                        second: (name.into(), *got),
                    })
                }
                Some(_) => {}
            }
        }
        if let (Elem::Int, Some(values)) = (info.elem, values) {
            if let Some(at) = values.iter().position(|v| !v.is_finite() || v.fract() != 0.0) {
                let index = unflatten(at, shape);
                return Err(InterpError::NotInteger { name: name.into(), index, value: values[at] });
            }
        }
    }
    for (info, p) in g.params.iter().zip(params) {
        let shape: Vec<usize> = info.shape.iter().map(|n| *n as usize).collect();
        if p.len() != count(&shape) {
            return Err(InterpError::ParamValues { name: info.name.clone(), shape, got: p.len() });
        }
    }
    Ok(bound.into_iter().map(|b| b.map(|(n, _)| n)).collect())
}

/// The multi-index of a row-major offset.
fn unflatten(mut at: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for k in (0..shape.len()).rev() {
        index[k] = at % shape[k];
        at /= shape[k];
    }
    index
}

/// A node's shape with every symbol replaced by its bound size.
pub fn concrete(g: &Graph, id: NodeId, sizes: &[Option<usize>]) -> Result<Vec<usize>, InterpError> {
    let node = g.node(id);
    node.shape
        .iter()
        .map(|d| match d {
            Dim::Known(n) => Ok(*n as usize),
            Dim::Sym(s) => sizes
                .get(s.0 as usize)
                .copied()
                .flatten()
                .ok_or_else(|| InterpError::UnboundSym { sym: g.sym_name(*s).into(), node: id }),
            Dim::Any => Err(InterpError::Node {
                node: id,
                op: node.op.name(),
                label: node.label.clone(),
                message: "the node has an unknown size (`Dim::Any`)".into(),
            }),
        })
        .collect()
}

/// Checks the extra inputs (`g.inputs`): one per input, each with its shape's number of values.
pub fn check_inputs(g: &Graph, inputs: &[Vec<f64>]) -> Result<(), InterpError> {
    if inputs.len() != g.inputs.len() {
        return Err(InterpError::Graph(format!("expected {} extra inputs, got {}", g.inputs.len(), inputs.len())));
    }
    for (info, v) in g.inputs.iter().zip(inputs) {
        let n: u64 = info.shape.iter().product();
        if v.len() as u64 != n {
            return Err(InterpError::Graph(format!(
                "input `{}` of shape {:?} needs {n} values, got {}",
                info.name,
                info.shape,
                v.len()
            )));
        }
    }
    Ok(())
}

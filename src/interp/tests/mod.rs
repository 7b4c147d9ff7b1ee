//! Tests of the interpreter: each op on small hand-computed examples (`ops.rs`), the boundary
//! checks with their exact messages (`boundary.rs`), and whole models lowered from source with
//! losses computed by hand (`model.rs`).

mod boundary;
mod model;
mod ops;

use super::{run, run_all, HostTensor, Outputs, Real, Tensor};
use crate::check::checked::{DataSource, Prior};
use crate::check::types::{Dim, Elem, SymId};
use crate::ir::graph::{DataInfo, Init, Node, Output, ParamInfo};
use crate::ir::{Graph, NodeId, Op};

const N: Dim = Dim::Sym(SymId(0));

fn k(n: u64) -> Dim {
    Dim::Known(n)
}

/// A graph built node by node, each node's shape inferred by the IR's own shape rule.
struct Builder {
    g: Graph,
}

impl Builder {
    fn new() -> Builder {
        let mut g = Graph::default();
        g.syms = vec!["N".into(), "M".into()];
        Builder { g }
    }

    fn data(&mut self, name: &str, elem: Elem, shape: Vec<Dim>) -> NodeId {
        let i = self.g.data.len();
        let source = DataSource::Columns(Vec::new());
        self.g.data.push(DataInfo { name: name.into(), elem, shape: shape.clone(), source });
        self.g.add(Node { op: Op::Data(i), elem, shape, span: None, label: Some(name.into()) }, &[])
    }

    fn param(&mut self, name: &str, shape: &[u64]) -> NodeId {
        let i = self.g.params.len();
        let info = ParamInfo {
            name: name.into(),
            shape: shape.to_vec(),
            prior: Prior::Flat,
            init: Init::Fixed(0.0),
            update: None,
        };
        self.g.params.push(info);
        let shape = shape.iter().map(|n| k(*n)).collect();
        self.g.add(Node { op: Op::Param(i), elem: Elem::Float, shape, span: None, label: Some(name.into()) }, &[])
    }

    /// A node whose shape is what `ir::shape::infer` gives (`target` for a reshape).
    fn op_to(&mut self, op: Op, operands: &[NodeId], target: Vec<Dim>) -> NodeId {
        let shapes: Vec<(Elem, &[Dim])> =
            operands.iter().map(|o| (self.g.node(*o).elem, self.g.node(*o).shape.as_slice())).collect();
        let (elem, shape) = crate::ir::shape::infer(&op, &shapes, &target).expect("a well-formed test graph");
        self.g.add(Node { op, elem, shape, span: None, label: None }, operands)
    }

    fn op(&mut self, op: Op, operands: &[NodeId]) -> NodeId {
        self.op_to(op, operands, Vec::new())
    }

    /// Names the outputs and checks the graph with the IR's verifier.
    fn finish(mut self, outputs: &[(&str, NodeId)]) -> Graph {
        self.g.outputs = outputs.iter().map(|(n, id)| Output { name: (*n).into(), node: *id }).collect();
        crate::ir::verify::verify(&self.g).expect("a verified test graph");
        self.g
    }
}

fn host(shape: &[usize], values: &[f64]) -> HostTensor {
    HostTensor::new(shape.to_vec(), values.to_vec())
}

fn tensor(shape: &[usize], values: &[f64]) -> Tensor<f64> {
    Tensor::from_f64(shape, values)
}

/// Asserts equal shapes and elements equal within `tol` (relative to max(1, |expected|)); NaN
/// matches NaN and infinities must match exactly.
#[track_caller]
fn assert_close<T: Real>(got: &Tensor<T>, shape: &[usize], expected: &[f64], tol: f64) {
    assert_eq!(got.shape, shape, "shape");
    let g = got.to_f64();
    assert_eq!(g.len(), expected.len(), "element count");
    for (i, (a, b)) in g.iter().zip(expected).enumerate() {
        let ok = if b.is_nan() {
            a.is_nan()
        } else if b.is_infinite() {
            a == b
        } else {
            (a - b).abs() <= tol * b.abs().max(1.0)
        };
        assert!(ok, "element {i}: got {a}, expected {b}\n got: {g:?}\nwant: {expected:?}");
    }
}

/// Runs a graph in f64 and in f32 and checks that they agree; returns the f64 outputs.
#[track_caller]
fn run_both(g: &Graph, data: &[HostTensor], params: &[Vec<f64>]) -> Outputs<f64> {
    let wide = run::<f64>(g, data, params).expect("runs in f64");
    let narrow = run::<f32>(g, data, params).expect("runs in f32");
    for ((_, a), (_, b)) in wide.iter().zip(narrow.iter()) {
        assert_close(b, &a.shape, &a.to_f64(), 1e-5);
    }
    wide
}

#[test]
fn run_all_keeps_every_value_and_finds_the_first_non_finite() {
    // loss = Σ exp(-log(x)) : log(0) = −∞ makes the log node the first non-finite one, even
    // though exp(+∞) and the sum after it are non-finite too.
    let mut b = Builder::new();
    let x = b.data("x", Elem::Float, vec![N]);
    let l = b.op(Op::Unary(crate::ir::op::UnaryOp::Log), &[x]);
    let n = b.op(Op::Unary(crate::ir::op::UnaryOp::Neg), &[l]);
    let e = b.op(Op::Unary(crate::ir::op::UnaryOp::Exp), &[n]);
    let s = b.op(Op::Reduce { f: crate::ir::op::ReduceOp::Sum, axes: vec![0], keepdims: false }, &[e]);
    let g = b.finish(&[("loss", s)]);

    let values = run_all::<f64>(&g, &[host(&[2], &[1.0, 2.0])], &[]).unwrap();
    assert_eq!(values.order().len(), 5);
    assert_close(values.get(l).unwrap(), &[2], &[0.0, 2f64.ln()], 1e-12);
    assert_close(values.get(s).unwrap(), &[], &[1.5], 1e-12);
    assert_eq!(super::first_non_finite(&values), None);

    let values = run_all::<f32>(&g, &[host(&[3], &[1.0, 0.0, 2.0])], &[]).unwrap();
    assert_eq!(super::first_non_finite(&values), Some(l));
    assert_eq!(values.get(s).unwrap().data[0], f32::INFINITY);
}

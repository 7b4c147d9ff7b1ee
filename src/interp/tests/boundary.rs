//! The checks at the interpreter's boundary, with the exact messages users see.

use super::*;
use crate::check::checked::Slice;
use crate::ir::op::{BinaryOp, ReduceOp};

/// `loss = Σ (x @ w − y) + Σ cast(label)`, with x: [N, 10], y: [N], label: int[N], w: [10].
fn model() -> Graph {
    let mut b = Builder::new();
    let x = b.data("x", Elem::Float, vec![N, k(10)]);
    let y = b.data("y", Elem::Float, vec![N]);
    let label = b.data("label", Elem::Int, vec![N]);
    let w = b.param("w", &[10]);
    let h = b.op(Op::MatMul, &[x, w]);
    let d = b.op(Op::Binary(BinaryOp::Sub), &[h, y]);
    let c = b.op(Op::Cast, &[label]);
    let e = b.op(Op::Binary(BinaryOp::Add), &[d, c]);
    let s = b.op(Op::Reduce { f: ReduceOp::Sum, axes: vec![0], keepdims: false }, &[e]);
    b.finish(&[("loss", s)])
}

fn inputs(n: usize) -> Vec<HostTensor> {
    vec![host(&[n, 10], &vec![1.0; n * 10]), host(&[n], &vec![2.0; n]), host(&[n], &vec![1.0; n])]
}

#[track_caller]
fn fails(data: &[HostTensor], params: &[Vec<f64>], message: &str) {
    let e = run::<f64>(&model(), data, params).unwrap_err();
    assert_eq!(e.to_string(), message);
    let e = run::<f32>(&model(), data, params).unwrap_err();
    assert_eq!(e.to_string(), message);
}

#[test]
fn good_inputs_run() {
    let out = run::<f64>(&model(), &inputs(4), &[vec![0.5; 10]]).unwrap();
    // Each row: 10·½ − 2 + 1 = 4.
    assert_eq!(out.loss(), 16.0);
    // N may be 0: the sum over no rows.
    assert_eq!(run::<f64>(&model(), &inputs(0), &[vec![0.5; 10]]).unwrap().loss(), 0.0);
}

#[test]
fn wrong_counts() {
    fails(&inputs(2)[..2], &[vec![0.0; 10]], "expected 3 data inputs (`x`, `y`, `label`), got 2");
    fails(&inputs(2), &[], "expected 1 parameter (`w`), got 0");
    fails(&inputs(2), &[vec![0.0; 10], vec![]], "expected 1 parameter (`w`), got 2");
    fails(&inputs(2), &[vec![0.0; 9]], "parameter `w`: shape [10] needs 10 values, got 9");
}

#[test]
fn data_shapes() {
    let p = [vec![0.0; 10]];
    let mut d = inputs(442);
    d[0] = host(&[442, 9], &vec![0.0; 442 * 9]);
    fails(&d, &p, "data `x`: expected [N, 10], got [442, 9]");
    d[0] = host(&[442], &vec![0.0; 442]);
    fails(&d, &p, "data `x`: expected [N, 10], got [442]");
    d[0] = host(&[2, 10], &[0.0; 19]);
    fails(&d, &p, "data `x`: shape [2, 10] needs 20 values, got 19");
    let mut d = inputs(442);
    d[1] = host(&[441], &vec![0.0; 441]);
    fails(&d, &p, "`N` is 442 in `x` but 441 in `y`");
}

#[test]
fn a_symbol_bound_twice_in_one_datum() {
    let mut b = Builder::new();
    let x = b.data("x", Elem::Float, vec![N, N]);
    let s = b.op(Op::Reduce { f: ReduceOp::Sum, axes: vec![0, 1], keepdims: false }, &[x]);
    let g = b.finish(&[("loss", s)]);
    let e = run::<f64>(&g, &[host(&[2, 3], &[0.0; 6])], &[]).unwrap_err();
    assert_eq!(e.to_string(), "`N` is 2 in `x` but 3 in `x`");
    assert_eq!(run::<f64>(&g, &[host(&[2, 2], &[1.0; 4])], &[]).unwrap().loss(), 4.0);
}

#[test]
fn integer_data_must_hold_integers() {
    let p = [vec![0.0; 10]];
    let mut d = inputs(3);
    d[2] = host(&[3], &[0.0, 2.5, 1.0]);
    fails(&d, &p, "data `label`: value 2.5 at [1] is not an integer");
    d[2] = host(&[3], &[f64::NAN, 1.0, 1.0]);
    fails(&d, &p, "data `label`: value NaN at [0] is not an integer");
    // Negative and large integers are integers (one_hot turns them into zero rows).
    d[2] = host(&[3], &[-1.0, 1e6, 0.0]);
    assert!(run::<f64>(&model(), &d, &p).is_ok());
}

#[test]
fn a_slice_past_the_end_of_a_symbolic_axis() {
    let mut b = Builder::new();
    let x = b.data("x", Elem::Float, vec![N]);
    let s = b.op(Op::Slice { items: vec![Slice::Range { start: 0, end: Some(5) }] }, &[x]);
    let t = b.op(Op::Reduce { f: ReduceOp::Sum, axes: vec![0], keepdims: false }, &[s]);
    let g = b.finish(&[("loss", t)]);
    assert_eq!(run::<f64>(&g, &[host(&[6], &[1.0; 6])], &[]).unwrap().loss(), 5.0);
    let e = run::<f64>(&g, &[host(&[3], &[1.0; 3])], &[]).unwrap_err();
    assert_eq!(e.to_string(), format!("{s} (slice[0:5]): slice 0:5 is out of range for axis 0 of size 3"));
}

#[test]
fn a_size_no_datum_fixes() {
    // Not a graph the verifier would pass (`Const` is a scalar); only the message is checked.
    let mut g = Graph::default();
    g.syms = vec!["N".into(), "M".into()];
    let c = g.add(
        Node { op: Op::Const(1.0), elem: Elem::Float, shape: vec![Dim::Sym(SymId(1))], span: None, label: None },
        &[],
    );
    g.outputs = vec![Output { name: "loss".into(), node: c }];
    let e = run::<f64>(&g, &[], &[]).unwrap_err();
    assert_eq!(e.to_string(), format!("the size `M` of {c} is not fixed by any data input"));
}

#[test]
fn a_node_whose_value_does_not_have_its_shape() {
    let mut g = Graph::default();
    let c = g.add(Node { op: Op::Const(1.0), elem: Elem::Float, shape: vec![k(2)], span: None, label: None }, &[]);
    g.outputs = vec![Output { name: "loss".into(), node: c }];
    let e = run::<f64>(&g, &[], &[]).unwrap_err();
    assert_eq!(e.to_string(), format!("{c} (const 1): computed a value of shape [], the node's shape is [2]"));
}

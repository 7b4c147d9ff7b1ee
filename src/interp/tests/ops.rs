//! Every op on small examples computed by hand.

use super::super::ops;
use super::*;
use crate::check::checked::Slice;
use crate::ir::op::{BinaryOp, ReduceOp, UnaryOp};

const INF: f64 = f64::INFINITY;
const NAN: f64 = f64::NAN;

fn unary_of(f: UnaryOp, xs: &[f64]) -> Vec<f64> {
    ops::unary(f, &tensor(&[xs.len()], xs)).to_f64()
}

#[test]
fn unary_ops() {
    let xs = [-2.0, 0.0, 0.5, 4.0];
    let cases: [(UnaryOp, [f64; 4]); 9] = [
        (UnaryOp::Neg, [2.0, 0.0, -0.5, -4.0]),
        (UnaryOp::Exp, [(-2f64).exp(), 1.0, 0.5f64.exp(), 4f64.exp()]),
        (UnaryOp::Relu, [0.0, 0.0, 0.5, 4.0]),
        (UnaryOp::Tanh, [(-2f64).tanh(), 0.0, 0.5f64.tanh(), 4f64.tanh()]),
        (UnaryOp::Abs, [2.0, 0.0, 0.5, 4.0]),
        (UnaryOp::Square, [4.0, 0.0, 0.25, 16.0]),
        (UnaryOp::Recip, [-0.5, INF, 2.0, 0.25]),
        (UnaryOp::Sigmoid, [1.0 / (1.0 + 2f64.exp()), 0.5, 1.0 / (1.0 + (-0.5f64).exp()), 1.0 / (1.0 + (-4f64).exp())]),
        (
            UnaryOp::Softplus,
            [(1.0 + (-2f64).exp()).ln(), 2f64.ln(), (1.0 + 0.5f64.exp()).ln(), (1.0 + 4f64.exp()).ln()],
        ),
    ];
    for (f, want) in cases {
        assert_close(&tensor(&[4], &unary_of(f, &xs)), &[4], &want, 1e-14);
    }
    assert_close(&tensor(&[3], &unary_of(UnaryOp::Log, &[1.0, 0.0, -1.0])), &[3], &[0.0, -INF, NAN], 0.0);
    assert_close(&tensor(&[3], &unary_of(UnaryOp::Sqrt, &[4.0, 0.0, -1.0])), &[3], &[2.0, 0.0, NAN], 0.0);
}

#[test]
fn sigmoid_and_softplus_are_stable_for_large_inputs() {
    let xs = [-1000.0, -40.0, 40.0, 1000.0];
    let s = unary_of(UnaryOp::Sigmoid, &xs);
    assert_eq!(s[0], 0.0);
    assert!((s[1] - (-40f64).exp()).abs() < 1e-30, "sigmoid(-40) keeps its tiny value: {}", s[1]);
    assert_eq!(s[2..], [1.0, 1.0]);
    let p = unary_of(UnaryOp::Softplus, &xs);
    assert_eq!(p[0], 0.0);
    assert!((p[1] - (-40f64).exp()).abs() < 1e-30, "softplus(-40) ≈ e⁻⁴⁰: {}", p[1]);
    assert_eq!(p[2..], [40.0, 1000.0]);
    // The same in f32, whose exp overflows at 89.
    let t = Tensor::<f32>::from_f64(&[2], &[-1000.0, 1000.0]);
    assert_eq!(ops::unary(UnaryOp::Sigmoid, &t).data, [0.0, 1.0]);
    assert_eq!(ops::unary(UnaryOp::Softplus, &t).data, [0.0, 1000.0]);
}

#[test]
fn nan_passes_through_relu_and_softplus() {
    assert!(unary_of(UnaryOp::Relu, &[NAN])[0].is_nan());
    assert!(unary_of(UnaryOp::Softplus, &[NAN])[0].is_nan());
    assert!(unary_of(UnaryOp::Sigmoid, &[NAN])[0].is_nan());
}

#[test]
fn binary_broadcasts_like_numpy() {
    let a = tensor(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    // Trailing axis.
    let r = ops::binary(BinaryOp::Add, &a, &tensor(&[3], &[10.0, 20.0, 30.0])).unwrap();
    assert_close(&r, &[2, 3], &[11.0, 22.0, 33.0, 14.0, 25.0, 36.0], 0.0);
    // A column against a row: the outer product.
    let col = tensor(&[2, 1], &[1.0, 2.0]);
    let row = tensor(&[1, 3], &[3.0, 4.0, 5.0]);
    let r = ops::binary(BinaryOp::Mul, &col, &row).unwrap();
    assert_close(&r, &[2, 3], &[3.0, 4.0, 5.0, 6.0, 8.0, 10.0], 0.0);
    // A scalar on either side; the order of operands matters for Sub and Div.
    let r = ops::binary(BinaryOp::Sub, &Tensor::scalar(1.0), &a).unwrap();
    assert_close(&r, &[2, 3], &[0.0, -1.0, -2.0, -3.0, -4.0, -5.0], 0.0);
    let r = ops::binary(BinaryOp::Div, &a, &Tensor::scalar(2.0)).unwrap();
    assert_close(&r, &[2, 3], &[0.5, 1.0, 1.5, 2.0, 2.5, 3.0], 0.0);
    // Both sides grow: [3, 1, 2] with [2, 1] gives [3, 2, 2].
    let x = tensor(&[3, 1, 2], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let y = tensor(&[2, 1], &[10.0, 20.0]);
    let r = ops::binary(BinaryOp::Add, &x, &y).unwrap();
    let want = [10.0, 11.0, 20.0, 21.0, 12.0, 13.0, 22.0, 23.0, 14.0, 15.0, 24.0, 25.0];
    assert_close(&r, &[3, 2, 2], &want, 0.0);
    // Size-1 axes on both sides of one axis pair, and a leading size-1 axis kept.
    let r = ops::binary(BinaryOp::Add, &tensor(&[1, 1], &[1.0]), &tensor(&[2], &[1.0, 2.0])).unwrap();
    assert_close(&r, &[1, 2], &[2.0, 3.0], 0.0);
    // An empty axis broadcasts to empty.
    let r = ops::binary(BinaryOp::Add, &tensor(&[0, 3], &[]), &tensor(&[3], &[1.0, 2.0, 3.0])).unwrap();
    assert_close(&r, &[0, 3], &[], 0.0);
    // Shapes that clash.
    let e = ops::binary(BinaryOp::Add, &a, &tensor(&[2], &[1.0, 2.0])).unwrap_err();
    assert_eq!(e, "shapes [2, 3] and [2] do not broadcast");
}

#[test]
fn pow_broadcasts_and_follows_powf() {
    let x = tensor(&[2, 2], &[2.0, 3.0, -2.0, 4.0]);
    let r = ops::binary(BinaryOp::Pow, &x, &tensor(&[2], &[2.0, 0.5])).unwrap();
    assert_close(&r, &[2, 2], &[4.0, 3f64.sqrt(), 4.0, 2.0], 1e-15);
    let r = ops::binary(BinaryOp::Pow, &tensor(&[3], &[-2.0, -2.0, 0.0]), &tensor(&[3], &[3.0, 0.5, 0.0])).unwrap();
    assert_close(&r, &[3], &[-8.0, NAN, 1.0], 0.0);
}

#[test]
fn matmul_of_matrices_and_vectors() {
    let a = tensor(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let b = tensor(&[3, 2], &[7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
    assert_close(&ops::matmul(&a, &b).unwrap(), &[2, 2], &[58.0, 64.0, 139.0, 154.0], 0.0);
    let v = tensor(&[3], &[1.0, 0.0, -1.0]);
    // vector · vector: a scalar.
    assert_close(&ops::matmul(&v, &tensor(&[3], &[4.0, 5.0, 6.0])).unwrap(), &[], &[-2.0], 0.0);
    // matrix · vector: [2].
    assert_close(&ops::matmul(&a, &v).unwrap(), &[2], &[-2.0, -2.0], 0.0);
    // vector · matrix: [2].
    assert_close(&ops::matmul(&v, &b).unwrap(), &[2], &[-4.0, -4.0], 0.0);
    // A zero inner size gives zeros.
    assert_close(&ops::matmul(&tensor(&[2, 0], &[]), &tensor(&[0, 2], &[])).unwrap(), &[2, 2], &[0.0; 4], 0.0);
    let e = ops::matmul(&a, &a).unwrap_err();
    assert_eq!(e, "matmul of [2, 3] and [2, 3]: inner sizes 3 and 2 differ");
    assert_eq!(ops::matmul(&Tensor::scalar(1.0), &v).unwrap_err(), "matmul of a scalar");
}

/// Numpy matmul by definition, one output element at a time, for comparison.
fn naive_batched(a: &Tensor<f64>, b: &Tensor<f64>, out: &[usize]) -> Vec<f64> {
    let r = out.len();
    let k = a.shape[a.rank() - 1];
    let pick = |shape: &[usize], idx: &[usize]| -> Vec<usize> {
        // Right-align the batch index to this operand's batch axes; size-1 axes read index 0.
        let lead = (r - 2) - (shape.len() - 2);
        (0..shape.len() - 2).map(|d| if shape[d] == 1 { 0 } else { idx[lead + d] }).collect()
    };
    let mut result = Vec::new();
    let total: usize = out.iter().product();
    for flat in 0..total {
        let mut idx = vec![0; r];
        let mut rest = flat;
        for d in (0..r).rev() {
            idx[d] = rest % out[d];
            rest /= out[d];
        }
        let (i, j) = (idx[r - 2], idx[r - 1]);
        let (mut ia, mut ib) = (pick(&a.shape, &idx), pick(&b.shape, &idx));
        let mut s = 0.0;
        for p in 0..k {
            ia.extend([i, p]);
            ib.extend([p, j]);
            s += a.at(&ia) * b.at(&ib);
            ia.truncate(ia.len() - 2);
            ib.truncate(ib.len() - 2);
        }
        result.push(s);
    }
    result
}

#[test]
fn batched_matmul_broadcasts_batch_axes() {
    // [2, 2, 2] @ [2, 2]: the matrix applies to each batch entry.
    let a = tensor(&[2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
    let b = tensor(&[2, 2], &[1.0, 1.0, 0.0, 1.0]);
    assert_close(&ops::matmul(&a, &b).unwrap(), &[2, 2, 2], &[1.0, 3.0, 3.0, 7.0, 5.0, 11.0, 7.0, 15.0], 0.0);
    // [2, 2, 2] @ [2]: a batch of matrix-vector products, [2, 2].
    let v = tensor(&[2], &[1.0, -1.0]);
    assert_close(&ops::matmul(&a, &v).unwrap(), &[2, 2], &[-1.0, -1.0, -1.0, -1.0], 0.0);
    // [2] @ [2, 2, 2]: a vector times each matrix, [2, 2].
    assert_close(&ops::matmul(&v, &a).unwrap(), &[2, 2], &[-2.0, -2.0, -2.0, -2.0], 0.0);
    // [2, 1, 2, 3] @ [3, 3, 2] → [2, 3, 2, 2]: batch axes broadcast on both sides.
    let a: Vec<f64> = (0..12).map(|i| i as f64 * 0.5 - 2.0).collect();
    let b: Vec<f64> = (0..18).map(|i| (i * 7 % 5) as f64 - 1.5).collect();
    let (a, b) = (tensor(&[2, 1, 2, 3], &a), tensor(&[3, 3, 2], &b));
    let r = ops::matmul(&a, &b).unwrap();
    assert_close(&r, &[2, 3, 2, 2], &naive_batched(&a, &b, &[2, 3, 2, 2]), 1e-14);
    let e = ops::matmul(&tensor(&[2, 1, 1], &[0.0; 2]), &tensor(&[3, 1, 1], &[0.0; 3])).unwrap_err();
    assert_eq!(e, "matmul of [2, 1, 1] and [3, 1, 1]: batch axes do not broadcast");
}

#[test]
fn reductions_with_and_without_keepdims() {
    let x = tensor(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let r = |f, axes: &[usize], keep| ops::reduce(f, axes, keep, &x).unwrap();
    assert_close(&r(ReduceOp::Sum, &[0], false), &[3], &[5.0, 7.0, 9.0], 0.0);
    assert_close(&r(ReduceOp::Sum, &[1], true), &[2, 1], &[6.0, 15.0], 0.0);
    assert_close(&r(ReduceOp::Mean, &[1], true), &[2, 1], &[2.0, 5.0], 0.0);
    assert_close(&r(ReduceOp::Mean, &[0, 1], false), &[], &[3.5], 0.0);
    assert_close(&r(ReduceOp::Mean, &[0, 1], true), &[1, 1], &[3.5], 0.0);
    assert_close(&r(ReduceOp::Max, &[0], false), &[3], &[4.0, 5.0, 6.0], 0.0);
    assert_close(&r(ReduceOp::Sum, &[], false), &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 0.0);
    // Non-adjacent axes of a 3-D tensor.
    let y = tensor(&[2, 2, 2], &[1.0, -2.0, 3.0, 8.0, -5.0, 6.0, 7.0, 0.0]);
    assert_close(&ops::reduce(ReduceOp::Max, &[0, 2], false, &y).unwrap(), &[2], &[6.0, 8.0], 0.0);
    assert_close(&ops::reduce(ReduceOp::Sum, &[0, 2], true, &y).unwrap(), &[1, 2, 1], &[0.0, 18.0], 0.0);
    // NaN shows in a max; an empty axis gives −∞ for max, NaN for mean, 0 for sum.
    let z = tensor(&[3], &[1.0, NAN, 2.0]);
    assert!(ops::reduce(ReduceOp::Max, &[0], false, &z).unwrap().data[0].is_nan());
    let empty = tensor(&[0, 2], &[]);
    assert_close(&ops::reduce(ReduceOp::Max, &[0], false, &empty).unwrap(), &[2], &[-INF, -INF], 0.0);
    assert_close(&ops::reduce(ReduceOp::Mean, &[0], false, &empty).unwrap(), &[2], &[NAN, NAN], 0.0);
    assert_close(&ops::reduce(ReduceOp::Sum, &[0], false, &empty).unwrap(), &[2], &[0.0, 0.0], 0.0);
    assert!(ops::reduce(ReduceOp::Sum, &[1, 0], false, &x).is_err());
    assert!(ops::reduce(ReduceOp::Sum, &[2], false, &x).is_err());
}

#[test]
fn logsumexp_is_max_shifted() {
    let lse = |shape: &[usize], xs: &[f64], axis, keep| ops::logsumexp(axis, keep, &tensor(shape, xs)).unwrap();
    let ln2 = 2f64.ln();
    assert_close(&lse(&[2], &[0.0, 0.0], 0, false), &[], &[ln2], 1e-15);
    // Large values neither overflow nor lose the log 2.
    assert_close(&lse(&[2], &[1000.0, 1000.0], 0, false), &[], &[1000.0 + ln2], 1e-15);
    assert_close(&lse(&[3], &[1000.0, 0.0, -1000.0], 0, false), &[], &[1000.0], 1e-15);
    assert_close(&lse(&[2], &[-1000.0, -1000.0], 0, false), &[], &[-1000.0 + ln2], 1e-15);
    // −∞ entries contribute nothing; an axis of only −∞ gives −∞, not NaN.
    assert_close(&lse(&[2], &[0.0, -INF], 0, false), &[], &[0.0], 0.0);
    assert_close(&lse(&[2], &[-INF, -INF], 0, false), &[], &[-INF], 0.0);
    assert_close(&lse(&[2], &[INF, 1.0], 0, false), &[], &[INF], 0.0);
    assert_close(&lse(&[2], &[NAN, 1.0], 0, false), &[], &[NAN], 0.0);
    assert_close(&lse(&[0], &[], 0, false), &[], &[-INF], 0.0);
    // Along either axis of a matrix, with and without keepdims.
    let x = [0.0, 1.0, 2.0, -INF];
    let row0 = (1.0 + 1f64.exp()).ln();
    assert_close(&lse(&[2, 2], &x, 1, false), &[2], &[row0, 2.0], 1e-15);
    assert_close(&lse(&[2, 2], &x, 1, true), &[2, 1], &[row0, 2.0], 1e-15);
    let col0 = 2.0 + (1.0 + (-2f64).exp()).ln();
    assert_close(&lse(&[2, 2], &x, 0, true), &[1, 2], &[col0, 1.0], 1e-15);
    // f32: exp(1000) overflows there too, so only the shift saves it.
    let t = Tensor::<f32>::from_f64(&[2], &[1000.0, 1000.0]);
    assert_close(&ops::logsumexp(0, false, &t).unwrap(), &[], &[1000.0 + ln2], 1e-6);
}

#[test]
fn reshape_and_transpose() {
    let x = tensor(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_close(&ops::reshape(&x, &[3, 2]).unwrap(), &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 0.0);
    assert_close(&ops::reshape(&x, &[6]).unwrap(), &[6], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 0.0);
    assert_eq!(ops::reshape(&x, &[4]).unwrap_err(), "cannot reshape [2, 3] into [4]");
    assert_close(&ops::transpose(&[1, 0], &x).unwrap(), &[3, 2], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0], 0.0);
    // Output axis k is input axis perm[k]: [2, 3, 4] with [2, 0, 1] gives [4, 2, 3].
    let y: Vec<f64> = (0..24).map(f64::from).collect();
    let y = tensor(&[2, 3, 4], &y);
    let t = ops::transpose(&[2, 0, 1], &y).unwrap();
    assert_eq!(t.shape, [4, 2, 3]);
    for (a, b, c) in [(0, 0, 0), (3, 1, 2), (1, 0, 2), (2, 1, 0)] {
        assert_eq!(t.at(&[a, b, c]), y.at(&[b, c, a]));
    }
    assert_eq!(ops::transpose(&[0, 0], &x).unwrap_err(), "[0, 0] is not a permutation of the axes of [2, 3]");
}

#[test]
fn concat_any_number_of_operands() {
    let a = tensor(&[1, 2], &[1.0, 2.0]);
    let b = tensor(&[2, 2], &[3.0, 4.0, 5.0, 6.0]);
    let c = tensor(&[1, 2], &[7.0, 8.0]);
    let r = ops::concat(0, &[&a, &b, &c]).unwrap();
    assert_close(&r, &[4, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], 0.0);
    let d = tensor(&[2, 1], &[9.0, 10.0]);
    let r = ops::concat(1, &[&b, &d, &b]).unwrap();
    assert_close(&r, &[2, 5], &[3.0, 4.0, 9.0, 3.0, 4.0, 5.0, 6.0, 10.0, 5.0, 6.0], 0.0);
    assert_close(&ops::concat(0, &[&a]).unwrap(), &[1, 2], &[1.0, 2.0], 0.0);
    assert_eq!(ops::concat(1, &[&a, &b]).unwrap_err(), "cannot concatenate [1, 2] and [2, 2] along axis 1");
}

#[test]
fn slice_ranges_positions_and_negatives() {
    let x = tensor(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let s = |items: &[Slice]| ops::slice(items, &x);
    let range = |start, end| Slice::Range { start, end };
    // A range keeps the axis; the trailing axis is untouched.
    assert_close(&s(&[range(1, Some(3))]).unwrap(), &[2, 2], &[3.0, 4.0, 5.0, 6.0], 0.0);
    assert_close(&s(&[range(0, None)]).unwrap(), &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 0.0);
    // A position drops the axis.
    assert_close(&s(&[Slice::At(1)]).unwrap(), &[2], &[3.0, 4.0], 0.0);
    assert_close(&s(&[range(0, None), Slice::At(0)]).unwrap(), &[3], &[1.0, 3.0, 5.0], 0.0);
    assert_close(&s(&[Slice::At(2), Slice::At(1)]).unwrap(), &[], &[6.0], 0.0);
    // Negative positions count from the end.
    assert_close(&s(&[Slice::At(-1)]).unwrap(), &[2], &[5.0, 6.0], 0.0);
    assert_close(&s(&[range(0, None), Slice::At(-2)]).unwrap(), &[3], &[1.0, 3.0, 5.0], 0.0);
    assert_close(&s(&[range(-2, None)]).unwrap(), &[2, 2], &[3.0, 4.0, 5.0, 6.0], 0.0);
    assert_close(&s(&[range(0, Some(-1)), range(1, Some(2))]).unwrap(), &[2, 1], &[2.0, 4.0], 0.0);
    // Out of range.
    assert_eq!(s(&[Slice::At(3)]).unwrap_err(), "index 3 is out of range for axis 0 of size 3");
    assert_eq!(s(&[Slice::At(-4)]).unwrap_err(), "index -4 is out of range for axis 0 of size 3");
    assert_eq!(s(&[range(1, Some(5))]).unwrap_err(), "slice 1:5 is out of range for axis 0 of size 3");
    assert_eq!(s(&[range(0, None), range(3, None)]).unwrap_err(), "slice 3: is out of range for axis 1 of size 2");
}

#[test]
fn kmax_keeps_the_k_largest_per_row() {
    let km = |k, shape: &[usize], xs: &[f64]| ops::kmax(k, &tensor(shape, xs)).unwrap();
    assert_close(&km(2, &[4], &[3.0, 1.0, 4.0, 2.0]), &[4], &[3.0, 0.0, 4.0, 0.0], 0.0);
    // Each row on its own.
    let r = km(1, &[2, 3], &[1.0, 5.0, 2.0, 9.0, -1.0, 3.0]);
    assert_close(&r, &[2, 3], &[0.0, 5.0, 0.0, 9.0, 0.0, 0.0], 0.0);
    // Ties keep the earliest.
    assert_close(&km(2, &[4], &[1.0, 1.0, 1.0, 1.0]), &[4], &[1.0, 1.0, 0.0, 0.0], 0.0);
    assert_close(&km(2, &[4], &[0.0, 2.0, 1.0, 2.0]), &[4], &[0.0, 2.0, 0.0, 2.0], 0.0);
    assert_close(&km(2, &[4], &[3.0, 1.0, 2.0, 2.0]), &[4], &[3.0, 0.0, 2.0, 0.0], 0.0);
    // Negative entries are ranked, not clipped: the largest of negatives is kept.
    assert_close(&km(1, &[3], &[-3.0, -1.0, -2.0]), &[3], &[0.0, -1.0, 0.0], 0.0);
    // k at least the row length keeps everything.
    assert_close(&km(5, &[3], &[1.0, 2.0, 3.0]), &[3], &[1.0, 2.0, 3.0], 0.0);
    // 3-D: the last axis is the row.
    let r = km(1, &[2, 1, 2], &[1.0, 2.0, 4.0, 3.0]);
    assert_close(&r, &[2, 1, 2], &[0.0, 2.0, 4.0, 0.0], 0.0);
    assert_eq!(ops::kmax(1, &Tensor::scalar(1.0)).unwrap_err(), "kmax of a scalar");
}

#[test]
fn one_hot_rows_and_out_of_range_labels() {
    let r = ops::one_hot(3, &tensor(&[5], &[0.0, 2.0, 3.0, -1.0, 1.0])).unwrap();
    let want = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    assert_close(&r, &[5, 3], &want, 0.0);
    let r = ops::one_hot(2, &tensor(&[2, 1], &[1.0, 0.0])).unwrap();
    assert_close(&r, &[2, 1, 2], &[0.0, 1.0, 1.0, 0.0], 0.0);
    assert_close(&ops::one_hot(2, &Tensor::scalar(1.0)).unwrap(), &[2], &[0.0, 1.0], 0.0);
}

/// Every op through a graph: the dispatch, shape binding, integer data and `Cast`.
#[test]
fn a_graph_with_every_kind_of_node() {
    let mut b = Builder::new();
    let x = b.data("x", Elem::Float, vec![N, k(3)]);
    let lab = b.data("label", Elem::Int, vec![N]);
    let w = b.param("w", &[3, 2]);
    let h = b.op(Op::MatMul, &[x, w]); // [N, 2]
    let c = b.op(Op::Const(0.5), &[]);
    let h = b.op(Op::Binary(BinaryOp::Mul), &[h, c]);
    let t = b.op(Op::Transpose { perm: vec![1, 0] }, &[h]); // [2, N]
    let r = b.op_to(Op::Reshape, &[t], vec![N, k(2)]); // [N, 2] again, elements reordered
    let j = b.op(Op::Concat { axis: 1 }, &[h, r, h]); // [N, 6]
    let kk = b.op(Op::KMax { k: 2 }, &[j]);
    let oh = b.op(Op::OneHot { classes: 6 }, &[lab]); // [N, 6]
    let picked = b.op(Op::Binary(BinaryOp::Mul), &[oh, kk]);
    let lse = b.op(Op::LogSumExp { axis: 1, keepdims: false }, &[j]); // [N]
    let sel = b.op(Op::Reduce { f: ReduceOp::Sum, axes: vec![1], keepdims: false }, &[picked]);
    let d = b.op(Op::Binary(BinaryOp::Sub), &[lse, sel]);
    let first = b.op(Op::Slice { items: vec![Slice::At(0)] }, &[lab]); // int []
    let cf = b.op(Op::Cast, &[first]);
    let loss0 = b.op(Op::Reduce { f: ReduceOp::Mean, axes: vec![0], keepdims: false }, &[d]);
    let loss = b.op(Op::Binary(BinaryOp::Add), &[loss0, cf]);
    let g = b.finish(&[("loss", loss), ("kmax", kk), ("picked", sel)]);

    // x = [[1, 0, 0], [0, 1, 1]], w = [[2, 0], [0, 4], [2, 2]] → h = ½ x w = [[1, 0], [1, 3]].
    // hᵀ = [[1, 1], [0, 3]], reshaped row-major to [N, 2] = [[1, 1], [0, 3]].
    // j = [[1, 0, 1, 1, 1, 0], [1, 3, 0, 3, 1, 3]]; kmax 2 keeps the first two largest.
    let data = [host(&[2, 3], &[1.0, 0.0, 0.0, 0.0, 1.0, 1.0]), host(&[2], &[2.0, 3.0])];
    let params = [vec![2.0, 0.0, 0.0, 4.0, 2.0, 2.0]];
    let out = run_both(&g, &data, &params);
    assert_close(out.get("kmax").unwrap(), &[2, 6], &[1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 3.0, 0.0, 3.0, 0.0, 0.0], 0.0);
    // Labels 2 and 3 pick kmax entries 1 and 3.
    assert_close(out.get("picked").unwrap(), &[2], &[1.0, 3.0], 0.0);
    let e = 1f64.exp();
    let lse0 = (4.0 * e + 2.0).ln();
    let lse1 = 3.0 + (3.0 + 2.0 * (-2f64).exp() + (-3f64).exp()).ln();
    let want = ((lse0 - 1.0) + (lse1 - 3.0)) / 2.0 + 2.0;
    assert!((out.loss() - want).abs() < 1e-12, "loss {} vs {want}", out.loss());
}

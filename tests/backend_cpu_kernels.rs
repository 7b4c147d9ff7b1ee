//! The generated kernels of `backend/cpu/special/` (`logsumexp`, `one_hot`, `transpose`,
//! `slice`, `embed`, `concat`, `kmax`, `kmax_mask`) against the interpreter's per-op kernels (`interp::ops::apply`, in
//! `f32`), each compiled alone and run on odd shapes (empty axes, axes of size 1, lengths that are
//! no multiple of four, symbolic sizes), with vector code on and off and `fma` on and off.
//!
//! Tolerance: copies, `one_hot` and `kmax` must give the interpreter's bits. `logsumexp` must agree
//! on every non-finite result (−∞ for an all −∞ row or an empty axis, +∞ where an entry is +∞,
//! NaN where one is NaN) and on a finite one within `2⁻²⁴·(4·(|r| + |m|) + 8)`, `r` the result and
//! `m` the row's maximum: the kernel adds the terms `exp(x − m)` in the interpreter's order, but
//! its inline `exp` (the bits of Rust's but for 4·10⁻⁵ of all floats, then one ulp off) may move
//! the sum `s` by an ulp of itself, which `log` turns into 2⁻²³ absolute; its `log` is within an
//! ulp of Rust's (2⁻²³·|log s|, and |log s| ≤ |r| + |m|); and `m + log s` rounds once at the
//! result's magnitude.
//!
//! Also through the executor: the training step of `examples/mlp_digits.circ` runs no kernel on
//! the interpreter, and a slice position past a symbolic axis's run-time size is the
//! interpreter's error.

use circ::backend::cpu::executor::{ExecError, Executor};
use circ::backend::cpu::special::{self, Special};
use circ::backend::cpu::Options;
use circ::check::checked::{DataSource, Slice};
use circ::check::types::{Dim, Elem, SymId};
use circ::interp::{self, ops, HostTensor, InterpError, Tensor};
use circ::ir::graph::{DataInfo, Output};
use circ::ir::op::ReduceOp;
use circ::ir::{Graph, Op};

// ---------------------------------------------------------------------------------------------
// A seeded PRNG (splitmix64).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn values(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| (self.unit() * 2.0 - 1.0) * scale).collect()
    }
}

const N: Dim = Dim::Sym(SymId(0));

fn k(n: u64) -> Dim {
    Dim::Known(n)
}

fn all_options() -> Vec<Options> {
    let mut out = Vec::new();
    for vectorize in [true, false] {
        for fma in [false, true] {
            out.push(Options { fma, vectorize, ..Options::default() });
        }
    }
    out
}

/// Runs `op` on `operands` (values and run-time shapes; `shapes` the compiled ones, where `N`
/// may stand for a run-time size) through the generated kernel and through the interpreter;
/// returns (kernel, interpreter) results for each option set.
fn both(op: &Op, shapes: &[Vec<Dim>], operands: &[(Vec<usize>, Vec<f32>)]) -> Vec<(Options, Vec<f32>, Tensor<f32>)> {
    let tensors: Vec<Tensor<f32>> =
        operands.iter().map(|(s, v)| Tensor { shape: s.clone(), data: v.clone() }).collect();
    let refs: Vec<&Tensor<f32>> = tensors.iter().collect();
    // The result's compiled shape: the IR's shape rule on the compiled operand shapes.
    let elems: Vec<(Elem, &[Dim])> = shapes
        .iter()
        .map(|s| (if matches!(op, Op::OneHot { .. }) { Elem::Int } else { Elem::Float }, s.as_slice()))
        .collect();
    let result_shape = circ::ir::shape::infer(op, &elems, &[]).unwrap_or_else(|e| panic!("{}: {e}", op.name())).1;
    let special = Special::new(op, shapes, &result_shape).unwrap_or_else(|e| panic!("{}: {e}", op.name()));
    // `embed` is checked apart (its result shape is no function of its operand's).
    let result_dims: Vec<usize> = Vec::new();
    let want = ops::apply(op, &refs, &result_dims).unwrap_or_else(|e| panic!("{}: {e}", op.name()));
    let mut dims: Vec<usize> = operands.iter().flat_map(|(s, _)| s.iter().copied()).collect();
    dims.extend_from_slice(&want.shape);
    let mut out = Vec::new();
    for opts in all_options() {
        let code = special::compile(&[&special], &opts).unwrap();
        let kernel = &code.kernels()[0];
        let mut got = vec![f32::from_bits(0x7fc0_dead); want.data.len()];
        let ins: Vec<&[f32]> = operands.iter().map(|(_, v)| v.as_slice()).collect();
        kernel.run(&dims, &ins, &mut got).unwrap_or_else(|e| panic!("{} {dims:?}: {e}", op.name()));
        out.push((opts, got, want.clone()));
    }
    out
}

fn concrete(shape: &[Dim], n: usize) -> Vec<usize> {
    shape.iter().map(|d| if let Dim::Known(v) = d { *v as usize } else { n }).collect()
}

fn same_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(a.to_bits() == b.to_bits(), "{what}: element {i}: kernel {a}, interpreter {b}");
    }
}

// ---------------------------------------------------------------------------------------------
// logsumexp

/// Checks a logsumexp result against the interpreter's with the tolerance of the header.
fn check_logsumexp(what: &str, axis: usize, x: &Tensor<f32>, got: &[f32], want: &[f32]) {
    let max = ops::reduce(ReduceOp::Max, &[axis], false, x).unwrap();
    let n = x.shape[axis];
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let m = max.data[i];
        let ok = if b.is_finite() {
            let tol = (4.0 * (b.abs() + m.abs()) + 8.0) * f32::EPSILON / 2.0;
            a.is_finite() && (a - b).abs() <= tol
        } else {
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
        };
        assert!(
            ok,
            "{what}: element {i}: kernel {a}, interpreter {b} (max {m}, n {n}, {:.2} units)",
            (a - b).abs() / (f32::EPSILON / 2.0)
        );
    }
}

#[test]
fn logsumexp_on_odd_shapes() {
    let mut rng = Rng(1);
    // (compiled shape, run-time N, axis)
    let cases: Vec<(Vec<Dim>, usize, usize)> = vec![
        (vec![k(7), k(13)], 0, 1),
        (vec![k(7), k(13)], 0, 0),
        (vec![k(5), k(3)], 0, 0),
        (vec![k(3), k(9), k(6)], 0, 1),
        (vec![k(3), k(9), k(6)], 0, 2),
        (vec![k(3), k(9), k(6)], 0, 0),
        (vec![k(4), k(1), k(1)], 0, 0),
        (vec![k(1)], 0, 0),
        (vec![k(0), k(5)], 0, 1),
        (vec![k(5), k(0)], 0, 1),
        (vec![k(2), k(3), k(0)], 0, 1),
        (vec![N, k(10)], 64, 1),
        (vec![N, k(10)], 1, 1),
        (vec![N, k(10)], 0, 1),
        (vec![N, k(10)], 37, 0),
        (vec![k(10), N], 37, 1),
        (vec![k(10), N], 5, 0),
        (vec![k(2), N, k(3)], 11, 1),
        (vec![N, k(4), N], 6, 1),
        (vec![k(3), k(1000)], 0, 1),
    ];
    for (shape, n, axis) in cases {
        let dims = concrete(&shape, n);
        let count: usize = dims.iter().product();
        for scale in [1.0f32, 30.0, 1e4] {
            let values = rng.values(count, scale);
            for keepdims in [false, true] {
                let op = Op::LogSumExp { axis, keepdims };
                let x = Tensor { shape: dims.clone(), data: values.clone() };
                for (opts, got, want) in both(&op, std::slice::from_ref(&shape), &[(dims.clone(), values.clone())]) {
                    let what = format!("logsumexp[{axis}] of {dims:?} ×{scale} ({opts:?})");
                    check_logsumexp(&what, axis, &x, &got, &want.data);
                }
            }
        }
    }
}

/// Rows of special values, along a contiguous axis and a strided one: all −∞, −∞ with finite
/// entries, +∞, NaN (alone and with +∞ or −∞), huge spreads, subnormals, one entry.
#[test]
fn logsumexp_special_values() {
    let inf = f32::INFINITY;
    let nan = f32::NAN;
    let rows: Vec<Vec<f32>> = vec![
        vec![-inf; 9],
        vec![-inf, -inf, 3.0, -inf, -inf, -inf, -inf, -inf, -inf],
        vec![1.0, 2.0, inf, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, nan],
        vec![nan, inf, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        vec![-inf, 2.0, 3.0, nan, 5.0, 6.0, 7.0, -inf, 9.0],
        vec![inf, inf, -inf, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        vec![1e30, -1e30, 0.0, 1e30, 3.0e38, -3.0e38, 0.0, 0.0, 1.0],
        vec![1e-40, -1e-40, 0.0, -0.0, 1e-45, 0.0, 0.0, 0.0, 0.0],
        vec![-100.0, -100.0, -100.0, -100.0, -100.0, -100.0, -100.0, -100.0, -100.0],
        vec![88.0, 89.0, 90.0, -200.0, 0.0, 1.0, 2.0, 3.0, 4.0],
        vec![-0.0, -0.0, -0.0, -0.0, -0.0, -0.0, -0.0, -0.0, -0.0],
        vec![0.5, -inf, -inf, -inf, -inf, -inf, -inf, -inf, -inf],
    ];
    let (r, c) = (rows.len(), rows[0].len());
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    // Rows along axis 1 (contiguous), and the transpose along axis 0 (strided: four lanes of
    // neighbouring columns, then a scalar tail).
    let mut cols = vec![0.0f32; r * c];
    for i in 0..r {
        for j in 0..c {
            cols[j * r + i] = flat[i * c + j];
        }
    }
    for (shape, values, axis) in [(vec![r, c], flat.clone(), 1), (vec![c, r], cols, 0)] {
        let dims: Vec<Dim> = shape.iter().map(|d| k(*d as u64)).collect();
        let op = Op::LogSumExp { axis, keepdims: false };
        let x = Tensor { shape: shape.clone(), data: values.clone() };
        for (opts, got, want) in both(&op, &[dims], &[(shape.clone(), values.clone())]) {
            check_logsumexp(&format!("special rows along axis {axis} ({opts:?})"), axis, &x, &got, &want.data);
        }
    }
    // One entry per row: the entry itself, every special value included.
    let singles = vec![-inf, inf, nan, 0.0, -0.0, 1e-45, 3.0e38, -3.0e38, 7.5];
    let op = Op::LogSumExp { axis: 1, keepdims: true };
    let x = Tensor { shape: vec![singles.len(), 1], data: singles.clone() };
    for (opts, got, want) in both(&op, &[vec![k(singles.len() as u64), k(1)]], &[(x.shape.clone(), singles.clone())]) {
        check_logsumexp(&format!("single entries ({opts:?})"), 1, &x, &got, &want.data);
    }
}

// ---------------------------------------------------------------------------------------------
// one_hot

#[test]
fn one_hot_labels_in_and_out_of_range() {
    let labels = vec![
        0.0,
        -0.0,
        1.0,
        2.0,
        3.0,
        6.0,
        7.0,
        -1.0,
        2.5,
        0.999_999_94,
        3.000_000_2,
        1e10,
        -1e10,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e-45,
        4.0,
        5.0,
    ];
    for classes in [0u64, 1, 3, 4, 7, 13] {
        for (shape, n) in [(vec![k(labels.len() as u64)], 0), (vec![N], 0), (vec![N], 5), (vec![N], labels.len())] {
            let dims = concrete(&shape, n);
            let count: usize = dims.iter().product();
            let values = labels[..count].to_vec();
            for (opts, got, want) in
                both(&Op::OneHot { classes }, std::slice::from_ref(&shape), &[(dims.clone(), values)])
            {
                same_bits(&format!("one_hot {classes} of {dims:?} ({opts:?})"), &got, &want.data);
            }
        }
    }
    // Rank 0 and rank 2 labels.
    for (shape, dims) in [(vec![], vec![]), (vec![k(3), k(5)], vec![3, 5]), (vec![N, k(5)], vec![3, 5])] {
        let count: usize = dims.iter().product();
        let values: Vec<f32> = (0..count).map(|i| labels[i % labels.len()]).collect();
        for (opts, got, want) in
            both(&Op::OneHot { classes: 6 }, std::slice::from_ref(&shape), &[(dims.clone(), values)])
        {
            same_bits(&format!("one_hot 6 of {dims:?} ({opts:?})"), &got, &want.data);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kmax, kmax_mask

/// Rows with ties (the earliest kept), NaN (ranked highest, ties among NaNs to the earliest),
/// ±0 (equal), ±∞, for `k` below, at and above the row length, every row length up to 12 and
/// some longer ones (256 and more: where `k` up to 16 is generated).
#[test]
fn kmax_ranks_ties_nan_and_zeros_as_the_interpreter() {
    let mut rng = Rng(7);
    let palette = [1.0f32, 2.0, 2.0, -0.0, 0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -3.0, 1.0];
    for n in (0..=12).chain([16, 17, 31, 37, 256, 301]) {
        for rows in [1usize, 3] {
            let count = rows * n;
            for kind in 0..3 {
                let values: Vec<f32> = match kind {
                    0 => rng.values(count, 10.0),
                    1 => (0..count).map(|_| palette[(rng.next() % palette.len() as u64) as usize]).collect(),
                    _ => (0..count).map(|_| (rng.next() % 3) as f32).collect(),
                };
                for kk in [1u64, 2, 3, 5, 16, 40] {
                    for shape in [vec![k(rows as u64), k(n as u64)], vec![k(rows as u64), N]] {
                        for op in [Op::KMax { k: kk }, Op::KMaxMask { k: kk }] {
                            if Special::new(&op, std::slice::from_ref(&shape), &shape).is_err() {
                                assert!(
                                    kk > 16 || (kk > 4 && (n < 256 || shape[1] == N)),
                                    "{} of {shape:?} refused",
                                    op.name()
                                );
                                continue;
                            }
                            for (opts, got, want) in
                                both(&op, std::slice::from_ref(&shape), &[(vec![rows, n], values.clone())])
                            {
                                same_bits(&format!("{} of {values:?} ({opts:?})", op.name()), &got, &want.data);
                            }
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Copies

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

#[test]
fn transpose_every_permutation() {
    let mut rng = Rng(2);
    let shapes: Vec<(Vec<Dim>, usize)> = vec![
        (vec![], 0),
        (vec![k(5)], 0),
        (vec![k(9), k(7)], 0),
        (vec![k(8), k(12)], 0),
        (vec![k(17), k(33)], 0),
        (vec![k(1), k(6)], 0),
        (vec![k(0), k(6)], 0),
        (vec![k(3), k(5), k(6)], 0),
        (vec![k(4), k(8), k(5)], 0),
        (vec![k(2), k(1), k(3), k(1), k(5)], 0),
        (vec![k(2), k(3), k(4), k(5)], 0),
        (vec![N, k(7)], 13),
        (vec![N, k(7)], 0),
        (vec![k(6), N, k(5)], 9),
        (vec![N, k(1), N], 6),
    ];
    for (shape, n) in shapes {
        let dims = concrete(&shape, n);
        let count: usize = dims.iter().product();
        let values = rng.values(count, 100.0);
        for perm in permutations(shape.len()) {
            for (opts, got, want) in both(
                &Op::Transpose { perm: perm.clone() },
                std::slice::from_ref(&shape),
                &[(dims.clone(), values.clone())],
            ) {
                same_bits(&format!("transpose {perm:?} of {dims:?} ({opts:?})"), &got, &want.data);
            }
        }
    }
}

/// Slice items for a shape: positions (negative too), ranges (open, empty, full), every prefix
/// length.
fn item_sets(shape: &[usize]) -> Vec<Vec<Slice>> {
    let mut out = vec![vec![]];
    for len in 1..=shape.len() {
        let mut next = Vec::new();
        for prefix in out.iter().filter(|p| p.len() == len - 1) {
            let n = shape[len - 1] as i64;
            let mut options = vec![Slice::Range { start: 0, end: None }];
            if n > 0 {
                options.push(Slice::At(n - 1));
                options.push(Slice::At(-1));
                options.push(Slice::At(0));
                options.push(Slice::Range { start: 1.min(n), end: None });
                options.push(Slice::Range { start: 0, end: Some(n / 2) });
                options.push(Slice::Range { start: n / 2, end: Some(n / 2) });
                options.push(Slice::Range { start: -n, end: Some(-1) });
            }
            for o in options {
                let mut p = prefix.clone();
                p.push(o);
                next.push(p);
            }
        }
        out.extend(next);
    }
    out
}

#[test]
fn slice_and_embed_on_odd_shapes() {
    let mut rng = Rng(3);
    for shape in [vec![7usize], vec![5, 7], vec![3, 1, 9], vec![4, 5, 6], vec![2, 3, 2, 5], vec![0, 3]] {
        let dims: Vec<Dim> = shape.iter().map(|d| k(*d as u64)).collect();
        let count: usize = shape.iter().product();
        let values = rng.values(count, 10.0);
        for items in item_sets(&shape) {
            let op = Op::Slice { items: items.clone() };
            let results = both(&op, std::slice::from_ref(&dims), &[(shape.clone(), values.clone())]);
            for (opts, got, want) in &results {
                same_bits(&format!("slice {items:?} of {shape:?} ({opts:?})"), got, &want.data);
            }
            // The embed of the slice's shape back into `shape`.
            let sliced = results[0].2.shape.clone();
            let part: Vec<Dim> = sliced.iter().map(|d| k(*d as u64)).collect();
            let inner = rng.values(sliced.iter().product(), 10.0);
            let embed = Op::Embed { items: items.clone() };
            // `both` infers the embed's compiled result shape from the operand's; give it the
            // full shape through the shape rule's target instead.
            let special = Special::new(&embed, std::slice::from_ref(&part), &dims).unwrap();
            let want = ops::apply(&embed, &[&Tensor { shape: sliced.clone(), data: inner.clone() }], &shape).unwrap();
            let mut rt: Vec<usize> = sliced.clone();
            rt.extend_from_slice(&shape);
            for opts in all_options() {
                let code = special::compile(&[&special], &opts).unwrap();
                let mut got = vec![f32::NAN; count];
                code.kernels()[0].run(&rt, &[&inner], &mut got).unwrap();
                same_bits(&format!("embed {items:?} into {shape:?} ({opts:?})"), &got, &want.data);
            }
        }
    }
}

/// Symbolic sizes: a position counted from the end of a symbolic axis, the axes after the items
/// whole, and a position past the run-time size (refused by `fits`, so the executor runs the
/// interpreter's kernel, which reports it).
#[test]
fn slice_and_embed_of_symbolic_axes() {
    let mut rng = Rng(4);
    let shape = vec![N, k(4), N];
    for n in [0usize, 1, 3, 8] {
        let dims = concrete(&shape, n);
        let values = rng.values(dims.iter().product(), 10.0);
        let item_lists = vec![
            vec![Slice::At(-1)],
            vec![Slice::At(0), Slice::Range { start: 1, end: Some(3) }],
            vec![Slice::Range { start: 0, end: None }, Slice::At(2), Slice::At(-1)],
            vec![Slice::Range { start: 0, end: None }, Slice::Range { start: 1, end: None }],
        ];
        for items in item_lists {
            let op = Op::Slice { items: items.clone() };
            let fits = ops::apply(&op, &[&Tensor { shape: dims.clone(), data: values.clone() }], &[]);
            let elems = [(Elem::Float, shape.as_slice())];
            let result = circ::ir::shape::infer(&op, &elems, &[]).unwrap().1;
            let special = Special::new(&op, std::slice::from_ref(&shape), &result).unwrap();
            let code = special::compile(&[&special], &Options::default()).unwrap();
            match fits {
                Ok(want) => {
                    let mut rt = dims.clone();
                    rt.extend_from_slice(&want.shape);
                    let mut got = vec![f32::NAN; want.data.len()];
                    code.kernels()[0].run(&rt, &[&values], &mut got).unwrap();
                    same_bits(&format!("slice {items:?} of {dims:?}"), &got, &want.data);
                }
                Err(_) => {
                    // Whatever result shape the caller claims, the kernel refuses to run.
                    let mut rt = dims.clone();
                    rt.extend(concrete(&result, n));
                    assert!(!special.fits(&rt), "slice {items:?} of {dims:?} should not fit");
                    let mut got = vec![0.0; concrete(&result, n).iter().product()];
                    assert!(code.kernels()[0].run(&rt, &[&values], &mut got).is_err());
                }
            }
        }
    }
}

#[test]
fn concat_along_every_axis() {
    let mut rng = Rng(5);
    // (operand shapes differing along `axis`)
    for axis in 0..3 {
        for extents in [vec![1usize], vec![3, 5], vec![0, 4, 1], vec![2, 0], vec![7, 6, 5, 1]] {
            for base in [[2usize, 3, 5], [1, 1, 4], [3, 4, 1]] {
                let shapes: Vec<Vec<usize>> = extents
                    .iter()
                    .map(|e| {
                        let mut s = base.to_vec();
                        s[axis] = *e;
                        s
                    })
                    .collect();
                let operands: Vec<(Vec<usize>, Vec<f32>)> =
                    shapes.iter().map(|s| (s.clone(), rng.values(s.iter().product(), 5.0))).collect();
                let compiled: Vec<Vec<Dim>> = shapes.iter().map(|s| s.iter().map(|d| k(*d as u64)).collect()).collect();
                for (opts, got, want) in both(&Op::Concat { axis }, &compiled, &operands) {
                    same_bits(&format!("concat[{axis}] of {shapes:?} ({opts:?})"), &got, &want.data);
                }
            }
        }
    }
    // Symbolic outer axis, one value twice.
    let shape = vec![N, k(3)];
    for n in [0usize, 1, 6] {
        let dims = concrete(&shape, n);
        let x = rng.values(dims.iter().product(), 5.0);
        let operands = vec![(dims.clone(), x.clone()), (dims.clone(), x.clone())];
        for (opts, got, want) in both(&Op::Concat { axis: 1 }, &[shape.clone(), shape.clone()], &operands) {
            same_bits(&format!("concat[1] of x, x with N = {n} ({opts:?})"), &got, &want.data);
        }
    }
}

#[test]
fn sizes_that_do_not_fit_are_refused() {
    let op = Op::Transpose { perm: vec![1, 0] };
    let special = Special::new(&op, &[vec![N, k(3)]], &[k(3), N]).unwrap();
    assert!(special.fits(&[4, 3, 3, 4]));
    assert!(!special.fits(&[4, 3, 3, 5]), "the result's N differs");
    assert!(!special.fits(&[4, 2, 2, 4]), "a known size differs");
    assert!(!special.fits(&[4, 3, 3]), "too few sizes");
    let code = special::compile(&[&special], &Options::default()).unwrap();
    let x = vec![0.0f32; 12];
    let mut y = vec![0.0f32; 11];
    assert!(code.kernels()[0].run(&[4, 3, 3, 4], &[&x], &mut y).is_err(), "a short result buffer");
    // Ops and shapes it does not generate.
    assert!(Special::new(&Op::KMax { k: 5 }, &[vec![k(2), N]], &[k(2), N]).is_err(), "many kept");
    assert!(Special::new(&Op::KMaxMask { k: 4 }, &[vec![k(2), N]], &[k(2), N]).is_ok());
    assert!(Special::new(&Op::KMaxMask { k: 16 }, &[vec![k(256)]], &[k(256)]).is_ok(), "a long row");
    assert!(Special::new(&Op::KMaxMask { k: 17 }, &[vec![k(256)]], &[k(256)]).is_err());
    assert!(Special::new(&Op::KMax { k: 2 }, &[vec![]], &[]).is_err(), "a scalar");
    assert!(Special::new(&Op::Reduce { f: ReduceOp::Sum, axes: vec![0], keepdims: false }, &[vec![k(4)]], &[]).is_err());
    assert!(Special::new(&Op::LogSumExp { axis: 0, keepdims: false }, &[vec![Dim::Any]], &[]).is_err());
    assert!(Special::new(&Op::LogSumExp { axis: 2, keepdims: false }, &[vec![k(2), k(3)]], &[k(2)]).is_err());
}

// ---------------------------------------------------------------------------------------------
// Through the executor.

#[test]
fn the_digits_step_runs_no_kernel_on_the_interpreter() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mlp_digits.circ")).unwrap();
    let checked = circ::driver::check_source("mlp_digits.circ", &text);
    assert!(!checked.has_errors(), "{}", checked.render(false));
    let rule = circ::driver::parse_update_rule("sgd(lr = 0.1)").unwrap();
    let g = circ::train::step::build(&checked.models[0], 0, &rule).graph;
    let exec = Executor::new(&g).unwrap();
    let s = exec.stats();
    assert_eq!(s.interpreted, 0, "{s:?}");
    assert_eq!(s.special, 2, "logsumexp and one_hot: {s:?}");
    assert_eq!(s.jit + s.matmul + s.interpreted, s.kernels);
}

#[test]
fn a_slice_past_a_symbolic_size_is_the_interpreters_error() {
    let mut g = Graph::default();
    g.syms = vec!["N".into()];
    g.data.push(DataInfo {
        name: "x".into(),
        elem: Elem::Float,
        shape: vec![N, k(3)],
        source: DataSource::Columns(vec![]),
    });
    let x = g.push(Op::Data(0), &[], None, None);
    let s = g.push(Op::Slice { items: vec![Slice::At(4)] }, &[x], None, None);
    let t = g.push(Op::Transpose { perm: vec![1, 0] }, &[x], None, None);
    let l = g.push(Op::Reduce { f: ReduceOp::Sum, axes: vec![0], keepdims: false }, &[s], None, None);
    g.outputs.push(Output { name: "loss".into(), node: l });
    g.outputs.push(Output { name: "t".into(), node: t });
    circ::ir::verify::verify(&g).unwrap();
    let mut exec = Executor::new(&g).unwrap();
    assert_eq!(exec.stats().special, 2, "{:?}", exec.stats());
    for n in [5usize, 2, 7] {
        let data = vec![HostTensor::new(vec![n, 3], (0..3 * n).map(|i| i as f64).collect())];
        let want = interp::run_with::<f32>(&g, &data, &[], &[]);
        let got = exec.run(&data, &[], &[]);
        match (got, want) {
            (Ok(a), Ok(b)) => {
                for name in ["loss", "t"] {
                    same_bits(name, &a.get(name).unwrap().data, &b.get(name).unwrap().data);
                }
            }
            (Err(ExecError::Interp(a)), Err(b)) => {
                assert_eq!(a, b);
                assert!(matches!(a, InterpError::Node { .. }), "{a}");
            }
            (a, b) => panic!("N = {n}: executor {:?}, interpreter {:?}", a.map(|_| ()), b.map(|_| ())),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Timing.

/// Times each generated kernel on a few shapes against the interpreter's kernel
/// (`cargo test --release --test backend_cpu_kernels -- --ignored --nocapture`).
#[test]
#[ignore = "timing; run with --release --ignored --nocapture"]
fn time_the_generated_kernels() {
    let mut rng = Rng(6);
    let cases: Vec<(Op, Vec<usize>)> = vec![
        (Op::LogSumExp { axis: 1, keepdims: false }, vec![64, 10]),
        (Op::LogSumExp { axis: 1, keepdims: false }, vec![1024, 10]),
        (Op::LogSumExp { axis: 1, keepdims: false }, vec![64, 1000]),
        (Op::LogSumExp { axis: 0, keepdims: false }, vec![64, 1000]),
        (Op::OneHot { classes: 10 }, vec![64]),
        (Op::Transpose { perm: vec![1, 0] }, vec![64, 128]),
        (Op::Transpose { perm: vec![1, 0] }, vec![784, 256]),
        (Op::Transpose { perm: vec![0, 2, 1] }, vec![16, 64, 64]),
        (
            Op::Slice { items: vec![Slice::Range { start: 0, end: None }, Slice::Range { start: 1, end: Some(100) }] },
            vec![256, 128],
        ),
        (Op::Concat { axis: 1 }, vec![256, 64]),
        (Op::KMax { k: 3 }, vec![64, 10]),
        (Op::KMax { k: 3 }, vec![16, 1000]),
        (Op::KMaxMask { k: 4 }, vec![16, 256]),
        (Op::KMaxMask { k: 4 }, vec![16, 64]),
        (Op::KMax { k: 1 }, vec![64, 10]),
        (Op::KMax { k: 16 }, vec![16, 1000]),
    ];
    for (op, shape) in cases {
        let count: usize = shape.iter().product();
        let values: Vec<f32> = if matches!(op, Op::OneHot { .. }) {
            (0..count).map(|i| (i % 10) as f32).collect()
        } else {
            rng.values(count, 5.0)
        };
        let arity = if matches!(op, Op::Concat { .. }) { 2 } else { 1 };
        let dims: Vec<Dim> = shape.iter().map(|d| k(*d as u64)).collect();
        let t = Tensor { shape: shape.clone(), data: values.clone() };
        let refs: Vec<&Tensor<f32>> = (0..arity).map(|_| &t).collect();
        let want = ops::apply(&op, &refs, &[]).unwrap();
        let shapes: Vec<Vec<Dim>> = (0..arity).map(|_| dims.clone()).collect();
        let result: Vec<Dim> = want.shape.iter().map(|d| k(*d as u64)).collect();
        let special = Special::new(&op, &shapes, &result).unwrap();
        let code = special::compile(&[&special], &Options::default()).unwrap();
        let mut rt: Vec<usize> = (0..arity).flat_map(|_| shape.iter().copied()).collect();
        rt.extend_from_slice(&want.shape);
        let mut got = vec![0.0f32; want.data.len()];
        let ins: Vec<&[f32]> = (0..arity).map(|_| values.as_slice()).collect();
        let time = |f: &mut dyn FnMut()| {
            let mut v = Vec::new();
            for _ in 0..30 {
                let t = std::time::Instant::now();
                for _ in 0..20 {
                    f();
                }
                v.push(t.elapsed().as_secs_f64() / 20.0);
            }
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let kernel = time(&mut || code.kernels()[0].run(&rt, &ins, &mut got).unwrap());
        let interp = time(&mut || {
            std::hint::black_box(ops::apply(&op, &refs, &[]).unwrap());
        });
        println!(
            "{:<40} {:>14}: kernel {:>9.2} µs, interpreter {:>9.2} µs",
            op.name(),
            format!("{shape:?}"),
            kernel * 1e6,
            interp * 1e6
        );
    }
}

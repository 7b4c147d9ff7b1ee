//! One random case generator per op family: shapes and values drawn from the trial's PRNG, the
//! op applied to parameters, and the weighted-sum loss of `Builder::finish`.

use super::harness::{count, known, Builder, Case, Dom, Rng};
use circ::check::checked::Slice;
use circ::check::types::Dim;
use circ::ir::op::{BinaryOp, Op, ReduceOp, UnaryOp};
use circ::ir::NodeId;

/// Where a unary op is smooth and defined.
pub fn unary_domain(f: UnaryOp) -> Dom {
    match f {
        UnaryOp::Log | UnaryOp::Sqrt => Dom::Pos,
        UnaryOp::Relu | UnaryOp::Abs | UnaryOp::Recip | UnaryOp::Step | UnaryOp::Sign => Dom::AwayZero,
        UnaryOp::Exp => Dom::Wide,
        UnaryOp::Neg | UnaryOp::Sigmoid | UnaryOp::Tanh | UnaryOp::Softplus | UnaryOp::Square => Dom::Any,
    }
}

/// `f(p)`, and now and then `f(p·q)` so the operand is not a leaf.
pub fn unary(f: UnaryOp) -> impl FnMut(&mut Rng) -> Case {
    move |rng| {
        let mut b = Builder::new();
        let shape = rng.shape(0, 3, 4);
        let dom = unary_domain(f);
        let x = if rng.coin(0.25) && dom != Dom::AwayZero {
            // A non-leaf operand: p · q with q positive keeps p's domain (for Pos, q ≥ 1).
            let p = b.rand_param(rng, &shape, dom);
            let qs = rng.broadcast_operand(&shape);
            let q = b.param(&qs, (0..count(&qs)).map(|_| rng.uniform(1.0, 1.5)).collect());
            b.bin(BinaryOp::Mul, p, q)
        } else {
            b.rand_param(rng, &shape, dom)
        };
        let y = b.un(f, x);
        b.finish(y, rng, format!("{f:?} of {shape:?}"))
    }
}

/// `a ∘ b` with numpy broadcasting both ways; now and then `a ∘ a`, or one side data.
pub fn binary(f: BinaryOp) -> impl FnMut(&mut Rng) -> Case {
    move |rng| {
        let mut b = Builder::new();
        let out = rng.shape(0, 3, 4);
        let (sa, sb) = (rng.broadcast_operand(&out), rng.broadcast_operand(&out));
        let (da, db) = match f {
            BinaryOp::Pow => (Dom::Pos, Dom::Wide),
            BinaryOp::Div => (Dom::Any, Dom::AwayZero),
            _ => (Dom::Any, Dom::Any),
        };
        let what;
        let y = match rng.below(6) {
            0 => {
                // The same operand twice: both contributions must add up.
                let dom =
                    if f == BinaryOp::Mul || f == BinaryOp::Add || f == BinaryOp::Sub { Dom::Any } else { Dom::Pos };
                let a = b.rand_param(rng, &sa, dom);
                what = format!("{f:?}(a, a), a: {sa:?}");
                b.bin(f, a, a)
            }
            1 if f == BinaryOp::Pow && rng.coin(0.5) => {
                // Integer exponents allow negative bases.
                let a = b.rand_param(rng, &sa, Dom::AwayZero);
                let ints: Vec<f64> = (0..count(&sb)).map(|_| rng.range(0, 5) as f64 - 2.0).collect();
                let c = b.data(&known(&sb), ints);
                what = format!("Pow(param {sa:?} of either sign, integer data {sb:?})");
                b.bin(f, a, c)
            }
            1 => {
                let a = b.rand_param(rng, &sa, da);
                let c = b.rand_data(rng, &known(&sb), db);
                what = format!("{f:?}(param {sa:?}, data {sb:?})");
                b.bin(f, a, c)
            }
            2 => {
                let c = b.rand_data(rng, &known(&sa), da);
                let a = b.rand_param(rng, &sb, db);
                what = format!("{f:?}(data {sa:?}, param {sb:?})");
                b.bin(f, c, a)
            }
            _ => {
                let a = b.rand_param(rng, &sa, da);
                let c = b.rand_param(rng, &sb, db);
                what = format!("{f:?}({sa:?}, {sb:?})");
                b.bin(f, a, c)
            }
        };
        b.finish(y, rng, what)
    }
}

/// The numpy rank cases of `matmul`, as (shape of a, shape of b) from sizes n, k, m and batch
/// sizes.
pub const MATMUL_CASES: &[&str] = &[
    "k@k", "nk@k", "k@km", "nk@km", "Bnk@km", "nk@Bkm", "Bnk@Bkm", "1nk@Bkm", "Bnk@1km", "B1nk@Ckm", "k@Bkm", "Bnk@k",
];

pub fn matmul(case: &'static str) -> impl FnMut(&mut Rng) -> Case {
    move |rng| {
        let mut b = Builder::new();
        let (n, k, m) = (rng.range(1, 4), rng.range(1, 4), rng.range(1, 4));
        let (bb, c) = (rng.range(2, 3), rng.range(2, 3));
        let (l, r) = case.split_once('@').unwrap();
        let dims = |s: &str| -> Vec<usize> {
            s.chars()
                .map(|ch| match ch {
                    'n' => n,
                    'k' => k,
                    'm' => m,
                    'B' => bb,
                    'C' => c,
                    '1' => 1,
                    _ => unreachable!(),
                })
                .collect()
        };
        let (sa, sb) = (dims(l), dims(r));
        let a = b.rand_param(rng, &sa, Dom::Any);
        let w = b.rand_param(rng, &sb, Dom::Any);
        let y = b.op(Op::MatMul, &[a, w]);
        b.finish(y, rng, format!("matmul {sa:?} @ {sb:?}"))
    }
}

fn axes_subset(rng: &mut Rng, rank: usize) -> Vec<usize> {
    if rng.coin(0.1) {
        return Vec::new();
    }
    loop {
        let axes: Vec<usize> = (0..rank).filter(|_| rng.coin(0.5)).collect();
        if !axes.is_empty() {
            return axes;
        }
    }
}

pub fn reduce(f: ReduceOp) -> impl FnMut(&mut Rng) -> Case {
    move |rng| {
        let mut b = Builder::new();
        let shape = rng.shape(1, 3, 4);
        let axes = axes_subset(rng, shape.len());
        let keepdims = rng.coin(0.5);
        let dom = if f == ReduceOp::Max { Dom::Distinct } else { Dom::Any };
        let x = b.rand_param(rng, &shape, dom);
        let y = b.op(Op::Reduce { f, axes: axes.clone(), keepdims }, &[x]);
        b.finish(y, rng, format!("{f:?} over {axes:?} of {shape:?}, keepdims {keepdims}"))
    }
}

pub fn logsumexp(rng: &mut Rng) -> Case {
    let mut b = Builder::new();
    let shape = rng.shape(1, 3, 4);
    let axis = rng.below(shape.len());
    let keepdims = rng.coin(0.5);
    let x = b.rand_param(rng, &shape, Dom::Wide);
    let y = b.op(Op::LogSumExp { axis, keepdims }, &[x]);
    b.finish(y, rng, format!("logsumexp over {axis} of {shape:?}, keepdims {keepdims}"))
}

/// A random shape of `n` elements and rank up to 3 (ones inserted now and then).
fn factor_shape(rng: &mut Rng, n: usize) -> Vec<usize> {
    let mut primes = Vec::new();
    let mut m = n;
    let mut p = 2;
    while m > 1 {
        while m.is_multiple_of(p) {
            primes.push(p);
            m /= p;
        }
        p += 1;
    }
    let rank = rng.range(usize::from(n > 1), 3);
    if rank == 0 {
        return Vec::new();
    }
    let mut shape = vec![1; rank];
    for p in primes {
        let i = rng.below(rank);
        shape[i] *= p;
    }
    shape
}

pub fn reshape(rng: &mut Rng) -> Case {
    let mut b = Builder::new();
    let shape = rng.shape(0, 3, 4);
    let target = factor_shape(rng, count(&shape));
    let x = b.rand_param(rng, &shape, Dom::Any);
    let y = b.op_to(Op::Reshape, &[x], known(&target));
    b.finish(y, rng, format!("reshape {shape:?} -> {target:?}"))
}

pub fn transpose(rng: &mut Rng) -> Case {
    let mut b = Builder::new();
    let shape = rng.shape(1, 4, 3);
    let mut perm: Vec<usize> = (0..shape.len()).collect();
    rng.shuffle(&mut perm);
    let x = b.rand_param(rng, &shape, Dom::Any);
    let y = b.op(Op::Transpose { perm: perm.clone() }, &[x]);
    b.finish(y, rng, format!("transpose {perm:?} of {shape:?}"))
}

/// 2 or 3 operands along a random axis; now and then one is data (a zero tangent) or the same
/// parameter appears twice.
pub fn concat(rng: &mut Rng) -> Case {
    let mut b = Builder::new();
    let base = rng.shape(1, 3, 3);
    let axis = rng.below(base.len());
    let parts = rng.range(2, 3);
    let mut xs: Vec<NodeId> = Vec::new();
    let mut shapes = Vec::new();
    for i in 0..parts {
        let mut s = base.clone();
        s[axis] = rng.range(1, 3);
        let x = if i > 0 && rng.coin(0.2) {
            shapes.push(format!("{s:?} (data)"));
            b.rand_data(rng, &known(&s), Dom::Any)
        } else if i > 0 && rng.coin(0.2) {
            shapes.push("(operand 0 again)".to_string());
            xs[0]
        } else {
            shapes.push(format!("{s:?}"));
            b.rand_param(rng, &s, Dom::Any)
        };
        xs.push(x);
    }
    let y = b.op(Op::Concat { axis }, &xs);
    b.finish(y, rng, format!("concat along {axis} of {}", shapes.join(", ")))
}

/// Random slice items for `shape`: positions and ranges (closed or open), at least one element.
fn slice_items(rng: &mut Rng, shape: &[usize]) -> Vec<Slice> {
    let n = rng.range(1, shape.len());
    shape[..n]
        .iter()
        .map(|&d| {
            if rng.coin(0.3) {
                Slice::At(rng.below(d) as i64)
            } else {
                let start = rng.below(d);
                let end = rng.range(start + 1, d);
                if end == d && rng.coin(0.5) {
                    Slice::Range { start: start as i64, end: None }
                } else {
                    Slice::Range { start: start as i64, end: Some(end as i64) }
                }
            }
        })
        .collect()
}

pub fn slice(rng: &mut Rng) -> Case {
    let mut b = Builder::new();
    let shape = rng.shape(1, 3, 4);
    let items = slice_items(rng, &shape);
    let x = b.rand_param(rng, &shape, Dom::Any);
    let y = b.op(Op::Slice { items: items.clone() }, &[x]);
    b.finish(y, rng, format!("slice {items:?} of {shape:?}"))
}

pub fn embed(rng: &mut Rng) -> Case {
    let mut b = Builder::new();
    let target = rng.shape(1, 3, 4);
    let items = slice_items(rng, &target);
    // The operand has the shape the slice would read.
    let mut sub = Vec::new();
    for (item, d) in items.iter().zip(&target) {
        match item {
            Slice::At(_) => {}
            Slice::Range { start, end } => sub.push(end.map_or(*d as i64, |e| e) as usize - *start as usize),
        }
    }
    sub.extend_from_slice(&target[items.len()..]);
    let x = b.rand_param(rng, &sub, Dom::Any);
    let y = b.op_to(Op::Embed { items: items.clone() }, &[x], known(&target));
    b.finish(y, rng, format!("embed {sub:?} at {items:?} into {target:?}"))
}

pub fn expand(rng: &mut Rng) -> Case {
    let mut b = Builder::new();
    let target = rng.shape(1, 3, 4);
    let src = rng.broadcast_operand(&target);
    let x = b.rand_param(rng, &src, Dom::Any);
    let y = b.op_to(Op::Expand, &[x], known(&target));
    b.finish(y, rng, format!("expand {src:?} -> {target:?}"))
}

pub fn kmax(rng: &mut Rng) -> Case {
    let mut b = Builder::new();
    let mut shape = rng.shape(0, 2, 3);
    let row = rng.range(1, 5);
    shape.push(row);
    let k = rng.range(1, row + 1) as u64;
    let x = b.rand_param(rng, &shape, Dom::Distinct);
    let y = b.op(Op::KMax { k }, &[x]);
    b.finish(y, rng, format!("kmax {k} of {shape:?}"))
}

/// The ops without a derivative (`OneHot`, `Cast`, `Step`, `Sign`, `Eq`, `KMaxMask`) next to
/// differentiable paths: the gradient must flow through the others and see them as constants.
pub fn flow(which: &'static str) -> impl FnMut(&mut Rng) -> Case {
    move |rng| {
        let mut b = Builder::new();
        let shape = rng.shape(1, 2, 4);
        let n = shape.len();
        let y = match which {
            "one_hot" => {
                let classes = rng.range(1, 4);
                // One label out of range now and then: an all-zero row.
                let labels: Vec<f64> = (0..count(&shape))
                    .map(|_| {
                        let top = classes - usize::from(rng.coin(0.9));
                        rng.range(0, top) as f64
                    })
                    .collect();
                let l = b.int_data(&known(&shape), labels);
                let oh = b.op(Op::OneHot { classes: classes as u64 }, &[l]);
                let mut ps = shape.clone();
                ps.push(classes);
                let p = b.rand_param(rng, &ps, Dom::Any);
                let q = b.rand_param(rng, &ps, Dom::Any);
                let t = b.bin(BinaryOp::Mul, oh, p);
                b.bin(BinaryOp::Add, t, q)
            }
            "cast" => {
                let ints: Vec<f64> = (0..count(&shape)).map(|_| rng.range(0, 4) as f64 - 2.0).collect();
                let c = b.int_data(&known(&shape), ints);
                let c = b.op(Op::Cast, &[c]);
                let p = b.rand_param(rng, &shape, Dom::Any);
                b.bin(BinaryOp::Mul, c, p)
            }
            "step" | "sign" => {
                // step(p)·p = relu(p), sign(p)·p = |p|.
                let f = if which == "step" { UnaryOp::Step } else { UnaryOp::Sign };
                let p = b.rand_param(rng, &shape, Dom::AwayZero);
                let s = b.un(f, p);
                b.bin(BinaryOp::Mul, s, p)
            }
            "eq" => {
                // eq(p, p)·p = p; eq(p, q)·q = 0 for q ≠ p.
                let p = b.rand_param(rng, &shape, Dom::Any);
                let q = b.rand_param(rng, &shape, Dom::Any);
                let e1 = b.bin(BinaryOp::Eq, p, p);
                let e2 = b.bin(BinaryOp::Eq, p, q);
                let t1 = b.bin(BinaryOp::Mul, e1, p);
                let t2 = b.bin(BinaryOp::Mul, e2, q);
                let t = b.bin(BinaryOp::Add, t1, t2);
                b.bin(BinaryOp::Add, t, q)
            }
            "kmax_mask" => {
                let k = rng.range(1, shape[n - 1]) as u64;
                let p = b.rand_param(rng, &shape, Dom::Distinct);
                let m = b.op(Op::KMaxMask { k }, &[p]);
                b.bin(BinaryOp::Mul, m, p)
            }
            _ => unreachable!(),
        };
        b.finish(y, rng, format!("{which} next to a differentiable path, shape {shape:?}"))
    }
}

/// Ops on tensors with a symbolic axis `N` (bound to 5 by the data): `x[N, k] · p[k]` then a
/// reduction, logsumexp, concat, slice or expand that involves `N`, so `count` and `sum_to` meet
/// symbolic sizes.
pub fn symbolic(rng: &mut Rng) -> Case {
    let mut b = Builder::new();
    let nsym = b.sym("N", 5);
    let k = rng.range(1, 4);
    let xs = vec![nsym, Dim::Known(k as u64)];
    // Each column of x holds distinct positive values, so x·p (p > 0) has no ties along N.
    let mut xv = vec![0.0; 5 * k];
    for j in 0..k {
        let col = rng.values(5, Dom::Distinct);
        for i in 0..5 {
            xv[i * k + j] = col[i] + 1.0;
        }
    }
    let x = b.data(&xs, xv);
    let p = b.rand_param(rng, &[k], Dom::Pos);
    let xp = b.bin(BinaryOp::Mul, x, p);
    let kind = rng.below(15);
    let keepdims = rng.coin(0.5);
    let (y, what) = match kind {
        0..=2 => {
            let f = [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max][kind];
            // Max only along N, where each column's values are distinct.
            let axes = if f == ReduceOp::Max { vec![0] } else { [vec![0], vec![0, 1], vec![1]][rng.below(3)].clone() };
            (b.op(Op::Reduce { f, axes: axes.clone(), keepdims }, &[xp]), format!("{f:?} over {axes:?}"))
        }
        3 => {
            let axis = rng.below(2);
            (b.op(Op::LogSumExp { axis, keepdims }, &[xp]), format!("logsumexp over {axis}"))
        }
        4 => {
            let q = b.rand_param(rng, &[1], Dom::Any);
            let xq = b.bin(BinaryOp::Mul, x, q);
            (b.op(Op::Concat { axis: 1 }, &[xp, xq]), "concat along 1 of [N, k] and [N, k]".to_string())
        }
        5 => {
            let items = vec![Slice::Range { start: 0, end: None }, Slice::At(rng.below(k) as i64)];
            (b.op(Op::Slice { items }, &[xp]), "slice [:, j]".to_string())
        }
        6 => {
            let q = b.rand_param(rng, &[1, k], Dom::Any);
            let e = b.op_to(Op::Expand, &[q], xs.clone());
            (b.bin(BinaryOp::Mul, e, xp), "expand [1, k] -> [N, k]".to_string())
        }
        7 => {
            let w = b.rand_param(rng, &[k, 2], Dom::Any);
            (b.op(Op::MatMul, &[xp, w]), "[N, k] @ [k, 2]".to_string())
        }
        8 => {
            // N as a batch axis of matmul: the weight's gradient sums over it.
            let z = b.rand_data(rng, &[nsym, Dim::Known(2), Dim::Known(k as u64)], Dom::Any);
            let z = b.bin(BinaryOp::Mul, z, p);
            let ws: Vec<usize> = if rng.coin(0.5) { vec![k, 2] } else { vec![1, k, 2] };
            let w = b.rand_param(rng, &ws, Dom::Any);
            let zw = b.op(Op::MatMul, &[z, w]);
            (b.op(Op::Concat { axis: 2 }, &[zw, zw]), format!("([N, 2, k] * p) @ {ws:?}, concatenated with itself"))
        }
        9 => (b.op(Op::Transpose { perm: vec![1, 0] }, &[xp]), "transpose [N, k] -> [k, N]".to_string()),
        10 => (
            b.op_to(Op::Reshape, &[xp], vec![nsym, Dim::Known(1), Dim::Known(k as u64)]),
            "reshape [N, k] -> [N, 1, k]".to_string(),
        ),
        11 => {
            // kmax along N (a symbolic last axis), where the values are distinct.
            let t = b.op(Op::Transpose { perm: vec![1, 0] }, &[xp]);
            let kk = rng.range(1, 5) as u64;
            (b.op(Op::KMax { k: kk }, &[t]), format!("kmax {kk} of [k, N]"))
        }
        13 => {
            // A closed range of the symbolic axis (valid while N ≥ 3), and its adjoint embed.
            let items = vec![Slice::Range { start: 1, end: Some(3) }];
            (b.op(Op::Slice { items }, &[xp]), "slice [1:3] of [N, k]".to_string())
        }
        14 => {
            let items = vec![Slice::At(rng.below(5) as i64)];
            (b.op(Op::Slice { items: items.clone() }, &[xp]), format!("slice {items:?} of [N, k]"))
        }
        _ => {
            let q = b.rand_param(rng, &[k], Dom::Any);
            let target = vec![nsym, Dim::Known(2), Dim::Known(k as u64)];
            let e = b.op_to(Op::Expand, &[q], target.clone());
            let z = b.rand_data(rng, &target, Dom::Any);
            let ez = b.bin(BinaryOp::Mul, e, z);
            (b.bin(BinaryOp::Mul, ez, p), "expand [k] -> [N, 2, k]".to_string())
        }
    };
    if b.g.users(xp).is_empty() {
        // Unused here: drop them (the datum stays declared and bound, as an unused one may).
        b.g.remove(xp);
        b.g.remove(x);
    }
    b.finish(y, rng, format!("symbolic N = 5, k = {k}: {what}, keepdims {keepdims}"))
}

/// A two-layer perceptron written directly in IR ops, softmax cross-entropy on one-hot labels:
/// `loss = Σ logsumexp(z) − Σ onehot ∘ z`, `z = tanh(x @ w1 + b1) @ w2 + b2`.
pub fn mlp(rng: &mut Rng) -> Case {
    let mut b = Builder::new();
    let (n, i, h, o) = (4, 3, 3, 2);
    let x = b.rand_data(rng, &known(&[n, i]), Dom::Any);
    let labels: Vec<f64> = (0..n).map(|_| rng.below(o) as f64).collect();
    let l = b.int_data(&known(&[n]), labels);
    let w1 = b.rand_param(rng, &[i, h], Dom::Any);
    let b1 = b.rand_param(rng, &[h], Dom::Any);
    let w2 = b.rand_param(rng, &[h, o], Dom::Any);
    let b2 = b.rand_param(rng, &[o], Dom::Any);
    let a = b.op(Op::MatMul, &[x, w1]);
    let a = b.bin(BinaryOp::Add, a, b1);
    let hid = b.un(UnaryOp::Tanh, a);
    let z = b.op(Op::MatMul, &[hid, w2]);
    let z = b.bin(BinaryOp::Add, z, b2);
    let lse = b.op(Op::LogSumExp { axis: 1, keepdims: false }, &[z]);
    let lse = b.op(Op::Reduce { f: ReduceOp::Sum, axes: vec![0], keepdims: false }, &[lse]);
    let oh = b.op(Op::OneHot { classes: o as u64 }, &[l]);
    let picked = b.bin(BinaryOp::Mul, oh, z);
    let picked = b.op(Op::Reduce { f: ReduceOp::Sum, axes: vec![0, 1], keepdims: false }, &[picked]);
    let nll = b.bin(BinaryOp::Sub, lse, picked);
    // A normal prior on w1: ½Σw².
    let sq = b.un(UnaryOp::Square, w1);
    let sq = b.op(Op::Reduce { f: ReduceOp::Sum, axes: vec![0, 1], keepdims: false }, &[sq]);
    let half = b.g.constant(0.5, None);
    let prior = b.bin(BinaryOp::Mul, half, sq);
    let loss = b.bin(BinaryOp::Add, nll, prior);
    b.finish_with_loss(loss, "mlp [4, 3] -> tanh [3] -> logits [2], cross-entropy + ½|w1|²".into())
}

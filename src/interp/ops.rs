//! One kernel per IR op, on concrete tensors, with exactly the semantics written in `ir/op.rs`.
//! Each returns the result or a message saying why the operands do not fit; the caller names the
//! node. Straightforward loops: clarity over speed, but nothing worse than the plain matmul.

use super::real::Real;
use super::tensor::{broadcast_shapes, broadcast_strides, count, for_each_offset, strides, Tensor};
use crate::check::checked::Slice;
use crate::ir::op::{BinaryOp, Op, ReduceOp, UnaryOp};
use std::cmp::Ordering;

pub type OpResult<T> = Result<Tensor<T>, String>;

pub fn unary<T: Real>(f: UnaryOp, x: &Tensor<T>) -> Tensor<T> {
    x.map(|v| unary_fn(f, v))
}

/// The value of a non-leaf op on its operands' values; `shape` is the node's concrete shape (the
/// target of reshape, expand and embed). Leaves are the caller's: they read host buffers.
pub fn apply<T: Real>(op: &Op, x: &[&Tensor<T>], shape: &[usize]) -> OpResult<T> {
    match op {
        Op::Data(_) | Op::Param(_) | Op::Input(_) | Op::Const(_) => Err(format!("{} is a leaf", op.name())),
        Op::Unary(f) => Ok(unary(*f, x[0])),
        Op::Binary(f) => binary(*f, x[0], x[1]),
        Op::MatMul => matmul(x[0], x[1]),
        Op::Reduce { f, axes, keepdims } => reduce(*f, axes, *keepdims, x[0]),
        Op::LogSumExp { axis, keepdims } => logsumexp(*axis, *keepdims, x[0]),
        Op::Reshape => reshape(x[0], shape),
        Op::Transpose { perm } => transpose(perm, x[0]),
        Op::Concat { axis } => concat(*axis, x),
        Op::Slice { items } => slice(items, x[0]),
        Op::KMax { k } => kmax(*k, x[0]),
        Op::OneHot { classes } => one_hot(*classes, x[0]),
        Op::Cast => Ok(x[0].clone()),
        Op::Expand => expand(x[0], shape),
        Op::Embed { items } => embed(items, x[0], shape),
        Op::KMaxMask { k } => kmax_mask(*k, x[0]),
    }
}

/// One element of a unary op.
pub fn unary_fn<T: Real>(f: UnaryOp, x: T) -> T {
    match f {
        UnaryOp::Neg => -x,
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        // `x < 0` is false for NaN, so NaN passes through.
        UnaryOp::Relu => {
            if x < T::ZERO {
                T::ZERO
            } else {
                x
            }
        }
        // Both branches only ever take exp of a non-positive number: no overflow for large |x|.
        UnaryOp::Sigmoid => {
            if x >= T::ZERO {
                T::ONE / (T::ONE + (-x).exp())
            } else {
                let e = x.exp();
                e / (T::ONE + e)
            }
        }
        UnaryOp::Tanh => x.tanh(),
        // max(x, 0) + log1p(exp(−|x|)): exact for large |x|, no overflow.
        UnaryOp::Softplus => x.max(T::ZERO) + (-x.abs()).exp().ln_1p(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Abs => x.abs(),
        UnaryOp::Square => x * x,
        UnaryOp::Recip => T::ONE / x,
        UnaryOp::Step => {
            if x > T::ZERO {
                T::ONE
            } else {
                T::ZERO
            }
        }
        // NaN compares false both ways, so it gives 0.
        UnaryOp::Sign => {
            if x > T::ZERO {
                T::ONE
            } else if x < T::ZERO {
                -T::ONE
            } else {
                T::ZERO
            }
        }
    }
}

/// One element of a binary op.
pub fn binary_fn<T: Real>(f: BinaryOp, x: T, y: T) -> T {
    match f {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div => x / y,
        BinaryOp::Pow => x.powf(y),
        BinaryOp::Eq => {
            if x == y {
                T::ONE
            } else {
                T::ZERO
            }
        }
    }
}

/// Elementwise with numpy broadcasting.
pub fn binary<T: Real>(f: BinaryOp, x: &Tensor<T>, y: &Tensor<T>) -> OpResult<T> {
    let shape = broadcast_shapes(&x.shape, &y.shape)
        .ok_or_else(|| format!("shapes {:?} and {:?} do not broadcast", x.shape, y.shape))?;
    let views = [broadcast_strides(&x.shape, &shape), broadcast_strides(&y.shape, &shape)];
    let mut data = Vec::with_capacity(count(&shape));
    for_each_offset(&shape, &views, &[0, 0], |o| data.push(binary_fn(f, x.data[o[0]], y.data[o[1]])));
    Ok(Tensor { shape, data })
}

/// Numpy `matmul`: a 1-D left operand is a row (`[k]` → `[1, k]`), a 1-D right operand a column
/// (`[k]` → `[k, 1]`), and the promoted axis is dropped from the result; the axes before the last
/// two are batch axes and broadcast.
pub fn matmul<T: Real>(a: &Tensor<T>, b: &Tensor<T>) -> OpResult<T> {
    if a.rank() == 0 || b.rank() == 0 {
        return Err("matmul of a scalar".into());
    }
    let a_shape = if a.rank() == 1 { vec![1, a.shape[0]] } else { a.shape.clone() };
    let b_shape = if b.rank() == 1 { vec![b.shape[0], 1] } else { b.shape.clone() };
    let (ra, rb) = (a_shape.len(), b_shape.len());
    let (n, k, k2, m) = (a_shape[ra - 2], a_shape[ra - 1], b_shape[rb - 2], b_shape[rb - 1]);
    if k != k2 {
        return Err(format!("matmul of {:?} and {:?}: inner sizes {k} and {k2} differ", a.shape, b.shape));
    }
    let (a_batch, b_batch) = (&a_shape[..ra - 2], &b_shape[..rb - 2]);
    let batch = broadcast_shapes(a_batch, b_batch)
        .ok_or_else(|| format!("matmul of {:?} and {:?}: batch axes do not broadcast", a.shape, b.shape))?;
    // Offsets of each operand's matrix for every batch index, in elements.
    let views = [
        broadcast_strides(a_batch, &batch).iter().map(|s| s * n * k).collect(),
        broadcast_strides(b_batch, &batch).iter().map(|s| s * k * m).collect(),
    ];
    let mut data = vec![T::ZERO; count(&batch) * n * m];
    let mut base = 0;
    for_each_offset(&batch, &views, &[0, 0], |o| {
        let (ao, bo) = (o[0], o[1]);
        for i in 0..n {
            for p in 0..k {
                let av = a.data[ao + i * k + p];
                let row = &b.data[bo + p * m..bo + (p + 1) * m];
                let out = &mut data[base + i * m..base + (i + 1) * m];
                for (c, bv) in out.iter_mut().zip(row) {
                    *c = *c + av * *bv;
                }
            }
        }
        base += n * m;
    });
    let mut shape = batch;
    if a.rank() >= 2 {
        shape.push(n);
    }
    if b.rank() >= 2 {
        shape.push(m);
    }
    Ok(Tensor { shape, data })
}

/// The shape of `x` with the `axes` set to size 1.
fn kept_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape.iter().enumerate().map(|(i, d)| if axes.contains(&i) { 1 } else { *d }).collect()
}

fn drop_axes(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, d)| *d).collect()
}

fn check_axes(rank: usize, axes: &[usize]) -> Result<(), String> {
    if axes.iter().any(|a| *a >= rank) || axes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!("axes {axes:?} out of range for rank {rank} or not sorted"));
    }
    Ok(())
}

/// Folds every element of `x` into the entry of the keepdims-shaped result it reduces into.
fn fold<T: Real>(x: &Tensor<T>, axes: &[usize], init: T, f: impl Fn(T, T) -> T) -> Vec<T> {
    let out_shape = kept_shape(&x.shape, axes);
    let views = [strides(&x.shape), broadcast_strides(&out_shape, &x.shape)];
    let mut acc = vec![init; count(&out_shape)];
    for_each_offset(&x.shape, &views, &[0, 0], |o| acc[o[1]] = f(acc[o[1]], x.data[o[0]]));
    acc
}

/// Sum, mean or max over `axes`. A max propagates NaN; a max over an empty axis is −∞ (the
/// verifier rejects a known empty axis; a symbolic one bound to 0 gets here).
pub fn reduce<T: Real>(f: ReduceOp, axes: &[usize], keepdims: bool, x: &Tensor<T>) -> OpResult<T> {
    check_axes(x.rank(), axes)?;
    let data = match f {
        ReduceOp::Sum => fold(x, axes, T::ZERO, |a, v| a + v),
        ReduceOp::Mean => {
            let n = T::from_f64(axes.iter().map(|a| x.shape[*a]).product::<usize>() as f64);
            fold(x, axes, T::ZERO, |a, v| a + v).into_iter().map(|s| s / n).collect()
        }
        ReduceOp::Max => fold(x, axes, T::NEG_INFINITY, T::max),
    };
    let shape = if keepdims { kept_shape(&x.shape, axes) } else { drop_axes(&x.shape, axes) };
    Ok(Tensor { shape, data })
}

/// `m + log Σ exp(x − m)` over one axis, `m` the maximum. If `m` is ±∞ (every entry −∞, or some
/// +∞) the result is `m`; NaN propagates; an empty axis gives −∞ (log 0).
pub fn logsumexp<T: Real>(axis: usize, keepdims: bool, x: &Tensor<T>) -> OpResult<T> {
    check_axes(x.rank(), &[axis])?;
    let m = fold(x, &[axis], T::NEG_INFINITY, T::max);
    let out_shape = kept_shape(&x.shape, &[axis]);
    let views = [strides(&x.shape), broadcast_strides(&out_shape, &x.shape)];
    let mut s = vec![T::ZERO; m.len()];
    for_each_offset(&x.shape, &views, &[0, 0], |o| {
        if m[o[1]].is_finite() {
            s[o[1]] = s[o[1]] + (x.data[o[0]] - m[o[1]]).exp();
        }
    });
    let data = m.iter().zip(&s).map(|(m, s)| if m.is_finite() { *m + s.ln() } else { *m }).collect();
    let shape = if keepdims { out_shape } else { drop_axes(&x.shape, &[axis]) };
    Ok(Tensor { shape, data })
}

pub fn reshape<T: Real>(x: &Tensor<T>, shape: &[usize]) -> OpResult<T> {
    if count(shape) != x.len() {
        return Err(format!("cannot reshape {:?} into {shape:?}", x.shape));
    }
    Ok(Tensor { shape: shape.to_vec(), data: x.data.clone() })
}

/// Output axis `k` is input axis `perm[k]`.
pub fn transpose<T: Real>(perm: &[usize], x: &Tensor<T>) -> OpResult<T> {
    let mut sorted = perm.to_vec();
    sorted.sort_unstable();
    if sorted != (0..x.rank()).collect::<Vec<_>>() {
        return Err(format!("{perm:?} is not a permutation of the axes of {:?}", x.shape));
    }
    let own = strides(&x.shape);
    let shape: Vec<usize> = perm.iter().map(|p| x.shape[*p]).collect();
    let view: Vec<usize> = perm.iter().map(|p| own[*p]).collect();
    let mut data = Vec::with_capacity(x.len());
    for_each_offset(&shape, &[view], &[0], |o| data.push(x.data[o[0]]));
    Ok(Tensor { shape, data })
}

/// The operands joined along `axis`, in order.
pub fn concat<T: Real>(axis: usize, xs: &[&Tensor<T>]) -> OpResult<T> {
    let first = xs.first().ok_or("concat of nothing")?;
    if axis >= first.rank() {
        return Err(format!("axis {axis} out of range for {:?}", first.shape));
    }
    let mut shape = first.shape.clone();
    shape[axis] = 0;
    for x in xs {
        let fits = x.rank() == first.rank() && (0..x.rank()).all(|k| k == axis || x.shape[k] == first.shape[k]);
        if !fits {
            return Err(format!("cannot concatenate {:?} and {:?} along axis {axis}", first.shape, x.shape));
        }
        shape[axis] += x.shape[axis];
    }
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut data = Vec::with_capacity(count(&shape));
    for o in 0..outer {
        for x in xs {
            let chunk = x.shape[axis] * inner;
            data.extend_from_slice(&x.data[o * chunk..(o + 1) * chunk]);
        }
    }
    Ok(Tensor { shape, data })
}

/// A position made non-negative (numpy: `-1` is the last).
fn position(i: i64, n: usize) -> i64 {
    if i < 0 {
        i + n as i64
    } else {
        i
    }
}

/// Per leading axis, a half-open range (axis kept) or one position (axis dropped); the axes after
/// the items are kept whole. Negative positions count from the end, as in numpy; out-of-range
/// positions are an error (the checker has ruled them out where sizes are known).
pub fn slice<T: Real>(items: &[Slice], x: &Tensor<T>) -> OpResult<T> {
    if items.len() > x.rank() {
        return Err(format!("{} indices into {:?}", items.len(), x.shape));
    }
    let own = strides(&x.shape);
    let (mut shape, mut view, mut base) = (Vec::new(), Vec::new(), 0);
    for (axis, item) in items.iter().enumerate() {
        let n = x.shape[axis];
        match *item {
            Slice::At(i) => {
                let j = position(i, n);
                if j < 0 || j >= n as i64 {
                    return Err(format!("index {i} is out of range for axis {axis} of size {n}"));
                }
                base += j as usize * own[axis];
            }
            Slice::Range { start, end } => {
                let s = position(start, n);
                let e = end.map_or(n as i64, |e| position(e, n));
                if s < 0 || e < s || e > n as i64 {
                    let shown = end.map_or(format!("{start}:"), |e| format!("{start}:{e}"));
                    return Err(format!("slice {shown} is out of range for axis {axis} of size {n}"));
                }
                base += s as usize * own[axis];
                shape.push((e - s) as usize);
                view.push(own[axis]);
            }
        }
    }
    shape.extend_from_slice(&x.shape[items.len()..]);
    view.extend_from_slice(&own[items.len()..]);
    let mut data = Vec::with_capacity(count(&shape));
    for_each_offset(&shape, &[view], &[base], |o| data.push(x.data[o[0]]));
    Ok(Tensor { shape, data })
}

/// A total order for ranking: NaN above everything (so it is kept and shows), −0 equal to +0.
fn rank_cmp<T: Real>(a: T, b: T) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// Along the last axis keeps the `k` largest entries and zeroes the others; among equal entries
/// the earliest are kept. `k` at least the axis size keeps everything.
pub fn kmax<T: Real>(k: u64, x: &Tensor<T>) -> OpResult<T> {
    kept(k, x, |v| v)
}

/// 1 where `kmax(k, x)` keeps an entry, 0 elsewhere (the same ranking, ties to the earliest).
pub fn kmax_mask<T: Real>(k: u64, x: &Tensor<T>) -> OpResult<T> {
    kept(k, x, |_| T::ONE)
}

/// Zeros, except `keep(x)` where an entry is among the `k` largest of its row (last axis).
fn kept<T: Real>(k: u64, x: &Tensor<T>, keep: impl Fn(T) -> T) -> OpResult<T> {
    let row = *x.shape.last().ok_or("kmax of a scalar")?;
    let mut data = vec![T::ZERO; x.len()];
    if row == 0 {
        return Ok(Tensor { shape: x.shape.clone(), data });
    }
    let count = usize::try_from(k).unwrap_or(usize::MAX).min(row);
    let mut order: Vec<usize> = Vec::with_capacity(row);
    for (src, dst) in x.data.chunks(row).zip(data.chunks_mut(row)) {
        order.clear();
        order.extend(0..row);
        // A stable sort, largest first: equal entries stay in index order.
        order.sort_by(|i, j| rank_cmp(src[*j], src[*i]));
        for &i in &order[..count] {
            dst[i] = keep(src[i]);
        }
    }
    Ok(Tensor { shape: x.shape.clone(), data })
}

/// numpy `broadcast_to(x, shape)`.
pub fn expand<T: Real>(x: &Tensor<T>, shape: &[usize]) -> OpResult<T> {
    if broadcast_shapes(&x.shape, shape).as_deref() != Some(shape) {
        return Err(format!("cannot broadcast {:?} to {shape:?}", x.shape));
    }
    let view = broadcast_strides(&x.shape, shape);
    let mut data = Vec::with_capacity(count(shape));
    for_each_offset(shape, &[view], &[0], |o| data.push(x.data[o[0]]));
    Ok(Tensor { shape: shape.to_vec(), data })
}

/// The adjoint of `slice`: zeros of `shape` with `x` written where `slice(items)` reads.
pub fn embed<T: Real>(items: &[Slice], x: &Tensor<T>, shape: &[usize]) -> OpResult<T> {
    let own = strides(shape);
    let (mut sub, mut view, mut base) = (Vec::new(), Vec::new(), 0);
    for (axis, item) in items.iter().enumerate() {
        let n = shape[axis];
        match *item {
            Slice::At(i) => {
                let j = position(i, n);
                if j < 0 || j >= n as i64 {
                    return Err(format!("index {i} is out of range for axis {axis} of size {n}"));
                }
                base += j as usize * own[axis];
            }
            Slice::Range { start, end } => {
                let s = position(start, n);
                let e = end.map_or(n as i64, |e| position(e, n));
                if s < 0 || e < s || e > n as i64 {
                    return Err(format!("slice {start}:{end:?} is out of range for axis {axis} of size {n}"));
                }
                base += s as usize * own[axis];
                sub.push((e - s) as usize);
                view.push(own[axis]);
            }
        }
    }
    sub.extend_from_slice(&shape[items.len()..]);
    view.extend_from_slice(&own[items.len()..]);
    if sub != x.shape {
        return Err(format!("embedding {:?} where the slice is {sub:?}", x.shape));
    }
    let mut data = vec![T::ZERO; count(shape)];
    let mut next = x.data.iter();
    for_each_offset(&sub, &[view], &[base], |o| data[o[0]] = *next.next().unwrap_or(&T::ZERO));
    Ok(Tensor { shape: shape.to_vec(), data })
}

/// Integer labels → one row of `classes` per label, 1 at the label; a label outside
/// `0..classes` (or not an integer) gives an all-zero row.
pub fn one_hot<T: Real>(classes: u64, x: &Tensor<T>) -> OpResult<T> {
    let c = usize::try_from(classes).map_err(|_| format!("{classes} classes"))?;
    let mut shape = x.shape.clone();
    shape.push(c);
    let mut data = vec![T::ZERO; x.len() * c];
    for (label, row) in x.data.iter().zip(data.chunks_mut(c.max(1))) {
        let l = label.to_f64();
        if l >= 0.0 && l < c as f64 && l.fract() == 0.0 {
            row[l as usize] = T::ONE;
        }
    }
    Ok(Tensor { shape, data })
}

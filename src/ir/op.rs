//! The operations of the graph IR: a closed enum, grouped as tinygrad groups them (leaves,
//! unary elementwise, binary elementwise, contractions, reductions, movement). Every `match` on
//! it is exhaustive, so adding an op shows each place that must learn it.
//!
//! Semantics (`x`, `y` are the ordered operands; shapes are in the node):
//! - `Data(i)`: the i-th data input of the model; `Param(i)`: the i-th parameter; `Input(i)`: the
//!   i-th extra input fed by the host (a tangent direction, optimizer state), of known shape.
//! - `Const(c)`: a real scalar `c` (shape `[]`).
//! - `Unary(f)`: `f` applied to every element of `x`.
//! - `Binary(f)`: `f(x, y)` elementwise with numpy broadcasting (the node's shape is the broadcast).
//! - `MatMul`: numpy `matmul` (1-D operands promoted and the promoted axis dropped; batch axes
//!   broadcast).
//! - `Reduce { f, axes, keepdims }`: sum, mean or max over `axes` (sorted, distinct).
//! - `LogSumExp { axis, keepdims }`: `log Σ exp(x)` over one axis, computed as
//!   `m + log Σ exp(x − m)` with `m` the maximum, so it never overflows.
//! - `Reshape`: same elements, row-major, into the node's shape.
//! - `Transpose { perm }`: output axis `k` is input axis `perm[k]`.
//! - `Concat { axis }`: operands joined along `axis`; any number of operands (≥ 1).
//! - `Slice { items }`: per leading axis, a half-open range (axis kept) or one position (dropped).
//! - `KMax { k }`: along the last axis keeps the `k` largest entries, zeroes the others (ties keep
//!   the earliest).
//! - `OneHot { classes }`: integer labels → real tensor with a new last axis of size `classes`;
//!   a label outside `0..classes` gives an all-zero row.
//! - `Cast`: integer tensor → real tensor with the same values.
//! - `Expand`: numpy `broadcast_to(x, node shape)`.
//! - `Embed { items }`: the adjoint of `Slice { items }`: a zero tensor of the node's shape with
//!   `x` written where the slice would read it.
//! - `KMaxMask { k }`: 1 where `KMax { k }` keeps an entry, 0 elsewhere.
//! - `Unary(Step)`: 1 where x > 0, else 0; `Unary(Sign)`: −1, 0 or 1 (0 for NaN).
//! - `Binary(Eq)`: 1 where x = y, else 0.
//!
//! Corner cases, which every backend must match: slice positions are non-negative (the checker
//! resolves negative ones); a slice or position past a symbolic axis's run-time size is a run-time
//! error; NaN propagates through `max`, `relu`, `softplus`, `logsumexp` and `kmax` (which ranks it
//! highest); `max` over an empty axis is −∞, `mean` NaN, `logsumexp` −∞; `kmax` needs rank ≥ 1;
//! the sign of a zero result is not significant (passes may turn `x + 0` into `x`).

use crate::check::checked::Slice as SliceItem;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    Exp,
    Log,
    Relu,
    Sigmoid,
    Tanh,
    Softplus,
    Sqrt,
    Abs,
    /// `x²`, a primitive so losses and curvature rules stay cheap.
    Square,
    /// `1/x`.
    Recip,
    /// 1 where x > 0, else 0: the derivative of `Relu`.
    Step,
    /// −1, 0 or 1: the derivative of `Abs`.
    Sign,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    /// 1 where equal, else 0 (selects the maxima in the derivative of `max`).
    Eq,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Data(usize),
    Param(usize),
    Input(usize),
    Const(f64),
    Unary(UnaryOp),
    Binary(BinaryOp),
    MatMul,
    Reduce { f: ReduceOp, axes: Vec<usize>, keepdims: bool },
    LogSumExp { axis: usize, keepdims: bool },
    Reshape,
    Transpose { perm: Vec<usize> },
    Concat { axis: usize },
    Slice { items: Vec<SliceItem> },
    KMax { k: u64 },
    OneHot { classes: u64 },
    Cast,
    Expand,
    Embed { items: Vec<SliceItem> },
    KMaxMask { k: u64 },
}

impl Op {
    /// Number of operands, or `None` for any number (`Concat`).
    pub fn arity(&self) -> Option<usize> {
        Some(match self {
            Op::Data(_) | Op::Param(_) | Op::Input(_) | Op::Const(_) => 0,
            Op::Unary(_)
            | Op::Reduce { .. }
            | Op::LogSumExp { .. }
            | Op::Reshape
            | Op::Transpose { .. }
            | Op::Slice { .. }
            | Op::KMax { .. }
            | Op::OneHot { .. }
            | Op::Cast
            | Op::Expand
            | Op::Embed { .. }
            | Op::KMaxMask { .. } => 1,
            Op::Binary(_) | Op::MatMul => 2,
            Op::Concat { .. } => return None,
        })
    }

    /// Elementwise ops: candidates for fusion into one loop.
    /// Computed element by element over the node's shape, reading operands through numpy
    /// broadcasting (`expand` is the identity with a broadcast operand).
    pub fn is_elementwise(&self) -> bool {
        matches!(self, Op::Unary(_) | Op::Binary(_) | Op::Cast | Op::Expand)
    }

    pub fn is_leaf(&self) -> bool {
        matches!(self, Op::Data(_) | Op::Param(_) | Op::Input(_) | Op::Const(_))
    }

    /// Short name used in printed graphs.
    pub fn name(&self) -> String {
        match self {
            Op::Data(i) => format!("data#{i}"),
            Op::Param(i) => format!("param#{i}"),
            Op::Input(i) => format!("input#{i}"),
            Op::Const(c) => format!("const {}", crate::check::signature::num(*c)),
            Op::Unary(u) => format!("{u:?}").to_lowercase(),
            Op::Binary(b) => format!("{b:?}").to_lowercase(),
            Op::MatMul => "matmul".into(),
            Op::Reduce { f, axes, keepdims } => {
                format!("{}{axes:?}{}", format!("{f:?}").to_lowercase(), if *keepdims { " keepdims" } else { "" })
            }
            Op::LogSumExp { axis, keepdims } => {
                format!("logsumexp[{axis}]{}", if *keepdims { " keepdims" } else { "" })
            }
            Op::Reshape => "reshape".into(),
            Op::Transpose { perm } => format!("transpose{perm:?}"),
            Op::Concat { axis } => format!("concat[{axis}]"),
            Op::Slice { items } => format!("slice[{}]", slice_text(items)),
            Op::Embed { items } => format!("embed[{}]", slice_text(items)),
            Op::Expand => "expand".into(),
            Op::KMaxMask { k } => format!("kmax_mask {k}"),
            Op::KMax { k } => format!("kmax {k}"),
            Op::OneHot { classes } => format!("one_hot {classes}"),
            Op::Cast => "cast".into(),
        }
    }
}

fn slice_text(items: &[SliceItem]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|s| match s {
            SliceItem::At(i) => i.to_string(),
            SliceItem::Range { start, end: Some(e) } => format!("{start}:{e}"),
            SliceItem::Range { start, end: None } => format!("{start}:"),
        })
        .collect();
    parts.join(", ")
}

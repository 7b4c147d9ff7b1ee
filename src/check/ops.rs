//! The built-in functions: argument binding and the shape rule of each (reductions, softmax,
//! logsumexp, reshape, transpose, concat, indexing, kmax, shrink, one_hot, pow).

use super::builtins::Builtin;
use super::checked::*;
use super::elaborate::{Checker, Scope, Static, Value};
use super::expr::plural;
use super::types::{Dim, Elem, Ty};
use crate::diagnostic::Diagnostic;
use crate::front::ast::{Arg, Expr, ExprKind, IndexItem};
use crate::source::Span;

impl<'p> Checker<'p> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn builtin(
        &mut self,
        b: Builtin,
        fname: &str,
        names: &[&str],
        required: usize,
        args: &'p [Arg],
        span: Span,
        scope: &mut Scope,
    ) -> Option<Value> {
        let what = format!("`{fname}`");
        if b == Builtin::Concat {
            return self.concat(args, span, scope);
        }
        let bound = self.bind_args(&what, span, names, required, args)?;
        let x_expr = bound[0]?;
        let xv = self.eval(x_expr, scope)?;
        match b {
            Builtin::Unary(f) => return self.unary(f, xv, x_expr.span, span),
            Builtin::Pow => {
                let p_expr = bound[1]?;
                let pv = self.eval(p_expr, scope)?;
                if let (Value::Static(x), Value::Static(p)) = (&xv, &pv) {
                    return Some(Value::Static(match (x.as_f64(), p.as_f64()) {
                        (Some(x), Some(p)) => Static::Float(x.powf(p)),
                        _ => Static::Unknown,
                    }));
                }
                let x = self.float_tensor(xv, x_expr.span)?;
                let p = self.float_tensor(pv, p_expr.span)?;
                let (tx, tp) = (self.ty(x).clone(), self.ty(p).clone());
                let dims = self.broadcast_or_report(&tx, &tp, x_expr.span, p_expr.span, "pow")?;
                return Some(Value::Tensor(self.push(Op::Binary(BinaryFn::Pow), vec![x, p], Ty::float(dims), span)));
            }
            _ => {}
        }
        if b == Builtin::OneHot {
            let x = self.as_tensor(xv, x_expr.span)?;
            let tx = self.ty(x).clone();
            if tx.elem != Elem::Int {
                let shown = self.show(&tx);
                self.report(
                    Diagnostic::error("E0402", format!("`one_hot` needs integer labels, found {shown}"))
                        .label(x_expr.span, "this is real-valued")
                        .help("declare the labels as `int[N]`"),
                );
                return None;
            }
            let k = self.positive_int(bound[1]?, scope, "the number of classes")?;
            let mut dims = tx.dims.clone();
            dims.push(k);
            return Some(Value::Tensor(self.push(Op::OneHot { classes: known(k) }, vec![x], Ty::float(dims), span)));
        }
        let x = self.float_tensor(xv, x_expr.span)?;
        let tx = self.ty(x).clone();
        let rank = tx.rank();
        let (op, out) = match b {
            Builtin::Reduce(f) => {
                let axes = match bound[1] {
                    None => (0..rank).collect(),
                    Some(e) => self.axes(e, &tx, scope)?,
                };
                let keepdims = match bound[2] {
                    None => false,
                    Some(e) => self.static_int(e, scope, "`keepdims`")? != 0,
                };
                let dims = reduce_dims(&tx.dims, &axes, keepdims);
                (Op::Reduce { f, axes, keepdims }, Ty::float(dims))
            }
            Builtin::Softmax => {
                let a = self.axis_arg(bound[1], &tx, scope, x_expr.span)?;
                (Op::Softmax { axis: a }, tx.clone())
            }
            Builtin::LogSumExp => {
                let a = self.axis_arg(bound[1], &tx, scope, x_expr.span)?;
                let keepdims = match bound[2] {
                    None => false,
                    Some(e) => self.static_int(e, scope, "`keepdims`")? != 0,
                };
                (Op::LogSumExp { axis: a, keepdims }, Ty::float(reduce_dims(&tx.dims, &[a], keepdims)))
            }
            Builtin::Reshape => {
                let dims = self.reshape_target(bound[1]?, &tx, scope)?;
                (Op::Reshape, Ty::float(dims))
            }
            Builtin::Transpose => {
                let perm = match bound[1] {
                    None => (0..rank).rev().collect(),
                    Some(e) => {
                        let perm = self.axes(e, &tx, scope)?;
                        if perm.len() != rank {
                            self.report(
                                Diagnostic::error("E0303", format!("`transpose` needs all {rank} axes in some order"))
                                    .label(e.span, format!("this lists {}", plural(perm.len(), "axis"))),
                            );
                            return None;
                        }
                        perm
                    }
                };
                let dims = perm.iter().map(|&p| tx.dims[p]).collect();
                (Op::Transpose { perm }, Ty::float(dims))
            }
            Builtin::KMax => {
                let ke = bound[1]?;
                let k = self.positive_int(ke, scope, "`k`")?;
                if rank == 0 {
                    self.report(
                        Diagnostic::error("E0303", "`kmax` needs a tensor with at least one axis")
                            .label(x_expr.span, "this is a scalar"),
                    );
                    return None;
                }
                if let (Dim::Known(kk), Dim::Known(n)) = (k, tx.dims[rank - 1]) {
                    if kk > n {
                        let shown = self.show(&tx);
                        self.report(
                            Diagnostic::error("E0309", format!("cannot keep {kk} of {n} entries"))
                                .label(ke.span, format!("`k` is larger than the last axis of {shown}")),
                        );
                        return None;
                    }
                }
                (Op::KMax { k: known(k) }, tx.clone())
            }
            Builtin::Shrink => {
                let te = bound[1]?;
                let tv = self.eval(te, scope)?;
                let t = self.float_tensor(tv, te.span)?;
                let tt = self.ty(t).clone();
                let dims = self.broadcast_or_report(&tx, &tt, x_expr.span, te.span, "shrink")?;
                if dims.len() != rank {
                    let (a, b) = (self.show(&tt), self.show(&tx));
                    self.report(
                        Diagnostic::error("E0301", format!("the threshold {a} is larger than the input {b}"))
                            .label(te.span, "the threshold must broadcast to the input's shape"),
                    );
                    return None;
                }
                return Some(Value::Tensor(self.push(Op::Shrink, vec![x, t], Ty::float(dims), span)));
            }
            Builtin::Unary(_) | Builtin::Pow | Builtin::OneHot | Builtin::Concat => {
                unreachable!("handled above")
            }
        };
        Some(Value::Tensor(self.push(op, vec![x], out, span)))
    }

    pub(super) fn positive_int(&mut self, e: &'p Expr, scope: &mut Scope, what: &str) -> Option<Dim> {
        match self.static_value(e, scope, what)? {
            Static::Dim(d) => Some(d),
            Static::Unknown => Some(Dim::Any),
            _ => {
                let n = self.static_int(e, scope, what)?;
                if n < 1 {
                    self.report(
                        Diagnostic::error("E0406", format!("{what} must be at least 1"))
                            .label(e.span, format!("this is {n}")),
                    );
                    return None;
                }
                Some(Dim::Known(n as u64))
            }
        }
    }

    pub(super) fn axis_arg(&mut self, e: Option<&'p Expr>, ty: &Ty, scope: &mut Scope, x_span: Span) -> Option<usize> {
        match e {
            None => self.axis(-1, ty.rank(), x_span, ty),
            Some(e) => {
                let a = self.static_int(e, scope, "an axis")?;
                self.axis(a, ty.rank(), e.span, ty)
            }
        }
    }

    /// One axis or a list of distinct axes.
    pub(super) fn axes(&mut self, e: &'p Expr, ty: &Ty, scope: &mut Scope) -> Option<Vec<usize>> {
        let items: Vec<&'p Expr> = match &e.kind {
            ExprKind::List(items) => items.iter().collect(),
            _ => vec![e],
        };
        let mut out = Vec::new();
        for item in items {
            let a = self.static_int(item, scope, "an axis")?;
            let a = self.axis(a, ty.rank(), item.span, ty)?;
            if out.contains(&a) {
                self.report(
                    Diagnostic::error("E0303", format!("axis {a} is listed twice")).label(item.span, "repeated axis"),
                );
                return None;
            }
            out.push(a);
        }
        Some(out)
    }

    pub(super) fn reshape_target(&mut self, e: &'p Expr, tx: &Ty, scope: &mut Scope) -> Option<Vec<Dim>> {
        let ExprKind::List(items) = &e.kind else {
            self.report(
                Diagnostic::error("E0404", "`reshape` needs the new shape as a list")
                    .label(e.span, "expected `[d1, d2, …]`"),
            );
            return None;
        };
        let mut dims: Vec<Option<Dim>> = Vec::new();
        let mut infer_at = None;
        for item in items {
            if let ExprKind::Neg(inner) = &item.kind {
                if inner.kind == ExprKind::Int(1) {
                    if infer_at.is_some() {
                        self.report(
                            Diagnostic::error("E0304", "only one size of `reshape` can be -1")
                                .label(item.span, "a second -1"),
                        );
                        return None;
                    }
                    infer_at = Some(dims.len());
                    dims.push(None);
                    continue;
                }
            }
            dims.push(Some(self.eval_dim(item, scope, false)?));
        }
        // Compare element counts: known sizes multiply, symbolic sizes must match one to one.
        let split = |ds: &mut dyn Iterator<Item = Dim>| {
            let mut k: u64 = 1;
            let mut syms = Vec::new();
            let mut any = false;
            for d in ds {
                match d {
                    Dim::Known(n) => k = k.saturating_mul(n),
                    Dim::Sym(s) => syms.push(s.0),
                    Dim::Any => any = true,
                }
            }
            syms.sort_unstable();
            (k, syms, any)
        };
        let (kin, mut sin, anyin) = split(&mut tx.dims.iter().copied());
        let (kout, sout, anyout) = split(&mut dims.iter().flatten().copied());
        let shown_in = self.show(tx);
        let target_text = self.prog.sources.text(e.span).to_string();
        let fail = |this: &mut Self, why: String| {
            this.report(
                Diagnostic::error("E0304", format!("cannot reshape {shown_in} to {target_text}"))
                    .label(e.span, why)
                    .note("a reshape keeps the number of elements"),
            );
        };
        // Checked on its own, a circuit's `int` arguments are symbols that may take any value:
        // the counts are compared again at each instance, with numbers.
        if anyin || anyout || (self.generic && !(sin.is_empty() && sout.is_empty())) {
            if let Some(i) = infer_at {
                dims[i] = Some(Dim::Any);
            }
            return Some(dims.into_iter().flatten().collect());
        }
        match infer_at {
            None => {
                if kin != kout || sin != sout {
                    fail(self, "the number of elements differs".into());
                    return None;
                }
            }
            Some(i) => {
                for s in &sout {
                    match sin.iter().position(|x| x == s) {
                        Some(p) => {
                            sin.remove(p);
                        }
                        None => {
                            fail(self, "a symbolic size appears here that the input does not have".into());
                            return None;
                        }
                    }
                }
                if kout == 0 || kin % kout != 0 {
                    fail(self, format!("{kin} elements do not divide into groups of {kout}"));
                    return None;
                }
                let rest = kin / kout;
                dims[i] = Some(match (sin.as_slice(), rest) {
                    ([], r) => Dim::Known(r),
                    ([s], 1) => Dim::Sym(super::types::SymId(*s)),
                    (rest_syms, r) => {
                        let mut parts: Vec<String> =
                            rest_syms.iter().map(|s| self.b.syms[*s as usize].clone()).collect();
                        if r != 1 {
                            parts.insert(0, r.to_string());
                        }
                        fail(
                            self,
                            format!("-1 would stand for {}, which is not a size circ can name", parts.join("·")),
                        );
                        return None;
                    }
                });
            }
        }
        Some(dims.into_iter().flatten().collect())
    }

    pub(super) fn concat(&mut self, args: &'p [Arg], span: Span, scope: &mut Scope) -> Option<Value> {
        let mut parts = Vec::new();
        let mut axis_expr = None;
        for a in args {
            match &a.name {
                Some(k) if k.name == "axis" => axis_expr = Some(&a.value),
                Some(k) => {
                    self.report(
                        Diagnostic::error("E0206", format!("`concat` has no argument `{}`", k.name))
                            .label(k.span, "unknown argument name")
                            .help("`concat(a, b, …, axis = -1)`"),
                    );
                    return None;
                }
                None => {
                    let v = self.eval(&a.value, scope)?;
                    parts.push((self.float_tensor(v, a.value.span)?, a.value.span));
                }
            }
        }
        if parts.is_empty() {
            self.report(
                Diagnostic::error("E0401", "`concat` needs at least one tensor").label(span, "nothing to concatenate"),
            );
            return None;
        }
        let t0 = self.ty(parts[0].0).clone();
        let axis = match axis_expr {
            None => self.axis(-1, t0.rank(), parts[0].1, &t0)?,
            Some(e) => {
                let a = self.static_int(e, scope, "an axis")?;
                self.axis(a, t0.rank(), e.span, &t0)?
            }
        };
        let mut dims = t0.dims.clone();
        for &(p, s) in &parts[1..] {
            let tp = self.ty(p).clone();
            let fits = tp.rank() == t0.rank()
                && tp
                    .dims
                    .iter()
                    .zip(&t0.dims)
                    .enumerate()
                    .all(|(i, (a, b))| i == axis || super::types::dims_agree(*a, *b));
            if !fits {
                let (a, b) = (self.show(&t0), self.show(&tp));
                self.report(
                    Diagnostic::error("E0312", format!("cannot concatenate {a} and {b} along axis {axis}"))
                        .label(s, format!("this has shape {b}"))
                        .secondary(parts[0].1, format!("this has shape {a}"))
                        .note("all other axes must have equal sizes"),
                );
                return None;
            }
            dims[axis] = match (dims[axis], tp.dims[axis]) {
                (Dim::Known(x), Dim::Known(y)) => match x.checked_add(y) {
                    Some(n) => Dim::Known(n),
                    None => {
                        self.report(
                            Diagnostic::error("E0312", "the concatenation is too large").label(s, "its size overflows"),
                        );
                        return None;
                    }
                },
                (Dim::Any, _) | (_, Dim::Any) => Dim::Any,
                // Checked on its own, a circuit's `int` arguments are symbols: sizes come at instances.
                _ if self.generic => Dim::Any,
                _ => {
                    self.report(
                        Diagnostic::error("E0312", "cannot concatenate along an axis of symbolic size")
                            .label(s, "the result's size would not be known when compiling"),
                    );
                    return None;
                }
            };
        }
        let inputs = parts.iter().map(|p| p.0).collect();
        Some(Value::Tensor(self.push(Op::Concat { axis }, inputs, Ty::float(dims), span)))
    }

    pub(super) fn index(
        &mut self,
        base: &'p Expr,
        indices: &'p [IndexItem],
        span: Span,
        scope: &mut Scope,
    ) -> Option<Value> {
        let v = self.eval(base, scope)?;
        let x = self.as_tensor(v, base.span)?;
        let tx = self.ty(x).clone();
        if indices.len() > tx.rank() {
            let shown = self.show(&tx);
            self.report(Diagnostic::error("E0309", format!("too many indices for {shown}")).label(
                span,
                format!("{} given, the tensor has {}", plural(indices.len(), "index"), plural(tx.rank(), "axis")),
            ));
            return None;
        }
        let mut items = Vec::new();
        let mut dims = Vec::new();
        for (axis, item) in indices.iter().enumerate() {
            let size = tx.dims[axis];
            match item {
                IndexItem::At(e) => {
                    let i = self.static_int(e, scope, "an index")?;
                    let i = self.position(i, size, e.span, &tx, false)?;
                    items.push(Slice::At(i));
                }
                IndexItem::Slice { start, end, span: sspan } => {
                    let s = match start {
                        Some(e) => {
                            let v = self.static_int(e, scope, "a slice bound")?;
                            self.position(v, size, e.span, &tx, true)?
                        }
                        None => 0,
                    };
                    let t = match end {
                        Some(e) => {
                            let v = self.static_int(e, scope, "a slice bound")?;
                            Some(self.position(v, size, e.span, &tx, true)?)
                        }
                        None => None,
                    };
                    let len = match (t, size) {
                        (None, Dim::Known(n)) => Some(n as i64 - s),
                        (None, other) if s == 0 => {
                            dims.push(other);
                            items.push(Slice::Range { start: s, end: t });
                            continue;
                        }
                        (Some(t), _) => Some(t - s),
                        (None, _) => None,
                    };
                    match len {
                        Some(l) if l >= 1 => dims.push(Dim::Known(l as u64)),
                        Some(_) => {
                            self.report(
                                Diagnostic::error("E0309", "empty slice").label(*sspan, "this selects nothing"),
                            );
                            return None;
                        }
                        None => {
                            self.report(
                                Diagnostic::error("E0309", "the length of this slice is not known when compiling")
                                    .label(*sspan, "slicing an axis of symbolic size needs an end bound"),
                            );
                            return None;
                        }
                    }
                    items.push(Slice::Range { start: s, end: t });
                }
            }
        }
        dims.extend_from_slice(&tx.dims[indices.len()..]);
        Some(Value::Tensor(self.push(Op::Index { items }, vec![x], Ty { elem: tx.elem, dims }, span)))
    }

    /// An index made non-negative and checked against the axis size where known.
    pub(super) fn position(&mut self, i: i64, size: Dim, span: Span, ty: &Ty, bound: bool) -> Option<i64> {
        let limit = if bound { 1 } else { 0 };
        match size {
            Dim::Known(n) => {
                let n = n as i64;
                let j = if i < 0 { i + n } else { i };
                if j < 0 || j > n - 1 + limit {
                    let shown = self.show(ty);
                    self.report(
                        Diagnostic::error("E0309", format!("index {i} is out of range"))
                            .label(span, format!("the axis has size {n} in {shown}")),
                    );
                    return None;
                }
                Some(j)
            }
            _ if i < 0 => {
                self.report(
                    Diagnostic::error("E0309", "negative index into an axis of symbolic size")
                        .label(span, "the axis size is only known at run time"),
                );
                None
            }
            _ => Some(i),
        }
    }
}

fn known(d: Dim) -> u64 {
    match d {
        Dim::Known(n) => n,
        _ => 0,
    }
}

fn reduce_dims(dims: &[Dim], axes: &[usize], keepdims: bool) -> Vec<Dim> {
    dims.iter()
        .enumerate()
        .filter_map(|(i, d)| match (axes.contains(&i), keepdims) {
            (false, _) => Some(*d),
            (true, true) => Some(Dim::Known(1)),
            (true, false) => None,
        })
        .collect()
}

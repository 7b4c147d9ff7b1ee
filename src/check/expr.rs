//! Expression elaboration: name lookup, compile-time arithmetic, and the shape rule of every
//! operator and built-in function.

use super::builtins;
use super::checked::*;
use super::elaborate::{find_circuit, Checker, Scope, Static, Value};
use super::index::Target;
use super::suggest::closest;
use super::types::{broadcast, matmul, Dim, Elem, MatMulError, Ty};
use crate::diagnostic::Diagnostic;
use crate::front::ast::{self, Arg, BinOp, Expr, ExprKind};
use crate::source::Span;

impl<'p> Checker<'p> {
    pub fn eval(&mut self, e: &'p Expr, scope: &mut Scope) -> Option<Value> {
        self.eval_bound(e, scope, None)
    }

    /// Evaluates an expression; `name` is the `let` it is bound to, which names circuit instances.
    pub fn eval_bound(&mut self, e: &'p Expr, scope: &mut Scope, name: Option<&'p ast::Ident>) -> Option<Value> {
        match &e.kind {
            ExprKind::Int(i) => Some(Value::Static(Static::Int(*i))),
            ExprKind::Float(f) => Some(Value::Static(Static::Float(*f))),
            ExprKind::Str(_) => {
                self.misplaced(e.span, "a string", "strings name CSV columns: `data x: [N] = csv(\"column\")`")
            }
            ExprKind::Path(p) => self.lookup(p, e.span, scope),
            ExprKind::Neg(x) => {
                let v = self.eval(x, scope)?;
                self.unary(UnaryFn::Neg, v, x.span, e.span)
            }
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, e.span, scope),
            ExprKind::Call { callee, args } => self.call(callee, args, e.span, scope, name),
            ExprKind::Index { base, indices } => self.index(base, indices, e.span, scope),
            ExprKind::List(_) => {
                self.misplaced(e.span, "a list", "lists give the shape of `reshape` or the axes of a reduction")
            }
            ExprKind::Range(..) => {
                self.misplaced(e.span, "a column range", "`..` ranges name CSV columns: `csv(\"a\" .. \"z\")`")
            }
            ExprKind::Error => None,
        }
    }

    fn misplaced(&mut self, span: Span, what: &str, help: &str) -> Option<Value> {
        self.report(
            Diagnostic::error("E0404", format!("{what} is not allowed here"))
                .label(span, "not a tensor or number")
                .help(help),
        );
        None
    }

    fn lookup(&mut self, path: &'p [ast::Ident], span: Span, scope: &mut Scope) -> Option<Value> {
        let first = &path[0];
        let head = self.lookup_name(first, scope)?;
        if path.len() == 1 {
            return Some(head);
        }
        match head {
            Value::Module(m) if path.len() == 2 => {
                if let Some(c) = find_circuit(self.prog, m, &path[1].name) {
                    self.index_ref(path[1].span, Target::Def(self.circuit(c).name.span));
                    return Some(Value::Circuit(c));
                }
                let module = self.prog.module(m);
                let names: Vec<&str> = module
                    .ast
                    .items
                    .iter()
                    .filter_map(|i| match i {
                        ast::Item::Circuit(c) => Some(c.name.name.as_str()),
                        _ => None,
                    })
                    .collect();
                let mut d =
                    Diagnostic::error("E0210", format!("module `{}` has no circuit `{}`", first.name, path[1].name))
                        .label(path[1].span, "not found in this module");
                if let Some(s) = closest(&path[1].name, names.iter().copied()) {
                    d = d.help(format!("a circuit with a similar name exists: `{}.{s}`", first.name));
                }
                self.report(d);
                None
            }
            Value::Instance(_) => {
                self.report(
                    Diagnostic::error("E0210", format!("cannot reach inside instance `{}`", first.name))
                        .label(span, "members of an instance cannot be named from outside")
                        .note("an instance's parameters are named `instance.param` in checkpoints, but in a model you use the instance by applying it"),
                );
                None
            }
            Value::Poison => None,
            _ => {
                self.report(
                    Diagnostic::error("E0210", format!("`{}` has no members", first.name))
                        .label(span, "`.` follows a module name only")
                        .help(if path[1].name == "T" {
                            format!("to transpose, write `transpose({})`", first.name)
                        } else {
                            "circ tensors have no fields or methods; use the built-in functions".to_string()
                        }),
                );
                None
            }
        }
    }

    fn lookup_name(&mut self, id: &'p ast::Ident, scope: &mut Scope) -> Option<Value> {
        let n = id.name.as_str();
        if let Some(b) = scope.vars.get(n) {
            let (def, value) = (b.span, b.value.clone());
            self.index_ref(id.span, Target::Def(def));
            return match value {
                Value::Poison => None,
                v => Some(v),
            };
        }
        if scope.dims.contains_key(n) {
            self.report(
                Diagnostic::error("E0404", format!("`{n}` is a size, not a value"))
                    .label(id.span, "sizes appear in types only")
                    .help("to average over examples, use `mean(…)` rather than dividing by a size"),
            );
            return None;
        }
        if let Some(c) = find_circuit(self.prog, scope.module, n) {
            self.index_ref(id.span, Target::Def(self.circuit(c).name.span));
            return Some(Value::Circuit(c));
        }
        if let Some(&m) = self.prog.module(scope.module).imports.get(n) {
            self.index_ref(id.span, Target::Module(m));
            return Some(Value::Module(m));
        }
        if let Some((_, v)) = builtins::CONSTANTS.iter().find(|(c, _)| *c == n) {
            return Some(Value::Static(if n == "pi" { Static::Float(*v) } else { Static::Int(*v as i64) }));
        }
        if builtins::lookup(n).is_some() || builtins::distribution(n).is_some() {
            self.report(
                Diagnostic::error("E0404", format!("`{n}` is a function, not a value"))
                    .label(id.span, "call it with arguments")
                    .help(format!("for example `{n}(x)`")),
            );
            return None;
        }
        let module = self.prog.module(scope.module);
        let mut candidates: Vec<String> = scope.vars.keys().cloned().collect();
        candidates.extend(module.imports.keys().cloned());
        candidates.extend(builtins::names().map(String::from));
        candidates.extend(module.ast.items.iter().filter_map(|i| match i {
            ast::Item::Circuit(c) => Some(c.name.name.clone()),
            _ => None,
        }));
        let mut d = Diagnostic::error("E0204", format!("unknown name `{n}`")).label(id.span, "not defined");
        if let Some(s) = closest(n, candidates.iter().map(String::as_str)) {
            d = d.help(format!("a name with a similar spelling exists: `{s}`"));
        } else if n == "nn" {
            d = d.help("the standard layers live in module `nn`: add `import nn`");
        }
        self.report(d);
        None
    }

    fn call(
        &mut self,
        callee: &'p Expr,
        args: &'p [Arg],
        span: Span,
        scope: &mut Scope,
        name: Option<&'p ast::Ident>,
    ) -> Option<Value> {
        if let ExprKind::Path(p) = &callee.kind {
            let n = p[0].name.as_str();
            let shadowed = scope.vars.contains_key(n) || find_circuit(self.prog, scope.module, n).is_some();
            if p.len() == 1 && !shadowed {
                if let Some((b, names, required)) = builtins::lookup(n) {
                    return self.builtin(b, n, names, required, args, span, scope);
                }
                if builtins::distribution(n).is_some() {
                    self.report(
                        Diagnostic::error("E0503", format!("`{n}` is a distribution"))
                            .label(callee.span, "distributions appear only after `~`")
                            .help(format!("state a prior or likelihood: `y ~ {n}(…)`")),
                    );
                    return None;
                }
                if n == "csv" {
                    self.report(
                        Diagnostic::error("E0404", "`csv` is a data source")
                            .label(span, "allowed only in a `data` declaration")
                            .help("write `data x: [N] = csv(\"column\")`"),
                    );
                    return None;
                }
            }
        }
        let f = self.eval(callee, scope)?;
        match f {
            Value::Circuit(c) => self.instantiate(c, args, span, name, scope),
            Value::Instance(inst) => self.apply(&inst, args, span, scope),
            _ => {
                let help = match &callee.kind {
                    ExprKind::Path(p)
                        if p.len() == 1
                            && scope
                                .vars
                                .get(&p[0].name)
                                .is_some_and(|b| b.kind == super::elaborate::BindKind::Param) =>
                    {
                        format!(
                            "`{}` is a parameter; to multiply by it, write `… @ {}` or `… * {}`",
                            p[0].name, p[0].name, p[0].name
                        )
                    }
                    _ => "only functions, circuits (`dense(4, 2)`) and circuit instances (`layer(x)`) are called"
                        .to_string(),
                };
                self.report(
                    Diagnostic::error("E0404", "this cannot be called")
                        .label(callee.span, "not a function, circuit or circuit instance")
                        .help(help),
                );
                None
            }
        }
    }

    /// Matches call arguments to parameter names. Returns one slot per name.
    pub fn bind_args(
        &mut self,
        what: &str,
        span: Span,
        names: &[&str],
        required: usize,
        args: &'p [Arg],
    ) -> Option<Vec<Option<&'p Expr>>> {
        let mut out: Vec<Option<&'p Expr>> = vec![None; names.len()];
        let mut ok = true;
        let mut next = 0;
        for arg in args {
            match &arg.name {
                Some(key) => {
                    let Some(i) = names.iter().position(|n| *n == key.name) else {
                        let mut d = Diagnostic::error("E0206", format!("{what} has no argument `{}`", key.name))
                            .label(key.span, "unknown argument name");
                        d = match closest(&key.name, names.iter().copied()) {
                            Some(s) => d.help(format!("did you mean `{s}`?")),
                            None if names.is_empty() => d.help(format!("{what} takes no arguments")),
                            None => d.help(format!("its arguments are: {}", names.join(", "))),
                        };
                        self.report(d);
                        ok = false;
                        continue;
                    };
                    if out[i].is_some() {
                        self.report(
                            Diagnostic::error("E0202", format!("argument `{}` is given twice", key.name))
                                .label(key.span, "given again here"),
                        );
                        ok = false;
                    }
                    out[i] = Some(&arg.value);
                }
                None => {
                    if next >= names.len() {
                        self.report(
                            Diagnostic::error("E0401", format!("too many arguments for {what}"))
                                .label(arg.value.span, "unexpected argument")
                                .secondary(span, format!("{what} takes {}", plural(names.len(), "argument"))),
                        );
                        return None;
                    }
                    if out[next].is_some() {
                        self.report(
                            Diagnostic::error("E0202", format!("argument `{}` is given twice", names[next]))
                                .label(arg.value.span, "given again here by position"),
                        );
                        ok = false;
                    }
                    out[next] = Some(&arg.value);
                    next += 1;
                }
            }
        }
        let missing: Vec<&str> = (0..required).filter(|i| out[*i].is_none()).map(|i| names[i]).collect();
        if ok && !missing.is_empty() {
            let list = missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ");
            self.report(
                Diagnostic::error(
                    "E0401",
                    format!("missing {} {list} of {what}", if missing.len() == 1 { "argument" } else { "arguments" }),
                )
                .label(span, format!("{what} takes {}", plural(names.len(), "argument")))
                .help(format!("arguments, in order: {}", names.join(", "))),
            );
            return None;
        }
        ok.then_some(out)
    }

    /// A compile-time number, or an error naming `what` was expected.
    pub fn static_value(&mut self, e: &'p Expr, scope: &mut Scope, what: &str) -> Option<Static> {
        match self.eval(e, scope)? {
            Value::Static(s) => Some(s),
            _ => {
                self.report(
                    Diagnostic::error("E0403", format!("{what} must be known when compiling"))
                        .label(e.span, "this is not a compile-time number"),
                );
                None
            }
        }
    }

    /// A compile-time integer. Silently `None` for integers only known symbolically.
    pub fn static_int(&mut self, e: &'p Expr, scope: &mut Scope, what: &str) -> Option<i64> {
        match self.static_value(e, scope, what)? {
            Static::Int(i) => Some(i),
            Static::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => Some(f as i64),
            Static::Dim(Dim::Known(n)) => Some(n as i64),
            Static::Float(f) => {
                self.report(
                    Diagnostic::error("E0403", format!("{what} must be an integer"))
                        .label(e.span, format!("this is {}", super::signature::num(f))),
                );
                None
            }
            Static::Dim(_) | Static::Unknown => None,
        }
    }

    /// Turns a value into a tensor node (numbers become scalar constants).
    pub fn as_tensor(&mut self, v: Value, span: Span) -> Option<NodeId> {
        let (what, help) = match v {
            Value::Tensor(id) => return Some(id),
            Value::Static(s) => {
                let value = s.as_f64().unwrap_or(f64::NAN);
                return Some(self.push(Op::Const(value), vec![], Ty::scalar(), span));
            }
            Value::Poison => return None,
            Value::Instance(_) => ("a circuit instance", "apply it to its inputs: `layer(x)`"),
            Value::Circuit(_) => {
                ("a circuit", "create an instance and apply it: `let layer = dense(4, 2)`, then `layer(x)`")
            }
            Value::Module(_) => ("a module", "name one of its circuits: `module.circuit`"),
        };
        self.report(
            Diagnostic::error("E0405", format!("expected a tensor, found {what}"))
                .label(span, format!("this is {what}"))
                .help(help),
        );
        None
    }

    /// Checks that a tensor is real-valued.
    pub fn require_float(&mut self, id: NodeId, span: Span) -> Option<()> {
        if self.ty(id).elem == Elem::Int {
            let shown = self.show(&self.ty(id).clone());
            self.report(
                Diagnostic::error("E0402", format!("expected a real-valued tensor, found {shown}"))
                    .label(span, "this holds integer labels")
                    .help("integer tensors are class labels: use `one_hot(label, classes)`, or observe them with `categorical`"),
            );
            return None;
        }
        Some(())
    }

    pub(super) fn float_tensor(&mut self, v: Value, span: Span) -> Option<NodeId> {
        let id = self.as_tensor(v, span)?;
        self.require_float(id, span)?;
        Some(id)
    }

    pub(super) fn unary(&mut self, f: UnaryFn, v: Value, arg_span: Span, span: Span) -> Option<Value> {
        if let Value::Static(s) = v {
            return Some(Value::Static(static_unary(f, s)));
        }
        let x = self.float_tensor(v, arg_span)?;
        let ty = self.ty(x).clone();
        Some(Value::Tensor(self.push(Op::Unary(f), vec![x], ty, span)))
    }

    fn binary(&mut self, op: BinOp, lhs: &'p Expr, rhs: &'p Expr, span: Span, scope: &mut Scope) -> Option<Value> {
        let l = self.eval(lhs, scope);
        let r = self.eval(rhs, scope);
        let (l, r) = (l?, r?);
        if let (Value::Static(a), Value::Static(b), false) = (&l, &r, op == BinOp::MatMul) {
            return Some(Value::Static(static_binary(op, *a, *b)));
        }
        let a = self.float_tensor(l, lhs.span);
        let b = self.float_tensor(r, rhs.span);
        let (a, b) = (a?, b?);
        let (ta, tb) = (self.ty(a).clone(), self.ty(b).clone());
        if op == BinOp::MatMul {
            return match matmul(&ta.dims, &tb.dims) {
                Ok(dims) => Some(Value::Tensor(self.push(Op::MatMul, vec![a, b], Ty::float(dims), span))),
                Err(e) => {
                    self.matmul_error(e, &ta, &tb, lhs.span, rhs.span);
                    None
                }
            };
        }
        let f = match op {
            BinOp::Add => BinaryFn::Add,
            BinOp::Sub => BinaryFn::Sub,
            BinOp::Mul => BinaryFn::Mul,
            BinOp::Div => BinaryFn::Div,
            BinOp::MatMul => unreachable!("handled above"),
        };
        let dims = self.broadcast_or_report(&ta, &tb, lhs.span, rhs.span, op.symbol())?;
        Some(Value::Tensor(self.push(Op::Binary(f), vec![a, b], Ty::float(dims), span)))
    }

    pub fn broadcast_or_report(&mut self, ta: &Ty, tb: &Ty, sa: Span, sb: Span, what: &str) -> Option<Vec<Dim>> {
        match broadcast(&ta.dims, &tb.dims) {
            Ok(d) => Some(d),
            Err(k) => {
                let (na, nb) = (self.show(ta), self.show(tb));
                let da = ta.dims.len().checked_sub(k + 1).map(|i| ta.dims[i]);
                let db = tb.dims.len().checked_sub(k + 1).map(|i| tb.dims[i]);
                let mut d = Diagnostic::error("E0301", format!("shapes {na} and {nb} do not broadcast in `{what}`"))
                    .label(sa, format!("this has shape {na}"))
                    .secondary(sb, format!("this has shape {nb}"));
                if let (Some(x), Some(y)) = (da, db) {
                    let show = |d| self.show(&Ty::float(vec![d]));
                    d = d.note(format!(
                        "axis {} from the right has size {} on the left and {} on the right; sizes must be equal or 1",
                        k + 1,
                        show(x).trim_matches(|c| c == '[' || c == ']'),
                        show(y).trim_matches(|c| c == '[' || c == ']'),
                    ));
                }
                self.report(d);
                None
            }
        }
    }

    fn matmul_error(&mut self, e: MatMulError, ta: &Ty, tb: &Ty, sa: Span, sb: Span) {
        let (na, nb) = (self.show(ta), self.show(tb));
        let d = match e {
            MatMulError::Scalar => Diagnostic::error("E0302", "`@` needs tensors with at least one axis")
                .label(if ta.dims.is_empty() { sa } else { sb }, "this is a scalar")
                .help("to scale a tensor, use `*`"),
            MatMulError::Inner(x, y) => {
                let sx = self.show(&Ty::float(vec![x]));
                let sy = self.show(&Ty::float(vec![y]));
                let mut d = Diagnostic::error("E0302", format!("matrix product of {na} and {nb}: inner sizes differ"))
                    .label(
                        sa,
                        format!("this has shape {na}, its last axis is {}", sx.trim_matches(|c| c == '[' || c == ']')),
                    )
                    .secondary(
                        sb,
                        format!(
                            "this has shape {nb}, its contracted axis is {}",
                            sy.trim_matches(|c| c == '[' || c == ']')
                        ),
                    );
                if tb.dims.len() == 2 && tb.dims[1] == x {
                    d = d.help("the right operand fits if transposed: `transpose(…)`");
                }
                d
            }
            MatMulError::Batch => {
                Diagnostic::error("E0302", format!("matrix product of {na} and {nb}: batch axes do not broadcast"))
                    .label(sa, format!("this has shape {na}"))
                    .secondary(sb, format!("this has shape {nb}"))
            }
        };
        self.report(d);
    }

    /// A (possibly negative) axis made non-negative, or an error.
    pub fn axis(&mut self, a: i64, rank: usize, span: Span, ty: &Ty) -> Option<usize> {
        let r = rank as i64;
        if a >= r || a < -r {
            let shown = self.show(ty);
            self.report(Diagnostic::error("E0303", format!("axis {a} is out of range for {shown}")).label(
                span,
                if rank == 0 {
                    "a scalar has no axes".to_string()
                } else {
                    format!("a tensor of {} has axes 0 to {} (or -1 to -{rank})", plural(rank, "axis"), rank - 1)
                },
            ));
            return None;
        }
        Some(if a < 0 { (a + r) as usize } else { a as usize })
    }
}

pub fn plural(n: usize, word: &str) -> String {
    let w = match (n, word) {
        (1, w) => w.to_string(),
        (_, "axis") => "axes".to_string(),
        (_, "index") => "indices".to_string(),
        (_, w) => format!("{w}s"),
    };
    format!("{n} {w}")
}

pub fn static_unary(f: UnaryFn, s: Static) -> Static {
    if let (UnaryFn::Neg, Static::Int(i)) = (f, s) {
        return i.checked_neg().map_or(Static::Float(-(i as f64)), Static::Int);
    }
    let Some(x) = s.as_f64() else {
        return Static::Unknown;
    };
    Static::Float(match f {
        UnaryFn::Neg => -x,
        UnaryFn::Exp => x.exp(),
        UnaryFn::Log => x.ln(),
        UnaryFn::Relu => x.max(0.0),
        UnaryFn::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnaryFn::Tanh => x.tanh(),
        UnaryFn::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
        UnaryFn::Sqrt => x.sqrt(),
        UnaryFn::Abs => x.abs(),
    })
}

pub fn static_binary(op: BinOp, a: Static, b: Static) -> Static {
    if let (Static::Int(x), Static::Int(y)) = (a, b) {
        let r = match op {
            BinOp::Add => x.checked_add(y),
            BinOp::Sub => x.checked_sub(y),
            BinOp::Mul => x.checked_mul(y),
            _ => None,
        };
        if let Some(r) = r {
            return Static::Int(r);
        }
    }
    let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
        return Static::Unknown;
    };
    Static::Float(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        BinOp::MatMul => return Static::Unknown,
    })
}

//! Circuits: checked on their own with symbolic arguments, instantiated with compile-time
//! arguments, and applied (inlined) with their inputs' types unified against the declaration.

use super::checked::*;
use super::elaborate::{contains_return_or_error, elem_of, Builder, MAX_INSTANCE_DEPTH};
use super::elaborate::{find_circuit, types_agree, BindKind, Checker, CircuitRef, Instance, Scope, Static, Value};
use super::types::{dims_agree, Dim};
use crate::diagnostic::Diagnostic;
use crate::front::ast::{self, Expr, ExprKind, StaticKind, Stmt, StmtKind};
use crate::source::Span;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

impl<'p> Checker<'p> {
    /// Checks a circuit with symbolic arguments, so errors are found even if it is never used.
    pub(super) fn check_circuit_alone(&mut self, c: CircuitRef) {
        self.b = Builder::default();
        self.generic = true;
        let circuit = self.circuit(c);
        let mut scope = self.circuit_scope(c, String::new());
        let mut statics = Vec::new();
        for s in &circuit.statics {
            let v = match s.kind {
                StaticKind::Int => Static::Dim(Dim::Sym(self.new_sym(&s.name.name))),
                StaticKind::Float => Static::Unknown,
            };
            statics.push(v);
        }
        self.bind_statics(c, &statics, &mut scope);
        for input in &circuit.inputs {
            let Some(ty) = self.declare_type(&input.ty, &mut scope, true) else {
                continue;
            };
            let data = self.b.data.len();
            self.b.data.push(DataDecl {
                name: input.name.name.clone(),
                ty: ty.clone(),
                source: DataSource::Columns(vec![]),
                span: input.name.span,
            });
            let node = self.push(Op::Data(data), vec![], ty, input.name.span);
            self.bind(&mut scope, &input.name, Value::Tensor(node), BindKind::Input);
        }
        self.stack.push((c, circuit.name.span, circuit.name.name.clone()));
        self.circuit_body(c, &mut scope);
        self.stack.pop();
        self.generic = false;
    }

    pub(super) fn circuit_scope(&self, c: CircuitRef, prefix: String) -> Scope {
        Scope { module: c.module, prefix, vars: HashMap::new(), dims: HashMap::new(), in_circuit: true }
    }

    pub(super) fn bind_statics(&mut self, c: CircuitRef, values: &[Static], scope: &mut Scope) {
        let circuit = self.circuit(c);
        for (s, v) in circuit.statics.iter().zip(values) {
            self.bind(scope, &s.name, Value::Static(*v), BindKind::Static);
        }
    }

    /// Runs a circuit body in `scope` and checks its `return` against the declared type.
    pub(super) fn circuit_body(&mut self, c: CircuitRef, scope: &mut Scope) -> Option<NodeId> {
        let circuit = self.circuit(c);
        let (last, init) = match circuit.body.split_last() {
            Some((last, init)) if matches!(last.kind, StmtKind::Return(_)) => (Some(last), init),
            _ => (None, &circuit.body[..]),
        };
        for stmt in init {
            if let StmtKind::Return(_) = stmt.kind {
                self.report(
                    Diagnostic::error("E0208", "`return` must be the last statement of a circuit")
                        .label(stmt.span, "statements follow this `return`"),
                );
                continue;
            }
            self.stmt(stmt, scope, false);
        }
        let Some(Stmt { kind: StmtKind::Return(e), .. }) = last else {
            if !contains_return_or_error(&circuit.body) {
                self.report(
                    Diagnostic::error("E0208", format!("circuit `{}` has no `return`", circuit.name.name))
                        .label(circuit.name.span, "this circuit returns nothing")
                        .help("end its body with `return <expression>`"),
                );
            }
            return None;
        };
        let v = self.eval(e, scope)?;
        let node = self.as_tensor(v, e.span)?;
        let want = self.lookup_type(&circuit.ret, scope)?;
        let got = self.ty(node).clone();
        if !types_agree(&want, &got) {
            self.report(
                Diagnostic::error("E0311", "returned value does not have the declared type")
                    .label(e.span, format!("this has type {}", self.show(&got)))
                    .secondary(circuit.ret.span, format!("the circuit declares {}", self.show(&want))),
            );
            return None;
        }
        Some(node)
    }

    /// Instantiates a circuit: `nn.dense(64, 128)`. The instance's parameters are created when
    /// it is first applied, under `name.`.
    pub fn instantiate(
        &mut self,
        c: CircuitRef,
        args: &'p [ast::Arg],
        span: Span,
        name: Option<&ast::Ident>,
        scope: &mut Scope,
    ) -> Option<Value> {
        let circuit = self.circuit(c);
        if self.in_repeat_body {
            self.report(
                Diagnostic::error("E0208", "circuit instances are not created in a `repeat` block")
                    .label(span, "this would create a new instance at every step")
                    .help("create the instance before the block; every step then shares its parameters"),
            );
            return None;
        }
        let names: Vec<&str> = circuit.statics.iter().map(|s| s.name.name.as_str()).collect();
        let bound = self.bind_args(&format!("circuit `{}`", circuit.name.name), span, &names, names.len(), args)?;
        let mut statics = Vec::new();
        for (s, arg) in circuit.statics.iter().zip(bound) {
            let arg = arg?;
            let v = self.eval(arg, scope)?;
            let Value::Static(st) = v else {
                self.report(
                    Diagnostic::error("E0403", format!("`{}` must be known when compiling", s.name.name))
                        .label(arg.span, "this is not a constant")
                        .secondary(s.span, "declared as a compile-time argument here"),
                );
                return None;
            };
            let st = match (s.kind, st) {
                (StaticKind::Int, Static::Float(f)) if f.fract() == 0.0 && f.abs() < 9e15 => Static::Int(f as i64),
                (StaticKind::Int, Static::Float(f)) => {
                    self.report(
                        Diagnostic::error("E0403", format!("`{}` must be an integer", s.name.name))
                            .label(arg.span, format!("this is {}", super::signature::num(f)))
                            .secondary(s.span, "declared `int` here"),
                    );
                    return None;
                }
                (StaticKind::Float, Static::Int(i)) => Static::Float(i as f64),
                (_, other) => other,
            };
            statics.push(st);
        }
        let inst_name = match name {
            Some(n) => format!("{}{}", scope.prefix, n.name),
            None => {
                if self.circuit_has_params(c, &mut HashSet::new()) {
                    self.report(
                        Diagnostic::error("E0209", format!("this instance of `{}` needs a name", circuit.name.name))
                            .label(span, "its parameters would have no name")
                            .help(format!(
                                "bind it first: `let layer = {}`, then call `layer(…)`",
                                self.prog.sources.text(span)
                            )),
                    );
                    return None;
                }
                format!("{}{}", scope.prefix, circuit.name.name)
            }
        };
        if name.is_some() {
            if let Some((prev, inst)) = self.b.instance_names.get(&inst_name) {
                // The same statement run again (its enclosing instance is applied again): share.
                if *prev == span {
                    return Some(Value::Instance(inst.clone()));
                }
                let prev = *prev;
                self.report(
                    Diagnostic::error("E0209", format!("instance name `{inst_name}` is used twice"))
                        .label(span, "its parameters would clash with the first instance's")
                        .secondary(prev, "first instance")
                        .help("give each instance its own name"),
                );
                return None;
            }
        }
        let inst = Rc::new(Instance { circuit: c, statics, name: inst_name.clone() });
        if name.is_some() {
            self.b.instance_names.insert(inst_name, (span, inst.clone()));
        }
        Some(Value::Instance(inst))
    }

    /// Whether a circuit, or any circuit it instantiates, declares parameters.
    pub(super) fn circuit_has_params(&self, c: CircuitRef, seen: &mut HashSet<CircuitRef>) -> bool {
        if !seen.insert(c) {
            return false;
        }
        let circuit = self.circuit(c);
        let module = self.prog.module(c.module);
        let mut stack: Vec<&Stmt> = circuit.body.iter().collect();
        while let Some(s) = stack.pop() {
            match &s.kind {
                StmtKind::Param { .. } => return true,
                StmtKind::Repeat { body, .. } => stack.extend(body.iter()),
                StmtKind::Let { value: Expr { kind: ExprKind::Call { callee, .. }, .. }, .. } => {
                    let target = match &callee.kind {
                        ExprKind::Path(p) if p.len() == 1 => find_circuit(self.prog, c.module, &p[0].name),
                        ExprKind::Path(p) if p.len() == 2 => {
                            module.imports.get(&p[0].name).and_then(|m| find_circuit(self.prog, *m, &p[1].name))
                        }
                        _ => None,
                    };
                    if target.is_some_and(|t| self.circuit_has_params(t, seen)) {
                        return true;
                    }
                }
                _ => {}
            }
        }
        false
    }

    /// Applies an instance to tensor arguments: binds inputs, runs the body, returns its result.
    pub fn apply(&mut self, inst: &Rc<Instance>, args: &'p [ast::Arg], span: Span, scope: &mut Scope) -> Option<Value> {
        let c = inst.circuit;
        let circuit = self.circuit(c);
        // An application counts as a statement: inlining can double the work at every level.
        if !self.spend(span) {
            return None;
        }
        if !self.stack.iter().any(|(sc, ..)| *sc == c) && self.stack.len() >= MAX_INSTANCE_DEPTH {
            self.report(
                Diagnostic::error(
                    "E0207",
                    format!("circuits applied more than {MAX_INSTANCE_DEPTH} deep (`{}` inside them)", circuit.name.name),
                )
                .label(span, format!("this application is {} circuits deep", self.stack.len() + 1))
                .note(format!(
                    "circuits are inlined, and one may apply another at most {MAX_INSTANCE_DEPTH} levels deep; no circuit here uses itself"
                ))
                .help("apply some of them one after another in the model instead of inside each other"),
            );
            return None;
        }
        if self.stack.iter().any(|(sc, ..)| *sc == c) {
            self.report(
                Diagnostic::error("E0207", format!("circuit `{}` uses itself", circuit.name.name))
                    .label(span, "this application recurses")
                    .note(
                        "circuits are inlined, so they cannot be recursive; use `repeat` for a fixed number of steps",
                    ),
            );
            return None;
        }
        let names: Vec<&str> = circuit.inputs.iter().map(|i| i.name.name.as_str()).collect();
        let bound = self.bind_args(&format!("`{}`", inst.name), span, &names, names.len(), args)?;
        let mut values = Vec::new();
        for arg in bound {
            let arg = arg?;
            let v = self.eval(arg, scope)?;
            values.push((self.as_tensor(v, arg.span)?, arg.span));
        }
        let mut inner = self.circuit_scope(c, format!("{}.", inst.name));
        self.bind_statics(c, &inst.statics, &mut inner);
        for (input, (node, arg_span)) in circuit.inputs.iter().zip(values) {
            self.unify_input(input, node, arg_span, &mut inner)?;
            self.bind(&mut inner, &input.name, Value::Tensor(node), BindKind::Input);
        }
        self.stack.push((c, span, inst.name.clone()));
        let out = self.circuit_body(c, &mut inner);
        self.stack.pop();
        out.map(Value::Tensor)
    }

    /// Matches an argument's type against a circuit input's declared type, binding size
    /// variables such as `B` on first sight.
    pub(super) fn unify_input(
        &mut self,
        input: &'p ast::Input,
        node: NodeId,
        arg_span: Span,
        scope: &mut Scope,
    ) -> Option<()> {
        let got = self.ty(node).clone();
        let want_elem = elem_of(input.ty.elem);
        let mismatch = |this: &mut Self, want: String| {
            let d =
                Diagnostic::error("E0310", format!("argument `{}` does not fit the circuit's input", input.name.name))
                    .label(arg_span, format!("this has type {}", this.show(&got)))
                    .secondary(input.ty.span, format!("the input expects {want}"));
            this.report(d);
        };
        if got.rank() != input.ty.dims.len() || got.elem != want_elem {
            let want = self.prog.sources.text(input.ty.span).to_string();
            mismatch(self, want);
            return None;
        }
        for (dim_expr, &actual) in input.ty.dims.iter().zip(&got.dims) {
            if let ExprKind::Path(p) = &dim_expr.kind {
                if p.len() == 1 && !scope.vars.contains_key(&p[0].name) && !scope.dims.contains_key(&p[0].name) {
                    scope.dims.insert(p[0].name.clone(), actual);
                    continue;
                }
            }
            let want = self.eval_dim(dim_expr, scope, false)?;
            if !dims_agree(want, actual) {
                let want_text = self.prog.sources.text(input.ty.span).to_string();
                let shown: Vec<String> = input
                    .ty
                    .dims
                    .iter()
                    .map(|d| match self.eval_dim_quiet(d, scope) {
                        Some(Dim::Known(n)) => n.to_string(),
                        _ => self.prog.sources.text(d.span).to_string(),
                    })
                    .collect();
                mismatch(self, format!("{want_text} = [{}]", shown.join(", ")));
                return None;
            }
        }
        Some(())
    }
}

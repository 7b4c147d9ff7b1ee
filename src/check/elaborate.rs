//! Statement-level elaboration: scopes, models, circuits and their instances.

use super::checked::*;
use super::index::Index;
use super::types::{dims_agree, Dim, Elem, ShowTy, SymId, SymNames, Ty};
use super::CheckOutput;
use crate::diagnostic::Diagnostic;
use crate::front::ast::{self, ElemType, Expr, ExprKind, Item, Stmt, StmtKind};
use crate::front::loader::{ModuleId, Program};
use crate::source::Span;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// Largest parameter tensor, in elements (16 GiB of f32).
pub const MAX_PARAM_ELEMENTS: u64 = 1 << 32;
/// A parameter with more elements than this draws warning W0002 (1 GiB of f32).
pub const WARN_PARAM_ELEMENTS: u64 = 1 << 28;
/// Parameter names starting with this are the optimizer state's in checkpoints.
pub const RESERVED_PREFIX: &str = "opt.";
/// Most times a `repeat` body may be written out.
pub const MAX_REPEAT: i64 = 1000;
/// Deepest chain of circuit instances inside instances.
pub const MAX_INSTANCE_DEPTH: usize = 32;
/// Most statements one model may elaborate to, counting every `repeat` step and every inlined
/// circuit body: a bound on the work and memory a small file can ask for.
pub const MAX_STATEMENTS: usize = 50_000;
/// Errors reported before the checker stops.
pub const MAX_ERRORS: usize = 100;

/// A compile-time number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Static {
    Int(i64),
    Float(f64),
    /// An integer known only symbolically (a circuit's `int` argument while checked on its own).
    Dim(Dim),
    /// A number not known while checking a circuit on its own.
    Unknown,
}

impl Static {
    pub fn as_f64(self) -> Option<f64> {
        match self {
            Static::Int(i) => Some(i as f64),
            Static::Float(f) => Some(f),
            Static::Dim(Dim::Known(n)) => Some(n as f64),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CircuitRef {
    pub module: ModuleId,
    pub item: usize,
}

#[derive(Debug)]
pub struct Instance {
    pub circuit: CircuitRef,
    pub statics: Vec<Static>,
    /// Hierarchical name of the instance, e.g. `net.l1`.
    pub name: String,
}

#[derive(Clone, Debug)]
pub enum Value {
    Tensor(NodeId),
    Static(Static),
    Instance(Rc<Instance>),
    Circuit(CircuitRef),
    Module(ModuleId),
    /// The value of a binding whose definition failed; uses of it report nothing more.
    Poison,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindKind {
    Data,
    Param,
    Let,
    Static,
    Input,
    Instance,
}

impl BindKind {
    pub fn noun(self) -> &'static str {
        match self {
            BindKind::Data => "data",
            BindKind::Param => "a parameter",
            BindKind::Let => "a value",
            BindKind::Static => "a circuit argument",
            BindKind::Input => "a circuit input",
            BindKind::Instance => "a circuit instance",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Binding {
    pub value: Value,
    pub span: Span,
    pub kind: BindKind,
}

/// Names visible in one model body or one circuit application.
pub struct Scope {
    pub module: ModuleId,
    /// Instance name followed by `.`, or empty in a model.
    pub prefix: String,
    pub vars: HashMap<String, Binding>,
    /// Named dimensions: a model's symbolic sizes, a circuit's size variables such as `B`.
    pub dims: HashMap<String, Dim>,
    pub in_circuit: bool,
}

/// The model under construction (a throwaway one while checking a circuit on its own).
#[derive(Default)]
pub struct Builder {
    pub syms: Vec<String>,
    pub data: Vec<DataDecl>,
    pub params: Vec<ParamDecl>,
    pub nodes: Vec<Node>,
    pub observations: Vec<Observation>,
    pub activation_priors: Vec<ActivationPrior>,
    pub values: Vec<super::checked::NamedValue>,
    pub train: TrainSettings,
    pub train_span: Option<Span>,
    pub param_nodes: HashMap<String, NodeId>,
    /// Named instances: where each was created, so re-running a shared body finds its own.
    pub instance_names: HashMap<String, (Span, Rc<Instance>)>,
    pub observed: HashMap<usize, Span>,
    /// Statements elaborated so far (see [`MAX_STATEMENTS`]).
    pub statements: usize,
}

impl SymNames for Builder {
    fn sym_name(&self, s: SymId) -> &str {
        self.syms.get(s.0 as usize).map_or("?", String::as_str)
    }
}

pub struct Checker<'p> {
    pub prog: &'p Program,
    diags: Vec<Diagnostic>,
    reported: HashSet<(&'static str, Option<Span>)>,
    pub b: Builder,
    /// Circuit applications in progress, innermost last: (circuit, call site, instance name).
    pub stack: Vec<(CircuitRef, Span, String)>,
    /// Checking a circuit on its own, with symbolic arguments.
    pub generic: bool,
    /// The statement being elaborated sits directly in a `repeat` block.
    pub(super) in_repeat_body: bool,
    errors_seen: usize,
    /// Names' definitions and uses, kept only for editors (see `index.rs`).
    pub(super) index: Option<Index>,
    /// With an index: the `let` each instance of the model being checked was bound by, by the
    /// instance's full name, so its parameters can be listed there.
    pub(super) instance_defs: HashMap<String, Span>,
}

impl<'p> Checker<'p> {
    pub fn new(prog: &'p Program) -> Checker<'p> {
        Checker {
            prog,
            diags: Vec::new(),
            reported: HashSet::new(),
            b: Builder::default(),
            stack: Vec::new(),
            generic: false,
            in_repeat_body: false,
            errors_seen: 0,
            index: None,
            instance_defs: HashMap::new(),
        }
    }

    /// A checker that also keeps an [`Index`] of names for editors.
    pub fn with_index(prog: &'p Program) -> Checker<'p> {
        Checker { index: Some(Index::default()), ..Checker::new(prog) }
    }

    pub fn run(self) -> CheckOutput {
        self.run_indexed().0
    }

    /// Checks everything; returns the index too when one was kept.
    pub fn run_indexed(mut self) -> (CheckOutput, Option<Index>) {
        let models = self.check_all();
        (CheckOutput { models, diagnostics: self.diags }, self.index)
    }

    fn check_all(&mut self) -> Vec<CheckedModel> {
        self.check_item_names();
        for (mi, module) in self.prog.modules.iter().enumerate() {
            for (ii, item) in module.ast.items.iter().enumerate() {
                if let Item::Circuit(_) = item {
                    self.check_circuit_alone(CircuitRef { module: ModuleId(mi as u32), item: ii });
                }
            }
        }
        let mut models = Vec::new();
        if let Some(root) = self.prog.modules.first() {
            for item in &root.ast.items {
                if let Item::Model(m) = item {
                    let before = self.error_count();
                    let model = self.check_model(m);
                    if self.error_count() == before {
                        models.push(model);
                    }
                }
            }
        }
        models
    }

    /// Errors met so far, counting those not shown again because they were reported before.
    fn error_count(&self) -> usize {
        self.errors_seen
    }

    /// Reports a diagnostic once per code and place, with the chain of instances it arose in.
    pub fn report(&mut self, mut d: Diagnostic) {
        if d.is_error() {
            self.errors_seen += 1;
        }
        if self.diags.len() >= MAX_ERRORS {
            return;
        }
        if self.diags.len() + 1 == MAX_ERRORS {
            d = d.note(format!("stopping after {MAX_ERRORS} diagnostics"));
        }
        if !self.reported.insert((d.code, d.primary_span())) {
            return;
        }
        if !self.generic {
            for (c, site, name) in self.stack.iter().rev() {
                let cname = &self.circuit(*c).name.name;
                let loc = self.prog.sources.location(*site);
                d = d.note(format!("in `{name}`, an instance of circuit `{cname}` used at {loc}"));
            }
        }
        self.diags.push(d);
    }

    pub fn circuit(&self, c: CircuitRef) -> &'p ast::Circuit {
        match &self.prog.module(c.module).ast.items[c.item] {
            Item::Circuit(circ) => circ,
            _ => unreachable!("CircuitRef always points at a circuit"),
        }
    }

    pub fn show(&self, ty: &Ty) -> String {
        ShowTy(ty, &self.b).to_string()
    }

    pub fn push(&mut self, op: Op, inputs: Vec<NodeId>, ty: Ty, span: Span) -> NodeId {
        let via = if self.generic { None } else { self.stack.first().map(|(_, site, _)| *site) };
        self.b.nodes.push(Node { op, inputs, ty, span, via });
        NodeId(self.b.nodes.len() as u32 - 1)
    }

    pub fn ty(&self, id: NodeId) -> &Ty {
        &self.b.nodes[id.0 as usize].ty
    }

    /// Duplicate circuit and model names within each module.
    fn check_item_names(&mut self) {
        for module in &self.prog.modules {
            let mut seen: HashMap<&str, Span> = HashMap::new();
            for item in &module.ast.items {
                let name = match item {
                    Item::Circuit(c) => &c.name,
                    Item::Model(m) => &m.name,
                    Item::Import(i) => i.local_name(),
                };
                if let Some(prev) = seen.insert(&name.name, name.span) {
                    self.report(
                        Diagnostic::error("E0202", format!("`{}` is defined twice", name.name))
                            .label(name.span, "defined again here")
                            .secondary(prev, "first defined here"),
                    );
                }
            }
        }
    }

    fn check_model(&mut self, m: &'p ast::Model) -> CheckedModel {
        self.b = Builder::default();
        self.instance_defs.clear();
        self.generic = false;
        let mut scope = Scope {
            module: ModuleId(0),
            prefix: String::new(),
            vars: HashMap::new(),
            dims: HashMap::new(),
            in_circuit: false,
        };
        let errors_before = self.error_count();
        self.stmts(&m.body, &mut scope, false);
        if self.error_count() == errors_before && self.b.observations.is_empty() && self.b.activation_priors.is_empty()
        {
            self.report(
                Diagnostic::warning("W0001", format!("model `{}` observes no data", m.name.name))
                    .label(m.name.span, "nothing here has a likelihood")
                    .help("state one with `y ~ normal(prediction, 1)` on a `data` declaration"),
            );
        }
        let b = std::mem::take(&mut self.b);
        CheckedModel {
            name: m.name.name.clone(),
            span: m.span,
            syms: b.syms,
            data: b.data,
            params: b.params,
            nodes: b.nodes,
            observations: b.observations,
            activation_priors: b.activation_priors,
            values: b.values,
            train: b.train,
        }
    }

    pub fn new_sym(&mut self, name: &str) -> SymId {
        self.b.syms.push(name.to_string());
        SymId(self.b.syms.len() as u32 - 1)
    }

    /// Binds a name, reporting a clash with an earlier binding. Only `let` may rebind a `let`.
    pub fn bind(&mut self, scope: &mut Scope, name: &ast::Ident, value: Value, kind: BindKind) {
        if let Some(prev) = scope.vars.get(&name.name) {
            let shadowing_ok = kind == BindKind::Let && prev.kind == BindKind::Let;
            if !shadowing_ok {
                let prev_span = prev.span;
                let prev_kind = prev.kind;
                self.report(
                    Diagnostic::error("E0202", format!("`{}` is defined twice", name.name))
                        .label(name.span, format!("defined again here as {}", kind.noun()))
                        .secondary(prev_span, format!("first defined here as {}", prev_kind.noun()))
                        .help("only a `let` value can be redefined by another `let`; choose another name"),
                );
                return;
            }
        }
        if self.index.is_some() {
            self.index_def(scope, name, &value, kind);
        }
        if let (BindKind::Let, Value::Tensor(node), false) = (kind, &value, scope.in_circuit) {
            let v = super::checked::NamedValue { name: name.name.clone(), node: *node, span: name.span };
            match self.b.values.iter_mut().find(|n| n.name == name.name) {
                Some(old) => *old = v,
                None => self.b.values.push(v),
            }
        }
        scope.vars.insert(name.name.clone(), Binding { value, span: name.span, kind });
    }

    pub fn stmts(&mut self, stmts: &'p [Stmt], scope: &mut Scope, in_repeat: bool) {
        for stmt in stmts {
            self.stmt(stmt, scope, in_repeat);
        }
    }

    pub(super) fn stmt(&mut self, stmt: &'p Stmt, scope: &mut Scope, in_repeat: bool) {
        if self.diags.len() >= MAX_ERRORS || !self.spend(stmt.span) {
            return;
        }
        match &stmt.kind {
            StmtKind::Data { name, ty, source } => {
                if scope.in_circuit || in_repeat {
                    self.not_here(
                        stmt,
                        "`data` declarations are",
                        if in_repeat { "a `repeat` block" } else { "a circuit" },
                        "declare data in the model and pass it to the circuit as an input",
                    );
                } else {
                    self.data_decl(name, ty, source.as_ref(), scope);
                }
                poison_if_unbound(scope, name);
            }
            StmtKind::Param { name, ty, init, prior, draw, update } => {
                if in_repeat {
                    self.not_here(
                        stmt,
                        "`param` declarations are",
                        "a `repeat` block",
                        "declare the parameter before the block; every step then shares it",
                    );
                } else {
                    let decl = ParamSyntax {
                        init: init.as_ref(),
                        prior: prior.as_ref(),
                        draw: draw.as_ref(),
                        update: update.as_ref(),
                    };
                    self.param_decl(name, ty, decl, scope);
                }
                poison_if_unbound(scope, name);
            }
            StmtKind::Let { name, value } => {
                self.in_repeat_body = in_repeat;
                let v = self.eval_bound(value, scope, Some(name));
                self.in_repeat_body = false;
                let Some(v) = v else {
                    // A failed `let` hides any earlier `let` of the same name: its value is unknown.
                    if scope.vars.get(&name.name).is_none_or(|b| matches!(b.kind, BindKind::Let | BindKind::Instance)) {
                        scope.vars.insert(
                            name.name.clone(),
                            Binding { value: Value::Poison, span: name.span, kind: BindKind::Let },
                        );
                    }
                    return;
                };
                let kind = if matches!(v, Value::Instance(_)) { BindKind::Instance } else { BindKind::Let };
                self.bind(scope, name, v, kind);
            }
            StmtKind::Tilde { target, dist } => self.tilde(target, dist, scope),
            StmtKind::Return(_) => {
                let what = if scope.in_circuit { "a `repeat` block" } else { "a model" };
                let help = if scope.in_circuit {
                    "return after the block"
                } else {
                    "a model states its outputs with `~` observations"
                };
                self.not_here(stmt, "`return` is", what, help);
            }
            StmtKind::Repeat { count, body } => {
                let n = match self.static_value(count, scope, "the repeat count") {
                    // Unknown while checking a circuit on its own: check the body once.
                    Some(Static::Unknown | Static::Dim(_)) => 1,
                    Some(_) => match self.static_int(count, scope, "the repeat count") {
                        Some(n) => n,
                        None => return,
                    },
                    None => return,
                };
                if !(0..=MAX_REPEAT).contains(&n) {
                    self.report(
                        Diagnostic::error("E0406", format!("cannot repeat {n} times"))
                            .label(count.span, format!("the count must be between 0 and {MAX_REPEAT}")),
                    );
                    return;
                }
                for _ in 0..n {
                    self.stmts(body, scope, true);
                }
            }
            StmtKind::Train { settings } => {
                if scope.in_circuit || in_repeat {
                    return self.not_here(
                        stmt,
                        "`train` settings are",
                        if in_repeat { "a `repeat` block" } else { "a circuit" },
                        "put `train { … }` in the model",
                    );
                }
                self.train_block(stmt.span, settings, scope);
            }
            StmtKind::Error => {}
        }
    }

    /// Counts one statement against [`MAX_STATEMENTS`]; false (after one error) once it is spent.
    pub(super) fn spend(&mut self, span: Span) -> bool {
        if self.b.statements >= MAX_STATEMENTS {
            return false;
        }
        self.b.statements += 1;
        if self.b.statements == MAX_STATEMENTS {
            self.report(
                Diagnostic::error("E0406", format!("the model elaborates to more than {MAX_STATEMENTS} statements"))
                    .label(span, "the limit was reached here")
                    .note("every step of a `repeat` and every application of a circuit counts its statements again")
                    .help("use fewer or shorter `repeat` blocks, or fewer nested circuit applications"),
            );
            return false;
        }
        true
    }

    fn not_here(&mut self, stmt: &Stmt, what: &str, place: &str, help: &str) {
        self.report(
            Diagnostic::error("E0208", format!("{what} not allowed in {place}"))
                .label(stmt.span, "not allowed here")
                .help(help),
        );
    }

    fn data_decl(&mut self, name: &'p ast::Ident, ty: &'p ast::TypeExpr, source: Option<&'p Expr>, scope: &mut Scope) {
        let Some(t) = self.declare_type(ty, scope, true) else {
            return;
        };
        if t.dims.is_empty() || t.dims.len() > 2 {
            self.report(
                Diagnostic::error("E0306", format!("data `{}` must have one or two axes", name.name))
                    .label(ty.span, format!("this has {} axes", t.dims.len()))
                    .help("data are rows of a table: `[N]` for one column, `[N, k]` for k columns; use `reshape` for more axes"),
            );
            return;
        }
        if !matches!(t.dims[0], Dim::Sym(_)) {
            self.report(
                Diagnostic::error("E0306", "the first axis of data must be the symbolic number of examples")
                    .label(ty.dims[0].span, "this is a fixed size")
                    .help("name it, as in `[N, 64]`: the number of rows is known only when the data are read"),
            );
            return;
        }
        if let Some(k) = t.dims.iter().skip(1).position(|d| !matches!(d, Dim::Known(_))) {
            self.report(
                Diagnostic::error("E0306", "the number of columns of data must be a number")
                    .label(ty.dims[k + 1].span, "a size only known at run time")
                    .help("write the number of columns, as in `[N, 64]`; only the first axis counts rows"),
            );
            return;
        }
        if let Some(first) = self.b.data.first() {
            if first.ty.dims[0] != t.dims[0] {
                let (fspan, fname) = (first.span, first.name.clone());
                self.report(
                    Diagnostic::error("E0306", "all data of a model must have the same number of examples")
                        .label(ty.dims[0].span, "this names a different number of rows")
                        .secondary(fspan, format!("`{fname}` is declared with another first axis here")),
                );
                return;
            }
        }
        let Some(src) = self.data_source(name, &t, ty, source) else {
            return;
        };
        let index = self.b.data.len();
        self.b.data.push(DataDecl { name: name.name.clone(), ty: t.clone(), source: src, span: name.span });
        let node = self.push(Op::Data(index), vec![], t, name.span);
        self.bind(scope, name, Value::Tensor(node), BindKind::Data);
    }

    #[allow(clippy::too_many_arguments)]
    fn param_decl(&mut self, name: &'p ast::Ident, ty: &'p ast::TypeExpr, decl: ParamSyntax<'p>, scope: &mut Scope) {
        let ParamSyntax { init, prior, draw, update } = decl;
        let full = format!("{}{}", scope.prefix, name.name);
        if !self.generic && full.starts_with(RESERVED_PREFIX) {
            let first = full.split('.').next().unwrap_or("opt");
            self.report(
                Diagnostic::error("E0211", format!("parameter name `{full}` is reserved"))
                    .label(name.span, format!("its full name starts with `{RESERVED_PREFIX}`"))
                    .note("checkpoints store optimizer state under `opt.<rule>.<what>.<parameter>`; a parameter there would collide with it")
                    .help(format!("rename the instance or parameter `{first}`")),
            );
            return;
        }
        let t = self.lookup_type(ty, scope);
        let prior_v = match prior {
            Some(p) => self.param_prior(p, scope),
            None => Some(Prior::Flat),
        };
        let draw_v = match (draw, init) {
            (None, _) => Some(None),
            (Some(d), Some(i)) => {
                self.report(
                    Diagnostic::error("E0507", format!("parameter `{full}` has two starts"))
                        .label(d.span, "a random start")
                        .secondary(i.span, "and a fixed start")
                        .help("keep one: `= value` starts every element there, `init dist(…)` draws them"),
                );
                None
            }
            (Some(d), None) => match self.param_prior(d, scope) {
                // Checked on its own, a circuit's prior with symbolic arguments reads as flat.
                Some(Prior::Flat) if !self.generic => {
                    self.report(
                        Diagnostic::error("E0507", "cannot draw a start from a flat distribution")
                            .label(d.span, "a flat distribution has no draws")
                            .help("draw from a proper distribution, e.g. `init normal(0, 0.1)`, or start at `= value`"),
                    );
                    None
                }
                other => other.map(Some),
            },
        };
        let init_v = match init {
            Some(e) => self.param_init(e, prior_v, scope),
            None => Some(None),
        };
        let update_v = match update {
            Some(u) => self.update_rule(u, scope).map(Some),
            None => Some(None),
        };
        let (Some(t), Some(prior_v), Some(init_v), Some(update_v), Some(draw_v)) =
            (t, prior_v, init_v, update_v, draw_v)
        else {
            return;
        };
        if ty.elem == ElemType::Int {
            self.report(
                Diagnostic::error("E0402", "parameters are real-valued")
                    .label(ty.span, "an `int` parameter cannot be trained")
                    .help("drop `int`"),
            );
            return;
        }
        if !self.generic && t.known_len().is_none_or(|n| n > MAX_PARAM_ELEMENTS) {
            let shown = self.show(&t);
            self.report(
                Diagnostic::error("E0305", format!("parameter `{full}` is too large"))
                    .label(ty.span, format!("{shown} has more than {MAX_PARAM_ELEMENTS} elements")),
            );
            return;
        }
        if let Some(n) = t.known_len().filter(|n| !self.generic && *n > WARN_PARAM_ELEMENTS) {
            let shown = self.show(&t);
            self.report(
                Diagnostic::warning("W0002", format!("parameter `{full}` is very large"))
                    .label(ty.span, format!("{shown} has {n} elements: {} in f32", crate::budget::show(n * 4)))
                    .note(format!(
                        "training also keeps it and each optimizer state tensor in f64 on the host ({} each); `circ train` refuses a run that does not fit in memory",
                        crate::budget::show(n * 8)
                    )),
            );
        }
        if let Some(d) = t.dims.iter().position(|d| matches!(d, Dim::Sym(_))) {
            if !self.generic {
                let shown = self.show(&t);
                self.report(
                    Diagnostic::error("E0305", format!("the shape of parameter `{full}` is not known when compiling"))
                        .label(ty.dims[d].span, format!("this size is only known at run time ({shown})"))
                        .help("a parameter's shape may use numbers and circuit arguments, not data sizes such as `N`"),
                );
                return;
            }
        }
        if let Some(rule) = &update_v {
            if rule.kind == UpdateKind::Bayes && prior_v == Prior::Flat {
                let u = update.map_or(name.span, |u| u.span);
                self.report(
                    Diagnostic::error("E0508", format!("`bayes` needs a prior on `{full}`"))
                        .label(u, "the Bayesian learning rate starts from the prior's precision")
                        .secondary(name.span, "this parameter has a flat prior (zero precision)")
                        .help("give it a proper prior, e.g. `~ normal(0, 1)`"),
                );
                return;
            }
        }
        if let Some(&existing) = self.b.param_nodes.get(&full) {
            // The same instance applied again: it shares its parameters.
            self.bind(scope, name, Value::Tensor(existing), BindKind::Param);
            return;
        }
        let index = self.b.params.len();
        self.b.params.push(ParamDecl {
            name: full.clone(),
            ty: t.clone(),
            init: init_v,
            prior: prior_v,
            draw: draw_v,
            update: update_v,
            span: name.span,
        });
        let node = self.push(Op::Param(index), vec![], t, name.span);
        if self.index.is_some() && !self.generic {
            self.index_member(&full, index);
        }
        self.b.param_nodes.insert(full, node);
        self.bind(scope, name, Value::Tensor(node), BindKind::Param);
    }

    /// A type whose dimensions may introduce new symbolic sizes (`data`, circuit inputs).
    pub(super) fn declare_type(&mut self, ty: &'p ast::TypeExpr, scope: &mut Scope, declare: bool) -> Option<Ty> {
        let mut dims = Vec::new();
        for d in &ty.dims {
            if declare {
                if let ExprKind::Path(p) = &d.kind {
                    let n = &p[0].name;
                    if p.len() == 1 && !scope.vars.contains_key(n) && !scope.dims.contains_key(n) {
                        let s = Dim::Sym(self.new_sym(n));
                        scope.dims.insert(n.clone(), s);
                    }
                }
            }
            dims.push(self.eval_dim(d, scope, false)?);
        }
        Some(Ty { elem: elem_of(ty.elem), dims })
    }

    /// A type whose dimensions must all be known names or numbers (parameters, return types).
    pub fn lookup_type(&mut self, ty: &'p ast::TypeExpr, scope: &mut Scope) -> Option<Ty> {
        self.declare_type(ty, scope, false)
    }

    /// Evaluates one dimension of a type.
    pub fn eval_dim(&mut self, e: &'p Expr, scope: &mut Scope, _pattern: bool) -> Option<Dim> {
        if let ExprKind::Path(p) = &e.kind {
            if p.len() == 1 {
                if let Some(d) = scope.dims.get(&p[0].name) {
                    return Some(*d);
                }
                if !scope.vars.contains_key(&p[0].name) {
                    let mut d = Diagnostic::error("E0205", format!("unknown dimension `{}`", p[0].name))
                        .label(e.span, "not a circuit argument or a size named earlier");
                    if scope.in_circuit {
                        d = d.help("a size variable such as `B` must first appear in an input's type");
                    }
                    self.report(d);
                    return None;
                }
            }
        }
        let v = self.eval(e, scope)?;
        let s = match v {
            Value::Static(s) => s,
            _ => {
                self.report(
                    Diagnostic::error("E0403", "a dimension must be known when compiling")
                        .label(e.span, "this is not a compile-time number"),
                );
                return None;
            }
        };
        match s {
            Static::Int(n) if n >= 1 => Some(Dim::Known(n as u64)),
            Static::Float(f) if f >= 1.0 && f.fract() == 0.0 && f < 9e15 => Some(Dim::Known(f as u64)),
            Static::Dim(d) => Some(d),
            Static::Unknown => Some(Dim::Any),
            Static::Int(n) => {
                self.report(
                    Diagnostic::error("E0307", format!("a dimension must be at least 1, found {n}"))
                        .label(e.span, "invalid size"),
                );
                None
            }
            Static::Float(f) => {
                self.report(
                    Diagnostic::error("E0307", format!("a dimension must be a positive integer, found {f}"))
                        .label(e.span, "invalid size"),
                );
                None
            }
        }
    }

    /// `eval_dim` without diagnostics, for messages.
    pub(super) fn eval_dim_quiet(&mut self, e: &'p Expr, scope: &mut Scope) -> Option<Dim> {
        let saved = (self.diags.len(), self.reported.clone());
        let d = self.eval_dim(e, scope, false);
        self.diags.truncate(saved.0);
        self.reported = saved.1;
        d
    }
}

/// The optional parts of a `param` declaration.
#[derive(Clone, Copy)]
struct ParamSyntax<'p> {
    init: Option<&'p Expr>,
    prior: Option<&'p Expr>,
    draw: Option<&'p Expr>,
    update: Option<&'p Expr>,
}

/// Whether statements (repeat bodies included) hold a `return` or a statement that failed to parse.
pub(super) fn contains_return_or_error(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|s| match &s.kind {
        StmtKind::Return(_) | StmtKind::Error => true,
        StmtKind::Repeat { body, .. } => contains_return_or_error(body),
        _ => false,
    })
}

/// After a failed declaration, binds its name to `Poison` so its uses report nothing more.
fn poison_if_unbound(scope: &mut Scope, name: &ast::Ident) {
    scope.vars.entry(name.name.clone()).or_insert(Binding {
        value: Value::Poison,
        span: name.span,
        kind: BindKind::Let,
    });
}

pub fn elem_of(e: ElemType) -> Elem {
    match e {
        ElemType::Float => Elem::Float,
        ElemType::Int => Elem::Int,
    }
}

pub fn types_agree(a: &Ty, b: &Ty) -> bool {
    a.elem == b.elem && a.rank() == b.rank() && a.dims.iter().zip(&b.dims).all(|(x, y)| dims_agree(*x, *y))
}

/// The item index of circuit `name` in a module.
pub fn find_circuit(prog: &Program, module: ModuleId, name: &str) -> Option<CircuitRef> {
    prog.module(module).ast.items.iter().enumerate().find_map(|(i, item)| match item {
        Item::Circuit(c) if c.name.name == name => Some(CircuitRef { module, item: i }),
        _ => None,
    })
}

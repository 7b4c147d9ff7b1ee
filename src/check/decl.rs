//! Declarations that carry numbers: data sources, priors and initial values, likelihoods,
//! activation priors, update rules and `train` settings. Every number is checked here.

use super::builtins::{self, TRAIN_SETTINGS, UPDATE_RULES};
use super::checked::*;
use super::elaborate::{BindKind, Checker, Scope, Static, Value};
use super::suggest::closest;
use super::types::{broadcast, Elem, Ty};
use crate::diagnostic::Diagnostic;
use crate::front::ast::{self, Expr, ExprKind, Setting};
use crate::source::Span;

/// Where a distribution is used: it decides which distributions are allowed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DistUse {
    ParamPrior,
    ActivationPrior,
}

impl<'p> Checker<'p> {
    pub fn data_source(
        &mut self,
        name: &'p ast::Ident,
        t: &Ty,
        ty: &'p ast::TypeExpr,
        source: Option<&'p Expr>,
    ) -> Option<DataSource> {
        let width = if t.rank() == 2 { t.dims[1] } else { super::types::Dim::Known(1) };
        let Some(src) = source else {
            if width == super::types::Dim::Known(1) {
                return Some(DataSource::Columns(vec![name.name.clone()]));
            }
            self.report(
                Diagnostic::error("E0313", format!("data `{}` has several columns but no source", name.name))
                    .label(ty.span, "which CSV columns hold these values?")
                    .help("name them: `= csv(\"first\" .. \"last\")` or `= csv(\"a\", \"b\", …)`"),
            );
            return None;
        };
        let args = match &src.kind {
            ExprKind::Call { callee, args } if callee.path_name().as_deref() == Some("csv") => args,
            _ => {
                self.report(
                    Diagnostic::error("E0404", "a data source must be `csv(…)`")
                        .label(src.span, "not a data source")
                        .help("name the columns: `csv(\"column\")`, `csv(\"a\", \"b\")` or `csv(\"a\" .. \"z\")`"),
                );
                return None;
            }
        };
        let strings = |e: &Expr| match &e.kind {
            ExprKind::Str(s) => Some(s.clone()),
            _ => None,
        };
        if let [arg] = args.as_slice() {
            if let ExprKind::Range(a, b) = &arg.value.kind {
                if let (Some(a), Some(b)) = (strings(a), strings(b)) {
                    if t.rank() == 1 {
                        self.report(
                            Diagnostic::error("E0313", "a column range for one-column data")
                                .label(arg.value.span, "this names several columns")
                                .secondary(ty.span, "but the data have one column per example")
                                .help("declare it as `[N, k]`, or name a single column"),
                        );
                        return None;
                    }
                    return Some(DataSource::ColumnRange(a, b));
                }
            }
        }
        let mut cols = Vec::new();
        for arg in args {
            match (&arg.name, strings(&arg.value)) {
                (None, Some(s)) => cols.push(s),
                _ => {
                    self.report(
                        Diagnostic::error("E0404", "`csv` takes column names")
                            .label(arg.value.span, "expected a string such as \"age\" or a range \"a\" .. \"z\""),
                    );
                    return None;
                }
            }
        }
        let expected = match width {
            super::types::Dim::Known(k) => k as usize,
            _ => cols.len(),
        };
        if cols.len() != expected || cols.is_empty() {
            self.report(
                Diagnostic::error(
                    "E0313",
                    format!(
                        "{} for data with {}",
                        super::expr::plural(cols.len(), "column"),
                        super::expr::plural(expected, "column")
                    ),
                )
                .label(src.span, format!("this names {}", super::expr::plural(cols.len(), "column")))
                .secondary(ty.span, format!("the type has {expected} per example")),
            );
            return None;
        }
        Some(DataSource::Columns(cols))
    }

    /// `~ normal(0, 1)` on a parameter.
    pub fn param_prior(&mut self, e: &'p Expr, scope: &mut Scope) -> Option<Prior> {
        self.prior(e, scope, DistUse::ParamPrior)
    }

    fn prior(&mut self, e: &'p Expr, scope: &mut Scope, usage: DistUse) -> Option<Prior> {
        let (name, name_span, args) = self.dist_call(e)?;
        let Some(arg_names) = builtins::distribution(name) else {
            return self.unknown_distribution(name, name_span);
        };
        if matches!(name, "categorical" | "bernoulli") || (usage == DistUse::ActivationPrior && name == "flat") {
            let what = if usage == DistUse::ParamPrior { "a parameter" } else { "a hidden value" };
            self.report(
                Diagnostic::error("E0503", format!("`{name}` cannot be the prior of {what}"))
                    .label(name_span, "not a prior")
                    .help(if name == "flat" {
                        "a flat prior on a value adds nothing; remove the statement"
                    } else {
                        "priors are `normal`, `laplace`, `lognormal`, `uniform` or `flat`; likelihoods on data use `categorical` and `bernoulli`"
                    }),
            );
            return None;
        }
        let bound = self.bind_args(&format!("`{name}`"), e.span, arg_names, arg_names.len(), args)?;
        let mut vals = Vec::new();
        for (arg, an) in bound.iter().zip(arg_names) {
            let arg = (*arg)?;
            let v = self.eval(arg, scope)?;
            let Value::Static(s) = v else {
                let help = if usage == DistUse::ParamPrior {
                    "a prior is fixed before training; for learned scales, use a likelihood on data"
                } else {
                    "`~` on a value the model computes states a prior on it, with numbers as arguments; only `data` is observed against a prediction"
                };
                self.report(
                    Diagnostic::error("E0403", format!("`{an}` of a prior must be a number known when compiling"))
                        .label(arg.span, "this is a tensor")
                        .help(help),
                );
                return None;
            };
            vals.push((s.as_f64(), arg.span, *an));
        }
        if vals.iter().any(|(v, ..)| v.is_none()) {
            // Symbolic arguments while checking a circuit on its own: nothing to validate yet.
            return Some(Prior::Flat);
        }
        let v: Vec<(f64, Span, &str)> = vals.into_iter().map(|(v, s, n)| (v.unwrap_or(0.0), s, n)).collect();
        for (x, s, n) in &v {
            if !x.is_finite() {
                self.report(
                    Diagnostic::error("E0501", format!("`{n}` of `{name}` is not finite"))
                        .label(*s, format!("this is {x}")),
                );
                return None;
            }
        }
        let positive = |this: &mut Self, i: usize| -> Option<f64> {
            let (x, s, n) = v[i];
            if x <= 0.0 {
                this.report(
                    Diagnostic::error("E0501", format!("`{n}` of `{name}` must be positive"))
                        .label(s, format!("this is {x}"))
                        .help("a scale of zero or less is not a distribution"),
                );
                return None;
            }
            Some(x)
        };
        Some(match name {
            "normal" => Prior::Normal { mu: v[0].0, sigma: positive(self, 1)? },
            "laplace" => Prior::Laplace { mu: v[0].0, b: positive(self, 1)? },
            "lognormal" => Prior::LogNormal { mu: v[0].0, sigma: positive(self, 1)? },
            "uniform" => {
                if v[0].0 >= v[1].0 {
                    self.report(
                        Diagnostic::error("E0501", "`uniform` needs `low` < `high`")
                            .label(v[1].1, format!("{} is not above {}", v[1].0, v[0].0))
                            .secondary(v[0].1, "`low`"),
                    );
                    return None;
                }
                Prior::Uniform { low: v[0].0, high: v[1].0 }
            }
            _ => Prior::Flat,
        })
    }

    /// The callee name, its span and the arguments of a distribution expression.
    fn dist_call(&mut self, e: &'p Expr) -> Option<(&'p str, Span, &'p [ast::Arg])> {
        match &e.kind {
            ExprKind::Call { callee, args } => match &callee.kind {
                ExprKind::Path(p) if p.len() == 1 => Some((p[0].name.as_str(), p[0].span, args)),
                _ => {
                    self.report(
                        Diagnostic::error("E0502", "expected a distribution")
                            .label(callee.span, "not a distribution name"),
                    );
                    None
                }
            },
            ExprKind::Path(p) if p.len() == 1 && builtins::distribution(&p[0].name).is_some() => {
                if p[0].name == "flat" {
                    return Some(("flat", p[0].span, &[]));
                }
                self.report(
                    Diagnostic::error("E0401", format!("`{}` needs its arguments", p[0].name))
                        .label(e.span, "missing `(…)`")
                        .help(format!(
                            "for example `{}({})`",
                            p[0].name,
                            builtins::distribution(&p[0].name).unwrap_or(&[]).join(", ")
                        )),
                );
                None
            }
            ExprKind::Error => None,
            _ => {
                self.report(
                    Diagnostic::error("E0502", "expected a distribution after `~`")
                        .label(e.span, "not a distribution")
                        .help("for example `~ normal(0, 1)`"),
                );
                None
            }
        }
    }

    fn unknown_distribution<T>(&mut self, name: &str, span: Span) -> Option<T> {
        let mut d =
            Diagnostic::error("E0502", format!("unknown distribution `{name}`")).label(span, "not a distribution");
        d = match closest(name, builtins::DISTRIBUTIONS.iter().map(|(n, _)| *n)) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d.help("distributions: normal, laplace, lognormal, uniform, flat, categorical, bernoulli"),
        };
        self.report(d);
        None
    }

    /// `param a: [] = 100`: a fixed start value, which must lie where the prior has mass.
    pub fn param_init(&mut self, e: &'p Expr, prior: Option<Prior>, scope: &mut Scope) -> Option<Option<f64>> {
        let s = self.static_value(e, scope, "a parameter's initial value")?;
        let Some(x) = s.as_f64() else {
            return Some(None);
        };
        if !x.is_finite() {
            self.report(
                Diagnostic::error("E0507", "the initial value is not finite").label(e.span, format!("this is {x}")),
            );
            return None;
        }
        let outside = match prior {
            Some(Prior::LogNormal { .. }) if x <= 0.0 => {
                Some("a lognormal prior has mass on positive values only".to_string())
            }
            Some(Prior::Uniform { low, high }) if x < low || x > high => {
                Some(format!("the uniform prior has mass on [{low}, {high}] only"))
            }
            _ => None,
        };
        if let Some(why) = outside {
            self.report(
                Diagnostic::error("E0507", format!("initial value {x} is impossible under the prior"))
                    .label(e.span, "outside the prior's support")
                    .note(why),
            );
            return None;
        }
        Some(Some(x))
    }

    /// `update adam(lr = 1e-3)` or `update newton`.
    pub fn update_rule(&mut self, e: &'p Expr, scope: &mut Scope) -> Option<UpdateRule> {
        let (name, name_span, args): (&str, Span, &'p [ast::Arg]) = match &e.kind {
            ExprKind::Path(p) if p.len() == 1 => (&p[0].name, p[0].span, &[]),
            ExprKind::Call { callee, args } => match &callee.kind {
                ExprKind::Path(p) if p.len() == 1 => (&p[0].name, p[0].span, args),
                _ => return self.bad_rule(callee.span),
            },
            ExprKind::Error => return None,
            _ => return self.bad_rule(e.span),
        };
        let Some((_, hypers)) = UPDATE_RULES.iter().find(|(n, _)| *n == name) else {
            let mut d = Diagnostic::error("E0504", format!("unknown update rule `{name}`"))
                .label(name_span, "not an update rule");
            d = match closest(name, UPDATE_RULES.iter().map(|(n, _)| *n)) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help("update rules: sgd, adam, egd, newton, bayes"),
            };
            self.report(d);
            return None;
        };
        let kind = match name {
            "sgd" => UpdateKind::Sgd,
            "adam" => UpdateKind::Adam,
            "egd" => UpdateKind::Egd,
            "newton" => UpdateKind::Newton,
            _ => UpdateKind::Bayes,
        };
        let names: Vec<&str> = hypers.iter().map(|(n, _)| *n).collect();
        let bound = self.bind_args(&format!("`{name}`"), e.span, &names, 0, args)?;
        let mut hyper = Vec::new();
        for ((h, default), arg) in hypers.iter().zip(bound) {
            let Some(arg) = arg else {
                hyper.push((*h, *default));
                continue;
            };
            let s = self.static_value(arg, scope, &format!("`{h}`"))?;
            let Some(x) = s.as_f64() else {
                hyper.push((*h, *default));
                continue;
            };
            let (ok, range) = match *h {
                "lr" | "eps" | "trust" => (x > 0.0, "a positive number"),
                "momentum" | "beta1" | "beta2" => ((0.0..1.0).contains(&x), "in [0, 1)"),
                "damping" => (x >= 0.0, "zero or more"),
                "clip" => (x == 0.0 || x == 1.0, "`true` or `false`"),
                _ => ((0.0..=1.0).contains(&x), "in [0, 1]"),
            };
            if !ok || !x.is_finite() {
                self.report(
                    Diagnostic::error("E0504", format!("`{h}` of `{name}` must be {range}"))
                        .label(arg.span, format!("this is {x}")),
                );
                return None;
            }
            hyper.push((*h, x));
        }
        Some(UpdateRule { kind, hyper })
    }

    fn bad_rule<T>(&mut self, span: Span) -> Option<T> {
        self.report(
            Diagnostic::error("E0504", "expected an update rule")
                .label(span, "not an update rule")
                .help("for example `update adam(lr = 1e-3)` or `update newton`"),
        );
        None
    }

    pub fn train_block(&mut self, span: Span, settings: &'p [Setting], scope: &mut Scope) {
        if let Some(prev) = self.b.train_span {
            self.report(
                Diagnostic::error("E0202", "a model has one `train` block")
                    .label(span, "second `train` block")
                    .secondary(prev, "first one here")
                    .help("merge the settings into one block"),
            );
            return;
        }
        self.b.train_span = Some(span);
        let mut seen: Vec<(&str, Span)> = Vec::new();
        for s in settings {
            let key = s.key.name.as_str();
            if let Some((_, prev)) = seen.iter().find(|(k, _)| *k == key) {
                let prev = *prev;
                self.report(
                    Diagnostic::error("E0202", format!("`{key}` is set twice"))
                        .label(s.key.span, "set again here")
                        .secondary(prev, "first set here"),
                );
                continue;
            }
            seen.push((key, s.key.span));
            match key {
                "optimizer" => self.b.train.optimizer = self.update_rule(&s.value, scope),
                "epochs" | "batch" | "seed" => {
                    let Some(n) = self.static_int(&s.value, scope, &format!("`{key}`")) else {
                        continue;
                    };
                    let min = if key == "seed" { 0 } else { 1 };
                    if n < min {
                        self.report(
                            Diagnostic::error("E0406", format!("`{key}` must be at least {min}"))
                                .label(s.value.span, format!("this is {n}")),
                        );
                        continue;
                    }
                    let slot = match key {
                        "epochs" => &mut self.b.train.epochs,
                        "batch" => &mut self.b.train.batch,
                        _ => &mut self.b.train.seed,
                    };
                    *slot = Some(n as u64);
                }
                "valid" => {
                    let Some(x) = self.static_value(&s.value, scope, "`valid`").and_then(Static::as_f64) else {
                        continue;
                    };
                    if !(0.0..1.0).contains(&x) {
                        self.report(
                            Diagnostic::error("E0406", "`valid` is the held-out fraction, in [0, 1)")
                                .label(s.value.span, format!("this is {}", super::signature::num(x)))
                                .help(if (1.0..100.0).contains(&x) {
                                    format!(
                                        "for {}% of the data, write `valid = {}`",
                                        super::signature::num(x),
                                        super::signature::num(x / 100.0)
                                    )
                                } else {
                                    "for a fifth of the data, write `valid = 0.2`".to_string()
                                }),
                        );
                        continue;
                    }
                    self.b.train.valid = Some(x);
                }
                _ => {
                    let mut d = Diagnostic::error("E0509", format!("unknown training setting `{key}`"))
                        .label(s.key.span, "not a setting");
                    d = match closest(key, TRAIN_SETTINGS.iter().copied()) {
                        Some(c) => d.help(format!("did you mean `{c}`?")),
                        None => d.help(format!("settings: {}", TRAIN_SETTINGS.join(", "))),
                    };
                    if key == "lr" {
                        d = d.help("the learning rate belongs to the optimizer: `optimizer = adam(lr = 1e-3)`");
                    }
                    self.report(d);
                }
            }
        }
    }

    /// `target ~ dist`: a likelihood on data, or a prior on a hidden value.
    pub fn tilde(&mut self, target: &'p ast::Ident, dist: &'p Expr, scope: &mut Scope) {
        let Some(binding) = scope.vars.get(&target.name).cloned() else {
            let candidates: Vec<&str> = scope.vars.keys().map(String::as_str).collect();
            let mut d =
                Diagnostic::error("E0204", format!("unknown name `{}`", target.name)).label(target.span, "not defined");
            if let Some(s) = closest(&target.name, candidates) {
                d = d.help(format!("a name with a similar spelling exists: `{s}`"));
            }
            self.report(d);
            return;
        };
        self.index_ref(target.span, super::index::Target::Def(binding.span));
        let node = match binding.value {
            Value::Tensor(n) => n,
            Value::Poison => return,
            _ => {
                self.report(
                    Diagnostic::error("E0405", format!("`{}` is {}, not a tensor", target.name, binding.kind.noun()))
                        .label(target.span, "only data and values have distributions")
                        .help(if binding.kind == BindKind::Instance {
                            "apply the instance first, `let h = layer(x)`, then state the distribution of `h`"
                        } else {
                            "state distributions of data or of values the model computes"
                        }),
                );
                return;
            }
        };
        match binding.kind {
            BindKind::Data => self.observation(target, node, dist, scope),
            BindKind::Let | BindKind::Input => {
                let Some(prior) = self.prior(dist, scope, DistUse::ActivationPrior) else {
                    return;
                };
                if self.require_float(node, target.span).is_none() {
                    return;
                }
                let name = format!("{}{}", scope.prefix, target.name);
                self.b.activation_priors.push(ActivationPrior { name, node, prior, span: target.span.to(dist.span) });
            }
            BindKind::Param => {
                self.report(
                    Diagnostic::error(
                        "E0505",
                        format!("the prior of parameter `{}` belongs in its declaration", target.name),
                    )
                    .label(target.span, "a parameter")
                    .secondary(binding.span, "declared here")
                    .help(format!(
                        "write `param {} : … ~ {}`",
                        target.name,
                        self.prog.sources.text(dist.span)
                    )),
                );
            }
            BindKind::Static | BindKind::Instance => unreachable!("not tensors"),
        }
    }

    fn observation(&mut self, target: &'p ast::Ident, node: NodeId, dist: &'p Expr, scope: &mut Scope) {
        let Op::Data(data) = self.b.nodes[node.0 as usize].op else {
            return;
        };
        if let Some(prev) = self.b.observed.get(&data) {
            let prev = *prev;
            self.report(
                Diagnostic::error("E0506", format!("`{}` is observed twice", target.name))
                    .label(target.span, "second likelihood")
                    .secondary(prev, "first likelihood")
                    .help("each datum has one likelihood; combine the models into one distribution"),
            );
            return;
        }
        let Some((name, name_span, args)) = self.dist_call(dist) else {
            return;
        };
        let Some(arg_names) = builtins::distribution(name) else {
            self.unknown_distribution::<()>(name, name_span);
            return;
        };
        if !matches!(name, "normal" | "laplace" | "categorical" | "bernoulli") {
            self.report(
                Diagnostic::error("E0503", format!("`{name}` cannot be the likelihood of data"))
                    .label(name_span, "not a likelihood")
                    .help("likelihoods: normal, laplace (real data), categorical, bernoulli (labels)"),
            );
            return;
        }
        let Some(bound) = self.bind_args(&format!("`{name}`"), dist.span, arg_names, arg_names.len(), args) else {
            return;
        };
        let target_ty = self.ty(node).clone();
        let Some(first) = bound[0] else { return };
        let Some(v) = self.eval(first, scope) else {
            return;
        };
        let Some(pred) = self.as_tensor(v, first.span) else {
            return;
        };
        if self.require_float(pred, first.span).is_none() {
            return;
        }
        let pred_ty = self.ty(pred).clone();
        let likelihood = match name {
            "normal" | "laplace" => {
                if target_ty.elem == Elem::Int {
                    let shown = self.show(&target_ty);
                    self.report(
                        Diagnostic::error("E0402", format!("`{name}` needs real-valued data, `{}` is {shown}", target.name))
                            .label(target.span, "integer labels")
                            .help("for class labels use `categorical(logits = …)`; for numbers declare the data without `int`"),
                    );
                    return;
                }
                if !self.same_shape(&pred_ty, &target_ty, first.span, target, "the mean") {
                    return;
                }
                let Some(scale_expr) = bound[1] else { return };
                let Some(scale) = self.scale(scale_expr, &target_ty, target, name, scope) else {
                    return;
                };
                if name == "normal" {
                    Likelihood::Normal { mean: pred, sigma: scale }
                } else {
                    Likelihood::Laplace { mean: pred, b: scale }
                }
            }
            "categorical" => {
                if target_ty.elem != Elem::Int {
                    let shown = self.show(&target_ty);
                    self.report(
                        Diagnostic::error(
                            "E0402",
                            format!("`categorical` needs integer class labels, `{}` is {shown}", target.name),
                        )
                        .label(target.span, "real-valued data")
                        .help(format!("declare the labels as `int[…]`: `data {}: int[N]`", target.name)),
                    );
                    return;
                }
                let mut want = target_ty.dims.clone();
                want.push(*pred_ty.dims.last().unwrap_or(&super::types::Dim::Any));
                if pred_ty.rank() != target_ty.rank() + 1 || !super::elaborate::types_agree(&Ty::float(want), &pred_ty)
                {
                    let (p, t) = (self.show(&pred_ty), self.show(&target_ty));
                    self.report(
                        Diagnostic::error("E0308", format!("logits {p} do not fit labels {t}"))
                            .label(first.span, format!("this has shape {p}"))
                            .secondary(target.span, format!("this has shape {t}"))
                            .help(
                                "logits have the labels' shape plus one axis of class scores, e.g. [N, 10] for int[N]",
                            ),
                    );
                    return;
                }
                Likelihood::Categorical { logits: pred }
            }
            _ => {
                if !self.same_shape(&pred_ty, &Ty::float(target_ty.dims.clone()), first.span, target, "the logits") {
                    return;
                }
                Likelihood::Bernoulli { logits: pred }
            }
        };
        self.b.observed.insert(data, target.span);
        self.b.observations.push(Observation { data, likelihood, span: target.span.to(dist.span) });
    }

    /// A prediction fits data when it broadcasts to exactly the data's shape (a scalar mean fits
    /// everything; a `[N, 1]` mean does not fit `[N]`, where numpy would silently make `[N, N]`).
    fn same_shape(&mut self, got: &Ty, want: &Ty, span: Span, target: &ast::Ident, what: &str) -> bool {
        let fits = broadcast(&got.dims, &want.dims).is_ok_and(|d| {
            d.len() == want.rank() && super::elaborate::types_agree(&Ty::float(d), &Ty::float(want.dims.clone()))
        });
        if fits {
            return true;
        }
        let (g, w) = (self.show(got), self.show(want));
        let mut d = Diagnostic::error("E0308", format!("{what} has shape {g} but `{}` has shape {w}", target.name))
            .label(span, format!("this has shape {g}"))
            .secondary(target.span, format!("this has shape {w}"));
        if got.rank() == want.rank() + 1 && got.dims.last() == Some(&super::types::Dim::Known(1)) {
            d = d.help("drop the last axis: `prediction[:, 0]`");
        } else {
            d = d.note("a likelihood compares each datum with its own prediction, so the shapes must be equal");
        }
        self.report(d);
        false
    }

    /// The scale of a normal or laplace likelihood: a positive number, or a tensor (learned).
    fn scale(
        &mut self,
        e: &'p Expr,
        target_ty: &Ty,
        target: &ast::Ident,
        dist: &str,
        scope: &mut Scope,
    ) -> Option<Scale> {
        match self.eval(e, scope)? {
            Value::Static(s) => {
                let Some(x) = s.as_f64() else {
                    return Some(Scale::Const(1.0));
                };
                if x <= 0.0 || !x.is_finite() {
                    self.report(
                        Diagnostic::error("E0501", format!("the scale of `{dist}` must be positive"))
                            .label(e.span, format!("this is {x}")),
                    );
                    return None;
                }
                Some(Scale::Const(x))
            }
            v => {
                let n = self.as_tensor(v, e.span)?;
                self.require_float(n, e.span)?;
                let t = self.ty(n).clone();
                let fits = broadcast(&t.dims, &target_ty.dims).is_ok_and(|d| {
                    d.len() == target_ty.rank()
                        && super::elaborate::types_agree(&Ty::float(d), &Ty::float(target_ty.dims.clone()))
                });
                if !fits {
                    let (a, b) = (self.show(&t), self.show(target_ty));
                    self.report(
                        Diagnostic::error(
                            "E0308",
                            format!("the scale has shape {a}, which does not broadcast to `{}`'s {b}", target.name),
                        )
                        .label(e.span, format!("this has shape {a}"))
                        .secondary(target.span, format!("this has shape {b}")),
                    );
                    return None;
                }
                Some(Scale::Node(n))
            }
        }
    }
}

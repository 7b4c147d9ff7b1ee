//! Lowering a checked model to the graph IR. Composite operations become primitives (softmax is
//! `exp(x − logsumexp(x))`, shrink is `relu(x − θ) − relu(−x − θ)`), and every prior, activation
//! prior and likelihood becomes a loss term: its full negative log density, summed over elements
//! (normalising constants included, so the loss is the negative log joint density of the model).
//! The total loss is one scalar node, `outputs[0]`.

use super::graph::{
    DataInfo, Graph, Init, Likelihood as GLikelihood, Node, NodeId, Output, ParamInfo, Scale as GScale, Term,
};
use super::op::{BinaryOp, Op, ReduceOp, UnaryOp};
use crate::check::checked::{self as ck, CheckedModel, Likelihood, Prior, Scale};
use crate::check::signature;
use crate::check::types::{broadcast, Dim, Elem};
use crate::ir::Origin;
use crate::source::Span;

const HALF_LOG_2PI: f64 = 0.918_938_533_204_672_8;

/// Builds the graph of a checked model; `seed` fixes the parameters' initial draws.
pub fn lower(model: &CheckedModel, seed: u64) -> Graph {
    lower_with(model, seed, false)
}

/// [`lower`] for training on mini-batches: the terms that sum over examples (likelihoods and
/// activation priors) are multiplied by an extra scalar input `batch_scale` (N / batch size), so
/// the loss of a batch estimates the loss of all the data and the priors keep their weight; their
/// unscaled sum is the output `nll`.
pub fn lower_with(model: &CheckedModel, seed: u64, batch_scale: bool) -> Graph {
    lower_inner(model, seed, batch_scale, &[], false)
}

/// The parameters' priors alone: the loss is the sum of their terms, the only output; no data,
/// no likelihood. What each process of a data-parallel training adds once to the likelihood's
/// gradient summed over processes (`train::step::build_split`).
pub fn lower_priors(model: &CheckedModel, seed: u64) -> Graph {
    lower_inner(model, seed, false, &[], true)
}

/// The output name of the `let` value `name` in a graph of [`lower_values`].
pub fn value_output(name: &str) -> String {
    format!("value.{name}")
}

/// [`lower`], with the given `let` values of the model (see `CheckedModel::values`) as extra
/// outputs named by [`value_output`], after the predictions: what `circ run --values` writes.
pub fn lower_values(model: &CheckedModel, seed: u64, values: &[&ck::NamedValue]) -> Graph {
    lower_inner(model, seed, false, values, false)
}

fn lower_inner(
    model: &CheckedModel,
    seed: u64,
    batch_scale: bool,
    values: &[&ck::NamedValue],
    priors_only: bool,
) -> Graph {
    let mut g = Graph::default();
    g.syms = model.syms.clone();
    g.seed = seed;
    let mut l = Lowerer { g, map: Vec::new(), via: None };
    for d in &model.data {
        l.g.data.push(DataInfo {
            name: d.name.clone(),
            elem: d.ty.elem,
            shape: d.ty.dims.clone(),
            source: d.source.clone(),
        });
    }
    for p in &model.params {
        let shape =
            p.ty.dims
                .iter()
                .map(|d| match d {
                    Dim::Known(n) => *n,
                    _ => unreachable!("the checker gives every parameter a known shape"),
                })
                .collect();
        let init = match (p.init, p.draw, p.prior) {
            (Some(v), _, _) => Init::Fixed(v),
            (None, Some(d), _) => Init::Draw(d),
            (None, None, Prior::Flat) => Init::Fixed(0.0),
            (None, None, prior) => Init::Draw(prior),
        };
        l.g.params.push(ParamInfo { name: p.name.clone(), shape, prior: p.prior, init, update: p.update.clone() });
    }
    for n in &model.nodes {
        let id = l.node(model, n);
        l.map.push(id);
    }
    // Likelihoods and the loss's sums are the model's own.
    l.via = None;
    // Terms that sum over examples, and those of the parameters' priors.
    let mut terms = Vec::new();
    let mut prior_terms = Vec::new();
    let mut outputs = Vec::new();
    for o in &model.observations {
        let name = &model.data[o.data].name;
        let y = l.map[model.data_node(o.data).0 as usize];
        let (term, outs) = l.likelihood(y, &o.likelihood, o.span, name);
        terms.push(term);
        let scale = |suffix: &str, s: &Scale| match s {
            Scale::Const(c) => GScale::Const(*c),
            Scale::Node(_) => GScale::Output(format!("{name}.{suffix}")),
        };
        let (dist, prediction) = match &o.likelihood {
            Likelihood::Normal { sigma, .. } => (GLikelihood::Normal { scale: scale("sigma", sigma) }, "mean"),
            Likelihood::Laplace { b, .. } => (GLikelihood::Laplace { scale: scale("b", b) }, "mean"),
            Likelihood::Categorical { .. } => (GLikelihood::Categorical, "logits"),
            Likelihood::Bernoulli { .. } => (GLikelihood::Bernoulli, "logits"),
        };
        l.g.terms.push(Term::Likelihood { data: o.data, dist, prediction: format!("{name}.{prediction}") });
        outputs.extend(outs);
    }
    for (i, p) in model.params.iter().enumerate() {
        if p.prior == Prior::Flat {
            continue;
        }
        let w = l.map[model.param_node(i).0 as usize];
        let label = format!("prior {} ~ {}", p.name, signature::prior(&p.prior));
        // A prior declared in a circuit: its term comes through the application, as the
        // parameter did.
        l.via = l.g.node(w).span.and_then(|o| o.via);
        if let Some(t) = l.prior_term(w, &p.prior, p.span, &label) {
            prior_terms.push(t);
        }
        l.g.terms.push(Term::ParamPrior { param: i, prior: p.prior });
    }
    for a in &model.activation_priors {
        let h = l.map[a.node.0 as usize];
        let label = format!("prior {} ~ {}", a.name, signature::prior(&a.prior));
        l.via = l.g.node(h).span.and_then(|o| o.via);
        if let Some(t) = l.prior_term(h, &a.prior, a.span, &label) {
            terms.push(t);
        }
        // The value is an output so the term can name it; the same name twice (a circuit applied
        // twice) gets a `#k` suffix.
        let mut name = format!("prior.{}", a.name);
        let taken = |n: &str| outputs.iter().any(|o: &Output| o.name == n);
        if taken(&name) {
            let k = (2..).find(|k| !taken(&format!("{name}#{k}"))).unwrap_or(2);
            name = format!("{name}#{k}");
        }
        outputs.push(Output { name: name.clone(), node: h });
        l.g.terms.push(Term::ActivationPrior { value: name, prior: a.prior });
    }
    l.via = None;
    if priors_only {
        outputs.clear();
        l.g.terms.retain(|t| matches!(t, Term::ParamPrior { .. }));
    }
    let loss = if priors_only {
        l.sum_terms(&prior_terms, model.span)
    } else if batch_scale {
        let nll = l.sum_terms(&terms, model.span);
        let index = l.g.inputs.len();
        l.g.inputs.push(super::graph::InputInfo { name: "batch_scale".into(), shape: vec![] });
        let s = l.add(Op::Input(index), &[], Elem::Float, vec![], model.span);
        let scaled = l.binary(BinaryOp::Mul, nll, s, model.span);
        let mut all = vec![scaled];
        all.extend(prior_terms);
        outputs.insert(0, Output { name: "nll".into(), node: nll });
        l.sum_terms(&all, model.span)
    } else {
        terms.extend(prior_terms);
        l.sum_terms(&terms, model.span)
    };
    // A loss of one term is that term's node: keep the term's label for `circ eval`.
    l.g.loss_term = l.g.node(loss).label.clone().filter(|t| t.starts_with("likelihood ") || t.starts_with("prior "));
    l.g.node_mut(loss).label = Some("loss".into());
    l.g.outputs.push(Output { name: "loss".into(), node: loss });
    l.g.outputs.extend(outputs);
    for v in values {
        let node = l.map[v.node.0 as usize];
        l.g.outputs.push(Output { name: value_output(&v.name), node });
    }
    // Values the model computes but nothing uses (an unused `let`, unobserved data) go.
    crate::passes::dce::run(&mut l.g);
    if priors_only {
        // Nothing reads the data any more (the priors read parameters only).
        l.g.data.clear();
    }
    l.g
}

struct Lowerer {
    g: Graph,
    /// Checked node index → graph node.
    map: Vec<NodeId>,
    /// The circuit application the checked node being lowered was inlined from: every graph node
    /// it becomes carries it.
    via: Option<Span>,
}

impl Lowerer {
    fn add(&mut self, op: Op, operands: &[NodeId], elem: Elem, shape: Vec<Dim>, span: Span) -> NodeId {
        self.g.add(Node { op, elem, shape, span: Some(Origin { span, via: self.via }), label: None }, operands)
    }

    fn shape(&self, id: NodeId) -> Vec<Dim> {
        self.g.node(id).shape.clone()
    }

    /// The sum of scalar terms, 0 for none.
    fn sum_terms(&mut self, terms: &[NodeId], span: Span) -> NodeId {
        match terms.split_first() {
            None => self.constant(0.0, span),
            Some((first, rest)) => {
                let mut acc = *first;
                for t in rest {
                    acc = self.binary(BinaryOp::Add, acc, *t, span);
                }
                acc
            }
        }
    }

    fn constant(&mut self, c: f64, span: Span) -> NodeId {
        self.add(Op::Const(c), &[], Elem::Float, vec![], span)
    }

    fn unary(&mut self, f: UnaryOp, x: NodeId, span: Span) -> NodeId {
        let s = self.shape(x);
        self.add(Op::Unary(f), &[x], Elem::Float, s, span)
    }

    fn binary(&mut self, f: BinaryOp, x: NodeId, y: NodeId, span: Span) -> NodeId {
        // The checker has verified that these shapes broadcast.
        let s = broadcast(&self.g.node(x).shape, &self.g.node(y).shape).unwrap_or_default();
        self.add(Op::Binary(f), &[x, y], Elem::Float, s, span)
    }

    fn sum_all(&mut self, x: NodeId, span: Span) -> NodeId {
        let axes = (0..self.g.node(x).shape.len()).collect();
        self.add(Op::Reduce { f: ReduceOp::Sum, axes, keepdims: false }, &[x], Elem::Float, vec![], span)
    }

    fn node(&mut self, model: &CheckedModel, n: &ck::Node) -> NodeId {
        let ins: Vec<NodeId> = n.inputs.iter().map(|i| self.map[i.0 as usize]).collect();
        let (elem, shape, span) = (n.ty.elem, n.ty.dims.clone(), n.span);
        self.via = n.via;
        let op = match &n.op {
            ck::Op::Data(i) => {
                let id = self.add(Op::Data(*i), &[], elem, shape, span);
                self.g.node_mut(id).label = Some(model.data[*i].name.clone());
                return id;
            }
            ck::Op::Param(i) => {
                let id = self.add(Op::Param(*i), &[], elem, shape, span);
                self.g.node_mut(id).label = Some(model.params[*i].name.clone());
                return id;
            }
            ck::Op::Const(c) => Op::Const(*c),
            ck::Op::Unary(f) => Op::Unary(match f {
                ck::UnaryFn::Neg => UnaryOp::Neg,
                ck::UnaryFn::Exp => UnaryOp::Exp,
                ck::UnaryFn::Log => UnaryOp::Log,
                ck::UnaryFn::Relu => UnaryOp::Relu,
                ck::UnaryFn::Sigmoid => UnaryOp::Sigmoid,
                ck::UnaryFn::Tanh => UnaryOp::Tanh,
                ck::UnaryFn::Softplus => UnaryOp::Softplus,
                ck::UnaryFn::Sqrt => UnaryOp::Sqrt,
                ck::UnaryFn::Abs => UnaryOp::Abs,
            }),
            ck::Op::Binary(f) => Op::Binary(match f {
                ck::BinaryFn::Add => BinaryOp::Add,
                ck::BinaryFn::Sub => BinaryOp::Sub,
                ck::BinaryFn::Mul => BinaryOp::Mul,
                ck::BinaryFn::Div => BinaryOp::Div,
                ck::BinaryFn::Pow => BinaryOp::Pow,
            }),
            ck::Op::MatMul => Op::MatMul,
            ck::Op::Reduce { f, axes, keepdims } => {
                let mut axes = axes.clone();
                axes.sort_unstable();
                let f = match f {
                    ck::ReduceFn::Sum => ReduceOp::Sum,
                    ck::ReduceFn::Mean => ReduceOp::Mean,
                    ck::ReduceFn::Max => ReduceOp::Max,
                };
                Op::Reduce { f, axes, keepdims: *keepdims }
            }
            ck::Op::Softmax { axis } => {
                let x = ins[0];
                let mut kept = shape.clone();
                kept[*axis] = Dim::Known(1);
                let lse = self.add(Op::LogSumExp { axis: *axis, keepdims: true }, &[x], elem, kept, span);
                let d = self.binary(BinaryOp::Sub, x, lse, span);
                return self.unary(UnaryOp::Exp, d, span);
            }
            ck::Op::LogSumExp { axis, keepdims } => Op::LogSumExp { axis: *axis, keepdims: *keepdims },
            ck::Op::Reshape => Op::Reshape,
            ck::Op::Transpose { perm } => Op::Transpose { perm: perm.clone() },
            ck::Op::Concat { axis } => Op::Concat { axis: *axis },
            ck::Op::Index { items } => Op::Slice { items: items.clone() },
            ck::Op::KMax { k } => Op::KMax { k: *k },
            ck::Op::Shrink => {
                // sign(x)·max(|x| − θ, 0) = relu(x − θ) − relu(−x − θ)
                let (x, t) = (ins[0], ins[1]);
                let a = self.binary(BinaryOp::Sub, x, t, span);
                let pos = self.unary(UnaryOp::Relu, a, span);
                let nx = self.unary(UnaryOp::Neg, x, span);
                let b = self.binary(BinaryOp::Sub, nx, t, span);
                let neg = self.unary(UnaryOp::Relu, b, span);
                return self.binary(BinaryOp::Sub, pos, neg, span);
            }
            ck::Op::OneHot { classes } => Op::OneHot { classes: *classes },
        };
        self.add(op, &ins, elem, shape, span)
    }

    /// Σ of the elementwise negative log density of `prior` at `x`.
    fn prior_term(&mut self, x: NodeId, prior: &Prior, span: Span, label: &str) -> Option<NodeId> {
        let per_element = match *prior {
            Prior::Flat => return None,
            Prior::Normal { mu, sigma } => self.normal_nll(x, mu, Scale::Const(sigma), span),
            Prior::Laplace { mu, b } => self.laplace_nll(x, mu, b, span),
            Prior::LogNormal { mu, sigma } => {
                // log x + ½((log x − μ)/σ)² + log σ + ½ log 2π
                let lx = self.unary(UnaryOp::Log, x, span);
                let n = self.normal_nll(lx, mu, Scale::Const(sigma), span);
                self.binary(BinaryOp::Add, n, lx, span)
            }
            Prior::Uniform { low, high } => {
                // Constant inside the support: log(high − low) per element. With a known element
                // count the whole term is one constant (its gradient is zero either way).
                let shape = self.shape(x);
                let known: Option<u64> =
                    shape.iter().map(|d| if let Dim::Known(n) = d { Some(*n) } else { None }).product();
                if let Some(n) = known {
                    let t = self.constant(n as f64 * (high - low).ln(), span);
                    self.g.node_mut(t).label = Some(label.to_string());
                    return Some(t);
                }
                let zero = self.constant(0.0, span);
                let z = self.binary(BinaryOp::Mul, x, zero, span);
                let c = self.constant((high - low).ln(), span);
                self.binary(BinaryOp::Add, z, c, span)
            }
        };
        let t = self.sum_all(per_element, span);
        self.g.node_mut(t).label = Some(label.to_string());
        Some(t)
    }

    /// ½((x − μ)/σ)² + log σ + ½ log 2π, elementwise.
    fn normal_nll(&mut self, x: NodeId, mu: f64, sigma: Scale, span: Span) -> NodeId {
        let d = self.minus_const(x, mu, span);
        match sigma {
            Scale::Const(s) => {
                let sq = self.unary(UnaryOp::Square, d, span);
                let k = self.constant(0.5 / (s * s), span);
                let q = self.binary(BinaryOp::Mul, sq, k, span);
                let c = self.constant(s.ln() + HALF_LOG_2PI, span);
                self.binary(BinaryOp::Add, q, c, span)
            }
            Scale::Node(_) => unreachable!("node scales are lowered by `scaled_normal_nll`"),
        }
    }

    fn scaled_normal_nll(&mut self, x: NodeId, mean: NodeId, sigma: NodeId, span: Span) -> NodeId {
        let d = self.binary(BinaryOp::Sub, x, mean, span);
        let z = self.binary(BinaryOp::Div, d, sigma, span);
        let sq = self.unary(UnaryOp::Square, z, span);
        let half = self.constant(0.5, span);
        let q = self.binary(BinaryOp::Mul, sq, half, span);
        let ls = self.unary(UnaryOp::Log, sigma, span);
        let a = self.binary(BinaryOp::Add, q, ls, span);
        let c = self.constant(HALF_LOG_2PI, span);
        self.binary(BinaryOp::Add, a, c, span)
    }

    /// |x − μ|/b + log 2b, elementwise.
    fn laplace_nll(&mut self, x: NodeId, mu: f64, b: f64, span: Span) -> NodeId {
        let d = self.minus_const(x, mu, span);
        let a = self.unary(UnaryOp::Abs, d, span);
        let k = self.constant(1.0 / b, span);
        let q = self.binary(BinaryOp::Mul, a, k, span);
        let c = self.constant((2.0 * b).ln(), span);
        self.binary(BinaryOp::Add, q, c, span)
    }

    fn minus_const(&mut self, x: NodeId, mu: f64, span: Span) -> NodeId {
        if mu == 0.0 {
            return x;
        }
        let m = self.constant(mu, span);
        self.binary(BinaryOp::Sub, x, m, span)
    }

    /// The loss term of an observation and the outputs that predict it.
    fn likelihood(&mut self, y: NodeId, lik: &Likelihood, span: Span, name: &str) -> (NodeId, Vec<Output>) {
        let mut outs = Vec::new();
        let per_element = match lik {
            Likelihood::Normal { mean, sigma } | Likelihood::Laplace { mean, b: sigma } => {
                let m = self.map[mean.0 as usize];
                outs.push(Output { name: format!("{name}.mean"), node: m });
                let is_normal = matches!(lik, Likelihood::Normal { .. });
                match sigma {
                    Scale::Const(s) if is_normal => {
                        let d = self.binary(BinaryOp::Sub, y, m, span);
                        self.normal_nll(d, 0.0, Scale::Const(*s), span)
                    }
                    Scale::Const(b) => {
                        let d = self.binary(BinaryOp::Sub, y, m, span);
                        self.laplace_nll(d, 0.0, *b, span)
                    }
                    Scale::Node(s) => {
                        let s = self.map[s.0 as usize];
                        outs.push(Output {
                            name: format!("{name}.{}", if is_normal { "sigma" } else { "b" }),
                            node: s,
                        });
                        if is_normal {
                            self.scaled_normal_nll(y, m, s, span)
                        } else {
                            let d = self.binary(BinaryOp::Sub, y, m, span);
                            let a = self.unary(UnaryOp::Abs, d, span);
                            let q = self.binary(BinaryOp::Div, a, s, span);
                            let two = self.constant(2.0, span);
                            let tb = self.binary(BinaryOp::Mul, s, two, span);
                            let lb = self.unary(UnaryOp::Log, tb, span);
                            self.binary(BinaryOp::Add, q, lb, span)
                        }
                    }
                }
            }
            Likelihood::Categorical { logits } => {
                // logsumexp(l) − Σ_k onehot(y)_k · l_k
                let lg = self.map[logits.0 as usize];
                outs.push(Output { name: format!("{name}.logits"), node: lg });
                let shape = self.shape(lg);
                let last = shape.len() - 1;
                let classes = if let Dim::Known(k) = shape[last] { k } else { 0 };
                let lse = self.add(
                    Op::LogSumExp { axis: last, keepdims: false },
                    &[lg],
                    Elem::Float,
                    shape[..last].to_vec(),
                    span,
                );
                let oh = self.add(Op::OneHot { classes }, &[y], Elem::Float, shape.clone(), span);
                let picked = self.binary(BinaryOp::Mul, oh, lg, span);
                let sel = self.add(
                    Op::Reduce { f: ReduceOp::Sum, axes: vec![last], keepdims: false },
                    &[picked],
                    Elem::Float,
                    shape[..last].to_vec(),
                    span,
                );
                self.binary(BinaryOp::Sub, lse, sel, span)
            }
            Likelihood::Bernoulli { logits } => {
                // softplus(l) − y·l
                let lg = self.map[logits.0 as usize];
                outs.push(Output { name: format!("{name}.logits"), node: lg });
                let yf = if self.g.node(y).elem == Elem::Int {
                    let s = self.shape(y);
                    self.add(Op::Cast, &[y], Elem::Float, s, span)
                } else {
                    y
                };
                let sp = self.unary(UnaryOp::Softplus, lg, span);
                let yl = self.binary(BinaryOp::Mul, yf, lg, span);
                self.binary(BinaryOp::Sub, sp, yl, span)
            }
        };
        let t = self.sum_all(per_element, span);
        let dist = match lik {
            Likelihood::Normal { .. } => "normal",
            Likelihood::Laplace { .. } => "laplace",
            Likelihood::Categorical { .. } => "categorical",
            Likelihood::Bernoulli { .. } => "bernoulli",
        };
        self.g.node_mut(t).label = Some(format!("likelihood {name} ~ {dist}"));
        (t, outs)
    }
}

//! The training step as one graph: forward pass, loss with every prior and likelihood term, the
//! gradient and (when a rule needs it) the bprop2 curvature, and every parameter's update. Built
//! once per training run; the loop only feeds batches and state and reads results back.
//!
//! Extra inputs: `batch_scale` (N / batch size), `step` (t ≥ 1) and one per optimizer state
//! tensor; with an EWC anchor (`build_with`), `anchor.center.<param>` and `anchor.precision.<param>`,
//! fixed for the whole run (`StepGraph::fixed`). Outputs: `loss`, `nll`, the predictions,
//! `new.<param>` and `state.<slot>`.

use super::optimizer::{self, StateSlot};
use super::posterior::Anchor;
use crate::autodiff::{self, bprop2::Variant};
use crate::check::checked::{CheckedModel, Prior, UpdateRule};
use crate::ir::graph::{InputInfo, Output, Term};
use crate::ir::op::{BinaryOp, Op, UnaryOp};
use crate::ir::{Graph, NodeId};
use std::collections::HashSet;

pub struct StepGraph {
    pub graph: Graph,
    /// The update rule of each parameter, in parameter order.
    pub rules: Vec<UpdateRule>,
    pub state: Vec<StateSlot>,
    /// Extra inputs fed the same value every step (an EWC anchor's centre and precision): (input
    /// index, value).
    pub fixed: Vec<(usize, Vec<f64>)>,
}

/// Builds the step of `model`: each parameter updates by its own rule, else by `default`.
pub fn build(model: &CheckedModel, seed: u64, default: &UpdateRule) -> StepGraph {
    build_with(model, seed, default, None)
}

/// [`build`], with EWC's penalty ½·λ·Σ P_k (θ_k − θ*_k)² toward `anchor` added to the loss (its
/// gradient by autodiff, its curvature λ·P added to the bprop2 curvature as a prior's would be).
pub fn build_with(model: &CheckedModel, seed: u64, default: &UpdateRule, anchor: Option<&Anchor>) -> StepGraph {
    let mut g = crate::ir::lower::lower_with(model, seed, true);
    crate::passes::optimize(&mut g);
    let rules: Vec<UpdateRule> =
        model.params.iter().map(|p| p.update.clone().unwrap_or_else(|| default.clone())).collect();
    let mut fixed = Vec::new();
    let anchored = anchor.map(|a| add_anchor(&mut g, a, &mut fixed));
    let curvature = rules.iter().any(optimizer::needs_curvature);
    // The forward pass, where a capped second-order step takes its JVP (`optimizer::cap`).
    let forward: HashSet<NodeId> = g.node_ids().into_iter().collect();
    if curvature {
        autodiff::bprop2::add_curvature(&mut g, Variant::GaussNewton);
        if let Some(weights) = &anchored {
            for (i, q) in weights.iter().enumerate() {
                let name = format!("curv.{}", g.params[i].name);
                let Some(k) = g.outputs.iter().position(|o| o.name == name) else { continue };
                let c = g.outputs[k].node;
                g.outputs[k].node = g.binary(BinaryOp::Add, c, *q, None);
            }
        }
    } else {
        autodiff::add_param_gradients(&mut g);
    }
    add_updates(g, rules, &[], &forward, fixed)
}

/// The step cut in two for data-parallel training (`train::distributed`, docs/distributed.md):
/// each process runs `local` on its rows of a batch, the processes sum its gradients and
/// curvatures, and each then runs `apply` on the sums, so the priors count once.
pub struct SplitStep {
    /// The likelihood part: loss `batch_scale · nll` (the terms that sum over examples, no
    /// parameter prior), outputs `loss`, `nll`, the predictions, `grad.<p>` and, where a rule
    /// needs it, `curv.<p>`, for every parameter.
    pub local: Graph,
    /// The parameters' priors with their gradient (and curvature), plus the inputs
    /// `sum.grad.<p>` (and `sum.curv.<p>`), then every update: a step graph without data.
    pub apply: StepGraph,
    /// The input indices in `apply` of each parameter's summed gradient and curvature.
    pub sums: Vec<(usize, Option<usize>)>,
    /// Whether `local` has the `curv.<p>` outputs.
    pub curvature: bool,
}

/// [`build`] cut in two (see [`SplitStep`]): `apply` on the sums of `local` over all rows gives
/// [`build`]'s update, up to the order of additions.
/// Refused for capped second-order steps (`clip = true`, newton's and bayes's default): their
/// factor needs a JVP of every process's predictions, which the sum does not carry yet.
pub fn build_split(model: &CheckedModel, seed: u64, default: &UpdateRule) -> Result<SplitStep, String> {
    let rules: Vec<UpdateRule> =
        model.params.iter().map(|p| p.update.clone().unwrap_or_else(|| default.clone())).collect();
    if let Some(r) = rules.iter().find(|r| optimizer::needs_curvature(r) && r.get("clip").is_none_or(|c| c != 0.0)) {
        return Err(format!(
            "`{}` with `clip = true` (its default) is not supported with several processes yet: \
             give it `clip = false`, or train with one process",
            r.kind.name()
        ));
    }
    let curvature = rules.iter().any(optimizer::needs_curvature);
    let derivatives = |g: &mut Graph| {
        if curvature {
            autodiff::bprop2::add_curvature(g, Variant::GaussNewton);
        } else {
            autodiff::add_param_gradients(g);
        }
    };

    let mut local = crate::ir::lower::lower_with(model, seed, true);
    // The loss without the priors: the scaled likelihood, as `lower_with` forms it.
    let nll = local.output("nll").expect("a training graph has `nll`");
    let s = input_node(&mut local, "batch_scale");
    let span = local.node(local.loss()).span;
    let loss = local.binary(BinaryOp::Mul, nll, s, span);
    local.node_mut(loss).label = Some("loss".into());
    local.outputs[0].node = loss;
    // bprop2 adds each parameter prior's curvature: here none is.
    local.terms.retain(|t| !matches!(t, Term::ParamPrior { .. }));
    for p in &mut local.params {
        p.prior = Prior::Flat;
    }
    crate::passes::dce::run(&mut local);
    crate::passes::optimize(&mut local);
    derivatives(&mut local);
    crate::passes::optimize(&mut local);

    let mut g = crate::ir::lower::lower_priors(model, seed);
    crate::passes::optimize(&mut g);
    derivatives(&mut g);
    let mut sums = Vec::new();
    let mut nodes = Vec::new();
    for i in 0..g.params.len() {
        let (name, shape) = (g.params[i].name.clone(), g.params[i].shape.clone());
        let sum = |g: &mut Graph, what: &str| {
            g.inputs.push(InputInfo { name: format!("sum.{what}.{name}"), shape: shape.clone() });
            let index = g.inputs.len() - 1;
            (index, input_node(g, &format!("sum.{what}.{name}")))
        };
        let (gi, gn) = sum(&mut g, "grad");
        let c = curvature.then(|| sum(&mut g, "curv"));
        sums.push((gi, c.map(|c| c.0)));
        nodes.push((gn, c.map(|c| c.1)));
    }
    let apply = add_updates(g, rules, &nodes, &HashSet::new(), Vec::new());
    Ok(SplitStep { local, apply, sums, curvature })
}

/// Adds every parameter's update to `g`, which has the outputs `grad.<p>` (and `curv.<p>` where
/// a rule needs them); `sums[i]` are input nodes added to parameter `i`'s gradient and
/// curvature first (none: the graph's own are the whole). `forward` is the forward pass, where
/// capped steps take their JVP; `fixed` the inputs fed the same value every step.
fn add_updates(
    mut g: Graph,
    rules: Vec<UpdateRule>,
    sums: &[(NodeId, Option<NodeId>)],
    forward: &HashSet<NodeId>,
    fixed: Vec<(usize, Vec<f64>)>,
) -> StepGraph {
    let scale = input_node(&mut g, "batch_scale");
    let step = input_node(&mut g, "step");
    let mut state = Vec::new();
    let mut new_values: Vec<Option<NodeId>> = vec![None; rules.len()];
    // (parameter, its node, gradient, step) of each capped step, and their smallest `trust`.
    let mut capped: Vec<(usize, NodeId, NodeId, NodeId)> = Vec::new();
    let mut trust = f64::INFINITY;
    for (i, rule) in rules.iter().enumerate() {
        let name = g.params[i].name.clone();
        let w = match autodiff::param_node(&g, i) {
            Some(w) => w,
            None => g.push(Op::Param(i), &[], None, None),
        };
        let mut grad = g.output(&format!("grad.{name}")).expect("every parameter has a gradient output");
        let mut curv = g.output(&format!("curv.{name}"));
        if let Some((sum_grad, sum_curv)) = sums.get(i) {
            grad = g.binary(BinaryOp::Add, grad, *sum_grad, None);
            if let (Some(c), Some(s)) = (curv, sum_curv) {
                curv = Some(g.binary(BinaryOp::Add, c, *s, None));
            }
        }
        let u = optimizer::UpdateInputs { param: i, w, grad, curv, scale, step };
        let before: std::collections::HashSet<NodeId> = g.node_ids().into_iter().collect();
        let new = optimizer::update(&mut g, rule, &u, &mut state);
        match new {
            optimizer::Update::New(n) => new_values[i] = Some(n),
            optimizer::Update::Capped(e) => {
                capped.push((i, w, grad, e));
                trust = trust.min(rule.get("trust").unwrap_or(f64::INFINITY));
            }
        }
        // The update's nodes have no source of their own: they point at the parameter they update.
        let span = g.node(w).span;
        for n in g.node_ids().into_iter().filter(|n| !before.contains(n)) {
            let node = g.node_mut(n);
            node.span = node.span.or(span);
        }
    }
    if !capped.is_empty() {
        let steps: Vec<(NodeId, NodeId, NodeId)> = capped.iter().map(|&(_, w, gr, e)| (w, gr, e)).collect();
        let factor = optimizer::cap(&mut g, forward, &steps, trust);
        for &(i, w, _, e) in &capped {
            let span = g.node(w).span;
            let step = g.binary(BinaryOp::Mul, factor, e, span);
            let new = g.binary(BinaryOp::Sub, w, step, span);
            let shape = g.shape_of(w);
            new_values[i] = Some(g.expand_to(new, shape, span));
        }
    }
    for (i, new) in new_values.into_iter().enumerate() {
        let name = g.params[i].name.clone();
        let node = new.expect("every parameter has an update");
        g.outputs.push(Output { name: format!("new.{name}"), node });
    }
    // The gradient and curvature live on inside the updates; as outputs they are not needed.
    g.outputs.retain(|o| !o.name.starts_with("grad.") && !o.name.starts_with("curv."));
    crate::passes::dce::run(&mut g);
    crate::passes::optimize(&mut g);
    StepGraph { graph: g, rules, state, fixed }
}

/// Adds ½·Σ_k q_k (θ_k − c_k)² to the loss, q = λ·P and c fed as fixed inputs; returns each
/// parameter's q node.
fn add_anchor(g: &mut Graph, a: &Anchor, fixed: &mut Vec<(usize, Vec<f64>)>) -> Vec<NodeId> {
    let mut total = None;
    let mut weights = Vec::new();
    for i in 0..g.params.len() {
        let name = g.params[i].name.clone();
        let shape = g.params[i].shape.clone();
        let w = match autodiff::param_node(g, i) {
            Some(w) => w,
            None => g.push(Op::Param(i), &[], None, None),
        };
        let mut input = |g: &mut Graph, what: &str, values: Vec<f64>| {
            let index = g.inputs.len();
            g.inputs.push(InputInfo { name: format!("anchor.{what}.{name}"), shape: shape.clone() });
            fixed.push((index, values));
            let n = g.push(Op::Input(index), &[], None, None);
            g.node_mut(n).label = Some(format!("anchor.{what}.{name}"));
            n
        };
        let c = input(g, "center", a.center[i].clone());
        let q = input(g, "precision", a.precision[i].iter().map(|p| a.weight * p).collect());
        let d = g.binary(BinaryOp::Sub, w, c, None);
        let d2 = g.unary(UnaryOp::Square, d, None);
        let qd2 = g.binary(BinaryOp::Mul, q, d2, None);
        let s = g.sum_to(qd2, &[], None);
        total = Some(match total {
            Some(t) => g.binary(BinaryOp::Add, t, s, None),
            None => s,
        });
        weights.push(q);
    }
    if let Some(t) = total {
        let half = g.constant(0.5, None);
        let pen = g.binary(BinaryOp::Mul, half, t, None);
        let loss = g.loss();
        let new = g.binary(BinaryOp::Add, loss, pen, None);
        g.outputs[0].node = new;
    }
    weights
}

/// The node reading the extra input `name`, created (with its input) if the graph has none.
fn input_node(g: &mut Graph, name: &str) -> NodeId {
    let index = match g.inputs.iter().position(|i| i.name == name) {
        Some(i) => i,
        None => {
            g.inputs.push(InputInfo { name: name.to_string(), shape: vec![] });
            g.inputs.len() - 1
        }
    };
    let n = match g.node_ids().into_iter().find(|n| g.node(*n).op == Op::Input(index)) {
        Some(n) => n,
        None => g.push(Op::Input(index), &[], None, None),
    };
    // Named for `circ graph` and `circ emit` (lowering may have made the node without a name).
    g.node_mut(n).label = Some(name.to_string());
    n
}

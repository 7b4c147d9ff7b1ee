//! The update rules, written in IR ops so the whole training step is one graph. Each rule reads
//! the parameter, its gradient `g` (and curvature `h` where it needs one) and its state, and
//! yields the new parameter and new state. `s` is the batch scale N/B: `g` and `h` are of the
//! batch loss scaled to the whole data set.
//!
//! - `sgd(lr, momentum)`: m ← μ·m + g; w ← w − lr·m.
//! - `adam(lr, beta1, beta2, eps)`: the usual moments with bias correction at step t.
//! - `egd(lr)`: w ← w·exp(−lr·g) for a parameter whose prior or start is positive; otherwise the
//!   weight is a pair w = w⁺ − w⁻ of positive parts, w⁺ ← w⁺·exp(−lr·g), w⁻ ← w⁻·exp(lr·g)
//!   (EG±), started at w⁺ = max(w, 0) + c, w⁻ = max(−w, 0) + c with c = [`eg_offset`] of the
//!   weight's size: small enough that the added mass 2·c·n stays below 1 however many weights.
//! - `newton(lr, damping, clip)`: e = lr·g / (h + damping·mean(h)), h the Gauss–Newton bprop2
//!   curvature, which already holds the prior's precision (the floor of every precision); the
//!   damping is relative to the tensor's mean curvature, so the rule is scale-invariant.
//! - `bayes(lr, decay, clip)`: a precision P per weight, started at the prior's precision P₀.
//!   Each step adds the new evidence, the batch's own curvature max(h − P₀, 0)/s, and decays
//!   toward the prior: P ← (1 − decay)·P + decay·P₀ + evidence; then e = lr·(g/s)/P. On the full
//!   batch the first step is a Newton step; later steps shrink as evidence accumulates (§2.6).
//!
//! Both then move w ← w − c·e, with c = min(1, α, r) when `clip` is on (the default) and 1 when
//! off: α = gᵀe / eᵀGe is where the loss's Gauss–Newton quadratic model is least along the joint
//! step e of every capped parameter, and r keeps the change of the predictions of the likelihoods
//! not quadratic in them (for a categorical, the KL divergence the step would make from uniform
//! predictions, to second order) at most `trust` per observation ([`cap`]). docs/training.md
//! states the rules in full.

use crate::check::checked::{Prior, UpdateKind, UpdateRule};
use crate::check::types::Dim;
use crate::ir::graph::InputInfo;
use crate::ir::op::{BinaryOp, Op, ReduceOp, UnaryOp};
use crate::ir::{Graph, NodeId};
use std::collections::{HashMap, HashSet};

/// Added to both halves of each of the `n` elements of a signed EG± weight, so neither starts at
/// exactly zero (where a multiplicative update could never move it): min(0.01, 1/(2n)), so the
/// total added mass stays at most 1, as Kivinen and Warmuth's EG± starts at U/(2n).
pub fn eg_offset(n: usize) -> f64 {
    (0.5 / n.max(1) as f64).min(0.01)
}

/// A tensor of optimizer state: fed as an extra input, its new value read from an output.
#[derive(Clone, Debug, PartialEq)]
pub struct StateSlot {
    /// `<rule>.<what>.<param>`, e.g. `adam.m.l1.w`: the name in checkpoints.
    pub name: String,
    /// The parameter it belongs to.
    pub param: usize,
    pub input: usize,
    /// The output holding the value for the next step.
    pub output: String,
    pub init: StateInit,
}

/// How a state tensor starts, given the parameter's initial value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StateInit {
    Zeros,
    Fill(f64),
    /// The positive part of a signed EG± weight: max(w, 0) + c.
    PositivePart,
    /// The negative part: max(−w, 0) + c.
    NegativePart,
}

impl StateInit {
    pub fn values(self, w: &[f64]) -> Vec<f64> {
        match self {
            StateInit::Zeros => vec![0.0; w.len()],
            StateInit::Fill(v) => vec![v; w.len()],
            StateInit::PositivePart => w.iter().map(|x| x.max(0.0) + eg_offset(w.len())).collect(),
            StateInit::NegativePart => w.iter().map(|x| (-x).max(0.0) + eg_offset(w.len())).collect(),
        }
    }
}

/// What an update rule needs and builds for one parameter.
pub struct UpdateInputs {
    pub param: usize,
    pub w: NodeId,
    pub grad: NodeId,
    pub curv: Option<NodeId>,
    /// The batch scale N/B, a scalar node.
    pub scale: NodeId,
    /// The step number t ≥ 1, a scalar node.
    pub step: NodeId,
}

/// Whether a rule reads the bprop2 curvature.
pub fn needs_curvature(rule: &UpdateRule) -> bool {
    matches!(rule.kind, UpdateKind::Newton | UpdateKind::Bayes)
}

/// What [`update`] built for one parameter.
pub enum Update {
    /// The new value.
    New(NodeId),
    /// A second-order step `e` (parameter-shaped) still to be capped: the new value is
    /// `w − min(1, α)·e`, with α from [`cap`] over every capped parameter together.
    Capped(NodeId),
}

/// Builds the update of one parameter and adds its state slots.
pub fn update(g: &mut Graph, rule: &UpdateRule, u: &UpdateInputs, slots: &mut Vec<StateSlot>) -> Update {
    let p = g.params[u.param].clone();
    let shape: Vec<Dim> = p.shape.iter().map(|n| Dim::Known(*n)).collect();
    let hyper = |k: &str| rule.get(k).unwrap_or(0.0);
    let c = |g: &mut Graph, v: f64| g.constant(v, None);
    let mut state = |g: &mut Graph, what: &str, init: StateInit| -> (NodeId, String) {
        let name = format!("{}.{what}.{}", rule.kind.name(), p.name);
        let input = g.inputs.len();
        g.inputs.push(InputInfo { name: name.clone(), shape: p.shape.clone() });
        let node = g.push(Op::Input(input), &[], None, None);
        // Named as the checkpoint stores it, for `circ graph` and `circ emit`.
        g.node_mut(node).label = Some(format!("opt.{name}"));
        let output = format!("state.{name}");
        slots.push(StateSlot { name, param: u.param, input, output: output.clone(), init });
        (node, output)
    };
    let mut outs: Vec<(String, NodeId)> = Vec::new();
    let w = u.w;
    let new_w = match rule.kind {
        UpdateKind::Sgd => {
            let lr = c(g, hyper("lr"));
            let mu = hyper("momentum");
            let dir = if mu == 0.0 {
                u.grad
            } else {
                let (m, out) = state(g, "m", StateInit::Zeros);
                let k = c(g, mu);
                let km = g.binary(BinaryOp::Mul, k, m, None);
                let m_new = g.binary(BinaryOp::Add, km, u.grad, None);
                outs.push((out, m_new));
                m_new
            };
            let step = g.binary(BinaryOp::Mul, lr, dir, None);
            g.binary(BinaryOp::Sub, w, step, None)
        }
        UpdateKind::Adam => {
            let (b1, b2) = (hyper("beta1"), hyper("beta2"));
            let (m, mo) = state(g, "m", StateInit::Zeros);
            let (v, vo) = state(g, "v", StateInit::Zeros);
            let m_new = ema(g, m, u.grad, b1);
            let g2 = g.unary(UnaryOp::Square, u.grad, None);
            let v_new = ema(g, v, g2, b2);
            outs.push((mo, m_new));
            outs.push((vo, v_new));
            // Bias corrections 1 − βᵗ.
            let c1 = bias_correction(g, b1, u.step);
            let c2 = bias_correction(g, b2, u.step);
            let mhat = g.binary(BinaryOp::Div, m_new, c1, None);
            let vhat = g.binary(BinaryOp::Div, v_new, c2, None);
            let root = g.unary(UnaryOp::Sqrt, vhat, None);
            let eps = c(g, hyper("eps"));
            let den = g.binary(BinaryOp::Add, root, eps, None);
            let q = g.binary(BinaryOp::Div, mhat, den, None);
            let lr = c(g, hyper("lr"));
            let step = g.binary(BinaryOp::Mul, lr, q, None);
            g.binary(BinaryOp::Sub, w, step, None)
        }
        UpdateKind::Egd => {
            let lr = c(g, hyper("lr"));
            let lg = g.binary(BinaryOp::Mul, lr, u.grad, None);
            let nlg = g.unary(UnaryOp::Neg, lg, None);
            let shrink = g.unary(UnaryOp::Exp, nlg, None);
            if starts_positive(&p) {
                g.binary(BinaryOp::Mul, w, shrink, None)
            } else {
                let (pos, po) = state(g, "pos", StateInit::PositivePart);
                let (neg, no) = state(g, "neg", StateInit::NegativePart);
                let grow = g.unary(UnaryOp::Exp, lg, None);
                let pos_new = g.binary(BinaryOp::Mul, pos, shrink, None);
                let neg_new = g.binary(BinaryOp::Mul, neg, grow, None);
                outs.push((po, pos_new));
                outs.push((no, neg_new));
                g.binary(BinaryOp::Sub, pos_new, neg_new, None)
            }
        }
        UpdateKind::Newton => {
            let h = u.curv.expect("newton reads the curvature");
            // Damping relative to the tensor's own curvature scale (its mean), so rescaling a
            // parameter rescales its damping with it; TINY keeps a tensor without any
            // curvature (an unused parameter with a flat prior) from dividing 0 by 0.
            let mean = mean_of(g, h);
            let tiny = c(g, TINY);
            let m = g.binary(BinaryOp::Add, mean, tiny, None);
            let damping = c(g, hyper("damping"));
            let damp = g.binary(BinaryOp::Mul, damping, m, None);
            let den = g.binary(BinaryOp::Add, h, damp, None);
            let q = g.binary(BinaryOp::Div, u.grad, den, None);
            let lr = c(g, hyper("lr"));
            let step = g.binary(BinaryOp::Mul, lr, q, None);
            if hyper("clip") != 0.0 {
                return finish(g, Update::Capped(step), outs, shape);
            }
            g.binary(BinaryOp::Sub, w, step, None)
        }
        UpdateKind::Bayes => {
            let h = u.curv.expect("bayes reads the curvature");
            let p0 = p.prior.precision();
            let (prec, po) = state(g, "precision", StateInit::Fill(p0));
            let p0n = c(g, p0);
            let lik = g.binary(BinaryOp::Sub, h, p0n, None);
            let lik = g.unary(UnaryOp::Relu, lik, None);
            let evidence = g.binary(BinaryOp::Div, lik, u.scale, None);
            let d = hyper("decay");
            let keep = c(g, 1.0 - d);
            let kept = g.binary(BinaryOp::Mul, keep, prec, None);
            let toward = c(g, d * p0);
            let base = g.binary(BinaryOp::Add, kept, toward, None);
            let prec_new = g.binary(BinaryOp::Add, base, evidence, None);
            outs.push((po, prec_new));
            let share = g.binary(BinaryOp::Div, u.grad, u.scale, None);
            let q = g.binary(BinaryOp::Div, share, prec_new, None);
            let lr = c(g, hyper("lr"));
            let step = g.binary(BinaryOp::Mul, lr, q, None);
            if hyper("clip") != 0.0 {
                return finish(g, Update::Capped(step), outs, shape);
            }
            g.binary(BinaryOp::Sub, w, step, None)
        }
    };
    finish(g, Update::New(new_w), outs, shape)
}

/// Below any curvature or quadratic form a model has: only keeps 0/0 from happening.
const TINY: f64 = 1e-30;

/// Adds the state outputs and gives the new value (or step) the parameter's shape.
fn finish(g: &mut Graph, up: Update, outs: Vec<(String, NodeId)>, shape: Vec<Dim>) -> Update {
    for (name, node) in outs {
        let node = g.expand_to(node, shape.clone(), None);
        g.outputs.push(crate::ir::graph::Output { name, node });
    }
    match up {
        Update::New(n) => Update::New(g.expand_to(n, shape, None)),
        Update::Capped(e) => Update::Capped(g.expand_to(e, shape, None)),
    }
}

/// The mean of every element of `x`, a scalar.
fn mean_of(g: &mut Graph, x: NodeId) -> NodeId {
    let rank = g.shape_of(x).len();
    if rank == 0 {
        return x;
    }
    g.push(Op::Reduce { f: ReduceOp::Mean, axes: (0..rank).collect(), keepdims: false }, &[x], None, None)
}

/// The factor `min(1, α, r)` of the capped steps (`clip = true`), one for all of them: `e` is their
/// joint step, `α = gᵀe / eᵀGe` where the loss's Gauss–Newton quadratic model is least along
/// it (`G` from one JVP of the forward pass, `bprop2::gauss_newton_form`). A diagonal step moves
/// every coordinate to where it alone would fit; where coordinates act together (the inputs of
/// a dense layer, or `a` and `b` in `a·b·x`) their steps add up and overshoot, which the exact
/// form along `e` sees and the diagonal cannot. `α` is invariant to each parameter's scale and to
/// the loss's (its numerator and denominator are both in units of the loss).
///
/// `forward` holds the nodes of the forward pass; `steps` each capped parameter's node, gradient
/// and step; `trust` the bound of the trust region (the smallest of the capped rules'). A
/// parameter the forward pass does not read (an unused one) moves by its own step alone and is
/// left out of α.
pub fn cap(g: &mut Graph, forward: &HashSet<NodeId>, steps: &[(NodeId, NodeId, NodeId)], trust: f64) -> NodeId {
    let moved: Vec<(NodeId, NodeId, NodeId)> = steps.iter().filter(|(w, ..)| forward.contains(w)).copied().collect();
    let seeds: HashMap<NodeId, NodeId> = moved.iter().map(|(w, _, e)| (*w, *e)).collect();
    let tangent = crate::autodiff::forward::tangents_within(g, &seeds, |n| forward.contains(&n));
    let dirs: Vec<(NodeId, NodeId)> = moved.iter().map(|(w, _, e)| (*w, *e)).collect();
    let (quad, curved) = crate::autodiff::bprop2::gauss_newton_form_parts(g, &tangent, &dirs);
    let mut lin = g.constant(0.0, None);
    for (_, grad, e) in &moved {
        let ge = g.binary(BinaryOp::Mul, *grad, *e, None);
        let t = sum_of(g, ge);
        lin = g.binary(BinaryOp::Add, lin, t, None);
    }
    let tiny = g.constant(TINY, None);
    let den = g.binary(BinaryOp::Add, quad, tiny, None);
    let alpha = g.binary(BinaryOp::Div, lin, den, None);
    let one = g.constant(1.0, None);
    let c = min(g, one, alpha);
    // The trust region, for the likelihoods whose Gauss–Newton model holds only near the
    // predictions (all but a normal of constant σ, which is quadratic): ½c²·q, their change to
    // second order with the curvature of uncertain predictions (`gauss_newton_form_parts`), at
    // most `trust` per observation.
    match (curved, crate::autodiff::bprop2::observations(g)) {
        (Some(q), Some(n)) => {
            let k = g.constant(2.0 * trust, None);
            let budget = g.binary(BinaryOp::Mul, k, n, None);
            let qt = g.binary(BinaryOp::Add, q, tiny, None);
            let r = g.binary(BinaryOp::Div, budget, qt, None);
            let r = g.unary(UnaryOp::Sqrt, r, None);
            min(g, c, r)
        }
        _ => c,
    }
}

/// min(a, b) = a − relu(a − b)
fn min(g: &mut Graph, a: NodeId, b: NodeId) -> NodeId {
    let d = g.binary(BinaryOp::Sub, a, b, None);
    let d = g.unary(UnaryOp::Relu, d, None);
    g.binary(BinaryOp::Sub, a, d, None)
}

/// The sum of every element of `x`, a scalar.
fn sum_of(g: &mut Graph, x: NodeId) -> NodeId {
    let rank = g.shape_of(x).len();
    if rank == 0 {
        return x;
    }
    g.push(Op::Reduce { f: ReduceOp::Sum, axes: (0..rank).collect(), keepdims: false }, &[x], None, None)
}

/// β·m + (1 − β)·x
fn ema(g: &mut Graph, m: NodeId, x: NodeId, beta: f64) -> NodeId {
    let b = g.constant(beta, None);
    let one_minus = g.constant(1.0 - beta, None);
    let a = g.binary(BinaryOp::Mul, b, m, None);
    let c = g.binary(BinaryOp::Mul, one_minus, x, None);
    g.binary(BinaryOp::Add, a, c, None)
}

/// 1 − βᵗ
fn bias_correction(g: &mut Graph, beta: f64, t: NodeId) -> NodeId {
    let b = g.constant(beta, None);
    let p = g.binary(BinaryOp::Pow, b, t, None);
    let one = g.constant(1.0, None);
    g.binary(BinaryOp::Sub, one, p, None)
}

/// Whether a parameter starts positive for sure: a positive fixed start, or a prior with mass on
/// positive values only.
pub fn starts_positive(p: &crate::ir::graph::ParamInfo) -> bool {
    match p.init {
        crate::ir::graph::Init::Fixed(v) => v > 0.0,
        crate::ir::graph::Init::Draw(prior) => match prior {
            Prior::LogNormal { .. } => true,
            Prior::Uniform { low, .. } => low > 0.0,
            _ => false,
        },
    }
}

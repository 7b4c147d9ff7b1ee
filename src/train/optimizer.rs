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
//! - `newton(lr, damping)`: w ← w − lr·g / (h + damping), h the Gauss–Newton bprop2 curvature,
//!   which already holds the prior's precision.
//! - `bayes(lr, decay)`: a precision P per weight, started at the prior's precision P₀. Each step
//!   adds the new evidence, the batch's own curvature max(h − P₀, 0)/s, and decays toward the
//!   prior: P ← (1 − decay)·P + decay·P₀ + evidence; then w ← w − lr·(g/s)/P. On the full batch
//!   the first step is a Newton step; later steps shrink as evidence accumulates (BRIEF §2.6).

use crate::check::checked::{Prior, UpdateKind, UpdateRule};
use crate::check::types::Dim;
use crate::ir::graph::InputInfo;
use crate::ir::op::{BinaryOp, Op, UnaryOp};
use crate::ir::{Graph, NodeId};

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

/// Builds the update of one parameter. Returns the new value's node and adds its state slots.
pub fn update(g: &mut Graph, rule: &UpdateRule, u: &UpdateInputs, slots: &mut Vec<StateSlot>) -> NodeId {
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
            let damping = c(g, hyper("damping"));
            let den = g.binary(BinaryOp::Add, h, damping, None);
            let q = g.binary(BinaryOp::Div, u.grad, den, None);
            let lr = c(g, hyper("lr"));
            let step = g.binary(BinaryOp::Mul, lr, q, None);
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
            g.binary(BinaryOp::Sub, w, step, None)
        }
    };
    for (name, node) in outs {
        let node = g.expand_to(node, shape.clone(), None);
        g.outputs.push(crate::ir::graph::Output { name, node });
    }
    g.expand_to(new_w, shape, None)
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

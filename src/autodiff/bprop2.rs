//! bprop2 (BRIEF §2.4): next to the gradient, backpropagate the diagonal curvature of the loss
//! with respect to every node, and so every parameter, at about the cost of a second gradient.
//!
//! Curvature starts where the likelihoods meet their predictions, with each observation model's
//! exact curvature (normal: 1/σ², categorical and bernoulli: p(1−p)), and flows back by one rule
//! per op, written in IR ops like the gradient rules:
//! - `y = f(z)` elementwise: `h_z = f'(z)²·h_y + f''(z)·g_y`;
//! - `y = x @ w`: `h_x = h_y @ (w∘w)ᵀ`, `h_w = (x∘x)ᵀ @ h_y`;
//! - ops that only move or select elements (reshape, slice, concat, …): as the gradient.
//!
//! The `GaussNewton` variant drops every `f''·g` term, and uses the Fisher information where a
//! likelihood's or prior's own curvature can be negative, so it is never negative. `Full` keeps
//! them. Priors add their curvature to their parameter or value. Both are the diagonal
//! approximation: contributions through different paths add without their cross terms, which is
//! exact for a linear layer under a Gaussian likelihood and, for a network with one hidden layer,
//! equals the Gauss–Newton diagonal diag(JᵀHJ).
//!
//! Laplace terms have no curvature almost everywhere; both variants use their Fisher
//! information 1/b² instead, so a Laplace prior still acts as a precision.

use super::reverse::{self, unary_derivative, unreduce};
use crate::check::checked::Prior;
use crate::check::types::Dim;
use crate::ir::graph::{Likelihood, Output, Scale, Term};
use crate::ir::op::{BinaryOp, Op, ReduceOp, UnaryOp};
use crate::ir::Origin;
use crate::ir::{Graph, NodeId};
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Drops the `f''·g` terms: never negative.
    GaussNewton,
    /// Keeps them: the full diagonal approximation.
    Full,
    /// Gauss–Newton, with the categorical likelihood's curvature `diag(p) − ppᵀ` kept whole: its
    /// rank-one part `ppᵀ` travels back as a vector per example (by the gradient's rules) while
    /// the step keeps to one example's row, and is folded into the diagonal, as `−u²`, where it
    /// would be summed over examples (a weight, a broadcast bias) or meet another. Exact, where
    /// `GaussNewton` drops the cross terms `−p_k·p_l`, for the weights of a network with one
    /// hidden layer under a softmax (`examples/mlp_digits.circ`). Costs one more backward sweep.
    GaussNewtonSoftmax,
}

/// Adds outputs `grad.<param>` and `curv.<param>` (the diagonal curvature, prior included) for
/// every parameter, and returns the curvature nodes.
pub fn add_curvature(g: &mut Graph, variant: Variant) -> Vec<NodeId> {
    let params: Vec<Option<NodeId>> = (0..g.params.len()).map(|i| super::param_node(g, i)).collect();
    let wrt: Vec<NodeId> = params.iter().flatten().copied().collect();
    let live = reverse::depends_on(g, &wrt);
    let loss = g.loss();
    let cot = reverse::gradients(g, loss, &wrt);
    let forward_order = g.topo_order();

    let mut h: HashMap<NodeId, NodeId> = HashMap::new();
    // The per-example rank-one parts `u` (matrix diag(h) − uuᵀ), for `GaussNewtonSoftmax`.
    let mut low = LowRank::default();
    let low_rank = variant == Variant::GaussNewtonSoftmax;
    let variant = if low_rank { Variant::GaussNewton } else { variant };
    let terms = g.terms.clone();
    let weight = batch_weight(g);
    for term in &terms {
        seed(g, term, variant, weight, &mut h, low_rank.then_some(&mut low));
    }
    // Backward sweep over the forward nodes, outputs first.
    for &y in forward_order.iter().rev() {
        let Some(&hy) = h.get(&y) else { continue };
        let uy = low.u.get(&y).copied();
        let mut folded: Option<NodeId> = None;
        let xs = g.operands(y);
        for (i, &x) in xs.iter().enumerate() {
            if !live.contains(&x) {
                continue;
            }
            let gy = cot.get(&y).copied();
            // The rank-one part goes on where the operand's map keeps to one example's row;
            // elsewhere the operand sees the folded diagonal h − u².
            let (h_in, ux) = match uy {
                None => (hy, None),
                Some(uy) => match pass_low_rank(g, y, &xs, i, uy) {
                    Some(ux) => (hy, Some(ux)),
                    None => (*folded.get_or_insert_with(|| fold(g, hy, uy)), None),
                },
            };
            if let Some(hx) = rule(g, y, &xs, i, h_in, gy, variant) {
                let total = match h.get(&x) {
                    Some(&prev) => g.binary(BinaryOp::Add, prev, hx, g.node(x).span),
                    None => hx,
                };
                h.insert(x, total);
            }
            if let Some(ux) = ux {
                low.add(g, &mut h, x, ux);
            }
        }
    }
    let mut out = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let shape: Vec<Dim> = g.params[i].shape.iter().map(|n| Dim::Known(*n)).collect();
        let grad = match p.and_then(|p| cot.get(&p).copied()) {
            Some(gr) => gr,
            None => g.zeros(shape.clone(), None),
        };
        let mut curv = match p.and_then(|p| h.get(&p).copied()) {
            Some(c) => c,
            None => g.zeros(shape.clone(), None),
        };
        if let Some(&u) = p.and_then(|p| low.u.get(&p)) {
            curv = fold(g, curv, u);
        }
        let prior = g.params[i].prior;
        let pc = match p {
            Some(pn) => prior_curvature(g, *pn, &prior, variant, None),
            // An unused parameter has only its prior; a value-dependent one needs the value.
            None => constant_prior_curvature(&prior).map(|c| g.constant(c, None)),
        };
        if let Some(pc) = pc {
            curv = g.binary(BinaryOp::Add, curv, pc, None);
            curv = g.expand_to(curv, shape.clone(), None);
        }
        let name = g.params[i].name.clone();
        g.outputs.push(Output { name: format!("grad.{name}"), node: grad });
        g.outputs.push(Output { name: format!("curv.{name}"), node: curv });
        out.push(curv);
    }
    crate::passes::dce::run(g);
    out
}

/// The rank-one parts of `GaussNewtonSoftmax`: at most one `u` per node; a node reached by two
/// has both folded into its diagonal.
#[derive(Default)]
struct LowRank {
    u: HashMap<NodeId, NodeId>,
    folded: std::collections::HashSet<NodeId>,
}

impl LowRank {
    fn add(&mut self, g: &mut Graph, h: &mut HashMap<NodeId, NodeId>, at: NodeId, u: NodeId) {
        if !self.folded.contains(&at) && !self.u.contains_key(&at) {
            self.u.insert(at, u);
            return;
        }
        self.folded.insert(at);
        let span = g.node(at).span;
        let mut minus = g.unary(UnaryOp::Square, u, span);
        if let Some(prev) = self.u.remove(&at) {
            let p2 = g.unary(UnaryOp::Square, prev, span);
            minus = g.binary(BinaryOp::Add, minus, p2, span);
        }
        let total = match h.get(&at) {
            Some(&prev) => g.binary(BinaryOp::Sub, prev, minus, span),
            None => g.unary(UnaryOp::Neg, minus, span),
        };
        h.insert(at, total);
    }
}

/// h − u²: the diagonal of diag(h) − uuᵀ.
fn fold(g: &mut Graph, h: NodeId, u: NodeId) -> NodeId {
    let u2 = g.unary(UnaryOp::Square, u, None);
    g.binary(BinaryOp::Sub, h, u2, None)
}

/// The rank-one vector `u` of node `y` carried to operand `i` (the gradient's rule: an exact
/// linear map), where that map keeps to one example's row: elementwise ops without broadcasting,
/// and the activations of a product `x @ w` with `w` a matrix. `None` elsewhere.
fn pass_low_rank(g: &mut Graph, y: NodeId, xs: &[NodeId], i: usize, u: NodeId) -> Option<NodeId> {
    let node = g.node(y).clone();
    let xshape = g.shape_of(xs[i]);
    let keeps_rows = match &node.op {
        Op::Unary(_) => true,
        Op::Binary(BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div) => xshape == node.shape,
        Op::MatMul => i == 0 && xshape.len() == 2 && g.shape_of(xs[1]).len() == 2,
        _ => false,
    };
    if !keeps_rows {
        return None;
    }
    reverse::rule(g, y, xs, i, u)
}

/// Training graphs multiply the terms that sum over examples by `batch_scale` (see
/// `ir::lower::lower_with`); their curvature scales with them.
fn batch_weight(g: &Graph) -> Option<NodeId> {
    g.inputs
        .iter()
        .position(|i| i.name == "batch_scale")
        .and_then(|k| g.node_ids().into_iter().find(|n| g.node(*n).op == Op::Input(k)))
}

/// The Gauss–Newton quadratic form `vᵀ G v` of the loss along a direction `v` in parameter
/// space, a scalar node. `tangent` holds `J·v` for the forward nodes (`forward::tangents` seeded
/// with `v` at the parameters); `dirs` holds each moved parameter's node and `v`. Each term adds
/// `(Jv)ᵀ H (Jv)`, `H` its Gauss–Newton curvature in its prediction: the seeds of
/// [`add_curvature`], but the categorical's exactly, `diag(p) − ppᵀ` with its cross terms (so a
/// shift of every logit of a row costs nothing). Each parameter's prior adds its precision times
/// `v²`. Never negative. One JVP (a forward pass) of cost, against a diagonal that cannot see how
/// the coordinates of a step add up.
pub fn gauss_newton_form(g: &mut Graph, tangent: &HashMap<NodeId, NodeId>, dirs: &[(NodeId, NodeId)]) -> NodeId {
    gauss_newton_form_parts(g, tangent, dirs).0
}

/// Whether a likelihood's negative log density is not quadratic in its prediction, so that its
/// Gauss–Newton model holds only near the prediction: all but a normal of constant σ.
fn curved(dist: &Likelihood) -> bool {
    !matches!(dist, Likelihood::Normal { scale: Scale::Const(_) })
}

/// [`gauss_newton_form`], and the trust region's measure of the step (`None` without any
/// likelihood that is not quadratic in its predictions): those likelihoods' part of the form,
/// but with a categorical's or bernoulli's curvature taken at its least confident (uniform `p`,
/// `p = ½`), where it is largest, so it does not vanish as the predictions saturate; for a
/// categorical, twice the KL divergence the step would make at uniform predictions.
pub fn gauss_newton_form_parts(
    g: &mut Graph,
    tangent: &HashMap<NodeId, NodeId>,
    dirs: &[(NodeId, NodeId)],
) -> (NodeId, Option<NodeId>) {
    let weight = batch_weight(g);
    let mut parts: Vec<NodeId> = Vec::new();
    let mut curved_parts: Vec<NodeId> = Vec::new();
    let terms = g.terms.clone();
    for term in &terms {
        let is_curved = matches!(term, Term::Likelihood { dist, .. } if curved(dist));
        let mut trust_part: Option<NodeId> = None;
        let part = match term {
            Term::Likelihood { data, dist, prediction } => {
                let Some(pred) = g.output(prediction) else { continue };
                let Some(y) = g.node_ids().into_iter().find(|n| g.node(*n).op == Op::Data(*data)) else { continue };
                let s = g.node(pred).span;
                let yshape = g.shape_of(y);
                let u = tangent.get(&pred).copied();
                // Σ c·u² over the observed elements (c and u broadcast to the data's shape).
                let weighted = |g: &mut Graph, c: NodeId, u: NodeId| -> NodeId {
                    let u2 = g.unary(UnaryOp::Square, u, s);
                    let t = g.binary(BinaryOp::Mul, c, u2, s);
                    let t = g.expand_to(t, yshape.clone(), s);
                    total(g, t, s)
                };
                let mut sum: Vec<NodeId> = Vec::new();
                let mut trust_sum: Vec<NodeId> = Vec::new();
                match dist {
                    Likelihood::Normal { scale } | Likelihood::Laplace { scale } => {
                        let normal = matches!(dist, Likelihood::Normal { .. });
                        let (inv2, sigma) = match scale {
                            Scale::Const(c) => (g.constant(1.0 / (c * c), s), None),
                            Scale::Output(name) => {
                                let Some(sn) = g.output(name) else { continue };
                                let sq = g.unary(UnaryOp::Square, sn, s);
                                (g.unary(UnaryOp::Recip, sq, s), Some(sn))
                            }
                        };
                        if let Some(u) = u {
                            sum.push(weighted(g, inv2, u));
                        }
                        // The scale's Fisher information: 2/σ² (normal), 1/b² (laplace).
                        if let Some(us) = sigma.and_then(|sn| tangent.get(&sn).copied()) {
                            let c = if normal {
                                let two = g.constant(2.0, s);
                                g.binary(BinaryOp::Mul, two, inv2, s)
                            } else {
                                inv2
                            };
                            sum.push(weighted(g, c, us));
                        }
                    }
                    Likelihood::Categorical => {
                        let Some(u) = u else { continue };
                        // Per row Σ p·u² − (Σ p·u)²: uᵀ(diag(p) − ppᵀ)u.
                        let shape = g.shape_of(pred);
                        let axis = shape.len() - 1;
                        let lse = g.push(Op::LogSumExp { axis, keepdims: true }, &[pred], None, s);
                        let d = g.binary(BinaryOp::Sub, pred, lse, s);
                        let p = g.unary(UnaryOp::Exp, d, s);
                        let pu = g.binary(BinaryOp::Mul, p, u, s);
                        let puu = g.binary(BinaryOp::Mul, pu, u, s);
                        let row = |g: &mut Graph, x: NodeId| {
                            g.push(Op::Reduce { f: ReduceOp::Sum, axes: vec![axis], keepdims: false }, &[x], None, s)
                        };
                        let a = row(g, puu);
                        let b = row(g, pu);
                        let b2 = g.unary(UnaryOp::Square, b, s);
                        let q = g.binary(BinaryOp::Sub, a, b2, s);
                        // Never negative but by rounding, where the softmax saturates.
                        let q = g.unary(UnaryOp::Relu, q, s);
                        let form = total(g, q, s);
                        sum.push(form);
                        // For the trust region: the same at uniform p, (1/K)Σu² − ((1/K)Σu)²,
                        // which does not vanish as the softmax saturates (with classes counted
                        // only at run time, the form itself).
                        if let Dim::Known(k) = shape[axis] {
                            let inv = g.constant(1.0 / k as f64, s);
                            let uu = g.binary(BinaryOp::Mul, u, u, s);
                            let a = row(g, uu);
                            let a = g.binary(BinaryOp::Mul, a, inv, s);
                            let b = row(g, u);
                            let b = g.binary(BinaryOp::Mul, b, inv, s);
                            let b2 = g.unary(UnaryOp::Square, b, s);
                            let q = g.binary(BinaryOp::Sub, a, b2, s);
                            let q = g.unary(UnaryOp::Relu, q, s);
                            trust_sum.push(total(g, q, s));
                        } else {
                            trust_sum.push(form);
                        }
                    }
                    Likelihood::Bernoulli => {
                        let Some(u) = u else { continue };
                        let p = g.unary(UnaryOp::Sigmoid, pred, s);
                        let c = bernoulli_curvature(g, p, s);
                        sum.push(weighted(g, c, u));
                        // For the trust region: p(1 − p) at its largest, 1/4.
                        let quarter = g.constant(0.25, s);
                        trust_sum.push(weighted(g, quarter, u));
                    }
                }
                if !matches!(dist, Likelihood::Categorical | Likelihood::Bernoulli) {
                    trust_sum.extend(sum.iter().copied());
                }
                trust_part = add_all(g, &trust_sum);
                add_all(g, &sum)
            }
            Term::ActivationPrior { value, prior } => {
                let Some(v) = g.output(value) else { continue };
                let Some(&u) = tangent.get(&v) else { continue };
                let s = g.node(v).span;
                let Some(c) = prior_curvature(g, v, prior, Variant::GaussNewton, s) else { continue };
                let u2 = g.unary(UnaryOp::Square, u, s);
                let t = g.binary(BinaryOp::Mul, c, u2, s);
                let shape = g.shape_of(v);
                let t = g.expand_to(t, shape, s);
                Some(total(g, t, s))
            }
            Term::ParamPrior { param, prior } => {
                let Some(&(node, v)) = dirs.iter().find(|(n, _)| g.node(*n).op == Op::Param(*param)) else { continue };
                let Some(c) = prior_curvature(g, node, prior, Variant::GaussNewton, None) else { continue };
                let v2 = g.unary(UnaryOp::Square, v, None);
                let t = g.binary(BinaryOp::Mul, c, v2, None);
                let shape = g.shape_of(node);
                let t = g.expand_to(t, shape, None);
                // Parameter priors are not scaled by the batch.
                parts.push(total(g, t, None));
                continue;
            }
        };
        let weighted = |g: &mut Graph, x: NodeId| match weight {
            Some(w) => g.binary(BinaryOp::Mul, x, w, None),
            None => x,
        };
        if let (true, Some(t)) = (is_curved, trust_part) {
            let t = weighted(g, t);
            curved_parts.push(t);
        }
        let Some(part) = part else { continue };
        let part = weighted(g, part);
        parts.push(part);
    }
    let all = add_all(g, &parts).unwrap_or_else(|| g.constant(0.0, None));
    (all, add_all(g, &curved_parts))
}

/// The number of observations of the likelihoods that are not quadratic in their predictions
/// (see [`gauss_newton_form_parts`]), each one's data elements times the term's batch weight (so
/// `N` for a categorical over `N` rows, whatever the batch), a scalar node; `None` without any.
pub fn observations(g: &mut Graph) -> Option<NodeId> {
    let weight = batch_weight(g);
    let terms = g.terms.clone();
    let mut counts = Vec::new();
    for term in &terms {
        let Term::Likelihood { data, dist, .. } = term else { continue };
        if !curved(dist) {
            continue;
        }
        let Some(y) = g.node_ids().into_iter().find(|n| g.node(*n).op == Op::Data(*data)) else { continue };
        let shape = g.shape_of(y);
        let axes: Vec<usize> = (0..shape.len()).collect();
        let n = reverse::count(g, &shape, &axes, None);
        counts.push(match weight {
            Some(w) => g.binary(BinaryOp::Mul, n, w, None),
            None => n,
        });
    }
    add_all(g, &counts)
}

/// The sum of every element of `x`, a scalar.
fn total(g: &mut Graph, x: NodeId, s: Option<Origin>) -> NodeId {
    let rank = g.shape_of(x).len();
    if rank == 0 {
        return x;
    }
    g.push(Op::Reduce { f: ReduceOp::Sum, axes: (0..rank).collect(), keepdims: false }, &[x], None, s)
}

/// The sum of scalar nodes; `None` for none.
fn add_all(g: &mut Graph, xs: &[NodeId]) -> Option<NodeId> {
    let (&first, rest) = xs.split_first()?;
    Some(rest.iter().fold(first, |a, &b| g.binary(BinaryOp::Add, a, b, None)))
}

/// Adds a term's curvature `v` at `at`, times the term's weight in the loss.
fn add_to(g: &mut Graph, h: &mut HashMap<NodeId, NodeId>, at: NodeId, v: NodeId, weight: Option<NodeId>) {
    let span = g.node(at).span;
    let v = match weight {
        Some(s) => g.binary(BinaryOp::Mul, v, s, span),
        None => v,
    };
    let shape = g.shape_of(at);
    let v = g.sum_to(v, &shape, span);
    let total = match h.get(&at) {
        Some(&prev) => g.binary(BinaryOp::Add, prev, v, span),
        None => v,
    };
    h.insert(at, total);
}

/// The exact (or, for Gauss–Newton, Fisher) curvature a loss term puts on its prediction. With
/// `low` (`GaussNewtonSoftmax`), a categorical's is `diag(p)` there and `u = p` in `low`.
fn seed(
    g: &mut Graph,
    term: &Term,
    variant: Variant,
    weight: Option<NodeId>,
    h: &mut HashMap<NodeId, NodeId>,
    low: Option<&mut LowRank>,
) {
    match term {
        Term::Likelihood { data, dist, prediction } => {
            let Some(pred) = g.output(prediction) else { return };
            let Some(y) = g.node_ids().into_iter().find(|n| g.node(*n).op == Op::Data(*data)) else { return };
            let s = g.node(pred).span;
            let yshape = g.shape_of(y);
            match dist {
                Likelihood::Normal { scale } | Likelihood::Laplace { scale } => {
                    let normal = matches!(dist, Likelihood::Normal { .. });
                    // Curvature in the mean: 1/σ² (normal), Fisher 1/b² (laplace).
                    let (inv2, sigma) = match scale {
                        Scale::Const(c) => (g.constant(1.0 / (c * c), s), None),
                        Scale::Output(name) => {
                            let Some(sn) = g.output(name) else { return };
                            let sq = g.unary(UnaryOp::Square, sn, s);
                            (g.unary(UnaryOp::Recip, sq, s), Some(sn))
                        }
                    };
                    let full = g.expand_to(inv2, yshape.clone(), s);
                    add_to(g, h, pred, full, weight);
                    if let Some(sn) = sigma {
                        // Curvature in the scale σ.
                        let c = match (variant, normal) {
                            // Fisher information of σ: 2/σ² (normal), 1/b² (laplace).
                            (Variant::GaussNewton | Variant::GaussNewtonSoftmax, true) => {
                                let two = g.constant(2.0, s);
                                g.binary(BinaryOp::Mul, two, inv2, s)
                            }
                            (Variant::GaussNewton | Variant::GaussNewtonSoftmax, false) => inv2,
                            // Exact: 3r²/σ⁴ − 1/σ² (normal), 2|r|/b³ − 1/b² (laplace).
                            (Variant::Full, _) => {
                                let r = g.binary(BinaryOp::Sub, y, pred, s);
                                let (k, rr) = if normal {
                                    (3.0, g.unary(UnaryOp::Square, r, s))
                                } else {
                                    let a = g.unary(UnaryOp::Abs, r, s);
                                    let b3 = g.binary(BinaryOp::Div, a, sn, s);
                                    (2.0, b3)
                                };
                                let k = g.constant(k, s);
                                let t = g.binary(BinaryOp::Mul, k, rr, s);
                                let t = g.binary(BinaryOp::Mul, t, inv2, s);
                                let t = if normal { g.binary(BinaryOp::Mul, t, inv2, s) } else { t };
                                g.binary(BinaryOp::Sub, t, inv2, s)
                            }
                        };
                        let c = g.expand_to(c, yshape, s);
                        add_to(g, h, sn, c, weight);
                    }
                }
                Likelihood::Categorical => {
                    // p(1 − p), p = softmax(logits)
                    let shape = g.shape_of(pred);
                    let axis = shape.len() - 1;
                    let lse = g.push(Op::LogSumExp { axis, keepdims: true }, &[pred], None, s);
                    let d = g.binary(BinaryOp::Sub, pred, lse, s);
                    let p = g.unary(UnaryOp::Exp, d, s);
                    match low {
                        None => {
                            let c = bernoulli_curvature(g, p, s);
                            add_to(g, h, pred, c, weight);
                        }
                        Some(low) => {
                            // w·(diag(p) − ppᵀ): u = √w·p.
                            add_to(g, h, pred, p, weight);
                            let u = match weight {
                                Some(w) => {
                                    let r = g.unary(UnaryOp::Sqrt, w, s);
                                    g.binary(BinaryOp::Mul, r, p, s)
                                }
                                None => p,
                            };
                            low.add(g, h, pred, u);
                        }
                    }
                }
                Likelihood::Bernoulli => {
                    let p = g.unary(UnaryOp::Sigmoid, pred, s);
                    let c = bernoulli_curvature(g, p, s);
                    let c = g.expand_to(c, yshape, s);
                    add_to(g, h, pred, c, weight);
                }
            }
        }
        Term::ActivationPrior { value, prior } => {
            let Some(v) = g.output(value) else { return };
            let s = g.node(v).span;
            if let Some(c) = prior_curvature(g, v, prior, variant, s) {
                let shape = g.shape_of(v);
                let c = g.expand_to(c, shape, s);
                add_to(g, h, v, c, weight);
            }
        }
        // Parameter priors are added to the parameters' curvature at the end.
        Term::ParamPrior { .. } => {}
    }
}

/// p(1 − p)
fn bernoulli_curvature(g: &mut Graph, p: NodeId, s: Option<Origin>) -> NodeId {
    let one = g.constant(1.0, s);
    let q = g.binary(BinaryOp::Sub, one, p, s);
    g.binary(BinaryOp::Mul, p, q, s)
}

/// A prior's curvature at `x` (a scalar node, or one of `x`'s shape); `None` for zero.
fn prior_curvature(g: &mut Graph, x: NodeId, prior: &Prior, variant: Variant, s: Option<Origin>) -> Option<NodeId> {
    if let Some(c) = constant_prior_curvature(prior) {
        return Some(g.constant(c, s));
    }
    let Prior::LogNormal { mu, sigma } = *prior else { return None };
    // −log p(x) = log x + (log x − μ)²/2σ² + const.
    let s2 = sigma * sigma;
    let sq = g.unary(UnaryOp::Square, x, s);
    let inv_x2 = g.unary(UnaryOp::Recip, sq, s);
    Some(match variant {
        // Fisher information in x: 1/(σ² x²).
        Variant::GaussNewton | Variant::GaussNewtonSoftmax => {
            let k = g.constant(1.0 / s2, s);
            g.binary(BinaryOp::Mul, k, inv_x2, s)
        }
        // Exact: (1 − (log x − μ))/(σ² x²) − 1/x².
        Variant::Full => {
            let lx = g.unary(UnaryOp::Log, x, s);
            let m = g.constant(1.0 + mu, s);
            let num = g.binary(BinaryOp::Sub, m, lx, s);
            let k = g.constant(1.0 / s2, s);
            let a = g.binary(BinaryOp::Mul, num, k, s);
            let a = g.binary(BinaryOp::Mul, a, inv_x2, s);
            g.binary(BinaryOp::Sub, a, inv_x2, s)
        }
    })
}

/// Curvature of a prior that does not depend on the value: normal 1/σ², laplace (Fisher) 1/b².
fn constant_prior_curvature(prior: &Prior) -> Option<f64> {
    match *prior {
        Prior::Normal { sigma, .. } => Some(1.0 / (sigma * sigma)),
        Prior::Laplace { b, .. } => Some(1.0 / (b * b)),
        Prior::Flat | Prior::Uniform { .. } | Prior::LogNormal { .. } => None,
    }
}

/// The curvature contribution to operand `i` of node `y` with curvature `hy` and gradient `gy`.
fn rule(
    g: &mut Graph,
    y: NodeId,
    xs: &[NodeId],
    i: usize,
    hy: NodeId,
    gy: Option<NodeId>,
    variant: Variant,
) -> Option<NodeId> {
    let node = g.node(y).clone();
    let s = node.span;
    let x = xs[i];
    let xshape = g.shape_of(x);
    // The f''·g term, in the Full variant and where there is a gradient.
    let keep_second = variant == Variant::Full && gy.is_some();
    Some(match &node.op {
        Op::Unary(f) => {
            let d = unary_derivative(g, *f, x, y, s)?;
            let d2 = g.unary(UnaryOp::Square, d, s);
            let first = g.binary(BinaryOp::Mul, d2, hy, s);
            match (keep_second, unary_second_derivative(g, *f, x, y, s)) {
                (true, Some(dd)) => {
                    let t = g.binary(BinaryOp::Mul, dd, gy?, s);
                    g.binary(BinaryOp::Add, first, t, s)
                }
                _ => first,
            }
        }
        Op::Binary(f) => {
            let (a, b) = (xs[0], xs[1]);
            // (∂y/∂operand, ∂²y/∂operand²), None for 1 and 0.
            let (d, dd): (Option<NodeId>, Option<NodeId>) = match (f, i) {
                (BinaryOp::Add | BinaryOp::Sub, _) => (None, None),
                (BinaryOp::Mul, 0) => (Some(b), None),
                (BinaryOp::Mul, _) => (Some(a), None),
                (BinaryOp::Div, 0) => (Some(g.unary(UnaryOp::Recip, b, s)), None),
                (BinaryOp::Div, _) => {
                    // ∂/∂b = −y/b, ∂² = 2y/b²
                    let q = g.binary(BinaryOp::Div, y, b, s);
                    let two = g.constant(2.0, s);
                    let bb = g.unary(UnaryOp::Square, b, s);
                    let t = g.binary(BinaryOp::Div, y, bb, s);
                    (Some(g.unary(UnaryOp::Neg, q, s)), Some(g.binary(BinaryOp::Mul, two, t, s)))
                }
                (BinaryOp::Pow, 0) => {
                    // ∂/∂a = b·a^(b−1), ∂² = b(b−1)·a^(b−2)
                    let one = g.constant(1.0, s);
                    let two = g.constant(2.0, s);
                    let bm1 = g.binary(BinaryOp::Sub, b, one, s);
                    let bm2 = g.binary(BinaryOp::Sub, b, two, s);
                    let p1 = g.binary(BinaryOp::Pow, a, bm1, s);
                    let p2 = g.binary(BinaryOp::Pow, a, bm2, s);
                    let d = g.binary(BinaryOp::Mul, b, p1, s);
                    let k = g.binary(BinaryOp::Mul, b, bm1, s);
                    (Some(d), Some(g.binary(BinaryOp::Mul, k, p2, s)))
                }
                (BinaryOp::Pow, _) => {
                    // ∂/∂b = y·ln a, ∂² = y·ln²a
                    let l = g.unary(UnaryOp::Log, a, s);
                    let d = g.binary(BinaryOp::Mul, y, l, s);
                    let l2 = g.unary(UnaryOp::Square, l, s);
                    (Some(d), Some(g.binary(BinaryOp::Mul, y, l2, s)))
                }
                (BinaryOp::Eq, _) => return None,
            };
            let first = match d {
                None => hy,
                Some(d) => {
                    let d2 = g.unary(UnaryOp::Square, d, s);
                    g.binary(BinaryOp::Mul, d2, hy, s)
                }
            };
            let full = match (keep_second, dd) {
                (true, Some(dd)) => {
                    let t = g.binary(BinaryOp::Mul, dd, gy?, s);
                    g.binary(BinaryOp::Add, first, t, s)
                }
                _ => first,
            };
            let full = g.expand_to(full, node.shape.clone(), s);
            g.sum_to(full, &xshape, s)
        }
        Op::MatMul => {
            // Bilinear: no second derivative in either operand alone.
            let a2 = g.unary(UnaryOp::Square, xs[0], s);
            let b2 = g.unary(UnaryOp::Square, xs[1], s);
            let mut sq = xs.to_vec();
            sq[0] = a2;
            sq[1] = b2;
            reverse::rule_matmul(g, &sq, i, hy, s)
        }
        Op::Reduce { f, axes, keepdims } => {
            let back = unreduce(g, hy, &xshape, axes, *keepdims, s);
            match f {
                ReduceOp::Sum => back,
                ReduceOp::Mean => {
                    let n = reverse::count(g, &xshape, axes, s);
                    let n2 = g.unary(UnaryOp::Square, n, s);
                    g.binary(BinaryOp::Div, back, n2, s)
                }
                ReduceOp::Max => {
                    let m = unreduce(g, y, &xshape, axes, *keepdims, s);
                    let mask = g.binary(BinaryOp::Eq, x, m, s);
                    let ties =
                        g.push(Op::Reduce { f: ReduceOp::Sum, axes: axes.clone(), keepdims: true }, &[mask], None, s);
                    let ties = g.expand_to(ties, xshape.clone(), s);
                    let share = g.binary(BinaryOp::Div, mask, ties, s);
                    let share2 = g.unary(UnaryOp::Square, share, s);
                    g.binary(BinaryOp::Mul, back, share2, s)
                }
            }
        }
        Op::LogSumExp { axis, keepdims } => {
            // ∂y/∂x = p, ∂²y/∂x² = p(1 − p) along the diagonal.
            let p = reverse::softmax_of(g, x, y, *axis, *keepdims, s);
            let back = unreduce(g, hy, &xshape, &[*axis], *keepdims, s);
            let p2 = g.unary(UnaryOp::Square, p, s);
            let first = g.binary(BinaryOp::Mul, p2, back, s);
            if keep_second {
                let gb = unreduce(g, gy?, &xshape, &[*axis], *keepdims, s);
                let c = bernoulli_curvature(g, p, s);
                let t = g.binary(BinaryOp::Mul, c, gb, s);
                g.binary(BinaryOp::Add, first, t, s)
            } else {
                first
            }
        }
        // Ops that move, select or repeat elements: coefficients are 0 or 1, so curvature moves
        // exactly like the gradient.
        Op::Reshape
        | Op::Transpose { .. }
        | Op::Concat { .. }
        | Op::Slice { .. }
        | Op::Embed { .. }
        | Op::Expand
        | Op::KMax { .. } => reverse::rule(g, y, xs, i, hy)?,
        Op::Data(_)
        | Op::Param(_)
        | Op::Input(_)
        | Op::Const(_)
        | Op::KMaxMask { .. }
        | Op::OneHot { .. }
        | Op::Cast => return None,
    })
}

/// f''(x) for `y = f(x)`; `None` where it is zero.
fn unary_second_derivative(g: &mut Graph, f: UnaryOp, x: NodeId, y: NodeId, s: Option<Origin>) -> Option<NodeId> {
    Some(match f {
        UnaryOp::Neg | UnaryOp::Relu | UnaryOp::Abs | UnaryOp::Step | UnaryOp::Sign => return None,
        UnaryOp::Exp => y,
        UnaryOp::Log => {
            // −1/x²
            let sq = g.unary(UnaryOp::Square, x, s);
            let r = g.unary(UnaryOp::Recip, sq, s);
            g.unary(UnaryOp::Neg, r, s)
        }
        UnaryOp::Sigmoid => {
            // σ(1−σ)(1−2σ)
            let one = g.constant(1.0, s);
            let two = g.constant(2.0, s);
            let c = bernoulli_curvature(g, y, s);
            let t = g.binary(BinaryOp::Mul, two, y, s);
            let u = g.binary(BinaryOp::Sub, one, t, s);
            g.binary(BinaryOp::Mul, c, u, s)
        }
        UnaryOp::Tanh => {
            // −2t(1 − t²)
            let one = g.constant(1.0, s);
            let m2 = g.constant(-2.0, s);
            let t2 = g.unary(UnaryOp::Square, y, s);
            let c = g.binary(BinaryOp::Sub, one, t2, s);
            let a = g.binary(BinaryOp::Mul, m2, y, s);
            g.binary(BinaryOp::Mul, a, c, s)
        }
        UnaryOp::Softplus => {
            // σ(x)(1 − σ(x))
            let p = g.unary(UnaryOp::Sigmoid, x, s);
            bernoulli_curvature(g, p, s)
        }
        UnaryOp::Sqrt => {
            // −1/(4 x^{3/2}) = −0.25 / y³
            let y2 = g.unary(UnaryOp::Square, y, s);
            let y3 = g.binary(BinaryOp::Mul, y2, y, s);
            let k = g.constant(-0.25, s);
            g.binary(BinaryOp::Div, k, y3, s)
        }
        UnaryOp::Square => g.constant(2.0, s),
        UnaryOp::Recip => {
            // 2/x³ = 2y³
            let y2 = g.unary(UnaryOp::Square, y, s);
            let y3 = g.binary(BinaryOp::Mul, y2, y, s);
            let two = g.constant(2.0, s);
            g.binary(BinaryOp::Mul, two, y3, s)
        }
    })
}

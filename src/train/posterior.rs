//! The diagonal Laplace approximation of the posterior (BRIEF §2.2, §2.6), and what uses it.
//!
//! - At the end of training, each parameter's posterior precision: the diagonal Gauss–Newton
//!   curvature of the likelihood summed over every training row (bprop2, the same rule `newton`
//!   and `bayes` step with) plus the prior's precision. `circ train` stores it in the checkpoint
//!   as `posterior.precision.<param>`.
//! - For `circ run --uncertainty laplace`, the delta method: the variance the parameters add to a
//!   prediction m is `Σ_k (∂m/∂θ_k)² / P_k` (the posterior N(θ*, diag(1/P)) pushed through m
//!   linearized at θ*). The derivatives are per row, so the Jacobian graph runs one row at a time.
//! - For categorical and bernoulli outputs, averaged probabilities by the probit approximation
//!   with the logits' variances: `softmax_k(μ_k / √(1 + π σ_k²/8))` (the mean-field form of Lu,
//!   Ie and Sha 2020; for bernoulli, MacKay's `σ(μ / √(1 + π σ²/8))`).
//! - EWC (Kirkpatrick et al. 2017): a penalty `½·λ·Σ_k P_k (θ_k − θ*_k)²` toward a checkpoint's
//!   parameters θ* with its stored precisions P, added to the training loss (`Anchor`).

use super::run::{rows, TrainError};
use crate::autodiff::{self, bprop2};
use crate::backend::{BackendKind, Runner};
use crate::check::checked::CheckedModel;
use crate::check::types::Dim;
use crate::interp::HostTensor;
use crate::ir::graph::{InputInfo, Output};
use crate::ir::op::{BinaryOp, Op};
use crate::ir::Graph;

/// The name of parameter `p`'s posterior precision in a checkpoint.
pub fn tensor_name(p: &str) -> String {
    format!("{PREFIX}{p}")
}

/// What every posterior precision tensor's name starts with.
pub const PREFIX: &str = "posterior.precision.";

/// The graph of the Gauss–Newton bprop2 curvature of the whole loss (likelihoods and activation
/// priors weighted by the input `batch_scale`, priors once): outputs the loss and `curv.<param>`.
pub fn curvature_graph(model: &CheckedModel, seed: u64) -> Graph {
    let mut g = crate::ir::lower::lower_with(model, seed, true);
    crate::passes::optimize(&mut g);
    bprop2::add_curvature(&mut g, bprop2::Variant::GaussNewton);
    // The loss stays first (the IR's invariant: `outputs[0]` is a scalar loss).
    let loss = g.outputs[0].name.clone();
    g.outputs.retain(|o| o.name == loss || o.name.starts_with("curv."));
    crate::passes::dce::run(&mut g);
    crate::passes::optimize(&mut g);
    g
}

/// Each parameter's posterior precision at `params`: the curvature of [`curvature_graph`] `g`
/// summed over every row of `train`, run on `kind` a block of `block` rows at a time, and the
/// prior's precision once. Each block's run holds the prior's curvature too, so it is taken
/// out of all but one: a run with `batch_scale` 0 gives it alone.
pub fn precision(
    g: &Graph,
    kind: BackendKind,
    train: &[HostTensor],
    params: &[Vec<f64>],
    block: usize,
) -> Result<Vec<Vec<f64>>, TrainError> {
    let mut runner = Runner::new(kind, g).map_err(|e| TrainError::Backend(e.to_string()))?;
    let inputs = |s: f64| -> Vec<Vec<f64>> {
        g.inputs
            .iter()
            .map(
                |i| if i.name == "batch_scale" { vec![s] } else { vec![0.0; i.shape.iter().product::<u64>() as usize] },
            )
            .collect()
    };
    let all: Vec<usize> = (0..rows(train)).collect();
    let blocks: Vec<&[usize]> = all.chunks(block.max(1)).collect();
    let mut total: Vec<Vec<f64>> =
        g.params.iter().map(|p| vec![0.0; p.shape.iter().product::<u64>() as usize]).collect();
    let mut add = |out: &crate::interp::Outputs<f64>, times: f64| {
        for (p, t) in g.params.iter().zip(total.iter_mut()) {
            let Some(c) = out.get(&format!("curv.{}", p.name)) else { continue };
            for (k, v) in t.iter_mut().enumerate() {
                // A curvature broadcast from a scalar (a prior alone) has one element.
                *v += times * c.data[if c.data.len() == 1 { 0 } else { k }];
            }
        }
    };
    for part in &blocks {
        let out = runner.run_rows(train, part, params, &inputs(1.0))?;
        add(&out, 1.0);
    }
    if blocks.len() > 1 {
        let out = runner.run_rows(train, blocks[0], params, &inputs(0.0))?;
        add(&out, -((blocks.len() - 1) as f64));
    }
    for (p, t) in g.params.iter().zip(&total) {
        if let Some((k, v)) = crate::driver::first_non_finite_element(t) {
            let shape: Vec<usize> = p.shape.iter().map(|n| *n as usize).collect();
            return Err(TrainError::Data(format!(
                "the posterior precision of `{}` is {v} at element {}: the curvature over the training rows is not finite",
                p.name,
                crate::driver::element_index(&shape, k)
            )));
        }
    }
    Ok(total)
}

/// The posterior precisions stored in a checkpoint, one per parameter of `g`, or an error that
/// says what is missing and to retrain.
pub fn precision_from(
    g: &Graph,
    tensors: &[circ_runtime::files::safetensors::NamedTensor],
    file: &str,
) -> Result<Vec<Vec<f64>>, String> {
    let mut out = Vec::new();
    for p in &g.params {
        let name = tensor_name(&p.name);
        let shape: Vec<usize> = p.shape.iter().map(|n| *n as usize).collect();
        match circ_runtime::files::safetensors::find(tensors, &name) {
            None => {
                return Err(format!(
                    "{file} holds no posterior precision (no tensor `{name}`): it was not written by `circ train` \
                     at the end of a training run that stores one\n  help: train again with `circ train … --out {file}` \
                     (the last epoch adds `posterior.precision.<param>` for every parameter)"
                ))
            }
            Some(t) if t.shape != shape => {
                return Err(format!(
                    "{file}: tensor `{name}` has shape {:?}, the parameter has {shape:?}",
                    t.shape
                ))
            }
            Some(t) => {
                if let Some(k) = t.values.iter().position(|v| !v.is_finite() || *v < 0.0) {
                    return Err(format!(
                        "{file}: tensor `{name}` is {} at element {}, not a precision (finite, at least 0)",
                        t.values[k],
                        crate::driver::element_index(&shape, k)
                    ));
                }
                out.push(t.values.clone());
            }
        }
    }
    Ok(out)
}

/// The derivatives of one prediction of a graph with respect to every parameter, one row at a
/// time: what the delta method needs.
pub struct Jacobian {
    /// The prediction's output name in the prediction graph.
    pub prediction: String,
    /// Entries of the prediction per row (1 for one mean per row, K for K logits).
    pub width: usize,
    graph: Graph,
    runner: Runner,
    /// The input that selects which entry of the row is differentiated (none when `width` is 1).
    select: Option<usize>,
}

impl Jacobian {
    /// Builds the graph `jac.<param>` = ∂(Σ_k sel_k · prediction[r, k])/∂θ for the output
    /// `prediction` of `g` (a graph whose rows are independent), compiled for `kind`.
    pub fn new(g: &Graph, prediction: &str, kind: BackendKind) -> Result<Jacobian, String> {
        let mut j = g.clone();
        let p = j.output(prediction).ok_or_else(|| format!("no output `{prediction}`"))?;
        let shape = j.shape_of(p);
        // The row axis (the data's symbolic first axis) leads; the rest is one row's entries.
        let per_row: &[Dim] = match shape.first() {
            Some(Dim::Sym(_)) => &shape[1..],
            _ => &shape[..],
        };
        let mut entries = Vec::new();
        for d in per_row {
            match d {
                Dim::Known(n) => entries.push(*n),
                _ => return Err(format!("the prediction `{prediction}` has a symbolic size besides the row axis")),
            }
        }
        let width = entries.iter().product::<u64>() as usize;
        let (weighted, select) = if width == 1 {
            (p, None)
        } else {
            let index = j.inputs.len();
            j.inputs.push(InputInfo { name: "laplace.select".to_string(), shape: entries });
            let sel = j.push(Op::Input(index), &[], None, None);
            let sel = j.expand_to(sel, shape.clone(), None);
            (j.binary(BinaryOp::Mul, p, sel, None), Some(index))
        };
        let root = j.sum_to(weighted, &[], None);
        let nodes: Vec<Option<crate::ir::NodeId>> = (0..j.params.len()).map(|i| autodiff::param_node(&j, i)).collect();
        let wrt: Vec<crate::ir::NodeId> = nodes.iter().flatten().copied().collect();
        let grads = autodiff::reverse::gradients(&mut j, root, &wrt);
        // The differentiated scalar takes the loss's place first (the IR's invariant).
        j.outputs = vec![Output { name: "laplace.root".to_string(), node: root }];
        for (i, n) in nodes.iter().enumerate() {
            // A parameter the prediction does not depend on adds nothing: no output.
            if let Some(gr) = n.and_then(|n| grads.get(&n).copied()) {
                let shape: Vec<Dim> = j.params[i].shape.iter().map(|n| Dim::Known(*n)).collect();
                let gr = j.expand_to(gr, shape, None);
                j.outputs.push(Output { name: format!("jac.{}", j.params[i].name), node: gr });
            }
        }
        crate::passes::dce::run(&mut j);
        crate::passes::optimize(&mut j);
        let runner = Runner::new(kind, &j).map_err(|e| e.to_string())?;
        Ok(Jacobian { prediction: prediction.to_string(), width, graph: j, runner, select })
    }

    /// For each row of `data` and each entry k of its prediction, `Σ_θ (∂m_k/∂θ)² / P_θ` with
    /// `precision` P: row-major, `width` values per row. A parameter of precision 0 that the
    /// prediction depends on is an error (its posterior is improper: the variance is unbounded).
    pub fn variance(
        &mut self,
        data: &[HostTensor],
        params: &[Vec<f64>],
        precision: &[Vec<f64>],
    ) -> Result<Vec<f64>, String> {
        let n = rows(data);
        let mut out = Vec::with_capacity(n * self.width);
        let mut inputs: Vec<Vec<f64>> =
            self.graph.inputs.iter().map(|i| vec![0.0; i.shape.iter().product::<u64>() as usize]).collect();
        for r in 0..n {
            for k in 0..self.width {
                if let Some(s) = self.select {
                    inputs[s].iter_mut().enumerate().for_each(|(e, v)| *v = f64::from(u8::from(e == k)));
                }
                let res = self.runner.run_rows(data, &[r], params, &inputs).map_err(|e| e.to_string())?;
                let mut v = 0.0;
                for (i, p) in self.graph.params.iter().enumerate() {
                    let Some(jac) = res.get(&format!("jac.{}", p.name)) else { continue };
                    for (e, (d, q)) in jac.data.iter().zip(&precision[i]).enumerate() {
                        if *d == 0.0 {
                            continue;
                        }
                        if *q <= 0.0 {
                            let shape: Vec<usize> = p.shape.iter().map(|n| *n as usize).collect();
                            return Err(format!(
                                "the prediction `{}` depends on `{}` element {}, whose posterior precision is 0 \
                                 (a flat prior and no curvature from the data): its Laplace variance is unbounded",
                                self.prediction,
                                p.name,
                                crate::driver::element_index(&shape, e)
                            ));
                        }
                        v += d * d / q;
                    }
                }
                out.push(v);
            }
        }
        Ok(out)
    }
}

/// The probit approximation of E[softmax(z)] for z ~ N(μ, diag(σ²)): softmax of μ_k/√(1 + πσ_k²/8).
pub fn probit_softmax(mean: &[f64], var: &[f64]) -> Vec<f64> {
    let z: Vec<f64> = mean.iter().zip(var).map(|(m, v)| m / (1.0 + std::f64::consts::PI * v / 8.0).sqrt()).collect();
    let top = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|x| (x - top).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

/// The probit approximation of E[sigmoid(z)] for z ~ N(μ, σ²): sigmoid(μ/√(1 + πσ²/8)).
pub fn probit_sigmoid(mean: f64, var: f64) -> f64 {
    let z = mean / (1.0 + std::f64::consts::PI * var / 8.0).sqrt();
    1.0 / (1.0 + (-z).exp())
}

/// EWC's anchor: a penalty ½·Σ_k q_k (θ_k − c_k)² with q = weight × a checkpoint's posterior
/// precision and c its parameters, for [`super::step::build_with`].
#[derive(Clone, Debug)]
pub struct Anchor {
    /// The penalty's weight λ (1: the checkpoint's posterior as this run's prior).
    pub weight: f64,
    pub center: Vec<Vec<f64>>,
    pub precision: Vec<Vec<f64>>,
}

impl Anchor {
    /// The anchor of checkpoint `tensors` (its parameters and stored precisions) for the
    /// parameters of `g`.
    pub fn from_checkpoint(
        g: &Graph,
        tensors: &[circ_runtime::files::safetensors::NamedTensor],
        file: &str,
        weight: f64,
    ) -> Result<Anchor, String> {
        let mut center = Vec::new();
        for p in &g.params {
            let shape: Vec<usize> = p.shape.iter().map(|n| *n as usize).collect();
            match circ_runtime::files::safetensors::find(tensors, &p.name) {
                Some(t) if t.shape == shape => center.push(t.values.clone()),
                Some(t) => {
                    return Err(format!(
                        "{file}: tensor `{}` has shape {:?}, the parameter has {shape:?}",
                        p.name, t.shape
                    ))
                }
                None => return Err(format!("{file}: no tensor `{}` (was it written for another model?)", p.name)),
            }
            if let Some((k, v)) =
                crate::driver::first_non_finite_element(center.last().map_or(&[][..], |c| c.as_slice()))
            {
                return Err(format!(
                    "{file}: `{}` is {v} at element {}",
                    p.name,
                    crate::driver::element_index(&shape, k)
                ));
            }
        }
        let precision = precision_from(g, tensors, file)?;
        Ok(Anchor { weight, center, precision })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// E[f(z)] for z ~ N(μ, σ²) by the trapezoid rule over ±10σ.
    fn expect(f: impl Fn(f64) -> f64, mean: f64, var: f64) -> f64 {
        let (sd, n) = (var.sqrt(), 20_000);
        let h = 20.0 * sd / n as f64;
        let mut s = 0.0;
        for i in 0..=n {
            let z = mean - 10.0 * sd + i as f64 * h;
            let w = if i == 0 || i == n { 0.5 } else { 1.0 };
            s += w * f(z) * (-(z - mean).powi(2) / (2.0 * var)).exp();
        }
        s * h / (2.0 * std::f64::consts::PI * var).sqrt()
    }

    /// The probit approximation against the expectation it approximates: exact at σ² = 0, and
    /// within 0.02 of the sigmoid's Gaussian average (MacKay's bound for this form is about
    /// that) over means −4…4 and variances up to 16.
    #[test]
    fn probit_sigmoid_is_close_to_the_gaussian_average() {
        let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
        assert_eq!(probit_sigmoid(1.5, 0.0), sigmoid(1.5));
        for mean in [-4.0, -1.0, 0.0, 0.5, 2.0, 4.0] {
            for var in [0.01, 0.5, 1.0, 4.0, 16.0] {
                let (p, e) = (probit_sigmoid(mean, var), expect(sigmoid, mean, var));
                assert!((p - e).abs() < 0.02, "μ {mean}, σ² {var}: {p} vs {e}");
            }
        }
    }

    /// The softmax form: a distribution, the plain softmax at zero variance, and less confident
    /// (the largest probability smaller) as the variance grows.
    #[test]
    fn probit_softmax_is_a_tempered_softmax() {
        let mean = [2.0, -1.0, 0.5];
        let p0 = probit_softmax(&mean, &[0.0; 3]);
        let z: f64 = mean.iter().map(|m| m.exp()).sum();
        for (p, m) in p0.iter().zip(mean) {
            assert!((p - m.exp() / z).abs() < 1e-15);
        }
        let p1 = probit_softmax(&mean, &[3.0; 3]);
        assert!((p1.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!(p1[0] < p0[0] && p1[0] > p1[2]);
    }
}

//! The training loop: a seeded split into training and validation rows, a seeded shuffle per
//! epoch, mini-batches fed to the step graph, parameters and optimizer state carried between
//! steps on the host, metrics per epoch, and checkpoints that resume bit for bit.
//!
//! Every random choice is a function of the seed and the epoch number, never of a generator's
//! running state, so training resumed from the checkpoint of epoch e continues exactly as an
//! uninterrupted run would.

use super::distributed::Group;
use super::step::{SplitStep, StepGraph};
use crate::backend::{BackendKind, RunError, Runner};
use crate::interp::{self, HostTensor};
use crate::ir::graph::{Likelihood, Term};
use crate::ir::init::Rng;
use crate::ir::{Graph, NodeId, Op};
use std::fmt;

mod non_finite;
mod parallel;

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub epochs: u64,
    /// Rows per step; `None` for the whole training set.
    pub batch: Option<u64>,
    /// Fraction of rows held out for validation (ignored when validation data are given).
    pub valid: f64,
    pub seed: u64,
}

/// Metrics of one epoch. Losses are negative log likelihoods per example (priors excluded).
#[derive(Clone, Debug, PartialEq)]
pub struct EpochMetrics {
    pub epoch: u64,
    pub steps: u64,
    pub train_nll: f64,
    pub valid_nll: Option<f64>,
    /// Fraction of labels predicted right, for categorical and bernoulli observations.
    pub train_accuracy: Option<f64>,
    pub valid_accuracy: Option<f64>,
    pub seconds: f64,
}

impl EpochMetrics {
    /// One JSON object on one line.
    pub fn to_json(&self) -> String {
        let num = |x: Option<f64>| {
            x.map_or("null".to_string(), |v| if v.is_finite() { format!("{v}") } else { "null".into() })
        };
        format!(
            "{{\"epoch\":{},\"steps\":{},\"train_nll\":{},\"valid_nll\":{},\"train_accuracy\":{},\"valid_accuracy\":{},\"seconds\":{:.3}}}",
            self.epoch,
            self.steps,
            num(Some(self.train_nll)),
            num(self.valid_nll),
            num(self.train_accuracy),
            num(self.valid_accuracy),
            self.seconds
        )
    }
}

#[derive(Debug)]
pub enum TrainError {
    /// The loss became NaN or infinite; `origin` names the first node that did, and its source.
    NonFinite {
        epoch: u64,
        step: u64,
        origin: String,
    },
    /// A step's loss was finite but it wrote a NaN or an infinity into a parameter or an
    /// optimizer state tensor (nothing of it was committed). `step` is `None` when the reference
    /// interpreter did not reproduce it on replay.
    NonFiniteUpdate {
        epoch: u64,
        step: Option<u64>,
        /// The parameter, or `opt.<slot>` for optimizer state.
        tensor: String,
        element: String,
        value: f64,
        origin: String,
    },
    Interp(interp::InterpError),
    /// A process of a data-parallel run failed: every process stops with the lowest failing
    /// rank's message.
    Process {
        rank: usize,
        size: usize,
        message: String,
    },
    /// The compiled backend failed (a bug of the backend, not of the model).
    Backend(String),
    Data(String),
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainError::NonFinite { epoch, step, origin } => {
                write!(
                    f,
                    "the loss is not finite at epoch {epoch}, step {step}; the first non-finite value is {origin}"
                )
            }
            TrainError::NonFiniteUpdate { epoch, step, tensor, element, value, origin } => {
                let at = step.map_or(String::new(), |s| format!(", step {s}"));
                write!(
                    f,
                    "the update of `{tensor}` at epoch {epoch}{at} is {value} at element {element}; the first non-finite value is {origin}"
                )
            }
            TrainError::Interp(e) => write!(f, "{e}"),
            TrainError::Process { rank, size, message } => write!(f, "process {rank} of {size}: {message}"),
            TrainError::Backend(e) => write!(f, "{e}"),
            TrainError::Data(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TrainError {}

impl From<interp::InterpError> for TrainError {
    fn from(e: interp::InterpError) -> Self {
        TrainError::Interp(e)
    }
}

impl From<RunError> for TrainError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Interp(e) => TrainError::Interp(e),
            RunError::Backend(e) => TrainError::Backend(e.to_string()),
        }
    }
}

/// Rows of every data tensor (the first axis is the example axis).
pub fn rows(data: &[HostTensor]) -> usize {
    data.first().map_or(0, |d| d.shape.first().copied().unwrap_or(0))
}

pub use crate::interp::bind::select;

/// A seeded permutation of `0..n` (Fisher–Yates).
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed);
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}

/// Splits rows into (train, valid): a seeded shuffle, the last `valid` fraction held out.
pub fn split(n: usize, valid: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    if valid <= 0.0 {
        return ((0..n).collect(), Vec::new());
    }
    let p = permutation(n, seed ^ SPLIT_SALT);
    let held = ((n as f64) * valid).round() as usize;
    let cut = n - held.min(n.saturating_sub(1));
    (p[..cut].to_vec(), p[cut..].to_vec())
}

/// Mixed into the seed for the validation split, so it differs from every epoch's shuffle.
const SPLIT_SALT: u64 = 0x5EED_5A17_0000_0001;

/// The shuffle seed of epoch `e` (1-based).
fn epoch_seed(seed: u64, e: u64) -> u64 {
    seed ^ e.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Describes a graph node for error messages: its op and the source line it came from.
pub type Describe<'a> = Box<dyn Fn(crate::ir::NodeId, &Graph) -> String + 'a>;

/// A model being trained: the step graph, its evaluation graph, the data, and the host copies
/// of parameters and optimizer state.
pub struct Trainer<'a> {
    pub step: &'a StepGraph,
    /// The forward graph with `nll` and the predictions (for validation).
    pub eval: Graph,
    pub train: Vec<HostTensor>,
    pub valid: Vec<HostTensor>,
    pub settings: Settings,
    pub params: Vec<Vec<f64>>,
    pub state: Vec<Vec<f64>>,
    /// Epochs and steps completed.
    pub epoch: u64,
    pub t: u64,
    /// Describes a node for error messages (its op and source line).
    pub describe: Describe<'a>,
    /// What runs the step graph and the evaluation graph.
    runner: Runner,
    eval_runner: Runner,
    /// Whether `runner` keeps `params` and `state` between steps (then the host copies are
    /// brought up to date after every epoch).
    carrying: bool,
    /// Data-parallel training over several processes: `step` is then the split step's `apply`.
    dist: Option<Dist<'a>>,
}

/// What a data-parallel run adds to a trainer (see `train::distributed`).
struct Dist<'a> {
    group: &'a Group,
    split: &'a SplitStep,
    /// Runs `split.local` on this process's rows.
    local: Runner,
    fused: Fused,
}

/// The buffer the processes sum once per step: every parameter's likelihood gradient, then
/// every curvature (where a rule reads them), each the last parameter first (the order the
/// backward pass finishes them, for buckets sent early one day), then the batch's likelihood
/// sum, its right and counted predictions, and a flag raised by a process that failed.
#[derive(Clone)]
struct Fused {
    grads: Vec<std::ops::Range<usize>>,
    curvs: Vec<std::ops::Range<usize>>,
    nll: usize,
    right: usize,
    total: usize,
    flag: usize,
    len: usize,
}

impl Fused {
    fn new(g: &Graph, curvature: bool) -> Fused {
        let mut at = 0;
        let mut ranges = || -> Vec<std::ops::Range<usize>> {
            let mut r: Vec<_> = g
                .params
                .iter()
                .rev()
                .map(|p| {
                    let n = p.shape.iter().product::<u64>() as usize;
                    at += n;
                    at - n..at
                })
                .collect();
            r.reverse();
            r
        };
        let grads = ranges();
        let curvs = if curvature { ranges() } else { Vec::new() };
        Fused { grads, curvs, nll: at, right: at + 1, total: at + 2, flag: at + 3, len: at + 4 }
    }
}

/// Steps between the checks (debug builds) that every process holds the same parameters.
const HASH_EVERY: u64 = 64;

impl<'a> Trainer<'a> {
    /// `params` are the starting values; optimizer state starts from them.
    pub fn new(
        step: &'a StepGraph,
        eval: Graph,
        train: Vec<HostTensor>,
        valid: Vec<HostTensor>,
        settings: Settings,
        params: Vec<Vec<f64>>,
        describe: Describe<'a>,
    ) -> Trainer<'a> {
        let state = step.state.iter().map(|s| s.init.values(&params[s.param])).collect();
        let runner = Runner::Interp(Box::new(step.graph.clone()));
        let eval_runner = Runner::Interp(Box::new(eval.clone()));
        Trainer {
            step,
            eval,
            train,
            valid,
            settings,
            params,
            state,
            epoch: 0,
            t: 0,
            describe,
            runner,
            eval_runner,
            carrying: false,
            dist: None,
        }
    }

    /// Trains data-parallel in `group`: this process takes its share of every batch and runs
    /// `split.local` on it, the processes sum the results, and each runs `split.apply`, which
    /// must be the trainer's step graph. Call before [`Trainer::use_backend`].
    pub fn distribute(&mut self, group: &'a Group, split: &'a SplitStep) {
        let local = Runner::Interp(Box::new(split.local.clone()));
        let fused = Fused::new(&split.local, split.curvature);
        self.dist = Some(Dist { group, split, local, fused });
    }

    /// Bytes each process sends per step in the summed buffer (0 without processes to send to).
    pub fn bytes_per_step(&self) -> usize {
        self.dist.as_ref().map_or(0, |d| d.fused.len * std::mem::size_of::<f64>())
    }

    /// Runs the step and the validation on `kind` from now on (the reference interpreter, in
    /// `f64`, until this is called).
    pub fn use_backend(&mut self, kind: BackendKind) -> Result<(), crate::backend::cpu::BackendError> {
        self.runner = Runner::new(kind, &self.step.graph)?;
        self.eval_runner = Runner::new(kind, &self.eval)?;
        if let Some(d) = self.dist.as_mut() {
            // Parameters stay on the host, where the summed gradients arrive.
            d.local = Runner::new(kind, &d.split.local)?;
            d.local.keep_data(&self.train, &self.params).unwrap_or(false);
            self.eval_runner.keep_data(&self.valid, &self.params).unwrap_or(false);
            return Ok(());
        }
        self.carrying = self.start_carrying()?;
        // Data the device keeps is written once, not every step; data it refuses (bad values)
        // is reported by the first run, which writes it from the host.
        self.runner.keep_data(&self.train, &self.params).unwrap_or(false);
        self.eval_runner.keep_data(&self.valid, &self.params).unwrap_or(false);
        Ok(())
    }

    /// Rows `rows` of the training data the accuracy reads (the observed data of categorical and
    /// Bernoulli terms); the other tensors empty.
    fn observed(&self, rows: &[usize]) -> Vec<HostTensor> {
        // In a data-parallel run the step graph holds no data: the local graph has the terms.
        let g = self.dist.as_ref().map_or(&self.step.graph, |d| &d.split.local);
        let read: Vec<usize> = g
            .terms
            .iter()
            .filter_map(|t| match t {
                Term::Likelihood { data, dist: Likelihood::Categorical | Likelihood::Bernoulli, .. } => Some(*data),
                _ => None,
            })
            .collect();
        self.train
            .iter()
            .enumerate()
            .map(|(i, d)| {
                if read.contains(&i) {
                    select(std::slice::from_ref(d), rows).remove(0)
                } else {
                    HostTensor::new(vec![0], Vec::new())
                }
            })
            .collect()
    }

    /// Parameters and optimizer state stay on the backend between steps where it can keep them:
    /// `new.<p>` into `<p>`, each state output into its input.
    fn start_carrying(&mut self) -> Result<bool, crate::backend::cpu::BackendError> {
        if self.dist.is_some() {
            return Ok(false);
        }
        let g = &self.step.graph;
        let mut links = Vec::new();
        for (i, p) in g.params.iter().enumerate() {
            if let Some(l) = crate::autodiff::param_node(g, i) {
                links.push((format!("new.{}", p.name), l));
            }
        }
        for s in &self.step.state {
            if let Some(l) = g.node_ids().into_iter().find(|n| g.node(*n).op == Op::Input(s.input)) {
                links.push((s.output.clone(), l));
            }
        }
        let refs: Vec<(&str, NodeId)> = links.iter().map(|(n, l)| (n.as_str(), *l)).collect();
        self.runner.carry(&refs)
    }

    /// The values the backend carried, as (params, state) beside the host copies (which are
    /// those of the start of the epoch while the backend carries them).
    fn carried(&self) -> Result<(Vec<Vec<f64>>, Vec<Vec<f64>>), TrainError> {
        let (mut params, mut state) = (self.params.clone(), self.state.clone());
        if !self.carrying {
            return Ok((params, state));
        }
        for (name, v) in self.runner.carried_values()? {
            if v.is_empty() {
                continue;
            }
            if let Some(i) = self.step.graph.params.iter().position(|p| name == format!("new.{}", p.name)) {
                params[i] = v;
            } else if let Some(k) = self.step.state.iter().position(|s| s.output == name) {
                state[k] = v;
            }
        }
        Ok((params, state))
    }

    pub fn backend(&self) -> BackendKind {
        self.runner.kind()
    }

    /// Sets `batch_scale` and `step` in the extra inputs.
    fn set_counters(&self, inputs: &mut [Vec<f64>], scale: f64) {
        for (info, v) in self.step.graph.inputs.iter().zip(inputs.iter_mut()) {
            match info.name.as_str() {
                "batch_scale" => *v = vec![scale],
                "step" => *v = vec![self.t as f64 + 1.0],
                _ => {}
            }
        }
    }

    /// The value of extra input `i` that is neither a counter nor optimizer state: fixed for the
    /// run (an EWC anchor), else zeros.
    fn fixed_input(&self, i: usize) -> Vec<f64> {
        match self.step.fixed.iter().find(|(k, _)| *k == i) {
            Some((_, v)) => v.clone(),
            None => vec![0.0; self.step.graph.inputs[i].shape.iter().product::<u64>() as usize],
        }
    }

    /// The extra inputs of the step graph, in order.
    fn inputs(&self, scale: f64) -> Vec<Vec<f64>> {
        self.step
            .graph
            .inputs
            .iter()
            .enumerate()
            .map(|(i, info)| match info.name.as_str() {
                "batch_scale" => vec![scale],
                "step" => vec![self.t as f64 + 1.0],
                _ => match self.step.state.iter().position(|s| s.input == i) {
                    Some(k) => self.state[k].clone(),
                    None => self.fixed_input(i),
                },
            })
            .collect()
    }

    /// Runs one epoch; `progress` is told after every step (steps done in the epoch, of how many,
    /// the running training loss per example).
    pub fn run_epoch(&mut self, progress: &mut dyn FnMut(u64, u64, f64)) -> Result<EpochMetrics, TrainError> {
        if self.dist.is_some() {
            return self.run_epoch_distributed(progress);
        }
        let start = std::time::Instant::now();
        let e = self.epoch + 1;
        let n = rows(&self.train);
        let batch = self.settings.batch.map_or(n, |b| (b as usize).clamp(1, n.max(1)));
        let order = permutation(n, epoch_seed(self.settings.seed, e));
        let steps = n.div_ceil(batch) as u64;
        let (mut nll_sum, mut seen) = (0.0, 0usize);
        let mut hits = Accuracy::default();
        // While the backend carries the state, the host's copy is read only by its first step.
        let mut inputs = self.inputs(1.0);
        let t0 = self.t;
        for (k, chunk) in order.chunks(batch).enumerate() {
            let scale = n as f64 / chunk.len() as f64;
            if self.carrying {
                self.set_counters(&mut inputs, scale);
            } else {
                inputs = self.inputs(scale);
            }
            let out = self.runner.run_rows(&self.train, chunk, &self.params, &inputs)?;
            let loss = out.loss();
            if !loss.is_finite() {
                let feed = select(&self.train, chunk);
                // The failed step committed nothing: the carried values are those it started
                // from, unless an earlier step of the epoch wrote a non-finite value.
                self.commit_carried(e, t0, &order, batch)?;
                let inputs = self.inputs(scale);
                let origin = self
                    .runner
                    .first_non_finite(&self.step.graph, &feed, &self.params, &inputs)?
                    .map_or_else(|| "unknown".to_string(), |id| (self.describe)(id, &self.step.graph));
                return Err(TrainError::NonFinite { epoch: e, step: self.t + 1, origin });
            }
            if !self.carrying {
                // The host holds every new value: check them before any is committed.
                let bad = self.first_non_finite_value(|name| out.get(name).map(|t| t.data.as_slice()));
                if let Some(bad) = bad {
                    return Err(self.non_finite_update(e, &select(&self.train, chunk), &inputs, bad));
                }
            }
            let nll = out.get("nll").map_or(f64::NAN, |t| t.data[0]);
            nll_sum += nll;
            seen += chunk.len();
            hits.add(&self.step.graph, &self.observed(chunk), |name| out.get(name).map(|t| t.data.clone()));
            if !self.carrying {
                for (i, p) in self.step.graph.params.iter().enumerate() {
                    if let Some(v) = out.get(&format!("new.{}", p.name)) {
                        self.params[i].clone_from(&v.data);
                    }
                }
                for (k, s) in self.step.state.iter().enumerate() {
                    if let Some(v) = out.get(&s.output) {
                        self.state[k].clone_from(&v.data);
                    }
                }
            }
            self.t += 1;
            progress(k as u64 + 1, steps, nll_sum / seen as f64);
        }
        // Nothing non-finite reaches the host copies (and so the checkpoint).
        self.commit_carried(e, t0, &order, batch)?;
        self.epoch = e;
        let (valid_nll, valid_accuracy) = self.validate()?;
        Ok(EpochMetrics {
            epoch: e,
            steps,
            train_nll: nll_sum / seen.max(1) as f64,
            valid_nll,
            train_accuracy: hits.fraction(),
            valid_accuracy,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Negative log likelihood per example and accuracy on the validation rows.
    fn validate(&mut self) -> Result<(Option<f64>, Option<f64>), TrainError> {
        let n = rows(&self.valid);
        if n == 0 {
            return Ok((None, None));
        }
        if self.dist.is_some() {
            return self.validate_distributed();
        }
        let inputs: Vec<Vec<f64>> =
            self.eval.inputs.iter().map(|i| if i.name == "batch_scale" { vec![1.0] } else { vec![0.0] }).collect();
        let all: Vec<usize> = (0..n).collect();
        let out = self.eval_runner.run_rows(&self.valid, &all, &self.params, &inputs)?;
        let nll = out.get("nll").map(|t| t.data[0] / n as f64);
        let mut hits = Accuracy::default();
        hits.add(&self.eval, &self.valid, |name| out.get(name).map(|t| t.data.clone()));
        Ok((nll, hits.fraction()))
    }
}

/// Format tag of circ checkpoints, in the safetensors metadata.
pub const CHECKPOINT_FORMAT: &str = "circ-checkpoint-1";

impl Trainer<'_> {
    /// Everything needed to resume: parameters under their own names, optimizer state under
    /// `opt.<slot>`, and in the metadata the epoch, step and seed.
    pub fn checkpoint(
        &self,
        model: &str,
    ) -> (Vec<circ_runtime::files::safetensors::NamedTensor>, Vec<(String, String)>) {
        use circ_runtime::files::safetensors::NamedTensor;
        let g = &self.step.graph;
        let mut t: Vec<NamedTensor> = g
            .params
            .iter()
            .zip(&self.params)
            .map(|(p, v)| NamedTensor {
                name: p.name.clone(),
                shape: p.shape.iter().map(|n| *n as usize).collect(),
                values: v.clone(),
            })
            .collect();
        for (s, v) in self.step.state.iter().zip(&self.state) {
            let shape = g.params[s.param].shape.iter().map(|n| *n as usize).collect();
            t.push(NamedTensor { name: format!("opt.{}", s.name), shape, values: v.clone() });
        }
        let meta = vec![
            ("format".to_string(), CHECKPOINT_FORMAT.to_string()),
            ("model".to_string(), model.to_string()),
            ("epoch".to_string(), self.epoch.to_string()),
            ("step".to_string(), self.t.to_string()),
            ("seed".to_string(), self.settings.seed.to_string()),
        ];
        (t, meta)
    }

    /// Restores a checkpoint written by [`Trainer::checkpoint`] for the same model and rules.
    pub fn restore(
        &mut self,
        file: &str,
        tensors: &[circ_runtime::files::safetensors::NamedTensor],
        meta: &[(String, String)],
    ) -> Result<(), String> {
        let get = |k: &str| meta.iter().find(|(m, _)| m == k).map(|(_, v)| v.as_str());
        if get("format") != Some(CHECKPOINT_FORMAT) {
            return Err(format!(
                "{file} is not a circ training checkpoint (no `format: {CHECKPOINT_FORMAT}` metadata)"
            ));
        }
        let number =
            |k: &str| get(k).and_then(|v| v.parse::<u64>().ok()).ok_or(format!("{file}: metadata `{k}` is missing"));
        let (epoch, t, seed) = (number("epoch")?, number("step")?, number("seed")?);
        if seed != self.settings.seed {
            return Err(format!(
                "{file} was trained with seed {seed}, this run has seed {}; resume with `--seed {seed}`",
                self.settings.seed
            ));
        }
        let g = &self.step.graph;
        let state: Vec<String> = self.step.state.iter().map(|s| format!("opt.{}", s.name)).collect();
        let expected: Vec<&str> =
            g.params.iter().map(|p| p.name.as_str()).chain(state.iter().map(String::as_str)).collect();
        let mut problems = Vec::new();
        let mut non_finite = Vec::new();
        let mut values = Vec::new();
        for (k, name) in expected.iter().enumerate() {
            let shape: Vec<usize> = if k < g.params.len() {
                g.params[k].shape.iter().map(|n| *n as usize).collect()
            } else {
                g.params[self.step.state[k - g.params.len()].param].shape.iter().map(|n| *n as usize).collect()
            };
            match circ_runtime::files::safetensors::find(tensors, name) {
                Some(t) if t.shape == shape => match crate::driver::first_non_finite_element(&t.values) {
                    Some((i, v)) => non_finite
                        .push(format!("`{name}` is {v} at element {}", crate::driver::element_index(&shape, i))),
                    None => values.push(t.values.clone()),
                },
                Some(t) => problems.push(format!("`{name}` has shape {:?}, expected {shape:?}", t.shape)),
                None => problems.push(format!("no tensor `{name}`")),
            }
        }
        if !problems.is_empty() {
            return Err(format!(
                "{file} does not fit this model and its optimizers: {} (was it written for another model or other update rules?)",
                problems.join("; ")
            ));
        }
        if !non_finite.is_empty() {
            return Err(format!("{file} holds values that are not finite: {}", non_finite.join("; ")));
        }
        let state_values = values.split_off(g.params.len());
        self.params = values;
        self.state = state_values;
        self.epoch = epoch;
        self.t = t;
        // The backend starts again from the restored values.
        self.carrying = self.start_carrying().map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Correct predictions of categorical and bernoulli observations.
#[derive(Default)]
struct Accuracy {
    right: usize,
    total: usize,
}

impl Accuracy {
    fn add(&mut self, g: &Graph, data: &[HostTensor], output: impl Fn(&str) -> Option<Vec<f64>>) {
        for term in &g.terms {
            let Term::Likelihood { data: d, dist, prediction } = term else { continue };
            let Some(pred) = output(prediction) else { continue };
            let labels = &data[*d].values;
            match dist {
                Likelihood::Categorical => {
                    let k = pred.len() / labels.len().max(1);
                    for (row, label) in pred.chunks(k.max(1)).zip(labels) {
                        let best = row
                            .iter()
                            .enumerate()
                            .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, v)| if *v > bv { (i, *v) } else { (bi, bv) })
                            .0;
                        self.right += usize::from(best as f64 == *label);
                        self.total += 1;
                    }
                }
                Likelihood::Bernoulli => {
                    for (logit, label) in pred.iter().zip(labels) {
                        self.right += usize::from((*logit > 0.0) == (*label > 0.5));
                        self.total += 1;
                    }
                }
                Likelihood::Normal { .. } | Likelihood::Laplace { .. } => {}
            }
        }
    }

    fn fraction(&self) -> Option<f64> {
        (self.total > 0).then(|| self.right as f64 / self.total as f64)
    }
}

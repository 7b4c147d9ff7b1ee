//! The training loop of a data-parallel run (see `train::distributed`): each process runs the
//! split step's `local` graph on its share of every global batch, the fused buffer is summed
//! over processes once per step, and every process runs `apply` on the same sums, so all hold
//! the same parameters. Validation is shared the same way.

use super::{epoch_seed, permutation, rows, select, Accuracy, EpochMetrics, TrainError, Trainer, HASH_EVERY};
use crate::train::distributed::{self, Group};

impl Trainer<'_> {
    /// [`Trainer::run_epoch`] over the processes of the group.
    pub(super) fn run_epoch_distributed(
        &mut self,
        progress: &mut dyn FnMut(u64, u64, f64),
    ) -> Result<EpochMetrics, TrainError> {
        let start = std::time::Instant::now();
        let (group, fused) = match &self.dist {
            Some(d) => (d.group, d.fused.clone()),
            None => return Err(TrainError::Backend("not a data-parallel run".into())),
        };
        let e = self.epoch + 1;
        let n = rows(&self.train);
        let batch = self.settings.batch.map_or(n, |b| (b as usize).clamp(1, n.max(1)));
        // The same shuffle on every process: each takes its share of every batch of it.
        let order = permutation(n, epoch_seed(self.settings.seed, e));
        let steps = n.div_ceil(batch) as u64;
        let (mut nll_sum, mut seen, mut right, mut total) = (0.0, 0usize, 0.0, 0.0);
        // This process's failure, told to the others at the next sum.
        let mut failed: Option<TrainError> = None;
        // One buffer for the epoch (megabytes for a real model), cleared before every step.
        let mut buf = vec![0.0; fused.len];
        for (k, chunk) in order.chunks(batch).enumerate() {
            let scale = n as f64 / chunk.len() as f64;
            buf.fill(0.0);
            if failed.is_none() {
                let mine = distributed::share(chunk, group.rank(), group.size());
                failed = self.local_step(e, mine, scale, &mut buf).err();
            }
            buf[fused.flag] = f64::from(u8::from(failed.is_some()));
            group.allreduce_sum(&mut buf);
            if buf[fused.flag] > 0.0 {
                return Err(agreed(group, failed));
            }
            nll_sum += buf[fused.nll];
            seen += chunk.len();
            right += buf[fused.right];
            total += buf[fused.total];
            failed = self.apply_step(e, scale, &buf).err();
            self.t += 1;
            if cfg!(debug_assertions) && self.t.is_multiple_of(HASH_EVERY) {
                // A collective: every process checks, failed or not.
                let differs = self.check_same(group);
                failed = failed.or(differs);
            }
            progress(k as u64 + 1, steps, nll_sum / seen as f64);
        }
        if cfg!(debug_assertions) {
            let differs = self.check_same(group);
            failed = failed.or(differs);
        }
        let message = failed.map(|f| f.to_string());
        if let Some(f) = group.agree(message.as_deref().map(|m| (1, m))) {
            return Err(TrainError::Process { rank: f.rank, size: group.size(), message: f.message });
        }
        self.epoch = e;
        let (valid_nll, valid_accuracy) = self.validate()?;
        Ok(EpochMetrics {
            epoch: e,
            steps,
            train_nll: nll_sum / seen.max(1) as f64,
            valid_nll,
            train_accuracy: (total > 0.0).then(|| right / total),
            valid_accuracy,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Runs `local` on rows `mine` of the batch and writes its part of the fused buffer (zeros
    /// for no rows).
    fn local_step(&mut self, e: u64, mine: &[usize], scale: f64, buf: &mut [f64]) -> Result<(), TrainError> {
        let Some(d) = self.dist.as_mut() else { return Ok(()) };
        if mine.is_empty() {
            return Ok(());
        }
        let (split, fused) = (d.split, d.fused.clone());
        let g = &split.local;
        let inputs: Vec<Vec<f64>> = g
            .inputs
            .iter()
            .map(|i| match i.name.as_str() {
                "batch_scale" => vec![scale],
                _ => vec![0.0; i.shape.iter().product::<u64>() as usize],
            })
            .collect();
        let out = d.local.run_rows(&self.train, mine, &self.params, &inputs)?;
        if !out.loss().is_finite() {
            let feed = select(&self.train, mine);
            let origin = d
                .local
                .first_non_finite(g, &feed, &self.params, &inputs)?
                .map_or_else(|| "unknown".to_string(), |id| (self.describe)(id, g));
            return Err(TrainError::NonFinite { epoch: e, step: self.t + 1, origin });
        }
        for (i, p) in g.params.iter().enumerate() {
            let parts = [("grad", fused.grads.get(i)), ("curv", fused.curvs.get(i))];
            for (what, range) in parts {
                if let (Some(r), Some(v)) = (range, out.get(&format!("{what}.{}", p.name))) {
                    buf[r.clone()].copy_from_slice(&v.data);
                }
            }
        }
        buf[fused.nll] = out.get("nll").map_or(f64::NAN, |t| t.data[0]);
        let mut hits = Accuracy::default();
        hits.add(g, &self.observed(mine), |name| out.get(name).map(|t| t.data.clone()));
        buf[fused.right] = hits.right as f64;
        buf[fused.total] = hits.total as f64;
        Ok(())
    }

    /// Runs `apply` on the summed buffer and keeps the new parameters and state; a non-finite
    /// value is an error naming where it started, and nothing of the step is kept.
    fn apply_step(&mut self, e: u64, scale: f64, buf: &[f64]) -> Result<(), TrainError> {
        let Some(d) = self.dist.as_ref() else { return Ok(()) };
        let (split, fused) = (d.split, d.fused.clone());
        let mut inputs = self.inputs(scale);
        for (i, (grad, curv)) in split.sums.iter().enumerate() {
            inputs[*grad] = buf[fused.grads[i].clone()].to_vec();
            if let (Some(c), Some(r)) = (curv, fused.curvs.get(i)) {
                inputs[*c] = buf[r.clone()].to_vec();
            }
        }
        let g = &self.step.graph;
        let out = self.runner.run(&[], &self.params, &inputs)?;
        if !out.loss().is_finite() {
            // The priors' loss: a parameter left its prior's support.
            let origin = self
                .runner
                .first_non_finite(g, &[], &self.params, &inputs)?
                .map_or_else(|| "unknown".to_string(), |id| (self.describe)(id, g));
            return Err(TrainError::NonFinite { epoch: e, step: self.t + 1, origin });
        }
        let bad = self.first_non_finite_value(|name| out.get(name).map(|t| t.data.as_slice()));
        if let Some(bad) = bad {
            return Err(self.non_finite_update(e, &[], &inputs, bad));
        }
        for (i, p) in g.params.iter().enumerate() {
            if let Some(v) = out.get(&format!("new.{}", p.name)) {
                self.params[i].clone_from(&v.data);
            }
        }
        for (k, s) in self.step.state.iter().enumerate() {
            if let Some(v) = out.get(&s.output) {
                self.state[k].clone_from(&v.data);
            }
        }
        Ok(())
    }

    /// An error unless every process holds the same parameters (a collective: every process
    /// calls it at the same step).
    fn check_same(&self, group: &Group) -> Option<TrainError> {
        (!group.same_everywhere(distributed::hash(&self.params))).then(|| {
            TrainError::Backend(format!(
                "the processes hold different parameters after step {}: their updates should be identical (a bug of circ)",
                self.t
            ))
        })
    }

    /// [`Trainer::validate`] over the processes: each evaluates its share of the rows.
    pub(super) fn validate_distributed(&mut self) -> Result<(Option<f64>, Option<f64>), TrainError> {
        let n = rows(&self.valid);
        let Some(group) = self.dist.as_ref().map(|d| d.group) else { return Ok((None, None)) };
        let all: Vec<usize> = (0..n).collect();
        let mine = distributed::share(&all, group.rank(), group.size());
        // The likelihood sum, right and counted predictions, the failure flag.
        let mut buf = [0.0; 4];
        let mut failed = None;
        if !mine.is_empty() {
            let inputs: Vec<Vec<f64>> =
                self.eval.inputs.iter().map(|i| if i.name == "batch_scale" { vec![1.0] } else { vec![0.0] }).collect();
            match self.eval_runner.run_rows(&self.valid, mine, &self.params, &inputs) {
                Ok(out) => {
                    buf[0] = out.get("nll").map_or(f64::NAN, |t| t.data[0]);
                    let mut hits = Accuracy::default();
                    hits.add(&self.eval, &select(&self.valid, mine), |name| out.get(name).map(|t| t.data.clone()));
                    buf[1] = hits.right as f64;
                    buf[2] = hits.total as f64;
                }
                Err(e) => failed = Some(TrainError::from(e)),
            }
        }
        buf[3] = f64::from(u8::from(failed.is_some()));
        group.allreduce_sum(&mut buf);
        if buf[3] > 0.0 {
            return Err(agreed(group, failed));
        }
        Ok((Some(buf[0] / n as f64), (buf[2] > 0.0).then(|| buf[1] / buf[2])))
    }
}

/// The failure every process learns after some raised the flag: the lowest failing rank's.
fn agreed(group: &Group, mine: Option<TrainError>) -> TrainError {
    let message = mine.map(|e| e.to_string());
    match group.agree(message.as_deref().map(|m| (1, m))) {
        Some(f) => TrainError::Process { rank: f.rank, size: group.size(), message: f.message },
        None => TrainError::Backend("a process failed, but none said why".into()),
    }
}

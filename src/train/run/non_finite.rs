//! Finding a non-finite value a training step wrote: which parameter or state tensor, which
//! element, and, run again on the reference interpreter, the node where it started.

use super::{rows, select, TrainError, Trainer};
use crate::backend::BackendKind;
use crate::interp::{self, HostTensor};

impl Trainer<'_> {
    /// The first parameter or state tensor holding a NaN or an infinity: (step output name,
    /// name in checkpoints, element, value).
    pub(super) fn first_non_finite_value<'v>(
        &self,
        get: impl Fn(&str) -> Option<&'v [f64]>,
    ) -> Option<(String, String, usize, f64)> {
        let g = &self.step.graph;
        let named = g
            .params
            .iter()
            .map(|p| (format!("new.{}", p.name), p.name.clone()))
            .chain(self.step.state.iter().map(|s| (s.output.clone(), format!("opt.{}", s.name))));
        for (output, tensor) in named {
            if let Some((k, v)) = get(&output).and_then(crate::driver::first_non_finite_element) {
                return Some((output, tensor, k, v));
            }
        }
        None
    }

    /// The shape of a parameter or state tensor, by its name in checkpoints.
    pub(super) fn shape_of(&self, tensor: &str) -> Vec<usize> {
        let g = &self.step.graph;
        let param = match tensor.strip_prefix("opt.") {
            Some(slot) => self.step.state.iter().find(|s| s.name == slot).map(|s| s.param),
            None => g.params.iter().position(|p| p.name == tensor),
        };
        param.map_or_else(Vec::new, |i| g.params[i].shape.iter().map(|n| *n as usize).collect())
    }

    /// Checks the values the backend carried through the epoch and commits them to the host
    /// copies only when all are finite. Otherwise the epoch (from the host copies, which are
    /// still its starting values) is replayed on the reference interpreter to find the step and
    /// the node where the non-finite value started.
    pub(super) fn commit_carried(&mut self, e: u64, t0: u64, order: &[usize], batch: usize) -> Result<(), TrainError> {
        if !self.carrying {
            return Ok(());
        }
        let (params, state) = self.carried()?;
        let lookup = |name: &str| -> Option<&[f64]> {
            if let Some(i) = self.step.graph.params.iter().position(|p| name == format!("new.{}", p.name)) {
                return Some(params[i].as_slice());
            }
            self.step.state.iter().position(|s| s.output == name).map(|k| state[k].as_slice())
        };
        if let Some((_, tensor, k, value)) = self.first_non_finite_value(lookup) {
            let element = crate::driver::element_index(&self.shape_of(&tensor), k);
            let found = self.replay(e, t0, order, batch)?;
            return Err(found.unwrap_or(TrainError::NonFiniteUpdate {
                epoch: e,
                step: None,
                tensor,
                element,
                value,
                origin: "not found again by the reference interpreter".to_string(),
            }));
        }
        self.params = params;
        self.state = state;
        Ok(())
    }

    /// Runs the steps of epoch `e` again on the reference interpreter (in the backend's
    /// precision), from the host copies, until one writes a non-finite value: the error naming
    /// it, its element and the node where it started.
    pub(super) fn replay(
        &self,
        e: u64,
        t0: u64,
        order: &[usize],
        batch: usize,
    ) -> Result<Option<TrainError>, TrainError> {
        let n = rows(&self.train);
        let (mut params, mut state) = (self.params.clone(), self.state.clone());
        let g = &self.step.graph;
        for (k, chunk) in order.chunks(batch).enumerate() {
            let feed = select(&self.train, chunk);
            let scale = n as f64 / chunk.len() as f64;
            let t = t0 + k as u64 + 1;
            let inputs: Vec<Vec<f64>> = g
                .inputs
                .iter()
                .enumerate()
                .map(|(i, info)| match info.name.as_str() {
                    "batch_scale" => vec![scale],
                    "step" => vec![t as f64],
                    _ => match self.step.state.iter().position(|s| s.input == i) {
                        Some(k) => state[k].clone(),
                        None => self.fixed_input(i),
                    },
                })
                .collect();
            let found = match self.backend() {
                BackendKind::Interp => self.bad_update(e, t, &interp::run_all_with::<f64>(g, &feed, &params, &inputs)?),
                _ => self.bad_update(e, t, &interp::run_all_with::<f32>(g, &feed, &params, &inputs)?),
            };
            let (next_params, next_state) = match found {
                Err(err) => return Ok(Some(err)),
                Ok(next) => next,
            };
            if next_params.iter().chain(&next_state).all(Vec::is_empty) {
                return Ok(None); // the loss was not finite: not an update's fault
            }
            params = next_params;
            state = next_state;
        }
        Ok(None)
    }

    /// The error for a new value that is not finite (`bad`, from
    /// [`Trainer::first_non_finite_value`]): the reference interpreter runs the step again — in
    /// f64 on `interp`, else in f32 as the backend did — to name the node where it started; when
    /// it does not fail the same way, the error says so.
    pub(super) fn non_finite_update(
        &self,
        e: u64,
        feed: &[HostTensor],
        inputs: &[Vec<f64>],
        (_, tensor, k, value): (String, String, usize, f64),
    ) -> TrainError {
        let g = &self.step.graph;
        let found_again = || -> Result<(), TrainError> {
            match self.backend() {
                BackendKind::Interp => {
                    self.bad_update(e, self.t + 1, &interp::run_all_with::<f64>(g, feed, &self.params, inputs)?)
                }
                _ => self.bad_update(e, self.t + 1, &interp::run_all_with::<f32>(g, feed, &self.params, inputs)?),
            }?;
            Ok(())
        };
        if let Err(named) = found_again() {
            return named;
        }
        let element = crate::driver::element_index(&self.shape_of(&tensor), k);
        TrainError::NonFiniteUpdate {
            epoch: e,
            step: Some(self.t + 1),
            tensor,
            element,
            value,
            origin: "not found again by the reference interpreter".to_string(),
        }
    }

    /// The values one step (all its node values) writes, or the error naming its first
    /// non-finite parameter or state value. Empty vectors when the loss is not finite.
    #[allow(clippy::type_complexity)]
    pub(super) fn bad_update<T: crate::interp::Real>(
        &self,
        e: u64,
        t: u64,
        values: &interp::Values<T>,
    ) -> Result<(Vec<Vec<f64>>, Vec<Vec<f64>>), TrainError> {
        let g = &self.step.graph;
        let get = |name: &str| -> Option<Vec<f64>> {
            g.output(name).and_then(|n| values.get(n)).map(|t| t.data.iter().map(|x| x.to_f64()).collect())
        };
        if !get(&g.outputs[0].name).is_some_and(|l| l.iter().all(|x| x.is_finite())) {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut params = Vec::new();
        for (i, p) in g.params.iter().enumerate() {
            params.push(get(&format!("new.{}", p.name)).unwrap_or_else(|| self.params[i].clone()));
        }
        let mut state = Vec::new();
        for (k, s) in self.step.state.iter().enumerate() {
            state.push(get(&s.output).unwrap_or_else(|| self.state[k].clone()));
        }
        let lookup = |name: &str| -> Option<&[f64]> {
            if let Some(i) = g.params.iter().position(|p| name == format!("new.{}", p.name)) {
                return Some(params[i].as_slice());
            }
            self.step.state.iter().position(|s| s.output == name).map(|k| state[k].as_slice())
        };
        if let Some((output, tensor, k, value)) = self.first_non_finite_value(lookup) {
            let origin = g
                .output(&output)
                .and_then(|n| values.first_non_finite_behind(g, n))
                .map_or_else(|| "unknown".to_string(), |id| (self.describe)(id, g));
            let mut origin = origin;
            // A node without a source line belongs to the update rule (or the derivatives).
            let param = g
                .params
                .iter()
                .position(|p| format!("new.{}", p.name) == output)
                .or_else(|| self.step.state.iter().find(|s| s.output == output).map(|s| s.param));
            if let (false, Some(i)) = (origin.contains(" from "), param) {
                let rule = &self.step.rules[i];
                let hyper: Vec<String> = rule.hyper.iter().map(|(n, v)| format!("{n} = {v}")).collect();
                origin.push_str(&format!(
                    ", in the update of `{}` by {}({})",
                    g.params[i].name,
                    rule.kind.name(),
                    hyper.join(", ")
                ));
            }
            let element = crate::driver::element_index(&self.shape_of(&tensor), k);
            return Err(TrainError::NonFiniteUpdate { epoch: e, step: Some(t), tensor, element, value, origin });
        }
        Ok((params, state))
    }
}

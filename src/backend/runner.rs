//! One way to run a graph whichever backend is chosen: what `circ train`, `circ run` and the
//! other commands call. Inputs and outputs are `f64` on the host either way; the CPU backend
//! computes in `f32` in between.

use super::cpu::executor::{ExecError, Executor};
use super::cpu::BackendError;
use super::opencl::executor::{ClError, ClExecutor};
use crate::interp::{self, HostTensor, InterpError, Outputs, Tensor};
use crate::ir::{Graph, NodeId};

/// Which backend runs a graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// The Cranelift backend (`f32`, JIT compiled kernels).
    Cpu,
    /// The reference interpreter (`f64`).
    Interp,
    /// The OpenCL backend (`f32`) on device `N` of `circ devices` (`None`: the first GPU, else
    /// the first device).
    OpenCl(Option<usize>),
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Interp => "interp",
            BackendKind::OpenCl(_) => "opencl",
        }
    }
}

/// A graph ready to run on one backend: for the CPU backend, partitioned and compiled once.
pub enum Runner {
    Interp(Box<Graph>),
    Cpu(Box<Executor>),
    OpenCl(Box<ClExecutor>),
}

/// Why a run failed.
#[derive(Clone, Debug, PartialEq)]
pub enum RunError {
    Interp(InterpError),
    Backend(BackendError),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Interp(e) => e.fmt(f),
            RunError::Backend(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RunError {}

impl From<ExecError> for RunError {
    fn from(e: ExecError) -> RunError {
        match e {
            ExecError::Interp(e) => RunError::Interp(e),
            ExecError::Backend(e) => RunError::Backend(e),
        }
    }
}

impl From<ClError> for RunError {
    fn from(e: ClError) -> RunError {
        match e {
            ClError::Interp(e) => RunError::Interp(e),
            ClError::Backend(e) => RunError::Backend(e),
        }
    }
}

impl From<InterpError> for RunError {
    fn from(e: InterpError) -> RunError {
        RunError::Interp(e)
    }
}

impl Runner {
    /// Prepares `g` (verified) for `kind`: compiles it for the CPU backend.
    pub fn new(kind: BackendKind, g: &Graph) -> Result<Runner, BackendError> {
        Ok(match kind {
            BackendKind::Interp => Runner::Interp(Box::new(g.clone())),
            BackendKind::Cpu => Runner::Cpu(Box::new(Executor::new(g)?)),
            BackendKind::OpenCl(device) => Runner::OpenCl(Box::new(ClExecutor::new(g, device)?)),
        })
    }

    pub fn kind(&self) -> BackendKind {
        match self {
            Runner::Interp(_) => BackendKind::Interp,
            Runner::Cpu(_) => BackendKind::Cpu,
            Runner::OpenCl(_) => BackendKind::OpenCl(None),
        }
    }

    /// Runs the graph: `data` one per `g.data`, `params` one per `g.params`, `inputs` one per
    /// `g.inputs`.
    pub fn run(
        &mut self,
        data: &[HostTensor],
        params: &[Vec<f64>],
        inputs: &[Vec<f64>],
    ) -> Result<Outputs<f64>, RunError> {
        match self {
            Runner::Interp(g) => Ok(interp::run_with::<f64>(g, data, params, inputs)?),
            Runner::Cpu(exec) => {
                let out = exec.run(data, params, inputs)?;
                let entries = out
                    .iter()
                    .map(|(name, t)| {
                        let data = t.data.iter().map(|x| *x as f64).collect();
                        (name.to_string(), Tensor { shape: t.shape.clone(), data })
                    })
                    .collect();
                Ok(Outputs::from_entries(entries))
            }
            Runner::OpenCl(exec) => Ok(widen(exec.run(data, params, inputs)?)),
        }
    }

    /// Keeps every row of `data` on the backend where that saves writing each batch from the
    /// host (an OpenCL device, when the data fits); returns whether it does.
    pub fn keep_data(&mut self, data: &[HostTensor], params: &[Vec<f64>]) -> Result<bool, RunError> {
        match self {
            Runner::OpenCl(exec) => Ok(exec.keep_data(data, params)?),
            Runner::Interp(_) | Runner::Cpu(_) => Ok(false),
        }
    }

    /// [`Runner::run`] on rows `rows` (in that order) of `data`, the data given to
    /// [`Runner::keep_data`] if it kept it.
    pub fn run_rows(
        &mut self,
        data: &[HostTensor],
        rows: &[usize],
        params: &[Vec<f64>],
        inputs: &[Vec<f64>],
    ) -> Result<Outputs<f64>, RunError> {
        match self {
            Runner::OpenCl(exec) if exec.keeps_data() => Ok(widen(exec.run_rows(rows, params, inputs)?)),
            _ => self.run(&interp::bind::select(data, rows), params, inputs),
        }
    }

    /// Keeps training state on the backend between runs where it can (the CPU backend's
    /// [`Executor::carry`]): each named output becomes its leaf's value after every run whose
    /// loss is finite (written over it in place, or copied after the run), and later runs use it
    /// instead of the host's value. Returns whether it does; the
    /// interpreter does not (the caller feeds every value each run).
    pub fn carry(&mut self, links: &[(&str, NodeId)]) -> Result<bool, BackendError> {
        match self {
            Runner::Interp(_) => Ok(false),
            Runner::Cpu(exec) => exec.carry(links).map(|_| true),
            Runner::OpenCl(exec) => exec.carry(links).map(|_| true),
        }
    }

    /// The carried values after the latest run, by output name (empty before any run); a
    /// device that cannot read them back is an error, never stale values.
    pub fn carried_values(&self) -> Result<Vec<(String, Vec<f64>)>, RunError> {
        let widen = |v: Vec<(String, Vec<f32>)>| {
            v.into_iter().map(|(n, v)| (n, v.into_iter().map(f64::from).collect())).collect()
        };
        match self {
            Runner::Interp(_) => Ok(Vec::new()),
            Runner::Cpu(exec) => Ok(widen(exec.carried_values())),
            Runner::OpenCl(exec) => Ok(widen(exec.carried_values().map_err(RunError::Backend)?)),
        }
    }

    /// The first node whose value is not finite on these inputs, found by the reference
    /// interpreter in the backend's precision (where a NaN started, for the error message).
    pub fn first_non_finite(
        &self,
        g: &Graph,
        data: &[HostTensor],
        params: &[Vec<f64>],
        inputs: &[Vec<f64>],
    ) -> Result<Option<NodeId>, InterpError> {
        Ok(match self {
            Runner::Interp(_) => interp::run_all_with::<f64>(g, data, params, inputs)?.first_non_finite(),
            Runner::Cpu(_) | Runner::OpenCl(_) => {
                interp::run_all_with::<f32>(g, data, params, inputs)?.first_non_finite()
            }
        })
    }
}

/// A device's `f32` outputs as the host's `f64` ones.
fn widen(out: Vec<(String, Tensor<f32>)>) -> Outputs<f64> {
    Outputs::from_entries(
        out.into_iter()
            .map(|(name, t)| (name, Tensor { shape: t.shape, data: t.data.iter().map(|x| *x as f64).collect() }))
            .collect(),
    )
}

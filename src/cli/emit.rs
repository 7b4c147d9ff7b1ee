//! `circ emit`: every kernel of a model's graph, in execution order, each headed with the graph
//! nodes and source lines it computes. Elementwise kernels show their Cranelift IR (or machine
//! code with `--asm`); kernels the Cranelift backend cannot generate yet say so.

use super::{err, out};
use circ::backend::cpu::{self, Options};
use circ::kernel::{self, KernelKind};
use circ::passes::fusion::FusionGroup;
use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Target {
    /// Cranelift IR for the CPU.
    Clif,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Which {
    /// The forward pass and its loss.
    Forward,
    /// The forward pass and the gradient of every parameter.
    Gradient,
    /// One training step: forward, gradient (and curvature where needed), updates.
    Step,
}

pub fn emit(file: &Path, which: Which, asm: bool, color: bool) -> ExitCode {
    let checked = match crate::load(file, color) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let opts = Options::default();
    for model in &checked.models {
        let g = match which {
            Which::Forward => {
                circ::driver::differentiated(&circ::ir::lower::lower(model, 0), circ::driver::Derivatives::None)
            }
            Which::Gradient => {
                circ::driver::differentiated(&circ::ir::lower::lower(model, 0), circ::driver::Derivatives::Gradient)
            }
            Which::Step => {
                let default = model.train.optimizer.clone().unwrap_or_else(|| {
                    circ::driver::parse_update_rule(super::train::DEFAULT_OPTIMIZER).expect("the default rule parses")
                });
                circ::train::step::build(model, 0, &default).graph
            }
        };
        let p = kernel::partition(&g);
        let mut s = format!("; model {}: {} kernels\n", model.name, p.kernels.len());
        for (k, kern) in p.kernels.iter().enumerate() {
            let nodes: Vec<String> = kern.nodes.iter().map(|n| format!("{n} {}", g.node(*n).op.name())).collect();
            let _ = writeln!(s, "\n; ---- kernel {k}: {:?} ({})", kern.kind, nodes.join(", "));
            if kern.kind != KernelKind::Elementwise {
                let mut seen = Vec::new();
                for span in &kern.spans {
                    let loc = checked.program.sources.location(*span).to_string();
                    if !seen.contains(&loc) {
                        let _ = writeln!(s, ";   from {loc}");
                        seen.push(loc);
                    }
                }
                let _ = writeln!(s, ";   not generated yet: runs on the reference implementation");
                continue;
            }
            let group = FusionGroup {
                nodes: kern.nodes.clone(),
                shape: kern.space.clone(),
                epilogue: kern.reduction,
                inputs: kern.inputs.clone(),
                outputs: kern.outputs.clone(),
            };
            let text = if asm {
                cpu::asm_text(&g, &group, &opts)
            } else {
                cpu::clif_text(&g, &group, Some(&checked.program.sources), &opts)
            };
            match text {
                Ok(t) => s.push_str(&t),
                Err(e) => {
                    err(&format!("error: kernel {k}: {e}\n"));
                    return ExitCode::from(1);
                }
            }
        }
        out(&s);
    }
    ExitCode::SUCCESS
}

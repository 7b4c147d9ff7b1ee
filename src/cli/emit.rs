//! `circ emit`: every kernel of a model's graph, in execution order, each headed with the graph
//! nodes and source lines it computes, as the CPU executor runs it: compiled loops (elementwise
//! kernels, reductions, product epilogues; logsumexp, copies, one-hot, kmax) show their Cranelift
//! IR (or machine code with `--asm`), products say how they run, kernels not generated yet say so.

use super::{err, out, Kind};
use circ::backend::cpu::executor::{Executor, Rendering};
use circ::backend::cpu::{self, Options};
use circ::ir::{Graph, NodeId};
use circ::kernel::Kernel;
use circ::source::SourceMap;
use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Target {
    /// Cranelift IR for the CPU.
    Clif,
    /// OpenCL C for the OpenCL backend (needs no device).
    Opencl,
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

/// The graph `which` of `model`.
fn graph_of(model: &circ::check::checked::CheckedModel, which: Which) -> Graph {
    match which {
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
    }
}

/// Every kernel of every model as OpenCL C, headed with its graph nodes and source lines; the
/// program's prelude first.
pub fn emit_opencl(file: &Path, which: Which, color: bool) -> ExitCode {
    let checked = match crate::load(file, color) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut s = String::from(circ::backend::opencl::source::PRELUDE);
    for model in &checked.models {
        let g = graph_of(model, which);
        let p = circ::kernel::partition(&g);
        let (rendered, _) =
            circ::backend::opencl::executor::render_program(&g, &p, circ::backend::opencl::matmul::Style::Tiled);
        let _ = writeln!(s, "\n// model {}: {} kernels", model.name, p.kernels.len());
        for v in p.views.iter().filter(|v| v.transposed) {
            let _ = writeln!(
                s,
                "// {} = transpose of {}: read by its products with swapped strides, never copied",
                v.node, v.base
            );
        }
        for (k, (kern, r)) in p.kernels.iter().zip(&rendered).enumerate() {
            let nodes: Vec<String> = kern.nodes.iter().map(|n| format!("{n} {}", g.node(*n).op.name())).collect();
            let _ = writeln!(s, "\n// ---- kernel {k}: {} ({})", kern.kind.name(), nodes.join(", "));
            let mut lines = String::new();
            sources(&mut lines, kern, &checked.program.sources);
            s.push_str(&lines.replace(";   from", "//   from"));
            match r {
                Some(r) => {
                    let buffers: Vec<String> = r
                        .buffers
                        .iter()
                        .map(|b| format!("b{} = {b}", r.buffers.iter().position(|x| x == b).unwrap_or(0)))
                        .collect();
                    let _ = writeln!(s, "//   buffers: {}", buffers.join(", "));
                    if kern.kind == circ::kernel::KernelKind::MatMul {
                        let w = circ::backend::opencl::matmul::WIDE;
                        let _ = writeln!(
                            s,
                            "//   on a GPU, a launch with at least one {t}×{t} tile per compute unit runs {}_wide: \
                             this kernel with {t}×{t} tiles and {b}×{b} accumulators per work-item",
                            r.name,
                            t = w.tile,
                            b = w.block
                        );
                    }
                    s.push_str(&r.source);
                }
                None => {
                    let _ = writeln!(s, "//   runs on the host with the interpreter's f32 kernel (not rendered yet)");
                }
            }
        }
    }
    out(&s);
    ExitCode::SUCCESS
}

pub fn emit(file: &Path, which: Which, asm: bool, color: bool) -> ExitCode {
    let checked = match crate::load(file, color) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let opts = Options::default();
    for model in &checked.models {
        let g = graph_of(model, which);
        let exec = match Executor::with_options(&g, &opts) {
            Ok(e) => e,
            Err(e) => {
                err(&format!("error: model {}: {e}\n", model.name));
                return super::exit(Kind::Input);
            }
        };
        let p = exec.partition();
        let mut s = format!("; model {}: {} kernels\n", model.name, p.kernels.len());
        for v in p.views.iter().filter(|v| v.transposed) {
            let _ = writeln!(
                s,
                "; {} = transpose of {}: read by its products with swapped strides, never copied",
                v.node, v.base
            );
        }
        for (k, kern) in p.kernels.iter().enumerate() {
            let nodes: Vec<String> = kern.nodes.iter().map(|n| format!("{n} {}", g.node(*n).op.name())).collect();
            let _ = writeln!(s, "\n; ---- kernel {k}: {} ({})", kern.kind.name(), nodes.join(", "));
            let group = match exec.rendering(k) {
                Rendering::Compiled(group) => group,
                Rendering::MatMul { epilogue } => {
                    sources(&mut s, kern, &checked.program.sources);
                    let m = kern.nodes[0];
                    let operands: Vec<String> = g
                        .operands(m)
                        .iter()
                        .map(|x| {
                            let t = if p.views.iter().any(|v| v.node == *x && v.transposed) {
                                " (transposed view)"
                            } else {
                                ""
                            };
                            format!("{x} {}{t}", shape(&g, *x))
                        })
                        .collect();
                    let _ = writeln!(
                        s,
                        ";   {m} = {}: the gemm crate's packed, cache-blocked f32 micro-kernels (AVX2/AVX-512 FMA), threaded for large products",
                        operands.join(" · ")
                    );
                    match epilogue {
                        Some(group) => {
                            let _ = writeln!(s, ";   then the epilogue, one compiled loop over the product:");
                            group
                        }
                        None if kern.nodes.len() > 1 => {
                            let _ = writeln!(
                                s,
                                ";   then the epilogue on the interpreter's f32 kernels (not generated yet)"
                            );
                            continue;
                        }
                        None => continue,
                    }
                }
                Rendering::Generated { node, .. } => {
                    let clif = cpu::special::clif_text(&g, node, Some(&checked.program.sources), &opts);
                    let text = if asm { with_heading(clif, cpu::special::asm_text(&g, node, &opts)) } else { clif };
                    match text {
                        Ok(t) => s.push_str(&t),
                        Err(e) => {
                            err(&format!("error: kernel {k}: {e}\n"));
                            return super::exit(Kind::Input);
                        }
                    }
                    continue;
                }
                Rendering::Interpreted => {
                    sources(&mut s, kern, &checked.program.sources);
                    let _ = writeln!(s, ";   runs on the interpreter's f32 kernel (not generated yet)");
                    continue;
                }
            };
            let clif = cpu::clif_text(&g, group, Some(&checked.program.sources), &opts);
            let text = if asm { with_heading(clif, cpu::asm_text(&g, group, &opts)) } else { clif };
            match text {
                Ok(t) => s.push_str(&t),
                Err(e) => {
                    err(&format!("error: kernel {k}: {e}\n"));
                    return super::exit(Kind::Input);
                }
            }
        }
        out(&s);
    }
    ExitCode::SUCCESS
}

/// The machine code `asm` under the comment heading of the IR text `clif` (its buffers, nodes
/// and source lines), which the machine code alone does not say.
fn with_heading(
    clif: Result<String, cpu::BackendError>,
    asm: Result<String, cpu::BackendError>,
) -> Result<String, cpu::BackendError> {
    let heading: String = clif?.lines().take_while(|l| l.starts_with(';')).map(|l| format!("{l}\n")).collect();
    Ok(heading + &asm?)
}

/// The source lines a kernel computes, one comment line each.
fn sources(s: &mut String, kern: &Kernel, map: &SourceMap) {
    let mut seen = Vec::new();
    for span in &kern.spans {
        let loc = circ::ir::print::location(map, *span);
        if !seen.contains(&loc) {
            let _ = writeln!(s, ";   from {loc}");
            seen.push(loc);
        }
    }
}

fn shape(g: &Graph, n: NodeId) -> String {
    let dims: Vec<String> = g.node(n).shape.iter().map(|d| circ::check::types::ShowDim(*d, g).to_string()).collect();
    format!("[{}]", dims.join(", "))
}

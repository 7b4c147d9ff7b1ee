//! Commands of the `circ` binary that need more than a few lines of printing.

pub mod emit;
pub mod predict;
pub mod train;

/// Writes to stdout, ignoring a closed pipe.
pub fn out(s: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(s.as_bytes());
}

/// Writes to stderr, ignoring errors.
pub fn err(s: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(s.as_bytes());
}

/// `--backend`: what runs the graphs of `circ train` and `circ run`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Backend {
    /// The Cranelift CPU backend: JIT compiled kernels in f32.
    Cpu,
    /// The reference interpreter, in f64.
    Interp,
    /// OpenCL kernels in f32 on a GPU or CPU device (`circ devices`; `--device N`).
    Opencl,
}

impl Backend {
    /// The backend, on OpenCL device `device`.
    pub fn kind(self, device: Option<usize>) -> circ::backend::BackendKind {
        match self {
            Backend::Cpu => circ::backend::BackendKind::Cpu,
            Backend::Interp => circ::backend::BackendKind::Interp,
            Backend::Opencl => circ::backend::BackendKind::OpenCl(device),
        }
    }
}

/// `circ devices`: every OpenCL device, numbered as `--device` takes them. Exit 2 when there is
/// no platform.
pub fn devices() -> std::process::ExitCode {
    use std::fmt::Write;
    match circ_runtime::opencl::devices() {
        Ok(list) => {
            let mut s = String::new();
            for (i, d) in list.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "{i}: {} ({}, {})\n   platform {}; {}; driver {}\n   {} compute units, {:.1} GiB global memory ({:.1} GiB per buffer), {} KiB local, work-groups up to {}",
                    d.name,
                    d.kind,
                    d.vendor,
                    d.platform,
                    d.version,
                    d.driver,
                    d.compute_units,
                    d.global_mem as f64 / (1u64 << 30) as f64,
                    d.max_alloc as f64 / (1u64 << 30) as f64,
                    d.local_mem / 1024,
                    d.max_work_group
                );
            }
            out(&s);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            err(&format!("error: {e}\n"));
            std::process::ExitCode::from(2)
        }
    }
}

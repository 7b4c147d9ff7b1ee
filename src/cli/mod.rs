//! Commands of the `circ` binary that need more than a few lines of printing.

pub mod emit;
pub mod predict;
pub mod train;

pub use circ::error::{Error, Kind};

/// `--threads`, on the commands that run a graph (`eval`, `grad`, `train`, `run`).
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Threads {
    /// Threads the CPU backend runs a graph on, at most (1: no helper thread; fewer while other
    /// processes keep the CPUs busy). Default: `CIRC_THREADS`, else every core the process may
    /// use (its CPU affinity and cgroup quota).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

impl Threads {
    /// Whether `--threads` was given.
    pub fn given(self) -> bool {
        self.threads.is_some()
    }

    /// Sets the thread count of every CPU executor this process builds later.
    pub fn apply(self) {
        if let Some(n) = self.threads {
            circ::backend::cpu::set_threads(usize::from(n));
        }
    }
}

/// The exit status of a command that failed this way: every failure goes through here, and
/// the numbers live in [`Kind::code`] (the rule is in `circ --help`).
pub fn exit(kind: Kind) -> std::process::ExitCode {
    std::process::ExitCode::from(kind.code())
}

/// Prints `error: <e>` and gives the exit status of its kind.
pub fn fail(e: &Error) -> std::process::ExitCode {
    err(&format!("error: {e}\n"));
    exit(e.kind)
}

/// The first error writing to standard output, reported by [`finish`].
static STDOUT_ERROR: std::sync::Mutex<Option<std::io::Error>> = std::sync::Mutex::new(None);

/// Writes to stdout. A failure (a full device, a closed pipe) is remembered: [`finish`] reports it
/// and makes the exit status non-zero.
pub fn out(s: &str) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_all(s.as_bytes()) {
        stdout_failed(e);
    }
}

/// Remembers a failed write to standard output (the first one).
pub fn stdout_failed(e: std::io::Error) {
    let mut first = STDOUT_ERROR.lock().unwrap_or_else(|p| p.into_inner());
    first.get_or_insert(e);
}

/// The exit status of a command that would exit with `code`: standard output is flushed, and if
/// any write to it failed the reason is printed and the status is 2 (unless already a failure).
pub fn finish(code: std::process::ExitCode) -> std::process::ExitCode {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().flush() {
        stdout_failed(e);
    }
    let failed = STDOUT_ERROR.lock().unwrap_or_else(|p| p.into_inner()).take();
    match failed {
        Some(e) => {
            err(&format!("error: cannot write to standard output: {e}\n"));
            if code == std::process::ExitCode::SUCCESS {
                exit(Kind::Usage)
            } else {
                code
            }
        }
        None => code,
    }
}

/// Reports a failed output and gives exit status 2. A failure on standard output (`-`) is left to
/// [`finish`], which reports it once.
pub fn output_failed(e: circ_runtime::files::output::OutputError) -> std::process::ExitCode {
    if circ_runtime::files::output::is_stdout(&e.path) {
        stdout_failed(e.source);
    } else {
        err(&format!("error: {e}\n"));
    }
    exit(Kind::Usage)
}

/// The `.npy` files of a data directory (inputs too); nothing for a file.
pub fn npy_files(data: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(data) else { return Vec::new() };
    entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "npy")).collect()
}

/// Refuses (exit status 2, nothing written) an output that is the same file as an input or as
/// another output; see [`circ_runtime::files::output::check_distinct`].
pub fn distinct(
    inputs: &[(&str, &std::path::Path)],
    outputs: &[(&str, &std::path::Path)],
) -> Result<(), std::process::ExitCode> {
    circ_runtime::files::output::check_distinct(inputs, outputs).map_err(|e| {
        err(&format!("error: {e}\n"));
        exit(Kind::Usage)
    })
}

/// Refuses (exit status 2) an output that cannot be written, before any work is done: a missing
/// directory found after an hour of training would lose the run.
pub fn writable(outputs: &[(&str, &std::path::Path)]) -> Result<(), std::process::ExitCode> {
    for (what, path) in outputs {
        if let Err(e) = circ_runtime::files::output::check_writable(path) {
            err(&format!("error: {what}: {e}\n"));
            return Err(exit(Kind::Usage));
        }
    }
    Ok(())
}

/// A computed value as printed: the shortest digits that read back as the same value in the
/// precision it was computed in (f32 on `f32` backends: `0.1`, not `0.10000000149011612`), and
/// zero without a sign (`0`, never `-0`).
pub fn number(v: f64, f32: bool) -> String {
    if v == 0.0 {
        "0".to_string()
    } else if f32 {
        format!("{}", v as f32)
    } else {
        format!("{v}")
    }
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
            exit(Kind::Usage)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::number;

    #[test]
    fn numbers_are_printed_with_the_digits_of_their_precision() {
        assert_eq!(number(0.1f32 as f64, true), "0.1");
        assert_eq!(number(0.1f32 as f64, false), "0.10000000149011612");
        assert_eq!(number(0.1, false), "0.1");
        assert_eq!(number(-0.0, true), "0");
        assert_eq!(number(-0.0, false), "0");
        assert_eq!(number(-2.5, true), "-2.5");
        assert_eq!(number(f64::NAN, true), "NaN");
        assert_eq!(number(f64::INFINITY, false), "inf");
    }
}

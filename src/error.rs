//! Why a command failed, as its exit status tells: the one rule of every `circ` command.
//! 0: done. 1: the input is wrong (a `.circ` file with errors, data or parameter values the
//! model refuses, a training run that is not finite). 2: the command could not be carried out
//! as asked (bad flags, a file that cannot be read or written, no device).

use std::fmt;

/// The two ways a command fails; [`Kind::code`] is their exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The input is wrong: fixing the model, the data or the parameters fixes the run.
    Input,
    /// Usage or I/O: fixing the command line, the file system or the machine fixes the run.
    Usage,
}

impl Kind {
    /// The exit status of a command that fails this way: the one place the numbers live.
    pub const fn code(self) -> u8 {
        match self {
            Kind::Input => 1,
            Kind::Usage => 2,
        }
    }
}

/// A failure with its message (printed after `error: `) and its [`Kind`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
}

impl Error {
    pub fn input(message: impl Into<String>) -> Error {
        Error { kind: Kind::Input, message: message.into() }
    }

    pub fn usage(message: impl Into<String>) -> Error {
        Error { kind: Kind::Usage, message: message.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Messages about values (a shape, a label, a parameter) are about the input.
impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::input(message)
    }
}

impl From<circ_runtime::files::csv::CsvError> for Error {
    fn from(e: circ_runtime::files::csv::CsvError) -> Error {
        let kind =
            if matches!(e.kind, circ_runtime::files::csv::CsvErrorKind::Io(_)) { Kind::Usage } else { Kind::Input };
        Error { kind, message: e.to_string() }
    }
}

impl From<circ_runtime::files::npy::NpyError> for Error {
    fn from(e: circ_runtime::files::npy::NpyError) -> Error {
        let kind =
            if matches!(e.kind(), circ_runtime::files::npy::ErrorKind::Io { .. }) { Kind::Usage } else { Kind::Input };
        Error { kind, message: e.to_string() }
    }
}

impl From<circ_runtime::files::safetensors::SafetensorsError> for Error {
    fn from(e: circ_runtime::files::safetensors::SafetensorsError) -> Error {
        let io = matches!(e.kind(), circ_runtime::files::safetensors::ErrorKind::Io { .. });
        Error { kind: if io { Kind::Usage } else { Kind::Input }, message: e.to_string() }
    }
}

//! What can go wrong when the interpreter runs a graph: mostly inputs that do not fit the model,
//! reported with the names the user wrote.

use crate::ir::NodeId;
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub enum InterpError {
    /// Not one data tensor per `Graph::data` entry.
    DataCount { expected: Vec<String>, got: usize },
    /// Not one value vector per `Graph::params` entry.
    ParamCount { expected: Vec<String>, got: usize },
    /// A host tensor whose values do not fill its own shape.
    DataValues { name: String, shape: Vec<usize>, got: usize },
    /// A datum's rank or a known size differs from the declaration (`expected` as declared).
    DataShape { name: String, expected: String, got: Vec<usize> },
    /// One symbolic size bound to two values by two data inputs (or two axes of one).
    SymConflict { sym: String, first: (String, usize), second: (String, usize) },
    /// A value of integer data that is not an integer.
    NotInteger { name: String, index: Vec<usize>, value: f64 },
    /// A parameter given the wrong number of values.
    ParamValues { name: String, shape: Vec<usize>, got: usize },
    /// A node's shape names a size that no data input fixes.
    UnboundSym { sym: String, node: NodeId },
    /// A node whose operands do not fit its op at run time (e.g. a slice past the end of an axis
    /// of symbolic size), or a graph that is not verified.
    Node { node: NodeId, op: String, label: Option<String>, message: String },
    /// The graph as a whole cannot be run (a cycle).
    Graph(String),
}

fn names(ns: &[String]) -> String {
    ns.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub(crate) fn show_shape(s: &[usize]) -> String {
    format!("[{}]", s.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
}

impl fmt::Display for InterpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InterpError::DataCount { expected, got } => {
                let what = plural(expected.len(), "data input", "data inputs");
                let list = if expected.is_empty() { String::new() } else { format!(" ({})", names(expected)) };
                write!(f, "expected {what}{list}, got {got}")
            }
            InterpError::ParamCount { expected, got } => {
                let what = plural(expected.len(), "parameter", "parameters");
                let list = if expected.is_empty() { String::new() } else { format!(" ({})", names(expected)) };
                write!(f, "expected {what}{list}, got {got}")
            }
            InterpError::DataValues { name, shape, got } => {
                let n: usize = shape.iter().product();
                write!(
                    f,
                    "data `{name}`: shape {} needs {}, got {got}",
                    show_shape(shape),
                    plural(n, "value", "values")
                )
            }
            InterpError::DataShape { name, expected, got } => {
                write!(f, "data `{name}`: expected {expected}, got {}", show_shape(got))
            }
            InterpError::SymConflict { sym, first, second } => {
                write!(f, "`{sym}` is {} in `{}` but {} in `{}`", first.1, first.0, second.1, second.0)
            }
            InterpError::NotInteger { name, index, value } => {
                write!(f, "data `{name}`: value {value} at {} is not an integer", show_shape(index))
            }
            InterpError::ParamValues { name, shape, got } => {
                let n: usize = shape.iter().product();
                write!(
                    f,
                    "parameter `{name}`: shape {} needs {}, got {got}",
                    show_shape(shape),
                    plural(n, "value", "values")
                )
            }
            InterpError::UnboundSym { sym, node } => {
                write!(f, "the size `{sym}` of {node} is not fixed by any data input")
            }
            InterpError::Node { node, op, label, message } => {
                write!(f, "{node} ({op}")?;
                if let Some(l) = label {
                    write!(f, ", `{l}`")?;
                }
                write!(f, "): {message}")
            }
            InterpError::Graph(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for InterpError {}

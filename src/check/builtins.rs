//! The built-in functions of the language and how their arguments are named. The shape rule of
//! each lives in `expr.rs`, next to the code that builds its node.

use super::checked::{ReduceFn, UnaryFn};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Builtin {
    Unary(UnaryFn),
    Pow,
    Reduce(ReduceFn),
    Softmax,
    LogSumExp,
    Reshape,
    Transpose,
    Concat,
    KMax,
    Shrink,
    OneHot,
}

/// Every built-in: its name, its argument names and how many of them are required.
pub const BUILTINS: &[(&str, Builtin, &[&str], usize)] = &[
    ("exp", Builtin::Unary(UnaryFn::Exp), &["x"], 1),
    ("log", Builtin::Unary(UnaryFn::Log), &["x"], 1),
    ("relu", Builtin::Unary(UnaryFn::Relu), &["x"], 1),
    ("sigmoid", Builtin::Unary(UnaryFn::Sigmoid), &["x"], 1),
    ("tanh", Builtin::Unary(UnaryFn::Tanh), &["x"], 1),
    ("softplus", Builtin::Unary(UnaryFn::Softplus), &["x"], 1),
    ("sqrt", Builtin::Unary(UnaryFn::Sqrt), &["x"], 1),
    ("abs", Builtin::Unary(UnaryFn::Abs), &["x"], 1),
    ("pow", Builtin::Pow, &["x", "p"], 2),
    ("sum", Builtin::Reduce(ReduceFn::Sum), &["x", "axis", "keepdims"], 1),
    ("mean", Builtin::Reduce(ReduceFn::Mean), &["x", "axis", "keepdims"], 1),
    ("max", Builtin::Reduce(ReduceFn::Max), &["x", "axis", "keepdims"], 1),
    ("softmax", Builtin::Softmax, &["x", "axis"], 1),
    ("logsumexp", Builtin::LogSumExp, &["x", "axis", "keepdims"], 1),
    ("reshape", Builtin::Reshape, &["x", "shape"], 2),
    ("transpose", Builtin::Transpose, &["x", "axes"], 1),
    // concat takes any number of tensors, then `axis`; its argument list is bound by hand.
    ("concat", Builtin::Concat, &["axis"], 0),
    ("kmax", Builtin::KMax, &["x", "k"], 2),
    ("shrink", Builtin::Shrink, &["x", "theta"], 2),
    ("one_hot", Builtin::OneHot, &["x", "classes"], 2),
];

pub fn lookup(name: &str) -> Option<(Builtin, &'static [&'static str], usize)> {
    BUILTINS.iter().find(|(n, ..)| *n == name).map(|(_, b, a, r)| (*b, *a, *r))
}

pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(n, ..)| *n)
}

/// Distributions, usable after `~`, with their argument names.
pub const DISTRIBUTIONS: &[(&str, &[&str])] = &[
    ("normal", &["mu", "sigma"]),
    ("laplace", &["mu", "b"]),
    ("lognormal", &["mu", "sigma"]),
    ("uniform", &["low", "high"]),
    ("flat", &[]),
    ("categorical", &["logits"]),
    ("bernoulli", &["logits"]),
];

pub fn distribution(name: &str) -> Option<&'static [&'static str]> {
    DISTRIBUTIONS.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

/// Update rules with their hyperparameters and defaults.
pub const UPDATE_RULES: &[(&str, &[(&str, f64)])] = &[
    ("sgd", &[("lr", 0.01), ("momentum", 0.0)]),
    ("adam", &[("lr", 0.001), ("beta1", 0.9), ("beta2", 0.999), ("eps", 1e-8)]),
    ("egd", &[("lr", 0.01)]),
    // `clip` is a flag (`true` or `false`): cap the step at the minimum of the loss's quadratic
    // model along it, and at a change of the predictions of `trust` per observation
    // (docs/training.md).
    ("newton", &[("lr", 1.0), ("damping", 1e-4), ("clip", 1.0), ("trust", 1.0)]),
    ("bayes", &[("lr", 1.0), ("decay", 0.0), ("clip", 1.0), ("trust", 1.0)]),
];

/// Settings of a `train { … }` block.
pub const TRAIN_SETTINGS: &[&str] = &["optimizer", "epochs", "batch", "valid", "seed"];

/// Names that are values everywhere.
pub const CONSTANTS: &[(&str, f64)] = &[("pi", std::f64::consts::PI), ("true", 1.0), ("false", 0.0)];

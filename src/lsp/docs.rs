//! One line of documentation for every name the language gives meaning to: built-in functions,
//! distributions, update rules, `train` settings, constants and `csv`. A test keeps this table
//! in step with the checker's tables (`check/builtins.rs`); docs/language.md has the details.

/// (name, how it is written, what it does).
pub const DOCS: &[(&str, &str, &str)] = &[
    // Built-in functions (§14).
    ("exp", "exp(x)", "eˣ, elementwise; same shape as `x`."),
    ("log", "log(x)", "Natural logarithm, elementwise; same shape as `x`."),
    ("relu", "relu(x)", "max(x, 0), elementwise; same shape as `x`."),
    ("sigmoid", "sigmoid(x)", "1 / (1 + e⁻ˣ), elementwise; same shape as `x`."),
    ("tanh", "tanh(x)", "Hyperbolic tangent, elementwise; same shape as `x`."),
    ("softplus", "softplus(x)", "log(1 + eˣ), elementwise; same shape as `x`."),
    ("sqrt", "sqrt(x)", "Square root, elementwise; same shape as `x`."),
    ("abs", "abs(x)", "Absolute value, elementwise; same shape as `x`."),
    ("pow", "pow(x, p)", "xᵖ, with `x` and `p` broadcast against each other."),
    (
        "sum",
        "sum(x, axis, keepdims)",
        "Sum over `axis` (one axis or a list; default: all axes), dropped unless `keepdims = true`.",
    ),
    (
        "mean",
        "mean(x, axis, keepdims)",
        "Mean over `axis` (one axis or a list; default: all axes), dropped unless `keepdims = true`.",
    ),
    (
        "max",
        "max(x, axis, keepdims)",
        "Maximum over `axis` (one axis or a list; default: all axes), dropped unless `keepdims = true`.",
    ),
    ("softmax", "softmax(x, axis)", "Normalized exponentials along `axis` (default -1); same shape as `x`."),
    ("logsumexp", "logsumexp(x, axis, keepdims)", "log Σ eˣ along one `axis` (default -1), computed stably."),
    ("reshape", "reshape(x, shape)", "The same elements in the shape `shape` (a list; one size may be -1)."),
    ("transpose", "transpose(x, axes)", "Axes permuted by `axes` (default: all axes reversed)."),
    ("concat", "concat(a, b, …, axis = -1)", "Tensors joined along `axis`; sizes add there, other axes must agree."),
    ("kmax", "kmax(x, k)", "Keeps the `k` largest entries of each row (last axis), zeroes the rest."),
    ("shrink", "shrink(x, theta)", "Soft threshold sign(x)·max(|x| − θ, 0), `theta` broadcast to `x`."),
    ("one_hot", "one_hot(x, classes)", "An `int` tensor as real one-hot vectors: a new last axis of size `classes`."),
    // Distributions (§15).
    ("normal", "normal(mu, sigma)", "Normal distribution: mean `mu`, standard deviation `sigma > 0`."),
    ("laplace", "laplace(mu, b)", "Laplace distribution: location `mu`, scale `b > 0`."),
    ("lognormal", "lognormal(mu, sigma)", "Log-normal: `log x` is normal(mu, sigma); values are positive."),
    ("uniform", "uniform(low, high)", "Uniform between `low` and `high` (low < high)."),
    ("flat", "flat", "Improper flat prior: adds nothing to the loss (a parameter's default)."),
    ("categorical", "categorical(logits)", "Likelihood of `int` class labels given unnormalized class scores."),
    ("bernoulli", "bernoulli(logits)", "Likelihood of 0/1 data given log-odds."),
    // Update rules (§16).
    ("sgd", "sgd(lr = 0.01, momentum = 0)", "Stochastic gradient descent w ← w − lr·g, with heavy-ball momentum."),
    ("adam", "adam(lr = 0.001, beta1 = 0.9, beta2 = 0.999, eps = 1e-8)", "Adam."),
    ("egd", "egd(lr = 0.01)", "Exponentiated gradient w ← w·exp(−lr·g) (EG± for weights of either sign)."),
    (
        "newton",
        "newton(lr = 1, damping = 1e-4, clip = 1, trust = 1)",
        "Diagonal Newton step −lr·g / (h + damping·mean(h)), h from bprop2 curvature; with clip, at most to the minimum of the loss's quadratic model along it, and by `trust` per observation.",
    ),
    (
        "bayes",
        "bayes(lr = 1, decay = 0, clip = 1, trust = 1)",
        "Bayesian learning rate: step lr·g/P with a per-weight precision P from the prior; with clip, at most to the minimum of the loss's quadratic model along it, and by `trust` per observation.",
    ),
    // `train { … }` settings (§17).
    ("optimizer", "optimizer = RULE", "The update rule of every parameter without its own `update`."),
    ("epochs", "epochs = n", "Passes over the training rows."),
    ("batch", "batch = n", "Rows per training step."),
    ("valid", "valid = f", "Fraction of rows held out for validation, in [0, 1)."),
    ("seed", "seed = n", "Seed of the initial draws, the shuffling and the validation split."),
    // Constants and the data source.
    ("pi", "pi", "The constant π."),
    ("true", "true", "The number 1."),
    ("false", "false", "The number 0."),
    ("csv", "csv(\"column\", …) or csv(\"first\" .. \"last\")", "The CSV columns a `data` declaration reads."),
];

/// The signature and documentation line of a language name.
pub fn lookup(name: &str) -> Option<(&'static str, &'static str)> {
    DOCS.iter().find(|(n, ..)| *n == name).map(|(_, sig, doc)| (*sig, *doc))
}

#[cfg(test)]
mod tests {
    use crate::check::builtins;

    /// Every name the checker knows has a line here, and nothing else does.
    #[test]
    fn every_name_of_the_language_is_documented() {
        let mut known: Vec<&str> = builtins::names().collect();
        known.extend(builtins::DISTRIBUTIONS.iter().map(|(n, _)| *n));
        known.extend(builtins::UPDATE_RULES.iter().map(|(n, _)| *n));
        known.extend(builtins::TRAIN_SETTINGS.iter().copied());
        known.extend(builtins::CONSTANTS.iter().map(|(n, _)| *n));
        known.push("csv");
        for n in &known {
            assert!(super::lookup(n).is_some(), "`{n}` has no documentation line");
        }
        for (n, ..) in super::DOCS {
            assert!(known.contains(n), "`{n}` is documented but the checker does not know it");
        }
        assert_eq!(known.len(), super::DOCS.len(), "a name is documented twice");
    }

    /// The update rules' defaults shown are the checker's.
    #[test]
    fn update_rule_defaults_match_the_checker() {
        for (rule, hyper) in builtins::UPDATE_RULES {
            let (sig, _) = super::lookup(rule).unwrap();
            for (h, v) in *hyper {
                let shown = format!("{h} = {}", crate::check::signature::num(*v));
                assert!(sig.contains(&shown), "{sig} should show {shown}");
            }
        }
    }
}

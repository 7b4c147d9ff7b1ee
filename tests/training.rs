//! Training through the library API (`train::step::build`, `train::run::Trainer`, wired as
//! `circ train` wires them), each test a claim checked against an independent reference:
//!
//! * `experiments`: E1 (on `a·b·x` at three scales, gradient descent needs a learning rate per
//!   scale, diagonal Newton one setting), E3 (a normal prior is ridge regression: closed form), E4
//!   (L2 logistic regression: Newton's method in f64), E5 (an MLP reaches ≥ 97% on test digits
//!   over five splits, above logistic regression), E6 (a learned σ is calibrated on fresh
//!   points), E7 (sparse codes beat PCA with as many components: Jacobi eigenvalues), E8, E9, on
//!   the examples and the data of `data/`.
//! * `optimizers`: every update rule reaches the posterior mode of a small linear-Gaussian model,
//!   solved in closed form.
//! * `loop_checks`: resuming from a checkpoint is bit for bit, a non-finite loss names its node
//!   and source line, data that do not fit the model are refused before training.
//!
//! Helpers (model loading, trainers, generated data, f64 linear algebra) are in
//! `training/common.rs`. `-- --nocapture` prints the measured numbers.

#[path = "training/common.rs"]
mod common;
#[path = "training/experiments.rs"]
mod experiments;
#[path = "training/loop_checks.rs"]
mod loop_checks;
#[path = "training/optimizers.rs"]
mod optimizers;

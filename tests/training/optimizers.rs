//! Every update rule reaches the known optimum of a small convex problem: the posterior mode of a
//! linear-Gaussian model, y ~ normal(x @ w, σ) with w ~ normal(μ, s), which is the solution of
//! (XᵀX/σ² + I/s²) w = Xᵀy/σ² + μ/s², solved here in f64. Full batch, so each step sees the
//! exact loss and the rules converge to the mode rather than around it.

use crate::common::*;
use circ::train::run::Trainer;

const SIGMA: f64 = 0.5;
const ROWS: usize = 64;

/// 64 rows of three features (the third correlated with the first) and y = x·w* + 0.3·noise.
struct Problem {
    table: circ_runtime::files::csv::Table,
    x: Vec<[f64; 3]>,
    y: Vec<f64>,
}

fn problem(w_star: [f64; 3], seed: u64) -> Problem {
    let mut rng = Rng::new(seed);
    let (mut x, mut y, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROWS {
        let a = rng.range(-1.0, 1.0);
        let b = rng.range(-1.0, 1.0);
        let c = 0.5 * a + 0.5 * rng.range(-1.0, 1.0);
        let xi = [a, b, c];
        let yi = xi.iter().zip(&w_star).map(|(p, q)| p * q).sum::<f64>() + 0.3 * rng.normal();
        rows.push(vec![a, b, c, yi]);
        x.push(xi);
        y.push(yi);
    }
    let columns = ["x0", "x1", "x2", "y"].map(String::from);
    Problem { table: parse_table("linear.csv", &csv_text(&columns, &rows)), x, y }
}

impl Problem {
    /// The posterior mode under the prior normal(mu, s) on every weight.
    fn mode(&self, mu: f64, s: f64) -> Vec<f64> {
        let mut a = vec![vec![0.0; 3]; 3];
        let mut b = vec![0.0; 3];
        for (xi, yi) in self.x.iter().zip(&self.y) {
            for i in 0..3 {
                for j in 0..3 {
                    a[i][j] += xi[i] * xi[j] / (SIGMA * SIGMA);
                }
                b[i] += xi[i] * yi / (SIGMA * SIGMA);
            }
        }
        for i in 0..3 {
            a[i][i] += 1.0 / (s * s);
            b[i] += mu / (s * s);
        }
        solve(a, b)
    }

    /// The likelihood's curvature per weight: Σ xᵢⱼ² / σ².
    fn likelihood_curvature(&self) -> Vec<f64> {
        (0..3).map(|j| self.x.iter().map(|x| x[j] * x[j]).sum::<f64>() / (SIGMA * SIGMA)).collect()
    }
}

/// The model: `param w: [3] <decl> update <rule>`, full batch.
fn model(decl: &str, rule: &str, epochs: u64) -> circ::driver::Checked {
    let text = format!(
        "model linear {{\n    data x: [N, 3] = csv(\"x0\" .. \"x2\")\n    data y: [N]\n    param w: [3] {decl} update {rule}\n    y ~ normal(x @ w, {SIGMA})\n    train {{ epochs = {epochs}, seed = 0 }}\n}}\n"
    );
    source("linear.circ", &text)
}

/// A signed optimum (prior normal(0, 1), drawn start) and a positive one (prior normal(1, 1),
/// fixed positive start 0.5).
const SIGNED: ([f64; 3], &str, f64) = ([1.5, -2.0, 0.7], "~ normal(0, 1)", 0.0);
const POSITIVE: ([f64; 3], &str, f64) = ([0.5, 1.5, 0.8], "= 0.5 ~ normal(1, 1)", 1.0);

struct Outcome {
    w: Vec<f64>,
    mode: Vec<f64>,
    err: f64,
    state: Vec<String>,
    state_values: Vec<Vec<f64>>,
}

fn converge(case: ([f64; 3], &str, f64), rule: &str, epochs: u64) -> Outcome {
    let (w_star, decl, mu) = case;
    let p = problem(w_star, 11);
    let mode = p.mode(mu, 1.0);
    let checked = model(decl, rule, epochs);
    let setup = Setup::new(&checked, None, |_| {});
    let t = setup.train(&p.table).unwrap_or_else(|e| panic!("{rule}: {e}"));
    let w = t.param("w").to_vec();
    let err = rel_error(&w, &mode);
    println!("{rule} ({epochs} epochs, w {decl}): w = {w:?}, mode = {mode:?}, relative error {err:e}");
    Outcome { w, mode, err, state: setup.step.state.iter().map(|s| s.name.clone()).collect(), state_values: t.state }
}

#[test]
fn sgd_converges_to_the_posterior_mode() {
    let o = converge(SIGNED, "sgd(lr = 0.005)", 1000);
    assert!(o.state.is_empty(), "plain sgd keeps no state: {:?}", o.state);
    assert!(o.err < 1e-9, "sgd: relative error {:e}", o.err);
}

#[test]
fn sgd_with_momentum_converges_to_the_posterior_mode() {
    let o = converge(SIGNED, "sgd(lr = 0.001, momentum = 0.9)", 1000);
    assert_eq!(o.state, ["sgd.m.w"]);
    assert!(o.err < 1e-9, "sgd with momentum: relative error {:e}", o.err);
}

#[test]
fn adam_converges_to_the_posterior_mode() {
    let o = converge(SIGNED, "adam(lr = 0.01)", 3000);
    assert_eq!(o.state, ["adam.m.w", "adam.v.w"]);
    assert!(o.err < 1e-6, "adam: relative error {:e}", o.err);

    // Its first step moves every weight by lr (m̂ = g, v̂ = g² after bias correction).
    let p = problem(SIGNED.0, 11);
    let checked = model(SIGNED.1, "adam(lr = 0.01)", 1);
    let setup = Setup::new(&checked, None, |_| {});
    let data = setup.bind(&p.table).unwrap();
    let mut t: Trainer = setup.trainer(&data);
    let before = t.params[0].clone();
    t.run_epoch(&mut |_, _, _| {}).unwrap();
    for (a, b) in before.iter().zip(&t.params[0]) {
        assert!(
            ((a - b).abs() - 0.01).abs() < 1e-9,
            "adam's first step moved a weight from {a} to {b}, not by lr = 0.01"
        );
    }
}

#[test]
fn egd_converges_to_a_positive_optimum_multiplicatively() {
    let o = converge(POSITIVE, "egd(lr = 0.01)", 3000);
    assert!(o.mode.iter().all(|v| *v > 0.0), "the reference optimum should be positive: {:?}", o.mode);
    assert!(o.state.is_empty(), "a positive start trains by plain EG, without EG± halves: {:?}", o.state);
    assert!(o.err < 1e-9, "egd: relative error {:e}", o.err);
}

#[test]
fn egd_converges_to_a_signed_optimum_with_eg_pairs() {
    let o = converge(SIGNED, "egd(lr = 0.01)", 3000);
    assert!(o.mode.iter().any(|v| *v < 0.0), "the reference optimum should have a negative weight: {:?}", o.mode);
    assert_eq!(o.state, ["egd.pos.w", "egd.neg.w"], "a signed weight trains as an EG± pair");
    assert!(o.err < 1e-9, "EG±: relative error {:e}", o.err);
    let (pos, neg) = (&o.state_values[0], &o.state_values[1]);
    for j in 0..3 {
        assert!(pos[j] > 0.0 && neg[j] > 0.0, "EG± halves stay positive: {pos:?} {neg:?}");
        assert!((pos[j] - neg[j] - o.w[j]).abs() <= 1e-12 * o.w[j].abs().max(1.0), "w = w⁺ − w⁻");
    }
}

#[test]
fn newton_converges_to_the_posterior_mode() {
    let o = converge(SIGNED, "newton(lr = 0.5)", 200);
    assert!(o.state.is_empty());
    assert!(o.err < 1e-9, "newton: relative error {:e}", o.err);
}

#[test]
fn bayes_converges_to_the_posterior_mode_and_tracks_precision() {
    let decay = 0.05;
    let o = converge(SIGNED, &format!("bayes(decay = {decay})"), 1000);
    assert_eq!(o.state, ["bayes.precision.w"]);
    assert!(o.err < 1e-6, "bayes: relative error {:e}", o.err);

    // P ← (1 − d)·P + d·P₀ + E settles at P₀ + E/d, E the likelihood's curvature (P₀ = 1).
    let p = problem(SIGNED.0, 11);
    let want: Vec<f64> = p.likelihood_curvature().iter().map(|e| 1.0 + e / decay).collect();
    let err = rel_error(&o.state_values[0], &want);
    println!("bayes precision {:?}, expected {want:?}, relative error {err:e}", o.state_values[0]);
    assert!(err < 1e-9, "bayes precision: relative error {err:e}");

    // On the full batch its first step is a Newton step (lr 1, no damping).
    let first = |rule: &str| -> Vec<f64> {
        let checked = model(SIGNED.1, rule, 1);
        let setup = Setup::new(&checked, None, |_| {});
        setup.train(&p.table).unwrap().params[0].clone()
    };
    let (b, n) = (first("bayes(decay = 0.05)"), first("newton(lr = 1, damping = 0)"));
    assert!(rel_error(&b, &n) < 1e-12, "bayes' first step {b:?} is not newton's {n:?}");
}

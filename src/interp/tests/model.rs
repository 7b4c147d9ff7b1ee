//! Whole models lowered from source, with losses computed by hand: the interpreter against the
//! lowering's promise that the loss is the full negative log joint density.

use super::*;
use crate::driver::{check_source, lower};
use crate::ir::init::{initial_values, Rng};

const HALF_LOG_2PI: f64 = 0.918_938_533_204_672_8;

fn graph(src: &str) -> Graph {
    let checked = check_source("t.circ", src);
    assert!(!checked.has_errors(), "{}", checked.render(false));
    let g = lower(&checked, 0).remove(0);
    crate::ir::verify::verify(&g).expect("the lowered graph verifies");
    g
}

const RIDGE: &str = r#"
model ridge {
    data x: [N, 2] = csv("x1", "x2")
    data y: [N]
    param w: [2] ~ normal(0, 2)
    param b: [] = 0 ~ flat
    y ~ normal(x @ w + b, 1)
}
"#;

fn ridge_data() -> Vec<HostTensor> {
    vec![host(&[3, 2], &[1.0, 2.0, 0.0, 1.0, -1.0, 0.0]), host(&[3], &[1.0, -2.0, 3.0])]
}

#[test]
fn ridge_with_zero_parameters() {
    let g = graph(RIDGE);
    let out = run_both(&g, &ridge_data(), &[vec![0.0, 0.0], vec![0.0]]);
    // ½Σy² = ½(1 + 4 + 9) = 7, plus ½log2π for each of the 3 rows; each of the 2 weights adds
    // ½w²/σ² = 0 and log σ + ½log2π = log 2 + ½log2π.
    let want = 7.0 + 3.0 * HALF_LOG_2PI + 2.0 * (2f64.ln() + HALF_LOG_2PI);
    assert!((out.loss() - want).abs() < 1e-12, "loss {} vs {want}", out.loss());
    assert_close(out.get("y.mean").unwrap(), &[3], &[0.0, 0.0, 0.0], 0.0);
}

#[test]
fn ridge_with_given_parameters() {
    let g = graph(RIDGE);
    let out = run_both(&g, &ridge_data(), &[vec![1.0, 0.5], vec![0.25]]);
    // ŷ = x w + b = [2.25, 0.75, −0.75]; y − ŷ = [−1.25, −2.75, 3.75]; ½Σ(y − ŷ)² = 11.59375.
    // ½Σw²/σ² = ½(1 + 0.25)/4 = 0.15625.
    let want = 11.59375 + 0.15625 + 3.0 * HALF_LOG_2PI + 2.0 * (2f64.ln() + HALF_LOG_2PI);
    assert!((out.loss() - want).abs() < 1e-12, "loss {} vs {want}", out.loss());
    assert_close(out.get("y.mean").unwrap(), &[3], &[2.25, 0.75, -0.75], 1e-15);
}

#[test]
fn categorical_and_bernoulli_at_zero_logits() {
    let g = graph(
        r#"
model m {
    data x: [N, 2] = csv("a", "b")
    data label: int[N]
    data flag: [N]
    param w: [2, 3] ~ laplace(0, 0.5)
    param v: [2] ~ normal(1, 1)
    label ~ categorical(logits = x @ w)
    flag ~ bernoulli(logits = x @ v)
}
"#,
    );
    let x = host(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let data = [x, host(&[2], &[2.0, 0.0]), host(&[2], &[1.0, 0.0])];
    let out = run_both(&g, &data, &[vec![0.0; 6], vec![0.0; 2]]);
    // Uniform logits: each of the 2 labels costs log 3; each of the 2 flags log 2. The laplace
    // prior adds |w|/b + log 2b = log 1 = 0 per weight; normal(1, 1) adds ½(0 − 1)² + ½log2π twice.
    let want = 2.0 * 3f64.ln() + 2.0 * 2f64.ln() + 2.0 * (0.5 + HALF_LOG_2PI);
    assert!((out.loss() - want).abs() < 1e-12, "loss {} vs {want}", out.loss());
}

/// Many ops at once, drawn parameters and data: f32 and f64 agree.
#[test]
fn f32_and_f64_agree_on_a_larger_model() {
    let g = graph(
        r#"
model images {
    data x: [N, 16] = csv("p0" .. "p15")
    data y: [N, 3] = csv("y0" .. "y2")
    data label: int[N]

    let img = reshape(x, [N, 4, -1])
    let rows = img[:, 0:2, :]
    let cols = transpose(rows, [0, 2, 1])
    let flat = reshape(cols, [N, -1])
    let last = x[:, -1]
    let peak = max(img, axis = [1, 2], keepdims = 1)
    let m = mean(img - peak, axis = 2)
    let features = concat(flat, m, x[:, 0:1], axis = 1)
    param w: [13, 3] ~ normal(0, 0.3)
    param b: [3] ~ normal(0, 1)
    param s: [] = 1 ~ lognormal(0, 1)
    let h = kmax(shrink(tanh(features @ w + b), 0.05), 2)
    let p = softmax(h * s, axis = 1)
    y ~ normal(p + sum(last) * 0, exp(sigmoid(h) - 1))
    label ~ categorical(logits = h / s + pow(logsumexp(h, axis = 1, keepdims = 1), 2))
}
"#,
    );
    let mut rng = Rng::new(3);
    let n = 5;
    let x: Vec<f64> = (0..n * 16).map(|_| rng.uniform() * 2.0 - 1.0).collect();
    let y: Vec<f64> = (0..n * 3).map(|_| rng.uniform()).collect();
    let labels: Vec<f64> = (0..n).map(|i| (i % 3) as f64).collect();
    let data = [host(&[n, 16], &x), host(&[n, 3], &y), host(&[n], &labels)];
    let out = run_both(&g, &data, &initial_values(&g));
    assert!(out.loss().is_finite());
}

//! The experiments of BRIEF §4 that run on the examples: E1, E3, E4, E5, E6, E7, E8, E9.

use crate::common::*;
use circ::backend::BackendKind;
use circ::check::checked::UpdateKind;
use circ::train::run::TrainError;
use circ_runtime::files::csv::Table;
use std::time::Instant;

// ------------------------------------------------------------------------------------------------
// E1 (BRIEF §2.5): f(x) = a·b·x from a = 100, b = 1e-4.

/// x uniform in [−1, 1], y = 0.7·x exactly, 256 rows.
struct Abx {
    table: Table,
    x: Vec<f64>,
    y: Vec<f64>,
}

fn abx_data() -> Abx {
    let mut rng = Rng::new(0xAB5);
    let x: Vec<f64> = (0..256).map(|_| rng.range(-1.0, 1.0)).collect();
    let y: Vec<f64> = x.iter().map(|x| 0.7 * x).collect();
    let rows: Vec<Vec<f64>> = x.iter().zip(&y).map(|(x, y)| vec![*x, *y]).collect();
    Abx { table: parse_table("abx.csv", &csv_text(&["x".into(), "y".into()], &rows)), x, y }
}

impl Abx {
    /// mean((y − a·b·x)²)
    fn fit_error(&self, a: f64, b: f64) -> f64 {
        self.x.iter().zip(&self.y).map(|(x, y)| (y - a * b * x).powi(2)).sum::<f64>() / self.x.len() as f64
    }
}

/// The example as written (its own newton rule and settings) fits y = 0.7·x from a = 100, b = 1e-4.
#[test]
fn e1_abx_example_fits_with_its_newton_rule() {
    let data = abx_data();
    let start = data.fit_error(100.0, 1e-4);
    let checked = example("abx.circ");
    let model = &checked.models[0];
    assert!(
        model.params.iter().all(|p| p.update.as_ref().is_some_and(|r| r.kind == UpdateKind::Newton)),
        "abx.circ should train a and b by newton"
    );
    let setup = Setup::new(&checked, None, |_| {});
    let epochs = setup.settings.epochs;
    let newton = setup.train(&data.table).unwrap_or_else(|e| panic!("newton on abx: {e}"));
    let (a, b) = (newton.param("a")[0], newton.param("b")[0]);
    let newton_fit = data.fit_error(a, b);
    println!(
        "E1 newton ({epochs} epochs): a = {a}, b = {b}, a·b = {}, fit error {newton_fit:e} (from {start:e})",
        a * b
    );
    assert!(newton_fit < 1e-6, "newton should fit y = 0.7·x: fit error {newton_fit:e}, a = {a}, b = {b}");
}

/// What plain gradient descent or a Newton rule does on `a·b·x` in at most [`E1_STEPS`] full-batch
/// steps: the step after which the fit error (mean squared residual) first fell below 1e-6, or
/// how it failed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum E1Outcome {
    Converged(u64),
    /// The loss became non-finite, or the fit error ended above where it started.
    Diverged,
    /// Finite and no worse than the start, but not below 1e-6 after every step.
    Stalled(f64),
}

const E1_STEPS: u64 = 100;
/// The scales: a starts at `s`, b at `0.01 / s`, so the start's product a·b = 0.01 and its fit
/// error are the same at every scale; s = 100 is BRIEF §2.5's a = 100, b = 1e-4.
const E1_SCALES: [f64; 3] = [1.0, 100.0, 1e4];
/// SGD's learning rates: every half decade from 1 down to 1e-12 (25 rates).
fn e1_sgd_grid() -> Vec<f64> {
    (0..=24).map(|j| 10f64.powf(-(j as f64) / 2.0)).collect()
}

/// examples/abx.circ with a and b started at scale `s` (`a = s`, `b = 0.01 / s`).
fn abx_at_scale(s: f64) -> String {
    let text = std::fs::read_to_string(example_path("abx.circ")).unwrap();
    let out = text
        .replace("param a: [] = 100 ", &format!("param a: [] = {s:?} "))
        .replace("param b: [] = 0.0001 ", &format!("param b: [] = {:?} ", 0.01 / s));
    assert!(out.contains(&format!("= {:?} ", 0.01 / s)), "examples/abx.circ no longer starts a at 100, b at 0.0001");
    out
}

/// Trains the abx model at scale `s` with every parameter under `rule`, full batch, one step per
/// epoch, and reports when the fit error first drops below 1e-6.
fn e1_outcome(data: &Abx, s: f64, rule: &str) -> E1Outcome {
    let checked = with_rule(source("abx_scaled.circ", &abx_at_scale(s)), rule);
    let setup = Setup::new(&checked, None, |st| {
        st.batch = None;
        st.epochs = E1_STEPS;
    });
    let table = setup.bind(&data.table).unwrap();
    let mut t = setup.trainer(&table);
    let start = data.fit_error(s, 0.01 / s);
    let mut fit = start;
    for step in 1..=E1_STEPS {
        match t.run_epoch(&mut |_, _, _| {}) {
            Ok(_) => {}
            Err(TrainError::NonFinite { .. } | TrainError::NonFiniteUpdate { .. }) => return E1Outcome::Diverged,
            Err(e) => panic!("{rule} on abx at scale {s}: {e}"),
        }
        fit = data.fit_error(t.params[0][0], t.params[1][0]);
        if !fit.is_finite() {
            return E1Outcome::Diverged;
        }
        if fit < 1e-6 {
            return E1Outcome::Converged(step);
        }
    }
    if fit > start {
        E1Outcome::Diverged
    } else {
        E1Outcome::Stalled(fit)
    }
}

/// E1 stated exactly (docs/experiments.md, E1): at three scales of the start (a, b) = (s, 0.01/s),
/// s = 1, 100, 10⁴, plain gradient descent converges only inside a window of learning rates one
/// to two decades wide that moves down four decades per 100× of scale (its curvature in b is
/// a²·Σx²); above the window it diverges. So no one rate works at two of the scales, and from
/// BRIEF's scale on every rate from 1 down to 1e-5 diverges. Diagonal Newton converges with one
/// setting at every scale, and without damping in the same number of steps: its step is
/// invariant to rescaling a and b.
#[test]
fn e1_gd_needs_a_rate_per_scale_where_newton_needs_none() {
    let data = abx_data();
    let grid = e1_sgd_grid();
    let mut converging: Vec<Vec<usize>> = Vec::new();
    let mut diverging: Vec<usize> = Vec::new();
    println!(
        "E1: fit error < 1e-6 within {E1_STEPS} full-batch steps, 256 rows; SGD at 25 rates 1 … 1e-12 (half decades)"
    );
    println!("| scale s (a = s, b = 0.01/s) | SGD diverges | SGD converges at | SGD stalls | best SGD steps | newton(lr = 0.5) steps | newton(lr = 0.5, damping = 0) steps |");
    println!("|---|---:|---|---:|---:|---:|---:|");
    let mut newton_undamped = Vec::new();
    for &s in &E1_SCALES {
        let outcomes: Vec<E1Outcome> =
            grid.iter().map(|lr| e1_outcome(&data, s, &format!("sgd(lr = {lr:e})"))).collect();
        let diverged = outcomes.iter().filter(|o| **o == E1Outcome::Diverged).count();
        let stalled = outcomes.iter().filter(|o| matches!(o, E1Outcome::Stalled(_))).count();
        let conv: Vec<usize> = (0..grid.len()).filter(|&i| matches!(outcomes[i], E1Outcome::Converged(_))).collect();
        let best =
            conv.iter().filter_map(|&i| if let E1Outcome::Converged(n) = outcomes[i] { Some(n) } else { None }).min();
        let newton = e1_outcome(&data, s, "newton(lr = 0.5)");
        let undamped = e1_outcome(&data, s, "newton(lr = 0.5, damping = 0)");
        let rates: Vec<String> = conv
            .iter()
            .map(|&i| match outcomes[i] {
                E1Outcome::Converged(n) => format!("{:.0e} ({n} steps)", grid[i]),
                _ => unreachable!(),
            })
            .collect();
        let steps = |o: E1Outcome| match o {
            E1Outcome::Converged(n) => n.to_string(),
            other => format!("{other:?}"),
        };
        println!(
            "| {s:e} | {diverged} of {} | {} | {stalled} | {} | {} | {} |",
            grid.len(),
            rates.join(", "),
            best.map_or("–".to_string(), |n| n.to_string()),
            steps(newton),
            steps(undamped)
        );
        assert!(matches!(newton, E1Outcome::Converged(_)), "newton(lr = 0.5) at scale {s}: {newton:?}");
        let E1Outcome::Converged(n) = undamped else { panic!("undamped newton at scale {s}: {undamped:?}") };
        newton_undamped.push(n);
        assert!(!conv.is_empty(), "at scale {s} no SGD rate of the grid converged: the window should be on the grid");
        assert!(
            conv.len() <= 4,
            "at scale {s} SGD converged at {} rates: the window is wider than 2 decades",
            conv.len()
        );
        converging.push(conv);
        if s >= 100.0 {
            for (lr, o) in grid.iter().zip(&outcomes).filter(|(lr, _)| **lr >= 1e-5 * (1.0 - 1e-9)) {
                assert_eq!(*o, E1Outcome::Diverged, "at scale {s} sgd(lr = {lr:e}) should diverge");
            }
        }
        diverging.push(diverged);
    }
    assert!(
        diverging.windows(2).all(|w| w[0] < w[1]),
        "SGD should diverge at more rates as the scale grows: {diverging:?}"
    );
    // The windows are disjoint: no rate converges at two scales.
    for i in 0..converging.len() {
        for j in i + 1..converging.len() {
            assert!(
                converging[i].iter().all(|r| !converging[j].contains(r)),
                "an SGD rate converged at scales {} and {}",
                E1_SCALES[i],
                E1_SCALES[j]
            );
        }
    }
    assert!(
        newton_undamped.iter().all(|n| *n == newton_undamped[0]),
        "undamped newton's steps differ across scales: {newton_undamped:?}"
    );
}

/// Why the diagonal Newton step needs halving here: a full diagonal Newton step (lr = 1, no
/// damping, no cap: `clip = false`) moves a and b each to where it alone would fit, so the
/// product c = a·b jumps from c to c*²/c (c* = 0.7) and back: a 2-cycle. With lr = 0.5,
/// c' − c* = (c − c*)²/(4c). (At its defaults `newton` halves the step by itself: see
/// `e1_newton_at_its_defaults_is_scale_invariant`.)
#[test]
fn e1_full_newton_steps_cycle_and_half_steps_converge_quadratically() {
    let data = abx_data();
    let c_star = 0.7;
    let product_after = |rule: &str, epochs: u64| -> Vec<f64> {
        let checked = with_rule(example("abx.circ"), rule);
        let setup = Setup::new(&checked, None, |s| s.batch = None);
        let table = setup.bind(&data.table).unwrap();
        let mut t = setup.trainer(&table);
        let mut out = vec![t.params[0][0] * t.params[1][0]];
        for _ in 0..epochs {
            t.run_epoch(&mut |_, _, _| {}).unwrap();
            out.push(t.params[0][0] * t.params[1][0]);
        }
        out
    };
    let full = product_after("newton(lr = 1, damping = 0, clip = false)", 4);
    println!("E1 newton(lr = 1) products: {full:?}");
    for k in 0..4 {
        let want = c_star * c_star / full[k];
        assert!(
            (full[k + 1] - want).abs() <= 1e-9 * want,
            "step {}: a·b = {}, expected c*²/c = {want}",
            k + 1,
            full[k + 1]
        );
    }
    let half = product_after("newton(lr = 0.5, damping = 0, clip = false)", 8);
    println!("E1 newton(lr = 0.5) products: {half:?}");
    for k in 0..8 {
        let c = half[k];
        let want = c_star + (c - c_star).powi(2) / (4.0 * c);
        assert!(
            (half[k + 1] - want).abs() <= 1e-9 * want.abs().max(1e-3),
            "step {}: a·b = {}, expected {want}",
            k + 1,
            half[k + 1]
        );
    }
    assert!((half[8] - c_star).abs() < 1e-12, "eight half steps should reach c* = 0.7: {}", half[8]);
}

/// E1 at three scales (BRIEF §2.5): `newton` at its defaults on a·b·x, started from (a, b) =
/// (100, 1e-4), (1, 1e-2) and (1e4, 1e-6) (the same function, a and b rescaled), follows one
/// trajectory: a/a₀ and b/b₀ agree to 1e-12 at every step. And it is the half-step recurrence
/// c' − c* = (c − c*)²/(4c): the cap measures α = 1/2 along the diagonal step by itself, and the
/// damping, relative to the curvature, cancels in it. (A normal likelihood of constant σ is
/// quadratic in its prediction: no trust region applies.)
#[test]
fn e1_newton_at_its_defaults_is_scale_invariant() {
    let data = abx_data();
    let c_star = 0.7;
    let epochs = 10;
    let trajectory = |a0: f64, b0: f64| -> Vec<(f64, f64)> {
        let text = format!(
            "model abx {{\n    data x: [N]\n    data y: [N]\n    param a: [] = {a0:?} update newton\n    \
             param b: [] = {b0:?} update newton\n    y ~ normal(a * b * x, 1)\n    train {{ epochs = {epochs}, seed = 0 }}\n}}\n"
        );
        let checked = source("abx.circ", &text);
        let setup = Setup::new(&checked, None, |_| {});
        let table = setup.bind(&data.table).unwrap();
        let mut t = setup.trainer(&table);
        let mut out = vec![(t.params[0][0] / a0, t.params[1][0] / b0)];
        for _ in 0..epochs {
            t.run_epoch(&mut |_, _, _| {}).unwrap();
            out.push((t.params[0][0] / a0, t.params[1][0] / b0));
        }
        out
    };
    let reference = trajectory(100.0, 1e-4);
    for (a0, b0) in [(1.0, 1e-2), (1e4, 1e-6)] {
        let other = trajectory(a0, b0);
        for (k, (r, o)) in reference.iter().zip(&other).enumerate() {
            let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * x.abs().max(y.abs());
            assert!(
                close(r.0, o.0) && close(r.1, o.1),
                "step {k}: a/a₀, b/b₀ = {o:?} from ({a0}, {b0}), {r:?} from (100, 1e-4)"
            );
        }
    }
    let products: Vec<f64> = reference.iter().map(|(a, b)| a * b * 100.0 * 1e-4).collect();
    println!("E1 newton() products at every scale: {products:?}");
    for k in 0..epochs {
        let c = products[k];
        let want = c_star + (c - c_star).powi(2) / (4.0 * c);
        assert!(
            (products[k + 1] - want).abs() <= 1e-9 * want,
            "step {}: a·b = {}, expected {want}",
            k + 1,
            products[k + 1]
        );
    }
    assert!((products[epochs] - c_star).abs() < 1e-9, "{epochs} steps should reach c* = 0.7: {}", products[epochs]);
}

// ------------------------------------------------------------------------------------------------
// E3: a normal prior is ridge regression.

/// Minimizes ½‖y − Xw − b‖² + ½α‖w‖² (the intercept unpenalized) by the normal equations,
/// solved by Gaussian elimination: returns [w…, b].
fn ridge_closed_form(rows: &[Vec<f64>], features: usize, alpha: f64) -> Vec<f64> {
    let n = features + 1;
    let mut a = vec![vec![0.0; n]; n];
    let mut rhs = vec![0.0; n];
    for r in rows {
        let mut z = r[..features].to_vec();
        z.push(1.0);
        for i in 0..n {
            for j in 0..n {
                a[i][j] += z[i] * z[j];
            }
            rhs[i] += z[i] * r[features];
        }
    }
    for (i, row) in a.iter_mut().enumerate().take(features) {
        row[i] += alpha;
    }
    solve(a, rhs)
}

#[test]
fn e3_normal_prior_is_ridge_regression() {
    let table = read_table("diabetes.csv");
    assert_eq!((table.rows, table.ncols()), (442, 11));
    let want = ridge_closed_form(&table_rows(&table), 10, 1.0);

    let checked = example("ridge.circ");
    let setup = Setup::new(&checked, None, |_| {});
    let t = setup.train(&table).unwrap_or_else(|e| panic!("ridge: {e}"));
    let got = with_intercept(t.param("w"), t.param("b")[0]);
    let err = rel_error(&got, &want);
    println!("E3 ridge: trained {got:?}\n   closed form {want:?}\n   relative error {err:e}");
    assert!(err < 1e-4, "ridge weights differ from the closed form by {err:e}");
}

/// E3 again with every step on the Cranelift backend (f32): the closed form to f32 accuracy.
#[test]
fn e3_on_the_cpu_backend() {
    let table = read_table("diabetes.csv");
    let want = ridge_closed_form(&table_rows(&table), 10, 1.0);
    let checked = example("ridge.circ");
    let setup = Setup::new(&checked, None, |_| {}).on(BackendKind::Cpu);
    let t = setup.train(&table).unwrap_or_else(|e| panic!("ridge: {e}"));
    let got = with_intercept(t.param("w"), t.param("b")[0]);
    let err = rel_error(&got, &want);
    println!("E3 ridge on the cpu backend: relative error {err:e}");
    assert!(err < 1e-4, "ridge weights on the cpu backend differ from the closed form by {err:e}");
}

// ------------------------------------------------------------------------------------------------
// E4: a normal prior on logistic weights is L2-regularized logistic regression.

/// The L2 logistic objective Σ log(1 + e^z) − y·z + ½‖w‖² (z = x·w + b) and its gradient norm.
fn logistic_objective(rows: &[Vec<f64>], features: usize, beta: &[f64]) -> (f64, f64) {
    let mut obj = 0.0;
    let mut g = vec![0.0; features + 1];
    for r in rows {
        let z: f64 = r[..features].iter().zip(beta).map(|(x, w)| x * w).sum::<f64>() + beta[features];
        let p = 1.0 / (1.0 + (-z).exp());
        obj += z.max(0.0) + (-z.abs()).exp().ln_1p() - r[features] * z;
        for (j, gj) in g.iter_mut().enumerate() {
            *gj += (p - r[features]) * if j < features { r[j] } else { 1.0 };
        }
    }
    for j in 0..features {
        obj += 0.5 * beta[j] * beta[j];
        g[j] += beta[j];
    }
    (obj, g.iter().map(|x| x * x).sum::<f64>().sqrt())
}

/// Minimizes the L2 logistic objective (C = 1, intercept unpenalized) by Newton's method with the
/// full Hessian: returns [w…, b].
fn logistic_newton(rows: &[Vec<f64>], features: usize) -> Vec<f64> {
    let n = features + 1;
    let mut beta = vec![0.0; n];
    for _ in 0..50 {
        let mut h = vec![vec![0.0; n]; n];
        let mut g = vec![0.0; n];
        for r in rows {
            let mut z = r[..features].to_vec();
            z.push(1.0);
            let eta: f64 = z.iter().zip(&beta).map(|(a, b)| a * b).sum();
            let p = 1.0 / (1.0 + (-eta).exp());
            for i in 0..n {
                g[i] += (p - r[features]) * z[i];
                for j in 0..n {
                    h[i][j] += p * (1.0 - p) * z[i] * z[j];
                }
            }
        }
        for i in 0..features {
            g[i] += beta[i];
            h[i][i] += 1.0;
        }
        let step = solve(h, g);
        for (b, s) in beta.iter_mut().zip(&step) {
            *b -= s;
        }
        if step.iter().map(|s| s * s).sum::<f64>().sqrt() < 1e-13 {
            break;
        }
    }
    beta
}

/// Standardizes every feature column (all but the last) to mean 0 and standard deviation 1
/// (population sd, as scikit-learn's StandardScaler).
fn standardized(table: &Table) -> Vec<Vec<f64>> {
    let mut rows = table_rows(table);
    let n = rows.len() as f64;
    for c in 0..table.ncols() - 1 {
        let mean = rows.iter().map(|r| r[c]).sum::<f64>() / n;
        let sd = (rows.iter().map(|r| (r[c] - mean).powi(2)).sum::<f64>() / n).sqrt();
        for r in &mut rows {
            r[c] = (r[c] - mean) / sd;
        }
    }
    rows
}

#[test]
fn e4_normal_prior_is_l2_logistic_regression() {
    let raw = read_table("breast_cancer.csv");
    assert_eq!((raw.rows, raw.ncols()), (569, 31));
    let rows = standardized(&raw);
    let dir = temp_dir("e4");
    let path = dir.join("breast_cancer_standardized.csv");
    std::fs::write(&path, csv_text(&raw.columns, &rows)).unwrap();
    let table = circ_runtime::files::csv::read_csv(&path).unwrap();

    let want = logistic_newton(&rows, 30);
    let (obj, grad) = logistic_objective(&rows, 30, &want);
    assert!(grad < 1e-8, "the reference Newton solver did not converge: gradient norm {grad:e}");

    // The example's own settings (full-batch diagonal Newton, lr = 0.05, 2000 epochs).
    let checked = example("logistic.circ");
    let setup = Setup::new(&checked, None, |_| {});
    let start = Instant::now();
    let t = setup.train(&table).unwrap_or_else(|e| panic!("logistic: {e}"));
    let got = with_intercept(t.param("w"), t.param("b")[0]);
    let err = rel_error(&got, &want);
    let (got_obj, got_grad) = logistic_objective(&rows, 30, &got);
    println!(
        "E4 logistic (standardized, {} epochs, {:.2?}): relative error {err:e}; objective {got_obj} vs {obj} (gradient norm {got_grad:e}); train accuracy {:?}",
        setup.settings.epochs,
        start.elapsed(),
        t.metrics.last().and_then(|m| m.train_accuracy)
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(err < 1e-3, "logistic weights differ from L2 logistic regression by {err:e}");
}

// ------------------------------------------------------------------------------------------------
// E5: real classification works.

#[test]
fn e5_mlp_reaches_97_percent_on_held_out_digits() {
    let table = read_table("digits.csv");
    let checked = example("mlp_digits.circ");
    let setup = Setup::new(&checked, None, |_| {});
    assert_eq!(setup.settings.valid, 0.2, "mlp_digits.circ should hold out 20%");
    let start = Instant::now();
    let t = setup.train(&table).unwrap_or_else(|e| panic!("mlp_digits: {e}"));
    let last = t.metrics.last().expect("some epochs");
    let acc = last.valid_accuracy.expect("a validation accuracy");
    let recent: Vec<f64> = t.metrics.iter().rev().take(10).filter_map(|m| m.valid_accuracy).collect();
    println!(
        "E5 digits: {} epochs in {:.2?}; held-out accuracy {acc:.4} at the last epoch (last 10 epochs: {:.4} .. {:.4}); train accuracy {:?}",
        t.metrics.len(),
        start.elapsed(),
        recent.iter().copied().fold(1.0, f64::min),
        recent.iter().copied().fold(0.0, f64::max),
        last.train_accuracy
    );
    assert_eq!(t.metrics.len() as u64, setup.settings.epochs);
    assert!(acc >= 0.97, "held-out accuracy {acc:.4} < 0.97");
}

/// E5 on the Cranelift backend (what `circ train` runs by default): the same accuracy, and the
/// first epoch's metrics equal the interpreter's to f32 accuracy.
#[test]
fn e5_on_the_cpu_backend() {
    let table = read_table("digits.csv");
    let checked = example("mlp_digits.circ");
    let one = |backend| {
        Setup::new(&checked, None, |s| s.epochs = 1).on(backend).train(&table).unwrap_or_else(|e| panic!("{e}"))
    };
    let (cpu, reference) = (one(BackendKind::Cpu), one(BackendKind::Interp));
    let (a, b) = (&cpu.metrics[0], &reference.metrics[0]);
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-4 * y.abs();
    assert!(close(a.train_nll, b.train_nll), "train nll {} vs {}", a.train_nll, b.train_nll);
    assert!(close(a.valid_nll.unwrap(), b.valid_nll.unwrap()), "valid nll {:?} vs {:?}", a.valid_nll, b.valid_nll);
    let start = Instant::now();
    let t = Setup::new(&checked, None, |_| {}).on(BackendKind::Cpu).train(&table).unwrap_or_else(|e| panic!("{e}"));
    let acc = t.metrics.last().and_then(|m| m.valid_accuracy).expect("a validation accuracy");
    println!(
        "E5 digits on the cpu backend: {acc:.4} held out after {} epochs in {:.2?}",
        t.metrics.len(),
        start.elapsed()
    );
    assert!(acc >= 0.97, "held-out accuracy {acc:.4} < 0.97 on the cpu backend");
}

/// The E5 baseline: multinomial logistic regression on the same pixels, `w ~ normal(0, {sigma})`
/// (σ = 1 is scikit-learn's default C = 1), started near 0 whatever σ is, trained like the MLP.
const E5_LOGISTIC: &str = "model digits_logistic {
    data pixels: [N, 64] = csv(\"pixel_0_0\" .. \"pixel_7_7\")
    data label: int[N]
    let x = pixels / 16
    param w: [64, 10] ~ normal(0, {sigma}) init normal(0, 0.01)
    param b: [10] = 0
    label ~ categorical(logits = x @ w + b)
    train { optimizer = adam(lr = 1e-2), epochs = 60, batch = 64, valid = 0.2, seed = 0 }
}
";

/// The accuracy of the evaluation graph of `setup` with `params` on `data` (f64 interpreter):
/// the share of rows whose largest logit is the label.
fn accuracy_on(setup: &Setup, params: &[Vec<f64>], data: &[circ::interp::HostTensor]) -> f64 {
    let g = &setup.eval;
    let (label, prediction) = g
        .terms
        .iter()
        .find_map(|t| match t {
            circ::ir::graph::Term::Likelihood { data, prediction, .. } => Some((*data, prediction.clone())),
            _ => None,
        })
        .expect("the model observes its labels");
    let inputs: Vec<Vec<f64>> =
        g.inputs.iter().map(|i| if i.name == "batch_scale" { vec![1.0] } else { vec![0.0] }).collect();
    let out = circ::interp::run_with::<f64>(g, data, params, &inputs).expect("evaluation runs");
    let logits = &out.get(&prediction).expect("the logits are an output").data;
    let labels = &data[label].values;
    let k = logits.len() / labels.len();
    let hits = labels
        .iter()
        .zip(logits.chunks(k))
        .filter(|(y, row)| {
            let best = row.iter().enumerate().fold(0, |b, (i, v)| if *v > row[b] { i } else { b });
            best as f64 == **y
        })
        .count();
    hits as f64 / labels.len() as f64
}

/// One setting of E5 on the five splits s = 0…4: per split, the test rows (20%) are drawn apart
/// first by `permutation(N, 500 + s)`; the trainer then holds out the model's validation fraction
/// of the rest with seed `s` (which also draws the start and the shuffles). Returns the
/// validation and the test accuracy of each split after the model's epochs on the CPU backend.
fn e5_splits(
    checked: &circ::driver::Checked,
    optimizer: Option<&str>,
    data: &[circ::interp::HostTensor],
) -> [Vec<f64>; 2] {
    use circ::train::run;
    let n = run::rows(data);
    let (mut valid, mut test) = (Vec::new(), Vec::new());
    for s in 0..5 {
        let order = run::permutation(n, 500 + s);
        let test_rows = n / 5;
        let (held, rest) = (run::select(data, &order[..test_rows]), run::select(data, &order[test_rows..]));
        let setup = Setup::new(checked, optimizer, |st| st.seed = s).on(BackendKind::Cpu);
        let mut trainer = setup.trainer(&rest);
        let mut v = 0.0;
        while trainer.epoch < setup.settings.epochs {
            let m = trainer.run_epoch(&mut |_, _, _| {}).unwrap_or_else(|e| panic!("split {s}: {e}"));
            v = m.valid_accuracy.expect("a validation accuracy");
        }
        valid.push(v);
        test.push(accuracy_on(&setup, &trainer.params, &held));
    }
    [valid, test]
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// E5 made fair: five random splits, each with a test set drawn apart before anything else, and
/// a logistic-regression baseline with equal tuning effort: each model gets four settings (the
/// MLP its adam rate, the baseline its prior's σ), chosen by mean validation accuracy; only the
/// chosen setting's test accuracy is the result. The MLP's mean test accuracy is at least 97% and
/// above the baseline's.
#[test]
fn e5_mlp_on_five_splits_with_a_test_set_beats_logistic_regression() {
    let table = read_table("digits.csv");
    let mlp = example("mlp_digits.circ");
    let data = Setup::new(&mlp, None, |_| {}).bind(&table).unwrap();
    let start = Instant::now();
    println!("E5: digits, 1797 rows; per split 359 test rows apart, then 20% of the rest for validation; 60 epochs, batch 64, cpu backend");
    println!("| model | setting | mean validation | mean test |");
    println!("|---|---|---:|---:|");
    let pick = |name: &str, runs: Vec<(String, [Vec<f64>; 2])>| {
        for (setting, [v, t]) in &runs {
            println!("| {name} | {setting} | {:.4} | {:.4} |", mean(v), mean(t));
        }
        runs.into_iter().max_by(|a, b| mean(&a.1[0]).total_cmp(&mean(&b.1[0]))).expect("some settings")
    };
    let mlp_runs = ["1e-3", "3e-3", "1e-2", "3e-2"]
        .iter()
        .map(|lr| {
            let rule = format!("adam(lr = {lr})");
            (rule.clone(), e5_splits(&mlp, Some(&rule), &data))
        })
        .collect();
    let (mlp_setting, [mlp_valid, mlp_test]) = pick("MLP", mlp_runs);
    let logistic_runs = ["0.3", "1", "3", "10"]
        .iter()
        .map(|sigma| {
            let checked = source("digits_logistic.circ", &E5_LOGISTIC.replace("{sigma}", sigma));
            (format!("w ~ normal(0, {sigma})"), e5_splits(&checked, None, &data))
        })
        .collect();
    let (logistic_setting, [logistic_valid, logistic_test]) = pick("logistic", logistic_runs);
    println!("chosen by validation: MLP {mlp_setting}, logistic {logistic_setting}");
    println!("| split | MLP valid | MLP test | logistic valid | logistic test |");
    println!("|---:|---:|---:|---:|---:|");
    for s in 0..5 {
        println!(
            "| {s} | {:.4} | {:.4} | {:.4} | {:.4} |",
            mlp_valid[s], mlp_test[s], logistic_valid[s], logistic_test[s]
        );
    }
    let range = |v: &[f64]| {
        format!(
            "{:.4} ({:.4} .. {:.4})",
            mean(v),
            v.iter().copied().fold(1.0, f64::min),
            v.iter().copied().fold(0.0, f64::max)
        )
    };
    println!("| mean (min .. max) | | {} | | {} |", range(&mlp_test), range(&logistic_test));
    println!("E5 five splits, eight settings: {:.1?}", start.elapsed());
    let (m, l) = (mean(&mlp_test), mean(&logistic_test));
    assert!(m >= 0.97, "the MLP's mean test accuracy over five splits is {m:.4} < 0.97");
    assert!(m > l, "the MLP ({m:.4}) does not beat logistic regression ({l:.4}) on the mean test accuracy");
}

/// Issue 12: `newton` and `bayes` at their defaults train `mlp_digits` (60 epochs, its batches and
/// split, seeds 0–3, on the CPU backend as `circ train` runs) to about Adam's accuracy, without a
/// learning rate, where the bare diagonal step (`clip = false`) stays at chance. Measured
/// (docs/training.md): newton 96.9, 98.05, 96.9, 98.05%; bayes 97.2, 97.5, 97.5, 98.05%; the
/// example's adam 97.5, 98.3, 98.05, 97.5%; bare newton 12% after 5 epochs.
#[test]
fn e5_newton_and_bayes_train_mlp_digits_at_their_defaults() {
    let table = read_table("digits.csv");
    let checked = example("mlp_digits.circ");
    let accuracy = |rule: &str, seed: u64, epochs: u64| -> f64 {
        let setup = Setup::new(&checked, Some(rule), |s| {
            s.seed = seed;
            s.epochs = epochs;
        })
        .on(BackendKind::Cpu);
        let t = setup.train(&table).unwrap_or_else(|e| panic!("{rule}, seed {seed}: {e}"));
        t.metrics.last().and_then(|m| m.valid_accuracy).expect("a validation accuracy")
    };
    for rule in ["newton()", "bayes()"] {
        let accs: Vec<f64> = (0..4).map(|seed| accuracy(rule, seed, 60)).collect();
        let mean = accs.iter().sum::<f64>() / 4.0;
        println!("E5 {rule}: held-out accuracy {accs:.4?}, mean {mean:.4}");
        assert!(mean >= 0.97 && accs.iter().all(|a| *a >= 0.965), "{rule}: {accs:?}");
    }
    let bare = accuracy("newton(clip = false)", 0, 5);
    println!("E5 newton(clip = false): {bare:.4} after 5 epochs");
    assert!(bare < 0.2, "the bare diagonal step at lr 1 should stay near chance: {bare}");
}

// ------------------------------------------------------------------------------------------------
// The same claims with every step on the OpenCL backend (PoCL in CI): f32 on a device.

#[test]
fn e3_on_the_opencl_backend() {
    if !opencl_available("e3_on_the_opencl_backend") {
        return;
    }
    let table = read_table("diabetes.csv");
    let want = ridge_closed_form(&table_rows(&table), 10, 1.0);
    let checked = example("ridge.circ");
    let setup = Setup::new(&checked, None, |_| {}).on(BackendKind::OpenCl(None));
    let t = setup.train(&table).unwrap_or_else(|e| panic!("ridge: {e}"));
    let got = with_intercept(t.param("w"), t.param("b")[0]);
    let err = rel_error(&got, &want);
    println!("E3 ridge on the opencl backend: relative error {err:e}");
    assert!(err < 1e-4, "ridge weights on the opencl backend differ from the closed form by {err:e}");
}

#[test]
fn e4_on_the_opencl_backend() {
    if !opencl_available("e4_on_the_opencl_backend") {
        return;
    }
    let raw = read_table("breast_cancer.csv");
    let rows = standardized(&raw);
    let dir = temp_dir("e4-opencl");
    let path = dir.join("breast_cancer_standardized.csv");
    std::fs::write(&path, csv_text(&raw.columns, &rows)).unwrap();
    let table = circ_runtime::files::csv::read_csv(&path).unwrap();
    let want = logistic_newton(&rows, 30);
    let checked = example("logistic.circ");
    let setup = Setup::new(&checked, None, |_| {}).on(BackendKind::OpenCl(None));
    let t = setup.train(&table).unwrap_or_else(|e| panic!("logistic: {e}"));
    let got = with_intercept(t.param("w"), t.param("b")[0]);
    let err = rel_error(&got, &want);
    let _ = std::fs::remove_dir_all(&dir);
    println!("E4 logistic on the opencl backend: relative error {err:e}");
    assert!(err < 1e-3, "logistic weights on the opencl backend differ from L2 logistic regression by {err:e}");
}

#[test]
fn e5_on_the_opencl_backend() {
    if !opencl_available("e5_on_the_opencl_backend") {
        return;
    }
    let table = read_table("digits.csv");
    let checked = example("mlp_digits.circ");
    let start = Instant::now();
    let t = Setup::new(&checked, None, |_| {})
        .on(BackendKind::OpenCl(None))
        .train(&table)
        .unwrap_or_else(|e| panic!("{e}"));
    let acc = t.metrics.last().and_then(|m| m.valid_accuracy).expect("a validation accuracy");
    println!(
        "E5 digits on the opencl backend: {acc:.4} held out after {} epochs in {:.2?}",
        t.metrics.len(),
        start.elapsed()
    );
    assert!(acc >= 0.97, "held-out accuracy {acc:.4} < 0.97 on the opencl backend");
}

// ------------------------------------------------------------------------------------------------
// E6 (BRIEF §2.2): a learned variance is calibrated.

/// E6: `examples/hetero.circ` as written (its 200 epochs, CPU backend) on `data/noisy.csv`
/// (y = sin x + (0.1 + 0.5·|x|)·ε), then 20 000 fresh points of the same law it never saw: in
/// each of six bins of x the mean predicted σ is within 20% of the true σ (which spans 0.35 to
/// 1.35 between bins), and the predicted intervals hold the Gaussian's share of the points:
/// 68.3% within ±1σ (asserted 65–72%) and 95.4% within ±2σ (93–97.5%).
#[test]
fn e6_learned_variance_is_calibrated_on_fresh_points() {
    let checked = example("hetero.circ");
    let setup = Setup::new(&checked, None, |_| {}).on(BackendKind::Cpu);
    let t = setup.train(&read_table("noisy.csv")).unwrap_or_else(|e| panic!("hetero: {e}"));
    let mut rng = Rng::new(0xE6);
    let n = 20_000;
    let x: Vec<f64> = (0..n).map(|_| rng.range(-3.0, 3.0)).collect();
    let sd: Vec<f64> = x.iter().map(|x| 0.1 + 0.5 * x.abs()).collect();
    let y: Vec<f64> = x.iter().zip(&sd).map(|(x, s)| x.sin() + s * rng.normal()).collect();
    let data =
        vec![circ::interp::HostTensor::new(vec![n, 1], x.clone()), circ::interp::HostTensor::new(vec![n], y.clone())];
    let g = &setup.eval;
    let (mean_name, sigma_name) = g
        .terms
        .iter()
        .find_map(|t| match t {
            circ::ir::graph::Term::Likelihood {
                dist: circ::ir::graph::Likelihood::Normal { scale: circ::ir::graph::Scale::Output(s) },
                prediction,
                ..
            } => Some((prediction.clone(), s.clone())),
            _ => None,
        })
        .expect("hetero.circ predicts its own σ");
    let inputs: Vec<Vec<f64>> =
        g.inputs.iter().map(|i| if i.name == "batch_scale" { vec![1.0] } else { vec![0.0] }).collect();
    let out = circ::interp::run_with::<f64>(g, &data, &t.params, &inputs).expect("the predictions compute");
    let (mean, sigma) = (&out.get(&mean_name).unwrap().data, &out.get(&sigma_name).unwrap().data);
    let z: Vec<f64> = (0..n).map(|i| (y[i] - mean[i]) / sigma[i]).collect();
    let share = |rows: &[usize], k: f64| rows.iter().filter(|&&i| z[i].abs() < k).count() as f64 / rows.len() as f64;
    println!("E6: {n} fresh points | x in | true σ | predicted σ | within ±1σ | within ±2σ |");
    for b in 0..6 {
        let (lo, hi) = (-3.0 + b as f64, -2.0 + b as f64);
        let rows: Vec<usize> = (0..n).filter(|&i| x[i] >= lo && x[i] < hi).collect();
        let avg = |v: &[f64]| rows.iter().map(|&i| v[i]).sum::<f64>() / rows.len() as f64;
        let (truth, predicted) = (avg(&sd), avg(sigma));
        println!(
            "| [{lo}, {hi}) | {truth:.3} | {predicted:.3} | {:.1}% | {:.1}% |",
            100.0 * share(&rows, 1.0),
            100.0 * share(&rows, 2.0)
        );
        assert!(
            (0.8..=1.25).contains(&(predicted / truth)),
            "x in [{lo}, {hi}): predicted σ {predicted:.3}, true {truth:.3}"
        );
    }
    let all: Vec<usize> = (0..n).collect();
    let (one, two) = (share(&all, 1.0), share(&all, 2.0));
    println!("| all | | | {:.1}% | {:.1}% |", 100.0 * one, 100.0 * two);
    assert!((0.65..=0.72).contains(&one), "{:.1}% of fresh points within ±1σ (Gaussian: 68.3%)", 100.0 * one);
    assert!((0.93..=0.975).contains(&two), "{:.1}% of fresh points within ±2σ (Gaussian: 95.4%)", 100.0 * two);
}

// ------------------------------------------------------------------------------------------------
// E7 (BRIEF §2.3): sparse coding learns a dictionary.

/// The mean squared error (per element) of the best rank-`k` reconstruction of the centered
/// `rows` (PCA with `k` components, fit on the same rows): the covariance's eigenvalues past the
/// `k`-th, summed, over the number of columns.
fn pca_mse(rows: &[Vec<f64>], k: usize) -> f64 {
    let (n, p) = (rows.len() as f64, rows[0].len());
    let mean: Vec<f64> = (0..p).map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n).collect();
    let mut cov = vec![vec![0.0; p]; p];
    for r in rows {
        for i in 0..p {
            for j in 0..p {
                cov[i][j] += (r[i] - mean[i]) * (r[j] - mean[j]) / n;
            }
        }
    }
    symmetric_eigenvalues(cov)[k.min(p)..].iter().sum::<f64>() / p as f64
}

#[test]
fn symmetric_eigenvalues_of_known_matrices() {
    let ev = symmetric_eigenvalues(vec![vec![2.0, 1.0], vec![1.0, 2.0]]);
    assert!((ev[0] - 3.0).abs() < 1e-12 && (ev[1] - 1.0).abs() < 1e-12, "{ev:?}");
    // diag(1, 2, 3) rotated: the eigenvalues stay.
    let (c, s) = (0.6, 0.8);
    let q = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]];
    let d = [1.0, 2.0, 3.0];
    let a: Vec<Vec<f64>> =
        (0..3).map(|i| (0..3).map(|j| (0..3).map(|k| q[i][k] * d[k] * q[j][k]).sum()).collect()).collect();
    let ev = symmetric_eigenvalues(a);
    for (got, want) in ev.iter().zip([3.0, 2.0, 1.0]) {
        assert!((got - want).abs() < 1e-12, "{ev:?}");
    }
}

/// E7: `examples/ista.circ` as written (its own settings, the CPU backend) learns a dictionary
/// whose codes `h` use at most 25% of the atoms on average, and whose reconstruction of every
/// digit, and of the validation digits alone, is closer than PCA with as many components as the
/// codes have active atoms (rounded up; PCA is fit on all digits, an advantage). The iteration's
/// step is stable: η·λmax(a aᵀ) ≤ 1, with λmax computed exactly from the trained atoms.
#[test]
fn e7_sparse_codes_beat_pca_with_as_many_components() {
    let table = read_table("digits.csv");
    let checked = example("ista.circ");
    let model = &checked.models[0];
    let setup = Setup::new(&checked, None, |_| {}).on(BackendKind::Cpu);
    let start = Instant::now();
    let t = setup.train(&table).unwrap_or_else(|e| panic!("ista: {e}"));
    let trained = start.elapsed();

    // The codes and reconstructions of every digit, as `circ run --values h` computes them.
    let h_value = model.values.iter().find(|v| v.name == "h").expect("ista.circ binds `h`");
    let mut g = circ::ir::lower::lower_values(model, setup.settings.seed, &[h_value]);
    g.outputs.retain(|o| o.name != "loss");
    circ::passes::dce::run(&mut g);
    let data = circ::data::bind_table(&g, &table).unwrap();
    let params: Vec<Vec<f64>> = g.params.iter().map(|p| t.param(&p.name).to_vec()).collect();
    let out = circ::interp::run_with::<f64>(&g, &data, &params, &[]).expect("the codes compute");
    let prediction = g
        .terms
        .iter()
        .find_map(|t| match t {
            circ::ir::graph::Term::Likelihood { prediction, .. } => Some(prediction.clone()),
            _ => None,
        })
        .expect("ista.circ observes its pixels");
    let mean = &out.get(&prediction).unwrap().data;
    let h = out.get(&circ::ir::lower::value_output("h")).unwrap();
    let (rows, atoms) = (h.shape[0], h.shape[1]);
    let pixels: Vec<Vec<f64>> = table_rows(&table).into_iter().map(|r| r[..64].to_vec()).collect();
    assert_eq!(table.columns[63], "pixel_7_7");
    assert_eq!(rows, pixels.len());
    let active: Vec<usize> = h.data.chunks(atoms).map(|c| c.iter().filter(|v| **v != 0.0).count()).collect();
    let used = (0..atoms).filter(|&j| (0..rows).any(|r| h.data[r * atoms + j] != 0.0)).count();
    let avg = active.iter().sum::<usize>() as f64 / rows as f64;
    let mse_of = |which: &[usize]| {
        which.iter().map(|&r| (0..64).map(|j| (pixels[r][j] - mean[r * 64 + j]).powi(2)).sum::<f64>()).sum::<f64>()
            / (64 * which.len()) as f64
    };
    let all: Vec<usize> = (0..rows).collect();
    let (_, valid) = circ::train::run::split(rows, setup.settings.valid, setup.settings.seed);
    let (mse, mse_valid) = (mse_of(&all), mse_of(&valid));
    let k = avg.ceil() as usize;
    let (pca, pca_below) = (pca_mse(&pixels, k), pca_mse(&pixels, avg.floor() as usize));

    // The step the model computes, and the exact bound it must respect.
    let d = t.param("d");
    let a: Vec<Vec<f64>> = d
        .chunks(64)
        .map(|r| {
            let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
            r.iter().map(|v| v / norm).collect()
        })
        .collect();
    let gram: Vec<Vec<f64>> =
        a.iter().map(|x| a.iter().map(|y| x.iter().zip(y).map(|(p, q)| p * q).sum()).collect()).collect();
    let eta = 1.0 / gram.iter().map(|r| r.iter().map(|v| v.abs()).sum::<f64>()).fold(0.0, f64::max);
    let lambda = symmetric_eigenvalues(gram)[0];

    println!(
        "E7 ({} epochs in {trained:.1?}): {atoms} atoms, {avg:.2} active per digit on average ({:.1}%), {}..{} per digit, {used} used by some digit",
        setup.settings.epochs,
        100.0 * avg / atoms as f64,
        active.iter().min().unwrap(),
        active.iter().max().unwrap()
    );
    println!(
        "E7 reconstruction MSE (gray levels²): {mse:.3} on all {rows} digits, {mse_valid:.3} on the {} validation digits; PCA with {k} components {pca:.3} ({} components {pca_below:.3})",
        valid.len(),
        avg.floor()
    );
    println!("E7 step: η = {eta:.4}, λmax(a aᵀ) = {lambda:.3}, η·λmax = {:.3}", eta * lambda);
    assert!(avg <= 0.25 * atoms as f64, "codes use {avg:.2} of {atoms} atoms on average: not sparse");
    assert!(avg >= 1.0, "codes use {avg:.2} atoms on average: nothing is coded");
    assert!(mse < pca, "sparse codes reconstruct with MSE {mse:.3}, PCA with {k} components {pca:.3}");
    assert!(mse_valid < pca, "on validation digits the MSE is {mse_valid:.3}, PCA with {k} components {pca:.3}");
    assert!(eta * lambda <= 1.0, "the ISTA step is unstable: η·λmax = {}", eta * lambda);
}

// ------------------------------------------------------------------------------------------------
// E8 (BRIEF §2.8): a log/exp layer computes products of powers.

/// `examples/multiplicative.circ` as written (newton, lr 0.5, its epochs and batch) recovers a
/// power law it was not tuned on: y = 0.6 · x1^−0.8 · x2^2.2 (powers.csv has 2 · x1^1.5 · x2^−0.5),
/// 512 rows with x1, x2 uniform in [0.5, 2], no noise. The exponents are w and the constant e^c.
#[test]
fn e8_log_exp_layer_recovers_an_unseen_power_law() {
    let (a, b, k) = (-0.8, 2.2, 0.6);
    let mut rng = Rng::new(0xE8);
    let rows: Vec<Vec<f64>> = (0..512)
        .map(|_| {
            let (x1, x2) = (rng.range(0.5, 2.0), rng.range(0.5, 2.0));
            vec![x1, x2, k * x1.powf(a) * x2.powf(b)]
        })
        .collect();
    let table = parse_table("power.csv", &csv_text(&["x1".into(), "x2".into(), "y".into()], &rows));
    let checked = example("multiplicative.circ");
    let setup = Setup::new(&checked, None, |_| {});
    let t = setup.train(&table).unwrap_or_else(|e| panic!("multiplicative: {e}"));
    let (w, c) = (t.param("w"), t.param("c")[0]);
    let errors = [(w[0] - a).abs(), (w[1] - b).abs(), (c.exp() - k).abs() / k];
    println!(
        "E8 ({} epochs of newton): exponents {:.8}, {:.8} (true {a}, {b}), constant {:.8} (true {k}); \
         errors {:.1e}, {:.1e}, relative {:.1e}",
        setup.settings.epochs,
        w[0],
        w[1],
        c.exp(),
        errors[0],
        errors[1],
        errors[2]
    );
    assert!(errors.iter().all(|e| *e < 1e-4), "not recovered: errors {errors:?}");
}

/// The model of the harder E8 case: a sum of two products of powers, each with its constant.
const E8_SUM: &str = "model sumprod {
    data x: [N, 2] = csv(\"x1\", \"x2\")
    data y: [N]
    param w: [2, 2] ~ normal(0, 1)
    param c: [2] ~ normal(0, 1)
    let pred = sum(exp(log(x) @ w + c), axis = 1)
    y ~ normal(pred, 0.01)
    train { optimizer = adam(lr = 3e-2), epochs = 3000, batch = 64, seed = 0 }
}
";

/// The harder E8 case: y = 2·x1^1.5·x2^−0.5 + 0.5·x1^−1·x2^2 (x uniform in [0.5, 2], 512 rows)
/// by a sum of two log/exp products. Adam at lr 3e-2 for 3000 epochs (24 000 steps) recovers both
/// products, up to their order, from the draws of seeds 0–3 (largest error 1.2e-3 measured; at
/// 1000 epochs seed 2 was still at 1.8e-2). Slow, not impossible: the rest of the study (adam at
/// other rates, newton, bayes, fewer epochs) is in docs/experiments.md, E8.
#[test]
fn e8_sum_of_two_products_is_recovered_by_adam() {
    let mut rng = Rng::new(0xE85);
    let rows: Vec<Vec<f64>> = (0..512)
        .map(|_| {
            let (x1, x2) = (rng.range(0.5, 2.0), rng.range(0.5, 2.0));
            vec![x1, x2, 2.0 * x1.powf(1.5) * x2.powf(-0.5) + 0.5 * x1.powf(-1.0) * x2.powf(2.0)]
        })
        .collect();
    let table = parse_table("sum.csv", &csv_text(&["x1".into(), "x2".into(), "y".into()], &rows));
    let checked = source("sumprod.circ", E8_SUM);
    // Each product as (exponent of x1, exponent of x2, log constant).
    let truth = [[1.5, -0.5, 2f64.ln()], [-1.0, 2.0, 0.5f64.ln()]];
    for seed in 0..4 {
        let setup = Setup::new(&checked, None, |s| s.seed = seed);
        let t = setup.train(&table).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let (w, c) = (t.param("w"), t.param("c"));
        // w is [2, 2] row-major: column j holds the exponents of product j.
        let found = [[w[0], w[2], c[0]], [w[1], w[3], c[1]]];
        let err = |order: [usize; 2]| -> f64 {
            (0..2)
                .flat_map(|j| (0..3).map(move |i| (j, i)))
                .map(|(j, i)| (found[order[j]][i] - truth[j][i]).abs())
                .fold(0.0, f64::max)
        };
        let e = err([0, 1]).min(err([1, 0]));
        println!("E8 sum of products, seed {seed}: products {found:.5?}, largest error {e:.1e}");
        assert!(e < 1e-2, "seed {seed}: the two products are not recovered: {found:?} (error {e:.1e})");
    }
}

// ------------------------------------------------------------------------------------------------
// E9 (BRIEF §2.6): precision tracking resists forgetting.

/// The E9 protocol (bench/forgetting.sh) by the `circ` binary on the CPU backend, seeds 0 and 1:
/// 20 epochs on digits (task A), 20 on the permuted digits (task B) with `--resume`, then the
/// accuracy on task A. bayes keeps task A (0.86–0.96 over seeds 0–3 measured) where sgd and adam
/// lose it (0.25–0.34): asserted with a margin of 0.3 on each seed.
#[test]
fn e9_bayes_keeps_the_first_task_better_than_sgd_and_adam() {
    use std::process::Command;
    let circ = env!("CARGO_BIN_EXE_circ");
    let model = example_path("forgetting.circ");
    let (a, b) = (data_dir().join("digits.csv"), data_dir().join("digits_permuted.csv"));
    let labels: Vec<f64> = table_rows(&read_table("digits.csv")).iter().map(|r| *r.last().unwrap()).collect();
    let dir = temp_dir("e9");
    let run = |args: &[&str]| {
        let out = Command::new(circ).args(args).output().unwrap();
        assert!(out.status.success(), "circ {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let m = model.to_str().unwrap();
    for seed in ["0", "1"] {
        let mut after_b = Vec::new();
        for rule in ["sgd(lr = 1e-3)", "adam(lr = 1e-2)", "bayes(lr = 0.1)"] {
            let k = dir.join(format!("{seed}-{}.safetensors", &rule[..3]));
            let k = k.to_str().unwrap();
            let common = ["--out", k, "--seed", seed, "--optimizer", rule, "--quiet"];
            run(&[&["train", m, "--data", a.to_str().unwrap(), "--epochs", "20"][..], &common].concat());
            run(&[&["train", m, "--data", b.to_str().unwrap(), "--epochs", "40", "--resume"][..], &common].concat());
            let pred = run(&["run", m, "--params", k, "--data", a.to_str().unwrap()]);
            let classes: Vec<f64> =
                pred.lines().skip(1).map(|l| l.split(',').next().unwrap().parse().unwrap()).collect();
            assert_eq!(classes.len(), labels.len());
            let acc = classes.iter().zip(&labels).filter(|(c, l)| c == l).count() as f64 / labels.len() as f64;
            println!("E9 seed {seed}, {rule}: accuracy on task A after task B {acc:.3}");
            after_b.push(acc);
        }
        let (sgd, adam, bayes) = (after_b[0], after_b[1], after_b[2]);
        assert!(
            bayes > sgd.max(adam) + 0.3,
            "seed {seed}: bayes keeps task A at {bayes:.3}, sgd {sgd:.3}, adam {adam:.3}: not better by 0.3"
        );
    }
}

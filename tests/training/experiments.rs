//! The experiments of BRIEF §4 that run on the examples: E1, E3, E4, E5.

use crate::common::*;
use circ::backend::BackendKind;
use circ::check::checked::UpdateKind;
use circ::train::run::TrainError;
use circ_runtime::csv::Table;
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

#[test]
fn e1_sgd_diverges_on_abx_where_diagonal_newton_converges() {
    let data = abx_data();
    let start = data.fit_error(100.0, 1e-4);

    // The example as written: its own newton rule and settings.
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

    // Plain gradient descent at the learning rates a user would try, same epochs and batches.
    for lr in [0.1, 0.01, 0.001] {
        let checked = with_rule(example("abx.circ"), &format!("sgd(lr = {lr})"));
        let setup = Setup::new(&checked, None, |_| {});
        match setup.train(&data.table) {
            Err(TrainError::NonFinite { epoch, step, origin }) => {
                println!("E1 sgd(lr = {lr}): diverged, loss not finite at epoch {epoch} (step {step}): {origin}");
            }
            Ok(t) => {
                let fit = data.fit_error(t.param("a")[0], t.param("b")[0]);
                println!("E1 sgd(lr = {lr}): finished {epochs} epochs with fit error {fit:e}");
                assert!(fit > 1e-2, "sgd(lr = {lr}) should diverge or stall on abx, but reached fit error {fit:e}");
            }
            Err(e) => panic!("sgd(lr = {lr}) on abx failed for another reason: {e}"),
        }
    }
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
    let table = circ_runtime::csv::read_csv(&path).unwrap();

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
    let table = circ_runtime::csv::read_csv(&path).unwrap();
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

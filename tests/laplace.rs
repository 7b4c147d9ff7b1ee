//! The Laplace posterior (src/train/posterior.rs) end to end: the precisions `circ train` stores
//! at its last epoch, `circ run --uncertainty laplace` against ridge regression's closed form,
//! the per-row Jacobian against finite differences, the errors, and the calibration table of
//! docs/training.md ("Uncertainty from the curvature"):
//!   cargo test --test laplace calibration -- --nocapture

use std::path::{Path, PathBuf};
use std::process::Command;

fn circ(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_circ")).args(args).arg("--color=never").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = circ(args);
    assert_eq!(code, 0, "circ {args:?} failed: {err}");
    out
}

fn root(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p).display().to_string()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("circ-laplace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A CSV table of numbers: header and rows.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<f64>>,
}

impl Table {
    fn parse(text: &str) -> Table {
        let mut lines = text.lines();
        let header = lines.next().unwrap().split(',').map(str::to_string).collect();
        let rows =
            lines.filter(|l| !l.is_empty()).map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
        Table { header, rows }
    }

    fn read(path: &str) -> Table {
        Table::parse(&std::fs::read_to_string(path).unwrap())
    }

    fn column(&self, name: &str) -> Vec<f64> {
        let k =
            self.header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}: {:?}", self.header));
        self.rows.iter().map(|r| r[k]).collect()
    }

    fn text(&self, rows: &[usize]) -> String {
        let mut s = self.header.join(",");
        s.push('\n');
        for r in rows {
            let line: Vec<String> = self.rows[*r].iter().map(|v| format!("{v:?}")).collect();
            s.push_str(&line.join(","));
            s.push('\n');
        }
        s
    }
}

fn tensor(file: &Path, name: &str) -> Vec<f64> {
    let (tensors, _) = circ_runtime::files::safetensors::read(file).unwrap();
    circ_runtime::files::safetensors::find(&tensors, name).unwrap_or_else(|| panic!("no tensor {name}")).values.clone()
}

/// examples/ridge.circ: `target ~ normal(x @ w + b, 1)`, w ~ normal(0, 1), b flat. Its loss is
/// ½Σ_i (y_i − x_i·w − b)² + ½‖w‖² (plus constants), so the Gauss–Newton diagonal (here the exact
/// diagonal of the Hessian) is Σ_i X_ij² + 1 for w_j and N for b: the stored posterior precision.
/// The mean m = x·w + b has ∂m/∂w_j = x_j and ∂m/∂b = 1, so the delta method's parameter
/// variance is Σ_j x_j² / (Σ_i X_ij² + 1) + 1/N, and with the likelihood's σ² = 1 the predictive
/// variance is `1 + Σ_j x_j² / (Σ_i X_ij² + 1) + 1/N`: the formula, for this model's
/// prior and noise as they are. (The diagonal Laplace approximation: the full one would invert
/// XᵀX + diag(1, …, 1, 0) with its off-diagonal terms.) Trained on 30 rows, predicted on all 442.
#[test]
fn ridge_laplace_variance_equals_the_closed_form() {
    let data = Table::read(&root("data/diabetes.csv"));
    let n = 30;
    let train = temp("ridge30.csv");
    std::fs::write(&train, data.text(&(0..n).collect::<Vec<_>>())).unwrap();
    let features = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"];
    let x: Vec<Vec<f64>> = features.iter().map(|f| data.column(f)).collect();
    let precision: Vec<f64> = x.iter().map(|c| c[..n].iter().map(|v| v * v).sum::<f64>() + 1.0).collect();
    let model = root("examples/ridge.circ");
    // Full batch, and batches of 7 (five blocks: the prior's precision is counted once).
    for batch in ["30", "7"] {
        let ck = temp(&format!("ridge-{batch}.safetensors"));
        let (t, c) = (train.to_str().unwrap(), ck.to_str().unwrap());
        ok(&["train", &model, "--data", t, "--out", c, "--backend", "interp", "--epochs", "2", "--batch", batch, "-q"]);
        let pw = tensor(&ck, "posterior.precision.w");
        for (j, (got, want)) in pw.iter().zip(&precision).enumerate() {
            assert!((got - want).abs() <= 1e-12 * want, "batch {batch}: precision of w[{j}] {got} vs {want}");
        }
        let pb = tensor(&ck, "posterior.precision.b");
        assert!((pb[0] - n as f64).abs() <= 1e-12 * n as f64, "batch {batch}: precision of b {} vs {n}", pb[0]);
    }
    let ck = temp("ridge-30.safetensors");
    let c = ck.to_str().unwrap();
    let d = root("data/diabetes.csv");
    let out = Table::parse(&ok(&[
        "run",
        &model,
        "--params",
        c,
        "--data",
        &d,
        "--backend",
        "interp",
        "--uncertainty",
        "laplace",
    ]));
    assert_eq!(out.header, ["target.mean", "target.variance", "target.param_variance"]);
    let (var, param) = (out.column("target.variance"), out.column("target.param_variance"));
    let mut worst: f64 = 0.0;
    for r in 0..data.rows.len() {
        let closed = 1.0 + (0..10).map(|j| x[j][r] * x[j][r] / precision[j]).sum::<f64>() + 1.0 / n as f64;
        worst = worst.max((var[r] - closed).abs());
        assert!((var[r] - closed).abs() <= 1e-9, "row {r}: {} vs the closed form {closed}", var[r]);
        assert!((param[r] - (closed - 1.0)).abs() <= 1e-9, "row {r}: parameter part {}", param[r]);
    }
    println!("largest |variance − closed form| over 442 rows: {worst:e}");
    // Without the flag: the likelihood's variance alone, and the columns as before.
    let plain = Table::parse(&ok(&["run", &model, "--params", c, "--data", &d, "--backend", "interp"]));
    assert_eq!(plain.header, ["target.mean", "target.variance"]);
    assert!(plain.column("target.variance").iter().all(|v| *v == 1.0));
    assert_eq!(plain.column("target.mean"), out.column("target.mean"));
    // The compiled backend (f32) stores the same precisions to f32's accuracy.
    let ck32 = temp("ridge-cpu.safetensors");
    ok(&["train", &model, "--data", train.to_str().unwrap(), "--out", ck32.to_str().unwrap(), "--epochs", "2", "-q"]);
    for (got, want) in tensor(&ck32, "posterior.precision.w").iter().zip(&precision) {
        assert!((got - want).abs() <= 1e-5 * want, "cpu backend: {got} vs {want}");
    }
    let cpu = Table::parse(&ok(&[
        "run",
        &model,
        "--params",
        ck32.to_str().unwrap(),
        "--data",
        &d,
        "--uncertainty",
        "laplace",
    ]));
    for (r, v) in cpu.column("target.param_variance").iter().enumerate() {
        let closed = (0..10).map(|j| x[j][r] * x[j][r] / precision[j]).sum::<f64>() + 1.0 / n as f64;
        assert!((v - closed).abs() <= 1e-5 * closed, "cpu backend, row {r}: {v} vs {closed}");
    }
}

/// A checkpoint without posterior precisions: `--uncertainty laplace` says to retrain; plain
/// `run` still reads it.
#[test]
fn laplace_without_stored_precision_says_to_retrain() {
    use circ_runtime::files::safetensors::{write, DType, NamedTensor};
    let ck = temp("bare.safetensors");
    let t = |name: &str, shape: Vec<usize>, v: f64| NamedTensor {
        name: name.into(),
        values: vec![v; shape.iter().product()],
        shape,
    };
    write(&ck, &[t("w", vec![10], 0.5), t("b", vec![], 1.0)], DType::F64, &[]).unwrap();
    let (model, d, c) = (root("examples/ridge.circ"), root("data/diabetes.csv"), ck.to_str().unwrap().to_string());
    let (code, _, err) = circ(&["run", &model, "--params", &c, "--data", &d, "--uncertainty", "laplace"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no posterior precision") && err.contains("posterior.precision.w"), "{err}");
    assert!(err.contains("train again"), "{err}");
    ok(&["run", &model, "--params", &c, "--data", &d]);
    let (code, _, err) = circ(&["run", &model, "--params", &c, "--data", &d, "--uncertainty", "bogus"]);
    assert_eq!(code, 2, "{err}");
    // A flat-prior parameter no data row constrains has precision 0: unbounded, said so.
    let zero = temp("zero.safetensors");
    write(
        &zero,
        &[
            t("w", vec![10], 0.5),
            t("b", vec![], 1.0),
            t("posterior.precision.w", vec![10], 2.0),
            t("posterior.precision.b", vec![], 0.0),
        ],
        DType::F64,
        &[],
    )
    .unwrap();
    let (code, _, err) =
        circ(&["run", &model, "--params", zero.to_str().unwrap(), "--data", &d, "--uncertainty", "laplace"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("`b`") && err.contains("precision is 0"), "{err}");
}

/// The delta method's variance Σ_k (∂m/∂θ_k)²/P_k from the Jacobian graph, row by row, equals
/// the same sum over central finite differences of the prediction graph (f64), for the logits
/// of a categorical output and the mean of a normal one through a tanh layer.
#[test]
fn jacobian_variance_matches_finite_differences() {
    use circ::interp::HostTensor;
    use circ::train::posterior::Jacobian;
    let text = "model jt {\n data x: [N, 3] = csv(\"a\", \"b\", \"c\")\n data y: int[N]\n data z: [N]\n \
                param w1: [3, 4] ~ normal(0, 1)\n param b1: [4] ~ normal(0, 1)\n param w2: [4, 3] ~ normal(0, 1)\n \
                param v: [4] ~ normal(0, 1)\n let h = tanh(x @ w1 + b1)\n y ~ categorical(logits = h @ w2)\n \
                z ~ normal(h @ v + 0.5, 0.5)\n}\n";
    let checked = circ::driver::check_source("jt.circ", text);
    assert!(!checked.has_errors(), "{}", checked.render(false));
    let mut g = circ::ir::lower::lower(&checked.models[0], 3);
    g.outputs.retain(|o| o.name != "loss");
    circ::passes::dce::run(&mut g);
    let rows = 4;
    let x: Vec<f64> = (0..rows * 3).map(|i| ((i * 7 % 11) as f64 - 5.0) / 4.0).collect();
    let data = vec![
        HostTensor::new(vec![rows, 3], x),
        HostTensor::new(vec![rows], vec![0.0; rows]),
        HostTensor::new(vec![rows], vec![0.0; rows]),
    ];
    let params = circ::ir::init::initial_values(&g);
    let precision: Vec<Vec<f64>> = params
        .iter()
        .enumerate()
        .map(|(i, p)| (0..p.len()).map(|k| 0.5 + ((i + 3 * k) % 5) as f64).collect())
        .collect();
    let predictions: Vec<String> = g
        .terms
        .iter()
        .filter_map(|t| match t {
            circ::ir::graph::Term::Likelihood { prediction, .. } => Some(prediction.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(predictions.len(), 2);
    let predict = |p: &[Vec<f64>], name: &str| -> Vec<f64> {
        circ::interp::run_with::<f64>(&g, &data, p, &[]).unwrap().get(name).unwrap().data.clone()
    };
    for name in &predictions {
        let mut j = Jacobian::new(&g, name, circ::backend::BackendKind::Interp).unwrap();
        let got = j.variance(&data, &params, &precision).unwrap();
        let width = got.len() / rows;
        let mut want = vec![0.0; got.len()];
        let h = 1e-5;
        for (i, p) in params.iter().enumerate() {
            for k in 0..p.len() {
                let mut up = params.clone();
                up[i][k] += h;
                let mut down = params.clone();
                down[i][k] -= h;
                let (a, b) = (predict(&up, name), predict(&down, name));
                for e in 0..got.len() {
                    let d = (a[e] - b[e]) / (2.0 * h);
                    want[e] += d * d / precision[i][k];
                }
            }
        }
        assert!(width == 1 || width == 3, "{name}: width {width}");
        for (e, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() <= 1e-7 * b.abs().max(1e-3), "{name} entry {e}: {a} vs finite differences {b}");
        }
    }
}

/// A seeded permutation of 0..n (an LCG; only the split depends on it).
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        p.swap(i, ((s >> 33) % (i as u64 + 1)) as usize);
    }
    p
}

/// Held-out coverage of central 90% intervals and mean Gaussian NLL of predictions (mean,
/// variance) against `y`.
fn calibration(mean: &[f64], var: &[f64], y: &[f64]) -> (f64, f64) {
    let z90 = 1.644_853_626_951_472_2;
    let n = y.len() as f64;
    let covered = mean.iter().zip(var).zip(y).filter(|((m, v), y)| (*y - *m).abs() <= z90 * v.sqrt()).count();
    let nll: f64 = mean
        .iter()
        .zip(var)
        .zip(y)
        .map(|((m, v), y)| 0.5 * (2.0 * std::f64::consts::PI * v).ln() + (y - m) * (y - m) / (2.0 * v))
        .sum();
    (covered as f64 / n, nll / n)
}

/// Ridge regression whose noise scale is learned (MAP), for the calibration table: diabetes with
/// features and target standardized by the training rows' mean and deviation.
const RIDGE_NOISE: &str = "model ridge_noise {
    data x: [N, 10] = csv(\"age\" .. \"s6\")
    data target: [N]
    param w: [10] ~ normal(0, 1)
    param b: [] = 0 ~ flat
    param log_s: [] = 0 ~ flat
    target ~ normal(x @ w + b, exp(log_s))
    train { optimizer = adam(lr = 0.05), epochs = 400, seed = 0 }
}
";

/// One split of the calibration table: trains `model` on rows `train` of `table` (written as
/// CSV), predicts the rest with and without `--uncertainty laplace`; returns (coverage, NLL)
/// without and with.
fn calibrate(
    model: &str,
    table: &Table,
    train: &[usize],
    held: &[usize],
    target: &str,
    extra: &[&str],
    tag: &str,
) -> [(f64, f64); 2] {
    let (tr, he, ck) =
        (temp(&format!("{tag}-train.csv")), temp(&format!("{tag}-held.csv")), temp(&format!("{tag}.safetensors")));
    std::fs::write(&tr, table.text(train)).unwrap();
    std::fs::write(&he, table.text(held)).unwrap();
    let mut args = vec![
        "train",
        model,
        "--data",
        tr.to_str().unwrap(),
        "--out",
        ck.to_str().unwrap(),
        "--backend",
        "interp",
        "-q",
    ];
    args.extend_from_slice(extra);
    ok(&args);
    let y: Vec<f64> =
        held.iter().map(|r| table.rows[*r][table.header.iter().position(|h| h == target).unwrap()]).collect();
    let run = |flag: bool| {
        let mut a =
            vec!["run", model, "--params", ck.to_str().unwrap(), "--data", he.to_str().unwrap(), "--backend", "interp"];
        if flag {
            a.extend_from_slice(&["--uncertainty", "laplace"]);
        }
        let t = Table::parse(&ok(&a));
        calibration(&t.column(&format!("{target}.mean")), &t.column(&format!("{target}.variance")), &y)
    };
    [run(false), run(true)]
}

/// One split's (coverage, NLL) without and with Laplace, for each of the three models.
type Split = [[(f64, f64); 2]; 3];

/// Where data are few, the likelihood's variance alone is too small on held-out rows (the fit has
/// adapted to its few rows): adding the parameters' Laplace variance brings the coverage of 90%
/// intervals toward 90% and lowers the held-out NLL. Five random splits each; the table is in
/// docs/training.md.
#[test]
fn calibration_improves_where_data_are_few() {
    let splits = 5;
    // Ridge, learned noise, 30 training rows of 442.
    let raw = Table::read(&root("data/diabetes.csv"));
    let ridge = temp("ridge_noise.circ");
    std::fs::write(&ridge, RIDGE_NOISE).unwrap();
    let ridge = ridge.to_str().unwrap().to_string();
    let mut rows: Vec<Split> = Vec::new();
    for s in 0..splits {
        let p = shuffled(raw.rows.len(), s);
        let (train, held) = (&p[..30], &p[30..]);
        // Standardized by the training rows alone.
        let mut t = Table { header: raw.header.clone(), rows: raw.rows.clone() };
        for c in 0..t.header.len() {
            let m = train.iter().map(|r| raw.rows[*r][c]).sum::<f64>() / 30.0;
            let sd = (train.iter().map(|r| (raw.rows[*r][c] - m).powi(2)).sum::<f64>() / 29.0).sqrt();
            t.rows.iter_mut().for_each(|r| r[c] = (r[c] - m) / sd);
        }
        let ridge_row = calibrate(&ridge, &t, train, held, "target", &[], &format!("ridge{s}"));
        // examples/ridge.circ (σ = 1 fixed) on the same rows, trained as the model above (its own
        // newton(lr = 0.5) diverges on two of these splits): reported, not asserted.
        let adam = ["--optimizer", "adam(lr = 0.05)", "--epochs", "400"];
        let fixed_row = calibrate(&root("examples/ridge.circ"), &t, train, held, "target", &adam, &format!("fixed{s}"));
        // hetero (the example as shipped, all 50 rows for training), 50 rows of 1500.
        let noisy = Table::read(&root("data/noisy.csv"));
        let q = shuffled(noisy.rows.len(), 100 + s);
        let hetero_row = calibrate(
            &root("examples/hetero.circ"),
            &noisy,
            &q[..50],
            &q[50..],
            "y",
            &["--valid-fraction", "0"],
            &format!("hetero{s}"),
        );
        rows.push([ridge_row, hetero_row, fixed_row]);
    }
    println!("| model (rows) | split | 90% coverage, likelihood only | with laplace | held-out NLL, likelihood only | with laplace |");
    println!("|---|--:|--:|--:|--:|--:|");
    let names = ["ridge, noise learned (30)", "hetero (50)", "examples/ridge.circ, σ = 1 (30)"];
    for (m, name) in names.iter().enumerate() {
        for (s, r) in rows.iter().enumerate() {
            let [(c0, n0), (c1, n1)] = r[m];
            println!("| {name} | {s} | {c0:.3} | {c1:.3} | {n0:.3} | {n1:.3} |");
        }
        let mean = |f: &dyn Fn(&Split) -> f64| rows.iter().map(f).sum::<f64>() / rows.len() as f64;
        let (c0, c1) = (mean(&|r| r[m][0].0), mean(&|r| r[m][1].0));
        let (n0, n1) = (mean(&|r| r[m][0].1), mean(&|r| r[m][1].1));
        println!("| {name} | mean | {c0:.3} | {c1:.3} | {n0:.3} | {n1:.3} |");
        if m == 2 {
            continue;
        }
        assert!(n1 < n0, "{name}: mean held-out NLL {n1} with laplace, {n0} without");
        assert!((c1 - 0.9).abs() < (c0 - 0.9).abs(), "{name}: coverage {c1} with laplace, {c0} without");
    }
}

/// Solves `a x = b` (Gaussian elimination with partial pivoting).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for c in 0..n {
        let p = (c..n).max_by(|i, j| a[*i][c].abs().total_cmp(&a[*j][c].abs())).unwrap();
        a.swap(c, p);
        b.swap(c, p);
        for r in c + 1..n {
            let f = a[r][c] / a[c][c];
            let pivot = a[c].clone();
            for (x, p) in a[r][c..].iter_mut().zip(&pivot[c..]) {
                *x -= f * p;
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        x[r] = (b[r] - (r + 1..n).map(|k| a[r][k] * x[k]).sum::<f64>()) / a[r][r];
    }
    x
}

/// EWC (`circ train --prior-from A --prior-weight λ`) on ridge: training on rows B with the
/// penalty ½·λ·Σ_k P_k (θ_k − θ*_k)² toward checkpoint A (θ* its weights, P its stored precision)
/// minimizes ½‖y_B − X_B w − b‖² + ½‖w‖² + ½·λ·Σ_k P_k (θ_k − θ*_k)², a quadratic whose minimizer
/// solves (X̃ᵀX̃ + diag(1, …, 1, 0) + λ·diag(P)) θ = X̃ᵀy + λ·P∘θ* (X̃ = [X_B 1], θ = (w, b)); the
/// stored posterior precision becomes Σ_B X_ij² + 1 + λ·P (and N_B + λ·P for b).
#[test]
fn ewc_penalty_trains_to_the_closed_form() {
    let data = Table::read(&root("data/diabetes.csv"));
    let (a_rows, b_rows): (Vec<usize>, Vec<usize>) = ((0..30).collect(), (30..60).collect());
    let (a, b) = (temp("ewc-a.csv"), temp("ewc-b.csv"));
    std::fs::write(&a, data.text(&a_rows)).unwrap();
    std::fs::write(&b, data.text(&b_rows)).unwrap();
    let (ka, kb) = (temp("ewc-a.safetensors"), temp("ewc-b.safetensors"));
    let model = root("examples/ridge.circ");
    let (sa, sb, ska, skb) = (a.to_str().unwrap(), b.to_str().unwrap(), ka.to_str().unwrap(), kb.to_str().unwrap());
    ok(&["train", &model, "--data", sa, "--out", ska, "--backend", "interp", "--epochs", "20", "-q"]);
    let lambda = 2.0;
    ok(&[
        "train",
        &model,
        "--data",
        sb,
        "--out",
        skb,
        "--backend",
        "interp",
        "--epochs",
        "400",
        "--prior-from",
        ska,
        "--prior-weight",
        "2",
        "-q",
    ]);
    let center: Vec<f64> = tensor(&ka, "w").into_iter().chain(tensor(&ka, "b")).collect();
    let p: Vec<f64> =
        tensor(&ka, "posterior.precision.w").into_iter().chain(tensor(&ka, "posterior.precision.b")).collect();
    let features = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"];
    let cols: Vec<Vec<f64>> = features.iter().map(|f| data.column(f)).collect();
    let y = data.column("target");
    let row = |r: usize| -> Vec<f64> { cols.iter().map(|c| c[r]).chain([1.0]).collect() };
    let mut m = vec![vec![0.0; 11]; 11];
    let mut rhs = vec![0.0; 11];
    for r in &b_rows {
        let x = row(*r);
        for i in 0..11 {
            rhs[i] += x[i] * y[*r];
            for j in 0..11 {
                m[i][j] += x[i] * x[j];
            }
        }
    }
    for i in 0..11 {
        m[i][i] += if i < 10 { 1.0 } else { 0.0 } + lambda * p[i];
        rhs[i] += lambda * p[i] * center[i];
    }
    let want = solve(m.clone(), rhs);
    let got: Vec<f64> = tensor(&kb, "w").into_iter().chain(tensor(&kb, "b")).collect();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "θ[{i}]: {g} vs the closed form {w}");
    }
    // The new posterior's precision: B's curvature, the prior, and A's posterior weighted by λ.
    let pb: Vec<f64> =
        tensor(&kb, "posterior.precision.w").into_iter().chain(tensor(&kb, "posterior.precision.b")).collect();
    for i in 0..11 {
        assert!((pb[i] - m[i][i]).abs() <= 1e-9 * m[i][i], "precision[{i}]: {} vs {}", pb[i], m[i][i]);
    }
    // A file that is no checkpoint, or a negative weight: clear errors.
    let (code, _, err) = circ(&["train", &model, "--data", sb, "--prior-from", sa, "-q"]);
    assert_eq!(code, 1, "a CSV file is no checkpoint: {err}");
    let (code, _, err) = circ(&["train", &model, "--data", sb, "--prior-from", ska, "--prior-weight=-1", "-q"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--prior-weight"), "{err}");
}

/// E9's EWC control (docs/experiments.md; bench/forgetting.sh runs seeds 0–3) by the binary on the
/// CPU backend, seeds 0 and 1: adam(lr = 1e-2) for 20 epochs on digits (task A), then 20 on the
/// permuted digits (task B) with `--resume`, plainly and with `--prior-from` A's checkpoint at
/// λ = 10. Measured over seeds 0–3: A kept at 0.91 (0.89–0.94) with EWC, 0.31 (0.29–0.34)
/// without; B learned to 0.96 (0.95–0.97). Asserted: EWC keeps A better by 0.3 on each seed and
/// still learns B above 0.9.
#[test]
fn e9_ewc_keeps_the_first_task() {
    let model = root("examples/forgetting.circ");
    let (a, b) = (root("data/digits.csv"), root("data/digits_permuted.csv"));
    let label = |file: &str| -> Vec<f64> { Table::read(file).column("label") };
    let (la, lb) = (label(&a), label(&b));
    let accuracy = |k: &str, data: &str, labels: &[f64]| -> f64 {
        let pred = Table::parse(&ok(&["run", &model, "--params", k, "--data", data]));
        let classes = pred.column("label.class");
        classes.iter().zip(labels).filter(|(c, l)| c == l).count() as f64 / labels.len() as f64
    };
    let rule = "adam(lr = 1e-2)";
    for seed in ["0", "1"] {
        let ka = temp(&format!("e9-{seed}-a.safetensors"));
        let ka = ka.to_str().unwrap();
        ok(&["train", &model, "--data", &a, "--out", ka, "--seed", seed, "--epochs", "20", "--optimizer", rule, "-q"]);
        let mut after = Vec::new();
        for anchor in [false, true] {
            let k = temp(&format!("e9-{seed}-{anchor}.safetensors"));
            std::fs::copy(ka, &k).unwrap();
            let k = k.to_str().unwrap();
            let mut args = vec!["train", &model, "--data", &b, "--out", k, "--seed", seed, "--epochs", "40"];
            args.extend_from_slice(&["--optimizer", rule, "--resume", "-q"]);
            if anchor {
                args.extend_from_slice(&["--prior-from", ka, "--prior-weight", "10"]);
            }
            ok(&args);
            after.push((accuracy(k, &a, &la), accuracy(k, &b, &lb)));
        }
        let ((plain_a, _), (ewc_a, ewc_b)) = (after[0], after[1]);
        println!("E9 seed {seed}: task A after B {plain_a:.3} (adam), {ewc_a:.3} (adam + EWC λ = 10); B {ewc_b:.3}");
        assert!(ewc_a > plain_a + 0.3, "seed {seed}: EWC keeps A at {ewc_a:.3}, adam at {plain_a:.3}");
        assert!(ewc_b > 0.9, "seed {seed}: EWC learns B only to {ewc_b:.3}");
    }
}

//! The `circ` binary end to end: exit codes, files written, numbers checked independently.

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

fn root(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p).display().to_string()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("circ-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn check_exit_codes() {
    let (code, out, _) = circ(&["check", "--verbose", &root("examples/ridge.circ")]);
    assert_eq!(code, 0);
    assert!(out.contains("param   w") && out.contains("normal(0, 1)"), "{out}");
    let bad = temp("bad.circ");
    std::fs::write(&bad, "model m {\n data y: [N]\n y ~ normal(q, 1)\n}\n").unwrap();
    let (code, _, err) = circ(&["check", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("E0204") && err.contains("unknown name `q`"), "{err}");
    let (code, _, err) = circ(&["check", "/no/such/file.circ"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read /no/such/file.circ"), "{err}");
    let (code, _, _) = circ(&["check"]);
    assert_eq!(code, 2, "usage errors exit with 2");
}

/// `circ grad` on ridge regression at given parameters equals the closed form
/// ∂/∂w [½‖y − Xw − b‖² + ½‖w‖²] = −Xᵀr + w and ∂/∂b = −Σr, r = y − Xw − b.
#[test]
fn grad_matches_the_closed_form_ridge_gradient() {
    let x = [[0.5, -1.0], [1.5, 0.25], [-0.5, 2.0], [1.0, 1.0]];
    let y = [1.0, -2.0, 0.5, 3.0];
    let csv = temp("d.csv");
    let mut text = String::from("a,b,y\n");
    for (r, t) in x.iter().zip(y) {
        text.push_str(&format!("{},{},{}\n", r[0], r[1], t));
    }
    std::fs::write(&csv, text).unwrap();
    let model = temp("r.circ");
    std::fs::write(
        &model,
        "model r {\n data x: [N, 2] = csv(\"a\", \"b\")\n data y: [N]\n param w: [2] ~ normal(0, 1)\n param b: []\n y ~ normal(x @ w + b, 1)\n}\n",
    )
    .unwrap();
    let (w, b) = ([0.3, -0.7], 0.2);
    let params = temp("p.safetensors");
    use circ_runtime::files::safetensors::{self as st, DType, NamedTensor};
    st::write(
        &params,
        &[
            NamedTensor { name: "w".into(), shape: vec![2], values: w.to_vec() },
            NamedTensor { name: "b".into(), shape: vec![], values: vec![b] },
        ],
        DType::F64,
        &[],
    )
    .unwrap();
    let out = temp("g.safetensors");
    let args = [
        "grad",
        model.to_str().unwrap(),
        "--data",
        csv.to_str().unwrap(),
        "--params",
        params.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let (code, _, err) = circ(&args);
    assert_eq!(code, 0, "{err}");
    let (t, meta) = st::read(&out).unwrap();
    assert!(meta.iter().any(|(k, v)| k == "circ" && v == "gradient"));
    let r: Vec<f64> = x.iter().zip(y).map(|(xi, yi)| yi - xi[0] * w[0] - xi[1] * w[1] - b).collect();
    let gw: Vec<f64> = (0..2).map(|j| -x.iter().zip(&r).map(|(xi, ri)| xi[j] * ri).sum::<f64>() + w[j]).collect();
    let gb = -r.iter().sum::<f64>();
    let got_w = &st::find(&t, "w").unwrap().values;
    let got_b = st::find(&t, "b").unwrap().values[0];
    for j in 0..2 {
        assert!((got_w[j] - gw[j]).abs() < 1e-12, "{got_w:?} vs {gw:?}");
    }
    assert!((got_b - gb).abs() < 1e-12);

    // The curvature of this model is the exact Hessian diagonal: Σx² + 1 for w, N for b.
    let (code, _, err) = circ(&[&args[..], &["--bprop2"]].concat());
    assert_eq!(code, 0, "{err}");
    let (t, _) = st::read(&out).unwrap();
    let cw = &st::find(&t, "w").unwrap().values;
    for j in 0..2 {
        let want = x.iter().map(|xi| xi[j] * xi[j]).sum::<f64>() + 1.0;
        assert!((cw[j] - want).abs() < 1e-12);
    }
    assert_eq!(st::find(&t, "b").unwrap().values[0], 4.0);

    // H·v with v = e_b: the Hessian column of b, Σx_j for w and N for b.
    let v = temp("v.safetensors");
    st::write(
        &v,
        &[
            NamedTensor { name: "w".into(), shape: vec![2], values: vec![0.0, 0.0] },
            NamedTensor { name: "b".into(), shape: vec![], values: vec![1.0] },
        ],
        DType::F64,
        &[],
    )
    .unwrap();
    let (code, _, err) = circ(&[&args[..], &["--hvp", v.to_str().unwrap()]].concat());
    assert_eq!(code, 0, "{err}");
    let (t, _) = st::read(&out).unwrap();
    let hw = &st::find(&t, "w").unwrap().values;
    for j in 0..2 {
        assert!((hw[j] - x.iter().map(|xi| xi[j]).sum::<f64>()).abs() < 1e-12);
    }
    assert_eq!(st::find(&t, "b").unwrap().values[0], 4.0);

    // A parameter file that does not fit is refused with every problem named.
    st::write(&params, &[NamedTensor { name: "ww".into(), shape: vec![2], values: w.to_vec() }], DType::F64, &[])
        .unwrap();
    let (code, _, err) = circ(&args);
    assert_eq!(code, 1);
    assert!(
        err.contains("no tensor `w`") && err.contains("no tensor `b`") && err.contains("`ww` is not a parameter"),
        "{err}"
    );
}

/// E6 end to end: `circ train` learns a per-example scale that tracks the true noise, `circ run`
/// reports it as a variance; metrics, plot and checkpoint files are written; `--resume` goes on.
#[test]
fn train_then_run_reports_a_calibrated_variance() {
    // y = sin x + noise whose standard deviation 0.1 + 0.5·|x| grows away from 0.
    let csv = temp("het.csv");
    let mut text = String::from("x,y\n");
    let mut state: u64 = 7;
    let mut uniform = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    for _ in 0..1500 {
        let x = uniform() * 6.0 - 3.0;
        let z = (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos();
        text.push_str(&format!("{x},{}\n", x.sin() + (0.1 + 0.5 * x.abs()) * z));
    }
    std::fs::write(&csv, text).unwrap();
    let (ckpt, metrics, plot) = (temp("het.safetensors"), temp("het.jsonl"), temp("het.png"));
    let model = root("examples/hetero.circ");
    let base = ["train", &model, "--data", csv.to_str().unwrap(), "--out", ckpt.to_str().unwrap(), "--quiet"];
    let (code, out, err) = circ(
        &[&base[..], &["--epochs", "60", "--metrics", metrics.to_str().unwrap(), "--plot", plot.to_str().unwrap()]]
            .concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"epoch\":60"), "{out}");
    assert_eq!(std::fs::read_to_string(&metrics).unwrap().lines().count(), 60);
    assert!(std::fs::read(&plot).unwrap().starts_with(b"\x89PNG"));
    // Resume for 20 more epochs: the metrics file grows, the checkpoint says epoch 80.
    let (code, _, err) =
        circ(&[&base[..], &["--epochs", "80", "--resume", "--metrics", metrics.to_str().unwrap()]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&metrics).unwrap().lines().count(), 80);
    let (_, meta) = circ_runtime::files::safetensors::read(&ckpt).unwrap();
    assert!(meta.iter().any(|(k, v)| k == "epoch" && v == "80"), "{meta:?}");

    let new = temp("hx.csv");
    std::fs::write(&new, "x\n0\n2.5\n-2.5\n").unwrap();
    let (code, out, err) = circ(&["run", &model, "--params", ckpt.to_str().unwrap(), "--data", new.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Vec<f64>> = out.lines().skip(1).map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    assert_eq!(out.lines().next().unwrap(), "y.mean,y.variance");
    let sd: Vec<f64> = rows.iter().map(|r| r[1].sqrt()).collect();
    // True standard deviations: 0.1 at 0, 1.35 at ±2.5.
    assert!(sd[0] < 0.5 && sd[1] > 0.8 && sd[2] > 0.8, "predicted standard deviations {sd:?}");
}

/// `circ emit` lists every kernel with its source lines, and Cranelift IR for elementwise ones.
#[test]
fn emit_shows_kernels_with_their_source_lines() {
    let (code, out, err) = circ(&["emit", &root("examples/ridge.circ"), "--graph", "forward"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("; model ridge:"), "{out}");
    assert!(out.contains("kernel 0: matmul") && out.contains("the gemm crate"), "{out}");
    assert!(out.contains("function u0:") && out.contains("f32x4"), "{out}");
    assert!(out.contains("ridge.circ:10:11: `param w: [10] ~ normal(0, 1)`"), "{out}");
    let (code, out, err) = circ(&["emit", &root("examples/ridge.circ"), "--asm"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("kernel"), "{out}");
}

/// The generated code of the small examples, kernel by kernel, as `circ emit` prints it: a change
/// to code generation shows here as a reviewed snapshot diff.
#[test]
fn emit_snapshots_of_small_examples() {
    for (name, graph) in [("ridge", "forward"), ("abx", "step"), ("logistic", "gradient")] {
        let file = format!("examples/{name}.circ");
        let out = Command::new(env!("CARGO_BIN_EXE_circ"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["emit", &file, "--graph", graph])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        insta::assert_snapshot!(format!("emit_{name}_{graph}"), String::from_utf8_lossy(&out.stdout));
    }
}

/// A small linear model and a CSV for it: columns `a`, `b` (inputs) and `y`, beside `extra`
/// columns given as (header, value of every row).
fn linear_case(tag: &str, extra: &[(&str, &str)]) -> (PathBuf, PathBuf) {
    let model = temp(&format!("{tag}.circ"));
    std::fs::write(
        &model,
        "model lin {\n data x: [N, 2] = csv(\"a\", \"b\")\n data y: [N]\n param w: [2] ~ normal(0, 1)\n y ~ normal(x @ w, 1)\n train { epochs = 3 }\n}\n",
    )
    .unwrap();
    let mut header = String::from("a");
    for (h, _) in extra {
        header.push_str(&format!(",{h}"));
    }
    header.push_str(",b,y\n");
    let mut text = header;
    for r in 0..8 {
        text.push_str(&format!("{}", r as f64 * 0.5));
        for (_, v) in extra {
            text.push_str(&format!(",{v}"));
        }
        text.push_str(&format!(",{},{}\n", 1.0 - r as f64 * 0.25, r as f64 * 0.1));
    }
    let csv = temp(&format!("{tag}.csv"));
    std::fs::write(&csv, text).unwrap();
    (model, csv)
}

/// Without a terminal on stderr (a log, CI) every epoch still gets its line; `--quiet` drops them.
#[test]
fn train_prints_epoch_lines_without_a_terminal() {
    let (model, csv) = linear_case("epochs", &[]);
    let (code, out, err) = circ(&["train", model.to_str().unwrap(), "--data", csv.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for epoch in 1..=3 {
        assert!(err.contains(&format!("epoch {epoch:>4}  train nll")), "no line for epoch {epoch}:\n{err}");
    }
    assert!(out.contains("\"epoch\":3"), "{out}");
    let (code, _, err) = circ(&["train", model.to_str().unwrap(), "--data", csv.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("train nll"), "--quiet printed epoch lines:\n{err}");
}

/// Columns the model does not read are not parsed: text, `NA` and empty fields there are fine;
/// a bad value in a column it reads is still refused with file:line:col and the column's name.
#[test]
fn unused_csv_columns_are_not_parsed() {
    let extra = [("species", "setosa"), ("note", "NA"), ("blank", "")];
    let (model, csv) = linear_case("unused", &extra);
    let (code, out, err) = circ(&["train", model.to_str().unwrap(), "--data", csv.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"epoch\":3"), "{out}");

    // `run` reads only the inputs its predictions need: no `y`, and text elsewhere.
    let ckpt = temp("unused.safetensors");
    let (code, _, err) = circ(&[
        "train",
        model.to_str().unwrap(),
        "--data",
        csv.to_str().unwrap(),
        "--quiet",
        "--out",
        ckpt.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let new = temp("unused-new.csv");
    std::fs::write(&new, "a,species,b\n1,setosa,2\n0.5,NA,-1\n").unwrap();
    let (code, out, err) =
        circ(&["run", model.to_str().unwrap(), "--params", ckpt.to_str().unwrap(), "--data", new.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");

    // A used column with text: line 3 (the second record), field 5 (`b`).
    let bad = temp("unused-bad.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut fields: Vec<&str> = lines[2].split(',').collect();
    fields[4] = "NA";
    lines[2] = fields.join(",");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let (code, _, err) = circ(&["train", model.to_str().unwrap(), "--data", bad.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("{}:3:5 (column \"b\")", bad.display())) && err.contains("NA"), "{err}");
}

/// `circ --help` lists every command on one line: each doc comment's first sentence is its own
/// paragraph (issue 17, point 11).
#[test]
fn help_lists_each_command_on_one_line() {
    let (code, out, _) = circ(&["--help"]);
    assert_eq!(code, 0);
    let list: Vec<&str> =
        out.lines().skip_while(|l| *l != "Commands:").skip(1).take_while(|l| !l.trim().is_empty()).collect();
    let names: Vec<&str> = list.iter().map(|l| l.split_whitespace().next().unwrap_or("")).collect();
    for c in ["check", "graph", "eval", "grad", "hessian", "emit", "train", "run", "devices", "lsp", "help"] {
        assert!(names.contains(&c), "`{c}` missing from:\n{out}");
    }
    for line in &list {
        // A continuation line would start with spaces and no command name of its own.
        assert!(line.starts_with("  ") && !line.starts_with("   "), "not one line per command:\n{out}");
        assert!(line.len() <= 100, "summary too long ({} chars): {line}", line.len());
    }
    assert_eq!(list.len(), names.len());
}

/// `--metrics` says what it does: a new training replaces the file's lines, `--resume` keeps
/// those up to the checkpoint and appends (issue 17, point 3).
#[test]
fn metrics_help_and_behaviour_agree() {
    let (code, help, _) = circ(&["train", "--help"]);
    assert_eq!(code, 0);
    let text = help.split("--metrics").nth(1).unwrap_or_else(|| panic!("{help}"));
    let text = text.split("\n      --").next().unwrap();
    assert!(!text.contains("Append") && text.contains("replaces") && text.contains("--resume"), "{text}");
    let (model, csv) = linear_case("metrics", &[]);
    let (metrics, ckpt) = (temp("metrics.jsonl"), temp("metrics.safetensors"));
    let base = [
        "train",
        model.to_str().unwrap(),
        "--data",
        csv.to_str().unwrap(),
        "--quiet",
        "--metrics",
        metrics.to_str().unwrap(),
        "--out",
        ckpt.to_str().unwrap(),
    ];
    let lines = || std::fs::read_to_string(&metrics).unwrap().lines().count();
    for _ in 0..2 {
        let (code, _, err) = circ(&base);
        assert_eq!(code, 0, "{err}");
        assert_eq!(lines(), 3, "a new training replaces the lines");
    }
    let (code, _, err) = circ(&[&base[..], &["--resume", "--epochs", "5"]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(lines(), 5, "--resume appends");
}

/// Writes a little-endian f8 .npy file (format 1.0), as numpy does.
fn write_npy(path: &Path, shape: &[usize], values: &[f64]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if shape.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// One input story: `run` reads `.npy` data (a directory, or one file for its one input) as
/// train, eval and grad do, and gives the same predictions as from CSV; `eval --params`
/// evaluates a trained checkpoint; help texts say where .npy works (issue 17, point 7).
#[test]
fn run_reads_npy_and_eval_reads_a_checkpoint() {
    let (model, csv) = linear_case("npy", &[]);
    let ckpt = temp("npy.safetensors");
    let (m, c, k) = (model.to_str().unwrap(), csv.to_str().unwrap(), ckpt.to_str().unwrap());
    let (code, _, err) = circ(&["train", m, "--data", c, "--quiet", "--out", k]);
    assert_eq!(code, 0, "{err}");
    let (code, from_csv, err) = circ(&["run", m, "--params", k, "--data", c]);
    assert_eq!(code, 0, "{err}");
    // The inputs only: `y` is observed, and a prediction does not need it.
    let x: Vec<f64> = (0..8).flat_map(|r| [r as f64 * 0.5, 1.0 - r as f64 * 0.25]).collect();
    let dir = temp("npy-dir");
    std::fs::create_dir_all(&dir).unwrap();
    write_npy(&dir.join("x.npy"), &[8, 2], &x);
    let (code, from_dir, err) = circ(&["run", m, "--params", k, "--data", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(from_dir, from_csv);
    let one = temp("npy-x.npy");
    write_npy(&one, &[8, 2], &x);
    let (code, from_one, err) = circ(&["run", m, "--params", k, "--data", one.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(from_one, from_csv);
    let bad = temp("npy-bad.npy");
    write_npy(&bad, &[8, 3], &[0.0; 24]);
    let (code, _, err) = circ(&["run", m, "--params", k, "--data", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("data `x` needs shape [N, 2]"), "{err}");

    // eval at the checkpoint: w as trained, not the initial draw.
    let (code, trained, err) = circ(&["eval", m, "--data", c, "--params", k]);
    assert_eq!(code, 0, "{err}");
    let (code, initial, err) = circ(&["eval", m, "--data", c]);
    assert_eq!(code, 0, "{err}");
    assert_ne!(trained, initial);
    let (code, zero, _) = circ(&["eval", m, "--data", c, "--params", k, "--zero-params"]);
    assert_eq!(code, 2, "--params and --zero-params conflict: {zero}");
    let (code, _, err) = circ(&["eval", m, "--data", c, "--params", c]);
    assert_eq!(code, 1);
    assert!(err.contains("not a safetensors file"), "{err}");

    for command in ["train", "eval", "grad", "hessian", "run"] {
        let (_, help, _) = circ(&[command, "--help"]);
        let data = help.split("\n      --data <DATA>").nth(1).unwrap().split("\n\n").next().unwrap();
        assert!(data.contains(".npy"), "`{command} --help` does not say .npy works for --data:\n{help}");
    }
}

/// Printed numbers: `run` on an f32 backend gives f32's shortest digits (a value that is exactly
/// an f32 has at most 9 significant digits), `eval` prints the loss and its terms alike, and no
/// `-0` anywhere; a file that is not a checkpoint is named so (issue 17, point 10).
#[test]
fn numbers_print_with_the_digits_of_their_precision() {
    let (model, csv) = linear_case("digits", &[]);
    let ckpt = temp("digits.safetensors");
    let (m, c, k) = (model.to_str().unwrap(), csv.to_str().unwrap(), ckpt.to_str().unwrap());
    let (code, _, err) = circ(&["train", m, "--data", c, "--quiet", "--out", k]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = circ(&["run", m, "--params", k, "--data", c]);
    assert_eq!(code, 0, "{err}");
    for field in out.lines().skip(1).flat_map(|l| l.split(',')) {
        let v: f32 = field.parse().unwrap_or_else(|_| panic!("{field}"));
        assert_eq!(field, format!("{v}"), "not f32's shortest digits: {field}");
        assert!(!field.starts_with("-0") || v != 0.0, "{out}");
    }
    let (code, out, err) = circ(&["eval", m, "--data", c, "--zero-params"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("-0.0") && !out.contains(" -0 "), "{out}");
    // The loss and each term: one number format (f64's shortest digits on the interpreter).
    let numbers: Vec<&str> =
        out.lines().skip(1).filter_map(|l| l.split_whitespace().find(|w| w.parse::<f64>().is_ok())).collect();
    assert!(numbers.len() >= 2, "the loss and its term: {out}");
    for n in numbers {
        assert_eq!(n, format!("{}", n.parse::<f64>().unwrap()), "{out}");
    }
    // A model of one term (no prior): its term is printed too, equal to the loss.
    let one = temp("one-term.circ");
    std::fs::write(&one, "model m {\n data y: [N]\n param a: []\n y ~ normal(a, 1)\n}\n").unwrap();
    let y = temp("one-term.csv");
    std::fs::write(&y, "y\n1\n2\n").unwrap();
    for backend in ["interp", "cpu"] {
        let (code, out, err) =
            circ(&["eval", one.to_str().unwrap(), "--data", y.to_str().unwrap(), "--backend", backend]);
        assert_eq!(code, 0, "{err}");
        let loss = out.lines().find_map(|l| l.trim().strip_prefix("loss")).unwrap().trim();
        let term = out.lines().find(|l| l.ends_with("likelihood y ~ normal")).unwrap_or_else(|| panic!("{out}"));
        assert_eq!(term.split_whitespace().next(), Some(loss), "{out}");
    }
    let (code, _, err) = circ(&["run", m, "--params", c, "--data", c]);
    assert_eq!(code, 1);
    assert!(err.contains("not a safetensors file"), "{err}");
    let longest_number = err.split(|c: char| !c.is_ascii_digit()).map(str::len).max().unwrap_or(0);
    assert!(longest_number < 10, "a giant header length: {err}");
}

/// A `.circ` file that is not UTF-8 gets a diagnostic at its first bad byte, as any other error
/// (issue 17, point 12; tests/ui/not_utf8.circ shows it rendered).
#[test]
fn a_file_that_is_not_utf8_gets_a_diagnostic() {
    let bad = temp("latin1.circ");
    std::fs::write(&bad, b"model m {\n    data y: [N]  # caf\xe9\n}\n").unwrap();
    let (code, _, err) = circ(&["check", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("E0107") && err.contains("not valid UTF-8"), "{err}");
    // `    data y: [N]  # caf` is 22 characters: the bad byte is the 23rd.
    assert!(err.contains(&format!("{}:2:23", bad.display())), "{err}");
    assert!(err.contains("0xE9"), "{err}");
}

/// `circ run --values` writes the named `let` values per example (flattened, `NAME.k`), on every
/// backend; a value rebound in a `repeat` is its last binding; a value without the row axis, a
/// misspelt name and data asked for as a value are refused with exit 1 and a message naming them.
#[test]
fn run_writes_named_let_values() {
    let model = temp("values.circ");
    std::fs::write(
        &model,
        "model vals {\n data x: [N, 2] = csv(\"a\", \"b\")\n data y: [N]\n param w: [2] ~ normal(0, 1)\n \
         let doubled = x * 2\n let wide = w * 3\n let z = x @ w\n repeat 2 {\n  let z = z * 2\n }\n \
         let pred = x @ w\n y ~ normal(pred, 1)\n train { epochs = 3 }\n}\n",
    )
    .unwrap();
    let (_, csv) = linear_case("values-data", &[]);
    let (m, c) = (model.to_str().unwrap(), csv.to_str().unwrap());
    let ckpt = temp("values.safetensors");
    let (code, _, err) = circ(&["train", m, "--data", c, "--quiet", "--out", ckpt.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let k = ckpt.to_str().unwrap();
    let new = temp("values-new.csv");
    std::fs::write(&new, "a,b\n1,2\n0.5,-1\n-3,0.25\n").unwrap();
    let n = new.to_str().unwrap();
    for backend in ["cpu", "interp"] {
        let (code, out, err) =
            circ(&["run", m, "--params", k, "--data", n, "--backend", backend, "--values", "z,doubled"]);
        assert_eq!(code, 0, "{backend}: {err}");
        let mut lines = out.lines();
        assert_eq!(lines.next().unwrap(), "y.mean,y.variance,z.0,doubled.0,doubled.1", "{backend}");
        let rows: Vec<Vec<f64>> = lines.map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
        assert_eq!(rows.len(), 3, "{backend}: {out}");
        let inputs = [[1.0, 2.0], [0.5, -1.0], [-3.0, 0.25]];
        for (r, x) in rows.iter().zip(inputs) {
            // z = 4·(x @ w) after the two rebindings; the mean is x @ w itself.
            assert!((r[2] - 4.0 * r[0]).abs() <= 1e-5 * (1.0 + r[2].abs()), "{backend}: {r:?}");
            assert_eq!((r[3], r[4]), (2.0 * x[0], 2.0 * x[1]), "{backend}");
        }
        // The same as separate flags.
        let (code, again, err) =
            circ(&["run", m, "--params", k, "--data", n, "--backend", backend, "--values", "z", "--values", "doubled"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(again, out, "{backend}");
    }
    let (code, _, err) = circ(&["run", m, "--params", k, "--data", n, "--values", "wide"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("`wide` has shape [2]") && err.contains("row axis N"), "{err}");
    let (code, _, err) = circ(&["run", m, "--params", k, "--data", n, "--values", "z,dubled"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no `let` value `dubled`") && err.contains("did you mean `doubled`?"), "{err}");
    let (code, _, err) = circ(&["run", m, "--params", k, "--data", n, "--values", "x"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("`x` is data"), "{err}");
    let (_, help, _) = circ(&["run", "--help"]);
    assert!(help.contains("--values <NAME[,NAME…]>"), "{help}");
}

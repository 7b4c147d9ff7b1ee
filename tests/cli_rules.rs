//! The rules every `circ` command follows (issue 17): flags that make no sense together are
//! refused, output paths are checked before the work, `--optimizer` errors point into the flag,
//! and one exit-code rule (0 ok, 1 the input is wrong, 2 usage or I/O).

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

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("circ-rules-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A linear model that trains in a blink, and its data.
fn linear(d: &Path) -> (PathBuf, PathBuf) {
    let model = d.join("lin.circ");
    std::fs::write(
        &model,
        "model lin {\n data x: [N, 2] = csv(\"a\", \"b\")\n data y: [N]\n param w: [2] ~ normal(0, 1)\n y ~ normal(x @ w, 1)\n train { epochs = 2 }\n}\n",
    )
    .unwrap();
    let mut text = String::from("a,b,y\n");
    for r in 0..8 {
        text.push_str(&format!("{},{},{}\n", r as f64 * 0.5, 1.0 - r as f64 * 0.25, r as f64 * 0.1));
    }
    let csv = d.join("lin.csv");
    std::fs::write(&csv, text).unwrap();
    (model, csv)
}

#[test]
fn flags_that_mean_nothing_together_are_refused() {
    let d = dir("flags");
    let (model, csv) = linear(&d);
    let cases: &[(&[&str], &str)] = &[
        (&["train", s(&model), "--data", s(&csv), "--valid", s(&csv), "--valid-fraction", "0.2"], "--valid"),
        (&["graph", s(&model), "--n", "5"], "--stats"),
        (&["graph", s(&model), "--stats", "--dot"], "cannot be used with '--dot'"),
        (&["graph", s(&model), "--stats", "--grad"], "cannot be used with '--grad'"),
        (&["graph", s(&model), "--stats", "--passes"], "cannot be used with '--passes'"),
    ];
    for (args, expected) in cases {
        let (code, out, err) = circ(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?} printed {out}");
    }
    // What they may be combined with still works.
    let (code, out, err) = circ(&["graph", s(&model), "--stats", "--n", "5"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("symbolic sizes = 5"), "{out}");
}

/// A bad `--optimizer` gets one diagnostic, located in the flag's own text.
#[test]
fn optimizer_errors_point_into_the_flag() {
    let d = dir("optimizer");
    let (model, csv) = linear(&d);
    for (rule, at, message) in [
        ("adam(lr=)", "--optimizer:1:9", "unexpected `)`"),
        ("adam(lr=1", "--optimizer:1:10", "unexpected end of --optimizer"),
        ("adam(lr = -1)", "--optimizer:1:11", "must be a positive number"),
        ("newton(clip = 0.5)", "--optimizer:1:15", "`clip` of `newton` must be `true` or `false`"),
        ("adamm", "--optimizer:1:1", "unknown update rule `adamm`"),
    ] {
        let (code, _, err) = circ(&["train", s(&model), "--data", s(&csv), "--optimizer", rule]);
        assert_eq!(code, 2, "{rule}: {err}");
        assert!(err.contains(at) && err.contains(message), "{rule}: {err}");
        assert_eq!(err.matches("Error:").count(), 1, "{rule}: more than one error:\n{err}");
        assert!(!err.contains("train {") && !err.contains("model optimizer"), "{rule}: the wrapper shows:\n{err}");
    }
}

/// An output that cannot be written is refused before the work: no epoch runs, nothing is read
/// beyond the flags.
#[test]
fn bad_output_paths_fail_before_the_work() {
    let d = dir("outputs");
    let (model, csv) = linear(&d);
    let missing = d.join("no-such-dir/x.out");
    let (m, c, x) = (s(&model), s(&csv), s(&missing));
    for flag in ["--plot", "--out", "--metrics"] {
        let (code, out, err) = circ(&["train", m, "--data", c, flag, x]);
        assert_eq!(code, 2, "{flag}: {out}{err}");
        assert!(err.contains(&format!("error: {flag}: cannot create a file in ")), "{flag}: {err}");
        assert!(!err.contains("epoch") && out.is_empty(), "{flag}: the training ran:\n{err}");
    }
    // A directory is no file to write.
    let (code, _, err) = circ(&["train", m, "--data", c, "--plot", s(&d)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--plot: cannot write") && err.contains("it is a directory"), "{err}");
    // Predictions and derivatives: refused before the parameters are even read.
    let (code, _, err) = circ(&["run", m, "--params", "/no/such.safetensors", "--data", c, "--out", x]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--out: cannot create a file in "), "{err}");
    let (code, _, err) = circ(&["grad", m, "--data", c, "--out", x]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--out: cannot create a file in "), "{err}");
    assert!(!missing.parent().unwrap().exists());
}

/// One exit-code rule for every command: 1 when the input is wrong (a bad value in a data file,
/// a model with errors, a file that is not a checkpoint), 2 when a file cannot be read at all.
#[test]
fn every_command_exits_by_one_rule() {
    let d = dir("exit");
    let (model, csv) = linear(&d);
    let bad_csv = d.join("bad.csv");
    std::fs::write(&bad_csv, "a,b,y\n1,2,3\n1,x,3\n").unwrap();
    let bad_model = d.join("bad.circ");
    std::fs::write(&bad_model, "model m {\n data y: [N]\n y ~ normal(q, 1)\n}\n").unwrap();
    let not_a_checkpoint = d.join("junk.safetensors");
    std::fs::write(&not_a_checkpoint, "this is no checkpoint at all").unwrap();
    let ckpt = d.join("p.safetensors");
    let (code, _, err) = circ(&["train", s(&model), "--data", s(&csv), "--out", s(&ckpt), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let (m, good, bad, none) = (s(&model), s(&csv), s(&bad_csv), "/no/such/data.csv");
    let g = d.join("g.safetensors");
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["check", s(&bad_model)], 1),
        (vec!["check", "/no/such/model.circ"], 2),
        (vec!["graph", s(&bad_model)], 1),
        (vec!["graph", "/no/such/model.circ"], 2),
        (vec!["emit", s(&bad_model)], 1),
        (vec!["emit", "/no/such/model.circ"], 2),
        (vec!["eval", m, "--data", bad], 1),
        (vec!["eval", m, "--data", none], 2),
        (vec!["eval", m, "--data", good, "--params", s(&not_a_checkpoint)], 1),
        (vec!["eval", m, "--data", good, "--params", "/no/such.safetensors"], 2),
        (vec!["grad", m, "--data", bad, "--out", s(&g)], 1),
        (vec!["grad", m, "--data", none, "--out", s(&g)], 2),
        (vec!["hessian", m, "--data", bad], 1),
        (vec!["hessian", m, "--data", none], 2),
        (vec!["hessian", m, "--data", good, "--params", s(&not_a_checkpoint)], 1),
        (vec!["train", m, "--data", bad], 1),
        (vec!["train", m, "--data", none], 2),
        (vec!["train", m, "--data", good, "--valid", none], 2),
        (vec!["run", m, "--params", s(&ckpt), "--data", bad], 1),
        (vec!["run", m, "--params", s(&ckpt), "--data", none], 2),
        (vec!["run", m, "--params", s(&not_a_checkpoint), "--data", good], 1),
        (vec!["run", m, "--params", "/no/such.safetensors", "--data", good], 2),
        (vec!["train", m, "--data", good, "--epochs", "zero"], 2),
    ];
    for (args, expected) in &cases {
        let (code, _, err) = circ(args);
        assert_eq!(code, *expected, "{args:?}:\n{err}");
        assert!(err.to_lowercase().contains("error"), "{args:?} says nothing:\n{err}");
    }
    // The rule is in `circ --help`.
    let (code, out, _) = circ(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Exit status") && out.contains("1  the input is wrong") && out.contains("2  usage or I/O"));
}

fn root(p: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p).display().to_string()
}

/// `circ emit`: optimizer state named as the checkpoint names it, updates located at their
/// parameter, `--asm` under the same comments, and `graph`'s location format.
#[test]
fn emit_names_state_and_locates_updates() {
    let model = root("examples/mlp_digits.circ");
    let (code, ir, err) = circ(&["emit", &model]);
    assert_eq!(code, 0, "{err}");
    assert!(ir.contains(" opt.adam.m.l1.w [64, 128]") && ir.contains(" opt.adam.v.l2.b [10]"), "state unnamed");
    assert!(!ir.contains("input#"), "an input shown by number");
    // The update of l2.b (declared in nn.circ at `param b`) points there.
    let update = ir.lines().find(|l| l.contains("= sub(%10,")).expect("the update of l2.b");
    assert!(update.contains("from nn.circ:8:11: `param b: [o] ~ normal(0, 1) init normal(0, 0.01)`"), "{update}");
    // Nodes inlined from a stdlib circuit name the application too: `l2(h)` at line 17.
    assert!(update.ends_with(" via mlp_digits.circ:17:34"), "{update}");
    let (code, asm, err) = circ(&["emit", "--asm", &model]);
    assert_eq!(code, 0, "{err}");
    for comment in
        ["; elementwise group over [N, 128]", ";   bufs[6] = %100 opt.adam.m.l1.w [64, 128]", "from nn.circ:9:12"]
    {
        assert!(asm.contains(comment), "--asm lost `{comment}`");
    }
    // One location format: the file's name, line and column, in graph and emit alike.
    let (_, graph, _) = circ(&["graph", &model]);
    assert!(graph.contains("# nn.circ:9:12") && ir.contains("from nn.circ:9:12: `return x @ w + b`"), "{graph}");
    // ... and the call site after `via`, in graph and emit alike (`l1(x)` at line 16); the
    // model's own nodes have none.
    let site = "nn.circ:9:12 via mlp_digits.circ:16:18";
    assert!(graph.contains(&format!("# {site}\n")) && ir.contains(&format!(";   from {site}\n")), "{graph}");
    assert!(ir.contains("`return x @ w + b` via mlp_digits.circ:16:18"), "{ir}");
    assert!(graph.lines().filter(|l| l.contains("mlp_digits.circ:")).any(|l| !l.contains(" via ")));
    assert!(!graph.lines().any(|l| l.contains("nn.circ:") && !l.contains(" via ")), "{graph}");
}

/// `--threads` is a flag of the commands that run a graph, and means the same on each: the
/// results do not depend on it; a command that runs no graph refuses it.
#[test]
fn threads_is_a_flag_of_the_commands_that_run_a_graph() {
    let d = dir("threads");
    let (model, csv) = linear(&d);
    let mut last = None;
    for n in ["1", "2"] {
        let ckpt = d.join(format!("lin{n}.safetensors"));
        let (code, out, err) =
            circ(&["train", s(&model), "--data", s(&csv), "--out", s(&ckpt), "--backend", "cpu", "--threads", n]);
        assert_eq!(code, 0, "{out}{err}");
        let (code, preds, err) = circ(&["run", s(&model), "--params", s(&ckpt), "--data", s(&csv), "--threads", n]);
        assert_eq!(code, 0, "{err}");
        let (code, eval, err) =
            circ(&["eval", s(&model), "--data", s(&csv), "--backend", "cpu", "--params", s(&ckpt), "--threads", n]);
        assert_eq!(code, 0, "{err}");
        let grad = d.join(format!("g{n}.safetensors"));
        let (code, _, err) = circ(&["grad", s(&model), "--data", s(&csv), "--out", s(&grad), "--threads", n]);
        assert_eq!(code, 0, "{err}");
        let now = (preds, eval, std::fs::read(&grad).unwrap());
        if let Some(before) = &last {
            assert_eq!(before, &now, "--threads {n} changed a result");
        }
        last = Some(now);
    }
    for args in [&["check", s(&model), "--threads", "2"][..], &["emit", s(&model), "--threads", "2"]] {
        let (code, _, err) = circ(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains("unexpected argument '--threads'"), "{args:?}: {err}");
    }
    let (code, _, err) = circ(&["run", s(&model), "--params", "x", "--data", s(&csv), "--threads", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--threads"), "{err}");
}

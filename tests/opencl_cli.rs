//! The OpenCL backend through the `circ` binary: `emit --target opencl` (no device needed),
//! `circ devices`, the one clear error without a platform, and `train`/`run` on a device giving
//! the CPU backend's predictions. Tests that need a device skip with a printed reason when there
//! is none, except under `CI=true` (where PoCL is installed), where they fail.

#[path = "common/opencl.rs"]
mod opencl;

use opencl::opencl_available;
use std::path::{Path, PathBuf};
use std::process::Command;

fn circ_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_circ"));
    c.current_dir(env!("CARGO_MANIFEST_DIR")).args(args).arg("--color=never");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn circ(args: &[&str]) -> (i32, String, String) {
    circ_env(args, &[])
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("circ-opencl-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The generated OpenCL C of the small examples, kernel by kernel: a change to a renderer shows
/// here as a reviewed snapshot diff.
#[test]
fn emit_opencl_snapshots_of_small_examples() {
    for (name, graph) in [("ridge", "forward"), ("abx", "step"), ("logistic", "gradient")] {
        let file = format!("examples/{name}.circ");
        let (code, out, err) = circ(&["emit", &file, "--target", "opencl", "--graph", graph]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("__kernel void k0_"), "{out}");
        insta::assert_snapshot!(format!("emit_opencl_{name}_{graph}"), out);
    }
}

/// Every kernel of every example renders (none left to the host) and names its source lines.
#[test]
fn every_example_kernel_is_rendered() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files.iter().filter(|p| p.extension().is_some_and(|e| e == "circ")) {
        let (code, out, err) = circ(&["emit", &f.display().to_string(), "--target", "opencl"]);
        assert_eq!(code, 0, "{}: {err}", f.display());
        assert!(!out.contains("runs on the host"), "{}: a kernel is not rendered:\n{out}", f.display());
        assert!(out.contains(".circ:"), "{}: no source lines", f.display());
    }
}

/// Without any OpenCL platform: exit 2 and one sentence saying how to get one, for `devices`,
/// `train` and `run`.
#[test]
fn no_platform_is_one_clear_error() {
    let empty = temp("no-vendors");
    std::fs::create_dir_all(&empty).unwrap();
    let env = [("OCL_ICD_VENDORS", empty.to_str().unwrap()), ("OCL_ICD_FILENAMES", "")];
    for args in [
        vec!["devices"],
        vec!["train", "examples/ridge.circ", "--data", "data/diabetes.csv", "--backend", "opencl", "--epochs", "1"],
    ] {
        let (code, _, err) = circ_env(&args, &env);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("no OpenCL platform") && err.contains("apt-get install pocl-opencl-icd"),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, not {err}");
    }
}

#[test]
fn devices_lists_the_device() {
    if !opencl_available("devices_lists_the_device") {
        return;
    }
    let (code, out, err) = circ(&["devices"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("0: ") && out.contains("compute units"), "{out}");
    let (code, _, err) =
        circ(&["train", "examples/ridge.circ", "--data", "data/diabetes.csv", "--backend", "opencl", "--device", "99"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("there is no OpenCL device 99"), "{err}");
}

/// A model trained on OpenCL predicts on OpenCL what the CPU backend predicts from the same
/// checkpoint (to f32 accuracy).
#[test]
fn train_and_run_on_opencl_match_the_cpu_backend() {
    if !opencl_available("train_and_run_on_opencl_match_the_cpu_backend") {
        return;
    }
    let ckpt = temp("ridge.safetensors");
    let (code, _, err) = circ(&[
        "train",
        "examples/ridge.circ",
        "--data",
        "data/diabetes.csv",
        "--backend",
        "opencl",
        "--out",
        ckpt.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let predict = |backend: &str| {
        let (code, out, err) = circ(&[
            "run",
            "examples/ridge.circ",
            "--params",
            ckpt.to_str().unwrap(),
            "--data",
            "data/diabetes.csv",
            "--backend",
            backend,
        ]);
        assert_eq!(code, 0, "{backend}: {err}");
        out
    };
    let (a, b) = (predict("opencl"), predict("cpu"));
    let values = |s: &str| -> Vec<f64> {
        s.lines().skip(1).flat_map(|l| l.split(',').map(|v| v.parse::<f64>().unwrap()).collect::<Vec<_>>()).collect()
    };
    let (va, vb) = (values(&a), values(&b));
    assert_eq!(va.len(), vb.len());
    assert!(va.len() >= 442, "{a}");
    for (x, y) in va.iter().zip(&vb) {
        assert!((x - y).abs() <= 1e-4 * y.abs().max(1.0), "opencl {x} vs cpu {y}");
    }
}

/// `eval` and `grad` take `--backend`: the compiled backends give the interpreter's loss and
/// gradient to f32 accuracy.
#[test]
fn eval_and_grad_on_every_backend() {
    let mut backends = vec!["cpu"];
    if opencl_available("eval_and_grad_on_every_backend") {
        backends.push("opencl");
    }
    let loss = |backend: &str| -> f64 {
        let (code, out, err) = circ(&[
            "eval",
            "examples/logistic.circ",
            "--data",
            "data/breast_cancer_standardized.csv",
            "--backend",
            backend,
        ]);
        assert_eq!(code, 0, "{backend}: {err}");
        let line = out.lines().find(|l| l.trim_start().starts_with("loss")).unwrap_or_else(|| panic!("{out}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let grad = |backend: &str| -> Vec<f64> {
        let path = temp(&format!("grad-{backend}.safetensors"));
        let (code, _, err) = circ(&[
            "grad",
            "examples/logistic.circ",
            "--data",
            "data/breast_cancer_standardized.csv",
            "--backend",
            backend,
            "--out",
            path.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{backend}: {err}");
        let (tensors, _) = circ_runtime::files::safetensors::read(&path).unwrap();
        tensors.iter().flat_map(|t| t.values.clone()).collect()
    };
    let (want_loss, want_grad) = (loss("interp"), grad("interp"));
    let scale = want_grad.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for b in backends {
        let l = loss(b);
        assert!((l - want_loss).abs() <= 1e-5 * want_loss.abs(), "{b}: loss {l} vs {want_loss}");
        for (x, y) in grad(b).iter().zip(&want_grad) {
            assert!((x - y).abs() <= 1e-4 * scale, "{b}: gradient {x} vs {y}");
        }
    }
}

/// `run --values` on OpenCL writes the hidden layer of the digits MLP as the CPU backend does.
#[test]
fn run_values_on_opencl_match_the_cpu_backend() {
    if !opencl_available("run_values_on_opencl_match_the_cpu_backend") {
        return;
    }
    let ckpt = temp("mlp-values.safetensors");
    let model = "examples/mlp_digits.circ";
    let (code, _, err) = circ(&[
        "train",
        model,
        "--data",
        "data/digits.csv",
        "--epochs",
        "1",
        "--out",
        ckpt.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let predict = |backend: &str| {
        let args =
            ["run", model, "--params", ckpt.to_str().unwrap(), "--data", "data/digits.csv", "--backend", backend];
        let (code, out, err) = circ(&[&args[..], &["--values", "h"]].concat());
        assert_eq!(code, 0, "{backend}: {err}");
        out
    };
    let (a, b) = (predict("opencl"), predict("cpu"));
    assert_eq!(a.lines().next(), b.lines().next());
    assert!(a.lines().next().unwrap().ends_with(",h.126,h.127"), "{a:.300}");
    let values = |s: &str| -> Vec<f64> {
        s.lines().skip(1).flat_map(|l| l.split(',').map(|v| v.parse::<f64>().unwrap()).collect::<Vec<_>>()).collect()
    };
    let (va, vb) = (values(&a), values(&b));
    assert_eq!(va.len(), vb.len());
    assert_eq!(va.len(), 1797 * (1 + 10 + 128), "{a:.300}");
    for (x, y) in va.iter().zip(&vb) {
        assert!((x - y).abs() <= 1e-4 * y.abs().max(1.0), "opencl {x} vs cpu {y}");
    }
}

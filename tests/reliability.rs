//! Issue 18, the hostile command line as regression tests: outputs that never replace an input or
//! a device, write errors that are never silent, temporaries and locks, bad data refused clearly.
//! Each test runs the built `circ` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn circ(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_circ")).args(args).arg("--color=never").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// `circ` with standard output going to `stdout`.
fn circ_to(stdout: Stdio, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_circ"))
        .args(args)
        .arg("--color=never")
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into())
}

/// A fresh directory per test.
fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("circ-rel-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const RIDGE: &str = "model r {\n data x: [N, 2] = csv(\"a\", \"b\")\n data y: [N]\n param w: [2] ~ normal(0, 1)\n param b: []\n y ~ normal(x @ w + b, 1)\n train { epochs = 3 }\n}\n";

/// A ridge model and its data in `d`: (model, data).
fn ridge(d: &Path) -> (PathBuf, PathBuf) {
    let model = d.join("r.circ");
    std::fs::write(&model, RIDGE).unwrap();
    let data = d.join("d.csv");
    let mut text = String::from("a,b,y\n");
    for i in 0..20 {
        let (a, b) = (i as f64 / 10.0, (i % 7) as f64 / 3.0);
        text.push_str(&format!("{a},{b},{}\n", 0.5 * a - b + 0.1));
    }
    std::fs::write(&data, text).unwrap();
    (model, data)
}

/// Train the ridge model in `d` to `ckpt`; panics unless it succeeds.
fn trained(d: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (model, data) = ridge(d);
    let ckpt = d.join("p.safetensors");
    let (code, _, err) = circ(&["train", s(&model), "--data", s(&data), "--out", s(&ckpt), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    (model, data, ckpt)
}

fn names(d: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

// ------------------------------------------------------------------------------------------------
// 1. Non-regular targets are written, never replaced; symbolic links are written through.

#[cfg(target_os = "linux")]
#[test]
fn devices_are_written_not_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let d = dir("dev");
    let (model, data) = ridge(&d);
    let (code, _, err) = circ(&[
        "train",
        s(&model),
        "--data",
        s(&data),
        "--out",
        "/dev/null",
        "--metrics",
        "/dev/null",
        "--plot",
        "/dev/null",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device(), "/dev/null was replaced");
    assert!(!d.read_dir().unwrap().any(|e| e.unwrap().file_name().to_string_lossy().contains("tmp")));
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_device_is_an_error() {
    let d = dir("full");
    let (model, data, ckpt) = trained(&d);
    for args in [
        vec!["train", s(&model), "--data", s(&data), "--out", "/dev/full", "--quiet"],
        vec!["train", s(&model), "--data", s(&data), "--metrics", "/dev/full", "--quiet"],
        vec!["train", s(&model), "--data", s(&data), "--plot", "/dev/full", "--quiet"],
        vec!["run", s(&model), "--params", s(&ckpt), "--data", s(&data), "--out", "/dev/full"],
        vec!["grad", s(&model), "--data", s(&data), "--out", "/dev/full"],
    ] {
        let (code, _, err) = circ(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("No space left on device") && err.contains("/dev/full"), "{args:?}: {err}");
    }
}

#[cfg(unix)]
#[test]
fn a_symbolic_link_is_written_through() {
    let d = dir("link");
    let (model, data, ckpt) = trained(&d);
    let real = d.join("real.csv");
    std::fs::write(&real, "old").unwrap();
    let link = d.join("link.csv");
    std::os::unix::fs::symlink("real.csv", &link).unwrap();
    let (code, _, err) = circ(&["run", s(&model), "--params", s(&ckpt), "--data", s(&data), "--out", s(&link)]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
    assert!(std::fs::read_to_string(&real).unwrap().starts_with("y.mean,y.variance\n"));
    // A dangling link: the file it names is created.
    let dangling = d.join("dangling.st");
    std::os::unix::fs::symlink("made.st", &dangling).unwrap();
    let (code, _, err) = circ(&["grad", s(&model), "--data", s(&data), "--out", s(&dangling)]);
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());
    circ_runtime::files::safetensors::read(&d.join("made.st")).unwrap();
}

#[test]
fn a_dash_is_standard_output() {
    let d = dir("dash");
    let (model, data, ckpt) = trained(&d);
    let (code, out, err) = circ(&["run", s(&model), "--params", s(&ckpt), "--data", s(&data), "--out", "-"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 21, "{out}");
    assert!(out.starts_with("y.mean,y.variance\n"), "{out}");
    let st = Command::new(env!("CARGO_BIN_EXE_circ"))
        .args(["grad", s(&model), "--data", s(&data), "--out", "-"])
        .output()
        .unwrap();
    assert!(st.status.success());
    let (tensors, _) = circ_runtime::files::safetensors::parse("stdout", &st.stdout).unwrap();
    assert_eq!(tensors.len(), 2);
    assert!(!d.join("-").exists());
    let (code, _, err) = circ(&["train", s(&model), "--data", s(&data), "--out", "-"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot be `-`"), "{err}");
}

// ------------------------------------------------------------------------------------------------
// 2. No output is an input or another output.

#[test]
fn an_output_that_is_an_input_is_refused() {
    let d = dir("same");
    let (model, data, ckpt) = trained(&d);
    let keep = |p: &Path| std::fs::read(p).unwrap();
    let (m0, d0, c0) = (keep(&model), keep(&data), keep(&ckpt));
    let sub = d.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let dotted = sub.join("..").join("d.csv");
    let hard = d.join("hard.csv");
    std::fs::hard_link(&data, &hard).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["train", s(&model), "--data", s(&data), "--out", s(&data)], "--out"),
        (vec!["train", s(&model), "--data", s(&data), "--out", s(&model)], "the model"),
        (vec!["train", s(&model), "--data", s(&data), "--metrics", s(&dotted)], "--data"),
        (vec!["train", s(&model), "--data", s(&data), "--plot", s(&hard)], "--data"),
        (vec!["train", s(&model), "--data", s(&data), "--valid", s(&data), "--out", s(&hard)], "--data"),
        (vec!["run", s(&model), "--params", s(&ckpt), "--data", s(&data), "--out", s(&ckpt)], "--params"),
        (vec!["grad", s(&model), "--data", s(&data), "--params", s(&ckpt), "--out", s(&ckpt)], "--params"),
        (vec!["grad", s(&model), "--data", s(&data), "--hvp", s(&ckpt), "--out", s(&ckpt)], "--hvp"),
    ];
    for (args, what) in cases {
        let (code, _, err) = circ(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("is the same file as") && err.contains(what), "{args:?}: {err}");
    }
    #[cfg(unix)]
    {
        let link = d.join("link.circ");
        std::os::unix::fs::symlink(&model, &link).unwrap();
        let (code, _, err) = circ(&["train", s(&model), "--data", s(&data), "--out", s(&link)]);
        assert_eq!(code, 2, "{err}");
    }
    // Two outputs naming one file, before either exists.
    let new = d.join("new.out");
    let (code, _, err) =
        circ(&["train", s(&model), "--data", s(&data), "--out", s(&new), "--plot", s(&d.join("sub/../new.out"))]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("are the same file"), "{err}");
    assert!(!new.exists());
    assert_eq!((keep(&model), keep(&data), keep(&ckpt)), (m0, d0, c0), "an input was changed");
}

// ------------------------------------------------------------------------------------------------
// 3. Every write to standard output is checked.

#[cfg(target_os = "linux")]
#[test]
fn standard_output_on_a_full_device_fails() {
    let d = dir("stdout");
    let (model, data, ckpt) = trained(&d);
    for args in [
        vec!["run", s(&model), "--params", s(&ckpt), "--data", s(&data)],
        vec!["check", "-v", s(&model)],
        vec!["graph", s(&model)],
        vec!["eval", s(&model), "--data", s(&data)],
        vec!["train", s(&model), "--data", s(&data), "--quiet"],
    ] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let (code, err) = circ_to(full.into(), &args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("cannot write to standard output") && err.contains("No space left"), "{args:?}: {err}");
    }
}

#[test]
fn a_closed_standard_output_fails_without_a_panic() {
    let d = dir("closed");
    let (model, data, ckpt) = trained(&d);
    let mut child = Command::new(env!("CARGO_BIN_EXE_circ"))
        .args(["run", s(&model), "--params", s(&ckpt), "--data", s(&data)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before anything is written
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot write to standard output") && !err.contains("panicked"), "{err}");
}

// ------------------------------------------------------------------------------------------------
// 4, 5. Temporaries, metrics after a crash, one training per checkpoint.

#[test]
fn run_out_keeps_a_neighbouring_tmp_file_and_leaves_nothing_behind() {
    let d = dir("tmp");
    let (model, data, ckpt) = trained(&d);
    let out = d.join("pred.csv");
    std::fs::write(d.join("pred.csv.tmp"), "someone else's").unwrap();
    let (code, _, err) = circ(&["run", s(&model), "--params", s(&ckpt), "--data", s(&data), "--out", s(&out)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(d.join("pred.csv.tmp")).unwrap(), "someone else's");
    assert_eq!(names(&d), ["d.csv", "p.safetensors", "pred.csv", "pred.csv.tmp", "r.circ"]);
}

/// Issue 18 point 4: runs to one `--out` used one temporary name and corrupted each other.
#[test]
fn concurrent_runs_to_one_output_each_write_a_whole_file() {
    let d = dir("concurrent");
    let (model, data, ckpt) = trained(&d);
    let out = d.join("pred.csv");
    let children: Vec<_> = (0..6)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_circ"))
                .args(["run", s(&model), "--params", s(&ckpt), "--data", s(&data), "--out", s(&out)])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let (code, alone, err) = circ(&["run", s(&model), "--params", s(&ckpt), "--data", s(&data)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), alone);
    assert_eq!(names(&d), ["d.csv", "p.safetensors", "pred.csv", "r.circ"]);
}

#[test]
fn stale_temporaries_are_removed_at_the_next_write() {
    let d = dir("stale");
    let (model, data) = ridge(&d);
    // What a `kill -9` during a checkpoint write leaves (the writer's lock died with it), a
    // minute ago.
    for name in [".p.safetensors.Xy12Ab34.circ-tmp", ".plot.png.Qq12Ab34.circ-tmp"] {
        let f = std::fs::File::create(d.join(name)).unwrap();
        f.set_len(4096).unwrap();
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(60)).unwrap();
    }
    let (code, _, err) = circ(&[
        "train",
        s(&model),
        "--data",
        s(&data),
        "--out",
        s(&d.join("p.safetensors")),
        "--plot",
        s(&d.join("plot.png")),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(names(&d), ["d.csv", "p.safetensors", "plot.png", "r.circ"]);
}

#[test]
fn resume_after_a_crash_between_metrics_and_checkpoint_does_not_repeat_an_epoch() {
    let d = dir("resume");
    let (model, data) = ridge(&d);
    let (ckpt, metrics) = (d.join("c.st"), d.join("m.jsonl"));
    let base = ["train", s(&model), "--data", s(&data), "--out", s(&ckpt), "--metrics", s(&metrics), "--quiet"];
    let (code, _, err) = circ(&[&base[..], &["--epochs", "3"]].concat());
    assert_eq!(code, 0, "{err}");
    // The crash: epoch 4's metrics line was written, its checkpoint never was; half a line of
    // epoch 5 too.
    let mut text = std::fs::read_to_string(&metrics).unwrap();
    text.push_str("{\"epoch\":4,\"steps\":4,\"train_nll\":1}\n{\"epoch\":5,\"st");
    std::fs::write(&metrics, text).unwrap();
    let (code, _, err) = circ(&[&base[..], &["--epochs", "5", "--resume"]].concat());
    assert_eq!(code, 0, "{err}");
    let epochs: Vec<String> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|l| l.split(',').next().unwrap().trim_start_matches("{\"epoch\":").to_string())
        .collect();
    assert_eq!(epochs, ["1", "2", "3", "4", "5"]);
}

#[test]
fn a_second_training_on_one_checkpoint_is_refused() {
    let d = dir("lock");
    let (model, data) = ridge(&d);
    let ckpt = d.join("c.st");
    // Another training holds the checkpoint's lock.
    let held = circ_runtime::files::output::Lock::acquire(&ckpt).unwrap().expect("free");
    let (code, _, err) = circ(&["train", s(&model), "--data", s(&data), "--out", s(&ckpt), "--quiet"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("another `circ train` is writing"), "{err}");
    assert!(!ckpt.exists());
    drop(held);
    let (code, _, err) = circ(&["train", s(&model), "--data", s(&data), "--out", s(&ckpt), "--quiet"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(names(&d), ["c.st", "d.csv", "r.circ"], "the lock file is removed at the end");
}

// ------------------------------------------------------------------------------------------------
// 6. Arrays disagreeing in rows.

/// A little-endian f64 `.npy` file of the given shape.
fn npy(path: &Path, shape: &[usize], values: &[f64]) {
    let dims: Vec<String> = shape.iter().map(|n| n.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    values.iter().for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn npy_arrays_that_disagree_in_rows_are_refused() {
    let d = dir("npy");
    let (model, _) = ridge(&d);
    for (xr, yr) in [(4, 3), (3, 4)] {
        let data = d.join(format!("npy{xr}{yr}"));
        std::fs::create_dir_all(&data).unwrap();
        npy(&data.join("x.npy"), &[xr, 2], &vec![0.5; xr * 2]);
        npy(&data.join("y.npy"), &[yr], &vec![1.0; yr]);
        for extra in [&[][..], &["--valid-fraction", "0.25"][..]] {
            let (code, _, err) = circ(&[&["train", s(&model), "--data", s(&data), "--quiet"][..], extra].concat());
            assert_eq!(code, 1, "{err}");
            assert!(err.contains(&format!("`N` is {xr} in `x` but {yr} in `y`")), "{err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

// ------------------------------------------------------------------------------------------------
// 10. Label ranges on every command.

#[test]
fn run_refuses_a_one_hot_label_out_of_range() {
    let d = dir("onehot");
    let model = d.join("oh.circ");
    std::fs::write(
        &model,
        "model m {\n data x: [N, 2] = csv(\"a\", \"b\")\n data c: int[N]\n data y: [N]\n param w: [2]\n param v: [3]\n y ~ normal(x @ w + one_hot(c, 3) @ v, 1)\n}\n",
    )
    .unwrap();
    let good = d.join("good.csv");
    std::fs::write(&good, "a,b,c,y\n1,2,0,1\n0,1,2,0\n").unwrap();
    let ckpt = d.join("p.st");
    let (code, _, err) = circ(&["train", s(&model), "--data", s(&good), "--out", s(&ckpt), "--epochs", "1", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    for bad in ["7", "-1", "3000000000"] {
        let data = d.join("bad.csv");
        std::fs::write(&data, format!("a,b,c\n1,2,0\n0,1,{bad}\n")).unwrap();
        let (code, out, err) = circ(&["run", s(&model), "--params", s(&ckpt), "--data", s(&data)]);
        assert_eq!(code, 1, "{bad}: {err}");
        assert!(err.contains("bad.csv:3:3") && err.contains("labels 0 to 2"), "{bad}: {err}");
        assert!(out.is_empty(), "{out}");
    }
}

#[test]
fn a_bernoulli_observation_outside_0_1_is_refused() {
    let d = dir("bern");
    let model = d.join("b.circ");
    std::fs::write(
        &model,
        "model m {\n data x: [N, 1] = csv(\"a\")\n data y: [N]\n param w: [1]\n y ~ bernoulli(logits = x @ w)\n}\n",
    )
    .unwrap();
    for (bad, ok) in [("7", false), ("-3", false), ("0.25", true)] {
        let data = d.join("d.csv");
        std::fs::write(&data, format!("a,y\n1,0\n2,{bad}\n")).unwrap();
        let (code, _, err) = circ(&["train", s(&model), "--data", s(&data), "--epochs", "1", "--quiet"]);
        if ok {
            assert_eq!(code, 0, "{bad}: {err}");
        } else {
            assert_eq!(code, 1, "{bad}: {err}");
            assert!(err.contains("d.csv:3:2") && err.contains("bernoulli"), "{bad}: {err}");
        }
    }
}

// ------------------------------------------------------------------------------------------------
// 8. Endless devices and FIFOs as inputs.

#[cfg(target_os = "linux")]
#[test]
fn endless_devices_and_writerless_fifos_are_refused_clearly() {
    let d = dir("endless");
    let (model, data, ckpt) = trained(&d);
    let fifo = d.join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    for dev in ["/dev/zero", "/dev/urandom"] {
        for args in [
            vec!["check", dev],
            vec!["train", s(&model), "--data", dev, "--quiet"],
            vec!["run", s(&model), "--params", dev, "--data", s(&data)],
            vec!["train", s(&model), "--data", s(&data), "--valid", dev, "--quiet"],
        ] {
            let (code, _, err) = circ(&args);
            assert!(code == 1 || code == 2, "{args:?}: {err}");
            assert!(err.contains("character device that gives more than 256 MiB"), "{args:?}: {err}");
        }
    }
    // Nobody writes the FIFO: it reads as empty at once instead of hanging.
    let (code, _, err) = circ(&["run", s(&model), "--params", s(&fifo), "--data", s(&data)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("too short to be a safetensors file: 0 bytes"), "{err}");
    // Read, and empty: a wrong input (1), as the empty checkpoint above.
    let (code, _, err) = circ(&["run", s(&model), "--params", s(&ckpt), "--data", s(&fifo)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the file is empty"), "{err}");
}

// ------------------------------------------------------------------------------------------------
// 11. Values that do not fit in f32 on an f32 backend.

#[test]
fn values_beyond_f32_are_refused_where_they_are_read() {
    let d = dir("f32");
    let (model, data, ckpt) = trained(&d);
    let big = d.join("big.csv");
    std::fs::write(&big, "a,b,y\n1,2,3\n0.5,1e39,1\n").unwrap();
    for args in [
        vec!["run", s(&model), "--params", s(&ckpt), "--data", s(&big)],
        vec!["train", s(&model), "--data", s(&big), "--quiet"],
        vec!["train", s(&model), "--data", s(&data), "--valid", s(&big), "--quiet"],
        vec!["eval", s(&model), "--data", s(&big), "--f32"],
    ] {
        let (code, _, err) = circ(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("big.csv:3:2") && err.contains("does not fit in f32"), "{args:?}: {err}");
    }
    // The f64 interpreter takes it.
    let (code, _, err) = circ(&["run", s(&model), "--params", s(&ckpt), "--data", s(&big), "--backend", "interp"]);
    assert_eq!(code, 0, "{err}");
    // Parameters: infinities and NaN never, 1e300 not in f32.
    use circ_runtime::files::safetensors::{write, DType, NamedTensor};
    for (w, f64_ok) in [(f64::INFINITY, false), (f64::NAN, false), (1e300, true)] {
        let p = d.join("bad.st");
        let tensors = [
            NamedTensor { name: "w".into(), shape: vec![2], values: vec![0.5, w] },
            NamedTensor { name: "b".into(), shape: vec![], values: vec![0.0] },
        ];
        write(&p, &tensors, DType::F64, &[]).unwrap();
        let (code, out, err) = circ(&["run", s(&model), "--params", s(&p), "--data", s(&data)]);
        assert_eq!(code, 1, "{w}: {err}");
        assert!(err.contains("parameter `w` element 1"), "{w}: {err}");
        assert!(out.is_empty());
        let (code, _, err) = circ(&["run", s(&model), "--params", s(&p), "--data", s(&data), "--backend", "interp"]);
        assert_eq!(code == 0, f64_ok, "{w}: {err}");
    }
}

// ------------------------------------------------------------------------------------------------
// 9. Nothing non-finite is committed: every update and every written tensor is checked, and the
//    error names the parameter, the element, the node and its source line.

const SQRT_AT_ZERO: &str = "model s {\n data x: [N]\n data y: [N]\n param w: [] = 1\n y ~ normal(sqrt(w * x), 1)\n train { epochs = 3, batch = 1, optimizer = sgd(lr = 0.01) }\n}\n";

#[test]
fn a_non_finite_update_is_never_committed_and_is_located() {
    let d = dir("nan-update");
    let model = d.join("s.circ");
    std::fs::write(&model, SQRT_AT_ZERO).unwrap();
    // The gradient of sqrt(w * x) is 0/0 on the row with x = 0 only: a later step of the epoch.
    let data = d.join("d.csv");
    std::fs::write(&data, "x,y\n1,2\n2,3\n3,1\n0,1\n4,2\n").unwrap();
    for backend in ["cpu", "interp"] {
        let ckpt = d.join(format!("{backend}.st"));
        let (code, stdout, err) =
            circ(&["train", s(&model), "--data", s(&data), "--out", s(&ckpt), "--backend", backend, "--quiet"]);
        assert_eq!(code, 1, "{backend}: {stdout}{err}");
        assert!(err.contains("the update of `w` at epoch 1, step 4 is NaN at element []"), "{backend}: {err}");
        assert!(err.contains("(div) from ") && err.contains("s.circ:5:13: `y ~ normal(sqrt(w * x), 1)`"), "{err}");
        assert!(!ckpt.exists(), "{backend}: a checkpoint holding NaN was written");
    }
}

#[test]
fn newton_without_damping_on_an_unused_parameter_fails() {
    let d = dir("newton0");
    let (_, data) = ridge(&d);
    let model = d.join("n.circ");
    std::fs::write(
        &model,
        "model n {\n data x: [N, 2] = csv(\"a\", \"b\")\n data y: [N]\n param w: [2]\n param u: [3]\n y ~ normal(x @ w, 1)\n train { epochs = 2, optimizer = newton(damping = 0) }\n}\n",
    )
    .unwrap();
    for backend in ["cpu", "interp"] {
        let ckpt = d.join(format!("{backend}.st"));
        let (code, stdout, err) =
            circ(&["train", s(&model), "--data", s(&data), "--out", s(&ckpt), "--backend", backend, "--quiet"]);
        assert_eq!(code, 1, "{backend}: {stdout}{err}");
        assert!(err.contains("the update of `u` at epoch 1, step 1 is NaN at element [0]"), "{backend}: {err}");
        assert!(err.contains("newton(") && err.contains("damping = 0"), "{err}");
        assert!(!ckpt.exists());
    }
}

#[test]
fn grad_writes_no_non_finite_gradient() {
    let d = dir("nan-grad");
    let model = d.join("s.circ");
    std::fs::write(&model, SQRT_AT_ZERO.replace("= 1\n", "= 0\n")).unwrap();
    let data = d.join("d.csv");
    std::fs::write(&data, "x,y\n1,2\n2,3\n").unwrap();
    let out = d.join("g.st");
    let (code, stdout, err) = circ(&["grad", s(&model), "--data", s(&data), "--out", s(&out)]);
    assert_eq!(code, 1, "{stdout}{err}");
    assert!(err.contains("the grad of `w` is") && err.contains("at element []"), "{err}");
    assert!(err.contains("s.circ:5:13"), "{err}");
    assert!(!out.exists());
}

#[test]
fn resume_refuses_a_checkpoint_holding_nan() {
    let d = dir("nan-ckpt");
    let (model, data, ckpt) = trained(&d);
    let (mut tensors, meta) = circ_runtime::files::safetensors::read(&ckpt).unwrap();
    let w = tensors.iter_mut().find(|t| t.name == "w").unwrap();
    w.values[1] = f64::NAN;
    circ_runtime::files::safetensors::write(&ckpt, &tensors, circ_runtime::files::safetensors::DType::F64, &meta)
        .unwrap();
    let (code, _, err) =
        circ(&["train", s(&model), "--data", s(&data), "--out", s(&ckpt), "--resume", "--epochs", "5", "--quiet"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("holds values that are not finite: `w` is NaN at element [1]"), "{err}");
}

// ------------------------------------------------------------------------------------------------
// 12. Flags are checked as the `train` block is; 13. `--resume` says what changed and refuses
//     when nothing is left to do.

#[test]
fn training_flags_are_checked_like_the_train_block() {
    let d = dir("flags");
    let (model, data) = ridge(&d);
    let cases: &[(&[&str], &str)] = &[
        (&["--epochs", "0"], "`epochs` must be at least 1"),
        (&["--batch", "0"], "`batch` must be at least 1"),
        (&["--valid-fraction", "1"], "`valid` is the held-out fraction, in [0, 1)"),
        (&["--valid-fraction", "inf"], "--valid-fraction is inf"),
        (&["--valid-fraction", "nan"], "--valid-fraction is NaN"),
        (&["--valid-fraction=-0.5"], "`valid` is the held-out fraction"),
        (&["--optimizer", "adam, epochs = 1"], "is more than one update rule"),
        (&["--optimizer", "adam } param q: [2]"], "is not an update rule"),
    ];
    for (flags, expected) in cases {
        let out = d.join("p.st");
        let mut args = vec!["train", s(&model), "--data", s(&data), "--out", s(&out), "--quiet"];
        args.extend_from_slice(flags);
        let (code, stdout, err) = circ(&args);
        assert_eq!(code, 2, "{flags:?}: {stdout}{err}");
        assert!(err.contains(expected), "{flags:?}: {err}");
        assert!(!out.exists(), "{flags:?} wrote a checkpoint");
    }
}

#[test]
fn resume_says_what_changed_and_refuses_when_nothing_is_left() {
    let d = dir("resume-changes");
    let (model, data, ckpt) = trained(&d); // 3 epochs, all rows, no validation
                                           // Nothing left: the checkpoint is at epoch 3.
    for epochs in ["3", "2"] {
        let (code, stdout, err) =
            circ(&["train", s(&model), "--data", s(&data), "--out", s(&ckpt), "--resume", "--epochs", epochs]);
        assert_eq!(code, 2, "{stdout}{err}");
        assert!(err.contains("is already at epoch 3") && err.contains("nothing is left to do"), "{err}");
    }
    // The same run continued: no note.
    let (code, _, err) =
        circ(&["train", s(&model), "--data", s(&data), "--out", s(&ckpt), "--resume", "--epochs", "4"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("with changes"), "{err}");
    // Other data, batch size and validation fraction: one line naming each.
    let other = d.join("e.csv");
    let text = std::fs::read_to_string(&data).unwrap().replace("0.1\n", "0.2\n");
    std::fs::write(&other, text).unwrap();
    let (code, _, err) = circ(&[
        "train",
        s(&model),
        "--data",
        s(&other),
        "--out",
        s(&ckpt),
        "--resume",
        "--epochs",
        "5",
        "--batch",
        "4",
        "--valid-fraction",
        "0.25",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let line =
        err.lines().find(|l| l.starts_with("resuming from epoch 4 with changes:")).unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("batch all rows → 4"), "{line}");
    assert!(line.contains("validation 0 → 0.25"), "{line}");
    assert!(line.contains("d.csv → ") && line.contains("e.csv"), "{line}");
    // Same file name, other values.
    std::fs::write(&other, std::fs::read_to_string(&data).unwrap()).unwrap();
    let (code, _, err) = circ(&[
        "train",
        s(&model),
        "--data",
        s(&other),
        "--out",
        s(&ckpt),
        "--resume",
        "--epochs",
        "6",
        "--batch",
        "4",
        "--valid-fraction",
        "0.25",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("with changes: the values in ") && err.contains("e.csv changed"), "{err}");
}

// ------------------------------------------------------------------------------------------------
// 7. A memory budget: a run that cannot fit is refused before anything large is allocated, with
//    the planned bytes, the limit and where it comes from, and the largest buffers' source lines.

/// `circ` under `ulimit -v` (KiB of address space).
#[cfg(target_os = "linux")]
fn circ_limited(kib: u64, args: &[&str]) -> (i32, String) {
    let mut script = format!("ulimit -v {kib} && exec \"$0\"");
    for i in 0..args.len() {
        script.push_str(&format!(" \"${}\"", i + 1));
    }
    let out = Command::new("sh").arg("-c").arg(script).arg(env!("CARGO_BIN_EXE_circ")).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into())
}

#[cfg(target_os = "linux")]
#[test]
fn a_run_beyond_the_memory_budget_is_refused_before_allocating() {
    let d = dir("budget");
    let (_, data) = ridge(&d);
    // A parameter of 10⁹ elements: 4 GB in f32, 8 GB per f64 copy on the host.
    let model = d.join("p.circ");
    std::fs::write(
        &model,
        "model p {\n data x: [N, 2] = csv(\"a\", \"b\")\n data y: [N]\n param w: [1000000000]\n y ~ normal(x[:, 0] * sum(w), 1)\n}\n",
    )
    .unwrap();
    let (code, _, err) = circ(&["check", s(&model)]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("W0002") && err.contains("parameter `w` is very large"), "{err}");
    let start = std::time::Instant::now();
    for backend in ["cpu", "interp"] {
        let (code, err) = circ_limited(2_000_000, &["train", s(&model), "--data", s(&data), "--backend", backend]);
        assert_eq!(code, 1, "{backend}: {err}");
        assert!(err.contains("this run needs") && err.contains("RLIMIT_AS"), "{backend}: {err}");
        assert!(err.contains("largest buffer: ") && err.contains("p.circ:4:"), "{backend}: {err}");
    }
    // A product of [N, 10⁸] at 1000 rows: 400 GB, beyond any machine's memory. (An elementwise
    // `x * v` summed at once is fused into its sum and needs no such buffer.)
    let model = d.join("h.circ");
    std::fs::write(
        &model,
        "model h {\n data x: [N, 1] = csv(\"a\")\n data y: [N]\n param v: [1, 100000000]\n let h = x @ v\n y ~ normal(sum(h, axis = 1), 1)\n}\n",
    )
    .unwrap();
    let rows = d.join("rows.csv");
    let text: String = std::iter::once("a,y\n".to_string()).chain((0..1000).map(|i| format!("{i},1\n"))).collect();
    std::fs::write(&rows, text).unwrap();
    let (code, _, err) = circ(&["train", s(&model), "--data", s(&rows), "--quiet"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("the training step at 1000 rows") && err.contains("h.circ:5:"), "{err}");
    assert!(start.elapsed().as_secs() < 30, "refused only after {:?}", start.elapsed());
    // A small model fits under the same address-space limit.
    let (code, err) =
        circ_limited(2_000_000, &["train", s(&d.join("r.circ")), "--data", s(&data), "--backend", "interp"]);
    assert_eq!(code, 0, "{err}");
}

// ------------------------------------------------------------------------------------------------
// 14, 15. Messages that say what the limit is: depth of circuits, chains of one operator, literals
//         beyond f64, the reserved `opt.` prefix.

#[test]
fn long_chains_of_one_operator_are_flat_and_exact() {
    let d = dir("chains");
    let data = d.join("d.csv");
    std::fs::write(&data, "x,y\n1,2\n2,3\n-1,0.5\n").unwrap();
    let model = |body: &str| {
        let p = d.join(format!("m{}.circ", body.len()));
        std::fs::write(&p, format!("model m {{\n data x: [N]\n data y: [N]\n y ~ normal({body}, 1)\n}}\n")).unwrap();
        p
    };
    let loss = |p: &Path| {
        let (code, out, err) = circ(&["eval", s(p), "--data", s(&data)]);
        assert_eq!(code, 0, "{err}");
        out.lines().find_map(|l| l.trim().strip_prefix("loss").map(|v| v.trim().parse::<f64>().unwrap())).unwrap()
    };
    // 10 000 terms of +, 3 000 of -, 200 of *: all legal, and equal to their closed forms.
    let sum = vec!["x * 0.001"; 10_000].join(" + ");
    assert!((loss(&model(&sum)) - loss(&model("x * 10"))).abs() < 1e-6);
    let diff = format!("x * 3000 - {}", vec!["x"; 2999].join(" - "));
    assert!((loss(&model(&diff)) - loss(&model("x * 1"))).abs() < 1e-6);
    let prod = format!("x * {}", vec!["1.001"; 200].join(" * "));
    assert!((loss(&model(&prod)) - loss(&model(&format!("x * {}", 1.001f64.powi(200))))).abs() < 1e-6);
    // Real nesting is still limited, with its own message.
    let (code, _, err) = circ(&["check", s(&model(&format!("{} x", vec!["-"; 150].join(" "))))]);
    assert_eq!(code, 1);
    assert!(err.contains("E0104") && err.contains("at most 100 levels deep"), "{err}");
}

#[test]
fn depth_limits_infinite_literals_and_reserved_names_are_named() {
    let d = dir("messages");
    let check = |name: &str, text: String| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        let (code, _, err) = circ(&["check", s(&p)]);
        assert_eq!(code, 1, "{name} passed check");
        err
    };
    let mut chain = String::from("circuit c0()(x: [B]) -> [B] {\n return x\n}\n");
    for i in 1..=33 {
        chain.push_str(&format!("circuit c{i}()(x: [B]) -> [B] {{\n let inner = c{}()\n return inner(x)\n}}\n", i - 1));
    }
    chain.push_str("model m {\n data x: [N]\n data y: [N]\n let top = c33()\n y ~ normal(top(x), 1)\n}\n");
    let err = check("chain.circ", chain);
    assert!(err.contains("circuits applied more than 32 deep") && !err.contains("` uses itself"), "{err}");
    let err =
        check("inf.circ", "model m {\n data x: [N]\n data y: [N]\n y ~ normal(x * 1e999999999999, 1)\n}\n".into());
    assert!(err.contains("E0103") && err.contains("would be infinite"), "{err}");
    let reserved = "circuit scale()(x: [B]) -> [B] {\n param w: []\n return x * w\n}\nmodel m {\n data x: [N]\n data y: [N]\n let opt = scale()\n y ~ normal(opt(x), 1)\n}\n";
    let err = check("opt.circ", reserved.into());
    assert!(err.contains("E0211") && err.contains("`opt.w` is reserved"), "{err}");
}

// ------------------------------------------------------------------------------------------------
// 16. `run` streams its predictions a block of rows at a time when rows are independent, and
//     runs the whole table at once when an op mixes rows.

#[test]
fn run_streams_row_by_row_predictions_and_keeps_row_mixing_models_whole() {
    let d = dir("stream");
    let (model, _, ckpt) = trained(&d);
    let big = d.join("big.csv");
    let mut text = String::from("a,b\n");
    for i in 0..10_000 {
        text.push_str(&format!("{i},{}\n", (i % 7) as f64 / 3.0));
    }
    std::fs::write(&big, &text).unwrap();
    let small = d.join("small.csv");
    std::fs::write(&small, text.lines().take(101).map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let run = |model: &Path, data: &Path| {
        let (code, out, err) = circ(&["run", s(model), "--params", s(&ckpt), "--data", s(data), "--backend", "interp"]);
        assert_eq!(code, 0, "{err}");
        out
    };
    let all = run(&model, &big);
    assert_eq!(all.lines().count(), 10_001, "one header and one line per row");
    assert_eq!(all.lines().filter(|l| l.starts_with("y.mean")).count(), 1);
    let first: Vec<&str> = all.lines().take(101).collect();
    assert_eq!(first, run(&model, &small).lines().collect::<Vec<_>>());
    // Centred predictions mix rows (a mean over all of them): computed over the whole table.
    let centred = d.join("c.circ");
    std::fs::write(
        &centred,
        RIDGE.replace("y ~ normal(x @ w + b, 1)", "let p = x @ w + b\n y ~ normal(p - mean(p), 1)"),
    )
    .unwrap();
    // The analysis that decides it, on the graphs `run` builds.
    let independent = |m: &Path| {
        let checked = circ::driver::check_file(m).unwrap();
        let mut g = circ::ir::lower::lower(&checked.models[0], 0);
        g.outputs.retain(|o| o.name != "loss");
        circ::passes::dce::run(&mut g);
        circ::driver::rows_independent(&g)
    };
    assert!(independent(&model));
    assert!(!independent(&centred));
    let (tensors, _) = circ_runtime::files::safetensors::read(&ckpt).unwrap();
    let w = circ_runtime::files::safetensors::find(&tensors, "w").unwrap().values.clone();
    let mean_b: f64 = (0..10_000).map(|i| (i % 7) as f64 / 3.0).sum::<f64>() / 10_000.0;
    let expected = w[0] * (0.0 - 4999.5) + w[1] * (0.0 - mean_b);
    let out = run(&centred, &big);
    let row0: f64 = out.lines().nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    assert!((row0 - expected).abs() < 1e-6 * expected.abs().max(1.0), "{row0} vs {expected}");
}

//! Data-parallel `circ train` under `mpirun --oversubscribe -np 2` (built with `--features mpi`;
//! docs/distributed.md): two processes give the one-process result within 1e-9 on the f64
//! interpreter, reach the digits accuracy, stop together with the message of the process that
//! saw a bad row, and write checkpoints a one-process run resumes. With `CI=true` a missing
//! `mpirun` fails; elsewhere these tests say so and pass.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const CIRC: &str = env!("CARGO_BIN_EXE_circ");

/// Whether `mpirun` runs; without it a test returns early, unless `CI=true`.
fn have_mpirun() -> bool {
    let found = Command::new("mpirun").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: mpirun is missing (apt-get install openmpi-bin)"
        );
        eprintln!("mpirun not found: skipped");
    }
    found
}

/// Runs `cmd` from the repository root; a run past `limit` is killed and fails the test (a
/// process waiting forever for another is the bug these tests look for).
fn run(mut cmd: Command, limit: Duration) -> Output {
    cmd.current_dir(ROOT).stdout(Stdio::piped()).stderr(Stdio::piped());
    // One thread per process: the test machine's cores are shared by both.
    cmd.env("CIRC_THREADS", "1");
    let mut child = cmd.spawn().expect("starts");
    let start = Instant::now();
    while child.try_wait().expect("waits").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("killed");
            panic!("still running after {limit:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// `mpirun --oversubscribe -np <np>` with the environment a container and root need.
fn mpirun(np: usize) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["--oversubscribe", "-np", &np.to_string()])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none");
    c
}

fn train(np: usize, args: &[&str]) -> Output {
    let cmd = if np == 1 {
        Command::new(CIRC)
    } else {
        let mut c = mpirun(np);
        c.arg(CIRC);
        c
    };
    let mut cmd = cmd;
    cmd.arg("train").args(args);
    let out = run(cmd, Duration::from_secs(300));
    assert!(out.status.success(), "np = {np}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn temp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mpi").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A number field of the final JSON line.
fn field(stdout: &[u8], key: &str) -> Option<f64> {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().last().unwrap_or("");
    let rest = &line[line.find(&format!("\"{key}\":"))? + key.len() + 3..];
    rest[..rest.find([',', '}'])?].parse().ok()
}

/// Every tensor of a checkpoint, by name.
fn tensors(path: &Path) -> Vec<(String, Vec<f64>)> {
    let (t, _) = circ_runtime::files::safetensors::read(path).unwrap();
    t.into_iter().map(|t| (t.name, t.values)).collect()
}

/// The largest difference between two checkpoints' values (same names, same order), relative
/// to the largest magnitude in each tensor (an entry near zero has only rounding left).
fn max_relative(a: &Path, b: &Path) -> f64 {
    let (a, b) = (tensors(a), tensors(b));
    assert_eq!(a.iter().map(|t| &t.0).collect::<Vec<_>>(), b.iter().map(|t| &t.0).collect::<Vec<_>>());
    let mut worst: f64 = 0.0;
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert_eq!(x.len(), y.len(), "{name}");
        let scale = x.iter().chain(y).fold(f64::MIN_POSITIVE, |m, v| m.max(v.abs()));
        for (u, v) in x.iter().zip(y) {
            assert!(u.is_finite() && v.is_finite(), "{name}");
            worst = worst.max((u - v).abs() / scale);
        }
    }
    worst
}

/// ridge.circ's own rule without the cap, which several processes do not support yet.
const NEWTON: [&str; 2] = ["--optimizer", "newton(lr = 0.5, clip = false)"];

#[test]
fn ridge_on_two_and_three_processes_is_ridge_on_one() {
    if !have_mpirun() {
        return;
    }
    let dir = temp("ridge");
    // Newton (curvature and the prior's precision, once) on the full batch, and adam (state) on
    // batches of 101 rows: shares of 50 and 51 (33, 34, 34 on three), the last batch 38 rows.
    for (k, extra) in [NEWTON.to_vec(), vec!["--optimizer", "adam(lr = 0.05)", "--batch", "101"]].iter().enumerate() {
        let files: Vec<PathBuf> = (1..=3).map(|np| dir.join(format!("{k}-np{np}.safetensors"))).collect();
        let mut outs = Vec::new();
        for np in 1..=3 {
            let out = files[np - 1].to_str().unwrap();
            let mut args = vec!["examples/ridge.circ", "--data", "data/diabetes.csv", "--backend", "interp"];
            args.extend(["--epochs", "30", "--out", out]);
            args.extend(extra.iter().copied());
            outs.push(train(np, &args));
        }
        // mpirun may print its own lines first; circ's first line is rank 0's.
        let err = String::from_utf8_lossy(&outs[1].stderr).to_string();
        let first = err.lines().find(|l| l.starts_with("training `")).unwrap_or("").to_string();
        assert!(first.ends_with(", 2 processes over MPI"), "{first}");
        assert!(!String::from_utf8_lossy(&outs[0].stderr).contains("over MPI"));
        for np in 2..=3 {
            let d = max_relative(&files[0], &files[np - 1]);
            assert!(d <= 1e-9, "np = {np}, {extra:?}: parameters differ by {d:e} relative");
            let (a, b) =
                (field(&outs[0].stdout, "train_nll").unwrap(), field(&outs[np - 1].stdout, "train_nll").unwrap());
            assert!((a - b).abs() <= 1e-9 * a.abs(), "np = {np}, {extra:?}: train nll {a} vs {b}");
            // Only rank 0 prints the final line.
            assert_eq!(String::from_utf8_lossy(&outs[np - 1].stdout).lines().count(), 1);
        }
    }
}

#[test]
fn digits_on_two_processes_reach_97_percent() {
    if !have_mpirun() {
        return;
    }
    let out = train(2, &["examples/mlp_digits.circ", "--data", "data/digits.csv", "--quiet"]);
    let acc = field(&out.stdout, "valid_accuracy").expect("a validation accuracy");
    assert!(acc >= 0.97, "held-out accuracy {acc}");
}

#[test]
fn a_bad_row_on_one_process_stops_both_with_its_place() {
    if !have_mpirun() {
        return;
    }
    let dir = temp("bad_row");
    let good = std::fs::read_to_string(Path::new(ROOT).join("data/diabetes.csv")).unwrap();
    // Process 1 reads a copy with a bad value on line 7 (the 6th row), column 3 (`bmi`).
    let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
    let mut cells: Vec<&str> = lines[6].split(',').collect();
    cells[2] = "fat";
    lines[6] = cells.join(",");
    std::fs::write(dir.join("rows0.csv"), &good).unwrap();
    std::fs::write(dir.join("rows1.csv"), lines.join("\n") + "\n").unwrap();
    let prefix = dir.join("rows");
    let mut cmd = mpirun(2);
    // Each process picks its file by its rank, as a node with a bad copy of the data would.
    cmd.args(["sh", "-c", "exec \"$0\" train examples/ridge.circ --optimizer 'newton(lr = 0.5, clip = false)' --data \"$1$OMPI_COMM_WORLD_RANK.csv\""])
        .arg(CIRC)
        .arg(&prefix);
    let out = run(cmd, Duration::from_secs(120));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let place = format!("{}1.csv:7:3", prefix.display());
    assert!(err.contains(&format!("error: process 1 of 2: {place}")), "{err}");
    assert_eq!(err.matches(&place).count(), 1, "printed once: {err}");
    assert!(!err.contains("MPI_ABORT"), "both stopped by agreement, not by an abort: {err}");
}

#[test]
fn a_checkpoint_of_two_processes_resumes_on_one() {
    if !have_mpirun() {
        return;
    }
    let dir = temp("resume");
    let (ck, straight) = (dir.join("ck.safetensors"), dir.join("straight.safetensors"));
    let (ck_s, straight_s) = (ck.to_str().unwrap(), straight.to_str().unwrap());
    let ridge = |np: usize, extra: &[&str]| {
        let mut args = vec!["examples/ridge.circ", "--data", "data/diabetes.csv", "--backend", "interp"];
        args.extend(["--batch", "64"]);
        args.extend(NEWTON);
        args.extend(extra);
        train(np, &args)
    };
    ridge(2, &["--epochs", "3", "--out", ck_s]);
    ridge(1, &["--epochs", "6", "--out", ck_s, "--resume"]);
    ridge(1, &["--epochs", "6", "--out", straight_s]);
    let d = max_relative(&ck, &straight);
    assert!(d <= 1e-9, "resumed differs from straight by {d:e}");
}

#[test]
fn a_loss_that_overflows_on_one_process_stops_both() {
    if !have_mpirun() {
        return;
    }
    let dir = temp("overflow");
    // One row whose `age` is 1e200: its squared error overflows on whichever process takes it.
    let good = std::fs::read_to_string(Path::new(ROOT).join("data/diabetes.csv")).unwrap();
    let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
    let mut cells: Vec<String> = lines[100].split(',').map(str::to_string).collect();
    cells[0] = "1e200".into();
    lines[100] = cells.join(",");
    let data = dir.join("huge.csv");
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();
    let mut cmd = mpirun(2);
    cmd.args([CIRC, "train", "examples/ridge.circ", "--backend", "interp", "--batch", "64"])
        .args(NEWTON)
        .arg("--data")
        .arg(&data);
    let out = run(cmd, Duration::from_secs(120));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("error: process ").count(), 1, "{err}");
    assert!(err.contains("the loss is not finite at epoch 1"), "{err}");
    assert!(!err.contains("MPI_ABORT"), "{err}");
}

#[test]
fn the_capped_second_order_step_is_refused_on_two_processes() {
    if !have_mpirun() {
        return;
    }
    // ridge.circ's own rule, newton(lr = 0.5), caps its step (clip = true by default): the cap
    // needs a second sum per step that is not built, so every process says so and stops.
    let mut cmd = mpirun(2);
    cmd.args([CIRC, "train", "examples/ridge.circ", "--data", "data/diabetes.csv"]);
    let out = run(cmd, Duration::from_secs(120));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("error: `newton` with `clip = true` (its default) is not supported with several processes yet"),
        "{err}"
    );
}

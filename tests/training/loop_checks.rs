//! The training loop's promises: resuming from a checkpoint is bit for bit, a non-finite loss is
//! stopped and traced to its node and source line, and data that do not fit the model are refused
//! before any step.

use crate::common::*;
use circ::train::run::{EpochMetrics, TrainError, Trainer};
use circ_runtime::files::safetensors::{self, DType};

// ------------------------------------------------------------------------------------------------
// Resume.

fn run_until(t: &mut Trainer, epochs: u64) -> Vec<EpochMetrics> {
    let mut out = Vec::new();
    while t.epoch < epochs {
        out.push(t.run_epoch(&mut |_, _, _| {}).unwrap_or_else(|e| panic!("{e}")));
    }
    out
}

fn bits(v: &[Vec<f64>]) -> Vec<Vec<u64>> {
    v.iter().map(|x| x.iter().map(|f| f.to_bits()).collect()).collect()
}

/// Metrics without the wall-clock time.
fn timeless(m: &EpochMetrics) -> EpochMetrics {
    EpochMetrics { seconds: 0.0, ..m.clone() }
}

/// mlp_digits: adam (moments and step count as state), batches of 64 shuffled per epoch, a 20%
/// validation split. 4 epochs straight equal 2, a checkpoint through a safetensors file, a fresh
/// trainer restored from it, and 2 more.
#[test]
fn resuming_from_a_checkpoint_is_bit_for_bit() {
    resume_on(circ::backend::BackendKind::Interp);
}

/// The same on the Cranelift backend, which keeps parameters and adam's moments in its arena
/// between steps and hands them back after every epoch.
#[test]
fn resuming_on_the_cpu_backend_is_bit_for_bit() {
    resume_on(circ::backend::BackendKind::Cpu);
}

fn resume_on(backend: circ::backend::BackendKind) {
    let table = read_table("digits.csv");
    let checked = example("mlp_digits.circ");
    let setup = Setup::new(&checked, None, |s| s.epochs = 4).on(backend);
    assert!(setup.settings.batch.is_some_and(|b| b < 1000) && setup.settings.valid > 0.0);
    let data = setup.bind(&table).unwrap();

    let mut straight = setup.trainer(&data);
    let straight_metrics = run_until(&mut straight, 4);

    let mut first = setup.trainer(&data);
    let first_metrics = run_until(&mut first, 2);
    assert_eq!(
        first_metrics.iter().map(timeless).collect::<Vec<_>>(),
        straight_metrics[..2].iter().map(timeless).collect::<Vec<_>>()
    );
    let (tensors, meta) = first.checkpoint("digits");
    let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    for want in ["l1.w", "l2.b", "opt.adam.m.l1.w", "opt.adam.v.l2.b"] {
        assert!(names.contains(&want), "the checkpoint should hold `{want}`: {names:?}");
    }
    let dir = temp_dir("resume");
    let path = dir.join("digits.safetensors");
    safetensors::write(&path, &tensors, DType::F64, &meta).unwrap();
    let (read, read_meta) = safetensors::read(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let mut resumed = setup.trainer(&data);
    resumed.restore(&path.display().to_string(), &read, &read_meta).unwrap();
    assert_eq!((resumed.epoch, resumed.t), (2, first.t));
    let resumed_metrics = run_until(&mut resumed, 4);

    assert_eq!(resumed.t, straight.t);
    assert_eq!(bits(&resumed.params), bits(&straight.params), "parameters differ after resuming");
    assert_eq!(bits(&resumed.state), bits(&straight.state), "optimizer state differs after resuming");
    assert_eq!(
        resumed_metrics.iter().map(timeless).collect::<Vec<_>>(),
        straight_metrics[2..].iter().map(timeless).collect::<Vec<_>>()
    );
    println!(
        "resume on {}: 4 epochs ({} steps) straight = 2 + checkpoint + 2, bit for bit; valid accuracy {:?}",
        backend.name(),
        straight.t,
        straight_metrics[3].valid_accuracy
    );

    // The comparison has teeth: restoring the parameters alone (adam's moments and step count
    // reset) does not give the same run.
    let mut params_only = setup.trainer(&data);
    params_only.params =
        setup.param_names().iter().map(|n| safetensors::find(&read, n).unwrap().values.clone()).collect();
    params_only.epoch = 2;
    run_until(&mut params_only, 4);
    assert_ne!(bits(&params_only.params), bits(&straight.params));
}

// ------------------------------------------------------------------------------------------------
// Non-finite loss.

/// A weight the data pull below zero in one sgd step, and a log of it: the loss is finite at the
/// first step and NaN at the second, first at the `log` node.
const DRIFT: &str = "# a weight pulled below zero by the data, and its log
model drift {
    data x: [N]
    data y: [N]
    data z: [N]
    param a: [] = 1 update sgd(lr = 0.1)
    y ~ normal(a * x, 1)
    let la = log(a)
    z ~ normal(la, 1)
    train { epochs = 10, seed = 0 }
}
";

/// 32 rows of `y = −3x` and `z = 0`: `a` is driven below zero, where `log(a)` is NaN.
fn drift_table() -> circ_runtime::files::csv::Table {
    let mut rng = Rng::new(3);
    let rows: Vec<Vec<f64>> = (0..32)
        .map(|_| {
            let x = rng.range(-1.0, 1.0);
            vec![x, -3.0 * x, 0.0]
        })
        .collect();
    parse_table("drift.csv", &csv_text(&["x", "y", "z"].map(String::from), &rows))
}

#[test]
fn a_non_finite_loss_names_its_first_node_and_source_line() {
    let checked = source("drift.circ", DRIFT);
    let table = drift_table();
    let setup = Setup::new(&checked, None, |_| {});
    let err = match setup.train(&table) {
        Err(e @ TrainError::NonFinite { .. }) => e,
        Err(e) => panic!("expected a non-finite loss, got: {e}"),
        Ok(t) => panic!("expected a non-finite loss, trained to a = {:?}", t.param("a")),
    };
    let text = err.to_string();
    println!("{text}");
    let line = line_of(DRIFT, "log(a)");
    assert!(text.starts_with("the loss is not finite at epoch 2, step 2; the first non-finite value is %"), "{text}");
    assert!(text.contains(&format!("(log) from drift.circ:{line}:14: `let la = log(a)`")), "{text}");
}

/// The same on the Cranelift backend: the f32 reference interpreter finds the node.
#[test]
fn a_non_finite_loss_on_the_cpu_backend_names_its_node_too() {
    let checked = source("drift.circ", DRIFT);
    let table = drift_table();
    let setup = Setup::new(&checked, None, |_| {}).on(circ::backend::BackendKind::Cpu);
    let text = match setup.train(&table) {
        Err(e @ TrainError::NonFinite { .. }) => e.to_string(),
        Err(e) => panic!("expected a non-finite loss, got: {e}"),
        Ok(t) => panic!("expected a non-finite loss, trained to a = {:?}", t.param("a")),
    };
    let line = line_of(DRIFT, "log(a)");
    assert!(text.contains(&format!("(log) from drift.circ:{line}:14: `let la = log(a)`")), "{text}");
}

/// Plain sgd with a huge learning rate on ridge regression blows up; the first infinite value is
/// traced to the observation's line in the example.
#[test]
fn a_diverging_sgd_names_the_likelihood_line() {
    let table = read_table("diabetes.csv");
    let checked = example("ridge.circ");
    let setup = Setup::new(&checked, Some("sgd(lr = 1)"), |_| {});
    let err = match setup.train(&table) {
        Err(e @ TrainError::NonFinite { .. }) => e,
        Err(e) => panic!("expected a non-finite loss, got: {e}"),
        Ok(_) => panic!("sgd(lr = 1) on ridge should diverge"),
    };
    let text = err.to_string();
    println!("{text}");
    let file = std::fs::read_to_string(example_path("ridge.circ")).unwrap();
    let line = line_of(&file, "target ~ normal(");
    assert!(text.contains(&format!("ridge.circ:{line}:")), "{text}");
    assert!(text.contains("`target ~ normal(x @ w + b, 1)`"), "{text}");
}

// ------------------------------------------------------------------------------------------------
// Data that do not fit.

/// A table like `file` with edits applied to its header and rows, under the name `name`.
fn edited(
    file: &str,
    name: &str,
    edit: impl FnOnce(&mut Vec<String>, &mut Vec<Vec<f64>>),
) -> circ_runtime::files::csv::Table {
    let t = read_table(file);
    let (mut columns, mut rows) = (t.columns.clone(), table_rows(&t));
    edit(&mut columns, &mut rows);
    parse_table(name, &csv_text(&columns, &rows))
}

/// Binding fails with exactly `want`, and training never starts.
fn refused(example_name: &str, table: &circ_runtime::files::csv::Table, want: &str) {
    let checked = example(example_name);
    let setup = Setup::new(&checked, None, |_| {});
    assert_eq!(setup.bind(table).err().as_deref(), Some(want));
    match setup.train(table) {
        Err(TrainError::Data(e)) => assert_eq!(e, want),
        Err(e) => panic!("expected a data error, got: {e}"),
        Ok(_) => panic!("{example_name} trained on data that do not fit it"),
    }
}

#[test]
fn a_missing_column_is_refused() {
    let table = edited("diabetes.csv", "diabetes_renamed.csv", |cols, _| cols[10] = "progression".into());
    refused(
        "ridge.circ",
        &table,
        "no column \"target\" in diabetes_renamed.csv; its columns are \"age\", \"sex\", \"bmi\", \"bp\", \"s1\", \"s2\", \"s3\", \"s4\", \"s5\", \"s6\", \"progression\"",
    );
}

#[test]
fn a_missing_end_of_a_column_range_is_refused() {
    let table = edited("breast_cancer.csv", "bc_typo.csv", |cols, _| cols[29] = "worst_fractal_dimensoin".into());
    refused(
        "logistic.circ",
        &table,
        "no column \"worst_fractal_dimension\" (did you mean \"worst_fractal_dimensoin\"?) in bc_typo.csv",
    );
}

#[test]
fn a_column_range_of_the_wrong_width_is_refused() {
    let table = edited("breast_cancer.csv", "bc_29.csv", |cols, rows| {
        cols.remove(7);
        for r in rows {
            r.remove(7);
        }
    });
    refused(
        "logistic.circ",
        &table,
        "data `x` has 30 columns per example, but the columns \"mean_radius\" .. \"worst_fractal_dimension\" are 29 in bc_29.csv",
    );
}

#[test]
fn a_fractional_label_is_refused() {
    // Row index 3 is line 5 (the header is line 1); `label` is column 5.
    let table = edited("iris.csv", "iris_half.csv", |_, rows| rows[3][4] = 1.5);
    refused("bayes.circ", &table, "iris_half.csv:5:5 (column \"label\"): `label` holds integer labels, found 1.5");
}

/// A categorical label outside 0..K and a bernoulli label other than 0 or 1 are silently trained
/// on today (bind_table only checks that int data are whole numbers).
#[test]
fn labels_outside_the_classes_are_refused() {
    for (file, name, example_name, row, col, bad) in [
        ("iris.csv", "iris_7.csv", "bayes.circ", 3, 4, 7.0),
        ("iris.csv", "iris_neg.csv", "bayes.circ", 3, 4, -1.0),
        ("breast_cancer.csv", "bc_2.csv", "logistic.circ", 2, 30, 2.0),
    ] {
        let table = edited(file, name, |_, rows| rows[row][col] = bad);
        let checked = example(example_name);
        let setup = Setup::new(&checked, None, |s| s.epochs = 1);
        let Err(e) = setup.bind(&table) else { panic!("{name}: label {bad} was accepted") };
        assert!(e.contains(&format!("{name}:{}:{}", row + 2, col + 1)) && e.contains("label"), "{name}: {e}");
    }
}

// ------------------------------------------------------------------------------------------------
// Mini-batch curvature.

/// The step's gradient and curvature are both of the batch loss scaled by N/B, so a Newton step
/// g/h on a model with flat priors (and no damping) must not depend on the batch scale. Today the
/// bprop2 curvature seeds (likelihoods, activation priors) are not multiplied by `batch_scale`,
/// so the step is N/B times too long (and `bayes` counts a batch's evidence N/B times too
/// little). This is why examples/abx.circ trains on the full batch.
#[test]
fn a_newton_step_does_not_depend_on_the_batch_scale() {
    let mut rng = Rng::new(0xAB5);
    let rows: Vec<Vec<f64>> = (0..256)
        .map(|_| {
            let x = rng.range(-1.0, 1.0);
            vec![x, 0.7 * x]
        })
        .collect();
    let table = parse_table("abx.csv", &csv_text(&["x", "y"].map(String::from), &rows));
    let checked = with_rule(example("abx.circ"), "newton(lr = 0.5, damping = 0)");
    let setup = Setup::new(&checked, None, |s| s.batch = Some(64));
    let data = setup.bind(&table).unwrap();
    let feed = circ::train::run::select(&data, &(0..64).collect::<Vec<_>>());
    let g = &setup.step.graph;
    let step = |scale: f64| -> Vec<f64> {
        let inputs: Vec<Vec<f64>> =
            g.inputs.iter().map(|i| if i.name == "batch_scale" { vec![scale] } else { vec![1.0] }).collect();
        let out = circ::interp::run_with::<f64>(g, &feed, &[vec![100.0], vec![1e-4]], &inputs).unwrap();
        vec![out.get("new.a").unwrap().data[0], out.get("new.b").unwrap().data[0]]
    };
    let (one, four) = (step(1.0), step(4.0));
    assert!(rel_error(&four, &one) < 1e-12, "the Newton step at batch scale 4 is {four:?}, at scale 1 {one:?}");

    // And so the example converges on mini-batches of 64 as it does on the full batch.
    let mini = with_rule(example("abx.circ"), "newton(lr = 0.5)");
    let setup = Setup::new(&mini, None, |s| s.batch = Some(64));
    let t = setup.train(&table).unwrap_or_else(|e| panic!("newton on batches of 64: {e}"));
    let (a, b) = (t.param("a")[0], t.param("b")[0]);
    let fit = rows.iter().map(|r| (r[1] - a * b * r[0]).powi(2)).sum::<f64>() / rows.len() as f64;
    assert!(fit < 1e-6, "fit error {fit:e} on batches of 64");
}

/// A checkpoint written by a run on the OpenCL backend resumes on the CPU backend, and one from
/// the CPU backend on OpenCL: the restored trainer starts from the checkpoint's values exactly,
/// and its next epochs stay within f32 rounding of the uninterrupted run on the first backend.
#[test]
fn checkpoints_move_between_the_opencl_and_cpu_backends() {
    if !opencl_available("checkpoints_move_between_the_opencl_and_cpu_backends") {
        return;
    }
    use circ::backend::BackendKind::{Cpu, OpenCl};
    let table = read_table("digits.csv");
    let checked = example("mlp_digits.circ");
    for (from, to) in [(OpenCl(None), Cpu), (Cpu, OpenCl(None))] {
        let first_setup = Setup::new(&checked, None, |s| s.epochs = 4).on(from);
        let data = first_setup.bind(&table).unwrap();
        let mut straight = first_setup.trainer(&data);
        run_until(&mut straight, 4);
        let mut first = first_setup.trainer(&data);
        run_until(&mut first, 2);
        let (tensors, meta) = first.checkpoint("digits");
        let dir = temp_dir("cross-backend");
        let path = dir.join("digits.safetensors");
        safetensors::write(&path, &tensors, DType::F64, &meta).unwrap();
        let (read, read_meta) = safetensors::read(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let second_setup = Setup::new(&checked, None, |s| s.epochs = 4).on(to);
        let mut resumed = second_setup.trainer(&data);
        resumed.restore(&path.display().to_string(), &read, &read_meta).unwrap();
        assert_eq!(bits(&resumed.params), bits(&first.params), "{} → {}: restored parameters", from.name(), to.name());
        assert_eq!(bits(&resumed.state), bits(&first.state), "{} → {}: restored state", from.name(), to.name());
        let metrics = run_until(&mut resumed, 4);
        let (a, b): (Vec<f64>, Vec<f64>) = (resumed.params.concat(), straight.params.concat());
        let err = rel_error(&a, &b);
        println!(
            "{} → {} after 2 + 2 epochs: parameters {err:.2e} relative from 4 epochs on {}; valid accuracy {:?}",
            from.name(),
            to.name(),
            from.name(),
            metrics.last().and_then(|m| m.valid_accuracy)
        );
        assert!(err < 1e-3, "{} → {}: parameters {err:e} relative from the uninterrupted run", from.name(), to.name());
        assert!(metrics.last().and_then(|m| m.valid_accuracy).unwrap() > 0.9);
    }
}

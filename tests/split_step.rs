//! The data-parallel training step (`train::step::build_split`, docs/distributed.md) against the
//! whole step, in one process and without MPI: `local` run on shares of a batch, its gradients
//! and curvatures summed, then `apply` on the sums, gives the whole step's new parameters and
//! optimizer state within f64 rounding. Rules with state (adam), with the bprop2 curvature
//! (newton) and with both and the prior's precision (bayes); priors must count once. And a
//! build without MPI refuses to be one of several processes.

use circ::interp::{self, HostTensor};
use circ::train::run::{rows, select};
use std::collections::HashMap;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every new parameter and state value of one step from the first `batch` rows, whole and split
/// into `parts` shares: the largest relative difference.
fn split_against_whole(example: &str, data: &str, rule: &str, batch: usize, parts: usize) -> f64 {
    let text = std::fs::read_to_string(format!("{ROOT}/examples/{example}")).unwrap();
    let checked = circ::driver::check_source(example, &text);
    assert!(!checked.has_errors(), "{}", checked.render(false));
    let model = &checked.models[0];
    let rule = circ::driver::parse_update_rule(rule).unwrap();
    let whole = circ::train::step::build(model, 0, &rule);
    let split = circ::train::step::build_split(model, 0, &rule).unwrap();
    assert!(split.apply.graph.data.is_empty(), "apply reads no data");
    let all = circ::data::load_as(&whole.graph, std::path::Path::new(&format!("{ROOT}/data/{data}")), false).unwrap();
    let n = rows(&all);
    let scale = n as f64 / batch as f64;
    let params = circ::ir::init::initial_values(&whole.graph);
    assert_eq!(params, circ::ir::init::initial_values(&split.apply.graph), "the same starting draws");
    // Start the state away from its initial values, so it matters.
    let state: HashMap<String, Vec<f64>> = whole
        .state
        .iter()
        .map(|s| (s.output.clone(), s.init.values(&params[s.param]).iter().map(|v| v + 0.25).collect()))
        .collect();
    let inputs =
        |g: &circ::ir::Graph, slots: &[circ::train::optimizer::StateSlot], sums: &HashMap<String, Vec<f64>>| {
            g.inputs
                .iter()
                .enumerate()
                .map(|(i, info)| match info.name.as_str() {
                    "batch_scale" => vec![scale],
                    "step" => vec![3.0],
                    name => match slots.iter().find(|s| s.input == i) {
                        Some(s) => state[&s.output].clone(),
                        None => sums[name].clone(),
                    },
                })
                .collect::<Vec<_>>()
        };
    let batch_rows: Vec<usize> = (0..batch).map(|r| (r * 7) % n).collect();
    let want = interp::run_with::<f64>(
        &whole.graph,
        &select(&all, &batch_rows),
        &params,
        &inputs(&whole.graph, &whole.state, &HashMap::new()),
    )
    .unwrap();

    let mut sums: HashMap<String, Vec<f64>> = HashMap::new();
    for k in 0..parts {
        let mine = circ::train::distributed::share(&batch_rows, k, parts);
        let feed: Vec<HostTensor> = select(&all, mine);
        let local_inputs: Vec<Vec<f64>> = split
            .local
            .inputs
            .iter()
            .map(|i| match i.name.as_str() {
                "batch_scale" => vec![scale],
                other => panic!("local reads only batch_scale, not {other}"),
            })
            .collect();
        let out = interp::run_with::<f64>(&split.local, &feed, &params, &local_inputs).unwrap();
        for p in &split.local.params {
            for what in ["grad", "curv"] {
                let Some(t) = out.get(&format!("{what}.{}", p.name)) else { continue };
                let sum = sums.entry(format!("sum.{what}.{}", p.name)).or_insert_with(|| vec![0.0; t.data.len()]);
                sum.iter_mut().zip(&t.data).for_each(|(s, v)| *s += v);
            }
        }
    }
    let got = interp::run_with::<f64>(
        &split.apply.graph,
        &[],
        &params,
        &inputs(&split.apply.graph, &split.apply.state, &sums),
    )
    .unwrap();
    let mut names: Vec<String> = whole.graph.params.iter().map(|p| format!("new.{}", p.name)).collect();
    names.extend(whole.state.iter().map(|s| s.output.clone()));
    assert!(!names.is_empty());
    let mut worst: f64 = 0.0;
    for name in names {
        let (w, g) = (&want.get(&name).unwrap().data, &got.get(&name).unwrap_or_else(|| panic!("no {name}")).data);
        assert_eq!(w.len(), g.len(), "{name}");
        // Relative to the tensor's largest entry: an entry near zero has only rounding left.
        let scale = w.iter().fold(f64::MIN_POSITIVE, |m, v| m.max(v.abs()));
        for (a, b) in w.iter().zip(g) {
            assert!(a.is_finite(), "{name}: {a}");
            worst = worst.max((a - b).abs() / scale);
        }
    }
    worst
}

#[test]
fn ridge_split_over_two_is_the_whole_newton_step() {
    // Newton reads the curvature, which holds the normal prior's precision once.
    let d = split_against_whole("ridge.circ", "diabetes.csv", "newton(lr = 0.5, clip = false)", 442, 2);
    assert!(d < 1e-12, "{d}");
}

#[test]
fn ridge_split_over_three_uneven_shares_is_the_whole_adam_step() {
    let d = split_against_whole("ridge.circ", "diabetes.csv", "adam(lr = 0.1)", 101, 3);
    assert!(d < 1e-12, "{d}");
}

#[test]
fn digits_split_is_the_whole_bayes_step() {
    // Bayes subtracts the prior's precision from the curvature and keeps a precision state.
    let d = split_against_whole("mlp_digits.circ", "digits.csv", "bayes(lr = 0.5, decay = 0.1, clip = false)", 64, 2);
    assert!(d < 1e-10, "{d}");
}

#[test]
fn a_prior_counts_once_however_many_shares() {
    // With sgd the update is linear in the gradient: split over 4 shares, the prior's gradient
    // added once; had every share added it, ridge's weights would move by 3 extra prior steps.
    let d = split_against_whole("ridge.circ", "diabetes.csv", "sgd(lr = 0.01)", 442, 4);
    assert!(d < 1e-12, "{d}");
}

/// Started by a launcher as one of several processes, a `circ` built without the `mpi` feature
/// refuses to train (each process would train alone and write the same files).
#[cfg(not(feature = "mpi"))]
#[test]
fn several_processes_without_mpi_are_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_circ"))
        .current_dir(ROOT)
        .args(["train", "examples/ridge.circ", "--data", "data/diabetes.csv", "--epochs", "1"])
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error: 2 processes were started"), "{err}");
    assert!(err.contains("--features mpi"), "{err}");
}

//! Forward passes on the reference interpreter against values computed by hand.

use circ::driver;
use std::path::Path;

fn shared(name: &str) -> Option<std::path::PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(name);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("note: {} is missing; skipping", p.display());
        None
    }
}

/// examples/ridge.circ on diabetes.csv with every parameter at zero: the loss is the negative log
/// joint density, ½·Σy² + N·½·log 2π from the unit-variance likelihood, plus the normal(0, 1)
/// prior's constant ½·log 2π for each of the 10 weights (the flat intercept adds nothing).
#[test]
fn ridge_loss_at_zero_is_half_the_sum_of_squares_plus_constants() {
    let Some(csv) = shared("diabetes.csv") else { return };
    let text = std::fs::read_to_string(&csv).unwrap();
    // The target is the last column; read it here independently of circ's CSV reader.
    let ys: Vec<f64> = text.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().trim().parse().unwrap()).collect();
    assert_eq!(ys.len(), 442);
    let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let expected = 0.5 * ys.iter().map(|y| y * y).sum::<f64>() + 442.0 * half_log_2pi + 10.0 * half_log_2pi;

    let checked = driver::check_file(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ridge.circ"))).unwrap();
    assert!(!checked.has_errors(), "{}", checked.render(false));
    let g = &driver::lower(&checked, 0)[0];
    let table = circ_runtime::csv::read_csv(&csv).unwrap();
    let data = circ::data::bind_table(g, &table).unwrap();
    let zeros: Vec<Vec<f64>> = g.params.iter().map(|p| vec![0.0; p.shape.iter().product::<u64>() as usize]).collect();
    let e = driver::evaluate(g, &checked.program.sources, &data, &zeros, false).unwrap();
    assert!((e.loss - expected).abs() <= 1e-9 * expected, "loss {} expected {expected}", e.loss);
    assert!(e.first_non_finite.is_none());
}

/// A datum whose columns are missing from the file is refused with the file's name and a hint.
#[test]
fn missing_columns_are_named() {
    let checked = driver::check_source(
        "m.circ",
        "model m {\n data x: [N, 2] = csv(\"a\", \"bb\")\n data y: [N]\n param w: [2]\n y ~ normal(x @ w, 1)\n}\n",
    );
    assert!(!checked.has_errors(), "{}", checked.render(false));
    let g = &driver::lower(&checked, 0)[0];
    let table = circ_runtime::csv::parse_csv("d.csv", "a,b,y\n1,2,3\n").unwrap();
    let e = circ::data::bind_table(g, &table).unwrap_err();
    assert_eq!(e, "no column \"bb\" (did you mean \"b\"?) in d.csv");
}

/// Labels declared `int` must be integers; the error names file, line and column.
#[test]
fn fractional_labels_are_refused_with_their_place() {
    let checked = driver::check_source(
        "m.circ",
        "model m {\n data x: [N, 1] = csv(\"x\")\n data y: int[N]\n param w: [1, 2]\n y ~ categorical(x @ w)\n}\n",
    );
    assert!(!checked.has_errors(), "{}", checked.render(false));
    let g = &driver::lower(&checked, 0)[0];
    let table = circ_runtime::csv::parse_csv("d.csv", "x,y\n1,0\n2,1.5\n").unwrap();
    let e = circ::data::bind_table(g, &table).unwrap_err();
    assert_eq!(e, "d.csv:3:2 (column \"y\"): `y` holds integer labels, found 1.5");
}

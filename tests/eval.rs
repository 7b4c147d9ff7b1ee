//! Forward passes on the reference interpreter against values computed by hand.

use circ::driver;
use std::path::Path;

/// A file of the repository's `data/` folder.
fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join(name)
}

/// examples/ridge.circ on diabetes.csv with every parameter at zero: the loss is the negative log
/// joint density, ½·Σy² + N·½·log 2π from the unit-variance likelihood, plus the normal(0, 1)
/// prior's constant ½·log 2π for each of the 10 weights (the flat intercept adds nothing).
#[test]
fn ridge_loss_at_zero_is_half_the_sum_of_squares_plus_constants() {
    let csv = data("diabetes.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    // The target is the last column; read it here independently of circ's CSV reader.
    let ys: Vec<f64> = text.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().trim().parse().unwrap()).collect();
    assert_eq!(ys.len(), 442);
    let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let expected = 0.5 * ys.iter().map(|y| y * y).sum::<f64>() + 442.0 * half_log_2pi + 10.0 * half_log_2pi;

    let checked = driver::check_file(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ridge.circ"))).unwrap();
    assert!(!checked.has_errors(), "{}", checked.render(false));
    let g = &driver::lower(&checked, 0)[0];
    let table = circ_runtime::files::csv::read_csv(&csv).unwrap();
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
    let table = circ_runtime::files::csv::parse_csv("d.csv", "a,b,y\n1,2,3\n").unwrap();
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
    let table = circ_runtime::files::csv::parse_csv("d.csv", "x,y\n1,0\n2,1.5\n").unwrap();
    let e = circ::data::bind_table(g, &table).unwrap_err();
    assert_eq!(e, "d.csv:3:2 (column \"y\"): `y` holds integer labels, found 1.5");
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

/// The same data as a directory of `.npy` files give the same loss as the CSV.
#[test]
fn npy_directories_feed_the_same_data_as_csv() {
    let checked = driver::check_source(
        "m.circ",
        "model m {\n data x: [N, 2] = csv(\"a\", \"b\")\n data y: int[N]\n param w: [2, 3] ~ normal(0, 1)\n y ~ categorical(x @ w)\n}\n",
    );
    assert!(!checked.has_errors(), "{}", checked.render(false));
    let g = &driver::lower(&checked, 3)[0];
    let dir = std::env::temp_dir().join(format!("circ-npy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("d.csv");
    std::fs::write(&csv, "a,b,y\n0.5,1.5,0\n-1,2,2\n3,0.25,1\n").unwrap();
    write_npy(&dir.join("x.npy"), &[3, 2], &[0.5, 1.5, -1.0, 2.0, 3.0, 0.25]);
    write_npy(&dir.join("y.npy"), &[3], &[0.0, 2.0, 1.0]);
    let params = circ::ir::init::initial_values(g);
    let from_csv = circ::data::load(g, &csv).unwrap();
    let from_npy = circ::data::load(g, &dir).unwrap();
    let a = driver::evaluate(g, &checked.program.sources, &from_csv, &params, false).unwrap().loss;
    let b = driver::evaluate(g, &checked.program.sources, &from_npy, &params, false).unwrap().loss;
    assert_eq!(a, b);
    // A label file with fractions is refused with the file named.
    write_npy(&dir.join("y.npy"), &[3], &[0.0, 2.5, 1.0]);
    let e = circ::data::load(g, &dir).unwrap_err();
    assert!(e.message.ends_with("y.npy: `y` holds integer labels, found 2.5"), "{e}");
    assert_eq!(e.kind, circ::error::Kind::Input, "a bad value is an input error");
}

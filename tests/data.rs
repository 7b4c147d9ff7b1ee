//! The data sets of `data/`: the generated ones are exactly what `data/gen.rs` writes, the
//! scikit-learn copies read with the shapes `data/README.md` gives, and nothing in the repository
//! reads data from outside it.

#[path = "../data/gen.rs"]
mod gen;

use circ_runtime::files::csv::read_csv;
use std::path::{Path, PathBuf};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// A changed generator (or a hand-edited file) shows here: regenerate with
/// `cargo run --example gen_data` and commit both.
#[test]
fn generated_files_are_what_the_generator_writes() {
    let files = gen::all(&data_dir()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(files.len(), 7);
    for f in files {
        let path = data_dir().join(f.name);
        let committed =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        if committed != f.text {
            let line = committed.lines().zip(f.text.lines()).position(|(a, b)| a != b).map_or(0, |k| k + 1);
            panic!(
                "data/{} differs from what data/gen.rs writes (first at line {line}; {} vs {} bytes): run `cargo run --example gen_data`",
                f.name,
                committed.len(),
                f.text.len()
            );
        }
    }
}

#[test]
fn generator_is_deterministic_and_seeded() {
    assert_eq!(gen::abx().text, gen::abx().text);
    let a = gen::sparse("a.csv", 10, 5, 1).text;
    assert_eq!(a, gen::sparse("a.csv", 10, 5, 1).text);
    assert_ne!(a, gen::sparse("a.csv", 10, 5, 2).text, "another seed draws other data");
}

/// Every file reads with circ's own CSV reader, with the shape and column names its README entry
/// (and the examples that use it) give.
#[test]
fn every_data_file_reads_with_its_documented_shape() {
    for (file, rows, cols, first, last) in [
        ("digits.csv", 1797, 65, "pixel_0_0", "label"),
        ("iris.csv", 150, 5, "sepal_length_cm", "label"),
        ("diabetes.csv", 442, 11, "age", "target"),
        ("breast_cancer.csv", 569, 31, "mean_radius", "label"),
        ("breast_cancer_standardized.csv", 569, 31, "mean_radius", "label"),
        ("abx.csv", 256, 2, "x", "y"),
        ("sparse_100.csv", 500, 101, "x0", "y"),
        ("sparse_1000.csv", 200, 1001, "x0", "y"),
        ("noisy.csv", 1500, 2, "x", "y"),
        ("powers.csv", 512, 3, "x1", "y"),
        ("digits_permuted.csv", 1797, 65, "pixel_0_0", "label"),
    ] {
        let t = read_csv(&data_dir().join(file)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((t.rows, t.columns.len()), (rows, cols), "{file}");
        assert_eq!((t.columns[0].as_str(), t.columns[cols - 1].as_str()), (first, last), "{file}");
    }
}

/// The generated sets hold what their documentation says.
#[test]
fn generated_sets_have_their_stated_properties() {
    let abx = read_csv(&data_dir().join("abx.csv")).unwrap();
    let (x, y) = (abx.column("x").unwrap(), abx.column("y").unwrap());
    assert!(x.iter().zip(y).all(|(x, y)| (y - 0.7 * x).abs() < 1e-12 && x.abs() <= 1.0));

    let powers = read_csv(&data_dir().join("powers.csv")).unwrap();
    for r in 0..powers.rows {
        let (x1, x2, y) = (powers.get(r, 0), powers.get(r, 1), powers.get(r, 2));
        assert!((0.5..=2.0).contains(&x1) && (0.5..=2.0).contains(&x2));
        assert!((y - 2.0 * x1.powf(1.5) / x2.sqrt()).abs() < 1e-8, "row {r}");
    }

    // Standardized: every feature has mean 0 and population standard deviation 1; labels kept.
    let s = read_csv(&data_dir().join("breast_cancer_standardized.csv")).unwrap();
    let raw = read_csv(&data_dir().join("breast_cancer.csv")).unwrap();
    for c in 0..30 {
        let col = s.column_at(c);
        let mean = col.iter().sum::<f64>() / col.len() as f64;
        let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / col.len() as f64;
        assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12, "column {c}: mean {mean}, var {var}");
    }
    assert_eq!(s.column("label").unwrap(), raw.column("label").unwrap());

    // The sparse targets: inputs ±1, y = x·w* + noise, so the mean square of y is
    // ‖w*‖² + 0.1² = 0.25 + 0.09 + 0.04 + 0.01 = 0.39, up to sampling.
    for (file, n) in [("sparse_100.csv", 100), ("sparse_1000.csv", 1000)] {
        let t = read_csv(&data_dir().join(file)).unwrap();
        assert!(t.data()[..n * t.rows].iter().all(|v| *v == 1.0 || *v == -1.0), "{file}");
        let y = t.column("y").unwrap();
        let var = y.iter().map(|v| v * v).sum::<f64>() / y.len() as f64;
        assert!((var - 0.39).abs() < 0.1, "{file}: mean square of y {var}");
    }
}

/// The repository stands alone: no file it ships names a data folder outside it.
#[test]
fn nothing_reads_data_from_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let needle = ["..", "/shared"].concat();
    let mut found = Vec::new();
    let mut stack: Vec<PathBuf> =
        ["README.md", "ARCHITECTURE.md", "docs", "examples", "tests", "src", "runtime", "benches", "data", "stdlib"]
            .iter()
            .map(|p| root.join(p))
            .collect();
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        } else if let Ok(text) = std::fs::read_to_string(&p) {
            for (k, line) in text.lines().enumerate() {
                if line.contains(&needle) {
                    found.push(format!("{}:{}: {line}", p.strip_prefix(root).unwrap().display(), k + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "files that read outside the repository:\n{}", found.join("\n"));
}

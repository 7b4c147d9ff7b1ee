//! The reader fuzz targets' checks (`fuzz/readers.rs`) over the committed corpus in
//! `fuzz/seeds/<reader>/`, so that CI runs them without cargo-fuzz: every file must be read
//! without a panic, files named `ok_*` must be read and files named `bad_*` refused. A crash the
//! fuzzer finds belongs here too, minimized, as a `bad_*` (or `ok_*`) file.

#[path = "../../fuzz/readers.rs"]
mod readers;

use std::path::PathBuf;

fn corpus(reader: &str, check: fn(&[u8]) -> bool) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds").join(reader);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let (mut ok, mut bad) = (0, 0);
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(file).unwrap();
        let read = std::panic::catch_unwind(|| check(&bytes)).unwrap_or_else(|_| panic!("{reader}: {name} panicked"));
        if name.starts_with("ok_") {
            assert!(read, "{reader}: {name} should be read");
            ok += 1;
        } else if name.starts_with("bad_") {
            assert!(!read, "{reader}: {name} should be refused");
            bad += 1;
        }
    }
    assert!(ok >= 3 && bad >= 5, "{reader}: the corpus in {} is too small ({ok} ok, {bad} bad)", dir.display());
}

#[test]
fn safetensors_corpus() {
    corpus("safetensors", readers::safetensors);
}

#[test]
fn npy_corpus() {
    corpus("npy", readers::npy);
}

#[test]
fn csv_corpus() {
    corpus("csv", readers::csv);
}

//! The checks the reader fuzz targets run on each input, shared with `runtime/tests/fuzz_corpus.rs`
//! (which runs them over the committed corpus in `fuzz/seeds/`, so CI exercises them without
//! cargo-fuzz). A reader must return `Ok` or `Err` for any bytes, never panic, hang or allocate
//! beyond what the input can justify; what it returns must be consistent.
//!
//! Each function returns whether the input was read (`Ok`).

// Each fuzz target uses one of these functions.
#![allow(dead_code)]

use circ_runtime::files::{csv, npy, safetensors};

/// safetensors: every tensor holds as many values as its shape says, and writing what was read
/// and reading it again gives the same tensors (bit for bit) and metadata.
pub fn safetensors(data: &[u8]) -> bool {
    let Ok((tensors, meta)) =
        safetensors::parse("fuzz.safetensors", data).map_err(|e| assert!(!e.to_string().is_empty()))
    else {
        return false;
    };
    for t in &tensors {
        assert_eq!(t.values.len(), t.shape.iter().product::<usize>(), "`{}`: values and shape disagree", t.name);
    }
    let bytes = safetensors::serialize("again", &tensors, safetensors::DType::F64, &meta)
        .expect("what was read can be written");
    let (again, meta2) = safetensors::parse("again", &bytes).expect("what was written can be read");
    assert_eq!(meta, meta2);
    assert_eq!(tensors.len(), again.len());
    for t in &tensors {
        let u = safetensors::find(&again, &t.name).expect("every tensor is written back");
        assert_eq!(t.shape, u.shape);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&t.values), bits(&u.values), "`{}` changed on a round trip", t.name);
    }
    true
}

/// `.npy`: as many values as the shape says.
pub fn npy(data: &[u8]) -> bool {
    match npy::parse_npy("fuzz.npy", data) {
        Ok(a) => {
            assert_eq!(a.values.len(), a.shape.iter().product::<usize>(), "values and shape disagree");
            true
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            false
        }
    }
}

/// CSV: a rectangular table whose every value is where `get` says; an error names the file.
pub fn csv(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false; // the reader refuses text that is not UTF-8 before parsing
    };
    match csv::parse_csv("fuzz.csv", text) {
        Ok(t) => {
            assert_eq!(t.data().len(), t.ncols() * t.rows, "the table is not rectangular");
            for c in 0..t.ncols() {
                assert_eq!(t.column_at(c).len(), t.rows);
                if t.rows > 0 {
                    let last = t.get(t.rows - 1, c);
                    assert_eq!(last.to_bits(), t.column_at(c)[t.rows - 1].to_bits());
                }
            }
            true
        }
        Err(e) => {
            assert!(e.to_string().contains("fuzz.csv"), "the error does not name the file: {e}");
            false
        }
    }
}

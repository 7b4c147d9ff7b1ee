//! Arbitrary bytes through the csv reader of `circ-runtime`; the checks are in `fuzz/readers.rs`
//! (shared with `runtime/tests/fuzz_corpus.rs`). Any panic, timeout or out-of-memory is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../readers.rs"]
mod readers;

fuzz_target!(|data: &[u8]| {
    readers::csv(data);
});

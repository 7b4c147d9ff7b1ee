//! Arbitrary bytes, read as lossy UTF-8, through the whole front end: parse, load imports,
//! check, render the diagnostics (as the CLI does) and print the model signatures. Any panic,
//! stack overflow, timeout (`-timeout=`) or out-of-memory is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // A folder that does not exist: imports resolve to the standard library only.
    let checked = circ::driver::check_source("/nonexistent-circ-fuzz/fuzz.circ", &text);
    // Labels must lie in their file on character boundaries (the renderer panics otherwise).
    let files: Vec<&str> = checked.program.sources.files().map(|(_, f)| f.text.as_str()).collect();
    for d in &checked.diagnostics {
        for l in &d.labels {
            let t = files[l.span.file.0 as usize];
            let (s, e) = (l.span.start as usize, l.span.end as usize);
            assert!(s <= e && e <= t.len(), "[{}] label {s}..{e} outside its file", d.code);
            assert!(t.is_char_boundary(s) && t.is_char_boundary(e), "[{}] label {s}..{e} splits a character", d.code);
        }
    }
    // Rendering is linear in the file per diagnostic: render a few, not thousands.
    for d in checked.diagnostics.iter().take(8) {
        let _ = d.render(&checked.program.sources, data.len() % 2 == 0);
    }
    if !checked.has_errors() {
        let _ = checked.signatures();
    }
});

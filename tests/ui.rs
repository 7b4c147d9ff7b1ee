//! UI tests, in the manner of rustc's: every `.circ` file under `tests/ui/` is checked and what the
//! user would see is snapshotted with insta.
//!
//! - `tests/ui/*.circ` are invalid programs with one mistake each; the first line is a `# ` comment
//!   saying what is wrong. Their rendered diagnostics go to `tests/ui/snapshots/<name>.snap`. Files
//!   named `warning_*.circ` must produce a warning and no error; all others at least one error.
//!   Files whose name starts with `_` are helper modules imported by other tests, not tests.
//! - `tests/ui/ok/*.circ` are valid programs; their signatures (`circ check -v`) go to
//!   `tests/ui/snapshots/ok/<name>.snap`.
//! - `examples/*.circ` must be valid too; their signatures go to `tests/ui/snapshots/examples/`.
//! - Every diagnostic code that appears in `src/` must appear in at least one UI snapshot, so a
//!   new diagnostic cannot land without a test that shows it.
//!
//! Bless (create or update) snapshots with `cargo insta test --accept --test ui`, or with
//! `INSTA_UPDATE=always cargo test --test ui`; then review the diff of `tests/ui/snapshots/`.

use circ::driver::{check_bytes, Checked};
use std::collections::BTreeSet;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The `.circ` files directly in `dir` (relative to the crate root), sorted, helpers excluded.
fn circ_files(dir: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "circ"))
        .filter(|p| !stem(p).starts_with('_'))
        .collect();
    files.sort();
    files
}

fn stem(path: &Path) -> String {
    path.file_stem().expect("a file name").to_string_lossy().into_owned()
}

/// The path as the tests name it: relative to the crate root, with `/`, the same on every machine.
fn relative(path: &Path) -> String {
    path.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Checks a file the way `circ check` does, naming it by its relative path.
fn check(path: &Path) -> (String, Checked) {
    // Bytes, not text: a file that is not UTF-8 is a test of its own diagnostic (E0107).
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let name = relative(path);
    let checked = check_bytes(&name, bytes);
    (text, checked)
}

/// Rendered diagnostics with machine-specific absolute paths replaced by `$ROOT`.
fn render(checked: &Checked) -> String {
    let text = checked.render(false);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    text.replace(&format!("{}/", root.display()), "$ROOT/")
}

/// Runs `f` on every file, collecting failures so that one run reports (and blesses) them all.
fn for_each(files: &[PathBuf], mut f: impl FnMut(&Path)) {
    let mut failures = Vec::new();
    for path in files {
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| f(path))) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {}", path.display(), msg.replace('\n', "\n    ")));
        }
    }
    assert!(failures.is_empty(), "{} file(s) failed:\n  {}", failures.len(), failures.join("\n  "));
}

macro_rules! snapshot {
    ($dir:expr, $path:expr, $description:expr, $value:expr) => {
        insta::with_settings!({
            snapshot_path => $dir,
            prepend_module_to_snapshot => false,
            omit_expression => true,
            input_file => $path,
            description => $description,
        }, {
            insta::assert_snapshot!(stem($path), $value);
        })
    };
}

/// Invalid programs: at least one error (a warning for `warning_*`), rendered and snapshotted.
#[test]
fn ui_errors() {
    let files = circ_files("tests/ui");
    assert!(files.len() >= 45, "expected at least 45 UI tests, found {}", files.len());
    for_each(&files, |path| {
        let (text, checked) = check(path);
        let first = text.lines().next().unwrap_or("");
        assert!(first.starts_with("# "), "the first line must be a `# ` comment saying what is wrong");
        let rendered = render(&checked);
        let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
        if stem(path).starts_with("warning_") {
            assert_eq!(errors, 0, "expected no error, got:\n{rendered}");
            assert!(!checked.diagnostics.is_empty(), "expected a warning, got nothing");
        } else {
            assert!(errors > 0, "expected an error, got:\n{rendered}");
        }
        snapshot!("ui/snapshots", path, first.trim_start_matches("# "), rendered);
    });
}

/// Valid programs: no errors, no warnings; their signatures are snapshotted.
#[test]
fn ui_ok() {
    let files = circ_files("tests/ui/ok");
    assert!(files.len() >= 8, "expected at least 8 valid programs, found {}", files.len());
    for_each(&files, |path| check_valid(path, "ui/snapshots/ok"));
}

/// The examples must check cleanly; their signatures are snapshotted. An empty folder is fine.
#[test]
fn examples() {
    let files = circ_files("examples");
    for_each(&files, |path| check_valid(path, "ui/snapshots/examples"));
}

fn check_valid(path: &Path, snapshots: &str) {
    let (text, checked) = check(path);
    assert!(checked.diagnostics.is_empty(), "expected no diagnostics, got:\n{}", render(&checked));
    let first = text.lines().next().unwrap_or("");
    snapshot!(snapshots, path, first.trim_start_matches("# "), checked.signatures());
}

/// Every diagnostic code in the compiler's source appears in some UI snapshot.
#[test]
fn every_code_has_a_ui_test() {
    let mut in_src = BTreeSet::new();
    for file in rust_files(Path::new("src")) {
        in_src.extend(codes(&fs::read_to_string(&file).expect("readable source"), "\"", "\""));
    }
    assert!(in_src.len() > 10, "found too few codes in src/: {in_src:?}");
    let mut in_tests = BTreeSet::new();
    for entry in fs::read_dir("tests/ui/snapshots").expect("tests/ui/snapshots exists") {
        let path = entry.expect("readable directory entry").path();
        if path.extension().is_some_and(|e| e == "snap") {
            in_tests.extend(codes(&fs::read_to_string(&path).expect("readable snapshot"), "[", "]"));
        }
    }
    let missing: Vec<&String> = in_src.difference(&in_tests).collect();
    assert!(
        missing.is_empty(),
        "diagnostic codes without a UI test (add a tests/ui/*.circ that produces each): {missing:?}"
    );
}

/// Snapshots whose test file is gone are reported, not silently kept.
#[test]
fn no_orphan_snapshots() {
    let dirs = [
        ("tests/ui/snapshots", "tests/ui"),
        ("tests/ui/snapshots/ok", "tests/ui/ok"),
        ("tests/ui/snapshots/examples", "examples"),
    ];
    let mut orphans = Vec::new();
    for (snaps, inputs) in dirs {
        let Ok(entries) = fs::read_dir(snaps) else { continue };
        for entry in entries {
            let path = entry.expect("readable directory entry").path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            let Some(stem) = name.strip_suffix(".snap") else { continue };
            if !Path::new(inputs).join(format!("{stem}.circ")).is_file() {
                orphans.push(path.display().to_string());
            }
        }
    }
    assert!(orphans.is_empty(), "snapshots without a .circ file (delete them): {orphans:?}");
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).expect("readable directory") {
        let path = entry.expect("readable directory entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Codes such as `E0301` or `W0001` written between `open` and `close`.
fn codes(text: &str, open: &str, close: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices(open) {
        let rest = &text[i + open.len()..];
        let b = rest.as_bytes();
        if b.len() > 5
            && (b[0] == b'E' || b[0] == b'W')
            && b[1..5].iter().all(u8::is_ascii_digit)
            && rest[5..].starts_with(close)
        {
            out.insert(rest[..5].to_string());
        }
    }
    out
}

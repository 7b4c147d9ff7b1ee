//! Snapshots of every example's tensor graph, before and after the optimization passes, with the
//! fusion groups (the same text `circ graph --passes` prints). Review changes; never accept blindly.

use circ::driver;
use std::path::Path;

#[test]
fn example_graphs_before_and_after_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "circ"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "expected the examples of the brief");
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let checked = driver::check_source(&format!("examples/{name}.circ"), &text);
        assert!(!checked.has_errors(), "{}", checked.render(false));
        let mut report = String::new();
        for (model, mut g) in checked.models.iter().zip(driver::lower(&checked, 0)) {
            circ::ir::verify::verify(&g).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            report.push_str(&format!("graph {}\n", model.name));
            report.push_str(&driver::optimize_report(&mut g, &checked.program.sources));
        }
        insta::with_settings!({ snapshot_path => "snapshots/graph", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(name, report);
        });
    }
}

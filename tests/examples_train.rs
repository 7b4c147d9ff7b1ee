//! Every example trains from the repository's own data with the command its header comment gives:
//! each `#   circ train examples/X.circ --data data/Y.csv ...` line is parsed and run by the
//! `circ` binary from the repository root, as a user would paste it (with `--epochs` lowered
//! where a full run would slow the suite), and its final metrics are checked against what the
//! example should reach.

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The `circ train` command lines of an example's header comment (the comment lines before the
/// first line of code), without the leading `circ`, split into arguments like a shell would
/// (double quotes group).
fn header_commands(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .take_while(|l| l.starts_with('#') || l.trim().is_empty())
        .filter_map(|l| l.trim_start_matches('#').trim().strip_prefix("circ train "))
        .map(|rest| {
            let mut args = vec!["train".to_string()];
            args.extend(split_args(rest));
            args
        })
        .collect()
}

fn split_args(s: &str) -> Vec<String> {
    let (mut args, mut cur, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    args.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quote in `{s}`");
    if any {
        args.push(cur);
    }
    args
}

/// A number field of the final JSON line (`null` is `None`).
fn field(json: &str, key: &str) -> Option<f64> {
    let start = json.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("no `{key}` in {json}")) + key.len() + 3;
    let rest = &json[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Epochs to run (None: the example's own) and a check of the final metrics line.
type Check = fn(&str);

fn plan(example: &str) -> (Option<u64>, Check) {
    // Every example runs its own epochs.
    // `train_nll` and `valid_nll` are per example; a normal likelihood of σ = 1 has the floor
    // ½·log 2π = 0.918939 (a perfect fit).
    match example {
        // y = 0.7·x exactly: the fit reaches the floor (it starts at 0.998, a·b = 0.01).
        "abx" => (None, |j| {
            let nll = field(j, "train_nll").unwrap();
            assert!((nll - 0.918939).abs() < 1e-5, "abx: train nll {nll}");
        }),
        // The closed-form ridge solution's residuals give 1627.99 (tests/training.rs checks the
        // weights themselves); starting from w = 0, b = 0 the nll is 14 538.
        "ridge" => (None, |j| {
            let nll = field(j, "train_nll").unwrap();
            assert!((nll - 1627.99).abs() < 0.5, "ridge: train nll {nll}");
        }),
        "mlp_digits" => (None, |j| {
            let acc = field(j, "valid_accuracy").unwrap();
            assert!(acc >= 0.97, "mlp_digits: held-out accuracy {acc}");
        }),
        // Task A of E9 alone (20 epochs of adam, lr 1e-2): 0.972 held out at seed 0.
        "forgetting" => (None, |j| {
            let acc = field(j, "valid_accuracy").unwrap();
            assert!(acc >= 0.95, "forgetting, task A: held-out accuracy {acc}");
        }),
        "bayes" => (None, |j| {
            let acc = field(j, "valid_accuracy").unwrap();
            assert!(acc > 0.9, "bayes on iris: held-out accuracy {acc}");
        }),
        "logistic" => (None, |j| {
            let acc = field(j, "train_accuracy").unwrap();
            assert!(acc > 0.98, "logistic: train accuracy {acc}");
        }),
        // y is exact and σ = 0.01: a perfect fit gives log 0.01 + 0.918939 = −3.686.
        "multiplicative" => (None, |j| {
            let nll = field(j, "train_nll").unwrap();
            assert!(nll < -3.6, "multiplicative: train nll {nll}");
        }),
        // Noise of sd 0.1 on y: the floor plus ½·0.01 = 0.924, a little less where it fits noise.
        "egd" | "e2_sparse" => (None, |j| {
            let nll = field(j, "train_nll").unwrap();
            assert!(nll < 0.93, "sparse target: train nll {nll} (it starts near 1.1)");
        }),
        // Learned σ: below what the best constant σ allows (1.37 on this noise: σ² = E(0.1 + 0.5·|x|)² = 0.91).
        "hetero" => (None, |j| {
            let nll = field(j, "valid_nll").unwrap();
            assert!(nll < 1.2, "hetero: held-out nll {nll}");
        }),
        // Reconstruction from 10 unrolled steps keeping 10 atoms: from 1259 after the first epoch
        // to 334 after 10 and 222.5 after all 50 (E7 checks the codes and the error themselves).
        "ista" => (None, |j| {
            let nll = field(j, "train_nll").unwrap();
            assert!(nll < 240.0, "ista: train nll {nll}");
        }),
        other => panic!("examples/{other}.circ is new: give it a plan in tests/examples_train.rs"),
    }
}

/// README's code snippet is `examples/mlp_digits.circ` (the file from `import nn` on), so the
/// accuracy quoted beside it is that example's.
#[test]
fn readme_snippet_is_the_digits_example() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let start = readme.find("```circ\n").expect("README has a ```circ snippet") + "```circ\n".len();
    let snippet = &readme[start..start + readme[start..].find("```").unwrap()];
    let example = std::fs::read_to_string(Path::new(ROOT).join("examples/mlp_digits.circ")).unwrap();
    let body = &example[example.find("import nn").expect("mlp_digits.circ imports nn")..];
    assert_eq!(snippet, body, "README's snippet differs from examples/mlp_digits.circ");
}

#[test]
fn header_lines_are_parsed_like_a_shell() {
    let cmds = header_commands(
        "# text\n#   circ train examples/a.circ --data data/a.csv\n#   circ train examples/a.circ --data data/a.csv --optimizer \"sgd(lr = 5e-6)\"\nmodel m {\n# circ train not/this\n}\n",
    );
    assert_eq!(cmds.len(), 2);
    assert_eq!(cmds[0], ["train", "examples/a.circ", "--data", "data/a.csv"]);
    assert_eq!(cmds[1][4..], ["--optimizer", "sgd(lr = 5e-6)"]);
}

#[test]
fn every_example_trains_with_its_header_command() {
    let mut names: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".circ"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "examples: {names:?}");
    for name in names {
        let text = std::fs::read_to_string(Path::new(ROOT).join("examples").join(&name)).unwrap();
        let stem = name.trim_end_matches(".circ");
        let cmds = header_commands(&text);
        assert!(!cmds.is_empty(), "examples/{name} has no `#   circ train examples/{name} --data data/...` line");
        let (epochs, check) = plan(stem);
        for args in cmds {
            assert_eq!(args[1], format!("examples/{name}"), "examples/{name}: the command trains another file");
            let data = args.iter().position(|a| a == "--data").map(|i| &args[i + 1]);
            let data = data.unwrap_or_else(|| panic!("examples/{name}: `{}` has no --data", args.join(" ")));
            assert!(data.starts_with("data/"), "examples/{name}: `{data}` is not in the repository's data/");
            assert!(Path::new(ROOT).join(data).is_file(), "examples/{name}: {data} does not exist");
            let mut run = args.clone();
            if let Some(e) = epochs {
                run.extend(["--epochs".to_string(), e.to_string()]);
            }
            let start = std::time::Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_circ")).current_dir(ROOT).args(&run).output().unwrap();
            let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "`circ {}` failed:\n{stderr}", run.join(" "));
            let last = stdout.lines().last().unwrap_or_else(|| panic!("`circ {}` printed nothing", run.join(" ")));
            println!("circ {} ({:.2?}): {last}", run.join(" "), start.elapsed());
            check(last);
        }
    }
}

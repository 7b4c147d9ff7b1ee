//! Shared helpers of the training tests: loading models, building and running trainers through
//! the library (as `circ train` wires it), generated data, and small f64 linear algebra for the
//! independent reference solutions.

#![allow(dead_code)]

use circ::backend::BackendKind;
use circ::driver::{self, Checked};
use circ::interp::HostTensor;
use circ::ir::{Graph, NodeId};
use circ::train::run::{self, EpochMetrics, Settings, TrainError, Trainer};
use circ::train::step::{self, StepGraph};
use circ_runtime::files::csv::Table;
use std::path::{Path, PathBuf};

/// The repository's data folder (`data/`, described by data/README.md).
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

pub fn example_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name)
}

/// Checks `examples/<name>`; panics with the rendered diagnostics on any error.
pub fn example(name: &str) -> Checked {
    let checked =
        driver::check_file(&example_path(name)).unwrap_or_else(|e| panic!("cannot read examples/{name}: {e}"));
    assert!(!checked.has_errors(), "examples/{name} does not check:\n{}", checked.render(false));
    assert_eq!(checked.models.len(), 1, "examples/{name} should define one model");
    checked
}

/// Checks source text as a file called `name`; panics on any error.
pub fn source(name: &str, text: &str) -> Checked {
    let checked = driver::check_source(name, text);
    assert!(!checked.has_errors(), "{name} does not check:\n{}", checked.render(false));
    assert_eq!(checked.models.len(), 1, "{name} should define one model");
    checked
}

pub fn read_table(file: &str) -> Table {
    let path = data_dir().join(file);
    circ_runtime::files::csv::read_csv(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub fn parse_table(name: &str, text: &str) -> Table {
    circ_runtime::files::csv::parse_csv(name, text).unwrap_or_else(|e| panic!("cannot parse {name}: {e}"))
}

/// A table as CSV text (the header and every row; values written so they read back exactly).
pub fn csv_text(columns: &[String], rows: &[Vec<f64>]) -> String {
    let mut s = columns.join(",");
    s.push('\n');
    for r in rows {
        let fields: Vec<String> = r.iter().map(|v| format!("{v:?}")).collect();
        s.push_str(&fields.join(","));
        s.push('\n');
    }
    s
}

/// Rows of a table, each a `Vec` of its values in column order.
pub fn table_rows(t: &Table) -> Vec<Vec<f64>> {
    (0..t.rows).map(|r| (0..t.ncols()).map(|c| t.get(r, c)).collect()).collect()
}

/// The training of one model as `circ train` sets it up: settings from the model's `train` block
/// (unless overridden), the default rule from its `optimizer` or `adam(lr = 1e-3)`, the step and
/// evaluation graphs, and a describer of nodes that names their source line.
pub struct Setup<'c> {
    pub checked: &'c Checked,
    pub step: StepGraph,
    pub eval: Graph,
    pub settings: Settings,
    /// What runs the steps: the reference interpreter unless `on` says otherwise.
    pub backend: BackendKind,
}

impl<'c> Setup<'c> {
    /// `optimizer` replaces the model's default rule (like `--optimizer`); `tweak` adjusts the
    /// settings (like `--epochs`, `--batch`).
    pub fn new(checked: &'c Checked, optimizer: Option<&str>, tweak: impl FnOnce(&mut Settings)) -> Setup<'c> {
        let model = &checked.models[0];
        let t = &model.train;
        let default = match (optimizer, &t.optimizer) {
            (None, Some(rule)) => rule.clone(),
            (text, _) => driver::parse_update_rule(text.unwrap_or("adam(lr = 1e-3)")).expect("an update rule"),
        };
        let mut settings = Settings {
            epochs: t.epochs.unwrap_or(10),
            batch: t.batch,
            valid: t.valid.unwrap_or(0.0),
            seed: t.seed.unwrap_or(0),
        };
        tweak(&mut settings);
        let step = step::build(model, settings.seed, &default);
        let mut eval = circ::ir::lower::lower_with(model, settings.seed, true);
        circ::passes::optimize(&mut eval);
        Setup { checked, step, eval, settings, backend: BackendKind::Interp }
    }

    /// The same setup, training on `backend`.
    pub fn on(mut self, backend: BackendKind) -> Setup<'c> {
        self.backend = backend;
        self
    }

    /// The table bound to the model's data inputs (the check `circ train` makes before training).
    pub fn bind(&self, table: &Table) -> Result<Vec<HostTensor>, String> {
        circ::data::bind_table(&self.step.graph, table)
    }

    pub fn param_names(&self) -> Vec<String> {
        self.step.graph.params.iter().map(|p| p.name.clone()).collect()
    }

    /// A fresh trainer on `data`, split into training and validation rows by the settings.
    pub fn trainer(&self, data: &[HostTensor]) -> Trainer<'_> {
        let (tr, va) = run::split(run::rows(data), self.settings.valid, self.settings.seed);
        let (train, valid) = (run::select(data, &tr), run::select(data, &va));
        let params = circ::ir::init::initial_values(&self.step.graph);
        let sources = &self.checked.program.sources;
        let describe = Box::new(move |id: NodeId, g: &Graph| circ::driver::describe_node(sources, g, id));
        let mut t = Trainer::new(&self.step, self.eval.clone(), train, valid, self.settings.clone(), params, describe);
        t.use_backend(self.backend).unwrap_or_else(|e| panic!("the {} backend: {e}", self.backend.name()));
        t
    }

    /// Binds the table and trains for the configured epochs.
    pub fn train(&self, table: &Table) -> Result<Trained, TrainError> {
        let data = self.bind(table).map_err(TrainError::Data)?;
        let mut trainer = self.trainer(&data);
        let mut metrics = Vec::new();
        while trainer.epoch < self.settings.epochs {
            metrics.push(trainer.run_epoch(&mut |_, _, _| {})?);
        }
        Ok(Trained { names: self.param_names(), params: trainer.params, state: trainer.state, metrics })
    }
}

pub struct Trained {
    pub names: Vec<String>,
    pub params: Vec<Vec<f64>>,
    pub state: Vec<Vec<f64>>,
    pub metrics: Vec<EpochMetrics>,
}

impl Trained {
    pub fn param(&self, name: &str) -> &[f64] {
        let i = self
            .names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no parameter `{name}` in {:?}", self.names));
        &self.params[i]
    }
}

/// SplitMix64, for generated data independent of the crate's own generator.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting (`a` is n×n, row-major rows).
pub fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for k in 0..n {
        let p = (k..n).max_by(|&i, &j| a[i][k].abs().total_cmp(&a[j][k].abs())).unwrap();
        assert!(a[p][k].abs() > 1e-300, "singular system");
        a.swap(k, p);
        b.swap(k, p);
        for i in k + 1..n {
            let f = a[i][k] / a[k][k];
            if f == 0.0 {
                continue;
            }
            let (pivot, rest) = a.split_at_mut(i);
            for (x, p) in rest[0][k..].iter_mut().zip(&pivot[k][k..]) {
                *x -= f * p;
            }
            b[i] -= f * b[k];
        }
    }
    let mut x = vec![0.0; n];
    for k in (0..n).rev() {
        let s: f64 = (k + 1..n).map(|j| a[k][j] * x[j]).sum();
        x[k] = (b[k] - s) / a[k][k];
    }
    x
}

/// ‖a − b‖ / ‖b‖.
pub fn rel_error(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let d: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt();
    let n: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    d / n
}

/// The weights and intercept of a linear model with features `x` (rows), as one vector [w…, b].
pub fn with_intercept(w: &[f64], b: f64) -> Vec<f64> {
    let mut v = w.to_vec();
    v.push(b);
    v
}

/// A fresh folder under the system temp dir, unique to this process and `tag`.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("circ-training-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// A checked model with every parameter's own update rule replaced by `rule` (what a user does
/// by editing the `update` clauses).
pub fn with_rule(mut checked: Checked, rule: &str) -> Checked {
    let r = driver::parse_update_rule(rule).unwrap_or_else(|e| panic!("`{rule}` is not an update rule:\n{e}"));
    for p in &mut checked.models[0].params {
        p.update = Some(r.clone());
    }
    checked
}

/// The 1-based number of the first line of `text` containing `needle`.
pub fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no line contains `{needle}`")) + 1
}

#[path = "../common/opencl.rs"]
mod opencl;
pub use opencl::opencl_available;

/// The eigenvalues of the symmetric matrix `a` (rows), largest first, by cyclic Jacobi
/// rotations (each zeroes one off-diagonal pair; sweeps until the off-diagonal part is
/// negligible).
pub fn symmetric_eigenvalues(mut a: Vec<Vec<f64>>) -> Vec<f64> {
    let n = a.len();
    for _ in 0..100 {
        let off: f64 = (0..n).map(|i| (0..n).filter(|&j| j != i).map(|j| a[i][j] * a[i][j]).sum::<f64>()).sum();
        let all: f64 = a.iter().flatten().map(|v| v * v).sum();
        if off <= 1e-30 * all {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                if a[p][q] == 0.0 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (kp, kq) = (row[p], row[q]);
                    row[p] = c * kp - s * kq;
                    row[q] = s * kp + c * kq;
                }
                let (top, bottom) = a.split_at_mut(q);
                for (x, y) in top[p].iter_mut().zip(bottom[0].iter_mut()) {
                    let (pk, qk) = (*x, *y);
                    *x = c * pk - s * qk;
                    *y = s * pk + c * qk;
                }
            }
        }
    }
    let mut ev: Vec<f64> = (0..n).map(|i| a[i][i]).collect();
    ev.sort_by(|x, y| y.total_cmp(x));
    ev
}

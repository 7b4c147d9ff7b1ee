//! Writes the generated data sets of `data/` (the ones no public source has): each from its own
//! seed, so every run writes the same bytes. Run it from the repository root:
//!
//! ```sh
//! cargo run --example gen_data            # rewrites the generated files of data/
//! ```
//!
//! `tests/data.rs` includes this file and checks that the committed files are what it writes.
//! Values go through a seeded SplitMix64 and are written rounded to a fixed number of decimals,
//! so a last-bit difference of `sin` or `ln` between platforms' math libraries changes nothing.
//! `breast_cancer_standardized.csv` is computed from `data/breast_cancer.csv` with sums and
//! square roots only (both exact IEEE operations), written in shortest round-trip form.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny generator whose every draw is a function of the
/// seed and the draw's index, the same on every platform.
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

    /// Uniform in [0, 1), 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// An integer uniform in lo..=hi.
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    /// Standard normal (Box–Muller, one value per pair of uniforms).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// +1 or −1 with equal probability.
    pub fn sign(&mut self) -> i64 {
        if self.next_u64() >> 63 == 0 {
            1
        } else {
            -1
        }
    }
}

/// One generated file: its name in `data/` and its text.
pub struct File {
    pub name: &'static str,
    pub text: String,
}

/// `abx.csv` (examples/abx.circ, E1): 256 rows of x uniform on the grid k/1000, k in −1000..=1000,
/// and y = 0.7·x exactly (both written exactly: 3 and 4 decimals).
pub fn abx() -> File {
    let mut rng = Rng::new(0xAB5);
    let mut text = String::from("x,y\n");
    for _ in 0..256 {
        let k = rng.int(-1000, 1000);
        let _ = writeln!(text, "{},{}", decimal(k, 3), decimal(7 * k, 4));
    }
    File { name: "abx.csv", text }
}

/// The integer `k` divided by 10^places, written exactly with `places` decimals.
fn decimal(k: i64, places: u32) -> String {
    let scale = 10i64.pow(places);
    let sign = if k < 0 { "-" } else { "" };
    format!("{sign}{}.{:0width$}", k.abs() / scale, k.abs() % scale, width = places as usize)
}

/// A sparse linear target (examples/egd.circ and examples/e2_sparse.circ, E2): `rows` rows of `n`
/// inputs x0 .. x{n−1} of random sign (±1), of which 3 at random positions matter, with weights
/// 0.5, −0.3, 0.2 (‖w*‖₁ = 1), and y = x·w* + 0.1·noise (6 decimals).
pub fn sparse(name: &'static str, n: usize, rows: usize, seed: u64) -> File {
    let mut rng = Rng::new(seed);
    let mut support: Vec<usize> = Vec::new();
    while support.len() < 3 {
        let j = (rng.next_u64() % n as u64) as usize;
        if !support.contains(&j) {
            support.push(j);
        }
    }
    let weights = [0.5, -0.3, 0.2];
    let mut text = (0..n).map(|j| format!("x{j}")).collect::<Vec<_>>().join(",");
    text.push_str(",y\n");
    for _ in 0..rows {
        let x: Vec<i64> = (0..n).map(|_| rng.sign()).collect();
        let clean: f64 = support.iter().zip(weights).map(|(&j, w)| x[j] as f64 * w).sum();
        let y = clean + 0.1 * rng.normal();
        for v in &x {
            let _ = write!(text, "{v},");
        }
        let _ = writeln!(text, "{y:.6}");
    }
    File { name, text }
}

/// `noisy.csv` (examples/hetero.circ, E6): 1500 rows of x uniform in [−3, 3] and
/// y = sin x + (0.1 + 0.5·|x|)·noise: the noise's standard deviation grows from 0.1 at x = 0 to
/// 1.6 at |x| = 3 (6 decimals).
pub fn noisy() -> File {
    let mut rng = Rng::new(0x7015E);
    let mut text = String::from("x,y\n");
    for _ in 0..1500 {
        let x = rng.range(-3.0, 3.0);
        let y = x.sin() + (0.1 + 0.5 * x.abs()) * rng.normal();
        let _ = writeln!(text, "{x:.6},{y:.6}");
    }
    File { name: "noisy.csv", text }
}

/// `powers.csv` (examples/multiplicative.circ, E8): 512 rows of x1, x2 uniform in [0.5, 2]
/// (4 decimals) and y = 2·x1^1.5·x2^−0.5 without noise (8 decimals): the exponents are 1.5 and
/// −0.5, the constant factor 2 (log 2 = 0.693147).
pub fn powers() -> File {
    let mut rng = Rng::new(0xB0B);
    let mut text = String::from("x1,x2,y\n");
    for _ in 0..512 {
        let x1 = rng.int(5000, 20000) as f64 / 1e4;
        let x2 = rng.int(5000, 20000) as f64 / 1e4;
        let y = 2.0 * x1.powf(1.5) * x2.powf(-0.5);
        let _ = writeln!(text, "{x1:.4},{x2:.4},{y:.8}");
    }
    File { name: "powers.csv", text }
}

/// `breast_cancer_standardized.csv` (examples/logistic.circ, E4): `breast_cancer.csv` (its text
/// given) with every feature column (all but the last, `label`) minus its mean and divided by its
/// population standard deviation, as scikit-learn's `StandardScaler` does. Labels stay integers.
pub fn breast_cancer_standardized(raw: &str) -> Result<File, String> {
    let mut lines = raw.lines();
    let header = lines.next().ok_or("breast_cancer.csv is empty")?;
    let ncols = header.split(',').count();
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut labels: Vec<&str> = Vec::new();
    for (k, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != ncols {
            return Err(format!("breast_cancer.csv:{}: {} fields, expected {ncols}", k + 2, fields.len()));
        }
        let values = fields[..ncols - 1]
            .iter()
            .map(|f| f.parse::<f64>().map_err(|_| format!("breast_cancer.csv:{}: `{f}` is not a number", k + 2)))
            .collect::<Result<Vec<f64>, String>>()?;
        rows.push(values);
        labels.push(fields[ncols - 1]);
    }
    let n = rows.len() as f64;
    for c in 0..ncols - 1 {
        let mean = rows.iter().map(|r| r[c]).sum::<f64>() / n;
        let sd = (rows.iter().map(|r| (r[c] - mean).powi(2)).sum::<f64>() / n).sqrt();
        for r in &mut rows {
            r[c] = (r[c] - mean) / sd;
        }
    }
    let mut text = format!("{header}\n");
    for (r, label) in rows.iter().zip(labels) {
        for v in r {
            let _ = write!(text, "{v:?},");
        }
        let _ = writeln!(text, "{label}");
    }
    Ok(File { name: "breast_cancer_standardized.csv", text })
}

/// `digits_permuted.csv` (examples/forgetting.circ, E9, task B): `digits.csv` (its text given)
/// with the 64 pixel columns' values shuffled by one fixed permutation (Fisher–Yates from seed
/// 0xE9): column `pixel_r_c` of the new file holds, in every row, the values of the old column
/// that the permutation sends there. The header, the `label` column and the rows' order are
/// kept, and every field is copied as text, so the file is the same digits in scrambled pixels.
pub fn digits_permuted(raw: &str) -> Result<File, String> {
    let mut lines = raw.lines();
    let header = lines.next().ok_or("digits.csv is empty")?;
    let names: Vec<&str> = header.split(',').collect();
    let pixels: Vec<usize> = (0..names.len()).filter(|&i| names[i].starts_with("pixel_")).collect();
    if pixels.len() != 64 {
        return Err(format!("digits.csv: {} pixel columns, expected 64", pixels.len()));
    }
    let mut perm: Vec<usize> = (0..64).collect();
    let mut rng = Rng::new(0xE9);
    for i in (1..64).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        perm.swap(i, j);
    }
    let mut text = String::from(header);
    text.push('\n');
    for (k, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != names.len() {
            return Err(format!("digits.csv:{}: {} fields, expected {}", k + 2, fields.len(), names.len()));
        }
        let mut out = fields.clone();
        for (to, from) in perm.iter().enumerate() {
            out[pixels[to]] = fields[pixels[*from]];
        }
        text.push_str(&out.join(","));
        text.push('\n');
    }
    Ok(File { name: "digits_permuted.csv", text })
}

/// Every generated file; `data` is the `data/` folder (read for the standardized copy).
pub fn all(data: &Path) -> Result<Vec<File>, String> {
    let raw = std::fs::read_to_string(data.join("breast_cancer.csv"))
        .map_err(|e| format!("cannot read {}: {e}", data.join("breast_cancer.csv").display()))?;
    let digits = std::fs::read_to_string(data.join("digits.csv"))
        .map_err(|e| format!("cannot read {}: {e}", data.join("digits.csv").display()))?;
    Ok(vec![
        abx(),
        sparse("sparse_100.csv", 100, 500, 0xE6D),
        sparse("sparse_1000.csv", 1000, 200, 0xE2),
        noisy(),
        powers(),
        breast_cancer_standardized(&raw)?,
        digits_permuted(&digits)?,
    ])
}

fn main() -> std::process::ExitCode {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let files = match all(&data) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    for f in files {
        let path = data.join(f.name);
        if let Err(e) = std::fs::write(&path, &f.text) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return std::process::ExitCode::FAILURE;
        }
        println!("{} ({} bytes)", path.display(), f.text.len());
    }
    std::process::ExitCode::SUCCESS
}

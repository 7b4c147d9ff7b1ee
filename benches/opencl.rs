//! The OpenCL backend benchmark of issue 11, circ's side (`bench/gpu.sh` runs it on a GPU
//! machine and puts PyTorch and JAX beside it). Prints one markdown table on stdout:
//!
//! - the device (`--device N` or the first GPU, else the first device);
//! - `sgemm N`: `C = A·B`, square, f32, the rendered product kernel alone (launched back to back,
//!   no host transfers), GFLOP/s;
//! - one SGD training step of the MLPs 784-256-256-10 (batch 128) and 4096-4096-4096-10 (batch
//!   1024) as `circ train` runs it: the data set and the parameters kept on the device, the
//!   batch's row numbers written, every kernel, the loss and the metrics read back;
//! - the same step with `newton()` (gradient and bprop2 curvature) over the SGD step;
//! - the time to build each step's program with an empty cache, and from the cache.
//!
//! `cargo bench --bench opencl -- [--quick] [--device N]`: `--quick` uses small sizes (a CPU
//! device such as PoCL).

use circ::backend::opencl::executor::{ClExecutor, ClOptions};
use circ::backend::opencl::matmul;
use circ::check::types::{Dim, Elem};
use circ::interp::HostTensor;
use circ::ir::graph::{DataInfo, Output};
use circ::ir::{Graph, NodeId, Op};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let device = args.iter().position(|a| a == "--device").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok());
    let devices = match circ_runtime::opencl::devices() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    for (i, d) in devices.iter().enumerate() {
        eprintln!("device {i}: {} ({}, {}; {}; driver {})", d.name, d.kind, d.platform, d.version, d.driver);
    }
    // A fresh program cache: the first build of each program is timed cold.
    let cache = std::env::temp_dir().join(format!("circ-bench-cache-{}", std::process::id()));
    std::env::set_var("CIRC_CACHE_DIR", &cache);
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut rows_checked: Vec<String> = Vec::new();

    let sizes: &[usize] = if quick { &[256, 512] } else { &[1024, 2048, 4096, 8192] };
    for &n in sizes {
        let g = product_graph(n);
        let a: Vec<f64> = (0..n * n).map(|i| ((i * 7919) % 1000) as f64 / 1000.0).collect();
        let b: Vec<f64> = (0..n * n).map(|i| ((i * 104729) % 1000) as f64 / 1000.0).collect();
        // The automatic choice at every size; the two tile geometries forced at the second
        // largest (what the choice is made between).
        let mut variants = vec![("", ClOptions::default())];
        if n == sizes[sizes.len().saturating_sub(2)] {
            variants.push((", 64×64 tiles", ClOptions { geometry: Some(matmul::NARROW), ..ClOptions::default() }));
            variants.push((", 128×128 tiles", ClOptions { geometry: Some(matmul::WIDE), ..ClOptions::default() }));
        }
        for (what, options) in variants {
            let mut exec = ClExecutor::with_options(&g, device, options).unwrap_or_else(|e| fail(&e.to_string()));
            if rows.is_empty() {
                rows.push(("device".into(), exec.device_name().to_string()));
            }
            let data = [HostTensor::new(vec![n, n], a.clone()), HostTensor::new(vec![n, n], b.clone())];
            let out = exec.run(&data, &[], &[]).unwrap_or_else(|e| fail(&format!("{e:?}")));
            // The result checked against f64 dot products at scattered entries.
            let c = &out[0].1.data;
            let mut worst = 0.0f64;
            for s in 0..64usize {
                let (i, j) = ((s * 2654435761) % n, (s * 40503 + 7) % n);
                let exact: f64 = (0..n).map(|k| a[i * n + k] * b[k * n + j]).sum();
                worst = worst.max((c[i * n + j] as f64 - exact).abs() / exact.abs().max(1e-30));
            }
            if worst > 1e-3 {
                fail(&format!("sgemm {n}{what}: relative error {worst:.1e} against f64 (wrong result)"));
            }
            let repeats = if n >= 4096 { 5 } else { 20 };
            let mut best = f64::INFINITY;
            for _ in 0..3 {
                best = best.min(exec.time_kernels(repeats).unwrap_or_else(|e| fail(&format!("{e:?}"))));
            }
            let gflops = 2.0 * (n as f64).powi(3) / best / 1e9;
            rows.push((format!("sgemm {n}{what} (GFLOP/s; rel. error {worst:.0e})"), format!("{gflops:.0}")));
        }
    }

    let mlps: &[(&str, &[usize], usize)] = if quick {
        &[("784-256-256-10", &[784, 256, 256, 10], 128)]
    } else {
        &[("784-256-256-10", &[784, 256, 256, 10], 128), ("4096-4096-4096-10", &[4096, 4096, 4096, 10], 1024)]
    };
    for (id, widths, batch) in mlps {
        let text = mlp_source(widths, *batch);
        let mut per_rule = Vec::new();
        for rule in ["sgd(lr = 1e-4)", "newton()"] {
            let step = step_graph(&text, rule);
            let g = &step.graph;
            let cold = Instant::now();
            let mut exec = ClExecutor::new(g, device).unwrap_or_else(|e| fail(&e.to_string()));
            let cold = cold.elapsed();
            let warm = Instant::now();
            drop(ClExecutor::new(g, device).unwrap_or_else(|e| fail(&e.to_string())));
            let warm = warm.elapsed();
            // The data set (8 batches) kept on the device, as `circ train` keeps it; each step
            // gathers its batch from it.
            let (data, params, inputs) = feed(g, 8 * batch);
            if !exec.keep_data(&data, &params).unwrap_or_else(|e| fail(&format!("{e:?}"))) {
                fail("the data set does not fit the device");
            }
            let links = carried(&step);
            let refs: Vec<(&str, NodeId)> = links.iter().map(|(n, l)| (n.as_str(), *l)).collect();
            exec.carry(&refs).unwrap_or_else(|e| fail(&e.to_string()));
            let mut times = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(if quick { 2 } else { 4 });
            while times.len() < 10 || (Instant::now() < deadline && times.len() < 500) {
                if times.len() % 50 == 0 {
                    exec.carry(&refs).unwrap_or_else(|e| fail(&e.to_string()));
                }
                let t = Instant::now();
                let first = (times.len() % 8) * batch;
                let rows: Vec<usize> = (first..first + batch).rev().collect();
                let out = exec.run_rows(&rows, &params, &inputs).unwrap_or_else(|e| fail(&format!("{e:?}")));
                times.push(t.elapsed().as_secs_f64());
                if times.len() == 1 && widths[0] < 1024 {
                    // The first step's loss checked against the reference interpreter in f64.
                    let batch_data = circ::train::run::select(&data, &rows);
                    let exact = circ::interp::run_with::<f64>(g, &batch_data, &params, &inputs)
                        .unwrap_or_else(|e| fail(&format!("{e:?}")));
                    let (want, got) = (exact.loss(), out[0].1.data[0] as f64);
                    let error = (got - want).abs() / want.abs().max(1e-30);
                    if error > 1e-3 {
                        fail(&format!("{id} {rule}: loss {got} on the device, {want} in f64 (wrong result)"));
                    }
                    rows_checked.push(format!("{id} {rule}: loss rel. error {error:.0e} against f64"));
                }
                std::hint::black_box(out);
            }
            times.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let median = times[times.len() / 2];
            let name = rule.split('(').next().unwrap_or(rule);
            rows.push((format!("{id} step, {name}, batch {batch} (µs, median)"), format!("{:.0}", median * 1e6)));
            rows.push((
                format!("{id} {name} step program build (ms): cold / cached"),
                format!("{:.0} / {:.0}", cold.as_secs_f64() * 1e3, warm.as_secs_f64() * 1e3),
            ));
            per_rule.push(median);
        }
        rows.push((format!("{id} bprop2 step / gradient step"), format!("{:.2}", per_rule[1] / per_rule[0])));
    }
    let _ = std::fs::remove_dir_all(&cache);
    for c in &rows_checked {
        eprintln!("checked: {c}");
    }
    println!("| measurement | circ (OpenCL) |");
    println!("|---|--:|");
    for (k, v) in rows {
        println!("| {k} | {v} |");
    }
}

fn fail(m: &str) -> ! {
    eprintln!("error: {m}");
    std::process::exit(1)
}

/// `a @ b` for two `[n, n]` data, the product as the graph's output.
fn product_graph(n: usize) -> Graph {
    let mut g = Graph::default();
    let shape = vec![Dim::Known(n as u64), Dim::Known(n as u64)];
    let mut leaves = Vec::new();
    for name in ["a", "b"] {
        let i = g.data.len();
        g.data.push(DataInfo {
            name: name.into(),
            elem: Elem::Float,
            shape: shape.clone(),
            source: circ::check::checked::DataSource::Columns(vec![]),
        });
        leaves.push(g.push(Op::Data(i), &[], None, None));
    }
    let c = g.push(Op::MatMul, &leaves, None, None);
    g.outputs.push(Output { name: "c".into(), node: c });
    g
}

fn mlp_source(widths: &[usize], batch: usize) -> String {
    let mut s = String::from("import nn\nmodel mlp {\n");
    s.push_str(&format!(
        "    data x: [N, {}] = csv(\"p0\" .. \"p{}\")\n    data label: int[N]\n",
        widths[0],
        widths[0] - 1
    ));
    for (i, w) in widths.windows(2).enumerate() {
        s.push_str(&format!("    let l{i} = nn.dense({}, {})\n", w[0], w[1]));
    }
    let mut h = "x".to_string();
    let layers = widths.len() - 1;
    for i in 0..layers {
        h = if i + 1 < layers { format!("relu(l{i}({h}))") } else { format!("l{i}({h})") };
    }
    s.push_str(&format!("    label ~ categorical(logits = {h})\n"));
    s.push_str(&format!("    train {{ optimizer = sgd(lr = 1e-4), batch = {batch} }}\n}}\n"));
    s
}

fn step_graph(text: &str, rule: &str) -> circ::train::step::StepGraph {
    let checked = circ::driver::check_source("bench.circ", text);
    assert!(!checked.has_errors(), "{}", checked.render(false));
    let rule = circ::driver::parse_update_rule(rule).expect("a rule");
    circ::train::step::build(&checked.models[0], 0, &rule)
}

/// Every parameter and optimizer state carried on the device between steps, as training does.
fn carried(step: &circ::train::step::StepGraph) -> Vec<(String, NodeId)> {
    let g = &step.graph;
    let mut links: Vec<(String, NodeId)> = g
        .params
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((format!("new.{}", p.name), circ::autodiff::param_node(g, i)?)))
        .collect();
    for s in &step.state {
        if let Some(l) = g.node_ids().into_iter().find(|n| g.node(*n).op == Op::Input(s.input)) {
            links.push((s.output.clone(), l));
        }
    }
    links
}

/// Random pixels in [0, 1), labels 0..9, initial parameters, extra inputs at 1 (`batch_scale`,
/// `step`; optimizer state starts at 1, harmless for a timing).
fn feed(g: &Graph, batch: usize) -> (Vec<HostTensor>, Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let mut state = 0x2545f4914f6cdd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let data = g
        .data
        .iter()
        .map(|d| {
            let shape: Vec<usize> =
                d.shape.iter().map(|x| if let Dim::Known(n) = x { *n as usize } else { batch }).collect();
            let count = shape.iter().product();
            let values = match d.elem {
                Elem::Float => (0..count).map(|_| (next() % 1000) as f64 / 1000.0).collect(),
                Elem::Int => (0..count).map(|_| (next() % 10) as f64).collect(),
            };
            HostTensor::new(shape, values)
        })
        .collect();
    let params = circ::ir::init::initial_values(g);
    let inputs = g.inputs.iter().map(|i| vec![1.0; i.shape.iter().product::<u64>() as usize]).collect();
    (data, params, inputs)
}

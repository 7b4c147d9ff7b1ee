//! Checking speed on a generated, realistic 2 000-line program: many circuits (parameters with
//! priors and update rules, instances inside circuits, activation priors), then one model with
//! data, a few hundred instances, `let` chains, `repeat` blocks, observations and a train block.
//!
//! Run: `cargo bench --bench check` (optionally `-- <iterations>`). Prints min / median / max in
//! ms and lines per second for the whole `check_source`, for parsing alone, and for the two
//! stages of `check_source` (loading = parsing the file and its imports, then checking), and
//! whether the < 50 ms target is met. No benchmark framework: `std::time::Instant` only.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The target for checking the 2 000-line program, in milliseconds.
const TARGET_MS: f64 = 50.0;
/// Lines of the generated program (at least; it ends at an item boundary).
const TARGET_LINES: usize = 2_000;
/// Feature width of every layer of the model.
const WIDTH: usize = 16;

/// Builds the program. Circuit kinds rotate so no two consecutive items look alike; the model
/// takes the remaining lines.
fn generate(target_lines: usize) -> String {
    let mut s = String::new();
    s.push_str("# Generated benchmark program: a deep residual network with gates, attention and\n");
    s.push_str("# normalization, several regression heads and a classifier.\n");
    s.push_str("import nn\n");
    s.push_str("import nn as layers\n\n");

    // Circuits: about 30 % of the lines.
    let circuit_lines = target_lines * 3 / 10;
    let mut kinds: Vec<(&str, usize)> = Vec::new(); // (kind, index)
    let mut k = 0;
    while lines(&s) < circuit_lines {
        let kind = ["affine", "block", "gate", "attn", "norm", "mixer"][k % 6];
        match kind {
            "affine" => {
                let lr = 1e-3 * (1 + k % 5) as f64;
                writeln!(
                    s,
                    "# Affine layer {k}: x @ w + b with a scaled normal prior on w.
circuit affine{k}(i: int, o: int)(x: [B, i]) -> [B, o] {{
    param w: [i, o] ~ normal(0, 1 / sqrt(i)) update adam(lr = {lr})
    param b: [o] = 0 ~ flat
    let z = x @ w + b
    return z
}}
"
                )
                .unwrap();
            }
            "block" => {
                // A residual block built from the latest affine circuit and an nn layer.
                let j = last_of(&kinds, "affine");
                writeln!(
                    s,
                    "# Residual block {k}: x + tanh(f(x)) * s, gated by a dense layer.
circuit block{k}(n: int, s: float)(x: [B, n]) -> [B, n] {{
    let f = affine{j}(n, n)
    let g = nn.dense(n, n)
    let h = tanh(f(x)) * s
    h ~ normal(0, {sigma})
    let u = sigmoid(g(x))
    return x + h * u
}}
",
                    sigma = 1 + k % 3
                )
                .unwrap();
            }
            "gate" => {
                writeln!(
                    s,
                    "# Gate {k}: mixes two streams with a learned sigmoid gate.
circuit gate{k}()(x: [B, {w}], y: [B, {w}]) -> [B, {w}] {{
    param wg: [{w2}, {w}] ~ normal(0, 0.1) update sgd(lr = 0.01, momentum = 0.9)
    param bg: [{w}] = 0 ~ normal(0, 1)
    let both = concat(x, y, axis = -1)
    let g = sigmoid(both @ wg + bg)
    return g * x + (1 - g) * y
}}
",
                    w = WIDTH,
                    w2 = 2 * WIDTH
                )
                .unwrap();
            }
            "attn" => {
                writeln!(
                    s,
                    "# Attention-like mixing {k}: a softmax over features weights a value map.
circuit attn{k}(d: int)(x: [B, d]) -> [B, d] {{
    param q: [d, d] ~ normal(0, 1 / sqrt(d)) update adam(lr = 3e-4, beta1 = 0.8)
    param v: [d, d] ~ laplace(0, 0.5)
    let scores = softmax(x @ q / sqrt(d), axis = -1)
    let out = scores * (x @ v)
    return out + x
}}
"
                )
                .unwrap();
            }
            "norm" => {
                writeln!(
                    s,
                    "# Normalization {k}: zero mean, unit variance per example, learned gain.
circuit norm{k}(d: int)(x: [B, d]) -> [B, d] {{
    param gain: [d] = 1 ~ lognormal(0, 1) update egd(lr = 0.01)
    let mu = mean(x, axis = 1, keepdims = 1)
    let c = x - mu
    let var = mean(c * c, axis = 1, keepdims = 1)
    return c / sqrt(var + 1e-5) * gain
}}
"
                )
                .unwrap();
            }
            _ => {
                // Uses the latest attention and normalization circuits, and a repeat.
                let a = last_of(&kinds, "attn");
                let n = last_of(&kinds, "norm");
                writeln!(
                    s,
                    "# Mixer {k}: attention, then two damped refinement steps, then normalization.
circuit mixer{k}(d: int)(x: [B, d]) -> [B, d] {{
    let at = attn{a}(d)
    let nm = norm{n}(d)
    let h = at(x)
    repeat 2 {{
        let h = 0.5 * h + 0.5 * relu(h)
    }}
    return nm(h)
}}
"
                )
                .unwrap();
            }
        }
        kinds.push((kind, k));
        k += 1;
    }

    // The model.
    let heads = 12;
    s.push_str("# The model: stages of circuits, regression heads on every few stages, a classifier.\n");
    s.push_str("model big {\n");
    writeln!(s, "    data x: [N, {WIDTH}] = csv(\"f0\" .. \"f{}\")", WIDTH - 1).unwrap();
    for t in 0..heads {
        writeln!(s, "    data y{t}: [N]").unwrap();
    }
    s.push_str("    data label: int[N]\n");
    s.push_str("    data flag: int[N]\n\n");
    s.push_str("    let h0 = x / 10\n");
    let of = |kind: &str, i: usize| -> usize {
        let all: Vec<usize> = kinds.iter().filter(|(k, _)| *k == kind).map(|(_, i)| *i).collect();
        all[i % all.len()]
    };
    let mut stage = 1;
    let mut head = 0;
    // Leave room for the classifier and the train block.
    while lines(&s) < target_lines - 14 {
        let p = stage - 1;
        let st = stage;
        writeln!(
            s,
            "
    # Stage {st}
    let a{st} = affine{}({WIDTH}, {WIDTH})
    let b{st} = block{}({WIDTH}, 0.5)
    let g{st} = gate{}()
    let m{st} = mixer{}({WIDTH})
    let h{st} = b{st}(a{st}(h{p}))
    let h{st} = g{st}(h{st}, relu(h{p}))
    repeat {} {{
        let h{st} = tanh(h{st}) * 0.9 + h{p} * 0.1
    }}
    let h{st} = m{st}(h{st})",
            of("affine", st),
            of("block", st),
            of("gate", st),
            of("mixer", st),
            1 + st % 3,
        )
        .unwrap();
        if st % 4 == 0 {
            writeln!(s, "    h{st} ~ laplace(0, {})", 1 + st % 2).unwrap();
        }
        if st % 3 == 0 && head < heads {
            let dist = if head % 2 == 0 { "normal" } else { "laplace" };
            writeln!(
                s,
                "    let r{head} = layers.linear({WIDTH}, 1)
    let p{head} = r{head}(h{st})[:, 0]
    y{head} ~ {dist}(p{head}, {})",
                0.5 + head as f64 / 4.0
            )
            .unwrap();
            head += 1;
        }
        stage += 1;
    }
    let last = stage - 1;
    // Heads not placed yet observe the last stage.
    while head < heads {
        writeln!(s, "    let r{head} = layers.linear({WIDTH}, 1)\n    y{head} ~ normal(r{head}(h{last})[:, 0], 1)")
            .unwrap();
        head += 1;
    }
    writeln!(
        s,
        "
    # Classifier and a binary flag.
    let cls = nn.mlp({WIDTH}, 32, 10)
    label ~ categorical(logits = cls(h{last}))
    param wf: [{WIDTH}] ~ normal(0, 1)
    flag ~ bernoulli(logits = h{last} @ wf)

    train {{ optimizer = adam(lr = 1e-3), epochs = 20, batch = 64, valid = 0.2, seed = 7 }}
}}"
    )
    .unwrap();
    s
}

fn last_of(kinds: &[(&str, usize)], kind: &str) -> usize {
    kinds
        .iter()
        .rev()
        .find(|(k, _)| *k == kind)
        .map(|(_, i)| *i)
        .expect("circuit kinds rotate, so each dependency exists before use")
}

fn lines(s: &str) -> usize {
    s.lines().count()
}

struct Stats {
    min: Duration,
    median: Duration,
    max: Duration,
}

fn measure(iterations: usize, mut f: impl FnMut()) -> Stats {
    for _ in 0..(iterations / 5).max(3) {
        f();
    }
    let mut times: Vec<Duration> = (0..iterations)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    Stats { min: times[0], median: times[times.len() / 2], max: times[times.len() - 1] }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(what: &str, st: &Stats, lines: usize) {
    println!(
        "{what:<34} min {:>8.3} ms   median {:>8.3} ms   max {:>8.3} ms   {:>10.0} lines/s (median)",
        ms(st.min),
        ms(st.median),
        ms(st.max),
        lines as f64 / st.median.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a plain number sets the iteration count.
    let iterations: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(30);
    let src = generate(TARGET_LINES);
    let n_lines = lines(&src);
    if let Ok(path) = std::env::var("CIRC_BENCH_DUMP") {
        std::fs::write(&path, &src).expect("write CIRC_BENCH_DUMP");
        println!("program written to {path}");
    }

    // The program must check cleanly, or the benchmark would time an early exit.
    let checked = circ::driver::check_source("bench.circ", &src);
    if checked.has_errors() {
        eprintln!("{}", checked.render(false));
        panic!("the generated benchmark program has errors");
    }
    let model = &checked.models[0];
    let circuits = src.lines().filter(|l| l.starts_with("circuit ")).count();
    println!(
        "program: {n_lines} lines, {} bytes, {circuits} circuits; model `{}`: {} parameters, {} nodes, {} observations, {} activation priors ({} warnings)",
        src.len(),
        model.name,
        model.params.len(),
        model.nodes.len(),
        model.observations.len(),
        model.activation_priors.len(),
        checked.diagnostics.len(),
    );
    println!("{iterations} iterations after warm-up\n");

    let full = measure(iterations, || {
        black_box(circ::driver::check_source("bench.circ", black_box(&src)));
    });
    let parse = measure(iterations, || {
        black_box(circ::front::parser::parse(circ::source::FileId(0), black_box(&src)));
    });
    let load = measure(iterations, || {
        black_box(circ::front::loader::load_source("bench.circ", None, black_box(&src)));
    });
    let (program, _) = circ::front::loader::load_source("bench.circ", None, &src);
    let check = measure(iterations, || {
        black_box(circ::check::check(black_box(&program)));
    });

    report("check_source (whole front end)", &full, n_lines);
    report("  parse only (lexer + parser)", &parse, n_lines);
    report("  load (parse file + imports)", &load, n_lines);
    report("  check (names, shapes, inlining)", &check, n_lines);
    println!();
    let verdict = if ms(full.median) < TARGET_MS { "MET" } else { "MISSED" };
    println!(
        "target: check_source on {n_lines} lines < {TARGET_MS} ms: {verdict} (median {:.3} ms, max {:.3} ms)",
        ms(full.median),
        ms(full.max)
    );
}

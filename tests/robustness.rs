//! No input makes the front end panic or hang.
//!
//! * `random_inputs_never_panic_or_hang`: 100 000+ generated inputs (random bytes, random token
//!   soup, randomly mutated valid programs) through `circ::driver::check_source`, plus rendering
//!   of the diagnostics (what the CLI does with them). Each case runs under `catch_unwind`; a
//!   watchdog fails the test if one case runs longer than [`CASE_LIMIT`].
//! * `deep_*`: pathological nesting, run on a thread with a small stack ([`SMALL_STACK`]) to show
//!   there is headroom, each with a time limit.
//! * `regression_*`: inputs that once panicked, overflowed the stack or hung.
//!
//! Everything is driven by a small seeded PRNG, so failures reproduce. Environment knobs:
//! `CIRC_FUZZ_SEED` (base seed, default fixed), `CIRC_FUZZ_CASES` (number of cases, default
//! 100 000), `CIRC_FUZZ_CASE=<case seed>` (rerun the single case a failure report names).

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

/// Longest one generated case may take (the dev profile is unoptimized).
const CASE_LIMIT: Duration = Duration::from_secs(2);
/// Stack of the threads that run the deep-nesting inputs.
const SMALL_STACK: usize = 2 * 1024 * 1024;
/// Default base seed of the random test.
const DEFAULT_SEED: u64 = 0x00C1_2C00_F022_2024;
/// Default number of generated cases.
const DEFAULT_CASES: u64 = 100_000;
/// Where the checked "file" lives: a folder that does not exist, so imports only find the stdlib.
const FILE_NAME: &str = "/nonexistent-circ-robustness/fuzz.circ";

// ---------------------------------------------------------------------------------------------
// PRNG: SplitMix64 (seeding) feeding xoshiro256** (generation). No dependency, fully reproducible.

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let s = [splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm), splitmix64(&mut sm)];
        Rng { s }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// The seed of case `index` under base seed `base`.
fn case_seed(base: u64, index: u64) -> u64 {
    let mut s = base ^ index.wrapping_mul(0xA076_1D64_78BD_642F);
    splitmix64(&mut s)
}

// ---------------------------------------------------------------------------------------------
// Valid seed programs, covering imports, circuits, repeat, train blocks, priors and observations.

const SEEDS: &[&str] = &[
    // An MLP from the standard library, with a train block.
    r#"import nn

model digits {
    data pixels: [N, 64] = csv("pixel_0_0" .. "pixel_7_7")
    data label: int[N]
    let x = pixels / 16
    let l1 = nn.dense(64, 128)
    let l2 = nn.dense(128, 10)
    let h = relu(l1(x))
    label ~ categorical(logits = l2(h))
    train { optimizer = adam(lr = 1e-3), epochs = 30, batch = 64, valid = 0.2, seed = 0 }
}
"#,
    // Own circuits with static arguments, an instance inside a circuit, priors and `update`.
    r#"import nn as layers

circuit affine(i: int, o: int)(x: [B, i]) -> [B, o] {
    param w: [i, o] ~ normal(0, 1 / sqrt(i)) update adam(lr = 0.01)
    param b: [o] = 0 ~ flat
    return x @ w + b
}

circuit block(n: int, s: float)(x: [B, n]) -> [B, n] {
    let inner = affine(n, n)
    let h = tanh(inner(x)) * s
    h ~ normal(0, 1)
    return x + h
}

model regress {
    data x: [N, 8] = csv("x0" .. "x7")
    data y: [N]
    let b1 = block(8, 0.5)
    let b2 = block(8, 0.5)
    let head = layers.linear(8, 1)
    let out = head(b2(b1(x)))[:, 0]
    y ~ normal(out, 0.1)
    train { optimizer = sgd(lr = 0.01, momentum = 0.9), epochs = 10, batch = 32 }
}
"#,
    // Unrolled iteration with `repeat`, slicing, reductions, activation priors.
    r#"model ista {
    data pixels: [N, 64] = csv("pixel_0_0" .. "pixel_7_7")
    let x = pixels / 16
    param d: [64, 64] ~ normal(0, 0.125)
    let eta = 0.1
    let theta = 0.01
    let h = shrink(x @ transpose(d) * eta, theta)
    repeat 3 {
        let h = shrink(h + (x - h @ d) @ transpose(d) * eta, theta)
    }
    h ~ laplace(0, 1)
    let m = mean(h, axis = [0, 1], keepdims = 0)
    pixels ~ normal(h @ d * 16, 1)
    train { optimizer = adam(lr = 1e-3), epochs = 50, batch = 64, valid = 0.2, seed = 0 }
}
"#,
    // Several data columns, learned scale, softplus, concat, reshape, one_hot, bernoulli.
    r#"import nn

circuit gate()(x: [B, 4], y: [B, 4]) -> [B, 8] {
    return concat(sigmoid(x), y, axis = -1)
}

model hetero {
    data x: [N, 4] = csv("a", "b", "c", "d")
    data y: [N]
    data k: int[N]
    let body = nn.mlp(8, 16, 2)
    let g = gate()
    let z = g(x, exp(x))
    let out = body(z)
    let mu = out[:, 0]
    let sigma = softplus(out[:, 1]) + 1e-3
    y ~ normal(mu, sigma)
    param ones_like_w: [3, 3] = 1 ~ uniform(0, 2) update bayes(decay = 0.01)
    let logits = reshape(one_hot(k, 3), [-1, 3]) @ transpose(ones_like_w)
    k ~ bernoulli(logits = sum(z, axis = 1) - logsumexp(z, axis = -1))
    train { optimizer = newton(lr = 0.5, damping = 1e-3), epochs = 5, batch = 16, seed = 1 }
}
"#,
    // Small scalar model, negative numbers, pow and kmax, lognormal and egd.
    r#"model abx {
    data x: [N]
    data y: [N]
    param a: [] = 100 update newton
    param b: [] = 0.0001 update newton
    param c: [5] = 1 ~ lognormal(0, 1) update egd(lr = 0.05)
    let k = kmax(c, 2)
    let p = pow(a * b, 2) - -1
    y ~ normal(a * b * x + p, 1)
    train { epochs = 100, batch = 64, seed = 0 }
}
"#,
];

/// Tokens of the language (and a few near misses) for token soup and token-level mutations.
#[rustfmt::skip]
const TOKENS: &[&str] = &[
    "import", "as", "circuit", "model", "data", "param", "let", "return", "repeat", "train",
    "update", "int", "float", "nn", "dense", "mlp", "linear", "product", "x", "y", "w", "B", "N",
    "h", "l1", "relu", "exp", "log", "sum", "mean", "concat", "reshape", "transpose", "softmax",
    "one_hot", "kmax", "shrink", "pow", "normal", "laplace", "lognormal", "uniform", "flat",
    "categorical", "bernoulli", "csv", "adam", "sgd", "bayes", "newton", "egd", "epochs", "batch",
    "valid", "seed", "optimizer", "lr", "axis", "keepdims", "logits", "pi", "true", "0", "1", "2",
    "3", "64", "1000", "1001", "-1", "0.5", "1e-3", "1e308", "1e999", "99999999999999999999",
    "9223372036854775807", "\"a\"", "\"x0\"", "\"\"", "\"unterminated", "(", ")", "[", "]", "{",
    "}", ",", ":", ";", "=", "~", "->", "..", ".", "+", "-", "*", "/", "@", "\n", "\n", "\n", " ",
    "#", "# comment\n", "^", "%", "'", "!", "<", "\t", "\r\n", "\0",
    // Multi-byte characters: spans near them must stay on character boundaries.
    "é", "λ", "€", "\u{FEFF}", "\u{1F600}", "x\u{301}", "\u{2028}", "\u{FFFD}",
];

// ---------------------------------------------------------------------------------------------
// Generators.

#[derive(Clone, Copy, Debug)]
enum Kind {
    RandomBytes,
    TokenSoup,
    MutatedSeed,
    MutatedTokens,
}

/// The input of one case, a pure function of its seed.
fn generate(seed: u64) -> (Kind, String) {
    let mut rng = Rng::new(seed);
    match rng.below(10) {
        0 => (Kind::RandomBytes, random_bytes(&mut rng)),
        1 | 2 => (Kind::TokenSoup, token_soup(&mut rng)),
        3..=6 => (Kind::MutatedSeed, mutate_bytes(&mut rng)),
        _ => (Kind::MutatedTokens, mutate_tokens(&mut rng)),
    }
}

fn random_bytes(rng: &mut Rng) -> String {
    let len = rng.range(0, 300);
    let ascii = rng.chance(60);
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            if ascii {
                // Printable ASCII and newlines, which reach further than arbitrary bytes.
                match rng.below(20) {
                    0 => b'\n',
                    _ => rng.range(0x20, 0x7e) as u8,
                }
            } else {
                rng.next_u64() as u8
            }
        })
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn token_soup(rng: &mut Rng) -> String {
    let n = rng.range(1, 120);
    let mut s = String::new();
    // Often start like a real item, so the parser gets past the first token.
    if rng.chance(50) {
        s.push_str(rng.pick(&["model m {\n", "circuit c()(x: [B, 2]) -> [B, 2] {\n", "import nn\n"]));
    }
    for _ in 0..n {
        s.push_str(rng.pick(TOKENS));
        if rng.chance(70) {
            s.push(' ');
        }
    }
    s
}

/// A seed program with random byte-level edits.
fn mutate_bytes(rng: &mut Rng) -> String {
    let mut b: Vec<u8> = rng.pick(SEEDS).as_bytes().to_vec();
    let edits = rng.range(1, 8);
    for _ in 0..edits {
        let len = b.len();
        match rng.below(7) {
            // Delete a range.
            0 if len > 0 => {
                let at = rng.below(len);
                let n = rng.range(1, 16.min(len - at));
                b.drain(at..at + n);
            }
            // Insert a random byte, or a multi-byte character.
            1 => {
                let at = rng.below(len + 1);
                match rng.below(3) {
                    0 => b.insert(at, rng.range(0x20, 0x7e) as u8),
                    1 => b.insert(at, rng.next_u64() as u8),
                    _ => {
                        let c = rng.pick(&["é", "λ", "€", "\u{1F600}", "\u{FEFF}"]);
                        b.splice(at..at, c.bytes());
                    }
                }
            }
            // Insert a token.
            2 => {
                let at = rng.below(len + 1);
                let t = rng.pick(TOKENS).as_bytes().to_vec();
                b.splice(at..at, t);
            }
            // Duplicate a range (possibly several times: deep or long structures).
            3 if len > 0 => {
                let at = rng.below(len);
                let n = rng.range(1, 64.min(len - at));
                let copy = b[at..at + n].to_vec();
                for _ in 0..rng.range(1, 4) {
                    b.splice(at..at, copy.iter().copied());
                }
            }
            // Swap two ranges.
            4 if len > 2 => {
                let n = rng.range(1, 16.min(len / 2));
                let i = rng.below(len - n + 1);
                let j = rng.below(len - n + 1);
                if i + n <= j || j + n <= i {
                    for k in 0..n {
                        b.swap(i + k, j + k);
                    }
                }
            }
            // Overwrite a byte.
            5 if len > 0 => {
                let at = rng.below(len);
                b[at] = rng.next_u64() as u8;
            }
            // Change a digit: numbers drive sizes, counts and indices.
            _ => {
                let digits: Vec<usize> = (0..len).filter(|&i| b[i].is_ascii_digit()).collect();
                if !digits.is_empty() {
                    let at = rng.pick(&digits);
                    b[at] = b"0123456789"[rng.below(10)];
                }
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// Splits source text into rough tokens: words, numbers, strings, single punctuation, newlines;
/// whitespace other than newlines is dropped.
fn rough_tokens(src: &str) -> Vec<String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c == ' ' || c == '\t' {
            i += 1;
            continue;
        } else if c.is_ascii_alphanumeric() || c == '_' {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
                && !(chars[i] == '.' && chars.get(i + 1) == Some(&'.'))
            {
                i += 1;
            }
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' && chars[i] != '\n' {
                i += 1;
            }
            i = (i + 1).min(chars.len());
        } else if c == '-' && chars.get(i + 1) == Some(&'>') || c == '.' && chars.get(i + 1) == Some(&'.') {
            i += 2;
        } else {
            i += 1;
        }
        out.push(chars[start..i].iter().collect());
    }
    out
}

/// A seed program with random token-level edits.
fn mutate_tokens(rng: &mut Rng) -> String {
    let mut toks = rough_tokens(rng.pick(SEEDS));
    let edits = rng.range(1, 6);
    for _ in 0..edits {
        let len = toks.len();
        match rng.below(5) {
            0 if len > 0 => {
                let at = rng.below(len);
                let n = rng.range(1, 4.min(len - at));
                toks.drain(at..at + n);
            }
            1 => {
                let at = rng.below(len + 1);
                let t =
                    if len > 0 && rng.chance(50) { toks[rng.below(len)].clone() } else { rng.pick(TOKENS).to_string() };
                toks.insert(at, t);
            }
            2 if len > 0 => {
                let at = rng.below(len);
                let n = rng.range(1, 12.min(len - at));
                let copy: Vec<String> = toks[at..at + n].to_vec();
                for _ in 0..rng.range(1, 3) {
                    toks.splice(at..at, copy.iter().cloned());
                }
            }
            3 if len > 1 => {
                let i = rng.below(len);
                let j = rng.below(len);
                toks.swap(i, j);
            }
            _ if len > 0 => {
                let at = rng.below(len);
                toks[at] = rng.pick(TOKENS).to_string();
            }
            _ => {}
        }
    }
    let mut s = String::new();
    for t in toks {
        s.push_str(&t);
        if t != "\n" {
            s.push(' ');
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Running one case.

thread_local! {
    /// Set while a case runs: the panic hook then records the message instead of printing it.
    static IN_CASE: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_CASE.with(Cell::get) {
                let msg = match info.payload().downcast_ref::<&str>() {
                    Some(s) => s.to_string(),
                    None => {
                        info.payload().downcast_ref::<String>().cloned().unwrap_or_else(|| "<non-string panic>".into())
                    }
                };
                let loc =
                    info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column())).unwrap_or_default();
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{msg} at {loc}")));
            } else {
                default(info);
            }
        }));
    });
}

/// How much of the diagnostics' rendering a case exercises.
#[derive(Clone, Copy)]
enum Render {
    /// All diagnostics, as the CLI prints them (`color` or not).
    All { color: bool },
    /// The first few only: rendering is most of the cost of a case.
    First(usize),
}

/// What the front end does with a file: check it, render its diagnostics, print signatures.
fn run_front_end(text: &str, render: Render) -> bool {
    let checked = circ::driver::check_source(FILE_NAME, text);
    check_spans(&checked);
    match render {
        Render::All { color } => {
            let rendered = checked.render(color);
            if !checked.diagnostics.is_empty() {
                assert!(!rendered.is_empty(), "diagnostics rendered as nothing");
            }
        }
        Render::First(n) => {
            for d in checked.diagnostics.iter().take(n) {
                let _ = d.render(&checked.program.sources, false);
            }
        }
    }
    if !checked.has_errors() {
        let _ = checked.signatures();
    }
    checked.has_errors()
}

/// Every label must point into its file, on character boundaries: the renderer (ariadne, byte
/// indices) panics on a span that splits a character. Checking this is much cheaper than
/// rendering every diagnostic, so every case checks it.
fn check_spans(checked: &circ::driver::Checked) {
    let files: Vec<&str> = checked.program.sources.files().map(|(_, f)| f.text.as_str()).collect();
    for d in &checked.diagnostics {
        for l in &d.labels {
            let text = files
                .get(l.span.file.0 as usize)
                .unwrap_or_else(|| panic!("[{}] {}: label in unknown file {:?}", d.code, d.message, l.span));
            let (start, end) = (l.span.start as usize, l.span.end as usize);
            assert!(
                start <= end && end <= text.len(),
                "[{}] {}: label {start}..{end} outside its file of {} bytes",
                d.code,
                d.message,
                text.len()
            );
            assert!(
                text.is_char_boundary(start) && text.is_char_boundary(end),
                "[{}] {}: label {start}..{end} splits a character",
                d.code,
                d.message
            );
        }
    }
}

/// Runs one input; `Err(panic message)` if the front end panicked.
fn run_case(text: &str) -> Result<bool, String> {
    run_case_with(text, Render::All { color: false })
}

fn run_case_with(text: &str, render: Render) -> Result<bool, String> {
    install_panic_hook();
    IN_CASE.with(|c| c.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| run_front_end(text, render)));
    IN_CASE.with(|c| c.set(false));
    result.map_err(|_| LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| "<unknown panic>".into()))
}

/// An input shown in a failure report: escaped, and shortened if huge.
fn show_input(text: &str) -> String {
    const MAX: usize = 4000;
    if text.len() <= MAX {
        format!("{text:?}")
    } else {
        let mut cut = MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{:?} … ({} bytes in all)", &text[..cut], text.len())
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

// ---------------------------------------------------------------------------------------------
// The random test.

struct Worker {
    /// Seed of the case running now.
    seed: AtomicU64,
    /// When it started, in ns since `t0`; 0 when idle.
    started_ns: AtomicU64,
    done: AtomicBool,
}

struct Failure {
    seed: u64,
    kind: Kind,
    message: String,
    input: String,
}

#[test]
fn seeds_are_valid_programs() {
    for (i, seed) in SEEDS.iter().enumerate() {
        let checked = circ::driver::check_source(FILE_NAME, seed);
        assert!(
            !checked.has_errors(),
            "seed program {i} no longer checks (update it to the current language):\n{}",
            checked.render(false)
        );
    }
}

#[test]
fn random_inputs_never_panic_or_hang() {
    install_panic_hook();
    if let Some(seed) = env_u64("CIRC_FUZZ_CASE") {
        let (kind, input) = generate(seed);
        eprintln!("case {seed:#x} ({kind:?}): {}", show_input(&input));
        if let Err(msg) = run_case(&input) {
            panic!("case {seed:#x} panicked: {msg}");
        }
        return;
    }
    let base = env_u64("CIRC_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let total = env_u64("CIRC_FUZZ_CASES").unwrap_or(DEFAULT_CASES);
    let threads = thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 16);
    let next = Arc::new(AtomicU64::new(0));
    let failures: Arc<Mutex<Vec<Failure>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let errors_seen = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let workers: Vec<Arc<Worker>> = (0..threads)
        .map(|_| {
            Arc::new(Worker { seed: AtomicU64::new(0), started_ns: AtomicU64::new(0), done: AtomicBool::new(false) })
        })
        .collect();
    let mut handles = Vec::new();
    for w in &workers {
        let (w, next, failures, stop, errors_seen) =
            (w.clone(), next.clone(), failures.clone(), stop.clone(), errors_seen.clone());
        let h = thread::Builder::new()
            .name("fuzz-worker".into())
            // The CLI runs on an 8 MiB main thread; give the workers the same.
            .stack_size(8 * 1024 * 1024)
            .spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let seed = case_seed(base, i);
                    let (kind, input) = generate(seed);
                    w.seed.store(seed, Ordering::SeqCst);
                    w.started_ns.store(t0.elapsed().as_nanos().max(1) as u64, Ordering::SeqCst);
                    let render = match i % 32 {
                        0 => Render::All { color: false },
                        16 => Render::All { color: true },
                        _ => Render::First(1),
                    };
                    let r = run_case_with(&input, render);
                    w.started_ns.store(0, Ordering::SeqCst);
                    match r {
                        Ok(true) => {
                            errors_seen.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(false) => {}
                        Err(message) => {
                            let mut f = failures.lock().unwrap_or_else(|e| e.into_inner());
                            f.push(Failure { seed, kind, message, input });
                            if f.len() >= 20 {
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                }
                w.done.store(true, Ordering::SeqCst);
            })
            .expect("spawn worker");
        handles.push(h);
    }
    // Watchdog: a case that runs too long fails the test with its input (the worker is left
    // running; the test binary exits when the other tests are done).
    loop {
        thread::sleep(Duration::from_millis(20));
        let now = t0.elapsed().as_nanos() as u64;
        for w in &workers {
            let started = w.started_ns.load(Ordering::SeqCst);
            if started != 0 && now.saturating_sub(started) > CASE_LIMIT.as_nanos() as u64 {
                let seed = w.seed.load(Ordering::SeqCst);
                // The started time may belong to a newer case than the seed read; recheck.
                if w.started_ns.load(Ordering::SeqCst) != started {
                    continue;
                }
                stop.store(true, Ordering::SeqCst);
                let (kind, input) = generate(seed);
                panic!(
                    "case {seed:#x} ({kind:?}) ran longer than {CASE_LIMIT:?} (hang or slow path).\n\
                     rerun: CIRC_FUZZ_CASE={seed:#x} cargo test --test robustness random_inputs\n\
                     input: {}",
                    show_input(&input)
                );
            }
        }
        if workers.iter().all(|w| w.done.load(Ordering::SeqCst)) {
            break;
        }
    }
    for h in handles {
        h.join().expect("worker thread");
    }
    let ran = next.load(Ordering::Relaxed).min(total);
    let elapsed = t0.elapsed();
    eprintln!(
        "robustness: {ran} cases on {threads} threads in {:.1} s ({} with errors), base seed {base:#x}",
        elapsed.as_secs_f64(),
        errors_seen.load(Ordering::Relaxed)
    );
    let failures = failures.lock().unwrap_or_else(|e| e.into_inner());
    if !failures.is_empty() {
        let mut report = format!("{} of {ran} cases panicked:\n", failures.len());
        for f in failures.iter().take(10) {
            report.push_str(&format!(
                "\n- case {:#x} ({:?}): {}\n  rerun: CIRC_FUZZ_CASE={:#x} cargo test --test robustness random_inputs\n  input: {}\n",
                f.seed,
                f.kind,
                f.message,
                f.seed,
                show_input(&f.input)
            ));
        }
        panic!("{report}");
    }
}

#[test]
fn generators_are_deterministic() {
    for i in 0..200 {
        let s = case_seed(DEFAULT_SEED, i);
        assert_eq!(generate(s).1, generate(s).1);
    }
}

// ---------------------------------------------------------------------------------------------
// Deep nesting and long inputs, on a small stack with a time limit.

/// Runs the front end on `input` in a thread with a `stack`-byte stack, rendering the first few
/// diagnostics. Fails if it panics, overflows the stack (that aborts the test binary), or takes
/// longer than `limit`. Returns whether the input had errors.
fn run_guarded(what: &str, input: String, stack: usize, limit: Duration) -> bool {
    run_guarded_with(what, input, stack, limit, Render::First(5))
}

fn run_guarded_with(what: &str, input: String, stack: usize, limit: Duration, render: Render) -> bool {
    install_panic_hook();
    let (tx, rx) = mpsc::channel();
    let shown = show_input(&input);
    let start = Instant::now();
    thread::Builder::new()
        .name(format!("deep: {what}"))
        .stack_size(stack)
        .spawn(move || {
            let r = run_case_with(&input, render);
            let _ = tx.send(r);
        })
        .expect("spawn");
    match rx.recv_timeout(limit) {
        Ok(Ok(has_errors)) => {
            eprintln!("{what}: {:?}", start.elapsed());
            has_errors
        }
        Ok(Err(msg)) => panic!("{what}: the front end panicked: {msg}\ninput: {shown}"),
        Err(_) => panic!("{what}: no result within {limit:?} (hang or slow path)\ninput: {shown}"),
    }
}

fn deep(what: &str, input: String) {
    let has_errors = run_guarded(what, input, SMALL_STACK, CASE_LIMIT);
    assert!(has_errors, "{what}: expected an error diagnostic");
}

fn legal(what: &str, input: String) {
    let has_errors = run_guarded(what, input, SMALL_STACK, CASE_LIMIT);
    assert!(!has_errors, "{what}: expected no error");
}

fn in_model(body: &str) -> String {
    format!("model m {{\n    param w: [] = 1\n    {body}\n}}\n")
}

const N: usize = 100_000;

#[test]
fn deep_open_parens() {
    deep("100 000 `(`", "(".repeat(N));
    deep("100 000 `(` in a let", in_model(&format!("let x = {}", "(".repeat(N))));
    deep("100 000 balanced parens", in_model(&format!("let x = {}w{}", "(".repeat(N), ")".repeat(N))));
}

#[test]
fn deep_open_brackets() {
    deep("100 000 `[`", "[".repeat(N));
    deep("100 000 `[` in a let", in_model(&format!("let x = {}", "[".repeat(N))));
    deep("100 000 `{`", "{".repeat(N));
    deep("model with 100 000 `{`", format!("model m {}", "{".repeat(N)));
    deep("100 000 `)`", ")".repeat(N));
    deep("100 000 `}`", "}".repeat(N));
}

#[test]
fn deep_unary_minus() {
    deep("100 000 `-` before a number", in_model(&format!("let x = {}1", "-".repeat(N))));
    deep("100 000 `- ` before a number", in_model(&format!("let x = {}1", "- ".repeat(N))));
    deep("100 000 `-` at top level", format!("{}1", "-".repeat(N)));
}

#[test]
fn long_sums_and_products() {
    // A chain of `+`/`-` or `*`/`/` is a flat list (issue 18): legal however long, and quick.
    let sum = vec!["w"; N].join("+");
    legal("w+w+…+w with 100 000 terms", in_model(&format!("let x = {sum}")));
    let mixed: String = (0..N).map(|i| ["w+", "w*", "w-", "w/"][i % 4]).collect::<String>() + "w";
    legal("mixed operators, 100 000 terms", in_model(&format!("let x = {mixed}")));
    // Products keep their grouping: a long chain of `@` is too deep.
    let prod = vec!["w"; N].join(" @ ");
    deep("w @ w @ … with 100 000 terms", in_model(&format!("let x = {prod}")));
    // A right-leaning chain: every `+` nests one more parenthesis.
    let right = format!("{}w{}", "w+(".repeat(N / 2), ")".repeat(N / 2));
    deep("w+(w+(w+…)) 50 000 deep", in_model(&format!("let x = {right}")));
}

#[test]
fn deep_repeat_blocks() {
    let n = 10_000;
    let body = format!("{}let y = w{}", "repeat 1 {\n".repeat(n), "\n}".repeat(n));
    deep("10 000 nested repeat blocks", in_model(&body));
    let unclosed = "repeat 1 {\n".repeat(n);
    deep("10 000 unclosed repeat blocks", in_model(&unclosed));
}

#[test]
fn deep_calls() {
    let n = 10_000;
    let calls = format!("{}w{}", "f(".repeat(n), ")".repeat(n));
    deep("10 000 nested calls f(f(…))", in_model(&format!("let x = {calls}")));
    let calls = format!("{}w{}", "relu(".repeat(n), ")".repeat(n));
    deep("10 000 nested relu(…)", in_model(&format!("let x = {calls}")));
    let index = format!("w{}", "[0]".repeat(n));
    deep("10 000 chained indexes", in_model(&format!("let x = {index}")));
    let applied = format!("f{}", "(w)".repeat(n));
    deep("10 000 chained calls f(w)(w)…", in_model(&format!("let x = {applied}")));
    let path = vec!["a"; n].join(".");
    deep("a.a.a… with 10 000 parts", in_model(&format!("let x = {path}")));
}

/// Inputs just inside the limits must check without overflowing a small stack.
#[test]
fn deepest_legal_inputs_fit_a_small_stack() {
    // Expression depth 100: 98 calls around a name.
    let e = format!("{}w{}", "relu(".repeat(98), ")".repeat(98));
    run_guarded("expression 99 deep", in_model(&format!("let x = {e}\n    x ~ normal(0, 1)")), SMALL_STACK, CASE_LIMIT);
    let e = vec!["w"; 99].join("+");
    run_guarded("99-term sum", in_model(&format!("let x = {e}")), SMALL_STACK, CASE_LIMIT);
    // Bracket depth 128: the model's brace plus 127 parentheses.
    let p = format!("{}w{}", "(".repeat(120), ")".repeat(120));
    run_guarded("120 parentheses", in_model(&format!("let x = {p}")), SMALL_STACK, CASE_LIMIT);
    // 120 nested repeat blocks.
    let r = format!("{}let y = w{}", "repeat 1 {\n".repeat(120), "\n}".repeat(120));
    run_guarded("120 nested repeats", in_model(&r), SMALL_STACK, CASE_LIMIT);
    // A chain of 60 circuits, each applying the one before (instance depth limit is 64).
    run_guarded("60 chained circuits", circuit_chain(60, 0), SMALL_STACK, CASE_LIMIT);
}

/// `c0 … c{n-1}`, each `ci` applying `c{i-1}` once inside `depth` nested `relu(…)`, and a model
/// that applies the last one.
fn circuit_chain(n: usize, depth: usize) -> String {
    let mut s = String::from("circuit c0()(x: [B, 2]) -> [B, 2] {\n    return x\n}\n");
    for i in 1..n {
        let e = format!("{}f(x){}", "relu(".repeat(depth), ")".repeat(depth));
        s.push_str(&format!("circuit c{i}()(x: [B, 2]) -> [B, 2] {{\n    let f = c{}()\n    return {e}\n}}\n", i - 1));
    }
    s.push_str(&format!(
        "model m {{\n    data x: [N, 2] = csv(\"a\", \"b\")\n    data y: [N, 2] = csv(\"c\", \"d\")\n    let f = c{}()\n    y ~ normal(f(x), 1)\n}}\n",
        n - 1
    ));
    s
}

#[test]
fn long_flat_inputs_are_fast() {
    let lets: String = (0..20_000).map(|i| format!("    let v{i} = w * {i}\n")).collect();
    run_guarded("20 000 lets", in_model(&lets), SMALL_STACK, CASE_LIMIT);
    let errors: String = (0..20_000).map(|_| "    let = = \n").collect();
    deep("20 000 syntax errors", in_model(&errors));
    let unknown: String = (0..500).map(|i| format!("    let v{i} = u{i}\n")).collect();
    deep("500 unknown names", in_model(&unknown));
    deep("a 100 000-byte string", in_model(&format!("let x = \"{}\"", "s".repeat(N))));
    deep("100 000 newlines", in_model(&format!("let x = w +{}", "\n".repeat(N))));
    deep("100 000 invalid characters", "\u{0}^%".repeat(N / 3));
    deep("100 000 comment lines", format!("{}model", "# c\n".repeat(N)));
    deep("a 100 000-digit integer", in_model(&format!("let x = {}", "9".repeat(N))));
    run_guarded(
        "a 100 000-digit float",
        in_model(&format!("let x = 1.{}e99999", "9".repeat(N))),
        SMALL_STACK,
        CASE_LIMIT,
    );
}

#[test]
fn end_of_line_label_on_a_multibyte_character() {
    // Was a panic in rendering: the `unexpected end of line` label was the line's last *byte*.
    for src in ["model λ\n", "model λ", "model m {λ\n", "model m {\n    let x = 1 +\n    €\n}\n"] {
        run_guarded_with(src, src.to_string(), SMALL_STACK, CASE_LIMIT, Render::All { color: false });
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs that once panicked, overflowed the stack or hung: each must now give an answer fast.

#[test]
fn regression_concat_size_overflow() {
    // one_hot makes an axis of 2^63 - 1; concatenating three of them overflows u64.
    let src =
        "model m {\n    data k: int[N]\n    let o = one_hot(k, 9223372036854775807)\n    let c = concat(o, o, o)\n}\n";
    run_guarded("concat overflow", src.to_string(), SMALL_STACK, CASE_LIMIT);
}

#[test]
fn regression_nested_repeat_blowup() {
    let src = "model m {\n    param w: [] = 1\n    let x = w\n    repeat 1000 {\n        repeat 1000 {\n            repeat 1000 {\n                let x = x + w\n            }\n        }\n    }\n}\n";
    run_guarded("nested repeat 1000^3", src.to_string(), SMALL_STACK, CASE_LIMIT);
}

#[test]
fn regression_exponential_circuit_inlining() {
    let mut s = String::from("circuit c0()(x: [B, 2]) -> [B, 2] {\n    return x\n}\n");
    for i in 1..40 {
        s.push_str(&format!(
            "circuit c{i}()(x: [B, 2]) -> [B, 2] {{\n    let f = c{}()\n    return f(f(x))\n}}\n",
            i - 1
        ));
    }
    run_guarded("2^40 inlining", s, SMALL_STACK, CASE_LIMIT);
}

#[test]
fn regression_deep_expressions_in_deep_instances() {
    // Overflows even the CLI's 8 MiB main thread in the dev profile.
    run_guarded("64 chained circuits, depth-20 expressions", circuit_chain(64, 20), 8 * 1024 * 1024, CASE_LIMIT);
}

#[test]
fn regression_long_unknown_name() {
    // 20 KB of input: ~800 MB allocated; 20 000-char names take 3.2 GB, 60 000-char ones OOM.
    let src = format!("model m {{\n    let {} = 1\n    let y = {}\n}}\n", "a".repeat(10_000), "b".repeat(10_000));
    run_guarded("10 000-char unknown name", src, SMALL_STACK, CASE_LIMIT);
}

#[test]
fn regression_many_unknown_names() {
    let unknown: String = (0..5_000).map(|i| format!("    let v{i} = u{i}\n")).collect();
    run_guarded("5 000 unknown names", in_model(&unknown), SMALL_STACK, CASE_LIMIT);
}

#[test]
fn regression_rendering_many_diagnostics_is_quadratic() {
    // 20 000 lines with a `^` each: 20 000 diagnostics; the CLI takes seconds to print them.
    let src = format!("model m {{\n{}}}\n", "let x = 1 ^ 2\n".repeat(20_000));
    run_guarded_with("20 000 lexical errors, all rendered", src, SMALL_STACK, CASE_LIMIT, Render::All { color: false });
}

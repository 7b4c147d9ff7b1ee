//! Autodiff against finite differences in f64 (STYLE habits 5 and 11): every op's derivative rule
//! (reverse mode) and tangent rule (forward mode, through Hessian-vector products) is checked by the
//! same generic harness on random small graphs, then whole example models end to end.
//!
//! Each family runs 20 random trials from reproducible seeds; a failure names its seed, which
//! `CIRC_AD_SEED=<seed> cargo test --test autodiff <family>` replays alone (`CIRC_AD_TRIALS=<n>`
//! changes the number of trials). `-- --nocapture` prints the worst errors of every family.

#[path = "autodiff/harness.rs"]
mod harness;
#[path = "autodiff/ops.rs"]
mod ops;

use circ::check::types::Dim;
use circ::driver;
use circ::interp::HostTensor;
use circ::ir::op::{BinaryOp, Op, ReduceOp, UnaryOp};
use harness::{check, known, run_family, Builder, Case, Derived, Opts, Rng, Worst};

const TRIALS: usize = 20;

macro_rules! family {
    ($($test:ident: $family:expr, $trials:expr, $make:expr;)*) => {
        $(
            #[test]
            fn $test() {
                run_family($family, $trials, Opts::default(), $make);
            }
        )*
    };
}

family! {
    unary_neg: "unary/neg", TRIALS, ops::unary(UnaryOp::Neg);
    unary_exp: "unary/exp", TRIALS, ops::unary(UnaryOp::Exp);
    unary_log: "unary/log", TRIALS, ops::unary(UnaryOp::Log);
    unary_relu: "unary/relu", TRIALS, ops::unary(UnaryOp::Relu);
    unary_sigmoid: "unary/sigmoid", TRIALS, ops::unary(UnaryOp::Sigmoid);
    unary_tanh: "unary/tanh", TRIALS, ops::unary(UnaryOp::Tanh);
    unary_softplus: "unary/softplus", TRIALS, ops::unary(UnaryOp::Softplus);
    unary_sqrt: "unary/sqrt", TRIALS, ops::unary(UnaryOp::Sqrt);
    unary_abs: "unary/abs", TRIALS, ops::unary(UnaryOp::Abs);
    unary_square: "unary/square", TRIALS, ops::unary(UnaryOp::Square);
    unary_recip: "unary/recip", TRIALS, ops::unary(UnaryOp::Recip);

    binary_add: "binary/add", TRIALS, ops::binary(BinaryOp::Add);
    binary_sub: "binary/sub", TRIALS, ops::binary(BinaryOp::Sub);
    binary_mul: "binary/mul", TRIALS, ops::binary(BinaryOp::Mul);
    binary_div: "binary/div", TRIALS, ops::binary(BinaryOp::Div);
    binary_pow: "binary/pow", TRIALS, ops::binary(BinaryOp::Pow);

    reduce_sum: "reduce/sum", TRIALS, ops::reduce(ReduceOp::Sum);
    reduce_mean: "reduce/mean", TRIALS, ops::reduce(ReduceOp::Mean);
    reduce_max: "reduce/max", TRIALS, ops::reduce(ReduceOp::Max);
    logsumexp: "logsumexp", TRIALS, ops::logsumexp;

    reshape: "reshape", TRIALS, ops::reshape;
    transpose: "transpose", TRIALS, ops::transpose;
    concat: "concat", TRIALS, ops::concat;
    slice: "slice", TRIALS, ops::slice;
    embed: "embed", TRIALS, ops::embed;
    expand: "expand", TRIALS, ops::expand;
    kmax: "kmax", TRIALS, ops::kmax;

    flow_one_hot: "flow/one_hot", TRIALS, ops::flow("one_hot");
    flow_cast: "flow/cast", TRIALS, ops::flow("cast");
    flow_step: "flow/step", TRIALS, ops::flow("step");
    flow_sign: "flow/sign", TRIALS, ops::flow("sign");
    flow_eq: "flow/eq", TRIALS, ops::flow("eq");
    flow_kmax_mask: "flow/kmax_mask", TRIALS, ops::flow("kmax_mask");

    symbolic_sizes: "symbolic", 3 * TRIALS, ops::symbolic;
    mlp_hessian: "mlp", 5, ops::mlp;
}

/// Every numpy rank case of `matmul`, each with its own trials.
#[test]
fn matmul_rank_cases() {
    let mut failures = Vec::new();
    for case in ops::MATMUL_CASES {
        let family = format!("matmul/{case}");
        if let Err(e) = std::panic::catch_unwind(|| run_family(&family, 8, Opts::default(), ops::matmul(case))) {
            failures.push(e.downcast_ref::<String>().cloned().unwrap_or_else(|| family.clone()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A model written in the language, lowered, every coordinate's gradient and the full Hessian
/// checked: the lowering of likelihoods, priors, softmax, pow and slicing, differentiated.
#[test]
fn source_model_full_hessian() {
    let src = "model zoo {
    data x: [N, 3] = csv(\"a\", \"b\", \"c\")
    data y: [N]
    data label: int[N]
    param w: [3, 2] ~ normal(0, 1)
    param s: [2] ~ lognormal(0, 0.5)
    param c: [] ~ normal(0, 2)
    let h = tanh(x @ w) * s + c
    let p = softmax(h, 1)
    label ~ categorical(logits = h)
    y ~ normal(sum(pow(p, 2), 1), softplus(h[:, 0]) + 0.1)
}
";
    let cases = lowered("zoo.circ", src, 3);
    let mut worst = Worst::default();
    for (i, case) in cases.iter().enumerate() {
        let mut rng = Rng::new(1000 + i as u64);
        let w = check(case, &mut rng, Opts::default()).unwrap_or_else(|e| panic!("{}: {e}", case.what));
        assert!(w.hess > 0.0 || w.diag > 0.0, "the full Hessian was not built");
        worst.merge(&w);
    }
    eprintln!("source model: {worst}");
}

/// Each example model: lowered, gradient of the total loss at a few random coordinates per
/// parameter, one HVP, and the full Hessian where it has at most 24 coordinates.
#[test]
fn example_models_end_to_end() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "circ"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "expected the examples of the brief");
    let opts = Opts { coords_per_param: 3, h: 1e-4, skip_kinks: true, ..Opts::default() };
    let mut failures = Vec::new();
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        for case in lowered(&format!("examples/{name}.circ"), &text, 1) {
            let mut rng = Rng::new(7);
            match check(&case, &mut rng, opts) {
                Ok(w) => {
                    eprintln!("{}: {w}", case.what);
                    // Coordinates skipped at a kink are allowed, but not most of them.
                    assert!(2 * w.skipped <= w.coords, "{}: too many coordinates at kinks", case.what);
                }
                Err(e) => failures.push(format!("{}: {e}", case.what)),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A parameter the graph does not use, one the loss is linear in, and a loss that reads no
/// parameter at all: zero gradients and zero HVP rows come from `Graph::zeros`, and the graphs
/// still verify (no dangling direction inputs).
#[test]
fn unused_and_linear_parameters() {
    let (c, v) = (vec![0.5, -1.5], vec![vec![1.0, 2.0, 3.0], vec![-1.0, 4.0], vec![2.0]]);
    let mut b = Builder::new();
    let unused = b.param(&[3], vec![0.1, 0.2, 0.3]);
    b.g.remove(unused);
    let p1 = b.param(&[2], vec![0.7, -0.2]);
    let p2 = b.param(&[], vec![1.5]);
    let cn = b.data(&known(&[2]), c.clone());
    let lin = b.bin(BinaryOp::Mul, p1, cn);
    let lin = b.op(Op::Reduce { f: ReduceOp::Sum, axes: vec![0], keepdims: false }, &[lin]);
    let sq = b.un(UnaryOp::Square, p2);
    let loss = b.bin(BinaryOp::Add, lin, sq);
    let case = b.finish_with_loss(loss, "unused p0, linear p1, quadratic p2".into());
    let d = Derived::new(&case).unwrap();
    let (grad, hvp) = d.hvp(&case.params, &v).unwrap();
    assert_eq!(grad, vec![vec![0.0; 3], c, vec![3.0]]);
    assert_eq!(hvp, vec![vec![0.0; 3], vec![0.0; 2], vec![4.0]]);
    check(&case, &mut Rng::new(1), Opts::default()).unwrap();

    let mut b = Builder::new();
    let p = b.param(&[2], vec![1.0, 2.0]);
    b.g.remove(p);
    let x = b.data(&known(&[2]), vec![3.0, 4.0]);
    let loss = b.op(Op::Reduce { f: ReduceOp::Sum, axes: vec![0], keepdims: false }, &[x]);
    let case = b.finish_with_loss(loss, "a loss of data only".into());
    let d = Derived::new(&case).unwrap();
    assert_eq!(d.hvp(&case.params, &[vec![1.0, 1.0]]).unwrap(), (vec![vec![0.0; 2]], vec![vec![0.0; 2]]));

    // The loss is the parameter itself: its gradient is the seed, a constant.
    let mut b = Builder::new();
    let p = b.param(&[], vec![2.5]);
    let case = b.finish_with_loss(p, "loss = p".into());
    let d = Derived::new(&case).unwrap();
    assert_eq!(d.hvp(&case.params, &[vec![1.0]]).unwrap(), (vec![vec![1.0]], vec![vec![0.0]]));
}

/// Where finite differences cannot look: at ties and at extreme values, the rules give the
/// closed-form answers op.rs states (ties of `max` share the gradient equally; `kmax` keeps the
/// earliest of equal entries; logsumexp's gradient is the softmax even where exp overflows).
#[test]
fn ties_and_extreme_values_in_closed_form() {
    let grad_of = |values: Vec<f64>, f: &dyn Fn(&mut Builder, circ::ir::NodeId) -> circ::ir::NodeId| {
        let mut b = Builder::new();
        let n = values.len();
        let p = b.param(&[n], values);
        let y = f(&mut b, p);
        let loss = if b.shape(y).is_empty() {
            y
        } else {
            b.op(Op::Reduce { f: ReduceOp::Sum, axes: vec![0], keepdims: false }, &[y])
        };
        let case = b.finish_with_loss(loss, String::new());
        let d = Derived::new(&case).unwrap();
        let (g, h) = d.hvp(&case.params, &[vec![1.0; n]]).unwrap();
        (g.concat(), h.concat())
    };
    let max = |b: &mut Builder, p| b.op(Op::Reduce { f: ReduceOp::Max, axes: vec![0], keepdims: false }, &[p]);
    assert_eq!(grad_of(vec![1.0, 3.0, 3.0, 2.0], &max).0, vec![0.0, 0.5, 0.5, 0.0]);
    assert_eq!(grad_of(vec![3.0, 3.0, 3.0], &max).0, vec![1.0 / 3.0; 3]);
    let kmax1 = |b: &mut Builder, p| b.op(Op::KMax { k: 1 }, &[p]);
    assert_eq!(grad_of(vec![1.0, 3.0, 3.0, 2.0], &kmax1).0, vec![0.0, 1.0, 0.0, 0.0]);
    let kmax2 = |b: &mut Builder, p| b.op(Op::KMax { k: 2 }, &[p]);
    assert_eq!(grad_of(vec![3.0, 1.0, 3.0, 3.0], &kmax2).0, vec![1.0, 0.0, 1.0, 0.0]);

    let lse = |b: &mut Builder, p| b.op(Op::LogSumExp { axis: 0, keepdims: false }, &[p]);
    for shift in [-1000.0, 0.0, 1000.0] {
        let (g, h) = grad_of(vec![shift, shift + 1.0, shift - 1.0], &lse);
        let z: f64 = [0.0f64, 1.0, -1.0].iter().map(|x| x.exp()).sum();
        let soft: Vec<f64> = [0.0f64, 1.0, -1.0].iter().map(|x| x.exp() / z).collect();
        for (a, b) in g.iter().zip(&soft) {
            assert!((a - b).abs() < 1e-12, "logsumexp at {shift}: gradient {g:?}, softmax {soft:?}");
        }
        // The Hessian of logsumexp is diag(p) − ppᵀ, whose rows sum to 0: H·1 = 0.
        assert!(h.iter().all(|x| x.abs() < 1e-12), "logsumexp at {shift}: H·1 = {h:?}");
    }
    let sp = |b: &mut Builder, p| b.un(UnaryOp::Softplus, p);
    let sg = |b: &mut Builder, p| b.un(UnaryOp::Sigmoid, p);
    let xs = vec![-40.0, 40.0, -800.0, 800.0];
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    let (g, h) = grad_of(xs.clone(), &sp);
    for (i, x) in xs.iter().enumerate() {
        assert!((g[i] - sigmoid(*x)).abs() <= 1e-15, "softplus'({x}) = {}", g[i]);
        assert!(
            h[i].is_finite() && (h[i] - sigmoid(*x) * (1.0 - sigmoid(*x))).abs() <= 1e-15,
            "softplus''({x}) = {}",
            h[i]
        );
    }
    let (g, h) = grad_of(xs.clone(), &sg);
    for (i, x) in xs.iter().enumerate() {
        assert!(g[i].is_finite() && g[i] >= 0.0 && g[i] < 1e-17, "sigmoid'({x}) = {}", g[i]);
        assert!(h[i].is_finite() && h[i].abs() < 1e-17, "sigmoid''({x}) = {}", h[i]);
    }
}

/// Checks `src`, lowers each model and gives `draws` cases per model: the model's initial
/// parameters (a different seed each) on random data with `N = 5`: reals in [0.2, 1.5] (positive,
/// for models that take logs), integer labels in range of the one-hot that reads them (0 or 1
/// otherwise, as Bernoulli wants).
fn lowered(name: &str, src: &str, draws: u64) -> Vec<Case> {
    let checked = driver::check_source(name, src);
    assert!(!checked.has_errors(), "{}", checked.render(false));
    let mut out = Vec::new();
    for seed in 0..draws {
        for g in driver::lower(&checked, seed) {
            circ::ir::verify::verify(&g).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let mut rng = Rng::new(seed + 17);
            let data = g
                .data
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let shape: Vec<usize> = d
                        .shape
                        .iter()
                        .map(|s| match s {
                            Dim::Known(n) => *n as usize,
                            _ => 5,
                        })
                        .collect();
                    let n = shape.iter().product();
                    let values = if d.elem == circ::check::types::Elem::Int {
                        let classes = label_classes(&g, i);
                        (0..n).map(|_| rng.below(classes) as f64).collect()
                    } else {
                        (0..n).map(|_| rng.uniform(0.2, 1.5)).collect()
                    };
                    HostTensor { shape, values }
                })
                .collect();
            let params = circ::ir::init::initial_values(&g);
            let what = format!("{name} (seed {seed})");
            out.push(Case { g, data, params, what });
        }
    }
    out
}

/// The number of classes of the one-hot that reads integer data `i`; 2 if none does.
fn label_classes(g: &circ::ir::Graph, i: usize) -> usize {
    for n in g.node_ids() {
        if g.node(n).op == Op::Data(i) {
            for u in g.users(n) {
                if let Op::OneHot { classes } = g.node(u).op {
                    return classes as usize;
                }
            }
        }
    }
    2
}

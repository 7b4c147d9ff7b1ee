//! bprop2 is exact where theory says it is (BRIEF §2.4): checked against the exact Hessian, built
//! column by column from Hessian-vector products, and against Gauss–Newton matrices built from
//! explicit Jacobians.

use circ::autodiff::{self, bprop2::Variant};
use circ::driver;
use circ::interp::{self, HostTensor};
use circ::ir::Graph;

/// A small seeded generator for test data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.next()).collect()
    }
}

fn model(src: &str) -> Graph {
    let checked = driver::check_source("m.circ", src);
    assert!(!checked.has_errors(), "{}", checked.render(false));
    driver::lower(&checked, 0).remove(0)
}

fn sizes(g: &Graph) -> Vec<usize> {
    g.params.iter().map(|p| p.shape.iter().product::<u64>() as usize).collect()
}

/// The exact Hessian diagonal, one HVP per coordinate with a unit direction.
fn exact_diagonal(g: &Graph, data: &[HostTensor], params: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut h = g.clone();
    autodiff::add_hvp(&mut h);
    circ::ir::verify::verify(&h).unwrap();
    let n = sizes(g);
    let mut diag: Vec<Vec<f64>> = n.iter().map(|k| vec![0.0; *k]).collect();
    for (pi, &k) in n.iter().enumerate() {
        for j in 0..k {
            let mut v: Vec<Vec<f64>> = n.iter().map(|k| vec![0.0; *k]).collect();
            v[pi][j] = 1.0;
            let out = interp::run_with::<f64>(&h, data, params, &v).unwrap();
            diag[pi][j] = out.get(&format!("hvp.{}", g.params[pi].name)).unwrap().data[j];
        }
    }
    diag
}

fn curvature(g: &Graph, variant: Variant, data: &[HostTensor], params: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let mut c = g.clone();
    autodiff::bprop2::add_curvature(&mut c, variant);
    circ::ir::verify::verify(&c).unwrap();
    let out = interp::run::<f64>(&c, data, params).unwrap();
    g.params.iter().map(|p| out.get(&format!("curv.{}", p.name)).unwrap().data.clone()).collect()
}

fn assert_close(what: &str, a: &[Vec<f64>], b: &[Vec<f64>], tol: f64) {
    for (pa, pb) in a.iter().zip(b) {
        for (x, y) in pa.iter().zip(pb) {
            assert!((x - y).abs() <= tol * (1.0 + x.abs().max(y.abs())), "{what}: {x} vs {y}\n{a:?}\n{b:?}");
        }
    }
}

#[test]
fn linear_gaussian_curvature_is_the_exact_hessian_diagonal() {
    let g = model(
        "model m {\n data x: [N, 3] = csv(\"a\", \"b\", \"c\")\n data y: [N]\n param w: [3] ~ normal(0, 2)\n \
         param b: [] ~ laplace(0, 1)\n y ~ normal(x @ w + b, 0.5)\n}\n",
    );
    let mut r = Rng(1);
    let data =
        vec![HostTensor { shape: vec![6, 3], values: r.vec(18) }, HostTensor { shape: vec![6], values: r.vec(6) }];
    let params = vec![r.vec(3), r.vec(1)];
    let exact = exact_diagonal(&g, &data, &params);
    // The Laplace prior has no curvature away from 0; bprop2 uses its Fisher information 1/b².
    let mut expected = exact.clone();
    expected[1][0] += 1.0;
    for v in [Variant::GaussNewton, Variant::Full] {
        assert_close(&format!("{v:?}"), &curvature(&g, v, &data, &params), &expected, 1e-10);
    }
}

#[test]
fn softmax_and_logistic_regression_curvature_is_exact() {
    let cat = model(
        "model m {\n data x: [N, 3] = csv(\"a\", \"b\", \"c\")\n data y: int[N]\n param w: [3, 4] ~ normal(0, 1)\n \
         y ~ categorical(x @ w)\n}\n",
    );
    let ber = model(
        "model m {\n data x: [N, 3] = csv(\"a\", \"b\", \"c\")\n data y: int[N]\n param w: [3] ~ normal(0, 1)\n \
         param b: []\n y ~ bernoulli(x @ w + b)\n}\n",
    );
    let mut r = Rng(2);
    let x = HostTensor { shape: vec![7, 3], values: r.vec(21) };
    let labels = HostTensor { shape: vec![7], values: vec![0.0, 3.0, 1.0, 2.0, 1.0, 0.0, 3.0] };
    let p = vec![r.vec(12)];
    let exact = exact_diagonal(&cat, &[x.clone(), labels.clone()], &p);
    for v in [Variant::GaussNewton, Variant::Full] {
        assert_close("categorical", &curvature(&cat, v, &[x.clone(), labels.clone()], &p), &exact, 1e-10);
    }
    let bits = HostTensor { shape: vec![7], values: vec![0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0] };
    let p = vec![r.vec(3), r.vec(1)];
    let exact = exact_diagonal(&ber, &[x.clone(), bits.clone()], &p);
    for v in [Variant::GaussNewton, Variant::Full] {
        assert_close("bernoulli", &curvature(&ber, v, &[x.clone(), bits.clone()], &p), &exact, 1e-10);
    }
}

/// For a ReLU network with one hidden layer under a Gaussian likelihood, the Gauss–Newton
/// curvature equals diag(JᵀJ)/σ² plus the prior precision, J the Jacobian of all predictions
/// with respect to all parameters, here built column by column by finite differences.
#[test]
fn relu_mlp_gauss_newton_is_diag_of_jtj() {
    let sigma = 0.7;
    let g = model(&format!(
        "model m {{\n data x: [N, 3] = csv(\"a\", \"b\", \"c\")\n data y: [N, 2] = csv(\"p\", \"q\")\n \
         param w1: [3, 5] ~ normal(0, 1)\n param b1: [5] ~ normal(0, 1)\n param w2: [5, 2] ~ normal(0, 1)\n \
         let h = relu(x @ w1 + b1)\n y ~ normal(h @ w2, {sigma})\n}}\n"
    ));
    let mut r = Rng(3);
    let data =
        vec![HostTensor { shape: vec![8, 3], values: r.vec(24) }, HostTensor { shape: vec![8, 2], values: r.vec(16) }];
    let params: Vec<Vec<f64>> = sizes(&g).iter().map(|k| r.vec(*k)).collect();
    let predict = |p: &[Vec<f64>]| interp::run::<f64>(&g, &data, p).unwrap().get("y.mean").unwrap().data.clone();
    let h = 1e-6;
    let mut expected: Vec<Vec<f64>> = Vec::new();
    for (pi, k) in sizes(&g).into_iter().enumerate() {
        let mut col = Vec::new();
        for j in 0..k {
            let (mut plus, mut minus) = (params.clone(), params.clone());
            plus[pi][j] += h;
            minus[pi][j] -= h;
            let (a, b) = (predict(&plus), predict(&minus));
            let jtj: f64 = a.iter().zip(&b).map(|(a, b)| ((a - b) / (2.0 * h)).powi(2)).sum();
            col.push(jtj / (sigma * sigma) + 1.0);
        }
        expected.push(col);
    }
    assert_close("gauss-newton", &curvature(&g, Variant::GaussNewton, &data, &params), &expected, 1e-6);
}

/// With one parameter reaching the loss along one path, the diagonal is the whole Hessian and
/// the full variant's second-order terms make it exact through any chain of nonlinearities.
/// (Along several paths the diagonal approximation drops the cross terms, by design.)
#[test]
fn full_variant_is_exact_along_one_path() {
    let mean = model(
        "model m {\n data x: [N]\n data y: [N]\n param a: [] ~ normal(0, 3)\n \
         y ~ normal(sigmoid(tanh(exp(a * x)) * 2) * 3, 0.4)\n}\n",
    );
    let scale = model(
        "model m {\n data x: [N]\n data y: [N]\n param s: [] ~ lognormal(0, 1)\n \
         y ~ normal(x, sqrt(softplus(s)) + 0.1)\n}\n",
    );
    let mut r = Rng(4);
    let data = vec![HostTensor { shape: vec![9], values: r.vec(9) }, HostTensor { shape: vec![9], values: r.vec(9) }];
    for (g, p) in [(&mean, 0.8), (&scale, 0.6)] {
        let params = vec![vec![p]];
        let exact = exact_diagonal(g, &data, &params);
        assert_close("full", &curvature(g, Variant::Full, &data, &params), &exact, 1e-9);
        let gn = curvature(g, Variant::GaussNewton, &data, &params);
        assert!(gn[0][0] > 0.0, "the Gauss-Newton curvature is positive");
    }
}

/// `bprop2::gauss_newton_form` (vᵀGv from one JVP, what the capped second-order rules read) for
/// the direction `v`, with every parameter moved.
fn quadratic_form(g: &Graph, data: &[HostTensor], params: &[Vec<f64>], v: &[Vec<f64>]) -> f64 {
    use circ::ir::graph::{InputInfo, Output};
    use circ::ir::op::Op;
    use std::collections::{HashMap, HashSet};
    let mut q = g.clone();
    let forward: HashSet<circ::ir::NodeId> = q.node_ids().into_iter().collect();
    let (mut seeds, mut dirs) = (HashMap::new(), Vec::new());
    for i in 0..q.params.len() {
        let index = q.inputs.len();
        q.inputs.push(InputInfo { name: format!("v.{}", q.params[i].name), shape: q.params[i].shape.clone() });
        let Some(p) = autodiff::param_node(&q, i) else { continue };
        let vn = q.push(Op::Input(index), &[], None, None);
        seeds.insert(p, vn);
        dirs.push((p, vn));
    }
    let tangent = autodiff::forward::tangents_within(&mut q, &seeds, |n| forward.contains(&n));
    let form = autodiff::bprop2::gauss_newton_form(&mut q, &tangent, &dirs);
    q.outputs.push(Output { name: "form".into(), node: form });
    circ::passes::dce::run(&mut q);
    circ::ir::verify::verify(&q).unwrap();
    interp::run_with::<f64>(&q, data, params, v).unwrap().get("form").unwrap().data[0]
}

/// vᵀHv from the exact Hessian-vector product.
fn exact_form(g: &Graph, data: &[HostTensor], params: &[Vec<f64>], v: &[Vec<f64>]) -> f64 {
    let mut h = g.clone();
    autodiff::add_hvp(&mut h);
    let out = interp::run_with::<f64>(&h, data, params, v).unwrap();
    g.params
        .iter()
        .zip(v)
        .map(|(p, vi)| {
            let hv = &out.get(&format!("hvp.{}", p.name)).unwrap().data;
            hv.iter().zip(vi).map(|(a, b)| a * b).sum::<f64>()
        })
        .sum()
}

/// Where the model is linear in its parameters under a normal, categorical or bernoulli
/// likelihood with normal priors, Gauss–Newton is the Hessian: the form equals vᵀHv from HVPs,
/// the softmax's cross terms included.
#[test]
fn gauss_newton_form_is_the_exact_form_of_linear_models() {
    let mut r = Rng(7);
    let x = HostTensor { shape: vec![7, 3], values: r.vec(21) };
    let cases: Vec<(Graph, HostTensor)> = vec![
        (
            model("model m {\n data x: [N, 3] = csv(\"a\", \"b\", \"c\")\n data y: [N]\n param w: [3] ~ normal(0, 2)\n \
                   param b: [] ~ normal(1, 3)\n y ~ normal(x @ w + b, 0.5)\n}\n"),
            HostTensor { shape: vec![7], values: r.vec(7) },
        ),
        (
            model("model m {\n data x: [N, 3] = csv(\"a\", \"b\", \"c\")\n data y: int[N]\n param w: [3, 4] ~ normal(0, 1)\n \
                   param b: [4]\n y ~ categorical(x @ w + b)\n}\n"),
            HostTensor { shape: vec![7], values: vec![0.0, 3.0, 1.0, 2.0, 1.0, 0.0, 3.0] },
        ),
        (
            model("model m {\n data x: [N, 3] = csv(\"a\", \"b\", \"c\")\n data y: int[N]\n param w: [3] ~ normal(0, 1)\n \
                   param b: []\n y ~ bernoulli(x @ w + b)\n}\n"),
            HostTensor { shape: vec![7], values: vec![0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0] },
        ),
    ];
    for (g, y) in cases {
        let data = [x.clone(), y];
        let params: Vec<Vec<f64>> = sizes(&g).iter().map(|k| r.vec(*k)).collect();
        for _ in 0..3 {
            let v: Vec<Vec<f64>> = sizes(&g).iter().map(|k| r.vec(*k)).collect();
            let (got, want) = (quadratic_form(&g, &data, &params, &v), exact_form(&g, &data, &params, &v));
            assert!(want > 0.0 && (got - want).abs() <= 1e-10 * want, "vᵀGv = {got}, vᵀHv = {want}");
        }
    }
}

/// For a ReLU network under a softmax, vᵀGv = (Jv)ᵀ(diag(p) − ppᵀ)(Jv) + vᵀPv summed over rows,
/// with Jv the change of the logits by central finite differences and P the priors' precisions.
#[test]
fn gauss_newton_form_of_a_relu_network_matches_finite_differences() {
    let g = model(
        "model m {\n data x: [N, 3] = csv(\"a\", \"b\", \"c\")\n data y: int[N]\n \
         param w1: [3, 5] ~ normal(0, 1)\n param b1: [5] ~ normal(0, 2)\n param w2: [5, 4] ~ normal(0, 1)\n \
         y ~ categorical(relu(x @ w1 + b1) @ w2)\n}\n",
    );
    let mut r = Rng(8);
    let data = [
        HostTensor { shape: vec![6, 3], values: r.vec(18) },
        HostTensor { shape: vec![6], values: vec![0.0, 3.0, 1.0, 2.0, 1.0, 0.0] },
    ];
    let params: Vec<Vec<f64>> = sizes(&g).iter().map(|k| r.vec(*k)).collect();
    let v: Vec<Vec<f64>> = sizes(&g).iter().map(|k| r.vec(*k)).collect();
    let prediction = g
        .terms
        .iter()
        .find_map(|t| match t {
            circ::ir::graph::Term::Likelihood { prediction, .. } => Some(prediction.clone()),
            _ => None,
        })
        .unwrap();
    let logits = |p: &[Vec<f64>]| interp::run::<f64>(&g, &data, p).unwrap().get(&prediction).unwrap().data.clone();
    let eps = 1e-6;
    let moved = |k: f64| -> Vec<Vec<f64>> {
        params.iter().zip(&v).map(|(p, d)| p.iter().zip(d).map(|(a, b)| a + k * b).collect()).collect()
    };
    let z = logits(&params);
    let (up, down) = (logits(&moved(eps)), logits(&moved(-eps)));
    let mut want = 0.0;
    for row in 0..6 {
        let zr = &z[row * 4..row * 4 + 4];
        let m = zr.iter().copied().fold(f64::MIN, f64::max);
        let e: Vec<f64> = zr.iter().map(|a| (a - m).exp()).collect();
        let s: f64 = e.iter().sum();
        let p: Vec<f64> = e.iter().map(|a| a / s).collect();
        let jv: Vec<f64> = (0..4).map(|k| (up[row * 4 + k] - down[row * 4 + k]) / (2.0 * eps)).collect();
        let pu: f64 = p.iter().zip(&jv).map(|(a, b)| a * b).sum();
        want += p.iter().zip(&jv).map(|(a, b)| a * b * b).sum::<f64>() - pu * pu;
    }
    // Priors: w1 and w2 precision 1, b1 1/4.
    want += v[0].iter().chain(&v[2]).map(|a| a * a).sum::<f64>() + v[1].iter().map(|a| a * a / 4.0).sum::<f64>();
    let got = quadratic_form(&g, &data, &params, &v);
    assert!((got - want).abs() <= 1e-6 * want, "vᵀGv = {got}, from finite differences {want}");
}

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

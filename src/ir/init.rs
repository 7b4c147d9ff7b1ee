//! Initial parameter values: fixed, or drawn from the prior with a seeded generator. Each
//! parameter's stream is derived from the graph's seed and the parameter's name, so adding a
//! parameter never changes the draws of the others.

use super::graph::{Graph, Init};
use crate::check::checked::Prior;

/// SplitMix64: small, fast, and good enough for initial draws.
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

    /// Uniform in (0, 1), never exactly 0 or 1.
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    pub fn draw(&mut self, prior: &Prior) -> f64 {
        match *prior {
            Prior::Flat => 0.0,
            Prior::Normal { mu, sigma } => mu + sigma * self.normal(),
            Prior::LogNormal { mu, sigma } => (mu + sigma * self.normal()).exp(),
            Prior::Laplace { mu, b } => {
                let u = self.uniform() - 0.5;
                mu - b * u.signum() * (1.0 - 2.0 * u.abs()).ln()
            }
            Prior::Uniform { low, high } => low + (high - low) * self.uniform(),
        }
    }
}

/// FNV-1a, to turn a parameter name into a stream offset.
fn hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The initial value of every parameter, in declaration order, row-major.
pub fn initial_values(graph: &Graph) -> Vec<Vec<f64>> {
    graph
        .params
        .iter()
        .map(|p| {
            let n: u64 = p.shape.iter().product();
            match p.init {
                Init::Fixed(v) => vec![v; n as usize],
                Init::Draw(prior) => {
                    let mut rng = Rng::new(graph.seed ^ hash(&p.name));
                    (0..n).map(|_| rng.draw(&prior)).collect()
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_have_the_prior_moments() {
        let mut rng = Rng::new(7);
        let n = 200_000;
        for (prior, mean, var) in [
            (Prior::Normal { mu: 1.0, sigma: 2.0 }, 1.0, 4.0),
            (Prior::Laplace { mu: -1.0, b: 0.5 }, -1.0, 0.5),
            (Prior::Uniform { low: 2.0, high: 4.0 }, 3.0, 4.0 / 12.0),
        ] {
            let xs: Vec<f64> = (0..n).map(|_| rng.draw(&prior)).collect();
            let m = xs.iter().sum::<f64>() / n as f64;
            let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n as f64;
            assert!((m - mean).abs() < 0.02, "{prior:?}: mean {m}");
            assert!((v - var).abs() / var < 0.02, "{prior:?}: variance {v}");
        }
    }
}

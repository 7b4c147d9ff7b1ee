#!/usr/bin/env python3
"""E1 (docs/experiments.md) simulated in numpy, independently of circ: full-batch gradient descent
and diagonal Gauss–Newton steps on ½Σ(y − a·b·x)², the 256 points of `abx_data` in
tests/training/experiments.rs (x uniform in [−1, 1] from SplitMix64 seed 0xAB5, y = 0.7·x),
started at a = s, b = 0.01/s for s = 1, 100, 10⁴. Prints, per scale, the SGD rates (every half
decade from 1 to 1e-12) that bring the fit error mean((y − a·b·x)²) below 1e-6 within 100 steps
and in how many, how many diverge (non-finite, or worse than the start) and stall, and Newton's
steps (lr = 0.5, damping 1e-4 and 0): what `e1_gd_needs_a_rate_per_scale_where_newton_needs_none`
measures with circ.

    bench/.venv/bin/python bench/e1_abx.py
"""
import numpy as np

M = 0xFFFFFFFFFFFFFFFF


class SplitMix64:
    def __init__(self, seed):
        self.s = seed

    def u64(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & M
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        return z ^ (z >> 31)

    def uniform(self):
        return (self.u64() >> 11) / float(1 << 53)


r = SplitMix64(0xAB5)
x = np.array([-1 + 2 * r.uniform() for _ in range(256)])
y = 0.7 * x


def fit(a, b):
    return np.mean((y - a * b * x) ** 2)


def run(s, rule, lr, damping=1e-4, steps=100):
    """The step at which the fit error first falls below 1e-6, or "diverged" / "stalled"."""
    a, b = s, 0.01 / s
    start = fit(a, b)
    with np.errstate(all="ignore"):
        for t in range(1, steps + 1):
            r = a * b * x - y
            ga, gb = np.sum(r * b * x), np.sum(r * a * x)
            if rule == "sgd":
                a, b = a - lr * ga, b - lr * gb
            else:  # the diagonal Gauss–Newton curvatures b²Σx² and a²Σx², plus damping
                ha, hb = np.sum((b * x) ** 2), np.sum((a * x) ** 2)
                a, b = a - lr * ga / (ha + damping), b - lr * gb / (hb + damping)
            f = fit(a, b)
            if not np.isfinite(f):
                return "diverged"
            if f < 1e-6:
                return t
    return "diverged" if f > start else "stalled"


for s in [1, 100, 1e4]:
    out = [(10 ** (-j / 2), run(s, "sgd", 10 ** (-j / 2))) for j in range(25)]
    converged = [f"{lr:.0e} ({o})" for lr, o in out if isinstance(o, int)]
    diverged = sum(o == "diverged" for _, o in out)
    stalled = sum(o == "stalled" for _, o in out)
    print(f"s = {s:g}: SGD converges at {', '.join(converged)}; {diverged} of 25 diverge, {stalled} stall;"
          f" newton(lr = 0.5) {run(s, 'newton', 0.5)} steps, undamped {run(s, 'newton', 0.5, 0.0)}")

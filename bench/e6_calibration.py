#!/usr/bin/env python3
"""E6 (docs/experiments.md): is the variance examples/hetero.circ learns calibrated?

Trains the example as its header says (data/noisy.csv: y = sin x + (0.1 + 0.5·|x|)·ε, ε ~ N(0, 1),
x uniform in [−3, 3]), draws fresh test points from the same law (numpy, seed 1), and compares
`circ run`'s predicted standard deviation with the true one, bin by bin over x, and the share of
test points inside the predicted ±1σ and ±2σ intervals with the Gaussian's 68.3% and 95.4%.

    bench/.venv/bin/python bench/e6_calibration.py [--circ target/release/circ] [--seed 0]

numpy only (bench/requirements.txt). Runs from the repository root; temporary files are removed.
"""
import argparse
import math
import os
import subprocess
import tempfile

import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--circ", default="target/release/circ")
    p.add_argument("--seed", default="0", help="the training seed (start, split, shuffles)")
    p.add_argument("--points", type=int, default=20000)
    args = p.parse_args()

    rng = np.random.default_rng(1)
    x = rng.uniform(-3, 3, args.points)
    true_sd = 0.1 + 0.5 * np.abs(x)
    y = np.sin(x) + true_sd * rng.standard_normal(args.points)
    with tempfile.TemporaryDirectory() as work:
        ckpt = os.path.join(work, "hetero.safetensors")
        test = os.path.join(work, "test.csv")
        pred = os.path.join(work, "pred.csv")
        subprocess.run(
            [args.circ, "train", "examples/hetero.circ", "--data", "data/noisy.csv", "--out", ckpt, "--seed", args.seed, "--quiet"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        np.savetxt(test, x[:, None], delimiter=",", header="x", comments="", fmt="%.9g")
        subprocess.run([args.circ, "run", "examples/hetero.circ", "--params", ckpt, "--data", test, "--out", pred], check=True, stderr=subprocess.DEVNULL)
        out = np.loadtxt(pred, delimiter=",", skiprows=1, ndmin=2)
    mean, sd = out[:, 0], np.sqrt(out[:, 1])
    z = (y - mean) / sd
    print(f"E6: {args.points} fresh test points, training seed {args.seed}")
    print("| x in | true σ (mean) | predicted σ (mean) | RMS residual | within ±1σ | within ±2σ |")
    print("|---|---:|---:|---:|---:|---:|")
    edges = np.linspace(-3, 3, 7)
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (x >= lo) & (x < hi)
        r = y[m] - mean[m]
        print(
            f"| [{lo:+.0f}, {hi:+.0f}) | {true_sd[m].mean():.3f} | {sd[m].mean():.3f} | {math.sqrt((r * r).mean()):.3f} "
            f"| {(np.abs(z[m]) < 1).mean():.1%} | {(np.abs(z[m]) < 2).mean():.1%} |"
        )
    print(
        f"| all | {true_sd.mean():.3f} | {sd.mean():.3f} | {math.sqrt(((y - mean) ** 2).mean()):.3f} "
        f"| {(np.abs(z) < 1).mean():.1%} | {(np.abs(z) < 2).mean():.1%} |"
    )
    print(f"Gaussian: 68.3% within ±1σ, 95.4% within ±2σ; mean z² = {np.mean(z * z):.3f} (1 if calibrated)")
    print(f"relative error of predicted σ: median {np.median(np.abs(sd / true_sd - 1)):.1%}, 90th percentile {np.percentile(np.abs(sd / true_sd - 1), 90):.1%}")


if __name__ == "__main__":
    main()

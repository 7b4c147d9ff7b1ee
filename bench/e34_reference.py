#!/usr/bin/env python3
"""E3 and E4 (docs/experiments.md) against solvers circ does not share code with.

Trains examples/ridge.circ and examples/logistic.circ with the commands of their headers (on the
backend given, `interp` by default: f64), reads the trained weights from the checkpoints, and
compares them with
- E3: the closed-form ridge solution, numpy.linalg.solve of (ZᵀZ + diag(1, …, 1, 0)) β = Zᵀy,
  Z = [X, 1] (the intercept unpenalized), on data/diabetes.csv;
- E4: scipy.optimize.minimize (L-BFGS-B, gradient tolerance 1e-10) of the L2 logistic objective
  Σ log(1 + e^z) − y·z + ½‖w‖², z = Xw + b, on data/breast_cancer_standardized.csv: the objective
  scikit-learn's LogisticRegression(C = 1) minimizes.
Prints the relative difference ‖β_circ − β_ref‖ / ‖β_ref‖ of each, and the objectives.

    bench/.venv/bin/python bench/e34_reference.py [--circ target/release/circ] [--backend interp|cpu]

numpy and scipy (bench/.venv has both: jax depends on scipy).
"""
import argparse
import json
import os
import struct
import subprocess
import tempfile

import numpy as np
from scipy.optimize import minimize


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        meta = json.loads(f.read(n))
        blob = f.read()
    out = {}
    for name, t in meta.items():
        if name != "__metadata__":
            a, b = t["data_offsets"]
            dtype = {"F32": "<f4", "F64": "<f8"}[t["dtype"]]
            out[name] = np.frombuffer(blob[a:b], dtype=dtype).astype(np.float64).reshape(t["shape"])
    return out


def train(circ, model, data, backend, work):
    ckpt = os.path.join(work, os.path.basename(model) + ".safetensors")
    subprocess.run([circ, "train", model, "--data", data, "--backend", backend, "--out", ckpt, "--quiet"], check=True, stdout=subprocess.DEVNULL)
    t = read_safetensors(ckpt)
    return np.append(t["w"].ravel(), t["b"].ravel())


def table(path):
    return np.loadtxt(path, delimiter=",", skiprows=1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--circ", default="target/release/circ")
    p.add_argument("--backend", default="interp")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as work:
        # E3: ridge.
        d = table("data/diabetes.csv")
        z = np.hstack([d[:, :-1], np.ones((len(d), 1))])
        penalty = np.diag(np.append(np.ones(z.shape[1] - 1), 0.0))
        ref = np.linalg.solve(z.T @ z + penalty, z.T @ d[:, -1])
        got = train(args.circ, "examples/ridge.circ", "data/diabetes.csv", args.backend, work)
        print(f"E3 ridge ({args.backend}): relative difference to numpy's closed form {np.linalg.norm(got - ref) / np.linalg.norm(ref):.2e}")

        # E4: L2 logistic regression.
        d = table("data/breast_cancer_standardized.csv")
        x, y = d[:, :-1], d[:, -1]

        def objective(beta):
            w, b = beta[:-1], beta[-1]
            s = x @ w + b
            f = np.sum(np.logaddexp(0, s) - y * s) + 0.5 * w @ w
            r = 1 / (1 + np.exp(-s)) - y
            return f, np.append(x.T @ r + w, r.sum())

        res = minimize(objective, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B", options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 10000})
        ref = res.x
        got = train(args.circ, "examples/logistic.circ", "data/breast_cancer_standardized.csv", args.backend, work)
        print(
            f"E4 logistic ({args.backend}): relative difference to scipy's L-BFGS-B {np.linalg.norm(got - ref) / np.linalg.norm(ref):.2e}; "
            f"objective {objective(got)[0]:.10f} vs {res.fun:.10f} (scipy's gradient norm {np.linalg.norm(res.jac):.1e})"
        )


if __name__ == "__main__":
    main()

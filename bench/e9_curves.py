"""E9 (docs/experiments.md): task A's accuracy over the epochs of two tasks in sequence, as a PNG.

examples/forgetting.circ trains 20 epochs on task A (data/digits.csv), then 20 on task B
(data/digits_permuted.csv, the same digits with pixels permuted) with `--resume`. Every epoch's
accuracy on A comes from `--metrics`: on A, that of the model's held-out 20% of A (the rows
bench/forgetting.sh trains on, as in its table); on B, that of every row of A (`--valid
data/digits.csv`), so B is trained on all its rows where the table holds out 20% of it. For
each method, the mean over seeds 0-3 is a line and min..max a band.

    bench/.venv/bin/python bench/e9_curves.py [--png docs/img/e9_forgetting.png] [--seeds 0 1 2 3]

Runs target/release/circ (or $CIRC); build it first (`cargo build --release`). Needs matplotlib
(bench/requirements.txt). The PNG is written atomically (temp file, rename).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = "examples/forgetting.circ"
A, B = "data/digits.csv", "data/digits_permuted.csv"
EPOCHS = 20
# (label, rule on A, rule on B, EWC weight λ or None): the rows of bench/forgetting.sh.
METHODS = [
    ("sgd(lr = 1e-3)", "sgd(lr = 1e-3)", "sgd(lr = 1e-3)", None),
    ("adam(lr = 1e-2)", "adam(lr = 1e-2)", "adam(lr = 1e-2)", None),
    ("bayes(lr = 0.1)", "bayes(lr = 0.1)", "bayes(lr = 0.1)", None),
    ("adam, lr / 10 on B", "adam(lr = 1e-2)", "adam(lr = 1e-3)", None),
    ("adam + EWC, λ = 10", "adam(lr = 1e-2)", "adam(lr = 1e-2)", 10.0),
]


def train(circ, data, rule, seed, out, metrics, extra=()):
    cmd = [circ, "train", MODEL, "--data", data, "--out", out, "--seed", str(seed),
           "--optimizer", rule, "--metrics", metrics, "--quiet", *extra]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"e9_curves: {' '.join(cmd)} failed:\n{done.stderr}")
    with open(metrics) as f:
        return [json.loads(line)["valid_accuracy"] for line in f if line.strip()]


def curve(circ, work, method, seed):
    """Accuracy on A after each of the 2·EPOCHS epochs."""
    label, rule_a, rule_b, ewc = method
    ck = os.path.join(work, f"{seed}.safetensors")
    first = train(circ, A, rule_a, seed, ck, os.path.join(work, "a.jsonl"), ["--epochs", str(EPOCHS)])
    extra = ["--epochs", str(2 * EPOCHS), "--resume", "--valid", A]
    if ewc is not None:
        anchor = os.path.join(work, f"{seed}.A.safetensors")
        with open(ck, "rb") as src, open(anchor, "wb") as dst:
            dst.write(src.read())
        extra += ["--prior-from", anchor, "--prior-weight", str(ewc)]
    second = train(circ, B, rule_b, seed, ck, os.path.join(work, "b.jsonl"), extra)
    return first + second


def write_png(fig, path):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".e9-", suffix=".png")
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=110)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--png", default="docs/img/e9_forgetting.png")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    args = ap.parse_args()
    circ = os.environ.get("CIRC", os.path.join(ROOT, "target/release/circ"))
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    epochs = np.arange(1, 2 * EPOCHS + 1)
    with tempfile.TemporaryDirectory() as work:
        for method in METHODS:
            runs = np.array([curve(circ, work, method, s) for s in args.seeds], dtype=float)
            mean = runs.mean(axis=0)
            line, = ax.plot(epochs, mean, label=method[0], lw=1.6)
            ax.fill_between(epochs, runs.min(axis=0), runs.max(axis=0), color=line.get_color(), alpha=0.15)
            print(f"| {method[0]} | A after A {mean[EPOCHS - 1]:.3f} | A after B {mean[-1]:.3f} |")
    ax.axvline(EPOCHS + 0.5, color="gray", ls="--", lw=1)
    ax.text(EPOCHS / 2, 0.04, "training on A (digits): A's held-out 20%", ha="center", color="gray", fontsize=8)
    ax.text(1.5 * EPOCHS, 0.04, "training on B (pixels permuted): all of A", ha="center", color="gray", fontsize=8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy on task A")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(1, 2 * EPOCHS)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 0.1), fontsize=8)
    seeds = ", ".join(map(str, args.seeds))
    ax.set_title(f"E9: forgetting task A while training on B (mean of seeds {seeds}, band min..max)", fontsize=10)
    fig.tight_layout()
    write_png(fig, os.path.join(ROOT, args.png) if not os.path.isabs(args.png) else args.png)
    print(f"e9_curves: wrote {args.png}")


if __name__ == "__main__":
    main()

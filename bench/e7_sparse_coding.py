#!/usr/bin/env python3
"""E7 (docs/experiments.md): sparse codes of examples/ista.circ against PCA, and its atoms as a PNG.

Reads the predictions and codes that `circ run --values h` wrote (`pixels_k.mean` columns, then
`h.0 … h.{K-1}`), the digits they came from, and the checkpoint `circ train` wrote. Prints the
average number of active atoms (h ≠ 0), the reconstruction MSE in gray levels² (mean over rows
and pixels), and the MSE of PCA (centered, fit on all rows) with as many components, rounded up
and down; the exact η·λmax of the trained dictionary (ISTA is stable for η·λmax ≤ 1); and writes
the atoms, each scaled to its own largest magnitude (gray = 0, white > 0, black < 0), as a PNG.

    circ train examples/ista.circ --data data/digits.csv --out ista.safetensors
    circ run examples/ista.circ --params ista.safetensors --data data/digits.csv --values h --out codes.csv
    bench/.venv/bin/python bench/e7_sparse_coding.py codes.csv ista.safetensors --png docs/e7_atoms.png

numpy only (bench/requirements.txt); the PNG is written with zlib, atomically (temp file, rename).
"""
import argparse
import json
import math
import os
import struct
import tempfile
import zlib

import numpy as np


def read_csv(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
    return header, np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


def read_safetensors(path):
    """Every tensor of a safetensors file as float64 arrays (F32 or F64)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        meta = json.loads(f.read(n))
        blob = f.read()
    out = {}
    for name, t in meta.items():
        if name == "__metadata__":
            continue
        dtype = {"F32": "<f4", "F64": "<f8"}[t["dtype"]]
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(blob[a:b], dtype=dtype).astype(np.float64).reshape(t["shape"])
    return out


def pca_mse(pixels, k):
    """Mean squared error of the best rank-k reconstruction of the centered pixels: the sum of the
    covariance's eigenvalues past the k-th, over the number of pixels."""
    c = pixels - pixels.mean(axis=0)
    lam = np.sort(np.linalg.eigvalsh(c.T @ c / len(c)))[::-1]
    return lam[k:].sum() / pixels.shape[1]


def write_png(path, gray):
    """An 8-bit grayscale PNG of the 2-D uint8 array `gray`, written atomically."""
    h, w = gray.shape
    raw = b"".join(b"\x00" + gray[r].tobytes() for r in range(h))

    def chunk(tag, data):
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".e7-", suffix=".png")
    with os.fdopen(fd, "wb") as f:
        f.write(png)
    os.replace(tmp, path)


def atoms_image(atoms, scale=6, gap=2):
    """The atoms (rows, 64 pixels each) as 8×8 tiles on a grid, each scaled to its own largest
    magnitude, sorted by how often they are used is up to the caller."""
    k = len(atoms)
    cols = int(math.ceil(math.sqrt(k)))
    rows = int(math.ceil(k / cols))
    tile = 8 * scale
    img = np.full((rows * (tile + gap) + gap, cols * (tile + gap) + gap), 255, dtype=np.uint8)
    for i, a in enumerate(atoms):
        m = np.abs(a).max() or 1.0
        t = np.clip(128 + 127 * a.reshape(8, 8) / m, 0, 255).astype(np.uint8)
        t = np.kron(t, np.ones((scale, scale), dtype=np.uint8))
        r, c = divmod(i, cols)
        y, x = gap + r * (tile + gap), gap + c * (tile + gap)
        img[y : y + tile, x : x + tile] = t
    return img


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("codes", help="the CSV `circ run --values h` wrote")
    p.add_argument("params", help="the checkpoint `circ train` wrote")
    p.add_argument("--data", default="data/digits.csv")
    p.add_argument("--png", help="write the atoms here")
    args = p.parse_args()

    header, table = read_csv(args.data)
    pixels = table[:, [i for i, c in enumerate(header) if c.startswith("pixel_")]]
    header, run = read_csv(args.codes)
    mean = run[:, [i for i, c in enumerate(header) if c.startswith("pixels_") and c.endswith(".mean")]]
    h = run[:, [i for i, c in enumerate(header) if c.startswith("h.")]]
    assert mean.shape == pixels.shape, (mean.shape, pixels.shape)
    active = (h != 0).sum(axis=1)
    mse = ((pixels - mean) ** 2).mean()
    s = active.mean()
    print(f"rows {len(pixels)}, atoms {h.shape[1]}")
    print(f"active atoms per digit: mean {s:.2f} ({s / h.shape[1]:.1%} of the atoms), min {active.min()}, max {active.max()}")
    print(f"atoms used by some digit: {(h != 0).any(axis=0).sum()} of {h.shape[1]}")
    print(f"reconstruction MSE: {mse:.3f} gray levels²")
    for k in sorted({math.floor(s), math.ceil(s)}):
        print(f"PCA with {k} components: {pca_mse(pixels, k):.3f} gray levels²")

    t = read_safetensors(args.params)
    d = t["d"]
    a = d / np.sqrt((d * d).sum(axis=1, keepdims=True))
    gram = a @ a.T
    eta = 1 / np.abs(gram).sum(axis=1).max()
    lam = np.linalg.eigvalsh(gram).max()
    print(f"step: η = {eta:.4f}, λmax(a aᵀ) = {lam:.3f}, η·λmax = {eta * lam:.3f} (stable if ≤ 1)")
    if args.png:
        order = np.argsort(-(h != 0).sum(axis=0), kind="stable")
        write_png(args.png, atoms_image(a[order] * np.sign(t["g"][order])[:, None]))
        print(f"wrote {args.png} (atoms by how many digits use them, most first)")


if __name__ == "__main__":
    main()

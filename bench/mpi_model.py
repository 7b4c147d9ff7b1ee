#!/usr/bin/env python3
"""The scaling model of docs/distributed.md: efficiency of synchronous data-parallel training
with a ring allreduce, per model, network and process count. Prints the markdown table.

    python3 bench/mpi_model.py [--mlp-step-ms 0.708]

A step computes for T_c (each process its share: the per-process batch is fixed, so T_c does
not change with K) and then sums B bytes over K processes. A ring allreduce (reduce-scatter,
then all-gather) sends and receives 2(K-1)/K * B bytes per process in 2(K-1) rounds:

    T_ring = 2(K-1)/K * B / bw + 2(K-1) * alpha
    E      = T_c / (T_c + T_ring)             (no overlap: circ's step today)
    E_ovl  = T_c / max(T_c, T_ring)           (communication hidden behind the backward pass)

circ's default sum gathers on rank 0 and broadcasts (a fixed order): rank 0 receives (K-1) * B
and the broadcast tree sends ceil(log2 K) * B along its longest path:

    T_ordered = ((K-1) + ceil(log2 K)) * B / bw + (1 + ceil(log2 K)) * alpha
"""
import argparse
import math

# circ's fused buffer is f64: 8 bytes per gradient value (Adam and SGD send no curvature;
# newton and bayes double it), plus 4 values of sums and the failure flag.
BYTES_PER_VALUE = 8

# 784*256+256 + 256*256+256 + 256*10+10: the 784-256-256-10 MLP of benches/models/mlp784.circ.
MLP_PARAMS = 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10

NETWORKS = [
    # name, bandwidth (bytes/s), latency per message (s)
    ("10 Gb/s Ethernet", 10e9 / 8, 25e-6),
    ("25 GB/s (200 Gb/s InfiniBand HDR class)", 25e9, 3e-6),
]


def ring(k, b, bw, alpha):
    return 2 * (k - 1) / k * b / bw + 2 * (k - 1) * alpha


def ordered(k, b, bw, alpha):
    lg = math.ceil(math.log2(k))
    return ((k - 1) + lg) * b / bw + (1 + lg) * alpha


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mlp-step-ms", type=float, default=0.708,
                    help="measured compute time of one MLP step at 128 rows (README CPU table)")
    ap.add_argument("--gpu-tflops", type=float, default=100.0,
                    help="assumed sustained FLOP rate of one GPU for the 100M model")
    args = ap.parse_args()
    t_mlp = args.mlp_step_ms * 1e-3
    # The measured step's FLOP rate: 6 FLOP per parameter per row (forward 2, backward 4).
    rate = 6 * MLP_PARAMS * 128 / t_mlp
    big = 100e6
    models = [
        ("270k MLP, 128 rows/process, CPU (measured)", MLP_PARAMS, t_mlp),
        ("100M model, 128 rows/process, same CPU rate", big, 6 * big * 128 / rate),
        (f"100M model, 16k tokens/process, GPU at {args.gpu_tflops:g} TFLOP/s", big,
         6 * big * 16384 / (args.gpu_tflops * 1e12)),
    ]
    ks = [8, 64, 512]
    print(f"CPU rate from the measured step: {rate / 1e9:.0f} GFLOP/s; "
          f"MLP parameters: {MLP_PARAMS}; bytes per value: {BYTES_PER_VALUE}\n")
    print("| model | T_c per step | bytes summed | network | "
          + " | ".join(f"K = {k}: T_ring, E (E_ovl)" for k in ks) + " |")
    print("|---|--:|--:|---|" + "--:|" * len(ks))
    for name, params, tc in models:
        b = (params + 4) * BYTES_PER_VALUE
        for net, bw, alpha in NETWORKS:
            cells = []
            for k in ks:
                t = ring(k, b, bw, alpha)
                cells.append(f"{fmt_time(t)}, {tc / (tc + t):.0%} ({tc / max(tc, t):.0%})")
            print(f"| {name} | {fmt_time(tc)} | {b / 1e6:.2f} MB | {net} | " + " | ".join(cells) + " |")
    print()
    print("circ's default ordered sum (gather on rank 0, broadcast), same networks:")
    print()
    print("| model | network | " + " | ".join(f"K = {k}: T, E" for k in [2] + ks) + " |")
    print("|---|---|" + "--:|" * (len(ks) + 1))
    for name, params, tc in models[:2]:
        b = (params + 4) * BYTES_PER_VALUE
        for net, bw, alpha in NETWORKS:
            cells = []
            for k in [2] + ks:
                t = ordered(k, b, bw, alpha)
                cells.append(f"{fmt_time(t)}, {tc / (tc + t):.0%}")
            print(f"| {name} | {net} | " + " | ".join(cells) + " |")


def fmt_time(t):
    if t < 1e-3:
        return f"{t * 1e6:.0f} µs"
    if t < 1:
        return f"{t * 1e3:.2f} ms"
    return f"{t:.2f} s"


if __name__ == "__main__":
    main()

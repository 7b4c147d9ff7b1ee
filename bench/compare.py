#!/usr/bin/env python3
"""Turn the CPU benchmark's JSON lines into a markdown table: circ against numpy and JAX.

    compare.py target/bench-circ.jsonl target/bench-peers.jsonl   # read measurements
    compare.py                                                    # run both sides first

Each input line is one JSON object: {"bench": ID, "impl": "circ"|"numpy"|"jax", "median_ms": ...,
"mean_ms": ..., "min_ms": ..., "runs": ...} or {"bench": ..., "impl": ..., "mib": ...}. Lines
whose bench starts with "_" describe the environment (versions, threads, load). Anything that is
not such an object (cargo's own output, blank lines) is ignored. When an (impl, bench) pair occurs
twice, the later line wins, so a file of reruns can be appended.

On an idle machine the table shows medians: milliseconds for steps and compiles, GFLOP/s
(2N^3 / time) for sgemm, MiB for peak memory. Beside a busy process (CIRC_BENCH_BUSY_SHARE > 0,
set by bench/run.sh --contended) it shows means, the total time of the runs over their count,
and judges the goals by them; a second table shows the same runs' medians. There a run's time
is bimodal (it had both cores, or it waited out a time slice of the busy process), and an
implementation whose rare runs absorb every wait has a fast median while the same work in a row
takes it longer: the mean is what a training run of many steps takes per step. Ratios are
circ / peer in the table's unit, so for sgemm a ratio above 1 means circ is faster, and for
everything else a ratio below 1 does.
"""

import datetime
import json
import os
import subprocess
import sys

IMPLS = ("circ", "numpy", "jax")
NAMES = {"circ": "circ", "numpy": "numpy", "jax": "JAX"}
SGEMM = ("sgemm_256", "sgemm_512", "sgemm_1024", "sgemm_2048")
ORDER = ("mlp784_step", "digits_step", "mlp784_compile", "digits_compile") + SGEMM + (
    "mlp784_peak_memory",
)
DESCRIBE = {
    "mlp784_step": "SGD step, MLP 784-256-256-10, batch 128",
    "digits_step": "SGD step, MLP 64-128-10, batch 64",
    "mlp784_compile": "source → ready step, mlp784",
    "digits_compile": "source → ready step, digits",
    "mlp784_peak_memory": "peak memory of an mlp784 step",
}
for _n in SGEMM:
    DESCRIBE[_n] = f"C = A·B, {_n.split('_')[1]}² float32"

# bench -> (peer whose ratio is judged, test on the value, text); issue 16's goals: the 784 step
# ≤ 0.9× JAX idle and ≤ 1.0× beside a busy process, sgemm ≥ 0.8× numpy.
_CONTENDED = float(os.environ.get("CIRC_BENCH_BUSY_SHARE", "0") or 0) > 0
_MLP = 1.0 if _CONTENDED else 0.9
GOALS = {
    "mlp784_step": ("jax", lambda circ, r: r <= _MLP, f"circ/JAX ≤ {_MLP:.1f}"),
    "digits_step": ("jax", lambda circ, r: r <= 0.5, "circ/JAX ≤ 0.5"),
    "mlp784_compile": (None, lambda circ, r: circ < 50.0, "circ < 50 ms"),
    "digits_compile": (None, lambda circ, r: circ < 50.0, "circ < 50 ms"),
}
for _n in SGEMM:
    GOALS[_n] = ("numpy", lambda circ, r: r >= 0.8, "≥ 0.8× numpy")

# Benches a peer cannot have, and why.
NOT_APPLICABLE = {
    ("numpy", "mlp784_compile"): "numpy runs eagerly: nothing to compile",
    ("numpy", "digits_compile"): "numpy runs eagerly: nothing to compile",
}

def ORDER_KEY(bench):
    return (ORDER.index(bench) if bench in ORDER else len(ORDER), bench)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def unit(bench):
    if bench.startswith("sgemm_"):
        return "GFLOP/s"
    if bench.endswith("_memory"):
        return "MiB"
    return "ms"


# The statistic the goals are judged by (see the module's doc).
JUDGED = "mean_ms" if _CONTENDED else "median_ms"
STAT_NAME = {"mean_ms": "mean", "median_ms": "median"}


def value(line, bench, stat):
    """The number the table shows for one measurement line by statistic `stat`, or None."""
    u = unit(bench)
    if u == "MiB":
        return float(line["mib"]) if "mib" in line else None
    if stat not in line:
        return None
    ms = float(line[stat])
    if u == "GFLOP/s":
        n = int(bench.split("_")[1])
        return 2 * n**3 / (ms * 1e-3) / 1e9
    return ms


def fmt(v):
    if v is None:
        return "—"
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}×"


# The share of the CPUs the busy process of `bench/run.sh --contended` takes (one core's worth):
# expected, so only load beyond it is warned about.
EXPECTED_BUSY = float(os.environ.get("CIRC_BENCH_BUSY_SHARE", "0") or 0)


def parse(lines, results, env):
    for raw in lines:
        raw = raw.strip()
        if not raw.startswith("{"):
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or "bench" not in obj or "impl" not in obj:
            continue
        impl = str(obj["impl"]).lower()
        bench = str(obj["bench"])
        if bench.startswith("_"):
            e = env.setdefault(impl, {})
            for k, v in obj.items():
                if k in ("bench", "impl"):
                    continue
                if k == "other_cpu_share" and isinstance(e.get(k), (int, float)) and v is not None:
                    v = max(v, e[k])  # of several runs, the busiest
                e[k] = v
        else:
            results[(impl, bench)] = obj


def run_both():
    """Runs cargo bench and peers.py; returns their stdout lines."""
    circ = subprocess.run(
        ["cargo", "bench", "--bench", "cpu"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    if circ.returncode != 0:
        print(f"compare: cargo bench failed (exit {circ.returncode})", file=sys.stderr)
    venv_python = os.path.join(ROOT, "bench", ".venv", "bin", "python")
    python = venv_python if os.path.exists(venv_python) else sys.executable
    peers = subprocess.run(
        [python, os.path.join(ROOT, "bench", "peers.py")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    if peers.returncode != 0:
        print(f"compare: peers.py failed (exit {peers.returncode})", file=sys.stderr)
    return circ.stdout.splitlines() + peers.stdout.splitlines()


def cpu_header():
    model, cores, threads = None, None, None
    try:
        out = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True, check=True).stdout
        fields = {}
        for row in out.splitlines():
            if ":" in row:
                k, v = row.split(":", 1)
                fields.setdefault(k.strip(), v.strip())
        model = fields.get("Model name")
        threads = fields.get("CPU(s)")
        if fields.get("Core(s) per socket") and fields.get("Socket(s)"):
            cores = int(fields["Core(s) per socket"]) * int(fields["Socket(s)"])
    except (OSError, subprocess.CalledProcessError, ValueError):
        pass
    if model is None:
        try:
            with open("/proc/cpuinfo") as f:
                for row in f:
                    if row.startswith("model name"):
                        model = row.split(":", 1)[1].strip()
                        break
        except OSError:
            model = "unknown CPU"
    cores = cores or os.cpu_count()
    text = f"{model}, {cores} cores"
    if threads and str(threads) != str(cores):
        text += f" ({threads} threads)"
    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for row in f:
                if row.startswith("flags"):
                    flags = set(row.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    vector = [name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("fma", "FMA")) if flag in flags]
    if vector:
        text += f", {' '.join(vector)}"
    return text


def table(results, env, stat=JUDGED, notes=True):
    benches = [b for b in ORDER]
    benches += sorted({b for (_, b) in results if b not in ORDER})
    out = []
    date = datetime.date.today().isoformat()
    if notes:
        out.append(f"## circ CPU benchmark: {date}, {cpu_header()}")
    else:
        out.append(f"The same runs by their {STAT_NAME[stat]}s:")
    out.append("")
    out.append("| bench | unit | circ | numpy | JAX | circ/JAX | circ/numpy | goal |")
    out.append("|---|---|--:|--:|--:|--:|--:|---|")
    missing = {impl: [] for impl in IMPLS}
    not_applicable = []
    for bench in benches:
        vals = {}
        for impl in IMPLS:
            line = results.get((impl, bench))
            vals[impl] = value(line, bench, stat) if line else None
            if vals[impl] is None:
                if (impl, bench) in NOT_APPLICABLE:
                    not_applicable.append((impl, bench))
                elif impl == "circ" or bench in ORDER:  # peers only know the standard ids
                    missing[impl].append(bench)
        if all(v is None for v in vals.values()) and bench not in ORDER:
            continue
        ratios = {}
        for peer in ("jax", "numpy"):
            c, p = vals["circ"], vals[peer]
            ratios[peer] = c / p if c is not None and p not in (None, 0) else None
        cells = [
            f"`{bench}`",
            unit(bench),
            fmt(vals["circ"]),
            "n/a" if ("numpy", bench) in NOT_APPLICABLE and vals["numpy"] is None else fmt(vals["numpy"]),
            fmt(vals["jax"]),
            fmt_ratio(ratios["jax"]),
            fmt_ratio(ratios["numpy"]),
            goal_cell(bench, vals, ratios) if stat == JUDGED else "",
        ]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    if notes:
        out.extend(footnotes(results, env, missing, not_applicable))
    return "\n".join(out)


def goal_cell(bench, vals, ratios):
    if bench not in GOALS:
        return ""
    peer, test, text = GOALS[bench]
    circ = vals["circ"]
    r = ratios[peer] if peer else None
    if circ is None or (peer and r is None):
        who = "circ" if circ is None else NAMES[peer]
        return f"{text}: ? (no {who})"
    return f"{text}: {'✅' if test(circ, r) else '❌'}"


def footnotes(results, env, missing, not_applicable):
    notes = []
    fewest = {}
    for (impl, _), line in results.items():
        if isinstance(line.get("runs"), int):
            fewest[impl] = min(fewest.get(impl, line["runs"]), line["runs"])
    runs = ", ".join(f"{NAMES.get(i, i)} ≥ {fewest[i]}" for i in IMPLS if i in fewest)
    stat = STAT_NAME[JUDGED]
    notes.append(
        f"{stat.capitalize()}s of timed runs after warm-up (runs per row: {runs}); GFLOP/s = 2N³ / {stat}; "
        "ratios are circ ÷ peer in the row's unit (for sgemm, higher is better for circ; "
        "elsewhere lower is)."
    )
    if JUDGED == "mean_ms":
        notes.append(
            "- Beside a busy process a run's time is bimodal: the goals are judged by the mean "
            "(the runs' total time over their count, what a training run takes per step), the "
            "medians follow below."
        )
    if EXPECTED_BUSY > 0:
        notes.append(
            "- Measured beside one busy process (`sh -c 'while :; do :; done'`, started and stopped "
            f"by `bench/run.sh --contended`): {EXPECTED_BUSY:.0%} of the CPUs is its expected share."
        )
    for impl in IMPLS:
        if env.get(impl, {}).get("skipped"):
            notes.append(f"- {NAMES[impl]}: skipped ({env[impl]['skipped']}).")
        elif impl not in env and not any(i == impl for (i, _) in results):
            notes.append(f"- {NAMES[impl]}: skipped (no measurements in the input; not installed or not run).")
        elif missing[impl]:
            notes.append(f"- {NAMES[impl]}: no measurement for {', '.join(missing[impl])} (shown as —).")
    reasons = {}
    for impl, bench in not_applicable:
        reasons.setdefault((impl, NOT_APPLICABLE[(impl, bench)]), []).append(f"`{bench}`")
    for (impl, why), benches in reasons.items():
        notes.append(f"- {NAMES[impl]} {', '.join(benches)}: n/a, {why}.")
    for impl in IMPLS:
        e = env.get(impl)
        if not e:
            continue
        parts = []
        for key in ("version", "gemm_kernels", "threads", "jaxlib", "blas", "blas_core", "blas_threads", "device",
                    "os_threads_after_run", "xla_flags", "other_cpu_share"):
            if key in e and e[key] not in ("", None):
                parts.append(f"{key} {e[key]}")
        if parts:
            notes.append(f"- {NAMES[impl]} environment: {', '.join(parts)}.")
        share = e.get("other_cpu_share")
        if isinstance(share, (int, float)) and share > EXPECTED_BUSY + 0.1:
            notes.append(
                f"- ⚠ {NAMES[impl]}: other processes used {share:.0%} of the CPUs while it ran: "
                "its timings are likely slow."
            )
    grouped = {}
    for (impl, bench), line in sorted(results.items(), key=lambda kv: (kv[0][0], ORDER_KEY(kv[0][1]))):
        if line.get("note"):
            grouped.setdefault((impl, line["note"]), []).append(bench)
    for (impl, note), benches in grouped.items():
        names = ", ".join(f"`{b}`" for b in benches)
        notes.append(f"- {NAMES.get(impl, impl)} {names}: {note}.")
    return notes


def main():
    args = sys.argv[1:]
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        return
    results, env = {}, {}
    if args:
        for path in args:
            with open(path) as f:
                parse(f, results, env)
    else:
        parse(run_both(), results, env)
    if not results:
        print("compare: no measurements found", file=sys.stderr)
        sys.exit(1)
    print(table(results, env))
    if JUDGED != "median_ms":
        print()
        print(table(results, env, "median_ms", notes=False))


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# The CPU benchmark end to end: circ (cargo bench --bench cpu) against numpy and JAX on CPU.
# Writes target/bench-circ.jsonl, target/bench-peers.jsonl and target/bench.md, and prints
# the table. Run it on an otherwise idle machine: the table warns when other processes
# took CPU time while the peers ran.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mkdir -p target

if [ ! -x bench/.venv/bin/python ]; then
    echo "run: bench/.venv is missing; running bench/setup.sh" >&2
    bash bench/setup.sh >&2
fi

echo "run: cargo bench --bench cpu > target/bench-circ.jsonl" >&2
cargo bench --bench cpu > target/bench-circ.jsonl

echo "run: bench/.venv/bin/python bench/peers.py > target/bench-peers.jsonl" >&2
bench/.venv/bin/python bench/peers.py > target/bench-peers.jsonl

echo "run: bench/compare.py target/bench-circ.jsonl target/bench-peers.jsonl" >&2
bench/.venv/bin/python bench/compare.py target/bench-circ.jsonl target/bench-peers.jsonl \
    | tee target/bench.md

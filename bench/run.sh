#!/usr/bin/env bash
# The CPU benchmark end to end: circ (cargo bench --bench cpu) against numpy and JAX on CPU.
# Writes target/bench-circ.jsonl, target/bench-peers.jsonl and target/bench.md, and prints
# the table. Run it on an otherwise idle machine: the table warns when other processes
# took CPU time while the peers ran.
#
#   bash bench/run.sh               the table on an idle machine
#   bash bench/run.sh --contended   the same table beside one busy process that this script
#                                   starts (`sh -c 'while :; do :; done'`) and stops; files
#                                   target/bench-contended-*.jsonl and target/bench-contended.md
#   bash bench/run.sh --both        both, idle first, then contended, in one run
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mkdir -p target

modes=(idle)
case "${1:-}" in
    "") ;;
    --contended) modes=(contended) ;;
    --both) modes=(idle contended) ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run: unknown argument '$1' (expected --contended or --both)" >&2; exit 2 ;;
esac

if [ ! -x bench/.venv/bin/python ]; then
    echo "run: bench/.venv is missing; running bench/setup.sh" >&2
    bash bench/setup.sh >&2
fi
# Build first, so the busy process shares the CPU with the measurements, not with the compiler.
cargo bench --bench cpu --no-run >&2

busy=""
stop_busy() {
    if [ -n "$busy" ]; then
        kill "$busy" 2>/dev/null || true
        wait "$busy" 2>/dev/null || true
        busy=""
    fi
}
trap stop_busy EXIT

for mode in "${modes[@]}"; do
    prefix=bench
    export CIRC_BENCH_BUSY_SHARE=0
    if [ "$mode" = contended ]; then
        prefix=bench-contended
        sh -c 'while :; do :; done' &
        busy=$!
        CIRC_BENCH_BUSY_SHARE=$(python3 -c "import os; print(1 / (os.cpu_count() or 1))")
        echo "run: beside one busy process (pid $busy), which the run stops at its end" >&2
    fi
    echo "run: cargo bench --bench cpu > target/$prefix-circ.jsonl" >&2
    cargo bench --bench cpu > "target/$prefix-circ.jsonl"

    echo "run: bench/.venv/bin/python bench/peers.py > target/$prefix-peers.jsonl" >&2
    bench/.venv/bin/python bench/peers.py > "target/$prefix-peers.jsonl"

    echo "run: bench/compare.py target/$prefix-circ.jsonl target/$prefix-peers.jsonl" >&2
    [ "$mode" = contended ] && echo "### Beside one busy process" || echo "### Idle"
    bench/.venv/bin/python bench/compare.py "target/$prefix-circ.jsonl" "target/$prefix-peers.jsonl" \
        | tee "target/$prefix.md"
    stop_busy
done

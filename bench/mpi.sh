#!/usr/bin/env bash
# Data-parallel training step time (docs/distributed.md): the 784-256-256-10 MLP of
# benches/models/mlp784.circ trained by `circ train` on one process, and on two under mpirun,
# with the machine's cores split between the processes (--threads), and the bytes each step sums.
#
#   bench/mpi.sh                 # ROWS=8192 EPOCHS=4 by default; needs mpirun and libclang
#   PROFILE=dev bench/mpi.sh     # the test profile's build (opt-level 2, debug assertions:
#                                # the processes also compare a parameter hash every 64 steps)
#
# Step time = an epoch's seconds / its steps (no validation), the median over epochs 2..EPOCHS
# (epoch 1 warms the caches). Global batches of 128 rows (on two processes: 64 rows each) and
# of 256 rows (128 each, the single-process benchmark's batch per process). The data are
# random (seeded): x uniform in [0, 1), labels uniform over 10 classes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-8192}
EPOCHS=${EPOCHS:-4}
OUT=target/bench-mpi
mkdir -p "$OUT"
if [ "${PROFILE:-release}" = dev ]; then
    cargo build --features mpi --quiet
    BIN=target/debug/circ
else
    cargo build --release --features mpi --quiet
    BIN=target/release/circ
fi
echo "build: ${PROFILE:-release} ($BIN)"
DATA="$OUT/mlp784-$ROWS.csv"
if [ ! -f "$DATA" ]; then
    python3 - "$DATA" "$ROWS" <<'EOF'
import os, random, sys
path, rows = sys.argv[1], int(sys.argv[2])
rng = random.Random(0)
with open(path + ".tmp", "w") as f:
    f.write(",".join([f"p{i}" for i in range(784)] + ["label"]) + "\n")
    for _ in range(rows):
        f.write(",".join(f"{rng.random():.3f}" for _ in range(784)) + f",{rng.randrange(10)}\n")
os.replace(path + ".tmp", path)
EOF
fi
CORES=$(nproc)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $CORES cores; $(grep -o -m1 'avx512f' /proc/cpuinfo || echo 'no AVX-512')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| processes | threads each | global batch | rows per process | step (median ms) | bytes summed per step |"
echo "|--:|--:|--:|--:|--:|--:|"
for batch in 128 256; do
    for np in 1 2; do
        threads=$(( CORES / np > 0 ? CORES / np : 1 ))
        metrics="$OUT/np$np-b$batch.jsonl"
        log="$OUT/np$np-b$batch.log"
        args=(train benches/models/mlp784.circ --data "$DATA" --epochs "$EPOCHS" --batch "$batch"
              --threads "$threads" --metrics "$metrics")
        if [ "$np" = 1 ]; then
            "$BIN" "${args[@]}" >/dev/null 2>"$log"
            bytes=0
        else
            mpirun --oversubscribe -np "$np" --bind-to none "$BIN" "${args[@]}" >/dev/null 2>"$log"
            bytes=$(sed -n 's/.*each step sums \([0-9]*\) bytes.*/\1/p' "$log")
        fi
        ms=$(python3 - "$metrics" <<'EOF'
import json, statistics, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
per = [1000 * l["seconds"] / l["steps"] for l in lines[1:]] or [1000 * lines[0]["seconds"] / lines[0]["steps"]]
print(f"{statistics.median(per):.3f}")
EOF
)
        echo "| $np | $threads | $batch | $(( batch / np )) | $ms | $bytes |"
    done
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

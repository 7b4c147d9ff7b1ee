#!/usr/bin/env bash
# Issue 12: second-order rules at their defaults on examples/mlp_digits.circ (60 epochs, batch
# 64, its 20% held-out split), against the example's own adam(lr = 1e-2). For each rule and seed
# 0-3: the held-out accuracy at the last epoch (`valid_accuracy` of `--metrics -`) and the wall
# time of the 60 epochs. Prints one table row per rule: mean (min .. max) over the seeds.
# Run from the repository root; builds the release binary first (CIRC=path uses that binary).
#   bash bench/second_order.sh       # SEEDS="0 1" RULES="newton(); bayes()" for fewer runs
set -euo pipefail
cd "$(dirname "$0")/.."
circ=${CIRC:-target/release/circ}
[[ -n "${CIRC:-}" ]] || cargo build --release --quiet
model=examples/mlp_digits.circ
SEEDS=${SEEDS:-"0 1 2 3"}
EPOCHS=${EPOCHS:-60}
if [[ -z "${RULES:-}" ]]; then
    RULES=("adam(lr = 1e-2)" "newton()" "bayes()" "newton(clip = false)" "bayes(clip = false)")
else
    IFS=';' read -r -a RULES <<< "$RULES"
fi

# mean (min .. max) of the numbers on standard input
summary() { awk '{ s += $1; if (NR == 1 || $1 < lo) lo = $1; if (NR == 1 || $1 > hi) hi = $1 } END { printf "%.3f (%.3f .. %.3f)", s / NR, lo, hi }'; }

echo "| rule | held-out accuracy, epoch $EPOCHS | seconds per run |"
echo "|---|---|---|"
for rule in "${RULES[@]}"; do
    rule=${rule#"${rule%%[![:space:]]*}"}   # without leading blanks
    accs=""; secs=""; failed=""
    for seed in $SEEDS; do
        start=$(date +%s.%N)
        # A run stopped by a non-finite loss counts as accuracy 0 and is named.
        if out=$("$circ" train "$model" --data data/digits.csv --seed "$seed" --epochs "$EPOCHS" \
            --optimizer "$rule" --metrics - --quiet 2>/dev/null); then
            acc=$(tail -n 1 <<< "$out" | sed -E 's/.*"valid_accuracy":([^,}]*).*/\1/')
        else
            acc=0; failed+=" seed $seed diverged;"
        fi
        end=$(date +%s.%N)
        accs+="$acc"$'\n'; secs+="$(echo "$end - $start" | bc)"$'\n'
    done
    printf '| `%s` | %s%s | %s |\n' "$rule" "$(printf '%s' "$accs" | summary)" "$failed" "$(printf '%s' "$secs" | summary)"
done

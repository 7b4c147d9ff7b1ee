#!/usr/bin/env bash
# E9 (docs/experiments.md): catastrophic forgetting of examples/forgetting.circ. Task A is
# data/digits.csv, task B data/digits_permuted.csv (the same digits, pixels permuted). For each
# method and seed 0-3: 20 epochs on A (--out), then 20 on B (--resume --epochs 40), then the
# accuracy on every row of A and of B (`circ run`). Prints one table row per method: mean and
# (min .. max) over the seeds. Run from the repository root; builds the release binary first.
#   bash bench/forgetting.sh            # SEEDS="0 1" bash bench/forgetting.sh for fewer seeds
#   METHODS="ewc" bash bench/forgetting.sh   # only some rows: sgd adam bayes drop joint ewc
set -euo pipefail
cd "$(dirname "$0")/.."
# CIRC=path/to/circ uses that binary instead of building the release one.
if [ -z "${CIRC:-}" ]; then cargo build --release --quiet; fi
circ=${CIRC:-target/release/circ}
model=examples/forgetting.circ
A=data/digits.csv
B=data/digits_permuted.csv
SEEDS=${SEEDS:-"0 1 2 3"}
METHODS=${METHODS:-"sgd adam bayes drop joint ewc"}
want() { [[ " $METHODS " == *" $1 "* ]]; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A and B in one file (B's rows after A's): the joint-training upper bound.
{ cat "$A"; tail -n +2 "$B"; } > "$work/AB.csv"

# Accuracy of the checkpoint $1 on the data file $2: the share of rows whose most likely class
# (`label.class`, the first column `circ run` writes) is the file's `label` (its last column).
accuracy() {
    "$circ" run "$model" --params "$1" --data "$2" --out "$work/pred.csv" 2>/dev/null
    paste -d, <(tail -n +2 "$work/pred.csv" | cut -d, -f1) <(tail -n +2 "$2" | awk -F, '{print $NF}') |
        awk -F, '{ n++; if ($1 == $2) k++ } END { printf "%.4f", k / n }'
}

# mean (min .. max) of the numbers on standard input
summary() { awk '{ s += $1; if (NR == 1 || $1 < lo) lo = $1; if (NR == 1 || $1 > hi) hi = $1 } END { printf "%.3f (%.3f .. %.3f)", s / NR, lo, hi }'; }

# run NAME RULE_ON_A RULE_ON_B: sequential training, one line of the table.
run() {
    local name=$1 ruleA=$2 ruleB=$3 a1 a2 b2
    : > "$work/a1"; : > "$work/a2"; : > "$work/b2"
    for seed in $SEEDS; do
        local k="$work/$seed.safetensors"
        "$circ" train "$model" --data "$A" --out "$k" --seed "$seed" --epochs 20 --optimizer "$ruleA" --quiet >/dev/null
        accuracy "$k" "$A" >> "$work/a1"; echo >> "$work/a1"
        "$circ" train "$model" --data "$B" --out "$k" --seed "$seed" --epochs 40 --optimizer "$ruleB" --resume --quiet >/dev/null 2>&1
        accuracy "$k" "$A" >> "$work/a2"; echo >> "$work/a2"
        accuracy "$k" "$B" >> "$work/b2"; echo >> "$work/b2"
    done
    printf '| %-28s | %s | %s | %s |\n' "$name" "$(summary < "$work/a1")" "$(summary < "$work/a2")" "$(summary < "$work/b2")"
}

# EWC: adam on A (its checkpoint stores the posterior precision P of every weight), then adam on B
# with the penalty ½·λ·Σ P_k (θ_k − θ*_k)² toward A's weights θ* (`--prior-from`), for each λ in
# $LAMBDAS. Task A is trained once per seed; one table row per λ.
ewc() {
    local rule="adam(lr = 1e-2)" lambda seed
    for seed in $SEEDS; do
        "$circ" train "$model" --data "$A" --out "$work/$seed.A.safetensors" --seed "$seed" --epochs 20 --optimizer "$rule" --quiet >/dev/null
        accuracy "$work/$seed.A.safetensors" "$A" >> "$work/ewc.a1"; echo >> "$work/ewc.a1"
    done
    for lambda in ${LAMBDAS:-1 10 100}; do
        : > "$work/a2"; : > "$work/b2"
        for seed in $SEEDS; do
            local k="$work/$seed.ewc.safetensors"
            cp "$work/$seed.A.safetensors" "$k"
            "$circ" train "$model" --data "$B" --out "$k" --seed "$seed" --epochs 40 --optimizer "$rule" --resume \
                --prior-from "$work/$seed.A.safetensors" --prior-weight "$lambda" --quiet >/dev/null 2>&1
            accuracy "$k" "$A" >> "$work/a2"; echo >> "$work/a2"
            accuracy "$k" "$B" >> "$work/b2"; echo >> "$work/b2"
        done
        printf '| %-28s | %s | %s | %s |\n' "adam + EWC, λ = $lambda" "$(summary < "$work/ewc.a1")" "$(summary < "$work/a2")" "$(summary < "$work/b2")"
    done
}

echo "| method (A, then B) | A after A | A after B | B after B |"
echo "|---|---|---|---|"
if want sgd; then run "sgd(lr = 1e-3)" "sgd(lr = 1e-3)" "sgd(lr = 1e-3)"; fi
if want adam; then run "adam(lr = 1e-2)" "adam(lr = 1e-2)" "adam(lr = 1e-2)"; fi
if want bayes; then run "bayes(lr = 0.1)" "bayes(lr = 0.1)" "bayes(lr = 0.1)"; fi
if want drop; then
    run "sgd, lr ÷10 on B" "sgd(lr = 1e-3)" "sgd(lr = 1e-4)"
    run "adam, lr ÷10 on B" "adam(lr = 1e-2)" "adam(lr = 1e-3)"
fi
if want ewc; then : > "$work/ewc.a1"; ewc; fi
if want joint; then
    # Joint training: 20 epochs on A and B together (as many steps as 20 + 20 on each alone).
    : > "$work/j"; : > "$work/jb"
    for seed in $SEEDS; do
        "$circ" train "$model" --data "$work/AB.csv" --out "$work/j.safetensors" --seed "$seed" --epochs 20 --optimizer "adam(lr = 1e-2)" --quiet >/dev/null
        accuracy "$work/j.safetensors" "$A" >> "$work/j"; echo >> "$work/j"
        accuracy "$work/j.safetensors" "$B" >> "$work/jb"; echo >> "$work/jb"
    done
    printf '| %-28s | %s | %s | %s |\n' "joint A+B, adam(lr = 1e-2)" "–" "$(summary < "$work/j")" "$(summary < "$work/jb")"
fi

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

# BIG=1: a 784-256-256-10 ReLU network (issue 12) on the digits upsampled to 28×28 (each pixel
# repeated 3×3, a border of 2), 20 epochs, batches of 64, 20% held out, seed 0 and 1.
if [[ -n "${BIG:-}" ]]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    awk -F, 'NR == 1 { for (i = 0; i < 784; i++) printf "p%d,", i; print "label"; next }
        { for (r = 0; r < 28; r++) for (c = 0; c < 28; c++) {
              v = 0; if (r >= 2 && r < 26 && c >= 2 && c < 26) v = $(int((r - 2) / 3) * 8 + int((c - 2) / 3) + 1)
              printf "%s,", v }
          print $NF }' data/digits.csv > "$work/digits28.csv"
    cat > "$work/big.circ" <<'MODEL'
import nn
model big {
    data pixels: [N, 784] = csv("p0" .. "p783")
    data label: int[N]
    let x = pixels / 16
    let l1 = nn.dense(784, 256)
    let l2 = nn.dense(256, 256)
    let l3 = nn.dense(256, 10)
    label ~ categorical(logits = l3(relu(l2(relu(l1(x))))))
    train { epochs = 20, batch = 64, valid = 0.2, seed = 0 }
}
MODEL
    echo
    echo "| 784-256-256-10, 20 epochs | held-out accuracy, seed 0, 1 | seconds per run |"
    echo "|---|---|---|"
    for rule in "adam(lr = 1e-2)" "adam(lr = 1e-3)" "newton()" "bayes()" "newton(clip = false)"; do
        accs=""; secs=""
        for seed in 0 1; do
            start=$(date +%s.%N)
            if out=$("$circ" train "$work/big.circ" --data "$work/digits28.csv" --seed "$seed" \
                --optimizer "$rule" --metrics - --quiet 2>/dev/null); then
                acc=$(tail -n 1 <<< "$out" | sed -E 's/.*"valid_accuracy":([^,}]*).*/\1/')
            else
                acc="diverged"
            fi
            end=$(date +%s.%N)
            accs+="${acc:0:6} "; secs+="$(printf '%.1f' "$(echo "$end - $start" | bc)") "
        done
        printf '| `%s` | %s | %s |\n' "$rule" "$accs" "$secs"
    done
fi

#!/usr/bin/env bash
# Compile time against model size (issue 16): the chain `let h = x @ w`, then
# `repeat K { let h = tanh(h) * 0.5 + h * 0.5 }`, `y ~ normal(h, 1)`, on 2 inputs and 4 rows.
# Prints, for each K, the seconds of `circ check`, `circ emit --graph step`, JAX's compile (K ≤ 1000),
# `circ train --epochs 1 --backend cpu` and `--backend interp`, and the microseconds per
# statement of each: flat when compile time is linear in the model.
#   bash bench/compile_scaling.sh                 # K = 100 250 500 1000 4000 10000 40000
#   bash bench/compile_scaling.sh 100 1000        # chosen sizes
# K above 1000 is written `repeat K/1000 { repeat 1000 { … } }` (a repeat counts to 1000).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cargo build --release --quiet
circ="$root/target/release/circ"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100 250 500 1000 4000 10000 40000)
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
printf 'x1,x2,y\n0.1,0.2,0.3\n0.4,-0.5,0.1\n1,0.5,-0.2\n-0.3,0.7,0.9\n' > "$dir/d.csv"

model() {
    local k=$1 body='let h = tanh(h) * 0.5 + h * 0.5'
    local rep="repeat $k { $body }"
    if [ "$k" -gt 1000 ]; then rep="repeat $((k / 1000)) { repeat 1000 { $body } }"; fi
    cat <<M
model chain {
    data x: [N, 2] = csv("x1" .. "x2")
    data y: [N]
    param w: [2] ~ normal(0, 1)
    let h = x @ w
    $rep
    y ~ normal(h, 1)
    train { optimizer = sgd(lr = 0.01), epochs = 1, batch = 4 }
}
M
}

# Seconds one command takes (wall clock), its output discarded.
secs() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" > /dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}

# JAX's compile of the same SGD step (bench/compile_scaling_jax.py), for K up to 1000 only:
# beyond, its compile takes minutes.
jax=""
[ -x bench/.venv/bin/python ] && jax=bench/.venv/bin/python
jax_secs() {
    if [ -n "$jax" ] && [ "$1" -le 1000 ]; then
        "$jax" bench/compile_scaling_jax.py "$1" 2>/dev/null | awk '{print $2}'
    else
        echo —
    fi
}

printf '| K | check s | emit s | train cpu s | train interp s | JAX compile s | cpu µs/K | emit µs/K |\n'
printf '|--:|--:|--:|--:|--:|--:|--:|--:|\n'
for k in "${sizes[@]}"; do
    f="$dir/k$k.circ"
    model "$k" > "$f"
    c=$(secs "$circ" check "$f")
    e=$(secs "$circ" emit "$f" --graph step)
    t=$(secs "$circ" train "$f" --data "$dir/d.csv" --epochs 1 --backend cpu)
    if [ "$k" -le 10000 ]; then
        i=$(secs "$circ" train "$f" --data "$dir/d.csv" --epochs 1 --backend interp)
    else
        i=nan
    fi
    j=$(jax_secs "$k")
    printf '| %d | %.2f | %.2f | %.2f | %s | %s | %.0f | %.0f |\n' "$k" "$c" "$e" "$t" \
        "$( [ "$i" = nan ] && echo — || printf '%.2f' "$i")" "$j" "$(echo "$t * 1000000 / $k" | bc -l)" \
        "$(echo "$e * 1000000 / $k" | bc -l)"
done

#!/usr/bin/env bash
# The OpenCL backend's GPU benchmark (issue 11), in two halves:
#   bash bench/gpu.sh build   # on a developer machine: builds the benchmark (benches/opencl.rs)
#                             # in release mode into bench/gpu-bin/ (ignored by git)
#   bash bench/gpu.sh run     # on the GPU machine (no Rust there): the OpenCL platforms it sees,
#                             # circ's table, then PyTorch and JAX beside it where they import,
#                             # `circ train` of the digits example on the GPU, and the backend
#                             # comparison tests (tests/executors.rs) run against the GPU;
#                             # writes one markdown file, $OUT/gpu.md (bench/gpu.md without $OUT)
# With the device tool: run `bash bench/gpu.sh run` with carry ["bench/gpu-bin"].
# Goals (H100/H200): sgemm >= 0.8x cuBLAS fp32; 4096 MLP step <= 1.0x jax.jit; bprop2 <= 2x gradient.
set -uo pipefail
cd "$(dirname "$0")/.."
# The path of the executable cargo builds for target $1 with `cargo $2 $3 $4 --no-run`.
executable() {
    cargo "$2" "$3" "$4" --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] and m.get("executable"):
        print(m["executable"])' "$1" | tail -1
}
case "${1:-}" in
build)
    set -e
    mkdir -p bench/gpu-bin
    cp "$(executable opencl bench --bench opencl)" bench/gpu-bin/opencl-bench
    cp bench/gpu_peers.py bench/gpu-bin/
    cargo build --release --bin circ
    cp target/release/circ bench/gpu-bin/circ
    cp "$(executable executors test --test executors)" bench/gpu-bin/executors-test
    strip bench/gpu-bin/opencl-bench bench/gpu-bin/circ bench/gpu-bin/executors-test
    # The test binary finds examples/ through the path it was built in.
    pwd >bench/gpu-bin/manifest-dir
    du -sh bench/gpu-bin
    echo "built bench/gpu-bin/opencl-bench ($(ldd bench/gpu-bin/opencl-bench | wc -l) shared libraries)"
    ;;
run)
    out="${OUT:-bench}/gpu.md"
    {
        echo "# circ OpenCL benchmark, $(date -u +%Y-%m-%d)"
        echo
        echo '```'
        ls /etc/OpenCL/vendors/ 2>&1
        echo "OCL_ICD_FILENAMES=${OCL_ICD_FILENAMES:-}"
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | head -3
        echo '```'
        echo
        timeout 240 bench/gpu-bin/opencl-bench ${CIRC_BENCH_ARGS:-} 2>bench-stderr.txt || echo "circ's benchmark failed: $(tail -3 bench-stderr.txt)"
        echo '```'
        cat bench-stderr.txt
        echo '```'
        echo
        timeout 180 python3 bench/gpu-bin/gpu_peers.py 2>&1 || echo "(the Python peers did not run)"
        echo
        echo '## `circ train` on the GPU, and the backend comparison tests against it'
        echo '```'
        for b in opencl cpu; do
            start=$(date +%s%N)
            timeout 120 bench/gpu-bin/circ train examples/mlp_digits.circ --data data/digits.csv \
                --backend "$b" --out "/tmp/digits-$b.safetensors" 2>&1 | tail -2
            echo "circ train --backend $b: $(( ($(date +%s%N) - start) / 1000000 )) ms wall"
        done
        manifest=$(cat bench/gpu-bin/manifest-dir)
        mkdir -p "$(dirname "$manifest")" && [ -e "$manifest" ] || ln -s "$PWD" "$manifest"
        timeout 200 bench/gpu-bin/executors-test opencl --test-threads 1 2>&1 | grep -E "^test |test result|worst|panicked|failures" | head -40
        echo '```'
    } | tee "$out"
    rm -f bench-stderr.txt
    ;;
*)
    echo "usage: bash bench/gpu.sh build|run" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# The OpenCL backend's GPU benchmark (issue 11), in two halves:
#   bash bench/gpu.sh build   # on a developer machine: builds the benchmark (benches/opencl.rs)
#                             # in release mode into bench/gpu-bin/ (ignored by git)
#   bash bench/gpu.sh run     # on the GPU machine (no Rust there): the OpenCL platforms it sees,
#                             # circ's table, then PyTorch and JAX beside it where they import;
#                             # writes one markdown file, $OUT/gpu.md (bench/gpu.md without $OUT)
# With the device tool: run `bash bench/gpu.sh run` with carry ["bench/gpu-bin"].
# Goals (H100/H200): sgemm >= 0.8x cuBLAS fp32; 4096 MLP step <= 1.0x jax.jit; bprop2 <= 2x gradient.
set -uo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
build)
    set -e
    cargo bench --bench opencl --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "opencl" and m.get("executable"):
        print(m["executable"])' >/tmp/circ-gpu-bench-path
    mkdir -p bench/gpu-bin
    cp "$(tail -1 /tmp/circ-gpu-bench-path)" bench/gpu-bin/opencl-bench
    cp bench/gpu_peers.py bench/gpu-bin/
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
        timeout 420 bench/gpu-bin/opencl-bench ${CIRC_BENCH_ARGS:-} 2>bench-stderr.txt || echo "circ's benchmark failed: $(tail -3 bench-stderr.txt)"
        echo '```'
        cat bench-stderr.txt
        echo '```'
        echo
        timeout 240 python3 bench/gpu-bin/gpu_peers.py 2>&1 || echo "(the Python peers did not run)"
    } | tee "$out"
    rm -f bench-stderr.txt
    ;;
*)
    echo "usage: bash bench/gpu.sh build|run" >&2
    exit 2
    ;;
esac

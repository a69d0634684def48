#!/usr/bin/env bash
# Issue 15's table: the native engine on each kernel set this CPU runs (GLIMPSE_ISA caps it),
# image batch 32 and a 10-token query, with PyTorch uncapped and capped to AVX2 in the same
# run, then the GEMMs against OpenBLAS (feature `blas`, needs libopenblas-dev).
#
#   bash scripts/bench_isa.sh [MODEL_DIR]      # default ~/.cache/glimpse/vit-b32-random
#
# Environment: THREADS (default: all cores), REPS (default 3), ISAS (default "avx512bf16
# avx512 avx2 portable"), MODES (default "f32,bf16": bf16 asked for on a set without AVX-512
# BF16 runs f32, and the line `runs … on kernel set …` says so), BIN (a cpu_speed binary to
# time instead of building one), SKIP_BLAS=1, SKIP_TORCH=1,
# PERF=1 (also `perf record` one image batch-32 pass per set, after loading, and print the
# share of each function: GEMM microkernel, packing copies, softmax, GELU, layer norm, …).
# Prints `uptime` before and after each step: on a shared machine read the CPU-ms columns and
# same-run ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-$HOME/.cache/glimpse/vit-b32-random}"
THREADS="${THREADS:-$(nproc)}"
REPS="${REPS:-3}"
ISAS="${ISAS:-avx512bf16 avx512 avx2 portable}"
MODES="${MODES:-f32,bf16}"
load() { echo "uptime: $(uptime)"; }
lscpu | grep -E "Model name|^CPU\(s\)|L2 cache|L3 cache"
if [ -n "${BIN:-}" ]; then
    bin="$BIN" # a saved cpu_speed binary (e.g. the build before a change, for an A/B run)
else
    cargo build -p glimpse-encoder --example cpu_speed >&2
    bin="${CARGO_TARGET_DIR:-target}/debug/examples/cpu_speed"
fi
for isa in $ISAS; do
    load
    echo "== glimpse, GLIMPSE_ISA=$isa"
    modes="$MODES"
    [ "$isa" = portable ] && modes=f32
    GLIMPSE_ISA="$isa" RAYON_NUM_THREADS="$THREADS" "$bin" "$MODEL" --modes "$modes" \
        --batches 32 --lengths 10 --reps "$REPS" | grep -v "cold start"
    if [ -n "${PERF:-}" ]; then
        # The profile of the f32 image passes only: recording starts after the loads (-D).
        perf_data="$(mktemp /tmp/bench_isa_perf.XXXXXX)"
        GLIMPSE_ISA="$isa" RAYON_NUM_THREADS="$THREADS" perf record -q -D 4000 -F 1999 \
            -o "$perf_data" "$bin" "$MODEL" --modes f32 --batches 32 --lengths 10 --reps 6 \
            >/dev/null 2>&1
        echo "-- perf, GLIMPSE_ISA=$isa, f32 image batch 32: share of samples per function"
        perf report -i "$perf_data" --no-children --sort symbol --percent-limit 0.3 --stdio \
            2>/dev/null | grep -E "^ +[0-9]" | cut -c1-110
        rm -f "$perf_data"
    fi
done
if [ -z "${SKIP_TORCH:-}" ]; then
    load
    echo "== pytorch (uncapped)"
    python3 scripts/bench_pytorch.py --model "$MODEL" --threads "$THREADS" --reps "$REPS" \
        --cases image,text --images 32 --texts 10
    load
    echo "== pytorch capped to AVX2"
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
        python3 scripts/bench_pytorch.py --model "$MODEL" --threads "$THREADS" --reps "$REPS" \
        --cases image,text --images 32 --texts 10
    load
fi
if [ -z "${SKIP_BLAS:-}" ]; then
    for core in SkylakeX Haswell; do
        echo "== GEMMs: native kernel sets vs OpenBLAS core $core"
        OPENBLAS_CORETYPE=$core THREADS="$THREADS" \
            cargo bench -q -p glimpse-kernels --features blas --bench blas
        load
    done
fi

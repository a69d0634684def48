#!/usr/bin/env bash
# Issue 15's headline rows as same-run ratios on a noisy machine: the native engine's f32 image
# batch (`cpu_speed`) and PyTorch's (`scripts/bench_pytorch.py`) alternate PAIRS times (who goes
# first alternates too); prints each pair's medians and the median of PyTorch/Glimpse (> 1:
# Glimpse faster). On this project's 2-vCPU VMs even a register-only FMA loop swings ±10 %
# from one minute to the next, so a single sequential run of each says little.
#
#   bash scripts/vs_pytorch.sh [PAIRS]     # env: BIN (a cpu_speed binary), MODEL, ISA
#                                          # (avx512 | avx2: PyTorch is capped to AVX2 too),
#                                          # THREADS (default: all cores), BATCH (32), REPS (3)
set -euo pipefail
cd "$(dirname "$0")/.."
pairs="${1:-8}"
model="${MODEL:-$HOME/.cache/glimpse/vit-b32-random}"
isa="${ISA:-avx512}"
threads="${THREADS:-$(nproc)}"
batch="${BATCH:-32}"
reps="${REPS:-3}"
if [ -z "${BIN:-}" ]; then
    cargo build -p glimpse-encoder --example cpu_speed >&2
    BIN="${CARGO_TARGET_DIR:-target}/debug/examples/cpu_speed"
fi
torch_env=()
if [ "$isa" = avx2 ]; then
    torch_env=(ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2)
fi
lscpu | grep -E "Model name|^CPU\(s\)"
echo "ISA $isa, $threads threads, batch $batch, $reps timed runs per side per pair (medians)"
ours() {
    GLIMPSE_ISA="$isa" RAYON_NUM_THREADS="$threads" "$BIN" "$model" --modes f32 \
        --batches "$batch" --lengths 10 --reps "$reps" |
        awk '/image batch/ { for (i = 1; i <= NF; i++) if ($i == "median,") print $(i - 1) }'
}
theirs() {
    env "${torch_env[@]}" python3 scripts/bench_pytorch.py --model "$model" --threads "$threads" \
        --reps "$reps" --cases image --images "$batch" 2>/dev/null |
        python3 -c 'import json, sys; print([json.loads(l)["ms_per_item"] for l in sys.stdin if l.startswith("{")][0])'
}
ratios=()
for i in $(seq "$pairs"); do
    if [ $((i % 2)) -eq 1 ]; then g=$(ours); t=$(theirs); else t=$(theirs); g=$(ours); fi
    r=$(python3 -c "print(f'{$t / $g:.3f}')")
    ratios+=("$r")
    echo "pair $i: glimpse $g ms/img, pytorch $t ms/img, pytorch/glimpse $r ($(uptime | sed 's/.*load/load/'))"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print "median pytorch/glimpse over " NR " pairs: " v[int((NR + 1) / 2)] " (min " v[1] ", max " v[NR] ")" }'

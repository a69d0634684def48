#!/usr/bin/env bash
# Same-machine A/B of two builds of the `cpu_speed` example on the f32 image batch: runs A and B
# alternately PAIRS times and prints each pair's ms/img medians and the median of the B/A ratios,
# so that load that changes over minutes (a shared or noisy machine) cancels out.
#
#   bash scripts/ab_cpu_speed.sh OLD_BIN NEW_BIN [PAIRS]   # MODEL, ISA, THREADS, BATCH, REPS
set -euo pipefail
a="$1"
b="$2"
pairs="${3:-8}"
model="${MODEL:-$HOME/.cache/glimpse/vit-b32-random}"
run() {
    GLIMPSE_ISA="${ISA:-avx512}" RAYON_NUM_THREADS="${THREADS:-2}" "$1" "$model" --modes f32 \
        --batches "${BATCH:-32}" --lengths 10 --reps "${REPS:-3}" |
        awk '/image batch/ { for (i = 1; i <= NF; i++) if ($i == "median,") print $(i - 1) }'
}
ratios=()
for i in $(seq "$pairs"); do
    if [ $((i % 2)) -eq 1 ]; then x=$(run "$a"); y=$(run "$b"); else y=$(run "$b"); x=$(run "$a"); fi
    r=$(python3 -c "print(f'{$y / $x:.3f}')")
    ratios+=("$r")
    echo "pair $i: A $x ms/img, B $y ms/img, B/A $r  ($(uptime | sed 's/.*load/load/'))"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print "median B/A over " NR " pairs: " v[int((NR + 1) / 2)] " (min " v[1] ", max " v[NR] ")" }'

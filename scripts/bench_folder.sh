#!/usr/bin/env bash
# Folder indexing end to end against the encoder alone (issue 15, item 6): makes a folder of
# 12 MP JPEGs (not committed) and runs examples/bench_folder.rs, built with the `turbojpeg`
# feature, once with the pure-Rust JPEG decoders (GLIMPSE_TURBOJPEG=0) and once with the
# system's libjpeg-turbo, printing the CPU and load with it.
#
#   bash scripts/bench_folder.sh                      # 64 photos in /tmp/glimpse_12mp
#   PHOTOS=/tmp/x COUNT=128 REPS=3 bash scripts/bench_folder.sh
#   VARIANTS=1 bash scripts/bench_folder.sh           # libjpeg-turbo only
#
# MODEL defaults to the full-size random ViT-B/32 (`scripts/make_fixtures.py --full`), else the
# bundled glimpse-shapes model. PROFILE=dev (default: the shared warm build; dependencies, the
# encoder and the kernels are optimised in it, the glimpse crate at opt-level 1) or release.
set -euo pipefail
cd "$(dirname "$0")/.."
PHOTOS=${PHOTOS:-/tmp/glimpse_12mp}
COUNT=${COUNT:-64}
REPS=${REPS:-2}
PROFILE=${PROFILE:-dev}
MODEL=${MODEL:-$HOME/.cache/glimpse/vit-b32-random}
if [ ! -f "$MODEL/config.json" ]; then
    echo "no $MODEL: using models/glimpse-shapes" >&2
    MODEL=models/glimpse-shapes
fi
if [ "$(find "$PHOTOS" -name '*.jpg' 2>/dev/null | wc -l)" -lt "$COUNT" ]; then
    python3 scripts/make_folder_jpegs.py "$PHOTOS" "$COUNT"
fi
lscpu | grep -E 'Model name|CPU family|^Model:|^CPU\(s\)' >&2
profile_flag=()
[ "$PROFILE" = release ] && profile_flag=(--release)
# One build with the feature; GLIMPSE_TURBOJPEG=0 runs the pure-Rust decoders in it.
for turbo in ${VARIANTS:-0 1}; do
    echo "== GLIMPSE_TURBOJPEG=$turbo ($(uptime | sed 's/.*load/load/'))" >&2
    GLIMPSE_TURBOJPEG=$turbo cargo run -q "${profile_flag[@]}" --example bench_folder \
        --features turbojpeg -- --model "$MODEL" --photos "$PHOTOS" --reps "$REPS"
done

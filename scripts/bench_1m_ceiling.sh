#!/bin/bash
# Recall ceiling at 1M x 512 (issue 16): build ours and hnswlib on the seeded Gaussian mixture
# (M = 16, ef_construction = 200), sweep ef up to 768 (a sweep stops past recall 0.999).
# Logs go to $OUT (default /tmp/ceiling1m); the data (2 GB) to $DATA (default /tmp/d1m).
#
#   export CARGO_TARGET_DIR=$HOME/.cache/glimpse/target-index
#   cargo build --release -p glimpse-index --example ann_bench
#   B=$CARGO_TARGET_DIR/release/examples/ann_bench T=16 bash scripts/bench_1m_ceiling.sh
#
# T: build threads for both libraries (RAYON_NUM_THREADS for ours, --build-threads for hnswlib).
# Needs ~5 GB RAM for ours (raw vectors + index), ~5 GB for hnswlib's run, ~2.5 GB disk.
set -u
export PYTHONUNBUFFERED=1
T=${T:-2}
OUT=${OUT:-/tmp/ceiling1m}
DATA=${DATA:-/tmp/d1m}
B=${B:-$HOME/.cache/glimpse/target-index/release/examples/ann_bench}
EFS=10,16,24,32,48,64,96,128,192,256,384,512,768
mkdir -p "$OUT"
(lscpu; nproc; free -g; uptime) > "$OUT/machine.txt" 2>&1
date -u +%T > "$OUT/ours.log"
RAYON_NUM_THREADS=$T "$B" --generate 1000000 --dims 512 --nq 1000 --seed 42 --reps 2 \
  --write "$DATA" --efs $EFS >> "$OUT/ours.log" 2>&1
echo "ours rc $? $(date -u +%T) load $(cat /proc/loadavg)" >> "$OUT/ours.log"
python3 "$(dirname "$0")/bench_hnswlib.py" "$DATA" --m 16 --efc 200 --build-threads "$T" --reps 2 \
  --efs $EFS > "$OUT/hnswlib.log" 2>&1
echo "hnswlib rc $? $(date -u +%T) load $(cat /proc/loadavg)" >> "$OUT/hnswlib.log"
grep -v JSON "$OUT/ours.log"; grep -v JSON "$OUT/hnswlib.log"

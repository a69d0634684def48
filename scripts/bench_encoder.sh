#!/usr/bin/env bash
# Times Glimpse's encoder and the PyTorch reference on the same ViT-B/32 checkpoint, thread
# count and shapes, one after the other in the same run, and prints the ratios.
#
#   bash scripts/bench_encoder.sh [MODEL_DIR]       # default: ~/.cache/glimpse/vit-b32-random
#
# Environment: THREADS (default: all cores), REPS (default 5), CASES (default all), IMAGES
# (image batch sizes, default 1,8,32), TEXTS (query lengths in tokens, default 5,10,20,77),
# CARGO_PROFILE (default release; "dev" reuses the test build, which optimises the encoder too),
# CARGO_FLAGS (e.g. "--all-features" to reuse the test build), ISA (avx2, portable, avx512:
# caps Glimpse's kernels through GLIMPSE_ISA; ISA=avx2 also caps PyTorch to AVX2 with
# ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2, so both sides
# run what an AVX2 laptop runs), PRECISIONS (default "f32 bf16 int8"). Glimpse runs once per precision;
# on a kernel set without AVX-512 BF16 (ISA=avx2 or avx512) the "bf16" rows run f32 (the
# encoder falls back and says so on stderr: Precision::runs_on).
# Needs python3 with torch + transformers (scripts/requirements-bench.txt); a missing
# checkpoint is generated with scripts/make_fixtures.py --full (random weights, real layout).
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL="${1:-$HOME/.cache/glimpse/vit-b32-random}"
THREADS="${THREADS:-$(nproc)}"
REPS="${REPS:-5}"
CASES="${CASES:-cold_text,image,text,jpeg}"
IMAGES="${IMAGES:-1,8,32}"
TEXTS="${TEXTS:-5,10,20,77}"
PROFILE="${CARGO_PROFILE:-release}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

if [ ! -f "$MODEL/model.safetensors" ]; then
    echo "no checkpoint at $MODEL: generating a random ViT-B/32 (scripts/make_fixtures.py --full)" >&2
    python3 scripts/make_fixtures.py --full "$MODEL" >&2
fi

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
    "flags: $(grep -m1 -o 'avx512f\|avx512_bf16\|avx512_vnni\|avx2' /proc/cpuinfo | sort -u | xargs)" >&2
echo "threads: $THREADS, reps: $REPS, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
PY_ENV=()
if [ -n "${ISA:-}" ]; then
    export GLIMPSE_ISA="$ISA"
    if [ "$ISA" = avx2 ]; then
        PY_ENV=(ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2)
    fi
    echo "ISA cap: GLIMPSE_ISA=$ISA; PyTorch env: ${PY_ENV[*]:-(uncapped)}" >&2
fi
PRECISIONS="${PRECISIONS:-f32 bf16 int8}"

flag="--release"
[ "$PROFILE" = "dev" ] && flag=""
cargo build $flag ${CARGO_FLAGS:-} --example encoder_bench >&2
bin="${CARGO_TARGET_DIR:-target}/$([ "$PROFILE" = dev ] && echo debug || echo release)/examples/encoder_bench"

: >"$OUT/glimpse.jsonl"
: >"$OUT/glimpse_bf16.jsonl"
: >"$OUT/glimpse_int8.jsonl"
if [[ " $PRECISIONS " == *" f32 "* ]]; then
    RAYON_NUM_THREADS="$THREADS" "$bin" --model "$MODEL" --reps "$REPS" --images "$IMAGES" --texts "$TEXTS" --cases "$CASES" \
        >"$OUT/glimpse.jsonl"
fi
if [[ " $PRECISIONS " == *" bf16 "* ]]; then
    RAYON_NUM_THREADS="$THREADS" "$bin" --model "$MODEL" --reps "$REPS" --images "$IMAGES" --texts "$TEXTS" \
        --cases "$(echo "$CASES" | tr ',' '\n' | grep -v jpeg | paste -sd, -)" --precision bf16 \
        >"$OUT/glimpse_bf16.jsonl"
fi
if [[ " $PRECISIONS " == *" int8 "* ]]; then
    RAYON_NUM_THREADS="$THREADS" "$bin" --model "$MODEL" --reps "$REPS" --images "$IMAGES" --texts "$TEXTS" \
        --cases "$(echo "$CASES" | tr ',' '\n' | grep -v jpeg | paste -sd, -)" --precision int8 \
        >"$OUT/glimpse_int8.jsonl"
fi
env "${PY_ENV[@]}" python3 scripts/bench_pytorch.py --model "$MODEL" --threads "$THREADS" \
    --reps "$REPS" --images "$IMAGES" --texts "$TEXTS" --cases "$CASES" >"$OUT/pytorch.jsonl"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$OUT/glimpse.jsonl" "$OUT/glimpse_bf16.jsonl" "$OUT/pytorch.jsonl" "$OUT/glimpse_int8.jsonl" <<'EOF'
import json, sys

def load(path):
    rows = {}
    for line in open(path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        key = (r["case"], r.get("batch", r.get("tokens", r.get("mode", ""))))
        rows[key] = r
    return rows

ours, bf16, ref = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
int8 = load(sys.argv[4])
print(f"{'case':<12}{'size':>8}{'glimpse ms':>13}{'pytorch ms':>13}{'speed-up':>10}")
rows = [(k, ours.get(k), "") for k in ours] + [(k, bf16[k], " bf16") for k in bf16]
rows += [(k, int8[k], " int8") for k in int8]
rows += [(k, None, "") for k in ref if k not in ours and k[0] != "text_pad77"]
for key, o, tag in sorted(rows, key=lambda r: (str(r[0]), r[2])):
    p = ref.get(key)
    if key[0] == "text" and ("text_pad77", key[1]) in ref:
        p77 = ref[("text_pad77", key[1])]["ms_per_item"]
    else:
        p77 = None
    om = o["ms_per_item"] if o else None
    pm = p["ms_per_item"] if p else None
    ratio = f"{pm / om:.2f}x" if om and pm else "-"
    fmt = lambda v: f"{v:.2f}" if v is not None else "-"
    line = f"{key[0] + tag:<12}{str(key[1]):>8}{fmt(om):>13}{fmt(pm):>13}{ratio:>10}"
    if p77 and om:
        line += f"   (pytorch padded to 77: {p77:.2f} ms, {p77 / om:.2f}x)"
    print(line)
print("speed-up = pytorch time / glimpse time (above 1: glimpse is faster)")
EOF

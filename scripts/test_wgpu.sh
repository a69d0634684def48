#!/usr/bin/env bash
# The wgpu backend's parity test (on Mesa's lavapipe when there is no GPU). It builds burn's GPU
# stack (wgpu, cubecl), which the default test build leaves out; about 20 extra minutes cold on
# 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# Each process compiles and autotunes its kernels on first use; the minimal autotune level halves
# that and computes the same embeddings.
export CUBECL_AUTOTUNE_LEVEL="${CUBECL_AUTOTUNE_LEVEL:-minimal}"
cargo test -p glimpse-encoder --features wgpu --test wgpu_parity "$@"
# SigLIP, Chinese-CLIP and the sentence-transformers towers: their burn modules on wgpu.
for t in siglip_parity chinese_clip_parity sentence_parity; do
  cargo test -p glimpse-encoder --features wgpu --test "$t" wgpu "$@"
done

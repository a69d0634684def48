#!/usr/bin/env bash
# The wgpu backend's parity test (on Mesa's lavapipe when there is no GPU). It builds burn's GPU
# stack (wgpu, cubecl), which the default test build leaves out; about 20 extra minutes cold on
# 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo test -p glimpse-encoder --features wgpu --test wgpu_parity "$@"

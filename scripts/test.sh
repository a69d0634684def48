#!/usr/bin/env bash
# The test command: installs what is missing (scripts/setup.sh), then runs every test of the
# workspace with the default features, reusing the build `scripts/demo.sh` made (same features,
# same profile), then the training crate's tests (burn with autodiff: a second, smaller build).
# The wgpu backend's parity test needs the GPU stack: `bash scripts/test_wgpu.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo test --workspace --exclude glimpse-train "$@"
cargo test -p glimpse-train "$@"

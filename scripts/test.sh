#!/usr/bin/env bash
# The test command: installs what is missing (scripts/setup.sh), then runs every test of the
# workspace, the wgpu backend's parity test included (on Mesa's lavapipe when there is no GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo test --workspace --all-features "$@"

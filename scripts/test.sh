#!/usr/bin/env bash
# The test command: installs what is missing (scripts/setup.sh), then runs every test of the
# workspace with the default features. It reuses the build `scripts/demo.sh` made (same
# features, same profile) except burn's core crates, which the training crate's tests need with
# autodiff (a few minutes). The wgpu backend's parity test needs the GPU stack (wgpu, cubecl),
# which this build leaves out: `bash scripts/test_wgpu.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo test --workspace "$@"
# Parquet export/import, sharding and the Milvus Lite hand-off (feature `parquet`; the Milvus
# check installs its Python packages into target/milvus-venv, or says skipped): docs/SCALE.md.
cargo test --workspace --features glimpse/parquet --test export
# JPEGs through the system's libjpeg-turbo (feature `turbojpeg`): pixels equal to Pillow's.
cargo test -p glimpse-encoder --features turbojpeg --test turbojpeg_parity
python3 scripts/check_gallery.py  # the gallery example in headless Chromium

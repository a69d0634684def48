#!/usr/bin/env bash
# The main job: generate a small photo folder, index it with Glimpse, search it by text.
# Installs missing system packages first (scripts/setup.sh). Extra arguments go to the demo:
#   bash scripts/demo.sh --model /path/to/clip-vit-base-patch32 "a dog on the beach"
# The demo shares the test build (dev profile, dependencies optimised): the first run compiles
# the stack (~10-25 minutes on 2 cores), later runs start in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo run --example demo -- "$@"

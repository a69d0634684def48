#!/usr/bin/env bash
# Checks that the facade (`glimpse`, src/) keeps its boundary: no burn, cubecl, wgpu, hnsw_rs or
# rocksdb type anywhere in its public API, no sub-crate type it does not re-export, no other
# dependency's type (scripts/check_facade.py says exactly what is walked). Exit 1 lists each leak
# with the item that shows it.
#
# 1. Self-test: the checker must find exactly the leaks planted in tests/fixtures/facade-leak
#    (a few seconds), so a rustdoc format change cannot turn the check into a silent pass.
# 2. rustdoc JSON of every workspace crate, with the features clippy uses (its dependencies'
#    metadata is then already built), and the walk from the facade's root.
#
# rustdoc's JSON output is unstable: scripts/rustdoc_json.sh lets the stable toolchain's rustdoc
# accept it. Run from anywhere: bash scripts/check_facade.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/glimpse/target}"

if ! command -v python3 >/dev/null; then
  echo "check_facade: python3 not found (Debian: apt-get install python3)" >&2
  exit 1
fi

json_docs() { # cargo doc arguments...
  GLIMPSE_RUSTDOC="${RUSTDOC:-rustdoc}" RUSTDOC="$PWD/scripts/rustdoc_json.sh" \
    RUSTDOCFLAGS="-Z unstable-options --output-format json --document-hidden-items -A warnings" \
    cargo doc --no-deps --quiet "$@"
}

fixture=tests/fixtures/facade-leak
json_docs --workspace --locked --manifest-path "$fixture/Cargo.toml" \
  --target-dir "$CARGO_TARGET_DIR/facade-leak"
python3 scripts/check_facade.py glimpse --doc-dir "$CARGO_TARGET_DIR/facade-leak/doc" \
  --expect "$fixture/expected.txt"

json_docs --workspace --all-features
python3 scripts/check_facade.py glimpse --doc-dir "$CARGO_TARGET_DIR/doc"

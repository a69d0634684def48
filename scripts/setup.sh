#!/usr/bin/env bash
# Installs the system packages Glimpse builds and tests with, when missing.
#   librocksdb-dev libclang-dev  RocksDB linked from Debian (rocksdb crate 0.20.1 + bindgen)
#   mesa-vulkan-drivers libvulkan1  Vulkan on the CPU (lavapipe) for the wgpu backend
#   pkg-config  used by -sys crates
#   chromium  headless browser for the gallery's browser check (scripts/check_gallery.py)
#   libheif-dev  HEIC/HEIF and AVIF decoding (the `heif` cargo feature, on by default)
#   libheif-examples  heif-enc, which scripts/make_format_fixtures.py makes fixtures with
#   libturbojpeg0-dev  libjpeg-turbo for the `turbojpeg` cargo feature (off by default; CI's
#     clippy builds it with --all-features and scripts/test.sh runs its Pillow parity test)
# As root it runs apt-get; otherwise it names what to install and stops.
set -euo pipefail

packages=(librocksdb-dev libclang-dev mesa-vulkan-drivers libvulkan1 pkg-config chromium
  libheif-dev libheif-examples libturbojpeg0-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    echo "setup: installing ${missing[*]} with sudo" >&2
    sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing system packages: ${missing[*]}" >&2
    echo "setup: install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found: install the Rust toolchain from https://rustup.rs" >&2
  exit 1
fi

# The rocksdb crate links Debian's librocksdb (.cargo/config.toml sets ROCKSDB_LIB_DIR); lavapipe
# wants a runtime dir.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

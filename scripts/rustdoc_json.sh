#!/bin/sh
# rustdoc with unstable options allowed (for `--output-format json`), for scripts/check_facade.sh.
# Cargo runs it as RUSTDOC, so RUSTC_BOOTSTRAP reaches rustdoc alone: set for the whole cargo
# run, it would change what build scripts see (proc-macro2 reruns on it) and rebuild the stack.
RUSTC_BOOTSTRAP=1 exec "${GLIMPSE_RUSTDOC:-rustdoc}" "$@"

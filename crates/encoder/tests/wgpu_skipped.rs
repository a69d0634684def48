//! Says so when the wgpu parity test (`wgpu_parity.rs`) is not built: it needs the `wgpu`
//! feature, which the default test build leaves out (it compiles the GPU stack). Run it with
//! `bash scripts/test_wgpu.sh`.
#![cfg(not(feature = "wgpu"))]

#[test]
#[ignore = "skipped: the wgpu parity test needs --features wgpu (bash scripts/test_wgpu.sh)"]
fn wgpu_parity_skipped() {}

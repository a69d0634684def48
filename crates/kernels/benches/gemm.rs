//! Criterion benches for `glimpse-kernels`' GEMMs on ViT-B/32's matrix shapes (batch 32:
//! 1,600 tokens of width 768), f32 and bf16, on the detected kernels, with a fixed input.
//!
//! `cargo bench -p glimpse-kernels --bench gemm`. Throughput is reported in elements of `C`;
//! GFLOP/s = 2·k × elements/s. Whole-tower timings and the PyTorch comparison are the root
//! package's `encoder` bench and `scripts/bench_encoder.sh` (see docs/PERFORMANCE.md).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use glimpse_kernels::bf16::{gemm_bf16, PackedBf16};
use glimpse_kernels::gemm::{gemm, Epilogue, PackedB};
use glimpse_kernels::Isa;

#[path = "../tests/common/mod.rs"]
mod common;
use common::values;

fn benches(c: &mut Criterion) {
    let isa = Isa::detect();
    let m = 32 * 50; // 32 images × 50 tokens
    let mut g = c.benchmark_group(format!("gemm/{isa:?}"));
    g.measurement_time(Duration::from_secs(5)).sample_size(10);
    // qkv, attention out, fc1, fc2 of a ViT-B/32 layer: (k, n).
    for (name, k, n) in [
        ("qkv", 768, 2304),
        ("out", 768, 768),
        ("fc1", 768, 3072),
        ("fc2", 3072, 768),
    ] {
        let a = values(1, m * k);
        let w = values(2, k * n);
        let bias = values(3, n);
        let mut out = vec![0.0; m * n];
        g.throughput(Throughput::Elements((m * n) as u64));
        let f32_b = PackedB::from_rows(&w, k, n, n);
        let mut scratch = Vec::new();
        g.bench_function(BenchmarkId::new("f32", name), |bench| {
            bench.iter(|| {
                let (a, b) = (black_box(&a), black_box(&f32_b));
                let epilogue = Epilogue::Bias(&bias);
                gemm(isa, a, m, k, b, &mut out, n, false, epilogue, &mut scratch);
            })
        });
        let bf16_b = PackedBf16::from_rows(&w, k, n, n);
        let mut scratch = Vec::new();
        g.bench_function(BenchmarkId::new("bf16", name), |bench| {
            bench.iter(|| {
                let (a, b) = (black_box(&a), black_box(&bf16_b));
                let epilogue = Epilogue::Bias(&bias);
                gemm_bf16(isa, a, m, k, b, &mut out, n, false, epilogue, &mut scratch);
            })
        });
    }
    g.finish();
}

criterion_group!(gemm_benches, benches);
criterion_main!(gemm_benches);

//! Times the int8 GEMM against the f32 one on ViT-B/32's shapes: batch-32 images (1,600 rows)
//! and a 10-token query (10 rows), every int8 kernel set that runs here; prints GOP/s
//! (2·m·k·n per second) and the int8/f32 ratio, the median of `REPS` (default 7) runs.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run -p glimpse-kernels --release --example int8_speed
//! ```

use std::time::Instant;

use glimpse_kernels::gemm::{gemm, Epilogue, PackedB};
use glimpse_kernels::int8::{gemm_i8, Int8Kernel, Int8Scratch, PackedI8};
use glimpse_kernels::Isa;

fn values(seed: u64, len: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn median(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7);
    let isa = Isa::detect();
    println!(
        "ISA {isa:?}, int8 sets {:?}, rayon threads {}",
        Int8Kernel::available(),
        rayon::current_num_threads()
    );
    for m in [1600, 10] {
        for (name, k, n) in [
            ("qkv", 768, 2304),
            ("out", 768, 768),
            ("fc1", 768, 3072),
            ("fc2", 3072, 768),
        ] {
            let a = values(1, m * k);
            let b = values(2, k * n);
            let bias = values(3, n);
            let mut c = vec![0.0; m * n];
            let ops = 2.0 * (m * k * n) as f64;
            let f32b = PackedB::from_rows(&b, k, n, n);
            let mut scratch = Vec::new();
            let t32 = median(reps, || {
                gemm(
                    isa,
                    &a,
                    m,
                    k,
                    &f32b,
                    &mut c,
                    n,
                    false,
                    Epilogue::Bias(&bias),
                    &mut scratch,
                )
            });
            let packed = PackedI8::from_fn(k, n, |r, col| b[r * n + col]);
            let mut s8 = Int8Scratch::default();
            let mut line = format!(
                "m {m:>5} {name} [{k}x{n}]: f32 {:7.1} GFLOP/s {:8.3} ms",
                ops / t32 / 1e9,
                t32 * 1e3
            );
            for kernel in Int8Kernel::available() {
                if kernel == Int8Kernel::Portable && m > 100 {
                    continue;
                }
                let t8 = median(reps, || {
                    gemm_i8(
                        kernel.isa(),
                        &a,
                        m,
                        &packed,
                        &mut c,
                        false,
                        Epilogue::Bias(&bias),
                        &mut s8,
                    )
                });
                line += &format!(
                    " | {kernel:?} {:7.1} GOP/s {:8.3} ms ({:.2}x)",
                    ops / t8 / 1e9,
                    t8 * 1e3,
                    t32 / t8
                );
            }
            println!("{line}");
        }
    }
}

//! The hand-written GEMMs of every kernel set this CPU runs against OpenBLAS's `cblas_sgemm`
//! (with its own run-time CPU dispatch), on the matrix products of ViT-B/32 at batch 32 and of
//! a 10-token CLIP text query, same process, alternating, median of `REPS` (default 7) runs.
//! Both sides add the bias (fused into the tile epilogue for the native kernels, a separate
//! pass after `cblas_sgemm`), as the encoder does.
//!
//! ```sh
//! apt-get install libopenblas-dev
//! cargo bench -p glimpse-kernels --features blas --bench blas           # 2 threads each
//! OPENBLAS_CORETYPE=Haswell cargo bench -p glimpse-kernels --features blas --bench blas
//! ```
//!
//! `OPENBLAS_CORETYPE=Haswell` caps OpenBLAS to its AVX2 kernels, the fair opponent of the
//! native AVX2 row. Prints one line per shape: GFLOP/s of each.

use std::time::Instant;

use glimpse_kernels::blas;
use glimpse_kernels::gemm::{gemm, Epilogue, PackedB};
use glimpse_kernels::{ops, Isa};

#[path = "../tests/common/mod.rs"]
mod common;
use common::values;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let threads: usize = std::env::var("THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    blas::set_threads(threads);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    let isas = Isa::available();
    println!(
        "threads {threads}, reps {reps}, OpenBLAS core {}, native sets {isas:?}",
        blas::core_name()
    );
    print!("{:<16}{:>6}{:>6}{:>6}", "shape", "m", "k", "n");
    for isa in &isas {
        print!("{:>12}", format!("{isa:?}"));
    }
    println!("{:>12}   (GFLOP/s)", "OpenBLAS");
    let shapes = [
        ("vit qkv", 1600, 768, 2304),
        ("vit out", 1600, 768, 768),
        ("vit fc1", 1600, 768, 3072),
        ("vit fc2", 1600, 3072, 768),
        ("query qkv", 10, 512, 1536),
        ("query out", 10, 512, 512),
        ("query fc1", 10, 512, 2048),
        ("query fc2", 10, 2048, 512),
    ];
    for (name, m, k, n) in shapes {
        let a = values(1, m * k);
        let w = values(2, n * k); // [n, k], PyTorch's layout
        let bias = values(3, n);
        let packed = PackedB::from_transposed(&w, k, n, k);
        let mut c = vec![0.0; m * n];
        let mut reference = vec![0.0; m * n];
        let mut scratch = Vec::new();
        let flop = 2.0 * (m * n * k) as f64;
        // Inner repetitions so that one timing lasts at least ~20 ms.
        let inner = ((2e7 / (flop / 50.0)) as usize).clamp(1, 2000);
        let mut native = vec![Vec::new(); isas.len()];
        let mut openblas = Vec::new();
        let run_blas = |c: &mut [f32]| {
            blas::sgemm_bt(&a, m, k, k, &w, n, c, n);
            for row in c.chunks_exact_mut(n) {
                ops::add_in_place(row, &bias);
            }
        };
        run_blas(&mut reference);
        for rep in 0..=reps {
            for (i, &isa) in isas.iter().enumerate() {
                let t = Instant::now();
                pool.install(|| {
                    for _ in 0..inner {
                        gemm(
                            isa,
                            &a,
                            m,
                            k,
                            &packed,
                            &mut c,
                            n,
                            false,
                            Epilogue::Bias(&bias),
                            &mut scratch,
                        );
                    }
                });
                if rep > 0 {
                    native[i].push(flop * inner as f64 / t.elapsed().as_secs_f64() / 1e9);
                }
                let err = c
                    .iter()
                    .zip(&reference)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0f32, f32::max);
                assert!(
                    err < 1e-3 * (k as f32).sqrt(),
                    "{name} {isa:?}: max error {err}"
                );
            }
            let t = Instant::now();
            for _ in 0..inner {
                run_blas(&mut c);
            }
            if rep > 0 {
                openblas.push(flop * inner as f64 / t.elapsed().as_secs_f64() / 1e9);
            }
        }
        print!("{name:<16}{m:>6}{k:>6}{n:>6}");
        for v in native {
            print!("{:>12.1}", median(v));
        }
        println!("{:>12.1}", median(openblas));
    }
}

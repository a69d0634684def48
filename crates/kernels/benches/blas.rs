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
//! native AVX2 row. Prints one line per shape: GFLOP/s of each, and for the native sets the
//! median share of the FMA peak timed just before each run (what noise on a shared machine
//! does not move). Environment: `THREADS`
//! (default 2), `REPS` (default 7), `NATIVE=avx2,avx512` (the native sets to time),
//! `SKIP_PEAK=1`.

use glimpse_kernels::blas;
use glimpse_kernels::gemm::{gemm, Epilogue, PackedB};
use glimpse_kernels::{ops, Isa};

#[path = "../tests/common/mod.rs"]
mod common;
mod timing;
use common::values;
use timing::{env_or, median, rate};

fn main() {
    let threads = env_or("THREADS", 2);
    let reps = env_or("REPS", 7);
    blas::set_threads(threads);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    // The f32 GEMMs of Avx512Bf16 are Avx512's: one column per distinct f32 kernel.
    let isas: Vec<Isa> = Isa::available()
        .into_iter()
        .filter(|&i| i != Isa::Avx512Bf16)
        .filter(|i| {
            std::env::var("NATIVE")
                .map(|n| n.split(',').any(|x| Isa::parse(x) == Some(*i)))
                .unwrap_or(true)
        })
        .collect();
    println!(
        "threads {threads}, reps {reps}, OpenBLAS core {}, native sets {isas:?}",
        blas::core_name()
    );
    #[cfg(target_arch = "x86_64")]
    if std::env::var_os("SKIP_PEAK").is_none() {
        peak::print(&pool, &isas);
    }
    print!("{:<16}{:>6}{:>6}{:>6}", "shape", "m", "k", "n");
    for isa in &isas {
        print!("{:>20}", format!("{isa:?}"));
    }
    println!(
        "{:>14}   (GFLOP/s wall / GFLOP per CPU-second, medians; native: (% of the FMA peak timed before each run, median))",
        "OpenBLAS"
    );
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
        // Per run: the GEMM's rate over the FMA peak timed just before it (CPU seconds), so
        // that the machine's swings (±10 % in a minute on a shared VM) cancel.
        let mut of_peak = vec![Vec::new(); isas.len()];
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
                #[cfg(target_arch = "x86_64")]
                let peak_now = peak::rate(&pool, isa, peak::SHORT);
                #[cfg(not(target_arch = "x86_64"))]
                let peak_now: Option<(f64, f64)> = None;
                let r = rate(flop * inner as f64, || {
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
                    })
                });
                if rep > 0 {
                    native[i].push(r);
                    if let Some((_, peak_cpu)) = peak_now {
                        of_peak[i].push(r.1 / peak_cpu);
                    }
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
            let r = rate(flop * inner as f64, || {
                for _ in 0..inner {
                    run_blas(&mut c);
                }
            });
            if rep > 0 {
                openblas.push(r);
            }
        }
        let cell = |v: Vec<(f64, f64)>| {
            let wall = median(v.iter().map(|r| r.0).collect());
            let cpu = median(v.iter().map(|r| r.1).collect());
            format!("{wall:.1}/{cpu:.1}")
        };
        print!("{name:<16}{m:>6}{k:>6}{n:>6}");
        for (v, p) in native.into_iter().zip(of_peak) {
            let p = if p.is_empty() {
                String::new()
            } else {
                format!(" ({:.0}%)", 100.0 * median(p))
            };
            print!("{:>20}", cell(v) + &p);
        }
        println!("{:>14}", cell(openblas));
    }
}

/// The FMA peak of this machine: independent FMAs on registers only (no loads), per thread on
/// `threads` threads, for ymm (AVX2) and zmm (AVX-512). The GEMM rates above are to be read
/// as fractions of these.
#[cfg(target_arch = "x86_64")]
mod peak {
    use std::arch::x86_64::*;

    use glimpse_kernels::Isa;

    const ITERS: usize = 20_000_000;
    /// Iterations of the short peak run timed next to each GEMM run (~20 ms of AVX-512).
    pub const SHORT: usize = 1_000_000;

    /// 12 independent accumulator chains of 8-lane FMAs: `iters · 12 · 16` FLOP.
    #[target_feature(enable = "avx2,fma")]
    fn ymm(seed: f32, iters: usize) -> f32 {
        let x = _mm256_set1_ps(seed);
        let y = _mm256_set1_ps(0.999_999);
        let mut acc = [_mm256_set1_ps(seed); 12];
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, y, x);
            }
        }
        let mut out = [0f32; 8];
        let s = acc
            .iter()
            .fold(_mm256_setzero_ps(), |s, &a| _mm256_add_ps(s, a));
        // SAFETY: `out` holds 8 floats.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), s) };
        out.iter().sum()
    }

    /// As [`ymm`] with 16-lane FMAs.
    #[target_feature(enable = "avx512f")]
    fn zmm(seed: f32, iters: usize) -> f32 {
        let x = _mm512_set1_ps(seed);
        let y = _mm512_set1_ps(0.999_999);
        let mut acc = [_mm512_set1_ps(seed); 12];
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(*a, y, x);
            }
        }
        _mm512_reduce_add_ps(
            acc.iter()
                .fold(_mm512_setzero_ps(), |s, &a| _mm512_add_ps(s, a)),
        )
    }

    /// (GFLOP/s wall, GFLOP per CPU-second) of `iters` iterations of the register-only FMA
    /// loop of `isa`'s width (ymm for AVX2, zmm for AVX-512) on every thread of `pool`; `None`
    /// for the portable set.
    pub fn rate(pool: &rayon::ThreadPool, isa: Isa, iters: usize) -> Option<(f64, f64)> {
        let threads = pool.current_num_threads();
        let (lanes, f): (f64, fn(f32, usize) -> f32) = match isa {
            // SAFETY: AVX2 + FMA are available (Isa::available checked the CPU).
            Isa::Avx2 => (8.0, |s, n| unsafe { ymm(s, n) }),
            // SAFETY: AVX-512F is available (Isa::available checked the CPU).
            Isa::Avx512 | Isa::Avx512Bf16 => (16.0, |s, n| unsafe { zmm(s, n) }),
            _ => return None,
        };
        let flop = threads as f64 * iters as f64 * 12.0 * 2.0 * lanes;
        Some(super::rate(flop, || {
            let sink: Vec<f32> =
                pool.broadcast(|c| std::hint::black_box(f(c.index() as f32 * 1e-3, iters)));
            std::hint::black_box(sink);
        }))
    }

    pub fn print(pool: &rayon::ThreadPool, isas: &[Isa]) {
        let threads = pool.current_num_threads();
        let mut line =
            format!("FMA peak on {threads} threads (GFLOP/s wall / GFLOP per CPU-second):");
        for (isa, name) in [(Isa::Avx2, "AVX2"), (Isa::Avx512, "AVX-512")] {
            if isas.contains(&isa) {
                if let Some((wall, cpu)) = rate(pool, isa, ITERS) {
                    line += &format!(" {name} {wall:.1}/{cpu:.1}");
                }
            }
        }
        println!("{line}");
    }
}

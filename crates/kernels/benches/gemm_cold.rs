//! The f32 GEMMs of a whole ViT-B/32 tower pass (12 layers × qkv, out, fc1, fc2 at batch 32),
//! each layer with its own weights, so that they stream from memory as in the encoder (340 MB,
//! more than an L3), against the same GEMMs repeated on one layer's weights (hot in L3).
//! The gap between the two rows is what the memory system costs the kernels inside a pass.
//!
//! ```sh
//! cargo bench -p glimpse-kernels --bench gemm_cold
//! ```
//!
//! Environment: `THREADS` (default 2), `REPS` (default 7), `ISA` (default: the best set).
//! Prints GFLOP/s wall and GFLOP per CPU-second, median over `REPS`, the two cases alternating.

use glimpse_kernels::gemm::{gemm, Epilogue, PackedB};
use glimpse_kernels::Isa;

#[path = "../tests/common/mod.rs"]
mod common;
mod timing;
use common::values;
use timing::{env_or, median, rate};

/// One layer's weights: (k, n, packed B, bias) for qkv, out, fc1, fc2.
struct Layer {
    gemms: Vec<(usize, usize, PackedB, Vec<f32>)>,
}

fn main() {
    let threads = env_or("THREADS", 2);
    let reps = env_or("REPS", 7);
    let isa = std::env::var("ISA")
        .ok()
        .and_then(|v| Isa::parse(&v))
        .unwrap_or_else(Isa::detect);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    let (m, d, ff, layers) = (1600, 768, 3072, 12);
    let shapes = [(d, 3 * d), (d, d), (d, ff), (ff, d)];
    let stack: Vec<Layer> = (0..layers)
        .map(|l| Layer {
            gemms: shapes
                .iter()
                .enumerate()
                .map(|(i, &(k, n))| {
                    let seed = 10 + (l * 4 + i) as u64;
                    let w = values(seed, k * n);
                    (
                        k,
                        n,
                        PackedB::from_rows(&w, k, n, n),
                        values(seed + 1000, n),
                    )
                })
                .collect(),
        })
        .collect();
    let flop: f64 = layers as f64
        * shapes
            .iter()
            .map(|&(k, n)| 2.0 * (m * k * n) as f64)
            .sum::<f64>();
    let x0 = values(1, m * d);
    let mut x = x0.clone();
    let mut h = vec![0.0; m * d];
    let mut qkv = vec![0.0; m * 3 * d];
    let mut f = vec![0.0; m * ff];
    let mut scratch = Vec::new();
    // One pass: layer `l` of the stack for `l` in `order` (the inputs of out and fc2 are
    // the outputs of qkv and fc1 cut to shape, so every GEMM reads what the previous wrote).
    let mut pass = |order: &mut dyn Iterator<Item = usize>| {
        for l in order {
            let g = &stack[l].gemms;
            let run = |a: &[f32], i: usize, c: &mut [f32], acc: bool, s: &mut Vec<f32>| {
                let (k, n, b, bias) = &g[i];
                gemm(
                    isa,
                    &a[..m * k],
                    m,
                    *k,
                    b,
                    &mut c[..m * n],
                    *n,
                    acc,
                    Epilogue::Bias(bias),
                    s,
                );
            };
            h.copy_from_slice(&x);
            run(&h, 0, &mut qkv, false, &mut scratch);
            run(&qkv, 1, &mut x, true, &mut scratch);
            run(&x, 2, &mut f, false, &mut scratch);
            run(&f, 3, &mut x, true, &mut scratch);
            // The same input for every layer (bounded values, never subnormal).
            x.copy_from_slice(&x0);
        }
    };
    println!(
        "{isa:?}, {threads} threads, {reps} reps; {:.1} GFLOP per pass; weights {} MB",
        flop / 1e9,
        (stack.len() * shapes.iter().map(|&(k, n)| k * n * 4).sum::<usize>()) >> 20
    );
    let (mut cold, mut hot) = (Vec::new(), Vec::new());
    for rep in 0..=reps {
        for (case, out) in [(0, &mut cold), (1, &mut hot)] {
            let r = rate(flop, || {
                pool.install(|| {
                    if case == 0 {
                        pass(&mut (0..layers));
                    } else {
                        pass(&mut std::iter::repeat_n(0, layers));
                    }
                })
            });
            if rep > 0 {
                out.push(r);
            }
        }
    }
    for (name, v) in [
        ("cold: 12 layers' weights", cold),
        ("hot: layer 0's, 12 times", hot),
    ] {
        println!(
            "{name:<28} {:>7.1} GFLOP/s wall {:>7.1} GFLOP per CPU-s",
            median(v.iter().map(|r| r.0).collect()),
            median(v.iter().map(|r| r.1).collect())
        );
    }
}

//! The int8 GEMM ([`glimpse_kernels::int8`]) against an i32/f64 reference written here from
//! the scheme's definition (per-column symmetric i8 weights, per-row asymmetric u8
//! activations), on shapes that are not multiples of the tile sizes, with every epilogue, on
//! every int8 kernel set the host runs (printed), with one and several threads.

use glimpse_kernels::gemm::Epilogue;
use glimpse_kernels::int8::{gemm_i8, Int8Kernel, Int8Scratch, PackedI8, MR, NR};
use glimpse_kernels::{ops, Activation, Isa};

mod common;
use common::values;

fn kernels() -> Vec<Int8Kernel> {
    let v = Int8Kernel::available();
    println!(
        "int8 kernel sets run here: {v:?} (CPU ISA {:?}, GLIMPSE_ISA caps it)",
        Isa::detect()
    );
    v
}

/// The weight codes and scales by the definition: `s = max|col| / 127`, `q = round(w / s)`.
fn quantise_weights(b: &[f32], k: usize, n: usize) -> (Vec<i32>, Vec<f64>) {
    let mut q = vec![0i32; k * n];
    let mut s = vec![0f64; n];
    for j in 0..n {
        let max = (0..k).map(|r| b[r * n + j].abs()).fold(0f32, f32::max);
        s[j] = f64::from(max / 127.0);
        for r in 0..k {
            q[r * n + j] = if max > 0.0 {
                (b[r * n + j] * (127.0 / max)).round() as i32
            } else {
                0
            };
        }
    }
    (q, s)
}

/// The activation codes by the definition: range widened to hold 0, 255 steps, zero point
/// rounded, codes rounded to nearest even and clamped to 0..=255.
fn quantise_row(x: &[f32]) -> (Vec<i32>, f64, i32) {
    let lo = x.iter().fold(0f32, |a, &v| a.min(v));
    let hi = x.iter().fold(0f32, |a, &v| a.max(v));
    if hi - lo <= 0.0 {
        return (vec![0; x.len()], 1.0, 0);
    }
    let scale = (hi - lo) / 255.0;
    let zero = (-lo / scale).round().clamp(0.0, 255.0);
    let inv = 1.0 / scale;
    let codes = x
        .iter()
        .map(|&v| (v * inv + zero).round_ties_even().clamp(0.0, 255.0) as i32)
        .collect();
    (codes, f64::from(scale), zero as i32)
}

/// `A·B` as the int8 scheme defines it, i32 sums then f64 scaling: `[m, n]`.
fn reference(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
    let (qb, sb) = quantise_weights(b, k, n);
    let mut out = vec![0f64; m * n];
    for i in 0..m {
        let (qa, sa, za) = quantise_row(&a[i * k..(i + 1) * k]);
        for j in 0..n {
            let dot: i64 = (0..k)
                .map(|p| i64::from(qa[p] - za) * i64::from(qb[p * n + j]))
                .sum();
            out[i * n + j] = dot as f64 * sa * sb[j];
        }
    }
    out
}

fn pools() -> Vec<rayon::ThreadPool> {
    [1, 3]
        .into_iter()
        .map(|t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
        })
        .collect()
}

#[test]
fn int8_gemm_matches_the_integer_reference_on_odd_shapes() {
    let shapes = [
        (1, 1, 1),
        (1, 768, 768),
        (10, 768, 2304),
        (MR, 5, NR),
        (MR + 1, 33, NR + 1),
        (3, 4 * 7 + 3, 2 * NR - 1),
        (29, 130, 70),
        (50, 3072, 40),
    ];
    let kernels = kernels();
    for (seed, &(m, k, n)) in shapes.iter().enumerate() {
        let a = values(seed as u64 * 3 + 1, m * k);
        // Scaled weights of unequal columns, a shifted activation range.
        let b: Vec<f32> = values(seed as u64 * 3 + 2, k * n)
            .iter()
            .enumerate()
            .map(|(i, v)| v * (1.0 + (i % n) as f32 / n as f32))
            .collect();
        let a: Vec<f32> = a.iter().map(|v| v * 2.0 + 0.3).collect();
        let bias = values(seed as u64 * 3 + 3, n);
        let c0 = values(seed as u64 * 3 + 4, m * n);
        let want = reference(&a, &b, m, k, n);
        let packed = PackedI8::from_fn(k, n, |r, c| b[r * n + c]);
        let mut first: Option<Vec<f32>> = None;
        for &kernel in &kernels {
            for pool in pools() {
                let what = format!(
                    "{kernel:?} [{m}, {k}] x [{k}, {n}], {} threads",
                    pool.current_num_threads()
                );
                for (case, accumulate, epilogue) in [
                    ("plain", false, Epilogue::None),
                    ("bias", false, Epilogue::Bias(&bias)),
                    (
                        "accumulate+bias+gelu",
                        true,
                        Epilogue::BiasAct(&bias, Activation::QuickGelu),
                    ),
                ] {
                    let mut c = if accumulate {
                        c0.clone()
                    } else {
                        vec![f32::NAN; m * n]
                    };
                    pool.install(|| {
                        gemm_i8(
                            kernel.isa(),
                            &a,
                            m,
                            &packed,
                            &mut c,
                            accumulate,
                            epilogue,
                            &mut Int8Scratch::default(),
                        )
                    });
                    for i in 0..m {
                        let mut row: Vec<f32> = (0..n)
                            .map(|j| {
                                let mut v = want[i * n + j];
                                if accumulate {
                                    v += f64::from(c0[i * n + j]);
                                }
                                if !matches!(epilogue, Epilogue::None) {
                                    v += f64::from(bias[j]);
                                }
                                v as f32
                            })
                            .collect();
                        if let Epilogue::BiasAct(_, act) = epilogue {
                            ops::activate(&mut row, act);
                        }
                        for j in 0..n {
                            let (g, w) = (c[i * n + j], row[j]);
                            // f32 rounding of the scaling only: the sums are exact.
                            assert!(
                                (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                                "{what} {case}: C[{i},{j}] = {g}, want {w}"
                            );
                        }
                    }
                    if case == "plain" {
                        // Every kernel set and thread count gives the same bits.
                        match &first {
                            None => first = Some(c.clone()),
                            Some(f) => {
                                assert_eq!(f, &c, "{what}: differs from the first kernel set")
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The scheme itself: against the exact f32 product, the error stays at the size 8-bit
/// quantisation predicts (a check that the reference above is the right one to match).
#[test]
fn int8_gemm_is_close_to_the_f32_product() {
    let (m, k, n) = (16, 768, 96);
    let a: Vec<f32> = values(11, m * k).iter().map(|v| v + 0.2).collect();
    let b = values(12, k * n);
    let packed = PackedI8::from_fn(k, n, |r, c| b[r * n + c]);
    let mut c = vec![0.0; m * n];
    gemm_i8(
        Isa::detect(),
        &a,
        m,
        &packed,
        &mut c,
        false,
        Epilogue::None,
        &mut Int8Scratch::default(),
    );
    let (mut err, mut norm) = (0f64, 0f64);
    for i in 0..m {
        for j in 0..n {
            let exact: f64 = (0..k)
                .map(|p| f64::from(a[i * k + p]) * f64::from(b[p * n + j]))
                .sum();
            err += (f64::from(c[i * n + j]) - exact).powi(2);
            norm += exact.powi(2);
        }
    }
    let rel = (err / norm).sqrt();
    println!("relative error of the int8 product: {rel:.2e}");
    // Two 8-bit roundings of uniform values over sums of 768 terms: about 1 %.
    assert!(rel < 0.02, "relative error {rel}");
}

#[test]
fn packed_weights_hold_per_column_codes() {
    let (k, n) = (9, 35);
    let b = values(5, k * n);
    let packed = PackedI8::from_fn(k, n, |r, c| b[r * n + c]);
    let (q, s) = quantise_weights(&b, k, n);
    for r in 0..k {
        for c in 0..n {
            let (got, scale) = packed.get(r, c);
            assert_eq!(i32::from(got), q[r * n + c], "code at ({r}, {c})");
            assert_eq!(f64::from(scale), s[c], "scale of column {c}");
        }
    }
    // A zero column quantises to zeros with scale 0 (no division by zero).
    let zero = PackedI8::from_fn(3, 2, |_, c| if c == 0 { 0.0 } else { 1.0 });
    assert_eq!(zero.get(1, 0), (0, 0.0));
    assert_eq!(zero.get(1, 1), (127, 1.0 / 127.0));
}

//! The native GEMMs ([`glimpse_kernels::gemm`], [`glimpse_kernels::bf16`]) against a
//! naive f64 reference, on shapes that are not multiples of the tile sizes, with every
//! epilogue, on the detected kernels and on the portable ones, with one and several threads.

use glimpse_kernels::bf16::{gemm_bf16, round_bf16, PackedBf16};
use glimpse_kernels::gemm::{
    block_units, gemm, gemm_from_packed, gemm_into_packed, pack_a, packed_len, Epilogue, PackedB,
    KC_UNITS, MR, NR,
};
use glimpse_kernels::Activation;
use glimpse_kernels::{ops, Isa};

mod common;
use common::values;

/// `C = A·B (+ C0) (+ bias)` in f64, `A` `[m, k]` with stride `lda`, `B` `[k, n]`.
#[allow(clippy::too_many_arguments)]
fn reference(
    a: &[f32],
    lda: usize,
    b: &[f32],
    m: usize,
    n: usize,
    k: usize,
    c0: Option<&[f32]>,
    ldc: usize,
    bias: Option<&[f32]>,
) -> Vec<(f64, f64)> {
    let mut out = vec![(0f64, 0f64); m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            let mut abs = 1f64;
            for p in 0..k {
                let x = a[i * lda + p] as f64 * b[p * n + j] as f64;
                s += x;
                abs += x.abs();
            }
            if let Some(c0) = c0 {
                s += c0[i * ldc + j] as f64;
            }
            if let Some(bias) = bias {
                s += bias[j] as f64;
            }
            out[i * n + j] = (s, abs + s.abs());
        }
    }
    out
}

/// Checks every element: `|got - want| <= tol · (1 + Σ|a·b| + |want|)`, the scale of f32
/// rounding errors in a sum.
fn check(what: &str, got: &[f32], ldc: usize, want: &[(f64, f64)], m: usize, n: usize, tol: f64) {
    for i in 0..m {
        for j in 0..n {
            let (g, (w, scale)) = (got[i * ldc + j] as f64, want[i * n + j]);
            assert!(
                (g - w).abs() <= tol * scale,
                "{what}: C[{i},{j}] = {g}, want {w}"
            );
        }
    }
}

const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (1, 5, 3),
    (3, 1, 7),
    (13, 31, 1),
    (MR, NR, 16),
    (MR + 1, NR + 1, 2),
    (2 * MR - 1, 3 * NR - 5, 33),
    (29, 65, 257),
    (57, 129, 300),
    (100, 40, 513),
    (5, 300, 70),
    (200, 77, 96),
    // More than one reduction block (KC_UNITS) in f32 and in bf16 pairs.
    (17, 45, 2 * KC_UNITS + 3),
];

/// Every kernel set this CPU can run (capped by `GLIMPSE_ISA`): portable, AVX2 + FMA,
/// AVX-512 (bf16 widened), AVX-512 BF16. Printed, so the log says which ran.
fn isas() -> Vec<Isa> {
    let v = Isa::available();
    println!(
        "kernel sets run: {v:?} (CPU: {:?}, GLIMPSE_ISA={:?})",
        Isa::hardware(),
        std::env::var("GLIMPSE_ISA").ok()
    );
    v
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
fn f32_gemm_matches_reference_on_odd_shapes() {
    println!("detected ISA: {:?}", Isa::detect());
    for pool in pools() {
        for isa in isas() {
            for (s, &(m, n, k)) in SHAPES.iter().enumerate() {
                let lda = k + 3; // a strided A
                let ldc = n + 2; // a strided C
                let a = values(s as u64, m * lda);
                let b = values(100 + s as u64, k * n);
                let bias = values(200 + s as u64, n);
                let c0 = values(300 + s as u64, m * ldc);
                let packed = PackedB::from_rows(&b, k, n, n);
                let mut scratch = Vec::new();
                let what = format!(
                    "f32 {isa:?} m={m} n={n} k={k} threads={}",
                    pool.current_num_threads()
                );

                // Runs the product into `c` on this pool (the one thread count under test).
                let mut run = |c: &mut [f32], add: bool, epilogue: Epilogue| {
                    pool.install(|| {
                        gemm(
                            isa,
                            &a,
                            m,
                            lda,
                            &packed,
                            c,
                            ldc,
                            add,
                            epilogue,
                            &mut scratch,
                        )
                    })
                };

                // C = A·B
                let mut c = vec![f32::NAN; m * ldc];
                run(&mut c, false, Epilogue::None);
                check(
                    &what,
                    &c,
                    ldc,
                    &reference(&a, lda, &b, m, n, k, None, ldc, None),
                    m,
                    n,
                    1e-6,
                );

                // C += A·B + bias (the residual form)
                let mut c = c0.clone();
                run(&mut c, true, Epilogue::Bias(&bias));
                let want = reference(&a, lda, &b, m, n, k, Some(&c0), ldc, Some(&bias));
                check(
                    &format!("{what} accumulate+bias"),
                    &c,
                    ldc,
                    &want,
                    m,
                    n,
                    1e-6,
                );

                // C = act(A·B + bias), for every activation
                for act in [
                    Activation::QuickGelu,
                    Activation::Gelu,
                    Activation::GeluTanh,
                ] {
                    let mut c = vec![0.0; m * ldc];
                    run(&mut c, false, Epilogue::BiasAct(&bias, act));
                    let exact = reference(&a, lda, &b, m, n, k, None, ldc, Some(&bias));
                    let mut want: Vec<f32> = exact.iter().map(|v| v.0 as f32).collect();
                    ops::activate(&mut want, act);
                    let want: Vec<(f64, f64)> = want
                        .into_iter()
                        .zip(&exact)
                        .map(|(v, e)| (v as f64, e.1))
                        .collect();
                    check(&format!("{what} {act:?}"), &c, ldc, &want, m, n, 2e-6);
                }
                // Columns past n are untouched.
                if ldc > n {
                    let mut c = vec![7.0; m * ldc];
                    run(&mut c, false, Epilogue::None);
                    for i in 0..m {
                        assert_eq!(
                            &c[i * ldc + n..(i + 1) * ldc],
                            &[7.0, 7.0],
                            "{what}: wrote past n"
                        );
                    }
                }
            }
        }
    }
}

/// `A` read in place (row-major, `lda = k` equal to a reduction block, 128 or
/// [`KC_UNITS`]): no copy, and the slice ends at the last row, so a kernel that read a whole
/// last row group would run past it (the driver asserts what the kernels read).
#[test]
fn f32_gemm_reads_a_block_wide_a_in_place() {
    for pool in pools() {
        for isa in isas() {
            for (s, &(m, n, k)) in [(29, 70, 128), (2 * MR + 5, NR + 9, KC_UNITS), (1, 33, 128)]
                .iter()
                .enumerate()
            {
                let a = values(400 + s as u64, m * k); // exactly m rows, no padding group
                let b = values(500 + s as u64, k * n);
                let bias = values(600 + s as u64, n);
                let packed = PackedB::from_rows(&b, k, n, n);
                let mut scratch = Vec::new();
                let mut c = vec![f32::NAN; m * n];
                pool.install(|| {
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
                    )
                });
                let what = format!(
                    "in-place A, {isa:?} m={m} n={n} k={k} threads={}",
                    pool.current_num_threads()
                );
                let want = reference(&a, k, &b, m, n, k, None, n, Some(&bias));
                check(&what, &c, n, &want, m, n, 1e-6);
                if isa != Isa::Portable {
                    assert!(scratch.is_empty(), "{what}: A was copied");
                }
            }
        }
    }
}

/// An MLP's two layers handing off in the packed layout (fc1 writes fc2's packed input, fc2
/// reads it without packing) give exactly the row path's result: the same products, bias,
/// activation and order of additions, on hidden widths of four full reduction blocks
/// (3072), a partial last block (2048 = 768 + 768 + 512), one short block (100, with a partial
/// panel) and 1; and the packed `C` is `pack_a` of the row-major one, element for element.
/// (On the portable set, which multiplies through the `gemm` crate, to 1e-5 of the largest
/// output.)
#[test]
fn f32_mlp_hands_off_in_the_packed_layout() {
    for pool in pools() {
        for isa in isas() {
            for (s, &(m, d, f)) in [
                (2 * MR + 5, 40, 3 * KC_UNITS + KC_UNITS),
                (MR, 33, 2048),
                (7, 64, 100),
                (13, 5, 1),
            ]
            .iter()
            .enumerate()
            {
                let what = format!(
                    "packed hand-off {isa:?} m={m} d={d} f={f} threads={}",
                    pool.current_num_threads()
                );
                let x = values(700 + s as u64, m * d);
                let w1 = PackedB::from_rows(&values(710 + s as u64, d * f), d, f, f);
                let w2 = PackedB::from_rows(&values(720 + s as u64, f * d), f, d, d);
                let (b1, b2) = (values(730 + s as u64, f), values(740 + s as u64, d));
                let act = Activation::QuickGelu;
                let residual = values(750 + s as u64, m * d);
                let mut scratch = Vec::new();
                // The row path.
                let mut hidden = vec![f32::NAN; m * f];
                let mut want = residual.clone();
                pool.install(|| {
                    gemm(
                        isa,
                        &x,
                        m,
                        d,
                        &w1,
                        &mut hidden,
                        f,
                        false,
                        Epilogue::BiasAct(&b1, act),
                        &mut scratch,
                    );
                    gemm(
                        isa,
                        &hidden,
                        m,
                        f,
                        &w2,
                        &mut want,
                        d,
                        true,
                        Epilogue::Bias(&b2),
                        &mut scratch,
                    );
                });
                // The packed hand-off.
                let mut packed = vec![f32::NAN; packed_len(m, f)];
                let mut got = residual.clone();
                pool.install(|| {
                    gemm_into_packed(
                        isa,
                        &x,
                        m,
                        d,
                        &w1,
                        &mut packed,
                        Epilogue::BiasAct(&b1, act),
                        &mut scratch,
                    );
                    gemm_from_packed(isa, &packed, m, &w2, &mut got, d, true, Epilogue::Bias(&b2));
                });
                let mut repacked = Vec::new();
                pack_a(&hidden, m, f, f, &mut repacked);
                assert_eq!(repacked.len(), packed_len(m, f), "{what}: packed_len");
                // Element (r, j) of the packed layout: group, block, row in group, column.
                let block = block_units(f);
                let per_group = f.div_ceil(block) * MR * block;
                for r in 0..m {
                    for j in 0..f {
                        let at = (r / MR) * per_group
                            + (j / block) * MR * block
                            + (r % MR) * block
                            + j % block;
                        assert_eq!(
                            (packed[at].to_bits(), repacked[at].to_bits()),
                            (hidden[r * f + j].to_bits(), hidden[r * f + j].to_bits()),
                            "{what}: element ({r}, {j})"
                        );
                    }
                }
                if isa == Isa::Portable {
                    // The portable set's row path multiplies through the `gemm` crate, its
                    // packed path through the crate on packed blocks: other orders of sums.
                    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
                    for (i, (x, y)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (x - y).abs() <= 1e-5 * scale,
                            "{what}: fc2 output {i}: {x} vs {y}"
                        );
                    }
                } else {
                    assert_eq!(got, want, "{what}: fc2 output");
                }
            }
        }
    }
}

#[test]
fn packing_from_transposed_matches_rows() {
    let (k, n) = (37, 45);
    let b = values(7, k * n);
    let mut bt = vec![0.0; n * k];
    for r in 0..k {
        for c in 0..n {
            bt[c * k + r] = b[r * n + c];
        }
    }
    let (x, y) = (
        PackedB::from_rows(&b, k, n, n),
        PackedB::from_transposed(&bt, k, n, k),
    );
    let a = values(8, 3 * k);
    let (mut c1, mut c2) = (vec![0.0; 3 * n], vec![0.0; 3 * n]);
    let mut s = Vec::new();
    gemm(
        Isa::detect(),
        &a,
        3,
        k,
        &x,
        &mut c1,
        n,
        false,
        Epilogue::None,
        &mut s,
    );
    gemm(
        Isa::detect(),
        &a,
        3,
        k,
        &y,
        &mut c2,
        n,
        false,
        Epilogue::None,
        &mut s,
    );
    assert_eq!(c1, c2);
}

#[test]
fn bf16_gemm_matches_reference_on_rounded_inputs() {
    for pool in pools() {
        for isa in isas() {
            for (s, &(m, n, k)) in SHAPES.iter().enumerate() {
                let lda = k + 1;
                let a = values(400 + s as u64, m * lda);
                let b = values(500 + s as u64, k * n);
                let bias = values(600 + s as u64, n);
                let packed = PackedBf16::from_rows(&b, k, n, n);
                // The reference sees what the kernel sees: both operands rounded to bf16.
                let ar: Vec<f32> = a.iter().map(|&v| round_bf16(v)).collect();
                let br: Vec<f32> = b.iter().map(|&v| round_bf16(v)).collect();
                let mut scratch = Vec::new();
                let what = format!(
                    "bf16 {isa:?} m={m} n={n} k={k} threads={}",
                    pool.current_num_threads()
                );
                // Runs the product with `epilogue` on this pool.
                let mut run = |epilogue: Epilogue| {
                    let mut c = vec![0.0; m * n];
                    pool.install(|| {
                        gemm_bf16(
                            isa,
                            &a,
                            m,
                            lda,
                            &packed,
                            &mut c,
                            n,
                            false,
                            epilogue,
                            &mut scratch,
                        )
                    });
                    c
                };
                let c = run(Epilogue::Bias(&bias));
                let want = reference(&ar, lda, &br, m, n, k, None, n, Some(&bias));
                check(&what, &c, n, &want, m, n, 1e-6);
                // And against the unrounded product, within bf16's precision (2^-8 relative
                // per operand).
                let exact = reference(&a, lda, &b, m, n, k, None, n, Some(&bias));
                check(&format!("{what} vs unrounded"), &c, n, &exact, m, n, 1e-2);
                // With the activation, which the bf16 kernels' stores apply too: exactly
                // `ops::activate` of the biased product computed above.
                let act_c = run(Epilogue::BiasAct(&bias, Activation::GeluTanh));
                let mut want_act = c.clone();
                ops::activate(&mut want_act, Activation::GeluTanh);
                assert_eq!(act_c, want_act, "{what}: bias + activation");
            }
        }
    }
}

#[test]
fn bf16_rounding_is_nearest_even() {
    assert_eq!(round_bf16(1.0), 1.0);
    // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties to even (1.0).
    assert_eq!(round_bf16(1.0 + 1.0 / 256.0), 1.0);
    // Just above halfway rounds up.
    assert_eq!(
        round_bf16(1.0 + 1.0 / 256.0 + 1.0 / 65536.0),
        1.0 + 1.0 / 128.0
    );
    assert!(round_bf16(f32::NAN).is_nan());
    assert_eq!(round_bf16(f32::INFINITY), f32::INFINITY);
}

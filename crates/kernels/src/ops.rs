//! Element-wise and row-wise operations of the transformer, in f32: layer norm, bias,
//! activations, softmax, residual adds.
//!
//! Each operation is written once as plain Rust and compiled twice: for the baseline target
//! and, where the CPU has them, for AVX-512 and for AVX2 + FMA (`#[target_feature]` wrappers around the same
//! inlined body, so LLVM vectorises it with zmm or ymm registers). `exp`, `erf` and `tanh` are
//! polynomial approximations without library calls, so they vectorise too; their errors
//! (≤ 2 ulp for `exp`, 1.5e-7 absolute for `erf`) are far below the model's f32 noise.

use rayon::prelude::*;

use crate::Activation;

/// Runs `$generic(args)` compiled for AVX-512 or for AVX2 + FMA when [`Isa::detect`]
/// (the CPU, capped by `GLIMPSE_ISA`) allows it.
///
/// [`Isa::detect`]: super::Isa::detect
macro_rules! dispatch {
    ($avx:ident, $avx2:ident, $generic:ident ( $($arg:expr),* )) => {{
        #[cfg(target_arch = "x86_64")]
        {
            let isa = super::Isa::detect();
            if isa.avx512() {
                // SAFETY: AVX-512F/BW/DQ/VL were detected at run time (`detect` never
                // reports more than the CPU has).
                return unsafe { $avx($($arg),*) };
            }
            if isa.avx2() {
                // SAFETY: AVX2 and FMA were detected at run time.
                return unsafe { $avx2($($arg),*) };
            }
        }
        $generic($($arg),*)
    }};
}

/// Declares the AVX-512 and the AVX2 + FMA compilations of an inlined generic body.
macro_rules! simd_twins {
    ($avx:ident, $avx2:ident, $generic:ident, ($($arg:ident : $ty:ty),*) $(-> $ret:ty)?) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,fma")]
        unsafe fn $avx($($arg: $ty),*) $(-> $ret)? {
            $generic($($arg),*)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx2($($arg: $ty),*) $(-> $ret)? {
            $generic($($arg),*)
        }
    };
}

/// `e^x` for f32 (Cephes' `expf` polynomial; inputs are clamped to the finite range).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    // Round x·log2(e) to the nearest integer n by adding 1.5·2^23: the sum's low mantissa
    // bits then hold n (integer arithmetic only, so the loop vectorises).
    const MAGIC: f32 = 12_582_912.0;
    let x = x.clamp(-87.33, 88.37);
    let t = x * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * C1 - n * C2;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^n: n + 127 in the exponent field (n is in -126..=127 after the clamp).
    let ni = t.to_bits().wrapping_sub(MAGIC.to_bits());
    let scale = f32::from_bits(ni.wrapping_add(127) << 23);
    y * scale
}

/// `erf(x)` (Abramowitz & Stegun 7.1.26, absolute error ≤ 1.5e-7).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_8) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    let y = 1.0 - poly * exp(-a * a);
    y.copysign(x)
}

#[inline(always)]
fn act_one(x: f32, act: Activation) -> f32 {
    match act {
        // x * sigmoid(1.702 x)
        Activation::QuickGelu => x / (1.0 + exp(-1.702 * x)),
        Activation::Gelu => 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2)),
        Activation::GeluTanh => {
            const K: f32 = 0.797_884_6; // sqrt(2 / pi)
            let y = K * (x + 0.044_715 * x * x * x);
            let tanh = 1.0 - 2.0 / (exp(2.0 * y) + 1.0);
            0.5 * x * (1.0 + tanh)
        }
    }
}

/// Applies the activation in place.
pub fn activate(x: &mut [f32], act: Activation) {
    dispatch!(activate_avx512, activate_avx2, activate_generic(x, act))
}

/// [`activate`]'s body, for callers that are already compiled for a kernel set (the GEMM
/// kernels' stores apply it to a tile in registers: the same formula, so the same values).
#[inline(always)]
pub(crate) fn activate_generic(x: &mut [f32], act: Activation) {
    match act {
        Activation::QuickGelu => x
            .iter_mut()
            .for_each(|v| *v = act_one(*v, Activation::QuickGelu)),
        Activation::Gelu => x
            .iter_mut()
            .for_each(|v| *v = act_one(*v, Activation::Gelu)),
        Activation::GeluTanh => x
            .iter_mut()
            .for_each(|v| *v = act_one(*v, Activation::GeluTanh)),
    }
}
simd_twins!(activate_avx512, activate_avx2, activate_generic, (x: &mut [f32], act: Activation));

/// `x += y` element-wise (over the shorter length).
pub fn add_in_place(x: &mut [f32], y: &[f32]) {
    dispatch!(add_avx512, add_avx2, add_generic(x, y))
}

#[inline(always)]
fn add_generic(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(a, b)| *a += b);
}
simd_twins!(add_avx512, add_avx2, add_generic, (x: &mut [f32], y: &[f32]));

/// Sum of a slice in 16 independent lanes (vectorises without reassociating one sum).
#[inline(always)]
fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = x.chunks_exact(16);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..16 {
            acc[l] += f(c[l]);
        }
    }
    let mut s = 0.0;
    for &v in tail {
        s += f(v);
    }
    acc.iter().sum::<f32>() + s
}

/// Maximum of a slice in 16 independent lanes (a single `f32::max` fold is a serial chain
/// that does not vectorise: one dependent `maxss` per element).
#[inline(always)]
fn lane_max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let chunks = x.chunks_exact(16);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..16 {
            acc[l] = if c[l] > acc[l] { c[l] } else { acc[l] };
        }
    }
    let mut m = f32::NEG_INFINITY;
    for &v in tail.iter().chain(&acc) {
        m = if v > m { v } else { m };
    }
    m
}

/// Layer norm of one row: `(x - mean) / sqrt(var + eps) * gamma + beta` (biased variance,
/// as PyTorch).
#[inline(always)]
fn layer_norm_row(x: &[f32], out: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let d = x.len() as f32;
    let mean = lane_sum(x, |v| v) / d;
    let var = lane_sum(x, |v| (v - mean) * (v - mean)) / d;
    let rstd = 1.0 / (var + eps).sqrt();
    for (((o, &v), &g), &b) in out.iter_mut().zip(x).zip(gamma).zip(beta) {
        *o = (v - mean) * rstd * g + b;
    }
}

#[inline(always)]
fn layer_norm_rows_generic(x: &[f32], out: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let d = gamma.len();
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        layer_norm_row(xr, or, gamma, beta, eps);
    }
}
simd_twins!(
    layer_norm_rows_avx512,
    layer_norm_rows_avx2,
    layer_norm_rows_generic,
    (x: &[f32], out: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32)
);

fn layer_norm_rows(x: &[f32], out: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    dispatch!(
        layer_norm_rows_avx512,
        layer_norm_rows_avx2,
        layer_norm_rows_generic(x, out, gamma, beta, eps)
    )
}

/// Layer norm of every row of `x` (`[rows, d]`, `d = gamma.len()`) into `out`, rows in
/// parallel.
pub fn layer_norm(x: &[f32], out: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let d = gamma.len();
    assert_eq!(beta.len(), d);
    assert_eq!(x.len(), out.len());
    let rows_per_task = (16384 / d.max(1)).max(1);
    x.par_chunks(rows_per_task * d)
        .zip(out.par_chunks_mut(rows_per_task * d))
        .for_each(|(x, out)| layer_norm_rows(x, out, gamma, beta, eps));
}

/// Softmax of `row[..len]` in place; `row[len..]` is set to zero (masked positions).
pub fn softmax_prefix(row: &mut [f32], len: usize) {
    dispatch!(softmax_avx512, softmax_avx2, softmax_generic(row, len))
}

#[inline(always)]
fn softmax_generic(row: &mut [f32], len: usize) {
    let (live, masked) = row.split_at_mut(len);
    masked.fill(0.0);
    let max = lane_max(live);
    live.iter_mut().for_each(|v| *v = exp(*v - max));
    let inv = 1.0 / lane_sum(live, |v| v);
    live.iter_mut().for_each(|v| *v *= inv);
}
simd_twins!(softmax_avx512, softmax_avx2, softmax_generic, (row: &mut [f32], len: usize));

/// Divides `x` by its L2 norm (a zero vector stays zero, as `l2_normalize` clamps the norm).
pub fn l2_normalize(x: &mut [f32]) {
    let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    x.iter_mut().for_each(|v| *v /= norm);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate() {
        let mut x = -80.0f32;
        while x < 80.0 {
            let (got, want) = (exp(x), x.exp());
            assert!(
                ((got - want) / want).abs() < 4e-7,
                "exp({x}) = {got} vs {want}"
            );
            x += 0.037;
        }
        assert!(exp(-200.0) < 1e-37 && exp(-200.0) >= 0.0);
        assert!(exp(200.0).is_finite());
    }

    #[test]
    fn erf_is_accurate() {
        // Reference values of erf.
        for (x, want) in [
            (0.0f32, 0.0f32),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (2.0, 0.995_322_3),
            (-1.0, -0.842_700_8),
        ] {
            assert!(
                (erf(x) - want).abs() < 3e-7,
                "erf({x}) = {} vs {want}",
                erf(x)
            );
        }
    }

    #[test]
    fn softmax_masks_and_sums_to_one() {
        let mut row = [1.0, 2.0, 3.0, 100.0];
        softmax_prefix(&mut row, 3);
        assert_eq!(row[3], 0.0);
        assert!((row[..3].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(row[2] > row[1] && row[1] > row[0]);
    }

    #[test]
    fn layer_norm_normalises() {
        let x: Vec<f32> = (0..40).map(|i| i as f32 * 0.3 - 2.0).collect();
        let mut out = vec![0.0; 40];
        layer_norm(&x, &mut out, &[1.0; 20], &[0.5; 20], 1e-5);
        for row in out.chunks(20) {
            let mean = row.iter().sum::<f32>() / 20.0;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 20.0;
            assert!(
                (mean - 0.5).abs() < 1e-5 && (var - 1.0).abs() < 1e-3,
                "{mean} {var}"
            );
        }
    }
}

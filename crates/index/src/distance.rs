//! Vector checks, normalisation and the dot-product kernel.
//!
//! All stored vectors have unit length, so cosine similarity is a dot product. The kernel picks
//! AVX-512F, else AVX2+FMA, at run time when the CPU has it (the crate is built for baseline
//! x86-64, where the compiler alone only emits SSE2) and otherwise uses an 8-lane portable loop
//! the compiler vectorises. The graph's construction spends about 40 % of its time here.

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// A dot-product kernel.
pub(crate) type DotFn = fn(&[f32], &[f32]) -> f32;

/// Dot product of two equally long slices.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    dot_kernel()(a, b)
}

/// The best kernel for this CPU (resolved once); hot loops fetch it once per search.
#[inline]
pub(crate) fn dot_kernel() -> DotFn {
    static KERNEL: OnceLock<DotFn> = OnceLock::new();
    *KERNEL.get_or_init(select_kernel)
}

/// Hints the CPU to start loading every cache line of `v`.
#[inline(always)]
pub(crate) fn prefetch<T>(v: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let bytes = std::mem::size_of_val(v);
        let p = v.as_ptr() as *const i8;
        let mut off = 0;
        while off < bytes {
            // SAFETY: prefetch never faults and `off` stays inside `v`; SSE is baseline on
            // x86-64. (The intrinsic is safe on newer toolchains, hence the allow.)
            #[allow(unused_unsafe)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(p.add(off));
            }
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// Hints the CPU to start loading the cache line holding the start of `v` (nothing if empty).
#[inline(always)]
pub(crate) fn prefetch_first<T>(v: &[T]) {
    prefetch(v.get(..1).unwrap_or(&[]));
}

fn select_kernel() -> DotFn {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return dot_avx512_entry;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return dot_avx2_entry;
        }
    }
    dot_portable
}

#[cfg(target_arch = "x86_64")]
fn dot_avx512_entry(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: only selected by `select_kernel` after detecting AVX-512F.
    unsafe { dot_avx512(a, b) }
}

/// 16-lane FMA over four accumulators, the tail under a mask (no scalar loop).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut i = 0;
    // SAFETY: every load reads 16 floats at offsets < n from both slices; the masked tail
    // reads only the lanes below n (masked-off lanes are not accessed).
    unsafe {
        let mut s0 = _mm512_setzero_ps();
        let mut s1 = _mm512_setzero_ps();
        let mut s2 = _mm512_setzero_ps();
        let mut s3 = _mm512_setzero_ps();
        while i + 64 <= n {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), s0);
            s1 = _mm512_fmadd_ps(
                _mm512_loadu_ps(pa.add(i + 16)),
                _mm512_loadu_ps(pb.add(i + 16)),
                s1,
            );
            s2 = _mm512_fmadd_ps(
                _mm512_loadu_ps(pa.add(i + 32)),
                _mm512_loadu_ps(pb.add(i + 32)),
                s2,
            );
            s3 = _mm512_fmadd_ps(
                _mm512_loadu_ps(pa.add(i + 48)),
                _mm512_loadu_ps(pb.add(i + 48)),
                s3,
            );
            i += 64;
        }
        while i + 16 <= n {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), s0);
            i += 16;
        }
        if i < n {
            let mask: __mmask16 = (1u16 << (n - i)) - 1;
            s1 = _mm512_fmadd_ps(
                _mm512_maskz_loadu_ps(mask, pa.add(i)),
                _mm512_maskz_loadu_ps(mask, pb.add(i)),
                s1,
            );
        }
        _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)))
    }
}

/// Portable kernel: eight independent accumulators so the loop vectorises without `-ffast-math`.
pub(crate) fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        sum += x * y;
    }
    sum
}

#[cfg(target_arch = "x86_64")]
fn dot_avx2_entry(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: only selected by `select_kernel` after detecting AVX2 and FMA.
    unsafe { dot_avx2(a, b) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut i = 0;
    // SAFETY: every load reads 8 floats at offsets < n from both slices.
    unsafe {
        let mut s0 = _mm256_setzero_ps();
        let mut s1 = _mm256_setzero_ps();
        let mut s2 = _mm256_setzero_ps();
        let mut s3 = _mm256_setzero_ps();
        while i + 32 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            s1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
                s1,
            );
            s2 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 16)),
                _mm256_loadu_ps(pb.add(i + 16)),
                s2,
            );
            s3 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 24)),
                _mm256_loadu_ps(pb.add(i + 24)),
                s3,
            );
            i += 32;
        }
        while i + 8 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            i += 8;
        }
        let s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
        let hi = _mm256_extractf128_ps(s, 1);
        let lo = _mm256_castps256_ps128(s);
        let q = _mm_add_ps(hi, lo);
        let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
        let q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
        let mut sum = _mm_cvtss_f32(q);
        while i < n {
            sum += *pa.add(i) * *pb.add(i);
            i += 1;
        }
        sum
    }
}

/// Checks a vector (length, finiteness, non-zero norm) and returns its unit-length copy.
pub(crate) fn normalized(v: &[f32], dims: usize, id: Option<u64>) -> Result<Vec<f32>> {
    let norm = checked_norm(v, dims, id)?;
    Ok(v.iter().map(|&x| (f64::from(x) / norm) as f32).collect())
}

/// Checks a vector (length, finiteness, non-zero norm) and returns its norm.
pub(crate) fn checked_norm(v: &[f32], dims: usize, id: Option<u64>) -> Result<f64> {
    if v.len() != dims {
        return Err(Error::DimensionMismatch {
            id,
            expected: dims,
            got: v.len(),
        });
    }
    if let Some(position) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFinite { id, position });
    }
    // Accumulate in f64: a sum of squares of large finite f32s can overflow f32.
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if !(norm.is_finite() && norm > f64::from(f32::MIN_POSITIVE)) {
        return Err(Error::ZeroVector { id });
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel this CPU can run (the portable one always).
    fn kernels() -> Vec<(&'static str, DotFn)> {
        let mut out: Vec<(&'static str, DotFn)> = vec![("portable", dot_portable)];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                out.push(("avx2", dot_avx2_entry));
            } else {
                eprintln!("avx2 kernel skipped: no AVX2+FMA on this CPU");
            }
            if is_x86_feature_detected!("avx512f") {
                out.push(("avx512", dot_avx512_entry));
            } else {
                eprintln!("avx512 kernel skipped: no AVX-512F on this CPU");
            }
        }
        out
    }

    #[test]
    fn kernels_agree() {
        for n in [
            0, 1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 384, 512, 515,
        ] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) * 0.1).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 5 % 11) as f32 - 5.0) * 0.3).collect();
            let exact: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            for (name, kernel) in kernels() {
                let got = f64::from(kernel(&a, &b));
                assert!(
                    (got - exact).abs() < 1e-3,
                    "{name}, n={n}: {got} vs {exact}"
                );
            }
            assert!((f64::from(dot(&a, &b)) - exact).abs() < 1e-3, "n={n}");
        }
    }

    #[test]
    fn normalizes_and_rejects() {
        let v = normalized(&[3.0, 4.0], 2, None).unwrap();
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        let big = normalized(&[f32::MAX, f32::MAX], 2, None).unwrap();
        assert!((dot(&big, &big) - 1.0).abs() < 1e-6);
        assert!(matches!(
            normalized(&[1.0], 2, Some(3)),
            Err(Error::DimensionMismatch { .. })
        ));
        let nan = normalized(&[1.0, f32::NAN], 2, None);
        assert!(matches!(nan, Err(Error::NonFinite { position: 1, .. })));
        let inf = normalized(&[f32::INFINITY, 1.0], 2, None);
        assert!(matches!(inf, Err(Error::NonFinite { position: 0, .. })));
        assert!(matches!(
            normalized(&[0.0, 0.0], 2, Some(1)),
            Err(Error::ZeroVector { .. })
        ));
    }
}

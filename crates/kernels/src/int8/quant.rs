//! Quantisation: weights to i8 with one scale per output channel (symmetric, packed once),
//! activations to u8 with one scale and zero point per row (asymmetric, every call).

use rayon::prelude::*;

use crate::gemm::Aligned;
use crate::Isa;

/// Columns per packed panel: two zmm registers of i32 lanes.
pub const NR: usize = 32;
/// `k` values per reduction unit: the four bytes one `vpdpbusd` lane sums.
pub const UNIT: usize = 4;

/// `B[k, n]` (the weights) as i8 with one scale per column.
///
/// Column `c` holds `q[k, c] = round(B[k, c] / s[c])` in `-127..=127`, `s[c] = max|B[·, c]| /
/// 127`. The layout is the operand layout of `vpdpbusd`: panels of [`NR`] columns, each
/// `units × NR × 4` bytes, unit-major; in a unit, column `c`'s four bytes are `k = 4u..4u+4`.
/// Padding (past `n`, past `k`) is zero.
#[derive(Debug, Clone)]
pub struct PackedI8 {
    k: usize,
    n: usize,
    pub(crate) data: Aligned<i8>,
    /// `s[c]`, zero past `n`.
    pub(crate) scales: Vec<f32>,
    /// `Σ_k q[k, c]`: the zero point's correction.
    pub(crate) sums: Vec<i32>,
}

impl PackedI8 {
    /// Quantises and packs `B[k, n]` given by `get(row, col)` (called from several threads).
    pub fn from_fn(k: usize, n: usize, get: impl Fn(usize, usize) -> f32 + Sync) -> Self {
        let units = k.div_ceil(UNIT);
        let panels = n.div_ceil(NR);
        let per_panel = units * NR * UNIT;
        let mut data = Aligned::zeroed(panels * per_panel);
        let mut scales = vec![0f32; panels * NR];
        let mut sums = vec![0i32; panels * NR];
        if per_panel > 0 {
            data.as_mut_slice()
                .par_chunks_exact_mut(per_panel)
                .zip(scales.par_chunks_exact_mut(NR))
                .zip(sums.par_chunks_exact_mut(NR))
                .enumerate()
                .for_each(|(j, ((panel, scales), sums))| {
                    let mut column = vec![0f32; k];
                    let mut codes = vec![0i8; k];
                    for c in 0..NR.min(n - j * NR) {
                        let col = j * NR + c;
                        for (r, v) in column.iter_mut().enumerate() {
                            *v = get(r, col);
                        }
                        let max = column.iter().fold(0f32, |m, v| m.max(v.abs()));
                        let (scale, inv) = if max > 0.0 {
                            (max / 127.0, 127.0 / max)
                        } else {
                            (0.0, 0.0)
                        };
                        // Branch-free loops the compiler vectorises (packing time matters for
                        // a query process's cold start).
                        for (q, &v) in codes.iter_mut().zip(&column) {
                            *q = round_code(v * inv);
                        }
                        for (u, unit) in codes.chunks(UNIT).enumerate() {
                            let at = (u * NR + c) * UNIT;
                            panel[at..at + unit.len()].copy_from_slice(unit);
                        }
                        scales[c] = scale;
                        sums[c] = codes.iter().map(|&q| i32::from(q)).sum();
                    }
                });
        }
        Self {
            k,
            n,
            data,
            scales,
            sums,
        }
    }

    /// The reduction length.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The number of columns.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Reduction units (`k` rounded up to [`UNIT`], divided by it).
    pub fn units(&self) -> usize {
        self.k.div_ceil(UNIT)
    }

    /// The quantised value at `(row, col)` and its column's scale (for tests and references).
    pub fn get(&self, row: usize, col: usize) -> (i8, f32) {
        assert!(
            row < self.k && col < self.n,
            "outside [{}, {}]",
            self.k,
            self.n
        );
        let (j, c) = (col / NR, col % NR);
        let q = self.data.as_slice()
            [j * self.units() * NR * UNIT + ((row / UNIT) * NR + c) * UNIT + row % UNIT];
        (q, self.scales[col])
    }
}

/// `x` rounded half away from zero (as `f32::round`) and clamped to `-127..=127`, without
/// the libm call `round` is on the baseline x86-64 target (it dominated packing).
#[inline]
fn round_code(x: f32) -> i8 {
    let x = x.clamp(-127.0, 127.0);
    let t = x as i32; // truncation, exact
    let frac = x - t as f32; // exact for |x| < 2^23
    (t + i32::from(frac >= 0.5) - i32::from(frac <= -0.5)) as i8
}

/// A row's quantisation: `x ≈ scale · (q − zero)`, `q` in `0..=255`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RowQuant {
    /// Step between two codes.
    pub scale: f32,
    /// The code of 0.0.
    pub zero: i32,
}

/// The quantisation of a row whose values lie in `[min, max]`: the range widened to hold 0
/// (so 0 is exact and the zero point an integer), split into 255 steps.
pub fn row_quant(min: f32, max: f32) -> RowQuant {
    let (lo, hi) = (min.min(0.0), max.max(0.0));
    if !(hi - lo).is_finite() || hi - lo <= 0.0 {
        return RowQuant {
            scale: 1.0,
            zero: 0,
        };
    }
    let scale = (hi - lo) / 255.0;
    let zero = (-lo / scale).round().clamp(0.0, 255.0) as i32;
    RowQuant { scale, zero }
}

/// Quantises one row into `out` (`k` codes, then zeros up to `out.len()`).
#[inline(always)]
fn quantise_row_portable(x: &[f32], out: &mut [u8]) -> RowQuant {
    let (min, max) = x
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let q = row_quant(min, max);
    let inv = 1.0 / q.scale;
    let zero = q.zero as f32;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v * inv + zero).round_ties_even().clamp(0.0, 255.0) as u8;
    }
    out[x.len()..].fill(0);
    q
}

/// [`quantise_row_portable`] compiled for AVX2 (rounding inline instead of a libm call).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn quantise_row_avx2(x: &[f32], out: &mut [u8]) -> RowQuant {
    quantise_row_portable(x, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
/// As [`quantise_row_portable`], in zmm registers (the same codes).
unsafe fn quantise_row_avx512(x: &[f32], out: &mut [u8]) -> RowQuant {
    use std::arch::x86_64::*;
    let k = x.len();
    let full = k / 16;
    let mut lo = _mm512_set1_ps(f32::INFINITY);
    let mut hi = _mm512_set1_ps(f32::NEG_INFINITY);
    for i in 0..full {
        // SAFETY: `16·i + 16 <= k`.
        let v = unsafe { _mm512_loadu_ps(x.as_ptr().add(16 * i)) };
        lo = _mm512_min_ps(lo, v);
        hi = _mm512_max_ps(hi, v);
    }
    let (mut min, mut max) = (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi));
    for &v in &x[16 * full..] {
        min = min.min(v);
        max = max.max(v);
    }
    let q = row_quant(min, max);
    let inv = _mm512_set1_ps(1.0 / q.scale);
    let zero = _mm512_set1_ps(q.zero as f32);
    let (zeros, top) = (_mm512_setzero_ps(), _mm512_set1_ps(255.0));
    for i in 0..full {
        // SAFETY: `16·i + 16 <= k <= out.len()`.
        unsafe {
            let v = _mm512_loadu_ps(x.as_ptr().add(16 * i));
            // Multiply, then add (no FMA): the same roundings as the portable code.
            let v = _mm512_add_ps(_mm512_mul_ps(v, inv), zero);
            let v = _mm512_min_ps(_mm512_max_ps(v, zeros), top);
            let codes = _mm512_cvtusepi32_epi8(_mm512_cvtps_epu32(v));
            _mm_storeu_si128(out.as_mut_ptr().add(16 * i) as *mut __m128i, codes);
        }
    }
    let (inv, zero) = (1.0 / q.scale, q.zero as f32);
    for (o, &v) in out[16 * full..].iter_mut().zip(&x[16 * full..]) {
        *o = (v * inv + zero).round_ties_even().clamp(0.0, 255.0) as u8;
    }
    out[k..].fill(0);
    q
}

/// Quantises the rows of `a` (`[m, k]`, row-major) into `codes` (`[m, stride]`, `stride` =
/// `k` rounded up to [`UNIT`], zero-padded) and `rows` (one [`RowQuant`] per row).
pub fn quantise_rows(
    isa: Isa,
    a: &[f32],
    m: usize,
    k: usize,
    codes: &mut Vec<u8>,
    rows: &mut Vec<RowQuant>,
) {
    let stride = k.div_ceil(UNIT) * UNIT;
    assert!(a.len() >= m * k, "A too short for [{m}, {k}]");
    crate::gemm::resize_scratch(codes, m * stride);
    rows.clear();
    rows.resize(m, RowQuant::default());
    if stride == 0 {
        return;
    }
    let (avx512, avx2) = (
        isa.avx512() && Isa::hardware().avx512(),
        isa.avx2() && Isa::hardware().avx2(),
    );
    let one = |(x, (out, q)): (&[f32], (&mut [u8], &mut RowQuant))| {
        #[cfg(target_arch = "x86_64")]
        if avx512 {
            // SAFETY: the CPU has AVX-512F/BW (checked above).
            *q = unsafe { quantise_row_avx512(x, out) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if avx2 {
            // SAFETY: the CPU has AVX2 (checked above).
            *q = unsafe { quantise_row_avx2(x, out) };
            return;
        }
        let _ = (avx512, avx2);
        *q = quantise_row_portable(x, out);
    };
    let iter = a[..m * k].chunks_exact(k).zip(
        codes[..m * stride]
            .chunks_exact_mut(stride)
            .zip(rows.iter_mut()),
    );
    if m * k >= 1 << 16 {
        a[..m * k]
            .par_chunks_exact(k)
            .zip(
                codes[..m * stride]
                    .par_chunks_exact_mut(stride)
                    .zip(rows.par_iter_mut()),
            )
            .for_each(one);
    } else {
        iter.for_each(one);
    }
}

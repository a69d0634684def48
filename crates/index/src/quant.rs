//! 8-bit codes of the stored vectors, which the graph walk scores instead of the f32 vectors.
//!
//! A 512-d f32 vector is 2 KB: 32 cache lines that miss on almost every visited node once the
//! collection outgrows the L3 cache, so the walk is bound by memory traffic, not arithmetic.
//! The walk therefore scores 8-bit codes (a quarter of the bytes) and the search rescores its
//! final candidates with the exact f32 vectors, so returned scores and their order are exact.
//!
//! Quantisation is per dimension: `code[i] = round(v[i] / range[i] · 127)`, where `range[i]` is
//! the largest `|v[i]|` over the coded vectors (so nothing clips; real CLIP embeddings have a
//! few dimensions much larger than the rest, which a single scale per vector would waste levels
//! on). The range is folded into the query, which is then quantised with its own scale:
//! `v·q ≈ Σ code[i] · (q[i] · range[i] / 127) ≈ scale_q · Σ code[i] · qcode[i]`.
//!
//! Codes are stored offset to unsigned (`code + 128`, rows padded with zeros to 64 bytes) so
//! AVX-512 VNNI's `vpdpbusd` (unsigned × signed bytes, summed in 32-bit lanes) computes the
//! sum in one instruction per 64 dimensions; the offset adds `128 · Σ qcode`, a per-query
//! constant that is subtracted once.

use std::sync::OnceLock;

use crate::buf::Buf;
use crate::huge;

/// Bytes per row are rounded up to this (one cache line, one AVX-512 register).
const ROW_ALIGN: usize = 64;
/// Offset that makes signed codes unsigned.
const OFFSET: i32 = 128;

/// `Σ a[i] · b[i]` over equally long rows whose length is a multiple of 64.
type DotU8I8 = fn(&[u8], &[i8]) -> i32;

/// The codes of slots `0..len`, row-major, `row` bytes per slot.
#[derive(Debug, Default)]
pub(crate) struct Codes {
    dims: usize,
    row: usize,
    /// Per-dimension range (largest `|v[i]|` over the coded vectors).
    range: Vec<f32>,
    data: Buf<u8>,
}

/// A query prepared for [`Codes::score`].
#[derive(Debug)]
pub(crate) struct QueryCode {
    code: Vec<i8>,
    scale: f32,
    /// `OFFSET · Σ code`: what the unsigned offset adds to every raw dot product.
    bias: i32,
    kernel: DotU8I8,
}

impl Codes {
    /// Codes the `len` vectors `vector(0..len)`, each of `dims` floats.
    pub(crate) fn build<'a>(
        dims: usize,
        len: usize,
        vector: impl Fn(usize) -> &'a [f32] + Sync,
    ) -> Self {
        use rayon::prelude::*;
        /// Rows per parallel task.
        const CHUNK: usize = 4096;
        let row = dims.div_ceil(ROW_ALIGN) * ROW_ALIGN;
        let range = (0..len.div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let mut range = vec![0.0f32; dims];
                for slot in c * CHUNK..((c + 1) * CHUNK).min(len) {
                    for (r, &x) in range.iter_mut().zip(vector(slot)) {
                        *r = r.max(x.abs());
                    }
                }
                range
            })
            .reduce(
                || vec![0.0f32; dims],
                |a, b| a.iter().zip(&b).map(|(x, y)| x.max(*y)).collect(),
            );
        let inv: Vec<f32> = range
            .iter()
            .map(|&r| if r > 0.0 { 127.0 / r } else { 0.0 })
            .collect();
        let mut data = huge::filled(len * row, OFFSET as u8);
        data.par_chunks_mut(row * CHUNK)
            .enumerate()
            .for_each(|(c, rows)| {
                for (i, out) in rows.chunks_exact_mut(row).enumerate() {
                    let v = vector(c * CHUNK + i);
                    for ((o, &x), &s) in out.iter_mut().zip(v).zip(&inv) {
                        *o = (quantize(x * s) + OFFSET) as u8;
                    }
                }
            });
        Codes {
            dims,
            row,
            range,
            data: Buf::Heap(data),
        }
    }

    /// Codes read back from a saved snapshot (`data`: rows of [`row_bytes`](Self::row_bytes),
    /// mapped in place).
    pub(crate) fn from_parts(dims: usize, range: Vec<f32>, data: Buf<u8>) -> Self {
        let row = dims.div_ceil(ROW_ALIGN) * ROW_ALIGN;
        debug_assert_eq!(data.len() % row, 0);
        Codes {
            dims,
            row,
            range,
            data,
        }
    }

    /// Dimensions coded.
    pub(crate) fn dims(&self) -> usize {
        self.dims
    }

    /// Bytes per row (`dims` rounded up to 64).
    pub(crate) fn row_bytes(&self) -> usize {
        self.row
    }

    /// The per-dimension ranges.
    pub(crate) fn range(&self) -> &[f32] {
        &self.range
    }

    /// All rows.
    pub(crate) fn data(&self) -> &[u8] {
        &self.data
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.data.heap_bytes() + self.range.capacity() * 4
    }

    /// Prepares a (unit-length) query.
    pub(crate) fn query(&self, q: &[f32]) -> QueryCode {
        debug_assert_eq!(q.len(), self.dims);
        let folded: Vec<f32> = q
            .iter()
            .zip(&self.range)
            .map(|(&x, &r)| x * r / 127.0)
            .collect();
        let max = folded.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let (inv, scale) = if max > 0.0 {
            (127.0 / max, max / 127.0)
        } else {
            (0.0, 0.0)
        };
        let mut code = vec![0i8; self.row];
        for (c, &x) in code.iter_mut().zip(&folded) {
            *c = quantize(x * inv) as i8;
        }
        let bias = OFFSET * code.iter().map(|&c| i32::from(c)).sum::<i32>();
        QueryCode {
            code,
            scale,
            bias,
            kernel: kernel(),
        }
    }

    /// The code row of `slot`.
    #[inline]
    pub(crate) fn row(&self, slot: usize) -> &[u8] {
        &self.data[slot * self.row..(slot + 1) * self.row]
    }

    /// Approximate dot product of the query with the vector of `slot`.
    #[inline]
    pub(crate) fn score(&self, q: &QueryCode, slot: usize) -> f32 {
        ((q.kernel)(self.row(slot), &q.code) - q.bias) as f32 * q.scale
    }
}

/// Rounds to the nearest integer in `[-127, 127]`.
#[inline]
fn quantize(x: f32) -> i32 {
    (x.round() as i32).clamp(-127, 127)
}

fn kernel() -> DotU8I8 {
    static KERNEL: OnceLock<DotU8I8> = OnceLock::new();
    *KERNEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vnni")
            {
                return dot_vnni_entry;
            }
            if is_x86_feature_detected!("avx2") {
                return dot_avx2_entry;
            }
        }
        dot_portable
    })
}

/// Portable kernel.
pub(crate) fn dot_portable(a: &[u8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum()
}

#[cfg(target_arch = "x86_64")]
fn dot_vnni_entry(a: &[u8], b: &[i8]) -> i32 {
    assert!(a.len() == b.len() && a.len().is_multiple_of(64));
    // SAFETY: selected only after detecting AVX-512F/BW/VNNI; lengths checked above.
    unsafe { dot_vnni(a, b) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn dot_vnni(a: &[u8], b: &[i8]) -> i32 {
    use std::arch::x86_64::*;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut i = 0;
    // SAFETY: every load reads 64 bytes at offsets < len, a multiple of 64, of both slices.
    unsafe {
        let mut s0 = _mm512_setzero_si512();
        let mut s1 = _mm512_setzero_si512();
        while i + 128 <= a.len() {
            s0 = _mm512_dpbusd_epi32(
                s0,
                _mm512_loadu_si512(pa.add(i).cast()),
                _mm512_loadu_si512(pb.add(i).cast()),
            );
            s1 = _mm512_dpbusd_epi32(
                s1,
                _mm512_loadu_si512(pa.add(i + 64).cast()),
                _mm512_loadu_si512(pb.add(i + 64).cast()),
            );
            i += 128;
        }
        if i < a.len() {
            s0 = _mm512_dpbusd_epi32(
                s0,
                _mm512_loadu_si512(pa.add(i).cast()),
                _mm512_loadu_si512(pb.add(i).cast()),
            );
        }
        _mm512_reduce_add_epi32(_mm512_add_epi32(s0, s1))
    }
}

#[cfg(target_arch = "x86_64")]
fn dot_avx2_entry(a: &[u8], b: &[i8]) -> i32 {
    assert!(a.len() == b.len() && a.len().is_multiple_of(64));
    // SAFETY: selected only after detecting AVX2; lengths checked above.
    unsafe { dot_avx2(a, b) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(a: &[u8], b: &[i8]) -> i32 {
    use std::arch::x86_64::*;
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut i = 0;
    // SAFETY: every load reads 16 bytes at offsets < len, a multiple of 64, of both slices.
    unsafe {
        let mut s0 = _mm256_setzero_si256();
        let mut s1 = _mm256_setzero_si256();
        while i < a.len() {
            // Widen to 16 bits (u8 and i8 both fit) and multiply-add pairs into 32 bits.
            let x0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(pa.add(i).cast()));
            let y0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(pb.add(i).cast()));
            let x1 = _mm256_cvtepu8_epi16(_mm_loadu_si128(pa.add(i + 16).cast()));
            let y1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(pb.add(i + 16).cast()));
            s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(x0, y0));
            s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(x1, y1));
            i += 32;
        }
        let s = _mm256_add_epi32(s0, s1);
        let q = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        let q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0b01_00_11_10));
        let q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0b10_11_00_01));
        _mm_cvtsi128_si32(q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::{dot, normalized};

    fn lcg(state: &mut u64) -> f32 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }

    #[test]
    fn kernels_agree_with_the_portable_sum() {
        let mut s = 1u64;
        for len in [64, 128, 192, 512, 576] {
            let a: Vec<u8> = (0..len)
                .map(|_| ((lcg(&mut s) + 0.5) * 255.0) as u8)
                .collect();
            let b: Vec<i8> = (0..len).map(|_| (lcg(&mut s) * 254.0) as i8).collect();
            let want = dot_portable(&a, &b);
            assert_eq!(kernel()(&a, &b), want, "len {len}");
            #[cfg(target_arch = "x86_64")]
            if is_x86_feature_detected!("avx2") {
                assert_eq!(dot_avx2_entry(&a, &b), want, "avx2, len {len}");
            }
        }
        // Extremes: 255 · -127 summed over a long row stays exact in i32.
        let a = vec![255u8; 512];
        let b = vec![-127i8; 512];
        assert_eq!(kernel()(&a, &b), -255 * 127 * 512);
    }

    #[test]
    fn scores_approximate_dot_products() {
        let mut s = 7u64;
        for dims in [3, 64, 100, 512] {
            let vectors: Vec<Vec<f32>> = (0..50)
                .map(|_| {
                    let raw: Vec<f32> = (0..dims).map(|_| lcg(&mut s)).collect();
                    normalized(&raw, dims, None).unwrap()
                })
                .collect();
            let codes = Codes::build(dims, vectors.len(), |i| &vectors[i]);
            let raw: Vec<f32> = (0..dims).map(|_| lcg(&mut s)).collect();
            let q = normalized(&raw, dims, None).unwrap();
            let qc = codes.query(&q);
            for (slot, v) in vectors.iter().enumerate() {
                let err = (codes.score(&qc, slot) - dot(&q, v)).abs();
                assert!(err < 0.02, "dims {dims} slot {slot}: error {err}");
            }
        }
    }

    #[test]
    fn zero_dimensions_and_an_all_zero_range_score_zero() {
        // Every vector is zero in dimension 1: its range is 0 and it must not produce NaN.
        let vectors = [vec![1.0f32, 0.0], vec![-1.0, 0.0]];
        let codes = Codes::build(2, 2, |i| &vectors[i]);
        let qc = codes.query(&[0.0, 1.0]);
        assert_eq!(codes.score(&qc, 0), 0.0);
        let qc = codes.query(&[1.0, 0.0]);
        assert!((codes.score(&qc, 0) - 1.0).abs() < 0.01);
        assert!((codes.score(&qc, 1) + 1.0).abs() < 0.01);
    }
}

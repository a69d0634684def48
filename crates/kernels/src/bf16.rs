//! The bf16 GEMM: weights stored as bf16, activations rounded to bf16 when packed, products
//! accumulated in f32 (`vdpbf16ps` on CPUs with AVX-512 BF16, an exact f32 emulation
//! elsewhere).
//!
//! A reduction *unit* is a pair of `k`: every packed element is a `u32` holding two bf16
//! values, `k = 2u` in the low half and `k = 2u + 1` in the high half, which is the operand
//! layout of `vdpbf16ps`. The product of two bf16 values is exact in f32, so the portable
//! kernel computes the same sums as the hardware one up to the order of f32 additions.
// The AVX-512 intrinsics are stable since Rust 1.89; the workspace's rust-version (1.95, what
// burn 0.22 needs) covers them.

use rayon::prelude::*;

use super::gemm::{
    block_units, check_shapes, drive, resize_scratch, Aligned, CLayout, Epilogue, Shape, MR, NR,
};
use super::Isa;

/// Rounds an f32 to the nearest bf16 (ties to even), as the high 16 bits of the f32.
#[inline(always)]
pub fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if bits & 0x7fff_ffff > 0x7f80_0000 {
        // NaN stays NaN (quiet).
        return ((bits >> 16) as u16) | 0x0040;
    }
    let round = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

/// Widens a bf16 to f32 (exact).
#[inline(always)]
pub fn from_bf16(x: u16) -> f32 {
    f32::from_bits((x as u32) << 16)
}

/// Rounds an f32 to the nearest bf16 value, returned as f32.
#[inline(always)]
pub fn round_bf16(x: f32) -> f32 {
    from_bf16(to_bf16(x))
}

#[inline(always)]
fn pair(lo: f32, hi: f32) -> u32 {
    to_bf16(lo) as u32 | (to_bf16(hi) as u32) << 16
}

/// `B` packed for the bf16 kernels: panels of [`NR`] columns × `k.div_ceil(2)` pairs.
#[derive(Debug, Clone)]
pub struct PackedBf16 {
    k: usize,
    n: usize,
    data: Aligned<u32>,
}

impl PackedBf16 {
    /// Packs `B[k, n]` given by `get(row, col)`, rounding each value to bf16.
    pub fn from_fn(k: usize, n: usize, get: impl Fn(usize, usize) -> f32) -> Self {
        let units = k.div_ceil(2);
        let panels = n.div_ceil(NR);
        let mut data = Aligned::zeroed(panels * units * NR);
        if units > 0 {
            for (j, panel) in data.as_mut_slice().chunks_exact_mut(units * NR).enumerate() {
                for u in 0..units {
                    for jj in 0..NR {
                        let col = j * NR + jj;
                        if col >= n {
                            continue;
                        }
                        let lo = get(2 * u, col);
                        let hi = if 2 * u + 1 < k {
                            get(2 * u + 1, col)
                        } else {
                            0.0
                        };
                        panel[u * NR + jj] = pair(lo, hi);
                    }
                }
            }
        }
        Self { k, n, data }
    }

    /// Packs the row-major `B[k, n]` stored in `b` with row stride `ldb`.
    pub fn from_rows(b: &[f32], k: usize, n: usize, ldb: usize) -> Self {
        if k > 0 && n > 0 {
            assert!(
                ldb >= n && b.len() >= (k - 1) * ldb + n,
                "B too short for [{k}, {n}]"
            );
        }
        let units = k.div_ceil(2);
        let panels = n.div_ceil(NR);
        let mut data = Aligned::zeroed(panels * units * NR);
        if units > 0 {
            data.as_mut_slice()
                .par_chunks_exact_mut(units * NR)
                .enumerate()
                .for_each(|(j, panel)| {
                    let (c0, w) = (j * NR, NR.min(n - j * NR));
                    for (u, dst) in panel.chunks_exact_mut(NR).enumerate() {
                        let lo = &b[2 * u * ldb + c0..2 * u * ldb + c0 + w];
                        if 2 * u + 1 < k {
                            let hi = &b[(2 * u + 1) * ldb + c0..(2 * u + 1) * ldb + c0 + w];
                            for ((d, &l), &h) in dst.iter_mut().zip(lo).zip(hi) {
                                *d = pair(l, h);
                            }
                        } else {
                            for (d, &l) in dst.iter_mut().zip(lo) {
                                *d = pair(l, 0.0);
                            }
                        }
                    }
                });
        }
        Self { k, n, data }
    }

    /// The reduction length.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The number of columns.
    pub fn n(&self) -> usize {
        self.n
    }
}

/// Packs rows `0..m` of the row-major `A[m, k]` (row stride `lda`) into row groups and blocks
/// of bf16 pairs (the layout of [`super::gemm`], in units of pairs); `out` is resized to
/// `m.div_ceil(MR) * units.div_ceil(S) * MR * S`, `units = k.div_ceil(2)`,
/// `S = block_units(units)`.
pub fn pack_a_bf16(isa: Isa, a: &[f32], m: usize, k: usize, lda: usize, out: &mut Vec<u32>) {
    let units = k.div_ceil(2);
    let block = block_units(units);
    let blocks = units.div_ceil(block);
    let per_group = blocks * MR * block;
    let groups = m.div_ceil(MR);
    resize_scratch(out, groups * per_group);
    if units == 0 {
        return;
    }
    let work = |(g, dst): (usize, &mut [u32])| {
        for r in 0..MR.min(m - g * MR) {
            let row = &a[(g * MR + r) * lda..(g * MR + r) * lda + k];
            for (b, src) in row.chunks(2 * block).enumerate() {
                let at = (b * MR + r) * block;
                convert_pairs(isa, src, &mut dst[at..at + src.len().div_ceil(2)]);
            }
        }
    };
    if m * k >= 1 << 16 {
        out.par_chunks_exact_mut(per_group)
            .enumerate()
            .for_each(work);
    } else {
        out.chunks_exact_mut(per_group).enumerate().for_each(work);
    }
}

/// Rounds `src` to bf16 pairs (`k = 2u` low, `2u + 1` high, a zero high half after an odd
/// tail) into `out`, which must hold exactly `src.len().div_ceil(2)` pairs.
///
/// # Panics
/// If `out` has another length (the vector kernel writes 16 pairs at a time through a raw
/// pointer, so its length is checked here, not trusted).
fn convert_pairs(isa: Isa, src: &[f32], out: &mut [u32]) {
    assert_eq!(
        out.len(),
        src.len().div_ceil(2),
        "bf16 pairs: {} values need {} pairs",
        src.len(),
        src.len().div_ceil(2)
    );
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512Bf16 && Isa::hardware() == Isa::Avx512Bf16 {
        // SAFETY: AVX-512F and AVX-512 BF16 were detected at run time.
        unsafe { convert_pairs_avx512bf16(src, out) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if isa.avx512() && Isa::hardware().avx512() {
        // SAFETY: AVX-512F/BW were detected at run time.
        unsafe { convert_pairs_avx512(src, out) };
        return;
    }
    let _ = isa;
    convert_pairs_generic(src, out);
}

/// [`convert_pairs_generic`] with `vcvtne2ps2bf16` (32 values per instruction, round to
/// nearest even, as [`to_bf16`] for every non-NaN value).
///
/// # Safety
/// The CPU supports AVX-512F and AVX-512 BF16. (`out`'s length is checked, not assumed.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn convert_pairs_avx512bf16(src: &[f32], out: &mut [u32]) {
    use std::arch::x86_64::*;
    // The stores below write 16 pairs per 32 values: `out` must have room for all of them.
    assert!(
        out.len() >= src.len().div_ceil(2),
        "bf16 pairs: output too short"
    );
    let mut chunks = src.chunks_exact(32);
    let mut o = 0;
    for chunk in &mut chunks {
        // SAFETY: `chunk` holds 32 floats; `out` holds at least `src.len().div_ceil(2)` pairs
        // (asserted above) and `o = 16·i` for chunk `i < src.len() / 32`, so `out[o..o + 16]`
        // is in bounds.
        unsafe {
            let lo = _mm512_loadu_ps(chunk.as_ptr());
            let hi = _mm512_loadu_ps(chunk.as_ptr().add(16));
            let packed: __m512i =
                std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo));
            _mm512_storeu_si512(out.as_mut_ptr().add(o).cast(), packed);
        }
        o += 16;
    }
    convert_pairs_generic(chunks.remainder(), &mut out[o..]);
}

#[inline(always)]
fn convert_pairs_generic(src: &[f32], out: &mut [u32]) {
    let (even, tail) = src.split_at(src.len() & !1);
    for (o, p) in out.iter_mut().zip(even.chunks_exact(2)) {
        *o = pair(p[0], p[1]);
    }
    if let Some(&last) = tail.first() {
        out[even.len() / 2] = pair(last, 0.0);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn convert_pairs_avx512(src: &[f32], out: &mut [u32]) {
    convert_pairs_generic(src, out);
}

/// `C = A·B` with `B` in bf16 and `A` rounded to bf16 (or `C += A·B` with `accumulate`), f32
/// accumulation, then the epilogue. Shapes and strides as [`super::gemm::gemm`].
///
/// # Panics
/// If a slice is too short for the shapes.
#[allow(clippy::too_many_arguments)]
pub fn gemm_bf16(
    isa: Isa,
    a: &[f32],
    m: usize,
    lda: usize,
    b: &PackedBf16,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    epilogue: Epilogue<'_>,
    scratch: &mut Vec<u32>,
) {
    let (k, n) = (b.k, b.n);
    check_shapes(a.len(), m, k, lda, c.len(), n, ldc);
    pack_a_bf16(isa, a, m, k, lda, scratch);
    let units = k.div_ceil(2);
    let shape = Shape {
        m,
        n,
        units,
        block: block_units(units),
    };
    drive(
        isa.bf16_kernel(shape.block),
        scratch,
        b.data.as_slice(),
        shape,
        c,
        CLayout::Rows(ldc),
        accumulate,
        epilogue,
        true,
    );
}

/// The portable bf16 microkernel: widens the pairs to f32 and accumulates both products, for
/// packed blocks of `S` units.
///
/// # Safety
/// As [`super::gemm::Kernel`]: `a` valid for reading rows `0..rows` of `units` elements `S`
/// apart, `b` for `units × NR` reads, the `rows × cols` tile at `c` (row stride `ldc`) valid
/// for reads and writes.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn kernel_bf16_portable<const S: usize>(
    units: usize,
    a: *const u32,
    b: *const u32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    tail: &super::gemm::Tail,
) {
    // SAFETY: the caller guarantees the packed extents.
    let b = unsafe { std::slice::from_raw_parts(b, units * NR) };
    let mut acc = [[0f32; NR]; MR];
    for (r, row) in acc.iter_mut().enumerate().take(rows) {
        // SAFETY: row `r < rows` of the block, `units` elements.
        let ar = unsafe { std::slice::from_raw_parts(a.add(r * S), units) };
        for (u, &p) in ar.iter().enumerate() {
            let (a_lo, a_hi) = (from_bf16(p as u16), from_bf16((p >> 16) as u16));
            for (x, &q) in row.iter_mut().zip(&b[u * NR..(u + 1) * NR]) {
                // Products of bf16 values are exact in f32; one rounding per addition, as
                // the hardware accumulates.
                *x += a_lo * from_bf16(q as u16) + a_hi * from_bf16((q >> 16) as u16);
            }
        }
    }
    // SAFETY: the caller guarantees the C tile.
    unsafe { super::gemm::store_tile(&acc, c, ldc, rows, cols, tail) };
}

/// The AVX-512 BF16 microkernel: 12 × 32 tile in 24 zmm accumulators, one `vdpbf16ps` per
/// accumulator and pair of `k`; partial row groups run a kernel compiled for their row count.
///
/// # Safety
/// The CPU supports AVX-512F and AVX-512 BF16; otherwise as [`kernel_bf16_portable`].
#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
pub(crate) unsafe fn kernel_bf16_avx512<const S: usize>(
    units: usize,
    a: *const u32,
    b: *const u32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    tail: &super::gemm::Tail,
) {
    super::gemm::by_rows!(
        rows,
        kernel_bf16_avx512_rows,
        (units, a, b, c, ldc, cols, tail)
    )
}

/// [`kernel_bf16_avx512`] for exactly `R` rows.
///
/// # Safety
/// As [`kernel_bf16_avx512`] with `rows = R <= MR`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn kernel_bf16_avx512_rows<const R: usize, const S: usize>(
    units: usize,
    a: *const u32,
    b: *const u32,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    tail: &super::gemm::Tail,
) {
    use std::arch::x86_64::*;
    let mut lo = [_mm512_setzero_ps(); R];
    let mut hi = [_mm512_setzero_ps(); R];
    let (mut a, mut b) = (a, b);
    for _ in 0..units {
        // SAFETY: `b` points at NR = 32 packed pairs (two zmm) of this unit.
        let (b0, b1): (__m512bh, __m512bh) = unsafe {
            (
                std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(b.cast())),
                std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(b.add(16).cast())),
            )
        };
        for i in 0..R {
            // SAFETY: row `i < R` of the block holds this unit's pair at `a + i·S`; the
            // transmute reinterprets 16 × u32 as 32 × bf16 (same size, any bit pattern).
            let ai = unsafe {
                std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(*a.add(i * S) as i32))
            };
            lo[i] = _mm512_dpbf16_ps(lo[i], ai, b0);
            hi[i] = _mm512_dpbf16_ps(hi[i], ai, b1);
        }
        // SAFETY: advancing within (or one past) row 0 of the block and the panel.
        unsafe {
            a = a.add(1);
            b = b.add(NR);
        }
    }
    // The C tile is valid for `R × cols` (caller's contract).
    super::gemm::store_zmm_tile!(lo, hi, R, c, ldc, cols, tail.add, tail.bias, tail.act);
}

/// The bf16 microkernel for AVX-512F without AVX-512 BF16: widens each pair to two f32
/// vectors (a shift and a mask) and accumulates both products with `vfmadd`; the products
/// are exact, as in [`kernel_bf16_portable`]. It runs at about the f32 kernel's rate.
///
/// # Safety
/// The CPU supports AVX-512F; otherwise as [`kernel_bf16_portable`].
#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn kernel_bf16_avx512f<const S: usize>(
    units: usize,
    a: *const u32,
    b: *const u32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    tail: &super::gemm::Tail,
) {
    super::gemm::by_rows!(
        rows,
        kernel_bf16_avx512f_rows,
        (units, a, b, c, ldc, cols, tail)
    )
}

/// [`kernel_bf16_avx512f`] for exactly `R` rows.
///
/// # Safety
/// As [`kernel_bf16_avx512f`] with `rows = R <= MR`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel_bf16_avx512f_rows<const R: usize, const S: usize>(
    units: usize,
    a: *const u32,
    b: *const u32,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    tail: &super::gemm::Tail,
) {
    use std::arch::x86_64::*;
    let mut lo = [_mm512_setzero_ps(); R];
    let mut hi = [_mm512_setzero_ps(); R];
    let mask = _mm512_set1_epi32(0xffff_0000u32 as i32);
    let (mut a, mut b) = (a, b);
    for _ in 0..units {
        // SAFETY: `b` points at NR = 32 packed pairs (two zmm) of this unit.
        let (p0, p1) = unsafe {
            (
                _mm512_loadu_si512(b.cast()),
                _mm512_loadu_si512(b.add(16).cast()),
            )
        };
        // Even k in the low half (shifted up), odd k in the high half (masked).
        let b0e = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(p0));
        let b0o = _mm512_castsi512_ps(_mm512_and_si512(p0, mask));
        let b1e = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(p1));
        let b1o = _mm512_castsi512_ps(_mm512_and_si512(p1, mask));
        for i in 0..R {
            // SAFETY: row `i < R` of the block holds this unit's pair at `a + i·S`.
            let pa = unsafe { *a.add(i * S) };
            let ae = _mm512_set1_ps(f32::from_bits(pa << 16));
            let ao = _mm512_set1_ps(f32::from_bits(pa & 0xffff_0000));
            lo[i] = _mm512_fmadd_ps(ao, b0o, _mm512_fmadd_ps(ae, b0e, lo[i]));
            hi[i] = _mm512_fmadd_ps(ao, b1o, _mm512_fmadd_ps(ae, b1e, hi[i]));
        }
        // SAFETY: advancing within (or one past) row 0 of the block and the panel.
        unsafe {
            a = a.add(1);
            b = b.add(NR);
        }
    }
    // The C tile is valid for `R × cols` (caller's contract).
    super::gemm::store_zmm_tile!(lo, hi, R, c, ldc, cols, tail.add, tail.bias, tail.act);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(len: usize) -> Vec<f32> {
        (0..len).map(|i| i as f32 * 0.37 - 11.0).collect()
    }

    /// Every ISA's conversion, on lengths around the 32-value vector width.
    #[test]
    fn convert_pairs_matches_the_scalar_rounding() {
        for isa in Isa::available() {
            for len in [0, 1, 2, 31, 32, 33, 64, 95] {
                let src = values(len);
                let mut out = vec![0u32; len.div_ceil(2)];
                convert_pairs(isa, &src, &mut out);
                for (u, &p) in out.iter().enumerate() {
                    let hi = src.get(2 * u + 1).copied().unwrap_or(0.0);
                    assert_eq!(p, pair(src[2 * u], hi), "{isa:?} len {len} pair {u}");
                }
            }
        }
    }

    /// An output shorter than the pairs is refused on every ISA: the AVX-512 BF16 kernel
    /// would otherwise store 16 pairs past its end, and the portable one silently dropped
    /// the pairs that did not fit.
    #[test]
    fn convert_pairs_checks_the_output_length() {
        for isa in Isa::available() {
            for (len, room) in [(64, 16), (64, 31), (33, 16), (32, 0)] {
                let src = values(len);
                // A guard zone after the output: an overrun would show there (if it did not
                // crash first).
                let mut buf = vec![0u32; room + 64];
                let (out, guard) = buf.split_at_mut(room);
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    convert_pairs(isa, &src, out)
                }));
                assert!(
                    result.is_err(),
                    "{isa:?}: {len} values into {room} pairs accepted"
                );
                assert!(
                    guard.iter().all(|&g| g == 0),
                    "{isa:?}: wrote past the output"
                );
            }
        }
    }
}

//! The VNNI microkernels: `vpdpbusd` (u8 × i8, four products summed into each i32 lane), in
//! zmm registers (AVX-512 VNNI: Ice Lake, Sapphire Rapids, Zen 4 and later) and in ymm
//! registers (AVX-VNNI: Alder Lake and later, the laptops without AVX-512).
//!
//! Both compute one `rows × NR` tile of i32 sums over every unit of one panel. The sums are
//! exact (at most `k · 255 · 127`, inside i32 for `k` up to 66,000), so every kernel,
//! portable included, returns the same integers.

use std::arch::x86_64::*;

use super::quant::{NR, UNIT};
use super::MR;

/// Bytes of one unit of a panel.
const PANEL_UNIT: usize = NR * UNIT;

// Each tile is written out per row count with literal row indices (macros below), so the
// accumulators are separate registers and the row loop is unrolled whatever the profile (a
// const-generic loop stayed rolled, with the accumulators on the stack, in the dev profile).

/// Defines `$name`: AVX-512 VNNI, rows `$r…` × 32 columns in two zmm accumulators per row.
macro_rules! zmm_tile {
    ($name:ident: $($r:literal)+) => {
        #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
        unsafe fn $name(units: usize, a: *const u8, lda: usize, b: *const i8, out: *mut i32) {
            let z = _mm512_setzero_si512();
            let mut lo = [$({ let _ = $r; z }),+];
            let mut hi = lo;
            // SAFETY (whole body): the caller guarantees `units` units of the panel at `b`,
            // `units · UNIT` bytes of each row at `a`, `lda` apart, and the tile at `out`.
            let rows = [$(unsafe { a.add($r * lda) }),+];
            let mut off = 0usize;
            let mut pb = b;
            for _ in 0..units {
                let (b0, b1) = unsafe {
                    (
                        _mm512_loadu_si512(pb as *const __m512i),
                        _mm512_loadu_si512(pb.add(64) as *const __m512i),
                    )
                };
                $(
                    let av = unsafe { (rows[$r].add(off) as *const i32).read_unaligned() };
                    let av = _mm512_set1_epi32(av);
                    lo[$r] = _mm512_dpbusd_epi32(lo[$r], av, b0);
                    hi[$r] = _mm512_dpbusd_epi32(hi[$r], av, b1);
                )+
                off += UNIT;
                pb = unsafe { pb.add(PANEL_UNIT) };
            }
            $(
                unsafe {
                    _mm512_storeu_si512(out.add($r * NR) as *mut __m512i, lo[$r]);
                    _mm512_storeu_si512(out.add($r * NR + 16) as *mut __m512i, hi[$r]);
                }
            )+
        }
    };
}

zmm_tile!(zmm1: 0);
zmm_tile!(zmm2: 0 1);
zmm_tile!(zmm3: 0 1 2);
zmm_tile!(zmm4: 0 1 2 3);
zmm_tile!(zmm5: 0 1 2 3 4);
zmm_tile!(zmm6: 0 1 2 3 4 5);
zmm_tile!(zmm7: 0 1 2 3 4 5 6);
zmm_tile!(zmm8: 0 1 2 3 4 5 6 7);
zmm_tile!(zmm9: 0 1 2 3 4 5 6 7 8);
zmm_tile!(zmm10: 0 1 2 3 4 5 6 7 8 9);
zmm_tile!(zmm11: 0 1 2 3 4 5 6 7 8 9 10);
zmm_tile!(zmm12: 0 1 2 3 4 5 6 7 8 9 10 11);

/// The AVX-512 VNNI tile of `rows <= MR` rows.
///
/// # Safety
/// The CPU has AVX-512F/BW and AVX-512 VNNI; `b` points at `units` units of a panel; `a` at
/// `rows` rows of at least `units · UNIT` bytes, `lda` apart.
pub(super) unsafe fn kernel_avx512(
    units: usize,
    a: *const u8,
    lda: usize,
    rows: usize,
    b: *const i8,
    out: &mut [i32; MR * NR],
) {
    let tile = [
        zmm1, zmm2, zmm3, zmm4, zmm5, zmm6, zmm7, zmm8, zmm9, zmm10, zmm11, zmm12,
    ];
    assert!((1..=MR).contains(&rows), "1..=MR rows");
    // SAFETY: as the caller guarantees, for `rows` rows.
    unsafe { tile[rows - 1](units, a, lda, b, out.as_mut_ptr()) }
}

/// Defines `$name`: AVX-VNNI, rows `$r…` × 16 columns (one half of the panel) in two ymm
/// accumulators per row (at most 6 rows: 12 accumulators, two panel registers and a
/// broadcast fit in 16).
macro_rules! ymm_half {
    ($name:ident: $($r:literal)+) => {
        #[target_feature(enable = "avx2,avxvnni")]
        unsafe fn $name(units: usize, a: *const u8, lda: usize, b: *const i8, out: *mut i32) {
            let z = _mm256_setzero_si256();
            let mut lo = [$({ let _ = $r; z }),+];
            let mut hi = lo;
            // SAFETY (whole body): as in `zmm_tile`; `b` points at the half's first column.
            let rows = [$(unsafe { a.add($r * lda) }),+];
            let mut off = 0usize;
            let mut pb = b;
            for _ in 0..units {
                let (b0, b1) = unsafe {
                    (
                        _mm256_loadu_si256(pb as *const __m256i),
                        _mm256_loadu_si256(pb.add(32) as *const __m256i),
                    )
                };
                $(
                    let av = unsafe { (rows[$r].add(off) as *const i32).read_unaligned() };
                    let av = _mm256_set1_epi32(av);
                    lo[$r] = _mm256_dpbusd_avx_epi32(lo[$r], av, b0);
                    hi[$r] = _mm256_dpbusd_avx_epi32(hi[$r], av, b1);
                )+
                off += UNIT;
                pb = unsafe { pb.add(PANEL_UNIT) };
            }
            $(
                unsafe {
                    _mm256_storeu_si256(out.add($r * NR) as *mut __m256i, lo[$r]);
                    _mm256_storeu_si256(out.add($r * NR + 8) as *mut __m256i, hi[$r]);
                }
            )+
        }
    };
}

ymm_half!(ymm1: 0);
ymm_half!(ymm2: 0 1);
ymm_half!(ymm3: 0 1 2);
ymm_half!(ymm4: 0 1 2 3);
ymm_half!(ymm5: 0 1 2 3 4);
ymm_half!(ymm6: 0 1 2 3 4 5);

/// The AVX-VNNI tile of `rows <= MR` rows: two column halves × row blocks of up to 6.
///
/// # Safety
/// The CPU has AVX2 and AVX-VNNI; otherwise as [`kernel_avx512`].
pub(super) unsafe fn kernel_avxvnni(
    units: usize,
    a: *const u8,
    lda: usize,
    rows: usize,
    b: *const i8,
    out: &mut [i32; MR * NR],
) {
    let o = out.as_mut_ptr();
    for half in 0..2 {
        let mut r0 = 0;
        while r0 < rows {
            let n = (rows - r0).min(6);
            // SAFETY: rows `r0..r0 + n` of `a` and of the tile, the half's 16 columns
            // (64 bytes into each unit of the panel).
            unsafe {
                let (a, b, o) = (
                    a.add(r0 * lda),
                    b.add(half * 64),
                    o.add(r0 * NR + half * 16),
                );
                [ymm1, ymm2, ymm3, ymm4, ymm5, ymm6][n - 1](units, a, lda, b, o)
            }
            r0 += n;
        }
    }
}

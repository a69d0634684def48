//! The AVX2 + FMA microkernels (x86-64-v3), f32 and bf16, on the same packed layout as the
//! AVX-512 ones (row groups of [`MR`] = 12, panels of [`NR`] = 32 columns).
//!
//! With 16 ymm registers a whole 12 × 32 tile does not fit, so the kernel walks it in
//! sub-tiles of up to 6 rows × 16 columns: 12 accumulators, two loads of `B` and one broadcast
//! of `A` per row and unit (15 registers), 12 FMAs for 8 loads, so the FMA ports, not the
//! loads, set the pace (the shape of BLIS's Haswell sgemm). A row group of 12 runs as 6 + 6
//! rows, each over both 16-column halves of the panel, in passes of
//! [`Blocking::avx2_pass`](super::Blocking) units (from the L1d size: 128 for 48 KB) so that
//! the slice of `B` a pass reads stays in L1 for all four sub-tiles; the first sub-tile of a
//! pass prefetches the rows of `B` it will read 16 units ahead. With data in L1 a 6 × 16
//! sub-tile runs at ~90 % of the measured AVX2 FMA peak of this project's test machine
//! (5 × 16: ~85 %, 4 × 16: ~84 %); docs/PERFORMANCE.md has the whole-GEMM figures.

use super::{Tail, MR, NR};
use crate::Activation;
use std::arch::x86_64::*;

/// Rows per sub-tile.
const SUB: usize = 6;
/// How far ahead (in units) the first sub-tile of a pass prefetches `B`.
const PREFETCH_UNITS: usize = 16;

/// Calls `$kernel::<R, S>($args)` (or `$kernel::<R, S, $pf>($args)`) with `R = $rows`
/// (1 to [`SUB`]).
macro_rules! by_sub_rows {
    ($rows:expr, $kernel:ident, $args:tt) => {
        by_sub_rows!(@ $rows, $kernel, [S], $args)
    };
    ($rows:expr, $kernel:ident, $pf:expr, $args:tt) => {
        by_sub_rows!(@ $rows, $kernel, [S, $pf], $args)
    };
    (@ $rows:expr, $kernel:ident, [$($g:expr),*], $args:tt) => {
        match $rows {
            // SAFETY: the calling kernel's contract, with `$rows` rows.
            1 => unsafe { $kernel::<1, $({ $g }),*> $args },
            2 => unsafe { $kernel::<2, $({ $g }),*> $args },
            3 => unsafe { $kernel::<3, $({ $g }),*> $args },
            4 => unsafe { $kernel::<4, $({ $g }),*> $args },
            5 => unsafe { $kernel::<5, $({ $g }),*> $args },
            6 => unsafe { $kernel::<6, $({ $g }),*> $args },
            _ => unreachable!("rows <= SUB"),
        }
    };
}

/// The row counts of the sub-tiles of a group of `rows` rows: 12 → 6, 6; 10 → 5, 5 (balanced
/// so that no sub-tile is much shorter than the others: a 1- or 2-row sub-tile is load-bound).
fn sub_rows(rows: usize) -> impl Iterator<Item = (usize, usize)> {
    let parts = rows.div_ceil(SUB);
    (0..parts).map(move |p| {
        let (base, extra) = (rows / parts, rows % parts);
        let start = p * base + p.min(extra);
        (start, base + usize::from(p < extra))
    })
}

/// The AVX2 f32 microkernel (see the module docs).
///
/// # Safety
/// The CPU supports AVX2 and FMA; otherwise as
/// [`kernel_f32_portable`](super::kernel_f32_portable).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn kernel_f32_avx2<const S: usize>(
    units: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    tail: &Tail,
) {
    debug_assert!(rows <= MR && cols <= NR);
    let pass = super::Blocking::get().avx2_pass;
    let mut u0 = 0;
    while u0 < units {
        let uc = pass.min(units - u0);
        let add = tail.add || u0 > 0;
        // The bias and the activation join the last pass's store.
        let last = u0 + uc == units;
        let act = if last { tail.act } else { None };
        for (r0, r) in sub_rows(rows) {
            for half in 0..2 {
                let c0 = half * 16;
                if c0 >= cols {
                    break;
                }
                let w = (cols - c0).min(16);
                // The sub-tiles of the first rows read this pass's `B` from L2 (or further):
                // they prefetch ahead; the others find it in L1.
                let prefetch = r0 == 0;
                // SAFETY: units `u0..u0 + uc`, rows `r0..r0 + r` of the block and of the
                // tile, columns `c0..c0 + w` of the panel (16 of its NR = 32 per unit) and of
                // the tile: inside the caller's extents.
                let (ap, bp, cp) = unsafe {
                    (
                        a.add(r0 * S + u0),
                        b.add(u0 * NR + c0),
                        c.add(r0 * ldc + c0),
                    )
                };
                let bias = if last && !tail.bias.is_null() {
                    tail.bias.wrapping_add(c0)
                } else {
                    std::ptr::null()
                };
                // This pass's part of the call's L2 hints (see [`Tail::next`]).
                let next = tail.next.wrapping_add(u0 * tail.next_step);
                let step = tail.next_step;
                if prefetch {
                    by_sub_rows!(
                        r,
                        f32_sub,
                        true,
                        (uc, ap, bp, cp, ldc, w, add, bias, act, next, step)
                    );
                } else {
                    by_sub_rows!(
                        r,
                        f32_sub,
                        false,
                        (uc, ap, bp, cp, ldc, w, add, bias, act, next, step)
                    );
                }
            }
        }
        u0 += uc;
    }
}

/// `R` rows × 16 columns of the product (`w <= 16` of them stored); `b` steps by [`NR`].
/// The unit loop runs 4 units per iteration (one loop branch per 48 FMAs on 6 rows); with
/// `PF` it also hints the rows of `B` [`PREFETCH_UNITS`] ahead into L1 (one line per unit:
/// 16 floats of a 32-float panel row are one 64-byte line of the aligned panel), and
/// `next + u·step` into L2 (the call's share of the next panel, [`Tail::next`]).
///
/// # Safety
/// AVX2 + FMA; `a` valid for `R` rows of `units` elements `S` apart, `b` for `units` rows of
/// 16 floats `NR` apart, the `R × w` tile at `c` valid for reads and writes.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
#[target_feature(enable = "avx2,fma")]
unsafe fn f32_sub<const R: usize, const S: usize, const PF: bool>(
    units: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    w: usize,
    add: bool,
    bias: *const f32,
    act: Option<Activation>,
    next: *const u8,
    step: usize,
) {
    let mut lo = [_mm256_setzero_ps(); R];
    let mut hi = [_mm256_setzero_ps(); R];
    // One unit of the product: `B`'s 16 floats of unit `u`, row `i`'s element `u` of `A`.
    macro_rules! unit {
        ($u:expr) => {{
            let bu = b.wrapping_add($u * NR);
            if PF {
                // Hints only: they may point past the panel (or `B`), and never fault.
                _mm_prefetch::<_MM_HINT_T0>(bu.wrapping_add(PREFETCH_UNITS * NR).cast());
                _mm_prefetch::<_MM_HINT_T1>(next.wrapping_add($u * step).cast());
            }
            // SAFETY: 16 floats of unit `u`'s panel row (caller's contract).
            let (b0, b1) = unsafe { (_mm256_loadu_ps(bu), _mm256_loadu_ps(bu.add(8))) };
            for i in 0..R {
                // SAFETY: row `i < R` of the block holds unit `u` at `a + i·S + u`.
                let ai = _mm256_set1_ps(unsafe { *a.add(i * S + $u) });
                lo[i] = _mm256_fmadd_ps(ai, b0, lo[i]);
                hi[i] = _mm256_fmadd_ps(ai, b1, hi[i]);
            }
        }};
    }
    let mut u = 0;
    while u + 4 <= units {
        unit!(u);
        unit!(u + 1);
        unit!(u + 2);
        unit!(u + 3);
        u += 4;
    }
    while u < units {
        unit!(u);
        u += 1;
    }
    // SAFETY: the caller's `R × w` tile.
    unsafe { store_ymm_tile(&lo, &hi, c, ldc, w, add, bias, act) };
}

/// Stores (or adds) `R` rows of two ymm accumulators into the `R × w` tile at `c`, then adds
/// the `w` values at `bias` unless it is null, then applies `act`.
///
/// # Safety
/// AVX2; the `R × w` tile at `c` (row stride `ldc`, `w <= 16`) valid for reads and writes; a
/// non-null `bias` valid for `w` reads.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn store_ymm_tile<const R: usize>(
    lo: &[__m256; R],
    hi: &[__m256; R],
    c: *mut f32,
    ldc: usize,
    w: usize,
    add: bool,
    bias: *const f32,
    act: Option<Activation>,
) {
    if w == 16 {
        // SAFETY: a non-null bias holds 16 values here.
        let (b0, b1) = unsafe {
            if bias.is_null() {
                (_mm256_setzero_ps(), _mm256_setzero_ps())
            } else {
                (_mm256_loadu_ps(bias), _mm256_loadu_ps(bias.add(8)))
            }
        };
        for i in 0..R {
            // SAFETY: row `i` of the tile, 16 columns (caller's contract).
            unsafe {
                let p = c.add(i * ldc);
                let (mut x0, mut x1) = (lo[i], hi[i]);
                if add {
                    x0 = _mm256_add_ps(x0, _mm256_loadu_ps(p));
                    x1 = _mm256_add_ps(x1, _mm256_loadu_ps(p.add(8)));
                }
                if !bias.is_null() {
                    x0 = _mm256_add_ps(x0, b0);
                    x1 = _mm256_add_ps(x1, b1);
                }
                if let Some(act) = act {
                    // Through the stack: the element-wise formula, vectorised for AVX2.
                    let mut row = [0f32; 16];
                    _mm256_storeu_ps(row.as_mut_ptr(), x0);
                    _mm256_storeu_ps(row.as_mut_ptr().add(8), x1);
                    crate::ops::activate_generic(&mut row, act);
                    x0 = _mm256_loadu_ps(row.as_ptr());
                    x1 = _mm256_loadu_ps(row.as_ptr().add(8));
                }
                _mm256_storeu_ps(p, x0);
                _mm256_storeu_ps(p.add(8), x1);
            }
        }
        return;
    }
    // A partial tile (the last panel of a matrix whose width is not a multiple of 16):
    // through a buffer, only `w` columns touched.
    for i in 0..R {
        let mut buf = [0f32; 16];
        // SAFETY: `buf` holds 16 floats.
        unsafe {
            _mm256_storeu_ps(buf.as_mut_ptr(), lo[i]);
            _mm256_storeu_ps(buf.as_mut_ptr().add(8), hi[i]);
        }
        // SAFETY: row `i` of the tile, `w` columns (caller's contract).
        let dst = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), w) };
        if add {
            dst.iter_mut().zip(&buf).for_each(|(d, v)| *d += v);
        } else {
            dst.copy_from_slice(&buf[..w]);
        }
        if !bias.is_null() {
            // SAFETY: a non-null bias holds `w` values.
            let bias = unsafe { std::slice::from_raw_parts(bias, w) };
            dst.iter_mut().zip(bias).for_each(|(d, v)| *d += v);
        }
        if let Some(act) = act {
            crate::ops::activate_generic(dst, act);
        }
    }
}

/// The AVX2 bf16 microkernel: the pairs widened to f32 in registers (even `k` shifted up from
/// the low half, odd `k` masked in the high half), two FMAs per pair. It runs at about half
/// the f32 rate and saves the memory of the weights; its sums are the portable bf16
/// kernel's up to the order of additions.
///
/// # Safety
/// The CPU supports AVX2 and FMA; otherwise as
/// [`kernel_bf16_portable`](crate::bf16::kernel_bf16_portable).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn kernel_bf16_avx2<const S: usize>(
    units: usize,
    a: *const u32,
    b: *const u32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    tail: &Tail,
) {
    debug_assert!(rows <= MR && cols <= NR);
    let pass = super::Blocking::get().avx2_pass;
    let mut u0 = 0;
    while u0 < units {
        let uc = pass.min(units - u0);
        let add = tail.add || u0 > 0;
        // The bias and the activation join the last pass's store.
        let last = u0 + uc == units;
        let act = if last { tail.act } else { None };
        for (r0, r) in sub_rows(rows) {
            for half in 0..2 {
                let c0 = half * 16;
                if c0 >= cols {
                    break;
                }
                let w = (cols - c0).min(16);
                // SAFETY: units `u0..u0 + uc`, rows `r0..r0 + r` of the block and of the
                // tile, columns `c0..c0 + w` of the panel (16 of its NR = 32 per unit) and of
                // the tile: inside the caller's extents.
                let (ap, bp, cp) = unsafe {
                    (
                        a.add(r0 * S + u0),
                        b.add(u0 * NR + c0),
                        c.add(r0 * ldc + c0),
                    )
                };
                let bias = if last && !tail.bias.is_null() {
                    tail.bias.wrapping_add(c0)
                } else {
                    std::ptr::null()
                };
                by_sub_rows!(r, bf16_sub, (uc, ap, bp, cp, ldc, w, add, bias, act));
            }
        }
        u0 += uc;
    }
}

/// [`f32_sub`] on bf16 pairs.
///
/// # Safety
/// As [`f32_sub`], with `u32` pairs.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
#[target_feature(enable = "avx2,fma")]
unsafe fn bf16_sub<const R: usize, const S: usize>(
    units: usize,
    a: *const u32,
    b: *const u32,
    c: *mut f32,
    ldc: usize,
    w: usize,
    add: bool,
    bias: *const f32,
    act: Option<Activation>,
) {
    let mut lo = [_mm256_setzero_ps(); R];
    let mut hi = [_mm256_setzero_ps(); R];
    let mask = _mm256_set1_epi32(0xffff_0000u32 as i32);
    let (mut a, mut b) = (a, b);
    for _ in 0..units {
        // SAFETY: 16 pairs of this unit's panel row (caller's contract).
        let (p0, p1) = unsafe {
            (
                _mm256_loadu_si256(b.cast()),
                _mm256_loadu_si256(b.add(8).cast()),
            )
        };
        let b0e = _mm256_castsi256_ps(_mm256_slli_epi32::<16>(p0));
        let b0o = _mm256_castsi256_ps(_mm256_and_si256(p0, mask));
        let b1e = _mm256_castsi256_ps(_mm256_slli_epi32::<16>(p1));
        let b1o = _mm256_castsi256_ps(_mm256_and_si256(p1, mask));
        for i in 0..R {
            // SAFETY: row `i < R` of the block holds this unit's pair at `a + i·S`.
            let pa = unsafe { *a.add(i * S) };
            let ae = _mm256_set1_ps(f32::from_bits(pa << 16));
            let ao = _mm256_set1_ps(f32::from_bits(pa & 0xffff_0000));
            lo[i] = _mm256_fmadd_ps(ao, b0o, _mm256_fmadd_ps(ae, b0e, lo[i]));
            hi[i] = _mm256_fmadd_ps(ao, b1o, _mm256_fmadd_ps(ae, b1e, hi[i]));
        }
        // SAFETY: advancing within (or one past) row 0 of the block and the panel.
        unsafe {
            a = a.add(1);
            b = b.add(NR);
        }
    }
    // SAFETY: the caller's `R × w` tile.
    unsafe { store_ymm_tile(&lo, &hi, c, ldc, w, add, bias, act) };
}

#[cfg(test)]
mod tests {
    use super::sub_rows;

    #[test]
    fn sub_tiles_cover_the_group_in_balanced_parts() {
        for rows in 1..=super::MR {
            let parts: Vec<_> = sub_rows(rows).collect();
            let mut next = 0;
            for &(r0, r) in &parts {
                assert_eq!(r0, next, "{rows}: {parts:?}");
                assert!((1..=super::SUB).contains(&r), "{rows}: {parts:?}");
                next += r;
            }
            assert_eq!(next, rows);
        }
        assert_eq!(sub_rows(12).map(|p| p.1).collect::<Vec<_>>(), [6, 6]);
        assert_eq!(sub_rows(10).map(|p| p.1).collect::<Vec<_>>(), [5, 5]);
    }
}

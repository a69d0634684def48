//! The AVX-512 f32 microkernel and the macros the AVX-512 kernels (f32 and bf16) share.
// The AVX-512 intrinsics are stable since Rust 1.89; the workspace's rust-version (1.95, what
// burn 0.22 needs) covers them.

use super::{Tail, NR};

/// How far ahead (in units) the AVX-512 kernels prefetch their panel of `B`.
pub(crate) const PREFETCH_UNITS: usize = 8;

/// The AVX-512 f32 microkernel: 12 × 32 tile in 24 zmm accumulators, one broadcast of `A` and
/// two loads of `B` per unit. A partial row group (fewer than 12 rows, e.g. a 10-token query)
/// runs a kernel compiled for exactly its row count, so no work is spent on padding rows.
///
/// # Safety
/// The CPU supports AVX-512F; otherwise as [`kernel_f32_portable`](super::kernel_f32_portable).
#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn kernel_f32_avx512<const S: usize>(
    units: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    tail: &Tail,
) {
    by_rows!(
        rows,
        kernel_f32_avx512_rows,
        (units, a, b, c, ldc, cols, tail)
    )
}

/// [`kernel_f32_avx512`] for exactly `R` rows.
///
/// # Safety
/// As [`kernel_f32_avx512`] with `rows = R <= MR`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel_f32_avx512_rows<const R: usize, const S: usize>(
    units: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    tail: &Tail,
) {
    use std::arch::x86_64::*;
    let mut lo = [_mm512_setzero_ps(); R];
    let mut hi = [_mm512_setzero_ps(); R];
    let (mut a, mut b) = (a, b);
    let (next, step) = (tail.next, tail.next_step);
    for u in 0..units {
        // Hints only (they may point past the panel, and never fault): the panel's rows
        // `PREFETCH_UNITS` ahead, which come from L2 or further, into L1; and this call's
        // share of what the next call reads first from further than L2, into L2.
        _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(PREFETCH_UNITS * NR).cast());
        _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(PREFETCH_UNITS * NR + 16).cast());
        _mm_prefetch::<_MM_HINT_T1>(next.wrapping_add(u * step).cast());
        // SAFETY: `b` points at NR = 32 packed floats of this unit (caller's contract).
        let (b0, b1) = unsafe { (_mm512_loadu_ps(b), _mm512_loadu_ps(b.add(16))) };
        for i in 0..R {
            // SAFETY: row `i < R` of the block holds this unit at `a + i·S`.
            let ai = _mm512_set1_ps(unsafe { *a.add(i * S) });
            lo[i] = _mm512_fmadd_ps(ai, b0, lo[i]);
            hi[i] = _mm512_fmadd_ps(ai, b1, hi[i]);
        }
        // SAFETY: advancing within (or one past) row 0 of the block and the panel.
        unsafe {
            a = a.add(1);
            b = b.add(NR);
        }
    }
    // The C tile is valid for `R × cols`, the bias (if any) for `cols` (caller's contract).
    store_zmm_tile!(lo, hi, R, c, ldc, cols, tail.add, tail.bias, tail.act);
}

/// Calls `$kernel::<R, S>($args)` with `R = $rows` (1 to [`MR`](super::MR)), so that a partial row group
/// runs code compiled for exactly its row count. `S` is the calling kernel's block size.
///
/// Expands to an unsafe call: use it only inside a kernel's `unsafe` contract, with `$rows`
/// the rows that contract covers.
#[cfg(target_arch = "x86_64")]
macro_rules! by_rows {
    ($rows:expr, $kernel:ident, $args:tt) => {
        $crate::gemm::by_rows!(@ $rows, $kernel, $args, 1 2 3 4 5 6 7 8 9 10 11 12)
    };
    (@ $rows:expr, $kernel:ident, $args:tt, $($r:literal)*) => {
        match $rows {
            // SAFETY: the calling kernel's contract, with `$rows` rows.
            $($r => unsafe { $kernel::<$r, S> $args },)*
            _ => unreachable!("rows <= MR"),
        }
    };
}
#[cfg(target_arch = "x86_64")]
pub(crate) use by_rows;

/// Stores the `2R` accumulators `lo`, `hi` of an AVX-512 kernel into the `R × cols` tile of
/// `C` at `c` (row stride `ldc`), adding to it with `add`, then adding the `cols` values at
/// `bias` unless it is null, then applying `act` (an `Option<Activation>`, with
/// [`ops::activate`](crate::ops::activate)'s formula). A macro rather than a function so that
/// it is always expanded inside the kernel: a call would spill the 24 accumulators.
///
/// Expands to code that needs AVX-512F, a tile valid for `R × cols` reads and writes,
/// `cols <= NR`, and a null `bias` or one valid for `cols` reads; use it only inside an
/// AVX-512 kernel's `unsafe` contract.
#[cfg(target_arch = "x86_64")]
macro_rules! store_zmm_tile {
    ($lo:expr, $hi:expr, $r:expr, $c:expr, $ldc:expr, $cols:expr, $add:expr, $bias:expr, $act:expr) => {{
        use std::arch::x86_64::*;
        let (c, ldc, cols, add): (*mut f32, usize, usize, bool) = ($c, $ldc, $cols, $add);
        let bias: *const f32 = $bias;
        let act: Option<$crate::Activation> = $act;
        let m0: __mmask16 = if cols >= 16 {
            0xffff
        } else {
            ((1u32 << cols) - 1) as u16
        };
        let m1: __mmask16 = if cols >= 32 {
            0xffff
        } else if cols > 16 {
            ((1u32 << (cols - 16)) - 1) as u16
        } else {
            0
        };
        // SAFETY: the bias holds `cols` values (the kernel's contract); the masks limit the
        // reads to them (an empty mask touches no memory).
        let (b0, b1) = unsafe {
            if bias.is_null() {
                (_mm512_setzero_ps(), _mm512_setzero_ps())
            } else {
                (
                    _mm512_maskz_loadu_ps(m0, bias),
                    _mm512_maskz_loadu_ps(m1, bias.wrapping_add(16)),
                )
            }
        };
        for i in 0..$r {
            // SAFETY: row `i < R` of the tile (the kernel's contract); the masks limit the
            // columns to `cols`. Columns 16.. may lie past C when `cols <= 16`: the mask is
            // then empty, and a masked access with an empty mask touches no memory.
            unsafe {
                let p = c.add(i * ldc);
                let (mut x0, mut x1) = ($lo[i], $hi[i]);
                if add {
                    x0 = _mm512_add_ps(x0, _mm512_maskz_loadu_ps(m0, p));
                    x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(m1, p.wrapping_add(16)));
                }
                if !bias.is_null() {
                    x0 = _mm512_add_ps(x0, b0);
                    x1 = _mm512_add_ps(x1, b1);
                }
                if let Some(act) = act {
                    // Through the stack: the element-wise formula, vectorised for this
                    // kernel's instruction set (lanes past `cols` are computed and not stored).
                    let mut row = [0f32; 32];
                    _mm512_storeu_ps(row.as_mut_ptr(), x0);
                    _mm512_storeu_ps(row.as_mut_ptr().add(16), x1);
                    $crate::ops::activate_generic(&mut row, act);
                    x0 = _mm512_loadu_ps(row.as_ptr());
                    x1 = _mm512_loadu_ps(row.as_ptr().add(16));
                }
                _mm512_mask_storeu_ps(p, m0, x0);
                _mm512_mask_storeu_ps(p.wrapping_add(16), m1, x1);
            }
        }
    }};
}
#[cfg(target_arch = "x86_64")]
pub(crate) use store_zmm_tile;

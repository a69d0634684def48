//! The portable f32 microkernel and the tile store it shares with the bf16 kernels.

use super::{MR, NR};

/// The portable f32 microkernel (any target; LLVM vectorises it for the baseline ISA), for
/// packed blocks of `S` units.
///
/// # Safety
/// As [`Kernel`]: `a` valid for reading rows `0..rows` of `units` elements `S` apart, `b` for
/// `units × NR` reads, the `rows × cols` tile at `c` (row stride `ldc`) valid for reads and
/// writes.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn kernel_f32_portable<const S: usize>(
    units: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    add: bool,
) {
    // SAFETY: the caller guarantees the packed extents.
    let b = unsafe { std::slice::from_raw_parts(b, units * NR) };
    let mut acc = [[0f32; NR]; MR];
    for (r, row) in acc.iter_mut().enumerate().take(rows) {
        // SAFETY: row `r < rows` of the block, `units` elements.
        let ar = unsafe { std::slice::from_raw_parts(a.add(r * S), units) };
        for (u, &ai) in ar.iter().enumerate() {
            let bu: &[f32; NR] = b[u * NR..(u + 1) * NR].try_into().expect("NR");
            for (x, &bj) in row.iter_mut().zip(bu) {
                *x += ai * bj;
            }
        }
    }
    // SAFETY: the caller guarantees the C tile.
    unsafe { store_tile(&acc, c, ldc, rows, cols, add) };
}

/// Writes (or adds) an accumulated tile to `C`.
///
/// # Safety
/// The `rows × cols` tile at `c` with row stride `ldc` is valid for reads and writes.
pub(crate) unsafe fn store_tile(
    acc: &[[f32; NR]; MR],
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    add: bool,
) {
    for (r, row) in acc.iter().enumerate().take(rows) {
        // SAFETY: row `r < rows` of the tile, `cols` elements, inside C by the contract.
        let dst = unsafe { std::slice::from_raw_parts_mut(c.add(r * ldc), cols) };
        if add {
            for (d, &v) in dst.iter_mut().zip(row) {
                *d += v;
            }
        } else {
            dst.copy_from_slice(&row[..cols]);
        }
    }
}

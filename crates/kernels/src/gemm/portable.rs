//! The portable kernel set's f32 GEMM: the packed panels of `B` multiplied by the `gemm` crate
//! (sarah-ek's, the one burn's `flex` backend uses; runtime dispatch to its NEON kernels on
//! aarch64, AVX/FMA/AVX-512 on x86), then the epilogue in a pass over each panel's columns.
//! Also the scalar microkernel and the tile store the bf16 kernels share.
//!
//! Each panel of [`PackedB`] (`units × NR`, row stride `NR`) is an ordinary row-major matrix
//! for the crate, so `B` needs no second layout; `A` is read where it lies (row-major with
//! `lda`, or a packed single block with row stride `S`).

use std::ops::Range;

use rayon::prelude::*;

use super::{apply_epilogue, block_units, check_shapes, Epilogue, PackedB, Tail, MR, NR};

/// Rows of `C` per parallel task: the task's rows of `A` (`192 × 768` f32 = 576 KB) stay in
/// L2 while the crate runs them against each of the task's panels.
const TASK_ROWS: usize = 192;

/// A read-only view of `A`: `rows` rows of `cols` elements, row `i` at `ptr + i·ld`.
#[derive(Clone, Copy)]
struct MatA {
    ptr: *const f32,
    ld: usize,
}

/// `C`'s first element, shared by tasks that write disjoint rows × panels.
#[derive(Clone, Copy)]
struct MatC(*mut f32);
// SAFETY: tasks read `A` only and write disjoint `rows × columns` blocks of `C` (each its own
// row range × panel range); the borrows outlive the parallel section.
unsafe impl Send for MatA {}
// SAFETY: as above.
unsafe impl Sync for MatA {}
// SAFETY: as above.
unsafe impl Send for MatC {}
// SAFETY: as above.
unsafe impl Sync for MatC {}

impl MatA {
    /// The view from row `r` on (a method, so closures capture the whole `Sync` wrapper).
    ///
    /// # Safety
    /// Row `r` is inside the matrix.
    unsafe fn at_row(self, r: usize) -> MatA {
        MatA {
            // SAFETY: the caller's contract.
            ptr: unsafe { self.ptr.add(r * self.ld) },
            ld: self.ld,
        }
    }
}

impl MatC {
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// `C = A·B` (or `C += A·B`) then the epilogue, `A` row-major `[m, k]` with row stride `lda`:
/// the portable set's [`super::gemm`], in parallel on the current rayon pool.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_crate(
    a: &[f32],
    m: usize,
    lda: usize,
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    epilogue: Epilogue<'_>,
) {
    let (k, n) = (b.k(), b.n());
    check_shapes(a.len(), m, k, lda, c.len(), n, ldc);
    let mat = MatA {
        ptr: a.as_ptr(),
        ld: lda,
    };
    run(mat, m, b, c, ldc, accumulate, epilogue, true);
}

/// The serial portable GEMM on `A` packed by [`super::pack_a`] (as
/// [`super::gemm_packed_serial`]).
pub(crate) fn gemm_packed_crate(
    packed_a: &[f32],
    m: usize,
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    epilogue: Epilogue<'_>,
) {
    let (k, n) = (b.k(), b.n());
    if m == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= (m - 1) * ldc + n && ldc >= n, "C too short");
    let block = block_units(k);
    let groups = m.div_ceil(MR);
    let blocks = k.div_ceil(block);
    assert!(
        packed_a.len() >= groups * blocks * MR * block,
        "packed A too short"
    );
    if blocks <= 1 {
        // One block: row `i` of every group lies at `i·block`, a plain strided matrix.
        let mat = MatA {
            ptr: packed_a.as_ptr(),
            ld: block,
        };
        run(mat, m, b, c, ldc, accumulate, epilogue, false);
        return;
    }
    // Several blocks: each group's block `u` is a `rows × uc` matrix with row stride `block`;
    // the blocks accumulate into the group's rows of C, then the epilogue.
    let cptr = MatC(c.as_mut_ptr());
    for g in 0..groups {
        let rows = MR.min(m - g * MR);
        for (bi, u0) in (0..k).step_by(block).enumerate() {
            let uc = block.min(k - u0);
            let a_blk = packed_a[(g * blocks + bi) * MR * block..].as_ptr();
            for p in 0..n.div_ceil(NR) {
                // SAFETY: the group's block holds `rows` rows of `uc <= block` units `block`
                // apart (length asserted above); the panel's units `u0..u0 + uc` are inside
                // `b`; the `rows × cols` block of C at (g·MR, p·NR) is inside `c`.
                unsafe {
                    product(
                        MatA {
                            ptr: a_blk,
                            ld: block,
                        },
                        rows,
                        uc,
                        b.data()[p * k * NR + u0 * NR..].as_ptr(),
                        cptr.get().add(g * MR * ldc + p * NR),
                        ldc,
                        NR.min(n - p * NR),
                        accumulate || u0 > 0,
                    );
                }
            }
        }
        epilogue_rows(cptr, g * MR..g * MR + rows, 0..n, ldc, epilogue);
    }
}

/// Runs `C[m, n] (+)= A·B` on whole row-major `A`, cut into tasks of rows × panels.
#[allow(clippy::too_many_arguments)]
fn run(
    a: MatA,
    m: usize,
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    epilogue: Epilogue<'_>,
    parallel: bool,
) {
    let (k, n) = (b.k(), b.n());
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        ldc >= n && c.len() >= (m - 1) * ldc + n,
        "C too short for [{m}, {n}]"
    );
    let panels = n.div_ceil(NR);
    let threads = if parallel {
        rayon::current_num_threads()
    } else {
        1
    };
    let row_tasks = m.div_ceil(TASK_ROWS);
    // Enough tasks to balance the threads (~8 each), whole panels.
    let col_tasks = (8 * threads).div_ceil(row_tasks).clamp(1, panels);
    let per_col = panels.div_ceil(col_tasks);
    let col_tasks = panels.div_ceil(per_col);
    let cptr = MatC(c.as_mut_ptr());
    let task = |t: usize| {
        let (rt, ct) = (t / col_tasks, t % col_tasks);
        let r0 = rt * TASK_ROWS;
        let rows = TASK_ROWS.min(m - r0);
        let (p0, p1) = (ct * per_col, ((ct + 1) * per_col).min(panels));
        for p in p0..p1 {
            let cols = NR.min(n - p * NR);
            // SAFETY: rows `r0..r0 + rows` of A hold `k` elements each (checked by the
            // callers); panel `p` holds `k × NR` elements; the `rows × cols` block of C at
            // (r0, p·NR) is inside `c` and belongs to this task alone.
            unsafe {
                product(
                    a.at_row(r0),
                    rows,
                    k,
                    b.data()[p * k * NR..].as_ptr(),
                    cptr.get().add(r0 * ldc + p * NR),
                    ldc,
                    cols,
                    accumulate,
                );
            }
            epilogue_rows(cptr, r0..r0 + rows, p * NR..p * NR + cols, ldc, epilogue);
        }
    };
    let tasks = row_tasks * col_tasks;
    if parallel && threads > 1 && tasks > 1 {
        (0..tasks).into_par_iter().for_each(task);
    } else {
        (0..tasks).for_each(task);
    }
}

/// `C[rows, cols] (+)= A[rows, k] · panel[k, cols]` by the `gemm` crate, serial (the caller
/// parallelises). With `k == 0` and no accumulation, `C = 0`.
///
/// # Safety
/// `a` valid for `rows` rows of `k` reads `a.ld` apart, `panel` for `k × NR` reads, the
/// `rows × cols` block at `c` (row stride `ldc`) valid for reads and writes and not accessed
/// elsewhere meanwhile; `cols <= NR`.
#[allow(clippy::too_many_arguments)]
unsafe fn product(
    a: MatA,
    rows: usize,
    k: usize,
    panel: *const f32,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    accumulate: bool,
) {
    // SAFETY: the caller's contract; the crate reads `rows × k` of A, `k × cols` of the panel
    // and writes `rows × cols` of C through the given strides. `dst := alpha·dst + beta·A·B`
    // with `read_dst` = accumulate, alpha = 1, beta = 1.
    unsafe {
        gemm::gemm(
            rows,
            cols,
            k,
            c,
            1,
            ldc as isize,
            accumulate,
            a.ptr,
            1,
            a.ld as isize,
            panel,
            1,
            NR as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Applies the epilogue to rows `rows` × columns `cols` of C.
fn epilogue_rows(c: MatC, rows: Range<usize>, cols: Range<usize>, ldc: usize, ep: Epilogue<'_>) {
    if matches!(ep, Epilogue::None) {
        return;
    }
    for r in rows {
        // SAFETY: the caller's block of C: row `r`, columns `cols`, inside `c`, its own.
        let row = unsafe {
            std::slice::from_raw_parts_mut(c.get().add(r * ldc + cols.start), cols.len())
        };
        apply_epilogue(row, cols.clone(), ep);
    }
}

/// The scalar f32 microkernel (any target; LLVM vectorises it for the baseline ISA), for
/// packed blocks of `S` units: what [`crate::Isa::f32_kernel`] hands the tile driver for the
/// portable set. [`super::gemm`] and [`super::gemm_packed_serial`] no longer run it for that
/// set (they call [`gemm_crate`] / [`gemm_packed_crate`]); the driver's own tests do.
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
    tail: &Tail,
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
    unsafe { store_tile(&acc, c, ldc, rows, cols, tail) };
}

/// Writes (or, with `tail.add`, adds) an accumulated tile to `C`, then adds `tail.bias`
/// unless it is null, then applies `tail.act`.
///
/// # Safety
/// The `rows × cols` tile at `c` with row stride `ldc` is valid for reads and writes; a
/// non-null `tail.bias` for `cols` reads.
pub(crate) unsafe fn store_tile(
    acc: &[[f32; NR]; MR],
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    tail: &Tail,
) {
    let bias = (!tail.bias.is_null()).then(|| {
        // SAFETY: a non-null bias holds `cols` values (the contract).
        unsafe { std::slice::from_raw_parts(tail.bias, cols) }
    });
    for (r, row) in acc.iter().enumerate().take(rows) {
        // SAFETY: row `r < rows` of the tile, `cols` elements, inside C by the contract.
        let dst = unsafe { std::slice::from_raw_parts_mut(c.add(r * ldc), cols) };
        if tail.add {
            for (d, &v) in dst.iter_mut().zip(row) {
                *d += v;
            }
        } else {
            dst.copy_from_slice(&row[..cols]);
        }
        if let Some(bias) = bias {
            for (d, &v) in dst.iter_mut().zip(bias) {
                *d += v;
            }
        }
        if let Some(act) = tail.act {
            crate::ops::activate_generic(dst, act);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{drive, gemm, gemm_packed_serial, pack_a, CLayout, Shape};
    use super::*;
    use crate::Isa;

    fn values(seed: usize, len: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 - 1001.0) / 1001.0)
            .collect()
    }

    /// `C = A·B + bias` in f64, and the sum of |terms| (the rounding scale).
    fn reference(
        a: &[f32],
        b: &[f32],
        bias: &[f32],
        m: usize,
        k: usize,
        n: usize,
    ) -> Vec<(f64, f64)> {
        (0..m * n)
            .map(|ij| {
                let (i, j) = (ij / n, ij % n);
                let terms = (0..k).map(|kk| a[i * k + kk] as f64 * b[kk * n + j] as f64);
                let sum: f64 = terms.clone().sum::<f64>() + bias[j] as f64;
                (sum, terms.map(f64::abs).sum::<f64>() + bias[j].abs() as f64)
            })
            .collect()
    }

    /// The portable set's `gemm` and `gemm_packed_serial` run the crate path (bit-equal to
    /// calling it, and not to the scalar tile kernel, whose sums round differently), and both
    /// match an f64 reference, including several reduction blocks (k > 768) and k = 0.
    #[test]
    fn portable_set_runs_the_crate_and_matches_reference() {
        for &(m, k, n) in &[(37, 1000, 70), (13, 64, 33), (5, 0, 40), (200, 300, 96)] {
            let a = values(1, m * k);
            let b = values(2, k * n);
            let bias = values(3, n);
            let packed = PackedB::from_rows(&b, k, n, n);
            let want = reference(&a, &b, &bias, m, k, n);
            let check = |what: &str, c: &[f32]| {
                for (ij, (&got, &(v, scale))) in c.iter().zip(&want).enumerate() {
                    let err = (got as f64 - v).abs();
                    assert!(
                        err <= 1e-6 * scale.max(1.0),
                        "{what} m={m} k={k} n={n} C[{ij}]: {got} vs {v}"
                    );
                }
            };
            let ep = Epilogue::Bias(&bias);
            let mut via_gemm = vec![f32::NAN; m * n];
            gemm(
                Isa::Portable,
                &a,
                m,
                k,
                &packed,
                &mut via_gemm,
                n,
                false,
                ep,
                &mut Vec::new(),
            );
            check("gemm", &via_gemm);
            let mut crate_direct = vec![f32::NAN; m * n];
            gemm_crate(&a, m, k, &packed, &mut crate_direct, n, false, ep);
            assert_eq!(via_gemm, crate_direct, "gemm(Portable) is the crate path");

            let mut pa = Vec::new();
            pack_a(&a, m, k, k, &mut pa);
            let mut serial = vec![f32::NAN; m * n];
            gemm_packed_serial(Isa::Portable, &pa, m, &packed, &mut serial, n, false, ep);
            check("gemm_packed_serial", &serial);
            let mut serial_direct = vec![f32::NAN; m * n];
            gemm_packed_crate(&pa, m, &packed, &mut serial_direct, n, false, ep);
            assert_eq!(
                serial, serial_direct,
                "gemm_packed_serial(Portable) is the crate path"
            );

            // Accumulating: C += A·B + bias onto C = A·B + bias gives twice C.
            let mut acc = serial.clone();
            gemm_packed_serial(Isa::Portable, &pa, m, &packed, &mut acc, n, true, ep);
            for (ij, (&twice, &once)) in acc.iter().zip(&serial).enumerate() {
                let target = 2.0 * once as f64;
                assert!(
                    (twice as f64 - target).abs() <= 4e-6 * want[ij].1.max(1.0),
                    "accumulate m={m} k={k} n={n} C[{ij}]: {twice} vs {target}"
                );
            }

            if k > 64 {
                let block = block_units(k);
                let mut scalar = vec![f32::NAN; m * n];
                let shape = Shape {
                    m,
                    n,
                    units: k,
                    block,
                };
                drive(
                    Isa::Portable.f32_kernel(block),
                    &pa,
                    packed.data(),
                    shape,
                    &mut scalar,
                    CLayout::Rows(n),
                    false,
                    ep,
                    false,
                );
                check("scalar tile kernel", &scalar);
                assert_ne!(
                    scalar, serial,
                    "the scalar kernel rounds differently: a different path"
                );
            }
        }
    }
}

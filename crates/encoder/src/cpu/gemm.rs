//! Packed GEMM, `C = A·B (+ C) (+ bias, activation)`, in f32: the tiled, rayon-parallel driver
//! shared with the bf16 variant ([`super::bf16`]), the f32 packing and the f32 microkernels
//! (AVX-512 and portable).
//!
//! # Layout
//! The reduction dimension `k` is counted in *units*: one `k` for f32, a pair of `k` for bf16.
//! - `B` (the weights, `[k, n]`) is packed once into column panels of [`NR`] columns: panel
//!   `j` holds `units × NR` elements, unit-major, zero-padded past `n` (and past `k`).
//! - `A` (the activations, `[m, k]` row-major) is copied per call into row groups of [`MR`]
//!   rows, cut into reduction blocks of `S` units ([`block_units`]: 128 for short reductions,
//!   else [`KC_UNITS`]): block `b` of group `g` holds its rows one after another, `S` units
//!   apart. Packing is a row copy (or a row conversion to bf16), no transposition, and the
//!   kernels, compiled for each `S`, read row `i` at the constant offset `i·S`.
//!
//! The slice of a panel for the units `u0..u1` is contiguous, so the driver blocks the
//! reduction by `S` without repacking `B`. A microkernel computes one `MR × NR` tile of `C`
//! from one block of a group and one panel; it keeps the tile in 28 zmm registers.
//!
//! # Threads
//! `C` is cut into tiles of whole row groups × whole panels; rayon runs the tiles (the
//! caller's pool decides how many threads). Each tile runs the full reduction and then its
//! epilogue, so the tile is still in cache when the bias and activation are applied.
// The AVX-512 intrinsics are stable since Rust 1.89; the workspace's rust-version (1.95, what
// burn 0.22 needs) covers them.

use rayon::prelude::*;

use super::ops;
use super::Isa;
use crate::config::Activation;

/// Rows of `C` per microkernel tile.
pub const MR: usize = 14;
/// Columns of `C` per microkernel tile (two zmm registers).
pub const NR: usize = 32;
/// Reduction units per cache block: the `B` panel slice a kernel streams (96 KB in f32) comes
/// from L2, and fewer blocks mean fewer reloads of the `C` tile (measured best of 128..768).
pub const KC_UNITS: usize = 768;
/// The block size of short reductions (attention heads), so their packed `A` stays small.
pub const KC_SMALL: usize = 128;

/// The reduction block (and packed row stride) for a reduction of `units` units.
pub fn block_units(units: usize) -> usize {
    if units <= KC_SMALL {
        KC_SMALL
    } else {
        KC_UNITS
    }
}

/// What happens to a tile of `C` after the product: bias, bias and activation.
#[derive(Debug, Clone, Copy)]
pub enum Epilogue<'a> {
    /// `C = A·B` (or `C += A·B`).
    None,
    /// Adds `bias[col]`.
    Bias(&'a [f32]),
    /// Adds `bias[col]`, then applies the activation.
    BiasAct(&'a [f32], Activation),
}

/// A microkernel: `C[rows, cols] (+)= A_block[units] · B_panel[units]`, where `a` points at a
/// packed block of `A` (row `i` at `a + i·S`, `units <= S` elements each; `S` is the kernel's
/// compiled block size), `b` at `units × NR` packed elements and `c` at the tile's first element
/// with row stride `ldc`; `rows <= MR`, `cols <= NR`; with `add` the product is added to `C`.
pub(crate) type Kernel<T> = unsafe fn(
    units: usize,
    a: *const T,
    b: *const T,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    add: bool,
);

/// A zero-initialised buffer whose first element is 64-byte aligned, so that every zmm load
/// of a packed panel stays inside one cache line (large `Vec`s come from `mmap` with a 16-byte
/// header, and a load that straddles two lines costs two).
#[derive(Debug, Clone)]
pub(crate) struct Aligned<T> {
    buf: Vec<T>,
    off: usize,
    len: usize,
}

impl<T: Copy + Default> Aligned<T> {
    pub(crate) fn zeroed(len: usize) -> Self {
        let per_line = (64 / std::mem::size_of::<T>()).max(1);
        let buf = vec![T::default(); len + per_line];
        let misalign = (buf.as_ptr() as usize % 64) / std::mem::size_of::<T>();
        let off = (per_line - misalign) % per_line;
        Self { buf, off, len }
    }

    pub(crate) fn as_slice(&self) -> &[T] {
        &self.buf[self.off..self.off + self.len]
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.buf[self.off..self.off + self.len]
    }
}

/// `B` packed for the f32 kernels (see the module docs).
#[derive(Debug, Clone)]
pub struct PackedB {
    k: usize,
    n: usize,
    data: Aligned<f32>,
}

impl PackedB {
    /// Packs `B[k, n]` given by `get(row, col)`.
    pub fn from_fn(k: usize, n: usize, get: impl Fn(usize, usize) -> f32) -> Self {
        let panels = n.div_ceil(NR);
        let mut data = Aligned::zeroed(panels * k * NR);
        for (j, panel) in data
            .as_mut_slice()
            .chunks_exact_mut(k * NR.max(1))
            .enumerate()
        {
            for kk in 0..k {
                let dst = &mut panel[kk * NR..(kk + 1) * NR];
                for (jj, d) in dst.iter_mut().enumerate() {
                    let col = j * NR + jj;
                    if col < n {
                        *d = get(kk, col);
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
        let panels = n.div_ceil(NR);
        let mut data = Aligned::zeroed(panels * k * NR);
        if k > 0 {
            data.as_mut_slice()
                .par_chunks_exact_mut(k * NR)
                .enumerate()
                .for_each(|(j, panel)| {
                    let (c0, w) = (j * NR, NR.min(n - j * NR));
                    for (kk, dst) in panel.chunks_exact_mut(NR).enumerate() {
                        dst[..w].copy_from_slice(&b[kk * ldb + c0..kk * ldb + c0 + w]);
                    }
                });
        }
        Self { k, n, data }
    }

    /// Packs `B[k, n] = Bt[n, k]ᵀ` from the row-major `Bt` with row stride `ld` (PyTorch's
    /// `[out, in]` linear weights, or the keys of attention).
    pub fn from_transposed(bt: &[f32], k: usize, n: usize, ld: usize) -> Self {
        if k > 0 && n > 0 {
            assert!(
                ld >= k && bt.len() >= (n - 1) * ld + k,
                "Bt too short for [{n}, {k}]"
            );
        }
        let panels = n.div_ceil(NR);
        let mut data = Aligned::zeroed(panels * k * NR);
        if k > 0 {
            for (j, panel) in data.as_mut_slice().chunks_exact_mut(k * NR).enumerate() {
                for jj in 0..NR.min(n - j * NR) {
                    let src = &bt[(j * NR + jj) * ld..(j * NR + jj) * ld + k];
                    for (kk, &v) in src.iter().enumerate() {
                        panel[kk * NR + jj] = v;
                    }
                }
            }
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

    /// The packed elements (for the driver).
    pub(crate) fn data(&self) -> &[f32] {
        self.data.as_slice()
    }
}

/// Packs rows `0..m` of the row-major `A[m, k]` (row stride `lda`) into row groups and blocks
/// for the f32 kernels (see the module docs); `out` is resized to
/// `m.div_ceil(MR) * k.div_ceil(S) * MR * S`, `S = block_units(k)`. Rows past `m` and units
/// past `k` are left as they were: no kernel reads them.
pub fn pack_a(a: &[f32], m: usize, k: usize, lda: usize, out: &mut Vec<f32>) {
    let block = block_units(k);
    let blocks = k.div_ceil(block);
    let per_group = blocks * MR * block;
    let groups = m.div_ceil(MR);
    resize_scratch(out, groups * per_group);
    if k == 0 {
        return;
    }
    let work = |(g, dst): (usize, &mut [f32])| {
        for r in 0..MR.min(m - g * MR) {
            let row = &a[(g * MR + r) * lda..(g * MR + r) * lda + k];
            for (b, src) in row.chunks(block).enumerate() {
                let at = (b * MR + r) * block;
                dst[at..at + src.len()].copy_from_slice(src);
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

/// Grows or shrinks a scratch buffer to `len` elements without caring about its contents.
pub(crate) fn resize_scratch<T: Copy + Default>(v: &mut Vec<T>, len: usize) {
    if v.len() < len {
        v.resize(len, T::default());
    }
    v.truncate(len);
}

/// `C = A·B` in f32 (or `C += A·B` with `accumulate`), then the epilogue.
///
/// `a` is `[m, k]` row-major with row stride `lda`; `c` is `[m, n]` with row stride `ldc`;
/// `scratch` holds the packed `A` between calls. Runs on the current rayon pool.
///
/// # Panics
/// If a slice is too short for the shapes, or `k` differs from `b.k()`.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    isa: Isa,
    a: &[f32],
    m: usize,
    lda: usize,
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    epilogue: Epilogue<'_>,
    scratch: &mut Vec<f32>,
) {
    let (k, n) = (b.k, b.n);
    check_shapes(a.len(), m, k, lda, c.len(), n, ldc);
    pack_a(a, m, k, lda, scratch);
    let shape = Shape {
        m,
        n,
        units: k,
        block: block_units(k),
    };
    drive(
        isa.f32_kernel(shape.block),
        scratch,
        b.data(),
        shape,
        c,
        ldc,
        accumulate,
        epilogue,
        true,
    );
}

/// The serial f32 GEMM on an already packed `A` (for work that is already parallel, such as
/// attention heads).
#[allow(clippy::too_many_arguments)]
pub fn gemm_packed_serial(
    isa: Isa,
    packed_a: &[f32],
    m: usize,
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    epilogue: Epilogue<'_>,
) {
    let (k, n) = (b.k, b.n);
    if m > 0 && n > 0 {
        assert!(c.len() >= (m - 1) * ldc + n && ldc >= n, "C too short");
    }
    let shape = Shape {
        m,
        n,
        units: k,
        block: block_units(k),
    };
    drive(
        isa.f32_kernel(shape.block),
        packed_a,
        b.data(),
        shape,
        c,
        ldc,
        accumulate,
        epilogue,
        false,
    );
}

pub(crate) fn check_shapes(
    a_len: usize,
    m: usize,
    k: usize,
    lda: usize,
    c_len: usize,
    n: usize,
    ldc: usize,
) {
    if m == 0 {
        return;
    }
    if k > 0 {
        assert!(
            lda >= k && a_len >= (m - 1) * lda + k,
            "A too short for [{m}, {k}]"
        );
    }
    if n > 0 {
        assert!(
            ldc >= n && c_len >= (m - 1) * ldc + n,
            "C too short for [{m}, {n}]"
        );
    }
}

/// Problem size for the driver: `units` of reduction (k for f32, pairs for bf16), cut into
/// blocks of `block` units (the packed `A` layout, see [`block_units`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub m: usize,
    pub n: usize,
    pub units: usize,
    pub block: usize,
}

/// A pointer to `C` that tiles share; each tile writes only its own rows × columns.
#[derive(Clone, Copy)]
struct CPtr(*mut f32);
// SAFETY: tiles write disjoint regions of C (distinct row groups or distinct panels), and the
// borrow of C outlives the parallel section (`drive` holds `&mut [f32]` for its duration).
unsafe impl Send for CPtr {}
// SAFETY: as above; the pointer itself is only copied.
unsafe impl Sync for CPtr {}

impl CPtr {
    /// The pointer (a method, so closures capture the whole `Send` wrapper, not its field).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Runs the tiles of `C = A·B` (see the module docs).
#[allow(clippy::too_many_arguments)]
pub(crate) fn drive<T: Copy + Sync>(
    kernel: Kernel<T>,
    a: &[T],
    b: &[T],
    shape: Shape,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    epilogue: Epilogue<'_>,
    parallel: bool,
) {
    let Shape { m, n, units, block } = shape;
    if m == 0 || n == 0 {
        return;
    }
    let groups = m.div_ceil(MR);
    let panels = n.div_ceil(NR);
    let per_group = units.div_ceil(block) * MR * block;
    assert!(a.len() >= groups * per_group && b.len() >= panels * units * NR);
    if units == 0 {
        // An empty reduction: C = 0 (or unchanged), then the epilogue.
        for r in 0..m {
            let row = &mut c[r * ldc..r * ldc + n];
            if !accumulate {
                row.fill(0.0);
            }
        }
        apply_epilogue(c, ldc, 0..m, 0..n, epilogue);
        return;
    }
    // Tiles: a few row groups × a few panels, enough tiles to balance the threads.
    let threads = if parallel {
        rayon::current_num_threads()
    } else {
        1
    };
    let tile_groups = if groups >= 8 * threads {
        4
    } else {
        groups.min(2)
    }
    .max(1);
    let row_tiles = groups.div_ceil(tile_groups);
    let want = 16 * threads;
    let tile_panels = if row_tiles >= want {
        panels.min(24)
    } else {
        (panels * row_tiles).div_ceil(want).clamp(1, 24).min(panels)
    };
    let col_tiles = panels.div_ceil(tile_panels);
    let cptr = CPtr(c.as_mut_ptr());
    let tile = |t: usize| {
        let (rt, ct) = (t / col_tiles, t % col_tiles);
        let g0 = rt * tile_groups;
        let g1 = (g0 + tile_groups).min(groups);
        let p0 = ct * tile_panels;
        let p1 = (p0 + tile_panels).min(panels);
        let mut u0 = 0;
        while u0 < units {
            let uc = block.min(units - u0);
            let add = accumulate || u0 > 0;
            for p in p0..p1 {
                let cols = NR.min(n - p * NR);
                let bp = &b[p * units * NR + u0 * NR..];
                for g in g0..g1 {
                    let rows = MR.min(m - g * MR);
                    let ap = &a[g * per_group + (u0 / block) * MR * block..];
                    debug_assert!(ap.len() >= MR * block && bp.len() >= uc * NR);
                    // SAFETY: `ap` holds the group's whole block (MR rows of `block >= uc`
                    // units) and `bp` at least `uc` units of the panel (checked above by the
                    // length assertion on `a` and `b`); the tile of C at
                    // (g·MR, p·NR) spans `rows × cols` elements inside `c` (the caller checked
                    // `c` against m, n and ldc), and no other tile touches it.
                    unsafe {
                        kernel(
                            uc,
                            ap.as_ptr(),
                            bp.as_ptr(),
                            cptr.get().add(g * MR * ldc + p * NR),
                            ldc,
                            rows,
                            cols,
                            add,
                        );
                    }
                }
            }
            u0 += uc;
        }
        if !matches!(epilogue, Epilogue::None) {
            let r = g0 * MR..(g1 * MR).min(m);
            let cols = p0 * NR..(p1 * NR).min(n);
            // SAFETY: this tile's rows `r` × columns `cols` of C belong to this tile only; the
            // slice spans from its first to its last element, and `apply_epilogue` touches only
            // the columns `cols` of each row in it.
            let region = unsafe {
                std::slice::from_raw_parts_mut(
                    cptr.get().add(r.start * ldc),
                    (r.end - r.start - 1) * ldc + cols.end,
                )
            };
            apply_epilogue(region, ldc, 0..r.end - r.start, cols, epilogue);
        }
    };
    let tiles = row_tiles * col_tiles;
    if parallel && tiles > 1 && threads > 1 {
        (0..tiles).into_par_iter().for_each(tile);
    } else {
        (0..tiles).for_each(tile);
    }
}

fn apply_epilogue(
    c: &mut [f32],
    ldc: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    epilogue: Epilogue<'_>,
) {
    match epilogue {
        Epilogue::None => {}
        Epilogue::Bias(bias) => {
            for r in rows {
                let row = &mut c[r * ldc + cols.start..r * ldc + cols.end];
                ops::add_in_place(row, &bias[cols.clone()]);
            }
        }
        Epilogue::BiasAct(bias, act) => {
            for r in rows {
                let row = &mut c[r * ldc + cols.start..r * ldc + cols.end];
                ops::add_in_place(row, &bias[cols.clone()]);
                ops::activate(row, act);
            }
        }
    }
}

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

/// The AVX-512 f32 microkernel: 14 × 32 tile in 28 zmm accumulators, one broadcast of `A` and
/// two loads of `B` per unit. A partial row group (fewer than 14 rows, e.g. a 10-token query)
/// runs a kernel compiled for exactly its row count, so no work is spent on padding rows.
///
/// # Safety
/// The CPU supports AVX-512F; otherwise as [`kernel_f32_portable`].
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
    add: bool,
) {
    by_rows!(
        rows,
        kernel_f32_avx512_rows,
        (units, a, b, c, ldc, cols, add)
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
    add: bool,
) {
    use std::arch::x86_64::*;
    let mut lo = [_mm512_setzero_ps(); R];
    let mut hi = [_mm512_setzero_ps(); R];
    let (mut a, mut b) = (a, b);
    for _ in 0..units {
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
    // The C tile is valid for `R × cols` (caller's contract).
    store_zmm_tile!(lo, hi, R, c, ldc, cols, add);
}

/// Calls `$kernel::<R, S>($args)` with `R = $rows` (1 to [`MR`]), so that a partial row group
/// runs code compiled for exactly its row count. `S` is the calling kernel's block size.
///
/// Expands to an unsafe call: use it only inside a kernel's `unsafe` contract, with `$rows`
/// the rows that contract covers.
#[cfg(target_arch = "x86_64")]
macro_rules! by_rows {
    ($rows:expr, $kernel:ident, $args:tt) => {
        $crate::cpu::gemm::by_rows!(@ $rows, $kernel, $args, 1 2 3 4 5 6 7 8 9 10 11 12 13 14)
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
/// `C` at `c` (row stride `ldc`), adding to it with `add`. A macro rather than a function so
/// that it is always expanded inside the kernel: a call would spill the 28 accumulators.
///
/// Expands to code that needs AVX-512F and a tile valid for `R × cols` reads and writes,
/// `cols <= NR`; use it only inside an AVX-512 kernel's `unsafe` contract.
#[cfg(target_arch = "x86_64")]
macro_rules! store_zmm_tile {
    ($lo:expr, $hi:expr, $r:expr, $c:expr, $ldc:expr, $cols:expr, $add:expr) => {{
        use std::arch::x86_64::*;
        let (c, ldc, cols, add): (*mut f32, usize, usize, bool) = ($c, $ldc, $cols, $add);
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
                _mm512_mask_storeu_ps(p, m0, x0);
                _mm512_mask_storeu_ps(p.wrapping_add(16), m1, x1);
            }
        }
    }};
}
#[cfg(target_arch = "x86_64")]
pub(crate) use store_zmm_tile;

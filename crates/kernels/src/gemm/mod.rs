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

use rayon::prelude::*;

use crate::ops;
use crate::{Activation, Isa};

#[cfg(target_arch = "x86_64")]
mod avx512;
mod portable;

#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::{by_rows, kernel_f32_avx512, store_zmm_tile};
pub(crate) use portable::{kernel_f32_portable, store_tile};

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

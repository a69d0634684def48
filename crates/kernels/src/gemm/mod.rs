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
//! from one block of a group and one panel; it keeps the tile in registers (24 zmm for
//! AVX-512, 12 ymm per 6 × 16 sub-tile for AVX2), and on the last reduction step adds the bias
//! and applies the activation before it stores them ([`Tail`]): no pass over `C` follows.
//! Inputs that are already in the packed layout skip the copy: a row-major `A` whose rows are
//! one block wide (`k = 768`) is read in place, and [`gemm_into_packed`] writes its `C` in
//! the layout the next GEMM reads ([`gemm_from_packed`]: the MLP's fc1 → fc2).
//!
//! # Memory
//! Each call of a panel's row groups hints a share of the *next* panel into L2 as it runs
//! ([`Tail::next`]), so only a tile's first panel waits on L3 or memory for its `B`
//! (`benches/gemm_cold.rs` streams a whole pass's 324 MB of weights; the hints were worth
//! 6–8 % there).
//!
//! # Threads
//! `C` is cut into tiles of whole row groups × whole panels; rayon runs the tiles (the
//! caller's pool decides how many threads).

use std::ops::Range;

use rayon::prelude::*;

use crate::ops;
use crate::{Activation, Isa};

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod blocking;
mod portable;

#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::{kernel_bf16_avx2, kernel_f32_avx2};
#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::{by_rows, kernel_f32_avx512, store_zmm_tile};
pub use blocking::Blocking;
pub(crate) use portable::{kernel_f32_portable, store_tile};

/// Rows of `C` per microkernel tile: 12 × 32 is 24 zmm accumulators for AVX-512 and two
/// 6 × 16 sub-tiles of 12 ymm accumulators for AVX2 (the 16-register kernel's best shape;
/// 14 rows, the earlier choice, split into 5 + 5 + 4 there and ran ~10 % slower).
pub const MR: usize = 12;
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

/// A microkernel: `C[rows, cols] (+)= A_block[units] · B_panel[units] (+ bias)`, where `a`
/// points at a packed block of `A` (row `i` at `a + i·S`, `units <= S` elements each; `S` is
/// the kernel's compiled block size), `b` at `units × NR` packed elements and `c` at the tile's
/// first element with row stride `ldc`; `rows <= MR`, `cols <= NR`; `tail` says whether the
/// product is added to `C`, which bias follows it, and what to prefetch.
pub(crate) type Kernel<T> = unsafe fn(
    units: usize,
    a: *const T,
    b: *const T,
    c: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    tail: &Tail,
);

/// What a microkernel call does besides the product, and what it fetches for the next call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tail {
    /// Adds the product to `C` (else overwrites the tile).
    pub add: bool,
    /// The bias of the tile's first column (`cols` values are read), added after the product
    /// and the old `C`, or null. Set on the last reduction step of a biased GEMM: the bias
    /// then costs no pass over `C`, and `C = (A·B + C) + bias` in the same order of
    /// additions as a separate pass.
    pub bias: *const f32,
    /// Memory the call hints into L2 while it runs, `next_step` bytes further per unit
    /// (a share of the next panel's slice of `B`: see [`drive`]). Never null (a kernel may
    /// prefetch it unconditionally); the AVX-512 and AVX2 f32 kernels hint it, the others
    /// ignore it.
    pub next: *const u8,
    /// Bytes per unit of `next`.
    pub next_step: usize,
    /// The activation applied after the bias, with it: the last reduction step of a
    /// `BiasAct` GEMM (no pass over `C` for it either). Every kernel's store applies it, with
    /// [`ops::activate`]'s formula.
    pub act: Option<Activation>,
}

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

    /// An empty packing, to be filled by [`PackedB::refill_transposed`] or
    /// [`PackedB::refill_rows`] (a buffer reused across calls, as attention's keys and values).
    pub fn empty() -> Self {
        Self {
            k: 0,
            n: 0,
            data: Aligned::zeroed(0),
        }
    }

    /// Makes room for `[k, n]` (keeping the allocation when it is large enough); the padding
    /// columns of the last panel are zeroed, the rest is left for the caller to overwrite.
    fn reshape(&mut self, k: usize, n: usize) {
        let len = n.div_ceil(NR) * k * NR;
        // `Aligned` keeps one cache line of slack in front of its offset.
        if self.data.buf.len() < len + 64 / std::mem::size_of::<f32>() {
            self.data = Aligned::zeroed(len);
        } else {
            self.data.len = len;
        }
        (self.k, self.n) = (k, n);
        let (w, panels) = (n % NR, n.div_ceil(NR));
        if w > 0 && k > 0 {
            let last = &mut self.data.as_mut_slice()[(panels - 1) * k * NR..];
            for row in last.chunks_exact_mut(NR) {
                row[w..].fill(0.0);
            }
        }
    }

    /// [`PackedB::from_transposed`] into this buffer, serially, reusing its allocation.
    pub fn refill_transposed(&mut self, bt: &[f32], k: usize, n: usize, ld: usize) {
        if k > 0 && n > 0 {
            assert!(
                ld >= k && bt.len() >= (n - 1) * ld + k,
                "Bt too short for [{n}, {k}]"
            );
        }
        self.reshape(k, n);
        if k == 0 {
            return;
        }
        for (j, panel) in self
            .data
            .as_mut_slice()
            .chunks_exact_mut(k * NR)
            .enumerate()
        {
            for jj in 0..NR.min(n - j * NR) {
                let src = &bt[(j * NR + jj) * ld..(j * NR + jj) * ld + k];
                for (kk, &v) in src.iter().enumerate() {
                    panel[kk * NR + jj] = v;
                }
            }
        }
    }

    /// [`PackedB::from_rows`] into this buffer, serially, reusing its allocation.
    pub fn refill_rows(&mut self, b: &[f32], k: usize, n: usize, ldb: usize) {
        if k > 0 && n > 0 {
            assert!(
                ldb >= n && b.len() >= (k - 1) * ldb + n,
                "B too short for [{k}, {n}]"
            );
        }
        self.reshape(k, n);
        if k == 0 {
            return;
        }
        for (j, panel) in self
            .data
            .as_mut_slice()
            .chunks_exact_mut(k * NR)
            .enumerate()
        {
            let (c0, w) = (j * NR, NR.min(n - j * NR));
            for (kk, dst) in panel.chunks_exact_mut(NR).enumerate() {
                dst[..w].copy_from_slice(&b[kk * ldb + c0..kk * ldb + c0 + w]);
            }
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
    pack_a_with(a, m, k, lda, out, m * k >= 1 << 16);
}

/// [`pack_a`] on the calling thread only (for work that is already parallel and holds
/// thread-local buffers, which a nested rayon call could re-enter).
pub fn pack_a_serial(a: &[f32], m: usize, k: usize, lda: usize, out: &mut Vec<f32>) {
    pack_a_with(a, m, k, lda, out, false);
}

fn pack_a_with(a: &[f32], m: usize, k: usize, lda: usize, out: &mut Vec<f32>, parallel: bool) {
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
    if parallel {
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

/// `A` as the kernels read it, and the driver's shape: a row-major `A` whose rows are
/// exactly one reduction block (`k = S = lda`: ViT's qkv, out and fc1, k = 768) already is
/// the packed layout (row `i` of group `g` at `(g·MR + i)·S`), so the kernels read it in
/// place and the copy (~5 % of a forward pass) is skipped; any other is packed into
/// `scratch`. `drive` checks the length the kernels read.
fn prepare_a<'a>(
    a: &'a [f32],
    m: usize,
    k: usize,
    lda: usize,
    n: usize,
    scratch: &'a mut Vec<f32>,
) -> (&'a [f32], Shape) {
    let shape = Shape {
        m,
        n,
        units: k,
        block: block_units(k),
    };
    if k == shape.block && lda == k {
        (a, shape)
    } else {
        pack_a(a, m, k, lda, scratch);
        (scratch, shape)
    }
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
    if isa == Isa::Portable {
        // The portable set multiplies through the `gemm` crate (NEON on aarch64).
        return portable::gemm_crate(a, m, lda, b, c, ldc, accumulate, epilogue);
    }
    let (k, n) = (b.k, b.n);
    check_shapes(a.len(), m, k, lda, c.len(), n, ldc);
    let (packed, shape) = prepare_a(a, m, k, lda, n, scratch);
    drive(
        isa.f32_kernel(shape.block),
        packed,
        b.data(),
        shape,
        c,
        CLayout::Rows(ldc),
        accumulate,
        epilogue,
        true,
    );
}

/// Floats of the packed `A` of an `[m, k]` input ([`pack_a`]'s layout): the length of the `C`
/// that [`gemm_into_packed`] writes for a following GEMM with this `k`.
pub fn packed_len(m: usize, k: usize) -> usize {
    let block = block_units(k);
    m.div_ceil(MR) * k.div_ceil(block) * MR * block
}

/// [`gemm`] (overwriting `C`) whose `C = [m, n]` is written in the packed layout of
/// [`pack_a`] for a following GEMM with `k = n`, which reads it with [`gemm_from_packed`]
/// instead of copying it: ViT's fc1 → fc2 (`n = 3072`, four reduction blocks), where the
/// copy took ~2 % of a forward pass. `c` holds at least [`packed_len`]`(m, n)` floats; the
/// padding rows of the last group are left as they were.
///
/// # Panics
/// As [`gemm`]; if `c` is shorter than [`packed_len`]`(m, n)`.
#[allow(clippy::too_many_arguments)]
pub fn gemm_into_packed(
    isa: Isa,
    a: &[f32],
    m: usize,
    lda: usize,
    b: &PackedB,
    c: &mut [f32],
    epilogue: Epilogue<'_>,
    scratch: &mut Vec<f32>,
) {
    let n = b.n;
    assert!(
        c.len() >= packed_len(m, n),
        "packed C too short for [{m}, {n}]"
    );
    if isa == Isa::Portable || m == 0 || n == 0 {
        // The `gemm` crate writes rows: through a row-major buffer.
        let mut rows = vec![0.0; m * n];
        gemm(isa, a, m, lda, b, &mut rows, n, false, epilogue, scratch);
        let mut packed = Vec::new();
        pack_a_serial(&rows, m, n, n, &mut packed);
        c[..packed.len()].copy_from_slice(&packed);
        return;
    }
    let k = b.k;
    check_shapes(a.len(), m, k, lda, usize::MAX, n, n);
    let (packed, shape) = prepare_a(a, m, k, lda, n, scratch);
    drive(
        isa.f32_kernel(shape.block),
        packed,
        b.data(),
        shape,
        c,
        CLayout::Packed {
            block: block_units(n),
        },
        false,
        epilogue,
        true,
    );
}

/// [`gemm`] on an `A` already in the packed layout of [`pack_a`] (as [`gemm_into_packed`]
/// writes it), on the current rayon pool.
///
/// # Panics
/// If `packed_a` is shorter than [`packed_len`]`(m, b.k())`, or `c` too short.
#[allow(clippy::too_many_arguments)]
pub fn gemm_from_packed(
    isa: Isa,
    packed_a: &[f32],
    m: usize,
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    epilogue: Epilogue<'_>,
) {
    packed_gemm(isa, packed_a, m, b, c, ldc, accumulate, epilogue, true);
}

/// The serial f32 GEMM on an already packed `A` (for work that is already parallel, such as
/// attention heads).
///
/// # Panics
/// As [`gemm_from_packed`].
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
    packed_gemm(isa, packed_a, m, b, c, ldc, accumulate, epilogue, false);
}

/// [`gemm_from_packed`] (`parallel`) or [`gemm_packed_serial`].
#[allow(clippy::too_many_arguments)]
fn packed_gemm(
    isa: Isa,
    packed_a: &[f32],
    m: usize,
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
    epilogue: Epilogue<'_>,
    parallel: bool,
) {
    let (k, n) = (b.k, b.n);
    assert!(
        packed_a.len() >= packed_len(m, k),
        "packed A too short for [{m}, {k}]"
    );
    if isa == Isa::Portable {
        return portable::gemm_packed_crate(packed_a, m, b, c, ldc, accumulate, epilogue);
    }
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
        CLayout::Rows(ldc),
        accumulate,
        epilogue,
        parallel,
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

/// Where `C`'s elements go: rows `ldc` apart, or the packed layout of [`pack_a`] for a
/// reduction of `n` (row groups of [`MR`] rows cut into blocks of `block` columns), which a
/// following GEMM with `k = n` reads without packing ([`gemm_from_packed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CLayout {
    /// Row-major with this row stride.
    Rows(usize),
    /// Packed for a reduction of `n` in blocks of `block` (a multiple of [`NR`], so that no
    /// tile's columns cross a block).
    Packed { block: usize },
}

impl CLayout {
    /// The offset of element `(r, col)` of a `C` with `n` columns.
    fn at(self, r: usize, col: usize, n: usize) -> usize {
        match self {
            CLayout::Rows(ldc) => r * ldc + col,
            CLayout::Packed { block } => {
                let blocks = n.div_ceil(block);
                (r / MR) * blocks * MR * block
                    + (col / block) * MR * block
                    + (r % MR) * block
                    + col % block
            }
        }
    }

    /// The distance between two rows of one tile.
    fn row_stride(self) -> usize {
        match self {
            CLayout::Rows(ldc) => ldc,
            CLayout::Packed { block } => block,
        }
    }

    /// The contiguous pieces of row `r`'s columns `cols`: `(offset, columns)`.
    fn pieces(
        self,
        r: usize,
        cols: Range<usize>,
        n: usize,
    ) -> impl Iterator<Item = (usize, Range<usize>)> {
        let step = match self {
            CLayout::Rows(_) => usize::MAX,
            CLayout::Packed { block } => block,
        };
        let mut c0 = cols.start;
        std::iter::from_fn(move || {
            (c0 < cols.end).then(|| {
                let end = cols.end.min(c0.saturating_add(step - c0 % step));
                let piece = (self.at(r, c0, n), c0..end);
                c0 = end;
                piece
            })
        })
    }
}

/// A pointer to `C` that tiles share; each tile's kernels read and write only its own rows ×
/// columns, through this pointer (the bias and the activation are applied in the kernels'
/// stores: no `&mut` slice of `C` is made while tiles run).
#[derive(Clone, Copy)]
struct CPtr(*mut f32);
// SAFETY: tiles access disjoint elements of C (each its own row groups × panels), and the
// borrow of C outlives the parallel section (`drive` holds `&mut [f32]` for its duration and
// does not use it meanwhile).
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
    layout: CLayout,
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
    let blocks = units.div_ceil(block);
    let per_group = blocks * MR * block;
    // The last element a kernel reads: the last block's last unit in the last row of the last
    // group (a packed `A` has room for whole groups; an `A` read in place, see [`gemm`], ends
    // with its last row).
    let a_needed = if units == 0 {
        0
    } else {
        (groups - 1) * per_group
            + (blocks - 1) * MR * block
            + (m - (groups - 1) * MR - 1) * block
            + (units - (blocks - 1) * block)
    };
    assert!(a.len() >= a_needed && b.len() >= panels * units * NR);
    if let Epilogue::Bias(bias) | Epilogue::BiasAct(bias, _) = epilogue {
        assert!(bias.len() >= n, "bias shorter than the {n} columns");
    }
    // Every tile's rows × columns lie inside `c` (the kernels and the epilogue rely on it):
    // the last element of the last row is the furthest one in either layout.
    match layout {
        CLayout::Rows(ldc) => assert!(ldc >= n, "C's row stride {ldc} < {n} columns"),
        CLayout::Packed { block } => assert!(
            block > 0 && block.is_multiple_of(NR),
            "a packed C's block {block} is not a multiple of {NR}"
        ),
    }
    assert!(
        c.len() > layout.at(m - 1, n - 1, n),
        "C too short for [{m}, {n}]"
    );
    let ldc = layout.row_stride();
    if units == 0 {
        // An empty reduction: C = 0 (or unchanged), then the epilogue.
        for r in 0..m {
            for (at, cols) in layout.pieces(r, 0..n, n) {
                let row = &mut c[at..at + cols.len()];
                if !accumulate {
                    row.fill(0.0);
                }
                apply_epilogue(row, cols, epilogue);
            }
        }
        return;
    }
    // Tiles: a few row groups × a few panels, enough tiles to balance the threads.
    let threads = if parallel {
        rayon::current_num_threads()
    } else {
        1
    };
    // Row groups per tile: as many as the L2 holds next to a streaming panel of `B`
    // ([`Blocking`]), so each panel comes from L3 once per tile, but at least 4 row tiles per
    // thread to balance them.
    let tile_groups = if groups >= 8 * threads {
        Blocking::get()
            .tile_groups
            .min(groups / (4 * threads))
            .max(1)
    } else {
        groups.min(2)
    }
    .max(1);
    // Then even out the tiles (134 groups in tiles of 16 would leave a last one of 6).
    let row_tiles = groups.div_ceil(tile_groups);
    let tile_groups = groups.div_ceil(row_tiles);
    let want = 16 * threads;
    let tile_panels = if row_tiles >= want {
        panels.min(24)
    } else {
        (panels * row_tiles).div_ceil(want).clamp(1, 24).min(panels)
    };
    let col_tiles = panels.div_ceil(tile_panels);
    let tile_panels = panels.div_ceil(col_tiles);
    let cptr = CPtr(c.as_mut_ptr());
    let tile = |t: usize| {
        let (rt, ct) = (t / col_tiles, t % col_tiles);
        let g0 = rt * tile_groups;
        let g1 = (g0 + tile_groups).min(groups);
        let p0 = ct * tile_panels;
        let p1 = (p0 + tile_panels).min(panels);
        let ng = g1 - g0;
        // One kernel call: row group `g`, panel `p`, the reduction step at `u0`; `next` is
        // where its L2 hints go (see below).
        let call = |g: usize, p: usize, u0: usize, next: *const u8, next_step: usize| {
            let uc = block.min(units - u0);
            let add = accumulate || u0 > 0;
            // The bias and the activation join the last reduction step's store (no pass over
            // C for them).
            let (bias, act) = match epilogue {
                Epilogue::Bias(bias) if u0 + uc == units => (Some(&bias[p * NR..]), None),
                Epilogue::BiasAct(bias, act) if u0 + uc == units => {
                    (Some(&bias[p * NR..]), Some(act))
                }
                _ => (None, None),
            };
            let cols = NR.min(n - p * NR);
            let bp = &b[p * units * NR + u0 * NR..];
            let rows = MR.min(m - g * MR);
            let ap = &a[g * per_group + (u0 / block) * MR * block..];
            debug_assert!(ap.len() >= (rows - 1) * block + uc && bp.len() >= uc * NR);
            let tail = Tail {
                add,
                bias: bias.map_or(std::ptr::null(), <[f32]>::as_ptr),
                next,
                next_step,
                act,
            };
            // SAFETY: `ap` holds the step's `rows` rows of `uc` units, `block` apart, and `bp`
            // at least `uc` units of the panel (checked above by the length assertion on `a`
            // and `b`); the tile of C at (g·MR, p·NR) spans `rows × cols` elements inside `c`
            // (the caller checked `c` against m, n and its layout), and no other tile touches
            // it; `bias` is null or holds the panel's `cols` columns (`bias.len() >= n`,
            // asserted).
            unsafe {
                kernel(
                    uc,
                    ap.as_ptr(),
                    bp.as_ptr(),
                    cptr.get().add(layout.at(g * MR, p * NR, n)),
                    ldc,
                    rows,
                    cols,
                    &tail,
                );
            }
        };
        // While the calls of panel `p` run, each hints its share of the next panel into L2,
        // so that the first calls on that panel do not wait on L3 or memory (they are the
        // only calls of the panel that find its `B` outside L2; without the hints they cost
        // ~5 % of a whole GEMM's time, `benches/gemm_cold.rs`). A hint may reach a little
        // past the panel (or past `B`, for the last one): a prefetch never faults.
        let hint = |p: usize, from: usize, len: usize, calls: usize| {
            let next_panel = if p + 1 < panels { p + 1 } else { p };
            let at = b[next_panel * units * NR + from * NR..]
                .as_ptr()
                .cast::<u8>();
            let share = (len * NR * std::mem::size_of::<T>()).div_ceil(calls);
            (at, share)
        };
        // Step by step, panel by panel: each panel's slice of `B` for the step comes from
        // L2 for all the tile's row groups (a panel-outer order that keeps every block of
        // the tile's `A` in L2 instead measured no better on fc2, k = 3 072).
        let mut u0 = 0;
        while u0 < units {
            let uc = block.min(units - u0);
            for p in p0..p1 {
                let (at, share) = hint(p, u0, uc, ng);
                for g in g0..g1 {
                    let next = at.wrapping_add((g - g0) * share);
                    call(g, p, u0, next, share.div_ceil(uc));
                }
            }
            u0 += uc;
        }
    };
    let tiles = row_tiles * col_tiles;
    if parallel && tiles > 1 && threads > 1 {
        (0..tiles).into_par_iter().for_each(tile);
    } else {
        (0..tiles).for_each(tile);
    }
}

/// Applies the epilogue to `row`, the columns `cols` of one row of `C`.
fn apply_epilogue(row: &mut [f32], cols: Range<usize>, epilogue: Epilogue<'_>) {
    match epilogue {
        Epilogue::None => {}
        Epilogue::Bias(bias) => ops::add_in_place(row, &bias[cols]),
        Epilogue::BiasAct(bias, act) => {
            ops::add_in_place(row, &bias[cols]);
            ops::activate(row, act);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bias and the activation, applied in the kernels' stores on the last reduction
    /// step, reach every element of `C` exactly once (`act(A·B + bias)`, with several column
    /// tiles, a partial last panel and a strided `C`), and nothing past its `n` columns.
    #[test]
    fn bias_and_activation_reach_every_element_once() {
        let act = crate::Activation::QuickGelu;
        for (m, k, n, ldc) in [(30, 40, 200, 200), (29, 7, 1000, 1003), (14, 3, 64, 70)] {
            let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
            let bias: Vec<f32> = (0..n).map(|j| (j % 9) as f32 - 4.0).collect();
            let b = PackedB::from_fn(k, n, |kk, j| ((kk + j) % 5) as f32 - 2.0);
            let mut packed = Vec::new();
            pack_a(&a, m, k, k, &mut packed);
            let mut c = vec![f32::NAN; (m - 1) * ldc + n];
            // The tile driver directly (the portable set's `gemm` goes through the `gemm`
            // crate), serially.
            let block = block_units(k);
            let shape = Shape {
                m,
                n,
                units: k,
                block,
            };
            drive(
                Isa::Portable.f32_kernel(block),
                &packed,
                b.data(),
                shape,
                &mut c,
                CLayout::Rows(ldc),
                false,
                Epilogue::BiasAct(&bias, act),
                false,
            );
            for i in 0..m {
                for j in 0..ldc.min(c.len() - i * ldc) {
                    let got = c[i * ldc + j];
                    if j >= n {
                        assert!(
                            got.is_nan(),
                            "{m}x{n}: C[{i}, {j}] past the columns written"
                        );
                        continue;
                    }
                    let mut want = [(0..k)
                        .map(|kk| a[i * k + kk] * (((kk + j) % 5) as f32 - 2.0))
                        .sum::<f32>()
                        + bias[j]];
                    ops::activate(&mut want, act);
                    assert_eq!(got, want[0], "{m}x{n}: C[{i}, {j}]");
                }
            }
        }
    }

    #[test]
    fn refilled_packing_equals_a_fresh_one() {
        let mut t = PackedB::empty();
        let mut r = PackedB::empty();
        for (k, n) in [
            (64, 50),
            (3, 70),
            (64, 33),
            (128, 197),
            (1, 1),
            (50, 64),
            (7, 0),
        ] {
            let ld = k + 5;
            let bt: Vec<f32> = (0..n.max(1) * ld).map(|i| (i % 13) as f32 - 6.0).collect();
            t.refill_transposed(&bt, k, n, ld);
            let fresh = PackedB::from_transposed(&bt, k, n, ld);
            assert_eq!((t.k(), t.n()), (k, n));
            assert_eq!(t.data(), fresh.data(), "transposed k={k} n={n}");
            let ldb = n + 3;
            let b: Vec<f32> = (0..k * ldb).map(|i| (i % 11) as f32 - 5.0).collect();
            r.refill_rows(&b, k, n, ldb);
            assert_eq!(
                r.data(),
                PackedB::from_rows(&b, k, n, ldb).data(),
                "rows k={k} n={n}"
            );
            assert_eq!(r.data().as_ptr() as usize % 64, 0, "aligned");
        }
    }

    /// The parallel driver with several threads and both bias epilogues, small enough for
    /// Miri, whose data-race detector counts the retag of a `&mut` as an access:
    /// `MIRIFLAGS="-Zmiri-tree-borrows -Zmiri-ignore-leaks -Zmiri-permissive-provenance"
    /// cargo +nightly miri test -p glimpse-kernels --lib gemm::tests::parallel_epilogue`
    /// (Tree Borrows: rayon's crossbeam-epoch fails Stacked Borrows on its own). It passes in
    /// ~20 s with the bias and activation in the kernels' stores (2026-11-30); the old
    /// whole-tile epilogue pass failed it with "Data race detected between retag read … and
    /// non-atomic write" (one tile's slice against another tile's kernel store).
    #[test]
    fn parallel_epilogue_on_the_portable_kernel() {
        let (m, k, n) = (2 * MR + 3, 5, 3 * NR + 7);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 5) as f32 - 2.0).collect();
        let bias: Vec<f32> = (0..n).map(|j| (j % 3) as f32).collect();
        let b = PackedB::from_fn(k, n, |kk, j| ((kk * 3 + j) % 4) as f32 - 1.5);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .expect("thread pool");
        let want = |i: usize, j: usize| -> f32 {
            (0..k)
                .map(|kk| a[i * k + kk] * (((kk * 3 + j) % 4) as f32 - 1.5))
                .sum::<f32>()
                + bias[j]
        };
        let run = |epilogue: Epilogue<'_>| {
            let mut c = vec![0.0; m * n];
            let mut scratch = Vec::new();
            // The tile driver with the scalar kernel (the portable set's `gemm` goes through
            // the `gemm` crate, which Miri cannot run).
            pool.install(|| {
                pack_a(&a, m, k, k, &mut scratch);
                let block = block_units(k);
                let shape = Shape {
                    m,
                    n,
                    units: k,
                    block,
                };
                drive(
                    Isa::Portable.f32_kernel(block),
                    &scratch,
                    b.data(),
                    shape,
                    &mut c,
                    CLayout::Rows(n),
                    false,
                    epilogue,
                    true,
                )
            });
            c
        };
        let biased = run(Epilogue::Bias(&bias));
        for i in 0..m {
            for j in 0..n {
                assert_eq!(biased[i * n + j], want(i, j), "C[{i}, {j}]");
            }
        }
        let act = crate::Activation::QuickGelu;
        let mut activated = biased.clone();
        ops::activate(&mut activated, act);
        assert_eq!(run(Epilogue::BiasAct(&bias, act)), activated);
    }
}

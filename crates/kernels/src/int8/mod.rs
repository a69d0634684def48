//! The int8 GEMM: weights quantised once to i8 with one scale per output channel
//! ([`PackedI8`]), activations quantised on every call to u8 with one scale and zero point per
//! row ([`quant::quantise_rows`]), products summed exactly in i32 by `vpdpbusd` (AVX-512 VNNI
//! or AVX-VNNI, [`Int8Kernel`]), then scaled back to f32 with the bias, the activation, or
//! the residual added in the same pass.
//!
//! With `x ≈ sa·(qa − za)` (per row) and `w ≈ sw·qw` (per column),
//! `Σ_k x·w ≈ sa·sw·(Σ_k qa·qw − za·Σ_k qw)`: the column sums `Σ_k qw` are kept with the
//! packed weights, so the zero point costs one multiply-add per output (the usual
//! compensation trick: `vpdpbusd` multiplies unsigned by signed bytes, and asymmetric u8
//! codes use all 256 levels of a row whose values are not centred on zero, such as the
//! output of a GELU).
//!
//! ```
//! use glimpse_kernels::gemm::Epilogue;
//! use glimpse_kernels::int8::{gemm_i8, Int8Scratch, PackedI8};
//! use glimpse_kernels::Isa;
//!
//! let (m, k, n) = (3, 40, 5);
//! let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 11) as f32 / 10.0 - 0.5).collect();
//! let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 13) as f32 / 13.0 - 0.5).collect();
//! let packed = PackedI8::from_fn(k, n, |r, c| b[r * n + c]);
//! let mut c = vec![0.0; m * n];
//! gemm_i8(Isa::detect(), &a, m, &packed, &mut c, false, Epilogue::None, &mut Int8Scratch::default());
//! for i in 0..m {
//!     for j in 0..n {
//!         let exact: f32 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
//!         assert!((c[i * n + j] - exact).abs() < 0.05, "{} vs {exact}", c[i * n + j]);
//!     }
//! }
//! ```

use rayon::prelude::*;

use crate::gemm::Epilogue;
use crate::{ops, Isa};

pub mod quant;
#[cfg(target_arch = "x86_64")]
mod vnni;

pub use quant::{PackedI8, RowQuant, NR, UNIT};

/// Rows of `C` per microkernel tile.
pub const MR: usize = 12;

/// The int8 microkernels, chosen from an [`Isa`] and what the CPU has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Int8Kernel {
    /// Plain Rust i32 loops (every CPU; slow).
    Portable,
    /// AVX-VNNI `vpdpbusd` in ymm registers (with [`Isa::Avx2`] or better on a CPU with
    /// AVX-VNNI: Alder Lake and later).
    AvxVnni,
    /// AVX-512 VNNI `vpdpbusd` in zmm registers (with [`Isa::Avx512`] or better on a CPU with
    /// AVX-512 VNNI).
    Avx512Vnni,
}

impl Int8Kernel {
    /// The fastest int8 kernels `isa` allows on this CPU. An AVX-512 CPU without VNNI
    /// (Skylake-SP) and an AVX2 CPU without AVX-VNNI get the portable kernels.
    pub fn for_isa(isa: Isa) -> Int8Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            let (zmm, ymm) = vnni_hardware();
            if isa.avx512() && Isa::hardware().avx512() && zmm {
                return Int8Kernel::Avx512Vnni;
            }
            if isa.avx2() && Isa::hardware().avx2() && ymm {
                return Int8Kernel::AvxVnni;
            }
        }
        let _ = isa;
        Int8Kernel::Portable
    }

    /// Every int8 kernel set that runs here under [`Isa::detect`] (so `GLIMPSE_ISA` caps it),
    /// lowest first, once each: what the tests run.
    pub fn available() -> Vec<Int8Kernel> {
        let mut out: Vec<Int8Kernel> = Isa::available().into_iter().map(Self::for_isa).collect();
        out.dedup();
        out
    }

    /// Whether these are VNNI kernels (the portable loops are not).
    pub fn is_vnni(self) -> bool {
        self != Int8Kernel::Portable
    }

    /// The [`Isa`] that selects this kernel set (for tests that run each set).
    pub fn isa(self) -> Isa {
        match self {
            Int8Kernel::Portable => Isa::Portable,
            Int8Kernel::AvxVnni => Isa::Avx2,
            Int8Kernel::Avx512Vnni => Isa::Avx512,
        }
    }
}

/// Whether the CPU has (AVX-512 VNNI, AVX-VNNI), detected once.
#[cfg(target_arch = "x86_64")]
fn vnni_hardware() -> (bool, bool) {
    use std::sync::OnceLock;
    static HW: OnceLock<(bool, bool)> = OnceLock::new();
    *HW.get_or_init(|| {
        (
            is_x86_feature_detected!("avx512vnni"),
            is_x86_feature_detected!("avxvnni"),
        )
    })
}

/// Reusable buffers of [`gemm_i8`]: the activations' codes and row quantisations.
#[derive(Debug, Default)]
pub struct Int8Scratch {
    codes: Vec<u8>,
    rows: Vec<RowQuant>,
}

/// A microkernel: the `rows × NR` i32 sums of `units` units of `rows` code rows (`lda` bytes
/// apart) and one panel.
type Kernel = unsafe fn(
    units: usize,
    a: *const u8,
    lda: usize,
    rows: usize,
    b: *const i8,
    out: &mut [i32; MR * NR],
);

/// The portable microkernel (the same integers as the VNNI ones).
///
/// # Safety
/// As the VNNI kernels: `b` holds `units` units of a panel, `a` `rows` rows of
/// `units · UNIT` bytes, `lda` apart.
unsafe fn kernel_portable(
    units: usize,
    a: *const u8,
    lda: usize,
    rows: usize,
    b: *const i8,
    out: &mut [i32; MR * NR],
) {
    // SAFETY: the lengths the caller guarantees.
    let b = unsafe { std::slice::from_raw_parts(b, units * NR * UNIT) };
    for r in 0..rows {
        let a = unsafe { std::slice::from_raw_parts(a.add(r * lda), units * UNIT) };
        let acc = &mut out[r * NR..(r + 1) * NR];
        acc.fill(0);
        for (qa, panel) in a.chunks_exact(UNIT).zip(b.chunks_exact(NR * UNIT)) {
            for (s, qb) in acc.iter_mut().zip(panel.chunks_exact(UNIT)) {
                *s += (0..UNIT)
                    .map(|t| i32::from(qa[t]) * i32::from(qb[t]))
                    .sum::<i32>();
            }
        }
    }
}

fn kernel_for(kind: Int8Kernel) -> Kernel {
    match kind {
        #[cfg(target_arch = "x86_64")]
        Int8Kernel::Avx512Vnni => vnni::kernel_avx512,
        #[cfg(target_arch = "x86_64")]
        Int8Kernel::AvxVnni => vnni::kernel_avxvnni,
        _ => kernel_portable,
    }
}

/// The output pointer, shared by tiles that write disjoint elements.
#[derive(Clone, Copy)]
struct CPtr(*mut f32);
// SAFETY: every tile writes its own rows × columns of C only.
unsafe impl Send for CPtr {}
// SAFETY: as above.
unsafe impl Sync for CPtr {}

impl CPtr {
    /// Elements `row_start + cols` of C.
    ///
    /// # Safety
    /// They lie inside C, and no other reference to them is alive while the slice is.
    unsafe fn segment<'c>(self, row_start: usize, cols: std::ops::Range<usize>) -> &'c mut [f32] {
        // SAFETY: as the caller guarantees.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(row_start + cols.start), cols.len()) }
    }
}

/// `C = A·W` (or `C += A·W` with `accumulate`), then the epilogue, with `W` int8: `a` is
/// `[m, w.k()]` row-major, `c` `[m, w.n()]` row-major. `A` is quantised per row into
/// `scratch`. Runs on the current rayon pool with the int8 kernels of `isa`
/// ([`Int8Kernel::for_isa`]).
///
/// # Panics
/// If `a` or `c` is too short.
#[allow(clippy::too_many_arguments)]
pub fn gemm_i8(
    isa: Isa,
    a: &[f32],
    m: usize,
    w: &PackedI8,
    c: &mut [f32],
    accumulate: bool,
    epilogue: Epilogue<'_>,
    scratch: &mut Int8Scratch,
) {
    let (k, n) = (w.k(), w.n());
    assert!(c.len() >= m * n, "C too short for [{m}, {n}]");
    if m == 0 || n == 0 {
        return;
    }
    let kind = Int8Kernel::for_isa(isa);
    let avx512 = isa.avx512() && Isa::hardware().avx512();
    quant::quantise_rows(isa, a, m, k, &mut scratch.codes, &mut scratch.rows);
    let (codes, rows) = (&scratch.codes[..], &scratch.rows[..]);
    let units = w.units();
    let lda = units * UNIT;
    let kernel = kernel_for(kind);
    let groups = m.div_ceil(MR);
    let panels = n.div_ceil(NR);
    let threads = rayon::current_num_threads();
    // Tiles: a few row groups × a few panels; enough of them to balance the threads.
    let tile_groups = if groups >= 8 * threads { 4 } else { 1 };
    let row_tiles = groups.div_ceil(tile_groups);
    let want = 8 * threads;
    let tile_panels = if row_tiles >= want {
        panels.min(8)
    } else {
        (panels * row_tiles).div_ceil(want).clamp(1, 8).min(panels)
    };
    let col_tiles = panels.div_ceil(tile_panels);
    let data = w.data.as_slice();
    let cptr = CPtr(c.as_mut_ptr());
    let finish = finisher(avx512);
    let tile = |t: usize| {
        let (rt, ct) = (t / col_tiles, t % col_tiles);
        let (g0, g1) = (rt * tile_groups, ((rt + 1) * tile_groups).min(groups));
        let (p0, p1) = (ct * tile_panels, ((ct + 1) * tile_panels).min(panels));
        let tile_cols = p0 * NR..(p1 * NR).min(n);
        let mut sums = [0i32; MR * NR];
        // Row groups outside, panels inside: the tile's panels (at most 8 × k × 32 bytes)
        // stay in L2 across its row groups, and each row's activation runs once over all the
        // tile's columns.
        for g in g0..g1 {
            let r0 = g * MR;
            let nrows = MR.min(m - r0);
            for p in p0..p1 {
                let cols = p * NR..((p + 1) * NR).min(n);
                let panel = &data[p * units * NR * UNIT..(p + 1) * units * NR * UNIT];
                // SAFETY: `panel` holds `units` units; rows `r0..r0 + nrows` of `codes` are
                // `lda = units · UNIT` bytes each (quantise_rows sized it to `m · lda`).
                unsafe {
                    kernel(
                        units,
                        codes.as_ptr().add(r0 * lda),
                        lda,
                        nrows,
                        panel.as_ptr(),
                        &mut sums,
                    );
                }
                for (i, q) in rows[r0..r0 + nrows].iter().enumerate() {
                    // SAFETY: row `r0 + i < m`, columns `cols` (inside `n`) of C: this tile's
                    // own elements (tiles own distinct row groups × panels), inside `c` by the
                    // assertion above; no other reference to them is alive.
                    let out = unsafe { cptr.segment((r0 + i) * n, cols.clone()) };
                    let bias = match epilogue {
                        Epilogue::None => None,
                        Epilogue::Bias(b) | Epilogue::BiasAct(b, _) => Some(&b[cols.clone()]),
                    };
                    finish(Finish {
                        sums: &sums[i * NR..i * NR + cols.len()],
                        row: *q,
                        scales: &w.scales[cols.clone()],
                        col_sums: &w.sums[cols.clone()],
                        bias,
                        out,
                        accumulate,
                    });
                }
            }
            if let Epilogue::BiasAct(_, act) = epilogue {
                for r in r0..r0 + nrows {
                    // SAFETY: as above, for the tile's columns of row `r`.
                    ops::activate(unsafe { cptr.segment(r * n, tile_cols.clone()) }, act);
                }
            }
        }
    };
    let tiles = row_tiles * col_tiles;
    if tiles > 1 && threads > 1 && m * n * k >= 1 << 18 {
        (0..tiles).into_par_iter().for_each(tile);
    } else {
        (0..tiles).for_each(tile);
    }
}

/// One row segment of the i32 sums and what turns it into f32.
struct Finish<'a> {
    sums: &'a [i32],
    row: RowQuant,
    scales: &'a [f32],
    col_sums: &'a [i32],
    bias: Option<&'a [f32]>,
    out: &'a mut [f32],
    accumulate: bool,
}

/// `out (+)= sa·sw·(sum − za·Σqw) + bias`, written for the compiler to vectorise.
#[inline(always)]
fn finish_generic(f: Finish<'_>) {
    let (sa, za) = (f.row.scale, f.row.zero);
    let n = f.out.len();
    let (sums, scales, col_sums) = (&f.sums[..n], &f.scales[..n], &f.col_sums[..n]);
    let zeros = [0f32; NR];
    let bias = f.bias.unwrap_or(&zeros[..n.min(NR)]);
    let bias = &bias[..n];
    for j in 0..n {
        let v = (sums[j] - za * col_sums[j]) as f32 * (sa * scales[j]) + bias[j];
        f.out[j] = if f.accumulate { f.out[j] + v } else { v };
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
fn finish_avx512(f: Finish<'_>) {
    finish_generic(f)
}

fn finish_portable(f: Finish<'_>) {
    finish_generic(f)
}

/// The epilogue compiled for zmm registers where the CPU has AVX-512.
fn finisher(avx512: bool) -> fn(Finish<'_>) {
    #[cfg(target_arch = "x86_64")]
    if avx512 {
        // SAFETY: the caller checked that the CPU has AVX-512F/BW/DQ/VL.
        return |f| unsafe { finish_avx512(f) };
    }
    let _ = avx512;
    finish_portable
}

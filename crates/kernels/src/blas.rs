//! OpenBLAS's `cblas_sgemm` (feature `blas`, links the system `libopenblas`; Debian:
//! `apt-get install libopenblas-dev`), for measuring the hand-written kernels against a tuned
//! BLAS with its own run-time CPU dispatch (`benches/blas.rs`, docs/PERFORMANCE.md). The
//! engine itself does not call it: on the shapes that matter the packed kernels with their
//! fused epilogues measured faster (see the bench).

use std::os::raw::c_int;

// CBLAS enumerations (cblas.h).
const ROW_MAJOR: c_int = 101;
const NO_TRANS: c_int = 111;
const TRANS: c_int = 112;

#[link(name = "openblas")]
extern "C" {
    fn cblas_sgemm(
        order: c_int,
        trans_a: c_int,
        trans_b: c_int,
        m: c_int,
        n: c_int,
        k: c_int,
        alpha: f32,
        a: *const f32,
        lda: c_int,
        b: *const f32,
        ldb: c_int,
        beta: f32,
        c: *mut f32,
        ldc: c_int,
    );
    fn openblas_set_num_threads(n: c_int);
    fn openblas_get_corename() -> *const std::os::raw::c_char;
}

/// `C[m, n] = A[m, k] · Wᵀ` (`W` `[n, k]` row-major: PyTorch's linear weights), all
/// row-major with the given row strides, on OpenBLAS's own threads.
///
/// # Panics
/// If a slice is too short for its shape and stride, or a size exceeds `i32`.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_bt(
    a: &[f32],
    m: usize,
    k: usize,
    lda: usize,
    w: &[f32],
    n: usize,
    c: &mut [f32],
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(lda >= k && a.len() >= (m - 1) * lda + k, "A too short");
    assert!(w.len() >= n * k, "W too short");
    assert!(ldc >= n && c.len() >= (m - 1) * ldc + n, "C too short");
    let i = |v: usize| c_int::try_from(v).expect("size fits in i32");
    let trans_b = if k == 0 { NO_TRANS } else { TRANS };
    // SAFETY: the extents were checked above against the shapes and strides passed.
    unsafe {
        cblas_sgemm(
            ROW_MAJOR,
            NO_TRANS,
            trans_b,
            i(m),
            i(n),
            i(k),
            1.0,
            a.as_ptr(),
            i(lda.max(1)),
            w.as_ptr(),
            i(if k == 0 { n.max(1) } else { k }),
            0.0,
            c.as_mut_ptr(),
            i(ldc),
        )
    }
}

/// Sets OpenBLAS's thread count.
pub fn set_threads(n: usize) {
    // SAFETY: a plain setter of the library's global state.
    unsafe { openblas_set_num_threads(c_int::try_from(n).unwrap_or(c_int::MAX)) }
}

/// The kernel family OpenBLAS picked for this CPU (e.g. `SkylakeX`, `Haswell`; set
/// `OPENBLAS_CORETYPE=Haswell` to cap it to AVX2).
pub fn core_name() -> String {
    // SAFETY: OpenBLAS returns a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(openblas_get_corename()) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sgemm_bt_multiplies() {
        // [2, 3] · [[1, 0, 1], [0, 2, 0]]ᵀ
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let w = [1.0, 0.0, 1.0, 0.0, 2.0, 0.0];
        let mut c = [0.0; 4];
        super::sgemm_bt(&a, 2, 3, 3, &w, 2, &mut c, 2);
        assert_eq!(c, [4.0, 4.0, 10.0, 10.0]);
    }
}

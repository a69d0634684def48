//! Large arrays backed by transparent huge pages where the kernel offers them.
//!
//! The graph walk touches a few hundred scattered nodes per query in arrays of tens to hundreds
//! of megabytes: with 4 KiB pages nearly every touch is also a TLB miss and a page walk. Linux
//! backs anonymous memory with 2 MiB pages only where asked (`transparent_hugepage=madvise`, the
//! common default), so the snapshot's arrays are allocated untouched, advised, then filled.
//! Elsewhere (or if the advice is refused) they are ordinary vectors.

/// A vector of `len` copies of `fill`, advised to use huge pages before it is first written.
pub(crate) fn filled<T: Copy>(len: usize, fill: T) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(len);
    advise(v.as_mut_ptr().cast(), len * std::mem::size_of::<T>());
    v.resize(len, fill);
    v
}

#[cfg(target_os = "linux")]
fn advise(ptr: *mut u8, bytes: usize) {
    /// Below this the allocation is unlikely to contain an aligned 2 MiB extent.
    const MIN_BYTES: usize = 4 << 20;
    const PAGE: usize = 4096;
    const MADV_HUGEPAGE: i32 = 14;
    unsafe extern "C" {
        fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
    }
    if bytes < MIN_BYTES {
        return;
    }
    // madvise needs a page-aligned start: advise the whole pages inside the allocation.
    let start = (ptr as usize).next_multiple_of(PAGE);
    let end = (ptr as usize + bytes) / PAGE * PAGE;
    if end > start {
        // SAFETY: the range lies inside an allocation this process owns; MADV_HUGEPAGE only
        // changes how the kernel backs it, never its contents, and failure is harmless.
        unsafe {
            madvise(start as *mut std::ffi::c_void, end - start, MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_ptr: *mut u8, _bytes: usize) {}

#[cfg(test)]
mod tests {
    #[test]
    fn filled_vectors_hold_their_values() {
        for len in [0, 1, 1000, 3 << 20] {
            let v = super::filled(len, 7u32);
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 7));
        }
    }
}

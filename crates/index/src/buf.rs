//! A read-only array that is either on the heap or a slice of a memory-mapped file: the search
//! snapshot's links and codes are built on the heap and, after a load, read in place from the
//! saved links file (no allocation, zeroing or copy: those were most of an open's time).

use std::ops::Deref;
use std::sync::Arc;

use memmap2::Mmap;

/// Element types a mapped file may be viewed as (any bit pattern is valid, no padding).
pub(crate) trait Pod: Copy {}
impl Pod for u8 {}
impl Pod for u32 {}

#[derive(Debug)]
pub(crate) enum Buf<T: Pod> {
    Heap(Vec<T>),
    /// `len` elements from byte `offset` of `map` (in bounds and aligned: checked when made).
    Mapped {
        map: Arc<Mmap>,
        offset: usize,
        len: usize,
    },
}

impl<T: Pod> Default for Buf<T> {
    fn default() -> Self {
        Buf::Heap(Vec::new())
    }
}

impl<T: Pod> Buf<T> {
    /// `len` elements at byte `offset` of `map`, or `None` when out of bounds or misaligned.
    pub(crate) fn mapped(map: &Arc<Mmap>, offset: usize, len: usize) -> Option<Self> {
        let bytes = len.checked_mul(std::mem::size_of::<T>())?;
        let end = offset.checked_add(bytes)?;
        let aligned = (map.as_ptr() as usize + offset).is_multiple_of(std::mem::align_of::<T>());
        (end <= map.len() && aligned).then(|| Buf::Mapped {
            map: Arc::clone(map),
            offset,
            len,
        })
    }

    /// Heap bytes held (a mapped buffer holds none).
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Buf::Heap(v) => v.capacity() * std::mem::size_of::<T>(),
            Buf::Mapped { .. } => 0,
        }
    }

    /// The heap vector, when on the heap (tests cut a snapshot's links in place).
    #[cfg(test)]
    pub(crate) fn heap_mut(&mut self) -> Option<&mut Vec<T>> {
        match self {
            Buf::Heap(v) => Some(v),
            Buf::Mapped { .. } => None,
        }
    }
}

impl<T: Pod> Deref for Buf<T> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        match self {
            Buf::Heap(v) => v,
            Buf::Mapped { map, offset, len } => {
                // SAFETY: bounds and alignment were checked in `mapped`; `T: Pod` accepts any
                // bit pattern; the map lives as long as `self` (see `crate::vectors` for why a
                // saved file is not written while mapped).
                unsafe { std::slice::from_raw_parts(map.as_ptr().add(*offset).cast::<T>(), *len) }
            }
        }
    }
}

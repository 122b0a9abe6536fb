//! Page-aligned buffers without `unsafe`.

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// The page size these buffers align to.
pub const PAGE_SIZE: usize = 4096;

#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C, align(4096))]
struct Page([u8; PAGE_SIZE]);

/// A zeroed, page-aligned buffer of a whole number of pages. /dev/fuse and io_uring get the
/// best out of aligned buffers (and O_DIRECT callers need them).
pub struct PageBuf {
    pages: Box<[Page]>,
}

impl PageBuf {
    /// A buffer of at least `len` bytes, rounded up to whole pages (at least one).
    pub fn new(len: usize) -> PageBuf {
        let n = len.div_ceil(PAGE_SIZE).max(1);
        let pages = <[Page]>::new_box_zeroed_with_elems(n).expect("page buffer allocation");
        PageBuf { pages }
    }

    /// Its size in bytes.
    pub fn capacity(&self) -> usize {
        self.pages.len() * PAGE_SIZE
    }
}

impl core::ops::Deref for PageBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.pages.as_bytes()
    }
}

impl core::ops::DerefMut for PageBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.pages.as_mut_bytes()
    }
}

impl core::fmt::Debug for PageBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PageBuf({} bytes)", self.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_rounded() {
        let b = PageBuf::new(5000);
        assert_eq!(b.capacity(), 8192);
        assert_eq!(b.as_ptr() as usize % PAGE_SIZE, 0);
        assert!(b.iter().all(|&x| x == 0));
        assert_eq!(PageBuf::new(0).capacity(), PAGE_SIZE);
    }
}

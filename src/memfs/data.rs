//! File contents: sparse, in 4 KiB pages, so holes cost nothing and SEEK_DATA / SEEK_HOLE
//! and hole punching work at page granularity, as on tmpfs.

use std::collections::BTreeMap;

/// Page size of file data.
pub const PAGE: u64 = 4096;

/// The bytes of a regular file. Pages not in the map read as zeros.
#[derive(Default, Debug)]
pub struct Data {
    pages: BTreeMap<u64, Box<[u8; PAGE as usize]>>,
    /// Logical size in bytes.
    pub size: u64,
}

impl Data {
    /// Pages allocated (for space accounting).
    pub fn pages(&self) -> u64 {
        self.pages.len() as u64
    }

    /// How many new pages writing `len` bytes at `offset` would allocate.
    pub fn new_pages_for(&self, offset: u64, len: u64) -> u64 {
        if len == 0 {
            return 0;
        }
        let (first, last) = (offset / PAGE, (offset + len - 1) / PAGE);
        (last - first + 1) - self.pages.range(first..=last).count() as u64
    }

    /// Copy up to `out.len()` bytes from `offset` into `out`; returns how many (short at EOF).
    pub fn read(&self, offset: u64, out: &mut [u8]) -> usize {
        if offset >= self.size {
            return 0;
        }
        let n = (out.len() as u64).min(self.size - offset) as usize;
        let out = &mut out[..n];
        out.fill(0);
        let (first, last) = (offset / PAGE, (offset + n as u64 - 1) / PAGE);
        for (&idx, page) in self.pages.range(first..=last) {
            let page_start = idx * PAGE;
            let from = offset.max(page_start);
            let to = (offset + n as u64).min(page_start + PAGE);
            out[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&page[(from - page_start) as usize..(to - page_start) as usize]);
        }
        n
    }

    /// Write `data` at `offset`, growing the file if it ends past EOF.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let mut at = 0usize;
        while at < data.len() {
            let pos = offset + at as u64;
            let (idx, within) = (pos / PAGE, (pos % PAGE) as usize);
            let n = (PAGE as usize - within).min(data.len() - at);
            let page = self.pages.entry(idx).or_insert_with(|| Box::new([0; PAGE as usize]));
            page[within..within + n].copy_from_slice(&data[at..at + n]);
            at += n;
        }
        self.size = self.size.max(offset + data.len() as u64);
    }

    /// Set the size: unless it grows, every page past it goes (also pages preallocated
    /// beyond the old EOF) and the tail of the last one is zeroed.
    pub fn truncate(&mut self, size: u64) {
        if size <= self.size {
            drop(self.pages.split_off(&size.div_ceil(PAGE)));
            if let Some(p) = self.pages.get_mut(&(size / PAGE)) {
                p[(size % PAGE) as usize..].fill(0);
            }
        }
        self.size = size;
    }

    /// Make `[offset, offset+len)` read as zeros, freeing whole pages.
    pub fn zero_range(&mut self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let end = offset.saturating_add(len);
        let (first, last) = (offset / PAGE, (end - 1) / PAGE);
        let idxs: Vec<u64> = self.pages.range(first..=last).map(|(&i, _)| i).collect();
        for idx in idxs {
            let (ps, pe) = (idx * PAGE, idx * PAGE + PAGE);
            if offset <= ps && end >= pe {
                self.pages.remove(&idx);
            } else if let Some(p) = self.pages.get_mut(&idx) {
                let from = (offset.max(ps) - ps) as usize;
                let to = (end.min(pe) - ps) as usize;
                p[from..to].fill(0);
            }
        }
    }

    /// Allocate pages for `[offset, offset+len)` (fallocate without PUNCH/ZERO flags).
    pub fn allocate(&mut self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        for idx in offset / PAGE..=(offset + len - 1) / PAGE {
            self.pages.entry(idx).or_insert_with(|| Box::new([0; PAGE as usize]));
        }
    }

    /// SEEK_DATA: the first offset at or after `offset` inside an allocated page; None: ENXIO.
    pub fn seek_data(&self, offset: u64) -> Option<u64> {
        if offset >= self.size {
            return None;
        }
        let (&idx, _) = self.pages.range(offset / PAGE..).next()?;
        let at = (idx * PAGE).max(offset);
        (at < self.size).then_some(at)
    }

    /// SEEK_HOLE: the first offset at or after `offset` not inside an allocated page (EOF
    /// counts as a hole); None: ENXIO.
    pub fn seek_hole(&self, offset: u64) -> Option<u64> {
        if offset >= self.size {
            return None;
        }
        let mut idx = offset / PAGE;
        while self.pages.contains_key(&idx) {
            idx += 1;
        }
        Some((idx * PAGE).max(offset).min(self.size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_write_read_truncate_seek() {
        let mut d = Data::default();
        d.write(5 << 32, b"far");
        assert_eq!(d.size, (5 << 32) + 3);
        assert_eq!(d.pages(), 1);
        let mut buf = [1u8; 8];
        assert_eq!(d.read(0, &mut buf), 8);
        assert_eq!(buf, [0; 8], "holes read as zeros");
        assert_eq!(d.read((5 << 32) + 1, &mut buf), 2);
        assert_eq!(&buf[..2], b"ar");
        assert_eq!(d.seek_data(0), Some((5 << 32) / PAGE * PAGE));
        assert_eq!(d.seek_hole(0), Some(0));
        assert_eq!(d.seek_hole(5 << 32), Some(d.size), "EOF is a hole");
        d.write(10, &[9; 5000]);
        d.truncate(12);
        assert_eq!(d.pages(), 1, "pages past the new size are gone");
        let mut b = [0u8; 4];
        assert_eq!(d.read(10, &mut b), 2);
        d.truncate(100);
        assert_eq!(d.read(10, &mut b), 4);
        assert_eq!(b, [9, 9, 0, 0], "growing again reads zeros, not old data");
    }

    #[test]
    fn punch_and_allocate() {
        let mut d = Data::default();
        d.write(0, &[1; 3 * PAGE as usize]);
        d.zero_range(100, 2 * PAGE);
        assert_eq!(d.pages(), 2, "the whole middle page is freed");
        let mut b = [7u8; 1];
        d.read(99, &mut b);
        assert_eq!(b, [1]);
        d.read(100, &mut b);
        assert_eq!(b, [0]);
        assert_eq!(d.seek_hole(0), Some(PAGE));
        assert_eq!(d.seek_data(PAGE), Some(2 * PAGE));
        d.allocate(PAGE, 1);
        assert_eq!(d.pages(), 3);
        assert_eq!(d.new_pages_for(0, 10 * PAGE), 7);
        // Pages preallocated past EOF (fallocate KEEP_SIZE) go with a truncate that does not
        // grow the file.
        let mut e = Data::default();
        e.allocate(0, 4 * PAGE);
        assert_eq!((e.size, e.pages()), (0, 4));
        e.truncate(0);
        assert_eq!(e.pages(), 0);
    }
}

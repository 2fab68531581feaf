//! Memory is flat in file size: a 200,000-row file generated on the fly goes through
//! the reader while a counting allocator records the peak of live heap bytes.
mod common;

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use madoguchi_linkage::*;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: AllocLayout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: AllocLayout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn memory_is_not_proportional_to_the_file() {
    let layout = Layout::jumin();
    let conv = ConversionTable::empty();
    let rows = 200_000;
    let mut source = common::Generated::new(rows);
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let mut reader = LayoutReader::new(&layout, &conv, &mut source).unwrap();
    let mut valid = 0u64;
    while let Some(o) = reader.next_row().unwrap() {
        match o {
            RowOutcome::Valid { .. } => valid += 1,
            RowOutcome::Invalid { errors, .. } => panic!("{errors:?}"),
        }
    }
    drop(reader);
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let file_bytes = source.bytes;
    assert_eq!(valid, rows);
    assert!(file_bytes > 40_000_000, "file is {file_bytes} bytes");
    // Fixed buffers (64 KiB raw, 64 KiB decoded, 192 KiB trial decode, csv's 8 KiB)
    // plus one record: well under 1 MiB, against a file of tens of megabytes.
    eprintln!("file {file_bytes} bytes, peak heap {peak} bytes");
    assert!(peak < 1024 * 1024, "peak heap {peak} bytes");
}

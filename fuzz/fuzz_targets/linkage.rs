//! Arbitrary bytes as a core-system file under the 住民記録 layout: the reader must never
//! panic or loop; a file it accepts yields rows until it ends or fails.
#![no_main]

use libfuzzer_sys::fuzz_target;
use madoguchi_linkage::{ConversionTable, Layout, LayoutReader};

fuzz_target!(|data: &[u8]| {
    let layout = Layout::jumin();
    let table = ConversionTable::from_pairs([("\u{E000}", "髙")]).expect("a valid table");
    let Ok(mut reader) = LayoutReader::new(&layout, &table, data) else {
        return;
    };
    // Each row consumes input: no more rows than bytes (plus the end).
    for _ in 0..=data.len() {
        match reader.next_row() {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return,
        }
    }
    panic!("more rows than bytes");
});

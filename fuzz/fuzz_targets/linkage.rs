//! Arbitrary bytes as a core-system file under the 住民記録 layout: the reader must never
//! panic or loop; a file it accepts yields rows until it ends or fails. A second reader
//! in check-only mode (`check_next_row`, no values built) must agree row by row.
#![no_main]

use libfuzzer_sys::fuzz_target;
use madoguchi_linkage::{ConversionTable, Layout, LayoutReader, RowCheck, RowOutcome};

fuzz_target!(|data: &[u8]| {
    let layout = Layout::jumin();
    let table = ConversionTable::from_pairs([("\u{E000}", "髙")]).expect("a valid table");
    let Ok(mut reader) = LayoutReader::new(&layout, &table, data) else {
        return;
    };
    let mut check = LayoutReader::new(&layout, &table, data).expect("the same input opened");
    // Each row consumes input: no more rows than bytes (plus the end).
    for _ in 0..=data.len() {
        match (reader.next_row(), check.check_next_row()) {
            (
                Ok(Some(RowOutcome::Valid { row_no, .. })),
                Ok(Some(RowCheck::Valid { row_no: n })),
            ) => {
                assert_eq!(row_no, n);
            }
            (
                Ok(Some(RowOutcome::Invalid { row_no, errors })),
                Ok(Some(RowCheck::Invalid {
                    row_no: n,
                    errors: e,
                })),
            ) => assert_eq!((row_no, errors), (n, e)),
            (Ok(None), Ok(None)) => return,
            (Err(a), Err(b)) => {
                assert_eq!(a.code(), b.code());
                return;
            }
            (a, b) => panic!("next_row and check_next_row disagree: {a:?} / {b:?}"),
        }
        assert_eq!(reader.position(), check.position());
    }
    panic!("more rows than bytes");
});

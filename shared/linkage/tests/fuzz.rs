//! Arbitrary bytes never panic the reader, whatever the layout settings.
mod common;

use madoguchi_linkage::*;
use proptest::prelude::*;

fn drain(layout: &Layout, conv: &ConversionTable, bytes: &[u8]) {
    if let Ok(mut r) = LayoutReader::new(layout, conv, bytes) {
        // Each call consumes input, so this ends; the bound is a safety net.
        for _ in 0..100_000 {
            match r.next_row() {
                Ok(Some(RowOutcome::Invalid { errors, .. })) => assert!(!errors.is_empty()),
                Ok(Some(RowOutcome::Valid { .. })) => {}
                Ok(None) | Err(_) => break,
            }
        }
        let _ = r.position();
        let _ = serde_json::to_string(r.summary()).unwrap();
    }
}

fn layouts() -> Vec<Layout> {
    let base = Layout::jumin();
    let mut out = Vec::new();
    for enc in [EncodingSpec::Auto, EncodingSpec::Utf8, EncodingSpec::Cp932] {
        for header in [true, false] {
            let mut l = base.clone();
            l.encoding = enc;
            l.header = header;
            out.push(l);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let conv = ConversionTable::from_json(r#"{"\uE000": "髙"}"#).unwrap();
        for l in layouts() {
            drain(&l, &conv, &bytes);
        }
    }

    /// Valid header, then arbitrary text rows (commas, quotes, newlines, 外字, dates).
    #[test]
    fn arbitrary_rows_never_panic(rows in proptest::collection::vec(
        "[0-9A-Za-z,\"\r\n 　ア-ン山田R.\\-年月日\u{E000}\u{E001}\u{FFFD}]{0,200}", 0..8)) {
        let conv = ConversionTable::from_json(r#"{"\uE000": "髙"}"#).unwrap();
        let text = format!("{}\r\n{}", common::jumin_header(), rows.join("\r\n"));
        for l in layouts() {
            drain(&l, &conv, text.as_bytes());
            drain(&l, &conv, &common::cp932(&text.replace('\u{FFFD}', "?")));
        }
    }
}

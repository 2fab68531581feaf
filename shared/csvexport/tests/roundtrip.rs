//! Whatever a citizen typed comes back out of the file, or is reported.

use madoguchi_csvexport::{
    CsvEncoding, CsvWriter, FORMULA_GUARD, FORMULA_TRIGGERS, GETA, Substitution, cp932_equivalent,
};
use proptest::prelude::*;

/// Text mixing what forms receive: ASCII with CSV specials, kana, kanji (incl. IBM
/// extensions), NEC symbols, mapping-difference characters, and characters CP932 lacks.
fn cell() -> impl Strategy<Value = String> {
    let interesting = prop_oneof![
        prop::char::range(' ', '~'),
        Just(','),
        Just('"'),
        Just('\r'),
        Just('\n'),
        Just('\t'),
        Just('='),
        Just('-'),
        prop::char::range('ぁ', 'ゖ'),
        prop::char::range('ァ', 'ヶ'),
        prop::char::range('\u{FF61}', '\u{FF9F}'),
        prop::char::range('一', '龥'),
        prop::sample::select(vec![
            '①', '㈱', 'Ⅰ', 'ⅰ', '髙', '﨑', '塚', '〓', '\u{301C}', '\u{2016}', '\u{2212}',
            '\u{A2}', '\u{A3}', '\u{A5}', '\u{A6}', '\u{AC}', '\u{2014}', '\u{203E}', '\u{80}',
            '\u{FF5E}',
        ]),
        prop::sample::select(vec![
            '𠮷', '𩸽', '🙂', '한', '\u{3099}', '\u{E000}', '\u{E63E}', '\u{2013}', '\u{B7}', 'é',
        ]),
        any::<char>(),
    ];
    prop::collection::vec(interesting, 0..24).prop_map(|cs| cs.into_iter().collect())
}

fn guarded(s: &str) -> String {
    if s.starts_with(FORMULA_TRIGGERS) {
        format!("{FORMULA_GUARD}{s}")
    } else {
        s.to_owned()
    }
}

/// An oracle independent of the writer's own check: encoding_rs writes `c` and reads the
/// same character back.
fn encodes_and_reads_back(c: char) -> bool {
    let s = c.to_string();
    let (bytes, _, had_errors) = encoding_rs::SHIFT_JIS.encode(&s);
    !had_errors && encoding_rs::SHIFT_JIS.decode(&bytes).0 == s
}

fn read_back(text: &str) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn utf8_round_trips(rows in prop::collection::vec(prop::collection::vec(cell(), 3), 0..6)) {
        let header = ["a", "b", "c"];
        let mut w = CsvWriter::new(Vec::new(), CsvEncoding::Utf8Bom, &header).unwrap();
        for row in &rows {
            prop_assert!(w.write_row(row).unwrap().is_empty());
        }
        prop_assert_eq!(w.rows(), rows.len() as u64);
        let out = w.finish().unwrap();
        prop_assert!(out.starts_with(b"\xEF\xBB\xBF"));
        let back = read_back(std::str::from_utf8(&out[3..]).unwrap());
        prop_assert_eq!(back.len(), rows.len() + 1);
        for (written, read) in rows.iter().zip(&back[1..]) {
            let expected: Vec<String> = written.iter().map(|s| guarded(s)).collect();
            prop_assert_eq!(&expected, read);
        }
    }

    #[test]
    fn cp932_round_trips_or_reports(rows in prop::collection::vec(prop::collection::vec(cell(), 3), 0..6)) {
        let header = ["a", "b", "c"];
        let mut w = CsvWriter::new(Vec::new(), CsvEncoding::Cp932, &header).unwrap();
        let mut reported = Vec::new();
        for row in &rows {
            reported.extend(w.write_row(row).unwrap());
        }
        let out = w.finish().unwrap();
        let (text, _, had_errors) = encoding_rs::SHIFT_JIS.decode(&out);
        prop_assert!(!had_errors);
        let back = read_back(&text);
        prop_assert_eq!(back.len(), rows.len() + 1);

        // Expected: each character reads back as itself, as its same-glyph CP932 code point,
        // or as 〓 with a report naming it.
        let mut expected_reports = Vec::new();
        for (i, (written, read)) in rows.iter().zip(&back[1..]).enumerate() {
            for (col, (cell, read_cell)) in written.iter().zip(read).enumerate() {
                let mut expected = String::new();
                for c in guarded(cell).chars() {
                    if let Some(eq) = cp932_equivalent(c) {
                        expected.push(eq);
                    } else if c == '\u{2212}' {
                        expected.push('\u{FF0D}');
                    } else if encodes_and_reads_back(c) {
                        expected.push(c);
                    } else {
                        expected.push(GETA);
                        expected_reports.push(Substitution {
                            row: i as u64 + 1,
                            column: header[col].to_owned(),
                            original: c,
                            written: GETA.to_string(),
                        });
                    }
                }
                prop_assert_eq!(&expected, read_cell);
            }
        }
        prop_assert_eq!(expected_reports, reported);
    }
}

//! Byte-exact expectations for what Excel on Windows opens: BOM, CRLF, RFC 4180 quoting,
//! CP932 bytes, the formula guard and the substitution reports.

use madoguchi_csvexport::{
    CP932_EQUIVALENTS, CsvEncoding, CsvWriter, GETA, Substitution, cp932_can_encode,
};

fn write(encoding: CsvEncoding, header: &[&str], rows: &[&[&str]]) -> (Vec<u8>, Vec<Substitution>) {
    let mut w = CsvWriter::new(Vec::new(), encoding, header).unwrap();
    let mut subs = w.header_substitutions().to_vec();
    for row in rows {
        subs.extend(w.write_row(row).unwrap());
    }
    let bytes_written = w.bytes_written();
    let out = w.finish().unwrap();
    assert_eq!(bytes_written, out.len() as u64);
    (out, subs)
}

#[test]
fn utf8_starts_with_bom_and_ends_lines_with_crlf() {
    let (out, subs) = write(
        CsvEncoding::Utf8Bom,
        &["受付番号", "氏名"],
        &[&["A-1", "山田 太郎"]],
    );
    let mut expected = vec![0xEF, 0xBB, 0xBF];
    expected.extend_from_slice("受付番号,氏名\r\nA-1,山田 太郎\r\n".as_bytes());
    assert_eq!(out, expected);
    assert!(subs.is_empty());
}

#[test]
fn header_only_file_is_bom_and_header() {
    let (out, _) = write(CsvEncoding::Utf8Bom, &["a", "b"], &[]);
    assert_eq!(out, b"\xEF\xBB\xBFa,b\r\n");
}

#[test]
fn quotes_only_when_needed_rfc4180() {
    let (out, _) = write(
        CsvEncoding::Utf8Bom,
        &["a", "b", "c", "d", "e"],
        &[&[
            "plain",
            "with,comma",
            "say \"hi\"",
            "two\r\nlines",
            "lf\nonly",
        ]],
    );
    assert_eq!(
        out,
        b"\xEF\xBB\xBFa,b,c,d,e\r\nplain,\"with,comma\",\"say \"\"hi\"\"\",\"two\r\nlines\",\"lf\nonly\"\r\n"
    );
}

#[test]
fn empty_cells_stay_empty_and_a_lone_empty_cell_is_quoted() {
    let (out, _) = write(CsvEncoding::Utf8Bom, &["a", "b"], &[&["", ""]]);
    assert_eq!(out, b"\xEF\xBB\xBFa,b\r\n,\r\n");
    // A record of one empty field would otherwise be an empty line, which readers skip.
    let (out, _) = write(CsvEncoding::Utf8Bom, &["a"], &[&[""]]);
    assert_eq!(out, b"\xEF\xBB\xBFa\r\n\"\"\r\n");
}

#[test]
fn formula_triggers_get_an_apostrophe() {
    let (out, subs) = write(
        CsvEncoding::Utf8Bom,
        &["v"],
        &[
            &["=1+2"],
            &["+81 90 0000 0000"],
            &["-5"],
            &["@SUM(A1)"],
            &["\tx"],
            &["\rx"],
            &["=HYPERLINK(\"http://x\",\"y\")"],
            &["a=b"],
            &["'already"],
            &["＝全角"],
        ],
    );
    let text = String::from_utf8(out[3..].to_vec()).unwrap();
    assert_eq!(
        text,
        "v\r\n'=1+2\r\n'+81 90 0000 0000\r\n'-5\r\n'@SUM(A1)\r\n'\tx\r\n\"'\rx\"\r\n\
         \"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\r\na=b\r\n'already\r\n＝全角\r\n"
    );
    // The guard is a documented rule, not a loss: it is not reported.
    assert!(subs.is_empty());
}

#[test]
fn header_cells_are_guarded_too() {
    let (out, _) = write(CsvEncoding::Utf8Bom, &["=cmd", "ok"], &[]);
    assert_eq!(out, b"\xEF\xBB\xBF'=cmd,ok\r\n");
}

#[test]
fn utf8_writes_everything_as_is() {
    let s = "𠮷野家 🙂 𩸽 한국 か\u{3099} 〜 \u{E000}";
    let (out, subs) = write(CsvEncoding::Utf8Bom, &["x"], &[&[s]]);
    assert_eq!(&out[3..], format!("x\r\n{s}\r\n").as_bytes());
    assert!(subs.is_empty());
}

#[test]
fn cp932_has_no_bom_and_known_bytes() {
    let (out, subs) = write(CsvEncoding::Cp932, &["手続"], &[&["申請"]]);
    // 手 = 8E E8, 続 = 91 B1; 申 = 90 5C (trail byte 0x5C, the "dame-moji" case), 請 = 90 BF.
    assert_eq!(
        out,
        [
            0x8E, 0xE8, 0x91, 0xB1, 0x0D, 0x0A, 0x90, 0x5C, 0x90, 0xBF, 0x0D, 0x0A
        ]
    );
    assert!(subs.is_empty());
}

#[test]
fn cp932_trail_byte_0x5c_does_not_confuse_quoting() {
    // 表 = 95 5C and ソ = 83 5C end in the backslash byte; a byte-level CSV writer in
    // another encoding could mangle them, ours quotes in Unicode before encoding.
    let (out, _) = write(CsvEncoding::Cp932, &["x"], &[&["表,ソ\""]]);
    assert_eq!(
        out,
        [
            b'x', 0x0D, 0x0A, b'"', 0x95, 0x5C, b',', 0x83, 0x5C, b'"', b'"', b'"', 0x0D, 0x0A
        ]
    );
}

#[test]
fn cp932_holds_nec_and_ibm_extensions() {
    // The claim that encoding_rs's Shift_JIS encoder has the CP932 repertoire:
    // NEC special characters (row 13) and IBM extended kanji (FA–FC).
    for (s, bytes) in [
        ("①", [0x87, 0x40]),
        ("㈱", [0x87, 0x8A]),
        ("Ⅰ", [0x87, 0x54]),
        ("ⅰ", [0xFA, 0x40]),
        ("髙", [0xFB, 0xFC]),
        ("﨑", [0xFA, 0xB1]),
        ("〓", [0x81, 0xAC]),
    ] {
        let (out, subs) = write(CsvEncoding::Cp932, &["x"], &[&[s]]);
        assert_eq!(&out[3..5], &bytes, "{s}");
        assert!(subs.is_empty(), "{s}");
    }
}

#[test]
fn cp932_equivalents_are_needed_and_exact() {
    // Keep only mappings encoding_rs does not do itself, and map only to characters that
    // CP932 holds and that read back unchanged.
    for (from, to) in CP932_EQUIVALENTS {
        let (_, _, from_err) = encoding_rs::SHIFT_JIS.encode(&from.to_string());
        let lossy_single_byte = from == '\u{A5}' || from == '\u{203E}';
        assert!(
            from_err || lossy_single_byte,
            "U+{:04X} needs no mapping",
            from as u32
        );
        let to_text = to.to_string();
        let (bytes, _, to_err) = encoding_rs::SHIFT_JIS.encode(&to_text);
        assert!(!to_err, "U+{:04X}", to as u32);
        let (back, _, _) = encoding_rs::SHIFT_JIS.decode(&bytes);
        assert_eq!(back.chars().collect::<Vec<_>>(), vec![to]);
    }
    // encoding_rs folds the minus sign itself.
    let (bytes, _, err) = encoding_rs::SHIFT_JIS.encode("\u{2212}");
    assert!(!err);
    assert_eq!(&bytes[..], [0x81, 0x7C]);
}

#[test]
fn cp932_maps_equivalents_silently() {
    let (out, subs) = write(
        CsvEncoding::Cp932,
        &["x"],
        &[
            &[
                "1\u{301C}2 \u{2016} \u{2014} \u{A2}\u{A3}\u{AC}\u{A6} \u{A5}100 \u{203E} 3\u{2212}1",
            ],
        ],
    );
    let (text, _, _) = encoding_rs::SHIFT_JIS.decode(&out);
    assert_eq!(text, "x\r\n1～2 ∥ ― ￠￡￢￤ ￥100 ￣ 3－1\r\n");
    assert!(subs.is_empty());
}

#[test]
fn cp932_equivalent_bytes_match_docs_export_md() {
    for (typed, bytes) in [
        ('\u{301C}', [0x81, 0x60]),
        ('\u{2016}', [0x81, 0x61]),
        ('\u{2014}', [0x81, 0x5C]),
        ('\u{A2}', [0x81, 0x91]),
        ('\u{A3}', [0x81, 0x92]),
        ('\u{AC}', [0x81, 0xCA]),
        ('\u{A6}', [0xFA, 0x55]),
        ('\u{A5}', [0x81, 0x8F]),
        ('\u{203E}', [0x81, 0x50]),
        ('\u{2212}', [0x81, 0x7C]),
    ] {
        let (out, subs) = write(CsvEncoding::Cp932, &["x"], &[&[&format!("a{typed}")]]);
        assert_eq!(
            &out[3..],
            [b'a', bytes[0], bytes[1], 0x0D, 0x0A],
            "U+{:04X}",
            typed as u32
        );
        assert!(subs.is_empty());
    }
}

#[test]
fn cp932_substitutes_and_reports_what_it_cannot_hold() {
    let mut w = CsvWriter::new(
        Vec::new(),
        CsvEncoding::Cp932,
        &["受付番号", "氏名", "備考"],
    )
    .unwrap();
    assert!(w.write_row(&["1", "山田", "なし"]).unwrap().is_empty());
    let subs = w
        .write_row(&["2", "𠮷田 𩸽", "🙂 한 か\u{3099} \u{E000}"])
        .unwrap();
    let out = w.finish().unwrap();
    let (text, _, had_errors) = encoding_rs::SHIFT_JIS.decode(&out);
    assert!(!had_errors);
    assert_eq!(
        text,
        "受付番号,氏名,備考\r\n1,山田,なし\r\n2,〓田 〓,〓 〓 か〓 〓\r\n"
    );
    let sub = |column: &str, original: char| Substitution {
        row: 2,
        column: column.to_owned(),
        original,
        written: "〓".to_owned(),
    };
    assert_eq!(
        subs,
        vec![
            sub("氏名", '\u{20BB7}'),
            sub("氏名", '\u{29E3D}'),
            sub("備考", '🙂'),
            sub("備考", '한'),
            sub("備考", '\u{3099}'),
            sub("備考", '\u{E000}'),
        ]
    );
}

#[test]
fn cp932_header_substitutions_are_row_zero() {
    let w = CsvWriter::new(Vec::new(), CsvEncoding::Cp932, &["𠮷"]).unwrap();
    assert_eq!(
        w.header_substitutions(),
        [Substitution {
            row: 0,
            column: "𠮷".into(),
            original: '𠮷',
            written: "〓".into()
        }]
    );
}

#[test]
fn geta_is_in_cp932() {
    assert!(cp932_can_encode(GETA));
}

#[test]
fn ragged_rows_are_refused_and_nothing_is_written() {
    let mut w = CsvWriter::new(Vec::new(), CsvEncoding::Utf8Bom, &["a", "b"]).unwrap();
    let before = w.bytes_written();
    let err = w.write_row(&["only one"]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(w.bytes_written(), before);
    assert_eq!(w.rows(), 0);
    w.write_row(&["1", "2"]).unwrap();
    assert_eq!(w.finish().unwrap(), b"\xEF\xBB\xBFa,b\r\n1,2\r\n");
}

#[test]
fn each_row_reaches_the_inner_writer_before_the_next_is_written() {
    // Streaming: after write_row returns, the whole row is in the inner writer.
    struct Counting(Vec<usize>);
    impl std::io::Write for Counting {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.push(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut w = CsvWriter::new(Counting(Vec::new()), CsvEncoding::Cp932, &["a"]).unwrap();
    let long = "あ".repeat(20_000); // bigger than the csv crate's internal buffer
    w.write_row(&[&long]).unwrap();
    assert_eq!(w.bytes_written(), 3 + 40_002);
    let out = w.finish().unwrap();
    assert_eq!(out.0, vec![3, 40_002]);
}

#[test]
fn a_hundred_thousand_rows_stream_into_a_sink() {
    let mut w = CsvWriter::new(
        std::io::sink(),
        CsvEncoding::Cp932,
        &["番号", "手続", "状況"],
    )
    .unwrap();
    let header_bytes = w.bytes_written();
    assert_eq!(header_bytes, 16); // 4 + 1 + 4 + 1 + 4 + 2
    for i in 0..100_000u64 {
        // "000000,転入届,受付\r\n": 6 + 1 + 6 + 1 + 4 + 2 bytes in CP932.
        let subs = w
            .write_row(&[format!("{i:06}"), "転入届".into(), "受付".into()])
            .unwrap();
        assert!(subs.is_empty());
    }
    assert_eq!(w.rows(), 100_000);
    assert_eq!(w.bytes_written(), header_bytes + 100_000 * 20);
    w.finish().unwrap();
}

#[test]
fn encoding_serde_names() {
    assert_eq!(
        serde_json::to_string(&[CsvEncoding::Utf8Bom, CsvEncoding::Cp932]).unwrap(),
        r#"["utf8_bom","cp932"]"#
    );
    let parsed: CsvEncoding = serde_json::from_str(r#""cp932""#).unwrap();
    assert_eq!(parsed, CsvEncoding::Cp932);
}

mod common;

use common::{bad_my_number, cp932, fields, jumin_header, line};
use jiff::civil::date;
use madoguchi_linkage::*;

fn conversion() -> ConversionTable {
    // A vendor's private-use 髙 (はしご高) mapped to the standard character.
    ConversionTable::from_json(r#"{"\uE000": "髙"}"#).unwrap()
}

/// Column labels of the jumin layout, by name.
fn label(name: &str) -> String {
    Layout::jumin()
        .columns
        .iter()
        .find(|c| c.name == name)
        .unwrap()
        .label
        .clone()
}

fn idx(name: &str) -> usize {
    Layout::jumin()
        .columns
        .iter()
        .position(|c| c.name == name)
        .unwrap()
}

/// A row's fields and `None` (valid) or the expected `(column, code)`s.
type Case = (Vec<String>, Option<Vec<(&'static str, &'static str)>>);

/// The mixed rows.
fn mixed_rows() -> Vec<Case> {
    let mut rows = Vec::new();
    // 1: valid, 方書 with a comma and a newline inside quotes.
    let mut f = fields(1);
    f[idx("address_extra")] = "ハイツ霞が関,101\n号室".to_owned();
    rows.push((f, None));
    // 2: bad 個人番号 check digit.
    let mut f = fields(2);
    f[idx("my_number")] = bad_my_number(2);
    rows.push((f, Some(vec![("my_number", "my_number.check_digit")])));
    // 3: impossible date.
    let mut f = fields(3);
    f[idx("birth_date")] = "R7.02.30".to_owned();
    rows.push((f, Some(vec![("birth_date", "date.invalid")])));
    // 4: code not in its table.
    let mut f = fields(4);
    f[idx("sex")] = "3".to_owned();
    rows.push((f, Some(vec![("sex", "code.unknown")])));
    // 5: missing required field.
    let mut f = fields(5);
    f[idx("name")] = String::new();
    rows.push((f, Some(vec![("name", "required")])));
    // 6: unmapped 外字.
    let mut f = fields(6);
    f[idx("name")] = "\u{E001}田　花子".to_owned();
    rows.push((f, Some(vec![("name", "gaiji.unmapped")])));
    // 7: mapped 外字, converted.
    let mut f = fields(7);
    f[idx("name")] = "\u{E000}橋　一郎".to_owned();
    rows.push((f, None));
    // 8: foreign resident, 西暦 birth date: valid.
    rows.push((fields(19), None));
    // 9: foreign resident with a 和暦 birth date, and without ローマ字氏名: two errors.
    let mut f = fields(39);
    f[idx("birth_date")] = "H2.05.06".to_owned();
    f[idx("romaji_name")] = String::new();
    rows.push((
        f,
        Some(vec![
            ("birth_date", "date.format"),
            ("romaji_name", "required"),
        ]),
    ));
    // 10: wrong field count.
    let mut f = fields(10);
    f.pop();
    rows.push((f, Some(vec![("", "row.field_count")])));
    rows
}

fn file_text(rows: &[Case], newline: &str) -> String {
    let mut s = format!("{}\r\n", jumin_header());
    for (f, _) in rows {
        s.push_str(&line(f));
    }
    s.replace("\r\n", newline)
}

fn check_mixed(bytes: Vec<u8>, want_encoding: DetectedEncoding) {
    let layout = Layout::jumin();
    let conv = conversion();
    let rows = mixed_rows();
    let mut reader = LayoutReader::new(&layout, &conv, bytes.as_slice()).unwrap();
    assert_eq!(reader.encoding(), want_encoding);
    let mut all_errors = Vec::new();
    for (n, (_, want)) in rows.iter().enumerate() {
        let outcome = reader.next_row().unwrap().expect("row");
        match (outcome, want) {
            (RowOutcome::Valid { row_no, record }, None) => {
                assert_eq!(row_no, n as u64 + 1);
                if row_no == 1 {
                    assert_eq!(
                        record.get("address_extra").unwrap().as_str(),
                        Some("ハイツ霞が関,101\n号室")
                    );
                    assert_eq!(
                        record.get("birth_date").unwrap().as_date(),
                        Some(date(1941, 2, 2))
                    );
                    assert_eq!(record.get("postal_code").unwrap().as_str(), Some("1008901"));
                    assert!(matches!(record.get("my_number"), Some(Value::MyNumber(_))));
                }
                if row_no == 7 {
                    assert_eq!(record.get("name").unwrap().as_str(), Some("髙橋　一郎"));
                }
                if row_no == 8 {
                    assert_eq!(
                        record.get("birth_date").unwrap().as_date(),
                        Some(date(1959, 8, 20))
                    );
                    assert_eq!(
                        record.get("nationality").unwrap().as_str(),
                        Some("ベトナム")
                    );
                }
            }
            (RowOutcome::Invalid { row_no, errors }, Some(want)) => {
                assert_eq!(row_no, n as u64 + 1);
                let got: Vec<(String, String)> = errors
                    .iter()
                    .map(|e| (e.column.clone(), e.code.clone()))
                    .collect();
                let want: Vec<(String, String)> = want
                    .iter()
                    .map(|(c, code)| {
                        let l = if c.is_empty() {
                            String::new()
                        } else {
                            label(c)
                        };
                        (l, (*code).to_owned())
                    })
                    .collect();
                assert_eq!(got, want, "row {row_no}");
                for e in &errors {
                    assert_eq!(e.row, row_no);
                    assert!(!e.message.is_empty());
                }
                all_errors.extend(errors);
            }
            (other, want) => panic!("row {}: got {other:?}, want {want:?}", n + 1),
        }
    }
    assert!(reader.next_row().unwrap().is_none());
    let s = reader.summary();
    assert_eq!((s.rows_read, s.valid, s.rejected, s.errors), (10, 3, 7, 8));
    assert_eq!(s.errors_by_code.get("required"), Some(&2));
    // No message may carry the bad 個人番号.
    let bad = bad_my_number(2);
    assert!(all_errors.iter().all(|e| !e.message.contains(&bad)));
}

#[test]
fn mixed_utf8_bom_crlf() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(file_text(&mixed_rows(), "\r\n").as_bytes());
    check_mixed(bytes, DetectedEncoding::Utf8Bom);
}

#[test]
fn mixed_utf8_no_bom_lf() {
    let bytes = file_text(&mixed_rows(), "\n").into_bytes();
    check_mixed(bytes, DetectedEncoding::Utf8);
}

#[test]
fn mixed_cp932_crlf_and_lf() {
    check_mixed(
        cp932(&file_text(&mixed_rows(), "\r\n")),
        DetectedEncoding::Cp932,
    );
    check_mixed(
        cp932(&file_text(&mixed_rows(), "\n")),
        DetectedEncoding::Cp932,
    );
}

/// `check_next_row` validates exactly as `next_row` (rows, errors, report, summary,
/// positions), only without building values.
#[test]
fn check_only_pass_matches_next_row() {
    let layout = Layout::jumin();
    let conv = conversion();
    let mut utf8_bom = b"\xEF\xBB\xBF".to_vec();
    utf8_bom.extend_from_slice(file_text(&mixed_rows(), "\r\n").as_bytes());
    let files = [
        utf8_bom,
        file_text(&mixed_rows(), "\n").into_bytes(),
        cp932(&file_text(&mixed_rows(), "\r\n")),
    ];
    for bytes in files {
        let mut full = LayoutReader::new(&layout, &conv, bytes.as_slice()).unwrap();
        let mut check = LayoutReader::new(&layout, &conv, bytes.as_slice()).unwrap();
        let (mut report_full, mut report_check) = (Vec::new(), Vec::new());
        loop {
            let (a, b) = (full.next_row().unwrap(), check.check_next_row().unwrap());
            assert_eq!(full.position(), check.position());
            match (a, b) {
                (None, None) => break,
                (Some(RowOutcome::Valid { row_no, .. }), Some(RowCheck::Valid { row_no: n })) => {
                    assert_eq!(row_no, n)
                }
                (
                    Some(RowOutcome::Invalid { row_no, errors }),
                    Some(RowCheck::Invalid {
                        row_no: n,
                        errors: e,
                    }),
                ) => {
                    assert_eq!((row_no, &errors), (n, &e));
                    write_error_rows(&mut report_full, &errors).unwrap();
                    write_error_rows(&mut report_check, &e).unwrap();
                }
                (a, b) => panic!("{a:?} / {b:?}"),
            }
        }
        assert_eq!(report_full, report_check);
        assert!(!report_check.is_empty());
        assert_eq!(full.into_summary(), check.into_summary());
    }
}

#[test]
fn declared_cp932_reads_cp932_and_refuses_utf8() {
    let mut layout = Layout::jumin();
    layout.encoding = EncodingSpec::Cp932;
    let conv = conversion();
    let bytes = cp932(&file_text(&mixed_rows(), "\r\n"));
    let mut r = LayoutReader::new(&layout, &conv, bytes.as_slice()).unwrap();
    assert!(r.next_row().unwrap().is_some());
    // UTF-8 Japanese is not valid CP932 (or decodes to a header that does not match).
    let utf8 = file_text(&mixed_rows(), "\r\n").into_bytes();
    assert!(LayoutReader::new(&layout, &conv, utf8.as_slice()).is_err());
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(&utf8);
    let e = LayoutReader::new(&layout, &conv, bom.as_slice())
        .err()
        .unwrap();
    assert_eq!(e.code(), "file.encoding");
}

#[test]
fn declared_utf8_refuses_cp932() {
    let mut layout = Layout::jumin();
    layout.encoding = EncodingSpec::Utf8;
    let conv = conversion();
    let bytes = cp932(&file_text(&mixed_rows(), "\r\n"));
    let e = LayoutReader::new(&layout, &conv, bytes.as_slice())
        .err()
        .unwrap();
    assert!(matches!(e, FileError::Encoding { .. }), "{e:?}");
}

#[test]
fn wrong_header_rejects_the_whole_file() {
    let layout = Layout::jumin();
    let conv = conversion();
    let body: String = (0..3).map(|i| line(&fields(i))).collect();
    let header = jumin_header();
    let cases = [
        // missing column
        (
            header.replacen("方書,", "", 1),
            vec!["方書".to_owned()],
            0,
            false,
        ),
        // extra column
        (format!("{header},備考"), vec![], 1, false),
        // renamed column
        (
            header.replacen("宛名番号", "宛名No", 1),
            vec!["宛名番号".to_owned()],
            1,
            false,
        ),
        // swapped columns
        (
            header.replacen("氏名,氏名フリガナ", "氏名フリガナ,氏名", 1),
            vec![],
            0,
            true,
        ),
    ];
    for (h, want_missing, want_unexpected, want_order) in cases {
        let text = format!("{h}\r\n{body}");
        match LayoutReader::new(&layout, &conv, text.as_bytes()) {
            Err(FileError::Header {
                missing,
                unexpected,
                order_differs,
            }) => {
                assert_eq!(missing, want_missing);
                assert_eq!(unexpected, want_unexpected);
                assert_eq!(order_differs, want_order);
            }
            other => panic!("{h}: {:?}", other.err()),
        }
    }
    // A file without its header (data in the first line): rejected, and the message
    // carries no data.
    let e = LayoutReader::new(&layout, &conv, body.as_bytes())
        .err()
        .unwrap();
    assert_eq!(e.code(), "file.header");
    assert!(!e.message().contains("霞が関"));
    // Empty file.
    let e = LayoutReader::new(&layout, &conv, &b""[..]).err().unwrap();
    assert_eq!(e.code(), "file.empty");
    // The report line and the summary of a rejected file.
    let row = e.to_row_error();
    assert_eq!((row.row, row.code.as_str()), (0, "file.empty"));
    let s = Summary::rejected_file(&layout, &e);
    assert_eq!(s.rows_read, 0);
    assert_eq!(s.file_error.unwrap().code, "file.empty");
}

#[test]
fn headerless_layout_checks_the_field_count() {
    let mut layout = Layout::jumin();
    layout.header = false;
    let conv = conversion();
    let body: String = (0..3).map(|i| line(&fields(i))).collect();
    let mut r = LayoutReader::new(&layout, &conv, body.as_bytes()).unwrap();
    let mut n = 0;
    while let Some(o) = r.next_row().unwrap() {
        assert!(matches!(o, RowOutcome::Valid { .. }), "{o:?}");
        n += 1;
    }
    assert_eq!(n, 3);
    let e = LayoutReader::new(&layout, &conv, &b"a,b,c\r\n"[..])
        .err()
        .unwrap();
    assert!(matches!(
        e,
        FileError::FieldCount {
            expected: 24,
            found: 3
        }
    ));
    assert!(
        LayoutReader::new(&layout, &conv, &b""[..])
            .unwrap()
            .next_row()
            .unwrap()
            .is_none()
    );
}

#[test]
fn malformed_bytes_mid_file_are_a_file_error() {
    let layout = Layout::jumin();
    let conv = conversion();
    let mut text = format!("{}\r\n", jumin_header()).into_bytes();
    // Enough valid rows to pass the first 64 KiB chunk, then a broken byte.
    let mut rows = 0;
    while text.len() < 100_000 {
        text.extend_from_slice(line(&fields(rows)).as_bytes());
        rows += 1;
    }
    text.extend_from_slice(b"\xFF\xFE broken\r\n");
    let mut r = LayoutReader::new(&layout, &conv, text.as_slice()).unwrap();
    let mut got = 0;
    let err = loop {
        match r.next_row() {
            Ok(Some(_)) => got += 1,
            Ok(None) => panic!("no error"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.code(), "file.encoding");
    assert!(got <= rows);
    assert!(r.next_row().unwrap().is_none());
    assert_eq!(
        r.summary().file_error.as_ref().unwrap().code,
        "file.encoding"
    );
}

#[test]
fn unterminated_quote_is_bounded() {
    let layout = Layout::jumin();
    let conv = ConversionTable::empty();
    let mut text = format!("{}\r\n", jumin_header()).into_bytes();
    text.extend_from_slice(b"\"");
    text.extend(std::iter::repeat_n(b'a', 3 * 1024 * 1024));
    let mut r = LayoutReader::new(&layout, &conv, text.as_slice()).unwrap();
    let e = r.next_row().err().unwrap();
    assert_eq!(e.code(), "file.record_too_long");
}

#[test]
fn resume_from_a_checkpoint() {
    let layout = Layout::jumin();
    let conv = ConversionTable::empty();
    let text: String =
        format!("{}\r\n", jumin_header()) + &(0..50).map(|i| line(&fields(i))).collect::<String>();
    let mut r = LayoutReader::new(&layout, &conv, text.as_bytes()).unwrap();
    let mut first = Vec::new();
    for _ in 0..20 {
        first.push(r.next_row().unwrap().unwrap());
    }
    let checkpoint = r.position();
    assert_eq!(checkpoint.row, 20);
    let rest_direct: Vec<_> = std::iter::from_fn(|| r.next_row().unwrap()).collect();

    let mut again = LayoutReader::new(&layout, &conv, text.as_bytes()).unwrap();
    assert_eq!(again.skip_rows(checkpoint.row).unwrap(), 20);
    assert_eq!(again.position(), checkpoint);
    let rest_resumed: Vec<_> = std::iter::from_fn(|| again.next_row().unwrap()).collect();
    assert_eq!(rest_direct, rest_resumed);
    assert_eq!(rest_resumed.len(), 30);
    assert!(matches!(
        rest_resumed[0],
        RowOutcome::Valid { row_no: 21, .. }
    ));
}

#[test]
fn errors_report_and_summary_format() {
    let errors = vec![
        RowError {
            row: 3,
            column: "生年月日".into(),
            code: "date.invalid".into(),
            message: "生年月日：存在しない日付です。".into(),
        },
        RowError {
            row: 0,
            column: String::new(),
            code: "file.header".into(),
            message: "見出し行が一致しません。列,順序".into(),
        },
    ];
    let mut out = errors_csv_header().as_bytes().to_vec();
    write_error_rows(&mut out, &errors).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "\u{FEFF}row,column,code,message\r\n3,生年月日,date.invalid,生年月日：存在しない日付です。\r\n0,,file.header,\"見出し行が一致しません。列,順序\"\r\n"
    );

    let layout = Layout::jumin();
    let conv = ConversionTable::empty();
    let text = format!("{}\r\n{}", jumin_header(), line(&fields(1)));
    let mut r = LayoutReader::new(&layout, &conv, text.as_bytes()).unwrap();
    while r.next_row().unwrap().is_some() {}
    let json = serde_json::to_value(r.into_summary()).unwrap();
    assert_eq!(json["layout_id"], "jumin");
    assert_eq!(json["kind"], "full");
    assert_eq!(json["encoding"], "utf8");
    assert_eq!(json["rows_read"], 1);
    assert_eq!(json["valid"], 1);
    assert_eq!(json["rejected"], 0);
}

#[test]
fn shipped_layout_and_conversion_table_checks() {
    let layout = Layout::jumin();
    assert_eq!(layout.columns.len(), 24);
    // Every code table is still marked as to be confirmed with the vendor.
    assert!(layout.code_tables.values().all(|t| !t.confirmed));
    // Round-trips through JSON.
    let json = serde_json::to_string(&layout).unwrap();
    assert_eq!(Layout::from_json(&json).unwrap(), layout);
    assert!(ConversionTable::from_json(r#"{"ab": "c"}"#).is_err());
    assert!(ConversionTable::from_json(r#"{"\uE000": "\uE001"}"#).is_err());
    let mut broken = layout.clone();
    broken.columns[7].code_table = Some("nope".into());
    assert!(broken.check().is_err());
}

#[test]
fn my_number_is_masked_in_debug() {
    let layout = Layout::jumin();
    let conv = ConversionTable::empty();
    let text = format!("{}\r\n{}", jumin_header(), line(&fields(1)));
    let mut r = LayoutReader::new(&layout, &conv, text.as_bytes()).unwrap();
    let Some(RowOutcome::Valid { record, .. }) = r.next_row().unwrap() else {
        panic!()
    };
    let n = common::my_number(1);
    assert!(!format!("{record:?}").contains(&n));
    assert_eq!(
        serde_json::to_value(&record).unwrap()["my_number"],
        n.as_str()
    );
}

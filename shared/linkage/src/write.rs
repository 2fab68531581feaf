//! Writing files for core systems (後方連携): rows of text in a layout's column order,
//! encoded as the layout says (UTF-8 without BOM, or CP932), CRLF or LF, quoted per
//! RFC 4180. Every row is checked by reading it back through [`LayoutReader`] with the same
//! layout, so a file we write is a file our own reader — and so the layout — accepts.

use std::io::Cursor;

use jiff::civil::Date;
use madoguchi_domain::wareki::{Era, Wareki};
use serde::{Deserialize, Serialize};

use crate::layout::{ColumnType, ConversionTable, DateFormat, EncodingSpec, Layout, LayoutError};
use crate::reader::{LayoutReader, RowOutcome};
use crate::report::RowError;

/// Line ending of written files (core systems on Windows usually want CRLF).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineEnding {
    #[default]
    Crlf,
    Lf,
}

impl LineEnding {
    fn as_bytes(self) -> &'static [u8] {
        match self {
            LineEnding::Crlf => b"\r\n",
            LineEnding::Lf => b"\n",
        }
    }
}

/// Builds one file in memory, row by row. Outbound files hold the applications of one
/// run (hundreds, not millions), so a buffer is fine here; inbound files are streamed.
pub struct FileWriter<'a> {
    layout: &'a Layout,
    conversion: &'a ConversionTable,
    line_ending: LineEnding,
    header: Vec<u8>,
    out: Vec<u8>,
    rows: u64,
}

impl<'a> FileWriter<'a> {
    /// A writer for `layout`, whose encoding must be `utf8` or `cp932` (`auto` says how to
    /// read, not how to write). `conversion` replaces characters before encoding (e.g.
    /// `髙` → `高` for a CP932 system).
    pub fn new(
        layout: &'a Layout,
        conversion: &'a ConversionTable,
        line_ending: LineEnding,
    ) -> Result<Self, LayoutError> {
        layout.check()?;
        if layout.encoding == EncodingSpec::Auto {
            return Err(LayoutError::Column {
                column: String::new(),
                problem: "an outbound layout needs encoding utf8 or cp932, not auto",
            });
        }
        let mut w = FileWriter {
            layout,
            conversion,
            line_ending,
            header: Vec::new(),
            out: Vec::new(),
            rows: 0,
        };
        if layout.header {
            let names: Vec<String> = layout
                .columns
                .iter()
                .map(|c| c.header_name().to_owned())
                .collect();
            // Headers are the layout's own text: a header that does not encode is a layout
            // error, reported as such.
            let line = w.encode_line(&names).map_err(|_| LayoutError::Column {
                column: String::new(),
                problem: "a header does not encode in the layout's encoding",
            })?;
            w.header = line;
        }
        w.out.extend_from_slice(&w.header);
        Ok(w)
    }

    /// Encodes `values` (one per column, in layout order) and checks the row against the
    /// layout without adding it. The errors name the row as 1.
    pub fn check(&self, values: &[String]) -> Result<Vec<u8>, Vec<RowError>> {
        if values.len() != self.layout.columns.len() {
            return Err(vec![RowError {
                row: 1,
                column: String::new(),
                code: "row.field_count".into(),
                message: format!(
                    "項目数が違います（{}項目のところ{}項目）。",
                    self.layout.columns.len(),
                    values.len()
                ),
            }]);
        }
        let line = self.encode_line(values)?;
        // Read it back: the same checks an inbound file gets (types, lengths, codes, check
        // digits), from the same code.
        let mut probe = self.header.clone();
        probe.extend_from_slice(&line);
        let mut reader = LayoutReader::new(self.layout, self.conversion, Cursor::new(probe))
            .map_err(|e| vec![e.to_row_error()])?;
        match reader.next_row() {
            Ok(Some(RowOutcome::Valid { .. })) => {}
            Ok(Some(RowOutcome::Invalid { errors, .. })) => return Err(errors),
            Ok(None) => {
                return Err(vec![RowError {
                    row: 1,
                    column: String::new(),
                    code: "row.empty".into(),
                    message: "行が空です。".into(),
                }]);
            }
            Err(e) => return Err(vec![e.to_row_error()]),
        }
        // A value with a line break is one record but must stay one row.
        match reader.next_row() {
            Ok(None) => Ok(line),
            _ => Err(vec![RowError {
                row: 1,
                column: String::new(),
                code: "row.split".into(),
                message: "1件の申請が複数の行になりました。".into(),
            }]),
        }
    }

    /// Checks and appends one row.
    pub fn push(&mut self, values: &[String]) -> Result<(), Vec<RowError>> {
        let line = self.check(values)?;
        self.out.extend_from_slice(&line);
        self.rows += 1;
        Ok(())
    }

    /// Data rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The file's bytes.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }

    fn encode_line(&self, values: &[String]) -> Result<Vec<u8>, Vec<RowError>> {
        let mut text = String::new();
        let mut errors = Vec::new();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            let converted = self.convert(v);
            let column = self
                .layout
                .columns
                .get(i)
                .map(|c| c.label.clone())
                .unwrap_or_default();
            if self.layout.encoding == EncodingSpec::Cp932
                && let Some(c) = converted.chars().find(|&c| !encodes_in_cp932(c))
            {
                errors.push(RowError {
                    row: 1,
                    column,
                    code: "gaiji.unmapped".into(),
                    message: format!(
                        "Shift_JIS (CP932) で表せない文字 (U+{:04X}) があります。文字変換表に登録してください。",
                        c as u32
                    ),
                });
                continue;
            }
            quote_into(&mut text, &converted);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut bytes = match self.layout.encoding {
            EncodingSpec::Cp932 => encoding_rs::SHIFT_JIS.encode(&text).0.into_owned(),
            _ => text.into_bytes(),
        };
        bytes.extend_from_slice(self.line_ending.as_bytes());
        Ok(bytes)
    }

    fn convert(&self, value: &str) -> String {
        if self.conversion.is_empty() {
            return value.to_owned();
        }
        let mut out = String::with_capacity(value.len());
        for c in value.chars() {
            match self.conversion.get(c) {
                Some(r) => out.push_str(r),
                None => out.push(c),
            }
        }
        out
    }
}

fn encodes_in_cp932(c: char) -> bool {
    if c.is_ascii() {
        return true;
    }
    let mut buf = [0u8; 4];
    let (_, _, unmappable) = encoding_rs::SHIFT_JIS.encode(c.encode_utf8(&mut buf));
    !unmappable
}

fn quote_into(out: &mut String, value: &str) {
    if value.contains([',', '"', '\r', '\n']) {
        out.push('"');
        for c in value.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// Writes a date the way a column of this format is read back: `wareki` → `R7.04.01`,
/// `wareki_code` → `5070401`, `seireki` and `any` → `20250401`. A date before 明治6年
/// cannot be written in 和暦 and gives `None`.
pub fn format_date(date: Date, format: DateFormat) -> Option<String> {
    match format {
        DateFormat::Wareki => {
            let w = Wareki::from_date(date).ok()?;
            Some(format!(
                "{}{}.{:02}.{:02}",
                w.era().letter(),
                w.year(),
                w.month(),
                w.day()
            ))
        }
        DateFormat::WarekiCode => {
            let w = Wareki::from_date(date).ok()?;
            // G = 1 明治 … 5 令和: the era's place in `Era::ALL`.
            let code = Era::ALL.iter().position(|e| *e == w.era())? + 1;
            Some(format!(
                "{}{:02}{:02}{:02}",
                code,
                w.year(),
                w.month(),
                w.day()
            ))
        }
        DateFormat::Seireki | DateFormat::Any => Some(format!(
            "{:04}{:02}{:02}",
            date.year(),
            date.month(),
            date.day()
        )),
    }
}

/// Whether a column wants its date in a given format (for callers turning ISO dates into
/// the column's form).
pub fn column_date_format(layout: &Layout, column: usize) -> Option<DateFormat> {
    let c = layout.columns.get(column)?;
    (c.ty == ColumnType::Date)
        .then_some(c.date_format)
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(encoding: &str) -> Layout {
        Layout::from_json(&format!(
            r#"{{"id":"t","label":"t","encoding":"{encoding}","header":true,"kind":"full",
            "columns":[
              {{"name":"no","label":"受付番号","type":"digits","required":true}},
              {{"name":"name","label":"氏名","type":"text","required":true,"max_length":10}},
              {{"name":"kana","label":"フリガナ","type":"kana"}},
              {{"name":"born","label":"生年月日","type":"date","date_format":"wareki"}},
              {{"name":"note","label":"備考","type":"text"}}
            ]}}"#
        ))
        .unwrap()
    }

    fn row(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn rows_round_trip_through_the_reader() {
        for enc in ["utf8", "cp932"] {
            let l = layout(enc);
            let t = ConversionTable::empty();
            let mut w = FileWriter::new(&l, &t, LineEnding::Crlf).unwrap();
            w.push(&row(&[
                "1",
                "山田 太郎",
                "ヤマダ タロウ",
                "R7.04.01",
                "a,\"b\"\nc",
            ]))
            .unwrap();
            w.push(&row(&["2", "鈴木", "", "", ""])).unwrap();
            assert_eq!(w.rows(), 2);
            let bytes = w.finish();
            assert!(bytes.ends_with(b"\r\n"));
            let mut r = LayoutReader::new(&l, &t, Cursor::new(bytes)).unwrap();
            let Some(RowOutcome::Valid { record, .. }) = r.next_row().unwrap() else {
                panic!("first row invalid ({enc})");
            };
            assert_eq!(
                record.get("note").and_then(|v| v.as_str()),
                Some("a,\"b\"\nc")
            );
            assert_eq!(
                record.get("name").and_then(|v| v.as_str()),
                Some("山田 太郎")
            );
            assert!(matches!(
                r.next_row().unwrap(),
                Some(RowOutcome::Valid { .. })
            ));
            assert!(r.next_row().unwrap().is_none());
        }
    }

    #[test]
    fn a_bad_row_is_refused_with_the_readers_errors() {
        let l = layout("utf8");
        let t = ConversionTable::empty();
        let mut w = FileWriter::new(&l, &t, LineEnding::Lf).unwrap();
        let errors = w
            .push(&row(&["x1", "", "やまだ", "R7.02.30", ""]))
            .unwrap_err();
        let codes: Vec<&str> = errors.iter().map(|e| e.code.as_str()).collect();
        assert!(codes.contains(&"required"), "{codes:?}");
        assert!(codes.len() >= 3, "{codes:?}");
        assert_eq!(w.rows(), 0);
        assert_eq!(
            w.finish(),
            "受付番号,氏名,フリガナ,生年月日,備考\n".as_bytes()
        );
    }

    #[test]
    fn characters_outside_cp932_need_the_conversion_table() {
        let l = layout("cp932");
        let empty = ConversionTable::empty();
        let w = FileWriter::new(&l, &empty, LineEnding::Crlf).unwrap();
        // 𠮷 (U+20BB7) has no Shift_JIS code.
        let errors = w.check(&row(&["1", "𠮷田", "", "", ""])).unwrap_err();
        assert_eq!(errors[0].code, "gaiji.unmapped");
        assert_eq!(errors[0].column, "氏名");
        let table = ConversionTable::from_pairs([("𠮷", "吉")]).unwrap();
        let w = FileWriter::new(&l, &table, LineEnding::Crlf).unwrap();
        let line = w.check(&row(&["1", "𠮷田", "", "", ""])).unwrap();
        let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(&line);
        assert!(!bad);
        assert_eq!(text, "1,吉田,,,\r\n");
    }

    #[test]
    fn dates_are_written_as_the_column_reads_them() {
        let d = jiff::civil::date(2025, 4, 1);
        assert_eq!(format_date(d, DateFormat::Wareki).unwrap(), "R7.04.01");
        assert_eq!(format_date(d, DateFormat::WarekiCode).unwrap(), "5070401");
        assert_eq!(format_date(d, DateFormat::Seireki).unwrap(), "20250401");
        assert_eq!(
            format_date(jiff::civil::date(1989, 1, 8), DateFormat::Wareki).unwrap(),
            "H1.01.08"
        );
        assert!(format_date(jiff::civil::date(1800, 1, 1), DateFormat::Wareki).is_none());
    }

    #[test]
    fn auto_is_not_an_output_encoding() {
        let l = layout("auto");
        assert!(FileWriter::new(&l, &ConversionTable::empty(), LineEnding::Crlf).is_err());
    }
}

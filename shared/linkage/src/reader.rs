//! The streaming layout reader: decode → CSV → convert → validate, one row at a time.

use std::borrow::Cow;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use encoding_rs::UTF_8;
use serde::{Deserialize, Serialize};

use crate::decode::{DecodeFailure, DecodingReader, DetectedEncoding};
use crate::layout::{ConversionTable, Layout, LayoutError};
use crate::report::{FileErrorSummary, RowError, Summary};
use crate::validate::{
    CompiledColumn, Discard, FieldError, Sink, compile, scan_record, validate_field,
};
use crate::value::{Record, Value};

/// Where the reader is: the last data row returned (1 = first data row after any
/// header) and the offset, in decoded UTF-8 bytes, where the next record starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub row: u64,
    pub byte: u64,
}

/// A file that cannot be processed at all: nothing from it may be applied.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the layout is not usable: {0}")]
    Layout(#[from] LayoutError),
    #[error("undecodable input near byte {byte_offset}")]
    Encoding { byte_offset: u64 },
    #[error("header does not match the layout")]
    Header {
        missing: Vec<String>,
        /// Number of header fields that are not layout columns. Their text is not kept:
        /// a file without a header would put personal data there.
        unexpected: usize,
        order_differs: bool,
    },
    #[error("the file is empty but the layout expects a header")]
    Empty,
    #[error("first record has {found} fields, the layout has {expected}")]
    FieldCount { expected: usize, found: usize },
    #[error("record after row {after_row} is longer than the limit")]
    RecordTooLong { after_row: u64 },
    #[error("read error: {0}")]
    Io(io::Error),
}

impl FileError {
    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            FileError::Layout(_) => "file.layout",
            FileError::Encoding { .. } => "file.encoding",
            FileError::Header { .. } => "file.header",
            FileError::Empty => "file.empty",
            FileError::FieldCount { .. } => "file.field_count",
            FileError::RecordTooLong { .. } => "file.record_too_long",
            FileError::Io(_) => "file.io",
        }
    }

    /// Japanese message for the report. Never contains file content except the
    /// header names (column names, not personal data).
    pub fn message(&self) -> String {
        match self {
            FileError::Layout(_) => "レイアウト定義に誤りがあります。".to_owned(),
            FileError::Encoding { byte_offset } => format!(
                "文字コードが宣言と異なるか、変換できない文字があります（{byte_offset}バイト付近）。ファイル全体を取り込みません。"
            ),
            FileError::Header {
                missing,
                unexpected,
                order_differs,
            } => {
                let mut m = String::from("見出し行がレイアウトと一致しません。");
                if !missing.is_empty() {
                    m.push_str(&format!("不足している列：{}。", missing.join("、")));
                }
                if *unexpected > 0 {
                    m.push_str(&format!("想定外の列が{unexpected}列あります。"));
                }
                if *order_differs {
                    m.push_str("列の順序が異なります。");
                }
                m.push_str("ファイル全体を取り込みません。");
                m
            }
            FileError::Empty => "ファイルが空です（見出し行がありません）。".to_owned(),
            FileError::FieldCount { expected, found } => format!(
                "1行目の項目数（{found}）がレイアウトの項目数（{expected}）と一致しません。ファイル全体を取り込みません。"
            ),
            FileError::RecordTooLong { after_row } => format!(
                "{after_row}行目の次のレコードが長すぎます（引用符の閉じ忘れの可能性があります）。"
            ),
            FileError::Io(_) => "ファイルを読み取れませんでした。".to_owned(),
        }
    }

    /// The error as one line of the errors report (`row` 0 = the whole file).
    pub fn to_row_error(&self) -> RowError {
        RowError {
            row: 0,
            column: String::new(),
            code: self.code().to_owned(),
            message: self.message(),
        }
    }

    pub fn summary(&self) -> FileErrorSummary {
        FileErrorSummary {
            code: self.code().to_owned(),
            message: self.message(),
        }
    }

    fn from_io(e: io::Error, after_row: u64) -> FileError {
        if let Some(f) = e.get_ref().and_then(|i| i.downcast_ref::<DecodeFailure>()) {
            return match f {
                DecodeFailure::Malformed { byte_offset } => FileError::Encoding {
                    byte_offset: *byte_offset,
                },
                DecodeFailure::RecordTooLong => FileError::RecordTooLong { after_row },
            };
        }
        FileError::Io(e)
    }

    fn from_csv(e: csv::Error, after_row: u64) -> FileError {
        match e.into_kind() {
            csv::ErrorKind::Io(io) => FileError::from_io(io, after_row),
            // The decoder only hands out valid UTF-8 and the reader is flexible, so
            // other kinds do not occur; map them conservatively.
            _ => FileError::Encoding { byte_offset: 0 },
        }
    }
}

/// The outcome of one data row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    Valid {
        row_no: u64,
        record: Record,
    },
    /// Rejected whole; `errors` is never empty.
    Invalid {
        row_no: u64,
        errors: Vec<RowError>,
    },
}

/// The outcome of one data row in a check-only pass ([`LayoutReader::check_next_row`]):
/// the same validation and errors as [`RowOutcome`], without building the values.
#[derive(Debug, Clone, PartialEq)]
pub enum RowCheck {
    Valid {
        row_no: u64,
    },
    /// Rejected whole; `errors` is never empty.
    Invalid {
        row_no: u64,
        errors: Vec<RowError>,
    },
}

/// Streams the rows of one file through a layout.
pub struct LayoutReader<'a, R: Read> {
    layout: &'a Layout,
    conversion: &'a ConversionTable,
    columns: Vec<CompiledColumn>,
    /// [`ConversionTable::lead_threshold`], computed once.
    lead_threshold: u8,
    names: Arc<[Box<str>]>,
    csv: csv::Reader<DecodingReader<R>>,
    record: csv::ByteRecord,
    /// A record read ahead by `new` (headerless files).
    pending: bool,
    record_start: Arc<AtomicU64>,
    row: u64,
    done: bool,
    encoding: DetectedEncoding,
    summary: Summary,
}

impl<'a, R: Read> LayoutReader<'a, R> {
    /// Opens a file: detects and checks the encoding on the first chunk and checks the
    /// header (or, without a header, the field count of the first record). Any error
    /// here rejects the file before a single row is returned.
    pub fn new(
        layout: &'a Layout,
        conversion: &'a ConversionTable,
        read: R,
    ) -> Result<Self, FileError> {
        layout.check()?;
        let columns = compile(layout);
        let record_start = Arc::new(AtomicU64::new(0));
        let (decoded, encoding) =
            DecodingReader::new(read, layout.encoding, Arc::clone(&record_start))
                .map_err(|e| FileError::from_io(e, 0))?;
        let csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(decoded);
        let names: Arc<[Box<str>]> = layout
            .columns
            .iter()
            .map(|c| c.name.clone().into_boxed_str())
            .collect();
        let mut reader = LayoutReader {
            layout,
            conversion,
            columns,
            lead_threshold: conversion.lead_threshold(),
            names,
            csv,
            record: csv::ByteRecord::new(),
            pending: false,
            record_start,
            row: 0,
            done: false,
            encoding,
            summary: Summary::new(layout, Some(encoding)),
        };
        let has_first = reader.read_record()?;
        if layout.header {
            if !has_first {
                return Err(FileError::Empty);
            }
            reader.check_header()?;
        } else if has_first {
            if reader.record.len() != layout.columns.len() {
                return Err(FileError::FieldCount {
                    expected: layout.columns.len(),
                    found: reader.record.len(),
                });
            }
            reader.pending = true;
        }
        Ok(reader)
    }

    fn read_record(&mut self) -> Result<bool, FileError> {
        let more = self
            .csv
            .read_byte_record(&mut self.record)
            .map_err(|e| FileError::from_csv(e, self.row))?;
        self.record_start
            .store(self.csv.position().byte(), Ordering::Relaxed);
        Ok(more)
    }

    fn check_header(&self) -> Result<(), FileError> {
        let found: Vec<&str> = self
            .record
            .iter()
            .map(|f| std::str::from_utf8(f).unwrap_or(""))
            .collect();
        let expected: Vec<&str> = self
            .layout
            .columns
            .iter()
            .map(|c| c.header_name())
            .collect();
        if found == expected {
            return Ok(());
        }
        let missing: Vec<String> = expected
            .iter()
            .filter(|e| !found.contains(e))
            .map(|s| (*s).to_owned())
            .collect();
        let unexpected = found.iter().filter(|f| !expected.contains(f)).count();
        let order_differs = missing.is_empty() && unexpected == 0;
        Err(FileError::Header {
            missing,
            unexpected,
            order_differs,
        })
    }

    /// The next data row, `Ok(None)` at the end. An `Err` is terminal: the file must
    /// be treated as rejected, and later calls return `Ok(None)`.
    pub fn next_row(&mut self) -> Result<Option<RowOutcome>, FileError> {
        if !self.advance()? {
            return Ok(None);
        }
        let outcome = self.validate_current();
        match &outcome {
            RowOutcome::Valid { .. } => self.summary.count(None),
            RowOutcome::Invalid { errors, .. } => self.summary.count(Some(errors)),
        }
        Ok(Some(outcome))
    }

    /// Like [`Self::next_row`] (same validation, errors, summary and position) but
    /// without building the values of valid rows: for a first pass that only checks a
    /// file (counts and the errors report) before it is applied in a second pass.
    pub fn check_next_row(&mut self) -> Result<Option<RowCheck>, FileError> {
        if !self.advance()? {
            return Ok(None);
        }
        let check = self.check_current();
        match &check {
            RowCheck::Valid { .. } => self.summary.count(None),
            RowCheck::Invalid { errors, .. } => self.summary.count(Some(errors)),
        }
        Ok(Some(check))
    }

    /// Moves to the next data record; `Ok(false)` at the end (and after an error).
    fn advance(&mut self) -> Result<bool, FileError> {
        if self.done {
            return Ok(false);
        }
        if self.pending {
            self.pending = false;
        } else {
            match self.read_record() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return Ok(false);
                }
                Err(e) => {
                    self.done = true;
                    self.summary.file_error = Some(e.summary());
                    return Err(e);
                }
            }
        }
        self.row += 1;
        Ok(true)
    }

    /// Skips `n` data rows without validating them (to resume after a checkpoint at
    /// [`Position::row`]); returns how many were skipped (fewer at the end of file).
    /// Skipped rows are not counted in the summary.
    pub fn skip_rows(&mut self, n: u64) -> Result<u64, FileError> {
        let mut skipped = 0;
        while skipped < n && !self.done {
            if self.pending {
                self.pending = false;
            } else if !self.read_record()? {
                self.done = true;
                break;
            }
            self.row += 1;
            skipped += 1;
        }
        Ok(skipped)
    }

    fn validate_current(&self) -> RowOutcome {
        let row_no = self.row;
        if let Some(e) = self.field_count_error() {
            return RowOutcome::Invalid {
                row_no,
                errors: vec![e],
            };
        }
        let mut values = Vec::with_capacity(self.layout.columns.len());
        let errors = self.check_fields(&mut values);
        if errors.is_empty() {
            RowOutcome::Valid {
                row_no,
                record: Record::new(Arc::clone(&self.names), values),
            }
        } else {
            RowOutcome::Invalid { row_no, errors }
        }
    }

    fn check_current(&self) -> RowCheck {
        let row_no = self.row;
        let errors = match self.field_count_error() {
            Some(e) => vec![e],
            None => self.check_fields(&mut Discard),
        };
        if errors.is_empty() {
            RowCheck::Valid { row_no }
        } else {
            RowCheck::Invalid { row_no, errors }
        }
    }

    fn field_count_error(&self) -> Option<RowError> {
        let expected = self.layout.columns.len();
        (self.record.len() != expected).then(|| RowError {
            row: self.row,
            column: String::new(),
            code: "row.field_count".to_owned(),
            message: format!(
                "項目数が{}です（レイアウトは{}項目）。",
                self.record.len(),
                expected
            ),
        })
    }

    /// Validates every field of the current record (which has the layout's field
    /// count), giving the values to `out`; returns the errors (empty: valid).
    fn check_fields<O: Sink>(&self, out: &mut O) -> Vec<RowError> {
        let row_no = self.row;
        let layout = self.layout;
        let record = &self.record;
        // The decoder only produces UTF-8 and CSV splits on (and unquotes) ASCII bytes,
        // so the record is valid UTF-8. When values are built, check that once for the
        // whole record (encoding_rs's validator, SIMD for longer input; same answer as
        // `str::from_utf8`) and slice the fields out of it; a check-only pass works on
        // bytes and converts a field only when a check needs its text.
        let whole = if O::KEEP {
            match UTF_8.decode_without_bom_handling_and_without_replacement(record.as_slice()) {
                Some(Cow::Borrowed(text)) => Some(text),
                _ => None,
            }
        } else {
            None
        };
        let present =
            |j: Option<usize>| j.is_some_and(|j| record.get(j).is_some_and(|f| !f.is_empty()));
        // One pass over the record decides whether any field can need the conversion
        // table or the check for control characters.
        let scan = scan_record(record.as_slice(), self.lead_threshold);
        let mut errors = Vec::new();
        let mut end = 0;
        for ((col, cc), raw) in layout.columns.iter().zip(&self.columns).zip(record) {
            let start = end;
            end += raw.len();
            let slow = || std::str::from_utf8(raw).unwrap_or("\u{FFFD}");
            // Building values needs every non-empty field as text: slice it now.
            let eager = whole.map(|text| text.get(start..end).unwrap_or_else(slow));
            let text = || -> &str { eager.unwrap_or_else(slow) };
            if let Err(FieldError { code, message }) = validate_field(
                col,
                cc,
                self.conversion,
                raw,
                text,
                present(cc.required_if),
                present(cc.date_if.map(|(j, _)| j)),
                scan,
                out,
            ) {
                out.push(Value::Null);
                errors.push(RowError {
                    row: row_no,
                    column: col.label.clone(),
                    code: code.to_owned(),
                    message,
                })
            }
        }
        errors
    }

    /// For checkpoints: the last row returned and where the next record starts.
    pub fn position(&self) -> Position {
        Position {
            row: self.row,
            byte: self.csv.position().byte(),
        }
    }

    pub fn encoding(&self) -> DetectedEncoding {
        self.encoding
    }

    /// Counts so far (rows returned by `next_row`).
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    pub fn into_summary(self) -> Summary {
        self.summary
    }
}

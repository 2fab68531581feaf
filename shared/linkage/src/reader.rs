//! The streaming layout reader: decode → CSV → convert → validate, one row at a time.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::decode::{DecodeFailure, DecodingReader, DetectedEncoding};
use crate::layout::{ConversionTable, Layout, LayoutError};
use crate::report::{FileErrorSummary, RowError, Summary};
use crate::validate::{CompiledColumn, FieldError, compile, validate_field};
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

/// Streams the rows of one file through a layout.
pub struct LayoutReader<'a, R: Read> {
    layout: &'a Layout,
    conversion: &'a ConversionTable,
    columns: Vec<CompiledColumn>,
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
        if self.done {
            return Ok(None);
        }
        if self.pending {
            self.pending = false;
        } else {
            match self.read_record() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return Ok(None);
                }
                Err(e) => {
                    self.done = true;
                    self.summary.file_error = Some(e.summary());
                    return Err(e);
                }
            }
        }
        self.row += 1;
        let outcome = self.validate_current();
        self.summary.count(&outcome);
        Ok(Some(outcome))
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
        let layout = self.layout;
        if self.record.len() != layout.columns.len() {
            return RowOutcome::Invalid {
                row_no,
                errors: vec![RowError {
                    row: row_no,
                    column: String::new(),
                    code: "row.field_count".to_owned(),
                    message: format!(
                        "項目数が{}です（レイアウトは{}項目）。",
                        self.record.len(),
                        layout.columns.len()
                    ),
                }],
            };
        }
        let field = |i: usize| -> &str {
            // The decoder only produces UTF-8 and CSV splits on ASCII bytes.
            std::str::from_utf8(self.record.get(i).unwrap_or_default()).unwrap_or("\u{FFFD}")
        };
        let mut values = Vec::with_capacity(layout.columns.len());
        let mut errors = Vec::new();
        for (i, (col, cc)) in layout.columns.iter().zip(&self.columns).enumerate() {
            let present = |j: Option<usize>| j.is_some_and(|j| !field(j).is_empty());
            match validate_field(
                col,
                cc,
                layout,
                self.conversion,
                field(i),
                present(cc.required_if),
                present(cc.date_if.map(|(j, _)| j)),
            ) {
                Ok(v) => values.push(v),
                Err(FieldError { code, message }) => {
                    values.push(Value::Null);
                    errors.push(RowError {
                        row: row_no,
                        column: col.label.clone(),
                        code: code.to_owned(),
                        message,
                    })
                }
            }
        }
        if errors.is_empty() {
            RowOutcome::Valid {
                row_no,
                record: Record::new(Arc::clone(&self.names), values),
            }
        } else {
            RowOutcome::Invalid { row_no, errors }
        }
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

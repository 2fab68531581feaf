//! Error report (`<file>.errors.csv`) and summary (`<file>.summary.json`).

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::decode::DetectedEncoding;
use crate::layout::{FileKind, Layout};

/// One error of one row (`row` 0: the whole file). `message` is Japanese and never
/// contains the field's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    pub row: u64,
    /// The column's Japanese label; empty for row- and file-level errors.
    pub column: String,
    pub code: String,
    pub message: String,
}

/// The first bytes of an errors report: UTF-8 BOM (Excel) and the header line.
pub fn errors_csv_header() -> &'static str {
    "\u{FEFF}row,column,code,message\r\n"
}

/// Appends error lines (`row,column,code,message`, CRLF, quoted as needed). Write
/// [`errors_csv_header`] once first.
pub fn write_error_rows<W: Write>(w: W, errors: &[RowError]) -> io::Result<()> {
    let mut csv = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::CRLF)
        .from_writer(w);
    for e in errors {
        let row = e.row.to_string();
        csv.write_record([row.as_str(), &e.column, &e.code, &e.message])
            .map_err(csv_to_io)?;
    }
    csv.flush()
}

fn csv_to_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// A file-level rejection in the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileErrorSummary {
    pub code: String,
    pub message: String,
}

/// Counts for `<file>.summary.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub layout_id: String,
    pub kind: FileKind,
    pub encoding: Option<DetectedEncoding>,
    /// Data rows read (header excluded).
    pub rows_read: u64,
    pub valid: u64,
    pub rejected: u64,
    /// Number of field errors over all rejected rows.
    pub errors: u64,
    pub errors_by_code: BTreeMap<String, u64>,
    /// Set when the whole file was rejected; then nothing may be applied.
    pub file_error: Option<FileErrorSummary>,
    /// Filled in by the caller (the reader does not read clocks).
    #[serde(default)]
    pub applied: Option<u64>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
}

impl Summary {
    pub fn new(layout: &Layout, encoding: Option<DetectedEncoding>) -> Self {
        Summary {
            layout_id: layout.id.clone(),
            kind: layout.kind,
            encoding,
            rows_read: 0,
            valid: 0,
            rejected: 0,
            errors: 0,
            errors_by_code: BTreeMap::new(),
            file_error: None,
            applied: None,
            duration_ms: None,
        }
    }

    /// The summary of a file rejected by `LayoutReader::new`.
    pub fn rejected_file(layout: &Layout, error: &crate::FileError) -> Self {
        let mut s = Summary::new(layout, None);
        s.file_error = Some(error.summary());
        s
    }

    /// Counts one row: `None` valid, `Some(errors)` rejected.
    pub(crate) fn count(&mut self, errors: Option<&[RowError]>) {
        self.rows_read += 1;
        match errors {
            None => self.valid += 1,
            Some(errors) => {
                self.rejected += 1;
                self.errors += errors.len() as u64;
                for e in errors {
                    *self.errors_by_code.entry(e.code.clone()).or_default() += 1;
                }
            }
        }
    }
}

//! Core-system file linkage (基幹系連携), the pure part: layouts as data, streaming
//! decoding of UTF-8 / CP932, the 外字 conversion table, row validation, the errors
//! report and the summary. No async, no network: it reads any [`std::io::Read`] and
//! never holds more than one record plus fixed-size buffers in memory.
//!
//! ```no_run
//! # use madoguchi_linkage::*;
//! # fn f(file: std::fs::File) -> Result<(), FileError> {
//! let layout = Layout::jumin();
//! let conversion = ConversionTable::empty();
//! let mut reader = LayoutReader::new(&layout, &conversion, file)?;
//! while let Some(outcome) = reader.next_row()? {
//!     match outcome {
//!         RowOutcome::Valid { row_no, record } => { /* upsert */ }
//!         RowOutcome::Invalid { row_no, errors } => { /* report */ }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! See `docs/linkage.md`.

mod decode;
mod layout;
mod outbound;
mod reader;
mod report;
mod validate;
mod value;
mod write;

pub use decode::{DetectedEncoding, MAX_RECORD_BYTES};
pub use layout::{
    CodeTable, Column, ColumnType, ConditionalDateFormat, ConversionTable, DateFormat,
    EncodingSpec, FileKind, Layout, LayoutError,
};
pub use outbound::{
    APP_FIELDS, FormMapping, OutboundConfig, Source, SourcePath, SystemSpec, parse_path,
};
pub use reader::{FileError, LayoutReader, Position, RowCheck, RowOutcome};
pub use report::{FileErrorSummary, RowError, Summary, errors_csv_header, write_error_rows};
pub use value::{MyNumber, Record, Value};
pub use write::{FileWriter, LineEnding, column_date_format, format_date};

//! CSV files for municipal staff (職員), made to open correctly in Excel.
//!
//! Staff open exports by double-clicking them, so the file has to carry everything Excel
//! needs to guess right: a UTF-8 byte order mark or the Windows code page CP932
//! (Windows-31J, シフトJIS as Windows writes it), CRLF line ends and RFC 4180 quoting.
//! The writer streams: it holds one row at a time, so an export of every application of a
//! year costs no more memory than one of a day.
//!
//! Nothing the citizen typed is lost silently. A character CP932 cannot hold is written as
//! 〓 (ゲタ記号, U+3013) and reported back as a [`Substitution`], so the caller can show
//! or log exactly which cells changed. The rules are written for staff and auditors in
//! `docs/export.md`; keep the two in step.

use std::io::{self, Write};

use encoding_rs::{EncoderResult, SHIFT_JIS};
use serde::{Deserialize, Serialize};

/// The character set of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CsvEncoding {
    /// UTF-8 with a byte order mark: every character is written as is, and current Excel
    /// opens it correctly only because of the mark.
    Utf8Bom,
    /// CP932 (Windows-31J): for older Excel versions and the core systems (基幹系) that
    /// read nothing else.
    Cp932,
}

/// One character that could not be written as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Substitution {
    /// Data row, starting at 1; 0 is the header row.
    pub row: u64,
    /// Header of the column the character was in.
    pub column: String,
    pub original: char,
    /// What was written instead.
    pub written: String,
}

/// What replaces a character CP932 cannot hold: 〓 (ゲタ記号), the traditional Japanese
/// placeholder for a missing character, which CP932 holds (0x81AC).
pub const GETA: char = '\u{3013}';

/// First characters that make a spreadsheet read a cell as a formula (OWASP "CSV
/// injection"); such a cell gets [`FORMULA_GUARD`] in front.
pub const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Written before a cell that starts with one of [`FORMULA_TRIGGERS`]; Excel then treats
/// the cell as text.
pub const FORMULA_GUARD: char = '\'';

/// Unicode characters that Unicode's JIS mapping and Windows' CP932 mapping disagree on,
/// mapped to the code point CP932 uses for the same glyph. A citizen typing 〜 on a Mac
/// or a phone sends U+301C, while CP932 only has U+FF5E; both show the same wave dash.
/// Only entries `encoding_rs` cannot encode itself are listed (checked by a test), and
/// they are not reported as substitutions.
///
/// Not listed because `encoding_rs` already folds it: U+2212 MINUS SIGN → 0x817C
/// (read back as U+FF0D).
pub const CP932_EQUIVALENTS: [(char, char); 9] = [
    ('\u{301C}', '\u{FF5E}'), // WAVE DASH → FULLWIDTH TILDE
    ('\u{2016}', '\u{2225}'), // DOUBLE VERTICAL LINE → PARALLEL TO
    ('\u{2014}', '\u{2015}'), // EM DASH → HORIZONTAL BAR
    ('\u{00A2}', '\u{FFE0}'), // CENT SIGN → FULLWIDTH CENT SIGN
    ('\u{00A3}', '\u{FFE1}'), // POUND SIGN → FULLWIDTH POUND SIGN
    ('\u{00AC}', '\u{FFE2}'), // NOT SIGN → FULLWIDTH NOT SIGN
    ('\u{00A6}', '\u{FFE4}'), // BROKEN BAR → FULLWIDTH BROKEN BAR
    // encoding_rs writes these two as the single bytes 0x5C and 0x7E, which every reader
    // decodes as `\` and `~`; the full-width forms read back as the same sign.
    ('\u{00A5}', '\u{FFE5}'), // YEN SIGN → FULLWIDTH YEN SIGN
    ('\u{203E}', '\u{FFE3}'), // OVERLINE → FULLWIDTH MACRON
];

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Streams rows as CSV into `W`, one row in memory at a time.
///
/// After an error from `W` the output is incomplete; discard it.
pub struct CsvWriter<W: Write> {
    csv: csv::Writer<RowSink<W>>,
    header: Vec<String>,
    header_substitutions: Vec<Substitution>,
    encoding: CsvEncoding,
    rows: u64,
    /// The row being prepared; reused so that steady-state writing does not allocate per
    /// row for the list itself.
    cells: Vec<String>,
}

impl<W: Write> CsvWriter<W> {
    /// Writes the BOM (UTF-8) and the header row.
    ///
    /// The header follows the same rules as data; what was substituted in it is in
    /// [`CsvWriter::header_substitutions`] (row 0).
    pub fn new(mut out: W, encoding: CsvEncoding, header: &[&str]) -> io::Result<Self> {
        let mut bytes_written = 0;
        if encoding == CsvEncoding::Utf8Bom {
            out.write_all(UTF8_BOM)?;
            bytes_written = UTF8_BOM.len() as u64;
        }
        let sink = RowSink {
            out,
            encoding,
            pending: Vec::new(),
            encoded: Vec::new(),
            bytes_written,
        };
        let csv = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .quote_style(csv::QuoteStyle::Necessary)
            .has_headers(false)
            .from_writer(sink);
        let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
        let mut writer = CsvWriter {
            csv,
            header_substitutions: Vec::new(),
            encoding,
            rows: 0,
            cells: Vec::with_capacity(header.len()),
            header,
        };
        let header_cells = writer.header.clone();
        writer.header_substitutions = writer.write_cells(0, &header_cells)?;
        Ok(writer)
    }

    /// Writes one data row (row numbers start at 1 for the first data row); returns what had
    /// to be substituted in this row.
    ///
    /// A row must have exactly as many cells as the header: Excel shows a ragged file as
    /// shifted columns, which staff would misread. Such a row is refused with
    /// [`io::ErrorKind::InvalidInput`] and nothing of it is written.
    pub fn write_row<S: AsRef<str>>(&mut self, cells: &[S]) -> io::Result<Vec<Substitution>> {
        if cells.len() != self.header.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "row {} has {} cells, the header has {}",
                    self.rows + 1,
                    cells.len(),
                    self.header.len()
                ),
            ));
        }
        let subs = self.write_cells(self.rows + 1, cells)?;
        self.rows += 1;
        Ok(subs)
    }

    /// Data rows written so far (the header is not counted).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes handed to the inner writer so far, BOM and header included.
    pub fn bytes_written(&self) -> u64 {
        self.csv.get_ref().bytes_written
    }

    /// What was substituted in the header row (row 0).
    pub fn header_substitutions(&self) -> &[Substitution] {
        &self.header_substitutions
    }

    pub fn encoding(&self) -> CsvEncoding {
        self.encoding
    }

    /// Flushes the inner writer and hands it back.
    pub fn finish(self) -> io::Result<W> {
        let sink = self
            .csv
            .into_inner()
            .map_err(|e| io::Error::new(e.error().kind(), e.error().to_string()))?;
        let mut out = sink.out;
        out.flush()?;
        Ok(out)
    }

    fn write_cells<S: AsRef<str>>(
        &mut self,
        row: u64,
        cells: &[S],
    ) -> io::Result<Vec<Substitution>> {
        let mut subs = Vec::new();
        self.cells.clear();
        for (i, cell) in cells.iter().enumerate() {
            let column = self.header.get(i).map(String::as_str).unwrap_or_default();
            let prepared = prepare_cell(cell.as_ref(), self.encoding, row, column, &mut subs);
            self.cells.push(prepared);
        }
        self.csv.write_record(&self.cells)?;
        // The sink turns one flush into one encoded write of the whole row.
        self.csv.flush()?;
        Ok(subs)
    }
}

/// Applies the formula guard and, for CP932, the equivalents table and 〓 substitution.
fn prepare_cell(
    cell: &str,
    encoding: CsvEncoding,
    row: u64,
    column: &str,
    subs: &mut Vec<Substitution>,
) -> String {
    let mut out = String::with_capacity(cell.len() + 1);
    if cell.starts_with(FORMULA_TRIGGERS) {
        out.push(FORMULA_GUARD);
    }
    match encoding {
        CsvEncoding::Utf8Bom => out.push_str(cell),
        CsvEncoding::Cp932 => {
            for c in cell.chars() {
                if c.is_ascii() {
                    out.push(c);
                } else if let Some(eq) = cp932_equivalent(c) {
                    out.push(eq);
                } else if cp932_can_encode(c) {
                    out.push(c);
                } else {
                    out.push(GETA);
                    subs.push(Substitution {
                        row,
                        column: column.to_owned(),
                        original: c,
                        written: GETA.to_string(),
                    });
                }
            }
        }
    }
    out
}

/// The CP932 code point for the same glyph, from [`CP932_EQUIVALENTS`].
pub fn cp932_equivalent(c: char) -> Option<char> {
    CP932_EQUIVALENTS
        .iter()
        .find(|(from, _)| *from == c)
        .map(|(_, to)| *to)
}

/// Whether `encoding_rs`'s Shift_JIS encoder (the WHATWG one, which has the CP932
/// repertoire including the NEC and IBM extensions) can write `c` without replacement.
pub fn cp932_can_encode(c: char) -> bool {
    let mut src = [0u8; 4];
    let src = c.encode_utf8(&mut src);
    let mut dst = [0u8; 4];
    let (result, _, _) = SHIFT_JIS
        .new_encoder()
        .encode_from_utf8_without_replacement(src, &mut dst, true);
    result == EncoderResult::InputEmpty
}

/// The inner writer of the `csv` writer: collects the UTF-8 of one row and, when the row is
/// flushed, writes it in the target encoding to `out`. The `csv` writer is flushed after
/// every row, so `pending` never holds more than one row and is always whole UTF-8.
struct RowSink<W: Write> {
    out: W,
    encoding: CsvEncoding,
    pending: Vec<u8>,
    encoded: Vec<u8>,
    bytes_written: u64,
}

impl<W: Write> Write for RowSink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    /// Writes the pending row; does not flush `out`, so a buffered `out` stays buffered.
    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        match self.encoding {
            CsvEncoding::Utf8Bom => {
                self.out.write_all(&self.pending)?;
                self.bytes_written += self.pending.len() as u64;
            }
            CsvEncoding::Cp932 => {
                let text = std::str::from_utf8(&self.pending)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                self.encoded.clear();
                let mut encoder = SHIFT_JIS.new_encoder();
                let max = encoder
                    .max_buffer_length_from_utf8_without_replacement(text.len())
                    .ok_or_else(|| io::Error::other("row too long to encode"))?;
                self.encoded.reserve(max);
                let (result, _) = encoder.encode_from_utf8_to_vec_without_replacement(
                    text,
                    &mut self.encoded,
                    true,
                );
                if let EncoderResult::Unmappable(c) = result {
                    // prepare_cell substitutes every character the encoder refuses; reaching
                    // this is a bug, and an error is better than a lost character.
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("U+{:04X} cannot be written in CP932", c as u32),
                    ));
                }
                self.out.write_all(&self.encoded)?;
                self.bytes_written += self.encoded.len() as u64;
            }
        }
        self.pending.clear();
        Ok(())
    }
}

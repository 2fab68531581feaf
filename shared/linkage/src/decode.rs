//! Streaming decoding: any `Read` of UTF-8 or CP932 bytes → a `Read` of UTF-8 bytes,
//! chunk by chunk, strict (a malformed byte sequence is an error, never U+FFFD).

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use encoding_rs::{DecoderResult, SHIFT_JIS, UTF_8};

use crate::layout::EncodingSpec;

/// Size of the raw and decoded chunks.
pub(crate) const CHUNK: usize = 64 * 1024;

/// Longest record (in decoded bytes) we accept; bounds memory on hostile input such
/// as a quote that never closes.
pub const MAX_RECORD_BYTES: u64 = 1024 * 1024;

/// The encoding actually used for a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectedEncoding {
    Utf8,
    Utf8Bom,
    Cp932,
}

/// Marker payload of the `io::Error`s this module produces.
#[derive(Debug)]
pub(crate) enum DecodeFailure {
    /// Malformed input at this source byte offset (approximate to the chunk position).
    Malformed { byte_offset: u64 },
    /// A record longer than [`MAX_RECORD_BYTES`].
    RecordTooLong,
}

impl std::fmt::Display for DecodeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeFailure::Malformed { byte_offset } => {
                write!(f, "malformed input near byte {byte_offset}")
            }
            DecodeFailure::RecordTooLong => f.write_str("record too long"),
        }
    }
}

impl std::error::Error for DecodeFailure {}

pub(crate) struct DecodingReader<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    src: Box<[u8]>,
    src_start: usize,
    src_end: usize,
    /// Source bytes consumed before `src[0]`.
    src_base: u64,
    eof: bool,
    out: Box<[u8]>,
    out_start: usize,
    out_end: usize,
    finished: bool,
    /// Decoded bytes handed out so far.
    produced: u64,
    /// Decoded offset where the record being read starts (set by the layout reader).
    record_start: Arc<AtomicU64>,
}

/// Reads until `buf` is full or EOF; returns the number of bytes read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn malformed(byte_offset: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        DecodeFailure::Malformed { byte_offset },
    )
}

impl<R: Read> DecodingReader<R> {
    /// Reads the first chunk, decides the encoding and checks that the whole first
    /// chunk decodes. Errors here mean the file is rejected before any row.
    pub(crate) fn new(
        mut inner: R,
        spec: EncodingSpec,
        record_start: Arc<AtomicU64>,
    ) -> io::Result<(Self, DetectedEncoding)> {
        let mut src = vec![0u8; CHUNK].into_boxed_slice();
        let n = fill(&mut inner, &mut src)?;
        let eof = n < CHUNK;
        let first = &src[..n];
        let bom = first.starts_with(&[0xEF, 0xBB, 0xBF]);
        let detected = match spec {
            EncodingSpec::Utf8 if bom => DetectedEncoding::Utf8Bom,
            EncodingSpec::Utf8 => DetectedEncoding::Utf8,
            // A UTF-8 BOM in a file declared CP932 means the declaration is wrong.
            EncodingSpec::Cp932 if bom => return Err(malformed(0)),
            EncodingSpec::Cp932 => DetectedEncoding::Cp932,
            EncodingSpec::Auto if bom => DetectedEncoding::Utf8Bom,
            EncodingSpec::Auto => match std::str::from_utf8(first) {
                Ok(_) => DetectedEncoding::Utf8,
                // Only a character cut at the chunk end: still UTF-8.
                Err(e) if e.error_len().is_none() && !eof => DetectedEncoding::Utf8,
                Err(_) => DetectedEncoding::Cp932,
            },
        };
        let new_decoder = || match detected {
            DetectedEncoding::Utf8 | DetectedEncoding::Utf8Bom => {
                UTF_8.new_decoder_with_bom_removal()
            }
            DetectedEncoding::Cp932 => SHIFT_JIS.new_decoder_without_bom_handling(),
        };
        // Trial decode of the first chunk so that a wrong encoding rejects the file
        // before the first row is returned.
        let mut trial = new_decoder();
        let mut scratch = vec![0u8; CHUNK * 3 + 16];
        let (result, _, _) = trial.decode_to_utf8_without_replacement(first, &mut scratch, eof);
        if let DecoderResult::Malformed(..) = result {
            return Err(malformed(0));
        }
        Ok((
            DecodingReader {
                inner,
                decoder: new_decoder(),
                src,
                src_start: 0,
                src_end: n,
                src_base: 0,
                eof,
                out: vec![0u8; CHUNK].into_boxed_slice(),
                out_start: 0,
                out_end: 0,
                finished: false,
                produced: 0,
                record_start,
            },
            detected,
        ))
    }

    /// Decodes more into `out`; returns false at the end of input.
    fn refill(&mut self) -> io::Result<bool> {
        self.out_start = 0;
        self.out_end = 0;
        loop {
            if self.finished {
                return Ok(false);
            }
            if self.src_start == self.src_end && !self.eof {
                self.src_base += self.src_end as u64;
                self.src_start = 0;
                let n = fill(&mut self.inner, &mut self.src)?;
                self.src_end = n;
                self.eof = n < self.src.len();
            }
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.src[self.src_start..self.src_end],
                &mut self.out,
                self.eof,
            );
            let offset = self.src_base + self.src_start as u64 + read as u64;
            self.src_start += read;
            self.out_end = written;
            match result {
                DecoderResult::Malformed(..) => return Err(malformed(offset)),
                DecoderResult::InputEmpty if self.eof => self.finished = true,
                DecoderResult::InputEmpty | DecoderResult::OutputFull => {}
            }
            if written > 0 {
                return Ok(true);
            }
        }
    }
}

impl<R: Read> Read for DecodingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.out_start == self.out_end && !self.refill()? {
            return Ok(0);
        }
        if self.produced - self.record_start.load(Ordering::Relaxed).min(self.produced)
            > MAX_RECORD_BYTES
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                DecodeFailure::RecordTooLong,
            ));
        }
        let n = buf.len().min(self.out_end - self.out_start);
        buf[..n].copy_from_slice(&self.out[self.out_start..self.out_start + n]);
        self.out_start += n;
        self.produced += n as u64;
        Ok(n)
    }
}

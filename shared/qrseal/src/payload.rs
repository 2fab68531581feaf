//! The payload layout of format version 1 (byte by byte in `docs/qr.md`): a hand-rolled,
//! length-prefixed binary of the model (strings in CP932 where they fit), then raw DEFLATE
//! unless that would not make it smaller.
//!
//! Hand-rolled rather than a serde format so that every byte is documented and stable, and
//! so that the decoder can refuse anything not exactly as written (unknown codes and flag
//! bits, trailing bytes, bad UTF-8, impossible dates) without trusting a library's leniency.
//! The tenant is not in the payload: it is in the authenticated header.

use jiff::civil::Date;
use madoguchi_domain::tenant::TenantId;

use crate::model::{
    Address, Person, PreApplication, Procedure, RELATIONSHIP_OTHER, Relationship, Sex,
};

/// Largest decompressed payload accepted: far above any household that fits in a QR code,
/// small enough that a crafted "zip bomb" costs nothing.
pub const MAX_PLAIN_BYTES: usize = 16 * 1024;
/// DEFLATE level (miniz_oxide's 0–10); 10 is its slowest, smallest setting, measured best.
const DEFLATE_LEVEL: u8 = 10;

const METHOD_STORED: u8 = 0;
const METHOD_DEFLATE: u8 = 1;
const ADDRESS_HAS_POSTAL: u8 = 0b1;
const PERSON_HAS_NATIONALITY: u8 = 0b1;

/// Why a payload did not decode. Deliberately without detail: it is attacker-controlled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadError;

/// The plain (uncompressed) payload bytes of `app`.
///
/// Callers validate first; lengths above what a length prefix holds cannot occur for a
/// valid application, and any string is encoded faithfully whatever its content.
pub fn encode_plain(app: &PreApplication) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + app.members.len() * 48);
    out.push(app.procedure.code());
    put_date(&mut out, app.move_date);
    put_address(&mut out, &app.old_address);
    put_address(&mut out, &app.new_address);
    put_varint(&mut out, app.members.len());
    for p in &app.members {
        out.push(if p.nationality.is_some() {
            PERSON_HAS_NATIONALITY
        } else {
            0
        });
        for s in [&p.family_name, &p.given_name, &p.family_kana, &p.given_kana] {
            put_str(&mut out, s);
        }
        put_date(&mut out, p.birth_date);
        out.push(p.sex.code());
        out.push(p.relationship.code());
        if let Relationship::Other(text) = &p.relationship {
            put_str(&mut out, text);
        }
        if let Some(n) = &p.nationality {
            put_str(&mut out, n);
        }
    }
    put_varint(&mut out, app.procedures.len());
    for id in &app.procedures {
        put_str(&mut out, id);
    }
    out
}

/// Decodes plain payload bytes; `tenant` comes from the header.
pub fn decode_plain(tenant: TenantId, bytes: &[u8]) -> Result<PreApplication, PayloadError> {
    let mut r = Reader(bytes);
    let procedure = Procedure::from_code(r.u8()?).ok_or(PayloadError)?;
    let move_date = r.date()?;
    let old_address = r.address()?;
    let new_address = r.address()?;
    let count = r.varint()?;
    // Each member takes at least 10 bytes: refuse counts the input cannot hold before
    // reserving room for them.
    if count > r.0.len() / 10 {
        return Err(PayloadError);
    }
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        let flags = r.u8()?;
        if flags & !PERSON_HAS_NATIONALITY != 0 {
            return Err(PayloadError);
        }
        let family_name = r.string()?;
        let given_name = r.string()?;
        let family_kana = r.string()?;
        let given_kana = r.string()?;
        let birth_date = r.date()?;
        let sex = Sex::from_code(r.u8()?).ok_or(PayloadError)?;
        let relationship = match r.u8()? {
            RELATIONSHIP_OTHER => Relationship::Other(r.string()?),
            code => Relationship::from_code(code).ok_or(PayloadError)?,
        };
        let nationality = if flags & PERSON_HAS_NATIONALITY != 0 {
            Some(r.string()?)
        } else {
            None
        };
        members.push(Person {
            family_name,
            given_name,
            family_kana,
            given_kana,
            birth_date,
            sex,
            relationship,
            nationality,
        });
    }
    let count = r.varint()?;
    if count > r.0.len() {
        return Err(PayloadError);
    }
    let mut procedures = Vec::with_capacity(count);
    for _ in 0..count {
        procedures.push(r.string()?);
    }
    if !r.0.is_empty() {
        return Err(PayloadError);
    }
    Ok(PreApplication {
        tenant,
        procedure,
        move_date,
        old_address,
        new_address,
        members,
        procedures,
    })
}

/// Raw DEFLATE (RFC 1951) of the plain payload.
pub fn compress(plain: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec(plain, DEFLATE_LEVEL)
}

/// Inflates at most [`MAX_PLAIN_BYTES`].
pub fn decompress(compressed: &[u8]) -> Result<Vec<u8>, PayloadError> {
    miniz_oxide::inflate::decompress_to_vec_with_limit(compressed, MAX_PLAIN_BYTES)
        .map_err(|_| PayloadError)
}

/// The encrypted body: a method byte, then the plain payload deflated (`1`) or, when
/// DEFLATE would not make it smaller (a one-person household in CP932), as is (`0`).
pub fn encode(app: &PreApplication) -> Vec<u8> {
    let plain = encode_plain(app);
    let deflated = compress(&plain);
    let (method, body) = if deflated.len() < plain.len() {
        (METHOD_DEFLATE, deflated)
    } else {
        (METHOD_STORED, plain)
    };
    let mut out = Vec::with_capacity(1 + body.len());
    out.push(method);
    out.extend_from_slice(&body);
    out
}

/// Body (method byte and payload) → application (what the fuzz target drives past the
/// AEAD); `tenant` comes from the header.
pub fn decode(tenant: TenantId, body: &[u8]) -> Result<PreApplication, PayloadError> {
    match body.split_first() {
        Some((&METHOD_STORED, plain)) if plain.len() <= MAX_PLAIN_BYTES => {
            decode_plain(tenant, plain)
        }
        Some((&METHOD_DEFLATE, deflated)) => decode_plain(tenant, &decompress(deflated)?),
        _ => Err(PayloadError),
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    // LEB128: 7 bits a byte, high bit set on all but the last.
    loop {
        let low = (n & 0x7F) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// A string: `varint(len << 1 | cp932)` then the bytes. Japanese text is 2 bytes a
/// character in CP932 against 3 in UTF-8 (measured: a fifth less after DEFLATE), so a
/// string is written in CP932 whenever it round-trips exactly, else in UTF-8 (characters
/// outside JIS X 0208 and the IBM/NEC extensions, such as 𠮷).
fn put_str(out: &mut Vec<u8>, s: &str) {
    if !s.is_ascii() {
        let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(s);
        if !unmappable && decode_cp932(&bytes).as_deref() == Some(s) {
            put_varint(out, bytes.len() << 1 | 1);
            out.extend_from_slice(&bytes);
            return;
        }
    }
    put_varint(out, s.len() << 1);
    out.extend_from_slice(s.as_bytes());
}

fn decode_cp932(bytes: &[u8]) -> Option<String> {
    encoding_rs::SHIFT_JIS
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(std::borrow::Cow::into_owned)
}

/// A date in 3 bytes: `year << 9 | month << 5 | day`, big endian (years 0–9999).
fn put_date(out: &mut Vec<u8>, d: Date) {
    let year = u32::try_from(d.year()).unwrap_or(0).min(9999);
    let packed =
        year << 9 | u32::from(d.month().unsigned_abs()) << 5 | u32::from(d.day().unsigned_abs());
    out.extend_from_slice(&packed.to_be_bytes()[1..]);
}

fn put_address(out: &mut Vec<u8>, a: &Address) {
    // Postal codes are 7 digits, so they fit in 3 bytes; anything else is left out
    // (validation refuses it before sealing).
    let postal = a
        .postal_code
        .as_deref()
        .filter(|c| c.len() == 7)
        .and_then(|c| c.parse::<u32>().ok());
    match postal {
        Some(n) => {
            out.push(ADDRESS_HAS_POSTAL);
            out.extend_from_slice(&n.to_be_bytes()[1..]);
        }
        None => out.push(0),
    }
    put_str(out, &a.address);
    put_str(out, &a.katagaki);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], PayloadError> {
        if n > self.0.len() {
            return Err(PayloadError);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, PayloadError> {
        Ok(self.take(1)?[0])
    }
    fn u24(&mut self) -> Result<u32, PayloadError> {
        let b = self.take(3)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }
    fn varint(&mut self) -> Result<usize, PayloadError> {
        // At most 3 bytes (2^21): every length and count in a payload is far below that.
        let mut n = 0usize;
        for shift in [0, 7, 14] {
            let b = self.u8()?;
            n |= usize::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                // Refuse non-minimal forms so that each value has one encoding.
                if b == 0 && shift > 0 {
                    return Err(PayloadError);
                }
                return Ok(n);
            }
        }
        Err(PayloadError)
    }
    fn string(&mut self) -> Result<String, PayloadError> {
        let n = self.varint()?;
        let bytes = self.take(n >> 1)?;
        if n & 1 == 1 {
            decode_cp932(bytes).ok_or(PayloadError)
        } else {
            std::str::from_utf8(bytes)
                .map(str::to_owned)
                .map_err(|_| PayloadError)
        }
    }
    fn date(&mut self) -> Result<Date, PayloadError> {
        let packed = self.u24()?;
        let year = i16::try_from(packed >> 9).map_err(|_| PayloadError)?;
        let month = ((packed >> 5) & 0x0F) as i8;
        let day = (packed & 0x1F) as i8;
        Date::new(year, month, day).map_err(|_| PayloadError)
    }
    fn address(&mut self) -> Result<Address, PayloadError> {
        let flags = self.u8()?;
        if flags & !ADDRESS_HAS_POSTAL != 0 {
            return Err(PayloadError);
        }
        let postal_code = if flags & ADDRESS_HAS_POSTAL != 0 {
            let n = self.u24()?;
            if n > 9_999_999 {
                return Err(PayloadError);
            }
            Some(format!("{n:07}"))
        } else {
            None
        };
        Ok(Address {
            postal_code,
            address: self.string()?,
            katagaki: self.string()?,
        })
    }
}

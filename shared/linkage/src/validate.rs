//! Field validation. Messages are Japanese and never contain the value.

use jiff::civil::Date;
use madoguchi_domain::error::DomainError;
use madoguchi_domain::mynumber::my_number_check_digit;
use madoguchi_domain::parse_japanese_date;
use madoguchi_domain::wareki::{Era, FIRST_SUPPORTED_DATE, Wareki};

use crate::layout::{Column, ColumnType, ConversionTable, DateFormat, Layout};
use crate::value::{MyNumber, Value};

/// Column data resolved once per file, so that a field is checked without looking
/// anything up in the layout.
#[derive(Debug, Clone)]
pub(crate) struct CompiledColumn {
    pub required: bool,
    /// Index of the column named by `required_if_present`.
    pub required_if: Option<usize>,
    /// Index and format of `date_format_if_present`.
    pub date_if: Option<(usize, DateFormat)>,
    max_length: Option<usize>,
    min_length: Option<usize>,
    /// Byte lengths outside `bytes_ok` need the characters counted (a character is 1
    /// to 4 bytes): `min_length × 4 ..= max_length`.
    bytes_ok: (usize, usize),
    check: Check,
}

/// The type check of a column, with what it needs resolved.
#[derive(Debug, Clone)]
enum Check {
    Text,
    Digits,
    Kana,
    /// The codes of the column's table (empty if the table is unknown).
    Code(CodeSet),
    MyNumber,
    PostalCode,
    ResidenceCardNumber,
    /// The column's own format (`Any` if none).
    Date(DateFormat),
}

/// The keys of a code table. Codes of up to 7 bytes (all of them, in practice) are
/// compared as one `u64` (bytes and length) instead of string comparisons.
#[derive(Debug, Clone, Default)]
struct CodeSet {
    /// Packed short codes, sorted.
    short: Box<[u64]>,
    /// Longer codes, sorted.
    long: Box<[Box<str>]>,
}

/// The bytes of a string of at most 7 bytes in the low bytes of a `u64` and its
/// length in the high byte, so that different strings give different words.
fn pack(b: &[u8]) -> Option<u64> {
    if b.len() > 7 {
        return None;
    }
    let word = b
        .iter()
        .enumerate()
        .fold(0u64, |w, (i, &x)| w | u64::from(x) << (8 * i));
    Some(word | (b.len() as u64) << 56)
}

impl CodeSet {
    fn new<'a>(codes: impl Iterator<Item = &'a String>) -> Self {
        let (mut short, mut long) = (Vec::new(), Vec::new());
        for c in codes {
            match pack(c.as_bytes()) {
                Some(k) => short.push(k),
                None => long.push(c.clone().into_boxed_str()),
            }
        }
        short.sort_unstable();
        long.sort_unstable();
        CodeSet {
            short: short.into(),
            long: long.into(),
        }
    }

    #[inline]
    fn contains(&self, b: &[u8]) -> bool {
        match pack(b) {
            Some(k) if self.short.len() <= 16 => self.short.contains(&k),
            Some(k) => self.short.binary_search(&k).is_ok(),
            None => self.long.binary_search_by(|c| c.as_bytes().cmp(b)).is_ok(),
        }
    }
}

pub(crate) fn compile(layout: &Layout) -> Vec<CompiledColumn> {
    layout
        .columns
        .iter()
        .map(|c| CompiledColumn {
            required: c.required,
            required_if: c
                .required_if_present
                .as_deref()
                .and_then(|n| layout.index_of(n)),
            date_if: c
                .date_format_if_present
                .as_ref()
                .and_then(|d| layout.index_of(&d.column).map(|i| (i, d.format))),
            max_length: c.max_length,
            min_length: c.min_length,
            bytes_ok: (
                c.min_length.map_or(0, |min| min.saturating_mul(4)),
                c.max_length.unwrap_or(usize::MAX),
            ),
            check: match c.ty {
                ColumnType::Text => Check::Text,
                ColumnType::Digits => Check::Digits,
                ColumnType::Kana => Check::Kana,
                ColumnType::Code => Check::Code(
                    c.code_table
                        .as_deref()
                        .and_then(|t| layout.code_tables.get(t))
                        .map(|t| CodeSet::new(t.codes.keys()))
                        .unwrap_or_default(),
                ),
                ColumnType::MyNumber => Check::MyNumber,
                ColumnType::PostalCode => Check::PostalCode,
                ColumnType::ResidenceCardNumber => Check::ResidenceCardNumber,
                ColumnType::Date => Check::Date(c.date_format.unwrap_or(DateFormat::Any)),
            },
        })
        .collect()
}

/// Where the values of validated fields go: a `Vec<Value>` (building a record) or
/// nowhere ([`Discard`], a check-only pass, where values are never built).
pub(crate) trait Sink {
    /// Whether values are kept; `false` skips building them (no copies, no
    /// allocations) and is known at compile time.
    const KEEP: bool;
    fn push(&mut self, value: Value);
}

impl Sink for Vec<Value> {
    const KEEP: bool = true;
    #[inline]
    fn push(&mut self, value: Value) {
        Vec::push(self, value);
    }
}

/// The sink of a check-only pass.
pub(crate) struct Discard;

impl Sink for Discard {
    const KEEP: bool = false;
    #[inline]
    fn push(&mut self, _: Value) {}
}

#[derive(Debug)]
pub(crate) struct FieldError {
    pub code: &'static str,
    pub message: String,
}

fn err(code: &'static str, message: String) -> FieldError {
    FieldError { code, message }
}

/// What one pass over the bytes of a whole record says about all its fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordScan {
    /// Some byte is at or above [`ConversionTable::lead_threshold`]: a field may hold
    /// a character of the conversion table or a private-use character.
    pub may_convert: bool,
    /// Some byte may belong to a control character (see [`suspicious`]).
    pub may_have_control: bool,
}

/// Bytes that can be part of a control character other than TAB, CR and LF
/// (`char::is_control`: U+0000–U+001F and U+007F–U+009F): below 0x20, 0x7F, and 0xC2,
/// the lead byte of U+0080–U+00BF. TAB, CR and LF are included (cheaper to test).
fn suspicious(x: u8) -> bool {
    (x < 0x20) | (x == 0x7F) | (x == 0xC2)
}

/// Two passes over the record, each a reduction without early exit that the compiler
/// turns into vector instructions.
pub(crate) fn scan_record(bytes: &[u8], lead_threshold: u8) -> RecordScan {
    RecordScan {
        may_convert: bytes.iter().copied().max().unwrap_or(0) >= lead_threshold,
        may_have_control: bytes.iter().fold(false, |acc, &x| acc | suspicious(x)),
    }
}

/// Whether `s` has a control character other than TAB, CR and LF (callers first
/// look for a [`suspicious`] byte).
fn has_control(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
}

/// `chars().count()` of UTF-8 text: the bytes that are not continuation bytes
/// (`0x80..=0xBF`, i.e. below -64 as `i8`), counted in 16-byte blocks; the tail is
/// padded with continuation bytes.
fn char_count(b: &[u8]) -> usize {
    let starts = |x: u8| u8::from((x as i8) >= -0x40);
    let (blocks, rest) = b.as_chunks::<16>();
    let mut tail = [0x80u8; 16];
    tail[..rest.len()].copy_from_slice(rest);
    blocks
        .iter()
        .chain(std::iter::once(&tail))
        .map(|block| usize::from(block.iter().fold(0u8, |acc, &x| acc + starts(x))))
        .sum()
}

/// Whether every byte is an ASCII digit, eight bytes at a time: a byte `x` is a digit
/// when its high nibble is 3 and stays 3 in `x + 6` (`0x3A..=0x3F` become `0x40..`).
/// The addition only runs on bytes `0x30..=0x3F`, so no byte carries into the next.
fn all_digits(b: &[u8]) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    const SIXES: u64 = 0x0606_0606_0606_0606;
    let word_ok = |w: u64| w & HIGH == THREES && w.wrapping_add(SIXES) & HIGH == THREES;
    let (words, rest) = b.as_chunks::<8>();
    words.iter().all(|w| word_ok(u64::from_le_bytes(*w))) && rest.iter().all(u8::is_ascii_digit)
}

/// `chars().all(is_kana)` on UTF-8 text: U+30A1–U+30FE are `E3 82 A1`–`E3 82 BF` and
/// `E3 83 80`–`E3 83 BE`, U+3000 is `E3 80 80`.
fn all_kana(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1), b.get(i + 2)) {
            (b' ', _, _) => i += 1,
            (0xE3, Some(0x82), Some(0xA1..=0xBF))
            | (0xE3, Some(0x83), Some(0x80..=0xBE))
            | (0xE3, Some(0x80), Some(0x80)) => i += 3,
            _ => return false,
        }
    }
    true
}

/// Validates one raw field and pushes its value onto `out` (nothing on error: the
/// caller pushes `Value::Null`). Pushing in each arm writes each variant straight
/// into the vector.
///
/// `raw` is the field's bytes and `text` gives the same field as `&str`; it is only
/// called when a check or a value needs text (conversion, the exact control-character
/// check, the domain date parser, building a value), so a check-only pass over
/// ordinary rows never validates UTF-8. The checks on bytes give the same answers as
/// checks on the text because the field is valid UTF-8 (the decoder only produces
/// UTF-8 and CSV splits on ASCII bytes).
///
/// `required_by_other`: the `required_if_present` column is non-empty; `alt_date`:
/// the `date_format_if_present` column is non-empty; `scan`: what [`scan_record`]
/// found in the whole record.
#[inline]
#[allow(clippy::too_many_arguments)]
pub(crate) fn validate_field<'a, O: Sink>(
    col: &Column,
    cc: &CompiledColumn,
    conversion: &ConversionTable,
    raw: &'a [u8],
    text: impl Fn() -> &'a str,
    required_by_other: bool,
    alt_date: bool,
    scan: RecordScan,
    out: &mut O,
) -> Result<(), FieldError> {
    let label = &col.label;
    if raw.is_empty() {
        if cc.required || required_by_other {
            return Err(err("required", format!("{label}が入力されていません。")));
        }
        out.push(Value::Null);
        return Ok(());
    }
    let converted = if scan.may_convert {
        conversion.apply(text()).map_err(|()| {
            err(
                "gaiji.unmapped",
                format!("{label}に変換表にない外字（私用領域の文字）が含まれています。"),
            )
        })?
    } else {
        None
    };
    // The field after conversion, as bytes and (on demand) as text.
    let b: &[u8] = converted.as_deref().map_or(raw, str::as_bytes);
    let s = || converted.as_deref().unwrap_or_else(|| text());
    // A character is 1 to 4 bytes: only count characters when the byte length
    // alone does not settle the limits.
    if b.len() < cc.bytes_ok.0 || b.len() > cc.bytes_ok.1 {
        let len = if b.is_ascii() { b.len() } else { char_count(b) };
        if let Some(max) = cc.max_length
            && len > max
        {
            return Err(err(
                "length.max",
                format!("{label}は{max}文字以内である必要があります（{len}文字）。"),
            ));
        }
        if let Some(min) = cc.min_length
            && len < min
        {
            return Err(err(
                "length.min",
                format!("{label}は{min}文字以上である必要があります。"),
            ));
        }
    }
    match &cc.check {
        Check::Text => {
            // Without a suspicious byte in the record, the raw field has no control
            // character; a converted field is checked again (a replacement may add one).
            if (scan.may_have_control || converted.is_some())
                && b.iter().any(|&x| suspicious(x))
                && has_control(s())
            {
                return Err(err(
                    "text.control",
                    format!("{label}に制御文字が含まれています。"),
                ));
            }
        }
        Check::Digits => {
            if !all_digits(b) {
                return Err(err(
                    "digits.invalid",
                    format!("{label}は半角数字である必要があります。"),
                ));
            }
        }
        Check::Kana => {
            if !all_kana(b) {
                return Err(err(
                    "kana.invalid",
                    format!("{label}は全角カタカナである必要があります。"),
                ));
            }
        }
        Check::Code(codes) => {
            if !codes.contains(b) {
                return Err(err(
                    "code.unknown",
                    format!("{label}のコードがコード表にありません。"),
                ));
            }
        }
        Check::MyNumber => {
            if b.len() != 12 || !all_digits(b) {
                return Err(err(
                    "my_number.format",
                    format!("{label}は半角数字12桁である必要があります。"),
                ));
            }
            // Eleven ASCII digits: always UTF-8.
            let check = std::str::from_utf8(&b[..11])
                .ok()
                .and_then(my_number_check_digit);
            if check != Some(b[11] - b'0') {
                return Err(err(
                    "my_number.check_digit",
                    format!("{label}のチェックデジットが正しくありません。"),
                ));
            }
            if O::KEEP {
                out.push(Value::MyNumber(MyNumber::new_unchecked(s().to_owned())));
            }
            return Ok(());
        }
        Check::PostalCode => {
            let digits = |x: &[u8]| x.iter().all(u8::is_ascii_digit);
            let hyphen = match b.len() {
                7 if digits(b) => false,
                8 if b[3] == b'-' && digits(&b[..3]) && digits(&b[4..]) => true,
                _ => {
                    return Err(err(
                        "postal_code.invalid",
                        format!(
                            "{label}は7桁の数字（123-4567 または 1234567）である必要があります。"
                        ),
                    ));
                }
            };
            if O::KEEP {
                let s = s();
                let seven = if hyphen {
                    let mut seven = String::with_capacity(7);
                    seven.push_str(&s[..3]);
                    seven.push_str(&s[4..]);
                    seven
                } else {
                    s.to_owned()
                };
                out.push(Value::Text(seven));
            }
            return Ok(());
        }
        Check::ResidenceCardNumber => {
            let ok = b.len() == 12
                && b[..2].iter().all(u8::is_ascii_uppercase)
                && b[2..10].iter().all(u8::is_ascii_digit)
                && b[10..].iter().all(u8::is_ascii_uppercase);
            if !ok {
                return Err(err(
                    "residence_card.format",
                    format!("{label}は英字2桁・数字8桁・英字2桁である必要があります。"),
                ));
            }
            if O::KEEP {
                out.push(Value::Text(s().to_owned()));
            }
            return Ok(());
        }
        Check::Date(own) => {
            let format = match cc.date_if {
                Some((_, f)) if alt_date => f,
                _ => *own,
            };
            let date = parse_date_bytes(b, s, format)
                .map_err(|(code, message)| err(code, format!("{label}：{message}")))?;
            if O::KEEP {
                out.push(Value::Date(date));
            }
            return Ok(());
        }
    }
    // Text, digits, kana and code: the converted text if there is one (no second
    // copy), else a copy of the field.
    if O::KEEP {
        let value = match converted {
            Some(c) => c,
            None => text().to_owned(),
        };
        out.push(Value::Text(value));
    }
    Ok(())
}

type DateErr = (&'static str, &'static str);

const FORMAT_WAREKI: DateErr = (
    "date.format",
    "和暦（例：R7.04.01、令和7年4月1日）で記載してください。",
);
const FORMAT_SEIREKI: DateErr = (
    "date.format",
    "西暦（例：2025-04-01、20250401）で記載してください。",
);
const FORMAT_WAREKI_CODE: DateErr = (
    "date.format",
    "和暦7桁（元号コード＋年月日、例：5070401）で記載してください。",
);
const INVALID: DateErr = ("date.invalid", "存在しない日付です。");
const OUT_OF_RANGE: DateErr = (
    "date.out_of_range",
    "明治6年（1873年）1月1日以降の日付を入力してください。",
);

fn domain(e: DomainError) -> DateErr {
    match e {
        DomainError::InvalidValue { code, message } => (code, message),
        _ => INVALID,
    }
}

/// Parses a date as the column says. 和暦 and the 西暦 forms with separators go
/// through the domain parser; the compact `YYYYMMDD` / `YYYY-MM-DD` fast paths and the
/// 7-digit era code are handled here.
#[cfg(test)]
pub(crate) fn parse_date(s: &str, format: DateFormat) -> Result<Date, DateErr> {
    parse_date_bytes(s.as_bytes(), || s, format)
}

/// [`parse_date`] of the text whose bytes are `b`; `s` gives the text, needed only by
/// the domain parser (forms other than the fast paths).
#[inline]
fn parse_date_bytes<'a>(
    b: &[u8],
    s: impl FnOnce() -> &'a str,
    format: DateFormat,
) -> Result<Date, DateErr> {
    let starts_with_digit = b.first().is_some_and(u8::is_ascii_digit);
    match format {
        DateFormat::WarekiCode => parse_wareki_code(b),
        DateFormat::Wareki => {
            if starts_with_digit {
                return Err(FORMAT_WAREKI);
            }
            parse_wareki(b, s)
        }
        DateFormat::Seireki => {
            if !starts_with_digit {
                return Err(FORMAT_SEIREKI);
            }
            parse_seireki(b, s)
        }
        DateFormat::Any if starts_with_digit => parse_seireki(b, s),
        DateFormat::Any => parse_wareki(b, s),
    }
}

/// 和暦: the common machine form `R7.04.01` without allocating, everything else
/// (kanji eras, 元年, full-width) through the domain parser.
#[inline]
fn parse_wareki<'a>(b: &[u8], s: impl FnOnce() -> &'a str) -> Result<Date, DateErr> {
    let era = match b.first() {
        Some(b'M') => Some(Era::Meiji),
        Some(b'T') => Some(Era::Taisho),
        Some(b'S') => Some(Era::Showa),
        Some(b'H') => Some(Era::Heisei),
        Some(b'R') => Some(Era::Reiwa),
        _ => None,
    };
    if let Some(era) = era
        && let Some((y, m, d)) = short_parts(&b[1..])
    {
        return wareki_date(era, y, m, d);
    }
    parse_japanese_date(s()).map_err(domain)
}

/// `Wareki::new(era, y, m, d).map(Wareki::to_date)` for one- or two-digit parts, with
/// the usual case (a date inside its era, from 明治6年 on) decided here without
/// building the domain's error type; anything else goes to `Wareki::new`, which
/// decides and gives the error.
fn wareki_date(era: Era, y: u16, m: u16, d: u16) -> Result<Date, DateErr> {
    if y >= 1
        && let Ok(year) = i16::try_from(i32::from(era.first_day().year()) + i32::from(y) - 1)
        && let (Ok(month), Ok(day)) = (i8::try_from(m), i8::try_from(d))
        && let Ok(date) = Date::new(year, month, day)
        && date >= era.first_day()
        && era.last_day().is_none_or(|last| date <= last)
        && date >= FIRST_SUPPORTED_DATE
    {
        return Ok(date);
    }
    // At most two digits each, so they fit in u8.
    Wareki::new(era, y, m as u8, d as u8)
        .map(Wareki::to_date)
        .map_err(domain)
}

/// `Y.M.D` with one or two ASCII digits in each part, nothing else (what
/// `split('.')` into three parts of one or two digits accepts).
#[inline]
fn short_parts(b: &[u8]) -> Option<(u16, u16, u16)> {
    let (y, rest) = short_num(b)?;
    let (m, rest) = short_num(rest.strip_prefix(b".")?)?;
    let (d, rest) = short_num(rest.strip_prefix(b".")?)?;
    rest.is_empty().then_some((y, m, d))
}

/// One or two leading ASCII digits (two if there are two) and the rest.
#[inline]
fn short_num(b: &[u8]) -> Option<(u16, &[u8])> {
    match b {
        [x @ b'0'..=b'9', y @ b'0'..=b'9', rest @ ..] => {
            Some((u16::from(x - b'0') * 10 + u16::from(y - b'0'), rest))
        }
        [x @ b'0'..=b'9', rest @ ..] => Some((u16::from(x - b'0'), rest)),
        _ => None,
    }
}

fn num(b: &[u8]) -> Option<u16> {
    b.iter().try_fold(0u16, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u16::from(d - b'0'))
    })
}

fn checked_date(y: u16, m: u16, d: u16) -> Result<Date, DateErr> {
    let (Ok(y), Ok(m), Ok(d)) = (i16::try_from(y), i8::try_from(m), i8::try_from(d)) else {
        return Err(INVALID);
    };
    let date = Date::new(y, m, d).map_err(|_| INVALID)?;
    if date < FIRST_SUPPORTED_DATE {
        return Err(OUT_OF_RANGE);
    }
    Ok(date)
}

fn parse_seireki<'a>(b: &[u8], s: impl FnOnce() -> &'a str) -> Result<Date, DateErr> {
    let fast = match b.len() {
        8 => num(&b[..4]).zip(num(&b[4..6])).zip(num(&b[6..])),
        10 if b[4] == b'-' && b[7] == b'-' => num(&b[..4]).zip(num(&b[5..7])).zip(num(&b[8..])),
        _ => None,
    };
    if let Some(((y, m), d)) = fast {
        return checked_date(y, m, d);
    }
    if b.iter().all(u8::is_ascii_digit) {
        return Err(FORMAT_SEIREKI);
    }
    match parse_japanese_date(s()) {
        // The domain parser also takes 和暦; a 西暦 column must not.
        Ok(_) if !b.first().is_some_and(u8::is_ascii_digit) => Err(FORMAT_SEIREKI),
        Ok(d) => Ok(d),
        Err(e) => Err(match domain(e) {
            ("date.format", _) => FORMAT_SEIREKI,
            other => other,
        }),
    }
}

fn parse_wareki_code(b: &[u8]) -> Result<Date, DateErr> {
    if b.len() != 7 {
        return Err(FORMAT_WAREKI_CODE);
    }
    let era = match b[0] {
        b'1' => Era::Meiji,
        b'2' => Era::Taisho,
        b'3' => Era::Showa,
        b'4' => Era::Heisei,
        b'5' => Era::Reiwa,
        _ => return Err(FORMAT_WAREKI_CODE),
    };
    let (Some(y), Some(m), Some(d)) = (num(&b[1..3]), num(&b[3..5]), num(&b[5..7])) else {
        return Err(FORMAT_WAREKI_CODE);
    };
    wareki_date(era, y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i16, m: i8, day: i8) -> Date {
        Date::new(y, m, day).unwrap()
    }

    #[test]
    fn dates_follow_the_column_format() {
        assert_eq!(
            parse_date("R7.04.01", DateFormat::Wareki),
            Ok(d(2025, 4, 1))
        );
        assert_eq!(
            parse_date("令和7年4月1日", DateFormat::Wareki),
            Ok(d(2025, 4, 1))
        );
        assert_eq!(
            parse_date("2025-04-01", DateFormat::Wareki),
            Err(FORMAT_WAREKI)
        );
        assert_eq!(
            parse_date("2025-04-01", DateFormat::Seireki),
            Ok(d(2025, 4, 1))
        );
        assert_eq!(
            parse_date("20250401", DateFormat::Seireki),
            Ok(d(2025, 4, 1))
        );
        assert_eq!(
            parse_date("2025/4/1", DateFormat::Seireki),
            Ok(d(2025, 4, 1))
        );
        assert_eq!(
            parse_date("R7.04.01", DateFormat::Seireki),
            Err(FORMAT_SEIREKI)
        );
        assert_eq!(parse_date("20250230", DateFormat::Seireki), Err(INVALID));
        assert_eq!(
            parse_date("R7.02.30", DateFormat::Wareki).unwrap_err().0,
            "date.invalid"
        );
        assert_eq!(
            parse_date("H31.05.01", DateFormat::Wareki).unwrap_err().0,
            "date.out_of_era"
        );
        assert_eq!(
            parse_date("18720101", DateFormat::Seireki),
            Err(OUT_OF_RANGE)
        );
        assert_eq!(
            parse_date("5070401", DateFormat::WarekiCode),
            Ok(d(2025, 4, 1))
        );
        assert_eq!(
            parse_date("4310501", DateFormat::WarekiCode).unwrap_err().0,
            "date.out_of_era"
        );
        assert_eq!(
            parse_date("9070401", DateFormat::WarekiCode),
            Err(FORMAT_WAREKI_CODE)
        );
        assert_eq!(parse_date("2025", DateFormat::Any), Err(FORMAT_SEIREKI));
        assert_eq!(parse_date("R7.4.1", DateFormat::Any), Ok(d(2025, 4, 1)));
    }

    // The byte-level helpers against the plain definitions they replace.

    /// The character class of a `kana` column.
    fn is_kana(c: char) -> bool {
        matches!(c, '\u{30A1}'..='\u{30FA}' | '\u{30FB}'..='\u{30FE}' | ' ' | '\u{3000}')
    }

    fn is_control(c: char) -> bool {
        c.is_control() && !matches!(c, '\t' | '\r' | '\n')
    }

    fn all_chars() -> impl Iterator<Item = char> {
        (0..=0x10FFFFu32).filter_map(char::from_u32)
    }

    /// Strings of up to `len` characters over `alphabet`, all of them.
    fn strings(alphabet: &[&str], len: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..len {
            last = last
                .iter()
                .flat_map(|p| alphabet.iter().map(move |a| format!("{p}{a}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    #[test]
    fn byte_checks_match_char_checks_for_every_character() {
        for c in all_chars() {
            let mut buf = [0u8; 4];
            let s = c.encode_utf8(&mut buf);
            let b = s.as_bytes();
            assert_eq!(all_kana(b), is_kana(c), "{c:?}");
            assert_eq!(char_count(b), 1, "{c:?}");
            assert_eq!(all_digits(b), c.is_ascii_digit(), "{c:?}");
            if is_control(c) {
                assert!(b.iter().any(|&x| suspicious(x)), "{c:?}");
                assert!(has_control(s), "{c:?}");
            }
        }
    }

    #[test]
    fn byte_checks_match_char_checks_on_strings() {
        let alphabet = [
            "0", "9", "a", "/", ":", " ", "\t", "\u{3000}", "ア", "ヾ", "ゔ", "\u{30A0}",
            "\u{30FF}", "\u{0085}", "é", "髙", "𠮷", "\u{E000}",
        ];
        for s in strings(&alphabet, 3) {
            let b = s.as_bytes();
            assert_eq!(all_kana(b), s.chars().all(is_kana), "{s:?}");
            assert_eq!(char_count(b), s.chars().count(), "{s:?}");
            assert_eq!(
                all_digits(b),
                s.bytes().all(|x| x.is_ascii_digit()),
                "{s:?}"
            );
            let control = s.chars().any(is_control);
            assert_eq!(b.iter().any(|&x| suspicious(x)) && has_control(&s), control);
        }
        // Longer inputs: the 8- and 16-byte blocks and their tails.
        for n in 0..40 {
            let digits: String = (0..n).map(|i| char::from(b'0' + (i % 10) as u8)).collect();
            assert!(all_digits(digits.as_bytes()));
            for at in 0..n {
                for bad in [b'/', b':', b'a', b' ', 0x80, 0xFF, b'0' - 1, b'9' + 1] {
                    let mut b = digits.clone().into_bytes();
                    b[at] = bad;
                    assert!(!all_digits(&b), "{b:?}");
                }
            }
            let text = "山田ア1".repeat(n);
            assert_eq!(char_count(text.as_bytes()), text.chars().count());
            assert_eq!(char_count("𠮷".repeat(n).as_bytes()), n);
        }
    }

    #[test]
    fn record_scan_is_sound() {
        let table = ConversionTable::from_json(r#"{"\uE000": "髙", "髙": "高"}"#).unwrap();
        let empty = ConversionTable::empty();
        let ascii = ConversionTable::from_json(r#"{"a": "b"}"#).unwrap();
        assert_eq!(empty.lead_threshold(), 0xEE);
        assert_eq!(ascii.lead_threshold(), 0);
        assert_eq!(table.lead_threshold(), 0xE9); // 髙 = E9 AB 99
        for t in [&table, &empty, &ascii] {
            for c in all_chars() {
                let mut buf = [0u8; 4];
                let s = c.encode_utf8(&mut buf);
                let scan = scan_record(s.as_bytes(), t.lead_threshold());
                if !scan.may_convert {
                    assert_eq!(t.apply(s), Ok(None), "{c:?}");
                }
                if !scan.may_have_control {
                    assert!(!is_control(c), "{c:?}");
                }
            }
        }
    }

    /// `split('.')` into exactly three parts of one or two ASCII digits.
    fn split_parts(b: &[u8]) -> Option<(u16, u16, u16)> {
        let s = std::str::from_utf8(b).ok()?;
        let mut parts = s.split('.');
        let short = |p: &str| {
            (1..=2)
                .contains(&p.len())
                .then(|| num(p.as_bytes()))
                .flatten()
        };
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(y), Some(m), Some(d), None) => Some((short(y)?, short(m)?, short(d)?)),
            _ => None,
        }
    }

    #[test]
    fn short_parts_is_the_split_rule() {
        for s in strings(&["0", "7", "9", ".", "a", "１"], 8) {
            assert_eq!(
                short_parts(s.as_bytes()),
                split_parts(s.as_bytes()),
                "{s:?}"
            );
        }
    }

    #[test]
    fn wareki_fast_path_agrees_with_the_domain() {
        for era in Era::ALL {
            for y in 0..=99 {
                for m in 0..=14 {
                    for day in 0..=32 {
                        let domain = Wareki::new(era, y, m as u8, day as u8)
                            .map(Wareki::to_date)
                            .map_err(domain);
                        assert_eq!(wareki_date(era, y, m, day), domain, "{era:?} {y} {m} {day}");
                    }
                }
            }
        }
    }

    #[test]
    fn code_sets_are_the_tables() {
        let codes: Vec<String> = [
            "",
            "1",
            "01",
            "10",
            "あ",
            "１",
            "\u{E000}",
            "ABCDEFG",
            "ABCDEFGH",
            "ABCDEFGHI",
            "0000000",
            "00000000",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let small = CodeSet::new(codes.iter());
        let many: Vec<String> = (0..100)
            .map(|i| format!("{i:02}"))
            .chain(codes.clone())
            .collect();
        let large = CodeSet::new(many.iter());
        let probes = codes.iter().cloned().chain(
            [
                "2",
                "001",
                "ABCDEF",
                "ABCDEFGHIJ",
                "0",
                "00",
                "99",
                "100",
                " 1",
                "1 ",
            ]
            .map(String::from),
        );
        for p in probes {
            assert_eq!(small.contains(p.as_bytes()), codes.contains(&p), "{p:?}");
            assert_eq!(large.contains(p.as_bytes()), many.contains(&p), "{p:?}");
        }
    }
}

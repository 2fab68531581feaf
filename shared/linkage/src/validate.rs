//! Field validation. Messages are Japanese and never contain the value.

use jiff::civil::Date;
use madoguchi_domain::error::DomainError;
use madoguchi_domain::mynumber::my_number_check_digit;
use madoguchi_domain::parse_japanese_date;
use madoguchi_domain::wareki::{Era, FIRST_SUPPORTED_DATE, Wareki};

use crate::layout::{Column, ColumnType, ConversionTable, DateFormat, Layout};
use crate::value::{MyNumber, Value};

/// Column data resolved once per file.
#[derive(Debug, Clone)]
pub(crate) struct CompiledColumn {
    /// Index of the column named by `required_if_present`.
    pub required_if: Option<usize>,
    /// Index and format of `date_format_if_present`.
    pub date_if: Option<(usize, DateFormat)>,
}

pub(crate) fn compile(layout: &Layout) -> Vec<CompiledColumn> {
    layout
        .columns
        .iter()
        .map(|c| CompiledColumn {
            required_if: c
                .required_if_present
                .as_deref()
                .and_then(|n| layout.index_of(n)),
            date_if: c
                .date_format_if_present
                .as_ref()
                .and_then(|d| layout.index_of(&d.column).map(|i| (i, d.format))),
        })
        .collect()
}

#[derive(Debug)]
pub(crate) struct FieldError {
    pub code: &'static str,
    pub message: String,
}

fn err(code: &'static str, message: String) -> FieldError {
    FieldError { code, message }
}

/// Validates one raw field. `required_by_other`: the `required_if_present` column is
/// non-empty; `alt_date`: the `date_format_if_present` column is non-empty.
pub(crate) fn validate_field(
    col: &Column,
    cc: &CompiledColumn,
    layout: &Layout,
    conversion: &ConversionTable,
    raw: &str,
    required_by_other: bool,
    alt_date: bool,
) -> Result<Value, FieldError> {
    let label = &col.label;
    if raw.is_empty() {
        if col.required || required_by_other {
            return Err(err("required", format!("{label}が入力されていません。")));
        }
        return Ok(Value::Null);
    }
    let converted = conversion.apply(raw).map_err(|()| {
        err(
            "gaiji.unmapped",
            format!("{label}に変換表にない外字（私用領域の文字）が含まれています。"),
        )
    })?;
    let s: &str = converted.as_deref().unwrap_or(raw);
    let len = if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    };
    if let Some(max) = col.max_length
        && len > max
    {
        return Err(err(
            "length.max",
            format!("{label}は{max}文字以内である必要があります（{len}文字）。"),
        ));
    }
    if let Some(min) = col.min_length
        && len < min
    {
        return Err(err(
            "length.min",
            format!("{label}は{min}文字以上である必要があります。"),
        ));
    }
    let owned = |s: &str| converted.clone().unwrap_or_else(|| s.to_owned());
    match col.ty {
        ColumnType::Text => {
            if s.chars()
                .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
            {
                return Err(err(
                    "text.control",
                    format!("{label}に制御文字が含まれています。"),
                ));
            }
            Ok(Value::Text(owned(s)))
        }
        ColumnType::Digits => {
            if !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(
                    "digits.invalid",
                    format!("{label}は半角数字である必要があります。"),
                ));
            }
            Ok(Value::Text(owned(s)))
        }
        ColumnType::Kana => {
            if !s.chars().all(is_kana) {
                return Err(err(
                    "kana.invalid",
                    format!("{label}は全角カタカナである必要があります。"),
                ));
            }
            Ok(Value::Text(owned(s)))
        }
        ColumnType::Code => {
            let known = col
                .code_table
                .as_deref()
                .and_then(|t| layout.code_tables.get(t))
                .is_some_and(|t| t.codes.contains_key(s));
            if !known {
                return Err(err(
                    "code.unknown",
                    format!("{label}のコードがコード表にありません。"),
                ));
            }
            Ok(Value::Text(owned(s)))
        }
        ColumnType::MyNumber => {
            if s.len() != 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(
                    "my_number.format",
                    format!("{label}は半角数字12桁である必要があります。"),
                ));
            }
            let check = my_number_check_digit(&s[..11]);
            if check != Some(s.as_bytes()[11] - b'0') {
                return Err(err(
                    "my_number.check_digit",
                    format!("{label}のチェックデジットが正しくありません。"),
                ));
            }
            Ok(Value::MyNumber(MyNumber::new_unchecked(s.to_owned())))
        }
        ColumnType::PostalCode => {
            let b = s.as_bytes();
            let digits = |x: &[u8]| x.iter().all(u8::is_ascii_digit);
            let seven = match b.len() {
                7 if digits(b) => s.to_owned(),
                8 if b[3] == b'-' && digits(&b[..3]) && digits(&b[4..]) => {
                    format!("{}{}", &s[..3], &s[4..])
                }
                _ => {
                    return Err(err(
                        "postal_code.invalid",
                        format!(
                            "{label}は7桁の数字（123-4567 または 1234567）である必要があります。"
                        ),
                    ));
                }
            };
            Ok(Value::Text(seven))
        }
        ColumnType::ResidenceCardNumber => {
            let b = s.as_bytes();
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
            Ok(Value::Text(s.to_owned()))
        }
        ColumnType::Date => {
            let format = match cc.date_if {
                Some((_, f)) if alt_date => f,
                _ => col.date_format.unwrap_or(DateFormat::Any),
            };
            parse_date(s, format)
                .map(Value::Date)
                .map_err(|(code, message)| err(code, format!("{label}：{message}")))
        }
    }
}

fn is_kana(c: char) -> bool {
    matches!(c, '\u{30A1}'..='\u{30FA}' | '\u{30FB}'..='\u{30FE}' | ' ' | '\u{3000}')
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
pub(crate) fn parse_date(s: &str, format: DateFormat) -> Result<Date, DateErr> {
    let starts_with_digit = s.as_bytes().first().is_some_and(u8::is_ascii_digit);
    match format {
        DateFormat::WarekiCode => parse_wareki_code(s),
        DateFormat::Wareki => {
            if starts_with_digit {
                return Err(FORMAT_WAREKI);
            }
            parse_wareki(s)
        }
        DateFormat::Seireki => {
            if !starts_with_digit {
                return Err(FORMAT_SEIREKI);
            }
            parse_seireki(s)
        }
        DateFormat::Any if starts_with_digit => parse_seireki(s),
        DateFormat::Any => parse_wareki(s),
    }
}

/// 和暦: the common machine form `R7.04.01` without allocating, everything else
/// (kanji eras, 元年, full-width) through the domain parser.
fn parse_wareki(s: &str) -> Result<Date, DateErr> {
    let b = s.as_bytes();
    let era = match b.first() {
        Some(b'M') => Some(Era::Meiji),
        Some(b'T') => Some(Era::Taisho),
        Some(b'S') => Some(Era::Showa),
        Some(b'H') => Some(Era::Heisei),
        Some(b'R') => Some(Era::Reiwa),
        _ => None,
    };
    if let Some(era) = era {
        let mut parts = s[1..].split('.');
        if let (Some(y), Some(m), Some(d), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            let short = |p: &str| {
                (1..=2)
                    .contains(&p.len())
                    .then(|| num(p.as_bytes()))
                    .flatten()
            };
            if let (Some(y), Some(m), Some(d)) = (short(y), short(m), short(d)) {
                // At most two digits each, so they fit in u8.
                return Wareki::new(era, y, m as u8, d as u8)
                    .map(Wareki::to_date)
                    .map_err(domain);
            }
        }
    }
    parse_japanese_date(s).map_err(domain)
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

fn parse_seireki(s: &str) -> Result<Date, DateErr> {
    let b = s.as_bytes();
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
    match parse_japanese_date(s) {
        // The domain parser also takes 和暦; a 西暦 column must not.
        Ok(_) if !s.as_bytes().first().is_some_and(u8::is_ascii_digit) => Err(FORMAT_SEIREKI),
        Ok(d) => Ok(d),
        Err(e) => Err(match domain(e) {
            ("date.format", _) => FORMAT_SEIREKI,
            other => other,
        }),
    }
}

fn parse_wareki_code(s: &str) -> Result<Date, DateErr> {
    let b = s.as_bytes();
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
    // Two digits always fit in u8.
    Wareki::new(era, y, m as u8, d as u8)
        .map(Wareki::to_date)
        .map_err(domain)
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
}

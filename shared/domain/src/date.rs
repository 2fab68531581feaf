//! Calendar dates as citizens and municipalities use them: the Japan Standard Time
//! (日本標準時) calendar day, written in western or 和暦 form.

use jiff::Timestamp;
pub use jiff::civil::Date;

use crate::error::DomainError;
use crate::wareki::{Era, FIRST_SUPPORTED_DATE, Wareki, format_error, invalid_date, out_of_range};

/// The calendar day in Japan at instant `now`.
///
/// Uses the fixed offset +09:00 instead of the `Asia/Tokyo` tz database entry:
/// Japan has had no daylight saving time since 1951, and a fixed offset needs no
/// tzdb lookup (which would read the filesystem and could fail on a minimal
/// Lambda image). Only instants during the 1948–1951 summers would differ.
pub fn today_in_tokyo(now: Timestamp) -> Date {
    jiff::tz::offset(9).to_datetime(now).date()
}

/// Longest input we look at; real dates are far shorter, and the cap bounds the
/// work done on hostile input.
const MAX_INPUT_CHARS: usize = 64;

/// Parses a date typed by a person, in western or 和暦 form:
///
/// - western: `2023-02-03`, `2023/2/3`, `2023.2.3`, `2023年2月3日` (4-digit year);
/// - 和暦: `令和5年2月3日`, `令和元年5月1日`, `R5.2.3`, `H31.4.30`, `S64.1.7`, `R5/2/3`,
///   with the era as kanji (`令和`), one kanji (`令`), a Latin letter in either case
///   (`R`, `r`) or a ligature (`㋿`), and `元` or `1` for the first year.
///
/// Full-width digits, letters and punctuation are accepted, and white space anywhere
/// is ignored (forms are often filled in with an IME). Kanji numerals (`五年`) are
/// not accepted.
///
/// Dates before 1873-01-01 (明治6年1月1日) are refused in both forms, see
/// [`crate::wareki`]; so every date this returns can be formatted as 和暦.
///
/// Errors are [`DomainError::InvalidValue`] with code `date.format`, `date.invalid`
/// (no such day), `date.out_of_era` or `date.out_of_range`; attach them to a field
/// with [`DomainError::for_field`].
pub fn parse_japanese_date(input: &str) -> Result<Date, DomainError> {
    if input.chars().count() > MAX_INPUT_CHARS {
        return Err(format_error());
    }
    let s = normalize(input);
    if let Some((era, rest)) = strip_era(&s) {
        let (year, rest) = match rest.strip_prefix('元') {
            Some(rest) => (1, rest),
            None => take_number(rest, 1, 4).ok_or_else(format_error)?,
        };
        let (month, day) = parse_month_day(rest).ok_or_else(format_error)?;
        let month = u8::try_from(month).map_err(|_| invalid_date())?;
        let day = u8::try_from(day).map_err(|_| invalid_date())?;
        Wareki::new(era, year, month, day).map(Wareki::to_date)
    } else {
        let (year, rest) = take_number(&s, 4, 4).ok_or_else(format_error)?;
        let (month, day) = parse_month_day(rest).ok_or_else(format_error)?;
        // Four digits and two digits always fit; jiff checks the day exists.
        let date = Date::new(year as i16, month as i8, day as i8).map_err(|_| invalid_date())?;
        if date < FIRST_SUPPORTED_DATE {
            return Err(out_of_range());
        }
        Ok(date)
    }
}

/// Folds full-width ASCII variants (U+FF01..U+FF5E) and common dash look-alikes to
/// ASCII and drops white space (including the ideographic space U+3000).
fn normalize(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            _ => c,
        })
        .collect()
}

/// Era prefixes, longest first so that `平成` wins over `平`.
const ERA_PREFIXES: &[(&str, Era)] = &[
    ("明治", Era::Meiji),
    ("大正", Era::Taisho),
    ("昭和", Era::Showa),
    ("平成", Era::Heisei),
    ("令和", Era::Reiwa),
    ("\u{337E}", Era::Meiji),  // ㍾
    ("\u{337D}", Era::Taisho), // ㍽
    ("\u{337C}", Era::Showa),  // ㍼
    ("\u{337B}", Era::Heisei), // ㍻
    ("\u{32FF}", Era::Reiwa),  // ㋿
    ("明", Era::Meiji),
    ("大", Era::Taisho),
    ("昭", Era::Showa),
    ("平", Era::Heisei),
    ("令", Era::Reiwa),
    ("M", Era::Meiji),
    ("T", Era::Taisho),
    ("S", Era::Showa),
    ("H", Era::Heisei),
    ("R", Era::Reiwa),
    ("m", Era::Meiji),
    ("t", Era::Taisho),
    ("s", Era::Showa),
    ("h", Era::Heisei),
    ("r", Era::Reiwa),
];

fn strip_era(s: &str) -> Option<(Era, &str)> {
    ERA_PREFIXES
        .iter()
        .find_map(|(prefix, era)| s.strip_prefix(prefix).map(|rest| (*era, rest)))
}

/// Leading ASCII digits, between `min` and `max` of them, as a number.
fn take_number(s: &str, min: usize, max: usize) -> Option<(u16, &str)> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    if n < min || n > max {
        return None;
    }
    // At most 4 digits, so it fits in u16.
    Some((s[..n].parse().ok()?, &s[n..]))
}

/// The part after the year: `年M月D日`, or `-M-D` / `/M/D` / `.M.D` with one
/// separator used throughout. Month and day take one or two digits.
fn parse_month_day(s: &str) -> Option<(u16, u16)> {
    if let Some(rest) = s.strip_prefix('年') {
        let (month, rest) = take_number(rest, 1, 2)?;
        let rest = rest.strip_prefix('月')?;
        let (day, rest) = take_number(rest, 1, 2)?;
        let rest = rest.strip_prefix('日')?;
        return rest.is_empty().then_some((month, day));
    }
    let sep = s.chars().next().filter(|c| matches!(c, '-' | '/' | '.'))?;
    let (month, rest) = take_number(&s[1..], 1, 2)?;
    let rest = rest.strip_prefix(sep)?;
    let (day, rest) = take_number(rest, 1, 2)?;
    rest.is_empty().then_some((month, day))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wareki::format_wareki;
    use proptest::prelude::*;

    fn d(y: i16, m: i8, day: i8) -> Date {
        Date::new(y, m, day).unwrap()
    }

    fn code(input: &str) -> &'static str {
        match parse_japanese_date(input) {
            Err(DomainError::InvalidValue { code, .. }) => code,
            other => panic!("{input}: {other:?}"),
        }
    }

    #[test]
    fn today_in_tokyo_uses_jst() {
        // 2023-02-02T15:00:00Z is midnight in Tokyo.
        let ts: Timestamp = "2023-02-02T14:59:59Z".parse().unwrap();
        assert_eq!(today_in_tokyo(ts), d(2023, 2, 2));
        let ts: Timestamp = "2023-02-02T15:00:00Z".parse().unwrap();
        assert_eq!(today_in_tokyo(ts), d(2023, 2, 3));
    }

    #[test]
    fn parses_wareki() {
        let cases = [
            ("令和5年2月3日", d(2023, 2, 3)),
            ("令和５年２月３日", d(2023, 2, 3)),
            ("令和 5年 2月 3日", d(2023, 2, 3)),
            ("令和元年5月1日", d(2019, 5, 1)),
            ("令和1年5月1日", d(2019, 5, 1)),
            ("令和05年02月03日", d(2023, 2, 3)),
            ("R5.2.3", d(2023, 2, 3)),
            ("r5.2.3", d(2023, 2, 3)),
            ("Ｒ５．２．３", d(2023, 2, 3)),
            ("R5/2/3", d(2023, 2, 3)),
            ("R5-2-3", d(2023, 2, 3)),
            ("R元.5.1", d(2019, 5, 1)),
            ("R5年2月3日", d(2023, 2, 3)),
            ("令5.2.3", d(2023, 2, 3)),
            ("㋿5年2月3日", d(2023, 2, 3)),
            ("H31.4.30", d(2019, 4, 30)),
            ("平成元年1月8日", d(1989, 1, 8)),
            ("S64.1.7", d(1989, 1, 7)),
            ("昭和元年12月25日", d(1926, 12, 25)),
            ("大正15年12月24日", d(1926, 12, 24)),
            ("大正元年7月30日", d(1912, 7, 30)),
            ("明治45年7月29日", d(1912, 7, 29)),
            ("明治6年1月1日", d(1873, 1, 1)),
            ("M6.1.1", d(1873, 1, 1)),
            ("平成4年2月29日", d(1992, 2, 29)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_japanese_date(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn parses_western() {
        for input in [
            "2023-02-03",
            "2023/2/3",
            "2023.2.3",
            "2023年2月3日",
            "２０２３－０２－０３",
            " 2023-2-3 ",
        ] {
            assert_eq!(parse_japanese_date(input), Ok(d(2023, 2, 3)), "{input}");
        }
        assert_eq!(parse_japanese_date("1873-01-01"), Ok(d(1873, 1, 1)));
    }

    #[test]
    fn rejects_bad_dates() {
        assert_eq!(code("平成31年5月1日"), "date.out_of_era");
        assert_eq!(code("H31.5.1"), "date.out_of_era");
        assert_eq!(code("昭和64年1月8日"), "date.out_of_era");
        assert_eq!(code("大正16年1月1日"), "date.out_of_era");
        assert_eq!(code("平成元年1月7日"), "date.out_of_era");
        assert_eq!(code("令和元年4月30日"), "date.out_of_era");
        assert_eq!(code("明治45年7月30日"), "date.out_of_era");
        assert_eq!(code("令和0年1月1日"), "date.out_of_era");
        assert_eq!(code("令和5年2月30日"), "date.invalid");
        assert_eq!(code("令和5年13月1日"), "date.invalid");
        assert_eq!(code("平成5年2月29日"), "date.invalid");
        assert_eq!(code("2023-02-30"), "date.invalid");
        assert_eq!(code("2023-00-10"), "date.invalid");
        assert_eq!(code("明治5年12月2日"), "date.out_of_range");
        assert_eq!(code("1872-12-31"), "date.out_of_range");
        assert_eq!(code("令和9999年1月1日"), "date.out_of_range");
        for bad in [
            "",
            "令和",
            "令和5年",
            "令和5年2月3",
            "令和5年2月3日です",
            "令和五年二月三日",
            "23-02-03",
            "20230203",
            "2023-02/03",
            "2023-002-03",
            "R5.2",
            "X5.2.3",
            "令和-5年2月3日",
            "2023年2月3",
        ] {
            assert_eq!(code(bad), "date.format", "{bad}");
        }
    }

    #[test]
    fn error_message_never_echoes_input() {
        let e = parse_japanese_date("令和5年2月30日").unwrap_err();
        let p = e.for_field("birth_date").to_problem();
        let json = serde_json::to_string(&p).unwrap();
        assert!(!json.contains("令和5"));
        assert!(!json.contains("30"));
        assert_eq!(p.status, 422);
        assert_eq!(p.errors[0].field, "birth_date");
    }

    /// Days from 1873-01-01 to 2100-12-31 inclusive.
    const SPAN_DAYS: i32 = 83_275;

    fn date_in_range() -> impl Strategy<Value = Date> {
        (0..SPAN_DAYS).prop_map(|n| {
            FIRST_SUPPORTED_DATE
                .checked_add(jiff::Span::new().days(n))
                .unwrap()
        })
    }

    #[test]
    fn span_constant_is_right() {
        let last = FIRST_SUPPORTED_DATE
            .checked_add(jiff::Span::new().days(SPAN_DAYS - 1))
            .unwrap();
        assert_eq!(last, d(2100, 12, 31));
    }

    proptest! {
        #[test]
        fn wareki_round_trips(date in date_in_range()) {
            let long = format_wareki(date).unwrap();
            prop_assert_eq!(parse_japanese_date(&long), Ok(date), "{}", long);
            let short = Wareki::from_date(date).unwrap().to_short_string();
            prop_assert_eq!(parse_japanese_date(&short), Ok(date), "{}", short);
            let iso = date.to_string();
            prop_assert_eq!(parse_japanese_date(&iso), Ok(date), "{}", iso);
        }

        #[test]
        fn never_panics_on_any_string(s in any::<String>()) {
            let _ = parse_japanese_date(&s);
        }

        #[test]
        fn never_panics_on_date_like_strings(
            s in "[明治大正昭和平成令元MTSHRr㋿0-9０-９年月日./\\-－ 　]{0,20}"
        ) {
            if let Ok(date) = parse_japanese_date(&s) {
                // Anything accepted is in range and formattable.
                prop_assert!(format_wareki(date).is_ok());
            }
        }
    }
}

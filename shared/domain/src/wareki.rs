//! 和暦 (Japanese era calendar): eras, conversion and formatting.
//!
//! Era first days follow the dates of each 改元 as used by government date
//! conversion: 明治 1868-10-23, 大正 1912-07-30, 昭和 1926-12-25, 平成 1989-01-08,
//! 令和 2019-05-01. (明治改元 was declared retroactive to the lunisolar new year of
//! 1868, but that only matters for dates we refuse anyway, see below.)
//!
//! Japan used a lunisolar calendar until 明治5年12月2日; the next day was
//! 明治6年1月1日 = 1873-01-01 Gregorian. Earlier 明治 dates written in 和暦 are
//! lunisolar dates and cannot be converted by arithmetic, so this module refuses
//! every date before [`FIRST_SUPPORTED_DATE`] rather than return a wrong day.

use std::fmt;

use jiff::civil::Date;

use crate::error::DomainError;

/// 明治6年1月1日, the first day of the Gregorian calendar in Japan.
pub const FIRST_SUPPORTED_DATE: Date = Date::constant(1873, 1, 1);

/// A Japanese era (元号) since 明治.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Era {
    /// 明治
    Meiji,
    /// 大正
    Taisho,
    /// 昭和
    Showa,
    /// 平成
    Heisei,
    /// 令和
    Reiwa,
}

impl Era {
    pub const ALL: [Era; 5] = [Era::Meiji, Era::Taisho, Era::Showa, Era::Heisei, Era::Reiwa];

    /// Kanji name, e.g. `"令和"`.
    pub const fn name(self) -> &'static str {
        match self {
            Era::Meiji => "明治",
            Era::Taisho => "大正",
            Era::Showa => "昭和",
            Era::Heisei => "平成",
            Era::Reiwa => "令和",
        }
    }

    /// The Latin letter used in short forms such as `R5.2.3`.
    pub const fn letter(self) -> char {
        match self {
            Era::Meiji => 'M',
            Era::Taisho => 'T',
            Era::Showa => 'S',
            Era::Heisei => 'H',
            Era::Reiwa => 'R',
        }
    }

    /// First day of the era (the day of 改元).
    pub const fn first_day(self) -> Date {
        match self {
            Era::Meiji => Date::constant(1868, 10, 23),
            Era::Taisho => Date::constant(1912, 7, 30),
            Era::Showa => Date::constant(1926, 12, 25),
            Era::Heisei => Date::constant(1989, 1, 8),
            Era::Reiwa => Date::constant(2019, 5, 1),
        }
    }

    /// Last day of the era; `None` for the current era.
    pub const fn last_day(self) -> Option<Date> {
        match self {
            Era::Meiji => Some(Date::constant(1912, 7, 29)),
            Era::Taisho => Some(Date::constant(1926, 12, 24)),
            Era::Showa => Some(Date::constant(1989, 1, 7)),
            Era::Heisei => Some(Date::constant(2019, 4, 30)),
            Era::Reiwa => None,
        }
    }

    /// Gregorian year of the era's first year (元年).
    fn first_year(self) -> i16 {
        self.first_day().year()
    }

    fn contains(self, date: Date) -> bool {
        date >= self.first_day() && self.last_day().is_none_or(|last| date <= last)
    }

    /// The era a date falls in, `None` before 明治.
    pub fn of(date: Date) -> Option<Era> {
        Era::ALL.into_iter().rev().find(|e| date >= e.first_day())
    }
}

impl fmt::Display for Era {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A valid 和暦 date on or after [`FIRST_SUPPORTED_DATE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Wareki {
    era: Era,
    year: u16,
    month: u8,
    day: u8,
}

impl Wareki {
    /// Validates an era date: the day must exist, lie inside the era and on or after
    /// [`FIRST_SUPPORTED_DATE`]. Year 1 is 元年.
    pub fn new(era: Era, year: u16, month: u8, day: u8) -> Result<Wareki, DomainError> {
        if year == 0 {
            return Err(out_of_era());
        }
        let gregorian = i32::from(era.first_year()) + i32::from(year) - 1;
        let gregorian = i16::try_from(gregorian).map_err(|_| out_of_range())?;
        let (Ok(m), Ok(d)) = (i8::try_from(month), i8::try_from(day)) else {
            return Err(invalid_date());
        };
        let date = Date::new(gregorian, m, d).map_err(|_| {
            // jiff refuses years past 9999 and impossible days alike; tell them apart.
            if gregorian > Date::MAX.year() {
                out_of_range()
            } else {
                invalid_date()
            }
        })?;
        if !era.contains(date) {
            return Err(out_of_era());
        }
        if date < FIRST_SUPPORTED_DATE {
            return Err(out_of_range());
        }
        Ok(Wareki {
            era,
            year,
            month,
            day,
        })
    }

    /// The 和暦 form of a date; refuses dates before [`FIRST_SUPPORTED_DATE`].
    pub fn from_date(date: Date) -> Result<Wareki, DomainError> {
        if date < FIRST_SUPPORTED_DATE {
            return Err(out_of_range());
        }
        let era = Era::of(date).ok_or_else(out_of_range)?;
        // Both casts are in range: the date is on or after the era's first day.
        Ok(Wareki {
            era,
            year: (date.year() - era.first_year() + 1) as u16,
            month: date.month() as u8,
            day: date.day() as u8,
        })
    }

    pub fn to_date(self) -> Date {
        // Validated on construction, so this cannot fail.
        Date::constant(
            era_year_to_gregorian(self.era, self.year),
            self.month as i8,
            self.day as i8,
        )
    }

    pub fn era(self) -> Era {
        self.era
    }
    /// Year within the era, 1 = 元年.
    pub fn year(self) -> u16 {
        self.year
    }
    pub fn month(self) -> u8 {
        self.month
    }
    pub fn day(self) -> u8 {
        self.day
    }

    /// Short form with the era letter, e.g. `R5.2.3` (no 元年 here: `R1.5.1`).
    pub fn to_short_string(self) -> String {
        format!(
            "{}{}.{}.{}",
            self.era.letter(),
            self.year,
            self.month,
            self.day
        )
    }
}

fn era_year_to_gregorian(era: Era, year: u16) -> i16 {
    era.first_year() + year as i16 - 1
}

impl fmt::Display for Wareki {
    /// `令和5年2月3日`, with `元年` for year 1 as in official documents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.era.name())?;
        if self.year == 1 {
            f.write_str("元")?;
        } else {
            write!(f, "{}", self.year)?;
        }
        write!(f, "年{}月{}日", self.month, self.day)
    }
}

/// Formats a date as 和暦, e.g. `令和5年2月3日`; refuses dates before 1873-01-01.
pub fn format_wareki(date: Date) -> Result<String, DomainError> {
    Wareki::from_date(date).map(|w| w.to_string())
}

pub(crate) fn format_error() -> DomainError {
    DomainError::InvalidValue {
        code: "date.format",
        message: "日付の形式が正しくありません。（例：2023-02-03、令和5年2月3日）",
    }
}

pub(crate) fn invalid_date() -> DomainError {
    DomainError::InvalidValue {
        code: "date.invalid",
        message: "存在しない日付です。",
    }
}

pub(crate) fn out_of_era() -> DomainError {
    DomainError::InvalidValue {
        code: "date.out_of_era",
        message: "元号の期間外の日付です。",
    }
}

pub(crate) fn out_of_range() -> DomainError {
    DomainError::InvalidValue {
        code: "date.out_of_range",
        message: "明治6年（1873年）1月1日以降の日付を入力してください。",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i16, m: i8, day: i8) -> Date {
        Date::new(y, m, day).unwrap()
    }

    #[test]
    fn formats() {
        assert_eq!(format_wareki(d(2023, 2, 3)).unwrap(), "令和5年2月3日");
        assert_eq!(format_wareki(d(2019, 5, 1)).unwrap(), "令和元年5月1日");
        assert_eq!(format_wareki(d(2019, 4, 30)).unwrap(), "平成31年4月30日");
        assert_eq!(format_wareki(d(1989, 1, 7)).unwrap(), "昭和64年1月7日");
        assert_eq!(format_wareki(d(1989, 1, 8)).unwrap(), "平成元年1月8日");
        assert_eq!(format_wareki(d(1926, 12, 25)).unwrap(), "昭和元年12月25日");
        assert_eq!(format_wareki(d(1926, 12, 24)).unwrap(), "大正15年12月24日");
        assert_eq!(format_wareki(d(1912, 7, 30)).unwrap(), "大正元年7月30日");
        assert_eq!(format_wareki(d(1912, 7, 29)).unwrap(), "明治45年7月29日");
        assert_eq!(format_wareki(d(1873, 1, 1)).unwrap(), "明治6年1月1日");
        assert!(format_wareki(d(1872, 12, 31)).is_err());
        assert_eq!(
            Wareki::from_date(d(2023, 2, 3)).unwrap().to_short_string(),
            "R5.2.3"
        );
    }

    #[test]
    fn era_table_is_contiguous() {
        for pair in Era::ALL.windows(2) {
            let last = pair[0].last_day().unwrap();
            assert_eq!(last.tomorrow().unwrap(), pair[1].first_day());
        }
        assert_eq!(Era::of(d(1868, 10, 22)), None);
        assert_eq!(Era::of(d(1868, 10, 23)), Some(Era::Meiji));
        assert_eq!(Era::of(d(9999, 12, 31)), Some(Era::Reiwa));
    }

    #[test]
    fn new_validates() {
        let code = |r: Result<Wareki, DomainError>| match r {
            Err(DomainError::InvalidValue { code, .. }) => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(Wareki::new(Era::Heisei, 31, 5, 1)), "date.out_of_era");
        assert_eq!(code(Wareki::new(Era::Reiwa, 0, 5, 1)), "date.out_of_era");
        assert_eq!(code(Wareki::new(Era::Reiwa, 5, 2, 30)), "date.invalid");
        assert_eq!(code(Wareki::new(Era::Reiwa, 5, 200, 1)), "date.invalid");
        assert_eq!(
            code(Wareki::new(Era::Reiwa, 9000, 1, 1)),
            "date.out_of_range"
        );
        assert_eq!(code(Wareki::new(Era::Meiji, 5, 12, 2)), "date.out_of_range");
        assert_eq!(
            Wareki::new(Era::Reiwa, 5, 2, 3).unwrap().to_date(),
            d(2023, 2, 3)
        );
    }
}

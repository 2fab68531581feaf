//! Age in whole years, the Japanese way.
//!
//! **Legal age** (法律上の年齢): 年齢計算ニ関スル法律 counts age from the day of
//! birth and applies 民法 第143条, so a year of age is completed at the end of the
//! day before the birthday. Someone born on 1961-06-02 is 65 on 2026-06-01; someone
//! born on 29 February completes a year at the end of 28 February in common years.
//! This is what "reaches 65" (65歳に達した日 = 誕生日の前日) means for 介護保険
//! 第1号被保険者, 国民年金 (20歳 / 60歳), 学校教育法 第17条 and 児童手当法.
//!
//! **Birthday age**: the year is added on the birthday itself (29 February births:
//! on 1 March in common years). 後期高齢者医療 starts on the 75th birthday, so its
//! rules use this basis.

use jiff::civil::Date;

use crate::rule::{AgeBasis, AgeOn};

/// Age counting a year on the birthday itself; `None` when `on` is before birth.
pub fn birthday_age(birth: Date, on: Date) -> Option<u32> {
    if on < birth {
        return None;
    }
    let mut years = i32::from(on.year()) - i32::from(birth.year());
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).ok()
}

/// Legal age on day `on` (at its end): the birthday age of the next day.
pub fn legal_age(birth: Date, on: Date) -> Option<u32> {
    if on < birth {
        return None;
    }
    // The last representable day has no tomorrow; nobody lives that long anyway.
    let next = on.tomorrow().ok()?;
    birthday_age(birth, next)
}

/// The 3月31日 ending the fiscal year (年度, April–March) before the one containing `d`.
pub fn previous_march_31(d: Date) -> Option<Date> {
    let year = if d.month() >= 4 {
        d.year()
    } else {
        d.year().checked_sub(1)?
    };
    Date::new(year, 3, 31).ok()
}

/// Age of someone born on `birth` for a rule with this basis and reference day,
/// given the event date. `None` when born after the event date.
///
/// A child born between the previous 3月31日 and the event date is 0 at the
/// previous 3月31日: not school age, but within 児童手当's "until the first 3月31日
/// after 18" — which is what the law means for a newborn.
pub fn age_for(birth: Date, event: Date, basis: AgeBasis, on: AgeOn) -> Option<u32> {
    if birth > event {
        return None;
    }
    let day = match on {
        AgeOn::Event => event,
        AgeOn::PreviousMarch31 => previous_march_31(event)?,
    };
    if day < birth {
        return Some(0);
    }
    match basis {
        AgeBasis::Legal => legal_age(birth, day),
        AgeBasis::Birthday => birthday_age(birth, day),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn legal_age_turns_the_day_before_the_birthday() {
        let b = date(1961, 6, 2);
        assert_eq!(legal_age(b, date(2026, 5, 31)), Some(64));
        assert_eq!(legal_age(b, date(2026, 6, 1)), Some(65));
        assert_eq!(birthday_age(b, date(2026, 6, 1)), Some(64));
        assert_eq!(birthday_age(b, date(2026, 6, 2)), Some(65));
    }

    #[test]
    fn leap_day_births() {
        let b = date(2008, 2, 29);
        assert_eq!(legal_age(b, date(2026, 2, 27)), Some(17));
        assert_eq!(legal_age(b, date(2026, 2, 28)), Some(18));
        assert_eq!(birthday_age(b, date(2026, 2, 28)), Some(17));
        assert_eq!(birthday_age(b, date(2026, 3, 1)), Some(18));
    }

    #[test]
    fn before_birth_has_no_age() {
        assert_eq!(legal_age(date(2026, 6, 2), date(2026, 6, 1)), None);
        assert_eq!(legal_age(date(2026, 6, 1), date(2026, 6, 1)), Some(0));
    }

    #[test]
    fn previous_fiscal_year_end() {
        assert_eq!(previous_march_31(date(2026, 4, 1)), Some(date(2026, 3, 31)));
        assert_eq!(
            previous_march_31(date(2026, 3, 31)),
            Some(date(2025, 3, 31))
        );
    }
}

//! Money: fees (手数料) and payments, in whole yen.
//!
//! Yen has no minor unit in practice, so amounts are integers; no floating point
//! ever touches money. Amounts are never negative: a refund is its own record, not
//! a negative amount.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::DomainError;

/// A non-negative amount of yen (円).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
#[serde(transparent)]
pub struct Yen(i64);

impl Yen {
    pub const ZERO: Yen = Yen(0);

    /// `InvalidValue { code: "amount.negative" }` for a negative amount.
    pub fn new(amount: i64) -> Result<Yen, DomainError> {
        if amount < 0 {
            Err(DomainError::InvalidValue {
                code: "amount.negative",
                message: "金額は0円以上で入力してください。",
            })
        } else {
            Ok(Yen(amount))
        }
    }

    /// An amount known at compile time (never negative: `u32`).
    pub const fn from_u32(amount: u32) -> Yen {
        Yen(amount as i64)
    }

    pub const fn value(self) -> i64 {
        self.0
    }

    /// `None` on overflow.
    pub fn checked_add(self, other: Yen) -> Option<Yen> {
        self.0.checked_add(other.0).map(Yen)
    }

    /// `None` if the result would be negative.
    pub fn checked_sub(self, other: Yen) -> Option<Yen> {
        self.0.checked_sub(other.0).filter(|v| *v >= 0).map(Yen)
    }

    /// Unit price times a count (e.g. 3 copies of 住民票 at 300円). `None` on overflow.
    pub fn checked_mul(self, count: u32) -> Option<Yen> {
        self.0.checked_mul(i64::from(count)).map(Yen)
    }

    /// Sum of several amounts; `None` on overflow.
    pub fn checked_sum<I: IntoIterator<Item = Yen>>(amounts: I) -> Option<Yen> {
        amounts
            .into_iter()
            .try_fold(Yen::ZERO, |acc, y| acc.checked_add(y))
    }
}

impl fmt::Display for Yen {
    /// `1,234円`: comma-grouped, as on Japanese receipts and fee tables.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out.push('円');
        f.write_str(&out)
    }
}

impl TryFrom<i64> for Yen {
    type Error = DomainError;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        Yen::new(v)
    }
}

impl From<Yen> for i64 {
    fn from(y: Yen) -> i64 {
        y.0
    }
}

impl<'de> Deserialize<'de> for Yen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        Yen::new(v).map_err(|_| serde::de::Error::custom("amount must not be negative"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn yen(v: i64) -> Yen {
        Yen::new(v).unwrap()
    }

    #[test]
    fn display_groups_thousands() {
        assert_eq!(yen(0).to_string(), "0円");
        assert_eq!(yen(300).to_string(), "300円");
        assert_eq!(yen(1234).to_string(), "1,234円");
        assert_eq!(yen(100_000).to_string(), "100,000円");
        assert_eq!(yen(1_234_567).to_string(), "1,234,567円");
        assert_eq!(yen(i64::MAX).to_string(), "9,223,372,036,854,775,807円");
    }

    #[test]
    fn rejects_negative() {
        assert!(Yen::new(-1).is_err());
        assert_eq!(
            Yen::new(-1).unwrap_err().field_error("fee").unwrap().code,
            "amount.negative"
        );
    }

    #[test]
    fn arithmetic() {
        assert_eq!(yen(300).checked_mul(3), Some(yen(900)));
        assert_eq!(yen(300).checked_add(yen(50)), Some(yen(350)));
        assert_eq!(yen(300).checked_sub(yen(300)), Some(Yen::ZERO));
        assert_eq!(yen(300).checked_sub(yen(301)), None);
        assert_eq!(yen(i64::MAX).checked_add(yen(1)), None);
        assert_eq!(yen(i64::MAX).checked_mul(2), None);
        assert_eq!(Yen::checked_sum([yen(1), yen(2), yen(3)]), Some(yen(6)));
    }

    #[test]
    fn serde_as_integer() {
        assert_eq!(serde_json::to_string(&yen(1234)).unwrap(), "1234");
        assert_eq!(serde_json::from_str::<Yen>("1234").unwrap(), yen(1234));
        assert!(serde_json::from_str::<Yen>("-1").is_err());
        assert!(serde_json::from_str::<Yen>("\"1234\"").is_err());
        assert!(serde_json::from_str::<Yen>("12.5").is_err());
    }

    proptest! {
        #[test]
        fn display_is_digits_with_commas(v in 0i64..=i64::MAX) {
            let s = yen(v).to_string();
            let plain: String = s.trim_end_matches('円').chars().filter(|c| *c != ',').collect();
            prop_assert_eq!(plain.parse::<i64>().unwrap(), v);
        }
    }
}

//! Tenants: one municipality (or prefecture), identified by its
//! 全国地方公共団体コード (nationwide local public entity code, JIS X 0401/0402).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::DomainError;

/// Separator between the parts of an item-store key.
pub const KEY_SEPARATOR: char = '#';

/// A tenant, identified by its 6-digit 全国地方公共団体コード: 2 digits prefecture,
/// 3 digits municipality, 1 check digit.
///
/// Only the form and the check digit are validated, not membership in the official
/// list: the list changes with mergers (市町村合併), and an unknown but well-formed code
/// simply has no configuration and is rejected where configuration is looked up.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId([u8; 6]);

impl TenantId {
    /// Parses a 6-digit code (ASCII digits only, no spaces) and checks its check digit.
    pub fn parse(s: &str) -> Result<TenantId, DomainError> {
        let bytes: [u8; 6] = s
            .as_bytes()
            .try_into()
            .map_err(|_| DomainError::InvalidTenant)?;
        if !bytes.iter().all(u8::is_ascii_digit) {
            return Err(DomainError::InvalidTenant);
        }
        let first5: [u8; 5] = [bytes[0], bytes[1], bytes[2], bytes[3], bytes[4]];
        if check_digit(&first5) != bytes[5] - b'0' {
            return Err(DomainError::InvalidTenant);
        }
        Ok(TenantId(bytes))
    }

    /// Builds the code from the first 5 digits (the 5-digit 団体コード often found
    /// in older data), computing the check digit. `None` unless 5 ASCII digits.
    pub fn from_five_digits(s: &str) -> Option<TenantId> {
        let d: [u8; 5] = s.as_bytes().try_into().ok()?;
        if !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(TenantId([
            d[0],
            d[1],
            d[2],
            d[3],
            d[4],
            b'0' + check_digit(&d),
        ]))
    }

    pub fn as_str(&self) -> &str {
        // Invariant: constructors only store ASCII digits.
        std::str::from_utf8(&self.0).expect("tenant code is ASCII")
    }

    /// The 2-digit 都道府県コード (prefecture) part.
    pub fn prefecture_code(&self) -> &str {
        &self.as_str()[..2]
    }

    /// An item-store key for this tenant: `"{tenant}#{part}#{part}..."`.
    ///
    /// Every key starts with the tenant so that no partition, prefix query or index
    /// can ever span two municipalities; building keys only through this function
    /// keeps that invariant in one place. Parts should not contain `#`; they are not
    /// escaped, and a part with `#` still cannot escape this tenant's key space.
    pub fn key(&self, parts: &[&str]) -> String {
        let len = 6 + parts.iter().map(|p| p.len() + 1).sum::<usize>();
        let mut key = String::with_capacity(len);
        key.push_str(self.as_str());
        for part in parts {
            key.push(KEY_SEPARATOR);
            key.push_str(part);
        }
        key
    }
}

/// Check digit of a 全国地方公共団体コード (総務省 rule): weights 6,5,4,3,2 on the
/// first five digits, S = weighted sum, check = last digit of 11 − (S mod 11)
/// (so a remainder of 0 gives 1 and a remainder of 1 gives 0).
/// `digits` are ASCII digits.
fn check_digit(digits: &[u8; 5]) -> u8 {
    let sum: u32 = digits
        .iter()
        .zip([6u32, 5, 4, 3, 2])
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    ((11 - sum % 11) % 10) as u8
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TenantId({})", self.as_str())
    }
}

impl FromStr for TenantId {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TenantId::parse(s)
    }
}

impl TryFrom<&str> for TenantId {
    type Error = DomainError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        TenantId::parse(s)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Serialize for TenantId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Borrowing would fail for escaped JSON strings; a short owned string is fine.
        let s = String::deserialize(d)?;
        TenantId::parse(&s).map_err(|_| serde::de::Error::custom("invalid tenant code"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Codes checked by hand against the 総務省 list.
    const KNOWN: &[(&str, &str)] = &[
        ("131016", "千代田区"),
        ("011002", "札幌市"),
        ("011011", "札幌市中央区"), // remainder 0 -> check digit 1
        ("272060", "泉大津市"),     // remainder 1 -> check digit 0
        ("132012", "八王子市"),
        ("131130", "渋谷区"),
        ("141003", "横浜市"),
        ("271004", "大阪市"),
        ("130001", "東京都"),
        ("010006", "北海道"),
        ("470007", "沖縄県"),
    ];

    #[test]
    fn known_codes_are_valid() {
        for (code, name) in KNOWN {
            let t = TenantId::parse(code).unwrap_or_else(|_| panic!("{name} {code}"));
            assert_eq!(t.as_str(), *code);
            assert_eq!(t.to_string(), *code);
            assert_eq!(TenantId::from_five_digits(&code[..5]), Some(t));
        }
    }

    #[test]
    fn invalid_codes_are_rejected() {
        for bad in [
            "131017",
            "13101",
            "1310160",
            "",
            "13101a",
            "１３１０１６",
            " 131016",
            "13101６",
        ] {
            assert_eq!(
                TenantId::parse(bad),
                Err(DomainError::InvalidTenant),
                "{bad}"
            );
        }
        assert_eq!(TenantId::from_five_digits("1310"), None);
        assert_eq!(TenantId::from_five_digits("1310x"), None);
    }

    #[test]
    fn key_starts_with_tenant() {
        let t: TenantId = "272060".parse().unwrap();
        assert_eq!(t.key(&["FORM", "slug"]), "272060#FORM#slug");
        assert_eq!(t.key(&[]), "272060");
        assert_eq!(t.prefecture_code(), "27");
    }

    #[test]
    fn serde_as_string_and_validates() {
        let t = TenantId::parse("131016").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"131016\"");
        assert_eq!(serde_json::from_str::<TenantId>("\"131016\"").unwrap(), t);
        assert!(serde_json::from_str::<TenantId>("\"131017\"").is_err());
        assert!(serde_json::from_str::<TenantId>("131016").is_err());
    }

    proptest! {
        #[test]
        fn exactly_one_check_digit_is_valid(first5 in "[0-9]{5}") {
            let valid: Vec<TenantId> = (0..10)
                .filter_map(|d| TenantId::parse(&format!("{first5}{d}")).ok())
                .collect();
            prop_assert_eq!(valid.len(), 1);
            let t = valid[0];
            prop_assert_eq!(TenantId::from_five_digits(&first5), Some(t));
            let shown = t.to_string();
            prop_assert_eq!(shown.as_str(), t.as_str());
            prop_assert_eq!(TenantId::parse(&shown), Ok(t));
            let json = serde_json::to_string(&t).unwrap();
            prop_assert_eq!(serde_json::from_str::<TenantId>(&json).unwrap(), t);
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = TenantId::parse(&s);
            let _ = TenantId::from_five_digits(&s);
        }
    }
}

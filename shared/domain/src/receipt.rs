//! 受付番号 (receipt numbers): what a citizen quotes at the counter or over the phone.
//!
//! Shape: 8 random characters and 1 check character, shown as `K7MQ-4XP9-T`.
//!
//! Alphabet (23 characters): `2 3 4 5 6 7 8 9 A C E F H J K M P R T U W X Y`.
//! Of every group of look-alikes at most one member is kept, so that whatever a reader
//! sees, it is one symbol:
//! - `0 O D Q`: all dropped (0 and O are read alike, D and Q pass for O in handwriting);
//! - `1 I L`: all dropped; `7` stays (no other 7-like symbol remains);
//! - `2`/`Z`, `5`/`S`, `8`/`B`, `6`/`G`, `U`/`V`: the first stays;
//! - `N` is dropped: エム (M) and エヌ (N) are confused on the phone.
//!
//! 23 is prime, which makes the check character strong: with weights 9, 8, …, 2 on the
//! 8 data characters and 1 on the check character, the weighted sum is 0 mod 23. A
//! single changed character changes the sum by `w × d` and an adjacent transposition by
//! `(wᵢ − wᵢ₊₁) × d = d`, with `0 < w < 23` and `0 < |d| < 23`: never a multiple of
//! the prime. So every single-character error and every adjacent transposition
//! (including one with the check character) is detected.
//!
//! 23⁸ ≈ 7.8 × 10¹⁰ numbers: collisions within a tenant are rare, and the caller makes
//! them impossible with a conditional put and a retry.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::DomainError;
use crate::form::text::fold_width;

/// The alphabet, by value: `ALPHABET[v]` is the character of value `v`.
pub const ALPHABET: &[u8; 23] = b"23456789ACEFHJKMPRTUWXY";
const BASE: u64 = 23;
const DATA_CHARS: usize = 8;
/// Length of the display form `XXXX-XXXX-X`.
const LEN: usize = 11;
/// Weights of the 8 data characters; the check character has weight 1.
const WEIGHTS: [u32; DATA_CHARS] = [9, 8, 7, 6, 5, 4, 3, 2];

/// A receipt number (受付番号), always valid; stored and shown as `XXXX-XXXX-X`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReceiptNumber([u8; LEN]);

fn value_of(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

fn check_value(data: &[u32; DATA_CHARS]) -> u32 {
    let sum: u32 = data.iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
    (23 - sum % 23) % 23
}

fn invalid() -> DomainError {
    DomainError::InvalidValue {
        code: "receipt.invalid",
        message: "受付番号が正しくありません。入力内容をご確認ください。",
    }
}

impl ReceiptNumber {
    /// The number made from `random` (the caller supplies the entropy, so this stays
    /// deterministic and testable). Uses `random mod 23⁸`; the bias is below 10⁻⁸.
    pub fn from_random(random: u64) -> Self {
        let mut r = random % BASE.pow(DATA_CHARS as u32);
        let mut data = [0u32; DATA_CHARS];
        for slot in data.iter_mut().rev() {
            *slot = (r % BASE) as u32;
            r /= BASE;
        }
        Self::from_values(&data)
    }

    fn from_values(data: &[u32; DATA_CHARS]) -> Self {
        let c = |v: u32| ALPHABET[v as usize];
        let check = check_value(data);
        ReceiptNumber([
            c(data[0]),
            c(data[1]),
            c(data[2]),
            c(data[3]),
            b'-',
            c(data[4]),
            c(data[5]),
            c(data[6]),
            c(data[7]),
            b'-',
            c(check),
        ])
    }

    /// Parses a number as typed or read out: any case, full-width characters, spaces
    /// and hyphens (or dash look-alikes) anywhere. Errors are
    /// [`DomainError::InvalidValue`] with code `receipt.invalid` (wrong length,
    /// a character outside the alphabet, or a wrong check character).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s.chars().count() > 64 {
            return Err(invalid());
        }
        let mut values = Vec::with_capacity(DATA_CHARS + 1);
        for c in fold_width(s).chars() {
            match c {
                ' ' | '-' | '_' => continue,
                c if c.is_ascii() => {
                    values.push(value_of(c.to_ascii_uppercase() as u8).ok_or_else(invalid)?)
                }
                _ => return Err(invalid()),
            }
            if values.len() > DATA_CHARS + 1 {
                return Err(invalid());
            }
        }
        let Ok(all) = <[u32; DATA_CHARS + 1]>::try_from(values) else {
            return Err(invalid());
        };
        let mut data = [0u32; DATA_CHARS];
        data.copy_from_slice(&all[..DATA_CHARS]);
        if check_value(&data) != all[DATA_CHARS] {
            return Err(invalid());
        }
        Ok(Self::from_values(&data))
    }

    /// The display form, e.g. `K7MQ-4XP9-T`: also the stored form.
    pub fn as_str(&self) -> &str {
        // Invariant: built only from ALPHABET and '-', all ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for ReceiptNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ReceiptNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReceiptNumber({})", self.as_str())
    }
}

impl FromStr for ReceiptNumber {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        Self::parse(s)
    }
}

impl Serialize for ReceiptNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReceiptNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(|_| serde::de::Error::custom("invalid receipt number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The 9 symbols of a number, hyphens removed.
    fn symbols(r: &ReceiptNumber) -> Vec<u8> {
        r.as_str().bytes().filter(|b| *b != b'-').collect()
    }

    fn from_symbols(s: &[u8]) -> String {
        String::from_utf8(s.to_vec()).unwrap()
    }

    #[test]
    fn alphabet_has_no_look_alikes_and_is_prime() {
        assert_eq!(ALPHABET.len(), 23);
        for bad in b"01ODQILZSBGVN" {
            assert!(!ALPHABET.contains(bad), "{}", *bad as char);
        }
        let mut sorted = ALPHABET.to_vec();
        sorted.dedup();
        assert_eq!(sorted.len(), 23);
        assert!((2..23).all(|d| 23 % d != 0));
    }

    #[test]
    fn shape_and_determinism() {
        let r = ReceiptNumber::from_random(0);
        assert_eq!(r.as_str(), "2222-2222-2");
        let r = ReceiptNumber::from_random(123_456_789);
        assert_eq!(r, ReceiptNumber::from_random(123_456_789));
        let s = r.as_str();
        assert_eq!(s.len(), 11);
        assert_eq!(&s[4..5], "-");
        assert_eq!(&s[9..10], "-");
        assert_eq!(ReceiptNumber::parse(s), Ok(r));
        assert_ne!(ReceiptNumber::from_random(1), ReceiptNumber::from_random(2));
    }

    #[test]
    fn known_value() {
        // data values 0,0,0,0,0,0,0,1 ("2222-2223"): sum = 1×2 = 2, check = 21 → 'X'.
        let r = ReceiptNumber::from_random(1);
        assert_eq!(r.as_str(), "2222-2223-X");
    }

    #[test]
    fn parse_is_tolerant_of_how_people_type() {
        let r = ReceiptNumber::from_random(987_654_321_012);
        let s = r.as_str().to_owned();
        let lower = s.to_lowercase();
        let compact = s.replace('-', "");
        let spaced = s.replace('-', " ");
        let full: String = s
            .chars()
            .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap())
            .collect();
        for input in [
            &s,
            &lower,
            &compact,
            &spaced,
            &full,
            &format!("  {s}\u{3000}"),
        ] {
            assert_eq!(ReceiptNumber::parse(input), Ok(r), "{input}");
        }
        let dashed = s.replace('-', "ー");
        assert_eq!(ReceiptNumber::parse(&dashed), Ok(r));
    }

    #[test]
    fn parse_refuses_garbage() {
        for bad in [
            "",
            "2222-2222",
            "2222-2222-22",
            "0222-2222-2",
            "2222-2222-3",
            "あ",
            "2222-2222-2-2222",
        ] {
            assert!(ReceiptNumber::parse(bad).is_err(), "{bad}");
        }
        let e = ReceiptNumber::parse("2222-2222-3").unwrap_err();
        let fe = e.field_error("receipt_number").unwrap();
        assert_eq!(fe.code, "receipt.invalid");
    }

    #[test]
    fn serde_as_string() {
        let r = ReceiptNumber::from_random(42);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, format!("\"{}\"", r.as_str()));
        assert_eq!(serde_json::from_str::<ReceiptNumber>(&json).unwrap(), r);
        assert!(serde_json::from_str::<ReceiptNumber>("\"2222-2222-3\"").is_err());
    }

    #[test]
    fn check_math_is_exhaustively_sound() {
        // The detection argument, checked for every weight pair and difference: a
        // substitution changes the sum by w·d, a transposition of neighbours by
        // (wᵢ − wᵢ₊₁)·d; neither may be 0 mod 23.
        let weights: Vec<u32> = WEIGHTS.iter().copied().chain([1]).collect();
        for d in 1..23u32 {
            for &w in &weights {
                assert_ne!((w * d) % 23, 0);
            }
            for pair in weights.windows(2) {
                let diff = pair[0].abs_diff(pair[1]);
                assert_ne!((diff * d) % 23, 0);
            }
        }
    }

    proptest! {
        #[test]
        fn every_single_substitution_is_caught(random in any::<u64>()) {
            let r = ReceiptNumber::from_random(random);
            let sym = symbols(&r);
            for pos in 0..sym.len() {
                for &c in ALPHABET.iter() {
                    if c == sym[pos] {
                        continue;
                    }
                    let mut bad = sym.clone();
                    bad[pos] = c;
                    prop_assert!(ReceiptNumber::parse(&from_symbols(&bad)).is_err());
                }
            }
        }

        #[test]
        fn every_adjacent_transposition_is_caught(random in any::<u64>()) {
            let r = ReceiptNumber::from_random(random);
            let sym = symbols(&r);
            for pos in 0..sym.len() - 1 {
                if sym[pos] == sym[pos + 1] {
                    continue;
                }
                let mut bad = sym.clone();
                bad.swap(pos, pos + 1);
                prop_assert!(ReceiptNumber::parse(&from_symbols(&bad)).is_err());
            }
        }

        #[test]
        fn round_trips(random in any::<u64>()) {
            let r = ReceiptNumber::from_random(random);
            prop_assert_eq!(ReceiptNumber::parse(r.as_str()), Ok(r));
            prop_assert_eq!(r.to_string().parse::<ReceiptNumber>(), Ok(r));
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = ReceiptNumber::parse(&s);
        }
    }
}

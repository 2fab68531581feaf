//! 個人番号 (My Number): the 12-digit individual number.
//!
//! The last digit is a check digit defined by 行政手続における特定の個人を識別するための
//! 番号の利用等に関する法律施行令 第8条:
//!
//! - `Pn` is the n-th digit of the first 11 digits, counted from the right (`P1` is the
//!   11th digit from the left);
//! - `Qn` is `n + 1` for `1 ≤ n ≤ 6` and `n − 5` for `7 ≤ n ≤ 11`;
//! - with `r = (Σ Pn × Qn) mod 11`, the check digit is `0` when `r ≤ 1`, else `11 − r`.
//!
//! A My Number is 特定個人情報: nothing here ever puts one in an error or a log line.
//! Callers show it masked ([`mask_my_number`]) unless a named permission says otherwise.

use crate::form::text::fold_width;

/// Number of digits of a My Number.
pub const MY_NUMBER_DIGITS: usize = 12;

/// Longest raw input looked at; a real one with separators is far shorter.
const MAX_INPUT_CHARS: usize = 40;

/// The check digit for the first 11 digits (ASCII digits, exactly 11), `None` otherwise.
pub fn my_number_check_digit(first11: &str) -> Option<u8> {
    let b = first11.as_bytes();
    if b.len() != 11 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = (1..=11u32)
        .map(|n| {
            // P_n counts from the right: n = 1 is the last of the 11 digits.
            let p = u32::from(b[11 - n as usize] - b'0');
            let q = if n <= 6 { n + 1 } else { n - 5 };
            p * q
        })
        .sum();
    let r = sum % 11;
    Some(if r <= 1 { 0 } else { (11 - r) as u8 })
}

/// The 12 ASCII digits of a typed My Number: full-width digits are folded, and spaces
/// and hyphens (any dash look-alike) between digits are dropped. `None` unless exactly
/// 12 digits remain. Does not verify the check digit.
pub fn normalize_my_number(input: &str) -> Option<String> {
    if input.chars().count() > MAX_INPUT_CHARS {
        return None;
    }
    let mut out = String::with_capacity(MY_NUMBER_DIGITS);
    for c in fold_width(input).chars() {
        match c {
            '0'..='9' => out.push(c),
            '-' | ' ' => {}
            _ => return None,
        }
    }
    (out.len() == MY_NUMBER_DIGITS).then_some(out)
}

/// Whether `input` (raw as typed, see [`normalize_my_number`]) is a My Number with a
/// correct check digit.
pub fn is_valid_my_number(input: &str) -> bool {
    normalize_my_number(input).is_some_and(|n| {
        my_number_check_digit(&n[..11]).is_some_and(|c| n.as_bytes()[11] - b'0' == c)
    })
}

/// The masked form for display: `********1234`, only the last 4 digits shown. Anything
/// that is not 12 digits masks completely (`************`), so garbage never leaks either.
pub fn mask_my_number(input: &str) -> String {
    match normalize_my_number(input) {
        Some(n) => format!("********{}", &n[8..]),
        None => "*".repeat(MY_NUMBER_DIGITS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_good_number() {
        // Worked by hand: P = 1,0,9,8,7,6,5,4,3,2,1; Q = 2,3,4,5,6,7,2,3,4,5,6;
        // Σ = 212, 212 mod 11 = 3, check = 11 − 3 = 8.
        assert_eq!(my_number_check_digit("12345678901"), Some(8));
        assert!(is_valid_my_number("123456789018"));
        assert!(!is_valid_my_number("123456789017"));
        assert!(!is_valid_my_number("123456789019"));
    }

    #[test]
    fn remainder_zero_and_one_give_zero() {
        // All zeros: Σ = 0 → r = 0 → 0.
        assert_eq!(my_number_check_digit("00000000000"), Some(0));
        // Only P1 = 5: Σ = 5 × 2 = 10 → r = 10 → 1.
        assert_eq!(my_number_check_digit("00000000005"), Some(1));
        // Only P1 = 6: Σ = 12 → r = 1 → 0 (not 10).
        assert_eq!(my_number_check_digit("00000000006"), Some(0));
        // Only P7 = 1 (7th from the right is the 5th from the left): Q7 = 2 → r = 2 → 9.
        assert_eq!(my_number_check_digit("00001000000"), Some(9));
        // Only P11 = 1 (first digit): Q11 = 6 → r = 6 → 5.
        assert_eq!(my_number_check_digit("10000000000"), Some(5));
    }

    #[test]
    fn check_digit_needs_11_ascii_digits() {
        assert_eq!(my_number_check_digit("1234567890"), None);
        assert_eq!(my_number_check_digit("123456789012"), None);
        assert_eq!(my_number_check_digit("1234567890a"), None);
        assert_eq!(my_number_check_digit("１２３４５６７８９０１"), None);
    }

    #[test]
    fn normalizes_typed_forms() {
        for input in [
            "123456789018",
            "1234 5678 9018",
            "1234-5678-9018",
            "１２３４　５６７８　９０１８",
            "１２３４－５６７８－９０１８",
            " 123456789018 ",
        ] {
            assert_eq!(
                normalize_my_number(input).as_deref(),
                Some("123456789018"),
                "{input}"
            );
            assert!(is_valid_my_number(input), "{input}");
        }
        for bad in [
            "",
            "12345678901",
            "1234567890188",
            "12345678901a",
            "1234.5678.9018",
        ] {
            assert_eq!(normalize_my_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn masks_all_but_last_four() {
        assert_eq!(mask_my_number("123456789018"), "********9018");
        assert_eq!(mask_my_number("1234-5678-9018"), "********9018");
        assert_eq!(mask_my_number("1234"), "************");
        assert_eq!(mask_my_number("secret"), "************");
    }

    proptest! {
        #[test]
        fn computed_check_digit_validates(first in "[0-9]{11}") {
            let c = my_number_check_digit(&first).unwrap();
            prop_assert!(c <= 9);
            let full = format!("{first}{c}");
            prop_assert!(is_valid_my_number(&full));
        }

        #[test]
        fn single_digit_errors_are_caught(first in "[0-9]{11}", pos in 0usize..12, delta in 1u8..10) {
            // The weights are non-zero mod 11, so one changed digit always changes the
            // remainder; the only blind spot is the law's own rule mapping both remainder
            // 0 and 1 to check digit 0.
            let c = my_number_check_digit(&first).unwrap();
            let mut digits: Vec<u8> = format!("{first}{c}").into_bytes();
            digits[pos] = b'0' + (digits[pos] - b'0' + delta) % 10;
            let s = String::from_utf8(digits).unwrap();
            if is_valid_my_number(&s) {
                prop_assert!(pos < 11, "a changed check digit must fail: {}", s);
                prop_assert_eq!(c, 0);
                prop_assert_eq!(my_number_check_digit(&s[..11]), Some(0));
            }
        }

        #[test]
        fn never_panics(s in any::<String>()) {
            let _ = is_valid_my_number(&s);
            let m = mask_my_number(&s);
            prop_assert_eq!(m.chars().count(), 12);
        }
    }
}

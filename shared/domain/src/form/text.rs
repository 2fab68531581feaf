//! Text clean-up shared by the answer checks, file names, receipt numbers and My Numbers.
//!
//! Citizens type with IMEs on phones and PCs: full-width digits and letters, the
//! ideographic space, `ー` or `－` where a hyphen is meant, decomposed kana from macOS.
//! These helpers fold those forms so that rules can be written once, on ASCII.

use unicode_normalization::UnicodeNormalization;

/// Folds full-width ASCII variants (U+FF01..U+FF5E) to ASCII, every Unicode space to
/// `' '`, and dash look-alikes (including `ー`, the katakana prolonged sound mark that an
/// IME in kana mode produces for the hyphen key) to `'-'`.
///
/// Only for inputs that are ASCII by nature (numbers, codes, e-mail addresses): never
/// apply it to names or free text, where `ー` is a letter.
pub(crate) fn fold_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{30FC}' | '\u{FF70}' | '\u{2500}' => '-',
            c if c.is_whitespace() => ' ',
            c => c,
        })
        .collect()
}

/// Why a piece of free text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextProblem {
    /// A control character (or a newline where only one line is allowed).
    ControlChar,
    /// A newline in a one-line field.
    Newline,
}

/// Free text as stored: NFC (so that `が` typed on macOS as `か` + U+3099 equals the same
/// word typed elsewhere), line ends as `\n`, surrounding white space (including U+3000)
/// trimmed. Control characters are refused, except the newline when `multiline`.
/// Unicode format characters that reorder text (bidi overrides) count as control
/// characters: they can make a staff screen show something other than what was stored.
pub(crate) fn clean_text(s: &str, multiline: bool) -> Result<String, TextProblem> {
    let unified = s.replace("\r\n", "\n").replace('\r', "\n");
    let nfc: String = unified.trim().nfc().collect();
    for c in nfc.chars() {
        if c == '\n' {
            if !multiline {
                return Err(TextProblem::Newline);
            }
        } else if is_forbidden_char(c) {
            return Err(TextProblem::ControlChar);
        }
    }
    Ok(nfc)
}

/// Control characters (C0, DEL, C1) and invisible format characters that change how
/// text is displayed (bidi controls, zero-width characters, the BOM).
pub(crate) fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
        )
}

/// Converts a フリガナ input to full-width katakana: NFKC first (half-width `ｶﾞ` becomes
/// `ガ`, full-width letters stay letters and are refused below), then hiragana to
/// katakana (people often type the reading in hiragana, and the two spell the same
/// reading), runs of spaces to one ideographic space. `None` when anything other than
/// katakana, `ー`, `・`, `ヽ`, `ヾ` and inner spaces remains.
pub(crate) fn to_katakana(s: &str) -> Option<String> {
    let nfkc: String = s.nfkc().collect();
    let mut out = String::with_capacity(nfkc.len());
    let mut pending_space = false;
    for c in nfkc.trim().chars() {
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        let k = match c {
            // ぁ..ゖ → ァ..ヶ, ゝゞ → ヽヾ
            '\u{3041}'..='\u{3096}' | '\u{309D}' | '\u{309E}' => {
                char::from_u32(c as u32 + 0x60).unwrap_or(c)
            }
            c => c,
        };
        if !matches!(
            k,
            '\u{30A1}'..='\u{30FA}' | '\u{30FB}' | '\u{30FC}' | '\u{30FD}' | '\u{30FE}'
        ) {
            return None;
        }
        if pending_space {
            out.push('\u{3000}');
            pending_space = false;
        }
        out.push(k);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_full_width_and_dashes() {
        assert_eq!(fold_width("０７２５－３３ー１１３１"), "0725-33-1131");
        assert_eq!(fold_width("ａ＠ｂ．ｊｐ"), "a@b.jp");
        assert_eq!(fold_width("1\u{3000}2"), "1 2");
    }

    #[test]
    fn cleans_text() {
        assert_eq!(
            clean_text("  こんにちは\u{3000}", false),
            Ok("こんにちは".into())
        );
        // NFD が (か + combining dakuten) becomes NFC が.
        assert_eq!(clean_text("\u{304B}\u{3099}", false), Ok("\u{304C}".into()));
        assert_eq!(clean_text("a\r\nb", true), Ok("a\nb".into()));
        assert_eq!(clean_text("a\nb", false), Err(TextProblem::Newline));
        assert_eq!(clean_text("a\tb", true), Err(TextProblem::ControlChar));
        assert_eq!(clean_text("a\u{0}b", true), Err(TextProblem::ControlChar));
        assert_eq!(
            clean_text("a\u{202E}b", true),
            Err(TextProblem::ControlChar)
        );
        assert_eq!(clean_text("a\u{85}b", true), Err(TextProblem::ControlChar));
    }

    #[test]
    fn katakana() {
        assert_eq!(to_katakana("ヤマダ").as_deref(), Some("ヤマダ"));
        assert_eq!(to_katakana("やまだ").as_deref(), Some("ヤマダ"));
        assert_eq!(to_katakana("ﾔﾏﾀﾞ").as_deref(), Some("ヤマダ"));
        assert_eq!(to_katakana("ｳﾞｨｰ").as_deref(), Some("ヴィー"));
        assert_eq!(
            to_katakana(" ジョン  スミス ").as_deref(),
            Some("ジョン\u{3000}スミス")
        );
        assert_eq!(to_katakana("ゝゞ").as_deref(), Some("ヽヾ"));
        assert_eq!(to_katakana("山田"), None);
        assert_eq!(to_katakana("Yamada"), None);
        assert_eq!(to_katakana("ヤマダ1"), None);
        assert_eq!(to_katakana("").as_deref(), Some(""));
    }
}

//! Folding names for lookup: the same person typed at the counter in another width, with or
//! without spaces, in hiragana instead of katakana.

use unicode_normalization::UnicodeNormalization;

/// The form names are compared in: NFKC (full-width ASCII and half-width katakana become
/// their usual forms, `ｶﾞ` → `ガ`), without whitespace (half- and full-width spaces) and
/// without the separator `・`, hiragana turned into katakana, Latin letters upper case.
pub fn fold_name(name: &str) -> String {
    name.nfkc()
        .filter(|c| !c.is_whitespace() && *c != '・')
        .map(|c| match c {
            // ぁ..ゖ → ァ..ヶ (the two blocks are 0x60 apart).
            '\u{3041}'..='\u{3096}' => char::from_u32(c as u32 + 0x60).unwrap_or(c),
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_spaces_and_scripts_fold() {
        assert_eq!(fold_name("山田　太郎"), "山田太郎");
        assert_eq!(fold_name(" 山田 太郎 "), "山田太郎");
        assert_eq!(fold_name("ﾔﾏﾀﾞ ﾀﾛｳ"), "ヤマダタロウ");
        assert_eq!(fold_name("やまだ　たろう"), "ヤマダタロウ");
        assert_eq!(fold_name("ヤマダ　タロウ"), "ヤマダタロウ");
        assert_eq!(fold_name("グエン・ヴァン"), "グエンヴァン");
        assert_eq!(fold_name("Ｎｇｕｙｅｎ van"), "NGUYENVAN");
        assert_eq!(fold_name("ゔぁ"), "ヴァ");
        assert_eq!(fold_name("　"), "");
    }
}

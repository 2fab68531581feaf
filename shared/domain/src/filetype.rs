//! Attachment files (添付ファイル): allowed types, file names, and whether the content
//! is what the extension claims (magic bytes).
//!
//! The caller reads the first [`SNIFF_BYTES`] of an upload (a ranged GET on S3, the head
//! of the file locally) and asks [`content_matches`]. A PDF renamed `.jpg` or an `.exe`
//! renamed `.pdf` is refused before staff open it.

use unicode_normalization::UnicodeNormalization;

use crate::error::FieldError;
use crate::form::text::is_forbidden_char;

/// Leading bytes [`content_matches`] looks at. Magic numbers need at most 16; text files
/// are judged on this many bytes, enough to see NUL bytes and the encoding.
pub const SNIFF_BYTES: usize = 512;

/// Longest file name in UTF-8 bytes (the common file-system limit).
pub const MAX_FILE_NAME_BYTES: usize = 255;

/// Extensions a form may allow, lower case, without the dot. `jtd` is 一太郎, still
/// common in municipal paperwork.
const ALLOWED: &[&str] = &[
    "pdf", "jpg", "jpeg", "png", "gif", "heic", "heif", "tif", "tiff", "txt", "csv", "doc", "docx",
    "xls", "xlsx", "ppt", "pptx", "odt", "ods", "jtd",
];

/// Extensions a form may allow (an attachment field's `extensions` are a subset).
pub fn allowed_extensions() -> &'static [&'static str] {
    ALLOWED
}

/// The extension of a file name, lower case, without the dot: `"申請書.PDF"` → `"pdf"`.
/// `None` for no dot, a trailing dot, a name that is only a leading-dot name
/// (`.bashrc`), or an extension longer than 10 characters or not alphanumeric.
/// Full-width letters are folded (`ｐｄｆ` → `pdf`).
pub fn extension_of(file_name: &str) -> Option<String> {
    let name = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let name = crate::form::text::fold_width(name);
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.trim_matches('.').is_empty() || ext.is_empty() || ext.chars().count() > 10 {
        return None;
    }
    if !ext.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some(ext.to_ascii_lowercase())
}

fn name_error(code: &str, message: &str) -> FieldError {
    FieldError::new("file_name", code, message)
}

/// A file name safe to store and to offer for download, or why not.
///
/// Refused (field `file_name`): empty (`required`); `/`, `\`, control characters, NUL,
/// bidi overrides and zero-width characters (`invalid_char`); `..` anywhere, or a name
/// of dots only (`invalid_format`); Windows device names such as `CON` or `com1.txt`
/// (`invalid_format`: staff download on Windows terminals); over 255 bytes
/// (`too_long`).
///
/// Kept, but made safe: NFC (macOS uploads decomposed `か゛`), surrounding white space
/// and trailing dots trimmed (Windows drops them), and the characters Windows forbids
/// (`< > : " | ? *`) replaced with their full-width forms, so a Japanese name keeps its
/// meaning and still opens on a staff PC.
pub fn sanitize_file_name(name: &str) -> Result<String, FieldError> {
    // Bound the work before normalising; 4 bytes per char is the UTF-8 maximum.
    if name.len() > 4 * MAX_FILE_NAME_BYTES {
        return Err(name_error("too_long", "ファイル名が長すぎます。"));
    }
    let nfc: String = name.nfc().collect();
    let trimmed = nfc.trim().trim_end_matches(['.', ' ', '\u{3000}']);
    if nfc.trim().is_empty() {
        return Err(name_error("required", "ファイル名がありません。"));
    }
    if nfc
        .chars()
        .any(|c| c == '/' || c == '\\' || is_forbidden_char(c))
    {
        return Err(name_error(
            "invalid_char",
            "ファイル名に使用できない文字（/ \\ や制御文字など）が含まれています。",
        ));
    }
    if nfc.contains("..") || trimmed.is_empty() {
        return Err(name_error(
            "invalid_format",
            "ファイル名の形式が正しくありません。",
        ));
    }
    let safe: String = trimmed
        .chars()
        .map(|c| match c {
            '<' => '＜',
            '>' => '＞',
            ':' => '：',
            '"' => '＂',
            '|' => '｜',
            '?' => '？',
            '*' => '＊',
            c => c,
        })
        .collect();
    let stem = safe
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end()
        .to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved {
        return Err(name_error(
            "invalid_format",
            "このファイル名は使用できません。名前を変えてからお送りください。",
        ));
    }
    if safe.len() > MAX_FILE_NAME_BYTES {
        return Err(name_error("too_long", "ファイル名が長すぎます。"));
    }
    Ok(safe)
}

/// Whether the leading bytes `head` (up to [`SNIFF_BYTES`]) fit the extension `ext`
/// (lower case, no dot). An empty head never matches: an empty file carries nothing.
///
/// | extension | rule |
/// |---|---|
/// | pdf | starts with `%PDF-` |
/// | png | `89 50 4E 47 0D 0A 1A 0A` |
/// | jpg, jpeg | `FF D8 FF` |
/// | gif | `GIF87a` or `GIF89a` |
/// | heic, heif | an ISO-BMFF `ftyp` box at offset 4 whose major brand is `heic`, `heix`, `heim`, `heis`, `hevc`, `hevx`, `mif1` or `msf1` |
/// | tif, tiff | `II*\0` or `MM\0*` |
/// | docx, xlsx, pptx, odt, ods | a ZIP local header `PK\x03\x04` (which Office format it is would need unzipping) |
/// | doc, xls, ppt, jtd | an OLE compound file `D0 CF 11 E0 A1 B1 1A E1` |
/// | txt, csv | text: see below |
///
/// Text: no NUL byte, no control characters other than tab, LF, CR, form feed and
/// the DOS end-of-file `0x1A`, and the bytes are either UTF-8 (an optional BOM; a
/// multi-byte character cut off at the end of the head is allowed) or well-formed
/// Shift_JIS/CP932 (lead bytes `81–9F`, `E0–FC` followed by a trail byte `40–7E`,
/// `80–FC`; half-width katakana `A1–DF`). UTF-16 text is refused: it is full of NUL
/// bytes, and core systems and spreadsheets read UTF-8 or CP932.
pub fn content_matches(ext: &str, head: &[u8]) -> bool {
    let head = &head[..head.len().min(SNIFF_BYTES)];
    if head.is_empty() {
        return false;
    }
    match ext {
        "pdf" => head.starts_with(b"%PDF-"),
        "png" => head.starts_with(b"\x89PNG\r\n\x1a\n"),
        "jpg" | "jpeg" => head.starts_with(&[0xFF, 0xD8, 0xFF]),
        "gif" => head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a"),
        "heic" | "heif" => {
            head.len() >= 12
                && &head[4..8] == b"ftyp"
                && matches!(
                    &head[8..12],
                    b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1"
                )
        }
        "tif" | "tiff" => head.starts_with(b"II*\0") || head.starts_with(b"MM\0*"),
        "docx" | "xlsx" | "pptx" | "odt" | "ods" => head.starts_with(b"PK\x03\x04"),
        "doc" | "xls" | "ppt" | "jtd" => {
            head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1])
        }
        "txt" | "csv" => looks_like_text(head),
        _ => false,
    }
}

fn looks_like_text(head: &[u8]) -> bool {
    let allowed_control = |b: u8| matches!(b, b'\t' | b'\n' | b'\r' | 0x0C | 0x1A);
    if head
        .iter()
        .any(|&b| (b < 0x20 && !allowed_control(b)) || b == 0x7F)
    {
        return false;
    }
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    match std::str::from_utf8(body) {
        Ok(_) => true,
        // Only an incomplete character at the very end: the head cut it.
        Err(e) if e.error_len().is_none() => true,
        Err(_) => plausible_cp932(head),
    }
}

/// Well-formed Shift_JIS/CP932 byte structure (see [`content_matches`]).
fn plausible_cp932(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            0x00..=0x7F | 0xA1..=0xDF => i += 1,
            0x81..=0x9F | 0xE0..=0xFC => match b.get(i + 1) {
                // A lead byte at the very end: its trail byte was cut off.
                None => return true,
                Some(0x40..=0x7E | 0x80..=0xFC) => i += 2,
                Some(_) => return false,
            },
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn extensions() {
        assert_eq!(extension_of("申請書.PDF").as_deref(), Some("pdf"));
        assert_eq!(extension_of("a.tar.gz").as_deref(), Some("gz"));
        assert_eq!(extension_of("写真.ＪＰＧ").as_deref(), Some("jpg"));
        assert_eq!(extension_of("dir/file.docx").as_deref(), Some("docx"));
        assert_eq!(extension_of("noext"), None);
        assert_eq!(extension_of("trailing."), None);
        assert_eq!(extension_of(".bashrc"), None);
        assert_eq!(extension_of("..pdf"), None);
        assert_eq!(extension_of("a.p df"), None);
        assert_eq!(extension_of("a.verylongextension"), None);
    }

    fn code(name: &str) -> String {
        sanitize_file_name(name).unwrap_err().code
    }

    #[test]
    fn sanitizes_names() {
        assert_eq!(
            sanitize_file_name("住民票 申請書.pdf").unwrap(),
            "住民票 申請書.pdf"
        );
        assert_eq!(sanitize_file_name("  写真.jpg  ").unwrap(), "写真.jpg");
        // NFD が → NFC が
        assert_eq!(
            sanitize_file_name("\u{304B}\u{3099}.pdf").unwrap(),
            "\u{304C}.pdf"
        );
        assert_eq!(sanitize_file_name("見積?.xlsx").unwrap(), "見積？.xlsx");
        assert_eq!(sanitize_file_name("a:b.txt").unwrap(), "a：b.txt");
        assert_eq!(sanitize_file_name("report.pdf.").unwrap(), "report.pdf");
        assert_eq!(code(""), "required");
        assert_eq!(code("   "), "required");
        assert_eq!(code("../etc/passwd"), "invalid_char");
        assert_eq!(code("a\\b.pdf"), "invalid_char");
        assert_eq!(code("a\0b.pdf"), "invalid_char");
        assert_eq!(code("a\nb.pdf"), "invalid_char");
        assert_eq!(code("evil\u{202E}fdp.exe"), "invalid_char");
        assert_eq!(code(".."), "invalid_format");
        assert_eq!(code("..."), "invalid_format");
        assert_eq!(code("."), "invalid_format");
        assert_eq!(code("a..b.pdf"), "invalid_format");
        assert_eq!(code("CON"), "invalid_format");
        assert_eq!(code("com1.txt"), "invalid_format");
        assert_eq!(code("lpt9"), "invalid_format");
        assert!(sanitize_file_name("console.txt").is_ok());
        assert!(sanitize_file_name("com10.txt").is_ok());
        assert_eq!(code(&"あ".repeat(86)), "too_long"); // 258 bytes
        assert!(sanitize_file_name(&"あ".repeat(85)).is_ok()); // 255 bytes
        assert_eq!(code(&"a".repeat(5000)), "too_long");
        assert_eq!(sanitize_file_name("x/y").unwrap_err().field, "file_name");
    }

    #[test]
    fn magic_bytes() {
        assert!(content_matches("pdf", b"%PDF-1.7\n"));
        assert!(!content_matches("pdf", b"%PDX-1.7"));
        assert!(content_matches("png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"));
        assert!(!content_matches("png", b"\x89PNG"));
        assert!(content_matches("jpg", &[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(content_matches("jpeg", &[0xFF, 0xD8, 0xFF, 0xE1]));
        assert!(!content_matches("jpg", b"%PDF-1.4"));
        assert!(content_matches("gif", b"GIF89a..."));
        assert!(content_matches("gif", b"GIF87a..."));
        assert!(content_matches(
            "heic",
            b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"
        ));
        assert!(content_matches(
            "heic",
            b"\0\0\0\x1cftypmif1\0\0\0\0mif1heic"
        ));
        assert!(!content_matches("heic", b"\0\0\0\x18ftypisom"));
        assert!(!content_matches("heic", b"\0\0\0\x18ftyp"));
        assert!(content_matches("tiff", b"II*\0\x08\0\0\0"));
        assert!(content_matches("tif", b"MM\0*\0\0\0\x08"));
        assert!(content_matches("docx", b"PK\x03\x04\x14\0"));
        assert!(content_matches("xlsx", b"PK\x03\x04\x14\0"));
        assert!(!content_matches("docx", b"PK\x05\x06"));
        let ole = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0];
        assert!(content_matches("doc", &ole));
        assert!(content_matches("xls", &ole));
        assert!(!content_matches("pdf", &ole));
        assert!(!content_matches("exe", b"MZ\x90\0"));
        assert!(!content_matches("pdf", b""));
        assert!(!content_matches("txt", b""));
    }

    #[test]
    fn text_rule() {
        assert!(content_matches(
            "csv",
            "氏名,住所\r\n山田,大阪\r\n".as_bytes()
        ));
        assert!(content_matches("csv", b"\xEF\xBB\xBFa,b\n"));
        // "氏名" in CP932: 8E 81 96 BC
        assert!(content_matches("csv", b"\x8e\x81\x96\xbc,a\r\n"));
        // half-width katakana ｱ in CP932
        assert!(content_matches("txt", b"\xb1\xb2"));
        // A UTF-8 character cut by the head.
        let mut cut = "あいう".as_bytes().to_vec();
        cut.pop();
        assert!(content_matches("txt", &cut));
        assert!(!content_matches("txt", b"a\0b"));
        assert!(!content_matches("txt", b"\xff\xfea\0b\0")); // UTF-16LE
        assert!(!content_matches("txt", b"MZ\x90\0\x03"));
        assert!(!content_matches("csv", b"\x01\x02\x03"));
        assert!(!content_matches("txt", b"\x80\x80")); // not a lead byte
        assert!(!content_matches("txt", b"\x81\x20")); // bad trail byte
        // Only the first SNIFF_BYTES count.
        let mut long = vec![b'a'; SNIFF_BYTES];
        long.push(0);
        assert!(content_matches("txt", &long));
    }

    #[test]
    fn allowed_list_is_lower_case_and_covers_every_magic_rule() {
        for e in allowed_extensions() {
            assert_eq!(*e, e.to_ascii_lowercase());
        }
        for e in [
            "pdf", "jpg", "jpeg", "png", "gif", "heic", "tif", "tiff", "txt", "csv", "doc", "docx",
            "xls", "xlsx",
        ] {
            assert!(allowed_extensions().contains(&e), "{e}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(name in any::<String>(), head in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = extension_of(&name);
            if let Ok(safe) = sanitize_file_name(&name) {
                prop_assert!(!safe.contains('/') && !safe.contains('\\') && !safe.contains(".."));
                prop_assert!(safe.len() <= MAX_FILE_NAME_BYTES && !safe.is_empty());
            }
            for ext in allowed_extensions() {
                let _ = content_matches(ext, &head);
            }
        }
    }
}

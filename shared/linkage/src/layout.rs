//! Layouts are data: a file layout is a JSON document describing the columns of a
//! core-system CSV file. See `docs/linkage.md` for the format.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

/// The character encoding a layout declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodingSpec {
    /// UTF-8, with or without a BOM.
    Utf8,
    /// Shift_JIS as Windows writes it (CP932 / Windows-31J, WHATWG `Shift_JIS`).
    Cp932,
    /// BOM → UTF-8; valid UTF-8 in the first chunk → UTF-8; otherwise CP932.
    Auto,
}

/// Whether a file holds the whole population or only the changes since the last file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Full,
    /// 差分: only changed rows.
    Delta,
}

/// The type of a column; decides how a non-empty value is checked and stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// Any text without control characters (tab, CR and LF are allowed).
    Text,
    /// ASCII digits only (numbers that are identifiers: keep leading zeros).
    Digits,
    /// Full-width katakana, `ー`, `・` and spaces.
    Kana,
    /// A calendar date in the column's [`DateFormat`]; must exist.
    Date,
    /// 個人番号: 12 ASCII digits with a correct check digit.
    MyNumber,
    /// A value of the column's code table.
    Code,
    /// 郵便番号: `1234567` or `123-4567`, stored as 7 digits.
    PostalCode,
    /// 在留カード番号: 2 letters, 8 digits, 2 letters (`AB12345678CD`).
    ResidenceCardNumber,
}

/// How a date column is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateFormat {
    /// 和暦 with an era: `R7.04.01`, `令和7年4月1日`, `令和元年5月1日`, `H31.4.30`.
    Wareki,
    /// 和暦 as 7 digits `GYYMMDD`, G = 1 明治, 2 大正, 3 昭和, 4 平成, 5 令和.
    WarekiCode,
    /// 西暦: `2025-04-01`, `2025/4/1`, `20250401`, `2025年4月1日`.
    Seireki,
    /// Either 和暦 (with an era) or 西暦.
    Any,
}

/// A date format that applies when another column of the same row is non-empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionalDateFormat {
    /// Name of the column whose presence decides.
    pub column: String,
    pub format: DateFormat,
}

/// One column of a layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// Stable machine name; the key in a [`crate::Record`].
    pub name: String,
    /// Japanese label, used in error reports and, unless `header` is set, as the
    /// expected header text.
    pub label: String,
    /// Header text expected in the file when it differs from `label`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    #[serde(default)]
    pub required: bool,
    /// Required when the named column of the same row is non-empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_if_present: Option<String>,
    /// Maximum length in characters (after 外字 conversion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// Minimum length in characters of a non-empty value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    /// Required for `date` columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_format: Option<DateFormat>,
    /// Overrides `date_format` when another column of the row is non-empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_format_if_present: Option<ConditionalDateFormat>,
    /// Required for `code` columns: a key of the layout's `code_tables`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_table: Option<String>,
    /// Free text for people (sources, what to confirm with the vendor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Column {
    /// The header text expected in the file.
    pub fn header_name(&self) -> &str {
        self.header.as_deref().unwrap_or(&self.label)
    }
}

/// A code table: code → Japanese meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeTable {
    /// Where the codes come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `false` while the codes still have to be confirmed with the vendor.
    #[serde(default)]
    pub confirmed: bool,
    pub codes: BTreeMap<String, String>,
}

/// A file layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub id: String,
    pub label: String,
    pub encoding: EncodingSpec,
    /// Whether the first record is a header row that must match the column headers
    /// exactly (same names, same order, no extra columns).
    pub header: bool,
    pub kind: FileKind,
    pub columns: Vec<Column>,
    #[serde(default)]
    pub code_tables: BTreeMap<String, CodeTable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A layout or conversion table that is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    #[error("layout JSON: {0}")]
    Json(String),
    #[error("layout has no columns")]
    NoColumns,
    #[error("duplicate column name or header: {0}")]
    Duplicate(String),
    #[error("column {column}: {problem}")]
    Column {
        column: String,
        problem: &'static str,
    },
    #[error("conversion table: {0}")]
    Conversion(String),
}

impl Layout {
    /// Parses and checks a layout.
    pub fn from_json(json: &str) -> Result<Layout, LayoutError> {
        let layout: Layout =
            serde_json::from_str(json).map_err(|e| LayoutError::Json(e.to_string()))?;
        layout.check()?;
        Ok(layout)
    }

    /// The 住民記録 layout shipped with the crate (`layouts/jumin.json`).
    pub fn jumin() -> Layout {
        // Checked by a test; the file is part of the crate.
        Layout::from_json(include_str!("../layouts/jumin.json"))
            .unwrap_or_else(|e| unreachable!("shipped jumin.json is invalid: {e}"))
    }

    /// Consistency checks: unique names and headers, code tables and date formats
    /// present where needed, referenced columns exist.
    pub fn check(&self) -> Result<(), LayoutError> {
        if self.columns.is_empty() {
            return Err(LayoutError::NoColumns);
        }
        let mut names = BTreeSet::new();
        let mut headers = BTreeSet::new();
        for c in &self.columns {
            if !names.insert(c.name.as_str()) {
                return Err(LayoutError::Duplicate(c.name.clone()));
            }
            if !headers.insert(c.header_name()) {
                return Err(LayoutError::Duplicate(c.header_name().to_owned()));
            }
        }
        let bad = |c: &Column, problem| LayoutError::Column {
            column: c.name.clone(),
            problem,
        };
        for c in &self.columns {
            match c.ty {
                ColumnType::Code => match &c.code_table {
                    Some(t) if self.code_tables.contains_key(t) => {}
                    _ => return Err(bad(c, "code column without a known code_table")),
                },
                ColumnType::Date if c.date_format.is_none() => {
                    return Err(bad(c, "date column without date_format"));
                }
                _ => {}
            }
            if c.ty != ColumnType::Date && c.date_format_if_present.is_some() {
                return Err(bad(c, "date_format_if_present on a non-date column"));
            }
            if let Some(cond) = &c.date_format_if_present
                && !names.contains(cond.column.as_str())
            {
                return Err(bad(c, "date_format_if_present names an unknown column"));
            }
            if let Some(other) = &c.required_if_present
                && !names.contains(other.as_str())
            {
                return Err(bad(c, "required_if_present names an unknown column"));
            }
            if let (Some(min), Some(max)) = (c.min_length, c.max_length)
                && min > max
            {
                return Err(bad(c, "min_length > max_length"));
            }
        }
        Ok(())
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// The 外字 / character conversion table: single characters (typically a vendor's
/// private-use code points) → replacement text. JSON: `{"\uE000": "髙", ...}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversionTable {
    map: HashMap<char, Box<str>>,
    /// Smallest and largest non-ASCII key: a cheap pre-check before hashing.
    range: Option<(char, char)>,
}

/// First and last private-use code point of the BMP (U+E000–U+F8FF).
pub(crate) fn is_private_use(c: char) -> bool {
    ('\u{E000}'..='\u{F8FF}').contains(&c)
}

impl ConversionTable {
    /// A table that converts nothing (unmapped private-use characters are still reported).
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses `{"<one character>": "<replacement>", ...}`. Keys must be exactly one
    /// character; replacements must not contain private-use characters.
    pub fn from_json(json: &str) -> Result<Self, LayoutError> {
        let raw: BTreeMap<String, String> =
            serde_json::from_str(json).map_err(|e| LayoutError::Conversion(e.to_string()))?;
        Self::from_pairs(raw)
    }

    /// Builds a table from `(key, replacement)` pairs, with the checks of [`Self::from_json`].
    pub fn from_pairs<K: AsRef<str>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, LayoutError> {
        let mut map = HashMap::new();
        for (k, v) in pairs {
            let mut chars = k.as_ref().chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(LayoutError::Conversion(format!(
                    "key {:?} is not exactly one character",
                    k.as_ref()
                )));
            };
            let v: String = v.into();
            if v.chars().any(is_private_use) {
                return Err(LayoutError::Conversion(format!(
                    "replacement for U+{:04X} contains a private-use character",
                    c as u32
                )));
            }
            map.insert(c, v.into_boxed_str());
        }
        let range = map.keys().filter(|c| !c.is_ascii()).fold(
            None,
            |r: Option<(char, char)>, &c| match r {
                None => Some((c, c)),
                Some((lo, hi)) => Some((lo.min(c), hi.max(c))),
            },
        );
        let has_ascii = map.keys().any(char::is_ascii);
        Ok(Self {
            map,
            range: if has_ascii {
                Some(('\0', char::MAX))
            } else {
                range
            },
        })
    }

    pub fn get(&self, c: char) -> Option<&str> {
        self.map.get(&c).map(|s| &**s)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The smallest byte that can start a character [`Self::apply`] acts on: the
    /// UTF-8 lead byte of the smallest non-ASCII key or of U+E000 (private use),
    /// whichever is lower; 0 when a key is ASCII. Lead bytes grow with the code
    /// point, so text whose bytes are all below it is left unchanged by `apply` —
    /// the reader checks that once per record instead of once per field.
    pub(crate) fn lead_threshold(&self) -> u8 {
        const PRIVATE_USE_LEAD: u8 = 0xEE; // U+E000 = EE 80 80
        match self.range {
            None => PRIVATE_USE_LEAD,
            Some((lo, _)) if lo.is_ascii() => 0,
            Some((lo, _)) => {
                let mut buf = [0u8; 4];
                lo.encode_utf8(&mut buf);
                buf[0].min(PRIVATE_USE_LEAD)
            }
        }
    }

    /// Applies the table. `Ok(None)`: nothing to change. `Err(())`: an unmapped
    /// private-use character remains.
    pub(crate) fn apply(&self, s: &str) -> Result<Option<String>, ()> {
        let has_ascii_keys = self.range.is_some_and(|(lo, _)| lo == '\0');
        if !has_ascii_keys && s.bytes().max().unwrap_or(0) < self.lead_threshold() {
            return Ok(None);
        }
        let candidate = |c: char| {
            is_private_use(c)
                || self
                    .range
                    .is_some_and(|(lo, hi)| (lo..=hi).contains(&c) && self.map.contains_key(&c))
        };
        let first = s.char_indices().find(|&(_, c)| candidate(c));
        let Some((at, _)) = first else {
            return Ok(None);
        };
        let mut out = String::with_capacity(s.len() + 8);
        out.push_str(&s[..at]);
        for c in s[at..].chars() {
            match self.map.get(&c) {
                Some(r) => out.push_str(r),
                None if is_private_use(c) => return Err(()),
                None => out.push(c),
            }
        }
        Ok(Some(out))
    }
}

//! Answers (回答) of a submission or a draft: reading, normalising, checking, display.
//!
//! Three steps per field, kept apart because the visibility engine needs only the first:
//! - [`read`]: the JSON shape and the format of the value, normalised (`"０７２５-33-1131"`
//!   → `"0725331131"`). `Ok(None)` means unanswered (absent, `null`, blank).
//! - `constrain`: the definition's limits (lengths, ranges, counts, required parts).
//! - `display`: the text for the confirm screen.
//!
//! Messages are Japanese for citizens, name the field's label (staff wrote it, it is not
//! personal data) and never repeat the answer.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use super::definition::{Field, FieldKind, FormDefinition};
use super::graph::Flat;
use super::limits::*;
use super::text::{TextProblem, clean_text, fold_width, to_katakana};
use super::validate::is_valid_field_id;
use super::visibility::visibility;
use crate::date::{Date, parse_japanese_date};
use crate::error::{DomainError, FieldError};
use crate::ids::AttachmentId;
use crate::mynumber::{is_valid_my_number, mask_my_number, normalize_my_number};
use crate::wareki::format_wareki;

/// The answers of one application: field id → JSON answer.
pub type Answers = Map<String, Value>;

/// The outcome of [`check_answers`].
#[derive(Clone, PartialEq, Default)]
pub struct Checked {
    /// Normalised answers of the visible, answered fields (hidden answers dropped).
    pub values: BTreeMap<String, Value>,
    /// Every problem; `field` is the field id, or `id.part` for a part of a name or address.
    pub errors: Vec<FieldError>,
    /// Display-ready rows, in form order, for the confirm screen (確認画面). My Numbers
    /// are masked.
    pub summary: Vec<SummaryRow>,
}

impl Checked {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// `values` may hold a My Number and other personal data: Debug shows only their keys.
impl fmt::Debug for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checked")
            .field("values", &self.values.keys().collect::<Vec<_>>())
            .field("errors", &self.errors)
            .field("summary", &self.summary)
            .finish()
    }
}

/// One row of the confirm screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub field: String,
    pub label: String,
    pub display: String,
}

/// Checks the answers of a submission against the definition, every problem at once.
///
/// - Answers to hidden fields (表示条件) are dropped, not refused: the citizen may have
///   filled a field and then changed the answer that showed it.
/// - Keys that are not input fields of the form are refused (`unknown_field`).
/// - Every visible field is read, normalised and checked against its settings; a
///   required field without an answer gets `required`.
///
/// `today` is the day of submission in Japan (date bounds `"today"`).
pub fn check_answers(def: &FormDefinition, answers: &Answers, today: Date) -> Checked {
    let flat = Flat::new(def);
    let visible = visibility(&flat, answers);
    let mut out = Checked::default();
    unknown_keys(&flat, answers, &mut out.errors);
    for (i, node) in flat.nodes.iter().enumerate() {
        let field = node.field;
        // Duplicate ids only exist in definitions that were never validated: the
        // first one wins, as in `FormDefinition::field`.
        if !field.kind.is_input() || !visible[i] || flat.by_id.get(field.id.as_str()) != Some(&i) {
            continue;
        }
        let raw = answers.get(&field.id).unwrap_or(&Value::Null);
        match read(field, raw) {
            Err(es) => out.errors.extend(es),
            Ok(None) => {
                if field.required {
                    out.errors.push(required_error(field));
                }
            }
            Ok(Some(v)) => {
                let es = constrain(field, &v, today);
                if es.is_empty() {
                    out.summary.push(SummaryRow {
                        field: field.id.clone(),
                        label: field.label.clone(),
                        display: display(field, &v),
                    });
                    out.values.insert(field.id.clone(), v);
                } else {
                    out.errors.extend(es);
                }
            }
        }
    }
    out
}

/// Checks a draft (下書き): no required answers, no formats, but the JSON shape and size
/// of every answer, so that a draft cannot store garbage. Answers to hidden fields are
/// kept (the citizen may show them again); unknown keys are refused.
pub fn check_draft(def: &FormDefinition, answers: &Answers) -> Vec<FieldError> {
    let flat = Flat::new(def);
    let mut errors = Vec::new();
    unknown_keys(&flat, answers, &mut errors);
    for (i, node) in flat.nodes.iter().enumerate() {
        let field = node.field;
        if !field.kind.is_input() || flat.by_id.get(field.id.as_str()) != Some(&i) {
            continue;
        }
        if let Some(raw) = answers.get(&field.id) {
            draft_shape(field, raw, &mut errors);
        }
    }
    errors
}

fn unknown_keys(flat: &Flat<'_>, answers: &Answers, errors: &mut Vec<FieldError>) {
    let mut unknown = 0usize;
    for key in answers.keys() {
        let known = flat
            .by_id
            .get(key.as_str())
            .is_some_and(|&i| flat.nodes[i].field.kind.is_input());
        if known {
            continue;
        }
        unknown += 1;
        if unknown <= MAX_UNKNOWN_KEY_ERRORS {
            // A key that is not even an id could be anything: do not echo it.
            let field = if is_valid_field_id(key) {
                key.as_str()
            } else {
                "answers"
            };
            errors.push(FieldError::new(
                field,
                "unknown_field",
                "この様式にない項目への回答が含まれています。",
            ));
        }
    }
    if unknown > MAX_UNKNOWN_KEY_ERRORS {
        errors.push(FieldError::new(
            "answers",
            "unknown_field",
            "この様式にない項目への回答が多数含まれています。",
        ));
    }
}

fn required_error(field: &Field) -> FieldError {
    let message = match field.kind {
        FieldKind::Radio { .. } | FieldKind::Select { .. } | FieldKind::Checkbox { .. } => {
            format!("「{}」を選択してください。", field.label)
        }
        FieldKind::Attachment { .. } => {
            format!("「{}」のファイルを添付してください。", field.label)
        }
        _ => format!("「{}」を入力してください。", field.label),
    };
    FieldError::new(&field.id, "required", message)
}

fn wrong_type(path: &str) -> Vec<FieldError> {
    vec![FieldError::new(
        path,
        "wrong_type",
        "回答の形式が正しくありません。",
    )]
}

fn one(path: &str, code: &str, message: impl Into<String>) -> Vec<FieldError> {
    vec![FieldError::new(path, code, message)]
}

/// The answer as a string, `Ok(None)` for null; wrong JSON types are errors.
fn as_str<'v>(raw: &'v Value, path: &str) -> Result<Option<&'v str>, Vec<FieldError>> {
    match raw {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(wrong_type(path)),
    }
}

fn text_problem(path: &str, label: &str, p: TextProblem) -> Vec<FieldError> {
    match p {
        TextProblem::Newline => one(
            path,
            "invalid_char",
            format!("「{label}」には改行を入力できません。"),
        ),
        TextProblem::ControlChar => one(
            path,
            "invalid_char",
            format!("「{label}」に使用できない文字が含まれています。"),
        ),
    }
}

/// Hard cap of a text field's length: its `max_length` can only lower it.
fn text_cap(multiline: bool) -> u32 {
    if multiline {
        MAX_MULTILINE_CHARS
    } else {
        MAX_TEXT_CHARS
    }
}

/// Reads and normalises one answer (see the module doc). `Ok(None)`: unanswered.
pub(crate) fn read(field: &Field, raw: &Value) -> Result<Option<Value>, Vec<FieldError>> {
    let id = field.id.as_str();
    let label = field.label.as_str();
    match &field.kind {
        FieldKind::Text { multiline, .. } => {
            let Some(s) = as_str(raw, id)? else {
                return Ok(None);
            };
            // Bound the work before normalising; the exact length is checked later.
            if s.len() > 4 * text_cap(*multiline) as usize {
                return Err(too_long(id, label, text_cap(*multiline) as usize));
            }
            let t = clean_text(s, *multiline).map_err(|p| text_problem(id, label, p))?;
            Ok((!t.is_empty()).then_some(Value::String(t)))
        }
        FieldKind::Radio { options } | FieldKind::Select { options } => {
            let Some(s) = as_str(raw, id)? else {
                return Ok(None);
            };
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            match options.iter().find(|o| o.value == s) {
                Some(o) => Ok(Some(Value::String(o.value.clone()))),
                None => Err(not_an_option(id, label)),
            }
        }
        FieldKind::Checkbox { options, .. } => {
            let a = match raw {
                Value::Null => return Ok(None),
                Value::Array(a) => a,
                _ => return Err(wrong_type(id)),
            };
            if a.len() > options.len() {
                return Err(one(
                    id,
                    "too_many",
                    format!("「{label}」の選択が多すぎます。"),
                ));
            }
            let mut chosen = BTreeSet::new();
            for e in a {
                let Value::String(s) = e else {
                    return Err(wrong_type(id));
                };
                let Some(pos) = options.iter().position(|o| o.value == s.trim()) else {
                    return Err(not_an_option(id, label));
                };
                if !chosen.insert(pos) {
                    return Err(one(
                        id,
                        "duplicate",
                        format!("「{label}」で同じ選択肢が重複しています。"),
                    ));
                }
            }
            if chosen.is_empty() {
                return Ok(None);
            }
            // Option order, whatever order the client sent.
            Ok(Some(Value::Array(
                chosen
                    .into_iter()
                    .map(|p| Value::String(options[p].value.clone()))
                    .collect(),
            )))
        }
        FieldKind::Phone => {
            let Some(s) = as_str(raw, id)? else {
                return Ok(None);
            };
            if s.trim().is_empty() {
                return Ok(None);
            }
            match normalize_phone(s) {
                Some(d) => Ok(Some(Value::String(d))),
                None => Err(one(
                    id,
                    "invalid_format",
                    format!(
                        "「{label}」の電話番号の形式が正しくありません。（例：0725-33-1131、090-1234-5678）"
                    ),
                )),
            }
        }
        FieldKind::Email => {
            let Some(s) = as_str(raw, id)? else {
                return Ok(None);
            };
            if s.trim().is_empty() {
                return Ok(None);
            }
            if s.chars().count() > MAX_EMAIL_CHARS + 16 {
                return Err(too_long(id, label, MAX_EMAIL_CHARS));
            }
            normalize_email(s)
                .map(|e| Some(Value::String(e)))
                .ok_or_else(|| {
                    one(
                        id,
                        "invalid_format",
                        format!("「{label}」のメールアドレスの形式が正しくありません。"),
                    )
                })
        }
        FieldKind::Date { .. } => {
            let Some(s) = as_str(raw, id)? else {
                return Ok(None);
            };
            if s.trim().is_empty() {
                return Ok(None);
            }
            parse_japanese_date(s)
                .map(|d| Some(Value::String(d.to_string())))
                .map_err(|e| date_error(id, e))
        }
        FieldKind::Attachment { max_files, .. } => {
            let a = match raw {
                Value::Null => return Ok(None),
                Value::Array(a) => a,
                _ => return Err(wrong_type(id)),
            };
            if a.len() > *max_files as usize {
                return Err(one(
                    id,
                    "too_many",
                    format!("「{label}」に添付できるファイルは{max_files}件までです。"),
                ));
            }
            let mut ids = Vec::with_capacity(a.len());
            for e in a {
                let Value::String(s) = e else {
                    return Err(wrong_type(id));
                };
                let Ok(aid) = AttachmentId::parse(s.trim()) else {
                    return Err(one(
                        id,
                        "invalid_format",
                        "添付ファイルの指定が正しくありません。",
                    ));
                };
                let s = aid.to_string();
                if ids.contains(&Value::String(s.clone())) {
                    return Err(one(
                        id,
                        "duplicate",
                        "同じファイルが重複して指定されています。",
                    ));
                }
                ids.push(Value::String(s));
            }
            Ok((!ids.is_empty()).then_some(Value::Array(ids)))
        }
        FieldKind::MyNumber => {
            let Some(s) = as_str(raw, id)? else {
                return Ok(None);
            };
            if s.trim().is_empty() {
                return Ok(None);
            }
            let Some(n) = normalize_my_number(s) else {
                return Err(one(
                    id,
                    "invalid_format",
                    "個人番号は12桁の数字で入力してください。",
                ));
            };
            if !is_valid_my_number(&n) {
                return Err(one(
                    id,
                    "check_digit",
                    "個人番号が正しくありません。入力内容をご確認ください。",
                ));
            }
            Ok(Some(Value::String(n)))
        }
        FieldKind::Number { .. } => {
            let x = match raw {
                Value::Null => return Ok(None),
                Value::Number(n) => n.as_f64(),
                Value::String(s) if s.trim().is_empty() => return Ok(None),
                Value::String(s) => parse_number(s),
                _ => return Err(wrong_type(id)),
            };
            match x {
                Some(x) if x.is_finite() => Ok(Some(number_value(x))),
                _ => Err(one(
                    id,
                    "invalid_format",
                    format!("「{label}」は数値で入力してください。"),
                )),
            }
        }
        FieldKind::PostalCode => {
            let Some(s) = as_str(raw, id)? else {
                return Ok(None);
            };
            if s.trim().is_empty() {
                return Ok(None);
            }
            normalize_postal_code(s)
                .map(|p| Some(Value::String(p)))
                .ok_or_else(|| postal_error(id))
        }
        FieldKind::Name { kana } => read_name(field, raw, *kana),
        FieldKind::Address => read_address(field, raw),
        FieldKind::Heading | FieldKind::Explanation | FieldKind::Section { .. } => Ok(None),
    }
}

fn too_long(path: &str, label: &str, max: usize) -> Vec<FieldError> {
    one(
        path,
        "too_long",
        format!("「{label}」は{max}文字以内で入力してください。"),
    )
}

fn not_an_option(path: &str, label: &str) -> Vec<FieldError> {
    one(
        path,
        "not_an_option",
        format!("「{label}」は選択肢の中から選んでください。"),
    )
}

fn postal_error(path: &str) -> Vec<FieldError> {
    one(
        path,
        "invalid_format",
        "郵便番号は7桁の数字で入力してください。（例：595-0000）",
    )
}

fn date_error(path: &str, e: DomainError) -> Vec<FieldError> {
    let (code, message) = match e {
        DomainError::InvalidValue { code, message } => (
            match code {
                "date.format" => "invalid_format",
                "date.out_of_range" => "out_of_range",
                _ => "invalid_date",
            },
            message,
        ),
        _ => ("invalid_format", "日付の形式が正しくありません。"),
    };
    one(path, code, message)
}

/// National digits of a Japanese phone number, or `None`.
///
/// Accepts full-width digits, hyphens (and `ー`), spaces, dots, parentheses and a
/// leading `+81` (with or without the trunk `0`, as in `+81 (0)3-…`). Valid numbers:
/// 11 digits for 050 (IP), 060, 070/080/090 (mobile) and 0800 (toll free); 10 digits
/// for every other number starting with `0` and a non-zero digit (fixed lines, 0120,
/// 0570). 020 (pagers, M2M) is refused: it is never a contact number.
pub fn normalize_phone(input: &str) -> Option<String> {
    if input.chars().count() > MAX_SHORT_INPUT_CHARS {
        return None;
    }
    let folded = fold_width(input);
    let s = folded.trim();
    let (international, rest) = match s.strip_prefix("+81") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let mut d = String::with_capacity(11);
    for c in rest.chars() {
        match c {
            '0'..='9' => d.push(c),
            '-' | ' ' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    if international && !d.starts_with('0') {
        d.insert(0, '0');
    }
    let b = d.as_bytes();
    if b.len() < 2 || b[0] != b'0' || b[1] == b'0' || d.starts_with("020") {
        return None;
    }
    let eleven = d.starts_with("0800")
        || ["050", "060", "070", "080", "090"]
            .iter()
            .any(|p| d.starts_with(p));
    let want = if eleven { 11 } else { 10 };
    (d.len() == want).then_some(d)
}

/// A normalised phone number with hyphens where the split is unambiguous: mobile and
/// IP (3-4-4), 0800 (4-3-4), 0120/0570 (4-3-3), Tokyo and Osaka 03/06 (2-4-4). Other
/// fixed lines are shown as digits: their area code length varies by place.
pub fn format_phone(d: &str) -> String {
    let split = |a: usize, b: usize| format!("{}-{}-{}", &d[..a], &d[a..a + b], &d[a + b..]);
    if !d.is_ascii() {
        return d.to_owned();
    }
    match d.len() {
        11 if d.starts_with("0800") => split(4, 3),
        11 => split(3, 4),
        10 if d.starts_with("0120") || d.starts_with("0570") => split(4, 3),
        10 if d.starts_with("03") || d.starts_with("06") => split(2, 4),
        _ => d.to_owned(),
    }
}

/// A pragmatic e-mail check: one `@`, no spaces or control characters, no
/// `<>()[]\,;:"`, a local part of 1..=64 characters (dots anywhere: older Japanese
/// mobile addresses such as `taro..@docomo.ne.jp` exist and still receive mail), a
/// domain with a dot and no empty label, at most 254 characters in all. Full-width
/// input is folded; the domain is lower-cased (it is case-insensitive, the local part
/// is not).
pub fn normalize_email(input: &str) -> Option<String> {
    let folded = fold_width(input);
    let s = folded.trim();
    if s.chars().count() > MAX_EMAIL_CHARS
        || s.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(
                    c,
                    '<' | '>' | '(' | ')' | '[' | ']' | '\\' | ',' | ';' | ':' | '"'
                )
        })
    {
        return None;
    }
    let (local, domain) = s.split_once('@')?;
    if domain.contains('@') || local.is_empty() || local.chars().count() > 64 {
        return None;
    }
    if !domain.contains('.') || domain.split('.').any(str::is_empty) {
        return None;
    }
    Some(format!("{local}@{}", domain.to_lowercase()))
}

/// `"595-0000"`, `"5950000"`, `"〒595-0000"`, full-width → `"5950000"`.
pub fn normalize_postal_code(input: &str) -> Option<String> {
    if input.chars().count() > MAX_SHORT_INPUT_CHARS {
        return None;
    }
    let folded = fold_width(input);
    let s = folded.trim();
    let s = s.strip_prefix('〒').unwrap_or(s).trim_start();
    let b = s.as_bytes();
    let digits: String = match b.len() {
        7 => s.to_owned(),
        8 if b[3] == b'-' || b[3] == b' ' => format!("{}{}", &s[..3], &s[4..]),
        _ => return None,
    };
    (digits.len() == 7 && digits.bytes().all(|c| c.is_ascii_digit())).then_some(digits)
}

/// A typed number: full-width folded, thousands commas dropped, then
/// `[+-]?digits[.digits]` (no exponent, no `inf`/`NaN`).
fn parse_number(s: &str) -> Option<f64> {
    if s.chars().count() > MAX_SHORT_INPUT_CHARS {
        return None;
    }
    let folded: String = fold_width(s).trim().chars().filter(|c| *c != ',').collect();
    let body = folded.strip_prefix(['-', '+']).unwrap_or(&folded);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits_ok = |p: &str| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit());
    if !digits_ok(int) || !frac.is_none_or(digits_ok) {
        return None;
    }
    folded.parse().ok()
}

/// Integral values within the exact range become JSON integers, others floats.
fn number_value(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() <= MAX_NUMBER_ABS {
        Value::from(x as i64)
    } else {
        Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

const NAME_PARTS: [&str; 4] = ["family", "given", "family_kana", "given_kana"];
const ADDRESS_PARTS: [&str; 3] = ["postal_code", "address", "building"];

/// An object answer: unknown keys refused (`id.key`), values strings or null.
fn parts<'v>(
    raw: &'v Value,
    id: &str,
    allowed: &[&str],
) -> Result<Option<&'v Map<String, Value>>, Vec<FieldError>> {
    let m = match raw {
        Value::Null => return Ok(None),
        Value::Object(m) => m,
        _ => return Err(wrong_type(id)),
    };
    let mut errors = Vec::new();
    for (k, v) in m {
        if !allowed.contains(&k.as_str()) {
            if errors.len() < MAX_UNKNOWN_KEY_ERRORS {
                let path = if is_valid_field_id(k) {
                    format!("{id}.{k}")
                } else {
                    id.to_owned()
                };
                errors.push(FieldError::new(
                    path,
                    "unknown_field",
                    "この項目にない回答が含まれています。",
                ));
            }
        } else if !matches!(v, Value::String(_) | Value::Null) {
            errors.push(FieldError::new(
                format!("{id}.{k}"),
                "wrong_type",
                "回答の形式が正しくありません。",
            ));
        }
    }
    if errors.is_empty() {
        Ok(Some(m))
    } else {
        Err(errors)
    }
}

fn part<'v>(m: &'v Map<String, Value>, key: &str) -> &'v str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

fn read_name(field: &Field, raw: &Value, kana: bool) -> Result<Option<Value>, Vec<FieldError>> {
    let id = field.id.as_str();
    let allowed = name_parts(kana);
    let m = without_blank_kana(raw, kana);
    let Some(m) = parts(&m, id, allowed)? else {
        return Ok(None);
    };
    let mut out = Map::new();
    let mut errors = Vec::new();
    for key in allowed {
        let path = format!("{id}.{key}");
        let s = part(m, key);
        if s.len() > 4 * MAX_NAME_PART_CHARS {
            errors.extend(too_long(
                &path,
                &name_part_label(field, key),
                MAX_NAME_PART_CHARS,
            ));
            continue;
        }
        let cleaned = if key.ends_with("_kana") {
            match to_katakana(s) {
                Some(k) => k,
                None => {
                    errors.push(FieldError::new(
                        path,
                        "not_katakana",
                        format!(
                            "{}は全角カタカナで入力してください。",
                            name_part_label(field, key)
                        ),
                    ));
                    continue;
                }
            }
        } else {
            match clean_text(s, false) {
                Ok(t) => t,
                Err(p) => {
                    errors.extend(text_problem(&path, &name_part_label(field, key), p));
                    continue;
                }
            }
        };
        if !cleaned.is_empty() {
            out.insert((*key).to_owned(), Value::String(cleaned));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

fn name_parts(kana: bool) -> &'static [&'static str] {
    if kana { &NAME_PARTS } else { &NAME_PARTS[..2] }
}

/// Blank kana parts from a generic client are tolerated when the form asks no kana.
fn without_blank_kana(raw: &Value, kana: bool) -> Cow<'_, Value> {
    match raw {
        Value::Object(m) if !kana => {
            let mut m = m.clone();
            m.retain(|k, v| {
                !(k.ends_with("_kana")
                    && NAME_PARTS.contains(&k.as_str())
                    && v.as_str().is_none_or(|s| s.trim().is_empty()))
            });
            Cow::Owned(Value::Object(m))
        }
        other => Cow::Borrowed(other),
    }
}

/// `「氏名」の姓（フリガナ）`: the label of one part of a name field.
fn name_part_label(field: &Field, key: &str) -> String {
    let part = match key {
        "family" => "姓",
        "given" => "名",
        "family_kana" => "姓（フリガナ）",
        _ => "名（フリガナ）",
    };
    format!("「{}」の{part}", field.label)
}

fn address_part_label(field: &Field, key: &str) -> String {
    let part = match key {
        "postal_code" => "郵便番号",
        "address" => "住所",
        _ => "建物名・部屋番号",
    };
    format!("「{}」の{part}", field.label)
}

fn read_address(field: &Field, raw: &Value) -> Result<Option<Value>, Vec<FieldError>> {
    let id = field.id.as_str();
    let Some(m) = parts(raw, id, &ADDRESS_PARTS)? else {
        return Ok(None);
    };
    let mut out = Map::new();
    let mut errors = Vec::new();
    for key in ADDRESS_PARTS {
        let path = format!("{id}.{key}");
        let s = part(m, key);
        if s.trim().is_empty() {
            continue;
        }
        if key == "postal_code" {
            match normalize_postal_code(s) {
                Some(p) => {
                    out.insert(key.to_owned(), Value::String(p));
                }
                None => errors.extend(postal_error(&path)),
            }
            continue;
        }
        if s.len() > 4 * MAX_ADDRESS_CHARS {
            errors.extend(too_long(
                &path,
                &address_part_label(field, key),
                MAX_ADDRESS_CHARS,
            ));
            continue;
        }
        match clean_text(s, false) {
            Ok(t) => {
                out.insert(key.to_owned(), Value::String(t));
            }
            Err(p) => errors.extend(text_problem(&path, &address_part_label(field, key), p)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

/// The definition's limits on a read answer.
fn constrain(field: &Field, v: &Value, today: Date) -> Vec<FieldError> {
    let id = field.id.as_str();
    let label = field.label.as_str();
    let mut errors = Vec::new();
    match &field.kind {
        FieldKind::Text {
            multiline,
            min_length,
            max_length,
        } => {
            let n = v.as_str().map_or(0, |s| s.chars().count());
            let max = max_length.unwrap_or(u32::MAX).min(text_cap(*multiline)) as usize;
            if n > max {
                errors.extend(too_long(id, label, max));
            } else if let Some(min) = min_length
                && n < *min as usize
            {
                errors.push(FieldError::new(
                    id,
                    "too_short",
                    format!("「{label}」は{min}文字以上で入力してください。"),
                ));
            }
        }
        FieldKind::Checkbox {
            min_choices,
            max_choices,
            ..
        } => {
            let n = v.as_array().map_or(0, Vec::len);
            if let Some(min) = min_choices
                && n < *min as usize
            {
                errors.push(FieldError::new(
                    id,
                    "too_few",
                    format!("「{label}」は{min}個以上選択してください。"),
                ));
            }
            if let Some(max) = max_choices
                && n > *max as usize
            {
                errors.push(FieldError::new(
                    id,
                    "too_many",
                    format!("「{label}」は{max}個以内で選択してください。"),
                ));
            }
        }
        FieldKind::Date { min, max } => {
            let Some(d) = v.as_str().and_then(|s| s.parse::<Date>().ok()) else {
                return errors;
            };
            let bound = |b: &Option<String>| b.as_deref().and_then(|b| date_bound(b, today));
            if let Some(min) = bound(min)
                && d < min
            {
                errors.push(FieldError::new(
                    id,
                    "out_of_range",
                    format!(
                        "「{label}」は{}以降の日付を入力してください。",
                        date_words(min)
                    ),
                ));
            }
            if let Some(max) = bound(max)
                && d > max
            {
                errors.push(FieldError::new(
                    id,
                    "out_of_range",
                    format!(
                        "「{label}」は{}以前の日付を入力してください。",
                        date_words(max)
                    ),
                ));
            }
        }
        FieldKind::Number { min, max, integer } => {
            let Some(x) = v.as_f64() else {
                return errors;
            };
            if *integer && x.fract() != 0.0 {
                errors.push(FieldError::new(
                    id,
                    "not_integer",
                    format!("「{label}」は整数で入力してください。"),
                ));
            }
            let below = min.is_some_and(|m| x < m);
            let above = max.is_some_and(|m| x > m);
            if below || above || x.abs() > MAX_NUMBER_ABS {
                let message = match (min, max) {
                    (Some(a), Some(b)) => format!(
                        "「{label}」は{}以上{}以下で入力してください。",
                        fmt_number(*a),
                        fmt_number(*b)
                    ),
                    (Some(a), None) => {
                        format!("「{label}」は{}以上で入力してください。", fmt_number(*a))
                    }
                    (None, Some(b)) => {
                        format!("「{label}」は{}以下で入力してください。", fmt_number(*b))
                    }
                    (None, None) => format!("「{label}」の値が大きすぎます。"),
                };
                errors.push(FieldError::new(id, "out_of_range", message));
            }
        }
        FieldKind::Name { kana } => {
            for key in name_parts(*kana) {
                let path = format!("{id}.{key}");
                match v.get(key).and_then(Value::as_str) {
                    None => errors.push(FieldError::new(
                        path,
                        "required",
                        format!("{}を入力してください。", name_part_label(field, key)),
                    )),
                    Some(s) if s.chars().count() > MAX_NAME_PART_CHARS => errors.extend(too_long(
                        &path,
                        &name_part_label(field, key),
                        MAX_NAME_PART_CHARS,
                    )),
                    Some(_) => {}
                }
            }
        }
        FieldKind::Address => {
            let line = v.get("address").and_then(Value::as_str);
            match line {
                None => errors.push(FieldError::new(
                    format!("{id}.address"),
                    "required",
                    format!(
                        "{}を入力してください。",
                        address_part_label(field, "address")
                    ),
                )),
                Some(s) if s.chars().count() > MAX_ADDRESS_CHARS => errors.extend(too_long(
                    &format!("{id}.address"),
                    &address_part_label(field, "address"),
                    MAX_ADDRESS_CHARS,
                )),
                Some(_) => {}
            }
            if let Some(b) = v.get("building").and_then(Value::as_str)
                && b.chars().count() > MAX_BUILDING_CHARS
            {
                errors.extend(too_long(
                    &format!("{id}.building"),
                    &address_part_label(field, "building"),
                    MAX_BUILDING_CHARS,
                ));
            }
        }
        _ => {}
    }
    errors
}

/// A date bound of the definition: `"YYYY-MM-DD"` or `"today"`.
pub(crate) fn date_bound(b: &str, today: Date) -> Option<Date> {
    if b == "today" {
        Some(today)
    } else {
        iso_date(b)
    }
}

/// Strict `YYYY-MM-DD`.
pub(crate) fn iso_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    if shape { s.parse().ok() } else { None }
}

/// `令和8年4月1日（2026年4月1日）`; the western form alone before 1873.
fn date_words(d: Date) -> String {
    let western = format!("{}年{}月{}日", d.year(), d.month(), d.day());
    match format_wareki(d) {
        Ok(w) => format!("{w}（{western}）"),
        Err(_) => western,
    }
}

fn fmt_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() <= MAX_NUMBER_ABS {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// The confirm screen's text for a valid answer.
fn display(field: &Field, v: &Value) -> String {
    let s = v.as_str().unwrap_or("");
    match &field.kind {
        FieldKind::Radio { options } | FieldKind::Select { options } => options
            .iter()
            .find(|o| o.value == s)
            .map_or_else(|| s.to_owned(), |o| o.label.clone()),
        FieldKind::Checkbox { options, .. } => v
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(|x| {
                        options
                            .iter()
                            .find(|o| o.value == x)
                            .map_or(x, |o| o.label.as_str())
                    })
                    .collect::<Vec<_>>()
                    .join("、")
            })
            .unwrap_or_default(),
        FieldKind::Phone => format_phone(s),
        FieldKind::Date { .. } => s.parse::<Date>().map_or_else(|_| s.to_owned(), date_words),
        FieldKind::Attachment { .. } => {
            format!("{}件", v.as_array().map_or(0, Vec::len))
        }
        FieldKind::MyNumber => mask_my_number(s),
        FieldKind::Number { .. } => match v {
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        },
        FieldKind::PostalCode => format_postal_code(s),
        FieldKind::Name { .. } => {
            let p = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
            let name = format!("{}\u{3000}{}", p("family"), p("given"));
            let kana = format!("{}\u{3000}{}", p("family_kana"), p("given_kana"));
            if kana.trim_matches('\u{3000}').is_empty() {
                name
            } else {
                format!("{name}（{kana}）")
            }
        }
        FieldKind::Address => {
            let p = |k: &str| v.get(k).and_then(Value::as_str);
            let mut parts = Vec::new();
            if let Some(pc) = p("postal_code") {
                parts.push(format_postal_code(pc));
            }
            parts.extend(p("address").map(str::to_owned));
            parts.extend(p("building").map(str::to_owned));
            parts.join(" ")
        }
        _ => s.to_owned(),
    }
}

/// `5950000` → `〒595-0000`.
pub fn format_postal_code(d: &str) -> String {
    if d.len() == 7 && d.is_ascii() {
        format!("〒{}-{}", &d[..3], &d[3..])
    } else {
        d.to_owned()
    }
}

/// The shape and size rules of a draft answer.
fn draft_shape(field: &Field, raw: &Value, errors: &mut Vec<FieldError>) {
    let id = field.id.as_str();
    let label = field.label.as_str();
    let string = |max: usize, errors: &mut Vec<FieldError>| match raw {
        Value::Null => {}
        Value::String(s) => {
            if s.chars().count() > max {
                errors.extend(too_long(id, label, max));
            }
        }
        _ => errors.extend(wrong_type(id)),
    };
    let strings = |max_items: usize, max: usize, errors: &mut Vec<FieldError>| match raw {
        Value::Null => {}
        Value::Array(a) => {
            if a.len() > max_items {
                errors.push(FieldError::new(
                    id,
                    "too_many",
                    format!("「{label}」の選択が多すぎます。"),
                ));
            } else if a
                .iter()
                .any(|e| e.as_str().is_none_or(|s| s.chars().count() > max))
            {
                errors.extend(wrong_type(id));
            }
        }
        _ => errors.extend(wrong_type(id)),
    };
    match &field.kind {
        FieldKind::Text { multiline, .. } => string(text_cap(*multiline) as usize, errors),
        FieldKind::Radio { .. } | FieldKind::Select { .. } => {
            string(MAX_OPTION_VALUE_CHARS, errors)
        }
        FieldKind::Checkbox { options, .. } => {
            strings(options.len(), MAX_OPTION_VALUE_CHARS, errors)
        }
        FieldKind::Phone | FieldKind::Date { .. } | FieldKind::MyNumber | FieldKind::PostalCode => {
            string(MAX_SHORT_INPUT_CHARS, errors)
        }
        FieldKind::Email => string(MAX_EMAIL_CHARS, errors),
        FieldKind::Number { .. } => {
            if !matches!(raw, Value::Number(_)) {
                string(MAX_SHORT_INPUT_CHARS, errors);
            }
        }
        FieldKind::Attachment { max_files, .. } => strings(
            (*max_files).min(MAX_FILES) as usize,
            MAX_SHORT_INPUT_CHARS,
            errors,
        ),
        FieldKind::Name { kana } => {
            let allowed = name_parts(*kana);
            object_shape(
                &without_blank_kana(raw, *kana),
                id,
                allowed,
                |_| MAX_NAME_PART_CHARS,
                |k| name_part_label(field, k),
                errors,
            );
        }
        FieldKind::Address => object_shape(
            raw,
            id,
            &ADDRESS_PARTS,
            |k| match k {
                "postal_code" => MAX_SHORT_INPUT_CHARS,
                "address" => MAX_ADDRESS_CHARS,
                _ => MAX_BUILDING_CHARS,
            },
            |k| address_part_label(field, k),
            errors,
        ),
        FieldKind::Heading | FieldKind::Explanation | FieldKind::Section { .. } => {}
    }
}

fn object_shape(
    raw: &Value,
    id: &str,
    allowed: &[&str],
    max: impl Fn(&str) -> usize,
    part_label: impl Fn(&str) -> String,
    errors: &mut Vec<FieldError>,
) {
    match parts(raw, id, allowed) {
        Err(es) => errors.extend(es),
        Ok(None) => {}
        Ok(Some(m)) => {
            for (k, v) in m {
                let max = max(k);
                if v.as_str().is_some_and(|s| s.chars().count() > max) {
                    errors.extend(too_long(&format!("{id}.{k}"), &part_label(k), max));
                }
            }
        }
    }
}

//! Fields filled from, and locked to, the signing certificate's 基本4情報 (basic four).
//!
//! A form with a signature may mark fields `from_certificate`. The citizen's SPA fills them
//! with [`prefill`] from the certificate the card presents and does not let them be edited;
//! at submission [`check_locks`] compares the answers with the certificate of the verified
//! signature. A mismatch (a client that ignored the lock, or a different card) does not
//! refuse the application: the signature still proves who signed what, so it is recorded
//! and shown to staff, who decide.
//!
//! Values are compared as people read them: spaces (half- or full-width) are ignored, so
//! 「山田　太郎」 and 「山田太郎」 match; nothing else is folded, since a 外字 substitute is a
//! real difference staff should see.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::answers::Answers;
use super::definition::{CertItem, Choice, Field, FieldKind, FormDefinition};

/// The 基本4情報 as the certificate writes them (JPKI profile): `birth_date` is `EYYYYMMDD`
/// (era digit, then the Gregorian date), `gender` is `1` 男, `2` 女, `3` 不明.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertValues {
    pub name: Option<String>,
    pub address: Option<String>,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
}

impl CertValues {
    fn get(&self, item: CertItem) -> Option<&str> {
        match item {
            CertItem::Name => self.name.as_deref(),
            CertItem::Address => self.address.as_deref(),
            CertItem::BirthDate => self.birth_date.as_deref(),
            CertItem::Gender => self.gender.as_deref(),
        }
        .filter(|s| !s.trim().is_empty())
    }
}

/// One locked field compared with the certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockCheck {
    pub field: String,
    pub item: CertItem,
    /// The certificate's value, as shown to people (the date as `YYYY-MM-DD`, gender in words).
    pub certificate: String,
    /// The answer, as shown to people (empty when not answered).
    pub answer: String,
    pub matches: bool,
}

/// Answers for every locked field the certificate has a value for, shaped for the field's type.
pub fn prefill(def: &FormDefinition, cert: &CertValues) -> Answers {
    let mut out = Map::new();
    for f in def.all_items() {
        let Some(item) = f.from_certificate else {
            continue;
        };
        if let Some(v) = cert.get(item).and_then(|raw| answer_for(f, item, raw)) {
            out.insert(f.id.clone(), v);
        }
    }
    out
}

/// Compares every locked field's answer with the certificate. A field the certificate has no
/// value for is reported as not matching (staff should know the lock could not hold).
pub fn check_locks(def: &FormDefinition, answers: &Answers, cert: &CertValues) -> Vec<LockCheck> {
    def.all_items()
        .filter_map(|f| f.from_certificate.map(|item| (f, item)))
        .map(|(f, item)| {
            let raw = cert.get(item);
            let certificate = raw.map(|r| shown(item, r)).unwrap_or_default();
            let answer = answers.get(&f.id).map(answer_text).unwrap_or_default();
            let expected = raw.and_then(|r| answer_for(f, item, r));
            let matches = match (&expected, answers.get(&f.id)) {
                (Some(e), Some(a)) => squash(&answer_text(e)) == squash(&answer_text(a)),
                _ => false,
            };
            LockCheck {
                field: f.id.clone(),
                item,
                certificate,
                answer,
                matches,
            }
        })
        .collect()
}

/// `EYYYYMMDD` → `YYYY-MM-DD`, when the date exists.
pub fn cert_birth_date(raw: &str) -> Option<String> {
    let digits = raw.trim();
    if digits.len() != 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let iso = format!("{}-{}-{}", &digits[1..5], &digits[5..7], &digits[7..9]);
    iso.parse::<jiff::civil::Date>().ok().map(|_| iso)
}

fn gender_words(code: &str) -> &'static [&'static str] {
    match code.trim() {
        "1" => &["男", "男性", "male", "m"],
        "2" => &["女", "女性", "female", "f"],
        "3" => &["不明"],
        _ => &[],
    }
}

fn shown(item: CertItem, raw: &str) -> String {
    match item {
        CertItem::BirthDate => cert_birth_date(raw).unwrap_or_else(|| raw.to_owned()),
        CertItem::Gender => gender_words(raw)
            .first()
            .map_or_else(|| raw.to_owned(), |w| (*w).to_owned()),
        _ => raw.to_owned(),
    }
}

/// The option of a choice field that stands for the certificate's gender code.
fn gender_option<'a>(options: &'a [Choice], code: &str) -> Option<&'a Choice> {
    let words = gender_words(code);
    options.iter().find(|o| {
        o.value == code.trim()
            || words
                .iter()
                .any(|w| o.value.eq_ignore_ascii_case(w) || o.label.trim() == *w)
    })
}

fn answer_for(f: &Field, item: CertItem, raw: &str) -> Option<Value> {
    let text = |s: String| Some(Value::String(s));
    match (item, &f.kind) {
        (CertItem::Name, FieldKind::Name { .. }) => {
            let raw = raw.trim();
            let (family, given) = match raw.find([' ', '\u{3000}']) {
                Some(i) => {
                    let (a, b) = raw.split_at(i);
                    (a, b.trim_start_matches([' ', '\u{3000}']))
                }
                None => (raw, ""),
            };
            let mut m = Map::new();
            m.insert("family".into(), Value::String(family.to_owned()));
            m.insert("given".into(), Value::String(given.to_owned()));
            Some(Value::Object(m))
        }
        (CertItem::Address, FieldKind::Address) => {
            let mut m = Map::new();
            m.insert("address".into(), Value::String(raw.trim().to_owned()));
            Some(Value::Object(m))
        }
        (CertItem::BirthDate, FieldKind::Date { .. } | FieldKind::Text { .. }) => {
            cert_birth_date(raw).and_then(text)
        }
        (CertItem::Gender, FieldKind::Radio { options } | FieldKind::Select { options }) => {
            gender_option(options, raw).and_then(|o| text(o.value.clone()))
        }
        (_, FieldKind::Text { .. }) => text(shown(item, raw)),
        _ => None,
    }
}

/// An answer as one line of text: a name's family and given name, an address with its
/// building; kana and postal codes are not part of the certificate.
fn answer_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(m) => {
            let part = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("");
            if m.contains_key("family") || m.contains_key("given") {
                format!("{}\u{3000}{}", part("family"), part("given"))
                    .trim_matches('\u{3000}')
                    .to_owned()
            } else {
                format!("{}{}", part("address"), part("building"))
            }
        }
        _ => String::new(),
    }
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form::{Field, SignaturePolicy};
    use serde_json::json;

    fn form() -> FormDefinition {
        let mut def = FormDefinition::new(
            "署名付き申請",
            vec![
                Field::new("name", "氏名", FieldKind::Name { kana: false })
                    .from_certificate(CertItem::Name),
                Field::new("address", "住所", FieldKind::Address)
                    .from_certificate(CertItem::Address),
                Field::new(
                    "birth",
                    "生年月日",
                    FieldKind::Date {
                        min: None,
                        max: None,
                    },
                )
                .from_certificate(CertItem::BirthDate),
                Field::new(
                    "gender",
                    "性別",
                    FieldKind::Radio {
                        options: vec![Choice::new("male", "男性"), Choice::new("female", "女性")],
                    },
                )
                .from_certificate(CertItem::Gender),
            ],
        );
        def.signature = SignaturePolicy::Required;
        def
    }

    fn cert() -> CertValues {
        CertValues {
            name: Some("署名　花子".into()),
            address: Some("大阪府泉大津市東雲町9番12号".into()),
            birth_date: Some("419900401".into()),
            gender: Some("2".into()),
        }
    }

    #[test]
    fn prefill_shapes_each_field() {
        let p = prefill(&form(), &cert());
        assert_eq!(p["name"], json!({"family": "署名", "given": "花子"}));
        assert_eq!(
            p["address"],
            json!({"address": "大阪府泉大津市東雲町9番12号"})
        );
        assert_eq!(p["birth"], json!("1990-04-01"));
        assert_eq!(p["gender"], json!("female"));
    }

    #[test]
    fn prefilled_answers_match_and_edits_do_not() {
        let def = form();
        let mut answers = prefill(&def, &cert());
        assert!(
            check_locks(&def, &answers, &cert())
                .iter()
                .all(|c| c.matches)
        );
        // Spaces are not a difference.
        answers.insert("name".into(), json!({"family": "署名", "given": " 花子"}));
        assert!(
            check_locks(&def, &answers, &cert())
                .iter()
                .all(|c| c.matches)
        );
        answers.insert("gender".into(), json!("male"));
        answers.insert("birth".into(), json!("1990-04-02"));
        let checks = check_locks(&def, &answers, &cert());
        let failed: Vec<_> = checks
            .iter()
            .filter(|c| !c.matches)
            .map(|c| (c.field.as_str(), c.certificate.as_str(), c.answer.as_str()))
            .collect();
        assert_eq!(
            failed,
            vec![
                ("birth", "1990-04-01", "1990-04-02"),
                ("gender", "女", "male")
            ]
        );
    }

    #[test]
    fn a_missing_certificate_value_never_matches() {
        let def = form();
        let answers = prefill(&def, &cert());
        let none = CertValues::default();
        assert!(
            check_locks(&def, &answers, &none)
                .iter()
                .all(|c| !c.matches)
        );
        assert!(prefill(&def, &none).is_empty());
    }

    #[test]
    fn locks_need_a_signature_a_fitting_type_and_one_field_per_item() {
        assert!(crate::form::validate_definition(&form()).is_empty());
        let mut def = form();
        def.signature = SignaturePolicy::None_;
        def.items.push(
            Field::new("phone", "電話", FieldKind::Phone).from_certificate(CertItem::Address),
        );
        def.items.push(
            Field::new("name2", "氏名2", FieldKind::Name { kana: false })
                .from_certificate(CertItem::Name),
        );
        let codes: Vec<_> = crate::form::validate_definition(&def)
            .into_iter()
            .filter(|e| e.field.ends_with("from_certificate"))
            .map(|e| (e.field, e.code))
            .collect();
        assert!(codes.contains(&("items[4].from_certificate".into(), "not_applicable".into())));
        assert!(codes.contains(&("items[5].from_certificate".into(), "duplicate".into())));
        assert_eq!(
            codes.iter().filter(|(_, c)| c == "not_applicable").count(),
            7,
            "{codes:?}"
        );
        let parsed = crate::form::parse_definition(&json!({
            "title": "t", "signature": "required",
            "items": [{"id": "a", "type": "text", "label": "a", "from_certificate": "shoe_size"}]
        }))
        .unwrap_err();
        assert_eq!(parsed[0].field, "items[0].from_certificate");
    }

    #[test]
    fn birth_dates_must_exist() {
        assert_eq!(cert_birth_date("320000229").as_deref(), Some("2000-02-29"));
        assert_eq!(cert_birth_date("319990229"), None);
        assert_eq!(cert_birth_date("4199004"), None);
        assert_eq!(cert_birth_date("x19900401"), None);
    }
}

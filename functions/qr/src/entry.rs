//! The entry as the citizen's browser sends it, and its checks.
//!
//! Values arrive as text (dates as `YYYY-MM-DD`, sex and 続柄 as names) so that every
//! problem becomes a field error in Japanese rather than one "cannot read the body": an
//! impossible date (2月30日) must be answered on its field. [`check`] builds the
//! [`PreApplication`] that is sealed, runs `madoguchi_qrseal::validate` on it and adds what
//! needs the postal data: the tenant-side address inside the municipality, and the postal
//! code matching the address text.

use std::collections::HashSet;

use jiff::civil::Date;
use madoguchi_domain::error::FieldError;
use madoguchi_domain::tenant::TenantId;
use madoguchi_qrseal::{
    Address, Person, PreApplication, Procedure, Relationship, Sex, parse_date, validate,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The household for the 住民異動届, as entered. Members: the householder (世帯主) first.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// 異動日 (the move date), `YYYY-MM-DD`.
    #[serde(default)]
    pub move_date: String,
    /// 今の住所 (before the move).
    #[serde(default)]
    pub old_address: AddressEntry,
    /// 新しい住所 (after the move).
    #[serde(default)]
    pub new_address: AddressEntry,
    /// 世帯主 first, then each member (1–30).
    #[serde(default)]
    pub members: Vec<PersonEntry>,
    /// Procedure ids the life-event guide chose (`kokuho`, `jidoteate` …).
    #[serde(default)]
    pub procedures: Vec<String>,
}

#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressEntry {
    /// 郵便番号, 7 digits (a hyphen and full-width digits are accepted); empty for an
    /// address abroad.
    #[serde(default)]
    pub postal_code: String,
    /// 住所: starts with the prefecture and city of the postal code.
    #[serde(default)]
    pub address: String,
    /// 方書 (building and room), may be empty.
    #[serde(default)]
    pub katagaki: String,
}

#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonEntry {
    /// 氏 (family name).
    #[serde(default)]
    pub family_name: String,
    /// 名 (given name); empty only for a foreign national with a single name.
    #[serde(default)]
    pub given_name: String,
    /// フリガナ of the family name, full-width katakana.
    #[serde(default)]
    pub family_kana: String,
    #[serde(default)]
    pub given_kana: String,
    /// 生年月日, `YYYY-MM-DD`.
    #[serde(default)]
    pub birth_date: String,
    /// 性別: `male` or `female`.
    #[serde(default)]
    pub sex: String,
    /// 続柄: `householder`, `wife`, `husband`, `child`, `father`, `mother`, `grandchild`,
    /// `grandfather`, `grandmother`, `elder_brother`, `elder_sister`, `younger_brother`,
    /// `younger_sister`, `childs_wife`, `childs_husband`, `cohabitant` or `other` (with
    /// `relationship_text`).
    #[serde(default)]
    pub relationship: String,
    /// The 続柄 in words when `relationship` is `other` (妻の母, 縁故者 …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship_text: Option<String>,
    /// ISO 3166-1 alpha-2 code for a foreign national; absent for a Japanese national.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nationality: Option<String>,
}

// Debug never shows personal data: these values can end up in logs and panic messages.
impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("members", &self.members.len())
            .field("procedures", &self.procedures)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AddressEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressEntry").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PersonEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonEntry")
            .field("relationship", &self.relationship)
            .finish_non_exhaustive()
    }
}

/// The API's name of a notification: the life-event guide's event ids where it has one.
pub fn procedure_name(p: Procedure) -> &'static str {
    match p {
        Procedure::MoveIn => "tennyu",
        Procedure::MoveOut => "tenshutsu",
        Procedure::MoveWithin => "tenkyo",
        Procedure::HouseholdChange => "setai_henko",
    }
}

pub fn parse_procedure(name: &str) -> Option<Procedure> {
    Procedure::ALL
        .into_iter()
        .find(|p| procedure_name(*p) == name)
}

pub fn sex_name(s: Sex) -> &'static str {
    match s {
        Sex::Male => "male",
        Sex::Female => "female",
    }
}

pub fn sex_label(s: Sex) -> &'static str {
    match s {
        Sex::Male => "男",
        Sex::Female => "女",
    }
}

fn parse_sex(name: &str) -> Option<Sex> {
    [Sex::Male, Sex::Female]
        .into_iter()
        .find(|s| sex_name(*s) == name)
}

pub fn relationship_name(r: &Relationship) -> &'static str {
    match r {
        Relationship::Householder => "householder",
        Relationship::Wife => "wife",
        Relationship::Husband => "husband",
        Relationship::Child => "child",
        Relationship::Father => "father",
        Relationship::Mother => "mother",
        Relationship::Grandchild => "grandchild",
        Relationship::Grandfather => "grandfather",
        Relationship::Grandmother => "grandmother",
        Relationship::ElderBrother => "elder_brother",
        Relationship::ElderSister => "elder_sister",
        Relationship::YoungerBrother => "younger_brother",
        Relationship::YoungerSister => "younger_sister",
        Relationship::ChildsWife => "childs_wife",
        Relationship::ChildsHusband => "childs_husband",
        Relationship::Cohabitant => "cohabitant",
        Relationship::Other(_) => "other",
    }
}

fn parse_relationship(name: &str, text: Option<&str>) -> Option<Relationship> {
    if name == "other" {
        return Some(Relationship::Other(text.unwrap_or_default().to_owned()));
    }
    // Codes 1–16 are the named relationships of the sealed format.
    (1..=16)
        .filter_map(Relationship::from_code)
        .find(|r| relationship_name(r) == name)
}

fn normalize_postal(code: &str) -> Option<String> {
    let code = code.trim();
    if code.is_empty() {
        return None;
    }
    // A code the postal data cannot normalise is kept as typed, so that qrseal's format
    // check reports it on its field.
    Some(madoguchi_postal::normalize(code).unwrap_or_else(|| code.to_owned()))
}

fn address(a: &AddressEntry) -> Address {
    Address {
        postal_code: normalize_postal(&a.postal_code),
        address: a.address.clone(),
        katagaki: a.katagaki.clone(),
    }
}

/// The entry as stored and shown back: the same shape, values normalised (postal codes
/// as 7 digits, dates as `YYYY-MM-DD`).
pub fn from_application(app: &PreApplication) -> Entry {
    let address = |a: &Address| AddressEntry {
        postal_code: a.postal_code.clone().unwrap_or_default(),
        address: a.address.clone(),
        katagaki: a.katagaki.clone(),
    };
    Entry {
        move_date: app.move_date.to_string(),
        old_address: address(&app.old_address),
        new_address: address(&app.new_address),
        members: app
            .members
            .iter()
            .map(|p| PersonEntry {
                family_name: p.family_name.clone(),
                given_name: p.given_name.clone(),
                family_kana: p.family_kana.clone(),
                given_kana: p.given_kana.clone(),
                birth_date: p.birth_date.to_string(),
                sex: sex_name(p.sex).to_owned(),
                relationship: relationship_name(&p.relationship).to_owned(),
                relationship_text: match &p.relationship {
                    Relationship::Other(text) => Some(text.clone()),
                    _ => None,
                },
                nationality: p.nationality.clone(),
            })
            .collect(),
        procedures: app.procedures.clone(),
    }
}

/// Checks an entry for `procedure` at the counter of `tenant`, `today` being the date in
/// Japan. Returns the pre-application to seal, or every field error found.
pub fn check(
    tenant: TenantId,
    procedure: Procedure,
    entry: &Entry,
    today: Date,
) -> Result<PreApplication, Vec<FieldError>> {
    let mut errors: Vec<FieldError> = Vec::new();
    let date = |field: String, text: &str, errors: &mut Vec<FieldError>| {
        // A date that does not parse is reported here; today stands in for it so that the
        // rest can still be checked (and today raises nothing on its own).
        parse_date(&field, text).unwrap_or_else(|e| {
            errors.push(from_seal(e));
            today
        })
    };
    let move_date = date("move_date".to_owned(), &entry.move_date, &mut errors);
    let mut members = Vec::with_capacity(entry.members.len());
    for (i, p) in entry.members.iter().enumerate() {
        let at = |f: &str| format!("members[{i}].{f}");
        let birth_date = date(at("birth_date"), &p.birth_date, &mut errors);
        let sex = if p.sex.is_empty() {
            errors.push(FieldError::new(
                at("sex"),
                "required",
                "性別を選んでください。",
            ));
            Sex::Male
        } else {
            parse_sex(&p.sex).unwrap_or_else(|| {
                errors.push(FieldError::new(
                    at("sex"),
                    "invalid",
                    "性別の指定が正しくありません。",
                ));
                Sex::Male
            })
        };
        let fallback = || {
            // Stands in for an unreadable 続柄 without raising householder errors.
            if i == 0 {
                Relationship::Householder
            } else {
                Relationship::Other("-".to_owned())
            }
        };
        let relationship = if p.relationship.is_empty() {
            errors.push(FieldError::new(
                at("relationship"),
                "required",
                "続柄を選んでください。",
            ));
            fallback()
        } else {
            parse_relationship(&p.relationship, p.relationship_text.as_deref()).unwrap_or_else(
                || {
                    errors.push(FieldError::new(
                        at("relationship"),
                        "invalid",
                        "続柄の指定が正しくありません。",
                    ));
                    fallback()
                },
            )
        };
        members.push(Person {
            family_name: p.family_name.clone(),
            given_name: p.given_name.clone(),
            family_kana: p.family_kana.clone(),
            given_kana: p.given_kana.clone(),
            birth_date,
            sex,
            relationship,
            nationality: p.nationality.clone().filter(|n| !n.is_empty()),
        });
    }
    let app = PreApplication {
        tenant,
        procedure,
        move_date,
        old_address: address(&entry.old_address),
        new_address: address(&entry.new_address),
        members,
        procedures: entry.procedures.clone(),
    };
    let reported: HashSet<String> = errors.iter().map(|e| e.field.clone()).collect();
    if let Err(found) = validate(&app, today) {
        errors.extend(
            found
                .into_iter()
                .filter(|e| !reported.contains(&e.field))
                .map(from_seal),
        );
    }
    let reported: HashSet<String> = errors.iter().map(|e| e.field.clone()).collect();
    errors.extend(postal_errors(&app, &reported));
    if errors.is_empty() {
        Ok(app)
    } else {
        Err(errors)
    }
}

pub(crate) fn from_seal(e: madoguchi_qrseal::FieldError) -> FieldError {
    FieldError::new(e.field, e.code, e.message)
}

/// Which addresses lie on this municipality's side of the notification.
fn tenant_side(procedure: Procedure) -> (bool, bool) {
    // (old, new)
    match procedure {
        Procedure::MoveIn => (false, true),
        Procedure::MoveOut => (true, false),
        Procedure::MoveWithin | Procedure::HouseholdChange => (true, true),
    }
}

fn compact(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The checks that need the postal data. Fields in `reported` already have an error (a
/// postal code that is not 7 digits, an empty address) and are not checked again.
fn postal_errors(app: &PreApplication, reported: &HashSet<String>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let (old_side, new_side) = tenant_side(app.procedure);
    for (path, a, ours) in [
        ("old_address", &app.old_address, old_side),
        ("new_address", &app.new_address, new_side),
    ] {
        let code_field = format!("{path}.postal_code");
        if reported.contains(&code_field) {
            continue;
        }
        let Some(code) = &a.postal_code else {
            if ours {
                // Needed to tell whether the address is inside the municipality.
                errors.push(FieldError::new(
                    code_field,
                    "required",
                    "郵便番号を入力してください。",
                ));
            }
            continue;
        };
        let entries = madoguchi_postal::lookup(code);
        if entries.is_empty() {
            errors.push(FieldError::new(
                code_field,
                "unknown",
                "この郵便番号は見つかりません。番号を確かめてください。",
            ));
            continue;
        }
        if ours {
            match madoguchi_postal::is_in_municipality(code, app.tenant.as_str()) {
                Some(true) => {}
                Some(false) => errors.push(FieldError::new(
                    code_field.clone(),
                    "outside_municipality",
                    if path == "new_address" {
                        "新しい住所は、この市区町村内の住所を入力してください。"
                    } else {
                        "今の住所は、この市区町村内の住所を入力してください。"
                    },
                )),
                None => errors.push(FieldError::new(
                    code_field.clone(),
                    "unknown",
                    "この郵便番号は見つかりません。番号を確かめてください。",
                )),
            }
        }
        let address_field = format!("{path}.address");
        if reported.contains(&address_field) {
            continue;
        }
        let text = compact(&a.address);
        let matches = entries
            .iter()
            .any(|e| text.starts_with(&compact(&format!("{}{}", e.prefecture, e.city))));
        if !matches {
            errors.push(FieldError::new(
                address_field,
                "postal_code_mismatch",
                "郵便番号と住所が一致しません。都道府県・市区町村から、郵便番号の地域の住所を入力してください。",
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Procedure::ALL {
            assert_eq!(parse_procedure(procedure_name(p)), Some(p));
        }
        for code in 1..=16 {
            let r = Relationship::from_code(code).unwrap();
            assert_eq!(parse_relationship(relationship_name(&r), None), Some(r));
        }
        assert_eq!(
            parse_relationship("other", Some("妻の母")),
            Some(Relationship::Other("妻の母".into()))
        );
        assert_eq!(parse_relationship("Wife", None), None);
        assert_eq!(parse_sex("female"), Some(Sex::Female));
        assert_eq!(parse_sex("f"), None);
    }

    #[test]
    fn debug_shows_no_personal_data() {
        let entry = Entry {
            move_date: "2026-04-01".into(),
            old_address: AddressEntry {
                postal_code: "1540001".into(),
                address: "東京都世田谷区池尻".into(),
                katagaki: "コーポ101".into(),
            },
            members: vec![PersonEntry {
                family_name: "和泉谷".into(),
                family_kana: "イズミヤ".into(),
                relationship: "householder".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let shown = format!("{entry:?} {:?} {:?}", entry.old_address, entry.members[0]);
        for secret in ["和泉谷", "イズミヤ", "世田谷", "コーポ", "1540001", "2026"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}

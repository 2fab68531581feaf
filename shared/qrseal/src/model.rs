//! The pre-application (事前申請) a citizen fills in before visiting the counter: what the
//! 住民異動届 needs, for the householder and each member, and the procedures the guide chose.
//!
//! The model holds checked types (dates are `jiff::civil::Date`, so an impossible date cannot
//! be represented); [`validate`] checks what types cannot (katakana, lengths, the householder
//! first) and answers field-level errors in Japanese.

use jiff::civil::Date;
use madoguchi_domain::tenant::TenantId;
use serde::{Deserialize, Serialize};

/// Most members a pre-application may hold. A household of 8 is the usual upper end; with
/// names of ordinary length about 31 fit the largest QR version allowed (see `docs/qr.md`),
/// and [`crate::seal`] refuses what does not fit whatever this says (long names).
pub const MAX_MEMBERS: usize = 30;
/// Longest family or given name, in characters.
pub const MAX_NAME_CHARS: usize = 30;
/// Longest address text and 方書, in characters.
pub const MAX_ADDRESS_CHARS: usize = 80;
pub const MAX_KATAGAKI_CHARS: usize = 40;
/// Longest free-text 続柄 (`Relationship::Other`), in characters.
pub const MAX_RELATIONSHIP_CHARS: usize = 16;
/// Most procedure ids, and the longest id in bytes.
pub const MAX_PROCEDURES: usize = 40;
pub const MAX_PROCEDURE_ID_BYTES: usize = 32;
/// Earliest birth date accepted (nobody alive was born before it).
pub const EARLIEST_BIRTH: Date = jiff::civil::date(1900, 1, 1);
/// How far the move date may lie from today, either way.
pub const MOVE_DATE_WINDOW_DAYS: i32 = 366;

/// The notification (届出) being prepared. Codes are part of the sealed format: never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Procedure {
    /// 転入届: moving in from another municipality.
    MoveIn,
    /// 転出届: moving out to another municipality.
    MoveOut,
    /// 転居届: moving within the municipality.
    MoveWithin,
    /// 世帯変更届: a change of household or householder without a move.
    HouseholdChange,
}

impl Procedure {
    pub const ALL: [Procedure; 4] = [
        Procedure::MoveIn,
        Procedure::MoveOut,
        Procedure::MoveWithin,
        Procedure::HouseholdChange,
    ];
    pub fn code(self) -> u8 {
        match self {
            Procedure::MoveIn => 1,
            Procedure::MoveOut => 2,
            Procedure::MoveWithin => 3,
            Procedure::HouseholdChange => 4,
        }
    }
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }
    pub fn label_ja(self) -> &'static str {
        match self {
            Procedure::MoveIn => "転入",
            Procedure::MoveOut => "転出",
            Procedure::MoveWithin => "転居",
            Procedure::HouseholdChange => "世帯変更",
        }
    }
}

/// 性別 as the resident register records it (codes of ISO/IEC 5218).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

impl Sex {
    pub fn code(self) -> u8 {
        match self {
            Sex::Male => 1,
            Sex::Female => 2,
        }
    }
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Sex::Male),
            2 => Some(Sex::Female),
            _ => None,
        }
    }
}

/// 続柄: the relationship to the householder, as written on the 住民票. Codes are part of
/// the sealed format: never reuse one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "text")]
pub enum Relationship {
    /// 世帯主
    Householder,
    /// 妻
    Wife,
    /// 夫
    Husband,
    /// 子
    Child,
    /// 父
    Father,
    /// 母
    Mother,
    /// 孫
    Grandchild,
    /// 祖父
    Grandfather,
    /// 祖母
    Grandmother,
    /// 兄
    ElderBrother,
    /// 姉
    ElderSister,
    /// 弟
    YoungerBrother,
    /// 妹
    YoungerSister,
    /// 子の妻
    ChildsWife,
    /// 子の夫
    ChildsHusband,
    /// 同居人
    Cohabitant,
    /// Anything else, as the citizen writes it (妻の母, 縁故者, 未届の妻 …).
    Other(String),
}

/// Code of [`Relationship::Other`] in the sealed format; its text follows.
pub(crate) const RELATIONSHIP_OTHER: u8 = 99;

impl Relationship {
    /// The stable code, `None` for [`Relationship::Other`] (code 99 plus text).
    pub fn code(&self) -> u8 {
        match self {
            Relationship::Householder => 1,
            Relationship::Wife => 2,
            Relationship::Husband => 3,
            Relationship::Child => 4,
            Relationship::Father => 5,
            Relationship::Mother => 6,
            Relationship::Grandchild => 7,
            Relationship::Grandfather => 8,
            Relationship::Grandmother => 9,
            Relationship::ElderBrother => 10,
            Relationship::ElderSister => 11,
            Relationship::YoungerBrother => 12,
            Relationship::YoungerSister => 13,
            Relationship::ChildsWife => 14,
            Relationship::ChildsHusband => 15,
            Relationship::Cohabitant => 16,
            Relationship::Other(_) => RELATIONSHIP_OTHER,
        }
    }
    /// The relationship of a code other than 99.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Relationship::Householder,
            2 => Relationship::Wife,
            3 => Relationship::Husband,
            4 => Relationship::Child,
            5 => Relationship::Father,
            6 => Relationship::Mother,
            7 => Relationship::Grandchild,
            8 => Relationship::Grandfather,
            9 => Relationship::Grandmother,
            10 => Relationship::ElderBrother,
            11 => Relationship::ElderSister,
            12 => Relationship::YoungerBrother,
            13 => Relationship::YoungerSister,
            14 => Relationship::ChildsWife,
            15 => Relationship::ChildsHusband,
            16 => Relationship::Cohabitant,
            _ => return None,
        })
    }
    pub fn label_ja(&self) -> &str {
        match self {
            Relationship::Householder => "世帯主",
            Relationship::Wife => "妻",
            Relationship::Husband => "夫",
            Relationship::Child => "子",
            Relationship::Father => "父",
            Relationship::Mother => "母",
            Relationship::Grandchild => "孫",
            Relationship::Grandfather => "祖父",
            Relationship::Grandmother => "祖母",
            Relationship::ElderBrother => "兄",
            Relationship::ElderSister => "姉",
            Relationship::YoungerBrother => "弟",
            Relationship::YoungerSister => "妹",
            Relationship::ChildsWife => "子の妻",
            Relationship::ChildsHusband => "子の夫",
            Relationship::Cohabitant => "同居人",
            Relationship::Other(text) => text,
        }
    }
}

/// An address: postal code, the address text and the 方書 (building, room; empty if none).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// 7 ASCII digits without hyphen; `None` where there is none (an address abroad).
    pub postal_code: Option<String>,
    pub address: String,
    #[serde(default)]
    pub katagaki: String,
}

/// One person of the household.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub family_name: String,
    /// May be empty only for a foreign national with a single name.
    pub given_name: String,
    /// フリガナ of the family name: full-width katakana.
    pub family_kana: String,
    pub given_kana: String,
    pub birth_date: Date,
    pub sex: Sex,
    pub relationship: Relationship,
    /// ISO 3166-1 alpha-2 code for a foreign national (`None`: Japanese).
    #[serde(default)]
    pub nationality: Option<String>,
}

/// Everything a sealed QR carries.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreApplication {
    pub tenant: TenantId,
    pub procedure: Procedure,
    pub move_date: Date,
    pub old_address: Address,
    pub new_address: Address,
    /// The householder (世帯主) first, then the other members.
    pub members: Vec<Person>,
    /// Procedure ids the life-event guide chose (`kokuho`, `jidoteate` …), in order.
    #[serde(default)]
    pub procedures: Vec<String>,
}

// Debug never shows personal data: these values end up in logs and panic messages.
impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Address").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person")
            .field("relationship", &self.relationship.code())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PreApplication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreApplication")
            .field("tenant", &self.tenant)
            .field("procedure", &self.procedure)
            .field("members", &self.members.len())
            .field("procedures", &self.procedures)
            .finish_non_exhaustive()
    }
}

/// One field-level error: a path such as `members[2].family_kana`, a stable code and a
/// Japanese message for the citizen (the `errors` of a problem+json answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: &'static str,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, message: &'static str) -> Self {
        Self {
            field: field.into(),
            code,
            message,
        }
    }
}

/// Whether `s` is non-empty full-width katakana: ァ–ヺ, the long-vowel mark ー, the iteration
/// marks ヽヾ, the middle dot ・ (between the parts of a foreign name) and spaces
/// (full- or half-width) between words.
pub fn is_katakana(s: &str) -> bool {
    !s.trim_matches([' ', '\u{3000}']).is_empty()
        && s.chars().all(|c| {
            matches!(
                c,
                '\u{30A1}'..='\u{30FA}' | 'ー' | 'ヽ' | 'ヾ' | '・' | ' ' | '\u{3000}'
            )
        })
}

/// Parses a `YYYY-MM-DD` date from a form field; an impossible date (2月30日) is refused.
pub fn parse_date(field: &str, s: &str) -> Result<Date, FieldError> {
    let format = || {
        FieldError::new(
            field,
            "date_format",
            "日付は YYYY-MM-DD の形式で入力してください。",
        )
    };
    let b = s.as_bytes();
    if b.len() != 10
        || b[4] != b'-'
        || b[7] != b'-'
        || !b
            .iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
    {
        return Err(format());
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<i16>().map_err(|_| format());
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (Ok(m), Ok(d)) = (i8::try_from(m), i8::try_from(d)) else {
        return Err(format());
    };
    Date::new(y, m, d).map_err(|_| FieldError::new(field, "invalid_date", "存在しない日付です。"))
}

/// Checks a pre-application; `today` is the date in Asia/Tokyo when it is checked. Returns
/// every error found, field by field, or `Ok` when it can be sealed.
pub fn validate(app: &PreApplication, today: Date) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let far = jiff::Span::new().days(MOVE_DATE_WINDOW_DAYS);
    let in_window = today
        .checked_sub(far)
        .ok()
        .zip(today.checked_add(far).ok())
        .is_some_and(|(lo, hi)| (lo..=hi).contains(&app.move_date));
    if !in_window {
        errors.push(FieldError::new(
            "move_date",
            "out_of_range",
            "異動日は今日の前後1年以内の日付を入力してください。",
        ));
    }
    check_address("old_address", &app.old_address, &mut errors);
    check_address("new_address", &app.new_address, &mut errors);

    if app.members.is_empty() {
        errors.push(FieldError::new(
            "members",
            "required",
            "世帯主を入力してください。",
        ));
    }
    if app.members.len() > MAX_MEMBERS {
        errors.push(FieldError::new(
            "members",
            "too_many",
            "一度に届け出られる人数を超えています。窓口でご相談ください。",
        ));
    }
    for (i, person) in app.members.iter().enumerate() {
        check_person(i, person, today, &mut errors);
    }

    if app.procedures.len() > MAX_PROCEDURES {
        errors.push(FieldError::new(
            "procedures",
            "too_many",
            "手続きの数が多すぎます。",
        ));
    }
    for (i, id) in app.procedures.iter().enumerate() {
        let ok = !id.is_empty()
            && id.len() <= MAX_PROCEDURE_ID_BYTES
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !ok {
            errors.push(FieldError::new(
                format!("procedures[{i}]"),
                "invalid",
                "手続きの指定が正しくありません。",
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_person(i: usize, p: &Person, today: Date, errors: &mut Vec<FieldError>) {
    let at = |f: &str| format!("members[{i}].{f}");
    let householder = matches!(p.relationship, Relationship::Householder);
    if i == 0 && !householder {
        errors.push(FieldError::new(
            at("relationship"),
            "householder_first",
            "最初の方は世帯主として入力してください。",
        ));
    }
    if i > 0 && householder {
        errors.push(FieldError::new(
            at("relationship"),
            "householder_twice",
            "世帯主は1人だけ入力してください。",
        ));
    }
    if let Relationship::Other(text) = &p.relationship {
        check_text(
            &at("relationship"),
            text,
            true,
            MAX_RELATIONSHIP_CHARS,
            errors,
        );
    }
    check_text(
        &at("family_name"),
        &p.family_name,
        true,
        MAX_NAME_CHARS,
        errors,
    );
    // A single-name foreign national has no given name (and so no given kana).
    let given_required = p.nationality.is_none();
    check_text(
        &at("given_name"),
        &p.given_name,
        given_required,
        MAX_NAME_CHARS,
        errors,
    );
    for (field, kana, required) in [
        ("family_kana", &p.family_kana, true),
        (
            "given_kana",
            &p.given_kana,
            given_required || !p.given_name.is_empty(),
        ),
    ] {
        if kana.is_empty() {
            if required {
                errors.push(FieldError::new(
                    at(field),
                    "required",
                    "フリガナを入力してください。",
                ));
            }
        } else if kana.chars().count() > MAX_NAME_CHARS {
            errors.push(FieldError::new(
                at(field),
                "too_long",
                "フリガナが長すぎます。",
            ));
        } else if !is_katakana(kana) {
            errors.push(FieldError::new(
                at(field),
                "katakana",
                "フリガナは全角カタカナで入力してください。",
            ));
        }
    }
    if p.birth_date > today {
        errors.push(FieldError::new(
            at("birth_date"),
            "future",
            "生年月日に未来の日付は入力できません。",
        ));
    } else if p.birth_date < EARLIEST_BIRTH {
        errors.push(FieldError::new(
            at("birth_date"),
            "out_of_range",
            "生年月日を確認してください。",
        ));
    }
    if let Some(n) = &p.nationality
        && !(n.len() == 2 && n.bytes().all(|b| b.is_ascii_uppercase()))
    {
        errors.push(FieldError::new(
            at("nationality"),
            "invalid",
            "国籍は2文字の国名コードで指定してください。",
        ));
    }
}

fn check_address(path: &str, a: &Address, errors: &mut Vec<FieldError>) {
    if let Some(code) = &a.postal_code
        && !(code.len() == 7 && code.bytes().all(|b| b.is_ascii_digit()))
    {
        errors.push(FieldError::new(
            format!("{path}.postal_code"),
            "invalid",
            "郵便番号は7桁の数字で入力してください。",
        ));
    }
    check_text(
        &format!("{path}.address"),
        &a.address,
        true,
        MAX_ADDRESS_CHARS,
        errors,
    );
    check_text(
        &format!("{path}.katagaki"),
        &a.katagaki,
        false,
        MAX_KATAGAKI_CHARS,
        errors,
    );
}

fn check_text(field: &str, s: &str, required: bool, max: usize, errors: &mut Vec<FieldError>) {
    if s.trim().is_empty() {
        if required {
            errors.push(FieldError::new(field, "required", "入力してください。"));
        } else if !s.is_empty() {
            errors.push(FieldError::new(
                field,
                "invalid_char",
                "空白だけの入力はできません。",
            ));
        }
    } else if s.chars().count() > max {
        errors.push(FieldError::new(field, "too_long", "長すぎます。"));
    } else if s.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            "invalid_char",
            "使用できない文字が含まれています。",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn katakana() {
        for ok in [
            "ヤマダ",
            "タロウ",
            "ジョン・スミス",
            "ヴァン　ダイク",
            "ヱ ー",
        ] {
            assert!(is_katakana(ok), "{ok}");
        }
        for bad in [
            "",
            "やまだ",
            "ﾔﾏﾀﾞ",
            "山田",
            "YAMADA",
            "ヤマダ1",
            "　",
            "ヤマ\nダ",
        ] {
            assert!(!is_katakana(bad), "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("d", "2024-02-29").unwrap(),
            jiff::civil::date(2024, 2, 29)
        );
        for bad in [
            "2023-02-29",
            "2024-02-30",
            "2024-13-01",
            "2024-00-10",
            "2024-04-31",
        ] {
            assert_eq!(
                parse_date("d", bad).unwrap_err().code,
                "invalid_date",
                "{bad}"
            );
        }
        for bad in [
            "2024-2-29",
            "2024/02/29",
            "",
            "20240229",
            "２０２４-02-29",
            "+024-02-29",
        ] {
            assert_eq!(
                parse_date("d", bad).unwrap_err().code,
                "date_format",
                "{bad}"
            );
        }
    }
}

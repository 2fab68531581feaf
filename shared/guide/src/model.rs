//! The guide as staff author it and the navigator stores it: plain serde JSON,
//! versioned by `"schema": 1`. Parsing only checks shapes; the rules a guide must
//! follow before it is saved live in [`crate::check()`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::check::{CheckCode, CheckError};
use crate::rule::Rule;

/// The only schema this crate reads. A later schema gets its own number so that
/// stored guides are never silently read with other semantics.
pub const SCHEMA: u32 = 1;

/// Deepest nesting of question dependencies (質問の階層): 小郡市 8(6) p asks for 3.
pub const MAX_DEPTH: usize = 3;

/// A tenant's guide (手続きガイド): life events, the procedure catalogue, the
/// glossary and the example cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guide {
    /// Always [`SCHEMA`].
    pub schema: u32,
    /// The guide's own version, set by whoever stores it; it goes into the
    /// procedure-guide code so that a counter knows which catalogue the ids refer to.
    #[serde(default = "one")]
    pub version: u32,
    /// Shown as the title of the printed result, e.g. `"道志村 手続きガイド"`.
    pub name: String,
    /// Administrative words and their plain explanation (用語の補足).
    #[serde(default)]
    pub glossary: Vec<GlossaryEntry>,
    /// Every procedure any event can lead to; events refer to them by id.
    pub procedures: Vec<Procedure>,
    pub events: Vec<Event>,
    /// Example cases (確認用の事例) that must pass before the guide is saved.
    #[serde(default)]
    pub cases: Vec<ExampleCase>,
}

fn one() -> u32 {
    1
}

/// One glossary entry (用語集): an administrative word and a plain explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlossaryEntry {
    pub term: String,
    pub explanation: String,
}

/// A procedure (手続き) in the catalogue. Which events lead to it, and with which
/// deadline, is said by the events' [`EventRule`]s, so one procedure (国民健康保険)
/// keeps one id across 転入, 出生 and 死亡, and the procedure-guide code stays short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Procedure {
    pub id: String,
    pub name: String,
    /// 担当課, e.g. `"市民課"`; the printed result breaks pages between departments.
    pub department: String,
    /// 窓口, e.g. `"1階 2番窓口"`.
    pub counter: String,
    /// 持ち物.
    #[serde(default)]
    pub bring: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// An optional procedure (任意), e.g. 印鑑登録.
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
    /// A template each municipality edits (市町村ごとに異なる), e.g. 子ども医療費助成.
    #[serde(default, skip_serializing_if = "is_false")]
    pub municipality_specific: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A life event (ライフイベント) such as 転入.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Stable id: `tennyu`, `tenkyo`, `tenshutsu`, `shussei`, `konin`, `rikon`,
    /// `shibou`, `shimei_henko`, `shomei` in the standard set.
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The date question holding the event date (異動日, 出生日 …): ages are
    /// counted at it and deadlines run from it unless a rule names another date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_question: Option<String>,
    pub questions: Vec<Question>,
    /// Which procedures apply, in display order; the first matching rule of a
    /// procedure wins.
    pub rules: Vec<EventRule>,
}

/// A question (設問).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    pub text: String,
    /// 補足説明 shown with the question.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub help: String,
    pub kind: QuestionKind,
    /// Choices of a `single` or `multiple` question.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<ChoiceOption>,
    /// Bounds of a `number` question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// 表示条件: the question is asked only when this holds. It may read earlier
    /// questions only; the nesting of these dependencies is the question's depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_if: Option<Rule>,
}

/// What kind of answer a question takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// JSON `true` / `false` (はい／いいえ).
    YesNo,
    /// One option value.
    Single,
    /// An array of option values (none chosen is `[]`, a valid answer).
    Multiple,
    /// `"YYYY-MM-DD"` or 和暦 (`"令和8年6月1日"`).
    Date,
    /// A JSON number (or a numeric string).
    Number,
    /// The household (世帯): an array of [`Member`]s.
    Household,
}

impl QuestionKind {
    pub fn label(self) -> &'static str {
        match self {
            QuestionKind::YesNo => "はい／いいえ",
            QuestionKind::Single => "単一選択",
            QuestionKind::Multiple => "複数選択",
            QuestionKind::Date => "日付",
            QuestionKind::Number => "数値",
            QuestionKind::Household => "世帯",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceOption {
    pub value: String,
    pub label: String,
}

/// When an event leads to a procedure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRule {
    pub procedure: String,
    /// Omitted: always applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Deadline>,
    /// Shown with the procedure for this event, e.g. `"転入届として届け出ます。"`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// Whether the rule was confirmed from a cited source (`sources`). The
    /// standard set states it on every rule; staff rules may leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

/// A deadline (期限) that the engine can turn into a due date.
///
/// `due = from + days`, or `from + days - 1` when the first day counts. Japanese
/// law counts periods without the first day (民法 第140条, 初日不算入) unless a law
/// says otherwise; 戸籍法 第43条 counts 戸籍 notifications from the day of the event
/// itself, so 出生届 "14日以内" ends on birth date + 13. Holidays are not modelled:
/// when the last day is a day the office is closed the period is extended
/// (地方自治法 第4条の2 第4項), which the printed text tells the citizen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deadline {
    pub days: u16,
    /// A date question of the event; omitted: the event's `date_question`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub first_day_counts: bool,
    /// The deadline as people say it, e.g. `"住み始めた日から14日以内"`.
    pub text: String,
}

/// An example case (確認用の事例): these answers must lead to exactly these procedures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExampleCase {
    pub name: String,
    pub event: String,
    pub answers: Value,
    pub expect: Vec<String>,
}

/// One member of a household answer (世帯員). No name: the guide needs none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub birth_date: jiff::civil::Date,
    pub relationship: Relationship,
    pub nationality: Nationality,
    pub insurance: Insurance,
}

/// 続柄 (relationship to the householder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relationship {
    /// 世帯主
    Head,
    /// 妻・夫
    Spouse,
    /// 子
    Child,
    /// 父・母
    Parent,
    /// 孫
    Grandchild,
    /// 祖父・祖母
    Grandparent,
    /// 兄弟姉妹
    Sibling,
    /// その他（同居人など）
    Other,
}

/// 国籍: what the guide needs is only whether the member is Japanese.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Nationality {
    Japanese,
    Foreign,
}

/// The member's health insurance (健康保険) at the time of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Insurance {
    /// 被用者保険: 会社の健康保険, 共済組合 … (as insured person or dependant)
    Employee,
    /// 国民健康保険
    National,
    /// 後期高齢者医療
    LateElderly,
    /// なし（加入していない、海外から来た など）
    None,
}

macro_rules! str_enum {
    ($t:ty { $($v:ident => $s:literal, $ja:literal),* $(,)? }) => {
        impl $t {
            pub const ALL: &'static [$t] = &[$(<$t>::$v),*];
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),* }
            }
            pub fn label(self) -> &'static str {
                match self { $(<$t>::$v => $ja),* }
            }
            pub fn parse(s: &str) -> Option<$t> {
                match s { $($s => Some(<$t>::$v),)* _ => None }
            }
        }
    };
}

str_enum!(Relationship {
    Head => "head", "世帯主",
    Spouse => "spouse", "妻・夫",
    Child => "child", "子",
    Parent => "parent", "父・母",
    Grandchild => "grandchild", "孫",
    Grandparent => "grandparent", "祖父・祖母",
    Sibling => "sibling", "兄弟姉妹",
    Other => "other", "その他",
});
str_enum!(Nationality {
    Japanese => "japanese", "日本",
    Foreign => "foreign", "外国",
});
str_enum!(Insurance {
    Employee => "employee", "被用者保険（会社の健康保険・共済組合など）",
    National => "national", "国民健康保険",
    LateElderly => "late_elderly", "後期高齢者医療",
    None => "none", "加入していない",
});

impl Guide {
    /// Reads a guide from JSON. Only the shape is checked here (wrong JSON types,
    /// unknown keys, a malformed rule); run [`crate::check()`] before saving.
    pub fn from_json(json: &str) -> Result<Guide, CheckError> {
        serde_json::from_str(json).map_err(|e| {
            CheckError::new(
                "",
                CheckCode::InvalidJson,
                format!(
                    "ガイドのJSONを読めません（{}行{}列）：{}",
                    e.line(),
                    e.column(),
                    e
                ),
            )
        })
    }

    pub fn event(&self, id: &str) -> Option<&Event> {
        self.events.iter().find(|e| e.id == id)
    }

    pub fn procedure(&self, id: &str) -> Option<&Procedure> {
        self.procedures.iter().find(|p| p.id == id)
    }
}

impl Event {
    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
    }

    pub(crate) fn question_index(&self, id: &str) -> Option<usize> {
        self.questions.iter().position(|q| q.id == id)
    }
}

/// Stable ids: `[a-z][a-z0-9_]{0,63}`; the procedure-guide code relies on it.
pub fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

//! The one engine: answers in, the next question, progress, the applicable
//! procedures and the answer errors out.
//!
//! Conditions are evaluated with three values (holds, fails, not known yet): a
//! question whose condition is not known yet still counts in the progress
//! denominator, so answering a question can only remove questions from it and
//! progress never goes down as the citizen answers in order.

use jiff::civil::Date;
use madoguchi_domain::{DomainError, FieldError, parse_japanese_date};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::age::age_for;
use crate::model::{
    ChoiceOption, Event, GlossaryEntry, Guide, Insurance, Member, Nationality, Question,
    QuestionKind, Relationship,
};
use crate::rule::{AgeTest, AnswerTest, MemberPred, Rule};

/// Largest household the engine reads; more is refused as an answer error.
pub const MAX_MEMBERS: usize = 30;
/// At most this many answer errors are reported; the rest add nothing for a person.
const MAX_ERRORS: usize = 50;

/// The engine's answer for one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub event: String,
    /// The next question to ask; `None` when every question that applies is answered.
    pub next_question: Option<NextQuestion>,
    /// Answered questions / questions that apply or may still apply, in % (floor);
    /// 100 only when nothing is left to answer.
    pub progress: u8,
    /// Every question that applies has a valid answer and there are no errors.
    pub complete: bool,
    /// The procedures whose rule holds, in the event's order. While answers are
    /// missing this is the list so far; it is final once `complete`.
    pub procedures: Vec<ApplicableProcedure>,
    /// Errors in the answers, per field (`move_date`, `household[1].birth_date`).
    pub errors: Vec<FieldError>,
}

/// A question as the SPA shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextQuestion {
    pub id: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub help: String,
    pub kind: QuestionKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<ChoiceOption>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Glossary entries whose term appears in the text, help or option labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub glossary: Vec<GlossaryEntry>,
}

/// A procedure that applies, with everything the citizen needs to do it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplicableProcedure {
    pub id: String,
    pub name: String,
    pub department: String,
    pub counter: String,
    pub bring: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    pub optional: bool,
    pub municipality_specific: bool,
    /// The deadline as text, e.g. `"住み始めた日から14日以内"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// The computed last day (期限日), when the date it runs from is answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("ライフイベント「{0}」はありません。")]
    UnknownEvent(String),
}

/// A typed, valid answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    Bool(bool),
    Choice(String),
    Choices(Vec<String>),
    Date(Date),
    Number(f64),
    Household(Vec<Member>),
}

/// What a condition can know about a question.
#[derive(Debug, Clone, PartialEq)]
enum Slot {
    /// Hidden, or not reached: has no answer, for good.
    Absent,
    /// May still be asked, or is asked and not answered yet.
    Unknown,
    Present(Answer),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    T,
    F,
    U,
}

impl Tri {
    fn not(self) -> Tri {
        match self {
            Tri::T => Tri::F,
            Tri::F => Tri::T,
            Tri::U => Tri::U,
        }
    }
    fn from(b: bool) -> Tri {
        if b { Tri::T } else { Tri::F }
    }
}

fn all(it: impl Iterator<Item = Tri>) -> Tri {
    let mut out = Tri::T;
    for t in it {
        match t {
            Tri::F => return Tri::F,
            Tri::U => out = Tri::U,
            Tri::T => {}
        }
    }
    out
}

fn any(it: impl Iterator<Item = Tri>) -> Tri {
    let mut out = Tri::F;
    for t in it {
        match t {
            Tri::T => return Tri::T,
            Tri::U => out = Tri::U,
            Tri::F => {}
        }
    }
    out
}

struct Ctx<'a> {
    event: &'a Event,
    slots: Vec<Slot>,
}

impl Ctx<'_> {
    fn slot(&self, question: &str) -> &Slot {
        match self.event.question_index(question) {
            Some(i) => &self.slots[i],
            None => &Slot::Absent,
        }
    }

    fn event_date(&self) -> Slot {
        match &self.event.date_question {
            None => Slot::Absent,
            Some(q) => match self.slot(q) {
                Slot::Present(Answer::Date(d)) => Slot::Present(Answer::Date(*d)),
                Slot::Present(_) | Slot::Absent => Slot::Absent,
                Slot::Unknown => Slot::Unknown,
            },
        }
    }

    fn rule(&self, r: &Rule) -> Tri {
        match r {
            Rule::All(rs) => all(rs.iter().map(|r| self.rule(r))),
            Rule::Any(rs) => any(rs.iter().map(|r| self.rule(r))),
            Rule::Not(r) => self.rule(r).not(),
            Rule::Answer { question, test } => match self.slot(question) {
                Slot::Unknown => Tri::U,
                Slot::Absent => Tri::from(*test == AnswerTest::Answered(false)),
                Slot::Present(a) => Tri::from(test_answer(a, test)),
            },
            Rule::AnyMember { of, pred } => match self.slot(of) {
                Slot::Unknown => Tri::U,
                Slot::Present(Answer::Household(ms)) => {
                    let date = self.event_date();
                    any(ms.iter().map(|m| member(pred, m, &date)))
                }
                _ => Tri::F,
            },
            Rule::CountMembers { of, pred, gte, lte } => match self.slot(of) {
                Slot::Unknown => Tri::U,
                Slot::Present(Answer::Household(ms)) => {
                    let date = self.event_date();
                    let (mut t, mut u) = (0u32, 0u32);
                    for m in ms {
                        match member(pred, m, &date) {
                            Tri::T => t += 1,
                            Tri::U => u += 1,
                            Tri::F => {}
                        }
                    }
                    // The count is somewhere in t..=t+u.
                    let lo = gte.map_or(Tri::T, |n| {
                        if t >= n {
                            Tri::T
                        } else if t + u < n {
                            Tri::F
                        } else {
                            Tri::U
                        }
                    });
                    let hi = lte.map_or(Tri::T, |n| {
                        if t + u <= n {
                            Tri::T
                        } else if t > n {
                            Tri::F
                        } else {
                            Tri::U
                        }
                    });
                    all([lo, hi].into_iter())
                }
                _ => Tri::F,
            },
        }
    }
}

fn member(p: &MemberPred, m: &Member, event_date: &Slot) -> Tri {
    match p {
        MemberPred::All(ps) => all(ps.iter().map(|p| member(p, m, event_date))),
        MemberPred::Any(ps) => any(ps.iter().map(|p| member(p, m, event_date))),
        MemberPred::Not(p) => member(p, m, event_date).not(),
        MemberPred::Age(t) => match event_date {
            Slot::Unknown => Tri::U,
            Slot::Present(Answer::Date(d)) => Tri::from(age_holds(t, m.birth_date, *d)),
            _ => Tri::F,
        },
        MemberPred::Relationship(vs) => Tri::from(vs.iter().any(|v| v == m.relationship.as_str())),
        MemberPred::Nationality(vs) => Tri::from(vs.iter().any(|v| v == m.nationality.as_str())),
        MemberPred::Insurance(vs) => Tri::from(vs.iter().any(|v| v == m.insurance.as_str())),
    }
}

fn age_holds(t: &AgeTest, birth: Date, event: Date) -> bool {
    match age_for(birth, event, t.basis, t.on) {
        // Not born yet at the reference day: no age, so no age test holds.
        None => false,
        Some(age) => t.gte.is_none_or(|n| age >= n) && t.lte.is_none_or(|n| age <= n),
    }
}

fn test_answer(a: &Answer, t: &AnswerTest) -> bool {
    match t {
        AnswerTest::Answered(b) => *b,
        AnswerTest::Eq(v) => equals(a, v),
        AnswerTest::In(vs) => match a {
            Answer::Choices(cs) => cs.iter().any(|c| vs.iter().any(|v| v.as_str() == Some(c))),
            _ => vs.iter().any(|v| equals(a, v)),
        },
        AnswerTest::Has(s) => matches!(a, Answer::Choices(cs) if cs.contains(s)),
        AnswerTest::Gte(v) => compare(a, v).is_some_and(|o| o.is_ge()),
        AnswerTest::Lte(v) => compare(a, v).is_some_and(|o| o.is_le()),
    }
}

fn equals(a: &Answer, v: &Value) -> bool {
    match a {
        Answer::Bool(b) => v.as_bool() == Some(*b),
        Answer::Choice(s) => v.as_str() == Some(s),
        _ => compare(a, v).is_some_and(|o| o.is_eq()),
    }
}

fn compare(a: &Answer, v: &Value) -> Option<std::cmp::Ordering> {
    match a {
        Answer::Number(n) => n.partial_cmp(&v.as_f64()?),
        Answer::Date(d) => Some(d.cmp(&v.as_str()?.parse::<Date>().ok()?)),
        _ => None,
    }
}

/// Evaluates one step of event `event_id` for `answers` (question id → answer).
///
/// Pure and total: any JSON is accepted, bad answers become `errors` and count as
/// unanswered; only an unknown event is an `Err`.
pub fn evaluate(guide: &Guide, event_id: &str, answers: &Value) -> Result<Outcome, EvalError> {
    let event = guide
        .event(event_id)
        .ok_or_else(|| EvalError::UnknownEvent(event_id.to_string()))?;
    let mut errors = Vec::new();
    let empty = Map::new();
    let answers = match answers {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => {
            errors.push(FieldError::new(
                "",
                "invalid_type",
                "回答は設問IDと回答の組（JSONオブジェクト）で送ってください。",
            ));
            &empty
        }
    };
    for key in answers.keys() {
        if event.question(key).is_none() && errors.len() < MAX_ERRORS {
            errors.push(FieldError::new(
                key,
                "unknown_field",
                "この設問はありません。",
            ));
        }
    }

    // Questions not reached yet read as Absent, so a reference to a later question
    // (refused by `check`) cannot make evaluation loop or depend on order.
    let mut ctx = Ctx {
        event,
        slots: vec![Slot::Absent; event.questions.len()],
    };
    let (mut counted, mut answered) = (0usize, 0usize);
    let mut next = None;
    for (i, q) in event.questions.iter().enumerate() {
        let shown = q.show_if.as_ref().map_or(Tri::T, |r| ctx.rule(r));
        ctx.slots[i] = match shown {
            Tri::F => Slot::Absent,
            Tri::U => {
                counted += 1;
                Slot::Unknown
            }
            Tri::T => {
                counted += 1;
                let raw = answers.get(&q.id).filter(|v| !is_blank(v));
                match raw.and_then(|v| parse_answer(q, v, &mut errors)) {
                    Some(a) => {
                        answered += 1;
                        Slot::Present(a)
                    }
                    None => {
                        next.get_or_insert(i);
                        Slot::Unknown
                    }
                }
            }
        };
    }
    check_births(&ctx, &mut errors);
    errors.truncate(MAX_ERRORS);

    // No question applies: nothing is left, so 100. answered <= counted keeps it <= 100.
    let progress = (answered * 100)
        .checked_div(counted)
        .map_or(100, |p| u8::try_from(p).unwrap_or(100));
    let procedures = applicable(guide, &ctx);
    Ok(Outcome {
        event: event.id.clone(),
        next_question: next.map(|i| next_question(guide, &event.questions[i])),
        progress,
        complete: answered == counted && errors.is_empty(),
        procedures,
        errors,
    })
}

fn applicable(guide: &Guide, ctx: &Ctx<'_>) -> Vec<ApplicableProcedure> {
    let mut out: Vec<ApplicableProcedure> = Vec::new();
    for r in &ctx.event.rules {
        let Some(p) = guide.procedure(&r.procedure) else {
            continue;
        };
        if out.iter().any(|o| o.id == p.id) {
            continue;
        }
        if r.when.as_ref().is_some_and(|w| ctx.rule(w) != Tri::T) {
            continue;
        }
        let due = r.deadline.as_ref().and_then(|d| {
            let from = d.from.as_ref().or(ctx.event.date_question.as_ref())?;
            let Slot::Present(Answer::Date(start)) = ctx.slot(from) else {
                return None;
            };
            let days = i64::from(d.days) - i64::from(d.first_day_counts && d.days > 0);
            start.checked_add(jiff::Span::new().days(days)).ok()
        });
        out.push(ApplicableProcedure {
            id: p.id.clone(),
            name: p.name.clone(),
            department: p.department.clone(),
            counter: p.counter.clone(),
            bring: p.bring.clone(),
            description: p.description.clone(),
            note: r.note.clone(),
            optional: p.optional,
            municipality_specific: p.municipality_specific,
            deadline: r.deadline.as_ref().map(|d| d.text.clone()),
            due,
        });
    }
    out
}

fn next_question(guide: &Guide, q: &Question) -> NextQuestion {
    let mentions = |term: &str| {
        q.text.contains(term)
            || q.help.contains(term)
            || q.options.iter().any(|o| o.label.contains(term))
    };
    NextQuestion {
        id: q.id.clone(),
        text: q.text.clone(),
        help: q.help.clone(),
        kind: q.kind,
        options: q.options.clone(),
        min: q.min,
        max: q.max,
        glossary: guide
            .glossary
            .iter()
            .filter(|g| !g.term.is_empty() && mentions(&g.term))
            .cloned()
            .collect(),
    }
}

/// A member born after the event date has no age there; say so rather than
/// silently matching no age rule.
fn check_births(ctx: &Ctx<'_>, errors: &mut Vec<FieldError>) {
    let Slot::Present(Answer::Date(event_date)) = ctx.event_date() else {
        return;
    };
    for (q, slot) in ctx.event.questions.iter().zip(&ctx.slots) {
        if let Slot::Present(Answer::Household(ms)) = slot {
            for (i, m) in ms.iter().enumerate() {
                if m.birth_date > event_date {
                    errors.push(FieldError::new(
                        format!("{}[{i}].birth_date", q.id),
                        "out_of_range",
                        "生年月日が届出の基準日（異動日など）より後になっています。",
                    ));
                }
            }
        }
    }
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn err(errors: &mut Vec<FieldError>, field: String, code: &str, message: &str) {
    if errors.len() < MAX_ERRORS {
        errors.push(FieldError::new(field, code, message));
    }
}

fn parse_answer(q: &Question, v: &Value, errors: &mut Vec<FieldError>) -> Option<Answer> {
    let field = q.id.clone();
    match q.kind {
        QuestionKind::YesNo => match v.as_bool() {
            Some(b) => Some(Answer::Bool(b)),
            None => {
                err(
                    errors,
                    field,
                    "invalid_type",
                    "「はい」か「いいえ」で答えてください。",
                );
                None
            }
        },
        QuestionKind::Single => match v.as_str().map(str::trim) {
            Some(s) if q.options.iter().any(|o| o.value == s) => Some(Answer::Choice(s.into())),
            _ => {
                err(errors, field, "not_an_option", "選択肢から選んでください。");
                None
            }
        },
        QuestionKind::Multiple => {
            let Some(items) = v.as_array() else {
                err(
                    errors,
                    field,
                    "invalid_type",
                    "選択肢を配列で送ってください。",
                );
                return None;
            };
            let mut chosen: Vec<String> = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(s) if q.options.iter().any(|o| o.value == s) => {
                        if chosen.iter().any(|c| c == s) {
                            err(errors, field, "duplicate", "同じ選択肢が重なっています。");
                            return None;
                        }
                        chosen.push(s.to_string());
                    }
                    _ => {
                        err(errors, field, "not_an_option", "選択肢から選んでください。");
                        return None;
                    }
                }
            }
            Some(Answer::Choices(chosen))
        }
        QuestionKind::Date => match parse_date(v) {
            Ok(d) => Some(Answer::Date(d)),
            Err((code, message)) => {
                err(errors, field, code, message);
                None
            }
        },
        QuestionKind::Number => {
            let n = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            match n.filter(|n| n.is_finite()) {
                None => {
                    err(errors, field, "invalid_format", "数字で答えてください。");
                    None
                }
                Some(n) if q.min.is_some_and(|m| n < m) || q.max.is_some_and(|m| n > m) => {
                    err(
                        errors,
                        field,
                        "out_of_range",
                        "答えられる範囲を超えています。",
                    );
                    None
                }
                Some(n) => Some(Answer::Number(n)),
            }
        }
        QuestionKind::Household => parse_household(&q.id, v, errors).map(Answer::Household),
    }
}

fn parse_date(v: &Value) -> Result<Date, (&'static str, &'static str)> {
    let Some(s) = v.as_str() else {
        return Err(("invalid_format", "日付を文字列で送ってください。"));
    };
    parse_japanese_date(s).map_err(|e| match e {
        DomainError::InvalidValue { code, message } => (date_code(code), message),
        _ => ("invalid_format", "日付の形式が正しくありません。"),
    })
}

/// The form engine's codes (`invalid_date` …) for the date parser's ones, so the SPA
/// handles guide and form errors alike.
fn date_code(code: &str) -> &'static str {
    match code {
        "date.invalid" => "invalid_date",
        "date.out_of_range" | "date.out_of_era" => "out_of_range",
        _ => "invalid_format",
    }
}

fn parse_household(qid: &str, v: &Value, outer: &mut Vec<FieldError>) -> Option<Vec<Member>> {
    let Some(items) = v.as_array() else {
        err(
            outer,
            qid.into(),
            "invalid_type",
            "世帯員を配列で送ってください。",
        );
        return None;
    };
    if items.is_empty() {
        err(
            outer,
            qid.into(),
            "required",
            "世帯員を1人以上入力してください。",
        );
        return None;
    }
    if items.len() > MAX_MEMBERS {
        err(
            outer,
            qid.into(),
            "too_many",
            "世帯員が多すぎます（30人まで）。",
        );
        return None;
    }
    // Member errors are gathered apart so that the error cap cannot hide one.
    let mut errs = Vec::new();
    let errors = &mut errs;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let base = format!("{qid}[{i}]");
        let Some(m) = item.as_object() else {
            err(
                errors,
                base,
                "invalid_type",
                "世帯員ごとにJSONオブジェクトで送ってください。",
            );
            continue;
        };
        for k in m.keys() {
            if !matches!(
                k.as_str(),
                "birth_date" | "relationship" | "nationality" | "insurance"
            ) {
                err(
                    errors,
                    format!("{base}.{k}"),
                    "unknown_field",
                    "この項目はありません。",
                );
            }
        }
        let birth = match m.get("birth_date").filter(|v| !is_blank(v)) {
            None => {
                err(
                    errors,
                    format!("{base}.birth_date"),
                    "required",
                    "生年月日を入力してください。",
                );
                None
            }
            Some(v) => match parse_date(v) {
                Ok(d) => Some(d),
                Err((code, message)) => {
                    err(errors, format!("{base}.birth_date"), code, message);
                    None
                }
            },
        };
        let relationship = choice(
            m,
            &base,
            "relationship",
            "続柄",
            Relationship::parse,
            errors,
        );
        let nationality = choice(m, &base, "nationality", "国籍", Nationality::parse, errors);
        let insurance = choice(m, &base, "insurance", "健康保険", Insurance::parse, errors);
        if let (Some(birth_date), Some(relationship), Some(nationality), Some(insurance)) =
            (birth, relationship, nationality, insurance)
        {
            out.push(Member {
                birth_date,
                relationship,
                nationality,
                insurance,
            });
        }
    }
    // One bad member makes the whole household unanswered: a household with a
    // member missing would give the wrong procedures.
    let ok = errs.is_empty() && out.len() == items.len();
    for e in errs {
        err(outer, e.field, &e.code, &e.message);
    }
    ok.then_some(out)
}

fn choice<T>(
    m: &Map<String, Value>,
    base: &str,
    key: &str,
    label: &str,
    parse: fn(&str) -> Option<T>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    match m.get(key).filter(|v| !is_blank(v)) {
        None => {
            err(
                errors,
                format!("{base}.{key}"),
                "required",
                &format!("{label}を選んでください。"),
            );
            None
        }
        Some(v) => {
            let r = v.as_str().and_then(parse);
            if r.is_none() {
                err(
                    errors,
                    format!("{base}.{key}"),
                    "not_an_option",
                    "選択肢から選んでください。",
                );
            }
            r
        }
    }
}

//! Life-event guide (ライフイベント案内): the declarative rule language, its pure
//! engine, rule-set checks with example cases, and the standard rule set.
//!
//! A tenant's [`Guide`] lists life events (転入, 転居, 転出, 出生, 婚姻, 離婚, 死亡,
//! 氏名変更, 証明書の請求), each with questions up to three levels deep and rules
//! deciding which procedures (手続き) apply. Everything here is pure: no I/O, no
//! clock, no async. The `navigator` function stores guides, counts accesses and
//! persists checklists on top of this crate:
//!
//! - save: [`parse_and_check`] (or [`Guide::from_json`] + [`check()`]) — every
//!   structural error and every failing example case, with paths and Japanese messages;
//! - each step: [`evaluate`] → [`Outcome`] (next question, progress %, procedures
//!   with due dates, answer errors);
//! - the result: [`render_html`] (print) and [`GuideCode`] (QR text);
//! - the counter: [`GuideCode::decode`] → [`VisitChecklist`].
//!
//! Format and rules: `docs/guide.md`.

pub mod age;
pub mod check;
pub mod code;
pub mod eval;
pub mod html;
pub mod model;
pub mod rule;
pub mod standard;

pub use check::{CheckCode, CheckError, check, parse_and_check};
pub use code::{ChecklistError, ChecklistItem, CodeError, GuideCode, VisitChecklist};
pub use eval::{ApplicableProcedure, EvalError, NextQuestion, Outcome, evaluate};
pub use html::render_html;
pub use model::{
    ChoiceOption, Deadline, Event, EventRule, ExampleCase, GlossaryEntry, Guide, Insurance,
    MAX_DEPTH, Member, Nationality, Procedure, Question, QuestionKind, Relationship, SCHEMA,
};
pub use rule::{AgeBasis, AgeOn, AgeTest, AnswerTest, MemberPred, Rule};
pub use standard::{STANDARD_JSON, standard};

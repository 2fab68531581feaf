//! The checks a guide must pass before it is saved (保存時の検査), and the example
//! cases (確認用の事例). Every problem is reported at once, each with the path of the
//! setting (`events[0].questions[3].show_if.all[1]`) and a Japanese message for staff.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::eval::evaluate;
use crate::model::{Event, Guide, MAX_DEPTH, Question, QuestionKind, SCHEMA, valid_id};
use crate::model::{Insurance, Nationality, Relationship};
use crate::rule::{AnswerTest, MAX_AGE, MemberPred, Rule};

/// Longest deadline in days (10 years); anything longer is a typo.
pub const MAX_DEADLINE_DAYS: u16 = 3650;

/// One problem in a guide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckError {
    /// Where, e.g. `events[0].questions[3].show_if`; empty for the whole document.
    pub path: String,
    pub code: CheckCode,
    /// Japanese, for staff.
    pub message: String,
}

impl CheckError {
    pub fn new(path: impl Into<String>, code: CheckCode, message: impl Into<String>) -> Self {
        CheckError {
            path: path.into(),
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for CheckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Stable machine codes of [`CheckError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckCode {
    /// The JSON does not read as a guide (wrong type, unknown key, malformed rule).
    InvalidJson,
    UnsupportedSchema,
    /// A required text is empty, or a list that needs entries has none.
    Required,
    /// An id is not `[a-z][a-z0-9_]{0,63}`.
    InvalidId,
    Duplicate,
    UnknownQuestion,
    UnknownProcedure,
    UnknownEvent,
    /// A choice value that is not among the question's options (the condition can never hold).
    UnknownOption,
    /// An operator or value that does not suit the question's kind.
    WrongType,
    /// A condition reads a later question (or itself): the question could never be shown in order.
    ForwardReference,
    Cycle,
    /// Questions nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A condition that can never hold (e.g. age ≥ 65 and ≤ 40).
    NeverHolds,
    /// Ages or deadlines need a date the event does not have.
    MissingDate,
    OutOfRange,
    /// An example case whose answers are not valid or not complete.
    CaseInvalid,
    /// An example case whose procedures differ from the expected ones.
    CaseFailed,
}

/// Runs every check and every example case. `Ok(())` means the guide may be saved.
pub fn check(guide: &Guide) -> Result<(), Vec<CheckError>> {
    let mut c = Checker { errors: Vec::new() };
    c.guide(guide);
    if c.errors.is_empty() {
        Ok(())
    } else {
        Err(c.errors)
    }
}

/// Parses and checks in one go, as the navigator does when staff save a guide.
pub fn parse_and_check(json: &str) -> Result<Guide, Vec<CheckError>> {
    let guide = Guide::from_json(json).map_err(|e| vec![e])?;
    check(&guide)?;
    Ok(guide)
}

struct Checker {
    errors: Vec<CheckError>,
}

impl Checker {
    fn push(&mut self, path: impl Into<String>, code: CheckCode, message: impl Into<String>) {
        self.errors.push(CheckError::new(path, code, message));
    }

    fn required(&mut self, path: String, value: &str, what: &str) {
        if value.trim().is_empty() {
            self.push(
                path,
                CheckCode::Required,
                format!("{what}を入力してください。"),
            );
        }
    }

    fn id(&mut self, path: String, id: &str, seen: &mut HashSet<String>) {
        if !valid_id(id) {
            self.push(
                path,
                CheckCode::InvalidId,
                format!("ID「{id}」は英小文字で始まり、英小文字・数字・_ だけの64文字以内にしてください。"),
            );
        } else if !seen.insert(id.to_string()) {
            self.push(
                path,
                CheckCode::Duplicate,
                format!("ID「{id}」が重複しています。"),
            );
        }
    }

    fn guide(&mut self, g: &Guide) {
        if g.schema != SCHEMA {
            self.push(
                "schema",
                CheckCode::UnsupportedSchema,
                format!(
                    "schema {} には対応していません（{SCHEMA} のみ）。",
                    g.schema
                ),
            );
        }
        self.required("name".into(), &g.name, "ガイドの名前");
        let mut terms = HashSet::new();
        for (i, e) in g.glossary.iter().enumerate() {
            self.required(format!("glossary[{i}].term"), &e.term, "用語");
            self.required(
                format!("glossary[{i}].explanation"),
                &e.explanation,
                "用語の説明",
            );
            if !e.term.is_empty() && !terms.insert(e.term.as_str()) {
                self.push(
                    format!("glossary[{i}].term"),
                    CheckCode::Duplicate,
                    format!("用語「{}」が重複しています。", e.term),
                );
            }
        }
        let mut ids = HashSet::new();
        for (i, p) in g.procedures.iter().enumerate() {
            self.id(format!("procedures[{i}].id"), &p.id, &mut ids);
            self.required(format!("procedures[{i}].name"), &p.name, "手続の名前");
            self.required(
                format!("procedures[{i}].department"),
                &p.department,
                "担当課",
            );
            self.required(format!("procedures[{i}].counter"), &p.counter, "窓口");
            for (j, b) in p.bring.iter().enumerate() {
                self.required(format!("procedures[{i}].bring[{j}]"), b, "持ち物");
            }
        }
        if g.events.is_empty() {
            self.push(
                "events",
                CheckCode::Required,
                "ライフイベントを1つ以上設定してください。",
            );
        }
        let mut event_ids = HashSet::new();
        for (i, e) in g.events.iter().enumerate() {
            self.id(format!("events[{i}].id"), &e.id, &mut event_ids);
            self.event(g, e, &format!("events[{i}]"));
        }
        self.cases(g);
    }

    fn event(&mut self, g: &Guide, e: &Event, path: &str) {
        self.required(format!("{path}.name"), &e.name, "ライフイベントの名前");
        if let Some(dq) = &e.date_question {
            match e.question(dq) {
                None => self.push(
                    format!("{path}.date_question"),
                    CheckCode::UnknownQuestion,
                    format!("設問「{dq}」はありません。"),
                ),
                Some(q) if q.kind != QuestionKind::Date => self.push(
                    format!("{path}.date_question"),
                    CheckCode::WrongType,
                    format!("基準日の設問「{dq}」は日付の設問にしてください。"),
                ),
                Some(_) => {}
            }
        }
        let mut qids = HashSet::new();
        for (i, q) in e.questions.iter().enumerate() {
            let qp = format!("{path}.questions[{i}]");
            self.id(format!("{qp}.id"), &q.id, &mut qids);
            self.question(e, q, i, &qp);
        }
        self.graph(e, path);
        for (i, r) in e.rules.iter().enumerate() {
            let rp = format!("{path}.rules[{i}]");
            if g.procedure(&r.procedure).is_none() {
                self.push(
                    format!("{rp}.procedure"),
                    CheckCode::UnknownProcedure,
                    format!("手続「{}」はありません。", r.procedure),
                );
            }
            if let Some(w) = &r.when {
                self.rule(e, w, e.questions.len(), &format!("{rp}.when"));
            }
            if let Some(d) = &r.deadline {
                let dp = format!("{rp}.deadline");
                self.required(format!("{dp}.text"), &d.text, "期限の説明");
                if d.days > MAX_DEADLINE_DAYS {
                    self.push(
                        format!("{dp}.days"),
                        CheckCode::OutOfRange,
                        format!("期限は{MAX_DEADLINE_DAYS}日までにしてください。"),
                    );
                }
                if d.first_day_counts && d.days == 0 {
                    self.push(
                        format!("{dp}.days"),
                        CheckCode::OutOfRange,
                        "初日を数える期限は1日以上にしてください。",
                    );
                }
                match d.from.as_ref().or(e.date_question.as_ref()) {
                    None => self.push(
                        format!("{dp}.from"),
                        CheckCode::MissingDate,
                        "期限の起算日がありません（from か、ライフイベントの date_question を設定してください）。",
                    ),
                    Some(f) => match e.question(f) {
                        None => self.push(
                            format!("{dp}.from"),
                            CheckCode::UnknownQuestion,
                            format!("設問「{f}」はありません。"),
                        ),
                        Some(q) if q.kind != QuestionKind::Date => self.push(
                            format!("{dp}.from"),
                            CheckCode::WrongType,
                            format!("期限の起算日「{f}」は日付の設問にしてください。"),
                        ),
                        Some(_) => {}
                    },
                }
            }
        }
    }

    fn question(&mut self, e: &Event, q: &Question, index: usize, path: &str) {
        self.required(format!("{path}.text"), &q.text, "設問の文");
        let choice = matches!(q.kind, QuestionKind::Single | QuestionKind::Multiple);
        if choice && q.options.is_empty() {
            self.push(
                format!("{path}.options"),
                CheckCode::Required,
                "選択肢を設定してください。",
            );
        }
        if !choice && !q.options.is_empty() {
            self.push(
                format!("{path}.options"),
                CheckCode::WrongType,
                format!("{}の設問に選択肢は設定できません。", q.kind.label()),
            );
        }
        let mut values = HashSet::new();
        for (i, o) in q.options.iter().enumerate() {
            self.required(format!("{path}.options[{i}].value"), &o.value, "選択肢の値");
            self.required(
                format!("{path}.options[{i}].label"),
                &o.label,
                "選択肢の表示名",
            );
            if !values.insert(o.value.as_str()) {
                self.push(
                    format!("{path}.options[{i}].value"),
                    CheckCode::Duplicate,
                    format!("選択肢の値「{}」が重複しています。", o.value),
                );
            }
        }
        if (q.min.is_some() || q.max.is_some()) && q.kind != QuestionKind::Number {
            self.push(
                format!("{path}.min"),
                CheckCode::WrongType,
                "min / max は数値の設問にだけ設定できます。",
            );
        }
        if let (Some(a), Some(b)) = (q.min, q.max)
            && a > b
        {
            self.push(
                format!("{path}.max"),
                CheckCode::OutOfRange,
                "max は min 以上にしてください。",
            );
        }
        if let Some(r) = &q.show_if {
            self.rule(e, r, index, &format!("{path}.show_if"));
        }
    }

    /// Checks one rule. `before` is how many questions it may read (the questions
    /// before the one it belongs to; all of them for a procedure rule).
    fn rule(&mut self, e: &Event, r: &Rule, before: usize, path: &str) {
        match r {
            Rule::All(rs) | Rule::Any(rs) => {
                let key = if matches!(r, Rule::All(_)) {
                    "all"
                } else {
                    "any"
                };
                for (i, x) in rs.iter().enumerate() {
                    self.rule(e, x, before, &format!("{path}.{key}[{i}]"));
                }
                if let Rule::All(rs) = r {
                    self.contradictions(rs, path);
                }
            }
            Rule::Not(x) => self.rule(e, x, before, &format!("{path}.not")),
            Rule::Answer { question, test } => {
                let Some(q) = self.reference(e, question, before, &format!("{path}.question"))
                else {
                    return;
                };
                self.answer_test(q, test, path);
            }
            Rule::AnyMember { of, pred } | Rule::CountMembers { of, pred, .. } => {
                let key = if matches!(r, Rule::AnyMember { .. }) {
                    "any_member"
                } else {
                    "count_members"
                };
                if let Some(q) = self.reference(e, of, before, &format!("{path}.of"))
                    && q.kind != QuestionKind::Household
                {
                    self.push(
                        format!("{path}.of"),
                        CheckCode::WrongType,
                        format!("「{of}」は世帯の設問ではありません。"),
                    );
                }
                if pred.uses_age() {
                    match &e.date_question {
                        None => self.push(
                            format!("{path}.{key}"),
                            CheckCode::MissingDate,
                            "年齢の条件には基準日が必要です（ライフイベントに date_question を設定してください）。",
                        ),
                        Some(dq) => {
                            self.reference(e, dq, before, &format!("{path}.{key}.age"));
                        }
                    }
                }
                self.member(pred, &format!("{path}.{key}"));
                if let Rule::CountMembers {
                    gte: Some(a),
                    lte: Some(b),
                    ..
                } = r
                    && a > b
                {
                    self.push(
                        path.to_string(),
                        CheckCode::NeverHolds,
                        format!("人数の条件（{a}人以上かつ{b}人以下）は成り立ちません。"),
                    );
                }
            }
        }
    }

    /// Resolves a question reference, reporting unknown and not-earlier questions.
    fn reference<'e>(
        &mut self,
        e: &'e Event,
        id: &str,
        before: usize,
        path: &str,
    ) -> Option<&'e Question> {
        match e.question_index(id) {
            None => {
                self.push(
                    path,
                    CheckCode::UnknownQuestion,
                    format!("設問「{id}」はありません。"),
                );
                None
            }
            Some(i) if i >= before => {
                self.push(
                    path,
                    CheckCode::ForwardReference,
                    format!("後の設問（またはこの設問自身）「{id}」を参照しているため、この条件は質問の順番では判定できません。前の設問だけを参照してください。"),
                );
                Some(&e.questions[i])
            }
            Some(i) => Some(&e.questions[i]),
        }
    }

    fn answer_test(&mut self, q: &Question, t: &AnswerTest, path: &str) {
        let kind = q.kind;
        let wrong = |this: &mut Checker, op: &str| {
            this.push(
                path,
                CheckCode::WrongType,
                format!("{}の設問「{}」に「{op}」は使えません。", kind.label(), q.id),
            );
        };
        match t {
            AnswerTest::Answered(_) => {}
            AnswerTest::Eq(v) => match kind {
                QuestionKind::Multiple | QuestionKind::Household => wrong(self, "eq"),
                _ => self.value(q, v, &format!("{path}.eq")),
            },
            AnswerTest::In(vs) => {
                if kind == QuestionKind::Household || kind == QuestionKind::YesNo {
                    wrong(self, "in");
                    return;
                }
                for (i, v) in vs.iter().enumerate() {
                    if kind == QuestionKind::Multiple {
                        self.option(q, v, &format!("{path}.in[{i}]"));
                    } else {
                        self.value(q, v, &format!("{path}.in[{i}]"));
                    }
                }
            }
            AnswerTest::Has(s) => {
                if kind == QuestionKind::Multiple {
                    self.option(q, &Value::String(s.clone()), &format!("{path}.has"));
                } else {
                    wrong(self, "has");
                }
            }
            AnswerTest::Gte(v) | AnswerTest::Lte(v) => {
                let op = if matches!(t, AnswerTest::Gte(_)) {
                    "gte"
                } else {
                    "lte"
                };
                match kind {
                    QuestionKind::Date | QuestionKind::Number => {
                        self.value(q, v, &format!("{path}.{op}"))
                    }
                    _ => wrong(self, op),
                }
            }
        }
    }

    /// A value compared with an answer of `q` must be of the answer's type.
    fn value(&mut self, q: &Question, v: &Value, path: &str) {
        let ok = match q.kind {
            QuestionKind::YesNo => v.is_boolean(),
            QuestionKind::Number => v.is_number(),
            QuestionKind::Date => v
                .as_str()
                .is_some_and(|s| s.parse::<jiff::civil::Date>().is_ok()),
            QuestionKind::Single => return self.option(q, v, path),
            QuestionKind::Multiple | QuestionKind::Household => false,
        };
        if !ok {
            let want = match q.kind {
                QuestionKind::YesNo => "true か false",
                QuestionKind::Number => "数値",
                QuestionKind::Date => "\"YYYY-MM-DD\" の日付",
                _ => "比較できる値",
            };
            self.push(
                path,
                CheckCode::WrongType,
                format!(
                    "{}の設問「{}」と比べる値は{want}にしてください。",
                    q.kind.label(),
                    q.id
                ),
            );
        }
    }

    fn option(&mut self, q: &Question, v: &Value, path: &str) {
        match v.as_str() {
            Some(s) if q.options.iter().any(|o| o.value == s) => {}
            Some(s) => self.push(
                path,
                CheckCode::UnknownOption,
                format!(
                    "設問「{}」に選択肢「{s}」はありません（この条件は成り立ちません）。",
                    q.id
                ),
            ),
            None => self.push(
                path,
                CheckCode::WrongType,
                format!("設問「{}」の選択肢の値を文字列で書いてください。", q.id),
            ),
        }
    }

    /// The obvious contradiction inside one `all`: the same single-choice or yes/no
    /// question required to equal two different values.
    fn contradictions(&mut self, rs: &[Rule], path: &str) {
        let mut seen: HashMap<&str, &Value> = HashMap::new();
        for r in rs {
            if let Rule::Answer {
                question,
                test: AnswerTest::Eq(v),
            } = r
            {
                if let Some(prev) = seen.get(question.as_str())
                    && *prev != v
                {
                    self.push(
                        path,
                        CheckCode::NeverHolds,
                        format!(
                            "設問「{question}」が同時に2つの値に等しいという条件は成り立ちません。"
                        ),
                    );
                }
                seen.insert(question, v);
            }
        }
    }

    fn member(&mut self, p: &MemberPred, path: &str) {
        let known = |this: &mut Checker, vs: &[String], key: &str, ok: fn(&str) -> bool| {
            for (i, v) in vs.iter().enumerate() {
                if !ok(v) {
                    this.push(
                        format!("{path}.{key}[{i}]"),
                        CheckCode::UnknownOption,
                        format!(
                            "{key} に「{v}」という値はありません（この条件は成り立ちません）。"
                        ),
                    );
                }
            }
        };
        match p {
            MemberPred::All(ps) | MemberPred::Any(ps) => {
                let key = if matches!(p, MemberPred::All(_)) {
                    "all"
                } else {
                    "any"
                };
                for (i, x) in ps.iter().enumerate() {
                    self.member(x, &format!("{path}.{key}[{i}]"));
                }
            }
            MemberPred::Not(x) => self.member(x, &format!("{path}.not")),
            MemberPred::Age(t) => {
                for n in [t.gte, t.lte].into_iter().flatten() {
                    if n > MAX_AGE {
                        self.push(
                            format!("{path}.age"),
                            CheckCode::OutOfRange,
                            format!("年齢は{MAX_AGE}歳までで書いてください。"),
                        );
                    }
                }
                if let (Some(a), Some(b)) = (t.gte, t.lte)
                    && a > b
                {
                    self.push(
                        format!("{path}.age"),
                        CheckCode::NeverHolds,
                        format!("年齢の条件（{a}歳以上かつ{b}歳以下）は成り立ちません。"),
                    );
                }
            }
            MemberPred::Relationship(vs) => known(self, vs, "relationship", |s| {
                Relationship::parse(s).is_some()
            }),
            MemberPred::Nationality(vs) => {
                known(self, vs, "nationality", |s| Nationality::parse(s).is_some())
            }
            MemberPred::Insurance(vs) => {
                known(self, vs, "insurance", |s| Insurance::parse(s).is_some())
            }
        }
    }

    /// Cycles and depth of the question dependencies (表示条件の循環と階層).
    fn graph(&mut self, e: &Event, path: &str) {
        let n = e.questions.len();
        let deps: Vec<Vec<usize>> = e
            .questions
            .iter()
            .map(|q| {
                let Some(r) = &q.show_if else {
                    return Vec::new();
                };
                let mut ids: Vec<&str> = r.questions();
                if r.uses_age()
                    && let Some(dq) = &e.date_question
                {
                    ids.push(dq);
                }
                let mut out: Vec<usize> =
                    ids.iter().filter_map(|id| e.question_index(id)).collect();
                out.sort_unstable();
                out.dedup();
                out
            })
            .collect();

        // Cycles: iterative DFS with colours; each cycle is reported once, at the
        // question where it closes.
        let mut colour = vec![0u8; n];
        let mut reported: BTreeSet<Vec<usize>> = BTreeSet::new();
        for start in 0..n {
            if colour[start] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            colour[start] = 1;
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if let Some(&d) = deps[node].get(*next) {
                    *next += 1;
                    match colour[d] {
                        0 => {
                            colour[d] = 1;
                            stack.push((d, 0));
                        }
                        1 => {
                            let from = stack.iter().position(|(x, _)| *x == d).unwrap_or(0);
                            let cycle: Vec<usize> = stack[from..].iter().map(|(x, _)| *x).collect();
                            let mut key = cycle.clone();
                            key.sort_unstable();
                            if reported.insert(key) {
                                let mut names: Vec<&str> =
                                    cycle.iter().map(|&i| e.questions[i].id.as_str()).collect();
                                names.push(&e.questions[d].id);
                                self.push(
                                    format!("{path}.questions[{d}].show_if"),
                                    CheckCode::Cycle,
                                    format!("表示条件が循環しています（{}）。", names.join(" → ")),
                                );
                            }
                        }
                        _ => {}
                    }
                } else {
                    colour[node] = 2;
                    stack.pop();
                }
            }
        }

        // Depth: only earlier questions count (later ones are reported above), so
        // one pass in order suffices.
        let mut depth = vec![1usize; n];
        for i in 0..n {
            let d = deps[i]
                .iter()
                .filter(|&&j| j < i)
                .map(|&j| depth[j] + 1)
                .max()
                .unwrap_or(1);
            depth[i] = d;
            if d > MAX_DEPTH && deps[i].iter().all(|&j| j >= i || depth[j] <= MAX_DEPTH) {
                self.push(
                    format!("{path}.questions[{i}].show_if"),
                    CheckCode::TooDeep,
                    format!(
                        "設問「{}」は{d}階層目になります（{MAX_DEPTH}階層まで）。",
                        e.questions[i].id
                    ),
                );
            }
        }
    }

    fn cases(&mut self, g: &Guide) {
        let mut names = HashSet::new();
        for (i, c) in g.cases.iter().enumerate() {
            let path = format!("cases[{i}]");
            self.required(format!("{path}.name"), &c.name, "事例の名前");
            if !c.name.is_empty() && !names.insert(c.name.as_str()) {
                self.push(
                    format!("{path}.name"),
                    CheckCode::Duplicate,
                    format!("事例の名前「{}」が重複しています。", c.name),
                );
            }
            let mut unknown = false;
            for (j, p) in c.expect.iter().enumerate() {
                if g.procedure(p).is_none() {
                    unknown = true;
                    self.push(
                        format!("{path}.expect[{j}]"),
                        CheckCode::UnknownProcedure,
                        format!("事例「{}」の手続「{p}」はありません。", c.name),
                    );
                }
            }
            let outcome = match evaluate(g, &c.event, &c.answers) {
                Ok(o) => o,
                Err(_) => {
                    self.push(
                        format!("{path}.event"),
                        CheckCode::UnknownEvent,
                        format!(
                            "事例「{}」のライフイベント「{}」はありません。",
                            c.name, c.event
                        ),
                    );
                    continue;
                }
            };
            if !outcome.errors.is_empty() {
                let list: Vec<String> = outcome
                    .errors
                    .iter()
                    .map(|e| format!("{}：{}", e.field, e.message))
                    .collect();
                self.push(
                    format!("{path}.answers"),
                    CheckCode::CaseInvalid,
                    format!(
                        "事例「{}」の回答に誤りがあります（{}）。",
                        c.name,
                        list.join("、")
                    ),
                );
                continue;
            }
            if let Some(q) = &outcome.next_question {
                self.push(
                    format!("{path}.answers"),
                    CheckCode::CaseInvalid,
                    format!(
                        "事例「{}」の回答が足りません（次の設問：{}）。",
                        c.name, q.id
                    ),
                );
                continue;
            }
            if unknown {
                continue;
            }
            let got: BTreeSet<&str> = outcome.procedures.iter().map(|p| p.id.as_str()).collect();
            let want: BTreeSet<&str> = c.expect.iter().map(String::as_str).collect();
            if got != want {
                let missing: Vec<&str> = want.difference(&got).copied().collect();
                let extra: Vec<&str> = got.difference(&want).copied().collect();
                let none = |v: &[&str]| {
                    if v.is_empty() {
                        "なし".to_string()
                    } else {
                        v.join(", ")
                    }
                };
                self.push(
                    path,
                    CheckCode::CaseFailed,
                    format!(
                        "事例「{}」が期待と違います（不足：{}／余分：{}）。",
                        c.name,
                        none(&missing),
                        none(&extra)
                    ),
                );
            }
        }
    }
}

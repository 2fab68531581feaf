//! The rule language (判定ルール): small, declarative, JSON.
//!
//! ```json
//! { "all": [
//!     { "question": "school", "eq": "public" },
//!     { "any_member": { "age": { "gte": 6, "lte": 14, "on": "previous_march_31" } } }
//! ] }
//! ```
//!
//! A rule is one JSON object with exactly one operator. Parsing is hand-written
//! (not `#[serde(untagged)]`) so that a mistake gets a Japanese message naming the
//! place inside the rule instead of "did not match any variant".

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value, json};

/// Upper bound of an age in a rule; bounds a typo such as `650`.
pub const MAX_AGE: u32 = 150;

/// A rule over the answers of one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// `{"all": [r, …]}`: every rule holds.
    All(Vec<Rule>),
    /// `{"any": [r, …]}`: at least one holds.
    Any(Vec<Rule>),
    /// `{"not": r}`.
    Not(Box<Rule>),
    /// `{"question": "id", "<op>": value}`.
    Answer { question: String, test: AnswerTest },
    /// `{"any_member": p, "of": "household"}`: some member satisfies `p`.
    AnyMember { of: String, pred: MemberPred },
    /// `{"count_members": p, "of": "household", "gte": n, "lte": m}`.
    CountMembers {
        of: String,
        pred: MemberPred,
        gte: Option<u32>,
        lte: Option<u32>,
    },
}

/// A test on one answer.
#[derive(Debug, Clone, PartialEq)]
pub enum AnswerTest {
    /// `"eq"`: yes/no (`true`), single choice (option value), date (`"YYYY-MM-DD"`), number.
    Eq(Value),
    /// `"in"`: equals one of (single, date, number); for multiple choice: at least one chosen.
    In(Vec<Value>),
    /// `"has"`: a multiple-choice answer contains this option.
    Has(String),
    /// `"gte"` / `"lte"`: date or number bounds, inclusive.
    Gte(Value),
    Lte(Value),
    /// `"answered"`: the question has a valid answer (`false`: has none).
    Answered(bool),
}

/// A predicate on one household member.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberPred {
    All(Vec<MemberPred>),
    Any(Vec<MemberPred>),
    Not(Box<MemberPred>),
    /// `{"age": {"gte": 65, "lte": 74, "basis": "legal", "on": "event"}}`.
    Age(AgeTest),
    /// `{"relationship": "child"}` or `{"relationship": ["child", "grandchild"]}`.
    Relationship(Vec<String>),
    Nationality(Vec<String>),
    Insurance(Vec<String>),
}

/// Age bounds (inclusive, whole years) at a reference day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgeTest {
    pub gte: Option<u32>,
    pub lte: Option<u32>,
    pub basis: AgeBasis,
    pub on: AgeOn,
}

/// When a year of age is added. See [`crate::age`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AgeBasis {
    /// 年齢計算ニ関スル法律 and 民法 第143条: at the end of the day before the birthday.
    #[default]
    Legal,
    /// On the birthday itself (e.g. 後期高齢者医療: the 75th birthday).
    Birthday,
}

/// The day at which the age is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AgeOn {
    /// The event date (異動日, 出生日 …).
    #[default]
    Event,
    /// The 3月31日 that ends the previous fiscal year (年度) of the event date:
    /// the reference of 学年 (学校教育法 第17条) and of 児童手当's
    /// "18歳に達する日以後の最初の3月31日まで".
    PreviousMarch31,
}

impl AgeBasis {
    fn as_str(self) -> &'static str {
        match self {
            AgeBasis::Legal => "legal",
            AgeBasis::Birthday => "birthday",
        }
    }
}

impl AgeOn {
    fn as_str(self) -> &'static str {
        match self {
            AgeOn::Event => "event",
            AgeOn::PreviousMarch31 => "previous_march_31",
        }
    }
}

/// The default household question id of `any_member` / `count_members`.
pub const DEFAULT_HOUSEHOLD: &str = "household";

impl Rule {
    /// Ids of the questions this rule reads, each once, in first-seen order.
    pub fn questions(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a str>) {
        let mut push = |q: &'a str| {
            if !out.contains(&q) {
                out.push(q);
            }
        };
        match self {
            Rule::All(rs) | Rule::Any(rs) => rs.iter().for_each(|r| r.collect(out)),
            Rule::Not(r) => r.collect(out),
            Rule::Answer { question, .. } => push(question),
            Rule::AnyMember { of, .. } | Rule::CountMembers { of, .. } => push(of),
        }
    }

    /// Whether the rule reads a member's age (and so the event date).
    pub fn uses_age(&self) -> bool {
        match self {
            Rule::All(rs) | Rule::Any(rs) => rs.iter().any(Rule::uses_age),
            Rule::Not(r) => r.uses_age(),
            Rule::Answer { .. } => false,
            Rule::AnyMember { pred, .. } | Rule::CountMembers { pred, .. } => pred.uses_age(),
        }
    }

    pub fn from_value(v: &Value) -> Result<Rule, String> {
        parse_rule(v, "")
    }

    pub fn to_value(&self) -> Value {
        match self {
            Rule::All(rs) => json!({ "all": rs.iter().map(Rule::to_value).collect::<Vec<_>>() }),
            Rule::Any(rs) => json!({ "any": rs.iter().map(Rule::to_value).collect::<Vec<_>>() }),
            Rule::Not(r) => json!({ "not": r.to_value() }),
            Rule::Answer { question, test } => {
                let (op, v) = match test {
                    AnswerTest::Eq(v) => ("eq", v.clone()),
                    AnswerTest::In(vs) => ("in", Value::Array(vs.clone())),
                    AnswerTest::Has(s) => ("has", Value::String(s.clone())),
                    AnswerTest::Gte(v) => ("gte", v.clone()),
                    AnswerTest::Lte(v) => ("lte", v.clone()),
                    AnswerTest::Answered(b) => ("answered", Value::Bool(*b)),
                };
                let mut m = Map::new();
                m.insert("question".into(), Value::String(question.clone()));
                m.insert(op.into(), v);
                Value::Object(m)
            }
            Rule::AnyMember { of, pred } => {
                let mut m = Map::new();
                m.insert("any_member".into(), pred.to_value());
                if of != DEFAULT_HOUSEHOLD {
                    m.insert("of".into(), Value::String(of.clone()));
                }
                Value::Object(m)
            }
            Rule::CountMembers { of, pred, gte, lte } => {
                let mut m = Map::new();
                m.insert("count_members".into(), pred.to_value());
                if of != DEFAULT_HOUSEHOLD {
                    m.insert("of".into(), Value::String(of.clone()));
                }
                if let Some(n) = gte {
                    m.insert("gte".into(), json!(n));
                }
                if let Some(n) = lte {
                    m.insert("lte".into(), json!(n));
                }
                Value::Object(m)
            }
        }
    }
}

impl MemberPred {
    pub fn uses_age(&self) -> bool {
        match self {
            MemberPred::All(ps) | MemberPred::Any(ps) => ps.iter().any(MemberPred::uses_age),
            MemberPred::Not(p) => p.uses_age(),
            MemberPred::Age(_) => true,
            _ => false,
        }
    }

    pub fn to_value(&self) -> Value {
        let list = |vs: &Vec<String>| {
            if vs.len() == 1 {
                Value::String(vs[0].clone())
            } else {
                json!(vs)
            }
        };
        match self {
            MemberPred::All(ps) => {
                json!({ "all": ps.iter().map(MemberPred::to_value).collect::<Vec<_>>() })
            }
            MemberPred::Any(ps) => {
                json!({ "any": ps.iter().map(MemberPred::to_value).collect::<Vec<_>>() })
            }
            MemberPred::Not(p) => json!({ "not": p.to_value() }),
            MemberPred::Age(a) => {
                let mut m = Map::new();
                if let Some(n) = a.gte {
                    m.insert("gte".into(), json!(n));
                }
                if let Some(n) = a.lte {
                    m.insert("lte".into(), json!(n));
                }
                if a.basis != AgeBasis::default() {
                    m.insert("basis".into(), json!(a.basis.as_str()));
                }
                if a.on != AgeOn::default() {
                    m.insert("on".into(), json!(a.on.as_str()));
                }
                json!({ "age": Value::Object(m) })
            }
            MemberPred::Relationship(vs) => json!({ "relationship": list(vs) }),
            MemberPred::Nationality(vs) => json!({ "nationality": list(vs) }),
            MemberPred::Insurance(vs) => json!({ "insurance": list(vs) }),
        }
    }
}

fn at(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{}: 条件はJSONオブジェクトで書いてください。", show(path)))
}

fn show(path: &str) -> &str {
    if path.is_empty() { "条件" } else { path }
}

fn list<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>, String> {
    match v.as_array() {
        Some(a) if !a.is_empty() => Ok(a),
        Some(_) => Err(format!("{path}: 1つ以上の条件を並べてください。")),
        None => Err(format!("{path}: 配列で書いてください。")),
    }
}

fn count(v: &Value, path: &str) -> Result<u32, String> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("{path}: 0以上の整数で書いてください。"))
}

fn parse_rule(v: &Value, path: &str) -> Result<Rule, String> {
    let m = object(v, path)?;
    let only = |key: &str| -> Result<(), String> {
        if m.len() == 1 {
            Ok(())
        } else {
            Err(format!(
                "{}: 「{key}」と同じ条件に他のキーは書けません。",
                show(path)
            ))
        }
    };
    if let Some(a) = m.get("all") {
        only("all")?;
        let p = at(path, "all");
        let rs = list(a, &p)?;
        return rs
            .iter()
            .enumerate()
            .map(|(i, r)| parse_rule(r, &format!("{p}[{i}]")))
            .collect::<Result<_, _>>()
            .map(Rule::All);
    }
    if let Some(a) = m.get("any") {
        only("any")?;
        let p = at(path, "any");
        let rs = list(a, &p)?;
        return rs
            .iter()
            .enumerate()
            .map(|(i, r)| parse_rule(r, &format!("{p}[{i}]")))
            .collect::<Result<_, _>>()
            .map(Rule::Any);
    }
    if let Some(r) = m.get("not") {
        only("not")?;
        return Ok(Rule::Not(Box::new(parse_rule(r, &at(path, "not"))?)));
    }
    for quant in ["any_member", "count_members"] {
        let Some(p) = m.get(quant) else { continue };
        let mut of = DEFAULT_HOUSEHOLD.to_string();
        let (mut gte, mut lte) = (None, None);
        for (k, v) in m {
            match k.as_str() {
                k if k == quant => {}
                "of" => {
                    of = v
                        .as_str()
                        .ok_or_else(|| {
                            format!("{}: 設問IDを文字列で書いてください。", at(path, "of"))
                        })?
                        .to_string();
                }
                "gte" if quant == "count_members" => gte = Some(count(v, &at(path, "gte"))?),
                "lte" if quant == "count_members" => lte = Some(count(v, &at(path, "lte"))?),
                other => {
                    return Err(format!(
                        "{}: 「{quant}」の条件に「{other}」は書けません。",
                        show(path)
                    ));
                }
            }
        }
        let pred = parse_member(p, &at(path, quant))?;
        return Ok(if quant == "any_member" {
            Rule::AnyMember { of, pred }
        } else {
            if gte.is_none() && lte.is_none() {
                return Err(format!(
                    "{}: 「count_members」には「gte」か「lte」で人数を書いてください。",
                    show(path)
                ));
            }
            Rule::CountMembers { of, pred, gte, lte }
        });
    }
    let Some(q) = m.get("question") else {
        return Err(format!(
            "{}: 条件の種類がわかりません（all, any, not, question, any_member, count_members のいずれかを書いてください）。",
            show(path)
        ));
    };
    let question = q
        .as_str()
        .ok_or_else(|| format!("{}: 設問IDを文字列で書いてください。", at(path, "question")))?
        .to_string();
    if m.len() != 2 {
        return Err(format!(
            "{}: 「question」と、比較（eq, in, has, gte, lte, answered）を1つだけ書いてください。",
            show(path)
        ));
    }
    let Some((op, v)) = m.iter().find(|(k, _)| k.as_str() != "question") else {
        return Err(format!("{}: 比較を書いてください。", show(path)));
    };
    let test = match op.as_str() {
        "eq" => AnswerTest::Eq(v.clone()),
        "in" => AnswerTest::In(list(v, &at(path, "in"))?.clone()),
        "has" => AnswerTest::Has(
            v.as_str()
                .ok_or_else(|| {
                    format!("{}: 選択肢の値を文字列で書いてください。", at(path, "has"))
                })?
                .to_string(),
        ),
        "gte" => AnswerTest::Gte(v.clone()),
        "lte" => AnswerTest::Lte(v.clone()),
        "answered" => AnswerTest::Answered(v.as_bool().ok_or_else(|| {
            format!("{}: true か false で書いてください。", at(path, "answered"))
        })?),
        other => {
            return Err(format!(
                "{}: 比較「{other}」はありません（eq, in, has, gte, lte, answered）。",
                show(path)
            ));
        }
    };
    Ok(Rule::Answer { question, test })
}

fn strings(v: &Value, path: &str) -> Result<Vec<String>, String> {
    let err = || format!("{path}: 値を文字列か文字列の配列で書いてください。");
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or_else(err))
            .collect(),
        _ => Err(err()),
    }
}

fn parse_member(v: &Value, path: &str) -> Result<MemberPred, String> {
    let m = object(v, path)?;
    if m.len() != 1 {
        return Err(format!(
            "{}: 世帯員の条件は1つのキー（all, any, not, age, relationship, nationality, insurance）で書いてください。",
            show(path)
        ));
    }
    let Some((k, v)) = m.iter().next() else {
        return Err(format!("{}: 世帯員の条件を書いてください。", show(path)));
    };
    let p = at(path, k);
    match k.as_str() {
        "all" | "any" => {
            let ps = list(v, &p)?
                .iter()
                .enumerate()
                .map(|(i, x)| parse_member(x, &format!("{p}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(if k == "all" {
                MemberPred::All(ps)
            } else {
                MemberPred::Any(ps)
            })
        }
        "not" => Ok(MemberPred::Not(Box::new(parse_member(v, &p)?))),
        "relationship" => strings(v, &p).map(MemberPred::Relationship),
        "nationality" => strings(v, &p).map(MemberPred::Nationality),
        "insurance" => strings(v, &p).map(MemberPred::Insurance),
        "age" => {
            let a = object(v, &p)?;
            let mut t = AgeTest {
                gte: None,
                lte: None,
                basis: AgeBasis::default(),
                on: AgeOn::default(),
            };
            for (k, v) in a {
                let q = at(&p, k);
                match k.as_str() {
                    "gte" => t.gte = Some(count(v, &q)?),
                    "lte" => t.lte = Some(count(v, &q)?),
                    "basis" => {
                        t.basis = match v.as_str() {
                            Some("legal") => AgeBasis::Legal,
                            Some("birthday") => AgeBasis::Birthday,
                            _ => {
                                return Err(format!(
                                    "{q}: 「legal」か「birthday」を書いてください。"
                                ));
                            }
                        }
                    }
                    "on" => {
                        t.on = match v.as_str() {
                            Some("event") => AgeOn::Event,
                            Some("previous_march_31") => AgeOn::PreviousMarch31,
                            _ => {
                                return Err(format!(
                                    "{q}: 「event」か「previous_march_31」を書いてください。"
                                ));
                            }
                        }
                    }
                    other => return Err(format!("{p}: 年齢の条件に「{other}」は書けません。")),
                }
            }
            if t.gte.is_none() && t.lte.is_none() {
                return Err(format!("{p}: 「gte」か「lte」で年齢を書いてください。"));
            }
            Ok(MemberPred::Age(t))
        }
        other => Err(format!("{p}: 世帯員の条件「{other}」はありません。")),
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rule, D::Error> {
        let v = Value::deserialize(d)?;
        Rule::from_value(&v).map_err(serde::de::Error::custom)
    }
}

impl Serialize for MemberPred {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for MemberPred {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MemberPred, D::Error> {
        let v = Value::deserialize(d)?;
        parse_member(&v, "").map_err(serde::de::Error::custom)
    }
}

//! Strict reading of a definition from JSON.
//!
//! Hand-written over `serde_json::Value` rather than derived: a field is one flat
//! object whose allowed keys depend on its `type`, and serde's `flatten` would accept
//! unknown keys silently; serde's messages also quote the input and are English.
//! Here every problem becomes a [`FieldError`] with its path (`items[3].max_file_mb`)
//! and a Japanese message for staff, and all of them are reported at once.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::condition::{Condition, PREDICATE_KEYS, Predicate};
use super::definition::{
    AccessPolicy, ApplicantType, CertItem, Choice, DEFAULT_MAX_FILES, DEFAULT_MAX_TOTAL_MB, Field,
    FieldKind, FormDefinition, NotifyEvent, SignaturePolicy, default_notify,
};
use super::fee::{FeeLine, FeeRule, PaymentTiming};
use crate::error::FieldError;
use crate::filetype::allowed_extensions;

/// Default of `max_file_mb` on an attachment field: the largest allowed.
pub const DEFAULT_MAX_FILE_MB: u32 = 10;

/// Deepest nesting the parser follows (sections in sections, conditions in
/// conditions). Far above what [`super::validate_definition`] allows; it only bounds
/// the work and the stack on hostile input.
const MAX_PARSE_DEPTH: usize = 16;

/// Parses JSON into a definition. Every shape problem (wrong JSON type, missing or
/// unknown key, unknown `type`, unknown enum value) is one [`FieldError`] naming its
/// path; the rules about values (lengths, ranges, references) are
/// [`super::validate_definition`]'s job.
pub fn parse_definition(json: &Value) -> Result<FormDefinition, Vec<FieldError>> {
    let mut p = Parser::default();
    let def = p.definition(json);
    match def {
        Some(def) if p.errors.is_empty() => Ok(def),
        _ => {
            if p.errors.is_empty() {
                // Unreachable by construction; never answer Err with no reason.
                p.errors.push(FieldError::new(
                    "",
                    "invalid_format",
                    "様式の定義を読み取れません。",
                ));
            }
            Err(p.errors)
        }
    }
}

/// Reads a form's `fee` on its own (paths start at `fee`), as [`parse_definition`] does.
pub(crate) fn parse_fee(json: &Value) -> Result<FeeRule, Vec<FieldError>> {
    let mut p = Parser::default();
    match p.fee(json, "fee") {
        Some(rule) if p.errors.is_empty() => Ok(rule),
        _ => {
            if p.errors.is_empty() {
                p.errors.push(FieldError::new(
                    "fee",
                    "invalid_format",
                    "手数料の設定を読み取れません。",
                ));
            }
            Err(p.errors)
        }
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let mut p = Parser::default();
        match p.condition(&v, "show_if", 0) {
            Some(c) if p.errors.is_empty() => Ok(c),
            _ => Err(serde::de::Error::custom("invalid display condition")),
        }
    }
}

const ROOT_KEYS: &[&str] = &[
    "title",
    "overview",
    "contact",
    "reference_url",
    "publish_from",
    "publish_until",
    "applicant_type",
    "signature",
    "access",
    "max_total_mb",
    "notify",
    "fee",
    "items",
];

const FEE_KEYS: &[&str] = &["timing", "lines"];
const FEE_LINE_KEYS: &[&str] = &["label", "unit_price", "quantity_field", "when"];

const COMMON_FIELD_KEYS: &[&str] = &[
    "id",
    "type",
    "label",
    "required",
    "help",
    "show_if",
    "from_certificate",
];

/// Keys a field of type `t` may carry besides the common ones; `None` for an unknown type.
fn kind_keys(t: &str) -> Option<&'static [&'static str]> {
    Some(match t {
        "text" => &["multiline", "min_length", "max_length"],
        "radio" | "select" => &["options"],
        "checkbox" => &["options", "min_choices", "max_choices"],
        "date" => &["min", "max"],
        "attachment" => &["extensions", "max_file_mb", "max_files"],
        "number" => &["min", "max", "integer"],
        "name" => &["kana"],
        "section" => &["items"],
        "phone" | "email" | "my_number" | "postal_code" | "address" | "heading" | "explanation" => {
            &[]
        }
        _ => return None,
    })
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

#[derive(Default)]
struct Parser {
    errors: Vec<FieldError>,
}

impl Parser {
    fn err(&mut self, path: String, code: &str, message: &str) {
        self.errors.push(FieldError::new(path, code, message));
    }

    fn object<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            _ => {
                self.err(
                    path.to_owned(),
                    "wrong_type",
                    "オブジェクト（{…}）で指定してください。",
                );
                None
            }
        }
    }

    fn unknown_keys(&mut self, m: &Map<String, Value>, path: &str, allowed: &[&[&str]]) {
        for k in m.keys() {
            if !allowed.iter().any(|set| set.contains(&k.as_str())) {
                self.err(join(path, k), "unknown_field", "この設定項目は使えません。");
            }
        }
    }

    /// A present, non-null value or the "required" error.
    fn need<'v>(&mut self, m: &'v Map<String, Value>, key: &str, path: &str) -> Option<&'v Value> {
        match m.get(key) {
            Some(v) if !v.is_null() => Some(v),
            _ => {
                self.err(join(path, key), "required", "この設定項目は必須です。");
                None
            }
        }
    }

    fn string(&mut self, v: &Value, path: String) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.err(path, "wrong_type", "文字列で指定してください。");
                None
            }
        }
    }

    fn req_string(&mut self, m: &Map<String, Value>, key: &str, path: &str) -> Option<String> {
        let v = self.need(m, key, path)?;
        self.string(v, join(path, key))
    }

    /// `Ok(None)` when absent or null, `Err(())` after recording a wrong type.
    fn opt_string(
        &mut self,
        m: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<String>, ()> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => self.string(v, join(path, key)).map(Some).ok_or(()),
        }
    }

    fn opt_bool(&mut self, m: &Map<String, Value>, key: &str, path: &str) -> Result<bool, ()> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => {
                self.err(
                    join(path, key),
                    "wrong_type",
                    "true または false で指定してください。",
                );
                Err(())
            }
        }
    }

    fn opt_u32(
        &mut self,
        m: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<u32>, ()> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => {
                match u32::try_from(n.as_u64().unwrap_or(u64::MAX)) {
                    Ok(x) => Ok(Some(x)),
                    Err(_) => {
                        self.err(join(path, key), "out_of_range", "値が大きすぎます。");
                        Err(())
                    }
                }
            }
            Some(_) => {
                self.err(
                    join(path, key),
                    "wrong_type",
                    "0以上の整数で指定してください。",
                );
                Err(())
            }
        }
    }

    fn opt_f64(
        &mut self,
        m: &Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Result<Option<f64>, ()> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() => Ok(Some(x)),
                _ => {
                    self.err(join(path, key), "out_of_range", "値が大きすぎます。");
                    Err(())
                }
            },
            Some(_) => {
                self.err(join(path, key), "wrong_type", "数値で指定してください。");
                Err(())
            }
        }
    }

    fn array<'v>(&mut self, v: &'v Value, path: String) -> Option<&'v Vec<Value>> {
        match v {
            Value::Array(a) => Some(a),
            _ => {
                self.err(path, "wrong_type", "配列（[…]）で指定してください。");
                None
            }
        }
    }

    fn enum_value<T: serde::de::DeserializeOwned>(
        &mut self,
        m: &Map<String, Value>,
        key: &str,
        path: &str,
        default: T,
    ) -> Result<T, ()> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v @ Value::String(_)) => serde_json::from_value(v.clone()).map_err(|_| {
                self.err(
                    join(path, key),
                    "not_an_option",
                    "指定できる値ではありません。",
                );
            }),
            Some(_) => {
                self.err(join(path, key), "wrong_type", "文字列で指定してください。");
                Err(())
            }
        }
    }

    fn definition(&mut self, v: &Value) -> Option<FormDefinition> {
        let m = self.object(v, "")?;
        self.unknown_keys(m, "", &[ROOT_KEYS]);
        let title = self.req_string(m, "title", "");
        let overview = self.opt_string(m, "overview", "");
        let contact = self.opt_string(m, "contact", "");
        let reference_url = self.opt_string(m, "reference_url", "");
        let publish_from = self.opt_string(m, "publish_from", "");
        let publish_until = self.opt_string(m, "publish_until", "");
        let applicant_type = self.enum_value(m, "applicant_type", "", ApplicantType::default());
        let signature = self.enum_value(m, "signature", "", SignaturePolicy::default());
        let access = self.enum_value(m, "access", "", AccessPolicy::default());
        let max_total_mb = self.opt_u32(m, "max_total_mb", "");
        let notify = match m.get("notify") {
            None | Some(Value::Null) => Some(default_notify()),
            Some(v) => self.array(v, "notify".into()).and_then(|a| {
                let mut out = Vec::with_capacity(a.len());
                let mut ok = true;
                for (i, e) in a.iter().enumerate() {
                    let path = index("notify", i);
                    match e {
                        Value::String(_) => {
                            match serde_json::from_value::<NotifyEvent>(e.clone()) {
                                Ok(n) => out.push(n),
                                Err(_) => {
                                    ok = false;
                                    self.err(path, "not_an_option", "指定できる値ではありません。");
                                }
                            }
                        }
                        _ => {
                            ok = false;
                            self.err(path, "wrong_type", "文字列で指定してください。");
                        }
                    }
                }
                ok.then_some(out)
            }),
        };
        let fee = match m.get("fee") {
            None | Some(Value::Null) => Ok(None),
            Some(v) => self.fee(v, "fee").map(Some).ok_or(()),
        };
        let items = self
            .need(m, "items", "")
            .and_then(|v| self.items(v, "items", 0));
        Some(FormDefinition {
            title: title?,
            overview: overview.ok()?,
            contact: contact.ok()?,
            reference_url: reference_url.ok()?,
            publish_from: publish_from.ok()?,
            publish_until: publish_until.ok()?,
            applicant_type: applicant_type.ok()?,
            signature: signature.ok()?,
            access: access.ok()?,
            max_total_mb: max_total_mb.ok()?.unwrap_or(DEFAULT_MAX_TOTAL_MB),
            notify: notify?,
            fee: fee.ok()?,
            items: items?,
        })
    }

    /// A form's `fee`: `{"timing": …, "lines": [{label, unit_price, quantity_field?, when?}]}`.
    fn fee(&mut self, v: &Value, path: &str) -> Option<FeeRule> {
        let m = self.object(v, path)?;
        self.unknown_keys(m, path, &[FEE_KEYS]);
        let timing = self.need(m, "timing", path).and_then(|_| {
            self.enum_value(m, "timing", path, PaymentTiming::AtSubmission)
                .ok()
        });
        let lines_path = join(path, "lines");
        let lines = self.need(m, "lines", path).and_then(|v| {
            let a = self.array(v, lines_path.clone())?;
            let mut out = Vec::with_capacity(a.len());
            let mut ok = true;
            for (i, e) in a.iter().enumerate() {
                match self.fee_line(e, &index(&lines_path, i)) {
                    Some(l) => out.push(l),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        });
        Some(FeeRule {
            timing: timing?,
            lines: lines?,
        })
    }

    fn fee_line(&mut self, v: &Value, path: &str) -> Option<FeeLine> {
        let m = self.object(v, path)?;
        self.unknown_keys(m, path, &[FEE_LINE_KEYS]);
        let label = self.req_string(m, "label", path);
        let unit_price = self.need(m, "unit_price", path).and_then(|v| {
            let p = join(path, "unit_price");
            match v {
                Value::Number(n) if n.as_i64().is_some_and(|x| x >= 0) => {
                    crate::money::Yen::new(n.as_i64().unwrap_or(0)).ok()
                }
                Value::Number(n) if n.as_u64().is_some() => {
                    self.err(p, "out_of_range", "値が大きすぎます。");
                    None
                }
                _ => {
                    self.err(p, "wrong_type", "0以上の整数（円）で指定してください。");
                    None
                }
            }
        });
        let quantity_field = self.opt_string(m, "quantity_field", path);
        let when = match m.get("when") {
            None | Some(Value::Null) => Ok(None),
            Some(c) => self
                .condition(c, &join(path, "when"), 0)
                .map(Some)
                .ok_or(()),
        };
        Some(FeeLine {
            label: label?,
            unit_price: unit_price?,
            quantity_field: quantity_field.ok()?,
            when: when.ok()?,
        })
    }

    fn items(&mut self, v: &Value, path: &str, depth: usize) -> Option<Vec<Field>> {
        let a = self.array(v, path.to_owned())?;
        let mut out = Vec::with_capacity(a.len());
        let mut ok = true;
        for (i, item) in a.iter().enumerate() {
            match self.field(item, &index(path, i), depth) {
                Some(f) => out.push(f),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn field(&mut self, v: &Value, path: &str, depth: usize) -> Option<Field> {
        let m = self.object(v, path)?;
        let type_name = self
            .need(m, "type", path)
            .and_then(|t| self.string(t, join(path, "type")));
        let extra = match type_name.as_deref().map(|t| (t, kind_keys(t))) {
            Some((_, Some(keys))) => Some(keys),
            Some((_, None)) => {
                self.err(
                    join(path, "type"),
                    "unknown_type",
                    "項目の種類が正しくありません。",
                );
                None
            }
            None => None,
        };
        // Without a known type, which keys belong is unknown: the type error says it all.
        if let Some(extra) = extra {
            self.unknown_keys(m, path, &[COMMON_FIELD_KEYS, extra]);
        }
        let id = self.req_string(m, "id", path);
        let label = self.req_string(m, "label", path);
        let required = self.opt_bool(m, "required", path);
        let help = self.opt_string(m, "help", path);
        let show_if = match m.get("show_if") {
            None | Some(Value::Null) => Ok(None),
            Some(c) => self
                .condition(c, &join(path, "show_if"), 0)
                .map(Some)
                .ok_or(()),
        };
        let from_certificate = match m.get("from_certificate") {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self
                .enum_value(m, "from_certificate", path, CertItem::Name)
                .map(Some),
        };
        let kind = match (type_name.as_deref(), extra) {
            (Some(t), Some(_)) => self.kind(t, m, path, depth),
            _ => None,
        };
        Some(Field {
            id: id?,
            label: label?,
            required: required.ok()?,
            help: help.ok()?,
            show_if: show_if.ok()?,
            from_certificate: from_certificate.ok()?,
            kind: kind?,
        })
    }

    fn kind(
        &mut self,
        t: &str,
        m: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Option<FieldKind> {
        Some(match t {
            "text" => {
                let multiline = self.opt_bool(m, "multiline", path);
                let min_length = self.opt_u32(m, "min_length", path);
                let max_length = self.opt_u32(m, "max_length", path);
                FieldKind::Text {
                    multiline: multiline.ok()?,
                    min_length: min_length.ok()?,
                    max_length: max_length.ok()?,
                }
            }
            "radio" => FieldKind::Radio {
                options: self.options(m, path)?,
            },
            "select" => FieldKind::Select {
                options: self.options(m, path)?,
            },
            "checkbox" => {
                let options = self.options(m, path);
                let min_choices = self.opt_u32(m, "min_choices", path);
                let max_choices = self.opt_u32(m, "max_choices", path);
                FieldKind::Checkbox {
                    options: options?,
                    min_choices: min_choices.ok()?,
                    max_choices: max_choices.ok()?,
                }
            }
            "phone" => FieldKind::Phone,
            "email" => FieldKind::Email,
            "date" => {
                let min = self.opt_string(m, "min", path);
                let max = self.opt_string(m, "max", path);
                FieldKind::Date {
                    min: min.ok()?,
                    max: max.ok()?,
                }
            }
            "attachment" => {
                let extensions = match m.get("extensions") {
                    // Absent: every allowed type, spelled out so that readers of the
                    // definition never have to interpret an empty list.
                    None | Some(Value::Null) => Some(
                        allowed_extensions()
                            .iter()
                            .map(|e| (*e).to_owned())
                            .collect(),
                    ),
                    Some(v) => self.string_array(v, &join(path, "extensions")),
                };
                let max_file_mb = self.opt_u32(m, "max_file_mb", path);
                let max_files = self.opt_u32(m, "max_files", path);
                FieldKind::Attachment {
                    extensions: extensions?,
                    max_file_mb: max_file_mb.ok()?.unwrap_or(DEFAULT_MAX_FILE_MB),
                    max_files: max_files.ok()?.unwrap_or(DEFAULT_MAX_FILES),
                }
            }
            "my_number" => FieldKind::MyNumber,
            "number" => {
                let min = self.opt_f64(m, "min", path);
                let max = self.opt_f64(m, "max", path);
                let integer = self.opt_bool(m, "integer", path);
                FieldKind::Number {
                    min: min.ok()?,
                    max: max.ok()?,
                    integer: integer.ok()?,
                }
            }
            "postal_code" => FieldKind::PostalCode,
            "name" => FieldKind::Name {
                kana: self.opt_bool(m, "kana", path).ok()?,
            },
            "address" => FieldKind::Address,
            "heading" => FieldKind::Heading,
            "explanation" => FieldKind::Explanation,
            "section" => {
                if depth >= MAX_PARSE_DEPTH {
                    self.err(join(path, "items"), "too_deep", "入れ子が深すぎます。");
                    return None;
                }
                let v = self.need(m, "items", path)?;
                FieldKind::Section {
                    items: self.items(v, &join(path, "items"), depth + 1)?,
                }
            }
            _ => return None,
        })
    }

    fn string_array(&mut self, v: &Value, path: &str) -> Option<Vec<String>> {
        let a = self.array(v, path.to_owned())?;
        let mut out = Vec::with_capacity(a.len());
        let mut ok = true;
        for (i, e) in a.iter().enumerate() {
            match self.string(e, index(path, i)) {
                Some(s) => out.push(s),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn options(&mut self, m: &Map<String, Value>, path: &str) -> Option<Vec<Choice>> {
        let v = self.need(m, "options", path)?;
        let path = join(path, "options");
        let a = self.array(v, path.clone())?;
        let mut out = Vec::with_capacity(a.len());
        let mut ok = true;
        for (i, e) in a.iter().enumerate() {
            let p = index(&path, i);
            let Some(o) = self.object(e, &p) else {
                ok = false;
                continue;
            };
            self.unknown_keys(o, &p, &[&["value", "label"]]);
            let value = self.req_string(o, "value", &p);
            let label = self.req_string(o, "label", &p);
            match (value, label) {
                (Some(value), Some(label)) => out.push(Choice { value, label }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    pub(crate) fn condition(&mut self, v: &Value, path: &str, depth: usize) -> Option<Condition> {
        if depth >= MAX_PARSE_DEPTH {
            self.err(path.to_owned(), "too_deep", "条件の入れ子が深すぎます。");
            return None;
        }
        let m = self.object(v, path)?;
        let heads: Vec<&str> = ["field", "not", "all", "any"]
            .into_iter()
            .filter(|k| m.contains_key(*k))
            .collect();
        match heads.as_slice() {
            ["field"] => self.field_test(m, path),
            ["not"] => {
                self.unknown_keys(m, path, &[&["not"]]);
                let inner = self.condition(&m["not"], &join(path, "not"), depth + 1)?;
                Some(Condition::Not(Box::new(inner)))
            }
            [key @ ("all" | "any")] => {
                self.unknown_keys(m, path, &[&[key]]);
                let p = join(path, key);
                let a = self.array(&m[*key], p.clone())?;
                let mut cs = Vec::with_capacity(a.len());
                let mut ok = true;
                for (i, e) in a.iter().enumerate() {
                    match self.condition(e, &index(&p, i), depth + 1) {
                        Some(c) => cs.push(c),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                Some(if *key == "all" {
                    Condition::All(cs)
                } else {
                    Condition::Any(cs)
                })
            }
            [] => {
                self.unknown_keys(m, path, &[&["field", "not", "all", "any"], PREDICATE_KEYS]);
                self.err(
                    path.to_owned(),
                    "required",
                    "field、not、all、any のいずれかを指定してください。",
                );
                None
            }
            _ => {
                self.err(
                    path.to_owned(),
                    "too_many",
                    "field、not、all、any はどれか1つだけ指定してください。",
                );
                None
            }
        }
    }

    fn field_test(&mut self, m: &Map<String, Value>, path: &str) -> Option<Condition> {
        self.unknown_keys(m, path, &[&["field"], PREDICATE_KEYS]);
        let field = self.req_string(m, "field", path);
        let ops: Vec<&str> = PREDICATE_KEYS
            .iter()
            .copied()
            .filter(|k| m.contains_key(*k))
            .collect();
        let op = match ops.as_slice() {
            [op] => *op,
            [] => {
                self.err(
                    path.to_owned(),
                    "required",
                    "条件（equals、one_of、contains、gt、gte、lt、lte、answered）を1つ指定してください。",
                );
                return None;
            }
            _ => {
                self.err(
                    path.to_owned(),
                    "too_many",
                    "条件は1つの項目につき1つだけ指定してください。",
                );
                return None;
            }
        };
        let v = &m[op];
        let p = join(path, op);
        let scalar = |s: &mut Self, v: &Value, p: String| -> Option<Value> {
            match v {
                Value::String(_) | Value::Number(_) => Some(v.clone()),
                _ => {
                    s.err(p, "wrong_type", "文字列または数値で指定してください。");
                    None
                }
            }
        };
        let test = match op {
            "equals" => Predicate::Equals(scalar(self, v, p)?),
            "gt" => Predicate::Gt(scalar(self, v, p)?),
            "gte" => Predicate::Gte(scalar(self, v, p)?),
            "lt" => Predicate::Lt(scalar(self, v, p)?),
            "lte" => Predicate::Lte(scalar(self, v, p)?),
            "contains" => Predicate::Contains(Value::String(self.string(v, p)?)),
            "one_of" => {
                let a = self.array(v, p.clone())?;
                let mut vs = Vec::with_capacity(a.len());
                let mut ok = true;
                for (i, e) in a.iter().enumerate() {
                    match scalar(self, e, index(&p, i)) {
                        Some(x) => vs.push(x),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                Predicate::OneOf(vs)
            }
            "answered" => match v {
                Value::Bool(b) => Predicate::Answered(*b),
                _ => {
                    self.err(p, "wrong_type", "true または false で指定してください。");
                    return None;
                }
            },
            _ => return None,
        };
        Some(Condition::Field {
            field: field?,
            test,
        })
    }
}

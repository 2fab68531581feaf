//! The whole-definition check run before a form is published: every problem at once,
//! each with the path of the offending setting and a Japanese message for staff.

use std::collections::HashSet;

use serde_json::Value;

use super::answers::iso_date;
use super::condition::{Condition, Predicate};
use super::definition::{
    CertItem, Field, FieldKind, FormDefinition, SignaturePolicy, parse_tokyo_minute,
};
use super::fee::{MAX_FEE, MIN_CHARGE};
use super::graph::{Flat, cycle_through, is_cycle, sccs};
use super::limits::*;
use super::parse::{index, join};
use super::text::is_forbidden_char;
use crate::error::FieldError;
use crate::filetype::allowed_extensions;

/// Whether `id` is a valid field id: `[a-z][a-z0-9_]{0,63}`.
/// A form's public URL identifier: `[a-z0-9-]{3,64}`, not starting or ending with `-`.
pub fn is_valid_slug(slug: &str) -> bool {
    (3..=64).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

pub fn is_valid_field_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && id.len() <= 64
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

/// Checks a definition as a whole and returns every problem (empty: publishable).
///
/// Covers ids (format, uniqueness across sections), labels and texts (presence,
/// length, control characters), options (present, unique values), every min ≤ max,
/// attachment limits and extensions, the publication window, the reference URL,
/// sizes, display conditions (known input fields only, operators that suit the
/// field's type, values among the options, no cycles), and the fee (1..=20 lines, labels,
/// unit prices of 0 or [`MIN_CHARGE`]..=[`MAX_FEE`], quantity fields that are non-negative
/// integer `number` fields, `when` conditions checked like display conditions).
pub fn validate_definition(def: &FormDefinition) -> Vec<FieldError> {
    let mut v = Validator { errors: Vec::new() };
    v.root(def);
    let flat = Flat::new(def);
    v.items(def, &flat);
    v.fee(def, &flat);
    v.cycles(&flat);
    v.errors
}

struct Validator {
    errors: Vec<FieldError>,
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// An id for a message: staff typed it, but only a well-formed one is worth quoting.
fn quoted_id(id: &str) -> String {
    if is_valid_field_id(id) {
        format!("「{id}」")
    } else {
        String::new()
    }
}

impl Validator {
    fn err(&mut self, path: impl Into<String>, code: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(path, code, message));
    }

    /// A text setting: length, and no control characters (newlines only if `multiline`).
    fn text(&mut self, path: &str, s: &str, max: usize, what: &str, multiline: bool) {
        if chars(s) > max {
            self.err(
                path,
                "too_long",
                format!("{what}は{max}文字以内で入力してください。"),
            );
        }
        if s.chars()
            .any(|c| (c != '\n' || !multiline) && is_forbidden_char(c))
        {
            self.err(
                path,
                "invalid_char",
                format!("{what}に使用できない文字が含まれています。"),
            );
        }
    }

    fn root(&mut self, def: &FormDefinition) {
        if def.title.trim().is_empty() {
            self.err("title", "required", "様式の名称を入力してください。");
        } else {
            self.text("title", &def.title, MAX_TITLE_CHARS, "様式の名称", false);
        }
        if let Some(s) = &def.overview {
            self.text("overview", s, MAX_OVERVIEW_CHARS, "制度の概要", true);
        }
        if let Some(s) = &def.contact {
            self.text("contact", s, MAX_CONTACT_CHARS, "問合せ先", true);
        }
        if let Some(url) = &def.reference_url
            && !valid_https_url(url)
        {
            self.err(
                "reference_url",
                "invalid_format",
                "参考URLは https:// で始まる2000文字以内のURLを指定してください。",
            );
        }
        let from = self.minute("publish_from", def.publish_from.as_deref());
        let until = self.minute("publish_until", def.publish_until.as_deref());
        if let (Some(f), Some(u)) = (from, until)
            && f >= u
        {
            self.err(
                "publish_until",
                "min_exceeds_max",
                "公開終了日時は公開開始日時より後にしてください。",
            );
        }
        if !(1..=MAX_TOTAL_MB).contains(&def.max_total_mb) {
            self.err(
                "max_total_mb",
                "out_of_range",
                format!("添付ファイルの合計サイズの上限は1〜{MAX_TOTAL_MB}MBで指定してください。"),
            );
        }
        let mut seen = HashSet::new();
        for (i, n) in def.notify.iter().enumerate() {
            if !seen.insert(n) {
                self.err(
                    index("notify", i),
                    "duplicate",
                    "通知の種類が重複しています。",
                );
            }
        }
    }

    fn minute(&mut self, path: &str, s: Option<&str>) -> Option<jiff::Timestamp> {
        let s = s?;
        let t = parse_tokyo_minute(s);
        if t.is_none() {
            self.err(
                path,
                "invalid_format",
                "日時は「2026-04-01T09:00」の形式（日本時間）で指定してください。",
            );
        }
        t
    }

    /// A field locked to the signing certificate: the form takes signatures, the field's
    /// type can hold the item, and no item feeds two fields.
    fn certificate_lock(&mut self, f: &Field, item: CertItem, path: &str, def: &FormDefinition) {
        let key = join(path, "from_certificate");
        if def.signature == SignaturePolicy::None_ {
            self.err(
                &key,
                "not_applicable",
                "電子署名を使わない様式では、証明書の情報で入力欄を埋められません。",
            );
        }
        let fits = matches!(
            (item, &f.kind),
            (_, FieldKind::Text { .. })
                | (CertItem::Name, FieldKind::Name { .. })
                | (CertItem::Address, FieldKind::Address)
                | (CertItem::BirthDate, FieldKind::Date { .. })
                | (
                    CertItem::Gender,
                    FieldKind::Radio { .. } | FieldKind::Select { .. }
                )
        );
        if !fits {
            self.err(
                &key,
                "not_applicable",
                format!(
                    "「{}」の種類には、この証明書の情報を入れられません。",
                    f.label
                ),
            );
        }
        let twice = def
            .all_items()
            .find(|g| g.from_certificate == Some(item))
            .is_some_and(|first| !std::ptr::eq(first, f));
        if twice {
            self.err(
                &key,
                "duplicate",
                "証明書の同じ情報を2つの項目に割り当てることはできません。",
            );
        }
    }

    fn items(&mut self, def: &FormDefinition, flat: &Flat<'_>) {
        if def.items.is_empty() {
            self.err("items", "required", "項目を1つ以上追加してください。");
        } else if def.inputs().next().is_none() {
            self.err("items", "required", "入力項目を1つ以上追加してください。");
        }
        if flat.nodes.len() > MAX_ITEMS {
            self.err(
                "items",
                "too_many",
                format!("項目はセクション内も含めて{MAX_ITEMS}個以内にしてください。"),
            );
        }
        let mut seen = HashSet::new();
        for (i, node) in flat.nodes.iter().enumerate() {
            let path = flat.path(i);
            let f = node.field;
            if !is_valid_field_id(&f.id) {
                self.err(
                    join(&path, "id"),
                    "invalid_format",
                    "項目IDは英小文字で始まり、英小文字・数字・_ だけの64文字以内にしてください。",
                );
            } else if !seen.insert(f.id.as_str()) {
                self.err(
                    join(&path, "id"),
                    "duplicate",
                    format!("項目ID「{}」が重複しています。", f.id),
                );
            }
            self.item(f, &path, node.parent.is_some(), def);
            if let Some(c) = &f.show_if {
                self.condition(c, &join(&path, "show_if"), 0, flat);
            }
        }
    }

    /// The fee (手数料): lines, labels, prices, quantity fields and `when` conditions.
    fn fee(&mut self, def: &FormDefinition, flat: &Flat<'_>) {
        let Some(rule) = &def.fee else {
            return;
        };
        let base = join("fee", "lines");
        if rule.lines.is_empty() {
            self.err(&base, "required", "手数料の明細を1行以上追加してください。");
        }
        if rule.lines.len() > MAX_FEE_LINES {
            self.err(
                &base,
                "too_many",
                format!("手数料の明細は{MAX_FEE_LINES}行以内にしてください。"),
            );
        }
        for (i, line) in rule.lines.iter().enumerate() {
            let path = index(&base, i);
            let label_path = join(&path, "label");
            if line.label.trim().is_empty() {
                self.err(
                    &label_path,
                    "required",
                    "手数料の明細名を入力してください。",
                );
            } else {
                self.text(
                    &label_path,
                    &line.label,
                    MAX_FEE_LABEL_CHARS,
                    "手数料の明細名",
                    false,
                );
            }
            let price = line.unit_price;
            if price.value() != 0 && !(MIN_CHARGE..=MAX_FEE).contains(&price) {
                self.err(
                    join(&path, "unit_price"),
                    "out_of_range",
                    format!(
                        "手数料の単価は0円、または{}以上{}以下で指定してください（{}未満はカード決済できません）。",
                        MIN_CHARGE, MAX_FEE, MIN_CHARGE
                    ),
                );
            }
            if let Some(id) = &line.quantity_field {
                let qpath = join(&path, "quantity_field");
                match flat.by_id.get(id.as_str()).map(|&n| flat.nodes[n].field) {
                    None => self.err(
                        &qpath,
                        "unknown_reference",
                        format!("数量として参照している項目{}がありません。", quoted_id(id)),
                    ),
                    Some(target) => {
                        let fits = matches!(
                            target.kind,
                            FieldKind::Number { integer: true, min: Some(min), .. } if min >= 0.0
                        );
                        if !fits {
                            self.err(
                                &qpath,
                                "wrong_kind",
                                format!(
                                    "数量には、整数のみ（integer: true）で最小値が0以上の数値項目を指定してください（「{}」は指定できません）。",
                                    target.label
                                ),
                            );
                        }
                    }
                }
            }
            if let Some(c) = &line.when {
                self.condition(c, &join(&path, "when"), 0, flat);
            }
        }
    }

    fn item(&mut self, f: &Field, path: &str, nested: bool, def: &FormDefinition) {
        let label_path = join(path, "label");
        let (what, max, multiline) = match f.kind {
            FieldKind::Explanation => ("説明文", MAX_EXPLANATION_CHARS, true),
            FieldKind::Heading => ("見出し", MAX_LABEL_CHARS, false),
            _ => ("項目名", MAX_LABEL_CHARS, false),
        };
        if f.label.trim().is_empty() {
            self.err(
                &label_path,
                "required",
                format!("{what}を入力してください。"),
            );
        } else {
            self.text(&label_path, &f.label, max, what, multiline);
        }
        if let Some(h) = &f.help {
            self.text(&join(path, "help"), h, MAX_HELP_CHARS, "補足説明", true);
        }
        if f.required && !f.kind.is_input() {
            self.err(
                join(path, "required"),
                "not_applicable",
                "見出し・説明文・セクションは必須にできません。",
            );
        }
        if let Some(item) = f.from_certificate {
            self.certificate_lock(f, item, path, def);
        }
        let label = f.label.as_str();
        match &f.kind {
            FieldKind::Text {
                multiline,
                min_length,
                max_length,
            } => {
                let cap = if *multiline {
                    MAX_MULTILINE_CHARS
                } else {
                    MAX_TEXT_CHARS
                };
                if let Some(max) = max_length
                    && !(1..=cap).contains(max)
                {
                    self.err(
                        join(path, "max_length"),
                        "out_of_range",
                        format!("「{label}」の最大文字数は1〜{cap}で指定してください。"),
                    );
                }
                if let Some(min) = min_length
                    && *min > cap
                {
                    self.err(
                        join(path, "min_length"),
                        "out_of_range",
                        format!("「{label}」の最小文字数は{cap}以下で指定してください。"),
                    );
                }
                self.min_max(path, "min_length", *min_length, *max_length, label);
            }
            FieldKind::Radio { options } | FieldKind::Select { options } => {
                self.options(path, options, label);
            }
            FieldKind::Checkbox {
                options,
                min_choices,
                max_choices,
            } => {
                self.options(path, options, label);
                let n = options.len() as u32;
                if let Some(max) = max_choices
                    && (*max == 0 || *max > n)
                {
                    self.err(
                        join(path, "max_choices"),
                        "out_of_range",
                        format!("「{label}」の最大選択数は1〜選択肢の数で指定してください。"),
                    );
                }
                if let Some(min) = min_choices
                    && *min > n
                {
                    self.err(
                        join(path, "min_choices"),
                        "out_of_range",
                        format!("「{label}」の最小選択数は選択肢の数以下で指定してください。"),
                    );
                }
                self.min_max(path, "min_choices", *min_choices, *max_choices, label);
            }
            FieldKind::Date { min, max } => {
                let mut bound = |key: &str, b: &Option<String>| {
                    let b = b.as_deref()?;
                    if b == "today" {
                        return None;
                    }
                    let d = iso_date(b);
                    if d.is_none() {
                        self.err(
                            join(path, key),
                            "invalid_format",
                            "日付は「2026-04-01」の形式か \"today\" で指定してください。",
                        );
                    }
                    d
                };
                let (lo, hi) = (bound("min", min), bound("max", max));
                if let (Some(lo), Some(hi)) = (lo, hi)
                    && lo > hi
                {
                    self.err(
                        join(path, "min"),
                        "min_exceeds_max",
                        format!("「{label}」の最小値が最大値より後になっています。"),
                    );
                }
            }
            FieldKind::Attachment {
                extensions,
                max_file_mb,
                max_files,
            } => {
                if !(1..=MAX_FILE_MB).contains(max_file_mb) {
                    self.err(
                        join(path, "max_file_mb"),
                        "out_of_range",
                        format!(
                            "「{label}」の1ファイルあたりの上限は1〜{MAX_FILE_MB}MBで指定してください（{max_file_mb}MBは指定できません）。"
                        ),
                    );
                } else if *max_file_mb > def.max_total_mb {
                    self.err(
                        join(path, "max_file_mb"),
                        "out_of_range",
                        format!(
                            "「{label}」の1ファイルあたりの上限が、添付ファイルの合計サイズの上限（{}MB）を超えています。",
                            def.max_total_mb
                        ),
                    );
                }
                if !(1..=MAX_FILES).contains(max_files) {
                    self.err(
                        join(path, "max_files"),
                        "out_of_range",
                        format!("「{label}」の添付できるファイル数は1〜{MAX_FILES}件で指定してください。"),
                    );
                }
                if extensions.is_empty() {
                    self.err(
                        join(path, "extensions"),
                        "required",
                        format!("「{label}」に添付できるファイルの種類を1つ以上指定してください。"),
                    );
                }
                let mut seen = HashSet::new();
                for (j, e) in extensions.iter().enumerate() {
                    let p = index(&join(path, "extensions"), j);
                    if !allowed_extensions().contains(&e.as_str()) {
                        self.err(
                            p,
                            "not_an_option",
                            format!(
                                "使用できない拡張子です。ドットなしの小文字で、次の中から指定してください：{}",
                                allowed_extensions().join(", ")
                            ),
                        );
                    } else if !seen.insert(e.as_str()) {
                        self.err(p, "duplicate", "拡張子が重複しています。");
                    }
                }
            }
            FieldKind::Number { min, max, .. } => {
                for (key, b) in [("min", min), ("max", max)] {
                    if b.is_some_and(|x| x.abs() > MAX_NUMBER_ABS) {
                        self.err(
                            join(path, key),
                            "out_of_range",
                            "数値の範囲は ±1,000兆 以内で指定してください。",
                        );
                    }
                }
                if let (Some(lo), Some(hi)) = (min, max)
                    && lo > hi
                {
                    self.err(
                        join(path, "min"),
                        "min_exceeds_max",
                        format!("「{label}」の最小値が最大値を超えています。"),
                    );
                }
            }
            FieldKind::Section { items } => {
                if nested {
                    self.err(
                        join(path, "type"),
                        "nested_section",
                        "セクションの中にセクションは置けません。",
                    );
                }
                if items.is_empty() {
                    self.err(
                        join(path, "items"),
                        "required",
                        format!("セクション「{label}」に項目を1つ以上追加してください。"),
                    );
                }
            }
            FieldKind::Phone
            | FieldKind::Email
            | FieldKind::MyNumber
            | FieldKind::PostalCode
            | FieldKind::Name { .. }
            | FieldKind::Address
            | FieldKind::Heading
            | FieldKind::Explanation => {}
        }
    }

    fn min_max(
        &mut self,
        path: &str,
        min_key: &str,
        min: Option<u32>,
        max: Option<u32>,
        label: &str,
    ) {
        if let (Some(lo), Some(hi)) = (min, max)
            && lo > hi
        {
            self.err(
                join(path, min_key),
                "min_exceeds_max",
                format!("「{label}」の最小値が最大値を超えています。"),
            );
        }
    }

    fn options(&mut self, path: &str, options: &[super::definition::Choice], label: &str) {
        let base = join(path, "options");
        if options.is_empty() {
            self.err(
                &base,
                "required",
                format!("「{label}」の選択肢を1つ以上追加してください。"),
            );
            return;
        }
        if options.len() > MAX_OPTIONS {
            self.err(
                &base,
                "too_many",
                format!("「{label}」の選択肢は{MAX_OPTIONS}個以内にしてください。"),
            );
        }
        let mut seen = HashSet::new();
        for (j, o) in options.iter().enumerate() {
            let p = index(&base, j);
            let vp = join(&p, "value");
            if o.value.trim().is_empty() {
                self.err(&vp, "required", "選択肢の値を入力してください。");
            } else if o.value.trim() != o.value || o.value.chars().any(is_forbidden_char) {
                self.err(
                    &vp,
                    "invalid_format",
                    "選択肢の値の前後に空白や制御文字は使えません。",
                );
            } else if chars(&o.value) > MAX_OPTION_VALUE_CHARS {
                self.err(
                    &vp,
                    "too_long",
                    format!("選択肢の値は{MAX_OPTION_VALUE_CHARS}文字以内にしてください。"),
                );
            } else if !seen.insert(o.value.as_str()) {
                self.err(&vp, "duplicate", "選択肢の値が重複しています。");
            }
            let lp = join(&p, "label");
            if o.label.trim().is_empty() {
                self.err(lp, "required", "選択肢の表示名を入力してください。");
            } else {
                self.text(&lp, &o.label, MAX_LABEL_CHARS, "選択肢の表示名", false);
            }
        }
    }

    fn condition(&mut self, c: &Condition, path: &str, depth: usize, flat: &Flat<'_>) {
        if depth > MAX_CONDITION_DEPTH {
            self.err(
                path,
                "too_deep",
                format!("表示条件の入れ子は{MAX_CONDITION_DEPTH}段までにしてください。"),
            );
            return;
        }
        match c {
            Condition::Not(inner) => self.condition(inner, &join(path, "not"), depth + 1, flat),
            Condition::All(cs) | Condition::Any(cs) => {
                let key = if matches!(c, Condition::All(_)) {
                    "all"
                } else {
                    "any"
                };
                let p = join(path, key);
                if cs.is_empty() {
                    self.err(&p, "required", "条件を1つ以上指定してください。");
                }
                if cs.len() > MAX_CONDITION_TERMS {
                    self.err(
                        &p,
                        "too_many",
                        format!("条件は{MAX_CONDITION_TERMS}個以内にしてください。"),
                    );
                }
                for (i, c) in cs.iter().enumerate() {
                    self.condition(c, &index(&p, i), depth + 1, flat);
                }
            }
            Condition::Field { field, test } => self.field_test(field, test, path, flat),
        }
    }

    fn field_test(&mut self, id: &str, test: &Predicate, path: &str, flat: &Flat<'_>) {
        let Some(&target) = flat.by_id.get(id) else {
            self.err(
                join(path, "field"),
                "unknown_reference",
                format!("表示条件で参照している項目{}がありません。", quoted_id(id)),
            );
            return;
        };
        let target = flat.nodes[target].field;
        if !target.kind.is_input() {
            self.err(
                join(path, "field"),
                "not_an_input",
                "見出し・説明文・セクションは表示条件に使えません。",
            );
            return;
        }
        let op_path = join(path, test.op_name());
        let kind = &target.kind;
        let wrong_kind = |s: &mut Self| {
            s.err(
                &op_path,
                "wrong_kind",
                format!(
                    "「{}」（{}）には条件「{}」は使えません。",
                    target.label,
                    kind.type_name(),
                    test.op_name()
                ),
            );
        };
        match test {
            Predicate::Answered(_) => {}
            Predicate::Equals(v) => match kind {
                FieldKind::Text { .. }
                | FieldKind::Radio { .. }
                | FieldKind::Select { .. }
                | FieldKind::Number { .. }
                | FieldKind::Date { .. } => self.value(v, &op_path, target),
                _ => wrong_kind(self),
            },
            Predicate::OneOf(vs) => match kind {
                FieldKind::Text { .. }
                | FieldKind::Radio { .. }
                | FieldKind::Select { .. }
                | FieldKind::Number { .. }
                | FieldKind::Date { .. } => {
                    if vs.is_empty() {
                        self.err(&op_path, "required", "値を1つ以上指定してください。");
                    }
                    if vs.len() > MAX_CONDITION_TERMS {
                        self.err(
                            &op_path,
                            "too_many",
                            format!("値は{MAX_CONDITION_TERMS}個以内にしてください。"),
                        );
                    }
                    for (i, v) in vs.iter().enumerate() {
                        self.value(v, &index(&op_path, i), target);
                    }
                }
                _ => wrong_kind(self),
            },
            Predicate::Contains(v) => match kind {
                FieldKind::Checkbox { .. } => self.value(v, &op_path, target),
                _ => wrong_kind(self),
            },
            Predicate::Gt(v) | Predicate::Gte(v) | Predicate::Lt(v) | Predicate::Lte(v) => {
                match kind {
                    FieldKind::Number { .. } | FieldKind::Date { .. } => {
                        self.value(v, &op_path, target)
                    }
                    _ => wrong_kind(self),
                }
            }
        }
    }

    /// A comparison value must suit the target field's type.
    fn value(&mut self, v: &Value, path: &str, target: &Field) {
        match &target.kind {
            FieldKind::Number { .. } => {
                if !v.is_number() {
                    self.err(path, "wrong_type", "数値で指定してください。");
                }
            }
            FieldKind::Date { .. } => {
                if v.as_str().and_then(iso_date).is_none() {
                    self.err(
                        path,
                        "invalid_format",
                        "日付は「2026-04-01」の形式で指定してください。",
                    );
                }
            }
            FieldKind::Radio { options }
            | FieldKind::Select { options }
            | FieldKind::Checkbox { options, .. } => match v.as_str() {
                Some(s) if options.iter().any(|o| o.value == s) => {}
                Some(_) => self.err(
                    path,
                    "not_an_option",
                    format!("「{}」の選択肢にない値です。", target.label),
                ),
                None => self.err(path, "wrong_type", "文字列で指定してください。"),
            },
            _ => {
                if !v.is_string() {
                    self.err(path, "wrong_type", "文字列で指定してください。");
                }
            }
        }
    }

    fn cycles(&mut self, flat: &Flat<'_>) {
        let adj = flat.deps();
        for comp in sccs(&adj) {
            if !is_cycle(&comp, &adj) {
                continue;
            }
            // Every cycle passes through a condition (section membership alone points
            // one way); report it at the first item with a condition.
            let start = comp
                .iter()
                .copied()
                .find(|&i| flat.nodes[i].field.show_if.is_some())
                .unwrap_or(comp[0]);
            let ids: Vec<&str> = cycle_through(start, &comp, &adj)
                .into_iter()
                .map(|i| flat.nodes[i].field.id.as_str())
                .collect();
            self.err(
                join(&flat.path(start), "show_if"),
                "condition_cycle",
                format!("表示条件が循環しています（{}）。", ids.join(" → ")),
            );
        }
    }
}

/// `https://host[/…]`, no white space or control characters, at most 2000 characters.
fn valid_https_url(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    chars(url) <= MAX_URL_CHARS
        && !host.is_empty()
        && !host.contains('@')
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod slug_tests {
    use super::is_valid_slug;

    #[test]
    fn slugs() {
        assert!(is_valid_slug("juminhyo-request"));
        for bad in ["ab", "-abc", "abc-", "Abc", "a/b/c", "a_b_c", ""] {
            assert!(!is_valid_slug(bad), "{bad:?}");
        }
    }
}

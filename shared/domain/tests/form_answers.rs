//! Answers: the visibility engine, submission checks per type, drafts.

use madoguchi_domain::Date;
use madoguchi_domain::form::{
    Answers, Checked, FormDefinition, check_answers, check_draft, parse_definition, visible_items,
};
use serde_json::{Value, json};

const V7: &str = "01890a5d-ac96-774b-bcce-b302099a8057";
const V7B: &str = "01890a5d-ac96-774b-bcce-b302099a8058";

fn def(items: Value) -> FormDefinition {
    parse_definition(&json!({ "title": "t", "items": items })).unwrap_or_else(|e| panic!("{e:?}"))
}

fn answers(v: Value) -> Answers {
    match v {
        Value::Object(m) => m,
        _ => panic!("answers must be an object"),
    }
}

fn today() -> Date {
    Date::new(2026, 5, 1).unwrap()
}

fn check(d: &FormDefinition, a: Value) -> Checked {
    check_answers(d, &answers(a), today())
}

fn visible(d: &FormDefinition, a: Value) -> Vec<String> {
    visible_items(d, &answers(a)).into_iter().collect()
}

/// (field, code) of the errors.
fn codes(c: &Checked) -> Vec<(String, String)> {
    c.errors
        .iter()
        .map(|e| (e.field.clone(), e.code.clone()))
        .collect()
}

/// The normalised value of the single field `f` of type `field`, or its error codes.
fn one(field: Value, answer: Value) -> Result<Value, Vec<String>> {
    let mut field = field;
    field["id"] = json!("f");
    field["label"] = json!("項目");
    let d = def(json!([field]));
    let c = check(&d, json!({ "f": answer }));
    if c.errors.is_empty() {
        Ok(c.values.get("f").cloned().unwrap_or(Value::Null))
    } else {
        Err(c.errors.iter().map(|e| e.code.clone()).collect())
    }
}

fn ok(field: Value, answer: Value) -> Value {
    one(field.clone(), answer.clone()).unwrap_or_else(|e| panic!("{field} {answer}: {e:?}"))
}

fn err(field: Value, answer: Value) -> String {
    match one(field.clone(), answer.clone()) {
        Ok(v) => panic!("{field} {answer} accepted as {v}"),
        Err(codes) => codes.join(","),
    }
}

// ---- visibility ----------------------------------------------------------------------

fn radio(id: &str, values: &[&str]) -> Value {
    let options: Vec<Value> = values
        .iter()
        .map(|v| json!({ "value": v, "label": v }))
        .collect();
    json!({ "id": id, "type": "radio", "label": id, "options": options })
}

fn text_if(id: &str, cond: Value) -> Value {
    json!({ "id": id, "type": "text", "label": id, "show_if": cond })
}

#[test]
fn chains_propagate_hiddenness() {
    // b shown when a = yes; c shown when b answered; d shown when c NOT answered.
    let d = def(json!([
        radio("a", &["yes", "no"]),
        text_if("b", json!({ "field": "a", "equals": "yes" })),
        text_if("c", json!({ "field": "b", "answered": true })),
        text_if("d", json!({ "field": "c", "answered": false }))
    ]));
    assert_eq!(
        visible(&d, json!({ "a": "yes", "b": "x", "c": "y" })),
        ["a", "b", "c"]
    );
    // a = no hides b; b's stale answer then counts as absent, hiding c, which shows d.
    assert_eq!(
        visible(&d, json!({ "a": "no", "b": "x", "c": "y" })),
        ["a", "d"]
    );
    assert_eq!(visible(&d, json!({})), ["a", "d"]);
    // Order of items does not matter: the same chain written backwards.
    let rev = def(json!([
        text_if("d", json!({ "field": "c", "answered": false })),
        text_if("c", json!({ "field": "b", "answered": true })),
        text_if("b", json!({ "field": "a", "equals": "yes" })),
        radio("a", &["yes", "no"])
    ]));
    assert_eq!(
        visible(&rev, json!({ "a": "no", "b": "x", "c": "y" })),
        ["a", "d"]
    );
}

#[test]
fn and_or_not() {
    let d = def(json!([
        radio("a", &["1", "2", "3"]),
        { "id": "n", "type": "number", "label": "n" },
        text_if("all", json!({ "all": [{ "field": "a", "equals": "1" }, { "field": "n", "gt": 10 }] })),
        text_if("any", json!({ "any": [{ "field": "a", "equals": "1" }, { "field": "n", "gt": 10 }] })),
        text_if("not", json!({ "not": { "field": "a", "one_of": ["1", "2"] } })),
        text_if("range", json!({ "all": [{ "field": "n", "gte": 5 }, { "field": "n", "lte": 6 }] })),
        text_if("lt", json!({ "field": "n", "lt": 0 }))
    ]));
    let v = |a: Value| visible(&d, a);
    assert_eq!(v(json!({ "a": "1", "n": 11 })), ["a", "all", "any", "n"]);
    assert_eq!(v(json!({ "a": "1", "n": 10 })), ["a", "any", "n"]);
    assert_eq!(
        v(json!({ "a": "3", "n": "１２" })),
        ["a", "any", "n", "not"]
    );
    // Unanswered: `not` of a false test is true.
    assert_eq!(v(json!({})), ["a", "n", "not"]);
    assert_eq!(v(json!({ "n": 5 })), ["a", "n", "not", "range"]);
    assert_eq!(v(json!({ "n": "6.0" })), ["a", "n", "not", "range"]);
    assert_eq!(v(json!({ "n": -1 })), ["a", "lt", "n", "not"]);
    // An answer that does not read as its type counts as unanswered.
    assert_eq!(v(json!({ "a": "9", "n": "many" })), ["a", "n", "not"]);
}

#[test]
fn dates_and_checkboxes_in_conditions() {
    let d = def(json!([
        { "id": "birth", "type": "date", "label": "b" },
        { "id": "c", "type": "checkbox", "label": "c", "options": [{ "value": "x", "label": "X" }, { "value": "y", "label": "Y" }] },
        text_if("minor", json!({ "field": "birth", "gt": "2008-05-01" })),
        text_if("exact", json!({ "field": "birth", "equals": "2019-05-01" })),
        text_if("has_y", json!({ "field": "c", "contains": "y" }))
    ]));
    assert_eq!(
        visible(&d, json!({ "birth": "令和元年5月1日" })),
        ["birth", "c", "exact", "minor"]
    );
    assert_eq!(visible(&d, json!({ "birth": "H20.5.1" })), ["birth", "c"]);
    assert_eq!(
        visible(&d, json!({ "birth": "H20.5.2", "c": ["y"] })),
        ["birth", "c", "has_y", "minor"]
    );
    assert_eq!(visible(&d, json!({ "c": ["x"] })), ["birth", "c"]);
}

#[test]
fn sections_show_and_hide_as_a_whole() {
    let d = def(json!([
        radio("bank", &["yes", "no"]),
        { "id": "s", "type": "section", "label": "s", "show_if": { "field": "bank", "equals": "yes" }, "items": [
            { "id": "note", "type": "explanation", "label": "説明" },
            { "id": "acct", "type": "text", "label": "acct", "required": true },
            text_if("branch", json!({ "field": "acct", "answered": true }))
        ]},
        text_if("after", json!({ "field": "acct", "answered": true }))
    ]));
    assert_eq!(
        visible(&d, json!({ "bank": "yes" })),
        ["acct", "bank", "note", "s"]
    );
    assert_eq!(
        visible(&d, json!({ "bank": "yes", "acct": "1" })),
        ["acct", "after", "bank", "branch", "note", "s"]
    );
    // Hidden section: its items are hidden and their answers count as absent outside.
    assert_eq!(visible(&d, json!({ "bank": "no", "acct": "1" })), ["bank"]);
    // The required field inside the hidden section is not required, and its answer is dropped.
    let c = check(&d, json!({ "bank": "no", "acct": "1" }));
    assert_eq!(c.errors, vec![]);
    assert_eq!(c.values.keys().collect::<Vec<_>>(), ["bank"]);
    let c = check(&d, json!({ "bank": "yes" }));
    assert_eq!(codes(&c), [("acct".to_string(), "required".to_string())]);
}

#[test]
fn cycles_in_unvalidated_definitions_terminate_hidden() {
    let d = def(json!([
        text_if("a", json!({ "field": "b", "answered": false })),
        text_if("b", json!({ "field": "a", "answered": false })),
        text_if("c", json!({ "field": "a", "answered": false })),
        text_if("self", json!({ "not": { "field": "self", "answered": true } })),
        { "id": "s", "type": "section", "label": "s", "show_if": { "field": "in", "answered": false }, "items": [
            { "id": "in", "type": "text", "label": "in" }
        ]},
        { "id": "free", "type": "text", "label": "free" }
    ]));
    // a and b form a cycle: hidden. c reads a, which is hidden, so "not answered" holds.
    assert_eq!(
        visible(&d, json!({ "a": "x", "b": "y", "in": "z" })),
        ["c", "free"]
    );
    let c = check(&d, json!({ "a": "x", "free": "ok" }));
    assert_eq!(c.errors, vec![]);
    assert_eq!(c.values.keys().collect::<Vec<_>>(), ["free"]);
}

#[test]
fn unknown_and_broken_references_count_as_unanswered() {
    let d = def(json!([
        { "id": "h", "type": "heading", "label": "h" },
        text_if("x", json!({ "field": "ghost", "answered": false })),
        text_if("y", json!({ "field": "h", "answered": true }))
    ]));
    assert_eq!(visible(&d, json!({})), ["h", "x"]);
}

#[test]
fn long_chain_is_linear_and_iterative() {
    // 3000 fields, each shown when the previous one is answered.
    let mut items = vec![json!({ "id": "f0", "type": "text", "label": "f0" })];
    for i in 1..3000 {
        items.push(text_if(
            &format!("f{i}"),
            json!({ "field": format!("f{}", i - 1), "answered": true }),
        ));
    }
    let d = def(Value::Array(items));
    let mut a = serde_json::Map::new();
    for i in 0..1500 {
        a.insert(format!("f{i}"), json!("x"));
    }
    // f0..f1499 answered → f0..f1500 visible.
    assert_eq!(visible_items(&d, &a).len(), 1501);
}

// ---- submission checks per type -------------------------------------------------------

#[test]
fn unknown_keys_and_static_items() {
    let d = def(json!([
        { "id": "h", "type": "heading", "label": "h" },
        { "id": "a", "type": "text", "label": "a" }
    ]));
    let c = check(
        &d,
        json!({ "a": "x", "zz": "1", "h": "2", "Not An Id!": 3 }),
    );
    let got = codes(&c);
    assert!(
        got.contains(&("zz".into(), "unknown_field".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("h".into(), "unknown_field".into())),
        "{got:?}"
    );
    // A key that is not even an id is not echoed.
    assert!(
        got.contains(&("answers".into(), "unknown_field".into())),
        "{got:?}"
    );
    assert_eq!(got.len(), 3);
    // Many unknown keys are summed up.
    let mut many = serde_json::Map::new();
    for i in 0..100 {
        many.insert(format!("k{i}"), json!(1));
    }
    let c = check_answers(&d, &many, today());
    assert_eq!(c.errors.len(), 21);
}

#[test]
fn required_messages_name_the_label() {
    let d = def(json!([
        { "id": "a", "type": "text", "label": "氏名の漢字", "required": true },
        { "id": "b", "type": "radio", "label": "性別", "required": true, "options": [{ "value": "x", "label": "X" }] },
        { "id": "c", "type": "attachment", "label": "写真", "required": true }
    ]));
    let c = check(&d, json!({ "a": "  ", "b": null, "c": [] }));
    assert_eq!(c.errors.len(), 3);
    assert!(c.errors.iter().all(|e| e.code == "required"));
    assert_eq!(c.errors[0].message, "「氏名の漢字」を入力してください。");
    assert_eq!(c.errors[1].message, "「性別」を選択してください。");
    assert_eq!(
        c.errors[2].message,
        "「写真」のファイルを添付してください。"
    );
}

#[test]
fn text() {
    let t = json!({ "type": "text" });
    assert_eq!(
        ok(t.clone(), json!("  こんにちは\u{3000}")),
        json!("こんにちは")
    );
    assert_eq!(ok(t.clone(), json!("\u{304B}\u{3099}")), json!("\u{304C}")); // NFC
    assert_eq!(err(t.clone(), json!("a\nb")), "invalid_char");
    assert_eq!(err(t.clone(), json!("a\u{7}b")), "invalid_char");
    assert_eq!(err(t.clone(), json!(5)), "wrong_type");
    assert_eq!(err(t.clone(), json!("x".repeat(1001))), "too_long");
    let ml = json!({ "type": "text", "multiline": true, "min_length": 3, "max_length": 5 });
    assert_eq!(ok(ml.clone(), json!("a\r\nb")), json!("a\nb"));
    assert_eq!(err(ml.clone(), json!("ab")), "too_short");
    assert_eq!(err(ml.clone(), json!("abcdef")), "too_long");
    assert_eq!(ok(ml.clone(), json!("あいうえお")), json!("あいうえお")); // characters, not bytes
    assert_eq!(err(ml, json!("a\tb")), "invalid_char");
}

#[test]
fn choices() {
    let r = json!({ "type": "radio", "options": [{ "value": "a", "label": "甲" }, { "value": "b", "label": "乙" }] });
    assert_eq!(ok(r.clone(), json!(" a ")), json!("a"));
    assert_eq!(err(r.clone(), json!("c")), "not_an_option");
    assert_eq!(err(r.clone(), json!(["a"])), "wrong_type");
    let s = json!({ "type": "select", "options": [{ "value": "a", "label": "甲" }] });
    assert_eq!(err(s, json!("A")), "not_an_option");
    let c = json!({ "type": "checkbox", "min_choices": 2, "max_choices": 2, "options": [
        { "value": "a", "label": "甲" }, { "value": "b", "label": "乙" }, { "value": "c", "label": "丙" }] });
    // Normalised to option order.
    assert_eq!(ok(c.clone(), json!(["c", "a"])), json!(["a", "c"]));
    assert_eq!(err(c.clone(), json!(["a"])), "too_few");
    assert_eq!(err(c.clone(), json!(["a", "b", "c"])), "too_many");
    assert_eq!(err(c.clone(), json!(["a", "a"])), "duplicate");
    assert_eq!(err(c.clone(), json!(["a", "z"])), "not_an_option");
    assert_eq!(err(c.clone(), json!(["a", 1])), "wrong_type");
    assert_eq!(err(c.clone(), json!("a")), "wrong_type");
    assert_eq!(err(c, json!(["a", "b", "c", "d"])), "too_many");
    // Summary shows labels.
    let d = def(
        json!([{ "id": "f", "type": "checkbox", "label": "l", "options": [
        { "value": "a", "label": "甲" }, { "value": "b", "label": "乙" }] }]),
    );
    assert_eq!(
        check(&d, json!({ "f": ["b", "a"] })).summary[0].display,
        "甲、乙"
    );
}

#[test]
fn phone() {
    let p = json!({ "type": "phone" });
    for (input, want) in [
        ("0725-33-1131", "0725331131"),
        ("０７２５－３３－１１３１", "0725331131"),
        ("0725ー33ー1131", "0725331131"),
        ("(0725) 33 1131", "0725331131"),
        ("090-1234-5678", "09012345678"),
        ("+81 90 1234 5678", "09012345678"),
        ("+81 (0)3-1234-5678", "0312345678"),
        ("+81-725-33-1131", "0725331131"),
        ("050-1234-5678", "05012345678"),
        ("0120-123-456", "0120123456"),
        ("0800-123-4567", "08001234567"),
        ("0570-000-123", "0570000123"),
    ] {
        assert_eq!(ok(p.clone(), json!(input)), json!(want), "{input}");
    }
    for bad in [
        "0725-33-113",
        "090-1234-567",
        "0120-123-4567",
        "020-1234-5678",
        "1234567890",
        "0012345678",
        "03-1234-5678 内線12",
        "+1 212 555 0100",
        "0800-123-456",
    ] {
        assert_eq!(err(p.clone(), json!(bad)), "invalid_format", "{bad}");
    }
    let d = def(json!([{ "id": "f", "type": "phone", "label": "l" }]));
    let row = |s: &str| check(&d, json!({ "f": s })).summary[0].display.clone();
    assert_eq!(row("09012345678"), "090-1234-5678");
    assert_eq!(row("0312345678"), "03-1234-5678");
    assert_eq!(row("0120123456"), "0120-123-456");
    assert_eq!(row("08001234567"), "0800-123-4567");
    assert_eq!(row("0725331131"), "0725331131");
}

#[test]
fn email() {
    let e = json!({ "type": "email" });
    assert_eq!(
        ok(e.clone(), json!(" Hanako@Example.JP ")),
        json!("Hanako@example.jp")
    );
    assert_eq!(
        ok(e.clone(), json!("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ")),
        json!("taro@example.jp")
    );
    assert_eq!(
        ok(e.clone(), json!("taro..yamada.@docomo.ne.jp")),
        json!("taro..yamada.@docomo.ne.jp")
    );
    for bad in [
        "taro",
        "taro@",
        "@example.jp",
        "taro@example",
        "a@b@c.jp",
        "ta ro@example.jp",
        "taro@example..jp",
        "taro@.jp",
        "<taro@example.jp>",
    ] {
        assert_eq!(err(e.clone(), json!(bad)), "invalid_format", "{bad}");
    }
    let long = format!("{}@example.jp", "a".repeat(64)) + &".jp".repeat(70);
    assert!(!err(e.clone(), json!(long)).is_empty());
    assert_eq!(
        err(e, json!(format!("{}@example.jp", "a".repeat(65)))),
        "invalid_format"
    );
}

#[test]
fn date() {
    let d = json!({ "type": "date", "min": "2000-01-01", "max": "today" });
    for input in [
        "2020-02-29",
        "2020/2/29",
        "令和2年2月29日",
        "R2.2.29",
        "Ｒ２．２．２９",
    ] {
        assert_eq!(ok(d.clone(), json!(input)), json!("2020-02-29"), "{input}");
    }
    assert_eq!(err(d.clone(), json!("2021-02-29")), "invalid_date");
    assert_eq!(err(d.clone(), json!("平成31年5月1日")), "invalid_date");
    assert_eq!(err(d.clone(), json!("いつか")), "invalid_format");
    assert_eq!(err(d.clone(), json!("1999-12-31")), "out_of_range");
    assert_eq!(ok(d.clone(), json!("2026-05-01")), json!("2026-05-01")); // today is allowed
    assert_eq!(err(d.clone(), json!("2026-05-02")), "out_of_range");
    assert_eq!(err(d.clone(), json!(20200229)), "wrong_type");
    assert_eq!(
        err(json!({ "type": "date" }), json!("1872-12-31")),
        "out_of_range"
    );
    let def1 =
        def(json!([{ "id": "f", "type": "date", "label": "生年月日", "min": "2000-01-01" }]));
    let c = check(&def1, json!({ "f": "1999-01-01" }));
    assert!(
        c.errors[0].message.contains("平成12年1月1日"),
        "{}",
        c.errors[0].message
    );
    let c = check(&def1, json!({ "f": "2019-05-01" }));
    assert_eq!(c.summary[0].display, "令和元年5月1日（2019年5月1日）");
}

#[test]
fn attachment() {
    let a = json!({ "type": "attachment", "max_files": 2 });
    assert_eq!(
        ok(a.clone(), json!([V7.to_uppercase(), V7B])),
        json!([V7, V7B])
    );
    assert_eq!(err(a.clone(), json!([V7, V7B, V7])), "too_many");
    assert_eq!(err(a.clone(), json!([V7, V7])), "duplicate");
    assert_eq!(err(a.clone(), json!(["not-a-uuid"])), "invalid_format");
    // UUID v4 is not an attachment id.
    assert_eq!(
        err(a.clone(), json!(["67e55044-10b1-426f-9247-bb680e5fe0c8"])),
        "invalid_format"
    );
    assert_eq!(err(a.clone(), json!(V7)), "wrong_type");
    assert_eq!(err(a, json!([7])), "wrong_type");
}

#[test]
fn my_number_is_checked_and_never_leaks() {
    let m = json!({ "type": "my_number" });
    assert_eq!(
        ok(m.clone(), json!("１２３４ ５６７８ ９０１８")),
        json!("123456789018")
    );
    assert_eq!(
        ok(m.clone(), json!("1234-5678-9018")),
        json!("123456789018")
    );
    assert_eq!(err(m.clone(), json!("123456789017")), "check_digit");
    assert_eq!(err(m.clone(), json!("12345678901")), "invalid_format");
    assert_eq!(err(m.clone(), json!(123456789018u64)), "wrong_type");
    let d = def(
        json!([{ "id": "mn", "type": "my_number", "label": "個人番号" }, { "id": "t", "type": "text", "label": "t", "required": true }]),
    );
    let c = check(&d, json!({ "mn": "123456789018" }));
    assert_eq!(c.summary[0].display, "********9018");
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("123456789018") && !debug.contains("12345678"),
        "{debug}"
    );
    let bad = check(&d, json!({ "mn": "123456789017" }));
    let shown = serde_json::to_string(&bad.errors).unwrap() + &format!("{bad:?}");
    assert!(
        !shown.contains("123456789017") && !shown.contains("5678"),
        "{shown}"
    );
}

#[test]
fn number() {
    let n = json!({ "type": "number", "min": 1, "max": 10, "integer": true });
    assert_eq!(ok(n.clone(), json!(3)), json!(3));
    assert_eq!(ok(n.clone(), json!("３")), json!(3));
    assert_eq!(ok(n.clone(), json!(" 10 ")), json!(10));
    assert_eq!(ok(n.clone(), json!(4.0)), json!(4));
    assert_eq!(err(n.clone(), json!(2.5)), "not_integer");
    assert_eq!(err(n.clone(), json!(0)), "out_of_range");
    assert_eq!(err(n.clone(), json!("11")), "out_of_range");
    assert_eq!(err(n.clone(), json!("1e3")), "invalid_format");
    assert_eq!(err(n.clone(), json!("NaN")), "invalid_format");
    assert_eq!(err(n.clone(), json!("--1")), "invalid_format");
    assert_eq!(err(n.clone(), json!(true)), "wrong_type");
    let f = json!({ "type": "number" });
    assert_eq!(ok(f.clone(), json!("1,200")), json!(1200));
    assert_eq!(ok(f.clone(), json!("-3.5")), json!(-3.5));
    assert_eq!(err(f.clone(), json!(1e16)), "out_of_range");
    assert_eq!(err(f, json!("9".repeat(400))), "invalid_format");
    let d = def(json!([{ "id": "f", "type": "number", "label": "人数", "min": 1, "max": 10 }]));
    let c = check(&d, json!({ "f": 0 }));
    assert_eq!(
        c.errors[0].message,
        "「人数」は1以上10以下で入力してください。"
    );
}

#[test]
fn postal_code() {
    let p = json!({ "type": "postal_code" });
    for input in [
        "595-0000",
        "5950000",
        "〒595-0000",
        "〒 ５９５－００００",
        "５９５ー００００",
    ] {
        assert_eq!(ok(p.clone(), json!(input)), json!("5950000"), "{input}");
    }
    for bad in ["595-000", "59500000", "59-50000", "abc-defg", "595--0000"] {
        assert_eq!(err(p.clone(), json!(bad)), "invalid_format", "{bad}");
    }
    let d = def(json!([{ "id": "f", "type": "postal_code", "label": "l" }]));
    assert_eq!(
        check(&d, json!({ "f": "5950000" })).summary[0].display,
        "〒595-0000"
    );
}

#[test]
fn name() {
    let k = json!({ "type": "name", "kana": true });
    assert_eq!(
        ok(
            k.clone(),
            json!({ "family": " 山田 ", "given": "太郎", "family_kana": "やまだ", "given_kana": "ﾀﾛｳ" })
        ),
        json!({ "family": "山田", "given": "太郎", "family_kana": "ヤマダ", "given_kana": "タロウ" })
    );
    let d = def(
        json!([{ "id": "applicant", "type": "name", "label": "氏名", "required": true, "kana": true }]),
    );
    let c = check(
        &d,
        json!({ "applicant": { "family": "山田", "given": "太郎", "family_kana": "Yamada" } }),
    );
    assert_eq!(
        codes(&c),
        [(
            "applicant.family_kana".to_string(),
            "not_katakana".to_string()
        ),]
    );
    let c = check(
        &d,
        json!({ "applicant": { "family": "山田", "given": "", "family_kana": "ヤマダ" } }),
    );
    assert_eq!(
        codes(&c),
        [
            ("applicant.given".to_string(), "required".to_string()),
            ("applicant.given_kana".to_string(), "required".to_string()),
        ]
    );
    assert!(c.errors[0].message.contains("「氏名」の名"));
    let c = check(&d, json!({ "applicant": { "family": "", "given": "" } }));
    assert_eq!(
        codes(&c),
        [("applicant".to_string(), "required".to_string())]
    );
    let c = check(
        &d,
        json!({ "applicant": { "family": "山田", "middle": "x", "given": 3 } }),
    );
    assert_eq!(
        codes(&c),
        [
            ("applicant.given".to_string(), "wrong_type".to_string()),
            ("applicant.middle".to_string(), "unknown_field".to_string()),
        ]
    );
    assert_eq!(err(k.clone(), json!("山田太郎")), "wrong_type");
    // Without kana: blank kana parts are ignored, filled ones refused.
    let n = json!({ "type": "name" });
    assert_eq!(
        ok(
            n.clone(),
            json!({ "family": "山田", "given": "太郎", "family_kana": "" })
        ),
        json!({ "family": "山田", "given": "太郎" })
    );
    assert_eq!(
        err(
            n,
            json!({ "family": "山田", "given": "太郎", "family_kana": "ヤマダ" })
        ),
        "unknown_field"
    );
    assert_eq!(
        err(
            k.clone(),
            json!({ "family": "山\n田", "given": "太郎", "family_kana": "ヤマダ", "given_kana": "タロウ" })
        ),
        "invalid_char"
    );
    assert_eq!(
        err(
            k,
            json!({ "family": "山".repeat(101), "given": "太郎", "family_kana": "ヤマダ", "given_kana": "タロウ" })
        ),
        "too_long"
    );
}

#[test]
fn address() {
    let a = json!({ "type": "address" });
    assert_eq!(
        ok(
            a.clone(),
            json!({ "postal_code": "595-0013", "address": " 大阪府泉大津市宮町2-25 ", "building": "" })
        ),
        json!({ "postal_code": "5950013", "address": "大阪府泉大津市宮町2-25" })
    );
    let d = def(json!([{ "id": "addr", "type": "address", "label": "住所", "required": true }]));
    let c = check(&d, json!({ "addr": { "postal_code": "595-0013" } }));
    assert_eq!(
        codes(&c),
        [("addr.address".to_string(), "required".to_string())]
    );
    let c = check(
        &d,
        json!({ "addr": { "postal_code": "59", "address": "x" } }),
    );
    assert_eq!(
        codes(&c),
        [("addr.postal_code".to_string(), "invalid_format".to_string())]
    );
    let c = check(&d, json!({ "addr": {} }));
    assert_eq!(codes(&c), [("addr".to_string(), "required".to_string())]);
    let c = check(&d, json!({ "addr": { "address": "あ".repeat(201) } }));
    assert_eq!(
        codes(&c),
        [("addr.address".to_string(), "too_long".to_string())]
    );
    let c = check(
        &d,
        json!({ "addr": { "address": "x", "building": "あ".repeat(101) } }),
    );
    assert_eq!(
        codes(&c),
        [("addr.building".to_string(), "too_long".to_string())]
    );
    let c = check(
        &d,
        json!({ "addr": { "address": "大阪府", "building": "ハイツ101", "postal_code": "5950013" } }),
    );
    assert_eq!(c.summary[0].display, "〒595-0013 大阪府 ハイツ101");
}

#[test]
fn summary_is_in_form_order_and_values_only_visible() {
    let d = def(json!([
        { "id": "z", "type": "text", "label": "Z" },
        { "id": "a", "type": "text", "label": "A" },
        { "id": "s", "type": "section", "label": "S", "items": [{ "id": "m", "type": "text", "label": "M" }] }
    ]));
    let c = check(&d, json!({ "a": "1", "z": "2", "m": "3" }));
    let fields: Vec<&str> = c.summary.iter().map(|r| r.field.as_str()).collect();
    assert_eq!(fields, ["z", "a", "m"]);
    assert_eq!(c.summary[1].label, "A");
    assert!(c.is_ok());
}

// ---- drafts --------------------------------------------------------------------------

#[test]
fn drafts_check_shape_not_content() {
    let d = def(json!([
        { "id": "t", "type": "text", "label": "t", "required": true, "max_length": 5 },
        { "id": "p", "type": "phone", "label": "p" },
        { "id": "c", "type": "checkbox", "label": "c", "options": [{ "value": "a", "label": "A" }] },
        { "id": "n", "type": "name", "label": "n", "kana": true },
        { "id": "num", "type": "number", "label": "num" },
        { "id": "att", "type": "attachment", "label": "att", "max_files": 2 },
        radio("r", &["yes"]),
        text_if("hidden", json!({ "field": "r", "equals": "yes" }))
    ]));
    // Required missing, half-typed phone, over max_length but under the cap, hidden answer: fine.
    let a = answers(
        json!({ "t": "123456", "p": "090-12", "hidden": "kept", "num": "3", "n": { "family": "山" } }),
    );
    assert_eq!(check_draft(&d, &a), vec![]);
    let a = answers(json!({
        "t": 5,
        "p": "9".repeat(65),
        "c": ["a", "b"],
        "n": { "family": 1, "nick": "x" },
        "num": [1],
        "att": ["x", "y", "z"],
        "ghost": 1
    }));
    let got: Vec<(String, String)> = check_draft(&d, &a)
        .into_iter()
        .map(|e| (e.field, e.code))
        .collect();
    for (f, c) in [
        ("t", "wrong_type"),
        ("p", "too_long"),
        ("c", "too_many"),
        ("n.family", "wrong_type"),
        ("n.nick", "unknown_field"),
        ("num", "wrong_type"),
        ("att", "too_many"),
        ("ghost", "unknown_field"),
    ] {
        assert!(
            got.contains(&(f.to_string(), c.to_string())),
            "{f} {c}: {got:?}"
        );
    }
    assert_eq!(got.len(), 8, "{got:?}");
    let a = answers(json!({ "t": "x".repeat(1001) }));
    assert_eq!(check_draft(&d, &a)[0].code, "too_long");
}

#[test]
fn drafts_and_submissions_agree_on_blank_kana() {
    let d = def(json!([{ "id": "n", "type": "name", "label": "n" }]));
    let blank = answers(
        json!({ "n": { "family": "山田", "given": "太郎", "family_kana": "", "given_kana": null } }),
    );
    assert_eq!(check_draft(&d, &blank), vec![]);
    assert_eq!(check_answers(&d, &blank, today()).errors, vec![]);
    let filled =
        answers(json!({ "n": { "family": "山田", "given": "太郎", "family_kana": "ヤマダ" } }));
    assert_eq!(check_draft(&d, &filled)[0].code, "unknown_field");
    assert_eq!(
        check_answers(&d, &filled, today()).errors[0].code,
        "unknown_field"
    );
}

//! Definitions: strict parsing with paths, the whole-definition check, the window.

use madoguchi_domain::form::{
    AccessPolicy, ApplicantType, Choice, Condition, Field, FieldKind, FormDefinition, NotifyEvent,
    Predicate, PublishWindow, SignaturePolicy, parse_definition, validate_definition,
};
use serde_json::{Value, json};

fn parse(v: Value) -> FormDefinition {
    parse_definition(&v).unwrap_or_else(|e| panic!("{e:?}"))
}

fn parse_errors(v: Value) -> Vec<(String, String)> {
    parse_definition(&v)
        .expect_err("should not parse")
        .into_iter()
        .map(|e| (e.field, e.code))
        .collect()
}

fn has(errors: &[(String, String)], field: &str, code: &str) -> bool {
    errors.iter().any(|(f, c)| f == field && c == code)
}

/// (field, code) pairs of validate_definition.
fn problems(def: &FormDefinition) -> Vec<(String, String)> {
    validate_definition(def)
        .into_iter()
        .map(|e| (e.field, e.code))
        .collect()
}

fn problems_of(v: Value) -> Vec<(String, String)> {
    problems(&parse(v))
}

fn form(items: Value) -> Value {
    json!({ "title": "テスト", "items": items })
}

fn text(id: &str) -> Value {
    json!({ "id": id, "type": "text", "label": id })
}

fn radio(id: &str) -> Value {
    json!({ "id": id, "type": "radio", "label": id,
            "options": [{ "value": "a", "label": "A" }, { "value": "b", "label": "B" }] })
}

#[test]
fn defaults_apply() {
    let def = parse(form(json!([text("a")])));
    assert_eq!(def.applicant_type, ApplicantType::Individual);
    assert_eq!(def.signature, SignaturePolicy::None_);
    assert_eq!(def.access, AccessPolicy::Either);
    assert_eq!(def.max_total_mb, 100);
    assert_eq!(def.notify, vec![NotifyEvent::Received]);
    assert!(!def.items[0].required);
    let att = parse(form(
        json!([{ "id": "f", "type": "attachment", "label": "f" }]),
    ));
    let all: Vec<String> = madoguchi_domain::filetype::allowed_extensions()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        att.items[0].kind,
        FieldKind::Attachment {
            extensions: all,
            max_file_mb: 10,
            max_files: 1
        }
    );
    assert!(att.items[0].kind.accepts_extension("pdf"));
    assert!(att.items[0].kind.accepts_extension("PDF"));
    assert!(!att.items[0].kind.accepts_extension("exe"));
    assert!(!FieldKind::Phone.accepts_extension("pdf"));
    // An explicit empty list is a mistake, not "everything".
    let p = problems_of(form(
        json!([{ "id": "f", "type": "attachment", "label": "f", "extensions": [] }]),
    ));
    assert!(has(&p, "items[0].extensions", "required"), "{p:?}");
}

#[test]
fn enums_parse_in_snake_case() {
    let def = parse(json!({
        "title": "t", "applicant_type": "corporation", "signature": "required",
        "access": "account", "notify": ["status_changed", "payment_requested", "completed", "correction_requested"],
        "items": [text("a")]
    }));
    assert_eq!(def.applicant_type, ApplicantType::Corporation);
    assert_eq!(def.signature, SignaturePolicy::Required);
    assert_eq!(def.access, AccessPolicy::Account);
    assert_eq!(def.notify.len(), 4);
    let v = serde_json::to_value(&def).unwrap();
    assert_eq!(v["signature"], "required");
    let none = serde_json::to_value(SignaturePolicy::None_).unwrap();
    assert_eq!(none, "none");
}

#[test]
fn unknown_keys_are_refused_with_paths_even_inside_fields() {
    let errors = parse_errors(json!({
        "title": "t",
        "colour": "red",
        "items": [
            text("a"),
            { "id": "b", "type": "text", "label": "b", "max_file_mb": 3 },
            { "id": "s", "type": "section", "label": "s", "items": [
                { "id": "c", "type": "phone", "label": "c", "multiline": true }
            ]},
            { "id": "r", "type": "radio", "label": "r", "options": [{ "value": "x", "label": "X", "note": 1 }] }
        ]
    }));
    assert!(has(&errors, "colour", "unknown_field"), "{errors:?}");
    assert!(
        has(&errors, "items[1].max_file_mb", "unknown_field"),
        "{errors:?}"
    );
    assert!(
        has(&errors, "items[2].items[0].multiline", "unknown_field"),
        "{errors:?}"
    );
    assert!(
        has(&errors, "items[3].options[0].note", "unknown_field"),
        "{errors:?}"
    );
    assert_eq!(errors.len(), 4, "{errors:?}");
}

#[test]
fn wrong_types_name_their_path() {
    let errors = parse_errors(json!({
        "title": 5,
        "max_total_mb": "big",
        "notify": ["received", "sometimes", 3],
        "signature": "maybe",
        "items": [
            { "id": "f", "type": "attachment", "label": "f", "max_file_mb": "11" },
            { "id": "g", "type": "attachment", "label": "g", "max_file_mb": -1 },
            { "id": "h", "type": "attachment", "label": "h", "max_file_mb": 1.5 },
            { "id": "i", "type": "attachment", "label": "i", "max_file_mb": 5000000000u64 },
            { "id": "j", "type": "text", "label": "j", "required": "yes" },
            { "id": "k", "type": "number", "label": "k", "min": "0" },
            { "id": "l", "type": "teleport", "label": "l", "anything": 1 },
            { "type": "text" },
            "not an object"
        ]
    }));
    for (field, code) in [
        ("title", "wrong_type"),
        ("max_total_mb", "wrong_type"),
        ("notify[1]", "not_an_option"),
        ("notify[2]", "wrong_type"),
        ("signature", "not_an_option"),
        ("items[0].max_file_mb", "wrong_type"),
        ("items[1].max_file_mb", "wrong_type"),
        ("items[2].max_file_mb", "wrong_type"),
        ("items[3].max_file_mb", "out_of_range"),
        ("items[4].required", "wrong_type"),
        ("items[5].min", "wrong_type"),
        ("items[6].type", "unknown_type"),
        ("items[7].id", "required"),
        ("items[7].label", "required"),
        ("items[8]", "wrong_type"),
    ] {
        assert!(has(&errors, field, code), "{field} {code}: {errors:?}");
    }
    // An unknown type does not also report its keys as unknown.
    assert!(!has(&errors, "items[6].anything", "unknown_field"));
    // Messages are Japanese and do not quote the input.
    for e in parse_definition(&json!({ "title": "t", "items": [{ "id": "x", "type": "text", "label": "x", "max_length": "秘密" }] })).unwrap_err() {
        assert!(!e.message.contains("秘密"));
        assert!(!e.message.is_ascii());
    }
}

#[test]
fn root_must_be_an_object_with_items() {
    assert!(has(&parse_errors(json!([])), "", "wrong_type"));
    let e = parse_errors(json!({ "title": "t" }));
    assert!(has(&e, "items", "required"), "{e:?}");
    let e = parse_errors(json!({ "title": "t", "items": {} }));
    assert!(has(&e, "items", "wrong_type"), "{e:?}");
}

#[test]
fn conditions_parse_strictly() {
    let ok = parse(form(json!([
        radio("a"),
        { "id": "b", "type": "text", "label": "b", "show_if": { "all": [
            { "field": "a", "equals": "a" },
            { "not": { "field": "a", "one_of": ["b"] } },
            { "any": [{ "field": "a", "answered": true }] }
        ] } }
    ])));
    assert_eq!(
        ok.items[1].show_if,
        Some(Condition::All(vec![
            Condition::equals("a", "a"),
            Condition::Not(Box::new(Condition::Field {
                field: "a".into(),
                test: Predicate::OneOf(vec![json!("b")])
            })),
            Condition::Any(vec![Condition::answered("a")]),
        ]))
    );
    let bad = |c: Value| {
        parse_errors(form(
            json!([radio("a"), { "id": "b", "type": "text", "label": "b", "show_if": c }]),
        ))
    };
    let p = "items[1].show_if";
    assert!(has(&bad(json!({})), p, "required"));
    assert!(has(&bad(json!({ "field": "a" })), p, "required"));
    assert!(has(
        &bad(json!({ "field": "a", "equals": "a", "gt": 1 })),
        p,
        "too_many"
    ));
    assert!(has(
        &bad(json!({ "field": "a", "equals": "a", "colour": 1 })),
        &format!("{p}.colour"),
        "unknown_field"
    ));
    assert!(has(&bad(json!({ "not": {}, "all": [] })), p, "too_many"));
    assert!(has(
        &bad(json!({ "field": "a", "equals": [1] })),
        &format!("{p}.equals"),
        "wrong_type"
    ));
    assert!(has(
        &bad(json!({ "field": "a", "answered": "yes" })),
        &format!("{p}.answered"),
        "wrong_type"
    ));
    assert!(has(
        &bad(json!({ "field": 3, "answered": true })),
        &format!("{p}.field"),
        "wrong_type"
    ));
    assert!(has(
        &bad(json!({ "all": [{ "field": "a" }] })),
        &format!("{p}.all[0]"),
        "required"
    ));
    assert!(has(
        &bad(json!({ "any": "x" })),
        &format!("{p}.any"),
        "wrong_type"
    ));
    // Hostile nesting is cut off, not followed.
    let mut deep = json!({ "field": "a", "answered": true });
    for _ in 0..100 {
        deep = json!({ "not": deep });
    }
    assert!(bad(deep).iter().any(|(_, c)| c == "too_deep"));
}

#[test]
fn serialization_round_trips_and_is_flat() {
    let def = FormDefinition::new(
        "t",
        vec![
            Field::new(
                "a",
                "A",
                FieldKind::Radio {
                    options: vec![Choice::new("x", "X")],
                },
            )
            .required(),
            Field::new("b", "B", FieldKind::Phone).show_if(Condition::equals("a", "x")),
            Field::new(
                "s",
                "S",
                FieldKind::Section {
                    items: vec![Field::new("c", "C", FieldKind::Name { kana: true }).help("h")],
                },
            ),
        ],
    );
    let v = serde_json::to_value(&def).unwrap();
    assert_eq!(v["items"][0]["type"], "radio");
    assert_eq!(v["items"][0]["options"][0]["value"], "x");
    assert_eq!(
        v["items"][1],
        json!({ "id": "b", "type": "phone", "label": "B", "required": false, "show_if": { "field": "a", "equals": "x" } })
    );
    assert_eq!(v["items"][2]["items"][0]["kana"], true);
    assert_eq!(parse_definition(&v).unwrap(), def);
    // Deserialize goes through the same strict parser.
    let back: FormDefinition = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(back, def);
    let mut bad = v;
    bad["items"][1]["extra"] = json!(1);
    let err = serde_json::from_value::<FormDefinition>(bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("items[1].extra"), "{err}");
}

#[test]
fn navigation() {
    let def = parse(form(json!([
        { "id": "h", "type": "heading", "label": "見出し" },
        text("a"),
        { "id": "s", "type": "section", "label": "s", "items": [
            { "id": "m", "type": "my_number", "label": "個人番号" },
            { "id": "e", "type": "explanation", "label": "説明" },
            text("b")
        ]},
        text("c")
    ])));
    let inputs: Vec<&str> = def.inputs().map(|f| f.id.as_str()).collect();
    assert_eq!(inputs, ["a", "m", "b", "c"]);
    let all: Vec<&str> = def.all_items().map(|f| f.id.as_str()).collect();
    assert_eq!(all, ["h", "a", "s", "m", "e", "b", "c"]);
    assert_eq!(def.field("e").unwrap().label, "説明");
    assert_eq!(def.field("s").unwrap().kind.type_name(), "section");
    assert!(def.field("zz").is_none());
    assert_eq!(def.sensitive_fields(), vec!["m"]);
}

#[test]
fn window_uses_tokyo_time() {
    let mut def = parse(form(json!([text("a")])));
    let ts = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    assert_eq!(def.window(ts("2026-01-01T00:00:00Z")), PublishWindow::Open);
    def.publish_from = Some("2026-04-01T09:00".into());
    def.publish_until = Some("2026-04-30T17:00".into());
    // 09:00 JST = 00:00 UTC.
    assert_eq!(
        def.window(ts("2026-03-31T23:59:59Z")),
        PublishWindow::NotYet
    );
    assert_eq!(def.window(ts("2026-04-01T00:00:00Z")), PublishWindow::Open);
    assert_eq!(def.window(ts("2026-04-30T07:59:59Z")), PublishWindow::Open);
    assert_eq!(def.window(ts("2026-04-30T08:00:00Z")), PublishWindow::Ended);
    // Unparseable bounds close the form.
    def.publish_from = Some("soon".into());
    assert_eq!(
        def.window(ts("2026-04-10T00:00:00Z")),
        PublishWindow::NotYet
    );
    def.publish_from = None;
    def.publish_until = Some("2026-04-30 17:00".into());
    assert_eq!(def.window(ts("2026-04-10T00:00:00Z")), PublishWindow::Ended);
}

#[test]
fn a_good_definition_has_no_problems() {
    let def = parse(json!({
        "title": "t", "reference_url": "https://example.lg.jp/a?b=c",
        "publish_from": "2026-04-01T09:00", "publish_until": "2026-04-30T17:00",
        "items": [radio("a"), { "id": "b", "type": "text", "label": "b", "show_if": { "field": "a", "equals": "b" } }]
    }));
    assert_eq!(validate_definition(&def), vec![]);
}

#[test]
fn root_rules() {
    let p = problems_of(json!({
        "title": "  ", "overview": "a\u{0}b", "contact": "x".repeat(1001),
        "reference_url": "http://example.jp", "publish_from": "2026-04-01 09:00",
        "max_total_mb": 101, "notify": ["received", "received"], "items": []
    }));
    for (f, c) in [
        ("title", "required"),
        ("overview", "invalid_char"),
        ("contact", "too_long"),
        ("reference_url", "invalid_format"),
        ("publish_from", "invalid_format"),
        ("max_total_mb", "out_of_range"),
        ("notify[1]", "duplicate"),
        ("items", "required"),
    ] {
        assert!(has(&p, f, c), "{f} {c}: {p:?}");
    }
    let p = problems_of(json!({ "title": "t".repeat(201), "max_total_mb": 0,
        "publish_from": "2026-05-01T00:00", "publish_until": "2026-04-01T00:00",
        "items": [{ "id": "h", "type": "heading", "label": "h" }] }));
    assert!(has(&p, "title", "too_long"));
    assert!(has(&p, "max_total_mb", "out_of_range"));
    assert!(has(&p, "publish_until", "min_exceeds_max"));
    assert!(has(&p, "items", "required"), "only static items: {p:?}");
    for url in [
        "https://",
        "https:///path",
        "https://user@host/",
        "https://a b.jp",
        "ftp://x.jp",
    ] {
        let p = problems_of(json!({ "title": "t", "reference_url": url, "items": [text("a")] }));
        assert!(has(&p, "reference_url", "invalid_format"), "{url}");
    }
}

#[test]
fn item_rules() {
    let mut items: Vec<Value> = vec![
        json!({ "id": "Bad-Id", "type": "text", "label": "x" }),
        json!({ "id": "dup", "type": "text", "label": "x" }),
        json!({ "id": "dup", "type": "text", "label": "" }),
        json!({ "id": "long", "type": "text", "label": "あ".repeat(201), "help": "h".repeat(1001) }),
        json!({ "id": "h", "type": "heading", "label": "h", "required": true }),
        json!({ "id": "t1", "type": "text", "label": "t", "min_length": 10, "max_length": 5 }),
        json!({ "id": "t2", "type": "text", "label": "t", "max_length": 1001 }),
        json!({ "id": "t3", "type": "text", "label": "t", "max_length": 0 }),
        json!({ "id": "t4", "type": "text", "label": "t", "multiline": true, "max_length": 10000 }),
        json!({ "id": "r0", "type": "radio", "label": "r", "options": [] }),
        json!({ "id": "r1", "type": "select", "label": "r", "options": [
            { "value": "a", "label": "A" }, { "value": "a", "label": "A2" },
            { "value": " b", "label": "B" }, { "value": "", "label": "C" }, { "value": "d", "label": "" }
        ] }),
        json!({ "id": "c1", "type": "checkbox", "label": "c", "min_choices": 2, "max_choices": 1,
                "options": [{ "value": "a", "label": "A" }, { "value": "b", "label": "B" }] }),
        json!({ "id": "c2", "type": "checkbox", "label": "c", "max_choices": 3, "min_choices": 3,
                "options": [{ "value": "a", "label": "A" }] }),
        json!({ "id": "d1", "type": "date", "label": "d", "min": "2026-05-01", "max": "2026-04-01" }),
        json!({ "id": "d2", "type": "date", "label": "d", "min": "2026/05/01", "max": "today" }),
        json!({ "id": "n1", "type": "number", "label": "n", "min": 5, "max": 1 }),
        json!({ "id": "n2", "type": "number", "label": "n", "max": 1e16 }),
        json!({ "id": "a1", "type": "attachment", "label": "通帳", "max_file_mb": 11, "max_files": 21,
                "extensions": ["pdf", "exe", "pdf", ".png", "PDF"] }),
        json!({ "id": "a2", "type": "attachment", "label": "a", "max_file_mb": 0, "max_files": 0 }),
        json!({ "id": "s1", "type": "section", "label": "s", "items": [
            { "id": "s2", "type": "section", "label": "inner", "items": [] }
        ] }),
    ];
    items.push(json!({ "id": "e", "type": "explanation", "label": "説明\n二行目" }));
    let p = problems_of(json!({ "title": "t", "items": items }));
    for (f, c) in [
        ("items[0].id", "invalid_format"),
        ("items[2].id", "duplicate"),
        ("items[2].label", "required"),
        ("items[3].label", "too_long"),
        ("items[3].help", "too_long"),
        ("items[4].required", "not_applicable"),
        ("items[5].min_length", "min_exceeds_max"),
        ("items[6].max_length", "out_of_range"),
        ("items[7].max_length", "out_of_range"),
        ("items[9].options", "required"),
        ("items[10].options[1].value", "duplicate"),
        ("items[10].options[2].value", "invalid_format"),
        ("items[10].options[3].value", "required"),
        ("items[10].options[4].label", "required"),
        ("items[11].min_choices", "min_exceeds_max"),
        ("items[12].max_choices", "out_of_range"),
        ("items[12].min_choices", "out_of_range"),
        ("items[13].min", "min_exceeds_max"),
        ("items[14].min", "invalid_format"),
        ("items[15].min", "min_exceeds_max"),
        ("items[16].max", "out_of_range"),
        ("items[17].max_file_mb", "out_of_range"),
        ("items[17].max_files", "out_of_range"),
        ("items[17].extensions[1]", "not_an_option"),
        ("items[17].extensions[2]", "duplicate"),
        ("items[17].extensions[3]", "not_an_option"),
        ("items[17].extensions[4]", "not_an_option"),
        ("items[18].max_file_mb", "out_of_range"),
        ("items[18].max_files", "out_of_range"),
        ("items[19].items[0].type", "nested_section"),
        ("items[19].items[0].items", "required"),
    ] {
        assert!(has(&p, f, c), "{f} {c}: {p:?}");
    }
    // Multi-line explanation text and a 10000-char multi-line max are fine.
    assert!(
        !p.iter()
            .any(|(f, _)| f.starts_with("items[20]") || f.starts_with("items[8]")),
        "{p:?}"
    );
    // The message for 11 MB names the field and the refused size.
    let def = parse(
        json!({ "title": "t", "items": [{ "id": "a1", "type": "attachment", "label": "通帳の写し", "max_file_mb": 11 }] }),
    );
    let e = validate_definition(&def);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].field, "items[0].max_file_mb");
    assert!(
        e[0].message.contains("通帳の写し") && e[0].message.contains("11MB"),
        "{}",
        e[0].message
    );
    // A file may not exceed the form's total.
    let p = problems_of(
        json!({ "title": "t", "max_total_mb": 5, "items": [{ "id": "a", "type": "attachment", "label": "a", "max_file_mb": 6 }] }),
    );
    assert!(has(&p, "items[0].max_file_mb", "out_of_range"));
}

#[test]
fn size_limits() {
    let items: Vec<Value> = (0..201).map(|i| text(&format!("f{i}"))).collect();
    let p = problems_of(json!({ "title": "t", "items": items }));
    assert!(has(&p, "items", "too_many"));
    // Items inside sections count too.
    let inner: Vec<Value> = (0..200).map(|i| text(&format!("f{i}"))).collect();
    let p = problems_of(form(
        json!([{ "id": "s", "type": "section", "label": "s", "items": inner }]),
    ));
    assert!(has(&p, "items", "too_many"));
    let options: Vec<Value> = (0..101)
        .map(|i| json!({ "value": format!("v{i}"), "label": "l" }))
        .collect();
    let p = problems_of(form(
        json!([{ "id": "r", "type": "radio", "label": "r", "options": options }]),
    ));
    assert!(has(&p, "items[0].options", "too_many"));
}

fn cond_problems(targets: Value, cond: Value) -> Vec<(String, String)> {
    let mut items = targets.as_array().unwrap().clone();
    items.push(json!({ "id": "z", "type": "text", "label": "z", "show_if": cond }));
    problems_of(form(Value::Array(items)))
}

#[test]
fn condition_rules() {
    let targets = json!([
        text("t"),
        radio("r"),
        { "id": "n", "type": "number", "label": "n" },
        { "id": "d", "type": "date", "label": "d" },
        { "id": "c", "type": "checkbox", "label": "c", "options": [{ "value": "x", "label": "X" }] },
        { "id": "m", "type": "my_number", "label": "m" },
        { "id": "h", "type": "heading", "label": "h" },
        { "id": "s", "type": "section", "label": "s", "items": [text("inner")] }
    ]);
    let p = "items[8].show_if";
    let ok = |c: Value| {
        let errs = cond_problems(targets.clone(), c.clone());
        assert!(errs.is_empty(), "{c}: {errs:?}");
    };
    let bad = |c: Value, field: &str, code: &str| {
        let errs = cond_problems(targets.clone(), c.clone());
        assert!(has(&errs, field, code), "{c} → {field} {code}: {errs:?}");
    };
    ok(json!({ "field": "t", "equals": "yes" }));
    ok(json!({ "field": "r", "one_of": ["a", "b"] }));
    ok(json!({ "field": "n", "gte": 3 }));
    ok(json!({ "field": "d", "lt": "2000-01-01" }));
    ok(json!({ "field": "c", "contains": "x" }));
    ok(json!({ "field": "m", "answered": true }));
    ok(json!({ "field": "inner", "answered": false }));
    bad(
        json!({ "field": "nope", "answered": true }),
        &format!("{p}.field"),
        "unknown_reference",
    );
    bad(
        json!({ "field": "h", "answered": true }),
        &format!("{p}.field"),
        "not_an_input",
    );
    bad(
        json!({ "field": "s", "answered": true }),
        &format!("{p}.field"),
        "not_an_input",
    );
    bad(
        json!({ "field": "t", "gt": 1 }),
        &format!("{p}.gt"),
        "wrong_kind",
    );
    bad(
        json!({ "field": "m", "equals": "123456789018" }),
        &format!("{p}.equals"),
        "wrong_kind",
    );
    bad(
        json!({ "field": "t", "contains": "x" }),
        &format!("{p}.contains"),
        "wrong_kind",
    );
    bad(
        json!({ "field": "c", "equals": "x" }),
        &format!("{p}.equals"),
        "wrong_kind",
    );
    bad(
        json!({ "field": "r", "equals": "zzz" }),
        &format!("{p}.equals"),
        "not_an_option",
    );
    bad(
        json!({ "field": "r", "one_of": ["a", "zzz"] }),
        &format!("{p}.one_of[1]"),
        "not_an_option",
    );
    bad(
        json!({ "field": "r", "one_of": [] }),
        &format!("{p}.one_of"),
        "required",
    );
    bad(
        json!({ "field": "c", "contains": "y" }),
        &format!("{p}.contains"),
        "not_an_option",
    );
    bad(
        json!({ "field": "n", "equals": "3" }),
        &format!("{p}.equals"),
        "wrong_type",
    );
    bad(
        json!({ "field": "d", "gt": "R8.1.1" }),
        &format!("{p}.gt"),
        "invalid_format",
    );
    bad(
        json!({ "field": "t", "equals": 3 }),
        &format!("{p}.equals"),
        "wrong_type",
    );
    bad(json!({ "all": [] }), &format!("{p}.all"), "required");
    let many: Vec<Value> = (0..21)
        .map(|_| json!({ "field": "t", "answered": true }))
        .collect();
    bad(json!({ "any": many }), &format!("{p}.any"), "too_many");
    bad(
        json!({ "not": { "not": { "not": { "not": { "not": { "field": "t", "answered": true } } } } } }),
        &format!("{p}.not.not.not.not.not"),
        "too_deep",
    );
    // Nested paths are exact.
    bad(
        json!({ "all": [{ "field": "t", "answered": true }, { "any": [{ "field": "ghost", "answered": true }] }] }),
        &format!("{p}.all[1].any[0].field"),
        "unknown_reference",
    );
}

#[test]
fn cycles_are_found_and_named() {
    // a → b → c → a
    let def = parse(form(json!([
        { "id": "a", "type": "text", "label": "a", "show_if": { "field": "c", "answered": true } },
        { "id": "b", "type": "text", "label": "b", "show_if": { "field": "a", "answered": true } },
        { "id": "c", "type": "text", "label": "c", "show_if": { "field": "b", "answered": true } },
        text("free")
    ])));
    let e = validate_definition(&def);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].code, "condition_cycle");
    assert_eq!(e[0].field, "items[0].show_if");
    assert!(e[0].message.contains("a → c → b → a"), "{}", e[0].message);

    // Self-reference.
    let def = parse(form(
        json!([{ "id": "a", "type": "text", "label": "a", "show_if": { "field": "a", "answered": false } }]),
    ));
    let e = validate_definition(&def);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].code, "condition_cycle");
    assert!(e[0].message.contains("a → a"), "{}", e[0].message);

    // Through a section: the section's condition reads a field inside it.
    let def = parse(form(json!([
        { "id": "s", "type": "section", "label": "s", "show_if": { "field": "inner", "answered": true },
          "items": [text("inner")] }
    ])));
    let e = validate_definition(&def);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].code, "condition_cycle");
    assert!(e[0].message.contains("s → inner → s"), "{}", e[0].message);

    // Through a section and another field: x's condition reads inner, s's reads x.
    let def = parse(form(json!([
        { "id": "x", "type": "text", "label": "x", "show_if": { "field": "inner", "answered": true } },
        { "id": "s", "type": "section", "label": "s", "show_if": { "field": "x", "answered": true },
          "items": [text("inner")] }
    ])));
    let e = validate_definition(&def);
    assert_eq!(
        e.iter().filter(|e| e.code == "condition_cycle").count(),
        1,
        "{e:?}"
    );

    // Two separate cycles, two errors; a chain without a cycle, none.
    let def = parse(form(json!([
        { "id": "a", "type": "text", "label": "a", "show_if": { "field": "b", "answered": true } },
        { "id": "b", "type": "text", "label": "b", "show_if": { "field": "a", "answered": true } },
        { "id": "c", "type": "text", "label": "c", "show_if": { "field": "d", "answered": true } },
        { "id": "d", "type": "text", "label": "d", "show_if": { "field": "c", "answered": true } }
    ])));
    assert_eq!(validate_definition(&def).len(), 2);
    let def = parse(form(json!([
        text("a"),
        { "id": "b", "type": "text", "label": "b", "show_if": { "field": "a", "answered": true } },
        { "id": "c", "type": "text", "label": "c", "show_if": { "all": [{ "field": "a", "answered": true }, { "field": "b", "answered": true }] } }
    ])));
    assert_eq!(validate_definition(&def), vec![]);
}

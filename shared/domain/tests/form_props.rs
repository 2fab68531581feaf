//! Property tests: whatever JSON arrives, the form functions answer with values or
//! FieldErrors, never a panic (the stable-toolchain companion of fuzz/), plus a few
//! algebraic properties of normalisation and visibility.

use std::collections::BTreeSet;

use madoguchi_domain::Date;
use madoguchi_domain::form::{
    Answers, FormDefinition, check_answers, check_draft, parse_definition, validate_definition,
    visible_items,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const DOC: &str = include_str!("../../../docs/forms.md");

/// The complete example of docs/forms.md: every field type, sections, conditions.
fn rich() -> FormDefinition {
    let fence = "```json form-definition\n";
    let start = DOC.find(fence).unwrap() + fence.len();
    let end = start + DOC[start..].find("\n```").unwrap();
    parse_definition(&serde_json::from_str(&DOC[start..end]).unwrap()).unwrap()
}

/// Error codes documented in docs/forms.md.
const CODES: &[&str] = &[
    "required",
    "too_long",
    "too_short",
    "invalid_format",
    "invalid_char",
    "invalid_date",
    "not_an_option",
    "too_few",
    "too_many",
    "out_of_range",
    "not_integer",
    "check_digit",
    "not_katakana",
    "duplicate",
    "unknown_field",
    "wrong_type",
    "unknown_type",
    "min_exceeds_max",
    "not_applicable",
    "nested_section",
    "unknown_reference",
    "not_an_input",
    "wrong_kind",
    "too_deep",
    "condition_cycle",
];

fn interesting_string() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        Just("123456789018".to_owned()),
        Just("１２３４ ５６７８ ９０１８".to_owned()),
        Just("令和8年11月23日".to_owned()),
        Just("2026-02-30".to_owned()),
        Just("090-1234-5678".to_owned()),
        Just("+81 (0)3-1234-5678".to_owned()),
        Just("〒595-0000".to_owned()),
        Just("Hanako@Example.JP".to_owned()),
        Just("01890a5d-ac96-774b-bcce-b302099a8057".to_owned()),
        Just("ﾔﾏﾀﾞ".to_owned()),
        Just("parent".to_owned()),
        Just("bank".to_owned()),
        Just("other".to_owned()),
        Just("single_parent".to_owned()),
        Just("１,２００".to_owned()),
        Just("\u{0}\u{202E}\r\n".to_owned()),
        "[0-9０-９ー\\-+() ]{0,16}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "id", "type", "label", "required", "help", "show_if", "items", "options", "value",
            "field", "equals", "one_of", "contains", "gt", "answered", "not", "all", "any",
            "title", "max_file_mb", "max_files", "extensions", "min", "max", "kana", "multiline",
            "family", "given", "family_kana", "given_kana", "postal_code", "address", "building",
            "applicant", "birth_date", "my_number", "phone", "email", "children", "relationship",
            "relationship_other", "payee", "bank_name", "account_number", "passbook",
            "circumstances", "certificate", "mail_to", "mailing_postal_code", "mailing_address",
            "remarks", "bank", "h_applicant",
        ]).prop_map(str::to_owned),
        1 => ".{0,8}",
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e20f64..1e20).prop_map(Value::from),
        interesting_string().prop_map(Value::from),
        prop::sample::select(vec![
            "text",
            "radio",
            "checkbox",
            "section",
            "name",
            "address",
            "number",
            "date",
            "attachment",
            "my_number"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_answers() -> impl Strategy<Value = Answers> {
    prop::collection::btree_map(key(), arb_json(), 0..12).prop_map(|m| m.into_iter().collect())
}

fn today() -> Date {
    Date::new(2026, 5, 1).unwrap()
}

/// Runs everything on one definition and answers and checks the invariants.
fn exercise(def: &FormDefinition, answers: &Answers) -> Result<(), TestCaseError> {
    let visible = visible_items(def, answers);
    let checked = check_answers(def, answers, today());
    for e in &checked.errors {
        prop_assert!(
            CODES.contains(&e.code.as_str()),
            "undocumented code {}",
            e.code
        );
        prop_assert!(!e.message.is_empty());
    }
    prop_assert_eq!(checked.values.len(), checked.summary.len());
    for id in checked.values.keys() {
        prop_assert!(visible.contains(id), "value of hidden {}", id);
        prop_assert!(answers.contains_key(id));
        prop_assert!(def.field(id).is_some_and(|f| f.kind.is_input()));
    }
    // Normalisation is a fixpoint: clean answers re-check to themselves.
    if checked.errors.is_empty() {
        let again: Answers = checked.values.clone().into_iter().collect();
        let rechecked = check_answers(def, &again, today());
        prop_assert_eq!(&rechecked.errors, &vec![]);
        prop_assert_eq!(&rechecked.values, &checked.values);
        prop_assert_eq!(&rechecked.summary, &checked.summary);
    }
    for e in check_draft(def, answers) {
        prop_assert!(
            CODES.contains(&e.code.as_str()),
            "undocumented code {}",
            e.code
        );
    }
    Ok(())
}

/// A random but well-formed definition: unique ids, random types, optional sections,
/// and conditions pointing anywhere (cycles included).
fn arb_structured() -> impl Strategy<Value = Value> {
    let item = (
        0usize..9,
        any::<bool>(),
        prop::option::of((0usize..12, 0usize..6)),
        0usize..3,
    );
    prop::collection::vec(item, 1..12).prop_map(|specs| {
        let n = specs.len();
        let mut items: Vec<Value> = Vec::new();
        let mut section: Option<Vec<Value>> = None;
        for (i, (kind, required, cond, group)) in specs.into_iter().enumerate() {
            let id = format!("f{i}");
            let mut f = match kind {
                0 => json!({ "type": "text" }),
                1 => json!({ "type": "radio", "options": [{ "value": "a", "label": "A" }, { "value": "b", "label": "B" }] }),
                2 => json!({ "type": "checkbox", "options": [{ "value": "a", "label": "A" }, { "value": "b", "label": "B" }] }),
                3 => json!({ "type": "number", "min": 0, "max": 100 }),
                4 => json!({ "type": "date" }),
                5 => json!({ "type": "name", "kana": true }),
                6 => json!({ "type": "my_number" }),
                7 => json!({ "type": "heading" }),
                _ => json!({ "type": "address" }),
            };
            f["id"] = json!(id);
            f["label"] = json!(id);
            f["required"] = json!(required && kind != 7);
            if let Some((target, op)) = cond {
                let field = format!("f{}", target % n);
                f["show_if"] = match op {
                    0 => json!({ "field": field, "answered": true }),
                    1 => json!({ "field": field, "equals": "a" }),
                    2 => json!({ "not": { "field": field, "answered": true } }),
                    3 => json!({ "field": field, "gt": 10 }),
                    4 => json!({ "any": [{ "field": field, "contains": "b" }, { "field": field, "lte": "2000-01-01" }] }),
                    _ => json!({ "all": [{ "field": field, "one_of": ["a", "b"] }] }),
                };
            }
            match (group, &mut section) {
                (0, Some(s)) => s.push(f),
                (1, None) => section = Some(vec![f]),
                _ => {
                    if let Some(s) = section.take() {
                        items.push(json!({ "id": format!("s{i}"), "type": "section", "label": "s", "items": s }));
                    }
                    items.push(f);
                }
            }
        }
        if let Some(s) = section.take() {
            items.push(json!({ "id": "s_last", "type": "section", "label": "s", "items": s }));
        }
        json!({ "title": "t", "items": items })
    })
}

fn structured_answers(n: usize) -> impl Strategy<Value = Answers> {
    let answer = prop_oneof![
        Just(json!("a")),
        Just(json!("b")),
        Just(json!(["b"])),
        Just(json!(["a", "b"])),
        Just(json!(42)),
        Just(json!("5")),
        Just(json!("1999-12-31")),
        Just(json!("123456789018")),
        Just(
            json!({ "family": "山田", "given": "太郎", "family_kana": "やまだ", "given_kana": "たろう" })
        ),
        Just(json!({ "address": "大阪府" })),
        Just(Value::Null),
        arb_json(),
    ];
    prop::collection::btree_map(
        (0..n.max(1)).prop_map(|i| format!("f{i}")),
        answer,
        0..n.max(1),
    )
    .prop_map(|m| m.into_iter().collect::<Map<String, Value>>())
}

/// Items in a JSON items list, nested ones included.
fn count(items: &[Value]) -> usize {
    items
        .iter()
        .map(|f| {
            1 + f
                .get("items")
                .and_then(Value::as_array)
                .map_or(0, |a| count(a))
        })
        .sum()
}

/// The same definition with every list of items reversed.
fn reversed(v: &Value) -> Value {
    let mut v = v.clone();
    fn rev(items: &mut Value) {
        if let Value::Array(a) = items {
            a.reverse();
            for f in a {
                if let Some(inner) = f.get_mut("items") {
                    rev(inner);
                }
            }
        }
    }
    rev(&mut v["items"]);
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_definitions_never_panic(v in arb_json()) {
        match parse_definition(&v) {
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for e in &errors {
                    prop_assert!(CODES.contains(&e.code.as_str()), "undocumented code {}", e.code);
                }
            }
            Ok(def) => {
                let _ = validate_definition(&def);
                let back = serde_json::to_value(&def).unwrap();
                prop_assert_eq!(parse_definition(&back).unwrap(), def);
            }
        }
    }

    #[test]
    fn arbitrary_answers_on_the_rich_form(answers in arb_answers()) {
        exercise(&rich(), &answers)?;
    }

    #[test]
    fn arbitrary_definitions_and_answers(
        (v, answers) in arb_structured().prop_flat_map(|v| {
            let n = v["items"].as_array().map_or(0, |a| count(a));
            (Just(v), structured_answers(n))
        })
    ) {
        let def = parse_definition(&v).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let problems = validate_definition(&def);
        for e in &problems {
            prop_assert!(CODES.contains(&e.code.as_str()), "undocumented code {}", e.code);
        }
        exercise(&def, &answers)?;
        // Visibility does not depend on the order of items.
        let rev = parse_definition(&reversed(&v)).unwrap();
        prop_assert_eq!(visible_items(&def, &answers), visible_items(&rev, &answers));
        // The items of a hidden section are hidden.
        let visible = visible_items(&def, &answers);
        for f in def.all_items() {
            if let madoguchi_domain::form::FieldKind::Section { items } = &f.kind
                && !visible.contains(&f.id)
            {
                for inner in items {
                    prop_assert!(!visible.contains(&inner.id));
                }
            }
        }
        // A definition that validates has no cycle, so every item without a condition
        // outside a section is visible.
        if problems.is_empty() {
            let top: BTreeSet<&str> = def.items.iter().filter(|f| f.show_if.is_none()).map(|f| f.id.as_str()).collect();
            for id in top {
                prop_assert!(visible.contains(id));
            }
        }
    }
}

/// One optional field of each answerable type.
fn single_field_forms() -> Vec<FormDefinition> {
    [
        json!({ "type": "text", "multiline": true }),
        json!({ "type": "radio", "options": [{ "value": "a", "label": "A" }, { "value": "parent", "label": "P" }] }),
        json!({ "type": "checkbox", "options": [{ "value": "a", "label": "A" }, { "value": "b", "label": "B" }] }),
        json!({ "type": "phone" }),
        json!({ "type": "email" }),
        json!({ "type": "date", "max": "today" }),
        json!({ "type": "attachment", "max_files": 3 }),
        json!({ "type": "my_number" }),
        json!({ "type": "number" }),
        json!({ "type": "postal_code" }),
        json!({ "type": "name", "kana": true }),
        json!({ "type": "address" }),
    ]
    .into_iter()
    .map(|mut f| {
        f["id"] = json!("f");
        f["label"] = json!("f");
        parse_definition(&json!({ "title": "t", "items": [f] })).unwrap()
    })
    .collect()
}

fn typed_answer() -> impl Strategy<Value = Value> {
    let kana = "[ぁ-んァ-ヶｦ-ﾟー 　]{0,8}";
    prop_oneof![
        arb_json(),
        interesting_string().prop_map(Value::from),
        "[0-9０-９]{2,4}[-ー－ ]?[0-9]{2,4}[-ー－ ]?[0-9]{3,4}".prop_map(Value::from),
        "〒?[0-9０-９]{3}[-－]?[0-9０-９]{4}".prop_map(Value::from),
        "[a-zA-Z0-9.]{1,8}@[a-zA-Z]{1,5}\\.[a-zA-Zａ-ｚ]{2,3}".prop_map(Value::from),
        "(令和|平成|R|H)[0-9]{1,2}[./年][0-9]{1,2}[./月][0-9]{1,2}日?".prop_map(Value::from),
        "[-+]?[0-9０-９,]{1,8}(\\.[0-9]{1,3})?".prop_map(Value::from),
        (kana, kana, "[山田花子]{1,3}", "[山田花子]{1,3}").prop_map(|(fk, gk, f, g)| json!({
            "family": f, "given": g, "family_kana": fk, "given_kana": gk
        })),
        ("[0-9]{3}-[0-9]{4}", ".{0,10}", ".{0,5}").prop_map(|(p, a, b)| json!({
            "postal_code": p, "address": a, "building": b
        })),
        prop::sample::subsequence(vec!["a", "b", "parent", "z"], 0..4).prop_map(|v| json!(v)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn normalisation_is_a_fixpoint_per_type(which in 0usize..12, answer in typed_answer()) {
        let def = &single_field_forms()[which];
        let mut answers = Answers::new();
        answers.insert("f".into(), answer);
        exercise(def, &answers)?;
        let checked = check_answers(def, &answers, today());
        if let Some(v) = checked.values.get("f") {
            // A normalised value passes again unchanged, and so does the draft check.
            let mut again = Answers::new();
            again.insert("f".into(), v.clone());
            let re = check_answers(def, &again, today());
            prop_assert_eq!(re.errors, vec![]);
            prop_assert_eq!(re.values.get("f"), Some(v));
            prop_assert_eq!(check_draft(def, &again), vec![]);
        }
    }
}
